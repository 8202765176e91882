//! The persisted outbox. Rows are written in the transaction of the change
//! that caused them and drained by a dispatcher per platform.
//!
//! Leasing: a dispatcher takes due rows by setting `leased_until`; on
//! PostgreSQL the selection uses `FOR UPDATE SKIP LOCKED`, so several replicas
//! never take the same row. A crashed dispatcher's lease simply runs out.

use super::db::{Db, Get, query};
use super::{Backend, Conn, Result, StoreError};
use crate::chat::Outgoing;
use crate::domain::Platform;

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub platform: Platform,
    pub chat_id: String,
    pub message: Outgoing,
    pub attempts: i64,
    pub created_at: i64,
}

const COLUMNS: &str = "id, platform, chat_id, payload, attempts, created_at";

fn from_row(row: &impl Get) -> Result<OutboxRow> {
    let platform: String = row.get("platform")?;
    let payload: String = row.get("payload")?;
    Ok(OutboxRow {
        id: row.get("id")?,
        platform: platform
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("platform {platform}")))?,
        chat_id: row.get("chat_id")?,
        message: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?,
        attempts: row.get("attempts")?,
        created_at: row.get("created_at")?,
    })
}

fn payload(msg: &Outgoing) -> Result<String> {
    serde_json::to_string(msg).map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))
}

/// Queue a message. Returns the outbox id (used to refer to the message in
/// later edits before its platform id is known).
pub async fn enqueue(
    conn: &mut impl Db,
    msg: &Outgoing,
    not_before_ms: i64,
    coalesce_key: Option<&str>,
    now_ms: i64,
) -> Result<i64> {
    query(
        "INSERT INTO outbox (platform, chat_id, payload, coalesce_key, status, not_before, \
         created_at, personal) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7) RETURNING id",
    )
    .bind(msg.platform.as_str())
    .bind(msg.chat_id.as_str())
    .bind(payload(msg)?)
    .bind(coalesce_key)
    .bind(not_before_ms)
    .bind(now_ms)
    .bind(i64::from(msg.personal))
    .fetch_one(conn)
    .await?
    .get("id")
}

/// The pending (not yet leased) message with this coalesce key, if any: a
/// caller may fold new content into it instead of queueing another message.
pub async fn pending_coalesced(conn: &mut impl Db, key: &str) -> Result<Option<OutboxRow>> {
    let row = query(format!(
        "SELECT {COLUMNS} FROM outbox WHERE coalesce_key = $1 AND status = 'pending' \
         AND leased_until IS NULL ORDER BY id DESC LIMIT 1"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Replace the content of a pending, unleased message. Returns false when it
/// was leased or sent meanwhile (then queue a new one).
pub async fn replace_pending(conn: &mut impl Db, id: i64, msg: &Outgoing) -> Result<bool> {
    let changed = query(
        "UPDATE outbox SET payload = $1 WHERE id = $2 AND status = 'pending' \
         AND leased_until IS NULL",
    )
    .bind(payload(msg)?)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(changed == 1)
}

/// Put `text` into the newest pending, unleased message with this coalesce
/// key, keeping the rest of it (its target, whether it is an edit), in one
/// statement. Returns false when there is none (then queue one).
pub async fn set_pending_text(conn: &mut impl Db, key: &str, text: &str) -> Result<bool> {
    let set = match conn.backend() {
        Backend::Sqlite => "json_set(payload, '$.text', $1)",
        Backend::Postgres => "jsonb_set(payload::jsonb, '{text}', to_jsonb($1::text))::text",
    };
    let changed = query(format!(
        "UPDATE outbox SET payload = {set} WHERE id = (\
           SELECT id FROM outbox WHERE coalesce_key = $2 AND status = 'pending' \
           AND leased_until IS NULL ORDER BY id DESC LIMIT 1) \
         AND status = 'pending' AND leased_until IS NULL"
    ))
    .bind(text)
    .bind(key)
    .execute(conn)
    .await?;
    Ok(changed == 1)
}

/// Blank the text of up to `limit` rows marked [`Outgoing::personal`] that
/// were written before `before_ms` and are no longer pending (sent, failed
/// or dropped), oldest first. The row itself stays: its id, status and
/// platform message id are what exactly-once delivery and later edits go
/// by. Returns how many rows were blanked.
pub async fn redact_personal(
    conn: &mut impl Db,
    before_ms: i64,
    now_ms: i64,
    limit: i64,
) -> Result<u64> {
    let set = match conn.backend() {
        Backend::Sqlite => "json_set(payload, '$.text', $1)",
        Backend::Postgres => "jsonb_set(payload::jsonb, '{text}', to_jsonb($1::text))::text",
    };
    query(format!(
        "UPDATE outbox SET payload = {set}, redacted_at = $2 WHERE id IN (\
           SELECT id FROM outbox WHERE personal = 1 AND redacted_at IS NULL \
           AND created_at < $3 AND status <> 'pending' ORDER BY created_at LIMIT $4)"
    ))
    .bind("")
    .bind(now_ms)
    .bind(before_ms)
    .bind(limit)
    .execute(conn)
    .await
}

/// Lease up to `limit` due rows of `platform` until `lease_until_ms`.
/// Rows come back in id order (the order they were written). A row waits
/// while an earlier message to the same chat is held back (rate limit,
/// back-off) or leased by another dispatcher, so a chat sees its messages in
/// the order they were written. A row that was *written* for later (a
/// gathered line waiting for its window, a delayed post) holds nothing back:
/// only a row that failed and waits for its retry does. Otherwise every reply
/// in a group would wait out a 30-second gathering window.
pub async fn lease_due(
    conn: &mut Conn,
    backend: Backend,
    platform: Platform,
    now_ms: i64,
    lease_until_ms: i64,
    limit: i64,
) -> Result<Vec<OutboxRow>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE outbox SET leased_until = $1 WHERE id IN (\
           SELECT id FROM outbox o WHERE platform = $2 AND status = 'pending' \
           AND not_before <= $3 AND (leased_until IS NULL OR leased_until < $3) \
           AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.platform = o.platform \
             AND e.chat_id = o.chat_id AND e.status = 'pending' AND e.id < o.id \
             AND ((e.not_before > $3 AND e.last_error IS NOT NULL) OR e.leased_until >= $3)) \
           ORDER BY id LIMIT $4{lock}) \
         RETURNING {COLUMNS}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(lease_until_ms)
        .bind(platform.as_str())
        .bind(now_ms)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    let mut out = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|r| r.id);
    Ok(out)
}

pub async fn mark_sent(
    conn: &mut Conn,
    id: i64,
    platform_message_id: Option<&str>,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = $1, platform_message_id = $2, \
         leased_until = NULL, attempts = attempts + 1 WHERE id = $3",
    )
    .bind(now_ms)
    .bind(platform_message_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Give the row back for a later try (rate limit, network error).
pub async fn retry_at(
    conn: &mut Conn,
    id: i64,
    not_before_ms: i64,
    error: Option<&str>,
    count_attempt: bool,
) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET not_before = $1, leased_until = NULL, last_error = $2, \
         attempts = attempts + $3 WHERE id = $4",
    )
    .bind(not_before_ms)
    .bind(error)
    .bind(i64::from(count_attempt))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stop trying: `failed` (gave up after retries) or `dropped` (chat gone).
pub async fn give_up(conn: &mut Conn, id: i64, status: &str, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = $1, last_error = $2, leased_until = NULL, \
         attempts = attempts + 1 WHERE id = $3",
    )
    .bind(status)
    .bind(error)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Drop every pending message to a chat (the bot was removed from it).
pub async fn drop_chat(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    error: &str,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'dropped', last_error = $1, leased_until = NULL \
         WHERE platform = $2 AND chat_id = $3 AND status = 'pending'",
    )
    .bind(error)
    .bind(platform.as_str())
    .bind(chat_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The platform's id for a message we sent (`None` while not sent yet).
pub async fn platform_message_id(conn: &mut Conn, id: i64) -> Result<Option<String>> {
    let v: Option<Option<String>> =
        sqlx::query_scalar("SELECT platform_message_id FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(v.flatten())
}

/// Status of one row (`pending`, `sent`, …).
pub async fn status(conn: &mut Conn, id: i64) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Messages still to send on a platform.
pub async fn pending_count(conn: &mut Conn, platform: Platform) -> Result<i64> {
    Ok(
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE platform = $1 AND status = 'pending'",
        )
        .bind(platform.as_str())
        .fetch_one(conn)
        .await?,
    )
}

/// The earliest `not_before` of pending rows, to know how long to sleep.
pub async fn next_due(conn: &mut Conn, platform: Platform) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT MIN(not_before) FROM outbox WHERE platform = $1 AND status = 'pending'",
    )
    .bind(platform.as_str())
    .fetch_one(conn)
    .await?)
}

/// Point a chat's unsent messages at its new id (Telegram group →
/// supergroup migration), so they reach the chat under its new id.
pub async fn retarget_pending(
    conn: &mut Conn,
    platform: Platform,
    old: &str,
    new: &str,
) -> Result<u64> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox WHERE platform = $1 AND chat_id = $2 \
         AND status = 'pending' ORDER BY id"
    )))
    .bind(platform.as_str())
    .bind(old)
    .fetch_all(&mut *conn)
    .await?;
    let mut moved = 0;
    for row in rows.iter().map(from_row) {
        let row = row?;
        let mut msg = row.message;
        msg.chat_id = new.to_string();
        sqlx::query("UPDATE outbox SET chat_id = $1, payload = $2 WHERE id = $3")
            .bind(new)
            .bind(payload(&msg)?)
            .bind(row.id)
            .execute(&mut *conn)
            .await?;
        moved += 1;
    }
    Ok(moved)
}

// Issue 22, the QQ Bot API's reply ledger: a message that the platform
// takes only as a reply waits, pending, until the chat speaks again. It
// stays `pending` (so it still holds the chat's later messages back, in
// order) with this error and a far `not_before`; the adapter wakes it when
// a message arrives in the chat.

/// `last_error` of a message waiting for its chat to speak.
pub const WAITING_FOR_CHAT: &str = "waiting for the chat to speak";

/// Wake the messages of a chat that wait for it to speak: due at once.
/// Their `not_before` goes back to when they were written, not to "now": a
/// dispatcher pass that read its clock a moment earlier would take a row
/// due "now" for one written for later, which holds nothing back, and send
/// the chat's later messages first.
pub async fn wake_waiting(conn: &mut impl Db, platform: Platform, chat_id: &str) -> Result<u64> {
    query(
        "UPDATE outbox SET not_before = created_at, last_error = NULL WHERE platform = $1 \
         AND chat_id = $2 AND status = 'pending' AND last_error = $3",
    )
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(WAITING_FOR_CHAT)
    .execute(conn)
    .await
}

/// Since when (ms, the oldest such message's creation) messages to a chat
/// wait for it to speak; `None` when none do. For status views ("waiting
/// for the group to speak").
pub async fn waiting_since(
    conn: &mut impl Db,
    platform: Platform,
    chat_id: &str,
) -> Result<Option<i64>> {
    query(
        "SELECT MIN(created_at) AS since FROM outbox WHERE platform = $1 AND chat_id = $2 \
         AND status = 'pending' AND last_error = $3",
    )
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(WAITING_FOR_CHAT)
    .fetch_one(conn)
    .await?
    .get("since")
}
