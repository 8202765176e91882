//! Arguments of the micro-wish commands (claiming itself is in `claim.rs`).
//!
//! ```text
//! /wishes [PAGE | WORD | ORG]              心愿          open wishes, paged / filtered / an org's
//! /wishes import NAME                      (caption of a CSV/XLSX document)
//! /wishes publish NAME [quota N] [at TIME] 发布心愿 NAME [限额 N] [于 TIME]
//! /wishes overdue                          claimed, not delivered after 14 days
//! /wish N                                  one wish
//! /mywishes                                我的心愿
//! /release N                               放弃 N
//! /done N                                  圆梦 N   (with a photo, or replying to one)
//! /revoke N REASON                         下架 N 原因
//! ```

use chrono::{Duration, NaiveDateTime, NaiveTime};

use super::deadline::When;
use super::numerals::parse_number;
use super::{Command, ParseError, Parsed};

/// `/wishes …`: the sub-command is the first word.
pub fn wishes(args: &str, now_local: NaiveDateTime) -> Parsed {
    let (word, rest) = split(args);
    match word.to_ascii_lowercase().as_str() {
        "import" | "导入" => {
            if rest.is_empty() {
                Parsed::Invalid(ParseError::WishImportUsage)
            } else {
                Parsed::Command(Command::WishImport(rest.to_string()))
            }
        }
        "publish" | "发布" => publish(rest, now_local),
        "overdue" | "逾期" | "超期" => Parsed::Command(Command::WishOverdue),
        _ => Parsed::Command(Command::WishList(WishQuery::parse(args))),
    }
}

/// What `/wishes` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WishQuery {
    /// A page of the open wishes (`心愿`, `心愿 2`).
    Page(usize),
    /// A school or item word among the open wishes, or else an org's name
    /// (its holdings), as typed.
    Words(String),
}

impl WishQuery {
    pub fn parse(args: &str) -> WishQuery {
        let args = args.trim();
        if args.is_empty() {
            return WishQuery::Page(1);
        }
        match args.parse::<usize>() {
            Ok(n) => WishQuery::Page(n),
            Err(_) => WishQuery::Words(args.to_string()),
        }
    }
}

/// `NAME [quota N] [at TIME]`; TIME read at `now_local` ([`publish_at`]).
pub fn publish(args: &str, now_local: NaiveDateTime) -> Parsed {
    let words: Vec<&str> = args.split_whitespace().collect();
    let mut name = Vec::new();
    let mut quota = None;
    let mut at = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        match w.to_ascii_lowercase().as_str() {
            "quota" | "限额" | "每个组织" | "每组织" => {
                let Some(n) = words.get(i + 1).and_then(|s| small(s)) else {
                    return Parsed::Invalid(ParseError::WishPublishUsage);
                };
                if n == 0 {
                    return Parsed::Invalid(ParseError::WishPublishUsage);
                }
                quota = Some(n);
                i += 2;
            }
            "at" | "于" | "定时" => {
                let rest = words[i + 1..].join(" ");
                if rest.is_empty() {
                    return Parsed::Invalid(ParseError::WishPublishUsage);
                }
                at = Some(When::read(&rest, |t| publish_at(t, now_local)));
                break;
            }
            _ => {
                name.push(w);
                i += 1;
            }
        }
    }
    if name.is_empty() {
        return Parsed::Invalid(ParseError::WishPublishUsage);
    }
    Parsed::Command(Command::WishPublish {
        batch: name.join(" "),
        quota,
        at,
    })
}

/// When a scheduled batch opens: `HH:MM` (today, or tomorrow once that
/// time has passed), `YYYY-MM-DD HH:MM`, or `MM-DD HH:MM` (this year).
pub fn publish_at(text: &str, now_local: NaiveDateTime) -> Option<NaiveDateTime> {
    let text = text.trim();
    let today = now_local.date();
    if let Ok(time) = NaiveTime::parse_from_str(text, "%H:%M") {
        let at = today.and_time(time);
        return Some(if at <= now_local {
            at + Duration::days(1)
        } else {
            at
        });
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M") {
        return Some(at);
    }
    let with_year = format!("{}-{text}", chrono::Datelike::year(&today));
    NaiveDateTime::parse_from_str(&with_year, "%Y-%m-%d %H:%M").ok()
}

/// `/wish N`.
pub fn show(args: &str) -> Parsed {
    match small(args.trim().trim_end_matches('号')) {
        Some(n) => Parsed::Command(Command::WishShow(n)),
        None => Parsed::Invalid(ParseError::WishShowUsage),
    }
}

/// `/release N`, `/done N`, `/revoke N REASON`. Through a keyword (`放弃 12`)
/// the arguments must start with a number, so `放弃吧` stays chatter.
pub fn numbered(which: &str, args: &str, keyword: bool) -> Parsed {
    let (word, rest) = split(args);
    let n = small(word.trim_start_matches('第').trim_end_matches('号'));
    let err = match which {
        "release" => ParseError::ReleaseUsage,
        "done" => ParseError::DoneUsage,
        _ => ParseError::RevokeUsage,
    };
    let Some(n) = n else {
        return if keyword {
            Parsed::NotCommand
        } else {
            Parsed::Invalid(err)
        };
    };
    Parsed::Command(match which {
        "release" => Command::Release(n),
        "done" => Command::Done(n),
        _ if rest.is_empty() => return Parsed::Invalid(err),
        _ => Command::Revoke {
            no: n,
            reason: rest.to_string(),
        },
    })
}

/// A whole, non-negative number that fits a wish number.
fn small(s: &str) -> Option<u32> {
    let v = parse_number(s)?;
    (v.fract() == 0.0 && (0.0..=1e9).contains(&v)).then_some(v as u32)
}

fn split(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::deadline::{BadTime, at};

    #[test]
    fn queries() {
        let cases: &[(&str, WishQuery)] = &[
            ("", WishQuery::Page(1)),
            (" 2 ", WishQuery::Page(2)),
            ("0", WishQuery::Page(0)),
            ("县一中", WishQuery::Words("县一中".into())),
            ("书包 文具", WishQuery::Words("书包 文具".into())),
            // Look-alikes of a page number are words.
            ("第2页", WishQuery::Words("第2页".into())),
            ("-1", WishQuery::Words("-1".into())),
            ("二", WishQuery::Words("二".into())),
        ];
        for (text, want) in cases {
            assert_eq!(WishQuery::parse(text), *want, "{text:?}");
        }
    }

    #[test]
    fn publish_times() {
        let now = at(2026, 3, 5, 10, 0);
        let cases: &[(&str, Option<NaiveDateTime>)] = &[
            ("18:00", Some(at(2026, 3, 5, 18, 0))),
            // Passed today: tomorrow.
            ("09:30", Some(at(2026, 3, 6, 9, 30))),
            ("10:00", Some(at(2026, 3, 6, 10, 0))),
            ("2026-04-01 08:00", Some(at(2026, 4, 1, 8, 0))),
            ("04-01 08:00", Some(at(2026, 4, 1, 8, 0))),
            // Look-alikes.
            ("25:00", None),
            ("18点", None),
            ("明天 18:00", None),
            ("02-30 08:00", None),
            ("2026-04-01", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(publish_at(text, now), *want, "{text:?}");
        }
    }

    #[test]
    fn publish_keeps_the_typed_time() {
        let now = at(2026, 3, 5, 10, 0);
        let Parsed::Command(Command::WishPublish {
            batch,
            quota,
            at: when,
        }) = publish("春季 心愿 quota 3 at 2026-04-01 08:00", now)
        else {
            panic!()
        };
        assert_eq!(batch, "春季 心愿");
        assert_eq!(quota, Some(3));
        let when = when.unwrap();
        assert_eq!(when.text, "2026-04-01 08:00");
        assert_eq!(when.at, Ok(at(2026, 4, 1, 8, 0)));
        let Parsed::Command(Command::WishPublish { at: Some(when), .. }) =
            publish("春季 at 下周一", now)
        else {
            panic!()
        };
        assert_eq!(when.text, "下周一");
        assert_eq!(when.at, Err(BadTime));
        assert_eq!(
            publish("春季 at", now),
            Parsed::Invalid(ParseError::WishPublishUsage)
        );
    }
}
