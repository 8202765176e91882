//! A question the bot asked one person in one chat and waits for
//! (numbered choices, "really record a duplicate?", a broadcast to confirm).

use sqlx::Row;

use super::{Conn, Result};
use crate::domain::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub kind: String,
    pub payload: String,
    pub expires_at: i64,
}

/// Ask (replacing any earlier question in this chat).
pub async fn set(
    conn: &mut Conn,
    platform: Platform,
    user_id: &str,
    chat_id: &str,
    kind: &str,
    payload: &str,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO pending_actions (platform, user_id, chat_id, kind, payload, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (platform, user_id, chat_id) DO UPDATE SET \
           kind = excluded.kind, payload = excluded.payload, expires_at = excluded.expires_at",
    )
    .bind(platform.as_str())
    .bind(user_id)
    .bind(chat_id)
    .bind(kind)
    .bind(payload)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The open question of `kind`, if any and not expired at `now_ms`.
pub async fn get(
    conn: &mut Conn,
    platform: Platform,
    user_id: &str,
    chat_id: &str,
    kind: &str,
    now_ms: i64,
) -> Result<Option<Pending>> {
    let row = sqlx::query(
        "SELECT kind, payload, expires_at FROM pending_actions \
         WHERE platform = $1 AND user_id = $2 AND chat_id = $3 AND kind = $4 AND expires_at > $5",
    )
    .bind(platform.as_str())
    .bind(user_id)
    .bind(chat_id)
    .bind(kind)
    .bind(now_ms)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Pending {
            kind: r.try_get("kind")?,
            payload: r.try_get("payload")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

pub async fn clear(
    conn: &mut Conn,
    platform: Platform,
    user_id: &str,
    chat_id: &str,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM pending_actions WHERE platform = $1 AND user_id = $2 AND chat_id = $3",
    )
    .bind(platform.as_str())
    .bind(user_id)
    .bind(chat_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whatever question is open for this person in this chat, if not expired.
pub async fn open(
    conn: &mut Conn,
    platform: Platform,
    user_id: &str,
    chat_id: &str,
    now_ms: i64,
) -> Result<Option<Pending>> {
    let row = sqlx::query(
        "SELECT kind, payload, expires_at FROM pending_actions \
         WHERE platform = $1 AND user_id = $2 AND chat_id = $3 AND expires_at > $4",
    )
    .bind(platform.as_str())
    .bind(user_id)
    .bind(chat_id)
    .bind(now_ms)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(Pending {
            kind: r.try_get("kind")?,
            payload: r.try_get("payload")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}
