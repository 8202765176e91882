//! The work summary (工作总结): figures for a period and an org (with the
//! orgs under it) or the whole county, computed from the store, and the
//! renderings of them — a short chat text, the Markdown draft in the shape
//! county reports use, and an XLSX workbook.
//!
//! All numbers come from [`build`]; the renderers only format. Wording comes
//! from `locales/reports.*.yml`, so the draft reads like a county report and
//! the English build stays in step.

pub mod chart;
pub mod stars;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use rust_i18n::t;

use crate::domain::OrgKind;
use crate::domain::category::Category;
use crate::store::orgs::{self, Org};
use crate::store::reports::{self, ActivityRow};
use crate::store::{Backend, Conn, Result, ms};

/// Days without any logged activity before an org is listed as a problem.
pub const INACTIVE_DAYS: i64 = 30;
/// Ack rate (percent) below which an org is listed as a problem.
pub const LOW_ACK_PERCENT: i64 = 80;
/// Days after a claim before an undelivered wish counts as overdue, unless
/// the `wishes.overdue_days` setting says otherwise.
pub const OVERDUE_WISH_DAYS: i64 = 14;

/// When the report is judged: the moment, and the wishes' overdue rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    pub now_ms: i64,
    pub overdue_days: i64,
}

impl Judged {
    /// At `now_ms` with the default overdue rule.
    pub fn new(now_ms: i64) -> Judged {
        Judged {
            now_ms,
            overdue_days: OVERDUE_WISH_DAYS,
        }
    }
}
/// Notable records shown per category.
const NOTABLE_PER_CATEGORY: usize = 3;

/// Whose report: one org and the orgs under it, or the county.
#[derive(Debug, Clone)]
pub enum Scope {
    County,
    Org(Org),
}

/// One category's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryLine {
    pub category: String,
    pub records: i64,
    pub participants: i64,
    pub hours: f64,
    /// The largest records (by participants), with their counted things.
    pub notable: Vec<Notable>,
}

/// A record worth naming in the draft.
#[derive(Debug, Clone, PartialEq)]
pub struct Notable {
    pub date: NaiveDate,
    pub org: String,
    pub title: String,
    pub participants: Option<i64>,
    pub approx: bool,
    pub location: Option<String>,
    /// (count, unit, what)
    pub quantities: Vec<(f64, String, Option<String>)>,
}

/// One org's row in the per-org table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrgLine {
    pub org_id: i64,
    pub name: String,
    pub activities: i64,
    pub participants: i64,
    pub hours: f64,
    pub photos_ok: i64,
    pub people_ok: i64,
    pub wishes_claimed: i64,
    pub wishes_delivered: i64,
    pub wishes_overdue: i64,
    pub notices_expected: i64,
    pub notices_acked: i64,
    pub notices_on_time: i64,
    /// Latest activity date up to the period's end, any time before it.
    pub last_activity: Option<NaiveDate>,
    /// Records per category in the period.
    pub by_category: BTreeMap<String, i64>,
    /// Dates of the records per category (for the star rating).
    pub dates_by_category: BTreeMap<String, Vec<NaiveDate>>,
}

impl OrgLine {
    /// Acked notices in percent, `None` when none was expected.
    pub fn ack_percent(&self) -> Option<i64> {
        percent(self.notices_acked, self.notices_expected)
    }
}

/// Micro-wish figures; `None` in [`Report::wishes`] when the feature's tables
/// are not in this database.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WishTotals {
    pub published: i64,
    pub claimed: i64,
    pub delivered: i64,
    pub overdue: i64,
}

/// Notice figures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NoticeTotals {
    pub notices: i64,
    pub expected: i64,
    pub acked: i64,
    pub on_time: i64,
    /// Orgs that acknowledged late or not at all, with how many times.
    pub late_orgs: Vec<(String, i64)>,
}

/// What the data says needs attention.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Problems {
    pub inactive: Vec<String>,
    pub low_ack: Vec<(String, i64)>,
    pub overdue_wishes: Vec<(String, i64)>,
}

/// The whole summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The org's name, or `None` for the county.
    pub scope: Option<String>,
    pub records: i64,
    pub participants: i64,
    pub hours: f64,
    pub categories: Vec<CategoryLine>,
    pub orgs: Vec<OrgLine>,
    pub wishes: Option<WishTotals>,
    pub notices: NoticeTotals,
    pub problems: Problems,
    /// The overdue rule the problems were judged by (days).
    pub overdue_days: i64,
}

fn percent(part: i64, whole: i64) -> Option<i64> {
    (whole > 0).then(|| (part * 100 + whole / 2) / whole)
}

/// The orgs a scope covers: the county's orgs other than the committee, or
/// one org and everything under it.
pub fn covered(all: &[Org], scope: &Scope) -> Vec<Org> {
    match scope {
        Scope::County => all
            .iter()
            .filter(|o| o.kind != OrgKind::Committee)
            .cloned()
            .collect(),
        Scope::Org(root) => {
            let mut ids: HashSet<i64> = HashSet::from([root.id]);
            // The tree is shallow; repeat until no org is added.
            loop {
                let before = ids.len();
                for o in all {
                    if o.parent_id.is_some_and(|p| ids.contains(&p)) {
                        ids.insert(o.id);
                    }
                }
                if ids.len() == before {
                    break;
                }
            }
            all.iter()
                .filter(|o| ids.contains(&o.id))
                .cloned()
                .collect()
        }
    }
}

/// Compute the report for `from..=to` (local dates in `tz`), judged at
/// `at` (overdue wishes).
pub async fn build(
    conn: &mut Conn,
    backend: Backend,
    tz: Tz,
    scope: &Scope,
    from: NaiveDate,
    to: NaiveDate,
    at: Judged,
) -> Result<Report> {
    let all = orgs::all(conn).await?;
    let covered = covered(&all, scope);
    let ids: HashSet<i64> = covered.iter().map(|o| o.id).collect();
    let name_of: HashMap<i64, String> = all
        .iter()
        .map(|o| (o.id, o.display().to_string()))
        .collect();
    let (from_s, to_s) = (day(from), day(to));
    let rows: Vec<ActivityRow> = reports::activities(conn, &from_s, &to_s)
        .await?
        .into_iter()
        .filter(|a| ids.contains(&a.org_id))
        .collect();
    let mut quantities = reports::quantities(conn, &from_s, &to_s).await?;
    let last = reports::last_activity(conn, &to_s).await?;
    let start_ms = day_start_ms(tz, from);
    let end_ms = day_start_ms(tz, to + Duration::days(1));
    let notice_rows: Vec<_> = reports::notice_orgs(conn, start_ms, end_ms)
        .await?
        .into_iter()
        .filter(|n| ids.contains(&n.org_id))
        .collect();
    let wish_rows = reports::wishes(conn, backend).await?;

    let mut lines: BTreeMap<i64, OrgLine> = covered
        .iter()
        .map(|o| {
            (
                o.id,
                OrgLine {
                    org_id: o.id,
                    name: o.display().to_string(),
                    last_activity: last
                        .get(&o.id)
                        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
                    ..OrgLine::default()
                },
            )
        })
        .collect();

    // Activities per category and per org.
    let mut cats: HashMap<String, CategoryLine> = HashMap::new();
    let mut by_cat_rows: HashMap<String, Vec<&ActivityRow>> = HashMap::new();
    for a in &rows {
        let c = cats
            .entry(a.category.clone())
            .or_insert_with(|| CategoryLine {
                category: a.category.clone(),
                records: 0,
                participants: 0,
                hours: 0.0,
                notable: Vec::new(),
            });
        c.records += 1;
        c.participants += a.participants.unwrap_or(0);
        c.hours += a.hours.unwrap_or(0.0);
        by_cat_rows.entry(a.category.clone()).or_default().push(a);
        if let Some(l) = lines.get_mut(&a.org_id) {
            l.activities += 1;
            l.participants += a.participants.unwrap_or(0);
            l.hours += a.hours.unwrap_or(0.0);
            l.photos_ok += i64::from(a.photos > 0);
            l.people_ok += i64::from(a.participants.is_some_and(|p| p > 0));
            *l.by_category.entry(a.category.clone()).or_default() += 1;
            if let Ok(d) = NaiveDate::parse_from_str(&a.date, "%Y-%m-%d") {
                l.dates_by_category
                    .entry(a.category.clone())
                    .or_default()
                    .push(d);
            }
        }
    }
    for (cat, mut list) in by_cat_rows {
        // Largest first; ties oldest first, then by id, so the draft is stable.
        list.sort_by(|x, y| {
            y.participants
                .unwrap_or(0)
                .cmp(&x.participants.unwrap_or(0))
                .then(x.date.cmp(&y.date))
                .then(x.id.cmp(&y.id))
        });
        let picked: Vec<&ActivityRow> = list
            .into_iter()
            .filter(|a| a.participants.is_some() || quantities.contains_key(&a.id))
            .take(NOTABLE_PER_CATEGORY)
            .collect();
        let notable = picked
            .into_iter()
            .filter_map(|a| {
                Some(Notable {
                    date: NaiveDate::parse_from_str(&a.date, "%Y-%m-%d").ok()?,
                    org: name_of.get(&a.org_id).cloned().unwrap_or_default(),
                    title: a.title.clone(),
                    participants: a.participants,
                    approx: a.approx,
                    location: a.location.clone(),
                    quantities: quantities.remove(&a.id).unwrap_or_default(),
                })
            })
            .collect();
        if let Some(c) = cats.get_mut(&cat) {
            c.notable = notable;
        }
    }
    let mut categories: Vec<CategoryLine> = cats.into_values().collect();
    let rank = |k: &str| {
        Category::ALL
            .iter()
            .position(|c| c.as_str() == k)
            .unwrap_or(usize::MAX)
    };
    categories.sort_by(|a, b| {
        b.records
            .cmp(&a.records)
            .then(rank(&a.category).cmp(&rank(&b.category)))
            .then(a.category.cmp(&b.category))
    });

    // Notices: expected, acked, on time, per org.
    let mut notices = NoticeTotals::default();
    let mut seen: HashSet<i64> = HashSet::new();
    let mut late: BTreeMap<i64, i64> = BTreeMap::new();
    for n in &notice_rows {
        seen.insert(n.notice_id);
        notices.expected += 1;
        let on_time = match (n.first_ack, n.deadline_at) {
            (Some(at), Some(deadline)) => at <= deadline,
            (Some(_), None) => true,
            (None, _) => false,
        };
        notices.acked += i64::from(n.first_ack.is_some());
        notices.on_time += i64::from(on_time);
        if !on_time {
            *late.entry(n.org_id).or_default() += 1;
        }
        if let Some(l) = lines.get_mut(&n.org_id) {
            l.notices_expected += 1;
            l.notices_acked += i64::from(n.first_ack.is_some());
            l.notices_on_time += i64::from(on_time);
        }
    }
    notices.notices = seen.len() as i64;
    let mut late: Vec<(String, i64)> = late
        .into_iter()
        .map(|(id, n)| (name_of.get(&id).cloned().unwrap_or_default(), n))
        .collect();
    late.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    notices.late_orgs = late;

    // Wishes: published in the period (county-wide, or those the scope
    // claimed), claimed and delivered in the period, overdue now.
    let in_period = |t: Option<i64>| t.is_some_and(|t| t >= start_ms && t < end_ms);
    let overdue_before = at.now_ms - at.overdue_days * 86_400_000;
    let wishes = wish_rows.map(|rows| {
        let mut w = WishTotals::default();
        for r in &rows {
            let ours = r.org_id.is_some_and(|o| ids.contains(&o));
            let published = r.status != "revoked" && in_period(r.published_at);
            if published && (matches!(scope, Scope::County) || ours) {
                w.published += 1;
            }
            if !ours {
                continue;
            }
            let claimed = in_period(r.claimed_at);
            let delivered = r.status == "delivered" && in_period(r.delivered_at);
            let overdue = r.status == "claimed" && r.claimed_at.is_some_and(|c| c < overdue_before);
            w.claimed += i64::from(claimed);
            w.delivered += i64::from(delivered);
            w.overdue += i64::from(overdue);
            if let Some(l) = r.org_id.and_then(|o| lines.get_mut(&o)) {
                l.wishes_claimed += i64::from(claimed);
                l.wishes_delivered += i64::from(delivered);
                l.wishes_overdue += i64::from(overdue);
            }
        }
        w
    });

    // Problems, from the per-org lines.
    let quiet_since = to - Duration::days(INACTIVE_DAYS);
    let mut problems = Problems::default();
    for l in lines.values() {
        if l.last_activity.is_none_or(|d| d <= quiet_since) {
            problems.inactive.push(l.name.clone());
        }
        if let Some(p) = l.ack_percent().filter(|p| *p < LOW_ACK_PERCENT) {
            problems.low_ack.push((l.name.clone(), p));
        }
        if l.wishes_overdue > 0 {
            problems
                .overdue_wishes
                .push((l.name.clone(), l.wishes_overdue));
        }
    }
    problems
        .low_ack
        .sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    problems
        .overdue_wishes
        .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    let mut orgs: Vec<OrgLine> = lines.into_values().collect();
    orgs.sort_by(|a, b| b.activities.cmp(&a.activities).then(a.name.cmp(&b.name)));
    Ok(Report {
        from,
        to,
        scope: match scope {
            Scope::County => None,
            Scope::Org(o) => Some(o.display().to_string()),
        },
        records: rows.len() as i64,
        participants: rows.iter().map(|a| a.participants.unwrap_or(0)).sum(),
        hours: rows.iter().map(|a| a.hours.unwrap_or(0.0)).sum(),
        categories,
        orgs,
        wishes,
        notices,
        problems,
        overdue_days: at.overdue_days,
    })
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Midnight of `d` in `tz`, in ms UTC.
pub fn day_start_ms(tz: Tz, d: NaiveDate) -> i64 {
    use chrono::TimeZone;
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&midnight).earliest() {
        Some(t) => ms(t.with_timezone(&chrono::Utc)),
        None => ms(midnight.and_utc()),
    }
}

/// A number as reports write it: `90`, `12.5`.
pub fn num(x: f64) -> String {
    if x.fract().abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{:.1}", x)
    }
}

fn date_label(d: NaiveDate, locale: &str) -> String {
    use chrono::Datelike;
    t!("report.date", locale = locale, m = d.month(), d = d.day()).into_owned()
}

fn period_label(r: &Report, locale: &str) -> String {
    t!(
        "report.period",
        locale = locale,
        from = r.from.format("%Y-%m-%d"),
        to = r.to.format("%Y-%m-%d")
    )
    .into_owned()
}

fn scope_label(r: &Report, locale: &str) -> String {
    r.scope
        .clone()
        .unwrap_or_else(|| t!("report.county", locale = locale).into_owned())
}

fn category_label(c: &str, locale: &str) -> String {
    t!(format!("category.{c}"), locale = locale).into_owned()
}

/// "团员1000余人" / "45人".
fn people(n: i64, approx: bool, locale: &str) -> String {
    if approx {
        t!("report.people_approx", locale = locale, n = n).into_owned()
    } else {
        t!("report.people", locale = locale, n = n).into_owned()
    }
}

/// One notable record as a sentence:
/// "3月12日，县一中组织团员1000余人在三里铺开展义务植树，植树5500株".
pub fn notable_sentence(n: &Notable, locale: &str) -> String {
    let mut s = date_label(n.date, locale);
    s.push_str(&t!("report.sep", locale = locale));
    s.push_str(&n.org);
    if let Some(p) = n.participants {
        s.push_str(&t!(
            "report.organised",
            locale = locale,
            people = people(p, n.approx, locale)
        ));
    }
    if let Some(place) = n.location.as_deref().filter(|p| !p.is_empty()) {
        s.push_str(&t!("report.at", locale = locale, place = place));
    }
    s.push_str(&t!("report.held", locale = locale, title = n.title));
    for (count, unit, what) in &n.quantities {
        s.push_str(&t!(
            "report.quantity",
            locale = locale,
            what = what.as_deref().unwrap_or(""),
            n = num(*count),
            unit = unit
        ));
    }
    s
}

/// The short chat summary.
pub fn chat_text(r: &Report, locale: &str) -> String {
    let mut out = vec![
        t!(
            "report.chat_title",
            locale = locale,
            scope = scope_label(r, locale),
            period = period_label(r, locale)
        )
        .into_owned(),
    ];
    if r.records == 0 {
        out.push(t!("report.chat_no_activities", locale = locale).into_owned());
    } else {
        out.push(
            t!(
                "report.chat_totals",
                locale = locale,
                n = r.records,
                people = r.participants,
                hours = num(r.hours)
            )
            .into_owned(),
        );
        for c in r.categories.iter().take(5) {
            let mut s = t!(
                "report.chat_category",
                locale = locale,
                category = category_label(&c.category, locale),
                n = c.records,
                people = c.participants
            )
            .into_owned();
            if c.hours > 0.0 {
                s.push_str(&t!(
                    "report.chat_hours",
                    locale = locale,
                    hours = num(c.hours)
                ));
            }
            out.push(s);
        }
    }
    if let Some(w) = &r.wishes {
        out.push(
            t!(
                "report.chat_wishes",
                locale = locale,
                published = w.published,
                claimed = w.claimed,
                delivered = w.delivered
            )
            .into_owned(),
        );
    }
    if r.notices.expected > 0 {
        out.push(
            t!(
                "report.chat_notices",
                locale = locale,
                n = r.notices.notices,
                rate = percent(r.notices.acked, r.notices.expected).unwrap_or(0),
                on_time = percent(r.notices.on_time, r.notices.expected).unwrap_or(0)
            )
            .into_owned(),
        );
    }
    let p = &r.problems;
    if !p.inactive.is_empty() {
        out.push(
            t!(
                "report.chat_inactive",
                locale = locale,
                n = p.inactive.len(),
                list = short_list(&p.inactive, 5, locale)
            )
            .into_owned(),
        );
    }
    if !p.low_ack.is_empty() {
        let names: Vec<String> = p.low_ack.iter().map(|(n, _)| n.clone()).collect();
        out.push(
            t!(
                "report.chat_low_ack",
                locale = locale,
                list = short_list(&names, 5, locale)
            )
            .into_owned(),
        );
    }
    if let Some(w) = &r.wishes
        && w.overdue > 0
    {
        out.push(t!("report.chat_overdue", locale = locale, n = w.overdue).into_owned());
    }
    out.push(t!("report.chat_more", locale = locale).into_owned());
    out.join("\n")
}

fn short_list(items: &[String], max: usize, locale: &str) -> String {
    let sep = t!("report.list_sep", locale = locale).into_owned();
    let mut s = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(&sep);
    if items.len() > max {
        s.push_str(&t!("report.and_more", locale = locale, n = items.len()));
    }
    s
}

/// The Markdown draft: 一、开展工作情况; 二、微心愿/圆梦行动; 三、通知落实情况;
/// 四、存在的问题.
pub fn markdown(r: &Report, locale: &str) -> String {
    let l = locale;
    let mut md = String::new();
    let line = |md: &mut String, s: &str| {
        md.push_str(s);
        md.push('\n');
    };
    line(
        &mut md,
        &t!(
            "report.md_title",
            locale = l,
            scope = scope_label(r, l),
            period = period_label(r, l)
        ),
    );
    line(&mut md, "");
    line(&mut md, &t!("report.md_h1", locale = l));
    line(&mut md, "");
    if r.records == 0 {
        line(&mut md, &t!("report.md_no_activities", locale = l));
    } else {
        line(
            &mut md,
            &t!(
                "report.md_overview",
                locale = l,
                n = r.records,
                people = r.participants,
                hours = num(r.hours),
                orgs = r.orgs.iter().filter(|o| o.activities > 0).count()
            ),
        );
        for (i, c) in r.categories.iter().enumerate() {
            line(&mut md, "");
            let mut p = t!(
                "report.md_category",
                locale = l,
                i = i + 1,
                category = category_label(&c.category, l),
                n = c.records,
                people = c.participants
            )
            .into_owned();
            if c.hours > 0.0 {
                p.push_str(&t!("report.md_hours", locale = l, hours = num(c.hours)));
            }
            p.push_str(&t!("report.md_end", locale = l));
            for n in &c.notable {
                p.push_str(&notable_sentence(n, l));
                p.push_str(&t!("report.md_end", locale = l));
            }
            line(&mut md, &p);
        }
    }
    line(&mut md, "");
    line(&mut md, &t!("report.md_h2", locale = l));
    line(&mut md, "");
    match &r.wishes {
        None => line(&mut md, &t!("report.md_wishes_none", locale = l)),
        Some(w) => {
            line(
                &mut md,
                &t!(
                    "report.md_wishes",
                    locale = l,
                    published = w.published,
                    claimed = w.claimed,
                    delivered = w.delivered
                ),
            );
            let with: Vec<&OrgLine> = r
                .orgs
                .iter()
                .filter(|o| o.wishes_claimed > 0 || o.wishes_delivered > 0)
                .collect();
            if !with.is_empty() {
                line(&mut md, "");
                line(&mut md, &t!("report.md_wishes_table", locale = l));
                line(&mut md, "|---|---|---|");
                for o in with {
                    line(
                        &mut md,
                        &format!(
                            "| {} | {} | {} |",
                            o.name, o.wishes_claimed, o.wishes_delivered
                        ),
                    );
                }
            }
        }
    }
    line(&mut md, "");
    line(&mut md, &t!("report.md_h3", locale = l));
    line(&mut md, "");
    if r.notices.expected == 0 {
        line(&mut md, &t!("report.md_notices_none", locale = l));
    } else {
        let mut p = t!(
            "report.md_notices",
            locale = l,
            n = r.notices.notices,
            expected = r.notices.expected,
            acked = r.notices.acked,
            rate = percent(r.notices.acked, r.notices.expected).unwrap_or(0),
            on_time = percent(r.notices.on_time, r.notices.expected).unwrap_or(0)
        )
        .into_owned();
        if !r.notices.late_orgs.is_empty() {
            let list: Vec<String> = r
                .notices
                .late_orgs
                .iter()
                .map(|(n, k)| t!("report.md_late_org", locale = l, org = n, n = k).into_owned())
                .collect();
            p.push_str(&t!(
                "report.md_late",
                locale = l,
                list = short_list(&list, 20, l)
            ));
        }
        line(&mut md, &p);
    }
    line(&mut md, "");
    line(&mut md, &t!("report.md_h4", locale = l));
    line(&mut md, "");
    let pr = &r.problems;
    let mut k = 0;
    if !pr.inactive.is_empty() {
        k += 1;
        line(
            &mut md,
            &t!(
                "report.md_inactive",
                locale = l,
                i = k,
                days = INACTIVE_DAYS,
                n = pr.inactive.len(),
                list = short_list(&pr.inactive, 30, l)
            ),
        );
    }
    if !pr.low_ack.is_empty() {
        k += 1;
        let list: Vec<String> = pr
            .low_ack
            .iter()
            .map(|(n, p)| format!("{n}（{p}%）"))
            .collect();
        line(
            &mut md,
            &t!(
                "report.md_low_ack",
                locale = l,
                i = k,
                min = LOW_ACK_PERCENT,
                list = short_list(&list, 30, l)
            ),
        );
    }
    if !pr.overdue_wishes.is_empty() {
        k += 1;
        let list: Vec<String> = pr
            .overdue_wishes
            .iter()
            .map(|(n, c)| format!("{n}（{c}）"))
            .collect();
        line(
            &mut md,
            &t!(
                "report.md_overdue",
                locale = l,
                i = k,
                days = r.overdue_days,
                list = short_list(&list, 30, l)
            ),
        );
    }
    if k == 0 {
        line(&mut md, &t!("report.md_no_problems", locale = l));
    }
    md
}

/// The report as an XLSX workbook: activities by category, wishes, notices
/// and the per-org table.
pub fn write_xlsx(
    r: &Report,
    locale: &str,
    path: &Path,
) -> std::result::Result<(), rust_xlsxwriter::XlsxError> {
    use crate::export::write_text;
    use rust_xlsxwriter::{Format, Workbook};
    let l = locale;
    let h = |k: &str| t!(format!("report.xlsx.{k}"), locale = l).into_owned();
    let bold = Format::new().set_bold();
    let mut wb = Workbook::new();

    let ws = wb.add_worksheet().set_name(h("sheet_activities"))?;
    for (c, k) in ["category", "records", "participants", "hours", "notable"]
        .iter()
        .enumerate()
    {
        ws.write_string_with_format(0, c as u16, h(k), &bold)?;
    }
    for (i, c) in r.categories.iter().enumerate() {
        let row = i as u32 + 1;
        write_text(ws, row, 0, &category_label(&c.category, l), None)?;
        ws.write_number(row, 1, c.records as f64)?;
        ws.write_number(row, 2, c.participants as f64)?;
        ws.write_number(row, 3, c.hours)?;
        let notable: Vec<String> = c.notable.iter().map(|n| notable_sentence(n, l)).collect();
        write_text(ws, row, 4, &notable.join("；"), None)?;
    }

    let ws = wb.add_worksheet().set_name(h("sheet_wishes"))?;
    for (c, k) in ["org", "claimed", "delivered", "overdue"]
        .iter()
        .enumerate()
    {
        ws.write_string_with_format(0, c as u16, h(k), &bold)?;
    }
    let mut row = 1;
    if let Some(w) = &r.wishes {
        for o in r
            .orgs
            .iter()
            .filter(|o| o.wishes_claimed + o.wishes_delivered + o.wishes_overdue > 0)
        {
            write_text(ws, row, 0, &o.name, None)?;
            ws.write_number(row, 1, o.wishes_claimed as f64)?;
            ws.write_number(row, 2, o.wishes_delivered as f64)?;
            ws.write_number(row, 3, o.wishes_overdue as f64)?;
            row += 1;
        }
        ws.write_string_with_format(row, 0, h("total"), &bold)?;
        ws.write_number(row, 1, w.claimed as f64)?;
        ws.write_number(row, 2, w.delivered as f64)?;
        ws.write_number(row, 3, w.overdue as f64)?;
    }

    let ws = wb.add_worksheet().set_name(h("sheet_notices"))?;
    for (c, k) in ["org", "expected", "acked", "on_time", "rate"]
        .iter()
        .enumerate()
    {
        ws.write_string_with_format(0, c as u16, h(k), &bold)?;
    }
    for (i, o) in r.orgs.iter().filter(|o| o.notices_expected > 0).enumerate() {
        let row = i as u32 + 1;
        write_text(ws, row, 0, &o.name, None)?;
        ws.write_number(row, 1, o.notices_expected as f64)?;
        ws.write_number(row, 2, o.notices_acked as f64)?;
        ws.write_number(row, 3, o.notices_on_time as f64)?;
        ws.write_number(row, 4, o.ack_percent().unwrap_or(0) as f64)?;
    }

    let ws = wb.add_worksheet().set_name(h("sheet_orgs"))?;
    let cols = [
        "org",
        "records",
        "participants",
        "hours",
        "claimed",
        "delivered",
        "expected",
        "acked",
        "last",
    ];
    for (c, k) in cols.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h(k), &bold)?;
    }
    for (i, o) in r.orgs.iter().enumerate() {
        let row = i as u32 + 1;
        write_text(ws, row, 0, &o.name, None)?;
        ws.write_number(row, 1, o.activities as f64)?;
        ws.write_number(row, 2, o.participants as f64)?;
        ws.write_number(row, 3, o.hours)?;
        ws.write_number(row, 4, o.wishes_claimed as f64)?;
        ws.write_number(row, 5, o.wishes_delivered as f64)?;
        ws.write_number(row, 6, o.notices_expected as f64)?;
        ws.write_number(row, 7, o.notices_acked as f64)?;
        ws.write_string(row, 8, o.last_activity.map(day).unwrap_or_default())?;
    }
    wb.save(path)
}

/// File formats of the CLI draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    Md,
    Xlsx,
}

impl FileFormat {
    /// The format a file name asks for, when `--format` is not given.
    pub fn from_path(path: &Path) -> Option<FileFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "md" | "markdown" | "txt" => Some(FileFormat::Md),
            "xlsx" => Some(FileFormat::Xlsx),
            _ => None,
        }
    }
}

/// `tuanbot report`: build the report for `scope` and write it to `path`,
/// and the chart beside it (`FILE.png`; `None` when no font could draw
/// it). The CLI names the scope through `service::reports::export_file`.
#[allow(clippy::too_many_arguments)]
pub async fn export_file(
    store: &crate::store::Store,
    tz: Tz,
    locale: &str,
    scope: &Scope,
    from: NaiveDate,
    to: NaiveDate,
    format: FileFormat,
    path: &Path,
    at: Judged,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let mut conn = store.conn().await?;
    let r = build(&mut conn, store.backend(), tz, scope, from, to, at).await?;
    drop(conn);
    match format {
        FileFormat::Md => std::fs::write(path, markdown(&r, locale))?,
        FileFormat::Xlsx => write_xlsx(&r, locale, path)?,
    }
    // The chart goes beside the file; without a font the draft still counts.
    let png = path.with_extension("png");
    match chart::write_png(&r, locale, &png) {
        Ok(()) => Ok(Some(png)),
        Err(e) => {
            tracing::warn!(error = %e, "report chart not written");
            Ok(None)
        }
    }
}

/// `tuanbot stars`: rate every org for `from..=to` and write the ranking with
/// each org's breakdown to `path`.
#[allow(clippy::too_many_arguments)]
pub async fn export_stars(
    store: &crate::store::Store,
    tz: Tz,
    locale: &str,
    scheme: &stars::Scheme,
    from: NaiveDate,
    to: NaiveDate,
    format: FileFormat,
    path: &Path,
    at: Judged,
) -> anyhow::Result<usize> {
    let mut conn = store.conn().await?;
    let r = build(&mut conn, store.backend(), tz, &Scope::County, from, to, at).await?;
    let all = orgs::all(&mut conn).await?;
    drop(conn);
    let ratings = stars::rate(&r, &all, scheme);
    match format {
        FileFormat::Md => std::fs::write(path, stars::markdown(&r, &ratings, scheme, locale))?,
        FileFormat::Xlsx => stars::write_xlsx(&ratings, locale, path)?,
    }
    Ok(ratings.len())
}
