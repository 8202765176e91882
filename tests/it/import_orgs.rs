//! `tuanbot import orgs`: idempotent, all-or-nothing, row-numbered errors.

use std::path::PathBuf;

use tuanbot::service::import_orgs::ImportError;
use tuanbot::store::{audit, orgs};

use crate::helpers::TestDb;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[tokio::test]
async fn fixture_imports_twice_to_54_orgs() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let mut calls = 0;
        let first =
            tuanbot::app::import_orgs_file(&store, &fixture("orgs.csv"), "zh-CN", |_, _| {
                calls += 1
            })
            .await
            .unwrap();
        assert_eq!(
            (first.inserted, first.updated, first.unchanged),
            (54, 0, 0),
            "{}",
            db.backend
        );
        assert!(calls >= 54);
        let second =
            tuanbot::app::import_orgs_file(&store, &fixture("orgs.csv"), "zh-CN", |_, _| {})
                .await
                .unwrap();
        assert_eq!(
            (second.inserted, second.updated, second.unchanged),
            (0, 0, 54)
        );
        let mut conn = store.conn().await.unwrap();
        assert_eq!(orgs::count(&mut conn).await.unwrap(), 54);
        assert_eq!(
            audit::count_action(&mut conn, "org.create").await.unwrap(),
            54
        );
        let all = orgs::all(&mut conn).await.unwrap();
        let root = all.iter().find(|o| o.short_name == "团县委").unwrap();
        assert_eq!(
            all.iter().filter(|o| o.parent_id == Some(root.id)).count(),
            53
        );
    }
}

#[tokio::test]
async fn xlsx_imports_the_same_tree() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let s = tuanbot::app::import_orgs_file(&store, &fixture("orgs.xlsx"), "zh-CN", |_, _| {})
            .await
            .unwrap();
        assert_eq!(s.inserted, 54, "{}", db.backend);
        // The CSV afterwards changes nothing: same data, either format.
        let s = tuanbot::app::import_orgs_file(&store, &fixture("orgs.csv"), "zh-CN", |_, _| {})
            .await
            .unwrap();
        assert_eq!(s.unchanged, 54);
    }
}

#[tokio::test]
async fn a_bad_file_writes_nothing_and_names_every_row() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(
            &path,
            "全称,简称,类别,上级,书记\n\
共青团示范县委员会,团县委,团县委,,\n\
县一中团委,县一中,学校团委,团县委,\n\
,空,学校团委,团县委,\n\
县一中团委,县一中,学校团委,团县委,\n\
火星团委,火星,外星组织,团县委,\n",
        )
        .unwrap();
        let err = tuanbot::app::import_orgs_file(&store, &path, "zh-CN", |_, _| {})
            .await
            .unwrap_err();
        let ImportError::Invalid(lines) = err else {
            panic!("expected row errors")
        };
        assert_eq!(
            lines,
            [
                "第 4 行：全称为空。",
                "第 5 行：「县一中团委」与第 3 行重复。",
                "第 6 行：类别「外星组织」无法识别（学校团委、机关事业单位团组织、企业团组织、乡镇大团委、村社区团组织…）。",
            ],
            "{}",
            db.backend
        );
        std::fs::write(
            &path,
            "全称,简称,类别,上级\n县一中团委,县一中,学校团委,不存在的上级\n",
        )
        .unwrap();
        let err = tuanbot::app::import_orgs_file(&store, &path, "zh-CN", |_, _| {})
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("第 2 行：上级「不存在的上级」"),
            "{err}"
        );
        std::fs::write(
            &path,
            "全称,简称,类别,上级\nA团委,A,学校团委,B\nB团委,B,学校团委,A\n",
        )
        .unwrap();
        let err = tuanbot::app::import_orgs_file(&store, &path, "zh-CN", |_, _| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("形成了循环"), "{err}");
        std::fs::write(&path, "名字,类型\nx,y\n").unwrap();
        let err = tuanbot::app::import_orgs_file(&store, &path, "zh-CN", |_, _| {})
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("缺少「全称」列（需要：全称、简称、类别、上级、书记）。"),
            "{err}"
        );
        let mut conn = store.conn().await.unwrap();
        assert_eq!(orgs::count(&mut conn).await.unwrap(), 0, "nothing written");
    }
}

#[tokio::test]
async fn reimport_updates_and_aliases() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.csv");
        std::fs::write(&path, "全称,简称,类别,上级,书记,别名\n共青团示范县委员会,团县委,团县委,,,\n县一中团委,县一中,学校团委,团县委,王芳,一高、县一高\n").unwrap();
        tuanbot::app::import_orgs_file(&store, &path, "zh-CN", |_, _| {})
            .await
            .unwrap();
        std::fs::write(&path, "全称,简称,类别,上级,书记\n共青团示范县委员会,团县委,团县委,,\n县一中团委,一中,学校团委,团县委,李明\n").unwrap();
        let s = tuanbot::app::import_orgs_file(&store, &path, "zh-CN", |_, _| {})
            .await
            .unwrap();
        assert_eq!(
            (s.inserted, s.updated, s.unchanged),
            (0, 1, 1),
            "{}",
            db.backend
        );
        let mut conn = store.conn().await.unwrap();
        let all = orgs::all(&mut conn).await.unwrap();
        let one = all.iter().find(|o| o.full_name == "县一中团委").unwrap();
        assert_eq!(
            (one.short_name.as_str(), one.secretary.as_deref()),
            ("一中", Some("李明"))
        );
        assert_eq!(orgs::aliases(&mut conn).await.unwrap().len(), 2);
    }
}
