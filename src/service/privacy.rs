//! Children's personal data in what the bot has sent: replies with a
//! wish's full details (`/mywishes`, `/wish N` to staff and the holding
//! org's cadres, in private) are marked when written
//! ([`Outgoing::personal`](crate::chat::Outgoing::personal)); once
//! `privacy.outbox_retention_days` have passed, the scheduler's slow sweep
//! blanks their text, a small batch per transaction, keeping the rows
//! (id, status, platform message id) that exactly-once delivery and edits
//! go by.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::domain::Platform;
use crate::service::{Env, Out};
use crate::store::{self, StoreError, audit};

/// Rows blanked per transaction, so the sweep never holds SQLite's write
/// lock for long.
pub const REDACT_BATCH: i64 = 200;

/// Blank the text of every marked row older than the retention, in
/// batches, each audited. Returns how many rows were blanked.
pub async fn redact_outbox(env: &Env, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let days = env.settings.privacy.outbox_retention_days;
    let before = store::ms(now - Duration::days(days));
    let now_ms = store::ms(now);
    let mut total = 0;
    loop {
        let mut tx = env.store.begin().await?;
        let n = Out::redact_personal(&mut *tx, before, now_ms, REDACT_BATCH).await?;
        if n > 0 {
            audit::record(
                &mut *tx,
                &audit::Entry {
                    at_ms: now_ms,
                    platform: Platform::Console,
                    actor: "scheduler",
                    action: "outbox.redact",
                    entity: "outbox",
                    entity_id: None,
                    detail: json!({"rows": n, "written_before": before, "days": days}),
                },
            )
            .await?;
        }
        tx.commit().await?;
        total += n;
        if n < REDACT_BATCH as u64 {
            return Ok(total);
        }
    }
}
