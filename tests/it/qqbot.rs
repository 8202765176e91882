//! QQ through the official QQ Bot API end to end, against the fake on
//! loopback (`qqbot_fake`): the gateway (intents, resume, reconnect),
//! the signed webhook, the reply ledger under the platform's passive-reply
//! rules, and the OneBot suite's scenarios. Every wait is bounded.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use tuanbot::app::{self, QqBotRunning};
use tuanbot::chat::Outgoing;
use tuanbot::config::Settings;
use tuanbot::domain::{ChatKind, Platform};
use tuanbot::engine::Engine;
use tuanbot::store::{self, chats, outbox};

use crate::helpers::{PATIENCE, TestDb, until, within};
use crate::qqbot_fake::{ALL_MESSAGES, Fake, GROUP_AND_C2C, Got};

/// The committee's staff member, by their openid in private chats and in
/// groups (the platform gives one person different openids there).
const STAFF: &str = "STAFF0PENID";
const STAFF_IN_GROUP: &str = "STAFFMEMBER0";

/// The real time, moved on by the test (the platform's clock moves with
/// it): gathered messages still come due, and 5 minutes pass at once.
#[derive(Default)]
struct Shifted(AtomicI64);

impl tuanbot::clock::Clock for Shifted {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::milliseconds(self.0.load(Ordering::SeqCst))
    }
}

struct Bot {
    engine: Arc<Engine>,
    clock: Arc<Shifted>,
    qq: QqBotRunning,
    stop: watch::Sender<bool>,
}

impl Bot {
    async fn start(settings: Settings) -> Bot {
        let clock = Arc::new(Shifted::default());
        let engine = app::engine(settings, clock.clone()).await.expect("engine");
        app::seed_demo_if_empty(&engine.store, "zh-CN")
            .await
            .expect("seed");
        let (stop, shutdown) = watch::channel(false);
        let qq = within(
            PATIENCE,
            app::start_qqbot(&engine, shutdown),
            "the QQ Bot adapter to start",
        )
        .await
        .expect("start qqbot");
        Bot {
            engine,
            clock,
            qq,
            stop,
        }
    }

    async fn stop(self) {
        crate::helpers::stop_adapter(
            &self.engine,
            self.stop,
            self.qq.dispatcher,
            self.qq.adapter.tasks,
        )
        .await;
    }

    /// Move both clocks: ours and the fake platform's.
    fn advance(&self, fake: &Fake, by: Duration) {
        self.clock
            .0
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        fake.advance(by);
    }
}

fn settings(db: &TestDb, fake: &Fake) -> Settings {
    let mut s = db.settings();
    fake.configure(&mut s);
    s.admins = vec![format!("qqbot:{STAFF}"), format!("qqbot:{STAFF_IN_GROUP}")];
    s
}

/// A bot on the gateway of a fresh fake, connected (READY seen).
async fn connected(db: &TestDb, tweak: impl FnOnce(&mut Settings)) -> (Bot, Fake) {
    let fake = Fake::start().await;
    let mut s = settings(db, &fake);
    tweak(&mut s);
    let bot = Bot::start(s).await;
    until("the gateway session", || fake.connected()).await;
    (bot, fake)
}

async fn until_sent(fake: &Fake, chat: &str, pred: impl Fn(&str) -> bool) -> Got {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let sends = fake.state.sends();
        if let Some(g) = sends.iter().find(|g| g.chat == chat && pred(&g.content)) {
            return g.clone();
        }
        if tokio::time::Instant::now() > deadline {
            let to_chat: Vec<String> = sends
                .iter()
                .filter(|g| g.chat == chat)
                .map(|g| g.content.chars().take(60).collect())
                .collect();
            panic!(
                "timed out waiting for a message to {chat}; it got {to_chat:#?}; refusals {:?}",
                fake.state.refusals.lock().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Queue messages to a chat as a service would: one transaction, the
/// dispatcher woken.
async fn queue(bot: &Bot, chat: &str, texts: &[&str]) {
    let store = &bot.engine.store;
    let now = store::ms(bot.engine.now());
    let mut tx = store.begin().await.expect("begin");
    for text in texts {
        let msg = Outgoing::new(Platform::QqBot, chat, *text);
        outbox::enqueue(&mut tx, &msg, now, None, now)
            .await
            .expect("enqueue");
    }
    tx.commit().await.expect("commit");
    bot.engine.outbox_ready.notify_waiters();
}

/// Does `chat` have messages waiting for it to speak?
async fn waiting(engine: &Engine, chat: &str) -> bool {
    let mut conn = engine.store.conn().await.expect("conn");
    tuanbot::chat::qqbot::ledger::waiting_since(&mut conn, chat)
        .await
        .expect("waiting")
        .is_some()
}

/// Wait (bounded) until `chat` has messages waiting for it to speak.
async fn until_waiting(engine: &Engine, chat: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !waiting(engine, chat).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{chat} never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `groups` as QQ Bot groups, each bound to one of the county's branches,
/// the owner's switch on (here and at the fake) where `active(i)`.
async fn bind_groups(
    store: &tuanbot::store::Store,
    fake: &Fake,
    groups: &[String],
    active: impl Fn(usize) -> bool,
) {
    let mut tx = store.begin().await.expect("begin");
    let all = tuanbot::store::orgs::all(&mut tx).await.expect("orgs");
    let branches: Vec<i64> = all
        .iter()
        .filter(|o| o.parent_id.is_some())
        .map(|o| o.id)
        .collect();
    for (i, g) in groups.iter().enumerate() {
        let chat = chats::upsert_seen(&mut tx, Platform::QqBot, g, ChatKind::Group, None, 0)
            .await
            .expect("chat");
        chats::bind(&mut tx, chat.id, Some(branches[i % branches.len()]), 0)
            .await
            .expect("bind");
        if active(i) {
            tuanbot::store::qqbot::set_active_allowed(&mut tx, g, true, 0)
                .await
                .expect("switch");
            fake.state.set_active(g, true);
        }
    }
    tx.commit().await.expect("commit");
}

fn sent_to(fake: &Fake, chat: &str) -> Vec<Got> {
    fake.state
        .sends()
        .into_iter()
        .filter(|g| g.chat == chat)
        .collect()
}

/// `/help` @-ing the bot in a group: answered as a passive reply to that
/// very message (msg_id, msg_seq 1); the same event replayed is handled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_in_group_is_a_passive_reply() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        let ev = fake.group_msg("m-101", "G1", "M1", "/help", true);
        fake.push(ev.clone());
        fake.push(ev);
        let got = until_sent(&fake, "G1", |t| {
            t.contains("/log") || t.contains("帮助") || !t.is_empty()
        })
        .await;
        assert_eq!(got.route, "groups", "{b}");
        assert_eq!(got.msg_id.as_deref(), Some("m-101"), "{b}");
        assert_eq!(got.msg_seq, Some(1), "{b}");
        // Only messages that @ the bot reach it in G1 so far: help says so.
        assert!(got.content.contains("在本群先 @我"), "{b}: {}", got.content);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sent_to(&fake, "G1").len(), 1, "{b}: handled once");
        assert!(fake.state.refusals.lock().unwrap().is_empty(), "{b}");
        // A private message is answered privately, as a reply too.
        // /whoami shows the id as `admins` takes it.
        fake.push(fake.c2c_msg("c-1", "U1", "我是谁", &[]));
        let got = until_sent(&fake, "U1", |t| !t.is_empty()).await;
        assert_eq!(got.route, "users", "{b}");
        assert_eq!(got.msg_id.as_deref(), Some("c-1"), "{b}");
        assert!(got.content.contains("qqbot:U1"), "{b}: {}", got.content);
        bot.stop().await;
    }
}

/// The fake itself enforces the passive-reply rules: a 6th reply to one
/// message, a repeated msg_seq, a reply after 5 minutes, an unprompted
/// message without the owner's switch, and the bot's rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_enforces_the_platforms_rules() {
    let fake = Fake::start().await;
    fake.push(fake.group_msg("m-1", "G9", "M1", "hi", false));
    let send = |seq: i64| json!({"content": format!("reply {seq}"), "msg_type": 0, "msg_id": "m-1", "msg_seq": seq});
    for seq in 1..=5 {
        let (status, _) = fake.post("/v2/groups/G9/messages", send(seq)).await;
        assert_eq!(status, 200, "reply {seq}");
    }
    let (status, v) = fake.post("/v2/groups/G9/messages", send(3)).await;
    assert_eq!(
        (status, v["code"].as_i64()),
        (400, Some(40054005)),
        "repeated msg_seq"
    );
    let (status, v) = fake.post("/v2/groups/G9/messages", send(6)).await;
    assert_eq!(
        (status, v["code"].as_i64()),
        (400, Some(304027)),
        "6th reply"
    );
    fake.push(fake.group_msg("m-2", "G9", "M1", "hi", false));
    fake.advance(Duration::from_secs(301));
    let late = json!({"content": "late", "msg_type": 0, "msg_id": "m-2", "msg_seq": 1});
    let (status, v) = fake.post("/v2/groups/G9/messages", late).await;
    assert_eq!(
        (status, v["code"].as_i64()),
        (400, Some(40034005)),
        "after 5 minutes"
    );
    let active = json!({"content": "unprompted", "msg_type": 0});
    let (status, v) = fake.post("/v2/groups/G9/messages", active.clone()).await;
    assert_eq!(
        (status, v["code"].as_i64()),
        (400, Some(40034105)),
        "switch off"
    );
    fake.state.set_active("G9", true);
    let (status, _) = fake.post("/v2/groups/G9/messages", active.clone()).await;
    assert_eq!(status, 200, "switch on");
    let wrong_chat = json!({"content": "x", "msg_type": 0, "msg_id": "m-2", "msg_seq": 2});
    let (status, _) = fake.post("/v2/groups/G8/messages", wrong_chat).await;
    assert_eq!(status, 400, "msg_id of another chat");
    fake.state.per_second.store(2, Ordering::SeqCst);
    let mut limited = false;
    for _ in 0..4 {
        let (status, v) = fake.post("/v2/groups/G9/messages", active.clone()).await;
        limited |= status == 429 && v["code"] == 22009;
    }
    assert!(limited, "the bot's rate");
    let (status, _) = fake
        .post(
            "/v2/groups/G9/files",
            json!({"file_type": 1, "srv_send_msg": false}),
        )
        .await;
    assert_eq!(status, 400, "a file needs a url or data");
}

/// Replies beyond the 5 an incoming message allows take the next message's
/// slots; with none left they wait (persisted, visible), and go out, each
/// once and in order, when the group speaks. An owner who turns on
/// unprompted messages releases them at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_wait_for_the_group_to_speak() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        fake.push(fake.group_msg("m-1", "G2", "M1", "大家好", false));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let texts: Vec<String> = (1..=7).map(|k| format!("第{k}条")).collect();
        queue(
            &bot,
            "G2",
            &texts.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
        until("five replies", || sent_to(&fake, "G2").len() >= 5).await;
        until_waiting(&bot.engine, "G2").await;
        let sends = sent_to(&fake, "G2");
        assert_eq!(sends.len(), 5, "{b}");
        assert!(
            sends.iter().all(|g| g.msg_id.as_deref() == Some("m-1")),
            "{b}"
        );
        let mut seqs: Vec<i64> = sends.iter().filter_map(|g| g.msg_seq).collect();
        seqs.sort();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5], "{b}");
        // Someone speaks: the two go out in reply to that, in order.
        fake.push(fake.group_msg("m-2", "G2", "M2", "在吗", false));
        until("seven", || sent_to(&fake, "G2").len() >= 7).await;
        let sends = sent_to(&fake, "G2");
        assert_eq!(sends[5].content, "第6条", "{b}");
        assert_eq!(sends[6].content, "第7条", "{b}");
        assert_eq!(sends[5].msg_id.as_deref(), Some("m-2"), "{b}");
        assert!(!waiting(&bot.engine, "G2").await, "{b}");
        // Five minutes on, the last message can no longer be answered: a
        // new message waits, and the owner's switch releases it.
        bot.advance(&fake, Duration::from_secs(6 * 60));
        queue(&bot, "G2", &["第8条"]).await;
        until_waiting(&bot.engine, "G2").await;
        assert_eq!(sent_to(&fake, "G2").len(), 7, "{b}");
        fake.push(fake.group_event("GROUP_MSG_RECEIVE", "ev-on-1", "G2", "OWNER"));
        let got = until_sent(&fake, "G2", |t| t == "第8条").await;
        assert_eq!(
            got.event_id.as_deref(),
            Some("ev-on-1"),
            "{b}: in reply to the switch event"
        );
        assert!(
            fake.state
                .refusals
                .lock()
                .unwrap()
                .iter()
                .all(|(_, c)| *c == 40034105),
            "{b}: {:?}",
            fake.state.refusals.lock().unwrap()
        );
        bot.stop().await;
    }
}

/// Added to a group: greeted (in reply to the event) with the /bind hint
/// and the @; removed: the chat goes inactive and its queue is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_greets_and_removed_goes_quiet() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        let ev = fake.group_event("GROUP_ADD_ROBOT", "ev-add-1", "G3", "OWNER");
        fake.push(ev.clone());
        fake.push(ev);
        let got = until_sent(&fake, "G3", |t| t.contains("/bind")).await;
        assert!(got.content.contains("@团务助手"), "{b}: {}", got.content);
        assert_eq!(got.event_id.as_deref(), Some("ev-add-1"), "{b}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sent_to(&fake, "G3").len(), 1, "{b}: greeted once");
        fake.push(fake.group_event("GROUP_DEL_ROBOT", "ev-del-1", "G3", "OWNER"));
        let mut inactive = false;
        for _ in 0..100 {
            let mut conn = bot.engine.store.conn().await.expect("conn");
            let chat = chats::find(&mut conn, Platform::QqBot, "G3")
                .await
                .expect("find");
            inactive = chat.is_some_and(|c| !c.active);
            if inactive {
                break;
            }
            drop(conn);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(inactive, "{b}");
        let mut conn = bot.engine.store.conn().await.expect("conn");
        assert_eq!(
            tuanbot::store::audit::count_action(&mut conn, "chat.joined")
                .await
                .expect("count"),
            1,
            "{b}"
        );
        assert_eq!(
            tuanbot::store::audit::count_action(&mut conn, "chat.left")
                .await
                .expect("count"),
            1,
            "{b}"
        );
        drop(conn);
        bot.stop().await;
    }
}

/// The default intents ask for every group message too; a gateway that
/// refuses them (close 4014) gets the first configured intent only, and
/// events still flow. Drops resume and replay what was missed; Reconnect
/// resumes; Invalid Session identifies anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_intents_resume_reconnect() {
    let db = TestDb::sqlite().await;
    let fake = Fake::start().await;
    fake.state.permitted.store(GROUP_AND_C2C, Ordering::SeqCst);
    let bot = Bot::start(settings(&db, &fake)).await;
    until("the gateway session", || fake.connected()).await;
    let identifies = fake.state.identifies.lock().unwrap().clone();
    assert_eq!(identifies.first(), Some(&(GROUP_AND_C2C | ALL_MESSAGES)));
    assert_eq!(identifies.last(), Some(&GROUP_AND_C2C));
    until("heartbeats", || {
        fake.state.heartbeats.load(Ordering::SeqCst) >= 1
    })
    .await;
    // Dropped: the events meanwhile are replayed on Resume.
    fake.close(None);
    fake.push(fake.group_msg("m-r1", "G4", "M1", "/help", true));
    until_sent(&fake, "G4", |_| true).await;
    assert!(fake.state.resumes.load(Ordering::SeqCst) >= 1);
    // Told to reconnect: resumes again.
    let resumes = fake.state.resumes.load(Ordering::SeqCst);
    fake.op(7);
    until("a resume", || {
        fake.state.resumes.load(Ordering::SeqCst) > resumes
    })
    .await;
    until("the gateway session", || fake.connected()).await;
    // Invalid session: a fresh Identify.
    let n = fake.state.identifies.lock().unwrap().len();
    fake.op(9);
    until("a new identify", || {
        fake.state.identifies.lock().unwrap().len() > n
    })
    .await;
    until("the gateway session", || fake.connected()).await;
    // Another command: the same one again within 30 s would be a repeat
    // the flood rule answers once.
    fake.push(fake.group_msg("m-r2", "G4", "M1", "/whoami", true));
    until("a second reply", || sent_to(&fake, "G4").len() >= 2).await;
    bot.stop().await;
}

/// The webhook: op 13 is signed with the key from the secret; an event
/// with a bad signature is refused and changes nothing; a signed one is
/// handled before the answer, and replied to through the OpenAPI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_checks_signatures_and_serves() {
    for db in TestDb::both().await {
        let b = db.backend;
        let fake = Fake::start().await;
        let mut s = settings(&db, &fake);
        s.qqbot.transport = "webhook".into();
        s.qqbot.webhook_listen = Some("127.0.0.1:0".into());
        let bot = Bot::start(s).await;
        let url = format!(
            "http://{}/qq/webhook",
            bot.qq.adapter.webhook_addr.expect("listening")
        );
        assert!(fake.validate(&url).await, "{b}: op 13");
        let ev = fake.group_msg("m-w1", "G5", "M1", "/help", true);
        let (status, _) = fake.deliver(&url, &ev, false).await;
        assert_eq!(status, 401, "{b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(sent_to(&fake, "G5").is_empty(), "{b}");
        let (status, v) = fake.deliver(&url, &ev, true).await;
        assert_eq!((status, v["op"].as_i64()), (200, Some(12)), "{b}");
        let got = until_sent(&fake, "G5", |_| true).await;
        assert_eq!(got.msg_id.as_deref(), Some("m-w1"), "{b}");
        // Redelivered: nothing more.
        let (status, _) = fake.deliver(&url, &ev, true).await;
        assert_eq!(status, 200, "{b}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sent_to(&fake, "G5").len(), 1, "{b}");
        bot.stop().await;
    }
}

/// A bot with the wish fixture imported, group `group` bound county-wide
/// by staff, `members` (openid, org) joined there (@-ing the bot, as in a
/// group without 「获取群内全部消息」), the owner's switch on, and the batch
/// published with a quota of 5.
async fn campaign(db: &TestDb, group: &str, members: &[(&str, &str)]) -> (Bot, Fake) {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wishes.csv");
    let (bot, fake) = connected(db, |_| {}).await;
    tuanbot::service::wishes::import_file(
        &bot.engine.store,
        std::path::Path::new(fixture),
        "2026圆梦",
        "zh-CN",
    )
    .await
    .expect("import");
    fake.push(fake.group_event(
        "GROUP_ADD_ROBOT",
        &format!("add-{group}"),
        group,
        STAFF_IN_GROUP,
    ));
    until_sent(&fake, group, |t| t.contains("/bind")).await;
    fake.push(fake.group_event(
        "GROUP_MSG_RECEIVE",
        &format!("on-{group}"),
        group,
        STAFF_IN_GROUP,
    ));
    let mut n = 0;
    let mut say = |user: &str, t: &str| {
        n += 1;
        fake.push(fake.group_msg(&format!("{group}-{n}"), group, user, t, true));
    };
    say(STAFF_IN_GROUP, "/bind 全县");
    until_sent(&fake, group, |t| t.contains("全县团干群")).await;
    for (i, (user, org)) in members.iter().enumerate() {
        say(user, &format!("我是 {org}"));
        until_sent(&fake, group, |t| t.contains(&format!("{org}团委"))).await;
        // Joining needs approval: staff approve request #i+1 in the group.
        say(STAFF_IN_GROUP, &format!("同意 {}", i + 1));
        until_sent(&fake, group, |t| t.contains("已同意") && t.contains(user)).await;
    }
    say(STAFF_IN_GROUP, "/wishes publish 2026圆梦 quota 5");
    until_sent(&fake, group, |t| t.contains("认领进度")).await;
    // Only messages that @ the bot reach it here: the list says to @ it.
    let intro = until_sent(&fake, group, |t| t.contains("个微心愿")).await;
    assert!(
        intro.content.contains("「@机器人 认领 编号」"),
        "{}",
        intro.content
    );
    (bot, fake)
}

/// The claim race on the QQ Bot API: two members @-ing the bot with
/// `认领 12` back to back; one wins, the other is told who holds it, in
/// one gathered message that answers one of their messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_claim_the_same_wish_one_wins() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = campaign(&db, "G6", &[("M2", "县一中"), ("M3", "县二中")]).await;
        fake.push(fake.group_msg("c-905", "G6", "M2", "认领 12", true));
        fake.push(fake.group_msg("c-906", "G6", "M3", "认领 12", true));
        let result = until_sent(&fake, "G6", |t| t.contains("12") && t.contains("已被")).await;
        let text = &result.content;
        assert_eq!(text.matches("✅").count(), 1, "{b}: {text}");
        assert!(
            text.contains("✅ 县一中：12") && text.contains("❌ 县二中：12 已被县一中认领"),
            "{b}: {text}"
        );
        // A passive reply the platform took (the fake checks its rules).
        assert!(result.msg_id.is_some(), "{b}: {result:?}");
        assert!(fake.state.refusals.lock().unwrap().is_empty(), "{b}");
        bot.stop().await;
    }
}

/// Sign-ups: `/event` by staff in the group, `报名 N` from members, each
/// answered; the list shows both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_in_a_group() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        fake.push(fake.group_event("GROUP_ADD_ROBOT", "add-G7", "G7", STAFF_IN_GROUP));
        until_sent(&fake, "G7", |t| t.contains("/bind")).await;
        fake.push(fake.group_msg("e-1", "G7", STAFF_IN_GROUP, "/bind 县一中", true));
        until_sent(&fake, "G7", |t| t.contains("县一中")).await;
        // Signing up takes an org: both join 县一中, approved by staff.
        for (i, user) in ["M5", "M6"].iter().enumerate() {
            let n = i + 1;
            fake.push(fake.group_msg(&format!("j-{n}"), "G7", user, "我是 县一中", true));
            until("the join request", || {
                sent_to(&fake, "G7")
                    .iter()
                    .filter(|g| g.content.contains("申请"))
                    .count()
                    >= n
            })
            .await;
            fake.push(fake.group_msg(
                &format!("a-{n}"),
                "G7",
                STAFF_IN_GROUP,
                &format!("同意 {n}"),
                true,
            ));
            until_sent(&fake, "G7", |t| t.contains("已同意") && t.contains(user)).await;
        }
        fake.push(fake.group_msg(
            "e-2",
            "G7",
            STAFF_IN_GROUP,
            "/event 植树 3月12日8:30 城南苗圃 名额20",
            true,
        ));
        let list = until_sent(&fake, "G7", |t| t.contains("植树")).await;
        let id: String = list
            .content
            .split(['#', '＃'])
            .nth(1)
            .map(|s| s.chars().take_while(|c| c.is_ascii_digit()).collect())
            .unwrap_or_default();
        assert!(!id.is_empty(), "{b}: {}", list.content);
        fake.push(fake.group_msg("e-3", "G7", "M5", &format!("报名 {id}"), true));
        fake.push(fake.group_msg("e-4", "G7", "M6", &format!("报名 {id}"), true));
        until("both signed up", || {
            sent_to(&fake, "G7")
                .iter()
                .any(|g| g.content.contains("2/20") || g.content.contains("（2"))
        })
        .await;
        let mut conn = bot.engine.store.conn().await.expect("conn");
        assert_eq!(
            tuanbot::store::audit::count_action(&mut conn, "event.join")
                .await
                .expect("count"),
            2,
            "{b}"
        );
        drop(conn);
        bot.stop().await;
    }
}

/// A wish list sent as a file in the private (C2C) chat, with the command
/// in the same message or right after it: downloaded from its URL and
/// imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wish_list_sent_as_a_file_in_a_private_chat() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wishes.csv");
    let csv = std::fs::read(fixture).expect("fixture");
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        let url = fake.serve_file("wishes.csv", csv.clone());
        fake.push(fake.c2c_msg(
            "p-1",
            STAFF,
            "/wishes import 一批",
            &[("file", "心愿.csv", &url)],
        ));
        until_sent(&fake, STAFF, |t| t.contains("已导入「一批」：800 个微心愿")).await;
        fake.push(fake.c2c_msg("p-2", STAFF, "", &[("file", "心愿.csv", &url)]));
        fake.push(fake.c2c_msg("p-3", STAFF, "/wishes import 二批", &[]));
        until_sent(&fake, STAFF, |t| t.contains("已导入「二批」：800 个微心愿")).await;
        // Someone who is not staff changes nothing.
        fake.push(fake.c2c_msg(
            "p-4",
            "NOBODY",
            "/wishes import 三批",
            &[("file", "心愿.csv", &url)],
        ));
        until_sent(&fake, "NOBODY", |_| true).await;
        let mut conn = bot.engine.store.conn().await.expect("conn");
        for (name, there) in [("一批", true), ("二批", true), ("三批", false)] {
            let found = tuanbot::store::wishes::batch_by_name(&mut conn, name)
                .await
                .expect("batch");
            assert_eq!(found.is_some(), there, "{b}: {name}");
        }
        drop(conn);
        bot.stop().await;
    }
}

/// 50 QQ groups bound to the county's orgs: 40 with the owner's switch on,
/// 10 without. Staff sends a notice from the private chat: the 40 get it at
/// once, the 10 wait for their group to speak; an ack (收到) in a waiting
/// group releases its copy in reply to that ack, and counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notice_to_fifty_groups_with_acks() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        let groups: Vec<String> = (0..50).map(|g| format!("NG{g:02}")).collect();
        bind_groups(&bot.engine.store, &fake, &groups, |i| i < 40).await;
        fake.push(fake.c2c_msg(
            "n-1",
            STAFF,
            "/notice 防汛安全通知\n请于本周五前完成防溺水安全教育",
            &[],
        ));
        until_sent(&fake, STAFF, |t| t.contains("确认")).await;
        fake.push(fake.c2c_msg("n-2", STAFF, "确认", &[]));
        let copies = |f: &Fake| {
            f.state
                .sends()
                .into_iter()
                .filter(|g| g.route == "groups" && g.content.contains("防溺水安全教育"))
                .collect::<Vec<_>>()
        };
        until("40 copies", || copies(&fake).len() >= 40).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(copies(&fake).len(), 40, "{b}");
        assert!(
            copies(&fake).iter().all(|g| g.msg_id.is_none()),
            "{b}: unprompted"
        );
        let mut conn = bot.engine.store.conn().await.expect("conn");
        for g in &groups[40..] {
            let since = tuanbot::chat::qqbot::ledger::waiting_since(&mut conn, g)
                .await
                .expect("waiting");
            assert!(since.is_some(), "{b}: {g} waits for the group to speak");
        }
        drop(conn);
        // Acks from 5 of the switched-on groups and 3 of the waiting ones.
        for (i, g) in groups[..5].iter().chain(&groups[40..43]).enumerate() {
            fake.push(fake.group_msg(&format!("ack-{i}"), g, &format!("CADRE{i}"), "收到", false));
        }
        until("43 copies", || copies(&fake).len() >= 43).await;
        for g in &groups[40..43] {
            let copy = copies(&fake)
                .into_iter()
                .find(|c| &c.chat == g)
                .expect("copy");
            assert!(
                copy.msg_id
                    .as_deref()
                    .is_some_and(|m| m.starts_with("ack-")),
                "{b}: {copy:?}"
            );
        }
        // Each group got the notice at most once.
        let mut per: HashMap<String, usize> = HashMap::new();
        for c in copies(&fake) {
            *per.entry(c.chat).or_default() += 1;
        }
        assert!(per.values().all(|n| *n == 1), "{b}");
        bot.stop().await;
    }
}

/// The real binary is SIGKILLed in the middle of a 120-group notice over
/// the QQ Bot API and started again: every group gets the notice once.
/// The fake takes 40 copies and then hangs; the kill comes while a request
/// is unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_broadcast_then_restart_sends_each_group_once() {
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    for db in TestDb::both().await {
        let b = db.backend;
        let fake = Fake::start().await;
        let groups: Vec<String> = (0..120).map(|g| format!("KG{g:03}")).collect();
        {
            let store = db.store().await;
            app::seed_demo_if_empty(&store, "zh-CN")
                .await
                .expect("seed");
            bind_groups(&store, &fake, &groups, |_| true).await;
            store.close().await;
        }
        let mut s = Settings::default();
        fake.configure(&mut s);
        let spawn = || {
            Kill(
                std::process::Command::new(env!("CARGO_BIN_EXE_tuanbot"))
                    .arg("run")
                    .env_remove("TELOXIDE_TOKEN")
                    .env_remove("TUANBOT_TELEGRAM__TOKEN")
                    .env("TUANBOT_DATABASE_URL", &db.url)
                    .env("TUANBOT_ADMINS", format!("qqbot:{STAFF}"))
                    .env("TUANBOT_OUTBOX_LEASE_MS", "1000")
                    .env(
                        "TUANBOT_QQBOT__APP_ID",
                        s.qqbot.app_id.as_deref().unwrap_or_default(),
                    )
                    .env(
                        "TUANBOT_QQBOT__SECRET",
                        s.qqbot.secret.as_deref().unwrap_or_default(),
                    )
                    .env(
                        "TUANBOT_QQBOT__API_URL",
                        s.qqbot.api_url.as_deref().unwrap_or_default(),
                    )
                    .env(
                        "TUANBOT_QQBOT__AUTH_URL",
                        s.qqbot.auth_url.as_deref().unwrap_or_default(),
                    )
                    .env("TUANBOT_QQBOT__GROUP_PER_MINUTE", "0")
                    .env("TUANBOT_QQBOT__PER_SECOND", "1000")
                    .env("TUANBOT_QQBOT__RECONNECT_MIN_MS", "50")
                    .env("TUANBOT_QQBOT__REQUEST_TIMEOUT_MS", "600000")
                    .current_dir(std::env::temp_dir())
                    .stdin(std::process::Stdio::null())
                    .spawn()
                    .expect("spawn tuanbot"),
            )
        };
        let copies = |f: &Fake| {
            f.state
                .sends()
                .into_iter()
                .filter(|g| g.route == "groups" && g.content.contains("防溺水安全教育"))
                .count()
        };
        let mut child = spawn();
        until("the first session", || fake.connected()).await;
        fake.push(fake.c2c_msg(
            "k-1",
            STAFF,
            "/notice 防汛安全通知\n请于本周五前完成防溺水安全教育",
            &[],
        ));
        until_sent(&fake, STAFF, |t| t.contains("120")).await;
        let before = fake.state.sends().len();
        *fake.state.hold_after.lock().unwrap() = Some(before + 40);
        fake.push(fake.c2c_msg("k-2", STAFF, "确认", &[]));
        until("a copy left unanswered", || {
            fake.state.held.load(Ordering::SeqCst) > 0
        })
        .await;
        child.0.kill().expect("kill");
        let _ = child.0.wait();
        *fake.state.hold_after.lock().unwrap() = None;
        assert_eq!(copies(&fake), 40, "{b}: 40 answered before the kill");
        let connections = fake.state.connections.load(Ordering::SeqCst);
        child = spawn();
        until("the second session", || {
            fake.state.connections.load(Ordering::SeqCst) > connections
        })
        .await;
        until("every group's copy", || copies(&fake) >= 120).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut per: HashMap<String, usize> = HashMap::new();
        for g in fake
            .state
            .sends()
            .into_iter()
            .filter(|g| g.route == "groups" && g.content.contains("防溺水安全教育"))
        {
            *per.entry(g.chat).or_default() += 1;
        }
        assert_eq!(per.len(), 120, "{b}");
        assert!(per.values().all(|n| *n == 1), "{b}: a group got it twice");
        drop(child);
    }
}

/// In a group that delivers only @-messages and in one that delivers all:
/// chatter gets no reply, look-alikes of commands neither; a claim, an ack
/// or a `/log` works with the @ and, where every message arrives, without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_only_and_all_message_groups() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        // All messages: chatter and look-alikes are read and ignored.
        for (i, t) in ["大家好", "认领的同学注意一下", "收到了吗？", "明天记录一下"]
            .iter()
            .enumerate()
        {
            fake.push(fake.group_msg(&format!("chat-{i}"), "G8", "M1", t, false));
        }
        fake.push(fake.group_msg("all-1", "G8", STAFF_IN_GROUP, "/bind 县一中", false));
        let got = until_sent(&fake, "G8", |t| t.contains("县一中")).await;
        assert_eq!(got.msg_id.as_deref(), Some("all-1"), "{b}");
        fake.push(fake.group_msg("all-2", "G8", "M1", "我是 县一中", false));
        until_sent(&fake, "G8", |t| t.contains("县一中团委")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sent_to(&fake, "G8").len(), 2, "{b}: chatter answered");
        let mut conn = bot.engine.store.conn().await.expect("conn");
        let state = tuanbot::store::qqbot::chat_state(&mut conn, "G8")
            .await
            .expect("state");
        assert!(state.all_messages, "{b}");
        drop(conn);
        // Every message arrives here: help needs no @ hint.
        fake.push(fake.group_msg("all-h", "G8", "M1", "/help", false));
        let help = until_sent(&fake, "G8", |t| t.contains("📖")).await;
        assert!(
            !help.content.contains("在本群先 @我"),
            "{b}: {}",
            help.content
        );
        // @ only: the same commands arrive with the @ (not in the content).
        fake.push(fake.group_msg("at-1", "G9", STAFF_IN_GROUP, "/bind 县二中", true));
        until_sent(&fake, "G9", |t| t.contains("县二中")).await;
        fake.push(fake.group_msg("at-2", "G9", "M2", "我是 县二中", true));
        until_sent(&fake, "G9", |t| t.contains("县二中团委")).await;
        fake.push(fake.group_msg("at-2b", "G9", STAFF_IN_GROUP, "同意 2", true));
        until_sent(&fake, "G9", |t| t.contains("已同意") && t.contains("M2")).await;
        fake.push(fake.group_msg(
            "at-3",
            "G9",
            "M2",
            "/log 3月5日 学雷锋志愿服务 45人 90小时",
            true,
        ));
        let card = until_sent(&fake, "G9", |t| t.contains("已记录")).await;
        assert_eq!(card.msg_id.as_deref(), Some("at-3"), "{b}");
        let mut conn = bot.engine.store.conn().await.expect("conn");
        let state = tuanbot::store::qqbot::chat_state(&mut conn, "G9")
            .await
            .expect("state");
        assert!(!state.all_messages, "{b}");
        // What services see of each chat.
        for (platform, chat, all) in [
            (Platform::QqBot, "G8", true),
            (Platform::QqBot, "G9", false),
            (Platform::Telegram, "G9", true),
        ] {
            let caps = bot
                .engine
                .chat_capabilities(&mut conn, platform, chat, ChatKind::Group)
                .await
                .expect("capabilities");
            assert_eq!(caps.hears_all, all, "{b}: {platform:?} {chat}");
        }
        drop(conn);
        bot.stop().await;
    }
}

/// Photos and files go through the files endpoint and out as media
/// messages (`msg_type` 7), each taking a reply slot; an expired access
/// token is refused by the platform and renewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_messages_and_token_renewal() {
    use base64::Engine as _;
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        fake.push(fake.c2c_msg("f-1", STAFF, "你好", &[]));
        until_sent(&fake, STAFF, |_| true).await;
        let file = std::env::temp_dir().join(format!("tuanbot-qqbot-{}.xlsx", std::process::id()));
        std::fs::write(&file, b"PK fake xlsx").expect("write");
        {
            let store = &bot.engine.store;
            let now = store::ms(bot.engine.now());
            let mut tx = store.begin().await.expect("begin");
            let mut msg = Outgoing::new(Platform::QqBot, STAFF, "名单见附件");
            msg.attachments.push(tuanbot::chat::OutFile::photo_bytes(
                b"png".to_vec(),
                "chart.png",
            ));
            msg.attachments.push(tuanbot::chat::OutFile {
                kind: tuanbot::chat::AttachmentKind::Document,
                source: tuanbot::chat::FileSource::Path(file.clone()),
                file_name: Some("名单.xlsx".into()),
            });
            outbox::enqueue(&mut tx, &msg, now, None, now)
                .await
                .expect("enqueue");
            tx.commit().await.expect("commit");
            bot.engine.outbox_ready.notify_waiters();
        }
        until("text and two media", || sent_to(&fake, STAFF).len() >= 4).await;
        let _ = std::fs::remove_file(&file);
        let sends = sent_to(&fake, STAFF);
        assert_eq!(sends[1].content, "名单见附件", "{b}");
        assert_eq!(sends[2].msg_type, 7, "{b}");
        assert_eq!(sends[3].msg_type, 7, "{b}");
        assert!(
            sends[2].file_info.is_some() && sends[3].file_info.is_some(),
            "{b}"
        );
        let seqs: Vec<Option<i64>> = sends.iter().map(|g| g.msg_seq).collect();
        assert_eq!(seqs, vec![Some(1), Some(2), Some(3), Some(4)], "{b}");
        let uploads = fake.state.uploads.lock().unwrap().clone();
        assert_eq!(uploads.len(), 2, "{b}");
        assert_eq!(uploads[0]["file_type"], 1, "{b}");
        assert_eq!(uploads[1]["file_type"], 4, "{b}");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(uploads[1]["file_data"].as_str().unwrap_or_default())
                .ok(),
            Some(b"PK fake xlsx".to_vec()),
            "{b}"
        );
        // Three hours on: the token the bot holds has expired.
        let tokens = fake.state.token_requests.load(Ordering::SeqCst);
        bot.advance(&fake, Duration::from_secs(3 * 3600));
        fake.push(fake.c2c_msg("f-2", STAFF, "我是谁", &[]));
        until_sent(&fake, STAFF, |t| t.contains("qqbot:")).await;
        assert!(
            fake.state.token_requests.load(Ordering::SeqCst) > tokens,
            "{b}"
        );
        bot.stop().await;
    }
}

/// Messages waiting for their group to speak are rows in the outbox: a
/// restart keeps them, and the group's next message (to the new process)
/// sends each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_messages_survive_a_restart() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (bot, fake) = connected(&db, |_| {}).await;
        {
            let mut tx = bot.engine.store.begin().await.expect("begin");
            tuanbot::store::qqbot::set_active_allowed(&mut tx, "GR", false, 0)
                .await
                .expect("switch");
            tx.commit().await.expect("commit");
        }
        queue(&bot, "GR", &["待发1", "待发2", "待发3"]).await;
        until_waiting(&bot.engine, "GR").await;
        bot.stop().await;
        let bot = Bot::start(settings(&db, &fake)).await;
        until("the new session", || fake.connected()).await;
        assert!(waiting(&bot.engine, "GR").await, "{b}: still waiting");
        fake.push(fake.group_msg("r-1", "GR", "M1", "早上好", false));
        until("three", || sent_to(&fake, "GR").len() >= 3).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let texts: Vec<String> = sent_to(&fake, "GR")
            .into_iter()
            .map(|g| g.content)
            .collect();
        assert_eq!(texts, vec!["待发1", "待发2", "待发3"], "{b}");
        assert!(
            sent_to(&fake, "GR")
                .iter()
                .all(|g| g.msg_id.as_deref() == Some("r-1")),
            "{b}"
        );
        assert!(!waiting(&bot.engine, "GR").await, "{b}");
        bot.stop().await;
    }
}
