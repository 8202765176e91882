//! Notices (通知) and sign-up lists (报名 / 接龙).
//!
//! ```text
//! notice   := "/notice" [TARGETS " "] TITLE ["\n" BODY] [截止 DATETIME]
//!           | "/notice at" DATETIME NOTICE          (定时通知 DATETIME …)
//!           | "/notice status" N                    (通知情况 N)
//!           | "/notice cancel" N                    (取消通知 N)
//! notices  := "/notices"                            (通知列表)
//! remind   := "/remind" N                           (催办 N)
//! ack      := ACK (see `ack.rs`: 收到！, 好的，收到 …) | "1" | "/ack" N
//! event    := "/event" TITLE 时间 地点 名额N [截止 DATETIME]
//!           | "/event" N | "/event close" N
//! join     := (报名 | 接龙) N [NOTE] | "+1" | "/join" N [NOTE]
//! leave    := 取消报名 N | "/leave" N
//! confirm  := 确认 | 确定 ;  cancel := 取消
//! ```
//!
//! The parser splits lines, reads the first word as targets where it can
//! ([`Lead`]) and the times as [`When`]s; whether a target names an org, and
//! so whether the first word is a target at all, the service decides (it
//! knows the org names). `1` and
//! `+1` are "weak": they count only where a notice or a list is open, and
//! are chatter everywhere else.

use chrono::NaiveDateTime;

use super::deadline::{When, split_datetime};
use super::scope::{Target, targets};
use super::{Command, ParseError, Parsed};

/// A notice as typed, before targets are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeArgs {
    /// First line: `[TARGETS] TITLE`; the title when there are no targets.
    pub head: String,
    /// The first word of the head read as targets, when it reads as such
    /// and a title follows it.
    pub lead: Option<Lead>,
    /// The other lines.
    pub body: String,
    /// The text after `截止`, when it reads as a date-time.
    pub deadline: Option<When>,
    /// For `/notice at …`: when to send.
    pub at: Option<When>,
}

/// `学校、县一中 防汛通知`: targets, then the title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub targets: Vec<Target>,
    pub title: String,
}

/// A sign-up list as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventArgs {
    pub title: String,
    /// When it starts; its text is shown even when it names no time.
    pub time: When,
    pub place: String,
    pub capacity: i64,
    pub deadline: Option<When>,
}

fn number(s: &str) -> Option<i64> {
    let s = s.trim().trim_start_matches(['#', '№']);
    s.parse::<i64>().ok().filter(|n| *n > 0)
}

/// `1` and `+1` alone: weak acknowledgement and weak join.
pub fn bare(text: &str) -> Option<Parsed> {
    match text {
        "1" => Some(Parsed::Command(Command::Ack {
            notice: None,
            weak: true,
        })),
        "+1" => Some(Parsed::Command(Command::Join {
            event: None,
            note: None,
        })),
        _ => None,
    }
}

/// Cut `截止 DATETIME` (or `截至`) out of `text`.
fn take_deadline(text: &str) -> (String, Option<String>) {
    for word in ["截止时间", "截止", "截至"] {
        let mut from = 0;
        while let Some(pos) = text[from..].find(word).map(|p| p + from) {
            let after = &text[pos + word.len()..];
            let skipped = after.trim_start_matches([':', ' ']);
            if let Some((dt, rest)) = split_datetime(skipped) {
                let mut out = text[..pos].trim_end_matches([' ', ',', '，']).to_string();
                let rest = rest.trim_start_matches([' ', '。', '.']);
                if !rest.is_empty() {
                    if !out.is_empty() && !out.ends_with('\n') && !rest.starts_with('\n') {
                        out.push(' ');
                    }
                    out.push_str(rest);
                }
                return (out.trim().to_string(), Some(dt.trim().to_string()));
            }
            from = pos + word.len();
        }
    }
    (text.to_string(), None)
}

/// `/notice …` arguments; times read at `now_local`.
pub fn notice(args: &str, now_local: NaiveDateTime) -> Parsed {
    let (word, rest) = super::split_word(args);
    let rest = rest.trim();
    match word.to_ascii_lowercase().as_str() {
        "" => return Parsed::Invalid(ParseError::NoticeUsage),
        "status" | "情况" | "状态" => {
            return match number(rest) {
                Some(n) => Parsed::Command(Command::NoticeStatus(n)),
                None => Parsed::Invalid(ParseError::NoticeNumber),
            };
        }
        "cancel" | "取消" | "撤回" => {
            return match number(rest) {
                Some(n) => Parsed::Command(Command::NoticeCancel(n)),
                None => Parsed::Invalid(ParseError::NoticeNumber),
            };
        }
        "at" | "定时" => return scheduled(rest, now_local),
        _ => {}
    }
    match notice_text(args, None, now_local) {
        Some(a) => Parsed::Command(Command::Notice(a)),
        None => Parsed::Invalid(ParseError::NoticeUsage),
    }
}

/// `定时通知 DATETIME …` / `/notice at DATETIME …`.
pub fn scheduled(args: &str, now_local: NaiveDateTime) -> Parsed {
    let Some((at, rest)) = split_datetime(args.trim()) else {
        return Parsed::Invalid(ParseError::NoticeAtUsage);
    };
    let at = When::deadline(at, now_local);
    match notice_text(rest, Some(at), now_local) {
        Some(a) => Parsed::Command(Command::Notice(a)),
        None => Parsed::Invalid(ParseError::NoticeAtUsage),
    }
}

fn notice_text(text: &str, at: Option<When>, now_local: NaiveDateTime) -> Option<NoticeArgs> {
    let (text, deadline) = take_deadline(text.trim());
    let (head, body) = text.split_once('\n').unwrap_or((&text, ""));
    let head = head.trim();
    if head.is_empty() {
        return None;
    }
    let (first, title) = super::split_word(head);
    let title = title.trim();
    let lead = targets(first)
        .filter(|_| !title.is_empty())
        .map(|targets| Lead {
            targets,
            title: title.to_string(),
        });
    Some(NoticeArgs {
        head: head.to_string(),
        lead,
        body: body.trim().to_string(),
        deadline: deadline.map(|d| When::deadline(&d, now_local)),
        at,
    })
}

/// A positive number argument, or the given usage error.
pub fn numbered(args: &str, err: ParseError, make: fn(i64) -> Command) -> Parsed {
    match number(args) {
        Some(n) => Parsed::Command(make(n)),
        None => Parsed::Invalid(err),
    }
}

/// `/ack [N]` (the 收到 button sends `/ack N`).
pub fn ack(args: &str) -> Parsed {
    Parsed::Command(Command::Ack {
        notice: number(args),
        weak: false,
    })
}

/// `报名 N [NOTE]`: chatter when it does not start with a number.
pub fn join(args: &str) -> Parsed {
    let (n, note) = super::split_word(args.trim());
    match number(n) {
        Some(n) => {
            let note = note.trim();
            Parsed::Command(Command::Join {
                event: Some(n),
                note: (!note.is_empty()).then(|| note.chars().take(40).collect()),
            })
        }
        None => Parsed::NotCommand,
    }
}

/// `/event …` arguments; times read at `now_local`.
pub fn event(args: &str, now_local: NaiveDateTime) -> Parsed {
    let (word, rest) = super::split_word(args.trim());
    if let Some(n) = number(word)
        && rest.trim().is_empty()
    {
        return Parsed::Command(Command::EventShow(n));
    }
    match word.to_ascii_lowercase().as_str() {
        "" => return Parsed::Invalid(ParseError::EventUsage),
        "close" | "关闭" | "截止" | "结束" => {
            return numbered(rest, ParseError::EventUsage, Command::EventClose);
        }
        _ => {}
    }
    let (text, deadline) = take_deadline(args.trim());
    let mut capacity = None;
    let mut words = Vec::new();
    for w in text.split_whitespace() {
        if capacity.is_none()
            && let Some(n) = capacity_word(w)
        {
            capacity = Some(n);
        } else {
            words.push(w);
        }
    }
    let (Some(capacity), Some((title, rest))) = (capacity, words.split_first()) else {
        return Parsed::Invalid(ParseError::EventUsage);
    };
    let rest = rest.join(" ");
    let rest = rest
        .trim_start_matches("时间")
        .trim_start_matches(':')
        .trim();
    let (time, place) = match split_datetime(rest) {
        Some((t, p)) => (t.trim().to_string(), p.trim().to_string()),
        None => {
            let (t, p) = super::split_word(rest);
            (t.to_string(), p.trim().to_string())
        }
    };
    let place = place
        .trim_start_matches("地点")
        .trim_start_matches(':')
        .trim()
        .to_string();
    if time.is_empty() {
        return Parsed::Invalid(ParseError::EventUsage);
    }
    Parsed::Command(Command::EventNew(EventArgs {
        title: title.to_string(),
        time: When::deadline(&time, now_local),
        place,
        capacity,
        deadline: deadline.map(|d| When::deadline(&d, now_local)),
    }))
}

/// `名额20`, `名额:20`, `限20人`, `20人`, `20名`.
fn capacity_word(w: &str) -> Option<i64> {
    let core = w
        .trim_start_matches("名额")
        .trim_start_matches('限')
        .trim_start_matches(':');
    let digits = core.trim_end_matches(['人', '名']);
    if digits.len() == core.len() && core.len() == w.len() {
        return None; // a bare number is not a capacity
    }
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::command::deadline::at as local;

    fn now() -> NaiveDateTime {
        local(2026, 3, 1, 10, 0)
    }

    fn p(text: &str) -> Parsed {
        let opts = crate::command::ParseOptions {
            bot_username: Some("tuan_bot"),
            bot_name: Some("团务助手"),
            now_local: now(),
            activity_rules: None,
        };
        crate::command::parse(&crate::command::normalize::normalize(text), &opts)
    }

    fn cmd(c: Command) -> Parsed {
        Parsed::Command(c)
    }

    #[test]
    fn table() {
        let ack = |notice, weak| cmd(Command::Ack { notice, weak });
        let join = |event, note: Option<&str>| {
            cmd(Command::Join {
                event,
                note: note.map(String::from),
            })
        };
        let cases: Vec<(&str, Parsed)> = vec![
            ("收到", ack(None, false)),
            ("收到了", ack(None, false)),
            ("已阅", ack(None, false)),
            ("１", ack(None, true)),
            ("1", ack(None, true)),
            ("/ack 3", ack(Some(3), false)),
            ("收到，谢谢大家", ack(None, false)),
            ("收到了吗？", Parsed::NotCommand),
            ("12", Parsed::NotCommand),
            ("确认", cmd(Command::Confirm)),
            ("确定", cmd(Command::Confirm)),
            ("取消", cmd(Command::Cancel)),
            ("取消 3", Parsed::NotCommand),
            ("/notice", Parsed::Invalid(ParseError::NoticeUsage)),
            ("通知情况 2", cmd(Command::NoticeStatus(2))),
            ("通知情况", Parsed::NotCommand),
            ("/notice status #2", cmd(Command::NoticeStatus(2))),
            ("/notice cancel 4", cmd(Command::NoticeCancel(4))),
            ("取消通知 4", cmd(Command::NoticeCancel(4))),
            ("/notices", cmd(Command::Notices)),
            ("通知列表", cmd(Command::Notices)),
            ("催办 1", cmd(Command::Remind(1))),
            ("/remind", Parsed::Invalid(ParseError::RemindUsage)),
            ("/remind x", Parsed::Invalid(ParseError::RemindUsage)),
            ("报名 3", join(Some(3), None)),
            ("报名3", join(Some(3), None)),
            ("接龙 3 带2人", join(Some(3), Some("带2人"))),
            ("+1", join(None, None)),
            ("报名 明天的活动谁去", Parsed::NotCommand),
            // Alone: the chat's open list (see `super::join_bare`).
            ("接龙", join(None, None)),
            ("取消报名 3", cmd(Command::Leave(3))),
            ("/leave", Parsed::Invalid(ParseError::LeaveUsage)),
            ("/event 3", cmd(Command::EventShow(3))),
            ("/event", Parsed::Invalid(ParseError::EventUsage)),
            ("/event close x", Parsed::Invalid(ParseError::EventUsage)),
            (
                "定时通知 明年 开会",
                Parsed::Invalid(ParseError::NoticeAtUsage),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(p(input), want, "input {input:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_notice_like(s in "[/#]?(notice|通知|定时通知|event|报名|接龙|取消报名|催办|收到)? ?(at|status|cancel|close|学校|本组织)? ?[0-9月日:截止 \\n\\PC]{0,40}") {
            let _ = p(&s);
        }
    }

    #[test]
    fn deadline_is_cut_out() {
        let (t, d) = take_deadline("请于周五前完成。截止 11月27日18:00");
        assert_eq!(t, "请于周五前完成。");
        assert_eq!(d.as_deref(), Some("11月27日18:00"));
        let (t, d) = take_deadline("截止目前已有三人");
        assert_eq!(t, "截止目前已有三人");
        assert_eq!(d, None);
    }

    #[test]
    fn notice_args() {
        let Parsed::Command(Command::Notice(a)) = notice(
            "防汛安全通知\n各团组织：请完成教育。截止 11月27日18:00",
            now(),
        ) else {
            panic!()
        };
        assert_eq!(a.head, "防汛安全通知");
        assert_eq!(a.body, "各团组织：请完成教育。");
        let d = a.deadline.unwrap();
        assert_eq!(d.text, "11月27日18:00");
        assert_eq!(d.at, Ok(local(2026, 11, 27, 18, 0)));
        assert_eq!(a.lead, None);
        let Parsed::Command(Command::Notice(a)) = notice("at 3月5日 09:00 开会\n带本子", now())
        else {
            panic!()
        };
        let when = a.at.unwrap();
        assert_eq!(when.text, "3月5日 09:00");
        assert_eq!(when.at, Ok(local(2026, 3, 5, 9, 0)));
        assert_eq!(a.head, "开会");
        assert_eq!(
            notice("status 3", now()),
            Parsed::Command(Command::NoticeStatus(3))
        );
        assert_eq!(
            notice("status x", now()),
            Parsed::Invalid(ParseError::NoticeNumber)
        );
        assert_eq!(
            notice("at 明年", now()),
            Parsed::Invalid(ParseError::NoticeAtUsage)
        );
    }

    #[test]
    fn event_args() {
        let Parsed::Command(Command::EventNew(e)) = event(
            "植树活动 3月12日 08:30 城南苗圃 名额20 截止 3月10日18:00",
            now(),
        ) else {
            panic!()
        };
        assert_eq!(e.title, "植树活动");
        assert_eq!(e.time.text, "3月12日 08:30");
        assert_eq!(e.time.at, Ok(local(2026, 3, 12, 8, 30)));
        assert_eq!(e.place, "城南苗圃");
        assert_eq!(e.capacity, 20);
        let d = e.deadline.unwrap();
        assert_eq!(d.text, "3月10日18:00");
        assert_eq!(d.at, Ok(local(2026, 3, 10, 18, 0)));
        assert_eq!(event("3", now()), Parsed::Command(Command::EventShow(3)));
        assert_eq!(
            event("close 3", now()),
            Parsed::Command(Command::EventClose(3))
        );
        assert_eq!(
            event("植树 明天", now()),
            Parsed::Invalid(ParseError::EventUsage)
        );
        assert_eq!(capacity_word("20"), None);
        assert_eq!(capacity_word("限20人"), Some(20));
    }

    #[test]
    fn notice_leads() {
        use crate::command::scope::OrgRef;
        use crate::domain::OrgKind;
        let lead = |text: &str| match notice(text, now()) {
            Parsed::Command(Command::Notice(a)) => a.lead,
            other => panic!("{text:?}: {other:?}"),
        };
        let org = |s: &str| Target::Org(OrgRef::new(s).unwrap());
        assert_eq!(
            lead("学校、县一中 防汛 安全通知\n正文"),
            Some(Lead {
                targets: vec![Target::Kind(OrgKind::School), org("县一中")],
                title: "防汛 安全通知".into(),
            })
        );
        assert_eq!(
            lead("全体 开会"),
            Some(Lead {
                targets: vec![Target::County],
                title: "开会".into(),
            })
        );
        // One word: the title, never a target.
        assert_eq!(lead("学校\n正文"), None);
        assert_eq!(lead("防汛通知"), None);
    }

    #[test]
    fn unreadable_times_are_carried_as_such() {
        use crate::command::deadline::BadTime;
        // `2月30日` looks like a date to the splitter; it names no day.
        let Parsed::Command(Command::Notice(a)) = notice("at 2月30日 开会", now()) else {
            panic!()
        };
        assert_eq!(a.at.as_ref().map(|w| w.text.as_str()), Some("2月30日"));
        assert_eq!(a.at.map(|w| w.at), Some(Err(BadTime)));
        let Parsed::Command(Command::EventNew(e)) = event("植树 下周六 城南苗圃 名额20", now())
        else {
            panic!()
        };
        assert_eq!(e.time.text, "下周六");
        assert_eq!(e.time.at, Err(BadTime));
        assert_eq!(e.place, "城南苗圃");
    }
}
