//! The `tuanbot` command line. Only argument handling lives here; everything
//! else is in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::BufReader;

use tuanbot::app;
use tuanbot::chat::console::Sink;
use tuanbot::config::{Settings, Sources};
use tuanbot::i18n::tr;

#[derive(Parser)]
#[command(
    name = "tuanbot",
    version,
    about = "团务助手: group-chat assistant for Youth League county committees"
)]
struct Cli {
    /// Settings file (default: ./tuanbot.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database URL, overriding settings (sqlite://FILE or postgres://…).
    #[arg(long, global = true)]
    db: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the configured platforms; the console simulator when none is configured.
    Run,
    /// Chat with the bot in the terminal, or replay a script.
    Console {
        /// Replay this script (`-` for standard input) instead of reading the keyboard.
        #[arg(long)]
        script: Option<String>,
        /// Print each outgoing message as one JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Apply database migrations and exit.
    Migrate {
        /// Only say which migrations would run (exit 1 when some would).
        #[arg(long)]
        check: bool,
    },
    /// Copy the database to FILE while the bot runs (SQLite), or run
    /// pg_dump (PostgreSQL; prints the command when pg_dump is missing).
    Backup {
        /// Default: a dated file in backup.dir, else in the current directory.
        file: Option<PathBuf>,
    },
    /// Put a backup in place of the database (the bot must be stopped);
    /// the replaced database is kept beside it.
    Restore {
        file: PathBuf,
        /// Replace a database that has changes newer than the backup.
        #[arg(long)]
        force: bool,
    },
    /// Check settings, database, platforms, dashboard, fonts, disk and
    /// clock; one line each. Exits 1 when a check fails.
    Doctor,
    /// Install tuanbot as a system service.
    Service {
        #[command(subcommand)]
        what: ServiceWhat,
    },
    /// Copy every record from one database into another, empty one
    /// (e.g. SQLite → PostgreSQL). Stop the bot first.
    Copy {
        /// Source, e.g. sqlite://tuanbot.db
        #[arg(long)]
        from: String,
        /// Target, e.g. postgres://tuanbot@127.0.0.1/tuanbot
        #[arg(long)]
        to: String,
    },
    /// Import data from a file.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Read a one-line activity report as `/log` would (no database needed).
    Parse {
        /// The day the report is read on (default: today in the configured zone).
        #[arg(long)]
        today: Option<chrono::NaiveDate>,
        /// Print the result as one JSON object per line.
        #[arg(long)]
        json: bool,
        /// The report text, e.g. "/log 3月5日 学雷锋志愿服务 45人 90小时 三里铺".
        text: String,
    },
    /// Export data to a file (staff data: full details).
    Export {
        #[command(subcommand)]
        what: ExportWhat,
    },
    /// The work summary (工作总结) for a period: Markdown draft or XLSX.
    Report {
        #[arg(long)]
        from: chrono::NaiveDate,
        #[arg(long)]
        to: chrono::NaiveDate,
        /// One org (full name, short name or alias) with the orgs under it; default the county.
        #[arg(long)]
        org: Option<String>,
        /// `md` or `xlsx`; default by the file's extension.
        #[arg(long, value_enum)]
        format: Option<tuanbot::report::FileFormat>,
        file: PathBuf,
    },
    /// The star rating (星级评定) of every org for a period: Markdown or XLSX.
    Stars {
        #[arg(long)]
        from: chrono::NaiveDate,
        #[arg(long)]
        to: chrono::NaiveDate,
        /// `md` or `xlsx`; default by the file's extension.
        #[arg(long, value_enum)]
        format: Option<tuanbot::report::FileFormat>,
        file: PathBuf,
    },
    /// Updates whose handling failed three times (kept, with their error).
    Failed {
        #[command(subcommand)]
        what: FailedWhat,
    },
    /// Benchmarks; each prints one JSON object.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand)]
enum ServiceWhat {
    /// Write a systemd unit that runs `tuanbot run` as an unprivileged user.
    Install {
        /// The user (and group) the service runs as.
        #[arg(long, default_value = "tuanbot")]
        user: String,
        /// The service's working directory (where sqlite:// files live).
        #[arg(long, default_value = "/var/lib/tuanbot")]
        dir: PathBuf,
        /// The settings file the service reads (default: --config, else
        /// /etc/tuanbot/tuanbot.toml).
        #[arg(long = "settings")]
        settings_file: Option<PathBuf>,
        /// Where the unit goes.
        #[arg(long, default_value = "/etc/systemd/system")]
        unit_dir: PathBuf,
        /// Replace an existing unit.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum FailedWhat {
    /// Every failed update: when, where, who, what it said, the error.
    List,
    /// Run a failed update through the engine again (as of when it came);
    /// removed from the list when it succeeds. Its replies are sent by the
    /// running bot.
    Retry { id: i64 },
    /// Remove a failed update without running it.
    Drop { id: i64 },
}

#[derive(Subcommand)]
enum ExportWhat {
    /// Activities in a date range, as XLSX or CSV (by the file's extension).
    Activities {
        #[arg(long)]
        from: chrono::NaiveDate,
        #[arg(long)]
        to: chrono::NaiveDate,
        /// One org (full name, short name or alias); default all.
        #[arg(long)]
        org: Option<String>,
        file: PathBuf,
    },
    /// A sign-up list (报名 / 接龙) as XLSX.
    Event { id: i64, file: PathBuf },
    /// A micro-wish batch: status, org, claimer, dates, proof (XLSX).
    Wishes {
        #[arg(long)]
        batch: String,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// `/log` lines parsed per second on one thread.
    Parse {
        #[arg(long, default_value_t = 200_000)]
        messages: usize,
    },
    /// A micro-wish claim rush through the real engine (group commit). Uses a
    /// fresh temporary SQLite file unless --db is given (a PostgreSQL URL
    /// gets a fresh schema, dropped afterwards).
    Claims {
        #[arg(long, default_value_t = 800)]
        wishes: usize,
        #[arg(long, default_value_t = 44)]
        orgs: usize,
        /// Simulated users per org.
        #[arg(long, default_value_t = 10)]
        users: usize,
        /// Claim messages each user sends.
        #[arg(long, default_value_t = 25)]
        claims: usize,
        /// Per-org quota (default: wishes / orgs + 2).
        #[arg(long)]
        quota: Option<i64>,
        /// SQLite synchronous: full or normal.
        #[arg(long, default_value = "full")]
        sync: String,
        /// Offer this many claims per second on a fixed schedule (open loop,
        /// latency from each claim's scheduled arrival); 0: every user
        /// claims again as soon as answered (closed loop, peak claims/s).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Append the update id of each answered claim to this file, as
        /// answered (for crash tests).
        #[arg(long)]
        acks: Option<PathBuf>,
    },
    /// The Telegram adapter against a fake Bot API: updates/s, update→reply
    /// latency, and a broadcast under the rate limits.
    Telegram {
        #[arg(long, default_value_t = 2000)]
        updates: usize,
        #[arg(long, default_value_t = 200)]
        latency_samples: usize,
        #[arg(long, default_value_t = 216)]
        groups: usize,
        /// Database for the run (default: fresh temporary SQLite files).
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum ImportWhat {
    /// The county's org list (CSV or XLSX: 全称, 简称, 类别, 上级, 书记).
    Orgs { file: PathBuf },
    /// FAQ entries: Markdown (`## 问题` then the answer) or CSV/XLSX (问题, 答案).
    Faq { file: PathBuf },
    /// A micro-wish batch (CSV or XLSX: 学校, 年级, 学生, 心愿, 估价（元）, 备注).
    Wishes {
        file: PathBuf,
        /// Name of the batch, e.g. 2026圆梦.
        #[arg(long)]
        batch: String,
    },
    /// The member roster (CSV or XLSX: 组织, 姓名, QQ号, Telegram, 角色):
    /// replaces the roster of every org in the file; listed QQ numbers and
    /// Telegram usernames join their org on sight, and pending requests
    /// they match are approved.
    Roster { file: PathBuf },
}

/// A failure the command has already reported (exit code 1, nothing more).
#[derive(Debug)]
struct Quiet;

impl std::fmt::Display for Quiet {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

impl std::error::Error for Quiet {}

/// Logs to standard error, filtered by `TUANBOT_LOG`, as text or JSON.
fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TUANBOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut sources = Sources {
        file: cli.config.clone(),
        ..Default::default()
    };
    if let Some(db) = &cli.db {
        sources.overrides.push(("database_url".into(), db.clone()));
    }
    let settings = match Settings::load(&sources) {
        Ok(s) => s,
        Err(e) if matches!(cli.command, Some(Cmd::Doctor)) => {
            let check = tuanbot::ops::doctor::settings_error("zh-CN", &e.to_string());
            println!("{}", check.line("zh-CN"));
            return std::process::ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logs(&settings.log.format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let explicit_db = cli.db.is_some();
    let cmd = cli.command.unwrap_or(Cmd::Run);
    match runtime.block_on(run(cmd, settings, explicit_db, cli.config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The command has said why.
        Err(e) if e.is::<Quiet>() => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether a command works on the configured database: it then holds it
/// (shared) while it runs, so a restore refuses meanwhile.
fn uses_database(cmd: &Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Run
            | Cmd::Console { .. }
            | Cmd::Migrate { check: false }
            | Cmd::Import { .. }
            | Cmd::Export { .. }
            | Cmd::Report { .. }
            | Cmd::Stars { .. }
    )
}

async fn run(
    cmd: Cmd,
    settings: Settings,
    explicit_db: bool,
    config_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let _held = if uses_database(&cmd) {
        Some(tuanbot::ops::lock::for_command(&settings).await?)
    } else {
        None
    };
    match cmd {
        Cmd::Run => {
            if settings.telegram_enabled() || settings.onebot_enabled() || settings.qqbot_enabled()
            {
                return app::run_platforms(settings).await;
            }
            console(settings, None, false).await
        }
        Cmd::Console { script, json } => console(settings, script, json).await,
        Cmd::Migrate { check: true } => {
            if tuanbot::ops::cli::migrate_check(&settings).await? > 0 {
                return Err(Quiet.into());
            }
            Ok(())
        }
        Cmd::Backup { file } => tuanbot::ops::cli::backup(&settings, file).await,
        Cmd::Restore { file, force } => tuanbot::ops::cli::restore(&settings, &file, force).await,
        Cmd::Doctor => {
            let checks = tuanbot::ops::doctor::run(&settings, chrono::Utc::now()).await;
            for c in &checks {
                println!("{}", c.line(&settings.locale));
            }
            if tuanbot::ops::doctor::failed(&checks) {
                return Err(Quiet.into());
            }
            Ok(())
        }
        Cmd::Service {
            what:
                ServiceWhat::Install {
                    user,
                    dir,
                    settings_file,
                    unit_dir,
                    force,
                },
        } => {
            let config = settings_file
                .or(config_file)
                .unwrap_or_else(|| PathBuf::from("/etc/tuanbot/tuanbot.toml"));
            tuanbot::ops::cli::install_service(&settings, &user, &dir, &config, &unit_dir, force)
        }
        Cmd::Copy { from, to } => tuanbot::ops::cli::copy(&settings, &from, &to).await,
        Cmd::Migrate { check: false } => {
            let store = app::open_store(&settings).await?;
            let db = app::redact(&settings.database_url);
            println!("{}", tr(&settings.locale, "cli.migrated", &[("db", &db)]));
            store.close().await;
            Ok(())
        }
        Cmd::Import {
            what: ImportWhat::Orgs { file },
        } => import_orgs(settings, file).await,
        Cmd::Import {
            what: ImportWhat::Faq { file },
        } => {
            let list =
                tuanbot::faq::read_file(&file, &settings.locale).map_err(|e| anyhow::anyhow!(e))?;
            let store = app::open_store(&settings).await?;
            let now = tuanbot::store::ms(chrono::Utc::now());
            let (added, skipped) = tuanbot::faq::import(&store, &list, now).await?;
            let args: [(&str, &dyn std::fmt::Display); 2] =
                [("added", &added), ("skipped", &skipped)];
            println!("{}", tr(&settings.locale, "faq.imported", &args));
            store.close().await;
            Ok(())
        }
        Cmd::Parse { today, json, text } => {
            let tz = settings.tz()?;
            let today = today.unwrap_or_else(|| chrono::Utc::now().with_timezone(&tz).date_naive());
            let rules = settings.activity_rules()?;
            // one record per activity: per line, and per part of a line that holds several
            for report in tuanbot::command::activity::parse_activity_lines(&text, today, &rules) {
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
            }
            Ok(())
        }
        Cmd::Export {
            what:
                ExportWhat::Activities {
                    from,
                    to,
                    org,
                    file,
                },
        } => export_activities(settings, from, to, org, file).await,
        Cmd::Export {
            what: ExportWhat::Event { id, file },
        } => export_event(settings, id, file).await,
        Cmd::Report {
            from,
            to,
            org,
            format,
            file,
        } => {
            let format = format
                .or_else(|| tuanbot::report::FileFormat::from_path(&file))
                .unwrap_or(tuanbot::report::FileFormat::Md);
            let store = app::open_store(&settings).await?;
            let at = tuanbot::report::Judged {
                now_ms: tuanbot::store::ms(chrono::Utc::now()),
                overdue_days: settings.wishes.overdue_days,
            };
            let (tz, loc) = (settings.tz()?, settings.locale.as_str());
            let org = org.as_deref();
            let chart = tuanbot::service::reports::export_file(
                &store, tz, loc, org, from, to, format, &file, at,
            )
            .await?;
            println!("{}", tr(loc, "report.wrote", &[("file", &file.display())]));
            if let Some(png) = chart {
                println!("{}", tr(loc, "report.wrote", &[("file", &png.display())]));
            }
            store.close().await;
            Ok(())
        }
        Cmd::Stars {
            from,
            to,
            format,
            file,
        } => {
            let format = format
                .or_else(|| tuanbot::report::FileFormat::from_path(&file))
                .unwrap_or(tuanbot::report::FileFormat::Md);
            let scheme = settings.star_scheme()?;
            let store = app::open_store(&settings).await?;
            let at = tuanbot::report::Judged {
                now_ms: tuanbot::store::ms(chrono::Utc::now()),
                overdue_days: settings.wishes.overdue_days,
            };
            let (tz, loc) = (settings.tz()?, settings.locale.as_str());
            tuanbot::report::export_stars(&store, tz, loc, &scheme, from, to, format, &file, at)
                .await?;
            println!("{}", tr(loc, "stars.wrote", &[("file", &file.display())]));
            store.close().await;
            Ok(())
        }
        Cmd::Failed { what } => failed(settings, what).await,
        Cmd::Bench {
            what: BenchWhat::Parse { messages },
        } => {
            let result = tuanbot::bench::parse::run(messages);
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
        Cmd::Import {
            what: ImportWhat::Wishes { file, batch },
        } => {
            let locale = settings.locale.clone();
            let store = app::open_store(&settings).await?;
            let result =
                tuanbot::service::wishes::import_file(&store, &file, &batch, &locale).await;
            store.close().await;
            match result {
                Ok(n) => {
                    println!(
                        "{}",
                        tr(
                            &locale,
                            "wishes.cli.imported",
                            &[("name", &batch), ("n", &n)]
                        )
                    );
                    Ok(())
                }
                Err(e) => anyhow::bail!("{}\n{e}", tr(&locale, "import.failed", &[])),
            }
        }
        Cmd::Import {
            what: ImportWhat::Roster { file },
        } => {
            let locale = settings.locale.clone();
            let store = app::open_store(&settings).await?;
            let result =
                tuanbot::service::members::import_roster_file(&store, &file, &locale).await;
            store.close().await;
            match result {
                Ok(s) => {
                    println!(
                        "{}",
                        tr(
                            &locale,
                            "members.roster.cli_done",
                            &[
                                ("orgs", &s.orgs),
                                ("n", &s.people),
                                ("approved", &s.approved)
                            ]
                        )
                    );
                    Ok(())
                }
                Err(e) => anyhow::bail!(
                    "{}
{e}",
                    tr(&locale, "import.failed", &[])
                ),
            }
        }
        Cmd::Export {
            what: ExportWhat::Wishes { batch, file },
        } => {
            let store = app::open_store(&settings).await?;
            let tz = settings.tz()?;
            let result =
                tuanbot::service::wish_export::export(&store, &batch, &file, tz, &settings.locale)
                    .await;
            store.close().await;
            let n = result?;
            println!(
                "{}",
                tr(
                    &settings.locale,
                    "wishes.cli.exported",
                    &[("name", &batch), ("n", &n), ("file", &file.display())]
                )
            );
            Ok(())
        }
        Cmd::Bench {
            what:
                BenchWhat::Claims {
                    wishes,
                    orgs,
                    users,
                    claims,
                    quota,
                    sync,
                    rate,
                    acks,
                },
        } => {
            let opts = tuanbot::bench::claims::Options {
                wishes,
                orgs,
                users,
                claims_per_user: claims,
                quota,
                sync,
                rate,
                acks,
            };
            let url = explicit_db.then(|| settings.database_url.clone());
            let report = tuanbot::bench::claims::run_fresh(url.as_deref(), &opts).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Cmd::Bench {
            what:
                BenchWhat::Telegram {
                    updates,
                    latency_samples,
                    groups,
                    database_url,
                },
        } => {
            let result = tuanbot::bench::telegram::run(
                settings,
                database_url,
                updates,
                latency_samples,
                groups,
            )
            .await?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
    }
}

async fn export_activities(
    settings: Settings,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    org: Option<String>,
    file: PathBuf,
) -> anyhow::Result<()> {
    let store = app::open_store(&settings).await?;
    let org_id = match &org {
        None => None,
        Some(name) => {
            let mut conn = store.conn().await?;
            let all = tuanbot::store::orgs::all(&mut conn).await?;
            let aliases = tuanbot::store::orgs::aliases(&mut conn).await?;
            match tuanbot::service::orgs::resolve(name, &all, &aliases) {
                tuanbot::service::orgs::OrgMatch::One(o) => Some(o.id),
                _ => anyhow::bail!(
                    "{}",
                    tr(&settings.locale, "org.not_found", &[("query", name)])
                ),
            }
        }
    };
    let (from_s, to_s) = (
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    );
    let filter = tuanbot::store::activities::Filter {
        from: &from_s,
        to: &to_s,
        org_id,
    };
    let n = tuanbot::export::activities(&store, &filter, settings.tz()?, &file).await?;
    println!(
        "{}",
        tr(
            &settings.locale,
            "cli.exported",
            &[("n", &n), ("file", &file.display())]
        )
    );
    store.close().await;
    Ok(())
}

async fn console(settings: Settings, script: Option<String>, json: bool) -> anyhow::Result<()> {
    let locale = settings.locale.clone();
    let bot = settings.bot_name.clone();
    let db = app::redact(&settings.database_url);
    let sink: Sink = Arc::new(Mutex::new(Box::new(std::io::stdout())));
    let (mut console, engine) = app::console(settings, sink, json).await?;
    let seeded = app::seed_demo_if_empty(&engine.store, &locale).await?;
    // The dashboard runs beside the console when configured.
    let (stop_web, web_shutdown) = tokio::sync::watch::channel(false);
    let web = app::start_web(&engine, web_shutdown).await?;
    match script {
        None => {
            println!(
                "{}",
                tr(&locale, "console.banner", &[("bot", &bot), ("db", &db)])
            );
            if seeded > 0 {
                println!("{}", tr(&locale, "console.demo_seeded", &[("n", &seeded)]));
            }
            let prompt = std::io::stdin().is_terminal();
            console
                .run(BufReader::new(tokio::io::stdin()), prompt)
                .await?;
        }
        Some(path) if path == "-" => {
            console
                .run(BufReader::new(tokio::io::stdin()), false)
                .await?
        }
        Some(path) => {
            let file = tokio::fs::File::open(&path)
                .await
                .with_context(|| format!("--script {path}"))?;
            console.run(BufReader::new(file), false).await?;
        }
    }
    let _ = stop_web.send(true);
    if let Some(web) = web {
        let _ = web.await;
    }
    engine.store.close().await;
    Ok(())
}

/// `tuanbot failed list|retry ID|drop ID`.
async fn failed(settings: Settings, what: FailedWhat) -> anyhow::Result<()> {
    use tuanbot::engine::Retried;
    let locale = settings.locale.clone();
    let tz = settings.tz()?;
    let clock: Arc<dyn tuanbot::clock::Clock> = Arc::new(tuanbot::clock::SystemClock);
    let engine = app::engine(settings, clock).await?;
    let result = async {
        match what {
            FailedWhat::List => {
                let mut conn = engine.store.conn().await?;
                let rows = tuanbot::store::failed::list(&mut conn).await?;
                if rows.is_empty() {
                    println!("{}", tr(&locale, "failed.cli.none", &[]));
                }
                for f in rows {
                    let at = tuanbot::store::from_ms(f.failed_at)
                        .with_timezone(&tz)
                        .format("%Y-%m-%d %H:%M")
                        .to_string();
                    let args: [(&str, &dyn std::fmt::Display); 6] = [
                        ("id", &f.id),
                        ("at", &at),
                        ("platform", &f.platform),
                        ("chat", &f.chat_id),
                        ("sender", &f.sender_id),
                        ("tries", &f.tries),
                    ];
                    println!("{}", tr(&locale, "failed.cli.row", &args));
                    let text = one_line(&f.text, 200);
                    println!("{}", tr(&locale, "failed.cli.text", &[("text", &text)]));
                    let error = one_line(&f.error, 300);
                    println!("{}", tr(&locale, "failed.cli.error", &[("error", &error)]));
                }
                Ok(())
            }
            FailedWhat::Retry { id } => match engine.retry_failed(id).await? {
                Retried::NotFound => {
                    anyhow::bail!("{}", tr(&locale, "failed.cli.not_found", &[("id", &id)]))
                }
                Retried::Handled { replies } => {
                    let args: [(&str, &dyn std::fmt::Display); 2] =
                        [("id", &id), ("replies", &replies)];
                    println!("{}", tr(&locale, "failed.cli.retried", &args));
                    Ok(())
                }
                Retried::Duplicate => {
                    println!("{}", tr(&locale, "failed.cli.duplicate", &[("id", &id)]));
                    Ok(())
                }
                Retried::FailedAgain(error) => {
                    let args: [(&str, &dyn std::fmt::Display); 2] =
                        [("id", &id), ("error", &one_line(&error, 300))];
                    anyhow::bail!("{}", tr(&locale, "failed.cli.failed_again", &args))
                }
            },
            FailedWhat::Drop { id } => {
                if !engine.drop_failed(id).await? {
                    anyhow::bail!("{}", tr(&locale, "failed.cli.not_found", &[("id", &id)]));
                }
                println!("{}", tr(&locale, "failed.cli.dropped", &[("id", &id)]));
                Ok(())
            }
        }
    }
    .await;
    engine.store.close().await;
    result
}

/// `text` on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    tuanbot::service::clip(&flat, max)
}

async fn import_orgs(settings: Settings, file: PathBuf) -> anyhow::Result<()> {
    let locale = settings.locale.clone();
    let store = app::open_store(&settings).await?;
    let bar = ProgressBar::new(0);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let result = app::import_orgs_file(&store, &file, &locale, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .await;
    bar.finish_and_clear();
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            anyhow::bail!("{}\n{e}", tr(&locale, "import.failed", &[]));
        }
    };
    let mut conn = store.conn().await?;
    let total = tuanbot::store::orgs::count(&mut conn).await?;
    drop(conn);
    println!(
        "{}",
        tr(
            &locale,
            "import.done",
            &[
                ("inserted", &summary.inserted),
                ("updated", &summary.updated),
                ("unchanged", &summary.unchanged),
                ("total", &total),
            ]
        )
    );
    store.close().await;
    Ok(())
}

async fn export_event(settings: Settings, id: i64, file: PathBuf) -> anyhow::Result<()> {
    let locale = settings.locale.clone();
    let clock: Arc<dyn tuanbot::clock::Clock> = Arc::new(tuanbot::clock::SystemClock);
    let engine = app::engine(settings, clock).await?;
    let done = tuanbot::service::events::export_xlsx(&engine, id, &file, &locale).await;
    engine.store.close().await;
    match done? {
        Some((event, n)) => {
            let f = file.display();
            let args: [(&str, &dyn std::fmt::Display); 4] = [
                ("id", &id),
                ("title", &event.title),
                ("n", &n),
                ("file", &f),
            ];
            println!("{}", tr(&locale, "event_export.done", &args));
            Ok(())
        }
        None => anyhow::bail!("{}", tr(&locale, "event_export.not_found", &[("id", &id)])),
    }
}
