//! `/faq` (常见问题): grammar.
//!
//! ```text
//! /faq                      list the questions
//! /faq add 问题 | 答案       (添加) staff
//! /faq del N                (删除) staff
//! /faq WORDS                the best answers for WORDS
//! ```

use super::{Command, ParseError, Parsed};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaqArgs {
    List,
    Add { question: String, answer: String },
    Del(i64),
    Ask(String),
}

pub fn faq(args: &str) -> Parsed {
    let args = args.trim();
    if args.is_empty() {
        return Parsed::Command(Command::Faq(FaqArgs::List));
    }
    let (word, rest) = match args.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (args, ""),
    };
    match word.to_ascii_lowercase().as_str() {
        "add" | "添加" | "新增" => match rest.split_once('|') {
            Some((q, a)) if !q.trim().is_empty() && !a.trim().is_empty() => {
                Parsed::Command(Command::Faq(FaqArgs::Add {
                    question: q.trim().to_string(),
                    answer: a.trim().to_string(),
                }))
            }
            _ => Parsed::Invalid(ParseError::FaqUsage),
        },
        "del" | "delete" | "删除" => {
            let n = rest.trim_start_matches('#').trim_end_matches('号');
            match n.parse::<i64>() {
                Ok(n) if n > 0 => Parsed::Command(Command::Faq(FaqArgs::Del(n))),
                _ => Parsed::Invalid(ParseError::FaqUsage),
            }
        }
        _ => Parsed::Command(Command::Faq(FaqArgs::Ask(args.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let table: &[(&str, Parsed)] = &[
            ("", Parsed::Command(Command::Faq(FaqArgs::List))),
            (
                "add 入团年龄 | 14到28岁",
                Parsed::Command(Command::Faq(FaqArgs::Add {
                    question: "入团年龄".into(),
                    answer: "14到28岁".into(),
                })),
            ),
            ("add 没有竖线", Parsed::Invalid(ParseError::FaqUsage)),
            ("add | 只有答案", Parsed::Invalid(ParseError::FaqUsage)),
            ("del 3", Parsed::Command(Command::Faq(FaqArgs::Del(3)))),
            ("删除 #3", Parsed::Command(Command::Faq(FaqArgs::Del(3)))),
            ("del x", Parsed::Invalid(ParseError::FaqUsage)),
            (
                "入团 年龄",
                Parsed::Command(Command::Faq(FaqArgs::Ask("入团 年龄".into()))),
            ),
        ];
        for (input, want) in table {
            assert_eq!(&faq(input), want, "{input}");
        }
    }
}
