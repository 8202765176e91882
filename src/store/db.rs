//! Statements that run on either kind of connection: sqlx's (both backends)
//! or, for SQLite's claim writer, a rusqlite connection driven from the
//! calling thread ([`DirectTx`]).
//!
//! Why two: sqlx runs every SQLite connection on a worker thread of its own,
//! so each statement is a round trip to that thread, which costs several
//! times the statement itself, and a group of claims needs some fifteen
//! statements (figures: ARCHITECTURE.md, "Performance notes"). The
//! batch path (`Engine::batch_run`, `service::run_batch` and everything they call: the claim run) is therefore
//! written once against [`Db`]; on SQLite the group-commit writer runs it on
//! [`DirectTx`], everything else keeps using sqlx. The SQL is the same text
//! on both (`$1` placeholders are named parameters to SQLite).
//!
//! A function of the claim path takes `&mut impl Db` and builds statements
//! with [`query`]; rows are read with [`Get::get`], which row mappers shared
//! with plain sqlx code use as well (it is implemented for `AnyRow` too).

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row as _};
use tokio::sync::OwnedMutexGuard;

use super::{Backend, Result, StoreError, Tx};

/// A value bound to a placeholder. Nulls keep their type (PostgreSQL needs
/// it to type `COALESCE($1, col)`).
#[derive(Debug, Clone)]
pub enum Value<'a> {
    Int(Option<i64>),
    Text(Option<Cow<'a, str>>),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(Some(Cow::Borrowed(v)))
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Some(Cow::Owned(v)))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Value::Text(v.map(Cow::Borrowed))
    }
}

/// A statement and its bound values, numbered `$1…` in bind order.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    sql: Cow<'a, str>,
    args: Vec<Value<'a>>,
}

/// Start a statement (the counterpart of `sqlx::query`).
pub fn query<'a>(sql: impl Into<Cow<'a, str>>) -> Query<'a> {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl<'a> Query<'a> {
    pub fn bind(mut self, v: impl Into<Value<'a>>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Every row it returns.
    pub async fn fetch_all(self, db: &mut (impl Db + ?Sized)) -> Result<Vec<Row>> {
        Ok(db.run(self, Want::Rows).await?.rows)
    }

    pub async fn fetch_optional(self, db: &mut (impl Db + ?Sized)) -> Result<Option<Row>> {
        Ok(db.run(self, Want::Rows).await?.rows.into_iter().next())
    }

    pub async fn fetch_one(self, db: &mut (impl Db + ?Sized)) -> Result<Row> {
        self.fetch_optional(db)
            .await?
            .ok_or(StoreError::Sqlx(sqlx::Error::RowNotFound))
    }

    /// Run it; returns the number of rows it changed.
    pub async fn execute(self, db: &mut (impl Db + ?Sized)) -> Result<u64> {
        Ok(db.run(self, Want::Changed).await?.changed)
    }
}

/// What a statement gave back.
#[derive(Default)]
pub struct Done {
    pub rows: Vec<Row>,
    pub changed: u64,
}

/// A connection the claim path can run on. Implemented for sqlx's
/// connection (and the wrappers callers hold: transactions, pooled
/// connections, [`Tx`]) and for [`DirectTx`].
pub trait Db: Send {
    fn backend(&self) -> Backend;
    fn run<'c>(
        &'c mut self,
        q: Query<'c>,
        want: Want,
    ) -> impl Future<Output = Result<Done>> + Send + 'c;
}

/// Whether a statement is run for its rows or for the number it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Rows,
    Changed,
}

impl Db for AnyConnection {
    fn backend(&self) -> Backend {
        if self.backend_name() == "SQLite" {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    async fn run<'c>(&'c mut self, q: Query<'c>, want: Want) -> Result<Done> {
        let mut sq = sqlx::query::<Any>(sqlx::AssertSqlSafe(q.sql.into_owned()));
        for v in q.args {
            sq = match v {
                Value::Int(v) => sq.bind(v),
                Value::Text(v) => sq.bind(v.map(Cow::into_owned)),
            };
        }
        Ok(match want {
            Want::Rows => Done {
                rows: sq
                    .fetch_all(self)
                    .await?
                    .into_iter()
                    .map(Row::Any)
                    .collect(),
                changed: 0,
            },
            Want::Changed => Done {
                rows: Vec::new(),
                changed: sq.execute(self).await?.rows_affected(),
            },
        })
    }
}

/// `Db` for the things that dereference to a sqlx connection.
macro_rules! db_by_deref {
    ($($t:ty),*) => {$(
        impl Db for $t {
            fn backend(&self) -> Backend {
                let conn: &AnyConnection = self;
                conn.backend()
            }
            fn run<'c>(
                &'c mut self,
                q: Query<'c>,
                want: Want,
            ) -> impl Future<Output = Result<Done>> + Send + 'c {
                let conn: &mut AnyConnection = self;
                conn.run(q, want)
            }
        }
    )*};
}

db_by_deref!(
    Tx,
    sqlx::Transaction<'_, Any>,
    sqlx::pool::PoolConnection<Any>
);

/// One row, from either kind of connection.
pub enum Row {
    Any(AnyRow),
    Direct(DirectRow),
}

/// A row read through rusqlite, owned.
#[derive(Debug)]
pub struct DirectRow {
    columns: Arc<[String]>,
    values: Vec<rusqlite::types::Value>,
}

/// Read a column by name, whatever the connection.
pub trait Get {
    fn get<T: Column>(&self, name: &str) -> Result<T>;
}

/// The column types the store reads.
pub trait Column: Sized {
    fn from_any(row: &AnyRow, name: &str) -> Result<Self>;
    fn from_value(v: &rusqlite::types::Value, name: &str) -> Result<Self>;
}

fn mismatch(name: &str, v: &rusqlite::types::Value) -> StoreError {
    StoreError::Corrupt(format!("column {name}: unexpected {:?}", v.data_type()))
}

impl Column for Option<i64> {
    fn from_any(row: &AnyRow, name: &str) -> Result<Self> {
        Ok(row.try_get(name)?)
    }
    fn from_value(v: &rusqlite::types::Value, name: &str) -> Result<Self> {
        match v {
            rusqlite::types::Value::Null => Ok(None),
            rusqlite::types::Value::Integer(i) => Ok(Some(*i)),
            other => Err(mismatch(name, other)),
        }
    }
}

impl Column for Option<String> {
    fn from_any(row: &AnyRow, name: &str) -> Result<Self> {
        Ok(row.try_get(name)?)
    }
    fn from_value(v: &rusqlite::types::Value, name: &str) -> Result<Self> {
        match v {
            rusqlite::types::Value::Null => Ok(None),
            rusqlite::types::Value::Text(s) => Ok(Some(s.clone())),
            other => Err(mismatch(name, other)),
        }
    }
}

impl Column for i64 {
    fn from_any(row: &AnyRow, name: &str) -> Result<Self> {
        Ok(row.try_get(name)?)
    }
    fn from_value(v: &rusqlite::types::Value, name: &str) -> Result<Self> {
        Option::<i64>::from_value(v, name)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {name} is NULL")))
    }
}

impl Column for String {
    fn from_any(row: &AnyRow, name: &str) -> Result<Self> {
        Ok(row.try_get(name)?)
    }
    fn from_value(v: &rusqlite::types::Value, name: &str) -> Result<Self> {
        Option::<String>::from_value(v, name)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {name} is NULL")))
    }
}

impl Get for AnyRow {
    fn get<T: Column>(&self, name: &str) -> Result<T> {
        T::from_any(self, name)
    }
}

impl Get for DirectRow {
    fn get<T: Column>(&self, name: &str) -> Result<T> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| StoreError::Sqlx(sqlx::Error::ColumnNotFound(name.to_string())))?;
        T::from_value(&self.values[i], name)
    }
}

impl Get for Row {
    fn get<T: Column>(&self, name: &str) -> Result<T> {
        match self {
            Row::Any(r) => Get::get(r, name),
            Row::Direct(r) => Get::get(r, name),
        }
    }
}

/// The SQLite connection the claim writer drives from its own thread, and
/// the lock every SQLite write transaction of the process takes first (see
/// [`super::Store::begin`]).
///
/// Checkpoints: SQLite copies the WAL back into the database file every
/// 1,000 pages, inside the COMMIT that crossed the mark, so everyone
/// waiting for that commit waits for the copy and the database file's
/// fsync too. The direct connection does not checkpoint in its commits.
/// Once its WAL holds [`CHECKPOINT_PAGES`], a thread of its own with its
/// own connection copies the WAL into the database file while the writer
/// goes on, again after each group the writer answers, so it stays a few
/// commits behind. When it catches up while the writer is idle, the next
/// transaction starts the WAL over from the beginning. Under a steady rush
/// it never quite catches up, so once the WAL holds [`RESTART_PAGES`] the
/// writer, after answering a group, copies the few pages the copier has not
/// and the WAL starts over: a WAL that only grows makes every commit slower,
/// and restarting it after every copy pauses the writer too often (the
/// measured costs, and why these thresholds: ARCHITECTURE.md, "Performance
/// notes"). See [`Store::checkpoint_if_due`]. sqlx's connections keep
/// SQLite's automatic checkpoints.
///
/// [`Store::checkpoint_if_due`]: super::Store::checkpoint_if_due
pub struct Writer {
    pub(super) direct: Option<rusqlite::Connection>,
    /// The WAL's length after the direct connection's last commit.
    wal_pages: i32,
    /// The copying half of the checkpoints, if its thread could start.
    copier: Option<Copier>,
}

/// WAL length (pages) from which the copier thread copies the WAL.
pub const CHECKPOINT_PAGES: i32 = 500;

/// WAL length (pages, 16 MB) at which the writer finishes the copy itself
/// so that the WAL starts over.
pub const RESTART_PAGES: i32 = 8 * CHECKPOINT_PAGES;

thread_local! {
    /// The WAL length after the last commit on this thread, from the
    /// direct connection's WAL hook (which runs inside COMMIT, on the
    /// committing thread).
    static WAL_PAGES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn note_wal_pages(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// What a checkpoint did.
#[derive(Debug, Clone, Copy)]
struct Checkpoint {
    /// Another connection was checkpointing: nothing was done.
    busy: bool,
    /// The WAL's length and how much of it is now in the database file.
    log: i64,
    copied: i64,
}

/// A PASSIVE checkpoint on `conn`.
fn checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<Checkpoint> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(Checkpoint {
            busy: r.get::<_, i64>(0)? != 0,
            log: r.get(1)?,
            copied: r.get(2)?,
        })
    })
}

/// The thread that copies the WAL into the database file while the writer
/// works (see [`Writer`]). It stops when the writer is dropped.
struct Copier {
    /// Holds at most one wake-up: nudges while a copy runs or is due add
    /// nothing.
    wake: std::sync::mpsc::SyncSender<()>,
}

impl Copier {
    fn start(conn: rusqlite::Connection) -> std::io::Result<Copier> {
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    let started = std::time::Instant::now();
                    match checkpoint(&conn) {
                        Ok(c) => tracing::debug!(
                            busy = c.busy,
                            log = c.log,
                            copied = c.copied,
                            us = started.elapsed().as_micros() as u64,
                            "WAL copied"
                        ),
                        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                    }
                }
            })?;
        Ok(Copier { wake })
    }

    /// Copy what has been committed so far: now, or after the copy that
    /// is running.
    fn nudge(&self) {
        let _ = self.wake.try_send(());
    }
}

impl Writer {
    /// A writer without a direct connection (PostgreSQL, in-memory SQLite).
    pub(super) fn none() -> Writer {
        Writer {
            direct: None,
            wal_pages: 0,
            copier: None,
        }
    }

    /// Read the schema into the direct connection now (after migrations),
    /// not in the first claim.
    pub(super) fn load_schema(&self) -> Result<()> {
        if let Some(conn) = &self.direct {
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Called by the writer after answering a group: when the WAL is long,
    /// set the copier going; when it is too long, finish the copy here so
    /// that the WAL starts over (see [`Writer`]).
    pub(super) fn checkpoint_if_due(&mut self) -> Result<()> {
        let Some(conn) = &self.direct else {
            return Ok(());
        };
        if self.wal_pages < CHECKPOINT_PAGES {
            return Ok(());
        }
        if let Some(copier) = &self.copier
            && self.wal_pages < RESTART_PAGES
        {
            copier.nudge();
            return Ok(());
        }
        // The copier is no longer nudged; should it still be copying, this
        // does nothing and the next group tries again.
        let started = std::time::Instant::now();
        let c = checkpoint(conn)?;
        tracing::debug!(
            busy = c.busy,
            log = c.log,
            copied = c.copied,
            us = started.elapsed().as_micros() as u64,
            "checkpoint"
        );
        if !c.busy {
            self.wal_pages = 0;
        }
        Ok(())
    }

    /// Open the direct connection to an existing SQLite file, set up like
    /// sqlx's connections (WAL, `synchronous`, foreign keys, busy timeout),
    /// and the copier's.
    pub(super) fn open(path: &std::path::Path, synchronous: &str) -> Result<Writer> {
        let open = || -> Result<rusqlite::Connection> {
            use rusqlite::OpenFlags;
            let conn = rusqlite::Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // Checkpoints sync by this too.
            conn.pragma_update(None, "synchronous", synchronous)?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            Ok(conn)
        };
        let conn = open()?;
        // The claim path's statements, with their chunk sizes, all stay
        // prepared.
        conn.set_prepared_statement_cache_capacity(256);
        // Replaces the automatic checkpoint (see above).
        conn.wal_hook(Some(note_wal_pages));
        let copier = match Copier::start(open()?) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "no WAL copier thread: the writer checkpoints alone");
                None
            }
        };
        Ok(Writer {
            direct: Some(conn),
            wal_pages: 0,
            copier,
        })
    }
}

/// A write transaction on the direct SQLite connection, holding the
/// process's SQLite write lock. Rolled back when dropped without
/// [`DirectTx::commit`].
pub struct DirectTx {
    guard: OwnedMutexGuard<Writer>,
    open: bool,
}

impl DirectTx {
    /// `BEGIN IMMEDIATE` on the direct connection under `guard`; `None`
    /// when there is no direct connection.
    pub(super) fn begin(guard: OwnedMutexGuard<Writer>) -> Result<Option<DirectTx>> {
        let Some(conn) = guard.direct.as_ref() else {
            return Ok(None);
        };
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Some(DirectTx { guard, open: true }))
    }

    fn conn(&self) -> &rusqlite::Connection {
        self.guard
            .direct
            .as_ref()
            .expect("a DirectTx exists only with a direct connection")
    }

    /// Commit; returns the WAL's length in pages afterwards.
    pub fn commit(mut self) -> Result<i32> {
        self.open = false;
        WAL_PAGES.with(|p| p.set(0));
        if let Err(e) = self.conn().execute_batch("COMMIT") {
            // A failed COMMIT may leave the transaction open (SQLITE_BUSY):
            // end it, so the connection is clean for the next one.
            if !self.conn().is_autocommit() {
                let _ = self.conn().execute_batch("ROLLBACK");
            }
            return Err(e.into());
        }
        let pages = WAL_PAGES.with(|p| p.get());
        self.guard.wal_pages = pages;
        Ok(pages)
    }

    pub fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.conn().execute_batch("ROLLBACK")?;
        Ok(())
    }

    /// Prepare (cached), bind by placeholder name, step to the end.
    fn run_now(&mut self, q: &Query<'_>, want: Want) -> Result<Done> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&q.sql)?;
        for i in 1..=stmt.parameter_count() {
            let n = stmt
                .parameter_name(i)
                .and_then(|name| name.strip_prefix('$'))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("placeholder {i} is not $N")))?;
            match q.args.get(n - 1) {
                Some(Value::Int(v)) => stmt.raw_bind_parameter(i, v)?,
                Some(Value::Text(v)) => stmt.raw_bind_parameter(i, v.as_deref())?,
                None => stmt.raw_bind_parameter(i, rusqlite::types::Null)?,
            }
        }
        let mut done = Done::default();
        if want == Want::Changed {
            done.changed = stmt.raw_execute()? as u64;
            return Ok(done);
        }
        let columns: Arc<[String]> = stmt.column_names().into_iter().map(String::from).collect();
        let n = columns.len();
        let mut rows = stmt.raw_query();
        while let Some(r) = rows.next()? {
            let values = (0..n)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<std::result::Result<_, _>>()?;
            done.rows.push(Row::Direct(DirectRow {
                columns: columns.clone(),
                values,
            }));
        }
        Ok(done)
    }
}

impl Drop for DirectTx {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn().execute_batch("ROLLBACK");
        }
    }
}

impl Db for DirectTx {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn run<'c>(
        &'c mut self,
        q: Query<'c>,
        want: Want,
    ) -> impl Future<Output = Result<Done>> + Send + 'c {
        std::future::ready(self.run_now(&q, want))
    }
}
