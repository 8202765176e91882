//! The audit log: who changed what, written in the transaction of the change.

use serde_json::Value;
use sqlx::Row;

use super::db::{Db, query};
use super::{Conn, Result};
use crate::domain::Platform;

/// One audit entry.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub at_ms: i64,
    pub platform: Platform,
    /// The acting account's user id, or `cli` for the operator's shell.
    pub actor: &'a str,
    /// What happened, e.g. `org.join`, `chat.bind`, `person.role`.
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: Option<String>,
    pub detail: Value,
}

pub async fn record(conn: &mut impl Db, e: &Entry<'_>) -> Result<()> {
    record_many(conn, std::slice::from_ref(e)).await
}

/// Several entries in one statement (a group of claims).
pub async fn record_many(conn: &mut impl Db, entries: &[Entry<'_>]) -> Result<()> {
    for chunk in entries.chunks(super::MAX_BINDS / 7) {
        let sql = format!(
            "INSERT INTO audit_log (at, platform, actor, action, entity, entity_id, detail) \
             VALUES {}",
            super::row_placeholders(chunk.len(), 7)
        );
        let mut q = query(sql);
        for e in chunk {
            q = q
                .bind(e.at_ms)
                .bind(e.platform.as_str())
                .bind(e.actor)
                .bind(e.action)
                .bind(e.entity)
                .bind(e.entity_id.as_deref())
                .bind(e.detail.to_string());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Count of audit rows with this action (tests and reports).
pub async fn count_action(conn: &mut Conn, action: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
            .bind(action)
            .fetch_one(conn)
            .await?,
    )
}

/// The latest `n` actions, newest first (for `tuanbot` diagnostics and tests).
pub async fn latest(conn: &mut Conn, n: i64) -> Result<Vec<(String, String, Option<String>)>> {
    let rows =
        sqlx::query("SELECT action, entity, entity_id FROM audit_log ORDER BY id DESC LIMIT $1")
            .bind(n)
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("action")?,
                r.try_get("entity")?,
                r.try_get("entity_id")?,
            ))
        })
        .collect()
}
