//! Floods (issue 17, item 8), in simulated time: one person's 300 `/orgs`
//! in a group get a handful of replies, so a claim result in that group
//! still goes out at once under the group's 20-a-minute pacing; a cadre's
//! 40 single claims in a minute are all decided.
//!
//! The real engine, store, outbox and dispatcher run on a `ManualClock`
//! stepped 100 ms at a time, and the sending end is paced by the adapters'
//! own pacer with Telegram's default limits (see `rush.rs`): when a result
//! is delivered follows from the pacer's rules and what is queued before
//! it in the outbox, not from the wall clock. Both backends.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use tuanbot::chat::pacing::PaceLimits;
use tuanbot::chat::{Capabilities, Incoming};
use tuanbot::clock::{Clock, ManualClock};
use tuanbot::config::TelegramSettings;
use tuanbot::domain::{ChatKind, Platform};
use tuanbot::engine::Engine;
use tuanbot::outbox::Dispatcher;
use tuanbot::store::{outbox, people};

use crate::helpers::{TestDb, bounded};
use crate::rush::{PacedSender, numbers};

const GROUP: &str = "-1009";

async fn flood(db: &TestDb) {
    let b = db.backend;
    let t0 = Utc.with_ymd_and_hms(2026, 5, 20, 1, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let store = db.store().await;
    tuanbot::app::seed_demo_if_empty(&store, "zh-CN")
        .await
        .expect("seed");
    tuanbot::service::wishes::import_file(
        &store,
        std::path::Path::new("tests/fixtures/wishes.csv"),
        "flood",
        "zh-CN",
    )
    .await
    .expect("import");
    // A cadre of 县一中's org, and someone who floods.
    let mut tx = store.begin().await.expect("begin");
    let orgs = tuanbot::store::orgs::all(&mut tx).await.expect("orgs");
    let (cadre, _) = people::upsert_seen(&mut tx, Platform::Telegram, "cadre", "小王", 0)
        .await
        .expect("person");
    people::set_org(&mut tx, cadre.id, Some(orgs[1].id), 0)
        .await
        .expect("org");
    tx.commit().await.expect("commit");
    let mut settings = db.settings();
    settings.admins = vec!["telegram:staff".into()];
    let engine = Arc::new(Engine::new(store.clone(), settings, clock.clone()).expect("engine"));
    let caps = Capabilities {
        edit: true,
        buttons: true,
        max_text_chars: 4096,
    };
    engine.set_capabilities(Platform::Telegram, caps);
    let limits = PaceLimits::telegram(&TelegramSettings::default());
    assert_eq!(limits.chat_per_window, 20, "{b}: the default group cap");
    let sender = Arc::new(PacedSender::new(
        Platform::Telegram,
        caps,
        GROUP,
        clock.clone(),
        limits,
    ));
    let dispatcher = Dispatcher::new(
        store.clone(),
        sender.clone(),
        clock.clone(),
        engine.outbox_ready.clone(),
    );
    let mut seq = 0u32;
    let mut say = |user: &str, text: &str, at: DateTime<Utc>| {
        seq += 1;
        Incoming::text(
            Platform::Telegram,
            format!("f{seq}"),
            GROUP,
            ChatKind::Group,
            user,
            text,
            at,
        )
    };
    let (clock_ref, dispatcher_ref) = (&clock, &dispatcher);
    let step = || async move {
        clock_ref.advance(Duration::milliseconds(100));
        bounded(dispatcher_ref.drain_due(), "a dispatcher pass")
            .await
            .expect("dispatcher");
    };
    // The batch is published and its pages go out first.
    let publish = say("staff", "/wishes publish flood quota 50", clock.now());
    bounded(engine.handle(&publish), "publishing")
        .await
        .expect("publish");
    for _ in 0..3000 {
        step().await;
        let mut conn = store.conn().await.expect("conn");
        if outbox::pending_count(&mut conn, Platform::Telegram)
            .await
            .expect("count")
            == 0
        {
            break;
        }
    }
    // A quiet minute, so the flood starts with the group's window free.
    for _ in 0..600 {
        step().await;
    }
    // 300 `/orgs` from one person, five a second.
    let start = clock.now();
    for _ in 0..300 {
        let m = say("flooder", "/orgs", clock.now());
        bounded(engine.handle(&m), "/orgs").await.expect("/orgs");
        step().await;
        step().await;
    }
    let claimed_at = clock.now();
    let claim = say("cadre", "认领 7", claimed_at);
    bounded(engine.handle(&claim), "a claim")
        .await
        .expect("claim");
    for _ in 0..100 {
        step().await;
    }
    let log = sender.log.lock().unwrap().clone();
    let flood_replies: Vec<_> = log
        .iter()
        .filter(|d| d.chat == GROUP && !d.edit && d.at >= start && d.at < claimed_at)
        .collect();
    // One answer, one "slow down" line, then silence.
    assert_eq!(flood_replies.len(), 2, "{b}: {flood_replies:#?}");
    assert!(flood_replies[0].text.contains("县一中"), "{b}");
    assert!(flood_replies[1].text.contains("请稍后再试"), "{b}");
    // The claim result is not stuck behind the flood: delivered within 5 s
    // (its ~2 s gathering window, then the group's 3 s spacing at most).
    let result = log
        .iter()
        .find(|d| d.chat == GROUP && !d.edit && d.at >= claimed_at && numbers(&d.text).contains(&7))
        .unwrap_or_else(|| panic!("{b}: no claim result delivered"));
    assert!(
        result.at - claimed_at <= Duration::seconds(5),
        "{b}: the claim result came {} s after the claim",
        (result.at - claimed_at).num_milliseconds() as f64 / 1000.0
    );
    // A cadre claiming one wish at a time, 40 in a minute: all decided,
    // none told to slow down.
    let before = sender.log.lock().unwrap().len();
    for no in 11..51 {
        let m = say("cadre", &format!("认领 {no}"), clock.now());
        bounded(engine.handle(&m), "a claim").await.expect("claim");
        for _ in 0..15 {
            step().await;
        }
    }
    for _ in 0..300 {
        step().await;
    }
    let mut conn = store.conn().await.expect("conn");
    let (held,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM wishes w JOIN wish_batches wb ON wb.id = w.batch_id \
         WHERE wb.name = 'flood' AND w.status = 'claimed' AND w.no BETWEEN 11 AND 50",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("claimed");
    drop(conn);
    assert_eq!(held, 40, "{b}: every claim decided");
    let after = sender.log.lock().unwrap()[before..].to_vec();
    assert!(
        after.iter().all(|d| !d.text.contains("请稍后再试")),
        "{b}: a cadre's claims are never limited"
    );
    let announced: Vec<i64> = after.iter().flat_map(|d| numbers(&d.text)).collect();
    for no in 11..51 {
        assert!(
            announced.contains(&no),
            "{b}: the result of {no} was not sent"
        );
    }
    store.close().await;
}

#[tokio::test]
async fn a_flood_gets_a_handful_of_replies_and_claims_go_on() {
    for db in TestDb::both().await {
        flood(&db).await;
    }
}
