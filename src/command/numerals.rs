//! Numbers as people type them: ASCII digits (`12`, `2.5`) or Chinese
//! numerals (`十二`, `二十五`, `一百零八`, `两千`, `三万五`).
//!
//! Two entry points, kept to these signatures so another implementation can
//! replace this file: [`parse_number`] for a whole string, [`scan_number`]
//! for a number at the start of a string (returns the value and how many
//! bytes it used).

/// The whole of `s` (trimmed) as a number.
pub fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    match scan_number(s) {
        Some((v, used)) if used == s.len() => Some(v),
        _ => None,
    }
}

/// A number at the start of `s`: its value and its length in bytes.
pub fn scan_number(s: &str) -> Option<(f64, usize)> {
    scan_digits(s).or_else(|| scan_chinese(s))
}

fn scan_digits(s: &str) -> Option<(f64, usize)> {
    let int = s.bytes().take_while(u8::is_ascii_digit).count();
    if int == 0 {
        return None;
    }
    let mut end = int;
    let rest = &s.as_bytes()[int..];
    if rest.first() == Some(&b'.') {
        let frac = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if frac > 0 {
            end += 1 + frac;
        }
    }
    s[..end].parse::<f64>().ok().map(|v| (v, end))
}

fn digit(c: char) -> Option<u64> {
    Some(match c {
        '零' | '〇' => 0,
        '一' | '壹' => 1,
        '二' | '两' | '贰' => 2,
        '三' | '叁' => 3,
        '四' | '肆' => 4,
        '五' | '伍' => 5,
        '六' | '陆' => 6,
        '七' | '柒' => 7,
        '八' | '捌' => 8,
        '九' | '玖' => 9,
        _ => return None,
    })
}

fn unit(c: char) -> Option<u64> {
    Some(match c {
        '十' | '拾' => 10,
        '百' | '佰' => 100,
        '千' | '仟' => 1000,
        _ => return None,
    })
}

/// Chinese numerals up to 亿 (exclusive). `十二` = 12, `一二三` (digit by
/// digit) = 123, `三万五` = 35000, `两百五` = 250.
fn scan_chinese(s: &str) -> Option<(f64, usize)> {
    let mut total: u64 = 0; // completed 万 groups
    let mut section: u64 = 0; // below 万
    let mut pending: Option<u64> = None; // a digit waiting for its unit
    let mut last_unit: u64 = 0;
    let mut used = 0;
    let mut only_digits = true;
    let mut digits: Vec<u64> = Vec::new();
    // A 零 since the last unit: the trailing digit is then a units digit.
    let mut had_zero = false;
    for (i, c) in s.char_indices() {
        if let Some(d) = digit(c) {
            digits.push(d);
            had_zero |= d == 0;
            if let Some(p) = pending
                && p != 0
                && d != 0
            {
                // `一二` digit by digit: not a place-value numeral
                if !only_digits {
                    break;
                }
            }
            pending = Some(d);
        } else if let Some(u) = unit(c) {
            only_digits = false;
            let d = pending.take().unwrap_or(1);
            section = section.checked_add(d.checked_mul(u)?)?;
            last_unit = u;
            had_zero = false;
        } else if c == '万' {
            only_digits = false;
            let d = pending.take().unwrap_or(0);
            section = section.checked_add(d)?;
            if section == 0 {
                break;
            }
            total = total.checked_add(section.checked_mul(10_000)?)?;
            section = 0;
            last_unit = 10_000;
            had_zero = false;
        } else {
            break;
        }
        used = i + c.len_utf8();
    }
    if used == 0 {
        return None;
    }
    if only_digits {
        // `一二三` read digit by digit; a lone `零` is 0.
        let v = digits
            .iter()
            .try_fold(0u64, |acc, d| acc.checked_mul(10)?.checked_add(*d))?;
        return Some((v as f64, used));
    }
    if let Some(d) = pending {
        // `两百五` = 250, `三万五` = 35000: a trailing digit is one place below.
        let place = match last_unit {
            _ if had_zero => 1,
            10_000 if section == 0 => 1000,
            u if u >= 100 => u / 10,
            _ => 1,
        };
        section = section.checked_add(d.checked_mul(place)?)?;
    }
    Some(((total + section) as f64, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, Option<f64>)] = &[
            ("12", Some(12.0)),
            ("2.5", Some(2.5)),
            ("十", Some(10.0)),
            ("十二", Some(12.0)),
            ("二十", Some(20.0)),
            ("二十五", Some(25.0)),
            ("一百零八", Some(108.0)),
            ("一百一十", Some(110.0)),
            ("两百五", Some(250.0)),
            ("两千", Some(2000.0)),
            ("三万五", Some(35000.0)),
            ("一万零五", Some(10005.0)),
            ("八百", Some(800.0)),
            ("一二三", Some(123.0)),
            ("零", Some(0.0)),
            ("", None),
            ("abc", None),
            ("十二号", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_number(s), *want, "{s:?}");
        }
        assert_eq!(scan_number("十二号"), Some((12.0, "十二".len())));
        assert_eq!(scan_number("15、23"), Some((15.0, 2)));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "[0-9一二两三四五六七八九十百千万零〇.号、 ]{0,30}") {
            let _ = scan_number(&s);
            let _ = parse_number(&s);
        }
    }
}
