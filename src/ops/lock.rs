//! The lock a process holds on its database while it uses it, so that
//! `tuanbot restore` (and `tuanbot copy` into it) refuse while the bot
//! runs, and the bot does not start in the middle of a restore.
//!
//! Every command that uses the database holds it *shared* (several
//! replicas, or the bot and an export, share it); a restore holds it
//! *exclusive*. The operating system or the database server releases it
//! when the process ends, however it ends (`kill -9` included), so there
//! is no stale heartbeat to wait out:
//!
//! - SQLite: an advisory lock (`flock`) on `FILE.lock` beside the database.
//! - PostgreSQL: an advisory lock on a connection of its own, keyed by the
//!   database and schema; it ends with that connection.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use sqlx::Connection;

use super::Target;

/// Held until dropped.
pub struct Held {
    _inner: Inner,
}

/// What keeps the lock: dropping it releases it.
enum Inner {
    None,
    File { _file: File },
    Pg { _conn: Box<sqlx::PgConnection> },
}

/// Why a lock was not given.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone holds it in a way that excludes us: a running bot (for an
    /// exclusive request) or a restore (for a shared one).
    #[error("the database is in use")]
    Busy,
    #[error("lock file {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("database lock: {0}")]
    Db(#[from] sqlx::Error),
}

/// The lock file of a SQLite database.
pub fn lock_path(db: &std::path::Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Hold the database at `url` shared: refused (`Busy`) while a restore
/// holds it.
pub async fn shared(url: &str) -> Result<Held, LockError> {
    take(url, false).await
}

/// Hold the database at `url` alone: refused (`Busy`) while any other
/// process uses it.
pub async fn exclusive(url: &str) -> Result<Held, LockError> {
    take(url, true).await
}

async fn take(url: &str, exclusive: bool) -> Result<Held, LockError> {
    let target = Target::of(url).map_err(|e| LockError::Io {
        path: PathBuf::from(url),
        error: std::io::Error::other(e.to_string()),
    })?;
    let inner = match target {
        Target::Memory => Inner::None,
        Target::Sqlite(db) => {
            let path = lock_path(&db);
            let io = |error| LockError::Io {
                path: path.clone(),
                error,
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io)?;
            let got = if exclusive {
                file.try_lock()
            } else {
                file.try_lock_shared()
            };
            match got {
                Ok(()) => Inner::File { _file: file },
                Err(TryLockError::WouldBlock) => return Err(LockError::Busy),
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        Target::Postgres(_) => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let (db, schema): (String, String) =
                sqlx::query_as("SELECT current_database()::text, current_schema()::text")
                    .fetch_one(&mut conn)
                    .await?;
            let key = pg_key(&db, &schema);
            let sql = if exclusive {
                "SELECT pg_try_advisory_lock($1)"
            } else {
                "SELECT pg_try_advisory_lock_shared($1)"
            };
            let got: bool = sqlx::query_scalar(sql)
                .bind(key)
                .fetch_one(&mut conn)
                .await?;
            if !got {
                return Err(LockError::Busy);
            }
            Inner::Pg {
                _conn: Box::new(conn),
            }
        }
    };
    Ok(Held { _inner: inner })
}

/// The advisory lock key of one database and schema (tests run many
/// schemas in one database side by side).
fn pg_key(db: &str, schema: &str) -> i64 {
    let digest = Sha256::digest(format!("tuanbot\0{db}\0{schema}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The shared hold of a command on the configured database. A restore or
/// copy that holds it alone is waited for a few seconds (a doctor's probe
/// holds it for a moment), then refused.
pub async fn for_command(settings: &crate::config::Settings) -> anyhow::Result<Held> {
    for _ in 0..20 {
        match shared(&settings.database_url).await {
            Ok(h) => return Ok(h),
            Err(LockError::Busy) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!(
        "{}",
        crate::i18n::tr(&settings.locale, "ops.lock_busy", &[])
    )
}
