-- Foundation: the org tree, people and chats, the audit log, the outbox and
-- the record of handled platform updates. Times are BIGINT milliseconds since
-- the Unix epoch, UTC: the one time type both backends read the same way.

CREATE TABLE orgs (
    id          INTEGER PRIMARY KEY,
    full_name   TEXT    NOT NULL UNIQUE,
    short_name  TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    parent_id   BIGINT  REFERENCES orgs(id),
    secretary   TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX orgs_parent ON orgs(parent_id);

-- Other names people use for an org ("一中" for 县一中团委). Matching is by
-- exact alias; the full and short names need no alias row.
CREATE TABLE org_aliases (
    alias   TEXT   PRIMARY KEY,
    org_id  BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE
);

-- A person is one account on one platform. Role and org are per person.
CREATE TABLE people (
    id            INTEGER PRIMARY KEY,
    platform      TEXT   NOT NULL,
    user_id       TEXT   NOT NULL,
    display_name  TEXT   NOT NULL,
    org_id        BIGINT REFERENCES orgs(id),
    role          TEXT   NOT NULL DEFAULT 'member',
    locale        TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (platform, user_id)
);
CREATE INDEX people_org ON people(org_id);

-- A chat the bot is in. A group is bound to one org, or is committee-wide
-- (the 团干联盟 group), or is not bound yet.
CREATE TABLE chats (
    id              INTEGER PRIMARY KEY,
    platform        TEXT   NOT NULL,
    chat_id         TEXT   NOT NULL,
    title           TEXT,
    kind            TEXT   NOT NULL,
    org_id          BIGINT REFERENCES orgs(id),
    committee_wide  BIGINT NOT NULL DEFAULT 0,
    active          BIGINT NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (platform, chat_id)
);
CREATE INDEX chats_org ON chats(org_id);

-- Every state change writes one row here, in the same transaction.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         BIGINT NOT NULL,
    platform   TEXT   NOT NULL,
    actor      TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    entity     TEXT   NOT NULL,
    entity_id  TEXT,
    detail     TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_entity ON audit_log(entity, entity_id);

-- Every message the bot sends is first a row here, written in the transaction
-- of the change that caused it. status: pending → sent | failed | dropped.
CREATE TABLE outbox (
    id                   INTEGER PRIMARY KEY,
    platform             TEXT   NOT NULL,
    chat_id              TEXT   NOT NULL,
    payload              TEXT   NOT NULL,
    coalesce_key         TEXT,
    status               TEXT   NOT NULL DEFAULT 'pending',
    attempts             BIGINT NOT NULL DEFAULT 0,
    not_before           BIGINT NOT NULL,
    leased_until         BIGINT,
    created_at           BIGINT NOT NULL,
    sent_at              BIGINT,
    platform_message_id  TEXT,
    last_error           TEXT
);
CREATE INDEX outbox_due ON outbox(platform, status, not_before);
CREATE INDEX outbox_coalesce ON outbox(coalesce_key, status);
CREATE INDEX outbox_chat ON outbox(platform, chat_id, status, id);

-- Update ids already handled, so a replayed update is not handled twice.
CREATE TABLE processed_updates (
    platform    TEXT   NOT NULL,
    update_id   TEXT   NOT NULL,
    handled_at  BIGINT NOT NULL,
    PRIMARY KEY (platform, update_id)
);

-- A question the bot asked and is waiting for ("回复「我是 1」"), one per
-- person per chat; the next matching answer consumes it.
CREATE TABLE pending_actions (
    platform    TEXT   NOT NULL,
    user_id     TEXT   NOT NULL,
    chat_id     TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    payload     TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (platform, user_id, chat_id)
);

-- Small per-platform cursors (e.g. Telegram's last update_id).
CREATE TABLE kv_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
