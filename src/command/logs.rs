//! `/log TEXT` (记录): one activity per non-empty line, or per part of a
//! line that holds several (`3月13日团课32人，3月14日支委会7人`), read by
//! [`activity::parse_activity_parts`] at the message's date with the
//! county's rules. Staff may name the org first (`/log 县一中 3月5日 团课 30人`);
//! whether the first word names an org only the service can tell, so the
//! records are also read without that word ([`LogArgs::lead`]).

use chrono::NaiveDate;

use super::activity::{self, ActivityReport, ActivityRules};
use super::dates::BadDay;
use super::scope::OrgRef;

/// `/log` as typed, and its records as read.
#[derive(Debug, Clone, PartialEq)]
pub struct LogArgs {
    /// As typed.
    pub text: String,
    /// The records of the whole text.
    pub lines: Vec<LogLine>,
    /// The first word, in case it names the org the records are for.
    pub lead: Option<LogLead>,
}

/// The first word of a `/log` and what follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLead {
    /// The first word, as typed.
    pub org: OrgRef,
    /// The text after it, as typed.
    pub rest: String,
    /// The records of `rest`.
    pub lines: Vec<LogLine>,
}

/// One activity: the line, or the part of a line, it was written in and
/// the record read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// The line or part as typed (trimmed).
    pub line: String,
    pub report: ActivityReport,
    /// The day it means ([`super::dates::activity_date`]): a near-future
    /// reading of a year-less date, which the service refuses as not yet
    /// happened. A part without a day of its own has the day of the part
    /// before it.
    pub date: NaiveDate,
    /// The day written does not exist (`2月30日`, `13月2日`): why. Nothing
    /// of the message may be recorded.
    pub bad_day: Option<BadDay>,
}

impl LogArgs {
    /// `text` read on `today` with `rules`.
    pub fn parse(text: &str, today: NaiveDate, rules: &ActivityRules) -> LogArgs {
        let first_line = text.lines().next().unwrap_or_default();
        let first = first_line.split_whitespace().next().unwrap_or_default();
        let lead = OrgRef::new(first).map(|org| {
            let rest = text.trim_start()[first.len()..].trim_start().to_string();
            LogLead {
                org,
                lines: lines(&rest, today, rules),
                rest,
            }
        });
        LogArgs {
            text: text.to_string(),
            lines: lines(text, today, rules),
            lead,
        }
    }
}

/// One record per activity, with the text it came from.
pub fn lines(text: &str, today: NaiveDate, rules: &ActivityRules) -> Vec<LogLine> {
    activity::parse_activity_parts(text, today, rules)
        .into_iter()
        .map(|p| LogLine {
            line: p.text,
            report: p.report,
            date: p.date,
            bad_day: p.bad_day,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::category::Category;

    #[test]
    fn lines_and_lead() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 18).unwrap();
        let rules = ActivityRules::builtin();
        let a = LogArgs::parse(
            "县一中 3月5日 团课 30人\n\n 3月6日 支委会 7人 ",
            today,
            rules,
        );
        assert_eq!(a.text, "县一中 3月5日 团课 30人\n\n 3月6日 支委会 7人 ");
        let got: Vec<(&str, Category, Option<u32>)> = a
            .lines
            .iter()
            .map(|l| (l.line.as_str(), l.report.category, l.report.participants))
            .collect();
        assert_eq!(
            got,
            vec![
                ("县一中 3月5日 团课 30人", Category::LeagueLecture, Some(30)),
                ("3月6日 支委会 7人", Category::CommitteeMeeting, Some(7)),
            ]
        );
        let lead = a.lead.unwrap();
        assert_eq!(lead.org.as_str(), "县一中");
        assert_eq!(lead.rest, "3月5日 团课 30人\n\n 3月6日 支委会 7人 ");
        assert_eq!(lead.lines.len(), 2);
        assert_eq!(lead.lines[0].line, "3月5日 团课 30人");
        assert_eq!(
            lead.lines[0].report.date,
            NaiveDate::from_ymd_opt(2026, 3, 5).unwrap()
        );
        // Written on 3月18日, 4月2日 means next month, not last year.
        let a = LogArgs::parse("4月2日 团课 30人", today, rules);
        assert_eq!(
            a.lines[0].report.date,
            NaiveDate::from_ymd_opt(2025, 4, 2).unwrap()
        );
        assert_eq!(
            a.lines[0].date,
            NaiveDate::from_ymd_opt(2026, 4, 2).unwrap()
        );
        // One word: the lead leaves nothing to record.
        let a = LogArgs::parse("团课", today, rules);
        assert_eq!(a.lines.len(), 1);
        assert_eq!(a.lead.map(|l| l.lines.len()), Some(0));
        assert_eq!(LogArgs::parse("", today, rules).lead, None);
    }
}
