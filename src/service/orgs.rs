//! Orgs, people and roles: `/iam`, `/whoami`, `/orgs`, `/bind`, `/unbind`,
//! `/role`, and matching the names people type to orgs.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::json;

use super::{Ctx, Result, clip};
use crate::command::members::IamArgs;
use crate::command::scope::Scope;
use crate::domain::{OrgKind, Role};
use crate::store::orgs::{self, Org};
use crate::store::people::Person;
use crate::store::{chats, pending, people};
use rust_i18n::t;

/// How long a numbered choice stays answerable.
const CHOICE_TTL_MS: i64 = 30 * 60 * 1000;
const IAM_CHOICE: &str = "iam_choice";

/// The result of looking up a typed org name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgMatch {
    One(Org),
    /// Several fit; ask which.
    Many(Vec<Org>),
    /// None fits; the closest names, best first (maybe empty).
    None(Vec<Org>),
}

/// Prefixes and suffixes that people add or leave out at will.
const PREFIXES: &[&str] = &["共青团"];
const SUFFIXES: &[&str] = &[
    "团委员会",
    "委员会",
    "大团委",
    "团工委",
    "团总支",
    "团支部",
    "团组织",
    "团委",
];

/// The distinctive part of an org name: `共青团县一中委员会` → `县一中`.
pub fn core_name(name: &str) -> String {
    let mut s: String = name.chars().filter(|c| !c.is_whitespace()).collect();
    for p in PREFIXES {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest.to_string();
        }
    }
    for suf in SUFFIXES {
        if s.chars().count() > suf.chars().count() + 1
            && let Some(rest) = s.strip_suffix(suf)
        {
            s = rest.to_string();
            break;
        }
    }
    s
}

/// Match a typed name against the org list, tolerant of 团委/团支部 suffixes.
pub fn resolve(query: &str, all: &[Org], aliases: &[(String, i64)]) -> OrgMatch {
    let q: String = query.chars().filter(|c| !c.is_whitespace()).collect();
    let qc = core_name(&q);
    if q.is_empty() {
        return OrgMatch::None(Vec::new());
    }
    let by_id: HashMap<i64, &Org> = all.iter().map(|o| (o.id, o)).collect();
    let pick = |ids: Vec<i64>| -> Vec<Org> {
        let mut seen = HashSet::new();
        ids.into_iter()
            .filter(|id| seen.insert(*id))
            .filter_map(|id| by_id.get(&id).map(|o| (*o).clone()))
            .collect()
    };
    let decide = |found: Vec<Org>| match found.len() {
        0 => None,
        1 => found.into_iter().next().map(OrgMatch::One),
        _ => Some(OrgMatch::Many(found)),
    };

    // 1. Exact: full name, short name, alias, or the same core name.
    let mut exact: Vec<i64> = all
        .iter()
        .filter(|o| {
            o.full_name == q
                || o.short_name == q
                || (!qc.is_empty()
                    && (core_name(&o.full_name) == qc || core_name(&o.short_name) == qc))
        })
        .map(|o| o.id)
        .collect();
    exact.extend(
        aliases
            .iter()
            .filter(|(a, _)| *a == q || *a == qc)
            .map(|(_, id)| *id),
    );
    if let Some(m) = decide(pick(exact)) {
        return m;
    }

    // 2. Partial: the typed core inside a name (`一中` → 县一中团委), or a
    //    name's core inside what was typed (`县一中团支部书记`).
    if qc.chars().count() >= 2 {
        let partial: Vec<i64> = all
            .iter()
            .filter(|o| {
                let full = core_name(&o.full_name);
                let short = core_name(&o.short_name);
                full.contains(&qc)
                    || short.contains(&qc)
                    || (short.chars().count() >= 2 && qc.contains(&short))
            })
            .map(|o| o.id)
            .collect();
        if let Some(m) = decide(pick(partial)) {
            return m;
        }
    }

    // 3. Nothing fits: the closest names by shared character pairs.
    let mut scored: Vec<(f64, &Org)> = all
        .iter()
        .map(|o| {
            let s = similarity(&qc, &core_name(&o.full_name)).max(similarity(&qc, &o.short_name));
            (s, o)
        })
        .filter(|(s, _)| *s >= 0.25)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    OrgMatch::None(scored.into_iter().take(3).map(|(_, o)| o.clone()).collect())
}

/// The county committee (团县委): the root of the org tree, of the
/// committee kind; `None` when the tree has none.
pub fn county_committee(all: &[Org]) -> Option<&Org> {
    let committee = |o: &&Org| o.kind == OrgKind::Committee;
    all.iter()
        .filter(committee)
        .find(|o| o.parent_id.is_none())
        .or_else(|| all.iter().find(committee))
}

/// Closeness of two short Chinese names: the mean of the Dice coefficients
/// over characters and over character pairs. Characters catch `县三中` ~
/// `县一中`; pairs reward the same order.
fn similarity(a: &str, b: &str) -> f64 {
    fn dice<T: PartialEq + Clone>(x: &[T], y: &[T]) -> f64 {
        if x.is_empty() || y.is_empty() {
            return 0.0;
        }
        let mut pool = y.to_vec();
        let mut shared = 0usize;
        for g in x {
            if let Some(i) = pool.iter().position(|p| p == g) {
                pool.swap_remove(i);
                shared += 1;
            }
        }
        (2 * shared) as f64 / (x.len() + y.len()) as f64
    }
    let (ca, cb): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let pairs = |cs: &[char]| cs.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>();
    let bigram = if ca.len() < 2 || cb.len() < 2 {
        dice(&ca, &cb)
    } else {
        dice(&pairs(&ca), &pairs(&cb))
    };
    (dice(&ca, &cb) + bigram) / 2.0
}

async fn lookup(ctx: &mut Ctx<'_>, query: &str) -> Result<OrgMatch> {
    let all = orgs::all(ctx.tx).await?;
    let aliases = orgs::aliases(ctx.tx).await?;
    Ok(resolve(query, &all, &aliases))
}

fn numbered(orgs: &[Org]) -> String {
    orgs.iter()
        .enumerate()
        .map(|(i, o)| format!("{}. {}", i + 1, o.full_name))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reply for a name that matched nothing: what was typed, the closest names.
fn reply_not_found(ctx: &mut Ctx<'_>, query: &str, closest: &[Org]) {
    let mut text = t!(
        "org.not_found",
        locale = ctx.locale,
        query = clip(query, 20)
    )
    .into_owned();
    if !closest.is_empty() {
        let list = closest
            .iter()
            .map(|o| o.display())
            .collect::<Vec<_>>()
            .join("、");
        text.push_str(&t!("org.closest", locale = ctx.locale, list = list));
    }
    text.push_str(&t!("org.list_hint", locale = ctx.locale));
    ctx.reply(text);
}

/// Look a typed org name up and, when it names exactly one org, return it.
/// Otherwise reply (several fit: "write the full name"; none: the closest
/// names) and return `None`: the caller just stops.
pub(super) async fn lookup_one(ctx: &mut Ctx<'_>, query: &str) -> Result<Option<Org>> {
    match lookup(ctx, query).await? {
        OrgMatch::One(org) => Ok(Some(org)),
        OrgMatch::Many(found) => {
            let list = found
                .iter()
                .take(9)
                .map(|o| o.full_name.as_str())
                .collect::<Vec<_>>()
                .join("、");
            let text = t!(
                "bind.ambiguous",
                locale = ctx.locale,
                n = found.len(),
                list = list
            );
            ctx.reply(text);
            Ok(None)
        }
        OrgMatch::None(closest) => {
            reply_not_found(ctx, query, &closest);
            Ok(None)
        }
    }
}

/// `/iam ORG [CODE]` (我是 ORG): ask to join an org (see
/// [`super::members`]); `我是 1` picks from numbered choices.
#[tracing::instrument(skip(ctx, args), fields(person = ctx.person.id))]
pub async fn iam(ctx: &mut Ctx<'_>, args: &IamArgs) -> Result {
    let now_ms = ctx.now_ms();
    let (platform, user, chat) = (
        ctx.msg.platform,
        ctx.msg.sender_id.clone(),
        ctx.msg.chat_id.clone(),
    );
    if let Some(n) = args.choice
        && let Some(p) = pending::get(ctx.tx, platform, &user, &chat, IAM_CHOICE, now_ms).await?
    {
        let choice: Choice = serde_json::from_str(&p.payload).unwrap_or_default();
        if let Some(id) = n.checked_sub(1).and_then(|i| choice.ids.get(i))
            && let Some(org) = orgs::get(ctx.tx, *id).await?
        {
            pending::clear(ctx.tx, platform, &user, &chat).await?;
            return super::members::join(ctx, org, choice.code.as_deref(), false).await;
        }
        let text = t!("org.bad_choice", locale = ctx.locale, n = choice.ids.len());
        ctx.reply(text);
        return Ok(());
    }
    let (query, code) = (args.org.as_str(), args.code.as_deref());
    match lookup(ctx, query).await? {
        OrgMatch::One(org) => super::members::join(ctx, org, code, false).await,
        OrgMatch::Many(found) => {
            let choice = Choice {
                ids: found.iter().take(9).map(|o| o.id).collect(),
                code: code.map(str::to_string),
            };
            pending::set(
                ctx.tx,
                platform,
                &user,
                &chat,
                IAM_CHOICE,
                &serde_json::to_string(&choice).unwrap_or_default(),
                now_ms + CHOICE_TTL_MS,
            )
            .await?;
            let text = t!(
                "org.choices",
                locale = ctx.locale,
                n = found.len(),
                list = numbered(&found[..choice.ids.len()])
            );
            ctx.reply(text);
            Ok(())
        }
        OrgMatch::None(closest) => {
            reply_not_found(ctx, query, &closest);
            Ok(())
        }
    }
}

/// The numbered choices of an ambiguous `我是`, and the join code typed with
/// it. (Stored as JSON; a bare list of ids from before join codes still reads.)
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(from = "ChoiceForms")]
struct Choice {
    ids: Vec<i64>,
    code: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ChoiceForms {
    Ids(Vec<i64>),
    Full { ids: Vec<i64>, code: Option<String> },
}

impl From<ChoiceForms> for Choice {
    fn from(f: ChoiceForms) -> Choice {
        match f {
            ChoiceForms::Ids(ids) => Choice { ids, code: None },
            ChoiceForms::Full { ids, code } => Choice { ids, code },
        }
    }
}

/// `/whoami` (我是谁).
pub async fn whoami(ctx: &mut Ctx<'_>) -> Result {
    let org = match ctx.person.org_id {
        Some(id) => orgs::get(ctx.tx, id).await?.map(|o| o.full_name),
        None => None,
    };
    let none = t!("common.none", locale = ctx.locale).into_owned();
    let chat = chat_binding(ctx).await?;
    let mut text = t!(
        "whoami",
        locale = ctx.locale,
        name = ctx.person.display_name.as_str(),
        platform = ctx.person.platform.as_str(),
        id = ctx.person.user_id.as_str(),
        org = org.unwrap_or(none),
        role = ctx.role_label(ctx.person.role),
        chat = chat
    )
    .into_owned();
    text.push_str(&super::members::whoami_line(ctx).await?);
    ctx.reply(text);
    Ok(())
}

/// What this chat is bound to, in words.
async fn chat_binding(ctx: &mut Ctx<'_>) -> Result<String> {
    if !ctx.in_group() {
        return Ok(t!("chat.private", locale = ctx.locale).into_owned());
    }
    if ctx.chat.committee_wide {
        return Ok(t!("chat.committee", locale = ctx.locale).into_owned());
    }
    Ok(match ctx.chat.org_id {
        Some(id) => match orgs::get(ctx.tx, id).await? {
            Some(o) => o.full_name,
            None => t!("chat.unbound", locale = ctx.locale).into_owned(),
        },
        None => t!("chat.unbound", locale = ctx.locale).into_owned(),
    })
}

/// `/orgs` (组织): the tree with member counts.
pub async fn list(ctx: &mut Ctx<'_>) -> Result {
    let all = orgs::all(ctx.tx).await?;
    if all.is_empty() {
        let text = t!("orgs.empty", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let counts = orgs::member_counts(ctx.tx).await?;
    let people: i64 = counts.values().sum();
    let mut text = t!(
        "orgs.title",
        locale = ctx.locale,
        n = all.len(),
        people = people
    )
    .into_owned();
    let mut children: BTreeMap<Option<i64>, Vec<&Org>> = BTreeMap::new();
    let ids: HashSet<i64> = all.iter().map(|o| o.id).collect();
    for o in &all {
        // An org whose parent is missing is shown at the top rather than lost.
        let parent = o.parent_id.filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(o);
    }
    let roots = children.get(&None).cloned().unwrap_or_default();
    for root in roots {
        render(&mut text, root, 0, &children, &counts);
    }
    text.push_str(&t!("orgs.footer", locale = ctx.locale));
    ctx.reply(text);
    Ok(())
}

fn render(
    out: &mut String,
    org: &Org,
    depth: usize,
    children: &BTreeMap<Option<i64>, Vec<&Org>>,
    counts: &HashMap<i64, i64>,
) {
    let indent = "  ".repeat(depth);
    out.push_str(&format!(
        "\n{indent}▪ {}{}",
        org.full_name,
        count_suffix(org.id, counts)
    ));
    let Some(kids) = children.get(&Some(org.id)) else {
        return;
    };
    // Leaves are listed on one line per kind; orgs with their own children
    // get a block of their own below.
    let (branches, leaves): (Vec<&Org>, Vec<&Org>) = kids
        .iter()
        .partition(|k| children.contains_key(&Some(k.id)));
    for kind in OrgKind::ALL {
        let names: Vec<String> = leaves
            .iter()
            .filter(|o| o.kind == *kind)
            .map(|o| format!("{}{}", o.display(), count_suffix(o.id, counts)))
            .collect();
        if !names.is_empty() {
            out.push_str(&format!(
                "\n{indent}  {}（{}）：{}",
                kind.label(),
                names.len(),
                names.join("、")
            ));
        }
    }
    for b in branches {
        render(out, b, depth + 1, children, counts);
    }
}

fn count_suffix(id: i64, counts: &HashMap<i64, i64>) -> String {
    match counts.get(&id) {
        Some(n) if *n > 0 => format!("({n})"),
        _ => String::new(),
    }
}

/// `/bind ORG|全县` (绑定): this group belongs to ORG, or is committee-wide.
pub async fn bind(ctx: &mut Ctx<'_>, scope: &Scope) -> Result {
    if !ctx.in_group() {
        let text = t!("common.group_only", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let now_ms = ctx.now_ms();
    let query = match scope {
        Scope::Org(org) => org.as_str(),
        Scope::County => {
            if !ctx.is_staff() {
                let text = t!("bind.committee_no_permission", locale = ctx.locale);
                ctx.reply(text);
                return Ok(());
            }
            chats::bind(ctx.tx, ctx.chat.id, None, now_ms).await?;
            ctx.audit(
                "chat.bind",
                "chat",
                ctx.chat.id,
                json!({"committee_wide": true}),
            )
            .await?;
            let text = t!("bind.committee", locale = ctx.locale);
            ctx.reply(text);
            return Ok(());
        }
    };
    let Some(org) = lookup_one(ctx, query).await? else {
        return Ok(());
    };
    let allowed =
        ctx.is_staff() || (ctx.person.role == Role::Cadre && ctx.person.org_id == Some(org.id));
    if !allowed {
        let text = t!(
            "bind.no_permission",
            locale = ctx.locale,
            org = org.display()
        );
        ctx.reply(text);
        return Ok(());
    }
    if ctx.chat.org_id == Some(org.id) {
        let text = t!(
            "bind.already",
            locale = ctx.locale,
            org = org.full_name.as_str()
        );
        ctx.reply(text);
        return Ok(());
    }
    chats::bind(ctx.tx, ctx.chat.id, Some(org.id), now_ms).await?;
    ctx.audit(
        "chat.bind",
        "chat",
        ctx.chat.id,
        json!({"org": org.id, "before": ctx.chat.org_id}),
    )
    .await?;
    let text = t!("bind.ok", locale = ctx.locale, org = org.full_name.as_str());
    ctx.reply(text);
    Ok(())
}

/// `/unbind` (解绑).
pub async fn unbind(ctx: &mut Ctx<'_>) -> Result {
    if !ctx.in_group() {
        let text = t!("common.group_only", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    if ctx.chat.org_id.is_none() && !ctx.chat.committee_wide {
        let text = t!("unbind.not_bound", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let allowed = ctx.is_staff()
        || (ctx.person.role == Role::Cadre
            && ctx.chat.org_id.is_some()
            && ctx.person.org_id == ctx.chat.org_id);
    if !allowed {
        let text = t!("unbind.no_permission", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    chats::unbind(ctx.tx, ctx.chat.id, ctx.now_ms()).await?;
    ctx.audit(
        "chat.unbind",
        "chat",
        ctx.chat.id,
        json!({"before": ctx.chat.org_id, "committee_wide": ctx.chat.committee_wide}),
    )
    .await?;
    let text = t!("unbind.ok", locale = ctx.locale);
    ctx.reply(text);
    Ok(())
}

/// Find the person a `/role` names: an @-mention, a user id, or a unique
/// display name on this platform.
pub(super) async fn find_target(
    ctx: &mut Ctx<'_>,
    target: &str,
) -> Result<std::result::Result<Person, String>> {
    let platform = ctx.msg.platform;
    let mentioned = ctx
        .msg
        .mentions
        .iter()
        .find(|m| m.display.trim_start_matches('@') == target || m.user_id == target)
        .or(ctx.msg.mentions.first())
        .map(|m| m.user_id.clone());
    if let Some(id) = mentioned
        && let Some(p) = people::find(ctx.tx, platform, &id).await?
    {
        return Ok(Ok(p));
    }
    if let Some(p) = people::find(ctx.tx, platform, target).await? {
        return Ok(Ok(p));
    }
    let mut named = people::find_by_name(ctx.tx, platform, target).await?;
    Ok(match named.len() {
        1 => Ok(named.remove(0)),
        0 => Err(t!(
            "role.target_not_found",
            locale = ctx.locale,
            target = clip(target, 20)
        )
        .into_owned()),
        n => Err(t!(
            "role.ambiguous",
            locale = ctx.locale,
            n = n,
            target = clip(target, 20)
        )
        .into_owned()),
    })
}

/// `/role @someone cadre|member|staff [ORG]` (staff only).
pub async fn set_role(
    ctx: &mut Ctx<'_>,
    target: &str,
    role: Role,
    org_query: Option<&str>,
) -> Result {
    if !ctx.is_staff() {
        let text = t!("role.no_permission", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let mut person = match find_target(ctx, target).await? {
        Ok(p) => p,
        Err(text) => {
            ctx.reply(text);
            return Ok(());
        }
    };
    let org = match org_query {
        Some(q) => match lookup_one(ctx, q).await? {
            Some(org) => Some(org),
            None => return Ok(()),
        },
        // Without an org: theirs, else the one they asked to join.
        None => match person.org_id {
            Some(id) => orgs::get(ctx.tx, id).await?,
            None => match super::members::pending_org(ctx.tx, person.id).await? {
                Some(id) => orgs::get(ctx.tx, id).await?,
                None => None,
            },
        },
    };
    if role != Role::Staff && org.is_none() {
        let text = t!(
            "role.need_org",
            locale = ctx.locale,
            name = person.display_name.as_str()
        );
        ctx.reply(text);
        return Ok(());
    }
    let now_ms = ctx.now_ms();
    let org_id = org.as_ref().map(|o| o.id);
    if org_id.is_some() && org_id != person.org_id {
        people::set_org(ctx.tx, person.id, org_id, now_ms).await?;
    }
    people::set_role(ctx.tx, person.id, role, now_ms).await?;
    // Placed by staff: a pending request is settled by this.
    super::members::placed_by_staff(ctx, person.id, org_id.or(person.org_id)).await?;
    ctx.audit(
        "person.role",
        "person",
        person.id,
        json!({"role": role.as_str(), "before": person.role.as_str(), "org": org_id}),
    )
    .await?;
    person.role = role;
    let org_name = org
        .map(|o| o.full_name)
        .unwrap_or_else(|| t!("role.committee", locale = ctx.locale).into_owned());
    let text = t!(
        "role.ok",
        locale = ctx.locale,
        name = person.display_name.as_str(),
        org = org_name,
        role = ctx.role_label(role)
    );
    ctx.reply(text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: i64, full: &str, short: &str) -> Org {
        Org {
            id,
            full_name: full.into(),
            short_name: short.into(),
            kind: OrgKind::School,
            parent_id: None,
            secretary: None,
        }
    }

    fn sample() -> Vec<Org> {
        vec![
            org(1, "共青团示范县委员会", "团县委"),
            org(2, "县一中团委", "县一中"),
            org(3, "县二中团委", "县二中"),
            org(4, "县实验中学团委", "县实验中学"),
            org(5, "永清镇团委", "永清镇"),
            org(6, "县人民医院团支部", "县人民医院"),
        ]
    }

    fn ids(m: &OrgMatch) -> (char, Vec<i64>) {
        match m {
            OrgMatch::One(o) => ('1', vec![o.id]),
            OrgMatch::Many(v) => ('n', v.iter().map(|o| o.id).collect()),
            OrgMatch::None(v) => ('0', v.iter().map(|o| o.id).collect()),
        }
    }

    #[test]
    fn resolve_table() {
        let all = sample();
        let aliases = vec![("一高".to_string(), 2)];
        let cases: &[(&str, (char, Vec<i64>))] = &[
            ("县一中", ('1', vec![2])),
            ("县一中团委", ('1', vec![2])),
            ("县一中团支部", ('1', vec![2])),
            ("共青团县一中委员会", ('1', vec![2])),
            ("一中", ('1', vec![2])),
            ("一高", ('1', vec![2])),
            ("团县委", ('1', vec![1])),
            ("县 二 中", ('1', vec![3])),
            ("中学", ('1', vec![4])),
            ("县", ('n', vec![])),
            ("人民医院", ('1', vec![6])),
            ("永清", ('1', vec![5])),
            ("永清镇团委书记", ('1', vec![5])),
            ("县三中", ('0', vec![2, 3, 4])),
            ("火星基地", ('0', vec![])),
            ("'; DROP TABLE orgs; --", ('0', vec![])),
            ("", ('0', vec![])),
        ];
        for (q, want) in cases {
            let got = ids(&resolve(q, &all, &aliases));
            if want.0 == 'n' && want.1.is_empty() {
                assert!(matches!(got.0, 'n' | '0'), "{q}: {got:?}");
                continue;
            }
            assert_eq!(&got, want, "query {q:?}");
        }
    }

    #[test]
    fn core_names() {
        assert_eq!(core_name("共青团示范县委员会"), "示范县");
        assert_eq!(core_name("县一中团委"), "县一中");
        assert_eq!(core_name("县人民医院团支部"), "县人民医院");
        assert_eq!(core_name("团委"), "团委");
    }
}
