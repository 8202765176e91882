//! Test helpers: fresh databases on both backends, console scripts, engine
//! scenes on a manual clock, the start and stop of an adapter against a fake
//! peer, and bounded waits: every wait in the suite goes through
//! [`bounded`], [`within`], [`until`] or [`output_within`], so a bug fails
//! a test with a message instead of hanging the suite.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tuanbot::chat::console::Sink;
use tuanbot::clock::ManualClock;
use tuanbot::config::Settings;
use tuanbot::engine::Engine;
use tuanbot::store::Store;

/// Where PostgreSQL tests connect; override with `TUANBOT_TEST_PG`.
pub fn pg_admin_url() -> String {
    std::env::var("TUANBOT_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh, empty database. Dropping it removes the SQLite file or the
/// PostgreSQL schema.
pub struct TestDb {
    pub backend: &'static str,
    pub url: String,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDb {
            backend: "sqlite",
            url,
            schema: None,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        use sqlx::Connection;
        let admin = pg_admin_url();
        let mut conn = within(PATIENCE, sqlx::PgConnection::connect(&admin), "PostgreSQL")
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required for the test suite and is unreachable at {admin}: {e}"
                )
            });
        let schema = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&mut conn)
        .await
        .expect("drop schema");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .expect("create schema");
        let sep = if admin.contains('?') { '&' } else { '?' };
        TestDb {
            backend: "postgres",
            url: format!("{admin}{sep}options[search_path]={schema}"),
            schema: Some(schema),
            _dir: None,
        }
    }

    /// Both backends, SQLite first.
    pub async fn both() -> Vec<TestDb> {
        vec![TestDb::sqlite().await, TestDb::postgres().await]
    }

    pub fn settings(&self) -> Settings {
        Settings {
            database_url: self.url.clone(),
            ..Settings::default()
        }
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.url, "normal").await.expect("open store")
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        let admin = pg_admin_url();
        // Async cleanup from a sync Drop: a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    // The test is over: a session still holding locks in its
                    // schema is a leftover (say, a pooled connection whose
                    // queued ROLLBACK can't be flushed while this Drop blocks
                    // the test's runtime). End such sessions so the DROP
                    // can't wait forever; lock_timeout bounds it anyway.
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                         JOIN pg_class c ON c.oid = l.relation \
                         JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                    )
                    .bind(&schema)
                    .execute(&mut conn)
                    .await;
                    let _ = sqlx::query("SET lock_timeout = '20s'")
                        .execute(&mut conn)
                        .await;
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A `Write` whose bytes the test can read afterwards.
#[derive(Clone, Default)]
pub struct Buf(pub Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    pub fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).expect("utf8")
    }
}

/// Replay a console script on `db` (demo orgs seeded) and return what the
/// bot printed (plain text, or JSON lines with `json`).
pub async fn script(db: &TestDb, text: &str, json: bool) -> String {
    script_with(db.settings(), text, json).await
}

pub async fn script_with(settings: Settings, text: &str, json: bool) -> String {
    let buf = Buf::default();
    let sink: Sink = Arc::new(Mutex::new(Box::new(buf.clone())));
    let (mut console, engine) = tuanbot::app::console(settings, sink, json)
        .await
        .expect("console");
    tuanbot::app::seed_demo_if_empty(&engine.store, "zh-CN")
        .await
        .expect("seed");
    bounded(
        console.run(tokio::io::BufReader::new(text.as_bytes()), false),
        "a console script to finish",
    )
    .await
    .expect("script");
    engine.store.close().await;
    buf.take()
}

/// The `text` fields of JSON console output, in order.
pub fn texts(json_lines: &str) -> Vec<String> {
    json_lines
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["text"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

/// How long a whole operation (a console script, a simulated rush step, a
/// dispatcher pass, joining spawned tasks) may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);
/// How long polling for something a fake peer should see may take.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Await `fut` for at most [`WAIT`]: a bug fails the test, naming `what`,
/// instead of hanging it.
pub async fn bounded<F: Future>(fut: F, what: &str) -> F::Output {
    within(WAIT, fut, what).await
}

/// Await `fut` for at most `limit`; panic with `what` when it takes longer.
pub async fn within<F: Future>(limit: Duration, fut: F, what: &str) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// Poll `cond` every 20 ms until it holds; panic naming `what` after
/// [`PATIENCE`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {PATIENCE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Join spawned tasks, each within [`WAIT`]; a task that panicked fails
/// the test with its panic.
pub async fn join_all<T>(tasks: Vec<JoinHandle<T>>, what: &str) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(bounded(t, what).await.expect("task panicked"));
    }
    out
}

/// Run a child process to its end within [`WAIT`], collecting its output;
/// kill it and fail when it takes longer.
pub fn output_within(cmd: &mut std::process::Command, what: &str) -> std::process::Output {
    use std::process::Stdio;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    wait_child(child, what)
}

/// Wait for a spawned child (stdout/stderr piped) within [`WAIT`].
pub fn wait_child(child: std::process::Child, what: &str) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("timed out after {WAIT:?} waiting for {what} (killed pid {pid})");
        }
    }
}

/// An engine for a scene on a manual clock at `t0`: `db`'s store (demo orgs
/// seeded when `seed`), with `admin` (`platform:user`) as staff.
pub struct Scene {
    pub engine: Arc<Engine>,
    pub store: Store,
    pub clock: Arc<ManualClock>,
}

pub async fn scene(db: &TestDb, t0: DateTime<Utc>, admin: &str, seed: bool) -> Scene {
    let clock = Arc::new(ManualClock::new(t0));
    let store = db.store().await;
    if seed {
        tuanbot::app::seed_demo_if_empty(&store, "zh-CN")
            .await
            .expect("seed");
    }
    let mut settings = db.settings();
    settings.admins = vec![admin.to_string()];
    let engine = Arc::new(Engine::new(store.clone(), settings, clock.clone()).expect("engine"));
    Scene {
        engine,
        store,
        clock,
    }
}

/// An engine on the system clock (demo orgs seeded) for an adapter to
/// serve against a fake peer, and the switch that stops it.
pub async fn adapter_engine(
    settings: Settings,
) -> (Arc<Engine>, watch::Sender<bool>, watch::Receiver<bool>) {
    let engine = tuanbot::app::engine(settings, Arc::new(tuanbot::clock::SystemClock))
        .await
        .expect("engine");
    tuanbot::app::seed_demo_if_empty(&engine.store, "zh-CN")
        .await
        .expect("seed");
    let (stop, shutdown) = watch::channel(false);
    (engine, stop, shutdown)
}

/// Stop a running adapter: flip the switch, wait (bounded) for its
/// dispatcher and tasks, then close the store. A task that does not stop
/// within [`PATIENCE`] fails the test.
pub async fn stop_adapter(
    engine: &Engine,
    stop: watch::Sender<bool>,
    dispatcher: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
) {
    let _ = stop.send(true);
    within(PATIENCE, dispatcher, "the dispatcher to stop")
        .await
        .expect("dispatcher panicked");
    for t in tasks {
        within(PATIENCE, t, "an adapter task to stop")
            .await
            .expect("adapter task panicked");
    }
    engine.store.close().await;
}

/// A plain connection (no pool, no migrations) to `url`, either backend.
pub async fn any_conn(url: &str) -> Result<tuanbot::store::Conn, sqlx::Error> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    tuanbot::store::Conn::connect(url).await
}

/// The real binary with a clean environment: no settings from this
/// process's `TUANBOT_*` or `TELOXIDE_TOKEN`, logs at `warn`, run in the
/// temporary directory (no `tuanbot.toml` there); the database is given
/// by the caller (`--db`, or `TUANBOT_DATABASE_URL`).
pub fn binary() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tuanbot"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TUANBOT_") {
            c.env_remove(key);
        }
    }
    c.env_remove("TELOXIDE_TOKEN")
        .env("TUANBOT_LOG", "warn")
        .current_dir(std::env::temp_dir());
    c
}

/// Make `user` on `platform` an approved member of the org whose short name
/// is `org` with `role`, directly in the store (for tests whose subject is
/// not how people join; `tests/it/members.rs` covers that).
pub async fn make_member(
    store: &Store,
    platform: tuanbot::domain::Platform,
    user: &str,
    org: &str,
    role: tuanbot::domain::Role,
) {
    use tuanbot::store::people;
    let org_id = org_id(store, org).await;
    let mut conn = store.conn().await.expect("conn");
    let (p, _) = people::upsert_seen(&mut *conn, platform, user, user, 0)
        .await
        .expect("person");
    people::set_org(&mut conn, p.id, Some(org_id), 0)
        .await
        .expect("org");
    people::set_role(&mut conn, p.id, role, 0)
        .await
        .expect("role");
}

/// The messages after the first one starting with `marker`: what a test's
/// body printed after its scene (whose last message is `marker`'s).
pub fn after(texts: &[String], marker: &str) -> Vec<String> {
    let i = texts
        .iter()
        .position(|t| t.starts_with(marker))
        .unwrap_or_else(|| panic!("no message starting with {marker:?} in {texts:#?}"));
    texts[i + 1..].to_vec()
}

/// The id of the org whose short name is `short`.
pub async fn org_id(store: &Store, short: &str) -> i64 {
    let mut conn = store.conn().await.expect("conn");
    tuanbot::store::orgs::all(&mut conn)
        .await
        .expect("orgs")
        .into_iter()
        .find(|o| o.short_name == short)
        .unwrap_or_else(|| panic!("no org {short}"))
        .id
}
