//! `tuanbot backup [FILE]` and the scheduled backups of `tuanbot run`.
//!
//! SQLite: `VACUUM INTO` a file beside the target, in one read
//! transaction, so the bot goes on writing meanwhile (WAL readers never
//! block the writer) and the copy is one consistent moment; the copy is
//! checked with `PRAGMA integrity_check` and only then renamed into place.
//! PostgreSQL: `pg_dump --format=custom` of the database's schema when
//! `pg_dump` is installed, else the exact command to run.
//!
//! Scheduled backups are jobs of kind `backup` run by the job runner
//! (`crate::jobs`, outside any transaction: see `jobs::DETACHED`): each
//! run writes `tuanbot-YYYY-MM-DDTHHMMSS.sqlite` (or `.dump`) into
//! `backup.dir`, named by the local time, removes all but the newest
//! `backup.keep` of such files, records the outcome (`kv_state`
//! `backup.last`, read by the doctor) and schedules the next run
//! `backup.every` later — an hour later after a failure.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{PgTarget, Target};
use crate::service::Env;
use crate::store::jobs::Job;
use crate::store::maintenance::{self, Counts};
use crate::store::{self, Backend, StoreError, kv};

/// What `backup` made.
#[derive(Debug, Clone, PartialEq)]
pub enum Made {
    /// A backup file; `counts` from the copy itself (SQLite).
    File {
        path: PathBuf,
        bytes: u64,
        counts: Option<Counts>,
    },
    /// `pg_dump` is not installed: the command that makes the backup.
    Command(String),
}

/// A backup that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the database file {0} does not exist")]
    NoDatabase(PathBuf),
    #[error("an in-memory database cannot be backed up")]
    Memory,
    #[error("{0} already exists")]
    Exists(PathBuf),
    #[error("the copy failed its integrity check: {0}")]
    Damaged(String),
    #[error("pg_dump failed: {0}")]
    PgDump(String),
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |error| BackupError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The file name of a backup taken at `now`: `tuanbot-2026-12-07T030000.sqlite`
/// (`.dump` for PostgreSQL), in local time.
pub fn file_name(backend: Backend, now: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let ext = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "dump",
    };
    format!("tuanbot-{}.{ext}", super::stamp(now, tz))
}

/// Whether `name` is one of the files [`file_name`] makes (the only files
/// [`prune`] ever removes).
pub fn is_backup_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("tuanbot-") else {
        return false;
    };
    let Some((stamp, ext)) = rest.split_once('.') else {
        return false;
    };
    matches!(ext, "sqlite" | "dump")
        && chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H%M%S").is_ok()
}

/// Back up the database at `url` into `dest` (which must not exist).
pub async fn backup(url: &str, dest: &Path) -> Result<Made, BackupError> {
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let target = Target::of(url).map_err(|e| BackupError::Other(e.to_string()))?;
    match target {
        Target::Memory => Err(BackupError::Memory),
        Target::Sqlite(db) => backup_sqlite(url, &db, dest).await,
        Target::Postgres(pg) => backup_postgres(&pg, dest).await,
    }
}

/// `FILE.partial`: where a backup is written before it is complete.
fn partial(dest: &Path) -> PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

async fn backup_sqlite(url: &str, db: &Path, dest: &Path) -> Result<Made, BackupError> {
    let Some(mut conn) = super::connect_existing(url)
        .await
        .map_err(|e| BackupError::Other(e.to_string()))?
    else {
        return Err(BackupError::NoDatabase(db.to_path_buf()));
    };
    let tmp = partial(dest);
    let _ = std::fs::remove_file(&tmp);
    let result = async {
        maintenance::vacuum_into(&mut conn, &tmp.to_string_lossy()).await?;
        let mut copy =
            <store::Conn as sqlx::Connection>::connect(&super::sqlite_url(&tmp, "rw")).await?;
        let problems = maintenance::integrity_problems(&mut copy).await?;
        let counts = maintenance::counts(&mut copy).await;
        sqlx::Connection::close(copy).await?;
        if let Some(p) = problems {
            return Err(BackupError::Damaged(p));
        }
        Ok(counts.ok())
    }
    .await;
    let _ = sqlx::Connection::close(conn).await;
    let counts = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let bytes = finish(&tmp, dest)?;
    Ok(Made::File {
        path: dest.to_path_buf(),
        bytes,
        counts,
    })
}

/// Flush `tmp` to disk and rename it to `dest`; its size.
fn finish(tmp: &Path, dest: &Path) -> Result<u64, BackupError> {
    let file = std::fs::File::open(tmp).map_err(io(tmp))?;
    file.sync_all().map_err(io(tmp))?;
    let bytes = file.metadata().map_err(io(tmp))?.len();
    drop(file);
    std::fs::rename(tmp, dest).map_err(io(dest))?;
    if let Some(dir) = dest.parent() {
        super::sync_dir(dir).map_err(io(dir))?;
    }
    Ok(bytes)
}

/// The schema a PostgreSQL URL works in (`public` unless the URL names one).
async fn pg_schema(pg: &PgTarget) -> Result<String, BackupError> {
    use sqlx::Connection;
    if let Some(s) = &pg.schema {
        return Ok(s.clone());
    }
    let mut conn = sqlx::PgConnection::connect(&pg.url).await?;
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut conn)
        .await?;
    let _ = conn.close().await;
    Ok(schema)
}

/// The `pg_dump` command line for `pg` into `file`.
pub fn pg_dump_args(pg: &PgTarget, schema: &str, file: &Path) -> Vec<String> {
    vec![
        "--format=custom".into(),
        "--no-owner".into(),
        format!("--schema={schema}"),
        format!("--file={}", file.display()),
        format!("--dbname={}", pg.libpq_url),
    ]
}

/// A command as an operator would type it (single quotes where needed),
/// with `PGPASSWORD=…` in front when the URL had a password.
pub fn shell_line(program: &str, args: &[String], password: bool) -> String {
    let quote = |a: &str| {
        if a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:@,+".contains(c))
        {
            a.to_string()
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    let mut line = String::new();
    if password {
        line.push_str("PGPASSWORD=… ");
    }
    line.push_str(program);
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    line
}

async fn backup_postgres(pg: &PgTarget, dest: &Path) -> Result<Made, BackupError> {
    let schema = pg_schema(pg).await?;
    let Some(pg_dump) = super::find_program("pg_dump") else {
        let args = pg_dump_args(pg, &schema, dest);
        return Ok(Made::Command(shell_line(
            "pg_dump",
            &args,
            pg.password.is_some(),
        )));
    };
    let tmp = partial(dest);
    let _ = std::fs::remove_file(&tmp);
    let out = run_pg_tool(&pg_dump, &pg_dump_args(pg, &schema, &tmp), pg).await?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(BackupError::PgDump(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let bytes = finish(&tmp, dest)?;
    Ok(Made::File {
        path: dest.to_path_buf(),
        bytes,
        counts: None,
    })
}

/// Run a PostgreSQL client tool with the password in `PGPASSWORD`.
pub async fn run_pg_tool(
    program: &Path,
    args: &[String],
    pg: &PgTarget,
) -> Result<std::process::Output, BackupError> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).kill_on_drop(true);
    if let Some(p) = &pg.password {
        cmd.env("PGPASSWORD", p);
    }
    cmd.output().await.map_err(io(program))
}

/// Remove all but the newest `keep` backups in `dir` (only files named as
/// [`file_name`] makes them); returns the removed ones.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_backup_name(n))
        .collect();
    // The names sort by time.
    names.sort();
    let excess = names.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for name in names.into_iter().take(excess) {
        let path = dir.join(name);
        std::fs::remove_file(&path)?;
        removed.push(path);
    }
    Ok(removed)
}

/// The newest backup in `dir`, if any, with its modification time.
pub fn newest(dir: &Path) -> Option<(PathBuf, std::time::SystemTime)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_backup_name(n))
        .collect();
    names.sort();
    let path = dir.join(names.pop()?);
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    Some((path, modified))
}

/// The outcome of the last scheduled backup (`kv_state` `backup.last`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Last {
    pub at_ms: i64,
    pub file: Option<String>,
    pub error: Option<String>,
}

const LAST_KEY: &str = "backup.last";

/// The last scheduled backup's outcome, if one ran.
pub async fn last(conn: &mut store::Conn) -> Result<Option<Last>, StoreError> {
    Ok(kv::get(conn, LAST_KEY)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok()))
}

/// At start-up (`tuanbot run`): with `backup.dir` set, make sure a backup
/// job waits — the first one at once, so an operator sees it work.
pub async fn ensure_scheduled(env: &Env) -> Result<(), StoreError> {
    if env.settings.backup.dir.is_none() {
        return Ok(());
    }
    let now = env.now();
    let every = interval(env);
    let mut tx = env.store.begin().await?;
    maintenance::ensure_backup_job(
        &mut tx,
        store::ms(now),
        store::ms(now + every),
        store::ms(now),
    )
    .await?;
    tx.commit().await
}

fn interval(env: &Env) -> chrono::Duration {
    env.settings
        .backup
        .interval()
        .unwrap_or(chrono::Duration::days(1))
}

/// The `backup` job (run outside any transaction, see `jobs::DETACHED`):
/// take a backup into `backup.dir`, prune, record the outcome, finish the
/// job and schedule the next, the last three in one transaction.
pub async fn run_job(env: &Env, job: Job, now: DateTime<Utc>) -> Result<(), StoreError> {
    let settings = &env.settings.backup;
    let outcome = match &settings.dir {
        None => None,
        Some(dir) => Some(scheduled(env, dir, settings.keep, now).await),
    };
    let mut tx = env.store.begin().await?;
    crate::store::jobs::finish(&mut tx, job.id, store::ms(now)).await?;
    if let Some(outcome) = outcome {
        let next = match &outcome {
            Ok(_) => now + interval(env),
            Err(_) => now + interval(env).min(chrono::Duration::hours(1)),
        };
        let last = match outcome {
            Ok(file) => {
                tracing::info!(file = %file.display(), "scheduled backup written");
                Last {
                    at_ms: store::ms(now),
                    file: Some(file.display().to_string()),
                    error: None,
                }
            }
            Err(error) => {
                tracing::error!(%error, "scheduled backup failed");
                Last {
                    at_ms: store::ms(now),
                    file: None,
                    error: Some(error),
                }
            }
        };
        let value = serde_json::to_string(&last)
            .map_err(|e| StoreError::Corrupt(format!("backup.last: {e}")))?;
        kv::set(&mut tx, LAST_KEY, &value).await?;
        let next = store::ms(next);
        maintenance::ensure_backup_job(&mut tx, next, next, store::ms(now)).await?;
    }
    tx.commit().await
}

/// One scheduled backup into `dir`, then the old ones removed.
async fn scheduled(
    env: &Env,
    dir: &Path,
    keep: usize,
    now: DateTime<Utc>,
) -> Result<PathBuf, String> {
    let name = file_name(env.store.backend(), now, env.tz);
    let dest = dir.join(name);
    match backup(&env.settings.database_url, &dest).await {
        Ok(Made::File { path, .. }) => {
            if let Err(e) = prune(dir, keep) {
                tracing::warn!(error = %e, dir = %dir.display(), "removing old backups failed");
            }
            Ok(path)
        }
        Ok(Made::Command(cmd)) => Err(format!(
            "pg_dump is not installed (Debian: apt-get install postgresql-client); the backup would be: {cmd}"
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_only_ours_are_pruned() {
        let t = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 6, 19, 0, 5).unwrap();
        let name = file_name(Backend::Sqlite, t, chrono_tz::Asia::Shanghai);
        assert_eq!(name, "tuanbot-2026-12-07T030005.sqlite");
        assert!(is_backup_name(&name));
        assert!(is_backup_name("tuanbot-2026-12-07T030005.dump"));
        for other in [
            "tuanbot.db",
            "tuanbot-2026-12-07T030005.sqlite.partial",
            "tuanbot-latest.sqlite",
            "tuanbot-2026-13-07T030005.sqlite",
            "notes-2026-12-07T030005.sqlite",
        ] {
            assert!(!is_backup_name(other), "{other}");
        }
        let dir = tempfile::tempdir().unwrap();
        for d in 1..=5 {
            std::fs::write(
                dir.path()
                    .join(format!("tuanbot-2026-12-0{d}T030000.sqlite")),
                "x",
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("keep-me.txt"), "x").unwrap();
        let removed = prune(dir.path(), 2).unwrap();
        assert_eq!(removed.len(), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "keep-me.txt",
                "tuanbot-2026-12-04T030000.sqlite",
                "tuanbot-2026-12-05T030000.sqlite"
            ]
        );
        assert_eq!(
            newest(dir.path()).unwrap().0,
            dir.path().join("tuanbot-2026-12-05T030000.sqlite")
        );
    }

    #[test]
    fn commands_are_quoted_for_a_shell() {
        let args = vec!["--file=/tmp/a b.dump".to_string(), "--schema=public".into()];
        assert_eq!(
            shell_line("pg_dump", &args, true),
            "PGPASSWORD=… pg_dump '--file=/tmp/a b.dump' --schema=public"
        );
    }
}
