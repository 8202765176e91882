//! The org tree (团县委 → 直属团组织 / 乡镇大团委 → …) and org aliases.

use std::collections::HashMap;

use sqlx::Row;

use super::db::{Db, Get, query};
use super::{Conn, Result, StoreError};
use crate::domain::OrgKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: i64,
    pub full_name: String,
    pub short_name: String,
    pub kind: OrgKind,
    pub parent_id: Option<i64>,
    pub secretary: Option<String>,
}

impl Org {
    /// The name used in chat replies: the short name when it has one.
    pub fn display(&self) -> &str {
        if self.short_name.is_empty() {
            &self.full_name
        } else {
            &self.short_name
        }
    }
}

fn from_row(row: &impl Get) -> Result<Org> {
    let kind: String = row.get("kind")?;
    Ok(Org {
        id: row.get("id")?,
        full_name: row.get("full_name")?,
        short_name: row.get("short_name")?,
        kind: OrgKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("org kind {kind}")))?,
        parent_id: row.get("parent_id")?,
        secretary: row.get("secretary")?,
    })
}

const COLUMNS: &str = "id, full_name, short_name, kind, parent_id, secretary";

pub async fn all(conn: &mut Conn) -> Result<Vec<Org>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orgs ORDER BY id"
    )))
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Org>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orgs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The orgs with these ids (missing ids are simply absent).
pub async fn get_many(conn: &mut impl Db, ids: &[i64]) -> Result<HashMap<i64, Org>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(super::MAX_BINDS) {
        let sql = format!(
            "SELECT {COLUMNS} FROM orgs WHERE id IN ({})",
            super::placeholders(1, chunk.len())
        );
        let mut q = query(sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let org = from_row(&row)?;
            out.insert(org.id, org);
        }
    }
    Ok(out)
}

pub async fn count(conn: &mut Conn) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM orgs")
        .fetch_one(conn)
        .await?)
}

/// Fields of an org as imported from a county list.
#[derive(Debug, Clone)]
pub struct NewOrg<'a> {
    pub full_name: &'a str,
    pub short_name: &'a str,
    pub kind: OrgKind,
    pub parent_id: Option<i64>,
    pub secretary: Option<&'a str>,
}

/// Insert, or update the org with the same full name. Returns the id and
/// whether anything changed (`None` = inserted, `Some(true)` = updated).
pub async fn upsert(conn: &mut Conn, org: &NewOrg<'_>, now_ms: i64) -> Result<(i64, Upserted)> {
    let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orgs WHERE full_name = $1"
    )))
    .bind(org.full_name)
    .fetch_optional(&mut *conn)
    .await?;
    match existing.as_ref().map(from_row).transpose()? {
        Some(old) => {
            let same = old.short_name == org.short_name
                && old.kind == org.kind
                && old.parent_id == org.parent_id
                && old.secretary.as_deref() == org.secretary;
            if same {
                return Ok((old.id, Upserted::Unchanged));
            }
            sqlx::query(
                "UPDATE orgs SET short_name = $1, kind = $2, parent_id = $3, secretary = $4, \
                 updated_at = $5 WHERE id = $6",
            )
            .bind(org.short_name)
            .bind(org.kind.as_str())
            .bind(org.parent_id)
            .bind(org.secretary)
            .bind(now_ms)
            .bind(old.id)
            .execute(conn)
            .await?;
            Ok((old.id, Upserted::Updated))
        }
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO orgs (full_name, short_name, kind, parent_id, secretary, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            )
            .bind(org.full_name)
            .bind(org.short_name)
            .bind(org.kind.as_str())
            .bind(org.parent_id)
            .bind(org.secretary)
            .bind(now_ms)
            .fetch_one(conn)
            .await?;
            Ok((id, Upserted::Inserted))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Inserted,
    Updated,
    Unchanged,
}

/// All aliases as (alias, org id).
pub async fn aliases(conn: &mut Conn) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT alias, org_id FROM org_aliases ORDER BY alias")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("alias")?, r.try_get("org_id")?)))
        .collect()
}

/// Point `alias` at `org_id` (re-pointing an existing alias).
pub async fn set_alias(conn: &mut Conn, alias: &str, org_id: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO org_aliases (alias, org_id) VALUES ($1, $2) \
         ON CONFLICT (alias) DO UPDATE SET org_id = excluded.org_id",
    )
    .bind(alias)
    .bind(org_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Number of people per org.
pub async fn member_counts(conn: &mut Conn) -> Result<HashMap<i64, i64>> {
    let rows = sqlx::query(
        "SELECT org_id, COUNT(*) AS n FROM people WHERE org_id IS NOT NULL GROUP BY org_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("org_id")?, r.try_get("n")?)))
        .collect()
}
