//! Store queries on both backends.

use futures_util::FutureExt;
use tuanbot::chat::Outgoing;
use tuanbot::domain::{ChatKind, OrgKind, Platform, Role};
use tuanbot::store::chats::Chat;
use tuanbot::store::db::{CHECKPOINT_PAGES, Db, RESTART_PAGES};
use tuanbot::store::orgs::{NewOrg, Upserted};
use tuanbot::store::people::Person;
use tuanbot::store::{chats, kv, orgs, outbox, pending, people, updates};

use crate::helpers::{PATIENCE, TestDb, bounded, join_all};

#[tokio::test]
async fn orgs_people_chats_round_trip() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        let new = |full: &'static str, short: &'static str, parent| NewOrg {
            full_name: full,
            short_name: short,
            kind: OrgKind::School,
            parent_id: parent,
            secretary: None,
        };
        let (root, w) = orgs::upsert(&mut tx, &new("共青团示范县委员会", "团县委", None), 1)
            .await
            .unwrap();
        assert_eq!(w, Upserted::Inserted, "{}", db.backend);
        let (a, _) = orgs::upsert(&mut tx, &new("县一中团委", "县一中", Some(root)), 1)
            .await
            .unwrap();
        let (a2, w) = orgs::upsert(&mut tx, &new("县一中团委", "县一中", Some(root)), 2)
            .await
            .unwrap();
        assert_eq!((a2, w), (a, Upserted::Unchanged), "{}", db.backend);
        let (_, w) = orgs::upsert(&mut tx, &new("县一中团委", "一中", Some(root)), 3)
            .await
            .unwrap();
        assert_eq!(w, Upserted::Updated);
        assert_eq!(orgs::count(&mut tx).await.unwrap(), 2);
        orgs::set_alias(&mut tx, "一高", a).await.unwrap();
        orgs::set_alias(&mut tx, "一高", root).await.unwrap();
        assert_eq!(
            orgs::aliases(&mut tx).await.unwrap(),
            vec![("一高".to_string(), root)]
        );

        let (p, new_person) = people::upsert_seen(&mut tx, Platform::Telegram, "42", "小王", 1)
            .await
            .unwrap();
        assert!(new_person);
        assert_eq!(p.role, Role::Member);
        let (p2, again) = people::upsert_seen(&mut tx, Platform::Telegram, "42", "王老师", 2)
            .await
            .unwrap();
        assert!(!again);
        assert_eq!((p2.id, p2.display_name.as_str()), (p.id, "王老师"));
        people::set_org(&mut tx, p.id, Some(a), 3).await.unwrap();
        people::set_role(&mut tx, p.id, Role::Cadre, 3)
            .await
            .unwrap();
        let p3 = people::find(&mut tx, Platform::Telegram, "42")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((p3.org_id, p3.role), (Some(a), Role::Cadre));
        assert_eq!(
            orgs::member_counts(&mut tx).await.unwrap().get(&a),
            Some(&1)
        );
        assert!(
            people::find(&mut tx, Platform::Qq, "42")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            people::find_by_name(&mut tx, Platform::Telegram, "王老师")
                .await
                .unwrap()
                .len(),
            1
        );

        let c = chats::upsert_seen(
            &mut tx,
            Platform::Qq,
            "1001",
            ChatKind::Group,
            Some("一中团干群"),
            1,
        )
        .await
        .unwrap();
        assert!(c.is_group() && c.active && c.org_id.is_none());
        let c2 = chats::upsert_seen(&mut tx, Platform::Qq, "1001", ChatKind::Group, None, 2)
            .await
            .unwrap();
        assert_eq!(
            c2.title.as_deref(),
            Some("一中团干群"),
            "title kept when not given"
        );
        assert!(chats::bound_groups(&mut tx).await.unwrap().is_empty());
        chats::bind(&mut tx, c.id, Some(a), 3).await.unwrap();
        assert_eq!(chats::groups_of_org(&mut tx, a).await.unwrap().len(), 1);
        chats::bind(&mut tx, c.id, None, 4).await.unwrap();
        let c3 = chats::find(&mut tx, Platform::Qq, "1001")
            .await
            .unwrap()
            .unwrap();
        assert!(c3.committee_wide && c3.org_id.is_none());
        assert_eq!(chats::bound_groups(&mut tx).await.unwrap().len(), 1);
        chats::set_active(&mut tx, Platform::Qq, "1001", false, 5)
            .await
            .unwrap();
        assert!(chats::bound_groups(&mut tx).await.unwrap().is_empty());
        chats::rename_id(&mut tx, Platform::Qq, "1001", "-1001", 6)
            .await
            .unwrap();
        assert!(
            chats::find(&mut tx, Platform::Qq, "-1001")
                .await
                .unwrap()
                .is_some()
        );
        tx.commit().await.unwrap();
        store.close().await;
    }
}

#[tokio::test]
async fn updates_pending_and_kv() {
    for db in TestDb::both().await {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        assert!(
            updates::mark(&mut tx, Platform::Telegram, "7", 1)
                .await
                .unwrap()
        );
        assert!(
            !updates::mark(&mut tx, Platform::Telegram, "7", 2)
                .await
                .unwrap(),
            "{}",
            db.backend
        );
        assert!(updates::mark(&mut tx, Platform::Qq, "7", 2).await.unwrap());
        for id in ["8", "9"] {
            updates::mark(&mut tx, Platform::Telegram, id, 1)
                .await
                .unwrap();
        }
        // Old ids go a batch at a time; the one at 2 stays.
        assert_eq!(updates::prune(&mut tx, 2, 2).await.unwrap(), 2);
        assert_eq!(updates::prune(&mut tx, 2, 2).await.unwrap(), 1);
        assert_eq!(updates::prune(&mut tx, 2, 2).await.unwrap(), 0);
        assert!(!updates::mark(&mut tx, Platform::Qq, "7", 3).await.unwrap());

        pending::set(
            &mut tx,
            Platform::Console,
            "u1",
            "g1",
            "iam_choice",
            "[1,2]",
            100,
        )
        .await
        .unwrap();
        let p = pending::get(&mut tx, Platform::Console, "u1", "g1", "iam_choice", 50)
            .await
            .unwrap();
        assert_eq!(p.map(|p| p.payload), Some("[1,2]".to_string()));
        assert!(
            pending::get(&mut tx, Platform::Console, "u1", "g1", "iam_choice", 100)
                .await
                .unwrap()
                .is_none(),
            "expired"
        );
        assert!(
            pending::get(&mut tx, Platform::Console, "u1", "g1", "other", 50)
                .await
                .unwrap()
                .is_none()
        );
        pending::clear(&mut tx, Platform::Console, "u1", "g1")
            .await
            .unwrap();
        assert!(
            pending::get(&mut tx, Platform::Console, "u1", "g1", "iam_choice", 50)
                .await
                .unwrap()
                .is_none()
        );

        assert_eq!(kv::get(&mut tx, "telegram.offset").await.unwrap(), None);
        kv::set(&mut tx, "telegram.offset", "10").await.unwrap();
        kv::set(&mut tx, "telegram.offset", "11").await.unwrap();
        assert_eq!(
            kv::get(&mut tx, "telegram.offset")
                .await
                .unwrap()
                .as_deref(),
            Some("11")
        );
        tx.commit().await.unwrap();
        store.close().await;
    }
}

#[tokio::test]
async fn outbox_lease_and_states() {
    use tuanbot::chat::Outgoing;
    for db in TestDb::both().await {
        let store = db.store().await;
        let backend = store.backend();
        let mut tx = store.begin().await.unwrap();
        for i in 0..5 {
            let m = Outgoing::new(Platform::Telegram, format!("c{i}"), format!("m{i}"));
            outbox::enqueue(&mut tx, &m, if i == 4 { 1_000 } else { 0 }, None, 0)
                .await
                .unwrap();
        }
        let other = Outgoing::new(Platform::Qq, "q1", "qq");
        outbox::enqueue(&mut tx, &other, 0, None, 0).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let first = outbox::lease_due(&mut tx, backend, Platform::Telegram, 10, 60_010, 2)
            .await
            .unwrap();
        let second = outbox::lease_due(&mut tx, backend, Platform::Telegram, 10, 60_010, 10)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let texts = |rows: &[outbox::OutboxRow]| {
            rows.iter()
                .map(|r| r.message.text.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(texts(&first), ["m0", "m1"], "{}", db.backend);
        assert_eq!(
            texts(&second),
            ["m2", "m3"],
            "m4 not due, leased rows not re-leased"
        );

        let mut tx = store.begin().await.unwrap();
        outbox::mark_sent(&mut tx, first[0].id, Some("900"), 20)
            .await
            .unwrap();
        outbox::retry_at(&mut tx, first[1].id, 500, Some("429"), false)
            .await
            .unwrap();
        outbox::give_up(&mut tx, second[0].id, "failed", "bad request")
            .await
            .unwrap();
        assert_eq!(
            outbox::platform_message_id(&mut tx, first[0].id)
                .await
                .unwrap()
                .as_deref(),
            Some("900")
        );
        assert_eq!(
            outbox::status(&mut tx, second[0].id)
                .await
                .unwrap()
                .as_deref(),
            Some("failed")
        );
        // m1 (retry at 500), m3 (leased until 60_010), m4 (due at 1000)
        assert_eq!(
            outbox::pending_count(&mut tx, Platform::Telegram)
                .await
                .unwrap(),
            3
        );
        // Lease ran out: m3 comes back; m1 is due again at 500.
        let again = outbox::lease_due(&mut tx, backend, Platform::Telegram, 70_000, 130_000, 10)
            .await
            .unwrap();
        assert_eq!(texts(&again), ["m1", "m3", "m4"]);
        assert_eq!(
            outbox::drop_chat(&mut tx, Platform::Telegram, "c1", "kicked")
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            outbox::pending_count(&mut tx, Platform::Telegram)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            outbox::pending_count(&mut tx, Platform::Qq).await.unwrap(),
            1
        );
        tx.commit().await.unwrap();
        store.close().await;
    }
}

/// Two replicas leasing at once never get the same row (PostgreSQL's
/// `FOR UPDATE SKIP LOCKED`; SQLite serialises writers).
///
/// A chat whose earlier message is leased is skipped until that one is sent.
#[tokio::test]
async fn concurrent_leases_are_disjoint() {
    use tuanbot::chat::Outgoing;
    for db in TestDb::both().await {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        for i in 0..200 {
            let m = Outgoing::new(Platform::Telegram, format!("c{}", i % 7), format!("m{i}"));
            outbox::enqueue(&mut tx, &m, 0, None, 0).await.unwrap();
        }
        tx.commit().await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let mut tx = store.begin().await.unwrap();
                    let rows = outbox::lease_due(
                        &mut tx,
                        store.backend(),
                        Platform::Telegram,
                        1,
                        1_000_000,
                        7,
                    )
                    .await
                    .unwrap();
                    tx.commit().await.unwrap();
                    if rows.is_empty() {
                        return got;
                    }
                    // Send them, as a dispatcher would, releasing their chats.
                    let mut tx = store.begin().await.unwrap();
                    for r in &rows {
                        outbox::mark_sent(&mut tx, r.id, None, 2).await.unwrap();
                    }
                    tx.commit().await.unwrap();
                    got.extend(rows.into_iter().map(|r| r.id));
                }
            }));
        }
        let mut all: Vec<_> = join_all(tasks, "concurrent leasers")
            .await
            .into_iter()
            .flatten()
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            (n, all.len()),
            (200, 200),
            "{}: every row leased exactly once",
            db.backend
        );
        store.close().await;
    }
}

/// A chat's later message waits while an earlier one is held back or leased.
#[tokio::test]
async fn a_chat_is_leased_in_order() {
    use tuanbot::chat::Outgoing;
    for db in TestDb::both().await {
        let store = db.store().await;
        let backend = store.backend();
        let mut tx = store.begin().await.unwrap();
        for (chat, text) in [("a", "a1"), ("a", "a2"), ("b", "b1")] {
            outbox::enqueue(
                &mut tx,
                &Outgoing::new(Platform::Telegram, chat, text),
                0,
                None,
                0,
            )
            .await
            .unwrap();
        }
        let rows = outbox::lease_due(&mut tx, backend, Platform::Telegram, 1, 100, 1)
            .await
            .unwrap();
        assert_eq!(rows[0].message.text, "a1");
        let rows = outbox::lease_due(&mut tx, backend, Platform::Telegram, 1, 100, 10)
            .await
            .unwrap();
        let texts: Vec<_> = rows.iter().map(|r| r.message.text.as_str()).collect();
        assert_eq!(texts, ["b1"], "{}: a2 waits for a1", db.backend);
        tx.commit().await.unwrap();
    }
}

/// Recent attachments: remembered per chat, message id and kind (a
/// recurring id replaces all it carried), found by the quoted id or as the
/// sender's latest since a time, pruned by age.
#[tokio::test]
async fn recent_attachments_remember_find_prune() {
    use tuanbot::chat::{Attachment, AttachmentKind};
    use tuanbot::store::attachments;
    let photo = |f: &str| Attachment {
        kind: AttachmentKind::Photo,
        file_ref: f.into(),
        file_name: None,
    };
    let doc = |f: &str| Attachment {
        kind: AttachmentKind::Document,
        file_ref: f.into(),
        file_name: Some(format!("{f}.xlsx")),
    };
    for db in TestDb::both().await {
        let b = db.backend;
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        for (id, sender, files, at) in [
            ("7", "u", vec![doc("stale")], 500),
            ("7", "u", vec![photo("old.jpg")], 1_000),
            ("7", "u", vec![photo("new.jpg"), doc("list")], 2_000),
            ("8", "u", vec![photo("later.jpg")], 9_000),
            ("10", "w", vec![doc("gone")], 9_000),
            ("10", "w", vec![photo("p10.jpg")], 9_100),
            ("9", "v", vec![doc("other")], 9_500),
        ] {
            let files: Vec<&Attachment> = files.iter().collect();
            attachments::remember(&mut tx, Platform::Qq, "g", id, sender, &files, at)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let mut conn = store.conn().await.unwrap();
        let found = attachments::find(&mut conn, Platform::Qq, "g", "7", AttachmentKind::Photo)
            .await
            .unwrap();
        assert_eq!(found, Some(photo("new.jpg")), "{b}");
        let found = attachments::find(&mut conn, Platform::Qq, "g", "7", AttachmentKind::Document)
            .await
            .unwrap();
        assert_eq!(
            found,
            Some(doc("list")),
            "{b}: a photo and a document of one message"
        );
        let found = attachments::find(&mut conn, Platform::Qq, "h", "7", AttachmentKind::Photo)
            .await
            .unwrap();
        assert_eq!(found, None, "{b}: another chat");
        let found = attachments::find(&mut conn, Platform::Qq, "g", "10", AttachmentKind::Document)
            .await
            .unwrap();
        assert_eq!(
            found, None,
            "{b}: the recurring id carries only a photo now"
        );
        let latest = |sender: &'static str, since: i64| {
            let store = store.clone();
            async move {
                let mut conn = store.conn().await.unwrap();
                attachments::latest_from(
                    &mut conn,
                    Platform::Qq,
                    "g",
                    sender,
                    AttachmentKind::Document,
                    since,
                )
                .await
                .unwrap()
            }
        };
        assert_eq!(latest("u", 0).await, Some(doc("list")), "{b}");
        assert_eq!(latest("v", 0).await, Some(doc("other")), "{b}");
        assert_eq!(latest("u", 3_000).await, None, "{b}: too old");
        let mut tx = store.begin().await.unwrap();
        assert_eq!(attachments::prune(&mut tx, 5_000).await.unwrap(), 2, "{b}");
        tx.commit().await.unwrap();
        let found = attachments::find(&mut conn, Platform::Qq, "g", "7", AttachmentKind::Photo)
            .await
            .unwrap();
        assert_eq!(found, None, "{b}: pruned");
        let found = attachments::find(&mut conn, Platform::Qq, "g", "8", AttachmentKind::Photo)
            .await
            .unwrap();
        assert_eq!(found, Some(photo("later.jpg")), "{b}");
    }
}

/// The claim path's statements on one connection: what they give back.
async fn claim_path_script(db: &mut impl Db) -> (Person, Chat, Vec<bool>, String, bool) {
    let (p, _) = people::upsert_seen(db, Platform::Qq, "1001", "小李", 5)
        .await
        .unwrap();
    let chat = chats::upsert_seen(db, Platform::Qq, "g1", ChatKind::Group, Some("团干部群"), 5)
        .await
        .unwrap();
    let fresh = updates::mark_many(
        db,
        &[
            (Platform::Qq, "m1", 5),
            (Platform::Qq, "m1", 5),
            (Platform::Qq, "m2", 5),
        ],
    )
    .await
    .unwrap();
    let msg = Outgoing::new(
        Platform::Qq,
        "g1",
        "✅ 县一中：12 '); DROP TABLE outbox; --",
    );
    let id = outbox::enqueue(db, &msg, 5, Some("wishes:claims:qq:g1"), 5)
        .await
        .unwrap();
    let row = outbox::pending_coalesced(db, "wishes:claims:qq:g1")
        .await
        .unwrap()
        .expect("the row just queued");
    assert_eq!(row.id, id);
    let mut changed = row.message.clone();
    changed.text.push_str("\n❌ 15 已被县二中认领 😀");
    let replaced = outbox::replace_pending(db, id, &changed).await.unwrap();
    (p, chat, fresh, changed.text, replaced)
}

/// The claim writer's direct SQLite connection (`store::db`) gives the same
/// rows as sqlx's for the same statements, rolls back when dropped, commits
/// what sqlx then reads, and holds the process's SQLite write lock. Other
/// backends have no direct connection and run the same statements on sqlx.
#[tokio::test]
async fn direct_connection_reads_and_writes_like_sqlx() {
    for db in TestDb::both().await {
        let b = db.backend;
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        let on_sqlx = claim_path_script(&mut tx).await;
        tx.rollback().await.unwrap();
        let Some(mut direct) = store.begin_direct().await.unwrap() else {
            assert_eq!(b, "postgres");
            assert!(!store.has_direct());
            store.close().await;
            continue;
        };
        assert!(store.has_direct());
        let on_direct = claim_path_script(&mut direct).await;
        assert_eq!(on_direct, on_sqlx, "{b}: the same rows on both connections");
        assert_eq!(on_direct.2, vec![true, false, true]);
        assert!(on_direct.4, "the pending row is replaced");
        drop(direct);
        let mut conn = store.conn().await.unwrap();
        assert!(
            people::find(&mut conn, Platform::Qq, "1001")
                .await
                .unwrap()
                .is_none(),
            "dropped without commit: rolled back"
        );

        let mut direct = store.begin_direct().await.unwrap().unwrap();
        let (person, chat, _, text, _) = claim_path_script(&mut direct).await;
        // While it is open, every other writer of the process waits.
        assert!(store.begin().now_or_never().is_none());
        assert!(store.begin_direct().now_or_never().is_none());
        direct.commit().unwrap();
        let found = people::find(&mut conn, Platform::Qq, "1001").await.unwrap();
        assert_eq!(found.as_ref(), Some(&person));
        let found = chats::find(&mut conn, Platform::Qq, "g1").await.unwrap();
        assert_eq!(found.as_ref(), Some(&chat));
        let row = outbox::pending_coalesced(&mut conn, "wishes:claims:qq:g1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.message.text, text);
        drop(conn);
        let tx = bounded(store.begin(), "the write lock after the commit").await;
        tx.unwrap().rollback().await.unwrap();
        store.close().await;
    }
}

/// Commit one outbox row of `text` on the direct connection; the WAL's
/// length afterwards.
async fn commit_direct(store: &tuanbot::store::Store, text: String) -> i32 {
    let mut direct = store.begin_direct().await.unwrap().unwrap();
    let msg = Outgoing::new(Platform::Console, "g", text);
    outbox::enqueue(&mut direct, &msg, 1, None, 1)
        .await
        .unwrap();
    direct.commit().unwrap()
}

/// Commit big rows on the direct connection until its WAL holds `pages`;
/// checks that it only grows meanwhile. Returns its length.
async fn grow_wal(store: &tuanbot::store::Store, pages: i32) -> i32 {
    let big = "团".repeat(20_000);
    let mut now = 0;
    while now < pages {
        let after = commit_direct(store, big.clone()).await;
        assert!(after > now, "the WAL only grows until a checkpoint");
        now = after;
    }
    now
}

/// The direct connection does not checkpoint inside its commits; once the
/// WAL is long, `checkpoint_if_due` (the writer, after its answers) sets
/// the copier thread going, and once it has copied everything a later
/// commit starts the WAL over.
#[tokio::test]
async fn direct_connection_checkpoints_when_asked() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let pages = grow_wal(&store, CHECKPOINT_PAGES).await;
    // The copier works on its own thread: look again, within a bound.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = pages;
    loop {
        store.checkpoint_if_due().await.unwrap();
        let after = commit_direct(&store, "小".into()).await;
        if after < last {
            break;
        }
        last = after;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the WAL never started over ({after} pages)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    store.close().await;
}

/// A WAL of `RESTART_PAGES` starts over at the next commit after one
/// `checkpoint_if_due`, without waiting for the copier.
#[tokio::test]
async fn direct_connection_restarts_a_long_wal_itself() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let pages = grow_wal(&store, RESTART_PAGES).await;
    store.checkpoint_if_due().await.unwrap();
    let after = commit_direct(&store, "小".into()).await;
    assert!(after < pages, "the WAL started over ({pages} -> {after})");
    store.close().await;
}
