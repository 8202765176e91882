//! `/help` (帮助): what this person may use here, short enough for a phone
//! screen ([`MAX_LINES`]); `/help 全部` (`/help all`) lists the rest.

use super::{Ctx, Result};
use crate::domain::Role;
use rust_i18n::t;

/// The most lines the short help has, its title and last line included.
pub const MAX_LINES: usize = 12;

/// Who is asking, as far as help is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    /// In no org and asking to join none.
    Stranger,
    /// Waiting for a cadre to approve their request.
    Pending,
    Member,
    Cadre,
    Staff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Anywhere,
    Group,
    Private,
}

/// One help line: its locale key (one command, its Chinese keyword and an
/// example), the least [`Who`] that may use it, where it works, and who
/// sees it in the short help.
struct Line {
    key: &'static str,
    least: Who,
    place: Where,
    short: &'static [Who],
}

const fn line(key: &'static str, least: Who, place: Where, short: &'static [Who]) -> Line {
    Line {
        key,
        least,
        place,
        short,
    }
}

use Where::{Anywhere, Group, Private};
use Who::{Cadre, Member, Pending, Staff, Stranger};

/// Every line, in the order shown. Who may claim depends on the settings
/// (`wishes.claim_role`): see [`least_for`].
const LINES: &[Line] = &[
    line("help.iam", Stranger, Anywhere, &[Stranger, Pending]),
    line(
        "help.whoami",
        Stranger,
        Anywhere,
        &[Stranger, Pending, Member],
    ),
    line("help.orgs", Stranger, Anywhere, &[Stranger, Pending]),
    line("help.faq", Stranger, Anywhere, &[Stranger, Pending, Member]),
    line("wishes.help.list", Stranger, Anywhere, &[Pending, Member]),
    line("help.log", Member, Anywhere, &[Member, Cadre, Staff]),
    line("help.mine", Member, Anywhere, &[Member]),
    line("help.undo", Member, Anywhere, &[Cadre]),
    line("help.join", Member, Anywhere, &[Member]),
    line("wishes.help.claim", Member, Anywhere, &[Member, Cadre]),
    line("help.stats", Cadre, Anywhere, &[Cadre, Staff]),
    line("help.notice", Cadre, Anywhere, &[Cadre, Staff]),
    line("help.notice_status", Cadre, Anywhere, &[]),
    line("help.event", Cadre, Anywhere, &[Cadre, Staff]),
    line("help.report", Cadre, Anywhere, &[Cadre, Staff]),
    line("help.stars", Cadre, Anywhere, &[Cadre, Staff]),
    line("help.bind", Cadre, Group, &[Cadre]),
    line("wishes.help.mine", Cadre, Anywhere, &[]),
    line("wishes.help.done", Cadre, Anywhere, &[]),
    line("members.help.members", Cadre, Anywhere, &[]),
    line("members.help.approve", Cadre, Anywhere, &[Cadre, Staff]),
    line("members.help.invite", Cadre, Anywhere, &[]),
    line("members.help.remove", Cadre, Anywhere, &[]),
    line("help.role", Staff, Anywhere, &[Staff]),
    line("members.help.roster", Staff, Anywhere, &[]),
    line("help.bind_county", Staff, Group, &[Staff]),
    line("wishes.help.publish", Staff, Anywhere, &[Staff]),
    // The dashboard: only where it is switched on; its link comes privately.
    line("web.help", Cadre, Private, &[Cadre, Staff]),
    line("help.help", Stranger, Anywhere, &[]),
];

/// The least [`Who`] a line needs with these settings.
fn least_for(line: &Line, claim_role: &str) -> Who {
    match line.key {
        "wishes.help.claim" if claim_role == "cadre" => Cadre,
        _ => line.least,
    }
}

/// The help lines (locale keys) for `who`: the short ones, or all; `group`
/// for a group chat, `web` when the dashboard is on.
pub fn keys(who: Who, group: bool, all: bool, web: bool, claim_role: &str) -> Vec<&'static str> {
    LINES
        .iter()
        .filter(|l| who >= least_for(l, claim_role))
        .filter(|l| match l.place {
            Anywhere => true,
            Group => group,
            // In the full list the dashboard line shows in groups too.
            Private => !group || all,
        })
        .filter(|l| web || l.key != "web.help")
        .filter(|l| all || l.short.contains(&who))
        .map(|l| l.key)
        .collect()
}

pub async fn help(ctx: &mut Ctx<'_>, all: bool) -> Result {
    let pending = super::members::help_line(ctx).await?;
    let who = if ctx.is_staff() {
        Staff
    } else if ctx.person.role.at_least(Role::Cadre) && ctx.person.org_id.is_some() {
        Cadre
    } else if ctx.person.org_id.is_some() {
        Member
    } else if pending.is_some() {
        Pending
    } else {
        Stranger
    };
    let role = match who {
        Stranger | Pending => t!("help.role_none", locale = ctx.locale).into_owned(),
        _ => ctx.role_label(ctx.person.role),
    };
    let group = ctx.in_group();
    // Where only messages that @ the bot reach it, the title says so.
    let at_first = group
        && !ctx
            .env
            .chat_capabilities(
                &mut *ctx.tx,
                ctx.chat.platform,
                &ctx.chat.chat_id,
                ctx.chat.kind,
            )
            .await?
            .hears_all;
    let title = match (all, at_first) {
        (false, false) => "help.title",
        (true, false) => "help.title_all",
        (false, true) => "help.title_at",
        (true, true) => "help.title_all_at",
    };
    let mut text = t!(
        title,
        locale = ctx.locale,
        bot = ctx.env.settings.bot_name.as_str(),
        role = role
    )
    .into_owned();
    let web = ctx.env.settings.web_enabled();
    let claim_role = ctx.env.settings.wishes.claim_role.as_str();
    let shown = keys(who, group, all, web, claim_role);
    for key in &shown {
        text.push('\n');
        text.push_str(&t!(*key, locale = ctx.locale));
    }
    // What happens next for someone in no org yet.
    if let Some(line) = pending {
        text.push('\n');
        text.push_str(&line);
    } else if who == Stranger {
        text.push('\n');
        text.push_str(&t!("help.first_step", locale = ctx.locale));
    }
    if !all && keys(who, group, true, web, claim_role).len() > shown.len() {
        text.push('\n');
        text.push_str(&t!("help.more", locale = ctx.locale));
    }
    ctx.reply(text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short help fits a phone screen for everyone, everywhere: its
    /// lines plus the title, a next step (strangers, pending) and the
    /// "more" line.
    #[test]
    fn short_help_fits() {
        for who in [Stranger, Pending, Member, Cadre, Staff] {
            for group in [false, true] {
                for claim_role in ["member", "cadre"] {
                    let short = keys(who, group, false, true, claim_role).len();
                    let extra = 2 + usize::from(matches!(who, Stranger | Pending));
                    assert!(
                        short + extra <= MAX_LINES,
                        "{who:?} group={group} {claim_role}: {short} lines"
                    );
                    let all = keys(who, group, true, true, claim_role);
                    assert!(all.len() >= short, "{who:?}");
                }
            }
        }
    }

    /// Each person sees only what they may use.
    #[test]
    fn by_role() {
        let short = |who, group| keys(who, group, false, false, "member");
        let all = |who| keys(who, true, true, true, "member");
        assert!(short(Member, true).contains(&"help.log"));
        assert!(short(Member, true).contains(&"wishes.help.claim"));
        assert!(!keys(Member, true, false, false, "cadre").contains(&"wishes.help.claim"));
        assert!(!all(Stranger).contains(&"help.log"));
        assert!(!all(Pending).contains(&"help.join"));
        assert!(!all(Member).contains(&"help.notice"));
        assert!(!all(Cadre).contains(&"help.role"));
        assert!(short(Cadre, true).contains(&"help.bind"));
        assert!(!short(Cadre, false).contains(&"help.bind"));
        assert!(short(Staff, true).contains(&"help.bind_county"));
        assert!(all(Staff).contains(&"members.help.roster"));
        assert!(!keys(Cadre, false, false, true, "member").is_empty());
        assert!(keys(Cadre, false, false, true, "member").contains(&"web.help"));
        assert!(!keys(Cadre, true, false, true, "member").contains(&"web.help"));
    }
}
