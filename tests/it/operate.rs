//! The operator's commands through the real binary: `service install`
//! (checked by `systemd-analyze verify`), `migrate --check`, and the logs
//! (`log.format = "json"`; no names or message text at info; one line per
//! handled update at debug).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::{TestDb, output_within, wait_child};

fn tuanbot(db: &TestDb) -> Command {
    let mut c = crate::helpers::binary();
    c.env("TUANBOT_DATABASE_URL", &db.url);
    c
}

#[tokio::test]
async fn service_install_writes_a_unit_systemd_accepts() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    let config = dir.path().join("tuanbot.toml");
    std::fs::write(&config, "").unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = output_within(
        tuanbot(&db)
            .args(["service", "install", "--user", "root", "--dir"])
            .arg(&work)
            .arg("--settings")
            .arg(&config)
            .arg("--unit-dir")
            .arg(&units),
        "service install",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("systemctl enable --now tuanbot"),
        "{stdout}"
    );
    let unit = units.join("tuanbot.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "User=root".to_string(),
        format!("WorkingDirectory={}", work.display()),
        format!(
            "ExecStart={} --config {} run",
            std::fs::canonicalize(env!("CARGO_BIN_EXE_tuanbot"))
                .unwrap()
                .display(),
            config.display()
        ),
        "Restart=on-failure".into(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    // systemd's own check of the unit (the test set-up installs it).
    let verify = output_within(
        Command::new("systemd-analyze").arg("verify").arg(&unit),
        "systemd-analyze verify",
    );
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{said}");
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("tuanbot.service"))
        .collect();
    assert!(complaints.is_empty(), "{said}");
    // Not overwritten without --force.
    let again = output_within(
        tuanbot(&db)
            .args(["service", "install", "--unit-dir"])
            .arg(&units),
        "service install again",
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[tokio::test]
async fn migrate_check_says_what_would_run() {
    for db in TestDb::both().await {
        let out = output_within(tuanbot(&db).args(["migrate", "--check"]), "migrate --check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let latest = tuanbot::ops::schema::latest(tuanbot::store::Backend::Sqlite);
        let n = tuanbot::store::migrator(tuanbot::store::Backend::Sqlite)
            .iter()
            .count();
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains(&format!("将执行 {n} 个迁移")),
            "{}: {stdout}",
            db.backend
        );
        assert!(stdout.contains("  0001 foundation"), "{stdout}");
        assert!(stdout.contains(&format!("  {latest:04} ")), "{stdout}");
        // --check changes nothing.
        let out = output_within(tuanbot(&db).args(["migrate", "--check"]), "migrate --check");
        assert_eq!(out.status.code(), Some(1));
        let out = output_within(tuanbot(&db).arg("migrate"), "migrate");
        assert!(out.status.success());
        let out = output_within(tuanbot(&db).args(["migrate", "--check"]), "migrate --check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("没有要执行的迁移"), "{stdout}");
    }
}

/// A conversation with names and text that must not reach the logs.
const TALK: &str = "\
:admin u9
:as u9 欧阳春花
:chat g7 group
绑定 全县
:as u1 司马秋月
我是 县一中
:as u9 欧阳春花
同意 司马秋月
:as u1 司马秋月
认领 12
/log 3月5日 秘密家访活动 45人
今天的暗号是青松翠柏
";

fn logs(db: &TestDb, level: &str) -> Vec<serde_json::Value> {
    let mut child = tuanbot(db)
        .env("TUANBOT_LOG", level)
        .env("TUANBOT_LOG__FORMAT", "json")
        .args(["console", "--script", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(TALK.as_bytes())
        .unwrap();
    let out = wait_child(child, "the console");
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    for secret in ["欧阳春花", "司马秋月", "青松翠柏", "秘密家访", "县一中"] {
        assert!(
            !stderr.contains(secret),
            "{level} log shows {secret:?}:\n{stderr}"
        );
    }
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn logs_are_json_and_hold_no_personal_data() {
    let db = TestDb::sqlite().await;
    // At info: JSON objects (there may be none), no personal data.
    for line in logs(&db, "info") {
        assert!(
            line["level"].is_string() && line["fields"].is_object(),
            "{line}"
        );
    }
    // At debug: one line per handled update, with its kind and outcome.
    let lines = logs(&db, "tuanbot=debug");
    let updates: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "update")
        .collect();
    let typed = TALK.lines().filter(|l| !l.starts_with(':')).count();
    assert_eq!(updates.len(), typed, "{lines:#?}");
    let commands: Vec<&str> = updates
        .iter()
        .map(|l| l["fields"]["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands.last(), Some(&"chatter"), "{commands:?}");
    assert!(updates.iter().all(|l| l["fields"]["outcome"] == "handled"));
}
