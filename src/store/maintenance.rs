//! SQL for operating the database rather than serving chats: what a
//! backup or restore reports, the migrations a database has seen, the
//! tables and columns a copy moves, the scheduled backup job. Used by
//! `crate::ops`.

use sqlx::Row;

use super::{Backend, Conn, Result, StoreError};

/// What a database holds, as an operator counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub orgs: i64,
    pub people: i64,
    /// Activities not taken back with /undo.
    pub activities: i64,
    pub wishes: i64,
    pub notices: i64,
    /// The time of the newest audit row (every change writes one), if any.
    pub newest_change_ms: Option<i64>,
}

pub async fn counts(conn: &mut Conn) -> Result<Counts> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM orgs) AS orgs, (SELECT COUNT(*) FROM people) AS people, \
         (SELECT COUNT(*) FROM activities WHERE deleted_at IS NULL) AS activities, \
         (SELECT COUNT(*) FROM wishes) AS wishes, (SELECT COUNT(*) FROM notices) AS notices, \
         (SELECT MAX(at) FROM audit_log) AS newest",
    )
    .fetch_one(conn)
    .await?;
    Ok(Counts {
        orgs: row.try_get("orgs")?,
        people: row.try_get("people")?,
        activities: row.try_get("activities")?,
        wishes: row.try_get("wishes")?,
        notices: row.try_get("notices")?,
        newest_change_ms: row.try_get("newest")?,
    })
}

/// The time of the newest audit row (every change writes one), if any;
/// readable at every schema version.
pub async fn newest_change(conn: &mut Conn) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT MAX(at) FROM audit_log")
        .fetch_one(conn)
        .await?)
}

/// The tables of this database (the current schema on PostgreSQL), by
/// name, without SQLite's own and without `_sqlx_migrations`.
pub async fn tables(conn: &mut Conn, backend: Backend) -> Result<Vec<String>> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name <> '_sqlx_migrations' ORDER BY table_name"
        }
    };
    Ok(sqlx::query_scalar(sql).fetch_all(conn).await?)
}

/// The stored kind of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

impl Kind {
    /// From a declared type of either backend (`BIGINT`, `INTEGER`,
    /// `DOUBLE PRECISION`, `TEXT`, `BLOB`/`bytea` …).
    pub fn of_declared(t: &str) -> Kind {
        let t = t.to_ascii_lowercase();
        if t.contains("int") {
            Kind::Int
        } else if t.contains("double") || t.contains("real") || t.contains("float") {
            Kind::Real
        } else if t.contains("blob") || t.contains("bytea") {
            Kind::Blob
        } else {
            Kind::Text
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

/// The columns of `table`, in their order.
pub async fn columns(conn: &mut Conn, backend: Backend, table: &str) -> Result<Vec<Column>> {
    let sql = match backend {
        Backend::Sqlite => "SELECT name, type FROM pragma_table_info($1) ORDER BY cid",
        Backend::Postgres => {
            "SELECT column_name::text AS name, data_type::text AS type \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
    };
    let rows = sqlx::query(sql).bind(table).fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            let t: String = r.try_get("type")?;
            Ok(Column {
                name: r.try_get("name")?,
                kind: Kind::of_declared(&t),
            })
        })
        .collect()
}

/// `(column, referenced table)` of each foreign key of `table`.
pub async fn foreign_keys(
    conn: &mut Conn,
    backend: Backend,
    table: &str,
) -> Result<Vec<(String, String)>> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT \"from\" AS col, \"table\" AS ref FROM pragma_foreign_key_list($1)"
        }
        Backend::Postgres => {
            "SELECT a.attname::text AS col, rt.relname::text AS ref FROM pg_constraint c \
             JOIN pg_class t ON t.oid = c.conrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             JOIN pg_class rt ON rt.oid = c.confrelid \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
             WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.relname = $1"
        }
    };
    let rows = sqlx::query(sql).bind(table).fetch_all(conn).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("col")?, r.try_get("ref")?)))
        .collect()
}

/// One stored value, whatever the backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Every row of `table`, the `columns` in order, ordered by the first
/// column (the primary key or its first part).
pub async fn rows(conn: &mut Conn, table: &str, columns: &[Column]) -> Result<Vec<Vec<Value>>> {
    let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY 1",
        names.join(", "),
        quoted(table)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    Ok(match c.kind {
                        Kind::Int => r.try_get::<Option<i64>, _>(i)?.map(Value::Int),
                        Kind::Real => r.try_get::<Option<f64>, _>(i)?.map(Value::Real),
                        Kind::Text => r.try_get::<Option<String>, _>(i)?.map(Value::Text),
                        Kind::Blob => r.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Blob),
                    }
                    .unwrap_or(Value::Null))
                })
                .collect()
        })
        .collect()
}

/// Insert `rows` (values in the order of `columns`) into `table`, several
/// rows per statement.
pub async fn insert_rows(
    conn: &mut Conn,
    table: &str,
    columns: &[Column],
    rows: &[Vec<Value>],
) -> Result<()> {
    if columns.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    let per_statement = (super::MAX_BINDS * 4 / columns.len()).max(1);
    for chunk in rows.chunks(per_statement) {
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            quoted(table),
            names.join(", "),
            super::row_placeholders(chunk.len(), columns.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            for (v, c) in row.iter().zip(columns) {
                q = match (v, c.kind) {
                    (Value::Int(i), _) => q.bind(*i),
                    (Value::Real(f), _) => q.bind(*f),
                    (Value::Text(s), _) => q.bind(s.clone()),
                    (Value::Blob(b), _) => q.bind(b.clone()),
                    // Nulls keep their column's type (PostgreSQL checks it).
                    (Value::Null, Kind::Int) => q.bind(None::<i64>),
                    (Value::Null, Kind::Real) => q.bind(None::<f64>),
                    (Value::Null, Kind::Text) => q.bind(None::<String>),
                    (Value::Null, Kind::Blob) => q.bind(None::<Vec<u8>>),
                };
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Set `column` of rows of `table` whose `key` is `id` (a copy fills
/// self-references after every row is in).
pub async fn set_int(
    conn: &mut Conn,
    table: &str,
    key: &str,
    id: &Value,
    column: &str,
    value: i64,
) -> Result<()> {
    let sql = format!(
        "UPDATE {} SET {} = $1 WHERE {} = $2",
        quoted(table),
        quoted(column),
        quoted(key)
    );
    let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value);
    let q = match id {
        Value::Int(i) => q.bind(*i),
        Value::Text(s) => q.bind(s.clone()),
        other => return Err(StoreError::Corrupt(format!("{table}: key {other:?}"))),
    };
    q.execute(conn).await?;
    Ok(())
}

/// Whether `table` has no rows.
pub async fn is_empty(conn: &mut Conn, table: &str) -> Result<bool> {
    let sql = format!("SELECT COUNT(*) FROM {}", quoted(table));
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(conn)
        .await?;
    Ok(n == 0)
}

/// PostgreSQL: move the identity sequence of `table.id` past the largest
/// id, so rows copied in with their ids are not given again. Nothing on
/// SQLite (its next id is always the largest plus one) or for a table
/// without one.
pub async fn advance_sequence(conn: &mut Conn, backend: Backend, table: &str) -> Result<()> {
    if backend == Backend::Sqlite {
        return Ok(());
    }
    let sql = format!(
        "SELECT setval(pg_get_serial_sequence($1, 'id'), MAX(id))::bigint FROM {}",
        quoted(table)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(table)
        .fetch_optional(conn)
        .await?;
    Ok(())
}

/// `"name"`, for the names read from the schema itself.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `(version, checksum)` of each migration applied to this database;
/// `None` when it has no migrations table (not a tuanbot database, or an
/// empty one).
pub async fn applied_migrations(
    conn: &mut Conn,
    backend: Backend,
) -> Result<Option<Vec<(i64, Vec<u8>)>>> {
    let has_table = match backend {
        Backend::Sqlite => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&mut *conn)
        .await?,
        Backend::Postgres => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
            )
            .fetch_one(&mut *conn)
            .await?
        }
    };
    if has_table == 0 {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("version")?, r.try_get("checksum")?)))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// SQLite's `PRAGMA integrity_check`: `None` when the file is sound, else
/// the first problems it names.
pub async fn integrity_problems(conn: &mut Conn) -> Result<Option<String>> {
    let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(conn)
        .await?;
    Ok(match lines.as_slice() {
        [ok] if ok == "ok" => None,
        other => Some(other.iter().take(5).cloned().collect::<Vec<_>>().join("; ")),
    })
}

/// SQLite: write a consistent copy of the database to `path` (`VACUUM
/// INTO`: one read transaction, so writers go on meanwhile; the copy is
/// compact and has no journal of its own).
pub async fn vacuum_into(conn: &mut Conn, path: &str) -> Result<()> {
    sqlx::query("VACUUM INTO $1")
        .bind(path)
        .execute(conn)
        .await?;
    Ok(())
}

/// The kind of the scheduled backup job.
pub const BACKUP_JOB: &str = "backup";

/// Make sure a backup job waits: one at `first_at_ms` when none does, and
/// one waiting beyond `latest_at_ms` is brought forward to it (the
/// interval was shortened). Several replicas may call this at once: the
/// unique index `jobs_one_backup` keeps it to one job.
pub async fn ensure_backup_job(
    conn: &mut Conn,
    first_at_ms: i64,
    latest_at_ms: i64,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (kind, payload, run_at, created_at) VALUES ($1, '{}', $2, $3) \
         ON CONFLICT (kind) WHERE kind = 'backup' AND done_at IS NULL DO NOTHING",
    )
    .bind(BACKUP_JOB)
    .bind(first_at_ms)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE jobs SET run_at = $1 WHERE kind = $2 AND done_at IS NULL AND run_at > $1")
        .bind(latest_at_ms)
        .bind(BACKUP_JOB)
        .execute(conn)
        .await?;
    Ok(())
}
