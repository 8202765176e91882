//! Draining the persisted outbox: one dispatcher per platform leases due
//! rows, sends them through the platform's [`ChatSender`] in write order, and
//! records the outcome. Rate limits and pacing are the sender's business;
//! the dispatcher handles what the sender reports back.
//!
//! Nothing is lost: a row leaves `pending` only when sent, refused for good,
//! or its chat is gone. Nothing is sent twice: a row is marked sent in its own
//! transaction right after the platform accepted it, and a replica only sends
//! rows it holds the lease on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, watch};

use crate::chat::{ChatSender, SendError};
use crate::clock::Clock;
use crate::store::{self, Store, StoreError, chats, outbox};

/// How long a leased row is ours before another dispatcher may take it, by
/// default (setting `outbox_lease_ms`). It must cover the slowest send of a
/// leased batch; a crashed dispatcher's rows wait this long before another
/// process sends them.
pub const DEFAULT_LEASE_MS: i64 = 60_000;
/// Rows leased per pass.
const BATCH: i64 = 50;
/// How long a message waits for its chat to speak before it is tried again
/// anyway (it is woken as soon as the chat speaks).
const WAIT_FOR_CHAT_MS: i64 = 24 * 3600 * 1000;
/// Transient failures before a message is given up.
const MAX_ATTEMPTS: i64 = 12;

pub struct Dispatcher {
    store: Store,
    sender: Arc<dyn ChatSender>,
    clock: Arc<dyn Clock>,
    ready: Arc<Notify>,
    lease_ms: i64,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub deferred: usize,
    pub failed: usize,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        sender: Arc<dyn ChatSender>,
        clock: Arc<dyn Clock>,
        ready: Arc<Notify>,
    ) -> Self {
        Dispatcher {
            store,
            sender,
            clock,
            ready,
            lease_ms: DEFAULT_LEASE_MS,
        }
    }

    /// Use a different lease length (see [`DEFAULT_LEASE_MS`]).
    pub fn with_lease_ms(mut self, lease_ms: i64) -> Self {
        self.lease_ms = lease_ms.max(1000);
        self
    }

    /// Send everything due now, once. Returns what happened.
    pub async fn drain_due(&self) -> Result<Pass, StoreError> {
        let platform = self.sender.platform();
        let mut pass = Pass::default();
        loop {
            let now = store::ms(self.clock.now());
            let rows = {
                let mut tx = self.store.begin().await?;
                let rows = outbox::lease_due(
                    &mut tx,
                    self.store.backend(),
                    platform,
                    now,
                    now + self.lease_ms,
                    BATCH,
                )
                .await?;
                tx.commit().await?;
                rows
            };
            if rows.is_empty() {
                return Ok(pass);
            }
            let leased = rows.len();
            // A chat whose message could not go out now keeps its later
            // messages back too, so a chat never sees them out of order.
            let mut held: HashSet<String> = HashSet::new();
            for row in rows {
                let now = store::ms(self.clock.now());
                if held.contains(&row.chat_id) {
                    self.retry(row.id, now, None, false).await?;
                    pass.deferred += 1;
                    continue;
                }
                let target = match row.message.edit_of {
                    Some(original) => {
                        let mut conn = self.store.conn().await?;
                        match outbox::platform_message_id(&mut conn, original).await? {
                            Some(id) => Some(id),
                            None => {
                                let status = outbox::status(&mut conn, original).await?;
                                drop(conn);
                                if status.as_deref() == Some("pending") {
                                    held.insert(row.chat_id.clone());
                                    self.retry(row.id, now + 1000, None, false).await?;
                                    pass.deferred += 1;
                                } else {
                                    // The original never went out: send as a new message.
                                    let mut msg = row.message.clone();
                                    msg.edit_of = None;
                                    let result = self.sender.send_row(row.id, &msg, None).await;
                                    self.settle(&row, result, &mut held, &mut pass).await?;
                                }
                                continue;
                            }
                        }
                    }
                    None => None,
                };
                let result = self
                    .sender
                    .send_row(row.id, &row.message, target.as_deref())
                    .await;
                self.settle(&row, result, &mut held, &mut pass).await?;
            }
            if (leased as i64) < BATCH {
                return Ok(pass);
            }
        }
    }

    async fn settle(
        &self,
        row: &outbox::OutboxRow,
        result: Result<crate::chat::Sent, SendError>,
        held: &mut HashSet<String>,
        pass: &mut Pass,
    ) -> Result<(), StoreError> {
        let now = store::ms(self.clock.now());
        crate::metrics::sent(result.is_ok());
        match result {
            Ok(sent) => {
                // Out on the platform: should the database be unavailable
                // now, wait until this is recorded, or the row would go out
                // again once its lease ran out.
                let platform_id = sent.message_id.as_deref();
                crate::outage::retry("sent messages", || async {
                    let mut tx = self.store.begin().await?;
                    outbox::mark_sent(&mut tx, row.id, platform_id, now).await?;
                    tx.commit().await
                })
                .await?;
                pass.sent += 1;
            }
            Err(SendError::RetryAfter(wait)) => {
                held.insert(row.chat_id.clone());
                let at = now + wait.as_millis() as i64;
                let err = format!("429 retry after {}s", wait.as_secs());
                self.retry(row.id, at, Some(&err), false).await?;
                pass.deferred += 1;
            }
            Err(SendError::Transient(e)) => {
                held.insert(row.chat_id.clone());
                if row.attempts + 1 >= MAX_ATTEMPTS {
                    tracing::warn!(id = row.id, error = %e, "giving up after retries");
                    self.give_up(row.id, &e).await?;
                    pass.failed += 1;
                } else {
                    let at = now + backoff_ms(row.attempts + 1);
                    self.retry(row.id, at, Some(&e), true).await?;
                    pass.deferred += 1;
                }
            }
            Err(SendError::ChatGone(e)) => {
                tracing::warn!(chat = %row.chat_id, error = %e, "chat gone; dropping its queue");
                held.insert(row.chat_id.clone());
                let platform = row.platform;
                let chat = row.chat_id.clone();
                let mut tx = self.store.begin().await?;
                outbox::give_up(&mut tx, row.id, "dropped", &e).await?;
                outbox::drop_chat(&mut tx, platform, &chat, &e).await?;
                chats::set_active(&mut tx, platform, &chat, false, now).await?;
                tx.commit().await?;
                pass.failed += 1;
            }
            // Issue 22 (QQ Bot API reply ledger): held until the chat
            // speaks; the adapter wakes it (`outbox::wake_waiting`).
            Err(SendError::WaitForChat) => {
                held.insert(row.chat_id.clone());
                let at = now + WAIT_FOR_CHAT_MS;
                self.retry(row.id, at, Some(outbox::WAITING_FOR_CHAT), false)
                    .await?;
                pass.deferred += 1;
            }
            Err(SendError::Rejected(e)) => {
                tracing::warn!(id = row.id, error = %e, "message rejected by platform");
                self.give_up(row.id, &e).await?;
                pass.failed += 1;
            }
        }
        Ok(())
    }

    async fn retry(
        &self,
        id: i64,
        at: i64,
        error: Option<&str>,
        count: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        outbox::retry_at(&mut tx, id, at, error, count).await?;
        tx.commit().await
    }

    async fn give_up(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        outbox::give_up(&mut tx, id, "failed", error).await?;
        tx.commit().await
    }

    /// Drain until `shutdown` turns true: after each wake-up, and at least
    /// every second for rows that became due by time.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut failures = 0u32;
        // While the database is unavailable: one log line a minute.
        let mut outage: Option<crate::outage::Outage> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.drain_due().await {
                Ok(_) => {
                    failures = 0;
                    if let Some(o) = outage.take() {
                        o.over();
                    }
                }
                Err(e @ StoreError::Unavailable(_)) => {
                    let waiting =
                        outage.get_or_insert_with(|| crate::outage::Outage::new("outbox"));
                    // New rows committed mean the database is back.
                    tokio::select! {
                        _ = waiting.wait(0, &e) => {}
                        _ = self.ready.notified() => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::error!(error = %e, "outbox pass failed");
                }
            }
            let pause = if failures > 0 {
                Duration::from_millis(backoff_ms(i64::from(failures)) as u64)
            } else {
                self.until_next_due().await
            };
            tokio::select! {
                _ = self.ready.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        let max = Duration::from_secs(1);
        let Ok(mut conn) = self.store.conn().await else {
            return max;
        };
        match outbox::next_due(&mut conn, self.sender.platform()).await {
            Ok(Some(at)) => {
                let wait = at - Utc::now().timestamp_millis();
                Duration::from_millis(wait.clamp(10, 1000) as u64)
            }
            _ => max,
        }
    }
}

/// Exponential back-off: 1 s, 2 s, 4 s … capped at 5 minutes.
pub fn backoff_ms(attempt: i64) -> i64 {
    let exp = attempt.clamp(1, 20) - 1;
    (1000i64 << exp).min(300_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(super::backoff_ms(1), 1000);
        assert_eq!(super::backoff_ms(2), 2000);
        assert_eq!(super::backoff_ms(5), 16_000);
        assert_eq!(super::backoff_ms(40), 300_000);
    }
}
