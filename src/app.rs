//! Building the application from settings: what `main` and the tests share.

use std::path::Path;
use std::sync::Arc;

use crate::chat::console::{Console, Sink};
use crate::clock::{Clock, ManualClock};
use crate::config::Settings;
use crate::engine::Engine;
use crate::service::import_orgs::{self, ImportError, ImportSummary};
use crate::store::{self, Store, orgs};
use crate::table::Table;

/// The demo county shipped for the console, used only on an empty database.
pub const DEMO_ORGS_CSV: &str = include_str!("../data/demo_orgs.csv");

/// Connect to the configured database and apply migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::open(&settings.database_url, &settings.sqlite_synchronous)
        .await
        .map_err(|e| anyhow::anyhow!("database {}: {e}", redact(&settings.database_url)))
}

/// Hide a password in a database URL before printing it.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub async fn engine(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Engine>> {
    let store = open_store(&settings).await?;
    Ok(Arc::new(Engine::new(store, settings, clock)?))
}

/// Import the demo org tree when there are no orgs at all. Returns how many
/// were imported (0 when the database already had orgs).
pub async fn seed_demo_if_empty(store: &Store, locale: &str) -> anyhow::Result<usize> {
    let mut conn = store.conn().await?;
    if orgs::count(&mut conn).await? > 0 {
        return Ok(0);
    }
    drop(conn);
    let table = Table::from_csv(DEMO_ORGS_CSV.as_bytes())?;
    let rows = import_orgs::validate(&table, locale)?;
    let now = store::ms(chrono::Utc::now());
    let s = import_orgs::import(store, &rows, "demo", now, locale, |_, _| {}).await?;
    Ok(s.inserted)
}

/// Read and import an org list file.
pub async fn import_orgs_file(
    store: &Store,
    path: &Path,
    locale: &str,
    progress: impl FnMut(usize, usize),
) -> Result<ImportSummary, ImportError> {
    let table = Table::read(path).map_err(|e| {
        ImportError::Invalid(vec![format!("{}: {}", path.display(), e.message(locale))])
    })?;
    let rows = import_orgs::validate(&table, locale)?;
    let now = store::ms(chrono::Utc::now());
    import_orgs::import(store, &rows, "cli", now, locale, progress).await
}

/// A console session over `settings`' database, writing to `sink`.
pub async fn console(
    settings: Settings,
    sink: Sink,
    json: bool,
) -> anyhow::Result<(Console, Arc<Engine>)> {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let engine = engine(settings, clock.clone()).await?;
    Ok((Console::new(engine.clone(), clock, sink, json), engine))
}

/// A dispatcher draining `sender`'s outbox until `shutdown`, its rows
/// leased for `outbox_lease_ms`.
fn spawn_dispatcher(
    engine: &Arc<Engine>,
    sender: Arc<dyn crate::chat::ChatSender>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let dispatcher = crate::outbox::Dispatcher::new(
        engine.store.clone(),
        sender,
        engine.clock.clone(),
        engine.outbox_ready.clone(),
    )
    .with_lease_ms(engine.settings.outbox_lease_ms);
    tokio::spawn(async move { dispatcher.run(shutdown).await })
}

/// The QQ side of a running bot: the OneBot adapter and its outbox
/// dispatcher, stopped together through the shutdown channel.
pub struct QqRunning {
    pub bot: Arc<crate::chat::onebot::OneBot>,
    pub adapter: crate::chat::onebot::Running,
    pub dispatcher: tokio::task::JoinHandle<()>,
}

/// Start the OneBot adapter (forward and/or reverse, as configured) and a
/// dispatcher draining the QQ outbox through it.
pub async fn start_qq(
    engine: &Arc<Engine>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<QqRunning> {
    let bot = crate::chat::onebot::OneBot::new(engine.clone());
    let adapter = bot.start(shutdown.clone()).await?;
    let dispatcher = spawn_dispatcher(engine, bot.clone(), shutdown);
    Ok(QqRunning {
        bot,
        adapter,
        dispatcher,
    })
}

/// Issue 22: the official QQ Bot API side of a running bot: the adapter
/// (gateway or webhook) and its outbox dispatcher.
pub struct QqBotRunning {
    pub bot: Arc<crate::chat::qqbot::QqBot>,
    pub adapter: crate::chat::qqbot::Running,
    pub dispatcher: tokio::task::JoinHandle<()>,
}

/// Start the QQ Bot API adapter and a dispatcher draining its outbox.
pub async fn start_qqbot(
    engine: &Arc<Engine>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<QqBotRunning> {
    let bot = crate::chat::qqbot::QqBot::new(engine.clone())?;
    let adapter = bot.start(shutdown.clone()).await?;
    let dispatcher = spawn_dispatcher(engine, bot.clone(), shutdown);
    Ok(QqBotRunning {
        bot,
        adapter,
        dispatcher,
    })
}

/// The Telegram side of a running bot: the adapter (polling or webhook)
/// and its outbox dispatcher, stopped together through the shutdown channel.
pub struct TelegramRunning {
    pub bot: Arc<crate::chat::telegram::Telegram>,
    pub adapter: crate::chat::telegram::Running,
    pub dispatcher: tokio::task::JoinHandle<()>,
}

/// Start the Telegram adapter (`getMe`, command menu, polling or webhook)
/// and a dispatcher draining the Telegram outbox through it.
pub async fn start_telegram(
    engine: &Arc<Engine>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<TelegramRunning> {
    let bot = crate::chat::telegram::Telegram::new(engine.clone())?;
    let adapter = bot.start(shutdown.clone()).await?;
    let dispatcher = spawn_dispatcher(engine, bot.clone(), shutdown);
    Ok(TelegramRunning {
        bot,
        adapter,
        dispatcher,
    })
}

/// Start the web dashboard on `web.listen` when it is configured; `None`
/// when it is off. It stops when `shutdown` turns true.
pub async fn start_web(
    engine: &Arc<Engine>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let (true, Some(addr)) = (
        engine.settings.web_enabled(),
        engine.settings.web.listen.clone(),
    ) else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("web.listen {addr}: {e}"))?;
    tracing::info!(%addr, "web dashboard listening");
    let engine = engine.clone();
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = crate::web::serve(engine, listener, shutdown).await {
            tracing::error!(error = %e, "web dashboard stopped");
        }
    })))
}

/// Ctrl-C, or SIGTERM (how systemd and container engines stop a service).
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// `tuanbot run` with platforms configured: serve until Ctrl-C. QQ and
/// Telegram run in one process over one store (and the QQ Bot API).
pub async fn run_platforms(settings: Settings) -> anyhow::Result<()> {
    let engine = engine(settings, Arc::new(crate::clock::SystemClock)).await?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut dispatchers = Vec::new();
    let mut tasks = Vec::new();
    if engine.settings.onebot_enabled() {
        let qq = start_qq(&engine, shutdown.clone()).await?;
        dispatchers.push(qq.dispatcher);
        tasks.extend(qq.adapter.tasks);
    }
    // Issue 22: the official QQ Bot API beside OneBot and Telegram.
    if engine.settings.qqbot_enabled() {
        let qb = start_qqbot(&engine, shutdown.clone()).await?;
        dispatchers.push(qb.dispatcher);
        tasks.extend(qb.adapter.tasks);
    }
    if engine.settings.telegram_enabled() {
        let tg = start_telegram(&engine, shutdown.clone()).await?;
        dispatchers.push(tg.dispatcher);
        tasks.extend(tg.adapter.tasks);
    }
    let web = start_web(&engine, shutdown.clone()).await?;
    // Scheduled jobs (notice reminders, deadlines, backups) run beside the
    // adapters.
    crate::ops::backup::ensure_scheduled(&engine).await?;
    let jobs = tokio::spawn(crate::jobs::run(engine.env(), shutdown));
    stop_signal().await?;
    let _ = stop.send(true);
    for d in dispatchers {
        let _ = d.await;
    }
    let _ = jobs.await;
    if let Some(web) = web {
        let _ = web.await;
    }
    for task in tasks {
        task.abort();
    }
    engine.store.close().await;
    Ok(())
}
