//! The WebSocket transport at `/ws/visitor` and `/ws/agent`.
//!
//! One task per connection moves frames between the socket and a [`Session`]: client frames are
//! handled in the order received, live frames are written as they come, and a ping every
//! `ping_interval_ms` (with nothing received for `idle_timeout_ms` meaning the link is dead)
//! notices half-open connections. Buffers are small so idle connections cost little memory.

use crate::edge::ClientIp;
use crate::realtime::session::{Identity, Inbound, Session};
use crate::realtime::{
    ClientFrame, Realtime, Role, agent_identity, error_frame, parse_frame, visitor_identity,
};
use crate::web::state::AppState;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use protocol::{AgentId, ErrorCode, ServerFrame, SiteId};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-connection read buffer; messages are small, and idle memory is what limits scale.
const READ_BUFFER: usize = 4 * 1024;

/// What a connection knew before the upgrade.
struct Upgrade {
    role: Role,
    origin: Option<String>,
    client: ClientIp,
    /// Agents: the session-cookie token (checked at hello, so the error can be a frame).
    session_token: Option<String>,
    /// Visitors: the browser's `User-Agent`, told to agents with the visitor's presence.
    user_agent: Option<String>,
}

/// `GET /ws/visitor`.
pub async fn visitor(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
) -> Response {
    upgrade(
        ws,
        state,
        Upgrade {
            role: Role::Visitor,
            origin: origin(&headers),
            client,
            session_token: None,
            user_agent: crate::util::header_text(&headers, "user-agent").map(str::to_string),
        },
    )
}

/// `GET /ws/agent`.
pub async fn agent(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
) -> Response {
    let session_token = crate::web::signed_in::session_token(&state.edge, &headers);
    upgrade(
        ws,
        state,
        Upgrade {
            role: Role::Agent,
            origin: origin(&headers),
            client,
            session_token,
            user_agent: None,
        },
    )
}

fn origin(headers: &HeaderMap) -> Option<String> {
    crate::util::header_text(headers, "origin").map(str::to_string)
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
    // Held to the end: a draining server waits for it before it exits.
    let _open = rt.socket_opened();
    let ip = upgrade.client.0;
    let mut registration = match rt.register(upgrade.client) {
        Ok(registration) => registration,
        Err(frame) => return refuse(socket, frame).await,
    };
    let hello_timeout = Duration::from_millis(u64::from(protocol::transport::HELLO_TIMEOUT_MS));
    let first = match tokio::time::timeout(hello_timeout, next_text(&mut socket, &rt)).await {
        Ok(Some(Ok(text))) => text,
        Ok(Some(Err(frame))) => return refuse(socket, frame).await,
        Ok(None) => return,
        Err(_) => return refuse(socket, error_frame(ErrorCode::BadRequest, "no hello")).await,
    };
    // Subscribed before the session is first checked, so a sign-out in between is not missed.
    let mut session_changes =
        (upgrade.role == Role::Agent).then(|| rt.hub.subscribe_session_changes());
    let (identity, cursors, events_after, page, details) = match parse_frame(upgrade.role, &first) {
        Ok(ClientFrame::VisitorHello(hello)) => {
            // As for agents: a hello that is too large ends the connection.
            if hello.cursors.len() > rt.limits.max_cursors as usize {
                return refuse(socket, error_frame(ErrorCode::TooLarge, "too many cursors")).await;
            }
            match visitor_identity(&rt, &hello, upgrade.origin.as_deref(), Some(ip)).await {
                Ok(identity) => {
                    let details = crate::realtime::visitor_details(
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
    registration.identify(crate::realtime::presence_of(&identity, details));
    registration.linger(crate::realtime::hub::NAVIGATION_GRACE);
    let signed_in = match &identity {
        Identity::Agent { agent, site_ids } => Some((agent.id, site_ids.clone())),
        Identity::Visitor { .. } => None,
    };
    let agent_id = signed_in.as_ref().map_or(AgentId(0), |(id, _)| *id);
    let mut session = Session::new(rt.clone(), identity);
    let opening = async {
        let mut frames = session.welcome(events_after).await?;
        frames.extend(session.follow(&cursors).await?);
        if let Some(page) = page {
            frames.extend(session.handle(Inbound::PageView(page)).await?);
        }
        Ok::<_, store::Error>(frames)
    };
    let frames = opening
        .await
        .unwrap_or_else(|error| vec![rt.store_failure(&error)]);
    if !send(&mut socket, frames).await {
        return;
    }

    let ping_every = Duration::from_millis(u64::from(rt.limits.ping_interval_ms));
    let idle_limit = Duration::from_millis(u64::from(rt.limits.idle_timeout_ms));
    let mut ticker = tokio::time::interval(ping_every);
    ticker.tick().await;
    let mut recheck = tokio::time::interval(crate::realtime::SESSION_RECHECK);
    recheck.tick().await;
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
                            .unwrap_or_else(|error| vec![rt.store_failure(&error)]),
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
                let frames = events.unwrap_or_else(|error| vec![rt.store_failure(&error)]);
                if !send(&mut socket, frames).await { break }
            }
            _ = rt.drained() => {
                let _ = send(&mut socket, vec![ServerFrame::Reconnect { within_ms: crate::realtime::RECONNECT_WITHIN_MS }]).await;
                let _ = socket
                    .send(Message::Close(Some(CloseFrame { code: 1012, reason: "server restarting".into() })))
                    .await;
                break;
            }
            () = crate::realtime::sessions_changed(&mut session_changes, agent_id) => {
                if let Some(end) = still_signed_in(&rt, &upgrade, signed_in.as_ref()).await {
                    return end_agent(socket, end).await;
                }
            }
            _ = recheck.tick(), if signed_in.is_some() => {
                if let Some(end) = still_signed_in(&rt, &upgrade, signed_in.as_ref()).await {
                    return end_agent(socket, end).await;
                }
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

/// Checks an agent connection's session again: `None` while it holds with the same sites;
/// else the frame that ends the connection (`unauthorized` once the session is gone,
/// `reconnect` when the agent's sites changed, so a fresh hello follows the new ones). A
/// database that does not answer ends nothing: the next check decides.
async fn still_signed_in(
    rt: &Realtime,
    upgrade: &Upgrade,
    signed_in: Option<&(AgentId, Vec<SiteId>)>,
) -> Option<ServerFrame> {
    let (_, sites) = signed_in?;
    match agent_identity(rt, upgrade.session_token.as_deref()).await {
        Ok(Identity::Agent { site_ids, .. }) if site_ids == *sites => None,
        Ok(_) => Some(ServerFrame::Reconnect { within_ms: 0 }),
        Err(ServerFrame::Error {
            code: ErrorCode::Internal,
            ..
        }) => None,
        Err(frame) => Some(frame),
    }
}

/// Ends an agent connection whose session changed: an error closes with its code (4401 for a
/// session that ended), a `reconnect` with 1012 as a restart does.
async fn end_agent(mut socket: WebSocket, frame: ServerFrame) {
    if matches!(frame, ServerFrame::Error { .. }) {
        return refuse(socket, frame).await;
    }
    if send(&mut socket, vec![frame]).await {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: 1012,
                reason: "sites changed".into(),
            })))
            .await;
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
