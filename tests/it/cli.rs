//! The real binary, as a newcomer and an operator use it.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::{TestDb, output_within, wait_child};

/// Run the binary to its end, bounded (see [`output_within`]).
trait BoundedOutput {
    fn bounded_output(&mut self) -> std::process::Output;
}

impl BoundedOutput for Command {
    fn bounded_output(&mut self) -> std::process::Output {
        let what = format!("{self:?}");
        output_within(self, &what)
    }
}

fn tuanbot(db: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tuanbot"));
    c.env_remove("TUANBOT_DATABASE_URL")
        .env_remove("TELOXIDE_TOKEN")
        .env("TUANBOT_DATABASE_URL", &db.url)
        // Unrelated TUANBOT_* variables are not settings and must not stop start-up.
        .env("TUANBOT_LOG", "warn")
        .env("TUANBOT_SOMETHING_ELSE", "1")
        .current_dir(std::env::temp_dir());
    c
}

#[tokio::test]
async fn script_from_stdin_prints_json_lines() {
    for db in TestDb::both().await {
        let mut child = tuanbot(&db)
            .args(["console", "--script", "-", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(":as u1 小王\n/iam 县一中\n/whoami\n".as_bytes())
            .unwrap();
        let out = wait_child(child, "the console script");
        assert!(out.status.success(), "{}", db.backend);
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{stdout}");
        let asked = lines[0]["text"].as_str().unwrap();
        assert!(asked.starts_with("📝 县一中团委 还没有团干部"), "{asked}");
        assert_eq!(lines[0]["chat"], "u1");
        assert!(lines[0]["buttons"].is_array() && lines[0]["edit_of"].is_null());
        let whoami = lines[1]["text"].as_str().unwrap();
        assert!(whoami.contains("组织：未绑定"), "{whoami}");
        assert!(whoami.contains("申请：加入 县一中团委"), "{whoami}");
    }
}

#[tokio::test]
async fn import_orgs_twice_leaves_54() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/orgs.csv");
    for db in TestDb::both().await {
        for expect in ["新增 54 个", "未变 54 个"] {
            let out = tuanbot(&db)
                .args(["import", "orgs", fixture])
                .bounded_output();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}: {}",
                db.backend,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                stdout.contains(expect) && stdout.contains("共 54 个组织"),
                "{stdout}"
            );
        }
    }
}

#[tokio::test]
async fn bad_settings_stop_startup_naming_the_key() {
    let db = TestDb::sqlite().await;
    let out = tuanbot(&db)
        .env("TUANBOT_TIMEZONE", "Mars/Base")
        .arg("migrate")
        .bounded_output();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "config error: timezone: unknown time zone \"Mars/Base\""
    );
    let out = tuanbot(&db).arg("migrate").bounded_output();
    assert!(out.status.success());
}

#[test]
fn parse_prints_exactly_the_report_object() {
    let out = Command::new(env!("CARGO_BIN_EXE_tuanbot"))
        .args([
            "parse",
            "--today",
            "2026-03-20",
            "--json",
            "记录 3.15 综治宣传活动 向过往群众发放宣传材料2000多份",
        ])
        .bounded_output();
    assert!(out.status.success());
    let raw = String::from_utf8(out.stdout.clone()).unwrap();
    let order = [
        "kind",
        "date",
        "category",
        "title",
        "participants",
        "approx",
        "hours",
        "location",
        "org",
        "quantities",
        "warnings",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|k| raw.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "key order: {raw}");
    assert_eq!(raw.lines().count(), 1, "one object per line");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "activity");
    assert_eq!(v["date"], "2026-03-15");
    assert_eq!(v["category"], "宣传");
    assert_eq!(v["quantities"][0]["count"], 2000);
    assert_eq!(v["quantities"][0]["unit"], "份");
}

#[tokio::test]
async fn export_activities_to_xlsx_and_csv() {
    for db in TestDb::both().await {
        crate::helpers::script(
            &db,
            ":today 2026-03-10\n:as u1 小王\n我是 县一中\n:admin zhang\n:as zhang\n同意 小王\n:as u1 小王\n/log 3月5日 学雷锋志愿服务 45人 90小时 三里铺\n/log 3月6日 综治宣传 发放宣传材料2000份\n",
            true,
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.xlsx", "a.csv"] {
            let file = dir.path().join(name);
            let out = tuanbot(&db)
                .args([
                    "export",
                    "activities",
                    "--from",
                    "2026-03-01",
                    "--to",
                    "2026-03-31",
                    "--org",
                    "县一中",
                ])
                .arg(&file)
                .bounded_output();
            assert!(
                out.status.success(),
                "{}: {}",
                db.backend,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("已导出 2 条"));
            let table = tuanbot::table::Table::read(&file).unwrap();
            assert_eq!(table.header[0], "编号");
            assert_eq!(table.rows.len(), 2, "{name}");
            assert_eq!(table.rows[0].1[4], "学雷锋志愿服务");
            assert_eq!(table.rows[1].1[9], "宣传材料2000份");
        }
    }
}
