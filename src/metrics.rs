//! Process-wide counters for operators, exposed by the web dashboard at
//! `/metrics` in the Prometheus text format. Plain atomics: recording is one
//! call and never fails. The outbox depth is read from the store when
//! scraped, not counted here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

static MESSAGES_HANDLED: AtomicU64 = AtomicU64::new(0);
static SEND_ERRORS: AtomicU64 = AtomicU64::new(0);
static UPDATES_FAILED: AtomicU64 = AtomicU64::new(0);

/// A latency histogram: cumulative counts per upper bound (seconds), the
/// count and sum, and the slowest value seen.
pub struct Histogram {
    bounds: &'static [f64],
    counts: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

/// Buckets per histogram (the longest bounds list).
const BUCKETS: usize = 10;

impl Histogram {
    const fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: [const { AtomicU64::new(0) }; BUCKETS],
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    fn record(&self, seconds: f64) {
        let us = (seconds * 1e6) as u64;
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        for (le, n) in self.bounds.iter().zip(&self.counts) {
            if seconds <= *le {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            max_seconds: self.max_us.load(Ordering::Relaxed) as f64 / 1e6,
            buckets: self
                .bounds
                .iter()
                .zip(&self.counts)
                .map(|(le, n)| (*le, n.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

/// Claim messages, from the engine taking the message (the group-commit
/// queue included) to its transaction's commit.
static CLAIMS: Histogram =
    Histogram::new(&[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);

/// The group-commit writer's COMMITs: on SQLite with `synchronous=full`,
/// mostly the disk's flush, so a slow disk shows here first.
static COMMITS: Histogram =
    Histogram::new(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]);

/// One update handled by the engine (duplicates excluded).
pub fn message_handled() {
    MESSAGES_HANDLED.fetch_add(1, Ordering::Relaxed);
}

/// One update kept as failed after its tries (`store::failed`).
pub fn update_failed() {
    UPDATES_FAILED.fetch_add(1, Ordering::Relaxed);
}

/// One attempt to send an outbox row; failures (any kind) are counted.
pub fn sent(ok: bool) {
    if !ok {
        SEND_ERRORS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Record one claim message's latency in seconds: from the engine taking
/// the message (the group-commit queue included) to its transaction's commit.
pub fn record_claim(seconds: f64) {
    CLAIMS.record(seconds);
}

/// Record how long one of the group-commit writer's COMMITs took.
pub fn record_commit(seconds: f64) {
    COMMITS.record(seconds);
}

/// Point-in-time values of a [`Histogram`].
#[derive(Debug, Clone, Default)]
pub struct HistogramSnapshot {
    pub count: u64,
    pub sum_seconds: f64,
    /// The slowest value since the process started.
    pub max_seconds: f64,
    /// Cumulative counts per upper bound (seconds).
    pub buckets: Vec<(f64, u64)>,
}

impl HistogramSnapshot {
    /// How many recorded values exceeded `le`, one of the bucket bounds
    /// (`None` for any other value).
    pub fn over(&self, le: f64) -> Option<u64> {
        let (_, within) = self.buckets.iter().find(|(b, _)| *b == le)?;
        Some(self.count.saturating_sub(*within))
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n\
             # TYPE {name} histogram"
        );
        for (le, n) in &self.buckets {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n\
             {name}_sum {}\n\
             {name}_count {count}",
            self.sum_seconds,
            count = self.count
        );
    }
}

/// Point-in-time values for the exposition.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub messages_handled: u64,
    pub send_errors: u64,
    pub updates_failed: u64,
    pub claims: HistogramSnapshot,
    pub commits: HistogramSnapshot,
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        messages_handled: MESSAGES_HANDLED.load(Ordering::Relaxed),
        send_errors: SEND_ERRORS.load(Ordering::Relaxed),
        updates_failed: UPDATES_FAILED.load(Ordering::Relaxed),
        claims: CLAIMS.snapshot(),
        commits: COMMITS.snapshot(),
    }
}

/// The Prometheus text exposition (format 0.0.4) of the counters plus the
/// outbox depth (pending rows) read by the caller.
pub fn render(s: &Snapshot, outbox_pending: i64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP tuanbot_messages_handled_total Updates handled by the engine.\n\
         # TYPE tuanbot_messages_handled_total counter\n\
         tuanbot_messages_handled_total {}",
        s.messages_handled
    );
    let _ = writeln!(
        out,
        "# HELP tuanbot_outbox_pending Outbox rows waiting to be sent.\n\
         # TYPE tuanbot_outbox_pending gauge\n\
         tuanbot_outbox_pending {outbox_pending}"
    );
    let _ = writeln!(
        out,
        "# HELP tuanbot_send_errors_total Failed attempts to send a message.\n\
         # TYPE tuanbot_send_errors_total counter\n\
         tuanbot_send_errors_total {}",
        s.send_errors
    );
    let _ = writeln!(
        out,
        "# HELP tuanbot_updates_failed_total Updates kept as failed after their tries \
         (tuanbot failed list).\n\
         # TYPE tuanbot_updates_failed_total counter\n\
         tuanbot_updates_failed_total {}",
        s.updates_failed
    );
    s.claims.render(
        &mut out,
        "tuanbot_claim_seconds",
        "Time to handle one wish claim.",
    );
    s.commits.render(
        &mut out,
        "tuanbot_commit_seconds",
        "Time of one group commit of the engine's writer.",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_family() {
        record_claim(0.003);
        record_commit(0.02);
        message_handled();
        let text = render(&snapshot(), 7);
        for name in [
            "tuanbot_messages_handled_total ",
            "tuanbot_outbox_pending 7",
            "tuanbot_send_errors_total ",
            "tuanbot_updates_failed_total ",
            "tuanbot_claim_seconds_bucket{le=\"0.005\"} ",
            "tuanbot_claim_seconds_bucket{le=\"+Inf\"} ",
            "tuanbot_claim_seconds_count ",
            "tuanbot_commit_seconds_bucket{le=\"0.001\"} ",
            "tuanbot_commit_seconds_count ",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
        assert!(text.ends_with('\n'));
        let commits = snapshot().commits;
        assert!(commits.over(0.01).is_some_and(|n| n >= 1));
        assert!(commits.max_seconds >= 0.02);
        assert_eq!(commits.over(0.02), None, "not a bucket bound");
    }
}
