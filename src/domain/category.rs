//! Activity categories used in league-work statistics.
//!
//! Grammar: a category is written as exactly one of its Chinese names:
//!
//! ```text
//! category := 志愿服务 | 主题团日 | 团课 | 团员大会 | 支委会 | 团小组会 | 组织生活会
//!           | 入团仪式 | 培训 | 宣传 | 竞赛 | 文体活动 | 帮扶慰问 | 调研座谈 | 其他
//! ```
//!
//! The Chinese name is the canonical form everywhere: `Display`, `as_str`,
//! `FromStr` and serde all use it, so stored JSON and chat output read the
//! way cadres write them. Keyword rules that *guess* a category from free
//! text live in `locales/activity.toml`, not here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One kind of league activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// 志愿服务: volunteer service (tree planting, blood donation, clean-ups…).
    VolunteerService,
    /// 主题团日: the themed league day held by a branch.
    ThemedLeagueDay,
    /// 团课: league class / political lecture.
    LeagueLecture,
    /// 团员大会: general meeting of a branch's members.
    MembersMeeting,
    /// 支委会: branch committee meeting.
    CommitteeMeeting,
    /// 团小组会: league group meeting.
    GroupMeeting,
    /// 组织生活会: organisational life meeting (incl. democratic appraisal).
    OrganisationalLifeMeeting,
    /// 入团仪式: admission ceremony for new members.
    AdmissionCeremony,
    /// 培训: training course.
    Training,
    /// 宣传: publicity / awareness campaign.
    Publicity,
    /// 竞赛: contest, competition, essay call.
    Competition,
    /// 文体活动: cultural and sports activity (gala, sports meet…).
    CulturalSports,
    /// 帮扶慰问: assistance and visits to people in need.
    AssistanceVisits,
    /// 调研座谈: research visits and forums.
    ResearchForum,
    /// 其他: anything else.
    Other,
}

impl Category {
    /// Every category, in the official reporting order.
    pub const ALL: [Category; 15] = [
        Category::VolunteerService,
        Category::ThemedLeagueDay,
        Category::LeagueLecture,
        Category::MembersMeeting,
        Category::CommitteeMeeting,
        Category::GroupMeeting,
        Category::OrganisationalLifeMeeting,
        Category::AdmissionCeremony,
        Category::Training,
        Category::Publicity,
        Category::Competition,
        Category::CulturalSports,
        Category::AssistanceVisits,
        Category::ResearchForum,
        Category::Other,
    ];

    /// The canonical Chinese name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::VolunteerService => "志愿服务",
            Category::ThemedLeagueDay => "主题团日",
            Category::LeagueLecture => "团课",
            Category::MembersMeeting => "团员大会",
            Category::CommitteeMeeting => "支委会",
            Category::GroupMeeting => "团小组会",
            Category::OrganisationalLifeMeeting => "组织生活会",
            Category::AdmissionCeremony => "入团仪式",
            Category::Training => "培训",
            Category::Publicity => "宣传",
            Category::Competition => "竞赛",
            Category::CulturalSports => "文体活动",
            Category::AssistanceVisits => "帮扶慰问",
            Category::ResearchForum => "调研座谈",
            Category::Other => "其他",
        }
    }

    /// Position in [`Category::ALL`]; handy for per-category arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a string is not one of the 15 category names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCategory(pub String);

impl fmt::Display for UnknownCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown activity category: {:?}", self.0)
    }
}

impl std::error::Error for UnknownCategory {}

impl FromStr for Category {
    type Err = UnknownCategory;

    /// Accepts exactly a Chinese category name (surrounding whitespace ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCategory(s.to_string()))
    }
}

impl Serialize for Category {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Category {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Category;

    #[test]
    fn names_round_trip() {
        assert_eq!(Category::ALL.len(), 15);
        for (i, c) in Category::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Category>(&json).unwrap(), c);
        }
        assert!("志愿".parse::<Category>().is_err());
        assert_eq!(" 团课 ".parse::<Category>(), Ok(Category::LeagueLecture));
    }
}
