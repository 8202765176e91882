-- Updates whose handling failed three times (a handler's error or panic):
-- kept with the last error and the update itself (the normalised Incoming
-- as JSON), so that `tuanbot failed retry ID` can run it through the engine
-- again. The update id is also recorded in processed_updates when it is
-- kept, so a platform's redelivery does not run it a fourth time. A
-- database outage never puts an update here: it waits instead.
CREATE TABLE failed_updates (
    id          INTEGER PRIMARY KEY,
    platform    TEXT    NOT NULL,
    update_id   TEXT    NOT NULL,
    chat_id     TEXT    NOT NULL,
    sender_id   TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    incoming    TEXT    NOT NULL,
    error       TEXT    NOT NULL,
    tries       BIGINT  NOT NULL,
    failed_at   BIGINT  NOT NULL,
    UNIQUE (platform, update_id)
);
