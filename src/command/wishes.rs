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

use super::numerals::parse_number;
use super::{Command, ParseError, Parsed};

/// `/wishes …`: the sub-command is the first word.
pub fn wishes(args: &str) -> Parsed {
    let (word, rest) = split(args);
    match word.to_ascii_lowercase().as_str() {
        "import" | "导入" => {
            if rest.is_empty() {
                Parsed::Invalid(ParseError::WishImportUsage)
            } else {
                Parsed::Command(Command::WishImport(rest.to_string()))
            }
        }
        "publish" | "发布" => publish(rest),
        "overdue" | "逾期" | "超期" => Parsed::Command(Command::WishOverdue),
        _ => Parsed::Command(Command::WishList(args.trim().to_string())),
    }
}

/// `NAME [quota N] [at TIME]`.
pub fn publish(args: &str) -> Parsed {
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
                at = Some(rest);
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
