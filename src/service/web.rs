//! `/web` (后台): a one-time sign-in link to the web dashboard, sent in a
//! private chat. Staff get the whole county; cadres a read-only view of
//! their own org; anyone else a short refusal.
//!
//! The link carries a random token (256 bits); the store keeps only its
//! SHA-256 digest, with the person, the scope, an expiry (10 minutes) and
//! `used_at` (single use). The reply goes through the outbox like every
//! reply.

use chrono::Duration;
use rust_i18n::t;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Ctx, Result};
use crate::domain::Role;
use crate::store::web::{self as store_web, NewLink, Scope};

/// How long a sign-in link works.
pub const LINK_TTL_MINUTES: i64 = 10;

/// A fresh random secret: 32 bytes from the OS, as 64 hex characters.
pub fn new_secret() -> String {
    let mut buf = [0u8; 32];
    // The OS random source failing is not something to limp on from.
    getrandom::fill(&mut buf).expect("OS random source unavailable");
    hex::encode(buf)
}

/// The stored form of a secret: its SHA-256 digest in hex.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `/web` (后台).
pub async fn link(ctx: &mut Ctx<'_>) -> Result {
    let locale = ctx.locale;
    if ctx.in_group() {
        ctx.reply(t!("web.link.private_only", locale = locale));
        return Ok(());
    }
    let Some(base) = ctx
        .env
        .settings
        .web_enabled()
        .then(|| ctx.env.settings.web_base_url())
        .flatten()
        .map(str::to_string)
    else {
        ctx.reply(t!("web.link.disabled", locale = locale));
        return Ok(());
    };
    let (scope, org_id) = match (ctx.person.role, ctx.person.org_id) {
        (Role::Staff, _) => (Scope::Staff, None),
        (Role::Cadre, Some(org)) => (Scope::Cadre, Some(org)),
        _ => {
            let text = match super::members::pending_text(ctx.tx, ctx.person.id, locale).await? {
                Some(waiting) => waiting,
                None => t!("web.link.refused", locale = locale).into_owned(),
            };
            ctx.reply(text);
            return Ok(());
        }
    };
    let token = new_secret();
    let now_ms = ctx.now_ms();
    let expires_at = crate::store::ms(ctx.now + Duration::minutes(LINK_TTL_MINUTES));
    let id = store_web::insert_link(
        ctx.tx,
        &NewLink {
            token_hash: &digest(&token),
            person_id: ctx.person.id,
            scope,
            org_id,
            now_ms,
            expires_at,
        },
    )
    .await?;
    ctx.audit(
        "web.link",
        "web_link",
        id,
        json!({"scope": scope.as_str(), "org": org_id}),
    )
    .await?;
    let url = format!("{base}/login?t={token}");
    let key = match scope {
        Scope::Staff => "web.link.staff",
        Scope::Cadre => "web.link.cadre",
    };
    let text = t!(
        key,
        locale = locale,
        url = url.as_str(),
        minutes = LINK_TTL_MINUTES
    );
    ctx.reply(text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_distinct_and_hashed() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(digest(&a).len(), 64);
        assert_ne!(digest(&a), a);
        assert_eq!(digest(&a), digest(&a));
    }
}
