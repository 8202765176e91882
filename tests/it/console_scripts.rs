//! Whole conversations through the console simulator, snapshotted. The same
//! script must print the same thing on both backends.

use crate::helpers::{TestDb, script};

async fn snapshot_both(name: &str, text: &str) {
    let mut outputs = Vec::new();
    for db in TestDb::both().await {
        outputs.push((db.backend, script(&db, text, false).await));
    }
    let (_, first) = &outputs[0];
    for (backend, out) in &outputs[1..] {
        assert_eq!(first, out, "{backend} differs from sqlite");
    }
    insta::assert_snapshot!(name, first);
}

#[tokio::test]
async fn onboarding() {
    snapshot_both(
        "onboarding",
        ":today 2026-03-10\n\
:as u1 小王\n\
/help\n\
我是 一中\n\
我是谁\n\
:admin zhang\n\
:as zhang 团县委小张\n\
:chat g1 group\n\
/bind 县一中\n\
/role @u1 团干部\n\
:as u1 小王\n\
/help\n\
/whoami\n\
:chat tgl group\n\
:as zhang 团县委小张\n\
绑定 全县\n\
/help\n",
    )
    .await;
}

#[tokio::test]
async fn org_tree() {
    snapshot_both(
        "org_tree",
        ":as u1 小王\n我是 县一中\n:as u2 小李\n我是 永清镇\n\
:admin zhang\n:as zhang 团县委小张\n同意 小王\n同意 小李\n组织\n",
    )
    .await;
}

#[tokio::test]
async fn mistakes_get_a_way_forward() {
    snapshot_both(
        "mistakes",
        ":as u1 小李\n\
/iam\n\
/bind 县一中\n\
/role @u1\n\
我是 县十中\n\
我是 中学\n\
我是 1\n\
/frobnicate\n\
你好\n",
    )
    .await;
}
