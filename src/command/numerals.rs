//! Reading numbers written the way cadres type them: Arabic, Chinese, or mixed.
//!
//! Input is expected to be NFKC-normalised (see [`crate::command::normalize`]),
//! so full-width digits have already become ASCII.
//!
//! Grammar:
//!
//! ```text
//! number   := digits | units
//! digits   := cn_digit cn_digit+            -- read digit by digit: 二〇二六 = 2026;
//!                                              only with 3+ digits or a 〇/零 in it,
//!                                              because 三五 (人) means "three or five"
//! units    := section (big section?)* tail?
//! section  := (coeff small | 零)* coeff?    -- small units strictly decreasing
//! coeff    := arabic | cn_digit              -- 十 may stand alone at a section start
//! small    := 十 | 百 | 千                    big := 万 | 亿
//! tail     := coeff                          -- abbreviated: 一百五 = 150, 两万三 = 23000
//! arabic   := [0-9]+ (',' [0-9]{3})* ('.' [0-9]+)?
//! cn_digit := 零 〇 一 二 两 三 四 五 六 七 八 九
//! ```
//!
//! Examples: `45`, `54.8`, `1,200`, `十` = 10, `十五`, `二十三`, `一百零八`,
//! `两百`, `三千五百`, `两万三千`, `〇`, `1.2万` = 12000, `54.8万` = 548000, `3千`.
//!
//! Not numbers on their own: `百`, `千`, `万`, `亿` (as in 百人, 千方百计).
//!
//! [`find_numbers`] reports *every* number, including single digits inside
//! ordinary words (一 in 一中 and 统一, 三 in 三里铺, 五 in 五四). Whether such
//! a match is a count is for the caller to decide, usually by looking at the
//! measure word after it and at the character before it (第 = ordinal).

use std::ops::Range;

/// Longest run of numeral tokens considered at one position. Real numbers
/// need far fewer; the cap keeps pathological input linear.
const MAX_TOKENS: usize = 24;

#[derive(Clone, Copy, Debug)]
enum Tok {
    /// Arabic literal. `mant`/`dp` give the exact decimal form when it fits,
    /// so that `54.8万` scales to exactly 548000.
    Lit {
        value: f64,
        mant: Option<u64>,
        dp: u32,
    },
    /// Chinese digit 0–9; `liang` marks 两 (never used in digit-by-digit reading).
    Digit { v: u8, liang: bool },
    /// 十 百 千
    Small(u32),
    /// 万 亿
    Big(u32),
}

fn cn_digit(c: char) -> Option<(u8, bool)> {
    Some(match c {
        '零' | '〇' => (0, false),
        '一' => (1, false),
        '二' => (2, false),
        '两' => (2, true),
        '三' => (3, false),
        '四' => (4, false),
        '五' => (5, false),
        '六' => (6, false),
        '七' => (7, false),
        '八' => (8, false),
        '九' => (9, false),
        _ => return None,
    })
}

fn cn_small(c: char) -> Option<u32> {
    match c {
        '十' => Some(10),
        '百' => Some(100),
        '千' => Some(1000),
        _ => None,
    }
}

fn cn_big(c: char) -> Option<u32> {
    match c {
        '万' => Some(10_000),
        '亿' => Some(100_000_000),
        _ => None,
    }
}

/// True for characters that can be part of a Chinese numeral.
pub fn is_cn_numeral_char(c: char) -> bool {
    cn_digit(c).is_some() || cn_small(c).is_some() || cn_big(c).is_some()
}

/// Reads an Arabic literal at the start of `s`: digits, optional `,ddd`
/// groups and an optional fraction. Returns the token and its byte length.
fn arabic_literal(s: &str) -> Option<(Tok, usize)> {
    fn push(mant: Option<u64>, d: u8) -> Option<u64> {
        mant?.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut mant: Option<u64> = Some(0);
    while i < b.len() && b[i].is_ascii_digit() {
        mant = push(mant, b[i]);
        i += 1;
    }
    if i == 0 {
        return None;
    }
    // thousands separators: a comma followed by exactly three digits
    while i + 4 <= b.len()
        && b[i] == b','
        && b[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        && !b.get(i + 4).is_some_and(u8::is_ascii_digit)
    {
        for &d in &b[i + 1..i + 4] {
            mant = push(mant, d);
        }
        i += 4;
    }
    let mut dp = 0u32;
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            mant = push(mant, b[i]);
            dp = dp.saturating_add(1);
            i += 1;
        }
    }
    let value: f64 = if s[..i].contains(',') {
        s[..i].replace(',', "").parse().ok()?
    } else {
        s[..i].parse().ok()?
    };
    if !value.is_finite() {
        return None;
    }
    let mant = if dp > 18 { None } else { mant };
    Some((Tok::Lit { value, mant, dp }, i))
}

/// Collects up to [`MAX_TOKENS`] numeral tokens at the start of `s`.
/// Returns the number of tokens written and each token's end offset.
fn tokenize(s: &str, toks: &mut [(Tok, usize); MAX_TOKENS]) -> usize {
    let mut n = 0;
    let mut pos = 0;
    while n < MAX_TOKENS && pos < s.len() {
        let rest = &s[pos..];
        let Some(c) = rest.chars().next() else { break };
        let (tok, len) = if c.is_ascii_digit() {
            match arabic_literal(rest) {
                Some(t) => t,
                None => break,
            }
        } else if let Some((v, liang)) = cn_digit(c) {
            (Tok::Digit { v, liang }, c.len_utf8())
        } else if let Some(u) = cn_small(c) {
            (Tok::Small(u), c.len_utf8())
        } else if let Some(u) = cn_big(c) {
            (Tok::Big(u), c.len_utf8())
        } else {
            break;
        };
        pos += len;
        toks[n] = (tok, pos);
        n += 1;
    }
    n
}

/// A coefficient: a digit or an Arabic literal, kept exact where possible.
#[derive(Clone, Copy)]
struct Coeff {
    value: f64,
    mant: Option<u64>,
    dp: u32,
}

impl Coeff {
    /// `self × factor`, exact when the decimal form allows it.
    fn scaled(self, factor: u32) -> f64 {
        if let Some(m) = self.mant {
            let pow = 10u64.checked_pow(self.dp);
            if let Some(pow) = pow
                && u64::from(factor) % pow == 0
                && let Some(v) = m.checked_mul(u64::from(factor) / pow)
            {
                return v as f64;
            }
        }
        self.value * f64::from(factor)
    }
}

/// Evaluates a complete token sequence; `None` if it is not a well-formed number.
fn eval(toks: &[(Tok, usize)]) -> Option<f64> {
    if toks.is_empty() {
        return None;
    }
    // Digit-by-digit reading (二〇二六, 一九九八).
    if toks.len() >= 2
        && toks
            .iter()
            .all(|(t, _)| matches!(t, Tok::Digit { liang: false, .. }))
    {
        let has_zero = toks
            .iter()
            .any(|(t, _)| matches!(t, Tok::Digit { v: 0, .. }));
        if toks.len() < 3 && !has_zero {
            return None;
        }
        let mut v = 0f64;
        for (t, _) in toks {
            if let Tok::Digit { v: d, .. } = t {
                v = v * 10.0 + f64::from(*d);
            }
        }
        return Some(v);
    }

    let mut total = 0f64;
    let mut section = 0f64;
    let mut coeff: Option<Coeff> = None;
    let mut last_small = u32::MAX;
    let mut last_big = u32::MAX;
    let mut zero = false;
    let mut any_unit = false;

    for (i, (t, _)) in toks.iter().enumerate() {
        match *t {
            Tok::Digit { v: 0, .. } => {
                if toks.len() == 1 {
                    return Some(0.0);
                }
                // 零 is only a placeholder after a unit: 一百零八, 两万零五百
                if coeff.is_some() || !any_unit || zero {
                    return None;
                }
                zero = true;
            }
            Tok::Digit { v, .. } => {
                if coeff.is_some() {
                    return None;
                }
                let v = u64::from(v);
                coeff = Some(Coeff {
                    value: v as f64,
                    mant: Some(v),
                    dp: 0,
                });
            }
            Tok::Lit { value, mant, dp } => {
                if coeff.is_some() {
                    return None;
                }
                coeff = Some(Coeff { value, mant, dp });
            }
            Tok::Small(u) => {
                if u >= last_small {
                    return None;
                }
                let c = match coeff.take() {
                    Some(c) => c,
                    // 十 alone at the start of a section means 一十
                    None if u == 10
                        && section == 0.0
                        && (i == 0 || zero || last_small == u32::MAX) =>
                    {
                        Coeff {
                            value: 1.0,
                            mant: Some(1),
                            dp: 0,
                        }
                    }
                    None => return None,
                };
                section += c.scaled(u);
                last_small = u;
                zero = false;
                any_unit = true;
            }
            Tok::Big(u) => {
                if u >= last_big {
                    return None;
                }
                let only_coeff = section == 0.0;
                match coeff.take() {
                    Some(c) if only_coeff => section = c.scaled(u),
                    Some(c) => section = (section + c.value) * f64::from(u),
                    None if section == 0.0 => return None,
                    None => section *= f64::from(u),
                }
                if zero && section == 0.0 {
                    return None;
                }
                total += section;
                section = 0.0;
                last_small = u32::MAX;
                last_big = u;
                zero = false;
                any_unit = true;
            }
        }
    }
    if let Some(c) = coeff {
        let mult = if zero || !any_unit {
            1
        } else if last_small != u32::MAX {
            last_small / 10
        } else {
            last_big / 10
        };
        section += c.scaled(mult);
    } else if zero {
        return None; // trailing 零
    }
    total += section;
    // Guard against binary noise such as 4.35 × 10000 = 43499.999…
    let rounded = (total * 1e6).round() / 1e6;
    let v = if rounded.is_finite() && total.abs() < 1e12 {
        rounded
    } else {
        total
    };
    v.is_finite().then_some(v)
}

/// The longest number at the very start of `s`, with the bytes it spans.
///
/// `scan_number("1000多名")` is `Some((1000.0, 4))`; `scan_number("两万三千人")`
/// is `Some((23000.0, 12))`; `scan_number("人")` is `None`.
pub fn scan_number(s: &str) -> Option<(f64, usize)> {
    let mut toks = [(Tok::Small(0), 0usize); MAX_TOKENS];
    let n = tokenize(s, &mut toks);
    (1..=n)
        .rev()
        .find_map(|k| eval(&toks[..k]).map(|v| (v, toks[k - 1].1)))
}

/// Parses a whole token as a number; surrounding whitespace is ignored.
///
/// `parse_number("1.2万") == Some(12000.0)`, `parse_number("一百零八") == Some(108.0)`,
/// `parse_number("12人") == None`.
pub fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    match scan_number(s) {
        Some((v, len)) if len == s.len() => Some(v),
        _ => None,
    }
}

/// Every number in `s`, left to right, with its byte range. Matches never
/// overlap; each is the longest number starting at its position.
pub fn find_numbers(s: &str) -> Vec<(f64, Range<usize>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    let bytes = s.as_bytes();
    while pos < s.len() {
        let Some(c) = s[pos..].chars().next() else {
            break;
        };
        if c.is_ascii_digit() || is_cn_numeral_char(c) {
            if let Some((v, len)) = scan_number(&s[pos..]) {
                out.push((v, pos..pos + len));
                pos += len;
                continue;
            }
            if c.is_ascii_digit() {
                // an unreadable digit run (e.g. too long): skip all of it
                while pos < bytes.len() && (bytes[pos].is_ascii_digit() || bytes[pos] == b',') {
                    pos += 1;
                }
                continue;
            }
        }
        pos += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<f64>)] = &[
            ("45", Some(45.0)),
            ("54.8", Some(54.8)),
            ("1,200", Some(1200.0)),
            ("12,345,678", Some(12_345_678.0)),
            ("0", Some(0.0)),
            ("十", Some(10.0)),
            ("十五", Some(15.0)),
            ("二十", Some(20.0)),
            ("二十三", Some(23.0)),
            ("一百零八", Some(108.0)),
            ("一百一十", Some(110.0)),
            ("两百", Some(200.0)),
            ("三千五百", Some(3500.0)),
            ("三千零五", Some(3005.0)),
            ("两万三千", Some(23000.0)),
            ("两万零五百", Some(20500.0)),
            ("十万", Some(100_000.0)),
            ("一百五", Some(150.0)),
            ("两万三", Some(23000.0)),
            ("〇", Some(0.0)),
            ("零", Some(0.0)),
            ("二〇二六", Some(2026.0)),
            ("一九九八", Some(1998.0)),
            ("1.2万", Some(12000.0)),
            ("54.8万", Some(548_000.0)),
            ("4.35万", Some(43_500.0)),
            ("3千", Some(3000.0)),
            ("1万2千", Some(12000.0)),
            ("1.5亿", Some(150_000_000.0)),
            ("一亿两千万", Some(120_000_000.0)),
            (" 12 ", Some(12.0)),
            // not numbers
            ("", None),
            ("百", None),
            ("千", None),
            ("万", None),
            ("五四", None),
            ("三五", None),
            ("十五百", None),
            ("一百零", None),
            ("12人", None),
            ("1,20", None),
            ("abc", None),
            ("一二", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_number(s), *want, "parse_number({s:?})");
        }
    }

    #[test]
    fn scan_table() {
        let cases: &[(&str, Option<(f64, usize)>)] = &[
            ("1000多名", Some((1000.0, 4))),
            ("二十三人", Some((23.0, 9))),
            ("两万三千人", Some((23000.0, 12))),
            ("54.8万元", Some((548_000.0, 7))),
            ("3.15 综治", Some((3.15, 4))),
            ("五四评优", Some((5.0, 3))),
            ("十一国庆", Some((11.0, 6))),
            ("万人", None),
            ("人", None),
            ("1,2000", Some((1.0, 1))),
        ];
        for (s, want) in cases {
            assert_eq!(scan_number(s), *want, "scan_number({s:?})");
        }
    }

    #[test]
    fn find_all() {
        let s = "走访148名学生 发放助学金54.8万元 统一";
        let got: Vec<_> = find_numbers(s)
            .into_iter()
            .map(|(v, r)| (v, &s[r]))
            .collect();
        assert_eq!(
            got,
            vec![(148.0, "148"), (548_000.0, "54.8万"), (1.0, "一")]
        );
        let s = "县城三里铺 二十三人";
        let got: Vec<_> = find_numbers(s)
            .into_iter()
            .map(|(v, r)| (v, &s[r]))
            .collect();
        assert_eq!(got, vec![(3.0, "三"), (23.0, "二十三")]);
        // a huge digit run is skipped rather than rescanned
        let long = "9".repeat(5000);
        assert!(find_numbers(&long).len() <= 1);
    }
}
