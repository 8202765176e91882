//! Acknowledgements as people write them: `收到！`, `好的，收到👌`,
//! `收到，谢谢`, `县一中收到`, `got it, thanks`.
//!
//! A message says "received" when, with @-mentions, emoji (also the
//! `[抱拳]`-style text faces) and punctuation set aside, it is short (at most
//! [`MAX_ACK_CHARS`] letters) and made like this:
//!
//! ```text
//! ack     := [LEAD] ACK {ACK | SOFT} [SIGNOFF]
//! ACK     := 收到 | 已阅 | 明白 | 知悉 | received | got it | noted | …
//! SOFT    := politeness (好的 谢谢 辛苦了 OK 嗯), particles (了 啦 哈),
//!            forms of address (老师 大家), a promise to act (马上 落实 转发),
//!            what was received (通知 文件)
//! LEAD    := anything short without a negation, a question or a request:
//!            a name (县一中), 好的, 已, 我们都 …
//! SIGNOFF := a last part, set apart by punctuation, that names an org
//!            (收到，县一中团委)
//! ```
//!
//! It is never an acknowledgement when it asks (a question mark, 吗, 没 after
//! the ack word, 谁, 是否), denies (没收到, 不明白, not received), asks others
//! to do something (收到请回复, 请回复收到) or goes on about something else
//! (收到一个快递, 收到的请回复): after the ack word only the words above may
//! follow. Pure: no I/O.

/// Longest acknowledgement, in letters, after emoji and punctuation are set
/// aside. Anything longer is a sentence, not an ack.
pub const MAX_ACK_CHARS: usize = 20;

/// What a word does in an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Says "received".
    Ack,
    /// Goes with an ack without changing it: politeness, particles,
    /// address, a promise to act, the thing received.
    Soft,
    /// Turns the message into a negation, a question or a request.
    Deny,
    /// Something still to come: fine after the ack, a denial before it.
    Later,
    /// Anything else (names, other content).
    Other,
}

/// Words that say "received" (Chinese).
const ACK_ZH: &[&str] = &[
    "收到",
    "收悉",
    "已阅",
    "已阅读",
    "已读",
    "阅",
    "明白",
    "了解",
    "知道",
    "知悉",
    "获悉",
    "悉知",
    "晓得",
    "懂了",
    "签收",
    "接收",
    "接收到",
    "看到",
];

/// Words that go with an ack (Chinese).
const SOFT_ZH: &[&str] = &[
    // politeness and assent
    "好的",
    "好滴",
    "好哒",
    "好嘞",
    "好勒",
    "好哦",
    "好噢",
    "好呀",
    "好吧",
    "好",
    "行",
    "可以",
    "没问题",
    "对",
    "是",
    "是的",
    "确认",
    "嗯",
    "嗯嗯",
    "恩",
    "恩恩",
    "谢谢",
    "谢",
    "谢啦",
    "感谢",
    "多谢",
    "非常",
    "非常感谢",
    "辛苦",
    "辛苦了",
    "辛苦啦",
    "您辛苦了", // particles
    "了",
    "啦",
    "哈",
    "哈哈",
    "呀",
    "啊",
    "哦",
    "噢",
    "喔",
    "哒",
    "滴",
    "嘞",
    "咯",
    "喽",
    "哟",
    "呐",
    "哇", // who and how much
    "已",
    "已经",
    "都",
    "也",
    "均",
    "全部",
    "我",
    "我们",
    "我校",
    "本人",
    "您",
    "你",
    // address
    "老师",
    "领导",
    "书记",
    "部长",
    "主任",
    "大家",
    "各位",
    "同志",
    "亲",
    "团县委",
    "县委",
    // a promise to act
    "马上",
    "立即",
    "立刻",
    "尽快",
    "及时",
    "按时",
    "准时",
    "按要求",
    "一定",
    "保证",
    "落实",
    "办理",
    "完成",
    "转发",
    "安排",
    "执行",
    "照办",
    "办",
    "处理",
    "传达",
    "上报",
    "报送",
    "准备",
    "跟进",
    "参加",
    "到位",
    "贯彻",
    "部署", // what was received
    "通知",
    "消息",
    "信息",
    "文件",
    "附件",
    "材料",
    "内容",
    "这",
    "此",
    "该",
    "放心",
    "请放心",
    "重要",
    "提醒",
    "分享",
];

/// Words of what is still to come: after the ack a promise (收到，会按时
/// 完成), before it a receipt that has not happened (明天会收到).
const LATER_ZH: &[&str] = &[
    "会", "将", "将会", "要", "能", "能够", "应", "应该", "可能", "明天", "稍后", "待会", "之后",
    "以后", "才",
];

/// Words that make it a negation, a question or a request (Chinese).
const DENY_ZH: &[&str] = &[
    "没",
    "沒",
    "未",
    "不",
    "无",
    "别",
    "莫",
    "勿",
    "非",
    "请",
    "麻烦",
    "回复",
    "回",
    "谁",
    "哪",
    "啥",
    "什么",
    "怎么",
    "怎",
    "吗",
    "嘛",
    "么",
    "否",
    "是否",
    "是不是",
    "有没有",
    "能否",
    "可否",
    "几",
    "如果",
    "如",
    "若",
    "要是",
    "假如",
    "等",
    "待",
    "希望",
    "记得",
    "务必",
    "需",
    "需要",
    "必须",
    "扣",
];

/// English phrases, longest first where one starts another.
const ACK_EN: &[&str] = &[
    "well received",
    "well noted",
    "copy that",
    "roger that",
    "got it",
    "will do",
    "received",
    "noted",
    "copy",
    "copied",
    "roger",
    "ack",
    "acked",
    "acknowledged",
    "understood",
    "gotcha",
];

const SOFT_EN: &[&str] = &[
    "thank you",
    "many thanks",
    "with thanks",
    "ok",
    "okay",
    "k",
    "kk",
    "yes",
    "yep",
    "sure",
    "thanks",
    "thx",
    "ty",
    "fine",
    "good",
    "great",
    "all",
    "it",
    "this",
    "that",
    "the",
    "your",
    "notice",
    "message",
    "sir",
    "madam",
    "teacher",
    "i",
    "we",
    "have",
    "has",
    "been",
    "already",
    "also",
];

const DENY_EN: &[&str] = &[
    "not",
    "no",
    "never",
    "didn't",
    "didnt",
    "dont",
    "don't",
    "haven't",
    "havent",
    "hasn't",
    "hasnt",
    "who",
    "what",
    "which",
    "did",
    "do",
    "does",
    "you",
    "u",
    "please",
    "pls",
    "plz",
    "if",
    "when",
    "whether",
    "reply",
    "anyone",
    "everyone",
    "everybody",
    "anybody",
];

/// Endings of an org's name, for a sign-off after the ack (`收到，县一中`).
const ORG_ENDINGS: &[&str] = &[
    "团委",
    "团支部",
    "团工委",
    "支部",
    "中学",
    "小学",
    "学校",
    "中",
    "乡",
    "镇",
    "街道",
    "社区",
    "村",
    "局",
    "院",
    "所",
    "站",
    "公司",
    "银行",
    "委",
];

/// One word of a message.
#[derive(Debug, Clone)]
struct Token {
    class: Class,
    /// Which part (between punctuation) of the message it is in.
    part: usize,
    text: String,
}

/// Whether `text` (already normalised) acknowledges receipt.
pub fn is_ack(text: &str) -> bool {
    if text.contains(['?', '？', '¿']) {
        return false;
    }
    let parts = parts(text);
    let letters: usize = parts
        .iter()
        .map(|p| p.chars().filter(|c| c.is_alphanumeric()).count())
        .sum();
    if letters == 0 || letters > MAX_ACK_CHARS {
        return false;
    }
    let tokens: Vec<Token> = parts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| tokenize(p, i))
        .collect();
    let Some(first) = tokens.iter().position(|t| t.class == Class::Ack) else {
        return false;
    };
    if tokens[..first]
        .iter()
        .any(|t| matches!(t.class, Class::Deny | Class::Later))
    {
        return false;
    }
    let rest = &tokens[first + 1..];
    let loose = |t: &Token| matches!(t.class, Class::Ack | Class::Soft | Class::Later);
    if rest.iter().all(loose) {
        return true;
    }
    // A sign-off: the last part, after the ack's, names an org.
    let last = tokens[tokens.len() - 1].part;
    if last == tokens[first].part {
        return false;
    }
    let (before, signoff): (Vec<&Token>, Vec<&Token>) = rest.iter().partition(|t| t.part < last);
    let name: String = signoff.iter().map(|t| t.text.as_str()).collect();
    before.into_iter().all(loose)
        && signoff.iter().all(|t| t.class != Class::Deny)
        && ORG_ENDINGS.iter().any(|e| name.ends_with(e))
}

/// The message's letters in parts: mentions and text faces dropped,
/// anything that is not a letter or digit (punctuation, emoji, spaces) a
/// break; ASCII lower-cased. Latin words stay apart by single spaces.
fn parts(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if word.starts_with(['@', '＠']) {
            continue;
        }
        cleaned.push_str(&strip_text_faces(word));
        cleaned.push(' ');
    }
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut space = false;
    for c in cleaned.chars() {
        if c.is_alphanumeric() || c == '\'' {
            if space && cur.ends_with(|p: char| p.is_ascii_alphanumeric()) && c.is_ascii() {
                cur.push(' ');
            } else if space && !cur.is_empty() {
                // A space between Chinese words ends a part, like a comma.
                out.push(std::mem::take(&mut cur));
            }
            space = false;
            cur.extend(c.to_lowercase());
        } else if c == ' ' {
            space = true;
        } else {
            space = false;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    // Apostrophes only join English words (didn't); they are no letters.
    out.iter_mut()
        .for_each(|p| *p = p.trim_matches('\'').to_string());
    out.retain(|p| !p.is_empty());
    out
}

/// `收到[抱拳]` → `收到`: short bracketed names are the text form of a face.
fn strip_text_faces(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if after[..close].chars().count() <= 4 => {
                out.push_str(&rest[..open]);
                out.push(' ');
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..open + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Split one part into words: Latin words by the phrase lists, Chinese by
/// the longest known word at each place (unknown characters are `Other`).
fn tokenize(part: &str, index: usize) -> Vec<Token> {
    let mut out = Vec::new();
    let mut rest = part;
    while !rest.is_empty() {
        let c = rest.chars().next().unwrap_or(' ');
        if c == ' ' {
            rest = &rest[1..];
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '\'' {
            let (class, len) = english_word(rest);
            out.push(Token {
                class,
                part: index,
                text: rest[..len].to_string(),
            });
            rest = &rest[len..];
            continue;
        }
        let (class, len) = chinese_word(rest);
        out.push(Token {
            class,
            part: index,
            text: rest[..len].to_string(),
        });
        rest = &rest[len..];
    }
    out
}

/// The longest known Chinese word at the start of `s`, or one character.
fn chinese_word(s: &str) -> (Class, usize) {
    let mut best = (Class::Other, s.chars().next().map_or(1, char::len_utf8));
    let mut best_len = 0;
    for (list, class) in [
        (ACK_ZH, Class::Ack),
        (SOFT_ZH, Class::Soft),
        (DENY_ZH, Class::Deny),
        (LATER_ZH, Class::Later),
    ] {
        for w in list {
            if s.starts_with(w) && w.len() > best_len {
                best_len = w.len();
                best = (class, w.len());
            }
        }
    }
    best
}

/// The longest known English phrase at the start of `s` (whole words), or
/// the first word.
fn english_word(s: &str) -> (Class, usize) {
    let word_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '\''))
        .unwrap_or(s.len());
    let mut best = (Class::Other, word_end);
    let mut best_len = 0;
    for (list, class) in [
        (ACK_EN, Class::Ack),
        (SOFT_EN, Class::Soft),
        (DENY_EN, Class::Deny),
    ] {
        for w in list {
            let whole = s.starts_with(w)
                && !s[w.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '\'');
            if whole && w.len() > best_len {
                best_len = w.len();
                best = (class, w.len());
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::is_ack;
    use crate::command::normalize::normalize;

    fn ack(s: &str) -> bool {
        is_ack(&normalize(s))
    }

    /// Acknowledgements as cadres write them in a county group.
    #[test]
    fn acks_count() {
        let cases = [
            "收到",
            "收到！",
            "收到。",
            "收到~",
            "收到!!",
            "已收到",
            "已阅",
            "明白",
            "明白！",
            "好的收到",
            "好的，收到",
            "好的,收到!",
            "收到谢谢",
            "收到，谢谢",
            "收到，谢谢大家",
            "收到收到",
            "收到收到收到",
            "收到👌",
            "收到🙏🙏",
            "👍收到",
            "收到[抱拳]",
            "收到了",
            "收到啦～",
            "收到哈",
            "嗯嗯，收到",
            "恩恩收到",
            "OK收到",
            "ok，收到了",
            "收到ok",
            "收到，辛苦了",
            "收到 谢谢老师",
            "收到，谢谢领导！",
            "县一中收到",
            "白沙乡团委收到！",
            "县二中已收到，谢谢",
            "确认收到",
            "已收到通知",
            "通知已收到",
            "收到，马上落实",
            "收到，立即转发",
            "好的，明白了",
            "明白，谢谢",
            "知道了",
            "已知悉",
            "收悉",
            "已阅，谢谢",
            "我们都收到了",
            "收到-县一中团委",
            "@团县委小张 收到",
            "收到 @团县委小张",
            "received",
            "Received, thanks!",
            "Got it",
            "got it, thank you",
            "Noted with thanks",
            "ok noted",
            "well received",
            "收到，没问题",
            "收到，马上办",
            "好嘞收到",
            "嗯嗯好的收到",
            "一中收到",
            "县一中团委小王收到",
            "已收到，马上转发",
            "收到，会按时完成",
            "收到，请放心",
            "收到，非常感谢",
            "重要通知已收到",
            "好的，知道了",
            "收到🫡",
            "copy that",
            "Received with thanks",
            "收到，感谢提醒",
            "已收到，谢谢团县委！县一中团委",
            "Got it 👍",
        ];
        for c in cases {
            assert!(ack(c), "{c:?} should count as an ack");
        }
    }

    /// Look-alikes: questions, negations, requests and sentences.
    #[test]
    fn look_alikes_do_not_count() {
        let cases = [
            "没收到",
            "收到了吗？",
            "收到了吗",
            "谁收到了",
            "收到请回复",
            "还没收到通知",
            "收到了没",
            "收到没有",
            "收到没",
            "收到否",
            "是否收到",
            "有没有收到",
            "大家都收到了吗",
            "收到？",
            "你收到了吗？",
            "没有收到",
            "未收到",
            "我没收到附件",
            "没收到附件？",
            "收到的请回复",
            "收到的扣1",
            "请回复收到",
            "回复收到",
            "请大家收到后回复",
            "收到一个快递",
            "今天收到了一份表彰通报很开心",
            "不明白",
            "不太明白",
            "明白人",
            "了解一下",
            "不知道",
            "知道吗",
            "收到后请尽快报名",
            "如收到请回复",
            "记得回复收到哦",
            "收到通知的同志请于周五前报名参加培训会议",
            "好的",
            "OK",
            "谢谢",
            "👌",
            "not received",
            "did you receive it",
            "received?",
            "please reply received",
            "收到么",
            "收到了嘛",
            "收到吧",
            "收到啥",
            "收到通知没",
            "怎么没收到",
            "你们收到没",
            "收到不",
            "收到请扣1",
            "收到通知请转发",
            "我收到了但是打不开",
            "刚收到快递",
            "明天会收到",
            "应该能收到",
            "希望大家都收到",
            "收到了吧",
            "尚未收到",
            "有人收到吗",
            "收到的人请举手",
            "Has everyone received it",
            "",
        ];
        for c in cases {
            assert!(!ack(c), "{c:?} must not count as an ack");
        }
    }

    #[test]
    fn longer_than_twenty_letters_is_a_sentence() {
        assert!(ack(&format!("{}收到", "县".repeat(18))));
        assert!(!ack(&format!("{}收到", "县".repeat(19))));
        // Emoji and punctuation are not counted.
        assert!(ack(&format!("{}收到！！！👌👌👌", "县".repeat(18))));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "[@\\[\\]' a-z收到没吗请，！?\\PC]{0,40}") {
            let _ = ack(&s);
        }
    }
}
