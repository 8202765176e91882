//! `tuanbot bench telegram`: the real Telegram adapter, engine and outbox
//! against a fake Bot API server on loopback.
//!
//! (a) Updates: `updates` group `/help` messages queued at once, timed until
//!     every reply arrived (updates/s), then `latency_samples` sent one at a
//!     time for the update → reply latency (p50/p99). Pacing is lifted for
//!     this part, so it measures the adapter, engine and store, not the
//!     rate limits.
//! (b) Broadcast: one message to each of `groups` groups, queued in the
//!     outbox, sent under the default limits (30/s overall, 20/min per
//!     group, 1/s per chat). The fake enforces Telegram's limits and answers
//!     429 past them; the elapsed time (first to last send) is compared with
//!     the least the overall limit allows: ⌊(groups − 1) / 30⌋ s.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::chat::Outgoing;
use crate::config::Settings;
use crate::domain::Platform;
use crate::store::{self, outbox};

const TOKEN: &str = "1:BENCH";
const BOT_ID: i64 = 999;
/// Upper bound for each phase, so a bug ends the run instead of hanging.
const PATIENCE: Duration = Duration::from_secs(300);

#[derive(Debug, Serialize)]
pub struct TelegramBench {
    pub bench: &'static str,
    pub database: String,
    pub updates: UpdatesPart,
    pub broadcast: BroadcastPart,
}

#[derive(Debug, Serialize)]
pub struct UpdatesPart {
    pub updates: usize,
    pub seconds: f64,
    pub updates_per_s: f64,
    pub latency_samples: usize,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct BroadcastPart {
    pub groups: usize,
    pub elapsed_s: f64,
    pub minimum_s: f64,
    pub over_minimum_pct: f64,
    pub responses_429: usize,
    pub per_second_limit: usize,
}

/// Sends the fake has accepted: all chats in the last second, and per chat
/// in the last minute.
type Recent = (VecDeque<Instant>, HashMap<i64, VecDeque<Instant>>);

/// The fake server: queued updates, when each reply arrived, and Telegram's
/// limits enforced with 429s.
#[derive(Default)]
struct Fake {
    updates: Mutex<Vec<Value>>,
    next_update: AtomicI64,
    next_message: AtomicI64,
    /// Reply arrival per quoted message id (part a).
    replies: Mutex<HashMap<i64, Instant>>,
    /// Arrival of every accepted send (part b).
    accepted: Mutex<Vec<Instant>>,
    /// Accepted sends in the last second, and per chat in the last minute.
    recent: Mutex<Recent>,
    enforce: std::sync::atomic::AtomicBool,
    too_many: AtomicUsize,
}

impl Fake {
    fn push(&self, chat: i64, user: i64, message_id: i64, text: &str) {
        let id = self.next_update.fetch_add(1, Ordering::SeqCst) + 1;
        let update = json!({"update_id": id, "message": {
            "message_id": message_id, "date": 1_700_000_000,
            "chat": {"id": chat, "type": "supergroup", "title": format!("群{chat}")},
            "from": {"id": user, "is_bot": false, "first_name": format!("用户{user}")},
            "text": text
        }});
        self.updates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(update);
    }

    /// Would Telegram refuse a send to `chat` now? Records it when not.
    fn admit(&self, chat: i64, now: Instant) -> bool {
        if !self.enforce.load(Ordering::SeqCst) {
            return true;
        }
        let mut guard = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let (all, per_chat) = &mut *guard;
        while all
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            all.pop_front();
        }
        let mine = per_chat.entry(chat).or_default();
        while mine
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            mine.pop_front();
        }
        let too_soon = mine
            .back()
            .is_some_and(|t| now.duration_since(*t) < Duration::from_millis(1000));
        if all.len() >= 30 || (chat < 0 && mine.len() >= 20) || too_soon {
            return false;
        }
        all.push_back(now);
        mine.push_back(now);
        true
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

async fn api(State(fake): State<Arc<Fake>>, uri: Uri, body: Bytes) -> Response {
    let method = uri
        .path()
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match method.as_str() {
        "getme" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "团务助手", "username": "tuan_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "getupdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            let limit = body["limit"].as_u64().unwrap_or(100) as usize;
            let until = Instant::now() + Duration::from_millis(200);
            loop {
                let batch: Vec<Value> = {
                    let mut q = fake.updates.lock().unwrap_or_else(|e| e.into_inner());
                    q.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                    q.iter().take(limit).cloned().collect()
                };
                if !batch.is_empty() || Instant::now() >= until {
                    return ok(Value::Array(batch));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        "sendmessage" => {
            let now = Instant::now();
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            if !fake.admit(chat, now) {
                fake.too_many.fetch_add(1, Ordering::SeqCst);
                return (
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({"ok": false, "error_code": 429,
                        "description": "Too Many Requests: retry after 1",
                        "parameters": {"retry_after": 1}})),
                )
                    .into_response();
            }
            if let Some(quoted) = body["reply_parameters"]["message_id"].as_i64() {
                fake.replies
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(quoted, now);
            }
            fake.accepted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(now);
            let id = fake.next_message.fetch_add(1, Ordering::SeqCst) + 1;
            ok(json!({
                "message_id": id, "date": 1_700_000_000,
                "chat": {"id": chat, "type": "supergroup", "title": "g"},
                "from": {"id": BOT_ID, "is_bot": true, "first_name": "团务助手", "username": "tuan_bot"},
                "text": body["text"]
            }))
        }
        _ => ok(json!(true)),
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        if Instant::now() > deadline {
            anyhow::bail!("bench timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// A fresh SQLite file under the temp dir, unless `database_url` is given.
fn database(database_url: Option<String>, part: &str) -> (String, Option<std::path::PathBuf>) {
    match database_url {
        Some(url) => (url, None),
        None => {
            let dir = std::env::temp_dir().join(format!(
                "tuanbot-bench-{}-{part}-{}",
                std::process::id(),
                store::ms(chrono::Utc::now())
            ));
            let _ = std::fs::create_dir_all(&dir);
            let url = format!("sqlite://{}", dir.join("bench.db").display());
            (url, Some(dir))
        }
    }
}

async fn start_fake() -> anyhow::Result<(SocketAddr, Arc<Fake>)> {
    let fake = Arc::new(Fake::default());
    let app = axum::Router::new().fallback(api).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, fake))
}

fn bench_settings(base: &Settings, url: &str, addr: SocketAddr) -> Settings {
    let mut s = base.clone();
    s.database_url = url.to_string();
    s.telegram.token = Some(TOKEN.into());
    s.telegram.api_url = Some(format!("http://{addr}"));
    s.telegram.webhook_url = None;
    s.telegram.poll_timeout_s = 1;
    s.telegram.poll_retry_ms = 20;
    // The same few people send thousands of `/help`: measured here is the
    // pipeline, not the flood limits (`service::flood`), which would
    // rightly answer most of them with silence.
    s.flood.per_minute = 0;
    s.flood.repeat_seconds = 0;
    s
}

/// Run both parts; `database_url` None uses fresh SQLite files.
pub async fn run(
    base: Settings,
    database_url: Option<String>,
    updates: usize,
    latency_samples: usize,
    groups: usize,
) -> anyhow::Result<TelegramBench> {
    let shown = database_url
        .as_deref()
        .map(crate::app::redact)
        .unwrap_or_else(|| "sqlite (temp file)".into());
    let updates_part = updates_part(&base, database_url.clone(), updates, latency_samples).await?;
    let broadcast = broadcast_part(&base, database_url, groups).await?;
    Ok(TelegramBench {
        bench: "telegram",
        database: shown,
        updates: updates_part,
        broadcast,
    })
}

async fn updates_part(
    base: &Settings,
    database_url: Option<String>,
    updates: usize,
    samples: usize,
) -> anyhow::Result<UpdatesPart> {
    let (addr, fake) = start_fake().await?;
    let (url, dir) = database(database_url, "updates");
    let mut s = bench_settings(base, &url, addr);
    s.telegram.per_second = 1_000_000;
    s.telegram.group_per_minute = 0;
    s.telegram.chat_interval_ms = 0;
    let engine = crate::app::engine(s, Arc::new(crate::clock::SystemClock)).await?;
    let (stop, shutdown) = watch::channel(false);
    let tg = crate::app::start_telegram(&engine, shutdown).await?;
    let replies = |fake: &Fake| fake.replies.lock().unwrap_or_else(|e| e.into_inner()).len();
    // Throughput: everything queued at once.
    let start = Instant::now();
    for i in 0..updates {
        let i = i as i64;
        fake.push(-1_000_000 - i % 50, 10 + i % 200, i + 1, "/help");
    }
    wait_for("throughput replies", || replies(&fake) >= updates).await?;
    let seconds = start.elapsed().as_secs_f64();
    // Latency: one update at a time.
    let mut lat = Vec::with_capacity(samples);
    for k in 0..samples {
        let id = 1_000_000 + k as i64;
        let t0 = Instant::now();
        fake.push(-2_000_000 - (k as i64 % 50), 10, id, "/help");
        wait_for("a reply", || {
            fake.replies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&id)
        })
        .await?;
        let at = fake
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .copied()
            .unwrap_or(t0);
        lat.push(at.duration_since(t0).as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let _ = stop.send(true);
    let _ = tg.dispatcher.await;
    for t in tg.adapter.tasks {
        t.abort();
    }
    engine.store.close().await;
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(UpdatesPart {
        updates,
        seconds,
        updates_per_s: updates as f64 / seconds.max(1e-9),
        latency_samples: samples,
        latency_p50_ms: percentile(&lat, 0.50),
        latency_p99_ms: percentile(&lat, 0.99),
    })
}

async fn broadcast_part(
    base: &Settings,
    database_url: Option<String>,
    groups: usize,
) -> anyhow::Result<BroadcastPart> {
    let (addr, fake) = start_fake().await?;
    fake.enforce.store(true, Ordering::SeqCst);
    let (url, dir) = database(database_url, "broadcast");
    let mut s = bench_settings(base, &url, addr);
    let defaults = crate::config::TelegramSettings::default();
    s.telegram.per_second = defaults.per_second;
    s.telegram.group_per_minute = defaults.group_per_minute;
    s.telegram.chat_interval_ms = defaults.chat_interval_ms;
    let per_second = s.telegram.per_second;
    let engine = crate::app::engine(s, Arc::new(crate::clock::SystemClock)).await?;
    {
        let now = store::ms(chrono::Utc::now());
        let mut tx = engine.store.begin().await?;
        for g in 0..groups {
            let msg = Outgoing::new(
                Platform::Telegram,
                format!("-{}", 3_000_000 + g),
                format!("📢 通知 #1｜防汛安全通知 {g}"),
            );
            outbox::enqueue(&mut tx, &msg, now, None, now).await?;
        }
        tx.commit().await?;
    }
    let (stop, shutdown) = watch::channel(false);
    let tg = crate::app::start_telegram(&engine, shutdown).await?;
    let accepted = |fake: &Fake| {
        fake.accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    };
    wait_for("the broadcast", || accepted(&fake).len() >= groups).await?;
    let times = accepted(&fake);
    let elapsed = match (times.first(), times.last()) {
        (Some(a), Some(b)) => b.duration_since(*a).as_secs_f64(),
        _ => 0.0,
    };
    let minimum = (groups.saturating_sub(1) / per_second.max(1)) as f64;
    let _ = stop.send(true);
    let _ = tg.dispatcher.await;
    for t in tg.adapter.tasks {
        t.abort();
    }
    engine.store.close().await;
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(BroadcastPart {
        groups,
        elapsed_s: elapsed,
        minimum_s: minimum,
        over_minimum_pct: if minimum > 0.0 {
            (elapsed - minimum) / minimum * 100.0
        } else {
            0.0
        },
        responses_429: fake.too_many.load(Ordering::SeqCst),
        per_second_limit: per_second,
    })
}
