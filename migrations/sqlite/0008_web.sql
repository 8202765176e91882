-- The web dashboard: one-time sign-in links sent in a private chat, and the
-- browser sessions they open. Tokens and session ids are stored only as
-- SHA-256 hex digests; the secret itself exists only in the link / cookie.

-- A link is consumed at most once: `used_at` is set by a conditional UPDATE
-- (`used_at IS NULL AND expires_at > now`).
-- scope: 'staff' (the whole county) or 'cadre' (read-only, org_id).
CREATE TABLE web_links (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT   NOT NULL UNIQUE,
    person_id   BIGINT NOT NULL REFERENCES people(id),
    scope       TEXT   NOT NULL,
    org_id      BIGINT REFERENCES orgs(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- A signed-in browser. `csrf` is the per-session token every POST carries.
CREATE TABLE web_sessions (
    id            INTEGER PRIMARY KEY,
    session_hash  TEXT   NOT NULL UNIQUE,
    person_id     BIGINT NOT NULL REFERENCES people(id),
    scope         TEXT   NOT NULL,
    org_id        BIGINT REFERENCES orgs(id),
    csrf          TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);
