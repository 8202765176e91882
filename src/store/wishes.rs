//! Micro-wish batches, wishes and per-org holdings.
//!
//! Claims are decided in memory under a per-batch lock ([`lock_batch`]:
//! PostgreSQL locks the batch row, SQLite's single writer serialises anyway)
//! from the wishes' states and the orgs' holdings read after the lock, then
//! written: each claimed wish with a guarded `UPDATE … WHERE status = 'open'`
//! and the holdings with one upsert. Every other change to a batch's wishes
//! (release, delivery, revoke) takes the same lock first, in the same order
//! (batch → wish → holdings), so a wish is never held twice and a quota never
//! exceeded under any concurrency, on both backends, and no two transactions
//! wait on each other in a cycle.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::db::{Db, Get, query};
use super::{Conn, MAX_BINDS, Result, StoreError, placeholders, row_placeholders};
use crate::domain::wish::WishStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: i64,
    pub name: String,
    pub total: i64,
    pub quota: Option<i64>,
    /// `draft`, `scheduled` or `published`.
    pub status: String,
    pub publish_at: Option<i64>,
    pub platform: Option<String>,
    pub chat_id: Option<String>,
    pub published_at: Option<i64>,
    pub board_outbox_id: Option<i64>,
    pub board_edit_at: Option<i64>,
    pub open_n: i64,
    pub claimed_n: i64,
    pub delivered_n: i64,
    pub last_claim: Option<String>,
}

const BATCH_COLUMNS: &str = "id, name, total, quota, status, publish_at, platform, chat_id, \
     published_at, board_outbox_id, board_edit_at, open_n, claimed_n, delivered_n, last_claim";

fn batch_from_row(r: &impl Get) -> Result<Batch> {
    Ok(Batch {
        id: r.get("id")?,
        name: r.get("name")?,
        total: r.get("total")?,
        quota: r.get("quota")?,
        status: r.get("status")?,
        publish_at: r.get("publish_at")?,
        platform: r.get("platform")?,
        chat_id: r.get("chat_id")?,
        published_at: r.get("published_at")?,
        board_outbox_id: r.get("board_outbox_id")?,
        board_edit_at: r.get("board_edit_at")?,
        open_n: r.get("open_n")?,
        claimed_n: r.get("claimed_n")?,
        delivered_n: r.get("delivered_n")?,
        last_claim: r.get("last_claim")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wish {
    pub id: i64,
    pub batch_id: i64,
    pub no: i64,
    pub school: String,
    pub grade: String,
    pub child: String,
    pub item: String,
    pub price_yuan: Option<i64>,
    pub note: Option<String>,
    pub status: WishStatus,
    pub org_id: Option<i64>,
    pub claimer_id: Option<i64>,
    pub claimed_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub proof_ref: Option<String>,
    pub revoke_reason: Option<String>,
}

const WISH_COLUMNS: &str = "id, batch_id, no, school, grade, child, item, price_yuan, note, \
     status, org_id, claimer_id, claimed_at, delivered_at, proof_ref, revoke_reason";

fn wish_from_row(r: &AnyRow) -> Result<Wish> {
    let status: String = r.try_get("status")?;
    Ok(Wish {
        id: r.try_get("id")?,
        batch_id: r.try_get("batch_id")?,
        no: r.try_get("no")?,
        school: r.try_get("school")?,
        grade: r.try_get("grade")?,
        child: r.try_get("child")?,
        item: r.try_get("item")?,
        price_yuan: r.try_get("price_yuan")?,
        note: r.try_get("note")?,
        status: WishStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("wish status {status}")))?,
        org_id: r.try_get("org_id")?,
        claimer_id: r.try_get("claimer_id")?,
        claimed_at: r.try_get("claimed_at")?,
        delivered_at: r.try_get("delivered_at")?,
        proof_ref: r.try_get("proof_ref")?,
        revoke_reason: r.try_get("revoke_reason")?,
    })
}

/// One wish as imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWish {
    pub school: String,
    pub grade: String,
    pub child: String,
    pub item: String,
    pub price_yuan: Option<i64>,
    pub note: Option<String>,
}

pub async fn batch_by_name(conn: &mut Conn, name: &str) -> Result<Option<Batch>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BATCH_COLUMNS} FROM wish_batches WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(batch_from_row).transpose()
}

pub async fn batch(conn: &mut Conn, id: i64) -> Result<Option<Batch>> {
    batch_by_id(conn, id, "").await
}

/// Batch `id`; `suffix` ends the query (` FOR UPDATE` to lock the row).
async fn batch_by_id(conn: &mut impl Db, id: i64, suffix: &str) -> Result<Option<Batch>> {
    let row = query(format!(
        "SELECT {BATCH_COLUMNS} FROM wish_batches WHERE id = $1{suffix}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(batch_from_row).transpose()
}

/// The batch claims in this chat refer to: the latest published here, else
/// the latest published anywhere.
pub async fn current_batch(
    conn: &mut impl Db,
    platform: &str,
    chat_id: &str,
) -> Result<Option<Batch>> {
    let row = query(format!(
        "SELECT {BATCH_COLUMNS} FROM wish_batches WHERE status = 'published' \
         ORDER BY CASE WHEN platform = $1 AND chat_id = $2 THEN 0 ELSE 1 END, \
         published_at DESC, id DESC LIMIT 1"
    ))
    .bind(platform)
    .bind(chat_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(batch_from_row).transpose()
}

/// All batches, newest first.
pub async fn batches(conn: &mut Conn) -> Result<Vec<Batch>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BATCH_COLUMNS} FROM wish_batches ORDER BY id DESC"
    )))
    .fetch_all(conn)
    .await?;
    rows.iter().map(batch_from_row).collect()
}

/// Create a batch with its wishes numbered 1..N in the given order.
pub async fn create_batch(
    conn: &mut Conn,
    name: &str,
    wishes: &[NewWish],
    now_ms: i64,
) -> Result<i64> {
    let total = wishes.len() as i64;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO wish_batches (name, total, open_n, created_at) VALUES ($1, $2, $2, $3) \
         RETURNING id",
    )
    .bind(name)
    .bind(total)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    for (i, w) in wishes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO wishes (batch_id, no, school, grade, child, item, price_yuan, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(i as i64 + 1)
        .bind(w.school.as_str())
        .bind(w.grade.as_str())
        .bind(w.child.as_str())
        .bind(w.item.as_str())
        .bind(w.price_yuan)
        .bind(w.note.as_deref())
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

/// Mark a batch published in a chat, with its quota.
pub async fn set_published(
    conn: &mut Conn,
    id: i64,
    quota: Option<i64>,
    platform: &str,
    chat_id: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE wish_batches SET status = 'published', quota = $1, platform = $2, chat_id = $3, \
         published_at = $4, publish_at = NULL WHERE id = $5",
    )
    .bind(quota)
    .bind(platform)
    .bind(chat_id)
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Schedule a batch to be published in a chat at `at_ms`.
pub async fn set_scheduled(
    conn: &mut Conn,
    id: i64,
    quota: Option<i64>,
    platform: &str,
    chat_id: &str,
    at_ms: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE wish_batches SET status = 'scheduled', quota = $1, platform = $2, chat_id = $3, \
         publish_at = $4 WHERE id = $5",
    )
    .bind(quota)
    .bind(platform)
    .bind(chat_id)
    .bind(at_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The batch scheduled to open for claims in this chat (its list is out),
/// the soonest first.
pub async fn scheduled_in(
    conn: &mut impl Db,
    platform: &str,
    chat_id: &str,
) -> Result<Option<Batch>> {
    let row = query(format!(
        "SELECT {BATCH_COLUMNS} FROM wish_batches WHERE status = 'scheduled' \
         AND platform = $1 AND chat_id = $2 ORDER BY publish_at, id LIMIT 1"
    ))
    .bind(platform)
    .bind(chat_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(batch_from_row).transpose()
}

/// Scheduled batches whose time has come.
pub async fn due_scheduled(conn: &mut Conn, now_ms: i64) -> Result<Vec<Batch>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BATCH_COLUMNS} FROM wish_batches WHERE status = 'scheduled' \
         AND publish_at <= $1 ORDER BY id"
    )))
    .bind(now_ms)
    .fetch_all(conn)
    .await?;
    rows.iter().map(batch_from_row).collect()
}

/// Remember the board message and when it was last edited.
pub async fn set_board(
    conn: &mut impl Db,
    id: i64,
    outbox_id: Option<i64>,
    edit_at: i64,
) -> Result<()> {
    query(
        "UPDATE wish_batches SET board_outbox_id = COALESCE($1, board_outbox_id), \
         board_edit_at = $2 WHERE id = $3",
    )
    .bind(outbox_id)
    .bind(edit_at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Move the board counters by the given amounts; returns the fresh batch.
pub async fn bump(
    conn: &mut impl Db,
    id: i64,
    open: i64,
    claimed: i64,
    delivered: i64,
    last_claim: Option<&str>,
) -> Result<Batch> {
    let row = query(format!(
        "UPDATE wish_batches SET open_n = open_n + $1, claimed_n = claimed_n + $2, \
         delivered_n = delivered_n + $3, last_claim = COALESCE($4, last_claim) WHERE id = $5 \
         RETURNING {BATCH_COLUMNS}"
    ))
    .bind(open)
    .bind(claimed)
    .bind(delivered)
    .bind(last_claim)
    .bind(id)
    .fetch_one(conn)
    .await?;
    batch_from_row(&row)
}

pub async fn wish(conn: &mut Conn, batch_id: i64, no: i64) -> Result<Option<Wish>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {WISH_COLUMNS} FROM wishes WHERE batch_id = $1 AND no = $2"
    )))
    .bind(batch_id)
    .bind(no)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(wish_from_row).transpose()
}

/// Where a wish stands for a claim: its id, status and holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimState {
    pub id: i64,
    pub no: i64,
    pub status: WishStatus,
    pub org_id: Option<i64>,
    /// The holder's display name (short name, else full name).
    pub holder: Option<String>,
}

/// Serialise claims on one batch across processes: PostgreSQL locks the
/// batch row until the transaction ends and returns it as it is now, under
/// the lock. SQLite's single writer already serialises; there the
/// transaction's first read was current, and this returns `None`. Claims
/// read the wishes and holdings after this lock, decide in memory, then
/// write; every other change to a batch's wishes takes the same lock first,
/// so the lock order is always batch → wish → holdings and the decisions
/// can't be overtaken.
pub async fn lock_batch(conn: &mut impl Db, batch_id: i64) -> Result<Option<Batch>> {
    match conn.backend() {
        super::Backend::Sqlite => Ok(None),
        super::Backend::Postgres => batch_by_id(conn, batch_id, " FOR UPDATE").await,
    }
}

/// The claim state of wishes `nos` of a batch (numbers that don't exist are
/// simply absent).
pub async fn claim_states(
    conn: &mut impl Db,
    batch_id: i64,
    nos: &[i64],
) -> Result<Vec<ClaimState>> {
    let mut out = Vec::with_capacity(nos.len());
    for chunk in nos.chunks(MAX_BINDS - 1) {
        let sql = format!(
            "SELECT w.id, w.no, w.status, w.org_id, o.short_name, o.full_name FROM wishes w \
             LEFT JOIN orgs o ON o.id = w.org_id WHERE w.batch_id = $1 AND w.no IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = query(sql).bind(batch_id);
        for no in chunk {
            q = q.bind(*no);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let status: String = r.get("status")?;
            let short: Option<String> = r.get("short_name")?;
            let full: Option<String> = r.get("full_name")?;
            out.push(ClaimState {
                id: r.get("id")?,
                no: r.get("no")?,
                status: WishStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("wish status {status}")))?,
                org_id: r.get("org_id")?,
                holder: short.filter(|s| !s.is_empty()).or(full),
            });
        }
    }
    Ok(out)
}

/// How many wishes of a batch each of `orgs` holds (claimed or delivered);
/// an org that holds none is absent.
pub async fn holdings(conn: &mut impl Db, batch_id: i64, orgs: &[i64]) -> Result<Vec<(i64, i64)>> {
    let mut out = Vec::with_capacity(orgs.len());
    for chunk in orgs.chunks(MAX_BINDS - 1) {
        let sql = format!(
            "SELECT org_id, held FROM wish_holdings WHERE batch_id = $1 AND org_id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = query(sql).bind(batch_id);
        for org in chunk {
            q = q.bind(*org);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.push((r.get("org_id")?, r.get("held")?));
        }
    }
    Ok(out)
}

/// Mark open wishes claimed, several per statement: `(wish id, org id,
/// claimer's person id, claimed at)` each. Errors unless every one was open:
/// the caller decided under [`lock_batch`], so anything else is a broken
/// invariant, and the error rolls the caller's whole change back.
pub async fn take(conn: &mut impl Db, claims: &[(i64, i64, i64, i64)]) -> Result<()> {
    for chunk in claims.chunks(MAX_BINDS / 4) {
        // A VALUES list's columns are column1… on SQLite and PostgreSQL.
        let sql = format!(
            "UPDATE wishes SET status = 'claimed', org_id = v.column2, claimer_id = v.column3, \
             claimed_at = v.column4 FROM (VALUES {}) AS v \
             WHERE wishes.id = v.column1 AND wishes.status = 'open'",
            row_placeholders(chunk.len(), 4)
        );
        let mut q = query(sql);
        for (wish, org, person, at) in chunk {
            q = q.bind(*wish).bind(*org).bind(*person).bind(*at);
        }
        let changed = q.execute(&mut *conn).await?;
        if changed != chunk.len() as u64 {
            return Err(StoreError::Corrupt(format!(
                "{} of {} wishes were no longer open when claimed",
                chunk.len() as u64 - changed,
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// Add to orgs' holdings in one statement: `(org_id, how many more)`.
pub async fn add_holdings(conn: &mut impl Db, batch_id: i64, added: &[(i64, i64)]) -> Result<()> {
    for chunk in added.chunks(MAX_BINDS / 3) {
        let sql = format!(
            "INSERT INTO wish_holdings (batch_id, org_id, held) VALUES {} \
             ON CONFLICT (batch_id, org_id) DO UPDATE SET held = wish_holdings.held + excluded.held",
            row_placeholders(chunk.len(), 3)
        );
        let mut q = query(sql);
        for (org, n) in chunk {
            q = q.bind(batch_id).bind(*org).bind(*n);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn release_holding(conn: &mut Conn, batch_id: i64, org_id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE wish_holdings SET held = held - 1 WHERE batch_id = $1 AND org_id = $2 AND held > 0",
    )
    .bind(batch_id)
    .bind(org_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Give a claimed wish back (放弃): open again, the org's holding freed.
/// Only while claimed by `org_id`; returns whether it happened.
pub async fn release(conn: &mut Conn, wish: &Wish, org_id: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wishes SET status = 'open', org_id = NULL, claimer_id = NULL, claimed_at = NULL, \
         reminded_at = NULL WHERE id = $1 AND status = 'claimed' AND org_id = $2",
    )
    .bind(wish.id)
    .bind(org_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        release_holding(conn, wish.batch_id, org_id).await?;
        return Ok(true);
    }
    Ok(false)
}

/// Record delivery (圆梦) with its proof photo; only while claimed by `org_id`.
pub async fn deliver(
    conn: &mut Conn,
    wish: &Wish,
    org_id: i64,
    proof_ref: &str,
    now_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wishes SET status = 'delivered', delivered_at = $1, proof_ref = $2 \
         WHERE id = $3 AND status = 'claimed' AND org_id = $4",
    )
    .bind(now_ms)
    .bind(proof_ref)
    .bind(wish.id)
    .bind(org_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Take a wish down (下架) unless delivered; frees the holder's quota.
pub async fn revoke(conn: &mut Conn, wish: &Wish, reason: &str, now_ms: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE wishes SET status = 'revoked', revoked_at = $1, revoke_reason = $2 \
         WHERE id = $3 AND status IN ('open', 'claimed')",
    )
    .bind(now_ms)
    .bind(reason)
    .bind(wish.id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        if let (WishStatus::Claimed, Some(org)) = (wish.status, wish.org_id) {
            release_holding(conn, wish.batch_id, org).await?;
        }
        return Ok(true);
    }
    Ok(false)
}

/// Wishes of a batch in number order, optionally only one status, only one
/// org, or only those whose school or item contains `word`.
pub async fn list(
    conn: &mut Conn,
    batch_id: i64,
    status: Option<WishStatus>,
    org_id: Option<i64>,
    word: Option<&str>,
) -> Result<Vec<Wish>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {WISH_COLUMNS} FROM wishes WHERE batch_id = $1 \
         AND ($2 = '' OR status = $2) AND ($3 = 0 OR org_id = $3) \
         AND ($4 = '' OR school LIKE $5 OR item LIKE $5) ORDER BY no"
    )))
    .bind(batch_id)
    .bind(status.map(WishStatus::as_str).unwrap_or(""))
    .bind(org_id.unwrap_or(0))
    .bind(word.unwrap_or(""))
    .bind(format!("%{}%", like_escape(word.unwrap_or(""))))
    .fetch_all(conn)
    .await?;
    rows.iter().map(wish_from_row).collect()
}

/// `%` and `_` typed by a user match themselves.
fn like_escape(s: &str) -> String {
    s.replace(['%', '_'], "")
}

/// Wishes an org holds in any batch (claimed or delivered), newest batch first.
pub async fn held_by_org(conn: &mut Conn, org_id: i64) -> Result<Vec<(String, Wish)>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT b.name AS batch_name, {} FROM wishes w JOIN wish_batches b ON b.id = w.batch_id \
         WHERE w.org_id = $1 AND w.status IN ('claimed', 'delivered') ORDER BY b.id DESC, w.no",
        WISH_COLUMNS
            .split(", ")
            .map(|c| format!("w.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
    .bind(org_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("batch_name")?, wish_from_row(r)?)))
        .collect()
}

/// Claimed, undelivered wishes claimed before `claimed_before_ms` whose last
/// reminder (if any) is before `reminded_before_ms`.
pub async fn overdue(
    conn: &mut Conn,
    claimed_before_ms: i64,
    reminded_before_ms: i64,
) -> Result<Vec<Wish>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {WISH_COLUMNS} FROM wishes WHERE status = 'claimed' AND claimed_at < $1 \
         AND (reminded_at IS NULL OR reminded_at < $2) ORDER BY org_id, batch_id, no"
    )))
    .bind(claimed_before_ms)
    .bind(reminded_before_ms)
    .fetch_all(conn)
    .await?;
    rows.iter().map(wish_from_row).collect()
}

pub async fn mark_reminded(conn: &mut Conn, wish_id: i64, now_ms: i64) -> Result<()> {
    sqlx::query("UPDATE wishes SET reminded_at = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(wish_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Checks used by the benchmark and tests: wishes claimed more than once
/// (by the audit trail) and orgs holding more than the quota.
pub async fn violations(conn: &mut Conn, batch_id: i64) -> Result<(i64, i64)> {
    let double: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT entity_id FROM audit_log WHERE action = 'wish.claim' \
         AND entity = 'wish' AND entity_id IN (SELECT CAST(id AS TEXT) FROM wishes \
         WHERE batch_id = $1) GROUP BY entity_id HAVING COUNT(*) > 1) t",
    )
    .bind(batch_id)
    .fetch_one(&mut *conn)
    .await?;
    let over: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT w.org_id FROM wishes w JOIN wish_batches b \
         ON b.id = w.batch_id WHERE w.batch_id = $1 AND w.status IN ('claimed', 'delivered') \
         AND b.quota IS NOT NULL GROUP BY w.org_id, b.quota HAVING COUNT(*) > b.quota) t",
    )
    .bind(batch_id)
    .fetch_one(conn)
    .await?;
    Ok((double, over))
}

/// One wish with its holder's and claimer's names, for staff exports.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub wish: Wish,
    pub org: Option<String>,
    pub claimer: Option<String>,
}

/// Every wish of a batch in number order, with names, for `tuanbot export`.
pub async fn export(conn: &mut Conn, batch_id: i64) -> Result<Vec<ExportRow>> {
    let cols = WISH_COLUMNS
        .split(", ")
        .map(|c| format!("w.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {cols}, o.full_name AS org_name, p.display_name AS claimer_name FROM wishes w \
         LEFT JOIN orgs o ON o.id = w.org_id LEFT JOIN people p ON p.id = w.claimer_id \
         WHERE w.batch_id = $1 ORDER BY w.no"
    )))
    .bind(batch_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ExportRow {
                wish: wish_from_row(r)?,
                org: r.try_get("org_name")?,
                claimer: r.try_get("claimer_name")?,
            })
        })
        .collect()
}
