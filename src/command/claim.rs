//! Claiming micro-wishes by message. Pure: text in, wish numbers out.
//!
//! Grammar (after [`super::normalize::normalize`], so full-width digits and
//! punctuation are already ASCII; the leading `@bot` is already stripped):
//!
//! ```text
//! claim  := ("认领" | "/claim" | "/认领" | "#认领" | "#claim") [":"] [list]
//! list   := item { sep item } [end]
//! item   := ["第"] NUMBER ["号"] [range ["第"] NUMBER ["号"]]
//! range  := "-" | "~" | "—" | "–" | "到" | "至"
//! sep    := one or more of " " "、" "," ";" "/" "和" "及" "跟"
//! end    := trailing "。" "." "!" "~"
//! NUMBER := ASCII digits or Chinese numerals (十二, 二十五; see numerals.rs)
//! ```
//!
//! Examples: `认领 12`, `认领12号`, `认领12、15、23`, `认领 12 15`,
//! `认领 12-15`, `/claim 12`, `#认领 12`, `认领 十二`. `认领` alone is a
//! claim of nothing (the service explains how). A keyword claim whose
//! arguments are not numbers is chatter (`认领的同学注意`) unless a space,
//! a colon or a digit follows `认领` (`认领 🎁`, `认领12个`): then it is a
//! claim that gets the usage.

use super::numerals::scan_number;

/// Most numbers one message may claim (a range counts each number).
pub const MAX_CLAIM: usize = 50;

/// Why a claim's numbers could not be read. `Display` is for logs; the user
/// sees the `wishes.usage.claim` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("not a wish number")]
    NotANumber,
    #[error("range runs backwards")]
    BackwardRange,
    #[error("too many numbers")]
    TooMany,
}

const SEPS: &[char] = &[' ', '\n', '、', ',', ';', '/', '和', '及', '跟'];
const RANGE: &[char] = &['-', '~', '—', '–', '到', '至'];

/// The wish numbers in `args`, ascending and without repeats (claiming in
/// ascending order is also the store's lock order). Empty when `args` is.
pub fn parse_numbers(args: &str) -> Result<Vec<u32>, ClaimError> {
    let mut s = args
        .trim_start_matches([':', ' '])
        .trim_end_matches(['。', '.', '!', '~', ' ']);
    let mut out: Vec<u32> = Vec::new();
    loop {
        s = s.trim_start_matches(SEPS);
        if s.is_empty() {
            break;
        }
        let (first, rest) = number(s)?;
        s = rest;
        let mut last = first;
        if let Some(c) = s.chars().next()
            && RANGE.contains(&c)
        {
            let (end, rest) = number(&s[c.len_utf8()..])?;
            if end < first {
                return Err(ClaimError::BackwardRange);
            }
            if (end - first) as usize >= MAX_CLAIM {
                return Err(ClaimError::TooMany);
            }
            last = end;
            s = rest;
        }
        for n in first..=last {
            out.push(n);
        }
        if out.len() > MAX_CLAIM * 2 {
            return Err(ClaimError::TooMany);
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.len() > MAX_CLAIM {
        return Err(ClaimError::TooMany);
    }
    Ok(out)
}

/// One number with an optional `第` before and `号` after.
fn number(s: &str) -> Result<(u32, &str), ClaimError> {
    let s = s.strip_prefix('第').unwrap_or(s);
    let (v, used) = scan_number(s).ok_or(ClaimError::NotANumber)?;
    if v.fract() != 0.0 || !(0.0..=1e9).contains(&v) {
        return Err(ClaimError::NotANumber);
    }
    let rest = &s[used..];
    let rest = rest.strip_prefix('号').unwrap_or(rest);
    Ok((v as u32, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok: &[(&str, &[u32])] = &[
            ("12", &[12]),
            ("12号", &[12]),
            ("12、15、23", &[12, 15, 23]),
            ("12 15", &[12, 15]),
            ("12-15", &[12, 13, 14, 15]),
            ("12到14号", &[12, 13, 14]),
            ("第12号和第15号", &[12, 15]),
            ("十二", &[12]),
            ("十二、二十五", &[12, 25]),
            ("15,12,15", &[12, 15]),
            (": 3", &[3]),
            ("12。", &[12]),
            ("", &[]),
            ("  ", &[]),
            ("0", &[0]),
            ("900", &[900]),
        ];
        for (s, want) in ok {
            assert_eq!(parse_numbers(s).as_deref(), Ok(*want), "{s:?}");
        }
        let bad: &[(&str, ClaimError)] = &[
            ("的同学注意", ClaimError::NotANumber),
            ("12 abc", ClaimError::NotANumber),
            ("15-12", ClaimError::BackwardRange),
            ("1-1000", ClaimError::TooMany),
            ("1.5", ClaimError::NotANumber),
            ("12-", ClaimError::NotANumber),
        ];
        for (s, want) in bad {
            assert_eq!(parse_numbers(s), Err(*want), "{s:?}");
        }
    }

    /// Through the whole parser: every way a cadre types a claim.
    #[test]
    fn via_parse() {
        use crate::command::wishes::WishQuery;
        use crate::command::{
            Command, ParseError, ParseOptions, Parsed, normalize::normalize, parse,
        };
        let opts = ParseOptions {
            bot_username: Some("tuan_bot"),
            bot_name: Some("团务助手"),
            ..Default::default()
        };
        let p = |s: &str| parse(&normalize(s), &opts);
        let claim = |v: &[u32]| Parsed::Command(Command::Claim(v.to_vec()));
        let cases: Vec<(&str, Parsed)> = vec![
            ("认领 12", claim(&[12])),
            ("认领12号", claim(&[12])),
            ("认领12、15、23", claim(&[12, 15, 23])),
            ("认领 12 15", claim(&[12, 15])),
            ("认领 12-15", claim(&[12, 13, 14, 15])),
            ("/claim 12", claim(&[12])),
            ("/claim@tuan_bot 12", claim(&[12])),
            ("#认领 12", claim(&[12])),
            ("认领 １２", claim(&[12])),
            ("认领　１２，１５", claim(&[12, 15])),
            ("认领 十二", claim(&[12])),
            ("@团务助手 认领 12", claim(&[12])),
            ("认领 12 @团务助手", claim(&[12])),
            ("认领", claim(&[])),
            ("/claim", claim(&[])),
            ("认领的同学请注意", Parsed::NotCommand),
            ("认领第一批心愿的组织请注意", Parsed::NotCommand),
            ("/claim abc", Parsed::Invalid(ParseError::ClaimUsage)),
            ("认领 🎁", Parsed::Invalid(ParseError::ClaimUsage)),
            (
                "认领 9999999999999",
                Parsed::Invalid(ParseError::ClaimUsage),
            ),
            (
                "认领 1; DROP TABLE wishes;--",
                Parsed::Invalid(ParseError::ClaimUsage),
            ),
            ("认领 15-12", Parsed::Invalid(ParseError::ClaimUsage)),
            ("认领12个", Parsed::Invalid(ParseError::ClaimUsage)),
            ("认领 3-900", Parsed::Invalid(ParseError::ClaimTooMany)),
            ("/claim 1-60", Parsed::Invalid(ParseError::ClaimTooMany)),
            ("放弃 12", Parsed::Command(Command::Release(12))),
            ("放弃吧", Parsed::NotCommand),
            ("/release", Parsed::Invalid(ParseError::ReleaseUsage)),
            ("圆梦 12", Parsed::Command(Command::Done(12))),
            (
                "下架 12 家长已买",
                Parsed::Command(Command::Revoke {
                    no: 12,
                    reason: "家长已买".into(),
                }),
            ),
            ("/revoke 12", Parsed::Invalid(ParseError::RevokeUsage)),
            (
                "心愿",
                Parsed::Command(Command::WishList(WishQuery::Page(1))),
            ),
            (
                "心愿 2",
                Parsed::Command(Command::WishList(WishQuery::Page(2))),
            ),
            (
                "/wishes 县一中",
                Parsed::Command(Command::WishList(WishQuery::Words("县一中".into()))),
            ),
            ("心愿单发了吗", Parsed::NotCommand),
            ("/wish 12", Parsed::Command(Command::WishShow(12))),
            ("/wish", Parsed::Invalid(ParseError::WishShowUsage)),
            ("我的心愿", Parsed::Command(Command::MyWishes)),
            ("/wishes overdue", Parsed::Command(Command::WishOverdue)),
            (
                "/wishes import 2026圆梦",
                Parsed::Command(Command::WishImport("2026圆梦".into())),
            ),
            (
                "/wishes publish 2026圆梦 quota 20 at 20:00",
                Parsed::Command(Command::WishPublish {
                    batch: "2026圆梦".into(),
                    quota: Some(20),
                    // Read at the default time, 1970-01-01 00:00.
                    at: Some(crate::command::deadline::When {
                        text: "20:00".into(),
                        at: Ok(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                            .and_then(|d| d.and_hms_opt(20, 0, 0))
                            .unwrap()),
                    }),
                }),
            ),
            (
                "发布心愿 2026圆梦 限额 二十",
                Parsed::Command(Command::WishPublish {
                    batch: "2026圆梦".into(),
                    quota: Some(20),
                    at: None,
                }),
            ),
            (
                "/wishes publish",
                Parsed::Invalid(ParseError::WishPublishUsage),
            ),
            (
                "/wishes publish X quota 0",
                Parsed::Invalid(ParseError::WishPublishUsage),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(p(input), want, "input {input:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in r"[/#]?(认领|claim|放弃|圆梦|下架|心愿|wishes|wish)?[ 0-9一二十、,\-号@\PC]{0,40}") {
            let opts = crate::command::ParseOptions::default();
            let _ = crate::command::parse(&crate::command::normalize::normalize(&s), &opts);
        }

        #[test]
        fn never_panics(s in "[0-9一二十百号第、, \\-到~.]{0,40}") {
            let _ = parse_numbers(&s);
        }

        #[test]
        fn never_panics_any(s in "\\PC{0,60}") {
            let _ = parse_numbers(&s);
        }
    }
}
