//! Publishing a batch: numbered pages, the board, scheduled publishing.

use super::*;
use crate::command::deadline::When;
use crate::domain::ChatKind;

/// The board is edited at most this often.
const BOARD_EDIT_MS: i64 = 3_000;
/// Wishes on one page at most (pages are also cut to fit one message). A
/// group gets at most 20 messages a minute from the bot, so fewer, fuller
/// pages leave room for claim results: 800 wishes are 8 Telegram pages
/// (11 on QQ's default 3,000 characters) instead of 14.
const PAGE_WISHES: usize = 100;

/// Cut lines into pages that each fit one message.
pub(super) fn pages(lines: &[String], budget: usize) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut len = 0;
    for l in lines {
        let n = l.chars().count() + 1;
        if !cur.is_empty() && (cur.len() >= PAGE_WISHES || len + n > budget) {
            out.push(std::mem::take(&mut cur));
            len = 0;
        }
        len += n;
        cur.push(l.clone());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(super) fn page_budget(env: &Env, platform: Platform) -> usize {
    env.capabilities(platform)
        .max_text_chars
        .saturating_sub(300)
        .max(500)
}

fn board_text(locale: &str, b: &Batch) -> String {
    let mut s = t!(
        "wishes.board",
        locale = locale,
        name = b.name.as_str(),
        taken = b.claimed_n + b.delivered_n,
        total = b.total,
        open = b.open_n,
        delivered = b.delivered_n
    )
    .into_owned();
    if let Some(last) = &b.last_claim {
        s.push('\n');
        s.push_str(&t!(
            "wishes.board_latest",
            locale = locale,
            last = last.as_str()
        ));
    }
    s
}

/// Whether the board of `b` lives in a chat whose platform can edit.
pub(super) fn board_editable(env: &Env, b: &Batch) -> bool {
    b.platform
        .as_deref()
        .and_then(|p| p.parse::<Platform>().ok())
        .is_some_and(|p| env.capabilities(p).edit)
}

/// The one-line progress that stands in for the board where messages cannot
/// be edited; it rides along in the gathered claim results.
pub(super) fn board_summary(locale: &str, b: &Batch) -> String {
    t!(
        "wishes.board",
        locale = locale,
        name = b.name.as_str(),
        taken = b.claimed_n + b.delivered_n,
        total = b.total,
        open = b.open_n,
        delivered = b.delivered_n
    )
    .into_owned()
}

/// Queue a board edit: fold it into a pending one, else an edit no sooner
/// than [`BOARD_EDIT_MS`] after the last. Where the platform cannot edit,
/// nothing: re-posting a board would hold back every later message of the
/// chat (the outbox keeps a chat's order), so the progress line travels in
/// the gathered claim results instead (see [`claim`]).
pub(super) async fn update_board(
    conn: &mut impl Db,
    out: &mut Out,
    env: &Env,
    b: &Batch,
    now_ms: i64,
    locale: &str,
) -> Result {
    let (Some(board), Some(platform), Some(chat)) = (
        b.board_outbox_id,
        b.platform
            .as_deref()
            .and_then(|p| p.parse::<Platform>().ok()),
        b.chat_id.as_deref(),
    ) else {
        return Ok(());
    };
    let key = format!("wishes:board:{}", b.id);
    let text = board_text(locale, b);
    // The board post itself or an edit of it, still waiting: new text only.
    if out.board(&mut *conn, &key, &text).await? {
        return Ok(());
    }
    if !env.capabilities(platform).edit {
        return Ok(());
    }
    let mut msg = Outgoing::new(platform, chat, text);
    msg.edit_of = Some(board);
    let at = b
        .board_edit_at
        .map_or(now_ms, |last| (last + BOARD_EDIT_MS).max(now_ms));
    out.enqueue(&mut *conn, &msg, at, Some(&key), now_ms)
        .await?;
    db::set_board(conn, b.id, None, at).await?;
    Ok(())
}

/// Post a batch into a chat and open it for claims: an intro, the numbered
/// pages, then the board.
#[allow(clippy::too_many_arguments)]
async fn post_batch(
    conn: &mut Conn,
    out: &mut Out,
    env: &Env,
    batch: &Batch,
    quota: Option<i64>,
    chat: (Platform, &str),
    now_ms: i64,
    locale: &str,
) -> Result<()> {
    post_pages(
        &mut *conn, out, env, batch, quota, chat, now_ms, locale, None,
    )
    .await?;
    open_batch(conn, out, batch, quota, chat, now_ms, locale, false).await
}

/// Post the numbered pages of a batch, the first with the intro. `opens`:
/// when claiming opens later (the list goes out ahead, so the rush at that
/// time is not queued behind a dozen pages under the group's message cap).
#[allow(clippy::too_many_arguments)]
async fn post_pages(
    conn: &mut Conn,
    out: &mut Out,
    env: &Env,
    batch: &Batch,
    quota: Option<i64>,
    (platform, chat_id): (Platform, &str),
    now_ms: i64,
    locale: &str,
    opens: Option<&str>,
) -> Result<()> {
    let wishes = db::list(&mut *conn, batch.id, None, None, None).await?;
    let lines: Vec<String> = wishes
        .iter()
        .filter(|w| w.status == WishStatus::Open)
        .map(|w| line(w, false))
        .collect();
    let pages = pages(&lines, page_budget(env, platform));
    // In a group that only hears messages that @ the bot, the claim line
    // says so (wish lists go to groups only).
    let hears_all = env
        .chat_capabilities(&mut *conn, platform, chat_id, ChatKind::Group)
        .await?
        .hears_all;
    let intro_key = if hears_all {
        "wishes.publish.intro"
    } else {
        "wishes.publish.intro_at"
    };
    let quota_text = match quota {
        Some(q) => t!("wishes.publish.quota", locale = locale, n = q).into_owned(),
        None => String::new(),
    };
    for (i, page) in pages.iter().enumerate() {
        let mut text = String::new();
        if i == 0 {
            text.push_str(&t!(
                intro_key,
                locale = locale,
                name = batch.name.as_str(),
                n = lines.len(),
                quota = quota_text.as_str()
            ));
            text.push('\n');
            if let Some(at) = opens {
                text.push_str(&t!("wishes.publish.opens", locale = locale, at = at));
                text.push('\n');
            }
        }
        text.push_str(&page.join("\n"));
        text.push('\n');
        text.push_str(&t!(
            "wishes.publish.page",
            locale = locale,
            page = i + 1,
            pages = pages.len()
        ));
        out.enqueue(
            &mut *conn,
            &Outgoing::new(platform, chat_id, text),
            now_ms,
            None,
            now_ms,
        )
        .await?;
    }
    Ok(())
}

/// Open a batch for claims in a chat and post its board (headed by an
/// "open now" line when the list went out earlier: `announce`).
#[allow(clippy::too_many_arguments)]
async fn open_batch(
    conn: &mut Conn,
    out: &mut Out,
    batch: &Batch,
    quota: Option<i64>,
    (platform, chat_id): (Platform, &str),
    now_ms: i64,
    locale: &str,
    announce: bool,
) -> Result<()> {
    db::set_published(
        &mut *conn,
        batch.id,
        quota,
        platform.as_str(),
        chat_id,
        now_ms,
    )
    .await?;
    let fresh = db::batch(&mut *conn, batch.id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("wish batch {} vanished", batch.id)))?;
    let mut text = String::new();
    if announce {
        text.push_str(&t!(
            "wishes.publish.open_now",
            locale = locale,
            name = batch.name.as_str()
        ));
        text.push('\n');
    }
    text.push_str(&board_text(locale, &fresh));
    let key = format!("wishes:board:{}", batch.id);
    let board = Outgoing::new(platform, chat_id, text);
    let id = out
        .enqueue(&mut *conn, &board, now_ms, Some(&key), now_ms)
        .await?;
    db::set_board(conn, batch.id, Some(id), now_ms).await?;
    Ok(())
}

// ---------------------------------------------------------------- publish

/// `/wishes publish NAME [quota N] [at TIME]` (发布心愿), staff, in a group.
pub async fn publish(
    ctx: &mut Ctx<'_>,
    name: &str,
    quota: Option<u32>,
    at: Option<&When>,
) -> Result {
    if !ctx.is_staff() {
        let text = tr(ctx.locale, "wishes.staff_only");
        ctx.reply(text);
        return Ok(());
    }
    if !ctx.in_group() {
        let text = tr(ctx.locale, "common.group_only");
        ctx.reply(text);
        return Ok(());
    }
    let Some(batch) = db::batch_by_name(ctx.tx, name.trim()).await? else {
        let names: Vec<String> = db::batches(ctx.tx)
            .await?
            .into_iter()
            .take(5)
            .map(|b| b.name)
            .collect();
        let list = if names.is_empty() {
            tr(ctx.locale, "common.none")
        } else {
            names.join("、")
        };
        let text = t!(
            "wishes.no_such_batch",
            locale = ctx.locale,
            name = clip(name, 30),
            list = list
        );
        ctx.reply(text);
        return Ok(());
    };
    if batch.status == "published" {
        let text = t!(
            "wishes.publish.already",
            locale = ctx.locale,
            name = batch.name.as_str()
        );
        ctx.reply(text);
        return Ok(());
    }
    let quota = quota.map(i64::from);
    let (platform, chat_id) = (ctx.msg.platform, ctx.msg.chat_id.clone());
    let now_ms = ctx.now_ms();
    let env = ctx.env;
    let locale = ctx.locale;
    // Its list already went out here (`at TIME` earlier): don't post it again.
    let listed_here = batch.status == "scheduled"
        && batch.platform.as_deref() == Some(platform.as_str())
        && batch.chat_id.as_deref() == Some(chat_id.as_str());
    if let Some(at) = at {
        let Some(when) = at
            .at
            .ok()
            .and_then(|l| crate::service::to_utc(ctx.env.tz, l))
        else {
            let text = tr(ctx.locale, "wishes.usage.publish");
            ctx.reply(text);
            return Ok(());
        };
        db::set_scheduled(
            ctx.tx,
            batch.id,
            quota,
            platform.as_str(),
            &chat_id,
            store::ms(when),
        )
        .await?;
        let local = local_time(env, store::ms(when));
        if !listed_here {
            post_pages(
                ctx.tx,
                &mut ctx.out,
                env,
                &batch,
                quota,
                (platform, &chat_id),
                now_ms,
                locale,
                Some(&local),
            )
            .await?;
        }
        ctx.audit(
            "wish.schedule",
            "wish_batch",
            batch.id,
            json!({"at": store::ms(when), "quota": quota, "chat": chat_id}),
        )
        .await?;
        let text = t!(
            "wishes.publish.scheduled",
            locale = ctx.locale,
            name = batch.name.as_str(),
            at = local
        );
        ctx.reply(text);
        return Ok(());
    }
    if listed_here {
        open_batch(
            ctx.tx,
            &mut ctx.out,
            &batch,
            quota,
            (platform, &chat_id),
            now_ms,
            locale,
            true,
        )
        .await?;
    } else {
        post_batch(
            ctx.tx,
            &mut ctx.out,
            env,
            &batch,
            quota,
            (platform, &chat_id),
            now_ms,
            locale,
        )
        .await?;
    }
    ctx.audit(
        "wish.publish",
        "wish_batch",
        batch.id,
        json!({"quota": quota, "chat": chat_id}),
    )
    .await?;
    Ok(())
}

/// Publish every scheduled batch whose time has come. Idempotent: a batch is
/// published once (its status moves to `published` in the same transaction).
/// Returns how many batches were published. For the scheduler.
pub async fn publish_due(ctx: &mut Ctx<'_, Scheduled>) -> Result<usize> {
    let (env, now_ms) = (ctx.env, ctx.now_ms());
    let due = db::due_scheduled(ctx.tx, now_ms).await?;
    let locale = env.settings.locale.as_str();
    let mut n = 0;
    for b in due {
        let (Some(platform), Some(chat)) = (
            b.platform
                .as_deref()
                .and_then(|p| p.parse::<Platform>().ok()),
            b.chat_id.clone(),
        ) else {
            continue;
        };
        // The list went out when it was scheduled; now claims open.
        open_batch(
            ctx.tx,
            &mut ctx.out,
            &b,
            b.quota,
            (platform, &chat),
            now_ms,
            locale,
            true,
        )
        .await?;
        audit::record(
            ctx.tx,
            &audit::Entry {
                at_ms: now_ms,
                platform,
                actor: "scheduler",
                action: "wish.publish",
                entity: "wish_batch",
                entity_id: Some(b.id.to_string()),
                detail: json!({"quota": b.quota, "chat": chat, "scheduled": true}),
            },
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_fit() {
        let lines: Vec<String> = (0..130)
            .map(|i| format!("{i}. 永清镇中心小学 六年级 姚* · 新华字典1本 · ¥25"))
            .collect();
        let p = pages(&lines, 3700);
        assert!(p.iter().all(|pg| pg.len() <= PAGE_WISHES));
        assert_eq!(p.iter().map(Vec::len).sum::<usize>(), 130);
    }
}
