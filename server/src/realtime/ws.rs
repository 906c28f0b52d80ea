//! The WebSocket transport at `/ws/visitor` and `/ws/agent`.
//!
//! One task per connection moves frames between the socket and a [`Session`]: client frames are
//! handled in the order received, live frames are written as they come, and a ping every
//! `ping_interval_ms` (with nothing received for `idle_timeout_ms` meaning the link is dead)
//! notices half-open connections. Buffers are small so idle connections cost little memory.

use super::session::{Inbound, Session};
use super::{
    ClientFrame, Realtime, Role, agent_identity, error_frame, internal, parse_frame,
    visitor_identity,
};
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use protocol::{ErrorCode, ServerFrame};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-connection read buffer; messages are small, and idle memory is what limits scale.
const READ_BUFFER: usize = 4 * 1024;

/// What a connection knew before the upgrade.
struct Upgrade {
    role: Role,
    origin: Option<String>,
    addr: SocketAddr,
    /// Agents: the session-cookie token (checked at hello, so the error can be a frame).
    session_token: Option<String>,
    /// Visitors: the browser's `User-Agent`, told to agents with the visitor's presence.
    user_agent: Option<String>,
}

/// `GET /ws/visitor`.
pub async fn visitor(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    upgrade(
        ws,
        state,
        Upgrade {
            role: Role::Visitor,
            origin: origin(&headers),
            addr,
            session_token: None,
            user_agent: super::header_text(&headers, "user-agent").map(str::to_string),
        },
    )
}

/// `GET /ws/agent`.
pub async fn agent(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let session_token = app::auth::ssr::cookie_value(&headers, app::auth::SESSION_COOKIE);
    upgrade(
        ws,
        state,
        Upgrade {
            role: Role::Agent,
            origin: origin(&headers),
            addr,
            session_token,
            user_agent: None,
        },
    )
}

fn origin(headers: &HeaderMap) -> Option<String> {
    super::header_text(headers, "origin").map(str::to_string)
}

fn upgrade(ws: WebSocketUpgrade, state: AppState, upgrade: Upgrade) -> Response {
    let rt = state.realtime.clone();
    // Twice the frame limit: a frame up to that size gets a `too_large` error frame; beyond it
    // the WebSocket layer closes the connection (1009) without buffering it.
    let max = rt.limits.max_frame_bytes as usize * 2;
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| connection(socket, rt, upgrade))
}

async fn send(socket: &mut WebSocket, frames: Vec<ServerFrame>) -> bool {
    for frame in frames {
        let text = match serde_json::to_string(&frame) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(%error, "cannot serialise a frame");
                continue;
            }
        };
        if socket.send(Message::Text(text.into())).await.is_err() {
            return false;
        }
    }
    true
}

/// Sends an error that ends the connection, then closes with the code's close code.
async fn refuse(mut socket: WebSocket, frame: ServerFrame) {
    let code = match &frame {
        ServerFrame::Error { code, .. } => *code,
        _ => ErrorCode::Internal,
    };
    if send(&mut socket, vec![frame]).await {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: code.ws_close_code(),
                reason: code.as_str().into(),
            })))
            .await;
    }
}

async fn connection(mut socket: WebSocket, rt: Arc<Realtime>, upgrade: Upgrade) {
    let ip = upgrade.addr.ip();
    let Ok(mut registration) = rt.hub.register(Some(ip), rt.max_connections_per_ip) else {
        refuse(
            socket,
            error_frame(
                ErrorCode::TooManyConnections,
                "too many connections from this address",
            ),
        )
        .await;
        return;
    };
    let hello_timeout = Duration::from_millis(u64::from(protocol::transport::HELLO_TIMEOUT_MS));
    let first = match tokio::time::timeout(hello_timeout, next_text(&mut socket, &rt)).await {
        Ok(Some(Ok(text))) => text,
        Ok(Some(Err(frame))) => return refuse(socket, frame).await,
        Ok(None) => return,
        Err(_) => return refuse(socket, error_frame(ErrorCode::BadRequest, "no hello")).await,
    };
    let (identity, cursors, events_after, page, details) = match parse_frame(upgrade.role, &first) {
        Ok(ClientFrame::VisitorHello(hello)) => {
            match visitor_identity(&rt, &hello, upgrade.origin.as_deref(), Some(ip)).await {
                Ok(identity) => {
                    let details = super::visitor_details(
                        &rt,
                        &identity,
                        &hello,
                        upgrade.user_agent.as_deref(),
                        Some(ip),
                    );
                    (identity, hello.cursors, None, hello.page, Some(details))
                }
                Err(frame) => return refuse(socket, frame).await,
            }
        }
        Ok(ClientFrame::AgentHello(hello)) => {
            if hello.protocol_version != protocol::PROTOCOL_VERSION {
                return refuse(
                    socket,
                    error_frame(
                        ErrorCode::VersionUnsupported,
                        "unsupported protocol version",
                    ),
                )
                .await;
            }
            if hello.cursors.len() > rt.limits.max_cursors as usize {
                return refuse(socket, error_frame(ErrorCode::TooLarge, "too many cursors")).await;
            }
            match agent_identity(&rt, upgrade.session_token.as_deref()).await {
                Ok(identity) => (identity, hello.cursors, hello.events_after, None, None),
                Err(frame) => return refuse(socket, frame).await,
            }
        }
        Ok(_) => {
            return refuse(
                socket,
                error_frame(ErrorCode::BadRequest, "the first frame must be hello"),
            )
            .await;
        }
        Err(frame) => return refuse(socket, frame).await,
    };
    registration.identify(super::presence_of(&identity, details));
    registration.linger(super::hub::NAVIGATION_GRACE);
    let mut session = Session::new(rt.clone(), identity);
    let opening = async {
        let mut frames = session.welcome(events_after).await?;
        frames.extend(session.follow(&cursors).await?);
        if let Some(page) = page {
            frames.extend(session.handle(Inbound::PageView(page)).await?);
        }
        Ok::<_, store::Error>(frames)
    };
    let frames = opening.await.unwrap_or_else(|error| vec![internal(&error)]);
    if !send(&mut socket, frames).await {
        return;
    }

    let ping_every = Duration::from_millis(u64::from(rt.limits.ping_interval_ms));
    let idle_limit = Duration::from_millis(u64::from(rt.limits.idle_timeout_ms));
    let mut ticker = tokio::time::interval(ping_every);
    ticker.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { break };
                last_heard = Instant::now();
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => break,
                    Message::Binary(_) => {
                        if !send(&mut socket, vec![error_frame(ErrorCode::BadRequest, "frames are JSON text")]).await { break }
                        continue;
                    }
                    // Pings are answered by the WebSocket layer; pongs only prove liveness.
                    _ => continue,
                };
                if text.len() > rt.limits.max_frame_bytes as usize {
                    return refuse(socket, error_frame(ErrorCode::TooLarge, "frame too large")).await;
                }
                let replies = {
                    match parse_frame(upgrade.role, text.as_str()) {
                        Ok(ClientFrame::Inbound(inbound)) => session
                            .handle(inbound)
                            .await
                            .unwrap_or_else(|error| vec![internal(&error)]),
                        Ok(ClientFrame::Ping(nonce)) => vec![ServerFrame::Pong(protocol::Pong { nonce })],
                        Ok(ClientFrame::Pong) => Vec::new(),
                        Ok(ClientFrame::VisitorHello(_) | ClientFrame::AgentHello(_)) => {
                            vec![error_frame(ErrorCode::BadRequest, "hello was already sent")]
                        }
                        Err(frame) => vec![frame],
                    }
                };
                if !send(&mut socket, replies).await { break }
            }
            events = session.next_events() => {
                let frames = events.unwrap_or_else(|error| vec![internal(&error)]);
                if !send(&mut socket, frames).await { break }
            }
            _ = rt.drained() => {
                let _ = send(&mut socket, vec![ServerFrame::Reconnect { within_ms: super::RECONNECT_WITHIN_MS }]).await;
                let _ = socket
                    .send(Message::Close(Some(CloseFrame { code: 1012, reason: "server restarting".into() })))
                    .await;
                break;
            }
            _ = ticker.tick() => {
                if last_heard.elapsed() > idle_limit {
                    tracing::debug!("closing a silent WebSocket");
                    break;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() { break }
            }
        }
    }
}

/// The next text frame (skipping control frames); `None` when the connection ended.
async fn next_text(socket: &mut WebSocket, rt: &Realtime) -> Option<Result<String, ServerFrame>> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) if text.len() > rt.limits.max_frame_bytes as usize => {
                return Some(Err(error_frame(ErrorCode::TooLarge, "frame too large")));
            }
            Ok(Message::Text(text)) => return Some(Ok(text.as_str().to_string())),
            Ok(Message::Binary(_)) => {
                return Some(Err(error_frame(
                    ErrorCode::BadRequest,
                    "frames are JSON text",
                )));
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}
