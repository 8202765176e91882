//! Telegram through the Bot API (teloxide's request types over rustls).
//!
//! Two ways in, one at a time:
//! - long polling (default): `getUpdates` with the offset persisted in
//!   `kv_state`, so a restart resumes where the last run stopped;
//! - webhook (when `telegram.webhook_url` is set): an axum server on
//!   `telegram.webhook_listen` that accepts only requests carrying
//!   `X-Telegram-Bot-Api-Secret-Token`.
//!
//! Either way an update is handled at most once: `Engine::handle` records
//! its id in `processed_updates` in the update's own transaction. An update
//! is acknowledged (the polling offset moves past it, the webhook answers
//! 200) once it is handled or kept as failed, never while the database is
//! unavailable: polling then waits before asking for more, and the webhook
//! answers 503 after [`WEBHOOK_HOLD`] so that Telegram delivers it again,
//! while the engine keeps it queued in arrival order. A poison update that
//! takes the whole process down is found and given up by [`inflight`].
//!
//! The adapter only translates ([`convert`]): updates become [`Incoming`]s
//! (the bot's membership and a group's move to a supergroup as chat
//! events, and so does a send refused because the group moved), outbox
//! messages become `sendMessage` / `editMessageText` / `sendPhoto` /
//! `sendDocument` (a file's bytes or a local file uploaded as multipart, a
//! URL or `file_id` as a string). Pacing (~30/s overall, 20/min per group, 1/s per chat)
//! uses the shared [`Pacer`]; teloxide's `Throttle` is not used because it
//! queues in memory, while the persisted outbox must learn each send's
//! outcome (and serve other chats while one waits).

pub mod convert;
pub mod inflight;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{
    AllowedUpdate, BotCommand, BotCommandScope, FileId, InlineKeyboardButton, InlineKeyboardMarkup,
    InputFile, MessageEntity, MessageId, ReplyParameters, UpdateKind, User, UserId,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::convert::BotIdentity;
use self::inflight::InFlight;
use super::{
    AttachmentKind, BoxFuture, Capabilities, ChatSender, FileSource, Incoming, OutFile, Outgoing,
    SendError, Sent,
};
use crate::chat::files::FetchError;
use crate::chat::pacing::{PaceLimits, Pacer};
use crate::config::TelegramSettings;
use crate::domain::Platform;
use crate::engine::Engine;
use crate::store::{self, kv, people};

/// Telegram refuses texts longer than this many UTF-16 units (a Chinese
/// character is one, most emoji two).
pub const MAX_TEXT: usize = 4096;
/// Where the polling offset is kept in `kv_state`, per bot id: update ids
/// belong to one bot, so a new token must not inherit another's offset.
pub fn offset_key(bot_id: u64) -> String {
    format!("telegram.offset.{bot_id}")
}
/// Where the span of a polled batch being handled is marked, per bot id
/// (see [`inflight`]).
pub fn inflight_key(bot_id: u64) -> String {
    format!("telegram.inflight.{bot_id}")
}
/// How long a webhook request waits for its update to be handled before it
/// is answered 503 (Telegram then delivers it again later). The update
/// stays queued in the engine meanwhile, so nothing is lost and the order
/// holds; the redelivery finds it handled (a no-op) or handles it then.
/// Well under the time Telegram waits for an answer.
pub const WEBHOOK_HOLD: Duration = Duration::from_secs(25);
/// Waiting for a free slot of the account-wide window happens inside the
/// send (every chat waits for it alike); longer waits go back to the
/// dispatcher as `RetryAfter`.
const WAIT_IN_SEND: Duration = Duration::from_millis(1500);

/// The Telegram adapter.
pub struct Telegram {
    engine: Arc<Engine>,
    cfg: TelegramSettings,
    bot: Bot,
    me: Mutex<Option<BotIdentity>>,
    /// Held across a whole send, so pacing decisions never race.
    pacer: tokio::sync::Mutex<Pacer>,
}

/// `getFile`, then the download, for files within
/// [`MAX_FILE_BYTES`](crate::chat::files::MAX_FILE_BYTES).
async fn download(bot: &Bot, file_id: &str) -> Result<Vec<u8>, FetchError> {
    use teloxide::net::Download;
    let file = bot
        .get_file(FileId(file_id.to_string()))
        .await
        .map_err(|e| FetchError::Failed(format!("getFile: {e}")))?;
    let name = file.path.rsplit('/').next().unwrap_or("file").to_string();
    if file.size as usize > crate::chat::files::MAX_FILE_BYTES {
        return Err(FetchError::TooBig(name));
    }
    let mut data = Vec::with_capacity(file.size as usize);
    bot.download_file(&file.path, &mut data)
        .await
        .map_err(|e| FetchError::Failed(format!("download: {e}")))?;
    Ok(data)
}

/// The engine's way to files sent on Telegram (imports, dashboard photos).
/// It holds the bot, not the adapter, so the engine does not keep the
/// adapter alive.
struct TelegramFiles(Bot);

impl crate::engine::FileFetcher for TelegramFiles {
    fn fetch<'a>(
        &'a self,
        file_ref: &'a str,
    ) -> crate::chat::BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(download(&self.0, file_ref))
    }
}

/// The adapter's running tasks.
pub struct Running {
    /// Where the webhook server listens (useful with port 0).
    pub webhook_addr: Option<SocketAddr>,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Telegram {
    /// A new adapter over `engine`, reading `engine.settings.telegram`; it
    /// registers its capabilities with the engine.
    pub fn new(engine: Arc<Engine>) -> anyhow::Result<Arc<Telegram>> {
        let cfg = engine.settings.telegram.clone();
        let token = cfg
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow::anyhow!("telegram.token is not set"))?;
        // Long polls hold the request open for `poll_timeout_s`.
        let client = teloxide::net::default_reqwest_settings()
            .timeout(Duration::from_secs(u64::from(cfg.poll_timeout_s) + 15))
            .build()?;
        let mut bot = Bot::with_client(token, client);
        if let Some(api) = cfg.api_url.as_deref().filter(|u| !u.is_empty()) {
            let url = url::Url::parse(api)
                .map_err(|e| anyhow::anyhow!("telegram.api_url {api:?}: {e}"))?;
            bot = bot.set_api_url(url);
        }
        let tg = Arc::new(Telegram {
            pacer: tokio::sync::Mutex::new(Pacer::new(PaceLimits::telegram(&cfg))),
            engine,
            cfg,
            bot,
            me: Mutex::new(None),
        });
        tg.engine.set_capabilities(Platform::Telegram, caps());
        tg.engine
            .set_file_fetcher(Platform::Telegram, Arc::new(TelegramFiles(tg.bot.clone())));
        Ok(tg)
    }

    /// The teloxide bot (for direct calls such as file downloads).
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    fn identity(&self) -> Option<BotIdentity> {
        self.me.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `getMe`, `setMyCommands`, then polling or the webhook server. Fails
    /// when the token is refused or the webhook port is taken.
    pub async fn start(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Running> {
        let me = self
            .bot
            .get_me()
            .await
            .map_err(|e| anyhow::anyhow!("Telegram getMe: {e}"))?;
        let username = me.username().to_string();
        self.engine
            .set_bot_username(Platform::Telegram, username.as_str());
        *self.me.lock().unwrap_or_else(|e| e.into_inner()) = Some(BotIdentity {
            id: me.user.id,
            username,
        });
        // The command menu is a convenience: a failure is logged, not fatal.
        if let Err(e) = self.set_commands().await {
            tracing::warn!(error = %e, "setMyCommands failed");
        }
        let mut tasks = Vec::new();
        let mut webhook_addr = None;
        match self.cfg.webhook_url.clone().filter(|u| !u.is_empty()) {
            Some(public) => {
                let secret = self
                    .cfg
                    .webhook_secret
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!("telegram.webhook_secret is required with webhook_url")
                    })?;
                let listen = self
                    .cfg
                    .webhook_listen
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1:8443".into());
                let listener = TcpListener::bind(&listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("telegram.webhook_listen {listen}: {e}"))?;
                webhook_addr = Some(listener.local_addr()?);
                let url = url::Url::parse(&public)
                    .map_err(|e| anyhow::anyhow!("telegram.webhook_url {public:?}: {e}"))?;
                self.bot
                    .set_webhook(url)
                    .secret_token(secret)
                    .allowed_updates(allowed())
                    .await
                    .map_err(|e| anyhow::anyhow!("Telegram setWebhook: {e}"))?;
                tasks.push(tokio::spawn(self.clone().serve_webhook(listener, shutdown)));
            }
            None => {
                // getUpdates is refused while a webhook is set.
                if let Err(e) = self.bot.delete_webhook().await {
                    tracing::warn!(error = %e, "deleteWebhook failed");
                }
                tasks.push(tokio::spawn(self.clone().poll(shutdown)));
            }
        }
        Ok(Running {
            webhook_addr,
            tasks,
        })
    }

    /// The command menu: Chinese by default, English for `en` clients, in
    /// groups and in private chats.
    async fn set_commands(&self) -> Result<(), RequestError> {
        const NAMES: &[&str] = &[
            "help", "iam", "whoami", "orgs", "bind", "log", "undo", "stats", "mine", "notice",
            "notices", "ack", "event",
        ];
        for (locale, lang) in [("zh-CN", None), ("en", Some("en"))] {
            let commands: Vec<BotCommand> = NAMES
                .iter()
                .map(|n| {
                    let key = format!("telegram.cmd.{n}");
                    BotCommand::new(*n, rust_i18n::t!(key.as_str(), locale = locale))
                })
                .collect();
            for scope in [
                BotCommandScope::AllGroupChats,
                BotCommandScope::AllPrivateChats,
            ] {
                let mut req = self.bot.set_my_commands(commands.clone()).scope(scope);
                if let Some(lang) = lang {
                    req = req.language_code(lang);
                }
                req.await?;
            }
        }
        Ok(())
    }

    fn bot_id(&self) -> u64 {
        self.identity().map(|me| me.id.0).unwrap_or_default()
    }

    /// The saved offset and what a previous run left in flight (waiting
    /// out a database outage).
    async fn load_offset(&self) -> Result<(i32, Option<InFlight>), store::StoreError> {
        let (offset_key, inflight_key) = (offset_key(self.bot_id()), inflight_key(self.bot_id()));
        crate::outage::retry("Telegram polling start", || async {
            let mut conn = self.engine.store.conn().await?;
            let offset = kv::get(&mut conn, &offset_key).await?;
            let inflight = kv::get(&mut conn, &inflight_key).await?;
            Ok((
                offset.and_then(|v| v.parse().ok()).unwrap_or(0),
                inflight.and_then(|v| serde_json::from_str(&v).ok()),
            ))
        })
        .await
    }

    /// Mark a batch as being handled (see [`inflight`]), waiting out an
    /// outage. `false` when shutting down. A mark that can't be written for
    /// another reason is logged and done without: the batch is handled all
    /// the same.
    async fn mark_inflight(&self, mark: InFlight) -> bool {
        let key = inflight_key(self.bot_id());
        let value = serde_json::json!(mark).to_string();
        let marked = crate::outage::retry("Telegram polling", || async {
            let mut tx = self.engine.store.begin().await?;
            kv::set(&mut tx, &key, &value).await?;
            tx.commit().await
        })
        .await;
        match marked {
            Err(store::StoreError::Stopped(_)) => false,
            Err(e) => {
                tracing::error!(error = %e, "marking a Telegram batch in flight failed");
                true
            }
            Ok(()) => true,
        }
    }

    /// Save the offset and clear the in-flight mark, in one transaction,
    /// waiting out an outage. A failure is logged: the updates before the
    /// offset are then fetched again after a restart, and are no-ops.
    async fn save_offset(&self, offset: i32) {
        let (offset_key, inflight_key) = (offset_key(self.bot_id()), inflight_key(self.bot_id()));
        let saved = crate::outage::retry("Telegram polling", || async {
            let mut tx = self.engine.store.begin().await?;
            kv::set(&mut tx, &offset_key, &offset.to_string()).await?;
            kv::remove(&mut tx, &inflight_key).await?;
            tx.commit().await
        })
        .await;
        if let Err(e) = saved {
            tracing::error!(error = %e, "saving the Telegram offset failed");
        }
    }

    /// Keep an update that stopped the process `tries` times as failed,
    /// without running it (see [`inflight`]). `false` when it could not be
    /// recorded (shutting down): it is then fetched again.
    async fn give_up(&self, update: Update, tries: u32) -> bool {
        let id = update.id.0;
        let why = format!(
            "the process stopped {tries} times while handling this update (an abort or a kill, \
             not a caught error); given up without running it again"
        );
        let Some(msg) = self.incoming(&update) else {
            tracing::error!(update = id, %why, "a Telegram update that is not a message was skipped");
            return true;
        };
        let kept = crate::outage::retry("Telegram polling", || {
            self.engine.give_up(&msg, &why, i64::from(tries))
        })
        .await;
        match kept {
            Ok(_) => true,
            Err(store::StoreError::Stopped(_)) => false,
            Err(e) => {
                tracing::error!(update = id, error = %e, "a Telegram update that stopped the process could not be kept as failed; skipped");
                true
            }
        }
    }

    /// Long polling. Each batch is marked in flight, handled in order, and
    /// the offset saved past what was done (handled, or kept as failed);
    /// an update that could not be done yet (the database is unavailable,
    /// or we are shutting down) stays at the offset and is fetched again.
    /// A batch a previous run began and never finished is handled one
    /// update at a time, and an update that stopped the process
    /// [`MAX_TRIES`](crate::engine::MAX_TRIES) times is kept as failed
    /// without running it ([`inflight`]).
    async fn poll(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let (mut offset, mut suspect) = match self.load_offset().await {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(error = %e, "Telegram polling not started");
                return;
            }
        };
        if let Some(s) = suspect {
            tracing::warn!(
                first = s.first,
                last = s.last,
                tries = s.tries,
                "the last run stopped while handling these Telegram updates; handling them one at a time"
            );
        }
        let retry = Duration::from_millis(self.cfg.poll_retry_ms.max(10));
        loop {
            if *shutdown.borrow() {
                return;
            }
            let req = self
                .bot
                .get_updates()
                .offset(offset)
                .timeout(self.cfg.poll_timeout_s)
                .allowed_updates(allowed());
            let got = tokio::select! {
                r = req.send() => r,
                _ = shutdown.changed() => return,
            };
            let pause = match got {
                Ok(mut batch) => {
                    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
                        continue;
                    };
                    let (first, last) = (first.id.0, last.id.0);
                    let before = offset;
                    let done = match inflight::plan(suspect, first, last, crate::engine::MAX_TRIES)
                    {
                        inflight::Plan::GiveUp { tries } => {
                            let given_up = self.give_up(batch.swap_remove(0), tries).await;
                            if given_up {
                                offset = next_offset(first);
                            }
                            given_up
                        }
                        inflight::Plan::One(mark) => {
                            batch.truncate(1);
                            self.mark_inflight(mark).await
                                && self.handle_batch(batch, &mut offset).await
                        }
                        inflight::Plan::All(mark) => {
                            suspect = None;
                            self.mark_inflight(mark).await
                                && self.handle_batch(batch, &mut offset).await
                        }
                    };
                    if offset != before {
                        self.save_offset(offset).await;
                        let through = u32::try_from(offset.saturating_sub(1)).unwrap_or(0);
                        suspect = inflight::after(suspect, through);
                    }
                    if done {
                        continue;
                    }
                    retry
                }
                Err(RequestError::RetryAfter(s)) => s.duration(),
                Err(e) => {
                    tracing::warn!(error = %e, "getUpdates failed");
                    retry
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn serve_webhook(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: watch::Receiver<bool>,
    ) {
        let app = axum::Router::new()
            .route("/", axum::routing::post(webhook))
            .route("/{*path}", axum::routing::post(webhook))
            .with_state(self);
        crate::chat::serve_http(listener, app, shutdown, "webhook server").await;
    }

    /// Handle one update of any kind. `false` when it is not done (we are
    /// shutting down), so it should be delivered again; anything else
    /// (handled, kept as failed, kinds we ignore) is done with. During a
    /// database outage this waits.
    pub async fn on_update(&self, update: Update) -> bool {
        match self.prepare(update) {
            Prepared::Queued(answer) => answer.await,
            Prepared::Inline(update) => self.inline(*update).await,
            Prepared::Done(ok) => ok,
        }
    }

    /// Handle a polled batch in order, advancing `offset` past every update
    /// done with. Messages, button presses and chat events are queued in
    /// the group-commit writer one after another and answered together, so a
    /// rush polled in one batch shares transactions as webhook requests do;
    /// anything else waits for the updates before it. `false` at the first
    /// update not done (shutting down): the rest is fetched again (update
    /// ids make that safe).
    async fn handle_batch(&self, batch: Vec<Update>, offset: &mut i32) -> bool {
        let next = next_offset;
        let mut queued: Vec<(u32, BoxFuture<'static, bool>)> = Vec::new();
        for u in batch {
            let id = u.id.0;
            match self.prepare(u) {
                Prepared::Queued(answer) => queued.push((id, answer)),
                Prepared::Inline(update) => {
                    if !settle(&mut queued, offset, next).await || !self.inline(*update).await {
                        return false;
                    }
                    *offset = next(id);
                }
                Prepared::Done(ok) => queued.push((id, Box::pin(std::future::ready(ok)))),
            }
        }
        settle(&mut queued, offset, next).await
    }

    /// Sort an update into what goes through the writer (messages, button
    /// presses and chat events, queued now) and what is handled on its own.
    fn prepare(&self, update: Update) -> Prepared {
        if self.identity().is_none() {
            tracing::warn!("update before getMe; ignored");
            return Prepared::Done(false);
        }
        if let Some(incoming) = self.incoming(&update) {
            let callback = match &update.kind {
                UpdateKind::CallbackQuery(q) => Some(q.id.clone()),
                _ => None,
            };
            return Prepared::Queued(self.submit(incoming, callback));
        }
        match &update.kind {
            // A button press we can't read: answered all the same.
            UpdateKind::CallbackQuery(_) => Prepared::Inline(Box::new(update)),
            // Not for us (our own, a service message, a membership change
            // that changes nothing …).
            _ => Prepared::Done(true),
        }
    }

    /// A message, a readable button press, or a platform event about a
    /// chat (the bot added or removed, a group moved to a supergroup) as
    /// an [`Incoming`].
    fn incoming(&self, update: &Update) -> Option<Incoming> {
        let me = self.identity()?;
        let now = self.engine.now();
        let id = update.id.0;
        match &update.kind {
            UpdateKind::Message(msg) => match msg.migrate_to_chat_id() {
                Some(new) => Some(convert::incoming_from_migration(
                    &msg.chat.id.0.to_string(),
                    &new.0.to_string(),
                    now,
                )),
                None => convert::incoming_from_message(id, msg, &me, now),
            },
            UpdateKind::CallbackQuery(q) => convert::incoming_from_callback(id, q, now),
            UpdateKind::MyChatMember(change) => convert::incoming_from_membership(id, change, now),
            _ => None,
        }
    }

    /// Updates handled outside the writer: a button press we can't read,
    /// answered so the client's spinner stops. Always done.
    async fn inline(&self, update: Update) -> bool {
        if let UpdateKind::CallbackQuery(q) = &update.kind {
            answer_callback(&self.bot, q.id.clone()).await;
        }
        true
    }

    /// Take the update's place in the group-commit writer now (an import
    /// whose file must be downloaded first takes a later one: see
    /// `Engine::submit`); the future answers whether it was handled (and
    /// answers a button press, so the client's spinner stops, whatever
    /// became of it).
    fn submit(
        &self,
        incoming: Incoming,
        callback: Option<teloxide::types::CallbackQueryId>,
    ) -> BoxFuture<'static, bool> {
        let answer = self.engine.submit(incoming.clone());
        let bot = self.bot.clone();
        Box::pin(async move {
            let handled = match answer.await {
                // Handled, a duplicate, or kept as failed: done with.
                Ok(_) => true,
                // Shutting down: fetched or delivered again later.
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, update = %incoming.update_id, "a Telegram update is left for later");
                    false
                }
                // Could not even be kept as failed; fetching it again
                // would only block the updates behind it.
                Err(e) => {
                    tracing::error!(error = %e, update = %incoming.update_id, "a Telegram update could not be handled; passed over");
                    true
                }
            };
            if let Some(id) = callback {
                answer_callback(&bot, id).await;
            }
            handled
        })
    }

    /// Group → supergroup, learnt from a refused send of outbox row `row`:
    /// submitted as an event (its id names the row, so each refused row is
    /// one event: see [`convert::migration_id`]), and the chat and its
    /// queue, this message included, follow it. `true` once it is applied.
    async fn migrate(&self, old: &str, new: &str, row: Option<i64>) -> bool {
        let mut event = convert::incoming_from_migration(old, new, self.engine.now());
        if let Some(row) = row {
            event.update_id = format!("{}:row:{row}", event.update_id);
        }
        match self.engine.submit(event).await {
            Ok(crate::engine::Outcome::Failed { .. }) => false,
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, %old, %new, "chat migration not recorded");
                false
            }
        }
    }

    /// The bytes of a file users sent (imports): `getFile`, then download.
    pub async fn download(&self, file_id: &str) -> Result<Vec<u8>, FetchError> {
        download(&self.bot, file_id).await
    }

    /// Wait for a slot: the chat's own limits answer `RetryAfter` at once
    /// (the dispatcher serves other chats meanwhile); the account-wide
    /// window is waited for here when the wait is short.
    async fn slot(
        &self,
        pacer: &mut Pacer,
        chat: &str,
        parts: usize,
        own_limits: bool,
    ) -> Result<(), SendError> {
        if own_limits {
            pacer
                .check_chat(chat, parts, Instant::now())
                .map_err(SendError::RetryAfter)?;
        }
        loop {
            match pacer.check_overall(parts, Instant::now()) {
                Ok(()) => return Ok(()),
                Err(wait) if wait <= WAIT_IN_SEND => tokio::time::sleep(wait).await,
                Err(wait) => return Err(SendError::RetryAfter(wait)),
            }
        }
    }

    async fn send_message(
        &self,
        msg: &Outgoing,
        edit_target: Option<&str>,
        row: Option<i64>,
    ) -> Result<Sent, SendError> {
        let chat: i64 = msg
            .chat_id
            .parse()
            .map_err(|_| SendError::Rejected(format!("not a Telegram chat id: {}", msg.chat_id)))?;
        let chat_id = ChatId(chat);
        // Groups and supergroups have negative ids; only they have the
        // 20-per-minute limit.
        let windowed = chat < 0;
        let keyboard = keyboard(msg);
        let mut pacer = self.pacer.lock().await;
        if let Some(target) = edit_target.and_then(|t| t.parse::<i32>().ok()) {
            // An edit (the wish board) is not a new message: it keeps the
            // chat interval and counts for the account, but neither uses nor
            // waits for the group's 20-a-minute window.
            pacer
                .check_interval(&msg.chat_id, Instant::now())
                .map_err(SendError::RetryAfter)?;
            self.slot(&mut pacer, &msg.chat_id, 1, false).await?;
            let text = clip_utf16(&msg.text, MAX_TEXT);
            let mut req = self.bot.edit_message_text(chat_id, MessageId(target), text);
            if let Some(k) = keyboard {
                req = req.reply_markup(k);
            }
            let result = req.await;
            pacer.record(&msg.chat_id, Instant::now());
            return match result {
                Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(Sent {
                    message_id: Some(target.to_string()),
                }),
                Err(e) => Err(self.classify(&msg.chat_id, e, row).await),
            };
        }
        let (prefix, entities) = self.mentions(&msg.mention_users).await;
        let parts: Vec<String> = if msg.text.trim().is_empty() {
            Vec::new()
        } else {
            split_utf16(&format!("{prefix}{}", msg.text), MAX_TEXT)
        };
        let total = parts.len() + msg.attachments.len();
        self.slot(&mut pacer, &msg.chat_id, total.max(1), true)
            .await?;
        let mut first = None;
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                // Later parts keep the chat interval too (bounded wait).
                for _ in 0..100 {
                    match pacer.check_part(&msg.chat_id, Instant::now()) {
                        Ok(()) => break,
                        Err(wait) => tokio::time::sleep(wait).await,
                    }
                }
            }
            let mut req = self.bot.send_message(chat_id, part.as_str());
            if i == 0 && !entities.is_empty() {
                req = req.entities(entities.clone());
            }
            if i == 0
                && let Some(quoted) = msg.reply_to.as_deref().and_then(|r| r.parse::<i32>().ok())
            {
                req = req.reply_parameters(
                    ReplyParameters::new(MessageId(quoted)).allow_sending_without_reply(),
                );
            }
            if i + 1 == parts.len()
                && let Some(k) = keyboard.clone()
            {
                req = req.reply_markup(k);
            }
            // A failed later part retries the whole message: an earlier part
            // may then show twice, which beats losing the rest.
            let result = req.await;
            pacer.record_in(&msg.chat_id, Instant::now(), windowed);
            let sent = match result {
                Ok(m) => m,
                Err(e) => return Err(self.classify(&msg.chat_id, e, row).await),
            };
            first.get_or_insert_with(|| sent.id.0.to_string());
        }
        for (i, file) in msg.attachments.iter().enumerate() {
            if i > 0 || !parts.is_empty() {
                let _ = self.slot(&mut pacer, &msg.chat_id, 1, false).await;
            }
            let input = input_file(file);
            let result = match file.kind {
                AttachmentKind::Photo => self.bot.send_photo(chat_id, input).await,
                AttachmentKind::Document => self.bot.send_document(chat_id, input).await,
            };
            pacer.record_in(&msg.chat_id, Instant::now(), windowed);
            match result {
                Ok(m) => {
                    first.get_or_insert_with(|| m.id.0.to_string());
                }
                // With the text already out, a file that fails now is
                // logged, not retried, so the text is never sent twice.
                Err(e) if first.is_some() => {
                    tracing::warn!(chat = %msg.chat_id, file = %file.describe(), error = %e, "attachment not sent");
                }
                Err(e) => return Err(self.classify(&msg.chat_id, e, row).await),
            }
        }
        Ok(Sent { message_id: first })
    }

    /// The accounts a message @-mentions, as a first line of names: people
    /// with a numeric id become `text_mention`s (they work without a
    /// username), others are written `@username`,
    /// which Telegram links by itself. Offsets count UTF-16 units.
    async fn mentions(&self, users: &[String]) -> (String, Vec<MessageEntity>) {
        if users.is_empty() {
            return (String::new(), Vec::new());
        }
        let mut conn = self.engine.store.conn().await.ok();
        let mut prefix = String::new();
        let mut entities = Vec::new();
        for user in users {
            let name = match conn.as_mut() {
                Some(c) => people::find(c, Platform::Telegram, user)
                    .await
                    .ok()
                    .flatten()
                    .map(|p| p.display_name),
                None => None,
            };
            if !prefix.is_empty() {
                prefix.push(' ');
            }
            match user.parse::<u64>() {
                Ok(id) => {
                    let label: String = name
                        .filter(|n| !n.trim().is_empty())
                        .unwrap_or_else(|| user.clone())
                        .chars()
                        .take(20)
                        .collect();
                    let offset = prefix.encode_utf16().count();
                    let length = label.encode_utf16().count();
                    let person = User {
                        id: UserId(id),
                        is_bot: false,
                        first_name: label.clone(),
                        last_name: None,
                        username: None,
                        language_code: None,
                        is_premium: false,
                        added_to_attachment_menu: false,
                    };
                    prefix.push_str(&label);
                    entities.push(MessageEntity::text_mention(person, offset, length));
                }
                Err(_) => {
                    prefix.push('@');
                    prefix.push_str(user.trim_start_matches('@'));
                }
            }
        }
        prefix.push('\n');
        (prefix, entities)
    }

    /// What the dispatcher should do about a failed request.
    async fn classify(&self, chat: &str, e: RequestError, row: Option<i64>) -> SendError {
        if let RequestError::MigrateToChatId(new) = &e
            && self.migrate(chat, &new.0.to_string(), row).await
        {
            // The group became a supergroup and its queue, this message
            // included, now names the new id: send again at once.
            return SendError::RetryAfter(Duration::from_millis(1));
        }
        to_send_error(e)
    }
}

/// How a file goes to the Bot API: content and local files are uploaded
/// (multipart), a URL is fetched by Telegram itself, a `file_id` is reused.
fn input_file(file: &OutFile) -> InputFile {
    let named = |input: InputFile| match &file.file_name {
        Some(name) => input.file_name(name.clone()),
        None => input,
    };
    match &file.source {
        FileSource::Bytes(bytes) => named(InputFile::memory(bytes.clone())),
        FileSource::Path(path) => named(InputFile::file(path.clone())),
        FileSource::Url(u) => match url::Url::parse(u) {
            Ok(u) => InputFile::url(u),
            Err(_) => InputFile::file_id(FileId(u.clone())),
        },
        FileSource::PlatformId(id) => InputFile::file_id(FileId(id.clone())),
    }
}

/// Split at line breaks into parts of at most `max` UTF-16 units: split by
/// characters, and again with a smaller budget while a part (full of emoji)
/// is still too long.
pub fn split_utf16(text: &str, max: usize) -> Vec<String> {
    let units = |s: &String| s.encode_utf16().count();
    let mut budget = max.max(2);
    loop {
        let parts = super::split_text(text, budget);
        if budget <= 2 || parts.iter().all(|p| units(p) <= max) {
            return parts;
        }
        budget = budget * 3 / 4;
    }
}

/// The longest prefix of `text` within `max` UTF-16 units.
fn clip_utf16(text: &str, max: usize) -> String {
    let mut used = 0;
    text.chars()
        .take_while(|c| {
            used += c.len_utf16();
            used <= max
        })
        .collect()
}

/// Update kinds the adapter asks for.
fn allowed() -> Vec<AllowedUpdate> {
    vec![
        AllowedUpdate::Message,
        AllowedUpdate::CallbackQuery,
        AllowedUpdate::MyChatMember,
    ]
}

/// What Telegram can render.
pub fn caps() -> Capabilities {
    Capabilities {
        edit: true,
        buttons: true,
        max_text_chars: MAX_TEXT,
    }
}

fn keyboard(msg: &Outgoing) -> Option<InlineKeyboardMarkup> {
    if msg.buttons.is_empty() {
        return None;
    }
    Some(InlineKeyboardMarkup::new(msg.buttons.iter().map(|row| {
        row.iter()
            .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.data.clone()))
            .collect::<Vec<_>>()
    })))
}

/// Map a Bot API failure onto the dispatcher's outcomes: 429 → wait as
/// told; kicked, blocked or deleted chats (403, "chat not found") → gone;
/// network trouble, 5xx and unreadable answers → retry with back-off; any
/// other refusal → rejected for good.
pub fn to_send_error(e: RequestError) -> SendError {
    match e {
        RequestError::RetryAfter(s) => SendError::RetryAfter(s.duration()),
        RequestError::MigrateToChatId(new) => {
            SendError::Rejected(format!("group migrated to {}", new.0))
        }
        RequestError::Api(api) => {
            let text = api.to_string();
            match api {
                ApiError::BotBlocked
                | ApiError::BotKicked
                | ApiError::BotKickedFromSupergroup
                | ApiError::BotKickedFromChannel
                | ApiError::ChatNotFound
                | ApiError::UserDeactivated
                | ApiError::CantInitiateConversation
                | ApiError::CantTalkWithBots => SendError::ChatGone(text),
                ApiError::Unknown(desc) if desc.starts_with("Forbidden") => {
                    SendError::ChatGone(desc)
                }
                // Unrecognised answers include 5xx ("Internal Server
                // Error", "Bad Gateway"): worth another try. teloxide has
                // already waited 10 s before reporting a 5xx, which pauses
                // all Telegram sends: when the Bot API fails, it fails for
                // every chat.
                ApiError::Unknown(desc) if !desc.starts_with("Bad Request") => {
                    SendError::Transient(desc)
                }
                _ => SendError::Rejected(text),
            }
        }
        RequestError::Network(e) => SendError::Transient(e.to_string()),
        RequestError::InvalidJson { source, .. } => SendError::Transient(source.to_string()),
        RequestError::Io(e) => SendError::Transient(e.to_string()),
    }
}
/// An update sorted by [`Telegram::prepare`].
enum Prepared {
    /// In the writer's queue; the future answers whether it was handled.
    Queued(BoxFuture<'static, bool>),
    /// To be handled on its own, after the updates before it.
    Inline(Box<Update>),
    /// Nothing to do (`true`), or it can't be handled now (`false`).
    Done(bool),
}

/// The polling offset that comes after update `id`.
fn next_offset(id: u32) -> i32 {
    i32::try_from(id).unwrap_or(i32::MAX).saturating_add(1)
}

/// Await queued updates in order, moving `offset` past each one handled;
/// `false` at the first that was not (the offset stays on it).
async fn settle(
    queued: &mut Vec<(u32, BoxFuture<'static, bool>)>,
    offset: &mut i32,
    next: impl Fn(u32) -> i32,
) -> bool {
    for (id, answer) in queued.drain(..) {
        if !answer.await {
            return false;
        }
        *offset = next(id);
    }
    true
}

async fn answer_callback(bot: &Bot, id: teloxide::types::CallbackQueryId) {
    if let Err(e) = bot.answer_callback_query(id).await {
        tracing::warn!(error = %e, "answerCallbackQuery failed");
    }
}

async fn webhook(State(tg): State<Arc<Telegram>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let expected = tg.cfg.webhook_secret.as_deref().unwrap_or_default();
    let given = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok());
    if expected.is_empty() || !given.is_some_and(|g| constant_time_eq(g, expected)) {
        return StatusCode::UNAUTHORIZED;
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable webhook update");
            return StatusCode::BAD_REQUEST;
        }
    };
    // Not done within the hold (a database outage) or shutting down: 503,
    // and Telegram delivers the update again. A queued update stays queued
    // in the engine meanwhile, in arrival order.
    match tokio::time::timeout(WEBHOOK_HOLD, tg.on_update(update)).await {
        Ok(true) => StatusCode::OK,
        Ok(false) | Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Compare secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl ChatSender for Telegram {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }

    fn capabilities(&self) -> Capabilities {
        caps()
    }

    fn send<'a>(
        &'a self,
        msg: &'a Outgoing,
        edit_target: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.send_message(msg, edit_target, None))
    }

    fn send_row<'a>(
        &'a self,
        outbox_id: i64,
        msg: &'a Outgoing,
        edit_target: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.send_message(msg, edit_target, Some(outbox_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_fit_in_utf16_units() {
        let line = "😀".repeat(100);
        let text = vec![line.as_str(); 50].join("\n");
        let parts = split_utf16(&text, MAX_TEXT);
        assert!(parts.len() > 2);
        assert!(parts.iter().all(|p| p.encode_utf16().count() <= MAX_TEXT));
        assert_eq!(parts.join("\n"), text);
        assert_eq!(clip_utf16("a😀b", 2), "a");
        assert_eq!(split_utf16("短", MAX_TEXT), vec!["短".to_string()]);
    }

    #[test]
    fn errors_sorted() {
        use teloxide::types::Seconds;
        assert_eq!(
            to_send_error(RequestError::RetryAfter(Seconds::from_seconds(3))),
            SendError::RetryAfter(Duration::from_secs(3))
        );
        assert!(matches!(
            to_send_error(RequestError::Api(ApiError::BotKickedFromSupergroup)),
            SendError::ChatGone(_)
        ));
        assert!(matches!(
            to_send_error(RequestError::Api(ApiError::Unknown("Bad Gateway".into()))),
            SendError::Transient(_)
        ));
        assert!(matches!(
            to_send_error(RequestError::Api(ApiError::MessageTextIsEmpty)),
            SendError::Rejected(_)
        ));
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
