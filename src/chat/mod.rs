//! Platform adapters and the platform-neutral message types they exchange
//! with the engine. Adapters only translate: no bot logic lives here.

pub mod console;
pub mod files;
pub mod onebot;
pub mod pacing;
pub mod qqbot;
pub mod telegram;

/// Long texts are split at line breaks the same way on every platform.
pub use onebot::segments::split_text;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{ChatKind, Platform};

/// One update from a platform, normalised. Serialisable, so an update
/// that failed can be kept and run again (`store::failed`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incoming {
    pub platform: Platform,
    /// The platform's update id; handled at most once.
    pub update_id: String,
    pub chat_id: String,
    pub chat_kind: ChatKind,
    pub chat_title: Option<String>,
    pub sender_id: String,
    pub sender_name: String,
    /// The sender's client language, when the platform tells (`en`, `zh-hans`).
    pub sender_language: Option<String>,
    /// Message text or caption (or the callback data of a button press).
    pub text: String,
    /// Accounts @-mentioned in the message (other than the bot).
    pub mentions: Vec<Mention>,
    /// The bot itself was @-mentioned.
    pub mentions_bot: bool,
    /// The message this one replies to.
    pub reply_to: Option<ReplyRef>,
    pub attachments: Vec<Attachment>,
    /// The sender's platform username (Telegram's `@name`), when it has one:
    /// a roster may name it.
    pub sender_username: Option<String>,
    /// Set when this is a button press; `text` then holds the callback data.
    pub callback_id: Option<String>,
    /// The platform's id of this message, for replies that quote it.
    pub message_id: Option<String>,
    pub at: DateTime<Utc>,
}

impl Incoming {
    /// A plain text message; adapters and tests fill in the rest. The
    /// sender's display name starts as their id (see [`Incoming::from_name`]).
    pub fn text(
        platform: Platform,
        update_id: impl Into<String>,
        chat_id: impl Into<String>,
        chat_kind: ChatKind,
        sender_id: impl Into<String>,
        text: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Incoming {
        let sender_id = sender_id.into();
        Incoming {
            platform,
            update_id: update_id.into(),
            chat_id: chat_id.into(),
            chat_kind,
            chat_title: None,
            sender_name: sender_id.clone(),
            sender_id,
            sender_language: None,
            sender_username: None,
            text: text.into(),
            mentions: Vec::new(),
            mentions_bot: false,
            reply_to: None,
            attachments: Vec::new(),
            callback_id: None,
            message_id: None,
            at,
        }
    }

    /// Set the sender's display name.
    pub fn from_name(mut self, name: impl Into<String>) -> Incoming {
        self.sender_name = name.into();
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    pub user_id: String,
    pub display: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplyRef {
    pub message_id: String,
    pub from_bot: bool,
    pub text: Option<String>,
    /// The quoted message's photos and documents, where the platform hands
    /// them over (Telegram); empty where it gives only the id (OneBot), in
    /// which case `service::proof` looks the id up among recent photos.
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachmentKind {
    Photo,
    Document,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: AttachmentKind,
    /// The platform's file reference (Telegram file_id, OneBot file or url).
    pub file_ref: String,
    pub file_name: Option<String>,
}

/// One message to send, as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub platform: Platform,
    pub chat_id: String,
    pub text: String,
    /// Rows of inline buttons; platforms without buttons show the text only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Vec<Button>>,
    /// Platform message id this message quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Outbox id of an earlier message to edit instead of sending a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_of: Option<i64>,
    /// Accounts to @-mention (platforms that support it render a mention).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mention_users: Vec<String>,
    /// Photos or documents sent along (a notice's attachment), as the
    /// platform's file references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// The text carries children's personal data (a wish's full details).
    /// The outbox row is marked, and its text blanked once
    /// `privacy.outbox_retention_days` have passed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub personal: bool,
}

impl Outgoing {
    pub fn new(platform: Platform, chat_id: impl Into<String>, text: impl Into<String>) -> Self {
        Outgoing {
            platform,
            chat_id: chat_id.into(),
            text: text.into(),
            buttons: Vec::new(),
            reply_to: None,
            edit_of: None,
            mention_users: Vec::new(),
            attachments: Vec::new(),
            personal: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub label: String,
    /// Sent back as the text of a button-press `Incoming`.
    pub data: String,
}

/// What a platform can render; services decide fallbacks from this, never
/// from the platform's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub edit: bool,
    pub buttons: bool,
    pub max_text_chars: usize,
}

/// Chat kinds seen in events, with the store behind them, so a send picks
/// the group or the private route (OneBot and the QQ Bot API address the
/// two differently).
#[derive(Default)]
pub struct ChatKinds(std::sync::Mutex<std::collections::HashMap<String, ChatKind>>);

impl ChatKinds {
    /// Remember a chat's kind from an event.
    pub fn note(&self, chat_id: &str, kind: ChatKind) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(chat_id.to_string(), kind);
    }

    /// Group or private: from events seen, else the store, else group.
    pub async fn of(
        &self,
        store: &crate::store::Store,
        platform: Platform,
        chat_id: &str,
    ) -> Result<ChatKind, SendError> {
        if let Some(k) = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(chat_id)
        {
            return Ok(*k);
        }
        let transient = |e: crate::store::StoreError| SendError::Transient(e.to_string());
        let mut conn = store.conn().await.map_err(transient)?;
        let found = crate::store::chats::find(&mut conn, platform, chat_id)
            .await
            .map_err(transient)?;
        Ok(found.map(|c| c.kind).unwrap_or(ChatKind::Group))
    }
}

/// Serve `app` on `listener` until `shutdown` turns true (the adapters'
/// webhooks).
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    what: &str,
) {
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "{what} stopped");
    }
}

/// A sent message's platform id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message_id: Option<String>,
}

/// Why a send failed, and so what the dispatcher does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The platform asked us to wait (HTTP 429 `retry_after`).
    #[error("rate limited, retry after {0:?}")]
    RetryAfter(Duration),
    /// Network trouble or a 5xx: try again with back-off.
    #[error("transient: {0}")]
    Transient(String),
    /// The bot can no longer write to this chat (kicked, chat deleted).
    #[error("chat gone: {0}")]
    ChatGone(String),
    /// The message itself is refused (bad request); retrying won't help.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The platform takes a message to this chat only as a reply to a
    /// recent one, and none is left (the QQ Bot API, issue 22): keep it, in
    /// order, until the chat speaks (`store::outbox::wake_waiting`).
    #[error("waiting for the chat to speak")]
    WaitForChat,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The sending half of an adapter.
pub trait ChatSender: Send + Sync {
    fn platform(&self) -> Platform;
    fn capabilities(&self) -> Capabilities;
    /// Send `msg`; for an edit, `edit_target` is the platform id of the
    /// message to change.
    fn send<'a>(
        &'a self,
        msg: &'a Outgoing,
        edit_target: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, SendError>>;

    /// [`ChatSender::send`] of outbox row `outbox_id`, for a platform that
    /// keeps per-row state across tries (the QQ Bot API's reply ledger,
    /// issue 22: a resend repeats its `msg_id` + `msg_seq`).
    fn send_row<'a>(
        &'a self,
        outbox_id: i64,
        msg: &'a Outgoing,
        edit_target: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        let _ = outbox_id;
        self.send(msg, edit_target)
    }
}
