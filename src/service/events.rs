//! Sign-up lists (报名 / 接龙): `/event` posts a numbered list; `报名 N`,
//! `接龙 N`, `+1` or the button join; `取消报名 N` leaves and promotes the
//! first waiting person; the list closes at its deadline or by `/event close
//! N`; a reminder goes out a day before the start. A county-wide list
//! (posted by staff from a committee-wide group or a private chat) goes to
//! every bound group with one shared capacity.
//!
//! In a group, joins do not get one reply each: the list itself is re-posted
//! once per short window with everyone who joined meanwhile.

use chrono::Duration;
use serde::Deserialize;
use serde_json::json;

use super::Env;
use super::notices::show_time;
use super::schedule;
use super::{Ctx, Out, Result, Scheduled, clip};
use crate::chat::{Button, Outgoing};
use crate::command::notices::EventArgs;
use crate::domain::Role;
use crate::store::events::{self as store_events, Entry, Event};
use crate::store::jobs::Job;
use crate::store::notices::Target;
use crate::store::{self, Conn, audit, chats, people};
use rust_i18n::t;

/// The reminder goes out this long before the start.
pub const REMIND_BEFORE_HOURS: i64 = 24;
/// Joins in one group are gathered into one list update per window.
const JOIN_WINDOW_SECS: i64 = 10;
/// Lines of the list shown in a group before "…".
const SHOW_MAX: usize = 50;

/// The list as shown in a group.
fn render(env: &Env, locale: &str, e: &Event, entries: &[Entry]) -> String {
    let inn: Vec<&Entry> = entries.iter().filter(|x| !x.waiting).collect();
    let wait: Vec<&Entry> = entries.iter().filter(|x| x.waiting).collect();
    let mut text = t!(
        "event.list_title",
        locale = locale,
        id = e.id,
        title = e.title.as_str(),
        n = inn.len(),
        cap = e.capacity
    )
    .into_owned();
    text.push('\n');
    let place = if e.place.is_empty() {
        "—"
    } else {
        e.place.as_str()
    };
    text.push_str(&t!(
        "event.list_when",
        locale = locale,
        time = e.time_text.as_str(),
        place = place
    ));
    if let Some(d) = e.deadline_at {
        text.push_str(&t!(
            "event.list_deadline",
            locale = locale,
            at = show_time(env, locale, d)
        ));
    }
    let line = |i: usize, x: &Entry| match &x.note {
        Some(n) => format!("{}. {}（{}）", i + 1, x.name, n),
        None => format!("{}. {}", i + 1, x.name),
    };
    for (i, x) in inn.iter().enumerate().take(SHOW_MAX) {
        text.push('\n');
        text.push_str(&line(i, x));
    }
    if inn.len() > SHOW_MAX {
        text.push_str(&format!("\n…（{}）", inn.len()));
    }
    if !wait.is_empty() {
        text.push('\n');
        text.push_str(&t!("event.list_waiting", locale = locale, n = wait.len()));
        for (i, x) in wait.iter().enumerate().take(SHOW_MAX) {
            text.push('\n');
            text.push_str(&line(i, x));
        }
    }
    text.push('\n');
    if e.status == "open" {
        text.push_str(&t!("event.list_footer", locale = locale, id = e.id));
    } else {
        text.push_str(&t!("event.list_closed", locale = locale));
    }
    text
}

fn buttons(env: &Env, locale: &str, e: &Event, m: &mut Outgoing) {
    if e.status == "open" && env.capabilities(m.platform).buttons {
        m.buttons = vec![vec![
            Button {
                label: t!("event.button_join", locale = locale).into_owned(),
                data: format!("报名 {}", e.id),
            },
            Button {
                label: t!("event.button_leave", locale = locale).into_owned(),
                data: format!("取消报名 {}", e.id),
            },
        ]];
    }
}

fn list_message(env: &Env, locale: &str, e: &Event, entries: &[Entry], t: &Target) -> Outgoing {
    let mut m = Outgoing::new(
        t.platform,
        t.chat_id.clone(),
        render(env, locale, e, entries),
    );
    buttons(env, locale, e, &mut m);
    m
}

/// `/event TITLE 时间 地点 名额N [截止 …]`.
#[tracing::instrument(skip_all, fields(person = ctx.person.id))]
pub async fn create(ctx: &mut Ctx<'_>, a: &EventArgs) -> Result {
    if !ctx.person.role.at_least(Role::Cadre) {
        let text = t!("event.no_permission", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let starts_at = a
        .time
        .at
        .ok()
        .and_then(|d| super::to_utc(ctx.env.tz, d))
        .map(store::ms);
    let deadline_at = match &a.deadline {
        // A deadline that has passed is as unusable as an unreadable one.
        Some(when) => match super::future_time(ctx, when, "notice.bad_time") {
            Some(ms) => Some(ms),
            None => return Ok(()),
        },
        None => None,
    };
    // Where it goes: this group; a staff member's list from a committee-wide
    // group or a private chat goes county-wide; a cadre's private one to
    // their org's groups.
    let groups: Vec<i64> = if ctx.in_group() && !(ctx.is_staff() && ctx.chat.committee_wide) {
        vec![ctx.chat.id]
    } else if ctx.is_staff() {
        chats::bound_groups(ctx.tx)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect()
    } else {
        match ctx.person.org_id {
            Some(org) => chats::groups_of_org(ctx.tx, org)
                .await?
                .into_iter()
                .map(|c| c.id)
                .collect(),
            None => Vec::new(),
        }
    };
    if groups.is_empty() {
        let text = t!("notice.no_groups", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let mut e = Event {
        id: 0,
        title: clip(&a.title, 40),
        time_text: clip(&a.time.text, 30),
        place: clip(&a.place, 40),
        starts_at,
        capacity: a.capacity,
        deadline_at,
        status: "open".into(),
        creator_person_id: ctx.person.id,
        org_id: ctx.person.org_id,
    };
    let now_ms = ctx.now_ms();
    e.id = store_events::create(ctx.tx, &e, &groups, now_ms).await?;
    ctx.audit(
        "event.create",
        "event",
        e.id,
        json!({"title": e.title, "capacity": e.capacity, "groups": groups.len()}),
    )
    .await?;
    let now = ctx.now;
    let payload = json!({ "event": e.id });
    if let Some(d) = deadline_at {
        schedule::schedule(ctx.tx, "event.close", &payload, store::from_ms(d), now).await?;
    }
    if let Some(s) = starts_at {
        let at = store::from_ms(s) - Duration::hours(REMIND_BEFORE_HOURS);
        if at > now {
            schedule::schedule(ctx.tx, "event.remind", &payload, at, now).await?;
        }
    }
    let targets = store_events::targets(ctx.tx, e.id).await?;
    let locale = ctx.env.default_locale();
    for t in &targets {
        let m = list_message(ctx.env, locale, &e, &[], t);
        post(ctx.tx, &mut ctx.out, e.id, &m, now_ms).await?;
    }
    if !(targets.len() == 1 && targets[0].chat == ctx.chat.id) {
        let text = t!(
            "event.posted",
            locale = ctx.locale,
            id = e.id,
            n = targets.len()
        );
        ctx.reply(text);
    }
    Ok(())
}

/// Enqueue a message that shows list `id` and remember its outbox row, so
/// a `+1` replying to it joins this list.
async fn post(conn: &mut Conn, out: &mut Out, id: i64, m: &Outgoing, now_ms: i64) -> Result<()> {
    let row = out.enqueue(&mut *conn, m, now_ms, None, now_ms).await?;
    store_events::add_post(conn, id, row).await
}

async fn find(ctx: &mut Ctx<'_>, id: i64) -> Result<Option<Event>> {
    let e = store_events::get(ctx.tx, id).await?;
    if e.is_none() {
        let text = t!("event.not_found", locale = ctx.locale, id = id);
        ctx.reply(text);
    }
    Ok(e)
}

/// `/event N`: the list.
pub async fn show(ctx: &mut Ctx<'_>, id: i64) -> Result {
    let Some(e) = find(ctx, id).await? else {
        return Ok(());
    };
    let entries = store_events::entries(ctx.tx, id).await?;
    let mut m = Outgoing::new(
        ctx.msg.platform,
        ctx.msg.chat_id.clone(),
        render(ctx.env, ctx.locale, &e, &entries),
    );
    m.reply_to = ctx.msg.message_id.clone();
    buttons(ctx.env, ctx.locale, &e, &mut m);
    let now_ms = ctx.now_ms();
    post(ctx.tx, &mut ctx.out, id, &m, now_ms).await
}

/// Re-post the list in this group once per window (coalesced), instead of
/// one reply per join or leave.
async fn gathered_update(ctx: &mut Ctx<'_>, e: &Event) -> Result {
    let entries = store_events::entries(ctx.tx, e.id).await?;
    let mut m = Outgoing::new(
        ctx.msg.platform,
        ctx.msg.chat_id.clone(),
        render(ctx.env, ctx.locale, e, &entries),
    );
    buttons(ctx.env, ctx.locale, e, &mut m);
    let key = format!("event-list:{}:{}", e.id, ctx.chat.id);
    let at = store::ms(ctx.now + Duration::seconds(JOIN_WINDOW_SECS));
    let now_ms = ctx.now_ms();
    match ctx.out.coalesce_now(ctx.tx, &key, &m, at, now_ms).await? {
        Some(row) => store_events::add_post(ctx.tx, e.id, row).await,
        None => Ok(()),
    }
}

/// 报名 N [NOTE] / 接龙 N / `+1` / the button.
pub async fn join(ctx: &mut Ctx<'_>, id: Option<i64>, note: Option<&str>) -> Result {
    let e = match id {
        Some(id) => match find(ctx, id).await? {
            Some(e) => e,
            None => return Ok(()),
        },
        None => {
            // A bare `+1` counts only in a group with an open list: the one
            // it replies to, else the latest.
            let replied = match &ctx.msg.reply_to {
                Some(r) => {
                    store_events::by_post(ctx.tx, ctx.msg.platform, &ctx.msg.chat_id, &r.message_id)
                        .await?
                }
                None => None,
            };
            let open = match replied {
                Some(id) => store_events::get(ctx.tx, id).await?,
                None if ctx.in_group() => {
                    let open = store_events::open_all_in_chat(ctx.tx, ctx.chat.id, 10).await?;
                    if open.len() > 1 {
                        // Several lists: which one, never a guess.
                        let mut text = t!("event.which", locale = ctx.locale).into_owned();
                        for e in &open {
                            text.push('\n');
                            let line = t!(
                                "event.which_line",
                                locale = ctx.locale,
                                id = e.id,
                                title = clip(&e.title, 30)
                            );
                            text.push_str(&line);
                        }
                        ctx.reply(text);
                        return Ok(());
                    }
                    open.into_iter().next()
                }
                None => None,
            };
            match open {
                Some(e) => e,
                None => {
                    if !ctx.in_group() {
                        let hint = t!("common.private_hint", locale = ctx.locale);
                        ctx.reply(hint);
                    }
                    return Ok(());
                }
            }
        }
    };
    if e.status != "open" {
        let text = t!("event.closed", locale = ctx.locale, id = e.id);
        ctx.reply(text);
        return Ok(());
    }
    // A sign-up is shown with the person's org: members of an org (or
    // staff) sign up; someone waiting to join, or in no org, is told why not.
    if !ctx.is_staff() && ctx.person.org_id.is_none() {
        let person = ctx.person.clone();
        let text = super::members::not_member_text(ctx.tx, &person, ctx.locale).await?;
        ctx.reply(text);
        return Ok(());
    }
    store_events::lock(ctx.tx, ctx.env.store.backend(), e.id).await?;
    let waiting = store_events::count_in(ctx.tx, e.id).await? >= e.capacity;
    let now_ms = ctx.now_ms();
    if !store_events::insert_entry(ctx.tx, e.id, ctx.person.id, note, waiting, now_ms).await? {
        // `+1 小吴` from someone on the list already: 小吴 comes along.
        if let (None, Some(companion)) = (id, note)
            && store_events::set_note(ctx.tx, e.id, ctx.person.id, companion).await?
        {
            let audit = json!({"person": ctx.person.id, "note": companion});
            ctx.audit("event.note", "event", e.id, audit).await?;
            if ctx.in_group() {
                return gathered_update(ctx, &e).await;
            }
            let text = t!(
                "event.joined",
                locale = ctx.locale,
                id = e.id,
                title = e.title.as_str()
            );
            ctx.reply(text);
            return Ok(());
        }
        let text = t!(
            "event.already",
            locale = ctx.locale,
            name = ctx.person.display_name.as_str(),
            id = e.id
        );
        ctx.reply(text);
        return Ok(());
    }
    ctx.audit(
        "event.join",
        "event",
        e.id,
        json!({"person": ctx.person.id, "waiting": waiting, "note": note}),
    )
    .await?;
    if ctx.in_group() {
        return gathered_update(ctx, &e).await;
    }
    let key = if waiting {
        "event.joined_waiting"
    } else {
        "event.joined"
    };
    let text = t!(
        key,
        locale = ctx.locale,
        id = e.id,
        title = e.title.as_str()
    );
    ctx.reply(text);
    Ok(())
}

/// 取消报名 N: leave; the first waiting person moves in and is told.
pub async fn leave(ctx: &mut Ctx<'_>, id: i64) -> Result {
    let Some(e) = find(ctx, id).await? else {
        return Ok(());
    };
    if e.status != "open" {
        let text = t!("event.closed", locale = ctx.locale, id = e.id);
        ctx.reply(text);
        return Ok(());
    }
    store_events::lock(ctx.tx, ctx.env.store.backend(), e.id).await?;
    let Some(was_waiting) = store_events::delete_entry(ctx.tx, e.id, ctx.person.id).await? else {
        let text = t!("event.not_joined", locale = ctx.locale, id = e.id);
        ctx.reply(text);
        return Ok(());
    };
    let promoted = if was_waiting {
        None
    } else {
        promote(ctx.tx, &e).await?
    };
    ctx.audit(
        "event.leave",
        "event",
        e.id,
        json!({"person": ctx.person.id, "promoted": promoted.as_ref().map(|p| p.id)}),
    )
    .await?;
    let text = t!(
        "event.left",
        locale = ctx.locale,
        id = e.id,
        title = e.title.as_str()
    );
    ctx.reply(text);
    if let Some(p) = promoted {
        let text = t!(
            "event.promoted",
            locale = ctx.locale,
            name = p.display_name.as_str(),
            id = e.id,
            title = e.title.as_str()
        );
        // Told where the list lives: here when in a group, else its first group.
        let target = if ctx.in_group() {
            Some((ctx.msg.platform, ctx.msg.chat_id.clone()))
        } else {
            store_events::targets(ctx.tx, e.id)
                .await?
                .into_iter()
                .next()
                .map(|t| (t.platform, t.chat_id))
        };
        if let Some((platform, chat)) = target {
            let mut m = Outgoing::new(platform, chat, text);
            if p.platform == platform {
                m.mention_users = vec![p.user_id.clone()];
            }
            ctx.out.send(m);
        }
    }
    Ok(())
}

async fn promote(conn: &mut Conn, e: &Event) -> Result<Option<people::Person>> {
    if store_events::count_in(conn, e.id).await? >= e.capacity {
        return Ok(None);
    }
    match store_events::promote_first(conn, e.id).await? {
        Some(pid) => people::get(conn, pid).await,
        None => Ok(None),
    }
}

/// `/event close N`: the creator or staff.
pub async fn close(ctx: &mut Ctx<'_>, id: i64) -> Result {
    let Some(mut e) = find(ctx, id).await? else {
        return Ok(());
    };
    if !ctx.is_staff() && e.creator_person_id != ctx.person.id {
        let text = t!("event.not_yours", locale = ctx.locale, id = id);
        ctx.reply(text);
        return Ok(());
    }
    if e.status != "open" {
        let text = t!("event.closed", locale = ctx.locale, id = id);
        ctx.reply(text);
        return Ok(());
    }
    store_events::set_status(ctx.tx, id, "closed").await?;
    e.status = "closed".into();
    let now_ms = ctx.now_ms();
    store::jobs::cancel(
        ctx.tx,
        "event.close",
        &json!({ "event": id }).to_string(),
        now_ms,
    )
    .await?;
    ctx.audit("event.close", "event", id, json!({})).await?;
    let entries = store_events::entries(ctx.tx, id).await?;
    let locale = ctx.env.default_locale();
    for t in store_events::targets(ctx.tx, id).await? {
        let m = list_message(ctx.env, locale, &e, &entries, &t);
        post(ctx.tx, &mut ctx.out, id, &m, now_ms).await?;
    }
    if !ctx.in_group() {
        let text = t!("event.closed_ok", locale = ctx.locale, id = id);
        ctx.reply(text);
    }
    Ok(())
}

#[derive(Deserialize)]
struct EventJob {
    event: i64,
}

/// Job `event.close`: the deadline has come.
pub async fn job_close(ctx: &mut Ctx<'_, Scheduled>, job: &Job) -> Result {
    let p: EventJob = schedule::payload(job)?;
    let Some(mut e) = store_events::get(ctx.tx, p.event).await? else {
        return Ok(());
    };
    if e.status != "open" {
        return Ok(());
    }
    store_events::set_status(ctx.tx, e.id, "closed").await?;
    e.status = "closed".into();
    let entries = store_events::entries(ctx.tx, e.id).await?;
    let locale = ctx.locale;
    let targets = store_events::targets(ctx.tx, e.id).await?;
    let now_ms = ctx.now_ms();
    for t in &targets {
        let m = list_message(ctx.env, locale, &e, &entries, t);
        post(ctx.tx, &mut ctx.out, e.id, &m, now_ms).await?;
    }
    audit::record(
        ctx.tx,
        &audit::Entry {
            at_ms: ctx.now_ms(),
            platform: targets
                .first()
                .map(|t| t.platform)
                .unwrap_or(crate::domain::Platform::Console),
            actor: "scheduler",
            action: "event.close",
            entity: "event",
            entity_id: Some(e.id.to_string()),
            detail: json!({"auto": true}),
        },
    )
    .await
}

/// Job `event.remind`: a day before the start, remind those signed up.
pub async fn job_remind(ctx: &mut Ctx<'_, Scheduled>, job: &Job) -> Result {
    let p: EventJob = schedule::payload(job)?;
    let Some(e) = store_events::get(ctx.tx, p.event).await? else {
        return Ok(());
    };
    let entries = store_events::entries(ctx.tx, e.id).await?;
    let inn: Vec<&Entry> = entries.iter().filter(|x| !x.waiting).collect();
    if inn.is_empty() {
        return Ok(());
    }
    let locale = ctx.locale;
    let place = if e.place.is_empty() {
        "—"
    } else {
        e.place.as_str()
    };
    let text = t!(
        "event.reminder",
        locale = locale,
        id = e.id,
        title = e.title.as_str(),
        time = e.time_text.as_str(),
        place = place,
        n = inn.len()
    );
    for t in store_events::targets(ctx.tx, e.id).await? {
        let mut m = Outgoing::new(t.platform, t.chat_id.clone(), text.clone());
        m.mention_users = inn
            .iter()
            .filter(|x| x.platform == t.platform)
            .map(|x| x.user_id.clone())
            .take(50)
            .collect();
        ctx.out.send(m);
    }
    Ok(())
}

/// `tuanbot export event N FILE.xlsx`: the list as a spreadsheet (序号, 姓名,
/// 组织, 状态, 备注, 报名时间). Returns the event and the number of rows, or
/// `None` when there is no such event.
pub async fn export_xlsx(
    env: &Env,
    id: i64,
    path: &std::path::Path,
    locale: &str,
) -> anyhow::Result<Option<(Event, usize)>> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut conn = env.store.conn().await?;
    let Some(e) = store_events::get(&mut conn, id).await? else {
        return Ok(None);
    };
    let entries = store_events::entries(&mut conn, id).await?;
    drop(conn);
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let bold = Format::new().set_bold();
    let headers = t!("event.export_headers", locale = locale);
    for (col, h) in headers.split(',').enumerate() {
        sheet.write_string_with_format(0, col as u16, h.trim(), &bold)?;
    }
    let (inn, wait) = (
        t!("event.export_in", locale = locale),
        t!("event.export_waiting", locale = locale),
    );
    let fmt = t!("event.export_time_format", locale = locale);
    for (i, x) in entries.iter().enumerate() {
        let row = (i + 1) as u32;
        sheet.write_number(row, 0, (i + 1) as f64)?;
        let text = crate::export::write_text;
        text(sheet, row, 1, &x.name, None)?;
        text(sheet, row, 2, x.org.as_deref().unwrap_or(""), None)?;
        sheet.write_string(row, 3, if x.waiting { &*wait } else { &*inn })?;
        text(sheet, row, 4, x.note.as_deref().unwrap_or(""), None)?;
        let at = store::from_ms(x.at).with_timezone(&env.tz);
        sheet.write_string(row, 5, at.format(&fmt).to_string())?;
    }
    sheet.set_column_width(1, 14)?;
    sheet.set_column_width(2, 16)?;
    sheet.set_column_width(4, 20)?;
    sheet.set_column_width(5, 18)?;
    book.save(path)?;
    Ok(Some((e, entries.len())))
}
