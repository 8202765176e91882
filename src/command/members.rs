//! Arguments of the membership commands: 同意/拒绝 name a join request by
//! its number or by the applicant's name.

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
