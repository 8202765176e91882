//! FAQ matching by Chinese character bigrams, and the FAQ file formats.
//!
//! Why bigrams: Chinese has no spaces, and a county FAQ is small. Two
//! adjacent characters catch most words (入团, 年龄, 团课) without a
//! segmenter dictionary; Latin words and numbers count as whole tokens.
//! A question's own words weigh twice its answer's; both add up.

use std::collections::HashSet;

use crate::store::faq::Entry;

/// Share of the query's terms an entry must cover to be an answer.
pub const ANSWER_MIN: f64 = 0.3;

/// Characters that carry no meaning for matching.
fn is_filler(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || "，。？！、；：“”‘’（）《》【】…—·～的了吗呢啊吧呀么请问".contains(c)
}

/// The terms of a text: CJK bigrams (a lone CJK character counts alone)
/// and lowercase Latin/number words.
pub fn terms(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut run: Vec<char> = Vec::new();
    let mut word = String::new();
    let flush_run = |run: &mut Vec<char>, out: &mut HashSet<String>| {
        if run.len() == 1 {
            out.insert(run[0].to_string());
        }
        for w in run.windows(2) {
            out.insert(w.iter().collect());
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            flush_run(&mut run, &mut out);
            word.push(c.to_ascii_lowercase());
        } else {
            if !word.is_empty() {
                out.insert(std::mem::take(&mut word));
            }
            if is_filler(c) || !c.is_alphanumeric() {
                flush_run(&mut run, &mut out);
            } else {
                run.push(c);
            }
        }
    }
    flush_run(&mut run, &mut out);
    if !word.is_empty() {
        out.insert(word);
    }
    out
}

/// How well `entry` answers `query` (0..=1).
pub fn score(query: &HashSet<String>, entry: &Entry) -> f64 {
    if query.is_empty() {
        return 0.0;
    }
    let q = terms(&entry.question);
    let a = terms(&entry.answer);
    // A term in the question counts 2, in the answer 1, in both 3: of two
    // questions that match equally, the one whose answer is about it wins.
    let got: f64 = query
        .iter()
        .map(|t| f64::from(u8::from(q.contains(t)) * 2 + u8::from(a.contains(t))))
        .sum();
    got / (3.0 * query.len() as f64)
}

/// Entries by score, best first (ties by number), those scoring above 0.
pub fn rank<'a>(query: &str, entries: &'a [Entry]) -> Vec<(&'a Entry, f64)> {
    let q = terms(query);
    let mut out: Vec<(&Entry, f64)> = entries
        .iter()
        .map(|e| (e, score(&q, e)))
        .filter(|(_, s)| *s > 0.0)
        .collect();
    out.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.id.cmp(&b.0.id))
    });
    out
}

/// Longest question and answer accepted, in characters.
pub const MAX_QUESTION: usize = 200;
pub const MAX_ANSWER: usize = 2000;

/// Read a Markdown FAQ: each `## ` heading a question, the text up to the
/// next heading its answer. HTML comments and `# ` titles are skipped.
pub fn parse_markdown(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    let mut in_comment = false;
    for line in src.lines() {
        let t = line.trim();
        if in_comment {
            in_comment = !t.contains("-->");
            continue;
        }
        if t.starts_with("<!--") {
            in_comment = !t.contains("-->");
            continue;
        }
        if let Some(q) = t.strip_prefix("## ") {
            if let Some((q, a)) = current.take() {
                out.push((q, a.join("\n").trim().to_string()));
            }
            current = Some((q.trim().to_string(), Vec::new()));
        } else if t.starts_with("# ") {
            continue;
        } else if let Some((_, a)) = current.as_mut() {
            a.push(line);
        }
    }
    if let Some((q, a)) = current {
        out.push((q, a.join("\n").trim().to_string()));
    }
    out.retain(|(q, a)| !q.is_empty() && !a.is_empty());
    out
}

/// The shipped default FAQ.
pub const DEFAULT_FAQ: &str = include_str!("../data/faq.md");

/// Read a FAQ file for import: Markdown (`.md`), or CSV/XLSX with columns
/// 问题 and 答案 (or question/answer; else the first two columns). A table
/// that can't be read is told in `locale`.
pub fn read_file(path: &std::path::Path, locale: &str) -> Result<Vec<(String, String)>, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let list = if matches!(ext.as_str(), "md" | "markdown" | "txt") {
        let bytes = crate::table::read_capped(path)
            .map_err(|e| format!("{}: {}", path.display(), e.message(locale)))?;
        parse_markdown(&crate::table::decode(&bytes))
    } else {
        let table = crate::table::Table::read(path)
            .map_err(|e| format!("{}: {}", path.display(), e.message(locale)))?;
        let q = table.column(&["问题", "question"]).or(Some(0));
        let a = table.column(&["答案", "answer"]).or(Some(1));
        table
            .rows
            .iter()
            .map(|(_, r)| {
                (
                    crate::table::cell(r, q).trim().to_string(),
                    crate::table::cell(r, a).trim().to_string(),
                )
            })
            .filter(|(q, a)| !q.is_empty() && !a.is_empty())
            .collect()
    };
    if let Some((q, _)) = list
        .iter()
        .find(|(q, a)| q.chars().count() > MAX_QUESTION || a.chars().count() > MAX_ANSWER)
    {
        return Err(format!(
            "too long (question ≤ {MAX_QUESTION}, answer ≤ {MAX_ANSWER}): {}",
            q.chars().take(30).collect::<String>()
        ));
    }
    Ok(list)
}

/// `tuanbot import faq FILE`: add the file's entries, skipping questions
/// already present. Returns (added, skipped).
pub async fn import(
    store: &crate::store::Store,
    list: &[(String, String)],
    now_ms: i64,
) -> crate::store::Result<(usize, usize)> {
    let mut tx = store.begin().await?;
    let (mut added, mut skipped) = (0, 0);
    for (q, a) in list {
        if crate::store::faq::has_question(&mut tx, q).await? {
            skipped += 1;
        } else {
            crate::store::faq::add(&mut tx, q, a, "import", now_ms).await?;
            added += 1;
        }
    }
    tx.commit().await?;
    Ok((added, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigrams_and_words() {
        let t = terms("入团年龄？ QQ群");
        for w in ["入团", "团年", "年龄", "qq", "群"] {
            assert!(t.contains(w), "{w}: {t:?}");
        }
    }

    #[test]
    fn default_faq_parses() {
        let list = parse_markdown(DEFAULT_FAQ);
        assert!(list.len() >= 10);
        assert_eq!(list[0].0, "入团年龄是多少？");
        assert!(
            list.iter()
                .all(|(q, a)| q.chars().count() <= MAX_QUESTION && a.chars().count() <= MAX_ANSWER)
        );
    }
}
