//! The only place with SQL. One set of portable queries (`$1` placeholders,
//! `ON CONFLICT`, `RETURNING`) runs on SQLite and PostgreSQL through sqlx's
//! `Any` driver; where the dialects differ, the difference stays in here.
//!
//! Functions take `&mut AnyConnection`, so callers pass a transaction
//! (`&mut *tx`) and every change of one command commits or rolls back whole.

pub mod activities;
pub mod attachments;
pub mod audit;
pub mod chats;
pub mod db;
pub mod events;
pub mod failed;
pub mod faq;
pub mod jobs;
pub mod kv;
pub mod maintenance;
pub mod members;
pub mod notices;
pub mod orgs;
pub mod outbox;
pub mod pending;
pub mod people;
pub mod qqbot;
pub mod reports;
pub mod updates;
pub mod web;
pub mod wishes;

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use sqlx::AnyConnection as Conn;

/// Errors from the store. A constraint violation the services expect is
/// handled there; anything else is a bug, bad data, or an outage, and the
/// three are kept apart: an outage ([`StoreError::Unavailable`]) is waited
/// out and tried again, never held against the update that met it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
    /// From the direct SQLite connection of the claim writer ([`db::DirectTx`]).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database can't be reached or can't take the work now: the
    /// connection was refused or lost, no connection came within the
    /// pool's timeout, PostgreSQL is shutting down or out of connections,
    /// SQLite's file is locked by another process or its disk is full, or
    /// the transaction lost a deadlock. Nothing is wrong with the work
    /// itself: wait and do it again. The text names the cause.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The process is shutting down: the connection pool or the engine's
    /// writer has closed. The work was not done and should not be counted.
    #[error("shutting down: {0}")]
    Stopped(String),
}

impl StoreError {
    /// An outage or a shutdown: the work should be done again later, and
    /// must not count as a failure of the update (nor be answered as done).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Stopped(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::PoolClosed => StoreError::Stopped(e.to_string()),
            E::PoolTimedOut | E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed => {
                StoreError::Unavailable(e.to_string())
            }
            E::Database(db)
                if db.code().is_some_and(|c| {
                    let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
                    unavailable_code(&c, sqlite)
                }) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Sqlx(e),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(
                C::DatabaseBusy
                | C::DatabaseLocked
                | C::DiskFull
                | C::SystemIoFailure
                | C::CannotOpen
                | C::OutOfMemory,
            ) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Sqlite(e),
        }
    }
}

/// Whether a database error code means "not now" rather than "not this".
/// SQLite (`sqlite`): the primary result codes BUSY (5), LOCKED (6), NOMEM
/// (7), IOERR (10), FULL (13) and CANTOPEN (14), which sqlx reports as the
/// extended code's number. PostgreSQL: the SQLSTATEs of a lost or refused
/// connection (class 08), an operator or crash shutdown (57P01–57P03),
/// exhausted resources (class 53: disk full, out of memory, too many
/// connections), a serialization failure or a deadlock (40001, 40P01).
fn unavailable_code(code: &str, sqlite: bool) -> bool {
    if sqlite {
        return code
            .parse::<i64>()
            .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 7 | 10 | 13 | 14));
    }
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A pool plus what the code needs to know about its backend.
#[derive(Clone)]
pub struct Store {
    /// Reads (and migrations).
    pool: AnyPool,
    /// Where write transactions run. On SQLite a pool of one connection of
    /// its own: SQLite has one writer at a time anyway, and that
    /// connection's prepared statements stay warm. On PostgreSQL the same
    /// pool as reads.
    writer: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time; taking this lock before `BEGIN` turns
    /// what would be SQLITE_BUSY retries into a fair queue in the process.
    /// It also holds the direct connection of the claim writer
    /// ([`Store::begin_direct`]).
    write_lock: Option<Arc<Mutex<db::Writer>>>,
    /// Whether `write_lock` holds a direct connection.
    direct: bool,
}

/// A write transaction; holds the SQLite writer lock while open.
pub struct Tx {
    tx: Transaction<'static, Any>,
    _guard: Option<OwnedMutexGuard<db::Writer>>,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.tx
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.tx
    }
}

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static MIGRATE_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The migrations this binary carries for `backend` (`tuanbot migrate
/// --check`, restores and the upgrade tests read them).
pub fn migrator(backend: Backend) -> &'static sqlx::migrate::Migrator {
    match backend {
        Backend::Sqlite => &MIGRATE_SQLITE,
        Backend::Postgres => &MIGRATE_POSTGRES,
    }
}

impl Store {
    /// Connect to `sqlite://FILE` (created if missing) or `postgres://…`.
    /// `synchronous` is SQLite's pragma (`full` or `normal`).
    pub async fn connect(url: &str, synchronous: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let sync = if synchronous == "normal" {
            "NORMAL"
        } else {
            "FULL"
        };
        match backend {
            Backend::Postgres => {
                let pool = pool_options(backend, 10, sync)
                    .connect_with(url.parse()?)
                    .await?;
                Ok(Store {
                    writer: pool.clone(),
                    pool,
                    backend,
                    write_lock: None,
                    direct: false,
                })
            }
            Backend::Sqlite => {
                let url = sqlite_url(url);
                let options: AnyConnectOptions = url.parse()?;
                let pool = pool_options(backend, 4, sync)
                    .connect_with(options.clone())
                    .await?;
                // An in-memory database exists once per connection: reads
                // and writes must share the pool there, and there is no
                // direct connection; nor for a read-only file.
                let (writer, direct) = if url.contains(":memory:") || url.contains("mode=ro") {
                    (pool.clone(), db::Writer::none())
                } else {
                    let writer = pool_options(backend, 1, sync)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                        .connect_with(options)
                        .await?;
                    let file: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
                    (writer, db::Writer::open(file.get_filename(), sync)?)
                };
                Ok(Store {
                    pool,
                    writer,
                    backend,
                    direct: direct.direct.is_some(),
                    write_lock: Some(Arc::new(Mutex::new(direct))),
                })
            }
        }
    }

    /// Apply pending migrations for this backend.
    pub async fn migrate(&self) -> Result<()> {
        migrator(self.backend).run(&self.pool).await?;
        if let (true, Some(lock)) = (self.direct, &self.write_lock) {
            lock.lock().await.load_schema()?;
        }
        Ok(())
    }

    /// Connect and migrate: what every entry point does first.
    pub async fn open(url: &str, synchronous: &str) -> Result<Store> {
        let store = Store::connect(url, synchronous).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begin a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let tx = self.writer.begin().await?;
        Ok(Tx { tx, _guard: guard })
    }

    /// Whether [`Store::begin_direct`] gives a transaction.
    pub fn has_direct(&self) -> bool {
        self.direct
    }

    /// Begin a write transaction on the direct SQLite connection (see
    /// [`db`]): `None` on PostgreSQL and in-memory SQLite, where callers use
    /// [`Store::begin`]. Takes the same write lock as [`Store::begin`].
    pub async fn begin_direct(&self) -> Result<Option<db::DirectTx>> {
        let Some(lock) = &self.write_lock else {
            return Ok(None);
        };
        db::DirectTx::begin(lock.clone().lock_owned().await)
    }

    /// Copy the WAL back into the database file when the direct
    /// connection's commits have made it long (see [`db::Writer`]). The
    /// claim writer calls this after answering a group.
    pub async fn checkpoint_if_due(&self) -> Result<()> {
        if !self.direct {
            return Ok(());
        }
        let Some(lock) = &self.write_lock else {
            return Ok(());
        };
        lock.lock().await.checkpoint_if_due()
    }

    /// A connection for reads outside a transaction.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        Ok(self.pool.acquire().await?)
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// The pool settings of one backend: `max` connections; on SQLite WAL,
/// `synchronous`, foreign keys and a busy timeout on every connection, and
/// no liveness ping before handing out a local file's connection (one round
/// trip to its thread less per transaction).
fn pool_options(backend: Backend, max: u32, sync: &'static str) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(backend == Backend::Postgres)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA synchronous = {sync}")))
                        .await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                }
                Ok(())
            })
        })
}

/// Most bound values per statement in the multi-row and `IN (…)` queries.
/// sqlx binds each `$N` on SQLite by looking its name up in a list, so the
/// cost of a statement grows with the square of its parameters; groups of
/// this size keep that negligible while saving most round trips.
pub(crate) const MAX_BINDS: usize = 128;

/// `$from, $from+1, …`: the `n` placeholders of an `IN (…)` list, numbered
/// from `from` (1-based, as in every query of the store).
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 5);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&(from + i).to_string());
    }
    s
}

/// `($1, $2), ($3, $4), …`: `rows` tuples of `cols` placeholders, for a
/// multi-row `VALUES`.
pub(crate) fn row_placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(r * cols + 1, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Make sure a SQLite URL creates its file: add `mode=rwc` unless a mode is given.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Milliseconds since the epoch, the stored time format.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Back from stored milliseconds.
pub fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_from_bad_work() {
        let unavailable =
            |e: sqlx::Error| matches!(StoreError::from(e), StoreError::Unavailable(_));
        assert!(unavailable(sqlx::Error::PoolTimedOut));
        assert!(unavailable(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolClosed),
            StoreError::Stopped(_)
        ));
        assert!(!unavailable(sqlx::Error::RowNotFound));
        assert!(!unavailable(sqlx::Error::ColumnNotFound("x".into())));
        // PostgreSQL SQLSTATEs.
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "40001", "40P01",
        ] {
            assert!(unavailable_code(code, false), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22P02", "XX000"] {
            assert!(!unavailable_code(code, false), "{code}");
        }
        // SQLite result codes, extended ones included (BUSY_SNAPSHOT 517,
        // IOERR_FSYNC 1034).
        for code in ["5", "6", "517", "10", "1034", "13", "14"] {
            assert!(unavailable_code(code, true), "{code}");
        }
        for code in ["19", "2067", "1", "11"] {
            assert!(!unavailable_code(code, true), "{code}");
        }
        // The text names the cause, not "corrupt row".
        let e = StoreError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(
            e.to_string(),
            "database unavailable: pool timed out while waiting for an open connection"
        );
        assert!(e.is_transient());
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        assert!(matches!(StoreError::from(busy), StoreError::Unavailable(_)));
        let constraint = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        );
        assert!(matches!(
            StoreError::from(constraint),
            StoreError::Sqlite(_)
        ));
    }
}
