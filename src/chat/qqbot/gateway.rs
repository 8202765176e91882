//! The WebSocket gateway: `GET /gateway`, connect, Hello → Identify (or
//! Resume after a drop) → READY, heartbeats with the last sequence number,
//! dispatches to the adapter in arrival order. Reconnect (op 7) and drops
//! resume the session; Invalid Session (op 9) and most close codes start a
//! new one; a refusal of the intents (4013/4014) narrows them (see the
//! module doc of `chat::qqbot`). Back-off from `reconnect_min_ms` doubling
//! to `reconnect_max_ms`, reset once a session is ready.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::QqBot;

/// How long the gateway may take to say Hello after the connect.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The session to resume after a drop.
#[derive(Debug, Default)]
struct Session {
    id: Option<String>,
    seq: Option<u64>,
}

/// How a connection ended.
enum End {
    /// Dropped or told to reconnect: resume if there is a session.
    Again { ready: bool },
    /// Shutting down.
    Stop,
}

/// Connect, serve, reconnect until `shutdown`.
pub async fn run(bot: Arc<QqBot>, mut shutdown: watch::Receiver<bool>) {
    let min = Duration::from_millis(bot.cfg.reconnect_min_ms.max(1));
    let max = Duration::from_millis(bot.cfg.reconnect_max_ms.max(bot.cfg.reconnect_min_ms));
    let mut wait = min;
    let mut session = Session::default();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match connect(&bot, &mut session, shutdown.clone()).await {
            End::Stop => return,
            End::Again { ready } => {
                if ready {
                    wait = min;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
        }
        wait = (wait * 2).min(max);
    }
}

async fn connect(
    bot: &Arc<QqBot>,
    session: &mut Session,
    mut shutdown: watch::Receiver<bool>,
) -> End {
    let url = match bot.api.gateway_url().await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "QQ Bot gateway address not had");
            return End::Again { ready: false };
        }
    };
    let timeout = Duration::from_millis(bot.cfg.request_timeout_ms.max(1000));
    let ws =
        match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url.as_str())).await {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                tracing::warn!(%url, error = %e, "QQ Bot gateway connect failed");
                return End::Again { ready: false };
            }
            Err(_) => {
                tracing::warn!(%url, "QQ Bot gateway connect timed out");
                return End::Again { ready: false };
            }
        };
    let (mut sink, mut stream) = ws.split();
    // Hello: the heartbeat interval.
    let hello = tokio::time::timeout(HELLO_TIMEOUT, stream.next()).await;
    let interval = match hello {
        Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(t.as_str())
            .ok()
            .filter(|v| v["op"] == 10)
            .and_then(|v| v["d"]["heartbeat_interval"].as_u64())
            .filter(|ms| *ms > 0),
        _ => None,
    };
    let Some(interval) = interval else {
        tracing::warn!("QQ Bot gateway sent no Hello");
        return End::Again { ready: false };
    };
    let token = match bot.api.token().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "QQ Bot access token not had");
            return End::Again { ready: false };
        }
    };
    let intents = bot.intents();
    let first = match (&session.id, session.seq) {
        (Some(id), Some(seq)) => json!({"op": 6, "d": {
            "token": format!("QQBot {token}"), "session_id": id, "seq": seq}}),
        _ => {
            session.id = None;
            session.seq = None;
            json!({"op": 2, "d": {
                "token": format!("QQBot {token}"), "intents": intents, "shard": [0, 1],
                "properties": {"$os": std::env::consts::OS, "$browser": "tuanbot", "$device": "tuanbot"}}})
        }
    };
    if sink.send(Message::text(first.to_string())).await.is_err() {
        return End::Again { ready: false };
    }
    let mut ready = false;
    let mut beat = tokio::time::interval(Duration::from_millis(interval));
    beat.tick().await;
    let mut unacked = 0u32;
    loop {
        tokio::select! {
            _ = beat.tick() => {
                if unacked >= 2 {
                    tracing::warn!("QQ Bot gateway stopped answering heartbeats; reconnecting");
                    return End::Again { ready };
                }
                unacked += 1;
                let frame = json!({"op": 1, "d": session.seq});
                if sink.send(Message::text(frame.to_string())).await.is_err() {
                    return End::Again { ready };
                }
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(Message::Close(close))) => {
                        let code = close.map(|c| u16::from(c.code)).unwrap_or(1000);
                        closed(bot, session, code, ready);
                        return End::Again { ready };
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return End::Again { ready },
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    tracing::debug!("QQ Bot gateway frame is not JSON");
                    continue;
                };
                if let Some(s) = v["s"].as_u64() {
                    session.seq = Some(s);
                }
                match v["op"].as_u64() {
                    Some(0) => {
                        let t = v["t"].as_str().unwrap_or_default();
                        match t {
                            "READY" => {
                                session.id = v["d"]["session_id"].as_str().map(String::from);
                                ready = true;
                                tracing::info!(
                                    intents,
                                    bot = v["d"]["user"]["username"].as_str().unwrap_or_default(),
                                    "QQ Bot gateway ready; intents accepted"
                                );
                            }
                            "RESUMED" => {
                                ready = true;
                                tracing::info!("QQ Bot gateway session resumed");
                            }
                            _ => bot.dispatch(t, v["id"].as_str(), &v["d"], None),
                        }
                    }
                    Some(1) => {
                        let frame = json!({"op": 1, "d": session.seq});
                        let _ = sink.send(Message::text(frame.to_string())).await;
                    }
                    Some(7) => {
                        tracing::info!("QQ Bot gateway asks to reconnect");
                        let _ = sink.close().await;
                        return End::Again { ready };
                    }
                    Some(9) => {
                        tracing::warn!("QQ Bot gateway: invalid session; identifying anew");
                        session.id = None;
                        session.seq = None;
                        let _ = sink.close().await;
                        return End::Again { ready };
                    }
                    Some(11) => unacked = 0,
                    _ => {}
                }
            }
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    let _ = sink.send(Message::Close(None)).await;
                    return End::Stop;
                }
            }
        }
    }
}

/// A close frame's code: what the next connection does.
fn closed(bot: &QqBot, session: &mut Session, code: u16, ready: bool) {
    match code {
        // Connection expired: resume.
        4009 => {}
        // The intents are invalid or not permitted.
        4013 | 4014 => {
            session.id = None;
            session.seq = None;
            if ready || !bot.narrow_intents(code) {
                tracing::error!(
                    code,
                    intents = bot.intents(),
                    "QQ Bot gateway refused the intents"
                );
            }
        }
        4914 | 4915 => {
            session.id = None;
            session.seq = None;
            tracing::error!(
                code,
                "QQ Bot gateway: the bot is taken down or banned (see the open platform)"
            );
        }
        c if c == u16::from(CloseCode::Normal) || c == u16::from(CloseCode::Away) => {}
        _ => {
            tracing::warn!(code, "QQ Bot gateway closed; identifying anew");
            session.id = None;
            session.seq = None;
        }
    }
}
