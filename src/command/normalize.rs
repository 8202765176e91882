//! Text clean-up applied to every incoming message before parsing.
//!
//! Cadres type on phones with Chinese IMEs: full-width digits and punctuation
//! (`认领 １２`, `地点：`), ideographic spaces, and zero-width characters pasted
//! from other apps are common. NFKC folds the full-width forms to ASCII; the
//! zero-width characters are dropped; runs of spaces become one space. Line
//! breaks are kept, since a multi-line `/log` means several records.

use unicode_normalization::UnicodeNormalization;

/// Characters that render as nothing and only confuse matching.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}'
    )
}

/// NFKC-normalise, drop zero-width characters, fold horizontal whitespace runs
/// into one ASCII space and trim every line. Line breaks (`\n`) are preserved;
/// `\r\n` becomes `\n`.
pub fn normalize(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut pending_space = false;
    for c in input.nfkc() {
        if is_invisible(c) || c == '\r' {
            continue;
        }
        if c == '\n' {
            // trim trailing spaces of the line just finished
            pending_space = false;
            out.push('\n');
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() && !out.ends_with('\n') {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out.trim_matches('\n').to_string()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn folds_full_width_and_invisible() {
        let cases = [
            ("认领 １２", "认领 12"),
            ("地点：三里铺", "地点:三里铺"),
            ("认\u{200B}领\u{FEFF} 12", "认领 12"),
            ("  a\u{3000}\u{3000}b  ", "a b"),
            ("第一行  \r\n  第二行", "第一行\n第二行"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "input {input:?}");
        }
    }
}
