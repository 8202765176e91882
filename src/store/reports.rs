//! Read-only queries behind the work summary (`crate::report`). Each one
//! returns plain rows for a period; the report module does the arithmetic,
//! so the figures are computed once, the same way on both backends.

use std::collections::HashMap;

use sqlx::Row;

use super::{Backend, Conn, Result};

/// One live activity in the period, with its photo count.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub id: i64,
    pub org_id: i64,
    pub date: String,
    pub category: String,
    pub title: String,
    pub participants: Option<i64>,
    pub approx: bool,
    pub hours: Option<f64>,
    pub location: Option<String>,
    pub photos: i64,
}

/// Live activities dated `from..=to` (`YYYY-MM-DD`), oldest first.
pub async fn activities(conn: &mut Conn, from: &str, to: &str) -> Result<Vec<ActivityRow>> {
    let rows = sqlx::query(
        "SELECT a.id, a.org_id, a.date, a.category, a.title, a.participants, a.approx, a.hours, \
         a.location, (SELECT COUNT(*) FROM activity_photos p WHERE p.activity_id = a.id) AS photos \
         FROM activities a WHERE a.deleted_at IS NULL AND a.date >= $1 AND a.date <= $2 \
         ORDER BY a.date, a.id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ActivityRow {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                date: r.try_get("date")?,
                category: r.try_get("category")?,
                title: r.try_get("title")?,
                participants: r.try_get("participants")?,
                approx: r.try_get::<i64, _>("approx")? != 0,
                hours: r.try_get("hours")?,
                location: r.try_get("location")?,
                photos: r.try_get("photos")?,
            })
        })
        .collect()
}

/// Counted things of the activities dated `from..=to`: activity id →
/// (count, unit, what), in insertion order.
pub async fn quantities(
    conn: &mut Conn,
    from: &str,
    to: &str,
) -> Result<HashMap<i64, Vec<(f64, String, Option<String>)>>> {
    let rows = sqlx::query(
        "SELECT q.activity_id, q.count, q.unit, q.what FROM activity_quantities q \
         JOIN activities a ON a.id = q.activity_id \
         WHERE a.deleted_at IS NULL AND a.date >= $1 AND a.date <= $2 ORDER BY q.id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    let mut out: HashMap<i64, Vec<_>> = HashMap::new();
    for r in &rows {
        out.entry(r.try_get("activity_id")?).or_default().push((
            r.try_get("count")?,
            r.try_get("unit")?,
            r.try_get("what")?,
        ));
    }
    Ok(out)
}

/// The latest activity date per org up to `to` (any time before it counts).
pub async fn last_activity(conn: &mut Conn, to: &str) -> Result<HashMap<i64, String>> {
    let rows = sqlx::query(
        "SELECT org_id, MAX(date) AS d FROM activities \
         WHERE deleted_at IS NULL AND date <= $1 GROUP BY org_id",
    )
    .bind(to)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("org_id")?, r.try_get("d")?)))
        .collect()
}

/// The date of the county's first live activity (`YYYY-MM-DD`), if any.
pub async fn first_activity(conn: &mut Conn) -> Result<Option<String>> {
    let row = sqlx::query("SELECT MIN(date) AS d FROM activities WHERE deleted_at IS NULL")
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("d")?)
}

/// One org expected to acknowledge one notice sent in the period.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeOrgRow {
    pub notice_id: i64,
    pub title: String,
    pub sent_at: i64,
    pub deadline_at: Option<i64>,
    pub org_id: i64,
    /// The org's first acknowledgement, if any.
    pub first_ack: Option<i64>,
}

/// Notices sent in `[from_ms, to_ms)` with each target org and its first ack.
pub async fn notice_orgs(conn: &mut Conn, from_ms: i64, to_ms: i64) -> Result<Vec<NoticeOrgRow>> {
    let rows = sqlx::query(
        "SELECT n.id, n.title, n.sent_at, n.deadline_at, o.org_id, \
         (SELECT MIN(k.at) FROM notice_acks k WHERE k.notice_id = n.id AND k.org_id = o.org_id) \
         AS first_ack \
         FROM notices n JOIN notice_orgs o ON o.notice_id = n.id \
         WHERE n.status = 'sent' AND n.sent_at >= $1 AND n.sent_at < $2 ORDER BY n.id, o.org_id",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(NoticeOrgRow {
                notice_id: r.try_get("id")?,
                title: r.try_get("title")?,
                sent_at: r.try_get("sent_at")?,
                deadline_at: r.try_get("deadline_at")?,
                org_id: r.try_get("org_id")?,
                first_ack: r.try_get("first_ack")?,
            })
        })
        .collect()
}

/// One micro-wish as the report needs it (no personal data of the child).
#[derive(Debug, Clone, PartialEq)]
pub struct WishRow {
    pub status: String,
    pub org_id: Option<i64>,
    pub published_at: Option<i64>,
    pub claimed_at: Option<i64>,
    pub delivered_at: Option<i64>,
}

/// Whether the micro-wishes tables exist (migration 0003). Written while the
/// wishes feature was on its own branch; since the merge they always exist
/// and this check (one query) could go.
pub async fn wishes_available(conn: &mut Conn, backend: Backend) -> Result<bool> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'wishes'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'wishes'"
        }
    };
    let n: i64 = sqlx::query(sql).fetch_one(conn).await?.try_get("n")?;
    Ok(n > 0)
}

/// Every wish of a published batch, or none when the wishes tables are absent.
pub async fn wishes(conn: &mut Conn, backend: Backend) -> Result<Option<Vec<WishRow>>> {
    if !wishes_available(conn, backend).await? {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT w.status, w.org_id, b.published_at, w.claimed_at, w.delivered_at \
         FROM wishes w JOIN wish_batches b ON b.id = w.batch_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(WishRow {
                status: r.try_get("status")?,
                org_id: r.try_get("org_id")?,
                published_at: r.try_get("published_at")?,
                claimed_at: r.try_get("claimed_at")?,
                delivered_at: r.try_get("delivered_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
