//! Scheduling jobs from services, and the services that run them: a job
//! row is written in the transaction of the change that wants it
//! ([`schedule`]); the scheduler (`crate::jobs`) runs it when due by the
//! handler registered here for its kind ([`handler`]), in a
//! [`Ctx`] with no incoming message.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Ctx, Scheduled};
use crate::chat::{BoxFuture, Outgoing};
use crate::store::jobs::Job;
use crate::store::{self, Conn, StoreError};

/// A job handler: performs the job's effect in `ctx.tx`. An error rolls the
/// whole job back and schedules a retry.
pub type Handler =
    for<'a, 'b> fn(&'a mut Ctx<'b, Scheduled>, &'a Job) -> BoxFuture<'a, Result<(), StoreError>>;

/// The registered handlers, by kind. A kind not listed here is given up at
/// once (and logged), never retried forever.
const HANDLERS: &[(&str, Handler)] = &[
    ("message", |c, j| Box::pin(send_message(c, j))),
    ("notice.send", |c, j| {
        Box::pin(super::notices::job_send(c, j))
    }),
    ("notice.remind", |c, j| {
        Box::pin(super::notices::job_remind(c, j))
    }),
    ("notice.summary", |c, j| {
        Box::pin(super::notices::job_summary(c, j))
    }),
    ("event.close", |c, j| {
        Box::pin(super::events::job_close(c, j))
    }),
    ("event.remind", |c, j| {
        Box::pin(super::events::job_remind(c, j))
    }),
];

pub fn handler(kind: &str) -> Option<Handler> {
    HANDLERS.iter().find(|(k, _)| *k == kind).map(|(_, h)| *h)
}

/// Schedule a job of `kind` with a serialisable payload, in the caller's
/// transaction (so the job exists exactly when the change that wants it does).
pub async fn schedule(
    conn: &mut Conn,
    kind: &str,
    payload: &serde_json::Value,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    store::jobs::schedule(
        conn,
        kind,
        &payload.to_string(),
        store::ms(run_at),
        store::ms(now),
    )
    .await
}

/// Read a job's payload, or fail the job as corrupt.
pub fn payload<T: for<'de> Deserialize<'de>>(job: &Job) -> Result<T, StoreError> {
    serde_json::from_str(&job.payload)
        .map_err(|e| StoreError::Corrupt(format!("job {} payload: {e}", job.id)))
}

/// The built-in `message` kind: send `{"message": Outgoing}` at `run_at`.
async fn send_message(ctx: &mut Ctx<'_, Scheduled>, job: &Job) -> Result<(), StoreError> {
    #[derive(Deserialize)]
    struct P {
        message: Outgoing,
    }
    let p: P = payload(job)?;
    ctx.out.send(p.message);
    Ok(())
}
