//! The OpenAPI client: the access token (refreshed before it expires, and
//! at once after a 401), JSON requests with `Authorization: QQBot TOKEN`,
//! and what a failed request means for the message ([`Failure`]).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

/// Production OpenAPI base.
pub const API_BASE: &str = "https://api.sgroup.qq.com";
/// Sandbox OpenAPI base (a bot under test, its sandbox groups).
pub const SANDBOX_API_BASE: &str = "https://sandbox.api.sgroup.qq.com";
/// Access-token endpoint.
pub const AUTH_URL: &str = "https://bots.qq.com/app/getAppAccessToken";
/// Refresh this long before the token's expiry (the platform hands out a
/// new token only in the last 60 s; the old one stays valid meanwhile).
const REFRESH_BEFORE: Duration = Duration::from_secs(50);

/// A request that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No answer, or not one we could read.
    Network(String),
    /// The platform answered with an error: HTTP status, its `code` (0
    /// when none) and `message`.
    Http {
        status: u16,
        code: i64,
        message: String,
    },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Network(e) => write!(f, "network: {e}"),
            ApiError::Http {
                status,
                code,
                message,
            } => write!(f, "HTTP {status} code {code}: {message}"),
        }
    }
}

/// What a refused send means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The anchor (`msg_id` / `event_id`) can take no more replies: expired
    /// or used up. Take another.
    AnchorDead,
    /// This `msg_id` + `msg_seq` was sent before: the earlier try got
    /// through.
    Duplicate,
    /// Unprompted messages are off in this chat (the owner's switch).
    ActiveRefused,
    /// The bot is no longer in the group (or the user blocked it).
    ChatGone,
    /// Too fast: wait.
    RateLimited,
    /// Worth another try later (network, 5xx, token trouble).
    Transient,
    /// The message itself is refused.
    Rejected,
}

/// Codes met in the wild for a reply whose anchor is dead: expired
/// (`40034005` "回复消息msg_id已过期", `40034031` "msgid已经过期"), used up, or
/// refused as a reference (`304027`, `304103`, `40034024`–`40034027`,
/// `40034128`). Not in bot-docs; collected from public adapters' code (see
/// the module doc of `chat::qqbot`).
const ANCHOR_DEAD: &[i64] = &[
    40034005, 40034031, 40034128, 304027, 304103, 40034024, 40034025, 40034026, 40034027,
];
/// The bot is not in the group any more, or the group is gone.
const CHAT_GONE: &[i64] = &[40054003, 40034101, 1100104, 1100301, 40054004, 40054013];

/// Sort an error by what the dispatcher should do next.
pub fn classify(e: &ApiError) -> Failure {
    let ApiError::Http { status, code, .. } = e else {
        return Failure::Transient;
    };
    let code = *code;
    if ANCHOR_DEAD.contains(&code) {
        Failure::AnchorDead
    } else if code == 40054005 {
        Failure::Duplicate
    } else if code == 40034102 || code == 40034105 {
        Failure::ActiveRefused
    } else if CHAT_GONE.contains(&code) {
        Failure::ChatGone
    } else if *status == 429 || code == 22009 || code == 40034100 || code == 1100100 {
        Failure::RateLimited
    } else if *status >= 500 || *status == 401 || code == 11242 || code == 11252 {
        Failure::Transient
    } else {
        Failure::Rejected
    }
}

struct Token {
    value: String,
    until: Instant,
}

/// The OpenAPI client of one bot.
pub struct Api {
    http: reqwest::Client,
    base: String,
    auth_url: String,
    app_id: String,
    secret: String,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl Api {
    pub fn new(cfg: &crate::config::QqBotSettings) -> anyhow::Result<Api> {
        let base = cfg.api_url.clone().unwrap_or_else(|| {
            if cfg.sandbox {
                SANDBOX_API_BASE.into()
            } else {
                API_BASE.into()
            }
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.request_timeout_ms.max(1000)))
            .build()?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth_url: cfg.auth_url.clone().unwrap_or_else(|| AUTH_URL.into()),
            app_id: cfg.app_id.clone().unwrap_or_default(),
            secret: cfg.secret.clone().unwrap_or_default(),
            token: tokio::sync::Mutex::new(None),
        })
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// A valid access token: the cached one, or a new one when it is close
    /// to expiry.
    pub async fn token(&self) -> Result<String, ApiError> {
        let mut cur = self.token.lock().await;
        if let Some(t) = cur.as_ref()
            && Instant::now() + REFRESH_BEFORE < t.until
        {
            return Ok(t.value.clone());
        }
        let body = json!({"appId": self.app_id, "clientSecret": self.secret});
        let resp = self
            .http
            .post(&self.auth_url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| ApiError::Network(e.to_string()))?;
        let status = resp.status().as_u16();
        let v: Value = read_json(resp).await?;
        let value = v["access_token"].as_str().unwrap_or_default().to_string();
        // `expires_in` comes as a string in the docs' example, a number elsewhere.
        let secs = match &v["expires_in"] {
            Value::String(s) => s.trim().parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        let (false, Some(secs)) = (value.is_empty(), secs) else {
            return Err(error_of(status.max(400), &v));
        };
        let until = Instant::now() + Duration::from_secs(secs);
        *cur = Some(Token {
            value: value.clone(),
            until,
        });
        tracing::debug!(expires_in = secs, "QQ Bot access token");
        Ok(value)
    }

    /// Forget the token (the platform refused it).
    async fn drop_token(&self, value: &str) {
        let mut cur = self.token.lock().await;
        if cur.as_ref().is_some_and(|t| t.value == value) {
            *cur = None;
        }
    }

    /// `GET` or `POST` a path of the OpenAPI; a 401 refreshes the token and
    /// tries once more.
    pub async fn call(&self, post: Option<&Value>, path: &str) -> Result<Value, ApiError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let url = format!("{}{path}", self.base);
            let req = match post {
                Some(body) => self
                    .http
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(body.to_string()),
                None => self.http.get(&url),
            };
            let resp = req
                .header("Authorization", format!("QQBot {token}"))
                .header("X-Union-Appid", &self.app_id)
                .send()
                .await
                .map_err(|e| ApiError::Network(e.to_string()))?;
            let status = resp.status().as_u16();
            if status == 401 && attempt == 0 {
                self.drop_token(&token).await;
                continue;
            }
            let v = read_json(resp).await?;
            // 201/202 are "accepted asynchronously" with an error body
            // (bot-docs openapi/error): e.g. held for review.
            if (200..300).contains(&status) && status != 201 && status != 202 {
                return Ok(v);
            }
            return Err(error_of(status, &v));
        }
        Err(ApiError::Http {
            status: 401,
            code: 0,
            message: "token refused".into(),
        })
    }

    /// The WebSocket gateway's address (`GET /gateway`).
    pub async fn gateway_url(&self) -> Result<String, ApiError> {
        let v = self.call(None, "/gateway").await?;
        v["url"]
            .as_str()
            .filter(|u| !u.is_empty())
            .map(String::from)
            .ok_or_else(|| ApiError::Network("gateway answered without url".into()))
    }
}

async fn read_json(resp: reqwest::Response) -> Result<Value, ApiError> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).or(Ok(Value::Null))
}

fn error_of(status: u16, v: &Value) -> ApiError {
    let code = v["code"]
        .as_i64()
        .or_else(|| v["err_code"].as_i64())
        .unwrap_or(0);
    ApiError::Http {
        status,
        code,
        message: v["message"].as_str().unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, code: i64) -> ApiError {
        ApiError::Http {
            status,
            code,
            message: String::new(),
        }
    }

    #[test]
    fn failures_sorted() {
        assert_eq!(classify(&http(400, 40034005)), Failure::AnchorDead);
        assert_eq!(classify(&http(400, 304027)), Failure::AnchorDead);
        assert_eq!(classify(&http(400, 40054005)), Failure::Duplicate);
        assert_eq!(classify(&http(400, 40034102)), Failure::ActiveRefused);
        assert_eq!(classify(&http(400, 40034105)), Failure::ActiveRefused);
        assert_eq!(classify(&http(400, 40054003)), Failure::ChatGone);
        assert_eq!(classify(&http(429, 22009)), Failure::RateLimited);
        assert_eq!(classify(&http(500, 0)), Failure::Transient);
        assert_eq!(
            classify(&ApiError::Network("reset".into())),
            Failure::Transient
        );
        assert_eq!(classify(&http(400, 50006)), Failure::Rejected);
    }
}
