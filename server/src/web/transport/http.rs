//! The HTTP fallback: `POST …/send` carries client frames, `GET …/events` long-polls for server
//! frames. Each request builds a [`Session`] from the visitor token (or the agent's cookie) and
//! runs it exactly as a WebSocket connection would, so acks, ordering and resume are the same.

use crate::edge::ClientIp;
use crate::realtime::session::{Identity, Inbound, Session};
use crate::realtime::{
    ClientFrame, Realtime, Role, agent_identity, error_frame, internal, parse_frame,
    visitor_identity,
};
use crate::util::header_text;
use crate::web::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::transport::{EventsQuery, VISITOR_TOKEN_HEADER};
use protocol::{AgentId, ErrorCode, ServerFrame, SiteId, VisitorHello};
use std::sync::Arc;
use std::time::Duration;

/// A whole-request refusal: the error frame alone, with its HTTP status.
/// A frame with a wait (`retry_after_ms`) also says it in `Retry-After`, in whole seconds.
pub(crate) fn refuse(frame: ServerFrame) -> Response {
    let (status, wait) = match &frame {
        ServerFrame::Error {
            code,
            retry_after_ms,
            ..
        } => (code.http_status(), *retry_after_ms),
        _ => (500, None),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(vec![frame])).into_response();
    if let Some(wait) = wait {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, wait.div_ceil(1000).max(1).into());
    }
    response
}

/// The visitor named by the token header (for requests that do not start with a hello).
pub(super) async fn visitor_from_token(
    rt: &Realtime,
    headers: &HeaderMap,
    client: ClientIp,
) -> Result<Identity, ServerFrame> {
    let bad = || error_frame(ErrorCode::BadToken, "bad visitor token");
    let token = header_text(headers, VISITOR_TOKEN_HEADER).ok_or_else(bad)?;
    // The token names its site; the signature is checked against that site below.
    let site_id: SiteId = token
        .split('.')
        .nth(1)
        .and_then(|id| id.parse().ok())
        .ok_or_else(bad)?;
    let site = rt
        .store
        .site(site_id)
        .await
        .map_err(|e| rt.store_failure(&e))?
        .ok_or_else(bad)?;
    let hello = VisitorHello {
        protocol_version: protocol::PROTOCOL_VERSION,
        site_key: site.public_key,
        visitor_token: Some(token.to_string()),
        page: None,
        language: None,
        time_zone: None,
        screen: None,
        cursors: Vec::new(),
    };
    crate::realtime::identify(rt, &hello, header_text(headers, "origin"), Some(client.0)).await
}

/// Splits a body into frames: one frame object or an array of them.
fn frames_of(body: &[u8], limit: usize) -> Result<Vec<serde_json::Value>, ServerFrame> {
    if body.len() > limit {
        return Err(error_frame(ErrorCode::TooLarge, "request too large"));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| error_frame(ErrorCode::BadRequest, &format!("malformed body: {e}")))?;
    Ok(match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    })
}

/// The frames of a `POST …/send` body of `role`, checked as a whole before any is processed:
/// at most [`protocol::transport::MAX_BATCH_FRAMES`], each a frame the role may send, and a
/// hello only first. The refusal is a `too_large` or `bad_request` error frame.
pub(crate) fn batch(
    role: Role,
    body: &[u8],
    limit: usize,
) -> Result<Vec<ClientFrame>, ServerFrame> {
    let values = frames_of(body, limit)?;
    if values.len() > protocol::transport::MAX_BATCH_FRAMES {
        return Err(error_frame(
            ErrorCode::TooLarge,
            "too many frames in one request",
        ));
    }
    // Parse everything first: one bad frame means nothing is processed.
    let frames = values
        .into_iter()
        .map(|value| parse_frame(role, &value.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    // A hello starts a batch or is not there: each one would be a visitor and a welcome.
    let hello = |frame: &ClientFrame| {
        matches!(
            frame,
            ClientFrame::VisitorHello(_) | ClientFrame::AgentHello(_)
        )
    };
    if frames.iter().skip(1).any(hello) {
        return Err(error_frame(
            ErrorCode::BadRequest,
            "a hello may only be the first frame of a request",
        ));
    }
    Ok(frames)
}

/// `POST /http/visitor/send`.
pub async fn visitor_send(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    send(
        state.realtime.clone(),
        Role::Visitor,
        &headers,
        client,
        &body,
        None,
    )
    .await
}

/// `POST /http/agent/send`.
pub async fn agent_send(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = crate::web::signed_in::session_token(&state.edge, &headers);
    send(
        state.realtime.clone(),
        Role::Agent,
        &headers,
        client,
        &body,
        token,
    )
    .await
}

async fn send(
    rt: Arc<Realtime>,
    role: Role,
    headers: &HeaderMap,
    client: ClientIp,
    body: &[u8],
    session_token: Option<String>,
) -> Response {
    let frames = match batch(role, body, rt.limits.max_frame_bytes as usize) {
        Ok(frames) => frames,
        Err(frame) => return refuse(frame),
    };
    let origin = header_text(headers, "origin");
    let identity = match (role, frames.first()) {
        (Role::Visitor, Some(ClientFrame::VisitorHello(hello))) => {
            visitor_identity(&rt, hello, origin, Some(client.0)).await
        }
        (Role::Visitor, _) => visitor_from_token(&rt, headers, client).await,
        (Role::Agent, _) => agent_identity(&rt, session_token.as_deref()).await,
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(frame) => return refuse(frame),
    };
    // A visitor's hello is presence too (with their browser's details), lingering like a poll's
    // until the polls that follow take over. Past the per-IP cap it is simply not counted.
    let _presence = match frames.first() {
        Some(ClientFrame::VisitorHello(hello)) => {
            rt.register(client).ok().map(|mut registration| {
                let user_agent = header_text(headers, "user-agent");
                let details = crate::realtime::visitor_details(
                    &rt,
                    &identity,
                    hello,
                    user_agent,
                    Some(client.0),
                );
                registration.identify(crate::realtime::presence_of(&identity, Some(details)));
                registration.linger(Duration::from_millis(u64::from(rt.limits.idle_timeout_ms)));
                registration
            })
        }
        _ => None,
    };
    let mut session = Session::new(rt.clone(), identity);
    let mut replies = Vec::new();
    for frame in frames {
        let answer = match frame {
            ClientFrame::VisitorHello(hello) => match session.welcome(None).await {
                Ok(mut frames) => match hello.page {
                    Some(page) => session.handle(Inbound::PageView(page)).await.map(|more| {
                        frames.extend(more);
                        frames
                    }),
                    None => Ok(frames),
                },
                Err(error) => Err(error),
            },
            ClientFrame::AgentHello(hello) => {
                if hello.protocol_version != protocol::PROTOCOL_VERSION {
                    return refuse(error_frame(
                        ErrorCode::VersionUnsupported,
                        "unsupported protocol version",
                    ));
                }
                session.welcome(None).await
            }
            ClientFrame::Inbound(Inbound::Resume(_)) => Ok(vec![error_frame(
                ErrorCode::BadRequest,
                "over HTTP, follow conversations with the poll's cursors",
            )]),
            ClientFrame::Inbound(inbound) => session.handle(inbound).await,
            ClientFrame::Ping(nonce) => Ok(vec![ServerFrame::Pong(protocol::Pong { nonce })]),
            ClientFrame::Pong => Ok(Vec::new()),
        };
        match answer {
            Ok(frames) => replies.extend(frames),
            Err(error) => replies.push(rt.store_failure(&error)),
        }
    }
    Json(replies).into_response()
}

/// `GET /http/visitor/events`.
pub async fn visitor_events(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Response {
    let rt = state.realtime.clone();
    match visitor_from_token(&rt, &headers, client).await {
        Ok(identity) => poll(rt, identity, client, query, None).await,
        Err(frame) => refuse(frame),
    }
}

/// `GET /http/agent/events`.
pub async fn agent_events(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Response {
    let rt = state.realtime.clone();
    // Subscribed before the session is checked, so a sign-out in between ends the poll too.
    let changes = rt.hub.subscribe_session_changes();
    let token = crate::web::signed_in::session_token(&state.edge, &headers);
    match agent_identity(&rt, token.as_deref()).await {
        Ok(identity) => poll(rt, identity, client, query, Some(changes)).await,
        Err(frame) => refuse(frame),
    }
}

/// Answers at once with whatever is pending after the cursors, or holds until something
/// arrives or `wait` seconds pass.
/// An agent's poll also ends early when their session changes (`changes`); the next poll
/// checks it again.
async fn poll(
    rt: Arc<Realtime>,
    identity: Identity,
    client: ClientIp,
    query: EventsQuery,
    mut changes: Option<tokio::sync::broadcast::Receiver<AgentId>>,
) -> Response {
    let agent_id = match &identity {
        Identity::Agent { agent, .. } => agent.id,
        Identity::Visitor { .. } => AgentId(0),
    };
    let Some(cursors) = query.parsed_cursors() else {
        return refuse(error_frame(ErrorCode::BadRequest, "malformed cursors"));
    };
    if cursors.len() > rt.limits.max_cursors as usize {
        return refuse(error_frame(ErrorCode::TooLarge, "too many cursors"));
    }
    // A held poll is a connection: it counts against the per-IP cap, and for presence. Its
    // presence lingers for the idle timeout after it ends, so a client that keeps polling
    // stays online (and its agents keep the site available) without flapping between polls.
    let mut registration = match rt.register(client) {
        Ok(registration) => registration,
        Err(frame) => return refuse(frame),
    };
    registration.identify(crate::realtime::presence_of(&identity, None));
    registration.linger(Duration::from_millis(u64::from(rt.limits.idle_timeout_ms)));
    // The session subscribes before reading the store, so nothing stored in between is lost.
    let mut session = Session::new(rt.clone(), identity);
    let mut frames = Vec::new();
    if let Some(after) = query.events_after {
        match session.welcome(Some(after)).await {
            // Only the replayed events matter here, not the welcome itself.
            Ok(welcome) => frames.extend(welcome.into_iter().filter(ServerFrame::is_event)),
            Err(error) => return refuse(internal(&error)),
        }
    }
    let replayed = async {
        let mut replayed = session.follow(&cursors).await?;
        replayed.extend(session.follow_open(&cursors).await?);
        Ok::<_, store::Error>(replayed)
    };
    match replayed.await {
        Ok(replayed) => frames.extend(replayed),
        Err(error) => return refuse(internal(&error)),
    }
    if frames.is_empty() {
        let wait = Duration::from_secs(u64::from(query.wait_secs()));
        tokio::select! {
            result = tokio::time::timeout(wait, session.next_events()) => match result {
                Ok(Ok(live)) => frames.extend(live),
                Ok(Err(error)) => return refuse(internal(&error)),
                Err(_) => {}
            },
            _ = rt.drained() => frames.push(ServerFrame::Reconnect { within_ms: crate::realtime::RECONNECT_WITHIN_MS }),
            () = crate::realtime::sessions_changed(&mut changes, agent_id) => {}
        }
    }
    drop(registration);
    ([(header::CACHE_CONTROL, "no-store")], Json(frames)).into_response()
}
