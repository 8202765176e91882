//! Poison updates (issue 17, item 4): a handler's error or panic is caught
//! per update; after three tries the update is kept as failed with its
//! error (and the update itself), its id is recorded as handled, its sender
//! gets a one-line apology in their language, and everything else goes on.
//! `tuanbot failed list|retry ID|drop ID` for the operator. Both backends.
//!
//! The panics come from the engine's test seam
//! ([`Engine::inject_fault`]); the errors from a row corrupted by hand, as
//! a county's database administrator might leave one.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use tuanbot::chat::{Incoming, Outgoing};
use tuanbot::domain::{ChatKind, Platform};
use tuanbot::engine::{Engine, Outcome, Retried};
use tuanbot::store::{Store, audit, failed, people};

use crate::helpers::{Scene, TestDb, bounded, output_within, scene};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 1, 0, 0).unwrap()
}

fn group_msg(update: &str, user: &str, text: &str) -> Incoming {
    let mut m = Incoming::text(
        Platform::Qq,
        update,
        "g-poison",
        ChatKind::Group,
        user,
        text,
        t0(),
    );
    m.message_id = Some(format!("m-{update}"));
    m
}

/// A fault that panics for update `update`, counting its tries.
fn panics_on(e: &Engine, update: &'static str) -> Arc<AtomicUsize> {
    let tries = Arc::new(AtomicUsize::new(0));
    let seen = tries.clone();
    e.inject_fault(Some(Arc::new(move |m: &Incoming| {
        if m.update_id == update {
            seen.fetch_add(1, Ordering::SeqCst);
            panic!("💥 poison in the test");
        }
    })));
    tries
}

/// Every outbox message to `chat`, in order.
async fn outbox_to(store: &Store, chat: &str) -> Vec<Outgoing> {
    let mut conn = store.conn().await.expect("conn");
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT payload FROM outbox WHERE chat_id = $1 ORDER BY id")
            .bind(chat)
            .fetch_all(&mut *conn)
            .await
            .expect("outbox");
    rows.iter()
        .map(|(p,)| serde_json::from_str(p).expect("payload"))
        .collect()
}

async fn kept(store: &Store) -> Vec<failed::Failed> {
    let mut conn = store.conn().await.expect("conn");
    failed::list(&mut conn).await.expect("failed updates")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_group_fails_alone_and_is_kept() {
    for db in TestDb::both().await {
        let b = db.backend;
        let Scene {
            engine: e, store, ..
        } = scene(&db, t0(), "qq:staff", true).await;
        let tries = panics_on(&e, "p2");
        // Five updates queued together: one group for the writer.
        let mut english = group_msg("p4", "u4", "/whoami");
        english.sender_language = Some("en".into());
        let msgs = [
            group_msg("p1", "u1", "/whoami"),
            group_msg("p2", "u2", "/whoami"),
            group_msg("p3", "u3", "/orgs"),
            english,
            group_msg("p5", "u5", "/help"),
        ];
        let answers: Vec<_> = msgs.iter().cloned().map(|m| e.submit(m)).collect();
        let mut outcomes = Vec::new();
        for a in answers {
            outcomes.push(bounded(a, "the writer").await.expect("answered"));
        }
        assert_eq!(tries.load(Ordering::SeqCst), 3, "{b}: three tries");
        assert!(
            matches!(outcomes[1], Outcome::Failed { .. }),
            "{b}: {outcomes:?}"
        );
        for i in [0, 2, 3, 4] {
            assert!(
                matches!(outcomes[i], Outcome::Handled { replies: 1 }),
                "{b}: the others go on: {outcomes:?}"
            );
        }
        // The sender of the poison gets one line, quoting it; the rest
        // their answers, in order.
        let out = outbox_to(&store, "g-poison").await;
        let quoted: Vec<_> = out.iter().filter_map(|m| m.reply_to.clone()).collect();
        assert_eq!(quoted, ["m-p1", "m-p2", "m-p3", "m-p4", "m-p5"], "{b}");
        assert_eq!(out[1].text.lines().count(), 1, "{b}: {}", out[1].text);
        assert!(out[1].text.contains("抱歉"), "{b}: {}", out[1].text);
        // Kept, with its error and enough to run it again.
        let rows = kept(&store).await;
        assert_eq!(rows.len(), 1, "{b}");
        let row = &rows[0];
        assert_eq!(
            (row.update_id.as_str(), row.tries, row.text.as_str()),
            ("p2", 3, "/whoami"),
            "{b}"
        );
        assert!(
            row.error.contains("💥 poison in the test"),
            "{b}: {}",
            row.error
        );
        let back: Incoming = serde_json::from_str(&row.incoming).expect("the update");
        assert_eq!(back.sender_id, "u2");
        assert_eq!(back.message_id.as_deref(), Some("m-p2"));
        assert_eq!(Outcome::Failed { id: row.id }, outcomes[1]);
        // A redelivery does not run it a fourth time.
        let again = bounded(e.submit(msgs[1].clone()), "a redelivery").await;
        assert_eq!(again.expect("answered"), Outcome::Duplicate, "{b}");
        assert_eq!(tries.load(Ordering::SeqCst), 3, "{b}");
        let mut conn = store.conn().await.expect("conn");
        assert_eq!(
            audit::count_action(&mut conn, "update.failed")
                .await
                .expect("audit"),
            1,
            "{b}"
        );
        drop(conn);
        // An English client gets the apology in English.
        e.inject_fault(None);
        let _ = panics_on(&e, "p6");
        let mut p6 = group_msg("p6", "u6", "/whoami");
        p6.sender_language = Some("en".into());
        let got = bounded(e.handle(&p6), "one update alone").await;
        assert!(matches!(got, Ok(Outcome::Failed { .. })), "{b}: {got:?}");
        let last = outbox_to(&store, "g-poison").await.pop().expect("apology");
        assert!(last.text.starts_with("Sorry"), "{b}: {}", last.text);
        store.close().await;
    }
}

/// A panic inside a run of claims: the run is done again one claim at a
/// time, every other claim is decided, and the poison is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_claim_run_loses_no_other_claim() {
    for db in TestDb::both().await {
        let b = db.backend;
        let Scene {
            engine: e, store, ..
        } = scene(&db, t0(), "qq:staff", true).await;
        tuanbot::service::wishes::import_file(
            &store,
            std::path::Path::new("tests/fixtures/wishes.csv"),
            "poison",
            "zh-CN",
        )
        .await
        .expect("import");
        let publish = group_msg("pub", "staff", "/wishes publish poison quota 10");
        bounded(e.handle(&publish), "publishing")
            .await
            .expect("published");
        // Four members of four orgs.
        let mut tx = store.begin().await.expect("begin");
        let orgs = tuanbot::store::orgs::all(&mut tx).await.expect("orgs");
        for (i, org) in orgs.iter().enumerate().skip(1).take(4) {
            let user = format!("c{i}");
            let (p, _) = people::upsert_seen(&mut tx, Platform::Qq, &user, &user, 0)
                .await
                .expect("person");
            people::set_org(&mut tx, p.id, Some(org.id), 0)
                .await
                .expect("org");
        }
        tx.commit().await.expect("commit");
        let tries = panics_on(&e, "c3");
        let answers: Vec<_> = (1..=4)
            .map(|i| {
                e.submit(group_msg(
                    &format!("c{i}"),
                    &format!("c{i}"),
                    &format!("认领 {i}"),
                ))
            })
            .collect();
        let mut outcomes = Vec::new();
        for a in answers {
            outcomes.push(bounded(a, "the claims").await.expect("answered"));
        }
        assert!(
            matches!(outcomes[2], Outcome::Failed { .. }),
            "{b}: {outcomes:?}"
        );
        for i in [0, 1, 3] {
            assert!(
                matches!(outcomes[i], Outcome::Handled { .. }),
                "{b}: {outcomes:?}"
            );
        }
        // Once in the run, then three tries of its own.
        assert_eq!(tries.load(Ordering::SeqCst), 4, "{b}");
        let mut conn = store.conn().await.expect("conn");
        let held: Vec<(i64,)> = sqlx::query_as(
            "SELECT w.no FROM wishes w JOIN wish_batches b ON b.id = w.batch_id \
             WHERE b.name = 'poison' AND w.status = 'claimed' ORDER BY w.no",
        )
        .fetch_all(&mut *conn)
        .await
        .expect("claimed");
        assert_eq!(held, [(1,), (2,), (4,)], "{b}");
        drop(conn);
        assert_eq!(kept(&store).await.len(), 1, "{b}");
        store.close().await;
    }
}

/// A row corrupted by hand makes `/orgs` fail every time: kept after three
/// tries with the real cause; once the row is fixed, `retry` runs it and
/// removes it. `drop` removes one without running it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_is_kept_and_retried_once_fixed() {
    for db in TestDb::both().await {
        let b = db.backend;
        let Scene {
            engine: e, store, ..
        } = scene(&db, t0(), "qq:staff", true).await;
        let mut conn = store.conn().await.expect("conn");
        let (kind,): (String,) =
            sqlx::query_as("SELECT kind FROM orgs WHERE short_name = '县一中'")
                .fetch_one(&mut *conn)
                .await
                .expect("org");
        sqlx::query("UPDATE orgs SET kind = 'bogus' WHERE short_name = '县一中'")
            .execute(&mut *conn)
            .await
            .expect("corrupt");
        drop(conn);
        let got = bounded(e.handle(&group_msg("e1", "u1", "/orgs")), "/orgs").await;
        let Ok(Outcome::Failed { id }) = got else {
            panic!("{b}: {got:?}");
        };
        // Unaffected updates go on.
        let got = bounded(e.handle(&group_msg("e2", "u2", "/whoami")), "/whoami").await;
        assert!(matches!(got, Ok(Outcome::Handled { .. })), "{b}: {got:?}");
        let rows = kept(&store).await;
        assert_eq!(rows.len(), 1);
        assert!(
            rows[0].error.contains("corrupt row: org kind bogus"),
            "{b}: {}",
            rows[0].error
        );
        // Still broken: it stays, with the new try counted.
        let again = bounded(e.retry_failed(id), "retry").await.expect("retry");
        assert!(
            matches!(again, Retried::FailedAgain(ref why) if why.contains("bogus")),
            "{b}: {again:?}"
        );
        assert_eq!(kept(&store).await[0].tries, 4, "{b}");
        // Fixed: handled as of when it came, removed, its answer queued.
        let mut conn = store.conn().await.expect("conn");
        sqlx::query("UPDATE orgs SET kind = $1 WHERE short_name = '县一中'")
            .bind(&kind)
            .execute(&mut *conn)
            .await
            .expect("fix");
        drop(conn);
        let before = outbox_to(&store, "g-poison").await.len();
        let done = bounded(e.retry_failed(id), "retry").await.expect("retry");
        assert_eq!(done, Retried::Handled { replies: 1 }, "{b}");
        assert!(kept(&store).await.is_empty(), "{b}");
        let out = outbox_to(&store, "g-poison").await;
        assert_eq!(out.len(), before + 1, "{b}");
        assert_eq!(out[before].reply_to.as_deref(), Some("m-e1"));
        assert_eq!(
            bounded(e.retry_failed(id), "retry").await.expect("retry"),
            Retried::NotFound
        );
        // Drop: gone without running.
        let _ = panics_on(&e, "e3");
        let got = bounded(e.handle(&group_msg("e3", "u3", "/help")), "/help").await;
        let Ok(Outcome::Failed { id }) = got else {
            panic!("{b}: {got:?}");
        };
        assert!(bounded(e.drop_failed(id), "drop").await.expect("drop"));
        assert!(!bounded(e.drop_failed(id), "drop").await.expect("drop"));
        assert!(kept(&store).await.is_empty(), "{b}");
        let mut conn = store.conn().await.expect("conn");
        for action in ["update.retried", "update.dropped"] {
            assert_eq!(
                audit::count_action(&mut conn, action).await.expect("audit"),
                1,
                "{b}: {action}"
            );
        }
        drop(conn);
        store.close().await;
    }
}

fn tuanbot(db: &TestDb, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tuanbot"));
    c.env_remove("TELOXIDE_TOKEN")
        .env("TUANBOT_DATABASE_URL", &db.url)
        .env("TUANBOT_LOG", "warn")
        .args(args)
        .current_dir(std::env::temp_dir());
    output_within(&mut c, "tuanbot failed")
}

/// The operator's commands, through the real binary: a failed update the
/// bot's own process could not handle (its fault seam panics) is listed,
/// then run again by `tuanbot failed retry` in another process (no fault
/// there), which removes it; unknown ids fail with a clear line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lists_retries_and_drops() {
    for db in TestDb::both().await {
        let b = db.backend;
        let Scene {
            engine: e, store, ..
        } = scene(&db, t0(), "qq:staff", true).await;
        let _ = panics_on(&e, "x1");
        let got = bounded(e.handle(&group_msg("x1", "u1", "/whoami")), "x1").await;
        let Ok(Outcome::Failed { id }) = got else {
            panic!("{b}: {got:?}");
        };
        let _ = panics_on(&e, "x2");
        let got = bounded(e.handle(&group_msg("x2", "u2", "/orgs")), "x2").await;
        let Ok(Outcome::Failed { id: id2 }) = got else {
            panic!("{b}: {got:?}");
        };
        let out = tuanbot(&db, &["failed", "list"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{b}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for want in [
            format!("#{id} "),
            "g-poison".to_string(),
            "u1".to_string(),
            "/whoami".to_string(),
            "💥 poison in the test".to_string(),
            format!("#{id2} "),
        ] {
            assert!(text.contains(&want), "{b}: {want} missing in\n{text}");
        }
        let out = tuanbot(&db, &["failed", "retry", &id.to_string()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{b}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("已重新处理"), "{b}: {text}");
        let out = tuanbot(&db, &["failed", "drop", &id2.to_string()]);
        assert!(out.status.success(), "{b}");
        let out = tuanbot(&db, &["failed", "list"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("没有处理失败的消息"),
            "{b}"
        );
        let out = tuanbot(&db, &["failed", "retry", "999999"]);
        assert!(!out.status.success(), "{b}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("没有编号为 999999"),
            "{b}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The retry's answer waits in the outbox for the running bot.
        let out = outbox_to(&store, "g-poison").await;
        assert_eq!(
            out.iter()
                .filter(|m| m.reply_to.as_deref() == Some("m-x1"))
                .count(),
            2,
            "{b}: the apology, then the answer"
        );
        store.close().await;
    }
}

/// A chat event that fails every try is kept as failed like a message, but
/// nobody is apologised to (no one sent it); `tuanbot failed retry` then
/// applies it, greeting included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_chat_event_is_kept_without_an_apology() {
    for db in TestDb::both().await {
        let b = db.backend;
        let Scene {
            engine: e, store, ..
        } = scene(&db, t0(), "qq:staff", true).await;
        let tries = panics_on(&e, "notice:group_increase:g-new:10001:1");
        let added = Incoming::event(
            Platform::Qq,
            "notice:group_increase:g-new:10001:1",
            "g-new",
            ChatKind::Group,
            "48",
            tuanbot::chat::ChatEvent::BotAdded { needs_at: false },
            t0(),
        );
        let outcome = bounded(e.handle(&added), "the event")
            .await
            .expect("handled");
        assert!(
            matches!(outcome, Outcome::Failed { .. }),
            "{b}: {outcome:?}"
        );
        assert_eq!(tries.load(Ordering::SeqCst), 3, "{b}");
        assert!(
            outbox_to(&store, "g-new").await.is_empty(),
            "{b}: no apology"
        );
        let rows = kept(&store).await;
        assert_eq!(rows.len(), 1, "{b}");
        e.inject_fault(None);
        let retried = bounded(e.retry_failed(rows[0].id), "the retry")
            .await
            .expect("retried");
        assert_eq!(retried, Retried::Handled { replies: 1 }, "{b}");
        let sent = outbox_to(&store, "g-new").await;
        assert_eq!(sent.len(), 1, "{b}");
        assert!(sent[0].text.contains("/bind"), "{b}: {}", sent[0].text);
        store.close().await;
    }
}
