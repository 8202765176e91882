//! Running tuanbot without an ops team: backups while the bot runs
//! ([`backup`]), restores ([`restore`]), the checks of `tuanbot doctor`
//! ([`doctor`]), the systemd unit ([`service`]), copies between databases
//! ([`copy`]), what a migration would do ([`schema`]) and the lock a
//! running process holds on its database ([`lock`]).
//!
//! The SQL lives in `store::maintenance`; this module drives it, the
//! PostgreSQL client tools and the files.

pub mod backup;
pub mod cli;
pub mod copy;
pub mod doctor;
pub mod lock;
pub mod restore;
pub mod schema;
pub mod service;

use std::path::{Path, PathBuf};

use sqlx::Connection;

use crate::store::{Backend, Conn};

/// Where a database URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// An in-memory SQLite database: nothing to back up or lock.
    Memory,
    Postgres(PgTarget),
}

/// A PostgreSQL URL, and the same in the form libpq's tools (`pg_dump`,
/// `pg_restore`) take: sqlx's own parameters removed, the password apart
/// (given to the tools in `PGPASSWORD`, never on their command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub url: String,
    pub libpq_url: String,
    pub password: Option<String>,
    /// The schema named by `options[search_path]=…` (sqlx), if any.
    pub schema: Option<String>,
}

impl Target {
    pub fn of(url: &str) -> anyhow::Result<Target> {
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Ok(Target::Memory);
            }
            let opts: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
            return Ok(Target::Sqlite(opts.get_filename().to_path_buf()));
        }
        let mut parsed = url::Url::parse(url)?;
        let password = parsed.password().map(|p| {
            url::form_urlencoded::parse(format!("p={p}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        });
        let _ = parsed.set_password(None);
        let mut schema = None;
        let kept: Vec<(String, String)> = parsed
            .query_pairs()
            .filter_map(|(k, v)| {
                if k == "options[search_path]" {
                    schema = Some(v.into_owned());
                    return None;
                }
                (!(k.starts_with("options[") || k == "statement-cache-capacity"))
                    .then(|| (k.into_owned(), v.into_owned()))
            })
            .collect();
        parsed.set_query(None);
        if !kept.is_empty() {
            parsed.query_pairs_mut().extend_pairs(kept);
        }
        Ok(Target::Postgres(PgTarget {
            url: url.to_string(),
            libpq_url: parsed.to_string(),
            password,
            schema,
        }))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Target::Postgres(_) => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

/// A connection to an existing database, without migrating or creating
/// anything (a SQLite file is opened read-only). `None` for a SQLite file
/// that does not exist.
pub async fn connect_existing(url: &str) -> anyhow::Result<Option<Conn>> {
    sqlx::any::install_default_drivers();
    match Target::of(url)? {
        Target::Sqlite(path) => {
            if !path.exists() {
                return Ok(None);
            }
            Ok(Some(Conn::connect(&sqlite_url(&path, "ro")).await?))
        }
        Target::Memory => Ok(None),
        Target::Postgres(_) => Ok(Some(Conn::connect(url).await?)),
    }
}

/// `sqlite://PATH?mode=MODE` for a path.
pub fn sqlite_url(path: &Path, mode: &str) -> String {
    format!("sqlite://{}?mode={mode}", path.display())
}

/// The local time of `now` in `tz` as it appears in backup names.
pub fn stamp(now: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> String {
    now.with_timezone(&tz).format("%Y-%m-%dT%H%M%S").to_string()
}

/// A program on `PATH`, if there.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Make a rename inside `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::of("sqlite://data/tuanbot.db").unwrap(),
            Target::Sqlite(PathBuf::from("data/tuanbot.db"))
        );
        assert_eq!(
            Target::of("sqlite:///var/lib/tuanbot/t.db?mode=rwc").unwrap(),
            Target::Sqlite(PathBuf::from("/var/lib/tuanbot/t.db"))
        );
        assert_eq!(Target::of("sqlite::memory:").unwrap(), Target::Memory);
        let Target::Postgres(pg) = Target::of(
            "postgres://tuan:p%40ss@db.local:5433/tuanbot?sslmode=require&options[search_path]=t_1",
        )
        .unwrap() else {
            panic!("postgres");
        };
        assert_eq!(pg.password.as_deref(), Some("p@ss"));
        assert_eq!(pg.schema.as_deref(), Some("t_1"));
        assert_eq!(
            pg.libpq_url,
            "postgres://tuan@db.local:5433/tuanbot?sslmode=require"
        );
        let Target::Postgres(pg) = Target::of("postgres://postgres@127.0.0.1/postgres").unwrap()
        else {
            panic!("postgres");
        };
        assert_eq!((pg.password, pg.schema), (None, None));
        assert_eq!(pg.libpq_url, "postgres://postgres@127.0.0.1/postgres");
    }
}
