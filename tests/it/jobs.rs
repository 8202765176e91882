//! The persisted scheduler: due jobs run once, with the fake clock, across a
//! restart, and with two runners racing.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use tuanbot::chat::Outgoing;
use tuanbot::clock::ManualClock;
use tuanbot::domain::Platform;
use tuanbot::engine::Engine;
use tuanbot::jobs;
use tuanbot::store::{self, Backend, Store};

use crate::helpers::{TestDb, bounded};

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 5, 1, 0, 0).unwrap()
}

async fn engine_on(db: &TestDb, clock: Arc<ManualClock>) -> Engine {
    Engine::new(db.store().await, db.settings(), clock).unwrap()
}

async fn schedule_message(store: &Store, text: &str, at: chrono::DateTime<Utc>) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let msg = Outgoing::new(Platform::Telegram, "g1", text);
    let id = jobs::schedule(&mut tx, "message", &json!({ "message": msg }), at, t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

/// Texts of all outbox rows, with how often each occurs.
async fn outbox_texts(store: &Store) -> HashMap<String, usize> {
    use sqlx::Row;
    let mut conn = store.conn().await.unwrap();
    let rows = sqlx::query("SELECT payload FROM outbox")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let mut out = HashMap::new();
    for r in rows {
        let p: String = r.try_get("payload").unwrap();
        let m: Outgoing = serde_json::from_str(&p).unwrap();
        *out.entry(m.text).or_insert(0) += 1;
    }
    out
}

#[tokio::test]
async fn due_jobs_run_once_at_their_time() {
    for db in TestDb::both().await {
        let clock = Arc::new(ManualClock::new(t0()));
        let e = engine_on(&db, clock.clone()).await;
        schedule_message(&e.store, "later", t0() + Duration::hours(2)).await;
        schedule_message(&e.store, "soon", t0() + Duration::minutes(5)).await;

        let ran = bounded(jobs::run_due(&e, t0()), "a jobs pass")
            .await
            .unwrap();
        assert_eq!(ran.done, 0, "{}", db.backend);
        let ran = bounded(
            jobs::run_due(&e, t0() + Duration::minutes(5)),
            "a jobs pass",
        )
        .await
        .unwrap();
        assert_eq!(ran.done, 1);
        assert_eq!(outbox_texts(&e.store).await.get("soon"), Some(&1));
        let ran = bounded(jobs::run_due(&e, t0() + Duration::hours(3)), "a jobs pass")
            .await
            .unwrap();
        assert_eq!(ran.done, 1);
        let ran = bounded(jobs::run_due(&e, t0() + Duration::hours(4)), "a jobs pass")
            .await
            .unwrap();
        assert_eq!(ran.done, 0, "a done job never runs again");
        let texts = outbox_texts(&e.store).await;
        assert_eq!(texts.get("later"), Some(&1));
        assert_eq!(texts.len(), 2);
    }
}

#[tokio::test]
async fn jobs_survive_a_restart() {
    for db in TestDb::both().await {
        let clock = Arc::new(ManualClock::new(t0()));
        {
            let e = engine_on(&db, clock.clone()).await;
            schedule_message(&e.store, "after restart", t0() + Duration::hours(1)).await;
            assert_eq!(
                bounded(jobs::run_due(&e, t0()), "a jobs pass")
                    .await
                    .unwrap()
                    .done,
                0
            );
            e.store.close().await;
        }
        // A new process on the same database, later.
        clock.set(t0() + Duration::hours(1));
        let e = engine_on(&db, clock.clone()).await;
        let mut conn = e.store.conn().await.unwrap();
        assert_eq!(jobs::pending(&mut conn).await.unwrap().len(), 1);
        drop(conn);
        assert_eq!(
            bounded(jobs::run_due(&e, e.now()), "a jobs pass")
                .await
                .unwrap()
                .done,
            1
        );
        assert_eq!(
            bounded(jobs::run_due(&e, e.now()), "a jobs pass")
                .await
                .unwrap()
                .done,
            0
        );
        assert_eq!(
            outbox_texts(&e.store).await.get("after restart"),
            Some(&1),
            "{}",
            db.backend
        );
    }
}

#[tokio::test]
async fn two_runners_racing_run_each_job_once() {
    for db in TestDb::both().await {
        let clock = Arc::new(ManualClock::new(t0()));
        let a = Arc::new(engine_on(&db, clock.clone()).await);
        // PostgreSQL: a second replica with its own pool. SQLite: a second
        // runner in the same process (one writer per file).
        let b = if a.store.backend() == Backend::Postgres {
            Arc::new(engine_on(&db, clock.clone()).await)
        } else {
            Arc::new(Engine::new(a.store.clone(), db.settings(), clock.clone()).unwrap())
        };
        for i in 0..60 {
            schedule_message(&a.store, &format!("job {i}"), t0()).await;
        }
        let now = t0() + Duration::seconds(1);
        let (ra, rb) = bounded(
            async {
                tokio::join!(
                    {
                        let a = a.clone();
                        tokio::spawn(async move {
                            bounded(jobs::run_due(&a, now), "a jobs pass")
                                .await
                                .unwrap()
                        })
                    },
                    {
                        let b = b.clone();
                        tokio::spawn(async move {
                            bounded(jobs::run_due(&b, now), "a jobs pass")
                                .await
                                .unwrap()
                        })
                    }
                )
            },
            "two concurrent jobs passes",
        )
        .await;
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.done + rb.done, 60, "{}: {ra:?} {rb:?}", db.backend);
        let texts = outbox_texts(&a.store).await;
        assert_eq!(texts.len(), 60);
        assert!(texts.values().all(|n| *n == 1), "{texts:?}");
    }
}

#[tokio::test]
async fn a_failing_job_is_retried_then_given_up() {
    for db in TestDb::both().await {
        let clock = Arc::new(ManualClock::new(t0()));
        let e = engine_on(&db, clock).await;
        let mut tx = e.store.begin().await.unwrap();
        let bad = store::jobs::schedule(&mut tx, "message", "{\"nope\":1}", 0, 0)
            .await
            .unwrap();
        let unknown = store::jobs::schedule(&mut tx, "no.such.kind", "{}", 0, 0)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let ran = bounded(jobs::run_due(&e, t0()), "a jobs pass")
            .await
            .unwrap();
        assert_eq!((ran.done, ran.failed), (0, 2), "{}", db.backend);
        let mut conn = e.store.conn().await.unwrap();
        let (attempts, done, err) = store::jobs::state(&mut conn, unknown)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (attempts, done),
            (1, true),
            "unknown kinds are given up at once"
        );
        assert!(err.unwrap().contains("no handler"));
        let (attempts, done, _) = store::jobs::state(&mut conn, bad).await.unwrap().unwrap();
        assert_eq!((attempts, done), (1, false), "retried later");
        drop(conn);
        for day in 1..10 {
            bounded(jobs::run_due(&e, t0() + Duration::days(day)), "a jobs pass")
                .await
                .unwrap();
        }
        let mut conn = e.store.conn().await.unwrap();
        let (attempts, done, err) = store::jobs::state(&mut conn, bad).await.unwrap().unwrap();
        assert_eq!((attempts, done), (jobs::MAX_ATTEMPTS, true));
        assert!(err.unwrap().contains("payload"));
        assert!(
            outbox_texts(&e.store).await.is_empty(),
            "a failed job leaves nothing"
        );
    }
}

/// The loop runs due jobs by the engine's clock and stops on shutdown.
#[tokio::test]
async fn the_loop_runs_due_jobs_and_stops() {
    for db in TestDb::both().await {
        let clock = Arc::new(ManualClock::new(t0()));
        let e = Arc::new(engine_on(&db, clock.clone()).await);
        schedule_message(&e.store, "from the loop", t0() + Duration::minutes(1)).await;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(jobs::run(e.env(), rx));
        clock.advance(Duration::minutes(1));
        // Wait (bounded) until the loop has run it; no timing is asserted.
        let mut ran = false;
        for _ in 0..500 {
            if outbox_texts(&e.store).await.contains_key("from the loop") {
                ran = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        bounded(task, "the jobs loop to stop").await.unwrap();
        assert!(ran, "{}", db.backend);
    }
}

/// `/wishes publish … at TIME` goes out when the clock reaches TIME (the
/// sweep beside the job runner), not before.
#[tokio::test]
async fn scheduled_wish_publication_goes_out_on_time() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wishes.csv");
    for db in crate::helpers::TestDb::both().await {
        let out = crate::helpers::script(
            &db,
            &format!(
                ":today 2026-05-20\n:time 09:00\n:admin zhang\n:as zhang 小张\n:chat tgl group\n/bind 全县\n\
/orgs\n:as li 小李\n我是 县一中\n:as zhang 小张\n同意 小李\n:file {fixture}\n/wishes import 2026圆梦\n\
/wishes publish 2026圆梦 quota 20 at 10:00\n:time 09:30\n:as li 小李\n认领 12\n:as zhang 小张\n/whoami\n\
:time 10:01\n:as li 小李\n认领 12\n"
            ),
            true,
        )
        .await;
        let t = crate::helpers::texts(&out);
        let b = db.backend;
        let who = t
            .iter()
            .position(|x| x.starts_with("👤"))
            .expect("whoami reply");
        // The list goes out at once, saying when claiming opens...
        assert!(
            t[..who]
                .iter()
                .any(|x| x.starts_with("🎁 圆梦行动「2026圆梦」")
                    && x.contains("⏰ 05-20 10:00 开始认领")),
            "{b}: the list is not out ahead: {t:?}"
        );
        // ...a claim before then is refused and changes nothing...
        assert!(
            t[..who]
                .iter()
                .any(|x| x == "⏰「2026圆梦」05-20 10:00 开始认领，请到时再发。"),
            "{b}: {t:?}"
        );
        assert!(
            !t[..who].iter().any(|x| x.starts_with("📣")),
            "{b}: opened early: {t:?}"
        );
        // ...and at the time the board opens it, and claims count.
        assert!(
            t[who + 1..]
                .iter()
                .any(|x| x.starts_with("📣「2026圆梦」现在开始认领")),
            "{b}: not opened at 10:01: {t:?}"
        );
        assert!(
            t[who + 1..].iter().any(|x| x.contains("✅ 县一中：12")),
            "{b}: the claim after opening: {t:?}"
        );
        assert_eq!(
            t.iter().filter(|x| x.starts_with("🎁 圆梦行动")).count(),
            1,
            "{b}: the list was posted twice: {t:?}"
        );
    }
}

/// The slow sweep forgets update ids handled more than a week ago (no
/// platform redelivers an update that old), and keeps the recent ones so a
/// redelivery is still recognised.
#[tokio::test]
async fn the_slow_sweep_forgets_old_update_ids() {
    use tuanbot::store::updates;
    for db in TestDb::both().await {
        let b = db.backend;
        let clock = Arc::new(ManualClock::new(t0()));
        let e = engine_on(&db, clock).await;
        let mut tx = e.store.begin().await.unwrap();
        let old = store::ms(t0() - Duration::days(8));
        let recent = store::ms(t0() - Duration::days(6));
        updates::mark(&mut tx, Platform::Telegram, "old", old)
            .await
            .unwrap();
        updates::mark(&mut tx, Platform::Telegram, "recent", recent)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        jobs::sweeps(&e, t0(), false).await.unwrap();
        let mut tx = e.store.begin().await.unwrap();
        assert!(
            !updates::mark(&mut tx, Platform::Telegram, "old", old)
                .await
                .unwrap(),
            "{b}: forgotten by the quick sweep"
        );
        tx.rollback().await.unwrap();
        jobs::sweeps(&e, t0(), true).await.unwrap();
        let mut tx = e.store.begin().await.unwrap();
        assert!(
            updates::mark(&mut tx, Platform::Telegram, "old", old)
                .await
                .unwrap(),
            "{b}: the 8-day-old id is kept"
        );
        assert!(
            !updates::mark(&mut tx, Platform::Telegram, "recent", recent)
                .await
                .unwrap(),
            "{b}: the 6-day-old id is forgotten"
        );
        tx.rollback().await.unwrap();
    }
}
