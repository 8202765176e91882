//! Membership: join requests and the bot's messages that carry them,
//! one-time join codes, and the roster staff import.
//!
//! `people.org_id` is the approved membership; a pending request lives here
//! until a cadre of the org or staff decides it ([`decide`] is guarded by
//! `status = 'pending'`, so two approvers pressing at once decide it once).

use super::db::{Db, Get, query};
use super::{Result, StoreError};
use crate::domain::{Platform, Role};

/// A request to join an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub id: i64,
    pub person_id: i64,
    pub org_id: i64,
    pub status: String,
    pub from_org_id: Option<i64>,
    /// Where the person asked.
    pub platform: Platform,
    pub chat_id: String,
    pub username: Option<String>,
    pub on_roster: bool,
    pub created_at: i64,
}

const REQUEST_COLUMNS: &str = "r.id, r.person_id, r.org_id, r.status, r.from_org_id, r.platform, \
     r.chat_id, r.username, r.on_roster, r.created_at";

fn request_from_row(row: &impl Get) -> Result<JoinRequest> {
    let platform: String = row.get("platform")?;
    Ok(JoinRequest {
        id: row.get("id")?,
        person_id: row.get("person_id")?,
        org_id: row.get("org_id")?,
        status: row.get("status")?,
        from_org_id: row.get("from_org_id")?,
        platform: platform
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("platform {platform}")))?,
        chat_id: row.get("chat_id")?,
        username: row.get("username")?,
        on_roster: row.get::<i64>("on_roster")? != 0,
        created_at: row.get("created_at")?,
    })
}

/// A request to write.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub person_id: i64,
    pub org_id: i64,
    pub from_org_id: Option<i64>,
    pub platform: Platform,
    pub chat_id: &'a str,
    pub username: Option<&'a str>,
    pub on_roster: bool,
}

/// Write a pending request. The caller withdraws the person's earlier one
/// first ([`withdraw_pending`]): a person has one pending request at most.
pub async fn create(conn: &mut impl Db, r: &NewRequest<'_>, now_ms: i64) -> Result<i64> {
    query(
        "INSERT INTO join_requests (person_id, org_id, status, from_org_id, platform, chat_id, \
         username, on_roster, created_at) VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8) \
         RETURNING id",
    )
    .bind(r.person_id)
    .bind(r.org_id)
    .bind(r.from_org_id)
    .bind(r.platform.as_str())
    .bind(r.chat_id)
    .bind(r.username)
    .bind(i64::from(r.on_roster))
    .bind(now_ms)
    .fetch_one(conn)
    .await?
    .get("id")
}

pub async fn get(conn: &mut impl Db, id: i64) -> Result<Option<JoinRequest>> {
    let row = query(format!(
        "SELECT {REQUEST_COLUMNS} FROM join_requests r WHERE r.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(request_from_row).transpose()
}

/// The person's pending request, if any.
pub async fn pending_of(conn: &mut impl Db, person_id: i64) -> Result<Option<JoinRequest>> {
    let row = query(format!(
        "SELECT {REQUEST_COLUMNS} FROM join_requests r \
         WHERE r.person_id = $1 AND r.status = 'pending'"
    ))
    .bind(person_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(request_from_row).transpose()
}

/// A pending request with the asker's display name, as approvers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub request: JoinRequest,
    pub name: String,
    /// The asker's account id on their platform.
    pub user_id: String,
}

/// Pending requests, oldest first: for one org, or (`None`) for all.
pub async fn pending(conn: &mut impl Db, org_id: Option<i64>) -> Result<Vec<Listed>> {
    let filter = if org_id.is_some() {
        "AND r.org_id = $1"
    } else {
        ""
    };
    let mut q = query(format!(
        "SELECT {REQUEST_COLUMNS}, p.display_name, p.user_id FROM join_requests r \
         JOIN people p ON p.id = r.person_id WHERE r.status = 'pending' {filter} ORDER BY r.id"
    ));
    if let Some(org) = org_id {
        q = q.bind(org);
    }
    q.fetch_all(conn)
        .await?
        .iter()
        .map(|row| {
            Ok(Listed {
                request: request_from_row(row)?,
                name: row.get("display_name")?,
                user_id: row.get("user_id")?,
            })
        })
        .collect()
}

/// Move a pending request to `status` (`approved`, `rejected`, `withdrawn`).
/// False when it was no longer pending: someone decided it first.
pub async fn decide(
    conn: &mut impl Db,
    id: i64,
    status: &str,
    by: Option<i64>,
    now_ms: i64,
) -> Result<bool> {
    let n = query(
        "UPDATE join_requests SET status = $1, decided_by = $2, decided_at = $3 \
         WHERE id = $4 AND status = 'pending'",
    )
    .bind(status)
    .bind(by)
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Withdraw the person's pending request (they asked for another org, or
/// staff placed them). Returns its id when there was one.
pub async fn withdraw_pending(
    conn: &mut impl Db,
    person_id: i64,
    by: Option<i64>,
    now_ms: i64,
) -> Result<Option<JoinRequest>> {
    let Some(r) = pending_of(&mut *conn, person_id).await? else {
        return Ok(None);
    };
    decide(conn, r.id, "withdrawn", by, now_ms).await?;
    Ok(Some(r))
}

/// Remember that outbox row `outbox_id` carries request `request_id`.
pub async fn add_post(conn: &mut impl Db, outbox_id: i64, request_id: i64) -> Result<()> {
    query("INSERT INTO join_request_posts (outbox_id, request_id) VALUES ($1, $2)")
        .bind(outbox_id)
        .bind(request_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The request carried by the bot's message the platform knows as
/// `message_id` in this chat, if it is one.
pub async fn by_post(
    conn: &mut impl Db,
    platform: Platform,
    chat_id: &str,
    message_id: &str,
) -> Result<Option<i64>> {
    let row = query(
        "SELECT p.request_id FROM join_request_posts p JOIN outbox o ON o.id = p.outbox_id \
         WHERE o.platform = $1 AND o.chat_id = $2 AND o.platform_message_id = $3 LIMIT 1",
    )
    .bind(platform.as_str())
    .bind(chat_id)
    .bind(message_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.get("request_id")).transpose()
}

/// The bot's messages carrying a request: (outbox id, platform, chat id).
pub async fn posts(conn: &mut impl Db, request_id: i64) -> Result<Vec<(i64, Platform, String)>> {
    query(
        "SELECT o.id, o.platform, o.chat_id FROM join_request_posts p \
         JOIN outbox o ON o.id = p.outbox_id WHERE p.request_id = $1 ORDER BY o.id",
    )
    .bind(request_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        let platform: String = r.get("platform")?;
        Ok((
            r.get("id")?,
            platform
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("platform {platform}")))?,
            r.get("chat_id")?,
        ))
    })
    .collect()
}

// ------------------------------------------------------------ join codes

/// A join code as stored: its row id, salt and salted digest.
#[derive(Debug, Clone)]
pub struct StoredCode {
    pub id: i64,
    pub salt: String,
    pub code_hash: String,
}

pub async fn insert_code(
    conn: &mut impl Db,
    org_id: i64,
    salt: &str,
    code_hash: &str,
    issued_by: i64,
    now_ms: i64,
    expires_at: i64,
) -> Result<i64> {
    query(
        "INSERT INTO join_codes (org_id, salt, code_hash, issued_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(org_id)
    .bind(salt)
    .bind(code_hash)
    .bind(issued_by)
    .bind(now_ms)
    .bind(expires_at)
    .fetch_one(conn)
    .await?
    .get("id")
}

/// An org's codes that are neither used nor expired at `now_ms`.
pub async fn live_codes(conn: &mut impl Db, org_id: i64, now_ms: i64) -> Result<Vec<StoredCode>> {
    query(
        "SELECT id, salt, code_hash FROM join_codes \
         WHERE org_id = $1 AND used_at IS NULL AND expires_at > $2 ORDER BY id",
    )
    .bind(org_id)
    .bind(now_ms)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(StoredCode {
            id: r.get("id")?,
            salt: r.get("salt")?,
            code_hash: r.get("code_hash")?,
        })
    })
    .collect()
}

/// Use a code once: false when it was used (or expired) meanwhile.
pub async fn use_code(conn: &mut impl Db, id: i64, person_id: i64, now_ms: i64) -> Result<bool> {
    let n = query(
        "UPDATE join_codes SET used_at = $1, used_by = $2 \
         WHERE id = $3 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now_ms)
    .bind(person_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// How many wrong join codes this person typed since `since_ms` (their
/// audit rows): codes are short, so wrong guesses are limited.
pub async fn wrong_codes_since(conn: &mut impl Db, person_id: i64, since_ms: i64) -> Result<i64> {
    query(
        "SELECT COUNT(*) AS n FROM audit_log WHERE entity = 'person' AND entity_id = $1 \
         AND action = 'join.code_wrong' AND at > $2",
    )
    .bind(person_id.to_string())
    .bind(since_ms)
    .fetch_one(conn)
    .await?
    .get("n")
}

// ------------------------------------------------------------ roster

/// One roster row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    pub org_id: i64,
    pub name: String,
    /// A QQ number (the OneBot user id).
    pub qq: Option<String>,
    /// A Telegram username, lower case, without `@`.
    pub telegram: Option<String>,
    pub role: Role,
}

const ROSTER_COLUMNS: &str = "org_id, name, qq, telegram, role";

fn roster_from_row(row: &impl Get) -> Result<RosterRow> {
    let role: String = row.get("role")?;
    Ok(RosterRow {
        org_id: row.get("org_id")?,
        name: row.get("name")?,
        qq: row.get("qq")?,
        telegram: row.get("telegram")?,
        role: role
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("roster role {role}")))?,
    })
}

/// Replace one org's roster with `rows`.
pub async fn replace_roster(
    conn: &mut impl Db,
    org_id: i64,
    rows: &[RosterRow],
    now_ms: i64,
) -> Result<()> {
    query("DELETE FROM roster WHERE org_id = $1")
        .bind(org_id)
        .execute(&mut *conn)
        .await?;
    for chunk in rows.chunks(super::MAX_BINDS / 6) {
        let sql = format!(
            "INSERT INTO roster (org_id, name, qq, telegram, role, created_at) VALUES {}",
            super::row_placeholders(chunk.len(), 6)
        );
        let mut q = query(sql);
        for r in chunk {
            q = q
                .bind(org_id)
                .bind(r.name.as_str())
                .bind(r.qq.as_deref())
                .bind(r.telegram.as_deref())
                .bind(r.role.as_str())
                .bind(now_ms);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Every roster row (to check an import against the orgs it leaves alone).
pub async fn roster_all(conn: &mut impl Db) -> Result<Vec<RosterRow>> {
    query(format!(
        "SELECT {ROSTER_COLUMNS} FROM roster ORDER BY org_id, id"
    ))
    .fetch_all(conn)
    .await?
    .iter()
    .map(roster_from_row)
    .collect()
}

/// The roster row naming this account: a QQ number on QQ, a Telegram
/// username on Telegram.
pub async fn roster_by_account(
    conn: &mut impl Db,
    platform: Platform,
    user_id: &str,
    username: Option<&str>,
) -> Result<Option<RosterRow>> {
    let (column, value) = match (platform, username) {
        (Platform::Qq, _) => ("qq", user_id.to_string()),
        (Platform::Telegram, Some(u)) => ("telegram", u.trim_start_matches('@').to_lowercase()),
        _ => return Ok(None),
    };
    let row = query(format!(
        "SELECT {ROSTER_COLUMNS} FROM roster WHERE {column} = $1"
    ))
    .bind(value)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(roster_from_row).transpose()
}

/// Whether the org's roster carries this name.
pub async fn roster_has_name(conn: &mut impl Db, org_id: i64, name: &str) -> Result<bool> {
    let row = query("SELECT 1 AS one FROM roster WHERE org_id = $1 AND name = $2 LIMIT 1")
        .bind(org_id)
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}
