//! Who a command is about: the whole county, a kind of org, or orgs named
//! as the person typed them. Resolving a name against the database is the
//! services' business; here a name is only an [`OrgRef`].
//!
//! ```text
//! scope   := COUNTY_WORD | ORG                 /stats 全县, /report 县一中, /bind 全县
//! targets := target (('、'|','|'，'|'/'|'+') target)*     /notice 学校、县一中 …
//! target  := COUNTY_WORD | OWN_WORD | KIND_WORD | ORG
//! period_scope := WORD*    the first period anywhere (本月, 3月1日至6月30日);
//!                          the words that are no period, joined, the scope
//! ```

use std::fmt;

use chrono::NaiveDate;

use super::dates::Period;
use crate::domain::OrgKind;

/// Words that mean the whole county (all its orgs, or the committee-wide
/// group). The one list every command uses; matched as a whole word.
pub const COUNTY_WORDS: &[&str] = &[
    "全县",
    "全部",
    "所有",
    "全体",
    "全县团干",
    "团干联盟",
    "全县团干群",
    "county",
    "all",
];

/// Words that mean the sender's own org (notice targets).
pub const OWN_WORDS: &[&str] = &["本组织", "本单位", "本团委", "own"];

/// Words that name a kind of org (notice targets). Exact words only, so an
/// org called 县实验中学 is not taken for "schools".
const KIND_WORDS: &[(&str, OrgKind)] = &[
    ("学校", OrgKind::School),
    ("中学", OrgKind::School),
    ("乡镇", OrgKind::Township),
    ("街道", OrgKind::Township),
    ("机关", OrgKind::Agency),
    ("事业单位", OrgKind::Agency),
    ("企业", OrgKind::Enterprise),
    ("非公", OrgKind::Enterprise),
    ("村", OrgKind::Village),
    ("社区", OrgKind::Village),
    ("社会组织", OrgKind::Other),
];

/// `word` means the whole county.
pub fn is_county(word: &str) -> bool {
    COUNTY_WORDS.contains(&word.trim())
}

/// The kind of org `word` names: a word of [`KIND_WORDS`] or a kind's label.
pub fn kind_word(word: &str) -> Option<OrgKind> {
    KIND_WORDS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, k)| *k)
        .or_else(|| OrgKind::ALL.iter().copied().find(|k| k.label() == word))
}

/// An org as the person named it (`县一中`, `县一中团委`, an alias, a
/// number from a list): the text they typed, trimmed, never empty.
/// Services resolve it against the orgs in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRef(String);

impl OrgRef {
    /// `None` for an empty or blank text.
    pub fn new(text: &str) -> Option<OrgRef> {
        let text = text.trim();
        (!text.is_empty()).then(|| OrgRef(text.to_string()))
    }

    /// What the person typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The whole county or one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    County,
    Org(OrgRef),
}

impl Scope {
    /// A county word or an org's name; `None` for an empty text.
    pub fn parse(text: &str) -> Option<Scope> {
        if is_county(text) {
            return Some(Scope::County);
        }
        OrgRef::new(text).map(Scope::Org)
    }
}

/// Who a notice is for, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    County,
    Own,
    Kind(OrgKind),
    Org(OrgRef),
}

impl Target {
    fn parse(part: &str) -> Option<Target> {
        let part = part.trim();
        if part.is_empty() {
            return None;
        }
        Some(if is_county(part) {
            Target::County
        } else if OWN_WORDS.contains(&part) {
            Target::Own
        } else if let Some(k) = kind_word(part) {
            Target::Kind(k)
        } else {
            Target::Org(OrgRef::new(part)?)
        })
    }
}

/// A word read as a list of targets (`县一中、县二中`, `学校`, `全部`).
/// Empty parts are skipped; `None` when nothing is left. Whether an
/// [`Target::Org`] names an org is for the service to find out.
pub fn targets(word: &str) -> Option<Vec<Target>> {
    let out: Vec<Target> = word
        .split(['、', ',', '，', '/', '+'])
        .filter_map(Target::parse)
        .collect();
    (!out.is_empty()).then_some(out)
}

/// The arguments of `/stats`, `/report` and `/stars`: a period and a scope,
/// in any order (`全县 本月`, `本季度 县一中`). Either may be missing; the
/// service picks the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodScope {
    /// The first period in the arguments.
    pub period: Option<Period>,
    /// The words that are not a period, joined without spaces.
    pub scope: Option<Scope>,
}

impl PeriodScope {
    /// Read `args` on `today`.
    pub fn parse(args: &str, today: NaiveDate) -> PeriodScope {
        let who: String = args
            .split_whitespace()
            .filter(|w| Period::find(w, today).is_none())
            .collect();
        PeriodScope {
            period: Period::find(args, today),
            scope: Scope::parse(&who),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(s: &str) -> OrgRef {
        OrgRef::new(s).unwrap()
    }

    /// A period word never leaks into the scope: `上半年 全县` is the
    /// county over January–June, `3-4月 县一中` an org over two months.
    #[test]
    fn periods_never_name_an_org() {
        let today = NaiveDate::from_ymd_opt(2026, 5, 20).unwrap();
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let ps = PeriodScope::parse("上半年 全县", today);
        assert_eq!(ps.scope, Some(Scope::County));
        assert_eq!(
            ps.period.map(|p| (p.from, p.to)),
            Some((day(1, 1), day(6, 30)))
        );
        let ps = PeriodScope::parse("3-4月 县一中", today);
        assert_eq!(ps.scope, Some(Scope::Org(org("县一中"))));
        assert_eq!(
            ps.period.map(|p| (p.from, p.to)),
            Some((day(3, 1), day(4, 30)))
        );
        let ps = PeriodScope::parse("今年以来", today);
        assert_eq!(ps.scope, None);
        assert_eq!(ps.period.map(|p| (p.from, p.to)), Some((day(1, 1), today)));
    }

    #[test]
    fn county_words() {
        for w in COUNTY_WORDS {
            assert!(is_county(w), "{w}");
            assert_eq!(Scope::parse(w), Some(Scope::County));
        }
        assert!(is_county(" 全县 "));
        // Look-alikes are org names, not the county.
        for w in [
            "全县一中",
            "县",
            "全",
            "所有人",
            "County团委",
            "all1",
            "全 县",
        ] {
            assert!(!is_county(w), "{w}");
            assert_eq!(Scope::parse(w), Some(Scope::Org(org(w))), "{w}");
        }
    }

    #[test]
    fn org_refs_keep_what_was_typed() {
        assert_eq!(org(" 县一中团委 ").as_str(), "县一中团委");
        assert_eq!(org("县 一中").as_str(), "县 一中");
        assert_eq!(org("（第二）中学").to_string(), "（第二）中学");
        assert_eq!(OrgRef::new(""), None);
        assert_eq!(OrgRef::new("  "), None);
        assert_eq!(Scope::parse(""), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(kind_word("学校"), Some(OrgKind::School));
        assert_eq!(kind_word("社区"), Some(OrgKind::Village));
        assert_eq!(kind_word(OrgKind::Agency.label()), Some(OrgKind::Agency));
        for w in ["县实验中学", "学校们", "村委会", ""] {
            assert_eq!(kind_word(w), None, "{w}");
        }
    }

    #[test]
    fn target_lists() {
        assert_eq!(
            targets("县一中、县二中"),
            Some(vec![Target::Org(org("县一中")), Target::Org(org("县二中"))])
        );
        assert_eq!(
            targets("学校+本组织,全部"),
            Some(vec![
                Target::Kind(OrgKind::School),
                Target::Own,
                Target::County
            ])
        );
        assert_eq!(targets("全体、"), Some(vec![Target::County]));
        assert_eq!(
            targets("防汛通知"),
            Some(vec![Target::Org(org("防汛通知"))])
        );
        assert_eq!(targets(""), None);
        assert_eq!(targets("、,，"), None);
    }

    #[test]
    fn periods_and_scopes() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 18).unwrap();
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let march = Some(Period {
            from: day(3, 1),
            to: day(3, 31),
        });
        let ps = |text| PeriodScope::parse(text, today);
        assert_eq!(
            ps("全县 本月"),
            PeriodScope {
                period: march,
                scope: Some(Scope::County)
            }
        );
        assert_eq!(
            ps("本月 县一中"),
            PeriodScope {
                period: march,
                scope: Some(Scope::Org(org("县一中")))
            }
        );
        assert_eq!(
            ps("3月1日至3月10日"),
            PeriodScope {
                period: Some(Period {
                    from: day(3, 1),
                    to: day(3, 10)
                }),
                scope: None
            }
        );
        assert_eq!(
            ps(""),
            PeriodScope {
                period: None,
                scope: None
            }
        );
        // An org's name split by a space is joined; a word that is no
        // period stays part of the name.
        assert_eq!(ps("县 一中").scope, Some(Scope::Org(org("县一中"))));
        assert_eq!(
            ps("第二批 全县"),
            PeriodScope {
                period: None,
                scope: Some(Scope::Org(org("第二批全县")))
            }
        );
        // Look-alikes of periods are no period.
        for text in ["本", "月", "13月", "第五季度", "Q5"] {
            assert_eq!(ps(text).period, None, "{text}");
        }
    }
}
