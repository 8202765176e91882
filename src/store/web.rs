//! The web dashboard's tables (sign-in links, sessions) and the read-only
//! queries its pages need beyond what the other store modules offer.
//!
//! Secrets (link tokens, session ids) are never stored: only their SHA-256
//! hex digests, computed by the caller.

use std::collections::HashMap;

use sqlx::Row;

use super::{Conn, MAX_BINDS, Result, StoreError, placeholders};
use crate::domain::wish::WishStatus;
use crate::domain::{Platform, Role};

/// What a link or session grants: the whole county, or one org read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Staff,
    Cadre,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Staff => "staff",
            Scope::Cadre => "cadre",
        }
    }

    fn parse(s: &str) -> Result<Scope> {
        match s {
            "staff" => Ok(Scope::Staff),
            "cadre" => Ok(Scope::Cadre),
            other => Err(StoreError::Corrupt(format!("web scope {other}"))),
        }
    }
}

pub struct NewLink<'a> {
    pub token_hash: &'a str,
    pub person_id: i64,
    pub scope: Scope,
    pub org_id: Option<i64>,
    pub now_ms: i64,
    pub expires_at: i64,
}

pub async fn insert_link(conn: &mut Conn, l: &NewLink<'_>) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO web_links (token_hash, person_id, scope, org_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(l.token_hash)
    .bind(l.person_id)
    .bind(l.scope.as_str())
    .bind(l.org_id)
    .bind(l.now_ms)
    .bind(l.expires_at)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// A consumed link: who signs in, with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub link_id: i64,
    pub person_id: i64,
    pub scope: Scope,
    pub org_id: Option<i64>,
}

/// Why a link does not sign anyone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Valid: not used, not expired.
    Usable,
    Unknown,
    Used,
    Expired,
}

/// The state of a link without touching it (the confirmation page).
pub async fn link_state(conn: &mut Conn, token_hash: &str, now_ms: i64) -> Result<LinkState> {
    let row = sqlx::query("SELECT expires_at, used_at FROM web_links WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(LinkState::Unknown);
    };
    let expires_at: i64 = row.try_get("expires_at")?;
    let used_at: Option<i64> = row.try_get("used_at")?;
    Ok(if used_at.is_some() {
        LinkState::Used
    } else if expires_at <= now_ms {
        LinkState::Expired
    } else {
        LinkState::Usable
    })
}

/// Consume a link: one conditional UPDATE, so of two concurrent uses at most
/// one gets `Ok(Some(_))`.
pub async fn consume_link(
    conn: &mut Conn,
    token_hash: &str,
    now_ms: i64,
) -> Result<Option<Granted>> {
    let row = sqlx::query(
        "UPDATE web_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
         AND expires_at > $1 RETURNING id, person_id, scope, org_id",
    )
    .bind(now_ms)
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Granted {
            link_id: r.try_get("id")?,
            person_id: r.try_get("person_id")?,
            scope: Scope::parse(&r.try_get::<String, _>("scope")?)?,
            org_id: r.try_get("org_id")?,
        })
    })
    .transpose()
}

pub struct NewSession<'a> {
    pub session_hash: &'a str,
    pub person_id: i64,
    pub scope: Scope,
    pub org_id: Option<i64>,
    pub csrf: &'a str,
    pub now_ms: i64,
    pub expires_at: i64,
}

pub async fn insert_session(conn: &mut Conn, s: &NewSession<'_>) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO web_sessions (session_hash, person_id, scope, org_id, csrf, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(s.session_hash)
    .bind(s.person_id)
    .bind(s.scope.as_str())
    .bind(s.org_id)
    .bind(s.csrf)
    .bind(s.now_ms)
    .bind(s.expires_at)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// A live session with its person as they are now (role and org are read
/// per request, so a demoted person loses access at once).
#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub person_id: i64,
    pub scope: Scope,
    pub csrf: String,
    pub expires_at: i64,
    pub platform: Platform,
    pub user_id: String,
    pub display_name: String,
    pub role: Role,
    pub org_id: Option<i64>,
}

pub async fn session(conn: &mut Conn, session_hash: &str, now_ms: i64) -> Result<Option<Session>> {
    let row = sqlx::query(
        "SELECT s.id, s.person_id, s.scope, s.csrf, s.expires_at, p.platform, p.user_id, \
         p.display_name, p.role, p.org_id FROM web_sessions s JOIN people p ON p.id = s.person_id \
         WHERE s.session_hash = $1 AND s.expires_at > $2",
    )
    .bind(session_hash)
    .bind(now_ms)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let platform: String = r.try_get("platform")?;
    let role: String = r.try_get("role")?;
    Ok(Some(Session {
        id: r.try_get("id")?,
        person_id: r.try_get("person_id")?,
        scope: Scope::parse(&r.try_get::<String, _>("scope")?)?,
        csrf: r.try_get("csrf")?,
        expires_at: r.try_get("expires_at")?,
        platform: platform
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("platform {platform}")))?,
        user_id: r.try_get("user_id")?,
        display_name: r.try_get("display_name")?,
        role: role
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("role {role}")))?,
        org_id: r.try_get("org_id")?,
    }))
}

/// Sign out: the session row goes; expired rows of anyone go with it.
pub async fn delete_session(conn: &mut Conn, id: i64, now_ms: i64) -> Result<()> {
    sqlx::query("DELETE FROM web_sessions WHERE id = $1 OR expires_at <= $2")
        .bind(id)
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(())
}

/// Outbox rows waiting to be sent, all platforms (`/metrics`).
pub async fn outbox_pending(conn: &mut Conn) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
            .fetch_one(conn)
            .await?,
    )
}

/// Wishes of a batch per holding org and status: `(org_id, status) → n`.
pub async fn wish_counts_by_org(
    conn: &mut Conn,
    batch_id: i64,
) -> Result<HashMap<(Option<i64>, String), i64>> {
    let rows = sqlx::query(
        "SELECT org_id, status, COUNT(*) AS n FROM wishes WHERE batch_id = $1 \
         GROUP BY org_id, status",
    )
    .bind(batch_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                (r.try_get("org_id")?, r.try_get("status")?),
                r.try_get("n")?,
            ))
        })
        .collect()
}

/// Notices sent since `since_ms`, newest first.
pub async fn sent_notice_ids(conn: &mut Conn, since_ms: i64, limit: i64) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM notices WHERE status = 'sent' AND sent_at >= $1 \
         ORDER BY sent_at DESC, id DESC LIMIT $2",
    )
    .bind(since_ms)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The photo file refs of activities, by activity id, each activity's in
/// the order they were added. One query per [`MAX_BINDS`] ids.
pub async fn photo_refs(conn: &mut Conn, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for chunk in ids.chunks(MAX_BINDS) {
        let sql = format!(
            "SELECT activity_id, file_ref FROM activity_photos WHERE activity_id IN ({}) \
             ORDER BY id",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.entry(r.try_get("activity_id")?)
                .or_default()
                .push(r.try_get("file_ref")?);
        }
    }
    Ok(out)
}

/// The latest wish claims of a batch (claimed or delivered), newest first.
pub async fn recent_claims(
    conn: &mut Conn,
    batch_id: i64,
    org_id: Option<i64>,
    limit: i64,
) -> Result<Vec<super::wishes::Wish>> {
    let mut list = super::wishes::list(conn, batch_id, None, org_id, None).await?;
    // A revoked wish keeps its holder and claim time; it is no claim now.
    list.retain(|w| {
        matches!(w.status, WishStatus::Claimed | WishStatus::Delivered)
            && w.claimed_at.is_some()
            && w.org_id.is_some()
    });
    list.sort_by_key(|w| std::cmp::Reverse((w.claimed_at, w.no)));
    list.truncate(limit.max(0) as usize);
    Ok(list)
}

/// The platform an activity was logged on (its photos are that platform's
/// file refs).
pub async fn activity_platform(conn: &mut Conn, id: i64) -> Result<Option<Platform>> {
    let p: Option<String> =
        sqlx::query_scalar("SELECT platform FROM activities WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    p.map(|p| {
        p.parse()
            .map_err(|_| StoreError::Corrupt(format!("platform {p}")))
    })
    .transpose()
}

/// Forget expired sessions, and links that expired a day ago (kept that
/// long so a late click is told "expired" rather than "unknown").
pub async fn purge_expired(conn: &mut Conn, now_ms: i64) -> Result<()> {
    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM web_links WHERE expires_at <= $1")
        .bind(now_ms - 86_400_000)
        .execute(conn)
        .await?;
    Ok(())
}
