//! Protocol clients for tests: a WebSocket client (tokio-tungstenite) and an HTTP-fallback
//! client (reqwest), both speaking the `protocol` frames over real sockets.

use futures_util::{SinkExt, StreamExt};
use protocol::{ClientId, ConversationId, Cursor, ServerFrame, VisitorId};
use std::collections::HashMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for an expected frame before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// An upgrade request for `url` carrying exactly `headers`.
fn request_with(
    url: &str,
    headers: &[(&str, &str)],
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .expect("name"),
            value.parse().expect("value"),
        );
    }
    request
}

/// A WebSocket connection speaking JSON frames.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Connects to `path` with optional `Origin` and `Cookie` headers.
    pub async fn connect(base: &str, path: &str, origin: Option<&str>, cookie: Option<&str>) -> Ws {
        Ws::try_connect(base, path, origin, cookie)
            .await
            .expect("ws connect")
    }

    /// Connects from the local address `source` (any of 127.0.0.0/8 on Linux), as a client
    /// at that address would, with `headers` exactly.
    pub async fn connect_from(
        base: &str,
        path: &str,
        source: std::net::IpAddr,
        headers: &[(&str, &str)],
    ) -> Ws {
        let addr: std::net::SocketAddr = base
            .trim_start_matches("http://")
            .parse()
            .expect("base is an address");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::new(source, 0))
            .expect("bind the source address");
        let stream = socket.connect(addr).await.expect("tcp connect");
        let url = format!("ws://{addr}{path}");
        let request = request_with(&url, headers);
        let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
            .await
            .expect("ws handshake");
        Ws { stream }
    }

    /// Like [`Ws::connect`], but `None` when the server is not there (within 2 s). Agent
    /// connections without an explicit origin come from `base`, as the console's do.
    pub async fn try_connect(
        base: &str,
        path: &str,
        origin: Option<&str>,
        cookie: Option<&str>,
    ) -> Option<Ws> {
        let url = format!("ws://{}{}", base.trim_start_matches("http://"), path);
        let mut request = url.into_client_request().expect("request");
        let console = (path == protocol::transport::WS_AGENT_PATH).then_some(base);
        if let Some(origin) = origin.or(console) {
            request
                .headers_mut()
                .insert("origin", origin.parse().expect("origin"));
        }
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().expect("cookie"));
        }
        let connect = tokio_tungstenite::connect_async(request);
        let (stream, _) = tokio::time::timeout(Duration::from_secs(2), connect)
            .await
            .ok()?
            .ok()?;
        Some(Ws { stream })
    }

    /// Sends a frame given as JSON.
    pub async fn send_json(&mut self, value: serde_json::Value) {
        self.send_text(value.to_string()).await;
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: String) {
        self.stream
            .send(WsMessage::Text(text.into()))
            .await
            .expect("ws send");
    }

    /// The next server frame (skipping control frames); panics after [`WAIT`].
    pub async fn next(&mut self) -> ServerFrame {
        self.try_next(WAIT).await.expect("a frame within the wait")
    }

    /// The next server frame within `wait`, or `None` (timeout or closed).
    pub async fn try_next(&mut self, wait: Duration) -> Option<ServerFrame> {
        // One deadline for the whole call: control frames must not restart the wait.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            match message {
                WsMessage::Text(text) => {
                    return Some(serde_json::from_str(text.as_str()).expect("server frame parses"));
                }
                WsMessage::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Reads frames until one matches; panics if none does within [`WAIT`].
    pub async fn until<T>(&mut self, mut pick: impl FnMut(&ServerFrame) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self
                .try_next(left)
                .await
                .expect("expected frame did not arrive");
            if let Some(found) = pick(&frame) {
                return found;
            }
        }
    }

    /// Reads until the server closes the connection: the frames before the close and its
    /// close code; `None` when it did not close within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> Option<(Vec<ServerFrame>, u16)> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
            {
                Ok(WsMessage::Text(text)) => {
                    frames.push(serde_json::from_str(text.as_str()).expect("server frame parses"));
                }
                Ok(WsMessage::Close(close)) => {
                    return Some((frames, close.map_or(1005, |c| u16::from(c.code))));
                }
                Ok(_) => continue,
                Err(_) => return Some((frames, 1006)),
            }
        }
    }

    /// The HTTP status an upgrade to `path` is refused with, given exactly `headers` (no
    /// origin added); 101 when it is accepted.
    pub async fn upgrade_status(base: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
        let url = format!("ws://{}{}", base.trim_start_matches("http://"), path);
        let request = request_with(&url, headers);
        match tokio_tungstenite::connect_async(request).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(error) => panic!("upgrade failed otherwise: {error}"),
        }
    }

    /// Closes the connection abruptly (no close handshake), like a dropped network.
    pub fn drop_connection(self) {
        drop(self.stream);
    }
}

/// What a receiving side saw: per conversation, the seqs in arrival order.
#[derive(Default)]
pub struct Delivered {
    /// Per conversation, each seq once, in the order it first arrived.
    pub seen: HashMap<ConversationId, Vec<i64>>,
    /// Seqs that arrived again.
    pub duplicates: usize,
    /// Seqs that arrived after a higher one of their conversation.
    pub out_of_order: usize,
}

impl Delivered {
    /// Notes one arrival.
    pub fn record(&mut self, conversation: ConversationId, seq: i64) {
        let seqs = self.seen.entry(conversation).or_default();
        if seqs.contains(&seq) {
            self.duplicates += 1;
        } else {
            if seqs.last().is_some_and(|last| *last > seq) {
                self.out_of_order += 1;
            }
            seqs.push(seq);
        }
    }

    /// How many of a conversation's messages arrived: its resume cursor when they came in order.
    pub fn cursor(&self, conversation: ConversationId) -> i64 {
        self.seen.get(&conversation).map_or(0, |s| s.len() as i64)
    }
}

/// A message frame's `(conversation, seq, body)`.
pub fn message_of(frame: &ServerFrame) -> Option<(ConversationId, i64, String)> {
    match frame {
        ServerFrame::Message(m) => Some((m.conversation_id, m.seq, m.body.clone())),
        _ => None,
    }
}

/// An ack's `(client id, conversation, seq)`.
pub fn ack_of(frame: &ServerFrame) -> Option<(String, ConversationId, i64)> {
    match frame {
        ServerFrame::Ack {
            client_id,
            conversation_id,
            seq,
        } => Some((client_id.0.clone(), *conversation_id, *seq)),
        _ => None,
    }
}

/// An error frame's code as text.
pub fn error_of(frame: &ServerFrame) -> Option<String> {
    match frame {
        ServerFrame::Error { code, .. } => Some(code.as_str().to_string()),
        _ => None,
    }
}

/// A visitor hello.
pub fn visitor_hello(
    site_key: &str,
    token: Option<&str>,
    cursors: &[(ConversationId, i64)],
) -> serde_json::Value {
    let mut hello = serde_json::json!({
        "type": "hello",
        "protocol_version": protocol::PROTOCOL_VERSION,
        "site_key": site_key,
    });
    if let Some(token) = token {
        hello["visitor_token"] = token.into();
    }
    if !cursors.is_empty() {
        hello["cursors"] = cursors_json(cursors);
    }
    hello
}

/// An agent hello.
pub fn agent_hello(cursors: &[(ConversationId, i64)]) -> serde_json::Value {
    serde_json::json!({
        "type": "hello",
        "protocol_version": protocol::PROTOCOL_VERSION,
        "cursors": cursors_json(cursors),
    })
}

fn cursors_json(cursors: &[(ConversationId, i64)]) -> serde_json::Value {
    serde_json::to_value(
        cursors
            .iter()
            .map(|(c, s)| Cursor {
                conversation_id: *c,
                after_seq: *s,
            })
            .collect::<Vec<_>>(),
    )
    .expect("cursors")
}

/// A send frame.
pub fn send_frame(
    conversation: Option<ConversationId>,
    client_id: &str,
    body: &str,
) -> serde_json::Value {
    let mut send =
        serde_json::json!({"type": "send", "client_id": ClientId(client_id.into()), "body": body});
    if let Some(id) = conversation {
        send["conversation_id"] = id.0.into();
    }
    send
}

/// The token and visitor id in a welcome.
pub fn welcome_of(frame: &ServerFrame) -> Option<(String, VisitorId)> {
    match frame {
        ServerFrame::Welcome(w) => Some((
            w.visitor_token.clone().unwrap_or_default(),
            w.visitor_id.unwrap_or(VisitorId(0)),
        )),
        _ => None,
    }
}

/// HTTP fallback client for one role.
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
    pub role: &'static str,
    /// Visitor token header, once known.
    pub token: Option<String>,
    /// Agent cookie.
    pub cookie: Option<String>,
    /// Origin header to send.
    pub origin: Option<String>,
}

impl Http {
    /// A client for `role` ("visitor" or "agent"). An agent's requests come from `base`, as
    /// the console's do.
    pub fn new(base: &str, role: &'static str) -> Http {
        Http {
            base: base.to_string(),
            client: reqwest::Client::new(),
            role,
            token: None,
            cookie: None,
            origin: (role == "agent").then(|| base.trim_end_matches('/').to_string()),
        }
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let mut builder = builder;
        if let Some(token) = &self.token {
            builder = builder.header(protocol::transport::VISITOR_TOKEN_HEADER, token);
        }
        if let Some(cookie) = &self.cookie {
            builder = builder.header("cookie", cookie);
        }
        if let Some(origin) = &self.origin {
            builder = builder.header("origin", origin);
        }
        builder
    }

    /// POSTs `body` (JSON text, valid or not) to `path` with this client's origin and token
    /// (the widget's endpoints beside the frames); returns the status and the JSON answer
    /// (`Null` when there is none).
    pub async fn post_text(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let response = self
            .request(
                self.client
                    .post(format!("{}{path}", self.base))
                    .header("content-type", "application/json")
                    .body(body.to_string()),
            )
            .send()
            .await
            .expect("post");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or_default())
    }

    /// POSTs frames to `…/send`; returns the status and the answering frames.
    pub async fn send(&self, frames: serde_json::Value) -> (u16, Vec<ServerFrame>) {
        let url = format!("{}/http/{}/send", self.base, self.role);
        let response = self
            .request(
                self.client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(frames.to_string()),
            )
            .send()
            .await
            .expect("http send");
        let status = response.status().as_u16();
        (status, response.json().await.expect("frames"))
    }

    /// POSTs a raw body.
    pub async fn send_raw(&self, body: String) -> (u16, Vec<ServerFrame>) {
        let url = format!("{}/http/{}/send", self.base, self.role);
        let response = self
            .request(self.client.post(url).body(body))
            .send()
            .await
            .expect("http send");
        let status = response.status().as_u16();
        (status, response.json().await.expect("frames"))
    }

    /// Long-polls `…/events` with cursors.
    pub async fn poll(
        &self,
        cursors: &[(ConversationId, i64)],
        wait: u32,
    ) -> (u16, Vec<ServerFrame>) {
        let cursors: Vec<String> = cursors.iter().map(|(c, s)| format!("{c}:{s}")).collect();
        let url = format!(
            "{}/http/{}/events?cursors={}&wait={wait}",
            self.base,
            self.role,
            cursors.join(",")
        );
        let response = self
            .request(self.client.get(url))
            .send()
            .await
            .expect("http poll");
        let status = response.status().as_u16();
        (status, response.json().await.expect("frames"))
    }
}
