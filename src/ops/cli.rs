//! The operator commands of this module as the CLI runs them: each does
//! its work and prints what it did, in the configured language. `main`
//! only parses arguments.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::Target;
use super::backup::{self, Made};
use super::restore::{self, RestoreError};
use super::schema::{self, Status};
use super::service::{self, Unit};
use crate::config::Settings;
use crate::i18n::tr;
use crate::store::maintenance::Counts;

fn counts_line(locale: &str, c: &Counts) -> String {
    tr(
        locale,
        "ops.counts",
        &[
            ("orgs", &c.orgs),
            ("people", &c.people),
            ("activities", &c.activities),
            ("wishes", &c.wishes),
            ("notices", &c.notices),
        ],
    )
}

/// `tuanbot migrate --check`: print what would run; the number of
/// migrations that would.
pub async fn migrate_check(settings: &Settings) -> anyhow::Result<usize> {
    let l = settings.locale.as_str();
    let target = Target::of(&settings.database_url)?;
    let backend = target.backend();
    let db = crate::app::redact(&settings.database_url);
    let status = match super::connect_existing(&settings.database_url).await? {
        Some(mut conn) => {
            let s = Status::read(&mut conn, backend).await?;
            let _ = sqlx::Connection::close(conn).await;
            s
        }
        None => {
            println!("{}", tr(l, "ops.migrate.no_database", &[("db", &db)]));
            Status::of(&[], backend)
        }
    };
    if status.is_foreign() {
        let v = status.foreign_versions();
        bail!("{}", tr(l, "ops.migrate.foreign", &[("versions", &v)]));
    }
    if status.pending.is_empty() {
        let v = schema::version_name(status.version());
        println!(
            "{}",
            tr(l, "ops.migrate.up_to_date", &[("db", &db), ("version", &v)])
        );
        return Ok(0);
    }
    let v = schema::version_name(status.version());
    let n = status.pending.len();
    println!(
        "{}",
        tr(
            l,
            "ops.migrate.would_run",
            &[("db", &db), ("version", &v), ("n", &n)]
        )
    );
    for (version, description) in &status.pending {
        println!("  {} {description}", schema::version_name(*version));
    }
    Ok(n)
}

/// `tuanbot backup [FILE]`.
pub async fn backup(settings: &Settings, file: Option<PathBuf>) -> anyhow::Result<()> {
    let l = settings.locale.as_str();
    let backend = Target::of(&settings.database_url)?.backend();
    let dest = match file {
        Some(f) => f,
        None => {
            let dir = settings
                .backup
                .dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("."));
            dir.join(backup::file_name(
                backend,
                chrono::Utc::now(),
                settings.tz()?,
            ))
        }
    };
    match backup::backup(&settings.database_url, &dest).await {
        Ok(Made::File {
            path,
            bytes,
            counts,
        }) => {
            let size = format!("{:.1} MB", bytes as f64 / 1e6);
            println!(
                "{}",
                tr(
                    l,
                    "ops.backup.done",
                    &[("file", &path.display()), ("size", &size)]
                )
            );
            if let Some(c) = counts {
                println!("{}", counts_line(l, &c));
            }
            Ok(())
        }
        Ok(Made::Command(cmd)) => {
            bail!("{}", tr(l, "ops.backup.no_pg_dump", &[("command", &cmd)]))
        }
        Err(e) => bail!("{}", tr(l, "ops.backup.failed", &[("error", &e)])),
    }
}

/// `tuanbot restore FILE [--force]`.
pub async fn restore(settings: &Settings, file: &Path, force: bool) -> anyhow::Result<()> {
    let l = settings.locale.as_str();
    let tz = settings.tz()?;
    let at = |ms: i64| {
        crate::store::from_ms(ms)
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    match restore::restore(&settings.database_url, file, force, chrono::Utc::now()).await {
        Ok(r) => {
            let (from, to) = (
                schema::version_name(r.from_version),
                schema::version_name(r.to_version),
            );
            println!(
                "{}",
                tr(
                    l,
                    "ops.restore.done",
                    &[("file", &file.display()), ("from", &from), ("to", &to)]
                )
            );
            println!("{}", counts_line(l, &r.counts));
            if let Some(kept) = r.kept {
                println!("{}", tr(l, "ops.restore.kept", &[("kept", &kept)]));
            }
            Ok(())
        }
        Err(RestoreError::InUse) => bail!("{}", tr(l, "ops.restore.in_use", &[])),
        Err(RestoreError::CurrentIsNewer {
            current_ms,
            backup_ms,
        }) => {
            let backup = backup_ms.map(at).unwrap_or_else(|| "—".into());
            bail!(
                "{}",
                tr(
                    l,
                    "ops.restore.newer",
                    &[("current", &at(current_ms)), ("backup", &backup)]
                )
            )
        }
        Err(RestoreError::Newer(v)) => {
            bail!("{}", tr(l, "ops.restore.from_newer", &[("version", &v)]))
        }
        Err(RestoreError::NeedsTool(commands)) => bail!(
            "{}\n  {}",
            tr(l, "ops.restore.no_pg_restore", &[]),
            commands.join("\n  ")
        ),
        Err(e) => bail!("{}", tr(l, "ops.restore.failed", &[("error", &e)])),
    }
}

/// `tuanbot service install`.
pub fn install_service(
    settings: &Settings,
    user: &str,
    dir: &Path,
    config: &Path,
    unit_dir: &Path,
    force: bool,
) -> anyhow::Result<()> {
    let l = settings.locale.as_str();
    let unit = Unit {
        binary: std::env::current_exe()?,
        config: service::absolute(config)?,
        dir: service::absolute(dir)?,
        user: user.to_string(),
        backup_dir: settings
            .backup
            .dir
            .as_deref()
            .map(service::absolute)
            .transpose()?,
    };
    let path = service::install(&unit, unit_dir, force)?;
    println!(
        "{}",
        tr(l, "ops.service.written", &[("file", &path.display())])
    );
    println!(
        "{}",
        tr(
            l,
            "ops.service.next",
            &[
                ("user", &user),
                ("dir", &unit.dir.display()),
                ("config", &unit.config.display()),
            ]
        )
    );
    Ok(())
}

/// `tuanbot copy --from URL --to URL`.
pub async fn copy(settings: &Settings, from: &str, to: &str) -> anyhow::Result<()> {
    let l = settings.locale.as_str();
    match super::copy::copy(from, to).await {
        Ok(c) => {
            let rows: usize = c.tables.iter().map(|(_, n)| n).sum();
            let tables = c.tables.len();
            println!(
                "{}",
                tr(
                    l,
                    "ops.copy.done",
                    &[
                        ("from", &crate::app::redact(from)),
                        ("to", &crate::app::redact(to)),
                        ("tables", &tables),
                        ("rows", &rows)
                    ]
                )
            );
            println!("{}", counts_line(l, &c.counts));
            Ok(())
        }
        Err(e) => bail!("{}", tr(l, "ops.copy.failed", &[("error", &e)])),
    }
}
