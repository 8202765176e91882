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
    /// Set when this is not a message but a platform event that changes a
    /// chat (the bot added or removed, a group migrated): `service::chats`
    /// handles it, and `text` is empty. `sender_id` is who caused it, where
    /// the platform says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<ChatEvent>,
}

/// A platform event that changes what tuanbot knows of a chat. Adapters
/// convert (each platform's own form), `service::chats` applies one rule
/// for every platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    /// The bot was added to the group. `needs_at`: group messages reach it
    /// only when they @-mention it (the QQ Bot API until the group's owner
    /// turns on all messages), which the greeting then says.
    BotAdded { needs_at: bool },
    /// The bot was removed from the group (or left it).
    BotRemoved,
    /// Someone else joined or left the group: the chat is alive.
    MembersChanged,
    /// The group now goes by the id `to` (Telegram: a group that became a
    /// supergroup).
    Migrated { to: String },
    /// The chat's owner allows (or no longer allows) the bot to send
    /// messages unprompted (the QQ Bot API's switch).
    Unprompted { allowed: bool },
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
            event: None,
        }
    }

    /// A platform event about chat `chat_id`, caused by `actor` (empty when
    /// the platform does not say). `update_id` must be stable: derived from
    /// the platform's event, so a redelivery is recognised.
    pub fn event(
        platform: Platform,
        update_id: impl Into<String>,
        chat_id: impl Into<String>,
        chat_kind: ChatKind,
        actor: impl Into<String>,
        event: ChatEvent,
        at: DateTime<Utc>,
    ) -> Incoming {
        let mut msg = Incoming::text(platform, update_id, chat_id, chat_kind, actor, "", at);
        msg.event = Some(event);
        msg
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

/// Where the content of a file to send comes from. Each adapter decides how
/// to hand each form to its platform.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// The content itself (a drawn chart), stored base64 in the outbox row.
    Bytes(#[serde(with = "base64_bytes")] Vec<u8>),
    /// A file on this machine.
    Path(std::path::PathBuf),
    /// An http(s) URL the platform may fetch itself.
    Url(String),
    /// The platform's own reference to a file it holds (a Telegram
    /// `file_id`, a OneBot file), passed back as it was received.
    PlatformId(String),
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            FileSource::Path(p) => write!(f, "Path({})", p.display()),
            FileSource::Url(u) => write!(f, "Url({u})"),
            FileSource::PlatformId(id) => write!(f, "PlatformId({id})"),
        }
    }
}

impl FileSource {
    /// A reference read from a platform (an incoming attachment, a row
    /// written before sources were typed): an http(s) URL, inline
    /// `base64://` data, else the platform's id.
    pub fn from_ref(file_ref: &str) -> FileSource {
        use base64::Engine as _;
        if let Some(data) = file_ref.strip_prefix("base64://")
            && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data)
        {
            return FileSource::Bytes(bytes);
        }
        if files::is_http(file_ref) {
            return FileSource::Url(file_ref.to_string());
        }
        FileSource::PlatformId(file_ref.to_string())
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// A photo or document to send along with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "OutFileRow")]
pub struct OutFile {
    pub kind: AttachmentKind,
    pub source: FileSource,
    pub file_name: Option<String>,
}

impl OutFile {
    /// A photo whose content is `bytes` (a PNG), named `name`.
    pub fn photo_bytes(bytes: Vec<u8>, name: impl Into<String>) -> OutFile {
        OutFile {
            kind: AttachmentKind::Photo,
            source: FileSource::Bytes(bytes),
            file_name: Some(name.into()),
        }
    }

    /// What a log line may say about the file (never its content).
    pub fn describe(&self) -> String {
        match (&self.file_name, &self.source) {
            (Some(name), _) => name.clone(),
            (None, FileSource::Bytes(b)) => format!("{} bytes", b.len()),
            (None, FileSource::Path(p)) => p.display().to_string(),
            (None, FileSource::Url(s) | FileSource::PlatformId(s)) => s.clone(),
        }
    }
}

/// An incoming attachment sent on (a notice's photo): the platform's
/// reference, as received.
impl From<Attachment> for OutFile {
    fn from(a: Attachment) -> OutFile {
        OutFile {
            kind: a.kind,
            source: FileSource::from_ref(&a.file_ref),
            file_name: a.file_name,
        }
    }
}

/// An [`OutFile`] as stored in an outbox row: typed (`source`), or as rows
/// written before sources were typed (`file_ref`, see
/// [`FileSource::from_ref`]).
#[derive(Deserialize)]
struct OutFileRow {
    kind: AttachmentKind,
    #[serde(default)]
    source: Option<FileSource>,
    #[serde(default)]
    file_ref: Option<String>,
    #[serde(default)]
    file_name: Option<String>,
}

impl From<OutFileRow> for OutFile {
    fn from(row: OutFileRow) -> OutFile {
        OutFile {
            kind: row.kind,
            source: row
                .source
                .unwrap_or_else(|| FileSource::from_ref(row.file_ref.as_deref().unwrap_or(""))),
            file_name: row.file_name,
        }
    }
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
    /// Photos or documents sent along (a notice's attachment, a chart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<OutFile>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_rows_of_either_form_read_back() {
        let mut msg = Outgoing::new(Platform::Telegram, "-1", "图表");
        msg.attachments = vec![
            OutFile::photo_bytes(vec![0x89, b'P', b'N', b'G'], "chart.png"),
            OutFile {
                kind: AttachmentKind::Document,
                source: FileSource::Path("/tmp/名单.xlsx".into()),
                file_name: None,
            },
        ];
        let row = serde_json::to_string(&msg).unwrap();
        assert!(row.contains(r#""bytes":"iVBORw==""#), "{row}");
        assert_eq!(serde_json::from_str::<Outgoing>(&row).unwrap(), msg);
        // Rows written before sources were typed carry `file_ref`.
        let old = r#"{"platform":"qq","chat_id":"1","text":"t","attachments":[
            {"kind":"Photo","file_ref":"base64://iVBORw==","file_name":"chart.png"},
            {"kind":"Photo","file_ref":"https://x.example/a.jpg","file_name":null},
            {"kind":"Document","file_ref":"/abc-123","file_name":"名单.xlsx"}]}"#;
        let read: Outgoing = serde_json::from_str(old).unwrap();
        let sources: Vec<FileSource> = read.attachments.into_iter().map(|a| a.source).collect();
        assert_eq!(
            sources,
            vec![
                FileSource::Bytes(vec![0x89, b'P', b'N', b'G']),
                FileSource::Url("https://x.example/a.jpg".into()),
                FileSource::PlatformId("/abc-123".into()),
            ]
        );
    }

    #[test]
    fn events_survive_a_failed_update_row() {
        let at = chrono::Utc::now();
        let msg = Incoming::event(
            Platform::Telegram,
            "migrate:-1:-100",
            "-1",
            ChatKind::Group,
            "",
            ChatEvent::Migrated { to: "-100".into() },
            at,
        );
        let row = serde_json::to_string(&msg).unwrap();
        let back: Incoming = serde_json::from_str(&row).unwrap();
        assert_eq!(back.event, msg.event);
        // Rows kept before events existed have none.
        let plain = serde_json::to_string(&Incoming::text(
            Platform::Qq,
            "1",
            "2",
            ChatKind::Group,
            "3",
            "你好",
            at,
        ))
        .unwrap();
        assert!(!plain.contains("event"), "{plain}");
        let back: Incoming = serde_json::from_str(&plain).unwrap();
        assert_eq!(back.event, None);
    }
}
