-- Photos seen in chats, so `/done 12` sent as a reply to a photo can find the
-- photo on platforms whose reply carries only the quoted message id (OneBot).
-- A cache, not a record: pruned by age; the proof itself is copied into
-- wishes.proof_ref at delivery.
CREATE TABLE recent_photos (
    platform    TEXT   NOT NULL,
    chat_id     TEXT   NOT NULL,
    message_id  TEXT   NOT NULL,
    sender_id   TEXT   NOT NULL,
    file_ref    TEXT   NOT NULL,
    seen_at     BIGINT NOT NULL,
    PRIMARY KEY (platform, chat_id, message_id)
);
CREATE INDEX recent_photos_seen ON recent_photos(seen_at);
