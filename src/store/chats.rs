//! Chats the bot is in and what each is bound to.

use super::db::{Db, Get, query};
use super::{Conn, Result, StoreError};
use crate::domain::{ChatKind, Platform};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub id: i64,
    pub platform: Platform,
    pub chat_id: String,
    pub title: Option<String>,
    pub kind: ChatKind,
    pub org_id: Option<i64>,
    pub committee_wide: bool,
    pub active: bool,
}

impl Chat {
    pub fn is_group(&self) -> bool {
        self.kind == ChatKind::Group
    }
}

const COLUMNS: &str = "id, platform, chat_id, title, kind, org_id, committee_wide, active";

fn from_row(row: &impl Get) -> Result<Chat> {
    let platform: String = row.get("platform")?;
    let kind: String = row.get("kind")?;
    Ok(Chat {
        id: row.get("id")?,
        platform: platform
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("platform {platform}")))?,
        chat_id: row.get("chat_id")?,
        title: row.get("title")?,
        kind: kind
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("chat kind {kind}")))?,
        org_id: row.get("org_id")?,
        committee_wide: row.get::<i64>("committee_wide")? != 0,
        active: row.get::<i64>("active")? != 0,
    })
}

pub async fn find(conn: &mut impl Db, platform: Platform, chat_id: &str) -> Result<Option<Chat>> {
    let row = query(format!(
        "SELECT {COLUMNS} FROM chats WHERE platform = $1 AND chat_id = $2"
    ))
    .bind(platform.as_str())
    .bind(chat_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Record that a message came from this chat: create it on first sight,
/// keep its title current and mark it active again. Writes nothing when
/// all of that is so already (most messages: one read, no page to commit).
pub async fn upsert_seen(
    conn: &mut impl Db,
    platform: Platform,
    chat_id: &str,
    kind: ChatKind,
    title: Option<&str>,
    now_ms: i64,
) -> Result<Chat> {
    if let Some(chat) = find(&mut *conn, platform, chat_id).await?
        && chat.active
        && (title.is_none() || title == chat.title.as_deref())
    {
        return Ok(chat);
    }
    let row = query(format!(
        "INSERT INTO chats (platform, chat_id, title, kind, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (platform, chat_id) DO UPDATE SET \
           title = COALESCE(excluded.title, chats.title), active = 1, \
           updated_at = excluded.updated_at \
         RETURNING {COLUMNS}"
    ))
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(title)
    .bind(kind.as_str())
    .bind(now_ms)
    .fetch_one(conn)
    .await?;
    from_row(&row)
}

/// Bind a chat to an org (`org_id`), or make it committee-wide (`None`).
pub async fn bind(conn: &mut Conn, id: i64, org_id: Option<i64>, now_ms: i64) -> Result<()> {
    sqlx::query("UPDATE chats SET org_id = $1, committee_wide = $2, updated_at = $3 WHERE id = $4")
        .bind(org_id)
        .bind(i64::from(org_id.is_none()))
        .bind(now_ms)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn unbind(conn: &mut Conn, id: i64, now_ms: i64) -> Result<()> {
    sqlx::query(
        "UPDATE chats SET org_id = NULL, committee_wide = 0, updated_at = $1 WHERE id = $2",
    )
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_active(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    active: bool,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE chats SET active = $1, updated_at = $2 WHERE platform = $3 AND chat_id = $4",
    )
    .bind(i64::from(active))
    .bind(now_ms)
    .bind(platform.as_str())
    .bind(chat_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Active groups bound to an org or committee-wide: broadcast targets.
pub async fn bound_groups(conn: &mut Conn) -> Result<Vec<Chat>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM chats WHERE kind = 'group' AND active = 1 \
         AND (org_id IS NOT NULL OR committee_wide = 1) ORDER BY id"
    )))
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Whether the bot may write to this account privately: it has a private
/// chat with the bot that is still active. (Telegram lets a bot write only
/// to people who started a chat with it, and QQ only to friends; either way
/// the person wrote to the bot privately first.)
pub async fn private_open(conn: &mut impl Db, platform: Platform, user_id: &str) -> Result<bool> {
    Ok(find(conn, platform, user_id)
        .await?
        .is_some_and(|c| c.kind == ChatKind::Private && c.active))
}

/// Active committee-wide groups (the county cadres' group).
pub async fn committee_groups(conn: &mut Conn) -> Result<Vec<Chat>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM chats WHERE kind = 'group' AND active = 1 AND committee_wide = 1 \
         ORDER BY id"
    )))
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Groups bound to one org.
pub async fn groups_of_org(conn: &mut Conn, org_id: i64) -> Result<Vec<Chat>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM chats WHERE kind = 'group' AND active = 1 AND org_id = $1 \
         ORDER BY id"
    )))
    .bind(org_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Move a chat to a new id (Telegram group → supergroup migration).
pub async fn rename_id(
    conn: &mut Conn,
    platform: Platform,
    old: &str,
    new: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE chats SET chat_id = $1, updated_at = $2 WHERE platform = $3 AND chat_id = $4",
    )
    .bind(new)
    .bind(now_ms)
    .bind(platform.as_str())
    .bind(old)
    .execute(conn)
    .await?;
    Ok(())
}

/// The chat's owner allows (or no longer allows) the bot to send messages
/// unprompted, where the platform has such a switch: the QQ Bot API, whose
/// reply ledger keeps it (`store::qqbot`). Elsewhere the bot may always
/// speak, and nothing is written.
pub async fn set_unprompted(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    allowed: bool,
    now_ms: i64,
) -> Result<()> {
    if platform == Platform::QqBot {
        crate::store::qqbot::set_active_allowed(conn, chat_id, allowed, now_ms).await?;
    }
    Ok(())
}

/// A chat's own switches, where its platform has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    /// The owner lets the bot speak unprompted: `Some(false)` when the
    /// platform refused or the owner turned it off, `None` when not known
    /// yet (the first unprompted message finds out).
    pub unprompted: Option<bool>,
    /// Every message of the chat reaches the bot (not only those that @ it).
    pub hears_all: bool,
}

/// The switches of `chat_id` (a chat of `kind`): on the QQ Bot API a group
/// is heard in full only once a message without an @ arrived (the owner's
/// 「获取群内全部消息」), and spoken to unprompted only where the owner
/// allows; private chats and the other platforms have no switches.
pub async fn switches(
    conn: &mut Conn,
    platform: Platform,
    chat_id: &str,
    kind: ChatKind,
) -> Result<Switches> {
    if platform != Platform::QqBot || kind != ChatKind::Group {
        return Ok(Switches {
            unprompted: Some(true),
            hears_all: true,
        });
    }
    let state = crate::store::qqbot::chat_state(conn, chat_id).await?;
    Ok(Switches {
        unprompted: state.active_allowed,
        hears_all: state.all_messages,
    })
}
