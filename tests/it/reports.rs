//! Work summary (工作总结): figures from a seeded term checked against
//! independent queries, the Markdown draft snapshot, `/report` in chat with
//! its permissions, and the wishes section on tables shaped like the wishes
//! feature's (its migration is on another branch).

use chrono::{NaiveDate, TimeZone, Utc};
use sqlx::Row;
use tuanbot::report::{self, Scope};
use tuanbot::store::{Store, ms, orgs};

use crate::helpers::{TestDb, script, texts};

/// u1 staff 小张; 小王 (u2) cadre and 小李 (u3) member of 县一中; 小赵 (u4)
/// cadre of 县二中. g1 is 县一中's group, g2 县二中's. A notice to both orgs
/// on 3月2日 (deadline 3月6日 18:00): 县一中 acks at once, 县二中 never.
/// Then a term of activities, one of them undone.
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
:as u1 小张
/role @u2 cadre
/role @u4 cadre
同意 小李
:chat g1 group
/bind 县一中
:chat g2 group
/bind 县二中
:chat p1 private
/notice 县一中、县二中 周五团课\\n请各支部组织团课 截止 3月6日18:00
确认
:chat g1 group
:as u3 小李
收到
:today 2026-03-20
:as u2 小王
/log 3月5日 学雷锋志愿服务 45人 90小时 三里铺
/log 3月12日 义务植树 1000余人 三里铺 植树5500株
/log 3月15日 团课 32人
/log 3月16日 团课 10人
/undo
:chat g2 group
:as u4 小赵
/log 3月10日 主题团日 20人
/log 2月10日 团课 15人
";

async fn seeded() -> Vec<TestDb> {
    let mut dbs = Vec::new();
    for db in TestDb::both().await {
        script(&db, SCENE, true).await;
        dbs.push(db);
    }
    dbs
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn now_ms() -> i64 {
    ms(Utc.with_ymd_and_hms(2026, 3, 31, 4, 0, 0).unwrap())
}

async fn county(store: &Store, from: &str, to: &str) -> report::Report {
    let mut conn = store.conn().await.unwrap();
    report::build(
        &mut conn,
        store.backend(),
        chrono_tz::Asia::Shanghai,
        &Scope::County,
        d(from),
        d(to),
        report::Judged::new(now_ms()),
    )
    .await
    .unwrap()
}

async fn one(store: &Store, sql: &str) -> i64 {
    let mut conn = store.conn().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

#[tokio::test]
async fn figures_match_independent_queries() {
    for db in seeded().await {
        let store = db.store().await;
        let r = county(&store, "2026-03-01", "2026-03-31").await;
        let live = "FROM activities WHERE deleted_at IS NULL AND date >= '2026-03-01' AND date <= '2026-03-31'";
        assert_eq!(
            r.records,
            one(&store, &format!("SELECT COUNT(*) {live}")).await
        );
        assert_eq!(
            r.participants,
            one(
                &store,
                &format!("SELECT CAST(COALESCE(SUM(participants), 0) AS BIGINT) {live}")
            )
            .await
        );
        assert_eq!(
            r.hours.round() as i64,
            one(
                &store,
                &format!("SELECT CAST(COALESCE(SUM(hours), 0) AS BIGINT) {live}")
            )
            .await
        );
        for c in &r.categories {
            let n = one(
                &store,
                &format!("SELECT COUNT(*) {live} AND category = '{}'", c.category),
            )
            .await;
            assert_eq!(c.records, n, "{} {}", db.backend, c.category);
        }
        // Hand-checked: four live records in March (the undone one and the
        // February one do not count), 1000 + 45 + 32 + 20 people.
        assert_eq!((r.records, r.participants), (4, 1097), "{}", db.backend);
        let cats: Vec<(&str, i64)> = r
            .categories
            .iter()
            .map(|c| (c.category.as_str(), c.records))
            .collect();
        assert_eq!(cats, [("志愿服务", 2), ("主题团日", 1), ("团课", 1)]);
        // Notable: the largest first, with its counted things.
        let top = &r.categories[0].notable[0];
        assert_eq!(
            report::notable_sentence(top, "zh-CN"),
            "3月12日，县一中组织团员青年1000余人在三里铺开展义务植树，树5500株"
        );
        // Notices: one notice, two orgs expected, 县一中 acked on time.
        let expected = one(&store, "SELECT COUNT(*) FROM notice_orgs").await;
        let acked = one(
            &store,
            "SELECT COUNT(DISTINCT org_id) FROM notice_acks WHERE org_id IS NOT NULL",
        )
        .await;
        assert_eq!((r.notices.notices, r.notices.expected), (1, expected));
        assert_eq!(r.notices.acked, acked);
        assert_eq!((expected, acked), (2, 1));
        assert_eq!(r.notices.late_orgs, [("县二中".to_string(), 1)]);
        assert_eq!(r.problems.low_ack, [("县二中".to_string(), 0)]);
        // 县一中 and 县二中 logged in March; every other org is quiet.
        let quiet = one(
            &store,
            "SELECT COUNT(*) FROM orgs WHERE kind <> 'committee'",
        )
        .await
            - 2;
        assert_eq!(r.problems.inactive.len() as i64, quiet);
        assert!(!r.problems.inactive.contains(&"县一中".to_string()));
        // No wish published in this term.
        assert_eq!(r.wishes, Some(report::WishTotals::default()));
        store.close().await;
    }
}

#[tokio::test]
async fn org_scope_and_period_edges() {
    for db in seeded().await {
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let all = orgs::all(&mut conn).await.unwrap();
        let er = all
            .iter()
            .find(|o| o.short_name == "县二中")
            .unwrap()
            .clone();
        let r = report::build(
            &mut conn,
            store.backend(),
            chrono_tz::Asia::Shanghai,
            &Scope::Org(er),
            d("2026-02-01"),
            d("2026-03-31"),
            report::Judged::new(now_ms()),
        )
        .await
        .unwrap();
        drop(conn);
        assert_eq!((r.records, r.participants), (2, 35), "{}", db.backend);
        assert_eq!(r.orgs.len(), 1);
        assert_eq!((r.notices.expected, r.notices.acked), (1, 0));
        // February alone: only the 2月10日 团课; the notice was sent in March.
        let feb = county(&store, "2026-02-01", "2026-02-28").await;
        assert_eq!((feb.records, feb.notices.expected), (1, 0));
        store.close().await;
    }
}

#[tokio::test]
async fn markdown_draft_snapshot() {
    let mut drafts = Vec::new();
    for db in seeded().await {
        let store = db.store().await;
        let r = county(&store, "2026-03-01", "2026-03-31").await;
        drafts.push(report::markdown(&r, "zh-CN"));
        store.close().await;
    }
    assert_eq!(drafts[0], drafts[1], "postgres differs from sqlite");
    insta::assert_snapshot!("report_markdown", drafts[0]);
}

/// The wishes section, on rows written straight into the wishes tables
/// (migration 0003) so the dates are exact.
#[tokio::test]
async fn wishes_section_counts_per_org() {
    for db in seeded().await {
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let all = orgs::all(&mut conn).await.unwrap();
        let id = |n: &str| all.iter().find(|o| o.short_name == n).unwrap().id;
        let (yi, er) = (id("县一中"), id("县二中"));
        let mar = |day: u32| ms(Utc.with_ymd_and_hms(2026, 3, day, 2, 0, 0).unwrap());
        sqlx::query(
            "INSERT INTO wish_batches (id, name, total, status, published_at, created_at) \
             VALUES (1, '2026圆梦', 5, 'published', $1, $1)",
        )
        .bind(mar(3))
        .execute(&mut *conn)
        .await
        .unwrap();
        // (status, org, claimed, delivered)
        type WishSeed<'a> = (&'a str, Option<i64>, Option<i64>, Option<i64>);
        let rows: [WishSeed; 5] = [
            ("open", None, None, None),
            ("claimed", Some(yi), Some(mar(3)), None),
            ("delivered", Some(yi), Some(mar(3)), Some(mar(20))),
            ("claimed", Some(er), Some(mar(25)), None),
            ("revoked", None, None, None),
        ];
        for (i, (status, org, claimed, delivered)) in rows.iter().enumerate() {
            sqlx::query(
                "INSERT INTO wishes (id, batch_id, no, school, grade, child, item, status, \
                 org_id, claimed_at, delivered_at) \
                 VALUES ($1, 1, $1, '永清镇中心小学', '六年级', '姚明', '新华字典', $2, $3, $4, $5)",
            )
            .bind(i as i64 + 1)
            .bind(*status)
            .bind(*org)
            .bind(*claimed)
            .bind(*delivered)
            .execute(&mut *conn)
            .await
            .unwrap();
        }
        drop(conn);
        let r = county(&store, "2026-03-01", "2026-03-31").await;
        let w = r.wishes.clone().expect("wishes section");
        assert_eq!(
            (w.published, w.claimed, w.delivered, w.overdue),
            (4, 3, 1, 1),
            "{}",
            db.backend
        );
        // 县一中's claim of 3月3日 is overdue at 3月31日; 县二中's is not.
        assert_eq!(r.problems.overdue_wishes, [("县一中".to_string(), 1)]);
        let yl = r.orgs.iter().find(|o| o.name == "县一中").unwrap();
        assert_eq!((yl.wishes_claimed, yl.wishes_delivered), (2, 1));
        let md = report::markdown(&r, "zh-CN");
        assert!(
            md.contains("本期发布微心愿4个，各团组织认领3个，已圆梦1个。"),
            "{md}"
        );
        assert!(md.contains("| 县一中 | 2 | 1 |"), "{md}");
        // The `wishes.overdue_days` rule: with 30 days nothing is overdue yet.
        let mut conn = store.conn().await.unwrap();
        let at = report::Judged {
            now_ms: now_ms(),
            overdue_days: 30,
        };
        let r = report::build(
            &mut conn,
            store.backend(),
            chrono_tz::Asia::Shanghai,
            &Scope::County,
            d("2026-03-01"),
            d("2026-03-31"),
            at,
        )
        .await
        .unwrap();
        drop(conn);
        assert_eq!(r.wishes.map(|w| w.overdue), Some(0));
        assert!(r.problems.overdue_wishes.is_empty());
        store.close().await;
    }
}

/// `/report` in chat: who may see what, bad input, chatter.
#[tokio::test]
async fn report_in_chat_and_permissions() {
    for db in TestDb::both().await {
        let body = "\
:chat g1 group
:as u2 小王
/report 本月
/report 全县
/report 县二中
总结一下今天的会
:as u3 小李
/report
:as u1 小张
:chat p1 private
/report 本月
/report 不存在的组织
/report '; DROP TABLE orgs;--
/report 😀😀
工作总结 2026-02
";
        let out = script(&db, &format!("{SCENE}{body}"), true).await;
        let t = texts(&out);
        let t = &t[t.len() - 9..];
        assert!(
            t[0].starts_with(
                "📊 县一中 工作总结（2026-03-01 至 2026-03-20）\n活动 3 次 · 1077 人次 · 90 小时"
            ),
            "{}: {}",
            db.backend,
            t[0]
        );
        assert!(t[1].starts_with("只有团县委工作人员"), "{}", t[1]);
        assert!(t[2].starts_with("只有团县委工作人员"), "{}", t[2]);
        // The chatter line got no reply; the member is refused.
        assert_eq!(t[3], "工作总结只对团干部和团县委开放。");
        assert!(
            t[4].starts_with("📊 全县 工作总结（2026-03-01 至 2026-03-20）\n活动 4 次 · 1097 人次"),
            "{}",
            t[4]
        );
        assert!(
            t[4].contains("📢 通知 1 条：确认率 50%，按时 50%"),
            "{}",
            t[4]
        );
        assert!(t[4].contains("⚠️ 通知确认率低：县二中"), "{}", t[4]);
        for bad in &t[5..8] {
            assert!(
                bad.contains("没有找到") || bad.contains("找不到") || bad.contains("未找到"),
                "{bad}"
            );
        }
        assert!(
            t[8].starts_with("📊 全县 工作总结（2026-02-01 至 2026-02-28）\n活动 1 次 · 15 人次"),
            "{}",
            t[8]
        );
        let store = db.store().await;
        assert!(one(&store, "SELECT COUNT(*) FROM orgs").await > 2);
        store.close().await;
    }
}

/// Periods as cadres name them: half years, spans of months, "this year so
/// far"; the period words never become an org's name.
#[tokio::test]
async fn periods_as_cadres_name_them() {
    for db in TestDb::both().await {
        let body = "\
:as u1 小张
:chat p1 private
/report 上半年 全县
/report 2-3月
/report 今年以来
/report 2025年下半年
";
        let out = script(&db, &format!("{SCENE}{body}"), true).await;
        let t = texts(&out);
        let t = &t[t.len() - 4..];
        let b = db.backend;
        assert!(
            t[0].starts_with("📊 全县 工作总结（2026-01-01 至 2026-0"),
            "{b}: {}",
            t[0]
        );
        assert!(t[0].contains("活动 5 次"), "{b}: {}", t[0]);
        assert!(
            t[1].starts_with("📊 全县 工作总结（2026-02-01 至 2026-03-"),
            "{b}: {}",
            t[1]
        );
        assert!(
            t[2].starts_with("📊 全县 工作总结（2026-01-01 至 2026-03-20）"),
            "{b}: {}",
            t[2]
        );
        assert!(
            t[3].starts_with("📊 全县 工作总结（2025-07-01 至 2025-12-31）"),
            "{b}: {}",
            t[3]
        );
    }
}

mod stars {
    use std::collections::BTreeMap;

    use chrono::NaiveDate;
    use tuanbot::domain::OrgKind;
    use tuanbot::report::stars::{Scheme, breakdown_text, rate};
    use tuanbot::report::{NoticeTotals, OrgLine, Problems, Report, WishTotals};
    use tuanbot::store::orgs::Org;

    use super::{SCENE, d};
    use crate::helpers::{TestDb, script, texts};

    fn org(id: i64, name: &str, kind: OrgKind, parent: Option<i64>) -> Org {
        Org {
            id,
            full_name: name.to_string(),
            short_name: name.to_string(),
            kind,
            parent_id: parent,
            secretary: None,
        }
    }

    fn dates(list: &[&str]) -> Vec<NaiveDate> {
        list.iter().map(|s| d(s)).collect()
    }

    /// Every item done: the whole first half of 2026.
    fn perfect(id: i64, name: &str) -> OrgLine {
        let months: Vec<String> = (1..=6).map(|m| format!("2026-{m:02}-10")).collect();
        let months: Vec<&str> = months.iter().map(String::as_str).collect();
        let mut by_date = BTreeMap::new();
        by_date.insert("团员大会".to_string(), dates(&["2026-01-05", "2026-04-05"]));
        by_date.insert("支委会".to_string(), dates(&months));
        by_date.insert("团小组会".to_string(), dates(&months));
        by_date.insert("团课".to_string(), dates(&["2026-02-01", "2026-05-01"]));
        let by_category: BTreeMap<String, i64> = by_date
            .iter()
            .map(|(k, v)| (k.clone(), v.len() as i64))
            .chain([("志愿服务".to_string(), 6)])
            .collect();
        let n: i64 = by_category.values().sum();
        OrgLine {
            org_id: id,
            name: name.to_string(),
            activities: n,
            photos_ok: n,
            people_ok: n,
            wishes_delivered: 3,
            notices_expected: 4,
            notices_acked: 4,
            notices_on_time: 4,
            by_category,
            dates_by_category: by_date,
            ..OrgLine::default()
        }
    }

    fn report(orgs: Vec<OrgLine>) -> Report {
        Report {
            from: d("2026-01-01"),
            to: d("2026-06-30"),
            scope: None,
            records: 0,
            participants: 0,
            hours: 0.0,
            categories: Vec::new(),
            orgs,
            wishes: Some(WishTotals::default()),
            notices: NoticeTotals::default(),
            problems: Problems::default(),
            overdue_days: 14,
        }
    }

    /// A: a 直属 org with gaps, worked out by hand for January–June 2026:
    /// 团员大会 2/2 → 7.5; 支委会 6/6 months → 7.5; 团小组会 3/6 → 3.75 ≈ 3.8;
    /// 团课 1/2 quarters → 3.8; other activities 6/6 → 20; wishes 1 of
    /// ⌈3×6/12⌉ = 2 → 10; notices 3/4 acked → 7.5, 2/4 on time → 5;
    /// photos 9/18 → 2.5, head counts 18/18 → 5. Total 72.6 → 3★.
    /// B (a 乡镇大团委, 1 wish a year) and C (直属) score 100; with three orgs
    /// rated a 20 % cap leaves one 5★: B by name, C is capped to 4★.
    #[test]
    fn hand_checked_scores_and_the_five_star_cap() {
        let mut a = perfect(1, "A团委");
        a.dates_by_category.insert(
            "团小组会".into(),
            dates(&["2026-01-10", "2026-02-10", "2026-03-10"]),
        );
        a.dates_by_category
            .insert("团课".into(), dates(&["2026-02-01"]));
        a.by_category.insert("团小组会".into(), 3);
        a.by_category.insert("团课".into(), 1);
        a.activities = a.by_category.values().sum();
        assert_eq!(a.activities, 18);
        a.photos_ok = 9;
        a.people_ok = 18;
        a.wishes_delivered = 1;
        a.notices_acked = 3;
        a.notices_on_time = 2;
        let mut b = perfect(2, "B团委");
        b.wishes_delivered = 1;
        let c = perfect(3, "C团委");
        let orgs = vec![
            org(9, "团县委", OrgKind::Committee, None),
            org(1, "A团委", OrgKind::School, Some(9)),
            org(2, "B团委", OrgKind::Township, Some(9)),
            org(3, "C团委", OrgKind::Agency, Some(9)),
        ];
        let r = report(vec![a, b, c]);
        let scheme = Scheme::builtin();
        let ratings = rate(&r, &orgs, &scheme);
        let got: Vec<(&str, f64, u8, bool)> = ratings
            .iter()
            .map(|x| (x.name.as_str(), x.score, x.stars, x.capped))
            .collect();
        assert_eq!(
            got,
            [
                ("B团委", 100.0, 5, false),
                ("C团委", 100.0, 4, true),
                ("A团委", 72.6, 3, false),
            ]
        );
        let items: Vec<(&str, f64)> = ratings[2].items.iter().map(|i| (i.key, i.got)).collect();
        assert_eq!(
            items,
            [
                ("members_meeting", 7.5),
                ("committee_meeting", 7.5),
                ("group_meeting", 3.8),
                ("lecture", 3.8),
                ("activities", 20.0),
                ("wishes", 10.0),
                ("notice_acks", 7.5),
                ("notice_on_time", 5.0),
                ("photos", 2.5),
                ("participants", 5.0),
            ]
        );
        let text = breakdown_text(&ratings[2], &r, &scheme, "zh-CN");
        insta::assert_snapshot!("stars_breakdown", text);
        // Without a cap both keep 5★.
        let mut open = scheme.clone();
        open.stars.five_share_cap = 1.0;
        let ratings = rate(&r, &orgs, &open);
        assert_eq!(ratings[1].stars, 5);
    }

    /// `/stars`: staff rank the county; a cadre sees their own org only; a
    /// member is refused.
    #[tokio::test]
    async fn stars_in_chat_and_permissions() {
        for db in TestDb::both().await {
            let body = "\
:chat g1 group
:as u2 小王
/stars
/stars 全县
/stars 县二中
:as u3 小李
/stars
:as u1 小张
:chat p1 private
/stars 本年
/stars 县一中 2026-03
/stars 团县委
";
            let out = script(&db, &format!("{SCENE}{body}"), true).await;
            let t = texts(&out);
            let t = &t[t.len() - 7..];
            assert!(t[0].starts_with("⭐ 县一中："), "{}: {}", db.backend, t[0]);
            // The county's first record is of February: the year starts there.
            assert!(t[0].contains("（2026-02-01 至 2026-03-20）"), "{}", t[0]);
            assert!(t[1].starts_with("只有团县委工作人员"), "{}", t[1]);
            assert!(t[2].starts_with("只有团县委工作人员"), "{}", t[2]);
            assert_eq!(t[3], "星级评定只对团干部和团县委开放。");
            assert!(
                t[4].starts_with("⭐ 星级评定（2026-02-01 至 2026-03-20）"),
                "{}",
                t[4]
            );
            assert!(t[4].contains("1. 县一中"), "{}", t[4]);
            assert!(t[5].starts_with("⭐ 县一中："), "{}", t[5]);
            assert!(t[5].contains("团课 1/1 个季度 · 7.5/7.5分 ✅"), "{}", t[5]);
            assert!(t[6].contains("不参加星级评定"), "{}", t[6]);
        }
    }
}

/// The chart's series come from the report's figures; the PNG is drawn with
/// whatever font the machine has (a CJK one, else a Latin one with English
/// labels); `/report chart` queues the caption with the PNG as a photo.
#[tokio::test]
async fn chart_series_png_and_chat() {
    for db in seeded().await {
        let store = db.store().await;
        let r = county(&store, "2026-02-01", "2026-03-31").await;
        let (months, cats) = tuanbot::report::chart::series(&r, "zh-CN");
        assert_eq!(months, [("2月".to_string(), 1), ("3月".to_string(), 4)]);
        let total: i64 = cats.iter().map(|(_, n)| n).sum();
        assert_eq!(total, r.records, "{}", db.backend);
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("chart.png");
        match tuanbot::report::chart::write_png(&r, "zh-CN", &png) {
            Ok(()) => {
                let bytes = std::fs::read(&png).unwrap();
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            }
            Err(tuanbot::report::chart::ChartError::NoFont) => {}
            Err(e) => panic!("{e}"),
        }
        store.close().await;
        let out = script(
            &db,
            &format!("{SCENE}:as u2 小王\n:chat g1 group\n/report chart 2026-03\n"),
            true,
        )
        .await;
        let t = texts(&out);
        let last = t.last().unwrap();
        assert!(
            last == "📈 活动图表（2026-03-01 至 2026-03-20）"
                || last == "这台服务器没有可用字体，暂时画不了图表。",
            "{last}"
        );
        if last.starts_with("📈") {
            // The console says what it would have sent along.
            assert!(out.contains("[图片：chart.png]"), "{}: {out}", db.backend);
            let store = db.store().await;
            let payload: String = {
                let mut conn = store.conn().await.unwrap();
                sqlx::query("SELECT payload FROM outbox ORDER BY id DESC LIMIT 1")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap()
                    .try_get("payload")
                    .unwrap()
            };
            assert!(
                payload.contains("\"bytes\":\"iVBORw0KGgo"),
                "{}",
                &payload[..200.min(payload.len())]
            );
            store.close().await;
        }
    }
}
