//! Arguments of the membership commands: `我是 ORG [CODE]` names an org
//! (or a number from the list offered) and may carry a join code; 同意/拒绝
//! name a join request by its number or by the applicant's name.

use super::scope::OrgRef;

/// What followed `我是`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamArgs {
    /// The text is a number: it may pick from the list the bot offered
    /// (`我是 2`); with no list open it is looked up as a name.
    pub choice: Option<usize>,
    /// The org as named, a join code cut off.
    pub org: OrgRef,
    /// A join code typed after the name.
    pub code: Option<String>,
}

impl IamArgs {
    /// `None` for an empty text.
    pub fn parse(text: &str) -> Option<IamArgs> {
        let text = text.trim();
        let (name, code) = split_code(text);
        Some(IamArgs {
            choice: text.parse::<usize>().ok(),
            org: OrgRef::new(name)?,
            code: code.map(str::to_string),
        })
    }
}

/// Split a trailing join code off what followed `我是`: `县一中 482193`,
/// `县一中 邀请码 482193`. A code is four or more ASCII digits standing
/// apart; anything else is part of the org name.
pub fn split_code(query: &str) -> (&str, Option<&str>) {
    let q = query.trim();
    let Some((head, last)) = q.rsplit_once(char::is_whitespace) else {
        return (q, None);
    };
    if last.len() >= 4 && last.chars().all(|c| c.is_ascii_digit()) {
        let head = head.trim_end();
        let head = head.strip_suffix("邀请码").unwrap_or(head).trim_end();
        if !head.is_empty() {
            return (head, Some(last));
        }
    }
    (q, None)
}

/// A join request as named in `同意 3`, `同意 #3`, `拒绝 3号`, `同意 路人甲`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRef {
    /// As typed (trimmed, never empty): a number, or a name to look for.
    pub text: String,
    /// The request's number, when the text reads as one.
    pub number: Option<i64>,
}

impl RequestRef {
    /// `None` for an empty text (the request replied to, or the only one).
    pub fn parse(text: &str) -> Option<RequestRef> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let number = text
            .trim_start_matches('#')
            .trim_end_matches('号')
            .parse::<i64>()
            .ok();
        Some(RequestRef {
            text: text.to_string(),
            number,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_split_off() {
        let cases: &[(&str, (&str, Option<&str>))] = &[
            ("县一中 482193", ("县一中", Some("482193"))),
            ("县一中 邀请码 482193", ("县一中", Some("482193"))),
            ("县一中邀请码 4821", ("县一中", Some("4821"))),
            ("县一中", ("县一中", None)),
            ("1", ("1", None)),
            ("482193", ("482193", None)),
            ("县 一中", ("县 一中", None)),
            ("县一中 12", ("县一中 12", None)),
            ("县一中 48a193", ("县一中 48a193", None)),
        ];
        for (q, want) in cases {
            assert_eq!(split_code(q), *want, "{q}");
        }
    }

    #[test]
    fn iam_args() {
        let org = |s: &str| OrgRef::new(s).unwrap();
        assert_eq!(
            IamArgs::parse(" 县一中 邀请码 482193 "),
            Some(IamArgs {
                choice: None,
                org: org("县一中"),
                code: Some("482193".into()),
            })
        );
        assert_eq!(
            IamArgs::parse("2"),
            Some(IamArgs {
                choice: Some(2),
                org: org("2"),
                code: None,
            })
        );
        assert_eq!(
            IamArgs::parse("县 一中"),
            Some(IamArgs {
                choice: None,
                org: org("县 一中"),
                code: None,
            })
        );
        // Look-alikes of a choice are names.
        assert_eq!(IamArgs::parse("2号").map(|a| a.choice), Some(None));
        assert_eq!(IamArgs::parse("-2").map(|a| a.choice), Some(None));
        assert_eq!(IamArgs::parse(""), None);
    }

    #[test]
    fn request_refs() {
        let r = |text: &str, number| {
            Some(RequestRef {
                text: text.into(),
                number,
            })
        };
        assert_eq!(RequestRef::parse(""), None);
        assert_eq!(RequestRef::parse("  "), None);
        assert_eq!(RequestRef::parse("3"), r("3", Some(3)));
        assert_eq!(RequestRef::parse(" #3 "), r("#3", Some(3)));
        assert_eq!(RequestRef::parse("3号"), r("3号", Some(3)));
        // Names, and look-alikes of numbers, are looked for by name.
        assert_eq!(RequestRef::parse("路人甲"), r("路人甲", None));
        assert_eq!(RequestRef::parse("@小李"), r("@小李", None));
        assert_eq!(RequestRef::parse("三"), r("三", None));
        assert_eq!(RequestRef::parse("3 号"), r("3 号", None));
        assert_eq!(RequestRef::parse("#3号楼"), r("#3号楼", None));
    }
}
