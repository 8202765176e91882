-- Activities logged with /log: one row per activity, its counted things and
-- its photos. `date` is the local calendar date (YYYY-MM-DD) the activity took
-- place; `deleted_at` marks an /undo (kept for the audit trail).

CREATE TABLE activities (
    id               INTEGER PRIMARY KEY,
    org_id           BIGINT  NOT NULL REFERENCES orgs(id),
    person_id        BIGINT  REFERENCES people(id),
    date             TEXT    NOT NULL,
    category         TEXT    NOT NULL,
    title            TEXT    NOT NULL,
    participants     BIGINT,
    approx           BIGINT  NOT NULL DEFAULT 0,
    hours            DOUBLE PRECISION,
    location         TEXT,
    source_text      TEXT    NOT NULL,
    platform         TEXT    NOT NULL,
    chat_id          TEXT    NOT NULL,
    card_outbox_id   BIGINT,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    deleted_at       BIGINT
);
CREATE INDEX activities_org_date ON activities(org_id, date);
CREATE INDEX activities_date ON activities(date);
CREATE INDEX activities_person ON activities(person_id, created_at);
CREATE INDEX activities_card ON activities(card_outbox_id);

-- Every other count in the report ("宣传资料2000份"), summed by unit in /stats.
CREATE TABLE activity_quantities (
    id           INTEGER PRIMARY KEY,
    activity_id  BIGINT NOT NULL REFERENCES activities(id) ON DELETE CASCADE,
    count        DOUBLE PRECISION NOT NULL,
    unit         TEXT   NOT NULL,
    what         TEXT
);
CREATE INDEX activity_quantities_activity ON activity_quantities(activity_id);

CREATE TABLE activity_photos (
    id           INTEGER PRIMARY KEY,
    activity_id  BIGINT NOT NULL REFERENCES activities(id) ON DELETE CASCADE,
    file_ref     TEXT   NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX activity_photos_activity ON activity_photos(activity_id);
