//! The FAQ table. Matching is done in `crate::faq`, over all live entries:
//! a county's FAQ is tens to hundreds of rows.

use sqlx::Row;

use super::{Conn, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub question: String,
    pub answer: String,
}

/// Add an entry; returns its number.
pub async fn add(
    conn: &mut Conn,
    question: &str,
    answer: &str,
    source: &str,
    now_ms: i64,
) -> Result<i64> {
    let id: i64 = sqlx::query(
        "INSERT INTO faq (question, answer, source, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(question)
    .bind(answer)
    .bind(source)
    .bind(now_ms)
    .fetch_one(conn)
    .await?
    .try_get("id")?;
    Ok(id)
}

/// Mark an entry deleted; the entry as it was, or `None` when there is no
/// live entry with that number.
pub async fn delete(conn: &mut Conn, id: i64, now_ms: i64) -> Result<Option<Entry>> {
    let row = sqlx::query(
        "UPDATE faq SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL \
         RETURNING id, question, answer",
    )
    .bind(id)
    .bind(now_ms)
    .fetch_optional(conn)
    .await?;
    row.map(|r| entry(&r)).transpose()
}

/// Every live entry, by number.
pub async fn all(conn: &mut Conn) -> Result<Vec<Entry>> {
    let rows =
        sqlx::query("SELECT id, question, answer FROM faq WHERE deleted_at IS NULL ORDER BY id")
            .fetch_all(conn)
            .await?;
    rows.iter().map(entry).collect()
}

/// Whether a live entry has exactly this question (imports skip repeats).
pub async fn has_question(conn: &mut Conn, question: &str) -> Result<bool> {
    let n: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM faq WHERE deleted_at IS NULL AND question = $1")
            .bind(question)
            .fetch_one(conn)
            .await?
            .try_get("n")?;
    Ok(n > 0)
}

fn entry(r: &sqlx::any::AnyRow) -> Result<Entry> {
    Ok(Entry {
        id: r.try_get("id")?,
        question: r.try_get("question")?,
        answer: r.try_get("answer")?,
    })
}
