//! What the widget remembers between page loads, per site key. The visitor token and the
//! conversation shown live in `localStorage`, so every tab and every later visit continues the
//! same conversation. The outbox of unacknowledged sends lives in `sessionStorage`: it survives a
//! reload of the tab that typed it, and two tabs never overwrite each other's.

use crate::browser;
use crate::json::{self, Obj};
use alloc::string::String;
use alloc::vec::Vec;
use wasm_bindgen::JsValue;

/// The visitor's identity and place, shared by the site's tabs.
#[derive(Debug, Default)]
pub struct Saved {
    /// The token from the latest `welcome`; presented in every hello.
    pub token: Option<String>,
    /// The conversation the panel shows.
    pub conversation: Option<i64>,
    /// The visitor answered the pre-chat form; it is not asked again.
    pub introduced: bool,
}

/// A message typed but not yet acknowledged; resent with the same id after every reconnect.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Made once, kept for every resend, so the server stores the message at most once.
    pub client_id: String,
    /// What the visitor typed (empty for a file without a caption).
    pub body: String,
    /// The uploaded file it carries: the upload's answer (`id`, `name`, `content_type`, `size`),
    /// or undefined.
    pub file: JsValue,
}

fn key(site: &str) -> String {
    let mut key = String::from("kefu:");
    key.push_str(site);
    key
}

/// `session`: the tab's `sessionStorage`, else `localStorage`.
fn read(session: bool, site: &str) -> JsValue {
    browser::load(session, &key(site))
        .and_then(|text| json::parse(&text))
        .unwrap_or(JsValue::UNDEFINED)
}

/// Storage can be full or disabled; the widget then simply forgets on reload.
fn write(session: bool, site: &str, value: &JsValue) {
    browser::store(session, &key(site), &json::stringify(value));
}

/// The saved identity (empty for a new visitor or when storage is unavailable).
pub fn load(site: &str) -> Saved {
    let value = read(false, site);
    Saved {
        token: json::text(&value, "token"),
        conversation: json::int(&value, "conversation"),
        introduced: json::flag(&value, "introduced") == Some(true),
    }
}

/// Saves the identity for this site.
pub fn save(site: &str, saved: &Saved) {
    let value = Obj::new()
        .maybe("token", saved.token.as_deref())
        .maybe("conversation", saved.conversation.map(|id| id as f64))
        .set("introduced", saved.introduced)
        .value();
    write(false, site, &value);
}

/// This tab's unacknowledged sends.
pub fn load_outbox(site: &str) -> Vec<Outgoing> {
    json::items(&read(true, site))
        .iter()
        .filter_map(|item| {
            Some(Outgoing {
                client_id: json::text(&item, "id")?,
                body: json::text(&item, "body")?,
                file: json::get(&item, "file"),
            })
        })
        .collect()
}

/// Saves this tab's unacknowledged sends.
pub fn save_outbox(site: &str, outbox: &[Outgoing]) {
    let items = outbox.iter().map(|o| {
        Obj::new()
            .set("id", o.client_id.as_str())
            .set("body", o.body.as_str())
            .set("file", o.file.clone())
            .value()
    });
    write(true, site, &json::array(items));
}
