//! The engine: one `Incoming` in, one transaction, replies out through the
//! outbox.
//!
//! ```text
//! Incoming ─> mark update handled ─> upsert person + chat ─> command::parse
//!          ─> service::* (rules, permissions, audit) ─> outbox rows ─> COMMIT
//! ```
//!
//! All of it runs in one transaction: a crash leaves either nothing or the
//! whole effect including the replies, and a replayed update is a no-op.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tokio::sync::Notify;

use crate::chat::{Capabilities, Incoming, Outgoing};
use crate::clock::Clock;
use crate::command::activity::ActivityRules;
use crate::command::{self, ParseOptions};
use crate::config::Settings;
use crate::domain::Role;
use crate::service::{self, Ctx};
use crate::store::{self, Store, StoreError, audit, chats, outbox, people, updates};

/// Everything a service needs that outlives one message.
pub struct Engine {
    pub store: Store,
    pub settings: Settings,
    pub tz: Tz,
    pub clock: Arc<dyn Clock>,
    /// Platform usernames of the bot, learned at adapter start-up (`getMe`).
    bot_usernames: std::sync::RwLock<Vec<(crate::domain::Platform, String)>>,
    /// What each running adapter can render (edit, buttons, length).
    capabilities: std::sync::RwLock<Vec<(crate::domain::Platform, Capabilities)>>,
    /// Woken whenever new outbox rows are committed.
    pub outbox_ready: Arc<Notify>,
    /// Keyword rules of the `/log` parser (built in, plus the county's file).
    pub activity_rules: ActivityRules,
}

/// What became of one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled; `replies` messages were queued.
    Handled { replies: usize },
    /// Already handled before (replayed update).
    Duplicate,
}

impl Engine {
    pub fn new(store: Store, settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Engine> {
        let tz = settings.tz()?;
        let activity_rules = settings.activity_rules()?;
        Ok(Engine {
            store,
            settings,
            tz,
            clock,
            bot_usernames: Default::default(),
            capabilities: Default::default(),
            outbox_ready: Arc::new(Notify::new()),
            activity_rules,
        })
    }

    /// Remember the bot's username on a platform (for `/cmd@bot`).
    pub fn set_bot_username(&self, platform: crate::domain::Platform, name: &str) {
        let mut names = self
            .bot_usernames
            .write()
            .unwrap_or_else(|e| e.into_inner());
        names.retain(|(p, _)| *p != platform);
        names.push((platform, name.to_string()));
    }

    fn bot_username(&self, platform: crate::domain::Platform) -> Option<String> {
        let names = self.bot_usernames.read().unwrap_or_else(|e| e.into_inner());
        names
            .iter()
            .find(|(p, _)| *p == platform)
            .map(|(_, n)| n.clone())
    }

    /// Record what an adapter can render; services read it through
    /// [`Engine::capabilities`] and never ask which platform they serve.
    pub fn set_capabilities(&self, platform: crate::domain::Platform, caps: Capabilities) {
        let mut all = self.capabilities.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|(p, _)| *p != platform);
        all.push((platform, caps));
    }

    /// What `platform` can render. Unknown platforms get the most
    /// conservative answer: no edits, no buttons.
    pub fn capabilities(&self, platform: crate::domain::Platform) -> Capabilities {
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

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The calendar date of `at` in the configured zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// Handle one update in one transaction.
    #[tracing::instrument(skip_all, fields(platform = %msg.platform, chat = %msg.chat_id, user = %msg.sender_id, update = %msg.update_id))]
    pub async fn handle(&self, msg: &Incoming) -> Result<Outcome, StoreError> {
        let mut tx = self.store.begin().await?;
        let now = msg.at;
        let now_ms = store::ms(now);
        if !updates::mark(&mut tx, msg.platform, &msg.update_id, now_ms).await? {
            tx.rollback().await?;
            return Ok(Outcome::Duplicate);
        }
        let (mut person, _new) = people::upsert_seen(
            &mut tx,
            msg.platform,
            &msg.sender_id,
            &msg.sender_name,
            now_ms,
        )
        .await?;
        if person.role != Role::Staff && self.settings.is_admin(msg.platform, &msg.sender_id) {
            people::set_role(&mut tx, person.id, Role::Staff, now_ms).await?;
            audit::record(
                &mut tx,
                &audit::Entry {
                    at_ms: now_ms,
                    platform: msg.platform,
                    actor: "config",
                    action: "person.role",
                    entity: "person",
                    entity_id: Some(person.id.to_string()),
                    detail: serde_json::json!({"role": "staff", "reason": "admins setting"}),
                },
            )
            .await?;
            person.role = Role::Staff;
        }
        let chat = chats::upsert_seen(
            &mut tx,
            msg.platform,
            &msg.chat_id,
            msg.chat_kind,
            msg.chat_title.as_deref(),
            now_ms,
        )
        .await?;
        let locale = crate::i18n::pick(
            person.locale.as_deref(),
            msg.sender_language.as_deref(),
            &self.settings.locale,
        );
        let text = command::normalize::normalize(&msg.text);
        let username = self.bot_username(msg.platform);
        let parsed = command::parse(
            &text,
            &ParseOptions {
                bot_username: username.as_deref(),
                bot_name: Some(&self.settings.bot_name),
            },
        );
        let mut ctx = Ctx {
            engine: self,
            tx: &mut tx,
            msg,
            text: &text,
            person,
            chat,
            now,
            today: self.local_date(now),
            locale,
            out: Vec::new(),
        };
        service::dispatch(&mut ctx, parsed).await?;
        let queued = std::mem::take(&mut ctx.out);
        let replies = queued.len();
        for q in &queued {
            outbox::enqueue(
                &mut tx,
                &q.message,
                store::ms(q.not_before.unwrap_or(now)),
                q.coalesce_key.as_deref(),
                now_ms,
            )
            .await?;
        }
        tx.commit().await?;
        if replies > 0 {
            self.outbox_ready.notify_waiters();
        }
        Ok(Outcome::Handled { replies })
    }
}

/// A message a service wants sent, before it becomes an outbox row.
#[derive(Debug, Clone)]
pub struct Queued {
    pub message: Outgoing,
    /// Send no earlier than this (coalescing windows, schedules).
    pub not_before: Option<DateTime<Utc>>,
    pub coalesce_key: Option<String>,
}
