//! Who may do what: the permission matrix, and bad input changing nothing.

use tuanbot::domain::Platform;
use tuanbot::store::{chats, orgs, people};

use crate::helpers::{TestDb, script, texts};

/// Sets the scene: u1 staff, u2 cadre of 县一中, u3 member of 县一中, u4 cadre of 县二中.
const SCENE: &str = "\
:admin u1
:as u2 小李
我是 县一中
:as u3 小赵
我是 县一中
:as u4 小钱
我是 县二中
:as u1 小张
/role @u2 cadre
/role @u4 cadre
";

async fn bound_org(db: &TestDb, chat: &str) -> (Option<i64>, bool) {
    let store = db.store().await;
    let mut conn = store.conn().await.unwrap();
    let c = chats::find(&mut conn, Platform::Console, chat)
        .await
        .unwrap();
    c.map(|c| (c.org_id, c.committee_wide))
        .unwrap_or((None, false))
}

async fn org_id(db: &TestDb, name: &str) -> i64 {
    crate::helpers::org_id(&db.store().await, name).await
}

#[tokio::test]
async fn bind_matrix() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            &format!(
                "{SCENE}\
:chat g1 group
:as u3 小赵
/bind 县一中
/bind 全县
:as u4 小钱
/bind 县一中
:as u2 小李
/bind 全县
:chat p private
/bind 县一中
:chat g1 group
/bind 县一中
"
            ),
            true,
        )
        .await;
        let t = texts(&out);
        let n = t.len();
        assert!(
            t[n - 6].starts_with("只有团县委工作人员或 县一中 的团干部"),
            "{}: member: {}",
            db.backend,
            t[n - 6]
        );
        assert!(
            t[n - 5].starts_with("只有团县委工作人员可以设置全县"),
            "{}",
            t[n - 5]
        );
        assert!(
            t[n - 4].starts_with("只有团县委工作人员或 县一中"),
            "cadre of 县二中: {}",
            t[n - 4]
        );
        assert!(
            t[n - 3].starts_with("只有团县委工作人员可以设置全县"),
            "cadre: {}",
            t[n - 3]
        );
        assert_eq!(t[n - 2], "这个命令要在群里用。");
        assert!(
            t[n - 1].starts_with("✅ 本群已绑定到 县一中团委"),
            "{}",
            t[n - 1]
        );
        assert_eq!(
            bound_org(&db, "g1").await,
            (Some(org_id(&db, "县一中").await), false)
        );

        // Unbinding: a member and another org's cadre can't; staff can; then county-wide.
        let out = script(
            &db,
            ":chat g1 group\n:as u3 小赵\n/unbind\n:as u4 小钱\n/unbind\n:as u1 小张\n/unbind\n/bind 全县\n",
            true,
        )
        .await;
        let t = texts(&out);
        assert!(
            t[0].starts_with("只有团县委工作人员或本群所属组织的团干部"),
            "{}",
            t[0]
        );
        assert!(
            t[1].starts_with("只有团县委工作人员或本群所属组织的团干部"),
            "{}",
            t[1]
        );
        assert_eq!(t[2], "✅ 已解除本群的绑定。");
        assert_eq!(t[3], "✅ 本群已设为全县团干群（团县委）。");
        assert_eq!(bound_org(&db, "g1").await, (None, true));
    }
}

#[tokio::test]
async fn role_matrix() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            &format!("{SCENE}:as u3 小赵\n/role @u3 staff\n:as u2 小李\n/role @u3 cadre\n:as u1 小张\n/role @u3 团干部\n/role @nobody cadre\n"),
            true,
        )
        .await;
        let t = texts(&out);
        let n = t.len();
        assert_eq!(
            t[n - 4],
            "只有团县委工作人员可以设置角色。",
            "{}",
            db.backend
        );
        assert_eq!(t[n - 3], "只有团县委工作人员可以设置角色。");
        assert_eq!(t[n - 2], "✅ 小赵 现在是 县一中团委 的团干部。");
        assert!(t[n - 1].starts_with("找不到「nobody」"), "{}", t[n - 1]);
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let u3 = people::find(&mut conn, Platform::Console, "u3")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u3.role, tuanbot::domain::Role::Cadre);
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_reply_and_changes_nothing() {
    for db in TestDb::both().await {
        let long = "县".repeat(5000);
        let out = script(
            &db,
            &format!(
                ":as u5 小孙\n/iam '; DROP TABLE orgs; --\n/iam 😀🎉\n/iam {long}\n/iam 县\u{200B}一中\u{FEFF}团委\n:chat g9 group\n{long}\n/bind '; DROP TABLE chats; --\n"
            ),
            true,
        )
        .await;
        let t = texts(&out);
        assert_eq!(t.len(), 5, "{}: {t:?}", db.backend);
        assert!(
            t[0].starts_with("没有找到组织「'; DROP TABLE orgs; …」"),
            "{}",
            t[0]
        );
        assert!(t[1].starts_with("没有找到组织「😀🎉」"), "{}", t[1]);
        assert!(t[2].starts_with("消息太长（5005 字）"), "{}", t[2]);
        assert!(
            t[3].starts_with("📝 县一中团委 还没有团干部，已请团县委审批你的加入申请"),
            "zero-width characters ignored: {}",
            t[3]
        );
        assert!(
            t[4].starts_with("没有找到组织「'; DROP TABLE chats;…」"),
            "{}",
            t[4]
        );
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        assert_eq!(orgs::count(&mut conn).await.unwrap(), 54);
        assert_eq!(bound_org(&db, "g9").await, (None, false));
    }
}

#[tokio::test]
async fn ambiguous_and_unknown_org_names() {
    for db in TestDb::both().await {
        let out = script(
            &db,
            ":as u6 小周\n我是 中学\n我是 3\n我是 2\n我是 县十中\n",
            true,
        )
        .await;
        let t = texts(&out);
        assert_eq!(
            t[0], "找到 2 个：1. 县职业中学团委 2. 县实验中学团委 —— 回复「我是 1」选择。",
            "{}",
            db.backend
        );
        assert_eq!(t[1], "请回复 1 到 2 之间的编号，如「我是 1」。");
        assert!(
            t[2].starts_with("📝 县实验中学团委 还没有团干部，已请团县委审批你的加入申请"),
            "{}",
            t[2]
        );
        assert!(
            t[3].starts_with("没有找到组织「县十中」。你是不是要找："),
            "{}",
            t[3]
        );
    }
}
