//! The dashboard's pages. Every handler takes a [`Viewer`] (no session: a
//! 303 to `/signin`), limits a cadre to their own org, and checks staff-only
//! pages and actions itself. Figures come from the store and report modules;
//! nothing here computes what they already do.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Datelike, Duration, NaiveDate};
use maud::{Markup, html};
use rust_i18n::t;
use serde::{Deserialize, Serialize};

use super::{CsrfForm, Fail, MARKDOWN, Page, Viewer, Web, XLSX, download, layout, message_page};
use crate::domain::OrgKind;
use crate::domain::category::Category;
use crate::domain::wish::mask_name;
use crate::report::{self, Judged, Scope};
use crate::service::notices::{Reminded, send_reminders, tally};
use crate::store::activities::{self as store_activities, Filter};
use crate::store::orgs::{self, Org};
use crate::store::wishes::{self as store_wishes, Batch};
use crate::store::{Conn, notices as store_notices, reports as store_reports, web as store_web};

/// Days without a record before an org is listed as quiet.
const QUIET_DAYS: i64 = report::INACTIVE_DAYS;
/// Notices shown: those sent within this many days.
const NOTICE_DAYS: i64 = 60;
/// Most rows on the activities page (the XLSX export has them all).
const ACTIVITY_ROWS: usize = 500;
/// Latest claims listed on the board.
const BOARD_RECENT: i64 = 50;

fn today(web: &Web) -> NaiveDate {
    web.engine.local_date(web.engine.now())
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn category_label(c: &str, l: &str) -> String {
    t!(format!("category.{c}"), locale = l).into_owned()
}

fn percent(part: usize, whole: usize) -> String {
    match (part * 100 + whole / 2).checked_div(whole) {
        Some(p) => format!("{p}%"),
        None => "—".into(),
    }
}

fn org_names(all: &[Org]) -> HashMap<i64, String> {
    all.iter()
        .map(|o| (o.id, o.display().to_string()))
        .collect()
}

/// The micro-wish batch the board shows: the latest published one.
async fn active_batch(conn: &mut Conn) -> Result<Option<Batch>, Fail> {
    Ok(store_wishes::batches(conn)
        .await?
        .into_iter()
        .find(|b| b.status == "published"))
}

fn html_page(web: &Web, v: &Viewer, title: &str, body: Markup) -> Response {
    layout(web, Some(v), title, body).into_response()
}

// ------------------------------------------------------------ overview

pub async fn overview(State(web): State<Web>, v: Viewer) -> Page {
    let l = web.locale();
    let today = today(&web);
    let from = today.with_day(1).unwrap_or(today);
    let (from_s, to_s) = (day(from), day(today));
    let mut conn = web.engine.store.conn().await?;
    let filter = Filter {
        from: &from_s,
        to: &to_s,
        org_id: v.org(),
    };
    let cats = store_activities::totals_by_category(&mut conn, &filter).await?;
    let all = orgs::all(&mut conn).await?;
    let names = org_names(&all);
    let last = store_reports::last_activity(&mut conn, &to_s).await?;
    let cutoff = day(today - Duration::days(QUIET_DAYS));
    let quiet: Vec<(String, Option<String>)> = all
        .iter()
        .filter(|o| o.kind != OrgKind::Committee)
        .filter(|o| v.org().is_none_or(|id| id == o.id))
        .filter_map(|o| {
            let last = last.get(&o.id).cloned();
            // As the work summary counts it: a last record on the cutoff
            // day leaves `QUIET_DAYS` days without one.
            match &last {
                Some(d) if *d > cutoff => None,
                _ => Some((o.display().to_string(), last)),
            }
        })
        .collect();
    // Notices of the last weeks with their acknowledgement rate (a cadre:
    // only those their org is expected to acknowledge, with its answer).
    let since = web.now_ms() - NOTICE_DAYS * 86_400_000;
    let mut notices = Vec::new();
    for id in store_web::sent_notice_ids(&mut conn, since, 20).await? {
        let Some(n) = store_notices::get(&mut conn, id).await? else {
            continue;
        };
        let t = tally(&mut conn, &n).await?;
        let mine = match v.org() {
            None => None,
            Some(org) => {
                let acked = t.acked.iter().any(|(o, _)| o.id == org);
                if !acked && !t.missing.iter().any(|o| o.id == org) {
                    continue;
                }
                Some(acked)
            }
        };
        notices.push((n, t.acked.len(), t.acked.len() + t.missing.len(), mine));
    }
    let batch = active_batch(&mut conn).await?;
    drop(conn);
    let title = t!("web.overview.title", locale = l);
    let scope = match v.org() {
        Some(id) => names.get(&id).cloned().unwrap_or_default(),
        None => t!("web.county", locale = l).into_owned(),
    };
    let body = html! {
        h1 { (title) " · " (scope) }
        section {
            h2 { (t!("web.overview.month", locale = l, from = from_s.as_str(), to = to_s.as_str())) }
            @if cats.is_empty() {
                p.muted { (t!("web.none", locale = l)) }
            } @else {
                table {
                    thead { tr {
                        th { (t!("web.col.category", locale = l)) }
                        th.num { (t!("web.col.records", locale = l)) }
                        th.num { (t!("web.col.participants", locale = l)) }
                        th.num { (t!("web.col.hours", locale = l)) }
                    } }
                    tbody {
                        @for c in &cats {
                            tr {
                                td { (category_label(&c.key, l)) }
                                td.num { (c.records) }
                                td.num { (c.participants) }
                                td.num { (report::num(c.hours)) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { (t!("web.overview.quiet", locale = l, days = QUIET_DAYS)) }
            @if quiet.is_empty() {
                p.muted { (t!("web.none", locale = l)) }
            } @else {
                ul.quiet {
                    @for (name, last) in &quiet {
                        li {
                            (name) " "
                            span.muted {
                                @match last {
                                    Some(d) => (t!("web.overview.last", locale = l, date = d.as_str())),
                                    None => (t!("web.overview.never", locale = l)),
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { (t!("web.overview.notices", locale = l, days = NOTICE_DAYS)) }
            @if notices.is_empty() {
                p.muted { (t!("web.none", locale = l)) }
            } @else {
                table {
                    thead { tr {
                        th { "#" }
                        th { (t!("web.col.title", locale = l)) }
                        th.num { (t!("web.col.acked", locale = l)) }
                        th.num { (t!("web.col.rate", locale = l)) }
                    } }
                    tbody {
                        @for (n, acked, total, mine) in &notices {
                            tr {
                                td { (n.id) }
                                td { (n.title) }
                                @match mine {
                                    Some(true) => td.num colspan="2" { "✅ " (t!("web.overview.we_acked", locale = l)) },
                                    Some(false) => td.num.warn colspan="2" { (t!("web.overview.we_missed", locale = l)) },
                                    None => {
                                        td.num { (acked) "/" (total) }
                                        td.num { (percent(*acked, *total)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { (t!("web.overview.wishes", locale = l)) }
            @match &batch {
                None => p.muted { (t!("web.board.none", locale = l)) },
                Some(b) => p {
                    a href="/board" { "「" (b.name) "」" }
                    " " (t!("web.board.counts", locale = l, total = b.total, open = b.open_n,
                        claimed = b.claimed_n, delivered = b.delivered_n))
                },
            }
        }
    };
    Ok(html_page(&web, &v, &title, body))
}

// ------------------------------------------------------------ wish board

#[derive(Debug, Clone, Serialize)]
pub struct BoardData {
    pub batch: String,
    pub total: i64,
    pub open: i64,
    pub claimed: i64,
    pub delivered: i64,
    pub orgs: Vec<BoardOrg>,
    pub recent: Vec<BoardWish>,
    /// The claims carry the full details (name, price, note): staff, and a
    /// cadre for their own org's claims (the only ones a cadre is shown).
    pub full: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BoardOrg {
    pub org: String,
    pub claimed: i64,
    pub delivered: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BoardWish {
    pub no: i64,
    pub school: String,
    pub grade: String,
    /// The full name for staff and for the holding org's cadre; masked as
    /// in groups for anyone else.
    pub child: String,
    pub item: String,
    /// Staff only, as in a private chat: the estimated price (估价) and the
    /// note (备注). Absent for a cadre.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_yuan: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub org: String,
    pub status: String,
}

async fn board_data(web: &Web, v: &Viewer) -> Result<Option<BoardData>, Fail> {
    let l = web.locale();
    let mut conn = web.engine.store.conn().await?;
    let Some(b) = active_batch(&mut conn).await? else {
        return Ok(None);
    };
    let names = org_names(&orgs::all(&mut conn).await?);
    let counts = store_web::wish_counts_by_org(&mut conn, b.id).await?;
    let mut per_org: HashMap<i64, BoardOrg> = HashMap::new();
    for ((org, status), n) in &counts {
        let Some(org) = org else { continue };
        if v.org().is_some_and(|mine| mine != *org) {
            continue;
        }
        let row = per_org.entry(*org).or_insert_with(|| BoardOrg {
            org: names.get(org).cloned().unwrap_or_default(),
            claimed: 0,
            delivered: 0,
        });
        match status.as_str() {
            "claimed" => row.claimed += n,
            "delivered" => row.delivered += n,
            _ => {}
        }
    }
    let mut orgs: Vec<BoardOrg> = per_org.into_values().collect();
    orgs.sort_by(|a, b| {
        (b.claimed + b.delivered)
            .cmp(&(a.claimed + a.delivered))
            .then_with(|| a.org.cmp(&b.org))
    });
    // Children's data in full: staff, and a cadre for what their org holds.
    let sees = |org: Option<i64>| v.is_staff() || (org.is_some() && org == v.org());
    let recent: Vec<BoardWish> = store_web::recent_claims(&mut conn, b.id, v.org(), BOARD_RECENT)
        .await?
        .into_iter()
        .map(|w| {
            let full = sees(w.org_id);
            BoardWish {
                no: w.no,
                school: w.school,
                grade: w.grade,
                child: if full { w.child } else { mask_name(&w.child) },
                item: w.item,
                price_yuan: w.price_yuan.filter(|_| full),
                note: w.note.filter(|_| full),
                org: w
                    .org_id
                    .and_then(|o| names.get(&o).cloned())
                    .unwrap_or_default(),
                status: t!(format!("wishes.status.{}", w.status.as_str()), locale = l).into_owned(),
            }
        })
        .collect();
    // Staff see every claim in full; a cadre's board lists only their own
    // org's claims, all in full.
    let full = v.is_staff() || v.org().is_some();
    Ok(Some(BoardData {
        batch: b.name,
        total: b.total,
        open: b.open_n,
        claimed: b.claimed_n,
        delivered: b.delivered_n,
        orgs,
        recent,
        full,
    }))
}

pub async fn board(State(web): State<Web>, v: Viewer) -> Page {
    let l = web.locale();
    let title = t!("web.board.title", locale = l);
    let Some(d) = board_data(&web, &v).await? else {
        let body = html! { h1 { (title) } p.muted { (t!("web.board.none", locale = l)) } };
        return Ok(html_page(&web, &v, &title, body));
    };
    let body = html! {
        h1 { (title) " · 「" (d.batch) "」" }
        div id="board" data-live="/board.json" {
            div.tiles {
                div.tile { span.k { (t!("web.board.open", locale = l)) } b id="n-open" { (d.open) } }
                div.tile { span.k { (t!("web.board.claimed", locale = l)) } b id="n-claimed" { (d.claimed) } }
                div.tile { span.k { (t!("web.board.delivered", locale = l)) } b id="n-delivered" { (d.delivered) } }
                div.tile { span.k { (t!("web.board.total", locale = l)) } b id="n-total" { (d.total) } }
            }
            p.muted.live { (t!("web.board.live", locale = l)) }
            h2 { (t!("web.board.by_org", locale = l)) }
            table {
                thead { tr {
                    th { (t!("web.col.org", locale = l)) }
                    th.num { (t!("web.board.claimed", locale = l)) }
                    th.num { (t!("web.board.delivered", locale = l)) }
                } }
                tbody id="board-orgs" {
                    @for o in &d.orgs {
                        tr { td { (o.org) } td.num { (o.claimed) } td.num { (o.delivered) } }
                    }
                }
            }
            h2 { (t!("web.board.recent", locale = l)) }
            p.muted { (t!("web.board.personal", locale = l)) }
            table {
                thead { tr {
                    th { "#" }
                    th { (t!("web.col.school", locale = l)) }
                    th { (t!("web.col.child", locale = l)) }
                    th { (t!("web.col.item", locale = l)) }
                    @if d.full {
                        th.num { (t!("web.col.price", locale = l)) }
                        th { (t!("web.col.note", locale = l)) }
                    }
                    th { (t!("web.col.org", locale = l)) }
                    th { (t!("web.col.status", locale = l)) }
                } }
                tbody id="board-recent" {
                    @for w in &d.recent {
                        tr {
                            td { (w.no) }
                            td { (w.school) " " (w.grade) }
                            td { (w.child) }
                            td { (w.item) }
                            @if d.full {
                                td.num { (price(w.price_yuan)) }
                                td { (w.note.as_deref().unwrap_or("")) }
                            }
                            td { (w.org) }
                            td { (w.status) }
                        }
                    }
                }
            }
        }
    };
    Ok(html_page(&web, &v, &title, body))
}

/// A wish's estimated price as shown: `¥35`, or nothing.
fn price(yuan: Option<i64>) -> String {
    yuan.map(|p| format!("¥{p}")).unwrap_or_default()
}

/// The board's figures as JSON, polled by the page every ~2 s.
pub async fn board_json(State(web): State<Web>, v: Viewer) -> Page {
    let d = board_data(&web, &v).await?;
    Ok(axum::Json(d).into_response())
}

// ------------------------------------------------------------ activities

#[derive(Debug, Default, Deserialize)]
pub struct ActivityQuery {
    #[serde(default)]
    org: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The filter a query asks for, limited to the viewer's org.
struct Chosen {
    org: Option<i64>,
    category: Option<String>,
    from: NaiveDate,
    to: NaiveDate,
}

fn chosen(web: &Web, v: &Viewer, q: &ActivityQuery) -> Chosen {
    let today = today(web);
    let parse = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    let from = parse(&q.from).unwrap_or(today.with_day(1).unwrap_or(today));
    let to = parse(&q.to).unwrap_or(today).max(from);
    let org = match v.org() {
        Some(mine) => Some(mine),
        None => q.org.trim().parse().ok(),
    };
    let category = Category::ALL
        .iter()
        .find(|c| c.as_str() == q.category.trim())
        .map(|c| c.as_str().to_string());
    Chosen {
        org,
        category,
        from,
        to,
    }
}

pub async fn activities(State(web): State<Web>, v: Viewer, Query(q): Query<ActivityQuery>) -> Page {
    let l = web.locale();
    let c = chosen(&web, &v, &q);
    let (from_s, to_s) = (day(c.from), day(c.to));
    let mut conn = web.engine.store.conn().await?;
    let mut list = store_activities::list(
        &mut conn,
        &Filter {
            from: &from_s,
            to: &to_s,
            org_id: c.org,
        },
    )
    .await?;
    if let Some(cat) = &c.category {
        list.retain(|a| &a.category == cat);
    }
    let total = list.len();
    list.reverse();
    list.truncate(ACTIVITY_ROWS);
    let ids: Vec<i64> = list.iter().filter(|a| a.photos > 0).map(|a| a.id).collect();
    let photos = store_web::photo_refs(&mut conn, &ids).await?;
    let all = orgs::all(&mut conn).await?;
    drop(conn);
    let names = org_names(&all);
    let mut export = format!("/activities.xlsx?from={from_s}&to={to_s}");
    if let Some(o) = c.org {
        export.push_str(&format!("&org={o}"));
    }
    if let Some(cat) = &c.category {
        export.push_str("&category=");
        export.push_str(&url_encode(cat));
    }
    let title = t!("web.activities.title", locale = l);
    let body = html! {
        h1 { (title) }
        form.filters method="get" action="/activities" {
            @if v.is_staff() {
                label { (t!("web.col.org", locale = l))
                    select name="org" {
                        option value="" { (t!("web.all", locale = l)) }
                        @for o in all.iter().filter(|o| o.kind != OrgKind::Committee) {
                            option value=(o.id) selected[c.org == Some(o.id)] { (o.display()) }
                        }
                    }
                }
            }
            label { (t!("web.col.category", locale = l))
                select name="category" {
                    option value="" { (t!("web.all", locale = l)) }
                    @for cat in Category::ALL {
                        option value=(cat.as_str()) selected[c.category.as_deref() == Some(cat.as_str())] {
                            (category_label(cat.as_str(), l))
                        }
                    }
                }
            }
            label { (t!("web.from", locale = l)) input type="date" name="from" value=(from_s); }
            label { (t!("web.to", locale = l)) input type="date" name="to" value=(to_s); }
            button type="submit" { (t!("web.filter", locale = l)) }
        }
        p {
            (t!("web.activities.count", locale = l, n = total)) " "
            a id="export-xlsx" href=(export) { (t!("web.activities.export", locale = l)) }
        }
        @if list.is_empty() {
            p.muted { (t!("web.none", locale = l)) }
        } @else {
            div.cards {
                @for a in &list {
                    article.card {
                        h3 { "#" (a.id) " " (a.title) }
                        p.muted {
                            (a.date) " · " (category_label(&a.category, l)) " · "
                            (names.get(&a.org_id).map(String::as_str).unwrap_or(""))
                        }
                        p {
                            @if let Some(p) = a.participants {
                                (t!("web.activities.people", locale = l, n = p))
                                @if a.approx { "+" }
                                " "
                            }
                            @if let Some(h) = a.hours {
                                (t!("web.activities.hours", locale = l, n = report::num(h))) " "
                            }
                            @if let Some(loc) = &a.location { "📍" (loc) }
                        }
                        p.source { (a.source_text) }
                        @if let Some(refs) = photos.get(&a.id) {
                            @for (i, r) in refs.iter().enumerate() {
                                img.photo src={"/activities/" (a.id) "/photos/" (i)} alt=(r) loading="lazy";
                            }
                            p.photo.muted {
                                "📷 " (t!("web.activities.photo_ref", locale = l)) " "
                                @for r in refs { code { (r) } " " }
                            }
                        }
                    }
                }
            }
            @if total > list.len() {
                p.muted { (t!("web.activities.more", locale = l, n = list.len())) }
            }
        }
    };
    Ok(html_page(&web, &v, &title, body))
}

/// `GET /activities/{id}/photos/{n}`: the photo itself when the platform's
/// adapter can download it and it is an image; 404 otherwise (the page
/// still shows the stored file ref).
pub async fn photo(State(web): State<Web>, v: Viewer, Path((id, n)): Path<(i64, usize)>) -> Page {
    let not_found = || Fail::new(StatusCode::NOT_FOUND.into_response());
    let mut conn = web.engine.store.conn().await?;
    let Some(a) = store_activities::get(&mut conn, id).await? else {
        return Err(not_found());
    };
    if v.org().is_some_and(|o| o != a.org_id) {
        return Err(not_found());
    }
    let platform = store_web::activity_platform(&mut conn, id).await?;
    let refs = store_web::photo_refs(&mut conn, &[id]).await?;
    drop(conn);
    let (Some(platform), Some(file_ref)) = (platform, refs.get(&id).and_then(|r| r.get(n))) else {
        return Err(not_found());
    };
    let Some(fetcher) = web.engine.file_fetcher(platform) else {
        return Err(not_found());
    };
    let bytes =
        match tokio::time::timeout(std::time::Duration::from_secs(15), fetcher.fetch(file_ref))
            .await
        {
            Ok(Ok(b)) => b,
            _ => return Err(not_found()),
        };
    let Some(kind) = image_type(&bytes) else {
        return Err(not_found());
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, kind),
            (axum::http::header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}

/// The MIME type of an image by its first bytes; only images are served.
fn image_type(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(b"GIF8") {
        Some("image/gif")
    } else if b.len() > 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn activities_xlsx(
    State(web): State<Web>,
    v: Viewer,
    Query(q): Query<ActivityQuery>,
) -> Page {
    let c = chosen(&web, &v, &q);
    let (from_s, to_s) = (day(c.from), day(c.to));
    let filter = Filter {
        from: &from_s,
        to: &to_s,
        org_id: c.org,
    };
    let (bytes, _) = crate::export::activities_xlsx(
        &web.engine.store,
        &filter,
        c.category.as_deref(),
        web.engine.tz,
    )
    .await?;
    let name = format!("activities_{from_s}_{to_s}.xlsx");
    Ok(download(bytes, XLSX, &name))
}

// ------------------------------------------------------------ notices

#[derive(Debug, Default, Deserialize)]
pub struct NoticesQuery {
    /// After a remind: the notice, groups and orgs reminded.
    r: Option<i64>,
    g: Option<usize>,
    o: Option<usize>,
    /// After a remind with nothing to chase.
    n: Option<i64>,
    /// After a remind of a notice that has not gone out (scheduled or
    /// cancelled).
    u: Option<i64>,
}

pub async fn notices(State(web): State<Web>, v: Viewer, Query(q): Query<NoticesQuery>) -> Page {
    v.require_staff(&web)?;
    let l = web.locale();
    let since = web.now_ms() - NOTICE_DAYS * 86_400_000;
    let mut conn = web.engine.store.conn().await?;
    let mut rows = Vec::new();
    for id in store_web::sent_notice_ids(&mut conn, since, 50).await? {
        if let Some(n) = store_notices::get(&mut conn, id).await? {
            let t = tally(&mut conn, &n).await?;
            rows.push((n, t));
        }
    }
    drop(conn);
    let title = t!("web.notices.title", locale = l);
    let csrf = v.session.csrf.clone();
    let body = html! {
        h1 { (title) }
        @if let (Some(id), Some(g), Some(o)) = (q.r, q.g, q.o) {
            p.flash id="flash" { (t!("web.notices.reminded", locale = l, id = id, groups = g, orgs = o)) }
        }
        @if let Some(id) = q.n {
            p.flash id="flash" { (t!("web.notices.nothing", locale = l, id = id)) }
        }
        @if let Some(id) = q.u {
            p.flash id="flash" { (t!("web.notices.not_sent", locale = l, id = id)) }
        }
        @if rows.is_empty() {
            p.muted { (t!("web.none", locale = l)) }
        }
        @for (n, t) in &rows {
            article.card id={"notice-" (n.id)} {
                h3 { "#" (n.id) " " (n.title) }
                p.muted {
                    (n.target_label) " · "
                    (t!("web.notices.rate", locale = l, acked = t.acked.len(),
                        total = t.acked.len() + t.missing.len(),
                        rate = percent(t.acked.len(), t.acked.len() + t.missing.len()),
                        people = t.people))
                }
                @if let Some(d) = n.deadline_at {
                    p.muted { (t!("web.notices.deadline", locale = l,
                        at = crate::service::notices::show_time(&web.engine, l, d))) }
                }
                p { b { (t!("web.notices.acked", locale = l)) } " "
                    @if t.acked.is_empty() { span.muted { (t!("web.none", locale = l)) } }
                    @for (o, k) in &t.acked { span.tag { (o.display()) "(" (k) ")" } " " }
                }
                p { b { (t!("web.notices.missing", locale = l)) } " "
                    @if t.missing.is_empty() { span.muted { (t!("web.notices.all_acked", locale = l)) } }
                    @for o in &t.missing { span.tag.warn { (o.display()) } " " }
                }
                @if !t.missing.is_empty() {
                    form method="post" action={"/notices/" (n.id) "/remind"} {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { (t!("web.notices.remind", locale = l)) }
                    }
                }
            }
        }
    };
    Ok(html_page(&web, &v, &title, body))
}

/// `POST /notices/{id}/remind`: what `/remind N` does, through the outbox.
pub async fn remind(
    State(web): State<Web>,
    v: Viewer,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Page {
    v.require_staff(&web)?;
    v.check_csrf(&web, &f.csrf)?;
    let l = web.locale();
    let mut tx = web.engine.store.begin().await?;
    let Some(n) = store_notices::get(&mut tx, id).await? else {
        tx.rollback().await?;
        return Ok(message_page(
            &web,
            StatusCode::NOT_FOUND,
            &t!("web.not_found.title", locale = l),
            &t!("notice.not_found", locale = l, id = id),
        ));
    };
    let actor = (v.session.platform, v.session.user_id.as_str());
    let done = send_reminders(
        &mut tx,
        &mut crate::service::Out::new(),
        &web.engine,
        &n,
        web.now_ms(),
        actor,
        "web",
    )
    .await?;
    tx.commit().await?;
    let to = match done {
        Reminded::Sent { groups, orgs } => {
            web.engine.outbox_ready.notify_waiters();
            format!("/notices?r={id}&g={groups}&o={orgs}")
        }
        Reminded::NoneMissing => format!("/notices?n={id}"),
        Reminded::NotSent => format!("/notices?u={id}"),
    };
    Ok(Redirect::to(&to).into_response())
}

// ------------------------------------------------------------ stars and report

#[derive(Debug, Default, Deserialize)]
pub struct PeriodQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The period asked for; by default this year so far.
fn period(web: &Web, q: &PeriodQuery) -> (NaiveDate, NaiveDate) {
    let today = today(web);
    let parse = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    let from = parse(&q.from).unwrap_or(today.with_ordinal(1).unwrap_or(today));
    let to = parse(&q.to).unwrap_or(today).max(from);
    (from, to)
}

fn judged(web: &Web) -> Judged {
    Judged {
        now_ms: web.now_ms(),
        overdue_days: web.engine.settings.wishes.overdue_days,
    }
}

fn scheme(web: &Web) -> report::stars::Scheme {
    web.engine.settings.star_scheme().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "star scheme unreadable; using the built-in one");
        report::stars::Scheme::builtin()
    })
}

/// The county report and every org's rating for the period.
async fn rated(
    web: &Web,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(report::Report, Vec<report::stars::Rating>), Fail> {
    let mut conn = web.engine.store.conn().await?;
    let backend = web.engine.store.backend();
    let r = report::build(
        &mut conn,
        backend,
        web.engine.tz,
        &Scope::County,
        from,
        to,
        judged(web),
    )
    .await?;
    let all = orgs::all(&mut conn).await?;
    let ratings = report::stars::rate(&r, &all, &scheme(web));
    Ok((r, ratings))
}

pub async fn stars(State(web): State<Web>, v: Viewer, Query(q): Query<PeriodQuery>) -> Page {
    let l = web.locale();
    let (from, to) = period(&web, &q);
    let (r, ratings) = rated(&web, from, to).await?;
    let s = scheme(&web);
    let shown: Vec<(usize, &report::stars::Rating)> = ratings
        .iter()
        .enumerate()
        .filter(|(_, x)| v.org().is_none_or(|o| o == x.org_id))
        .collect();
    let (from_s, to_s) = (day(from), day(to));
    let qs = format!("from={from_s}&to={to_s}");
    let title = t!("web.stars.title", locale = l);
    let body = html! {
        h1 { (title) }
        form.filters method="get" action="/stars" {
            label { (t!("web.from", locale = l)) input type="date" name="from" value=(from_s); }
            label { (t!("web.to", locale = l)) input type="date" name="to" value=(to_s); }
            button type="submit" { (t!("web.filter", locale = l)) }
        }
        p.downloads {
            (t!("web.stars.report", locale = l)) " "
            a href={"/report.md?" (qs)} { "Markdown" } " · "
            a href={"/report.xlsx?" (qs)} { "XLSX" }
            @if v.is_staff() {
                " · " (t!("web.stars.ranking", locale = l)) " "
                a href={"/stars.md?" (qs)} { "Markdown" } " · "
                a href={"/stars.xlsx?" (qs)} { "XLSX" }
            }
        }
        @if shown.is_empty() {
            p.muted { (t!("web.none", locale = l)) }
        } @else {
            table {
                thead { tr {
                    th { "#" }
                    th { (t!("web.col.org", locale = l)) }
                    th.num { (t!("web.col.score", locale = l)) }
                    th { (t!("web.col.stars", locale = l)) }
                } }
                tbody {
                    @for (i, x) in &shown {
                        tr { td { (i + 1) } td { (x.name) } td.num { (report::num(x.score)) }
                             td.stars { ("★".repeat(x.stars as usize)) } }
                    }
                }
            }
            h2 { (t!("web.stars.breakdown", locale = l)) }
            @for (_, x) in &shown {
                details open[shown.len() == 1] {
                    summary { (x.name) " " ("★".repeat(x.stars as usize)) }
                    pre.breakdown { (report::stars::breakdown_text(x, &r, &s, l)) }
                }
            }
        }
    };
    Ok(html_page(&web, &v, &title, body))
}

pub async fn stars_md(State(web): State<Web>, v: Viewer, Query(q): Query<PeriodQuery>) -> Page {
    v.require_staff(&web)?;
    let (from, to) = period(&web, &q);
    let (r, ratings) = rated(&web, from, to).await?;
    let md = report::stars::markdown(&r, &ratings, &scheme(&web), web.locale());
    let name = format!("stars_{}_{}.md", day(from), day(to));
    Ok(download(md.into_bytes(), MARKDOWN, &name))
}

pub async fn stars_xlsx(State(web): State<Web>, v: Viewer, Query(q): Query<PeriodQuery>) -> Page {
    v.require_staff(&web)?;
    let (from, to) = period(&web, &q);
    let (_, ratings) = rated(&web, from, to).await?;
    let l = web.locale();
    let bytes = via_temp_file(|p| report::stars::write_xlsx(&ratings, l, p))?;
    let name = format!("stars_{}_{}.xlsx", day(from), day(to));
    Ok(download(bytes, XLSX, &name))
}

/// The work summary for the period: the county for staff, the cadre's org
/// (with the orgs under it) otherwise.
async fn summary(web: &Web, v: &Viewer, q: &PeriodQuery) -> Result<report::Report, Fail> {
    let (from, to) = period(web, q);
    let mut conn = web.engine.store.conn().await?;
    let scope = match v.org() {
        None => Scope::County,
        Some(id) => match orgs::get(&mut conn, id).await? {
            Some(o) => Scope::Org(o),
            None => return Err(Fail::new(StatusCode::FORBIDDEN.into_response())),
        },
    };
    let backend = web.engine.store.backend();
    Ok(report::build(
        &mut conn,
        backend,
        web.engine.tz,
        &scope,
        from,
        to,
        judged(web),
    )
    .await?)
}

pub async fn report_md(State(web): State<Web>, v: Viewer, Query(q): Query<PeriodQuery>) -> Page {
    let r = summary(&web, &v, &q).await?;
    let md = report::markdown(&r, web.locale());
    let name = format!("report_{}_{}.md", day(r.from), day(r.to));
    Ok(download(md.into_bytes(), MARKDOWN, &name))
}

pub async fn report_xlsx(State(web): State<Web>, v: Viewer, Query(q): Query<PeriodQuery>) -> Page {
    let r = summary(&web, &v, &q).await?;
    let l = web.locale();
    let bytes = via_temp_file(|p| report::write_xlsx(&r, l, p))?;
    let name = format!("report_{}_{}.xlsx", day(r.from), day(r.to));
    Ok(download(bytes, XLSX, &name))
}

/// Run a writer that only writes to a path, and return the bytes it wrote.
fn via_temp_file(
    write: impl FnOnce(&std::path::Path) -> Result<(), rust_xlsxwriter::XlsxError>,
) -> Result<Vec<u8>, Fail> {
    let path = std::env::temp_dir().join(format!(
        "tuanbot-web-{}.xlsx",
        &crate::service::web::new_secret()[..16]
    ));
    let result = write(&path)
        .map_err(|e| e.to_string())
        .and_then(|()| std::fs::read(&path).map_err(|e| e.to_string()));
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| {
        tracing::error!(error = %e, "dashboard file failed");
        Fail::new((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
    })
}
