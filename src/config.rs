//! Settings: one typed struct, layered defaults → `tuanbot.toml` → `TUANBOT_*`
//! environment variables (nested keys with `__`, e.g. `TUANBOT_TELEGRAM__TOKEN`).
//!
//! Nothing else in the code reads the environment. A bad value stops start-up
//! with one line naming the key (`config error: timezone: unknown time zone "Mars/Base"`).

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::domain::Platform;

/// Top-level keys of [`Settings`], the only ones read from the environment.
const TOP_LEVEL_KEYS: &[&str] = &[
    "database_url",
    "timezone",
    "locale",
    "admins",
    "bot_name",
    "sqlite_synchronous",
    "activity_rules",
    "star_scheme",
    "outbox_lease_ms",
    "telegram",
    "onebot",
    "qqbot",
    "wishes",
    "web",
    "backup",
    "log",
    "privacy",
    "flood",
];

/// Default settings file, read from the working directory when present.
pub const DEFAULT_CONFIG_FILE: &str = "tuanbot.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://FILE` (embedded default) or `postgres://…`.
    pub database_url: String,
    /// IANA zone in which dates are shown and parsed.
    pub timezone: String,
    /// Default language of replies: `zh-CN` or `en`.
    pub locale: String,
    /// Committee staff who start with full rights, as `platform:user_id`.
    #[serde(deserialize_with = "string_or_list")]
    pub admins: Vec<String>,
    /// The name the bot signs with and answers to in the console.
    pub bot_name: String,
    /// SQLite `synchronous` pragma: `full` (default, safest) or `normal`.
    pub sqlite_synchronous: String,
    /// A TOML file of extra `/log` keyword rules (categories, units, place
    /// words), added to the built-in `data/activity_rules.toml`.
    pub activity_rules: Option<PathBuf>,
    /// A TOML star-rating scheme replacing the built-in
    /// `data/star_scheme.toml` (a complete file in the same shape).
    pub star_scheme: Option<PathBuf>,
    /// How long (ms) a dispatcher owns the outbox rows it took; after a crash
    /// another process sends them once this has passed.
    pub outbox_lease_ms: i64,
    pub telegram: TelegramSettings,
    pub onebot: OneBotSettings,
    /// Issue 22: the official QQ Bot API (`chat::qqbot`).
    pub qqbot: QqBotSettings,
    pub wishes: WishesSettings,
    pub web: WebSettings,
    pub backup: BackupSettings,
    pub log: LogSettings,
    pub privacy: PrivacySettings,
    pub flood: FloodSettings,
}

/// Scheduled backups (`tuanbot run` takes one every `every` into `dir`);
/// off unless `dir` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupSettings {
    /// Where scheduled backups go, e.g. `/var/backups/tuanbot`.
    pub dir: Option<PathBuf>,
    /// How often: `daily`, `hourly`, `weekly`, or hours/days such as `6h`, `2d`.
    pub every: String,
    /// How many scheduled backups to keep; older ones are removed.
    pub keep: usize,
}

impl Default for BackupSettings {
    fn default() -> Self {
        BackupSettings {
            dir: None,
            every: "daily".into(),
            keep: 14,
        }
    }
}

impl BackupSettings {
    /// `every` as a duration (validated at load).
    pub fn interval(&self) -> Result<chrono::Duration, ConfigError> {
        let bad = || {
            ConfigError::new(
                "backup.every",
                format!(
                    "expected daily, hourly, weekly, or hours/days such as 6h or 2d, got {:?}",
                    self.every
                ),
            )
        };
        let every = self.every.trim().to_ascii_lowercase();
        let hours = match every.as_str() {
            "hourly" => 1,
            "daily" => 24,
            "weekly" => 24 * 7,
            other => {
                let (n, unit) = other.split_at(other.len().saturating_sub(1));
                let n: i64 = n.trim().parse().map_err(|_| bad())?;
                match unit {
                    "h" => n,
                    "d" => n.checked_mul(24).ok_or_else(bad)?,
                    _ => return Err(bad()),
                }
            }
        };
        if !(1..=24 * 366).contains(&hours) {
            return Err(bad());
        }
        Ok(chrono::Duration::hours(hours))
    }
}

/// How logs are written (to standard error). Which events, by
/// `TUANBOT_LOG` (tracing's `EnvFilter` syntax, default `warn`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` (for people) or `json` (one object per line, for log collectors).
    pub format: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: "text".into(),
        }
    }
}

/// How long personal data is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// Days after which the text of sent messages that carried children's
    /// personal data (full wish details) is blanked in the outbox.
    pub outbox_retention_days: i64,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        PrivacySettings {
            outbox_retention_days: 30,
        }
    }
}

/// Longest `web.session_hours`: 30 days.
pub const MAX_SESSION_HOURS: i64 = 720;

/// The web dashboard: off unless `listen` and `public_url` are both set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Address the dashboard listens on, e.g. `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// The address staff open in a browser (behind a reverse proxy, the
    /// proxy's URL), e.g. `https://tuan.example.cn`. Sign-in links start
    /// with it; `https` makes the session cookie `Secure`.
    pub public_url: Option<String>,
    /// How long a browser stays signed in, in hours (1 to 720).
    pub session_hours: i64,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            listen: None,
            public_url: None,
            session_hours: 12,
        }
    }
}

/// Limits on what one person may cost a chat (`service::flood`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FloodSettings {
    /// Most commands with a reply of their own one person may send in a
    /// minute; the next gets one "slow down" line, then silence for the
    /// minute. Claims and acks don't count. 0 turns the limit off.
    pub per_minute: usize,
    /// A read-only command (`/orgs`, `/wishes` …) repeated in a chat within
    /// this many seconds of its answer is not answered again. 0: off.
    pub repeat_seconds: i64,
}

impl Default for FloodSettings {
    fn default() -> Self {
        FloodSettings {
            per_minute: 20,
            repeat_seconds: 30,
        }
    }
}

/// Micro-wish rules a county may set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WishesSettings {
    /// Who may claim for an org: `member` (any approved member of it) or
    /// `cadre`.
    pub claim_role: String,
    /// Days after a claim before the org is reminded to deliver.
    pub overdue_days: i64,
}

impl Default for WishesSettings {
    fn default() -> Self {
        WishesSettings {
            claim_role: "member".into(),
            overdue_days: 14,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramSettings {
    /// Bot token from BotFather; also read from `TELOXIDE_TOKEN`.
    pub token: Option<String>,
    /// Bot API server base URL (self-hosted server or a test server).
    pub api_url: Option<String>,
    /// Public HTTPS URL for webhook mode; long polling when absent.
    pub webhook_url: Option<String>,
    /// Address the webhook server listens on.
    pub webhook_listen: Option<String>,
    /// Checked against `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook_secret: Option<String>,
    /// Most messages per second, all chats together (Telegram: ~30).
    pub per_second: usize,
    /// Most new messages per minute to one group (Telegram: 20), spread
    /// evenly; edits do not count. 0 turns the cap off.
    pub group_per_minute: usize,
    /// Least time between two messages to one chat (Telegram: ~1 s).
    pub chat_interval_ms: u64,
    /// Long-polling timeout of `getUpdates`, in seconds.
    pub poll_timeout_s: u32,
    /// Wait after a failed `getUpdates` before trying again.
    pub poll_retry_ms: u64,
}

impl Default for TelegramSettings {
    fn default() -> Self {
        TelegramSettings {
            token: None,
            api_url: None,
            webhook_url: None,
            webhook_listen: None,
            webhook_secret: None,
            per_second: 30,
            group_per_minute: 20,
            chat_interval_ms: 1000,
            poll_timeout_s: 30,
            poll_retry_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OneBotSettings {
    /// Forward WebSocket: tuanbot connects to the OneBot implementation.
    pub ws_url: Option<String>,
    /// Reverse WebSocket: the implementation connects to this address. On
    /// an address other than loopback it needs an `access_token` of at
    /// least [`MIN_REMOTE_TOKEN_CHARS`] characters.
    pub listen: Option<String>,
    /// Shared token, checked in both directions.
    pub access_token: Option<String>,
    /// The folder where the QQ client under the implementation stores
    /// received files. A `get_file` answer that names a path on this
    /// machine is read only inside it; unset, no local path is read.
    pub file_dir: Option<PathBuf>,
    /// Least time between two messages to one group (risk control, 风控).
    pub group_interval_ms: u64,
    /// Most messages the account sends per minute, all chats together.
    pub account_per_minute: usize,
    /// The window `account_per_minute` counts over (60 s; smaller in tests).
    pub account_window_ms: u64,
    /// Most new messages per minute to one group, spread evenly (issue 5:
    /// 20); edits do not count. 0 turns the cap off.
    pub group_per_minute: usize,
    /// Random extra wait up to this, added to each group interval.
    pub jitter_ms: u64,
    /// Reconnect when no event arrived for this long; by default three
    /// heartbeat intervals as announced by the implementation's heartbeats.
    pub heartbeat_timeout_ms: Option<u64>,
    /// How long an action (send, get_login_info) may take before it fails.
    pub action_timeout_ms: u64,
    /// Reconnect back-off: first wait, doubling up to the cap.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// Longer replies are split at line breaks into parts of this size.
    pub max_text_chars: usize,
}

/// Shortest `onebot.access_token` for a reverse listener that is not on
/// loopback: the handshake is the only thing between the network and
/// events that act as any QQ user, staff included.
pub const MIN_REMOTE_TOKEN_CHARS: usize = 16;

impl OneBotSettings {
    /// The access token, when one is set (an empty one is none).
    pub fn token(&self) -> Option<&str> {
        self.access_token.as_deref().filter(|t| !t.is_empty())
    }

    /// The reverse listener may start as configured: on loopback with or
    /// without a token, elsewhere only with a long enough token. Checked
    /// at load and again when the adapter starts.
    pub fn check_listen(&self) -> Result<(), ConfigError> {
        let Some(listen) = &self.listen else {
            return Ok(());
        };
        let addr = listen.parse::<std::net::SocketAddr>().map_err(|_| {
            ConfigError::new(
                "onebot.listen",
                format!("expected IP:PORT such as 127.0.0.1:6700, got {listen:?}"),
            )
        })?;
        if addr.ip().is_loopback() {
            return Ok(());
        }
        match self.token() {
            None => Err(ConfigError::new(
                "onebot.access_token",
                format!(
                    "required when onebot.listen is not a loopback address ({listen}): without \
                     it anyone who reaches that port can send events as any QQ user. Set the \
                     same long random token here and in the OneBot implementation, or listen \
                     on 127.0.0.1"
                ),
            )),
            Some(t) if t.chars().count() < MIN_REMOTE_TOKEN_CHARS => Err(ConfigError::new(
                "onebot.access_token",
                format!(
                    "at least {MIN_REMOTE_TOKEN_CHARS} characters when onebot.listen is not a \
                     loopback address ({listen})"
                ),
            )),
            Some(_) => Ok(()),
        }
    }
}

impl Default for OneBotSettings {
    fn default() -> Self {
        OneBotSettings {
            ws_url: None,
            listen: None,
            access_token: None,
            file_dir: None,
            group_interval_ms: 1500,
            account_per_minute: 20,
            account_window_ms: 60_000,
            group_per_minute: 20,
            jitter_ms: 500,
            heartbeat_timeout_ms: None,
            action_timeout_ms: 10_000,
            reconnect_min_ms: 1000,
            reconnect_max_ms: 60_000,
            max_text_chars: 3000,
        }
    }
}

/// The official QQ Bot API (QQ 开放平台, issue 22): on when `app_id` and
/// `secret` are set. See `chat::qqbot` for the protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QqBotSettings {
    /// The bot's AppID from the open platform's 开发设置 (digits: a TOML or
    /// environment number is taken as its text).
    #[serde(deserialize_with = "opt_text")]
    pub app_id: Option<String>,
    /// The bot's AppSecret: access tokens and the webhook's ed25519 key.
    #[serde(deserialize_with = "opt_text")]
    pub secret: Option<String>,
    /// Use the sandbox API (`sandbox.api.sgroup.qq.com`) for a bot under test.
    pub sandbox: bool,
    /// `websocket` (the gateway) or `webhook` (HTTPS callbacks, signed).
    pub transport: String,
    /// Where the webhook listens (behind the TLS proxy), in webhook mode.
    pub webhook_listen: Option<String>,
    /// Gateway intents, by name (`group_and_c2c` = 1<<25, `group_all_messages`
    /// = 1<<28) or number. Intents after the first that the gateway refuses
    /// (close 4013/4014) are dropped and the refusal logged.
    #[serde(deserialize_with = "string_or_list")]
    pub intents: Vec<String>,
    /// OpenAPI base; by default the production or sandbox one (tests: a fake).
    pub api_url: Option<String>,
    /// Access-token endpoint; by default `https://bots.qq.com/app/getAppAccessToken`.
    pub auth_url: Option<String>,
    /// Most new messages per group per minute, spread evenly (0 = off).
    pub group_per_minute: usize,
    /// Most messages per second for the whole bot.
    pub per_second: usize,
    /// Longer texts are split at line breaks into parts of this size.
    pub max_text_chars: usize,
    /// How long one OpenAPI request may take (the docs advise at least 5 s).
    pub request_timeout_ms: u64,
    /// Gateway reconnect back-off: first wait, doubling up to the cap.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
}

impl Default for QqBotSettings {
    fn default() -> Self {
        QqBotSettings {
            app_id: None,
            secret: None,
            sandbox: false,
            transport: "websocket".into(),
            webhook_listen: None,
            intents: vec!["group_and_c2c".into(), "group_all_messages".into()],
            api_url: None,
            auth_url: None,
            group_per_minute: 20,
            per_second: 20,
            max_text_chars: 2000,
            request_timeout_ms: 10_000,
            reconnect_min_ms: 1000,
            reconnect_max_ms: 60_000,
        }
    }
}

/// Gateway intent names (QQ Bot API, `chat::qqbot`).
pub const QQBOT_INTENTS: &[(&str, u32)] = &[
    ("group_and_c2c", 1 << 25),
    ("group_all_messages", 1 << 28),
    ("interaction", 1 << 26),
    ("group_members", 1 << 24),
];

impl QqBotSettings {
    /// The configured intents as bits, in order (checked at load).
    pub fn intent_bits(&self) -> Result<Vec<u32>, ConfigError> {
        self.intents
            .iter()
            .map(|i| {
                let i = i.trim();
                QQBOT_INTENTS
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(i))
                    .map(|(_, bit)| *bit)
                    .or_else(|| i.parse::<u32>().ok().filter(|n| *n > 0))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "qqbot.intents",
                            format!(
                                "expected group_and_c2c, group_all_messages, interaction, \
                                 group_members or a number, got {i:?}"
                            ),
                        )
                    })
            })
            .collect()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://tuanbot.db".into(),
            timezone: "Asia/Shanghai".into(),
            locale: "zh-CN".into(),
            admins: Vec::new(),
            bot_name: "团务助手".into(),
            sqlite_synchronous: "full".into(),
            activity_rules: None,
            star_scheme: None,
            outbox_lease_ms: crate::outbox::DEFAULT_LEASE_MS,
            telegram: TelegramSettings::default(),
            onebot: OneBotSettings::default(),
            qqbot: QqBotSettings::default(),
            wishes: WishesSettings::default(),
            web: WebSettings::default(),
            backup: BackupSettings::default(),
            log: LogSettings::default(),
            privacy: PrivacySettings::default(),
            flood: FloodSettings::default(),
        }
    }
}

/// A configuration problem, displayed as one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("config error: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Where the settings come from. Tests pass their own environment instead of
/// mutating the process's.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// Explicit `--config FILE`; must exist when given.
    pub file: Option<PathBuf>,
    /// Extra `KEY=VALUE` pairs applied last (used by tests and `--db`).
    pub overrides: Vec<(String, String)>,
    /// Skip the process environment (tests).
    pub ignore_env: bool,
}

impl Settings {
    /// Load and validate the layered settings.
    pub fn load(sources: &Sources) -> Result<Settings, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        match &sources.file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::new(
                        "--config",
                        format!("file not found: {}", path.display()),
                    ));
                }
                fig = fig.merge(Toml::file(path));
            }
            None => {
                if Path::new(DEFAULT_CONFIG_FILE).exists() {
                    fig = fig.merge(Toml::file(DEFAULT_CONFIG_FILE));
                }
            }
        }
        if !sources.ignore_env {
            // Only the keys we know: other TUANBOT_* variables (TUANBOT_LOG,
            // test settings) are not settings.
            fig = fig.merge(Env::prefixed("TUANBOT_").split("__").filter(|k| {
                // TUANBOT_LOG is the log filter, not the `log` table
                // (whose keys come as TUANBOT_LOG__FORMAT).
                if k.as_str().eq_ignore_ascii_case("log") {
                    return false;
                }
                let top = k.as_str().split('.').next().unwrap_or_default();
                TOP_LEVEL_KEYS.iter().any(|t| t.eq_ignore_ascii_case(top))
            }));
            if let Ok(token) = std::env::var("TELOXIDE_TOKEN") {
                fig = fig.merge(Serialized::default("telegram.token", token));
            }
        }
        for (key, value) in &sources.overrides {
            fig = fig.merge(Serialized::default(key, value));
        }
        let settings: Settings = fig.extract().map_err(|e| {
            let key = e
                .path
                .first()
                .map(|_| e.path.join("."))
                .unwrap_or_else(|| "settings".into());
            ConfigError::new(key, e.kind.to_string())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "database_url",
                format!(
                    "expected sqlite://FILE or postgres://…, got {:?}",
                    self.database_url
                ),
            ));
        }
        self.tz()?;
        if !crate::i18n::is_supported(&self.locale) {
            return Err(ConfigError::new(
                "locale",
                format!("expected zh-CN or en, got {:?}", self.locale),
            ));
        }
        for admin in &self.admins {
            parse_admin(admin).ok_or_else(|| {
                ConfigError::new(
                    "admins",
                    format!(
                        "expected platform:user_id (console, telegram, qq, qqbot), got {admin:?}"
                    ),
                )
            })?;
        }
        if !matches!(self.wishes.claim_role.as_str(), "member" | "cadre") {
            return Err(ConfigError::new(
                "wishes.claim_role",
                format!("expected member or cadre, got {:?}", self.wishes.claim_role),
            ));
        }
        if self.wishes.overdue_days < 1 {
            return Err(ConfigError::new(
                "wishes.overdue_days",
                "expected at least 1",
            ));
        }
        if !(1..=3650).contains(&self.privacy.outbox_retention_days) {
            return Err(ConfigError::new(
                "privacy.outbox_retention_days",
                format!(
                    "expected 1 to 3650, got {}",
                    self.privacy.outbox_retention_days
                ),
            ));
        }
        if !matches!(self.sqlite_synchronous.as_str(), "full" | "normal") {
            return Err(ConfigError::new(
                "sqlite_synchronous",
                format!("expected full or normal, got {:?}", self.sqlite_synchronous),
            ));
        }
        self.activity_rules()?;
        self.star_scheme()?;
        if self.outbox_lease_ms < 1000 {
            return Err(ConfigError::new(
                "outbox_lease_ms",
                format!("must be at least 1000, got {}", self.outbox_lease_ms),
            ));
        }
        if self.bot_name.trim().is_empty() {
            return Err(ConfigError::new("bot_name", "must not be empty"));
        }
        if !(0..=3600).contains(&self.flood.repeat_seconds) {
            return Err(ConfigError::new(
                "flood.repeat_seconds",
                format!("expected 0 to 3600, got {}", self.flood.repeat_seconds),
            ));
        }
        self.validate_onebot()?;
        self.backup.interval()?;
        if self.backup.keep < 1 {
            return Err(ConfigError::new("backup.keep", "must be at least 1"));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::new(
                "log.format",
                format!("expected text or json, got {:?}", self.log.format),
            ));
        }
        self.validate_qqbot()?;
        self.validate_web()
    }

    fn validate_web(&self) -> Result<(), ConfigError> {
        let web = &self.web;
        if let Some(addr) = &web.listen
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::new(
                "web.listen",
                format!("expected IP:PORT such as 127.0.0.1:8080, got {addr:?}"),
            ));
        }
        if let Some(url) = &web.public_url
            && (!(url.starts_with("http://") || url.starts_with("https://"))
                || url::Url::parse(url).is_err())
        {
            return Err(ConfigError::new(
                "web.public_url",
                format!("expected http://HOST[:PORT] or https://…, got {url:?}"),
            ));
        }
        match (&web.listen, &web.public_url) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "web.public_url",
                    "required when web.listen is set (sign-in links start with it)",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "web.listen",
                    "required when web.public_url is set",
                ));
            }
            _ => {}
        }
        // Bounded so the session's expiry and the cookie's Max-Age cannot
        // overflow; 30 days at the most.
        if !(1..=MAX_SESSION_HOURS).contains(&web.session_hours) {
            return Err(ConfigError::new(
                "web.session_hours",
                format!(
                    "expected 1 to {MAX_SESSION_HOURS}, got {}",
                    web.session_hours
                ),
            ));
        }
        Ok(())
    }

    fn validate_onebot(&self) -> Result<(), ConfigError> {
        let ob = &self.onebot;
        if let Some(url) = &ob.ws_url
            && !(url.starts_with("ws://") || url.starts_with("wss://"))
        {
            return Err(ConfigError::new(
                "onebot.ws_url",
                format!("expected ws://HOST:PORT or wss://…, got {url:?}"),
            ));
        }
        ob.check_listen()?;
        if let Some(dir) = &ob.file_dir
            && !dir.is_dir()
        {
            return Err(ConfigError::new(
                "onebot.file_dir",
                format!("not a directory: {}", dir.display()),
            ));
        }
        if ob.account_per_minute == 0 {
            return Err(ConfigError::new(
                "onebot.account_per_minute",
                "must be at least 1",
            ));
        }
        if ob.max_text_chars < 100 {
            return Err(ConfigError::new(
                "onebot.max_text_chars",
                "must be at least 100",
            ));
        }
        Ok(())
    }

    fn validate_qqbot(&self) -> Result<(), ConfigError> {
        let q = &self.qqbot;
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        match (set(&q.app_id), set(&q.secret)) {
            (true, false) => {
                return Err(ConfigError::new(
                    "qqbot.secret",
                    "required with qqbot.app_id",
                ));
            }
            (false, true) => {
                return Err(ConfigError::new(
                    "qqbot.app_id",
                    "required with qqbot.secret",
                ));
            }
            _ => {}
        }
        match q.transport.as_str() {
            "websocket" => {}
            "webhook" => {
                if q.webhook_listen.is_none() && self.qqbot_enabled() {
                    return Err(ConfigError::new(
                        "qqbot.webhook_listen",
                        "required when qqbot.transport is webhook (e.g. 127.0.0.1:8444)",
                    ));
                }
            }
            other => {
                return Err(ConfigError::new(
                    "qqbot.transport",
                    format!("expected websocket or webhook, got {other:?}"),
                ));
            }
        }
        if let Some(addr) = &q.webhook_listen
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::new(
                "qqbot.webhook_listen",
                format!("expected IP:PORT such as 127.0.0.1:8444, got {addr:?}"),
            ));
        }
        for (key, url) in [
            ("qqbot.api_url", &q.api_url),
            ("qqbot.auth_url", &q.auth_url),
        ] {
            if let Some(url) = url
                && (!(url.starts_with("http://") || url.starts_with("https://"))
                    || url::Url::parse(url).is_err())
            {
                return Err(ConfigError::new(
                    key,
                    format!("expected https://…, got {url:?}"),
                ));
            }
        }
        if q.intent_bits()?.is_empty() {
            return Err(ConfigError::new(
                "qqbot.intents",
                "name at least group_and_c2c",
            ));
        }
        if q.per_second == 0 {
            return Err(ConfigError::new("qqbot.per_second", "must be at least 1"));
        }
        if q.max_text_chars < 100 {
            return Err(ConfigError::new(
                "qqbot.max_text_chars",
                "must be at least 100",
            ));
        }
        Ok(())
    }

    /// The configured time zone (validated at load).
    pub fn tz(&self) -> Result<Tz, ConfigError> {
        self.timezone.parse::<Tz>().map_err(|_| {
            ConfigError::new("timezone", format!("unknown time zone {:?}", self.timezone))
        })
    }

    /// The `/log` parser rules: built in, extended by `activity_rules`.
    pub fn activity_rules(&self) -> Result<crate::command::activity::ActivityRules, ConfigError> {
        use crate::command::activity::ActivityRules;
        let Some(path) = &self.activity_rules else {
            return Ok(ActivityRules::builtin().clone());
        };
        let src = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("activity_rules", format!("{}: {e}", path.display())))?;
        ActivityRules::builtin()
            .extended_with(&src)
            .map_err(|e| ConfigError::new("activity_rules", format!("{}: {e}", path.display())))
    }

    /// The star-rating scheme: the built-in one, or the `star_scheme` file.
    pub fn star_scheme(&self) -> Result<crate::report::stars::Scheme, ConfigError> {
        use crate::report::stars::Scheme;
        let Some(path) = &self.star_scheme else {
            return Ok(Scheme::builtin());
        };
        let src = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("star_scheme", format!("{}: {e}", path.display())))?;
        Scheme::parse(&src)
            .map_err(|e| ConfigError::new("star_scheme", format!("{}: {e}", path.display())))
    }

    /// Is `platform:user_id` listed in `admins`?
    pub fn is_admin(&self, platform: Platform, user_id: &str) -> bool {
        self.admins
            .iter()
            .filter_map(|a| parse_admin(a))
            .any(|(p, u)| p == platform && u == user_id)
    }

    /// Telegram is switched on by a token.
    pub fn telegram_enabled(&self) -> bool {
        self.telegram
            .token
            .as_deref()
            .is_some_and(|t| !t.is_empty())
    }

    /// The web dashboard is switched on by `web.listen` and `web.public_url`.
    pub fn web_enabled(&self) -> bool {
        self.web.listen.is_some() && self.web.public_url.is_some()
    }

    /// `web.public_url` without a trailing slash.
    pub fn web_base_url(&self) -> Option<&str> {
        self.web
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/'))
    }

    /// The QQ Bot API is switched on by an app id and its secret.
    pub fn qqbot_enabled(&self) -> bool {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        set(&self.qqbot.app_id) && set(&self.qqbot.secret)
    }

    /// OneBot is switched on by a forward URL or a reverse listen address.
    pub fn onebot_enabled(&self) -> bool {
        self.onebot.ws_url.is_some() || self.onebot.listen.is_some()
    }
}

fn parse_admin(s: &str) -> Option<(Platform, &str)> {
    let (platform, user) = s.split_once(':')?;
    let platform = platform.trim().parse::<Platform>().ok()?;
    let user = user.trim();
    (!user.is_empty()).then_some((platform, user))
}

/// A text setting that may be written as a number (`app_id = 102000042`,
/// `TUANBOT_QQBOT__APP_ID=102000042`): kept as its text.
fn opt_text<'de, D>(de: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        S(String),
        U(u64),
        I(i64),
    }
    Ok(Option::<Text>::deserialize(de)?.map(|t| match t {
        Text::S(s) => s,
        Text::U(n) => n.to_string(),
        Text::I(n) => n.to_string(),
    }))
}

/// `admins` may be a TOML list or, from the environment, `a:1,b:2`.
fn string_or_list<'de, D>(de: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(de)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(overrides: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(&Sources {
            file: None,
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ignore_env: true,
        })
    }

    #[test]
    fn defaults_are_valid() {
        let s = load(&[]).unwrap();
        assert_eq!(s.database_url, "sqlite://tuanbot.db");
        assert_eq!(s.timezone, "Asia/Shanghai");
        assert!(!s.telegram_enabled());
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            ("timezone", "Mars/Base"),
            ("locale", "fr"),
            ("database_url", "mysql://x"),
            ("admins", "nobody"),
            ("sqlite_synchronous", "off"),
        ] {
            let err = load(&[(key, value)]).unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("config error: {key}:"))
            );
        }
    }

    #[test]
    fn onebot_settings_checked() {
        let s = load(&[("onebot.ws_url", "ws://127.0.0.1:3001")]).unwrap();
        assert!(s.onebot_enabled());
        assert_eq!(s.onebot.group_interval_ms, 1500);
        assert_eq!(s.onebot.account_per_minute, 20);
        for (key, value) in [
            ("onebot.ws_url", "http://127.0.0.1:3001"),
            ("onebot.listen", "localhost"),
            ("onebot.account_per_minute", "0"),
        ] {
            let err = load(&[(key, value)]).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
    }

    #[test]
    fn qqbot_settings_checked() {
        let s = load(&[]).unwrap();
        assert!(!s.qqbot_enabled());
        assert_eq!(s.qqbot.intent_bits().unwrap(), vec![1 << 25, 1 << 28]);
        // App ids are digits: a TOML number is taken as its text.
        let file = std::env::temp_dir().join(format!("tuanbot-qqbot-{}.toml", std::process::id()));
        std::fs::write(&file, "[qqbot]\napp_id = 102000001\nsecret = \"s3cret\"\n").unwrap();
        let s = Settings::load(&Sources {
            file: Some(file.clone()),
            overrides: Vec::new(),
            ignore_env: true,
        });
        let _ = std::fs::remove_file(&file);
        assert_eq!(s.unwrap().qqbot.app_id.as_deref(), Some("102000001"));
        let s = load(&[
            ("qqbot.app_id", "102000001"),
            ("qqbot.secret", "DG5g3B4j9X2KOErG"),
            ("qqbot.intents", "group_and_c2c,67108864"),
            ("admins", "qqbot:E4F1A2B3C4D5"),
        ])
        .unwrap();
        assert!(s.qqbot_enabled());
        assert_eq!(s.qqbot.intent_bits().unwrap(), vec![1 << 25, 1 << 26]);
        assert!(s.is_admin(Platform::QqBot, "E4F1A2B3C4D5"));
        assert!(!s.is_admin(Platform::Qq, "E4F1A2B3C4D5"));
        for (pairs, key) in [
            (vec![("qqbot.app_id", "1")], "qqbot.secret"),
            (vec![("qqbot.secret", "x")], "qqbot.app_id"),
            (vec![("qqbot.transport", "grpc")], "qqbot.transport"),
            (
                vec![
                    ("qqbot.app_id", "1"),
                    ("qqbot.secret", "x"),
                    ("qqbot.transport", "webhook"),
                ],
                "qqbot.webhook_listen",
            ),
            (
                vec![("qqbot.webhook_listen", "localhost")],
                "qqbot.webhook_listen",
            ),
            (vec![("qqbot.intents", "guild_everything")], "qqbot.intents"),
            (vec![("qqbot.api_url", "ftp://x")], "qqbot.api_url"),
            (vec![("qqbot.per_second", "0")], "qqbot.per_second"),
        ] {
            let err = load(&pairs).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
    }

    #[test]
    fn web_settings_checked() {
        let s = load(&[]).unwrap();
        assert!(!s.web_enabled());
        let s = load(&[
            ("web.listen", "127.0.0.1:8080"),
            ("web.public_url", "https://tuan.example.cn/"),
        ])
        .unwrap();
        assert!(s.web_enabled());
        assert_eq!(s.web_base_url(), Some("https://tuan.example.cn"));
        for (pairs, key) in [
            (
                vec![("web.listen", "localhost"), ("web.public_url", "http://x")],
                "web.listen",
            ),
            (
                vec![("web.listen", "127.0.0.1:1"), ("web.public_url", "tuan.cn")],
                "web.public_url",
            ),
            (vec![("web.listen", "127.0.0.1:1")], "web.public_url"),
            (vec![("web.public_url", "http://x")], "web.listen"),
        ] {
            let err = load(&pairs).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
    }

    #[test]
    fn outbox_retention_days_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let with_days = |n: &str| {
            std::fs::write(&path, format!("[privacy]\noutbox_retention_days = {n}\n")).unwrap();
            Settings::load(&Sources {
                file: Some(path.clone()),
                ignore_env: true,
                ..Default::default()
            })
        };
        assert_eq!(load(&[]).unwrap().privacy.outbox_retention_days, 30);
        assert_eq!(with_days("7").unwrap().privacy.outbox_retention_days, 7);
        for bad in ["0", "-1", "3651"] {
            let err = with_days(bad).unwrap_err();
            assert_eq!(err.key, "privacy.outbox_retention_days", "{bad}: {err}");
        }
    }

    #[test]
    fn web_session_hours_bounded() {
        // A number, as a settings file gives it (overrides are strings).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let with_hours = |n: &str| {
            std::fs::write(&path, format!("[web]\nsession_hours = {n}\n")).unwrap();
            Settings::load(&Sources {
                file: Some(path.clone()),
                ignore_env: true,
                ..Default::default()
            })
        };
        assert_eq!(load(&[]).unwrap().web.session_hours, 12);
        for ok in ["1", "720"] {
            let s = with_hours(ok).unwrap();
            assert_eq!(s.web.session_hours.to_string(), ok);
        }
        // Huge values would overflow Duration::hours and the cookie's
        // Max-Age at sign-in; they stop start-up instead.
        for bad in ["0", "-5", "721", "9223372036854775807"] {
            let err = with_hours(bad).unwrap_err();
            assert_eq!(err.key, "web.session_hours", "{bad}: {err}");
            assert!(
                err.to_string()
                    .starts_with("config error: web.session_hours: expected 1 to 720"),
                "{err}"
            );
        }
    }

    #[test]
    fn backup_and_log_settings_checked() {
        let s = load(&[]).unwrap();
        assert_eq!(s.backup.interval().unwrap(), chrono::Duration::days(1));
        assert_eq!(s.backup.keep, 14);
        assert_eq!(s.log.format, "text");
        for (every, hours) in [
            ("hourly", 1),
            ("weekly", 168),
            ("6h", 6),
            ("2d", 48),
            (" Daily ", 24),
        ] {
            let s = load(&[("backup.every", every)]).unwrap();
            assert_eq!(
                s.backup.interval().unwrap(),
                chrono::Duration::hours(hours),
                "{every}"
            );
        }
        for (key, value) in [
            ("backup.every", "sometimes"),
            ("backup.every", "0h"),
            ("backup.every", "-3d"),
            ("backup.every", "5m"),
            ("backup.keep", "0"),
            ("log.format", "xml"),
        ] {
            let err = load(&[(key, value)]).unwrap_err();
            assert_eq!(err.key, key, "{value}: {err}");
        }
        assert_eq!(load(&[("log.format", "json")]).unwrap().log.format, "json");
    }

    #[test]
    fn admins_from_comma_list() {
        let s = load(&[("admins", "console:u1, telegram:42")]).unwrap();
        assert!(s.is_admin(Platform::Console, "u1"));
        assert!(s.is_admin(Platform::Telegram, "42"));
        assert!(!s.is_admin(Platform::Qq, "42"));
    }

    #[test]
    fn file_layer_and_unknown_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            "timezone = \"Asia/Urumqi\"\n[telegram]\ntoken = \"abc\"\n",
        )
        .unwrap();
        let s = Settings::load(&Sources {
            file: Some(path.clone()),
            ignore_env: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.timezone, "Asia/Urumqi");
        assert!(s.telegram_enabled());

        std::fs::write(&path, "databse_url = \"x\"\n").unwrap();
        let err = Settings::load(&Sources {
            file: Some(path),
            ignore_env: true,
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("databse_url"), "{err}");
    }
}
