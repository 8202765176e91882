//! Sign-up lists (报名 / 接龙): events, the groups they are posted in, and
//! entries with a waitlist.
//!
//! Joins and leaves on one event are serialised by [`lock`] (a row lock on
//! PostgreSQL; SQLite's single writer already serialises), so the capacity
//! check and the waitlist promotion never race.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::notices::Target;
use super::{Backend, Conn, Result, StoreError};
use crate::domain::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    pub title: String,
    pub time_text: String,
    pub place: String,
    pub starts_at: Option<i64>,
    pub capacity: i64,
    pub deadline_at: Option<i64>,
    /// `open` or `closed`.
    pub status: String,
    pub creator_person_id: i64,
    pub org_id: Option<i64>,
}

const COLUMNS: &str = "id, title, time_text, place, starts_at, capacity, deadline_at, status, \
    creator_person_id, org_id";

fn from_row(row: &AnyRow) -> Result<Event> {
    Ok(Event {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        time_text: row.try_get("time_text")?,
        place: row.try_get("place")?,
        starts_at: row.try_get("starts_at")?,
        capacity: row.try_get("capacity")?,
        deadline_at: row.try_get("deadline_at")?,
        status: row.try_get("status")?,
        creator_person_id: row.try_get("creator_person_id")?,
        org_id: row.try_get("org_id")?,
    })
}

/// One person on the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub person_id: i64,
    pub platform: Platform,
    pub user_id: String,
    pub name: String,
    pub note: Option<String>,
    pub waiting: bool,
    /// The person's org (short name), if any.
    pub org: Option<String>,
    /// When they signed up (ms UTC).
    pub at: i64,
}

pub async fn create(conn: &mut Conn, e: &Event, chats: &[i64], now_ms: i64) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO events (title, time_text, place, starts_at, capacity, deadline_at, status, \
         creator_person_id, org_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9) \
         RETURNING id",
    )
    .bind(e.title.as_str())
    .bind(e.time_text.as_str())
    .bind(e.place.as_str())
    .bind(e.starts_at)
    .bind(e.capacity)
    .bind(e.deadline_at)
    .bind(e.creator_person_id)
    .bind(e.org_id)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    for chat in chats {
        sqlx::query(
            "INSERT INTO event_chats (event_id, chat) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(*chat)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Event>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Hold the event's row until the transaction ends (PostgreSQL), so joins
/// and leaves on one event take turns.
pub async fn lock(conn: &mut Conn, backend: Backend, id: i64) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT id FROM events WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    }
    Ok(())
}

pub async fn set_status(conn: &mut Conn, id: i64, status: &str) -> Result<()> {
    sqlx::query("UPDATE events SET status = $1 WHERE id = $2")
        .bind(status)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The list in order: those in first by sign-up order, then the waitlist.
pub async fn entries(conn: &mut Conn, id: i64) -> Result<Vec<Entry>> {
    let rows = sqlx::query(
        "SELECT e.id, e.person_id, p.platform, p.user_id, p.display_name, e.note, e.waiting, \
         e.created_at, o.short_name FROM event_entries e JOIN people p ON p.id = e.person_id \
         LEFT JOIN orgs o ON o.id = p.org_id WHERE e.event_id = $1 ORDER BY e.waiting, e.id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let platform: String = r.try_get("platform")?;
            Ok(Entry {
                id: r.try_get("id")?,
                person_id: r.try_get("person_id")?,
                platform: platform
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("platform {platform}")))?,
                user_id: r.try_get("user_id")?,
                name: r.try_get("display_name")?,
                note: r.try_get("note")?,
                waiting: r.try_get::<i64, _>("waiting")? != 0,
                org: r.try_get("short_name")?,
                at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Number of people in (not waiting).
pub async fn count_in(conn: &mut Conn, id: i64) -> Result<i64> {
    Ok(
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM event_entries WHERE event_id = $1 AND waiting = 0",
        )
        .bind(id)
        .fetch_one(conn)
        .await?,
    )
}

/// Add a person; false when they were already on the list.
pub async fn insert_entry(
    conn: &mut Conn,
    event: i64,
    person: i64,
    note: Option<&str>,
    waiting: bool,
    now_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO event_entries (event_id, person_id, note, waiting, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id, person_id) DO NOTHING",
    )
    .bind(event)
    .bind(person)
    .bind(note)
    .bind(i64::from(waiting))
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Set a person's note on a list (`+1 小吴` from someone already on it).
/// Returns whether it changed.
pub async fn set_note(conn: &mut Conn, event: i64, person: i64, note: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE event_entries SET note = $3 WHERE event_id = $1 AND person_id = $2 \
         AND (note IS NULL OR note <> $3)",
    )
    .bind(event)
    .bind(person)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Remove a person. Returns whether they were on the list and whether they
/// were waiting.
pub async fn delete_entry(conn: &mut Conn, event: i64, person: i64) -> Result<Option<bool>> {
    let waiting: Option<i64> = sqlx::query_scalar(
        "DELETE FROM event_entries WHERE event_id = $1 AND person_id = $2 RETURNING waiting",
    )
    .bind(event)
    .bind(person)
    .fetch_optional(conn)
    .await?;
    Ok(waiting.map(|w| w != 0))
}

/// Move the first waiting person in. Returns their person id.
pub async fn promote_first(conn: &mut Conn, event: i64) -> Result<Option<i64>> {
    let first: Option<(i64, i64)> = sqlx::query(
        "SELECT id, person_id FROM event_entries WHERE event_id = $1 AND waiting = 1 \
         ORDER BY id LIMIT 1",
    )
    .bind(event)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| Ok::<_, sqlx::Error>((r.try_get("id")?, r.try_get("person_id")?)))
    .transpose()?;
    let Some((id, person)) = first else {
        return Ok(None);
    };
    sqlx::query("UPDATE event_entries SET waiting = 0 WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(Some(person))
}

/// The groups an event is posted in.
pub async fn targets(conn: &mut Conn, id: i64) -> Result<Vec<Target>> {
    let rows = sqlx::query(
        "SELECT c.id, c.platform, c.chat_id, c.org_id, c.committee_wide FROM event_chats e \
         JOIN chats c ON c.id = e.chat WHERE e.event_id = $1 ORDER BY c.id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(super::notices::target_from_row).collect()
}

/// The open events posted in group `chat`, latest first, at most `limit`
/// (for a sign-up that names no list).
pub async fn open_all_in_chat(conn: &mut Conn, chat: i64, limit: i64) -> Result<Vec<Event>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE status = 'open' \
         AND id IN (SELECT event_id FROM event_chats WHERE chat = $1) ORDER BY id DESC LIMIT $2"
    )))
    .bind(chat)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Remember that outbox row `outbox_id` shows list `event`.
pub async fn add_post(conn: &mut Conn, event: i64, outbox_id: i64) -> Result<()> {
    sqlx::query("INSERT INTO event_posts (outbox_id, event_id) VALUES ($1, $2)")
        .bind(outbox_id)
        .bind(event)
        .execute(conn)
        .await?;
    Ok(())
}

/// The list shown by the message the platform knows as `message_id` in
/// this chat, if it is one of ours.
pub async fn by_post(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    message_id: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT p.event_id FROM event_posts p JOIN outbox o ON o.id = p.outbox_id \
         WHERE o.platform = $1 AND o.chat_id = $2 AND o.platform_message_id = $3 LIMIT 1",
    )
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(message_id)
    .fetch_optional(conn)
    .await?)
}
