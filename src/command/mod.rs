//! Text → `Command`. Pure: no I/O, no clock; the local time comes from the
//! caller ([`ParseOptions::now_local`]). Commands carry typed values: periods
//! ([`dates::Period`]), scopes and org references ([`scope`]), times
//! ([`deadline::When`]); a value that does not read carries its error, and
//! the service answers it.
//!
//! Grammar of a command message (after [`normalize::normalize`]):
//!
//! ```text
//! message  := [@bot] (slash | keyword) [@bot]
//! slash    := ("/" | "#") NAME ["@" BOTNAME] [SPACE ARGS]     e.g. /iam@tuan_bot 县一中
//! keyword  := WORD [SPACE] ARGS | WORD                       e.g. 我是 县一中, 我是县一中, 帮助
//! ```
//!
//! Slash names are ASCII (`/iam`) or Chinese (`/我是`); keywords are the
//! Chinese words alone. A keyword that takes no arguments only counts when it
//! is the whole message, so "组织生活会开得好" in a group is chatter, not `/orgs`.
//! Anything else is [`Parsed::NotCommand`]: the engine stays silent in groups
//! and hints at `/help` in private chats.
//!
//! Near-misses are read as what they mean: a date glued to 记录
//! (`记录4月3日 团日活动`), an org name before 认领 (`县二中认领62号`,
//! [`Command::ClaimAs`]), 报名 / 接龙 / 我报名 alone and `+1 小吴` (the chat's
//! open list); an unknown slash word is answered with [`closest_command`].
//! Their look-alikes (`认领的同学注意`, `报名截止了吗`, `+1s`, `记录3个问题`)
//! stay chatter; `tests::near_misses` lists both.

pub mod ack;
pub mod activity;
pub mod claim;
pub mod dates;
pub mod deadline;
pub mod edit;
pub mod faq;
pub mod logs;
pub mod members;
pub mod normalize;
pub mod notices;
pub mod numerals;
pub mod scope;
pub mod wishes;

use chrono::NaiveDateTime;

use crate::domain::Role;
pub use edit::{EditError, EditField, EditValue};
use scope::{OrgRef, PeriodScope, Scope};

/// Longest message we parse, in characters. Longer ones get a short reply.
pub const MAX_MESSAGE_CHARS: usize = 4500;

/// A parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `/help`, `/start`, 帮助: the short list for this person here.
    Help,
    /// `/help 全部`, `/help all`, 帮助 全部: everything this person may use.
    HelpAll,
    /// `/iam ORG`, 我是 ORG — join an org (or pick a numbered choice; a
    /// join code may follow the name).
    Iam(members::IamArgs),
    /// `/whoami`, 我是谁
    Whoami,
    /// `/orgs`, 组织
    Orgs,
    /// `/bind ORG|全县`, 绑定 ORG
    Bind(Scope),
    /// `/unbind`, 解绑
    Unbind,
    /// `/role @someone cadre|member|staff [ORG]`, 角色 …
    Role {
        target: String,
        role: Role,
        org: Option<OrgRef>,
    },
    /// `/log TEXT` (记录): one activity per line; see [`logs`].
    Log(logs::LogArgs),
    /// `/undo [ID]` (撤销)
    Undo(Option<i64>),
    /// `/edit ID FIELD VALUE` (修改 57 人数 50): the value read for its
    /// field, or why it can't be used.
    Edit {
        id: i64,
        field: EditField,
        value: Result<EditValue, EditError>,
    },
    /// `/stats [ORG|全县] [PERIOD]` (统计)
    Stats(PeriodScope),
    /// `/mine` (我的): the sender's recent records.
    Mine,
    /// 确认 / 是: answer the bot's pending question with yes.
    Confirm,
    /// 取消: answer the bot's pending question with no.
    Cancel,
    /// `/notice [TARGETS] TITLE\nBODY [截止 …]`, `/notice at …`, 定时通知 …
    Notice(notices::NoticeArgs),
    /// `/notice status N`, 通知情况 N
    NoticeStatus(i64),
    /// `/notice cancel N`, 取消通知 N
    NoticeCancel(i64),
    /// `/notices`, 通知列表
    Notices,
    /// `/remind N`, 催办 N
    Remind(i64),
    /// An acknowledgement as people write it (收到！, 好的，收到, 已阅 …; see
    /// [`ack`]) or `/ack N`; `weak` for a bare `1`.
    Ack { notice: Option<i64>, weak: bool },
    /// `/event TITLE 时间 地点 名额N [截止 …]`
    EventNew(notices::EventArgs),
    /// `/event N`
    EventShow(i64),
    /// `/event close N`
    EventClose(i64),
    /// 报名 N [NOTE], 接龙 N; `+1`, `+1 小吴` (a companion, as the note),
    /// 报名 / 接龙 / 我报名 alone (event `None`: the chat's open list).
    Join {
        event: Option<i64>,
        note: Option<String>,
    },
    /// 取消报名 N
    Leave(i64),
    /// `认领 12 15`, `/claim 12-15`: claim wishes (empty: explain how).
    Claim(Vec<u32>),
    /// `县二中认领62号`: a claim with the org name typed before `认领` (the
    /// service checks it is the sender's org).
    ClaimAs { org: OrgRef, numbers: Vec<u32> },
    /// `/wishes import NAME` as the caption of a CSV/XLSX document.
    WishImport(String),
    /// `/wishes publish NAME [quota N] [at TIME]`, 发布心愿 …
    WishPublish {
        batch: String,
        quota: Option<u32>,
        at: Option<deadline::When>,
    },
    /// `/wishes [PAGE|WORD|ORG]`, 心愿
    WishList(wishes::WishQuery),
    /// `/wishes overdue`
    WishOverdue,
    /// `/wish 12`
    WishShow(u32),
    /// `/mywishes`, 我的心愿
    MyWishes,
    /// `/release 12`, 放弃 12
    Release(u32),
    /// `/done 12`, 圆梦 12 (with a photo)
    Done(u32),
    /// `/revoke 12 原因`, 下架 12 原因
    Revoke { no: u32, reason: String },
    /// `/report [chart] [PERIOD] [ORG|全县]` (总结): the work summary, or
    /// its chart.
    Report { chart: bool, on: PeriodScope },
    /// `/stars [PERIOD] [ORG|全县]` (星级): the star rating.
    Stars(PeriodScope),
    /// `/faq [add Q | A | del N | WORDS]` (常见问题)
    Faq(faq::FaqArgs),
    /// `/web` (后台): a one-time sign-in link to the web dashboard.
    Web,
    /// 同意 [N|NAME], `/approve`: approve a join request (empty: the one
    /// replied to, or the only one pending).
    Approve(Option<members::RequestRef>),
    /// 拒绝 [N|NAME], `/reject`: turn a join request down.
    Reject(Option<members::RequestRef>),
    /// `/invite [ORG]` (邀请码): a one-time join code.
    Invite(Option<OrgRef>),
    /// `/members [ORG]` (成员列表): members, roles and pending requests.
    Members(Option<OrgRef>),
    /// `/remove @someone` (移出): take someone out of their org.
    Remove(String),
    /// `/roster import` (导入名单) with a CSV/XLSX file: the member roster.
    RosterImport,
}

/// Which command a word names; arguments are parsed per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Help,
    Iam,
    Whoami,
    Orgs,
    Bind,
    Unbind,
    Role,
    Log,
    Undo,
    Edit,
    Stats,
    Mine,
    Confirm,
    Cancel,
    Notice,
    NoticeAt,
    NoticeStatus,
    NoticeCancel,
    Notices,
    Remind,
    Ack,
    Event,
    Join,
    Leave,
    Claim,
    Wishes,
    WishPublish,
    WishShow,
    MyWishes,
    Release,
    Done,
    Revoke,
    Report,
    Stars,
    Faq,
    Web,
    Approve,
    Reject,
    Invite,
    Members,
    Remove,
    Roster,
}

struct Spec {
    name: Name,
    /// Words after `/` or `#` (ASCII and Chinese).
    slash: &'static [&'static str],
    /// Words that work without a slash.
    keywords: &'static [&'static str],
    /// Whether the command takes arguments.
    args: Args,
    /// In keyword form, arguments may follow the keyword without a space
    /// (`我是县一中`). Off where that would catch everyday phrases
    /// (`记录一下`).
    glued: bool,
}

/// Arguments a command takes. In keyword form a command without arguments
/// must be the whole message; with optional ones the keyword is followed by a
/// space and a short phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Args {
    None,
    Optional,
    Required,
}

const SPECS: &[Spec] = &[
    Spec {
        name: Name::Help,
        slash: &["help", "start", "帮助"],
        keywords: &["帮助", "菜单"],
        args: Args::None,
        glued: false,
    },
    Spec {
        name: Name::Whoami,
        slash: &["whoami", "我是谁"],
        keywords: &["我是谁"],
        args: Args::None,
        glued: false,
    },
    Spec {
        name: Name::Iam,
        slash: &["iam", "join", "我是"],
        keywords: &["我是"],
        args: Args::Required,
        glued: true,
    },
    Spec {
        name: Name::Orgs,
        slash: &["orgs", "组织"],
        keywords: &["组织", "组织列表"],
        args: Args::None,
        glued: false,
    },
    Spec {
        name: Name::Bind,
        slash: &["bind", "绑定"],
        keywords: &["绑定"],
        args: Args::Required,
        glued: true,
    },
    Spec {
        name: Name::Unbind,
        slash: &["unbind", "解绑", "解除绑定"],
        keywords: &["解绑", "解除绑定"],
        args: Args::None,
        glued: false,
    },
    Spec {
        name: Name::Role,
        slash: &["role", "角色", "设置角色"],
        keywords: &["设置角色"],
        args: Args::Required,
        glued: false,
    },
    Spec {
        name: Name::Log,
        slash: &["log", "记录", "记"],
        keywords: &["记录"],
        args: Args::Required,
        glued: false,
    },
    Spec {
        name: Name::Undo,
        slash: &["undo", "撤销"],
        keywords: &["撤销"],
        args: Args::Optional,
        glued: false,
    },
    Spec {
        name: Name::Edit,
        slash: &["edit", "修改"],
        keywords: &["修改"],
        args: Args::Required,
        glued: false,
    },
    Spec {
        name: Name::Stats,
        slash: &["stats", "统计"],
        keywords: &["统计"],
        args: Args::Optional,
        glued: false,
    },
    Spec {
        name: Name::Mine,
        slash: &["mine", "我的"],
        keywords: &["我的记录"],
        args: Args::None,
        glued: false,
    },
    Spec {
        name: Name::Confirm,
        slash: &["confirm", "确认"],
        keywords: &["确认", "确定", "是"],
        args: Args::None,
        glued: false,
    },
    Spec {
        name: Name::Cancel,
        slash: &["cancel", "取消"],
        keywords: &["取消", "算了"],
        args: Args::None,
        glued: false,
    },
    Spec {
        name: Name::Notice,
        slash: &["notice", "通知", "发通知"],
        keywords: &["发通知"],
        args: Args::Required,
        glued: false,
    },
    Spec {
        name: Name::NoticeAt,
        slash: &["定时通知"],
        keywords: &["定时通知"],
        args: Args::Required,
        glued: false,
    },
    Spec {
        name: Name::NoticeStatus,
        slash: &["通知情况"],
        keywords: &["通知情况"],
        args: Args::Required,
        glued: true,
    },
    Spec {
        name: Name::NoticeCancel,
        slash: &["取消通知"],
        keywords: &["取消通知", "撤回通知"],
        args: Args::Required,
        glued: true,
    },
    Spec {
        name: Name::Notices,
        slash: &["notices", "通知列表"],
        keywords: &["通知列表"],
        args: Args::None,
        glued: false,
    },
    Spec {
        name: Name::Remind,
        slash: &["remind", "催办"],
        keywords: &["催办"],
        args: Args::Required,
        glued: true,
    },
    Spec {
        name: Name::Ack,
        slash: &["ack", "收到"],
        // Written acks are read by `ack::is_ack`, not as keywords.
        keywords: &[],
        args: Args::None,
        glued: false,
    },
    Spec {
        name: Name::Event,
        slash: &["event", "活动报名", "发起接龙"],
        keywords: &[],
        args: Args::Required,
        glued: false,
    },
    Spec {
        name: Name::Join,
        slash: &["join", "报名", "接龙"],
        keywords: &["报名", "接龙"],
        args: Args::Required,
        glued: true,
    },
    Spec {
        name: Name::Leave,
        slash: &["leave", "取消报名"],
        keywords: &["取消报名"],
        args: Args::Required,
        glued: true,
    },
    // The keyword 认领 is handled before the table (see `claim.rs`).
    Spec {
        name: Name::Claim,
        slash: &["claim", "认领"],
        keywords: &[],
        args: Args::Required,
        glued: false,
    },
    Spec {
        name: Name::Wishes,
        slash: &["wishes", "心愿", "微心愿"],
        keywords: &["心愿", "微心愿", "心愿列表"],
        args: Args::Optional,
        glued: false,
    },
    Spec {
        name: Name::WishPublish,
        slash: &["发布心愿"],
        keywords: &["发布心愿"],
        args: Args::Required,
        glued: false,
    },
    Spec {
        name: Name::WishShow,
        slash: &["wish", "心愿详情"],
        keywords: &[],
        args: Args::Required,
        glued: false,
    },
    Spec {
        name: Name::MyWishes,
        slash: &["mywishes", "我的心愿"],
        keywords: &["我的心愿"],
        args: Args::None,
        glued: false,
    },
    Spec {
        name: Name::Release,
        slash: &["release", "放弃"],
        keywords: &["放弃"],
        args: Args::Required,
        glued: true,
    },
    Spec {
        name: Name::Done,
        slash: &["done", "圆梦"],
        keywords: &["圆梦"],
        args: Args::Required,
        glued: true,
    },
    Spec {
        name: Name::Revoke,
        slash: &["revoke", "下架"],
        keywords: &["下架"],
        args: Args::Required,
        glued: true,
    },
    Spec {
        name: Name::Report,
        slash: &["report", "总结", "工作总结"],
        keywords: &["工作总结"],
        args: Args::Optional,
        glued: false,
    },
    Spec {
        name: Name::Stars,
        slash: &["stars", "星级", "星级评定"],
        keywords: &["星级评定"],
        args: Args::Optional,
        glued: false,
    },
    Spec {
        name: Name::Faq,
        slash: &["faq", "常见问题", "问答"],
        keywords: &["常见问题"],
        args: Args::Optional,
        glued: false,
    },
    Spec {
        name: Name::Web,
        slash: &["web", "后台", "dashboard"],
        keywords: &["后台"],
        args: Args::None,
        glued: false,
    },
    // `同意 3`, `同意3`, `同意 路人甲`; the service ignores what names no
    // pending request in a group, so `同意他的意见` stays chatter there.
    Spec {
        name: Name::Approve,
        slash: &["approve", "同意", "批准"],
        keywords: &["同意", "批准"],
        args: Args::Optional,
        glued: true,
    },
    Spec {
        name: Name::Reject,
        slash: &["reject", "拒绝", "驳回"],
        keywords: &["拒绝", "驳回"],
        args: Args::Optional,
        glued: true,
    },
    Spec {
        name: Name::Invite,
        slash: &["invite", "邀请", "邀请码"],
        keywords: &["邀请码"],
        args: Args::Optional,
        glued: false,
    },
    Spec {
        name: Name::Members,
        slash: &["members", "成员", "成员列表"],
        keywords: &["成员列表"],
        args: Args::Optional,
        glued: false,
    },
    Spec {
        name: Name::Remove,
        slash: &["remove", "移出"],
        keywords: &["移出"],
        args: Args::Required,
        glued: false,
    },
    Spec {
        name: Name::Roster,
        slash: &["roster", "名单", "导入名单"],
        keywords: &["导入名单"],
        args: Args::Optional,
        glued: false,
    },
];

/// The outcome of parsing one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Command(Command),
    /// Ordinary chatter (or a command for another bot).
    NotCommand,
    /// A slash word we do not know (`/foo`): hint in private chats only.
    Unknown(String),
    /// A known command with unusable arguments; the error says how to fix it.
    Invalid(ParseError),
    /// Longer than [`MAX_MESSAGE_CHARS`].
    TooLong {
        chars: usize,
        command: bool,
    },
}

/// What was wrong with a known command's arguments. Each variant maps to a
/// short usage reply in `locales/` (key `usage.<code>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("iam")]
    IamUsage,
    #[error("bind")]
    BindUsage,
    #[error("role")]
    RoleUsage,
    #[error("log")]
    LogUsage,
    #[error("undo")]
    UndoUsage,
    #[error("edit")]
    EditUsage,
    #[error("notice")]
    NoticeUsage,
    #[error("notice_at")]
    NoticeAtUsage,
    #[error("notice_number")]
    NoticeNumber,
    #[error("remind")]
    RemindUsage,
    #[error("event")]
    EventUsage,
    #[error("leave")]
    LeaveUsage,
    #[error("claim")]
    ClaimUsage,
    #[error("claim: too many numbers")]
    ClaimTooMany,
    #[error("wishes import")]
    WishImportUsage,
    #[error("wishes publish")]
    WishPublishUsage,
    #[error("wish")]
    WishShowUsage,
    #[error("release")]
    ReleaseUsage,
    #[error("done")]
    DoneUsage,
    #[error("revoke")]
    RevokeUsage,
    #[error("faq")]
    FaqUsage,
    #[error("remove")]
    RemoveUsage,
    #[error("roster")]
    RosterUsage,
}

impl ParseError {
    /// The locale key of the usage reply.
    pub fn usage_key(self) -> &'static str {
        match self {
            ParseError::IamUsage => "usage.iam",
            ParseError::BindUsage => "usage.bind",
            ParseError::RoleUsage => "usage.role",
            ParseError::LogUsage => "usage.log",
            ParseError::UndoUsage => "usage.undo",
            ParseError::EditUsage => "usage.edit",
            ParseError::NoticeUsage => "notice_usage.notice",
            ParseError::NoticeAtUsage => "notice_usage.notice_at",
            ParseError::NoticeNumber => "notice_usage.number",
            ParseError::RemindUsage => "notice_usage.remind",
            ParseError::EventUsage => "notice_usage.event",
            ParseError::LeaveUsage => "notice_usage.leave",
            ParseError::ClaimUsage => "wishes.usage.claim",
            ParseError::ClaimTooMany => "wishes.usage.claim_too_many",
            ParseError::WishImportUsage => "wishes.usage.import",
            ParseError::WishPublishUsage => "wishes.usage.publish",
            ParseError::WishShowUsage => "wishes.usage.show",
            ParseError::ReleaseUsage => "wishes.usage.release",
            ParseError::DoneUsage => "wishes.usage.done",
            ParseError::RevokeUsage => "wishes.usage.revoke",
            ParseError::FaqUsage => "faq.usage",
            ParseError::RemoveUsage => "members.usage.remove",
            ParseError::RosterUsage => "members.usage.roster",
        }
    }
}

/// What the parser needs to know about the bot, and the time it reads at.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions<'a> {
    /// The platform username (`tuan_bot` for `/help@tuan_bot`).
    pub bot_username: Option<&'a str>,
    /// The bot's display name, for a leading `@团务助手`.
    pub bot_name: Option<&'a str>,
    /// When the message was sent, in the configured zone: periods, deadlines
    /// and times are read relative to it (its date is "today").
    pub now_local: NaiveDateTime,
    /// The `/log` rules (the county's); `None`: the built-in ones.
    pub activity_rules: Option<&'a activity::ActivityRules>,
}

/// Parse a message that has already been normalised.
pub fn parse(text: &str, opts: &ParseOptions<'_>) -> Parsed {
    let chars = text.chars().count();
    let text = strip_bot_mention(text.trim(), opts);
    if chars > MAX_MESSAGE_CHARS {
        let command = text.starts_with(['/', '#']) || split_keyword(text).is_some();
        return Parsed::TooLong { chars, command };
    }
    if let Some(p) = notices::bare(text) {
        return p;
    }
    if let Some(p) = join_bare(text) {
        return p;
    }
    if let Some(p) = help_all(text) {
        return p;
    }
    if let Some(p) = claim_as(text) {
        return p;
    }
    let (name, args) = if let Some(rest) = text.strip_prefix(['/', '#']) {
        let (word, args) = split_word(rest);
        let (word, addressee) = match word.split_once('@') {
            Some((w, bot)) => (w, Some(bot)),
            None => (word, None),
        };
        if let (Some(bot), Some(me)) = (addressee, opts.bot_username)
            && !bot.eq_ignore_ascii_case(me)
        {
            return Parsed::NotCommand;
        }
        let lower = word.to_ascii_lowercase();
        match SPECS.iter().find(|s| s.slash.contains(&lower.as_str())) {
            Some(spec) => (spec.name, args),
            None if word.is_empty() => return Parsed::NotCommand,
            // `/foo@somebot`: a word we don't know, addressed to a bot by
            // name, is another bot's.
            None if addressee.is_some() => return Parsed::NotCommand,
            None => return Parsed::Unknown(word.to_string()),
        }
    } else if let Some(rest) = text.strip_prefix("认领") {
        // `认领` alone, or followed by numbers. Set apart by a space or a
        // colon, or starting with a digit, it is a claim whatever follows
        // (`认领 🎁`, `认领 1-900` get the usage); anything else that does
        // not read as numbers is chatter (`认领的同学注意`, `认领第一批…`).
        let attempt =
            rest.starts_with([' ', ':']) || rest.starts_with(|c: char| c.is_ascii_digit());
        return match claim::parse_numbers(rest) {
            Ok(numbers) => Parsed::Command(Command::Claim(numbers)),
            Err(e) if attempt => Parsed::Invalid(claim_error(e)),
            Err(_) => Parsed::NotCommand,
        };
    } else if let Some(rest) = text.strip_prefix("心愿 ")
        && !looks_like_sentence(rest)
    {
        // `心愿 2`, `心愿 县一中`, `心愿 字典`: `心愿` alone is in the table.
        return wishes::wishes(rest, opts.now_local);
    } else if ack::is_ack(text) {
        return Parsed::Command(Command::Ack {
            notice: None,
            weak: false,
        });
    } else {
        match split_keyword(text) {
            Some((spec, args)) => {
                if let Some(p) = keyword_wish(spec.name, args.trim()) {
                    return p;
                }
                (spec.name, args)
            }
            None => return Parsed::NotCommand,
        }
    };
    build(name, args.trim(), opts)
}

/// A sign-up without a list number: `报名`, `接龙`, `我报名` alone (the
/// chat's open list, or the question which), and `+1 小吴` (the sender with
/// a companion, carried as the note). `报名截止了吗`, `大家记得接龙`,
/// `+1s` stay chatter.
fn join_bare(text: &str) -> Option<Parsed> {
    let bare = text.trim_end_matches(['。', '.', '!', '！', '~']);
    if matches!(
        bare,
        "报名" | "接龙" | "我报名" | "我也报名" | "我要报名" | "我接龙" | "报名+1" | "接龙+1"
    ) {
        return Some(Parsed::Command(Command::Join {
            event: None,
            note: None,
        }));
    }
    let name = text.strip_prefix("+1 ")?.trim();
    let count = name.chars().count();
    let word = (1..=8).contains(&count)
        && name
            .chars()
            .all(|c| c.is_alphabetic() || c == '·' || c == '、');
    // `+1 同意`, `+1 我也去` agree with someone; they name nobody.
    let agreeing = name.starts_with(['我', '同', '赞', '支', '对', '好', '也', '顶']);
    (word && !agreeing).then(|| {
        Parsed::Command(Command::Join {
            event: None,
            note: Some(name.to_string()),
        })
    })
}

/// Words after `/help` that ask for every line.
fn all_word(args: &str) -> bool {
    matches!(
        args.trim().to_ascii_lowercase().as_str(),
        "全部" | "所有" | "更多" | "all" | "more"
    )
}

/// `帮助 全部`, `菜单 全部`: the keyword forms of `/help all`.
fn help_all(text: &str) -> Option<Parsed> {
    let rest = text
        .strip_prefix("帮助")
        .or_else(|| text.strip_prefix("菜单"))?;
    (rest.starts_with(' ') && all_word(rest)).then_some(Parsed::Command(Command::HelpAll))
}

/// `县二中认领62号`: an org name glued before `认领`, then wish numbers
/// only. Anything else (`谁认领了12号`, `昨天认领12个心愿`) is left to the
/// rest of the grammar; whether the name is an org the service decides
/// (a name that is none stays chatter).
fn claim_as(text: &str) -> Option<Parsed> {
    let at = text.find("认领")?;
    if at == 0 {
        return None;
    }
    let (org, rest) = (&text[..at], &text[at + "认领".len()..]);
    let org = org.trim_end_matches([' ', ':']);
    let short = (2..=12).contains(&org.chars().count());
    let plain = org
        .chars()
        .all(|c| c.is_alphanumeric() && !c.is_ascii_digit());
    // `我认领12` is the sender's own claim.
    if org == "我" || org == "我来" {
        return claim::parse_numbers(rest)
            .ok()
            .filter(|n| !n.is_empty())
            .map(|n| Parsed::Command(Command::Claim(n)));
    }
    if !short
        || !plain
        || org.starts_with('我')
        || org.ends_with(['了', '的', '要', '想', '已', '都', '没'])
    {
        return None;
    }
    let starts = rest.trim_start_matches([' ', ':']);
    if !starts.starts_with(|c: char| c.is_ascii_digit() || c == '第') {
        return None;
    }
    let numbers = claim::parse_numbers(rest).ok().filter(|n| !n.is_empty())?;
    Some(Parsed::Command(Command::ClaimAs {
        org: OrgRef::new(org)?,
        numbers,
    }))
}

/// The known slash word closest to `word` by edit distance, for an unknown
/// command (`/logg` → `log`): within 2 edits, and fewer than the word's
/// length (`/ab` suggests nothing); of equally close ones, the one that
/// starts most like it (`/stat` → `stats`, not `start`).
pub fn closest_command(word: &str) -> Option<&'static str> {
    let word = word.to_lowercase();
    let len = word.chars().count();
    let mut best: Option<((usize, usize), &'static str)> = None;
    for spec in SPECS {
        for name in spec.slash {
            let d = edit_distance(&word, name);
            let prefix = word
                .chars()
                .zip(name.chars())
                .take_while(|(a, b)| a == b)
                .count();
            let key = (d, usize::MAX - prefix);
            if d <= 2 && d < len && best.is_none_or(|(b, _)| key < b) {
                best = Some((key, name));
            }
        }
    }
    best.map(|(_, name)| name)
}

/// Edit distance over characters, a swap of two neighbours counting as one
/// edit (`/hepl` → `help`): the optimal string alignment distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The reply to a claim whose numbers can't be read.
fn claim_error(e: claim::ClaimError) -> ParseError {
    match e {
        claim::ClaimError::TooMany => ParseError::ClaimTooMany,
        claim::ClaimError::NotANumber | claim::ClaimError::BackwardRange => ParseError::ClaimUsage,
    }
}

/// Keyword forms of the numbered wish commands (`放弃 12`) need a number
/// first, so `放弃吧` stays chatter.
fn keyword_wish(name: Name, args: &str) -> Option<Parsed> {
    let which = match name {
        Name::Release => "release",
        Name::Done => "done",
        Name::Revoke => "revoke",
        _ => return None,
    };
    Some(wishes::numbered(which, args, true))
}

fn build(name: Name, args: &str, opts: &ParseOptions<'_>) -> Parsed {
    let now_local = opts.now_local;
    let today = now_local.date();
    let cmd = match name {
        Name::Help if all_word(args) => Command::HelpAll,
        Name::Help => Command::Help,
        Name::Whoami => Command::Whoami,
        Name::Orgs => Command::Orgs,
        Name::Unbind => Command::Unbind,
        Name::Iam => match members::IamArgs::parse(args) {
            Some(iam) => Command::Iam(iam),
            None => return Parsed::Invalid(ParseError::IamUsage),
        },
        Name::Bind => match Scope::parse(args) {
            Some(scope) => Command::Bind(scope),
            None => return Parsed::Invalid(ParseError::BindUsage),
        },
        Name::Role => match parse_role_args(args) {
            Some(cmd) => cmd,
            None => return Parsed::Invalid(ParseError::RoleUsage),
        },
        Name::Log if args.is_empty() => return Parsed::Invalid(ParseError::LogUsage),
        Name::Log => {
            let rules = opts
                .activity_rules
                .unwrap_or_else(|| activity::ActivityRules::builtin());
            Command::Log(logs::LogArgs::parse(args, today, rules))
        }
        Name::Undo if args.is_empty() => Command::Undo(None),
        Name::Undo => match record_id(args) {
            Some(id) => Command::Undo(Some(id)),
            None => return Parsed::Invalid(ParseError::UndoUsage),
        },
        Name::Edit => match edit::parse_args(args, today) {
            Some(cmd) => cmd,
            None => return Parsed::Invalid(ParseError::EditUsage),
        },
        Name::Stats => Command::Stats(PeriodScope::parse(args, today)),
        Name::Mine => Command::Mine,
        Name::Web => Command::Web,
        Name::Confirm => Command::Confirm,
        Name::Cancel => Command::Cancel,
        Name::Notice => return notices::notice(args, now_local),
        Name::NoticeAt => return notices::scheduled(args, now_local),
        Name::NoticeStatus => {
            return notices::numbered(args, ParseError::NoticeNumber, Command::NoticeStatus);
        }
        Name::NoticeCancel => {
            return notices::numbered(args, ParseError::NoticeNumber, Command::NoticeCancel);
        }
        Name::Notices => Command::Notices,
        Name::Remind => return notices::numbered(args, ParseError::RemindUsage, Command::Remind),
        Name::Ack => return notices::ack(args),
        Name::Event => return notices::event(args, now_local),
        Name::Join => return notices::join(args),
        Name::Leave => return notices::numbered(args, ParseError::LeaveUsage, Command::Leave),
        Name::Claim => match claim::parse_numbers(args) {
            Ok(numbers) => Command::Claim(numbers),
            Err(e) => return Parsed::Invalid(claim_error(e)),
        },
        Name::Wishes => return wishes::wishes(args, now_local),
        Name::WishPublish => return wishes::publish(args, now_local),
        Name::WishShow => return wishes::show(args),
        Name::MyWishes => Command::MyWishes,
        Name::Release => return wishes::numbered("release", args, false),
        Name::Done => return wishes::numbered("done", args, false),
        Name::Revoke => return wishes::numbered("revoke", args, false),
        Name::Report => {
            let chart = args.split_whitespace().any(chart_word);
            let rest: Vec<&str> = args.split_whitespace().filter(|w| !chart_word(w)).collect();
            Command::Report {
                chart,
                on: PeriodScope::parse(&rest.join(" "), today),
            }
        }
        Name::Stars => Command::Stars(PeriodScope::parse(args, today)),
        Name::Faq => return faq::faq(args),
        Name::Approve => Command::Approve(members::RequestRef::parse(args)),
        Name::Reject => Command::Reject(members::RequestRef::parse(args)),
        Name::Invite => Command::Invite(OrgRef::new(args)),
        Name::Members => Command::Members(OrgRef::new(args)),
        Name::Remove => match args.trim_start_matches(['@', '＠']).trim() {
            "" => return Parsed::Invalid(ParseError::RemoveUsage),
            who => Command::Remove(who.to_string()),
        },
        Name::Roster => match args {
            "" | "import" | "导入" => Command::RosterImport,
            _ => return Parsed::Invalid(ParseError::RosterUsage),
        },
    };
    Parsed::Command(cmd)
}

/// `@someone cadre [ORG]` or `@someone 团干部 [ORG]`.
fn parse_role_args(args: &str) -> Option<Command> {
    let (target, rest) = split_word(args);
    let target = target.trim_start_matches('@');
    let (role, org) = split_word(rest.trim());
    if target.is_empty() {
        return None;
    }
    let role = role.parse::<Role>().ok()?;
    Some(Command::Role {
        target: target.to_string(),
        role,
        org: OrgRef::new(org),
    })
}

/// Words that ask for the chart instead of the text (`/report chart 本季度`).
fn chart_word(word: &str) -> bool {
    matches!(word.to_ascii_lowercase().as_str(), "chart" | "图表" | "图")
}

/// A record number as people write it: `57`, `#57`, `57号`.
fn record_id(s: &str) -> Option<i64> {
    let s = s
        .trim()
        .trim_start_matches(['#', '＃'])
        .trim_end_matches('号');
    s.parse::<i64>().ok().filter(|n| *n > 0)
}

/// Match a Chinese keyword at the start of `text`, longest keyword first.
fn split_keyword(text: &str) -> Option<(&'static Spec, &str)> {
    let mut best: Option<(&'static Spec, &'static str)> = None;
    for spec in SPECS {
        for kw in spec.keywords {
            if text.starts_with(kw) && best.is_none_or(|(_, b)| kw.len() > b.len()) {
                best = Some((spec, kw));
            }
        }
    }
    let (spec, kw) = best?;
    let rest = &text[kw.len()..];
    if rest.trim().is_empty() {
        // `我是` alone is not a command; `帮助` and `统计` alone are.
        return (spec.args != Args::Required).then_some((spec, ""));
    }
    if spec.args == Args::None {
        return None;
    }
    let spaced = rest.starts_with([' ', ':', '\n']);
    // `记录4月3日 团日活动`: a report glued to 记录 starts with its date.
    let glued_log = spec.name == Name::Log && starts_with_date(rest);
    if !spaced && !spec.glued && !glued_log {
        return None;
    }
    // `我是县一中`, `我是 县一中` and `我是：县一中` all work.
    let rest = rest.trim_start_matches([':', ' ']);
    let multiline = spec.name == Name::Log;
    (multiline || !looks_like_sentence(rest)).then_some((spec, rest))
}

/// `4月3日…`, `3.15 …`, `2026年…`, `3/15…`: digits and a date mark, so
/// `记录3个问题` stays chatter.
fn starts_with_date(s: &str) -> bool {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let after = &s[digits..];
    (1..=4).contains(&digits)
        && (after.starts_with(['年', '月'])
            || (after.starts_with(['.', '/', '-'])
                && after[1..].starts_with(|c: char| c.is_ascii_digit())))
}

/// Chatter such as "我是说明天开会，大家记得来" is not `/iam`: an org name is
/// short and has no sentence punctuation.
fn looks_like_sentence(rest: &str) -> bool {
    rest.chars().count() > 24 || rest.contains(['，', ',', '。', '？', '?', '！', '!', '~'])
}

/// First whitespace-separated word and the rest.
pub(crate) fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Drop a leading or trailing `@bot` so `@团务助手 帮助` parses as `帮助`.
fn strip_bot_mention<'t>(text: &'t str, opts: &ParseOptions<'_>) -> &'t str {
    let mut text = text;
    for name in [opts.bot_username, opts.bot_name].into_iter().flatten() {
        let at = format!("@{name}");
        if let Some(rest) = text.strip_prefix(at.as_str()) {
            text = rest.trim_start();
        }
        if let Some(rest) = text.strip_suffix(at.as_str()) {
            text = rest.trim_end();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 3, 18).unwrap()
    }

    fn p(text: &str) -> Parsed {
        let opts = ParseOptions {
            bot_username: Some("tuan_bot"),
            bot_name: Some("团务助手"),
            now_local: today().and_hms_opt(10, 0, 0).unwrap(),
            activity_rules: None,
        };
        parse(&normalize::normalize(text), &opts)
    }

    fn cmd(c: Command) -> Parsed {
        Parsed::Command(c)
    }

    fn org(s: &str) -> OrgRef {
        OrgRef::new(s).unwrap()
    }

    fn log(text: &str) -> Parsed {
        let rules = activity::ActivityRules::builtin();
        cmd(Command::Log(logs::LogArgs::parse(text, today(), rules)))
    }

    fn on(args: &str) -> PeriodScope {
        PeriodScope::parse(args, today())
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, Parsed)> = vec![
            ("/help", cmd(Command::Help)),
            ("/help@tuan_bot", cmd(Command::Help)),
            ("/HELP@Tuan_Bot", cmd(Command::Help)),
            ("/help@other_bot", Parsed::NotCommand),
            ("/start", cmd(Command::Help)),
            ("帮助", cmd(Command::Help)),
            ("@团务助手 帮助", cmd(Command::Help)),
            ("帮助一下这位同学", Parsed::NotCommand),
            ("#帮助", cmd(Command::Help)),
            ("/帮助", cmd(Command::Help)),
            ("／ｈｅｌｐ", cmd(Command::Help)),
            ("我是谁", cmd(Command::Whoami)),
            ("/whoami", cmd(Command::Whoami)),
            (
                "我是 县一中",
                cmd(Command::Iam(members::IamArgs::parse("县一中").unwrap())),
            ),
            (
                "我是县一中",
                cmd(Command::Iam(members::IamArgs::parse("县一中").unwrap())),
            ),
            (
                "我是：县一中",
                cmd(Command::Iam(members::IamArgs::parse("县一中").unwrap())),
            ),
            (
                "/iam 县一中团委",
                cmd(Command::Iam(members::IamArgs::parse("县一中团委").unwrap())),
            ),
            (
                "/iam@tuan_bot 县 一中",
                cmd(Command::Iam(members::IamArgs::parse("县 一中").unwrap())),
            ),
            ("/iam", Parsed::Invalid(ParseError::IamUsage)),
            ("我是", Parsed::NotCommand),
            ("我是说明天开会，大家记得来", Parsed::NotCommand),
            ("组织", cmd(Command::Orgs)),
            ("组织生活会开得很好", Parsed::NotCommand),
            ("/orgs", cmd(Command::Orgs)),
            ("绑定 全县", cmd(Command::Bind(Scope::County))),
            ("/bind", Parsed::Invalid(ParseError::BindUsage)),
            ("/unbind", cmd(Command::Unbind)),
            ("解绑", cmd(Command::Unbind)),
            (
                "/role @u2 cadre",
                cmd(Command::Role {
                    target: "u2".into(),
                    role: Role::Cadre,
                    org: None,
                }),
            ),
            (
                "/role @小李 团干部 县二中",
                cmd(Command::Role {
                    target: "小李".into(),
                    role: Role::Cadre,
                    org: Some(org("县二中")),
                }),
            ),
            ("/role @u2 king", Parsed::Invalid(ParseError::RoleUsage)),
            ("/role", Parsed::Invalid(ParseError::RoleUsage)),
            ("/frobnicate", Parsed::Unknown("frobnicate".into())),
            ("/", Parsed::NotCommand),
            ("大家好", Parsed::NotCommand),
            ("", Parsed::NotCommand),
            ("😀😀😀", Parsed::NotCommand),
            ("我\u{200B}是谁", cmd(Command::Whoami)),
            ("/log 3月5日 团课 30人", log("3月5日 团课 30人")),
            ("记录 3.15 宣传", log("3.15 宣传")),
            ("#记录 团课", log("团课")),
            ("/记录 团课", log("团课")),
            ("/log", Parsed::Invalid(ParseError::LogUsage)),
            ("记录一下明天的会", Parsed::NotCommand),
            ("统计 本月", cmd(Command::Stats(on("本月")))),
            ("/undo", cmd(Command::Undo(None))),
            ("撤销", cmd(Command::Undo(None))),
            ("/undo 57", cmd(Command::Undo(Some(57)))),
            ("/undo #57", cmd(Command::Undo(Some(57)))),
            ("/undo abc", Parsed::Invalid(ParseError::UndoUsage)),
            (
                "/edit 57 人数 50",
                cmd(Command::Edit {
                    id: 57,
                    field: EditField::Participants,
                    value: Ok(EditValue::Participants(50)),
                }),
            ),
            (
                "修改 57 地点 三里铺村",
                cmd(Command::Edit {
                    id: 57,
                    field: EditField::Location,
                    value: Ok(EditValue::Text("三里铺村".into())),
                }),
            ),
            (
                "/edit 57人数50",
                cmd(Command::Edit {
                    id: 57,
                    field: EditField::Participants,
                    value: Ok(EditValue::Participants(50)),
                }),
            ),
            (
                "/edit #57 标题 学雷锋 志愿服务",
                cmd(Command::Edit {
                    id: 57,
                    field: EditField::Title,
                    value: Ok(EditValue::Text("学雷锋 志愿服务".into())),
                }),
            ),
            ("/edit 57 颜色 红", Parsed::Invalid(ParseError::EditUsage)),
            ("/edit", Parsed::Invalid(ParseError::EditUsage)),
            ("/stats", cmd(Command::Stats(on("")))),
            ("/stats 全县 本月", cmd(Command::Stats(on("全县 本月")))),
            ("统计", cmd(Command::Stats(on("")))),
            ("统计一下大家的意见", Parsed::NotCommand),
            ("/mine", cmd(Command::Mine)),
            ("/web", cmd(Command::Web)),
            ("后台", cmd(Command::Web)),
            ("/后台", cmd(Command::Web)),
            ("后台管理很麻烦", Parsed::NotCommand),
            ("我的记录", cmd(Command::Mine)),
            ("确认", cmd(Command::Confirm)),
            ("取消", cmd(Command::Cancel)),
            // An acknowledgement, not 确认 (issue 19: acks as people write them).
            (
                "确认收到",
                cmd(Command::Ack {
                    notice: None,
                    weak: false,
                }),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(p(input), want, "input {input:?}");
        }
    }

    /// Membership words: what people type, and the look-alikes that stay
    /// chatter. (`同意 NAME` that names no pending request is ignored by the
    /// service in groups.)
    #[test]
    fn membership_words() {
        let approve = |a: &str| cmd(Command::Approve(members::RequestRef::parse(a)));
        let reject = |a: &str| cmd(Command::Reject(members::RequestRef::parse(a)));
        let cases: Vec<(&str, Parsed)> = vec![
            ("同意", approve("")),
            ("同意 3", approve("3")),
            ("同意3", approve("3")),
            ("同意 #3", approve("#3")),
            ("同意：3", approve("3")),
            ("同意 路人甲", approve("路人甲")),
            ("批准 3", approve("3")),
            ("/approve 3", approve("3")),
            ("/同意 3", approve("3")),
            ("@团务助手 同意 3", approve("3")),
            ("拒绝 3", reject("3")),
            ("拒绝", reject("")),
            ("驳回 4", reject("4")),
            ("/reject 4", reject("4")),
            ("邀请码", cmd(Command::Invite(None))),
            ("/invite", cmd(Command::Invite(None))),
            ("/invite 县二中", cmd(Command::Invite(Some(org("县二中"))))),
            ("邀请码 县二中", cmd(Command::Invite(Some(org("县二中"))))),
            ("成员列表", cmd(Command::Members(None))),
            ("/members", cmd(Command::Members(None))),
            (
                "/members 县一中",
                cmd(Command::Members(Some(org("县一中")))),
            ),
            ("/成员 县一中", cmd(Command::Members(Some(org("县一中"))))),
            ("/remove @小李", cmd(Command::Remove("小李".into()))),
            ("移出 @小李", cmd(Command::Remove("小李".into()))),
            ("/remove", Parsed::Invalid(ParseError::RemoveUsage)),
            ("/remove @", Parsed::Invalid(ParseError::RemoveUsage)),
            ("/roster import", cmd(Command::RosterImport)),
            ("/roster", cmd(Command::RosterImport)),
            ("导入名单", cmd(Command::RosterImport)),
            ("/roster delete", Parsed::Invalid(ParseError::RosterUsage)),
            (
                "我是 县一中 482193",
                cmd(Command::Iam(
                    members::IamArgs::parse("县一中 482193").unwrap(),
                )),
            ),
            // Look-alikes: chatter.
            ("同意！", Parsed::NotCommand),
            ("同意。", Parsed::NotCommand),
            ("我同意", Parsed::NotCommand),
            ("同意的请举手，不同意的说一声", Parsed::NotCommand),
            ("拒绝！", Parsed::NotCommand),
            ("邀请码是多少", Parsed::NotCommand),
            ("成员列表发一下", Parsed::NotCommand),
            ("成员", Parsed::NotCommand),
            ("移出", Parsed::NotCommand),
            ("移出群聊", Parsed::NotCommand),
            ("导入名单了吗", Parsed::NotCommand),
            ("名单", Parsed::NotCommand),
        ];
        for (input, want) in cases {
            assert_eq!(p(input), want, "input {input:?}");
        }
    }

    /// Near-misses people type: each is answered (a command), and the
    /// look-alikes next to them stay chatter.
    #[test]
    fn near_misses() {
        let join = |note: Option<&str>| {
            cmd(Command::Join {
                event: None,
                note: note.map(String::from),
            })
        };
        let claim_as = |o: &str, numbers: Vec<u32>| {
            cmd(Command::ClaimAs {
                org: org(o),
                numbers,
            })
        };
        let cases: Vec<(&str, Parsed)> = vec![
            // A keyword glued to its argument.
            ("记录4月3日 团日活动 33人", log("4月3日 团日活动 33人")),
            ("记录3.15 宣传", log("3.15 宣传")),
            ("记录2026年3月5日 团课", log("2026年3月5日 团课")),
            (
                "报名3",
                cmd(Command::Join {
                    event: Some(3),
                    note: None,
                }),
            ),
            (
                "接龙3",
                cmd(Command::Join {
                    event: Some(3),
                    note: None,
                }),
            ),
            ("认领12", cmd(Command::Claim(vec![12]))),
            ("放弃12", cmd(Command::Release(12))),
            ("圆梦12", cmd(Command::Done(12))),
            // An org name before 认领.
            ("县二中认领62号", claim_as("县二中", vec![62])),
            ("县二中 认领 62", claim_as("县二中", vec![62])),
            ("城关镇团委认领12、15", claim_as("城关镇团委", vec![12, 15])),
            ("我认领12", cmd(Command::Claim(vec![12]))),
            // A sign-up without a number.
            ("报名", join(None)),
            ("接龙", join(None)),
            ("我报名", join(None)),
            ("我也报名！", join(None)),
            ("+1", join(None)),
            ("+1 小吴", join(Some("小吴"))),
            ("+1 小吴、小李", join(Some("小吴、小李"))),
            // Help, all of it.
            ("/help all", cmd(Command::HelpAll)),
            ("/help 全部", cmd(Command::HelpAll)),
            ("帮助 全部", cmd(Command::HelpAll)),
            ("@团务助手 帮助 全部", cmd(Command::HelpAll)),
            ("/help", cmd(Command::Help)),
            // Unknown slash words: told in the service, with the closest.
            ("/logg 3月5日 团课", Parsed::Unknown("logg".into())),
            ("/start@otherbot", Parsed::NotCommand),
            ("/logg@otherbot 3月5日", Parsed::NotCommand),
            // Look-alikes: chatter.
            ("认领的同学注意", Parsed::NotCommand),
            ("谁认领了12号", Parsed::NotCommand),
            ("昨天认领12个心愿", Parsed::NotCommand),
            ("大家都认领12", Parsed::NotCommand),
            ("报名截止了吗", Parsed::NotCommand),
            ("报名的同学请注意", Parsed::NotCommand),
            ("大家记得接龙", Parsed::NotCommand),
            ("接龙的人多吗", Parsed::NotCommand),
            ("我报名了吗？", Parsed::NotCommand),
            ("+1s", Parsed::NotCommand),
            ("+1 同意", Parsed::NotCommand),
            ("+1 我也去", Parsed::NotCommand),
            ("+1 这个方案不错，大家觉得呢", Parsed::NotCommand),
            ("明天记录一下", Parsed::NotCommand),
            ("记录一下明天的会", Parsed::NotCommand),
            ("记录3个问题", Parsed::NotCommand),
            ("帮助一下这位同学", Parsed::NotCommand),
            ("帮助 全部同学", Parsed::NotCommand),
        ];
        for (input, want) in cases {
            assert_eq!(p(input), want, "input {input:?}");
        }
    }

    #[test]
    fn closest_commands() {
        let cases = [
            ("logg", Some("log")),
            ("lgo", Some("log")),
            ("stat", Some("stats")),
            ("hepl", Some("help")),
            ("repotr", Some("report")),
            ("notcie", Some("notice")),
            ("记路", Some("记录")),
            ("frobnicate", None),
            ("x", None),
            ("ab", None),
        ];
        for (word, want) in cases {
            assert_eq!(closest_command(word), want, "{word}");
        }
    }

    /// Periods, scopes and org references arrive typed.
    #[test]
    fn typed_arguments() {
        use dates::Period;
        let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let march = Some(Period {
            from: day(3, 1),
            to: day(3, 31),
        });
        let county = |period| PeriodScope {
            period,
            scope: Some(Scope::County),
        };
        let cases: Vec<(&str, Parsed)> = vec![
            ("/stats 全县 本月", cmd(Command::Stats(county(march)))),
            ("/stats 所有 本月", cmd(Command::Stats(county(march)))),
            (
                "/stats 县一中",
                cmd(Command::Stats(PeriodScope {
                    period: None,
                    scope: Some(Scope::Org(org("县一中"))),
                })),
            ),
            (
                "/report chart 本月 全县",
                cmd(Command::Report {
                    chart: true,
                    on: county(march),
                }),
            ),
            (
                "/report 图表",
                cmd(Command::Report {
                    chart: true,
                    on: on(""),
                }),
            ),
            (
                "工作总结 本月",
                cmd(Command::Report {
                    chart: false,
                    on: PeriodScope {
                        period: march,
                        scope: None,
                    },
                }),
            ),
            // `图书馆` is no chart word: an org.
            (
                "/report 图书馆",
                cmd(Command::Report {
                    chart: false,
                    on: PeriodScope {
                        period: None,
                        scope: Some(Scope::Org(org("图书馆"))),
                    },
                }),
            ),
            ("/stars 全县 本月", cmd(Command::Stars(county(march)))),
            ("/bind 团干联盟", cmd(Command::Bind(Scope::County))),
            ("/bind county", cmd(Command::Bind(Scope::County))),
            ("绑定 县一中", cmd(Command::Bind(Scope::Org(org("县一中"))))),
            (
                "绑定 全县一中",
                cmd(Command::Bind(Scope::Org(org("全县一中")))),
            ),
            (
                "/invite 县二中团委",
                cmd(Command::Invite(Some(org("县二中团委")))),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(p(input), want, "input {input:?}");
        }
    }

    #[test]
    fn too_long() {
        let long = format!("/iam {}", "县".repeat(5000));
        assert!(matches!(p(&long), Parsed::TooLong { command: true, .. }));
        let chatter = "哈".repeat(5000);
        assert!(matches!(
            p(&chatter),
            Parsed::TooLong { command: false, .. }
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = p(&s);
        }

        #[test]
        fn never_panics_on_command_like(s in "[/#]?(我是|绑定|role|iam|帮助)?[ @\\PC]{0,40}") {
            let _ = p(&s);
        }
    }
}
