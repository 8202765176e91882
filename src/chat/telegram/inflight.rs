//! Long polling that a poison update cannot stop for good.
//!
//! A handler's error or panic is caught by the engine, which keeps the
//! update as failed after its tries. What no one can catch is an update
//! that takes the whole process down (an abort, memory exhausted): the
//! offset is saved only after a batch, so after a restart Telegram hands
//! the same batch out again, and the process dies again, forever.
//!
//! So before a batch is handled, its span and the try it is goes to
//! `kv_state` ([`InFlight`]); when the batch is done, the saved offset
//! moves past it and the mark goes, in one transaction. A mark found at
//! start-up is a batch that was begun and never finished. From there on
//! the updates of that span are handled one at a time, each marked before
//! it begins, so the one that stops the process is found; when it has been
//! begun [`MAX_TRIES`](crate::engine::MAX_TRIES) times it is kept as failed
//! without running it again, the offset moves past it, and the bot goes
//! on. The cost: one small write per polled batch.

use serde::{Deserialize, Serialize};

/// Polled updates `first..=last`, being handled for the `tries`-th time
/// (counted for `first`; 0: not begun).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub first: u32,
    pub last: u32,
    pub tries: u32,
}

/// What to do with a polled batch of updates `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Handle it all, marked so first.
    All(InFlight),
    /// Handle only its first update, marked so first: a previous run died
    /// somewhere in this span.
    One(InFlight),
    /// Its first update was begun `tries` times and the process died each
    /// time: keep it as failed without running it.
    GiveUp { tries: u32 },
}

/// The plan for a batch `first..=last`, given the span a previous run left
/// unfinished (`suspect`), and at most `max_tries` tries.
pub fn plan(suspect: Option<InFlight>, first: u32, last: u32, max_tries: u32) -> Plan {
    match suspect.filter(|s| first <= s.last) {
        None => Plan::All(InFlight {
            first,
            last,
            tries: 1,
        }),
        Some(s) => {
            let tries = if first == s.first { s.tries + 1 } else { 1 };
            if tries > max_tries {
                Plan::GiveUp { tries: tries - 1 }
            } else {
                Plan::One(InFlight {
                    first,
                    last: s.last,
                    tries,
                })
            }
        }
    }
}

/// What stays suspect once every update up to `done` is handled (or kept
/// as failed): the rest of the span, not begun yet.
pub fn after(suspect: Option<InFlight>, done: u32) -> Option<InFlight> {
    suspect.filter(|s| done < s.last).map(|s| InFlight {
        first: done.saturating_add(1).max(s.first),
        last: s.last,
        tries: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replay restarts: the process dies whenever update `poison` begins;
    /// the offset is saved after each batch, and an update handled before
    /// is a no-op (`processed_updates`). Returns the restarts it took, the
    /// updates handled and those kept as failed.
    fn simulate(updates: &[u32], poison: u32) -> (usize, Vec<u32>, Vec<u32>) {
        let mut offset = 0usize;
        let mut stored: Option<InFlight> = None;
        let mut handled = Vec::new();
        let mut failed = Vec::new();
        let mut restarts = 0;
        'run: loop {
            // Start-up: what was left in flight is suspect.
            let mut suspect = stored;
            while offset < updates.len() {
                let batch = &updates[offset..];
                let (first, last) = (batch[0], batch[batch.len() - 1]);
                let plan = plan(suspect, first, last, 3);
                let take = match plan {
                    Plan::GiveUp { .. } => {
                        // Kept as failed; the offset moves past it.
                        failed.push(first);
                        offset += 1;
                        suspect = after(suspect, first);
                        continue;
                    }
                    Plan::All(mark) => {
                        suspect = None;
                        stored = Some(mark);
                        batch.len()
                    }
                    Plan::One(mark) => {
                        stored = Some(mark);
                        1
                    }
                };
                for &u in &batch[..take] {
                    if u == poison {
                        restarts += 1;
                        assert!(restarts < 50, "no progress");
                        continue 'run;
                    }
                    if !handled.contains(&u) {
                        handled.push(u);
                    }
                }
                // The offset is saved past the batch (the mark goes with
                // it: every later try marks anew before it begins).
                offset += take;
                suspect = after(suspect, batch[take - 1]);
            }
            return (restarts, handled, failed);
        }
    }

    #[test]
    fn a_poison_update_is_given_up_after_three_deaths() {
        let updates: Vec<u32> = (100..200).collect();
        let (restarts, handled, failed) = simulate(&updates, 150);
        assert_eq!(failed, vec![150]);
        assert_eq!(handled.len(), 99);
        assert!(
            handled.windows(2).all(|w| w[0] < w[1]),
            "in order, each once"
        );
        // Died in the batch, then three times on the update itself.
        assert_eq!(restarts, 4);
    }

    #[test]
    fn a_clean_run_is_one_batch() {
        assert_eq!(
            plan(None, 5, 9, 3),
            Plan::All(InFlight {
                first: 5,
                last: 9,
                tries: 1
            })
        );
        // A span already passed is forgotten.
        let old = Some(InFlight {
            first: 1,
            last: 4,
            tries: 1,
        });
        assert!(matches!(plan(old, 5, 9, 3), Plan::All(_)));
        assert_eq!(after(old, 4), None);
    }

    #[test]
    fn the_rest_of_a_suspect_span_goes_one_at_a_time() {
        let s = Some(InFlight {
            first: 10,
            last: 20,
            tries: 1,
        });
        assert_eq!(
            plan(s, 10, 30, 3),
            Plan::One(InFlight {
                first: 10,
                last: 20,
                tries: 2
            })
        );
        let rest = after(s, 10);
        assert_eq!(
            rest,
            Some(InFlight {
                first: 11,
                last: 20,
                tries: 0
            })
        );
        assert_eq!(
            plan(rest, 11, 30, 3),
            Plan::One(InFlight {
                first: 11,
                last: 20,
                tries: 1
            })
        );
        let dead_thrice = Some(InFlight {
            first: 12,
            last: 20,
            tries: 3,
        });
        assert_eq!(plan(dead_thrice, 12, 30, 3), Plan::GiveUp { tries: 3 });
    }
}
