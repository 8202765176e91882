//! Transitions of a held wish (release, done, revoke) and overdue ones.

use super::*;

// ---------------------------------------------------------------- transitions

/// The wish `no` of the current batch, or a reply saying why not.
async fn find(ctx: &mut Ctx<'_>, no: u32) -> Result<Option<(Batch, Wish)>> {
    let Some(batch) = current(ctx).await? else {
        return Ok(None);
    };
    // Every caller changes the wish: take the batch's lock before reading it
    // (the lock order of claims, see store::wishes).
    let batch = db::lock_batch(ctx.tx, batch.id).await?.unwrap_or(batch);
    Ok(wish_no(ctx, &batch, no).await?.map(|w| (batch, w)))
}

/// May the acting person act for the org holding `w`? Replies when not.
async fn may_act_for_holder(ctx: &mut Ctx<'_>, w: &Wish) -> Result<Option<i64>> {
    let Some(holder) = w.org_id.filter(|_| w.status == WishStatus::Claimed) else {
        let text = t!(
            "wishes.not_claimed",
            locale = ctx.locale,
            no = w.no,
            status = status_label(ctx.locale, w.status)
        );
        ctx.reply(text);
        return Ok(None);
    };
    if ctx.is_staff() || cadre_of(ctx, Some(holder)) {
        return Ok(Some(holder));
    }
    let name = orgs::get(ctx.tx, holder)
        .await?
        .map(|o| o.display().to_string())
        .unwrap_or_default();
    let text = if ctx.person.org_id == Some(holder) {
        // A member of the holding org: its cadres act for it.
        t!(
            "wishes.cadres_only",
            locale = ctx.locale,
            no = w.no,
            org = name
        )
        .into_owned()
    } else {
        match crate::service::members::pending_text(&mut *ctx.tx, ctx.person.id, ctx.locale).await?
        {
            Some(waiting) => waiting,
            None => t!(
                "wishes.not_yours",
                locale = ctx.locale,
                no = w.no,
                org = name
            )
            .into_owned(),
        }
    };
    ctx.reply(text);
    Ok(None)
}

/// `/release 12` (放弃): give a claimed wish back to the pool.
pub async fn release(ctx: &mut Ctx<'_>, no: u32) -> Result {
    let Some((batch, w)) = find(ctx, no).await? else {
        return Ok(());
    };
    let Some(holder) = may_act_for_holder(ctx, &w).await? else {
        return Ok(());
    };
    if !db::release(ctx.tx, &w, holder).await? {
        return Ok(());
    }
    ctx.audit(
        "wish.release",
        "wish",
        w.id,
        json!({"batch": batch.id, "no": w.no, "org": holder}),
    )
    .await?;
    let fresh = db::bump(ctx.tx, batch.id, 1, -1, 0, None).await?;
    let now_ms = ctx.now_ms();
    update_board(ctx.tx, &mut ctx.out, ctx.env, &fresh, now_ms, ctx.locale).await?;
    let text = t!("wishes.released", locale = ctx.locale, no = w.no);
    ctx.reply(text);
    Ok(())
}

/// `/done 12` (圆梦 12) with a photo, or as a reply to one (see
/// [`super::proof`]); the photo's file reference is stored with the delivery.
pub async fn done(ctx: &mut Ctx<'_>, no: u32) -> Result {
    let Some((batch, w)) = find(ctx, no).await? else {
        return Ok(());
    };
    let Some(holder) = may_act_for_holder(ctx, &w).await? else {
        return Ok(());
    };
    let proof = match crate::service::proof::resolve(ctx.tx, ctx.msg).await? {
        Proof::Photo(file_ref) => file_ref,
        Proof::ReplyWithoutPhoto => {
            let text = t!("proof.reply_not_photo", locale = ctx.locale, no = w.no);
            ctx.reply(text);
            return Ok(());
        }
        Proof::Missing => {
            let text = t!("wishes.done.need_photo", locale = ctx.locale, no = w.no);
            ctx.reply(text);
            return Ok(());
        }
    };
    let now_ms = ctx.now_ms();
    if !db::deliver(ctx.tx, &w, holder, &proof, now_ms).await? {
        return Ok(());
    }
    ctx.audit(
        "wish.deliver",
        "wish",
        w.id,
        json!({"batch": batch.id, "no": w.no, "org": holder, "proof": proof}),
    )
    .await?;
    let fresh = db::bump(ctx.tx, batch.id, 0, -1, 1, None).await?;
    update_board(ctx.tx, &mut ctx.out, ctx.env, &fresh, now_ms, ctx.locale).await?;
    let text = t!(
        "wishes.delivered",
        locale = ctx.locale,
        no = w.no,
        item = w.item.as_str()
    );
    ctx.reply(text);
    Ok(())
}

/// `/revoke 12 原因` (下架), staff: take a wish down unless delivered and
/// tell the holding org's groups.
pub async fn revoke(ctx: &mut Ctx<'_>, no: u32, reason: &str) -> Result {
    if !ctx.is_staff() {
        let text = tr(ctx.locale, "wishes.staff_only");
        ctx.reply(text);
        return Ok(());
    }
    let Some((batch, w)) = find(ctx, no).await? else {
        return Ok(());
    };
    let reason = clip(reason.trim(), 60);
    let now_ms = ctx.now_ms();
    if !db::revoke(ctx.tx, &w, &reason, now_ms).await? {
        let text = t!(
            "wishes.cannot_revoke",
            locale = ctx.locale,
            no = w.no,
            status = status_label(ctx.locale, w.status)
        );
        ctx.reply(text);
        return Ok(());
    }
    ctx.audit(
        "wish.revoke",
        "wish",
        w.id,
        json!({"batch": batch.id, "no": w.no, "org": w.org_id, "reason": reason}),
    )
    .await?;
    let (open, claimed) = match w.status {
        WishStatus::Claimed => (0, -1),
        _ => (-1, 0),
    };
    let fresh = db::bump(ctx.tx, batch.id, open, claimed, 0, None).await?;
    update_board(ctx.tx, &mut ctx.out, ctx.env, &fresh, now_ms, ctx.locale).await?;
    if let (WishStatus::Claimed, Some(org)) = (w.status, w.org_id) {
        for g in chats::groups_of_org(ctx.tx, org).await? {
            let text = t!(
                "wishes.revoked_notice",
                locale = ctx.locale,
                no = w.no,
                item = w.item.as_str(),
                reason = reason.as_str()
            );
            ctx.out.send(Outgoing::new(g.platform, g.chat_id, text));
        }
    }
    let text = t!(
        "wishes.revoked",
        locale = ctx.locale,
        no = w.no,
        reason = reason.as_str()
    );
    ctx.reply(text);
    Ok(())
}

// ---------------------------------------------------------------- overdue

/// Claimed wishes not delivered after `overdue_days`, by org.
async fn overdue_by_org(
    conn: &mut Conn,
    env: &Env,
    now: DateTime<Utc>,
    reminded_before_ms: i64,
) -> Result<BTreeMap<i64, Vec<Wish>>> {
    let days = env.settings.wishes.overdue_days;
    let before = store::ms(now - Duration::days(days));
    let mut by_org: BTreeMap<i64, Vec<Wish>> = BTreeMap::new();
    for w in db::overdue(conn, before, reminded_before_ms).await? {
        if let Some(org) = w.org_id {
            by_org.entry(org).or_default().push(w);
        }
    }
    Ok(by_org)
}

/// `/wishes overdue` (staff): who holds wishes past the delivery period.
pub async fn overdue(ctx: &mut Ctx<'_>) -> Result {
    if !ctx.is_staff() {
        let text = tr(ctx.locale, "wishes.staff_only");
        ctx.reply(text);
        return Ok(());
    }
    let by_org = overdue_by_org(ctx.tx, ctx.env, ctx.now, i64::MAX).await?;
    let days = ctx.env.settings.wishes.overdue_days;
    if by_org.is_empty() {
        let text = t!("wishes.overdue.none", locale = ctx.locale, days = days);
        ctx.reply(text);
        return Ok(());
    }
    let mut text = t!(
        "wishes.overdue.title",
        locale = ctx.locale,
        days = days,
        n = by_org.len()
    )
    .into_owned();
    for (org, ws) in &by_org {
        let name = orgs::get(ctx.tx, *org)
            .await?
            .map(|o| o.display().to_string())
            .unwrap_or_default();
        let nos: Vec<i64> = ws.iter().map(|w| w.no).collect();
        text.push_str(&format!("\n{name}：{}", join_nos(&nos)));
    }
    ctx.reply(text);
    Ok(())
}

/// Remind each org holding overdue wishes, in its bound groups, at most once
/// a week per wish. Idempotent within the week. Returns the reminders queued.
/// For the scheduler.
pub async fn remind_overdue(ctx: &mut Ctx<'_, Scheduled>) -> Result<usize> {
    let (env, now) = (ctx.env, ctx.now);
    let now_ms = store::ms(now);
    let week_ago = store::ms(now - Duration::days(7));
    let locale = env.settings.locale.as_str();
    let days = env.settings.wishes.overdue_days;
    let by_org = overdue_by_org(ctx.tx, env, now, week_ago).await?;
    let mut sent = 0;
    for (org, ws) in &by_org {
        let items: Vec<String> = ws.iter().map(|w| format!("{} {}", w.no, w.item)).collect();
        let groups = chats::groups_of_org(ctx.tx, *org).await?;
        for g in &groups {
            let text = t!(
                "wishes.overdue.reminder",
                locale = locale,
                days = days,
                list = items.join("、")
            );
            ctx.out
                .enqueue(
                    ctx.tx,
                    &Outgoing::new(g.platform, g.chat_id.clone(), text),
                    now_ms,
                    None,
                    now_ms,
                )
                .await?;
            sent += 1;
        }
        for w in ws {
            db::mark_reminded(ctx.tx, w.id, now_ms).await?;
        }
        audit::record(
            ctx.tx,
            &audit::Entry {
                at_ms: now_ms,
                platform: groups.first().map(|g| g.platform).unwrap_or(Platform::Console),
                actor: "scheduler",
                action: "wish.remind",
                entity: "org",
                entity_id: Some(org.to_string()),
                detail: json!({"wishes": ws.iter().map(|w| w.id).collect::<Vec<_>>(), "groups": groups.len()}),
            },
        )
        .await?;
    }
    Ok(sent)
}
