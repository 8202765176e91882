//! Failed updates (a dead-letter table): updates whose handling failed
//! [`MAX_TRIES`](crate::engine::MAX_TRIES) times, kept with the last error
//! and the update itself (the normalised `Incoming` as JSON) until the
//! operator runs one again (`tuanbot failed retry ID`) or drops it.

use super::db::{Db, Get, query};
use super::{Conn, Result, StoreError};
use crate::domain::Platform;

/// One kept update.
#[derive(Debug, Clone)]
pub struct Failed {
    pub id: i64,
    pub platform: Platform,
    pub update_id: String,
    pub chat_id: String,
    pub sender_id: String,
    /// What the sender wrote, for the list.
    pub text: String,
    /// The update as JSON (`chat::Incoming`).
    pub incoming: String,
    pub error: String,
    pub tries: i64,
    pub failed_at: i64,
}

/// A new row: the update's identity, what it said, and why it failed.
#[derive(Debug, Clone)]
pub struct NewFailed<'a> {
    pub platform: Platform,
    pub update_id: &'a str,
    pub chat_id: &'a str,
    pub sender_id: &'a str,
    pub text: &'a str,
    pub incoming: &'a str,
    pub error: &'a str,
    pub tries: i64,
    pub at_ms: i64,
}

const COLUMNS: &str =
    "id, platform, update_id, chat_id, sender_id, text, incoming, error, tries, failed_at";

fn from_row(row: &impl Get) -> Result<Failed> {
    let platform: String = row.get("platform")?;
    Ok(Failed {
        id: row.get("id")?,
        platform: platform
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("platform {platform}")))?,
        update_id: row.get("update_id")?,
        chat_id: row.get("chat_id")?,
        sender_id: row.get("sender_id")?,
        text: row.get("text")?,
        incoming: row.get("incoming")?,
        error: row.get("error")?,
        tries: row.get("tries")?,
        failed_at: row.get("failed_at")?,
    })
}

/// Keep a failed update; the same update failing again (it was run again
/// and failed) adds its tries to the row and takes the new error. Returns
/// the row's id.
pub async fn keep(conn: &mut impl Db, f: &NewFailed<'_>) -> Result<i64> {
    query(
        "INSERT INTO failed_updates (platform, update_id, chat_id, sender_id, text, incoming, \
         error, tries, failed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (platform, update_id) DO UPDATE SET error = excluded.error, \
         tries = failed_updates.tries + excluded.tries, failed_at = excluded.failed_at \
         RETURNING id",
    )
    .bind(f.platform.as_str())
    .bind(f.update_id)
    .bind(f.chat_id)
    .bind(f.sender_id)
    .bind(f.text)
    .bind(f.incoming)
    .bind(f.error)
    .bind(f.tries)
    .bind(f.at_ms)
    .fetch_one(conn)
    .await?
    .get("id")
}

/// Every kept update, oldest first.
pub async fn list(conn: &mut Conn) -> Result<Vec<Failed>> {
    query(format!("SELECT {COLUMNS} FROM failed_updates ORDER BY id"))
        .fetch_all(conn)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Failed>> {
    let row = query(format!(
        "SELECT {COLUMNS} FROM failed_updates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Remove a kept update; `false` when there was none with that id.
pub async fn remove(conn: &mut Conn, id: i64) -> Result<bool> {
    Ok(query("DELETE FROM failed_updates WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        > 0)
}

/// How many updates are kept.
pub async fn count(conn: &mut Conn) -> Result<i64> {
    query("SELECT COUNT(*) AS n FROM failed_updates")
        .fetch_one(conn)
        .await?
        .get("n")
}
