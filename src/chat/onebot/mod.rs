//! QQ through OneBot v11 (NapCat, Lagrange.OneBot, LLOneBot): the
//! implementation logs into a QQ account and speaks JSON over WebSocket.
//!
//! Two directions, both optional and able to run together:
//! - forward: tuanbot connects to `onebot.ws_url` (token as
//!   `Authorization: Bearer …`) and reconnects with capped exponential
//!   back-off;
//! - reverse: tuanbot listens on `onebot.listen` and the implementation
//!   connects (token in `Authorization` or `?access_token=`; 401 otherwise).
//!
//! The adapter only translates: events become [`Incoming`]s queued for the
//! engine's writer in arrival order ([`Engine::submit`]), outbox messages become `send_group_msg` /
//! `send_private_msg` actions, matched to their answers by `echo`. Pacing
//! against risk control lives in [`crate::chat::pacing`].

pub mod segments;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use self::segments::Segment;
use super::{
    Attachment, AttachmentKind, BoxFuture, Capabilities, ChatEvent, ChatSender, FileSource,
    Incoming, Mention, OutFile, Outgoing, ReplyRef, SendError, Sent,
};
use crate::chat::files::FetchError;
use crate::chat::pacing::{PaceLimits, Pacer};
use crate::config::OneBotSettings;
use crate::domain::{ChatKind, Platform};
use crate::engine::Engine;

/// How many of our own message ids we remember, to tell replies to the bot.
const SENT_IDS_KEPT: usize = 4096;

/// Why an action failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// No connection that carries actions, or it closed before answering.
    Disconnected,
    /// No answer within `action_timeout_ms`.
    Timeout,
    /// The implementation answered `status: failed`.
    Failed { retcode: i64, message: String },
}

impl std::fmt::Display for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionError::Disconnected => f.write_str("not connected"),
            ActionError::Timeout => f.write_str("no answer"),
            ActionError::Failed { retcode, message } => write!(f, "failed ({retcode}) {message}"),
        }
    }
}

/// The engine's way to files posted on QQ (imports, dashboard photos). It
/// holds the adapter weakly, so the engine does not keep it alive.
struct QqFiles(std::sync::Weak<OneBot>);

impl crate::engine::FileFetcher for QqFiles {
    fn fetch<'a>(
        &'a self,
        file_ref: &'a str,
    ) -> crate::chat::BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(async move {
            let bot = self
                .0
                .upgrade()
                .ok_or_else(|| FetchError::Failed("the QQ adapter has stopped".into()))?;
            bot.download(file_ref).await
        })
    }
}

/// One live WebSocket: where to write frames.
struct Link {
    id: u64,
    /// Reverse connections may be event-only (`X-Client-Role: Event`).
    api: bool,
    tx: mpsc::UnboundedSender<Message>,
}

/// The OneBot adapter: connections, pending actions and pacing.
pub struct OneBot {
    engine: Arc<Engine>,
    cfg: OneBotSettings,
    links: Mutex<Vec<Link>>,
    pending: Mutex<HashMap<String, (u64, oneshot::Sender<Value>)>>,
    next_id: AtomicU64,
    /// The logged-in account, from `get_login_info` or the events' `self_id`.
    self_id: Mutex<Option<String>>,
    /// Held across a whole send, so pacing decisions never race.
    pacer: tokio::sync::Mutex<Pacer>,
    /// Chat kinds seen in events, so a reply picks group or private send.
    kinds: crate::chat::ChatKinds,
    /// Ids of messages we sent (bounded), so a quote of one is `from_bot`.
    sent_ids: Mutex<(VecDeque<String>, HashSet<String>)>,
    events: mpsc::UnboundedSender<Value>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<Value>>>,
}

/// The adapter's running tasks.
pub struct Running {
    /// Where the reverse WebSocket listens (useful with port 0).
    pub reverse_addr: Option<SocketAddr>,
    pub tasks: Vec<JoinHandle<()>>,
}

impl OneBot {
    /// A new adapter over `engine`, reading `engine.settings.onebot`; it
    /// registers its capabilities with the engine.
    pub fn new(engine: Arc<Engine>) -> Arc<OneBot> {
        let cfg = engine.settings.onebot.clone();
        let (events, events_rx) = mpsc::unbounded_channel();
        let bot = Arc::new(OneBot {
            pacer: tokio::sync::Mutex::new(Pacer::new(PaceLimits::onebot(&cfg))),
            engine,
            cfg,
            links: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            self_id: Mutex::new(None),
            kinds: Default::default(),
            sent_ids: Mutex::new((VecDeque::new(), HashSet::new())),
            events,
            events_rx: Mutex::new(Some(events_rx)),
        });
        bot.engine.set_capabilities(Platform::Qq, bot.caps());
        bot.engine
            .set_file_fetcher(Platform::Qq, Arc::new(QqFiles(Arc::downgrade(&bot))));
        bot
    }

    fn caps(&self) -> Capabilities {
        Capabilities {
            edit: false,
            buttons: false,
            max_text_chars: self.cfg.max_text_chars.max(1),
        }
    }

    /// Start the configured directions and the event worker. The reverse
    /// listener is bound before this returns, so a taken port fails here.
    pub async fn start(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Running> {
        let mut tasks = Vec::new();
        let rx = self
            .events_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rx) = rx {
            tasks.push(tokio::spawn(
                self.clone().event_worker(rx, shutdown.clone()),
            ));
        }
        let mut reverse_addr = None;
        if let Some(addr) = self.cfg.listen.clone() {
            // Settings built in code skip the load-time check.
            self.cfg.check_listen()?;
            let listener = TcpListener::bind(&addr)
                .await
                .map_err(|e| anyhow::anyhow!("onebot.listen {addr}: {e}"))?;
            reverse_addr = listener.local_addr().ok();
            tracing::info!(addr = ?reverse_addr, "OneBot reverse WebSocket listening");
            tasks.push(tokio::spawn(
                self.clone().reverse(listener, shutdown.clone()),
            ));
        }
        if let Some(url) = self.cfg.ws_url.clone() {
            // Check the URL once here: a typo should stop start-up, not loop.
            url.as_str()
                .into_client_request()
                .map_err(|e| anyhow::anyhow!("onebot.ws_url {url}: {e}"))?;
            tasks.push(tokio::spawn(self.clone().forward(url, shutdown.clone())));
        }
        Ok(Running {
            reverse_addr,
            tasks,
        })
    }

    /// Is there a connection that carries actions?
    pub fn connected(&self) -> bool {
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|l| l.api)
    }

    /// The logged-in QQ account, once known.
    pub fn self_id(&self) -> Option<String> {
        self.self_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn backoff(&self, current: Duration) -> Duration {
        (current * 2).min(Duration::from_millis(
            self.cfg.reconnect_max_ms.max(self.cfg.reconnect_min_ms),
        ))
    }

    /// Forward mode: connect, serve until the link drops, wait, retry.
    async fn forward(self: Arc<Self>, url: String, mut shutdown: watch::Receiver<bool>) {
        let min = Duration::from_millis(self.cfg.reconnect_min_ms.max(1));
        let mut wait = min;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.connect(&url).await {
                Ok(ws) => {
                    tracing::info!(%url, "OneBot connected");
                    wait = min;
                    self.serve(ws, true, shutdown.clone()).await;
                    tracing::warn!(%url, "OneBot connection closed; reconnecting");
                }
                Err(e) => {
                    tracing::warn!(%url, error = %e, retry_in = ?wait, "OneBot connect failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // A dropped sender means shutdown too.
                r = shutdown.changed() => if r.is_err() { return },
            }
            wait = self.backoff(wait);
        }
    }

    async fn connect(
        &self,
        url: &str,
    ) -> anyhow::Result<WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>>
    {
        let mut req = url.into_client_request()?;
        if let Some(token) = self.cfg.token() {
            req.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&format!("Bearer {token}"))?,
            );
        }
        let timeout = Duration::from_millis(self.cfg.action_timeout_ms.max(1));
        let (ws, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(req))
            .await
            .map_err(|_| anyhow::anyhow!("connect timed out"))??;
        Ok(ws)
    }

    /// Reverse mode: accept connections, check the token at the handshake.
    async fn reverse(self: Arc<Self>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "OneBot accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let me = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let token = me.cfg.token().map(str::to_string);
                let role: Arc<Mutex<Option<String>>> = Arc::default();
                let self_id: Arc<Mutex<Option<String>>> = Arc::default();
                let (seen_role, seen_self) = (role.clone(), self_id.clone());
                // The handshake callback's signature is tungstenite's.
                #[allow(clippy::result_large_err)]
                let check = move |req: &Request, resp: Response| {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    *seen_role.lock().unwrap_or_else(|e| e.into_inner()) =
                        header("X-Client-Role").map(|r| r.to_ascii_lowercase());
                    *seen_self.lock().unwrap_or_else(|e| e.into_inner()) = header("X-Self-ID");
                    if authorized(req, token.as_deref()) {
                        Ok(resp)
                    } else {
                        let mut err = ErrorResponse::new(Some("unauthorized".into()));
                        *err.status_mut() = StatusCode::UNAUTHORIZED;
                        Err(err)
                    }
                };
                // A peer that never finishes its handshake must not hold a task.
                let timeout = Duration::from_millis(me.cfg.action_timeout_ms.max(1));
                let handshake = tokio::time::timeout(
                    timeout,
                    tokio_tungstenite::accept_hdr_async(stream, check),
                )
                .await;
                let Ok(handshake) = handshake else {
                    tracing::warn!(%peer, "OneBot handshake timed out");
                    return;
                };
                match handshake {
                    Ok(ws) => {
                        let role = role.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        let api = role.as_deref() != Some("event");
                        let announced = self_id.lock().unwrap_or_else(|e| e.into_inner()).take();
                        if let Some(id) = announced.filter(|id| !id.is_empty()) {
                            *me.self_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
                        }
                        tracing::info!(%peer, ?role, "OneBot reverse connection");
                        me.serve(ws, api, shutdown).await;
                        tracing::warn!(%peer, "OneBot reverse connection closed");
                    }
                    Err(e) => tracing::warn!(%peer, error = %e, "OneBot handshake refused"),
                }
            });
        }
    }

    /// Serve one connection until it drops, times out or we shut down.
    async fn serve<S>(
        self: &Arc<Self>,
        ws: WebSocketStream<S>,
        api: bool,
        mut shutdown: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Link { id, api, tx });
        if api {
            let me = self.clone();
            tokio::spawn(async move { me.learn_login().await });
            // Messages held while we were away may go now.
            self.engine.outbox_ready.notify_waiters();
        }
        let mut silence = self.cfg.heartbeat_timeout_ms.map(Duration::from_millis);
        loop {
            let next = tokio::select! {
                n = next_or_timeout(&mut stream, silence) => n,
                _ = shutdown.changed() => break,
            };
            let frame = match next {
                Next::Frame(f) => f,
                Next::Silent => {
                    tracing::warn!(?silence, "no heartbeat from OneBot; reconnecting");
                    break;
                }
                Next::Closed => break,
            };
            match frame {
                Message::Text(text) => self.on_frame(text.as_str(), &mut silence),
                Message::Binary(bytes) => {
                    if let Ok(text) = std::str::from_utf8(&bytes) {
                        self.on_frame(text, &mut silence);
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|l| l.id != id);
        // Actions waiting on this link will never be answered.
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (link, _)| *link != id);
        writer.abort();
    }

    /// One JSON frame: an action's answer, a heartbeat, or an event.
    fn on_frame(&self, text: &str, silence: &mut Option<Duration>) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            tracing::debug!("OneBot frame is not JSON");
            return;
        };
        if v.get("post_type").is_none() {
            if let Some(echo) = v.get("echo").map(echo_key) {
                let waiter = self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&echo);
                if let Some((_, tx)) = waiter {
                    let _ = tx.send(v);
                }
            }
            return;
        }
        if let Some(id) = v.get("self_id").map(id_string) {
            let mut me = self.self_id.lock().unwrap_or_else(|e| e.into_inner());
            if me.is_none() {
                *me = Some(id);
            }
        }
        if v["post_type"] == "meta_event" {
            if v["meta_event_type"] == "heartbeat"
                && self.cfg.heartbeat_timeout_ms.is_none()
                && let Some(ms) = v.get("interval").and_then(Value::as_u64)
                && ms > 0
            {
                *silence = Some(Duration::from_millis(ms.saturating_mul(3)));
            }
            return;
        }
        let _ = self.events.send(v);
    }

    /// Ask who we are; the id tells @-mentions of the bot from others.
    async fn learn_login(&self) {
        match self.call("get_login_info", json!({})).await {
            Ok(data) => {
                if let Some(id) = data.get("user_id").map(id_string) {
                    // The account's number, not its nickname: no names in logs.
                    tracing::info!(account = %id, "OneBot logged in");
                    *self.self_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
                }
            }
            Err(e) => tracing::warn!(error = ?e, "get_login_info failed"),
        }
    }

    /// Call an action and wait for its answer's `data`.
    pub async fn call(&self, action: &str, params: Value) -> Result<Value, ActionError> {
        let (link_id, tx) = {
            let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
            match links.iter().rev().find(|l| l.api) {
                Some(l) => (l.id, l.tx.clone()),
                None => return Err(ActionError::Disconnected),
            }
        };
        let echo = format!("tb-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (done, wait) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(echo.clone(), (link_id, done));
        let frame = json!({"action": action, "params": params, "echo": echo}).to_string();
        if tx.send(Message::text(frame)).is_err() {
            self.forget(&echo);
            return Err(ActionError::Disconnected);
        }
        let timeout = Duration::from_millis(self.cfg.action_timeout_ms.max(1));
        let answer = match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(v)) => v,
            Ok(Err(_)) => return Err(ActionError::Disconnected),
            Err(_) => {
                self.forget(&echo);
                return Err(ActionError::Timeout);
            }
        };
        let retcode = answer.get("retcode").and_then(Value::as_i64).unwrap_or(0);
        let ok = answer.get("status").and_then(Value::as_str) != Some("failed")
            && (retcode == 0 || retcode == 1);
        if ok {
            Ok(answer.get("data").cloned().unwrap_or(Value::Null))
        } else {
            let message = ["wording", "message", "msg"]
                .iter()
                .filter_map(|k| answer.get(*k).and_then(Value::as_str))
                .find(|s| !s.is_empty())
                .unwrap_or_default()
                .to_string();
            Err(ActionError::Failed { retcode, message })
        }
    }

    /// A group member's display name (group card, else nickname), via
    /// `get_group_member_info`; `None` when the implementation can't tell.
    pub async fn member_name(&self, group: &str, user: &str) -> Option<String> {
        let (Ok(group), Ok(user)) = (group.parse::<i64>(), user.parse::<i64>()) else {
            return None;
        };
        let data = self
            .call(
                "get_group_member_info",
                json!({"group_id": group, "user_id": user, "no_cache": false}),
            )
            .await
            .ok()?;
        ["card", "nickname"]
            .iter()
            .filter_map(|k| data.get(*k).and_then(Value::as_str))
            .find(|s| !s.trim().is_empty())
            .map(String::from)
    }

    /// Where an uploaded file can be read, via `get_file`: a local path on
    /// the implementation's machine (`file`) or a download URL (`url`),
    /// for imports of files posted in a group.
    pub async fn file_location(&self, file_id: &str) -> Result<String, ActionError> {
        let data = self.call("get_file", json!({"file_id": file_id})).await?;
        ["url", "file"]
            .iter()
            .filter_map(|k| data.get(*k).and_then(Value::as_str))
            .find(|s| !s.is_empty())
            .map(String::from)
            .ok_or(ActionError::Failed {
                retcode: 0,
                message: "get_file answered without file or url".into(),
            })
    }

    /// The bytes of a file posted on QQ: a URL (image segments carry one)
    /// is fetched as is; anything else is a file id, which `get_file` turns
    /// into the bytes (`base64`), an http(s) URL, or a path on this machine
    /// (the implementation runs beside tuanbot), read only inside
    /// `onebot.file_dir`. Any other URL is refused. Within
    /// [`MAX_FILE_BYTES`](crate::chat::files::MAX_FILE_BYTES).
    pub async fn download(&self, file_ref: &str) -> Result<Vec<u8>, FetchError> {
        use crate::chat::files::{MAX_FILE_BYTES, http_get, is_http, is_url, read_local_within};
        use base64::Engine as _;
        if is_http(file_ref) {
            return http_get(file_ref).await;
        }
        let data = self
            .call("get_file", json!({"file_id": file_ref}))
            .await
            .map_err(|e| FetchError::Failed(format!("get_file: {e}")))?;
        let field = |k: &str| {
            data.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let name = field("file_name").unwrap_or_else(|| "file".into());
        if let Some(b64) = field("base64") {
            // Four characters carry three bytes.
            if b64.len() / 4 * 3 > MAX_FILE_BYTES {
                return Err(FetchError::TooBig(name));
            }
            return base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| FetchError::Failed(format!("get_file base64: {e}")));
        }
        if let Some(url) = field("url").filter(|u| is_http(u)) {
            return http_get(&url).await;
        }
        // A path (`file`, or a `url` that is one), or a `file://` URL: read
        // only inside onebot.file_dir. Any other scheme is refused.
        match field("file").or_else(|| field("url")) {
            Some(loc) if is_url(&loc) && !loc.to_ascii_lowercase().starts_with("file://") => {
                tracing::warn!(url = %loc, "get_file named a URL that is not http(s)");
                Err(FetchError::NotHttp(name))
            }
            Some(path) => read_local_within(self.cfg.file_dir.as_deref(), &path).await,
            None => Err(FetchError::Failed(
                "get_file answered without the file".into(),
            )),
        }
    }

    fn forget(&self, echo: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(echo);
    }

    /// Events are handled one at a time, in arrival order.
    async fn event_worker(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<Value>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => match ev { Some(ev) => ev, None => return },
                _ = shutdown.changed() => return,
            };
            self.on_event(&ev).await;
        }
    }

    async fn on_event(&self, ev: &Value) {
        let now = self.engine.now();
        let me = self.self_id();
        let incoming = match ev["post_type"].as_str() {
            Some("message") => {
                let from_bot = |id: &str| {
                    self.sent_ids
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .1
                        .contains(id)
                };
                incoming_from_message(ev, me.as_deref(), now, &from_bot)
            }
            Some("notice") => self.on_notice(ev, me.as_deref(), now).await,
            _ => None,
        };
        let Some(msg) = incoming else { return };
        self.kinds.note(&msg.chat_id, msg.chat_kind);
        // Queued for the engine's group-commit writer in arrival order; the
        // answer is awaited aside so the next event is read at once and a
        // rush of claims is handled in groups, not one commit each.
        // OneBot has no acknowledgement and does not redeliver: the engine
        // keeps the update queued through a database outage (waiting, in
        // arrival order) and keeps it as failed when its handling fails.
        let update = msg.update_id.clone();
        let answer = self.engine.submit(msg);
        tokio::spawn(async move {
            match answer.await {
                Ok(_) => {}
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, update = %update, "a QQ update was not handled (shutting down)");
                }
                Err(e) => {
                    tracing::error!(error = %e, update = %update, "handling a QQ update failed")
                }
            }
        });
    }

    /// Membership notices become chat events (the bot added or removed,
    /// someone else joining or leaving); a group upload becomes a message
    /// with a document attachment (for imports).
    async fn on_notice(
        &self,
        ev: &Value,
        me: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<Incoming> {
        let group = ev.get("group_id").map(id_string)?;
        match ev["notice_type"].as_str() {
            Some("group_increase") | Some("group_decrease") => Some(membership(ev, group, me, now)),
            Some("group_upload") => {
                let file = ev.get("file")?;
                let user = ev.get("user_id").map(id_string)?;
                let file_ref = file
                    .get("id")
                    .map(id_string)
                    .or_else(|| file.get("url").map(id_string))?;
                // A notice names no one: ask for the uploader's group card.
                let name = self.member_name(&group, &user).await;
                let mut msg = Incoming::text(
                    Platform::Qq,
                    format!("upload:{group}:{file_ref}"),
                    group,
                    ChatKind::Group,
                    user.clone(),
                    "",
                    now,
                )
                .from_name(name.unwrap_or(user));
                msg.attachments.push(Attachment {
                    kind: AttachmentKind::Document,
                    file_ref,
                    file_name: file.get("name").and_then(Value::as_str).map(String::from),
                });
                Some(msg)
            }
            _ => None,
        }
    }

    /// Group or private: from events seen, else the store, else group.
    async fn kind_of(&self, chat_id: &str) -> Result<ChatKind, SendError> {
        self.kinds
            .of(&self.engine.store, Platform::Qq, chat_id)
            .await
    }

    fn remember_sent(&self, id: &str) {
        let mut guard = self.sent_ids.lock().unwrap_or_else(|e| e.into_inner());
        let (order, set) = &mut *guard;
        if set.insert(id.to_string()) {
            order.push_back(id.to_string());
            if order.len() > SENT_IDS_KEPT
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        }
    }

    /// While disconnected: come back after a few reconnect attempts. Not
    /// much sooner, since every retry touches each held row; not later
    /// than 5 s, since a reconnect should be felt quickly.
    fn offline_wait(&self) -> Duration {
        Duration::from_millis(self.cfg.reconnect_min_ms.saturating_mul(5).clamp(100, 5000))
    }

    async fn send_message(&self, msg: &Outgoing) -> Result<Sent, SendError> {
        let target: i64 = msg
            .chat_id
            .parse()
            .map_err(|_| SendError::Rejected(format!("not a QQ chat id: {}", msg.chat_id)))?;
        if !self.connected() {
            return Err(SendError::RetryAfter(self.offline_wait()));
        }
        let kind = self.kind_of(&msg.chat_id).await?;
        let parts = segments::split_text(&msg.text, self.caps().max_text_chars);
        // Every part and every uploaded document is a new message in the
        // chat; in a group they all count against the group's cap (QQ
        // cannot edit, so there are no edits to leave out).
        let windowed = kind == ChatKind::Group;
        let documents = msg
            .attachments
            .iter()
            .filter(|a| a.kind == AttachmentKind::Document)
            .count();
        let mut pacer = self.pacer.lock().await;
        pacer
            .check(&msg.chat_id, parts.len() + documents, Instant::now())
            .map_err(SendError::RetryAfter)?;
        let mut first = None;
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                // Later parts keep the group interval too (bounded wait).
                for _ in 0..100 {
                    match pacer.check_part(&msg.chat_id, Instant::now()) {
                        Ok(()) => break,
                        Err(wait) => tokio::time::sleep(wait).await,
                    }
                }
            }
            // Photos ride in the last part, after the text they belong to.
            let images: Vec<String> = if i + 1 == parts.len() {
                msg.attachments
                    .iter()
                    .filter(|a| a.kind == AttachmentKind::Photo)
                    .map(|a| file_param(&a.source))
                    .collect()
            } else {
                Vec::new()
            };
            let images: Vec<&str> = images.iter().map(String::as_str).collect();
            let body = if i == 0 {
                segments::outgoing(msg.reply_to.as_deref(), &msg.mention_users, part, &images)
            } else {
                segments::outgoing(None, &[], part, &images)
            };
            let (action, params) = match kind {
                ChatKind::Private => (
                    "send_private_msg",
                    json!({"user_id": target, "message": body}),
                ),
                ChatKind::Group => (
                    "send_group_msg",
                    json!({"group_id": target, "message": body}),
                ),
            };
            // An unanswered part is retried whole: an earlier part may then
            // show twice, which beats losing the rest.
            let data = self
                .call(action, params)
                .await
                .map_err(|e| self.to_send_error(e))?;
            pacer.record_in(&msg.chat_id, Instant::now(), windowed);
            let id = data.get("message_id").map(id_string);
            if let Some(id) = &id {
                self.remember_sent(id);
            }
            if first.is_none() {
                first = id;
            }
        }
        for doc in msg
            .attachments
            .iter()
            .filter(|a| a.kind == AttachmentKind::Document)
        {
            // The text is out; a document that fails now is logged, not
            // retried, so the text is never sent twice.
            if let Err(e) = self.upload(kind, target, doc).await {
                tracing::warn!(chat = %msg.chat_id, file = %doc.describe(), error = ?e, "file upload failed");
            }
            pacer.record_in(&msg.chat_id, Instant::now(), windowed);
        }
        Ok(Sent { message_id: first })
    }

    /// Post a document with `upload_group_file` / `upload_private_file`
    /// (go-cqhttp extensions that NapCat, Lagrange and LLOneBot share). A
    /// QQ file id is first turned into a path or URL with `get_file`.
    async fn upload(&self, kind: ChatKind, target: i64, doc: &OutFile) -> Result<(), ActionError> {
        // A QQ file id is turned into a path or URL with `get_file` (group
        // file ids look like paths, `/a1b2-…`); an implementation without
        // `get_file` gets the id.
        let file = match &doc.source {
            FileSource::PlatformId(id) if !id.contains("://") => {
                match self.file_location(id).await {
                    Ok(f) => f,
                    Err(ActionError::Disconnected) => return Err(ActionError::Disconnected),
                    Err(_) => id.clone(),
                }
            }
            FileSource::Path(path) => path.display().to_string(),
            source => file_param(source),
        };
        let name = doc.file_name.clone().unwrap_or_else(|| {
            file.rsplit(['/', '\\'])
                .next()
                .unwrap_or("file")
                .to_string()
        });
        let (action, params) = match kind {
            ChatKind::Group => (
                "upload_group_file",
                json!({"group_id": target, "file": file, "name": name}),
            ),
            ChatKind::Private => (
                "upload_private_file",
                json!({"user_id": target, "file": file, "name": name}),
            ),
        };
        self.call(action, params).await.map(|_| ())
    }

    fn to_send_error(&self, e: ActionError) -> SendError {
        match e {
            // Not delivered as far as we know: keep it, without counting.
            ActionError::Disconnected => SendError::RetryAfter(self.offline_wait()),
            ActionError::Timeout => SendError::Transient("action timed out".into()),
            ActionError::Failed { retcode, message } => failure(retcode, &message),
        }
    }
}

/// A file as OneBot v11 takes it in an image segment or an upload: content
/// inline as `base64://…` (nothing to store on disk or upload first), a
/// local file as a `file://` URI, a URL or the implementation's own file
/// reference as is.
fn file_param(source: &FileSource) -> String {
    use base64::Engine as _;
    match source {
        FileSource::Bytes(bytes) => format!(
            "base64://{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
        FileSource::Path(path) => match url::Url::from_file_path(path) {
            Ok(u) => u.to_string(),
            Err(()) => path.display().to_string(),
        },
        FileSource::Url(s) | FileSource::PlatformId(s) => s.clone(),
    }
}

/// A membership notice as a chat event: the bot itself added or removed
/// (`kick_me`, or its own id), or someone else coming or going. Its update
/// id is derived from the notice (OneBot gives notices no id).
fn membership(ev: &Value, group: String, me: Option<&str>, now: DateTime<Utc>) -> Incoming {
    let user = ev.get("user_id").map(id_string).unwrap_or_default();
    let kind = ev["notice_type"].as_str().unwrap_or_default();
    let is_me = me == Some(user.as_str()) || ev["sub_type"] == "kick_me";
    let event = match (kind, is_me) {
        ("group_increase", true) => ChatEvent::BotAdded { needs_at: false },
        ("group_decrease", true) => ChatEvent::BotRemoved,
        _ => ChatEvent::MembersChanged,
    };
    let time = ev.get("time").map(id_string).unwrap_or_default();
    let actor = ev
        .get("operator_id")
        .map(id_string)
        .filter(|o| !o.is_empty() && o != "0")
        .unwrap_or_else(|| user.clone());
    Incoming::event(
        Platform::Qq,
        format!("notice:{kind}:{group}:{user}:{time}"),
        group,
        ChatKind::Group,
        actor,
        event,
        now,
    )
}

/// Sort a failed send: the bot out of the group ends that chat's queue; a
/// malformed request is refused for good; the rest may pass on retry.
pub fn failure(retcode: i64, message: &str) -> SendError {
    let lower = message.to_lowercase();
    const GONE: &[&str] = &[
        "not in group",
        "group not found",
        "group_not_found",
        "群不存在",
        "群聊不存在",
        "不在群",
        "不在该群",
        "已被移出",
    ];
    let text = format!("retcode {retcode}: {message}");
    if GONE.iter().any(|g| lower.contains(g)) {
        SendError::ChatGone(text)
    } else if retcode == 1400 || retcode == 1404 {
        SendError::Rejected(text)
    } else {
        SendError::Transient(text)
    }
}

enum Next {
    Frame(Message),
    Silent,
    Closed,
}

async fn next_or_timeout<S>(
    stream: &mut futures_util::stream::SplitStream<WebSocketStream<S>>,
    silence: Option<Duration>,
) -> Next
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let next = match silence {
        Some(t) => match tokio::time::timeout(t, stream.next()).await {
            Ok(n) => n,
            Err(_) => return Next::Silent,
        },
        None => stream.next().await,
    };
    match next {
        Some(Ok(m)) => Next::Frame(m),
        _ => Next::Closed,
    }
}

/// Does the handshake carry the token (header, or the query's
/// `access_token`, percent-decoded)? No token configured: everyone may
/// connect (allowed on loopback only, see `OneBotSettings::check_listen`).
fn authorized(req: &Request, token: Option<&str>) -> bool {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return true;
    };
    let header = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("Token "))
                .unwrap_or(v)
                .trim()
                .to_string()
        });
    // Every candidate is compared, so the time taken does not tell which
    // one came close.
    let query = url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned());
    header
        .into_iter()
        .chain(query)
        .fold(false, |ok, given| token_matches(&given, token) | ok)
}

/// `given == token` in time that depends on neither: both are hashed
/// (SHA-256) and the digests compared with `subtle`'s constant-time
/// equality, so neither the first differing byte nor the token's length
/// shows in the time a refusal takes.
fn token_matches(given: &str, token: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(token.as_bytes()),
    );
    let (a, b): ([u8; 32], [u8; 32]) = (a.into(), b.into());
    a.ct_eq(&b).into()
}

/// Ids arrive as numbers or strings depending on the implementation.
fn id_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn echo_key(v: &Value) -> String {
    id_string(v)
}

/// A `message` event as an [`Incoming`]; `None` for our own messages and
/// for events tuanbot does not read. `from_bot` tells whether a quoted
/// message id is one the bot sent.
pub fn incoming_from_message(
    ev: &Value,
    self_id: Option<&str>,
    now: DateTime<Utc>,
    from_bot: &dyn Fn(&str) -> bool,
) -> Option<Incoming> {
    if ev["post_type"] != "message" {
        return None;
    }
    let me = ev
        .get("self_id")
        .map(id_string)
        .or_else(|| self_id.map(String::from));
    let user = ev.get("user_id").map(id_string)?;
    if me.as_deref() == Some(user.as_str()) {
        return None;
    }
    let (chat_id, kind) = match ev["message_type"].as_str()? {
        "group" => (ev.get("group_id").map(id_string)?, ChatKind::Group),
        "private" => (user.clone(), ChatKind::Private),
        _ => return None,
    };
    let message_id = ev.get("message_id").map(id_string)?;
    let sender = &ev["sender"];
    let name = ["card", "nickname"]
        .iter()
        .filter_map(|k| sender.get(*k).and_then(Value::as_str))
        .find(|s| !s.trim().is_empty())
        .map(String::from)
        .unwrap_or_else(|| user.clone());
    let segs = match ev.get("message") {
        Some(m @ (Value::Array(_) | Value::String(_))) => segments::parse_message(m),
        _ => segments::parse_cq(ev["raw_message"].as_str().unwrap_or_default()),
    };
    // QQ message ids are 32-bit and recur over months; with the chat and
    // the event time the update id stays unique, and a redelivered event
    // (same id, same time) is still recognised.
    let time = ev.get("time").map(id_string).unwrap_or_default();
    let update_id = match kind {
        ChatKind::Group => format!("g{chat_id}:{message_id}:{time}"),
        ChatKind::Private => format!("p{chat_id}:{message_id}:{time}"),
    };
    let mut msg =
        Incoming::text(Platform::Qq, update_id, chat_id, kind, user, "", now).from_name(name);
    msg.message_id = Some(message_id);
    let mut text = String::new();
    let mut after_at = false;
    for seg in segs {
        match seg {
            Segment::Text(t) => {
                if after_at && !t.starts_with(char::is_whitespace) && !t.is_empty() {
                    text.push(' ');
                }
                text.push_str(&t);
                after_at = false;
            }
            Segment::At { qq, name } => {
                if me.as_deref() == Some(qq.as_str()) {
                    msg.mentions_bot = true;
                } else if qq != "all" {
                    if !text.is_empty() && !text.ends_with(char::is_whitespace) {
                        text.push(' ');
                    }
                    text.push('@');
                    text.push_str(&qq);
                    after_at = true;
                    msg.mentions.push(Mention {
                        display: format!("@{}", name.unwrap_or_else(|| qq.clone())),
                        user_id: qq,
                    });
                }
            }
            Segment::Reply(id) => {
                msg.reply_to = Some(ReplyRef {
                    from_bot: from_bot(&id),
                    message_id: id,
                    text: None,
                    // Only the id: the photo is found among recent photos.
                    attachments: Vec::new(),
                });
            }
            Segment::Image { file, url } => msg.attachments.push(Attachment {
                kind: AttachmentKind::Photo,
                file_ref: url.unwrap_or(file),
                file_name: None,
            }),
            Segment::File { file, name } => msg.attachments.push(Attachment {
                kind: AttachmentKind::Document,
                file_ref: file,
                file_name: name,
            }),
            Segment::Other => {}
        }
    }
    msg.text = text.trim().to_string();
    Some(msg)
}

impl ChatSender for OneBot {
    fn platform(&self) -> Platform {
        Platform::Qq
    }

    fn capabilities(&self) -> Capabilities {
        self.caps()
    }

    fn send<'a>(
        &'a self,
        msg: &'a Outgoing,
        _edit_target: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        // QQ cannot edit: an edit arrives here only if a service ignored
        // the capabilities, and goes out as a new message.
        Box::pin(self.send_message(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn group_message_with_at_and_reply() {
        let ev = json!({
            "post_type": "message", "message_type": "group", "self_id": 10001,
            "user_id": 42, "group_id": 555, "message_id": 9,
            "sender": {"card": "", "nickname": "小王"},
            "message": [
                {"type": "reply", "data": {"id": "77"}},
                {"type": "at", "data": {"qq": "10001"}},
                {"type": "text", "data": {"text": " /role "}},
                {"type": "at", "data": {"qq": "123"}},
                {"type": "text", "data": {"text": "cadre"}},
                {"type": "image", "data": {"file": "a.jpg", "url": "http://img/a.jpg"}}
            ]
        });
        let msg = incoming_from_message(&ev, None, at(), &|id| id == "77").unwrap();
        assert_eq!(msg.chat_id, "555");
        assert_eq!(msg.chat_kind, ChatKind::Group);
        assert_eq!(msg.sender_name, "小王");
        assert!(msg.mentions_bot);
        assert_eq!(msg.text, "/role @123 cadre");
        assert_eq!(msg.mentions[0].user_id, "123");
        assert!(msg.reply_to.as_ref().unwrap().from_bot);
        assert_eq!(msg.attachments[0].file_ref, "http://img/a.jpg");
        assert_eq!(msg.update_id, "g555:9:");
        assert_eq!(msg.message_id.as_deref(), Some("9"));
    }

    #[test]
    fn membership_notices_become_chat_events() {
        let notice = |kind: &str, sub: &str, user: i64| {
            json!({"time": 1_700_000_000, "self_id": 10001, "post_type": "notice",
                   "notice_type": kind, "sub_type": sub, "group_id": 5, "user_id": user,
                   "operator_id": 7})
        };
        let of = |ev: Value| membership(&ev, "5".into(), Some("10001"), at());
        let added = of(notice("group_increase", "invite", 10001));
        assert_eq!(added.event, Some(ChatEvent::BotAdded { needs_at: false }));
        assert_eq!(added.sender_id, "7", "who invited the bot");
        assert_eq!(added.update_id, "notice:group_increase:5:10001:1700000000");
        assert_eq!(
            of(notice("group_decrease", "kick_me", 10001)).event,
            Some(ChatEvent::BotRemoved)
        );
        assert_eq!(
            of(notice("group_increase", "approve", 46)).event,
            Some(ChatEvent::MembersChanged)
        );
        assert_eq!(
            of(notice("group_decrease", "leave", 46)).event,
            Some(ChatEvent::MembersChanged)
        );
    }

    #[test]
    fn own_messages_and_unknown_events_ignored() {
        let ev = json!({"post_type": "message", "message_type": "group", "self_id": 1,
            "user_id": 1, "group_id": 2, "message_id": 3, "message": "hi"});
        assert!(incoming_from_message(&ev, None, at(), &|_| false).is_none());
        let ev = json!({"post_type": "message_sent", "message_type": "group", "self_id": 1,
            "user_id": 1, "group_id": 2, "message_id": 3, "message": "hi"});
        assert!(incoming_from_message(&ev, None, at(), &|_| false).is_none());
    }

    #[test]
    fn failures_sorted() {
        assert!(matches!(
            failure(100, "GROUP_NOT_FOUND"),
            SendError::ChatGone(_)
        ));
        assert!(matches!(
            failure(1200, "机器人不在群内"),
            SendError::ChatGone(_)
        ));
        assert!(matches!(failure(1400, "bad"), SendError::Rejected(_)));
        assert!(matches!(failure(200, "timeout"), SendError::Transient(_)));
    }
}
