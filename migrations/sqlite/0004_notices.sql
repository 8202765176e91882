-- Scheduled jobs, notices with acknowledgements, and sign-up lists (接龙).

-- Scheduled work (one-off): a row per job, run once when `run_at` has come.
-- A runner takes a due row, performs its effect and sets `done_at` in ONE
-- transaction, so a crash neither loses nor doubles it. `leased_until` keeps
-- other runners off a row while it is being worked on (with
-- `FOR UPDATE SKIP LOCKED` on PostgreSQL).
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT   NOT NULL,
    payload       TEXT   NOT NULL DEFAULT '{}',
    run_at        BIGINT NOT NULL,
    leased_until  BIGINT,
    done_at       BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs(done_at, run_at);

-- A notice (通知). status: 'sent', or 'scheduled' → 'sent' | 'cancelled'.
-- The sender's chat receives the summary at the deadline.
CREATE TABLE notices (
    id                INTEGER PRIMARY KEY,
    title             TEXT   NOT NULL,
    body              TEXT   NOT NULL,
    target_label      TEXT   NOT NULL,
    sender_person_id  BIGINT NOT NULL REFERENCES people(id),
    sender_platform   TEXT   NOT NULL,
    sender_chat_id    TEXT   NOT NULL,
    deadline_at       BIGINT,
    scheduled_at      BIGINT,
    status            TEXT   NOT NULL,
    -- JSON list of attachments (photo/document refs) sent with each copy.
    attachments       TEXT   NOT NULL DEFAULT '[]',
    created_at        BIGINT NOT NULL,
    sent_at           BIGINT
);

-- The orgs a notice expects an acknowledgement from.
CREATE TABLE notice_orgs (
    notice_id  BIGINT NOT NULL REFERENCES notices(id),
    org_id     BIGINT NOT NULL REFERENCES orgs(id),
    PRIMARY KEY (notice_id, org_id)
);

-- The groups a notice goes (went) to; `chat` is chats.id.
CREATE TABLE notice_chats (
    notice_id  BIGINT NOT NULL REFERENCES notices(id),
    chat       BIGINT NOT NULL REFERENCES chats(id),
    PRIMARY KEY (notice_id, chat)
);
CREATE INDEX notice_chats_chat ON notice_chats(chat);

-- One acknowledgement per person per notice; `org_id` is the org it counts for.
CREATE TABLE notice_acks (
    notice_id  BIGINT NOT NULL REFERENCES notices(id),
    person_id  BIGINT NOT NULL REFERENCES people(id),
    org_id     BIGINT REFERENCES orgs(id),
    chat       BIGINT REFERENCES chats(id),
    at         BIGINT NOT NULL,
    PRIMARY KEY (notice_id, person_id)
);

-- A sign-up list (报名 / 接龙). One shared capacity even when posted to many groups.
CREATE TABLE events (
    id                INTEGER PRIMARY KEY,
    title             TEXT   NOT NULL,
    time_text         TEXT   NOT NULL,
    place             TEXT   NOT NULL,
    starts_at         BIGINT,
    capacity          BIGINT NOT NULL,
    deadline_at       BIGINT,
    status            TEXT   NOT NULL DEFAULT 'open',
    creator_person_id BIGINT NOT NULL REFERENCES people(id),
    org_id            BIGINT REFERENCES orgs(id),
    created_at        BIGINT NOT NULL
);

CREATE TABLE event_chats (
    event_id  BIGINT NOT NULL REFERENCES events(id),
    chat      BIGINT NOT NULL REFERENCES chats(id),
    PRIMARY KEY (event_id, chat)
);

-- One entry per person per event; `waiting` = 1 on the waitlist. Order is `id`.
CREATE TABLE event_entries (
    id         INTEGER PRIMARY KEY,
    event_id   BIGINT NOT NULL REFERENCES events(id),
    person_id  BIGINT NOT NULL REFERENCES people(id),
    note       TEXT,
    waiting    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (event_id, person_id)
);

-- Messages that carry a notice or a list (copies, reminders, list updates),
-- by outbox id: a reply to one of them (收到, +1) is about that notice or
-- list, whatever else is open in the group.
CREATE TABLE notice_posts (
    outbox_id  BIGINT NOT NULL PRIMARY KEY,
    notice_id  BIGINT NOT NULL REFERENCES notices(id)
);
CREATE TABLE event_posts (
    outbox_id  BIGINT NOT NULL PRIMARY KEY,
    event_id   BIGINT NOT NULL REFERENCES events(id)
);
