//! Platform update ids already handled.

use super::db::{Db, Get, query};
use super::{Conn, Result};
use crate::domain::Platform;

/// Days an update id is remembered (`processed_updates`) so that a
/// redelivered update is not handled twice. Telegram keeps undelivered
/// updates for 24 hours, and a OneBot implementation replays only what it
/// holds across a reconnect; the scheduler's slow sweep forgets older ids,
/// or the table would grow by every message of every group forever.
pub const KEEP_UPDATE_IDS_DAYS: i64 = 7;

/// Record `update_id` as handled. Returns false when it already was, in which
/// case the caller must not handle it again. Runs inside the handling
/// transaction, so a crash before commit leaves the update unhandled.
pub async fn mark(
    conn: &mut impl Db,
    platform: Platform,
    update_id: &str,
    now_ms: i64,
) -> Result<bool> {
    let fresh = mark_many(conn, &[(platform, update_id, now_ms)]).await?;
    Ok(fresh.first().copied().unwrap_or(false))
}

/// [`mark`] for several updates in one statement: `(platform, update id,
/// handled at)` each; returns, in the same order, whether each is new. An id
/// given twice is new only the first time.
pub async fn mark_many(conn: &mut impl Db, updates: &[(Platform, &str, i64)]) -> Result<Vec<bool>> {
    let mut inserted: std::collections::HashSet<(String, String)> = Default::default();
    for chunk in updates.chunks(super::MAX_BINDS / 3) {
        let sql = format!(
            "INSERT INTO processed_updates (platform, update_id, handled_at) VALUES {} \
             ON CONFLICT (platform, update_id) DO NOTHING RETURNING platform, update_id",
            super::row_placeholders(chunk.len(), 3)
        );
        let mut q = query(sql);
        for (platform, id, at) in chunk {
            q = q.bind(platform.as_str()).bind(*id).bind(*at);
        }
        for row in q.fetch_all(&mut *conn).await? {
            inserted.insert((row.get("platform")?, row.get("update_id")?));
        }
    }
    Ok(updates
        .iter()
        .map(|(p, id, _)| inserted.remove(&(p.as_str().to_string(), id.to_string())))
        .collect())
}

/// Forget that one update was handled, so that it can be handled again
/// (`tuanbot failed retry`, in the transaction that runs it).
pub async fn forget(conn: &mut Conn, platform: Platform, update_id: &str) -> Result<()> {
    query("DELETE FROM processed_updates WHERE platform = $1 AND update_id = $2")
        .bind(platform.as_str())
        .bind(update_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forget at most `limit` update ids older than `before_ms` (the
/// scheduler's slow sweep, [`KEEP_UPDATE_IDS_DAYS`], a batch
/// per transaction, so none holds the write lock long). Returns how many
/// went.
pub async fn prune(conn: &mut Conn, before_ms: i64, limit: i64) -> Result<u64> {
    query(
        "DELETE FROM processed_updates WHERE (platform, update_id) IN \
         (SELECT platform, update_id FROM processed_updates WHERE handled_at < $1 LIMIT $2)",
    )
    .bind(before_ms)
    .bind(limit)
    .execute(conn)
    .await
}
