//! Process-wide counters for operators, exposed by the web dashboard at
//! `/metrics` in the Prometheus text format. Plain atomics: recording is one
//! call and never fails. The outbox depth is read from the store when
//! scraped, not counted here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

static MESSAGES_HANDLED: AtomicU64 = AtomicU64::new(0);
static SEND_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Upper bounds (seconds) of the claim latency histogram buckets.
const CLAIM_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
static CLAIM_COUNTS: [AtomicU64; 10] = [const { AtomicU64::new(0) }; 10];
static CLAIM_COUNT: AtomicU64 = AtomicU64::new(0);
/// Sum of claim latencies in microseconds.
static CLAIM_SUM_US: AtomicU64 = AtomicU64::new(0);

/// One update handled by the engine (duplicates excluded).
pub fn message_handled() {
    MESSAGES_HANDLED.fetch_add(1, Ordering::Relaxed);
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
    CLAIM_COUNT.fetch_add(1, Ordering::Relaxed);
    CLAIM_SUM_US.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    for (i, le) in CLAIM_BUCKETS.iter().enumerate() {
        if seconds <= *le {
            CLAIM_COUNTS[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Point-in-time values for the exposition.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub messages_handled: u64,
    pub send_errors: u64,
    pub claims: u64,
    pub claim_sum_seconds: f64,
    /// Cumulative counts per bucket of [`CLAIM_BUCKETS`].
    pub claim_buckets: Vec<(f64, u64)>,
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        messages_handled: MESSAGES_HANDLED.load(Ordering::Relaxed),
        send_errors: SEND_ERRORS.load(Ordering::Relaxed),
        claims: CLAIM_COUNT.load(Ordering::Relaxed),
        claim_sum_seconds: CLAIM_SUM_US.load(Ordering::Relaxed) as f64 / 1e6,
        claim_buckets: CLAIM_BUCKETS
            .iter()
            .zip(&CLAIM_COUNTS)
            .map(|(le, n)| (*le, n.load(Ordering::Relaxed)))
            .collect(),
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
        "# HELP tuanbot_claim_seconds Time to handle one wish claim.\n\
         # TYPE tuanbot_claim_seconds histogram"
    );
    for (le, n) in &s.claim_buckets {
        let _ = writeln!(out, "tuanbot_claim_seconds_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "tuanbot_claim_seconds_bucket{{le=\"+Inf\"}} {}\n\
         tuanbot_claim_seconds_sum {}\n\
         tuanbot_claim_seconds_count {}",
        s.claims, s.claim_sum_seconds, s.claims
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_family() {
        record_claim(0.003);
        message_handled();
        let text = render(&snapshot(), 7);
        for name in [
            "tuanbot_messages_handled_total ",
            "tuanbot_outbox_pending 7",
            "tuanbot_send_errors_total ",
            "tuanbot_claim_seconds_bucket{le=\"0.005\"} ",
            "tuanbot_claim_seconds_bucket{le=\"+Inf\"} ",
            "tuanbot_claim_seconds_count ",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
        assert!(text.ends_with('\n'));
    }
}
