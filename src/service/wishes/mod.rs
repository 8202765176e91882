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

mod claim;
mod holdings;
mod import;
mod list;
mod publish;

pub use claim::{ClaimRequest, claim, claim_as, claim_many};
pub(super) use claim::{claim_run, plain_claim};
pub use holdings::{done, overdue, release, remind_overdue, revoke};
pub use import::{import, import_file, import_in_chat, validate};
pub use list::{list, mine, show};
use publish::{board_editable, board_summary, page_budget, pages, update_board};
pub use publish::{publish, publish_due};

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::import_orgs::ImportError;
use super::orgs::{OrgMatch, resolve};
use super::proof::Proof;
use super::{Ctx, Result, clip};
use crate::chat::{Incoming, Outgoing};
use crate::domain::wish::{MAX_WISHES, WishStatus, mask_name};
use crate::domain::{Platform, Role};
use crate::service::out::Pending;
use crate::service::{Env, Out, Scheduled};
use crate::store::db::Db;
use crate::store::people::Person;
use crate::store::wishes::{self as db, Batch, NewWish, Wish};
use crate::store::{self, Conn, StoreError, audit, chats, orgs};
use crate::table::{Table, cell};
use rust_i18n::t;

fn tr(locale: &str, key: &str) -> String {
    t!(key, locale = locale).into_owned()
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

// ---------------------------------------------------------------- claim

/// The batch this chat is about, or a reply saying there is none.
async fn current(ctx: &mut Ctx<'_>) -> Result<Option<Batch>> {
    let platform = ctx.msg.platform.as_str();
    match batch_for(ctx.tx, platform, &ctx.msg.chat_id).await? {
        Ok(b) => Ok(Some(b)),
        Err(soon) => {
            let text = no_batch_text(ctx.env, ctx.locale, soon.as_ref());
            ctx.reply(text);
            Ok(None)
        }
    }
}

/// Wish `no` of `batch`, or a reply saying there is no such number.
async fn wish_no(ctx: &mut Ctx<'_>, batch: &Batch, no: u32) -> Result<Option<Wish>> {
    let w = db::wish(ctx.tx, batch.id, i64::from(no)).await?;
    if w.is_none() {
        let text = t!(
            "wishes.no_such",
            locale = ctx.locale,
            no = no,
            total = batch.total
        );
        ctx.reply(text);
    }
    Ok(w)
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
fn no_batch_text(env: &Env, locale: &str, soon: Option<&Batch>) -> String {
    match soon {
        Some(b) => t!(
            "wishes.claim.not_yet",
            locale = locale,
            name = b.name.as_str(),
            at = local_time(env, b.publish_at.unwrap_or_default())
        )
        .into_owned(),
        None => tr(locale, "wishes.no_batch"),
    }
}

/// A time in the configured zone, as the chat shows it (`05-20 20:00`).
fn local_time(env: &Env, ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&env.tz)
        .format("%m-%d %H:%M")
        .to_string()
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
