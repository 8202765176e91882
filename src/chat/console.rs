//! The console chat simulator: type messages as any user in any chat, see
//! the bot's replies. It drives the real engine, store and outbox; only the
//! sending end prints instead of calling a platform.
//!
//! Script lines starting with `:` are directives:
//! `:as USER [display name]`, `:chat CHAT [group|private]`, `:today YYYY-MM-DD`,
//! `:time HH:MM`, `:admin USER`, `:quit`; for attachments `:photo NAME`
//! (attach a photo to the next message), `:file PATH` (attach a local file
//! as a document; `/wishes import NAME` as its caption imports it) and
//! `:reply N` (the next message replies to the bot's message #N),
//! `:reply last` (it replies to the previous message of the current chat,
//! e.g. someone's photo) or `:reply in-N` (to the N-th message typed in this
//! session). As on QQ, a reply carries only the quoted id: the engine finds a
//! quoted photo among the photos it has seen (`service::proof`). Every
//! other line is a message from
//! the current user in the current chat; a literal `\n` inside it is a line
//! break. With `--json`, each outgoing message is one JSON object per line:
//! `{"id":…,"chat":…,"text":…,"buttons":[…],"edit_of":…}`. Scheduled jobs
//! (notices, reminders, list deadlines) run whenever the console's clock
//! moves: after each message, and on `:today`/`:time` going forward.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::{Capabilities, ChatSender, Incoming, Outgoing, SendError, Sent};
use crate::clock::{Clock, ManualClock};
use crate::domain::{ChatKind, Platform};
use crate::engine::Engine;
use crate::outbox::Dispatcher;
use crate::store::{self, StoreError, people};
use rust_i18n::t;

/// Where console output goes (stdout, or a buffer in tests).
pub type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// The console's sending end: prints each message and numbers it.
pub struct ConsoleSender {
    sink: Sink,
    json: bool,
    bot_name: String,
    /// The language of the lines that stand for files.
    locale: String,
    next_id: Mutex<u64>,
}

impl ConsoleSender {
    pub fn new(sink: Sink, json: bool, bot_name: &str, locale: &str) -> Self {
        ConsoleSender {
            sink,
            json,
            bot_name: bot_name.to_string(),
            locale: locale.to_string(),
            next_id: Mutex::new(1),
        }
    }

    fn print(&self, msg: &Outgoing, id: &str, edit_of: Option<&str>) {
        let line = if self.json {
            let buttons: Vec<_> = msg
                .buttons
                .iter()
                .flatten()
                .map(|b| json!({"label": b.label, "data": b.data}))
                .collect();
            let mut line = json!({"id": id, "chat": msg.chat_id, "text": msg.text, "buttons": buttons, "edit_of": edit_of});
            if !msg.attachments.is_empty() {
                line["files"] = msg.attachments.iter().map(|f| self.file_line(f)).collect();
            }
            line.to_string()
        } else {
            let head = match edit_of {
                Some(e) => format!("[{} ✎#{e} → {}]", self.bot_name, msg.chat_id),
                None => format!("[{} #{id} → {}]", self.bot_name, msg.chat_id),
            };
            let buttons: Vec<String> = msg
                .buttons
                .iter()
                .flatten()
                .map(|b| format!("[{}]", b.label))
                .collect();
            let mut text = format!("{head}\n{}", indent(&msg.text));
            if !buttons.is_empty() {
                text.push_str(&format!("\n  {}", buttons.join(" ")));
            }
            for file in &msg.attachments {
                text.push_str(&format!("\n  {}", self.file_line(file)));
            }
            text
        };
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(sink, "{line}");
        let _ = sink.flush();
    }
}

impl ConsoleSender {
    /// The line that stands for a photo or file sent along: its name, or
    /// what it is when it has none.
    fn file_line(&self, file: &super::OutFile) -> String {
        let name = match (&file.file_name, &file.source) {
            (Some(name), _) => name.clone(),
            (None, super::FileSource::Path(p)) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            (None, super::FileSource::Url(s) | super::FileSource::PlatformId(s)) => s.clone(),
            (None, super::FileSource::Bytes(b)) => format!("{} B", b.len()),
        };
        let key = match file.kind {
            super::AttachmentKind::Photo => "chats.photo",
            super::AttachmentKind::Document => "chats.file",
        };
        t!(key, locale = self.locale.as_str(), name = name).into_owned()
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ChatSender for ConsoleSender {
    fn platform(&self) -> Platform {
        Platform::Console
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edit: true,
            buttons: true,
            max_text_chars: 4096,
        }
    }

    fn send<'a>(
        &'a self,
        msg: &'a Outgoing,
        edit_target: Option<&'a str>,
    ) -> super::BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let id = match edit_target {
                Some(target) => target.to_string(),
                None => {
                    let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
                    let id = *next;
                    *next += 1;
                    id.to_string()
                }
            };
            self.print(msg, &id, edit_target);
            Ok(Sent {
                message_id: Some(id),
            })
        })
    }
}

/// One console session: who is speaking where, and when.
pub struct Console {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    dispatcher: Dispatcher,
    sink: Sink,
    user: String,
    name: String,
    chat: Option<(String, ChatKind)>,
    /// Once `:today`/`:time` is used, time stands still except by directive.
    frozen: bool,
    /// Set by `:reply` for the next message only: the quoted id, and
    /// whether it is one of the bot's messages.
    next_reply: Option<(String, bool)>,
    /// Per chat, the id of the last message typed there (`:reply last`).
    last_in_chat: std::collections::HashMap<String, String>,
    session: String,
    seq: u64,
    /// Attachments for the next message (`:photo`, `:file`).
    attach: Vec<super::Attachment>,
}

/// Console documents are local paths the operator named with `:file`.
struct LocalFiles;

impl crate::engine::FileFetcher for LocalFiles {
    fn fetch<'a>(
        &'a self,
        file_ref: &'a str,
    ) -> super::BoxFuture<'a, Result<Vec<u8>, super::files::FetchError>> {
        Box::pin(super::files::read_local(file_ref))
    }
}

impl Console {
    /// `engine` must have been built with `clock` as its clock.
    pub fn new(engine: Arc<Engine>, clock: Arc<ManualClock>, sink: Sink, json: bool) -> Console {
        let sender = Arc::new(ConsoleSender::new(
            sink.clone(),
            json,
            &engine.settings.bot_name,
            &engine.settings.locale,
        ));
        // Services pick buttons and edits from the adapter's capabilities.
        engine.set_capabilities(Platform::Console, sender.capabilities());
        let dispatcher = Dispatcher::new(
            engine.store.clone(),
            sender,
            clock.clone(),
            engine.outbox_ready.clone(),
        );
        engine.set_file_fetcher(Platform::Console, Arc::new(LocalFiles));
        // Update ids must be unique across runs on the same database.
        let session = format!(
            "{:x}",
            Utc::now().timestamp_nanos_opt().unwrap_or_default() ^ i64::from(std::process::id())
        );
        Console {
            engine,
            clock,
            dispatcher,
            sink,
            user: "u1".into(),
            name: "小王".into(),
            chat: None,
            frozen: false,
            next_reply: None,
            last_in_chat: Default::default(),
            session,
            seq: 0,
            attach: Vec::new(),
        }
    }

    fn say(&self, text: &str) {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(sink, "{text}");
    }

    fn locale(&self) -> &str {
        &self.engine.settings.locale
    }

    /// Handle one line (directive or message). Returns false on `:quit`.
    pub async fn line(&mut self, line: &str) -> Result<bool, StoreError> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Ok(true);
        }
        if let Some(directive) = line.strip_prefix(':') {
            return self.directive(directive.trim()).await;
        }
        if !self.frozen {
            self.clock.set(Utc::now());
        }
        self.seq += 1;
        let (chat_id, kind) = self
            .chat
            .clone()
            .unwrap_or_else(|| (self.user.clone(), ChatKind::Private));
        let mut msg = Incoming::text(
            Platform::Console,
            format!("{}-{}", self.session, self.seq),
            chat_id,
            kind,
            self.user.clone(),
            line.replace("\\n", "\n"),
            self.clock.now(),
        )
        .from_name(self.name.clone());
        msg.message_id = Some(format!("in-{}", self.seq));
        msg.mentions = mentions(&msg.text);
        msg.attachments = std::mem::take(&mut self.attach);
        if let Some((id, from_bot)) = self.next_reply.take() {
            msg.reply_to = Some(super::ReplyRef {
                message_id: id,
                from_bot,
                text: None,
                attachments: Vec::new(),
            });
        }
        if let Some(id) = &msg.message_id {
            self.last_in_chat.insert(msg.chat_id.clone(), id.clone());
        }
        if let Err(e) = self.engine.handle(&msg).await {
            tracing::error!(error = %e, "handling failed");
            self.say(&t!("common.internal_error", locale = self.locale()));
        }
        self.tick().await?;
        Ok(true)
    }

    /// Run the scheduled jobs that are due, then send what is due.
    async fn tick(&self) -> Result<(), StoreError> {
        crate::jobs::run_due(&self.engine, self.clock.now()).await?;
        crate::jobs::sweeps(&self.engine, self.clock.now(), true).await?;
        self.dispatcher.drain_due().await?;
        Ok(())
    }

    async fn directive(&mut self, d: &str) -> Result<bool, StoreError> {
        let (word, rest) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
        let rest = rest.trim();
        match word {
            "as" if !rest.is_empty() => {
                let (user, name) = rest.split_once(char::is_whitespace).unwrap_or((rest, rest));
                self.user = user.to_string();
                self.name = name.trim().to_string();
            }
            "chat" if !rest.is_empty() => {
                let (id, kind) = rest
                    .split_once(char::is_whitespace)
                    .unwrap_or((rest, "group"));
                let kind = kind.trim().parse::<ChatKind>().unwrap_or(ChatKind::Group);
                self.chat = Some((id.to_string(), kind));
            }
            "today" => match NaiveDate::parse_from_str(rest, "%Y-%m-%d") {
                Ok(date) => {
                    let time = self.local_time();
                    let before = self.clock.now();
                    self.set_local(date, time);
                    if self.clock.now() > before {
                        self.tick().await?;
                    }
                }
                Err(_) => self.bad(d),
            },
            "time" => match NaiveTime::parse_from_str(rest, "%H:%M")
                .or_else(|_| NaiveTime::parse_from_str(rest, "%H:%M:%S"))
            {
                Ok(time) => {
                    let date = self.engine.local_date(self.clock.now());
                    let before = self.clock.now();
                    self.set_local(date, time);
                    // Moving the clock forward lets due jobs run and messages go out.
                    if self.clock.now() > before {
                        self.tick().await?;
                    }
                }
                Err(_) => self.bad(d),
            },
            "admin" if !rest.is_empty() => self.make_admin(rest).await?,
            "photo" if !rest.is_empty() => self.attach.push(super::Attachment {
                kind: super::AttachmentKind::Photo,
                file_ref: rest.to_string(),
                file_name: None,
            }),
            "file" if !rest.is_empty() => self.attach.push(super::Attachment {
                kind: super::AttachmentKind::Document,
                file_ref: rest.to_string(),
                file_name: std::path::Path::new(rest)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned()),
            }),
            "reply" if rest == "last" => {
                let chat = self.current_chat_id();
                match self.last_in_chat.get(&chat) {
                    Some(id) => self.next_reply = Some((id.clone(), false)),
                    None => self.bad(d),
                }
            }
            "reply" if rest.starts_with("in-") => {
                self.next_reply = Some((rest.to_string(), false));
            }
            "reply" if !rest.is_empty() => {
                self.next_reply = Some((rest.trim_start_matches('#').to_string(), true));
            }
            "quit" | "exit" | "q" => return Ok(false),
            _ => self.bad(d),
        }
        Ok(true)
    }

    /// The chat the next message goes to (the user's private chat when no
    /// `:chat` was given).
    fn current_chat_id(&self) -> String {
        self.chat
            .as_ref()
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| self.user.clone())
    }

    fn bad(&self, d: &str) {
        self.say(&t!(
            "console.bad_directive",
            locale = self.locale(),
            line = format!(":{d}")
        ));
    }

    fn local_time(&self) -> NaiveTime {
        if self.frozen {
            self.clock.now().with_timezone(&self.engine.tz).time()
        } else {
            NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default()
        }
    }

    fn set_local(&mut self, date: NaiveDate, time: NaiveTime) {
        let local = self
            .engine
            .tz
            .from_local_datetime(&date.and_time(time))
            .earliest();
        if let Some(at) = local {
            self.clock.set(at.with_timezone(&Utc));
            self.frozen = true;
        }
    }

    async fn make_admin(&mut self, user: &str) -> Result<(), StoreError> {
        let now = store::ms(self.clock.now());
        let name = if user == self.user {
            self.name.clone()
        } else {
            user.to_string()
        };
        let mut tx = self.engine.store.begin().await?;
        let (mut person, _) =
            people::upsert_seen(&mut tx, Platform::Console, user, &name, now).await?;
        crate::service::members::make_staff(
            &mut tx,
            &mut person,
            Platform::Console,
            "console",
            ":admin",
            now,
        )
        .await?;
        tx.commit().await
    }

    /// Replay a script (or an interactive session) line by line; at the end,
    /// let queued messages whose short delay has passed go out.
    pub async fn run<R: AsyncBufRead + Unpin>(
        &mut self,
        input: R,
        prompt: bool,
    ) -> Result<(), StoreError> {
        let mut lines = input.lines();
        loop {
            if prompt {
                let who = match &self.chat {
                    Some((id, _)) => format!("{}@{id}", self.name),
                    None => format!("{}（私聊）", self.name),
                };
                let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
                let _ = write!(sink, "{who}> ");
                let _ = sink.flush();
            }
            let Ok(Some(line)) = lines.next_line().await else {
                break;
            };
            if !self.line(&line).await? {
                break;
            }
        }
        self.clock.advance(Duration::seconds(10));
        self.tick().await?;
        Ok(())
    }
}

/// `@name` tokens in console text become mentions of the console user `name`.
fn mentions(text: &str) -> Vec<super::Mention> {
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix('@'))
        .filter(|w| !w.is_empty())
        .map(|w| super::Mention {
            user_id: w.to_string(),
            display: w.to_string(),
        })
        .collect()
}

/// The clock a console session starts with.
pub fn start_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc::now()))
}
