//! `/report [PERIOD] [ORG|全县]` (总结): the short work summary in chat.
//!
//! Who sees what: committee staff any org or the county; a cadre their own
//! org (and the orgs under it); members are pointed at their cadre. The
//! figures come from [`crate::report::build`], the same as the CLI draft.

use chrono::Datelike;
use rust_i18n::t;

use super::orgs::{OrgMatch, resolve};
use super::{Ctx, Result, clip};
use crate::command::dates::find_date_range;
use crate::domain::Role;
use crate::report::{self, Scope};
use crate::store::orgs;

/// Words that mean the whole county.
pub fn is_county(word: &str) -> bool {
    matches!(word, "全县" | "全部" | "county" | "all")
}

pub async fn report(ctx: &mut Ctx<'_>, args: &str) -> Result {
    let loc = ctx.locale;
    if !ctx.person.role.at_least(Role::Cadre) {
        let text = t!("report.need_cadre", locale = loc);
        ctx.reply(text);
        return Ok(());
    }
    // Period: the first date range in the arguments; default this month so far.
    let (from, to) = find_date_range(args, ctx.today).unwrap_or_else(|| {
        let first = ctx.today.with_day(1).unwrap_or(ctx.today);
        (first, ctx.today)
    });
    let to = to.min(ctx.today).max(from);
    let who: String = args
        .split_whitespace()
        .filter(|w| find_date_range(w, ctx.today).is_none())
        .collect::<Vec<_>>()
        .join("");
    let all = orgs::all(ctx.tx).await?;
    let scope = if is_county(&who) {
        Scope::County
    } else if !who.is_empty() {
        let aliases = orgs::aliases(ctx.tx).await?;
        match resolve(&who, &all, &aliases) {
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
                return Ok(());
            }
            OrgMatch::None(_) => {
                let text = t!("org.not_found", locale = loc, query = clip(&who, 20));
                ctx.reply(text);
                return Ok(());
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
                let text = t!("common.need_org", locale = loc);
                ctx.reply(text);
                return Ok(());
            }
        }
    };
    if !ctx.is_staff() {
        let own = match &scope {
            Scope::Org(o) => ctx.person.org_id == Some(o.id),
            Scope::County => false,
        };
        if !own {
            let text = t!("report.need_staff", locale = loc);
            ctx.reply(text);
            return Ok(());
        }
    }
    let backend = ctx.engine.store.backend();
    let now = ctx.now_ms();
    let r = report::build(ctx.tx, backend, ctx.engine.tz, &scope, from, to, now).await?;
    let text = report::chat_text(&r, loc);
    ctx.reply(text);
    Ok(())
}
