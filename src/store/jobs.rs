//! The `jobs` table: scheduled one-off work (see [`crate::jobs`]).
//!
//! A runner takes one due job inside its own transaction
//! ([`take_due`]), performs the effect in that same transaction and marks it
//! done ([`finish`]). On PostgreSQL the selection uses `FOR UPDATE SKIP
//! LOCKED`, so a second replica skips a row another one is working on instead
//! of waiting for it or running it again; the row lock lasts until the commit
//! that also sets `done_at`. On SQLite the single writer serialises runners.
//! `leased_until` additionally marks the row as taken, for diagnostics and
//! for runners that work outside the job's transaction.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Conn, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    /// JSON, read by the job's handler.
    pub payload: String,
    pub run_at: i64,
    pub attempts: i64,
}

const COLUMNS: &str = "id, kind, payload, run_at, attempts";

fn from_row(row: &AnyRow) -> Result<Job> {
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        run_at: row.try_get("run_at")?,
        attempts: row.try_get("attempts")?,
    })
}

/// Schedule `kind` with `payload` (JSON) to run at `run_at_ms`.
pub async fn schedule(
    conn: &mut Conn,
    kind: &str,
    payload: &str,
    run_at_ms: i64,
    now_ms: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO jobs (kind, payload, run_at, created_at) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    )
    .bind(kind)
    .bind(payload)
    .bind(run_at_ms)
    .bind(now_ms)
    .fetch_one(conn)
    .await?)
}

/// Take the earliest due job (run_at ≤ now, not done, lease free) and lease
/// it until `lease_until_ms`. Call inside the transaction that will perform
/// the job and [`finish`] it.
pub async fn take_due(
    conn: &mut Conn,
    backend: Backend,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<Option<Job>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE done_at IS NULL AND run_at <= $1 \
         AND (leased_until IS NULL OR leased_until < $1) ORDER BY run_at, id LIMIT 1{lock}"
    )))
    .bind(now_ms)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(job) = row.as_ref().map(from_row).transpose()? else {
        return Ok(None);
    };
    sqlx::query("UPDATE jobs SET leased_until = $1, attempts = attempts + 1 WHERE id = $2")
        .bind(lease_until_ms)
        .bind(job.id)
        .execute(conn)
        .await?;
    Ok(Some(Job {
        attempts: job.attempts + 1,
        ..job
    }))
}

/// Mark a job done (in the transaction that performed it).
pub async fn finish(conn: &mut Conn, id: i64, now_ms: i64) -> Result<()> {
    sqlx::query("UPDATE jobs SET done_at = $1, leased_until = NULL WHERE id = $2")
        .bind(now_ms)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// After a failed attempt (its transaction rolled back): count it, keep the
/// error, and try again at `retry_at_ms` — or give up (`done_at` set, the
/// error kept) when `give_up`.
pub async fn failed(
    conn: &mut Conn,
    id: i64,
    error: &str,
    retry_at_ms: i64,
    give_up: bool,
    now_ms: i64,
) -> Result<()> {
    record_failure(conn, id, error, retry_at_ms, give_up.then_some(now_ms), 1).await
}

/// Keep a failed attempt's error, count it (`add` attempts), and set when
/// to try again — or that the job is given up (`done_at`).
async fn record_failure(
    conn: &mut Conn,
    id: i64,
    error: &str,
    retry_at_ms: i64,
    done_at: Option<i64>,
    add: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET attempts = attempts + $1, last_error = $2, run_at = $3, \
         leased_until = NULL, done_at = $4 WHERE id = $5",
    )
    .bind(add)
    .bind(error)
    .bind(retry_at_ms)
    .bind(done_at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancel pending jobs of `kind` whose payload is exactly `payload`.
pub async fn cancel(conn: &mut Conn, kind: &str, payload: &str, now_ms: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE jobs SET done_at = $1, last_error = 'cancelled' \
         WHERE kind = $2 AND payload = $3 AND done_at IS NULL",
    )
    .bind(now_ms)
    .bind(kind)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The earliest `run_at` of jobs not done, to know how long to sleep.
pub async fn next_due(conn: &mut Conn) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT MIN(run_at) FROM jobs WHERE done_at IS NULL")
            .fetch_one(conn)
            .await?,
    )
}

/// Jobs not done yet, by kind (tests and diagnostics).
pub async fn pending(conn: &mut Conn) -> Result<Vec<Job>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE done_at IS NULL ORDER BY run_at, id"
    )))
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// `(attempts, done, last_error)` of one job.
pub async fn state(conn: &mut Conn, id: i64) -> Result<Option<(i64, bool, Option<String>)>> {
    let row = sqlx::query("SELECT attempts, done_at, last_error FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        Ok((
            r.try_get("attempts")?,
            r.try_get::<Option<i64>, _>("done_at")?.is_some(),
            r.try_get("last_error")?,
        ))
    })
    .transpose()
}

/// [`failed`] for a job whose attempt was already counted by a committed
/// [`take_due`] (the detached jobs of `crate::jobs`, worked on outside the
/// transaction that took them).
pub async fn failed_detached(
    conn: &mut Conn,
    id: i64,
    error: &str,
    retry_at_ms: i64,
    give_up: bool,
    now_ms: i64,
) -> Result<()> {
    record_failure(conn, id, error, retry_at_ms, give_up.then_some(now_ms), 0).await
}
