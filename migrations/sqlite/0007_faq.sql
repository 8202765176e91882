-- FAQ entries answered by /faq and by questions that @-mention the bot.
-- `deleted_at` marks /faq del (kept for the audit trail; numbers never reused).
CREATE TABLE faq (
    id          INTEGER PRIMARY KEY,
    question    TEXT   NOT NULL,
    answer      TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);
CREATE INDEX faq_live ON faq(deleted_at);
