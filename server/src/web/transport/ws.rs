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

/// One connection: opened (the hello checked, the welcome and replay sent), then served until
/// it ends. The task holds only what the live loop needs: the opening, and the handling of a
/// frame, run in boxes of their own while they last, so an idle connection costs the select
/// and its state, not the largest thing it ever did (`the_connection_future_stays_small`).
async fn connection(socket: WebSocket, rt: Arc<Realtime>, upgrade: Upgrade) {
    // Held to the end: a draining server waits for it before it exits.
    let _open = rt.socket_opened();
    // Each made in a statement of its own: only the box is kept across the await.
    let opening = Box::pin(open(socket, &rt, &upgrade));
    let Some(opened) = opening.await else { return };
    let serving = Box::pin(opened.live(&rt, &upgrade));
    serving.await;
}

/// A connection whose hello was accepted: what the live loop works with.
struct Opened {
    socket: WebSocket,
    /// Its presence, kept (with a grace period) until the connection ends.
    _registration: crate::realtime::hub::Registration,
    session: Session,
    /// Agents: the sessions that changed anywhere (a sign-out elsewhere ends this one).
    session_changes: Option<tokio::sync::broadcast::Receiver<AgentId>>,
    /// Agents: who signed in, and their sites when they did.
    signed_in: Option<(AgentId, Vec<SiteId>)>,
}

/// Registers the connection, waits for its hello and answers it (welcome, replay, the first
/// page view); `None` when the connection ended or was refused (already told why).
async fn open(mut socket: WebSocket, rt: &Arc<Realtime>, upgrade: &Upgrade) -> Option<Opened> {
    let ip = upgrade.client.0;
    let mut registration = match rt.register(upgrade.client) {
        Ok(registration) => registration,
        Err(frame) => return refused(socket, frame).await,
    };
    let hello_timeout = Duration::from_millis(u64::from(protocol::transport::HELLO_TIMEOUT_MS));
    let first = match tokio::time::timeout(hello_timeout, next_text(&mut socket, rt)).await {
        Ok(Some(Ok(text))) => text,
        Ok(Some(Err(frame))) => return refused(socket, frame).await,
        Ok(None) => return None,
        Err(_) => {
            return refused(socket, error_frame(ErrorCode::BadRequest, "no hello")).await;
        }
    };
    // Subscribed before the session is first checked, so a sign-out in between is not missed.
    let session_changes = (upgrade.role == Role::Agent).then(|| rt.hub.subscribe_session_changes());
    let (identity, cursors, events_after, page, details) = match parse_frame(upgrade.role, &first) {
        Ok(ClientFrame::VisitorHello(hello)) => {
            // As for agents: a hello that is too large ends the connection.
            if hello.cursors.len() > rt.limits.max_cursors as usize {
                return refused(socket, error_frame(ErrorCode::TooLarge, "too many cursors")).await;
            }
            match visitor_identity(rt, &hello, upgrade.origin.as_deref(), Some(ip)).await {
                Ok(identity) => {
                    let details = crate::realtime::visitor_details(
                        rt,
                        &identity,
                        &hello,
                        upgrade.user_agent.as_deref(),
                        Some(ip),
                    );
                    (identity, hello.cursors, None, hello.page, Some(details))
                }
                Err(frame) => return refused(socket, frame).await,
            }
        }
        Ok(ClientFrame::AgentHello(hello)) => {
            if hello.protocol_version != protocol::PROTOCOL_VERSION {
                return refused(
                    socket,
                    error_frame(
                        ErrorCode::VersionUnsupported,
                        "unsupported protocol version",
                    ),
                )
                .await;
            }
            if hello.cursors.len() > rt.limits.max_cursors as usize {
                return refused(socket, error_frame(ErrorCode::TooLarge, "too many cursors")).await;
            }
            match agent_identity(rt, upgrade.session_token.as_deref()).await {
                Ok(identity) => (identity, hello.cursors, hello.events_after, None, None),
                Err(frame) => return refused(socket, frame).await,
            }
        }
        Ok(_) => {
            return refused(
                socket,
                error_frame(ErrorCode::BadRequest, "the first frame must be hello"),
            )
            .await;
        }
        Err(frame) => return refused(socket, frame).await,
    };
    registration.identify(crate::realtime::presence_of(&identity, details));
    registration.linger(crate::realtime::hub::NAVIGATION_GRACE);
    let signed_in = match &identity {
        Identity::Agent { agent, site_ids } => Some((agent.id, site_ids.clone())),
        Identity::Visitor { .. } => None,
    };
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
        return None;
    }
    Some(Opened {
        socket,
        _registration: registration,
        session,
        session_changes,
        signed_in,
    })
}

/// [`refuse`], for [`open`]: the connection ends there.
async fn refused(socket: WebSocket, frame: ServerFrame) -> Option<Opened> {
    refuse(socket, frame).await;
    None
}

/// Serves an opened connection until it ends: client frames in, live frames out, pings.
impl Opened {
    async fn live(mut self, rt: &Arc<Realtime>, upgrade: &Upgrade) {
        let agent_id = self.signed_in.as_ref().map_or(AgentId(0), |(id, _)| *id);
        let ping_every = Duration::from_millis(u64::from(rt.limits.ping_interval_ms));
        let idle_limit = Duration::from_millis(u64::from(rt.limits.idle_timeout_ms));
        let mut ticker = tokio::time::interval(ping_every);
        ticker.tick().await;
        let mut recheck = tokio::time::interval(crate::realtime::SESSION_RECHECK);
        recheck.tick().await;
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                incoming = self.socket.recv() => {
                    let Some(Ok(message)) = incoming else { break };
                    last_heard = Instant::now();
                    let text = match message {
                        Message::Text(text) => text,
                        Message::Close(_) => break,
                        Message::Binary(_) => {
                            if !Box::pin(send(&mut self.socket, vec![error_frame(ErrorCode::BadRequest, "frames are JSON text")])).await { break }
                            continue;
                        }
                        // Pings are answered by the WebSocket layer; pongs only prove liveness.
                        _ => continue,
                    };
                    if text.len() > rt.limits.max_frame_bytes as usize {
                        return Box::pin(refuse(self.socket, error_frame(ErrorCode::TooLarge, "frame too large"))).await;
                    }
                    let replies = match parse_frame(upgrade.role, text.as_str()) {
                        Ok(ClientFrame::Inbound(inbound)) => Box::pin(self.session.handle(inbound))
                            .await
                            .unwrap_or_else(|error| vec![rt.store_failure(&error)]),
                        Ok(ClientFrame::Ping(nonce)) => vec![ServerFrame::Pong(protocol::Pong { nonce })],
                        Ok(ClientFrame::Pong) => Vec::new(),
                        Ok(ClientFrame::VisitorHello(_) | ClientFrame::AgentHello(_)) => {
                            vec![error_frame(ErrorCode::BadRequest, "hello was already sent")]
                        }
                        Err(frame) => vec![frame],
                    };
                    if !Box::pin(send(&mut self.socket, replies)).await { break }
                }
                events = Box::pin(self.session.next_events()) => {
                    let frames = events.unwrap_or_else(|error| vec![rt.store_failure(&error)]);
                    if !Box::pin(send(&mut self.socket, frames)).await { break }
                }
                _ = rt.drained() => {
                    Box::pin(self.restarting()).await;
                    break;
                }
                () = crate::realtime::sessions_changed(&mut self.session_changes, agent_id) => {
                    if let Some(end) = Box::pin(still_signed_in(rt, upgrade, self.signed_in.as_ref())).await {
                        return Box::pin(end_agent(self.socket, end)).await;
                    }
                }
                _ = recheck.tick(), if self.signed_in.is_some() => {
                    if let Some(end) = Box::pin(still_signed_in(rt, upgrade, self.signed_in.as_ref())).await {
                        return Box::pin(end_agent(self.socket, end)).await;
                    }
                }
                _ = ticker.tick() => {
                    if last_heard.elapsed() > idle_limit {
                        tracing::debug!("closing a silent WebSocket");
                        break;
                    }
                    if Box::pin(self.socket.send(Message::Ping(Default::default()))).await.is_err() { break }
                }
            }
        }
    }

    /// Tells the client the server is restarting, and closes.
    async fn restarting(&mut self) {
        let frame = ServerFrame::Reconnect {
            within_ms: crate::realtime::RECONNECT_WITHIN_MS,
        };
        let _ = send(&mut self.socket, vec![frame]).await;
        let _ = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code: 1012,
                reason: "server restarting".into(),
            })))
            .await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::SinkExt;
    use tokio::sync::mpsc;

    /// A real-time core over a fresh SQLite database with the site `shop`.
    async fn realtime(dir: &std::path::Path) -> Arc<Realtime> {
        let url = format!("sqlite://{}", dir.join("k.db").display());
        let url = store::DatabaseUrl::parse(&url).expect("url");
        let store = store::connect(&url).await.expect("store");
        store
            .create_site(store::NewSite {
                public_key: "shop".into(),
                name: "shop".into(),
                allowed_origins: vec!["*".into()],
                widget_settings: serde_json::json!({}),
                created_at: 1,
            })
            .await
            .expect("site");
        let settings = crate::realtime::Settings {
            messages_per_minute: 60,
            idle_timeout_ms: 30_000,
            max_connections_per_ip: 100,
            max_connections: 100,
            budgets: crate::realtime::budgets::BudgetLimits::default(),
            uploads: crate::realtime::uploads::UploadLimits::default(),
            mail_limits: crate::mail::MailLimits::default(),
            webhook_retry_ms: 1_000,
        };
        let services = crate::realtime::Services {
            mail: crate::mail::MailSetup::default(),
            geoip: None,
            translation: None,
            outbound: crate::outbound::Outbound::new(
                crate::outbound::Policy::default(),
                Arc::new(crate::outbound::SystemLookup),
            )
            .expect("outbound"),
            broker: None,
        };
        Arc::new(
            Realtime::new(store, settings, services)
                .await
                .expect("realtime"),
        )
    }

    fn visitor_upgrade() -> Upgrade {
        Upgrade {
            role: Role::Visitor,
            origin: Some("https://shop.example".into()),
            client: ClientIp("127.0.0.1".parse().expect("ip")),
            session_token: None,
            user_agent: None,
        }
    }

    /// What an idle visitor's connection keeps in memory: the task's future, and the live
    /// loop's box (the opening and the handling of a frame are boxes of their own, freed when
    /// done). Measured on real connections that said hello: `/task` measures the future the
    /// upgrade spawns, then runs it; `/live` opens a connection and measures its live loop. A
    /// future that grows past these bounds (an await point holding something large, a phase
    /// no longer boxed) fails here before it shows in `kefu-bench`'s memory per idle visitor.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_connection_future_stays_small() {
        let dir = tempfile::tempdir().expect("dir");
        let rt = realtime(dir.path()).await;
        let (sizes, mut measured) = mpsc::unbounded_channel::<(&str, usize)>();
        let (task_rt, task_sizes) = (rt.clone(), sizes.clone());
        let app = axum::Router::new()
            .route(
                "/task",
                axum::routing::get(move |ws: WebSocketUpgrade| {
                    let (rt, sizes) = (task_rt.clone(), task_sizes.clone());
                    async move {
                        ws.on_upgrade(move |socket| {
                            let task = connection(socket, rt, visitor_upgrade());
                            let _ = sizes.send(("task", std::mem::size_of_val(&task)));
                            task
                        })
                    }
                }),
            )
            .route(
                "/live",
                axum::routing::get(move |ws: WebSocketUpgrade| {
                    let (rt, sizes) = (rt.clone(), sizes.clone());
                    async move {
                        ws.on_upgrade(move |socket| async move {
                            let upgrade = visitor_upgrade();
                            if let Some(opened) = open(socket, &rt, &upgrade).await {
                                let live = opened.live(&rt, &upgrade);
                                let _ = sizes.send(("live", std::mem::size_of_val(&live)));
                            }
                        })
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let hello = serde_json::json!({
            "type": "hello", "protocol_version": protocol::PROTOCOL_VERSION, "site_key": "shop",
        })
        .to_string();
        let mut clients = Vec::new();
        for path in ["task", "live"] {
            let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/{path}"))
                .await
                .expect("connect");
            client
                .send(tokio_tungstenite::tungstenite::Message::Text(
                    hello.clone().into(),
                ))
                .await
                .expect("hello");
            clients.push(client);
        }
        let mut found = std::collections::HashMap::new();
        while found.len() < 2 {
            let (what, size) = tokio::time::timeout(Duration::from_secs(30), measured.recv())
                .await
                .expect("measured")
                .expect("a size");
            found.insert(what, size);
        }
        let (task, live) = (found["task"], found["live"]);
        println!("connection task {task} bytes, live loop {live} bytes");
        assert!(task <= 1_024, "the task's future is {task} bytes");
        assert!(live <= 3_072, "the live loop is {live} bytes");
    }
}
