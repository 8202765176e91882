//! Newtypes and enums whose only constructors validate, so an invalid value
//! cannot exist past the boundary. Each has a stable `as_str` used in the
//! database and a `FromStr` for reading it back.

pub mod category;
pub mod wish;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Defines an enum stored as a short ASCII code, with `as_str`/`FromStr`/`Display`.
macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $code:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stable code stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, UnknownCode> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($code $(| $alias)* => Ok($name::$variant),)+
                    _ => Err(UnknownCode(s.to_string())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A code that names no known value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownCode(pub String);

code_enum!(
    /// The chat platform a person, chat or message belongs to.
    Platform {
        Console => "console",
        Telegram => "telegram" | "tg",
        Qq => "qq" | "onebot",
        // Issue 22: QQ through the official QQ Bot API (openids, not QQ numbers).
        QqBot => "qqbot",
    }
);

code_enum!(
    /// What a person may do. Staff (团县委) can do everything; a cadre
    /// (团支书 / 团委书记) acts for their org; a member (团员) joins in.
    Role {
        Staff => "staff" | "团县委" | "工作人员",
        Cadre => "cadre" | "团干部" | "书记" | "干部",
        Member => "member" | "团员" | "成员",
    }
);

code_enum!(
    /// A group chat or a one-to-one chat with the bot.
    ChatKind {
        Group => "group",
        Private => "private",
    }
);

impl Role {
    /// Rank for comparisons: staff > cadre > member.
    pub fn rank(self) -> u8 {
        match self {
            Role::Staff => 2,
            Role::Cadre => 1,
            Role::Member => 0,
        }
    }

    /// At least as strong as `other`.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}

/// The kind of a league organisation, as county org lists name them (类别).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrgKind {
    /// 团县委: the county committee itself.
    Committee,
    /// 学校团委
    School,
    /// 机关事业单位团组织
    Agency,
    /// 企业团组织 (incl. 非公企业, 园区团工委)
    Enterprise,
    /// 乡镇大团委 / 乡镇团委 / 街道团工委
    Township,
    /// 村/社区团支部
    Village,
    /// 社会组织团组织 and anything else
    Other,
}

impl OrgKind {
    pub const ALL: &'static [OrgKind] = &[
        OrgKind::Committee,
        OrgKind::School,
        OrgKind::Agency,
        OrgKind::Enterprise,
        OrgKind::Township,
        OrgKind::Village,
        OrgKind::Other,
    ];

    /// Stable code stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Committee => "committee",
            OrgKind::School => "school",
            OrgKind::Agency => "agency",
            OrgKind::Enterprise => "enterprise",
            OrgKind::Township => "township",
            OrgKind::Village => "village",
            OrgKind::Other => "other",
        }
    }

    /// The Chinese label used in org lists (类别 column).
    pub fn label(self) -> &'static str {
        match self {
            OrgKind::Committee => "团县委",
            OrgKind::School => "学校团委",
            OrgKind::Agency => "机关事业单位团组织",
            OrgKind::Enterprise => "企业团组织",
            OrgKind::Township => "乡镇大团委",
            OrgKind::Village => "村社区团组织",
            OrgKind::Other => "其他团组织",
        }
    }

    /// Read a 类别 as written in a county list, or a stored code. Accepts the
    /// short words staff use when targeting (`学校`, `乡镇`, `机关`, `企业`).
    pub fn parse(s: &str) -> Option<OrgKind> {
        let s = s.trim();
        if let Some(k) = OrgKind::ALL.iter().find(|k| k.as_str() == s) {
            return Some(*k);
        }
        let table: &[(&str, OrgKind)] = &[
            ("团县委", OrgKind::Committee),
            ("县委", OrgKind::Committee),
            ("学校", OrgKind::School),
            ("中学", OrgKind::School),
            ("职校", OrgKind::School),
            ("机关", OrgKind::Agency),
            ("事业单位", OrgKind::Agency),
            ("企业", OrgKind::Enterprise),
            ("非公", OrgKind::Enterprise),
            ("园区", OrgKind::Enterprise),
            ("乡镇", OrgKind::Township),
            ("街道", OrgKind::Township),
            ("村", OrgKind::Village),
            ("社区", OrgKind::Village),
            ("社会组织", OrgKind::Other),
            ("其他", OrgKind::Other),
        ];
        table
            .iter()
            .find(|(word, _)| s.contains(word))
            .map(|(_, k)| *k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>().unwrap(), *p);
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), *r);
        }
        for k in OrgKind::ALL {
            assert_eq!(OrgKind::parse(k.as_str()), Some(*k));
            assert_eq!(OrgKind::parse(k.label()), Some(*k));
        }
        assert_eq!("团干部".parse::<Role>().unwrap(), Role::Cadre);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn org_kinds_from_county_lists() {
        assert_eq!(OrgKind::parse("学校团委"), Some(OrgKind::School));
        assert_eq!(OrgKind::parse("机关事业单位团组织"), Some(OrgKind::Agency));
        assert_eq!(OrgKind::parse("乡镇大团委"), Some(OrgKind::Township));
        assert_eq!(OrgKind::parse("企业团组织"), Some(OrgKind::Enterprise));
        assert_eq!(OrgKind::parse("团县委"), Some(OrgKind::Committee));
        assert_eq!(OrgKind::parse("火星"), None);
    }
}
