-- Photos and documents seen in chats (was: recent_photos, photos only), so a
-- command can use the file of the message it replies to on platforms whose
-- reply carries only the quoted message id (OneBot): `/done 12` replying to
-- a photo, `/wishes import NAME` replying to a spreadsheet (or right after
-- it: the sender's latest document in the chat). A cache, not a record:
-- pruned by age; a delivery's proof is copied into wishes.proof_ref.
CREATE TABLE recent_attachments (
    platform    TEXT   NOT NULL,
    chat_id     TEXT   NOT NULL,
    message_id  TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    sender_id   TEXT   NOT NULL,
    file_ref    TEXT   NOT NULL,
    file_name   TEXT,
    seen_at     BIGINT NOT NULL,
    PRIMARY KEY (platform, chat_id, message_id, kind)
);
CREATE INDEX recent_attachments_seen ON recent_attachments(seen_at);
CREATE INDEX recent_attachments_sender
    ON recent_attachments(platform, chat_id, sender_id, kind, seen_at);
INSERT INTO recent_attachments
    (platform, chat_id, message_id, kind, sender_id, file_ref, file_name, seen_at)
    SELECT platform, chat_id, message_id, 'photo', sender_id, file_ref, NULL, seen_at
    FROM recent_photos;
DROP TABLE recent_photos;
