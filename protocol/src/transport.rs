//! The transport-facing names of the protocol: endpoint paths, the visitor-token header, the
//! long-poll query and its cursor syntax.
//!
//! Kept here so the server, the console and the widget cannot disagree on a path or on how
//! cursors are written into a URL. This module does no I/O and knows nothing about axum or
//! `fetch`; `docs/protocol.md` ("Transports") describes the exchanges.

use serde::{Deserialize, Serialize};

use crate::frames::Cursor;
use crate::ids::{ConversationId, EventSeq};

/// WebSocket endpoint for visitors.
pub const WS_VISITOR_PATH: &str = "/ws/visitor";
/// WebSocket endpoint for agents.
pub const WS_AGENT_PATH: &str = "/ws/agent";
/// HTTP fallback: visitors POST frames here.
pub const HTTP_VISITOR_SEND_PATH: &str = "/http/visitor/send";
/// HTTP fallback: visitors long-poll here.
pub const HTTP_VISITOR_EVENTS_PATH: &str = "/http/visitor/events";
/// HTTP fallback: agents POST frames here.
pub const HTTP_AGENT_SEND_PATH: &str = "/http/agent/send";
/// HTTP fallback: agents long-poll here.
pub const HTTP_AGENT_EVENTS_PATH: &str = "/http/agent/events";

/// The widget's settings for a site (`?key=SITE_KEY`): colour, position, greeting, pre-chat.
pub const HTTP_VISITOR_SITE_PATH: &str = "/http/visitor/site";
/// The widget's offline form posts a leave-message here (with the visitor token).
pub const HTTP_VISITOR_LEAVE_MESSAGE_PATH: &str = "/http/visitor/leave-message";
/// The pre-chat form and the host page's `Kefu.identify` post the visitor's name, e-mail and
/// attributes here (with the visitor token).
pub const HTTP_VISITOR_PROFILE_PATH: &str = "/http/visitor/profile";

/// The visitor rates a resolved conversation here (with the visitor token).
pub const HTTP_VISITOR_RATING_PATH: &str = "/http/visitor/rating";
/// The visitor asks for a conversation's transcript by e-mail here (with the visitor token).
pub const HTTP_VISITOR_TRANSCRIPT_PATH: &str = "/http/visitor/transcript";
/// Visitors upload a file here (the raw bytes as the body, its media type as `Content-Type`,
/// `?name=` its file name, with the visitor token), then send its `id` in a message.
pub const HTTP_VISITOR_UPLOAD_PATH: &str = "/http/visitor/upload";
/// Agents upload a file here (as visitors do, with `&conversation=` the conversation it is for).
pub const HTTP_AGENT_UPLOAD_PATH: &str = "/http/agent/upload";
/// Files sent in messages are fetched under this prefix: `GET /attachments/{id}`.
pub const ATTACHMENTS_PATH: &str = "/attachments";

/// The longest greeting a site's widget may show, in characters.
pub const MAX_GREETING_CHARS: usize = 500;

/// The largest file any site may accept: MySQL and MariaDB refuse rows over their default
/// `max_allowed_packet` of 16 MiB, and a chat is not a file-transfer service.
pub const MAX_ATTACHMENT_BYTES: u32 = 10 * 1024 * 1024;

/// The media types whose bytes Kefu can check; a site can accept only these, so a stored file
/// is always what it claims to be. SVG and HTML are absent on purpose: they can carry script.
pub const ATTACHMENT_TYPES: [&str; 6] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
];

/// The request header carrying the visitor token on the HTTP fallback (lower case, as HTTP/2
/// writes it; header names are case-insensitive).
pub const VISITOR_TOKEN_HEADER: &str = "x-kefu-visitor-token";

/// The longest a long-poll is held, and the default `wait`.
pub const MAX_POLL_WAIT_SECS: u32 = 25;

/// A WebSocket whose first frame is not a hello within this time is closed.
pub const HELLO_TIMEOUT_MS: u32 = 10_000;

/// Most frames one `POST …/send` may carry; a `hello` may only be the first of them.
pub const MAX_BATCH_FRAMES: usize = 100;

/// Most messages one replay burst carries: one poll's response, or what a WebSocket is sent
/// before the server reads on. A longer gap ends the burst with `replay_cut`.
pub const MAX_REPLAY_MESSAGES: usize = 200;

/// Most bytes of JSON one replay burst carries (messages, their translations, agent events,
/// and the array around them in a poll's response).
pub const MAX_REPLAY_BYTES: usize = 256 * 1024;

/// The query of `GET /http/{visitor,agent}/events`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// The cursors in [`format_cursors`] form (`12:5,13:0`); empty or absent for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cursors: String,
    /// Agents: the highest `event_seq` processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_after: Option<EventSeq>,
    /// Seconds to hold the request when nothing is pending: 0..=25, default 25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<u32>,
}

impl EventsQuery {
    /// The parsed cursors, or `None` if the text is not in [`format_cursors`] form.
    pub fn parsed_cursors(&self) -> Option<Vec<Cursor>> {
        parse_cursors(&self.cursors)
    }

    /// The hold time in seconds: `wait` capped at [`MAX_POLL_WAIT_SECS`].
    pub fn wait_secs(&self) -> u32 {
        self.wait
            .unwrap_or(MAX_POLL_WAIT_SECS)
            .min(MAX_POLL_WAIT_SECS)
    }
}

/// Writes cursors as `conversation_id:after_seq` pairs joined by commas (`12:5,13:0`).
pub fn format_cursors(cursors: &[Cursor]) -> String {
    let mut text = String::new();
    for (i, cursor) in cursors.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&cursor.conversation_id.to_string());
        text.push(':');
        text.push_str(&cursor.after_seq.to_string());
    }
    text
}

/// Parses the form written by [`format_cursors`]; the empty string is no cursors. `None` on any
/// malformed pair, negative number or trailing comma.
pub fn parse_cursors(text: &str) -> Option<Vec<Cursor>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',')
        .map(|pair| {
            let (id, seq) = pair.split_once(':')?;
            let id = parse_non_negative(id)?;
            let after_seq = parse_non_negative(seq)?;
            Some(Cursor {
                conversation_id: ConversationId(id),
                after_seq,
            })
        })
        .collect()
}

/// Decimal digits only (no sign, no spaces), fitting in an `i64`.
fn parse_non_negative(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(id: i64, after_seq: i64) -> Cursor {
        Cursor {
            conversation_id: ConversationId(id),
            after_seq,
        }
    }

    #[test]
    fn cursors_round_trip_through_text() {
        let cursors = vec![cursor(12, 5), cursor(13, 0)];
        let text = format_cursors(&cursors);
        assert_eq!(text, "12:5,13:0");
        assert_eq!(parse_cursors(&text), Some(cursors));
        assert_eq!(parse_cursors(""), Some(Vec::new()));
        assert_eq!(format_cursors(&[]), "");
    }

    #[test]
    fn malformed_cursor_text_is_refused() {
        for bad in [
            "12",
            "12:",
            ":5",
            "12:5,",
            "12:-1",
            "-12:5",
            "a:1",
            "1:2:3",
            " 1:2",
            "1:2 ",
            "1;2",
            "99999999999999999999:1",
        ] {
            assert_eq!(parse_cursors(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn wait_is_capped() {
        let mut query = EventsQuery::default();
        assert_eq!(query.wait_secs(), 25);
        query.wait = Some(0);
        assert_eq!(query.wait_secs(), 0);
        query.wait = Some(600);
        assert_eq!(query.wait_secs(), 25);
    }
}
