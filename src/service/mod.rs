//! Services own the rules. Each function takes the [`Ctx`] of one message
//! (open transaction, acting person, chat, clock, locale), checks
//! permissions, changes the store, writes the audit row and queues replies.
//! They never know which platform they serve.

pub mod activities;
pub mod chats;
pub mod events;
pub mod faq;
pub mod files;
pub mod flood;
pub mod help;
pub mod import_orgs;
pub mod members;
pub mod notices;
pub mod orgs;
pub mod privacy;
pub mod proof;
pub mod reports;
pub mod web;
pub mod wish_export;
pub mod wishes;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::chat::{Incoming, Outgoing};
use crate::command::deadline::When;
use crate::command::scope::OrgRef;
use crate::command::{Command, MAX_MESSAGE_CHARS, Parsed};
use crate::domain::Role;
use crate::engine::{Engine, Queued};
use crate::store::chats::Chat;
use crate::store::people::Person;
use crate::store::{self, Conn, StoreError, audit};
use rust_i18n::t;

/// The context of one message being handled.
pub struct Ctx<'a> {
    pub engine: &'a Engine,
    pub tx: &'a mut Conn,
    pub msg: &'a Incoming,
    /// The normalised message text.
    pub text: &'a str,
    /// For an import, the document it names, downloaded beforehand
    /// (`service::files::fetch_document`); `None` for everything else, and
    /// for senders who may not import.
    pub document: Option<&'a files::Fetched>,
    pub person: Person,
    pub chat: Chat,
    pub now: DateTime<Utc>,
    pub today: NaiveDate,
    pub locale: &'static str,
    pub out: Vec<Queued>,
}

pub type Result<T = ()> = std::result::Result<T, StoreError>;

impl Ctx<'_> {
    /// Reply in the chat the message came from, quoting it.
    pub fn reply(&mut self, text: impl Into<String>) {
        let mut m = Outgoing::new(self.msg.platform, self.msg.chat_id.clone(), text);
        m.reply_to = self.msg.message_id.clone();
        self.queue(m);
    }

    /// Reply with text that carries children's personal data (a wish's full
    /// details): the outbox row is marked, and its text blanked after
    /// `privacy.outbox_retention_days`. Only ever in a private chat.
    pub fn reply_personal(&mut self, text: impl Into<String>) {
        let mut m = Outgoing::new(self.msg.platform, self.msg.chat_id.clone(), text);
        m.reply_to = self.msg.message_id.clone();
        m.personal = true;
        self.queue(m);
    }

    /// Queue any message (to this or another chat).
    pub fn queue(&mut self, message: Outgoing) {
        self.out.push(Queued {
            message,
            not_before: None,
            coalesce_key: None,
        });
    }

    pub fn now_ms(&self) -> i64 {
        store::ms(self.now)
    }

    /// Write an audit row for a change made by the acting person.
    pub async fn audit(
        &mut self,
        action: &str,
        entity: &str,
        entity_id: impl ToString,
        detail: Value,
    ) -> Result {
        audit::record(
            self.tx,
            &audit::Entry {
                at_ms: self.now_ms(),
                platform: self.msg.platform,
                actor: &self.msg.sender_id,
                action,
                entity,
                entity_id: Some(entity_id.to_string()),
                detail,
            },
        )
        .await
    }

    pub fn is_staff(&self) -> bool {
        self.person.role == Role::Staff
    }

    pub fn in_group(&self) -> bool {
        self.chat.is_group()
    }

    /// Label of a role in the reply language.
    pub fn role_label(&self, role: Role) -> String {
        t!(format!("role.{}", role.as_str()), locale = self.locale).into_owned()
    }
}

/// Route a platform event about a chat (`Incoming::event`: the bot added
/// or removed, a group migrated …) to its service, in the update's
/// transaction; answers the messages to send, which the engine writes as
/// it writes replies.
pub async fn dispatch_event(
    tx: &mut Conn,
    settings: &crate::config::Settings,
    msg: &Incoming,
    event: &crate::chat::ChatEvent,
) -> Result<Vec<Outgoing>> {
    chats::on_event(tx, settings, msg, event).await
}

/// Route a parsed message to its service, unless it floods the chat
/// ([`flood`]).
pub async fn dispatch(ctx: &mut Ctx<'_>, parsed: Parsed) -> Result {
    let cost = flood::cost(&parsed, ctx.chat.kind, ctx.msg.mentions_bot);
    match ctx.engine.flood.check(ctx.msg, &cost, ctx.now) {
        flood::Verdict::Answer => {}
        flood::Verdict::SlowDown => {
            let text = t!("flood.slow_down", locale = ctx.locale);
            ctx.reply(text);
            return Ok(());
        }
        flood::Verdict::Quiet => return Ok(()),
    }
    match parsed {
        Parsed::Command(cmd) => run(ctx, cmd).await,
        Parsed::NotCommand => {
            if activities::attach_reply_photo(ctx).await? {
                return Ok(());
            }
            if faq::mention(ctx).await? {
                return Ok(());
            }
            if !ctx.in_group() && !ctx.text.is_empty() {
                let hint = t!("common.private_hint", locale = ctx.locale);
                ctx.reply(hint);
            }
            Ok(())
        }
        Parsed::Unknown(word) => {
            if !ctx.in_group() {
                let cmd = clip(&word, 20);
                let hint = t!("common.unknown_command", locale = ctx.locale, cmd = cmd);
                ctx.reply(hint);
            }
            Ok(())
        }
        Parsed::Invalid(err) => {
            // `max`: the one usage with a number in it.
            let max = crate::command::claim::MAX_CLAIM;
            let usage = t!(err.usage_key(), locale = ctx.locale, max = max);
            ctx.reply(usage);
            Ok(())
        }
        Parsed::TooLong { chars, command } => {
            if command || !ctx.in_group() {
                let text = t!(
                    "common.too_long",
                    locale = ctx.locale,
                    chars = chars,
                    max = MAX_MESSAGE_CHARS
                );
                ctx.reply(text);
            }
            Ok(())
        }
    }
}

async fn run(ctx: &mut Ctx<'_>, cmd: Command) -> Result {
    match cmd {
        Command::Help => help::help(ctx).await,
        Command::Iam(args) => orgs::iam(ctx, &args).await,
        Command::Whoami => orgs::whoami(ctx).await,
        Command::Orgs => orgs::list(ctx).await,
        Command::Bind(scope) => orgs::bind(ctx, &scope).await,
        Command::Unbind => orgs::unbind(ctx).await,
        Command::Role { target, role, org } => {
            orgs::set_role(ctx, &target, role, org.as_ref().map(OrgRef::as_str)).await
        }
        Command::Log(args) => activities::log(ctx, &args).await,
        Command::Undo(id) => activities::undo(ctx, id).await,
        Command::Edit { id, field, value } => activities::edit(ctx, id, field, &value).await,
        Command::Stats(args) => activities::stats(ctx, &args).await,
        Command::Mine => activities::mine(ctx).await,
        Command::Confirm => answer(ctx, true).await,
        Command::Cancel => answer(ctx, false).await,
        Command::Notice(args) => notices::compose(ctx, &args).await,
        Command::NoticeStatus(n) => notices::status(ctx, n).await,
        Command::NoticeCancel(n) => notices::cancel_scheduled(ctx, n).await,
        Command::Notices => notices::list(ctx).await,
        Command::Remind(n) => notices::remind(ctx, n).await,
        Command::Ack { notice, weak } => notices::ack(ctx, notice, weak).await,
        Command::EventNew(args) => events::create(ctx, &args).await,
        Command::EventShow(n) => events::show(ctx, n).await,
        Command::EventClose(n) => events::close(ctx, n).await,
        Command::Join { event, note } => events::join(ctx, event, note.as_deref()).await,
        Command::Leave(n) => events::leave(ctx, n).await,
        Command::Report { chart, on } => reports::report(ctx, chart, &on).await,
        Command::Stars(args) => reports::stars(ctx, &args).await,
        Command::Faq(args) => faq::run(ctx, args).await,
        Command::Web => web::link(ctx).await,
        Command::Claim(numbers) => wishes::claim(ctx, &numbers).await,
        Command::WishImport(name) => wishes::import_in_chat(ctx, &name).await,
        Command::WishPublish { batch, quota, at } => {
            wishes::publish(ctx, &batch, quota, at.as_ref()).await
        }
        Command::WishList(arg) => wishes::list(ctx, &arg).await,
        Command::WishOverdue => wishes::overdue(ctx).await,
        Command::WishShow(no) => wishes::show(ctx, no).await,
        Command::MyWishes => wishes::mine(ctx).await,
        Command::Release(no) => wishes::release(ctx, no).await,
        Command::Done(no) => wishes::done(ctx, no).await,
        Command::Revoke { no, reason } => wishes::revoke(ctx, no, &reason).await,
        Command::Approve(who) => members::decide(ctx, who.as_ref(), true).await,
        Command::Reject(who) => members::decide(ctx, who.as_ref(), false).await,
        Command::Invite(org) => members::invite(ctx, org_text(&org)).await,
        Command::Members(org) => members::members(ctx, org_text(&org)).await,
        Command::Remove(who) => members::remove(ctx, &who).await,
        Command::RosterImport => members::import_roster_in_chat(ctx).await,
    }
}

/// What the person typed for an optional org ("" for none).
fn org_text(org: &Option<OrgRef>) -> &str {
    org.as_ref().map_or("", OrgRef::as_str)
}

/// A time a command names that must lie ahead, as UTC milliseconds; `None`
/// once the person has been told why not: `notice.bad_time` when it names
/// no time (or none in the configured zone), `past_key` when it is not
/// after the message.
pub(crate) fn future_time(ctx: &mut Ctx<'_>, when: &When, past_key: &str) -> Option<i64> {
    let text = clip(&when.text, 20);
    match when.at.ok().and_then(|at| to_utc(ctx.engine.tz, at)) {
        Some(at) if at > ctx.now => Some(store::ms(at)),
        Some(_) => {
            let reply = t!(past_key, locale = ctx.locale, text = text);
            ctx.reply(reply);
            None
        }
        None => {
            let reply = t!("notice.bad_time", locale = ctx.locale, text = text);
            ctx.reply(reply);
            None
        }
    }
}

/// A local time in the configured zone as UTC (the earlier of two in a
/// repeated hour; `None` in a skipped one).
pub(crate) fn to_utc(tz: chrono_tz::Tz, at: NaiveDateTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&at)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// 确认 / 取消: answer the question the bot asked this person in this chat
/// (a notice preview, a likely duplicate `/log`, numbered choices). With no
/// open question, stay silent in groups: these are everyday words.
async fn answer(ctx: &mut Ctx<'_>, yes: bool) -> Result {
    let (platform, user, chat) = (
        ctx.msg.platform,
        ctx.msg.sender_id.clone(),
        ctx.msg.chat_id.clone(),
    );
    let now = ctx.now_ms();
    let open = crate::store::pending::open(ctx.tx, platform, &user, &chat, now).await?;
    match open.as_ref().map(|p| p.kind.as_str()) {
        Some(notices::PENDING_KIND) if yes => notices::confirm(ctx).await,
        Some(notices::PENDING_KIND) => notices::cancel(ctx).await,
        Some(members::MOVE_KIND) if yes => {
            crate::store::pending::clear(ctx.tx, platform, &user, &chat).await?;
            let payload = open.map(|p| p.payload).unwrap_or_default();
            members::confirm_move(ctx, &payload).await
        }
        Some(activities::LOG_DUP) if yes => {
            crate::store::pending::clear(ctx.tx, platform, &user, &chat).await?;
            let payload = open.map(|p| p.payload).unwrap_or_default();
            activities::confirm_duplicate(ctx, &payload).await
        }
        Some(_) => {
            crate::store::pending::clear(ctx.tx, platform, &user, &chat).await?;
            let text = t!("common.cancelled", locale = ctx.locale);
            ctx.reply(text);
            Ok(())
        }
        None => {
            if !ctx.in_group() {
                let text = t!("common.nothing_pending", locale = ctx.locale);
                ctx.reply(text);
            }
            Ok(())
        }
    }
}

/// Echo user input back safely: at most `max` characters, with an ellipsis.
pub fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}
