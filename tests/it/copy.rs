//! `tuanbot copy`: a county's SQLite database with a finished wish
//! campaign and a term of activities, notices and sign-ups, moved to
//! PostgreSQL with the real binary, gives the same `/report` (and the rest)
//! as before, with the same ids, and goes on numbering where it left off.

use std::process::Command;

use tuanbot::store::{self, maintenance};

use crate::helpers::{TestDb, output_within, script_with, texts};

/// A campaign from import to delivery and a term of records (March–June).
const TERM: &str = "\
:today 2026-03-02
:admin zhang
:as zhang 团县委小张
:chat g1 group
绑定 全县
:file tests/fixtures/wishes.csv
/wishes import 2026圆梦
/wishes publish 2026圆梦 quota 3
:as u1 县一中小王
我是 县一中
:as u2 县二中小李
我是 县二中
:as zhang 团县委小张
/role @u1 团干部 县一中
/role @u2 团干部 县二中
:as u1 县一中小王
认领 1 2 3
:as u2 县二中小李
认领 3 4 5
:time 09:05
:as u1 县一中小王
:photo proof-1.jpg
圆梦 1
:photo proof-2.jpg
圆梦 2
:as u2 县二中小李
:photo proof-4.jpg
圆梦 4
/release 5
:as zhang 团县委小张
/revoke 3 重复登记
:today 2026-03-10
:as u1 县一中小王
:chat u1 private
/log 3月5日 学雷锋志愿服务 45人 90小时 三里铺
:as u2 县二中小李
:chat u2 private
/log 3月8日 主题团日活动 30人
:today 2026-04-20
/log 4月18日 植树活动 20人 40小时 城南苗圃
:as u1 县一中小王
:chat u1 private
/log 4月3日 团课 50人
/log 4月9日 清明祭扫 60人
/undo
:today 2026-05-06
:as zhang 团县委小张
:chat g2 group
绑定 县一中
:chat g3 group
绑定 县二中
:chat zhang private
/notice 县一中、县二中 五四表彰材料报送\\n请于5月10日前报送。 截止 5月10日18:00
确认
:as u1 县一中小王
:chat g2 group
收到
:as zhang 团县委小张
:chat g1 group
/event 五四合唱 5月8日 19:00 大礼堂 名额20
:as u1 县一中小王
:chat g2 group
报名 1
:as u2 县二中小李
:chat g3 group
报名 1 带2人
:today 2026-06-25
:as u1 县一中小王
:chat u1 private
/log 6月1日 六一慰问 12人 宣传材料200份
:today 2026-06-30
";

/// What staff and a cadre ask after the term; the last `/log` shows the
/// next activity id.
const ASK: &str = "\
:today 2026-07-01
:as zhang 团县委小张
:chat zhang private
/report 3月1日-6月30日 全县
/report 3月1日-6月30日 县一中
/stars 2026-03
/stats 全县 3月1日-6月30日
/wishes 县一中
/notice status 1
/event 1
:as u1 县一中小王
:chat u1 private
/mine
/log 6月30日 毕业生团员座谈 15人
";

fn tuanbot() -> Command {
    crate::helpers::binary()
}

fn report_file(url: &str, dir: &std::path::Path, name: &str) -> String {
    let file = dir.join(name);
    let out = output_within(
        tuanbot()
            .args([
                "--db",
                url,
                "report",
                "--from",
                "2026-03-01",
                "--to",
                "2026-06-30",
            ])
            .arg(&file),
        "tuanbot report",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(file).unwrap()
}

async fn all_rows(url: &str) -> Vec<(String, Vec<Vec<maintenance::Value>>)> {
    let s = store::Store::open(url, "normal").await.unwrap();
    let mut conn = s.conn().await.unwrap();
    let mut out = Vec::new();
    for t in maintenance::tables(&mut conn, s.backend()).await.unwrap() {
        let cols = maintenance::columns(&mut conn, s.backend(), &t)
            .await
            .unwrap();
        out.push((
            t.clone(),
            maintenance::rows(&mut conn, &t, &cols).await.unwrap(),
        ));
    }
    drop(conn);
    s.close().await;
    out
}

#[tokio::test]
async fn sqlite_to_postgres_gives_the_same_report() {
    let (sqlite, pg) = (TestDb::sqlite().await, TestDb::postgres().await);
    let term = script_with(sqlite.settings(), TERM, true).await;
    assert!(term.contains("已圆梦"), "{term}");
    let dir = tempfile::tempdir().unwrap();
    let before_md = report_file(&sqlite.url, dir.path(), "before.md");

    let out = output_within(
        tuanbot().args(["copy", "--from", &sqlite.url, "--to", &pg.url]),
        "tuanbot copy",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("✅ 已从") && stdout.contains("活动 5 条"),
        "{stdout}"
    );

    // Every row, ids included, is the same.
    let (a, b) = (all_rows(&sqlite.url).await, all_rows(&pg.url).await);
    assert_eq!(a.len(), b.len());
    for ((ta, ra), (tb, rb)) in a.iter().zip(&b) {
        assert_eq!(ta, tb);
        assert_eq!(ra, rb, "table {ta}");
    }

    // Copying again into a database that has data is refused.
    let out = output_within(
        tuanbot().args(["copy", "--from", &sqlite.url, "--to", &pg.url]),
        "tuanbot copy",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));

    assert_eq!(report_file(&pg.url, dir.path(), "after.md"), before_md);
    let before = texts(&script_with(sqlite.settings(), ASK, true).await);
    let after = texts(&script_with(pg.settings(), ASK, true).await);
    assert!(
        before
            .iter()
            .any(|t| t.contains("工作总结") || t.contains("开展工作")),
        "{before:?}"
    );
    // The new record gets the next id on PostgreSQL too (sequences moved on).
    assert!(
        before.last().is_some_and(|t| t.contains("#7")),
        "{before:?}"
    );
    assert_eq!(before, after);
}
