//! Test helpers: fresh databases on both backends, console scripts, a
//! recording chat sender.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tuanbot::chat::console::Sink;
use tuanbot::config::Settings;
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
        let mut conn = sqlx::PgConnection::connect(&admin)
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
    console
        .run(tokio::io::BufReader::new(text.as_bytes()), false)
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
