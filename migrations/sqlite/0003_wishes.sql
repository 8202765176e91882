-- Micro-wishes (微心愿): batches imported by staff, wishes numbered 1..N per
-- batch, claimed by orgs. The child's name and school are personal data of a
-- minor: only the service decides who sees them unmasked.

CREATE TABLE wish_batches (
    id               INTEGER PRIMARY KEY,
    name             TEXT   NOT NULL UNIQUE,
    total            BIGINT NOT NULL,
    -- Most wishes one org may hold (claimed + delivered); NULL = no limit.
    quota            BIGINT,
    -- draft → scheduled → published
    status           TEXT   NOT NULL DEFAULT 'draft',
    publish_at       BIGINT,
    platform         TEXT,
    chat_id          TEXT,
    published_at     BIGINT,
    -- Outbox id of the board message, edited as claims arrive.
    board_outbox_id  BIGINT,
    board_edit_at    BIGINT,
    -- Counters kept with every transition, so the board needs no scan.
    open_n           BIGINT NOT NULL DEFAULT 0,
    claimed_n        BIGINT NOT NULL DEFAULT 0,
    delivered_n      BIGINT NOT NULL DEFAULT 0,
    last_claim       TEXT,
    created_at       BIGINT NOT NULL
);

CREATE TABLE wishes (
    id             INTEGER PRIMARY KEY,
    batch_id       BIGINT NOT NULL REFERENCES wish_batches(id),
    no             BIGINT NOT NULL,
    school         TEXT   NOT NULL,
    grade          TEXT   NOT NULL,
    child          TEXT   NOT NULL,
    item           TEXT   NOT NULL,
    price_yuan     BIGINT,
    note           TEXT,
    -- open → claimed → delivered; revoked (by staff) at any state but delivered
    status         TEXT   NOT NULL DEFAULT 'open',
    org_id         BIGINT REFERENCES orgs(id),
    claimer_id     BIGINT REFERENCES people(id),
    claimed_at     BIGINT,
    delivered_at   BIGINT,
    proof_ref      TEXT,
    revoked_at     BIGINT,
    revoke_reason  TEXT,
    reminded_at    BIGINT,
    UNIQUE (batch_id, no)
);
CREATE INDEX wishes_org ON wishes(batch_id, org_id, status);

-- How many wishes of a batch an org holds. A claim increments it with a
-- conditional UPDATE (`held < quota`): on PostgreSQL the row lock makes
-- concurrent claims of one org queue and re-check, so a quota is never
-- exceeded; on SQLite the single writer gives the same.
CREATE TABLE wish_holdings (
    batch_id  BIGINT NOT NULL REFERENCES wish_batches(id),
    org_id    BIGINT NOT NULL REFERENCES orgs(id),
    held      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, org_id)
);
