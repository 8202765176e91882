//! QQ through the official QQ Bot API (QQ 开放平台, issue 22): a bot the
//! platform registers, identified by openids, with no QQ account to lose.
//!
//! # What this relies on, and where it is written down
//!
//! From tencent-connect/bot-docs (`docs/develop/api-v2`, 2025-04):
//! - **Token** (`dev-prepare/interface-framework/api-use.md`): `POST
//!   https://bots.qq.com/app/getAppAccessToken` with `{"appId",
//!   "clientSecret"}` answers `{"access_token", "expires_in"}` (seconds,
//!   ≤ 7200, a string in the example). A new token is handed out only in the
//!   last 60 s; the old one stays valid meanwhile. Requests carry
//!   `Authorization: QQBot {token}` (and, as the SDKs do, `X-Union-Appid`).
//!   Bases: `https://api.sgroup.qq.com`, sandbox
//!   `https://sandbox.api.sgroup.qq.com` (nonebot/adapter-qq `config.py`).
//! - **Gateway** (`event-emit.md`, `openapi/wss/url_get.md`): `GET /gateway`
//!   → `{"url"}`. Payloads `{"op","d","s","t","id"}`. Op 10 Hello
//!   (`heartbeat_interval` ms) → op 2 Identify `{"token": "QQBot …",
//!   "intents", "shard": [0, 1], "properties"}` → dispatch `READY`
//!   (`session_id`, `user`); op 1 Heartbeat `{"d": last s or null}` → op 11
//!   ACK; after a drop op 6 Resume `{"token","session_id","seq"}` → missed
//!   events, then `RESUMED`; op 7 Reconnect (resume); op 9 Invalid Session
//!   (identify anew). Close codes (`gateway/error/error.md`): 4009 resume;
//!   4013 invalid intent, 4014 intent not permitted; 4914/4915 bot taken
//!   down/banned; others identify anew. The docs say the WebSocket route is
//!   being retired in favour of webhooks; both are here.
//! - **Intents**: `GROUP_AND_C2C_EVENT` 1<<25 covers `C2C_MESSAGE_CREATE`,
//!   `GROUP_AT_MESSAGE_CREATE`, `FRIEND_ADD/DEL`, `C2C_MSG_RECEIVE/REJECT`,
//!   `GROUP_ADD_ROBOT/DEL_ROBOT`, `GROUP_MSG_RECEIVE/REJECT`. Where
//!   `GROUP_MESSAGE_CREATE` (every group message, the owner's 「获取群内全部消息」)
//!   belongs is disputed: nonebot/adapter-qq lists it beside 1<<25, a Rust
//!   bot uses 1<<28 (FORUMS_EVENT in bot-docs). So `qqbot.intents` is a
//!   setting whose default asks for both; the gateway's refusal (4013/4014)
//!   drops all but the first and is logged, and READY logs what was taken.
//! - **Webhook** (`event-emit.md`, `sign.md`; see [`sign`]): HTTPS POSTs
//!   (ports 80, 443, 8080, 8443) signed with ed25519 (`X-Signature-Ed25519`
//!   over `X-Signature-Timestamp` + body, the key from the bot secret); op 13
//!   `{"plain_token","event_ts"}` is answered `{"plain_token","signature"}`;
//!   a dispatch is acknowledged `{"op": 12}`.
//! - **Events** (payloads as nonebot/adapter-qq `event.py`, `models/qq.py`
//!   read them): group messages carry `id`, `content` (the @ of the bot is
//!   not in it; other @s as `<@openid>`), `group_openid`,
//!   `author.member_openid`, `mentions[]` (`is_you`), `attachments[]`
//!   (`content_type`, `filename`, `url`, sometimes without scheme); C2C
//!   messages `author.user_openid`; robot events `group_openid`,
//!   `op_member_openid`, `timestamp`.
//! - **Sending** (`server-inter/message/send-receive/send.md`): `POST
//!   /v2/groups/{group_openid}/messages` and `/v2/users/{openid}/messages`
//!   with `content`, `msg_type` (0 text, 7 media), `msg_id` (the message
//!   answered) or `event_id` (`GROUP_ADD_ROBOT`, `GROUP_MSG_RECEIVE`,
//!   `FRIEND_ADD`, `C2C_MSG_RECEIVE`), and `msg_seq` (same `msg_id` +
//!   `msg_seq` twice is refused). A group reply within 5 minutes, a private
//!   one within 60, at most 5 per message. Unprompted ("active") messages
//!   were withdrawn on 2025-04-21 except where the group's owner turns on
//!   「机器人主动在群聊内发言」. Media: `POST /v2/{groups|users}/{id}/files`
//!   `{"file_type" (1 image, 4 file), "url" | "file_data" (base64),
//!   "srv_send_msg": false}` → `file_info`, sent as `msg_type` 7 with
//!   `media.file_info` (`rich-media.md`; `file_data` as nonebot sends it).
//!   No editing. `22009` is "msg limit exceed".
//! - **Error codes** not in bot-docs, from public adapters found by code
//!   search (see [`api::classify`]): `40034102` / `40034105` unprompted
//!   messages not permitted / switched off; `40034005`, `40034031`, `304027`,
//!   `40034024`–`27`, `40034128` the `msg_id` is expired or used up;
//!   `40054005` duplicate `msg_seq`; `40054003`, `40034101` not in the group.
//!
//! # How it fits
//!
//! Events become [`Incoming`](crate::chat::Incoming)s for `Engine::submit` (group-commit writer),
//! in arrival order; the bot's membership and the owner's switch go there
//! too, as chat events (`service::chats` applies them), after this adapter
//! records the event as something to reply to ([`QqBot::on_event`]).
//! Sending is [`ledger`]: each message
//! answers the freshest incoming message of its chat that has a reply left,
//! else goes unprompted where the owner allows it, else waits in the outbox
//! (`SendError::WaitForChat`) until the chat speaks.

pub mod api;
pub mod convert;
pub mod gateway;
pub mod ledger;
pub mod sign;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use self::convert::Event;
use super::{BoxFuture, Capabilities, ChatEvent, ChatSender, Incoming, Outgoing, SendError, Sent};
use crate::chat::pacing::{PaceLimits, Pacer};
use crate::config::QqBotSettings;
use crate::domain::{ChatKind, Platform};
use crate::engine::Engine;
use crate::store::qqbot::{self as ledger_db, AnchorKind};
use crate::store::{self, StoreError, outbox};

/// Most events handled in one anchor transaction.
const BATCH: usize = 256;
/// How long anchors and send records are kept (a day: far past any window).
const KEEP_ANCHORS_MS: i64 = 24 * 3600 * 1000;

/// One dispatch to handle, and who waits for it (the webhook answers after
/// its event is handled).
struct Inbound {
    event: Event,
    done: Option<oneshot::Sender<bool>>,
}

/// The engine's way to files posted to the bot: attachments are URLs.
struct UrlFiles;

impl crate::engine::FileFetcher for UrlFiles {
    fn fetch<'a>(
        &'a self,
        file_ref: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, crate::chat::files::FetchError>> {
        Box::pin(async move {
            if !crate::chat::files::is_http(file_ref) {
                return Err(crate::chat::files::FetchError::NotHttp(
                    file_ref.to_string(),
                ));
            }
            crate::chat::files::http_get(file_ref).await
        })
    }
}

/// The QQ Bot API adapter.
pub struct QqBot {
    engine: Arc<Engine>,
    cfg: QqBotSettings,
    api: api::Api,
    /// Held across a whole send, so pacing decisions never race.
    pacer: tokio::sync::Mutex<Pacer>,
    /// Chat kinds seen in events, so a message picks the group or user route.
    kinds: crate::chat::ChatKinds,
    inbound: mpsc::UnboundedSender<Inbound>,
    inbound_rx: Mutex<Option<mpsc::UnboundedReceiver<Inbound>>>,
    /// Gateway intents as now asked for (narrowed after a refusal).
    intents: Mutex<u32>,
}

/// The adapter's running tasks.
pub struct Running {
    /// Where the webhook listens (useful with port 0).
    pub webhook_addr: Option<SocketAddr>,
    pub tasks: Vec<JoinHandle<()>>,
}

impl QqBot {
    /// A new adapter over `engine`, reading `engine.settings.qqbot`; it
    /// registers its capabilities and file fetcher with the engine.
    pub fn new(engine: Arc<Engine>) -> anyhow::Result<Arc<QqBot>> {
        let cfg = engine.settings.qqbot.clone();
        let api = api::Api::new(&cfg)?;
        let bits = cfg.intent_bits()?;
        let (inbound, inbound_rx) = mpsc::unbounded_channel();
        let bot = Arc::new(QqBot {
            pacer: tokio::sync::Mutex::new(Pacer::new(PaceLimits::qqbot(&cfg))),
            intents: Mutex::new(bits.iter().fold(0, |a, b| a | b)),
            engine,
            cfg,
            api,
            kinds: Default::default(),
            inbound,
            inbound_rx: Mutex::new(Some(inbound_rx)),
        });
        bot.engine.set_capabilities(Platform::QqBot, bot.caps());
        bot.engine
            .set_file_fetcher(Platform::QqBot, Arc::new(UrlFiles));
        Ok(bot)
    }

    fn caps(&self) -> Capabilities {
        Capabilities {
            edit: false,
            buttons: false,
            max_text_chars: self.cfg.max_text_chars.max(100),
        }
    }

    /// Start the event worker and the configured transport. The webhook's
    /// listener is bound before this returns, so a taken port fails here.
    pub async fn start(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Running> {
        let mut tasks = Vec::new();
        let rx = self
            .inbound_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rx) = rx {
            tasks.push(tokio::spawn(self.clone().worker(rx, shutdown.clone())));
        }
        let mut webhook_addr = None;
        if self.cfg.transport == "webhook" {
            let addr = self.cfg.webhook_listen.clone().unwrap_or_default();
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| anyhow::anyhow!("qqbot.webhook_listen {addr}: {e}"))?;
            webhook_addr = listener.local_addr().ok();
            tracing::info!(addr = ?webhook_addr, "QQ Bot webhook listening");
            tasks.push(tokio::spawn(webhook::serve(
                self.clone(),
                listener,
                shutdown,
            )));
        } else {
            tasks.push(tokio::spawn(gateway::run(self.clone(), shutdown)));
        }
        Ok(Running {
            webhook_addr,
            tasks,
        })
    }

    /// Hand a dispatch to the worker; `done` answers once it is handled.
    fn dispatch(
        &self,
        t: &str,
        id: Option<&str>,
        d: &serde_json::Value,
        done: Option<oneshot::Sender<bool>>,
    ) {
        let event = convert::event(t, id, d, self.engine.now());
        if matches!(event, Event::Other) {
            tracing::debug!(t, "QQ Bot event not read");
            if let Some(done) = done {
                let _ = done.send(true);
            }
            return;
        }
        let _ = self.inbound.send(Inbound { event, done });
    }

    /// Events are handled in arrival order, as many as are waiting at once:
    /// the anchors of their messages are written in one transaction (and
    /// the chats' waiting messages woken), then the messages go to the
    /// engine's writer in order; membership and switch events follow them
    /// there as chat events, in their place.
    async fn worker(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<Inbound>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut pruned_at = 0i64;
        loop {
            let first = tokio::select! {
                ev = rx.recv() => match ev { Some(ev) => ev, None => return },
                _ = shutdown.changed() => return,
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(_) => break,
                }
            }
            let mut run: Vec<Inbound> = Vec::new();
            for inbound in batch {
                if matches!(inbound.event, Event::Message { .. }) {
                    run.push(inbound);
                    continue;
                }
                self.messages(std::mem::take(&mut run)).await;
                let ok = self.on_event(&inbound.event).await;
                if let Some(done) = inbound.done {
                    let _ = done.send(ok);
                }
            }
            self.messages(run).await;
            let now = store::ms(self.engine.now());
            if now - pruned_at > 3600 * 1000 {
                pruned_at = now;
                if let Err(e) = self.prune(now).await {
                    tracing::warn!(error = %e, "pruning the QQ Bot reply ledger failed");
                }
            }
        }
    }

    async fn prune(&self, now: i64) -> Result<(), StoreError> {
        let mut tx = self.engine.store.begin().await?;
        ledger_db::prune(&mut tx, now - KEEP_ANCHORS_MS).await?;
        tx.commit().await
    }

    /// A run of messages: anchors in one transaction, then the engine.
    async fn messages(&self, run: Vec<Inbound>) {
        if run.is_empty() {
            return;
        }
        let now = self.engine.now();
        let recorded = self.record_anchors(&run, now).await;
        if let Err(e) = &recorded {
            // Replies then wait for the chat's next message; nothing is lost.
            tracing::error!(error = %e, "recording QQ Bot reply anchors failed");
        }
        for inbound in run {
            let Event::Message { msg, .. } = inbound.event else {
                continue;
            };
            self.kinds.note(&msg.chat_id, msg.chat_kind);
            let update = msg.update_id.clone();
            let answer = self.engine.submit(*msg);
            let done = inbound.done;
            tokio::spawn(async move {
                let ok = match answer.await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::error!(error = %e, update = %update, "handling a QQ Bot update failed");
                        false
                    }
                };
                if let Some(done) = done {
                    let _ = done.send(ok);
                }
            });
        }
    }

    async fn record_anchors(&self, run: &[Inbound], now: DateTime<Utc>) -> Result<(), StoreError> {
        let now_ms = store::ms(now);
        let mut woke = 0;
        let mut tx = self.engine.store.begin().await?;
        for inbound in run {
            let Event::Message { msg, all } = &inbound.event else {
                continue;
            };
            let Some(id) = &msg.message_id else { continue };
            ledger_db::record_anchor(&mut tx, &msg.chat_id, id, AnchorKind::Message, now_ms)
                .await?;
            if *all {
                ledger_db::set_all_messages(&mut tx, &msg.chat_id, now_ms).await?;
            }
            woke += outbox::wake_waiting(&mut tx, Platform::QqBot, &msg.chat_id).await?;
        }
        tx.commit().await?;
        if woke > 0 {
            self.engine.outbox_ready.notify_waiters();
        }
        Ok(())
    }

    /// The bot added to or removed from a group, or an owner's switch, as
    /// a chat event for the engine's writer (in its place after the
    /// messages before it), its update id the event's (`e:ID`), so a
    /// redelivery changes nothing; `service::chats` applies it. Before
    /// that, as for a message, the event is recorded as something to reply
    /// to (the greeting answers the bot's addition) and, when the owner
    /// allows unprompted messages, the chat's waiting messages are woken.
    /// Answers whether it was handled.
    async fn on_event(&self, event: &Event) -> bool {
        let now = self.engine.now();
        let (msg, anchor) = match event {
            Event::Membership {
                event_id,
                group,
                by,
                joined,
            } => {
                let chat_event = if *joined {
                    ChatEvent::BotAdded { needs_at: true }
                } else {
                    ChatEvent::BotRemoved
                };
                let msg = Incoming::event(
                    Platform::QqBot,
                    format!("e:{event_id}"),
                    group,
                    ChatKind::Group,
                    by,
                    chat_event,
                    now,
                );
                (msg, joined.then_some(event_id))
            }
            Event::Switch {
                event_id,
                chat,
                kind,
                on,
            } => {
                let msg = Incoming::event(
                    Platform::QqBot,
                    format!("e:{event_id}"),
                    chat,
                    *kind,
                    "",
                    ChatEvent::Unprompted { allowed: *on },
                    now,
                );
                (msg, on.then_some(event_id))
            }
            _ => return true,
        };
        self.kinds.note(&msg.chat_id, msg.chat_kind);
        let wake = matches!(event, Event::Switch { .. });
        if let Some(anchor) = anchor
            && let Err(e) = self.record_event_anchor(&msg.chat_id, anchor, wake).await
        {
            // Replies then wait for the chat's next message; nothing is lost.
            tracing::error!(error = %e, "recording a QQ Bot event anchor failed");
        }
        let update = msg.update_id.clone();
        match self.engine.submit(msg).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, update = %update, "handling a QQ Bot event failed");
                false
            }
        }
    }

    /// Record event `anchor` as something the chat's messages may reply
    /// to, and with `wake` (the owner allows unprompted messages) wake the
    /// chat's waiting messages.
    async fn record_event_anchor(
        &self,
        chat: &str,
        anchor: &str,
        wake: bool,
    ) -> Result<(), StoreError> {
        let now_ms = store::ms(self.engine.now());
        let mut tx = self.engine.store.begin().await?;
        ledger_db::record_anchor(&mut tx, chat, anchor, AnchorKind::Event, now_ms).await?;
        let woke = if wake {
            outbox::wake_waiting(&mut tx, Platform::QqBot, chat).await?
        } else {
            0
        };
        tx.commit().await?;
        if woke > 0 {
            self.engine.outbox_ready.notify_waiters();
        }
        Ok(())
    }

    /// Group or private: from events seen, else the store, else group.
    async fn kind_of(&self, chat_id: &str) -> Result<ChatKind, SendError> {
        self.kinds
            .of(&self.engine.store, Platform::QqBot, chat_id)
            .await
    }

    /// The gateway intents asked for now.
    fn intents(&self) -> u32 {
        *self.intents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gateway refused the intents: keep the first configured one only.
    /// Returns false when that is what was already asked for.
    fn narrow_intents(&self, code: u16) -> bool {
        let required = self.cfg.intent_bits().ok().and_then(|b| b.first().copied());
        let Some(required) = required else {
            return false;
        };
        let mut cur = self.intents.lock().unwrap_or_else(|e| e.into_inner());
        if *cur == required {
            return false;
        }
        tracing::warn!(
            refused = *cur,
            code,
            now = required,
            "QQ Bot gateway refused the intents; asking for the first configured one only \
             (group @-messages and private chats; every group message only if that bit carries it)"
        );
        *cur = required;
        true
    }
}

impl ChatSender for QqBot {
    fn platform(&self) -> Platform {
        Platform::QqBot
    }

    fn capabilities(&self) -> Capabilities {
        self.caps()
    }

    fn send<'a>(
        &'a self,
        msg: &'a Outgoing,
        _edit_target: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        // No editing on this platform: an edit arrives only if a service
        // ignored the capabilities, and goes out as a new message.
        Box::pin(self.deliver(None, msg))
    }

    fn send_row<'a>(
        &'a self,
        outbox_id: i64,
        msg: &'a Outgoing,
        _edit_target: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.deliver(Some(outbox_id), msg))
    }
}

impl PaceLimits {
    /// The QQ Bot API: `per_second` for the bot, and at most
    /// `group_per_minute` new messages a minute to one group, spread evenly.
    pub fn qqbot(cfg: &QqBotSettings) -> PaceLimits {
        PaceLimits {
            chat_interval: std::time::Duration::ZERO,
            jitter: std::time::Duration::ZERO,
            per_window: cfg.per_second.max(1),
            window: std::time::Duration::from_secs(1),
            chat_per_window: cfg.group_per_minute,
            chat_window: std::time::Duration::from_secs(60),
        }
    }
}
