//! The committee web dashboard: an axum server inside the binary, off unless
//! `web.listen` and `web.public_url` are set.
//!
//! ```text
//! /web in a private chat ─> one-time link {public_url}/login?t=TOKEN (10 min)
//! GET  /login?t=…  confirmation page (a link preview does not sign in)
//! POST /login      consume the link (conditional UPDATE) ─> session cookie ─> 303 /
//! GET  / /board /activities /notices /stars …   behind the session
//! ```
//!
//! Server-rendered HTML (maud), one small CSS and script served from the
//! binary. Every page checks the session per request and reads the
//! person's role anew: staff see the county, a cadre a read-only view of
//! their own org; staff-only pages answer 403 to a cadre. POSTs carry the
//! session's CSRF token, and any POST (`/login` too) that a browser marks
//! as coming from another site is refused. Answers are `no-store` but for
//! the static files. Times come from the engine's clock.

mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Duration;
use maud::{DOCTYPE, Markup, html};
use rust_i18n::t;
use serde::Deserialize;
use serde_json::json;

use crate::domain::Role;
use crate::engine::Engine;
use crate::service::web::{digest, new_secret};
use crate::store::web::{self as store_web, LinkState, NewSession, Scope, Session};
use crate::store::{StoreError, audit, people};

/// The session cookie's name.
pub const COOKIE: &str = "tuanbot_session";

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("app.js");

/// Shared by every handler.
#[derive(Clone)]
pub struct Web {
    pub engine: Arc<Engine>,
}

impl Web {
    fn locale(&self) -> &'static str {
        crate::i18n::pick(None, None, &self.engine.settings.locale)
    }

    fn now_ms(&self) -> i64 {
        crate::store::ms(self.engine.now())
    }

    fn secure_cookie(&self) -> bool {
        self.engine
            .settings
            .web
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// The dashboard's routes over `engine`.
pub fn router(engine: Arc<Engine>) -> Router {
    let web = Web { engine };
    Router::new()
        .route("/", get(pages::overview))
        .route("/board", get(pages::board))
        .route("/board.json", get(pages::board_json))
        .route("/activities", get(pages::activities))
        .route("/activities.xlsx", get(pages::activities_xlsx))
        .route("/activities/{id}/photos/{n}", get(pages::photo))
        .route("/notices", get(pages::notices))
        .route("/notices/{id}/remind", post(pages::remind))
        .route("/stars", get(pages::stars))
        .route("/stars.md", get(pages::stars_md))
        .route("/stars.xlsx", get(pages::stars_xlsx))
        .route("/report.md", get(pages::report_md))
        .route("/report.xlsx", get(pages::report_xlsx))
        .route("/login", get(login_page).post(login))
        .route("/signin", get(signin))
        .route("/logout", post(logout))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/static/style.css", get(style))
        .route("/static/app.js", get(script))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            same_origin_posts,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(web)
}

/// A POST (any unsafe method) only from the dashboard's own pages: refused
/// when the browser says it comes from another site (`Sec-Fetch-Site:
/// cross-site`) or names an `Origin` other than `web.public_url`'s. This
/// covers `POST /login`, which has no session and so no CSRF token yet:
/// without it another site could sign a victim's browser into the
/// attacker's session. Clients that send neither header pass (the session
/// POSTs still need their CSRF token).
async fn same_origin_posts(
    State(web): State<Web>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !req.method().is_safe()
        && from_elsewhere(req.headers(), web.engine.settings.web.public_url.as_deref())
    {
        return forbidden(&web, "web.csrf.title", "web.csrf.body").into_response();
    }
    next.run(req).await
}

/// Does a request come from another site than `public_url`?
fn from_elsewhere(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let origin_of = |s: &str| url::Url::parse(s).ok().map(|u| u.origin());
    let ours = public_url.and_then(origin_of);
    let theirs = origin.to_str().ok().and_then(origin_of);
    match (ours, theirs) {
        // `Origin: null` and other opaque origins never match.
        (Some(ours), Some(theirs)) => !(ours.is_tuple() && ours == theirs),
        _ => true,
    }
}

/// Headers on every answer: scripts, styles and requests only from the
/// dashboard itself, no framing, no MIME sniffing, no referrer to others;
/// and nothing kept in a cache (pages, JSON and downloads may carry
/// children's full names) unless the handler allows it (static files).
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    resp
}

/// Serve the dashboard on `listener` until `shutdown` turns true.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine))
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}

// ------------------------------------------------------------ sessions

/// What the signed-in person may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The whole county, with actions.
    Staff,
    /// One org, read-only.
    Cadre { org_id: i64 },
}

/// A request with a live session.
pub struct Viewer {
    pub session: Session,
    pub view: View,
}

impl Viewer {
    pub fn is_staff(&self) -> bool {
        self.view == View::Staff
    }

    /// The org a cadre view is limited to.
    pub fn org(&self) -> Option<i64> {
        match self.view {
            View::Staff => None,
            View::Cadre { org_id } => Some(org_id),
        }
    }

    /// Staff-only pages: 403 for anyone else.
    pub fn require_staff(&self, web: &Web) -> Result<(), Fail> {
        if self.is_staff() {
            Ok(())
        } else {
            Err(forbidden(web, "web.forbidden.title", "web.forbidden.body"))
        }
    }

    /// A POST must carry this session's CSRF token.
    pub fn check_csrf(&self, web: &Web, token: &str) -> Result<(), Fail> {
        if constant_time_eq(token.as_bytes(), self.session.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(forbidden(web, "web.csrf.title", "web.csrf.body"))
        }
    }
}

/// The 403 page with the locale's `title_key` and `body_key` texts.
fn forbidden(web: &Web, title_key: &str, body_key: &str) -> Fail {
    let l = web.locale();
    Fail::new(message_page(
        web,
        StatusCode::FORBIDDEN,
        &t!(title_key, locale = l),
        &t!(body_key, locale = l),
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The view a session grants given the person's role now: a staff link
/// keeps the county only while the person is staff; anyone still at least
/// a cadre with an org sees that org; otherwise the session is void.
fn view_of(s: &Session) -> Option<View> {
    match (s.scope, s.role, s.org_id) {
        (Scope::Staff, Role::Staff, _) => Some(View::Staff),
        (_, role, Some(org_id)) if role.at_least(Role::Cadre) => Some(View::Cadre { org_id }),
        _ => None,
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<Web> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        let to_signin = || Redirect::to("/signin").into_response();
        let Some(secret) = cookie_value(&parts.headers, COOKIE) else {
            return Err(to_signin());
        };
        let mut conn = web
            .engine
            .store
            .conn()
            .await
            .map_err(|e| *Fail::from(e).0)?;
        let session = store_web::session(&mut conn, &digest(secret), web.now_ms())
            .await
            .map_err(|e| *Fail::from(e).0)?;
        let Some(session) = session else {
            return Err(to_signin());
        };
        match view_of(&session) {
            Some(view) => Ok(Viewer { session, view }),
            None => Err(to_signin()),
        }
    }
}

// ------------------------------------------------------------ errors

/// A response that ends a handler early (error pages).
pub struct Fail(pub Box<Response>);

impl Fail {
    pub fn new(r: Response) -> Fail {
        Fail(Box::new(r))
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        tracing::error!(error = %e, "dashboard request failed");
        Fail::new((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
    }
}

impl From<crate::export::ExportError> for Fail {
    fn from(e: crate::export::ExportError) -> Fail {
        tracing::error!(error = %e, "dashboard export failed");
        Fail::new((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
    }
}

pub type Page = Result<Response, Fail>;

// ------------------------------------------------------------ layout

/// The page frame: title, navigation (staff links only for staff), the
/// sign-out form, one CSS and one script.
pub fn layout(web: &Web, viewer: Option<&Viewer>, title: &str, body: Markup) -> Markup {
    let l = web.locale();
    let bot = web.engine.settings.bot_name.as_str();
    html! {
        (DOCTYPE)
        html lang=(if l == "en" { "en" } else { "zh-CN" }) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (bot) }
                link rel="stylesheet" href="/static/style.css";
                script src="/static/app.js" defer {}
            }
            body {
                header {
                    strong.brand { (bot) }
                    @if let Some(v) = viewer {
                        nav {
                            a href="/" { (t!("web.nav.overview", locale = l)) }
                            a href="/board" { (t!("web.nav.board", locale = l)) }
                            a href="/activities" { (t!("web.nav.activities", locale = l)) }
                            @if v.is_staff() {
                                a href="/notices" { (t!("web.nav.notices", locale = l)) }
                            }
                            a href="/stars" { (t!("web.nav.stars", locale = l)) }
                        }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(v.session.csrf);
                            span.who { (v.session.display_name) }
                            @if !v.is_staff() {
                                span.badge { (t!("web.read_only", locale = l)) }
                            }
                            button type="submit" { (t!("web.nav.logout", locale = l)) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page with a title and one paragraph, with a status code.
pub fn message_page(web: &Web, status: StatusCode, title: &str, text: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p { (text) }
    };
    (status, layout(web, None, title, body)).into_response()
}

// ------------------------------------------------------------ sign-in

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    t: String,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    t: String,
}

/// The refusal for a link that does not sign in: 403 unknown, 410 used or
/// expired.
fn link_refused(web: &Web, state: LinkState) -> Response {
    let l = web.locale();
    let (status, key) = match state {
        LinkState::Used => (StatusCode::GONE, "web.login.used"),
        LinkState::Expired => (StatusCode::GONE, "web.login.expired"),
        LinkState::Unknown | LinkState::Usable => (StatusCode::FORBIDDEN, "web.login.unknown"),
    };
    message_page(
        web,
        status,
        &t!("web.login.refused_title", locale = l),
        &t!(key, locale = l),
    )
}

/// `GET /login?t=…`: a page with one button that signs in (submitted at
/// once by the script). A GET never consumes the link, so a chat app's
/// link preview cannot use it up.
async fn login_page(State(web): State<Web>, Query(q): Query<LoginQuery>) -> Page {
    let l = web.locale();
    let state = {
        let mut conn = web.engine.store.conn().await?;
        store_web::link_state(&mut conn, &digest(&q.t), web.now_ms()).await?
    };
    if state != LinkState::Usable {
        return Ok(link_refused(&web, state));
    }
    let title = t!("web.login.title", locale = l);
    let body = html! {
        h1 { (title) }
        form id="login" method="post" action="/login" {
            input type="hidden" name="t" value=(q.t);
            button type="submit" { (t!("web.login.button", locale = l)) }
        }
    };
    let mut resp = layout(&web, None, &title, body).into_response();
    // The token must not leak to other sites through the referrer. Not
    // `no-referrer`: with it a browser posts the form with `Origin: null`,
    // which `same_origin_posts` refuses.
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    Ok(resp)
}

/// `POST /login`: consume the link (once), open a session, set the cookie
/// and go to the overview.
async fn login(State(web): State<Web>, axum::Form(f): axum::Form<LoginForm>) -> Page {
    let now = web.engine.now();
    let now_ms = crate::store::ms(now);
    let hash = digest(&f.t);
    let mut tx = web.engine.store.begin().await?;
    let Some(granted) = store_web::consume_link(&mut tx, &hash, now_ms).await? else {
        let state = store_web::link_state(&mut tx, &hash, now_ms).await?;
        tx.rollback().await?;
        return Ok(link_refused(&web, state));
    };
    let Some(person) = people::get(&mut tx, granted.person_id).await? else {
        tx.rollback().await?;
        return Ok(link_refused(&web, LinkState::Unknown));
    };
    let secret = new_secret();
    let csrf = new_secret();
    let hours = web.engine.settings.web.session_hours;
    let expires_at = crate::store::ms(now + Duration::hours(hours));
    let session_id = store_web::insert_session(
        &mut tx,
        &NewSession {
            session_hash: &digest(&secret),
            person_id: person.id,
            scope: granted.scope,
            org_id: granted.org_id,
            csrf: &csrf,
            now_ms,
            expires_at,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &audit::Entry {
            at_ms: now_ms,
            platform: person.platform,
            actor: &person.user_id,
            action: "web.login",
            entity: "web_session",
            entity_id: Some(session_id.to_string()),
            detail: json!({"link": granted.link_id, "scope": granted.scope.as_str()}),
        },
    )
    .await?;
    store_web::purge_expired(&mut tx, now_ms).await?;
    tx.commit().await?;
    let mut cookie = format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        hours * 3600
    );
    if web.secure_cookie() {
        cookie.push_str("; Secure");
    }
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// Where a request without a session lands.
async fn signin(State(web): State<Web>) -> Response {
    let l = web.locale();
    message_page(
        &web,
        StatusCode::OK,
        &t!("web.signin.title", locale = l),
        &t!("web.signin.body", locale = l),
    )
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

async fn logout(
    State(web): State<Web>,
    viewer: Viewer,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Page {
    viewer.check_csrf(&web, &f.csrf)?;
    let mut tx = web.engine.store.begin().await?;
    store_web::delete_session(&mut tx, viewer.session.id, web.now_ms()).await?;
    tx.commit().await?;
    let mut resp = Redirect::to("/signin").into_response();
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

// ------------------------------------------------------------ operators

/// `GET /healthz`: 200 "ok" when the store answers.
async fn healthz(State(web): State<Web>) -> Response {
    let ok = async {
        let mut conn = web.engine.store.conn().await?;
        sqlx::query("SELECT 1")
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)
    }
    .await;
    match ok {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(web): State<Web>) -> Page {
    let pending = {
        let mut conn = web.engine.store.conn().await?;
        store_web::outbox_pending(&mut conn).await?
    };
    let text = crate::metrics::render(&crate::metrics::snapshot(), pending);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn not_found(State(web): State<Web>) -> Response {
    let l = web.locale();
    message_page(
        &web,
        StatusCode::NOT_FOUND,
        &t!("web.not_found.title", locale = l),
        &t!("web.not_found.body", locale = l),
    )
}

/// A file download.
pub fn download(bytes: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    // ASCII fallback name plus the UTF-8 one (RFC 6266).
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub const MARKDOWN: &str = "text/markdown; charset=utf-8";
