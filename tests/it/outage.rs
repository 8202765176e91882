//! Database outages (issue 17, item 6): an update that arrives while the
//! database is unavailable is neither lost nor taken as done; it waits and
//! is handled once the database is back, in arrival order, once.
//!
//! How a test database becomes unavailable, without touching the shared
//! PostgreSQL server: on PostgreSQL the engine connects through a loopback
//! TCP proxy ([`Blackout`]) which, while closed, drops every live
//! connection and every new one at once; on SQLite another connection holds
//! the write lock (`BEGIN EXCLUSIVE`), as another process (a backup, an
//! import from the shell) would, so every write waits out SQLite's busy
//! timeout and fails with SQLITE_BUSY. The adapters' outage tests (QQ,
//! Telegram polling and webhook) use the same switch; this module tests
//! the engine itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tuanbot::chat::{Incoming, Outgoing};
use tuanbot::clock::ManualClock;
use tuanbot::domain::{ChatKind, Platform};
use tuanbot::engine::{Engine, Outcome};
use tuanbot::store::Store;

use crate::helpers::{TestDb, WAIT, bounded, within};

/// How long every outage test keeps the database away.
pub const OUTAGE: Duration = Duration::from_secs(40);

/// A switch that makes one test database unavailable and available again.
pub struct Blackout {
    /// The URL to give the engine (through the proxy on PostgreSQL).
    pub url: String,
    kind: Kind,
}

enum Kind {
    Proxy(Arc<Proxy>),
    /// The SQLite file, and the connection holding its write lock while
    /// the outage lasts.
    Lock(String, Box<Mutex<Option<rusqlite::Connection>>>),
}

/// A loopback TCP proxy to PostgreSQL.
struct Proxy {
    open: AtomicBool,
    /// Bumped to drop every live connection.
    generation: watch::Sender<u64>,
    connections: AtomicU64,
}

impl Blackout {
    pub async fn new(db: &TestDb) -> Blackout {
        if db.backend == "sqlite" {
            let path = db.url.trim_start_matches("sqlite://").to_string();
            return Blackout {
                url: db.url.clone(),
                kind: Kind::Lock(path, Box::new(Mutex::new(None))),
            };
        }
        // postgres://user@HOST:PORT/db?… → the proxy in HOST:PORT's place.
        let (head, rest) = db.url.split_once('@').expect("user@host in the test URL");
        let (target, tail) = rest.split_at(rest.find('/').expect("a path in the test URL"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let proxy = Arc::new(Proxy {
            open: AtomicBool::new(true),
            generation: watch::channel(0).0,
            connections: AtomicU64::new(0),
        });
        tokio::spawn(serve(listener, target.to_string(), proxy.clone()));
        Blackout {
            url: format!("{head}@{addr}{tail}"),
            kind: Kind::Proxy(proxy),
        }
    }

    /// Settings for `db` with the engine behind this switch.
    pub fn settings(&self, db: &TestDb) -> tuanbot::config::Settings {
        let mut s = db.settings();
        s.database_url = self.url.clone();
        s
    }

    /// The database goes away.
    pub async fn begin(&self) {
        match &self.kind {
            Kind::Proxy(p) => {
                p.open.store(false, Ordering::SeqCst);
                p.generation.send_modify(|g| *g += 1);
            }
            Kind::Lock(path, held) => {
                let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                conn.busy_timeout(Duration::from_secs(30))
                    .expect("busy timeout");
                conn.execute_batch("BEGIN EXCLUSIVE")
                    .expect("take the write lock");
                *held.lock().unwrap() = Some(conn);
            }
        }
    }

    /// The database is back.
    pub async fn end(&self) {
        match &self.kind {
            Kind::Proxy(p) => p.open.store(true, Ordering::SeqCst),
            Kind::Lock(_, held) => {
                if let Some(conn) = held.lock().unwrap().take() {
                    conn.execute_batch("ROLLBACK")
                        .expect("release the write lock");
                }
            }
        }
    }
}

async fn serve(listener: TcpListener, target: String, proxy: Arc<Proxy>) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        if !proxy.open.load(Ordering::SeqCst) {
            // Refused: the client sees the connection close at once.
            drop(inbound);
            continue;
        }
        proxy.connections.fetch_add(1, Ordering::Relaxed);
        let mut dropped = proxy.generation.subscribe();
        let generation = *dropped.borrow();
        let target = target.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(&target).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = dropped.wait_for(|g| *g != generation) => {}
            }
        });
    }
}

/// Wait out [`OUTAGE`] (a bounded sleep), checking that the engine's
/// writer still holds `waiting` updates, none answered.
pub async fn hold(engine: &tuanbot::engine::Engine, waiting: usize) {
    tokio::time::sleep(OUTAGE).await;
    assert_eq!(engine.waiting(), waiting, "updates held through the outage");
}

/// Poll `cond` until it holds, for at most [`WAIT`]: after an outage, the
/// waiters' next tries come up to 10 s apart.
pub async fn recovered(what: &str, mut cond: impl FnMut() -> bool) {
    within(
        WAIT,
        async {
            while !cond() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        },
        what,
    )
    .await
}

fn group_msg(n: u32, user: &str, text: &str, at: DateTime<Utc>) -> Incoming {
    let mut m = Incoming::text(
        Platform::Qq,
        format!("o{n}"),
        "g-outage",
        ChatKind::Group,
        user,
        text,
        at,
    );
    m.message_id = Some(n.to_string());
    m
}

/// The platform message ids the chat's replies quote, in outbox order.
pub async fn quoted_in_order(store: &Store, platform: Platform, chat: &str) -> Vec<String> {
    let mut conn = store.conn().await.expect("conn");
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT payload FROM outbox WHERE platform = $1 AND chat_id = $2 ORDER BY id",
    )
    .bind(platform.as_str())
    .bind(chat)
    .fetch_all(&mut *conn)
    .await
    .expect("outbox");
    rows.iter()
        .map(|(p,)| serde_json::from_str::<Outgoing>(p).expect("payload"))
        .filter_map(|m| m.reply_to)
        .collect()
}

async fn engine_waits_out(db: TestDb) {
    let b = db.backend;
    let blackout = Blackout::new(&db).await;
    let t0 = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 10, 1, 0, 0).unwrap();
    let store = Store::open(&blackout.url, "normal").await.expect("store");
    tuanbot::app::seed_demo_if_empty(&store, "zh-CN")
        .await
        .expect("seed");
    let clock = Arc::new(ManualClock::new(t0));
    let engine = Engine::new(store.clone(), blackout.settings(&db), clock).expect("engine");
    let e = &Arc::new(engine);
    // Mid-conversation: one answered before.
    let before = group_msg(1, "u1", "/whoami", t0);
    let got = bounded(e.submit(before), "an update before the outage").await;
    assert!(
        matches!(got, Ok(Outcome::Handled { replies: 1 })),
        "{b}: {got:?}"
    );
    blackout.begin().await;
    // Six people ask while it is away; each is queued at once.
    let answers: Vec<_> = (2..8)
        .map(|n| e.submit(group_msg(n, &format!("u{n}"), "/whoami", t0)))
        .map(tokio::spawn)
        .collect();
    hold(e, 6).await;
    blackout.end().await;
    for a in answers {
        let got = within(WAIT, a, "an update after the outage")
            .await
            .expect("task");
        assert!(
            matches!(got, Ok(Outcome::Handled { replies: 1 })),
            "{b}: {got:?}"
        );
    }
    // In arrival order, each once; nothing was kept as failed.
    let quoted = quoted_in_order(&store, Platform::Qq, "g-outage").await;
    let want: Vec<String> = (1..8).map(|n| n.to_string()).collect();
    assert_eq!(quoted, want, "{b}");
    let mut conn = store.conn().await.expect("conn");
    assert_eq!(
        tuanbot::store::failed::count(&mut conn)
            .await
            .expect("count"),
        0,
        "{b}: an outage is not a failure"
    );
    drop(conn);
    // The next update goes straight through.
    let after = group_msg(8, "u8", "/whoami", t0);
    let got = bounded(e.submit(after), "an update after").await;
    assert!(matches!(got, Ok(Outcome::Handled { .. })), "{b}: {got:?}");
    store.close().await;
    drop(db);
}

/// The engine's writer holds every update through a 40 s outage and
/// handles them after, in order, each once: on PostgreSQL (connections
/// refused and dropped) and SQLite (the file locked by another process),
/// at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_waits_out_an_outage_in_order() {
    let (sqlite, postgres) = (TestDb::sqlite().await, TestDb::postgres().await);
    tokio::join!(engine_waits_out(sqlite), engine_waits_out(postgres));
}
