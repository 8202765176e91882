//! Platform events that change a chat (`Incoming::event`): the bot added to
//! or removed from a group, someone else joining or leaving, a group that
//! moved to a new id, the owner's switch for unprompted messages. Adapters
//! only convert their platform's events; the rule is this one, the same
//! for every platform, in the update's transaction (its id recorded by the
//! engine first, so a redelivered event changes nothing).

use super::Out;
use crate::chat::{ChatEvent, Incoming, Outgoing};
use crate::config::Settings;
use crate::domain::ChatKind;
use crate::store::{self, Conn, StoreError, audit, chats};

/// Why the queue of a chat the bot left was dropped.
pub const REMOVED: &str = "bot removed from the group";

/// Apply `event` about `msg`'s chat. Answers the messages to send (the
/// greeting when the bot joins a group), which the engine writes to the
/// outbox as it does a message's replies.
/// - the bot added to a group: the chat is recorded (active) and greeted
///   with the `/bind` hint; audited `chat.joined`;
/// - the bot removed: the chat goes inactive and its unsent messages are
///   dropped (they could only fail); audited `chat.left`;
/// - someone else joined or left: the chat is recorded as alive, quietly;
/// - the group moved to a new id: the chat and its unsent messages follow;
///   audited `chat.migrate`;
/// - the owner's switch for unprompted messages: recorded; audited
///   `chat.active_messages`.
pub async fn on_event(
    tx: &mut Conn,
    settings: &Settings,
    msg: &Incoming,
    event: &ChatEvent,
) -> Result<Vec<Outgoing>, StoreError> {
    let now_ms = store::ms(msg.at);
    let chat = msg.chat_id.as_str();
    let mut out = Vec::new();
    let (action, detail) = match event {
        ChatEvent::BotAdded { needs_at } => {
            if msg.chat_kind != ChatKind::Group {
                return Ok(out);
            }
            chats::upsert_seen(
                &mut *tx,
                msg.platform,
                chat,
                ChatKind::Group,
                msg.chat_title.as_deref(),
                now_ms,
            )
            .await?;
            let locale = crate::i18n::pick(None, msg.sender_language.as_deref(), &settings.locale);
            let key = if *needs_at {
                "chats.greeting_at"
            } else {
                "chats.greeting"
            };
            let text = rust_i18n::t!(key, locale = locale, name = settings.bot_name.as_str());
            out.push(Outgoing::new(msg.platform, chat, text));
            ("chat.joined", serde_json::json!({"title": msg.chat_title}))
        }
        ChatEvent::BotRemoved => {
            chats::set_active(&mut *tx, msg.platform, chat, false, now_ms).await?;
            Out::drop_chat(&mut *tx, msg.platform, chat, REMOVED).await?;
            ("chat.left", serde_json::json!({"title": msg.chat_title}))
        }
        ChatEvent::MembersChanged => {
            chats::upsert_seen(
                &mut *tx,
                msg.platform,
                chat,
                msg.chat_kind,
                msg.chat_title.as_deref(),
                now_ms,
            )
            .await?;
            return Ok(out);
        }
        ChatEvent::Migrated { to } => {
            chats::rename_id(&mut *tx, msg.platform, chat, to, now_ms).await?;
            Out::retarget_chat(&mut *tx, msg.platform, chat, to).await?;
            ("chat.migrate", serde_json::json!({"from": chat, "to": to}))
        }
        ChatEvent::Unprompted { allowed } => {
            chats::set_unprompted(&mut *tx, msg.platform, chat, *allowed, now_ms).await?;
            (
                "chat.active_messages",
                serde_json::json!({"allowed": allowed}),
            )
        }
    };
    let entity_id = match event {
        ChatEvent::Migrated { to } => to.clone(),
        _ => chat.to_string(),
    };
    let mut detail = detail;
    detail["update_id"] = serde_json::json!(msg.update_id);
    // The platform itself acts where it names no one (a migration).
    let actor = if msg.sender_id.is_empty() {
        msg.platform.as_str()
    } else {
        msg.sender_id.as_str()
    };
    audit::record(
        &mut *tx,
        &audit::Entry {
            at_ms: now_ms,
            platform: msg.platform,
            actor,
            action,
            entity: "chat",
            entity_id: Some(entity_id),
            detail,
        },
    )
    .await?;
    Ok(out)
}
