//! People: one account on one platform, with its org and role.

use super::db::{Db, Get, query};
use super::{Conn, Result, StoreError};
use crate::domain::{Platform, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: i64,
    pub platform: Platform,
    pub user_id: String,
    pub display_name: String,
    pub org_id: Option<i64>,
    pub role: Role,
    pub locale: Option<String>,
}

const COLUMNS: &str = "id, platform, user_id, display_name, org_id, role, locale";

fn from_row(row: &impl Get) -> Result<Person> {
    let platform: String = row.get("platform")?;
    let role: String = row.get("role")?;
    Ok(Person {
        id: row.get("id")?,
        platform: platform
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("platform {platform}")))?,
        user_id: row.get("user_id")?,
        display_name: row.get("display_name")?,
        org_id: row.get("org_id")?,
        role: role
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("role {role}")))?,
        locale: row.get("locale")?,
    })
}

pub async fn find(conn: &mut impl Db, platform: Platform, user_id: &str) -> Result<Option<Person>> {
    let row = query(format!(
        "SELECT {COLUMNS} FROM people WHERE platform = $1 AND user_id = $2"
    ))
    .bind(platform.as_str())
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Person>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM people WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// People on a platform whose display name is exactly `name`.
pub async fn find_by_name(conn: &mut Conn, platform: Platform, name: &str) -> Result<Vec<Person>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM people WHERE platform = $1 AND display_name = $2 ORDER BY id"
    )))
    .bind(platform.as_str())
    .bind(name)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// People of an org with at least `role`, e.g. its cadres.
pub async fn of_org(conn: &mut Conn, org_id: i64) -> Result<Vec<Person>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM people WHERE org_id = $1 ORDER BY id"
    )))
    .bind(org_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Everyone with `role` (e.g. every staff member), by id.
pub async fn with_role(conn: &mut Conn, role: Role) -> Result<Vec<Person>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM people WHERE role = $1 ORDER BY id"
    )))
    .bind(role.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Record that we saw this account; create it as a member on first sight and
/// keep its display name current. Returns the person and whether it is new.
pub async fn upsert_seen(
    conn: &mut impl Db,
    platform: Platform,
    user_id: &str,
    display_name: &str,
    now_ms: i64,
) -> Result<(Person, bool)> {
    if let Some(mut p) = find(&mut *conn, platform, user_id).await? {
        if !display_name.is_empty() && p.display_name != display_name {
            query("UPDATE people SET display_name = $1, updated_at = $2 WHERE id = $3")
                .bind(display_name)
                .bind(now_ms)
                .bind(p.id)
                .execute(conn)
                .await?;
            p.display_name = display_name.to_string();
        }
        return Ok((p, false));
    }
    let row = query(format!(
        "INSERT INTO people (platform, user_id, display_name, role, created_at, updated_at) \
         VALUES ($1, $2, $3, 'member', $4, $4) \
         ON CONFLICT (platform, user_id) DO UPDATE SET updated_at = excluded.updated_at \
         RETURNING {COLUMNS}"
    ))
    .bind(platform.as_str())
    .bind(user_id)
    .bind(display_name)
    .bind(now_ms)
    .fetch_one(conn)
    .await?;
    Ok((from_row(&row)?, true))
}

/// [`upsert_seen`] for several accounts of one platform (`(user id, display
/// name)`, each once): one read for those already known and unchanged, the
/// single-account path for the rest. Returns them keyed by user id.
pub async fn seen_many(
    conn: &mut impl Db,
    platform: Platform,
    accounts: &[(&str, &str)],
    now_ms: i64,
) -> Result<std::collections::HashMap<String, Person>> {
    let mut out = std::collections::HashMap::with_capacity(accounts.len());
    for chunk in accounts.chunks(super::MAX_BINDS - 1) {
        let sql = format!(
            "SELECT {COLUMNS} FROM people WHERE platform = $1 AND user_id IN ({})",
            super::placeholders(2, chunk.len())
        );
        let mut q = query(sql).bind(platform.as_str());
        for (user, _) in chunk {
            q = q.bind(*user);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let p = from_row(&row)?;
            out.insert(p.user_id.clone(), p);
        }
    }
    for (user, name) in accounts {
        let known = out
            .get(*user)
            .is_some_and(|p| name.is_empty() || p.display_name == *name);
        if !known {
            let (p, _) = upsert_seen(&mut *conn, platform, user, name, now_ms).await?;
            out.insert(p.user_id.clone(), p);
        }
    }
    Ok(out)
}

pub async fn set_org(conn: &mut Conn, id: i64, org_id: Option<i64>, now_ms: i64) -> Result<()> {
    sqlx::query("UPDATE people SET org_id = $1, updated_at = $2 WHERE id = $3")
        .bind(org_id)
        .bind(now_ms)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_role(conn: &mut Conn, id: i64, role: Role, now_ms: i64) -> Result<()> {
    sqlx::query("UPDATE people SET role = $1, updated_at = $2 WHERE id = $3")
        .bind(role.as_str())
        .bind(now_ms)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
