//! Activity reports: one line of a `/log` message becomes one [`ActivityReport`].
//!
//! Cadres write reports the way they write summaries, not forms:
//!
//! ```text
//! /log 3月5日 学雷锋志愿服务 参加团员45人 服务时长90小时 地点三里铺
//! 记录 昨天在县城三里铺组织1000多名团员义务植树5500多株
//! ```
//!
//! # Grammar
//!
//! ```text
//! message  := command? line ('\n' line)*        -- parse_activity_parts: one record
//!                                                  per non-empty line, or per part
//!                                                  of a line holding several
//! line     := part ((separator | '、') part)*     -- a part has its own day (or
//!                                                  同日/当天) or activity keyword
//!                                                  and its own head count
//! command  := '/log' | '记录' | '/记录' | '#记录' …  (commands.prefixes), '@bot' allowed
//! part     := bullet? segment (separator segment)*
//! bullet   := '-' | '•' | '1.' | '1、' | '(1)'
//! separator:= whitespace | , | ; | 。 | ! | ?        -- never inside quotes
//! segment  := free text mixing, in any order:
//!   date      -- dates.rs, past-clamped; the first day named is the date
//!   time      -- 上午, 下午3点, 18:00: recognised and skipped
//!   location  -- marker place | a segment that is nothing but a place name
//!   count     -- approx? number approx? unit approx?   (numbers: numerals.rs)
//!   keyword   -- category evidence            (categories.*)
//!   theme     -- “…” 《…》 「…」 『…』 "…"
//!   words     -- everything else; the title is read from these
//! marker   := explicit (地点, 地点:, 活动地点)      -- takes the rest of the segment
//!           | at (在, 于)       -- place runs to the next stop word and must end in a
//!                                  place suffix, or be followed directly by a verb
//!           | to (到, 赴, 走进)  -- place must end in a place suffix
//! place    := cut after its last place suffix (镇 乡 村 馆 院 园 室 广场 社区 …);
//!             not a place: 在…的带领下 (location.cancel), 全县/各村 (reject)
//! approx   := 约 | 近 | 超过 … before, 余 | 多 | 来 between, 左右 | 上下 after;
//!             also round numbers without digits: 近百人, 百余人, 上千名
//! unit     := person (人 名 位) | person_times (人次) | hours (小时, 个半小时, 分钟)
//!           | things (份 株 篇 册 元 个 …) | scaled (万元 → 元 × 10000)
//! ```
//!
//! # How counts are read
//!
//! * **Participants** are head counts: N人/N名/N位, a bare number after a
//!   people-count word (人数:45) or glued to a member noun at the end of a
//!   segment (团员45). The nearest context word before the count in its
//!   segment decides what it means (lists in `data/activity_rules.toml`,
//!   `[words]`): `actual` (实到, 到会) ranks first, then `total` (共计), then
//!   `participate` (参加, 组织, 培训), then no word at all; `served` (走访,
//!   慰问, 为, 向), `served_after` (受益) and `subset` (其中) make the count
//!   a quantity; `ignore` (应到, 请假) drops it. A plain verb right before
//!   the count makes it that verb's object, a quantity (研究3名入团积极分子);
//!   a plain verb further away cuts the link instead (陪孤寡老人过年团员青年
//!   50人: 过年 ends 陪's reach). A word right after the count can decide too
//!   (5人参加, 30人受益). The best-ranked count wins, the first on ties;
//!   other head counts become quantities.
//! * **Hours**: a stated total (90小时, 服务时长90小时) wins; else per person
//!   (每人/人均 3小时) × participants; else a duration (历时3小时), which
//!   is per person for 志愿服务 and as written otherwise.
//! * **Quantities**: every other count with its measure word, and `what`, the
//!   noun it counts: the noun right after the measure word (7个小组 → 小组),
//!   else a quote right before the number, else the noun before the number
//!   after the last stop word (发放宣传材料2000份 → 宣传材料).
//! * **Not counts**: date and time parts, numbers inside quotes or set
//!   phrases (五四, 三个代表), ordinals and rankings (第三期, 前八名), the
//!   article 一 (一次, 一场), numbers inside place names (三里铺), the
//!   location itself.
//!
//! # Category
//!
//! Keywords carry weights: `name` 10, `strong` 4, `normal` 2, `weak` 1;
//! half inside quotes; +1 for the last keyword of each segment (Chinese puts
//! the head noun last: 志愿服务知识竞赛 is a 竞赛); the last keyword of the
//! title counts twice, as it is the cadre's own name for the activity. The highest total
//! wins; ties go to the category whose first keyword comes first. No keyword
//! at all: 其他.
//!
//! # Title
//!
//! Each segment is stripped of dates, times, counts (with the noun of a head
//! count), the location and data words (实到, 共计, 每人…); then of a lead-in
//! up to the last launch verb followed by a keyword (团县委组织志愿者开展
//! 学雷锋志愿服务活动 → 学雷锋志愿服务活动) and of filler words at either end
//! (参加, 组织 …, but never the start of a keyword: 组织生活会). Segments
//! naming the organisation (…团委) are skipped. The title is the first such
//! segment without counts that has a keyword, else the first without counts,
//! else the first with counts that still has a strong keyword's worth of
//! keywords. A theme standing alone in its own segment goes in front
//! (`主题团日 “青春心向党”` → `“青春心向党”主题团日`). Never empty: the
//! category name is the last resort. At most `title.max_chars` characters.
//!
//! # Warnings
//!
//! Stable snake_case codes, translated by the chat layer; see [`Warning`].

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize, Serializer};

use crate::command::dates::{self, BadDay, Clamp};
use crate::command::normalize::normalize;
use crate::command::numerals::{find_numbers, is_cn_numeral_char, parse_number};
use crate::domain::category::Category;

/// The built-in rules (`data/activity_rules.toml`).
pub const DEFAULT_RULES_TOML: &str = include_str!("../../data/activity_rules.toml");

static BUILTIN: LazyLock<ActivityRules> = LazyLock::new(|| {
    ActivityRules::from_toml(DEFAULT_RULES_TOML)
        .unwrap_or_else(|e| panic!("built-in data/activity_rules.toml is invalid: {e}"))
});

// =====================================================================
// Report
// =====================================================================

/// Discriminator in the serialized record (`"kind":"activity"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    #[default]
    Activity,
}

/// One activity as read from a line of text.
///
/// Serializes (serde_json) with exactly these keys in this order; whole
/// numbers are written as integers (`90`, not `90.0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityReport {
    pub kind: ReportKind,
    /// Activity date; today when none was written (see warnings).
    pub date: NaiveDate,
    pub category: Category,
    /// Activity name for summaries; never empty.
    pub title: String,
    /// Head count of people who took part.
    pub participants: Option<u32>,
    /// The participant count was approximate (余, 多, 约, 近 …).
    pub approx: bool,
    /// Total volunteer hours.
    #[serde(serialize_with = "ser_opt_number")]
    pub hours: Option<f64>,
    pub location: Option<String>,
    /// Reporting organisation: always `None` from the parser; the service fills it.
    pub org: Option<String>,
    /// Every other count.
    pub quantities: Vec<Quantity>,
    pub warnings: Vec<Warning>,
}

/// A counted thing: `{"count":2000,"unit":"份","what":"宣传资料"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    #[serde(serialize_with = "ser_number")]
    pub count: f64,
    /// Canonical measure word (`万元` is reported as `元` with the count scaled).
    pub unit: String,
    /// The noun counted, when it can be read.
    pub what: Option<String>,
}

/// Problems the chat layer should tell the user about. Serialized as the
/// snake_case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// `empty`: nothing but the command (or no letters/digits at all).
    Empty,
    /// `date_missing`: no date written; today was assumed.
    DateMissing,
    /// `date_invalid`: a date was written but that day does not exist
    /// (2月30日); today was assumed.
    DateInvalid,
    /// `date_in_future`: the date is after today (the chat layer refuses it).
    DateInFuture,
    /// `category_guessed`: no category keyword; 其他 was assumed.
    CategoryGuessed,
    /// `participants_missing`: no head count of participants found.
    ParticipantsMissing,
    /// `hours_unresolved`: hours were given per person but the number of
    /// participants is unknown, so no total could be computed.
    HoursUnresolved,
    /// `title_guessed`: no activity name found; the category name was used.
    TitleGuessed,
}

impl Warning {
    /// Every warning code.
    pub const ALL: [Warning; 8] = [
        Warning::Empty,
        Warning::DateMissing,
        Warning::DateInvalid,
        Warning::DateInFuture,
        Warning::CategoryGuessed,
        Warning::ParticipantsMissing,
        Warning::HoursUnresolved,
        Warning::TitleGuessed,
    ];

    /// The stable code, as serialized.
    pub const fn code(self) -> &'static str {
        match self {
            Warning::Empty => "empty",
            Warning::DateMissing => "date_missing",
            Warning::DateInvalid => "date_invalid",
            Warning::DateInFuture => "date_in_future",
            Warning::CategoryGuessed => "category_guessed",
            Warning::ParticipantsMissing => "participants_missing",
            Warning::HoursUnresolved => "hours_unresolved",
            Warning::TitleGuessed => "title_guessed",
        }
    }
}

fn ser_number<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

fn ser_opt_number<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => ser_number(v, s),
        None => s.serialize_none(),
    }
}

impl ActivityReport {
    fn empty(today: NaiveDate) -> Self {
        ActivityReport {
            kind: ReportKind::Activity,
            date: today,
            category: Category::Other,
            title: Category::Other.as_str().to_string(),
            participants: None,
            approx: false,
            hours: None,
            location: None,
            org: None,
            quantities: Vec::new(),
            warnings: vec![Warning::Empty],
        }
    }
}

// =====================================================================
// Rules
// =====================================================================

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RulesFile {
    commands: CommandsFile,
    categories: BTreeMap<String, TiersFile>,
    words: WordsFile,
    location: LocationFile,
    org: OrgFile,
    units: UnitsFile,
    title: TitleFile,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CommandsFile {
    prefixes: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TiersFile {
    name: Vec<String>,
    strong: Vec<String>,
    normal: Vec<String>,
    weak: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WordsFile {
    participate: Vec<String>,
    actual: Vec<String>,
    total: Vec<String>,
    ignore: Vec<String>,
    served: Vec<String>,
    subset: Vec<String>,
    served_after: Vec<String>,
    per_person: Vec<String>,
    duration: Vec<String>,
    hours: Vec<String>,
    people_count: Vec<String>,
    members: Vec<String>,
    approx: Vec<String>,
    stop: Vec<String>,
    neutral: Vec<String>,
    idioms: Vec<String>,
    same_day: Vec<String>,
    next_day: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LocationFile {
    explicit: Vec<String>,
    at: Vec<String>,
    to: Vec<String>,
    cancel: Vec<String>,
    suffixes: Vec<String>,
    reject: Vec<String>,
    reject_prefixes: Vec<String>,
    numbered_place_ends: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct OrgFile {
    suffixes: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UnitsFile {
    person: Vec<String>,
    person_times: Vec<String>,
    hours: Vec<String>,
    approx_after: Vec<String>,
    approx_suffix: Vec<String>,
    things: Vec<String>,
    scaled: BTreeMap<String, (String, f64)>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TitleFile {
    filler: Vec<String>,
    launch: Vec<String>,
    max_chars: Option<usize>,
}

impl RulesFile {
    /// Appends every list of `other` to `self`.
    fn merge(&mut self, other: RulesFile) {
        fn ext(a: &mut Vec<String>, b: Vec<String>) {
            a.extend(b);
        }
        ext(&mut self.commands.prefixes, other.commands.prefixes);
        for (name, t) in other.categories {
            let mine = self.categories.entry(name).or_default();
            ext(&mut mine.name, t.name);
            ext(&mut mine.strong, t.strong);
            ext(&mut mine.normal, t.normal);
            ext(&mut mine.weak, t.weak);
        }
        let (w, o) = (&mut self.words, other.words);
        ext(&mut w.participate, o.participate);
        ext(&mut w.actual, o.actual);
        ext(&mut w.total, o.total);
        ext(&mut w.ignore, o.ignore);
        ext(&mut w.served, o.served);
        ext(&mut w.subset, o.subset);
        ext(&mut w.served_after, o.served_after);
        ext(&mut w.per_person, o.per_person);
        ext(&mut w.duration, o.duration);
        ext(&mut w.hours, o.hours);
        ext(&mut w.people_count, o.people_count);
        ext(&mut w.members, o.members);
        ext(&mut w.approx, o.approx);
        ext(&mut w.stop, o.stop);
        ext(&mut w.neutral, o.neutral);
        ext(&mut w.idioms, o.idioms);
        ext(&mut w.same_day, o.same_day);
        ext(&mut w.next_day, o.next_day);
        let (l, o) = (&mut self.location, other.location);
        ext(&mut l.explicit, o.explicit);
        ext(&mut l.at, o.at);
        ext(&mut l.to, o.to);
        ext(&mut l.cancel, o.cancel);
        ext(&mut l.suffixes, o.suffixes);
        ext(&mut l.reject, o.reject);
        ext(&mut l.reject_prefixes, o.reject_prefixes);
        ext(&mut l.numbered_place_ends, o.numbered_place_ends);
        ext(&mut self.org.suffixes, other.org.suffixes);
        let (u, o) = (&mut self.units, other.units);
        ext(&mut u.person, o.person);
        ext(&mut u.person_times, o.person_times);
        ext(&mut u.hours, o.hours);
        ext(&mut u.approx_after, o.approx_after);
        ext(&mut u.approx_suffix, o.approx_suffix);
        ext(&mut u.things, o.things);
        u.scaled.extend(o.scaled);
        ext(&mut self.title.filler, other.title.filler);
        ext(&mut self.title.launch, other.title.launch);
        if other.title.max_chars.is_some() {
            self.title.max_chars = other.title.max_chars;
        }
    }
}

/// Roles a word can play, as bit flags.
mod role {
    pub const PARTICIPATE: u32 = 1;
    pub const ACTUAL: u32 = 1 << 1;
    pub const TOTAL: u32 = 1 << 2;
    pub const IGNORE: u32 = 1 << 3;
    pub const SERVED: u32 = 1 << 4;
    pub const SUBSET: u32 = 1 << 5;
    pub const SERVED_AFTER: u32 = 1 << 6;
    pub const PER_PERSON: u32 = 1 << 7;
    pub const DURATION: u32 = 1 << 8;
    pub const HOURS: u32 = 1 << 9;
    pub const PEOPLE_COUNT: u32 = 1 << 10;
    pub const APPROX: u32 = 1 << 11;
    pub const STOP: u32 = 1 << 12;
    pub const IDIOM: u32 = 1 << 13;
    pub const LOC_EXPLICIT: u32 = 1 << 14;
    pub const LOC_AT: u32 = 1 << 15;
    pub const LOC_TO: u32 = 1 << 16;
    pub const MEMBER: u32 = 1 << 17;
    /// Listed as neutral: hides shorter stop words inside it (慰问金 ⊃ 慰问).
    pub const NEUTRAL: u32 = 1 << 18;
    /// Introduces the activity name (开展, 举办): titles start after it.
    pub const LAUNCH: u32 = 1 << 19;
    /// 带领下, 组织下: the 在… phrase before it is not a place.
    pub const LOC_CANCEL: u32 = 1 << 20;
    /// 同日, 当天: the day of the activity named before.
    pub const SAME_DAY: u32 = 1 << 21;
    /// 次日, 第二天: the day after the activity named before.
    pub const NEXT_DAY: u32 = 1 << 22;

    /// Words that decide what a head count after them means.
    pub const HEAD_CONTEXT: u32 =
        PARTICIPATE | ACTUAL | TOTAL | IGNORE | SERVED | SUBSET | SERVED_AFTER | STOP | LOCATION;
    /// Words that end a place name or a noun phrase.
    pub const STOPS: u32 = PARTICIPATE
        | ACTUAL
        | TOTAL
        | IGNORE
        | SERVED
        | SUBSET
        | SERVED_AFTER
        | PER_PERSON
        | DURATION
        | HOURS
        | PEOPLE_COUNT
        | STOP
        | LOCATION;
    /// Words that belong to the data, not to the activity name.
    pub const DATA: u32 =
        ACTUAL | TOTAL | IGNORE | PER_PERSON | DURATION | HOURS | PEOPLE_COUNT | APPROX;
    pub const LOCATION: u32 = LOC_EXPLICIT | LOC_AT | LOC_TO;
}

/// Keyword weights in half points (so a quoted keyword can count half).
const NAME_WEIGHT: u32 = 20;
const STRONG_WEIGHT: u32 = 8;
const NORMAL_WEIGHT: u32 = 4;
const WEAK_WEIGHT: u32 = 2;
/// Bonus for the last keyword of a segment (the head noun), in half points.
const HEAD_BONUS: u32 = 2;

/// What [`Parse::title`] found.
struct TitleParts {
    text: Option<String>,
    /// A theme in a segment of its own, when no title segment was found.
    theme: Option<String>,
    /// The title's head keyword (its last one outside quotes) and weight.
    head: Option<(Category, u32)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct WordInfo {
    roles: u32,
    /// Category evidence and its weight in half points.
    category: Option<(Category, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitKind {
    Person,
    PersonTimes,
    Hours,
    Thing,
}

#[derive(Debug, Clone)]
struct UnitInfo {
    kind: UnitKind,
    unit: Box<str>,
    factor: f64,
}

/// Hasher for `char` keys (they hash through `write_u32`).
#[derive(Default)]
struct CharHasher(u64);

impl Hasher for CharHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type CharMap<V> = HashMap<char, V, BuildHasherDefault<CharHasher>>;

/// Word list with longest-match lookup, keyed by first character.
#[derive(Debug, Clone)]
struct Lexicon<V> {
    by_first: CharMap<Vec<(Box<str>, V)>>,
}

struct Hit<'a, V> {
    range: Range<usize>,
    v: &'a V,
}

impl<V> Lexicon<V> {
    fn new(entries: impl IntoIterator<Item = (String, V)>) -> Self {
        let mut by_first: CharMap<Vec<(Box<str>, V)>> = CharMap::default();
        for (w, v) in entries {
            if let Some(c) = w.chars().next() {
                by_first.entry(c).or_default().push((w.into_boxed_str(), v));
            }
        }
        for list in by_first.values_mut() {
            list.sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
        }
        Lexicon { by_first }
    }

    /// Longest word starting at byte `i`: (end, value).
    fn longest_at(&self, s: &str, i: usize) -> Option<(usize, &V)> {
        let rest = s.get(i..)?;
        let c = rest.chars().next()?;
        self.by_first
            .get(&c)?
            .iter()
            .find(|(w, _)| rest.starts_with(&**w))
            .map(|(w, v)| (i + w.len(), v))
    }

    /// Leftmost-longest, non-overlapping matches over `s[range]`.
    fn scan(&self, s: &str, range: Range<usize>) -> Vec<Hit<'_, V>> {
        let mut out = Vec::new();
        let mut i = range.start;
        while i < range.end {
            if let Some((end, v)) = self.longest_at(s, i)
                && end <= range.end
            {
                out.push(Hit { range: i..end, v });
                i = end;
                continue;
            }
            i += char_len(s, i);
        }
        out
    }
}

/// Suffix list keyed by last character.
#[derive(Debug, Clone)]
struct SuffixSet {
    by_last: CharMap<Vec<Box<str>>>,
}

impl SuffixSet {
    fn new(words: &[String]) -> Self {
        let mut by_last: CharMap<Vec<Box<str>>> = CharMap::default();
        for w in words {
            if let Some(c) = w.chars().next_back() {
                by_last
                    .entry(c)
                    .or_default()
                    .push(w.clone().into_boxed_str());
            }
        }
        for list in by_last.values_mut() {
            list.sort_by_key(|w| std::cmp::Reverse(w.len()));
            list.dedup();
        }
        SuffixSet { by_last }
    }

    /// Start of the longest suffix ending at byte `end`, if any.
    fn ending_at(&self, s: &str, end: usize) -> Option<usize> {
        let head = s.get(..end)?;
        let c = head.chars().next_back()?;
        self.by_last
            .get(&c)?
            .iter()
            .find(|w| head.ends_with(&***w))
            .map(|w| end - w.len())
    }
}

/// Compiled word rules for [`parse_activity`].
///
/// Build with [`ActivityRules::builtin`], [`ActivityRules::from_toml`] or
/// [`ActivityRules::extended_with`]; the format is documented in
/// `data/activity_rules.toml`.
#[derive(Debug, Clone)]
pub struct ActivityRules {
    file: RulesFile,
    words: Lexicon<WordInfo>,
    /// `true` = stop word, `false` = neutral word that only hides shorter ones.
    stops: Lexicon<bool>,
    units: Lexicon<UnitInfo>,
    hours_unit: UnitInfo,
    approx_after: Lexicon<()>,
    approx_suffix: Lexicon<()>,
    fillers: Lexicon<()>,
    filler_suffixes: SuffixSet,
    place_suffixes: SuffixSet,
    org_suffixes: SuffixSet,
    loc_reject: Vec<String>,
    loc_reject_prefixes: Vec<String>,
    numbered_place_ends: Vec<char>,
    prefixes: Vec<String>,
    title_max_chars: usize,
}

impl Default for ActivityRules {
    fn default() -> Self {
        ActivityRules::builtin().clone()
    }
}

impl ActivityRules {
    /// The built-in rules from `data/activity_rules.toml`, compiled once.
    pub fn builtin() -> &'static ActivityRules {
        &BUILTIN
    }

    /// Compiles a complete rules file (same format as `data/activity_rules.toml`).
    pub fn from_toml(src: &str) -> Result<ActivityRules, String> {
        let file: RulesFile = toml::from_str(src).map_err(|e| e.to_string())?;
        Self::compile(file)
    }

    /// These rules plus the lists in `src` (a partial rules file, e.g. a
    /// county's additions from config). Lists are appended; a keyword listed
    /// again under another category moves to that category.
    pub fn extended_with(&self, src: &str) -> Result<ActivityRules, String> {
        let extra: RulesFile = toml::from_str(src).map_err(|e| e.to_string())?;
        let mut file = self.file.clone();
        file.merge(extra);
        Self::compile(file)
    }

    fn compile(file: RulesFile) -> Result<ActivityRules, String> {
        let mut words: HashMap<String, WordInfo> = HashMap::new();
        let mut add_role = |list: &[String], r: u32| {
            for w in list.iter().filter(|w| !w.is_empty()) {
                words.entry(w.clone()).or_default().roles |= r;
            }
        };
        let wf = &file.words;
        add_role(&wf.participate, role::PARTICIPATE);
        add_role(&wf.actual, role::ACTUAL);
        add_role(&wf.total, role::TOTAL);
        add_role(&wf.ignore, role::IGNORE);
        add_role(&wf.served, role::SERVED);
        add_role(&wf.subset, role::SUBSET);
        add_role(&wf.served_after, role::SERVED_AFTER);
        add_role(&wf.per_person, role::PER_PERSON);
        add_role(&wf.duration, role::DURATION);
        add_role(&wf.hours, role::HOURS);
        add_role(&wf.people_count, role::PEOPLE_COUNT);
        add_role(&wf.approx, role::APPROX);
        add_role(&wf.stop, role::STOP);
        add_role(&wf.members, role::MEMBER);
        add_role(&wf.neutral, role::NEUTRAL);
        add_role(&wf.idioms, role::IDIOM);
        add_role(&wf.same_day, role::SAME_DAY);
        add_role(&wf.next_day, role::NEXT_DAY);
        add_role(&file.title.launch, role::LAUNCH);
        add_role(&file.location.explicit, role::LOC_EXPLICIT);
        add_role(&file.location.at, role::LOC_AT);
        add_role(&file.location.to, role::LOC_TO);
        add_role(&file.location.cancel, role::LOC_CANCEL);
        for (name, tiers) in &file.categories {
            let cat: Category = name.parse().map_err(|e| format!("categories: {e}"))?;
            for (list, weight) in [
                (&tiers.name, NAME_WEIGHT),
                (&tiers.strong, STRONG_WEIGHT),
                (&tiers.normal, NORMAL_WEIGHT),
                (&tiers.weak, WEAK_WEIGHT),
            ] {
                for w in list.iter().filter(|w| !w.is_empty()) {
                    let info = words.entry(w.clone()).or_default();
                    info.category = match info.category {
                        Some((c, old)) if c == cat => Some((c, old.max(weight))),
                        _ => Some((cat, weight)),
                    };
                }
            }
        }
        let stops = Lexicon::new(
            words
                .iter()
                .filter(|(_, i)| i.roles & (role::STOPS | role::NEUTRAL) != 0)
                .map(|(w, i)| (w.clone(), i.roles & role::STOPS != 0)),
        );

        let uf = &file.units;
        let mut units: HashMap<String, UnitInfo> = HashMap::new();
        for (list, kind) in [
            (&uf.person, UnitKind::Person),
            (&uf.person_times, UnitKind::PersonTimes),
            (&uf.hours, UnitKind::Hours),
            (&uf.things, UnitKind::Thing),
        ] {
            for w in list.iter().filter(|w| !w.is_empty()) {
                units.insert(
                    w.clone(),
                    UnitInfo {
                        kind,
                        unit: w.clone().into_boxed_str(),
                        factor: 1.0,
                    },
                );
            }
        }
        for (w, (canon, factor)) in &uf.scaled {
            if !(factor.is_finite() && *factor > 0.0) {
                return Err(format!("units.scaled.{w}: factor must be positive"));
            }
            let kind = units.get(canon).map_or(UnitKind::Thing, |u| u.kind);
            units.insert(
                w.clone(),
                UnitInfo {
                    kind,
                    unit: canon.clone().into_boxed_str(),
                    factor: *factor,
                },
            );
        }
        let hours_unit = UnitInfo {
            kind: UnitKind::Hours,
            unit: "小时".into(),
            factor: 1.0,
        };

        let mut numbered_place_ends = Vec::new();
        for w in &file.location.numbered_place_ends {
            let mut cs = w.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) => numbered_place_ends.push(c),
                _ => {
                    return Err(format!(
                        "location.numbered_place_ends: {w:?} is not one character"
                    ));
                }
            }
        }
        let mut prefixes = file.commands.prefixes.clone();
        prefixes.retain(|p| !p.is_empty());
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let fillers: Vec<String> = file
            .title
            .filler
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect();
        let unit_list = |l: &[String]| {
            Lexicon::new(l.iter().filter(|w| !w.is_empty()).map(|w| (w.clone(), ())))
        };

        Ok(ActivityRules {
            words: Lexicon::new(words),
            stops,
            units: Lexicon::new(units),
            hours_unit,
            approx_after: unit_list(&uf.approx_after),
            approx_suffix: unit_list(&uf.approx_suffix),
            fillers: Lexicon::new(fillers.iter().map(|f| (f.clone(), ()))),
            filler_suffixes: SuffixSet::new(&fillers),
            place_suffixes: SuffixSet::new(&file.location.suffixes),
            org_suffixes: SuffixSet::new(&file.org.suffixes),
            loc_reject: file.location.reject.clone(),
            loc_reject_prefixes: file.location.reject_prefixes.clone(),
            numbered_place_ends,
            prefixes,
            title_max_chars: file.title.max_chars.unwrap_or(40).max(1),
            file,
        })
    }
}

// =====================================================================
// Entry points
// =====================================================================

/// Reads one activity from `text` (the message after the command word; a
/// leading command is tolerated and stripped). Line breaks are treated like
/// any other separator: the whole text is one record.
///
/// `today` is the chat's local date. Never panics.
pub fn parse_activity(text: &str, today: NaiveDate, rules: &ActivityRules) -> ActivityReport {
    let norm = normalize(text);
    let body = strip_command(&norm, rules);
    parse_line(body, today, None, rules).0
}

/// One record per activity: per non-empty line, and per part of a line
/// that holds several ([`parse_activity_parts`]). The command may lead the
/// first line or stand alone on it. No lines → no records.
pub fn parse_activity_lines(
    text: &str,
    today: NaiveDate,
    rules: &ActivityRules,
) -> Vec<ActivityReport> {
    parse_activity_parts(text, today, rules)
        .into_iter()
        .map(|p| p.report)
        .collect()
}

/// One activity of a `/log` message: the part of a line it was written in
/// and its record.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityPart {
    /// The part as typed: trimmed, without the separators around it.
    pub text: String,
    pub report: ActivityReport,
    /// The day it means ([`dates::activity_date`]): a year-less date just
    /// ahead reads as this year's (the caller refuses it as not yet
    /// happened), not as last year's.
    pub date: NaiveDate,
    /// The date written names no day (`2月30日`): why. The record must not
    /// be kept (its `date` is only today, a placeholder).
    pub bad_day: Option<BadDay>,
}

/// Every activity of a message, in order.
///
/// Each non-empty line is one activity, unless it holds several: it is cut
/// where a part with its own day (or 同日/当天) or its own activity keyword
/// follows a part that already has a date or keyword and a head count of
/// its own, and the new part has a head count too
/// (`3月13日团课32人，3月14日支委会7人；3月16日团小组会12人` is three;
/// `3月5日 学雷锋志愿服务，45人，90小时，三里铺` stays one). Parts are cut at
/// spaces and `，；。、`.
///
/// A part without a day of its own takes the day of the part before it (in
/// the same line or a line above); `14日` alone takes that month. A line that
/// is nothing but a date heads the lines below it and is no activity.
pub fn parse_activity_parts(
    text: &str,
    today: NaiveDate,
    rules: &ActivityRules,
) -> Vec<ActivityPart> {
    let body = strip_command(text, rules);
    let mut out = Vec::new();
    let mut prev: Option<NaiveDate> = None;
    for (n, line) in body.lines().enumerate() {
        let line = if n == 0 {
            strip_bullet(line)
        } else {
            strip_bullet(strip_command(line, rules))
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cuts = split_line(line, today, rules);
        let single = cuts.len() == 1;
        for r in cuts {
            let raw = line[r].trim_matches(|c: char| is_clause_separator(c) || c.is_control());
            if raw.is_empty() {
                continue;
            }
            let norm = normalize(raw);
            let norm = strip_bullet(strip_command(&norm, rules));
            let (mut report, own) = parse_line(norm, today, prev, rules);
            if report.warnings.contains(&Warning::Empty) {
                continue;
            }
            let mut bad_day = None;
            let date = if report.warnings.contains(&Warning::DateInvalid) {
                // 2月29日 written on 2月20日 of a leap year: just ahead
                match dates::find_date_with(norm, today, Clamp::Future) {
                    Some((d, _))
                        if d > today && (d - today).num_days() <= dates::NEAR_FUTURE_DAYS =>
                    {
                        report.warnings.retain(|w| *w != Warning::DateInvalid);
                        report.warnings.insert(0, Warning::DateInFuture);
                        d
                    }
                    _ => {
                        bad_day = dates::find_bad_day(norm, today, Clamp::Past).map(|b| b.0);
                        report.date
                    }
                }
            } else if own {
                dates::activity_date(norm, report.date, today)
            } else {
                report.date
            };
            if bad_day.is_none() && !report.warnings.contains(&Warning::DateMissing) {
                prev = Some(date);
            }
            // a line that is only a date heads the lines below it
            if single && own && bad_day.is_none() && is_date_only(&report) {
                continue;
            }
            out.push(ActivityPart {
                text: raw.to_string(),
                report,
                date,
                bad_day,
            });
        }
    }
    out
}

/// Nothing but a date was read.
fn is_date_only(r: &ActivityReport) -> bool {
    r.warnings.contains(&Warning::CategoryGuessed)
        && r.warnings.contains(&Warning::TitleGuessed)
        && r.participants.is_none()
        && r.hours.is_none()
        && r.location.is_none()
        && r.quantities.is_empty()
}

/// Removes a leading command word (`/log`, `记录`, `/log@bot` …).
fn strip_command<'a>(s: &'a str, rules: &ActivityRules) -> &'a str {
    let s = s.trim_start();
    for p in &rules.prefixes {
        let Some(head) = s.get(..p.len()) else {
            continue;
        };
        if !head.eq_ignore_ascii_case(p) {
            continue;
        }
        let mut rest = &s[p.len()..];
        // an ASCII command must end at a word boundary: /log but not /logs
        if p.is_ascii() && rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(r) = rest.strip_prefix('@') {
            rest = r.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
        }
        let rest = rest.trim_start();
        return rest.strip_prefix(':').unwrap_or(rest).trim_start();
    }
    s
}

/// Removes list bullets: `- `, `• `, `1. `, `1、`, `(1)`.
fn strip_bullet(s: &str) -> &str {
    let s = s.trim_start();
    if let Some(r) = s.strip_prefix(['-', '*', '•', '·']) {
        return r.trim_start();
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=2).contains(&digits) {
        let rest = &s[digits..];
        if let Some(r) = rest.strip_prefix('、') {
            return r.trim_start();
        }
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return r.trim_start();
        }
    }
    if let Some(r) = s.strip_prefix('(')
        && let Some(close) = r.find(')')
        && close <= 2
        && r[..close].bytes().all(|b| b.is_ascii_digit())
    {
        return r[close + 1..].trim_start();
    }
    s
}

// =====================================================================
// Text helpers
// =====================================================================

fn char_len(s: &str, i: usize) -> usize {
    s.get(i..)
        .and_then(|r| r.chars().next())
        .map_or(1, char::len_utf8)
}

fn char_at(s: &str, i: usize) -> Option<char> {
    s.get(i..)?.chars().next()
}

fn prev_char(s: &str, i: usize) -> Option<char> {
    s.get(..i)?.chars().next_back()
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
        || c == '〇'
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';' | '。' | '!' | '?' | '|' | '；' | '，')
}

/// Where a line holding several activities may be cut: the separators of
/// segments and the enumeration comma 、.
fn is_clause_separator(c: char) -> bool {
    is_separator(c) || matches!(c, '、' | '，' | '；' | '！' | '？')
}

fn inside_any(spans: &[Range<usize>], i: usize) -> bool {
    spans.iter().any(|r| r.contains(&i))
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

fn overlaps_any(spans: &[Range<usize>], r: &Range<usize>) -> bool {
    spans.iter().any(|s| overlaps(s, r))
}

const QUOTES: &[(char, char)] = &[
    ('“', '”'),
    ('‘', '’'),
    ('《', '》'),
    ('「', '」'),
    ('『', '』'),
    ('〈', '〉'),
    ('"', '"'),
];

/// Byte ranges of quoted themes, quotes included.
fn quote_spans(s: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let Some(c) = char_at(s, i) else { break };
        if let Some(&(_, close)) = QUOTES.iter().find(|(open, _)| *open == c) {
            let body = i + c.len_utf8();
            if let Some(k) = s[body..].find(close) {
                let end = body + k + close.len_utf8();
                out.push(i..end);
                i = end;
                continue;
            }
        }
        i += c.len_utf8();
    }
    out
}

/// Segments: text between separators, never splitting a quote.
fn segments(s: &str, quotes: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if is_separator(c) && !inside_any(quotes, i) {
            if i > start {
                out.push(start..i);
            }
            start = i + c.len_utf8();
        }
    }
    if start < s.len() {
        out.push(start..s.len());
    }
    out
}

// =====================================================================
// The parser
// =====================================================================

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Head count of participants, with its evidence rank.
    Person {
        rank: u8,
    },
    /// People served/visited, or a subset: a quantity.
    Served,
    /// Expected or absent people: dropped.
    Ignored,
    Hours {
        per_person: bool,
        duration: bool,
    },
    Thing,
}

struct Count<'r> {
    value: f64,
    /// From the approximation word (if any) to the end of the measure word.
    span: Range<usize>,
    unit: Option<&'r UnitInfo>,
    approx: bool,
    kind: Kind,
    /// The noun the count refers to (for `what` and for the title).
    noun: Option<Range<usize>>,
}

struct Parse<'a, 'r> {
    s: &'a str,
    rules: &'r ActivityRules,
    hits: Vec<Hit<'r, WordInfo>>,
    quotes: Vec<Range<usize>>,
    segs: Vec<Range<usize>>,
    /// Dates and times.
    time_masks: Vec<Range<usize>>,
    /// Set phrases with numerals.
    idiom_masks: Vec<Range<usize>>,
}

/// The day of a bare `14日` / `14号` (no month written), if `text` is one.
fn bare_day(text: &str) -> Option<u32> {
    let num = text.strip_suffix(['日', '号'])?;
    let v = parse_number(num)?;
    (v.fract() == 0.0 && (1.0..=31.0).contains(&v)).then_some(v as u32)
}

/// What a line's dates say, with its dates, times, set phrases and 同日
/// words masked in `p`.
struct DateFacts {
    /// The first day named, when it exists.
    date: Option<NaiveDate>,
    /// A day was named that does not exist.
    invalid: bool,
    /// Start of every day named (valid or not), `14日` and 同日 included.
    day_starts: Vec<usize>,
    /// The first bare `14日` (no month).
    bare: Option<u32>,
    /// A standalone bare day read as this month's (or the last), for a line
    /// with no day before it.
    bare_date: Option<NaiveDate>,
    /// 次日: the day after the day before.
    next: bool,
}

impl Parse<'_, '_> {
    fn read_dates(&mut self, today: NaiveDate) -> DateFacts {
        let s = self.s;
        let mut f = DateFacts {
            date: None,
            invalid: false,
            day_starts: Vec::new(),
            bare: None,
            bare_date: None,
            next: false,
        };
        for m in dates::date_expressions(s, today, Clamp::Past) {
            if inside_any(&self.quotes, m.span.start) {
                continue;
            }
            let text = &s[m.span.clone()];
            if m.names_day && bare_day(text).is_some() {
                // a standalone 14号: the month of the day before, if any
                f.day_starts.push(m.span.start);
                if f.bare.is_none() {
                    f.bare = bare_day(text);
                    f.bare_date = m.date;
                }
            } else if m.names_day {
                f.day_starts.push(m.span.start);
                if f.date.is_none() {
                    match m.date {
                        Some(d) => f.date = Some(d),
                        None => f.invalid = true,
                    }
                }
            } else if let Some(d) = bare_day(text) {
                // 14日支委会, but not 5号楼
                if char_at(s, m.span.end).is_none_or(|c| !"楼栋院室门线车位房馆厅床".contains(c))
                {
                    f.day_starts.push(m.span.start);
                    f.bare.get_or_insert(d);
                }
            }
            self.time_masks.push(m.span);
        }
        for h in &self.hits {
            if h.v.roles & (role::SAME_DAY | role::NEXT_DAY) != 0
                && !inside_any(&self.quotes, h.range.start)
                && !overlaps_any(&self.time_masks, &h.range)
            {
                f.day_starts.push(h.range.start);
                f.next |= h.v.roles & role::NEXT_DAY != 0;
                self.time_masks.push(h.range.clone());
            }
        }
        for r in dates::time_expressions(s) {
            if !overlaps_any(&self.time_masks, &r) && !inside_any(&self.quotes, r.start) {
                self.time_masks.push(r);
            }
        }
        self.idiom_masks = self
            .hits
            .iter()
            .filter(|h| h.v.roles & role::IDIOM != 0)
            .map(|h| h.range.clone())
            .collect();
        f
    }
}

fn new_parse<'a, 'r>(s: &'a str, rules: &'r ActivityRules) -> Parse<'a, 'r> {
    let quotes = quote_spans(s);
    let segs = segments(s, &quotes);
    let hits = rules.words.scan(s, 0..s.len());
    Parse {
        s,
        rules,
        hits,
        quotes,
        segs,
        time_masks: Vec::new(),
        idiom_masks: Vec::new(),
    }
}

/// Reads one activity. `prev` is the day of the activity written before it
/// in the same message: a line without a day of its own took place then.
/// Also tells whether the line named its own day.
fn parse_line(
    line: &str,
    today: NaiveDate,
    prev: Option<NaiveDate>,
    rules: &ActivityRules,
) -> (ActivityReport, bool) {
    let s = line.trim();
    if !s.chars().any(char::is_alphanumeric) {
        return (ActivityReport::empty(today), false);
    }
    let mut p = new_parse(s, rules);
    let mut warnings = Vec::new();

    // -- date and time
    let facts = p.read_dates(today);
    let (date, own) = match (facts.date, prev) {
        (Some(d), _) => (Some(d), true),
        _ if facts.invalid => (None, false),
        // 14日 after 3月13日: that month's 14th; nothing: that day
        (None, Some(prev)) => {
            let d = match facts.bare {
                Some(d) => prev.with_day(d),
                None if facts.next => prev.succ_opt(),
                None => None,
            };
            (Some(d.unwrap_or(prev)), false)
        }
        (None, None) => (facts.bare_date, facts.bare_date.is_some()),
    };
    let date = match date {
        Some(d) => {
            if d > today {
                warnings.push(Warning::DateInFuture);
            }
            d
        }
        None => {
            warnings.push(if facts.invalid {
                Warning::DateInvalid
            } else {
                Warning::DateMissing
            });
            today
        }
    };

    // -- location, counts, category
    let location = p.location();
    let counts = p.counts(location.as_ref().map(|(_, r)| r.clone()));
    let title_parts = p.title(&counts, location.as_ref().map(|(_, r)| r.clone()));
    let (category, guessed) = p.category(title_parts.head);
    if guessed {
        warnings.push(Warning::CategoryGuessed);
    }

    // -- participants: highest rank, first on ties
    let mut chosen: Option<usize> = None;
    for (i, c) in counts.iter().enumerate() {
        if let Kind::Person { rank } = c.kind {
            let better = match chosen.map(|k| &counts[k].kind) {
                Some(Kind::Person { rank: best }) => rank > *best,
                _ => true,
            };
            if better {
                chosen = Some(i);
            }
        }
    }
    let participants = chosen.map(|i| counts[i].value as u32);
    let approx = chosen.is_some_and(|i| counts[i].approx);
    if participants.is_none() {
        warnings.push(Warning::ParticipantsMissing);
    }

    // -- hours
    let first_hours = |want: fn(bool, bool) -> bool| {
        counts.iter().find_map(|c| match c.kind {
            Kind::Hours {
                per_person,
                duration,
            } if want(per_person, duration) => Some(c.value * c.unit.map_or(1.0, |u| u.factor)),
            _ => None,
        })
    };
    let hours = if let Some(t) = first_hours(|pp, d| !pp && !d) {
        Some(t)
    } else if let Some(pp) = first_hours(|pp, _| pp) {
        let total = participants.map(|n| pp * f64::from(n));
        if total.is_none() {
            warnings.push(Warning::HoursUnresolved);
        }
        total
    } else if let Some(d) = first_hours(|_, d| d) {
        match participants {
            Some(n) if category == Category::VolunteerService => Some(d * f64::from(n)),
            _ => Some(d),
        }
    } else {
        None
    };
    let hours = hours.map(|h| (h * 100.0).round() / 100.0);

    // -- quantities: every other count
    let mut quantities = Vec::new();
    for (i, c) in counts.iter().enumerate() {
        let Some(unit) = c.unit else { continue };
        let keep = match c.kind {
            Kind::Person { .. } => Some(i) != chosen,
            Kind::Served | Kind::Thing => true,
            Kind::Ignored | Kind::Hours { .. } => false,
        };
        if keep {
            quantities.push(Quantity {
                count: c.value * unit.factor,
                unit: unit.unit.to_string(),
                what: c.noun.clone().map(|r| s[r].to_string()),
            });
        }
    }

    // -- title
    let title = match title_parts {
        TitleParts { text: Some(t), .. } => t,
        TitleParts { theme: Some(t), .. } if category != Category::Other => {
            format!("{t}{}", category.as_str())
        }
        TitleParts { theme: Some(t), .. } => t,
        _ => {
            warnings.push(Warning::TitleGuessed);
            category.as_str().to_string()
        }
    };
    let title = if title.chars().count() > rules.title_max_chars {
        title.chars().take(rules.title_max_chars).collect()
    } else {
        title
    };

    let report = ActivityReport {
        kind: ReportKind::Activity,
        date,
        category,
        title,
        participants,
        approx,
        hours,
        location: location.map(|(l, _)| l),
        org: None,
        quantities,
        warnings,
    };
    (report, own)
}

/// Byte ranges of `line` (as typed), one per activity it holds; see
/// [`parse_activity_parts`].
fn split_line(line: &str, today: NaiveDate, rules: &ActivityRules) -> Vec<Range<usize>> {
    let whole = std::iter::once(0..line.len()).collect::<Vec<_>>();
    let (s, map) = normalize_mapped(line);
    if !s.chars().any(char::is_alphanumeric) {
        return whole;
    }
    let mut p = new_parse(&s, rules);
    let facts = p.read_dates(today);
    let location = p.location();
    let counts = p.counts(location.map(|(_, r)| r));

    // clauses: text between separators, never inside quotes
    let mut clauses: Vec<Range<usize>> = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if is_clause_separator(c) && !inside_any(&p.quotes, i) {
            if i > start {
                clauses.push(start..i);
            }
            start = i + c.len_utf8();
        }
    }
    if start < s.len() {
        clauses.push(start..s.len());
    }
    if clauses.len() < 2 {
        return whole;
    }
    // the people a head count counts (支委5人, 新团员12名) name no activity
    let heads_of_people = || {
        counts
            .iter()
            .filter(|k| matches!(k.kind, Kind::Person { .. } | Kind::Served | Kind::Ignored))
    };
    let people: Vec<Range<usize>> = heads_of_people().filter_map(|k| k.noun.clone()).collect();
    // 支委5人, 植树100棵: a keyword glued to a count says what it counts
    let count_starts: Vec<usize> = counts.iter().map(|k| k.span.start).collect();
    let day: Vec<bool> = clauses
        .iter()
        .map(|c| facts.day_starts.iter().any(|i| c.contains(i)))
        .collect();
    // an anchor starts an activity: a day, or a keyword that names one
    let anchor: Vec<bool> = clauses
        .iter()
        .enumerate()
        .map(|(n, c)| {
            day[n]
                || p.hits.iter().any(|h| {
                    c.contains(&h.range.start)
                        && h.v.roles & role::MEMBER == 0
                        && !inside_any(&p.quotes, h.range.start)
                        && match h.v.category {
                            Some((_, w)) if w >= NAME_WEIGHT => true,
                            Some((_, w)) if w >= STRONG_WEIGHT => {
                                !overlaps_any(&people, &h.range)
                                    && !count_starts.contains(&h.range.end)
                            }
                            _ => false,
                        }
                })
        })
        .collect();
    let heads: Vec<bool> = clauses
        .iter()
        .map(|c| {
            counts
                .iter()
                .any(|k| matches!(k.kind, Kind::Person { .. }) && c.contains(&k.span.start))
        })
        .collect();
    // a head count at or after clause i
    let mut head_from = vec![false; clauses.len() + 1];
    for i in (0..clauses.len()).rev() {
        head_from[i] = heads[i] || head_from[i + 1];
    }
    let mut cuts = vec![0];
    let (mut has_anchor, mut has_head) = (false, false);
    let mut i = 0;
    while i < clauses.len() {
        if i > 0 && anchor[i] && has_anchor && has_head && head_from[i] {
            // a day before the next head count starts the part rather than
            // a keyword (植树100棵、3月13日 宣传 10人)
            let next_head = (i..clauses.len()).find(|&j| heads[j]).unwrap_or(i);
            let cut = if day[i] {
                i
            } else {
                (i + 1..=next_head).find(|&k| day[k]).unwrap_or(i)
            };
            cuts.push(cut);
            has_head = false;
            i = cut;
        }
        has_anchor |= anchor[i];
        has_head |= heads[i];
        i += 1;
    }
    if cuts.len() == 1 {
        return whole;
    }
    let raw_at = |i: usize| map.get(i).copied().unwrap_or(line.len());
    let mut out = Vec::new();
    for (k, &c) in cuts.iter().enumerate() {
        let from = if k == 0 { 0 } else { raw_at(clauses[c].start) };
        let to = cuts
            .get(k + 1)
            .map_or(line.len(), |&n| raw_at(clauses[n].start));
        out.push(from..to);
    }
    out
}

/// [`normalize`] of one line, with the byte offset in `line` of every byte
/// of the result (and of its end).
fn normalize_mapped(line: &str) -> (String, Vec<usize>) {
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(line.len());
    let mut map = Vec::with_capacity(line.len() + 1);
    let mut pending: Option<usize> = None;
    for (r, c) in line.char_indices() {
        if matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}' | '\r' | '\n'
        ) {
            continue;
        }
        for n in std::iter::once(c).nfkc() {
            if n.is_whitespace() {
                pending.get_or_insert(r);
                continue;
            }
            if let Some(sp) = pending.take()
                && !out.is_empty()
            {
                out.push(' ');
                map.push(sp);
            }
            out.push(n);
            map.extend(std::iter::repeat_n(r, n.len_utf8()));
        }
    }
    map.push(line.len());
    (out, map)
}

impl<'a, 'r> Parse<'a, 'r> {
    fn masked(&self, r: &Range<usize>) -> bool {
        overlaps_any(&self.time_masks, r) || overlaps_any(&self.quotes, r)
    }

    fn segment_of(&self, i: usize) -> Range<usize> {
        self.segs
            .iter()
            .find(|r| r.start <= i && i < r.end.max(r.start + 1))
            .cloned()
            .unwrap_or(i..i)
    }

    /// Index of the first hit starting at or after `i`.
    fn hit_index(&self, i: usize) -> usize {
        self.hits.partition_point(|h| h.range.start < i)
    }

    // ------------------------------------------------------------ location

    /// (place, span of marker + place).
    fn location(&self) -> Option<(String, Range<usize>)> {
        let s = self.s;
        let mut best: Option<(u8, Range<usize>, Range<usize>)> = None;
        for h in &self.hits {
            let roles = h.v.roles;
            let tier = if roles & role::LOC_EXPLICIT != 0 {
                0
            } else if roles & role::LOC_AT != 0 {
                1
            } else if roles & role::LOC_TO != 0 {
                2
            } else {
                continue;
            };
            if best.as_ref().is_some_and(|b| b.0 <= tier) || self.masked(&h.range) {
                continue;
            }
            let mut j = h.range.end;
            if tier == 0 {
                while let Some(c) =
                    char_at(s, j).filter(|c| matches!(c, ' ' | ':' | '=' | '为' | '是'))
                {
                    j += c.len_utf8();
                }
            }
            let (end, verb_bounded) = self.place_extent(j);
            if end <= j
                || self
                    .rules
                    .words
                    .longest_at(s, end)
                    .is_some_and(|(_, w)| w.roles & role::LOC_CANCEL != 0)
            {
                continue;
            }
            let place_end = match (tier, self.last_suffix_end(j, end)) {
                (0, _) => end,
                // 在渭河滩捡拾…: one more character after the suffix still
                // belongs to the name when a verb follows
                (_, Some(e)) if verb_bounded && s[e..end].chars().count() == 1 => end,
                (_, Some(e)) => e,
                (1, None) if verb_bounded => end,
                _ => continue,
            };
            if !self.acceptable_place(&s[j..place_end]) {
                continue;
            }
            best = Some((tier, j..place_end, h.range.start..place_end));
            if tier == 0 {
                break;
            }
        }
        if let Some((_, place, span)) = best {
            return Some((s[place].to_string(), span));
        }
        // a segment that is nothing but a place name
        for seg in &self.segs {
            let text = &s[seg.clone()];
            if self.masked(seg)
                || !text.chars().all(is_cjk)
                || self.org_suffix_at(seg.end)
                || self
                    .place_suffix_start(seg.end)
                    .is_none_or(|st| st < seg.start)
                || !self.acceptable_place(text)
            {
                continue;
            }
            let k = self.hit_index(seg.start);
            let informative = self.hits[k..]
                .iter()
                .take_while(|h| h.range.start < seg.end)
                .any(|h| {
                    h.v.category.is_some()
                        || h.v.roles & !(role::IDIOM | role::NEUTRAL | role::MEMBER) != 0
                });
            if !informative {
                return Some((text.to_string(), seg.clone()));
            }
        }
        None
    }

    /// End of a place name starting at `j`: the next stop word, separator,
    /// digit, date or quote. Also tells whether a stop word ended it.
    fn place_extent(&self, j: usize) -> (usize, bool) {
        let s = self.s;
        let mut i = j;
        let mut chars = 0;
        while i < s.len() && chars < 24 {
            let Some(c) = char_at(s, i) else { break };
            if !c.is_alphanumeric() || c.is_ascii_digit() || self.masked(&(i..i + c.len_utf8())) {
                break;
            }
            if let Some((e, &is_stop)) = self.rules.stops.longest_at(s, i) {
                if is_stop {
                    return (i, true);
                }
                chars += s[i..e].chars().count();
                i = e;
                continue;
            }
            i += c.len_utf8();
            chars += 1;
        }
        (i, false)
    }

    /// End of the last place suffix inside `j..end` (place at least 2 chars).
    fn last_suffix_end(&self, j: usize, end: usize) -> Option<usize> {
        let s = self.s;
        let mut e = end;
        while e > j {
            if let Some(st) = self.place_suffix_start(e)
                && st >= j
                && s[j..e].chars().count() >= 2
            {
                return Some(e);
            }
            e -= prev_char(s, e).map_or(1, char::len_utf8);
        }
        None
    }

    fn place_suffix_start(&self, end: usize) -> Option<usize> {
        self.rules.place_suffixes.ending_at(self.s, end)
    }

    fn org_suffix_at(&self, end: usize) -> bool {
        self.rules.org_suffixes.ending_at(self.s, end).is_some()
    }

    fn acceptable_place(&self, place: &str) -> bool {
        let n = place.chars().count();
        (2..=20).contains(&n)
            && !place.contains('的')
            && !place.bytes().any(|b| b.is_ascii_digit())
            && !self.rules.loc_reject.iter().any(|r| r == place)
            && !self
                .rules
                .loc_reject_prefixes
                .iter()
                .any(|p| place.starts_with(p.as_str()))
    }

    // ------------------------------------------------------------ counts

    fn counts(&self, location: Option<Range<usize>>) -> Vec<Count<'r>> {
        let s = self.s;
        let rules = self.rules;
        let mut out: Vec<Count<'r>> = Vec::new();
        for (value, r, round) in self.numbers() {
            if !value.is_finite()
                || value < 0.0
                || self.masked(&r)
                || overlaps_any(&self.idiom_masks, &r)
                || location.as_ref().is_some_and(|l| overlaps(l, &r))
            {
                continue;
            }
            let prev = prev_char(s, r.start);
            if prev == Some('第') || prev.is_some_and(|c| c.is_ascii_alphabetic()) {
                continue; // ordinal (第三期) or a code (G20)
            }
            let chinese = !s.as_bytes()[r.start].is_ascii_digit();
            // 一 alone is the indefinite article: 一次, 一场, 一批
            if &s[r.clone()] == "一" {
                continue;
            }
            let mut value = value;
            let mut approx = round;
            let mut start = r.start;
            // approximation word right before: 约200人, 近 300 名
            let before = r.start - usize::from(prev == Some(' '));
            let k = self.hit_index(before);
            if k > 0
                && let Some(h) = self.hits.get(k - 1)
                && h.range.end == before
                && h.v.roles & role::APPROX != 0
            {
                approx = true;
                start = h.range.start;
            }
            // a range: 20-30人
            if matches!(prev, Some('-' | '~' | '至' | '到'))
                && prev_char(s, r.start - prev.map_or(1, char::len_utf8))
                    .is_some_and(|c| c.is_ascii_digit() || is_cn_numeral_char(c))
            {
                approx = true;
            }
            // measure word, allowing one space and an approximation word before it
            let mut j = r.end;
            if s[j..].starts_with(' ') {
                j += 1;
            }
            if let Some((e, _)) = rules.approx_after.longest_at(s, j) {
                approx = true;
                j = e;
            }
            let unit = if s[j..].starts_with("个半小时") {
                value += 0.5;
                Some((j + "个半小时".len(), &rules.hours_unit))
            } else {
                rules.units.longest_at(s, j)
            };
            let Some((unit_end, info)) = unit else {
                // bare numbers after 人数 / 时长
                if let Some(kind) = self.bare_number_kind(r.start) {
                    out.push(Count {
                        value,
                        span: start..r.end,
                        unit: None,
                        approx,
                        kind,
                        noun: None,
                    });
                }
                continue;
            };
            // 三里铺, 十里堡: a place name, not a count
            if chinese
                && matches!(info.kind, UnitKind::Thing)
                && &*info.unit != "个"
                && char_at(s, unit_end).is_some_and(|c| rules.numbered_place_ends.contains(&c))
            {
                continue;
            }
            // 前八名: a ranking, not a count
            if prev == Some('前') && &s[j..unit_end] == "名" {
                continue;
            }
            let mut end = unit_end;
            if let Some((e, _)) = rules.approx_suffix.longest_at(s, end) {
                approx = true;
                end = e;
            }
            let clause = self.segment_of(r.start);
            let (kind, noun) = match info.kind {
                UnitKind::Hours => (self.hours_kind(&clause, start), None),
                UnitKind::Thing => {
                    let bound = out
                        .last()
                        .map_or(clause.start, |c| c.span.end.max(clause.start));
                    (Kind::Thing, self.what(start, end, bound, clause.end, false))
                }
                UnitKind::PersonTimes => {
                    let bound = out
                        .last()
                        .map_or(clause.start, |c| c.span.end.max(clause.start));
                    let noun = self.what(start, end, bound, clause.end, false);
                    // 45人次, 参与志愿者1.2万人次: people who took part,
                    // ranked below every head count; 咨询群众300人次: a quantity
                    let kind = match self.person_kind(&clause, start, end) {
                        Kind::Person { rank } if rank >= 3 => Kind::Person { rank: 1 },
                        Kind::Person { .. }
                            if noun.as_ref().is_none_or(|n| self.is_member_noun(n)) =>
                        {
                            Kind::Person { rank: 0 }
                        }
                        Kind::Person { .. } => Kind::Thing,
                        k => k,
                    };
                    let kind = match kind {
                        Kind::Person { .. }
                            if value.fract() != 0.0 || value > f64::from(u32::MAX) =>
                        {
                            Kind::Thing
                        }
                        k => k,
                    };
                    (kind, noun)
                }
                UnitKind::Person => {
                    let kind = self.person_kind(&clause, start, end);
                    let bound = out
                        .last()
                        .map_or(clause.start, |c| c.span.end.max(clause.start));
                    let kind = match kind {
                        Kind::Person { .. }
                            if value.fract() != 0.0 || value > f64::from(u32::MAX) =>
                        {
                            Kind::Thing
                        }
                        k => k,
                    };
                    (kind, self.what(start, end, bound, clause.end, true))
                }
            };
            out.push(Count {
                value,
                span: start..end,
                unit: Some(info),
                approx,
                kind,
                noun,
            });
        }
        out
    }

    /// Every number, plus round numbers written without a digit that an
    /// approximation word makes clear (近百人, 百余人, 上千名, 近万人).
    fn numbers(&self) -> Vec<(f64, Range<usize>, bool)> {
        let s = self.s;
        let mut nums: Vec<(f64, Range<usize>, bool)> = find_numbers(s)
            .into_iter()
            .map(|(v, r)| (v, r, false))
            .collect();
        let plain = nums.len();
        for (i, c) in s.char_indices() {
            let v = match c {
                '百' => 100.0,
                '千' => 1000.0,
                '万' => 10000.0,
                _ => continue,
            };
            let r = i..i + c.len_utf8();
            if nums[..plain].iter().any(|(_, n, _)| overlaps(n, &r))
                || prev_char(s, i).is_some_and(is_cn_numeral_char)
            {
                continue;
            }
            let before = prev_char(s, i)
                .is_some_and(|p| matches!(p, '近' | '约' | '上' | '数' | '几' | '逾' | '超'));
            if before || self.rules.approx_after.longest_at(s, r.end).is_some() {
                nums.push((v, r, true));
            }
        }
        if nums.len() > plain {
            nums.sort_by_key(|(_, r, _)| r.start);
        }
        nums
    }

    /// The context word right before `i`, skipping `:`, spaces, 为, 是, 达.
    fn marker_before(&self, i: usize) -> Option<&Hit<'r, WordInfo>> {
        let s = self.s;
        let mut i = i;
        while let Some(c) =
            prev_char(s, i).filter(|c| matches!(c, ' ' | ':' | '为' | '是' | '达' | '='))
        {
            i -= c.len_utf8();
        }
        let k = self.hit_index(i);
        self.hits
            .get(k.checked_sub(1)?)
            .filter(|h| h.range.end == i)
    }

    /// The noun names people who take part (团员, 青年志愿者).
    fn is_member_noun(&self, n: &Range<usize>) -> bool {
        self.hits.iter().any(|h| {
            h.range.end == n.end && h.range.start >= n.start && h.v.roles & role::MEMBER != 0
        })
    }

    fn bare_number_kind(&self, i: usize) -> Option<Kind> {
        let h = self.marker_before(i)?;
        let roles = h.v.roles;
        // 团员45, 参加人员:45: a member noun glued to a number that ends its
        // segment
        if roles & role::MEMBER != 0 && matches!(&self.s[h.range.end..i], "" | ":") {
            let end = i + find_numbers(&self.s[i..]).first().map_or(0, |(_, r)| r.end);
            let at_end = char_at(self.s, end).is_none_or(is_separator);
            return at_end.then_some(Kind::Person { rank: 2 });
        }
        if roles & role::PEOPLE_COUNT != 0 {
            Some(if roles & role::IGNORE != 0 {
                Kind::Ignored
            } else if roles & role::ACTUAL != 0 {
                Kind::Person { rank: 5 }
            } else if roles & role::TOTAL != 0 {
                Kind::Person { rank: 4 }
            } else {
                Kind::Person { rank: 3 }
            })
        } else if roles & role::HOURS != 0 {
            Some(Kind::Hours {
                per_person: false,
                duration: false,
            })
        } else {
            None
        }
    }

    fn hours_kind(&self, clause: &Range<usize>, start: usize) -> Kind {
        let lo = self.hit_index(clause.start);
        let hi = self.hit_index(start);
        let before = &self.hits[lo..hi.max(lo)];
        let per_person = before.iter().any(|h| h.v.roles & role::PER_PERSON != 0);
        let duration = before
            .iter()
            .rev()
            .find(|h| h.v.roles & (role::STOPS | role::APPROX) != 0)
            .is_some_and(|h| h.v.roles & role::DURATION != 0);
        Kind::Hours {
            per_person,
            duration,
        }
    }

    /// What a head count means, from the words around it.
    fn person_kind(&self, clause: &Range<usize>, start: usize, end: usize) -> Kind {
        let lo = self.hit_index(clause.start);
        let hi = self.hit_index(start);
        let nearest = self.hits[lo..hi.max(lo)]
            .iter()
            .rev()
            .find(|h| h.v.roles & role::HEAD_CONTEXT != 0);
        // the object of a plain verb (研究3名入团积极分子, 选举5名委员) is not
        // the people present
        if let Some(h) = nearest
            && h.v.roles & role::HEAD_CONTEXT == role::STOP
            && self
                .s
                .get(h.range.end..start)
                .is_some_and(|gap| gap.trim().is_empty())
        {
            return Kind::Served;
        }
        let mut decided = nearest.map(|h| h.v.roles);
        // `走访 148名学生`: a verb ending the previous segment still governs
        if decided.is_none()
            // the count's span may begin before the clause (`约 45人`)
            && !self
                .s
                .get(clause.start..start)
                .is_some_and(|gap| gap.chars().any(is_cjk))
            && let Some(h) = self.hits[..lo].last()
            // a hit reaching into the clause (`约 ` before its count) ends no segment
            && self
                .s
                .get(h.range.end..clause.start)
                .is_some_and(|gap| gap.chars().all(char::is_whitespace))
        {
            decided = Some(h.v.roles & role::HEAD_CONTEXT);
        }
        // a verb right after the count (and its noun): 5人参加, 30人受益
        let after = self.hits[self.hit_index(end)..]
            .iter()
            .take_while(|h| h.range.start < clause.end)
            .find(|h| h.v.roles & (role::STOPS | role::SERVED_AFTER) != 0)
            .map_or(0, |h| h.v.roles);
        let d = decided.unwrap_or(0);
        if d & role::IGNORE != 0 {
            Kind::Ignored
        } else if d & (role::SUBSET | role::SERVED_AFTER) != 0 || after & role::SERVED_AFTER != 0 {
            Kind::Served
        } else if d & role::ACTUAL != 0 {
            Kind::Person { rank: 5 }
        } else if d & role::TOTAL != 0 {
            Kind::Person { rank: 4 }
        } else if d & role::SERVED != 0 && d & role::PARTICIPATE == 0 {
            Kind::Served
        } else if d & role::PARTICIPATE != 0 {
            Kind::Person { rank: 3 }
        } else if after & role::ACTUAL != 0 {
            Kind::Person { rank: 5 }
        } else if after & role::PARTICIPATE != 0 {
            Kind::Person { rank: 3 }
        } else {
            Kind::Person { rank: 2 }
        }
    }

    /// The noun a count refers to: right after the measure word, else the
    /// noun before the number after the last stop word. `lo` bounds the
    /// backward search (clause start or the previous count).
    fn what(
        &self,
        start: usize,
        end: usize,
        lo: usize,
        hi: usize,
        person: bool,
    ) -> Option<Range<usize>> {
        let s = self.s;
        // after
        let mut i = end;
        let mut n = 0;
        while i < hi && n < 8 {
            let Some(c) = char_at(s, i).filter(|&c| is_cjk(c)) else {
                break;
            };
            if self.masked(&(i..i + c.len_utf8())) {
                break;
            }
            if let Some((e, &is_stop)) = self.rules.stops.longest_at(s, i) {
                if is_stop {
                    break;
                }
                n += s[i..e].chars().count();
                i = e;
                continue;
            }
            // a person noun ends where a category keyword starts: 团员|义务植树
            if person && i > end {
                let k = self.hit_index(i);
                if self
                    .hits
                    .get(k)
                    .is_some_and(|h| h.range.start == i && h.v.category.is_some())
                {
                    break;
                }
            }
            i += c.len_utf8();
            n += 1;
        }
        if i > end {
            return Some(end..i);
        }
        // before: a quoted title right before the number (《致家长的一封信》1500份)
        if let Some(q) = self.quotes.iter().find(|q| q.end == start && q.start >= lo) {
            return Some(q.clone());
        }
        // before: the CJK run ending at `start`
        let mut b = start;
        while b > lo {
            let Some(c) = prev_char(s, b).filter(|&c| is_cjk(c)) else {
                break;
            };
            if self.masked(&(b - c.len_utf8()..b)) {
                break;
            }
            b -= c.len_utf8();
        }
        if b >= start {
            return None;
        }
        // keep what follows the last stop word
        let mut from = b;
        for h in self.rules.stops.scan(s, b..start) {
            if *h.v {
                from = h.range.end;
            }
        }
        // cap at 8 characters, keeping the head (last) characters
        let run = &s[from..start];
        let extra = run.chars().count().saturating_sub(8);
        let from = from + run.chars().take(extra).map(char::len_utf8).sum::<usize>();
        (from < start).then_some(from..start)
    }

    // ------------------------------------------------------------ category

    /// The best-scoring category; `true` when nothing matched (其他).
    /// `title_head` is the title's head keyword: the cadre's own name for
    /// the activity, so it counts twice (社区环保宣传 is a 宣传).
    fn category(&self, title_head: Option<(Category, u32)>) -> (Category, bool) {
        let mut score = [0u32; Category::ALL.len()];
        let mut first = [usize::MAX; Category::ALL.len()];
        let mut any = false;
        for h in &self.hits {
            if let Some((c, w)) = h.v.category {
                let w = if inside_any(&self.quotes, h.range.start) {
                    w / 2
                } else {
                    w
                };
                score[c.index()] += w;
                first[c.index()] = first[c.index()].min(h.range.start);
                any = true;
            }
        }
        if !any {
            return (Category::Other, true);
        }
        // head bonus: the last keyword of each segment
        for seg in &self.segs {
            let k = self.hit_index(seg.start);
            if let Some((c, _)) = self.hits[k..]
                .iter()
                .take_while(|h| h.range.start < seg.end)
                .filter_map(|h| h.v.category)
                .last()
            {
                score[c.index()] += HEAD_BONUS;
            }
        }
        if let Some((c, w)) = title_head {
            score[c.index()] += w;
        }
        let best = Category::ALL
            .into_iter()
            .filter(|c| score[c.index()] > 0)
            .max_by_key(|c| (score[c.index()], std::cmp::Reverse(first[c.index()])))
            .unwrap_or(Category::Other);
        (best, false)
    }

    // ------------------------------------------------------------ title

    /// Picks the title segment. Returns the title (without the category
    /// fallback), a stand-alone theme, and the category of the title's head
    /// keyword.
    fn title(&self, counts: &[Count<'r>], location: Option<Range<usize>>) -> TitleParts {
        let s = self.s;
        let mut data: Vec<Range<usize>> = self.time_masks.clone();
        data.extend(location);
        for c in counts {
            data.push(c.span.clone());
            if matches!(c.kind, Kind::Person { .. } | Kind::Served | Kind::Ignored)
                && let Some(n) = &c.noun
            {
                data.push(n.clone());
            }
        }
        data.extend(
            self.hits
                .iter()
                .filter(|h| h.v.roles & role::DATA != 0 && !inside_any(&self.quotes, h.range.start))
                .map(|h| h.range.clone()),
        );

        struct Candidate {
            text: String,
            has_count: bool,
            has_keyword: bool,
        }
        let mut cands: Vec<Candidate> = Vec::new();
        let mut theme: Option<String> = None;
        for seg in &self.segs {
            let mut text = String::new();
            for (i, c) in s[seg.clone()].char_indices() {
                if !c.is_control() && !inside_any(&data, seg.start + i) {
                    text.push(c);
                }
            }
            // 支委会(5人) without its count
            let text = text.replace("()", "");
            let text = self.trim_title(self.after_launch(self.trim_title(&text)));
            if text.is_empty() {
                continue;
            }
            // a segment that is only a quote is a theme
            if QUOTES.iter().any(|(o, c)| {
                text.starts_with(*o) && text.ends_with(*c) && text.chars().count() > 2
            }) && self.quotes.iter().any(|q| s[q.clone()] == *text)
            {
                theme.get_or_insert_with(|| text.to_string());
                continue;
            }
            if !text.chars().any(char::is_alphanumeric) {
                continue;
            }
            let has_count = counts.iter().any(|c| overlaps(&c.span, seg));
            // a segment with counts must keep real keywords (at least one
            // strong keyword's worth) in what is left of it: 累计服务45小时
            // leaves only 服务, 在敬老院打扫卫生 leaves 打扫卫生
            let has_keyword = if has_count {
                let weight: u32 = self
                    .rules
                    .words
                    .scan(text, 0..text.len())
                    .iter()
                    .filter_map(|h| h.v.category.map(|(_, w)| w))
                    .sum();
                weight >= STRONG_WEIGHT
            } else {
                // member nouns (青年志愿者) name people, not the activity
                let k = self.hit_index(seg.start);
                self.hits[k..]
                    .iter()
                    .take_while(|h| h.range.start < seg.end)
                    .any(|h| h.v.category.is_some() && h.v.roles & role::MEMBER == 0)
            };
            let end = text.len();
            let is_org = !has_keyword && self.rules.org_suffixes.ending_at(text, end).is_some();
            if is_org {
                continue;
            }
            if has_count && !has_keyword {
                continue;
            }
            cands.push(Candidate {
                text: text.to_string(),
                has_count,
                has_keyword,
            });
        }
        let pick = cands
            .iter()
            .find(|c| !c.has_count && c.has_keyword)
            .or_else(|| cands.iter().find(|c| !c.has_count))
            .or_else(|| cands.iter().find(|c| c.has_keyword));
        let Some(pick) = pick else {
            return TitleParts {
                text: None,
                theme,
                head: None,
            };
        };
        // the head keyword: the last one outside quotes
        let quoted = quote_spans(&pick.text);
        let head = self
            .rules
            .words
            .scan(&pick.text, 0..pick.text.len())
            .iter()
            .rev()
            .filter(|h| !inside_any(&quoted, h.range.start))
            .find_map(|h| h.v.category);
        let text = match theme {
            Some(t) if quoted.is_empty() => format!("{t}{}", pick.text),
            _ => pick.text.clone(),
        };
        TitleParts {
            text: Some(text),
            theme: None,
            head,
        }
    }

    /// The part after the last launch verb that is followed by a category
    /// keyword: 城关镇团委召开支委会 → 支委会.
    fn after_launch<'t>(&self, t: &'t str) -> &'t str {
        let hits = self.rules.words.scan(t, 0..t.len());
        let mut cut = 0;
        for (k, h) in hits.iter().enumerate() {
            if h.v.roles & role::LAUNCH != 0 && hits[k + 1..].iter().any(|x| x.v.category.is_some())
            {
                cut = h.range.end;
            }
        }
        &t[cut..]
    }

    /// Strips punctuation and filler words from both ends.
    fn trim_title<'t>(&self, mut t: &'t str) -> &'t str {
        const JUNK: &[char] = &[
            ' ', ':', ';', ',', '.', '-', '—', '~', '·', '•', '*', '#', '、', '|', '/', '\\', '=',
            '+',
        ];
        loop {
            let before = t.len();
            t = t.trim_matches(JUNK);
            if let Some((e, _)) = self.rules.fillers.longest_at(t, 0)
                && e < t.len()
            {
                // keep 组织 in 组织生活会: a keyword starting here wins
                let keyword_here = self
                    .rules
                    .words
                    .longest_at(t, 0)
                    .is_some_and(|(k, v)| k > e && v.category.is_some());
                if !keyword_here {
                    t = &t[e..];
                }
            }
            if let Some(st) = self.rules.filler_suffixes.ending_at(t, t.len())
                && st > 0
            {
                t = &t[..st];
            }
            if t.len() == before {
                return t;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Asserts every key of `expect` (a JSON object) against the report.
    fn check(today: &str, text: &str, expect: &str) {
        let report = parse_activity(text, day(today), ActivityRules::builtin());
        let got = serde_json::to_value(&report).unwrap();
        let want: serde_json::Value = serde_json::from_str(expect).unwrap();
        for (key, value) in want.as_object().unwrap() {
            assert_eq!(&got[key], value, "{key} of {text:?}\n full: {got}");
        }
    }

    /// Realistic reports from townships and schools, beyond the fixture.
    /// Every field but `kind`/`org` is asserted.
    const CASES: &[(&str, &str, &str)] = &[
        (
            "2026-03-14",
            "/log 3月12日 植树节义务植树活动 团员青年60余人 在城南公园植树800株",
            r#"{"approx":true,"category":"志愿服务","date":"2026-03-12","hours":null,"location":"城南公园","participants":60,"quantities":[{"count":800,"unit":"株","what":"树"}],"title":"植树节义务植树活动","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月11日 无偿献血志愿服务 献血团员35人 献血量1.2万毫升",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-11","hours":null,"location":null,"participants":35,"quantities":[{"count":12000,"unit":"毫升","what":"献血量"}],"title":"无偿献血志愿服务","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月9日 “保护母亲河”环保志愿活动 在渭河滩捡拾垃圾 志愿者四十五人 清理垃圾30余袋",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-09","hours":null,"location":"渭河滩","participants":45,"quantities":[{"count":30,"unit":"袋","what":"垃圾"}],"title":"“保护母亲河”环保志愿活动","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月8日上午 防溺水安全宣传进校园 在城关小学发放宣传单1200份 受教育学生800余人",
            r#"{"approx":false,"category":"宣传","date":"2026-03-08","hours":null,"location":"城关小学","participants":null,"quantities":[{"count":1200,"unit":"份","what":"宣传单"},{"count":800,"unit":"人","what":"学生"}],"title":"防溺水安全宣传进校园","warnings":["participants_missing"]}"#,
        ),
        (
            "2026-03-14",
            "3月6日 专题团课《学习二十大精神》 地点:镇政府会议室 团员32人",
            r#"{"approx":false,"category":"团课","date":"2026-03-06","hours":null,"location":"镇政府会议室","participants":32,"quantities":[],"title":"专题团课《学习二十大精神》","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月2日 支委会 研究发展新团员工作 支委5人参加",
            r#"{"approx":false,"category":"支委会","date":"2026-03-02","hours":null,"location":null,"participants":5,"quantities":[],"title":"支委会","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "2026年3月1日 “学雷锋 树新风”主题团日活动 参加团员28名",
            r#"{"approx":false,"category":"主题团日","date":"2026-03-01","hours":null,"location":null,"participants":28,"quantities":[],"title":"“学雷锋 树新风”主题团日活动","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "今天下午3点 团员大会 换届选举 应到团员40人 实到38人",
            r#"{"approx":false,"category":"团员大会","date":"2026-03-14","hours":null,"location":null,"participants":38,"quantities":[],"title":"团员大会","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月5日 第三期团干部培训班 培训团干部120人 为期两天",
            r#"{"approx":false,"category":"培训","date":"2026-03-05","hours":null,"location":null,"participants":120,"quantities":[{"count":2,"unit":"天","what":null}],"title":"第三期团干部培训班","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月7日 乡镇团委书记座谈会 参会人数:18",
            r#"{"approx":false,"category":"调研座谈","date":"2026-03-07","hours":null,"location":null,"participants":18,"quantities":[],"title":"乡镇团委书记座谈会","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3.3 知识竞赛 12支代表队参赛 选手36名",
            r#"{"approx":false,"category":"竞赛","date":"2026-03-03","hours":null,"location":null,"participants":36,"quantities":[{"count":12,"unit":"支","what":"代表队"}],"title":"知识竞赛","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "三月四日 元宵节文艺汇演 观众约500人 节目12个",
            r#"{"approx":true,"category":"文体活动","date":"2026-03-04","hours":null,"location":null,"participants":500,"quantities":[{"count":12,"unit":"个","what":"节目"}],"title":"元宵节文艺汇演","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月6日 走访慰问困难团员10户 送去慰问金5000元 米面油20套",
            r#"{"approx":false,"category":"帮扶慰问","date":"2026-03-06","hours":null,"location":null,"participants":null,"quantities":[{"count":10,"unit":"户","what":"困难团员"},{"count":5000,"unit":"元","what":"慰问金"},{"count":20,"unit":"套","what":"米面油"}],"title":"走访慰问困难团员","warnings":["participants_missing"]}"#,
        ),
        (
            "2026-03-14",
            "3月9日 禁毒宣传 在人民广场 发放宣传册800本 展板12块 咨询群众300人次",
            r#"{"approx":false,"category":"宣传","date":"2026-03-09","hours":null,"location":"人民广场","participants":null,"quantities":[{"count":800,"unit":"本","what":"宣传册"},{"count":12,"unit":"块","what":"展板"},{"count":300,"unit":"人次","what":"咨询群众"}],"title":"禁毒宣传","warnings":["participants_missing"]}"#,
        ),
        (
            "2026-03-14",
            "3月10日 关爱留守儿童志愿服务 志愿者20人 陪伴留守儿童40名 服务时长60小时",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-10","hours":60,"location":null,"participants":20,"quantities":[{"count":40,"unit":"名","what":"留守儿童"}],"title":"关爱留守儿童志愿服务","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "上周三 青年创业技能培训 参训青年85人 地点县职教中心",
            r#"{"approx":false,"category":"培训","date":"2026-03-04","hours":null,"location":"县职教中心","participants":85,"quantities":[],"title":"青年创业技能培训","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "前天 在李家村开展环境整治志愿服务 出动团员青年25人 清理垃圾2吨",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-12","hours":null,"location":"李家村","participants":25,"quantities":[{"count":2,"unit":"吨","what":"垃圾"}],"title":"环境整治志愿服务","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月5日 学雷锋志愿服务 志愿者50人 人均服务2.5小时",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-05","hours":125,"location":null,"participants":50,"quantities":[],"title":"学雷锋志愿服务","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月3日 篮球比赛 8支球队 参赛队员96人",
            r#"{"approx":false,"category":"文体活动","date":"2026-03-03","hours":null,"location":null,"participants":96,"quantities":[{"count":8,"unit":"支","what":"球队"}],"title":"篮球比赛","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月6日 爱心捐赠 捐赠图书500册 衣物200件 价值1.5万元",
            r#"{"approx":false,"category":"帮扶慰问","date":"2026-03-06","hours":null,"location":null,"participants":null,"quantities":[{"count":500,"unit":"册","what":"图书"},{"count":200,"unit":"件","what":"衣物"},{"count":15000,"unit":"元","what":null}],"title":"爱心捐赠","warnings":["participants_missing"]}"#,
        ),
        (
            "2026-03-14",
            "3月8日 巾帼志愿服务 组织女青年志愿者近百人",
            r#"{"approx":true,"category":"志愿服务","date":"2026-03-08","hours":null,"location":null,"participants":100,"quantities":[],"title":"巾帼志愿服务","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月10日 两万三千元助学金发放仪式 资助贫困学生46名",
            r#"{"approx":false,"category":"帮扶慰问","date":"2026-03-10","hours":null,"location":null,"participants":null,"quantities":[{"count":23000,"unit":"元","what":"助学金"},{"count":46,"unit":"名","what":"贫困学生"}],"title":"助学金发放仪式","warnings":["participants_missing"]}"#,
        ),
        (
            "2026-03-14",
            "3月9日 征文比赛 收到作品一百零八篇 评出一等奖3名",
            r#"{"approx":false,"category":"竞赛","date":"2026-03-09","hours":null,"location":null,"participants":null,"quantities":[{"count":108,"unit":"篇","what":"作品"},{"count":3,"unit":"名","what":"一等奖"}],"title":"征文比赛","warnings":["participants_missing"]}"#,
        ),
        (
            "2026-03-14",
            "3月3日 红领巾志愿服务 少先队员15名 走进敬老院 为老人表演节目6个",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-03","hours":null,"location":"敬老院","participants":15,"quantities":[{"count":6,"unit":"个","what":"节目"}],"title":"红领巾志愿服务","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "明天 团课 20人",
            r#"{"approx":false,"category":"团课","date":"2026-03-15","hours":null,"location":null,"participants":20,"quantities":[],"title":"团课","warnings":["date_in_future"]}"#,
        ),
        (
            "2026-03-14",
            "/log 团课",
            r#"{"approx":false,"category":"团课","date":"2026-03-14","hours":null,"location":null,"participants":null,"quantities":[],"title":"团课","warnings":["date_missing","participants_missing"]}"#,
        ),
        (
            "2026-03-14",
            "2月30日 植树 20人",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-14","hours":null,"location":null,"participants":20,"quantities":[],"title":"植树","warnings":["date_invalid"]}"#,
        ),
        (
            "2026-03-14",
            "3月5日，团县委组织30名青年志愿者在县人民广场开展学雷锋志愿服务活动，发放宣传资料2000余份，服务群众500余人次。",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-05","hours":null,"location":"县人民广场","participants":30,"quantities":[{"count":2000,"unit":"份","what":"宣传资料"},{"count":500,"unit":"人次","what":"群众"}],"title":"学雷锋志愿服务活动","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月7日上午，城关镇团委在镇政府三楼会议室召开支委会，5名支委参加会议。",
            r#"{"approx":false,"category":"支委会","date":"2026-03-07","hours":null,"location":"镇政府三楼会议室","participants":5,"quantities":[],"title":"支委会","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "#记录 3月4日 植树造林 地点：五里墩村 参加人员：团员青年六十人 植树一千二百株",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-04","hours":null,"location":"五里墩村","participants":60,"quantities":[{"count":1200,"unit":"株","what":"树"}],"title":"植树造林","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月3日 县一中团委 团课 学习五四精神 团员五十名",
            r#"{"approx":false,"category":"团课","date":"2026-03-03","hours":null,"location":null,"participants":50,"quantities":[],"title":"团课","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "2026/03/01 \"学习雷锋好榜样\"主题团日 团员25人 时长2小时",
            r#"{"approx":false,"category":"主题团日","date":"2026-03-01","hours":2,"location":null,"participants":25,"quantities":[],"title":"\"学习雷锋好榜样\"主题团日","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月3日 志愿者12人在敬老院打扫卫生 每人3个小时",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-03","hours":36,"location":"敬老院","participants":12,"quantities":[],"title":"打扫卫生","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月2日 开展“三下乡”活动 志愿者40人 每人4个半小时",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-02","hours":180,"location":null,"participants":40,"quantities":[],"title":"“三下乡”活动","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月5日 团员青年义务劳动 地点:西关社区 参加人数 35",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-05","hours":null,"location":"西关社区","participants":35,"quantities":[],"title":"团员青年义务劳动","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月3日 召开团员大会 应到32人 实到30人 缺席2人",
            r#"{"approx":false,"category":"团员大会","date":"2026-03-03","hours":null,"location":null,"participants":30,"quantities":[],"title":"团员大会","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月6日 帮扶结对 结对帮扶困难青少年10名 发放帮扶资金1.5万元",
            r#"{"approx":false,"category":"帮扶慰问","date":"2026-03-06","hours":null,"location":null,"participants":null,"quantities":[{"count":10,"unit":"名","what":"困难青少年"},{"count":15000,"unit":"元","what":"帮扶资金"}],"title":"帮扶结对","warnings":["participants_missing"]}"#,
        ),
        (
            "2026-03-14",
            "3月5日 在三里铺村开展义务植树 团员20人 栽种树苗300棵",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-05","hours":null,"location":"三里铺村","participants":20,"quantities":[{"count":300,"unit":"棵","what":"树苗"}],"title":"义务植树","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月3日 防溺水宣传 向学生及家长发放《致家长的一封信》1500份",
            r#"{"approx":false,"category":"宣传","date":"2026-03-03","hours":null,"location":null,"participants":null,"quantities":[{"count":1500,"unit":"份","what":"《致家长的一封信》"}],"title":"防溺水宣传","warnings":["participants_missing"]}"#,
        ),
        (
            "2026-03-14",
            "3月5日 团员大会 团员23名 其中新团员5名",
            r#"{"approx":false,"category":"团员大会","date":"2026-03-05","hours":null,"location":null,"participants":23,"quantities":[{"count":5,"unit":"名","what":"新团员"}],"title":"团员大会","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月5日 在团县委的带领下 团员青年40人 开展义务劳动",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-05","hours":null,"location":null,"participants":40,"quantities":[],"title":"义务劳动","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "5号 团课 参加团员二十人",
            r#"{"approx":false,"category":"团课","date":"2026-03-05","hours":null,"location":null,"participants":20,"quantities":[],"title":"团课","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月7日 支委会 研究3名入团积极分子发展事宜 支委5人",
            r#"{"approx":false,"category":"支委会","date":"2026-03-07","hours":null,"location":null,"participants":5,"quantities":[{"count":3,"unit":"名","what":"入团积极分子"}],"title":"支委会","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月9日 在和平村文化广场开展反诈宣传 发放宣传手册600册 现场解答群众咨询120余人次",
            r#"{"approx":false,"category":"宣传","date":"2026-03-09","hours":null,"location":"和平村文化广场","participants":null,"quantities":[{"count":600,"unit":"册","what":"宣传手册"},{"count":120,"unit":"人次","what":"现场解答群众咨询"}],"title":"反诈宣传","warnings":["participants_missing"]}"#,
        ),
        (
            "2026-03-14",
            "2026年3月9日上午9点 入团宣誓仪式 新团员18名 在革命烈士纪念碑前",
            r#"{"approx":false,"category":"入团仪式","date":"2026-03-09","hours":null,"location":"革命烈士纪念碑","participants":18,"quantities":[],"title":"入团宣誓仪式","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月3日 献爱心募捐活动 募集善款12,500元 捐款团员86人",
            r#"{"approx":false,"category":"帮扶慰问","date":"2026-03-03","hours":null,"location":null,"participants":86,"quantities":[{"count":12500,"unit":"元","what":"善款"}],"title":"献爱心募捐活动","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月1日至3月5日 学雷锋志愿服务月 累计参与志愿者1.2万人次 服务时长4.8万小时",
            r#"{"approx":false,"category":"志愿服务","date":"2026-03-01","hours":48000,"location":null,"participants":12000,"quantities":[],"title":"学雷锋志愿服务月","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月4日 乒乓球比赛 参赛选手64名 决出前八名",
            r#"{"approx":false,"category":"文体活动","date":"2026-03-04","hours":null,"location":null,"participants":64,"quantities":[],"title":"乒乓球比赛","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "📣🎉👍",
            r#"{"approx":false,"category":"其他","date":"2026-03-14","hours":null,"location":null,"participants":null,"quantities":[],"title":"其他","warnings":["empty"]}"#,
        ),
        (
            "2026-03-14",
            "3月8日 团小组会 到会团员7人 请假1人",
            r#"{"approx":false,"category":"团小组会","date":"2026-03-08","hours":null,"location":null,"participants":7,"quantities":[],"title":"团小组会","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月12日下午 社区环保宣传 在幸福社区广场 志愿者十二名 发放环保袋200个",
            r#"{"approx":false,"category":"宣传","date":"2026-03-12","hours":null,"location":"幸福社区广场","participants":12,"quantities":[{"count":200,"unit":"个","what":"环保袋"}],"title":"社区环保宣传","warnings":[]}"#,
        ),
        (
            "2026-03-14",
            "3月13日 学生会 拔河比赛 参赛班级12个 学生240余人",
            r#"{"approx":true,"category":"文体活动","date":"2026-03-13","hours":null,"location":null,"participants":240,"quantities":[{"count":12,"unit":"个","what":"班级"}],"title":"拔河比赛","warnings":[]}"#,
        ),
    ];

    #[test]
    fn realistic_sentences() {
        assert!(CASES.len() >= 30);
        for (today, text, expect) in CASES {
            check(today, text, expect);
        }
    }

    #[test]
    fn command_prefixes_and_full_width() {
        let want =
            r#"{"date":"2026-03-05","category":"志愿服务","participants":45,"location":"三里铺"}"#;
        for text in [
            "/log 3月5日 学雷锋志愿服务 参加团员45人 地点三里铺",
            "/LOG 3月5日 学雷锋志愿服务 参加团员45人 地点三里铺",
            "/log@tuanbot_bot 3月5日 学雷锋志愿服务 参加团员45人 地点三里铺",
            "记录 3月5日 学雷锋志愿服务 参加团员45人 地点三里铺",
            "记录：3月5日 学雷锋志愿服务 参加团员45人 地点三里铺",
            "/记录 3月5日 学雷锋志愿服务 参加团员45人 地点三里铺",
            "#记录 3月5日 学雷锋志愿服务 参加团员45人 地点三里铺",
            "３月５日　学雷锋志愿服务　参加团员４５人　地点：三里铺",
            "3月5日 学雷锋志愿服务 参加团员45人 地点三里铺",
        ] {
            check("2026-03-10", text, want);
        }
        // not a command: /logs
        let r = parse_activity("/logs 团课", day("2026-03-10"), ActivityRules::builtin());
        assert_eq!(r.category, Category::LeagueLecture);
    }

    #[test]
    fn several_lines_are_several_records() {
        let msg =
            "/log\n1. 3月5日 学雷锋志愿服务 45人\n\n- 3月6日 团课 30人\n3月7日 支委会 5人参加";
        let reports = parse_activity_lines(msg, day("2026-03-10"), ActivityRules::builtin());
        let got: Vec<_> = reports
            .iter()
            .map(|r| (r.date.to_string(), r.category.as_str(), r.participants))
            .collect();
        assert_eq!(
            got,
            vec![
                ("2026-03-05".to_string(), "志愿服务", Some(45)),
                ("2026-03-06".to_string(), "团课", Some(30)),
                ("2026-03-07".to_string(), "支委会", Some(5)),
            ]
        );
        assert!(
            parse_activity_lines("/log", day("2026-03-10"), ActivityRules::builtin()).is_empty()
        );
        assert!(
            parse_activity_lines("  \n \n", day("2026-03-10"), ActivityRules::builtin()).is_empty()
        );
    }

    #[test]
    fn empty_inputs() {
        for text in ["", "/log", "记录", "   ", "🎉🎉", "。。。", "\u{0}\u{1}"] {
            let r = parse_activity(text, day("2026-03-10"), ActivityRules::builtin());
            assert_eq!(r.warnings, vec![Warning::Empty], "{text:?}");
            assert_eq!(r.title, "其他");
            assert_eq!(r.date, day("2026-03-10"));
        }
    }

    #[test]
    fn county_rules_extend_the_builtin_ones() {
        let text = "3月5日 河长制知识进万家 团员12人 在柳树垴";
        let base = parse_activity(text, day("2026-03-10"), ActivityRules::builtin());
        assert_eq!(base.category, Category::Other);
        assert_eq!(base.location, None);
        assert!(base.warnings.contains(&Warning::CategoryGuessed));
        let county = ActivityRules::builtin()
            .extended_with(
                r#"
                [categories."宣传"]
                name = ["河长制"]
                [location]
                suffixes = ["垴"]
                "#,
            )
            .unwrap();
        let r = parse_activity(text, day("2026-03-10"), &county);
        assert_eq!(r.category, Category::Publicity);
        assert_eq!(r.location.as_deref(), Some("柳树垴"));
        assert_eq!(r.participants, Some(12));
    }

    #[test]
    fn rules_files_are_validated() {
        assert!(ActivityRules::from_toml(DEFAULT_RULES_TOML).is_ok());
        assert!(ActivityRules::from_toml("").is_ok());
        let bad = [
            "[categories.\"团建\"]\nname = [\"团建\"]",
            "[words]\nverbs = [\"x\"]",
            "[units.scaled]\n\"万元\" = [\"元\", 0]",
            "[location]\nnumbered_place_ends = [\"村口\"]",
            "not toml at all = = =",
        ];
        for src in bad {
            assert!(ActivityRules::from_toml(src).is_err(), "{src}");
            assert!(
                ActivityRules::builtin().extended_with(src).is_err(),
                "{src}"
            );
        }
        // an empty rule set still parses without panicking
        let empty = ActivityRules::from_toml("").unwrap();
        let r = parse_activity("3月5日 团课 30人", day("2026-03-10"), &empty);
        assert_eq!(r.category, Category::Other);
        assert_eq!(r.date, day("2026-03-05"));
    }

    #[test]
    fn builtin_keywords_belong_to_one_category() {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (name, tiers) in &ActivityRules::builtin().file.categories {
            for w in tiers
                .name
                .iter()
                .chain(&tiers.strong)
                .chain(&tiers.normal)
                .chain(&tiers.weak)
            {
                if let Some(other) = seen.insert(w, name) {
                    assert_eq!(
                        other, name,
                        "keyword {w} is listed under {other} and {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn warning_codes_are_stable() {
        for w in Warning::ALL {
            assert_eq!(
                serde_json::to_string(&w).unwrap(),
                format!("\"{}\"", w.code())
            );
        }
    }

    #[test]
    fn numbers_serialize_as_integers_when_whole() {
        let r = parse_activity(
            "3月5日 志愿服务 志愿者3人 每人服务1.5小时 捐款1.25万元",
            day("2026-03-10"),
            ActivityRules::builtin(),
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""hours":4.5"#), "{json}");
        assert!(json.contains(r#""count":12500,"unit":"元""#), "{json}");
        let back: ActivityReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    /// (date, category, participants) of every record of a message.
    fn records(today: &str, text: &str) -> Vec<(String, &'static str, Option<u32>)> {
        parse_activity_parts(text, day(today), ActivityRules::builtin())
            .iter()
            .map(|p| {
                (
                    p.date.format("%m-%d").to_string(),
                    p.report.category.as_str(),
                    p.report.participants,
                )
            })
            .collect()
    }

    #[test]
    fn several_activities_in_one_line() {
        type Want = &'static [(&'static str, &'static str, Option<u32>)];
        let cases: &[(&str, Want)] = &[
            (
                "/log 3月13日团课32人，3月14日支委会7人；3月16日团小组会12人",
                &[
                    ("03-13", "团课", Some(32)),
                    ("03-14", "支委会", Some(7)),
                    ("03-16", "团小组会", Some(12)),
                ],
            ),
            (
                "3月13日 团课 32人 3月14日 支委会 7人",
                &[("03-13", "团课", Some(32)), ("03-14", "支委会", Some(7))],
            ),
            (
                "3月13日团课32人、3月14日支委会7人、3月16日团小组会12人",
                &[
                    ("03-13", "团课", Some(32)),
                    ("03-14", "支委会", Some(7)),
                    ("03-16", "团小组会", Some(12)),
                ],
            ),
            (
                "3月13日团课32人，14日支委会7人，16日团小组会12人。",
                &[
                    ("03-13", "团课", Some(32)),
                    ("03-14", "支委会", Some(7)),
                    ("03-16", "团小组会", Some(12)),
                ],
            ),
            (
                "3月13日团课32人，同日召开支委会7人",
                &[("03-13", "团课", Some(32)), ("03-13", "支委会", Some(7))],
            ),
            (
                "3月13日上午团课，团员32人参加；当天下午召开支委会，支委7人参加",
                &[("03-13", "团课", Some(32)), ("03-13", "支委会", Some(7))],
            ),
            (
                "3月15日 学雷锋志愿服务 志愿者45人；同一天 团员大会 应到30人 实到28人",
                &[
                    ("03-15", "志愿服务", Some(45)),
                    ("03-15", "团员大会", Some(28)),
                ],
            ),
            (
                "3月13日组织团员32名上团课，3月14日召开支委会，支委5人出席。",
                &[("03-13", "团课", Some(32)), ("03-14", "支委会", Some(5))],
            ),
            (
                "3月13日团课32人，支委会7人",
                &[("03-13", "团课", Some(32)), ("03-13", "支委会", Some(7))],
            ),
            (
                "团课32人；支委会7人",
                &[("03-20", "团课", Some(32)), ("03-20", "支委会", Some(7))],
            ),
            (
                "3月2日 主题团日 团员30人，3月9日 主题团日 团员28人",
                &[
                    ("03-02", "主题团日", Some(30)),
                    ("03-09", "主题团日", Some(28)),
                ],
            ),
            (
                "3月13日团课32人，次日召开支委会7人；第二天 团小组会 12人",
                &[
                    ("03-13", "团课", Some(32)),
                    ("03-14", "支委会", Some(7)),
                    ("03-15", "团小组会", Some(12)),
                ],
            ),
            (
                "3月13日团课32人，3月14日支委会7人\n3月16日 团小组会 12人",
                &[
                    ("03-13", "团课", Some(32)),
                    ("03-14", "支委会", Some(7)),
                    ("03-16", "团小组会", Some(12)),
                ],
            ),
            // a line that is only a date heads the lines below it
            (
                "3月12日\n团课 30人\n支委会 5人",
                &[("03-12", "团课", Some(30)), ("03-12", "支委会", Some(5))],
            ),
            // one activity written with commas stays one record
            (
                "3月5日 学雷锋志愿服务，45人，90小时，三里铺",
                &[("03-05", "志愿服务", Some(45))],
            ),
            (
                "3月7日上午，城关镇团委在镇政府三楼会议室召开支委会，5名支委参加会议。",
                &[("03-07", "支委会", Some(5))],
            ),
            (
                "3月3日 召开团员大会，应到32人，实到30人，缺席2人",
                &[("03-03", "团员大会", Some(30))],
            ),
            (
                "3月5日 团员大会 团员23名 其中新团员5名",
                &[("03-05", "团员大会", Some(23))],
            ),
            (
                "3月10日 关爱留守儿童志愿服务 志愿者20人 陪伴留守儿童40名 服务时长60小时",
                &[("03-10", "志愿服务", Some(20))],
            ),
            (
                "3月5日，团县委组织30名青年志愿者在县人民广场开展学雷锋志愿服务活动，发放宣传资料2000余份，服务群众500余人次。",
                &[("03-05", "志愿服务", Some(30))],
            ),
            (
                "3月7日 支委会 研究3名入团积极分子发展事宜 支委5人",
                &[("03-07", "支委会", Some(5))],
            ),
            (
                "3月7日 支委会，支委5人参加",
                &[("03-07", "支委会", Some(5))],
            ),
            (
                "3月8日 团小组会 到会团员7人 请假1人",
                &[("03-08", "团小组会", Some(7))],
            ),
            (
                "3月12日 植树节义务植树活动 团员青年60余人 在城南公园植树800株",
                &[("03-12", "志愿服务", Some(60))],
            ),
            (
                "3月13日 学生会 拔河比赛 参赛班级12个 学生240余人",
                &[("03-13", "文体活动", Some(240))],
            ),
            (
                "3月9日 禁毒宣传，在人民广场发放宣传册800本，咨询群众300人次",
                &[("03-09", "宣传", None)],
            ),
            (
                "3月6日 走访慰问困难团员10户，送去慰问金5000元，看望孤寡老人20名",
                &[("03-06", "帮扶慰问", None)],
            ),
            (
                "3月5日 学雷锋志愿服务 志愿者45人，为敬老院老人义剪30人次",
                &[("03-05", "志愿服务", Some(45))],
            ),
            (
                "3月5日 学雷锋志愿服务 志愿者45人 3月6日",
                &[("03-05", "志愿服务", Some(45))],
            ),
            (
                "3月1日 至 3月5日 学雷锋志愿服务月 志愿者300人",
                &[("03-01", "志愿服务", Some(300))],
            ),
            (
                "3月13日 团课 团员32人，支委5人",
                &[("03-13", "团课", Some(32))],
            ),
            (
                "3月13日 团课32人(其中支委7人)",
                &[("03-13", "团课", Some(32))],
            ),
            (
                "3月2日召开支委会(5人)，3月9日召开团小组会(12人)",
                &[
                    ("03-02", "支委会", Some(5)),
                    ("03-09", "团小组会", Some(12)),
                ],
            ),
            (
                "3月13日，开展团课，参加团员32人；3月14日，召开支委会，参会7人。",
                &[("03-13", "团课", Some(32)), ("03-14", "支委会", Some(7))],
            ),
            (
                "本周一团课32人，周三支委会7人",
                &[("03-16", "团课", Some(32)), ("03-18", "支委会", Some(7))],
            ),
        ];
        for (text, want) in cases {
            let got = records("2026-03-20", text);
            let want: Vec<_> = want
                .iter()
                .map(|(d, c, n)| (d.to_string(), *c, *n))
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn each_part_keeps_its_text() {
        let parts = parse_activity_parts(
            "/log 3月13日团课32人，3月14日支委会7人；同日 团小组会 12人。",
            day("2026-03-20"),
            ActivityRules::builtin(),
        );
        let texts: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            ["3月13日团课32人", "3月14日支委会7人", "同日 团小组会 12人"]
        );
        // the parts of a line as typed, full-width punctuation included
        let parts = parse_activity_parts(
            "３月１３日团课３２人，３月１４日支委会７人",
            day("2026-03-20"),
            ActivityRules::builtin(),
        );
        let texts: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["３月１３日团课３２人", "３月１４日支委会７人"]);
        assert_eq!(parts[1].report.participants, Some(7));
        // 同日 is no part of the title
        let parts = parse_activity_parts(
            "3月13日团课32人，同日召开支委会7人",
            day("2026-03-20"),
            ActivityRules::builtin(),
        );
        assert_eq!(parts[1].report.title, "支委会");
        assert!(
            !parts[1].report.warnings.iter().any(|w| matches!(
                w,
                Warning::DateMissing | Warning::DateInvalid | Warning::DateInFuture
            )),
            "{:?}",
            parts[1].report
        );
    }

    #[test]
    fn impossible_days_are_refused_with_the_reason() {
        use BadDay::*;
        let cases: &[(&str, &str, Option<BadDay>, &str)] = &[
            (
                "2026-03-10",
                "2月30日 团课 20人",
                Some(NoDay { m: 2, d: 30 }),
                "2026-03-10",
            ),
            (
                "2026-05-10",
                "4月31日 主题团日 30人",
                Some(NoDay { m: 4, d: 31 }),
                "2026-05-10",
            ),
            (
                "2026-03-10",
                "13月2日 团课 20人",
                Some(NoMonth { m: 13 }),
                "2026-03-10",
            ),
            (
                "2026-03-10",
                "3月32日 团课 20人",
                Some(NoDay { m: 3, d: 32 }),
                "2026-03-10",
            ),
            (
                "2026-03-10",
                "2026年2月30日 团课 20人",
                Some(NoDay { m: 2, d: 30 }),
                "2026-03-10",
            ),
            (
                "2026-03-10",
                "2月29日 团课 20人",
                Some(NotLeap { y: 2026 }),
                "2026-03-10",
            ),
            (
                "2026-03-10",
                "2026-02-29 团课 20人",
                Some(NotLeap { y: 2026 }),
                "2026-03-10",
            ),
            (
                "2026-03-10",
                "二月三十日 团课 20人",
                Some(NoDay { m: 2, d: 30 }),
                "2026-03-10",
            ),
            (
                "2026-04-10",
                "本月31日 团课 20人",
                Some(NoDay { m: 4, d: 31 }),
                "2026-04-10",
            ),
            // days that exist
            ("2028-03-10", "2月29日 团课 20人", None, "2028-02-29"),
            ("2026-03-10", "2月28日 团课 20人", None, "2026-02-28"),
            ("2026-05-10", "4月30日 团课 20人", None, "2026-04-30"),
            ("2026-03-10", "13日 团课 20人", None, "2026-02-13"),
            ("2026-03-10", "13个月 团课 20人", None, "2026-03-10"),
            // a leap day just ahead is not yet, not impossible
            ("2028-02-20", "2月29日 团课 20人", None, "2028-02-29"),
        ];
        for (today, text, bad, date) in cases {
            let parts = parse_activity_parts(text, day(today), ActivityRules::builtin());
            assert_eq!(parts.len(), 1, "{text:?}");
            assert_eq!(parts[0].bad_day, *bad, "{text:?}");
            assert_eq!(parts[0].date, day(date), "{text:?}");
            assert_eq!(
                parts[0].report.warnings.contains(&Warning::DateInvalid),
                bad.is_some(),
                "{text:?}"
            );
        }
        // one impossible part in a message with several
        let parts = parse_activity_parts(
            "3月13日团课32人，2月30日支委会7人",
            day("2026-03-20"),
            ActivityRules::builtin(),
        );
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].bad_day, Some(NoDay { m: 2, d: 30 }));
    }

    #[test]
    fn head_counts_as_cadres_write_them() {
        // (text, participants, approx, quantities as (count, unit))
        type Q = &'static [(f64, &'static str)];
        let cases: &[(&str, Option<u32>, bool, Q)] = &[
            ("3月5日 学雷锋 45个人", Some(45), false, &[]),
            ("3月5日 团课 团员四十五个人", Some(45), false, &[]),
            ("3月5日 团课 20名", Some(20), false, &[]),
            ("3月5日 主题团日 到场20位", Some(20), false, &[]),
            ("3月5日 团课 参加者20", Some(20), false, &[]),
            ("3月5日 志愿服务 参与青年45名", Some(45), false, &[]),
            ("3月5日 团课 45人次", Some(45), false, &[]),
            ("3月5日 志愿服务 参与志愿者120人次", Some(120), false, &[]),
            ("3月5日 团课 参训120人次", Some(120), false, &[]),
            ("3月5日 志愿服务 志愿者30余人", Some(30), true, &[]),
            ("3月5日 团课 到会团员二十多人", Some(20), true, &[]),
            ("3月5日 团课 20来个人", Some(20), true, &[]),
            ("3月5日 团员大会 共45人参加", Some(45), false, &[]),
            ("3月5日 团课 人数:32人", Some(32), false, &[]),
            ("3月5日 团课 参加人数32", Some(32), false, &[]),
            ("3月5日 主题团日 参加人员:45", Some(45), false, &[]),
            ("3月5日 主题团日 参加人员：45人", Some(45), false, &[]),
            ("3月5日 团课 参训学员85名", Some(85), false, &[]),
            ("3月5日 座谈会 出席代表18位", Some(18), false, &[]),
            ("3月5日 团课 团员约50人", Some(50), true, &[]),
            ("3月5日 团课 50人左右", Some(50), true, &[]),
            // a head count beats person-times
            (
                "3月5日 志愿服务 志愿者20人 服务群众500人次",
                Some(20),
                false,
                &[(500.0, "人次")],
            ),
            (
                "3月5日 团课 团员30人 累计参与60人次",
                Some(30),
                false,
                &[(60.0, "人次")],
            ),
            // things stay things
            ("3月5日 帮扶慰问 发放物资20个", None, false, &[(20.0, "个")]),
            ("3月5日 宣传 发放宣传单20份", None, false, &[(20.0, "份")]),
            ("3月5日 义务植树 植树5500株", None, false, &[(5500.0, "株")]),
            (
                "3月5日 文艺汇演 演出3场 观众500人",
                Some(500),
                false,
                &[(3.0, "场")],
            ),
            (
                "3月5日 宣传 咨询群众300人次",
                None,
                false,
                &[(300.0, "人次")],
            ),
            (
                "3月5日 慰问 慰问困难群众30人次",
                None,
                false,
                &[(30.0, "人次")],
            ),
            (
                "3月5日 志愿服务 分成7个小组 志愿者40人",
                Some(40),
                false,
                &[(7.0, "个")],
            ),
        ];
        for (text, people, approx, q) in cases {
            let r = parse_activity(text, day("2026-03-10"), ActivityRules::builtin());
            assert_eq!(r.participants, *people, "{text:?}: {r:?}");
            if people.is_some() {
                assert_eq!(r.approx, *approx, "{text:?}");
            }
            let got: Vec<(f64, &str)> = r
                .quantities
                .iter()
                .map(|q| (q.count, q.unit.as_str()))
                .collect();
            assert_eq!(got, *q, "{text:?}");
        }
    }
}
