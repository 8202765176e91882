//! FAQ: the ranking table, /faq in chat (list, ask, add, del, permissions,
//! bad input), @-mention questions, and import — on both backends.

use tuanbot::faq::{ANSWER_MIN, DEFAULT_FAQ, parse_markdown, rank};
use tuanbot::store::faq::Entry;

use crate::helpers::{TestDb, script, texts};

fn default_entries() -> Vec<Entry> {
    parse_markdown(DEFAULT_FAQ)
        .into_iter()
        .enumerate()
        .map(|(i, (question, answer))| Entry {
            id: i as i64 + 1,
            question,
            answer,
        })
        .collect()
}

/// Query → the entry number that should come first (0: below the answer
/// threshold, so "not found").
#[test]
fn ranking_table() {
    let entries = default_entries();
    let table: &[(&str, i64)] = &[
        ("入团年龄", 1),
        ("多大可以入团", 0),
        ("离团年龄", 2),
        ("入团程序", 3),
        ("入团步骤有哪些", 3),
        ("三会两制一课", 4),
        ("什么是三会", 4),
        ("绑定群", 5),
        ("怎么记录活动", 6),
        ("/log 怎么用", 6),
        ("工作总结", 7),
        ("星级评定", 8),
        ("通知怎么确认", 9),
        ("接龙", 10),
        ("火星移民", 0),
        ("😀😀", 0),
        ("'; DROP TABLE faq;--", 0),
    ];
    for (query, want) in table {
        let ranked = rank(query, &entries);
        let got = match ranked.first() {
            Some((e, s)) if *s >= ANSWER_MIN => e.id,
            _ => 0,
        };
        let top: Vec<(i64, String)> = ranked
            .iter()
            .take(3)
            .map(|(e, s)| (e.id, format!("{s:.2}")))
            .collect();
        assert_eq!(got, *want, "{query}: {top:?}");
    }
}

const SCENE: &str = "\
:today 2026-03-02
:admin zhang
:as u1 小王
我是 县一中
:chat g1 group
";

#[tokio::test]
async fn faq_in_chat() {
    for db in TestDb::both().await {
        let body = "\
/faq 入团年龄
@团务助手 入团程序是什么
今天天气不错，大家辛苦了
/faq 火星移民
/faq add 团费怎么交 | 按支部通知交纳。
/faq del 1
:as zhang 小张
/faq add 团费怎么交 | 按支部通知交纳。
/faq 团费
/faq del 12
/faq del 12
/faq add 没有竖线
/faq
";
        let out = script(&db, &format!("{SCENE}{body}"), true).await;
        let t = texts(&out);
        let t = &t[1..];
        assert_eq!(t.len(), 11, "{}: {t:#?}", db.backend);
        assert!(
            t[0].starts_with("💡 #1 入团年龄是多少？\n年满十四周岁、不满二十八周岁"),
            "{}",
            t[0]
        );
        assert!(t[1].starts_with("💡 #3 入团程序有哪些步骤？"), "{}", t[1]);
        // The chatter line got no reply.
        assert_eq!(t[2], "没找到「火星移民」的答案。发 /faq 看全部问题。");
        assert_eq!(t[3], "只有团县委工作人员可以增删常见问题。");
        assert_eq!(t[4], "只有团县委工作人员可以增删常见问题。");
        assert_eq!(t[5], "✅ 已添加常见问题 #12：团费怎么交");
        assert_eq!(t[6], "💡 #12 团费怎么交\n按支部通知交纳。");
        assert_eq!(t[7], "🗑 已删除常见问题 #12：团费怎么交");
        assert_eq!(t[8], "没有第 12 条常见问题。发 /faq 看全部。");
        assert!(t[9].starts_with("用法：/faq"), "{}", t[9]);
        assert!(
            t[10].starts_with("📖 常见问题（11 条）\n#1 入团年龄是多少？"),
            "{}",
            t[10]
        );
        assert!(!t[10].contains("团费"), "{}", t[10]);
        // Adds and deletes are audited.
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('faq.add', 'faq.del')",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(n, 2, "{}", db.backend);
        drop(conn);
        store.close().await;
    }
}

#[tokio::test]
async fn import_markdown_and_csv_skips_repeats() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("faq.md");
        std::fs::write(
            &md,
            "# 标题\n\n## 团费怎么交？\n按支部通知交纳。\n\n## 空的问题\n\n",
        )
        .unwrap();
        let csv = dir.path().join("faq.csv");
        std::fs::write(
            &csv,
            "问题,答案\n团费怎么交？,重复\n团徽怎么佩戴？,佩戴在左胸前。\n",
        )
        .unwrap();
        let list = tuanbot::faq::read_file(&md, "zh-CN").unwrap();
        assert_eq!(
            list,
            [("团费怎么交？".to_string(), "按支部通知交纳。".to_string())]
        );
        assert_eq!(
            tuanbot::faq::import(&store, &list, 0).await.unwrap(),
            (1, 0)
        );
        let list = tuanbot::faq::read_file(&csv, "zh-CN").unwrap();
        assert_eq!(
            tuanbot::faq::import(&store, &list, 0).await.unwrap(),
            (1, 1),
            "{}",
            db.backend
        );
        let mut conn = store.conn().await.unwrap();
        let all = tuanbot::store::faq::all(&mut conn).await.unwrap();
        assert_eq!(all.len(), 2);
        drop(conn);
        store.close().await;
    }
}
