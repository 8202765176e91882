//! The HTTPS webhook (behind a TLS proxy): the open platform POSTs each
//! event, signed with ed25519 (see [`super::sign`]). Any path is accepted.
//!
//! - op 13 (address validation): answered `{"plain_token", "signature"}`.
//! - op 0 (dispatch): the signature is checked (401 without a valid one);
//!   the event is handled (committed, for messages) before the answer
//!   `{"op": 12}`, so a failure answers 500 and the platform delivers again
//!   (update ids make that safe).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use super::{QqBot, sign};

/// Longest an event may take before the request is answered 500.
const HANDLE_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn serve(bot: Arc<QqBot>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    let app = axum::Router::new()
        .route("/", axum::routing::post(callback))
        .route("/{*path}", axum::routing::post(callback))
        .with_state(bot);
    crate::chat::serve_http(listener, app, shutdown, "QQ Bot webhook").await;
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn callback(State(bot): State<Arc<QqBot>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = bot.cfg.secret.as_deref().and_then(sign::key) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if v["op"] == 13 {
        let plain = v["d"]["plain_token"].as_str().unwrap_or_default();
        let ts = v["d"]["event_ts"].as_str().unwrap_or_default();
        if plain.is_empty() {
            return StatusCode::BAD_REQUEST.into_response();
        }
        tracing::info!("QQ Bot webhook address validation");
        let signature = sign::sign(&key, &[ts.as_bytes(), plain.as_bytes()]);
        return json_response(
            StatusCode::OK,
            json!({"plain_token": plain, "signature": signature}),
        );
    }
    let header = |name: &str| headers.get(name).and_then(|h| h.to_str().ok());
    let signed = match (
        header("X-Signature-Ed25519"),
        header("X-Signature-Timestamp"),
    ) {
        (Some(sig), Some(ts)) => sign::verify(&key, ts, &body, sig),
        _ => false,
    };
    if !signed {
        tracing::warn!("QQ Bot webhook request without a valid signature refused");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if v["op"] != 0 {
        return json_response(StatusCode::OK, json!({"op": 12, "d": 0}));
    }
    let (done, handled) = oneshot::channel();
    bot.dispatch(
        v["t"].as_str().unwrap_or_default(),
        v["id"].as_str(),
        &v["d"],
        Some(done),
    );
    match tokio::time::timeout(HANDLE_TIMEOUT, handled).await {
        Ok(Ok(true)) => json_response(StatusCode::OK, json!({"op": 12, "d": 0})),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
