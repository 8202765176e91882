//! Issue 5's promise for a claim rush, in simulated time: a group gets at
//! most 20 NEW messages from the bot in any minute (board edits are not new
//! messages), while every claimer sees their result within 5 s.
//!
//! The real engine, store, outbox and dispatcher run on a `ManualClock`
//! stepped 100 ms at a time; the sending end is paced by the adapters' own
//! [`Pacer`] with the adapters' default limits ([`PaceLimits::telegram`],
//! [`PaceLimits::onebot`]) and answers `RetryAfter` exactly as they do, so
//! a gathered claim-result row goes back to the queue and keeps absorbing
//! later results. No wall-clock timing is asserted. Both backends.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tuanbot::chat::pacing::{PaceLimits, Pacer};
use tuanbot::chat::{BoxFuture, Capabilities, ChatSender, Incoming, Outgoing, SendError, Sent};
use tuanbot::clock::{Clock, ManualClock};
use tuanbot::config::{OneBotSettings, TelegramSettings};
use tuanbot::domain::{ChatKind, Platform};
use tuanbot::engine::Engine;
use tuanbot::outbox::Dispatcher;
use tuanbot::store::{outbox, people};

use crate::helpers::{TestDb, bounded};

const FIXTURE: &str = "tests/fixtures/wishes.csv";

/// One message the simulated platform accepted.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub at: DateTime<Utc>,
    pub chat: String,
    pub text: String,
    pub edit: bool,
}

/// A sender paced like the real adapters: a new message to the group must
/// pass [`Pacer::check`] and is recorded against the group's window; an
/// edit keeps the chat interval only and is not counted.
pub struct PacedSender {
    platform: Platform,
    caps: Capabilities,
    group: String,
    clock: Arc<ManualClock>,
    base: (Instant, DateTime<Utc>),
    pacer: Mutex<Pacer>,
    pub log: Mutex<Vec<Delivered>>,
}

impl PacedSender {
    /// A sender for `platform` paced by `limits`, whose new messages to
    /// `group` count against the group's window, on `clock`.
    pub fn new(
        platform: Platform,
        caps: Capabilities,
        group: &str,
        clock: Arc<ManualClock>,
        limits: tuanbot::chat::pacing::PaceLimits,
    ) -> PacedSender {
        PacedSender {
            platform,
            caps,
            group: group.to_string(),
            base: (Instant::now(), clock.now()),
            clock,
            pacer: Mutex::new(Pacer::new(limits)),
            log: Mutex::new(Vec::new()),
        }
    }

    /// The simulated clock as a pacer instant.
    fn instant(&self) -> Instant {
        let since = (self.clock.now() - self.base.1)
            .to_std()
            .expect("the clock only goes forward");
        self.base.0 + since
    }
}

impl ChatSender for PacedSender {
    fn platform(&self) -> Platform {
        self.platform
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn send<'a>(
        &'a self,
        msg: &'a Outgoing,
        edit_target: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let now = self.instant();
            let mut pacer = self.pacer.lock().unwrap();
            let edit = edit_target.is_some();
            if edit {
                pacer
                    .check_interval(&msg.chat_id, now)
                    .and_then(|()| pacer.check_overall(1, now))
                    .map_err(SendError::RetryAfter)?;
                pacer.record(&msg.chat_id, now);
            } else {
                pacer
                    .check(&msg.chat_id, 1, now)
                    .map_err(SendError::RetryAfter)?;
                pacer.record_in(&msg.chat_id, now, msg.chat_id == self.group);
            }
            let mut log = self.log.lock().unwrap();
            log.push(Delivered {
                at: self.clock.now(),
                chat: msg.chat_id.clone(),
                text: msg.text.clone(),
                edit,
            });
            Ok(Sent {
                message_id: Some(edit_target.map_or_else(|| log.len().to_string(), String::from)),
            })
        })
    }
}

/// A deterministic pseudo-random sequence (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Numbers in result lines (the progress line `📋 …` is left out).
pub fn numbers(text: &str) -> Vec<i64> {
    text.lines()
        .filter(|l| !l.starts_with('📋'))
        .flat_map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter(|d| !d.is_empty())
                .filter_map(|d| d.parse().ok())
                .collect::<Vec<i64>>()
        })
        .collect()
}

async fn rush(db: &TestDb, platform: Platform) {
    let b = format!("{} {platform}", db.backend);
    let (group, caps, limits) = match platform {
        Platform::Telegram => (
            "-1001",
            Capabilities {
                edit: true,
                buttons: true,
                max_text_chars: 4096,
            },
            PaceLimits::telegram(&TelegramSettings::default()),
        ),
        _ => (
            "5001",
            Capabilities {
                edit: false,
                buttons: false,
                max_text_chars: 3000,
            },
            PaceLimits::onebot(&OneBotSettings::default()),
        ),
    };
    assert_eq!(limits.chat_per_window, 20, "{b}: default group cap");
    let batch = format!("rush-{platform}");
    let t0 = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 5, 20, 1, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let store = db.store().await;
    tuanbot::app::seed_demo_if_empty(&store, "zh-CN")
        .await
        .unwrap();
    tuanbot::service::wishes::import_file(&store, std::path::Path::new(FIXTURE), &batch, "zh-CN")
        .await
        .unwrap();
    // 440 people of the 44 orgs.
    let mut tx = store.begin().await.unwrap();
    let orgs = tuanbot::store::orgs::all(&mut tx).await.unwrap();
    for i in 0..440usize {
        let user = format!("r{i}");
        let (p, _) = people::upsert_seen(&mut tx, platform, &user, &user, 0)
            .await
            .unwrap();
        people::set_org(&mut tx, p.id, Some(orgs[1 + i % 44].id), 0)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let mut settings = db.settings();
    settings.admins = vec![format!("{}:staff", platform.as_str())];
    let engine = Arc::new(Engine::new(store, settings, clock.clone()).unwrap());
    engine.set_capabilities(platform, caps);
    let sender = Arc::new(PacedSender::new(
        platform,
        caps,
        group,
        clock.clone(),
        limits,
    ));
    let dispatcher = Dispatcher::new(
        engine.store.clone(),
        sender.clone(),
        clock.clone(),
        engine.outbox_ready.clone(),
    );
    let step = chrono::Duration::milliseconds(100);
    let mut seq = 0u32;
    let mut say = |user: &str, text: &str, at: DateTime<Utc>| {
        seq += 1;
        Incoming::text(
            platform,
            format!("u{seq}"),
            group,
            ChatKind::Group,
            user,
            text,
            at,
        )
    };
    // Publish, and let the pages and the board go out first: they take
    // their share of the group's minute like any message.
    let publish = say(
        "staff",
        &format!("/wishes publish {batch} quota 5"),
        clock.now(),
    );
    bounded(engine.handle(&publish), "publishing")
        .await
        .unwrap();
    for _ in 0..3000 {
        clock.advance(step);
        bounded(dispatcher.drain_due(), "a dispatcher pass")
            .await
            .unwrap();
        let mut conn = engine.store.conn().await.unwrap();
        if outbox::pending_count(&mut conn, platform).await.unwrap() == 0 {
            break;
        }
    }
    let published = sender.log.lock().unwrap().len();
    // 800 wishes in 8 or more pages (100 a page at most), and the board.
    assert!(published >= 9, "{b}: {published} messages published");
    // The rush: 90 s of claims, about three a second, from random people
    // for random numbers, then 10 s of quiet to let the last results out.
    let start = clock.now();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut claims: Vec<(DateTime<Utc>, i64)> = Vec::new();
    for tick in 0..1000 {
        clock.advance(step);
        if tick < 900 && rng.below(3) == 0 {
            let user = format!("r{}", rng.below(440));
            let no = 1 + rng.below(800) as i64;
            let m = say(&user, &format!("认领 {no}"), clock.now());
            bounded(engine.handle(&m), "a claim").await.unwrap();
            claims.push((clock.now(), no));
        }
        bounded(dispatcher.drain_due(), "a dispatcher pass")
            .await
            .unwrap();
    }
    assert!(claims.len() > 200, "{b}: {} claims", claims.len());
    let log = sender.log.lock().unwrap().clone();
    let new: Vec<&Delivered> = log
        .iter()
        .filter(|d| d.chat == group && !d.edit && d.at >= start)
        .collect();
    // At most 20 new messages in any minute (from the publication on).
    let all_new: Vec<&Delivered> = log.iter().filter(|d| d.chat == group && !d.edit).collect();
    for (i, first) in all_new.iter().enumerate() {
        let in_minute = all_new[i..]
            .iter()
            .filter(|d| d.at - first.at < chrono::Duration::seconds(60))
            .count();
        assert!(
            in_minute <= 20,
            "{b}: {in_minute} new messages in the minute from {}",
            first.at
        );
    }
    // Every claim's number is in a result sent within 5 s.
    for (at, no) in &claims {
        let seen = new.iter().any(|d| {
            d.at >= *at
                && d.at - *at <= chrono::Duration::seconds(5)
                && numbers(&d.text).contains(no)
        });
        assert!(
            seen,
            "{b}: the claim of {no} at {at} was not answered within 5 s"
        );
    }
    // Gathering worked: far fewer messages than claims.
    assert!(new.len() * 3 < claims.len(), "{b}: {} messages", new.len());
    if caps.edit {
        assert!(
            log.iter().any(|d| d.edit && d.at >= start),
            "{b}: the board was never edited"
        );
    }
    engine.store.close().await;
}

#[tokio::test]
async fn rush_keeps_the_group_cap_and_answers_within_5s() {
    for db in TestDb::both().await {
        for platform in [Platform::Telegram, Platform::Qq] {
            rush(&db, platform).await;
        }
    }
}

/// A gathered row held back by `RetryAfter` is found again by
/// `pending_coalesced`, so later results fold into it instead of queueing
/// behind it.
#[tokio::test]
async fn a_held_back_row_keeps_absorbing() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let b = db.backend;
        let now = 1_000_000;
        let msg = Outgoing::new(Platform::Qq, "5001", "✅ 县一中：1");
        let id = {
            let mut tx = store.begin().await.unwrap();
            let id = outbox::enqueue(&mut tx, &msg, now, Some("k"), now)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            id
        };
        // The dispatcher leases it (then it is not to be touched)...
        let mut tx = store.begin().await.unwrap();
        let rows = outbox::lease_due(
            &mut tx,
            store.backend(),
            Platform::Qq,
            now,
            now + 60_000,
            10,
        )
        .await
        .unwrap();
        assert_eq!(rows.len(), 1, "{b}");
        assert!(
            outbox::pending_coalesced(&mut tx, "k")
                .await
                .unwrap()
                .is_none(),
            "{b}: a leased row must not be merged into"
        );
        // ...the platform answers RetryAfter, and the row goes back.
        outbox::retry_at(&mut tx, id, now + 3000, Some("429 retry after 3s"), false)
            .await
            .unwrap();
        let row = outbox::pending_coalesced(&mut tx, "k")
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{b}: the returned row is not found"));
        assert_eq!(row.id, id, "{b}");
        let mut merged = row.message.clone();
        merged.text.push_str("、2");
        assert!(outbox::replace_pending(&mut tx, id, &merged).await.unwrap());
        tx.commit().await.unwrap();
        store.close().await;
    }
}

/// The board's pending post or edit gets new text in one statement, the
/// rest of the message (what it edits, its chat) untouched, whatever the
/// text holds; once leased it is left alone.
#[tokio::test]
async fn set_pending_text_changes_the_text_only() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let b = db.backend;
        let now = 1_000_000;
        let mut msg = Outgoing::new(Platform::Telegram, "-100", "📋 旧");
        msg.edit_of = Some(7);
        msg.mention_users = vec!["u1".into()];
        let mut tx = store.begin().await.unwrap();
        let id = outbox::enqueue(&mut tx, &msg, now, Some("wishes:board:1"), now)
            .await
            .unwrap();
        let text = "📋 新 \"引号\" \\ 反斜杠\n第二行 '); DROP TABLE outbox; --";
        assert!(
            outbox::set_pending_text(&mut tx, "wishes:board:1", text)
                .await
                .unwrap(),
            "{b}"
        );
        let row = outbox::pending_coalesced(&mut tx, "wishes:board:1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.id, id, "{b}");
        let mut want = msg.clone();
        want.text = text.to_string();
        assert_eq!(row.message, want, "{b}");
        assert!(
            !outbox::set_pending_text(&mut tx, "wishes:board:2", "x")
                .await
                .unwrap(),
            "{b}: no row under that key"
        );
        let leased = outbox::lease_due(
            &mut tx,
            store.backend(),
            Platform::Telegram,
            now,
            now + 60_000,
            10,
        )
        .await
        .unwrap();
        assert_eq!(leased.len(), 1, "{b}");
        assert!(
            !outbox::set_pending_text(&mut tx, "wishes:board:1", "late")
                .await
                .unwrap(),
            "{b}: a leased row must not change"
        );
        tx.commit().await.unwrap();
        store.close().await;
    }
}
