//! QQ through OneBot v11 end to end: a fake OneBot implementation on
//! loopback (tokio-tungstenite) that accepts tuanbot's forward connection or
//! connects to its reverse endpoint, pushes events, answers actions by
//! `echo`, and records every send it acknowledged. Every wait is bounded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use tuanbot::app::{self, QqRunning};
use tuanbot::chat::Outgoing;
use tuanbot::config::Settings;
use tuanbot::domain::Platform;
use tuanbot::engine::Engine;
use tuanbot::store::{self, chats, outbox, people};

use crate::helpers::{PATIENCE, TestDb, adapter_engine, stop_adapter, until, within};

/// The QQ account the fake implementation is logged into.
pub const BOT: i64 = 10001;
pub const TOKEN: &str = "s3cret";

/// One acknowledged `send_*_msg`.
#[derive(Debug, Clone)]
struct Got {
    action: String,
    target: String,
    message: Value,
    at: Instant,
}

impl Got {
    fn text(&self) -> String {
        self.message
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["type"] == "text")
            .filter_map(|s| s["data"]["text"].as_str())
            .collect()
    }
}

#[derive(Default)]
pub struct FakeState {
    /// Handshakes tried, and those refused for a bad token.
    attempts: AtomicUsize,
    refused: AtomicUsize,
    connections: AtomicUsize,
    pub logins: AtomicUsize,
    sends: Mutex<Vec<Got>>,
    push: Mutex<Option<mpsc::UnboundedSender<String>>>,
    /// After this many acknowledged sends, the next send closes the
    /// connection unanswered (once).
    close_after: Mutex<Option<usize>>,
    /// After this many acknowledged sends, further sends are received but
    /// never answered (kept in `held`): the peer "hangs".
    hold_after: Mutex<Option<usize>>,
    held: Mutex<Vec<Value>>,
    next_message_id: AtomicI64,
    /// `get_file` answers (`data`) by file id; others get a fixed one.
    files: Mutex<HashMap<String, Value>>,
}

impl FakeState {
    fn sends(&self) -> Vec<Got> {
        self.sends.lock().unwrap().clone()
    }

    fn push(&self, event: Value) {
        let tx = self.push.lock().unwrap().clone().expect("connected");
        tx.send(event.to_string()).expect("push");
    }
}

/// Speak OneBot on one WebSocket until it closes.
async fn speak<S>(state: Arc<FakeState>, ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    *state.push.lock().unwrap() = Some(tx);
    state.connections.fetch_add(1, Ordering::SeqCst);
    loop {
        tokio::select! {
            Some(ev) = rx.recv() => {
                if sink.send(Message::text(ev)).await.is_err() {
                    break;
                }
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let v: Value = serde_json::from_str(&text).expect("action JSON");
                let echo = v["echo"].clone();
                let action = v["action"].as_str().unwrap_or_default().to_string();
                let answer = match action.as_str() {
                    "get_login_info" => {
                        state.logins.fetch_add(1, Ordering::SeqCst);
                        json!({"status": "ok", "retcode": 0, "echo": echo,
                               "data": {"user_id": BOT, "nickname": "团务助手"}})
                    }
                    "send_group_msg" | "send_private_msg" => {
                        {
                            let mut close = state.close_after.lock().unwrap();
                            if let Some(n) = *close
                                && state.sends.lock().unwrap().len() >= n
                            {
                                *close = None;
                                break;
                            }
                        }
                        let hold = *state.hold_after.lock().unwrap();
                        if hold.is_some_and(|n| state.sends.lock().unwrap().len() >= n) {
                            state.held.lock().unwrap().push(v.clone());
                            continue;
                        }
                        let key = if action == "send_group_msg" { "group_id" } else { "user_id" };
                        state.sends.lock().unwrap().push(Got {
                            action: action.clone(),
                            target: v["params"][key].to_string(),
                            message: v["params"]["message"].clone(),
                            at: Instant::now(),
                        });
                        let id = 5000 + state.next_message_id.fetch_add(1, Ordering::SeqCst);
                        json!({"status": "ok", "retcode": 0, "echo": echo,
                               "data": {"message_id": id}})
                    }
                    "upload_group_file" => {
                        state.sends.lock().unwrap().push(Got {
                            action: action.clone(),
                            target: v["params"]["group_id"].to_string(),
                            message: v["params"].clone(),
                            at: Instant::now(),
                        });
                        json!({"status": "ok", "retcode": 0, "echo": echo, "data": null})
                    }
                    "get_group_member_info" => json!({"status": "ok", "retcode": 0, "echo": echo,
                        "data": {"group_id": v["params"]["group_id"], "user_id": v["params"]["user_id"],
                                 "card": "", "nickname": "小周"}}),
                    "get_file" => {
                        let id = v["params"]["file_id"].as_str().unwrap_or_default();
                        let data = state.files.lock().unwrap().get(id).cloned().unwrap_or_else(|| {
                            json!({"file": "/data/f.xlsx", "url": "http://127.0.0.1/f.xlsx",
                                   "file_name": "f.xlsx", "file_size": "10"})
                        });
                        json!({"status": "ok", "retcode": 0, "echo": echo, "data": data})
                    }
                    _ => json!({"status": "failed", "retcode": 1404, "echo": echo, "data": null}),
                };
                if sink.send(Message::text(answer.to_string())).await.is_err() {
                    break;
                }
            }
        }
    }
    *state.push.lock().unwrap() = None;
}

/// A fake implementation serving forward WebSocket on a loopback port,
/// demanding `token`.
pub async fn fake_server(token: &'static str) -> (SocketAddr, Arc<FakeState>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = Arc::new(FakeState::default());
    let st = state.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let st = st.clone();
            tokio::spawn(async move {
                st.attempts.fetch_add(1, Ordering::SeqCst);
                let refused = st.clone();
                // The handshake callback's signature is tungstenite's.
                #[allow(clippy::result_large_err)]
                let check = move |req: &Request, resp: Response| {
                    let auth = req
                        .headers()
                        .get("Authorization")
                        .and_then(|v| v.to_str().ok());
                    if auth == Some(&format!("Bearer {token}")) {
                        Ok(resp)
                    } else {
                        refused.refused.fetch_add(1, Ordering::SeqCst);
                        let mut err = ErrorResponse::new(Some("bad token".into()));
                        *err.status_mut() = StatusCode::UNAUTHORIZED;
                        Err(err)
                    }
                };
                if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, check).await {
                    speak(st, ws).await;
                }
            });
        }
    });
    (addr, state)
}

fn settings(db: &TestDb) -> Settings {
    let mut s = db.settings();
    s.onebot.access_token = Some(TOKEN.into());
    s.onebot.group_interval_ms = 0;
    s.onebot.jitter_ms = 0;
    s.onebot.account_per_minute = 10_000;
    // The group cap (20 a minute, spread 3 s apart) is tested in `rush`.
    s.onebot.group_per_minute = 0;
    s.onebot.reconnect_min_ms = 50;
    s.onebot.reconnect_max_ms = 200;
    s.onebot.action_timeout_ms = 3000;
    s
}

struct Bot {
    engine: Arc<Engine>,
    qq: QqRunning,
    stop: watch::Sender<bool>,
}

impl Bot {
    async fn start(settings: Settings) -> Bot {
        let (engine, stop, shutdown) = adapter_engine(settings).await;
        let qq = within(
            PATIENCE,
            app::start_qq(&engine, shutdown),
            "the QQ adapter to start",
        )
        .await
        .expect("start qq");
        Bot { engine, qq, stop }
    }

    async fn stop(self) {
        stop_adapter(
            &self.engine,
            self.stop,
            self.qq.dispatcher,
            self.qq.adapter.tasks,
        )
        .await;
    }
}

fn group_msg(message_id: i64, group: i64, user: i64, message: Value) -> Value {
    json!({
        "time": 1_700_000_000, "self_id": BOT, "post_type": "message",
        "message_type": "group", "sub_type": "normal", "message_id": message_id,
        "group_id": group, "user_id": user, "message": message, "raw_message": "",
        "font": 0, "sender": {"user_id": user, "nickname": format!("用户{user}"), "card": ""}
    })
}

fn text(t: &str) -> Value {
    json!([{"type": "text", "data": {"text": t}}])
}

/// Start tuanbot against a fresh fake (forward mode) and wait for login.
async fn connected(db: &TestDb, tweak: impl FnOnce(&mut Settings)) -> (Bot, Arc<FakeState>) {
    let (addr, fake) = fake_server(TOKEN).await;
    let mut s = settings(db);
    s.onebot.ws_url = Some(format!("ws://{addr}/"));
    tweak(&mut s);
    let bot = Bot::start(s).await;
    until("login", || fake.logins.load(Ordering::SeqCst) >= 1).await;
    (bot, fake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_in_group_quotes_the_message() {
    for db in TestDb::both().await {
        let (bot, fake) = connected(&db, |_| {}).await;
        fake.push(group_msg(101, 555, 42, text("/help")));
        // Redelivered (same id, same time): handled once.
        fake.push(group_msg(101, 555, 42, text("/help")));
        // Someone else asks too (the same person asking again within
        // 30 s would not be answered again: `service::flood`).
        fake.push(group_msg(102, 555, 43, text("/help")));
        until("replies", || fake.sends().len() >= 2).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fake.sends().len(), 2, "{}", db.backend);
        assert_eq!(fake.sends()[1].message[0]["data"]["id"], "102");
        let got = &fake.sends()[0];
        assert_eq!(got.action, "send_group_msg", "{}", db.backend);
        assert_eq!(got.target, "555");
        assert_eq!(got.message[0]["type"], "reply");
        assert_eq!(got.message[0]["data"]["id"], "101");
        assert!(got.text().contains("我是 组织名"), "{}", got.text());
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cq_string_with_bot_mention_joins_an_org() {
    for db in TestDb::both().await {
        let (bot, fake) = connected(&db, |_| {}).await;
        // CQ-code string form, with an @ of the bot and escaped brackets
        // in an earlier message that is just chatter.
        let mut chatter = group_msg(201, 556, 43, json!("大家好 &#91;表情&#93; &amp; 再见"));
        chatter["raw_message"] = chatter["message"].clone();
        fake.push(chatter);
        fake.push(group_msg(
            202,
            556,
            43,
            json!(format!("[CQ:at,qq={BOT}] 我是 县一中")),
        ));
        until("reply", || !fake.sends().is_empty()).await;
        let sends = fake.sends();
        assert_eq!(sends.len(), 1, "chatter gets no reply: {sends:?}");
        assert_eq!(sends[0].message[0]["data"]["id"], "202");
        // A join request (县一中 has no cadre and there is no staff here).
        assert!(
            sends[0].text().contains("县一中团委"),
            "{}",
            sends[0].text()
        );
        assert!(sends[0].text().contains("加入申请"), "{}", sends[0].text());
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_message_answered_privately() {
    for db in TestDb::both().await {
        let (bot, fake) = connected(&db, |_| {}).await;
        fake.push(json!({
            "time": 1_700_000_000, "self_id": BOT, "post_type": "message",
            "message_type": "private", "sub_type": "friend", "message_id": 301,
            "user_id": 77, "message": "/help", "raw_message": "/help",
            "sender": {"user_id": 77, "nickname": "小赵"}
        }));
        until("reply", || !fake.sends().is_empty()).await;
        let got = &fake.sends()[0];
        assert_eq!(got.action, "send_private_msg");
        assert_eq!(got.target, "77");
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_sent_messages_ignored() {
    for db in TestDb::both().await {
        let (bot, fake) = connected(&db, |_| {}).await;
        // The bot's own message echoed back, both ways implementations do it.
        fake.push(group_msg(401, 557, BOT, text("/help")));
        let mut sent = group_msg(402, 557, BOT, text("/help"));
        sent["post_type"] = json!("message_sent");
        fake.push(sent);
        // Then a real one: events are handled in order, so once its reply
        // is here, any reply to the first two would be too.
        fake.push(group_msg(403, 557, 44, text("/help")));
        until("reply", || !fake.sends().is_empty()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sends = fake.sends();
        assert_eq!(sends.len(), 1, "{sends:?}");
        assert_eq!(sends[0].message[0]["data"]["id"], "403");
        bot.stop().await;
    }
}

/// Queue one message to each of `n` groups, as a broadcast would.
async fn queue_broadcast(db: &TestDb, n: usize, per_group: usize) {
    let store = db.store().await;
    let now = store::ms(chrono::Utc::now());
    let mut tx = store.begin().await.expect("begin");
    for k in 0..per_group {
        for g in 0..n {
            let msg = Outgoing::new(
                Platform::Qq,
                format!("{}", 9000 + g),
                format!("通知 {g}-{k}"),
            );
            outbox::enqueue(&mut tx, &msg, now, None, now)
                .await
                .expect("enqueue");
        }
    }
    tx.commit().await.expect("commit");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_mid_broadcast_reconnects_without_loss_or_duplicates() {
    for db in TestDb::both().await {
        queue_broadcast(&db, 30, 1).await;
        let (addr, fake) = fake_server(TOKEN).await;
        *fake.close_after.lock().unwrap() = Some(10);
        let mut s = settings(&db);
        s.onebot.ws_url = Some(format!("ws://{addr}/"));
        let bot = Bot::start(s).await;
        until("all 30 groups", || fake.sends().len() >= 30).await;
        // Anything sent twice would show up shortly after.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sends = fake.sends();
        let mut targets: Vec<String> = sends.iter().map(|g| g.target.clone()).collect();
        targets.sort();
        let mut unique = targets.clone();
        unique.dedup();
        assert_eq!(sends.len(), 30, "{}: {targets:?}", db.backend);
        assert_eq!(unique.len(), 30, "{}", db.backend);
        assert!(fake.connections.load(Ordering::SeqCst) >= 2);
        let mut conn = bot.engine.store.conn().await.expect("conn");
        assert_eq!(
            outbox::pending_count(&mut conn, Platform::Qq)
                .await
                .expect("count"),
            0
        );
        drop(conn);
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_refused_by_peer_and_retried() {
    for db in TestDb::both().await {
        queue_broadcast(&db, 1, 1).await;
        let (addr, fake) = fake_server(TOKEN).await;
        let mut s = settings(&db);
        s.onebot.ws_url = Some(format!("ws://{addr}/"));
        s.onebot.access_token = Some("wrong".into());
        let bot = Bot::start(s).await;
        until("three refused attempts", || {
            fake.refused.load(Ordering::SeqCst) >= 3
        })
        .await;
        assert_eq!(fake.connections.load(Ordering::SeqCst), 0);
        assert!(fake.sends().is_empty());
        // The queued message waits in the outbox for a connection.
        let mut conn = bot.engine.store.conn().await.expect("conn");
        assert_eq!(
            outbox::pending_count(&mut conn, Platform::Qq)
                .await
                .expect("count"),
            1
        );
        drop(conn);
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_triggers_reconnect() {
    let db = TestDb::sqlite().await;
    let (bot, fake) = connected(&db, |s| s.onebot.heartbeat_timeout_ms = Some(300)).await;
    until("a reconnect after silence", || {
        fake.connections.load(Ordering::SeqCst) >= 2
    })
    .await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_websocket_checks_token_and_serves() {
    for db in TestDb::both().await {
        let mut s = settings(&db);
        s.onebot.listen = Some("127.0.0.1:0".into());
        let bot = Bot::start(s).await;
        let addr = bot.qq.adapter.reverse_addr.expect("listening");

        // Wrong token and no token: refused at the handshake with 401.
        for url in [
            format!("ws://{addr}/onebot/v11/ws?access_token=nope"),
            format!("ws://{addr}/onebot/v11/ws"),
        ] {
            match tokio_tungstenite::connect_async(url.as_str()).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED)
                }
                other => panic!("expected 401, got {:?}", other.map(|_| ())),
            }
        }

        // The right token in the header, as NapCat sends it.
        let mut req = format!("ws://{addr}/onebot/v11/ws")
            .into_client_request()
            .expect("request");
        req.headers_mut().insert(
            "Authorization",
            format!("Bearer {TOKEN}").parse().expect("header"),
        );
        req.headers_mut()
            .insert("X-Self-ID", BOT.to_string().parse().expect("header"));
        req.headers_mut()
            .insert("X-Client-Role", "Universal".parse().expect("header"));
        let (ws, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(req))
            .await
            .expect("in time")
            .expect("handshake");
        let fake = Arc::new(FakeState::default());
        tokio::spawn(speak(fake.clone(), ws));
        until("login", || fake.logins.load(Ordering::SeqCst) >= 1).await;
        fake.push(group_msg(501, 558, 45, text("/help")));
        until("reply", || !fake.sends().is_empty()).await;
        assert_eq!(fake.sends()[0].target, "558");
        assert_eq!(fake.sends()[0].message[0]["data"]["id"], "501");
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_honoured_per_group_and_per_account() {
    let db = TestDb::sqlite().await;
    let (groups, per_group) = (3, 4);
    queue_broadcast(&db, groups, per_group).await;
    let (addr, fake) = fake_server(TOKEN).await;
    let mut s = settings(&db);
    s.onebot.ws_url = Some(format!("ws://{addr}/"));
    s.onebot.group_interval_ms = 200;
    s.onebot.jitter_ms = 50;
    s.onebot.account_per_minute = 5;
    s.onebot.account_window_ms = 1000;
    let bot = Bot::start(s).await;
    until("every message", || fake.sends().len() >= groups * per_group).await;
    let sends = fake.sends();
    assert_eq!(sends.len(), groups * per_group);
    // Per group: in order, and never two closer than the interval.
    for g in 0..groups {
        let mine: Vec<&Got> = sends
            .iter()
            .filter(|s| s.target == (9000 + g).to_string())
            .collect();
        let texts: Vec<String> = mine.iter().map(|s| s.text()).collect();
        let want: Vec<String> = (0..per_group).map(|k| format!("通知 {g}-{k}")).collect();
        assert_eq!(texts, want);
        for pair in mine.windows(2) {
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(gap >= Duration::from_millis(200), "group {g}: gap {gap:?}");
        }
    }
    // Account: never more than 5 in any 1-second window.
    for (i, first) in sends.iter().enumerate() {
        let in_window = sends[i..]
            .iter()
            .filter(|s| s.at.duration_since(first.at) < Duration::from_millis(1000))
            .count();
        assert!(in_window <= 5, "{in_window} messages within 1 s");
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_reply_split_at_lines_quoting_once() {
    let db = TestDb::sqlite().await;
    let text = (1..=6)
        .map(|i| format!("第{i}行：团员活动记录"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut msg = Outgoing::new(Platform::Qq, "9100", text.clone());
    msg.reply_to = Some("900".into());
    msg.mention_users = vec!["46".into()];
    let store = db.store().await;
    let now = store::ms(chrono::Utc::now());
    let mut tx = store.begin().await.expect("begin");
    outbox::enqueue(&mut tx, &msg, now, None, now)
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    store.close().await;
    let (bot, fake) = connected(&db, |s| s.onebot.max_text_chars = 25).await;
    until("all parts", || fake.sends().len() >= 3).await;
    let sends = fake.sends();
    assert_eq!(sends.len(), 3, "{sends:?}");
    assert_eq!(sends[0].message[0]["type"], "reply");
    assert_eq!(sends[0].message[1]["type"], "at");
    assert_eq!(sends[0].message[1]["data"]["qq"], "46");
    for later in &sends[1..] {
        assert_eq!(later.message.as_array().map(Vec::len), Some(1));
    }
    let parts: Vec<String> = sends
        .iter()
        .map(|g| g.text().trim_start().to_string())
        .collect();
    assert!(parts.iter().all(|p| p.chars().count() <= 25), "{parts:?}");
    assert_eq!(parts.join("\n"), text);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_upload_and_leaving_a_group() {
    for db in TestDb::both().await {
        let (bot, fake) = connected(&db, |_| {}).await;
        fake.push(json!({
            "time": 1_700_000_000, "self_id": BOT, "post_type": "notice",
            "notice_type": "group_upload", "group_id": 560, "user_id": 46,
            "file": {"id": "/abc-123", "name": "组织名单.xlsx", "size": 9000, "busid": 102}
        }));
        // Someone joins: the chat is recorded, nobody is greeted.
        fake.push(json!({
            "time": 1_700_000_000, "self_id": BOT, "post_type": "notice",
            "notice_type": "group_increase", "sub_type": "approve",
            "group_id": 561, "user_id": 47, "operator_id": 0
        }));
        let store = bot.engine.store.clone();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut conn = store.conn().await.expect("conn");
            let p = people::find(&mut conn, Platform::Qq, "46")
                .await
                .expect("find");
            let c = chats::find(&mut conn, Platform::Qq, "561")
                .await
                .expect("find");
            if let (Some(p), Some(c)) = (p, c) {
                assert_eq!(p.display_name, "小周", "name from get_group_member_info");
                assert!(c.active);
                break;
            }
            assert!(Instant::now() < deadline, "upload and join not recorded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The bot is removed from 561: the chat goes inactive, quietly.
        fake.push(json!({
            "time": 1_700_000_000, "self_id": BOT, "post_type": "notice",
            "notice_type": "group_decrease", "sub_type": "kick_me",
            "group_id": 561, "user_id": BOT, "operator_id": 9
        }));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut conn = store.conn().await.expect("conn");
            let c = chats::find(&mut conn, Platform::Qq, "561")
                .await
                .expect("find");
            if c.is_some_and(|c| !c.active) {
                break;
            }
            assert!(Instant::now() < deadline, "chat not deactivated");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(fake.sends().is_empty(), "notices are silent");
        assert_eq!(
            bot.qq.bot.file_location("/abc-123").await,
            Ok("http://127.0.0.1/f.xlsx".to_string())
        );
        bot.stop().await;
    }
}

/// The bot itself added to a group (a `group_increase` naming it): the chat
/// is recorded and greeted with the /bind hint once, however often the
/// notice comes; removed: the chat goes inactive and its unsent messages
/// are dropped. Both audited, as on every platform (`service::chats`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_added_greets_once_and_removed_drops_the_queue() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        let added = json!({
            "time": 1_700_000_100, "self_id": BOT, "post_type": "notice",
            "notice_type": "group_increase", "sub_type": "invite",
            "group_id": 570, "user_id": BOT, "operator_id": 48
        });
        fake.push(added.clone());
        fake.push(added);
        let greeting = until_sent_text(&fake, |t| t.contains("/bind")).await;
        assert!(!greeting.contains("@"), "{b}: {greeting}");
        // A message for later, still queued when the bot is removed.
        let store = bot.engine.store.clone();
        let later = {
            let now = store::ms(chrono::Utc::now());
            let mut tx = store.begin().await.expect("begin");
            let msg = Outgoing::new(Platform::Qq, "570", "明天的通知");
            let id = outbox::enqueue(&mut tx, &msg, now + 3_600_000, None, now)
                .await
                .expect("enqueue");
            tx.commit().await.expect("commit");
            id
        };
        fake.push(json!({
            "time": 1_700_000_200, "self_id": BOT, "post_type": "notice",
            "notice_type": "group_decrease", "sub_type": "kick_me",
            "group_id": 570, "user_id": BOT, "operator_id": 48
        }));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut conn = store.conn().await.expect("conn");
            let c = chats::find(&mut conn, Platform::Qq, "570")
                .await
                .expect("find");
            if c.is_some_and(|c| !c.active) {
                break;
            }
            assert!(Instant::now() < deadline, "{b}: chat not deactivated");
            drop(conn);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut conn = store.conn().await.expect("conn");
        assert_eq!(
            outbox::status(&mut conn, later)
                .await
                .expect("status")
                .as_deref(),
            Some("dropped"),
            "{b}"
        );
        // Events are handled in order: the second notice came before the
        // removal, and greeted no one.
        let greetings: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE chat_id = '570' AND payload LIKE '%/bind%'",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("count");
        assert_eq!(greetings, 1, "{b}");
        for action in ["chat.joined", "chat.left"] {
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

/// The text of the first send whose text satisfies `ok`.
async fn until_sent_text(fake: &FakeState, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(t) = fake.sends().iter().map(Got::text).find(|t| ok(t)) {
            return t;
        }
        assert!(Instant::now() < deadline, "nothing sent that fits");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_run_connects_to_configured_onebot() {
    let db = TestDb::sqlite().await;
    let (addr, fake) = fake_server(TOKEN).await;
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
            .env_remove("TELOXIDE_TOKEN")
            .env_remove("TUANBOT_TELEGRAM__TOKEN")
            .env("TUANBOT_DATABASE_URL", &db.url)
            .env("TUANBOT_ONEBOT__WS_URL", format!("ws://{addr}/"))
            .env("TUANBOT_ONEBOT__ACCESS_TOKEN", TOKEN)
            .env("TUANBOT_ONEBOT__GROUP_INTERVAL_MS", "0")
            .current_dir(std::env::temp_dir())
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn tuanbot"),
    );
    until("the binary's login", || {
        fake.logins.load(Ordering::SeqCst) >= 1
    })
    .await;
    fake.push(group_msg(601, 562, 48, text("/help")));
    until("reply from the binary", || !fake.sends().is_empty()).await;
    assert_eq!(fake.sends()[0].target, "562");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_url_uses_tls_and_keeps_retrying() {
    // A peer that speaks no TLS: each handshake fails, and the forward
    // loop (rustls with webpki roots, no OpenSSL) must survive and retry.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let db = TestDb::sqlite().await;
    let mut s = settings(&db);
    s.onebot.ws_url = Some(format!("wss://localhost:{}/", addr.port()));
    let bot = Bot::start(s).await;
    until("two TLS attempts", || accepted.load(Ordering::SeqCst) >= 2).await;
    assert!(!bot.qq.bot.connected());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_frames_and_chatter_change_nothing() {
    for db in TestDb::both().await {
        let (bot, fake) = connected(&db, |_| {}).await;
        let tx = fake.push.lock().unwrap().clone().expect("connected");
        tx.send("not json at all".into()).expect("push");
        tx.send("[1,2,3]".into()).expect("push");
        fake.push(json!({"post_type": "message"}));
        fake.push(json!({"post_type": "message", "message_type": "group", "user_id": 5}));
        fake.push(json!({"post_type": "notice", "notice_type": "group_upload"}));
        fake.push(json!({"post_type": "meta_event", "meta_event_type": "lifecycle", "sub_type": "connect"}));
        fake.push(group_msg(701, 563, 49, text(&"啊".repeat(5000))));
        fake.push(group_msg(
            702,
            563,
            49,
            text("🎉🎉 '; DROP TABLE chats; --"),
        ));
        fake.push(group_msg(
            703,
            563,
            49,
            json!([{"type": "face", "data": {"id": "14"}}]),
        ));
        fake.push(group_msg(704, 563, 49, text("/help")));
        until("reply", || !fake.sends().is_empty()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sends = fake.sends();
        assert_eq!(sends.len(), 1, "{}: {sends:?}", db.backend);
        assert_eq!(sends[0].message[0]["data"]["id"], "704");
        assert_eq!(fake.connections.load(Ordering::SeqCst), 1, "link kept");
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_go_out_as_image_and_group_file() {
    use tuanbot::chat::{AttachmentKind, FileSource, OutFile};
    let db = TestDb::sqlite().await;
    let mut msg = Outgoing::new(Platform::Qq, "9200", "通知：见附件");
    msg.attachments = vec![
        OutFile {
            kind: AttachmentKind::Photo,
            source: FileSource::Url("http://img.example/a.jpg".into()),
            file_name: None,
        },
        OutFile::photo_bytes(b"\x89PNG chart".to_vec(), "chart.png"),
        OutFile {
            kind: AttachmentKind::Document,
            source: FileSource::PlatformId("/abc-123".into()),
            file_name: Some("名单.xlsx".into()),
        },
    ];
    let store = db.store().await;
    let now = store::ms(chrono::Utc::now());
    let mut tx = store.begin().await.expect("begin");
    outbox::enqueue(&mut tx, &msg, now, None, now)
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    store.close().await;
    let (bot, fake) = connected(&db, |_| {}).await;
    until("message and file", || fake.sends().len() >= 2).await;
    let sends = fake.sends();
    assert_eq!(sends[0].action, "send_group_msg");
    assert_eq!(sends[0].message[1]["type"], "image");
    assert_eq!(
        sends[0].message[1]["data"]["file"],
        "http://img.example/a.jpg"
    );
    // Bytes go inline, as OneBot v11 takes them.
    assert_eq!(sends[0].message[2]["type"], "image");
    assert_eq!(
        sends[0].message[2]["data"]["file"],
        "base64://iVBORyBjaGFydA=="
    );
    assert_eq!(sends[1].action, "upload_group_file");
    assert_eq!(
        sends[1].message["file"], "http://127.0.0.1/f.xlsx",
        "resolved by get_file"
    );
    assert_eq!(sends[1].message["name"], "名单.xlsx");
    bot.stop().await;
}

fn private_msg(message_id: i64, user: i64, t: &str) -> Value {
    json!({
        "time": 1_700_000_000, "self_id": BOT, "post_type": "message",
        "message_type": "private", "sub_type": "friend", "message_id": message_id,
        "user_id": user, "message": text(t), "raw_message": t,
        "sender": {"user_id": user, "nickname": format!("用户{user}")}
    })
}

/// Wait until a message to `target` whose text satisfies `pred` arrives.
async fn until_sent(fake: &FakeState, target: &str, pred: impl Fn(&str) -> bool) -> Got {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(g) = fake
            .sends()
            .into_iter()
            .find(|g| g.target == target && pred(&g.text()))
        {
            return g;
        }
        assert!(
            Instant::now() < deadline,
            "no message to {target} as expected; got {:#?}",
            fake.sends().iter().map(Got::text).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notice_reaches_qq_group_and_is_acknowledged_by_text() {
    for db in TestDb::both().await {
        let (bot, fake) = connected(&db, |s| s.admins = vec!["qq:1".into()]).await;
        fake.push(group_msg(801, 601, 1, text("/bind 县一中")));
        until_sent(&fake, "601", |t| t.contains("县一中")).await;
        fake.push(group_msg(802, 601, 2, text("我是 县一中")));
        until_sent(&fake, "601", |t| t.contains("加入申请")).await;
        fake.push(group_msg(8021, 601, 1, text("同意 用户2")));
        until_sent(&fake, "601", |t| t.contains("已同意 用户2")).await;
        fake.push(private_msg(803, 1, "/notice 团课通知\n周五下午团课"));
        until_sent(&fake, "1", |t| t.contains("团课通知")).await;
        fake.push(private_msg(804, 1, "确认"));
        // QQ has no buttons: the copy asks for a 收到 reply in text.
        let copy = until_sent(&fake, "601", |t| t.contains("周五下午团课")).await;
        assert!(copy.text().contains("回复「收到」确认"), "{}", copy.text());
        fake.push(group_msg(805, 601, 2, text("收到")));
        fake.push(private_msg(806, 1, "通知情况 1"));
        let status = until_sent(&fake, "1", |t| t.contains("📊")).await;
        assert!(
            status.text().contains("已确认：县一中(1)"),
            "{}: {}",
            db.backend,
            status.text()
        );
        bot.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_and_reverse_together() {
    let db = TestDb::sqlite().await;
    let (addr, forward) = fake_server(TOKEN).await;
    let mut s = settings(&db);
    s.onebot.ws_url = Some(format!("ws://{addr}/"));
    s.onebot.listen = Some("127.0.0.1:0".into());
    let bot = Bot::start(s).await;
    until("forward login", || {
        forward.logins.load(Ordering::SeqCst) >= 1
    })
    .await;
    let listen = bot.qq.adapter.reverse_addr.expect("listening");
    let url = format!("ws://{listen}/onebot/v11/ws?access_token={TOKEN}");
    let (ws, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url.as_str()))
        .await
        .expect("in time")
        .expect("handshake");
    let reverse = Arc::new(FakeState::default());
    tokio::spawn(speak(reverse.clone(), ws));
    until("reverse login", || {
        reverse.logins.load(Ordering::SeqCst) >= 1
    })
    .await;
    // Events from either link are handled; each reply goes out once.
    forward.push(group_msg(901, 564, 50, text("/help")));
    reverse.push(group_msg(902, 565, 50, text("/help")));
    until("both replies", || {
        forward.sends().len() + reverse.sends().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut targets: Vec<String> = forward
        .sends()
        .into_iter()
        .chain(reverse.sends())
        .map(|g| g.target)
        .collect();
    targets.sort();
    assert_eq!(targets, vec!["564", "565"]);
    bot.stop().await;
}

/// A bot connected to the fake QQ peer with QQ user 1 as staff, the wish
/// fixture imported, group `group` bound county-wide, `members` (QQ user id,
/// org) asked to join and made its cadres by staff, and the batch published
/// there with a quota of 5.
async fn campaign(db: &TestDb, group: i64, members: &[(i64, &str)]) -> (Bot, Arc<FakeState>) {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wishes.csv");
    let (bot, fake) = connected(db, |s| s.admins = vec!["qq:1".into()]).await;
    tuanbot::service::wishes::import_file(
        &bot.engine.store,
        std::path::Path::new(fixture),
        "2026圆梦",
        "zh-CN",
    )
    .await
    .expect("import");
    let chat = group.to_string();
    let mut id = group * 100;
    let mut say = |user: i64, t: &str| {
        id += 1;
        fake.push(group_msg(id, group, user, text(t)));
    };
    say(1, "/bind 全县");
    until_sent(&fake, &chat, |t| t.contains("全县团干群")).await;
    for (user, org) in members {
        say(*user, &format!("我是 {org}"));
        until_sent(&fake, &chat, |t| t.contains(&format!("{org}团委"))).await;
        // Staff places them as the org's cadre (a cadre delivers wishes).
        say(1, &format!("/role {user} 团干部"));
        until_sent(&fake, &chat, |t| {
            t.contains(&format!("现在是 {org}团委 的团干部"))
        })
        .await;
    }
    say(1, "/wishes publish 2026圆梦 quota 5");
    until_sent(&fake, &chat, |t| t.contains("圆梦行动")).await;
    (bot, fake)
}

/// `认领 12` from two QQ users in different orgs, pushed back to back: one
/// wins, the other is told who holds it, in one gathered message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_qq_users_claim_the_same_wish_one_wins() {
    for db in TestDb::both().await {
        let (bot, fake) = campaign(&db, 701, &[(2, "县一中"), (3, "县二中")]).await;
        fake.push(group_msg(905, 701, 2, text("认领 12")));
        fake.push(group_msg(906, 701, 3, text("认领 12")));
        let result = until_sent(&fake, "701", |t| t.contains("12") && t.contains("已被")).await;
        let text = result.text();
        assert_eq!(text.matches("✅").count(), 1, "{}: {text}", db.backend);
        assert!(
            text.contains("✅ 县一中：12") && text.contains("❌ 县二中：12 已被县一中认领"),
            "{}: {text}",
            db.backend
        );
        bot.stop().await;
    }
}

/// `圆梦 12` as a QQ reply to a photo: the reply segment carries only the
/// quoted id, and the engine finds the photo among the photos it has seen;
/// a reply to a text is told a photo is needed and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_as_a_reply_to_a_photo() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = campaign(&db, 702, &[(2, "县一中")]).await;
        fake.push(group_msg(934, 702, 2, text("认领 12")));
        until_sent(&fake, "702", |t| t.contains("✅ 县一中：12")).await;
        // A photo (no command), then a text, both from the same person.
        fake.push(group_msg(
            935,
            702,
            2,
            json!([{"type": "image", "data": {"file": "a1b2.image",
                    "url": "https://multimedia.nt.qq.com.cn/download?id=a1b2"}}]),
        ));
        fake.push(group_msg(936, 702, 2, text("今天送到了")));
        // Replying to the text: refused, nothing changes.
        fake.push(group_msg(
            937,
            702,
            2,
            json!([{"type": "reply", "data": {"id": "936"}},
                   {"type": "text", "data": {"text": "圆梦 12"}}]),
        ));
        until_sent(&fake, "702", |t| t.contains("不是照片")).await;
        // Replying to the photo: delivered, with the photo as proof.
        fake.push(group_msg(
            938,
            702,
            2,
            json!([{"type": "reply", "data": {"id": "935"}},
                   {"type": "text", "data": {"text": "圆梦 12"}}]),
        ));
        until_sent(&fake, "702", |t| t.contains("12 号已圆梦")).await;
        let mut conn = bot.engine.store.conn().await.expect("conn");
        let batch = tuanbot::store::wishes::batch_by_name(&mut conn, "2026圆梦")
            .await
            .expect("batch")
            .expect("exists");
        let w = tuanbot::store::wishes::wish(&mut conn, batch.id, 12)
            .await
            .expect("wish")
            .expect("exists");
        assert_eq!(w.status.as_str(), "delivered", "{b}");
        assert_eq!(
            w.proof_ref.as_deref(),
            Some("https://multimedia.nt.qq.com.cn/download?id=a1b2"),
            "{b}"
        );
        assert_eq!(
            tuanbot::store::audit::count_action(&mut conn, "wish.deliver")
                .await
                .expect("count"),
            1,
            "{b}"
        );
        drop(conn);
        bot.stop().await;
    }
}

/// The real binary is SIGKILLed in the middle of a 200-group notice
/// broadcast and started again: every group gets the notice exactly once.
///
/// The fake peer acknowledges 60 copies and then stops answering; the kill
/// comes while the binary waits for the 61st answer, so everything answered
/// has been marked sent and nothing unanswered has. After the restart the
/// dead process's leases run out (1 s here) and the rest go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_broadcast_then_restart_sends_each_group_once() {
    use tuanbot::domain::{ChatKind, Platform};
    use tuanbot::store::{chats, orgs};
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    for db in TestDb::both().await {
        // 200 QQ groups, each bound to one of the county's orgs.
        let store = db.store().await;
        app::seed_demo_if_empty(&store, "zh-CN")
            .await
            .expect("seed");
        {
            let mut tx = store.begin().await.expect("begin");
            let all = orgs::all(&mut tx).await.expect("orgs");
            let branches: Vec<i64> = all
                .iter()
                .filter(|o| o.parent_id.is_some())
                .map(|o| o.id)
                .collect();
            for g in 0..200 {
                let chat = chats::upsert_seen(
                    &mut tx,
                    Platform::Qq,
                    &format!("{}", 80_000 + g),
                    ChatKind::Group,
                    None,
                    0,
                )
                .await
                .expect("chat");
                chats::bind(&mut tx, chat.id, Some(branches[g % branches.len()]), 0)
                    .await
                    .expect("bind");
            }
            tx.commit().await.expect("commit");
        }
        store.close().await;
        let (addr, fake) = fake_server(TOKEN).await;
        let spawn = || {
            Kill(
                std::process::Command::new(env!("CARGO_BIN_EXE_tuanbot"))
                    .arg("run")
                    .env_remove("TELOXIDE_TOKEN")
                    .env_remove("TUANBOT_TELEGRAM__TOKEN")
                    .env("TUANBOT_DATABASE_URL", &db.url)
                    .env("TUANBOT_ADMINS", "qq:1")
                    .env("TUANBOT_OUTBOX_LEASE_MS", "1000")
                    .env("TUANBOT_ONEBOT__WS_URL", format!("ws://{addr}/"))
                    .env("TUANBOT_ONEBOT__ACCESS_TOKEN", TOKEN)
                    .env("TUANBOT_ONEBOT__GROUP_INTERVAL_MS", "0")
                    .env("TUANBOT_ONEBOT__JITTER_MS", "0")
                    .env("TUANBOT_ONEBOT__ACCOUNT_PER_MINUTE", "100000")
                    .env("TUANBOT_ONEBOT__ACTION_TIMEOUT_MS", "600000")
                    .current_dir(std::env::temp_dir())
                    .stdin(std::process::Stdio::null())
                    .spawn()
                    .expect("spawn tuanbot"),
            )
        };
        let mut child = spawn();
        until("first login", || fake.logins.load(Ordering::SeqCst) >= 1).await;
        fake.push(private_msg(
            1001,
            1,
            "/notice 防汛安全通知\n请于本周五前完成防溺水安全教育",
        ));
        until_sent(&fake, "1", |t| t.contains("200")).await;
        let before = fake.sends().len();
        *fake.hold_after.lock().unwrap() = Some(before + 60);
        fake.push(private_msg(1002, 1, "确认"));
        until("a copy left unanswered", || {
            !fake.held.lock().unwrap().is_empty()
        })
        .await;
        // SIGKILL: no shutdown code runs.
        child.0.kill().expect("kill");
        let _ = child.0.wait();
        *fake.hold_after.lock().unwrap() = None;
        let copies = |f: &FakeState| {
            f.sends()
                .into_iter()
                .filter(|g| g.target != "1" && g.text().contains("防溺水安全教育"))
                .count()
        };
        assert_eq!(
            copies(&fake),
            60,
            "{}: 60 copies answered before the kill",
            db.backend
        );
        let logins = fake.logins.load(Ordering::SeqCst);
        child = spawn();
        until("second login", || {
            fake.logins.load(Ordering::SeqCst) > logins
        })
        .await;
        until("every group's copy", || copies(&fake) >= 200).await;
        // Give a duplicate, if any, time to show up.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut per_group: HashMap<String, usize> = HashMap::new();
        for g in fake
            .sends()
            .into_iter()
            .filter(|g| g.target != "1" && g.text().contains("防溺水安全教育"))
        {
            *per_group.entry(g.target).or_insert(0) += 1;
        }
        assert_eq!(per_group.len(), 200, "{}", db.backend);
        assert!(
            per_group.values().all(|n| *n == 1),
            "{}: a group got it twice",
            db.backend
        );
        drop(child);
    }
}

/// `/wishes import NAME` on QQ, where a file has no caption: the file is a
/// message (or a group-upload notice) of its own, and the command replies
/// to it or follows it, pushed back to back. The adapter downloads what
/// `get_file` answers: the bytes as base64, a URL (served here on
/// loopback), or a path on this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wish_lists_posted_as_files_are_imported() {
    use base64::Engine as _;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wishes.csv");
    let csv = std::fs::read(fixture).expect("fixture");
    let served = csv.clone();
    let app = axum::Router::new().route(
        "/download/wishes.csv",
        axum::routing::get(move || {
            let body = served.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let http = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |s| {
            s.admins = vec!["qq:1".into()];
            s.onebot.file_dir = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures").into());
        })
        .await;
        fake.files.lock().unwrap().extend([
            (
                "f-b64".to_string(),
                json!({"file_name": "心愿.csv",
                       "base64": base64::engine::general_purpose::STANDARD.encode(&csv)}),
            ),
            (
                "f-url".to_string(),
                json!({"file": "", "url": format!("http://{http}/download/wishes.csv")}),
            ),
            ("f-path".to_string(), json!({"file": fixture})),
        ]);
        let file =
            |id: &str| json!([{"type": "file", "data": {"file_id": id, "name": "心愿.csv"}}]);
        // A reply to the file message.
        fake.push(group_msg(901, 570, 1, file("f-b64")));
        fake.push(group_msg(
            902,
            570,
            1,
            json!([{"type": "reply", "data": {"id": "901"}},
                   {"type": "text", "data": {"text": "/wishes import 一批"}}]),
        ));
        until_sent(&fake, "570", |t| t.contains("已导入「一批」：800 个微心愿")).await;
        // The sender's latest file in the group, fetched by URL.
        fake.push(group_msg(903, 570, 1, file("f-url")));
        fake.push(group_msg(904, 570, 1, text("/wishes import 二批")));
        until_sent(&fake, "570", |t| t.contains("已导入「二批」：800 个微心愿")).await;
        // A group upload (a notice, no message id), read from its path.
        fake.push(json!({
            "time": 1_700_000_000, "self_id": BOT, "post_type": "notice",
            "notice_type": "group_upload", "group_id": 570, "user_id": 1,
            "file": {"id": "f-path", "name": "心愿.csv", "size": 9000, "busid": 102}
        }));
        fake.push(group_msg(905, 570, 1, text("/wishes import 三批")));
        until_sent(&fake, "570", |t| t.contains("已导入「三批」：800 个微心愿")).await;
        // A reply to a text message names no file.
        fake.push(group_msg(
            906,
            570,
            1,
            json!([{"type": "reply", "data": {"id": "905"}},
                   {"type": "text", "data": {"text": "/wishes import 四批"}}]),
        ));
        until_sent(&fake, "570", |t| {
            t.contains("你回复的消息里没有我见过的表格文件")
        })
        .await;
        let mut conn = bot.engine.store.conn().await.expect("conn");
        for (name, there) in [
            ("一批", true),
            ("二批", true),
            ("三批", true),
            ("四批", false),
        ] {
            let found = tuanbot::store::wishes::batch_by_name(&mut conn, name)
                .await
                .expect("batch");
            assert_eq!(found.is_some(), there, "{b}: {name}");
        }
        drop(conn);
        bot.stop().await;
    }
}

/// A reverse listener on an address other than loopback does not start
/// without a long token, neither from the settings file nor from code; with
/// one, only the token opens it (header, or the query percent-encoded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_listener_off_loopback_needs_a_long_token() {
    use tuanbot::config::Sources;
    let load = |pairs: &[(&str, &str)]| {
        Settings::load(&Sources {
            file: None,
            overrides: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ignore_env: true,
        })
    };
    let err = load(&[("onebot.listen", "0.0.0.0:6700")]).unwrap_err();
    assert_eq!(err.key, "onebot.access_token");
    assert!(
        err.to_string()
            .starts_with("config error: onebot.access_token: required when onebot.listen is not a loopback address (0.0.0.0:6700)"),
        "{err}"
    );
    let err = load(&[
        ("onebot.listen", "[::]:6700"),
        ("onebot.access_token", "short"),
    ])
    .unwrap_err();
    assert_eq!(err.key, "onebot.access_token");
    assert!(err.message.contains("at least 16 characters"), "{err}");
    assert!(load(&[("onebot.listen", "127.0.0.1:6700")]).is_ok());
    assert!(load(&[("onebot.listen", "[::1]:6700")]).is_ok());
    assert!(
        load(&[
            ("onebot.listen", "0.0.0.0:6700"),
            ("onebot.access_token", "a-long-random-string-0123"),
        ])
        .is_ok()
    );

    let db = TestDb::sqlite().await;
    // Settings built in code are checked when the adapter starts.
    let mut s = settings(&db);
    s.onebot.listen = Some("0.0.0.0:0".into());
    s.onebot.access_token = None;
    let (engine, stop, shutdown) = adapter_engine(s).await;
    let err = within(
        PATIENCE,
        app::start_qq(&engine, shutdown),
        "the QQ adapter to refuse",
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("onebot.access_token"), "{err}");
    drop(stop);
    engine.store.close().await;

    let token = "tok/en+with=odd&chars-0123456789";
    let mut s = settings(&db);
    s.onebot.listen = Some("0.0.0.0:0".into());
    s.onebot.access_token = Some(token.into());
    let bot = Bot::start(s).await;
    let port = bot.qq.adapter.reverse_addr.expect("listening").port();
    let same_length = "x".repeat(token.len());
    for bad in [
        same_length.as_str(),
        &token[..token.len() - 1],
        &format!("{token}x"),
        "",
    ] {
        let mut req = format!("ws://127.0.0.1:{port}/onebot/v11/ws")
            .into_client_request()
            .expect("request");
        req.headers_mut().insert(
            "Authorization",
            format!("Bearer {bad}").parse().expect("header"),
        );
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad:?}")
            }
            other => panic!("{bad:?}: expected 401, got {:?}", other.map(|_| ())),
        }
    }
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let url = format!("ws://127.0.0.1:{port}/onebot/v11/ws?access_token={encoded}");
    let (ws, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url.as_str()))
        .await
        .expect("in time")
        .expect("handshake with the token in the query");
    let fake = Arc::new(FakeState::default());
    tokio::spawn(speak(fake.clone(), ws));
    until("login", || fake.logins.load(Ordering::SeqCst) >= 1).await;
    bot.stop().await;
}

/// `get_file` answers are trusted only so far: a path on this machine is
/// read only inside `onebot.file_dir` (no `..`, no link out of it), a URL
/// only over http(s); anything else gets one clear line and imports
/// nothing. A hostile table sent as bytes gets its one line too, and the
/// bot goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_file_reads_only_inside_the_file_dir() {
    use base64::Engine as _;
    let root = tempfile::tempdir().expect("dir");
    let napcat = root.path().join("napcat-temp");
    std::fs::create_dir(&napcat).expect("dir");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wishes.csv");
    std::fs::copy(fixture, napcat.join("心愿.csv")).expect("copy");
    std::fs::copy(fixture, root.path().join("secret.csv")).expect("copy");
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.path().join("secret.csv"), napcat.join("link.csv"))
        .expect("link");
    let mut two_cells = rust_xlsxwriter::Workbook::new();
    let sheet = two_cells.add_worksheet();
    sheet.write_string(0, 0, "学校").expect("cell");
    sheet.write_string(1_048_575, 16_383, "x").expect("cell");
    let two_cells = two_cells.save_to_buffer().expect("xlsx");
    let inside = napcat.join("心愿.csv").display().to_string();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "outside",
            json!({"file": root.path().join("secret.csv").display().to_string()}),
            "这个文件不在允许读取的文件夹（onebot.file_dir）里",
        ),
        (
            "dotdot",
            json!({"file": format!("{}/../secret.csv", napcat.display())}),
            "这个文件不在允许读取的文件夹（onebot.file_dir）里",
        ),
        (
            "link",
            json!({"file": napcat.join("link.csv").display().to_string()}),
            "这个文件不在允许读取的文件夹（onebot.file_dir）里",
        ),
        (
            "passwd",
            json!({"file": "", "url": "file:///etc/passwd"}),
            "这个文件不在允许读取的文件夹（onebot.file_dir）里",
        ),
        (
            "ftp",
            json!({"file": "", "url": "ftp://127.0.0.1/心愿.csv"}),
            "文件地址不是 http(s) 链接",
        ),
        (
            "bomb",
            json!({"file_name": "two.xlsx",
                   "base64": base64::engine::general_purpose::STANDARD.encode(&two_cells)}),
            "第 1048576 行超过 50 列",
        ),
        (
            "inside",
            json!({"file": inside}),
            "已导入「inside」：800 个微心愿",
        ),
    ];
    for db in TestDb::both().await {
        let b = db.backend;
        let dir = napcat.clone();
        let (bot, fake) = connected(&db, |s| {
            s.admins = vec!["qq:1".into()];
            s.onebot.file_dir = Some(dir);
        })
        .await;
        for (id, answer, _) in &cases {
            fake.files
                .lock()
                .unwrap()
                .insert(id.to_string(), answer.clone());
        }
        let replies = || -> Vec<String> {
            let sends = fake.sends().into_iter();
            sends
                .filter(|g| g.target == "571")
                .map(|g| g.text())
                .collect()
        };
        for (i, (id, _, expect)) in cases.iter().enumerate() {
            let name = if *id == "bomb" {
                "two.xlsx"
            } else {
                "心愿.csv"
            };
            let file = json!([{"type": "file", "data": {"file_id": id, "name": name}}]);
            let m = 1000 + 2 * i as i64;
            fake.push(group_msg(m, 571, 1, file));
            fake.push(group_msg(
                m + 1,
                571,
                1,
                text(&format!("/wishes import {id}")),
            ));
            until("the import's reply", || replies().len() > i).await;
            let got = replies()[i].clone();
            assert!(got.contains(expect), "{b}: {id}: {got}");
            assert_eq!(got.lines().count(), 1, "{b}: {id}: {got}");
        }
        let mut conn = bot.engine.store.conn().await.expect("conn");
        for (id, _, _) in &cases {
            let found = tuanbot::store::wishes::batch_by_name(&mut conn, id)
                .await
                .expect("batch");
            assert_eq!(found.is_some(), *id == "inside", "{b}: {id}");
        }
        drop(conn);
        bot.stop().await;
    }

    // Without onebot.file_dir, no path on this machine is read at all.
    let db = TestDb::sqlite().await;
    let (bot, fake) = connected(&db, |s| s.admins = vec!["qq:1".into()]).await;
    fake.files.lock().unwrap().insert(
        "f".into(),
        json!({"file": napcat.join("心愿.csv").display().to_string()}),
    );
    fake.push(group_msg(
        1100,
        572,
        1,
        json!([{"type": "file", "data": {"file_id": "f", "name": "心愿.csv"}}]),
    ));
    fake.push(group_msg(1101, 572, 1, text("/wishes import 无目录")));
    until_sent(&fake, "572", |t| {
        t.contains("机器人还没被允许读那里（请管理员设置 onebot.file_dir）")
    })
    .await;
    bot.stop().await;
}

/// A QQ message whose handling panics (the engine's fault seam) gets a
/// one-line apology after three tries and is kept as failed; the messages
/// around it are answered as usual, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_gets_an_apology_and_the_bot_goes_on() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        bot.engine
            .inject_fault(Some(Arc::new(|m: &tuanbot::chat::Incoming| {
                if m.message_id.as_deref() == Some("1102") {
                    panic!("poison");
                }
            })));
        fake.push(group_msg(1101, 580, 41, text("/whoami")));
        fake.push(group_msg(1102, 580, 42, text("/whoami")));
        fake.push(group_msg(1103, 580, 43, text("/whoami")));
        until("three messages", || fake.sends().len() >= 3).await;
        let sends = fake.sends();
        let quoted: Vec<_> = sends
            .iter()
            .map(|g| g.message[0]["data"]["id"].clone())
            .collect();
        assert_eq!(quoted, [json!("1101"), json!("1102"), json!("1103")], "{b}");
        assert!(sends[1].text().contains("抱歉"), "{b}: {}", sends[1].text());
        assert!(!sends[2].text().contains("抱歉"), "{b}");
        let mut conn = bot.engine.store.conn().await.expect("conn");
        let kept = tuanbot::store::failed::list(&mut conn)
            .await
            .expect("failed");
        assert_eq!(kept.len(), 1, "{b}");
        assert!(kept[0].update_id.contains(":1102:"), "{b}");
        drop(conn);
        bot.stop().await;
    }
}

/// The database goes away for 40 s mid-conversation (PostgreSQL behind a
/// proxy that drops every connection; SQLite locked by another process):
/// every QQ message sent meanwhile is answered after, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qq_messages_wait_out_a_database_outage() {
    async fn run(db: TestDb) {
        let b = db.backend;
        let blackout = crate::outage::Blackout::new(&db).await;
        let url = blackout.url.clone();
        let (bot, fake) = connected(&db, |s| s.database_url = url).await;
        fake.push(group_msg(1201, 590, 51, text("/whoami")));
        until("the answer before", || fake.sends().len() == 1).await;
        blackout.begin().await;
        for (n, user) in (1202..1207).zip(52..) {
            fake.push(group_msg(n, 590, user, text("/whoami")));
        }
        crate::outage::hold(&bot.engine, 5).await;
        assert_eq!(fake.sends().len(), 1, "{b}: nothing answered while away");
        blackout.end().await;
        crate::outage::recovered("every answer after", || fake.sends().len() >= 6).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let quoted: Vec<String> = fake
            .sends()
            .iter()
            .map(|g| {
                g.message[0]["data"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let want: Vec<String> = (1201..1207).map(|n| n.to_string()).collect();
        assert_eq!(quoted, want, "{b}: in order, each once");
        bot.stop().await;
        drop(db);
    }
    let (sqlite, postgres) = (TestDb::sqlite().await, TestDb::postgres().await);
    tokio::join!(run(sqlite), run(postgres));
}
