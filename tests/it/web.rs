//! The web dashboard: sign-in links from `/web`, sessions, permissions,
//! CSRF, the remind button, the XLSX export, health and metrics. The axum
//! router is driven in-process (tower `oneshot`) over a real store, on both
//! backends.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::TimeZone;
use tower::ServiceExt;
use tuanbot::chat::{Incoming, Outgoing};
use tuanbot::clock::{Clock, ManualClock};
use tuanbot::domain::{ChatKind, Platform, Role};
use tuanbot::engine::Engine;
use tuanbot::store::{audit, outbox, people};

use crate::helpers::TestDb;

pub const WISHES: &str = "tests/fixtures/wishes.csv";

/// 2026-03-10 10:00 in Asia/Shanghai.
pub fn start() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 3, 10, 2, 0, 0).unwrap()
}

/// An engine over `db` with the demo orgs, the wish fixture imported, staff
/// `staff` (admins) and the dashboard configured at `http://dash.test`; and
/// its clock.
pub async fn engine(db: &TestDb) -> (Arc<Engine>, Arc<ManualClock>) {
    engine_at(db, "http://dash.test").await
}

/// [`engine`] with the dashboard's `web.public_url` at `public_url` (a
/// browser posts with that `Origin`).
pub async fn engine_at(db: &TestDb, public_url: &str) -> (Arc<Engine>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let store = db.store().await;
    tuanbot::app::seed_demo_if_empty(&store, "zh-CN")
        .await
        .unwrap();
    tuanbot::service::wishes::import_file(
        &store,
        std::path::Path::new(WISHES),
        "2026圆梦",
        "zh-CN",
    )
    .await
    .unwrap();
    let mut settings = db.settings();
    settings.admins = vec!["telegram:staff".into()];
    settings.web.listen = Some("127.0.0.1:0".into());
    settings.web.public_url = Some(public_url.into());
    (
        Arc::new(Engine::new(store, settings, clock.clone()).unwrap()),
        clock,
    )
}

/// [`engine`] with the [`scene`] played: the engine and the chat (the clock
/// is `chat.clock`).
pub async fn staged(db: &TestDb) -> (Arc<Engine>, Chat) {
    let (e, clock) = engine(db).await;
    let mut chat = Chat::new(e.clone(), clock);
    scene(&mut chat).await;
    (e, chat)
}

/// Sends messages through the engine, one update id each.
pub struct Chat {
    pub engine: Arc<Engine>,
    pub clock: Arc<ManualClock>,
    n: u32,
}

impl Chat {
    pub fn new(engine: Arc<Engine>, clock: Arc<ManualClock>) -> Chat {
        Chat {
            engine,
            clock,
            n: 0,
        }
    }

    /// `user` says `text` in `chat` (ids starting with `p` are private).
    pub async fn say(&mut self, user: &str, chat: &str, text: &str) {
        self.say_with(user, chat, text, Vec::new()).await
    }

    pub async fn say_with(
        &mut self,
        user: &str,
        chat: &str,
        text: &str,
        attachments: Vec<tuanbot::chat::Attachment>,
    ) {
        self.n += 1;
        let kind = if chat.starts_with('p') {
            ChatKind::Private
        } else {
            ChatKind::Group
        };
        let msg = Incoming::text(
            Platform::Telegram,
            format!("w{}", self.n),
            chat,
            kind,
            user,
            text,
            self.clock.now(),
        )
        .from_name(user.to_string());
        let mut msg = msg;
        msg.attachments = attachments;
        tokio::time::timeout(std::time::Duration::from_secs(30), self.engine.handle(&msg))
            .await
            .expect("engine timed out")
            .unwrap();
    }

    /// Messages queued since the last call (marks them sent).
    pub async fn queued(&self) -> Vec<Outgoing> {
        let mut tx = self.engine.store.begin().await.unwrap();
        let rows = outbox::lease_due(
            &mut tx,
            self.engine.store.backend(),
            Platform::Telegram,
            i64::MAX / 2,
            i64::MAX / 2,
            10_000,
        )
        .await
        .unwrap();
        for r in &rows {
            outbox::mark_sent(&mut tx, r.id, None, 0).await.unwrap();
        }
        tx.commit().await.unwrap();
        rows.into_iter().map(|r| r.message).collect()
    }

    /// `/web` from `user` in their private chat; the token of the link.
    pub async fn link(&mut self, user: &str) -> String {
        self.queued().await;
        self.say(user, &format!("p{user}"), "/web").await;
        let replies = self.queued().await;
        let text = &replies.last().expect("a reply to /web").text;
        token_of(text).unwrap_or_else(|| panic!("no link in {text}"))
    }
}

pub fn token_of(text: &str) -> Option<String> {
    let start = text.find("/login?t=")? + "/login?t=".len();
    Some(
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect(),
    )
}

/// The common scene: groups bound (tgl county-wide, g1 县一中, g2 县二中),
/// `cadre` a cadre of 县一中, `m` a member of 县一中 (both asked to join and
/// staff approved), the wish batch
/// published in tgl, a notice sent to every org.
pub async fn scene(chat: &mut Chat) {
    for (user, c, text) in [
        ("staff", "tgl", "/bind 全县"),
        ("staff", "g1", "/bind 县一中"),
        ("staff", "g2", "/bind 县二中"),
        ("cadre", "pcadre", "我是 县一中"),
        ("m", "pm", "我是 县一中"),
        ("staff", "pstaff", "同意 cadre"),
        ("staff", "pstaff", "同意 m"),
        ("staff", "tgl", "/wishes publish 2026圆梦 quota 5"),
        (
            "staff",
            "pstaff",
            "/notice 防汛安全通知\n请于本周五前完成防溺水安全教育。",
        ),
        ("staff", "pstaff", "确认"),
    ] {
        chat.say(user, c, text).await;
    }
    set_role(&chat.engine, "cadre", Role::Cadre).await;
    chat.queued().await;
}

/// One request to the router; returns status, headers and body text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The session cookie this answer sets (`name=value`).
    pub fn cookie(&self) -> Option<String> {
        let set = self.header(header::SET_COOKIE);
        set.split(';')
            .next()
            .filter(|c| c.starts_with("tuanbot_session=") && c.len() > 20)
            .map(str::to_string)
    }
}

pub async fn call(
    engine: &Arc<Engine>,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Answer {
    call_with(engine, method, uri, cookie, form, &[]).await
}

/// [`call`] with extra request headers.
pub async fn call_with(
    engine: &Arc<Engine>,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(f.to_string())
        }
        None => Body::empty(),
    };
    let app = tuanbot::web::router(engine.clone());
    let resp = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        app.oneshot(req.body(body).unwrap()),
    )
    .await
    .expect("request timed out")
    .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// `GET path` with the session `cookie`.
pub async fn get(engine: &Arc<Engine>, path: &str, cookie: &str) -> Answer {
    call(engine, "GET", path, Some(cookie), None).await
}

/// `POST path` with the session `cookie` and the form `csrf=…`.
pub async fn post_csrf(engine: &Arc<Engine>, path: &str, cookie: &str, csrf: &str) -> Answer {
    call(
        engine,
        "POST",
        path,
        Some(cookie),
        Some(&format!("csrf={csrf}")),
    )
    .await
}

/// The confirmation page of the sign-in link `token` (`GET /login?t=…`).
pub async fn login_page(engine: &Arc<Engine>, token: &str) -> Answer {
    call(engine, "GET", &format!("/login?t={token}"), None, None).await
}

/// Use the sign-in link `token` (`POST /login`), without a cookie.
pub async fn login(engine: &Arc<Engine>, token: &str) -> Answer {
    call(engine, "POST", "/login", None, Some(&format!("t={token}"))).await
}

/// Sign in with a fresh link of `user`; the cookie.
pub async fn session(chat: &mut Chat, user: &str) -> String {
    let token = chat.link(user).await;
    let a = login(&chat.engine, &token).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text());
    a.cookie().expect("session cookie")
}

/// The CSRF token of the session `cookie`, from the overview's forms.
pub async fn csrf_token(engine: &Arc<Engine>, cookie: &str) -> String {
    csrf_of(&get(engine, "/", cookie).await.text())
}

/// Make `user` (a Telegram account) `role`.
pub async fn set_role(engine: &Engine, user: &str, role: Role) {
    let mut tx = engine.store.begin().await.unwrap();
    let p = people::find(&mut tx, Platform::Telegram, user)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no person {user}"));
    people::set_role(&mut tx, p.id, role, 0).await.unwrap();
    tx.commit().await.unwrap();
}

/// Audit rows of `action`.
async fn audited(engine: &Engine, action: &str) -> i64 {
    let mut conn = engine.store.conn().await.unwrap();
    audit::count_action(&mut conn, action).await.unwrap()
}

/// Rows in `web_sessions`.
async fn sessions_stored(engine: &Engine) -> i64 {
    let mut conn = engine.store.conn().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// Rows (the header included) of the 活动 sheet of an XLSX download.
fn activity_rows(xlsx: &[u8]) -> usize {
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(xlsx.to_vec())).unwrap();
    book.worksheet_range("活动").unwrap().height()
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    let start =
        html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[start..].chars().take_while(|c| *c != '"').collect()
}

#[tokio::test]
async fn link_signs_in_once() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        chat.say("staff", "pstaff", "/web").await;
        let reply = chat.queued().await.pop().unwrap();
        assert_eq!(reply.chat_id, "pstaff", "{b}");
        assert!(
            reply.text.contains("http://dash.test/login?t="),
            "{b}: {}",
            reply.text
        );
        let token = token_of(&reply.text).unwrap();
        assert_eq!(token.len(), 64, "{b}: 256-bit token");
        // The token itself is not stored, only its digest.
        let mut conn = e.store.conn().await.unwrap();
        let stored: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM web_links WHERE token_hash = $1")
                .bind(&token)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert_eq!(stored, 0, "{b}");
        drop(conn);

        // The confirmation page does not consume the link.
        let page = login_page(&e, &token).await;
        assert_eq!(page.status, StatusCode::OK, "{b}");
        assert!(page.text().contains("action=\"/login\""), "{b}");
        let again = login_page(&e, &token).await;
        assert_eq!(again.status, StatusCode::OK, "{b}");

        let form = format!("t={token}");
        let first = call(&e, "POST", "/login", None, Some(&form)).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{b}");
        assert_eq!(first.header(header::LOCATION), "/", "{b}");
        let set = first.header(header::SET_COOKIE);
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(set.contains(attr), "{b}: {set}");
        }
        assert!(!set.contains("Secure"), "{b}: http public_url: {set}");
        let cookie = first.cookie().unwrap();
        let home = get(&e, "/", &cookie).await;
        assert_eq!(home.status, StatusCode::OK, "{b}");
        assert!(home.text().contains("概览"), "{b}");
        assert!(home.text().contains("防汛安全通知"), "{b}");
        assert!(
            home.header(header::CONTENT_SECURITY_POLICY)
                .contains("default-src 'self'"),
            "{b}"
        );

        // Second use: refused, no session.
        let second = call(&e, "POST", "/login", None, Some(&form)).await;
        assert_eq!(second.status, StatusCode::GONE, "{b}");
        assert!(second.cookie().is_none(), "{b}");
        assert!(second.text().contains("已经用过"), "{b}");
        let page = login_page(&e, &token).await;
        assert_eq!(page.status, StatusCode::GONE, "{b}");
        // Unknown token.
        let bad = call(&e, "POST", "/login", None, Some("t=abcdef")).await;
        assert_eq!(bad.status, StatusCode::FORBIDDEN, "{b}");
        assert!(bad.cookie().is_none(), "{b}");

        assert_eq!(audited(&e, "web.link").await, 1, "{b}");
        assert_eq!(audited(&e, "web.login").await, 1, "{b}");
    }
}

#[tokio::test]
async fn expired_link_refused() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        let clock = chat.clock.clone();
        let token = chat.link("staff").await;
        clock.advance(chrono::Duration::minutes(10) + chrono::Duration::seconds(1));
        let page = login_page(&e, &token).await;
        assert_eq!(page.status, StatusCode::GONE, "{b}");
        assert!(page.text().contains("已过期"), "{b}");
        let post = login(&e, &token).await;
        assert_eq!(post.status, StatusCode::GONE, "{b}");
        assert!(post.cookie().is_none(), "{b}");
        // A fresh link within its 10 minutes works.
        let token = chat.link("staff").await;
        clock.advance(chrono::Duration::minutes(9));
        let post = login(&e, &token).await;
        assert_eq!(post.status, StatusCode::SEE_OTHER, "{b}");
    }
}

#[tokio::test]
async fn who_gets_a_link() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (_, mut chat) = staged(&db).await;
        // In a group: no link.
        chat.say("staff", "tgl", "/web").await;
        let r = chat.queued().await;
        assert!(r[0].text.contains("私聊"), "{b}: {}", r[0].text);
        assert!(token_of(&r[0].text).is_none(), "{b}");
        // A member: refused.
        chat.say("m", "pm", "后台").await;
        let r = chat.queued().await;
        assert!(
            r[0].text.contains("只对团县委工作人员和团干部开放"),
            "{b}: {}",
            r[0].text
        );
        // Help mentions the dashboard to cadres and staff when it is on.
        chat.say("staff", "pstaff", "/help").await;
        let r = chat.queued().await;
        assert!(r[0].text.contains("后台 /web"), "{b}: {}", r[0].text);
        chat.say("m", "pm", "/help").await;
        let r = chat.queued().await;
        assert!(!r[0].text.contains("/web"), "{b}: {}", r[0].text);
        // A cadre: the read-only link.
        chat.say("cadre", "pcadre", "/web").await;
        let r = chat.queued().await;
        assert!(r[0].text.contains("本组织只读视图"), "{b}: {}", r[0].text);
        assert!(token_of(&r[0].text).is_some(), "{b}");
    }
    // Not configured.
    let db = TestDb::sqlite().await;
    let clock = Arc::new(ManualClock::new(start()));
    let mut settings = db.settings();
    settings.admins = vec!["telegram:staff".into()];
    let e = Arc::new(Engine::new(db.store().await, settings, clock.clone()).unwrap());
    let mut chat = Chat::new(e, clock);
    chat.say("staff", "pstaff", "/web").await;
    let r = chat.queued().await;
    assert!(r[0].text.contains("网页后台没有开启"), "{}", r[0].text);
}

#[tokio::test]
async fn no_session_redirects_to_signin() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, _clock) = engine(&db).await;
        for path in [
            "/",
            "/board",
            "/board.json",
            "/activities",
            "/activities.xlsx",
            "/activities/1/photos/0",
            "/notices",
            "/stars",
            "/stars.md",
            "/stars.xlsx",
            "/report.md",
            "/report.xlsx",
        ] {
            for cookie in [None, Some("tuanbot_session=0123456789abcdef")] {
                let a = call(&e, "GET", path, cookie, None).await;
                assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}: {path}");
                assert_eq!(a.header(header::LOCATION), "/signin", "{b}: {path}");
            }
        }
        for path in ["/notices/1/remind", "/logout"] {
            let a = call(&e, "POST", path, None, Some("csrf=x")).await;
            assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}: {path}");
            assert_eq!(a.header(header::LOCATION), "/signin", "{b}: {path}");
        }
        let signin = call(&e, "GET", "/signin", None, None).await;
        assert_eq!(signin.status, StatusCode::OK, "{b}");
        assert!(signin.text().contains("/web"), "{b}");
        assert!(signin.text().contains("name=\"viewport\""), "{b}");
    }
}

#[tokio::test]
async fn sessions_expire() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        let clock = chat.clock.clone();
        let cookie = session(&mut chat, "staff").await;
        assert_eq!(get(&e, "/", &cookie).await.status, StatusCode::OK, "{b}");
        clock.advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
        let a = get(&e, "/", &cookie).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}");
        // The next sign-in forgets the expired session.
        session(&mut chat, "staff").await;
        assert_eq!(sessions_stored(&e).await, 1, "{b}");
    }
}

/// Every child's full name in the fixture.
pub fn child_names() -> Vec<String> {
    let table = tuanbot::table::Table::read(std::path::Path::new(WISHES)).unwrap();
    let col = table.column(&["学生"]).unwrap();
    table.rows.iter().map(|(_, r)| r[col].clone()).collect()
}

/// The fixture's children who are not on the wishes `held` (1-based
/// numbers), leaving out names that are part of a held child's name.
pub fn names_not_held(held: &[usize]) -> Vec<String> {
    let all = child_names();
    let kept: Vec<&String> = held.iter().map(|n| &all[n - 1]).collect();
    all.iter()
        .enumerate()
        .filter(|(i, _)| !held.contains(&(i + 1)))
        .map(|(_, n)| n.clone())
        .filter(|n| !kept.iter().any(|k| k.contains(n.as_str())))
        .collect()
}

#[tokio::test]
async fn cadre_view_is_limited_to_own_org() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        chat.say("cadre", "g1", "认领 2 12 15").await;
        let cookie = session(&mut chat, "cadre").await;
        // Staff-only pages and downloads: 403.
        for path in ["/notices", "/stars.md", "/stars.xlsx"] {
            let a = get(&e, path, &cookie).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{b}: {path}");
        }
        let csrf = csrf_token(&e, &cookie).await;
        let a = post_csrf(&e, "/notices/1/remind", &cookie, &csrf).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{b}");
        assert!(chat.queued().await.is_empty(), "{b}: nothing sent");
        // The board shows the org's own claims, in full (the holding org's
        // cadre may see them, as in a private chat); no other child's name.
        let json = get(&e, "/board.json", &cookie).await;
        assert_eq!(json.status, StatusCode::OK, "{b}");
        let v = json.json();
        assert_eq!(v["claimed"], 3, "{b}: {v}");
        assert_eq!(v["recent"].as_array().unwrap().len(), 3, "{b}: {v}");
        assert!(v["recent"].to_string().contains("毛轩"), "{b}: {v}");
        assert_eq!(v["full"], true, "{b}: {v}");
        for w in v["recent"].as_array().unwrap() {
            assert!(
                w.as_object().unwrap().contains_key("price_yuan"),
                "{b}: {w}"
            );
        }
        let board = get(&e, "/board", &cookie).await.text();
        assert!(board.contains("希望能在六一前收到"), "{b}: the note of 2");
        let others = names_not_held(&[2, 12, 15]);
        for path in [
            "/",
            "/board",
            "/board.json",
            "/activities",
            "/stars",
            "/report.md",
        ] {
            let a = get(&e, path, &cookie).await;
            assert_eq!(a.status, StatusCode::OK, "{b}: {path}");
            let text = a.text();
            for name in &others {
                assert!(!text.contains(name.as_str()), "{b}: {path} shows {name}");
            }
            assert!(!text.contains("县二中"), "{b}: {path} shows another org");
        }
        // Another org's id in the query does not widen the view.
        chat.say("staff", "g2", "/log 3月5日 植树护绿 20人 五里墩")
            .await;
        chat.say("cadre", "g1", "/log 3月6日 主题团日 30人 三里铺")
            .await;
        let mut conn = e.store.conn().await.unwrap();
        let other: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE short_name = '县二中'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        let q = format!("from=2026-03-01&to=2026-03-10&org={other}");
        let page = get(&e, &format!("/activities?{q}"), &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{b}");
        assert!(page.text().contains("三里铺"), "{b}: own record");
        assert!(!page.text().contains("五里墩"), "{b}: another org's record");
        let a = get(&e, &format!("/activities.xlsx?{q}"), &cookie).await;
        assert_eq!(a.status, StatusCode::OK, "{b}");
        assert_eq!(
            activity_rows(&a.body),
            2,
            "{b}: header + the org's one record"
        );
        // Staff see the full names.
        let staff = session(&mut chat, "staff").await;
        let json = get(&e, "/board.json", &staff).await;
        assert!(json.text().contains("毛轩"), "{b}: {}", json.text());
    }
}

/// Staff see a claim in full on the board, as in a private chat: the name,
/// the estimated price and the note; on the page and in its JSON.
#[tokio::test]
async fn staff_board_shows_price_and_note() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        chat.say("cadre", "g1", "认领 1 2").await;
        let cookie = session(&mut chat, "staff").await;
        let json = get(&e, "/board.json", &cookie).await;
        let v = json.json();
        assert_eq!(v["full"], true, "{b}: {v}");
        let wish = |no: i64| {
            v["recent"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["no"] == no)
                .unwrap_or_else(|| panic!("{b}: wish {no} in {v}"))
                .clone()
        };
        let two = wish(2);
        assert_eq!(two["child"], "毛轩", "{b}: {two}");
        assert_eq!(two["price_yuan"], 35, "{b}: {two}");
        assert_eq!(two["note"], "希望能在六一前收到", "{b}: {two}");
        // Wish 1 has a price and no note.
        let one = wish(1);
        assert_eq!(one["price_yuan"], 25, "{b}: {one}");
        assert!(one.get("note").is_none(), "{b}: {one}");
        let page = get(&e, "/board", &cookie).await.text();
        for want in ["估价", "备注", "¥35", "希望能在六一前收到", "¥25"] {
            assert!(page.contains(want), "{b}: {want} on the board");
        }
    }
}

#[tokio::test]
async fn posts_need_the_csrf_token() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        let cookie = session(&mut chat, "staff").await;
        for form in [
            "",
            "csrf=",
            "csrf=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let a = call(&e, "POST", "/notices/1/remind", Some(&cookie), Some(form)).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{b}: {form:?}");
            let a = call(&e, "POST", "/logout", Some(&cookie), Some(form)).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{b}: {form:?}");
        }
        assert!(chat.queued().await.is_empty(), "{b}: nothing sent");
        // Signing out with the token ends the session.
        let csrf = csrf_token(&e, &cookie).await;
        let a = post_csrf(&e, "/logout", &cookie, &csrf).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}");
        let a = get(&e, "/", &cookie).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}");
    }
}

/// Another site cannot post to the dashboard, not even `POST /login`
/// (login CSRF): a cross-site `Sec-Fetch-Site` or a foreign `Origin` is
/// refused; the dashboard's own origin and clients sending neither pass.
#[tokio::test]
async fn cross_site_posts_refused() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        let token = chat.link("staff").await;
        // The confirmation page sends no referrer to other sites, but not
        // `no-referrer`: a browser would then post with `Origin: null`.
        let page = login_page(&e, &token).await;
        assert_eq!(page.header(header::REFERRER_POLICY), "same-origin", "{b}");
        let form = format!("t={token}");
        for headers in [
            vec![("sec-fetch-site", "cross-site")],
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://dash.test"),
            ],
            vec![("origin", "https://evil.example")],
            vec![("origin", "https://dash.test")],
            vec![("origin", "http://dash.test:8080")],
            vec![("origin", "null")],
            vec![
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://evil.example"),
            ],
        ] {
            let a = call_with(&e, "POST", "/login", None, Some(&form), &headers).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{b}: {headers:?}");
            assert!(a.cookie().is_none(), "{b}: {headers:?}");
            assert!(a.text().contains("来源不明"), "{b}: {}", a.text());
        }
        // The link was not used up by the refused attempts.
        assert_eq!(audited(&e, "web.login").await, 0, "{b}");
        // The dashboard's own origin signs in (the default port may be
        // spelt out).
        let own = [
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://dash.test:80"),
        ];
        let a = call_with(&e, "POST", "/login", None, Some(&form), &own).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}: {}", a.text());
        let cookie = a.cookie().expect("session cookie");
        // A session POST from elsewhere is refused even with its token;
        // from the dashboard, or with neither header, it passes.
        let csrf = csrf_token(&e, &cookie).await;
        let form = format!("csrf={csrf}");
        let evil = [("origin", "https://evil.example")];
        for path in ["/notices/1/remind", "/logout"] {
            let a = call_with(&e, "POST", path, Some(&cookie), Some(&form), &evil).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{b}: {path}");
        }
        assert!(chat.queued().await.is_empty(), "{b}: nothing sent");
        let own = [("origin", "http://dash.test")];
        let a = call_with(
            &e,
            "POST",
            "/notices/1/remind",
            Some(&cookie),
            Some(&form),
            &own,
        )
        .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}: {}", a.text());
        let a = call(&e, "POST", "/logout", Some(&cookie), Some(&form)).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}: {}", a.text());
        // GETs are not affected.
        let a = call_with(&e, "GET", "/signin", None, None, &evil).await;
        assert_eq!(a.status, StatusCode::OK, "{b}");
    }
}

/// Pages, JSON and downloads are never cached (they may carry children's
/// full names); the static files may be.
#[tokio::test]
async fn dynamic_answers_are_not_cached() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        chat.say("cadre", "g1", "认领 2").await;
        let cookie = session(&mut chat, "staff").await;
        for path in [
            "/",
            "/board",
            "/board.json",
            "/activities.xlsx",
            "/report.md",
            "/signin",
        ] {
            let a = get(&e, path, &cookie).await;
            assert_eq!(a.status, StatusCode::OK, "{b}: {path}");
            assert_eq!(a.header(header::CACHE_CONTROL), "no-store", "{b}: {path}");
        }
        let json = get(&e, "/board.json", &cookie).await;
        assert!(json.text().contains("毛轩"), "{b}: full names in it");
        for path in ["/static/style.css", "/static/app.js"] {
            let a = call(&e, "GET", path, None, None).await;
            assert_eq!(a.status, StatusCode::OK, "{b}: {path}");
            assert!(
                a.header(header::CACHE_CONTROL).contains("max-age"),
                "{b}: {path}"
            );
        }
    }
}

#[tokio::test]
async fn remind_button_queues_reminders() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        chat.say("cadre", "g1", "收到").await;
        chat.queued().await;
        let cookie = session(&mut chat, "staff").await;
        let page = get(&e, "/notices", &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{b}");
        let html = page.text();
        assert!(html.contains("防汛安全通知"), "{b}");
        assert!(html.contains("县一中(1)"), "{b}: acked org listed");
        let csrf = csrf_of(&html);
        let a = post_csrf(&e, "/notices/1/remind", &cookie, &csrf).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}: {}", a.text());
        let to = a.header(header::LOCATION);
        assert!(to.starts_with("/notices?r=1&g="), "{b}: {to}");
        let sent = chat.queued().await;
        assert!(!sent.is_empty(), "{b}: reminders queued");
        assert!(sent.iter().all(|m| m.chat_id != "g1"), "{b}: 县一中 acked");
        assert!(
            sent.iter()
                .any(|m| m.chat_id == "g2" && m.text.contains("防汛安全通知")),
            "{b}: {sent:?}"
        );
        assert_eq!(audited(&e, "notice.remind").await, 1, "{b}");
        let page = get(&e, &to, &cookie).await;
        assert!(page.text().contains("已催办通知 #1"), "{b}");
    }
}

/// Reminding a notice that is still scheduled says it has not gone out,
/// not that nobody is left to chase; nothing is sent.
#[tokio::test]
async fn remind_of_a_scheduled_notice() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        chat.say(
            "staff",
            "pstaff",
            "/notice at 3月12日 09:00 县二中 开学检查\n请自查",
        )
        .await;
        chat.say("staff", "pstaff", "确认").await;
        let r = chat.queued().await;
        assert!(
            r.iter().any(|m| m.text.contains("通知 #2 将于")),
            "{b}: {r:?}"
        );
        let cookie = session(&mut chat, "staff").await;
        let csrf = csrf_token(&e, &cookie).await;
        let a = post_csrf(&e, "/notices/2/remind", &cookie, &csrf).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}: {}", a.text());
        let to = a.header(header::LOCATION);
        assert_eq!(to, "/notices?u=2", "{b}");
        assert!(chat.queued().await.is_empty(), "{b}: nothing sent");
        let page = get(&e, &to, &cookie).await.text();
        assert!(page.contains("通知 #2 还没有发出"), "{b}: {page}");
        assert!(!page.contains("没有需要催办"), "{b}");
        assert_eq!(audited(&e, "notice.remind").await, 0, "{b}");
    }
}

#[tokio::test]
async fn activities_export_is_xlsx() {
    use calamine::Reader;
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        chat.say(
            "cadre",
            "g1",
            "/log 3月5日 学雷锋志愿服务 45人 90小时 三里铺",
        )
        .await;
        chat.say("cadre", "g1", "/log 3月6日 主题团日 30人").await;
        let cookie = session(&mut chat, "staff").await;
        let page = get(&e, "/activities?from=2026-03-01&to=2026-03-10", &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{b}");
        assert!(page.text().contains("三里铺"), "{b}");
        let a = get(
            &e,
            "/activities.xlsx?from=2026-03-01&to=2026-03-10",
            &cookie,
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{b}");
        assert!(
            a.header(header::CONTENT_TYPE).contains("spreadsheetml"),
            "{b}"
        );
        assert!(
            a.header(header::CONTENT_DISPOSITION).contains(".xlsx"),
            "{b}"
        );
        assert_eq!(activity_rows(&a.body), 3, "{b}: header + 2 records");
        // Filtered by category.
        let cat = "%E4%B8%BB%E9%A2%98%E5%9B%A2%E6%97%A5"; // 主题团日
        let a = get(
            &e,
            &format!("/activities.xlsx?from=2026-03-01&to=2026-03-10&category={cat}"),
            &cookie,
        )
        .await;
        assert_eq!(activity_rows(&a.body), 2, "{b}");
        // Work summary and star rating downloads.
        for (path, kind) in [
            ("/report.xlsx", "spreadsheetml"),
            ("/stars.xlsx", "spreadsheetml"),
            ("/report.md", "markdown"),
            ("/stars.md", "markdown"),
        ] {
            let a = get(&e, path, &cookie).await;
            assert_eq!(a.status, StatusCode::OK, "{b}: {path}");
            assert!(a.header(header::CONTENT_TYPE).contains(kind), "{b}: {path}");
            if kind == "spreadsheetml" {
                calamine::Xlsx::new(std::io::Cursor::new(a.body)).unwrap();
            }
        }
        let page = get(&e, "/stars", &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{b}");
        assert!(page.text().contains("县一中"), "{b}");
    }
}

#[tokio::test]
async fn health_and_metrics() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        chat.say("cadre", "g1", "认领 3").await;
        let a = call(&e, "GET", "/healthz", None, None).await;
        assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "ok"));
        let a = call(&e, "GET", "/metrics", None, None).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.header(header::CONTENT_TYPE).starts_with("text/plain"));
        let text = a.text();
        for family in [
            "tuanbot_messages_handled_total",
            "tuanbot_outbox_pending ",
            "tuanbot_send_errors_total",
            "tuanbot_claim_seconds_count",
        ] {
            assert!(text.contains(family), "{family} in\n{text}");
        }
        let handled: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("tuanbot_messages_handled_total "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(handled >= 9, "{text}");
        // The outbox depth is read from the store: the claim's reply waits.
        let pending = |text: &str| -> i64 {
            text.lines()
                .find_map(|l| l.strip_prefix("tuanbot_outbox_pending "))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(pending(&text) >= 1, "{b}: {text}");
        chat.queued().await;
        let text = call(&e, "GET", "/metrics", None, None).await.text();
        assert_eq!(pending(&text), 0, "{b}: {text}");
        let css = call(&e, "GET", "/static/style.css", None, None).await;
        assert_eq!(css.status, StatusCode::OK);
        assert!(css.header(header::CONTENT_TYPE).starts_with("text/css"));
    }
}

/// Downloads that answer with a tiny PNG for `png:*` refs and fail otherwise.
struct FakeFiles;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n0000";

impl tuanbot::engine::FileFetcher for FakeFiles {
    fn fetch<'a>(
        &'a self,
        file_ref: &'a str,
    ) -> tuanbot::chat::BoxFuture<'a, Result<Vec<u8>, tuanbot::chat::files::FetchError>> {
        Box::pin(async move {
            if file_ref.starts_with("png:") {
                Ok(PNG.to_vec())
            } else {
                Err(tuanbot::chat::files::FetchError::Failed("gone".into()))
            }
        })
    }
}

#[tokio::test]
async fn activity_photos_are_shown() {
    use tuanbot::chat::{Attachment, AttachmentKind};
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        e.set_file_fetcher(Platform::Telegram, Arc::new(FakeFiles));
        let photo = |r: &str| Attachment {
            kind: AttachmentKind::Photo,
            file_ref: r.into(),
            file_name: None,
        };
        chat.say_with(
            "cadre",
            "g1",
            "/log 3月5日 学雷锋志愿服务 45人",
            vec![photo("png:abc")],
        )
        .await;
        chat.say_with(
            "cadre",
            "g1",
            "/log 3月6日 主题团日 30人",
            vec![photo("lost:xyz")],
        )
        .await;
        let cookie = session(&mut chat, "staff").await;
        let page = get(&e, "/activities?from=2026-03-01&to=2026-03-10", &cookie).await;
        let html = page.text();
        assert!(
            html.contains("png:abc") && html.contains("lost:xyz"),
            "{b}: refs shown"
        );
        assert!(html.contains("src=\"/activities/1/photos/0\""), "{b}");
        let a = get(&e, "/activities/1/photos/0", &cookie).await;
        assert_eq!(a.status, StatusCode::OK, "{b}");
        assert_eq!(a.header(header::CONTENT_TYPE), "image/png", "{b}");
        assert_eq!(a.body, PNG, "{b}");
        for path in [
            "/activities/2/photos/0",
            "/activities/1/photos/1",
            "/activities/99/photos/0",
        ] {
            let a = get(&e, path, &cookie).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{b}: {path}");
        }
        // Another org's cadre does not see it.
        crate::helpers::make_member(&e.store, Platform::Telegram, "z", "县二中", Role::Cadre).await;
        let other = session(&mut chat, "z").await;
        let a = get(&e, "/activities/1/photos/0", &other).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{b}");
    }
}

/// The photos of more activities than one statement binds (the store's
/// `MAX_BINDS`, 128): every activity's refs, in order, from the store and on
/// the activities page.
#[tokio::test]
async fn photo_refs_of_many_activities() {
    use tuanbot::store::activities::{self, NewActivity};
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        let mut tx = e.store.begin().await.unwrap();
        let p = people::find(&mut tx, Platform::Telegram, "cadre")
            .await
            .unwrap()
            .unwrap();
        let category = tuanbot::domain::category::Category::ALL[0].as_str();
        let mut ids = Vec::new();
        for i in 0..300 {
            let new = NewActivity {
                org_id: p.org_id.unwrap(),
                person_id: p.id,
                date: "2026-03-05",
                category,
                title: "主题团日",
                participants: Some(10),
                approx: false,
                hours: None,
                location: None,
                source_text: "/log 3月5日 主题团日 10人",
                platform: "telegram",
                chat_id: "g1",
                quantities: &[],
            };
            let id = activities::insert(&mut tx, &new, 0).await.unwrap();
            activities::add_photo(&mut tx, id, &format!("png:{i}a"), 0)
                .await
                .unwrap();
            if i % 2 == 0 {
                activities::add_photo(&mut tx, id, &format!("png:{i}b"), 0)
                    .await
                    .unwrap();
            }
            ids.push(id);
        }
        tx.commit().await.unwrap();
        let mut conn = e.store.conn().await.unwrap();
        let refs = tuanbot::store::web::photo_refs(&mut conn, &ids)
            .await
            .unwrap();
        drop(conn);
        assert_eq!(refs.len(), 300, "{b}");
        for (i, id) in ids.iter().enumerate() {
            let mut want = vec![format!("png:{i}a")];
            if i % 2 == 0 {
                want.push(format!("png:{i}b"));
            }
            assert_eq!(refs[id], want, "{b}: activity {id}");
        }
        let cookie = session(&mut chat, "staff").await;
        let page = get(&e, "/activities?from=2026-03-01&to=2026-03-10", &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{b}");
        let html = page.text();
        for (i, id) in [(0, ids[0]), (150, ids[150]), (298, ids[298])] {
            assert!(html.contains(&format!("png:{i}b")), "{b}: {i}");
            let src = format!("src=\"/activities/{id}/photos/1\"");
            assert!(html.contains(&src), "{b}: {src}");
        }
        assert!(html.contains("png:299a"), "{b}");
    }
}

/// The overview's "no record for 30 days" section of `html`.
fn quiet_section(html: &str) -> &str {
    let start = html
        .find("天没有记录活动的组织")
        .expect("the quiet section");
    let rest = &html[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

#[tokio::test]
async fn quiet_orgs_agree_with_the_report() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        let cookie = session(&mut chat, "staff").await;
        // Today is 2026-03-10: a last record on 02-08 leaves 30 days
        // (02-09 … 03-10) without one, as the work summary counts them.
        chat.say("cadre", "g1", "/log 2月8日 主题团日 30人").await;
        let html = get(&e, "/", &cookie).await.text();
        let quiet = quiet_section(&html);
        assert!(
            quiet.contains("县一中") && quiet.contains("2026-02-08"),
            "{b}: {quiet}"
        );
        let report = get(&e, "/report.md?from=2026-03-01&to=2026-03-10", &cookie)
            .await
            .text();
        let inactive = report
            .lines()
            .find(|l| l.contains("天没有活动记录"))
            .unwrap_or_default();
        assert!(inactive.contains("县一中"), "{b}: {report}");
        // A record on 02-09 is within the 30 days.
        chat.say("cadre", "g1", "/log 2月9日 主题团日 30人").await;
        let html = get(&e, "/", &cookie).await.text();
        let quiet = quiet_section(&html);
        assert!(!quiet.contains("县一中"), "{b}: {quiet}");
        assert!(quiet.contains("县二中"), "{b}: {quiet}");
    }
}

#[tokio::test]
async fn board_lists_only_standing_claims() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        chat.say("cadre", "g1", "认领 2 12").await;
        chat.say("staff", "pstaff", "/revoke 12 不要了").await;
        chat.queued().await;
        for user in ["staff", "cadre"] {
            let cookie = session(&mut chat, user).await;
            let json = get(&e, "/board.json", &cookie).await;
            let v = json.json();
            assert_eq!(v["claimed"], 1, "{b} {user}: {v}");
            let nos: Vec<i64> = v["recent"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["no"].as_i64().unwrap())
                .collect();
            assert_eq!(
                nos,
                vec![2],
                "{b} {user}: the revoked wish is no claim: {v}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_signs_in_once_under_concurrency() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        let token = chat.link("staff").await;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (e, form) = (e.clone(), format!("t={token}"));
            set.spawn(async move { call(&e, "POST", "/login", None, Some(&form)).await });
        }
        let answers = tokio::time::timeout(std::time::Duration::from_secs(60), set.join_all())
            .await
            .expect("concurrent sign-ins timed out");
        let signed_in = answers.iter().filter(|a| a.cookie().is_some()).count();
        assert_eq!(signed_in, 1, "{b}: one session from one link");
        for a in &answers {
            let want = if a.cookie().is_some() {
                StatusCode::SEE_OTHER
            } else {
                StatusCode::GONE
            };
            assert_eq!(a.status, want, "{b}: {}", a.text());
        }
        assert_eq!(sessions_stored(&e).await, 1, "{b}");
    }
}

#[tokio::test]
async fn sessions_follow_role_changes() {
    for db in TestDb::both().await {
        let b = db.backend;
        let (e, mut chat) = staged(&db).await;
        // A cadre who moves to another org is a member there: the session
        // does not follow them into the new org. Asking is not moving: the
        // cadre is asked to confirm, and the move waits for approval.
        let cadre = session(&mut chat, "cadre").await;
        assert_eq!(
            get(&e, "/board", &cadre).await.status,
            StatusCode::OK,
            "{b}"
        );
        chat.say("cadre", "pcadre", "我是 县二中").await;
        chat.say("cadre", "pcadre", "确认").await;
        assert_eq!(
            get(&e, "/board", &cadre).await.status,
            StatusCode::OK,
            "{b}: still 县一中's cadre while the move waits"
        );
        chat.say("staff", "pstaff", "同意 cadre").await;
        for path in ["/", "/board.json", "/activities"] {
            let a = get(&e, path, &cadre).await;
            assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}: {path}");
        }
        // Staff demoted to member lose the dashboard at once.
        let staff = session(&mut chat, "staff").await;
        assert_eq!(
            get(&e, "/notices", &staff).await.status,
            StatusCode::OK,
            "{b}"
        );
        set_role(&e, "staff", Role::Member).await;
        let a = get(&e, "/notices", &staff).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{b}: a member has no view");
    }
}
