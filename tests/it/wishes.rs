//! Micro-wishes: import, publish, the claim rush, transitions, permissions,
//! privacy, the race, group commit and the scheduler hooks. Both backends.

use std::sync::Arc;

use chrono::TimeZone;
use tuanbot::chat::{Incoming, Outgoing};
use tuanbot::clock::ManualClock;
use tuanbot::domain::{ChatKind, Platform};
use tuanbot::engine::{Engine, Outcome};
use tuanbot::service::wishes as svc;
use tuanbot::store::wishes as db;
use tuanbot::store::{audit, outbox, people};

use crate::helpers::{Scene, TestDb, bounded, join_all, scene, script, script_with, texts};

const FIXTURE: &str = "tests/fixtures/wishes.csv";

/// Staff zhang binds g1 to the county and imports + publishes the fixture
/// with a quota of 2; u1 asks to join 县一中, u2 县二中, u3 县三中; zhang makes
/// u1 县一中's cadre and lets u2 and u3 in as members.
const SCENE: &str = "\
:today 2026-05-20
:admin zhang
:as zhang 团县委小张
:chat g1 group
绑定 全县
:file tests/fixtures/wishes.csv
/wishes import 2026圆梦
/wishes publish 2026圆梦 quota 2
:as u1 县一中小王
我是 县一中
:as u2 县二中小李
我是 县二中
:as u3 县三中小赵
我是 县三中
:as zhang 团县委小张
/role @u1 团干部
同意 县二中小李
同意 县三中小赵
:time 09:00:10
";

/// Every child's full name in the fixture.
fn child_names() -> Vec<String> {
    let table = tuanbot::table::Table::read(std::path::Path::new(FIXTURE)).unwrap();
    let col = table.column(&["学生"]).unwrap();
    table.rows.iter().map(|(_, r)| r[col].clone()).collect()
}

/// (chat, text) of every message in JSON console output.
fn messages(json: &str) -> Vec<(String, String)> {
    json.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["chat"].as_str().unwrap_or_default().to_string(),
                v["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// No message to a group chat (ids starting with `g`) names a child in full.
fn assert_masked(json: &str) {
    let names = child_names();
    for (chat, text) in messages(json) {
        if !chat.starts_with('g') {
            continue;
        }
        for name in &names {
            assert!(
                !text.contains(name.as_str()),
                "group {chat} got the full name {name}: {text}"
            );
        }
    }
}

async fn run(db: &TestDb, body: &str) -> String {
    let out = script(db, &format!("{SCENE}{body}"), true).await;
    assert_masked(&out);
    out
}

#[tokio::test]
async fn import_publish_and_rush() {
    for db in TestDb::both().await {
        let out = run(
            &db,
            "\
:as u1 县一中小王
认领 12、15
:as u2 县二中小李
@团务助手 认领15
:as u3 县三中小赵
认领 900
:as u2 县二中小李
#认领 十二 16 17
:as u3 县三中小赵
/claim 3-5
:time 09:00:20
",
        )
        .await;
        let t = texts(&out);
        let b = db.backend;
        assert!(
            t.iter()
                .any(|x| x.starts_with("✅ 已导入「2026圆梦」：800 个微心愿，来自 24 所学校")),
            "{b}: {t:?}"
        );
        let pages: Vec<&String> = t.iter().filter(|x| x.contains("页，/wishes")).collect();
        // 800 wishes, 100 to a page at most.
        assert_eq!(pages.len(), 8, "{b}: {} pages", pages.len());
        assert!(
            pages[0].starts_with("🎁 圆梦行动「2026圆梦」800 个微心愿。每个组织最多认领 2 个。")
        );
        assert!(pages[0].contains("2. 白沙乡中心小学 二年级 毛* · 成语辞典1本 · ¥35"));
        // Every page fits one message.
        assert!(pages.iter().all(|p| p.chars().count() <= 4096));
        // One gathered message for the whole rush.
        let results: Vec<&String> = t.iter().filter(|x| x.starts_with("✅ 县一中：")).collect();
        assert_eq!(results.len(), 1, "{b}: {t:?}");
        insta::assert_snapshot!("wishes_rush_results", results[0]);
        // The board was edited, not re-posted.
        let edits: Vec<String> = out
            .lines()
            .filter(|l| l.contains("\"edit_of\":\"") && l.contains("认领进度"))
            .map(str::to_string)
            .collect();
        assert!(!edits.is_empty(), "{b}: no board edit");
        let last = texts(edits.last().unwrap()).remove(0);
        assert!(last.contains("认领进度 6/800"), "{b}: {last}");
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let batch = db::batch_by_name(&mut conn, "2026圆梦")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((batch.total, batch.open_n, batch.claimed_n), (800, 794, 6));
        assert_eq!(
            audit::count_action(&mut conn, "wish.claim").await.unwrap(),
            6
        );
        assert_eq!(db::violations(&mut conn, batch.id).await.unwrap(), (0, 0));
    }
}

#[tokio::test]
async fn views_and_transitions() {
    for db in TestDb::both().await {
        let out = run(
            &db,
            "\
:as u1 县一中小王
认领 12 15
:chat g2 group
:as zhang 团县委小张
/bind 县一中
:chat g3 group
/bind 县二中
:chat g1 group
:as u1 县一中小王
:time 09:00:20
/wish 12
心愿 县一中
心愿 2
心愿 字典
认领
/mywishes
:chat p1 private
/mywishes
/wish 12
:chat g1 group
:photo proof-12.jpg
圆梦 12
圆梦 15
放弃 15
:as zhang 团县委小张
认领 3
:as u2 县二中小李
认领 20
:as zhang 团县委小张
下架 20 家长已自行购买
下架 12 重复
:time 09:01
",
        )
        .await;
        let t = texts(&out);
        let b = db.backend;
        let has = |s: &str| t.iter().any(|x| x.contains(s));
        assert!(
            has("12. 城关第二小学 三年级 贾* · 1副围棋 · ¥45 · 已认领 · 县一中"),
            "{b}: {t:?}"
        );
        assert!(has("县一中 认领了 2 个："), "{b}");
        assert!(has("🎁「2026圆梦」待认领 798/800"), "{b}");
        assert!(has("含「字典」的待认领心愿"), "{b}");
        assert!(has("请写上编号，如「认领 12」"), "{b}");
        assert!(has("请私聊我发送 /mywishes"), "{b}");
        // In private, the holder sees the full name and the note.
        let private: Vec<(String, String)> = messages(&out)
            .into_iter()
            .filter(|(c, _)| c == "p1")
            .collect();
        assert!(
            private[0].1.contains(
                "12. 城关第二小学 三年级 贾紫 · 1副围棋 · ¥45（希望能在六一前收到） · 已认领"
            ),
            "{b}: {private:?}"
        );
        assert!(private[1].1.contains("贾紫"), "{b}");
        assert!(has("🎉 12 号已圆梦：1副围棋"), "{b}");
        assert!(has("请附上照片：发照片时在说明里写「圆梦 15」"), "{b}");
        assert!(has("↩️ 已放弃 15 号"), "{b}");
        assert!(
            has("📢 团县委下架了你们认领的 20 号"),
            "{b}: revoke notice missing"
        );
        assert!(has("🗑 已下架 20 号：家长已自行购买"), "{b}");
        assert!(has("12 号已圆梦，不能下架。"), "{b}");
        // Staff bound to no org cannot claim.
        assert!(has("请先绑定组织"), "{b}");
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let batch = db::batch_by_name(&mut conn, "2026圆梦")
            .await
            .unwrap()
            .unwrap();
        let w12 = db::wish(&mut conn, batch.id, 12).await.unwrap().unwrap();
        assert_eq!(w12.proof_ref.as_deref(), Some("proof-12.jpg"));
        for action in [
            "wish.import",
            "wish.publish",
            "wish.deliver",
            "wish.release",
            "wish.revoke",
        ] {
            assert_eq!(
                audit::count_action(&mut conn, action).await.unwrap(),
                1,
                "{b}: {action}"
            );
        }
        // The revoke notice went to 县二中's group only.
        let notice: Vec<(String, String)> = messages(&out)
            .into_iter()
            .filter(|(_, x)| x.contains("📢 团县委下架"))
            .collect();
        assert_eq!(notice.len(), 1, "{b}: {notice:?}");
        assert_eq!(notice[0].0, "g3", "{b}");
    }
}

/// `圆梦 12` needs a photo: attached, or in the message it replies to
/// (found by the quoted id alone, as on QQ). A reply to a text or to the
/// bot is refused and changes nothing. The photo is stored as the proof.
#[tokio::test]
async fn done_needs_a_photo_attached_or_replied_to() {
    for db in TestDb::both().await {
        let out = run(
            &db,
            "\
:as u1 县一中小王
认领 15 16
:time 09:00:20
:as u2 县二中小李
:photo proof-15.jpg
送到啦
:as u1 县一中小王
:reply last
圆梦 15
今天下午送的
:reply last
圆梦 16
:reply 1
圆梦 16
圆梦 16
:photo p16.jpg
:reply last
圆梦 16
:time 09:01
",
        )
        .await;
        let t = texts(&out);
        let b = db.backend;
        let count = |s: &str| t.iter().filter(|x| x.contains(s)).count();
        assert_eq!(count("🎉 15 号已圆梦"), 1, "{b}: {t:?}");
        assert_eq!(count("🎉 16 号已圆梦"), 1, "{b}: {t:?}");
        assert_eq!(count("回复的那条消息不是照片"), 2, "{b}: {t:?}");
        assert_eq!(count("请附上照片"), 1, "{b}: {t:?}");
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let batch = db::batch_by_name(&mut conn, "2026圆梦")
            .await
            .unwrap()
            .unwrap();
        for (no, want) in [(15, "proof-15.jpg"), (16, "p16.jpg")] {
            let w = db::wish(&mut conn, batch.id, no).await.unwrap().unwrap();
            assert_eq!(w.proof_ref.as_deref(), Some(want), "{b}: {no}");
        }
        assert_eq!(
            audit::count_action(&mut conn, "wish.deliver")
                .await
                .unwrap(),
            2,
            "{b}"
        );
    }
}

/// `/wishes import NAME` finds its file as on QQ, where a file has no
/// caption: the file the command replies to (anyone's), else the sender's
/// latest file in this chat within 10 minutes. A reply to a message without
/// a file, no file at all, or a file older than that are each told how.
#[tokio::test]
async fn import_takes_the_file_replied_to_or_just_sent() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            "\
:today 2026-05-20
:time 09:00
:admin zhang
:chat g1 group
:as zhang 团县委小张
:file tests/fixtures/wishes.csv
心愿表在这里
/wishes import 第一批
:reply last
/wishes import 第二批
:as li 小李
:file tests/fixtures/wishes.csv
表格
:as zhang 团县委小张
:reply last
/wishes import 第三批
:as li 小李
/wishes import 第四批
:chat g2 group
:as zhang 团县委小张
/wishes import 第五批
:chat g1 group
:time 09:20
/wishes import 第六批
",
            true,
        )
        .await;
        let t = texts(&out);
        let b = db.backend;
        let imported: Vec<&String> = t.iter().filter(|x| x.starts_with("✅ 已导入")).collect();
        assert_eq!(imported.len(), 2, "{b}: {t:?}");
        assert!(
            imported[0].starts_with("✅ 已导入「第一批」：800 个微心愿"),
            "{b}"
        );
        assert!(
            imported[1].starts_with("✅ 已导入「第三批」：800 个微心愿"),
            "{b}"
        );
        let count = |s: &str| t.iter().filter(|x| x.contains(s)).count();
        assert_eq!(count("你回复的消息里没有我见过的表格文件"), 1, "{b}: {t:?}");
        assert_eq!(count("只有团县委工作人员可以做这件事。"), 1, "{b}: {t:?}");
        assert_eq!(
            count("请先把 CSV 或 Excel 表格作为文件发到这里"),
            2,
            "{b}: {t:?}"
        );
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        for (name, there) in [
            ("第一批", true),
            ("第二批", false),
            ("第三批", true),
            ("第四批", false),
            ("第五批", false),
            ("第六批", false),
        ] {
            let found = db::batch_by_name(&mut conn, name).await.unwrap();
            assert_eq!(found.is_some(), there, "{b}: {name}");
        }
    }
}

#[tokio::test]
async fn permissions() {
    for db in TestDb::both().await {
        let out = run(
            &db,
            "\
:as u1 县一中小王
认领 12
:as u2 县二中小李
放弃 12
圆梦 12
/revoke 12 不要了
/wishes publish 2026圆梦
:file tests/fixtures/wishes.csv
/wishes import 另一批
:as u9 路人
认领 13
:time 09:00:30
",
        )
        .await;
        let t = texts(&out);
        let b = db.backend;
        let count = |s: &str| t.iter().filter(|x| x.contains(s)).count();
        assert_eq!(
            count("12 号由 县一中 认领，只有他们的团干部或团县委可以操作。"),
            2,
            "{b}: {t:?}"
        );
        assert_eq!(count("只有团县委工作人员可以做这件事。"), 3, "{b}: {t:?}");
        assert_eq!(count("请先绑定组织"), 1, "{b}");
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        assert!(
            db::batch_by_name(&mut conn, "另一批")
                .await
                .unwrap()
                .is_none()
        );
        let batch = db::batch_by_name(&mut conn, "2026圆梦")
            .await
            .unwrap()
            .unwrap();
        let w = db::wish(&mut conn, batch.id, 12).await.unwrap().unwrap();
        assert_eq!(w.status.as_str(), "claimed");
        assert_eq!(
            audit::count_action(&mut conn, "wish.claim").await.unwrap(),
            1
        );
    }
}

#[tokio::test]
async fn cadres_only_when_configured() {
    for db in TestDb::both().await {
        let mut settings = db.settings();
        settings.wishes.claim_role = "cadre".into();
        let out = script_with(
            settings,
            &format!("{SCENE}:as u2 县二中小李\n认领 12\n:as zhang 团县委小张\n/role @u2 团干部\n:as u2 县二中小李\n认领 12\n:time 09:00:30\n"),
            true,
        )
        .await;
        let t = texts(&out);
        assert!(
            t.iter().any(|x| x.starts_with("只有团干部可以认领")),
            "{t:?}"
        );
        assert!(t.iter().any(|x| x.starts_with("✅ 县二中：12")), "{t:?}");
    }
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    for db in TestDb::both().await {
        let long = "认".repeat(5000);
        let out = run(
            &db,
            &format!(
                "\
:as u1 县一中小王
认领的同学注意了
认领 12'); DROP TABLE wishes; --
/claim abc
认领 😀
认领 1-1000
/wish 99999
/release
{long}
/wishes publish 不存在的批次
"
            ),
        )
        .await;
        let t = texts(&out);
        // The SQL text, `/claim abc` and the emoji each get the usage; the
        // chatter gets nothing.
        let usage = t
            .iter()
            .filter(|x| x.starts_with("用法：认领 编号"))
            .count();
        assert_eq!(usage, 3, "{t:?}");
        assert!(
            t.iter()
                .any(|x| x == "一条消息最多认领 50 个编号，请分开发。"),
            "{t:?}"
        );
        assert!(
            t.iter()
                .any(|x| x.starts_with("没有 99999 号（共 800 个）")),
            "{t:?}"
        );
        assert!(t.iter().any(|x| x.starts_with("用法：放弃 编号")), "{t:?}");
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        assert_eq!(
            audit::count_action(&mut conn, "wish.claim").await.unwrap(),
            0
        );
    }
}

#[tokio::test]
async fn import_errors_are_row_numbered_and_nothing_is_written() {
    for db in TestDb::both().await {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.csv");
        std::fs::write(
            &bad,
            "学校,年级,学生,心愿,估价（元）,备注\n一小,三年级,张三,字典,25,\n,三年级,李四,书包,abc,\n二小,四年级,,台灯,30,\n",
        )
        .unwrap();
        let store = db.store().await;
        let err = svc::import_file(&store, &bad, "坏批次", "zh-CN")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("第 3 行：「学校」是空的。"), "{err}");
        assert!(err.contains("第 3 行：估价「abc」不是金额。"), "{err}");
        assert!(err.contains("第 4 行：「学生」是空的。"), "{err}");
        // A table without a wish column (an org list sent by mistake)
        // names the columns a wish list needs.
        let orgs = dir.path().join("orgs.csv");
        std::fs::write(
            &orgs,
            "全称,简称,类别
县一中团委,县一中,学校
",
        )
        .unwrap();
        let err = svc::import_file(&store, &orgs, "错表", "zh-CN")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("缺少「心愿」列（需要：学校、年级、学生、心愿、估价（元）、备注）。"),
            "{err}"
        );
        let mut conn = store.conn().await.unwrap();
        assert!(
            db::batch_by_name(&mut conn, "坏批次")
                .await
                .unwrap()
                .is_none()
        );
        drop(conn);
        let n = svc::import_file(&store, std::path::Path::new(FIXTURE), "好批次", "zh-CN")
            .await
            .unwrap();
        assert_eq!(n, 800);
        // The same name twice is refused.
        assert!(
            svc::import_file(&store, std::path::Path::new(FIXTURE), "好批次", "zh-CN")
                .await
                .is_err()
        );
        let mut conn = store.conn().await.unwrap();
        let b = db::batch_by_name(&mut conn, "好批次")
            .await
            .unwrap()
            .unwrap();
        let w = db::wish(&mut conn, b.id, 2).await.unwrap().unwrap();
        assert_eq!((w.child.as_str(), w.item.as_str()), ("毛轩", "成语辞典1本"));
    }
}

/// A local (Asia/Shanghai, UTC+8) time in May 2026; days past 31 run on
/// into June.
fn at(day: u32, h: u32, m: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 5, 1, h, m, 0).unwrap()
        + chrono::Duration::days(i64::from(day) - 1)
        - chrono::Duration::hours(8)
}

fn msg(
    n: &mut u32,
    user: &str,
    chat: &str,
    kind: ChatKind,
    text: &str,
    when: chrono::DateTime<chrono::Utc>,
) -> Incoming {
    *n += 1;
    Incoming::text(
        Platform::Telegram,
        format!("m{n}"),
        chat,
        kind,
        user,
        text,
        when,
    )
    .from_name(user.to_string())
}

async fn engine(db: &TestDb) -> Arc<Engine> {
    let Scene { engine, store, .. } = scene(db, at(20, 9, 0), "telegram:staff", true).await;
    svc::import_file(&store, std::path::Path::new(FIXTURE), "2026圆梦", "zh-CN")
        .await
        .unwrap();
    engine
}

/// Every queued message (leases them all, so call once).
async fn pending_all(e: &Engine) -> Vec<Outgoing> {
    let mut conn = e.store.conn().await.unwrap();
    let rows = outbox::lease_due(
        &mut conn,
        e.store.backend(),
        Platform::Telegram,
        i64::MAX / 2,
        i64::MAX / 2,
        10_000,
    )
    .await
    .unwrap();
    rows.into_iter().map(|r| r.message).collect()
}

#[tokio::test]
async fn scheduled_publish_and_overdue_reminders() {
    for db in TestDb::both().await {
        let e = engine(&db).await;
        let b = db.backend;
        let mut n = 0;
        let g = ChatKind::Group;
        for (user, chat, text) in [
            ("staff", "g1", "/bind 全县"),
            ("staff", "g1", "/wishes publish 2026圆梦 quota 5 at 20:00"),
            ("staff", "g2", "/bind 县一中"),
            ("a", "pa", "我是 县一中"),
            ("staff", "pstaff", "同意 a"),
        ] {
            let kind = if chat.starts_with('p') {
                ChatKind::Private
            } else {
                g
            };
            bounded(
                e.handle(&msg(&mut n, user, chat, kind, text, at(20, 9, 0))),
                "the engine to handle an update",
            )
            .await
            .unwrap();
        }
        assert_eq!(
            tuanbot::jobs::publish_due(&e, at(20, 19, 59))
                .await
                .unwrap(),
            0,
            "{b}"
        );
        assert_eq!(
            tuanbot::jobs::publish_due(&e, at(20, 20, 0)).await.unwrap(),
            1,
            "{b}"
        );
        assert_eq!(
            tuanbot::jobs::publish_due(&e, at(20, 20, 5)).await.unwrap(),
            0,
            "{b}"
        );
        bounded(
            e.handle(&msg(&mut n, "a", "g2", g, "认领 12 15", at(20, 20, 1))),
            "the engine to handle an update",
        )
        .await
        .unwrap();
        assert_eq!(
            tuanbot::jobs::remind_overdue(&e, at(33, 9, 0))
                .await
                .unwrap(),
            0,
            "{b}: too early"
        );
        assert_eq!(
            tuanbot::jobs::remind_overdue(&e, at(34, 20, 2))
                .await
                .unwrap(),
            1,
            "{b}: one group of 县一中"
        );
        assert_eq!(
            tuanbot::jobs::remind_overdue(&e, at(40, 21, 0))
                .await
                .unwrap(),
            0,
            "{b}: weekly"
        );
        bounded(
            e.handle(&msg(
                &mut n,
                "staff",
                "g1",
                g,
                "/wishes overdue",
                at(40, 21, 0),
            )),
            "the engine to handle an update",
        )
        .await
        .unwrap();
        assert_eq!(
            tuanbot::jobs::remind_overdue(&e, at(41, 20, 3))
                .await
                .unwrap(),
            1,
            "{b}: a week later"
        );
        let all = pending_all(&e).await;
        let g1: Vec<&Outgoing> = all.iter().filter(|m| m.chat_id == "g1").collect();
        let g2: Vec<&Outgoing> = all.iter().filter(|m| m.chat_id == "g2").collect();
        assert!(
            g1.iter().any(|m| m
                .text
                .contains("🎁 圆梦行动「2026圆梦」800 个微心愿。每个组织最多认领 5 个。")),
            "{b}"
        );
        assert!(
            g1.iter().any(|m| m
                .text
                .contains("⏰「2026圆梦」的心愿清单已发出，05-20 20:00 开始认领。")),
            "{b}"
        );
        // The list went out when scheduled, saying when claiming opens; at
        // that time the board opens it.
        assert!(
            g1.iter().any(|m| m
                .text
                .contains("⏰ 05-20 20:00 开始认领，在此之前的认领不算。")),
            "{b}"
        );
        assert!(
            g1.iter().any(|m| m
                .text
                .starts_with("📣「2026圆梦」现在开始认领！回复「认领 编号」，如：认领 12 15\n📋「2026圆梦」认领进度")),
            "{b}: {g1:?}"
        );
        assert!(g1.iter().any(|m| m.text.contains("县一中：12、15")), "{b}");
        assert!(
            g2.iter().any(|m| m
                .text
                .starts_with("⏰ 这些微心愿认领已超过 14 天还没圆梦：12 1副围棋、15 ")),
            "{b}: {g2:?}"
        );
        // Telegram here has no registered edit capability: the progress line
        // rides in the gathered result instead of a board edit.
        assert!(
            g2.iter().any(|m| m
                .text
                .contains("✅ 县一中：12、15\n📋「2026圆梦」认领进度 2/800")),
            "{b}: {g2:?}"
        );
        assert!(g1.iter().chain(&g2).all(|m| m.edit_of.is_none()), "{b}");
    }
}

/// 440 people of 44 orgs rush the same 50 wishes with a quota of 3, through
/// concurrent transactions (`handle`) and through the group-commit writer
/// (`submit`): every wish is held exactly once, no org goes over quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race() {
    for db in TestDb::both().await {
        for via_submit in [false, true] {
            let e = race_engine(&db, via_submit).await;
            let mut tasks = Vec::new();
            for i in 0..440usize {
                let e = e.clone();
                tasks.push(tokio::spawn(async move {
                    let user = format!("r{via_submit}{i}");
                    // Each person tries the 50 wishes in their own order, in
                    // messages of 5 numbers.
                    let mut order: Vec<usize> = (1..=50).collect();
                    order.rotate_left(i % 50);
                    for (k, chunk) in order.chunks(5).enumerate() {
                        let text = format!(
                            "认领 {}",
                            chunk
                                .iter()
                                .map(usize::to_string)
                                .collect::<Vec<_>>()
                                .join(" ")
                        );
                        let m = Incoming::text(
                            Platform::Telegram,
                            format!("{user}-{k}"),
                            format!("p{user}"),
                            ChatKind::Private,
                            user.clone(),
                            text,
                            at(21, 9, 0),
                        );
                        let r = if via_submit {
                            bounded(e.submit(m), "the group-commit writer").await
                        } else {
                            bounded(e.handle(&m), "the engine to handle an update").await
                        };
                        assert!(matches!(r, Ok(Outcome::Handled { .. })), "{r:?}");
                    }
                }));
            }
            join_all(tasks, "the racing claimers").await;
            let mut conn = e.store.conn().await.unwrap();
            let batch = db::batch_by_name(&mut conn, &format!("race{via_submit}"))
                .await
                .unwrap()
                .unwrap();
            let held = db::list(&mut conn, batch.id, None, None, None)
                .await
                .unwrap();
            let b = db.backend;
            assert!(
                held.iter().all(|w| w.status.as_str() == "claimed"),
                "{b} {via_submit}"
            );
            assert_eq!(
                db::violations(&mut conn, batch.id).await.unwrap(),
                (0, 0),
                "{b} {via_submit}"
            );
            let mut per_org = std::collections::HashMap::new();
            for w in &held {
                *per_org.entry(w.org_id).or_insert(0) += 1;
            }
            assert!(
                per_org.values().all(|n| *n <= 3),
                "{b} {via_submit}: {per_org:?}"
            );
            assert_eq!(
                audit::count_action(&mut conn, "wish.claim").await.unwrap(),
                50 * (1 + i64::from(via_submit)),
                "{b} {via_submit}"
            );
            assert_eq!(batch.claimed_n, 50);
        }
    }
}

/// Orgs from the demo county (44 直属 + others), 10 people each, and a
/// published batch of 50 wishes with a quota of 3.
async fn race_engine(db: &TestDb, via_submit: bool) -> Arc<Engine> {
    let clock = Arc::new(ManualClock::new(at(21, 9, 0)));
    let store = db.store().await;
    tuanbot::app::seed_demo_if_empty(&store, "zh-CN")
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    let orgs = tuanbot::store::orgs::all(&mut tx).await.unwrap();
    for i in 0..440usize {
        let user = format!("r{via_submit}{i}");
        let (p, _) = people::upsert_seen(&mut tx, Platform::Telegram, &user, &user, 0)
            .await
            .unwrap();
        people::set_org(&mut tx, p.id, Some(orgs[1 + i % 44].id), 0)
            .await
            .unwrap();
    }
    let wishes: Vec<db::NewWish> = (0..50)
        .map(|i| db::NewWish {
            school: "一小".into(),
            grade: String::new(),
            child: format!("孩子{i}"),
            item: "字典".into(),
            price_yuan: None,
            note: None,
        })
        .collect();
    let id = db::create_batch(&mut tx, &format!("race{via_submit}"), &wishes, 0)
        .await
        .unwrap();
    db::set_published(&mut tx, id, Some(3), "telegram", "g", 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    Arc::new(Engine::new(store, db.settings(), clock).unwrap())
}

/// Counts downloads; reads files from disk.
struct CountingFiles(std::sync::atomic::AtomicUsize);

impl tuanbot::engine::FileFetcher for CountingFiles {
    fn fetch<'a>(
        &'a self,
        file_ref: &'a str,
    ) -> tuanbot::chat::BoxFuture<'a, Result<Vec<u8>, tuanbot::chat::files::FetchError>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(tuanbot::chat::files::read_local(file_ref))
    }
}

/// Through the group-commit writer, a file and an import sent right after
/// it (no reply, no caption: the sender's latest file) are enqueued back to
/// back: the import waits until the file's update is committed, so it
/// always finds it. A member who is not staff gets nothing downloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_through_the_writer_finds_the_file_sent_just_before() {
    use tuanbot::chat::{Attachment, AttachmentKind};
    for db in TestDb::both().await {
        let e = engine(&db).await;
        let files = Arc::new(CountingFiles(Default::default()));
        e.set_file_fetcher(Platform::Telegram, files.clone());
        let mut n = 0;
        let file_msg = |n: &mut u32, user: &str, chat: &str| {
            let mut m = msg(n, user, chat, ChatKind::Group, "心愿表", at(20, 9, 0));
            m.message_id = Some(format!("file{n}"));
            m.attachments.push(Attachment {
                kind: AttachmentKind::Document,
                file_ref: FIXTURE.into(),
                file_name: Some("心愿.csv".into()),
            });
            m
        };
        for round in 0..4 {
            let chat = format!("g{round}");
            let file = file_msg(&mut n, "staff", &chat);
            let import = msg(
                &mut n,
                "staff",
                &chat,
                ChatKind::Group,
                &format!("/wishes import 第{round}批"),
                at(20, 9, 0),
            );
            let (a, b) = (e.submit(file), e.submit(import));
            let (a, b) = bounded(async { tokio::join!(a, b) }, "a file, then its import").await;
            assert_eq!(a.unwrap(), Outcome::Handled { replies: 0 });
            assert_eq!(b.unwrap(), Outcome::Handled { replies: 1 });
        }
        let fetched = files.0.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(fetched, 4, "{}", db.backend);
        let file = file_msg(&mut n, "li", "g9");
        let import = msg(
            &mut n,
            "li",
            "g9",
            ChatKind::Group,
            "/wishes import 路人批",
            at(20, 9, 0),
        );
        let (a, b) = (e.submit(file), e.submit(import));
        let (_, b) = bounded(async { tokio::join!(a, b) }, "a member's import").await;
        assert_eq!(b.unwrap(), Outcome::Handled { replies: 1 });
        assert_eq!(
            files.0.load(std::sync::atomic::Ordering::SeqCst),
            4,
            "nothing downloaded"
        );
        let mut conn = e.store.conn().await.unwrap();
        for round in 0..4 {
            let name = format!("第{round}批");
            let batch = db::batch_by_name(&mut conn, &name).await.unwrap();
            assert_eq!(batch.map(|b| b.total), Some(800), "{}: {name}", db.backend);
        }
        assert!(
            db::batch_by_name(&mut conn, "路人批")
                .await
                .unwrap()
                .is_none()
        );
    }
}

/// One update failing inside a group commit rolls back alone; a replayed
/// update in the same group is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_isolates_updates() {
    for db in TestDb::both().await {
        let e = engine(&db).await;
        let mut n = 0;
        let m1 = msg(
            &mut n,
            "a",
            "pa",
            ChatKind::Private,
            "我是 县一中",
            at(20, 9, 0),
        );
        let m2 = m1.clone();
        let m3 = msg(
            &mut n,
            "b",
            "pb",
            ChatKind::Private,
            "我是 县二中",
            at(20, 9, 0),
        );
        let (r1, r2, r3) = bounded(
            async { tokio::join!(e.submit(m1), e.submit(m2), e.submit(m3)) },
            "three updates through the group-commit writer",
        )
        .await;
        let mut outcomes = vec![r1.unwrap(), r2.unwrap()];
        outcomes.sort_by_key(|o| matches!(o, Outcome::Duplicate));
        assert_eq!(
            outcomes,
            vec![Outcome::Handled { replies: 1 }, Outcome::Duplicate]
        );
        assert_eq!(r3.unwrap(), Outcome::Handled { replies: 1 });
        let mut conn = e.store.conn().await.unwrap();
        assert_eq!(
            audit::count_action(&mut conn, "join.request")
                .await
                .unwrap(),
            2
        );
    }
}

/// One writer group with claims, a repeated update, a release between them
/// and a claimer without an org: the claim runs are decided together, in
/// arrival order, around the update handled on its own.
#[tokio::test]
async fn claim_runs_in_one_group_keep_arrival_order() {
    for db in TestDb::both().await {
        let e = engine(&db).await;
        let mut n = 0;
        let t = at(20, 9, 0);
        for (user, text) in [
            ("staff", "/wishes publish 2026圆梦 quota 5"),
            ("a", "我是 县一中"),
            ("b", "我是 县二中"),
            ("c", "我是 县三中"),
            // a releases a wish below: a cadre of 县一中.
            ("staff", "/role a 团干部"),
            ("staff", "同意 b"),
            ("staff", "同意 c"),
        ] {
            let chat = if user == "staff" { "g1" } else { "p" };
            let kind = if user == "staff" {
                ChatKind::Group
            } else {
                ChatKind::Private
            };
            bounded(e.handle(&msg(&mut n, user, chat, kind, text, t)), "set-up")
                .await
                .unwrap();
        }
        let a12 = msg(&mut n, "a", "g1", ChatKind::Group, "认领 12", t);
        let group = vec![
            a12.clone(),
            a12,
            msg(&mut n, "b", "g1", ChatKind::Group, "认领 12 13", t),
            msg(&mut n, "nobody", "g1", ChatKind::Group, "认领 14", t),
            msg(&mut n, "a", "g1", ChatKind::Group, "/release 12", t),
            msg(&mut n, "c", "g1", ChatKind::Group, "认领 12、13", t),
        ];
        // Enqueued back to back, so the writer takes them as one group.
        let answers: Vec<_> = group.into_iter().map(|m| e.submit(m)).collect();
        let mut outcomes = Vec::new();
        for a in answers {
            outcomes.push(bounded(a, "the group-commit writer").await.unwrap());
        }
        assert_eq!(outcomes[1], Outcome::Duplicate, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .enumerate()
                .all(|(i, o)| i == 1 || matches!(o, Outcome::Handled { .. }))
        );
        let mut conn = e.store.conn().await.unwrap();
        let batch = db::batch_by_name(&mut conn, "2026圆梦")
            .await
            .unwrap()
            .unwrap();
        let holder = |w: Option<db::Wish>| w.and_then(|w| w.org_id);
        let orgs = tuanbot::store::orgs::all(&mut conn).await.unwrap();
        let org = |name: &str| orgs.iter().find(|o| o.short_name == name).map(|o| o.id);
        assert_eq!(
            holder(db::wish(&mut conn, batch.id, 12).await.unwrap()),
            org("县三中"),
            "{}",
            db.backend
        );
        assert_eq!(
            holder(db::wish(&mut conn, batch.id, 13).await.unwrap()),
            org("县二中")
        );
        assert_eq!(
            holder(db::wish(&mut conn, batch.id, 14).await.unwrap()),
            None
        );
        assert_eq!(
            audit::count_action(&mut conn, "wish.claim").await.unwrap(),
            3
        );
        drop(conn);
        let texts: Vec<String> = pending_all(&e).await.into_iter().map(|m| m.text).collect();
        let all = texts.join("\n");
        assert!(all.contains("请先绑定组织"), "{all}");
        let gathered = texts.iter().find(|t| t.contains("✅ 县二中")).expect(&all);
        let pos = |s: &str| {
            gathered
                .find(s)
                .unwrap_or_else(|| panic!("{s} in {gathered}"))
        };
        assert!(pos("✅ 县一中：12") < pos("❌ 县二中：12 已被县一中认领"));
        assert!(pos("❌ 县二中：12 已被县一中认领") < pos("✅ 县三中：12"));
        assert!(
            gathered.contains("❌ 县三中：13 已被县二中认领"),
            "{gathered}"
        );
    }
}

/// Staff export: every wish with status, holder, claimer and dates.
#[tokio::test]
async fn export_xlsx() {
    for db in TestDb::both().await {
        let e = engine(&db).await;
        let mut n = 0;
        for (user, chat, kind, text) in [
            (
                "staff",
                "g1",
                ChatKind::Group,
                "/wishes publish 2026圆梦 quota 5",
            ),
            ("a", "pa", ChatKind::Private, "我是 县一中"),
            ("staff", "g1", ChatKind::Group, "同意 a"),
            ("a", "g1", ChatKind::Group, "认领 12"),
        ] {
            bounded(
                e.handle(&msg(&mut n, user, chat, kind, text, at(20, 9, 0))),
                "the engine to handle an update",
            )
            .await
            .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.xlsx");
        let written = tuanbot::service::wish_export::export(
            &e.store,
            "2026圆梦",
            &path,
            chrono_tz::Asia::Shanghai,
            "zh-CN",
        )
        .await
        .unwrap();
        assert_eq!(written, 800, "{}", db.backend);
        let table = tuanbot::table::Table::read(&path).unwrap();
        assert_eq!(table.header[0], "编号");
        assert_eq!(table.rows.len(), 800);
        let row12 = &table.rows[11].1;
        assert_eq!(row12[0], "12");
        assert_eq!(row12[3], "贾紫");
        assert_eq!(row12[7], "已认领");
        assert_eq!(row12[8], "县一中团委");
        assert_eq!(row12[9], "a");
        assert_eq!(row12[10], "2026-05-20 09:00");
        assert!(
            tuanbot::service::wish_export::export(
                &e.store,
                "没有",
                &path,
                chrono_tz::Asia::Shanghai,
                "zh-CN"
            )
            .await
            .is_err()
        );
    }
}
