//! [`Env`]: what a service may see that outlives one message — settings,
//! the zone, the store, the clock, what each platform can render, how its
//! files are downloaded, the `/log` rules and the flood limits. The engine
//! builds one and hands it to every service call; the scheduler does the
//! same. Services never see the engine.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tokio::sync::Notify;

use crate::chat::Capabilities;
use crate::clock::Clock;
use crate::command::activity::ActivityRules;
use crate::config::Settings;
use crate::domain::{ChatKind, Platform};
use crate::store::{Conn, Store};

/// Downloads an attachment by its platform file reference. Adapters register
/// one ([`Env::set_file_fetcher`]); services ask [`Env::file_fetcher`] and
/// never know the platform. A fetcher refuses files over
/// [`MAX_FILE_BYTES`](crate::chat::files::MAX_FILE_BYTES) rather than
/// reading them whole.
pub trait FileFetcher: Send + Sync {
    fn fetch<'a>(
        &'a self,
        file_ref: &'a str,
    ) -> crate::chat::BoxFuture<'a, Result<Vec<u8>, crate::chat::files::FetchError>>;
}

/// What one chat allows (see [`Env::chat_capabilities`]).
#[derive(Debug, Clone, Copy)]
pub struct ChatCapabilities {
    /// What its platform can render.
    pub render: Capabilities,
    /// The bot may speak unprompted (`None`: not known yet).
    pub unprompted: Option<bool>,
    /// Every message reaches the bot; else only those that @ it, and
    /// people must be told to @ it.
    pub hears_all: bool,
}

/// Everything a service needs that outlives one message.
pub struct Env {
    pub store: Store,
    pub settings: Settings,
    pub tz: Tz,
    pub clock: Arc<dyn Clock>,
    /// Keyword rules of the `/log` parser (built in, plus the county's file).
    pub activity_rules: ActivityRules,
    /// Per-person and per-chat flood limits (`service::flood`).
    pub flood: super::flood::Limiter,
    /// Woken whenever new outbox rows are committed. Only the code that
    /// commits (the engine, the scheduler) wakes it, after the commit.
    pub outbox_ready: Arc<Notify>,
    /// What each running adapter can render (edit, buttons, length).
    capabilities: RwLock<Vec<(Platform, Capabilities)>>,
    /// Per platform, how to download an attachment (documents for imports).
    files: RwLock<Vec<(Platform, Arc<dyn FileFetcher>)>>,
}

impl Env {
    pub fn new(store: Store, settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Env> {
        Ok(Env {
            store,
            tz: settings.tz()?,
            clock,
            activity_rules: settings.activity_rules()?,
            flood: super::flood::Limiter::new(&settings.flood),
            outbox_ready: Arc::new(Notify::new()),
            capabilities: Default::default(),
            files: Default::default(),
            settings,
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The calendar date of `at` in the configured zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// Record what an adapter can render; services read it through
    /// [`Env::capabilities`] and never ask which platform they serve.
    pub fn set_capabilities(&self, platform: Platform, caps: Capabilities) {
        let mut all = self.capabilities.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|(p, _)| *p != platform);
        all.push((platform, caps));
    }

    /// What `platform` can render. Unknown platforms get the most
    /// conservative answer: no edits, no buttons.
    pub fn capabilities(&self, platform: Platform) -> Capabilities {
        let all = self.capabilities.read().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .find(|(p, _)| *p == platform)
            .map(|(_, c)| *c)
            .unwrap_or(Capabilities {
                edit: false,
                buttons: false,
                max_text_chars: 4000,
            })
    }

    /// What one chat allows: its platform's rendering plus the chat's own
    /// switches (heard in full or only when @-mentioned; unprompted
    /// messages allowed), read in the caller's transaction.
    pub async fn chat_capabilities(
        &self,
        conn: &mut Conn,
        platform: Platform,
        chat_id: &str,
        kind: ChatKind,
    ) -> crate::store::Result<ChatCapabilities> {
        let switches = crate::store::chats::switches(conn, platform, chat_id, kind).await?;
        Ok(ChatCapabilities {
            render: self.capabilities(platform),
            unprompted: switches.unprompted,
            hears_all: switches.hears_all,
        })
    }

    /// Register how attachments on `platform` are downloaded.
    pub fn set_file_fetcher(&self, platform: Platform, f: Arc<dyn FileFetcher>) {
        let mut all = self.files.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|(p, _)| *p != platform);
        all.push((platform, f));
    }

    /// How to download attachments from `platform`, if its adapter said.
    pub fn file_fetcher(&self, platform: Platform) -> Option<Arc<dyn FileFetcher>> {
        let all = self.files.read().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .find(|(p, _)| *p == platform)
            .map(|(_, f)| f.clone())
    }

    /// The language of messages nobody asked for (scheduled sends,
    /// reminders): the configured default.
    pub fn default_locale(&self) -> &'static str {
        crate::i18n::pick(None, None, &self.settings.locale)
    }
}
