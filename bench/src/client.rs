//! Client-side plumbing shared by the coordinator and the workers: WebSocket connections from a
//! chosen 127.x source address, the protocol frames the bench sends, and cheap looks at the
//! frames it receives (the bench must not spend the CPU the server needs on parsing).

use crate::Result;
use futures_util::{SinkExt, StreamExt};
use protocol::{
    AgentFrame, AgentHello, ClientId, ConversationId, ConversationStatus, Cursor, SendMessage,
    ServerFrame, SetConversationStatus, VisitorFrame, VisitorHello,
};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// How long one connection attempt (TCP, upgrade, hello, welcome) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client waits for an expected frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(15);

/// The `Origin` the bench site allows and every visitor sends.
pub const ORIGIN: &str = "https://bench.example";

/// Small buffers, as the server uses: 19,000 connections per run must fit in the clients too.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// Microseconds on this process's monotonic clock (stamps compared within one process).
pub fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Microseconds since the Unix epoch (stamps compared across processes on this machine).
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `count` loopback addresses `127.0.group.1 ..= 127.0.group.count`.
pub fn sources(group: u8, count: u8) -> Vec<Ipv4Addr> {
    (1..=count.max(1))
        .map(|host| Ipv4Addr::new(127, 0, group, host))
        .collect()
}

/// Opens a WebSocket to `server` + `path` from `source` (port chosen by the kernel), with
/// optional `Origin` and `Cookie` headers; Nagle off, as a chat client would have it.
pub async fn connect(
    server: SocketAddr,
    source: Option<Ipv4Addr>,
    path: &str,
    origin: Option<&str>,
    cookie: Option<&str>,
) -> Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip.into(), 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let mut request = format!("ws://{server}{path}").into_client_request()?;
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse()?);
    }
    if let Some(cookie) = cookie {
        request.headers_mut().insert("cookie", cookie.parse()?);
    }
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config())).await?;
    Ok(ws)
}

/// Serialises a frame the bench built from protocol types.
fn json<T: serde::Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).expect("protocol frames always serialise")
}

/// A visitor hello for the bench site, presenting `token` when reconnecting and asking for
/// the messages after each `(conversation, seq)` cursor.
pub fn visitor_hello(
    site_key: &str,
    token: Option<&str>,
    cursors: &[(ConversationId, i64)],
) -> String {
    json(&VisitorFrame::Hello(VisitorHello {
        protocol_version: protocol::PROTOCOL_VERSION,
        site_key: site_key.to_string(),
        visitor_token: token.map(str::to_string),
        page: None,
        language: None,
        time_zone: None,
        screen: None,
        cursors: cursors_of(cursors),
    }))
}

/// An agent hello following `conversations` from `after_seq`.
pub fn agent_hello(cursors: &[(ConversationId, i64)]) -> String {
    json(&AgentFrame::Hello(AgentHello {
        protocol_version: protocol::PROTOCOL_VERSION,
        cursors: cursors_of(cursors),
        events_after: None,
    }))
}

/// `(conversation, after_seq)` pairs as the protocol's cursors.
fn cursors_of(cursors: &[(ConversationId, i64)]) -> Vec<Cursor> {
    cursors
        .iter()
        .map(|&(conversation_id, after_seq)| Cursor {
            conversation_id,
            after_seq,
        })
        .collect()
}

/// A `send` (the same JSON for visitors and agents).
pub fn send_frame(conversation: Option<ConversationId>, client_id: &str, body: &str) -> String {
    json(&VisitorFrame::Send(SendMessage {
        conversation_id: conversation,
        client_id: ClientId(client_id.to_string()),
        body: body.to_string(),
        attachment: None,
    }))
}

/// An agent's frame resolving a conversation.
pub fn resolve_frame(conversation: ConversationId, client_id: &str) -> String {
    json(&AgentFrame::SetConversationStatus(SetConversationStatus {
        conversation_id: conversation,
        client_id: ClientId(client_id.to_string()),
        status: ConversationStatus::Resolved,
        until: None,
    }))
}

/// A message body carrying a send stamp, found again by [`stamp_of`].
pub fn stamped_body(stamp_us: u64) -> String {
    format!("t={stamp_us}")
}

/// The stamp in a frame whose message body came from [`stamped_body`].
pub fn stamp_of(text: &str) -> Option<u64> {
    let at = text.find("\"body\":\"t=")? + "\"body\":\"t=".len();
    let digits = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// The `type` of a server frame without parsing it: the server writes `type` first.
pub fn frame_type(text: &str) -> Option<&str> {
    text.strip_prefix("{\"type\":\"")?.split('"').next()
}

/// Reads frames until `pick` returns something; an `error` frame or silence is an error.
pub async fn until<T>(ws: &mut Ws, mut pick: impl FnMut(ServerFrame) -> Option<T>) -> Result<T> {
    let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "no expected frame within the wait")?
            .ok_or("connection closed")??;
        let Message::Text(text) = message else {
            continue;
        };
        let frame: ServerFrame = serde_json::from_str(text.as_str())?;
        if let ServerFrame::Error { code, message, .. } = &frame {
            return Err(format!("server error {}: {message}", code.as_str()).into());
        }
        if let Some(found) = pick(frame) {
            return Ok(found);
        }
    }
}

/// Sends a text frame.
pub async fn send_text(ws: &mut Ws, text: String) -> Result<()> {
    ws.send(Message::Text(text.into())).await?;
    Ok(())
}

/// Visitor hello → welcome on an open connection; returns the token to reconnect with. The
/// messages after `cursors` follow the welcome.
pub async fn visitor_handshake(
    ws: &mut Ws,
    site_key: &str,
    token: Option<&str>,
    cursors: &[(ConversationId, i64)],
) -> Result<String> {
    send_text(ws, visitor_hello(site_key, token, cursors)).await?;
    until(ws, |frame| match frame {
        ServerFrame::Welcome(welcome) => Some(welcome.visitor_token.unwrap_or_default()),
        _ => None,
    })
    .await
}

/// Sends a visitor's first message (no conversation yet); returns the new conversation and seq.
pub async fn first_message(ws: &mut Ws, client_id: &str) -> Result<(ConversationId, i64)> {
    send_text(ws, send_frame(None, client_id, "hello")).await?;
    until(ws, |frame| match frame {
        ServerFrame::Ack {
            conversation_id,
            seq,
            ..
        } => Some((conversation_id, seq)),
        _ => None,
    })
    .await
}

/// An agent connection that has had its welcome.
pub async fn agent(
    server: SocketAddr,
    cookie: &str,
    cursors: &[(ConversationId, i64)],
) -> Result<Ws> {
    // The console's own origin, as the agent's browser sends it.
    let origin = format!("http://{server}");
    let mut ws = connect(
        server,
        Some(Ipv4Addr::new(127, 0, 5, 1)),
        protocol::transport::WS_AGENT_PATH,
        Some(&origin),
        Some(cookie),
    )
    .await?;
    send_text(&mut ws, agent_hello(cursors)).await?;
    until(&mut ws, |frame| {
        matches!(frame, ServerFrame::Welcome(_)).then_some(())
    })
    .await?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_through_a_message_frame() {
        let frame = format!(
            "{{\"type\":\"message\",\"conversation_id\":3,\"seq\":9,\"client_id\":\"b-1\",\
             \"author\":\"visitor\",\"body\":\"{}\",\"created_at\":1}}",
            stamped_body(123_456)
        );
        assert_eq!(stamp_of(&frame), Some(123_456));
        assert_eq!(frame_type(&frame), Some("message"));
        assert_eq!(
            stamp_of(&send_frame(Some(ConversationId(1)), "c", &stamped_body(7))),
            Some(7)
        );
        assert_eq!(stamp_of("{\"type\":\"ack\"}"), None);
    }

    #[test]
    fn frame_types_come_from_the_leading_tag() {
        assert_eq!(frame_type("{\"type\":\"ack\",\"seq\":1}"), Some("ack"));
        assert_eq!(frame_type("{\"seq\":1,\"type\":\"ack\"}"), None);
        let frame = send_frame(None, "c-1", "hi");
        assert_eq!(frame_type(&frame), Some("send"), "{frame}");
    }
}
