//! Pacing shared by the adapters. QQ's risk control (风控) mutes or logs out
//! an account that posts too fast or floods one group; Telegram answers 429
//! past ~30 messages/s overall, ~20/min in one group, ~1/s in one chat.
//! The sender asks [`Pacer::check`] before each message; when no slot is
//! free it answers how long to wait, and the adapter turns that into
//! `SendError::RetryAfter` so the dispatcher serves other chats meanwhile.
//!
//! Sends are recorded when the implementation *answered* them, not when they
//! were written, so the gaps the peer sees are never shorter than configured.
//!
//! Groups (QQ groups, Telegram groups and supergroups) are *windowed*: at
//! most `chat_per_window` NEW messages per rolling `chat_window` (20 a
//! minute, issue 5), spread evenly: a new message waits at least
//! `chat_window / chat_per_window` (3 s) after the previous one. The spread
//! is what lets a claim rush keep both promises, "at most 20 a minute" and
//! "every claimer sees their result within 5 s": a gathered claim-result
//! message waits at most one spread after its 2 s gathering window, and is
//! never stuck behind a burst that used up the minute. Edits (the wish
//! board) are not new messages: they keep the chat interval and count for
//! the account, but neither use nor wait for the group's window.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct PaceLimits {
    /// Least time between two messages to one group (or private chat).
    pub chat_interval: Duration,
    /// Extra random wait up to this, added to each chat interval.
    pub jitter: Duration,
    /// At most this many messages per `window` for the whole account.
    pub per_window: usize,
    pub window: Duration,
    /// At most this many NEW messages per `chat_window` to one chat that
    /// the caller marks as windowed (groups), spread evenly; 0 turns it off.
    pub chat_per_window: usize,
    pub chat_window: Duration,
}

impl PaceLimits {
    /// QQ through OneBot: a group interval with jitter (风控), the
    /// account's per-minute budget, and at most `group_per_minute` new
    /// messages a minute to one group.
    pub fn onebot(cfg: &crate::config::OneBotSettings) -> PaceLimits {
        PaceLimits {
            chat_interval: Duration::from_millis(cfg.group_interval_ms),
            jitter: Duration::from_millis(cfg.jitter_ms),
            per_window: cfg.account_per_minute,
            window: Duration::from_millis(cfg.account_window_ms.max(1)),
            chat_per_window: cfg.group_per_minute,
            chat_window: Duration::from_secs(60),
        }
    }

    /// Telegram: ~30 messages a second overall, a chat interval, and at
    /// most `group_per_minute` new messages a minute to one group.
    pub fn telegram(cfg: &crate::config::TelegramSettings) -> PaceLimits {
        PaceLimits {
            chat_interval: Duration::from_millis(cfg.chat_interval_ms),
            jitter: Duration::ZERO,
            per_window: cfg.per_second.max(1),
            window: Duration::from_secs(1),
            chat_per_window: cfg.group_per_minute,
            chat_window: Duration::from_secs(60),
        }
    }
}

pub struct Pacer {
    limits: PaceLimits,
    /// Per chat: not before this instant.
    next_for_chat: HashMap<String, Instant>,
    /// When the account's recent messages went out, oldest first.
    recent: VecDeque<Instant>,
    /// Per windowed chat: when its recent new messages went out.
    recent_in_chat: HashMap<String, VecDeque<Instant>>,
    seed: u64,
}

impl Pacer {
    pub fn new(limits: PaceLimits) -> Pacer {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
        Pacer {
            limits: PaceLimits {
                per_window: limits.per_window.max(1),
                ..limits
            },
            next_for_chat: HashMap::new(),
            recent: VecDeque::new(),
            recent_in_chat: HashMap::new(),
            seed,
        }
    }

    /// May a new message of `parts` parts go to `chat` now? `Err(wait)`
    /// when not.
    pub fn check(&mut self, chat: &str, parts: usize, now: Instant) -> Result<(), Duration> {
        self.check_chat(chat, parts, now)?;
        self.check_overall(parts, now)
    }

    /// May the next part of a message already admitted by [`Pacer::check`]
    /// go now? The chat interval and the account window apply; the group's
    /// window already counted every part, and parts are not spread.
    pub fn check_part(&mut self, chat: &str, now: Instant) -> Result<(), Duration> {
        self.check_interval(chat, now)?;
        self.check_overall(1, now)
    }

    /// The chat's own limits for a NEW message of `parts` parts: interval,
    /// and for a windowed chat its even spread and its window. `Err(wait)`
    /// when not free.
    pub fn check_chat(&mut self, chat: &str, parts: usize, now: Instant) -> Result<(), Duration> {
        self.check_interval(chat, now)?;
        let cap = self.limits.chat_per_window;
        if cap > 0
            && let Some(recent) = self.recent_in_chat.get_mut(chat)
        {
            let window = self.limits.chat_window;
            let spread = recent
                .back()
                .map(|last| (*last + window / cap as u32).saturating_duration_since(now))
                .unwrap_or_default();
            let full = window_wait(recent, window, cap, parts, now).unwrap_or_default();
            let wait = spread.max(full);
            if !wait.is_zero() {
                return Err(wait);
            }
        }
        Ok(())
    }

    /// The chat interval only: what an edit waits for (an edit is not a
    /// new message, so the group's window does not apply).
    pub fn check_interval(&mut self, chat: &str, now: Instant) -> Result<(), Duration> {
        if let Some(next) = self.next_for_chat.get(chat)
            && *next > now
        {
            return Err(*next - now);
        }
        Ok(())
    }

    /// The account-wide window only: `Err(wait)` when it is full.
    pub fn check_overall(&mut self, parts: usize, now: Instant) -> Result<(), Duration> {
        match window_wait(
            &mut self.recent,
            self.limits.window,
            self.limits.per_window,
            parts,
            now,
        ) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Record one message to `chat` answered at `at`; a new message to a
    /// `windowed` chat (a group) also counts against `chat_per_window`.
    /// Edits are recorded with `windowed = false`.
    pub fn record_in(&mut self, chat: &str, at: Instant, windowed: bool) {
        let next = at + self.limits.chat_interval + self.jitter();
        self.next_for_chat.insert(chat.to_string(), next);
        self.recent.push_back(at);
        if windowed && self.limits.chat_per_window > 0 {
            self.recent_in_chat
                .entry(chat.to_string())
                .or_default()
                .push_back(at);
        }
        // Old per-chat entries are useless once passed; keep the maps small.
        if self.next_for_chat.len() > 4096 {
            self.next_for_chat.retain(|_, t| *t > at);
        }
        if self.recent_in_chat.len() > 4096 {
            let window = self.limits.chat_window;
            self.recent_in_chat
                .retain(|_, q| q.back().is_some_and(|t| at.duration_since(*t) < window));
        }
    }

    /// Record one message to `chat` answered at `at`, outside any group
    /// window (private chats, edits).
    pub fn record(&mut self, chat: &str, at: Instant) {
        self.record_in(chat, at, false);
    }

    /// A random duration in `0..=jitter` (xorshift; no cryptographic need).
    fn jitter(&mut self) -> Duration {
        let max = self.limits.jitter.as_millis() as u64;
        if max == 0 {
            return Duration::ZERO;
        }
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed = x;
        Duration::from_millis(x % (max + 1))
    }
}

/// How long until `parts` more fit in a sliding window holding `recent`
/// (oldest first, pruned here); `None` when they fit now. A message longer
/// than the whole budget still goes out, alone.
fn window_wait(
    recent: &mut VecDeque<Instant>,
    window: Duration,
    per_window: usize,
    parts: usize,
    now: Instant,
) -> Option<Duration> {
    while let Some(first) = recent.front() {
        if now.duration_since(*first) >= window {
            recent.pop_front();
        } else {
            break;
        }
    }
    let per_window = per_window.max(1);
    let parts = parts.clamp(1, per_window);
    if recent.len() + parts > per_window {
        let idx = recent.len() + parts - per_window - 1;
        let frees_at = recent[idx] + window;
        return Some(
            frees_at
                .saturating_duration_since(now)
                .max(Duration::from_millis(1)),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer() -> Pacer {
        Pacer::new(PaceLimits {
            chat_interval: Duration::from_millis(1500),
            jitter: Duration::ZERO,
            per_window: 3,
            window: Duration::from_secs(60),
            chat_per_window: 0,
            chat_window: Duration::ZERO,
        })
    }

    #[test]
    fn windowed_chat_keeps_its_own_budget() {
        let mut p = Pacer::new(PaceLimits {
            chat_interval: Duration::from_secs(1),
            jitter: Duration::ZERO,
            per_window: 30,
            window: Duration::from_secs(1),
            chat_per_window: 2,
            chat_window: Duration::from_secs(60),
        });
        let t0 = Instant::now();
        p.record_in("-100", t0, true);
        p.record_in("-100", t0 + Duration::from_secs(1), true);
        p.record_in("7", t0, false);
        p.record_in("7", t0 + Duration::from_secs(1), false);
        let at = t0 + Duration::from_secs(2);
        assert_eq!(p.check("-100", 1, at), Err(Duration::from_secs(58)));
        assert!(p.check("7", 1, at).is_ok());
        assert!(p.check("-100", 1, t0 + Duration::from_secs(60)).is_ok());
    }

    fn group_limits() -> PaceLimits {
        PaceLimits {
            chat_interval: Duration::from_secs(1),
            jitter: Duration::ZERO,
            per_window: 1000,
            window: Duration::from_secs(1),
            chat_per_window: 20,
            chat_window: Duration::from_secs(60),
        }
    }

    #[test]
    fn group_messages_are_spread_and_capped() {
        let mut p = Pacer::new(group_limits());
        let t0 = Instant::now();
        p.record_in("g", t0, true);
        // The next new message waits one spread (60 s / 20).
        assert_eq!(
            p.check("g", 1, t0 + Duration::from_secs(1)),
            Err(Duration::from_secs(2))
        );
        assert!(p.check("g", 1, t0 + Duration::from_secs(3)).is_ok());
        // Asking as often as allowed never puts 21 in a minute.
        let mut sent = vec![t0];
        let mut now = t0;
        while now < t0 + Duration::from_secs(600) {
            now += Duration::from_millis(100);
            if p.check("g", 1, now).is_ok() {
                p.record_in("g", now, true);
                sent.push(now);
            }
        }
        for (i, first) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .filter(|t| t.duration_since(*first) < Duration::from_secs(60))
                .count();
            assert!(in_window <= 20, "{in_window} in a minute");
        }
    }

    #[test]
    fn edits_neither_use_nor_wait_for_the_group_window() {
        let mut p = Pacer::new(group_limits());
        let t0 = Instant::now();
        p.record_in("g", t0, true);
        let at = t0 + Duration::from_secs(1);
        assert!(p.check("g", 1, at).is_err());
        // An edit only keeps the chat interval.
        assert!(p.check_interval("g", at).is_ok());
        p.record("g", at);
        assert_eq!(
            p.check_interval("g", at + Duration::from_millis(500)),
            Err(Duration::from_millis(500))
        );
        // The edit did not push the next new message back beyond its
        // interval: the spread still counts from the last new message.
        assert!(p.check("g", 1, t0 + Duration::from_secs(3)).is_ok());
    }

    #[test]
    fn parts_of_an_admitted_message_are_not_spread() {
        let mut p = Pacer::new(group_limits());
        let t0 = Instant::now();
        assert!(p.check("g", 3, t0).is_ok());
        p.record_in("g", t0, true);
        let at = t0 + Duration::from_secs(1);
        assert!(p.check_part("g", at).is_ok());
        p.record_in("g", at, true);
        // A new message waits out the spread after the last part.
        assert_eq!(
            p.check("g", 1, at + Duration::from_secs(1)),
            Err(Duration::from_secs(2))
        );
    }

    #[test]
    fn one_chat_waits_for_its_interval() {
        let mut p = pacer();
        let t0 = Instant::now();
        assert!(p.check("g1", 1, t0).is_ok());
        p.record("g1", t0);
        assert_eq!(
            p.check("g1", 1, t0 + Duration::from_millis(500)),
            Err(Duration::from_millis(1000))
        );
        assert!(p.check("g2", 1, t0).is_ok());
        assert!(p.check("g1", 1, t0 + Duration::from_millis(1500)).is_ok());
    }

    #[test]
    fn account_window_caps_all_chats() {
        let mut p = pacer();
        let t0 = Instant::now();
        for (i, chat) in ["a", "b", "c"].iter().enumerate() {
            let at = t0 + Duration::from_secs(i as u64);
            assert!(p.check(chat, 1, at).is_ok());
            p.record(chat, at);
        }
        let at = t0 + Duration::from_secs(10);
        assert_eq!(p.check("d", 1, at), Err(Duration::from_secs(50)));
        assert_eq!(p.check("d", 2, at), Err(Duration::from_secs(51)));
        assert!(p.check("d", 1, t0 + Duration::from_secs(60)).is_ok());
    }
}
