//! Notices: preview and confirm, permissions, acknowledgements per person
//! and per org, status, reminders (by hand and by job), scheduled notices
//! across a restart, and the exactly-once broadcast to 200 groups.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use sqlx::Row;
use tokio::sync::Notify;
use tuanbot::chat::{BoxFuture, Capabilities, ChatSender, Incoming, Outgoing, SendError, Sent};
use tuanbot::domain::{ChatKind, Platform, Role};
use tuanbot::outbox::Dispatcher;
use tuanbot::store::{Store, audit, chats, orgs};

use crate::helpers::{Scene, TestDb, bounded, scene, script, texts};

/// u1 staff (小张); 小王 (u2) cadre and 小李 (u3), 小周 (u5) members of 县一中;
/// 小赵 (u4) cadre of 县二中. g1 is 县一中's group, g2 县二中's, tgl the
/// county-wide group.
const SCENE: &str = "\
:today 2026-03-02
:admin u1
:as u1 小张
:chat tgl group
绑定 全县
:as u2 小王
我是 县一中
:as u3 小李
我是 县一中
:as u5 小周
我是 县一中
:as u4 小赵
我是 县二中
:as u1 小张
/role @u2 cadre
/role @u4 cadre
同意 小李
同意 小周
:chat g1 group
/bind 县一中
:chat g2 group
/bind 县二中
";

/// Lines after the scene's replies (the last is 县二中's binding).
fn after_scene(out: &str) -> Vec<String> {
    crate::helpers::after(&texts(out), "✅ 本群已绑定到 县二中团委")
}

async fn snapshot_both(name: &str, text: &str) {
    let mut outputs = Vec::new();
    for db in TestDb::both().await {
        outputs.push((db.backend, script(&db, text, false).await));
    }
    let (_, first) = &outputs[0];
    for (backend, out) in &outputs[1..] {
        assert_eq!(first, out, "{backend} differs from sqlite");
    }
    insta::assert_snapshot!(name, first);
}

#[tokio::test]
async fn notice_flow_snapshot() {
    snapshot_both(
        "notice_flow",
        &format!(
            "{SCENE}\
:chat u1 private
/notice 防汛安全通知\\n各团组织：请于本周五前完成防溺水安全教育。截止 3月6日18:00
确认
:chat g1 group
:as u2 小王
收到
:as u3 小李
1
:as u5 小周
已阅
:as u3 小李
收到
:time 09:05
:chat tgl group
:as u4 小赵
收到
:as u1 小张
:chat u1 private
通知情况 1
/notice 学校 期中检查\\n请自查
取消
确认
:today 2026-03-06
:time 15:00
:as u1 小张
催办 1
:time 16:00
:time 18:00
"
        ),
    )
    .await;
}

#[tokio::test]
async fn who_may_send_notices() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:chat u3 private
:as u3 小李
/notice 明天开会
:as u2 小王
:chat u2 private
/notice 明天开会
/notice 学校 明天开会
/notice 县二中 明天开会
/notice 本组织 明天开会\\n带本子
确认
/notice 县一中 周五团课
确认
/notice status 1
/notice status 2
:as u4 小赵
:chat u4 private
/notice status 1
/remind 1
/notices
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        let deny = "只有团县委工作人员可以发全县通知";
        assert!(t[0].starts_with(deny), "{}: member: {}", db.backend, t[0]);
        assert!(t[1].starts_with(deny), "cadre, all: {}", t[1]);
        assert!(t[2].starts_with(deny), "cadre, kind: {}", t[2]);
        assert!(t[3].starts_with(deny), "cadre, other org: {}", t[3]);
        assert!(t[4].starts_with("将发送到 1 个群（县一中）"), "{}", t[4]);
        assert!(t[5].starts_with("📢 通知 #1｜明天开会"), "{}", t[5]);
        assert!(t[6].starts_with("✅ 通知 #1 已发送到 1 个群"), "{}", t[6]);
        assert!(
            t[7].starts_with("将发送到 1 个群（县一中）"),
            "own org by name: {}",
            t[7]
        );
        assert!(
            t[10].starts_with("📊 通知 #1「明天开会」：已确认 0/1 个组织"),
            "{}",
            t[10]
        );
        assert!(t[11].starts_with("📊 通知 #2"), "{}", t[11]);
        assert_eq!(
            t[12],
            "通知 #1 不是你发的，只有发送人和团县委工作人员可以查看或操作。"
        );
        assert_eq!(t[13], t[12]);
        assert_eq!(t[14], "没有待发送的定时通知。");
        assert_eq!(t.len(), 15, "{t:#?}");
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        assert_eq!(
            audit::count_action(&mut conn, "notice.send").await.unwrap(),
            2
        );
    }
}

/// Each person counts once; an org counts when any of its people has acked;
/// in the group, one gathered line instead of a reply per ack.
#[tokio::test]
async fn acks_per_person_and_per_org() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:chat u1 private
/notice 县一中、县二中 团课通知\\n周五下午团课
确认
:chat g1 group
:as u2 小王
收到
收到
:as u3 小李
已阅
:as u5 小周
1
/ack 1
:time 09:01
:as u1 小张
:chat u1 private
/notice status 1
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        assert!(
            t[0].starts_with("将发送到 2 个群（县一中、县二中）"),
            "{}: {}",
            db.backend,
            t[0]
        );
        let gathered: Vec<&String> = t.iter().filter(|l| l.starts_with("📋 通知 #1")).collect();
        assert_eq!(
            gathered,
            vec!["📋 通知 #1「团课通知」已收到（3 人）：小王、小李、小周"],
            "{t:#?}"
        );
        let status = t.last().unwrap();
        assert!(status.contains("已确认 1/2 个组织（3 人）"), "{status}");
        assert!(status.contains("已确认：县一中(3)"), "{status}");
        assert!(status.contains("未确认：县二中"), "{status}");
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        assert_eq!(
            audit::count_action(&mut conn, "notice.ack").await.unwrap(),
            3
        );
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notice_acks")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 3);
    }
}

/// `1` and 收到 count only where a notice is open; elsewhere they are chatter.
#[tokio::test]
async fn bare_one_does_not_swallow_other_meanings() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:chat g1 group
:as u3 小李
1
收到
:chat u3 private
1
:as u1 小张
:chat u1 private
/notice 县二中 只发二中\\n正文 截止 3月2日18:00
确认
:chat g1 group
:as u3 小李
1
:chat g2 group
:as u4 小赵
:today 2026-03-03
1
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        assert_eq!(
            t[0], "我没看懂这条消息。发送 /help 查看能做什么。",
            "{}: {t:#?}",
            db.backend
        );
        assert!(t[1].starts_with("将发送到 1 个群（县二中）"));
        assert!(t[2].starts_with("📢 通知 #1"));
        assert!(t[3].starts_with("✅ 通知 #1"));
        // The 16:00 reminder and the 18:00 summary; no ack line anywhere.
        assert!(t[4].starts_with("⏰ 提醒：通知 #1"), "{t:#?}");
        assert!(t[5].starts_with("⏱ 通知 #1 已到截止时间"), "{t:#?}");
        assert_eq!(t.len(), 6, "{t:#?}");
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        assert_eq!(
            audit::count_action(&mut conn, "notice.ack").await.unwrap(),
            0
        );
    }
}

/// The automatic reminder mentions the silent org's cadres; the summary
/// goes to the sender at the deadline. Both are jobs.
#[tokio::test]
async fn automatic_reminder_and_summary() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:chat u1 private
/notice 县一中、县二中 材料报送\\n请报送材料 截止 3月3日18:00
确认
:chat g1 group
:as u3 小李
收到
:today 2026-03-03
:time 16:00
:time 18:00
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        let reminders: Vec<&String> = t.iter().filter(|l| l.starts_with("⏰ 提醒")).collect();
        assert_eq!(reminders.len(), 1, "{}: {t:#?}", db.backend);
        assert!(reminders[0].contains("本组织还没有确认"));
        assert!(
            t.last().unwrap().starts_with("⏱ 通知 #1 已到截止时间"),
            "{t:#?}"
        );
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let rows = sqlx::query("SELECT chat_id, payload FROM outbox")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let reminder = rows
            .iter()
            .map(|r| {
                let p: String = r.try_get("payload").unwrap();
                serde_json::from_str::<Outgoing>(&p).unwrap()
            })
            .find(|m| m.text.starts_with("⏰ 提醒"))
            .unwrap();
        assert_eq!(reminder.chat_id, "g2");
        assert_eq!(reminder.mention_users, vec!["u4".to_string()]);
    }
}

/// A scheduled notice is listed, can be cancelled, and goes out at its time
/// even when the process was restarted in between.
#[tokio::test]
async fn scheduled_notice_across_a_restart() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:chat u1 private
:as u1 小张
/notice at 3月4日 09:00 县一中 开学检查\\n请自查
确认
定时通知 3月4日 10:00 县二中 第二条
确认
/notices
/notice cancel 2
/notice cancel 2
/notice at 3月1日 09:00 过去的
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        assert!(
            t[0].starts_with("将于 3月4日 09:00 发送到 1 个群（县一中）"),
            "{}: {}",
            db.backend,
            t[0]
        );
        assert_eq!(
            t[1],
            "⏰ 通知 #1 将于 3月4日 09:00 发送到 1 个群。/notice cancel 1 可取消。"
        );
        assert!(
            t[4].contains("#1 3月4日 09:00 · 开学检查 · 县一中"),
            "{}",
            t[4]
        );
        assert!(
            t[4].contains("#2 3月4日 10:00 · 第二条 · 县二中"),
            "{}",
            t[4]
        );
        assert_eq!(t[5], "✅ 已取消定时通知 #2。");
        assert_eq!(t[6], "通知 #2 不是待发送的定时通知，不能取消。");
        assert_eq!(t[7], "发送时间「3月1日 09:00」已经过了，请改一下。");
        assert_eq!(t.len(), 8);

        // A new process (engine, console) on the same database, two days later.
        let out = script(&db, ":today 2026-03-04\n:time 11:00\n", true).await;
        let t = texts(&out);
        assert_eq!(t.len(), 2, "{t:#?}");
        assert!(t[0].starts_with("📢 通知 #1｜开学检查"));
        assert_eq!(
            t[1],
            "✅ 通知 #1 已发送到 1 个群。/notice status 1 查看确认情况。"
        );
        let out = script(&db, ":today 2026-03-05\n", true).await;
        assert_eq!(texts(&out).len(), 0, "sent once only");
    }
}

#[tokio::test]
async fn bad_notice_input_changes_nothing() {
    for db in TestDb::both().await {
        let long = "通".repeat(5000);
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:chat u1 private
/notice
/notice status abc
/notice status 99
/remind 99
/notice cancel 99
/notice 标题 截止 2月30日18:00
/notice {long}
确认
:chat g1 group
确认
取消
/notice '; DROP TABLE notices; --\\n😀
取消
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        assert!(
            t[0].starts_with("用法：/notice 标题"),
            "{}: {}",
            db.backend,
            t[0]
        );
        assert_eq!(
            t[1],
            "请写通知编号，如「/notice status 1」「/notice cancel 1」。"
        );
        assert_eq!(t[2], "没有 #99 号通知。");
        assert_eq!(t[3], t[2]);
        assert_eq!(t[4], t[2]);
        assert_eq!(
            t[5],
            "看不懂时间「2月30日18:00」，请写成 3月5日18:00 这样。"
        );
        assert!(t[6].starts_with("消息太长"), "{}", t[6]);
        assert_eq!(t[7], "没有等你确认的事。");
        // 确认/取消 in a group with nothing pending: silence.
        assert!(t[8].starts_with("将发送到 3 个群（全部组织）"), "{}", t[8]);
        assert!(t[8].contains("'; DROP TABLE notices; --"));
        assert_eq!(t[9], "已取消，没有发送。");
        assert_eq!(t.len(), 10, "{t:#?}");
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notices")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}

/// Sends `ok` messages, then "crashes": the next send never returns (the
/// platform never accepted it) and `hung` is notified.
struct CrashAfter {
    ok: usize,
    sent: Mutex<Vec<String>>,
    calls: AtomicUsize,
    hung: Notify,
}

impl ChatSender for CrashAfter {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edit: false,
            buttons: false,
            max_text_chars: 4096,
        }
    }
    fn send<'a>(
        &'a self,
        msg: &'a Outgoing,
        _edit: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n >= self.ok {
                self.hung.notify_one();
                std::future::pending::<()>().await;
            }
            self.sent.lock().unwrap().push(msg.chat_id.clone());
            Ok(Sent {
                message_id: Some(format!("m{n}")),
            })
        })
    }
}

async fn two_hundred_groups(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    let all = orgs::all(&mut tx).await.unwrap();
    for i in 0..200 {
        let chat = chats::upsert_seen(
            &mut tx,
            Platform::Telegram,
            &format!("-100{i:04}"),
            ChatKind::Group,
            None,
            0,
        )
        .await
        .unwrap();
        let org = &all[1 + i % (all.len() - 1)];
        chats::bind(&mut tx, chat.id, Some(org.id), 0)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// A 200-group broadcast whose dispatcher dies after 73 sends: leases run
/// out, a second dispatcher finishes, and every group has the notice once.
#[tokio::test]
async fn broadcast_to_200_groups_exactly_once_across_a_crash() {
    for db in TestDb::both().await {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 5, 1, 0, 0).unwrap();
        let Scene {
            engine,
            store,
            clock,
        } = scene(&db, t0, "telegram:staff", true).await;
        two_hundred_groups(&store).await;
        for (i, text) in ["/notice 全县团干培训\n周六上午九点", "确认"]
            .iter()
            .enumerate()
        {
            let m = Incoming::text(
                Platform::Telegram,
                format!("u{i}"),
                "staff",
                ChatKind::Private,
                "staff",
                *text,
                t0,
            );
            bounded(engine.handle(&m), "the engine to handle an update")
                .await
                .unwrap();
        }

        let crashing = Arc::new(CrashAfter {
            ok: 73,
            sent: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
            hung: Notify::new(),
        });
        let first = Dispatcher::new(
            store.clone(),
            crashing.clone(),
            clock.clone(),
            Arc::new(Notify::new()),
        );
        bounded(
            async {
                tokio::select! {
                    r = first.drain_due() => panic!("the crashing dispatcher finished: {r:?}"),
                    _ = crashing.hung.notified() => {}
                }
            },
            "the crashing dispatcher to hang",
        )
        .await;
        drop(first); // the process is gone mid-batch

        // Later (leases expired), a fresh dispatcher on a fresh pool.
        clock.advance(Duration::minutes(2));
        let store2 = db.store().await;
        let healthy = Arc::new(CrashAfter {
            ok: usize::MAX,
            sent: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
            hung: Notify::new(),
        });
        let second = Dispatcher::new(
            store2,
            healthy.clone(),
            clock.clone(),
            Arc::new(Notify::new()),
        );
        bounded(second.drain_due(), "a dispatcher pass")
            .await
            .unwrap();

        let mut per_chat: HashMap<String, usize> = HashMap::new();
        for c in crashing
            .sent
            .lock()
            .unwrap()
            .iter()
            .chain(healthy.sent.lock().unwrap().iter())
        {
            *per_chat.entry(c.clone()).or_insert(0) += 1;
        }
        assert_eq!(crashing.sent.lock().unwrap().len(), 73, "{}", db.backend);
        for i in 0..200 {
            assert_eq!(per_chat.get(&format!("-100{i:04}")), Some(&1), "group {i}");
        }
        assert_eq!(per_chat.get("staff"), Some(&2), "preview + sent reply");
        assert_eq!(per_chat.len(), 201);
    }
}

/// A gathered line waiting for its window does not hold later replies to
/// the same chat back; a message waiting to be retried still does.
#[tokio::test]
async fn a_waiting_gathered_line_does_not_block_replies() {
    use tuanbot::store::outbox;
    for db in TestDb::both().await {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        let m = |t: &str| Outgoing::new(Platform::Telegram, "g", t);
        outbox::enqueue(&mut tx, &m("gathered"), 30_000, Some("k"), 0)
            .await
            .unwrap();
        outbox::enqueue(&mut tx, &m("reply"), 0, None, 0)
            .await
            .unwrap();
        // A message that failed and waits for its retry holds later ones back.
        let held = outbox::enqueue(
            &mut tx,
            &Outgoing::new(Platform::Telegram, "h", "held"),
            0,
            None,
            0,
        )
        .await
        .unwrap();
        outbox::retry_at(&mut tx, held, 30_000, Some("429 retry after 30s"), false)
            .await
            .unwrap();
        outbox::enqueue(
            &mut tx,
            &Outgoing::new(Platform::Telegram, "h", "after held"),
            0,
            None,
            0,
        )
        .await
        .unwrap();
        let due = outbox::lease_due(
            &mut tx,
            store.backend(),
            Platform::Telegram,
            1000,
            61_000,
            10,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let texts: Vec<&str> = due.iter().map(|r| r.message.text.as_str()).collect();
        assert_eq!(texts, vec!["reply"], "{}", db.backend);
    }
}

/// The first word of a title becomes a target only when it names an org
/// exactly; a notice longer than a group message can hold is refused.
#[tokio::test]
async fn targets_need_exact_names_and_copies_must_fit() {
    for db in TestDb::both().await {
        let body = "字".repeat(4200);
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:chat u1 private
/notice 实验 报告提交\\n周五前
取消
/notice 县一中团委 报告提交
取消
/notice 长通知\\n{body}
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        assert!(
            t[0].starts_with("将发送到 3 个群（全部组织）"),
            "{}: {}",
            db.backend,
            t[0]
        );
        assert!(t[0].contains("📢 通知｜实验 报告提交"), "{}", t[0]);
        assert!(t[2].starts_with("将发送到 1 个群（县一中）"), "{}", t[2]);
        assert!(t[4].starts_with("通知正文太长（42"), "{}", t[4]);
        assert_eq!(t.len(), 5);
    }
}

/// A reply to a notice's copy acknowledges that notice even when a later
/// one is open in the group; a `+1` replying to a list joins that list; a
/// `+1` replying to nothing, with two lists open, is asked which.
#[tokio::test]
async fn replies_point_at_their_notice_or_list() {
    for db in TestDb::both().await {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 5, 1, 0, 0).unwrap();
        let Scene {
            engine,
            store,
            clock,
        } = scene(&db, t0, "telegram:boss", true).await;
        let mut n = 0;
        let mut say = |user: &str, chat: &str, text: &str, reply: Option<String>| {
            n += 1;
            let kind = if chat == user {
                ChatKind::Private
            } else {
                ChatKind::Group
            };
            let mut m = Incoming::text(
                Platform::Telegram,
                format!("x{n}"),
                chat,
                kind,
                user,
                text,
                t0,
            );
            m.reply_to = reply.map(|id| tuanbot::chat::ReplyRef {
                message_id: id,
                from_bot: true,
                text: None,
                attachments: Vec::new(),
            });
            m
        };
        for m in [
            say("boss", "g", "/bind 县一中", None),
            say("boss", "boss", "/notice 第一条\n正文", None),
            say("boss", "boss", "确认", None),
            say("boss", "boss", "/notice 第二条\n正文", None),
            say("boss", "boss", "确认", None),
            say("boss", "g", "/event 甲 3月8日 9:00 广场 名额5", None),
            say("boss", "g", "/event 乙 3月9日 9:00 广场 名额5", None),
        ] {
            bounded(engine.handle(&m), "the engine to handle an update")
                .await
                .unwrap();
        }
        let recorder = Arc::new(crate::outbox::Recorder::default());
        Dispatcher::new(
            store.clone(),
            recorder,
            clock.clone(),
            Arc::new(Notify::new()),
        )
        .drain_due()
        .await
        .unwrap();
        let mut conn = store.conn().await.unwrap();
        let copy_of_first: String = sqlx::query_scalar(
            "SELECT o.platform_message_id FROM notice_posts p JOIN outbox o ON o.id = p.outbox_id \
             WHERE p.notice_id = 1",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        let list_one: String = sqlx::query_scalar(
            "SELECT o.platform_message_id FROM event_posts p JOIN outbox o ON o.id = p.outbox_id \
             WHERE p.event_id = 1",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        drop(conn);
        // u7 and u8 are members of 县一中 (signing up takes an org).
        for u in ["u7", "u8"] {
            crate::helpers::make_member(&store, Platform::Telegram, u, "县一中", Role::Member)
                .await;
        }
        for m in [
            say("u7", "g", "1", Some(copy_of_first)),
            say("u7", "g", "+1", Some(list_one)),
            say("u8", "g", "+1", None),
        ] {
            bounded(engine.handle(&m), "the engine to handle an update")
                .await
                .unwrap();
        }
        let mut conn = store.conn().await.unwrap();
        let acks: Vec<i64> = sqlx::query_scalar("SELECT notice_id FROM notice_acks")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        assert_eq!(acks, vec![1], "{}", db.backend);
        let rows = sqlx::query(
            "SELECT e.event_id, p.user_id FROM event_entries e JOIN people p ON p.id = e.person_id \
             ORDER BY e.id",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let joined: Vec<(i64, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("event_id").unwrap(),
                    r.try_get("user_id").unwrap(),
                )
            })
            .collect();
        assert_eq!(joined, vec![(1, "u7".to_string())]);
        let asked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE payload LIKE '%这个群有几个报名在进行%'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(asked, 1, "{}", db.backend);
    }
}

/// Acks as people write them, in a county group with two open notices: a
/// plain ack goes to the newest notice the sender's org has not acked, a
/// reply acks the notice replied to, and look-alikes change nothing. The
/// gathered lines name their notice.
#[tokio::test]
async fn written_acks_find_their_notice() {
    for db in TestDb::both().await {
        let b = db.backend;
        let t0 = Utc.with_ymd_and_hms(2026, 3, 5, 1, 0, 0).unwrap();
        let Scene {
            engine,
            store,
            clock,
        } = scene(&db, t0, "telegram:boss", true).await;
        let mut n = 0;
        let mut say = |user: &str, chat: &str, text: &str, reply: Option<&str>| {
            n += 1;
            let kind = if chat == user {
                ChatKind::Private
            } else {
                ChatKind::Group
            };
            let mut m = Incoming::text(
                Platform::Telegram,
                format!("w{n}"),
                chat,
                kind,
                user,
                text,
                t0,
            );
            m.reply_to = reply.map(|id| tuanbot::chat::ReplyRef {
                message_id: id.to_string(),
                from_bot: true,
                text: None,
                attachments: Vec::new(),
            });
            m
        };
        for m in [
            say("boss", "tgl", "/bind 全县", None),
            say("boss", "boss", "/notice 第一条\n正文", None),
            say("boss", "boss", "确认", None),
            say("boss", "boss", "/notice 第二条\n正文", None),
            say("boss", "boss", "确认", None),
        ] {
            bounded(engine.handle(&m), "the engine to handle an update")
                .await
                .unwrap();
        }
        let recorder = Arc::new(crate::outbox::Recorder::default());
        let dispatcher = Dispatcher::new(
            store.clone(),
            recorder.clone(),
            clock.clone(),
            Arc::new(Notify::new()),
        );
        dispatcher.drain_due().await.unwrap();
        let mut conn = store.conn().await.unwrap();
        let copy_of_first: String = sqlx::query_scalar(
            "SELECT o.platform_message_id FROM notice_posts p JOIN outbox o ON o.id = p.outbox_id \
             WHERE p.notice_id = 1 AND o.chat_id = 'tgl'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        drop(conn);
        for (user, org, role) in [
            ("a1", "县一中", Role::Cadre),
            ("a2", "县一中", Role::Member),
            ("b1", "县二中", Role::Cadre),
            ("c1", "县三中", Role::Member),
        ] {
            crate::helpers::make_member(&store, Platform::Telegram, user, org, role).await;
        }
        let sent_before = recorder.sent.lock().unwrap().len();
        for m in [
            // Neither notice acked by 县一中: the newest.
            say("a1", "tgl", "收到！", None),
            // 县一中 has acked #2: the other one.
            say("a2", "tgl", "好的，收到👌", None),
            // Look-alikes: nothing.
            say("b1", "tgl", "收到了吗？", None),
            say("b1", "tgl", "没收到", None),
            say("b1", "tgl", "谁收到了", None),
            say("b1", "tgl", "收到请回复", None),
            say("b1", "tgl", "还没收到通知", None),
            say("b1", "tgl", "收到了没", None),
            say("b1", "tgl", "收到的请回复一下", Some(&copy_of_first)),
            // A reply acks the notice replied to, though #2 is newer.
            say("b1", "tgl", "收到，谢谢", Some(&copy_of_first)),
            // 县二中 has acked #1 only: #2.
            say("b1", "tgl", "收到收到", None),
            say("c1", "tgl", "已阅", None),
        ] {
            bounded(engine.handle(&m), "the engine to handle an update")
                .await
                .unwrap();
        }
        let mut conn = store.conn().await.unwrap();
        let rows = sqlx::query(
            "SELECT a.notice_id, p.user_id FROM notice_acks a JOIN people p ON p.id = a.person_id \
             ORDER BY a.notice_id, p.user_id",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let acks: Vec<(i64, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("notice_id").unwrap(),
                    r.try_get("user_id").unwrap(),
                )
            })
            .collect();
        let want: Vec<(i64, String)> = [(1, "a2"), (1, "b1"), (2, "a1"), (2, "b1"), (2, "c1")]
            .iter()
            .map(|(n, u)| (*n, u.to_string()))
            .collect();
        assert_eq!(acks, want, "{b}");
        assert_eq!(
            audit::count_action(&mut conn, "notice.ack").await.unwrap(),
            5,
            "{b}"
        );
        drop(conn);
        clock.advance(Duration::seconds(31));
        dispatcher.drain_due().await.unwrap();
        let sent: Vec<String> = recorder.sent.lock().unwrap()[sent_before..]
            .iter()
            .filter(|(chat, _, _)| chat == "tgl")
            .map(|(_, text, _)| text.clone())
            .collect();
        assert_eq!(
            sent,
            vec![
                "📋 通知 #2「第二条」已收到（3 人）：a1、b1、c1".to_string(),
                "📋 通知 #1「第一条」已收到（2 人）：a2、b1".to_string(),
            ],
            "{b}: one gathered line per notice, nothing for the look-alikes"
        );
    }
}

/// A photo or document carried by `/notice` goes with every copy.
#[tokio::test]
async fn attachment_goes_with_every_copy() {
    use tuanbot::chat::{Attachment, AttachmentKind};
    for db in TestDb::both().await {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 5, 1, 0, 0).unwrap();
        let Scene { engine, store, .. } = scene(&db, t0, "telegram:boss", true).await;
        let msg = |id: &str, chat: &str, kind, text: &str| {
            Incoming::text(Platform::Telegram, id, chat, kind, "boss", text, t0)
        };
        engine
            .handle(&msg("1", "g1", ChatKind::Group, "/bind 县一中"))
            .await
            .unwrap();
        engine
            .handle(&msg("2", "g2", ChatKind::Group, "/bind 县二中"))
            .await
            .unwrap();
        let mut notice = msg("3", "boss", ChatKind::Private, "/notice 材料模板\n见附件");
        let file = Attachment {
            kind: AttachmentKind::Document,
            file_ref: "file-123".into(),
            file_name: Some("模板.docx".into()),
        };
        notice.attachments = vec![file.clone()];
        bounded(engine.handle(&notice), "the engine to handle an update")
            .await
            .unwrap();
        engine
            .handle(&msg("4", "boss", ChatKind::Private, "确认"))
            .await
            .unwrap();
        let mut conn = store.conn().await.unwrap();
        let rows = sqlx::query("SELECT chat_id, payload FROM outbox ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let msgs: Vec<Outgoing> = rows
            .iter()
            .map(|r| serde_json::from_str(&r.try_get::<String, _>("payload").unwrap()).unwrap())
            .collect();
        assert!(
            msgs[2].text.contains("📎 附带 1 个附件"),
            "{}: {}",
            db.backend,
            msgs[2].text
        );
        let copies: Vec<&Outgoing> = msgs
            .iter()
            .filter(|m| m.text.starts_with("📢 通知 #1"))
            .collect();
        assert_eq!(copies.len(), 2);
        // Sent on as received: the platform's own reference.
        let sent_on = tuanbot::chat::OutFile::from(file.clone());
        assert_eq!(
            sent_on.source,
            tuanbot::chat::FileSource::PlatformId("file-123".into())
        );
        assert!(
            copies
                .iter()
                .all(|m| m.attachments == vec![sent_on.clone()])
        );
    }
}
