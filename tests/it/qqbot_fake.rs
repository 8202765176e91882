//! A fake QQ Bot API on loopback, speaking the real wire protocol and
//! enforcing the platform's rules (see the module doc of `chat::qqbot` for
//! the sources):
//!
//! - `POST /app/getAppAccessToken`: tokens for the right app id + secret,
//!   expiring after `token_ttl_s` on the fake's clock; every other
//!   endpoint wants `Authorization: QQBot TOKEN` (401 otherwise).
//! - `GET /gateway` → the WebSocket gateway (its own listener): Hello,
//!   Identify (token, intents: refused with close 4014 when not permitted),
//!   READY, heartbeats, Resume (replays what was missed, then RESUMED),
//!   and on demand a drop, Reconnect (op 7) or Invalid Session (op 9).
//! - `POST /v2/groups/{g}/messages`, `/v2/users/{u}/messages`: a reply
//!   names a message the fake delivered to that chat (`msg_id`) or an event
//!   (`event_id`), within 5 minutes (60 in a private chat) on the fake's
//!   clock, at most 5 replies, each `msg_seq` once; an unprompted message
//!   only where the owner's switch is on; at most `per_second` messages a
//!   second for the bot.
//! - `POST /v2/{groups|users}/{id}/files` → `file_info` for `msg_type` 7.
//! - Signed webhook delivery: [`Fake::deliver`] POSTs an event signed with
//!   the key derived from the secret, [`Fake::validate`] does op 13.
//! - `GET /download/{name}`: files the tests serve (attachments' URLs).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub const APP_ID: &str = "102000042";
pub const SECRET: &str = "naOC0ocQE3shWLAfffVLB1rhYPG7";
pub const GROUP_AND_C2C: u32 = 1 << 25;
pub const ALL_MESSAGES: u32 = 1 << 28;

/// One message the fake accepted.
#[derive(Debug, Clone)]
pub struct Got {
    /// `group` or `user`.
    pub route: String,
    pub chat: String,
    pub content: String,
    pub msg_type: i64,
    pub msg_id: Option<String>,
    pub event_id: Option<String>,
    pub msg_seq: Option<i64>,
    pub file_info: Option<String>,
}

/// A message or event the fake delivered, for checking replies to it.
#[derive(Debug, Clone)]
struct Delivered {
    chat: String,
    at_ms: i64,
    replies: Vec<i64>,
}

/// What a gateway connection is told to do.
enum Control {
    Frame(String),
    Close(Option<u16>),
}

#[derive(Default)]
pub struct FakeState {
    /// Added to the real time: the fake's clock.
    pub offset_ms: AtomicI64,
    pub token_ttl_s: AtomicI64,
    tokens: Mutex<HashMap<String, i64>>,
    pub token_requests: AtomicUsize,
    /// This machine's address is off the bot's IP allow-list: the OpenAPI
    /// refuses every call with 11298 (the token endpoint still answers).
    pub ip_blocked: std::sync::atomic::AtomicBool,
    /// Intents the bot may have.
    pub permitted: AtomicU32,
    pub identifies: Mutex<Vec<u32>>,
    pub resumes: AtomicUsize,
    pub heartbeats: AtomicUsize,
    session: Mutex<Option<String>>,
    /// Every dispatch with its sequence number, for Resume.
    log: Mutex<Vec<(u64, String)>>,
    seq: Mutex<u64>,
    conn: Mutex<Option<mpsc::UnboundedSender<Control>>>,
    pub connections: AtomicUsize,
    delivered: Mutex<HashMap<String, Delivered>>,
    /// The owner's switch per chat (group or user openid).
    active: Mutex<HashMap<String, bool>>,
    sends: Mutex<Vec<Got>>,
    /// Refusals: (chat, code).
    pub refusals: Mutex<Vec<(String, i64)>>,
    recent: Mutex<VecDeque<i64>>,
    pub per_second: AtomicUsize,
    /// After this many accepted messages, requests are taken and never
    /// answered (the platform "hangs"); counted in `held`.
    pub hold_after: Mutex<Option<usize>>,
    pub held: AtomicUsize,
    pub uploads: Mutex<Vec<Value>>,
    downloads: Mutex<HashMap<String, Vec<u8>>>,
    next_id: AtomicUsize,
    pub ws_addr: Mutex<Option<SocketAddr>>,
}

impl FakeState {
    pub fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::SeqCst)
    }

    pub fn sends(&self) -> Vec<Got> {
        self.sends.lock().unwrap().clone()
    }

    pub fn set_active(&self, chat: &str, on: bool) {
        self.active.lock().unwrap().insert(chat.to_string(), on);
    }

    fn id(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}",
            self.next_id.fetch_add(1, Ordering::SeqCst) + 1
        )
    }

    /// The platform's answer to a request without a valid token, if so.
    fn refuse_token(&self, headers: &HeaderMap) -> Option<Response> {
        if self.ip_blocked.load(Ordering::SeqCst) {
            return Some(error(
                StatusCode::UNAUTHORIZED,
                11298,
                "接口访问源IP不在白名单",
            ));
        }
        (!self.token_ok(headers))
            .then(|| error(StatusCode::UNAUTHORIZED, 11244, "token not exist or expire"))
    }

    fn token_ok(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get("Authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("QQBot "))
        else {
            return false;
        };
        let now = self.now_ms();
        self.tokens
            .lock()
            .unwrap()
            .get(token)
            .is_some_and(|until| *until > now)
    }
}

pub struct Fake {
    /// The OpenAPI (and token endpoint) address.
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
    http: reqwest::Client,
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json!({"code": code, "message": message, "trace_id": "fake"}).to_string(),
    )
        .into_response()
}

fn ok(v: Value) -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn token(State(st): State<Arc<FakeState>>, body: Bytes) -> Response {
    st.token_requests.fetch_add(1, Ordering::SeqCst);
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if v["appId"] != APP_ID || v["clientSecret"] != SECRET {
        return error(StatusCode::UNAUTHORIZED, 100016, "invalid appid or secret");
    }
    let ttl = st.token_ttl_s.load(Ordering::SeqCst);
    let token = st.id("tok-");
    st.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), st.now_ms() + ttl * 1000);
    ok(json!({"access_token": token, "expires_in": ttl.to_string()}))
}

async fn gateway(State(st): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    if let Some(refused) = st.refuse_token(&headers) {
        return refused;
    }
    let addr = st.ws_addr.lock().unwrap().expect("ws listening");
    ok(json!({"url": format!("ws://{addr}/websocket")}))
}

async fn download(State(st): State<Arc<FakeState>>, Path(name): Path<String>) -> Response {
    match st.downloads.lock().unwrap().get(&name) {
        Some(b) => (StatusCode::OK, b.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn files(
    State(st): State<Arc<FakeState>>,
    Path((route, chat)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = st.refuse_token(&headers) {
        return refused;
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let has_source = v["url"].as_str().is_some_and(|u| !u.is_empty())
        || v["file_data"].as_str().is_some_and(|d| !d.is_empty());
    if !(1..=4).contains(&v["file_type"].as_i64().unwrap_or(0)) || !has_source {
        return error(StatusCode::BAD_REQUEST, 40054009, "bad file");
    }
    let info = st.id("fi-");
    let mut rec = v.clone();
    rec["route"] = json!(route);
    rec["chat"] = json!(chat);
    rec["file_info"] = json!(info);
    st.uploads.lock().unwrap().push(rec);
    ok(json!({"file_uuid": st.id("fu-"), "file_info": info, "ttl": 3600}))
}

async fn messages(
    State(st): State<Arc<FakeState>>,
    Path((route, chat)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = st.refuse_token(&headers) {
        return refused;
    }
    let hold = *st.hold_after.lock().unwrap();
    if hold.is_some_and(|n| st.sends.lock().unwrap().len() >= n) {
        st.held.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let refuse = |code: i64, message: &str| {
        st.refusals.lock().unwrap().push((chat.clone(), code));
        error(StatusCode::BAD_REQUEST, code, message)
    };
    let msg_type = v["msg_type"].as_i64().unwrap_or(-1);
    let content = v["content"].as_str().unwrap_or_default().to_string();
    let file_info = v["media"]["file_info"].as_str().map(String::from);
    match msg_type {
        0 if content.trim().is_empty() => return refuse(50006, "消息为空"),
        0 => {}
        7 if file_info.is_none() => return refuse(40054009, "media required"),
        7 => {}
        _ => return refuse(40054001, "unsupported msg_type"),
    }
    let now = st.now_ms();
    {
        let mut recent = st.recent.lock().unwrap();
        while recent.front().is_some_and(|t| *t <= now - 1000) {
            recent.pop_front();
        }
        if recent.len() >= st.per_second.load(Ordering::SeqCst).max(1) {
            st.refusals.lock().unwrap().push((chat.clone(), 22009));
            return error(StatusCode::TOO_MANY_REQUESTS, 22009, "msg limit exceed");
        }
        recent.push_back(now);
    }
    let msg_id = v["msg_id"].as_str().map(String::from);
    let event_id = v["event_id"].as_str().map(String::from);
    let seq = v["msg_seq"].as_i64().unwrap_or(1);
    let window = if route == "groups" {
        5 * 60_000
    } else {
        60 * 60_000
    };
    match msg_id.as_ref().or(event_id.as_ref()) {
        Some(anchor) => {
            let mut delivered = st.delivered.lock().unwrap();
            let Some(d) = delivered.get_mut(anchor).filter(|d| d.chat == chat) else {
                drop(delivered);
                return refuse(40034024, "msg_id 无效");
            };
            if now - d.at_ms > window {
                drop(delivered);
                return refuse(40034005, "回复消息msg_id已过期");
            }
            if d.replies.contains(&seq) {
                drop(delivered);
                return refuse(40054005, "消息被去重，请检查请求msgseq");
            }
            if d.replies.len() >= 5 {
                drop(delivered);
                return refuse(304027, "被动回复次数超限");
            }
            d.replies.push(seq);
        }
        None => {
            if !st
                .active
                .lock()
                .unwrap()
                .get(&chat)
                .copied()
                .unwrap_or(false)
            {
                return refuse(40034105, "主动消息已关闭");
            }
        }
    }
    st.sends.lock().unwrap().push(Got {
        route: route.clone(),
        chat: chat.clone(),
        content,
        msg_type,
        msg_id,
        event_id,
        msg_seq: v["msg_seq"].as_i64(),
        file_info,
    });
    ok(json!({"id": st.id("bot-msg-"), "timestamp": now / 1000}))
}

/// Speak the gateway on one connection.
async fn gateway_conn(st: Arc<FakeState>, stream: tokio::net::TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    st.connections.fetch_add(1, Ordering::SeqCst);
    let (mut sink, mut stream) = ws.split();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 500}});
    if sink.send(Message::text(hello.to_string())).await.is_err() {
        return;
    }
    // Identify or Resume.
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    let Ok(Some(Ok(Message::Text(first)))) = first else {
        return;
    };
    let v: Value = serde_json::from_str(first.as_str()).unwrap_or(Value::Null);
    let token = v["d"]["token"]
        .as_str()
        .and_then(|t| t.strip_prefix("QQBot "))
        .unwrap_or_default()
        .to_string();
    let now = st.now_ms();
    let valid = st
        .tokens
        .lock()
        .unwrap()
        .get(&token)
        .is_some_and(|until| *until > now);
    if !valid {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::from(4004),
                reason: "invalid token".into(),
            })))
            .await;
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Control>();
    match v["op"].as_u64() {
        Some(2) => {
            let intents = v["d"]["intents"].as_u64().unwrap_or(0) as u32;
            st.identifies.lock().unwrap().push(intents);
            let permitted = st.permitted.load(Ordering::SeqCst);
            if intents & !permitted != 0 || intents == 0 {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::from(4014),
                        reason: "disallowed intents".into(),
                    })))
                    .await;
                return;
            }
            let session = format!("sess-{}", st.next_id.fetch_add(1, Ordering::SeqCst));
            *st.session.lock().unwrap() = Some(session.clone());
            let s = {
                let mut seq = st.seq.lock().unwrap();
                *seq += 1;
                *seq
            };
            let ready = json!({"op": 0, "s": s, "t": "READY", "d": {"version": 1,
                "session_id": session, "user": {"id": "bot-1", "username": "团务助手", "bot": true},
                "shard": [0, 1]}});
            if sink.send(Message::text(ready.to_string())).await.is_err() {
                return;
            }
        }
        Some(6) => {
            let session = v["d"]["session_id"].as_str().map(String::from);
            if session.is_none() || session != *st.session.lock().unwrap() {
                let _ = sink
                    .send(Message::text(json!({"op": 9, "d": false}).to_string()))
                    .await;
                return;
            }
            st.resumes.fetch_add(1, Ordering::SeqCst);
            let after = v["d"]["seq"].as_u64().unwrap_or(0);
            let missed: Vec<String> = st
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|(s, _)| *s > after)
                .map(|(_, f)| f.clone())
                .collect();
            for f in missed {
                if sink.send(Message::text(f)).await.is_err() {
                    return;
                }
            }
            let s = {
                let mut seq = st.seq.lock().unwrap();
                *seq += 1;
                *seq
            };
            let resumed = json!({"op": 0, "s": s, "t": "RESUMED", "d": ""});
            if sink.send(Message::text(resumed.to_string())).await.is_err() {
                return;
            }
        }
        _ => return,
    }
    *st.conn.lock().unwrap() = Some(tx);
    loop {
        tokio::select! {
            c = rx.recv() => match c {
                Some(Control::Frame(f)) => {
                    if sink.send(Message::text(f)).await.is_err() { break; }
                }
                Some(Control::Close(code)) => {
                    // `None`: a drop, without a close frame.
                    if let Some(code) = code {
                        let _ = sink.send(Message::Close(Some(CloseFrame {
                            code: CloseCode::from(code), reason: "".into() }))).await;
                    }
                    break;
                }
                None => break,
            },
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    if v["op"] == 1 {
                        st.heartbeats.fetch_add(1, Ordering::SeqCst);
                        if sink.send(Message::text(json!({"op": 11}).to_string())).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    }
}

impl Fake {
    pub async fn start() -> Fake {
        let state = Arc::new(FakeState::default());
        state.token_ttl_s.store(7200, Ordering::SeqCst);
        state
            .permitted
            .store(GROUP_AND_C2C | ALL_MESSAGES, Ordering::SeqCst);
        state.per_second.store(200, Ordering::SeqCst);
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind ws");
        *state.ws_addr.lock().unwrap() = Some(ws.local_addr().expect("ws addr"));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = ws.accept().await {
                tokio::spawn(gateway_conn(st.clone(), stream));
            }
        });
        let app = axum::Router::new()
            .route("/app/getAppAccessToken", axum::routing::post(token))
            .route("/gateway", axum::routing::get(gateway))
            .route("/v2/{route}/{chat}/messages", axum::routing::post(messages))
            .route("/v2/{route}/{chat}/files", axum::routing::post(files))
            .route("/download/{name}", axum::routing::get(download))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind api");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake {
            addr,
            state,
            http: reqwest::Client::new(),
        }
    }

    /// Point `settings.qqbot` at this fake.
    pub fn configure(&self, s: &mut tuanbot::config::Settings) {
        s.qqbot.app_id = Some(APP_ID.into());
        s.qqbot.secret = Some(SECRET.into());
        s.qqbot.api_url = Some(format!("http://{}", self.addr));
        s.qqbot.auth_url = Some(format!("http://{}/app/getAppAccessToken", self.addr));
        s.qqbot.reconnect_min_ms = 50;
        s.qqbot.reconnect_max_ms = 200;
        s.qqbot.request_timeout_ms = 3000;
        // The group cap (20 a minute, spread 3 s apart) is the pacer's, tested
        // with OneBot and Telegram; the fake enforces the bot's rate.
        s.qqbot.group_per_minute = 0;
        s.qqbot.per_second = 100;
    }

    /// Move the fake's clock.
    pub fn advance(&self, by: Duration) {
        self.state
            .offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn serve_file(&self, name: &str, bytes: Vec<u8>) -> String {
        self.state
            .downloads
            .lock()
            .unwrap()
            .insert(name.to_string(), bytes);
        format!("http://{}/download/{name}", self.addr)
    }

    /// Is a gateway session open?
    pub fn connected(&self) -> bool {
        self.state
            .conn
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|c| !c.is_closed())
    }

    fn note_delivered(&self, anchor: &str, chat: &str) {
        self.state.delivered.lock().unwrap().insert(
            anchor.to_string(),
            Delivered {
                chat: chat.to_string(),
                at_ms: self.state.now_ms(),
                replies: Vec::new(),
            },
        );
    }

    /// A dispatch payload for `t` with data `d`; the event id is `id`.
    fn payload(&self, t: &str, id: &str, d: Value) -> Value {
        json!({"op": 0, "t": t, "id": id, "d": d})
    }

    /// Send a dispatch over the gateway (logged for Resume; sent now when
    /// connected).
    pub fn push(&self, mut payload: Value) {
        let s = {
            let mut seq = self.state.seq.lock().unwrap();
            *seq += 1;
            *seq
        };
        payload["s"] = json!(s);
        let frame = payload.to_string();
        self.state.log.lock().unwrap().push((s, frame.clone()));
        if let Some(c) = self.state.conn.lock().unwrap().as_ref() {
            let _ = c.send(Control::Frame(frame));
        }
    }

    /// Close the gateway connection: `None` drops it without a frame.
    pub fn close(&self, code: Option<u16>) {
        if let Some(c) = self.state.conn.lock().unwrap().take() {
            let _ = c.send(Control::Close(code));
        }
    }

    /// Send a bare op (7 Reconnect, 9 Invalid Session) on the gateway.
    pub fn op(&self, op: u64) {
        if op == 9 {
            *self.state.session.lock().unwrap() = None;
        }
        if let Some(c) = self.state.conn.lock().unwrap().as_ref() {
            let _ = c.send(Control::Frame(json!({"op": op, "d": false}).to_string()));
        }
    }

    /// A group message event (`at`: `GROUP_AT_MESSAGE_CREATE`, else
    /// `GROUP_MESSAGE_CREATE`); the bot's @ is not in the content.
    pub fn group_msg(&self, id: &str, group: &str, member: &str, content: &str, at: bool) -> Value {
        self.note_delivered(id, group);
        let t = if at {
            "GROUP_AT_MESSAGE_CREATE"
        } else {
            "GROUP_MESSAGE_CREATE"
        };
        let content = if at {
            format!(" {content}")
        } else {
            content.to_string()
        };
        self.payload(
            t,
            &format!("{t}:{id}"),
            json!({"id": id, "content": content, "timestamp": "2026-05-01T10:00:00+08:00",
                   "group_id": group, "group_openid": group,
                   "author": {"id": member, "member_openid": member, "member_role": "member", "bot": false}}),
        )
    }

    /// A private (C2C) message, with attachments `(content_type, name, url)`.
    pub fn c2c_msg(
        &self,
        id: &str,
        user: &str,
        content: &str,
        files: &[(&str, &str, &str)],
    ) -> Value {
        self.note_delivered(id, user);
        let attachments: Vec<Value> = files
            .iter()
            .map(|(ct, name, url)| json!({"content_type": ct, "filename": name, "url": url, "size": 100}))
            .collect();
        self.payload(
            "C2C_MESSAGE_CREATE",
            &format!("C2C_MESSAGE_CREATE:{id}"),
            json!({"id": id, "content": content, "timestamp": "2026-05-01T10:00:00+08:00",
                   "author": {"id": user, "user_openid": user}, "attachments": attachments}),
        )
    }

    /// A robot event on a group (`GROUP_ADD_ROBOT`, `GROUP_DEL_ROBOT`,
    /// `GROUP_MSG_RECEIVE`, `GROUP_MSG_REJECT`); the owner's switch follows.
    pub fn group_event(&self, t: &str, id: &str, group: &str, member: &str) -> Value {
        match t {
            "GROUP_MSG_RECEIVE" => self.state.set_active(group, true),
            "GROUP_MSG_REJECT" => self.state.set_active(group, false),
            _ => {}
        }
        if t == "GROUP_ADD_ROBOT" || t == "GROUP_MSG_RECEIVE" {
            self.note_delivered(id, group);
        }
        self.payload(
            t,
            id,
            json!({"group_openid": group, "op_member_openid": member, "timestamp": 1_714_000_000}),
        )
    }

    /// POST an event to a webhook, signed as the platform signs; answers
    /// the status and body.
    pub async fn deliver(&self, url: &str, payload: &Value, good_signature: bool) -> (u16, Value) {
        let key = tuanbot::chat::qqbot::sign::key(SECRET).expect("key");
        let body = payload.to_string();
        let ts = (self.state.now_ms() / 1000).to_string();
        let mut sig = tuanbot::chat::qqbot::sign::sign(&key, &[ts.as_bytes(), body.as_bytes()]);
        if !good_signature {
            sig = tuanbot::chat::qqbot::sign::sign(&key, &[b"0", body.as_bytes()]);
        }
        let resp = self
            .http
            .post(url)
            .header("User-Agent", "QQBot-Callback")
            .header("X-Bot-Appid", APP_ID)
            .header("X-Signature-Ed25519", sig)
            .header("X-Signature-Timestamp", ts)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("webhook answered");
        let status = resp.status().as_u16();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }

    /// The op 13 validation: does the webhook sign the plain token with
    /// the secret's key?
    pub async fn validate(&self, url: &str) -> bool {
        use ed25519_dalek::Verifier;
        let plain = "Arq0D5A61EgUu4OxUvOp";
        let ts = "1725442341";
        let resp = self
            .http
            .post(url)
            .header("X-Bot-Appid", APP_ID)
            .body(json!({"op": 13, "d": {"plain_token": plain, "event_ts": ts}}).to_string())
            .send()
            .await
            .expect("validation answered");
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        let Some(sig) = v["signature"].as_str().and_then(|s| hex::decode(s).ok()) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(&sig) else {
            return false;
        };
        let key = tuanbot::chat::qqbot::sign::key(SECRET).expect("key");
        v["plain_token"] == plain
            && key
                .verifying_key()
                .verify(format!("{ts}{plain}").as_bytes(), &sig)
                .is_ok()
    }

    /// POST to the OpenAPI as a client would, for tests of the fake's rules.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("http://{}/app/getAppAccessToken", self.addr))
            .body(json!({"appId": APP_ID, "clientSecret": SECRET}).to_string())
            .send()
            .await
            .expect("token");
        let t: Value = resp.json().await.expect("token json");
        let token = t["access_token"].as_str().unwrap_or_default().to_string();
        let resp = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .header("Authorization", format!("QQBot {token}"))
            .body(body.to_string())
            .send()
            .await
            .expect("answered");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }
}
