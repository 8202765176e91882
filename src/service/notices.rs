//! Notices (通知): compose and preview, confirm, deliver one copy per group,
//! count acknowledgements per person and per org, chase the rest; scheduled
//! notices; the jobs that remind before and sum up at the deadline.
//!
//! Every copy is an outbox row written in the transaction that confirms the
//! notice (or in the `notice.send` job's transaction for a scheduled one), so
//! each group gets it exactly once however the process is interrupted.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::schedule;
use super::{Ctx, Result, clip};
use super::{Env, Out, Scheduled};
use crate::chat::{Attachment, Button, Outgoing};
use crate::command::notices::NoticeArgs;
use crate::command::scope::Target as Typed;
use crate::domain::{OrgKind, Platform, Role};
use crate::service::orgs::{OrgMatch, core_name, resolve};
use crate::store::jobs::Job;
use crate::store::notices::{self as store_notices, Notice, Target};
use crate::store::orgs::{self as store_orgs, Org};
use crate::store::{self, Conn, audit, chats, pending, people};
use rust_i18n::t;

/// How long a preview waits for 确认.
const CONFIRM_TTL_MS: i64 = 30 * 60 * 1000;
/// Pending-question kind: a notice preview waiting for 确认 / 取消.
pub const PENDING_KIND: &str = "notice_confirm";
/// The automatic reminder goes out this long before the deadline.
pub const REMIND_BEFORE_HOURS: i64 = 2;
/// Acknowledgements in one group are gathered into one line per window.
const ACK_WINDOW_SECS: i64 = 30;
/// A notice's title in the gathered ack line, in characters at most.
const TITLE_IN_LINE: usize = 20;
/// Names listed in one line before "…".
const LIST_MAX: usize = 20;

/// Who a notice is for, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Audience {
    All,
    Own,
    Kind(OrgKind),
    Org(Org),
}

/// The draft kept between the preview and 确认.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Draft {
    title: String,
    body: String,
    label: String,
    deadline_at: Option<i64>,
    at: Option<i64>,
    orgs: Vec<i64>,
    chats: Vec<i64>,
    /// The photo/document the command carried.
    #[serde(default)]
    attachments: Vec<Attachment>,
}

/// The targets the first word of the head named. `None` when one is an
/// org name that names no org exactly: then the whole head is the title
/// and the notice goes to everyone.
fn resolve_targets(
    targets: &[Typed],
    all: &[Org],
    aliases: &[(String, i64)],
) -> Option<Vec<Audience>> {
    targets
        .iter()
        .map(|t| match t {
            Typed::County => Some(Audience::All),
            Typed::Own => Some(Audience::Own),
            Typed::Kind(k) => Some(Audience::Kind(*k)),
            // Only a name that is an org's own name or alias counts: the
            // first word of a title (`实验 报告`) must not become a target
            // by a partial match.
            Typed::Org(r) => match resolve(r.as_str(), all, aliases) {
                OrgMatch::One(o) if names_exactly(r.as_str(), &o, aliases) => {
                    Some(Audience::Org(o))
                }
                _ => None,
            },
        })
        .collect()
}

/// `part` is `org`'s full or short name (give or take 团委-style suffixes) or
/// one of its aliases.
fn names_exactly(part: &str, org: &Org, aliases: &[(String, i64)]) -> bool {
    let core = core_name(part);
    core == core_name(&org.full_name)
        || core == core_name(&org.short_name)
        || aliases
            .iter()
            .any(|(a, id)| *id == org.id && (a == part || *a == core))
}

fn local(env: &Env, ms: i64) -> NaiveDateTime {
    store::from_ms(ms).with_timezone(&env.tz).naive_local()
}

/// A stored time shown in the reply language, e.g. `3月5日 18:00`.
pub fn show_time(env: &Env, locale: &str, ms: i64) -> String {
    let fmt = t!("notice.time_format", locale = locale);
    local(env, ms).format(&fmt).to_string()
}

fn joined(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(LIST_MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join("、");
    if names.len() > LIST_MAX {
        s.push_str(&format!(" …（{}）", names.len()));
    }
    s
}

fn may_send(ctx: &Ctx<'_>) -> bool {
    ctx.person.role.at_least(Role::Cadre)
}

/// `/notice …`: resolve targets, check rights, and show a preview to confirm.
#[tracing::instrument(skip_all, fields(person = ctx.person.id))]
pub async fn compose(ctx: &mut Ctx<'_>, args: &NoticeArgs) -> Result {
    if !may_send(ctx) {
        let text = t!("notice.no_permission", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let all = store_orgs::all(ctx.tx).await?;
    let aliases = store_orgs::aliases(ctx.tx).await?;
    let lead = args
        .lead
        .as_ref()
        .and_then(|l| resolve_targets(&l.targets, &all, &aliases).map(|t| (t, l.title.clone())));
    let (targets, title) = lead.unwrap_or_else(|| (vec![Audience::All], args.head.clone()));
    // A cadre may only notice their own org's groups.
    if !ctx.is_staff() {
        let own_only = targets.iter().all(|t| match t {
            Audience::Own => true,
            Audience::Org(o) => Some(o.id) == ctx.person.org_id,
            _ => false,
        });
        if !own_only {
            let text = t!("notice.no_permission", locale = ctx.locale);
            ctx.reply(text);
            return Ok(());
        }
    }
    let deadline_at = match &args.deadline {
        Some(when) => match super::future_time(ctx, when, "notice.deadline_past") {
            Some(ms) => Some(ms),
            None => return Ok(()),
        },
        None => None,
    };
    let at = match &args.at {
        Some(when) => match super::future_time(ctx, when, "notice.at_past") {
            Some(ms) => Some(ms),
            None => return Ok(()),
        },
        None => None,
    };
    if let (Some(at), Some(dl)) = (at, deadline_at)
        && dl <= at
    {
        let text = t!("notice.deadline_before_send", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    // Which orgs must answer, which groups receive it.
    let mut org_ids: BTreeSet<i64> = BTreeSet::new();
    let mut everyone = false;
    let mut labels = Vec::new();
    for t in &targets {
        match t {
            Audience::All => {
                everyone = true;
                labels.push(t!("notice.target_all", locale = ctx.locale).into_owned());
                org_ids.extend(
                    all.iter()
                        .filter(|o| o.kind != OrgKind::Committee)
                        .map(|o| o.id),
                );
            }
            Audience::Own => match ctx
                .person
                .org_id
                .and_then(|id| all.iter().find(|o| o.id == id))
            {
                Some(o) => {
                    labels.push(o.display().to_string());
                    org_ids.insert(o.id);
                }
                None => {
                    let person = ctx.person.clone();
                    let text =
                        super::members::not_member_text(&mut *ctx.tx, &person, ctx.locale).await?;
                    ctx.reply(text);
                    return Ok(());
                }
            },
            Audience::Kind(k) => {
                labels.push(k.label().to_string());
                org_ids.extend(all.iter().filter(|o| o.kind == *k).map(|o| o.id));
            }
            Audience::Org(o) => {
                labels.push(o.display().to_string());
                org_ids.insert(o.id);
            }
        }
    }
    let groups: Vec<_> = chats::bound_groups(ctx.tx)
        .await?
        .into_iter()
        .filter(|c| {
            (everyone && c.committee_wide) || c.org_id.is_some_and(|id| org_ids.contains(&id))
        })
        .collect();
    if groups.is_empty() {
        let text = t!("notice.no_groups", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let label = labels.join("、");
    let max = groups
        .iter()
        .map(|c| ctx.env.capabilities(c.platform).max_text_chars)
        .min()
        .unwrap_or(4000);
    let copy_len = copy_text(
        ctx.env,
        ctx.locale,
        Some(0),
        &title,
        &args.body,
        deadline_at,
    )
    .chars()
    .count();
    if copy_len > max {
        let text = t!(
            "notice.too_long",
            locale = ctx.locale,
            n = copy_len,
            max = max
        );
        ctx.reply(text);
        return Ok(());
    }
    let draft = Draft {
        title: clip(&title, 60),
        body: args.body.clone(),
        label: label.clone(),
        deadline_at,
        at,
        orgs: org_ids.iter().copied().collect(),
        chats: groups.iter().map(|c| c.id).collect(),
        attachments: ctx.msg.attachments.clone(),
    };
    let payload = serde_json::to_string(&draft).unwrap_or_default();
    pending::set(
        ctx.tx,
        ctx.msg.platform,
        &ctx.msg.sender_id,
        &ctx.msg.chat_id,
        PENDING_KIND,
        &payload,
        ctx.now_ms() + CONFIRM_TTL_MS,
    )
    .await?;
    let mut text = match at {
        Some(at) => t!(
            "notice.preview_at",
            locale = ctx.locale,
            at = show_time(ctx.env, ctx.locale, at),
            n = groups.len(),
            label = label.as_str()
        ),
        None => t!(
            "notice.preview",
            locale = ctx.locale,
            n = groups.len(),
            label = label.as_str()
        ),
    }
    .into_owned();
    let covered: BTreeSet<i64> = groups.iter().filter_map(|c| c.org_id).collect();
    let missing = org_ids.iter().filter(|id| !covered.contains(id)).count();
    if !draft.attachments.is_empty() {
        text.push('\n');
        text.push_str(&t!(
            "notice.preview_attachments",
            locale = ctx.locale,
            n = draft.attachments.len()
        ));
    }
    if missing > 0 && !everyone {
        text.push('\n');
        text.push_str(&t!(
            "notice.preview_unbound",
            locale = ctx.locale,
            n = missing
        ));
    }
    text.push_str("\n\n");
    text.push_str(&copy_text(
        ctx.env,
        ctx.locale,
        None,
        &draft.title,
        &draft.body,
        deadline_at,
    ));
    text.push_str("\n\n");
    text.push_str(&t!("notice.confirm_hint", locale = ctx.locale));
    let mut m = Outgoing::new(ctx.msg.platform, ctx.msg.chat_id.clone(), text);
    m.reply_to = ctx.msg.message_id.clone();
    if ctx.env.capabilities(ctx.msg.platform).buttons {
        m.buttons = vec![vec![
            Button {
                label: t!("notice.button_confirm", locale = ctx.locale).into_owned(),
                data: "确认".into(),
            },
            Button {
                label: t!("notice.button_cancel", locale = ctx.locale).into_owned(),
                data: "取消".into(),
            },
        ]];
    }
    ctx.out.send(m);
    Ok(())
}

/// The text of one delivered copy (`id` is `None` in the preview).
fn copy_text(
    env: &Env,
    locale: &str,
    id: Option<i64>,
    title: &str,
    body: &str,
    deadline_at: Option<i64>,
) -> String {
    let mut text = match id {
        Some(id) => t!("notice.copy_title", locale = locale, id = id, title = title),
        None => t!("notice.copy_title_preview", locale = locale, title = title),
    }
    .into_owned();
    if !body.is_empty() {
        text.push('\n');
        text.push_str(body);
    }
    text.push('\n');
    text.push_str(&match deadline_at {
        Some(d) => t!(
            "notice.copy_footer_deadline",
            locale = locale,
            at = show_time(env, locale, d)
        ),
        None => t!("notice.copy_footer", locale = locale),
    });
    text
}

/// One copy per group, with a 收到 button where the platform has buttons.
fn copies(env: &Env, locale: &str, n: &Notice, targets: &[Target]) -> Vec<Outgoing> {
    let text = copy_text(env, locale, Some(n.id), &n.title, &n.body, n.deadline_at);
    targets
        .iter()
        .map(|t| {
            let mut m = Outgoing::new(t.platform, t.chat_id.clone(), text.clone());
            m.attachments = n.attachments.iter().cloned().map(Into::into).collect();
            if env.capabilities(t.platform).buttons {
                m.buttons = vec![vec![Button {
                    label: t!("notice.button_ack", locale = locale).into_owned(),
                    data: format!("/ack {}", n.id),
                }]];
            }
            m
        })
        .collect()
}

/// Queue a message that carries notice `id` (a copy, a reminder) and
/// remember its outbox row, so a reply to it acknowledges this notice.
async fn post(conn: &mut Conn, out: &mut Out, id: i64, m: &Outgoing, now_ms: i64) -> Result<()> {
    let row = out.enqueue(&mut *conn, m, now_ms, None, now_ms).await?;
    store_notices::add_post(conn, id, row).await
}

fn job_payload(id: i64) -> serde_json::Value {
    json!({ "notice": id })
}

/// The reminder and summary jobs of a sent notice with a deadline.
async fn schedule_deadline_jobs(conn: &mut Conn, n: &Notice, now: DateTime<Utc>) -> Result<()> {
    let Some(deadline) = n.deadline_at.map(store::from_ms) else {
        return Ok(());
    };
    let remind_at = deadline - Duration::hours(REMIND_BEFORE_HOURS);
    if remind_at > now {
        schedule::schedule(conn, "notice.remind", &job_payload(n.id), remind_at, now).await?;
    }
    schedule::schedule(conn, "notice.summary", &job_payload(n.id), deadline, now).await?;
    Ok(())
}

/// 确认: act on this person's open preview in this chat.
pub async fn confirm(ctx: &mut Ctx<'_>) -> Result {
    let (platform, user, chat) = (
        ctx.msg.platform,
        ctx.msg.sender_id.clone(),
        ctx.msg.chat_id.clone(),
    );
    let Some(p) = pending::get(ctx.tx, platform, &user, &chat, PENDING_KIND, ctx.now_ms()).await?
    else {
        return nothing_pending(ctx);
    };
    pending::clear(ctx.tx, platform, &user, &chat).await?;
    let Ok(draft) = serde_json::from_str::<Draft>(&p.payload) else {
        return nothing_pending(ctx);
    };
    let now_ms = ctx.now_ms();
    let scheduled = draft.at.is_some_and(|at| at > now_ms);
    let mut n = Notice {
        id: 0,
        title: draft.title.clone(),
        body: draft.body.clone(),
        target_label: draft.label.clone(),
        sender_person_id: ctx.person.id,
        sender_platform: platform,
        sender_chat_id: chat.clone(),
        deadline_at: draft.deadline_at,
        scheduled_at: draft.at,
        status: if scheduled { "scheduled" } else { "sent" }.into(),
        sent_at: (!scheduled).then_some(now_ms),
        attachments: draft.attachments.clone(),
    };
    n.id = store_notices::create(ctx.tx, &n, &draft.orgs, &draft.chats, now_ms).await?;
    ctx.audit(
        if scheduled {
            "notice.schedule"
        } else {
            "notice.send"
        },
        "notice",
        n.id,
        json!({"title": n.title, "label": n.target_label, "groups": draft.chats.len(),
               "orgs": draft.orgs.len(), "deadline": n.deadline_at, "at": n.scheduled_at}),
    )
    .await?;
    if let (true, Some(at)) = (scheduled, draft.at) {
        let now = ctx.now;
        schedule::schedule(
            ctx.tx,
            "notice.send",
            &job_payload(n.id),
            store::from_ms(at),
            now,
        )
        .await?;
        let text = t!(
            "notice.scheduled",
            locale = ctx.locale,
            id = n.id,
            at = show_time(ctx.env, ctx.locale, at),
            n = draft.chats.len()
        );
        ctx.reply(text);
        return Ok(());
    }
    let targets = store_notices::targets(ctx.tx, n.id).await?;
    let locale = ctx.env.default_locale();
    let now_ms = ctx.now_ms();
    for m in copies(ctx.env, locale, &n, &targets) {
        post(ctx.tx, &mut ctx.out, n.id, &m, now_ms).await?;
    }
    let now = ctx.now;
    schedule_deadline_jobs(ctx.tx, &n, now).await?;
    let text = t!(
        "notice.sent",
        locale = ctx.locale,
        id = n.id,
        n = targets.len()
    );
    ctx.reply(text);
    Ok(())
}

/// `确认`/`取消` with nothing to act on: a hint in private, silence in a group
/// (people say 确认 to each other).
fn nothing_pending(ctx: &mut Ctx<'_>) -> Result {
    if !ctx.in_group() {
        let text = t!("common.nothing_pending", locale = ctx.locale);
        ctx.reply(text);
    }
    Ok(())
}

/// 取消: drop this person's open preview.
pub async fn cancel(ctx: &mut Ctx<'_>) -> Result {
    let (platform, user, chat) = (
        ctx.msg.platform,
        ctx.msg.sender_id.clone(),
        ctx.msg.chat_id.clone(),
    );
    if pending::get(ctx.tx, platform, &user, &chat, PENDING_KIND, ctx.now_ms())
        .await?
        .is_none()
    {
        return nothing_pending(ctx);
    }
    pending::clear(ctx.tx, platform, &user, &chat).await?;
    let text = t!("notice.cancelled_draft", locale = ctx.locale);
    ctx.reply(text);
    Ok(())
}

/// 收到 / 已阅 / `1` / the 收到 button. No reply per ack: the group gets one
/// gathered line per window.
pub async fn ack(ctx: &mut Ctx<'_>, id: Option<i64>, weak: bool) -> Result {
    if !ctx.in_group() {
        if !weak {
            let text = t!("notice.ack_in_group", locale = ctx.locale);
            ctx.reply(text);
            return Ok(());
        }
        let hint = t!("common.private_hint", locale = ctx.locale);
        ctx.reply(hint);
        return Ok(());
    }
    let chat = ctx.chat.id;
    let now_ms = ctx.now_ms();
    // A reply to one of our notice messages is about that notice.
    let replied = match &ctx.msg.reply_to {
        Some(r) if id.is_none() => {
            store_notices::by_post(ctx.tx, ctx.msg.platform, &ctx.msg.chat_id, &r.message_id)
                .await?
        }
        _ => None,
    };
    let notice = match id.or(replied) {
        Some(id) if store_notices::sent_to(ctx.tx, id, chat).await? => {
            store_notices::get(ctx.tx, id).await?
        }
        Some(_) => None,
        // A plain ack: the newest open notice the sender's org has not acked.
        None => {
            let (person, org) = (ctx.person.id, ctx.person.org_id);
            store_notices::open_for_ack(ctx.tx, chat, now_ms, person, org).await?
        }
    };
    let Some(notice) = notice else {
        // No open notice here: `1`/收到 is just chatter.
        return Ok(());
    };
    // An ack counts for the acker's org: a member's. Someone who is not (yet)
    // a member of any org acks as a person only, for no org.
    let org = ctx.person.org_id;
    if !store_notices::ack(ctx.tx, notice.id, ctx.person.id, org, Some(chat), now_ms).await? {
        return Ok(());
    }
    ctx.audit(
        "notice.ack",
        "notice",
        notice.id,
        json!({"org": org, "chat": chat}),
    )
    .await?;
    let names = store_notices::ackers_in_chat(ctx.tx, notice.id, chat).await?;
    let text = t!(
        "notice.acks_line",
        locale = ctx.locale,
        id = notice.id,
        title = clip(&notice.title, TITLE_IN_LINE),
        n = names.len(),
        names = joined(&names)
    );
    let key = format!("notice-ack:{}:{}", notice.id, chat);
    let msg = Outgoing::new(ctx.msg.platform, ctx.msg.chat_id.clone(), text);
    let at = ctx.now + Duration::seconds(ACK_WINDOW_SECS);
    ctx.out.coalesce(ctx.tx, &key, msg, at).await
}

/// Load a notice the acting person may manage (staff, or its sender), or
/// reply why not.
async fn manageable(ctx: &mut Ctx<'_>, id: i64) -> Result<Option<Notice>> {
    let Some(n) = store_notices::get(ctx.tx, id).await? else {
        let text = t!("notice.not_found", locale = ctx.locale, id = id);
        ctx.reply(text);
        return Ok(None);
    };
    if !ctx.is_staff() && n.sender_person_id != ctx.person.id {
        let text = t!("notice.not_yours", locale = ctx.locale, id = id);
        ctx.reply(text);
        return Ok(None);
    }
    Ok(Some(n))
}

/// Acknowledged and missing orgs of a notice.
pub struct Tally {
    /// Orgs that acknowledged, with how many of their people did.
    pub acked: Vec<(Org, i64)>,
    pub missing: Vec<Org>,
    /// People who acknowledged, all orgs together.
    pub people: i64,
}

/// Who acknowledged notice `n` and which expected orgs have not.
pub async fn tally(conn: &mut Conn, n: &Notice) -> Result<Tally> {
    let expected = store_notices::orgs(conn, n.id).await?;
    let by_org = store_notices::acks_by_org(conn, n.id).await?;
    let all: HashMap<i64, Org> = store_orgs::all(conn)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let mut t = Tally {
        acked: Vec::new(),
        missing: Vec::new(),
        people: by_org.values().sum(),
    };
    for id in expected {
        let Some(org) = all.get(&id) else { continue };
        match by_org.get(&Some(id)) {
            Some(k) => t.acked.push((org.clone(), *k)),
            None => t.missing.push(org.clone()),
        }
    }
    Ok(t)
}

fn status_text(env: &Env, locale: &str, n: &Notice, t: &Tally) -> String {
    let total = t.acked.len() + t.missing.len();
    let mut text = t!(
        "notice.status_title",
        locale = locale,
        id = n.id,
        title = n.title.as_str(),
        acked = t.acked.len(),
        total = total,
        people = t.people
    )
    .into_owned();
    if let Some(d) = n.deadline_at {
        text.push('\n');
        text.push_str(&t!(
            "notice.status_deadline",
            locale = locale,
            at = show_time(env, locale, d)
        ));
    }
    if !t.acked.is_empty() {
        let names: Vec<String> = t
            .acked
            .iter()
            .map(|(o, k)| format!("{}({k})", o.display()))
            .collect();
        text.push('\n');
        text.push_str(&t!(
            "notice.status_acked",
            locale = locale,
            list = joined(&names)
        ));
    }
    if t.missing.is_empty() {
        text.push('\n');
        text.push_str(&t!("notice.status_all_acked", locale = locale));
    } else {
        let names: Vec<String> = t.missing.iter().map(|o| o.display().to_string()).collect();
        text.push('\n');
        text.push_str(&t!(
            "notice.status_missing",
            locale = locale,
            list = joined(&names),
            id = n.id
        ));
    }
    text
}

/// `/notice status N` (通知情况 N).
pub async fn status(ctx: &mut Ctx<'_>, id: i64) -> Result {
    let Some(n) = manageable(ctx, id).await? else {
        return Ok(());
    };
    if n.status != "sent" {
        let text = t!("notice.not_sent_yet", locale = ctx.locale, id = id);
        ctx.reply(text);
        return Ok(());
    }
    let t = tally(ctx.tx, &n).await?;
    let text = status_text(ctx.env, ctx.locale, &n, &t);
    ctx.reply(text);
    Ok(())
}

/// Reminders for the groups of orgs that have not acknowledged: in an org's
/// own group its cadres are @-mentioned; in a committee-wide group the
/// missing orgs are listed and their cadres mentioned. Returns the messages.
async fn reminders(
    conn: &mut Conn,
    env: &Env,
    locale: &str,
    n: &Notice,
    t: &Tally,
) -> Result<Vec<Outgoing>> {
    let missing: HashMap<i64, &Org> = t.missing.iter().map(|o| (o.id, o)).collect();
    let mut cadres: HashMap<i64, Vec<(Platform, String)>> = HashMap::new();
    for id in missing.keys() {
        let list = people::of_org(conn, *id)
            .await?
            .into_iter()
            .filter(|p| p.role == Role::Cadre)
            .map(|p| (p.platform, p.user_id))
            .collect();
        cadres.insert(*id, list);
    }
    let deadline = match n.deadline_at {
        Some(d) => t!(
            "notice.remind_deadline",
            locale = locale,
            at = show_time(env, locale, d)
        )
        .into_owned(),
        None => String::new(),
    };
    let mut out = Vec::new();
    for target in store_notices::targets(conn, n.id).await? {
        let (orgs, text): (Vec<i64>, String) = match target.org_id {
            Some(id) if missing.contains_key(&id) => (
                vec![id],
                t!(
                    "notice.remind_group",
                    locale = locale,
                    id = n.id,
                    title = n.title.as_str(),
                    deadline = deadline.as_str()
                )
                .into_owned(),
            ),
            None if target.committee_wide => {
                let names: Vec<String> =
                    t.missing.iter().map(|o| o.display().to_string()).collect();
                (
                    t.missing.iter().map(|o| o.id).collect(),
                    t!(
                        "notice.remind_county",
                        locale = locale,
                        id = n.id,
                        title = n.title.as_str(),
                        list = joined(&names),
                        deadline = deadline.as_str()
                    )
                    .into_owned(),
                )
            }
            _ => continue,
        };
        let mut m = Outgoing::new(target.platform, target.chat_id.clone(), text);
        m.mention_users = orgs
            .iter()
            .flat_map(|id| cadres.get(id).into_iter().flatten())
            .filter(|(p, _)| *p == target.platform)
            .map(|(_, u)| u.clone())
            .take(LIST_MAX)
            .collect();
        if env.capabilities(target.platform).buttons {
            m.buttons = vec![vec![Button {
                label: t!("notice.button_ack", locale = locale).into_owned(),
                data: format!("/ack {}", n.id),
            }]];
        }
        out.push(m);
    }
    Ok(out)
}

/// What a round of reminders did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reminded {
    /// The notice has not gone out (scheduled or cancelled).
    NotSent,
    /// Every expected org has acknowledged: nothing to send.
    NoneMissing,
    /// Reminders queued in `groups` groups for `orgs` orgs.
    Sent { groups: usize, orgs: usize },
}

/// Chase the orgs that have not acknowledged notice `n`: a reminder to each
/// of their groups, written to the outbox in `conn`'s transaction, with an
/// audit row for `actor`. What `/remind` does; the dashboard's remind button
/// calls it too (`via` says where it came from). The caller checks who may.
pub async fn send_reminders(
    conn: &mut Conn,
    out: &mut Out,
    env: &Env,
    n: &Notice,
    now_ms: i64,
    actor: (Platform, &str),
    via: &str,
) -> Result<Reminded> {
    if n.status != "sent" {
        return Ok(Reminded::NotSent);
    }
    let t = tally(conn, n).await?;
    if t.missing.is_empty() {
        return Ok(Reminded::NoneMissing);
    }
    let locale = env.default_locale();
    let msgs = reminders(conn, env, locale, n, &t).await?;
    let groups = msgs.len();
    for m in msgs {
        post(conn, out, n.id, &m, now_ms).await?;
    }
    audit::record(
        conn,
        &audit::Entry {
            at_ms: now_ms,
            platform: actor.0,
            actor: actor.1,
            action: "notice.remind",
            entity: "notice",
            entity_id: Some(n.id.to_string()),
            detail: json!({"missing": t.missing.len(), "groups": groups, "via": via}),
        },
    )
    .await?;
    Ok(Reminded::Sent {
        groups,
        orgs: t.missing.len(),
    })
}

/// `/remind N` (催办 N).
pub async fn remind(ctx: &mut Ctx<'_>, id: i64) -> Result {
    let Some(n) = manageable(ctx, id).await? else {
        return Ok(());
    };
    let msg = ctx.msg;
    let actor = (msg.platform, msg.sender_id.as_str());
    let now_ms = ctx.now_ms();
    let text =
        match send_reminders(ctx.tx, &mut ctx.out, ctx.env, &n, now_ms, actor, "chat").await? {
            Reminded::NotSent => t!("notice.not_sent_yet", locale = ctx.locale, id = id),
            Reminded::NoneMissing => t!("notice.remind_none", locale = ctx.locale, id = id),
            Reminded::Sent { groups, orgs } => t!(
                "notice.reminded",
                locale = ctx.locale,
                groups = groups,
                orgs = orgs
            ),
        };
    ctx.reply(text);
    Ok(())
}

/// `/notices` (通知列表): scheduled notices still to go out.
pub async fn list(ctx: &mut Ctx<'_>) -> Result {
    if !may_send(ctx) {
        let text = t!("notice.no_permission", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let only = (!ctx.is_staff()).then_some(ctx.person.id);
    let list = store_notices::scheduled(ctx.tx, only).await?;
    if list.is_empty() {
        let text = t!("notice.list_empty", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let mut text = t!("notice.list_title", locale = ctx.locale, n = list.len()).into_owned();
    for n in &list {
        let at = n
            .scheduled_at
            .map(|a| show_time(ctx.env, ctx.locale, a))
            .unwrap_or_default();
        text.push('\n');
        text.push_str(&t!(
            "notice.list_line",
            locale = ctx.locale,
            id = n.id,
            at = at,
            title = n.title.as_str(),
            label = n.target_label.as_str()
        ));
    }
    text.push('\n');
    text.push_str(&t!("notice.list_footer", locale = ctx.locale));
    ctx.reply(text);
    Ok(())
}

/// `/notice cancel N` (取消通知 N): a scheduled notice that has not gone out.
pub async fn cancel_scheduled(ctx: &mut Ctx<'_>, id: i64) -> Result {
    let Some(n) = manageable(ctx, id).await? else {
        return Ok(());
    };
    if n.status != "scheduled" {
        let text = t!("notice.cannot_cancel", locale = ctx.locale, id = id);
        ctx.reply(text);
        return Ok(());
    }
    store_notices::set_status(ctx.tx, id, "cancelled", None).await?;
    let now_ms = ctx.now_ms();
    store::jobs::cancel(ctx.tx, "notice.send", &job_payload(id).to_string(), now_ms).await?;
    ctx.audit("notice.cancel", "notice", id, json!({"title": n.title}))
        .await?;
    let text = t!("notice.cancelled", locale = ctx.locale, id = id);
    ctx.reply(text);
    Ok(())
}

#[derive(Deserialize)]
struct NoticeJob {
    notice: i64,
}

async fn job_audit(
    ctx: &mut Ctx<'_, Scheduled>,
    action: &str,
    n: &Notice,
    detail: serde_json::Value,
) -> Result {
    audit::record(
        ctx.tx,
        &audit::Entry {
            at_ms: ctx.now_ms(),
            platform: n.sender_platform,
            actor: "scheduler",
            action,
            entity: "notice",
            entity_id: Some(n.id.to_string()),
            detail,
        },
    )
    .await
}

/// Job `notice.send`: a scheduled notice is due. Cancelled ones are skipped.
pub async fn job_send(ctx: &mut Ctx<'_, Scheduled>, job: &Job) -> Result {
    let p: NoticeJob = schedule::payload(job)?;
    let Some(mut n) = store_notices::get(ctx.tx, p.notice).await? else {
        return Ok(());
    };
    if n.status != "scheduled" {
        return Ok(());
    }
    let now_ms = ctx.now_ms();
    store_notices::set_status(ctx.tx, n.id, "sent", Some(now_ms)).await?;
    n.status = "sent".into();
    n.sent_at = Some(now_ms);
    let targets = store_notices::targets(ctx.tx, n.id).await?;
    let locale = ctx.locale;
    let now_ms = ctx.now_ms();
    for m in copies(ctx.env, locale, &n, &targets) {
        post(ctx.tx, &mut ctx.out, n.id, &m, now_ms).await?;
    }
    let now = ctx.now;
    schedule_deadline_jobs(ctx.tx, &n, now).await?;
    job_audit(
        ctx,
        "notice.send",
        &n,
        json!({"groups": targets.len(), "scheduled": true}),
    )
    .await?;
    let text = t!("notice.sent", locale = locale, id = n.id, n = targets.len());
    ctx.out.send(Outgoing::new(
        n.sender_platform,
        n.sender_chat_id.clone(),
        text,
    ));
    Ok(())
}

/// Job `notice.remind`: before the deadline, chase the orgs still silent.
pub async fn job_remind(ctx: &mut Ctx<'_, Scheduled>, job: &Job) -> Result {
    let p: NoticeJob = schedule::payload(job)?;
    let Some(n) = store_notices::get(ctx.tx, p.notice).await? else {
        return Ok(());
    };
    if n.status != "sent" {
        return Ok(());
    }
    let t = tally(ctx.tx, &n).await?;
    if t.missing.is_empty() {
        return Ok(());
    }
    let locale = ctx.locale;
    let msgs = reminders(ctx.tx, ctx.env, locale, &n, &t).await?;
    let groups = msgs.len();
    let now_ms = ctx.now_ms();
    for m in msgs {
        post(ctx.tx, &mut ctx.out, n.id, &m, now_ms).await?;
    }
    job_audit(
        ctx,
        "notice.remind",
        &n,
        json!({"missing": t.missing.len(), "groups": groups, "auto": true}),
    )
    .await
}

/// Job `notice.summary`: at the deadline, tell the sender how it went.
pub async fn job_summary(ctx: &mut Ctx<'_, Scheduled>, job: &Job) -> Result {
    let p: NoticeJob = schedule::payload(job)?;
    let Some(n) = store_notices::get(ctx.tx, p.notice).await? else {
        return Ok(());
    };
    if n.status != "sent" {
        return Ok(());
    }
    let t = tally(ctx.tx, &n).await?;
    let locale = ctx.locale;
    let mut text = t!("notice.summary_head", locale = locale, id = n.id).into_owned();
    text.push('\n');
    text.push_str(&status_text(ctx.env, locale, &n, &t));
    ctx.out.send(Outgoing::new(
        n.sender_platform,
        n.sender_chat_id.clone(),
        text,
    ));
    Ok(())
}
