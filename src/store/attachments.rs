//! Recent attachments per chat (`recent_attachments`): which message carried
//! which photo or document, so a command that *replies* to it can be
//! resolved from the quoted message id alone, and a command sent right after
//! a file can find the sender's latest one. A cache pruned by age, not a
//! record: nothing is audited here; a delivery's proof is copied into the
//! wish.

use super::db::{Get, query};
use super::{Conn, Result};
use crate::chat::{Attachment, AttachmentKind};
use crate::domain::Platform;

fn kind_str(kind: AttachmentKind) -> &'static str {
    match kind {
        AttachmentKind::Photo => "photo",
        AttachmentKind::Document => "document",
    }
}

/// Remember that `message_id` in `chat_id`, sent by `sender_id`, carried
/// `files` (at most one of each kind). A redelivered or recurring id (QQ
/// ids recur over months) replaces what that id carried before.
pub async fn remember(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    message_id: &str,
    sender_id: &str,
    files: &[&Attachment],
    now_ms: i64,
) -> Result<()> {
    query(
        "DELETE FROM recent_attachments WHERE platform = $1 AND chat_id = $2 \
         AND message_id = $3",
    )
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(message_id)
    .execute(&mut *conn)
    .await?;
    for file in files {
        query(
            "INSERT INTO recent_attachments \
             (platform, chat_id, message_id, kind, sender_id, file_ref, file_name, seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(platform.as_str())
        .bind(chat_id)
        .bind(message_id)
        .bind(kind_str(file.kind))
        .bind(sender_id)
        .bind(file.file_ref.as_str())
        .bind(file.file_name.as_deref())
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn from_row(kind: AttachmentKind, row: &super::db::Row) -> Result<Attachment> {
    Ok(Attachment {
        kind,
        file_ref: row.get("file_ref")?,
        file_name: row.get("file_name")?,
    })
}

/// The file of `kind` carried by `message_id` in `chat_id`, if it was seen
/// and not yet pruned.
pub async fn find(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    message_id: &str,
    kind: AttachmentKind,
) -> Result<Option<Attachment>> {
    query(
        "SELECT file_ref, file_name FROM recent_attachments WHERE platform = $1 \
         AND chat_id = $2 AND message_id = $3 AND kind = $4",
    )
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(message_id)
    .bind(kind_str(kind))
    .fetch_optional(conn)
    .await?
    .map(|row| from_row(kind, &row))
    .transpose()
}

/// The latest file of `kind` that `sender_id` posted in `chat_id` since
/// `since_ms`.
pub async fn latest_from(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    sender_id: &str,
    kind: AttachmentKind,
    since_ms: i64,
) -> Result<Option<Attachment>> {
    query(
        "SELECT file_ref, file_name FROM recent_attachments WHERE platform = $1 \
         AND chat_id = $2 AND sender_id = $3 AND kind = $4 AND seen_at >= $5 \
         ORDER BY seen_at DESC LIMIT 1",
    )
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(sender_id)
    .bind(kind_str(kind))
    .bind(since_ms)
    .fetch_optional(conn)
    .await?
    .map(|row| from_row(kind, &row))
    .transpose()
}

/// Forget files seen before `before_ms`. Returns how many went.
pub async fn prune(conn: &mut Conn, before_ms: i64) -> Result<u64> {
    query("DELETE FROM recent_attachments WHERE seen_at < $1")
        .bind(before_ms)
        .execute(conn)
        .await
}
