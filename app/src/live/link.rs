//! The browser side of the console's connection: a WebSocket to `/ws/agent`, or the HTTP
//! fallback (`POST /http/agent/send` plus a long-poll on `/http/agent/events`), chosen by the
//! agent's connection mode and by what works.
//!
//! Every (re)connect says hello with the desk's cursors and event cursor and resends the outbox,
//! so the server replays whatever was missed and nothing is shown twice (the desk drops
//! repeats). Failures back off exponentially with jitter; an automatic console whose
//! WebSockets keep failing moves to HTTP and probes for WebSockets again now and then.

use super::{Connection, Live};
use crate::auth::ConnectionMode;
use leptos::prelude::*;
use protocol::transport::{
    EventsQuery, HTTP_AGENT_EVENTS_PATH, HTTP_AGENT_SEND_PATH, MAX_POLL_WAIT_SECS, WS_AGENT_PATH,
    format_cursors,
};
use protocol::{AgentFrame, ConversationId, Pong, Resume, ServerFrame};
use std::cell::{Cell, RefCell};
use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, RequestCredentials, RequestInit, Response, WebSocket};

/// The first wait after a failed connection; it doubles per failure up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: f64 = 500.0;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: f64 = 10_000.0;
/// WebSockets failing this many times in a row before a welcome move an automatic console to
/// HTTP.
const WS_FAILURES_BEFORE_HTTP: u32 = 2;
/// How often an automatic console that fell back to HTTP tries a WebSocket again.
const UPGRADE_PROBE: Duration = Duration::from_secs(60);
/// A long-poll unanswered this long after its `wait` is given up and started again.
const POLL_GRACE: Duration = Duration::from_secs(10);

/// One WebSocket's event handlers, dropped with it.
type Handler = Closure<dyn FnMut(JsValue)>;

/// The connection's state between callbacks.
struct Link {
    /// What the connection feeds.
    live: Live,
    /// Automatic or HTTP only.
    mode: ConnectionMode,
    /// The current attempt; callbacks of older attempts carry another number and do nothing.
    generation: u32,
    /// The open WebSocket, when on one.
    ws: Option<(WebSocket, Vec<Handler>)>,
    /// Whether this attempt uses HTTP.
    http: bool,
    /// Whether this attempt got its welcome (a failure before it counts against WebSockets).
    welcomed: bool,
    /// WebSocket attempts that failed before a welcome, in a row.
    ws_failures: u32,
    /// Failed attempts in a row, for the backoff.
    attempts: u32,
    /// Over HTTP: frames for the next send request.
    queue: Vec<AgentFrame>,
    /// Over HTTP: a send request is in flight (one at a time keeps sends in order).
    sending: bool,
    /// The long-poll in flight, aborted when the attempt ends.
    poll: Option<AbortController>,
}

thread_local! {
    static LINK: RefCell<Option<Link>> = const { RefCell::new(None) };
    /// Attempt numbers, unique across links (a page can start a new link while an old one's
    /// callbacks are still queued).
    static GENERATIONS: Cell<u32> = const { Cell::new(0) };
}

fn next_generation() -> u32 {
    GENERATIONS.with(|g| {
        g.set(g.get().wrapping_add(1));
        g.get()
    })
}

/// Runs `f` on the link, if there is one and it is not busy (callbacks never nest).
fn with<R>(f: impl FnOnce(&mut Link) -> R) -> Option<R> {
    LINK.with(|cell| {
        cell.try_borrow_mut()
            .ok()
            .and_then(|mut link| link.as_mut().map(f))
    })
}

fn current(generation: u32) -> bool {
    with(|link| link.generation == generation).unwrap_or(false)
}

/// Starts the connection for `live` (replacing any earlier one) and the clock; stops both when
/// the page that started them goes away.
pub fn start(live: Live, mode: ConnectionMode) {
    stop();
    LINK.with(|cell| {
        *cell.borrow_mut() = Some(Link {
            live,
            mode,
            generation: 0,
            ws: None,
            http: mode == ConnectionMode::Http,
            welcomed: false,
            ws_failures: 0,
            attempts: 0,
            queue: Vec::new(),
            sending: false,
            poll: None,
        });
    });
    connect();
    live.now.set(js_sys::Date::now());
    if let Ok(clock) = set_interval_with_handle(
        move || live.now.set(js_sys::Date::now()),
        Duration::from_secs(1),
    ) {
        on_cleanup(move || clock.clear());
    }
    if mode == ConnectionMode::Auto
        && let Ok(probe) = set_interval_with_handle(probe_websocket, UPGRADE_PROBE)
    {
        on_cleanup(move || probe.clear());
    }
    on_cleanup(stop);
}

/// Closes the connection for good.
pub fn stop() {
    let old = LINK.with(|cell| cell.try_borrow_mut().ok().and_then(|mut l| l.take()));
    if let Some(mut link) = old {
        link.end_attempt();
    }
}

impl Link {
    /// Closes this attempt's WebSocket or poll; their late callbacks are ignored.
    fn end_attempt(&mut self) {
        if let Some((ws, _handlers)) = self.ws.take() {
            ws.set_onclose(None);
            ws.set_onmessage(None);
            ws.set_onopen(None);
            let _ = ws.close();
        }
        if let Some(poll) = self.poll.take() {
            poll.abort();
        }
        self.queue.clear();
        self.sending = false;
        self.welcomed = false;
    }

    fn send_now(&mut self, frame: AgentFrame) {
        if let Some((ws, _)) = &self.ws {
            if let Ok(text) = serde_json::to_string(&frame) {
                let _ = ws.send_with_str(&text);
            }
        } else if self.http {
            // Sent once this attempt is welcomed (a send composed while its hello is in flight
            // is not among the hello's resends, so it must not be dropped here).
            self.queue.push(frame);
        }
    }
}

/// Begins a new attempt on the transport the link is on now.
fn connect() {
    let Some((generation, http)) = with(|link| {
        link.end_attempt();
        link.generation = next_generation();
        link.live.connection.set(Connection::Connecting);
        (link.generation, link.http)
    }) else {
        return;
    };
    if http {
        http_hello(generation);
    } else {
        open_websocket(generation);
    }
}

/// The attempt `generation` failed: wait, then try again (on HTTP, if WebSockets keep failing).
fn lost(generation: u32) {
    let delay = with(|link| {
        if link.generation != generation {
            return None;
        }
        let before_welcome = !link.welcomed;
        link.end_attempt();
        link.live.connection.set(Connection::Connecting);
        if !link.http && before_welcome {
            link.ws_failures += 1;
            if link.mode == ConnectionMode::Auto && link.ws_failures >= WS_FAILURES_BEFORE_HTTP {
                link.http = true;
                link.attempts = 0;
                return Some(0.0);
            }
        }
        link.attempts += 1;
        Some(backoff(link.attempts))
    })
    .flatten();
    if let Some(ms) = delay {
        set_timeout(connect, Duration::from_millis(ms as u64));
    }
}

/// Exponential backoff with jitter (half to all of the step), in milliseconds.
fn backoff(attempts: u32) -> f64 {
    let step = (FIRST_BACKOFF_MS * 2f64.powi(attempts.saturating_sub(1).min(16) as i32))
        .min(MAX_BACKOFF_MS);
    step * (0.5 + js_sys::Math::random() / 2.0)
}

/// Sends a best-effort frame on the current attempt.
pub fn send(frame: AgentFrame) {
    let flush_now = with(|link| {
        link.send_now(frame);
        link.http.then_some(link.generation)
    })
    .flatten();
    if let Some(generation) = flush_now {
        flush(generation);
    }
}

/// Sends a message refused "not now" again, if it still waits and attempt `generation` is
/// still the link's (a new attempt resends the whole outbox after its hello).
fn resend(generation: u32, client_id: &protocol::ClientId) {
    let Some(live) = with(|link| (link.generation == generation).then_some(link.live)).flatten()
    else {
        return;
    };
    if let Some(frame) = live.desk.with_untracked(|desk| desk.resend(client_id)) {
        send(frame);
    }
}

/// Follows one more conversation: a `resume` over a WebSocket; over HTTP the next poll
/// carries its cursor with the others.
pub fn follow(cursor: protocol::Cursor) {
    with(|link| {
        if link.ws.is_some() {
            link.send_now(AgentFrame::Resume(Resume {
                cursors: vec![cursor],
            }));
        }
    });
}

/// A new random client id (UUID v4) for a send.
pub fn client_id() -> protocol::ClientId {
    let id = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        // Every browser the console supports has `crypto.randomUUID`; this only keeps a
        // missing one from stopping sends.
        .unwrap_or_else(|| {
            format!(
                "{:x}-{:x}",
                js_sys::Date::now() as u64,
                (js_sys::Math::random() * 1e15) as u64
            )
        });
    protocol::ClientId(id)
}

/// Puts a message in the outbox and sends it.
pub fn say(live: Live, conversation_id: ConversationId, body: String, attachment: Option<String>) {
    let frame = live
        .desk
        .try_update(|desk| desk.compose(conversation_id, client_id(), body, attachment));
    if let Some(frame) = frame {
        send(frame);
    }
}

/// Applies one frame of attempt `generation` and does what the desk asks.
fn handle(generation: u32, frame: ServerFrame) {
    let Some(live) = with(|link| (link.generation == generation).then_some(link.live)).flatten()
    else {
        return;
    };
    let welcome = matches!(frame, ServerFrame::Welcome(_));
    let now = js_sys::Date::now();
    let Some(reaction) = live.desk.try_update(|desk| desk.apply(frame, now)) else {
        return;
    };
    if welcome {
        with(|link| {
            link.welcomed = true;
            link.attempts = 0;
            if !link.http {
                link.ws_failures = 0;
            }
            link.live.connection.set(if link.http {
                Connection::Http
            } else {
                Connection::WebSocket
            });
        });
        // Over HTTP, what was queued while the hello was in flight goes out now.
        flush(generation);
    }
    if let Some(nonce) = reaction.pong {
        send(AgentFrame::Pong(Pong { nonce }));
    }
    if !reaction.follow.is_empty() {
        // Over HTTP the next poll carries every cursor anyway.
        with(|link| {
            if link.ws.is_some() {
                link.send_now(AgentFrame::Resume(Resume {
                    cursors: reaction.follow.clone(),
                }));
            }
        });
    }
    if let Some(conversation) = reaction.adopt {
        super::adopt(live, conversation);
    }
    if let Some(conversation) = reaction.notify {
        super::alert::notify(live, conversation);
    }
    if reaction.signed_out {
        stop();
        if let Some(window) = web_sys::window() {
            let _ = window.location().set_href("/login");
        }
    }
    if let Some((client_id, wait)) = reaction.resend {
        set_timeout(
            move || resend(generation, &client_id),
            Duration::from_millis(u64::from(wait)),
        );
    }
    if let Some(within) = reaction.reconnect_within {
        with(|link| {
            link.end_attempt();
            link.live.connection.set(Connection::Connecting);
        });
        let wait = js_sys::Math::random() * f64::from(within);
        set_timeout(connect, Duration::from_millis(wait as u64));
    }
}

fn handle_text(generation: u32, text: &str) {
    // Frames of a type this console does not know are skipped (protocol: ignore them).
    if let Ok(frame) = serde_json::from_str::<ServerFrame>(text) {
        handle(generation, frame);
    }
}

/// `ws://` or `wss://` on the console's own host.
fn websocket_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss:"
    } else {
        "ws:"
    };
    Some(format!(
        "{scheme}//{}{WS_AGENT_PATH}",
        location.host().ok()?
    ))
}

fn open_websocket(generation: u32) {
    let Some(ws) = websocket_url().and_then(|url| WebSocket::new(&url).ok()) else {
        lost(generation);
        return;
    };
    let on_open: Handler = Closure::new(move |_| {
        let hello = with(|link| {
            (link.generation == generation).then(|| {
                let desk = link.live.desk.get_untracked();
                let mut frames = vec![desk.hello()];
                frames.extend(desk.resends());
                frames
            })
        })
        .flatten();
        for frame in hello.into_iter().flatten() {
            with(|link| link.send_now(frame));
        }
    });
    let on_message: Handler = Closure::new(move |event: JsValue| {
        if let Some(text) = event
            .dyn_ref::<web_sys::MessageEvent>()
            .and_then(|e| e.data().as_string())
        {
            handle_text(generation, &text);
        }
    });
    let on_close: Handler = Closure::new(move |_| lost(generation));
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    with(|link| link.ws = Some((ws, vec![on_open, on_message, on_close])));
}

/// Tries a WebSocket while on HTTP in automatic mode; when one opens, moves back to it.
fn probe_websocket() {
    let wanted = with(|link| link.mode == ConnectionMode::Auto && link.http).unwrap_or(false);
    let Some(ws) = wanted
        .then(websocket_url)
        .flatten()
        .and_then(|url| WebSocket::new(&url).ok())
    else {
        return;
    };
    let probe = ws.clone();
    let on_open: Closure<dyn FnMut(JsValue)> = Closure::once(move |_| {
        let _ = probe.close();
        let upgrade = with(|link| {
            let upgrade = link.http;
            link.http = false;
            link.ws_failures = 0;
            upgrade
        });
        if upgrade == Some(true) {
            connect();
        }
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    // One probe a minute at most: a small, bounded leak is simpler than tracking its lifetime.
    on_open.forget();
}

/// Uploads `file` for `conversation_id` (`POST /http/agent/upload`) and, once stored, sends it
/// as a message. Returns `false` when the server refused the file (type or size).
pub async fn upload(live: Live, conversation_id: ConversationId, file: web_sys::File) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let name = js_sys::encode_uri_component(&file.name());
    let url = format!(
        "{}?conversation={}&name={}",
        protocol::transport::HTTP_AGENT_UPLOAD_PATH,
        conversation_id.0,
        String::from(name)
    );
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_credentials(RequestCredentials::SameOrigin);
    init.set_body(&file);
    if let Ok(headers) = web_sys::Headers::new() {
        let kind = file.type_();
        let _ = headers.set(
            "content-type",
            if kind.is_empty() {
                "application/octet-stream"
            } else {
                &kind
            },
        );
        init.set_headers(&headers);
    }
    let Ok(response) = JsFuture::from(window.fetch_with_str_and_init(&url, &init)).await else {
        return false;
    };
    let Ok(response) = response.dyn_into::<Response>() else {
        return false;
    };
    if response.status() != 201 {
        return false;
    }
    let Ok(text) = response.text() else {
        return false;
    };
    let stored: Option<protocol::Attachment> = JsFuture::from(text)
        .await
        .ok()
        .and_then(|t| t.as_string())
        .and_then(|t| serde_json::from_str(&t).ok());
    match stored {
        Some(stored) => {
            say(live, conversation_id, String::new(), Some(stored.id));
            true
        }
        None => false,
    }
}

/// Why an HTTP exchange failed.
enum FetchError {
    /// `401`: the session is gone.
    Unauthorized,
    /// The request was aborted on purpose (the attempt ended).
    Aborted,
    /// Network failure or an unexpected status: try again later.
    Failed,
}

/// One HTTP exchange whose answer is a JSON array of server frames.
async fn fetch_frames(
    url: &str,
    body: Option<String>,
    abort: Option<&AbortController>,
) -> Result<Vec<ServerFrame>, FetchError> {
    let window = web_sys::window().ok_or(FetchError::Failed)?;
    let init = RequestInit::new();
    init.set_credentials(RequestCredentials::SameOrigin);
    if let Some(body) = body {
        init.set_method("POST");
        init.set_body(&JsValue::from_str(&body));
        let headers = web_sys::Headers::new().map_err(|_| FetchError::Failed)?;
        headers
            .set("content-type", "application/json")
            .map_err(|_| FetchError::Failed)?;
        init.set_headers(&headers);
    }
    if let Some(abort) = abort {
        init.set_signal(Some(&abort.signal()));
    }
    // A rejected promise is our own abort, or the network failing.
    let broken = |_: JsValue| {
        if abort.is_some_and(|a| a.signal().aborted()) {
            FetchError::Aborted
        } else {
            FetchError::Failed
        }
    };
    let response: Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(broken)?
        .dyn_into()
        .map_err(|_| FetchError::Failed)?;
    if response.status() == 401 {
        return Err(FetchError::Unauthorized);
    }
    if !response.ok() {
        return Err(FetchError::Failed);
    }
    let text = JsFuture::from(response.text().map_err(|_| FetchError::Failed)?)
        .await
        .map_err(broken)?
        .as_string()
        .ok_or(FetchError::Failed)?;
    let frames: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|_| FetchError::Failed)?;
    Ok(frames
        .into_iter()
        .filter_map(|frame| serde_json::from_value(frame).ok())
        .collect())
}

/// What to do when an HTTP exchange of attempt `generation` failed.
fn http_failed(generation: u32, error: FetchError) {
    match error {
        FetchError::Aborted => {}
        FetchError::Unauthorized => {
            if current(generation) {
                stop();
                if let Some(window) = web_sys::window() {
                    let _ = window.location().set_href("/login");
                }
            }
        }
        FetchError::Failed => lost(generation),
    }
}

/// Starts an HTTP attempt: hello plus the outbox in one request, then the long-poll.
fn http_hello(generation: u32) {
    let Some(body) = with(|link| {
        let desk = link.live.desk.get_untracked();
        let mut frames = vec![desk.hello()];
        frames.extend(desk.resends());
        serde_json::to_string(&frames).ok()
    })
    .flatten() else {
        return;
    };
    leptos::task::spawn_local(async move {
        match fetch_frames(HTTP_AGENT_SEND_PATH, Some(body), None).await {
            Ok(frames) => {
                for frame in frames {
                    handle(generation, frame);
                }
                if current(generation) {
                    poll(generation).await;
                }
            }
            Err(error) => http_failed(generation, error),
        }
    });
}

/// Long-polls until the attempt ends or fails.
async fn poll(generation: u32) {
    loop {
        let Some((url, abort)) = with(|link| {
            if link.generation != generation {
                return None;
            }
            let desk = link.live.desk.get_untracked();
            let query = EventsQuery {
                cursors: format_cursors(&desk.cursors()),
                events_after: desk.events_after,
                wait: Some(MAX_POLL_WAIT_SECS),
            };
            let mut url = format!("{HTTP_AGENT_EVENTS_PATH}?wait={MAX_POLL_WAIT_SECS}");
            if !query.cursors.is_empty() {
                url.push_str("&cursors=");
                url.push_str(&query.cursors);
            }
            if let Some(after) = query.events_after {
                url.push_str(&format!("&events_after={after}"));
            }
            let abort = AbortController::new().ok()?;
            link.poll = Some(abort.clone());
            Some((url, abort))
        })
        .flatten() else {
            return;
        };
        let give_up = {
            let abort = abort.clone();
            set_timeout_with_handle(
                move || abort.abort(),
                Duration::from_secs(u64::from(MAX_POLL_WAIT_SECS)) + POLL_GRACE,
            )
            .ok()
        };
        let result = fetch_frames(&url, None, Some(&abort)).await;
        if let Some(timer) = give_up {
            timer.clear();
        }
        match result {
            Ok(frames) => {
                for frame in frames {
                    handle(generation, frame);
                }
            }
            // Given up after its wait: poll again at once, unless the attempt itself ended.
            Err(FetchError::Aborted) if current(generation) => {}
            Err(error) => return http_failed(generation, error),
        }
    }
}

/// Sends the queued frames over HTTP, one request at a time.
fn flush(generation: u32) {
    let Some(body) = with(|link| {
        if link.generation != generation || !link.welcomed || link.sending || link.queue.is_empty()
        {
            return None;
        }
        link.sending = true;
        let frames = std::mem::take(&mut link.queue);
        serde_json::to_string(&frames).ok()
    })
    .flatten() else {
        return;
    };
    leptos::task::spawn_local(async move {
        let result = fetch_frames(HTTP_AGENT_SEND_PATH, Some(body), None).await;
        with(|link| {
            if link.generation == generation {
                link.sending = false;
            }
        });
        match result {
            Ok(frames) => {
                for frame in frames {
                    handle(generation, frame);
                }
                flush(generation);
            }
            Err(error) => http_failed(generation, error),
        }
    });
}
