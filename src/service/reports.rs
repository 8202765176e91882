//! `/report [PERIOD] [ORG|全县]` (总结): the short work summary in chat.
//!
//! Who sees what: committee staff any org or the county; a cadre their own
//! org (and the orgs under it); members are pointed at their cadre. The
//! figures come from [`crate::report::build`], the same as the CLI draft.

use chrono::{Datelike, NaiveDate};
use rust_i18n::t;

use super::orgs::{OrgMatch, resolve};
use super::{Ctx, Result, clip};
use crate::chat::Outgoing;
use crate::command::scope::{self, PeriodScope};
use crate::domain::Role;
use crate::report::stars::{Scheme, breakdown_text, ranking_text, rate};
use crate::report::{self, Scope};
use crate::store::orgs;

/// `tuanbot report`: the report for `org` (name, alias, `全县`, or none
/// for the county) written to `path`, and its chart beside it
/// ([`report::export_file`]).
#[allow(clippy::too_many_arguments)]
pub async fn export_file(
    store: &crate::store::Store,
    tz: chrono_tz::Tz,
    locale: &str,
    org: Option<&str>,
    from: NaiveDate,
    to: NaiveDate,
    format: report::FileFormat,
    path: &std::path::Path,
    at: report::Judged,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let scope = match org.filter(|o| !scope::is_county(o)) {
        None => Scope::County,
        Some(name) => {
            let mut conn = store.conn().await?;
            let all = orgs::all(&mut conn).await?;
            let aliases = orgs::aliases(&mut conn).await?;
            match resolve(name, &all, &aliases) {
                OrgMatch::One(o) => Scope::Org(o),
                _ => anyhow::bail!(
                    "{}",
                    crate::i18n::tr(locale, "org.not_found", &[("query", &name)])
                ),
            }
        }
    };
    report::export_file(store, tz, locale, &scope, from, to, format, path, at).await
}

/// Period and scope read from the arguments, after the permission checks;
/// `None` when a reply has already been queued. `year`: default to this year
/// so far instead of this month.
async fn period_and_scope(
    ctx: &mut Ctx<'_>,
    args: &PeriodScope,
    year: bool,
    refuse: (&str, &str),
) -> Result<Option<(NaiveDate, NaiveDate, Scope)>> {
    let loc = ctx.locale;
    let (need_cadre, need_staff) = refuse;
    if !ctx.person.role.at_least(Role::Cadre) {
        let text = t!(need_cadre, locale = loc);
        ctx.reply(text);
        return Ok(None);
    }
    // Period: the first date range in the arguments; default this month (or
    // year) so far.
    let (from, to) = match args.period {
        Some(p) => (p.from, p.to),
        None => {
            let first = if year {
                ctx.today.with_ordinal(1)
            } else {
                ctx.today.with_day(1)
            };
            (first.unwrap_or(ctx.today), ctx.today)
        }
    };
    let to = to.min(ctx.today).max(from);
    let all = orgs::all(ctx.tx).await?;
    let scope = if let Some(scope::Scope::County) = args.scope {
        Scope::County
    } else if let Some(scope::Scope::Org(who)) = &args.scope {
        let who = who.as_str();
        let aliases = orgs::aliases(ctx.tx).await?;
        match resolve(who, &all, &aliases) {
            OrgMatch::One(o) => Scope::Org(o),
            OrgMatch::Many(found) => {
                let list = found
                    .iter()
                    .take(9)
                    .map(|o| o.full_name.as_str())
                    .collect::<Vec<_>>()
                    .join("、");
                let text = t!("bind.ambiguous", locale = loc, n = found.len(), list = list);
                ctx.reply(text);
                return Ok(None);
            }
            OrgMatch::None(_) => {
                let text = t!("org.not_found", locale = loc, query = clip(who, 20));
                ctx.reply(text);
                return Ok(None);
            }
        }
    } else if ctx.is_staff() && (ctx.chat.committee_wide || !ctx.in_group()) {
        Scope::County
    } else {
        let default = if ctx.in_group() && ctx.chat.org_id.is_some() && ctx.is_staff() {
            ctx.chat.org_id
        } else {
            ctx.person.org_id
        };
        match default.and_then(|id| all.iter().find(|o| o.id == id)) {
            Some(o) => Scope::Org(o.clone()),
            None if ctx.is_staff() => Scope::County,
            None => {
                let person = ctx.person.clone();
                let text = super::members::not_member_text(&mut *ctx.tx, &person, loc).await?;
                ctx.reply(text);
                return Ok(None);
            }
        }
    };
    if !ctx.is_staff() {
        let own = match &scope {
            Scope::Org(o) => ctx.person.org_id == Some(o.id),
            Scope::County => false,
        };
        if !own {
            let text = t!(need_staff, locale = loc);
            ctx.reply(text);
            return Ok(None);
        }
    }
    Ok(Some((from, to, scope)))
}

/// `/report [chart] [PERIOD] [ORG|全县]`: the summary's text, or its chart.
pub async fn report(ctx: &mut Ctx<'_>, chart: bool, args: &PeriodScope) -> Result {
    let refuse = ("report.need_cadre", "report.need_staff");
    let Some((from, to, scope)) = period_and_scope(ctx, args, false, refuse).await? else {
        return Ok(());
    };
    let backend = ctx.env.store.backend();
    let at = report::Judged {
        now_ms: ctx.now_ms(),
        overdue_days: ctx.env.settings.wishes.overdue_days,
    };
    let r = report::build(ctx.tx, backend, ctx.env.tz, &scope, from, to, at).await?;
    if !chart {
        let text = report::chat_text(&r, ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    match report::chart::png_attachment(&r, ctx.locale) {
        Ok(photo) => {
            let caption = t!(
                "report.chart_caption",
                locale = ctx.locale,
                from = from.format("%Y-%m-%d"),
                to = to.format("%Y-%m-%d")
            );
            let mut m = Outgoing::new(ctx.msg.platform, ctx.msg.chat_id.clone(), caption);
            m.reply_to = ctx.msg.message_id.clone();
            m.attachments.push(photo);
            ctx.out.send(m);
        }
        Err(e) => {
            tracing::warn!(error = %e, "report chart");
            let text = t!("report.chart_unavailable", locale = ctx.locale);
            ctx.reply(text);
        }
    }
    Ok(())
}

/// Orgs shown in the chat ranking; the CLI file has them all.
const RANKING_LINES: usize = 15;

/// `/stars [PERIOD] [ORG|全县]` (星级): the county ranking (staff), or one
/// org's breakdown. The rating is always computed over the whole county, so
/// the 5★ share cap is the same whoever asks.
pub async fn stars(ctx: &mut Ctx<'_>, args: &PeriodScope) -> Result {
    let refuse = ("stars.need_cadre", "stars.need_staff");
    let Some((from, to, scope)) = period_and_scope(ctx, args, true, refuse).await? else {
        return Ok(());
    };
    // A period starts no earlier than the month of the county's first
    // record: months before the bot was in use are not missed months.
    let first = crate::store::reports::first_activity(ctx.tx)
        .await?
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .and_then(|d| d.with_day(1));
    let from = match first {
        Some(first) if first <= to => from.max(first),
        _ => {
            let text = t!("stars.none", locale = ctx.locale);
            ctx.reply(text);
            return Ok(());
        }
    };
    let scheme = match ctx.env.settings.star_scheme() {
        Ok(s) => s,
        Err(e) => {
            // Checked at start-up; a file changed since then falls back.
            tracing::warn!(error = %e, "star scheme unreadable; using the built-in one");
            Scheme::builtin()
        }
    };
    let backend = ctx.env.store.backend();
    let at = report::Judged {
        now_ms: ctx.now_ms(),
        overdue_days: ctx.env.settings.wishes.overdue_days,
    };
    let r = report::build(ctx.tx, backend, ctx.env.tz, &Scope::County, from, to, at).await?;
    if r.records == 0 && r.notices.notices == 0 {
        // Nothing to rate: no list of orgs at 0 points.
        let text = t!("stars.none", locale = ctx.locale);
        ctx.reply(text);
        return Ok(());
    }
    let all = orgs::all(ctx.tx).await?;
    let ratings = rate(&r, &all, &scheme);
    let text = match &scope {
        Scope::County => ranking_text(&r, &ratings, ctx.locale, RANKING_LINES),
        Scope::Org(o) => match ratings.iter().find(|x| x.org_id == o.id) {
            Some(x) => breakdown_text(x, &r, &scheme, ctx.locale),
            // The committee itself is not rated.
            None => t!("stars.not_rated", locale = ctx.locale, org = o.display()).into_owned(),
        },
    };
    ctx.reply(text);
    Ok(())
}
