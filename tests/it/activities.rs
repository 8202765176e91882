//! Activity logging in chat: /log, /undo, /edit, /stats, /mine, photos.

use tuanbot::store::{activities, audit};

use crate::helpers::{TestDb, script, texts};

/// u1 小王 cadre of 县一中 with group g1 bound to it; u2 小李 member of 县二中
/// (approved by staff); zhang staff. Today is Tuesday 2026-03-10.
const SCENE: &str = "\
:today 2026-03-10
:time 09:00
:admin zhang
:as u1 小王
我是 县一中
:as u2 小李
我是 县二中
:as zhang 团县委小张
/role @u1 团干部
同意 小李
:chat g1 group
/bind 县一中
:as u1 小王
";

async fn run(db: &TestDb, body: &str) -> Vec<String> {
    let out = script(db, &format!("{SCENE}{body}"), true).await;
    let all = texts(&out);
    // After the scene's messages, the last of which is the binding.
    crate::helpers::after(&all, "✅ 本群已绑定到 县一中团委")
}

async fn live_count(db: &TestDb) -> usize {
    let store = db.store().await;
    let mut conn = store.conn().await.unwrap();
    let f = activities::Filter {
        from: "2000-01-01",
        to: "2100-01-01",
        org_id: None,
    };
    activities::list(&mut conn, &f).await.unwrap().len()
}

#[tokio::test]
async fn log_in_a_bound_group_gives_a_card() {
    for db in TestDb::both().await {
        let t = run(&db, "/log 3月5日 学雷锋志愿服务 45人 90小时 三里铺\n").await;
        assert_eq!(
            t[0],
            "✅ 已记录 #1 · 县一中\n3月5日（周四）· 志愿服务 · 学雷锋志愿服务\n45人 · 90小时 · 三里铺\n有误？/undo 撤销，或 /edit 1 人数 50",
            "{}",
            db.backend
        );
        assert_eq!(live_count(&db).await, 1);
    }
}

#[tokio::test]
async fn missing_date_future_date_and_several_lines() {
    for db in TestDb::both().await {
        let t = run(
            &db,
            "/log 学雷锋 45人\n/log 3月16日 团课\n/log 3月8日 团课《青年与信仰》 团员32名\\n3月9日 支委会 5人参加\\n3月20日 主题团日\n",
        )
        .await;
        assert!(
            t[0].starts_with("✅ 已记录 #1 · 县一中（未写日期，按今天记录）\n3月10日（周二）"),
            "{}: {}",
            db.backend,
            t[0]
        );
        assert_eq!(
            t[1],
            "⚠️ 日期 3月16日（周一） 还没到，/log 只记已开展的活动。要预告活动，用 /event。"
        );
        assert!(
            t[2].starts_with("✅ 已记录 2 条 · 县一中\n#2 3月8日（周日） 团课"),
            "{}",
            t[2]
        );
        assert!(t[2].contains("#3 3月9日（周一） 支委会"), "{}", t[2]);
        assert!(t[2].contains("⚠️ 日期 3月20日（周五） 还没到"), "{}", t[2]);
        assert_eq!(live_count(&db).await, 3, "the future line recorded nothing");
    }
}

/// Every live record: (date, category, participants, source text, quantities).
async fn stored(db: &TestDb) -> Vec<(String, String, Option<i64>, String, Vec<(f64, String)>)> {
    let store = db.store().await;
    let mut conn = store.conn().await.unwrap();
    let f = activities::Filter {
        from: "2000-01-01",
        to: "2100-01-01",
        org_id: None,
    };
    let mut list = activities::list(&mut conn, &f).await.unwrap();
    list.sort_by_key(|a| a.id);
    list.into_iter()
        .map(|a| {
            let q = a
                .quantities
                .iter()
                .map(|q| (q.count, q.unit.clone()))
                .collect();
            (a.date, a.category, a.participants, a.source_text, q)
        })
        .collect()
}

#[tokio::test]
async fn several_activities_in_one_message_are_several_records() {
    for db in TestDb::both().await {
        let t = run(
            &db,
            "/log 3月3日团课32人，3月4日支委会7人；3月6日团小组会12人\n\
/log 3月7日团课30人，同日召开支委会5人\n\
/log 团课20人；支委会6人\n\
",
        )
        .await;
        let b = db.backend;
        assert_eq!(
            t[0],
            "✅ 已记录 3 条 · 县一中\n\
#1 3月3日（周二） 团课 32人\n\
#2 3月4日（周三） 支委会 7人\n\
#3 3月6日（周五） 团小组会 12人\n\
有误？/undo 编号 撤销，或 /edit 3 人数 50",
            "{b}"
        );
        assert!(
            t[1].starts_with(
                "✅ 已记录 2 条 · 县一中\n#4 3月7日（周六） 团课 30人\n#5 3月7日（周六） 支委会 5人"
            ),
            "{b}: {}",
            t[1]
        );
        assert!(
            t[2].starts_with(
                "✅ 已记录 2 条 · 县一中（未写日期，按今天记录）\n#6 3月10日（周二） 团课 20人"
            ),
            "{b}: {}",
            t[2]
        );
        let rows = stored(&db).await;
        let got: Vec<(&str, &str, Option<i64>, &str)> = rows
            .iter()
            .map(|(d, c, p, src, _)| (d.as_str(), c.as_str(), *p, src.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("2026-03-03", "团课", Some(32), "3月3日团课32人"),
                ("2026-03-04", "支委会", Some(7), "3月4日支委会7人"),
                ("2026-03-06", "团小组会", Some(12), "3月6日团小组会12人"),
                ("2026-03-07", "团课", Some(30), "3月7日团课30人"),
                ("2026-03-07", "支委会", Some(5), "同日召开支委会5人"),
                ("2026-03-10", "团课", Some(20), "团课20人"),
                ("2026-03-10", "支委会", Some(6), "支委会6人"),
            ],
            "{b}"
        );
        assert!(
            rows.iter().all(|r| r.4.is_empty()),
            "{b}: no counts: {rows:?}"
        );
    }
}

#[tokio::test]
async fn an_impossible_date_is_refused_and_nothing_is_stored() {
    for db in TestDb::both().await {
        let t = run(
            &db,
            "/log 2月30日 团课 20人\n\
/log 4月31日 主题团日 30人\n\
/log 13月2日 团课 20人\n\
/log 2月29日 团课 20人\n\
/log 3月3日团课32人，2月30日支委会7人\n\
/log 学雷锋 45人\n\
",
        )
        .await;
        let b = db.backend;
        assert_eq!(
            t[0], "⚠️ 日期不对：2月没有30日。这条没有记录，请改正日期后重发。",
            "{b}"
        );
        assert_eq!(
            t[1],
            "⚠️ 日期不对：4月没有31日。这条没有记录，请改正日期后重发。"
        );
        assert_eq!(
            t[2],
            "⚠️ 日期不对：没有13月。这条没有记录，请改正日期后重发。"
        );
        assert_eq!(
            t[3],
            "⚠️ 日期不对：2026年不是闰年，2月没有29日。这条没有记录，请改正日期后重发。"
        );
        assert_eq!(t[4], t[0], "one bad part refuses the whole message");
        // no date written: today, and the reply says so
        assert!(
            t[5].starts_with("✅ 已记录 #1 · 县一中（未写日期，按今天记录）\n3月10日（周二）"),
            "{b}: {}",
            t[5]
        );
        assert_eq!(live_count(&db).await, 1, "{b}");
    }
}

#[tokio::test]
async fn head_counts_written_with_ge_and_renci_are_participants() {
    for db in TestDb::both().await {
        let t = run(
            &db,
            "/log 3月5日 学雷锋 45个人\n\
/log 3月6日 帮扶慰问 发放物资20个\n\
/log 3月7日 团课 参训120人次\n\
",
        )
        .await;
        let b = db.backend;
        assert!(t[0].contains("\n45人"), "{b}: {}", t[0]);
        assert!(!t[0].contains("人数未写"), "{b}: {}", t[0]);
        let rows = stored(&db).await;
        assert_eq!(rows[0].2, Some(45), "{b}");
        assert!(rows[0].4.is_empty(), "{b}: {:?}", rows[0]);
        assert_eq!(rows[1].2, None, "{b}");
        assert_eq!(rows[1].4, vec![(20.0, "个".to_string())], "{b}");
        assert_eq!(rows[2].2, Some(120), "{b}");
    }
}

#[tokio::test]
async fn a_duplicate_is_asked_about() {
    for db in TestDb::both().await {
        let t = run(
            &db,
            "/log 3月5日 团课 30人\n/log 3月5日 团课 30人\n取消\n/log 3月5日 团课 30人\n确认\n",
        )
        .await;
        assert!(
            t[1].starts_with("10 分钟内已记过 #1「团课」"),
            "{}: {}",
            db.backend,
            t[1]
        );
        assert_eq!(t[2], "好的，已取消。");
        assert!(t[3].starts_with("10 分钟内已记过 #1"), "{}", t[3]);
        assert!(t[4].starts_with("✅ 已记录 #2"), "{}", t[4]);
        assert_eq!(live_count(&db).await, 2);
    }
}

#[tokio::test]
async fn undo_and_edit_with_permissions() {
    for db in TestDb::both().await {
        let t = run(
            &db,
            "/log 3月5日 学雷锋志愿服务 45人\n\
/edit 1 人数 50\n\
/edit 1 地点 三里铺村\n\
/edit 1 类别 宣传\n\
/edit 1 日期 3月20日\n\
/edit 1 人数 很多\n\
:as u2 小李\n\
/edit 1 人数 5\n\
/undo 1\n\
/undo\n\
:as zhang 团县委小张\n\
/edit 1 标题 学雷锋月志愿服务\n\
:as u1 小王\n\
/undo\n\
/undo 1\n\
/edit 99 人数 1\n",
        )
        .await;
        assert_eq!(t[1], "✏️ #1 人数：45 → 50", "{}", db.backend);
        assert_eq!(t[2], "✏️ #1 地点：（空） → 三里铺村");
        assert_eq!(t[3], "✏️ #1 类别：志愿服务 → 宣传");
        assert_eq!(t[4], "日期还没到，/log 只记已开展的活动。");
        assert_eq!(t[5], "请写一个数字，如「50」。");
        assert!(
            t[6].starts_with("#1 不是你记的"),
            "member of another org: {}",
            t[6]
        );
        assert!(t[7].starts_with("#1 不是你记的"), "{}", t[7]);
        assert!(t[8].starts_with("24 小时内你没有记过活动"), "{}", t[8]);
        assert_eq!(
            t[9], "✏️ #1 标题：学雷锋志愿服务 → 学雷锋月志愿服务",
            "staff edit any"
        );
        assert_eq!(
            t[10],
            "↩️ 已撤销 #1「学雷锋月志愿服务」（3月5日（周四））。"
        );
        assert!(t[11].starts_with("没有第 1 条记录"), "{}", t[11]);
        assert!(t[12].starts_with("没有第 99 条记录"), "{}", t[12]);
        assert_eq!(live_count(&db).await, 0);
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        assert_eq!(
            audit::count_action(&mut conn, "activity.edit")
                .await
                .unwrap(),
            4
        );
        assert_eq!(
            audit::count_action(&mut conn, "activity.undo")
                .await
                .unwrap(),
            1
        );
    }
}

#[tokio::test]
async fn who_records_for_whom() {
    for db in TestDb::both().await {
        let t = run(
            &db,
            ":chat p2 private\n:as u9 新人\n/log 3月5日 团课 10人\n\
:as u2 小李\n/log 3月5日 团课 10人\n/log 县一中 3月5日 团课 11人\n\
:as zhang 团县委小张\n/log 3月5日 团课 12人\n/log 县三中 3月5日 团课 13人\n",
        )
        .await;
        assert_eq!(
            t[0], "请先绑定组织：发送「我是 组织名」，如「我是 县一中」。",
            "{}",
            db.backend
        );
        assert!(
            t[1].starts_with("✅ 已记录 #1 · 县二中"),
            "private chat: sender's org: {}",
            t[1]
        );
        assert!(t[2].starts_with("只能为本组织记录活动"), "{}", t[2]);
        assert!(
            t[3].starts_with("请写明组织"),
            "staff without org: {}",
            t[3]
        );
        assert!(
            t[4].starts_with("✅ 已记录 #2 · 县三中"),
            "staff names the org: {}",
            t[4]
        );
    }
}

/// Staff in the county group (or any group bound to no org) log for
/// 团县委 unless they name an org; members there still log for their own
/// org, as before.
#[tokio::test]
async fn staff_in_the_county_group_log_for_the_county_committee() {
    for db in TestDb::both().await {
        let t = run(
            &db,
            ":as zhang 团县委小张\n:chat tgl group\n绑定 全县\n\
/log 3月5日 团课 12人\n/log 县三中 3月5日 团课 13人\n\
:chat g9 group\n/log 3月6日 支委会 5人\n\
:chat tgl group\n:as u2 小李\n/log 3月5日 团课 10人\n",
        )
        .await;
        let b = db.backend;
        assert!(t[0].contains("全县"), "{b}: the binding: {}", t[0]);
        assert!(
            t[1].starts_with("✅ 已记录 #1 · 团县委"),
            "{b}: staff in the county group: {}",
            t[1]
        );
        assert!(
            t[2].starts_with("✅ 已记录 #2 · 县三中"),
            "{b}: staff names the org: {}",
            t[2]
        );
        assert!(
            t[3].starts_with("✅ 已记录 #3 · 团县委"),
            "{b}: staff in an unbound group: {}",
            t[3]
        );
        assert!(
            t[4].starts_with("✅ 已记录 #4 · 县二中"),
            "{b}: a member logs for their org: {}",
            t[4]
        );
        assert_eq!(t.len(), 5, "{b}: {t:#?}");
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let committee = crate::helpers::org_id(&store, "团县委").await;
        let a1 = activities::get(&mut conn, 1).await.unwrap().unwrap();
        let a3 = activities::get(&mut conn, 3).await.unwrap().unwrap();
        assert_eq!((a1.org_id, a3.org_id), (committee, committee), "{b}");
    }
}

#[tokio::test]
async fn photos_attach_by_caption_or_reply_to_the_card() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            &format!("{SCENE}:photo p1.jpg\n/log 3月5日 团课 30人\n/log 3月6日 支委会 5人\n:photo p2.jpg\n:reply 8\n📷\n"),
            true,
        )
        .await;
        let t = texts(&out);
        assert_eq!(
            t.last().unwrap(),
            "📷 照片已添加到 #2。",
            "{}: {t:?}",
            db.backend
        );
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let a1 = activities::get(&mut conn, 1).await.unwrap().unwrap();
        let a2 = activities::get(&mut conn, 2).await.unwrap().unwrap();
        assert_eq!((a1.photos, a2.photos), (1, 1));
    }
}

#[tokio::test]
async fn stats_and_mine() {
    for db in TestDb::both().await {
        let t = run(
            &db,
            "/log 3月5日 学雷锋志愿服务 45人 90小时 三里铺\n\
/log 3月6日 综治宣传 发放宣传材料2000份\n\
/log 2月20日 团课 30人\n\
/stats\n\
/stats 2026-02\n\
/mine\n\
:as zhang 团县委小张\n\
:chat tgl group\n\
/bind 全县\n\
/stats 本月\n\
/stats 县二中\n",
        )
        .await;
        assert_eq!(
            t[3],
            "📊 县一中 · 2026年3月1日–2026年3月10日\n共 2 次活动 · 参与 45 人次 · 志愿服务 90 小时\n· 志愿服务 1 次 · 45人次 · 90小时\n· 宣传 1 次\n数量：2000份",
            "{}",
            db.backend
        );
        assert!(
            t[4].contains("共 1 次活动 · 参与 30 人次")
                && t[4].contains("2026年2月1日–2026年2月28日"),
            "{}",
            t[4]
        );
        assert!(
            t[5].starts_with("🗂 你最近记的活动：\n#3 2月20日（周五） 团课 30人\n#2 3月6日"),
            "{}",
            t[5]
        );
        assert!(
            t[7].starts_with("📊 全县 · 2026年3月1日–2026年3月10日\n共 2 次活动"),
            "{}",
            t[7]
        );
        assert!(t[7].contains("  县一中：2 次 · 45 人次"), "{}", t[7]);
        assert!(
            t[7].contains("⚠️ 没有记录的组织（52 个）：县二中、县三中"),
            "{}",
            t[7]
        );
        assert!(
            t[8].starts_with("📊 县二中 · ")
                && t[8].ends_with("这段时间还没有记录活动。\n还没有记录过活动：用 /log 记录，如「/log 3月5日 团课 20人」。"),
            "{}",
            t[8]
        );
    }
}

#[tokio::test]
async fn bad_input_records_nothing() {
    for db in TestDb::both().await {
        let long = "团课".repeat(2500);
        let t = run(
            &db,
            &format!("/log 😀😀😀\n/log {long}\n/log '; DROP TABLE activities; --\n/log\n"),
        )
        .await;
        assert!(
            t[0].starts_with("用法：/log"),
            "{}: emoji only: {}",
            db.backend,
            t[0]
        );
        assert!(t[1].starts_with("消息太长"), "{}", t[1]);
        assert_eq!(t[3], t[0], "bare /log");
        // SQL text is just text: recorded as an 其他 activity named by its words, or refused; never executed.
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        assert!(tuanbot::store::orgs::count(&mut conn).await.unwrap() == 54);
    }
}

/// Every command reads the county from the same words: `/stats`, `/report`
/// and `/bind` agree on 全县, 所有, 团干联盟 …
#[tokio::test]
async fn county_words_are_one_list() {
    for db in TestDb::both().await {
        let t = run(
            &db,
            "/log 3月5日 学雷锋志愿服务 45人 90小时 三里铺\n\
:as zhang 团县委小张\n\
:chat zhang private\n\
/stats 所有 本月\n\
/stats 上月 团干联盟\n\
/report 全体 上周\n\
:chat tgl group\n\
/bind 全部\n",
        )
        .await;
        let b = db.backend;
        assert!(t[1].starts_with("📊 全县 · 2026年3月1日–"), "{b}: {}", t[1]);
        assert!(t[2].starts_with("📊 全县 · 2026年2月1日–"), "{b}: {}", t[2]);
        assert!(
            t[3].starts_with("📊 全县 工作总结（2026-03-02 至 2026-03-08）"),
            "{b}: {}",
            t[3]
        );
        assert_eq!(t[4], "✅ 本群已设为全县团干群（团县委）。", "{b}");
    }
}

/// An empty period points at the latest records and how to ask for them:
/// `/stats` in April right after logging a day in March.
#[tokio::test]
async fn an_empty_period_points_at_the_latest_records() {
    for db in TestDb::both().await {
        let body = "\
:as u1 小王
/log 3月5日 团课 20人
:today 2026-04-02
/stats
/stats 2025年
";
        let out = script(&db, &format!("{SCENE}{body}"), true).await;
        let t = texts(&out);
        let t = &t[t.len() - 2..];
        let b = db.backend;
        assert!(t[0].contains("这段时间还没有记录活动。"), "{b}: {}", t[0]);
        assert!(
            t[0].contains("最近一条记录在 2026年3月5日，发「/stats 3月」查看那段时间。"),
            "{b}: {}",
            t[0]
        );
        assert!(t[1].contains("「/stats 3月」"), "{b}: {}", t[1]);
    }
}
