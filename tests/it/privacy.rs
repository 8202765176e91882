//! Children's data: full wish details only to staff and to the holding
//! org's cadres, only in a private chat and on their dashboard. Everyone
//! else (the holding org's members, someone waiting to join it, a stranger,
//! another org's cadre) sees masked lines and changes nothing. Sent texts
//! that carried the details are blanked after the retention. Both backends.

use std::io::Cursor;
use std::sync::Arc;

use calamine::Reader;
use tuanbot::chat::{Attachment, AttachmentKind, Outgoing};
use tuanbot::clock::Clock;
use tuanbot::domain::{Platform, Role};
use tuanbot::engine::Engine;
use tuanbot::store::{self, audit, outbox, wishes as db};

use crate::helpers::{TestDb, make_member};
use crate::web::{Chat, child_names, get, session, staged, token_of};

/// Every cell of every sheet of an XLSX file, as text.
fn xlsx_text(bytes: &[u8]) -> String {
    let mut wb = calamine::open_workbook_auto_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let mut out = String::new();
    for name in wb.sheet_names() {
        if let Ok(range) = wb.worksheet_range(&name) {
            for row in range.rows() {
                for c in row {
                    out.push_str(&c.to_string());
                    out.push('\t');
                }
            }
        }
    }
    out
}

/// Fails when any text names a child of the fixture in full.
fn assert_no_child(what: &str, texts: &[String]) {
    let names = child_names();
    for t in texts {
        for n in &names {
            assert!(!t.contains(n.as_str()), "{what} shows {n}: {t}");
        }
    }
}

/// The state of a wish: (status, holder org id, proof).
async fn wish_state(e: &Engine, no: i64) -> (String, Option<i64>, Option<String>) {
    let mut conn = e.store.conn().await.unwrap();
    let batch = db::batch_by_name(&mut conn, "2026圆梦")
        .await
        .unwrap()
        .unwrap();
    let w = db::wish(&mut conn, batch.id, no).await.unwrap().unwrap();
    (w.status.as_str().to_string(), w.org_id, w.proof_ref)
}

async fn audited(e: &Engine, action: &str) -> i64 {
    let mut conn = e.store.conn().await.unwrap();
    audit::count_action(&mut conn, action).await.unwrap()
}

/// The dashboard's scene (`cadre` the cadre of 县一中, `m` a member) with
/// `p` waiting to join 县一中, `s` in no org, `o` a cadre of 县二中, and
/// 县一中 holding wishes 2, 12 and 15.
async fn stage(db: &TestDb) -> (Arc<Engine>, Chat) {
    let (e, mut chat) = staged(db).await;
    chat.say("p", "pp", "我是 县一中").await;
    make_member(&e.store, Platform::Telegram, "o", "县二中", Role::Cadre).await;
    chat.say("cadre", "g1", "认领 2 12 15").await;
    chat.queued().await;
    (e, chat)
}

/// Member, pending joiner, stranger and another org's cadre: `/mywishes`,
/// `/wish N`, `心愿 县一中` (privately and in groups), `/release`, `/done`
/// with a photo, and `/web`: not one full name, one line for each refusal,
/// nothing changed. Staff and the holding org's cadre do see the details,
/// in private only.
#[tokio::test]
async fn only_staff_and_the_holding_cadre_see_a_child() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = stage(&db).await;
        let before = (wish_state(&e, 12).await, wish_state(&e, 15).await);
        for who in ["m", "p", "s", "o"] {
            // Past the flood rule's 30 s: the group's `/wish 12` of the
            // one before is not a repeat.
            chat.clock.advance(chrono::Duration::seconds(31));
            let private = format!("p{who}");
            let mut seen = Vec::new();
            for (place, text) in [
                (private.as_str(), "/mywishes"),
                (private.as_str(), "/wish 2"),
                (private.as_str(), "/wish 12"),
                (private.as_str(), "心愿 县一中"),
                (private.as_str(), "/release 12"),
                ("g1", "/wish 12"),
                ("g1", "/mywishes"),
                ("g1", "放弃 15"),
            ] {
                chat.say(who, place, text).await;
                let replies = chat.queued().await;
                assert_eq!(replies.len(), 1, "{b} {who}: {text}: {replies:?}");
                assert!(!replies[0].personal, "{b} {who}: {text} marked personal");
                seen.extend(replies.into_iter().map(|m| m.text));
            }
            let photo = vec![Attachment {
                kind: AttachmentKind::Photo,
                file_ref: format!("photo-{who}"),
                file_name: None,
            }];
            chat.say_with(who, &private, "圆梦 12", photo).await;
            let replies = chat.queued().await;
            assert_eq!(replies.len(), 1, "{b} {who}: /done");
            seen.extend(replies.into_iter().map(|m| m.text));
            chat.say(who, &private, "/web").await;
            let replies = chat.queued().await;
            let link = replies.iter().any(|m| token_of(&m.text).is_some());
            // Another org's cadre has a dashboard (checked below); nobody
            // else gets a link.
            assert_eq!(link, who == "o", "{b} {who}: /web");
            seen.extend(replies.into_iter().map(|m| m.text));
            assert_no_child(&format!("{b} {who}"), &seen);
            // The refusals say why, in one line each.
            let refusal = match who {
                "m" => "由 县一中 认领；放弃、登记圆梦要由 县一中 的团干部来做",
                "p" => "⏳ 你加入 县一中团委 的申请还在等团干部同意",
                _ => "由 县一中 认领，只有他们的团干部或团县委可以操作",
            };
            assert!(
                seen.iter().filter(|t| t.contains(refusal)).count() >= 2,
                "{b} {who}: {seen:#?}"
            );
        }
        assert_eq!(
            (wish_state(&e, 12).await, wish_state(&e, 15).await),
            before,
            "{b}: nothing changed"
        );
        assert_eq!(audited(&e, "wish.release").await, 0, "{b}");
        assert_eq!(audited(&e, "wish.deliver").await, 0, "{b}");

        // Another org's cadre on the dashboard: no child of 县一中 anywhere,
        // pages, JSON and downloads alike.
        let cookie = session(&mut chat, "o").await;
        let mut pages = Vec::new();
        for path in [
            "/",
            "/board",
            "/board.json",
            "/activities",
            "/stars",
            "/report.md",
        ] {
            let a = get(&e, path, &cookie).await;
            assert_eq!(a.status, axum::http::StatusCode::OK, "{b}: {path}");
            pages.push(a.text());
        }
        for path in ["/activities.xlsx", "/report.xlsx"] {
            let a = get(&e, path, &cookie).await;
            if a.status == axum::http::StatusCode::OK {
                pages.push(xlsx_text(&a.body));
            }
        }
        assert_no_child(&format!("{b}: 县二中's dashboard"), &pages);

        // The holding org's cadre: in full in private, marked; masked in
        // the group.
        chat.say("cadre", "pcadre", "/mywishes").await;
        chat.say("cadre", "pcadre", "/wish 12").await;
        let mine = chat.queued().await;
        assert_eq!(mine.len(), 2, "{b}");
        assert!(mine.iter().all(|m| m.personal), "{b}: marked: {mine:?}");
        for name in ["毛轩", "贾紫", "贺曦"] {
            assert!(
                mine[0].text.contains(name),
                "{b}: {name} in {}",
                mine[0].text
            );
        }
        assert!(mine[0].text.contains("希望能在六一前收到"), "{b}: the note");
        assert!(mine[1].text.contains("贾紫"), "{b}");
        chat.clock.advance(chrono::Duration::seconds(31));
        chat.say("cadre", "g1", "/wish 12").await;
        let group = chat.queued().await;
        assert_no_child(
            &format!("{b}: the cadre in a group"),
            &[group[0].text.clone()],
        );
        assert!(!group[0].personal, "{b}");
        // Staff: in full in private.
        chat.say("staff", "pstaff", "/wish 15").await;
        let staff = chat.queued().await;
        assert!(staff[0].text.contains("贺曦"), "{b}: {}", staff[0].text);
        assert!(staff[0].personal, "{b}");
        // The cadre may act: release gives it back.
        chat.say("cadre", "pcadre", "放弃 15").await;
        assert_eq!(wish_state(&e, 15).await.0, "open", "{b}");
    }
}

/// Rows marked personal: (id, status, text, redacted).
async fn personal_rows(e: &Engine) -> Vec<(i64, String, String, bool)> {
    let mut conn = e.store.conn().await.unwrap();
    let rows: Vec<(i64, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, status, payload, redacted_at FROM outbox WHERE personal = 1 ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, status, payload, redacted)| {
            let m: Outgoing = serde_json::from_str(&payload).unwrap();
            (id, status, m.text, redacted.is_some())
        })
        .collect()
}

/// Sent texts that carried children's data are blanked once
/// `privacy.outbox_retention_days` have passed, by the slow sweep, a small
/// batch per transaction, keeping each row's id, status and platform
/// message id; other rows, and marked rows not sent yet, keep their text.
#[tokio::test]
async fn personal_texts_are_blanked_after_the_retention() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = stage(&db).await;
        chat.say("cadre", "pcadre", "/mywishes").await;
        chat.say("staff", "pstaff", "/wish 12").await;
        // Marked sent with a platform message id, as the dispatcher would.
        let mut tx = e.store.begin().await.unwrap();
        let due = outbox::lease_due(
            &mut tx,
            e.store.backend(),
            Platform::Telegram,
            i64::MAX / 2,
            i64::MAX / 2,
            100,
        )
        .await
        .unwrap();
        for (i, r) in due.iter().enumerate() {
            outbox::mark_sent(&mut tx, r.id, Some(&format!("tg-{i}")), 0)
                .await
                .unwrap();
        }
        // Many more, to see the batches, and one still pending.
        let now = store::ms(chat.clock.now());
        for i in 0..450 {
            let mut m = Outgoing::new(Platform::Telegram, "pcadre", format!("12. 贾紫 #{i}"));
            m.personal = true;
            let id = outbox::enqueue(&mut tx, &m, now, None, now).await.unwrap();
            outbox::mark_sent(&mut tx, id, Some(&format!("bulk-{i}")), now)
                .await
                .unwrap();
        }
        let mut waiting = Outgoing::new(Platform::Telegram, "pcadre", "15. 贺曦（未发出）");
        waiting.personal = true;
        let pending_id = outbox::enqueue(&mut tx, &waiting, now, None, now)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let rows = personal_rows(&e).await;
        assert_eq!(rows.len(), 453, "{b}: two replies, 450 more, one pending");
        assert!(rows.iter().all(|r| !r.3 && !r.2.is_empty()), "{b}");

        // Within the retention (30 days by default): nothing.
        let t0 = chat.clock.now();
        let n = tuanbot::service::privacy::redact_outbox(&e, t0 + chrono::Duration::days(29))
            .await
            .unwrap();
        assert_eq!(n, 0, "{b}");
        // After it, through the scheduler's slow sweep: every sent one.
        tuanbot::jobs::sweeps(&e, t0 + chrono::Duration::days(31), true)
            .await
            .unwrap();
        let rows = personal_rows(&e).await;
        for (id, status, text, redacted) in &rows {
            if *id == pending_id {
                assert_eq!(status, "pending", "{b}");
                assert!(
                    text.contains("贺曦") && !redacted,
                    "{b}: not sent yet, kept"
                );
            } else {
                assert_eq!(status, "sent", "{b}: {id}");
                assert!(text.is_empty() && *redacted, "{b}: {id} {text}");
            }
        }
        assert_no_child(
            &format!("{b}: blanked rows"),
            &rows
                .iter()
                .filter(|r| r.0 != pending_id)
                .map(|r| r.2.clone())
                .collect::<Vec<_>>(),
        );
        // Ids and platform message ids stay: an edit or a redelivery still
        // finds them, and nothing is due again.
        let mut conn = e.store.conn().await.unwrap();
        assert_eq!(
            outbox::platform_message_id(&mut conn, rows[2].0)
                .await
                .unwrap(),
            Some("bulk-0".to_string()),
            "{b}"
        );
        let unchanged: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE personal = 0 AND payload LIKE '%\"text\":\"\"%'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(unchanged, 0, "{b}: other rows keep their text");
        drop(conn);
        // In batches of 200, each audited; a second sweep finds nothing.
        assert_eq!(audited(&e, "outbox.redact").await, 3, "{b}");
        let again = tuanbot::service::privacy::redact_outbox(&e, t0 + chrono::Duration::days(40))
            .await
            .unwrap();
        assert_eq!(again, 0, "{b}");
    }
}
