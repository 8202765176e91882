//! Views: the open wishes, one wish, an org's and a person's holdings.

use super::*;
use crate::command::wishes::WishQuery;

/// `/wishes [PAGE|WORD|ORG]` (心愿): open wishes, paged or filtered; an
/// org's holdings.
pub async fn list(ctx: &mut Ctx<'_>, query: &WishQuery) -> Result {
    let Some(batch) = current(ctx).await? else {
        return Ok(());
    };
    let (page_no, arg) = match query {
        WishQuery::Page(n) => (Some(*n), ""),
        WishQuery::Words(words) => (None, words.as_str()),
    };
    let l = ctx.locale;
    if let Some(page_no) = page_no {
        let open = db::list(ctx.tx, batch.id, Some(WishStatus::Open), None, None).await?;
        let lines: Vec<String> = open.iter().map(|w| line(w, false)).collect();
        let pages = pages(&lines, page_budget(ctx.env, ctx.msg.platform));
        if pages.is_empty() {
            let text = t!(
                "wishes.list.none_open",
                locale = l,
                name = batch.name.as_str()
            );
            ctx.reply(text);
            return Ok(());
        }
        let Some(page) = page_no.checked_sub(1).and_then(|i| pages.get(i)) else {
            let text = t!("wishes.list.no_page", locale = l, pages = pages.len());
            ctx.reply(text);
            return Ok(());
        };
        let mut text = t!(
            "wishes.list.title",
            locale = l,
            name = batch.name.as_str(),
            open = open.len(),
            total = batch.total
        )
        .into_owned();
        text.push('\n');
        text.push_str(&page.join("\n"));
        text.push('\n');
        text.push_str(&t!(
            "wishes.publish.page",
            locale = l,
            page = page_no,
            pages = pages.len()
        ));
        ctx.reply(text);
        return Ok(());
    }
    // A school or item word among the open wishes; failing that, an org
    // name: what it holds. (Schools come first: `心愿 永清镇` means the
    // township's schools more often than its youth-league committee.)
    let word = clip(arg, 20);
    let found = db::list(ctx.tx, batch.id, Some(WishStatus::Open), None, Some(&word)).await?;
    if found.is_empty() {
        let all = orgs::all(ctx.tx).await?;
        let aliases = orgs::aliases(ctx.tx).await?;
        if let OrgMatch::One(org) = resolve(arg, &all, &aliases) {
            return org_holdings(ctx, &batch, &org).await;
        }
        let text = t!("wishes.list.no_match", locale = l, word = word.as_str());
        ctx.reply(text);
        return Ok(());
    }
    let lines: Vec<String> = found.iter().map(|w| line(w, false)).collect();
    let pages = pages(&lines, page_budget(ctx.env, ctx.msg.platform));
    let mut text = t!(
        "wishes.list.match_title",
        locale = l,
        word = word.as_str(),
        n = found.len()
    )
    .into_owned();
    if let Some(first) = pages.first() {
        text.push('\n');
        text.push_str(&first.join("\n"));
    }
    if pages.len() > 1 {
        text.push('\n');
        text.push_str(&tr(l, "wishes.list.more"));
    }
    ctx.reply(text);
    Ok(())
}

/// What an org holds in a batch (masked: this may be a group).
async fn org_holdings(ctx: &mut Ctx<'_>, batch: &Batch, org: &orgs::Org) -> Result {
    let l = ctx.locale;
    let held = db::list(ctx.tx, batch.id, None, Some(org.id), None).await?;
    let held: Vec<&Wish> = held
        .iter()
        .filter(|w| matches!(w.status, WishStatus::Claimed | WishStatus::Delivered))
        .collect();
    if held.is_empty() {
        let text = t!("wishes.list.org_none", locale = l, org = org.display());
        ctx.reply(text);
        return Ok(());
    }
    let mut text = t!(
        "wishes.list.org_title",
        locale = l,
        org = org.display(),
        n = held.len()
    )
    .into_owned();
    for w in held {
        text.push('\n');
        text.push_str(&line(w, false));
        text.push_str(&format!(" · {}", status_label(l, w.status)));
    }
    ctx.reply(text);
    Ok(())
}

/// `/wish 12`: one wish, masked unless [`sees_full`].
pub async fn show(ctx: &mut Ctx<'_>, no: u32) -> Result {
    let Some(batch) = current(ctx).await? else {
        return Ok(());
    };
    let Some(w) = wish_no(ctx, &batch, no).await? else {
        return Ok(());
    };
    let full = sees_full(ctx, &w);
    let mut text = line(&w, full);
    text.push_str(&format!(" · {}", status_label(ctx.locale, w.status)));
    if let Some(org) = w.org_id
        && let Some(o) = orgs::get(ctx.tx, org).await?
    {
        text.push_str(&format!(" · {}", o.display()));
    }
    if w.status == WishStatus::Revoked
        && let Some(reason) = &w.revoke_reason
    {
        text.push_str(&format!("（{reason}）"));
    }
    if full {
        ctx.reply_personal(text);
    } else {
        ctx.reply(text);
    }
    Ok(())
}

/// `/mywishes` (我的心愿): what the person's org holds, in a private chat
/// only: in full for its cadres (and staff), masked for its members.
pub async fn mine(ctx: &mut Ctx<'_>) -> Result {
    if ctx.in_group() {
        let text = tr(ctx.locale, "wishes.mine.private_only");
        ctx.reply(text);
        return Ok(());
    }
    let Some(org_id) = ctx.person.org_id else {
        let person = ctx.person.clone();
        let text =
            crate::service::members::not_member_text(&mut *ctx.tx, &person, ctx.locale).await?;
        ctx.reply(text);
        return Ok(());
    };
    let held = db::held_by_org(ctx.tx, org_id).await?;
    if held.is_empty() {
        let text = tr(ctx.locale, "wishes.mine.none");
        ctx.reply(text);
        return Ok(());
    }
    let full = ctx.is_staff() || ctx.person.role == Role::Cadre;
    let title = if full {
        "wishes.mine.title"
    } else {
        "wishes.mine.title_masked"
    };
    let mut text = t!(title, locale = ctx.locale, n = held.len()).into_owned();
    let mut last_batch = String::new();
    for (batch, w) in &held {
        if *batch != last_batch {
            text.push_str(&format!("\n【{batch}】"));
            last_batch = batch.clone();
        }
        text.push('\n');
        text.push_str(&line(w, full));
        text.push_str(&format!(" · {}", status_label(ctx.locale, w.status)));
    }
    text.push('\n');
    if full {
        text.push_str(&tr(ctx.locale, "wishes.mine.footer"));
        ctx.reply_personal(text);
    } else {
        text.push_str(&tr(ctx.locale, "wishes.mine.footer_masked"));
        ctx.reply(text);
    }
    Ok(())
}
