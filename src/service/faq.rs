//! `/faq` (常见问题) and questions that @-mention the bot.
//!
//! Anyone may ask; committee staff add and delete. The shipped default
//! (`data/faq.md`) is put into the table the first time the FAQ is used, so
//! its entries have numbers and staff can delete or replace them.

use rust_i18n::t;
use serde_json::json;

use super::{Ctx, Result, clip};
use crate::command::faq::FaqArgs;
use crate::faq::{ANSWER_MIN, DEFAULT_FAQ, MAX_ANSWER, MAX_QUESTION, parse_markdown, rank};
use crate::store::{faq, kv};

const SEEDED_KEY: &str = "faq_default_seeded";
/// Questions listed by `/faq` alone.
const LIST_MAX: usize = 30;
/// Other close questions named under an answer or a miss.
const ALSO_MAX: usize = 3;

/// Put the default FAQ in once per database.
async fn ensure_seeded(ctx: &mut Ctx<'_>) -> Result {
    if kv::get(ctx.tx, SEEDED_KEY).await?.is_some() {
        return Ok(());
    }
    let now = ctx.now_ms();
    for (q, a) in parse_markdown(DEFAULT_FAQ) {
        if !faq::has_question(ctx.tx, &q).await? {
            faq::add(ctx.tx, &q, &a, "default", now).await?;
        }
    }
    kv::set(ctx.tx, SEEDED_KEY, "1").await
}

pub async fn run(ctx: &mut Ctx<'_>, args: FaqArgs) -> Result {
    ensure_seeded(ctx).await?;
    match args {
        FaqArgs::List => list(ctx).await,
        FaqArgs::Add { question, answer } => add(ctx, &question, &answer).await,
        FaqArgs::Del(n) => del(ctx, n).await,
        FaqArgs::Ask(words) => ask(ctx, &words).await,
    }
}

async fn list(ctx: &mut Ctx<'_>) -> Result {
    let all = faq::all(ctx.tx).await?;
    let loc = ctx.locale;
    let mut lines = vec![t!("faq.list_title", locale = loc, n = all.len()).into_owned()];
    for e in all.iter().take(LIST_MAX) {
        lines.push(format!("#{} {}", e.id, e.question));
    }
    if all.len() > LIST_MAX {
        lines.push(t!("faq.list_more", locale = loc, n = all.len() - LIST_MAX).into_owned());
    }
    lines.push(t!("faq.list_hint", locale = loc).into_owned());
    ctx.reply(lines.join("\n"));
    Ok(())
}

async fn add(ctx: &mut Ctx<'_>, question: &str, answer: &str) -> Result {
    let loc = ctx.locale;
    if !ctx.is_staff() {
        let text = t!("faq.need_staff", locale = loc);
        ctx.reply(text);
        return Ok(());
    }
    if question.chars().count() > MAX_QUESTION || answer.chars().count() > MAX_ANSWER {
        let text = t!(
            "faq.too_long",
            locale = loc,
            q = MAX_QUESTION,
            a = MAX_ANSWER
        );
        ctx.reply(text);
        return Ok(());
    }
    let now = ctx.now_ms();
    let id = faq::add(ctx.tx, question, answer, "chat", now).await?;
    ctx.audit("faq.add", "faq", id, json!({ "question": question }))
        .await?;
    let text = t!("faq.added", locale = loc, id = id, q = clip(question, 40));
    ctx.reply(text);
    Ok(())
}

async fn del(ctx: &mut Ctx<'_>, id: i64) -> Result {
    let loc = ctx.locale;
    if !ctx.is_staff() {
        let text = t!("faq.need_staff", locale = loc);
        ctx.reply(text);
        return Ok(());
    }
    let now = ctx.now_ms();
    match faq::delete(ctx.tx, id, now).await? {
        Some(e) => {
            ctx.audit("faq.del", "faq", id, json!({ "question": e.question }))
                .await?;
            let text = t!(
                "faq.deleted",
                locale = loc,
                id = id,
                q = clip(&e.question, 40)
            );
            ctx.reply(text);
        }
        None => {
            let text = t!("faq.no_such", locale = loc, id = id);
            ctx.reply(text);
        }
    }
    Ok(())
}

/// Answer `words` with the best entry, or say none fits and name the closest.
pub async fn ask(ctx: &mut Ctx<'_>, words: &str) -> Result {
    let loc = ctx.locale;
    let words: String = words.chars().take(MAX_QUESTION).collect();
    let all = faq::all(ctx.tx).await?;
    let ranked = rank(&words, &all);
    let text = match ranked.first() {
        Some((best, s)) if *s >= ANSWER_MIN => {
            let mut text = t!(
                "faq.answer",
                locale = loc,
                id = best.id,
                q = best.question.as_str(),
                a = best.answer.as_str()
            )
            .into_owned();
            let also: Vec<String> = ranked[1..]
                .iter()
                .filter(|(_, s)| *s >= ANSWER_MIN)
                .take(ALSO_MAX)
                .map(|(e, _)| format!("#{} {}", e.id, e.question))
                .collect();
            if !also.is_empty() {
                text.push('\n');
                text.push_str(&t!("faq.also", locale = loc, list = also.join("；")));
            }
            text
        }
        Some(_) => {
            let close: Vec<String> = ranked
                .iter()
                .take(ALSO_MAX)
                .map(|(e, _)| format!("#{} {}", e.id, e.question))
                .collect();
            t!(
                "faq.not_found_close",
                locale = loc,
                q = clip(&words, 20),
                list = close.join("\n")
            )
            .into_owned()
        }
        None => t!("faq.not_found", locale = loc, q = clip(&words, 20)).into_owned(),
    };
    ctx.reply(text);
    Ok(())
}

/// A message that @-mentions the bot but is no command: a question.
/// Returns whether it was taken as one.
pub async fn mention(ctx: &mut Ctx<'_>) -> Result<bool> {
    let at = format!("@{}", ctx.env.settings.bot_name);
    if !ctx.msg.mentions_bot && !ctx.text.contains(&at) {
        return Ok(false);
    }
    let question = ctx.text.replace(&at, " ");
    let question = question.trim().to_string();
    if question.is_empty() {
        return Ok(false);
    }
    ensure_seeded(ctx).await?;
    ask(ctx, &question).await?;
    Ok(true)
}
