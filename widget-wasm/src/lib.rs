//! The visitor widget, compiled to wasm and started by `loader.js`.
//!
//! The loader draws the launcher inside a Shadow DOM and calls [`start`] with that shadow root
//! when the browser is idle or on the first click. Everything is built with `web-sys` calls and
//! text nodes — never `innerHTML` — so text from the network can never become markup.

use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, ShadowRoot};

/// Builds the chat panel inside the loader's shadow root and wires the launcher to it.
#[wasm_bindgen]
pub fn start(root: ShadowRoot, site_key: String) -> Result<(), JsValue> {
    let document = web_sys::window()
        .and_then(|window| window.document())
        .ok_or_else(|| JsValue::from_str("no document"))?;
    let panel = element(&document, "section", "panel")?;
    panel.set_attribute("role", "dialog")?;
    panel.set_attribute("aria-label", "Chat")?;
    panel.set_attribute("hidden", "")?;
    panel.set_attribute("data-site", &site_key)?;
    let header = element(&document, "header", "head")?;
    header.set_text_content(Some("Chat with us"));
    let body = element(&document, "p", "body")?;
    body.set_text_content(Some("Hi! How can we help you today?"));
    panel.append_child(&header)?;
    panel.append_child(&body)?;
    root.append_child(&panel)?;

    let launcher = root
        .query_selector(".launcher")?
        .ok_or_else(|| JsValue::from_str("launcher missing"))?;
    let toggle = Closure::<dyn FnMut()>::new(move || {
        let hidden = panel.has_attribute("hidden");
        let _ = if hidden {
            panel.remove_attribute("hidden")
        } else {
            panel.set_attribute("hidden", "")
        };
    });
    launcher.add_event_listener_with_callback("click", toggle.as_ref().unchecked_ref())?;
    // The listener lives as long as the page; the closure must too.
    toggle.forget();
    root.host().set_attribute("data-kefu-ready", "")?;
    Ok(())
}

fn element(document: &Document, tag: &str, class: &str) -> Result<Element, JsValue> {
    let element = document.create_element(tag)?;
    element.set_class_name(class);
    Ok(element)
}
