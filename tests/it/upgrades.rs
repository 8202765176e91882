//! Upgrades keep the data: for every earlier migration step, a database
//! migrated to that step gets rows in every table (every column given a
//! value somewhere), is migrated to the latest schema the way tuanbot does
//! at start, and every row it had must still be there with the same values
//! — on both backends.
//!
//! When you add a migration: a new table or column makes this test fail
//! until [`SEEDS`] gives it data; a table that a migration drops or changes
//! on purpose goes in [`MOVED`] with where its rows went.

use std::collections::BTreeMap;

use sqlx::Connection;
use tuanbot::store::maintenance::{self, Value};
use tuanbot::store::{self, Backend, Conn};

use crate::helpers::TestDb;

/// Rows for one table, valid from migration `since` up to (not including)
/// `until`. Seeds run in this order, so referenced rows come first.
struct Seed {
    table: &'static str,
    since: i64,
    until: Option<i64>,
    sql: &'static str,
}

const T: &str = "1767225600000";

macro_rules! seed {
    ($table:literal, $since:literal, $sql:literal) => {
        Seed {
            table: $table,
            since: $since,
            until: None,
            sql: $sql,
        }
    };
    ($table:literal, $since:literal .. $until:literal, $sql:literal) => {
        Seed {
            table: $table,
            since: $since,
            until: Some($until),
            sql: $sql,
        }
    };
}

/// `$T` in the SQL stands for a time (ms).
const SEEDS: &[Seed] = &[
    seed!(
        "orgs",
        1,
        "INSERT INTO orgs (id, full_name, short_name, kind, parent_id, secretary, created_at, updated_at) VALUES (1, '团县委', '团县委', 'county', NULL, NULL, $T, $T), (2, '县一中团委', '县一中', 'school', 1, '李老师', $T, $T)"
    ),
    seed!(
        "org_aliases",
        1,
        "INSERT INTO org_aliases (alias, org_id) VALUES ('一中', 2)"
    ),
    seed!(
        "people",
        1,
        "INSERT INTO people (id, platform, user_id, display_name, org_id, role, locale, created_at, updated_at) VALUES (1, 'console', 'u1', '小王', 2, 'cadre', 'zh-CN', $T, $T)"
    ),
    seed!(
        "chats",
        1,
        "INSERT INTO chats (id, platform, chat_id, title, kind, org_id, committee_wide, active, created_at, updated_at) VALUES (1, 'console', 'g1', '县一中团委工作群', 'group', 2, 0, 1, $T, $T), (2, 'telegram', '-1001', '团干联盟', 'group', NULL, 1, 0, $T, $T)"
    ),
    seed!(
        "audit_log",
        1,
        "INSERT INTO audit_log (id, at, platform, actor, action, entity, entity_id, detail) VALUES (1, $T, 'console', 'u1', 'activity.log', 'activity', '1', '{\"n\":1}')"
    ),
    seed!(
        "outbox",
        1,
        "INSERT INTO outbox (id, platform, chat_id, payload, coalesce_key, status, attempts, not_before, leased_until, created_at, sent_at, platform_message_id, last_error) VALUES (1, 'console', 'g1', '{\"text\":\"已记录\"}', 'wishes:board:1', 'sent', 1, $T, $T, $T, $T, 'm1', '429')"
    ),
    seed!(
        "processed_updates",
        1,
        "INSERT INTO processed_updates (platform, update_id, handled_at) VALUES ('console', 'upd-1', $T)"
    ),
    seed!(
        "pending_actions",
        1,
        "INSERT INTO pending_actions (platform, user_id, chat_id, kind, payload, expires_at) VALUES ('console', 'u1', 'g1', 'iam.choose', '{\"orgs\":[2]}', $T)"
    ),
    seed!(
        "kv_state",
        1,
        "INSERT INTO kv_state (key, value) VALUES ('telegram.offset.1', '42')"
    ),
    seed!(
        "activities",
        2,
        "INSERT INTO activities (id, org_id, person_id, date, category, title, participants, approx, hours, location, source_text, platform, chat_id, card_outbox_id, created_at, updated_at, deleted_at) VALUES (1, 2, 1, '2026-03-05', '志愿服务', '学雷锋志愿服务', 45, 1, 90.5, '三里铺', '/log 3月5日 学雷锋志愿服务 45人 90小时 三里铺', 'console', 'g1', 1, $T, $T, $T)"
    ),
    seed!(
        "activity_quantities",
        2,
        "INSERT INTO activity_quantities (id, activity_id, count, unit, what) VALUES (1, 1, 2000.5, '份', '宣传材料')"
    ),
    seed!(
        "activity_photos",
        2,
        "INSERT INTO activity_photos (id, activity_id, file_ref, created_at) VALUES (1, 1, 'photo-1', $T)"
    ),
    seed!(
        "wish_batches",
        3,
        "INSERT INTO wish_batches (id, name, total, quota, status, publish_at, platform, chat_id, published_at, board_outbox_id, board_edit_at, open_n, claimed_n, delivered_n, last_claim, created_at) VALUES (1, '2026圆梦', 1, 20, 'published', $T, 'console', 'g1', $T, 1, $T, 0, 1, 0, '县一中：1', $T)"
    ),
    seed!(
        "wishes",
        3,
        "INSERT INTO wishes (id, batch_id, no, school, grade, child, item, price_yuan, note, status, org_id, claimer_id, claimed_at, delivered_at, proof_ref, revoked_at, revoke_reason, reminded_at) VALUES (1, 1, 1, '永清镇中心小学', '六年级', '姚小明', '新华字典1本', 25, '要新版', 'claimed', 2, 1, $T, $T, 'photo-1', $T, '重复', $T)"
    ),
    seed!(
        "wish_holdings",
        3,
        "INSERT INTO wish_holdings (batch_id, org_id, held) VALUES (1, 2, 1)"
    ),
    seed!(
        "jobs",
        4,
        "INSERT INTO jobs (id, kind, payload, run_at, leased_until, done_at, attempts, last_error, created_at) VALUES (1, 'notice.remind', '{\"notice\":1}', $T, $T, $T, 1, 'boom', $T)"
    ),
    seed!(
        "notices",
        4,
        "INSERT INTO notices (id, title, body, target_label, sender_person_id, sender_platform, sender_chat_id, deadline_at, scheduled_at, status, attachments, created_at, sent_at) VALUES (1, '防汛安全通知', '请于本周五前完成防溺水安全教育。', '学校', 1, 'console', 'u1', $T, $T, 'sent', '[]', $T, $T)"
    ),
    seed!(
        "notice_orgs",
        4,
        "INSERT INTO notice_orgs (notice_id, org_id) VALUES (1, 2)"
    ),
    seed!(
        "notice_chats",
        4,
        "INSERT INTO notice_chats (notice_id, chat) VALUES (1, 1)"
    ),
    seed!(
        "notice_acks",
        4,
        "INSERT INTO notice_acks (notice_id, person_id, org_id, chat, at) VALUES (1, 1, 2, 1, $T)"
    ),
    seed!(
        "events",
        4,
        "INSERT INTO events (id, title, time_text, place, starts_at, capacity, deadline_at, status, creator_person_id, org_id, created_at) VALUES (1, '植树', '3月12日8:30', '城南苗圃', $T, 20, $T, 'open', 1, 2, $T)"
    ),
    seed!(
        "event_chats",
        4,
        "INSERT INTO event_chats (event_id, chat) VALUES (1, 1)"
    ),
    seed!(
        "event_entries",
        4,
        "INSERT INTO event_entries (id, event_id, person_id, note, waiting, created_at) VALUES (1, 1, 1, '带2人', 0, $T)"
    ),
    seed!(
        "notice_posts",
        4,
        "INSERT INTO notice_posts (outbox_id, notice_id) VALUES (1, 1)"
    ),
    seed!(
        "event_posts",
        4,
        "INSERT INTO event_posts (outbox_id, event_id) VALUES (2, 1)"
    ),
    seed!(
        "faq",
        7,
        "INSERT INTO faq (id, question, answer, source, created_at, deleted_at) VALUES (1, '怎么入团', '向所在团支部提交入团申请书。', 'cli', $T, $T)"
    ),
    seed!(
        "web_links",
        8,
        "INSERT INTO web_links (id, token_hash, person_id, scope, org_id, created_at, expires_at, used_at) VALUES (1, 'hash-link', 1, 'cadre', 2, $T, $T, $T)"
    ),
    seed!(
        "web_sessions",
        8,
        "INSERT INTO web_sessions (id, session_hash, person_id, scope, org_id, csrf, created_at, expires_at) VALUES (1, 'hash-session', 1, 'cadre', 2, 'csrf-1', $T, $T)"
    ),
    seed!(
        "recent_photos",
        9..10,
        "INSERT INTO recent_photos (platform, chat_id, message_id, sender_id, file_ref, seen_at) VALUES ('console', 'g1', 'in-1', 'u1', 'photo-9', $T)"
    ),
    seed!(
        "recent_attachments",
        10,
        "INSERT INTO recent_attachments (platform, chat_id, message_id, kind, sender_id, file_ref, file_name, seen_at) VALUES ('console', 'g1', 'in-2', 'document', 'u1', 'doc-1', '名单.xlsx', $T)"
    ),
    seed!(
        "outbox",
        12,
        "INSERT INTO outbox (id, platform, chat_id, payload, coalesce_key, status, attempts, not_before, leased_until, created_at, sent_at, platform_message_id, last_error, personal, redacted_at) VALUES (12, 'console', 'u1', '{\"text\":\"\"}', NULL, 'sent', 1, $T, NULL, $T, $T, 'm12', NULL, 1, $T)"
    ),
    seed!(
        "join_requests",
        12,
        "INSERT INTO join_requests (id, person_id, org_id, status, from_org_id, platform, chat_id, username, on_roster, created_at, decided_at, decided_by) VALUES (1, 1, 2, 'approved', 1, 'console', 'u1', 'xiaowang', 1, $T, $T, 1)"
    ),
    seed!(
        "join_request_posts",
        12,
        "INSERT INTO join_request_posts (outbox_id, request_id) VALUES (12, 1)"
    ),
    seed!(
        "join_codes",
        12,
        "INSERT INTO join_codes (id, org_id, salt, code_hash, issued_by, created_at, expires_at, used_at, used_by) VALUES (1, 2, 'salt-1', 'hash-code', 1, $T, $T, $T, 1)"
    ),
    seed!(
        "roster",
        12,
        "INSERT INTO roster (id, org_id, name, qq, telegram, role, created_at) VALUES (1, 2, '小王', '10001', 'xiaowang', 'cadre', $T)"
    ),
    seed!(
        "failed_updates",
        13,
        "INSERT INTO failed_updates (id, platform, update_id, chat_id, sender_id, text, incoming, error, tries, failed_at) VALUES (1, 'console', 'upd-13', 'g1', 'u1', '认领 12', '{\"text\":\"认领 12\"}', 'corrupt row', 3, $T)"
    ),
    seed!(
        "qqbot_anchors",
        15,
        "INSERT INTO qqbot_anchors (chat_id, anchor_id, kind, received_at, used) VALUES ('G1', 'msg-1', 'msg', $T, 2)"
    ),
    seed!(
        "qqbot_sends",
        15,
        "INSERT INTO qqbot_sends (outbox_id, part, chat_id, anchor_id, kind, anchor_at, msg_seq, at, done) VALUES (1, 0, 'G1', 'msg-1', 'msg', $T, 1, $T, 1)"
    ),
    seed!(
        "qqbot_chats",
        15,
        "INSERT INTO qqbot_chats (chat_id, active_allowed, all_messages, changed_at) VALUES ('G1', 1, 1, $T)"
    ),
];

/// Tables a migration drops or reshapes on purpose: `(table, the
/// migration that does it, a query counting the seeded rows where they
/// went)`. The query must find at least one.
const MOVED: &[(&str, i64, &str)] = &[(
    "recent_photos",
    10,
    "SELECT COUNT(*) FROM recent_attachments WHERE kind = 'photo' AND message_id = 'in-1' AND file_ref = 'photo-9'",
)];

fn versions(backend: Backend) -> Vec<i64> {
    store::migrator(backend).iter().map(|m| m.version).collect()
}

/// A migrator holding this binary's migrations, to stop at a step.
fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate::Migrator::DEFAULT;
    m.migrations = store::migrator(backend).migrations.clone();
    m
}

/// Every row of every table, by table, sorted.
async fn snapshot(conn: &mut Conn, backend: Backend) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut all = BTreeMap::new();
    for table in maintenance::tables(conn, backend).await.unwrap() {
        let columns = maintenance::columns(conn, backend, &table).await.unwrap();
        let rows = maintenance::rows(conn, &table, &columns).await.unwrap();
        let mut rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .zip(&columns)
                    .map(|(v, c)| format!("{}={}", c.name, show(&v)))
                    .collect()
            })
            .collect();
        rows.sort();
        all.insert(table, rows);
    }
    all
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Int(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => format!("{s:?}"),
        Value::Blob(b) => format!("{b:?}"),
    }
}

/// Every column of every table must have a value in some row, so a new
/// column cannot go untested.
async fn check_coverage(conn: &mut Conn, backend: Backend, step: i64) {
    for table in maintenance::tables(conn, backend).await.unwrap() {
        let seeded = SEEDS.iter().any(|s| s.table == table);
        assert!(
            seeded,
            "migration {step:04} adds table {table}: add seed rows for it in tests/it/upgrades.rs (SEEDS)"
        );
        for c in maintenance::columns(conn, backend, &table).await.unwrap() {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table} WHERE \"{}\" IS NOT NULL",
                c.name
            )))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
            assert!(
                n > 0,
                "at migration {step:04}, column {table}.{} has no seeded value: give it one in a seed row in tests/it/upgrades.rs (SEEDS)",
                c.name
            );
        }
    }
}

async fn upgrade_from(backend: Backend, step: i64) {
    let db = match backend {
        Backend::Sqlite => TestDb::sqlite().await,
        Backend::Postgres => TestDb::postgres().await,
    };
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", db.url),
        Backend::Postgres => db.url.clone(),
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    migrator(backend).run_to(step, &pool).await.unwrap();
    drop(pool);
    let mut conn = crate::helpers::any_conn(&url).await.unwrap();
    let tables = maintenance::tables(&mut conn, backend).await.unwrap();
    for seed in SEEDS
        .iter()
        .filter(|s| s.since <= step && s.until.is_none_or(|u| step < u))
    {
        assert!(
            tables.iter().any(|t| t == seed.table),
            "seed for {} applies from {:04} but the table is missing at {step:04}: fix its `since`",
            seed.table,
            seed.since
        );
        sqlx::query(sqlx::AssertSqlSafe(seed.sql.replace("$T", T)))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "seed for {} fails at migration {step:04} ({e}): if a migration changed the \
                     table, end this seed with `until` and add one for the new shape",
                    seed.table
                )
            });
    }
    check_coverage(&mut conn, backend, step).await;
    let before = snapshot(&mut conn, backend).await;
    conn.close().await.unwrap();

    // As tuanbot does at every start.
    let s = store::Store::open(&db.url, "normal")
        .await
        .unwrap_or_else(|e| {
            panic!("{backend:?}: migrating from {step:04} to the latest failed: {e}")
        });
    let mut conn = s.conn().await.unwrap();
    let after = snapshot(&mut conn, backend).await;
    for (table, rows) in &before {
        let Some(now) = after.get(table) else {
            let (_, _, query) = MOVED
                .iter()
                .find(|(t, at, _)| t == table && *at > step)
                .unwrap_or_else(|| {
                    panic!(
                        "{backend:?} from {step:04}: table {table} is gone after the upgrade: \
                         list it in MOVED (tests/it/upgrades.rs) with where its rows went"
                    )
                });
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_string()))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert!(
                n > 0,
                "{backend:?} from {step:04}: the rows of {table} were lost"
            );
            continue;
        };
        // Each old row, in the columns it had, is still there.
        for row in rows {
            let kept = now
                .iter()
                .any(|r| row.iter().all(|field| r.contains(field)));
            assert!(
                kept,
                "{backend:?} from {step:04}: a row of {table} changed or was lost in the upgrade: \
                 {row:?}\nnow: {now:?}"
            );
        }
    }
    drop(conn);
    s.close().await;
}

#[tokio::test]
async fn every_earlier_schema_upgrades_with_its_data() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let all = versions(backend);
        assert_eq!(
            all,
            versions(Backend::Sqlite),
            "both backends have the same migrations"
        );
        for step in &all[..all.len() - 1] {
            upgrade_from(backend, *step).await;
        }
    }
}

/// The latest schema itself is seeded in full, so the next migration
/// starts from a database with data in every table and column.
#[tokio::test]
async fn the_latest_schema_is_seeded_in_full() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let latest = *versions(backend).last().unwrap();
        upgrade_from(backend, latest).await;
    }
}
