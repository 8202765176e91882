//! Membership by approval: `我是 ORG` from someone not in the org is a join
//! request; a cadre of that org (or staff, for an org without cadres, or any
//! org) decides it with `同意` / `拒绝` (buttons where the platform has them,
//! words everywhere). Fast paths that need no waiting: a one-time join code
//! from `/invite` (`我是 县一中 482193`) and the roster staff import, which
//! lets a listed QQ number or Telegram username in on sight. `/members`
//! lists an org's people and pending requests; `/remove` takes someone out.
//!
//! Who is asked, in this order: the org's cadres privately (only those who
//! have a private chat with the bot: Telegram lets a bot write only to people
//! who started one, QQ only to friends); else the org's bound groups; else
//! the county group. An org without cadres is decided by staff: privately,
//! else in the county group.
//!
//! A pending person is not a member: `people.org_id` stays as it was (none,
//! or the org they are leaving), so every rule that asks "which org does
//! this person act for" already answers for them; [`not_member_text`] tells
//! them in one line why they can't yet. A cadre or staff member typing `我是`
//! another org is asked to confirm first; nobody is moved or demoted
//! silently.

use chrono::Duration;
use serde_json::json;

use super::import_orgs::ImportError;
use super::orgs::{OrgMatch, lookup_one, resolve};
use super::{Ctx, Out, Result, clip};
use crate::chat::{Button, Capabilities, Outgoing};
use crate::command::members::RequestRef;
use crate::domain::{Platform, Role};
use crate::store::db::Db;
use crate::store::members::{self as db, JoinRequest, NewRequest, RosterRow};
use crate::store::orgs::{self, Org};
use crate::store::people::{self, Person};
use crate::store::{self, Conn, Store, audit, chats, pending};
use crate::table::{Table, cell};
use rust_i18n::t;

/// The kind of the pending question "really move to another org?".
pub const MOVE_KIND: &str = "iam_move";
/// How long that question stays answerable.
const MOVE_TTL_MS: i64 = 30 * 60 * 1000;
/// How long a join code works.
pub const CODE_TTL_HOURS: i64 = 24;
/// Digits of a join code.
const CODE_DIGITS: u32 = 6;
/// Wrong join codes a person may type per day before codes are refused.
const WRONG_CODES_PER_DAY: i64 = 5;
/// Names listed per role in `/members` before "… and N more".
const MEMBERS_SHOWN: usize = 60;
/// Pending requests listed at most in one reply.
const PENDING_SHOWN: usize = 30;
/// Most rows a roster file may have.
const MAX_ROSTER_ROWS: usize = 5000;
/// Longest name on a roster.
const MAX_ROSTER_NAME: usize = 32;

fn tr(locale: &str, key: &str) -> String {
    t!(key, locale = locale).into_owned()
}

// ------------------------------------------------------------ 我是 ORG

/// What `我是 ORG [CODE]` leads to, once the org is known. `confirmed`: the
/// person already said yes to leaving their org (see [`confirm_move`]).
pub async fn join(ctx: &mut Ctx<'_>, org: Org, code: Option<&str>, confirmed: bool) -> Result {
    let l = ctx.locale;
    if ctx.person.org_id == Some(org.id) {
        let text = t!("org.already", locale = l, org = org.display());
        ctx.reply(text);
        return Ok(());
    }
    let open = db::pending_of(&mut *ctx.tx, ctx.person.id).await?;
    if code.is_none()
        && !confirmed
        && let Some(r) = open.as_ref().filter(|r| r.org_id == org.id)
    {
        let text = t!(
            "members.still_pending",
            locale = l,
            org = org.full_name.as_str(),
            short = org.display(),
            id = r.id
        );
        ctx.reply(text);
        return Ok(());
    }
    // A code, checked before anything else so a wrong one changes nothing.
    let code_id = match code {
        Some(code) => match check_code(ctx, &org, code).await? {
            Some(id) => Some(id),
            None => return Ok(()),
        },
        None => None,
    };
    let roster = db::roster_by_account(
        &mut *ctx.tx,
        ctx.msg.platform,
        &ctx.msg.sender_id,
        ctx.msg.sender_username.as_deref(),
    )
    .await?
    .filter(|r| r.org_id == org.id);
    // Leaving an org where one holds rights is asked first.
    let holds_rights = ctx.is_staff() || ctx.person.role == Role::Cadre;
    if let (Some(from), false, true) = (ctx.person.org_id, confirmed, holds_rights) {
        return ask_move(ctx, from, &org, code).await;
    }
    if ctx.is_staff() {
        return place(ctx, &org, Role::Staff, "staff").await;
    }
    if let Some(id) = code_id {
        let (person, now_ms) = (ctx.person.id, ctx.now_ms());
        if !db::use_code(&mut *ctx.tx, id, person, now_ms).await? {
            let text = bad_code_text(l, &org);
            ctx.reply(text);
            return Ok(());
        }
        return place(ctx, &org, Role::Member, "code").await;
    }
    if let Some(r) = roster {
        return place(ctx, &org, r.role, "roster").await;
    }
    request(ctx, &org).await
}

/// Ask a cadre (or staff) whether to leave their org for `org`.
async fn ask_move(ctx: &mut Ctx<'_>, from: i64, org: &Org, code: Option<&str>) -> Result {
    let from_name = orgs::get(&mut *ctx.tx, from)
        .await?
        .map(|o| o.full_name)
        .unwrap_or_default();
    let payload = json!({"org": org.id, "code": code}).to_string();
    let expires = ctx.now_ms() + MOVE_TTL_MS;
    let (platform, user, chat) = (
        ctx.msg.platform,
        ctx.msg.sender_id.clone(),
        ctx.msg.chat_id.clone(),
    );
    pending::set(
        &mut *ctx.tx,
        platform,
        &user,
        &chat,
        MOVE_KIND,
        &payload,
        expires,
    )
    .await?;
    let key = if ctx.is_staff() {
        "members.move_confirm_staff"
    } else {
        "members.move_confirm"
    };
    let text = t!(
        key,
        locale = ctx.locale,
        from = from_name.as_str(),
        org = org.full_name.as_str(),
        role = ctx.role_label(ctx.person.role)
    );
    ctx.reply(text);
    Ok(())
}

/// `确认` to [`ask_move`]: go on as if `我是 ORG` had been typed again.
pub async fn confirm_move(ctx: &mut Ctx<'_>, payload: &str) -> Result {
    #[derive(serde::Deserialize)]
    struct P {
        org: i64,
        code: Option<String>,
    }
    let Ok(p) = serde_json::from_str::<P>(payload) else {
        return Ok(());
    };
    let Some(org) = orgs::get(&mut *ctx.tx, p.org).await? else {
        return Ok(());
    };
    join(ctx, org, p.code.as_deref(), true).await
}

/// Check a typed join code against the org's live codes (wrong guesses are
/// audited and limited). Returns the code's id, or `None` after replying.
async fn check_code(ctx: &mut Ctx<'_>, org: &Org, code: &str) -> Result<Option<i64>> {
    let l = ctx.locale;
    let since = ctx.now_ms() - Duration::hours(24).num_milliseconds();
    if db::wrong_codes_since(&mut *ctx.tx, ctx.person.id, since).await? >= WRONG_CODES_PER_DAY {
        let text = t!("members.code_locked", locale = l, short = org.display());
        ctx.reply(text);
        return Ok(None);
    }
    let now_ms = ctx.now_ms();
    let found = db::live_codes(&mut *ctx.tx, org.id, now_ms)
        .await?
        .into_iter()
        .find(|c| code_matches(&c.salt, &c.code_hash, code));
    match found {
        Some(c) => Ok(Some(c.id)),
        None => {
            ctx.audit(
                "join.code_wrong",
                "person",
                ctx.person.id,
                json!({"org": org.id}),
            )
            .await?;
            let text = bad_code_text(l, org);
            ctx.reply(text);
            Ok(None)
        }
    }
}

fn bad_code_text(locale: &str, org: &Org) -> String {
    t!(
        "members.bad_code",
        locale = locale,
        org = org.full_name.as_str(),
        short = org.display()
    )
    .into_owned()
}

/// The stored digest of a code: SHA-256 of the row's salt and the code.
fn code_digest(salt: &str, code: &str) -> String {
    super::web::digest(&format!("{salt}:{code}"))
}

fn code_matches(salt: &str, stored: &str, code: &str) -> bool {
    let d = code_digest(salt, code);
    d.len() == stored.len()
        && d.bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Put the acting person into `org` now (staff, a code, the roster): their
/// pending request, if any, is closed; audited as `join.<how>`.
async fn place(ctx: &mut Ctx<'_>, org: &Org, role: Role, how: &str) -> Result {
    let now_ms = ctx.now_ms();
    let before = (ctx.person.org_id, ctx.person.role);
    close_pending_of(ctx, ctx.person.id, Some(org.id), None).await?;
    people::set_org(&mut *ctx.tx, ctx.person.id, Some(org.id), now_ms).await?;
    if role != ctx.person.role {
        people::set_role(&mut *ctx.tx, ctx.person.id, role, now_ms).await?;
    }
    ctx.audit(
        &format!("join.{how}"),
        "person",
        ctx.person.id,
        json!({"org": org.id, "before": before.0, "role": role.as_str(),
               "role_before": before.1.as_str()}),
    )
    .await?;
    ctx.person.org_id = Some(org.id);
    ctx.person.role = role;
    let key = match how {
        "code" => "members.joined_code",
        "roster" => "members.joined_roster",
        _ => "org.joined",
    };
    let text = t!(
        key,
        locale = ctx.locale,
        name = ctx.person.display_name.as_str(),
        org = org.full_name.as_str(),
        role = ctx.role_label(role)
    );
    ctx.reply(text);
    Ok(())
}

/// Close `person`'s pending request: approved when they were placed in
/// its org (`by`: the staff member who did it, if it was not the person
/// themselves with a code or the roster), else withdrawn. Its cards are
/// updated.
async fn close_pending_of(
    ctx: &mut Ctx<'_>,
    person: i64,
    placed_in: Option<i64>,
    by: Option<String>,
) -> Result {
    let Some(r) = db::pending_of(&mut *ctx.tx, person).await? else {
        return Ok(());
    };
    let approved = placed_in == Some(r.org_id);
    let status = if approved { "approved" } else { "withdrawn" };
    let now_ms = ctx.now_ms();
    db::decide(&mut *ctx.tx, r.id, status, Some(ctx.person.id), now_ms).await?;
    ctx.audit(
        if approved {
            "join.approve"
        } else {
            "join.withdraw"
        },
        "join_request",
        r.id,
        json!({"org": r.org_id, "person": person, "placed_in": placed_in}),
    )
    .await?;
    let name = people::get(&mut *ctx.tx, person)
        .await?
        .map(|p| p.display_name)
        .unwrap_or_default();
    let org = org_name(&mut *ctx.tx, r.org_id).await?;
    let key = match (approved, &by) {
        (true, Some(_)) => "members.card_approved",
        (true, None) => "members.card_joined",
        (false, _) => "members.card_withdrawn",
    };
    let by = by.unwrap_or_default();
    let env = ctx.env;
    let locale = crate::i18n::pick(None, None, &env.settings.locale);
    let edits = card_edits(&mut *ctx.tx, &r, &|p| env.capabilities(p), locale, |l| {
        t!(
            key,
            locale = l,
            name = name.as_str(),
            org = org.as_str(),
            id = r.id,
            by = by.as_str()
        )
        .into_owned()
    })
    .await?;
    for m in edits {
        ctx.out.send(m);
    }
    Ok(())
}

/// Write a pending request (withdrawing the person's earlier one), ask the
/// approvers, and tell the person.
async fn request(ctx: &mut Ctx<'_>, org: &Org) -> Result {
    let now_ms = ctx.now_ms();
    close_pending_of(ctx, ctx.person.id, None, None).await?;
    let on_roster = db::roster_has_name(&mut *ctx.tx, org.id, &ctx.person.display_name).await?;
    let id = db::create(
        &mut *ctx.tx,
        &NewRequest {
            person_id: ctx.person.id,
            org_id: org.id,
            from_org_id: ctx.person.org_id,
            platform: ctx.msg.platform,
            chat_id: &ctx.msg.chat_id,
            username: ctx.msg.sender_username.as_deref(),
            on_roster,
        },
        now_ms,
    )
    .await?;
    let reached = ask_approvers(ctx, id, org, on_roster).await?;
    ctx.audit(
        "join.request",
        "join_request",
        id,
        json!({"org": org.id, "person": ctx.person.id, "from": ctx.person.org_id,
               "asked": reached.asked, "where": reached.place}),
    )
    .await?;
    let l = ctx.locale;
    let mut text = match ctx.person.org_id {
        Some(from) => {
            let from = org_name(&mut *ctx.tx, from).await?;
            t!(
                "members.requested_move",
                locale = l,
                org = org.full_name.as_str(),
                from = from.as_str(),
                role = ctx.role_label(ctx.person.role)
            )
            .into_owned()
        }
        None if reached.staff => t!(
            "members.requested_staff",
            locale = l,
            org = org.full_name.as_str()
        )
        .into_owned(),
        None => t!(
            "members.requested",
            locale = l,
            org = org.full_name.as_str()
        )
        .into_owned(),
    };
    if reached.asked == 0 {
        text.push_str(&t!("members.unreached", locale = l, org = org.display()));
    }
    ctx.reply(text);
    Ok(())
}

/// Where a request went.
struct Reached {
    /// Messages written (private cards or group posts).
    asked: usize,
    /// `private`, `org_group`, `county_group` or `nowhere`.
    place: &'static str,
    /// Staff decide (the org has no cadre).
    staff: bool,
}

/// Send the request's card to whoever decides it (see the module docs).
async fn ask_approvers(ctx: &mut Ctx<'_>, id: i64, org: &Org, on_roster: bool) -> Result<Reached> {
    let cadres: Vec<Person> = people::of_org(&mut *ctx.tx, org.id)
        .await?
        .into_iter()
        .filter(|p| p.role == Role::Cadre)
        .collect();
    let staff = cadres.is_empty();
    let deciders = if staff {
        people::with_role(&mut *ctx.tx, Role::Staff).await?
    } else {
        cadres.clone()
    };
    let from = match ctx.person.org_id {
        Some(o) => Some((org_name(&mut *ctx.tx, o).await?, ctx.person.role)),
        None => None,
    };
    let card = |locale: &str| {
        let mut text = t!(
            "members.card",
            locale = locale,
            name = ctx.person.display_name.as_str(),
            org = org.full_name.as_str(),
            id = id
        )
        .into_owned();
        if on_roster {
            text.push_str(&tr(locale, "members.card_on_roster"));
        }
        if let Some((from, role)) = &from {
            text.push_str(&t!(
                "members.card_from",
                locale = locale,
                org = from.as_str(),
                role = tr(locale, &format!("role.{}", role.as_str()))
            ));
        }
        text.push('\n');
        text.push_str(&t!("members.card_how", locale = locale, id = id));
        text
    };
    let default = ctx.env.settings.locale.clone();
    let now_ms = ctx.now_ms();
    let mut asked = 0;
    for p in &deciders {
        if p.id == ctx.person.id
            || !chats::private_open(&mut *ctx.tx, p.platform, &p.user_id).await?
        {
            continue;
        }
        let locale = crate::i18n::pick(p.locale.as_deref(), None, &default);
        let mut m = Outgoing::new(p.platform, p.user_id.clone(), card(locale));
        add_buttons(&mut m, ctx.env.capabilities(p.platform), locale, id);
        post(&mut *ctx.tx, &mut ctx.out, &m, id, now_ms).await?;
        asked += 1;
    }
    if asked > 0 {
        return Ok(Reached {
            asked,
            place: "private",
            staff,
        });
    }
    let (groups, place) = if staff {
        (chats::committee_groups(&mut *ctx.tx).await?, "county_group")
    } else {
        let own = chats::groups_of_org(&mut *ctx.tx, org.id).await?;
        if own.is_empty() {
            (chats::committee_groups(&mut *ctx.tx).await?, "county_group")
        } else {
            (own, "org_group")
        }
    };
    let locale = crate::i18n::pick(None, None, &default);
    for g in &groups {
        let mut m = Outgoing::new(g.platform, g.chat_id.clone(), card(locale));
        m.mention_users = deciders
            .iter()
            .filter(|p| p.platform == g.platform && !staff)
            .map(|p| p.user_id.clone())
            .collect();
        add_buttons(&mut m, ctx.env.capabilities(g.platform), locale, id);
        post(&mut *ctx.tx, &mut ctx.out, &m, id, now_ms).await?;
        asked += 1;
    }
    Ok(Reached {
        asked,
        place: if asked > 0 { place } else { "nowhere" },
        staff,
    })
}

fn add_buttons(m: &mut Outgoing, caps: Capabilities, locale: &str, id: i64) {
    if caps.buttons {
        m.buttons = vec![vec![
            Button {
                label: tr(locale, "members.button_approve"),
                data: format!("同意 {id}"),
            },
            Button {
                label: tr(locale, "members.button_reject"),
                data: format!("拒绝 {id}"),
            },
        ]];
    }
}

/// Make `person` staff, with the audit row, unless they are already: an
/// account the `admins` setting names (`actor` "config"), or the console's
/// `:admin`.
pub async fn make_staff(
    conn: &mut Conn,
    person: &mut Person,
    platform: Platform,
    actor: &str,
    reason: &str,
    now_ms: i64,
) -> Result {
    if person.role == Role::Staff {
        return Ok(());
    }
    crate::store::people::set_role(&mut *conn, person.id, Role::Staff, now_ms).await?;
    audit::record(
        &mut *conn,
        &audit::Entry {
            at_ms: now_ms,
            platform,
            actor,
            action: "person.role",
            entity: "person",
            entity_id: Some(person.id.to_string()),
            detail: json!({"role": "staff", "reason": reason}),
        },
    )
    .await?;
    person.role = Role::Staff;
    Ok(())
}

/// Queue a card and remember which request it carries.
async fn post(conn: &mut Conn, out: &mut Out, m: &Outgoing, id: i64, now_ms: i64) -> Result {
    let row = out.enqueue(&mut *conn, m, now_ms, None, now_ms).await?;
    db::add_post(conn, row, id).await
}

/// Edits that turn a decided request's cards into their outcome (`text`,
/// in each card's locale), where the platform can edit; buttons go.
async fn card_edits(
    conn: &mut Conn,
    r: &JoinRequest,
    caps: &(dyn Fn(Platform) -> Capabilities + Sync),
    locale: &str,
    text: impl Fn(&str) -> String,
) -> Result<Vec<Outgoing>> {
    Ok(db::posts(conn, r.id)
        .await?
        .into_iter()
        .filter(|(_, platform, _)| caps(*platform).edit)
        .map(|(row, platform, chat)| {
            let mut m = Outgoing::new(platform, chat, text(locale));
            m.edit_of = Some(row);
            m
        })
        .collect())
}

async fn org_name(conn: &mut Conn, id: i64) -> Result<String> {
    Ok(orgs::get(conn, id)
        .await?
        .map(|o| o.full_name)
        .unwrap_or_default())
}

// ------------------------------------------------------------ 同意 / 拒绝

/// `同意 …` (`approve`) or `拒绝 …`: decide a join request. The request is
/// the one the message replies to (a card, or its button), else the number
/// or name given, else in a private chat the only one pending. In a group,
/// words that name no request are chatter and get no reply.
pub async fn decide(ctx: &mut Ctx<'_>, who: Option<&RequestRef>, approve: bool) -> Result {
    let arg = who.map_or("", |w| w.text.as_str());
    let may_decide_any = ctx.is_staff() || ctx.person.role == Role::Cadre;
    // Which requests this person may decide.
    let scope = if ctx.is_staff() {
        None
    } else {
        ctx.person.org_id.filter(|_| may_decide_any)
    };
    let replied = match &ctx.msg.reply_to {
        Some(r) => {
            db::by_post(
                &mut *ctx.tx,
                ctx.msg.platform,
                &ctx.msg.chat_id,
                &r.message_id,
            )
            .await?
        }
        None => None,
    };
    let number = who.and_then(|w| w.number);
    let target = match (replied, number) {
        (_, Some(n)) => Some(n),
        (Some(id), None) if arg.is_empty() => Some(id),
        _ => None,
    };
    let request = match target {
        Some(id) => db::get(&mut *ctx.tx, id).await?,
        // A bare 同意 in a group is everyday agreement unless it replies
        // to a request.
        None if arg.is_empty() && ctx.in_group() => return Ok(()),
        None => {
            if !may_decide_any {
                if !ctx.in_group() {
                    let text = tr(ctx.locale, "members.none_pending");
                    ctx.reply(text);
                }
                return Ok(());
            }
            let visible = if ctx.is_staff() || scope.is_some() {
                db::pending(&mut *ctx.tx, scope).await?
            } else {
                Vec::new()
            };
            match pick_by_name(ctx, &visible, arg) {
                Picked::One(r) => Some(r),
                Picked::Many(list) => {
                    let text = t!(
                        "members.which",
                        locale = ctx.locale,
                        n = list.len(),
                        list = list_lines(ctx, &list).await?
                    );
                    ctx.reply(text);
                    return Ok(());
                }
                Picked::None => {
                    if !ctx.in_group() {
                        let text = if arg.is_empty() {
                            tr(ctx.locale, "members.none_pending")
                        } else {
                            t!(
                                "members.no_such_name",
                                locale = ctx.locale,
                                name = clip(arg, 20)
                            )
                            .into_owned()
                        };
                        ctx.reply(text);
                    }
                    return Ok(());
                }
            }
        }
    };
    let Some(request) = request else {
        if !ctx.in_group() || may_decide_any {
            let text = t!(
                "members.no_such_request",
                locale = ctx.locale,
                id = target.unwrap_or_default()
            );
            ctx.reply(text);
        }
        return Ok(());
    };
    let allowed = ctx.is_staff()
        || (ctx.person.role == Role::Cadre && ctx.person.org_id == Some(request.org_id));
    if !allowed {
        if !ctx.in_group() || may_decide_any {
            let org = org_name(&mut *ctx.tx, request.org_id).await?;
            let text = t!(
                "members.not_approver",
                locale = ctx.locale,
                org = org.as_str(),
                id = request.id
            );
            ctx.reply(text);
        }
        return Ok(());
    }
    settle(ctx, &request, approve).await
}

enum Picked {
    One(JoinRequest),
    Many(Vec<db::Listed>),
    None,
}

/// The visible pending request a name (or nothing) means.
fn pick_by_name(ctx: &Ctx<'_>, visible: &[db::Listed], arg: &str) -> Picked {
    let name = arg.trim_start_matches('@');
    let mentioned: Vec<&str> = ctx
        .msg
        .mentions
        .iter()
        .map(|m| m.user_id.as_str())
        .collect();
    let found: Vec<&db::Listed> = if name.is_empty() {
        visible.iter().collect()
    } else {
        visible.iter().filter(|l| l.name == name).collect()
    };
    // An @-mention names the person whatever their display name.
    let found = if found.is_empty() && !mentioned.is_empty() {
        visible
            .iter()
            .filter(|l| {
                l.request.platform == ctx.msg.platform && mentioned.contains(&l.user_id.as_str())
            })
            .collect()
    } else {
        found
    };
    match found.len() {
        0 => Picked::None,
        1 => Picked::One(found[0].request.clone()),
        _ => Picked::Many(found.into_iter().cloned().collect()),
    }
}

/// One line per pending request: `#3 路人甲 → 县二中团委（05-20）`.
async fn list_lines(ctx: &mut Ctx<'_>, list: &[db::Listed]) -> Result<String> {
    let mut lines = Vec::new();
    for item in list.iter().take(PENDING_SHOWN) {
        let org = orgs::get(&mut *ctx.tx, item.request.org_id)
            .await?
            .map(|o| o.display().to_string())
            .unwrap_or_default();
        let date = ctx
            .env
            .local_date(store::from_ms(item.request.created_at))
            .format("%m-%d")
            .to_string();
        let mut line = t!(
            "members.list_line",
            locale = ctx.locale,
            id = item.request.id,
            name = item.name.as_str(),
            org = org.as_str(),
            date = date.as_str()
        )
        .into_owned();
        if item.request.on_roster {
            line.push_str(&tr(ctx.locale, "members.card_on_roster"));
        }
        lines.push(line);
    }
    if list.len() > PENDING_SHOWN {
        lines.push(
            t!(
                "members.more",
                locale = ctx.locale,
                n = list.len() - PENDING_SHOWN
            )
            .into_owned(),
        );
    }
    Ok(lines.join("\n"))
}

/// Approve or reject a request the acting person may decide.
async fn settle(ctx: &mut Ctx<'_>, r: &JoinRequest, approve: bool) -> Result {
    let l = ctx.locale;
    let org = orgs::get(&mut *ctx.tx, r.org_id).await?;
    let person = people::get(&mut *ctx.tx, r.person_id).await?;
    let (Some(org), Some(person)) = (org, person) else {
        return Ok(());
    };
    let now_ms = ctx.now_ms();
    let status = if approve { "approved" } else { "rejected" };
    if r.status != "pending"
        || !db::decide(&mut *ctx.tx, r.id, status, Some(ctx.person.id), now_ms).await?
    {
        let fresh = db::get(&mut *ctx.tx, r.id).await?;
        let now = fresh.map(|f| f.status).unwrap_or_default();
        let text = t!(
            "members.already_decided",
            locale = l,
            id = r.id,
            name = person.display_name.as_str(),
            status = tr(l, &format!("members.status.{now}"))
        );
        ctx.reply(text);
        return Ok(());
    }
    let env = ctx.env;
    let caps = |p| env.capabilities(p);
    let by = ctx.person.display_name.clone();
    let decided = Decided {
        request: r,
        person: &person,
        org: &org,
        by: Some(&by),
        default_locale: &env.settings.locale,
    };
    let mut out = if approve {
        let role = if person.role == Role::Staff {
            Role::Staff
        } else {
            Role::Member
        };
        people::set_org(&mut *ctx.tx, person.id, Some(org.id), now_ms).await?;
        if role != person.role {
            people::set_role(&mut *ctx.tx, person.id, role, now_ms).await?;
        }
        ctx.audit(
            "join.approve",
            "join_request",
            r.id,
            json!({"org": org.id, "person": person.id, "before": person.org_id,
                   "role": role.as_str(), "role_before": person.role.as_str()}),
        )
        .await?;
        decided.outcome(&mut *ctx.tx, Some(role), &caps).await?
    } else {
        ctx.audit(
            "join.reject",
            "join_request",
            r.id,
            json!({"org": org.id, "person": person.id}),
        )
        .await?;
        decided.outcome(&mut *ctx.tx, None, &caps).await?
    };
    // The person asked right here: the reply to the approver says it all.
    let here = r.platform == ctx.msg.platform && r.chat_id == ctx.msg.chat_id;
    if here {
        out.retain(|m| {
            !(m.chat_id == r.chat_id && m.platform == r.platform && m.edit_of.is_none())
        });
    }
    for m in out {
        ctx.out.send(m);
    }
    let key = if approve {
        "members.approved"
    } else {
        "members.rejected"
    };
    let text = t!(
        key,
        locale = l,
        name = person.display_name.as_str(),
        org = org.full_name.as_str()
    );
    ctx.reply(text);
    Ok(())
}

/// A decided request, and what to tell whom.
struct Decided<'a> {
    request: &'a JoinRequest,
    person: &'a Person,
    org: &'a Org,
    /// Who decided, or `None` for the roster.
    by: Option<&'a str>,
    default_locale: &'a str,
}

impl Decided<'_> {
    /// Where the person hears the outcome: privately when the bot may write
    /// to them, else the chat where they asked.
    async fn to_person(&self, conn: &mut Conn, text: String) -> Result<Outgoing> {
        let p = self.person;
        Ok(
            if chats::private_open(&mut *conn, p.platform, &p.user_id).await? {
                Outgoing::new(p.platform, p.user_id.clone(), text)
            } else {
                let mut m =
                    Outgoing::new(self.request.platform, self.request.chat_id.clone(), text);
                if self.request.platform == p.platform {
                    m.mention_users = vec![p.user_id.clone()];
                }
                m
            },
        )
    }

    fn locale(&self) -> &'static str {
        crate::i18n::pick(self.person.locale.as_deref(), None, self.default_locale)
    }

    /// The messages a decision sends: the person told (approved into
    /// `role`, or turned down with `None`), and the request's cards edited.
    async fn outcome(
        &self,
        conn: &mut Conn,
        role: Option<Role>,
        caps: &(dyn Fn(Platform) -> Capabilities + Sync),
    ) -> Result<Vec<Outgoing>> {
        let l = self.locale();
        let org = self.org.full_name.as_str();
        let (text, card) = match role {
            Some(role) => (
                t!(
                    "members.you_approved",
                    locale = l,
                    name = self.person.display_name.as_str(),
                    org = org,
                    role = tr(l, &format!("role.{}", role.as_str()))
                ),
                if self.by.is_some() {
                    "members.card_approved"
                } else {
                    "members.card_joined"
                },
            ),
            None => (
                t!("members.you_rejected", locale = l, org = org),
                "members.card_rejected",
            ),
        };
        let mut out = vec![self.to_person(&mut *conn, text.into_owned()).await?];
        out.extend(self.cards(conn, card, caps).await?);
        Ok(out)
    }

    async fn cards(
        &self,
        conn: &mut Conn,
        key: &str,
        caps: &(dyn Fn(Platform) -> Capabilities + Sync),
    ) -> Result<Vec<Outgoing>> {
        let locale = crate::i18n::pick(None, None, self.default_locale);
        card_edits(conn, self.request, caps, locale, |l| {
            t!(
                key,
                locale = l,
                name = self.person.display_name.as_str(),
                org = self.org.full_name.as_str(),
                id = self.request.id,
                by = self.by.unwrap_or_default()
            )
            .into_owned()
        })
        .await
    }
}

// ------------------------------------------------------------ what pending people are told

/// The one line for someone who must be a member of some org to do this:
/// their pending request when they have one, else how to join.
pub async fn not_member_text(conn: &mut impl Db, person: &Person, locale: &str) -> Result<String> {
    Ok(pending_text(conn, person.id, locale)
        .await?
        .unwrap_or_else(|| tr(locale, "common.need_org")))
}

/// The one line for someone who is not a member of `org` and wants to act
/// for it (log in its group, sign up for its list).
pub async fn outsider_text(
    conn: &mut Conn,
    person: &Person,
    org: &Org,
    locale: &str,
) -> Result<String> {
    Ok(match pending_text(conn, person.id, locale).await? {
        Some(text) => text,
        None => t!(
            "members.not_member",
            locale = locale,
            org = org.full_name.as_str(),
            short = org.display()
        )
        .into_owned(),
    })
}

/// "Your request to join ORG is waiting", when the person has one.
pub async fn pending_text(
    conn: &mut impl Db,
    person_id: i64,
    locale: &str,
) -> Result<Option<String>> {
    let Some(r) = db::pending_of(&mut *conn, person_id).await? else {
        return Ok(None);
    };
    let org = orgs::get_many(&mut *conn, &[r.org_id])
        .await?
        .remove(&r.org_id)
        .map(|o| o.full_name)
        .unwrap_or_default();
    Ok(Some(
        t!(
            "members.pending_blocked",
            locale = locale,
            org = org.as_str()
        )
        .into_owned(),
    ))
}

/// The `/whoami` line about a pending request (empty when there is none).
pub async fn whoami_line(ctx: &mut Ctx<'_>) -> Result<String> {
    let Some(r) = db::pending_of(&mut *ctx.tx, ctx.person.id).await? else {
        return Ok(String::new());
    };
    let org = org_name(&mut *ctx.tx, r.org_id).await?;
    Ok(t!(
        "members.whoami_pending",
        locale = ctx.locale,
        org = org.as_str(),
        id = r.id
    )
    .into_owned())
}

/// The `/help` line for a pending person (what to do next), if pending.
pub async fn help_line(ctx: &mut Ctx<'_>) -> Result<Option<String>> {
    let Some(r) = db::pending_of(&mut *ctx.tx, ctx.person.id).await? else {
        return Ok(None);
    };
    let Some(org) = orgs::get(&mut *ctx.tx, r.org_id).await? else {
        return Ok(None);
    };
    Ok(Some(
        t!(
            "members.help_pending",
            locale = ctx.locale,
            org = org.full_name.as_str(),
            short = org.display()
        )
        .into_owned(),
    ))
}

/// Staff `/role` placed `person` in `org` (or made them staff): their
/// pending request is closed accordingly.
pub async fn placed_by_staff(ctx: &mut Ctx<'_>, person: i64, org: Option<i64>) -> Result {
    let by = ctx.person.display_name.clone();
    close_pending_of(ctx, person, org, Some(by)).await
}

/// The org of a person's pending request, for staff's `/role @x 团干部`
/// without an org.
pub async fn pending_org(conn: &mut Conn, person: i64) -> Result<Option<i64>> {
    Ok(db::pending_of(conn, person).await?.map(|r| r.org_id))
}

// ------------------------------------------------------------ /invite

/// `/invite [ORG]` (邀请码): a one-time join code, in a private chat only
/// (a code in a group could be used by whoever reads it first).
pub async fn invite(ctx: &mut Ctx<'_>, arg: &str) -> Result {
    let l = ctx.locale;
    if ctx.in_group() {
        ctx.reply(tr(l, "members.invite_private_only"));
        return Ok(());
    }
    let Some(org) = org_for(ctx, arg, "members.invite_no_permission").await? else {
        return Ok(());
    };
    let now_ms = ctx.now_ms();
    let live = db::live_codes(&mut *ctx.tx, org.id, now_ms).await?;
    // A fresh code that no live code of the org already is.
    let code = loop {
        let code = random_code();
        if !live
            .iter()
            .any(|c| code_matches(&c.salt, &c.code_hash, &code))
        {
            break code;
        }
    };
    let salt = super::web::new_secret();
    let expires = now_ms + Duration::hours(CODE_TTL_HOURS).num_milliseconds();
    let id = db::insert_code(
        &mut *ctx.tx,
        org.id,
        &salt,
        &code_digest(&salt, &code),
        ctx.person.id,
        now_ms,
        expires,
    )
    .await?;
    ctx.audit(
        "join.invite",
        "join_code",
        id,
        json!({"org": org.id, "expires_at": expires}),
    )
    .await?;
    let text = t!(
        "members.invite",
        locale = l,
        code = code.as_str(),
        org = org.full_name.as_str(),
        short = org.display(),
        hours = CODE_TTL_HOURS
    );
    ctx.reply(text);
    Ok(())
}

/// A random code of [`CODE_DIGITS`] digits (leading zeros kept).
fn random_code() -> String {
    let mut buf = [0u8; 8];
    // The OS random source failing is not something to limp on from.
    getrandom::fill(&mut buf).expect("OS random source unavailable");
    let n = u64::from_le_bytes(buf) % 10u64.pow(CODE_DIGITS);
    format!("{n:0width$}", width = CODE_DIGITS as usize)
}

/// The org a cadre or staff command is about: the one named (staff: any;
/// a cadre: their own), else the sender's, else the group's. Replies and
/// returns `None` when there is none or the person may not.
async fn org_for(ctx: &mut Ctx<'_>, arg: &str, refused_key: &str) -> Result<Option<Org>> {
    let l = ctx.locale;
    let named = if arg.trim().is_empty() {
        None
    } else {
        match lookup_one(ctx, arg.trim()).await? {
            Some(o) => Some(o),
            None => return Ok(None),
        }
    };
    if ctx.is_staff() {
        let id = named
            .as_ref()
            .map(|o| o.id)
            .or(ctx.chat.org_id.filter(|_| ctx.in_group()))
            .or(ctx.person.org_id);
        let org = match (named, id) {
            (Some(o), _) => Some(o),
            (None, Some(id)) => orgs::get(&mut *ctx.tx, id).await?,
            (None, None) => None,
        };
        if org.is_none() {
            ctx.reply(tr(l, "members.which_org"));
        }
        return Ok(org);
    }
    let own = ctx.person.org_id.filter(|_| ctx.person.role == Role::Cadre);
    match (own, named) {
        (Some(own), Some(o)) if o.id == own => Ok(Some(o)),
        (Some(own), None) => orgs::get(&mut *ctx.tx, own).await,
        _ => {
            let text = not_member_or(ctx, refused_key).await?;
            ctx.reply(text);
            Ok(None)
        }
    }
}

/// A refusal: the pending line when the person is waiting to join, else
/// the text of `key`.
async fn not_member_or(ctx: &mut Ctx<'_>, key: &str) -> Result<String> {
    Ok(pending_text(&mut *ctx.tx, ctx.person.id, ctx.locale)
        .await?
        .unwrap_or_else(|| tr(ctx.locale, key)))
}

// ------------------------------------------------------------ /members

/// `/members [ORG]` (成员列表): an org's people by role and its pending
/// requests. Cadres see their own org; staff any, and without an org (and
/// outside an org's group) every pending request of the county.
pub async fn members(ctx: &mut Ctx<'_>, arg: &str) -> Result {
    let l = ctx.locale;
    if ctx.is_staff() && arg.trim().is_empty() && !(ctx.in_group() && ctx.chat.org_id.is_some()) {
        let all = db::pending(&mut *ctx.tx, None).await?;
        let text = if all.is_empty() {
            tr(l, "members.none_pending_county")
        } else {
            t!(
                "members.all_pending",
                locale = l,
                n = all.len(),
                list = list_lines(ctx, &all).await?
            )
            .into_owned()
        };
        ctx.reply(text);
        return Ok(());
    }
    let Some(org) = org_for(ctx, arg, "members.no_permission").await? else {
        return Ok(());
    };
    let people = people::of_org(&mut *ctx.tx, org.id).await?;
    let mut text = t!(
        "members.title",
        locale = l,
        org = org.full_name.as_str(),
        n = people.len()
    )
    .into_owned();
    for role in [Role::Staff, Role::Cadre, Role::Member] {
        let names: Vec<&str> = people
            .iter()
            .filter(|p| p.role == role)
            .map(|p| p.display_name.as_str())
            .collect();
        if names.is_empty() {
            continue;
        }
        let mut list = names
            .iter()
            .take(MEMBERS_SHOWN)
            .copied()
            .collect::<Vec<_>>()
            .join("、");
        if names.len() > MEMBERS_SHOWN {
            list.push_str(&t!(
                "members.and_more",
                locale = l,
                n = names.len() - MEMBERS_SHOWN
            ));
        }
        text.push('\n');
        text.push_str(&t!(
            "members.by_role",
            locale = l,
            role = ctx.role_label(role),
            n = names.len(),
            list = list.as_str()
        ));
    }
    if people.is_empty() {
        text.push('\n');
        text.push_str(&tr(l, "members.nobody"));
    }
    let waiting = db::pending(&mut *ctx.tx, Some(org.id)).await?;
    if !waiting.is_empty() {
        text.push('\n');
        text.push_str(&t!(
            "members.pending_list",
            locale = l,
            n = waiting.len(),
            list = list_lines(ctx, &waiting).await?
        ));
    }
    ctx.reply(text);
    Ok(())
}

// ------------------------------------------------------------ /remove

/// `/remove @someone` (移出): out of their org. Staff may remove anyone; a
/// cadre the members of their own org (a cadre is removed by staff).
pub async fn remove(ctx: &mut Ctx<'_>, target: &str) -> Result {
    let l = ctx.locale;
    let person = match super::orgs::find_target(ctx, target).await? {
        Ok(p) => p,
        Err(text) => {
            ctx.reply(text);
            return Ok(());
        }
    };
    let Some(org_id) = person.org_id else {
        let text = t!(
            "members.remove_not_member",
            locale = l,
            name = person.display_name.as_str()
        );
        ctx.reply(text);
        return Ok(());
    };
    let org = org_name(&mut *ctx.tx, org_id).await?;
    let allowed = ctx.is_staff()
        || (ctx.person.role == Role::Cadre
            && ctx.person.org_id == Some(org_id)
            && person.role == Role::Member);
    if !allowed || (person.id == ctx.person.id && !ctx.is_staff()) {
        let text = t!(
            "members.remove_no_permission",
            locale = l,
            org = org.as_str()
        );
        ctx.reply(text);
        return Ok(());
    }
    let now_ms = ctx.now_ms();
    people::set_org(&mut *ctx.tx, person.id, None, now_ms).await?;
    let role = if person.role == Role::Cadre {
        people::set_role(&mut *ctx.tx, person.id, Role::Member, now_ms).await?;
        Role::Member
    } else {
        person.role
    };
    ctx.audit(
        "person.remove",
        "person",
        person.id,
        json!({"org": org_id, "role_before": person.role.as_str(), "role": role.as_str()}),
    )
    .await?;
    if person.id != ctx.person.id
        && chats::private_open(&mut *ctx.tx, person.platform, &person.user_id).await?
    {
        let pl = crate::i18n::pick(person.locale.as_deref(), None, &ctx.env.settings.locale);
        let text = t!("members.removed_you", locale = pl, org = org.as_str());
        ctx.out
            .send(Outgoing::new(person.platform, person.user_id.clone(), text));
    }
    if person.id == ctx.person.id {
        ctx.person.org_id = None;
    }
    let text = t!(
        "members.remove_ok",
        locale = l,
        name = person.display_name.as_str(),
        org = org.as_str()
    );
    ctx.reply(text);
    Ok(())
}

// ------------------------------------------------------------ the roster

/// A checked roster: every org in the file with its rows (the file replaces
/// those orgs' rosters; other orgs keep theirs).
#[derive(Debug, Clone, Default)]
pub struct Roster {
    pub orgs: Vec<(i64, Vec<RosterRow>)>,
}

impl Roster {
    pub fn people(&self) -> usize {
        self.orgs.iter().map(|(_, r)| r.len()).sum()
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RosterSummary {
    pub orgs: usize,
    pub people: usize,
    /// Pending requests approved because the roster names their account.
    pub approved: usize,
}

/// A role as a roster writes it: empty or 团员 for members; 团干部, 书记,
/// 团支书, 委员 … for cadres. Staff can't be granted by a file.
fn roster_role(s: &str) -> Option<Role> {
    let s = s.trim();
    if s.is_empty() {
        return Some(Role::Member);
    }
    if ["书记", "支书", "委员", "团干"]
        .iter()
        .any(|w| s.contains(w))
    {
        return Some(Role::Cadre);
    }
    match s.parse::<Role>() {
        Ok(Role::Staff) | Err(_) => None,
        Ok(role) => Some(role),
    }
}

/// A QQ number as a roster writes it: 5 to 12 digits.
fn roster_qq(s: &str) -> Option<String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    ((5..=12).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit())).then_some(s)
}

/// A Telegram username (`@name`, `name` or a `t.me/name` link): 5 to 32
/// letters, digits and underscores; stored lower case.
fn roster_telegram(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s
        .rsplit_once("t.me/")
        .map_or(s, |(_, name)| name)
        .trim_start_matches('@')
        .trim_end_matches('/');
    ((5..=32).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| s.to_ascii_lowercase())
}

/// An optional cell read by `parse`: `Some(None)` when empty, `None` when
/// it can't be read.
fn optional_cell(text: &str, parse: fn(&str) -> Option<String>) -> Option<Option<String>> {
    match text {
        "" => Some(None),
        s => parse(s).map(Some),
    }
}

/// Check a roster table (组织, 姓名, QQ号, Telegram, 角色); every problem
/// is returned, with its row number. `existing`: the rosters already stored
/// (an account may be on one org's roster only).
pub fn validate_roster(
    table: &Table,
    all: &[Org],
    aliases: &[(String, i64)],
    existing: &[RosterRow],
    locale: &str,
) -> std::result::Result<Roster, ImportError> {
    let col = |names: &[&str]| table.column(names);
    let (org_col, name_col, qq_col, tg_col, role_col) = (
        col(&["组织", "团组织", "组织名称", "所在组织", "单位"]),
        col(&["姓名", "名字"]),
        col(&["QQ号", "QQ", "qq", "QQ号码"]),
        col(&["Telegram", "telegram", "Telegram用户名", "TG", "tg"]),
        col(&["角色", "职务"]),
    );
    super::import_orgs::require_columns(
        &[("组织", org_col), ("姓名", name_col)],
        &tr(locale, "members.roster.columns"),
        locale,
    )?;
    super::import_orgs::require_rows(
        table,
        MAX_ROSTER_ROWS,
        ("members.roster.empty", "members.roster.too_many"),
        locale,
    )?;
    let mut errors = Vec::new();
    let mut by_org: Vec<(i64, Vec<RosterRow>)> = Vec::new();
    let mut accounts: std::collections::HashMap<String, usize> = Default::default();
    for (line, r) in &table.rows {
        let err = |key: &str, value: &str| {
            t!(key, locale = locale, line = line, value = clip(value, 30)).into_owned()
        };
        let org_text = cell(r, org_col);
        let name = cell(r, name_col);
        if org_text.is_empty() && name.is_empty() {
            continue;
        }
        let org = match resolve(org_text, all, aliases) {
            OrgMatch::One(o) => o,
            _ => {
                errors.push(err("members.roster.unknown_org", org_text));
                continue;
            }
        };
        if name.is_empty() {
            errors.push(err("members.roster.empty_name", ""));
            continue;
        }
        if name.chars().count() > MAX_ROSTER_NAME {
            errors.push(err("members.roster.name_too_long", name));
            continue;
        }
        let Some(qq) = optional_cell(cell(r, qq_col), roster_qq) else {
            errors.push(err("members.roster.bad_qq", cell(r, qq_col)));
            continue;
        };
        let Some(tg) = optional_cell(cell(r, tg_col), roster_telegram) else {
            errors.push(err("members.roster.bad_telegram", cell(r, tg_col)));
            continue;
        };
        let Some(role) = roster_role(cell(r, role_col)) else {
            errors.push(err("members.roster.bad_role", cell(r, role_col)));
            continue;
        };
        let mut bad = false;
        for account in [
            qq.as_ref().map(|q| format!("QQ {q}")),
            tg.as_ref().map(|u| format!("@{u}")),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(first) = accounts.insert(account.clone(), *line) {
                errors.push(
                    t!(
                        "members.roster.duplicate",
                        locale = locale,
                        line = line,
                        first = first,
                        value = account.as_str()
                    )
                    .into_owned(),
                );
                bad = true;
            }
        }
        if bad {
            continue;
        }
        let row = RosterRow {
            org_id: org.id,
            name: name.to_string(),
            qq,
            telegram: tg,
            role,
        };
        match by_org.iter_mut().find(|(id, _)| *id == org.id) {
            Some((_, rows)) => rows.push(row),
            None => by_org.push((org.id, vec![row])),
        }
    }
    // An account already on the roster of an org this file leaves alone.
    for (_, rows) in &by_org {
        for row in rows {
            let clash = existing.iter().find(|e| {
                !by_org.iter().any(|(id, _)| *id == e.org_id)
                    && ((row.qq.is_some() && e.qq == row.qq)
                        || (row.telegram.is_some() && e.telegram == row.telegram))
            });
            if let Some(e) = clash {
                let org = all
                    .iter()
                    .find(|o| o.id == e.org_id)
                    .map(|o| o.full_name.as_str())
                    .unwrap_or_default();
                let value = row
                    .qq
                    .clone()
                    .filter(|q| e.qq.as_ref() == Some(q))
                    .map(|q| format!("QQ {q}"))
                    .or_else(|| row.telegram.as_ref().map(|u| format!("@{u}")))
                    .unwrap_or_default();
                errors.push(
                    t!(
                        "members.roster.taken",
                        locale = locale,
                        value = value.as_str(),
                        org = org,
                        name = row.name.as_str()
                    )
                    .into_owned(),
                );
            }
        }
    }
    super::import_orgs::row_errors(errors, locale)?;
    Ok(Roster { orgs: by_org })
}

/// Write a checked roster in the caller's transaction, audited, and approve
/// the pending requests whose account it names (for that org). Returns what
/// it did and the messages to send (each approved person is told).
#[allow(clippy::too_many_arguments)]
pub async fn write_roster(
    conn: &mut Conn,
    roster: &Roster,
    platform: Platform,
    actor: &str,
    now_ms: i64,
    default_locale: &str,
    caps: &(dyn Fn(Platform) -> Capabilities + Sync),
) -> Result<(RosterSummary, Vec<Outgoing>)> {
    for (org_id, rows) in &roster.orgs {
        db::replace_roster(&mut *conn, *org_id, rows, now_ms).await?;
    }
    audit::record(
        &mut *conn,
        &audit::Entry {
            at_ms: now_ms,
            platform,
            actor,
            action: "roster.import",
            entity: "roster",
            entity_id: None,
            detail: json!({"orgs": roster.orgs.iter().map(|(id, r)| json!({"org": id, "people": r.len()})).collect::<Vec<_>>()}),
        },
    )
    .await?;
    let mut summary = RosterSummary {
        orgs: roster.orgs.len(),
        people: roster.people(),
        approved: 0,
    };
    let mut out = Vec::new();
    for item in db::pending(&mut *conn, None).await? {
        let r = &item.request;
        let Some(person) = people::get(&mut *conn, r.person_id).await? else {
            continue;
        };
        let Some(row) = db::roster_by_account(
            &mut *conn,
            person.platform,
            &person.user_id,
            r.username.as_deref(),
        )
        .await?
        .filter(|row| row.org_id == r.org_id) else {
            continue;
        };
        let Some(org) = orgs::get(&mut *conn, r.org_id).await? else {
            continue;
        };
        if !db::decide(&mut *conn, r.id, "approved", None, now_ms).await? {
            continue;
        }
        let role = if person.role == Role::Staff {
            Role::Staff
        } else {
            row.role
        };
        people::set_org(&mut *conn, person.id, Some(org.id), now_ms).await?;
        if role != person.role {
            people::set_role(&mut *conn, person.id, role, now_ms).await?;
        }
        audit::record(
            &mut *conn,
            &audit::Entry {
                at_ms: now_ms,
                platform,
                actor,
                action: "join.roster",
                entity: "join_request",
                entity_id: Some(r.id.to_string()),
                detail: json!({"org": org.id, "person": person.id, "role": role.as_str()}),
            },
        )
        .await?;
        let decided = Decided {
            request: r,
            person: &person,
            org: &org,
            by: None,
            default_locale,
        };
        out.extend(decided.outcome(&mut *conn, Some(role), caps).await?);
        summary.approved += 1;
    }
    Ok((summary, out))
}

/// `tuanbot import roster FILE`: read, check and write a roster in one
/// transaction. Messages to people it approved go out through the outbox
/// (the running bot sends them).
pub async fn import_roster_file(
    store: &Store,
    path: &std::path::Path,
    locale: &str,
) -> std::result::Result<RosterSummary, ImportError> {
    let table = Table::read(path)
        .map_err(|e| ImportError::Invalid(vec![format!("{}: {e}", path.display())]))?;
    let now_ms = store::ms(chrono::Utc::now());
    let mut tx = store.begin().await?;
    let checked = check_roster(&mut tx, &table, locale).await;
    let roster = match checked {
        Ok(r) => r,
        Err(e) => {
            tx.rollback().await?;
            return Err(e);
        }
    };
    // The CLI doesn't know what the running adapters can render: no edits.
    let no_edits = |_| Capabilities {
        edit: false,
        buttons: false,
        max_text_chars: 4000,
    };
    let (summary, out) = write_roster(
        &mut tx,
        &roster,
        Platform::Console,
        "cli",
        now_ms,
        locale,
        &no_edits,
    )
    .await?;
    let mut port = Out::new();
    for m in out {
        port.send(m);
    }
    port.write(&mut *tx, store::from_ms(now_ms)).await?;
    tx.commit().await?;
    Ok(summary)
}

/// Validate a roster table against the orgs and rosters in the store.
async fn check_roster(
    conn: &mut Conn,
    table: &Table,
    locale: &str,
) -> std::result::Result<Roster, ImportError> {
    let all = orgs::all(&mut *conn).await?;
    let aliases = orgs::aliases(&mut *conn).await?;
    let existing = db::roster_all(&mut *conn).await?;
    validate_roster(table, &all, &aliases, &existing, locale)
}

/// `/roster import` (导入名单) with a CSV/XLSX file (staff), as the
/// wishes import takes its file.
pub async fn import_roster_in_chat(ctx: &mut Ctx<'_>) -> Result {
    let l = ctx.locale;
    if !ctx.is_staff() {
        ctx.reply(tr(l, "members.roster.staff_only"));
        return Ok(());
    }
    let table = match super::files::document_table(ctx.document, l, "members.roster") {
        Ok(table) => table,
        Err(text) => {
            ctx.reply(text);
            return Ok(());
        }
    };
    let roster = match check_roster(&mut *ctx.tx, table, l).await {
        Ok(r) => r,
        Err(ImportError::Invalid(errors)) => {
            let text = t!(
                "members.roster.failed",
                locale = l,
                errors = errors.join("\n")
            );
            ctx.reply(text);
            return Ok(());
        }
        Err(ImportError::Store(e)) => return Err(e),
    };
    let env = ctx.env;
    let (platform, actor, now_ms) = (ctx.msg.platform, ctx.msg.sender_id.clone(), ctx.now_ms());
    let (summary, out) = write_roster(
        &mut *ctx.tx,
        &roster,
        platform,
        &actor,
        now_ms,
        &env.settings.locale,
        &|p| env.capabilities(p),
    )
    .await?;
    for m in out {
        ctx.out.send(m);
    }
    let text = t!(
        "members.roster.done",
        locale = l,
        orgs = summary.orgs,
        n = summary.people,
        approved = summary.approved
    );
    ctx.reply(text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_hashed_with_salt() {
        let c = random_code();
        assert_eq!(c.len(), 6);
        assert!(c.chars().all(|d| d.is_ascii_digit()));
        let stored = code_digest("salt", &c);
        assert!(code_matches("salt", &stored, &c));
        assert!(!code_matches("other", &stored, &c));
        assert!(!stored.contains(&c));
    }

    #[test]
    fn roster_cells() {
        assert_eq!(roster_qq(" 10001 "), Some("10001".into()));
        assert_eq!(roster_qq("1000"), None);
        assert_eq!(roster_qq("12345678901234"), None);
        assert_eq!(roster_qq("QQ10001"), None);
        assert_eq!(roster_telegram("@Xiao_Wang"), Some("xiao_wang".into()));
        assert_eq!(
            roster_telegram("https://t.me/xiaowang1"),
            Some("xiaowang1".into())
        );
        assert_eq!(roster_telegram("wang"), None);
        assert_eq!(roster_telegram("王小明"), None);
        assert_eq!(roster_role(""), Some(Role::Member));
        assert_eq!(roster_role("团员"), Some(Role::Member));
        assert_eq!(roster_role("团支书"), Some(Role::Cadre));
        assert_eq!(roster_role("组织委员"), Some(Role::Cadre));
        assert_eq!(roster_role("团干部"), Some(Role::Cadre));
        assert_eq!(roster_role("团县委"), None);
        assert_eq!(roster_role("校长"), None);
    }
}
