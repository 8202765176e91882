//! Notices, the orgs and groups they target, and acknowledgements.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Conn, Result, StoreError};
use crate::chat::Attachment;
use crate::domain::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub target_label: String,
    pub sender_person_id: i64,
    pub sender_platform: Platform,
    pub sender_chat_id: String,
    pub deadline_at: Option<i64>,
    pub scheduled_at: Option<i64>,
    /// `scheduled`, `sent` or `cancelled`.
    pub status: String,
    pub sent_at: Option<i64>,
    /// Sent along with each copy.
    pub attachments: Vec<Attachment>,
}

const COLUMNS: &str = "id, title, body, target_label, sender_person_id, sender_platform, \
    sender_chat_id, deadline_at, scheduled_at, status, sent_at, attachments";

fn from_row(row: &AnyRow) -> Result<Notice> {
    let platform: String = row.try_get("sender_platform")?;
    Ok(Notice {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        target_label: row.try_get("target_label")?,
        sender_person_id: row.try_get("sender_person_id")?,
        sender_platform: platform
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("platform {platform}")))?,
        sender_chat_id: row.try_get("sender_chat_id")?,
        deadline_at: row.try_get("deadline_at")?,
        scheduled_at: row.try_get("scheduled_at")?,
        status: row.try_get("status")?,
        sent_at: row.try_get("sent_at")?,
        attachments: serde_json::from_str(&row.try_get::<String, _>("attachments")?)
            .map_err(|e| StoreError::Corrupt(format!("notice attachments: {e}")))?,
    })
}

/// A group a notice goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `chats.id`
    pub chat: i64,
    pub platform: Platform,
    pub chat_id: String,
    pub org_id: Option<i64>,
    pub committee_wide: bool,
}

/// Insert a notice; `orgs` expect acknowledgement, `chats` receive it.
pub async fn create(
    conn: &mut Conn,
    n: &Notice,
    orgs: &[i64],
    chats: &[i64],
    now_ms: i64,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO notices (title, body, target_label, sender_person_id, sender_platform, \
         sender_chat_id, deadline_at, scheduled_at, status, created_at, sent_at, attachments) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(n.title.as_str())
    .bind(n.body.as_str())
    .bind(n.target_label.as_str())
    .bind(n.sender_person_id)
    .bind(n.sender_platform.as_str())
    .bind(n.sender_chat_id.as_str())
    .bind(n.deadline_at)
    .bind(n.scheduled_at)
    .bind(n.status.as_str())
    .bind(now_ms)
    .bind(n.sent_at)
    .bind(serde_json::to_string(&n.attachments).unwrap_or_else(|_| "[]".into()))
    .fetch_one(&mut *conn)
    .await?;
    for org in orgs {
        sqlx::query(
            "INSERT INTO notice_orgs (notice_id, org_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(*org)
        .execute(&mut *conn)
        .await?;
    }
    for chat in chats {
        sqlx::query(
            "INSERT INTO notice_chats (notice_id, chat) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(*chat)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Notice>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notices WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn set_status(
    conn: &mut Conn,
    id: i64,
    status: &str,
    sent_at: Option<i64>,
) -> Result<()> {
    sqlx::query("UPDATE notices SET status = $1, sent_at = COALESCE($2, sent_at) WHERE id = $3")
        .bind(status)
        .bind(sent_at)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Scheduled notices not sent yet, earliest first; only `sender`'s when given.
pub async fn scheduled(conn: &mut Conn, sender: Option<i64>) -> Result<Vec<Notice>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notices WHERE status = 'scheduled' ORDER BY scheduled_at, id"
    )))
    .fetch_all(conn)
    .await?;
    let all = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    Ok(all
        .into_iter()
        .filter(|n| sender.is_none_or(|s| n.sender_person_id == s))
        .collect())
}

/// The groups of a notice.
pub async fn targets(conn: &mut Conn, id: i64) -> Result<Vec<Target>> {
    let rows = sqlx::query(
        "SELECT c.id, c.platform, c.chat_id, c.org_id, c.committee_wide FROM notice_chats n \
         JOIN chats c ON c.id = n.chat WHERE n.notice_id = $1 ORDER BY c.id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(target_from_row).collect()
}

/// A [`Target`] from a row with the columns `c.id, c.platform, c.chat_id,
/// c.org_id, c.committee_wide` (notice and event targets alike).
pub(super) fn target_from_row(r: &sqlx::any::AnyRow) -> Result<Target> {
    let platform: String = r.try_get("platform")?;
    Ok(Target {
        chat: r.try_get("id")?,
        platform: platform
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("platform {platform}")))?,
        chat_id: r.try_get("chat_id")?,
        org_id: r.try_get("org_id")?,
        committee_wide: r.try_get::<i64, _>("committee_wide")? != 0,
    })
}

/// The orgs a notice expects to hear from.
pub async fn orgs(conn: &mut Conn, id: i64) -> Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT org_id FROM notice_orgs WHERE notice_id = $1 ORDER BY org_id")
            .bind(id)
            .fetch_all(conn)
            .await?,
    )
}

/// The notice a plain ack from `person` of `org` in group `chat` is about,
/// among the sent notices still open there at `now_ms` (the deadline has
/// not passed, or without one it went out in the last week): the newest
/// one neither that org nor that person has acknowledged, those addressed
/// to the org first; when all are acknowledged, the newest.
pub async fn open_for_ack(
    conn: &mut Conn,
    chat: i64,
    now_ms: i64,
    person: i64,
    org: Option<i64>,
) -> Result<Option<Notice>> {
    const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notices n WHERE status = 'sent' \
         AND id IN (SELECT notice_id FROM notice_chats WHERE chat = $1) \
         AND ((deadline_at IS NOT NULL AND deadline_at > $2) \
           OR (deadline_at IS NULL AND sent_at > $3)) \
         ORDER BY \
           CASE WHEN EXISTS (SELECT 1 FROM notice_acks a WHERE a.notice_id = n.id \
             AND (a.person_id = $4 OR a.org_id = $5)) THEN 1 ELSE 0 END, \
           CASE WHEN EXISTS (SELECT 1 FROM notice_orgs o WHERE o.notice_id = n.id \
             AND o.org_id = $5) THEN 0 ELSE 1 END, \
           id DESC LIMIT 1"
    )))
    .bind(chat)
    .bind(now_ms)
    .bind(now_ms - WEEK_MS)
    .bind(person)
    .bind(org)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Whether notice `id` went to group `chat`.
pub async fn sent_to(conn: &mut Conn, id: i64, chat: i64) -> Result<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM notice_chats WHERE notice_id = $1 AND chat = $2")
            .bind(id)
            .bind(chat)
            .fetch_one(conn)
            .await?;
    Ok(n > 0)
}

/// Record an acknowledgement. False when this person had already acknowledged.
pub async fn ack(
    conn: &mut Conn,
    notice: i64,
    person: i64,
    org: Option<i64>,
    chat: Option<i64>,
    now_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO notice_acks (notice_id, person_id, org_id, chat, at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (notice_id, person_id) DO NOTHING",
    )
    .bind(notice)
    .bind(person)
    .bind(org)
    .bind(chat)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// People who acknowledged, per org (orgless acks under `None`).
pub async fn acks_by_org(conn: &mut Conn, notice: i64) -> Result<HashMap<Option<i64>, i64>> {
    let rows = sqlx::query(
        "SELECT org_id, COUNT(*) AS n FROM notice_acks WHERE notice_id = $1 GROUP BY org_id",
    )
    .bind(notice)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("org_id")?, r.try_get("n")?)))
        .collect()
}

/// Display names of those who acknowledged in one group, in order.
pub async fn ackers_in_chat(conn: &mut Conn, notice: i64, chat: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT p.display_name FROM notice_acks a JOIN people p ON p.id = a.person_id \
         WHERE a.notice_id = $1 AND a.chat = $2 ORDER BY a.at, a.person_id",
    )
    .bind(notice)
    .bind(chat)
    .fetch_all(conn)
    .await?)
}

/// Remember that outbox row `outbox_id` carries notice `notice`.
pub async fn add_post(conn: &mut Conn, notice: i64, outbox_id: i64) -> Result<()> {
    sqlx::query("INSERT INTO notice_posts (outbox_id, notice_id) VALUES ($1, $2)")
        .bind(outbox_id)
        .bind(notice)
        .execute(conn)
        .await?;
    Ok(())
}

/// The notice carried by the message the platform knows as `message_id` in
/// this chat, if it is one of ours.
pub async fn by_post(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    message_id: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT p.notice_id FROM notice_posts p JOIN outbox o ON o.id = p.outbox_id \
         WHERE o.platform = $1 AND o.chat_id = $2 AND o.platform_message_id = $3 LIMIT 1",
    )
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(message_id)
    .fetch_optional(conn)
    .await?)
}
