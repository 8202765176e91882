//! Floods: one person must not spend a group's messages.
//!
//! A group gets at most 20 new messages a minute from the bot (the pacer),
//! so 300 `/orgs` from one person would hold the group's claim results and
//! notices back for a quarter of an hour. Two rules, on the message times
//! the adapters stamp from the engine's clock (never the wall clock):
//!
//! - **Per person**: more than `flood.per_minute` (20) commands that each
//!   cost a reply within a minute, and the next gets one line
//!   (`flood.slow_down`: 请稍后再试) and then nothing for that minute;
//!   a flood that goes on gets that line at most once a minute.
//! - **Per chat**: a read-only command repeated in a chat within
//!   `flood.repeat_seconds` (30 s) of its answer is not answered again (the
//!   answer is right above). For commands whose answer depends on who asks
//!   (`/help`, `/whoami`, `/stats` …) the repeat must come from the same
//!   person.
//!
//! Claims and acknowledgements cost nothing here: their answers are
//! gathered into one message already, and a cadre claiming one wish at a
//! time in a rush must not be cut off. Ordinary chatter in a group gets no
//! reply and costs nothing either.
//!
//! The state lives in memory, per process (a restart starts afresh; with
//! several replicas each counts what it handles). Each update's verdict is
//! remembered by its id, so an update handled again (a retry after an
//! error, a group of updates done again after a database outage) gets the
//! same verdict instead of counting twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::chat::Incoming;
use crate::command::faq::FaqArgs;
use crate::command::{Command, Parsed};
use crate::config::FloodSettings;
use crate::domain::{ChatKind, Platform};

/// What a message may cost a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cost {
    /// No reply, or a gathered one (claims, acks): not limited.
    Free,
    /// A reply of its own: counted per person.
    Reply,
    /// A reply that only reads: counted, and not repeated within
    /// `repeat_seconds` in the chat. `key` names the command and its
    /// arguments; `personal` when the answer depends on who asks.
    ReadOnly { key: String, personal: bool },
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it.
    Answer,
    /// Over the limit: answer with one "slow down" line instead.
    SlowDown,
    /// Over the limit and already told, or a repeat: say nothing.
    Quiet,
}

/// The cost of a parsed message in a chat of `kind`; `mentions_bot` when
/// the bot was @-mentioned (a question for the FAQ).
pub fn cost(parsed: &Parsed, kind: ChatKind, mentions_bot: bool) -> Cost {
    let private = kind == ChatKind::Private;
    match parsed {
        Parsed::Command(cmd) => command_cost(cmd),
        Parsed::NotCommand if private || mentions_bot => Cost::Reply,
        Parsed::NotCommand => Cost::Free,
        Parsed::Unknown(_) if private => Cost::Reply,
        // A group is told only of a command close to one we know.
        Parsed::Unknown(word) if crate::command::closest_command(word).is_some() => Cost::Reply,
        Parsed::Unknown(_) => Cost::Free,
        Parsed::Invalid(_) => Cost::Reply,
        Parsed::TooLong { command, .. } if *command || private => Cost::Reply,
        Parsed::TooLong { .. } => Cost::Free,
    }
}

fn command_cost(cmd: &Command) -> Cost {
    let read_only = |personal| Cost::ReadOnly {
        key: format!("{cmd:?}"),
        personal,
    };
    match cmd {
        Command::Claim(_) | Command::Ack { .. } => Cost::Free,
        // The same answer for anyone in the chat (in a group, children's
        // names are masked for everyone).
        Command::Orgs
        | Command::WishList(_)
        | Command::WishShow(_)
        | Command::EventShow(_)
        | Command::Faq(FaqArgs::List | FaqArgs::Ask(_)) => read_only(false),
        // Answers that depend on who asks.
        Command::Help
        | Command::HelpAll
        | Command::Whoami
        | Command::Mine
        | Command::Stats(_)
        | Command::Notices
        | Command::NoticeStatus(_)
        | Command::WishOverdue
        | Command::MyWishes
        | Command::Report { .. }
        | Command::Stars(_) => read_only(true),
        _ => Cost::Reply,
    }
}

/// Update verdicts are remembered this long (of message time).
const REMEMBER_MS: i64 = 15 * 60_000;
/// The per-person window.
const MINUTE_MS: i64 = 60_000;

/// The limiter of one engine.
#[derive(Debug)]
pub struct Limiter {
    per_minute: usize,
    repeat_ms: i64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Per person: the times of their last `per_minute` counted commands,
    /// and when they were last told to slow down.
    people: HashMap<(Platform, String), Window>,
    /// When a read-only command was last answered: platform, chat, the
    /// asker for personal commands (else empty), the command.
    answered: HashMap<(Platform, String, String, String), i64>,
    /// Verdicts by update, with the message time.
    decided: HashMap<(Platform, String), (i64, Verdict)>,
    /// The latest message time seen, and when old entries were last swept.
    latest_ms: i64,
    swept_ms: i64,
}

#[derive(Debug, Default)]
struct Window {
    recent: VecDeque<i64>,
    told_ms: Option<i64>,
}

impl Limiter {
    pub fn new(settings: &FloodSettings) -> Limiter {
        Limiter {
            per_minute: settings.per_minute,
            repeat_ms: settings.repeat_seconds.saturating_mul(1000),
            state: Mutex::new(State::default()),
        }
    }

    /// The verdict for `msg`, which costs `cost`, at message time `now`.
    pub fn check(&self, msg: &Incoming, cost: &Cost, now: DateTime<Utc>) -> Verdict {
        if *cost == Cost::Free {
            return Verdict::Answer;
        }
        let now_ms = now.timestamp_millis();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let id = (msg.platform, msg.update_id.clone());
        if let Some((_, verdict)) = state.decided.get(&id) {
            return *verdict;
        }
        let verdict = self.decide(&mut state, msg, cost, now_ms);
        state.decided.insert(id, (now_ms, verdict));
        state.latest_ms = state.latest_ms.max(now_ms);
        if state.latest_ms - state.swept_ms >= MINUTE_MS {
            self.sweep(&mut state);
        }
        verdict
    }

    fn decide(&self, state: &mut State, msg: &Incoming, cost: &Cost, now_ms: i64) -> Verdict {
        if self.per_minute > 0 {
            let window = state
                .people
                .entry((msg.platform, msg.sender_id.clone()))
                .or_default();
            let full = window.recent.len() >= self.per_minute
                && window
                    .recent
                    .front()
                    .is_some_and(|&first| now_ms - first < MINUTE_MS);
            window.recent.push_back(now_ms);
            while window.recent.len() > self.per_minute {
                window.recent.pop_front();
            }
            if full {
                if window.told_ms.is_some_and(|told| now_ms - told < MINUTE_MS) {
                    return Verdict::Quiet;
                }
                window.told_ms = Some(now_ms);
                return Verdict::SlowDown;
            }
        }
        if let Cost::ReadOnly { key, personal } = cost
            && self.repeat_ms > 0
        {
            let asker = if *personal {
                msg.sender_id.clone()
            } else {
                String::new()
            };
            let k = (msg.platform, msg.chat_id.clone(), asker, key.clone());
            if state
                .answered
                .get(&k)
                .is_some_and(|&at| (0..self.repeat_ms).contains(&(now_ms - at)))
            {
                return Verdict::Quiet;
            }
            state.answered.insert(k, now_ms);
        }
        Verdict::Answer
    }

    /// Forget what can no longer matter.
    fn sweep(&self, state: &mut State) {
        let now = state.latest_ms;
        state.people.retain(|_, w| {
            w.recent.back().is_some_and(|&t| now - t < MINUTE_MS)
                || w.told_ms.is_some_and(|t| now - t < MINUTE_MS)
        });
        let repeat = self.repeat_ms;
        state.answered.retain(|_, at| now - *at < repeat);
        state.decided.retain(|_, (at, _)| now - *at < REMEMBER_MS);
        state.swept_ms = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{ParseOptions, parse};

    fn limiter() -> Limiter {
        Limiter::new(&FloodSettings::default())
    }

    fn msg(n: usize, user: &str, chat: &str, text: &str) -> Incoming {
        Incoming::text(
            Platform::Qq,
            format!("u{n}"),
            chat,
            ChatKind::Group,
            user,
            text,
            DateTime::default(),
        )
    }

    fn cost_of(text: &str) -> Cost {
        let parsed = parse(text, &ParseOptions::default());
        cost(&parsed, ChatKind::Group, false)
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_780_000_000_000 + ms).unwrap_or_default()
    }

    #[test]
    fn costs() {
        assert_eq!(cost_of("认领 12"), Cost::Free);
        assert_eq!(cost_of("收到"), Cost::Free);
        assert_eq!(cost_of("大家好"), Cost::Free);
        assert_eq!(cost_of("/log 3月5日 团课 20人"), Cost::Reply);
        assert!(matches!(
            cost_of("/orgs"),
            Cost::ReadOnly {
                personal: false,
                ..
            }
        ));
        assert!(matches!(
            cost_of("/whoami"),
            Cost::ReadOnly { personal: true, .. }
        ));
        // The same command however it is written.
        assert_eq!(cost_of("/orgs"), cost_of("组织"));
        assert_ne!(cost_of("/wish 12"), cost_of("/wish 13"));
        let chatter = parse("大家好", &ParseOptions::default());
        assert_eq!(cost(&chatter, ChatKind::Private, false), Cost::Reply);
        assert_eq!(cost(&chatter, ChatKind::Group, true), Cost::Reply);
    }

    #[test]
    fn twenty_a_minute_then_one_line_then_quiet() {
        let l = limiter();
        let verdicts: Vec<Verdict> = (0..30)
            .map(|n| {
                let m = msg(n, "a", "g", "/log x");
                l.check(&m, &Cost::Reply, at(n as i64 * 1000))
            })
            .collect();
        assert!(verdicts[..20].iter().all(|v| *v == Verdict::Answer));
        assert_eq!(verdicts[20], Verdict::SlowDown);
        assert!(verdicts[21..].iter().all(|v| *v == Verdict::Quiet));
        // Someone else is not affected.
        assert_eq!(
            l.check(&msg(99, "b", "g", "/log x"), &Cost::Reply, at(30_000)),
            Verdict::Answer
        );
        // A minute after the last counted command, the person is heard.
        assert_eq!(
            l.check(&msg(100, "a", "g", "/log x"), &Cost::Reply, at(90_000)),
            Verdict::Answer
        );
    }

    #[test]
    fn a_flood_that_goes_on_is_told_once_a_minute() {
        let l = limiter();
        let told = (0..600)
            .map(|n| {
                l.check(
                    &msg(n, "a", "g", "/log x"),
                    &Cost::Reply,
                    at(n as i64 * 500),
                )
            })
            .filter(|v| *v == Verdict::SlowDown)
            .count();
        // 600 commands over five minutes: told at most once a minute.
        assert!((1..=5).contains(&told), "{told}");
    }

    #[test]
    fn repeats_within_30_seconds_are_answered_once() {
        let l = limiter();
        let orgs = cost_of("/orgs");
        let v = |n: usize, user: &str, chat: &str, ms: i64, c: &Cost| {
            l.check(&msg(n, user, chat, ""), c, at(ms))
        };
        assert_eq!(v(1, "a", "g", 0, &orgs), Verdict::Answer);
        assert_eq!(v(2, "b", "g", 10_000, &orgs), Verdict::Quiet);
        assert_eq!(v(3, "a", "g2", 10_000, &orgs), Verdict::Answer);
        assert_eq!(v(4, "a", "g", 30_000, &orgs), Verdict::Answer);
        // Personal answers: each asker gets their own.
        let whoami = cost_of("/whoami");
        assert_eq!(v(5, "a", "g", 40_000, &whoami), Verdict::Answer);
        assert_eq!(v(6, "b", "g", 41_000, &whoami), Verdict::Answer);
        assert_eq!(v(7, "a", "g", 42_000, &whoami), Verdict::Quiet);
    }

    #[test]
    fn an_update_handled_again_keeps_its_verdict() {
        let l = limiter();
        for n in 0..20 {
            l.check(&msg(n, "a", "g", ""), &Cost::Reply, at(0));
        }
        let late = msg(20, "a", "g", "");
        assert_eq!(l.check(&late, &Cost::Reply, at(0)), Verdict::SlowDown);
        assert_eq!(l.check(&late, &Cost::Reply, at(0)), Verdict::SlowDown);
        let first = msg(0, "a", "g", "");
        assert_eq!(l.check(&first, &Cost::Reply, at(0)), Verdict::Answer);
    }

    #[test]
    fn off_when_set_to_zero() {
        let l = Limiter::new(&FloodSettings {
            per_minute: 0,
            repeat_seconds: 0,
        });
        let orgs = cost_of("/orgs");
        assert!((0..100).all(|n| l.check(&msg(n, "a", "g", ""), &orgs, at(0)) == Verdict::Answer));
    }

    #[test]
    fn old_entries_are_swept() {
        let l = limiter();
        for n in 0..1000 {
            let user = format!("p{n}");
            l.check(&msg(n, &user, "g", ""), &Cost::Reply, at(n as i64 * 100));
        }
        l.check(&msg(5000, "z", "g", ""), &Cost::Reply, at(10_000_000));
        let state = l.state.lock().unwrap();
        assert!(state.people.len() <= 2, "{}", state.people.len());
        assert!(state.decided.len() <= 2);
    }
}
