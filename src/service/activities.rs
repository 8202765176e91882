//! Activity logging: `/log` (记录), `/undo` (撤销), `/edit` (修改),
//! `/stats` (统计), `/mine` (我的记录), and photos attached to records.
//!
//! The parser (`command::activity`) reads the free Chinese text; this module
//! decides *whose* record it is, refuses what must not be recorded (future
//! dates, other orgs' records), asks before recording a likely duplicate,
//! and answers with a compact card saying what was read and how to fix it.

use chrono::{Datelike, NaiveDate};
use rust_i18n::t;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::orgs::{OrgMatch, resolve};
use super::{Ctx, Result, clip};
use crate::chat::{AttachmentKind, Outgoing};
use crate::command::activity::{ActivityReport, Warning};
use crate::command::dates::BadDay;
use crate::command::edit::MAX_FIELD_CHARS;
use crate::command::logs::{self, LogArgs, LogLine};
use crate::command::scope::{self, PeriodScope};
use crate::command::{EditError, EditField, EditValue};
use crate::domain::Role;
use crate::domain::category::Category;
use crate::store::activities::{self, Activity, Field, Filter, NewActivity, QuantityRow};
use crate::store::orgs::{self, Org};
use crate::store::pending;

/// A second record with the same org, date and title within this window is
/// probably the same report sent twice: ask first.
const DUPLICATE_WINDOW_MS: i64 = 10 * 60 * 1000;
/// `/undo` without a number takes back the sender's last record of this window.
const UNDO_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// Pending-question kind: "record this likely duplicate anyway?"
pub const LOG_DUP: &str = "log_dup";

/// What a pending duplicate question remembers: the text to record on 确认.
#[derive(Debug, Serialize, Deserialize)]
struct PendingLog {
    org_id: i64,
    text: String,
    photo: Option<String>,
}

/// `/log TEXT`: record one activity per line for the chat's or sender's org.
#[tracing::instrument(skip(ctx, args), fields(person = ctx.person.id))]
pub async fn log(ctx: &mut Ctx<'_>, args: &LogArgs) -> Result {
    let Some((org, text, lines)) = pick_org(ctx, args).await? else {
        return Ok(());
    };
    if lines.is_empty()
        || lines
            .iter()
            .all(|l| l.report.warnings.contains(&Warning::Empty))
    {
        let usage = t!("usage.log", locale = ctx.locale);
        ctx.reply(usage);
        return Ok(());
    }
    // A day that does not exist: say why, record nothing of the message.
    let bad: Vec<String> = lines
        .iter()
        .filter_map(|l| l.bad_day.map(|b| bad_day_text(b, ctx.locale)))
        .collect();
    if !bad.is_empty() {
        let text = t!(
            "activity.bad_date",
            locale = ctx.locale,
            reason = bad.join("；")
        );
        ctx.reply(text);
        return Ok(());
    }
    let photo = photo_ref(ctx);
    // Same org, date and title within minutes: probably sent twice.
    for LogLine { report: r, .. } in lines {
        let since = ctx.now_ms() - DUPLICATE_WINDOW_MS;
        let date = r.date.format("%Y-%m-%d").to_string();
        if let Some(id) = activities::find_duplicate(ctx.tx, org.id, &date, &r.title, since).await?
        {
            let payload = serde_json::to_string(&PendingLog {
                org_id: org.id,
                text: text.clone(),
                photo,
            })
            .unwrap_or_default();
            let expires = ctx.now_ms() + DUPLICATE_WINDOW_MS;
            let (platform, user, chat) = (
                ctx.msg.platform,
                ctx.msg.sender_id.clone(),
                ctx.msg.chat_id.clone(),
            );
            pending::set(ctx.tx, platform, &user, &chat, LOG_DUP, &payload, expires).await?;
            let ask = t!(
                "activity.duplicate",
                locale = ctx.locale,
                id = id,
                title = r.title.as_str()
            );
            ctx.reply(ask);
            return Ok(());
        }
    }
    record(ctx, &org, lines, photo).await
}

/// 确认 after a duplicate question: record what was asked about.
pub async fn confirm_duplicate(ctx: &mut Ctx<'_>, payload: &str) -> Result {
    let Ok(p) = serde_json::from_str::<PendingLog>(payload) else {
        return Ok(());
    };
    let Some(org) = orgs::get(ctx.tx, p.org_id).await? else {
        return Ok(());
    };
    let lines = logs::lines(&p.text, ctx.today, &ctx.env.activity_rules);
    record(ctx, &org, &lines, p.photo).await
}

/// Why a written day does not exist: `2月没有30日`.
fn bad_day_text(b: BadDay, locale: &str) -> String {
    match b {
        BadDay::NoMonth { m } => t!("activity.no_month", locale = locale, m = m),
        BadDay::NoDay { m, d } => t!("activity.no_day", locale = locale, m = m, d = d),
        BadDay::NotLeap { y } => t!("activity.not_leap", locale = locale, y = y),
    }
    .into_owned()
}

/// Decide whose record this is. Staff may name the org first (`/log 县一中 …`);
/// a group bound to an org records for that org; staff in a group bound to
/// none (the county group) record for 团县委; otherwise the sender's org.
/// Returns the org, the text without a leading org name and its records, or
/// `None` after replying why nothing can be recorded.
async fn pick_org<'a>(
    ctx: &mut Ctx<'_>,
    args: &'a LogArgs,
) -> Result<Option<(Org, String, &'a [LogLine])>> {
    let all = orgs::all(ctx.tx).await?;
    let aliases = orgs::aliases(ctx.tx).await?;
    let named = args.lead.as_ref().and_then(|lead| {
        let first = lead.org.as_str();
        match resolve(first, &all, &aliases) {
            OrgMatch::One(o) if names_exactly(&o, first, &aliases) => Some((o, lead)),
            _ => None,
        }
    });
    let default_id = if ctx.in_group() && ctx.chat.org_id.is_some() {
        ctx.chat.org_id
    } else if ctx.in_group() && ctx.is_staff() {
        // Staff in a group bound to no org (the county group) log for the
        // county committee.
        super::orgs::county_committee(&all)
            .map(|o| o.id)
            .or(ctx.person.org_id)
    } else {
        ctx.person.org_id
    };
    if let Some((org, lead)) = named {
        // Only an org's members record for it (staff for any).
        let own = Some(org.id) == ctx.person.org_id;
        if !own && !ctx.is_staff() {
            let text = t!(
                "activity.other_org",
                locale = ctx.locale,
                org = org.display()
            );
            ctx.reply(text);
            return Ok(None);
        }
        return Ok(Some((org, lead.rest.clone(), &lead.lines)));
    }
    let Some(org) = default_id.and_then(|id| all.into_iter().find(|o| o.id == id)) else {
        let text = if ctx.is_staff() {
            t!("activity.staff_name_org", locale = ctx.locale).into_owned()
        } else {
            let person = ctx.person.clone();
            super::members::not_member_text(&mut *ctx.tx, &person, ctx.locale).await?
        };
        ctx.reply(text);
        return Ok(None);
    };
    // A group's org: its members record there; anyone else is told why not.
    if !ctx.is_staff() && ctx.person.org_id != Some(org.id) {
        let person = ctx.person.clone();
        let text = super::members::outsider_text(&mut *ctx.tx, &person, &org, ctx.locale).await?;
        ctx.reply(text);
        return Ok(None);
    }
    Ok(Some((org, args.text.clone(), &args.lines)))
}

/// The first word is an org's name (not just similar to one), so
/// `/log 团课 …` is never read as an org called 团课.
fn names_exactly(org: &Org, word: &str, aliases: &[(String, i64)]) -> bool {
    let core = super::orgs::core_name(word);
    org.full_name == word
        || org.short_name == word
        || super::orgs::core_name(&org.full_name) == core
        || aliases.iter().any(|(a, id)| *id == org.id && a == word)
}

/// The photo carried by the message, if any.
fn photo_ref(ctx: &Ctx<'_>) -> Option<String> {
    ctx.msg
        .attachments
        .iter()
        .find(|a| a.kind == AttachmentKind::Photo)
        .map(|a| a.file_ref.clone())
}

async fn record(
    ctx: &mut Ctx<'_>,
    org: &Org,
    reports: &[LogLine],
    photo: Option<String>,
) -> Result {
    let mut lines = Vec::new();
    let mut recorded: Vec<(i64, &ActivityReport)> = Vec::new();
    for LogLine {
        line,
        report: r,
        date: when,
        ..
    } in reports
    {
        if r.warnings.contains(&Warning::Empty) {
            continue;
        }
        if *when > ctx.today {
            let date = short_date(*when, ctx.locale);
            lines.push(t!("activity.future", locale = ctx.locale, date = date).into_owned());
            continue;
        }
        let date = r.date.format("%Y-%m-%d").to_string();
        let quantities: Vec<QuantityRow> = r
            .quantities
            .iter()
            .map(|q| QuantityRow {
                count: q.count,
                unit: q.unit.clone(),
                what: q.what.clone(),
            })
            .collect();
        let id = activities::insert(
            ctx.tx,
            &NewActivity {
                org_id: org.id,
                person_id: ctx.person.id,
                date: &date,
                category: r.category.as_str(),
                title: &r.title,
                participants: r.participants.map(i64::from),
                approx: r.approx,
                hours: r.hours,
                location: r.location.as_deref(),
                source_text: line,
                platform: ctx.msg.platform.as_str(),
                chat_id: &ctx.msg.chat_id,
                quantities: &quantities,
            },
            ctx.now_ms(),
        )
        .await?;
        if let Some(file) = &photo {
            activities::add_photo(ctx.tx, id, file, ctx.now_ms()).await?;
        }
        ctx.audit(
            "activity.create",
            "activity",
            id,
            serde_json::to_value(r).unwrap_or_default(),
        )
        .await?;
        recorded.push((id, r));
    }
    let text = match recorded.as_slice() {
        [] => lines.join("\n"),
        [(id, r)] => {
            let mut card = card(ctx, *id, org, r);
            for l in &lines {
                card.push('\n');
                card.push_str(l);
            }
            card
        }
        many => {
            let mut text = t!(
                "activity.recorded_many",
                locale = ctx.locale,
                n = many.len(),
                org = org.display()
            )
            .into_owned();
            // no date written anywhere: say so once; else on each line
            let undated = |r: &ActivityReport| r.warnings.contains(&Warning::DateMissing);
            let all_undated = many.iter().all(|(_, r)| undated(r));
            if all_undated {
                text.push_str(&t!("activity.date_assumed", locale = ctx.locale));
            }
            for (id, r) in many {
                text.push('\n');
                text.push_str(&summary_line(
                    ctx.locale,
                    *id,
                    r.date,
                    r.category.as_str(),
                    &r.title,
                    r.participants.map(i64::from),
                    r.approx,
                ));
                if undated(r) && !all_undated {
                    text.push_str(&t!("activity.date_assumed", locale = ctx.locale));
                }
            }
            for l in &lines {
                text.push('\n');
                text.push_str(l);
            }
            let last = many.last().map(|(id, _)| *id).unwrap_or_default();
            text.push('\n');
            text.push_str(&t!(
                "activity.fix_hint_many",
                locale = ctx.locale,
                id = last
            ));
            text
        }
    };
    // The card is queued now so its outbox id is known: a photo sent later as
    // a reply to it attaches to the record.
    let mut msg = Outgoing::new(ctx.msg.platform, ctx.msg.chat_id.clone(), text);
    msg.reply_to = ctx.msg.message_id.clone();
    let now = ctx.now_ms();
    let card_id = ctx.out.enqueue(ctx.tx, &msg, now, None, now).await?;
    if let [(id, _)] = recorded.as_slice() {
        activities::set_card(ctx.tx, *id, card_id).await?;
    }
    Ok(())
}

/// `3月5日（周四）`
fn short_date(d: NaiveDate, locale: &str) -> String {
    let wd = t!(
        format!("weekday.{}", d.weekday().num_days_from_monday()),
        locale = locale
    );
    t!(
        "activity.date",
        locale = locale,
        m = d.month(),
        d = d.day(),
        wd = wd
    )
    .into_owned()
}

fn people(n: Option<i64>, approx: bool, locale: &str) -> Option<String> {
    n.map(|n| {
        let key = if approx {
            "activity.people_approx"
        } else {
            "activity.people"
        };
        t!(key, locale = locale, n = n).into_owned()
    })
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

/// The compact card for one new record.
fn card(ctx: &Ctx<'_>, id: i64, org: &Org, r: &ActivityReport) -> String {
    let loc = ctx.locale;
    let mut head = t!(
        "activity.recorded",
        locale = loc,
        id = id,
        org = org.display()
    )
    .into_owned();
    if r.warnings.contains(&Warning::DateMissing) {
        head.push_str(&t!("activity.date_assumed", locale = loc));
    }
    let mut out = vec![head];
    out.push(
        t!(
            "activity.card_line",
            locale = loc,
            date = short_date(r.date, loc),
            category = category_label(r.category, loc),
            title = r.title.as_str()
        )
        .into_owned(),
    );
    let mut facts = Vec::new();
    facts.push(
        people(r.participants.map(i64::from), r.approx, loc)
            .unwrap_or_else(|| t!("activity.people_missing", locale = loc).into_owned()),
    );
    if let Some(h) = r.hours {
        facts.push(t!("activity.hours", locale = loc, n = number(h)).into_owned());
    }
    if let Some(l) = &r.location {
        facts.push(l.clone());
    }
    out.push(facts.join(" · "));
    if !r.quantities.is_empty() {
        let q: Vec<String> = r
            .quantities
            .iter()
            .map(|q| {
                format!(
                    "{}{}{}",
                    q.what.as_deref().unwrap_or(""),
                    number(q.count),
                    q.unit
                )
            })
            .collect();
        out.push(q.join(" · "));
    }
    if r.warnings.contains(&Warning::CategoryGuessed) {
        out.push(t!("activity.category_guessed", locale = loc, id = id).into_owned());
    }
    if r.warnings.contains(&Warning::HoursUnresolved) {
        out.push(t!("activity.hours_unresolved", locale = loc, id = id).into_owned());
    }
    out.push(t!("activity.fix_hint", locale = loc, id = id).into_owned());
    out.join("\n")
}

fn category_label(c: Category, locale: &str) -> String {
    if locale == "zh-CN" {
        c.as_str().to_string()
    } else {
        t!(format!("category.{}", c.as_str()), locale = locale).into_owned()
    }
}

/// `#57 3月5日 志愿服务 学雷锋 45人`
fn summary_line(
    locale: &str,
    id: i64,
    date: NaiveDate,
    category: &str,
    title: &str,
    participants: Option<i64>,
    approx: bool,
) -> String {
    let mut s = format!("#{id} {} {category}", short_date(date, locale));
    if title != category {
        s.push(' ');
        s.push_str(&clip(title, 20));
    }
    if let Some(p) = people(participants, approx, locale) {
        s.push(' ');
        s.push_str(&p);
    }
    s
}

/// A photo sent as a reply to a record's card attaches to that record.
/// Returns false when the reply is to something else.
pub async fn attach_reply_photo(ctx: &mut Ctx<'_>) -> Result<bool> {
    let Some(photo) = photo_ref(ctx) else {
        return Ok(false);
    };
    let Some(reply) = ctx.msg.reply_to.clone() else {
        return Ok(false);
    };
    let platform = ctx.msg.platform.as_str();
    let chat = ctx.msg.chat_id.clone();
    let Some(id) = activities::by_card_message(ctx.tx, platform, &chat, &reply.message_id).await?
    else {
        return Ok(false);
    };
    activities::add_photo(ctx.tx, id, &photo, ctx.now_ms()).await?;
    ctx.audit("activity.photo", "activity", id, json!({"file": photo}))
        .await?;
    let text = t!("activity.photo_added", locale = ctx.locale, id = id);
    ctx.reply(text);
    Ok(true)
}

/// May the acting person change this record? Its author, a cadre of its org,
/// or staff.
fn may_change(ctx: &Ctx<'_>, a: &Activity) -> bool {
    ctx.is_staff()
        || a.person_id == Some(ctx.person.id)
        || (ctx.person.role == Role::Cadre && ctx.person.org_id == Some(a.org_id))
}

/// `/undo [ID]` (撤销).
pub async fn undo(ctx: &mut Ctx<'_>, id: Option<i64>) -> Result {
    let target = match id {
        Some(id) => activities::get(ctx.tx, id).await?,
        None => {
            let since = ctx.now_ms() - UNDO_WINDOW_MS;
            activities::last_by_person(ctx.tx, ctx.person.id, since).await?
        }
    };
    let Some(a) = target else {
        let text = match id {
            Some(id) => t!("activity.not_found", locale = ctx.locale, id = id),
            None => t!("activity.nothing_to_undo", locale = ctx.locale),
        };
        ctx.reply(text);
        return Ok(());
    };
    if !may_change(ctx, &a) {
        let text = t!("activity.no_permission", locale = ctx.locale, id = a.id);
        ctx.reply(text);
        return Ok(());
    }
    activities::soft_delete(ctx.tx, a.id, ctx.now_ms()).await?;
    ctx.audit(
        "activity.undo",
        "activity",
        a.id,
        json!({"title": a.title, "date": a.date}),
    )
    .await?;
    let date = NaiveDate::parse_from_str(&a.date, "%Y-%m-%d")
        .map(|d| short_date(d, ctx.locale))
        .unwrap_or(a.date.clone());
    let text = t!(
        "activity.undone",
        locale = ctx.locale,
        id = a.id,
        title = a.title.as_str(),
        date = date
    );
    ctx.reply(text);
    Ok(())
}

/// `/edit ID FIELD VALUE` (修改).
pub async fn edit(
    ctx: &mut Ctx<'_>,
    id: i64,
    field: EditField,
    value: &std::result::Result<EditValue, EditError>,
) -> Result {
    let Some(a) = activities::get(ctx.tx, id).await? else {
        let text = t!("activity.not_found", locale = ctx.locale, id = id);
        ctx.reply(text);
        return Ok(());
    };
    if !may_change(ctx, &a) {
        let text = t!("activity.no_permission", locale = ctx.locale, id = a.id);
        ctx.reply(text);
        return Ok(());
    }
    let loc = ctx.locale;
    let parsed: std::result::Result<(Field, String, String), String> = match value {
        Ok(EditValue::Date(d)) => Ok((
            Field::Date(d.format("%Y-%m-%d").to_string()),
            a.date.clone(),
            d.format("%Y-%m-%d").to_string(),
        )),
        Ok(EditValue::Category(c)) => Ok((
            Field::Category(c.as_str().to_string()),
            a.category.clone(),
            c.as_str().to_string(),
        )),
        Ok(EditValue::Participants(n)) => Ok((
            Field::Participants(Some(*n)),
            a.participants.map(|p| p.to_string()).unwrap_or_default(),
            n.to_string(),
        )),
        Ok(EditValue::Hours(n)) => Ok((
            Field::Hours(Some(*n)),
            a.hours.map(number).unwrap_or_default(),
            number(*n),
        )),
        Ok(EditValue::Text(v)) if field == EditField::Title => {
            Ok((Field::Title(v.clone()), a.title.clone(), v.clone()))
        }
        Ok(EditValue::Text(v)) => Ok((
            Field::Location(Some(v.clone())),
            a.location.clone().unwrap_or_default(),
            v.clone(),
        )),
        Err(e) => Err(edit_error_text(*e, loc)),
    };
    let (new, before, after) = match parsed {
        Ok(x) => x,
        Err(text) => {
            ctx.reply(text);
            return Ok(());
        }
    };
    activities::update_field(ctx.tx, a.id, &new, ctx.now_ms()).await?;
    ctx.audit(
        "activity.edit",
        "activity",
        a.id,
        json!({"field": field.code(), "before": before, "after": after}),
    )
    .await?;
    let name = t!(format!("activity.field.{}", field.code()), locale = loc);
    let before = if before.is_empty() {
        t!("activity.blank", locale = loc).into_owned()
    } else {
        before
    };
    let text = t!(
        "activity.edited",
        locale = loc,
        id = a.id,
        field = name,
        before = before,
        after = after
    );
    ctx.reply(text);
    Ok(())
}

/// The reply to an `/edit` value that can't be used.
fn edit_error_text(e: EditError, loc: &str) -> String {
    match e {
        EditError::FutureDate => t!("activity.edit_future", locale = loc),
        EditError::BadDate => t!("activity.edit_bad_date", locale = loc),
        EditError::BadCategory => t!(
            "activity.edit_bad_category",
            locale = loc,
            list = Category::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join("、")
        ),
        EditError::BadNumber => t!("activity.edit_bad_number", locale = loc),
        EditError::BadText => t!(
            "activity.edit_bad_text",
            locale = loc,
            max = MAX_FIELD_CHARS
        ),
    }
    .into_owned()
}

/// `/mine` (我的记录): the sender's ten latest records.
pub async fn mine(ctx: &mut Ctx<'_>) -> Result {
    let list = activities::recent_by_person(ctx.tx, ctx.person.id, 10).await?;
    if list.is_empty() {
        let text = t!("activity.mine_empty", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let mut text = t!("activity.mine_title", locale = ctx.locale).into_owned();
    for a in &list {
        let date = NaiveDate::parse_from_str(&a.date, "%Y-%m-%d").unwrap_or(ctx.today);
        text.push('\n');
        text.push_str(&summary_line(
            ctx.locale,
            a.id,
            date,
            &a.category,
            &a.title,
            a.participants,
            a.approx,
        ));
    }
    ctx.reply(text);
    Ok(())
}

/// The scope of a `/stats`: one org, or the whole county.
enum Scope {
    Org(Org),
    County,
}

/// `/stats [ORG|全县] [PERIOD]` (统计).
pub async fn stats(ctx: &mut Ctx<'_>, args: &PeriodScope) -> Result {
    let loc = ctx.locale;
    // Period: the first date range in the arguments; default this month so far.
    let (from, to) = match args.period {
        Some(p) => (p.from, p.to),
        None => (ctx.today.with_day(1).unwrap_or(ctx.today), ctx.today),
    };
    let to = to.min(ctx.today);
    let all = orgs::all(ctx.tx).await?;
    let scope = if let Some(scope::Scope::County) = args.scope {
        Scope::County
    } else if let Some(scope::Scope::Org(who)) = &args.scope {
        match super::orgs::lookup_one(ctx, who.as_str()).await? {
            Some(o) => Scope::Org(o),
            None => return Ok(()),
        }
    } else {
        let default = if ctx.in_group() && ctx.chat.org_id.is_some() {
            ctx.chat.org_id
        } else {
            ctx.person.org_id
        };
        match default.and_then(|id| all.iter().find(|o| o.id == id)) {
            Some(o) if !(ctx.is_staff() && ctx.chat.committee_wide) => Scope::Org(o.clone()),
            _ if ctx.is_staff() => Scope::County,
            _ => {
                let person = ctx.person.clone();
                let text = super::members::not_member_text(&mut *ctx.tx, &person, loc).await?;
                ctx.reply(text);
                return Ok(());
            }
        }
    };
    let (from_s, to_s) = (
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    );
    let filter = Filter {
        from: &from_s,
        to: &to_s,
        org_id: match &scope {
            Scope::Org(o) => Some(o.id),
            Scope::County => None,
        },
    };
    let mut by_cat = activities::totals_by_category(ctx.tx, &filter).await?;
    // Most records first; ties in the canonical category order, the same on
    // every backend whatever its collation.
    let rank = |k: &str| {
        Category::ALL
            .iter()
            .position(|c| c.as_str() == k)
            .unwrap_or(usize::MAX)
    };
    by_cat.sort_by(|a, b| {
        b.records
            .cmp(&a.records)
            .then(rank(&a.key).cmp(&rank(&b.key)))
    });
    let quantities = activities::quantities_by_unit(ctx.tx, &filter).await?;
    let name = match &scope {
        Scope::Org(o) => o.display().to_string(),
        Scope::County => t!("stats.county", locale = loc).into_owned(),
    };
    let period = format!("{}–{}", range_date(from, loc), range_date(to, loc));
    let mut text = t!("stats.title", locale = loc, name = name, period = period).into_owned();
    let records: i64 = by_cat.iter().map(|t| t.records).sum();
    if records == 0 {
        text.push('\n');
        text.push_str(&t!("stats.none", locale = loc));
        // Point at the latest records, or at how to make the first.
        let latest = activities::latest_date(ctx.tx, filter.org_id).await?;
        let latest = latest.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
        text.push('\n');
        text.push_str(&match latest {
            Some(d) => {
                let ask = if d.year() == ctx.today.year() {
                    t!("stats.ask_month", locale = loc, m = d.month())
                } else {
                    t!(
                        "stats.ask_year_month",
                        locale = loc,
                        y = d.year(),
                        m = d.month()
                    )
                };
                t!(
                    "stats.latest",
                    locale = loc,
                    date = range_date(d, loc),
                    ask = ask
                )
                .into_owned()
            }
            None => t!("stats.first", locale = loc).into_owned(),
        });
    } else {
        let people: i64 = by_cat.iter().map(|t| t.participants).sum();
        let hours: f64 = by_cat.iter().map(|t| t.hours).sum();
        text.push('\n');
        text.push_str(&t!(
            "stats.total",
            locale = loc,
            n = records,
            people = people,
            hours = number(hours)
        ));
        for c in &by_cat {
            let label = c
                .key
                .parse::<Category>()
                .map(|c| category_label(c, loc))
                .unwrap_or(c.key.clone());
            let mut line = t!(
                "stats.category",
                locale = loc,
                category = label,
                n = c.records
            )
            .into_owned();
            if c.participants > 0 {
                line.push_str(&t!("stats.people", locale = loc, n = c.participants));
            }
            if c.hours > 0.0 {
                line.push_str(&t!("stats.hours", locale = loc, n = number(c.hours)));
            }
            text.push('\n');
            text.push_str(&line);
        }
        if !quantities.is_empty() {
            let q: Vec<String> = quantities
                .iter()
                .map(|(u, n)| format!("{}{u}", number(*n)))
                .collect();
            text.push('\n');
            text.push_str(&t!("stats.quantities", locale = loc, list = q.join(" · ")));
        }
    }
    if matches!(scope, Scope::County) && ctx.is_staff() {
        let by_org = activities::totals_by_org(ctx.tx, &filter).await?;
        let name_of = |id: &str| {
            all.iter()
                .find(|o| o.id.to_string() == id)
                .map(|o| o.display().to_string())
                .unwrap_or_else(|| id.to_string())
        };
        for o in by_org.iter().take(15) {
            text.push('\n');
            text.push_str(&t!(
                "stats.org_line",
                locale = loc,
                org = name_of(&o.key),
                n = o.records,
                people = o.participants
            ));
        }
        if by_org.len() > 15 {
            text.push('\n');
            text.push_str(&t!("stats.more_orgs", locale = loc, n = by_org.len() - 15));
        }
        let active: std::collections::HashSet<&str> =
            by_org.iter().map(|o| o.key.as_str()).collect();
        let silent: Vec<&str> = all
            .iter()
            .filter(|o| {
                o.kind != crate::domain::OrgKind::Committee
                    && !active.contains(o.id.to_string().as_str())
            })
            .map(|o| o.display())
            .collect();
        if !silent.is_empty() {
            let shown = silent
                .iter()
                .take(20)
                .copied()
                .collect::<Vec<_>>()
                .join("、");
            let more = if silent.len() > 20 {
                "…".to_string()
            } else {
                String::new()
            };
            text.push('\n');
            text.push_str(&t!(
                "stats.silent",
                locale = loc,
                n = silent.len(),
                list = format!("{shown}{more}")
            ));
        }
    }
    ctx.reply(text);
    Ok(())
}

/// `3月1日` or `2025年12月1日` when not this year.
fn range_date(d: NaiveDate, locale: &str) -> String {
    t!(
        "stats.date",
        locale = locale,
        y = d.year(),
        m = d.month(),
        d = d.day()
    )
    .into_owned()
}
