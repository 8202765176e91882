//! The QQ Bot API's reply ledger (issue 22; logic in `chat::qqbot::ledger`).
//!
//! The platform takes a group or private message only as a reply to a
//! recent incoming message (an *anchor*): within a window, at most
//! [`REPLIES_PER_ANCHOR`] replies each, every one with its own `msg_seq`.
//! `qqbot_anchors` holds the anchors and how many replies each has carried;
//! `qqbot_sends` which anchor and sequence number an outbox row went out on
//! (so a resend after a crash repeats them and the platform refuses the
//! duplicate); `qqbot_chats` the owner's switch for unprompted messages.
//! Nothing here is audited: it is the platform's bookkeeping, pruned by age.

use super::Result;
use super::db::{Db, Get, query};

/// Replies the platform accepts per incoming message.
pub const REPLIES_PER_ANCHOR: i64 = 5;

/// What an anchor is: a message id (sent as `msg_id`) or an event id (sent
/// as `event_id`: the bot added to a group, the owner's switch turned on, a
/// user adding the bot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorKind {
    Message,
    Event,
}

impl AnchorKind {
    fn as_str(self) -> &'static str {
        match self {
            AnchorKind::Message => "msg",
            AnchorKind::Event => "event",
        }
    }

    fn parse(s: &str) -> AnchorKind {
        if s == "event" {
            AnchorKind::Event
        } else {
            AnchorKind::Message
        }
    }
}

/// A reply slot: answer `anchor_id` with this `msg_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub anchor_id: String,
    pub kind: AnchorKind,
    pub seq: i64,
    /// When the anchor arrived (ms), so a reused slot can be checked for age.
    pub received_at: i64,
}

/// Remember an incoming message or event that replies may answer. A
/// redelivered one changes nothing.
pub async fn record_anchor(
    conn: &mut impl Db,
    chat_id: &str,
    anchor_id: &str,
    kind: AnchorKind,
    at_ms: i64,
) -> Result<()> {
    query(
        "INSERT INTO qqbot_anchors (chat_id, anchor_id, kind, received_at, used) \
         VALUES ($1, $2, $3, $4, 0) ON CONFLICT (chat_id, anchor_id) DO NOTHING",
    )
    .bind(chat_id)
    .bind(anchor_id)
    .bind(kind.as_str())
    .bind(at_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Take the next reply slot of `chat_id`: of the anchor `prefer` (the
/// message being answered) when it arrived at or after `since_ms` and has a
/// reply left, else of the freshest such anchor. The update is guarded by
/// the count it read, so two dispatchers never take one slot.
pub async fn take_slot(
    conn: &mut impl Db,
    chat_id: &str,
    since_ms: i64,
    prefer: Option<&str>,
) -> Result<Option<Slot>> {
    for _ in 0..8 {
        let mut row = None;
        if let Some(anchor) = prefer {
            row = query(
                "SELECT anchor_id, kind, used, received_at FROM qqbot_anchors \
                 WHERE chat_id = $1 AND anchor_id = $2 AND received_at >= $3 AND used < $4",
            )
            .bind(chat_id)
            .bind(anchor)
            .bind(since_ms)
            .bind(REPLIES_PER_ANCHOR)
            .fetch_optional(&mut *conn)
            .await?;
        }
        if row.is_none() {
            row = query(
                "SELECT anchor_id, kind, used, received_at FROM qqbot_anchors \
                 WHERE chat_id = $1 AND received_at >= $2 AND used < $3 \
                 ORDER BY received_at DESC, anchor_id DESC LIMIT 1",
            )
            .bind(chat_id)
            .bind(since_ms)
            .bind(REPLIES_PER_ANCHOR)
            .fetch_optional(&mut *conn)
            .await?;
        }
        let Some(row) = row else { return Ok(None) };
        let anchor_id: String = row.get("anchor_id")?;
        let kind: String = row.get("kind")?;
        let used: i64 = row.get("used")?;
        let received_at: i64 = row.get("received_at")?;
        let took = query(
            "UPDATE qqbot_anchors SET used = used + 1 \
             WHERE chat_id = $1 AND anchor_id = $2 AND used = $3",
        )
        .bind(chat_id)
        .bind(anchor_id.as_str())
        .bind(used)
        .execute(&mut *conn)
        .await?;
        if took == 1 {
            return Ok(Some(Slot {
                anchor_id,
                kind: AnchorKind::parse(&kind),
                seq: used + 1,
                received_at,
            }));
        }
    }
    Ok(None)
}

/// The platform refused replies to this anchor (expired, used up): take no
/// more slots from it.
pub async fn exhaust(conn: &mut impl Db, chat_id: &str, anchor_id: &str) -> Result<()> {
    query("UPDATE qqbot_anchors SET used = $1 WHERE chat_id = $2 AND anchor_id = $3")
        .bind(REPLIES_PER_ANCHOR)
        .bind(chat_id)
        .bind(anchor_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The slot part `part` of outbox row `outbox_id` was given before, and
/// whether the platform took it (a resend after a crash, a refusal or an
/// unanswered request). An unprompted part has an empty `anchor_id`.
pub async fn slot_of(
    conn: &mut impl Db,
    outbox_id: i64,
    part: i64,
) -> Result<Option<(Slot, bool)>> {
    let row = query(
        "SELECT anchor_id, kind, anchor_at, msg_seq, done FROM qqbot_sends \
         WHERE outbox_id = $1 AND part = $2",
    )
    .bind(outbox_id)
    .bind(part)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        let kind: String = row.get("kind")?;
        let done: i64 = row.get("done")?;
        Ok((
            Slot {
                anchor_id: row.get("anchor_id")?,
                kind: AnchorKind::parse(&kind),
                seq: row.get("msg_seq")?,
                received_at: row.get("anchor_at")?,
            },
            done != 0,
        ))
    })
    .transpose()
}

/// Record the slot a part goes out on (before the request), or, with
/// `done`, that the platform took it.
pub async fn record_send(
    conn: &mut impl Db,
    outbox_id: i64,
    part: i64,
    chat_id: &str,
    slot: &Slot,
    done: bool,
    at_ms: i64,
) -> Result<()> {
    query(
        "INSERT INTO qqbot_sends \
         (outbox_id, part, chat_id, anchor_id, kind, anchor_at, msg_seq, at, done) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (outbox_id, part) DO UPDATE \
         SET anchor_id = $4, kind = $5, anchor_at = $6, msg_seq = $7, at = $8, done = $9",
    )
    .bind(outbox_id)
    .bind(part)
    .bind(chat_id)
    .bind(slot.anchor_id.as_str())
    .bind(slot.kind.as_str())
    .bind(slot.received_at)
    .bind(slot.seq)
    .bind(at_ms)
    .bind(i64::from(done))
    .execute(conn)
    .await?;
    Ok(())
}

/// Forget a part's slot (it was refused; the next try takes a new one).
pub async fn forget_send(conn: &mut impl Db, outbox_id: i64, part: i64) -> Result<()> {
    query("DELETE FROM qqbot_sends WHERE outbox_id = $1 AND part = $2 AND done = 0")
        .bind(outbox_id)
        .bind(part)
        .execute(conn)
        .await?;
    Ok(())
}

/// What is known of a chat: the owner's switch for unprompted messages
/// (`None`: never told) and whether every message of it reaches the bot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatState {
    pub active_allowed: Option<bool>,
    pub all_messages: bool,
}

pub async fn chat_state(conn: &mut impl Db, chat_id: &str) -> Result<ChatState> {
    let row = query("SELECT active_allowed, all_messages FROM qqbot_chats WHERE chat_id = $1")
        .bind(chat_id)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(ChatState::default());
    };
    let active: Option<i64> = row.get("active_allowed")?;
    let all: i64 = row.get("all_messages")?;
    Ok(ChatState {
        active_allowed: active.map(|a| a != 0),
        all_messages: all != 0,
    })
}

/// Set the owner's switch for unprompted messages.
pub async fn set_active_allowed(
    conn: &mut impl Db,
    chat_id: &str,
    allowed: bool,
    now_ms: i64,
) -> Result<()> {
    query(
        "INSERT INTO qqbot_chats (chat_id, active_allowed, all_messages, changed_at) \
         VALUES ($1, $2, 0, $3) ON CONFLICT (chat_id) DO UPDATE \
         SET active_allowed = $2, changed_at = $3",
    )
    .bind(chat_id)
    .bind(i64::from(allowed))
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The group delivers every message, not only those that @ the bot.
pub async fn set_all_messages(conn: &mut impl Db, chat_id: &str, now_ms: i64) -> Result<()> {
    query(
        "INSERT INTO qqbot_chats (chat_id, active_allowed, all_messages, changed_at) \
         VALUES ($1, NULL, 1, $2) ON CONFLICT (chat_id) DO UPDATE \
         SET all_messages = 1, changed_at = $2 WHERE qqbot_chats.all_messages = 0",
    )
    .bind(chat_id)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forget anchors and send records older than `before_ms` (they can no
/// longer be answered, and a row that old is long sent or given up).
pub async fn prune(conn: &mut impl Db, before_ms: i64) -> Result<u64> {
    let a = query("DELETE FROM qqbot_anchors WHERE received_at < $1")
        .bind(before_ms)
        .execute(&mut *conn)
        .await?;
    let s = query("DELETE FROM qqbot_sends WHERE at < $1")
        .bind(before_ms)
        .execute(&mut *conn)
        .await?;
    Ok(a + s)
}
