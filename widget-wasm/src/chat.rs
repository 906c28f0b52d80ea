//! The visitor's side of the real-time protocol (`docs/protocol.md`): one state machine over
//! either transport. It keeps the conversation's cursor and the outbox, drops repeats, resends
//! unacknowledged messages with their ids after every reconnect, and moves from WebSocket to HTTP
//! when WebSockets fail — and back when they work again.

use crate::browser::{self, Socket};
use crate::i18n::{Text, t};
use crate::json::{self, Obj};
use crate::persist::{self, Outgoing, Saved};
use crate::ui::{self, Ui};
use alloc::boxed::Box;
use alloc::rc::{Rc, Weak};
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// The chat, shared by event handlers, timers and requests.
pub type Shared = Rc<RefCell<Chat>>;

/// What to do with a request's answer: its HTTP status (0 when the network failed) and its
/// JSON body (`undefined` when there is none).
type Then = dyn FnOnce(&mut Chat, u16, JsValue);

/// How the widget may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// WebSocket first, HTTP when WebSockets fail.
    Auto,
    /// `data-transport="http"`: never try a WebSocket.
    HttpOnly,
}

/// The connection in use.
enum Link {
    None,
    /// A WebSocket and when it was opened (one that dies young counts as failing).
    Ws(Socket, f64),
    Http,
}

/// What an HTTP `send` request carried, which decides what its answer means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Post {
    /// The hello that opens an HTTP session; polling starts after it.
    Hello,
    /// Messages from the outbox.
    Sends,
    /// Typing, preview, read, page views, pongs: best effort.
    Ephemeral,
}

/// WebSocket failures in a row after which the widget uses HTTP.
const WS_FAILURES_BEFORE_HTTP: u32 = 2;
/// A WebSocket that dies sooner than this after opening counts as a failure.
const WS_MIN_LIFE_MS: f64 = 10_000.0;
/// First wait before trying a WebSocket again while on HTTP; doubles up to the maximum.
const UPGRADE_FIRST_MS: i32 = 60_000;
const UPGRADE_MAX_MS: i32 = 600_000;
/// Long-poll hold, and the deadline after which an unanswered poll is abandoned.
const POLL_WAIT_SECS: u32 = 25;
const POLL_DEADLINE_MS: i32 = 35_000;
const SEND_DEADLINE_MS: i32 = 15_000;
/// A file of the largest size (10 MiB) over a slow mobile link.
const UPLOAD_DEADLINE_MS: i32 = 180_000;
/// An agent's invitation this much older (by server time) than the page's first `welcome`
/// still opens the panel: it was made while the visitor moved from page to page.
const INVITATION_FRESH_MS: f64 = 60_000.0;

pub struct Chat {
    me: Weak<RefCell<Chat>>,
    pub ui: Ui,
    site: String,
    /// `http(s)://host:port` of the Kefu server (where `widget.js` came from).
    base: String,
    mode: Mode,
    saved: Saved,
    outbox: Vec<Outgoing>,
    /// Client ids sent on the current connection and not yet answered (not sent twice).
    sent: Vec<String>,
    /// Highest seq up to which every message of the conversation is shown.
    cursor: i64,
    /// Messages that arrived after a gap, shown once the gap is filled.
    held: Vec<(i64, JsValue)>,
    link: Link,
    /// Bumped on every connect; answers and events of older connections are ignored.
    generation: u32,
    /// Failures since the last `welcome`, for the reconnect backoff.
    failures: u32,
    /// WebSocket attempts that failed in a row.
    ws_failures: u32,
    /// While on HTTP: the WebSocket trying whether WebSockets work again, and the wait before
    /// the next try.
    probe: Option<Socket>,
    upgrade_wait: i32,
    /// The current connection ended because of an error frame, not a network failure.
    refused: bool,
    welcomed: bool,
    /// An HTTP request with sends is in flight (one at a time keeps them in order).
    sending: bool,
    /// Told not to reconnect (banned, origin not allowed, unsupported version).
    stopped: bool,
    unread: u32,
    /// An agent is online (the latest `availability`).
    online: bool,
    /// The site asks for name and e-mail before the first message.
    prechat: bool,
    /// A profile to send once the server knows the visitor (from `Kefu.identify`).
    profile: Option<String>,
    /// Messages created before this server time are history, not new replies.
    fresh_after: Option<f64>,
    /// The conversation shown was taken up from the server (an agent's invitation, a chat
    /// begun in another tab), not begun or restored here: if the first message shown in it is
    /// a recent one of an agent's, the panel opens for it.
    adopted: bool,
    sneak_peek: bool,
    max_message_bytes: usize,
    /// The site's accepted file types, comma-separated (the file input's `accept`).
    file_types: String,
    /// When `typing: true` was last sent.
    typing_sent_at: f64,
    preview_timer: Option<i32>,
    typing_timer: Option<i32>,
    /// The page URL last reported, to tell navigations apart and give them a referrer.
    page_url: String,
}

/// `navigator[key]` as a string (read as a plain property: one import for every key).
pub fn navigator(key: &str) -> Option<String> {
    json::text(&json::get(&browser::win(), "navigator"), key)
}

fn now() -> f64 {
    js_sys::Date::now()
}

/// A random id for a send (`A–Z a–z 0–9 - _`, as the protocol asks).
fn client_id() -> String {
    let mut id = String::with_capacity(32);
    for _ in 0..4 {
        let part = (js_sys::Math::random() * 4_294_967_296.0) as u32;
        for shift in (0..8).rev() {
            let digit = (part >> (shift * 4)) & 0xf;
            id.push(char::from_digit(digit, 16).unwrap_or('0'));
        }
    }
    id
}

/// Whether the visitor asked sites not to track them.
fn do_not_track() -> bool {
    // Read as a plain property: browsers without the setting give null, not a string.
    navigator("doNotTrack").as_deref() == Some("1")
}

impl Chat {
    /// A chat for `site` talking to `base`; shows the outbox left by a reload, then reads the
    /// site's settings and connects.
    pub fn new(ui: Ui, site: String, base: String, mode: Mode) -> Shared {
        let saved = persist::load(&site);
        let outbox = persist::load_outbox(&site);
        Rc::new_cyclic(|me| {
            let mut chat = Chat {
                me: me.clone(),
                ui,
                site,
                base,
                mode,
                saved,
                outbox,
                sent: Vec::new(),
                cursor: 0,
                held: Vec::new(),
                link: Link::None,
                generation: 0,
                failures: 0,
                ws_failures: 0,
                probe: None,
                upgrade_wait: UPGRADE_FIRST_MS,
                refused: false,
                welcomed: false,
                sending: false,
                stopped: false,
                unread: 0,
                online: true,
                prechat: false,
                profile: None,
                fresh_after: None,
                adopted: false,
                sneak_peek: true,
                max_message_bytes: 8192,
                file_types: String::new(),
                typing_sent_at: 0.0,
                preview_timer: None,
                typing_timer: None,
                page_url: String::new(),
            };
            for o in &chat.outbox {
                let file = chat.file(&o.file);
                chat.ui.add_pending(&o.client_id, &o.body, file.as_ref());
            }
            // Both answer later, when `me` leads to the finished chat.
            chat.load_site();
            chat.later(0, Chat::connect);
            RefCell::new(chat)
        })
    }

    /// Runs `f` on the chat after `ms` milliseconds; returns the timer id.
    pub fn later(&self, ms: i32, f: impl FnOnce(&mut Chat) + 'static) -> Option<i32> {
        self.later_boxed(ms, Box::new(f))
    }

    // One closure type for every timer keeps the wasm small (each type is compiled separately).
    fn later_boxed(&self, ms: i32, f: Box<dyn FnOnce(&mut Chat)>) -> Option<i32> {
        let me = self.me.clone();
        let callback = Closure::once_into_js(move || with(&me, f));
        browser::win()
            .set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), ms)
            .ok()
    }

    fn cancel(timer: Option<i32>) {
        if let Some(timer) = timer {
            browser::win().clear_timeout_with_handle(timer);
        }
    }

    /// Sends a request to the server (`path` under `base`, with the visitor token once there
    /// is one) and hands the answer to `then` on the chat, unless the chat is gone.
    fn fetch(
        &self,
        method: &'static str,
        path: &str,
        body: Option<String>,
        deadline_ms: i32,
        then: impl FnOnce(&mut Chat, u16, JsValue) + 'static,
    ) {
        let mut url = self.base.clone();
        url.push_str(path);
        let body = body.map_or(JsValue::UNDEFINED, JsValue::from);
        self.fetch_boxed(method, &url, body, None, deadline_ms, Box::new(then));
    }

    fn fetch_boxed(
        &self,
        method: &str,
        url: &str,
        body: JsValue,
        kind: Option<String>,
        deadline_ms: i32,
        then: Box<Then>,
    ) {
        let me = self.me.clone();
        let done = Closure::once_into_js(move |status: u16, value: JsValue| {
            with(&me, |chat| then(chat, status, value));
        });
        let token = self.saved.token.clone();
        browser::request(method, url, body, kind, token, deadline_ms, done);
    }

    // ---- site settings ----

    /// Reads the site's widget settings and applies them.
    pub fn load_site(&self) {
        let mut path = String::from("/http/visitor/site?key=");
        path.push_str(&String::from(js_sys::encode_uri_component(&self.site)));
        self.fetch(
            "GET",
            &path,
            None,
            SEND_DEADLINE_MS,
            |chat, status, site| match status {
                200 => {
                    chat.sneak_peek = json::flag(&site, "sneak_peek") != Some(false);
                    chat.prechat = json::flag(&site, "prechat") == Some(true);
                    chat.online = json::flag(&site, "online") != Some(false);
                    let types = json::get(&json::get(&site, "attachments"), "types");
                    chat.file_types = json::items(&types).join(",").into();
                    chat.ui.set_files(&chat.file_types, false);
                    chat.ui
                        .offer_transcript(json::flag(&site, "transcripts") == Some(true));
                    chat.show_forms();
                    chat.ui.set_site(
                        &json::text(&site, "name").unwrap_or_default(),
                        json::text(&site, "greeting").as_deref(),
                        &json::text(&site, "color").unwrap_or_default(),
                        json::text(&site, "position").as_deref() == Some("left"),
                    );
                }
                // No network: the real-time connection retries on its own; the defaults stay.
                0 => {}
                _ => {
                    for frame in json::items(&site) {
                        chat.handle(frame);
                    }
                }
            },
        );
    }

    // ---- connecting ----

    /// Opens a connection: a WebSocket, or the HTTP fallback.
    pub fn connect(&mut self) {
        if self.stopped {
            return;
        }
        self.drop_link();
        self.generation = self.generation.wrapping_add(1);
        self.welcomed = false;
        self.refused = false;
        self.sending = false;
        self.sent.clear();
        let generation = self.generation;
        if self.mode == Mode::Auto && self.ws_failures < WS_FAILURES_BEFORE_HTTP {
            self.open_ws(generation);
        } else {
            self.link = Link::Http;
            let hello = self.hello();
            self.post(generation, vec![hello], Post::Hello);
        }
    }

    fn drop_link(&mut self) {
        if let Link::Ws(socket, _) = &self.link {
            browser::quiet(socket);
        }
        self.link = Link::None;
    }

    /// Opens a WebSocket to the server whose events (0 open, 1 message, 2 closed) go to `on`,
    /// called only while `generation` is current (always, for `None`).
    fn socket(&self, generation: Option<u32>, on: fn(&mut Chat, u8, JsValue)) -> Option<Socket> {
        let mut url = String::from("ws");
        url.push_str(self.base.strip_prefix("http").unwrap_or(&self.base));
        url.push_str("/ws/visitor");
        let me = self.me.clone();
        let handler = Closure::<dyn FnMut(u8, JsValue)>::new(move |kind: u8, data: JsValue| {
            with(&me, |chat| {
                if generation.is_none_or(|g| g == chat.generation) {
                    on(chat, kind, data);
                }
            });
        });
        let socket = browser::socket(&url, handler.as_ref());
        // The handler lives as long as the page; a socket replaced later is quieted first.
        handler.forget();
        socket
    }

    fn open_ws(&mut self, generation: u32) {
        let Some(socket) = self.socket(Some(generation), Chat::on_socket) else {
            self.ws_failures += 1;
            self.lost();
            return;
        };
        self.link = Link::Ws(socket, now());
    }

    fn on_socket(&mut self, kind: u8, data: JsValue) {
        match kind {
            0 => {
                let hello = self.hello();
                self.emit(hello);
            }
            1 => {
                if let Some(frame) = data.as_string().as_deref().and_then(json::parse) {
                    self.handle(frame);
                }
            }
            _ => {
                let died_young = match self.link {
                    Link::Ws(_, opened) => !self.welcomed || now() - opened < WS_MIN_LIFE_MS,
                    _ => false,
                };
                if self.refused {
                    // Ended by an error frame, which said what to do: not a transport failure.
                } else if died_young {
                    self.ws_failures += 1;
                } else {
                    self.ws_failures = 0;
                }
                self.lost();
            }
        }
    }

    /// The connection is gone: reconnect after a jittered, growing wait.
    fn lost(&mut self) {
        if self.stopped {
            return;
        }
        self.drop_link();
        self.welcomed = false;
        let immediate = core::mem::take(&mut self.refused) && self.failures == 0;
        self.failures += 1;
        if self.failures > 2 {
            self.ui.notice(Some(Text::Reconnecting));
        }
        let cap = f64::from((500u32 << self.failures.min(6)).min(30_000));
        let wait = if immediate {
            0
        } else {
            (js_sys::Math::random() * cap) as i32
        };
        let generation = self.generation;
        self.later(wait, move |chat| {
            if chat.generation == generation {
                chat.connect();
            }
        });
    }

    /// While on the HTTP fallback, tries a WebSocket now and then; when one opens, the chat
    /// moves back to WebSockets.
    fn schedule_upgrade(&mut self, wait: i32) {
        if self.mode == Mode::HttpOnly {
            return;
        }
        self.upgrade_wait = wait;
        self.later(wait, |chat| {
            if !matches!(chat.link, Link::Http) || chat.stopped || chat.probe.is_some() {
                return;
            }
            chat.probe = chat.socket(None, Chat::on_probe);
            if chat.probe.is_none() {
                chat.on_probe(2, JsValue::UNDEFINED);
            }
        });
    }

    fn on_probe(&mut self, kind: u8, _: JsValue) {
        if let Some(probe) = self.probe.take() {
            browser::quiet(&probe);
        }
        if !matches!(self.link, Link::Http) {
            return;
        }
        if kind == 0 {
            // It opened: WebSockets work again here.
            self.ws_failures = 0;
            self.connect();
        } else {
            self.schedule_upgrade((self.upgrade_wait * 2).min(UPGRADE_MAX_MS));
        }
    }

    /// The hello for either transport.
    fn hello(&self) -> JsValue {
        let language = navigator("language");
        // The time zone and screen size are for agents only: not sent under Do Not Track.
        let device = if do_not_track() {
            JsValue::UNDEFINED
        } else {
            browser::device()
        };
        Obj::frame("hello")
            .set("protocol_version", 1)
            .set("site_key", self.site.as_str())
            .maybe("visitor_token", self.saved.token.as_deref())
            .maybe("page", self.page(None))
            .maybe("language", language)
            .set("time_zone", json::get(&device, "0"))
            .set("screen", json::get(&device, "1"))
            .value()
    }

    /// This page (`url`, `title`, `referrer`), unless the visitor asked not to be tracked.
    fn page(&self, referrer: Option<String>) -> Option<JsValue> {
        if do_not_track() {
            return None;
        }
        let doc = &self.ui.doc;
        let referrer = referrer.or_else(|| json::text(doc, "referrer"));
        Some(
            Obj::new()
                .set("url", self.url())
                .set("title", json::get(doc, "title"))
                .maybe("referrer", referrer.filter(|r| !r.is_empty()))
                .value(),
        )
    }

    /// Sends a frame on the current connection (best effort).
    fn emit(&mut self, frame: JsValue) {
        match &self.link {
            Link::Ws(socket, _) => browser::send(socket, &json::stringify(&frame)),
            Link::Http if self.welcomed => self.post(self.generation, vec![frame], Post::Ephemeral),
            _ => {}
        }
    }

    // ---- the HTTP fallback ----

    fn post(&mut self, generation: u32, frames: Vec<JsValue>, kind: Post) {
        let body = json::stringify(&json::array(frames));
        self.fetch(
            "POST",
            "/http/visitor/send",
            Some(body),
            SEND_DEADLINE_MS,
            move |chat, status, body| {
                if chat.generation != generation {
                    return;
                }
                if kind == Post::Sends {
                    chat.sending = false;
                }
                for frame in json::items(&body) {
                    chat.handle(frame);
                }
                match (status == 200, kind) {
                    (true, Post::Hello) => chat.poll(generation),
                    (true, Post::Sends) => chat.flush(),
                    (false, Post::Hello) => chat.lost(),
                    (false, Post::Sends) => chat.retry_sends(),
                    _ => {}
                }
            },
        );
    }

    fn retry_sends(&mut self) {
        self.sent.clear();
        self.later(2_000, Chat::flush);
    }

    fn poll(&mut self, generation: u32) {
        let mut path = String::from("/http/visitor/events?wait=");
        push_number(&mut path, i64::from(POLL_WAIT_SECS));
        if let Some(conversation) = self.saved.conversation {
            path.push_str("&cursors=");
            push_number(&mut path, conversation);
            path.push(':');
            push_number(&mut path, self.cursor);
        }
        self.fetch(
            "GET",
            &path,
            None,
            POLL_DEADLINE_MS,
            move |chat, status, body| {
                if chat.generation != generation {
                    return;
                }
                for frame in json::items(&body) {
                    chat.handle(frame);
                }
                if chat.generation != generation {
                    // A frame (reconnect, an error) already moved the chat on.
                } else if status == 200 {
                    chat.poll(generation);
                } else {
                    chat.lost();
                }
            },
        );
    }

    // ---- sending ----

    /// Sends what the outbox holds and this connection has not sent yet. Before the first
    /// message has its conversation, only that message goes (the rest wait for its ack).
    fn flush(&mut self) {
        if !self.welcomed {
            return;
        }
        let conversation = self.saved.conversation;
        let sendable = if conversation.is_some() {
            self.outbox.len()
        } else {
            self.outbox.len().min(1)
        };
        if matches!(self.link, Link::Http) && self.sending {
            return;
        }
        let mut frames = Vec::new();
        for o in self.outbox.iter().take(sendable) {
            if !self.sent.contains(&o.client_id) {
                self.sent.push(o.client_id.clone());
                let frame = Obj::frame("send")
                    .maybe("conversation_id", conversation.map(|id| id as f64))
                    .set("client_id", o.client_id.as_str())
                    .set("body", o.body.as_str())
                    .set("attachment", json::get(&o.file, "id"))
                    .value();
                frames.push(frame);
            }
        }
        if frames.is_empty() {
            return;
        }
        match self.link {
            Link::Http => {
                self.sending = true;
                self.post(self.generation, frames, Post::Sends);
            }
            _ => {
                for frame in frames {
                    self.emit(frame);
                }
            }
        }
    }

    /// The visitor pressed Send.
    pub fn submit(&mut self) {
        let body = ui::value(&self.ui.input);
        if blank(&body) {
            return;
        }
        if body.len() > self.max_message_bytes {
            self.ui.notice(Some(Text::TooLong));
            return;
        }
        self.ui.notice(None);
        ui::set_value(&self.ui.input, "");
        self.queue(body, JsValue::UNDEFINED);
    }

    /// Shows a message as sending and puts it in the outbox, which delivers it.
    fn queue(&mut self, body: String, file: JsValue) {
        let id = client_id();
        self.ui.add_pending(&id, &body, self.file(&file).as_ref());
        self.outbox.push(Outgoing {
            client_id: id,
            body,
            file,
        });
        persist::save_outbox(&self.site, &self.outbox);
        self.stop_typing();
        self.flush();
    }

    /// The visitor chose a file (the picker offers the site's types): uploaded, then sent like a
    /// message. The server checks type and size; a refusal shows a notice. Needs the token of a
    /// first `welcome`.
    pub fn attach(&mut self, input: &JsValue) {
        let file = browser::picked(input);
        if file.is_undefined() {
            return;
        }
        let kind = json::text(&file, "type");
        if self.saved.token.is_none() {
            self.ui.notice(Some(Text::Failed));
            return;
        }
        // The server takes files only into an open conversation.
        if self.saved.conversation.is_none() {
            self.ui.notice(Some(Text::FileNeedsChat));
            return;
        }
        self.ui.notice(None);
        self.ui.set_files(&self.file_types, true);
        let mut url = self.base.clone();
        url.push_str("/http/visitor/upload?name=");
        let name = json::text(&file, "name").unwrap_or_default();
        url.push_str(&String::from(js_sys::encode_uri_component(&name)));
        let then = |chat: &mut Chat, status: u16, answer: JsValue| {
            chat.ui.set_files(&chat.file_types, false);
            match status {
                201 => chat.queue(String::new(), answer),
                413 | 415 => chat.ui.notice(Some(Text::FileRefused)),
                // The conversation was resolved meanwhile: a new message opens the next one.
                409 => chat.ui.notice(Some(Text::FileNeedsChat)),
                429 => chat.ui.notice(Some(Text::TooMany)),
                _ => chat.ui.notice(Some(Text::Failed)),
            }
        };
        self.fetch_boxed("POST", &url, file, kind, UPLOAD_DEADLINE_MS, Box::new(then));
    }

    /// How the panel shows an attachment (`undefined`: none).
    fn file(&self, attachment: &JsValue) -> Option<ui::File> {
        let id = json::text(attachment, "id")?;
        let kind = json::text(attachment, "content_type").unwrap_or_default();
        let mut url = self.base.clone();
        url.push_str("/attachments/");
        url.push_str(&id);
        Some(ui::File {
            url,
            name: json::text(attachment, "name").unwrap_or_default(),
            // The server accepts only raster pictures (never SVG) among images.
            picture: kind.starts_with("image/"),
        })
    }

    /// The visitor typed: tell the agents (typing at most every 3 s, the draft every 500 ms).
    pub fn typed(&mut self) {
        if let Some(conversation) = self.saved.conversation
            && now() - self.typing_sent_at > 3_000.0
        {
            self.typing_sent_at = now();
            self.emit(typing_frame(conversation, true));
        }
        if self.sneak_peek {
            Chat::cancel(self.preview_timer.take());
            self.preview_timer = self.later(500, |chat| {
                chat.preview_timer = None;
                let mut text = ui::value(&chat.ui.input);
                truncate(&mut text, chat.max_message_bytes);
                let frame = Obj::frame("preview")
                    .maybe(
                        "conversation_id",
                        chat.saved.conversation.map(|id| id as f64),
                    )
                    .set("text", text)
                    .value();
                chat.emit(frame);
            });
        }
    }

    fn stop_typing(&mut self) {
        Chat::cancel(self.preview_timer.take());
        if self.typing_sent_at > 0.0 {
            self.typing_sent_at = 0.0;
            if let Some(conversation) = self.saved.conversation {
                self.emit(typing_frame(conversation, false));
            }
            if self.sneak_peek {
                let frame = Obj::frame("preview")
                    .maybe(
                        "conversation_id",
                        self.saved.conversation.map(|id| id as f64),
                    )
                    .set("text", "")
                    .value();
                self.emit(frame);
            }
        }
    }

    // ---- panel ----

    /// Opens the panel; replies shown are now read.
    pub fn open(&mut self) {
        self.ui.show_panel(true);
        self.unread = 0;
        self.ui.set_unread(0);
        self.send_read();
        // Business hours may have opened or closed since the page loaded.
        self.load_site();
    }

    /// Closes the panel.
    pub fn close(&mut self) {
        self.ui.show_panel(false);
        self.stop_typing();
    }

    /// The page's address.
    fn url(&self) -> String {
        json::text(&self.ui.doc, "URL").unwrap_or_default()
    }

    /// A person can see the panel: it is open, in a tab in front.
    fn seen(&self) -> bool {
        self.ui.is_open() && json::flag(&self.ui.doc, "hidden") != Some(true)
    }

    /// Tells the agent how far the visitor has read, when a person can see the panel.
    pub fn send_read(&mut self) {
        if !self.seen() {
            return;
        }
        if self.unread > 0 {
            self.unread = 0;
            self.ui.set_unread(0);
        }
        if let Some(conversation) = self.saved.conversation
            && self.cursor > 0
        {
            let frame = Obj::frame("read")
                .set("conversation_id", conversation as f64)
                .set("up_to_seq", self.cursor as f64)
                .value();
            self.emit(frame);
        }
    }

    /// The host page navigated (including single-page-app history changes).
    pub fn page_view(&mut self) {
        let url = self.url();
        if url == self.page_url {
            return;
        }
        let referrer = core::mem::replace(&mut self.page_url, url);
        if !self.welcomed || referrer.is_empty() {
            return;
        }
        if let Some(page) = self.page(Some(referrer)) {
            let frame = Obj::frame("page_view")
                .set("url", json::get(&page, "url"))
                .set("title", json::get(&page, "title"))
                .set("referrer", json::get(&page, "referrer"))
                .value();
            self.emit(frame);
        }
    }

    /// Stores the offline form as a leave-message.
    pub fn leave_message(&mut self) {
        let form = &self.ui.offline;
        let (name, contact, body) = (
            Ui::value(form, "name"),
            Ui::value(form, "contact"),
            Ui::value(form, "body"),
        );
        if blank(&contact) {
            self.ui.notice(Some(Text::ContactRequired));
            return;
        }
        if blank(&body) {
            return;
        }
        let form = json::stringify(
            &Obj::new()
                .maybe("name", Some(name).filter(|n| !blank(n)))
                .set("contact", contact)
                .set("body", body)
                .value(),
        );
        self.fetch(
            "POST",
            "/http/visitor/leave-message",
            Some(form),
            SEND_DEADLINE_MS,
            |chat, status, _| match status {
                201 => chat.ui.left_message(),
                413 => chat.ui.notice(Some(Text::TooLong)),
                429 => chat.ui.notice(Some(Text::TooMany)),
                _ => chat.ui.notice(Some(Text::Failed)),
            },
        );
    }

    /// Shows the composer, the pre-chat form or the offline form, as the state asks.
    fn show_forms(&self) {
        let ask_first = self.prechat && !self.saved.introduced && self.saved.conversation.is_none();
        self.ui.set_online(self.online, ask_first);
    }

    /// The pre-chat form was sent: remember the visitor's name and e-mail, then chat.
    pub fn introduce(&mut self) {
        let form = &self.ui.prechat;
        let (name, email) = (Ui::value(form, "name"), Ui::value(form, "email"));
        let profile = Obj::new()
            .maybe("name", Some(name).filter(|n| !blank(n)))
            .maybe("email", Some(email).filter(|e| !blank(e)))
            .value();
        self.identify(profile);
        self.saved.introduced = true;
        persist::save(&self.site, &self.saved);
        self.show_forms();
        ui::focus(&self.ui.input);
    }

    /// Sets the visitor's name, e-mail and attributes (`Kefu.identify`); sent as soon as the
    /// server knows the visitor.
    pub fn identify(&mut self, profile: JsValue) {
        self.profile = Some(json::stringify(&profile));
        self.send_profile();
    }

    fn send_profile(&mut self) {
        if !self.welcomed {
            return;
        }
        let Some(profile) = self.profile.take() else {
            return;
        };
        self.fetch(
            "POST",
            "/http/visitor/profile",
            Some(profile),
            SEND_DEADLINE_MS,
            |chat, status, _| {
                if status != 204 {
                    chat.ui.notice(Some(Text::Failed));
                }
            },
        );
    }

    // ---- frames from the server ----

    fn handle(&mut self, frame: JsValue) {
        match json::text(&frame, "type").as_deref() {
            Some("welcome") => self.on_welcome(&frame),
            Some("availability") => {
                self.online = json::flag(&frame, "online") == Some(true);
                self.show_forms();
            }
            Some("ack") => self.on_ack(&frame),
            Some("message") => self.on_message(frame),
            Some("typing") => self.on_typing(&frame),
            // Every agent is busy: say where in the queue the chat waits.
            Some("queue") => {
                let mut place = String::from("#");
                push_number(&mut place, json::int(&frame, "position").unwrap_or(1));
                self.ui.typing(Some(&place), Text::Queued);
            }
            // The header names the agent as soon as one takes the chat.
            Some("assigned") => {
                self.ui.typing(None, Text::Typing);
                if let Some(name) = json::text(&frame, "agent_name") {
                    self.ui.set_agent(&name);
                }
            }
            Some("read")
                if json::text(&frame, "author").as_deref() == Some("agent")
                    && json::int(&frame, "conversation_id") == self.saved.conversation =>
            {
                self.ui
                    .mark_read(json::int(&frame, "up_to_seq").unwrap_or(0));
            }
            // Agents' messages in the visitor's language (an unavailable one keeps the original).
            Some("translation")
                if json::int(&frame, "conversation_id") == self.saved.conversation =>
            {
                if let (Some(seq), Some(text)) =
                    (json::int(&frame, "seq"), json::text(&frame, "text"))
                {
                    self.ui.translate(seq, text);
                }
            }
            Some("error") => self.on_error(&frame),
            Some("ping") => {
                let pong = Obj::frame("pong")
                    .set("nonce", json::get(&frame, "nonce"))
                    .value();
                self.emit(pong);
            }
            Some("reconnect") => {
                let within = json::int(&frame, "within_ms").unwrap_or(5_000) as f64;
                self.drop_link();
                // Answers still in flight belong to the connection that is going away.
                self.generation = self.generation.wrapping_add(1);
                let generation = self.generation;
                self.later((js_sys::Math::random() * within) as i32, move |chat| {
                    if chat.generation == generation {
                        chat.connect();
                    }
                });
            }
            _ => {}
        }
    }

    fn forget_conversation(&mut self) {
        self.saved.conversation = None;
        self.cursor = 0;
        self.held.clear();
        self.ui.clear();
        self.ui.resolved(None);
    }

    /// "Start a new conversation" after one was resolved: the next message opens a new one.
    pub fn start_over(&mut self) {
        self.forget_conversation();
        persist::save(&self.site, &self.saved);
        self.show_forms();
    }

    /// A star of the rating form was clicked (its `value` is the score); with an address in
    /// its e-mail field, the transcript is asked for too.
    pub fn rate(&mut self, event: &web_sys::Event) {
        let Some(conversation) = self.saved.conversation else {
            return;
        };
        // The star's value is one digit, 1 to 5 (read without the parsing machinery).
        let score = json::text(&json::get(event, "submitter"), "value")
            .and_then(|s| s.bytes().next())
            .map_or(5, |digit| digit.wrapping_sub(b'0'));
        let form = json::stringify(
            &Obj::new()
                .set("conversation_id", conversation as f64)
                .set("score", score)
                .set("comment", Ui::value(&self.ui.rate, "comment"))
                .set("transcript_to", Ui::value(&self.ui.rate, "email"))
                .value(),
        );
        self.fetch(
            "POST",
            "/http/visitor/rating",
            Some(form),
            SEND_DEADLINE_MS,
            |chat, status, _| match status {
                204 => chat.ui.resolved(Some(true)),
                // The copy was refused: none before an agent has replied, one an hour.
                409 => chat.ui.notice(Some(Text::CopyNoReply)),
                429 => chat.ui.notice(Some(Text::CopyLater)),
                _ => chat.ui.notice(Some(Text::Failed)),
            },
        );
    }

    fn on_welcome(&mut self, frame: &JsValue) {
        if let Some(token) = json::text(frame, "visitor_token") {
            self.saved.token = Some(token);
        }
        let limits = json::get(frame, "limits");
        if let Some(max) = json::int(&limits, "max_message_bytes") {
            self.max_message_bytes = max as usize;
        }
        if self.fresh_after.is_none() {
            self.fresh_after = json::get(frame, "server_time").as_f64();
        }
        // The visitor's conversations: the one shown, or else the newest, is followed.
        let (mut shown_last_seq, mut newest) = (None, None);
        for head in json::items(&json::get(frame, "conversations")).iter() {
            let id = json::int(&head, "conversation_id");
            if id.is_some() && id == self.saved.conversation {
                shown_last_seq = json::int(&head, "last_seq");
            }
            newest = newest.max(id);
        }
        match (self.saved.conversation, shown_last_seq) {
            // The server has fewer messages than shown (restored from a backup): start over.
            (Some(shown), Some(last_seq)) if last_seq < self.cursor => {
                self.forget_conversation();
                self.saved.conversation = Some(shown);
            }
            (Some(_), Some(_)) => {}
            (Some(_), None) => self.forget_conversation(),
            // One begun elsewhere (an invitation made while this page connected, say).
            (None, _) => {
                self.saved.conversation = newest;
                self.adopted = newest.is_some();
            }
        }
        persist::save(&self.site, &self.saved);
        self.show_forms();
        self.welcomed = true;
        self.failures = 0;
        self.ui.notice(None);
        let transport = match self.link {
            Link::Http => {
                if self.ws_failures == WS_FAILURES_BEFORE_HTTP {
                    self.schedule_upgrade(UPGRADE_FIRST_MS);
                    // Only once per fall back: a later welcome on HTTP must not stack probes.
                    self.ws_failures = WS_FAILURES_BEFORE_HTTP + 1;
                }
                "http"
            }
            _ => "websocket",
        };
        self.ui.set_transport(transport);
        if self.page_url.is_empty() {
            self.page_url = self.url();
        }
        self.follow();
        self.flush();
        self.send_profile();
    }

    /// Over a WebSocket, follows the conversation from the cursor (HTTP polls carry it).
    fn follow(&mut self) {
        if let (Link::Ws(..), Some(conversation)) = (&self.link, self.saved.conversation) {
            let cursor = Obj::new()
                .set("conversation_id", conversation as f64)
                .set("after_seq", self.cursor as f64)
                .value();
            let frame = Obj::frame("resume")
                .set("cursors", json::array([cursor]))
                .value();
            self.emit(frame);
        }
    }

    fn delivered(&mut self, client_id: &str) {
        self.sent.retain(|id| id != client_id);
        let before = self.outbox.len();
        self.outbox.retain(|o| o.client_id != client_id);
        if self.outbox.len() != before {
            persist::save_outbox(&self.site, &self.outbox);
        }
    }

    fn on_ack(&mut self, frame: &JsValue) {
        let (Some(client_id), Some(conversation), Some(seq)) = (
            json::text(frame, "client_id"),
            json::int(frame, "conversation_id"),
            json::int(frame, "seq"),
        ) else {
            return;
        };
        self.delivered(&client_id);
        if self.saved.conversation.is_none() {
            self.saved.conversation = Some(conversation);
            persist::save(&self.site, &self.saved);
            self.follow();
        }
        self.ui.confirm(&client_id, seq, false);
        self.flush();
    }

    fn on_message(&mut self, frame: JsValue) {
        let (Some(conversation), Some(seq)) = (
            json::int(&frame, "conversation_id"),
            json::int(&frame, "seq"),
        ) else {
            return;
        };
        match self.saved.conversation {
            Some(shown) if shown == conversation => {}
            // A late frame of a conversation this page has moved on from.
            Some(shown) if shown > conversation => return,
            // Started in another tab, an agent's invitation, or the next conversation after a
            // resolved one (the server starts one only when none is open): shown from now on.
            shown => {
                if shown.is_some() {
                    self.forget_conversation();
                }
                self.saved.conversation = Some(conversation);
                self.adopted = true;
                persist::save(&self.site, &self.saved);
                self.follow();
            }
        }
        if seq <= self.cursor || self.held.iter().any(|(held, _)| *held == seq) {
            return;
        }
        self.held.push((seq, frame));
        while let Some(at) = self.held.iter().position(|(s, _)| *s == self.cursor + 1) {
            let (_, next) = self.held.swap_remove(at);
            self.cursor += 1;
            self.show(&next);
        }
        self.send_read();
    }

    fn show(&mut self, message: &JsValue) {
        let author = json::text(message, "author").unwrap_or_default();
        let body = json::text(message, "body").unwrap_or_default();
        let client_id = json::text(message, "client_id").unwrap_or_default();
        let file = self.file(&json::get(message, "attachment"));
        let at = json::get(message, "created_at")
            .as_f64()
            .unwrap_or_else(now);
        if author == "system" {
            // A status record: offer the rating after `resolved`, hide it when reopened. Other
            // records (a transcript e-mailed) change nothing here.
            match body.as_str() {
                "resolved" => self.ui.resolved(Some(false)),
                "open" | "pending" => self.ui.resolved(None),
                _ => {}
            }
            return;
        }
        // Only the first message shown decides whether an adopted conversation opens the panel.
        let invited = core::mem::take(&mut self.adopted)
            && author == "agent"
            && self
                .fresh_after
                .is_some_and(|after| at + INVITATION_FRESH_MS >= after);
        if author == "visitor" {
            self.delivered(&client_id);
            if !self.ui.confirm(&client_id, self.cursor, true) {
                self.ui
                    .add_message(None, &body, file.as_ref(), at, self.cursor, &client_id);
            }
            return;
        }
        let name = json::text(message, "agent_name")
            .unwrap_or_else(|| t(self.ui.lang, Text::Agent).to_string());
        if author == "agent" {
            self.ui.set_agent(&name);
            self.ui.typing(None, Text::Typing);
        }
        self.ui.add_message(
            Some(&name),
            &body,
            file.as_ref(),
            at,
            self.cursor,
            &client_id,
        );
        let fresh = self.fresh_after.is_some_and(|after| at >= after);
        if fresh && !self.seen() {
            self.unread += 1;
            self.ui.set_unread(self.unread);
            if !self.ui.is_open() {
                browser::chime();
            }
        }
        if invited {
            self.open();
        }
    }

    fn on_typing(&mut self, frame: &JsValue) {
        if json::text(frame, "author").as_deref() != Some("agent")
            || json::int(frame, "conversation_id") != self.saved.conversation
        {
            return;
        }
        Chat::cancel(self.typing_timer.take());
        if json::flag(frame, "typing") == Some(true) {
            let name = json::text(frame, "agent_name")
                .unwrap_or_else(|| t(self.ui.lang, Text::Agent).to_string());
            self.ui.typing(Some(&name), Text::Typing);
            // The indicator goes after 6 s without a repeat.
            self.typing_timer = self.later(6_000, |chat| {
                chat.typing_timer = None;
                chat.ui.typing(None, Text::Typing);
            });
        } else {
            self.ui.typing(None, Text::Typing);
        }
    }

    fn on_error(&mut self, frame: &JsValue) {
        let code = json::text(frame, "code").unwrap_or_default();
        if let Some(client_id) = json::text(frame, "client_id") {
            match code.as_str() {
                "rate_limited" | "unavailable" | "internal" => {
                    // Counted as sent until the wait is over, so the flush that follows an
                    // HTTP answer does not send it again at once.
                    let wait = json::int(frame, "retry_after_ms").unwrap_or(2_000) as i32;
                    self.later(wait, move |chat| {
                        chat.sent.retain(|id| *id != client_id);
                        chat.flush();
                    });
                }
                _ => {
                    self.delivered(&client_id);
                    let reason = if code == "too_large" {
                        Text::TooLong
                    } else {
                        Text::NotSent
                    };
                    self.ui.fail(&client_id, reason);
                }
            }
            return;
        }
        match code.as_str() {
            "bad_token" => {
                // A new visitor from now on: the old identity is not valid here.
                self.saved = Saved::default();
                self.forget_conversation();
                persist::save(&self.site, &self.saved);
                self.refused = true;
            }
            "banned" | "origin_not_allowed" | "version_unsupported" => {
                self.stopped = true;
                self.drop_link();
                self.ui.unavailable();
            }
            "not_found" if json::int(frame, "conversation_id") == self.saved.conversation => {
                self.forget_conversation();
                persist::save(&self.site, &self.saved);
            }
            // A spent hello budget closes the connection like a full one: back off and retry.
            "lagging" | "too_many_connections" | "rate_limited" | "unavailable" | "internal" => {
                self.refused = true
            }
            _ => {}
        }
    }
}

/// Runs `f` on the chat, unless it is gone or busy: a browser event that fires during one of
/// the chat's own DOM calls is dropped, where `borrow_mut` would panic and so stop the widget
/// for good (a panic traps, leaving the chat borrowed).
pub fn with(me: &Weak<RefCell<Chat>>, f: impl FnOnce(&mut Chat)) {
    if let Some(me) = me.upgrade()
        && let Ok(mut chat) = me.try_borrow_mut()
    {
        f(&mut chat);
    }
}

/// Whether `text` is empty or only whitespace (what the server refuses as a message). Smaller
/// than `trim().is_empty()`, which pulls in the generic trimming code.
fn blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

/// Appends a number in decimal (without the formatting machinery, which the size budget
/// cannot afford).
pub fn push_number(text: &mut String, number: i64) {
    if number < 0 {
        text.push('-');
    }
    let mut digits = [0u8; 20];
    let mut n = number.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        text.push(char::from(d));
    }
}

fn typing_frame(conversation: i64, typing: bool) -> JsValue {
    Obj::frame("typing")
        .set("conversation_id", conversation as f64)
        .set("typing", typing)
        .value()
}

/// Cuts `text` to at most `max` UTF-8 bytes, at a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::{blank, push_number};

    #[test]
    fn blank_is_only_whitespace_in_any_script() {
        for text in ["", " ", "\n\t ", "\u{3000}", "\u{a0}"] {
            assert!(blank(text), "{text:?}");
        }
        for text in ["a", " 好 ", "\u{3000}x"] {
            assert!(!blank(text), "{text:?}");
        }
    }

    #[test]
    fn numbers_print_in_decimal() {
        for n in [0, 7, 10, 1234567890123, -42, i64::MAX, i64::MIN] {
            let mut text = String::new();
            push_number(&mut text, n);
            assert_eq!(text, n.to_string());
        }
    }
}
