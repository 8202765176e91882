//! The persisted scheduler: one-off jobs as rows in the `jobs` table, run
//! once when due, surviving restarts. Modelled on rust-lang/triagebot's
//! `jobs.rs` + `db/jobs.rs`.
//!
//! A job is a `kind` (which handler runs it), a JSON `payload` and a
//! `run_at` time. [`run_due`] takes each due job in its own transaction,
//! calls the handler registered for its kind with that transaction, writes
//! the handler's messages as outbox rows, sets `done_at` and commits — all
//! in ONE transaction, so a crash at any point either leaves the job undone
//! (it runs again after restart) or done with its whole effect; never half,
//! never twice. On PostgreSQL the row is taken with `FOR UPDATE SKIP
//! LOCKED`, so with several replicas each due job is run by exactly one of
//! them. A handler that fails rolls back, and the job is retried with
//! back-off up to [`MAX_ATTEMPTS`] times.
//!
//! Time comes from the Env's clock, so tests drive it with `ManualClock`.
//!
//! # Worked example
//!
//! A notice with deadline 3月5日 18:00 is confirmed at 3月4日 10:00. The
//! confirming transaction schedules two jobs next to the notice itself:
//!
//! ```text
//! id | kind            | payload         | run_at          | done_at
//!  7 | notice.remind   | {"notice": 12}  | 3月5日 16:00    | NULL
//!  8 | notice.summary  | {"notice": 12}  | 3月5日 18:00    | NULL
//! ```
//!
//! At 16:00 the loop ([`run`]) calls `run_due(engine, now)`: job 7 is due;
//! in one transaction the `notice.remind` handler reads who has not
//! acknowledged notice 12, queues one reminder per group that still owes an
//! answer, and job 7 gets `done_at`. If the process dies before the commit,
//! nothing of it happened and the restarted process runs job 7 again; if it
//! dies after, the reminders are in the outbox and job 7 is done. At 18:00
//! job 8 sends the sender a summary the same way.
//!
//! In code:
//!
//! ```ignore
//! jobs::schedule(&mut tx, "notice.remind", &json!({"notice": 12}), run_at, now).await?;
//! // … later, in the loop:
//! jobs::run_due(&engine, engine.now()).await?;
//! ```

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::chat::BoxFuture;
use crate::service::{Ctx, Env, Scheduled};
use crate::store::jobs::Job;
use crate::store::{self, StoreError};

pub use crate::store::jobs::{cancel, pending, schedule as schedule_raw};

/// How long a taken job is ours before another runner may take it again.
const LEASE_MS: i64 = 5 * 60_000;
/// Failed attempts before a job is given up.
pub const MAX_ATTEMPTS: i64 = 5;
/// Old update ids forgotten per transaction by the slow sweep.
const PRUNE_BATCH: i64 = 2000;
/// Jobs run per [`run_due`] call at most, so one call cannot run forever.
const MAX_PER_PASS: usize = 1000;

pub use crate::service::schedule::{Handler, payload, schedule};

/// A handler for slow work outside the database (a backup): it runs
/// outside any transaction, so SQLite's one write lock is not held
/// meanwhile, while the job's lease keeps other runners off it; it
/// finishes the job itself ([`store::jobs::finish`]) in the transaction
/// that records its outcome. An error counts as a failed attempt.
pub type Detached =
    for<'a> fn(&'a Env, Job, DateTime<Utc>) -> BoxFuture<'a, Result<(), StoreError>>;

/// The registered detached handlers, by kind.
const DETACHED: &[(&str, Detached)] = &[(crate::store::maintenance::BACKUP_JOB, |e, j, now| {
    Box::pin(crate::ops::backup::run_job(e, j, now))
})];

fn detached(kind: &str) -> Option<Detached> {
    DETACHED.iter().find(|(k, _)| *k == kind).map(|(_, h)| *h)
}

/// What one [`run_due`] call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ran {
    pub done: usize,
    pub failed: usize,
}

/// Run every job due at `now`, each in its own transaction together with
/// its effect and its outbox rows.
pub async fn run_due(env: &Env, now: DateTime<Utc>) -> Result<Ran, StoreError> {
    let now_ms = store::ms(now);
    let mut ran = Ran::default();
    for _ in 0..MAX_PER_PASS {
        let mut tx = env.store.begin().await?;
        let Some(job) =
            store::jobs::take_due(&mut tx, env.store.backend(), now_ms, now_ms + LEASE_MS).await?
        else {
            tx.rollback().await?;
            break;
        };
        if let Some(run) = detached(&job.kind) {
            // The lease taken above is committed; the work runs outside.
            tx.commit().await?;
            match run(env, job.clone(), now).await {
                Ok(()) => ran.done += 1,
                Err(error) => {
                    tracing::warn!(job = job.id, kind = %job.kind, %error, "job failed");
                    let give_up = job.attempts >= MAX_ATTEMPTS;
                    let retry = now_ms + crate::outbox::backoff_ms(job.attempts) * 30;
                    let mut tx = env.store.begin().await?;
                    let error = error.to_string();
                    store::jobs::failed_detached(&mut tx, job.id, &error, retry, give_up, now_ms)
                        .await?;
                    tx.commit().await?;
                    ran.failed += 1;
                }
            }
            continue;
        }
        let result = match crate::service::schedule::handler(&job.kind) {
            Some(h) => {
                let mut ctx = Ctx::scheduled(env, &mut tx, now);
                match h(&mut ctx, &job).await {
                    Ok(()) => Ok(std::mem::take(&mut ctx.out)),
                    // The database went away: not the job's failure; it
                    // runs again once the database is back.
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => Err(e.to_string()),
                }
            }
            None => Err(format!("no handler for job kind {:?}", job.kind)),
        };
        match result {
            Ok(out) => {
                out.write(&mut tx, now).await?;
                store::jobs::finish(&mut tx, job.id, now_ms).await?;
                tx.commit().await?;
                if out.wakes() {
                    env.outbox_ready.notify_waiters();
                }
                ran.done += 1;
            }
            Err(error) => {
                tx.rollback().await?;
                // `take_due` counted this attempt in the rolled-back transaction.
                let give_up = job.attempts >= MAX_ATTEMPTS
                    || crate::service::schedule::handler(&job.kind).is_none();
                tracing::warn!(job = job.id, kind = %job.kind, %error, give_up, "job failed");
                let retry = now_ms + crate::outbox::backoff_ms(job.attempts) * 30;
                let mut tx = env.store.begin().await?;
                store::jobs::failed(&mut tx, job.id, &error, retry, give_up, now_ms).await?;
                tx.commit().await?;
                ran.failed += 1;
            }
        }
    }
    Ok(ran)
}

/// Work that is found by looking rather than scheduled as a job row: wish
/// batches whose `publish … at TIME` has come (every pass), and, when
/// `overdue` is set (every 10 minutes in [`run`]), the weekly reminder for
/// wishes claimed and not delivered, the pruning of old remembered files
/// (`service::files`) and of old update ids, and the blanking of old sent
/// texts that carried children's data (`service::privacy`). All are idempotent and open
/// their own transactions, so they run beside jobs rather than inside a job
/// handler.
pub async fn sweeps(env: &Env, now: DateTime<Utc>, overdue: bool) -> Result<(), StoreError> {
    publish_due(env, now).await?;
    if overdue {
        remind_overdue(env, now).await?;
        // The slow sweep also forgets old files (kept for replies) and the
        // ids of updates handled long ago.
        let mut tx = env.store.begin().await?;
        crate::service::files::prune(&mut tx, now).await?;
        tx.commit().await?;
        let before = now - chrono::Duration::days(store::updates::KEEP_UPDATE_IDS_DAYS);
        loop {
            let mut tx = env.store.begin().await?;
            let gone = crate::store::updates::prune(&mut tx, crate::store::ms(before), PRUNE_BATCH)
                .await?;
            tx.commit().await?;
            if gone < PRUNE_BATCH as u64 {
                break;
            }
        }
        // Sent texts that carried children's data, past their retention.
        crate::service::privacy::redact_outbox(env, now).await?;
    }
    Ok(())
}

/// A sweep's service: what it did (a count), its messages in its `out`.
type Sweep = for<'a, 'b> fn(&'a mut Ctx<'b, Scheduled>) -> BoxFuture<'a, Result<usize, StoreError>>;

/// Run a sweep in a transaction of its own, with its messages; after the
/// commit, wake the dispatcher if it said anything.
async fn sweep(env: &Env, now: DateTime<Utc>, run: Sweep) -> Result<usize, StoreError> {
    let mut tx = env.store.begin().await?;
    let mut ctx = Ctx::scheduled(env, &mut tx, now);
    let n = run(&mut ctx).await?;
    let out = std::mem::take(&mut ctx.out);
    out.write(&mut tx, now).await?;
    tx.commit().await?;
    if out.wakes() {
        env.outbox_ready.notify_waiters();
    }
    Ok(n)
}

/// Publish every scheduled wish batch whose time has come
/// (`service::wishes::publish_due`). Returns how many.
pub async fn publish_due(env: &Env, now: DateTime<Utc>) -> Result<usize, StoreError> {
    sweep(env, now, |c| {
        Box::pin(crate::service::wishes::publish_due(c))
    })
    .await
}

/// The weekly reminder for wishes claimed and not delivered
/// (`service::wishes::remind_overdue`). Returns how many messages.
pub async fn remind_overdue(env: &Env, now: DateTime<Utc>) -> Result<usize, StoreError> {
    sweep(env, now, |c| {
        Box::pin(crate::service::wishes::remind_overdue(c))
    })
    .await
}

/// Run due jobs until `shutdown` turns true: after each pass, sleep until the
/// next job is due (at most a second, so a job scheduled meanwhile by another
/// replica is not missed for long).
pub async fn run(env: Arc<Env>, mut shutdown: watch::Receiver<bool>) {
    let mut last_sweep: Option<DateTime<Utc>> = None;
    // While the database is unavailable: one log line a minute, not one a pass.
    let mut outage: Option<crate::outage::Outage> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = env.now();
        let sweep_due = last_sweep.is_none_or(|t| now - t >= chrono::Duration::minutes(10));
        let mut unavailable = None;
        match run_due(&env, now).await {
            Err(e @ StoreError::Unavailable(_)) => unavailable = Some(e),
            Err(e) => tracing::error!(error = %e, "job pass failed"),
            Ok(_) => {}
        }
        if unavailable.is_none() {
            match sweeps(&env, now, sweep_due).await {
                Err(e @ StoreError::Unavailable(_)) => unavailable = Some(e),
                Err(e) => tracing::error!(error = %e, "sweep failed"),
                Ok(()) => {}
            }
        }
        if let Some(e) = unavailable {
            let waiting = outage.get_or_insert_with(|| crate::outage::Outage::new("jobs"));
            tokio::select! {
                _ = waiting.wait(0, &e) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        if let Some(o) = outage.take() {
            o.over();
        }
        if sweep_due {
            last_sweep = Some(now);
        }
        let pause = match env.store.conn().await {
            Ok(mut conn) => match store::jobs::next_due(&mut conn).await {
                Ok(Some(at)) => {
                    let wait = at - store::ms(env.now());
                    Duration::from_millis(wait.clamp(10, 1000) as u64)
                }
                _ => Duration::from_secs(1),
            },
            Err(_) => Duration::from_secs(1),
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}
