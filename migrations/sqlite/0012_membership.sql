-- Membership by approval and the retention of children's data in the outbox.
--
-- `people.org_id` keeps meaning "an approved member of that org": people who
-- were in an org before this migration stay members, untouched. Asking to
-- join (`我是 ORG`) writes a join request instead, pending until a cadre of
-- the org (or staff) decides; join codes and a roster are fast paths.

-- One request to join an org. status: pending → approved | rejected |
-- withdrawn (the person asked for another org, or was placed by staff).
-- A person has at most one pending request.
CREATE TABLE join_requests (
    id           INTEGER PRIMARY KEY,
    person_id    BIGINT NOT NULL REFERENCES people(id),
    org_id       BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    status       TEXT   NOT NULL DEFAULT 'pending',
    -- The org the person was in when asking (a move), if any.
    from_org_id  BIGINT REFERENCES orgs(id) ON DELETE SET NULL,
    -- The chat where they asked, to tell them the decision when they have
    -- no private chat with the bot.
    platform     TEXT   NOT NULL,
    chat_id      TEXT   NOT NULL,
    -- Their Telegram username when asking (a roster may name it).
    username     TEXT,
    -- A roster row of the org carries their name (but no account to prove it).
    on_roster    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    decided_at   BIGINT,
    decided_by   BIGINT REFERENCES people(id)
);
CREATE UNIQUE INDEX join_requests_one_open ON join_requests(person_id) WHERE status = 'pending';
CREATE INDEX join_requests_org ON join_requests(org_id, status);

-- The bot's messages that carry a join request (to a cadre privately, or in
-- a group), so that `同意` replying to one decides that request, and the
-- messages can be edited once it is decided. (Like notice_posts, no foreign
-- key to the outbox, so its rows can be pruned.)
CREATE TABLE join_request_posts (
    outbox_id   BIGINT PRIMARY KEY,
    request_id  BIGINT NOT NULL REFERENCES join_requests(id) ON DELETE CASCADE
);
CREATE INDEX join_request_posts_request ON join_request_posts(request_id);

-- One-time join codes from `/invite`: 24 hours, single use. Only a salted
-- SHA-256 of the code is kept; `used_at` is set by a guarded UPDATE.
CREATE TABLE join_codes (
    id          INTEGER PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    salt        TEXT   NOT NULL,
    code_hash   TEXT   NOT NULL,
    issued_by   BIGINT NOT NULL REFERENCES people(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    used_by     BIGINT REFERENCES people(id)
);
CREATE INDEX join_codes_org ON join_codes(org_id, expires_at);

-- The roster staff import: who belongs to which org. A row with a QQ number
-- or a Telegram username lets that account in on sight; a name alone only
-- marks a request as "on the roster" for the approver.
CREATE TABLE roster (
    id          INTEGER PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name        TEXT   NOT NULL,
    qq          TEXT,
    telegram    TEXT,
    role        TEXT   NOT NULL DEFAULT 'member',
    created_at  BIGINT NOT NULL
);
CREATE INDEX roster_org ON roster(org_id);
CREATE UNIQUE INDEX roster_qq ON roster(qq) WHERE qq IS NOT NULL;
CREATE UNIQUE INDEX roster_telegram ON roster(telegram) WHERE telegram IS NOT NULL;

-- Outbox rows whose text carries children's personal data (full wish
-- details) are marked when written; the scheduler blanks their text after
-- `privacy.outbox_retention_days`, keeping the row (id, status, platform
-- message id) so that exactly-once delivery and edits still hold.
ALTER TABLE outbox ADD COLUMN personal BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN redacted_at BIGINT;
CREATE INDEX outbox_personal ON outbox(created_at) WHERE personal = 1 AND redacted_at IS NULL;
