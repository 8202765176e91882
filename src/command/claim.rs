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
//! arguments are not numbers (`认领的同学注意`) is chatter, not a command.

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

    proptest::proptest! {
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
