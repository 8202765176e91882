//! `tuanbot restore FILE [--force]`: put a backup in place of the
//! configured database.
//!
//! It refuses while any tuanbot process uses the database (see
//! [`super::lock`]), refuses a file that is not a tuanbot backup, is
//! damaged, or comes from a newer tuanbot, migrates the backup forward to
//! this binary's schema, and reports what it holds.
//!
//! Nothing is destroyed: the database it replaces is kept beside it
//! (SQLite: `FILE.before-restore-…` together with its WAL, so every
//! transaction committed in it is still there; PostgreSQL: the schema
//! renamed to `SCHEMA_before_restore_…`). When that database is intact and
//! holds changes newer than the backup's newest, the restore is refused
//! unless `--force`: after a crash or a power cut the database is not
//! damaged — SQLite replays its WAL when it is opened — and restoring would
//! only lose the newer work. A WAL belongs to its own database file; it
//! cannot be replayed onto a backup.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sqlx::Connection;

use super::backup::{BackupError, run_pg_tool, shell_line};
use super::lock::{self, LockError};
use super::schema::{self, Status};
use super::{PgTarget, Target};
use crate::store::maintenance::{self, Counts};
use crate::store::{self, Backend, Store, StoreError};

/// A restore done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The backup's schema version, and this binary's after migrating it.
    pub from_version: i64,
    pub to_version: i64,
    pub counts: Counts,
    /// Where the replaced database was kept (a file, or a PostgreSQL
    /// schema), if there was one.
    pub kept: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("a tuanbot process is using the database")]
    InUse,
    #[error("{0}: no such file")]
    NotFound(PathBuf),
    #[error("{0} is not a tuanbot backup")]
    NotTuanbot(PathBuf),
    #[error("{file} is a {kind} backup; the database is {target}")]
    WrongKind {
        file: PathBuf,
        kind: &'static str,
        target: &'static str,
    },
    #[error("the backup holds schema {dump}; the database URL uses schema {target}")]
    WrongSchema { dump: String, target: String },
    #[error("the backup was made by a newer tuanbot (migration {0})")]
    Newer(String),
    #[error("the backup's migrations {0} differ from this tuanbot's")]
    Modified(String),
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    /// The current database is intact and newer than the backup.
    #[error("the current database has newer changes than the backup")]
    CurrentIsNewer {
        current_ms: i64,
        backup_ms: Option<i64>,
    },
    /// `pg_restore` is not installed: the commands that restore.
    #[error("pg_restore is not installed")]
    NeedsTool(Vec<String>),
    #[error("pg_restore failed: {0}")]
    PgRestore(String),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

impl From<BackupError> for RestoreError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Io { path, error } => RestoreError::Io { path, error },
            BackupError::Sqlx(e) => RestoreError::Sqlx(e),
            BackupError::Store(e) => RestoreError::Store(e),
            other => RestoreError::Other(other.to_string()),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |error| RestoreError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// What kind of file a backup is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    PgDump,
}

fn sniff(file: &Path) -> Result<Option<Kind>, RestoreError> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut f = std::fs::File::open(file).map_err(io(file))?;
    let n = f.read(&mut head).map_err(io(file))?;
    Ok(if head[..n].starts_with(b"SQLite format 3\0") {
        Some(Kind::Sqlite)
    } else if head[..n].starts_with(b"PGDMP") {
        Some(Kind::PgDump)
    } else {
        None
    })
}

/// Restore `file` into the database at `url`. `force` replaces a database
/// with newer changes than the backup (it is kept all the same).
pub async fn restore(
    url: &str,
    file: &Path,
    force: bool,
    now: DateTime<Utc>,
) -> Result<Restored, RestoreError> {
    sqlx::any::install_default_drivers();
    let target = Target::of(url).map_err(|e| RestoreError::Other(e.to_string()))?;
    let _held = match lock::exclusive(url).await {
        Ok(h) => h,
        Err(LockError::Busy) => return Err(RestoreError::InUse),
        Err(e) => return Err(RestoreError::Other(e.to_string())),
    };
    if !file.is_file() {
        return Err(RestoreError::NotFound(file.to_path_buf()));
    }
    let kind = sniff(file)?.ok_or_else(|| RestoreError::NotTuanbot(file.to_path_buf()))?;
    let stamp = now.format("%Y%m%d%H%M%S").to_string();
    match (target, kind) {
        (Target::Sqlite(db), Kind::Sqlite) => restore_sqlite(&db, file, force, &stamp).await,
        (Target::Postgres(pg), Kind::PgDump) => restore_postgres(&pg, file, force, &stamp).await,
        (Target::Memory, _) => Err(RestoreError::Other(
            "an in-memory database cannot be restored into".into(),
        )),
        (t, k) => Err(RestoreError::WrongKind {
            file: file.to_path_buf(),
            kind: match k {
                Kind::Sqlite => "SQLite",
                Kind::PgDump => "PostgreSQL",
            },
            target: match t.backend() {
                Backend::Sqlite => "SQLite",
                Backend::Postgres => "PostgreSQL",
            },
        }),
    }
}

/// A file's name with `suffix` added (`tuanbot.db` → `tuanbot.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Check a backup's migrations against this binary's.
fn check_status(status: &Status) -> Result<(), RestoreError> {
    let names = |v: &[i64]| {
        v.iter()
            .map(|v| schema::version_name(*v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !status.unknown.is_empty() {
        return Err(RestoreError::Newer(names(&status.unknown)));
    }
    if !status.modified.is_empty() {
        return Err(RestoreError::Modified(names(&status.modified)));
    }
    Ok(())
}

/// Whether the database being replaced must be kept rather than replaced:
/// it has changes newer than the backup's newest.
fn current_is_newer(
    current_ms: Option<i64>,
    backup_ms: Option<i64>,
    force: bool,
) -> Result<(), RestoreError> {
    let Some(current_ms) = current_ms else {
        return Ok(());
    };
    if force || backup_ms.is_some_and(|b| b >= current_ms) {
        return Ok(());
    }
    Err(RestoreError::CurrentIsNewer {
        current_ms,
        backup_ms,
    })
}

async fn restore_sqlite(
    db: &Path,
    file: &Path,
    force: bool,
    stamp: &str,
) -> Result<Restored, RestoreError> {
    let tmp = with_suffix(db, ".restoring");
    for leftover in [
        tmp.clone(),
        with_suffix(&tmp, "-wal"),
        with_suffix(&tmp, "-shm"),
    ] {
        let _ = std::fs::remove_file(leftover);
    }
    std::fs::copy(file, &tmp).map_err(io(&tmp))?;
    let result = prepare_sqlite(db, file, &tmp, force).await;
    let (from_version, counts) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // Keep the database being replaced, with its WAL and so every
    // transaction committed in it.
    let mut kept = None;
    if db.exists() {
        let aside = with_suffix(db, &format!(".before-restore-{stamp}"));
        std::fs::rename(db, &aside).map_err(io(db))?;
        let wal = with_suffix(db, "-wal");
        if wal.exists() {
            std::fs::rename(&wal, with_suffix(&aside, "-wal")).map_err(io(&wal))?;
        }
        // The shared-memory index is rebuilt from the WAL when opened.
        let _ = std::fs::remove_file(with_suffix(db, "-shm"));
        kept = Some(aside.display().to_string());
    }
    std::fs::rename(&tmp, db).map_err(io(db))?;
    if let Some(dir) = db.parent() {
        super::sync_dir(dir).map_err(io(dir))?;
    }
    Ok(Restored {
        from_version,
        to_version: schema::latest(Backend::Sqlite),
        counts,
        kept,
    })
}

/// Check the copy of the backup at `tmp`, compare it with the current
/// database `db`, migrate it. Returns its version before migrating and
/// its counts after.
async fn prepare_sqlite(
    db: &Path,
    file: &Path,
    tmp: &Path,
    force: bool,
) -> Result<(i64, Counts), RestoreError> {
    let mut conn = store::Conn::connect(&super::sqlite_url(tmp, "rw")).await?;
    if let Some(p) = maintenance::integrity_problems(&mut conn).await? {
        return Err(RestoreError::Damaged(p));
    }
    let Some(applied) = maintenance::applied_migrations(&mut conn, Backend::Sqlite).await? else {
        return Err(RestoreError::NotTuanbot(file.to_path_buf()));
    };
    let status = Status::of(&applied, Backend::Sqlite);
    check_status(&status)?;
    let backup_newest = maintenance::newest_change(&mut conn).await?;
    conn.close().await?;
    if db.exists() {
        // A damaged database is replaced without asking; an intact one
        // only when it has nothing newer than the backup.
        let mut current = store::Conn::connect(&super::sqlite_url(db, "ro")).await?;
        let intact = maintenance::integrity_problems(&mut current)
            .await
            .is_ok_and(|p| p.is_none());
        let newest = maintenance::newest_change(&mut current)
            .await
            .ok()
            .flatten();
        let _ = current.close().await;
        if intact {
            current_is_newer(newest, backup_newest, force)?;
        }
    }
    let url = super::sqlite_url(tmp, "rw");
    let migrated = Store::open(&url, "full").await?;
    let counts = {
        let mut conn = migrated.conn().await?;
        maintenance::counts(&mut conn).await?
    };
    migrated.close().await;
    // Fold the WAL of the migration into the file, so the file alone is
    // the database when it is renamed into place.
    let mut conn = store::Conn::connect(&url).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let _ = std::fs::remove_file(with_suffix(tmp, "-wal"));
    let _ = std::fs::remove_file(with_suffix(tmp, "-shm"));
    Ok((status.version(), counts))
}

/// The schema a custom-format dump creates (`pg_restore --list`).
fn dump_schema(list: &str) -> Option<String> {
    // "6; 2615 78464 SCHEMA - zz_t postgres"
    list.lines().filter(|l| !l.starts_with(';')).find_map(|l| {
        let t: Vec<&str> = l.split_whitespace().collect();
        (t.get(3) == Some(&"SCHEMA")).then(|| t.get(5).map(|s| s.to_string()))?
    })
}

/// `(version, checksum)` rows of `_sqlx_migrations` in a dump's data, as
/// `pg_restore --data-only --table=_sqlx_migrations --file=-` prints them
/// (COPY text: tab-separated, `\\x…` hex for the checksum).
fn dump_migrations(sql: &str) -> Option<Vec<(i64, Vec<u8>)>> {
    let mut lines = sql.lines();
    let header = lines.find(|l| l.starts_with("COPY ") && l.contains("_sqlx_migrations"))?;
    let cols: Vec<&str> = header
        .split_once('(')?
        .1
        .split_once(')')?
        .0
        .split(',')
        .map(str::trim)
        .collect();
    let at = |name: &str| cols.iter().position(|c| *c == name);
    let (v, ok, sum) = (at("version")?, at("success")?, at("checksum")?);
    let mut out = Vec::new();
    for line in lines.take_while(|l| *l != "\\.") {
        let f: Vec<&str> = line.split('\t').collect();
        if f.get(ok) != Some(&"t") {
            continue;
        }
        let version = f.get(v)?.parse().ok()?;
        let checksum = hex::decode(f.get(sum)?.trim_start_matches("\\\\x")).ok()?;
        out.push((version, checksum));
    }
    Some(out)
}

async fn pg_schema_exists(
    conn: &mut sqlx::PgConnection,
    schema: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(conn)
        .await
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn restore_postgres(
    pg: &PgTarget,
    file: &Path,
    force: bool,
    stamp: &str,
) -> Result<Restored, RestoreError> {
    let mut admin = sqlx::PgConnection::connect(&pg.url).await?;
    let target_schema = match &pg.schema {
        Some(s) => s.clone(),
        None => {
            sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(&mut admin)
                .await?
        }
    };
    let Some(pg_restore) = super::find_program("pg_restore") else {
        let aside = format!("{target_schema}_before_restore_{stamp}");
        return Err(RestoreError::NeedsTool(vec![
            format!(
                "psql {} -c 'ALTER SCHEMA {} RENAME TO {aside}'",
                pg.libpq_url,
                ident(&target_schema)
            ),
            shell_line("pg_restore", &restore_args(pg, file), pg.password.is_some()),
            "tuanbot migrate".into(),
        ]));
    };
    let list = run_pg_tool(
        &pg_restore,
        &["--list".into(), file.display().to_string()],
        pg,
    )
    .await?;
    let dump_schema = dump_schema(&String::from_utf8_lossy(&list.stdout))
        .ok_or_else(|| RestoreError::NotTuanbot(file.to_path_buf()))?;
    if dump_schema != target_schema {
        return Err(RestoreError::WrongSchema {
            dump: dump_schema,
            target: target_schema,
        });
    }
    let data = run_pg_tool(
        &pg_restore,
        &[
            "--data-only".into(),
            "--table=_sqlx_migrations".into(),
            "--file=-".into(),
            file.display().to_string(),
        ],
        pg,
    )
    .await?;
    if !data.status.success() {
        return Err(RestoreError::Damaged(
            String::from_utf8_lossy(&data.stderr).trim().to_string(),
        ));
    }
    let applied = dump_migrations(&String::from_utf8_lossy(&data.stdout))
        .filter(|a| !a.is_empty())
        .ok_or_else(|| RestoreError::NotTuanbot(file.to_path_buf()))?;
    let status = Status::of(&applied, Backend::Postgres);
    check_status(&status)?;

    // Keep the current schema aside, restore, migrate; put it back if
    // anything fails or it turns out to be newer.
    let aside = format!("{target_schema}_before_restore_{stamp}");
    let existed = pg_schema_exists(&mut admin, &target_schema).await?;
    let current = if existed {
        let mut store_conn = store::Conn::connect(&pg.url).await?;
        let tables = maintenance::tables(&mut store_conn, Backend::Postgres).await?;
        let newest = if tables.iter().any(|t| t == "audit_log") {
            maintenance::newest_change(&mut store_conn)
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        let _ = store_conn.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER SCHEMA {} RENAME TO {}",
            ident(&target_schema),
            ident(&aside)
        )))
        .execute(&mut admin)
        .await?;
        newest
    } else {
        None
    };
    let out = run_pg_tool(&pg_restore, &restore_args(pg, file), pg).await?;
    if !out.status.success() {
        undo(&mut admin, &target_schema, &aside, existed).await?;
        return Err(RestoreError::PgRestore(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let restored = async {
        let store = Store::open(&pg.url, "full").await?;
        let mut conn = store.conn().await?;
        let counts = maintenance::counts(&mut conn).await?;
        drop(conn);
        store.close().await;
        Ok::<Counts, StoreError>(counts)
    }
    .await;
    let counts = match restored {
        Ok(c) => c,
        Err(e) => {
            undo(&mut admin, &target_schema, &aside, existed).await?;
            return Err(e.into());
        }
    };
    if let Err(e) = current_is_newer(current, counts.newest_change_ms, force) {
        undo(&mut admin, &target_schema, &aside, existed).await?;
        return Err(e);
    }
    let _ = admin.close().await;
    Ok(Restored {
        from_version: status.version(),
        to_version: schema::latest(Backend::Postgres),
        counts,
        kept: existed.then_some(aside),
    })
}

/// Put the schema kept aside back in place of a restore that did not go
/// through.
async fn undo(
    admin: &mut sqlx::PgConnection,
    schema: &str,
    aside: &str,
    existed: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        ident(schema)
    )))
    .execute(&mut *admin)
    .await?;
    if existed {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER SCHEMA {} RENAME TO {}",
            ident(aside),
            ident(schema)
        )))
        .execute(&mut *admin)
        .await?;
    }
    Ok(())
}

fn restore_args(pg: &PgTarget, file: &Path) -> Vec<String> {
    vec![
        "--single-transaction".into(),
        "--exit-on-error".into(),
        "--no-owner".into(),
        format!("--dbname={}", pg.libpq_url),
        file.display().to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_dumps_schema_and_migrations() {
        let list = ";\n; Archive created at 2026-12-07\n;\n6; 2615 78464 SCHEMA - t_1 postgres\n216; 1259 78466 TABLE t_1 a postgres\n";
        assert_eq!(dump_schema(list).as_deref(), Some("t_1"));
        assert_eq!(dump_schema("216; 1259 78466 TABLE t_1 a postgres\n"), None);
        let sql = "SET x = 1;\nCOPY t_1._sqlx_migrations (version, description, installed_on, success, checksum, execution_time) FROM stdin;\n1\tfoundation\t2026-12-07 00:00:00+00\tt\t\\\\x0a0b\t123\n2\tbroken\t2026-12-07 00:00:00+00\tf\t\\\\x00\t1\n\\.\n";
        assert_eq!(dump_migrations(sql), Some(vec![(1, vec![0x0a, 0x0b])]));
        assert_eq!(dump_migrations("SET x = 1;\n"), None);
    }
}
