//! The console's real-time client: the [`Desk`] (what the agent sees, kept current by server
//! frames) and, in the browser, the link that carries frames over a WebSocket or the HTTP
//! fallback and reconnects by itself.
//!
//! Pages get a [`Live`] handle from [`Live::start`] and read its signals; on the server the
//! handle only holds the seeded desk, so the first render is the same HTML on both sides.

#[cfg(feature = "hydrate")]
mod alert;
mod desk;
#[cfg(feature = "hydrate")]
mod link;

pub use desk::{Desk, Note, OnlineVisitor, Pending, Reaction, TYPING_TTL_MS, Thread};

use crate::api::inbox::ThreadSeed;

use crate::auth::ConnectionMode;
use leptos::prelude::*;
use protocol::{AgentFrame, ConversationId, EventSeq, StatusRecord};

/// How the console is connected right now; the indicator shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Connecting, or waiting to try again after a failure.
    Connecting,
    /// Live over a WebSocket.
    WebSocket,
    /// Live over HTTP long-polling (chosen, or after WebSockets failed).
    Http,
}

impl Connection {
    /// The value of the indicator's `data-connection` attribute (tests and styles use it).
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Connecting => "connecting",
            Connection::WebSocket => "websocket",
            Connection::Http => "http",
        }
    }
}

/// The handle pages share: the desk and the connection state, both reactive.
#[derive(Clone, Copy)]
pub struct Live {
    /// Everything the agent sees live.
    pub desk: RwSignal<Desk>,
    /// Shown by the connection indicator.
    pub connection: RwSignal<Connection>,
    /// The client clock in milliseconds, ticking every second in the browser so typing
    /// indicators and "time on site" expire without a frame arriving.
    pub now: RwSignal<f64>,
}

impl Live {
    /// A desk seeded with what the page was rendered with; in the browser, also opens the
    /// connection in `mode`.
    pub fn start(
        seeds: Vec<ThreadSeed>,
        events_after: Option<EventSeq>,
        mode: ConnectionMode,
    ) -> Live {
        let live = Live {
            desk: RwSignal::new(Desk::seeded(seeds, events_after)),
            connection: RwSignal::new(Connection::Connecting),
            now: RwSignal::new(0.0),
        };
        #[cfg(feature = "hydrate")]
        link::start(live, mode);
        #[cfg(not(feature = "hydrate"))]
        let _ = mode;
        live
    }

    /// Sends a frame now if connected; best effort (typing, read, status, assignment).
    pub fn send(&self, frame: AgentFrame) {
        #[cfg(feature = "hydrate")]
        link::send(frame);
        #[cfg(not(feature = "hydrate"))]
        let _ = frame;
    }

    /// Sends a message: it waits in the desk's outbox until acked and is resent, with the same
    /// client id, after every reconnect.
    pub fn say(&self, conversation_id: ConversationId, body: String, attachment: Option<String>) {
        #[cfg(feature = "hydrate")]
        link::say(*self, conversation_id, body, attachment);
        #[cfg(not(feature = "hydrate"))]
        let _ = (conversation_id, body, attachment);
    }

    /// Uploads the file chosen in `input` and sends it into the conversation; `false` when the
    /// site does not take that file (type or size).
    pub async fn send_file(
        &self,
        conversation_id: ConversationId,
        input: leptos::web_sys::HtmlInputElement,
    ) -> bool {
        #[cfg(feature = "hydrate")]
        {
            let Some(file) = input.files().and_then(|files| files.get(0)) else {
                return false;
            };
            input.set_value("");
            link::upload(*self, conversation_id, file).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = (conversation_id, input);
            false
        }
    }

    /// Writes first to a visitor on the site (their widget opens with the words).
    pub fn invite(&self, visitor_id: protocol::VisitorId, body: String) {
        #[cfg(feature = "hydrate")]
        link::send(AgentFrame::Invite(protocol::Invite {
            visitor_id,
            client_id: link::client_id(),
            body,
        }));
        #[cfg(not(feature = "hydrate"))]
        let _ = (visitor_id, body);
    }

    /// Closes the live link for good: the agent is signing out, and an answer the old session
    /// gets meanwhile (refused) must not send the page anywhere.
    pub fn stop(&self) {
        #[cfg(feature = "hydrate")]
        link::stop();
    }

    /// Asks the browser for permission to show notifications (browsers allow it from a click).
    pub fn ask_notifications(&self) {
        #[cfg(feature = "hydrate")]
        alert::ask_permission();
    }

    /// Resolves, reopens or parks a conversation (recorded as a system message everyone sees);
    /// parked `until` a time, it is snoozed.
    pub fn set_status(&self, conversation_id: ConversationId, record: StatusRecord) {
        #[cfg(feature = "hydrate")]
        link::send(AgentFrame::SetConversationStatus(
            protocol::SetConversationStatus {
                conversation_id,
                client_id: link::client_id(),
                status: record.status,
                until: record.until,
            },
        ));
        #[cfg(not(feature = "hydrate"))]
        let _ = (conversation_id, record);
    }
}

/// Takes in a conversation the desk met live but did not list (a resolved one the visitor wrote
/// into again): fetches it, then follows it from where it stands.
#[cfg(feature = "hydrate")]
fn adopt(live: Live, conversation: ConversationId) {
    leptos::task::spawn_local(async move {
        if let Ok(seed) = crate::api::inbox::conversation_seed(conversation).await
            && let Some(cursor) = live.desk.try_update(|d| d.adopt(seed)).flatten()
        {
            link::follow(cursor);
        }
    });
}
