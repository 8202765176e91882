//! `/help` (帮助): short, and only what this person can do here.

use super::{Ctx, Result};
use crate::domain::Role;
use rust_i18n::t;

/// Help lines: (least role, where it works, locale key). Each line is one
/// command, its Chinese keyword and one example.
const LINES: &[(Role, Where, &str)] = &[
    (Role::Member, Where::Anywhere, "help.iam"),
    (Role::Member, Where::Anywhere, "help.whoami"),
    (Role::Member, Where::Anywhere, "help.orgs"),
    (Role::Member, Where::Anywhere, "help.join"),
    (Role::Member, Where::Anywhere, "help.mine"),
    (Role::Member, Where::Anywhere, "help.faq"),
    (Role::Member, Where::Anywhere, "wishes.help.list"),
    (Role::Member, Where::Anywhere, "wishes.help.claim"),
    (Role::Member, Where::Anywhere, "help.help"),
    (Role::Cadre, Where::Anywhere, "help.log"),
    (Role::Cadre, Where::Anywhere, "help.undo"),
    (Role::Cadre, Where::Anywhere, "help.stats"),
    (Role::Cadre, Where::Anywhere, "help.notice"),
    (Role::Cadre, Where::Anywhere, "help.notice_status"),
    (Role::Cadre, Where::Anywhere, "help.event"),
    (Role::Cadre, Where::Anywhere, "help.report"),
    (Role::Cadre, Where::Anywhere, "help.stars"),
    (Role::Cadre, Where::Group, "help.bind"),
    (Role::Cadre, Where::Anywhere, "wishes.help.mine"),
    (Role::Cadre, Where::Anywhere, "wishes.help.done"),
    (Role::Cadre, Where::Anywhere, "members.help.members"),
    (Role::Cadre, Where::Anywhere, "members.help.approve"),
    (Role::Cadre, Where::Anywhere, "members.help.invite"),
    (Role::Cadre, Where::Anywhere, "members.help.remove"),
    (Role::Staff, Where::Anywhere, "help.role"),
    (Role::Staff, Where::Anywhere, "members.help.roster"),
    (Role::Staff, Where::Group, "help.bind_county"),
    (Role::Staff, Where::Anywhere, "wishes.help.publish"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Anywhere,
    Group,
}

pub async fn help(ctx: &mut Ctx<'_>) -> Result {
    let role = ctx.person.role;
    let mut text = t!(
        "help.title",
        locale = ctx.locale,
        bot = ctx.env.settings.bot_name.as_str(),
        role = ctx.role_label(role)
    )
    .into_owned();
    for (least, place, key) in LINES {
        if role.at_least(*least) && (*place == Where::Anywhere || ctx.in_group()) {
            text.push('\n');
            text.push_str(&t!(*key, locale = ctx.locale));
        }
    }
    // The dashboard line only where it is switched on.
    if role.at_least(Role::Cadre) && ctx.env.settings.web_enabled() {
        text.push('\n');
        text.push_str(&t!("web.help", locale = ctx.locale));
    }
    if let Some(line) = super::members::help_line(ctx).await? {
        // Waiting for approval: what happens next, and the faster way.
        text.push('\n');
        text.push_str(&line);
    } else if ctx.person.org_id.is_none() && !ctx.is_staff() {
        text.push('\n');
        text.push_str(&t!("help.first_step", locale = ctx.locale));
    }
    ctx.reply(text);
    Ok(())
}
