//! `tuanbot doctor` against the fake Bot API and the fake OneBot
//! implementation of the adapter tests: a healthy set-up passes, and each
//! failure gets a ❌ (or ⚠️) line naming what to do, on both backends.

use std::net::SocketAddr;

use chrono::Utc;
use serde_json::json;
use tuanbot::config::Settings;
use tuanbot::ops::doctor::{self, Check, Level};
use tuanbot::ops::lock;

use crate::helpers::{TestDb, output_within};
use crate::qqbot_fake::Fake as QqBotFake;
use crate::{onebot, telegram};

async fn run(settings: &Settings) -> Vec<Check> {
    crate::helpers::bounded(doctor::run(settings, Utc::now()), "the doctor").await
}

/// The lines about `topic`.
fn about<'a>(checks: &'a [Check], topic: &str) -> Vec<&'a Check> {
    checks.iter().filter(|c| c.topic == topic).collect()
}

/// The one failing line about `topic`; it must contain `text`.
fn fails(checks: &[Check], topic: &str, text: &str) {
    let lines: Vec<String> = checks.iter().map(|c| c.line("zh-CN")).collect();
    assert!(doctor::failed(checks), "{lines:#?}");
    assert!(
        about(checks, topic)
            .iter()
            .any(|c| c.level == Level::Fail && c.text.contains(text)),
        "no ❌ {topic} containing {text:?}: {lines:#?}"
    );
}

/// A free loopback port with nothing listening.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Settings for `db` with the fake Bot API and the fake OneBot peer.
async fn healthy(db: &TestDb, dir: &std::path::Path) -> Settings {
    let (tg, _fake) = telegram::fake_api().await;
    let (ob, _state) = onebot::fake_server(onebot::TOKEN).await;
    let mut s = telegram::settings(db, tg);
    s.onebot.ws_url = Some(format!("ws://{ob}"));
    s.onebot.access_token = Some(onebot::TOKEN.into());
    s.onebot.action_timeout_ms = 2000;
    s.admins = vec!["qq:10001".into()];
    s.backup.dir = Some(dir.to_path_buf());
    s.web.listen = Some(closed_port().to_string());
    s.web.public_url = Some("https://tuan.example.cn".into());
    s
}

#[tokio::test]
async fn a_healthy_setup_passes() {
    for db in TestDb::both().await {
        let dir = tempfile::tempdir().unwrap();
        let store = db.store().await;
        store.close().await;
        let s = healthy(&db, dir.path()).await;
        let made = tuanbot::ops::backup::backup(
            &s.database_url,
            &dir.path().join(tuanbot::ops::backup::file_name(
                store.backend(),
                Utc::now(),
                s.tz().unwrap(),
            )),
        )
        .await
        .unwrap();
        assert!(matches!(made, tuanbot::ops::backup::Made::File { .. }));
        let checks = run(&s).await;
        let lines: Vec<String> = checks.iter().map(|c| c.line("zh-CN")).collect();
        assert!(!doctor::failed(&checks), "{}: {lines:#?}", db.backend);
        let has = |level: Level, topic: &str, text: &str| {
            assert!(
                about(&checks, topic)
                    .iter()
                    .any(|c| c.level == level && c.text.contains(text)),
                "{}: no {} {topic} {text:?}: {lines:#?}",
                db.backend,
                level.mark()
            )
        };
        has(Level::Ok, "数据库", "数据结构最新");
        has(Level::Warn, "数据库", "没有 tuanbot 进程在运行");
        has(Level::Ok, "备份", "最新备份");
        has(Level::Ok, "Telegram", "@tuan_bot");
        has(Level::Warn, "Telegram", "隐私模式");
        has(Level::Ok, "Telegram", "长轮询");
        has(Level::Ok, "QQ (OneBot)", "QQ 10001（团务助手）");
        has(Level::Ok, "网页后台", "可用");
        has(Level::Ok, "磁盘", "GB");
        has(Level::Ok, "时钟", "本机时间");
        if db.backend == "postgres" {
            has(Level::Ok, "时钟", "PostgreSQL");
        }
        // Every line has its mark and topic.
        assert!(lines.iter().all(|l| l.starts_with(['✅', '⚠', '❌'])));

        // While a tuanbot process holds the database, the doctor says so.
        let held = lock::shared(&db.url).await.unwrap();
        let checks = run(&s).await;
        assert!(
            about(&checks, "数据库")
                .iter()
                .any(|c| c.level == Level::Ok && c.text.contains("机器人在运行")),
            "{checks:#?}"
        );
        drop(held);
    }
}

#[tokio::test]
async fn each_platform_failure_says_what_to_do() {
    let db = TestDb::sqlite().await;
    db.store().await.close().await;
    let dir = tempfile::tempdir().unwrap();
    let base = healthy(&db, dir.path()).await;

    let mut s = base.clone();
    s.telegram.token = Some("123456:WRONG".into());
    fails(&run(&s).await, "Telegram", "@BotFather");

    let mut s = base.clone();
    s.telegram.api_url = Some(format!("http://{}", closed_port()));
    fails(&run(&s).await, "Telegram", "连不上");

    // A webhook Telegram cannot deliver to.
    let (tg, fake) = telegram::fake_api().await;
    *fake.webhook_info.lock().unwrap() = json!({
        "url": "https://bot.example.org/tg/hook", "has_custom_certificate": false,
        "pending_update_count": 250, "last_error_date": 1_767_225_600,
        "last_error_message": "SSL error {error:0A000086:SSL routines::certificate verify failed}"
    });
    let mut s = telegram::settings(&db, tg);
    s.telegram.webhook_url = Some("https://bot.example.org/tg/hook".into());
    let checks = run(&s).await;
    let warned = |text: &str| {
        about(&checks, "Telegram")
            .iter()
            .any(|c| c.level == Level::Warn && c.text.contains(text))
    };
    assert!(
        warned("推送 webhook 失败") && warned("certificate verify failed"),
        "{checks:#?}"
    );
    assert!(warned("积压了 250 条"), "{checks:#?}");
    // Registered elsewhere than the settings say.
    *fake.webhook_info.lock().unwrap() =
        json!({"url": "https://other.example.org/", "pending_update_count": 0});
    let checks = run(&s).await;
    assert!(
        about(&checks, "Telegram")
            .iter()
            .any(|c| c.level == Level::Warn && c.text.contains("https://other.example.org/")),
        "{checks:#?}"
    );

    let mut s = base.clone();
    s.onebot.access_token = Some("wrong".into());
    fails(&run(&s).await, "QQ (OneBot)", "access_token");

    let mut s = base.clone();
    s.onebot.ws_url = Some(format!("ws://{}", closed_port()));
    fails(&run(&s).await, "QQ (OneBot)", "连不上");

    // A peer that accepts the connection and never speaks.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let mut s = base.clone();
    s.onebot.ws_url = Some(format!("ws://{addr}"));
    s.onebot.action_timeout_ms = 500;
    fails(&run(&s).await, "QQ (OneBot)", "超时");

    // The dashboard's port taken by another program.
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut s = base.clone();
    s.web.listen = Some(taken.local_addr().unwrap().to_string());
    fails(&run(&s).await, "网页后台", "被别的程序占用");
    // A public URL without TLS.
    let mut s = base.clone();
    s.web.public_url = Some("http://tuan.example.cn".into());
    let checks = run(&s).await;
    assert!(
        about(&checks, "网页后台")
            .iter()
            .any(|c| c.level == Level::Warn && c.text.contains("不是 https")),
        "{checks:#?}"
    );
}

#[tokio::test]
async fn each_database_failure_says_what_to_do() {
    for db in TestDb::both().await {
        let store = db.store().await;
        // A clock set back behind the newest record.
        let mut tx = store.begin().await.unwrap();
        tuanbot::store::audit::record(
            &mut tx,
            &tuanbot::store::audit::Entry {
                at_ms: tuanbot::store::ms(Utc::now() + chrono::Duration::days(2)),
                platform: tuanbot::domain::Platform::Console,
                actor: "test",
                action: "test",
                entity: "test",
                entity_id: None,
                detail: json!({}),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let s = db.settings();
        fails(&run(&s).await, "时钟", "时钟被调慢了");

        // Migrated by a newer tuanbot.
        let mut conn = store.conn().await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', TRUE, $1, 1)",
        )
        .bind(vec![0u8])
        .execute(&mut *conn)
        .await
        .unwrap();
        drop(conn);
        store.close().await;
        fails(&run(&s).await, "数据库", "请升级 tuanbot");
    }

    let mut s = Settings {
        database_url: format!("postgres://postgres@{}/postgres", closed_port()),
        ..Settings::default()
    };
    fails(&run(&s).await, "数据库", "连不上");

    // A damaged SQLite file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0x5a, 4096));
    std::fs::write(&file, bytes).unwrap();
    s.database_url = format!("sqlite://{}", file.display());
    fails(&run(&s).await, "数据库", "");

    // A backup directory that cannot be one.
    let db = TestDb::sqlite().await;
    db.store().await.close().await;
    let mut s = db.settings();
    let blocked = dir.path().join("a-file");
    std::fs::write(&blocked, "x").unwrap();
    s.backup.dir = Some(blocked.join("backups"));
    fails(&run(&s).await, "备份", "不能写入");
}

#[tokio::test]
async fn the_binary_exits_non_zero_on_a_failure() {
    let db = TestDb::sqlite().await;
    let tuanbot = || {
        let mut c = crate::helpers::binary();
        c.env("TUANBOT_DATABASE_URL", &db.url);
        c
    };
    let out = output_within(tuanbot().arg("doctor"), "tuanbot doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // No platform, no backups, no database yet: warnings only.
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.lines().all(|l| l.starts_with(['✅', '⚠'])),
        "{stdout}"
    );
    assert!(stdout.contains("⚠️ 设置：没有配置任何平台"), "{stdout}");

    let out = output_within(
        tuanbot().env("TUANBOT_TIMEZONE", "Mars/Base").arg("doctor"),
        "tuanbot doctor",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.starts_with("❌ 设置：config error: timezone: unknown time zone"),
        "{stdout}"
    );

    let out = output_within(
        tuanbot()
            .env("TUANBOT_TELEGRAM__TOKEN", "1:x")
            .env(
                "TUANBOT_TELEGRAM__API_URL",
                format!("http://{}", closed_port()),
            )
            .env("TUANBOT_ONEBOT__ACTION_TIMEOUT_MS", "500")
            .arg("doctor"),
        "tuanbot doctor",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("❌ Telegram：连不上"));
}

/// The official QQ Bot API: a token and the OpenAPI pass; a wrong secret,
/// an address off the IP allow-list, an unreachable platform and a taken
/// webhook address each get a ❌ line saying what to do.
#[tokio::test]
async fn qqbot_token_allow_list_and_webhook() {
    let db = TestDb::sqlite().await;
    db.store().await.close().await;
    let dir = tempfile::tempdir().unwrap();
    let fake = QqBotFake::start().await;
    let mut base = healthy(&db, dir.path()).await;
    fake.configure(&mut base);
    let checks = run(&base).await;
    let lines: Vec<String> = checks.iter().map(|c| c.line("zh-CN")).collect();
    assert!(!doctor::failed(&checks), "{lines:#?}");
    assert!(
        about(&checks, "QQ (开放平台)")
            .iter()
            .any(|c| c.level == Level::Ok && c.text.contains("取得了令牌")),
        "{lines:#?}"
    );

    let mut s = base.clone();
    s.qqbot.secret = Some("wrong-secret".into());
    fails(&run(&s).await, "QQ (开放平台)", "AppSecret");

    fake.state
        .ip_blocked
        .store(true, std::sync::atomic::Ordering::SeqCst);
    fails(&run(&base).await, "QQ (开放平台)", "IP 白名单");
    fake.state
        .ip_blocked
        .store(false, std::sync::atomic::Ordering::SeqCst);

    let mut s = base.clone();
    let closed = closed_port();
    s.qqbot.api_url = Some(format!("http://{closed}"));
    s.qqbot.auth_url = Some(format!("http://{closed}/app/getAppAccessToken"));
    fails(&run(&s).await, "QQ (开放平台)", "连不上");

    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut s = base.clone();
    s.qqbot.transport = "webhook".into();
    s.qqbot.webhook_listen = Some(taken.local_addr().unwrap().to_string());
    fails(&run(&s).await, "QQ (开放平台)", "被别的程序占用");
    s.qqbot.webhook_listen = Some(closed_port().to_string());
    let checks = run(&s).await;
    assert!(
        about(&checks, "QQ (开放平台)")
            .iter()
            .any(|c| c.level == Level::Ok && c.text.contains("回调地址")),
        "{checks:#?}"
    );
}
