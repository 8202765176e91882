//! Dates, times and report periods as cadres write them in chat.
//!
//! Input is expected to be NFKC-normalised (see [`crate::command::normalize`]).
//! Numbers inside dates may be Arabic or Chinese (`三月五日`, `二〇二六年`).
//!
//! Grammar of one date expression:
//!
//! ```text
//! date     := ymd | md | short | relative | weekday | monthday
//! ymd      := YYYY ('-'|'/'|'.') M ('-'|'/'|'.') D     -- same separator twice
//!           | YYYY '年' M '月' D ('日'|'号')
//! md       := M '月' D ('日'|'号')?                      -- 3月5日, 三月五号
//! short    := M ('.'|'/'|'-') D                          -- 3.15, 3/8, 5-18; not when
//!                                                           glued to more digits or to a
//!                                                           measure word (3.5万, 3-5人)
//! relative := 大前天 | 前天 | 昨天 | 昨日 | 昨晚 | 今天 | 今日 | 今早 | 今晚
//!           | 明天 | 明日 | 明晚 | 后天 | 大后天
//! weekday  := week_ref? ('周'|'星期'|'礼拜') (一…六 | 日 | 天 | 1…7)
//! week_ref := 上 | 上个 (previous calendar week) | 本 | 这 | 这个 (this week)
//!           | 下 | 下个 (next week)                  -- weeks start on Monday
//! monthday := (本月|这个月|当月|上月|上个月|下月|下个月) D ('日'|'号')
//!           | D ('日'|'号')          -- only as a token of its own: `5号 团课`
//!                                       (clamped like a year-less date)
//! time     := period? H (':' MM | '点' ('半'|'整'|MM '分'?)? | '时' (MM '分')?)
//!           | period                                  -- 上午, 晚上 alone
//! period   := 凌晨 | 早上 | 早晨 | 清晨 | 上午 | 中午 | 午后 | 下午 | 傍晚 | 晚上 | 夜里 | 夜间 | 晚
//! ```
//!
//! Report periods ([`find_date_range`]) additionally accept `本周`, `上周`,
//! `本月`, `上月`, `本季度`, `上季度`, `本年`/`今年`, `去年`, `2026年`,
//! `上半年`/`下半年` (also after a year: `2025年上半年`, `去年下半年`),
//! `今年以来`/`年初以来` (January 1 to today), spans of months (`3-4月`,
//! `一至三月`, `2025年3-4月`),
//! `2026-03` / `2026年3月` / `3月` (whole month), `(2026年)第一季度`, and two
//! dates joined by `-`, `~`, `至`, `到`, `—` or `..` (`3月1日至6月30日`,
//! `3月1日-31日`, `2026-03-01..2026-06-30`).
//!
//! # Clamping policies
//!
//! A date written without a year (`12月30日`) or as a bare weekday (`周五`)
//! is ambiguous. Two policies resolve it, chosen by the caller via [`Clamp`]:
//!
//! * [`Clamp::Past`] — for *logging* what already happened: the latest such
//!   date **not after** today. `12月30日` read on 2026-01-05 is 2025-12-30;
//!   `周日` read on a Sunday is that same Sunday. [`find_date`] and
//!   [`find_date_range`] use it.
//! * [`Clamp::Future`] — for *deadlines and scheduled notices*: the earliest
//!   such date **on or after** today. `1月3日` read on 2026-12-20 is
//!   2027-01-03. [`find_datetime`] uses it.
//!
//! Unambiguous expressions are never clamped: `明天` stays tomorrow and
//! `2025-03-01` stays in 2025 under either policy, so the caller can tell a
//! future activity date (and refuse it) from a past deadline.
//!
//! A day that does not exist (`2月30日`, `2026-02-29`) is still recognised as
//! a date expression, but resolves to no date.

use std::ops::Range;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};

use crate::command::numerals::{is_cn_numeral_char, scan_number};

/// How to resolve dates that omit the year or the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clamp {
    /// Latest matching date not after today (activity logs).
    Past,
    /// Earliest matching date on or after today (deadlines, schedules).
    Future,
}

/// One date expression found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateMatch {
    /// Byte range of the expression.
    pub span: Range<usize>,
    /// The day it names, if it names one that exists.
    pub date: Option<NaiveDate>,
    /// True when the expression is meant to name a single day (so `date:
    /// None` means the day is invalid, like `2月30日`); false for month,
    /// year or bare day-of-month expressions (`3月`, `2026年`, `31日`).
    pub names_day: bool,
}

/// A date with an optional time of day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTimeMatch {
    pub date: NaiveDate,
    /// `None` when no hour was written (`明天`, `明天上午`).
    pub time: Option<NaiveTime>,
    /// Byte range of the date and time together.
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WeekRef {
    Bare,
    This,
    Last,
    Next,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expr {
    Ymd {
        y: Option<i32>,
        m: u32,
        d: u32,
    },
    Relative(i64),
    Weekday {
        week: WeekRef,
        wd: u32,
    },
    MonthDay {
        offset: i32,
        d: u32,
    },
    Month {
        y: Option<i32>,
        m: u32,
    },
    Year(i32),
    Day(u32),
    /// A standalone `5号`: that day of this month, clamped.
    DayToken(u32),
}

impl Expr {
    fn names_day(self) -> bool {
        matches!(
            self,
            Expr::Ymd { .. }
                | Expr::Relative(_)
                | Expr::Weekday { .. }
                | Expr::MonthDay { .. }
                | Expr::DayToken(_)
        )
    }
}

/// Characters that, right after `M.D`/`M/D`/`M-D`, show the digits are a
/// quantity rather than a date (`3.5万`, `3-5人`, `1.5小时`).
const NUMERIC_SUFFIX: &str = "多余来万千亿百元角%‰倍米吨斤公小个份名人次位株棵篇册副双支组本件套场箱袋盒期户所家批条张幅块辆台项处分秒岁度折里";

const RELATIVE: &[(&str, i64)] = &[
    ("大前天", -3),
    ("大后天", 3),
    ("前天", -2),
    ("昨天", -1),
    ("昨日", -1),
    ("昨晚", -1),
    ("今天", 0),
    ("今日", 0),
    ("今早", 0),
    ("今晚", 0),
    ("明天", 1),
    ("明日", 1),
    ("明晚", 1),
    ("后天", 2),
];

const WEEK_PREFIX: &[(&str, WeekRef)] = &[
    ("上个", WeekRef::Last),
    ("下个", WeekRef::Next),
    ("这个", WeekRef::This),
    ("上", WeekRef::Last),
    ("下", WeekRef::Next),
    ("本", WeekRef::This),
    ("这", WeekRef::This),
    ("", WeekRef::Bare),
];

const WEEK_WORD: &[&str] = &["星期", "礼拜", "周"];

const MONTH_PREFIX: &[(&str, i32)] = &[
    ("这个月", 0),
    ("上个月", -1),
    ("下个月", 1),
    ("本月", 0),
    ("当月", 0),
    ("上月", -1),
    ("下月", 1),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayPart {
    Dawn,
    Am,
    Noon,
    Pm,
}

const PERIODS: &[(&str, DayPart)] = &[
    ("凌晨", DayPart::Dawn),
    ("早上", DayPart::Am),
    ("早晨", DayPart::Am),
    ("清晨", DayPart::Am),
    ("上午", DayPart::Am),
    ("中午", DayPart::Noon),
    ("午后", DayPart::Pm),
    ("下午", DayPart::Pm),
    ("傍晚", DayPart::Pm),
    ("晚上", DayPart::Pm),
    ("夜里", DayPart::Pm),
    ("夜间", DayPart::Pm),
    ("晚", DayPart::Pm),
];

/// End of day, used by [`find_datetime`] when no hour is given.
pub const END_OF_DAY: NaiveTime = match NaiveTime::from_hms_opt(23, 59, 59) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

// ---------------------------------------------------------------- cursor helpers

fn char_at(s: &str, i: usize) -> Option<char> {
    s.get(i..)?.chars().next()
}

fn prev_char(s: &str, i: usize) -> Option<char> {
    s.get(..i)?.chars().next_back()
}

fn starts(s: &str, i: usize, word: &str) -> bool {
    s.get(i..).is_some_and(|r| r.starts_with(word))
}

/// Skips ASCII spaces.
fn skip_spaces(s: &str, mut i: usize) -> usize {
    while s.as_bytes().get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// An unsigned integer at `i`: Arabic (up to 4 digits, not followed by more
/// digits) or Chinese (`十二`, `二〇二六`). Returns (value, end, arabic digit count
/// or 0 for Chinese).
fn read_uint(s: &str, i: usize) -> Option<(u32, usize, usize)> {
    let b = s.as_bytes();
    let c = char_at(s, i)?;
    if c.is_ascii_digit() {
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let n = j - i;
        if n > 4 {
            return None;
        }
        let v: u32 = s[i..j].parse().ok()?;
        return Some((v, j, n));
    }
    if is_cn_numeral_char(c) {
        // Chinese numerals only: stop at the first Arabic digit
        // a date number is never longer than 8 numeral characters (二〇二六, 三十一)
        let end_cn = s[i..]
            .char_indices()
            .take(9)
            .find(|&(k, c)| !is_cn_numeral_char(c) || k >= 8 * 3)
            .map_or(s.len(), |(k, _)| i + k);
        let (v, len) = scan_number(&s[i..end_cn])?;
        if v.fract() != 0.0 || !(0.0..=9999.0).contains(&v) {
            return None;
        }
        return Some((v as u32, i + len, 0));
    }
    None
}

fn day_marker(s: &str, i: usize) -> Option<usize> {
    match char_at(s, i) {
        Some('日' | '号') => Some(i + 3),
        _ => None,
    }
}

/// True when `i` ends a number cleanly: no more digits and no measure word.
fn clean_number_end(s: &str, i: usize) -> bool {
    match char_at(s, i) {
        None => true,
        Some(c) => {
            !(c.is_ascii_alphanumeric() || NUMERIC_SUFFIX.contains(c) || is_cn_numeral_char(c))
        }
    }
}

fn ends_with_period(s: &str, i: usize) -> bool {
    let head = s.get(..i).unwrap_or("").trim_end_matches(' ');
    PERIODS
        .iter()
        .any(|(w, _)| w.chars().count() > 1 && head.ends_with(w))
}

// ---------------------------------------------------------------- expression parser

/// The longest date-like expression starting exactly at `i`.
fn expr_at(s: &str, i: usize) -> Option<(Expr, usize)> {
    let c = char_at(s, i)?;
    if c.is_ascii_digit() {
        if let Some(p) = prev_char(s, i)
            && (p.is_ascii_alphanumeric() || matches!(p, '.' | ':' | ','))
        {
            return None;
        }
        return numeric_expr(s, i, true);
    }
    if is_cn_numeral_char(c) {
        if prev_char(s, i).is_some_and(is_cn_numeral_char) {
            return None;
        }
        return numeric_expr(s, i, false);
    }
    match c {
        '大' | '前' | '昨' | '今' | '明' | '后' => RELATIVE
            .iter()
            .find(|(w, _)| starts(s, i, w))
            .map(|&(w, n)| (Expr::Relative(n), i + w.len())),
        '上' | '下' | '本' | '这' | '当' | '周' | '星' | '礼' => {
            weekday_at(s, i).or_else(|| month_day_at(s, i))
        }
        _ => None,
    }
}

fn weekday_at(s: &str, i: usize) -> Option<(Expr, usize)> {
    for &(prefix, week) in WEEK_PREFIX {
        if !starts(s, i, prefix) {
            continue;
        }
        let j = i + prefix.len();
        for word in WEEK_WORD {
            if !starts(s, j, word) {
                continue;
            }
            let k = j + word.len();
            let wd = match char_at(s, k)? {
                '一' | '1' => 0,
                '二' | '2' => 1,
                '三' | '3' => 2,
                '四' | '4' => 3,
                '五' | '5' => 4,
                '六' | '6' => 5,
                '日' | '天' | '七' | '7' => 6,
                _ => continue,
            };
            let end = k + char_at(s, k).map_or(0, char::len_utf8);
            // 周一二 or 周12: not a weekday
            if char_at(s, end).is_some_and(|c| c.is_ascii_digit() || is_cn_numeral_char(c)) {
                continue;
            }
            return Some((Expr::Weekday { week, wd }, end));
        }
    }
    None
}

fn month_day_at(s: &str, i: usize) -> Option<(Expr, usize)> {
    let &(w, offset) = MONTH_PREFIX.iter().find(|(w, _)| starts(s, i, w))?;
    let (d, e, _) = read_uint(s, i + w.len())?;
    let end = day_marker(s, e)?;
    (1..=31)
        .contains(&d)
        .then_some((Expr::MonthDay { offset, d }, end))
}

fn numeric_expr(s: &str, i: usize, arabic: bool) -> Option<(Expr, usize)> {
    let (n1, e1, nd1) = read_uint(s, i)?;
    let next = char_at(s, e1)?;
    match next {
        '年' if (arabic && nd1 == 4) || (!arabic && n1 >= 1000) => {
            let y = i32::try_from(n1).ok()?;
            let j = skip_spaces(s, e1 + 3);
            if let Some((m, e2, _)) = read_uint(s, j)
                && char_at(s, e2) == Some('月')
                && (1..=12).contains(&m)
            {
                let k = skip_spaces(s, e2 + 3);
                if let Some((d, e3, _)) = read_uint(s, k)
                    && let Some(end) = day_marker(s, e3)
                {
                    return Some((Expr::Ymd { y: Some(y), m, d }, end));
                }
                return Some((Expr::Month { y: Some(y), m }, month_suffix(s, e2 + 3)));
            }
            // 2026年13月2日: a day in a month that does not exist
            if let Some((m, e2, _)) = read_uint(s, j)
                && char_at(s, e2) == Some('月')
                && m <= 99
                && let Some((d, e3, _)) = read_uint(s, skip_spaces(s, e2 + 3))
                && let Some(end) = day_marker(s, e3)
            {
                return Some((Expr::Ymd { y: Some(y), m, d }, end));
            }
            let end = if char_at(s, e1 + 3) == Some('度') {
                e1 + 6
            } else {
                e1 + 3
            };
            Some((Expr::Year(y), end))
        }
        '-' | '/' | '.' if arabic && nd1 == 4 => {
            let y = i32::try_from(n1).ok()?;
            let (m, e2, nd2) = read_uint(s, e1 + 1)?;
            if nd2 == 0 || nd2 > 2 || !(1..=12).contains(&m) {
                return None;
            }
            if char_at(s, e2) == Some(next)
                && let Some((d, e3, nd3)) = read_uint(s, e2 + 1)
                && (1..=2).contains(&nd3)
                && !char_at(s, e3).is_some_and(|c| c.is_ascii_digit())
            {
                return Some((Expr::Ymd { y: Some(y), m, d }, e3));
            }
            // 2026-03 as a month (not 2026.3, which reads as a decimal)
            (next != '.' && clean_number_end(s, e2) && char_at(s, e2) != Some(next))
                .then_some((Expr::Month { y: Some(y), m }, e2))
        }
        '-' | '/' | '.' if arabic && nd1 <= 2 => {
            let (d, e2, nd2) = read_uint(s, e1 + 1)?;
            if nd2 == 0 || nd2 > 2 || !(1..=12).contains(&n1) || !(1..=31).contains(&d) {
                return None;
            }
            // 1.2.3 or 3/8/2026: some other notation
            if char_at(s, e2) == Some(next)
                && char_at(s, e2 + 1).is_some_and(|c| c.is_ascii_digit())
            {
                return None;
            }
            if !clean_number_end(s, e2) || (next == '.' && ends_with_period(s, i)) {
                return None;
            }
            Some((Expr::Ymd { y: None, m: n1, d }, e2))
        }
        '月' => {
            if !(1..=12).contains(&n1) {
                // 13月2日: meant as a day, but there is no such month
                let j = skip_spaces(s, e1 + 3);
                let (d, e2, _) = read_uint(s, j)?;
                let end = day_marker(s, e2)?;
                return (n1 <= 99).then_some((Expr::Ymd { y: None, m: n1, d }, end));
            }
            let j = skip_spaces(s, e1 + 3);
            if let Some((d, e2, _)) = read_uint(s, j) {
                if let Some(end) = day_marker(s, e2) {
                    return Some((Expr::Ymd { y: None, m: n1, d }, end));
                }
                if clean_number_end(s, e2) && j == e1 + 3 {
                    return Some((Expr::Ymd { y: None, m: n1, d }, e2));
                }
            }
            Some((Expr::Month { y: None, m: n1 }, month_suffix(s, e1 + 3)))
        }
        '日' | '号' if (1..=31).contains(&n1) => Some((Expr::Day(n1), e1 + 3)),
        _ => None,
    }
}

/// Swallows `份` in `3月份`.
fn month_suffix(s: &str, i: usize) -> usize {
    if char_at(s, i) == Some('份') {
        i + 3
    } else {
        i
    }
}

// ---------------------------------------------------------------- resolution

fn monday_of(d: NaiveDate) -> Option<NaiveDate> {
    d.checked_sub_days(Days::new(u64::from(d.weekday().num_days_from_monday())))
}

fn shift_month(y: i32, m: u32, k: i32) -> (i32, u32) {
    let idx = y * 12 + (m as i32 - 1) + k;
    (idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1)
}

fn month_bounds(y: i32, m: u32) -> Option<(NaiveDate, NaiveDate)> {
    let start = NaiveDate::from_ymd_opt(y, m, 1)?;
    let (ny, nm) = shift_month(y, m, 1);
    let end = NaiveDate::from_ymd_opt(ny, nm, 1)?.pred_opt()?;
    Some((start, end))
}

/// The year a year-less `m`月`d`日 falls in: this year, or the one before
/// (past) or after (future) when this year's day is on the wrong side of
/// today. The day is then that year's or none: 2月29日 in a year that is not
/// a leap year does not exist (it is never moved to another year).
fn yearless_year(m: u32, d: u32, today: NaiveDate, clamp: Clamp) -> i32 {
    let y = today.year();
    let here = (today.month(), today.day());
    match clamp {
        Clamp::Past if (m, d) > here => y - 1,
        Clamp::Future if (m, d) < here => y + 1,
        _ => y,
    }
}

fn yearless(m: u32, d: u32, today: NaiveDate, clamp: Clamp) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(yearless_year(m, d, today, clamp), m, d)
}

fn resolve(e: Expr, today: NaiveDate, clamp: Clamp) -> Option<NaiveDate> {
    match e {
        Expr::Ymd { y: Some(y), m, d } => NaiveDate::from_ymd_opt(y, m, d),
        Expr::Ymd { y: None, m, d } => yearless(m, d, today, clamp),
        Expr::Relative(n) => {
            if n >= 0 {
                today.checked_add_days(Days::new(n.unsigned_abs()))
            } else {
                today.checked_sub_days(Days::new(n.unsigned_abs()))
            }
        }
        Expr::Weekday { week, wd } => {
            let cur = today.weekday().num_days_from_monday();
            let monday = monday_of(today)?;
            match (week, clamp) {
                (WeekRef::Bare, Clamp::Past) => {
                    today.checked_sub_days(Days::new(u64::from((cur + 7 - wd) % 7)))
                }
                (WeekRef::Bare, Clamp::Future) => {
                    today.checked_add_days(Days::new(u64::from((wd + 7 - cur) % 7)))
                }
                (WeekRef::This, _) => monday.checked_add_days(Days::new(u64::from(wd))),
                (WeekRef::Last, _) => monday
                    .checked_sub_days(Days::new(7))?
                    .checked_add_days(Days::new(u64::from(wd))),
                (WeekRef::Next, _) => monday.checked_add_days(Days::new(7 + u64::from(wd))),
            }
        }
        Expr::DayToken(d) => resolve_day_token(d, today, clamp),
        Expr::MonthDay { offset, d } => {
            let (y, m) = shift_month(today.year(), today.month(), offset);
            NaiveDate::from_ymd_opt(y, m, d)
        }
        Expr::Month { .. } | Expr::Year(_) | Expr::Day(_) => None,
    }
}

/// A standalone `5日`/`5号` token: that day of the current month, clamped
/// like a year-less date (past: this or last month; future: this or next).
fn resolve_day_token(d: u32, today: NaiveDate, clamp: Clamp) -> Option<NaiveDate> {
    (0..=2).find_map(|k| {
        let off = match clamp {
            Clamp::Past => -k,
            Clamp::Future => k,
        };
        let (y, m) = shift_month(today.year(), today.month(), off);
        NaiveDate::from_ymd_opt(y, m, d).filter(|x| match clamp {
            Clamp::Past => *x <= today,
            Clamp::Future => *x >= today,
        })
    })
}

fn standalone(s: &str, span: &Range<usize>) -> bool {
    let sep = |c: char| c.is_whitespace() || matches!(c, ',' | ';' | '。' | '、' | ':');
    prev_char(s, span.start).is_none_or(sep) && char_at(s, span.end).is_none_or(sep)
}

/// Calls `f` for each date expression, left to right, without overlaps.
fn for_each_expr(text: &str, mut f: impl FnMut(Expr, Range<usize>) -> bool) {
    let mut i = 0;
    while i < text.len() {
        if let Some((e, end)) = expr_at(text, i)
            && end > i
        {
            // a standalone 5号 names a day of the current month
            let e = match e {
                Expr::Day(d) if standalone(text, &(i..end)) => Expr::DayToken(d),
                other => other,
            };
            if !f(e, i..end) {
                return;
            }
            i = end;
            continue;
        }
        i += char_at(text, i).map_or(1, char::len_utf8);
    }
}

// ---------------------------------------------------------------- impossible days

/// Why a date that was written names no day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadDay {
    /// `13月2日`: there is no such month.
    NoMonth { m: u32 },
    /// `2月30日`, `4月31日`: that month never has that day.
    NoDay { m: u32, d: u32 },
    /// `2月29日` in a year that is not a leap year.
    NotLeap { y: i32 },
}

/// Why `e`, which names a day, resolves to none; `None` when it is a day.
fn bad_day_of(e: Expr, today: NaiveDate, clamp: Clamp) -> Option<BadDay> {
    if resolve(e, today, clamp).is_some() {
        return None;
    }
    let (y, m, d) = match e {
        Expr::Ymd { y: Some(y), m, d } => (y, m, d),
        Expr::Ymd { y: None, m, d } => (yearless_year(m, d, today, clamp), m, d),
        Expr::MonthDay { offset, d } => {
            let (y, m) = shift_month(today.year(), today.month(), offset);
            (y, m, d)
        }
        _ => return None,
    };
    Some(if !(1..=12).contains(&m) {
        BadDay::NoMonth { m }
    } else if (m, d) == (2, 29) {
        BadDay::NotLeap { y }
    } else {
        BadDay::NoDay { m, d }
    })
}

/// The first written day that does not exist (`2月30日`, `4月31日`,
/// `13月2日`, `2月29日` in a common year) and why, read with `clamp`.
pub fn find_bad_day(text: &str, today: NaiveDate, clamp: Clamp) -> Option<(BadDay, Range<usize>)> {
    let mut found = None;
    for_each_expr(text, |e, span| {
        if e.names_day()
            && let Some(bad) = bad_day_of(e, today, clamp)
        {
            found = Some((bad, span));
            return false;
        }
        true
    });
    found
}

// ---------------------------------------------------------------- public API: dates

/// Every date expression in `text` (days, months, years, bare day numbers),
/// left to right, resolved with `clamp`. Callers use the spans to keep date
/// digits out of counts.
pub fn date_expressions(text: &str, today: NaiveDate, clamp: Clamp) -> Vec<DateMatch> {
    let mut out = Vec::new();
    for_each_expr(text, |e, span| {
        out.push(DateMatch {
            span,
            date: resolve(e, today, clamp),
            names_day: e.names_day(),
        });
        true
    });
    out
}

/// The first valid single-day expression with an explicit clamping policy.
pub fn find_date_with(
    text: &str,
    today: NaiveDate,
    clamp: Clamp,
) -> Option<(NaiveDate, Range<usize>)> {
    let mut found = None;
    for_each_expr(text, |e, span| {
        if let Some(d) = resolve(e, today, clamp) {
            found = Some((d, span));
            return false;
        }
        true
    });
    found
}

/// The first date expression in `text` naming a valid day, past-clamped
/// ([`Clamp::Past`]): the policy for logging activities.
///
/// An invalid day (`2月30日`) is skipped and the search goes on.
pub fn find_date(text: &str, today: NaiveDate) -> Option<(NaiveDate, Range<usize>)> {
    find_date_with(text, today, Clamp::Past)
}

// ---------------------------------------------------------------- times

/// A time of day starting exactly at `i`. `Some((None, end))` for a bare
/// period word such as `上午`.
fn time_at(s: &str, i: usize) -> Option<(Option<NaiveTime>, usize)> {
    let first = char_at(s, i)?;
    if !(first.is_ascii_digit()
        || is_cn_numeral_char(first)
        || matches!(
            first,
            '凌' | '早' | '清' | '上' | '中' | '午' | '下' | '傍' | '晚' | '夜'
        ))
    {
        return None;
    }
    let mut j = i;
    let mut period = None;
    let mut period_multi = false;
    if let Some(&(w, p)) = PERIODS.iter().find(|(w, _)| starts(s, i, w)) {
        period = Some(p);
        period_multi = w.chars().count() > 1;
        j = skip_spaces(s, i + w.len());
    }
    let bare_period = || period_multi.then_some((None, i + period_word_len(s, i)));
    let Some(c) = char_at(s, j) else {
        return bare_period();
    };
    if period.is_none()
        && c.is_ascii_digit()
        && prev_char(s, j).is_some_and(|p| p.is_ascii_alphanumeric() || matches!(p, '.' | ':'))
    {
        return None;
    }
    let Some((h, e1, nd)) = read_uint(s, j) else {
        return bare_period();
    };
    if nd > 2 || h > 24 {
        return bare_period();
    }
    let (minute, end) = match char_at(s, e1) {
        Some(':') if nd > 0 => {
            let (mm, e2, nd2) = read_uint(s, e1 + 1)?;
            if nd2 != 2 || mm > 59 {
                return bare_period();
            }
            (mm, e2)
        }
        Some('点') => {
            let k = e1 + 3;
            match char_at(s, k) {
                Some('半') => (30, k + 3),
                Some('整') => (0, k + 3),
                _ => match read_uint(s, k) {
                    Some((mm, e2, _)) if mm <= 59 => {
                        let end = if char_at(s, e2) == Some('分') {
                            e2 + 3
                        } else {
                            e2
                        };
                        (mm, end)
                    }
                    _ => (0, k),
                },
            }
        }
        Some('时') => {
            let k = e1 + 3;
            match read_uint(s, k) {
                Some((mm, e2, _)) if mm <= 59 && char_at(s, e2) == Some('分') => (mm, e2 + 3),
                _ => (0, k),
            }
        }
        _ => return bare_period(),
    };
    let mut hour = h;
    match period {
        Some(DayPart::Pm) if hour < 12 => hour += 12,
        Some(DayPart::Noon) if hour < 11 => hour += 12,
        Some(DayPart::Dawn) if hour == 12 => hour = 0,
        _ => {}
    }
    let t = if hour >= 24 {
        END_OF_DAY
    } else {
        NaiveTime::from_hms_opt(hour, minute, 0)?
    };
    Some((Some(t), end))
}

fn period_word_len(s: &str, i: usize) -> usize {
    PERIODS
        .iter()
        .find(|(w, _)| starts(s, i, w))
        .map_or(0, |(w, _)| w.len())
}

/// Byte ranges of every time-of-day expression (`18:00`, `下午3点`, `上午`).
pub fn time_expressions(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if let Some((_, end)) = time_at(text, i)
            && end > i
        {
            out.push(i..end);
            i = end;
            continue;
        }
        i += char_at(text, i).map_or(1, char::len_utf8);
    }
    out
}

/// The first time of day with an hour in `text`.
pub fn find_time(text: &str) -> Option<(NaiveTime, Range<usize>)> {
    let mut i = 0;
    while i < text.len() {
        if let Some((t, end)) = time_at(text, i)
            && end > i
        {
            if let Some(t) = t {
                return Some((t, i..end));
            }
            i = end;
            continue;
        }
        i += char_at(text, i).map_or(1, char::len_utf8);
    }
    None
}

/// Date and optional time for deadlines and scheduled notices, future-clamped
/// ([`Clamp::Future`]). A time written without a date means today.
pub fn find_datetime_parts(text: &str, today: NaiveDate) -> Option<DateTimeMatch> {
    let Some((date, span)) = find_date_with(text, today, Clamp::Future) else {
        let (t, span) = find_time(text)?;
        return Some(DateTimeMatch {
            date: today,
            time: Some(t),
            span,
        });
    };
    let j = skip_spaces(text, span.end);
    let evening = text[span.clone()].ends_with('晚');
    match time_at(text, j) {
        Some((t, end)) => {
            let explicit_period = PERIODS.iter().any(|(w, _)| starts(text, j, w));
            let t = match t {
                // 明晚8点: the evening word carries the period
                Some(t) if evening && !explicit_period && t.hour() < 12 => {
                    Some(t.overflowing_add_signed(TimeDelta::hours(12)).0)
                }
                other => other,
            };
            Some(DateTimeMatch {
                date,
                time: t,
                span: span.start..end,
            })
        }
        None => Some(DateTimeMatch {
            date,
            time: None,
            span,
        }),
    }
}

/// Like [`find_datetime_parts`]; a missing hour becomes [`END_OF_DAY`]
/// (deadline semantics: "by 3月31日" means until the end of that day).
pub fn find_datetime(text: &str, today: NaiveDate) -> Option<(NaiveDateTime, Range<usize>)> {
    find_datetime_parts(text, today)
        .map(|m| (m.date.and_time(m.time.unwrap_or(END_OF_DAY)), m.span))
}

// ---------------------------------------------------------------- report periods

const RANGE_SEPARATORS: &[&str] = &["..", "-", "~", "至", "到", "—", "–", "〜"];

const PERIOD_WORDS: &[(&str, PeriodWord)] = &[
    // before 今年 / 本年: the longer words first
    ("今年以来", PeriodWord::YearToDate),
    ("本年以来", PeriodWord::YearToDate),
    ("年初以来", PeriodWord::YearToDate),
    ("年初至今", PeriodWord::YearToDate),
    ("今年至今", PeriodWord::YearToDate),
    ("上半年", PeriodWord::FirstHalf),
    ("下半年", PeriodWord::SecondHalf),
    ("本星期", PeriodWord::ThisWeek),
    ("这星期", PeriodWord::ThisWeek),
    ("本周", PeriodWord::ThisWeek),
    ("这周", PeriodWord::ThisWeek),
    ("上个星期", PeriodWord::LastWeek),
    ("上星期", PeriodWord::LastWeek),
    ("上周", PeriodWord::LastWeek),
    ("这个月", PeriodWord::ThisMonth),
    ("本月", PeriodWord::ThisMonth),
    ("当月", PeriodWord::ThisMonth),
    ("上个月", PeriodWord::LastMonth),
    ("上月", PeriodWord::LastMonth),
    ("这个季度", PeriodWord::ThisQuarter),
    ("本季度", PeriodWord::ThisQuarter),
    ("本季", PeriodWord::ThisQuarter),
    ("上个季度", PeriodWord::LastQuarter),
    ("上季度", PeriodWord::LastQuarter),
    ("本年度", PeriodWord::ThisYear),
    ("本年", PeriodWord::ThisYear),
    ("今年", PeriodWord::ThisYear),
    ("去年", PeriodWord::LastYear),
    ("上一年", PeriodWord::LastYear),
];

#[derive(Debug, Clone, Copy)]
enum PeriodWord {
    ThisWeek,
    LastWeek,
    ThisMonth,
    LastMonth,
    ThisQuarter,
    LastQuarter,
    ThisYear,
    LastYear,
    /// January to June of this year.
    FirstHalf,
    /// July to December: this year's once it has started, else last year's.
    SecondHalf,
    /// From January 1 to today.
    YearToDate,
}

/// January–June (`first`) or July–December of `y`.
fn half_bounds(y: i32, first: bool) -> Option<(NaiveDate, NaiveDate)> {
    if first {
        Some((month_bounds(y, 1)?.0, month_bounds(y, 6)?.1))
    } else {
        Some((month_bounds(y, 7)?.0, month_bounds(y, 12)?.1))
    }
}

/// `上半年` / `下半年` at `i` (after a year): is it the first half?
fn half_at(s: &str, i: usize) -> Option<bool> {
    let i = skip_spaces(s, i);
    [("上半年", true), ("下半年", false)]
        .iter()
        .find(|(w, _)| starts(s, i, w))
        .map(|&(_, first)| first)
}

/// After a year (`2025年`, `今年`) at `i`: `上半年`/`下半年` or a span of
/// months of that year.
fn part_of_year(s: &str, i: usize, y: i32, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    match half_at(s, i) {
        Some(first) => half_bounds(y, first),
        None => month_span_at(s, i, Some(y), today),
    }
}

/// `3-4月`, `3至5月`, `一到三月`: whole months of one year, from the first
/// to the last (a year-less span is the latest whose first month has
/// started); `year` when a year was written before it.
fn month_span_at(
    s: &str,
    i: usize,
    year: Option<i32>,
    today: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    if prev_char(s, i).is_some_and(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let (m1, e1, _) = read_uint(s, i)?;
    let j = skip_spaces(s, e1);
    let sep = RANGE_SEPARATORS.iter().find(|sep| starts(s, j, sep))?;
    let k = skip_spaces(s, j + sep.len());
    let (m2, e2, _) = read_uint(s, k)?;
    if !starts(s, e2, "月") || !(1..m2).contains(&m1) || m2 > 12 {
        return None;
    }
    let end = e2 + "月".len();
    // `3-4月5日` is not a span of months
    if char_at(s, end).is_some_and(|c| c.is_ascii_digit() || is_cn_numeral_char(c)) {
        return None;
    }
    let y = match year {
        Some(y) => y,
        None => yearless_month(m1, today)?.0.year(),
    };
    Some((month_bounds(y, m1)?.0, month_bounds(y, m2)?.1))
}

fn quarter_bounds(y: i32, q: u32) -> Option<(NaiveDate, NaiveDate)> {
    let (start, _) = month_bounds(y, (q - 1) * 3 + 1)?;
    let (_, end) = month_bounds(y, q * 3)?;
    Some((start, end))
}

fn year_bounds(y: i32) -> Option<(NaiveDate, NaiveDate)> {
    Some((
        NaiveDate::from_ymd_opt(y, 1, 1)?,
        NaiveDate::from_ymd_opt(y, 12, 31)?,
    ))
}

fn period_word_range(p: PeriodWord, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let monday = monday_of(today)?;
    let q = (today.month() - 1) / 3 + 1;
    match p {
        PeriodWord::ThisWeek => Some((monday, monday.checked_add_days(Days::new(6))?)),
        PeriodWord::LastWeek => Some((monday.checked_sub_days(Days::new(7))?, monday.pred_opt()?)),
        PeriodWord::ThisMonth => month_bounds(today.year(), today.month()),
        PeriodWord::LastMonth => {
            let (y, m) = shift_month(today.year(), today.month(), -1);
            month_bounds(y, m)
        }
        PeriodWord::ThisQuarter => quarter_bounds(today.year(), q),
        PeriodWord::LastQuarter => {
            if q == 1 {
                quarter_bounds(today.year() - 1, 4)
            } else {
                quarter_bounds(today.year(), q - 1)
            }
        }
        PeriodWord::ThisYear => year_bounds(today.year()),
        PeriodWord::LastYear => year_bounds(today.year() - 1),
        PeriodWord::FirstHalf => half_bounds(today.year(), true),
        PeriodWord::SecondHalf => {
            let y = if today.month() >= 7 {
                today.year()
            } else {
                today.year() - 1
            };
            half_bounds(y, false)
        }
        PeriodWord::YearToDate => Some((year_bounds(today.year())?.0, today)),
    }
}

/// `第一季度`, `一季度`, `Q1` at `i`: (quarter, end).
fn quarter_at(s: &str, i: usize) -> Option<(u32, usize)> {
    let i = skip_spaces(s, i);
    if matches!(char_at(s, i), Some('Q' | 'q')) {
        let (q, e, _) = read_uint(s, i + 1)?;
        return (1..=4).contains(&q).then_some((q, e));
    }
    let j = if starts(s, i, "第") { i + 3 } else { i };
    let (q, e, _) = read_uint(s, j)?;
    let end = if starts(s, e, "季度") {
        e + 6
    } else if starts(s, e, "季") {
        e + 3
    } else {
        return None;
    };
    (1..=4).contains(&q).then_some((q, end))
}

/// Month bounds for a month without a year: the latest such month that has
/// started by today.
fn yearless_month(m: u32, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let y = if m <= today.month() {
        today.year()
    } else {
        today.year() - 1
    };
    month_bounds(y, m)
}

/// After a date that starts a range, reads `sep date` and returns the end.
fn range_end(text: &str, i: usize, start: NaiveDate, today: NaiveDate) -> Option<NaiveDate> {
    let j = skip_spaces(text, i);
    let sep = RANGE_SEPARATORS.iter().find(|s| starts(text, j, s))?;
    let k = skip_spaces(text, j + sep.len());
    // the separator may end in '.', which expr_at would take for a decimal point
    let head = if char_at(text, k).is_some_and(|c| c.is_ascii_digit()) {
        numeric_expr(text, k, true)
    } else {
        expr_at(text, k)
    };
    let (e, _) = head.or_else(|| {
        // a bare number after the separator: 3月1日-31 (day of the same month)
        let (d, end, nd) = read_uint(text, k)?;
        (nd > 0 && clean_number_end(text, end)).then_some((Expr::Day(d), end))
    })?;
    let end = match e {
        Expr::Ymd { y: None, m, d } => {
            let same = NaiveDate::from_ymd_opt(start.year(), m, d)?;
            if same < start {
                NaiveDate::from_ymd_opt(start.year() + 1, m, d)?
            } else {
                same
            }
        }
        Expr::Day(d) => NaiveDate::from_ymd_opt(start.year(), start.month(), d)?,
        Expr::Month { y, m } => month_bounds(y.unwrap_or(start.year()), m)?.1,
        other => resolve(other, today, Clamp::Past)?,
    };
    (end >= start).then_some(end)
}

/// The first report period in `text`, as inclusive (first day, last day).
///
/// Periods are whole calendar units (`本周` is Monday–Sunday even when
/// today is Wednesday); the caller may cut the end at today. Year-less
/// months and days are past-clamped: `12月` read in January 2026 is
/// December 2025. A single day is a one-day period.
pub fn find_date_range(text: &str, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let mut i = 0;
    while i < text.len() {
        if let Some(span) = month_span_at(text, i, None, today) {
            return Some(span);
        }
        if let Some((e, end)) = expr_at(text, i) {
            let found = match e {
                Expr::Month { y, m } => {
                    let first = match y {
                        Some(y) => month_bounds(y, m),
                        None => yearless_month(m, today),
                    };
                    first.map(|(s, e)| (s, range_end(text, end, s, today).unwrap_or(e)))
                }
                Expr::Year(y) => {
                    let after = skip_spaces(text, end);
                    if let Some((q, _)) = quarter_at(text, after) {
                        quarter_bounds(y, q)
                    } else {
                        part_of_year(text, after, y, today).or_else(|| year_bounds(y))
                    }
                }
                Expr::Day(_) => None,
                other => resolve(other, today, Clamp::Past)
                    .map(|s| (s, range_end(text, end, s, today).unwrap_or(s))),
            };
            if found.is_some() {
                return found;
            }
            i = end.max(i + 1);
            while !text.is_char_boundary(i) {
                i += 1;
            }
            continue;
        }
        if let Some(&(w, p)) = PERIOD_WORDS.iter().find(|(w, _)| starts(text, i, w)) {
            let end = i + w.len();
            if let PeriodWord::ThisYear | PeriodWord::LastYear = p {
                let y = period_word_range(p, today)?.0.year();
                let after = skip_spaces(text, end);
                // 今年上半年, 去年3-4月: a half or months of that year
                if let Some(part) = part_of_year(text, after, y, today) {
                    return Some(part);
                }
                // 今年3月, 去年12月: a month of that year
                if let Some((Expr::Month { y: None, m }, e)) = expr_at(text, after) {
                    let (s, last) = month_bounds(y, m)?;
                    return Some((s, range_end(text, e, s, today).unwrap_or(last)));
                }
            }
            return period_word_range(p, today);
        }
        if let Some((q, _)) = quarter_at(text, i) {
            let is_q = matches!(char_at(text, i), Some('Q' | 'q'));
            if !is_q || prev_char(text, i).is_none_or(|c| !c.is_ascii_alphanumeric()) {
                // the latest such quarter that has started
                let cur = (today.month() - 1) / 3 + 1;
                let y = if q <= cur {
                    today.year()
                } else {
                    today.year() - 1
                };
                return quarter_bounds(y, q);
            }
        }
        i += char_at(text, i).map_or(1, char::len_utf8);
    }
    None
}

/// The date a `/log` line (or an `/edit` of a date) means. [`find_date`]
/// reads a date without a year as the latest such date not after today; but
/// "3月16日" written on 3月10日 means next week, not a year ago: when this
/// year's date is at most [`NEAR_FUTURE_DAYS`] ahead and the past reading is
/// most of a year back, the near-future date wins (and is refused as not
/// yet happened).
pub fn activity_date(text: &str, parsed: NaiveDate, today: NaiveDate) -> NaiveDate {
    if parsed > today || (today - parsed).num_days() < 300 {
        return parsed;
    }
    match find_date_with(text, today, Clamp::Future) {
        Some((d, _)) if d > today && (d - today).num_days() <= NEAR_FUTURE_DAYS => d,
        _ => parsed,
    }
}

/// How far ahead a year-less date may be meant as "this year" (see
/// [`activity_date`]).
pub const NEAR_FUTURE_DAYS: i64 = 60;

/// A report period: inclusive first and last day, whole calendar units as
/// [`find_date_range`] reads them (the caller may cut the end at today).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// The first period in `text`, read on `today`.
    pub fn find(text: &str, today: NaiveDate) -> Option<Period> {
        find_date_range(text, today).map(|(from, to)| Period { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// (today, text, expected (date, matched text))
    type DateCase = (
        &'static str,
        &'static str,
        Option<(&'static str, &'static str)>,
    );

    #[test]
    fn find_date_table() {
        let cases: &[DateCase] = &[
            ("2026-03-10", "3月5日 植树", Some(("2026-03-05", "3月5日"))),
            (
                "2026-03-10",
                "2026-03-05",
                Some(("2026-03-05", "2026-03-05")),
            ),
            ("2026-03-10", "2026/3/5", Some(("2026-03-05", "2026/3/5"))),
            (
                "2026-03-10",
                "2025.12.01",
                Some(("2025-12-01", "2025.12.01")),
            ),
            (
                "2026-04-02",
                "2026年3月28日 征文",
                Some(("2026-03-28", "2026年3月28日")),
            ),
            (
                "2026-04-02",
                "二〇二六年三月二十八日",
                Some(("2026-03-28", "二〇二六年三月二十八日")),
            ),
            ("2026-03-20", "3.15 综治宣传", Some(("2026-03-15", "3.15"))),
            ("2026-03-10", "3/8 座谈会", Some(("2026-03-08", "3/8"))),
            ("2026-05-20", "5-18 培训", Some(("2026-05-18", "5-18"))),
            ("2026-03-10", "三月五号", Some(("2026-03-05", "三月五号"))),
            ("2026-03-10", "3月5号上午", Some(("2026-03-05", "3月5号"))),
            ("2026-03-10", "今天", Some(("2026-03-10", "今天"))),
            ("2026-03-10", "昨天在县城", Some(("2026-03-09", "昨天"))),
            ("2026-05-07", "前天 支委会", Some(("2026-05-05", "前天"))),
            ("2026-05-07", "大前天", Some(("2026-05-04", "大前天"))),
            ("2026-05-07", "明天", Some(("2026-05-08", "明天"))),
            // year boundary: latest date not after today
            (
                "2026-01-05",
                "12月30日 元旦联欢会",
                Some(("2025-12-30", "12月30日")),
            ),
            ("2026-01-05", "1月5日", Some(("2026-01-05", "1月5日"))),
            ("2026-01-05", "1月6日", Some(("2025-01-06", "1月6日"))),
            // leap day: this year's, or last year's before it comes; a
            // common year has none
            ("2026-03-01", "2月29日", None),
            ("2025-01-10", "2月29日", Some(("2024-02-29", "2月29日"))),
            ("2028-03-01", "2月29日", Some(("2028-02-29", "2月29日"))),
            (
                "2024-02-29",
                "2024-02-29",
                Some(("2024-02-29", "2024-02-29")),
            ),
            // weekdays: 2026-11-01 is a Sunday
            ("2026-11-01", "周日", Some(("2026-11-01", "周日"))),
            ("2026-11-01", "星期天", Some(("2026-11-01", "星期天"))),
            ("2026-11-01", "周一", Some(("2026-10-26", "周一"))),
            (
                "2026-11-02",
                "上周五 组织生活会",
                Some(("2026-10-30", "上周五")),
            ),
            ("2026-11-01", "上周五", Some(("2026-10-23", "上周五"))),
            ("2026-11-04", "礼拜三", Some(("2026-11-04", "礼拜三"))),
            ("2026-11-04", "本周一", Some(("2026-11-02", "本周一"))),
            ("2026-11-04", "上星期二", Some(("2026-10-27", "上星期二"))),
            ("2026-11-04", "本月3号", Some(("2026-11-03", "本月3号"))),
            ("2026-11-04", "本月三日", Some(("2026-11-03", "本月三日"))),
            ("2026-11-04", "本月20日", Some(("2026-11-20", "本月20日"))),
            ("2026-11-04", "3号 团课", Some(("2026-11-03", "3号"))),
            ("2026-11-04", "20号 团课", Some(("2026-10-20", "20号"))),
            ("2026-03-10", "31号", Some(("2026-01-31", "31号"))),
            ("2026-11-04", "5号楼", None),
            // invalid days are not dates
            ("2026-03-10", "2月30日", None),
            ("2026-03-10", "2026-02-29", None),
            ("2026-03-10", "13月1日", None),
            (
                "2026-03-10",
                "2月30日 3月1日",
                Some(("2026-03-01", "3月1日")),
            ),
            // numbers that are not dates
            ("2026-03-10", "1.2万元", None),
            ("2026-03-10", "54.8万元", None),
            ("2026-03-10", "服务3.5小时", None),
            ("2026-03-10", "3-5人", None),
            ("2026-03-10", "1.2.3", None),
            ("2026-03-10", "上午9.30", None),
            ("2026-03-10", "18:00", None),
            ("2026-03-10", "五四评优", None),
            ("2026-03-10", "五四运动107周年", None),
            ("2026-03-10", "", None),
        ];
        for (today, text, want) in cases {
            let got = find_date(text, d(today)).map(|(dt, r)| (dt, &text[r]));
            let want = want.map(|(a, b)| (d(a), b));
            assert_eq!(got, want, "find_date({text:?}) today {today}");
        }
    }

    #[test]
    fn datetime_table() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        // (today, text, date, time)
        let cases: &[(&str, &str, &str, Option<NaiveTime>)] = &[
            (
                "2026-03-10",
                "3月15日 18:00前提交",
                "2026-03-15",
                Some(t(18, 0)),
            ),
            ("2026-03-10", "明天下午3点", "2026-03-11", Some(t(15, 0))),
            ("2026-03-10", "后天上午9:30", "2026-03-12", Some(t(9, 30))),
            ("2026-03-10", "明晚8点", "2026-03-11", Some(t(20, 0))),
            ("2026-03-10", "3月12日晚上8点", "2026-03-12", Some(t(20, 0))),
            (
                "2026-03-10",
                "3月12日 18点30",
                "2026-03-12",
                Some(t(18, 30)),
            ),
            ("2026-03-10", "3月12日18点半", "2026-03-12", Some(t(18, 30))),
            (
                "2026-03-10",
                "3月12日 中午12点",
                "2026-03-12",
                Some(t(12, 0)),
            ),
            ("2026-03-10", "下周五", "2026-03-20", None),
            ("2026-03-10", "周五前", "2026-03-13", None),
            ("2026-03-13", "周五前", "2026-03-13", None),
            // future clamp for year-less dates
            ("2026-12-20", "1月3日", "2027-01-03", None),
            ("2026-03-10", "3月10日", "2026-03-10", None),
            ("2026-03-10", "18:00前", "2026-03-10", Some(t(18, 0))),
        ];
        for (today, text, date, time) in cases {
            let got = find_datetime_parts(text, d(today)).unwrap_or_else(|| panic!("{text}"));
            assert_eq!((got.date, got.time), (d(date), *time), "{text:?}");
        }
        let (dt, _) = find_datetime("3月31日前", d("2026-03-10")).unwrap();
        assert_eq!(dt, d("2026-03-31").and_time(END_OF_DAY));
        assert!(find_datetime("没有日期", d("2026-03-10")).is_none());
    }

    #[test]
    fn range_table() {
        // today is Wednesday 2026-05-20
        let today = d("2026-05-20");
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("本周", Some(("2026-05-18", "2026-05-24"))),
            ("上周 报表", Some(("2026-05-11", "2026-05-17"))),
            ("本月", Some(("2026-05-01", "2026-05-31"))),
            ("上月", Some(("2026-04-01", "2026-04-30"))),
            ("本季度", Some(("2026-04-01", "2026-06-30"))),
            ("上季度", Some(("2026-01-01", "2026-03-31"))),
            ("本年", Some(("2026-01-01", "2026-12-31"))),
            ("今年", Some(("2026-01-01", "2026-12-31"))),
            ("去年", Some(("2025-01-01", "2025-12-31"))),
            ("2026-03", Some(("2026-03-01", "2026-03-31"))),
            ("2026年3月", Some(("2026-03-01", "2026-03-31"))),
            ("2024年2月", Some(("2024-02-01", "2024-02-29"))),
            ("3月", Some(("2026-03-01", "2026-03-31"))),
            ("12月份", Some(("2025-12-01", "2025-12-31"))),
            ("3月1日-3月31日", Some(("2026-03-01", "2026-03-31"))),
            ("3月1日至6月30日", Some(("2026-03-01", "2026-06-30"))),
            ("3月1日到31日", Some(("2026-03-01", "2026-03-31"))),
            ("2026-03-01..2026-06-30", Some(("2026-03-01", "2026-06-30"))),
            ("3.1-3.31", Some(("2026-03-01", "2026-03-31"))),
            ("12月1日至1月31日", Some(("2025-12-01", "2026-01-31"))),
            ("3月至5月", Some(("2026-03-01", "2026-05-31"))),
            ("2026年", Some(("2026-01-01", "2026-12-31"))),
            ("今年3月", Some(("2026-03-01", "2026-03-31"))),
            ("去年12月", Some(("2025-12-01", "2025-12-31"))),
            ("2026年第一季度", Some(("2026-01-01", "2026-03-31"))),
            ("二季度", Some(("2026-04-01", "2026-06-30"))),
            ("3月5日", Some(("2026-03-05", "2026-03-05"))),
            ("上半年", Some(("2026-01-01", "2026-06-30"))),
            ("下半年", Some(("2025-07-01", "2025-12-31"))),
            ("今年上半年", Some(("2026-01-01", "2026-06-30"))),
            ("去年下半年", Some(("2025-07-01", "2025-12-31"))),
            ("2025年上半年", Some(("2025-01-01", "2025-06-30"))),
            ("2025年 下半年", Some(("2025-07-01", "2025-12-31"))),
            ("3-4月", Some(("2026-03-01", "2026-04-30"))),
            ("3~5月份", Some(("2026-03-01", "2026-05-31"))),
            ("一至三月", Some(("2026-01-01", "2026-03-31"))),
            ("11-12月", Some(("2025-11-01", "2025-12-31"))),
            ("2025年3-4月", Some(("2025-03-01", "2025-04-30"))),
            ("今年1-4月", Some(("2026-01-01", "2026-04-30"))),
            ("今年以来", Some(("2026-01-01", "2026-05-20"))),
            ("年初以来", Some(("2026-01-01", "2026-05-20"))),
            ("一季度", Some(("2026-01-01", "2026-03-31"))),
            ("四季度", Some(("2025-10-01", "2025-12-31"))),
            ("2025年", Some(("2025-01-01", "2025-12-31"))),
            // look-alikes: a day, not a span of months
            ("3-4", Some(("2026-03-04", "2026-03-04"))),
            ("统计", None),
        ];
        for (text, want) in cases {
            let want = want.map(|(a, b)| (d(a), d(b)));
            assert_eq!(find_date_range(text, today), want, "{text:?}");
        }
        // February in a leap year via 本月
        assert_eq!(
            find_date_range("本月", d("2028-02-10")),
            Some((d("2028-02-01"), d("2028-02-29")))
        );
        // 本周 when today is Sunday: Monday-start weeks
        assert_eq!(
            find_date_range("本周", d("2026-11-01")),
            Some((d("2026-10-26"), d("2026-11-01")))
        );
    }

    #[test]
    fn impossible_days_and_why() {
        use BadDay::*;
        type Case = (&'static str, &'static str, Option<(BadDay, &'static str)>);
        let cases: &[Case] = &[
            (
                "2026-03-10",
                "2月30日 团课",
                Some((NoDay { m: 2, d: 30 }, "2月30日")),
            ),
            (
                "2026-05-10",
                "4月31号",
                Some((NoDay { m: 4, d: 31 }, "4月31号")),
            ),
            (
                "2026-03-10",
                "13月2日",
                Some((NoMonth { m: 13 }, "13月2日")),
            ),
            (
                "2026-03-10",
                "十三月二日",
                Some((NoMonth { m: 13 }, "十三月二日")),
            ),
            (
                "2026-03-10",
                "2026年13月2日",
                Some((NoMonth { m: 13 }, "2026年13月2日")),
            ),
            ("2026-03-10", "0月5日", Some((NoMonth { m: 0 }, "0月5日"))),
            (
                "2026-03-10",
                "3月0日",
                Some((NoDay { m: 3, d: 0 }, "3月0日")),
            ),
            (
                "2026-03-10",
                "2月29日",
                Some((NotLeap { y: 2026 }, "2月29日")),
            ),
            (
                "2026-01-10",
                "2月29日",
                Some((NotLeap { y: 2025 }, "2月29日")),
            ),
            (
                "2026-03-10",
                "2026-02-29",
                Some((NotLeap { y: 2026 }, "2026-02-29")),
            ),
            (
                "2026-04-10",
                "本月31日",
                Some((NoDay { m: 4, d: 31 }, "本月31日")),
            ),
            ("2024-03-10", "2月29日", None),
            ("2026-03-10", "3月5日 2月28日", None),
            ("2026-03-10", "13个月", None),
            ("2026-03-10", "13月", None),
            ("2026-03-10", "15月饼", None),
            ("2026-03-10", "周五", None),
        ];
        for (today, text, want) in cases {
            let got = find_bad_day(text, d(today), Clamp::Past).map(|(b, r)| (b, &text[r]));
            assert_eq!(got, *want, "{text:?} on {today}");
        }
    }

    #[test]
    fn expressions_cover_all_dates() {
        let text = "2月30日 和 3月 以及 5号楼 20号";
        let all = date_expressions(text, d("2026-03-10"), Clamp::Past);
        let got: Vec<_> = all
            .iter()
            .map(|m| (&text[m.span.clone()], m.date, m.names_day))
            .collect();
        assert_eq!(
            got,
            vec![
                ("2月30日", None, true),
                ("3月", None, false),
                ("5号", None, false),
                ("20号", Some(d("2026-02-20")), true),
            ]
        );
        let text = "5月4日上午 9:30-11:00 下午3点 文艺晚会";
        let times: Vec<_> = time_expressions(text)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(times, vec!["上午 9:30", "11:00", "下午3点"]);
    }
}
