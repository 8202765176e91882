//! Backups while the bot runs, restores, and the scheduled backups of the
//! job runner, on both backends; a claim rush killed with `kill -9`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::Connection;
use tuanbot::clock::ManualClock;
use tuanbot::engine::Engine;
use tuanbot::jobs;
use tuanbot::ops::backup::{self, Last};
use tuanbot::store::{self, maintenance};

use crate::helpers::{TestDb, bounded, output_within, until, wait_child};

fn tuanbot(url: &str) -> Command {
    let mut c = crate::helpers::binary();
    c.args(["--db", url]);
    c
}

/// Run the binary to its end (bounded); `(success, stdout, stderr)`.
fn run(cmd: &mut Command) -> (bool, String, String) {
    let what = format!("{cmd:?}");
    let out = output_within(cmd, &what);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A console script (its replies discarded) through the real binary.
fn script(url: &str, text: &str) {
    let mut child = tuanbot(url)
        .args(["console", "--script", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn console");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("script");
    }
    let out = wait_child(child, "a console script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Staff log `n` activities for 县一中 (no membership needed), titled by
/// `what` so that no two calls log the same thing.
fn log_activities(url: &str, what: &str, n: usize) {
    let mut text = String::from(":admin u1\n:as u1 小张\n");
    for i in 0..n {
        text.push_str(&format!(
            "/log 县一中 11月{}日 {what}志愿服务 {} 人\n",
            i + 1,
            10 + i
        ));
    }
    script(url, &text);
}

async fn count_activities(url: &str) -> i64 {
    let store = store::Store::open(url, "normal").await.expect("open");
    let mut conn = store.conn().await.expect("conn");
    let c = maintenance::counts(&mut conn).await.expect("counts");
    drop(conn);
    store.close().await;
    c.activities
}

#[tokio::test]
async fn backup_and_restore_on_both_backends() {
    for db in TestDb::both().await {
        let dir = tempfile::tempdir().unwrap();
        log_activities(&db.url, "学雷锋", 2);
        let file = dir.path().join(match db.backend {
            "sqlite" => "b.sqlite",
            _ => "b.dump",
        });
        let (ok, out, err) = run(tuanbot(&db.url).arg("backup").arg(&file));
        assert!(ok, "{}: {out}{err}", db.backend);
        assert!(out.contains("✅ 已备份到"), "{out}");
        assert!(file.is_file());
        if db.backend == "sqlite" {
            assert!(out.contains("活动 2 条"), "{out}");
            let mut conn =
                crate::helpers::any_conn(&format!("sqlite://{}?mode=ro", file.display()))
                    .await
                    .unwrap();
            assert_eq!(
                maintenance::integrity_problems(&mut conn).await.unwrap(),
                None
            );
        }
        // A backup is never overwritten.
        let (ok, _, err) = run(tuanbot(&db.url).arg("backup").arg(&file));
        assert!(!ok && err.contains("already exists"), "{err}");

        // Newer work after the backup: a plain restore refuses and says why.
        log_activities(&db.url, "敬老院", 3);
        assert_eq!(count_activities(&db.url).await, 5);
        let (ok, _, err) = run(tuanbot(&db.url).arg("restore").arg(&file));
        assert!(!ok, "{}", db.backend);
        assert!(
            err.contains("有比备份更新的记录") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(count_activities(&db.url).await, 5);

        // Refused while a bot process holds the database.
        let mut bot = tuanbot(&db.url)
            .args(["console", "--script", "-", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = bot.stdin.take().unwrap();
        let stdout = bot.stdout.take().unwrap();
        {
            use std::io::{BufRead, Write};
            stdin.write_all("/whoami\n".as_bytes()).unwrap();
            stdin.flush().unwrap();
            // The bot answers, so it runs (and holds the database).
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            let line = rx
                .recv_timeout(crate::helpers::WAIT)
                .expect("the bot's answer");
            assert!(line.contains("\"text\""), "{line}");
        }
        let (ok, _, err) = run(tuanbot(&db.url).args(["restore", "--force"]).arg(&file));
        assert!(!ok && err.contains("tuanbot 正在使用这个数据库"), "{err}");
        drop(stdin);
        let out = wait_child(bot, "the console to end");
        assert!(out.status.success());

        let (ok, out, err) = run(tuanbot(&db.url).args(["restore", "--force"]).arg(&file));
        assert!(ok, "{}: {out}{err}", db.backend);
        assert!(
            out.contains("✅ 已从") && out.contains("活动 2 条"),
            "{out}"
        );
        assert!(out.contains("原来的数据库保留在"), "{out}");
        assert_eq!(count_activities(&db.url).await, 2);
        // The replaced database is kept whole.
        let kept = out
            .lines()
            .find_map(|l| l.strip_prefix("原来的数据库保留在 "))
            .and_then(|l| l.split('，').next())
            .unwrap()
            .to_string();
        match db.backend {
            "sqlite" => {
                let url = format!("sqlite://{kept}");
                assert_eq!(count_activities(&url).await, 5);
            }
            _ => {
                let mut conn = sqlx::PgConnection::connect(&crate::helpers::pg_admin_url())
                    .await
                    .unwrap();
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM \"{kept}\".activities"
                )))
                .fetch_one(&mut conn)
                .await
                .unwrap();
                assert_eq!(n, 5);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA \"{kept}\" CASCADE"
                )))
                .execute(&mut conn)
                .await
                .unwrap();
            }
        }
        // The restored database is migrated and in use as before.
        log_activities(&db.url, "环保", 1);
        assert_eq!(count_activities(&db.url).await, 3);
    }
}

#[tokio::test]
async fn restore_refuses_what_is_not_a_backup_or_from_a_newer_tuanbot() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("notes.txt");
    std::fs::write(&junk, "备忘").unwrap();
    let (ok, _, err) = run(tuanbot(&db.url).arg("restore").arg(&junk));
    assert!(!ok && err.contains("is not a tuanbot backup"), "{err}");
    let (ok, _, err) = run(tuanbot(&db.url)
        .arg("restore")
        .arg(dir.path().join("missing")));
    assert!(!ok && err.contains("no such file"), "{err}");

    // A backup whose database a newer tuanbot migrated (migration 9999).
    log_activities(&db.url, "环保", 1);
    let file = dir.path().join("b.sqlite");
    assert!(run(tuanbot(&db.url).arg("backup").arg(&file)).0);
    let mut conn = crate::helpers::any_conn(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let (ok, _, err) = run(tuanbot(&db.url).args(["restore", "--force"]).arg(&file));
    assert!(
        !ok && err.contains("来自更新版本的 tuanbot（迁移 9999）"),
        "{err}"
    );
    assert_eq!(count_activities(&db.url).await, 1);
}

/// An older backup is migrated forward on restore.
#[tokio::test]
async fn an_old_backup_is_migrated_forward() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.sqlite");
    let url = format!("sqlite://{}?mode=rwc", old.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    // The schema as the first migration left it, with one org.
    let first = store::migrator(store::Backend::Sqlite)
        .iter()
        .next()
        .unwrap()
        .version;
    let mut m = sqlx::migrate::Migrator::DEFAULT;
    m.migrations = store::migrator(store::Backend::Sqlite).migrations.clone();
    m.run_to(first, &pool).await.unwrap();
    sqlx::query(
        "INSERT INTO orgs (full_name, short_name, kind, created_at, updated_at) \
         VALUES ('县一中团委', '县一中', 'school', 1, 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let (ok, out, err) = run(tuanbot(&db.url).arg("restore").arg(&old));
    assert!(ok, "{out}{err}");
    let latest =
        tuanbot::ops::schema::version_name(tuanbot::ops::schema::latest(store::Backend::Sqlite));
    assert!(
        out.contains(&format!("数据结构 0001 → {latest}")) && out.contains("组织 1 个"),
        "{out}"
    );
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 19, 0, 0).unwrap()
}

fn backups_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn scheduled_backups_are_dated_pruned_and_retried() {
    for db in TestDb::both().await {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let mut settings = db.settings();
        settings.backup.dir = Some(dir.path().to_path_buf());
        settings.backup.keep = 2;
        let store = db.store().await;
        let engine = Engine::new(store.clone(), settings.clone(), clock.clone()).unwrap();
        // Twice (a restart, or two replicas): still one job waits.
        backup::ensure_scheduled(&engine).await.unwrap();
        backup::ensure_scheduled(&engine).await.unwrap();
        let pending = |s: store::Store| async move {
            let mut conn = s.conn().await.unwrap();
            store::jobs::pending(&mut conn)
                .await
                .unwrap()
                .into_iter()
                .filter(|j| j.kind == "backup")
                .map(|j| j.run_at)
                .collect::<Vec<_>>()
        };
        assert_eq!(pending(store.clone()).await, [store::ms(t0())]);
        let ext = if db.backend == "sqlite" {
            "sqlite"
        } else {
            "dump"
        };
        for day in 0..3 {
            let now = t0() + Duration::days(day);
            clock.set(now);
            let ran = bounded(jobs::run_due(&engine, now), "a jobs pass")
                .await
                .unwrap();
            assert_eq!(ran.done, 1, "{}", db.backend);
            assert_eq!(
                pending(store.clone()).await,
                [store::ms(now + Duration::days(1))]
            );
        }
        // Named by local date and time (Asia/Shanghai); the oldest removed.
        assert_eq!(
            backups_in(dir.path()),
            [
                format!("tuanbot-2026-12-08T030000.{ext}"),
                format!("tuanbot-2026-12-09T030000.{ext}")
            ]
        );
        let mut conn = store.conn().await.unwrap();
        let last = backup::last(&mut conn).await.unwrap().unwrap();
        drop(conn);
        assert_eq!(last.error, None);
        assert!(
            last.file
                .unwrap()
                .ends_with(&format!("tuanbot-2026-12-09T030000.{ext}"))
        );

        // A backup that fails is recorded and tried again an hour later.
        let blocked = dir.path().join("not-a-dir");
        std::fs::write(&blocked, "x").unwrap();
        let mut bad = settings.clone();
        bad.backup.dir = Some(blocked);
        let engine = Engine::new(store.clone(), bad, clock.clone()).unwrap();
        let now = t0() + Duration::days(3);
        let ran = bounded(jobs::run_due(&engine, now), "a jobs pass")
            .await
            .unwrap();
        assert_eq!(ran.done, 1);
        let mut conn = store.conn().await.unwrap();
        let last: Last = backup::last(&mut conn).await.unwrap().unwrap();
        drop(conn);
        assert!(last.error.is_some() && last.file.is_none(), "{last:?}");
        assert_eq!(
            pending(store.clone()).await,
            [store::ms(now + Duration::hours(1))]
        );
        store.close().await;
    }
}

/// The rush: `tuanbot bench claims` (the real engine's group-commit writer
/// on its direct SQLite connection, with its WAL checkpoints) writes every
/// answered claim's update id to a file as it is answered.
fn rush(db: &Path, acks: &Path) -> std::process::Child {
    crate::helpers::binary()
        .env("TUANBOT_LOG", "off")
        .args([
            "bench", "claims", "--wishes", "400", "--orgs", "10", "--users", "5", "--claims",
            "400", "--rate", "2000", "--sync", "full",
        ])
        .arg("--db")
        .arg(format!("sqlite://{}", db.display()))
        .arg("--acks")
        .arg(acks)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the rush")
}

fn acked(acks: &Path) -> Vec<String> {
    std::fs::read_to_string(acks)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Update ids recorded as handled in a database.
async fn handled(url: &str) -> std::collections::HashSet<String> {
    let mut conn = crate::helpers::any_conn(url).await.unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT update_id FROM processed_updates")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        maintenance::integrity_problems(&mut conn).await.unwrap(),
        None
    );
    // No wish held twice, no quota exceeded.
    let batch: i64 = sqlx::query_scalar("SELECT id FROM wish_batches")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let violations = store::wishes::violations(&mut conn, batch).await.unwrap();
    assert_eq!(violations, (0, 0), "{url}");
    conn.close().await.unwrap();
    ids.into_iter().collect()
}

/// What "restore the last backup plus the live WAL" comes to on SQLite:
/// the WAL holds the transactions committed since the last checkpoint, as
/// pages of *its own* database file, so it is replayed onto that file when
/// the file is next opened — never onto a backup, whose pages differ. After
/// `kill -9` mid-rush: the database with its WAL has every claim that was
/// answered; the backup taken during the rush is sound and a consistent
/// earlier moment; `restore` refuses to replace the newer database, and
/// with `--force` keeps it (WAL included), so no committed claim is lost
/// either way.
#[tokio::test]
async fn kill_9_mid_rush_loses_no_committed_claim() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let acks = dir.path().join("acks");
    let url = format!("sqlite://{}", live.display());
    let mut child = rush(&live, &acks);
    until("the rush to be answering", || acked(&acks).len() >= 1000).await;
    // A backup during the rush, by another process.
    let file = dir.path().join("during.sqlite");
    let (ok, out, err) = run(tuanbot(&url).arg("backup").arg(&file));
    assert!(ok, "{out}{err}");
    let at_backup = acked(&acks).len();
    until("more claims after the backup", || {
        acked(&acks).len() >= at_backup + 1000
    })
    .await;
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the rush must not have finished");
    let acked: Vec<String> = acked(&acks);

    // The backup: sound, consistent, an earlier moment than the kill.
    let in_backup = handled(&format!("sqlite://{}?mode=ro", file.display())).await;
    assert!(
        in_backup.len() >= at_backup.min(1000),
        "{}",
        in_backup.len()
    );

    // The live database with its WAL: every answered claim is there.
    let wal = dir.path().join("live.db-wal");
    assert!(wal.exists(), "the killed process left its WAL");
    let snapshot = dir.path().join("snapshot");
    std::fs::create_dir(&snapshot).unwrap();
    std::fs::copy(&live, snapshot.join("live.db")).unwrap();
    std::fs::copy(&wal, snapshot.join("live.db-wal")).unwrap();
    let in_live = handled(&format!("sqlite://{}", snapshot.join("live.db").display())).await;
    let lost: Vec<&String> = acked.iter().filter(|id| !in_live.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} answered claims lost: {lost:?}",
        lost.len()
    );
    assert!(in_backup.is_subset(&in_live));
    assert!(in_live.len() > in_backup.len());

    // Restoring the backup would lose the newer claims: refused.
    let (ok, _, err) = run(tuanbot(&url).arg("restore").arg(&file));
    assert!(!ok && err.contains("直接启动 tuanbot"), "{err}");
    // Forced, the live database is kept with its WAL.
    let (ok, out, err) = run(tuanbot(&url).args(["restore", "--force"]).arg(&file));
    assert!(ok, "{out}{err}");
    let kept: PathBuf = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("live.db.before-restore-") && !n.ends_with("-wal")
        })
        .expect("the replaced database is kept");
    let in_kept = handled(&format!("sqlite://{}", kept.display())).await;
    assert!(acked.iter().all(|id| in_kept.contains(id)));
    assert_eq!(handled(&url).await, in_backup);
}

/// Without pg_dump / pg_restore on the PATH, the exact commands are printed
/// (with the schema, never the password) and nothing is changed.
#[tokio::test]
async fn without_the_postgresql_tools_the_commands_are_printed() {
    let db = TestDb::postgres().await;
    log_activities(&db.url, "学雷锋", 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.dump");
    let schema = db.url.rsplit('=').next().unwrap().to_string();
    let (ok, _, err) = run(tuanbot(&db.url)
        .env("PATH", "/nonexistent")
        .arg("backup")
        .arg(&file));
    assert!(!ok && !file.exists());
    assert!(err.contains("没有找到 pg_dump"), "{err}");
    assert!(
        err.contains(&format!(
            "pg_dump --format=custom --no-owner --schema={schema} --file={}",
            file.display()
        )) && err.contains("--dbname=postgres://postgres@127.0.0.1:5432/postgres"),
        "{err}"
    );
    // A dump made with the tools, restored without them.
    assert!(run(tuanbot(&db.url).arg("backup").arg(&file)).0);
    let (ok, _, err) = run(tuanbot(&db.url)
        .env("PATH", "/nonexistent")
        .args(["restore", "--force"])
        .arg(&file));
    assert!(!ok && err.contains("没有找到 pg_restore"), "{err}");
    assert!(
        err.contains("pg_restore --single-transaction") && err.contains("tuanbot migrate"),
        "{err}"
    );
    assert_eq!(count_activities(&db.url).await, 1);
}
