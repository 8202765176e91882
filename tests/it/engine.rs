//! The engine: one update, one transaction, replies in the outbox.

use std::sync::Arc;

use chrono::TimeZone;
use tuanbot::chat::Incoming;
use tuanbot::clock::ManualClock;
use tuanbot::config::Settings;
use tuanbot::domain::{ChatKind, Platform, Role};
use tuanbot::engine::{Engine, Outcome};
use tuanbot::store::{audit, outbox, people};

use crate::helpers::TestDb;

fn msg(update: &str, user: &str, chat: &str, kind: ChatKind, text: &str) -> Incoming {
    let at = chrono::Utc.with_ymd_and_hms(2026, 3, 10, 1, 0, 0).unwrap();
    Incoming::text(Platform::Telegram, update, chat, kind, user, text, at)
        .from_name(format!("用户{user}"))
}

async fn engine(db: &TestDb, settings: Settings) -> Engine {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let store = db.store().await;
    tuanbot::app::seed_demo_if_empty(&store, "zh-CN")
        .await
        .unwrap();
    Engine::new(store, settings, clock).unwrap()
}

#[tokio::test]
async fn replayed_update_is_handled_once() {
    for db in TestDb::both().await {
        let e = engine(&db, db.settings()).await;
        let m = msg("100", "7", "7", ChatKind::Private, "/iam 县一中");
        assert_eq!(
            e.handle(&m).await.unwrap(),
            Outcome::Handled { replies: 1 },
            "{}",
            db.backend
        );
        assert_eq!(e.handle(&m).await.unwrap(), Outcome::Duplicate);
        let mut conn = e.store.conn().await.unwrap();
        assert_eq!(
            outbox::pending_count(&mut conn, Platform::Telegram)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            audit::count_action(&mut conn, "join.request")
                .await
                .unwrap(),
            1
        );
    }
}

#[tokio::test]
async fn group_chatter_is_silent_private_gets_a_hint() {
    for db in TestDb::both().await {
        let e = engine(&db, db.settings()).await;
        let cases = [
            ("1", ChatKind::Group, "大家好，明天开会", 0),
            ("2", ChatKind::Group, "/unknowncmd", 0),
            ("3", ChatKind::Group, "组织生活会开得很好", 0),
            ("4", ChatKind::Private, "大家好", 1),
            ("5", ChatKind::Private, "/unknowncmd", 1),
            ("6", ChatKind::Group, "/help", 1),
            ("7", ChatKind::Group, "😀", 0),
        ];
        for (id, kind, text, want) in cases {
            let chat = if kind == ChatKind::Group { "-100" } else { "7" };
            let out = e.handle(&msg(id, "7", chat, kind, text)).await.unwrap();
            assert_eq!(
                out,
                Outcome::Handled { replies: want },
                "{}: {text}",
                db.backend
            );
        }
    }
}

#[tokio::test]
async fn configured_admins_become_staff_on_first_message() {
    for db in TestDb::both().await {
        let mut settings = db.settings();
        settings.admins = vec!["telegram:1".into()];
        let e = engine(&db, settings).await;
        e.handle(&msg("1", "1", "1", ChatKind::Private, "/whoami"))
            .await
            .unwrap();
        e.handle(&msg("2", "2", "2", ChatKind::Private, "/whoami"))
            .await
            .unwrap();
        let mut conn = e.store.conn().await.unwrap();
        let admin = people::find(&mut conn, Platform::Telegram, "1")
            .await
            .unwrap()
            .unwrap();
        let other = people::find(&mut conn, Platform::Telegram, "2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (admin.role, other.role),
            (Role::Staff, Role::Member),
            "{}",
            db.backend
        );
        assert_eq!(
            audit::count_action(&mut conn, "person.role").await.unwrap(),
            1
        );
    }
}

#[tokio::test]
async fn english_speakers_get_english() {
    for db in TestDb::both().await {
        let e = engine(&db, db.settings()).await;
        let mut m = msg("1", "9", "9", ChatKind::Private, "/iam 县一中");
        m.sender_language = Some("en".into());
        e.handle(&m).await.unwrap();
        let mut conn = e.store.conn().await.unwrap();
        let rows = outbox::lease_due(
            &mut conn,
            e.store.backend(),
            Platform::Telegram,
            i64::MAX / 2,
            i64::MAX / 2,
            10,
        )
        .await
        .unwrap();
        assert!(
            rows[0]
                .message
                .text
                .contains("will decide your request to join"),
            "{}",
            rows[0].message.text
        );
    }
}
