//! `tuanbot doctor`: why the bot does not answer, in one screen. Each
//! check prints one line — ✅ fine, ⚠️ worth a look, ❌ broken, with what to
//! do — and the command exits non-zero when any check fails.
//!
//! Checks: the settings, the database (reachable, sound, migrated, in use
//! by a running bot), backups, each configured platform, the dashboard's
//! listen address and public URL, a CJK font for charts, free disk, and
//! the clock. A platform adds its checks to [`PLATFORMS`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use rust_i18n::t;
use serde_json::{Value, json};

use super::Target;
use super::lock::{self, LockError};
use super::schema::{self, Status};
use crate::chat::BoxFuture;
use crate::config::Settings;
use crate::store::{self, Backend, maintenance};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn mark(self) -> &'static str {
        match self {
            Level::Ok => "✅",
            Level::Warn => "⚠️",
            Level::Fail => "❌",
        }
    }
}

/// One line of the doctor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub level: Level,
    /// What was checked ("数据库", "Telegram" …).
    pub topic: String,
    /// What was found and, unless fine, what to do.
    pub text: String,
}

impl Check {
    fn new(level: Level, topic: impl Into<String>, text: impl Into<String>) -> Check {
        Check {
            level,
            topic: topic.into(),
            text: text.into(),
        }
    }

    /// `✅ 数据库：…`
    pub fn line(&self, locale: &str) -> String {
        let colon = if locale == "en" { ": " } else { "：" };
        format!("{} {}{colon}{}", self.level.mark(), self.topic, self.text)
    }
}

/// Whether any check failed (the command's exit code).
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.level == Level::Fail)
}

/// The line for settings that could not be loaded (the other checks need
/// them).
pub fn settings_error(locale: &str, error: &str) -> Check {
    Check::new(
        Level::Fail,
        t!("doctor.settings", locale = locale),
        t!("doctor.settings_bad", locale = locale, error = error),
    )
}

/// What the checks share.
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    pub locale: &'a str,
    pub now: DateTime<Utc>,
    /// How long one network probe may take.
    pub timeout: Duration,
    /// Whether a tuanbot process holds the database (found by the
    /// database check).
    pub running: bool,
    /// Clocks met on the way (a server's `Date`), for the clock check.
    pub clocks: std::sync::Mutex<Vec<(String, DateTime<Utc>)>>,
}

/// A platform's checks: run when `enabled` says the platform is configured.
pub struct PlatformChecks {
    pub enabled: fn(&Settings) -> bool,
    pub run: for<'a> fn(&'a Ctx<'a>) -> BoxFuture<'a, Vec<Check>>,
}

/// Every platform's checks. A new adapter adds an entry here.
pub const PLATFORMS: &[PlatformChecks] = &[
    PlatformChecks {
        enabled: Settings::telegram_enabled,
        run: |c| Box::pin(telegram(c)),
    },
    PlatformChecks {
        enabled: Settings::onebot_enabled,
        run: |c| Box::pin(onebot(c)),
    },
    PlatformChecks {
        enabled: Settings::qqbot_enabled,
        run: |c| Box::pin(qqbot(c)),
    },
];

/// Run every check, in order.
pub async fn run(settings: &Settings, now: DateTime<Utc>) -> Vec<Check> {
    let mut ctx = Ctx {
        settings,
        locale: settings.locale.as_str(),
        now,
        timeout: Duration::from_millis(settings.onebot.action_timeout_ms.clamp(500, 10_000)),
        running: false,
        clocks: Default::default(),
    };
    let mut checks = settings_checks(&ctx);
    let (db, running, newest) = database(&ctx).await;
    checks.extend(db);
    ctx.running = running;
    checks.extend(backups(&ctx).await);
    for p in PLATFORMS {
        if (p.enabled)(settings) {
            checks.extend((p.run)(&ctx).await);
        }
    }
    checks.extend(dashboard(&ctx).await);
    checks.push(font(&ctx));
    checks.extend(disk(&ctx));
    checks.push(clock(&ctx, newest).await);
    checks
}

fn settings_checks(ctx: &Ctx<'_>) -> Vec<Check> {
    let (s, l) = (ctx.settings, ctx.locale);
    let topic = t!("doctor.settings", locale = l);
    let mut out = vec![Check::new(
        Level::Ok,
        topic.clone(),
        t!(
            "doctor.settings_ok",
            locale = l,
            zone = s.timezone,
            locale_name = s.locale
        ),
    )];
    if !s.telegram_enabled() && !s.onebot_enabled() {
        out.push(Check::new(
            Level::Warn,
            topic.clone(),
            t!("doctor.no_platform", locale = l),
        ));
    }
    if s.admins.is_empty() {
        out.push(Check::new(
            Level::Warn,
            topic,
            t!("doctor.no_admins", locale = l),
        ));
    }
    out
}

/// The database checks; also whether a tuanbot process uses it and the
/// time of its newest change.
async fn database(ctx: &Ctx<'_>) -> (Vec<Check>, bool, Option<i64>) {
    let (s, l) = (ctx.settings, ctx.locale);
    let topic = t!("doctor.database", locale = l).into_owned();
    let shown = crate::app::redact(&s.database_url);
    let fail = |text: String| {
        (
            vec![Check::new(Level::Fail, topic.clone(), text)],
            false,
            None,
        )
    };
    let target = match Target::of(&s.database_url) {
        Ok(t) => t,
        Err(e) => return fail(t!("doctor.db_bad_url", locale = l, error = e.to_string()).into()),
    };
    if let Target::Sqlite(path) = &target
        && !path.exists()
    {
        return (
            vec![Check::new(
                Level::Warn,
                topic,
                t!(
                    "doctor.db_missing",
                    locale = l,
                    path = path.display().to_string()
                ),
            )],
            false,
            None,
        );
    }
    let conn = tokio::time::timeout(
        ctx.timeout.max(Duration::from_secs(5)),
        super::connect_existing(&s.database_url),
    )
    .await;
    let mut conn = match conn {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => return fail(t!("doctor.db_memory", locale = l).into()),
        Ok(Err(e)) => {
            return fail(
                t!(
                    "doctor.db_unreachable",
                    locale = l,
                    db = shown,
                    error = e.to_string()
                )
                .into(),
            );
        }
        Err(_) => return fail(t!("doctor.db_timeout", locale = l, db = shown).into()),
    };
    let backend = target.backend();
    let mut out = Vec::new();
    if backend == Backend::Sqlite {
        match maintenance::integrity_problems(&mut conn).await {
            Ok(None) => {}
            Ok(Some(p)) => {
                out.push(Check::new(
                    Level::Fail,
                    topic.clone(),
                    t!("doctor.db_damaged", locale = l, problems = p),
                ));
            }
            Err(e) => {
                out.push(Check::new(
                    Level::Fail,
                    topic.clone(),
                    t!(
                        "doctor.db_unreachable",
                        locale = l,
                        db = shown,
                        error = e.to_string()
                    ),
                ));
            }
        }
    }
    let status = match Status::read(&mut conn, backend).await {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::new(
                Level::Fail,
                topic,
                t!(
                    "doctor.db_unreachable",
                    locale = l,
                    db = shown,
                    error = e.to_string()
                ),
            ));
            return (out, false, None);
        }
    };
    let counts = if status.applied.is_empty() {
        None
    } else {
        maintenance::counts(&mut conn).await.ok()
    };
    let _ = sqlx::Connection::close(conn).await;
    let version = schema::version_name(status.version());
    if status.is_foreign() {
        let v = status.foreign_versions();
        out.push(Check::new(
            Level::Fail,
            topic.clone(),
            t!("doctor.db_newer", locale = l, versions = v),
        ));
    } else if !status.pending.is_empty() {
        let v: Vec<String> = status
            .pending
            .iter()
            .map(|(v, d)| format!("{} {d}", schema::version_name(*v)))
            .collect();
        out.push(Check::new(
            Level::Warn,
            topic.clone(),
            t!(
                "doctor.db_pending",
                locale = l,
                db = shown,
                version = version,
                pending = v.join(", ")
            ),
        ));
    } else {
        let c = counts.unwrap_or_default();
        out.push(Check::new(
            Level::Ok,
            topic.clone(),
            t!(
                "doctor.db_ok",
                locale = l,
                db = shown,
                version = version,
                orgs = c.orgs,
                people = c.people
            ),
        ));
    }
    let running = matches!(lock::exclusive(&s.database_url).await, Err(LockError::Busy));
    let configured = s.telegram_enabled() || s.onebot_enabled();
    out.push(match (running, configured) {
        (true, _) => Check::new(Level::Ok, topic, t!("doctor.running", locale = l)),
        (false, true) => Check::new(Level::Warn, topic, t!("doctor.not_running", locale = l)),
        (false, false) => Check::new(
            Level::Ok,
            topic,
            t!("doctor.not_running_console", locale = l),
        ),
    });
    (out, running, counts.and_then(|c| c.newest_change_ms))
}

async fn backups(ctx: &Ctx<'_>) -> Vec<Check> {
    let (s, l) = (ctx.settings, ctx.locale);
    let topic = t!("doctor.backups", locale = l).into_owned();
    let Some(dir) = &s.backup.dir else {
        return vec![Check::new(
            Level::Warn,
            topic,
            t!("doctor.backup_off", locale = l),
        )];
    };
    let shown = dir.display().to_string();
    if let Err(e) = writable(dir) {
        return vec![Check::new(
            Level::Fail,
            topic,
            t!(
                "doctor.backup_dir_bad",
                locale = l,
                dir = shown,
                error = e.to_string()
            ),
        )];
    }
    let mut out = Vec::new();
    if matches!(Target::of(&s.database_url), Ok(Target::Postgres(_)))
        && super::find_program("pg_dump").is_none()
    {
        out.push(Check::new(
            Level::Fail,
            topic.clone(),
            t!("doctor.no_pg_dump", locale = l),
        ));
    }
    // The last scheduled run, as the bot recorded it.
    if let Ok(Some(mut conn)) = super::connect_existing(&s.database_url).await {
        if let Ok(Some(last)) = super::backup::last(&mut conn).await
            && let Some(error) = last.error
        {
            out.push(Check::new(
                Level::Fail,
                topic.clone(),
                t!(
                    "doctor.backup_failed",
                    locale = l,
                    at = local(ctx, last.at_ms),
                    error = error
                ),
            ));
        }
        let _ = sqlx::Connection::close(conn).await;
    }
    let every = s.backup.interval().unwrap_or(chrono::Duration::days(1));
    match super::backup::newest(dir) {
        None => out.push(Check::new(
            Level::Warn,
            topic,
            t!("doctor.backup_none", locale = l, dir = shown),
        )),
        Some((path, modified)) => {
            let at: DateTime<Utc> = modified.into();
            let text_at = local(ctx, store::ms(at));
            let file = path.display().to_string();
            if ctx.now - at > every * 2 {
                out.push(Check::new(
                    Level::Warn,
                    topic,
                    t!("doctor.backup_old", locale = l, file = file, at = text_at),
                ));
            } else {
                out.push(Check::new(
                    Level::Ok,
                    topic,
                    t!(
                        "doctor.backup_ok",
                        locale = l,
                        file = file,
                        at = text_at,
                        keep = s.backup.keep
                    ),
                ));
            }
        }
    }
    out
}

/// Whether a file can be created in `dir` (created if missing).
fn writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(".tuanbot-doctor");
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}

fn local(ctx: &Ctx<'_>, ms: i64) -> String {
    let tz = ctx.settings.tz().unwrap_or(chrono_tz::Asia::Shanghai);
    store::from_ms(ms)
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// A JSON answer of the Bot API: its body and the server's clock.
async fn bot_api(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: &str,
) -> Result<(Value, Option<DateTime<Utc>>), String> {
    let url = format!("{}/bot{token}/{method}", base.trim_end_matches('/'));
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let date = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
        .map(|d| d.with_timezone(&Utc));
    let body: Value = resp.json().await.map_err(|e| e.without_url().to_string())?;
    Ok((body, date))
}

async fn telegram(ctx: &Ctx<'_>) -> Vec<Check> {
    let (s, l) = (ctx.settings, ctx.locale);
    let topic = "Telegram";
    let token = s.telegram.token.clone().unwrap_or_default();
    let base = s
        .telegram
        .api_url
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "https://api.telegram.org".into());
    let client = match reqwest::Client::builder().timeout(ctx.timeout).build() {
        Ok(c) => c,
        Err(e) => return vec![Check::new(Level::Fail, topic, e.to_string())],
    };
    let me = match bot_api(&client, &base, &token, "getMe").await {
        Ok((body, date)) => {
            if let Some(d) = date {
                let mut clocks = ctx.clocks.lock().unwrap_or_else(|e| e.into_inner());
                clocks.push(("Telegram".into(), d));
            }
            body
        }
        Err(e) => {
            return vec![Check::new(
                Level::Fail,
                topic,
                t!("doctor.tg_unreachable", locale = l, url = base, error = e),
            )];
        }
    };
    if me["ok"] != json!(true) {
        let code = me["error_code"].as_i64().unwrap_or(0);
        let text = if code == 401 || code == 404 {
            t!("doctor.tg_token", locale = l)
        } else {
            t!(
                "doctor.tg_error",
                locale = l,
                error = me["description"].as_str().unwrap_or("?")
            )
        };
        return vec![Check::new(Level::Fail, topic, text)];
    }
    let username = me["result"]["username"].as_str().unwrap_or("?").to_string();
    let mut out = vec![Check::new(
        Level::Ok,
        topic,
        t!("doctor.tg_ok", locale = l, username = username),
    )];
    let privacy = me["result"]["can_read_all_group_messages"] == json!(false);
    if privacy {
        out.push(Check::new(
            Level::Warn,
            topic,
            t!("doctor.tg_privacy", locale = l),
        ));
    }
    let info = match bot_api(&client, &base, &token, "getWebhookInfo").await {
        Ok((body, _)) if body["ok"] == json!(true) => body["result"].clone(),
        Ok((body, _)) => {
            out.push(Check::new(
                Level::Warn,
                topic,
                t!(
                    "doctor.tg_error",
                    locale = l,
                    error = body["description"].as_str().unwrap_or("?")
                ),
            ));
            return out;
        }
        Err(e) => {
            out.push(Check::new(
                Level::Warn,
                topic,
                t!("doctor.tg_unreachable", locale = l, url = base, error = e),
            ));
            return out;
        }
    };
    let registered = info["url"].as_str().unwrap_or_default();
    let pending = info["pending_update_count"].as_i64().unwrap_or(0);
    match s.telegram.webhook_url.as_deref().filter(|u| !u.is_empty()) {
        None if !registered.is_empty() => out.push(Check::new(
            Level::Warn,
            topic,
            t!("doctor.tg_webhook_set", locale = l, url = registered),
        )),
        None => out.push(Check::new(
            Level::Ok,
            topic,
            t!("doctor.tg_polling", locale = l, pending = pending),
        )),
        Some(want) if registered != want => out.push(Check::new(
            if ctx.running {
                Level::Fail
            } else {
                Level::Warn
            },
            topic,
            t!(
                "doctor.tg_webhook_other",
                locale = l,
                want = want,
                url = registered
            ),
        )),
        Some(want) => out.push(Check::new(
            Level::Ok,
            topic,
            t!(
                "doctor.tg_webhook_ok",
                locale = l,
                url = want,
                pending = pending
            ),
        )),
    }
    if let Some(error) = info["last_error_message"]
        .as_str()
        .filter(|e| !e.is_empty())
    {
        let at = info["last_error_date"]
            .as_i64()
            .map(|d| local(ctx, d * 1000))
            .unwrap_or_default();
        out.push(Check::new(
            Level::Warn,
            topic,
            t!(
                "doctor.tg_webhook_error",
                locale = l,
                at = at,
                error = error
            ),
        ));
    }
    if pending > 100 {
        out.push(Check::new(
            Level::Warn,
            topic,
            t!("doctor.tg_backlog", locale = l, pending = pending),
        ));
    }
    out
}

async fn onebot(ctx: &Ctx<'_>) -> Vec<Check> {
    let (s, l) = (ctx.settings, ctx.locale);
    let topic = "QQ (OneBot)";
    let mut out = Vec::new();
    if let Some(url) = &s.onebot.ws_url {
        out.push(match onebot_login(ctx, url).await {
            Ok((id, nick)) => Check::new(
                Level::Ok,
                topic,
                t!("doctor.ob_ok", locale = l, url = url, id = id, nick = nick),
            ),
            Err(text) => Check::new(Level::Fail, topic, text),
        });
    }
    if let Some(listen) = &s.onebot.listen {
        out.push(listen_check(ctx, topic, listen, "doctor.ob_listen").await);
    }
    out
}

/// Connect to the forward WebSocket and ask `get_login_info`.
async fn onebot_login(ctx: &Ctx<'_>, url: &str) -> Result<(String, String), String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};
    let l = ctx.locale;
    let mut req = url.into_client_request().map_err(|e| {
        t!(
            "doctor.ob_unreachable",
            locale = l,
            url = url,
            error = e.to_string()
        )
        .into_owned()
    })?;
    if let Some(token) = ctx
        .settings
        .onebot
        .access_token
        .as_deref()
        .filter(|t| !t.is_empty())
        && let Ok(v) = format!("Bearer {token}").parse()
    {
        req.headers_mut().insert("Authorization", v);
    }
    let conn = tokio::time::timeout(ctx.timeout, tokio_tungstenite::connect_async(req)).await;
    let mut ws = match conn {
        Err(_) => return Err(t!("doctor.ob_timeout", locale = l, url = url).into_owned()),
        Ok(Err(WsError::Http(resp)))
            if resp.status().as_u16() == 401 || resp.status().as_u16() == 403 =>
        {
            return Err(t!("doctor.ob_token", locale = l).into_owned());
        }
        Ok(Err(e)) => {
            return Err(t!(
                "doctor.ob_unreachable",
                locale = l,
                url = url,
                error = e.to_string()
            )
            .into_owned());
        }
        Ok(Ok((ws, _))) => ws,
    };
    let ask = json!({"action": "get_login_info", "params": {}, "echo": "tuanbot-doctor"});
    let answer = async {
        ws.send(Message::text(ask.to_string())).await.ok()?;
        while let Some(Ok(frame)) = ws.next().await {
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(&text).ok()?;
            if v["echo"] == json!("tuanbot-doctor") {
                return Some(v);
            }
        }
        None
    };
    let answer = tokio::time::timeout(ctx.timeout, answer).await;
    let _ = ws.close(None).await;
    match answer {
        Ok(Some(v)) if v["retcode"].as_i64() == Some(0) => Ok((
            v["data"]["user_id"]
                .to_string()
                .trim_matches('"')
                .to_string(),
            v["data"]["nickname"].as_str().unwrap_or("").to_string(),
        )),
        Ok(Some(v)) => Err(t!(
            "doctor.ob_refused",
            locale = l,
            error = v["wording"].as_str().or(v["msg"].as_str()).unwrap_or("?")
        )
        .into_owned()),
        _ => Err(t!("doctor.ob_no_answer", locale = l, url = url).into_owned()),
    }
}

/// The official QQ Bot API: an access token for `app_id` + `secret`, then
/// the OpenAPI with it (the gateway address, which also shows whether this
/// machine's IP is on the bot's allow-list); for the webhook transport, the
/// listen address.
async fn qqbot(ctx: &Ctx<'_>) -> Vec<Check> {
    use crate::chat::qqbot::api::{Api, ApiError};
    let (s, l) = (ctx.settings, ctx.locale);
    let topic = "QQ (开放平台)";
    let mut out = Vec::new();
    let mut cfg = s.qqbot.clone();
    cfg.request_timeout_ms = ctx.timeout.as_millis() as u64;
    let api = match Api::new(&cfg) {
        Ok(api) => api,
        Err(e) => {
            let error = e.to_string();
            return vec![Check::new(
                Level::Fail,
                topic,
                t!("doctor.qb_unreachable", locale = l, error = error),
            )];
        }
    };
    let app_id = api.app_id().to_string();
    let said = |e: &ApiError| match e {
        ApiError::Network(e) => t!("doctor.qb_unreachable", locale = l, error = e).into_owned(),
        // 11298: this machine's address is not on the allow-list.
        ApiError::Http { code: 11298, .. } => t!("doctor.qb_ip", locale = l).into_owned(),
        ApiError::Http {
            status, message, ..
        } if *status == 401 || message.contains("secret") || message.contains("appid") => {
            t!("doctor.qb_secret", locale = l, app_id = app_id).into_owned()
        }
        e => t!("doctor.qb_error", locale = l, error = e.to_string()).into_owned(),
    };
    match api.token().await {
        Err(e) => out.push(Check::new(Level::Fail, topic, said(&e))),
        Ok(_) => out.push(match api.gateway_url().await {
            Ok(_) => Check::new(
                Level::Ok,
                topic,
                t!(
                    "doctor.qb_ok",
                    locale = l,
                    app_id = app_id,
                    mode = if cfg.sandbox { "sandbox" } else { "production" }
                ),
            ),
            Err(e) => Check::new(Level::Fail, topic, said(&e)),
        }),
    }
    if cfg.transport == "webhook"
        && let Some(listen) = &cfg.webhook_listen
    {
        out.push(listen_check(ctx, topic, listen, "doctor.qb_listen").await);
    }
    out
}

/// A listen address: free (the bot will take it), taken by the running
/// bot, or taken by another program.
async fn listen_check(ctx: &Ctx<'_>, topic: &str, addr: &str, key: &str) -> Check {
    let l = ctx.locale;
    let Ok(sock) = addr.parse::<SocketAddr>() else {
        return Check::new(
            Level::Fail,
            topic,
            t!("doctor.listen_bad", locale = l, addr = addr),
        );
    };
    match tokio::net::TcpListener::bind(sock).await {
        Ok(_) => Check::new(Level::Ok, topic, t!(key, locale = l, addr = addr)),
        Err(_) if ctx.running => Check::new(
            Level::Ok,
            topic,
            t!("doctor.listen_ours", locale = l, addr = addr),
        ),
        Err(e) => Check::new(
            Level::Fail,
            topic,
            t!(
                "doctor.listen_taken",
                locale = l,
                addr = addr,
                error = e.to_string()
            ),
        ),
    }
}

async fn dashboard(ctx: &Ctx<'_>) -> Vec<Check> {
    let (s, l) = (ctx.settings, ctx.locale);
    let topic = t!("doctor.dashboard", locale = l).into_owned();
    let (Some(listen), Some(public)) = (&s.web.listen, s.web_base_url()) else {
        return Vec::new();
    };
    let mut out = vec![listen_check(ctx, &topic, listen, "doctor.web_listen").await];
    let loopback = url::Url::parse(public)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]")
        })
        .unwrap_or(false);
    if public.starts_with("http://") && !loopback {
        out.push(Check::new(
            Level::Warn,
            topic.clone(),
            t!("doctor.web_http", locale = l, url = public),
        ));
    }
    if ctx.running {
        let health = format!("{public}/healthz");
        let got = match reqwest::Client::builder().timeout(ctx.timeout).build() {
            Ok(c) => match c.get(&health).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
                Err(e) => Err(e.without_url().to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        out.push(match got {
            Ok(()) => Check::new(
                Level::Ok,
                topic,
                t!("doctor.web_ok", locale = l, url = health),
            ),
            Err(e) => Check::new(
                Level::Warn,
                topic,
                t!(
                    "doctor.web_unreachable",
                    locale = l,
                    url = health,
                    error = e
                ),
            ),
        });
    }
    out
}

fn font(ctx: &Ctx<'_>) -> Check {
    let l = ctx.locale;
    let topic = t!("doctor.font", locale = l);
    match crate::report::chart::font_path() {
        Some((path, true)) => Check::new(
            Level::Ok,
            topic,
            t!("doctor.font_ok", locale = l, path = path),
        ),
        Some((_, false)) => Check::new(Level::Warn, topic, t!("doctor.font_latin", locale = l)),
        None => Check::new(Level::Warn, topic, t!("doctor.font_none", locale = l)),
    }
}

/// Free space below which a check fails, and below which it warns.
const DISK_FAIL: u64 = 200 * 1024 * 1024;
const DISK_WARN: u64 = 1024 * 1024 * 1024;

/// How free space at a place is judged.
pub fn disk_level(free: u64) -> Level {
    if free < DISK_FAIL {
        Level::Fail
    } else if free < DISK_WARN {
        Level::Warn
    } else {
        Level::Ok
    }
}

fn disk(ctx: &Ctx<'_>) -> Vec<Check> {
    let (s, l) = (ctx.settings, ctx.locale);
    let topic = t!("doctor.disk", locale = l).into_owned();
    let mut places: Vec<PathBuf> = Vec::new();
    if let Ok(Target::Sqlite(db)) = Target::of(&s.database_url) {
        let dir = db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        places.push(dir.to_path_buf());
    }
    if let Some(b) = &s.backup.dir {
        places.push(b.clone());
    }
    if places.is_empty() {
        places.push(PathBuf::from("."));
    }
    places.dedup();
    places
        .iter()
        .map(|p| {
            let shown = p.display().to_string();
            match rustix::fs::statvfs(p) {
                Ok(st) => {
                    let free = st.f_bavail.saturating_mul(st.f_frsize);
                    let gb = format!("{:.1}", free as f64 / 1e9);
                    let level = disk_level(free);
                    let key = match level {
                        Level::Ok => "doctor.disk_ok",
                        Level::Warn => "doctor.disk_low",
                        Level::Fail => "doctor.disk_full",
                    };
                    Check::new(
                        level,
                        topic.clone(),
                        t!(key, locale = l, dir = shown, gb = gb),
                    )
                }
                Err(e) => Check::new(
                    Level::Warn,
                    topic.clone(),
                    t!(
                        "doctor.disk_unknown",
                        locale = l,
                        dir = shown,
                        error = e.to_string()
                    ),
                ),
            }
        })
        .collect()
}

/// Largest difference from a reference clock before the check fails.
const SKEW_FAIL_S: i64 = 60;

async fn clock(ctx: &Ctx<'_>, newest_change_ms: Option<i64>) -> Check {
    let l = ctx.locale;
    let topic = t!("doctor.clock", locale = l).into_owned();
    let now_text = local(ctx, store::ms(ctx.now));
    if let Some(newest) = newest_change_ms
        && newest > store::ms(ctx.now) + 5 * 60_000
    {
        return Check::new(
            Level::Fail,
            topic,
            t!(
                "doctor.clock_behind",
                locale = l,
                now = now_text,
                newest = local(ctx, newest)
            ),
        );
    }
    let mut refs: Vec<(String, DateTime<Utc>)> = Vec::new();
    if let Ok(Target::Postgres(_)) = Target::of(&ctx.settings.database_url)
        && let Ok(Some(mut conn)) = super::connect_existing(&ctx.settings.database_url).await
    {
        let at: Result<i64, _> =
            sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint")
                .fetch_one(&mut conn)
                .await;
        if let Ok(ms) = at {
            refs.push(("PostgreSQL".into(), store::from_ms(ms)));
        }
        let _ = sqlx::Connection::close(conn).await;
    }
    refs.extend(
        ctx.clocks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    let zone = ctx.settings.timezone.clone();
    for (name, at) in &refs {
        let skew = (ctx.now - *at).num_seconds();
        if skew.abs() > SKEW_FAIL_S {
            return Check::new(
                Level::Fail,
                topic,
                t!(
                    "doctor.clock_skew",
                    locale = l,
                    now = now_text,
                    reference = name,
                    seconds = skew
                ),
            );
        }
    }
    let names: Vec<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    if names.is_empty() {
        Check::new(
            Level::Ok,
            topic,
            t!("doctor.clock_ok", locale = l, now = now_text, zone = zone),
        )
    } else {
        Check::new(
            Level::Ok,
            topic,
            t!(
                "doctor.clock_ok_ref",
                locale = l,
                now = now_text,
                zone = zone,
                refs = names.join("、")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_levels() {
        assert_eq!(disk_level(0), Level::Fail);
        assert_eq!(disk_level(199 * 1024 * 1024), Level::Fail);
        assert_eq!(disk_level(500 * 1024 * 1024), Level::Warn);
        assert_eq!(disk_level(5 * 1024 * 1024 * 1024), Level::Ok);
    }
}
