//! OneBot v11 message bodies: the segment array form
//! (`[{"type":"text","data":{"text":"…"}}, …]`) and the older CQ-code string
//! form (`[CQ:at,qq=123] 你好`), read into one list of [`Segment`]s, and the
//! segment array tuanbot sends.

use serde_json::{Value, json};

/// One piece of a message, as far as tuanbot cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    /// `qq` is a user id or `all`; `name` is what some implementations add.
    At {
        qq: String,
        name: Option<String>,
    },
    Reply(String),
    Image {
        file: String,
        url: Option<String>,
    },
    File {
        file: String,
        name: Option<String>,
    },
    /// Faces, records, videos, cards…: ignored.
    Other,
}

/// Read the `message` field of an event, whichever form it takes.
pub fn parse_message(v: &Value) -> Vec<Segment> {
    match v {
        Value::String(s) => parse_cq(s),
        Value::Array(items) => items.iter().map(from_json).collect(),
        _ => Vec::new(),
    }
}

fn data_str(data: &Value, key: &str) -> Option<String> {
    match data.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn from_json(item: &Value) -> Segment {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
    let data = item.get("data").cloned().unwrap_or(Value::Null);
    build(kind, |k| data_str(&data, k))
}

/// One segment from its type and a lookup of its parameters.
fn build(kind: &str, get: impl Fn(&str) -> Option<String>) -> Segment {
    match kind {
        "text" => Segment::Text(get("text").unwrap_or_default()),
        "at" => match get("qq") {
            Some(qq) => Segment::At {
                qq,
                name: get("name").filter(|n| !n.is_empty()),
            },
            None => Segment::Other,
        },
        "reply" => get("id").map(Segment::Reply).unwrap_or(Segment::Other),
        "image" => match get("file").or_else(|| get("url")) {
            Some(file) => Segment::Image {
                file,
                url: get("url").filter(|u| !u.is_empty()),
            },
            None => Segment::Other,
        },
        "file" => match get("file_id").or_else(|| get("file")) {
            Some(file) => Segment::File {
                file,
                name: get("name").or_else(|| get("file_name")),
            },
            None => Segment::Other,
        },
        _ => Segment::Other,
    }
}

/// Undo CQ-code escaping. `&amp;` goes last so `&amp;#91;` stays `&#91;`.
pub fn unescape(s: &str) -> String {
    s.replace("&#91;", "[")
        .replace("&#93;", "]")
        .replace("&#44;", ",")
        .replace("&amp;", "&")
}

/// Parse the CQ-code string form: plain text with `[CQ:type,k=v,…]` codes.
pub fn parse_cq(s: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("[CQ:") {
        if start > 0 {
            out.push(Segment::Text(unescape(&rest[..start])));
        }
        let after = &rest[start + 4..];
        let Some(end) = after.find(']') else {
            // An unterminated code is text.
            out.push(Segment::Text(unescape(&rest[start..])));
            return out;
        };
        let body = &after[..end];
        let mut parts = body.split(',');
        let kind = parts.next().unwrap_or_default();
        let params: Vec<(&str, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k, unescape(v)))
            .collect();
        out.push(build(kind, |key| {
            params
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        }));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Segment::Text(unescape(rest)));
    }
    out
}

/// The segment array for one outgoing part: an optional quoted message,
/// optional @-mentions, the text, then images (by URL or file reference).
pub fn outgoing(reply_to: Option<&str>, mentions: &[String], text: &str, images: &[&str]) -> Value {
    let mut segs = Vec::new();
    if let Some(id) = reply_to {
        segs.push(json!({"type": "reply", "data": {"id": id}}));
    }
    for qq in mentions {
        segs.push(json!({"type": "at", "data": {"qq": qq}}));
        segs.push(json!({"type": "text", "data": {"text": " "}}));
    }
    segs.push(json!({"type": "text", "data": {"text": text}}));
    for file in images {
        segs.push(json!({"type": "image", "data": {"file": file}}));
    }
    Value::Array(segs)
}

/// Split `text` into parts of at most `max` characters, at line breaks
/// where possible (a single overlong line is cut by characters).
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    if text.chars().count() <= max {
        return vec![text.to_string()];
    }
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0usize;
    for line in text.split('\n') {
        let len = line.chars().count();
        let need = if cur.is_empty() { len } else { len + 1 };
        if cur_len + need <= max {
            if !cur.is_empty() {
                cur.push('\n');
            }
            cur.push_str(line);
            cur_len += need;
            continue;
        }
        if !cur.is_empty() {
            parts.push(std::mem::take(&mut cur));
            cur_len = 0;
        }
        if len <= max {
            cur.push_str(line);
            cur_len = len;
        } else {
            let chars: Vec<char> = line.chars().collect();
            for chunk in chars.chunks(max) {
                parts.push(chunk.iter().collect());
            }
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cq_string_with_escapes() {
        let segs = parse_cq("[CQ:at,qq=10001] 我是 县一中&#91;团&#93;&amp;&#44;[CQ:face,id=1]");
        assert_eq!(
            segs,
            vec![
                Segment::At {
                    qq: "10001".into(),
                    name: None
                },
                Segment::Text(" 我是 县一中[团]&,".into()),
                Segment::Other,
            ]
        );
        assert_eq!(unescape("&amp;#91;"), "&#91;");
    }

    #[test]
    fn cq_params_unescaped_and_unterminated_is_text() {
        let segs = parse_cq("[CQ:image,file=a&#44;b.jpg,url=http://x/y?a=1&amp;b=2]");
        assert_eq!(
            segs,
            vec![Segment::Image {
                file: "a,b.jpg".into(),
                url: Some("http://x/y?a=1&b=2".into())
            }]
        );
        assert_eq!(
            parse_cq("[CQ:at,qq=1"),
            vec![Segment::Text("[CQ:at,qq=1".into())]
        );
    }

    #[test]
    fn segment_array() {
        let v = serde_json::json!([
            {"type": "reply", "data": {"id": 55}},
            {"type": "at", "data": {"qq": "7", "name": "小李"}},
            {"type": "text", "data": {"text": " hi"}},
            {"type": "file", "data": {"file": "f.xlsx", "file_id": "abc"}},
            {"type": "bogus"}
        ]);
        let segs = parse_message(&v);
        assert_eq!(segs[0], Segment::Reply("55".into()));
        assert_eq!(
            segs[3],
            Segment::File {
                file: "abc".into(),
                name: None
            }
        );
        assert_eq!(segs[4], Segment::Other);
    }

    #[test]
    fn split_at_lines() {
        assert_eq!(split_text("ab\ncd\nef", 5), vec!["ab\ncd", "ef"]);
        assert_eq!(split_text("abcdefg", 3), vec!["abc", "def", "g"]);
        assert_eq!(split_text("短", 3), vec!["短"]);
        let long = "行\n".repeat(5000);
        for p in split_text(&long, 3000) {
            assert!(p.chars().count() <= 3000);
        }
    }
}
