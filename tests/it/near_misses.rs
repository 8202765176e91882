//! Near-misses are answered, never silent (issue 20, item 4), their
//! look-alikes stay chatter; `/help` fits a phone screen for each role and
//! `/stars` says when there is nothing to rate (item 9). Both backends.

use sqlx::Row;

use crate::helpers::{TestDb, script, texts};

/// u1 staff 小张; 小王 (u2) cadre and 小李 (u3) member of 县一中; 小赵
/// (u4) member of 县二中; 路人 (u5) asked to join 县三中; 过客 (u6) has
/// only said hello. g1 is 县一中's group.
const SCENE: &str = "\
:today 2026-03-02
:time 09:00
:admin u1
:as u2 小王
我是 县一中
:as u3 小李
我是 县一中
:as u4 小赵
我是 县二中
:as u5 路人
我是 县三中
:as u6 过客
你好
:as u1 小张
/role @u2 cadre
同意 小李
同意 小赵
:chat g1 group
/bind 县一中
";

/// The replies after the scene's last (the binding).
fn after_scene(out: &str) -> Vec<String> {
    crate::helpers::after(&texts(out), "✅ 本群已绑定到 县一中团委")
}

async fn count(db: &TestDb, sql: &'static str) -> i64 {
    let store = db.store().await;
    let n = {
        let mut conn = store.conn().await.unwrap();
        sqlx::query(sql)
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .try_get::<i64, _>(0)
            .unwrap()
    };
    store.close().await;
    n
}

/// `记录4月3日 …` is a `/log`; `/logg …` is told the closest command, in a
/// group too; chatter that looks like them gets nothing.
#[tokio::test]
async fn glued_log_and_mistyped_commands() {
    for db in TestDb::both().await {
        let b = db.backend;
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:today 2026-04-05
:as u3 小李
明天记录一下
记录一下明天的会
记录3个问题
/frobnicate
/roll@dicebot 100
/logg@otherbot 4月3日 团课
记录4月3日 团日活动 33人
/logg 4月3日 团课 20人
:chat p3 private
/repotr
/frobnicate
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        assert_eq!(t.len(), 4, "{b}: {t:#?}");
        assert!(t[0].starts_with("✅"), "{b}: {}", t[0]);
        assert_eq!(t[1], "没有 /logg 命令，是不是 /log？");
        assert_eq!(t[2], "没有 /repotr 命令，是不是 /report？");
        assert_eq!(t[3], "没有 /frobnicate 这个命令。发送 /help 查看可用命令。");
        let n = count(
            &db,
            "SELECT COUNT(*) FROM activities WHERE date = '2026-04-03' AND participants = 33",
        )
        .await;
        assert_eq!(n, 1, "{b}");
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM activities").await,
            1,
            "{b}"
        );
    }
}

/// Wishes published in g1 (县一中's group) with a quota of 2.
const WISHES: &str = "\
:as u1 小张
:file tests/fixtures/wishes.csv
/wishes import 2026圆梦
/wishes publish 2026圆梦 quota 2
:time 09:00:10
";

/// `县一中认领12` claims for the sender's org; another org's name is told
/// in one line and claims nothing; look-alikes stay chatter.
#[tokio::test]
async fn org_name_before_claim() {
    for db in TestDb::both().await {
        let b = db.backend;
        let out = script(
            &db,
            &format!(
                "{SCENE}{WISHES}\
:as u2 小王
认领的同学注意
谁认领了12号
昨天认领12个心愿
大家都认领12
县二中认领15
县一中认领12号
:time 09:00:20
"
            ),
            true,
        )
        .await;
        let t = texts(&out);
        let i = t
            .iter()
            .position(|x| x.starts_with("📣") || x.contains("认领进度"))
            .unwrap_or(0);
        let said: Vec<&String> = t[i..]
            .iter()
            .filter(|x| x.starts_with("你是") || x.starts_with("✅ 县一中") || x.contains("认领"))
            .filter(|x| !x.contains("认领进度") && !x.starts_with("🎁") && !x.starts_with("📣"))
            .collect();
        assert_eq!(
            said,
            [
                "你是县一中的，不能替县二中认领；为本组织认领请发「认领 15」。",
                "✅ 县一中：12"
            ],
            "{b}: {t:#?}"
        );
        let held = count(
            &db,
            "SELECT COUNT(*) FROM wish_holdings h JOIN orgs o ON o.id = h.org_id \
             WHERE o.short_name = '县一中'",
        )
        .await;
        assert_eq!(held, 1, "{b}");
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM wish_holdings").await,
            1,
            "{b}"
        );
    }
}

/// `报名` / `接龙` / `我报名` / `+1` with no number join the one open list;
/// `+1 小吴` brings 小吴 along (also for someone on the list already); with
/// two lists open they are asked which.
#[tokio::test]
async fn sign_ups_without_a_number() {
    for db in TestDb::both().await {
        let b = db.backend;
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:as u2 小王
/event 植树活动 3月12日 08:30 城南苗圃 名额10
报名截止了吗
大家记得接龙
+1s
+1 同意
:as u3 小李
我报名
:as u4 小赵
报名
:as u2 小王
+1 小吴
:as u3 小李
+1 小周
:time 09:05
:as u2 小王
/event 团课 3月13日 19:00 会议室 名额10
:time 09:06
:as u1 小张
接龙
"
            ),
            true,
        )
        .await;
        let t = after_scene(&out);
        let entries = count(&db, "SELECT COUNT(*) FROM event_entries WHERE event_id = 1").await;
        assert_eq!(entries, 3, "{b}: {t:#?}");
        let companion = count(
            &db,
            "SELECT COUNT(*) FROM event_entries e JOIN people p ON p.id = e.person_id \
             WHERE e.event_id = 1 AND e.note = '小吴' AND p.display_name = '小王'",
        )
        .await;
        assert_eq!(companion, 1, "{b}");
        // Someone on the list already brings a companion along.
        let along = count(
            &db,
            "SELECT COUNT(*) FROM event_entries e JOIN people p ON p.id = e.person_id \
             WHERE e.event_id = 1 AND e.note = '小周' AND p.display_name = '小李'",
        )
        .await;
        assert_eq!(along, 1, "{b}");
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM event_entries").await,
            3,
            "{b}"
        );
        let last = t.last().unwrap();
        assert_eq!(
            last, "这个群有几个报名在进行，请写上编号：\n「报名 2」— 团课\n「报名 1」— 植树活动",
            "{b}: {t:#?}"
        );
        // The look-alikes said nothing: the first reply after the list is
        // the gathered list with the sign-ups.
        assert!(
            t[0].starts_with("📝 报名 #1｜植树活动（0/10）"),
            "{b}: {t:#?}"
        );
        assert!(t[1].starts_with("📝 报名 #1｜植树活动"), "{b}: {t:#?}");
        assert!(t[1].contains("小吴"), "{b}: {}", t[1]);
    }
}

/// `/help` per role, in a group and in private: at most 12 lines, no escape
/// sequences, only what the person may use; `/help 全部` the rest.
#[tokio::test]
async fn help_fits_and_matches_the_role() {
    for db in TestDb::both().await {
        let b = db.backend;
        let mut body = String::new();
        for chat in [":chat g1 group", ":chat p9 private"] {
            for who in ["u6 过客", "u5 路人", "u3 小李", "u2 小王", "u1 小张"] {
                body.push_str(&format!("{chat}\n:as {who}\n/help\n"));
            }
        }
        body.push_str(":chat g1 group\n:as u2 小王\n/help 全部\n:as u3 小李\n帮助 全部\n");
        let out = script(&db, &format!("{SCENE}{body}"), true).await;
        let t = after_scene(&out);
        let helps: Vec<&String> = t.iter().filter(|x| x.starts_with("📖")).collect();
        assert_eq!(helps.len(), 12, "{b}: {t:#?}");
        for h in &helps[..10] {
            assert!(
                h.lines().count() <= 12,
                "{b}: {} lines:\n{h}",
                h.lines().count()
            );
            assert!(!h.contains('\\'), "{b}: {h}");
            assert!(h.contains("/help all"), "{b}: {h}");
        }
        for (i, h) in helps[..10].iter().enumerate() {
            let group = i < 5;
            match i % 5 {
                // Stranger: how to join; nothing a member does.
                0 => {
                    assert!(h.contains("未加入组织"), "{b}: {h}");
                    assert!(h.contains("第一步"), "{b}: {h}");
                    assert!(!h.contains("/log"), "{b}: {h}");
                    assert!(!h.contains("报名 3"), "{b}: {h}");
                }
                // Pending: what happens next.
                1 => {
                    assert!(h.contains("⏳ 你申请加入 县三中"), "{b}: {h}");
                    assert!(!h.contains("/log"), "{b}: {h}");
                }
                // Member: may log, sign up and claim; no cadre's commands.
                2 => {
                    assert!(h.contains("记录 /log"), "{b}: {h}");
                    assert!(h.contains("报名 3"), "{b}: {h}");
                    assert!(!h.contains("/notice"), "{b}: {h}");
                    assert!(!h.contains("/stats"), "{b}: {h}");
                }
                // Cadre: the org's work; bind only in a group.
                3 => {
                    assert!(h.contains("/notice"), "{b}: {h}");
                    assert!(h.contains("同意 3"), "{b}: {h}");
                    assert!(!h.contains("/role"), "{b}: {h}");
                    assert_eq!(h.contains("绑定 /bind"), group, "{b}: {h}");
                }
                // Staff: the county's work.
                _ => {
                    assert!(h.contains("/role"), "{b}: {h}");
                    assert!(h.contains("/wishes publish"), "{b}: {h}");
                    assert_eq!(h.contains("/bind 全县"), group, "{b}: {h}");
                }
            }
        }
        // All of a cadre's commands; all of a member's, still not a cadre's.
        let all = helps[10];
        assert!(all.contains("/members"), "{b}: {all}");
        assert!(all.contains("/invite"), "{b}: {all}");
        assert!(!all.contains("/role"), "{b}: {all}");
        assert!(!helps[3].contains("/members"), "{b}: {}", helps[3]);
        let member_all = helps[11];
        assert!(member_all.contains("我的记录 /mine"), "{b}: {member_all}");
        assert!(!member_all.contains("/notice"), "{b}: {member_all}");
    }
}

/// `/stars` with no records says so; a year starts with the county's first
/// record, so the months before it are not missed months.
#[tokio::test]
async fn stars_empty_and_late_start() {
    for db in TestDb::both().await {
        let b = db.backend;
        let body = "\
:chat p1 private
:as u1 小张
/stars
/stars 县一中
:today 2026-05-20
:chat g1 group
:as u2 小王
/log 3月5日 支委会 7人
/stars 本年
";
        let out = script(&db, &format!("{SCENE}{body}"), true).await;
        let t = after_scene(&out);
        assert_eq!(
            t[0],
            "暂无记录。用「/log 3月5日 团课 30人」记录活动后再来看星级。"
        );
        assert_eq!(t[1], t[0], "{b}");
        let stars = t.last().unwrap();
        assert!(stars.starts_with("⭐ 县一中："), "{b}: {stars}");
        assert!(
            stars.contains("（2026-03-01 至 2026-05-20）"),
            "{b}: {stars}"
        );
        assert!(stars.contains("支委会 1/3 个月"), "{b}: {stars}");
    }
}
