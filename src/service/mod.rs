//! Services own the rules. Each function takes the [`Ctx`] of one message
//! (open transaction, acting person, chat, clock, locale), checks
//! permissions, changes the store, writes the audit row and queues replies.
//! They never know which platform they serve.

pub mod activities;
pub mod chats;
pub mod env;
pub mod events;
pub mod faq;
pub mod files;
pub mod flood;
pub mod help;
pub mod import_orgs;
pub mod members;
pub mod notices;
pub mod orgs;
pub mod out;
pub mod privacy;
pub mod proof;
pub mod reports;
pub mod schedule;
pub mod web;
pub mod wish_export;
pub mod wishes;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::chat::Incoming;
use crate::command::deadline::When;
use crate::command::scope::OrgRef;
use crate::command::{Command, MAX_MESSAGE_CHARS, Parsed};
use crate::domain::Role;
use crate::store::chats::Chat;
use crate::store::people::Person;
use crate::store::{self, Conn, StoreError, audit};
use rust_i18n::t;

pub use env::{Env, FileFetcher};
pub use files::Fetched;
pub use out::{Out, Queued};

/// Where a service call comes from: the types of [`Ctx`]'s message parts.
pub trait Origin {
    type Msg<'a>;
    type Text<'a>;
    type Document<'a>;
    type Person;
    type Chat;
}

/// A service call for an incoming message (the usual [`Ctx`]).
pub struct Message;

impl Origin for Message {
    type Msg<'a> = &'a Incoming;
    type Text<'a> = &'a str;
    type Document<'a> = Option<&'a files::Fetched>;
    type Person = Person;
    type Chat = Chat;
}

/// A service call with no incoming message (a scheduled job): no sender,
/// no chat, nothing to reply to.
pub struct Scheduled;

impl Origin for Scheduled {
    type Msg<'a> = ();
    type Text<'a> = ();
    type Document<'a> = ();
    type Person = ();
    type Chat = ();
}

/// The context of one service call: the [`Env`], the open transaction, the
/// time, the locale and the [`Out`] port; for a message ([`Message`], the
/// default) also the message, its sender and its chat.
pub struct Ctx<'a, O: Origin = Message> {
    pub env: &'a Env,
    pub tx: &'a mut Conn,
    pub msg: O::Msg<'a>,
    /// The normalised message text.
    pub text: O::Text<'a>,
    /// For an import, the document it names, downloaded beforehand
    /// (`service::files::fetch_document`); `None` for everything else, and
    /// for senders who may not import.
    pub document: O::Document<'a>,
    pub person: O::Person,
    pub chat: O::Chat,
    pub now: DateTime<Utc>,
    pub today: NaiveDate,
    pub locale: &'static str,
    pub out: Out,
}

pub type Result<T = ()> = std::result::Result<T, StoreError>;

impl<'a> Ctx<'a, Scheduled> {
    /// The context of a scheduled job at `now`, in the default locale.
    pub fn scheduled(env: &'a Env, tx: &'a mut Conn, now: DateTime<Utc>) -> Self {
        Ctx {
            env,
            tx,
            msg: (),
            text: (),
            document: (),
            person: (),
            chat: (),
            now,
            today: env.local_date(now),
            locale: env.default_locale(),
            out: Out::new(),
        }
    }
}

impl<O: Origin> Ctx<'_, O> {
    pub fn now_ms(&self) -> i64 {
        store::ms(self.now)
    }
}

impl Ctx<'_> {
    /// Reply in the chat the message came from, quoting it.
    pub fn reply(&mut self, text: impl Into<String>) {
        self.out.reply(self.msg, text);
    }

    /// Reply with text that carries children's personal data (a wish's full
    /// details): the outbox row is marked, and its text blanked after
    /// `privacy.outbox_retention_days`. Only ever in a private chat.
    pub fn reply_personal(&mut self, text: impl Into<String>) {
        let mut m = out::reply_to(self.msg, text);
        m.personal = true;
        self.out.send(m);
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

// ------------------------------------------------------------ the engine's hooks
//
// The engine names nothing of `service` but these: it records an update's
// id and hands the rest over ([`dispatch`]), groups updates a service says
// may go together ([`batch_key`], [`run_batch`]), and downloads an
// import's document before the update's transaction ([`download`]).

/// One update as the engine hands it over: the message, its normalised
/// text, what it says, and the document it names (downloaded beforehand).
pub struct Update<'a> {
    pub msg: &'a Incoming,
    pub text: &'a str,
    pub parsed: &'a Parsed,
    pub document: Option<&'a files::Fetched>,
}

/// The dispatch hook: one update inside the engine's transaction (its id
/// already recorded as handled). A platform event about a chat goes to
/// [`chats::on_event`]; for a message, the sender and the chat are seen (an
/// account the settings name is made staff), an attachment is remembered,
/// then the message goes to its service. Returns what it says, for the
/// engine to write before it commits.
pub async fn dispatch(env: &Env, tx: &mut Conn, update: Update<'_>) -> Result<Out> {
    let msg = update.msg;
    let mut out = Out::new();
    if let Some(event) = &msg.event {
        // A platform event about a chat, not a message.
        for m in chats::on_event(&mut *tx, &env.settings, msg, event).await? {
            out.send(m);
        }
        return Ok(out);
    }
    let now = msg.at;
    let now_ms = store::ms(now);
    let (mut person, _new) = crate::store::people::upsert_seen(
        &mut *tx,
        msg.platform,
        &msg.sender_id,
        &msg.sender_name,
        now_ms,
    )
    .await?;
    if env.settings.is_admin(msg.platform, &msg.sender_id) {
        members::make_staff(
            &mut *tx,
            &mut person,
            msg.platform,
            "config",
            "admins setting",
            now_ms,
        )
        .await?;
    }
    let chat = crate::store::chats::upsert_seen(
        &mut *tx,
        msg.platform,
        &msg.chat_id,
        msg.chat_kind,
        msg.chat_title.as_deref(),
        now_ms,
    )
    .await?;
    // A photo or document is remembered before anything else, so that a
    // later `/done 12` or `/wishes import` replying to it finds it by the
    // quoted id alone.
    files::remember(&mut *tx, msg).await?;
    let locale = crate::i18n::pick(
        person.locale.as_deref(),
        msg.sender_language.as_deref(),
        &env.settings.locale,
    );
    let mut ctx = Ctx {
        env,
        tx,
        msg,
        text: update.text,
        document: update.document,
        person,
        chat,
        now,
        today: env.local_date(now),
        locale,
        out,
    };
    route(&mut ctx, update.parsed.clone()).await?;
    Ok(ctx.out)
}

/// Updates that may be handled together, in one go ([`run_batch`]): the
/// engine runs consecutive updates with the same [`Batched::key`] as one
/// batch. Only plain claims (`认领 12`) are batched.
#[derive(Debug, Clone)]
pub struct Batched(BatchKind);

#[derive(Debug, Clone)]
pub(crate) enum BatchKind {
    /// A plain claim's wish numbers ([`wishes::plain_claim`]).
    Claim(Vec<u32>),
}

impl Batched {
    /// Updates with the same key may go into one batch.
    pub fn key(&self) -> &'static str {
        match self.0 {
            BatchKind::Claim(_) => "claim",
        }
    }
}

/// The batch hook: whether `msg` may be handled together with its
/// neighbours of the same key, and how.
pub fn batch_key(env: &Env, msg: &Incoming, parsed: &Parsed) -> Option<Batched> {
    wishes::plain_claim(env, msg, parsed).map(|n| Batched(BatchKind::Claim(n)))
}

/// The batch hook: a run of updates with one [`Batched::key`], in arrival
/// order, with the effects of [`dispatch`] one after another (their ids
/// recorded too), in a few statements for all of them. `None` for an
/// update handled before; else what it says.
pub async fn run_batch(
    env: &Env,
    tx: &mut impl crate::store::db::Db,
    run: &[(&Incoming, &Batched)],
) -> Result<Vec<Option<Out>>> {
    match run.first().map(|(_, b)| &b.0) {
        Some(BatchKind::Claim(_)) => wishes::claim_run(env, tx, run).await,
        None => Ok(Vec::new()),
    }
}

/// Whether an update needs a document downloaded before its transaction
/// (an import), and whether it may name one sent earlier (then the engine
/// lets the updates before it commit first).
pub fn download_for(parsed: &Parsed, msg: &Incoming) -> Option<Download> {
    if !matches!(
        parsed,
        Parsed::Command(Command::WishImport(_) | Command::RosterImport)
    ) {
        return None;
    }
    Some(match files::carried_document(msg) {
        Some(_) => Download::Carried,
        None => Download::Earlier,
    })
}

/// Where an import's document is ([`download_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Download {
    /// Attached to the message itself.
    Carried,
    /// Replied to or sent before: possibly in an update not committed yet.
    Earlier,
}

/// The download hook: fetch and read an import's document outside any
/// transaction (`files::fetch_document`).
pub async fn download(env: &Env, msg: &Incoming) -> Result<Option<files::Fetched>> {
    files::fetch_document(env, msg).await
}

/// Route a parsed message to its service, unless it floods the chat
/// ([`flood`]).
async fn route(ctx: &mut Ctx<'_>, parsed: Parsed) -> Result {
    let cost = flood::cost(&parsed, ctx.chat.kind, ctx.msg.mentions_bot);
    match ctx.env.flood.check(ctx.msg, &cost, ctx.now) {
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
            // `/logg …`: the closest command, in groups too; a group's
            // command we know nothing like may be another bot's.
            let cmd = clip(&word, 20);
            let hint = match crate::command::closest_command(&word) {
                Some(near) => t!(
                    "common.unknown_command_near",
                    locale = ctx.locale,
                    cmd = cmd,
                    near = near
                ),
                None if ctx.in_group() => return Ok(()),
                None => t!("common.unknown_command", locale = ctx.locale, cmd = cmd),
            };
            ctx.reply(hint);
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
        Command::Help => help::help(ctx, false).await,
        Command::HelpAll => help::help(ctx, true).await,
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
        Command::ClaimAs { org, numbers } => wishes::claim_as(ctx, &org, &numbers).await,
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
    match when.at.ok().and_then(|at| to_utc(ctx.env.tz, at)) {
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
