//! The claim rush: claims decided together, results gathered per chat.

use super::*;
use crate::command::scope::OrgRef;
use crate::command::{Command, Parsed};
use crate::service::{BatchKind, Batched};
use crate::store::{people, updates};

/// Claim results for a chat are gathered this long before they go out.
const CLAIM_WINDOW_MS: i64 = 2_000;

/// One claim message in a group of them (see [`claim_many`]).
pub struct ClaimRequest<'a> {
    pub msg: &'a Incoming,
    pub person: &'a Person,
    pub locale: &'static str,
    /// Ascending, without repeats, not empty.
    pub numbers: &'a [u32],
}

/// `认领 12 15`: claim each number for the person's org, first come first
/// served, and report each number in the chat's gathered result message.
#[tracing::instrument(skip(ctx), fields(person = ctx.person.id))]
pub async fn claim(ctx: &mut Ctx<'_>, numbers: &[u32]) -> Result {
    if numbers.is_empty() {
        let text = tr(ctx.locale, "wishes.claim.how");
        ctx.reply(text);
        return Ok(());
    }
    let req = ClaimRequest {
        msg: ctx.msg,
        person: &ctx.person,
        locale: ctx.locale,
        numbers,
    };
    for out in claim_many(ctx.env, &mut *ctx.tx, &[req]).await? {
        ctx.out.append(out);
    }
    Ok(())
}

/// `县二中认领62号`: a claim with an org name typed first. The sender's
/// own org: a claim like any other. Another org: one line saying so,
/// nothing claimed. A name that is no org: chatter (`昨天认领12`), said
/// only in a private chat.
pub async fn claim_as(ctx: &mut Ctx<'_>, org: &OrgRef, numbers: &[u32]) -> Result {
    let all = orgs::all(ctx.tx).await?;
    let aliases = orgs::aliases(ctx.tx).await?;
    let named = match resolve(org.as_str(), &all, &aliases) {
        OrgMatch::One(o) => o,
        OrgMatch::Many(_) | OrgMatch::None(_) => {
            if !ctx.in_group() {
                let text = t!(
                    "org.not_found",
                    locale = ctx.locale,
                    query = clip(org.as_str(), 20)
                );
                ctx.reply(text);
            }
            return Ok(());
        }
    };
    match ctx
        .person
        .org_id
        .and_then(|id| all.iter().find(|o| o.id == id))
    {
        Some(mine) if mine.id != named.id => {
            let nos = numbers
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            let text = t!(
                "wishes.claim.other_org",
                locale = ctx.locale,
                mine = mine.display(),
                named = named.display(),
                nos = nos
            );
            ctx.reply(text);
            Ok(())
        }
        // The sender's org, or none (the claim path says why not).
        _ => claim(ctx, numbers).await,
    }
}

/// The wish numbers of a message that is nothing but a claim
/// (`认领 12、15`) and that may be handled with others ([`claim_run`]): no
/// reply, attachment or button, from an account the settings don't promote
/// (that happens in `service::dispatch`).
pub(in crate::service) fn plain_claim(
    env: &Env,
    msg: &Incoming,
    parsed: &Parsed,
) -> Option<Vec<u32>> {
    if msg.reply_to.is_some()
        || !msg.attachments.is_empty()
        || msg.callback_id.is_some()
        || env.settings.is_admin(msg.platform, &msg.sender_id)
    {
        return None;
    }
    match parsed {
        Parsed::Command(Command::Claim(n)) if !n.is_empty() => Some(n.clone()),
        _ => None,
    }
}

/// A run of plain claim messages (the engine's batch of them, see
/// `service::run_batch`) with the effects of `service::dispatch` one after
/// another, in a few statements for all of them: the update ids, the
/// senders and the chats in one go each, then [`claim_many`]. `None` for an
/// update handled before; else its replies.
pub(in crate::service) async fn claim_run(
    env: &Env,
    tx: &mut impl Db,
    run: &[(&Incoming, &Batched)],
) -> Result<Vec<Option<Out>>> {
    let ids: Vec<_> = run
        .iter()
        .map(|(m, _)| (m.platform, m.update_id.as_str(), store::ms(m.at)))
        .collect();
    let fresh = updates::mark_many(&mut *tx, &ids).await?;
    // Senders (latest name wins) and chats, each once.
    let mut people_by: HashMap<(Platform, String), Person> = Default::default();
    let mut platforms: Vec<Platform> = run.iter().map(|(m, _)| m.platform).collect();
    platforms.sort_unstable_by_key(|p| p.as_str());
    platforms.dedup();
    for platform in platforms {
        let mut accounts: Vec<(&str, &str)> = Vec::new();
        for (m, _) in run.iter().rev().filter(|(m, _)| m.platform == platform) {
            if !accounts.iter().any(|(u, _)| *u == m.sender_id) {
                accounts.push((&m.sender_id, &m.sender_name));
            }
        }
        let now_ms = run.iter().map(|(m, _)| store::ms(m.at)).max().unwrap_or(0);
        for (user, p) in people::seen_many(&mut *tx, platform, &accounts, now_ms).await? {
            people_by.insert((platform, user), p);
        }
    }
    let mut seen_chats: Vec<(Platform, &str)> = Vec::new();
    for (m, _) in run.iter().rev() {
        if !seen_chats.contains(&(m.platform, m.chat_id.as_str())) {
            seen_chats.push((m.platform, m.chat_id.as_str()));
            let at = store::ms(m.at);
            chats::upsert_seen(
                &mut *tx,
                m.platform,
                &m.chat_id,
                m.chat_kind,
                m.chat_title.as_deref(),
                at,
            )
            .await?;
        }
    }
    let mut reqs = Vec::with_capacity(run.len());
    for (&(m, batched), new) in run.iter().zip(&fresh) {
        let (true, BatchKind::Claim(numbers)) = (*new, &batched.0) else {
            continue;
        };
        let person = people_by
            .get(&(m.platform, m.sender_id.clone()))
            .ok_or_else(|| StoreError::Corrupt(format!("sender {} not stored", m.sender_id)))?;
        reqs.push(ClaimRequest {
            msg: m,
            person,
            locale: crate::i18n::pick(
                person.locale.as_deref(),
                m.sender_language.as_deref(),
                &env.settings.locale,
            ),
            numbers,
        });
    }
    let mut replies = claim_many(env, &mut *tx, &reqs).await?.into_iter();
    Ok(fresh
        .iter()
        .map(|&new| if new { replies.next() } else { None })
        .collect())
}

/// What became of each number of one claim message.
#[derive(Default)]
struct Outcomes {
    ok: Vec<i64>,
    mine: Vec<i64>,
    /// Holder's name → numbers it holds.
    taken: BTreeMap<String, Vec<i64>>,
    over: Vec<i64>,
    missing: Vec<i64>,
    revoked: Vec<i64>,
}

impl Outcomes {
    /// The result lines (`✅ 县一中：12、15`, `❌ …`) in the claimer's language.
    fn lines(&self, l: &str, who: &str, batch: &Batch) -> Vec<String> {
        let quota = batch.quota.unwrap_or(0);
        let mut lines = Vec::new();
        // Every result text takes the same arguments and uses those it needs.
        let mut line = |key: &str, nos: &[i64], holder: &str| {
            if !nos.is_empty() {
                let nos = join_nos(nos);
                lines.push(
                    t!(
                        key,
                        locale = l,
                        org = who,
                        nos = nos,
                        holder = holder,
                        quota = quota,
                        total = batch.total
                    )
                    .into_owned(),
                );
            }
        };
        line("wishes.claim.ok", &self.ok, "");
        line("wishes.claim.mine", &self.mine, "");
        for (holder, nos) in &self.taken {
            line("wishes.claim.taken", nos, holder);
        }
        line("wishes.claim.over_quota", &self.over, "");
        line("wishes.claim.no_such", &self.missing, "");
        line("wishes.claim.revoked", &self.revoked, "");
        lines
    }
}

/// One batch during a group of claims: what was read under its lock and
/// what the group decided.
struct Book {
    batch: Batch,
    /// Org id → wishes held (claimed or delivered).
    held: HashMap<i64, i64>,
    /// Wish number → its state, for the numbers asked for.
    states: HashMap<i64, db::ClaimState>,
    /// Wishes claimed by this group: (request index, wish id, number, org).
    taken: Vec<(usize, i64, i64, i64)>,
    /// The board's "latest" line: the last successful claim.
    last: Option<String>,
}

/// A group of claim messages, in arrival order, in one transaction: one
/// read of each batch's wishes and holdings under the batch lock, decisions
/// in memory (first come first served, quotas), then one write per claimed
/// wish, one for the holdings, one for the audit rows, one board update and
/// one gathered result per chat. [`claim`] is the group of one; the engine's
/// group-commit writer hands whole runs of claim messages to it, so a rush
/// costs a handful of statements per group instead of a dozen per message.
/// Returns each request's replies.
pub async fn claim_many(
    env: &Env,
    conn: &mut impl Db,
    reqs: &[ClaimRequest<'_>],
) -> Result<Vec<Out>> {
    let mut out: Vec<Out> = reqs.iter().map(|_| Out::new()).collect();
    // The batch each chat claims from.
    let mut chat_batch: HashMap<(Platform, &str), Option<i64>> = HashMap::new();
    let mut books: BTreeMap<i64, Book> = BTreeMap::new();
    // Chats whose batch is listed but opens for claims later.
    let mut not_yet: HashMap<(Platform, &str), Batch> = HashMap::new();
    for r in reqs {
        let key = (r.msg.platform, r.msg.chat_id.as_str());
        if chat_batch.contains_key(&key) {
            continue;
        }
        let b = match batch_for(&mut *conn, key.0.as_str(), key.1).await? {
            Ok(b) => Some(b),
            Err(soon) => {
                if let Some(soon) = soon {
                    not_yet.insert(key, soon);
                }
                None
            }
        };
        chat_batch.insert(key, b.as_ref().map(|b| b.id));
        if let Some(b) = b {
            books.entry(b.id).or_insert_with(|| Book {
                batch: b,
                held: HashMap::new(),
                states: HashMap::new(),
                taken: Vec::new(),
                last: None,
            });
        }
    }
    let mut org_ids: Vec<i64> = reqs.iter().filter_map(|r| r.person.org_id).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = orgs::get_many(&mut *conn, &org_ids).await?;
    // Under each batch's lock (ascending ids: one lock order), read what the
    // decisions need.
    for (id, book) in &mut books {
        // The counters may have moved before the lock was ours.
        if let Some(fresh) = db::lock_batch(&mut *conn, *id).await? {
            book.batch = fresh;
        }
        let mut nos: Vec<i64> = reqs
            .iter()
            .filter(|r| {
                chat_batch.get(&(r.msg.platform, r.msg.chat_id.as_str())) == Some(&Some(*id))
            })
            .flat_map(|r| r.numbers.iter().map(|&n| i64::from(n)))
            .filter(|&n| n >= 1 && n <= book.batch.total)
            .collect();
        nos.sort_unstable();
        nos.dedup();
        book.states = db::claim_states(&mut *conn, *id, &nos)
            .await?
            .into_iter()
            .map(|s| (s.no, s))
            .collect();
        // Quotas matter only if something asked for is still open; in the
        // thick of a rush most claims are for wishes already gone.
        if book.states.values().any(|s| s.status == WishStatus::Open) {
            book.held = db::holdings(&mut *conn, *id, &org_ids)
                .await?
                .into_iter()
                .collect();
        }
    }
    // Decide, in arrival order.
    let cadre_only = env.settings.wishes.claim_role == "cadre";
    let mut results: Vec<Option<(i64, Vec<String>)>> = Vec::with_capacity(reqs.len());
    for (i, r) in reqs.iter().enumerate() {
        let l = r.locale;
        let batch_id = chat_batch
            .get(&(r.msg.platform, r.msg.chat_id.as_str()))
            .copied()
            .flatten();
        let decided = match (batch_id, r.person.org_id.and_then(|o| orgs.get(&o))) {
            (None, _) => Err(no_batch_text(
                env,
                l,
                not_yet.get(&(r.msg.platform, r.msg.chat_id.as_str())),
            )),
            // Not a member of any org (maybe waiting to join one).
            (_, None) => {
                Err(crate::service::members::not_member_text(&mut *conn, r.person, l).await?)
            }
            _ if cadre_only && !r.person.role.at_least(Role::Cadre) => {
                Err(tr(l, "wishes.claim.cadre_only"))
            }
            (Some(batch_id), Some(org)) => Ok((batch_id, org)),
        };
        let (batch_id, org) = match decided {
            Ok(found) => found,
            Err(text) => {
                out[i].reply(r.msg, text);
                results.push(None);
                continue;
            }
        };
        let Some(book) = books.get_mut(&batch_id) else {
            results.push(None);
            continue;
        };
        let quota = book.batch.quota.unwrap_or(i64::MAX);
        let mut o = Outcomes::default();
        for &n in r.numbers {
            let n = i64::from(n);
            let Some(st) = book.states.get_mut(&n) else {
                o.missing.push(n);
                continue;
            };
            match (st.status, st.org_id) {
                (WishStatus::Open, _) => {
                    let held = book.held.entry(org.id).or_default();
                    if *held >= quota {
                        o.over.push(n);
                    } else {
                        *held += 1;
                        st.status = WishStatus::Claimed;
                        st.org_id = Some(org.id);
                        st.holder = Some(org.display().to_string());
                        book.taken.push((i, st.id, n, org.id));
                        o.ok.push(n);
                    }
                }
                (WishStatus::Revoked, _) | (_, None) => o.revoked.push(n),
                (_, Some(holder)) if holder == org.id => o.mine.push(n),
                (_, Some(_)) => o
                    .taken
                    .entry(st.holder.clone().unwrap_or_default())
                    .or_default()
                    .push(n),
            }
        }
        let who = org.display();
        if !o.ok.is_empty() {
            book.last = Some(format!("{who} {}", join_nos(&o.ok)));
        }
        results.push(Some((batch_id, o.lines(l, who, &book.batch))));
    }
    // Write what was decided.
    for book in books.values_mut() {
        if book.taken.is_empty() {
            continue;
        }
        let mut added: BTreeMap<i64, i64> = BTreeMap::new();
        let mut entries = Vec::with_capacity(book.taken.len());
        let mut takes = Vec::with_capacity(book.taken.len());
        for &(i, wish_id, no, org_id) in &book.taken {
            let r = &reqs[i];
            let at = store::ms(r.msg.at);
            takes.push((wish_id, org_id, r.person.id, at));
            *added.entry(org_id).or_default() += 1;
            entries.push(audit::Entry {
                at_ms: at,
                platform: r.msg.platform,
                actor: &r.msg.sender_id,
                action: "wish.claim",
                entity: "wish",
                entity_id: Some(wish_id.to_string()),
                detail: json!({"batch": book.batch.id, "no": no, "org": org_id}),
            });
        }
        db::take(&mut *conn, &takes).await?;
        let added: Vec<(i64, i64)> = added.into_iter().collect();
        db::add_holdings(&mut *conn, book.batch.id, &added).await?;
        audit::record_many(&mut *conn, &entries).await?;
        let k = book.taken.len() as i64;
        book.batch = db::bump(&mut *conn, book.batch.id, -k, k, 0, book.last.as_deref()).await?;
        let (last_i, ..) = book.taken[book.taken.len() - 1];
        let last = &reqs[last_i];
        if board_editable(env, &book.batch) {
            let at = store::ms(last.msg.at);
            update_board(
                &mut *conn,
                &mut out[last_i],
                env,
                &book.batch,
                at,
                last.locale,
            )
            .await?;
        } else {
            // Text fallback: the gathered result of each chat that claimed
            // carries the progress line, after that chat's last success.
            let mut done: Vec<(Platform, &str)> = Vec::new();
            for &(i, ..) in book.taken.iter().rev() {
                let r = &reqs[i];
                let chat = (r.msg.platform, r.msg.chat_id.as_str());
                if done.contains(&chat) {
                    continue;
                }
                done.push(chat);
                if let Some(Some((_, lines))) = results.get_mut(i) {
                    lines.push(board_summary(r.locale, &book.batch));
                }
            }
        }
    }
    // One gathered message per chat.
    let mut chats: Vec<(Platform, &str)> = Vec::new();
    for r in reqs {
        let key = (r.msg.platform, r.msg.chat_id.as_str());
        if !chats.contains(&key) {
            chats.push(key);
        }
    }
    for (platform, chat_id) in chats {
        let parts: Vec<(usize, &[String])> = results
            .iter()
            .enumerate()
            .filter_map(|(i, res)| {
                let r = &reqs[i];
                match res {
                    Some((_, lines)) if r.msg.platform == platform && r.msg.chat_id == chat_id => {
                        Some((i, lines.as_slice()))
                    }
                    _ => None,
                }
            })
            .collect();
        if !parts.is_empty() {
            gather(env, conn, reqs, &parts, &mut out).await?;
        }
    }
    Ok(out)
}

/// Fold the result lines of one chat's requests (`parts`: request index and
/// its lines, in order) into the chat's pending gathered message; what does
/// not fit, or finds none, goes into a new one that waits
/// [`CLAIM_WINDOW_MS`] for more.
async fn gather(
    env: &Env,
    conn: &mut impl Db,
    reqs: &[ClaimRequest<'_>],
    parts: &[(usize, &[String])],
    out: &mut [Out],
) -> Result {
    let first = reqs[parts[0].0].msg;
    let (platform, chat_id) = (first.platform, first.chat_id.clone());
    let key = format!("wishes:claims:{platform}:{chat_id}");
    let max = env.capabilities(platform).max_text_chars;
    // The message being filled: the pending row (if any), its text, and the
    // lines added to it here.
    let mut pending = Out::pending(&mut *conn, &key).await?;
    // Usually everything fits into one message: merge once.
    let all: Vec<String> = parts.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
    let base = pending.as_ref().map_or("", |p| p.message.text.as_str());
    let merged = merge_lines(base, &all);
    if merged.chars().count() <= max {
        let fill = Fill {
            owner: parts[0].0,
            pending,
            merged: Some(merged),
            added: &all,
        };
        return flush(conn, reqs, fill, &key, out).await;
    }
    let mut text = pending.as_ref().map(|p| p.message.text.clone());
    let mut added: Vec<String> = Vec::new();
    let mut owner = parts[0].0;
    for &(i, lines) in parts {
        if let Some(t) = &text {
            let merged = merge_lines(t, lines);
            if merged.chars().count() <= max {
                text = Some(merged);
                added.extend(lines.iter().cloned());
                continue;
            }
            let fill = Fill {
                owner,
                pending: pending.take(),
                merged: None,
                added: &added,
            };
            flush(conn, reqs, fill, &key, out).await?;
        }
        text = Some(lines.join("\n"));
        added = lines.to_vec();
        owner = i;
    }
    let fill = Fill {
        owner,
        pending,
        merged: None,
        added: &added,
    };
    flush(conn, reqs, fill, &key, out).await
}

/// One gathered message to write ([`flush`]).
struct Fill<'a> {
    /// The request a new row is written for.
    owner: usize,
    /// The pending row to fold into, if any.
    pending: Option<Pending>,
    /// The pending row's text with `added` merged in, when already known.
    merged: Option<String>,
    added: &'a [String],
}

/// Write one gathered message: into the pending row when it is still
/// unleased, else as a new row owned by request `fill.owner`.
async fn flush(
    conn: &mut impl Db,
    reqs: &[ClaimRequest<'_>],
    fill: Fill<'_>,
    key: &str,
    out: &mut [Out],
) -> Result {
    let Fill {
        owner,
        pending,
        merged,
        added,
    } = fill;
    if added.is_empty() {
        return Ok(());
    }
    if let Some(pending) = pending {
        let folded = out[owner].fold(&mut *conn, pending, |mut msg| {
            msg.text = merged.unwrap_or_else(|| merge_lines(&msg.text, added));
            msg
        });
        if folded.await? {
            return Ok(());
        }
    }
    let r = reqs[owner].msg;
    let msg = Outgoing::new(r.platform, r.chat_id.clone(), merge_lines("", added));
    let at = r.at + Duration::milliseconds(CLAIM_WINDOW_MS);
    out[owner].send_keyed(msg, at, key);
    Ok(())
}

/// Add result lines to a gathered message: a `✅ ORG：…` line joins the same
/// org's earlier `✅` line (`✅ 县一中：12、15`); other lines are appended.
fn merge_lines<'a>(existing: &'a str, new: &'a [String]) -> String {
    use std::borrow::Cow;
    let mut lines: Vec<Cow<'a, str>> = existing.lines().map(Cow::Borrowed).collect();
    for l in new {
        if l.starts_with('📋') {
            // Only the latest progress line counts, at the end.
            lines.retain(|x| !x.starts_with('📋'));
            lines.push(Cow::Borrowed(l));
            continue;
        }
        let merged = l.starts_with('✅')
            && l.split_once('：').is_some_and(|(head, tail)| {
                let same_org = |x: &&mut Cow<'a, str>| {
                    x.strip_prefix(head)
                        .is_some_and(|rest| rest.starts_with('：'))
                };
                match lines.iter_mut().find(same_org) {
                    Some(x) => {
                        let x = x.to_mut();
                        x.push('、');
                        x.push_str(tail);
                        true
                    }
                    None => false,
                }
            });
        if !merged {
            // New results go above the progress line.
            let at = lines
                .iter()
                .position(|x| x.starts_with('📋'))
                .unwrap_or(lines.len());
            lines.insert(at, Cow::Borrowed(l));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_gathers_an_orgs_numbers() {
        let merged = merge_lines(
            "✅ 县一中：12",
            &[
                "✅ 县二中：3".into(),
                "✅ 县一中：15".into(),
                "❌ 县三中：没有 900 号".into(),
            ],
        );
        assert_eq!(
            merged,
            "✅ 县一中：12、15\n✅ 县二中：3\n❌ 县三中：没有 900 号"
        );
    }
}
