//! Telegram updates → [`Incoming`]: pure translation, no I/O, so it is
//! unit-tested on JSON taken from the Bot API documentation.

use chrono::{DateTime, Utc};
use teloxide::types::{CallbackQuery, ChatMemberUpdated, Message, MessageEntityKind, User, UserId};

use crate::chat::{Attachment, AttachmentKind, ChatEvent, Incoming, Mention, ReplyRef};
use crate::domain::{ChatKind, Platform};

/// Who the bot is, from `getMe`: to tell mentions of it and replies to it.
#[derive(Debug, Clone)]
pub struct BotIdentity {
    pub id: UserId,
    pub username: String,
}

/// Group, supergroup and private chats are served; channels are not.
fn kind_of(msg: &Message) -> Option<ChatKind> {
    if msg.chat.is_private() {
        Some(ChatKind::Private)
    } else if msg.chat.is_group() || msg.chat.is_supergroup() {
        Some(ChatKind::Group)
    } else {
        None
    }
}

/// The sender's display name as Telegram shows it.
pub fn display_name(user: &User) -> String {
    let name = user.full_name();
    if name.trim().is_empty() {
        user.username
            .clone()
            .unwrap_or_else(|| user.id.0.to_string())
    } else {
        name
    }
}

/// The update id of a group's move to a supergroup: the same whether it
/// comes as a service message or as a refused send, so it is applied once.
pub fn migration_id(old: &str, new: &str) -> String {
    format!("migrate:{old}:{new}")
}

/// A group that became supergroup `new` (a refused send tells, or the
/// group's last service message), as an [`Incoming`] event.
pub fn incoming_from_migration(old: &str, new: &str, at: DateTime<Utc>) -> Incoming {
    Incoming::event(
        Platform::Telegram,
        migration_id(old, new),
        old,
        ChatKind::Group,
        "",
        ChatEvent::Migrated { to: new.into() },
        at,
    )
}

/// The bot's own membership of a group changed (`my_chat_member`): added
/// or removed, as an [`Incoming`] event caused by whoever did it. Private
/// chats, channels and changes that keep the bot in (or out of) the group
/// give `None`.
pub fn incoming_from_membership(
    update_id: u32,
    change: &ChatMemberUpdated,
    at: DateTime<Utc>,
) -> Option<Incoming> {
    let chat = &change.chat;
    if !(chat.is_group() || chat.is_supergroup()) {
        return None;
    }
    let joined = change.new_chat_member.is_present();
    if joined == change.old_chat_member.is_present() {
        return None;
    }
    let event = if joined {
        ChatEvent::BotAdded { needs_at: false }
    } else {
        ChatEvent::BotRemoved
    };
    let mut msg = Incoming::event(
        Platform::Telegram,
        update_id.to_string(),
        chat.id.0.to_string(),
        ChatKind::Group,
        change.from.id.0.to_string(),
        event,
        at,
    )
    .from_name(display_name(&change.from));
    msg.chat_title = chat.title().map(String::from);
    msg.sender_language = change.from.language_code.clone();
    msg.sender_username = change.from.username.clone();
    Some(msg)
}

/// A message (text, or a photo/document with its caption) as an
/// [`Incoming`]. Messages from bots (ourselves included), channel posts and
/// service messages without text or files give `None`.
pub fn incoming_from_message(
    update_id: u32,
    msg: &Message,
    me: &BotIdentity,
    at: DateTime<Utc>,
) -> Option<Incoming> {
    let kind = kind_of(msg)?;
    let from = msg.from.as_ref()?;
    if from.is_bot {
        return None;
    }
    let text = msg.text().or(msg.caption()).unwrap_or_default();
    let mut incoming = Incoming::text(
        Platform::Telegram,
        update_id.to_string(),
        msg.chat.id.0.to_string(),
        kind,
        from.id.0.to_string(),
        text,
        at,
    )
    .from_name(display_name(from));
    incoming.chat_title = msg.chat.title().map(String::from);
    incoming.sender_language = from.language_code.clone();
    incoming.sender_username = from.username.clone();
    incoming.message_id = Some(msg.id.0.to_string());
    // Entity offsets count UTF-16 units; teloxide's parse_entities slices
    // the text correctly for Chinese and emoji.
    let entities = msg
        .parse_entities()
        .or_else(|| msg.parse_caption_entities())
        .unwrap_or_default();
    for e in &entities {
        match e.kind() {
            MessageEntityKind::Mention => {
                let name = e.text().trim_start_matches('@');
                if name.eq_ignore_ascii_case(&me.username) {
                    incoming.mentions_bot = true;
                } else {
                    // Only the username is known; services also match
                    // mentions by display name.
                    incoming.mentions.push(Mention {
                        user_id: name.to_string(),
                        display: e.text().to_string(),
                    });
                }
            }
            MessageEntityKind::TextMention { user } => {
                if user.id == me.id {
                    incoming.mentions_bot = true;
                } else {
                    incoming.mentions.push(Mention {
                        user_id: user.id.0.to_string(),
                        display: display_name(user),
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(quoted) = msg.reply_to_message() {
        incoming.reply_to = Some(ReplyRef {
            message_id: quoted.id.0.to_string(),
            from_bot: quoted.from.as_ref().is_some_and(|u| u.id == me.id),
            text: quoted.text().or(quoted.caption()).map(String::from),
            attachments: quoted
                .photo()
                .and_then(|sizes| sizes.last())
                .map(|best| Attachment {
                    kind: AttachmentKind::Photo,
                    file_ref: best.file.id.0.clone(),
                    file_name: None,
                })
                .into_iter()
                .collect(),
        });
    }
    // Telegram sends each photo in several sizes, smallest first.
    if let Some(best) = msg.photo().and_then(|sizes| sizes.last()) {
        incoming.attachments.push(Attachment {
            kind: AttachmentKind::Photo,
            file_ref: best.file.id.0.clone(),
            file_name: None,
        });
    }
    if let Some(doc) = msg.document() {
        incoming.attachments.push(Attachment {
            kind: AttachmentKind::Document,
            file_ref: doc.file.id.0.clone(),
            file_name: doc.file_name.clone(),
        });
    }
    if incoming.text.trim().is_empty() && incoming.attachments.is_empty() {
        return None;
    }
    Some(incoming)
}

/// A button press as an [`Incoming`] whose text is the button's data, in
/// the chat of the message that carried the button.
pub fn incoming_from_callback(
    update_id: u32,
    q: &CallbackQuery,
    at: DateTime<Utc>,
) -> Option<Incoming> {
    let data = q.data.as_deref()?;
    let carrier = q.message.as_ref()?;
    let chat = carrier.chat();
    let kind = if chat.is_private() {
        ChatKind::Private
    } else if chat.is_group() || chat.is_supergroup() {
        ChatKind::Group
    } else {
        return None;
    };
    let mut incoming = Incoming::text(
        Platform::Telegram,
        update_id.to_string(),
        chat.id.0.to_string(),
        kind,
        q.from.id.0.to_string(),
        data,
        at,
    )
    .from_name(display_name(&q.from));
    incoming.chat_title = chat.title().map(String::from);
    incoming.sender_language = q.from.language_code.clone();
    incoming.sender_username = q.from.username.clone();
    incoming.callback_id = Some(q.id.0.clone());
    incoming.reply_to = Some(ReplyRef {
        message_id: carrier.id().0.to_string(),
        from_bot: true,
        text: carrier
            .regular_message()
            .and_then(|m| m.text())
            .map(String::from),
        attachments: Vec::new(),
    });
    Some(incoming)
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::{Update, UpdateKind};

    fn me() -> BotIdentity {
        BotIdentity {
            id: UserId(999),
            username: "tuan_bot".into(),
        }
    }

    /// As the Bot API sends it: text (teloxide's `Update` does not
    /// deserialize from a `serde_json::Value`).
    fn update(v: serde_json::Value) -> Update {
        serde_json::from_str(&v.to_string()).expect("update json")
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("time")
    }

    #[test]
    fn group_text_with_mentions_and_reply() {
        // "认领 12 @tuan_bot 😀 @li" — offsets in UTF-16 units.
        let u = update(serde_json::json!({
            "update_id": 7,
            "message": {
                "message_id": 51, "date": 1_700_000_000,
                "chat": {"id": -100123, "type": "supergroup", "title": "县一中团委"},
                "from": {"id": 42, "is_bot": false, "first_name": "小王", "language_code": "zh-hans"},
                "text": "认领 12 @tuan_bot 😀 @li",
                "entities": [
                    {"type": "mention", "offset": 6, "length": 9},
                    {"type": "mention", "offset": 19, "length": 3}
                ],
                "reply_to_message": {
                    "message_id": 50, "date": 1_700_000_000,
                    "chat": {"id": -100123, "type": "supergroup", "title": "县一中团委"},
                    "from": {"id": 999, "is_bot": true, "first_name": "团务助手", "username": "tuan_bot"},
                    "text": "📢 通知 #1"
                }
            }
        }));
        let UpdateKind::Message(m) = &u.kind else {
            panic!("not a message: {:?}", u.kind)
        };
        let inc = incoming_from_message(u.id.0, m, &me(), at()).expect("incoming");
        assert_eq!(inc.chat_id, "-100123");
        assert_eq!(inc.chat_kind, ChatKind::Group);
        assert_eq!(inc.sender_id, "42");
        assert_eq!(inc.sender_name, "小王");
        assert!(inc.mentions_bot);
        assert_eq!(inc.mentions.len(), 1);
        assert_eq!(inc.mentions[0].display, "@li");
        let reply = inc.reply_to.expect("reply");
        assert!(reply.from_bot);
        assert_eq!(reply.message_id, "50");
        assert_eq!(inc.message_id.as_deref(), Some("51"));
    }

    #[test]
    fn photo_with_caption_and_bots_ignored() {
        let u = update(serde_json::json!({
            "update_id": 8,
            "message": {
                "message_id": 52, "date": 1_700_000_000,
                "chat": {"id": 42, "type": "private", "first_name": "小王"},
                "from": {"id": 42, "is_bot": false, "first_name": "小王"},
                "caption": "/log 学雷锋 45人",
                "photo": [
                    {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
                    {"file_id": "big", "file_unique_id": "b", "width": 900, "height": 900}
                ]
            }
        }));
        let UpdateKind::Message(m) = &u.kind else {
            panic!("not a message: {:?}", u.kind)
        };
        let inc = incoming_from_message(u.id.0, m, &me(), at()).expect("incoming");
        assert_eq!(inc.chat_kind, ChatKind::Private);
        assert_eq!(inc.text, "/log 学雷锋 45人");
        assert_eq!(inc.attachments[0].file_ref, "big");
        let mut bot_msg = m.clone();
        if let Some(from) = bot_msg.from.as_mut() {
            from.is_bot = true;
        }
        assert!(incoming_from_message(8, &bot_msg, &me(), at()).is_none());
    }

    #[test]
    fn reply_to_a_photo_carries_the_photo() {
        let u = update(serde_json::json!({
            "update_id": 9,
            "message": {
                "message_id": 61, "date": 1_700_000_000,
                "chat": {"id": -100123, "type": "supergroup", "title": "县一中团委"},
                "from": {"id": 42, "is_bot": false, "first_name": "小王"},
                "text": "圆梦 12",
                "reply_to_message": {
                    "message_id": 60, "date": 1_700_000_000,
                    "chat": {"id": -100123, "type": "supergroup", "title": "县一中团委"},
                    "from": {"id": 43, "is_bot": false, "first_name": "小李"},
                    "photo": [
                        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
                        {"file_id": "big", "file_unique_id": "b", "width": 900, "height": 900}
                    ]
                }
            }
        }));
        let UpdateKind::Message(m) = &u.kind else {
            panic!("not a message: {:?}", u.kind)
        };
        let inc = incoming_from_message(u.id.0, m, &me(), at()).expect("incoming");
        assert!(inc.attachments.is_empty());
        let reply = inc.reply_to.expect("reply");
        assert!(!reply.from_bot);
        assert_eq!(reply.attachments.len(), 1);
        assert_eq!(reply.attachments[0].kind, AttachmentKind::Photo);
        assert_eq!(reply.attachments[0].file_ref, "big");
    }
}
