//! Star rating (星级评定): a score out of 100 per org from the report's
//! figures, by a scheme file (`data/star_scheme.toml`, overridable with the
//! `star_scheme` setting), with a line per item saying what would gain
//! points. Pure: it takes a [`Report`] and returns numbers.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use rust_i18n::t;
use serde::Deserialize;

use super::{OrgLine, Report, num};
use crate::domain::OrgKind;
use crate::store::orgs::Org;

/// The built-in scheme, documented in the file itself.
pub const DEFAULT_SCHEME: &str = include_str!("../../data/star_scheme.toml");

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    pub stars: Stars,
    pub meetings: Meetings,
    pub activities: Activities,
    pub wishes: Wishes,
    pub notices: Points,
    pub records: Points,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stars {
    pub five: f64,
    pub four: f64,
    pub three: f64,
    pub two: f64,
    pub five_share_cap: f64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Meetings {
    pub points: f64,
    pub members_meetings_per_semester: u32,
    pub committee_meeting_months: u32,
    pub group_meeting_months: u32,
    pub lecture_quarters: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Activities {
    pub points: f64,
    pub per_month: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Wishes {
    pub points: f64,
    pub direct_per_year: u32,
    pub township_per_year: u32,
    pub other_per_year: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Points {
    pub points: f64,
}

impl Scheme {
    /// Parse a scheme file; the parts must add up to 100 points.
    pub fn parse(src: &str) -> Result<Scheme, String> {
        let s: Scheme = toml::from_str(src).map_err(|e| e.to_string())?;
        let total = s.meetings.points
            + s.activities.points
            + s.wishes.points
            + s.notices.points
            + s.records.points;
        if (total - 100.0).abs() > 1e-6 {
            return Err(format!("the parts add up to {total}, not 100"));
        }
        if !(0.0..=1.0).contains(&s.stars.five_share_cap) {
            return Err("stars.five_share_cap must be between 0 and 1".into());
        }
        Ok(s)
    }

    pub fn builtin() -> Scheme {
        // The built-in file is checked by a unit test below.
        Scheme::parse(DEFAULT_SCHEME).unwrap_or_else(|e| panic!("data/star_scheme.toml: {e}"))
    }
}

/// One scored item of an org.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Locale key suffix: `members_meeting`, `committee_meeting`, …
    pub key: &'static str,
    pub got: f64,
    pub max: f64,
    /// What was done and what was asked, in the item's unit.
    pub done: i64,
    pub asked: i64,
}

/// One org's rating.
#[derive(Debug, Clone, PartialEq)]
pub struct Rating {
    pub org_id: i64,
    pub name: String,
    pub score: f64,
    pub stars: u8,
    /// 5★ by score but over the share cap.
    pub capped: bool,
    pub items: Vec<Item>,
}

/// Months touched by `from..=to` (year, month), in order.
fn months(from: NaiveDate, to: NaiveDate) -> Vec<(i32, u32)> {
    let mut out = Vec::new();
    let (mut y, mut m) = (from.year(), from.month());
    while (y, m) <= (to.year(), to.month()) {
        out.push((y, m));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    out
}

fn share(done: i64, asked: i64) -> f64 {
    if asked <= 0 {
        1.0
    } else {
        (done as f64 / asked as f64).min(1.0)
    }
}

/// Round to one decimal, as scores are shown.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Score every org of the report. `orgs` gives each org's kind and parent
/// (for the wishes target).
pub fn rate(report: &Report, orgs: &[Org], scheme: &Scheme) -> Vec<Rating> {
    let months = months(report.from, report.to);
    let n_months = months.len().max(1) as i64;
    let quarters: BTreeSet<(i32, u32)> = months.iter().map(|(y, m)| (*y, (m - 1) / 3)).collect();
    let committee: BTreeSet<i64> = orgs
        .iter()
        .filter(|o| o.kind == OrgKind::Committee)
        .map(|o| o.id)
        .collect();
    let mut out: Vec<Rating> = report
        .orgs
        .iter()
        .map(|l| {
            let org = orgs.iter().find(|o| o.id == l.org_id);
            rate_one(
                l,
                org,
                &committee,
                report,
                scheme,
                &months,
                n_months,
                quarters.len() as i64,
            )
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.name.cmp(&b.name))
    });
    // The share cap: only the best `cap` of the rated orgs keep 5★.
    let cap = ((out.len() as f64) * scheme.stars.five_share_cap).floor() as usize;
    let cap = cap.max(1);
    let mut fives = 0;
    for r in &mut out {
        if r.stars == 5 {
            fives += 1;
            if fives > cap {
                r.stars = 4;
                r.capped = true;
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn rate_one(
    l: &OrgLine,
    org: Option<&Org>,
    committee: &BTreeSet<i64>,
    report: &Report,
    s: &Scheme,
    months: &[(i32, u32)],
    n_months: i64,
    n_quarters: i64,
) -> Rating {
    let dates = |cat: &str| l.dates_by_category.get(cat).cloned().unwrap_or_default();
    let months_with = |cat: &str| {
        dates(cat)
            .iter()
            .map(|d| (d.year(), d.month()))
            .filter(|m| months.contains(m))
            .collect::<BTreeSet<_>>()
            .len() as i64
    };
    let quarters_with = |cat: &str| {
        dates(cat)
            .iter()
            .map(|d| (d.year(), (d.month() - 1) / 3))
            .collect::<BTreeSet<_>>()
            .len() as i64
    };
    let part = s.meetings.points / 4.0;
    let mut items = Vec::new();
    let mut item = |key, max: f64, done: i64, asked: i64| {
        items.push(Item {
            key,
            got: round1(max * share(done, asked)),
            max,
            done,
            asked,
        });
    };
    // 团员大会: per semester, scaled to the months rated (at least one).
    let asked = ((s.meetings.members_meetings_per_semester as i64 * n_months) as f64 / 6.0)
        .ceil()
        .max(1.0) as i64;
    item(
        "members_meeting",
        part,
        dates("团员大会").len() as i64,
        asked,
    );
    let every = |k: u32| (n_months as f64 / k.max(1) as f64).ceil() as i64;
    item(
        "committee_meeting",
        part,
        months_with("支委会"),
        every(s.meetings.committee_meeting_months),
    );
    item(
        "group_meeting",
        part,
        months_with("团小组会"),
        every(s.meetings.group_meeting_months),
    );
    item(
        "lecture",
        part,
        quarters_with("团课"),
        (n_quarters as f64 / s.meetings.lecture_quarters.max(1) as f64).ceil() as i64,
    );
    let meetings: i64 = ["团员大会", "支委会", "团小组会", "团课"]
        .iter()
        .map(|c| l.by_category.get(*c).copied().unwrap_or(0))
        .sum();
    item(
        "activities",
        s.activities.points,
        l.activities - meetings,
        s.activities.per_month as i64 * n_months,
    );
    let per_year = match org {
        Some(o) if o.kind == OrgKind::Township => s.wishes.township_per_year,
        Some(o) if o.parent_id.is_none_or(|p| committee.contains(&p)) => s.wishes.direct_per_year,
        _ => s.wishes.other_per_year,
    };
    let asked = ((per_year as i64 * n_months) as f64 / 12.0).ceil().max(1.0) as i64;
    let delivered = if report.wishes.is_some() {
        l.wishes_delivered
    } else {
        0
    };
    item("wishes", s.wishes.points, delivered, asked);
    let half = s.notices.points / 2.0;
    item("notice_acks", half, l.notices_acked, l.notices_expected);
    item(
        "notice_on_time",
        half,
        l.notices_on_time,
        l.notices_expected,
    );
    let half = s.records.points / 2.0;
    // With no records there is nothing complete: ask for one.
    let n = l.activities.max(1);
    item("photos", half, l.photos_ok, n);
    item("participants", half, l.people_ok, n);
    let score = round1(items.iter().map(|i| i.got).sum());
    let st = &s.stars;
    let stars = if score >= st.five {
        5
    } else if score >= st.four {
        4
    } else if score >= st.three {
        3
    } else if score >= st.two {
        2
    } else {
        1
    };
    Rating {
        org_id: l.org_id,
        name: l.name.clone(),
        score,
        stars,
        capped: false,
        items,
    }
}

fn stars_label(n: u8) -> String {
    "★".repeat(n as usize)
}

/// Score needed for the next star, if any.
pub fn next_star(score: f64, s: &Scheme) -> Option<f64> {
    [s.stars.two, s.stars.three, s.stars.four, s.stars.five]
        .into_iter()
        .find(|t| score < *t)
}

/// The ranking in chat: star counts, then the top orgs.
pub fn ranking_text(r: &Report, ratings: &[Rating], locale: &str, top: usize) -> String {
    let mut out = vec![
        t!(
            "stars.title",
            locale = locale,
            from = r.from.format("%Y-%m-%d"),
            to = r.to.format("%Y-%m-%d")
        )
        .into_owned(),
    ];
    let counts: Vec<String> = (1..=5u8)
        .rev()
        .map(|n| {
            let k = ratings.iter().filter(|x| x.stars == n).count();
            format!("{}{k}", stars_label(n))
        })
        .collect();
    out.push(counts.join(" · "));
    for (i, x) in ratings.iter().take(top).enumerate() {
        out.push(
            t!(
                "stars.rank_line",
                locale = locale,
                i = i + 1,
                org = x.name,
                score = num(x.score),
                stars = stars_label(x.stars)
            )
            .into_owned(),
        );
    }
    if ratings.len() > top {
        out.push(t!("stars.more", locale = locale, n = ratings.len() - top).into_owned());
    }
    out.join("\n")
}

/// One org's breakdown: a line per item with what would gain points.
pub fn breakdown_text(x: &Rating, r: &Report, s: &Scheme, locale: &str) -> String {
    let mut out = vec![
        t!(
            "stars.breakdown_title",
            locale = locale,
            org = x.name,
            from = r.from.format("%Y-%m-%d"),
            to = r.to.format("%Y-%m-%d"),
            score = num(x.score),
            stars = stars_label(x.stars)
        )
        .into_owned(),
    ];
    for i in &x.items {
        let mut line = t!(
            format!("stars.item.{}", i.key),
            locale = locale,
            done = i.done,
            asked = i.asked,
            got = num(i.got),
            max = num(i.max)
        )
        .into_owned();
        if i.got < i.max {
            line.push_str(&t!(
                format!("stars.todo.{}", i.key),
                locale = locale,
                n = (i.asked - i.done).max(1)
            ));
        } else {
            line.push_str(" ✅");
        }
        out.push(line);
    }
    if r.wishes.is_none() {
        out.push(t!("stars.no_wish_data", locale = locale).into_owned());
    }
    match next_star(x.score, s) {
        Some(need) => out.push(
            t!(
                "stars.next",
                locale = locale,
                n = num(round1(need - x.score)),
                stars = stars_label(x.stars + 1)
            )
            .into_owned(),
        ),
        None if x.capped => out.push(t!("stars.capped", locale = locale).into_owned()),
        None => {}
    }
    out.join("\n")
}

/// The rating as a Markdown table with each org's items.
pub fn markdown(r: &Report, ratings: &[Rating], s: &Scheme, locale: &str) -> String {
    let mut md = t!(
        "stars.md_title",
        locale = locale,
        from = r.from.format("%Y-%m-%d"),
        to = r.to.format("%Y-%m-%d")
    )
    .into_owned();
    md.push_str("\n\n");
    md.push_str(&t!("stars.md_header", locale = locale));
    md.push_str("\n|---|---|---|---|\n");
    for (i, x) in ratings.iter().enumerate() {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            i + 1,
            x.name,
            num(x.score),
            stars_label(x.stars)
        ));
    }
    for x in ratings {
        md.push('\n');
        md.push_str("## ");
        md.push_str(
            &breakdown_text(x, r, s, locale)
                .replace('\n', "\n- ")
                .replacen("\n- ", "\n\n- ", 1),
        );
        md.push('\n');
    }
    md
}

/// The rating as XLSX: one row per org, one column per item.
pub fn write_xlsx(
    ratings: &[Rating],
    locale: &str,
    path: &std::path::Path,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let bold = Format::new().set_bold();
    let mut wb = Workbook::new();
    let ws = wb
        .add_worksheet()
        .set_name(t!("stars.xlsx.sheet", locale = locale))?;
    ws.write_string_with_format(0, 0, t!("stars.xlsx.rank", locale = locale), &bold)?;
    ws.write_string_with_format(0, 1, t!("stars.xlsx.org", locale = locale), &bold)?;
    ws.write_string_with_format(0, 2, t!("stars.xlsx.score", locale = locale), &bold)?;
    ws.write_string_with_format(0, 3, t!("stars.xlsx.stars", locale = locale), &bold)?;
    if let Some(first) = ratings.first() {
        for (c, i) in first.items.iter().enumerate() {
            let h = t!(format!("stars.xlsx.{}", i.key), locale = locale);
            ws.write_string_with_format(0, 4 + c as u16, h, &bold)?;
        }
    }
    for (row, x) in ratings.iter().enumerate() {
        let row = row as u32 + 1;
        ws.write_number(row, 0, row as f64)?;
        crate::export::write_text(ws, row, 1, &x.name, None)?;
        ws.write_number(row, 2, x.score)?;
        ws.write_number(row, 3, x.stars as f64)?;
        for (c, i) in x.items.iter().enumerate() {
            ws.write_number(row, 4 + c as u16, i.got)?;
        }
    }
    wb.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_scheme_parses_and_adds_up() {
        let s = Scheme::parse(DEFAULT_SCHEME).unwrap();
        assert_eq!(s.stars.five, 90.0);
        assert_eq!(s.meetings.points, 30.0);
    }

    #[test]
    fn a_scheme_that_does_not_add_up_is_refused() {
        let bad = DEFAULT_SCHEME.replace("points = 30", "points = 31");
        assert!(Scheme::parse(&bad).unwrap_err().contains("101"));
    }

    #[test]
    fn months_span_years() {
        let m = months(
            NaiveDate::from_ymd_opt(2025, 11, 20).unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
        );
        assert_eq!(m, [(2025, 11), (2025, 12), (2026, 1), (2026, 2)]);
    }
}
