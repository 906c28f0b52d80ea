//! The visitor widget, compiled to wasm and started by `loader.js`.
//!
//! The loader draws the launcher inside a Shadow DOM and calls [`start`] with that shadow root
//! when the browser is idle or on the first click. The panel (`ui`) is built with `web-sys`
//! calls and text nodes — never `innerHTML` — so text from the network can never become markup.
//! `chat` speaks the real-time protocol over a WebSocket or the HTTP fallback.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

mod browser;
mod chat;
mod dom;
mod i18n;
mod json;
mod persist;
mod ui;

use alloc::string::String;
use chat::{Chat, Mode, Shared};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Event, EventTarget, ShadowRoot};

/// The widget allocates little and briefly; a free-list allocator is plenty and much smaller.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

/// Builds the panel in the loader's shadow root and connects. `options` holds `site` (the site
/// key), `base` (the Kefu server's origin), and optionally `transport` (`"http"`) and `lang`.
/// Returns the host page's handle: a function taking a command — `"open"`, `"close"`,
/// `"identify"` (with `{name, email, attributes}`) or `"page_view"` — and its argument.
#[wasm_bindgen]
pub fn start(root: ShadowRoot, options: JsValue) -> Result<JsValue, JsValue> {
    let site = json::text(&options, "site").unwrap_or_default();
    let base = json::text(&options, "base").unwrap_or_default();
    let lang = json::text(&options, "lang")
        .filter(|l| !l.is_empty())
        .or_else(|| chat::navigator("language"))
        .unwrap_or_default();
    let mode = match json::text(&options, "transport").as_deref() {
        Some("http") => Mode::HttpOnly,
        _ => Mode::Auto,
    };
    let ui = ui::Ui::new(&root, i18n::Lang::pick(&lang))?;
    let (doc, host) = (ui.doc.clone(), ui.host.clone());
    let chat = Chat::new(ui, site, base, mode);
    wire(&chat, &root, &doc)?;
    host.set_attribute("data-kefu-ready", "")?;
    // The handle owns the chat, which lives as long as the page keeps the handle.
    let handle =
        Closure::<dyn FnMut(String, JsValue)>::new(move |command: String, arg: JsValue| {
            // A call made while the chat is busy is dropped, as in `chat::with`.
            if let Ok(mut chat) = chat.try_borrow_mut() {
                match command.as_str() {
                    "open" => chat.open(),
                    "close" => chat.close(),
                    "identify" => chat.identify(arg),
                    "page_view" => chat.page_view(),
                    _ => {}
                }
            }
        });
    Ok(handle.into_js_value())
}

/// Calls `f` on the chat for every `kind` event on `target`.
fn listen(
    target: &EventTarget,
    kind: &str,
    chat: &Shared,
    f: fn(&mut Chat, &Event),
) -> Result<(), JsValue> {
    let me = alloc::rc::Rc::downgrade(chat);
    let handler =
        Closure::<dyn FnMut(Event)>::new(move |event: Event| chat::with(&me, |c| f(c, &event)));
    target.add_event_listener_with_callback(kind, handler.as_ref().unchecked_ref())?;
    // The panel lives as long as the page, and so do its listeners.
    handler.forget();
    Ok(())
}

/// One listener per event type on the shadow root, dispatching on the target: fewer closures
/// than one per element, and a smaller wasm.
fn wire(chat: &Shared, root: &ShadowRoot, doc: &EventTarget) -> Result<(), JsValue> {
    for kind in ["click", "submit", "keydown", "input", "change"] {
        listen(root, kind, chat, on_event)?;
    }
    listen(doc, "visibilitychange", chat, |chat, _| chat.send_read())
}

fn on_event(chat: &mut Chat, event: &Event) {
    // Plain property reads instead of web-sys getters: one import for all (`json::get`).
    let target = json::get(event, "target").unchecked_into::<web_sys::Element>();
    let class = |selector: &str| {
        target
            .closest(selector)
            .ok()
            .flatten()
            .and_then(|e| json::text(&e, "className"))
    };
    match json::text(event, "type").as_deref().unwrap_or_default() {
        "click" => match class("button").as_deref() {
            Some("launcher") if chat.ui.is_open() => chat.close(),
            Some("launcher") => chat.open(),
            Some("x") => chat.close(),
            Some("new") => chat.start_over(),
            Some("kefu-original") => chat.ui.toggle_original(&target),
            Some("emo") => chat.ui.toggle_emoji(),
            Some("e") => {
                let mut text = ui::value(&chat.ui.input);
                text.push_str(&target.text_content().unwrap_or_default());
                ui::set_value(&chat.ui.input, &text);
                chat.ui.toggle_emoji();
                ui::focus(&chat.ui.input);
            }
            _ => {}
        },
        "submit" => {
            event.prevent_default();
            match class("form").as_deref() {
                Some("compose") => chat.submit(),
                Some("offline") => chat.leave_message(),
                Some("prechat") => chat.introduce(),
                Some("rate") => chat.rate(event),
                _ => {}
            }
        }
        "keydown" if target == chat.ui.input => {
            let flag = |key| json::flag(event, key) == Some(true);
            if json::text(event, "key").as_deref() == Some("Enter")
                && !flag("shiftKey")
                && !flag("isComposing")
            {
                event.prevent_default();
                chat.submit();
            }
        }
        "input" if target == chat.ui.input => chat.typed(),
        "change" if target == chat.ui.file => chat.attach(&target),
        _ => {}
    }
}

/// Without std there is no panic machinery (and none of the formatting it pulls in): a panic
/// traps, stopping the widget where it is. The widget avoids panicking paths; this is the last
/// resort.
#[cfg(all(target_arch = "wasm32", feature = "standalone", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
