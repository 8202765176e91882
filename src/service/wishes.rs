//! Micro-wishes (微心愿 / 圆梦行动): import a batch, publish it as numbered
//! pages plus a board, claim by message in a rush, release, deliver with a
//! photo, revoke; overdue reminders and scheduled publishing for the
//! scheduler.
//!
//! Privacy: a child's name is personal data of a minor. Every text that can
//! reach a group goes through [`line`] with `full = false`, which masks the
//! name (`张*明`); full details are shown only in a private chat, to staff
//! and to the cadres of the org holding the wish ([`sees_full`]), and such
//! replies are marked personal (blanked in the outbox after the retention,
//! see `service::privacy`). Releasing and delivering are for those same
//! people; the holding org's members see masked lines.
//!
//! Rate limits: during a rush, claim results for one chat are gathered into
//! one pending outbox message (coalesce key per chat, sent ~2 s after the
//! first claim), and the board message is edited at most every 3 s; where
//! the platform cannot edit, the progress line rides along in the gathered
//! claim results instead.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::import_orgs::ImportError;
use super::orgs::{OrgMatch, resolve};
use super::proof::Proof;
use super::{Ctx, Result, clip};
use crate::chat::{Incoming, Outgoing};
use crate::command::deadline::When;
use crate::command::wishes::WishQuery;
use crate::domain::wish::{MAX_WISHES, WishStatus, mask_name};
use crate::domain::{Platform, Role};
use crate::engine::{Engine, Queued};
use crate::store::db::Db;
use crate::store::people::Person;
use crate::store::wishes::{self as db, Batch, NewWish, Wish};
use crate::store::{self, Conn, StoreError, audit, chats, orgs, outbox};
use crate::table::{Table, cell};
use rust_i18n::t;

/// Claim results for a chat are gathered this long before they go out.
const CLAIM_WINDOW_MS: i64 = 2_000;
/// The board is edited at most this often.
const BOARD_EDIT_MS: i64 = 3_000;
/// Wishes on one page at most (pages are also cut to fit one message). A
/// group gets at most 20 messages a minute from the bot, so fewer, fuller
/// pages leave room for claim results: 800 wishes are 8 Telegram pages
/// (11 on QQ's default 3,000 characters) instead of 14.
const PAGE_WISHES: usize = 100;
/// Longest cell texts accepted at import.
const MAX_SCHOOL: usize = 64;
const MAX_CHILD: usize = 16;
const MAX_ITEM: usize = 100;
const MAX_NOTE: usize = 200;

fn tr(locale: &str, key: &str) -> String {
    t!(key, locale = locale).into_owned()
}

// ---------------------------------------------------------------- import

/// Check a wish table (学校, 年级, 学生, 心愿, 估价（元）, 备注); all problems
/// are returned together, each with its row number.
pub fn validate(table: &Table, locale: &str) -> std::result::Result<Vec<NewWish>, ImportError> {
    let col = |names: &[&str]| table.column(names);
    let (school, grade, child, item, price, note) = (
        col(&["学校", "学校名称"]),
        col(&["年级", "年级班级", "班级"]),
        col(&["学生", "姓名", "学生姓名"]),
        col(&["心愿", "微心愿", "心愿内容"]),
        col(&["估价（元）", "估价(元)", "估价", "价格", "金额"]),
        col(&["备注"]),
    );
    super::import_orgs::require_columns(
        &[("学校", school), ("学生", child), ("心愿", item)],
        &tr(locale, "wishes.import.columns"),
        locale,
    )?;
    super::import_orgs::require_rows(
        table,
        MAX_WISHES as usize,
        ("wishes.import.empty", "wishes.import.too_many"),
        locale,
    )?;
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for (line, r) in &table.rows {
        let err = |key: &str, value: &str| {
            t!(key, locale = locale, line = line, value = clip(value, 30)).into_owned()
        };
        let (s, c, i) = (cell(r, school), cell(r, child), cell(r, item));
        let mut bad = false;
        for (v, field, max) in [
            (s, "学校", MAX_SCHOOL),
            (c, "学生", MAX_CHILD),
            (i, "心愿", MAX_ITEM),
        ] {
            if v.is_empty() {
                errors.push(
                    t!(
                        "wishes.import.empty_cell",
                        locale = locale,
                        line = line,
                        column = field
                    )
                    .into_owned(),
                );
                bad = true;
            } else if v.chars().count() > max {
                errors.push(
                    t!(
                        "wishes.import.too_long",
                        locale = locale,
                        line = line,
                        column = field,
                        max = max
                    )
                    .into_owned(),
                );
                bad = true;
            }
        }
        let price_text = cell(r, price).trim_end_matches('元').trim();
        let price_yuan = if price_text.is_empty() {
            None
        } else {
            match price_text.parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..=100_000.0).contains(&v) => Some(v.round() as i64),
                _ => {
                    errors.push(err("wishes.import.bad_price", price_text));
                    bad = true;
                    None
                }
            }
        };
        let note_text = cell(r, note);
        if note_text.chars().count() > MAX_NOTE {
            errors.push(
                t!(
                    "wishes.import.too_long",
                    locale = locale,
                    line = line,
                    column = "备注",
                    max = MAX_NOTE
                )
                .into_owned(),
            );
            bad = true;
        }
        if bad {
            continue;
        }
        rows.push(NewWish {
            school: s.to_string(),
            grade: cell(r, grade).to_string(),
            child: c.to_string(),
            item: i.to_string(),
            price_yuan,
            note: (!note_text.is_empty()).then(|| note_text.to_string()),
        });
    }
    super::import_orgs::row_errors(errors, locale)?;
    Ok(rows)
}

/// Validate a batch name: short, one line.
fn valid_batch_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=30).contains(&n) && !name.contains(['\n', '\r'])
}

/// Write a validated batch in the caller's transaction, audited. Fails with a
/// readable error when the name is taken.
pub async fn import(
    conn: &mut Conn,
    name: &str,
    rows: &[NewWish],
    platform: Platform,
    actor: &str,
    now_ms: i64,
    locale: &str,
) -> std::result::Result<i64, ImportError> {
    if !valid_batch_name(name) {
        return Err(ImportError::Invalid(vec![tr(
            locale,
            "wishes.import.bad_name",
        )]));
    }
    if db::batch_by_name(&mut *conn, name).await?.is_some() {
        return Err(ImportError::Invalid(vec![
            t!("wishes.import.exists", locale = locale, name = name).into_owned(),
        ]));
    }
    let id = db::create_batch(&mut *conn, name, rows, now_ms).await?;
    audit::record(
        conn,
        &audit::Entry {
            at_ms: now_ms,
            platform,
            actor,
            action: "wish.import",
            entity: "wish_batch",
            entity_id: Some(id.to_string()),
            detail: json!({"name": name, "wishes": rows.len()}),
        },
    )
    .await?;
    Ok(id)
}

/// `tuanbot import wishes FILE --batch NAME`: read, check and write a batch
/// in one transaction. Returns how many wishes were imported.
pub async fn import_file(
    store: &crate::store::Store,
    path: &std::path::Path,
    name: &str,
    locale: &str,
) -> std::result::Result<usize, ImportError> {
    let table = Table::read(path).map_err(|e| {
        ImportError::Invalid(vec![format!("{}: {}", path.display(), e.message(locale))])
    })?;
    let rows = validate(&table, locale)?;
    let now = store::ms(Utc::now());
    let mut tx = store.begin().await?;
    let imported = import(
        &mut tx,
        name.trim(),
        &rows,
        Platform::Console,
        "cli",
        now,
        locale,
    )
    .await;
    match imported {
        Ok(_) => tx.commit().await?,
        // Ended here, not left to a queued ROLLBACK on the pooled connection.
        Err(e) => {
            tx.rollback().await?;
            return Err(e);
        }
    }
    Ok(rows.len())
}

/// `/wishes import NAME` as the caption of a CSV/XLSX document (staff).
pub async fn import_in_chat(ctx: &mut Ctx<'_>, name: &str) -> Result {
    if !ctx.is_staff() {
        let text = tr(ctx.locale, "wishes.staff_only");
        ctx.reply(text);
        return Ok(());
    }
    let table = match super::files::document_table(ctx.document, ctx.locale, "wishes.import") {
        Ok(table) => table,
        Err(text) => {
            ctx.reply(text);
            return Ok(());
        }
    };
    let rows = match validate(table, ctx.locale) {
        Ok(rows) => rows,
        Err(e) => {
            let text = t!(
                "wishes.import.failed",
                locale = ctx.locale,
                errors = e.to_string()
            );
            ctx.reply(text);
            return Ok(());
        }
    };
    let name = name.trim();
    let (platform, actor, now_ms) = (ctx.msg.platform, ctx.msg.sender_id.clone(), ctx.now_ms());
    match import(ctx.tx, name, &rows, platform, &actor, now_ms, ctx.locale).await {
        Ok(_) => {
            let schools = rows
                .iter()
                .map(|r| r.school.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len();
            let text = t!(
                "wishes.import.done",
                locale = ctx.locale,
                name = name,
                n = rows.len(),
                schools = schools
            );
            ctx.reply(text);
        }
        Err(ImportError::Invalid(errors)) => {
            let text = t!(
                "wishes.import.failed",
                locale = ctx.locale,
                errors = errors.join("\n")
            );
            ctx.reply(text);
        }
        Err(ImportError::Store(e)) => return Err(e),
    }
    Ok(())
}

// ---------------------------------------------------------------- texts

/// One wish on one line. `full` shows the child's full name and the note;
/// otherwise the name is masked (groups).
fn line(w: &Wish, full: bool) -> String {
    let name = if full {
        w.child.clone()
    } else {
        mask_name(&w.child)
    };
    let mut s = format!("{}. {}", w.no, w.school);
    if !w.grade.is_empty() {
        s.push(' ');
        s.push_str(&w.grade);
    }
    s.push(' ');
    s.push_str(&name);
    s.push_str(" · ");
    s.push_str(&w.item);
    if let Some(p) = w.price_yuan {
        s.push_str(&format!(" · ¥{p}"));
    }
    if full && let Some(note) = &w.note {
        s.push_str(&format!("（{note}）"));
    }
    s
}

fn status_label(locale: &str, s: WishStatus) -> String {
    tr(locale, &format!("wishes.status.{}", s.as_str()))
}

fn join_nos(nos: &[i64]) -> String {
    nos.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join("、")
}

/// Cut lines into pages that each fit one message.
fn pages(lines: &[String], budget: usize) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut len = 0;
    for l in lines {
        let n = l.chars().count() + 1;
        if !cur.is_empty() && (cur.len() >= PAGE_WISHES || len + n > budget) {
            out.push(std::mem::take(&mut cur));
            len = 0;
        }
        len += n;
        cur.push(l.clone());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn page_budget(engine: &Engine, platform: Platform) -> usize {
    engine
        .capabilities(platform)
        .max_text_chars
        .saturating_sub(300)
        .max(500)
}

fn board_text(locale: &str, b: &Batch) -> String {
    let mut s = t!(
        "wishes.board",
        locale = locale,
        name = b.name.as_str(),
        taken = b.claimed_n + b.delivered_n,
        total = b.total,
        open = b.open_n,
        delivered = b.delivered_n
    )
    .into_owned();
    if let Some(last) = &b.last_claim {
        s.push('\n');
        s.push_str(&t!(
            "wishes.board_latest",
            locale = locale,
            last = last.as_str()
        ));
    }
    s
}

/// Whether the board of `b` lives in a chat whose platform can edit.
fn board_editable(engine: &Engine, b: &Batch) -> bool {
    b.platform
        .as_deref()
        .and_then(|p| p.parse::<Platform>().ok())
        .is_some_and(|p| engine.capabilities(p).edit)
}

/// The one-line progress that stands in for the board where messages cannot
/// be edited; it rides along in the gathered claim results.
fn board_summary(locale: &str, b: &Batch) -> String {
    t!(
        "wishes.board",
        locale = locale,
        name = b.name.as_str(),
        taken = b.claimed_n + b.delivered_n,
        total = b.total,
        open = b.open_n,
        delivered = b.delivered_n
    )
    .into_owned()
}

/// Queue a board edit: fold it into a pending one, else an edit no sooner
/// than [`BOARD_EDIT_MS`] after the last. Where the platform cannot edit,
/// nothing: re-posting a board would hold back every later message of the
/// chat (the outbox keeps a chat's order), so the progress line travels in
/// the gathered claim results instead (see [`claim`]).
async fn update_board(
    conn: &mut impl Db,
    engine: &Engine,
    b: &Batch,
    now_ms: i64,
    locale: &str,
) -> Result {
    let (Some(board), Some(platform), Some(chat)) = (
        b.board_outbox_id,
        b.platform
            .as_deref()
            .and_then(|p| p.parse::<Platform>().ok()),
        b.chat_id.as_deref(),
    ) else {
        return Ok(());
    };
    let key = format!("wishes:board:{}", b.id);
    let text = board_text(locale, b);
    // The board post itself or an edit of it, still waiting: new text only.
    if outbox::set_pending_text(&mut *conn, &key, &text).await? {
        return Ok(());
    }
    if !engine.capabilities(platform).edit {
        return Ok(());
    }
    let mut msg = Outgoing::new(platform, chat, text);
    msg.edit_of = Some(board);
    let at = b
        .board_edit_at
        .map_or(now_ms, |last| (last + BOARD_EDIT_MS).max(now_ms));
    outbox::enqueue(&mut *conn, &msg, at, Some(&key), now_ms).await?;
    db::set_board(conn, b.id, None, at).await?;
    Ok(())
}

/// Post a batch into a chat and open it for claims: an intro, the numbered
/// pages, then the board.
async fn post_batch(
    conn: &mut Conn,
    engine: &Engine,
    batch: &Batch,
    quota: Option<i64>,
    chat: (Platform, &str),
    now_ms: i64,
    locale: &str,
) -> Result<()> {
    post_pages(&mut *conn, engine, batch, quota, chat, now_ms, locale, None).await?;
    open_batch(conn, engine, batch, quota, chat, now_ms, locale, false).await
}

/// Post the numbered pages of a batch, the first with the intro. `opens`:
/// when claiming opens later (the list goes out ahead, so the rush at that
/// time is not queued behind a dozen pages under the group's message cap).
#[allow(clippy::too_many_arguments)]
async fn post_pages(
    conn: &mut Conn,
    engine: &Engine,
    batch: &Batch,
    quota: Option<i64>,
    (platform, chat_id): (Platform, &str),
    now_ms: i64,
    locale: &str,
    opens: Option<&str>,
) -> Result<()> {
    let wishes = db::list(&mut *conn, batch.id, None, None, None).await?;
    let lines: Vec<String> = wishes
        .iter()
        .filter(|w| w.status == WishStatus::Open)
        .map(|w| line(w, false))
        .collect();
    let pages = pages(&lines, page_budget(engine, platform));
    let quota_text = match quota {
        Some(q) => t!("wishes.publish.quota", locale = locale, n = q).into_owned(),
        None => String::new(),
    };
    for (i, page) in pages.iter().enumerate() {
        let mut text = String::new();
        if i == 0 {
            text.push_str(&t!(
                "wishes.publish.intro",
                locale = locale,
                name = batch.name.as_str(),
                n = lines.len(),
                quota = quota_text.as_str()
            ));
            text.push('\n');
            if let Some(at) = opens {
                text.push_str(&t!("wishes.publish.opens", locale = locale, at = at));
                text.push('\n');
            }
        }
        text.push_str(&page.join("\n"));
        text.push('\n');
        text.push_str(&t!(
            "wishes.publish.page",
            locale = locale,
            page = i + 1,
            pages = pages.len()
        ));
        outbox::enqueue(
            &mut *conn,
            &Outgoing::new(platform, chat_id, text),
            now_ms,
            None,
            now_ms,
        )
        .await?;
    }
    engine.outbox_ready.notify_waiters();
    Ok(())
}

/// Open a batch for claims in a chat and post its board (headed by an
/// "open now" line when the list went out earlier: `announce`).
#[allow(clippy::too_many_arguments)]
async fn open_batch(
    conn: &mut Conn,
    engine: &Engine,
    batch: &Batch,
    quota: Option<i64>,
    (platform, chat_id): (Platform, &str),
    now_ms: i64,
    locale: &str,
    announce: bool,
) -> Result<()> {
    db::set_published(
        &mut *conn,
        batch.id,
        quota,
        platform.as_str(),
        chat_id,
        now_ms,
    )
    .await?;
    let fresh = db::batch(&mut *conn, batch.id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("wish batch {} vanished", batch.id)))?;
    let mut text = String::new();
    if announce {
        text.push_str(&t!(
            "wishes.publish.open_now",
            locale = locale,
            name = batch.name.as_str()
        ));
        text.push('\n');
    }
    text.push_str(&board_text(locale, &fresh));
    let key = format!("wishes:board:{}", batch.id);
    let board = Outgoing::new(platform, chat_id, text);
    let id = outbox::enqueue(&mut *conn, &board, now_ms, Some(&key), now_ms).await?;
    db::set_board(conn, batch.id, Some(id), now_ms).await?;
    engine.outbox_ready.notify_waiters();
    Ok(())
}

// ---------------------------------------------------------------- publish

/// `/wishes publish NAME [quota N] [at TIME]` (发布心愿), staff, in a group.
pub async fn publish(
    ctx: &mut Ctx<'_>,
    name: &str,
    quota: Option<u32>,
    at: Option<&When>,
) -> Result {
    if !ctx.is_staff() {
        let text = tr(ctx.locale, "wishes.staff_only");
        ctx.reply(text);
        return Ok(());
    }
    if !ctx.in_group() {
        let text = tr(ctx.locale, "common.group_only");
        ctx.reply(text);
        return Ok(());
    }
    let Some(batch) = db::batch_by_name(ctx.tx, name.trim()).await? else {
        let names: Vec<String> = db::batches(ctx.tx)
            .await?
            .into_iter()
            .take(5)
            .map(|b| b.name)
            .collect();
        let list = if names.is_empty() {
            tr(ctx.locale, "common.none")
        } else {
            names.join("、")
        };
        let text = t!(
            "wishes.no_such_batch",
            locale = ctx.locale,
            name = clip(name, 30),
            list = list
        );
        ctx.reply(text);
        return Ok(());
    };
    if batch.status == "published" {
        let text = t!(
            "wishes.publish.already",
            locale = ctx.locale,
            name = batch.name.as_str()
        );
        ctx.reply(text);
        return Ok(());
    }
    let quota = quota.map(i64::from);
    let (platform, chat_id) = (ctx.msg.platform, ctx.msg.chat_id.clone());
    let now_ms = ctx.now_ms();
    let engine = ctx.engine;
    let locale = ctx.locale;
    // Its list already went out here (`at TIME` earlier): don't post it again.
    let listed_here = batch.status == "scheduled"
        && batch.platform.as_deref() == Some(platform.as_str())
        && batch.chat_id.as_deref() == Some(chat_id.as_str());
    if let Some(at) = at {
        let Some(when) = at.at.ok().and_then(|l| super::to_utc(ctx.engine.tz, l)) else {
            let text = tr(ctx.locale, "wishes.usage.publish");
            ctx.reply(text);
            return Ok(());
        };
        db::set_scheduled(
            ctx.tx,
            batch.id,
            quota,
            platform.as_str(),
            &chat_id,
            store::ms(when),
        )
        .await?;
        let local = local_time(engine, store::ms(when));
        if !listed_here {
            post_pages(
                ctx.tx,
                engine,
                &batch,
                quota,
                (platform, &chat_id),
                now_ms,
                locale,
                Some(&local),
            )
            .await?;
        }
        ctx.audit(
            "wish.schedule",
            "wish_batch",
            batch.id,
            json!({"at": store::ms(when), "quota": quota, "chat": chat_id}),
        )
        .await?;
        let text = t!(
            "wishes.publish.scheduled",
            locale = ctx.locale,
            name = batch.name.as_str(),
            at = local
        );
        ctx.reply(text);
        return Ok(());
    }
    if listed_here {
        open_batch(
            ctx.tx,
            engine,
            &batch,
            quota,
            (platform, &chat_id),
            now_ms,
            locale,
            true,
        )
        .await?;
    } else {
        post_batch(
            ctx.tx,
            engine,
            &batch,
            quota,
            (platform, &chat_id),
            now_ms,
            locale,
        )
        .await?;
    }
    ctx.audit(
        "wish.publish",
        "wish_batch",
        batch.id,
        json!({"quota": quota, "chat": chat_id}),
    )
    .await?;
    Ok(())
}

/// Publish every scheduled batch whose time has come. Idempotent: a batch is
/// published once (its status moves to `published` in the same transaction).
/// Returns how many batches were published. For the scheduler.
pub async fn publish_due(engine: &Engine, now: DateTime<Utc>) -> Result<usize> {
    let now_ms = store::ms(now);
    let mut tx = engine.store.begin().await?;
    let due = db::due_scheduled(&mut tx, now_ms).await?;
    let locale = engine.settings.locale.as_str();
    let mut n = 0;
    for b in due {
        let (Some(platform), Some(chat)) = (
            b.platform
                .as_deref()
                .and_then(|p| p.parse::<Platform>().ok()),
            b.chat_id.clone(),
        ) else {
            continue;
        };
        // The list went out when it was scheduled; now claims open.
        open_batch(
            &mut tx,
            engine,
            &b,
            b.quota,
            (platform, &chat),
            now_ms,
            locale,
            true,
        )
        .await?;
        audit::record(
            &mut tx,
            &audit::Entry {
                at_ms: now_ms,
                platform,
                actor: "scheduler",
                action: "wish.publish",
                entity: "wish_batch",
                entity_id: Some(b.id.to_string()),
                detail: json!({"quota": b.quota, "chat": chat, "scheduled": true}),
            },
        )
        .await?;
        n += 1;
    }
    tx.commit().await?;
    Ok(n)
}

// ---------------------------------------------------------------- claim

/// The batch this chat is about, or a reply saying there is none.
async fn current(ctx: &mut Ctx<'_>) -> Result<Option<Batch>> {
    let platform = ctx.msg.platform.as_str();
    match batch_for(ctx.tx, platform, &ctx.msg.chat_id).await? {
        Ok(b) => Ok(Some(b)),
        Err(soon) => {
            let text = no_batch_text(ctx.engine, ctx.locale, soon.as_ref());
            ctx.reply(text);
            Ok(None)
        }
    }
}

/// The batch claims in this chat go to ([`db::current_batch`]), unless this
/// chat has a batch listed that opens later and the published one is not
/// this chat's own: then `Err(Some(that batch))`; `Err(None)`: nothing.
async fn batch_for(
    conn: &mut impl Db,
    platform: &str,
    chat_id: &str,
) -> Result<std::result::Result<Batch, Option<Batch>>> {
    let b = db::current_batch(&mut *conn, platform, chat_id).await?;
    let own = b.as_ref().is_some_and(|b| {
        b.platform.as_deref() == Some(platform) && b.chat_id.as_deref() == Some(chat_id)
    });
    if !own && let Some(soon) = db::scheduled_in(&mut *conn, platform, chat_id).await? {
        return Ok(Err(Some(soon)));
    }
    Ok(b.ok_or(None))
}

/// Why there is nothing to claim here: a batch whose list is out but whose
/// claiming opens later (`soon`), else none at all.
fn no_batch_text(engine: &Engine, locale: &str, soon: Option<&Batch>) -> String {
    match soon {
        Some(b) => t!(
            "wishes.claim.not_yet",
            locale = locale,
            name = b.name.as_str(),
            at = local_time(engine, b.publish_at.unwrap_or_default())
        )
        .into_owned(),
        None => tr(locale, "wishes.no_batch"),
    }
}

/// A time in the configured zone, as the chat shows it (`05-20 20:00`).
fn local_time(engine: &Engine, ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&engine.tz)
        .format("%m-%d %H:%M")
        .to_string()
}

/// One claim message in a group of them (see [`claim_many`]).
pub struct ClaimRequest<'a> {
    pub msg: &'a Incoming,
    pub person: &'a Person,
    pub locale: &'static str,
    /// Ascending, without repeats, not empty.
    pub numbers: &'a [u32],
}

/// `认领 12 15`: claim each number for the person's org, first come first
/// served, and report each number in the chat's gathered result message.
#[tracing::instrument(skip(ctx), fields(person = ctx.person.id))]
pub async fn claim(ctx: &mut Ctx<'_>, numbers: &[u32]) -> Result {
    if numbers.is_empty() {
        let text = tr(ctx.locale, "wishes.claim.how");
        ctx.reply(text);
        return Ok(());
    }
    let req = ClaimRequest {
        msg: ctx.msg,
        person: &ctx.person,
        locale: ctx.locale,
        numbers,
    };
    let mut out = claim_many(ctx.engine, &mut *ctx.tx, &[req]).await?;
    ctx.out.append(&mut out[0]);
    Ok(())
}

/// What became of each number of one claim message.
#[derive(Default)]
struct Outcomes {
    ok: Vec<i64>,
    mine: Vec<i64>,
    /// Holder's name → numbers it holds.
    taken: BTreeMap<String, Vec<i64>>,
    over: Vec<i64>,
    missing: Vec<i64>,
    revoked: Vec<i64>,
}

impl Outcomes {
    /// The result lines (`✅ 县一中：12、15`, `❌ …`) in the claimer's language.
    fn lines(&self, l: &str, who: &str, batch: &Batch) -> Vec<String> {
        let quota = batch.quota.unwrap_or(0);
        let mut lines = Vec::new();
        // Every result text takes the same arguments and uses those it needs.
        let mut line = |key: &str, nos: &[i64], holder: &str| {
            if !nos.is_empty() {
                let nos = join_nos(nos);
                lines.push(
                    t!(
                        key,
                        locale = l,
                        org = who,
                        nos = nos,
                        holder = holder,
                        quota = quota,
                        total = batch.total
                    )
                    .into_owned(),
                );
            }
        };
        line("wishes.claim.ok", &self.ok, "");
        line("wishes.claim.mine", &self.mine, "");
        for (holder, nos) in &self.taken {
            line("wishes.claim.taken", nos, holder);
        }
        line("wishes.claim.over_quota", &self.over, "");
        line("wishes.claim.no_such", &self.missing, "");
        line("wishes.claim.revoked", &self.revoked, "");
        lines
    }
}

/// One batch during a group of claims: what was read under its lock and
/// what the group decided.
struct Book {
    batch: Batch,
    /// Org id → wishes held (claimed or delivered).
    held: HashMap<i64, i64>,
    /// Wish number → its state, for the numbers asked for.
    states: HashMap<i64, db::ClaimState>,
    /// Wishes claimed by this group: (request index, wish id, number, org).
    taken: Vec<(usize, i64, i64, i64)>,
    /// The board's "latest" line: the last successful claim.
    last: Option<String>,
}

/// A group of claim messages, in arrival order, in one transaction: one
/// read of each batch's wishes and holdings under the batch lock, decisions
/// in memory (first come first served, quotas), then one write per claimed
/// wish, one for the holdings, one for the audit rows, one board update and
/// one gathered result per chat. [`claim`] is the group of one; the engine's
/// group-commit writer hands whole runs of claim messages to it, so a rush
/// costs a handful of statements per group instead of a dozen per message.
/// Returns each request's replies.
pub async fn claim_many(
    engine: &Engine,
    conn: &mut impl Db,
    reqs: &[ClaimRequest<'_>],
) -> Result<Vec<Vec<Queued>>> {
    let mut out: Vec<Vec<Queued>> = reqs.iter().map(|_| Vec::new()).collect();
    // The batch each chat claims from.
    let mut chat_batch: HashMap<(Platform, &str), Option<i64>> = HashMap::new();
    let mut books: BTreeMap<i64, Book> = BTreeMap::new();
    // Chats whose batch is listed but opens for claims later.
    let mut not_yet: HashMap<(Platform, &str), Batch> = HashMap::new();
    for r in reqs {
        let key = (r.msg.platform, r.msg.chat_id.as_str());
        if chat_batch.contains_key(&key) {
            continue;
        }
        let b = match batch_for(&mut *conn, key.0.as_str(), key.1).await? {
            Ok(b) => Some(b),
            Err(soon) => {
                if let Some(soon) = soon {
                    not_yet.insert(key, soon);
                }
                None
            }
        };
        chat_batch.insert(key, b.as_ref().map(|b| b.id));
        if let Some(b) = b {
            books.entry(b.id).or_insert_with(|| Book {
                batch: b,
                held: HashMap::new(),
                states: HashMap::new(),
                taken: Vec::new(),
                last: None,
            });
        }
    }
    let mut org_ids: Vec<i64> = reqs.iter().filter_map(|r| r.person.org_id).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = orgs::get_many(&mut *conn, &org_ids).await?;
    // Under each batch's lock (ascending ids: one lock order), read what the
    // decisions need.
    for (id, book) in &mut books {
        // The counters may have moved before the lock was ours.
        if let Some(fresh) = db::lock_batch(&mut *conn, *id).await? {
            book.batch = fresh;
        }
        let mut nos: Vec<i64> = reqs
            .iter()
            .filter(|r| {
                chat_batch.get(&(r.msg.platform, r.msg.chat_id.as_str())) == Some(&Some(*id))
            })
            .flat_map(|r| r.numbers.iter().map(|&n| i64::from(n)))
            .filter(|&n| n >= 1 && n <= book.batch.total)
            .collect();
        nos.sort_unstable();
        nos.dedup();
        book.states = db::claim_states(&mut *conn, *id, &nos)
            .await?
            .into_iter()
            .map(|s| (s.no, s))
            .collect();
        // Quotas matter only if something asked for is still open; in the
        // thick of a rush most claims are for wishes already gone.
        if book.states.values().any(|s| s.status == WishStatus::Open) {
            book.held = db::holdings(&mut *conn, *id, &org_ids)
                .await?
                .into_iter()
                .collect();
        }
    }
    // Decide, in arrival order.
    let cadre_only = engine.settings.wishes.claim_role == "cadre";
    let mut results: Vec<Option<(i64, Vec<String>)>> = Vec::with_capacity(reqs.len());
    for (i, r) in reqs.iter().enumerate() {
        let l = r.locale;
        let batch_id = chat_batch
            .get(&(r.msg.platform, r.msg.chat_id.as_str()))
            .copied()
            .flatten();
        let decided = match (batch_id, r.person.org_id.and_then(|o| orgs.get(&o))) {
            (None, _) => Err(no_batch_text(
                engine,
                l,
                not_yet.get(&(r.msg.platform, r.msg.chat_id.as_str())),
            )),
            // Not a member of any org (maybe waiting to join one).
            (_, None) => Err(super::members::not_member_text(&mut *conn, r.person, l).await?),
            _ if cadre_only && !r.person.role.at_least(Role::Cadre) => {
                Err(tr(l, "wishes.claim.cadre_only"))
            }
            (Some(batch_id), Some(org)) => Ok((batch_id, org)),
        };
        let (batch_id, org) = match decided {
            Ok(found) => found,
            Err(text) => {
                out[i].push(direct_reply(r.msg, text));
                results.push(None);
                continue;
            }
        };
        let Some(book) = books.get_mut(&batch_id) else {
            results.push(None);
            continue;
        };
        let quota = book.batch.quota.unwrap_or(i64::MAX);
        let mut o = Outcomes::default();
        for &n in r.numbers {
            let n = i64::from(n);
            let Some(st) = book.states.get_mut(&n) else {
                o.missing.push(n);
                continue;
            };
            match (st.status, st.org_id) {
                (WishStatus::Open, _) => {
                    let held = book.held.entry(org.id).or_default();
                    if *held >= quota {
                        o.over.push(n);
                    } else {
                        *held += 1;
                        st.status = WishStatus::Claimed;
                        st.org_id = Some(org.id);
                        st.holder = Some(org.display().to_string());
                        book.taken.push((i, st.id, n, org.id));
                        o.ok.push(n);
                    }
                }
                (WishStatus::Revoked, _) | (_, None) => o.revoked.push(n),
                (_, Some(holder)) if holder == org.id => o.mine.push(n),
                (_, Some(_)) => o
                    .taken
                    .entry(st.holder.clone().unwrap_or_default())
                    .or_default()
                    .push(n),
            }
        }
        let who = org.display();
        if !o.ok.is_empty() {
            book.last = Some(format!("{who} {}", join_nos(&o.ok)));
        }
        results.push(Some((batch_id, o.lines(l, who, &book.batch))));
    }
    // Write what was decided.
    for book in books.values_mut() {
        if book.taken.is_empty() {
            continue;
        }
        let mut added: BTreeMap<i64, i64> = BTreeMap::new();
        let mut entries = Vec::with_capacity(book.taken.len());
        let mut takes = Vec::with_capacity(book.taken.len());
        for &(i, wish_id, no, org_id) in &book.taken {
            let r = &reqs[i];
            let at = store::ms(r.msg.at);
            takes.push((wish_id, org_id, r.person.id, at));
            *added.entry(org_id).or_default() += 1;
            entries.push(audit::Entry {
                at_ms: at,
                platform: r.msg.platform,
                actor: &r.msg.sender_id,
                action: "wish.claim",
                entity: "wish",
                entity_id: Some(wish_id.to_string()),
                detail: json!({"batch": book.batch.id, "no": no, "org": org_id}),
            });
        }
        db::take(&mut *conn, &takes).await?;
        let added: Vec<(i64, i64)> = added.into_iter().collect();
        db::add_holdings(&mut *conn, book.batch.id, &added).await?;
        audit::record_many(&mut *conn, &entries).await?;
        let k = book.taken.len() as i64;
        book.batch = db::bump(&mut *conn, book.batch.id, -k, k, 0, book.last.as_deref()).await?;
        let (last_i, ..) = book.taken[book.taken.len() - 1];
        let last = &reqs[last_i];
        if board_editable(engine, &book.batch) {
            let at = store::ms(last.msg.at);
            update_board(&mut *conn, engine, &book.batch, at, last.locale).await?;
        } else {
            // Text fallback: the gathered result of each chat that claimed
            // carries the progress line, after that chat's last success.
            let mut done: Vec<(Platform, &str)> = Vec::new();
            for &(i, ..) in book.taken.iter().rev() {
                let r = &reqs[i];
                let chat = (r.msg.platform, r.msg.chat_id.as_str());
                if done.contains(&chat) {
                    continue;
                }
                done.push(chat);
                if let Some(Some((_, lines))) = results.get_mut(i) {
                    lines.push(board_summary(r.locale, &book.batch));
                }
            }
        }
    }
    // One gathered message per chat.
    let mut chats: Vec<(Platform, &str)> = Vec::new();
    for r in reqs {
        let key = (r.msg.platform, r.msg.chat_id.as_str());
        if !chats.contains(&key) {
            chats.push(key);
        }
    }
    for (platform, chat_id) in chats {
        let parts: Vec<(usize, &[String])> = results
            .iter()
            .enumerate()
            .filter_map(|(i, res)| {
                let r = &reqs[i];
                match res {
                    Some((_, lines)) if r.msg.platform == platform && r.msg.chat_id == chat_id => {
                        Some((i, lines.as_slice()))
                    }
                    _ => None,
                }
            })
            .collect();
        if !parts.is_empty() {
            gather(engine, conn, reqs, &parts, &mut out).await?;
        }
    }
    Ok(out)
}

/// A reply quoting the request's message.
fn direct_reply(msg: &Incoming, text: String) -> Queued {
    let mut m = Outgoing::new(msg.platform, msg.chat_id.clone(), text);
    m.reply_to = msg.message_id.clone();
    Queued {
        message: m,
        not_before: None,
        coalesce_key: None,
    }
}

/// Fold the result lines of one chat's requests (`parts`: request index and
/// its lines, in order) into the chat's pending gathered message; what does
/// not fit, or finds none, goes into a new one that waits
/// [`CLAIM_WINDOW_MS`] for more.
async fn gather(
    engine: &Engine,
    conn: &mut impl Db,
    reqs: &[ClaimRequest<'_>],
    parts: &[(usize, &[String])],
    out: &mut [Vec<Queued>],
) -> Result {
    let first = reqs[parts[0].0].msg;
    let (platform, chat_id) = (first.platform, first.chat_id.clone());
    let key = format!("wishes:claims:{platform}:{chat_id}");
    let max = engine.capabilities(platform).max_text_chars;
    // The message being filled: the pending row (if any), its text, and the
    // lines added to it here.
    let mut pending = outbox::pending_coalesced(&mut *conn, &key).await?;
    // Usually everything fits into one message: merge once.
    let all: Vec<String> = parts.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
    let base = pending.as_ref().map_or("", |r| r.message.text.as_str());
    let merged = merge_lines(base, &all);
    if merged.chars().count() <= max {
        let fill = Fill {
            owner: parts[0].0,
            pending,
            merged: Some(merged),
            added: &all,
        };
        return flush(conn, reqs, fill, &key, out).await;
    }
    let mut text = pending.as_ref().map(|r| r.message.text.clone());
    let mut added: Vec<String> = Vec::new();
    let mut owner = parts[0].0;
    for &(i, lines) in parts {
        if let Some(t) = &text {
            let merged = merge_lines(t, lines);
            if merged.chars().count() <= max {
                text = Some(merged);
                added.extend(lines.iter().cloned());
                continue;
            }
            let fill = Fill {
                owner,
                pending: pending.take(),
                merged: None,
                added: &added,
            };
            flush(conn, reqs, fill, &key, out).await?;
        }
        text = Some(lines.join("\n"));
        added = lines.to_vec();
        owner = i;
    }
    let fill = Fill {
        owner,
        pending,
        merged: None,
        added: &added,
    };
    flush(conn, reqs, fill, &key, out).await
}

/// One gathered message to write ([`flush`]).
struct Fill<'a> {
    /// The request a new row is written for.
    owner: usize,
    /// The pending row to fold into, if any.
    pending: Option<outbox::OutboxRow>,
    /// The pending row's text with `added` merged in, when already known.
    merged: Option<String>,
    added: &'a [String],
}

/// Write one gathered message: into the pending row when it is still
/// unleased, else as a new row owned by request `fill.owner`.
async fn flush(
    conn: &mut impl Db,
    reqs: &[ClaimRequest<'_>],
    fill: Fill<'_>,
    key: &str,
    out: &mut [Vec<Queued>],
) -> Result {
    let Fill {
        owner,
        pending,
        merged,
        added,
    } = fill;
    if added.is_empty() {
        return Ok(());
    }
    if let Some(row) = pending {
        let mut msg = row.message;
        msg.text = merged.unwrap_or_else(|| merge_lines(&msg.text, added));
        if outbox::replace_pending(&mut *conn, row.id, &msg).await? {
            return Ok(());
        }
    }
    let r = reqs[owner].msg;
    let msg = Outgoing::new(r.platform, r.chat_id.clone(), merge_lines("", added));
    out[owner].push(Queued {
        message: msg,
        not_before: Some(r.at + Duration::milliseconds(CLAIM_WINDOW_MS)),
        coalesce_key: Some(key.to_string()),
    });
    Ok(())
}

/// Add result lines to a gathered message: a `✅ ORG：…` line joins the same
/// org's earlier `✅` line (`✅ 县一中：12、15`); other lines are appended.
fn merge_lines<'a>(existing: &'a str, new: &'a [String]) -> String {
    use std::borrow::Cow;
    let mut lines: Vec<Cow<'a, str>> = existing.lines().map(Cow::Borrowed).collect();
    for l in new {
        if l.starts_with('📋') {
            // Only the latest progress line counts, at the end.
            lines.retain(|x| !x.starts_with('📋'));
            lines.push(Cow::Borrowed(l));
            continue;
        }
        let merged = l.starts_with('✅')
            && l.split_once('：').is_some_and(|(head, tail)| {
                let same_org = |x: &&mut Cow<'a, str>| {
                    x.strip_prefix(head)
                        .is_some_and(|rest| rest.starts_with('：'))
                };
                match lines.iter_mut().find(same_org) {
                    Some(x) => {
                        let x = x.to_mut();
                        x.push('、');
                        x.push_str(tail);
                        true
                    }
                    None => false,
                }
            });
        if !merged {
            // New results go above the progress line.
            let at = lines
                .iter()
                .position(|x| x.starts_with('📋'))
                .unwrap_or(lines.len());
            lines.insert(at, Cow::Borrowed(l));
        }
    }
    lines.join("\n")
}

// ---------------------------------------------------------------- views

/// May the acting person see this wish in full? Staff, or a cadre of the
/// holding org — and only in a private chat. Everyone else, the holding
/// org's members included, sees the masked line.
fn sees_full(ctx: &Ctx<'_>, w: &Wish) -> bool {
    !ctx.in_group() && (ctx.is_staff() || (w.org_id.is_some() && cadre_of(ctx, w.org_id)))
}

/// The acting person is a cadre of `org`.
fn cadre_of(ctx: &Ctx<'_>, org: Option<i64>) -> bool {
    ctx.person.role == Role::Cadre && org.is_some() && ctx.person.org_id == org
}

/// `/wishes [PAGE|WORD|ORG]` (心愿): open wishes, paged or filtered; an
/// org's holdings.
pub async fn list(ctx: &mut Ctx<'_>, query: &WishQuery) -> Result {
    let Some(batch) = current(ctx).await? else {
        return Ok(());
    };
    let (page_no, arg) = match query {
        WishQuery::Page(n) => (Some(*n), ""),
        WishQuery::Words(words) => (None, words.as_str()),
    };
    let l = ctx.locale;
    if let Some(page_no) = page_no {
        let open = db::list(ctx.tx, batch.id, Some(WishStatus::Open), None, None).await?;
        let lines: Vec<String> = open.iter().map(|w| line(w, false)).collect();
        let pages = pages(&lines, page_budget(ctx.engine, ctx.msg.platform));
        if pages.is_empty() {
            let text = t!(
                "wishes.list.none_open",
                locale = l,
                name = batch.name.as_str()
            );
            ctx.reply(text);
            return Ok(());
        }
        let Some(page) = page_no.checked_sub(1).and_then(|i| pages.get(i)) else {
            let text = t!("wishes.list.no_page", locale = l, pages = pages.len());
            ctx.reply(text);
            return Ok(());
        };
        let mut text = t!(
            "wishes.list.title",
            locale = l,
            name = batch.name.as_str(),
            open = open.len(),
            total = batch.total
        )
        .into_owned();
        text.push('\n');
        text.push_str(&page.join("\n"));
        text.push('\n');
        text.push_str(&t!(
            "wishes.publish.page",
            locale = l,
            page = page_no,
            pages = pages.len()
        ));
        ctx.reply(text);
        return Ok(());
    }
    // A school or item word among the open wishes; failing that, an org
    // name: what it holds. (Schools come first: `心愿 永清镇` means the
    // township's schools more often than its youth-league committee.)
    let word = clip(arg, 20);
    let found = db::list(ctx.tx, batch.id, Some(WishStatus::Open), None, Some(&word)).await?;
    if found.is_empty() {
        let all = orgs::all(ctx.tx).await?;
        let aliases = orgs::aliases(ctx.tx).await?;
        if let OrgMatch::One(org) = resolve(arg, &all, &aliases) {
            return org_holdings(ctx, &batch, &org).await;
        }
        let text = t!("wishes.list.no_match", locale = l, word = word.as_str());
        ctx.reply(text);
        return Ok(());
    }
    let lines: Vec<String> = found.iter().map(|w| line(w, false)).collect();
    let pages = pages(&lines, page_budget(ctx.engine, ctx.msg.platform));
    let mut text = t!(
        "wishes.list.match_title",
        locale = l,
        word = word.as_str(),
        n = found.len()
    )
    .into_owned();
    if let Some(first) = pages.first() {
        text.push('\n');
        text.push_str(&first.join("\n"));
    }
    if pages.len() > 1 {
        text.push('\n');
        text.push_str(&tr(l, "wishes.list.more"));
    }
    ctx.reply(text);
    Ok(())
}

/// What an org holds in a batch (masked: this may be a group).
async fn org_holdings(ctx: &mut Ctx<'_>, batch: &Batch, org: &orgs::Org) -> Result {
    let l = ctx.locale;
    let held = db::list(ctx.tx, batch.id, None, Some(org.id), None).await?;
    let held: Vec<&Wish> = held
        .iter()
        .filter(|w| matches!(w.status, WishStatus::Claimed | WishStatus::Delivered))
        .collect();
    if held.is_empty() {
        let text = t!("wishes.list.org_none", locale = l, org = org.display());
        ctx.reply(text);
        return Ok(());
    }
    let mut text = t!(
        "wishes.list.org_title",
        locale = l,
        org = org.display(),
        n = held.len()
    )
    .into_owned();
    for w in held {
        text.push('\n');
        text.push_str(&line(w, false));
        text.push_str(&format!(" · {}", status_label(l, w.status)));
    }
    ctx.reply(text);
    Ok(())
}

/// `/wish 12`: one wish, masked unless [`sees_full`].
pub async fn show(ctx: &mut Ctx<'_>, no: u32) -> Result {
    let Some(batch) = current(ctx).await? else {
        return Ok(());
    };
    let Some(w) = db::wish(ctx.tx, batch.id, i64::from(no)).await? else {
        let text = t!(
            "wishes.no_such",
            locale = ctx.locale,
            no = no,
            total = batch.total
        );
        ctx.reply(text);
        return Ok(());
    };
    let full = sees_full(ctx, &w);
    let mut text = line(&w, full);
    text.push_str(&format!(" · {}", status_label(ctx.locale, w.status)));
    if let Some(org) = w.org_id
        && let Some(o) = orgs::get(ctx.tx, org).await?
    {
        text.push_str(&format!(" · {}", o.display()));
    }
    if w.status == WishStatus::Revoked
        && let Some(reason) = &w.revoke_reason
    {
        text.push_str(&format!("（{reason}）"));
    }
    if full {
        ctx.reply_personal(text);
    } else {
        ctx.reply(text);
    }
    Ok(())
}

/// `/mywishes` (我的心愿): what the person's org holds, in a private chat
/// only: in full for its cadres (and staff), masked for its members.
pub async fn mine(ctx: &mut Ctx<'_>) -> Result {
    if ctx.in_group() {
        let text = tr(ctx.locale, "wishes.mine.private_only");
        ctx.reply(text);
        return Ok(());
    }
    let Some(org_id) = ctx.person.org_id else {
        let person = ctx.person.clone();
        let text = super::members::not_member_text(&mut *ctx.tx, &person, ctx.locale).await?;
        ctx.reply(text);
        return Ok(());
    };
    let held = db::held_by_org(ctx.tx, org_id).await?;
    if held.is_empty() {
        let text = tr(ctx.locale, "wishes.mine.none");
        ctx.reply(text);
        return Ok(());
    }
    let full = ctx.is_staff() || ctx.person.role == Role::Cadre;
    let title = if full {
        "wishes.mine.title"
    } else {
        "wishes.mine.title_masked"
    };
    let mut text = t!(title, locale = ctx.locale, n = held.len()).into_owned();
    let mut last_batch = String::new();
    for (batch, w) in &held {
        if *batch != last_batch {
            text.push_str(&format!("\n【{batch}】"));
            last_batch = batch.clone();
        }
        text.push('\n');
        text.push_str(&line(w, full));
        text.push_str(&format!(" · {}", status_label(ctx.locale, w.status)));
    }
    text.push('\n');
    if full {
        text.push_str(&tr(ctx.locale, "wishes.mine.footer"));
        ctx.reply_personal(text);
    } else {
        text.push_str(&tr(ctx.locale, "wishes.mine.footer_masked"));
        ctx.reply(text);
    }
    Ok(())
}

// ---------------------------------------------------------------- transitions

/// The wish `no` of the current batch, or a reply saying why not.
async fn find(ctx: &mut Ctx<'_>, no: u32) -> Result<Option<(Batch, Wish)>> {
    let Some(batch) = current(ctx).await? else {
        return Ok(None);
    };
    // Every caller changes the wish: take the batch's lock before reading it
    // (the lock order of claims, see store::wishes).
    let batch = db::lock_batch(ctx.tx, batch.id).await?.unwrap_or(batch);
    match db::wish(ctx.tx, batch.id, i64::from(no)).await? {
        Some(w) => Ok(Some((batch, w))),
        None => {
            let text = t!(
                "wishes.no_such",
                locale = ctx.locale,
                no = no,
                total = batch.total
            );
            ctx.reply(text);
            Ok(None)
        }
    }
}

/// May the acting person act for the org holding `w`? Replies when not.
async fn may_act_for_holder(ctx: &mut Ctx<'_>, w: &Wish) -> Result<Option<i64>> {
    let Some(holder) = w.org_id.filter(|_| w.status == WishStatus::Claimed) else {
        let text = t!(
            "wishes.not_claimed",
            locale = ctx.locale,
            no = w.no,
            status = status_label(ctx.locale, w.status)
        );
        ctx.reply(text);
        return Ok(None);
    };
    if ctx.is_staff() || cadre_of(ctx, Some(holder)) {
        return Ok(Some(holder));
    }
    let name = orgs::get(ctx.tx, holder)
        .await?
        .map(|o| o.display().to_string())
        .unwrap_or_default();
    let text = if ctx.person.org_id == Some(holder) {
        // A member of the holding org: its cadres act for it.
        t!(
            "wishes.cadres_only",
            locale = ctx.locale,
            no = w.no,
            org = name
        )
        .into_owned()
    } else {
        match super::members::pending_text(&mut *ctx.tx, ctx.person.id, ctx.locale).await? {
            Some(waiting) => waiting,
            None => t!(
                "wishes.not_yours",
                locale = ctx.locale,
                no = w.no,
                org = name
            )
            .into_owned(),
        }
    };
    ctx.reply(text);
    Ok(None)
}

/// `/release 12` (放弃): give a claimed wish back to the pool.
pub async fn release(ctx: &mut Ctx<'_>, no: u32) -> Result {
    let Some((batch, w)) = find(ctx, no).await? else {
        return Ok(());
    };
    let Some(holder) = may_act_for_holder(ctx, &w).await? else {
        return Ok(());
    };
    if !db::release(ctx.tx, &w, holder).await? {
        return Ok(());
    }
    ctx.audit(
        "wish.release",
        "wish",
        w.id,
        json!({"batch": batch.id, "no": w.no, "org": holder}),
    )
    .await?;
    let fresh = db::bump(ctx.tx, batch.id, 1, -1, 0, None).await?;
    let now_ms = ctx.now_ms();
    update_board(ctx.tx, ctx.engine, &fresh, now_ms, ctx.locale).await?;
    let text = t!("wishes.released", locale = ctx.locale, no = w.no);
    ctx.reply(text);
    Ok(())
}

/// `/done 12` (圆梦 12) with a photo, or as a reply to one (see
/// [`super::proof`]); the photo's file reference is stored with the delivery.
pub async fn done(ctx: &mut Ctx<'_>, no: u32) -> Result {
    let Some((batch, w)) = find(ctx, no).await? else {
        return Ok(());
    };
    let Some(holder) = may_act_for_holder(ctx, &w).await? else {
        return Ok(());
    };
    let proof = match super::proof::resolve(ctx.tx, ctx.msg).await? {
        Proof::Photo(file_ref) => file_ref,
        Proof::ReplyWithoutPhoto => {
            let text = t!("proof.reply_not_photo", locale = ctx.locale, no = w.no);
            ctx.reply(text);
            return Ok(());
        }
        Proof::Missing => {
            let text = t!("wishes.done.need_photo", locale = ctx.locale, no = w.no);
            ctx.reply(text);
            return Ok(());
        }
    };
    let now_ms = ctx.now_ms();
    if !db::deliver(ctx.tx, &w, holder, &proof, now_ms).await? {
        return Ok(());
    }
    ctx.audit(
        "wish.deliver",
        "wish",
        w.id,
        json!({"batch": batch.id, "no": w.no, "org": holder, "proof": proof}),
    )
    .await?;
    let fresh = db::bump(ctx.tx, batch.id, 0, -1, 1, None).await?;
    update_board(ctx.tx, ctx.engine, &fresh, now_ms, ctx.locale).await?;
    let text = t!(
        "wishes.delivered",
        locale = ctx.locale,
        no = w.no,
        item = w.item.as_str()
    );
    ctx.reply(text);
    Ok(())
}

/// `/revoke 12 原因` (下架), staff: take a wish down unless delivered and
/// tell the holding org's groups.
pub async fn revoke(ctx: &mut Ctx<'_>, no: u32, reason: &str) -> Result {
    if !ctx.is_staff() {
        let text = tr(ctx.locale, "wishes.staff_only");
        ctx.reply(text);
        return Ok(());
    }
    let Some((batch, w)) = find(ctx, no).await? else {
        return Ok(());
    };
    let reason = clip(reason.trim(), 60);
    let now_ms = ctx.now_ms();
    if !db::revoke(ctx.tx, &w, &reason, now_ms).await? {
        let text = t!(
            "wishes.cannot_revoke",
            locale = ctx.locale,
            no = w.no,
            status = status_label(ctx.locale, w.status)
        );
        ctx.reply(text);
        return Ok(());
    }
    ctx.audit(
        "wish.revoke",
        "wish",
        w.id,
        json!({"batch": batch.id, "no": w.no, "org": w.org_id, "reason": reason}),
    )
    .await?;
    let (open, claimed) = match w.status {
        WishStatus::Claimed => (0, -1),
        _ => (-1, 0),
    };
    let fresh = db::bump(ctx.tx, batch.id, open, claimed, 0, None).await?;
    update_board(ctx.tx, ctx.engine, &fresh, now_ms, ctx.locale).await?;
    if let (WishStatus::Claimed, Some(org)) = (w.status, w.org_id) {
        for g in chats::groups_of_org(ctx.tx, org).await? {
            let text = t!(
                "wishes.revoked_notice",
                locale = ctx.locale,
                no = w.no,
                item = w.item.as_str(),
                reason = reason.as_str()
            );
            ctx.queue(Outgoing::new(g.platform, g.chat_id, text));
        }
    }
    let text = t!(
        "wishes.revoked",
        locale = ctx.locale,
        no = w.no,
        reason = reason.as_str()
    );
    ctx.reply(text);
    Ok(())
}

// ---------------------------------------------------------------- overdue

/// Claimed wishes not delivered after `overdue_days`, by org.
async fn overdue_by_org(
    conn: &mut Conn,
    engine: &Engine,
    now: DateTime<Utc>,
    reminded_before_ms: i64,
) -> Result<BTreeMap<i64, Vec<Wish>>> {
    let days = engine.settings.wishes.overdue_days;
    let before = store::ms(now - Duration::days(days));
    let mut by_org: BTreeMap<i64, Vec<Wish>> = BTreeMap::new();
    for w in db::overdue(conn, before, reminded_before_ms).await? {
        if let Some(org) = w.org_id {
            by_org.entry(org).or_default().push(w);
        }
    }
    Ok(by_org)
}

/// `/wishes overdue` (staff): who holds wishes past the delivery period.
pub async fn overdue(ctx: &mut Ctx<'_>) -> Result {
    if !ctx.is_staff() {
        let text = tr(ctx.locale, "wishes.staff_only");
        ctx.reply(text);
        return Ok(());
    }
    let by_org = overdue_by_org(ctx.tx, ctx.engine, ctx.now, i64::MAX).await?;
    let days = ctx.engine.settings.wishes.overdue_days;
    if by_org.is_empty() {
        let text = t!("wishes.overdue.none", locale = ctx.locale, days = days);
        ctx.reply(text);
        return Ok(());
    }
    let mut text = t!(
        "wishes.overdue.title",
        locale = ctx.locale,
        days = days,
        n = by_org.len()
    )
    .into_owned();
    for (org, ws) in &by_org {
        let name = orgs::get(ctx.tx, *org)
            .await?
            .map(|o| o.display().to_string())
            .unwrap_or_default();
        let nos: Vec<i64> = ws.iter().map(|w| w.no).collect();
        text.push_str(&format!("\n{name}：{}", join_nos(&nos)));
    }
    ctx.reply(text);
    Ok(())
}

/// Remind each org holding overdue wishes, in its bound groups, at most once
/// a week per wish. Idempotent within the week. Returns the reminders queued.
/// For the scheduler.
pub async fn remind_overdue(engine: &Engine, now: DateTime<Utc>) -> Result<usize> {
    let now_ms = store::ms(now);
    let week_ago = store::ms(now - Duration::days(7));
    let locale = engine.settings.locale.as_str();
    let days = engine.settings.wishes.overdue_days;
    let mut tx = engine.store.begin().await?;
    let by_org = overdue_by_org(&mut tx, engine, now, week_ago).await?;
    let mut sent = 0;
    for (org, ws) in &by_org {
        let items: Vec<String> = ws.iter().map(|w| format!("{} {}", w.no, w.item)).collect();
        let groups = chats::groups_of_org(&mut tx, *org).await?;
        for g in &groups {
            let text = t!(
                "wishes.overdue.reminder",
                locale = locale,
                days = days,
                list = items.join("、")
            );
            outbox::enqueue(
                &mut tx,
                &Outgoing::new(g.platform, g.chat_id.clone(), text),
                now_ms,
                None,
                now_ms,
            )
            .await?;
            sent += 1;
        }
        for w in ws {
            db::mark_reminded(&mut tx, w.id, now_ms).await?;
        }
        audit::record(
            &mut tx,
            &audit::Entry {
                at_ms: now_ms,
                platform: groups.first().map(|g| g.platform).unwrap_or(Platform::Console),
                actor: "scheduler",
                action: "wish.remind",
                entity: "org",
                entity_id: Some(org.to_string()),
                detail: json!({"wishes": ws.iter().map(|w| w.id).collect::<Vec<_>>(), "groups": groups.len()}),
            },
        )
        .await?;
    }
    tx.commit().await?;
    if sent > 0 {
        engine.outbox_ready.notify_waiters();
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_gathers_an_orgs_numbers() {
        let merged = merge_lines(
            "✅ 县一中：12",
            &[
                "✅ 县二中：3".into(),
                "✅ 县一中：15".into(),
                "❌ 县三中：没有 900 号".into(),
            ],
        );
        assert_eq!(
            merged,
            "✅ 县一中：12、15\n✅ 县二中：3\n❌ 县三中：没有 900 号"
        );
    }

    #[test]
    fn pages_fit() {
        let lines: Vec<String> = (0..130)
            .map(|i| format!("{i}. 永清镇中心小学 六年级 姚* · 新华字典1本 · ¥25"))
            .collect();
        let p = pages(&lines, 3700);
        assert!(p.iter().all(|pg| pg.len() <= PAGE_WISHES));
        assert_eq!(p.iter().map(Vec::len).sum::<usize>(), 130);
    }
}
