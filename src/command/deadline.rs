//! Dates and times as staff type them in notices and sign-up lists:
//! `3月5日18:00`, `3月5日 18:00`, `3-5 18:00`, `2026-03-05 18:00`,
//! `明天18点`, `后天 下午3点半`, `3月5日` (end of that day).
//!
//! Pure: the current local time comes from the caller. A fuller date module
//! will replace this; callers only use [`When`], [`parse_deadline`] and
//! [`split_datetime`].

use std::sync::LazyLock;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use regex::Regex;

/// Date, then an optional time. Anchored at the start of the text.
static DATETIME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(?:(?P<y>\d{4})[年\-/.])?(?P<m>\d{1,2})[月\-/.](?P<d>\d{1,2})[日号]?|(?P<rel>今天|明天|后天))(?:\s*(?P<ap>上午|下午|晚上|中午|早上)?\s*(?P<h>\d{1,2})(?::(?P<mi>\d{2})|[点时](?:(?P<mi2>\d{1,2})分?|(?P<half>半))?))?",
    )
    .ok()
});

/// The length in bytes of a date-time at the start of `text`, if any
/// (`"3月5日 09:00 开会"` → the length of `"3月5日 09:00"`).
pub fn split_datetime(text: &str) -> Option<(&str, &str)> {
    let re = DATETIME.as_ref()?;
    let m = re.find(text)?;
    Some((&text[..m.end()], &text[m.end()..]))
}

/// Parse a deadline or start time relative to `now_local`. A date without a
/// year is this year's, or next year's when that date has long passed
/// (typing `1月5日` in December). A date without a time means the end of
/// that day (23:59).
pub fn parse_deadline(text: &str, now_local: NaiveDateTime) -> Option<NaiveDateTime> {
    let re = DATETIME.as_ref()?;
    let text = text.trim();
    let c = re.captures(text)?;
    if c.get(0)?.end() != text.len() {
        return None;
    }
    let today = now_local.date();
    let date = if let Some(rel) = c.name("rel") {
        let days = match rel.as_str() {
            "今天" => 0,
            "明天" => 1,
            _ => 2,
        };
        today + Duration::days(days)
    } else {
        let m: u32 = c.name("m")?.as_str().parse().ok()?;
        let d: u32 = c.name("d")?.as_str().parse().ok()?;
        match c.name("y") {
            Some(y) => NaiveDate::from_ymd_opt(y.as_str().parse().ok()?, m, d)?,
            None => {
                let this = NaiveDate::from_ymd_opt(today.year(), m, d)?;
                if this < today - Duration::days(180) {
                    NaiveDate::from_ymd_opt(today.year() + 1, m, d)?
                } else {
                    this
                }
            }
        }
    };
    let time = match c.name("h") {
        None => NaiveTime::from_hms_opt(23, 59, 0)?,
        Some(h) => {
            let mut h: u32 = h.as_str().parse().ok()?;
            let mi: u32 = match (c.name("mi").or(c.name("mi2")), c.name("half")) {
                (Some(v), _) => v.as_str().parse().ok()?,
                (None, Some(_)) => 30,
                _ => 0,
            };
            if let Some(ap) = c.name("ap")
                && matches!(ap.as_str(), "下午" | "晚上")
                && h < 12
            {
                h += 12;
            }
            NaiveTime::from_hms_opt(h, mi, 0)?
        }
    };
    Some(date.and_time(time))
}

/// A time a command names (a deadline, a start, when to send): what the
/// person typed, and the local time it reads as, or [`BadTime`] when it
/// reads as none. Services turn it into UTC and check it lies ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    /// As typed (trimmed): shown in replies, stored where the time is.
    pub text: String,
    /// The local date and time.
    pub at: Result<NaiveDateTime, BadTime>,
}

/// A time that names no moment (`下周`, `2月30日`, `25:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a date and time")]
pub struct BadTime;

impl When {
    /// `text` as a deadline or start time ([`parse_deadline`]) read at
    /// `now_local`.
    pub fn deadline(text: &str, now_local: NaiveDateTime) -> When {
        When::read(text, |t| parse_deadline(t, now_local))
    }

    /// `text` read by `parse`, its original kept.
    pub fn read(text: &str, parse: impl FnOnce(&str) -> Option<NaiveDateTime>) -> When {
        let text = text.trim();
        When {
            text: text.to_string(),
            at: parse(text).ok_or(BadTime),
        }
    }
}

/// A local date and time, for the tests of `command/`.
#[cfg(test)]
pub(crate) fn at(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, mi, 0))
        .expect("a valid test date")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let now = at(2026, 3, 1, 10, 0);
        let cases: &[(&str, Option<NaiveDateTime>)] = &[
            ("3月5日18:00", Some(at(2026, 3, 5, 18, 0))),
            ("3月5日 18:00", Some(at(2026, 3, 5, 18, 0))),
            ("3月5号 18点", Some(at(2026, 3, 5, 18, 0))),
            ("3-5 9:30", Some(at(2026, 3, 5, 9, 30))),
            ("2027-01-02 08:00", Some(at(2027, 1, 2, 8, 0))),
            ("3月5日", Some(at(2026, 3, 5, 23, 59))),
            ("明天18点", Some(at(2026, 3, 2, 18, 0))),
            ("后天 下午3点半", Some(at(2026, 3, 3, 15, 30))),
            ("今天 晚上8点", Some(at(2026, 3, 1, 20, 0))),
            ("1月5日", Some(at(2026, 1, 5, 23, 59))),
            ("2月30日", None),
            ("3月5日 25:00", None),
            ("下周", None),
            ("", None),
            ("3月5日18:00 以后", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_deadline(text, now), *want, "{text:?}");
        }
        // In December, January means next year.
        assert_eq!(
            parse_deadline("1月5日 9:00", at(2026, 12, 20, 9, 0)),
            Some(at(2027, 1, 5, 9, 0))
        );
    }

    #[test]
    fn when_keeps_the_text() {
        let now = at(2026, 3, 1, 10, 0);
        let w = When::deadline(" 3月5日 18:00 ", now);
        assert_eq!(w.text, "3月5日 18:00");
        assert_eq!(w.at, Ok(at(2026, 3, 5, 18, 0)));
        for bad in [
            "下周五",
            "2月30日",
            "3月5日 25:00",
            "13月1日",
            "3月5日18:00 以后",
        ] {
            let w = When::deadline(bad, now);
            assert_eq!(w.text, bad);
            assert_eq!(w.at, Err(BadTime), "{bad:?}");
        }
    }

    #[test]
    fn split() {
        assert_eq!(
            split_datetime("3月5日 09:00 防汛通知"),
            Some(("3月5日 09:00", " 防汛通知"))
        );
        assert_eq!(split_datetime("防汛通知"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let now = at(2026, 3, 1, 10, 0);
            let _ = parse_deadline(&s, now);
            let _ = split_datetime(&s);
        }
    }
}
