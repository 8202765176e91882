//! Dispatch events (op 0: `t` and `d`) as what tuanbot reads: messages as
//! [`Incoming`]s, the rest as [`Event`]s. Pure: no I/O, the time is given.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::chat::{Attachment, AttachmentKind, Incoming, Mention};
use crate::domain::{ChatKind, Platform};

/// One dispatch, read.
#[derive(Debug, Clone)]
pub enum Event {
    /// A group message (`all`: from `GROUP_MESSAGE_CREATE`, so the group
    /// delivers every message) or a private (C2C) one.
    Message { msg: Box<Incoming>, all: bool },
    /// The bot was added to (`GROUP_ADD_ROBOT`) or removed from
    /// (`GROUP_DEL_ROBOT`) a group by `by`.
    Membership {
        group: String,
        by: String,
        joined: bool,
        event_id: String,
    },
    /// The owner's switch for unprompted messages: `GROUP_MSG_RECEIVE` /
    /// `GROUP_MSG_REJECT` for a group, `C2C_MSG_RECEIVE` / `C2C_MSG_REJECT`
    /// (and `FRIEND_ADD` / `FRIEND_DEL`) for a user.
    Switch {
        chat: String,
        kind: ChatKind,
        on: bool,
        event_id: String,
    },
    /// Anything tuanbot does not read.
    Other,
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The event's id: the payload's `id`, else `d.id`, else the type, chat
/// and time (events are recorded once by it).
fn event_id(t: &str, id: Option<&str>, d: &Value, chat: &str) -> String {
    id.filter(|s| !s.is_empty())
        .map(String::from)
        .or_else(|| text_of(&d["id"]))
        .unwrap_or_else(|| {
            let ts = text_of(&d["timestamp"]).unwrap_or_default();
            format!("{t}:{chat}:{ts}")
        })
}

/// Read one dispatch. `now` becomes the message's time.
pub fn event(t: &str, id: Option<&str>, d: &Value, now: DateTime<Utc>) -> Event {
    match t {
        "GROUP_AT_MESSAGE_CREATE" | "GROUP_MESSAGE_CREATE" => {
            match message(d, ChatKind::Group, t == "GROUP_AT_MESSAGE_CREATE", now) {
                Some(msg) => Event::Message {
                    msg: Box::new(msg),
                    all: t == "GROUP_MESSAGE_CREATE",
                },
                None => Event::Other,
            }
        }
        "C2C_MESSAGE_CREATE" => match message(d, ChatKind::Private, true, now) {
            Some(msg) => Event::Message {
                msg: Box::new(msg),
                all: false,
            },
            None => Event::Other,
        },
        "GROUP_ADD_ROBOT" | "GROUP_DEL_ROBOT" => {
            let Some(group) = text_of(&d["group_openid"]) else {
                return Event::Other;
            };
            Event::Membership {
                event_id: event_id(t, id, d, &group),
                by: text_of(&d["op_member_openid"]).unwrap_or_default(),
                joined: t == "GROUP_ADD_ROBOT",
                group,
            }
        }
        "GROUP_MSG_RECEIVE" | "GROUP_MSG_REJECT" => {
            let Some(group) = text_of(&d["group_openid"]) else {
                return Event::Other;
            };
            Event::Switch {
                event_id: event_id(t, id, d, &group),
                kind: ChatKind::Group,
                on: t == "GROUP_MSG_RECEIVE",
                chat: group,
            }
        }
        "C2C_MSG_RECEIVE" | "C2C_MSG_REJECT" | "FRIEND_ADD" | "FRIEND_DEL" => {
            let Some(user) = text_of(&d["openid"]).or_else(|| text_of(&d["user_openid"])) else {
                return Event::Other;
            };
            Event::Switch {
                event_id: event_id(t, id, d, &user),
                kind: ChatKind::Private,
                on: t == "C2C_MSG_RECEIVE" || t == "FRIEND_ADD",
                chat: user,
            }
        }
        _ => Event::Other,
    }
}

/// A group or C2C message. `to_bot`: the event is one that addresses the
/// bot (an @ in a group, any private message).
fn message(d: &Value, kind: ChatKind, to_bot: bool, now: DateTime<Utc>) -> Option<Incoming> {
    let id = text_of(&d["id"])?;
    let author = &d["author"];
    let (chat, sender) = match kind {
        ChatKind::Group => (
            text_of(&d["group_openid"]).or_else(|| text_of(&d["group_id"]))?,
            text_of(&author["member_openid"]).or_else(|| text_of(&author["id"]))?,
        ),
        ChatKind::Private => {
            let user = text_of(&author["user_openid"]).or_else(|| text_of(&author["id"]))?;
            (user.clone(), user)
        }
    };
    if author["bot"].as_bool() == Some(true) {
        return None;
    }
    let name = author["username"]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .unwrap_or_else(|| short_name(&sender));
    let mut msg = Incoming::text(
        Platform::QqBot,
        format!("m:{id}"),
        chat,
        kind,
        sender,
        "",
        now,
    )
    .from_name(name);
    msg.message_id = Some(id);
    msg.mentions_bot = to_bot && kind == ChatKind::Group;
    let mentions: Vec<&Value> = d["mentions"].as_array().into_iter().flatten().collect();
    let mentioned = |openid: &str| {
        mentions.iter().find(|m| {
            m["member_openid"].as_str() == Some(openid) || m["id"].as_str() == Some(openid)
        })
    };
    if mentions.iter().any(|m| m["is_you"].as_bool() == Some(true)) {
        msg.mentions_bot = kind == ChatKind::Group;
    }
    let content = d["content"].as_str().unwrap_or_default();
    let mut text = String::new();
    let mut rest = content;
    // `<@openid>` / `<@!openid>` mark @-mentions inside the content.
    while let Some(start) = rest.find("<@") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('>') else {
            text.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let openid = after[..end].trim_start_matches('!');
        rest = &after[end + 1..];
        let m = mentioned(openid);
        if m.is_some_and(|m| m["is_you"].as_bool() == Some(true)) || openid.is_empty() {
            msg.mentions_bot = kind == ChatKind::Group;
            continue;
        }
        let display = m
            .and_then(|m| m["username"].as_str())
            .filter(|s| !s.is_empty())
            .map(String::from)
            .unwrap_or_else(|| short_name(openid));
        if !text.is_empty() && !text.ends_with(char::is_whitespace) {
            text.push(' ');
        }
        text.push('@');
        text.push_str(openid);
        if !rest.starts_with(char::is_whitespace) && !rest.is_empty() {
            text.push(' ');
        }
        msg.mentions.push(Mention {
            user_id: openid.to_string(),
            display: format!("@{display}"),
        });
    }
    text.push_str(rest);
    msg.text = text.trim().to_string();
    for a in d["attachments"].as_array().into_iter().flatten() {
        let Some(url) = a["url"].as_str().filter(|u| !u.is_empty()) else {
            continue;
        };
        let url = if url.contains("://") {
            url.to_string()
        } else {
            format!("https://{url}")
        };
        let content_type = a["content_type"].as_str().unwrap_or_default();
        msg.attachments.push(Attachment {
            kind: if content_type.starts_with("image") {
                AttachmentKind::Photo
            } else {
                AttachmentKind::Document
            },
            file_ref: url,
            file_name: a["filename"].as_str().map(String::from),
        });
    }
    Some(msg)
}

/// A name for someone the platform names only by openid.
fn short_name(openid: &str) -> String {
    let tail: String = openid
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("QQ-{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn group_at_message() {
        let d = json!({
            "id": "ROBOT1.0_abc", "content": " 认领 12", "timestamp": "2026-05-01T10:00:00+08:00",
            "group_id": "G1", "group_openid": "G1",
            "author": {"id": "M1", "member_openid": "M1", "member_role": "member", "bot": false}
        });
        let Event::Message { msg, all } = event("GROUP_AT_MESSAGE_CREATE", Some("ev1"), &d, now())
        else {
            panic!("not a message");
        };
        assert!(!all);
        assert_eq!(msg.text, "认领 12");
        assert_eq!(msg.chat_id, "G1");
        assert_eq!(msg.sender_id, "M1");
        assert_eq!(msg.chat_kind, ChatKind::Group);
        assert!(msg.mentions_bot);
        assert_eq!(msg.update_id, "m:ROBOT1.0_abc");
        assert_eq!(msg.platform, Platform::QqBot);
    }

    #[test]
    fn group_message_with_mentions_and_file() {
        let d = json!({
            "id": "m2", "content": "<@BOT> /role <@M9>团干部", "group_openid": "G1",
            "author": {"member_openid": "M1", "username": "小王"},
            "mentions": [
                {"scope": "single", "bot": true, "id": "BOT", "is_you": true, "member_openid": "BOT", "username": "团务助手"},
                {"scope": "single", "bot": false, "id": "M9", "is_you": false, "member_openid": "M9", "username": "小李"}
            ],
            "attachments": [{"content_type": "image/jpeg", "filename": "a.jpg",
                             "url": "multimedia.nt.qq.com.cn/download?appid=1"}]
        });
        let Event::Message { msg, all } = event("GROUP_MESSAGE_CREATE", None, &d, now()) else {
            panic!("not a message");
        };
        assert!(all);
        assert!(msg.mentions_bot);
        assert_eq!(msg.text, "/role @M9 团干部");
        assert_eq!(msg.mentions[0].display, "@小李");
        assert_eq!(msg.sender_name, "小王");
        assert_eq!(msg.attachments[0].kind, AttachmentKind::Photo);
        assert_eq!(
            msg.attachments[0].file_ref,
            "https://multimedia.nt.qq.com.cn/download?appid=1"
        );
    }

    #[test]
    fn c2c_file_and_events() {
        let d = json!({
            "id": "c1", "content": "/wishes import 一批",
            "author": {"id": "U1", "user_openid": "U1"},
            "attachments": [{"content_type": "file", "filename": "心愿.xlsx",
                             "url": "https://files.example/x"}]
        });
        let Event::Message { msg, .. } = event("C2C_MESSAGE_CREATE", None, &d, now()) else {
            panic!("not a message");
        };
        assert_eq!(msg.chat_kind, ChatKind::Private);
        assert_eq!(msg.chat_id, "U1");
        assert!(!msg.mentions_bot);
        assert_eq!(msg.attachments[0].kind, AttachmentKind::Document);
        assert_eq!(msg.attachments[0].file_name.as_deref(), Some("心愿.xlsx"));
        assert_eq!(msg.sender_name, "QQ-U1");
        let d = json!({"group_openid": "G1", "op_member_openid": "M1", "timestamp": 1714000000});
        assert!(matches!(
            event("GROUP_ADD_ROBOT", Some("GROUP_ADD_ROBOT:x"), &d, now()),
            Event::Membership { joined: true, ref event_id, .. } if event_id == "GROUP_ADD_ROBOT:x"
        ));
        assert!(matches!(
            event("GROUP_MSG_REJECT", None, &d, now()),
            Event::Switch {
                on: false,
                kind: ChatKind::Group,
                ..
            }
        ));
        assert!(matches!(
            event("C2C_MSG_RECEIVE", None, &json!({"openid": "U1"}), now()),
            Event::Switch {
                on: true,
                kind: ChatKind::Private,
                ..
            }
        ));
        assert!(matches!(event("READY", None, &d, now()), Event::Other));
        assert!(matches!(
            event(
                "GROUP_AT_MESSAGE_CREATE",
                None,
                &json!({"content": "x"}),
                now()
            ),
            Event::Other
        ));
    }
}
