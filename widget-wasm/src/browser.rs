//! The few browser APIs the widget needs beyond building its DOM, as small JavaScript helpers:
//! fetch with a deadline, a WebSocket's events, storage, a chime. One helper each, instead of
//! the dozens of web-sys bindings the same calls would take, keeps the wasm inside its budget.
//! The helpers only move values in and out; every decision stays in Rust.

use alloc::string::String;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export function win() { return window; }
export function clock(at) { return new Date(at).toTimeString().slice(0, 5); }
export function request(method, url, body, kind, token, deadline, done) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = kind || "application/json";
  if (token !== undefined) headers["x-kefu-visitor-token"] = token;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), deadline);
  fetch(url, { method, body, headers, signal: abort.signal })
    .then((r) => r.text().then((t) => { let v; try { v = JSON.parse(t); } catch (e) {} return [r.status, v]; }))
    .catch(() => [0, undefined])
    .then(([status, value]) => { clearTimeout(timer); done(status, value); });
}
export function socket(url, on) {
  try {
    const ws = new WebSocket(url);
    ws.onopen = () => on(0, undefined);
    ws.onmessage = (e) => on(1, e.data);
    ws.onclose = () => on(2, undefined);
    return ws;
  } catch (e) {
    return undefined;
  }
}
export function picked(input) { const file = input.files[0]; input.value = ""; return file; }
export function send(ws, text) { if (ws.readyState === 1) ws.send(text); }
export function quiet(ws) { ws.onopen = ws.onmessage = ws.onclose = null; try { ws.close(); } catch (e) {} }
export function load(session, key) { try { return (session ? sessionStorage : localStorage).getItem(key); } catch (e) { return null; } }
export function store(session, key, value) { try { (session ? sessionStorage : localStorage).setItem(key, value); } catch (e) {} }
export function device() {
  try { return [Intl.DateTimeFormat().resolvedOptions().timeZone, screen.width + "x" + screen.height]; } catch (e) { return []; }
}
export function chime() {
  try {
    const audio = new AudioContext(), tone = audio.createOscillator(), gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.value = 0.08;
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.15);
  } catch (e) {}
}
"#)]
extern "C" {
    /// The page's `window`, for the few calls made on it. (`web_sys::window()` looks for the
    /// global object four ways and checks its type: five imports more.)
    pub fn win() -> web_sys::Window;

    /// `HH:MM` of a time (ms since the epoch) in the visitor's time zone.
    pub fn clock(at: f64) -> String;

    /// `fetch` with a body (JSON text, or a `File` of type `kind`) and the visitor token; after
    /// at most `deadline` ms calls `done(status, parsed JSON or undefined)` once — status 0 when
    /// the network failed.
    pub fn request(
        method: &str,
        url: &str,
        body: JsValue,
        kind: Option<String>,
        token: Option<String>,
        deadline: i32,
        done: JsValue,
    );

    /// The `File` chosen in a file input (undefined when none), clearing the input so the same
    /// file can be chosen again.
    pub fn picked(input: &JsValue) -> JsValue;

    /// An open (or opening) WebSocket.
    pub type Socket;

    /// Opens a WebSocket whose events call `on(0)` when open, `on(1, text)` for each message
    /// and `on(2)` when closed; `None` when the browser refuses to create one.
    pub fn socket(url: &str, on: &JsValue) -> Option<Socket>;

    /// Sends a text frame if the socket is open.
    pub fn send(ws: &Socket, text: &str);

    /// Stops listening to a socket and closes it.
    pub fn quiet(ws: &Socket);

    /// `localStorage` (or `sessionStorage`) item; `None` when absent or storage is disabled.
    pub fn load(session: bool, key: &str) -> Option<String>;

    /// Stores an item; silently nothing when storage is full or disabled.
    pub fn store(session: bool, key: &str, value: &str);

    /// `[time zone, "WIDTHxHEIGHT"]` of this browser (empty when unknown).
    pub fn device() -> JsValue;

    /// A short tone.
    pub fn chime();
}
