//! [`Out`]: the one way out of a service. Everything a service wants said
//! goes through it: a reply or a message to any chat (now or later), a
//! message folded into one still pending under a key, a board kept under a
//! key, or a message written at once because its row id is needed. Rows
//! are written in the caller's transaction; whoever commits it (the engine,
//! the scheduler) writes what was queued ([`Out::write`]) and wakes the
//! dispatcher after the commit.

use chrono::{DateTime, Utc};

use crate::chat::{Incoming, Outgoing};
use crate::store::db::Db;
use crate::store::{self, StoreError, outbox};

/// A message a service wants sent, before it becomes an outbox row.
#[derive(Debug, Clone)]
pub struct Queued {
    pub message: Outgoing,
    /// Send no earlier than this (coalescing windows, schedules).
    pub not_before: Option<DateTime<Utc>>,
    pub coalesce_key: Option<String>,
}

/// A message still waiting in the outbox under a key, not leased by a
/// dispatcher yet: more may be folded into it ([`Out::fold`]).
#[derive(Debug, Clone)]
pub struct Pending {
    id: i64,
    pub message: Outgoing,
}

/// What a service says, in order.
#[derive(Debug, Default)]
pub struct Out {
    queued: Vec<Queued>,
    /// Rows were written at once ([`Out::enqueue`]) or changed.
    wrote: bool,
}

impl Out {
    pub fn new() -> Out {
        Out::default()
    }

    /// Send a message as soon as possible (to any chat).
    pub fn send(&mut self, message: Outgoing) {
        self.queued.push(Queued {
            message,
            not_before: None,
            coalesce_key: None,
        });
    }

    /// Send a message no earlier than `at`.
    pub fn send_later(&mut self, message: Outgoing, at: DateTime<Utc>) {
        self.queued.push(Queued {
            message,
            not_before: Some(at),
            coalesce_key: None,
        });
    }

    /// Reply to `msg` in its chat, quoting it.
    pub fn reply(&mut self, msg: &Incoming, text: impl Into<String>) {
        self.send(reply_to(msg, text));
    }

    /// Write `message` to the outbox now, to go out at `at_ms` (under `key`,
    /// when given), and return its row id: for a message something else
    /// points at (a board, a card a photo may answer, a notice's copies).
    pub async fn enqueue(
        &mut self,
        conn: &mut impl Db,
        message: &Outgoing,
        at_ms: i64,
        key: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.wrote = true;
        outbox::enqueue(conn, message, at_ms, key, now_ms).await
    }

    /// The message pending under `key`, to fold more into.
    pub async fn pending(conn: &mut impl Db, key: &str) -> Result<Option<Pending>, StoreError> {
        Ok(outbox::pending_coalesced(conn, key)
            .await?
            .map(|row| Pending {
                id: row.id,
                message: row.message,
            }))
    }

    /// Replace `pending` by `fold` of its message; `false` when a
    /// dispatcher leased it meanwhile (then it goes out as it was, and what
    /// was to be folded in needs a message of its own).
    pub async fn fold(
        &mut self,
        conn: &mut impl Db,
        pending: Pending,
        fold: impl FnOnce(Outgoing) -> Outgoing,
    ) -> Result<bool, StoreError> {
        let message = fold(pending.message);
        outbox::replace_pending(conn, pending.id, &message).await
    }

    /// Replace the message pending under `key` (not leased yet) by
    /// `message`; `false` when there is none.
    async fn replace_pending(
        &mut self,
        conn: &mut impl Db,
        key: &str,
        message: &Outgoing,
    ) -> Result<bool, StoreError> {
        Ok(match Out::pending(&mut *conn, key).await? {
            Some(pending) => self.fold(conn, pending, |_| message.clone()).await?,
            None => false,
        })
    }

    /// Coalesce into the message pending under `key`: replace it by
    /// `message` while it is not leased; otherwise queue `message` to go
    /// out at `at` under `key`, so that later ones fold into it.
    pub async fn coalesce(
        &mut self,
        conn: &mut impl Db,
        key: &str,
        message: Outgoing,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !self.replace_pending(&mut *conn, key, &message).await? {
            self.send_keyed(message, at, key);
        }
        Ok(())
    }

    /// [`Out::coalesce`], but a new message is written at once, to go out
    /// at `at_ms`: its row id, or `None` when it was folded into the
    /// pending one.
    pub async fn coalesce_now(
        &mut self,
        conn: &mut impl Db,
        key: &str,
        message: &Outgoing,
        at_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        if self.replace_pending(&mut *conn, key, message).await? {
            return Ok(None);
        }
        let row = self
            .enqueue(conn, message, at_ms, Some(key), now_ms)
            .await?;
        Ok(Some(row))
    }

    /// Queue `message` to go out at `at` under `key` (a message others are
    /// folded into, see [`Out::coalesce`]).
    pub fn send_keyed(&mut self, message: Outgoing, at: DateTime<Utc>, key: &str) {
        self.queued.push(Queued {
            message,
            not_before: Some(at),
            coalesce_key: Some(key.to_string()),
        });
    }

    /// Keep the board under `key` showing `text`: a pending post or edit of
    /// it gets the new text (`true`). Otherwise nothing is written
    /// (`false`), and the caller may [`Out::enqueue`] an edit under `key`.
    pub async fn board(
        &mut self,
        conn: &mut impl Db,
        key: &str,
        text: &str,
    ) -> Result<bool, StoreError> {
        outbox::set_pending_text(conn, key, text).await
    }

    /// Add what another port queued, after what this one has.
    pub fn append(&mut self, other: Out) {
        self.queued.extend(other.queued);
        self.wrote |= other.wrote;
    }

    /// Blank the text of up to `limit` sent messages marked personal and
    /// written before `before_ms`, keeping their rows (see
    /// `service::privacy`). Returns how many.
    pub async fn redact_personal(
        conn: &mut impl Db,
        before_ms: i64,
        now_ms: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        outbox::redact_personal(conn, before_ms, now_ms, limit).await
    }

    /// Drop every unsent message to a chat the bot can no longer write to
    /// (`reason` recorded with each). Returns how many.
    pub async fn drop_chat(
        conn: &mut crate::store::Conn,
        platform: crate::domain::Platform,
        chat_id: &str,
        reason: &str,
    ) -> Result<u64, StoreError> {
        outbox::drop_chat(conn, platform, chat_id, reason).await
    }

    /// Send every unsent message to chat `old` to `new` instead (a group
    /// that moved). Returns how many.
    pub async fn retarget_chat(
        conn: &mut crate::store::Conn,
        platform: crate::domain::Platform,
        old: &str,
        new: &str,
    ) -> Result<u64, StoreError> {
        outbox::retarget_pending(conn, platform, old, new).await
    }

    /// Messages queued and not written yet.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Whether the dispatcher has something new once the transaction
    /// commits: queued messages, or rows written at once.
    pub fn wakes(&self) -> bool {
        self.wrote || !self.queued.is_empty()
    }

    /// Write the queued messages as outbox rows, in order; `now` is when a
    /// message without a time of its own goes out. Returns how many. For
    /// the code that commits (the engine, the scheduler).
    pub async fn write(&self, conn: &mut impl Db, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let now_ms = store::ms(now);
        for q in &self.queued {
            outbox::enqueue(
                &mut *conn,
                &q.message,
                q.not_before.map_or(now_ms, store::ms),
                q.coalesce_key.as_deref(),
                now_ms,
            )
            .await?;
        }
        Ok(self.queued.len())
    }
}

/// A reply to `msg` in its chat, quoting it.
pub fn reply_to(msg: &Incoming, text: impl Into<String>) -> Outgoing {
    let mut m = Outgoing::new(msg.platform, msg.chat_id.clone(), text);
    m.reply_to = msg.message_id.clone();
    m
}
