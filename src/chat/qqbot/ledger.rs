//! The reply ledger: which incoming message each outgoing one answers.
//!
//! The platform takes a message to a group only as a reply to one of the
//! group's messages of the last 5 minutes (a private chat: 60), at most 5
//! replies each, each with its own `msg_seq`; an unprompted message only
//! where the owner allows it. So every part of an outgoing message (a long
//! text's parts, each file) takes a *slot*: the next `msg_seq` of the
//! message it answers (`Outgoing::reply_to`) while that has one left, else
//! of the freshest incoming message of the chat that has one
//! (`store::qqbot::take_slot`). Without one it goes unprompted unless the
//! chat's owner is known to have that off; refused or off, the message
//! waits in the outbox ([`SendError::WaitForChat`]) until the chat speaks,
//! and the adapter wakes it (`store::outbox::wake_waiting`).
//!
//! A part's slot is written down before its request and marked done after
//! (`qqbot_sends`): a resend after a crash or a lost answer skips the parts
//! that went out and repeats the slot of the one in doubt, which the
//! platform then refuses as a duplicate instead of showing it twice.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::QqBot;
use super::api::{Failure, classify};
use crate::chat::{AttachmentKind, FileSource, OutFile, Outgoing, SendError, Sent, split_text};
use crate::domain::{ChatKind, Platform};
use crate::store::qqbot::{self as db, AnchorKind, Slot};
use crate::store::{self, StoreError};

/// How long a group message can be answered (bot-docs `send.md`).
pub const GROUP_WINDOW_MS: i64 = 5 * 60_000;
/// How long a private (C2C) message can be answered.
pub const PRIVATE_WINDOW_MS: i64 = 60 * 60_000;
/// Anchors this close to the end of their window are not used: the request
/// takes time, and the platform's clock is not ours.
const MARGIN_MS: i64 = 20_000;
/// Slots tried for one part before the message waits.
const TRIES: usize = 8;

/// One request's worth of a message.
enum Part<'a> {
    Text(&'a str),
    Media(&'a OutFile),
}

fn store_err(e: StoreError) -> SendError {
    SendError::Transient(e.to_string())
}

impl QqBot {
    /// Send `msg` (outbox row `outbox_id`, when it is one) part by part,
    /// each in reply to a slot of the ledger.
    pub(super) async fn deliver(
        &self,
        outbox_id: Option<i64>,
        msg: &Outgoing,
    ) -> Result<Sent, SendError> {
        let kind = self.kind_of(&msg.chat_id).await?;
        let texts = split_text(&msg.text, self.caps().max_text_chars);
        let mut parts: Vec<Part> = texts
            .iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| Part::Text(t))
            .collect();
        parts.extend(msg.attachments.iter().map(Part::Media));
        let mut done = Vec::with_capacity(parts.len());
        let mut priors = Vec::with_capacity(parts.len());
        for i in 0..parts.len() {
            let prior = match outbox_id {
                Some(id) => {
                    let mut conn = self.engine.store.conn().await.map_err(store_err)?;
                    db::slot_of(&mut conn, id, i as i64)
                        .await
                        .map_err(store_err)?
                }
                None => None,
            };
            done.push(prior.as_ref().is_some_and(|(_, d)| *d));
            priors.push(prior.map(|(s, _)| s));
        }
        let remaining = done.iter().filter(|d| !**d).count();
        if remaining == 0 {
            return Ok(Sent { message_id: None });
        }
        let windowed = kind == ChatKind::Group;
        let mut pacer = self.pacer.lock().await;
        pacer
            .check(&msg.chat_id, remaining, Instant::now())
            .map_err(SendError::RetryAfter)?;
        let mut first = None;
        let mut sent_one = false;
        for (i, part) in parts.iter().enumerate() {
            if done[i] {
                continue;
            }
            if sent_one {
                // Later parts keep the bot's rate too (bounded wait).
                for _ in 0..100 {
                    match pacer.check_part(&msg.chat_id, Instant::now()) {
                        Ok(()) => break,
                        Err(wait) => tokio::time::sleep(wait).await,
                    }
                }
            }
            let id = self
                .send_part(
                    (outbox_id, i as i64),
                    (kind, &msg.chat_id),
                    msg.reply_to.as_deref(),
                    part,
                    priors[i].take(),
                )
                .await?;
            pacer.record_in(&msg.chat_id, Instant::now(), windowed);
            sent_one = true;
            if first.is_none() {
                first = id;
            }
        }
        Ok(Sent { message_id: first })
    }

    /// One part: take a slot (or reuse the one it had), post, and settle
    /// what the platform said.
    async fn send_part(
        &self,
        (outbox_id, part_no): (Option<i64>, i64),
        (kind, chat): (ChatKind, &str),
        answers: Option<&str>,
        part: &Part<'_>,
        mut prior: Option<Slot>,
    ) -> Result<Option<String>, SendError> {
        let route = match kind {
            ChatKind::Group => "groups",
            ChatKind::Private => "users",
        };
        let path = format!("/v2/{route}/{}/messages", url_segment(chat));
        let body = match part {
            Part::Text(t) => json!({"content": t, "msg_type": 0}),
            Part::Media(a) => {
                let info = self.upload(route, chat, a).await?;
                json!({"content": " ", "msg_type": 7, "media": {"file_info": info}})
            }
        };
        let window = match kind {
            ChatKind::Group => GROUP_WINDOW_MS,
            ChatKind::Private => PRIVATE_WINDOW_MS,
        };
        for _ in 0..TRIES {
            let now_ms = store::ms(self.engine.now());
            let since = now_ms - window + MARGIN_MS;
            let slot = match prior.take() {
                Some(s) if !s.anchor_id.is_empty() && s.received_at >= since => Some(s),
                _ => self.take_slot(chat, since, answers).await?,
            };
            let mut req = body.clone();
            match &slot {
                Some(s) => {
                    let field = match s.kind {
                        AnchorKind::Message => "msg_id",
                        AnchorKind::Event => "event_id",
                    };
                    req[field] = Value::String(s.anchor_id.clone());
                    req["msg_seq"] = json!(s.seq);
                    self.note(outbox_id, part_no, chat, s, false, now_ms)
                        .await?;
                }
                None => {
                    let mut conn = self.engine.store.conn().await.map_err(store_err)?;
                    let state = db::chat_state(&mut conn, chat).await.map_err(store_err)?;
                    if state.active_allowed == Some(false) {
                        return Err(SendError::WaitForChat);
                    }
                }
            }
            let result = self.api.call(Some(&req), &path).await;
            let now_ms = store::ms(self.engine.now());
            let unprompted = Slot {
                anchor_id: String::new(),
                kind: AnchorKind::Message,
                seq: 0,
                received_at: now_ms,
            };
            let error = match result {
                Ok(v) => {
                    self.note(
                        outbox_id,
                        part_no,
                        chat,
                        slot.as_ref().unwrap_or(&unprompted),
                        true,
                        now_ms,
                    )
                    .await?;
                    return Ok(v["id"].as_str().map(String::from));
                }
                Err(e) => e,
            };
            match (classify(&error), &slot) {
                (Failure::Duplicate, Some(s)) => {
                    // An earlier try of this very slot got through.
                    self.note(outbox_id, part_no, chat, s, true, now_ms).await?;
                    return Ok(None);
                }
                (Failure::AnchorDead | Failure::ActiveRefused, Some(s)) => {
                    tracing::debug!(%chat, anchor = %s.anchor_id, error = %error, "QQ Bot anchor refused; next");
                    self.spent(outbox_id, part_no, chat, &s.anchor_id).await?;
                }
                (Failure::ActiveRefused, None) => {
                    tracing::info!(%chat, error = %error, "QQ Bot: unprompted messages are off here; waiting for the chat to speak");
                    let mut tx = self.engine.store.begin().await.map_err(store_err)?;
                    db::set_active_allowed(&mut tx, chat, false, now_ms)
                        .await
                        .map_err(store_err)?;
                    tx.commit().await.map_err(store_err)?;
                    return Err(SendError::WaitForChat);
                }
                (Failure::ChatGone, _) => return Err(SendError::ChatGone(error.to_string())),
                (Failure::RateLimited, _) => {
                    return Err(SendError::RetryAfter(std::time::Duration::from_secs(1)));
                }
                (Failure::Transient | Failure::AnchorDead | Failure::Duplicate, _) => {
                    return Err(SendError::Transient(error.to_string()));
                }
                (Failure::Rejected, _) => return Err(SendError::Rejected(error.to_string())),
            }
        }
        Err(SendError::WaitForChat)
    }

    async fn take_slot(
        &self,
        chat: &str,
        since: i64,
        prefer: Option<&str>,
    ) -> Result<Option<Slot>, SendError> {
        let mut tx = self.engine.store.begin().await.map_err(store_err)?;
        let slot = db::take_slot(&mut tx, chat, since, prefer)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(slot)
    }

    /// Write down the slot a part goes out on (`done`: it went out).
    async fn note(
        &self,
        outbox_id: Option<i64>,
        part: i64,
        chat: &str,
        slot: &Slot,
        done: bool,
        now_ms: i64,
    ) -> Result<(), SendError> {
        let Some(id) = outbox_id else { return Ok(()) };
        let mut tx = self.engine.store.begin().await.map_err(store_err)?;
        db::record_send(&mut tx, id, part, chat, slot, done, now_ms)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    /// The platform refused replies to this anchor: no more slots from it,
    /// and the part takes a new one.
    async fn spent(
        &self,
        outbox_id: Option<i64>,
        part: i64,
        chat: &str,
        anchor: &str,
    ) -> Result<(), SendError> {
        let mut tx = self.engine.store.begin().await.map_err(store_err)?;
        db::exhaust(&mut tx, chat, anchor)
            .await
            .map_err(store_err)?;
        if let Some(id) = outbox_id {
            db::forget_send(&mut tx, id, part)
                .await
                .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)
    }

    /// Upload a photo or file for sending (`srv_send_msg: false`): a URL as
    /// is, the content or a local file as `file_data`. Answers the
    /// `file_info` to send.
    async fn upload(&self, route: &str, chat: &str, a: &OutFile) -> Result<String, SendError> {
        use base64::Engine as _;
        let file_type = match a.kind {
            AttachmentKind::Photo => 1,
            AttachmentKind::Document => 4,
        };
        let mut body = json!({"file_type": file_type, "srv_send_msg": false});
        let b64 =
            |bytes: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        match &a.source {
            FileSource::Bytes(bytes) => body["file_data"] = b64(bytes),
            FileSource::Url(u) => body["url"] = Value::String(u.clone()),
            // The platform keeps no files of ours to name: an id is a URL
            // or a file here.
            FileSource::PlatformId(id) if crate::chat::files::is_http(id) => {
                body["url"] = Value::String(id.clone())
            }
            FileSource::PlatformId(path) => body["file_data"] = b64(&read_local(path).await?),
            FileSource::Path(path) => {
                body["file_data"] = b64(&read_local(&path.display().to_string()).await?)
            }
        }
        if let Some(name) = &a.file_name {
            body["file_name"] = Value::String(name.clone());
        }
        let path = format!("/v2/{route}/{}/files", url_segment(chat));
        match self.api.call(Some(&body), &path).await {
            Ok(v) => v["file_info"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
                .ok_or_else(|| SendError::Transient("files answered without file_info".into())),
            Err(e) => Err(match classify(&e) {
                Failure::ChatGone => SendError::ChatGone(e.to_string()),
                Failure::RateLimited => SendError::RetryAfter(std::time::Duration::from_secs(1)),
                Failure::Rejected => SendError::Rejected(e.to_string()),
                _ => SendError::Transient(e.to_string()),
            }),
        }
    }
}

/// A local file to send.
async fn read_local(path: &str) -> Result<Vec<u8>, SendError> {
    crate::chat::files::read_local(path)
        .await
        .map_err(|e| SendError::Rejected(format!("file to send: {e}")))
}

/// An openid as one path segment (they are URL-safe; anything else is
/// escaped so it cannot change the path).
fn url_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// Is `chat` waiting for its next message before the bot may write to it
/// (`Some(since ms)`), for status views.
pub async fn waiting_since(
    conn: &mut impl crate::store::db::Db,
    chat: &str,
) -> Result<Option<i64>, StoreError> {
    crate::store::outbox::waiting_since(conn, Platform::QqBot, chat).await
}
