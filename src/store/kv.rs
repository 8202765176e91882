//! Small named cursors (e.g. Telegram's last handled update_id).

use super::{Conn, Result};

pub async fn get(conn: &mut Conn, key: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM kv_state WHERE key = $1")
            .bind(key)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn set(conn: &mut Conn, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO kv_state (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn remove(conn: &mut Conn, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM kv_state WHERE key = $1")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}
