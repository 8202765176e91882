//! Pacing against QQ's risk control (风控): an account that posts too fast,
//! or floods one group, gets muted or logged out. The sender asks
//! [`Pacer::check`] before each message; when no slot is free it answers how
//! long to wait, and the adapter turns that into `SendError::RetryAfter` so
//! the dispatcher serves other chats meanwhile.
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
}

pub struct Pacer {
    limits: PaceLimits,
    /// Per chat: not before this instant.
    next_for_chat: HashMap<String, Instant>,
    /// When the account's recent messages went out, oldest first.
    recent: VecDeque<Instant>,
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
            seed,
        }
    }

    /// May `parts` messages go to `chat` now? `Err(wait)` when not.
    pub fn check(&mut self, chat: &str, parts: usize, now: Instant) -> Result<(), Duration> {
        if let Some(next) = self.next_for_chat.get(chat)
            && *next > now
        {
            return Err(*next - now);
        }
        while let Some(first) = self.recent.front() {
            if now.duration_since(*first) >= self.limits.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        // A message longer than the whole budget still goes out, alone.
        let parts = parts.clamp(1, self.limits.per_window);
        if self.recent.len() + parts > self.limits.per_window {
            let idx = self.recent.len() + parts - self.limits.per_window - 1;
            let frees_at = self.recent[idx] + self.limits.window;
            return Err(frees_at
                .saturating_duration_since(now)
                .max(Duration::from_millis(1)));
        }
        Ok(())
    }

    /// Record one message to `chat` answered at `at`.
    pub fn record(&mut self, chat: &str, at: Instant) {
        let next = at + self.limits.chat_interval + self.jitter();
        self.next_for_chat.insert(chat.to_string(), next);
        self.recent.push_back(at);
        // Old per-chat entries are useless once passed; keep the map small.
        if self.next_for_chat.len() > 4096 {
            self.next_for_chat.retain(|_, t| *t > at);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer() -> Pacer {
        Pacer::new(PaceLimits {
            chat_interval: Duration::from_millis(1500),
            jitter: Duration::ZERO,
            per_window: 3,
            window: Duration::from_secs(60),
        })
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
