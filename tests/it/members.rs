//! Membership by approval: join requests and who is asked, deciding with
//! buttons and words, what a pending person is told, moves that are asked
//! first, join codes, the roster, `/members`, `/remove`, and an upgrade
//! that keeps everyone who was in an org. Both backends.

use chrono::{TimeZone, Utc};
use tuanbot::chat::Incoming;
use tuanbot::domain::{ChatKind, Platform, Role};
use tuanbot::engine::Engine;
use tuanbot::store::people::Person;
use tuanbot::store::{audit, members as db, people};

use crate::helpers::{Scene, TestDb, bounded, scene, script};

/// One message of JSON console output.
#[derive(Debug, Clone)]
struct Msg {
    id: String,
    chat: String,
    text: String,
    buttons: Vec<(String, String)>,
    edit_of: Option<String>,
}

fn msgs(json: &str) -> Vec<Msg> {
    json.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            Msg {
                id: v["id"].as_str().unwrap_or_default().to_string(),
                chat: v["chat"].as_str().unwrap_or_default().to_string(),
                text: v["text"].as_str().unwrap_or_default().to_string(),
                buttons: v["buttons"]
                    .as_array()
                    .map(|b| {
                        b.iter()
                            .map(|b| {
                                (
                                    b["label"].as_str().unwrap_or_default().to_string(),
                                    b["data"].as_str().unwrap_or_default().to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                edit_of: v["edit_of"].as_str().map(str::to_string),
            }
        })
        .collect()
}

/// The messages after the first one whose text starts with `marker`.
fn after(all: &[Msg], marker: &str) -> Vec<Msg> {
    let i = all
        .iter()
        .position(|m| m.text.starts_with(marker))
        .unwrap_or_else(|| panic!("no {marker:?} in {all:#?}"));
    all[i + 1..].to_vec()
}

async fn person(db: &TestDb, platform: Platform, user: &str) -> Person {
    let store = db.store().await;
    let mut conn = store.conn().await.unwrap();
    people::find(&mut conn, platform, user)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no person {user}"))
}

async fn org_id(db: &TestDb, short: &str) -> i64 {
    crate::helpers::org_id(&db.store().await, short).await
}

async fn audited(db: &TestDb, action: &str) -> i64 {
    let store = db.store().await;
    let mut conn = store.conn().await.unwrap();
    audit::count_action(&mut conn, action).await.unwrap()
}

/// The pending request of `user` (console), if any.
async fn pending_of(db: &TestDb, user: &str) -> Option<db::JoinRequest> {
    let p = person(db, Platform::Console, user).await;
    let store = db.store().await;
    let mut conn = store.conn().await.unwrap();
    db::pending_of(&mut *conn, p.id).await.unwrap()
}

/// Staff zhang binds tgl county-wide and publishes the wish fixture there;
/// 小王 (u1) talks to the bot privately, asks to join 县一中 and is made its
/// cadre by staff; g1 is bound to 县一中; 小王 posts a sign-up list there.
const SCENE: &str = "\
:today 2026-05-20
:time 09:00
:admin zhang
:as zhang 团县委小张
:chat tgl group
绑定 全县
:file tests/fixtures/wishes.csv
/wishes import 2026圆梦
/wishes publish 2026圆梦 quota 5
:as u1 小王
:chat u1 private
我是 县一中
:as zhang 团县委小张
:chat tgl group
/role @u1 团干部
:as u1 小王
:chat g1 group
/bind 县一中
/event 植树 5月22日 9:00 广场 名额5
:time 09:01
";

/// The last message of [`SCENE`] starts with this.
const SCENE_END: &str = "📝 报名 #1";

/// A stranger asks in 县一中's group: the card goes to its cadre privately,
/// with buttons; until then every attempt to act for the org gets one line
/// saying why; the cadre's button approves; the card is edited and the
/// person told where they asked; then they claim.
#[tokio::test]
async fn request_goes_to_the_cadre_privately_and_the_button_approves() {
    for db in TestDb::both().await {
        let b = db.backend;
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:as u2 路人甲
:chat g1 group
我是 县一中
认领 3
/log 5月19日 团课 10人
报名 1
/mywishes
:chat u2 private
/mywishes
/whoami
/help
:as u1 小王
:chat u1 private
同意 2
:as u2 路人甲
:chat g1 group
认领 3
:time 09:02
"
            ),
            true,
        )
        .await;
        let all = msgs(&out);
        let t = after(&all, SCENE_END);
        // The card: to the cadre's private chat, with both buttons.
        let card = t
            .iter()
            .find(|m| m.text.starts_with("🙋 路人甲 申请加入 县一中团委（#2）"))
            .unwrap_or_else(|| panic!("{b}: no card in {t:#?}"));
        assert_eq!(card.chat, "u1", "{b}");
        assert_eq!(
            card.buttons,
            vec![
                ("同意".to_string(), "同意 2".to_string()),
                ("拒绝".to_string(), "拒绝 2".to_string())
            ],
            "{b}"
        );
        // Nothing of it reached the group but the asker's own line.
        let asked = t.iter().find(|m| m.text.starts_with("📝")).unwrap();
        assert_eq!(asked.chat, "g1");
        assert!(
            asked
                .text
                .starts_with("📝 已向 县一中团委 的团干部提出加入申请"),
            "{b}: {}",
            asked.text
        );
        // Each try to act for the org: one line (claim, log, sign-up,
        // /mywishes in a group and in private).
        let blocked = "⏳ 你加入 县一中团委 的申请还在等团干部同意，同意后才能这样做。";
        let waiting = t
            .iter()
            .filter(|m| m.chat == "g1" && m.text == blocked)
            .count();
        assert_eq!(waiting, 3, "{b}: {t:#?}");
        assert!(
            t.iter()
                .any(|m| m.chat == "g1" && m.text.starts_with("心愿里有孩子的信息，请私聊我")),
            "{b}"
        );
        assert_eq!(
            t.iter()
                .filter(|m| m.chat == "u2" && m.text == blocked)
                .count(),
            1,
            "{b}: private /mywishes"
        );
        let whoami = t.iter().find(|m| m.text.starts_with("👤 路人甲")).unwrap();
        assert!(whoami.text.contains("组织：未绑定"), "{b}");
        assert!(
            whoami
                .text
                .contains("申请：加入 县一中团委，等团干部同意（#2）"),
            "{b}: {}",
            whoami.text
        );
        let help = t.iter().find(|m| m.text.starts_with("📖")).unwrap();
        assert!(
            help.text
                .contains("⏳ 你申请加入 县一中团委，等团干部同意后就能认领、记录。"),
            "{b}: {}",
            help.text
        );
        assert!(!help.text.contains("第一步"), "{b}");
        // The decision: the cadre is answered, the asker told privately (they
        // have talked to the bot there), the card edited in place without
        // buttons.
        assert!(
            t.iter()
                .any(|m| m.chat == "u1" && m.text == "✅ 已同意 路人甲 加入 县一中团委。"),
            "{b}: {t:#?}"
        );
        assert!(
            t.iter()
                .any(|m| m.chat == "u2"
                    && m.text.starts_with("✅ 路人甲，你已加入 县一中团委（团员）")),
            "{b}: {t:#?}"
        );
        let edit = t
            .iter()
            .find(|m| m.edit_of.as_deref() == Some(card.id.as_str()))
            .unwrap_or_else(|| panic!("{b}: the card is not edited: {t:#?}"));
        assert_eq!(edit.text, "✅ #2 路人甲 已加入 县一中团委（小王 同意）");
        assert!(edit.buttons.is_empty(), "{b}");
        // Now a member: the claim counts.
        assert!(
            t.iter().any(|m| m.text.starts_with("✅ 县一中：3")),
            "{b}: {t:#?}"
        );
        let p = person(&db, Platform::Console, "u2").await;
        assert_eq!(
            (p.org_id, p.role),
            (Some(org_id(&db, "县一中").await), Role::Member),
            "{b}"
        );
        assert_eq!(audited(&db, "join.request").await, 2, "{b}");
        assert_eq!(audited(&db, "join.approve").await, 2, "{b}");
        // The log and the sign-up were not written while pending.
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activities")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let joined: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event_entries")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!((logged, joined), (0, 0), "{b}");
    }
}

/// Several pending requests: words pick one unambiguously (a number, a
/// unique name, a reply to the card); a bare `同意` in private lists them;
/// the same name twice asks for the number; a decided request stays
/// decided; another org's cadre may not; in a group, words that name no
/// request are chatter.
#[tokio::test]
async fn words_decide_among_several_requests() {
    for db in TestDb::both().await {
        let b = db.backend;
        let first = script(
            &db,
            &format!(
                "{SCENE}\
:as u5 小李
:chat u5 private
我是 县二中
:as zhang 团县委小张
:chat tgl group
/role @u5 团干部
:chat g1 group
:as a1 路人甲
我是 县一中
:as a2 路人乙
我是 县一中
:as a3 路人甲
我是 县一中
:as u1 小王
:chat u1 private
同意
同意 路人乙
同意 路人甲
拒绝 #5
同意 5
同意 99
:as u5 小李
:chat u5 private
同意 3
:as u9 闲人
:chat g1 group
同意 3
:as u1 小王
同意
同意他的意见
同意 路人丙
"
            ),
            true,
        )
        .await;
        let all = msgs(&first);
        let t = after(&all, SCENE_END);
        let to = |chat: &str| -> Vec<String> {
            t.iter()
                .filter(|m| m.chat == chat && m.edit_of.is_none())
                .map(|m| m.text.clone())
                .collect()
        };
        let u1 = to("u1");
        let cards: Vec<&String> = u1.iter().filter(|x| x.starts_with("🙋")).collect();
        assert_eq!(cards.len(), 3, "{b}: {u1:#?}");
        let replies: Vec<&String> = u1.iter().filter(|x| !x.starts_with("🙋")).collect();
        assert!(
            replies[0].starts_with("待审批的申请有 3 个，请写上编号：\n#3 路人甲 → 县一中"),
            "{b}: {}",
            replies[0]
        );
        assert_eq!(replies[1], "✅ 已同意 路人乙 加入 县一中团委。");
        assert!(
            replies[2].starts_with("待审批的申请有 2 个，请写上编号：\n#3 路人甲"),
            "{b}: {}",
            replies[2]
        );
        assert!(replies[2].contains("#5 路人甲"), "{b}");
        assert_eq!(replies[3], "已拒绝 路人甲 加入 县一中团委 的申请。");
        assert_eq!(replies[4], "#5（路人甲）已经处理过了：已拒绝。");
        assert!(replies[5].starts_with("没有编号 99 的加入申请"), "{b}");
        assert_eq!(replies.len(), 6, "{b}: {replies:#?}");
        assert_eq!(
            to("u5").last().unwrap(),
            "#3 要由 县一中团委 的团干部或团县委审批。"
        );
        // In the group: a stranger's 同意 3, a bare 同意 (not a reply to a
        // request), chatter and an unknown name get no reply; the rejected
        // one is told where they asked.
        let g1 = to("g1");
        assert_eq!(g1.len(), 5, "{b}: three requests, two outcomes: {g1:#?}");
        assert_eq!(
            g1.iter()
                .filter(|x| x.starts_with("📝 已向 县一中团委"))
                .count(),
            3,
            "{b}"
        );
        assert!(
            g1.iter()
                .any(|x| x.starts_with("✅ 路人乙，你已加入 县一中团委")),
            "{b}: {g1:#?}"
        );
        assert!(
            g1.iter()
                .any(|x| x.starts_with("县一中团委 没有同意你的加入申请")),
            "{b}: {g1:#?}"
        );
        // The card of #3, replied to with a bare 同意, decides #3.
        let card3 = t
            .iter()
            .find(|m| m.chat == "u1" && m.text.contains("（#3）"))
            .unwrap()
            .id
            .clone();
        let second = script(
            &db,
            &format!(":as u1 小王\n:chat u1 private\n:reply {card3}\n同意\n"),
            true,
        )
        .await;
        let t2 = msgs(&second);
        assert!(
            t2.iter()
                .any(|m| m.chat == "u1" && m.text == "✅ 已同意 路人甲 加入 县一中团委。"),
            "{b}: {t2:#?}"
        );
        let statuses = [(3, "approved"), (4, "approved"), (5, "rejected")];
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        for (id, want) in statuses {
            let r = db::get(&mut *conn, id).await.unwrap().unwrap();
            assert_eq!(r.status, want, "{b}: #{id}");
        }
        drop(conn);
        assert_eq!(audited(&db, "join.reject").await, 1, "{b}");
        assert_eq!(
            person(&db, Platform::Console, "a3").await.org_id,
            None,
            "{b}: rejected stays out"
        );
    }
}

/// Who is asked: an org without cadres goes to staff (privately when staff
/// talk to the bot privately, else the county group, else nobody, and the
/// asker is told to reach out); an org whose cadres have no private chat
/// goes to its own group, with them mentioned.
#[tokio::test]
async fn who_is_asked_and_where() {
    for db in TestDb::both().await {
        let b = db.backend;
        let out = script(
            &db,
            ":admin zhang\n\
:as s1 甲\n我是 县三中\n\
:as zhang 团县委小张\n:chat tgl group\n绑定 全县\n\
:as s2 乙\n:chat s2 private\n我是 县三中\n\
:as zhang 团县委小张\n:chat zhang private\n/whoami\n\
:as s3 丙\n:chat s3 private\n我是 县三中\n\
:as c1 老李\n:chat c1g group\n我是 县四中\n\
:as zhang 团县委小张\n/role @c1 团干部\n/bind 县四中\n\
:as s4 丁\n:chat s4 private\n我是 县四中\n",
            true,
        )
        .await;
        let all = msgs(&out);
        let first = all.iter().find(|m| m.chat == "s1").unwrap();
        assert!(
            first.text.contains("暂时没有审批人能收到通知"),
            "{b}: {}",
            first.text
        );
        assert!(
            all.iter()
                .any(|m| m.chat == "tgl" && m.text.starts_with("🙋 乙 申请加入 县三中团委")),
            "{b}: county group: {all:#?}"
        );
        assert!(
            all.iter()
                .any(|m| m.chat == "zhang" && m.text.starts_with("🙋 丙 申请加入 县三中团委")),
            "{b}: staff privately: {all:#?}"
        );
        assert!(
            !all.iter()
                .any(|m| m.chat == "tgl" && m.text.starts_with("🙋 丙")),
            "{b}: not also in the group"
        );
        let s3 = all.iter().find(|m| m.chat == "s3").unwrap();
        assert!(
            s3.text
                .starts_with("📝 县三中团委 还没有团干部，已请团县委审批"),
            "{b}"
        );
        // 县四中's cadre 老李 has no private chat: its group, not tgl.
        assert!(
            all.iter()
                .any(|m| m.chat == "c1g" && m.text.starts_with("🙋 丁 申请加入 县四中团委")),
            "{b}: the org's group: {all:#?}"
        );
        assert!(
            !all.iter()
                .any(|m| m.text.starts_with("🙋 丁") && m.chat != "c1g"),
            "{b}"
        );
        let s4 = all.iter().find(|m| m.chat == "s4").unwrap();
        assert!(
            s4.text
                .starts_with("📝 已向 县四中团委 的团干部提出加入申请"),
            "{b}"
        );
        assert!(!s4.text.contains("暂时没有"), "{b}");
    }
}

/// A cadre typing `我是` another org is asked first; 取消 changes nothing;
/// 确认 makes it a request to the new org, and until that org approves they
/// stay what they were. Staff move at once once they confirm, and stay
/// staff; a member's move is a request without a question.
#[tokio::test]
async fn moves_are_asked_and_approved() {
    for db in TestDb::both().await {
        let b = db.backend;
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:as u5 小李
:chat u5 private
我是 县二中
:as zhang 团县委小张
:chat tgl group
/role @u5 团干部
:as u1 小王
:chat u1 private
我是 县二中
取消
我是 县二中
确认
:as u6 小赵
:chat u6 private
我是 县一中
:as u1 小王
同意 4
:as u6 小赵
我是 县二中
:as zhang 团县委小张
:chat zhang private
我是 县三中
我是 县四中
确认
"
            ),
            true,
        )
        .await;
        let all = msgs(&out);
        let t = after(&all, SCENE_END);
        let u1: Vec<&Msg> = t.iter().filter(|m| m.chat == "u1").collect();
        assert!(
            u1[0].text.starts_with(
                "你现在是 县一中团委 的团干部。要改为加入 县二中团委 吗？加入后你是 县二中团委 的团员"
            ),
            "{b}: {:#?}",
            u1
        );
        assert_eq!(u1[1].text, "好的，已取消。");
        assert!(
            u1[2].text.starts_with("你现在是 县一中团委 的团干部"),
            "{b}"
        );
        assert!(
            u1[3]
                .text
                .starts_with("📝 已申请加入 县二中团委，同意前你仍是 县一中团委 的团干部。"),
            "{b}: {}",
            u1[3].text
        );
        // 县二中's cadre gets a card that says where 小王 comes from.
        assert!(
            t.iter().any(|m| m.chat == "u5"
                && m.text
                    .starts_with("🙋 小王 申请加入 县二中团委（#3），现为 县一中团委 的团干部")),
            "{b}: {t:#?}"
        );
        let p = person(&db, Platform::Console, "u1").await;
        assert_eq!(
            (p.org_id, p.role),
            (Some(org_id(&db, "县一中").await), Role::Cadre),
            "{b}: not moved or demoted while asking"
        );
        assert_eq!(pending_of(&db, "u1").await.map(|r| r.id), Some(3), "{b}");
        // A member of 县一中 (小赵, approved by 小王) asking for 县二中: a
        // request at once, still a member of 县一中 meanwhile.
        assert!(
            t.iter().any(|m| m.chat == "u6"
                && m.text == "📝 已申请加入 县二中团委，同意前你仍是 县一中团委 的团员。"),
            "{b}: {t:#?}"
        );
        let p6 = person(&db, Platform::Console, "u6").await;
        assert_eq!(p6.org_id, Some(org_id(&db, "县一中").await), "{b}");
        // Staff: placed at once without an org, asked when leaving one.
        let z: Vec<&Msg> = t.iter().filter(|m| m.chat == "zhang").collect();
        assert_eq!(
            z[0].text,
            "✅ 团县委小张，已加入 县三中团委（团县委工作人员）。"
        );
        assert!(
            z[1].text
                .starts_with("你现在在 县三中团委。要改到 县四中团委 吗？你仍是团县委工作人员。"),
            "{b}: {}",
            z[1].text
        );
        assert_eq!(
            z[2].text,
            "✅ 团县委小张，已加入 县四中团委（团县委工作人员）。"
        );
        let staff = person(&db, Platform::Console, "zhang").await;
        assert_eq!(
            (staff.org_id, staff.role),
            (Some(org_id(&db, "县四中").await), Role::Staff),
            "{b}"
        );
        // 县二中's cadre approves 小王's move: a member there, no longer a
        // cadre of 县一中.
        script(&db, ":as u5 小李\n:chat u5 private\n同意 3\n", true).await;
        let p = person(&db, Platform::Console, "u1").await;
        assert_eq!(
            (p.org_id, p.role),
            (Some(org_id(&db, "县二中").await), Role::Member),
            "{b}"
        );
    }
}

/// The code in an `/invite` reply.
fn code_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.len() == 6 && w.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_string()
}

/// `/invite` (a cadre for their org, staff for any; private chats only)
/// issues a 6-digit code good for 24 hours and one person; a wrong code
/// changes nothing and five a day lock codes out; the code is stored salted
/// and hashed.
#[tokio::test]
async fn join_codes_are_one_time_and_expire() {
    for db in TestDb::both().await {
        let b = db.backend;
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:as u1 小王
/invite
:chat u1 private
/invite
/invite 县二中
:as zhang 团县委小张
:chat zhang private
/invite 县二中
:as m1 路人
:chat m1 private
/invite
"
            ),
            true,
        )
        .await;
        let t = after(&msgs(&out), SCENE_END);
        let texts: Vec<&str> = t.iter().map(|m| m.text.as_str()).collect();
        assert!(
            texts[0].starts_with("邀请码只能用一次，请私聊我发送 /invite"),
            "{b}: {texts:#?}"
        );
        assert!(texts[1].starts_with("🎟 邀请码 "), "{b}: {}", texts[1]);
        assert!(texts[1].contains("我是 县一中 "), "{b}");
        assert_eq!(texts[2], "只有团干部（本组织）和团县委可以发邀请码。");
        assert!(texts[3].contains("我是 县二中 "), "{b}: {}", texts[3]);
        assert_eq!(texts[4], "只有团干部（本组织）和团县委可以发邀请码。");
        let code = code_in(texts[1]);
        let other = code_in(texts[3]);
        // Stored salted and hashed: neither the code nor its plain digest.
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let stored: Vec<(String, String)> =
            sqlx::query_as("SELECT salt, code_hash FROM join_codes ORDER BY id")
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        assert_eq!(stored.len(), 2, "{b}");
        let plain = tuanbot::service::web::digest(&code);
        for (salt, hash) in &stored {
            assert_eq!(hash.len(), 64, "{b}");
            assert!(salt != &code && hash != &code && hash != &plain, "{b}");
        }
        drop(conn);
        // Used: at once for the first, refused for the second; the 县二中
        // code does not open 县一中; a wrong code changes nothing.
        let out = script(
            &db,
            &format!(
                ":today 2026-05-20\n:time 10:00\n:as n1 新人一\n:chat n1 private\n我是 县一中 {code}\n\
:as n2 新人二\n:chat n2 private\n我是 县一中 {code}\n我是 县一中 {other}\n\
:as n3 新人三\n:chat n3 private\n我是 县二中 {other}\n"
            ),
            true,
        )
        .await;
        let t = msgs(&out);
        assert_eq!(
            t[0].text,
            "✅ 新人一，邀请码有效，已加入 县一中团委（团员）。发送 /help 看看能做什么。"
        );
        assert!(
            t[1].text.starts_with("邀请码不对或已失效"),
            "{b}: {}",
            t[1].text
        );
        assert!(
            t[2].text.starts_with("邀请码不对或已失效"),
            "{b}: {}",
            t[2].text
        );
        assert!(
            t[3].text
                .starts_with("✅ 新人三，邀请码有效，已加入 县二中团委"),
            "{b}"
        );
        assert_eq!(
            person(&db, Platform::Console, "n1").await.org_id,
            Some(org_id(&db, "县一中").await)
        );
        assert_eq!(person(&db, Platform::Console, "n2").await.org_id, None);
        assert_eq!(
            pending_of(&db, "n2").await,
            None,
            "{b}: a wrong code asks nothing"
        );
        assert_eq!(audited(&db, "join.code").await, 2, "{b}");
        assert_eq!(audited(&db, "join.code_wrong").await, 2, "{b}");
        // Five wrong codes a day: then codes are refused, even a good one.
        let day = ":today 2026-05-20\n:time 10:00\n";
        let out = script(
            &db,
            &format!("{day}:as u1 小王\n:chat u1 private\n/invite\n"),
            true,
        )
        .await;
        let fresh = code_in(&msgs(&out)[0].text);
        let guesses: String = (100_000..)
            .map(|n: u32| n.to_string())
            .filter(|g| *g != fresh)
            .take(5)
            .map(|g| format!("我是 县一中 {g}\n"))
            .collect();
        let out = script(
            &db,
            &format!("{day}:as n4 新人四\n:chat n4 private\n{guesses}我是 县一中 {fresh}\n"),
            true,
        )
        .await;
        let t = msgs(&out);
        assert!(
            t[5].text.starts_with("邀请码错了太多次"),
            "{b}: {}",
            t[5].text
        );
        assert_eq!(person(&db, Platform::Console, "n4").await.org_id, None);
        // After 24 hours a code no longer works.
        let out = script(
            &db,
            &format!("{day}:as u1 小王\n:chat u1 private\n/invite\n"),
            true,
        )
        .await;
        let late = code_in(&msgs(&out)[0].text);
        let out = script(
            &db,
            &format!(":today 2026-05-21\n:time 10:01\n:as n5 新人五\n:chat n5 private\n我是 县一中 {late}\n"),
            true,
        )
        .await;
        assert!(msgs(&out)[0].text.starts_with("邀请码不对或已失效"), "{b}");
    }
}

/// `/members`: a cadre sees their org (roles and pending), not another's; a
/// member is refused and a pending person told they wait; staff see any org,
/// and every pending request in the county. `/remove`: a cadre removes a
/// member of their org (who is told), not a cadre; staff anyone.
#[tokio::test]
async fn members_and_remove() {
    for db in TestDb::both().await {
        let b = db.backend;
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:as u2 小赵
:chat u2 private
我是 县一中
:as u3 小钱
:chat u3 private
我是 县一中
:as u4 小孙
:chat u4 private
我是 县二中
:as u1 小王
:chat u1 private
同意 2
/members
/members 县二中
:as u2 小赵
:chat u2 private
/members
:as u3 小钱
:chat u3 private
/members
:as zhang 团县委小张
:chat zhang private
/members
/members 县一中
:as u1 小王
:chat u1 private
/remove @u2
/remove @u1
:as zhang 团县委小张
:chat zhang private
/role @u4 团干部
:as u4 小孙
:chat u4 private
/remove @u1
:as zhang 团县委小张
:chat zhang private
/remove @u1
"
            ),
            true,
        )
        .await;
        let t = after(&msgs(&out), SCENE_END);
        let to = |chat: &str| -> Vec<String> {
            t.iter()
                .filter(|m| m.chat == chat && m.edit_of.is_none() && !m.text.starts_with("🙋"))
                .map(|m| m.text.clone())
                .collect()
        };
        let u1 = to("u1");
        let list = u1
            .iter()
            .find(|x| x.starts_with("👥 县一中团委 · 2 人"))
            .unwrap_or_else(|| panic!("{b}: {u1:#?}"));
        assert!(list.contains("团干部（1）：小王"), "{b}: {list}");
        assert!(list.contains("团员（1）：小赵"), "{b}: {list}");
        assert!(
            list.contains("⏳ 待审批 1 个：\n#3 小钱 → 县一中"),
            "{b}: {list}"
        );
        assert!(!list.contains("小孙"), "{b}: another org's request: {list}");
        assert!(
            u1.iter()
                .any(|x| x == "只有本组织的团干部和团县委可以查看成员。"),
            "{b}: {u1:#?}"
        );
        assert!(
            to("u2").contains(&"只有本组织的团干部和团县委可以查看成员。".to_string()),
            "{b}: a member"
        );
        assert_eq!(
            to("u3").last().unwrap(),
            "⏳ 你加入 县一中团委 的申请还在等团干部同意，同意后才能这样做。"
        );
        let z = to("zhang");
        assert!(
            z[0].starts_with("⏳ 全县待审批的加入申请 2 个：\n#3 小钱 → 县一中"),
            "{b}: {z:#?}"
        );
        assert!(z[0].contains("#4 小孙 → 县二中"), "{b}");
        assert!(z[1].starts_with("👥 县一中团委 · 2 人"), "{b}: {}", z[1]);
        // /remove.
        assert!(
            u1.iter().any(|x| x == "✅ 已把 小赵 移出 县一中团委。"),
            "{b}"
        );
        assert!(
            t.iter()
                .any(|m| m.chat == "u2" && m.text.starts_with("你已被移出 县一中团委")),
            "{b}: the removed member is told"
        );
        assert!(
            u1.iter()
                .any(|x| x.starts_with("只有 县一中团委 的团干部可以移出")),
            "{b}: not oneself"
        );
        assert!(
            to("u4")
                .iter()
                .any(|x| x.starts_with("只有 县一中团委 的团干部可以移出")),
            "{b}: another org's cadre"
        );
        assert!(
            z.iter().any(|x| x == "✅ 已把 小王 移出 县一中团委。"),
            "{b}: {z:#?}"
        );
        let u2 = person(&db, Platform::Console, "u2").await;
        assert_eq!(u2.org_id, None, "{b}");
        let u1p = person(&db, Platform::Console, "u1").await;
        assert_eq!((u1p.org_id, u1p.role), (None, Role::Member), "{b}");
        assert_eq!(audited(&db, "person.remove").await, 2, "{b}");
    }
}

/// Roster rows for [`roster_lets_listed_accounts_in`].
const ROSTER: &str = "组织,姓名,QQ号,Telegram,角色\n\
县一中,张三,10001,,团支书\n\
县一中,李四,10002,,\n\
县一中,王五,,@Wang_Wu5,团员\n\
县一中,赵六,,,\n\
县二中,钱七,10007,,团员\n";

fn at(minute: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 20, 1, minute, 0).unwrap()
}

async fn say(
    e: &Engine,
    n: &mut u32,
    platform: Platform,
    user: &str,
    text: &str,
    username: Option<&str>,
) {
    *n += 1;
    let mut m = Incoming::text(
        platform,
        format!("r{n}"),
        user,
        ChatKind::Private,
        user,
        text,
        at(*n),
    )
    .from_name(user.to_string());
    m.sender_username = username.map(str::to_string);
    bounded(e.handle(&m), "the engine to handle an update")
        .await
        .unwrap();
}

/// A roster staff import lets a listed QQ number or Telegram username in on
/// sight with the listed role; a name alone is only shown to the approver;
/// an import approves the pending requests whose account it lists; a bad
/// file is refused row by row and writes nothing.
#[tokio::test]
async fn roster_lets_listed_accounts_in() {
    for db in TestDb::both().await {
        let b = db.backend;
        let Scene {
            engine: e, store, ..
        } = scene(&db, at(0), "qq:1", true).await;
        let mut n = 0;
        // 10002 asks before the roster exists: pending.
        say(&e, &mut n, Platform::Qq, "10002", "我是 县一中", None).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("名单.csv");
        std::fs::write(&path, ROSTER).unwrap();
        let summary = tuanbot::service::members::import_roster_file(&store, &path, "zh-CN")
            .await
            .unwrap();
        assert_eq!(
            (summary.orgs, summary.people, summary.approved),
            (2, 5, 1),
            "{b}"
        );
        let mut conn = store.conn().await.unwrap();
        let li = people::find(&mut conn, Platform::Qq, "10002")
            .await
            .unwrap()
            .unwrap();
        drop(conn);
        let yi = org_id(&db, "县一中").await;
        assert_eq!((li.org_id, li.role), (Some(yi), Role::Member), "{b}");
        // On sight: a listed QQ number with its role; a Telegram username
        // whatever its case; the wrong org's request is a request.
        say(&e, &mut n, Platform::Qq, "10001", "我是 县一中", None).await;
        say(
            &e,
            &mut n,
            Platform::Telegram,
            "555",
            "我是 县一中",
            Some("wang_WU5"),
        )
        .await;
        say(&e, &mut n, Platform::Qq, "10007", "我是 县一中", None).await;
        // A name alone proves nothing: a request, marked for the approver.
        let mut m = Incoming::text(
            Platform::Qq,
            "r-zhao",
            "20006",
            ChatKind::Private,
            "20006",
            "我是 县一中",
            at(30),
        )
        .from_name("赵六");
        m.sender_username = None;
        bounded(e.handle(&m), "an update").await.unwrap();
        let mut conn = store.conn().await.unwrap();
        let get = |p: Option<Person>| p.map(|p| (p.org_id, p.role));
        assert_eq!(
            get(people::find(&mut conn, Platform::Qq, "10001")
                .await
                .unwrap()),
            Some((Some(yi), Role::Cadre)),
            "{b}: 团支书 on the roster"
        );
        assert_eq!(
            get(people::find(&mut conn, Platform::Telegram, "555")
                .await
                .unwrap()),
            Some((Some(yi), Role::Member)),
            "{b}"
        );
        let qian = people::find(&mut conn, Platform::Qq, "10007")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(qian.org_id, None, "{b}: listed for 县二中, not 县一中");
        let zhao = people::find(&mut conn, Platform::Qq, "20006")
            .await
            .unwrap()
            .unwrap();
        let r = db::pending_of(&mut *conn, zhao.id).await.unwrap().unwrap();
        assert!(r.on_roster, "{b}");
        let cards: Vec<String> =
            sqlx::query_scalar("SELECT payload FROM outbox WHERE payload LIKE '%赵六 申请加入%'")
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        assert!(
            cards.iter().any(|c| c.contains("名单上有此姓名")),
            "{b}: {cards:?}"
        );
        drop(conn);
        assert_eq!(audited(&db, "join.roster").await, 3, "{b}");
        assert_eq!(audited(&db, "roster.import").await, 1, "{b}");
        // A bad file: every problem with its row, nothing written.
        let bad = "组织,姓名,QQ号,Telegram,角色\n\
县一中,甲,10011,,\n\
火星基地,乙,,,\n\
县一中,,10012,,\n\
县一中,丙,12ab,,\n\
县一中,丁,,@ab,\n\
县一中,戊,10011,,\n\
县一中,己,,,团县委\n\
县三中,庚,10007,,\n";
        std::fs::write(&path, bad).unwrap();
        let err = tuanbot::service::members::import_roster_file(&store, &path, "zh-CN")
            .await
            .unwrap_err()
            .to_string();
        for want in [
            "第 3 行：组织「火星基地」找不到",
            "第 4 行：姓名是空的",
            "第 5 行：QQ号「12ab」不对",
            "第 6 行：Telegram 用户名「@ab」不对",
            "第 7 行：QQ 10011 与第 2 行重复",
            "第 8 行：角色「团县委」只能是 团员 或 团干部",
            "庚：QQ 10007 已在 县二中团委 的名单上",
        ] {
            assert!(err.contains(want), "{b}: {want} in {err}");
        }
        let mut conn = store.conn().await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM roster")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(rows, 5, "{b}: unchanged");
    }
}

/// `/roster import` in chat takes its file as the wish import does (staff
/// only); `tuanbot import roster FILE` is the same from the shell.
#[tokio::test]
async fn roster_import_in_chat_and_cli() {
    for db in TestDb::both().await {
        let b = db.backend;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.csv");
        std::fs::write(&path, ROSTER).unwrap();
        let file = path.display();
        let out = script(
            &db,
            &format!(
                ":admin zhang\n:as u1 小王\n:file {file}\n/roster import\n\
:as zhang 团县委小张\n:file {file}\n导入名单\n/roster 名单\n"
            ),
            true,
        )
        .await;
        let t = msgs(&out);
        assert_eq!(t[0].text, "只有团县委工作人员可以导入成员名单。", "{b}");
        assert_eq!(
            t[1].text, "✅ 名单已导入：2 个组织 5 人；按名单通过了 0 个待审批的申请。",
            "{b}"
        );
        assert!(
            t[2].text.starts_with("用法：先发名单表格文件"),
            "{b}: {}",
            t[2].text
        );
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tuanbot"));
        cmd.env_remove("TELOXIDE_TOKEN")
            .env("TUANBOT_DATABASE_URL", &db.url)
            .current_dir(std::env::temp_dir())
            .args(["import", "roster"])
            .arg(&path);
        let out = crate::helpers::output_within(&mut cmd, "tuanbot import roster");
        assert!(out.status.success(), "{b}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("名单已导入：2 个组织 5 人"),
            "{b}: {stdout}"
        );
    }
}

/// Upgrading a database whose people are already in orgs (before migration
/// 0012) keeps them members with their roles: nobody becomes pending.
#[tokio::test]
async fn upgrade_keeps_members() {
    for db in TestDb::both().await {
        let b = db.backend;
        let dir = if db.backend == "sqlite" {
            "migrations/sqlite"
        } else {
            "migrations/postgres"
        };
        // The migrations before 0012, as a database from before would have.
        let earlier = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.as_str() < "0012" {
                std::fs::copy(&path, earlier.path().join(&name)).unwrap();
            }
        }
        let before = sqlx::migrate::Migrator::new(earlier.path()).await.unwrap();
        sqlx::any::install_default_drivers();
        let url = if db.backend == "sqlite" {
            format!("{}?mode=rwc", db.url)
        } else {
            db.url.clone()
        };
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        before.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO orgs (id, full_name, short_name, kind, created_at, updated_at) \
             VALUES (1, '县一中团委', '县一中', 'school', 0, 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        for (id, user, role) in [(1, "old1", "cadre"), (2, "old2", "member")] {
            sqlx::query(
                "INSERT INTO people (id, platform, user_id, display_name, org_id, role, \
                 created_at, updated_at) VALUES ($1, 'console', $2, $2, 1, $3, 0, 0)",
            )
            .bind(id)
            .bind(user)
            .bind(role)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
        // Opening the store applies 0012.
        let out = script(
            &db,
            ":as old2 old2\n/whoami\n:as old1 old1\n/members\n",
            true,
        )
        .await;
        let t = msgs(&out);
        assert!(t[0].text.contains("组织：县一中团委"), "{b}: {}", t[0].text);
        assert!(!t[0].text.contains("申请"), "{b}");
        assert!(
            t[1].text.starts_with("👥 县一中团委 · 2 人"),
            "{b}: {}",
            t[1].text
        );
        assert!(!t[1].text.contains("待审批"), "{b}");
    }
}
