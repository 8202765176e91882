//! Activity records (`/log`), their quantities and photos.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Conn, Result};

/// A stored activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: i64,
    pub org_id: i64,
    pub person_id: Option<i64>,
    /// `YYYY-MM-DD`, local date.
    pub date: String,
    pub category: String,
    pub title: String,
    pub participants: Option<i64>,
    pub approx: bool,
    pub hours: Option<f64>,
    pub location: Option<String>,
    pub source_text: String,
    pub created_at: i64,
    pub quantities: Vec<QuantityRow>,
    pub photos: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuantityRow {
    pub count: f64,
    pub unit: String,
    pub what: Option<String>,
}

/// What to insert.
#[derive(Debug, Clone)]
pub struct NewActivity<'a> {
    pub org_id: i64,
    pub person_id: i64,
    pub date: &'a str,
    pub category: &'a str,
    pub title: &'a str,
    pub participants: Option<i64>,
    pub approx: bool,
    pub hours: Option<f64>,
    pub location: Option<&'a str>,
    pub source_text: &'a str,
    pub platform: &'a str,
    pub chat_id: &'a str,
    pub quantities: &'a [QuantityRow],
}

const COLUMNS: &str = "a.id, a.org_id, a.person_id, a.date, a.category, a.title, a.participants, \
     a.approx, a.hours, a.location, a.source_text, a.created_at, \
     (SELECT COUNT(*) FROM activity_photos p WHERE p.activity_id = a.id) AS photos";

fn from_row(row: &AnyRow) -> Result<Activity> {
    Ok(Activity {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        person_id: row.try_get("person_id")?,
        date: row.try_get("date")?,
        category: row.try_get("category")?,
        title: row.try_get("title")?,
        participants: row.try_get("participants")?,
        approx: row.try_get::<i64, _>("approx")? != 0,
        hours: row.try_get("hours")?,
        location: row.try_get("location")?,
        source_text: row.try_get("source_text")?,
        created_at: row.try_get("created_at")?,
        quantities: Vec::new(),
        photos: row.try_get("photos")?,
    })
}

async fn with_quantities(conn: &mut Conn, mut list: Vec<Activity>) -> Result<Vec<Activity>> {
    for a in &mut list {
        let rows = sqlx::query(
            "SELECT count, unit, what FROM activity_quantities WHERE activity_id = $1 ORDER BY id",
        )
        .bind(a.id)
        .fetch_all(&mut *conn)
        .await?;
        a.quantities = rows
            .iter()
            .map(|r| {
                Ok(QuantityRow {
                    count: r.try_get("count")?,
                    unit: r.try_get("unit")?,
                    what: r.try_get("what")?,
                })
            })
            .collect::<Result<_>>()?;
    }
    Ok(list)
}

pub async fn insert(conn: &mut Conn, a: &NewActivity<'_>, now_ms: i64) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO activities (org_id, person_id, date, category, title, participants, approx, \
         hours, location, source_text, platform, chat_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id",
    )
    .bind(a.org_id)
    .bind(a.person_id)
    .bind(a.date)
    .bind(a.category)
    .bind(a.title)
    .bind(a.participants)
    .bind(i64::from(a.approx))
    .bind(a.hours)
    .bind(a.location)
    .bind(a.source_text)
    .bind(a.platform)
    .bind(a.chat_id)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    for q in a.quantities {
        sqlx::query(
            "INSERT INTO activity_quantities (activity_id, count, unit, what) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(q.count)
        .bind(q.unit.as_str())
        .bind(q.what.as_deref())
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

/// Remember which bot message (outbox id) shows this record's card, so a
/// photo sent as a reply to the card attaches to the record.
pub async fn set_card(conn: &mut Conn, id: i64, outbox_id: i64) -> Result<()> {
    sqlx::query("UPDATE activities SET card_outbox_id = $1 WHERE id = $2")
        .bind(outbox_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The live record shown by the card with this platform message id in this chat.
pub async fn by_card_message(
    conn: &mut Conn,
    platform: &str,
    chat_id: &str,
    platform_message_id: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT a.id FROM activities a JOIN outbox o ON o.id = a.card_outbox_id \
         WHERE o.platform = $1 AND o.chat_id = $2 AND o.platform_message_id = $3 \
         AND a.deleted_at IS NULL",
    )
    .bind(platform)
    .bind(chat_id)
    .bind(platform_message_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Activity>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM activities a WHERE a.id = $1 AND a.deleted_at IS NULL"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let list = row
        .as_ref()
        .map(from_row)
        .transpose()?
        .into_iter()
        .collect();
    Ok(with_quantities(conn, list).await?.pop())
}

/// The person's latest live record created at or after `since_ms`.
pub async fn last_by_person(
    conn: &mut Conn,
    person_id: i64,
    since_ms: i64,
) -> Result<Option<Activity>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM activities a WHERE a.person_id = $1 AND a.created_at >= $2 \
         AND a.deleted_at IS NULL ORDER BY a.id DESC LIMIT 1"
    )))
    .bind(person_id)
    .bind(since_ms)
    .fetch_optional(&mut *conn)
    .await?;
    let list = row
        .as_ref()
        .map(from_row)
        .transpose()?
        .into_iter()
        .collect();
    Ok(with_quantities(conn, list).await?.pop())
}

/// The person's latest records, newest first.
pub async fn recent_by_person(
    conn: &mut Conn,
    person_id: i64,
    limit: i64,
) -> Result<Vec<Activity>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM activities a WHERE a.person_id = $1 AND a.deleted_at IS NULL \
         ORDER BY a.id DESC LIMIT $2"
    )))
    .bind(person_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let list = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    with_quantities(conn, list).await
}

/// A live record of `org_id` on `date` with `title` created at or after `since_ms`.
pub async fn find_duplicate(
    conn: &mut Conn,
    org_id: i64,
    date: &str,
    title: &str,
    since_ms: i64,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM activities WHERE org_id = $1 AND date = $2 AND title = $3 \
         AND created_at >= $4 AND deleted_at IS NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(org_id)
    .bind(date)
    .bind(title)
    .bind(since_ms)
    .fetch_optional(conn)
    .await?)
}

pub async fn soft_delete(conn: &mut Conn, id: i64, now_ms: i64) -> Result<bool> {
    let done =
        sqlx::query("UPDATE activities SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
            .bind(now_ms)
            .bind(id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Which column an `/edit` changes, with its new value.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Date(String),
    Category(String),
    Participants(Option<i64>),
    Hours(Option<f64>),
    Location(Option<String>),
    Title(String),
}

pub async fn update_field(conn: &mut Conn, id: i64, field: &Field, now_ms: i64) -> Result<()> {
    let q = match field {
        Field::Date(v) => {
            sqlx::query("UPDATE activities SET date = $1, updated_at = $2 WHERE id = $3")
                .bind(v.clone())
        }
        Field::Category(v) => {
            sqlx::query("UPDATE activities SET category = $1, updated_at = $2 WHERE id = $3")
                .bind(v.clone())
        }
        Field::Participants(v) => sqlx::query(
            "UPDATE activities SET participants = $1, approx = 0, updated_at = $2 WHERE id = $3",
        )
        .bind(*v),
        Field::Hours(v) => {
            sqlx::query("UPDATE activities SET hours = $1, updated_at = $2 WHERE id = $3").bind(*v)
        }
        Field::Location(v) => {
            sqlx::query("UPDATE activities SET location = $1, updated_at = $2 WHERE id = $3")
                .bind(v.clone())
        }
        Field::Title(v) => {
            sqlx::query("UPDATE activities SET title = $1, updated_at = $2 WHERE id = $3")
                .bind(v.clone())
        }
    };
    q.bind(now_ms).bind(id).execute(conn).await?;
    Ok(())
}

pub async fn add_photo(conn: &mut Conn, id: i64, file_ref: &str, now_ms: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO activity_photos (activity_id, file_ref, created_at) VALUES ($1, $2, $3)",
    )
    .bind(id)
    .bind(file_ref)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Filter for listing and statistics: a date range and optionally one org.
#[derive(Debug, Clone)]
pub struct Filter<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub org_id: Option<i64>,
}

/// Totals of one category (or of one org when grouped by org).
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub key: String,
    pub records: i64,
    pub participants: i64,
    pub hours: f64,
}

/// Records, participants and hours per category in the filter.
pub async fn totals_by_category(conn: &mut Conn, f: &Filter<'_>) -> Result<Vec<Totals>> {
    totals(conn, f, "category").await
}

/// Records, participants and hours per org id in the filter.
pub async fn totals_by_org(conn: &mut Conn, f: &Filter<'_>) -> Result<Vec<Totals>> {
    totals(conn, f, "org_id").await
}

async fn totals(conn: &mut Conn, f: &Filter<'_>, by: &str) -> Result<Vec<Totals>> {
    let key = match by {
        "org_id" => "CAST(org_id AS TEXT)",
        _ => "category",
    };
    let sql = format!(
        "SELECT {key} AS k, COUNT(*) AS n, CAST(COALESCE(SUM(participants), 0) AS BIGINT) AS p, \
         CAST(COALESCE(SUM(hours), 0) AS DOUBLE PRECISION) AS h \
         FROM activities WHERE deleted_at IS NULL AND date >= $1 AND date <= $2 \
         AND (CAST($3 AS BIGINT) IS NULL OR org_id = $3) GROUP BY {key} ORDER BY n DESC, k"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(f.from)
        .bind(f.to)
        .bind(f.org_id)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Totals {
                key: r.try_get("k")?,
                records: r.try_get("n")?,
                participants: r.try_get("p")?,
                hours: r.try_get("h")?,
            })
        })
        .collect()
}

/// The date (`YYYY-MM-DD`) of the latest record of `org_id` (all orgs when
/// `None`), if any.
pub async fn latest_date(conn: &mut Conn, org_id: Option<i64>) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT MAX(date) AS d FROM activities WHERE deleted_at IS NULL \
         AND (CAST($1 AS BIGINT) IS NULL OR org_id = $1)",
    )
    .bind(org_id)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("d")?)
}

/// Quantities summed by unit in the filter, largest first.
pub async fn quantities_by_unit(conn: &mut Conn, f: &Filter<'_>) -> Result<Vec<(String, f64)>> {
    let rows = sqlx::query(
        "SELECT q.unit AS unit, CAST(SUM(q.count) AS DOUBLE PRECISION) AS total \
         FROM activity_quantities q JOIN activities a ON a.id = q.activity_id \
         WHERE a.deleted_at IS NULL AND a.date >= $1 AND a.date <= $2 \
         AND (CAST($3 AS BIGINT) IS NULL OR a.org_id = $3) GROUP BY q.unit ORDER BY total DESC, unit",
    )
    .bind(f.from)
    .bind(f.to)
    .bind(f.org_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("unit")?, r.try_get("total")?)))
        .collect()
}

/// All live records in the filter, by date then id (exports, reports).
pub async fn list(conn: &mut Conn, f: &Filter<'_>) -> Result<Vec<Activity>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM activities a WHERE a.deleted_at IS NULL AND a.date >= $1 \
         AND a.date <= $2 AND (CAST($3 AS BIGINT) IS NULL OR a.org_id = $3) ORDER BY a.date, a.id"
    )))
    .bind(f.from)
    .bind(f.to)
    .bind(f.org_id)
    .fetch_all(&mut *conn)
    .await?;
    let list = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    with_quantities(conn, list).await
}
