//! Waiting out a database outage.
//!
//! When the database can't be reached ([`StoreError::Unavailable`]), work
//! that needs it is neither dropped nor counted as failed: it waits and is
//! tried again, 1 s after the first failure, then 2, 4, 8 and every 10 s,
//! for as long as the outage lasts. Whoever waits logs one line when the
//! outage begins, one a minute while it lasts (what waits, for how long,
//! and the cause as the database driver gave it) and one when it is over.
//!
//! The engine's writer waits here with every update behind it queued in
//! arrival order; adapters wait here for their own small writes.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::store::StoreError;

/// How often a waiter logs while an outage lasts.
pub const LOG_EVERY: Duration = Duration::from_secs(60);
/// The longest pause between two tries.
pub const MAX_PAUSE: Duration = Duration::from_secs(10);

/// One waiter's view of an outage: since when, how many tries, when it
/// last said so.
#[derive(Debug)]
pub struct Outage {
    what: &'static str,
    since: Instant,
    tries: u32,
    logged: Option<Instant>,
}

impl Outage {
    /// An outage noticed now by `what` (e.g. "updates", for the log).
    pub fn new(what: &'static str) -> Outage {
        Outage {
            what,
            since: Instant::now(),
            tries: 0,
            logged: None,
        }
    }

    /// Log when due and sleep before the next try. `waiting` is how much
    /// work waits (for the log line).
    pub async fn wait(&mut self, waiting: usize, cause: &StoreError) {
        let now = Instant::now();
        if self.log_due(now) {
            self.logged = Some(now);
            tracing::warn!(
                what = self.what,
                waiting,
                for_s = now.duration_since(self.since).as_secs(),
                cause = %cause,
                "the database is unavailable; waiting and trying again"
            );
        }
        let pause = pause(self.tries);
        self.tries = self.tries.saturating_add(1);
        tokio::time::sleep(pause).await;
    }

    /// The database answered again.
    pub fn over(self) {
        tracing::warn!(
            what = self.what,
            after_s = self.since.elapsed().as_secs(),
            tries = self.tries,
            "the database is available again; going on"
        );
    }

    /// Whether a line is due at `now`: at the first failure, then once
    /// per [`LOG_EVERY`].
    fn log_due(&self, now: Instant) -> bool {
        self.logged
            .is_none_or(|at| now.duration_since(at) >= LOG_EVERY)
    }
}

/// The pause after the `tries`-th failed try (0-based): 1, 2, 4, 8, 10, 10 … s.
fn pause(tries: u32) -> Duration {
    Duration::from_secs(1u64 << tries.min(4)).min(MAX_PAUSE)
}

/// Run `work` until it succeeds or fails for a reason other than an
/// outage, waiting out outages (see the module docs). A shutdown
/// ([`StoreError::Stopped`]) ends the wait with that error.
pub async fn retry<T, F, Fut>(what: &'static str, mut work: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut outage: Option<Outage> = None;
    loop {
        match work().await {
            Err(e @ StoreError::Unavailable(_)) => {
                outage
                    .get_or_insert_with(|| Outage::new(what))
                    .wait(1, &e)
                    .await;
            }
            done => {
                if let Some(o) = outage {
                    o.over();
                }
                return done;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_ten_seconds() {
        let secs: Vec<u64> = (0..8).map(|n| pause(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10, 10, 10]);
        assert_eq!(pause(u32::MAX), MAX_PAUSE);
    }

    #[test]
    fn one_line_a_minute() {
        let mut o = Outage::new("updates");
        let t0 = o.since;
        assert!(o.log_due(t0), "the first failure is logged");
        o.logged = Some(t0);
        // Tries every 10 s for ten minutes: a line at each full minute.
        let lines = (1..=60)
            .map(|k| t0 + Duration::from_secs(10 * k))
            .filter(|&now| {
                let due = o.log_due(now);
                if due {
                    o.logged = Some(now);
                }
                due
            })
            .count();
        assert_eq!(lines, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_waits_out_an_outage_and_stops_on_other_errors() {
        let mut calls = 0;
        let got = retry("test", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 4 {
                    Err(StoreError::Unavailable("connection refused".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(got.ok(), Some(4));
        let mut calls = 0;
        let got: Result<(), _> = retry("test", || {
            calls += 1;
            async { Err(StoreError::Corrupt("bad row".into())) }
        })
        .await;
        assert!(matches!(got, Err(StoreError::Corrupt(_))));
        assert_eq!(calls, 1, "bad work is not retried here");
    }
}
