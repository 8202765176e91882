//! Text → `Command`. Pure: no I/O, no clock; `today` comes from the caller.
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

pub mod claim;
pub mod normalize;
pub mod numerals;
pub mod wishes;

use crate::domain::Role;

/// Longest message we parse, in characters. Longer ones get a short reply.
pub const MAX_MESSAGE_CHARS: usize = 4500;

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/help`, `/start`, 帮助
    Help,
    /// `/iam ORG`, 我是 ORG — join an org (or pick a numbered choice).
    Iam(String),
    /// `/whoami`, 我是谁
    Whoami,
    /// `/orgs`, 组织
    Orgs,
    /// `/bind ORG|全县`, 绑定 ORG
    Bind(String),
    /// `/unbind`, 解绑
    Unbind,
    /// `/role @someone cadre|member|staff [ORG]`, 角色 …
    Role {
        target: String,
        role: Role,
        org: Option<String>,
    },
    /// `认领 12 15`, `/claim 12-15`: claim wishes (empty: explain how).
    Claim(Vec<u32>),
    /// `/wishes import NAME` as the caption of a CSV/XLSX document.
    WishImport(String),
    /// `/wishes publish NAME [quota N] [at TIME]`, 发布心愿 …
    WishPublish {
        batch: String,
        quota: Option<u32>,
        at: Option<String>,
    },
    /// `/wishes [PAGE|WORD|ORG]`, 心愿
    WishList(String),
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
    Claim,
    Wishes,
    WishPublish,
    WishShow,
    MyWishes,
    Release,
    Done,
    Revoke,
}

struct Spec {
    name: Name,
    /// Words after `/` or `#` (ASCII and Chinese).
    slash: &'static [&'static str],
    /// Words that work without a slash.
    keywords: &'static [&'static str],
    /// Whether the command takes arguments (keyword form must then be followed
    /// by them; without, the keyword must be the whole message).
    args: bool,
}

const SPECS: &[Spec] = &[
    Spec {
        name: Name::Help,
        slash: &["help", "start", "帮助"],
        keywords: &["帮助", "菜单"],
        args: false,
    },
    Spec {
        name: Name::Whoami,
        slash: &["whoami", "我是谁"],
        keywords: &["我是谁"],
        args: false,
    },
    Spec {
        name: Name::Iam,
        slash: &["iam", "join", "我是"],
        keywords: &["我是"],
        args: true,
    },
    Spec {
        name: Name::Orgs,
        slash: &["orgs", "组织"],
        keywords: &["组织", "组织列表"],
        args: false,
    },
    Spec {
        name: Name::Bind,
        slash: &["bind", "绑定"],
        keywords: &["绑定"],
        args: true,
    },
    Spec {
        name: Name::Unbind,
        slash: &["unbind", "解绑", "解除绑定"],
        keywords: &["解绑", "解除绑定"],
        args: false,
    },
    Spec {
        name: Name::Role,
        slash: &["role", "角色", "设置角色"],
        keywords: &["设置角色"],
        args: true,
    },
    // The keyword 认领 is handled before the table (see `claim.rs`).
    Spec {
        name: Name::Claim,
        slash: &["claim", "认领"],
        keywords: &[],
        args: true,
    },
    Spec {
        name: Name::Wishes,
        slash: &["wishes", "心愿", "微心愿"],
        keywords: &["心愿", "微心愿", "心愿列表"],
        args: false,
    },
    Spec {
        name: Name::WishPublish,
        slash: &["发布心愿"],
        keywords: &["发布心愿"],
        args: true,
    },
    Spec {
        name: Name::WishShow,
        slash: &["wish", "心愿详情"],
        keywords: &[],
        args: true,
    },
    Spec {
        name: Name::MyWishes,
        slash: &["mywishes", "我的心愿"],
        keywords: &["我的心愿"],
        args: false,
    },
    Spec {
        name: Name::Release,
        slash: &["release", "放弃"],
        keywords: &["放弃"],
        args: true,
    },
    Spec {
        name: Name::Done,
        slash: &["done", "圆梦"],
        keywords: &["圆梦"],
        args: true,
    },
    Spec {
        name: Name::Revoke,
        slash: &["revoke", "下架"],
        keywords: &["下架"],
        args: true,
    },
];

/// The outcome of parsing one message.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    #[error("claim")]
    ClaimUsage,
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
}

impl ParseError {
    /// The locale key of the usage reply.
    pub fn usage_key(self) -> &'static str {
        match self {
            ParseError::IamUsage => "usage.iam",
            ParseError::BindUsage => "usage.bind",
            ParseError::RoleUsage => "usage.role",
            ParseError::ClaimUsage => "wishes.usage.claim",
            ParseError::WishImportUsage => "wishes.usage.import",
            ParseError::WishPublishUsage => "wishes.usage.publish",
            ParseError::WishShowUsage => "wishes.usage.show",
            ParseError::ReleaseUsage => "wishes.usage.release",
            ParseError::DoneUsage => "wishes.usage.done",
            ParseError::RevokeUsage => "wishes.usage.revoke",
        }
    }
}

/// What the parser needs to know about the bot.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions<'a> {
    /// The platform username (`tuan_bot` for `/help@tuan_bot`).
    pub bot_username: Option<&'a str>,
    /// The bot's display name, for a leading `@团务助手`.
    pub bot_name: Option<&'a str>,
}

/// Parse a message that has already been normalised.
pub fn parse(text: &str, opts: &ParseOptions<'_>) -> Parsed {
    let chars = text.chars().count();
    let text = strip_bot_mention(text.trim(), opts);
    if chars > MAX_MESSAGE_CHARS {
        let command = text.starts_with(['/', '#']) || split_keyword(text).is_some();
        return Parsed::TooLong { chars, command };
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
            None => return Parsed::Unknown(word.to_string()),
        }
    } else if let Some(rest) = text.strip_prefix("认领") {
        // `认领` alone, or followed by numbers; anything else is chatter.
        return match claim::parse_numbers(rest) {
            Ok(numbers) => Parsed::Command(Command::Claim(numbers)),
            Err(_) => Parsed::NotCommand,
        };
    } else if let Some(rest) = text.strip_prefix("心愿 ")
        && !looks_like_sentence(rest)
    {
        // `心愿 2`, `心愿 县一中`, `心愿 字典`: `心愿` alone is in the table.
        return wishes::wishes(rest);
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
    build(name, args.trim())
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

fn build(name: Name, args: &str) -> Parsed {
    let cmd = match name {
        Name::Help => Command::Help,
        Name::Whoami => Command::Whoami,
        Name::Orgs => Command::Orgs,
        Name::Unbind => Command::Unbind,
        Name::Iam if args.is_empty() => return Parsed::Invalid(ParseError::IamUsage),
        Name::Iam => Command::Iam(args.to_string()),
        Name::Bind if args.is_empty() => return Parsed::Invalid(ParseError::BindUsage),
        Name::Bind => Command::Bind(args.to_string()),
        Name::Role => match parse_role_args(args) {
            Some(cmd) => cmd,
            None => return Parsed::Invalid(ParseError::RoleUsage),
        },
        Name::Claim => match claim::parse_numbers(args) {
            Ok(numbers) => Command::Claim(numbers),
            Err(_) => return Parsed::Invalid(ParseError::ClaimUsage),
        },
        Name::Wishes => return wishes::wishes(args),
        Name::WishPublish => return wishes::publish(args),
        Name::WishShow => return wishes::show(args),
        Name::MyWishes => Command::MyWishes,
        Name::Release => return wishes::numbered("release", args, false),
        Name::Done => return wishes::numbered("done", args, false),
        Name::Revoke => return wishes::numbered("revoke", args, false),
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
    let org = org.trim();
    Some(Command::Role {
        target: target.to_string(),
        role,
        org: (!org.is_empty()).then(|| org.to_string()),
    })
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
    if spec.args {
        // `我是县一中` and `我是 县一中` both work; `我是` alone is not a command.
        let rest = rest.trim_start_matches([':', ' ']);
        (!rest.trim().is_empty() && !looks_like_sentence(rest)).then_some((spec, rest))
    } else {
        rest.trim().is_empty().then_some((spec, ""))
    }
}

/// Chatter such as "我是说明天开会，大家记得来" is not `/iam`: an org name is
/// short and has no sentence punctuation.
fn looks_like_sentence(rest: &str) -> bool {
    rest.chars().count() > 24 || rest.contains(['，', ',', '。', '？', '?', '！', '!', '~'])
}

/// First whitespace-separated word and the rest.
fn split_word(s: &str) -> (&str, &str) {
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

    fn p(text: &str) -> Parsed {
        let opts = ParseOptions {
            bot_username: Some("tuan_bot"),
            bot_name: Some("团务助手"),
        };
        parse(&normalize::normalize(text), &opts)
    }

    fn cmd(c: Command) -> Parsed {
        Parsed::Command(c)
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
            ("我是 县一中", cmd(Command::Iam("县一中".into()))),
            ("我是县一中", cmd(Command::Iam("县一中".into()))),
            ("我是：县一中", cmd(Command::Iam("县一中".into()))),
            ("/iam 县一中团委", cmd(Command::Iam("县一中团委".into()))),
            ("/iam@tuan_bot 县 一中", cmd(Command::Iam("县 一中".into()))),
            ("/iam", Parsed::Invalid(ParseError::IamUsage)),
            ("我是", Parsed::NotCommand),
            ("我是说明天开会，大家记得来", Parsed::NotCommand),
            ("组织", cmd(Command::Orgs)),
            ("组织生活会开得很好", Parsed::NotCommand),
            ("/orgs", cmd(Command::Orgs)),
            ("绑定 全县", cmd(Command::Bind("全县".into()))),
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
                    org: Some("县二中".into()),
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
