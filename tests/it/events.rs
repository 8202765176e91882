//! Sign-up lists: the console flow, permissions, the close and reminder
//! jobs, and the waitlist under concurrent joins and leaves.

use chrono::{TimeZone, Utc};
use sqlx::Row;
use tuanbot::chat::Incoming;
use tuanbot::domain::{ChatKind, Platform, Role};
use tuanbot::engine::Engine;

use crate::helpers::{Scene, TestDb, bounded, join_all, make_member, scene, script, texts};

const SCENE: &str = "\
:today 2026-03-02
:admin u1
:as u2 小王
我是 县一中
:as u3 小李
我是 县一中
:as u4 小赵
我是 县二中
:as u1 小张
/role @u2 cadre
同意 小李
同意 小赵
:chat g1 group
/bind 县一中
";

/// The messages after the scene's (the last is the binding).
fn after_scene(out: &str) -> Vec<String> {
    crate::helpers::after(&texts(out), "✅ 本群已绑定到 县一中团委")
}

#[tokio::test]
async fn sign_up_list_flow() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:as u2 小王
/event 植树活动 3月12日 08:30 城南苗圃 名额2 截止 3月10日18:00
报名 1
报名 1
:as u3 小李
+1
:as u4 小赵
接龙 1 带2人
:time 09:01
:as u2 小王
取消报名 1
取消报名 1
/event 1
:as u4 小赵
/event close 1
:as u3 小李
/event 植树 明天 操场 名额5
报名 9
:today 2026-03-10
:time 18:00
:as u4 小赵
报名 1
:today 2026-03-11
:time 09:00
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        let b = db.backend;
        assert!(
            t[0].starts_with(
                "📝 报名 #1｜植树活动（0/2）\n🕘 3月12日 08:30 · 📍 城南苗圃 · 截止 3月10日 18:00"
            ),
            "{b}: {t:#?}"
        );
        assert_eq!(t[1], "小王 已经报过 #1 了。");
        // One gathered list for the three joins.
        assert!(t[2].starts_with("📝 报名 #1｜植树活动（2/2）"), "{t:#?}");
        assert!(
            t[2].contains("1. 小王\n2. 小李\n候补（1）：\n1. 小赵（带2人）"),
            "{}",
            t[2]
        );
        assert_eq!(t[3], "已取消报名 #1「植树活动」。");
        assert_eq!(t[4], "🎉 小赵 候补转正，已报名 #1「植树活动」。");
        assert_eq!(t[5], "你没有报名 #1。");
        assert!(
            t[6].contains("（2/2）") && t[6].contains("1. 小李\n2. 小赵（带2人）"),
            "{}",
            t[6]
        );
        assert_eq!(
            t[7],
            "报名 #1 不是你发起的，只有发起人和团县委工作人员可以截止。"
        );
        assert_eq!(t[8], "只有团干部和团县委工作人员可以发起报名。");
        assert_eq!(t[9], "没有 #9 号报名。");
        // The deadline job closes the list and posts it once more.
        assert!(t[10].ends_with("🔒 报名已截止。"), "{}", t[10]);
        assert_eq!(t[11], "报名 #1 已截止。");
        assert!(
            t[12].starts_with("⏰ 明天的活动：#1「植树活动」3月12日 08:30 · 城南苗圃，已报名 2 人"),
            "{}",
            t[12]
        );
        assert_eq!(t.len(), 13, "{t:#?}");

        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let rows = sqlx::query("SELECT payload FROM outbox")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let reminder = rows
            .iter()
            .map(|r| {
                serde_json::from_str::<tuanbot::chat::Outgoing>(
                    &r.try_get::<String, _>("payload").unwrap(),
                )
                .unwrap()
            })
            .find(|m| m.text.starts_with("⏰ 明天"))
            .unwrap();
        assert_eq!(
            reminder.mention_users,
            vec!["u3".to_string(), "u4".to_string()]
        );
    }
}

fn private(user: &str, text: &str, n: usize) -> Incoming {
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap();
    Incoming::text(
        Platform::Telegram,
        format!("{user}-{n}"),
        user,
        ChatKind::Private,
        user,
        text,
        at,
    )
}

/// (user ids in, user ids waiting) in list order.
async fn list(engine: &Engine) -> (Vec<String>, Vec<String>) {
    let mut conn = engine.store.conn().await.unwrap();
    let rows = sqlx::query(
        "SELECT p.user_id, e.waiting FROM event_entries e JOIN people p ON p.id = e.person_id \
         ORDER BY e.waiting, e.id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut inn = Vec::new();
    let mut wait = Vec::new();
    for r in rows {
        let u: String = r.try_get("user_id").unwrap();
        if r.try_get::<i64, _>("waiting").unwrap() == 0 {
            inn.push(u);
        } else {
            wait.push(u);
        }
    }
    (inn, wait)
}

/// 20 people join a 5-place list at once, then the 5 who got in and 3 of
/// the waiting leave at once: never more than 5 in, and those who move up
/// are the earliest waiting, each once.
#[tokio::test]
async fn waitlist_under_concurrent_joins_and_leaves() {
    for db in TestDb::both().await {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap();
        let Scene { engine, .. } = scene(&db, t0, "telegram:boss", true).await;
        engine
            .handle(&private(
                "boss",
                "/event 志愿服务 3月8日 09:00 广场 名额5",
                0,
            ))
            .await
            .unwrap();
        // A staff member's list from a private chat goes county-wide; with no
        // bound group it is refused, so post it from a group instead.
        let mut m = private("boss", "/event 志愿服务 3月8日 09:00 广场 名额5", 1);
        m.chat_id = "g".into();
        m.chat_kind = ChatKind::Group;
        bounded(engine.handle(&m), "the engine to handle an update")
            .await
            .unwrap();

        let users: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
        for u in &users {
            make_member(&engine.store, Platform::Telegram, u, "县一中", Role::Member).await;
        }
        let joins = users.iter().map(|u| {
            let e = engine.clone();
            let msg = private(u, "报名 1", 1);
            tokio::spawn(async move {
                bounded(e.handle(&msg), "the engine to handle an update")
                    .await
                    .unwrap()
            })
        });
        join_all(joins.collect(), "20 concurrent joins").await;
        let (inn, wait) = list(&engine).await;
        assert_eq!(inn.len(), 5, "{}: {inn:?}", db.backend);
        assert_eq!(wait.len(), 15);

        let mut leavers: Vec<String> = inn.clone();
        leavers.extend(wait[0..3].iter().cloned());
        let expected_in: Vec<String> = wait[3..8].to_vec();
        let leaves = leavers.iter().map(|u| {
            let e = engine.clone();
            let msg = private(u, "取消报名 1", 2);
            tokio::spawn(async move {
                bounded(e.handle(&msg), "the engine to handle an update")
                    .await
                    .unwrap()
            })
        });
        join_all(leaves.collect(), "8 concurrent leaves").await;
        let (inn, wait) = list(&engine).await;
        let mut got = inn.clone();
        got.sort();
        let mut want = expected_in.clone();
        want.sort();
        assert_eq!(got, want, "{}", db.backend);
        assert_eq!(wait.len(), 7);
        let mut conn = engine.store.conn().await.unwrap();
        let promoted: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE payload LIKE '%候补转正%'")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert!(promoted >= 5, "each promotion is told: {promoted}");
    }
}

/// `tuanbot export event N FILE.xlsx` writes the list, waitlist included.
#[tokio::test]
async fn export_event_to_xlsx() {
    for db in TestDb::both().await {
        script(
            &db,
            &format!(
                "{SCENE}\
:as u2 小王
/event 团课 3月12日 14:00 会议室 名额1
报名 1 带本子
:as u3 小李
报名 1
"
            ),
            true,
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("event.xlsx");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tuanbot"))
            .env_remove("TELOXIDE_TOKEN")
            .env("TUANBOT_DATABASE_URL", &db.url)
            .current_dir(std::env::temp_dir())
            .args(["export", "event", "1"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {out:?}", db.backend);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            stdout.starts_with("✅ 已导出报名 #1「团课」：2 人"),
            "{stdout}"
        );
        let table = tuanbot::table::Table::read(&file).unwrap();
        assert_eq!(
            table.header,
            ["序号", "姓名", "组织", "状态", "备注", "报名时间"]
        );
        let rows: Vec<Vec<String>> = table.rows.into_iter().map(|(_, r)| r).collect();
        assert_eq!(rows[0][1..5], ["小王", "县一中", "已报名", "带本子"]);
        assert_eq!(rows[1][1..4], ["小李", "县一中", "候补"]);
        assert!(rows[0][5].starts_with("2026-03-02 09:00"), "{:?}", rows[0]);

        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tuanbot"))
            .env("TUANBOT_DATABASE_URL", &db.url)
            .current_dir(std::env::temp_dir())
            .args(["export", "event", "9"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("没有 #9 号报名"));
    }
}

/// A list posted by staff from the county-wide group goes to every bound
/// group, with one capacity shared by all of them.
#[tokio::test]
async fn county_wide_list_shares_its_capacity() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:chat g2 group
:as u1 小张
/bind 县二中
:chat tgl group
/bind 全县
/event 全县团干培训 3月20日 9:00 县委党校 名额2
:chat g1 group
:as u2 小王
报名 1
:chat g2 group
:as u4 小赵
报名 1
:as u3 小李
报名 1
:time 09:01
/event 1
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        let posted: Vec<&String> = t
            .iter()
            .filter(|l| l.starts_with("📝 报名 #1｜全县团干培训（0/2）"))
            .collect();
        assert_eq!(posted.len(), 3, "{}: {t:#?}", db.backend);
        let last = t.last().unwrap();
        assert!(
            last.contains("（2/2）") && last.contains("1. 小王\n2. 小赵\n候补（1）：\n1. 小李"),
            "{last}"
        );
    }
}
