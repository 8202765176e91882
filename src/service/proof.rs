//! Proof photos (a delivered wish's 圆梦 photo): a photo attached to the
//! command itself, or the photo of the message the command replies to.
//!
//! How a reply finds its photo, on every platform:
//! - Telegram hands the quoted message along (`reply_to_message`), so its
//!   adapter fills [`ReplyRef::attachments`](crate::chat::ReplyRef).
//! - A OneBot `reply` segment carries only the quoted message id. Rather
//!   than asking the implementation with `get_msg` while handling the
//!   update (a network round trip inside the engine's transaction; and
//!   NapCat, Lagrange and go-cqhttp each keep their own, differently sized
//!   message caches and answer image segments with implementation-local
//!   file names), the engine remembers every incoming message that carries
//!   a photo in `recent_photos` ([`remember`]), and a reply is resolved from
//!   there ([`resolve`]). That works the same on every platform (the
//!   console included), needs the OneBot implementation for nothing, and is
//!   deterministic to test. Its limit: a photo posted before the bot was in
//!   the group, or older than [`KEEP_DAYS`], is not known, and the user is
//!   asked to send the photo again.

use chrono::{DateTime, Duration, Utc};

use crate::chat::{AttachmentKind, Incoming};
use crate::store::{self, Conn, StoreError, photos};

/// Photos are remembered this long for replies.
pub const KEEP_DAYS: i64 = 30;

/// Where a command's proof photo stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// The photo's platform file reference.
    Photo(String),
    /// The command replies to a message that carries no (known) photo.
    ReplyWithoutPhoto,
    /// No photo attached and no reply.
    Missing,
}

fn first_photo(attachments: &[crate::chat::Attachment]) -> Option<String> {
    attachments
        .iter()
        .find(|a| a.kind == AttachmentKind::Photo)
        .map(|a| a.file_ref.clone())
}

/// Remember the photo `msg` carries, if any, for later replies to it.
pub async fn remember(conn: &mut Conn, msg: &Incoming) -> Result<(), StoreError> {
    let (Some(id), Some(file_ref)) = (msg.message_id.as_deref(), first_photo(&msg.attachments))
    else {
        return Ok(());
    };
    photos::remember(
        conn,
        msg.platform,
        &msg.chat_id,
        id,
        &msg.sender_id,
        &file_ref,
        store::ms(msg.at),
    )
    .await
}

/// The proof photo of `msg`: attached to it, else carried by the message it
/// replies to (as the platform handed it over, else as remembered).
pub async fn resolve(conn: &mut Conn, msg: &Incoming) -> Result<Proof, StoreError> {
    if let Some(photo) = first_photo(&msg.attachments) {
        return Ok(Proof::Photo(photo));
    }
    let Some(reply) = msg.reply_to.as_ref() else {
        return Ok(Proof::Missing);
    };
    if let Some(photo) = first_photo(&reply.attachments) {
        return Ok(Proof::Photo(photo));
    }
    Ok(
        match photos::find(conn, msg.platform, &msg.chat_id, &reply.message_id).await? {
            Some(photo) => Proof::Photo(photo),
            None => Proof::ReplyWithoutPhoto,
        },
    )
}

/// Forget photos older than [`KEEP_DAYS`] (the scheduler's slow sweep).
pub async fn prune(conn: &mut Conn, now: DateTime<Utc>) -> Result<u64, StoreError> {
    photos::prune(conn, store::ms(now - Duration::days(KEEP_DAYS))).await
}
