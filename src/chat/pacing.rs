//! Pacing shared by the adapters. QQ's risk control (风控) mutes or logs out
//! an account that posts too fast or floods one group; Telegram answers 429
//! past ~30 messages/s overall, ~20/min in one group, ~1/s in one chat.
//! The sender asks [`Pacer::check`] before each message; when no slot is
//! free it answers how long to wait, and the adapter turns that into
//! `SendError::RetryAfter` so the dispatcher serves other chats meanwhile.
//!
//! Sends are recorded when the implementation *answered* them, not when they
//! were written, so the gaps the peer sees are never shorter than configured.

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
    /// At most this many messages per `chat_window` to one chat that the
    /// caller marks as windowed (Telegram groups); 0 turns it off.
    pub chat_per_window: usize,
    pub chat_window: Duration,
}

pub struct Pacer {
    limits: PaceLimits,
    /// Per chat: not before this instant.
    next_for_chat: HashMap<String, Instant>,
    /// When the account's recent messages went out, oldest first.
    recent: VecDeque<Instant>,
    /// Per windowed chat: when its recent messages went out.
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

    /// May `parts` messages go to `chat` now? `Err(wait)` when not.
    pub fn check(&mut self, chat: &str, parts: usize, now: Instant) -> Result<(), Duration> {
        self.check_chat(chat, parts, now)?;
        self.check_overall(parts, now)
    }

    /// The chat's own limits only (interval, and its window when it has
    /// one). `Err(wait)` when not free.
    pub fn check_chat(&mut self, chat: &str, parts: usize, now: Instant) -> Result<(), Duration> {
        if let Some(next) = self.next_for_chat.get(chat)
            && *next > now
        {
            return Err(*next - now);
        }
        if self.limits.chat_per_window > 0
            && let Some(recent) = self.recent_in_chat.get_mut(chat)
        {
            let window = self.limits.chat_window;
            if let Some(wait) = window_wait(recent, window, self.limits.chat_per_window, parts, now)
            {
                return Err(wait);
            }
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

    /// Record one message to `chat` answered at `at`; `windowed` chats
    /// (Telegram groups) also count against `chat_per_window`.
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

    /// Record one message to `chat` answered at `at`.
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
