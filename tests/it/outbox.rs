//! The dispatcher against a recording sender that fails on cue: nothing lost,
//! nothing sent twice, order kept per chat.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeZone;
use tokio::sync::Notify;
use tuanbot::chat::{BoxFuture, Capabilities, ChatSender, Outgoing, SendError, Sent};
use tuanbot::clock::ManualClock;
use tuanbot::domain::{ChatKind, Platform};
use tuanbot::outbox::Dispatcher;
use tuanbot::store::{Store, chats, outbox};

use crate::helpers::{TestDb, bounded, join_all};

/// Records every send; pops scripted failures first.
#[derive(Default)]
pub struct Recorder {
    pub sent: Mutex<Vec<(String, String, Option<String>)>>,
    pub failures: Mutex<VecDeque<(String, SendError)>>,
    next: Mutex<u64>,
}

impl ChatSender for Recorder {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edit: true,
            buttons: true,
            max_text_chars: 4096,
        }
    }
    fn send<'a>(
        &'a self,
        msg: &'a Outgoing,
        edit: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            {
                let mut f = self.failures.lock().unwrap();
                if let Some(pos) = f.iter().position(|(text, _)| *text == msg.text) {
                    let (_, err) = f.remove(pos).unwrap();
                    return Err(err);
                }
            }
            let mut n = self.next.lock().unwrap();
            *n += 1;
            self.sent.lock().unwrap().push((
                msg.chat_id.clone(),
                msg.text.clone(),
                edit.map(String::from),
            ));
            Ok(Sent {
                message_id: Some(edit.map(String::from).unwrap_or_else(|| n.to_string())),
            })
        })
    }
}

async fn queue(store: &Store, msgs: &[(&str, &str)]) -> Vec<i64> {
    let mut tx = store.begin().await.unwrap();
    let mut ids = Vec::new();
    for (chat, text) in msgs {
        ids.push(
            outbox::enqueue(
                &mut tx,
                &Outgoing::new(Platform::Telegram, *chat, *text),
                0,
                None,
                0,
            )
            .await
            .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    ids
}

fn setup(store: &Store) -> (Arc<Recorder>, Arc<ManualClock>, Dispatcher) {
    let rec = Arc::new(Recorder::default());
    let clock = Arc::new(ManualClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap(),
    ));
    let d = Dispatcher::new(
        store.clone(),
        rec.clone(),
        clock.clone(),
        Arc::new(Notify::new()),
    );
    (rec, clock, d)
}

fn texts(rec: &Recorder) -> Vec<String> {
    rec.sent
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t, _)| t.clone())
        .collect()
}

#[tokio::test]
async fn rate_limit_is_honoured_and_nothing_is_lost() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let (rec, clock, d) = setup(&store);
        queue(&store, &[("a", "a1"), ("a", "a2"), ("b", "b1")]).await;
        rec.failures
            .lock()
            .unwrap()
            .push_back(("a1".into(), SendError::RetryAfter(Duration::from_secs(5))));
        let pass = bounded(d.drain_due(), "a dispatcher pass").await.unwrap();
        assert_eq!(texts(&rec), ["b1"], "{}: a2 waits behind a1", db.backend);
        assert_eq!((pass.sent, pass.deferred), (1, 2));
        clock.advance(chrono::Duration::seconds(4));
        bounded(d.drain_due(), "a dispatcher pass").await.unwrap();
        assert_eq!(texts(&rec), ["b1"], "still inside retry_after");
        clock.advance(chrono::Duration::seconds(2));
        bounded(d.drain_due(), "a dispatcher pass").await.unwrap();
        assert_eq!(texts(&rec), ["b1", "a1", "a2"], "order per chat kept");
        bounded(d.drain_due(), "a dispatcher pass").await.unwrap();
        assert_eq!(texts(&rec).len(), 3, "nothing sent twice");
    }
}

#[tokio::test]
async fn transient_errors_back_off_and_retry() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let (rec, clock, d) = setup(&store);
        let ids = queue(&store, &[("a", "x")]).await;
        for _ in 0..2 {
            rec.failures
                .lock()
                .unwrap()
                .push_back(("x".into(), SendError::Transient("502".into())));
        }
        bounded(d.drain_due(), "a dispatcher pass").await.unwrap();
        clock.advance(chrono::Duration::seconds(1));
        bounded(d.drain_due(), "a dispatcher pass").await.unwrap();
        assert!(texts(&rec).is_empty(), "{}", db.backend);
        clock.advance(chrono::Duration::seconds(2));
        bounded(d.drain_due(), "a dispatcher pass").await.unwrap();
        assert_eq!(texts(&rec), ["x"]);
        let mut conn = store.conn().await.unwrap();
        assert_eq!(
            outbox::status(&mut conn, ids[0]).await.unwrap().as_deref(),
            Some("sent")
        );
    }
}

#[tokio::test]
async fn a_kicked_bot_stops_retrying_that_chat() {
    for db in TestDb::both().await {
        let store = db.store().await;
        {
            let mut tx = store.begin().await.unwrap();
            chats::upsert_seen(
                &mut tx,
                Platform::Telegram,
                "gone",
                ChatKind::Group,
                None,
                0,
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        let (rec, _clock, d) = setup(&store);
        let ids = queue(&store, &[("gone", "g1"), ("gone", "g2"), ("ok", "o1")]).await;
        rec.failures
            .lock()
            .unwrap()
            .push_back(("g1".into(), SendError::ChatGone("403".into())));
        let pass = bounded(d.drain_due(), "a dispatcher pass").await.unwrap();
        assert_eq!(texts(&rec), ["o1"], "{}", db.backend);
        assert_eq!(pass.failed, 1);
        let mut conn = store.conn().await.unwrap();
        assert_eq!(
            outbox::status(&mut conn, ids[1]).await.unwrap().as_deref(),
            Some("dropped")
        );
        let chat = chats::find(&mut conn, Platform::Telegram, "gone")
            .await
            .unwrap()
            .unwrap();
        assert!(!chat.active);
        assert_eq!(
            outbox::pending_count(&mut conn, Platform::Telegram)
                .await
                .unwrap(),
            0
        );
    }
}

#[tokio::test]
async fn an_edit_waits_for_its_original() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let (rec, clock, d) = setup(&store);
        let ids = queue(&store, &[("a", "board v1")]).await;
        let mut edit = Outgoing::new(Platform::Telegram, "a", "board v2");
        edit.edit_of = Some(ids[0]);
        let mut tx = store.begin().await.unwrap();
        outbox::enqueue(&mut tx, &edit, 0, None, 0).await.unwrap();
        tx.commit().await.unwrap();
        rec.failures.lock().unwrap().push_back((
            "board v1".into(),
            SendError::RetryAfter(Duration::from_secs(1)),
        ));
        bounded(d.drain_due(), "a dispatcher pass").await.unwrap();
        assert!(texts(&rec).is_empty(), "{}", db.backend);
        clock.advance(chrono::Duration::seconds(2));
        bounded(d.drain_due(), "a dispatcher pass").await.unwrap();
        let sent = rec.sent.lock().unwrap().clone();
        assert_eq!(sent[0], ("a".into(), "board v1".into(), None));
        assert_eq!(
            sent[1],
            ("a".into(), "board v2".into(), Some("1".into())),
            "edit targets the platform id"
        );
    }
}

/// Two dispatchers (replicas) draining one outbox send each message once.
#[tokio::test]
async fn two_dispatchers_send_each_message_once() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let msgs: Vec<(String, String)> = (0..300)
            .map(|i| (format!("c{}", i % 11), format!("m{i}")))
            .collect();
        let refs: Vec<(&str, &str)> = msgs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        queue(&store, &refs).await;
        let rec = Arc::new(Recorder::default());
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let other = db.store().await;
            let d = Dispatcher::new(other, rec.clone(), clock.clone(), Arc::new(Notify::new()));
            tasks.push(tokio::spawn(async move {
                bounded(d.drain_due(), "a dispatcher pass").await.unwrap()
            }));
        }
        join_all(tasks, "two dispatchers").await;
        let mut got = texts(&rec);
        assert_eq!(got.len(), 300, "{}", db.backend);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 300, "no duplicates");
    }
}
