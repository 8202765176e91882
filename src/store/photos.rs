//! Recent photos per chat (`recent_photos`): which message carried which
//! photo, so a command that *replies* to a photo can be resolved from the
//! quoted message id alone. A cache pruned by age, not a record: nothing is
//! audited here; the proof a delivery uses is copied into the wish.

use super::{Conn, Result};
use crate::domain::Platform;

/// Remember that `message_id` in `chat_id` carried the photo `file_ref`.
/// A redelivered or recurring id (QQ ids recur over months) takes the
/// newest photo.
pub async fn remember(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    message_id: &str,
    sender_id: &str,
    file_ref: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO recent_photos (platform, chat_id, message_id, sender_id, file_ref, seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (platform, chat_id, message_id) DO UPDATE SET \
         sender_id = excluded.sender_id, file_ref = excluded.file_ref, seen_at = excluded.seen_at",
    )
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(message_id)
    .bind(sender_id)
    .bind(file_ref)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The photo carried by `message_id` in `chat_id`, if it was seen and not
/// yet pruned.
pub async fn find(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    message_id: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT file_ref FROM recent_photos WHERE platform = $1 AND chat_id = $2 \
         AND message_id = $3",
    )
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(message_id)
    .fetch_optional(conn)
    .await?)
}

/// Forget photos seen before `before_ms`. Returns how many went.
pub async fn prune(conn: &mut Conn, before_ms: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM recent_photos WHERE seen_at < $1")
        .bind(before_ms)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
