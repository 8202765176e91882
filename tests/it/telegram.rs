//! Telegram end to end: a fake Bot API server on loopback (axum) that speaks
//! the real JSON of getMe, getUpdates, sendMessage, editMessageText,
//! answerCallbackQuery, getFile, setMyCommands and setWebhook, queues
//! updates for long polling, and records every request. Every wait is
//! bounded by [`PATIENCE`]; nothing asserts on elapsed time.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::Uri;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use tuanbot::app::{self, TelegramRunning};
use tuanbot::chat::Outgoing;
use tuanbot::config::Settings;
use tuanbot::domain::Platform;
use tuanbot::engine::Engine;
use tuanbot::store::{self, chats, kv, outbox};

use crate::helpers::{PATIENCE, TestDb, adapter_engine, stop_adapter, until, within};

pub const TOKEN: &str = "123456:TEST-token";
pub const BOT_ID: i64 = 999;

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
}

/// The fake Bot API's state: queued updates and what it was asked.
#[derive(Default)]
pub struct FakeApi {
    updates: Mutex<Vec<Value>>,
    next_update: AtomicI64,
    next_message: AtomicI64,
    calls: Mutex<Vec<Call>>,
    /// The next N sendMessage calls answer 429 with `retry_after` 1.
    pub too_many: AtomicUsize,
    /// Chats that answer 403 (bot kicked).
    pub kicked: Mutex<HashSet<i64>>,
    /// The next N sendMessage calls answer 502 Bad Gateway.
    pub bad_gateway: AtomicUsize,
    /// Groups that became supergroups: old id → new id.
    pub migrated: Mutex<std::collections::HashMap<i64, i64>>,
    /// What getWebhookInfo answers (no webhook when null).
    pub webhook_info: Mutex<Value>,
    /// Users who wrote to the bot privately: as on Telegram, a bot can't
    /// start a private conversation with anyone else (403).
    started: Mutex<HashSet<i64>>,
    /// Files uploaded with sendPhoto / sendDocument (multipart).
    pub uploads: Mutex<Vec<Upload>>,
}

/// A file uploaded in a multipart request.
#[derive(Debug, Clone)]
pub struct Upload {
    pub method: String,
    pub field: String,
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

impl FakeApi {
    /// Note a user who writes to the bot in a private chat.
    fn note_private(&self, update: &Value) {
        for chat in [
            &update["message"]["chat"],
            &update["callback_query"]["message"]["chat"],
        ] {
            if chat["type"] == "private"
                && let Some(id) = chat["id"].as_i64()
            {
                self.started.lock().unwrap().insert(id);
            }
        }
    }

    /// Queue an update; returns its update_id.
    pub fn push(&self, mut update: Value) -> i64 {
        self.note_private(&update);
        let id = self.next_update.fetch_add(1, Ordering::SeqCst) + 1;
        update["update_id"] = json!(id);
        self.updates.lock().unwrap().push(update);
        id
    }

    /// Queue several updates at once, so one getUpdates returns them all.
    pub fn push_batch(&self, updates: Vec<Value>) {
        for u in &updates {
            self.note_private(u);
        }
        let mut q = self.updates.lock().unwrap();
        for mut u in updates {
            let id = self.next_update.fetch_add(1, Ordering::SeqCst) + 1;
            u["update_id"] = json!(id);
            q.push(u);
        }
    }

    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == method)
            .map(|c| c.body.clone())
            .collect()
    }

    /// sendMessage calls that were accepted.
    pub fn sent(&self) -> Vec<Value> {
        self.calls("sendMessage:ok")
    }

    fn record(&self, method: &str, body: &Value) {
        self.calls.lock().unwrap().push(Call {
            method: method.to_string(),
            body: body.clone(),
        });
    }

    fn message(&self, chat: i64, text: &str) -> Value {
        let id = self.next_message.fetch_add(1, Ordering::SeqCst) + 1000;
        json!({
            "message_id": id, "date": 1_700_000_000,
            "chat": chat_json(chat),
            "from": {"id": BOT_ID, "is_bot": true, "first_name": "团务助手", "username": "tuan_bot"},
            "text": text
        })
    }
}

pub fn chat_json(chat: i64) -> Value {
    if chat < 0 {
        json!({"id": chat, "type": "supergroup", "title": format!("群{chat}")})
    } else {
        json!({"id": chat, "type": "private", "first_name": format!("用户{chat}")})
    }
}

fn ok(result: Value) -> axum::response::Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

fn err(code: u16, description: &str, parameters: Option<Value>) -> axum::response::Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(p) = parameters {
        body["parameters"] = p;
    }
    (
        axum::http::StatusCode::from_u16(code).unwrap(),
        axum::Json(body),
    )
        .into_response()
}

/// What the fake serves for the file `wishes-doc`.
const WISHES_CSV: &str = include_str!("../fixtures/wishes.csv");

async fn api(
    State(fake): State<Arc<FakeApi>>,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    if segs.first() == Some(&"file") {
        // teloxide sends the file path as one segment (`documents%2F…`).
        if segs.last().is_some_and(|p| p.ends_with("wishes.csv")) {
            return WISHES_CSV.into_response();
        }
        return "a,b\n1,2\n".into_response();
    }
    let (Some(bot), Some(method)) = (segs.first(), segs.get(1)) else {
        return err(404, "Not Found", None);
    };
    if *bot != format!("bot{TOKEN}") {
        return err(401, "Unauthorized", None);
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let parts = multipart_parts(&content_type, &body);
    let body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| multipart_fields(&parts));
    // Bot API method names are case-insensitive (teloxide sends `GetMe`).
    let method = [
        "getMe",
        "getUpdates",
        "sendMessage",
        "editMessageText",
        "getFile",
        "answerCallbackQuery",
        "setMyCommands",
        "setWebhook",
        "deleteWebhook",
        "sendPhoto",
        "sendDocument",
        "getWebhookInfo",
    ]
    .into_iter()
    .find(|m| m.eq_ignore_ascii_case(method))
    .unwrap_or("unknown");
    fake.record(method, &body);
    match method {
        "getMe" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "团务助手", "username": "tuan_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "getUpdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            // Long poll, shortened: answer as soon as there is something,
            // or after a moment with nothing.
            let until = Instant::now() + Duration::from_millis(300);
            loop {
                let batch: Vec<Value> = {
                    let mut q = fake.updates.lock().unwrap();
                    // Telegram forgets updates below the offset.
                    q.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                    q.clone()
                };
                if !batch.is_empty() || Instant::now() >= until {
                    return ok(Value::Array(batch));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        "sendMessage" => {
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            if let Some(new) = fake.migrated.lock().unwrap().get(&chat) {
                return err(
                    400,
                    "Bad Request: group chat was upgraded to a supergroup chat",
                    Some(json!({"migrate_to_chat_id": new})),
                );
            }
            if chat > 0 && !fake.started.lock().unwrap().contains(&chat) {
                return err(
                    403,
                    "Forbidden: bot can't initiate conversation with a user",
                    None,
                );
            }
            if fake.kicked.lock().unwrap().contains(&chat) {
                return err(
                    403,
                    "Forbidden: bot was kicked from the supergroup chat",
                    None,
                );
            }
            if fake
                .too_many
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return err(
                    429,
                    "Too Many Requests: retry after 1",
                    Some(json!({"retry_after": 1})),
                );
            }
            if fake
                .bad_gateway
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return err(502, "Bad Gateway", None);
            }
            fake.record("sendMessage:ok", &body);
            ok(fake.message(chat, body["text"].as_str().unwrap_or_default()))
        }
        "editMessageText" => {
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            let mut m = fake.message(chat, body["text"].as_str().unwrap_or_default());
            m["message_id"] = body["message_id"].clone();
            ok(m)
        }
        "sendPhoto" | "sendDocument" => {
            // As the Bot API: the file is a `file_id` or an http(s) URL as a
            // string, or uploaded as a multipart file part; a photo upload
            // must be an image.
            let field = if method == "sendPhoto" {
                "photo"
            } else {
                "document"
            };
            // A file part named after the field, or `attach://NAME` naming
            // one (what teloxide sends).
            let part_name = body[field]
                .as_str()
                .and_then(|s| s.strip_prefix("attach://"))
                .unwrap_or(field);
            let upload = parts
                .iter()
                .find(|p| p.name == part_name && p.file_name.is_some());
            if upload.is_none()
                && body[field]
                    .as_str()
                    .is_some_and(|s| s.starts_with("attach://"))
            {
                return err(400, "Bad Request: failed to get HTTP URL content", None);
            }
            match (upload, body[field].as_str()) {
                (Some(part), _) => {
                    let image = part.bytes.starts_with(b"\x89PNG\r\n\x1a\n")
                        || part.bytes.starts_with(&[0xFF, 0xD8, 0xFF]);
                    if method == "sendPhoto" && !image {
                        return err(400, "Bad Request: IMAGE_PROCESS_FAILED", None);
                    }
                    fake.uploads.lock().unwrap().push(Upload {
                        method: method.to_string(),
                        field: field.to_string(),
                        file_name: part.file_name.clone(),
                        bytes: part.bytes.clone(),
                    });
                }
                (None, Some(s)) if s.contains("://") => {
                    if !(s.starts_with("http://") || s.starts_with("https://")) {
                        return err(400, "Bad Request: wrong HTTP URL specified", None);
                    }
                }
                (None, Some(s)) if !s.is_empty() && !s.contains(char::is_whitespace) => {}
                (None, Some(_)) => {
                    return err(
                        400,
                        "Bad Request: wrong remote file identifier specified",
                        None,
                    );
                }
                (None, None) => {
                    return err(
                        400,
                        &format!("Bad Request: there is no {field} in the request"),
                        None,
                    );
                }
            }
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            fake.record(&format!("{method}:ok"), &body);
            ok(fake.message(chat, ""))
        }
        "getFile" if body["file_id"] == "wishes-doc" => ok(json!({
            "file_id": body["file_id"], "file_unique_id": "u2",
            "file_size": WISHES_CSV.len(), "file_path": "documents/wishes.csv"
        })),
        "getFile" => ok(json!({
            "file_id": body["file_id"], "file_unique_id": "u1", "file_size": 8,
            "file_path": "documents/orgs.csv"
        })),
        "answerCallbackQuery" | "setMyCommands" | "setWebhook" | "deleteWebhook" => ok(json!(true)),
        "getWebhookInfo" => {
            let info = fake.webhook_info.lock().unwrap().clone();
            ok(if info.is_null() {
                json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0})
            } else {
                info
            })
        }
        _ => err(404, "Not Found: method not found", None),
    }
}

/// One part of a multipart/form-data body.
#[derive(Debug, Clone)]
struct Part {
    name: String,
    /// Set for a file part (`filename="…"`).
    file_name: Option<String>,
    bytes: Vec<u8>,
}

/// The parts of a multipart/form-data body (teloxide sends `setWebhook`
/// and file uploads that way), bytes kept as sent; none when the body is
/// not multipart.
fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<Part> {
    let Some(boundary) = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|_| content_type.starts_with("multipart/form-data"))
    else {
        return Vec::new();
    };
    let delimiter = format!("--{boundary}").into_bytes();
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let mut parts = Vec::new();
    let mut at = match find(body, &delimiter, 0) {
        Some(i) => i + delimiter.len(),
        None => return parts,
    };
    while let Some(next) = find(body, &delimiter, at) {
        // Each part: CRLF, headers, CRLF CRLF, content, CRLF, delimiter.
        let chunk = &body[at..next];
        at = next + delimiter.len();
        let Some(split) = find(chunk, b"\r\n\r\n", 0) else {
            continue;
        };
        let head = String::from_utf8_lossy(&chunk[..split]);
        let content = &chunk[split + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        let attr = |key: &str| {
            let start = head.find(&format!("{key}=\""))? + key.len() + 2;
            let end = head[start..].find('"')? + start;
            Some(head[start..end].to_string())
        };
        let Some(name) = attr(" name") else { continue };
        parts.push(Part {
            name,
            file_name: attr("filename"),
            bytes: content.to_vec(),
        });
    }
    parts
}

/// The text fields of a multipart body as a JSON object (a file part as
/// its file name).
fn multipart_fields(parts: &[Part]) -> Value {
    let mut fields = serde_json::Map::new();
    for part in parts {
        let value = match &part.file_name {
            Some(name) => json!({"upload": name}),
            None => {
                let text = String::from_utf8_lossy(&part.bytes);
                serde_json::from_str(&text).unwrap_or_else(|_| json!(text))
            }
        };
        fields.insert(part.name.clone(), value);
    }
    Value::Object(fields)
}

/// Start a fake Bot API on a free loopback port.
pub async fn fake_api() -> (SocketAddr, Arc<FakeApi>) {
    let fake = Arc::new(FakeApi::default());
    let app = axum::Router::new().fallback(api).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, fake)
}

pub fn settings(db: &TestDb, addr: SocketAddr) -> Settings {
    let mut s = db.settings();
    s.telegram.token = Some(TOKEN.into());
    s.telegram.api_url = Some(format!("http://{addr}"));
    s.telegram.poll_timeout_s = 1;
    s.telegram.poll_retry_ms = 50;
    s.telegram.per_second = 1000;
    s.telegram.group_per_minute = 1000;
    s.telegram.chat_interval_ms = 0;
    s
}

struct Bot {
    engine: Arc<Engine>,
    tg: TelegramRunning,
    stop: watch::Sender<bool>,
}

impl Bot {
    async fn start(settings: Settings) -> Bot {
        let (engine, stop, shutdown) = adapter_engine(settings).await;
        let tg = within(
            PATIENCE,
            app::start_telegram(&engine, shutdown),
            "the Telegram adapter to start",
        )
        .await
        .expect("start telegram");
        Bot { engine, tg, stop }
    }

    async fn stop(self) {
        stop_adapter(
            &self.engine,
            self.stop,
            self.tg.dispatcher,
            self.tg.adapter.tasks,
        )
        .await;
    }

    /// Wait until nothing is pending any more (sends are marked right
    /// after the fake answered them).
    async fn settled(&self) {
        let deadline = Instant::now() + PATIENCE;
        while self.pending().await > 0 {
            assert!(Instant::now() < deadline, "queue not settled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn pending(&self) -> i64 {
        let mut conn = self.engine.store.conn().await.expect("conn");
        outbox::pending_count(&mut conn, Platform::Telegram)
            .await
            .expect("count")
    }
}

/// A message from `user` in their private chat with the bot.
pub fn private_text(message_id: i64, user: i64, text: &str) -> Value {
    group_text(message_id, user, user, text)
}

pub fn group_text(message_id: i64, chat: i64, user: i64, text: &str) -> Value {
    json!({"message": {
        "message_id": message_id, "date": 1_700_000_000,
        "chat": chat_json(chat),
        "from": {"id": user, "is_bot": false, "first_name": format!("用户{user}")},
        "text": text
    }})
}

/// Queue `per_chat` messages to each chat, as a broadcast would.
async fn queue(db: &TestDb, chats_: &[i64], per_chat: usize) {
    let store = db.store().await;
    let now = store::ms(chrono::Utc::now());
    let mut tx = store.begin().await.expect("begin");
    for k in 0..per_chat {
        for c in chats_ {
            let msg = Outgoing::new(Platform::Telegram, c.to_string(), format!("通知 {c}-{k}"));
            outbox::enqueue(&mut tx, &msg, now, None, now)
                .await
                .expect("enqueue");
        }
    }
    tx.commit().await.expect("commit");
    store.close().await;
}

fn texts_to(sent: &[Value], chat: i64) -> Vec<String> {
    sent.iter()
        .filter(|b| b["chat_id"].as_i64() == Some(chat))
        .filter_map(|b| b["text"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_help_gets_a_quoting_reply_once() {
    for db in TestDb::both().await {
        let (addr, fake) = fake_api().await;
        let bot = Bot::start(settings(&db, addr)).await;
        // Start-up: the command menu in zh and en, for groups and private chats.
        assert_eq!(fake.calls("getMe").len(), 1);
        let menus = fake.calls("setMyCommands");
        assert_eq!(menus.len(), 4, "{}", db.backend);
        assert!(menus.iter().any(|m| m["language_code"] == "en"));
        assert!(
            menus[0]["commands"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["command"] == "help" && c["description"] == "能做什么")
        );
        fake.push(group_text(71, -100555, 42, "/help@tuan_bot"));
        until("a reply", || !fake.sent().is_empty()).await;
        let reply = &fake.sent()[0];
        assert_eq!(reply["chat_id"], -100555);
        assert_eq!(reply["reply_parameters"]["message_id"], 71);
        assert!(
            reply["text"].as_str().unwrap().contains("我是 组织名"),
            "{reply}"
        );
        // The offset is persisted after the batch.
        until("offset saved", || {
            fake.calls("getUpdates")
                .last()
                .is_some_and(|b| b["offset"].as_i64() == Some(2))
        })
        .await;
        let mut conn = bot.engine.store.conn().await.expect("conn");
        assert_eq!(
            kv::get(&mut conn, "telegram.offset.999").await.expect("kv"),
            Some("2".into())
        );
        drop(conn);
        // Chatter in a group gets no reply.
        fake.push(group_text(72, -100555, 42, "大家好，明天开会"));
        until("polled past chatter", || {
            fake.calls("getUpdates")
                .last()
                .is_some_and(|b| b["offset"].as_i64() == Some(3))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fake.sent().len(), 1, "{}", db.backend);
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_query_is_answered() {
    for db in TestDb::both().await {
        let (addr, fake) = fake_api().await;
        let bot = Bot::start(settings(&db, addr)).await;
        fake.push(json!({"callback_query": {
            "id": "cbq-1",
            "from": {"id": 42, "is_bot": false, "first_name": "小王"},
            "chat_instance": "ci",
            "data": "/help",
            "message": {
                "message_id": 900, "date": 1_700_000_000, "chat": chat_json(-100777),
                "from": {"id": BOT_ID, "is_bot": true, "first_name": "团务助手", "username": "tuan_bot"},
                "text": "📢 通知"
            }
        }}));
        until("answer", || !fake.calls("answerCallbackQuery").is_empty()).await;
        assert_eq!(
            fake.calls("answerCallbackQuery")[0]["callback_query_id"],
            "cbq-1"
        );
        // The button's data was handled as a message in that group.
        until("reply", || !fake.sent().is_empty()).await;
        assert_eq!(fake.sent()[0]["chat_id"], -100777);
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_and_nothing_lost() {
    for db in TestDb::both().await {
        let groups = [-1001, -1002, -1003];
        queue(&db, &groups, 2).await;
        let (addr, fake) = fake_api().await;
        fake.too_many.store(2, Ordering::SeqCst);
        let bot = Bot::start(settings(&db, addr)).await;
        until("all six", || fake.sent().len() >= 6).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = fake.sent();
        assert_eq!(sent.len(), 6, "{}", db.backend);
        for g in groups {
            // Each group's messages exactly once, in the order written.
            assert_eq!(
                texts_to(&sent, g),
                vec![format!("通知 {g}-0"), format!("通知 {g}-1")],
                "{}",
                db.backend
            );
        }
        assert_eq!(
            fake.calls("sendMessage").len(),
            8,
            "two 429s then six sends"
        );
        bot.settled().await;
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_chat_stops_retries() {
    for db in TestDb::both().await {
        queue(&db, &[-2001, -2002], 3).await;
        let (addr, fake) = fake_api().await;
        fake.kicked.lock().unwrap().insert(-2001);
        let bot = Bot::start(settings(&db, addr)).await;
        until("the other group served", || {
            texts_to(&fake.sent(), -2002).len() >= 3
        })
        .await;
        bot.settled().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let tries = fake
            .calls("sendMessage")
            .iter()
            .filter(|b| b["chat_id"] == -2001)
            .count();
        assert_eq!(
            tries, 1,
            "{}: one try, then the chat is given up",
            db.backend
        );
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_queue_sends_each_message_once() {
    for db in TestDb::both().await {
        let chat = -3001;
        queue(&db, &[chat], 10).await;
        let (addr, fake) = fake_api().await;
        let mut s = settings(&db, addr);
        // One chat at 1 message per 150 ms: slow enough to stop midway.
        s.telegram.chat_interval_ms = 150;
        let bot = Bot::start(s.clone()).await;
        until("a few sent", || fake.sent().len() >= 3).await;
        bot.stop().await;
        let before = fake.sent().len();
        assert!(before < 10, "stopped before the end");
        let bot = Bot::start(s).await;
        until("all ten", || fake.sent().len() >= 10).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let expected: Vec<String> = (0..10).map(|k| format!("通知 {chat}-{k}")).collect();
        assert_eq!(texts_to(&fake.sent(), chat), expected, "{}", db.backend);
        bot.settled().await;
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_polling_at_the_saved_offset() {
    for db in TestDb::both().await {
        let (addr, fake) = fake_api().await;
        let s = settings(&db, addr);
        let bot = Bot::start(s.clone()).await;
        fake.push(group_text(1, -4001, 42, "/help"));
        until("first reply", || fake.sent().len() == 1).await;
        until("offset saved", || {
            fake.calls("getUpdates")
                .last()
                .is_some_and(|b| b["offset"].as_i64() == Some(2))
        })
        .await;
        bot.stop().await;
        let polls = fake.calls("getUpdates").len();
        let bot = Bot::start(s).await;
        until("polling again", || fake.calls("getUpdates").len() > polls).await;
        assert_eq!(
            fake.calls("getUpdates")[polls]["offset"],
            2,
            "{}",
            db.backend
        );
        fake.push(group_text(2, -4001, 42, "/help"));
        until("second reply", || fake.sent().len() == 2).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fake.sent().len(), 2);
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_to_group_greets_and_removed_goes_inactive() {
    for db in TestDb::both().await {
        let (addr, fake) = fake_api().await;
        let bot = Bot::start(settings(&db, addr)).await;
        let change = |old: &str, new: &str| {
            json!({"my_chat_member": {
                "chat": chat_json(-5001),
                "from": {"id": 42, "is_bot": false, "first_name": "小王"},
                "date": 1_700_000_000,
                "old_chat_member": {"user": {"id": BOT_ID, "is_bot": true, "first_name": "团务助手"}, "status": old},
                "new_chat_member": {"user": {"id": BOT_ID, "is_bot": true, "first_name": "团务助手"}, "status": new, "until_date": 0}
            }})
        };
        fake.push(change("left", "member"));
        until("greeting", || !fake.sent().is_empty()).await;
        let greeting = fake.sent()[0]["text"].as_str().unwrap().to_string();
        assert!(greeting.contains("/bind"), "{greeting}");
        fake.push(change("member", "kicked"));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut conn = bot.engine.store.conn().await.expect("conn");
            let chat = chats::find(&mut conn, Platform::Telegram, "-5001")
                .await
                .expect("find")
                .expect("chat recorded");
            if !chat.active {
                break;
            }
            assert!(Instant::now() < deadline, "chat still active");
            drop(conn);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Group → supergroup: the chat moves to the new id.
        fake.push(json!({"message": {
            "message_id": 3, "date": 1_700_000_000, "chat": {"id": -5001, "type": "group", "title": "g"},
            "from": {"id": 42, "is_bot": false, "first_name": "小王"},
            "migrate_to_chat_id": -1005001
        }}));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut conn = bot.engine.store.conn().await.expect("conn");
            if chats::find(&mut conn, Platform::Telegram, "-1005001")
                .await
                .expect("find")
                .is_some()
            {
                break;
            }
            assert!(Instant::now() < deadline, "not migrated");
            drop(conn);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Each event applied once, audited, by the service the adapter
        // submitted it to.
        let mut conn = bot.engine.store.conn().await.expect("conn");
        for action in ["chat.joined", "chat.left", "chat.migrate"] {
            assert_eq!(
                tuanbot::store::audit::count_action(&mut conn, action)
                    .await
                    .expect("count"),
                1,
                "{}: {action}",
                db.backend
            );
        }
        drop(conn);
        bot.stop().await;
    }
}

/// A bare HTTP/1.1 POST; returns the status code.
async fn post(addr: SocketAddr, secret: Option<&str>, body: &str) -> u16 {
    within(PATIENCE, post_raw(addr, secret, body), "a webhook answer").await
}

async fn post_raw(addr: SocketAddr, secret: Option<&str>, body: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let header = secret
        .map(|s| format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST /tg HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_checks_the_secret() {
    for db in TestDb::both().await {
        let (addr, fake) = fake_api().await;
        let mut s = settings(&db, addr);
        s.telegram.webhook_url = Some("https://bot.example.org/tg".into());
        s.telegram.webhook_listen = Some("127.0.0.1:0".into());
        s.telegram.webhook_secret = Some("hush-42".into());
        let bot = Bot::start(s).await;
        let hook = bot.tg.adapter.webhook_addr.expect("webhook address");
        let set = fake.calls("setWebhook");
        assert_eq!(set.len(), 1);
        assert_eq!(set[0]["secret_token"], "hush-42");
        assert_eq!(set[0]["url"], "https://bot.example.org/tg");
        assert!(
            fake.calls("getUpdates").is_empty(),
            "no polling with a webhook"
        );
        let update = json!({"update_id": 500}).to_string();
        let mut body: Value = group_text(9, -6001, 42, "/help");
        body["update_id"] = json!(500);
        let body = body.to_string();
        assert_eq!(post(hook, None, &body).await, 401);
        assert_eq!(post(hook, Some("wrong"), &body).await, 401);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(fake.sent().is_empty(), "{}", db.backend);
        assert_eq!(post(hook, Some("hush-42"), &body).await, 200);
        // Redelivered by Telegram: handled once.
        assert_eq!(post(hook, Some("hush-42"), &body).await, 200);
        until("reply", || !fake.sent().is_empty()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fake.sent().len(), 1, "{}", db.backend);
        // An update of a kind we ignore is still accepted.
        assert_eq!(post(hook, Some("hush-42"), &update).await, 200);
        assert_eq!(post(hook, Some("hush-42"), "not json").await, 400);
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_downloaded_via_get_file() {
    let db = TestDb::sqlite().await;
    let (addr, fake) = fake_api().await;
    let bot = Bot::start(settings(&db, addr)).await;
    let data = bot.tg.bot.download("doc-1").await.expect("download");
    assert_eq!(data, b"a,b\n1,2\n");
    assert_eq!(fake.calls("getFile")[0]["file_id"], "doc-1");
    bot.stop().await;
}

/// Staff send the wish list as a document captioned `/wishes import NAME`,
/// or reply to it with the command: the engine downloads it through
/// `getFile` before the update's transaction and imports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wish_lists_sent_as_documents_are_imported() {
    for db in TestDb::both().await {
        let (addr, fake) = fake_api().await;
        let mut s = settings(&db, addr);
        s.admins = vec!["telegram:1".into()];
        let bot = Bot::start(s).await;
        let g = -8102;
        let document = json!({"file_id": "wishes-doc", "file_unique_id": "u2",
                              "file_name": "心愿.csv", "mime_type": "text/csv"});
        let mut captioned = group_text(1, g, 1, "");
        captioned["message"]
            .as_object_mut()
            .expect("message")
            .remove("text");
        captioned["message"]["document"] = document.clone();
        captioned["message"]["caption"] = json!("/wishes import 一批");
        let mut replying = group_text(2, g, 1, "/wishes import 二批");
        let mut quoted = group_text(1, g, 1, "")["message"].clone();
        quoted.as_object_mut().expect("message").remove("text");
        quoted["document"] = document;
        replying["message"]["reply_to_message"] = quoted;
        fake.push_batch(vec![captioned, replying]);
        until("both imported", || {
            texts_to(&fake.sent(), g)
                .iter()
                .filter(|t| t.starts_with("✅ 已导入"))
                .count()
                >= 2
        })
        .await;
        let texts = texts_to(&fake.sent(), g);
        for name in ["一批", "二批"] {
            let done = format!("✅ 已导入「{name}」：800 个微心愿");
            assert!(
                texts.iter().any(|t| t.starts_with(&done)),
                "{}: {texts:?}",
                db.backend
            );
        }
        assert!(
            fake.calls("getFile")
                .iter()
                .all(|c| c["file_id"] == "wishes-doc")
        );
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_come_in_one_batch_one_wins() {
    // A sign-up list with one place: the same first-come rule as claims
    // (see `two_claims_in_one_batch_one_wins`).
    for db in TestDb::both().await {
        let (addr, fake) = fake_api().await;
        let mut s = settings(&db, addr);
        s.admins = vec!["telegram:1".into()];
        let bot = Bot::start(s).await;
        let g = -8001;
        fake.push_batch(vec![
            group_text(1, g, 2, "我是 县一中"),
            group_text(2, g, 3, "我是 县一中"),
            group_text(3, g, 1, "同意 用户2"),
            group_text(4, g, 1, "同意 用户3"),
            group_text(5, g, 1, "/event 团课 3月12日 14:00 会议室 名额1"),
        ]);
        until("set-up replies", || {
            texts_to(&fake.sent(), g)
                .iter()
                .any(|t| t.starts_with("📝 报名 #1"))
        })
        .await;
        fake.push_batch(vec![
            group_text(6, g, 2, "报名 1"),
            group_text(7, g, 3, "报名 1"),
        ]);
        // The list post gathers both: one place taken, one on the waiting list.
        let board = || {
            let mut all = fake.sent();
            all.extend(fake.calls("editMessageText"));
            texts_to(&all, g)
                .into_iter()
                .rev()
                .find(|t| t.contains("候补"))
        };
        until("both answered", || board().is_some()).await;
        let board = board().unwrap_or_default();
        assert!(board.contains("（1/1）"), "{}: {board}", db.backend);
        let taken = board.contains("1. 用户2\n候补（1）：\n1. 用户3")
            || board.contains("1. 用户3\n候补（1）：\n1. 用户2");
        assert!(taken, "{}: {board}", db.backend);
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_follows_a_group_upgraded_to_a_supergroup() {
    for db in TestDb::both().await {
        queue(&db, &[-9001], 2).await;
        let (addr, fake) = fake_api().await;
        fake.migrated.lock().unwrap().insert(-9001, -1009001);
        let bot = Bot::start(settings(&db, addr)).await;
        until("both at the new id", || {
            texts_to(&fake.sent(), -1009001).len() >= 2
        })
        .await;
        assert_eq!(
            texts_to(&fake.sent(), -1009001),
            vec!["通知 -9001-0".to_string(), "通知 -9001-1".to_string()],
            "{}",
            db.backend
        );
        bot.settled().await;
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_edits_and_attachments() {
    for db in TestDb::both().await {
        let chat = -10_001;
        {
            let store = db.store().await;
            let now = store::ms(chrono::Utc::now());
            let mut tx = store.begin().await.expect("begin");
            let mut board = Outgoing::new(Platform::Telegram, chat.to_string(), "📋 进度 0/2");
            board.buttons = vec![vec![tuanbot::chat::Button {
                label: "收到".into(),
                data: "收到 1".into(),
            }]];
            let first = outbox::enqueue(&mut tx, &board, now, None, now)
                .await
                .expect("enqueue");
            let mut edit = board.clone();
            edit.text = "📋 进度 1/2".into();
            edit.edit_of = Some(first);
            outbox::enqueue(&mut tx, &edit, now, None, now)
                .await
                .expect("enqueue");
            let mut notice = Outgoing::new(Platform::Telegram, chat.to_string(), "📢 通知 #1");
            notice.attachments = vec![
                tuanbot::chat::OutFile {
                    kind: tuanbot::chat::AttachmentKind::Photo,
                    source: tuanbot::chat::FileSource::PlatformId("photo-1".into()),
                    file_name: None,
                },
                tuanbot::chat::OutFile {
                    kind: tuanbot::chat::AttachmentKind::Document,
                    source: tuanbot::chat::FileSource::PlatformId("doc-1".into()),
                    file_name: Some("名单.xlsx".into()),
                },
            ];
            outbox::enqueue(&mut tx, &notice, now, None, now)
                .await
                .expect("enqueue");
            tx.commit().await.expect("commit");
            store.close().await;
        }
        let (addr, fake) = fake_api().await;
        let bot = Bot::start(settings(&db, addr)).await;
        until("document", || !fake.calls("sendDocument").is_empty()).await;
        let sent = fake.sent();
        assert_eq!(sent.len(), 2, "{}", db.backend);
        let button = &sent[0]["reply_markup"]["inline_keyboard"][0][0];
        assert_eq!(button["text"], "收到");
        assert_eq!(button["callback_data"], "收到 1");
        let edits = fake.calls("editMessageText");
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0]["text"], "📋 进度 1/2");
        assert_eq!(
            edits[0]["message_id"], 1000,
            "the board's own id (first send)"
        );
        assert_eq!(fake.calls("sendPhoto")[0]["photo"], "photo-1");
        assert_eq!(fake.calls("sendDocument")[0]["document"], "doc-1");
        bot.settled().await;
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_run_serves_telegram_from_teloxide_token() {
    let db = TestDb::sqlite().await;
    let (addr, fake) = fake_api().await;
    /// Kills the child even when an assertion fails.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(
        std::process::Command::new(env!("CARGO_BIN_EXE_tuanbot"))
            .arg("run")
            .env_remove("TUANBOT_TELEGRAM__TOKEN")
            .env_remove("TUANBOT_ONEBOT__WS_URL")
            .env("TELOXIDE_TOKEN", TOKEN)
            .env("TUANBOT_DATABASE_URL", &db.url)
            .env("TUANBOT_TELEGRAM__API_URL", format!("http://{addr}"))
            .env("TUANBOT_TELEGRAM__POLL_TIMEOUT_S", "1")
            .current_dir(std::env::temp_dir())
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn tuanbot"),
    );
    until("polling", || !fake.calls("getUpdates").is_empty()).await;
    fake.push(group_text(5, -11_001, 42, "/help"));
    until("reply from the binary", || !fake.sent().is_empty()).await;
    assert_eq!(fake.sent()[0]["chat_id"], -11_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_become_text_mentions() {
    for db in TestDb::both().await {
        let (addr, fake) = fake_api().await;
        let bot = Bot::start(settings(&db, addr)).await;
        let chat = -12_001;
        // 用户42 speaks once, so the bot knows the name.
        fake.push(group_text(1, chat, 42, "/help"));
        until("reply", || fake.sent().len() == 1).await;
        {
            let now = store::ms(chrono::Utc::now());
            let mut tx = bot.engine.store.begin().await.expect("begin");
            let mut m = Outgoing::new(Platform::Telegram, chat.to_string(), "⏰ 请确认通知 #1");
            m.mention_users = vec!["42".into(), "li_user".into()];
            outbox::enqueue(&mut tx, &m, now, None, now)
                .await
                .expect("enqueue");
            tx.commit().await.expect("commit");
            bot.engine.outbox_ready.notify_waiters();
        }
        until("reminder", || fake.sent().len() == 2).await;
        let sent = &fake.sent()[1];
        assert_eq!(
            sent["text"], "用户42 @li_user\n⏰ 请确认通知 #1",
            "{}",
            db.backend
        );
        let e = &sent["entities"][0];
        assert_eq!(e["type"], "text_mention");
        assert_eq!(e["user"]["id"], 42);
        assert_eq!(
            (e["offset"].as_i64(), e["length"].as_i64()),
            (Some(0), Some(4))
        );
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_is_retried_with_back_off() {
    for db in TestDb::both().await {
        queue(&db, &[-13_001], 1).await;
        let (addr, fake) = fake_api().await;
        fake.bad_gateway.store(1, Ordering::SeqCst);
        let bot = Bot::start(settings(&db, addr)).await;
        // teloxide waits 10 s after a 5xx before it reports the error (its
        // own back-off); the dispatcher then retries after one more second.
        until("sent after the 502", || fake.sent().len() == 1).await;
        bot.settled().await;
        assert_eq!(fake.calls("sendMessage").len(), 2, "{}", db.backend);
        bot.stop().await;
    }
}

/// `认领 12` from two users of different orgs in one `getUpdates` batch: one
/// wins, the other is told who holds it, in one gathered message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_claims_in_one_batch_one_wins() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wishes.csv");
    for db in TestDb::both().await {
        let (addr, fake) = fake_api().await;
        let mut s = settings(&db, addr);
        s.admins = vec!["telegram:1".into()];
        let bot = Bot::start(s).await;
        tuanbot::service::wishes::import_file(
            &bot.engine.store,
            std::path::Path::new(fixture),
            "2026圆梦",
            "zh-CN",
        )
        .await
        .expect("import");
        let g = -8101;
        fake.push_batch(vec![
            group_text(1, g, 1, "/bind 全县"),
            group_text(2, g, 2, "我是 县一中"),
            group_text(3, g, 3, "我是 县二中"),
            group_text(4, g, 1, "同意 用户2"),
            group_text(5, g, 1, "同意 用户3"),
            group_text(6, g, 1, "/wishes publish 2026圆梦 quota 5"),
        ]);
        until("published", || {
            texts_to(&fake.sent(), g)
                .iter()
                .any(|t| t.contains("圆梦行动"))
        })
        .await;
        fake.push_batch(vec![
            group_text(7, g, 2, "认领 12"),
            group_text(8, g, 3, "认领 12"),
        ]);
        let result = || {
            texts_to(&fake.sent(), g)
                .into_iter()
                .find(|t| t.contains("12") && t.contains("已被"))
        };
        until("claim results", || result().is_some()).await;
        let text = result().unwrap_or_default();
        assert_eq!(text.matches("✅").count(), 1, "{}: {text}", db.backend);
        assert!(
            text.contains("✅ 县一中：12") && text.contains("❌ 县二中：12 已被县一中认领"),
            "{}: {text}",
            db.backend
        );
        bot.stop().await;
    }
}

/// A join request reaches the org's cadre privately, where Telegram lets
/// the bot write (the cadre started a chat with it; the fake refuses a
/// private message to anyone else), with 同意 / 拒绝 buttons; the cadre's
/// press approves it, the card is edited, and the newcomer, who never wrote
/// to the bot privately, is told in the group where they asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_request_reaches_the_cadre_privately_with_buttons() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (addr, fake) = fake_api().await;
        let mut s = settings(&db, addr);
        s.admins = vec!["telegram:1".into()];
        let bot = Bot::start(s).await;
        let g = -8301;
        fake.push(private_text(1, 5, "我是 县一中"));
        until("5 asked", || !texts_to(&fake.sent(), 5).is_empty()).await;
        fake.push(group_text(2, g, 1, "/role 5 团干部"));
        until("5 made cadre", || {
            texts_to(&fake.sent(), g)
                .iter()
                .any(|t| t.contains("的团干部"))
        })
        .await;
        fake.push(group_text(3, g, 7, "我是 县一中"));
        let card = || {
            fake.sent().into_iter().find(|m| {
                m["chat_id"] == 5 && m["text"].as_str().unwrap_or("").contains("用户7 申请加入")
            })
        };
        until("the card", || card().is_some()).await;
        let card = card().unwrap_or_default();
        assert!(
            card["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("🙋 用户7 申请加入 县一中团委（#2）"),
            "{b}: {card}"
        );
        let row = &card["reply_markup"]["inline_keyboard"][0];
        assert_eq!(
            (&row[0]["text"], &row[0]["callback_data"]),
            (&json!("同意"), &json!("同意 2")),
            "{b}: {card}"
        );
        assert_eq!(row[1]["callback_data"], "拒绝 2", "{b}");
        until("the asker's line", || {
            texts_to(&fake.sent(), g)
                .iter()
                .any(|t| t.contains("已向 县一中团委 的团干部提出加入申请"))
        })
        .await;
        // The cadre presses 同意 on the card.
        fake.push(json!({"callback_query": {
            "id": "cbq-join",
            "from": {"id": 5, "is_bot": false, "first_name": "用户5"},
            "chat_instance": "ci",
            "data": "同意 2",
            "message": {
                "message_id": 1003, "date": 1_700_000_000, "chat": chat_json(5),
                "from": {"id": BOT_ID, "is_bot": true, "first_name": "团务助手", "username": "tuan_bot"},
                "text": card["text"]
            }
        }}));
        until("answered", || !fake.calls("answerCallbackQuery").is_empty()).await;
        until("the newcomer told in the group", || {
            texts_to(&fake.sent(), g)
                .iter()
                .any(|t| t.contains("用户7，你已加入 县一中团委（团员）"))
        })
        .await;
        until("the card edited", || {
            fake.calls("editMessageText").iter().any(|e| {
                e["chat_id"] == 5 && e["text"] == "✅ #2 用户7 已加入 县一中团委（用户5 同意）"
            })
        })
        .await;
        until("the cadre answered", || {
            texts_to(&fake.sent(), 5)
                .iter()
                .any(|t| t == "✅ 已同意 用户7 加入 县一中团委。")
        })
        .await;
        // Nothing was tried privately to 7 (who never wrote there).
        assert!(
            !fake.calls("sendMessage").iter().any(|m| m["chat_id"] == 7),
            "{b}"
        );
        let mut conn = bot.engine.store.conn().await.expect("conn");
        let p = tuanbot::store::people::find(&mut conn, Platform::Telegram, "7")
            .await
            .expect("find")
            .expect("person");
        drop(conn);
        let org = crate::helpers::org_id(&bot.engine.store, "县一中").await;
        assert_eq!(p.org_id, Some(org), "{b}");
        bot.settled().await;
        bot.stop().await;
    }
}
fn quoted(sent: &[Value]) -> Vec<i64> {
    sent.iter()
        .filter_map(|b| b["reply_parameters"]["message_id"].as_i64())
        .collect()
}

async fn kept_failed(engine: &Engine) -> Vec<tuanbot::store::failed::Failed> {
    let mut conn = engine.store.conn().await.expect("conn");
    tuanbot::store::failed::list(&mut conn)
        .await
        .expect("failed updates")
}

/// A polled update whose handling panics (the engine's fault seam) is
/// kept as failed after three tries and its sender gets an apology; the
/// updates of its batch around it are answered, the offset is saved past
/// all of them, and a restart handles none of them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_update_is_kept_and_polling_goes_on() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (addr, fake) = fake_api().await;
        let s = settings(&db, addr);
        let bot = Bot::start(s.clone()).await;
        bot.engine
            .inject_fault(Some(Arc::new(|m: &tuanbot::chat::Incoming| {
                if m.update_id == "2" {
                    panic!("poison");
                }
            })));
        fake.push_batch(vec![
            group_text(81, -7001, 41, "/whoami"),
            group_text(82, -7001, 42, "/whoami"),
            group_text(83, -7001, 43, "/whoami"),
        ]);
        until("three messages", || fake.sent().len() >= 3).await;
        let sent = fake.sent();
        assert_eq!(quoted(&sent), [81, 82, 83], "{b}");
        assert!(sent[1]["text"].as_str().unwrap().contains("抱歉"), "{b}");
        until("offset saved past the batch", || {
            fake.calls("getUpdates")
                .last()
                .is_some_and(|c| c["offset"].as_i64() == Some(4))
        })
        .await;
        assert_eq!(kept_failed(&bot.engine).await.len(), 1, "{b}");
        bot.stop().await;
        // After a restart: nothing of the batch again.
        let polls = fake.calls("getUpdates").len();
        let bot = Bot::start(s).await;
        until("polling again", || {
            fake.calls("getUpdates").len() > polls + 1
        })
        .await;
        assert_eq!(fake.calls("getUpdates")[polls]["offset"], 4, "{b}");
        assert_eq!(fake.sent().len(), 3, "{b}");
        let mut conn = bot.engine.store.conn().await.expect("conn");
        assert_eq!(
            kv::get(&mut conn, "telegram.inflight.999")
                .await
                .expect("kv"),
            None,
            "{b}: no batch left in flight"
        );
        drop(conn);
        bot.stop().await;
    }
}

/// What a process that died three times on update 1 leaves behind (the
/// batch 1..=2 marked in flight, begun three times for update 1): at the
/// next start, update 1 is kept as failed without running it and its
/// sender told, and update 2 is handled on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_stopped_the_process_three_times_is_given_up() {
    for db in TestDb::both().await {
        let b = db.backend;
        let store = db.store().await;
        let mut tx = store.begin().await.expect("begin");
        kv::set(&mut tx, "telegram.offset.999", "1")
            .await
            .expect("kv");
        kv::set(
            &mut tx,
            "telegram.inflight.999",
            r#"{"first":1,"last":2,"tries":3}"#,
        )
        .await
        .expect("kv");
        tx.commit().await.expect("commit");
        store.close().await;
        let (addr, fake) = fake_api().await;
        fake.push_batch(vec![
            group_text(91, -7002, 41, "/whoami"),
            group_text(92, -7002, 42, "/whoami"),
        ]);
        let bot = Bot::start(settings(&db, addr)).await;
        until("two messages", || fake.sent().len() >= 2).await;
        let sent = fake.sent();
        assert_eq!(quoted(&sent), [91, 92], "{b}");
        assert!(sent[0]["text"].as_str().unwrap().contains("抱歉"), "{b}");
        assert!(!sent[1]["text"].as_str().unwrap().contains("抱歉"), "{b}");
        let kept = kept_failed(&bot.engine).await;
        assert_eq!(kept.len(), 1, "{b}");
        assert_eq!(kept[0].update_id, "1");
        assert!(
            kept[0].error.contains("stopped 3 times"),
            "{b}: {}",
            kept[0].error
        );
        // One at a time: offsets 1, 2, then 3.
        until("offset 3", || {
            fake.calls("getUpdates")
                .last()
                .is_some_and(|c| c["offset"].as_i64() == Some(3))
        })
        .await;
        let offsets: Vec<i64> = fake
            .calls("getUpdates")
            .iter()
            .filter_map(|c| c["offset"].as_i64())
            .collect();
        assert!(offsets.starts_with(&[1, 2, 3]), "{b}: {offsets:?}");
        bot.stop().await;
    }
}

/// A webhook update whose handling panics is answered 200 once it is kept
/// as failed (Telegram would otherwise deliver it forever); its sender is
/// told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_webhook_update_is_answered_and_kept() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (addr, fake) = fake_api().await;
        let bot = Bot::start(webhook_settings(&db, addr)).await;
        let hook = bot.tg.adapter.webhook_addr.expect("webhook address");
        bot.engine
            .inject_fault(Some(Arc::new(|m: &tuanbot::chat::Incoming| {
                if m.update_id == "700" {
                    panic!("poison");
                }
            })));
        let mut body = group_text(71, -7003, 41, "/whoami");
        body["update_id"] = json!(700);
        assert_eq!(
            post(hook, Some(SECRET), &body.to_string()).await,
            200,
            "{b}"
        );
        assert_eq!(
            post(hook, Some(SECRET), &body.to_string()).await,
            200,
            "{b}"
        );
        until("the apology", || !fake.sent().is_empty()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fake.sent().len(), 1, "{b}: told once");
        assert!(fake.sent()[0]["text"].as_str().unwrap().contains("抱歉"));
        assert_eq!(kept_failed(&bot.engine).await.len(), 1, "{b}");
        bot.stop().await;
    }
}

const SECRET: &str = "hush-42";

fn webhook_settings(db: &TestDb, addr: SocketAddr) -> Settings {
    let mut s = settings(db, addr);
    s.telegram.webhook_url = Some("https://bot.example.org/tg".into());
    s.telegram.webhook_listen = Some("127.0.0.1:0".into());
    s.telegram.webhook_secret = Some(SECRET.into());
    s
}

/// Long polling through a 40 s database outage: the batch polled meanwhile
/// waits (its offset is not saved), and every message sent meanwhile is
/// answered after, in order, once.
async fn polling_outage(db: TestDb) {
    let b = db.backend;
    let blackout = crate::outage::Blackout::new(&db).await;
    let (addr, fake) = fake_api().await;
    let mut s = settings(&db, addr);
    s.database_url = blackout.url.clone();
    let bot = Bot::start(s).await;
    fake.push(group_text(101, -7101, 61, "/whoami"));
    until("the answer before", || fake.sent().len() == 1).await;
    blackout.begin().await;
    for (n, user) in (102..107).zip(62..) {
        fake.push(group_text(n, -7101, user, "/whoami"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(crate::outage::OUTAGE).await;
    assert_eq!(fake.sent().len(), 1, "{b}: nothing answered while away");
    blackout.end().await;
    crate::outage::recovered("every answer after", || fake.sent().len() >= 6).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(quoted(&fake.sent()), [101, 102, 103, 104, 105, 106], "{b}");
    bot.stop().await;
    drop(db);
}

/// The webhook through a 40 s database outage: each update is queued in
/// the engine in arrival order and answered 503 after the hold, so
/// Telegram keeps it; after the outage they are handled in order, and
/// Telegram's redeliveries are no-ops.
async fn webhook_outage(db: TestDb) {
    let b = db.backend;
    let blackout = crate::outage::Blackout::new(&db).await;
    let (addr, fake) = fake_api().await;
    let mut s = webhook_settings(&db, addr);
    s.database_url = blackout.url.clone();
    let bot = Bot::start(s).await;
    let hook = bot.tg.adapter.webhook_addr.expect("webhook address");
    let update = |n: i64, user: i64| {
        let mut u = group_text(n, -7201, user, "/whoami");
        u["update_id"] = json!(800 + n);
        u.to_string()
    };
    assert_eq!(post(hook, Some(SECRET), &update(111, 71)).await, 200);
    until("the answer before", || fake.sent().len() == 1).await;
    blackout.begin().await;
    let mut held = Vec::new();
    for (k, (n, user)) in (112..117).zip(72..).enumerate() {
        let body = update(n, user);
        held.push(tokio::spawn(async move { post_held(hook, &body).await }));
        // Queued before the next one comes.
        until("queued in the engine", || bot.engine.waiting() == k + 1).await;
    }
    tokio::time::sleep(crate::outage::OUTAGE).await;
    assert_eq!(fake.sent().len(), 1, "{b}: nothing answered while away");
    for h in held {
        let status = within(PATIENCE, h, "a held webhook request")
            .await
            .expect("task");
        assert_eq!(status, 503, "{b}: not acknowledged while away");
    }
    blackout.end().await;
    crate::outage::recovered("every answer after", || fake.sent().len() >= 6).await;
    // Telegram delivers them again: answered 200, nothing twice.
    for (n, user) in (112..117).zip(72..) {
        assert_eq!(post_held(hook, &update(n, user)).await, 200, "{b}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(quoted(&fake.sent()), [111, 112, 113, 114, 115, 116], "{b}");
    bot.stop().await;
    drop(db);
}

/// [`post`] with time for the webhook's hold.
async fn post_held(hook: SocketAddr, body: &str) -> u16 {
    within(
        tuanbot::chat::telegram::WEBHOOK_HOLD + PATIENCE,
        post_raw(hook, Some(SECRET), body),
        "a webhook answer",
    )
    .await
}

/// Polling and the webhook, on PostgreSQL (behind a proxy that drops every
/// connection) and SQLite (locked by another process), all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_waits_out_a_database_outage() {
    tokio::join!(
        polling_outage(TestDb::sqlite().await),
        polling_outage(TestDb::postgres().await),
        webhook_outage(TestDb::sqlite().await),
        webhook_outage(TestDb::postgres().await),
    );
}

/// `/report chart` on Telegram: the PNG goes out with sendPhoto as a
/// multipart upload of its bytes (the fake refuses what the Bot API
/// refuses: a `base64://` string, a photo that is not an image).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_chart_is_sent_as_an_uploaded_photo() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (addr, fake) = fake_api().await;
        let mut s = settings(&db, addr);
        s.admins = vec!["telegram:1".into()];
        let bot = Bot::start(s).await;
        fake.push(private_text(1, 1, "/report chart"));
        until("the chart or its refusal", || {
            !fake.calls("sendPhoto").is_empty()
                || fake.sent().iter().any(|m| {
                    m["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("字体") || t.contains("font"))
                })
        })
        .await;
        if tuanbot::report::chart::font_path().is_none() {
            // No font on this machine: no chart to send, said in one line.
            bot.stop().await;
            continue;
        }
        until("the photo accepted", || {
            !fake.calls("sendPhoto:ok").is_empty()
        })
        .await;
        let photo = &fake.calls("sendPhoto:ok")[0];
        assert_eq!(photo["chat_id"], 1, "{b}");
        let attached = photo["photo"].as_str().unwrap_or_default();
        let part = attached.strip_prefix("attach://").unwrap_or(attached);
        assert_eq!(photo[part]["upload"], "chart.png", "{b}: {photo}");
        let uploads = fake.uploads.lock().unwrap().clone();
        assert_eq!(uploads.len(), 1, "{b}");
        assert_eq!(uploads[0].method, "sendPhoto", "{b}");
        assert_eq!(uploads[0].field, "photo", "{b}");
        assert_eq!(uploads[0].file_name.as_deref(), Some("chart.png"), "{b}");
        assert!(
            uploads[0].bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{b}: the PNG's bytes"
        );
        bot.settled().await;
        // The caption went first, as a message of its own.
        assert!(
            fake.sent()
                .iter()
                .any(|m| m["text"].as_str().is_some_and(|t| t.starts_with("📈"))),
            "{b}"
        );
        bot.stop().await;
    }
}

/// The fake refuses a photo given as something that is neither a file id
/// nor an http(s) URL, as the Bot API does; the row is rejected, not
/// retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_refuses_a_photo_that_is_not_a_file() {
    let db = TestDb::sqlite().await;
    {
        let store = db.store().await;
        let now = store::ms(chrono::Utc::now());
        let mut tx = store.begin().await.expect("begin");
        let mut msg = Outgoing::new(Platform::Telegram, "-7001", "");
        msg.attachments = vec![tuanbot::chat::OutFile {
            kind: tuanbot::chat::AttachmentKind::Photo,
            source: tuanbot::chat::FileSource::PlatformId("base64://iVBORw0KGgo=".into()),
            file_name: None,
        }];
        outbox::enqueue(&mut tx, &msg, now, None, now)
            .await
            .expect("enqueue");
        tx.commit().await.expect("commit");
        store.close().await;
    }
    let (addr, fake) = fake_api().await;
    let bot = Bot::start(settings(&db, addr)).await;
    until("the refusal", || !fake.calls("sendPhoto").is_empty()).await;
    bot.settled().await;
    assert!(fake.calls("sendPhoto:ok").is_empty());
    bot.stop().await;
}

/// Chat events through the webhook, each delivered twice: the bot added
/// (the group greeted once), the group's move to a supergroup (the chat and
/// its queue follow), the bot removed (its queue dropped); each applied
/// and audited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_events_by_webhook_are_handled_once() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (addr, _fake) = fake_api().await;
        let bot = Bot::start(webhook_settings(&db, addr)).await;
        let hook = bot.tg.adapter.webhook_addr.expect("webhook address");
        let member = |update: i64, chat: Value, old: &str, new: &str| {
            json!({"update_id": update, "my_chat_member": {
                "chat": chat,
                "from": {"id": 42, "is_bot": false, "first_name": "小王", "language_code": "zh-hans"},
                "date": 1_700_000_000,
                "old_chat_member": {"user": {"id": BOT_ID, "is_bot": true, "first_name": "团务助手"}, "status": old},
                "new_chat_member": {"user": {"id": BOT_ID, "is_bot": true, "first_name": "团务助手"}, "status": new, "until_date": 0}
            }})
            .to_string()
        };
        let group = json!({"id": -5002, "type": "group", "title": "城关团支部"});
        let added = member(700, group.clone(), "left", "member");
        for _ in 0..2 {
            assert_eq!(post(hook, Some(SECRET), &added).await, 200, "{b}");
        }
        // A message for later, queued to the group's old id.
        let store = bot.engine.store.clone();
        let later = {
            let now = store::ms(chrono::Utc::now());
            let mut tx = store.begin().await.expect("begin");
            let msg = Outgoing::new(Platform::Telegram, "-5002", "明天的通知");
            let id = outbox::enqueue(&mut tx, &msg, now + 3_600_000, None, now)
                .await
                .expect("enqueue");
            tx.commit().await.expect("commit");
            id
        };
        let migrated = json!({"update_id": 701, "message": {
            "message_id": 3, "date": 1_700_000_000, "chat": group,
            "from": {"id": 42, "is_bot": false, "first_name": "小王"},
            "migrate_to_chat_id": -1005002
        }})
        .to_string();
        for _ in 0..2 {
            assert_eq!(post(hook, Some(SECRET), &migrated).await, 200, "{b}");
        }
        let mut conn = store.conn().await.expect("conn");
        let chat = chats::find(&mut conn, Platform::Telegram, "-1005002")
            .await
            .expect("find")
            .expect("the chat under its new id");
        assert_eq!(chat.title.as_deref(), Some("城关团支部"), "{b}");
        assert!(
            chats::find(&mut conn, Platform::Telegram, "-5002")
                .await
                .expect("find")
                .is_none(),
            "{b}"
        );
        let to: String = sqlx::query_scalar("SELECT chat_id FROM outbox WHERE id = $1")
            .bind(later)
            .fetch_one(&mut *conn)
            .await
            .expect("row");
        assert_eq!(to, "-1005002", "{b}: the queue follows");
        drop(conn);
        let removed = member(702, chat_json(-1005002), "member", "left");
        for _ in 0..2 {
            assert_eq!(post(hook, Some(SECRET), &removed).await, 200, "{b}");
        }
        let mut conn = store.conn().await.expect("conn");
        let chat = chats::find(&mut conn, Platform::Telegram, "-1005002")
            .await
            .expect("find")
            .expect("chat");
        assert!(!chat.active, "{b}");
        assert_eq!(
            outbox::status(&mut conn, later)
                .await
                .expect("status")
                .as_deref(),
            Some("dropped"),
            "{b}"
        );
        let greetings: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE platform = 'telegram' AND payload LIKE '%/bind%'",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("count");
        assert_eq!(greetings, 1, "{b}: greeted once");
        for action in ["chat.joined", "chat.migrate", "chat.left"] {
            assert_eq!(
                tuanbot::store::audit::count_action(&mut conn, action)
                    .await
                    .expect("count"),
                1,
                "{b}: {action}"
            );
        }
        drop(conn);
        bot.stop().await;
    }
}
