//! The JSON frames of the real-time protocol (`docs/protocol.md` is their specification).
//!
//! Three enums, one per sender: [`VisitorFrame`] (the widget → server), [`AgentFrame`] (the
//! console → server) and [`ServerFrame`] (server → either). Each is internally tagged by a
//! snake_case `"type"` field. Client frames wrap a named payload struct, so the frames both roles
//! can send (`send`, `typing`, `read`, `resume`, `ping`, `pong`) share one struct and one handler
//! in the server; payloads reject unknown fields, so a misspelt optional field (say
//! `conversation_idd`) is a `bad_request` instead of silently meaning "new conversation".
//! Server frames are struct variants (only the bigger `welcome` and `message` and the shared
//! `ping`/`pong` wrap a struct) and ignore unknown fields, so the server can add optional fields
//! without breaking older widgets. Optional fields are omitted when absent and empty lists are
//! omitted, to keep frames short.
//!
//! What these types deliberately do not do: check lengths, rates or permissions (the server's
//! job), or know about transports (see [`crate::transport`]).

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{
    AgentId, AgentStatus, Author, ClientId, ConversationId, ConversationStatus, EventSeq, Seq,
    SiteId, TeamId, UnixMillis, VisitorId,
};

/// Where a client stands in one conversation: it has seen every message up to `after_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The highest seq up to which the client has seen every message (0: none).
    pub after_seq: Seq,
}

/// A conversation the client may read and its newest seq, so the client knows what it misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationHead {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The seq of its newest message (0 when empty).
    pub last_seq: Seq,
}

/// The page a visitor is looking at: the payload of `page_view`, and `page` in a visitor hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// The page's full URL.
    pub url: String,
    /// The document title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `document.referrer`, when not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
}

/// The limits the server applies to this connection, announced in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    /// Largest accepted frame (one WebSocket text message, or one HTTP request body), in bytes.
    pub max_frame_bytes: u32,
    /// Largest accepted message `body` or preview `text`, in UTF-8 bytes.
    pub max_message_bytes: u32,
    /// Most cursors accepted in one `hello`, `resume` or poll.
    pub max_cursors: u32,
    /// Messages this visitor (over all their connections) or agent may send per minute.
    pub messages_per_minute: u32,
    /// Ephemeral frames (`typing`, `preview`, `read`, `page_view`, `set_status`) accepted per
    /// second on one connection (a bucket of this size, refilled at this rate).
    pub ephemeral_per_second: u32,
    /// How often the server pings an idle WebSocket.
    pub ping_interval_ms: u32,
    /// A WebSocket that receives nothing for this long is dead (either side closes it).
    pub idle_timeout_ms: u32,
}

impl Default for Limits {
    /// The server's defaults, as documented in `docs/protocol.md`.
    fn default() -> Self {
        Limits {
            max_frame_bytes: 65_536,
            max_message_bytes: 8_192,
            max_cursors: 1_000,
            messages_per_minute: 60,
            ephemeral_per_second: 10,
            ping_interval_ms: 15_000,
            idle_timeout_ms: 30_000,
        }
    }
}

/// A visitor's first frame: which site, who (if known), what they are looking at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitorHello {
    /// Must be [`crate::PROTOCOL_VERSION`] of the client's build.
    pub protocol_version: u32,
    /// The site's public key (the widget's `data-site`).
    pub site_key: String,
    /// The token from an earlier `welcome`; absent on first contact (a new visitor is made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_token: Option<String>,
    /// The page the widget runs on; counts as a page view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
    /// The browser's language (BCP 47, e.g. `zh-CN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The browser's IANA time zone (`Asia/Shanghai`), for agents answering at odd hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The screen size, `WIDTHxHEIGHT` in CSS pixels (`390x844`): phone or desktop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// Conversations to follow, and from where to replay them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cursors: Vec<Cursor>,
}

/// What agents are told about a visitor's browser when the visitor comes online: what the
/// hello said, and the user agent of the request. Every field is optional (Do Not Track
/// visitors send no time zone or screen).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorDetails {
    /// The browser's language (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// `WIDTHxHEIGHT` in CSS pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// The `User-Agent` header of the visitor's connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The browser the server recognised in `user_agent`, with its major version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// The operating system, with its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// The device model, when a phone or tablet names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The country of the visitor's IP address, in English, when the server has a GeoIP
    /// database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The city, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// First seen more than 30 minutes ago (a returning visitor); omitted when new.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub returning: bool,
}

/// An agent's first frame; the agent is the one of the session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentHello {
    /// Must be [`crate::PROTOCOL_VERSION`] of the client's build.
    pub protocol_version: u32,
    /// Conversations to follow, and from where to replay them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cursors: Vec<Cursor>,
    /// The highest `event_seq` the console has processed; events after it are replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_after: Option<EventSeq>,
}

/// Follow more conversations (or replay one again) after `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    /// As in hello.
    pub cursors: Vec<Cursor>,
}

/// Write a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// The conversation; a visitor omits it to start a new conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// Made by the client (a random UUID); the same for every resend of this message.
    pub client_id: ClientId,
    /// Plain text (never HTML), up to `max_message_bytes` UTF-8 bytes, not only whitespace;
    /// may be empty when the message carries an attachment (a caption is optional).
    pub body: String,
    /// The `id` an upload answered: the file this message carries. Only the sender who
    /// uploaded it may send it, and only on the same site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<String>,
}

/// An agent resolves, reopens or parks a conversation. Recorded as a `system` message whose
/// body is the new status, so every client learns it in order, over either transport, and on
/// resume; answered by an `ack` for that message like a `send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetConversationStatus {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Made by the client for the system message; the same for every resend.
    pub client_id: ClientId,
    /// The new status.
    pub status: ConversationStatus,
    /// With `pending`: snoozed until then (Unix ms), when the server reopens it unless the
    /// visitor wrote first. Absent: parked with no time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<UnixMillis>,
}

/// An agent picks a conversation up (`to` is themselves), transfers it to a colleague of its
/// site, or gives it back to the queue (`to` absent). Everyone is told with
/// `assignment_changed`, the visitor with `assigned`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The agent to own it; absent to unassign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<AgentId>,
    /// With `to` absent: a team of the site; the conversation then waits for that team's
    /// agents only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamId>,
    /// A word for the colleague taking over (agents only; never shown to the visitor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Agents: write to a visitor who is on the site but not chatting — their widget opens with
/// the message. Starts a conversation assigned to the agent, or adds to the visitor's open one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    /// The visitor, from their presence.
    pub visitor_id: VisitorId,
    /// Made by the client; a resend with the same id is answered with the same ack.
    pub client_id: ClientId,
    /// The agent's first words, as in a `send`.
    pub body: String,
}

/// Started or stopped typing in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Typing {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// `true` while typing (repeat every 3 s); `false` when stopped or sent.
    pub typing: bool,
}

/// The visitor's unsent draft ("sneak peek"), shown to agents only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    /// The conversation; omitted before the visitor's first message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// The whole draft as it is now; empty when cleared or sent.
    pub text: String,
}

/// The client has shown the conversation's messages up to `up_to_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Read {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The highest seq shown to the reader.
    pub up_to_seq: Seq,
}

/// An agent changes their availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    /// The new status.
    pub status: AgentStatus,
}

/// Are you there? Answered by a `pong` with the same nonce; sent by either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {
    /// Any number; echoed in the pong.
    pub nonce: u32,
}

/// The answer to a [`Ping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pong {
    /// The ping's nonce.
    pub nonce: u32,
}

/// What a visitor's widget sends (to `/ws/visitor` or `/http/visitor/send`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisitorFrame {
    /// First frame of a connection.
    Hello(VisitorHello),
    /// Follow more conversations.
    Resume(Resume),
    /// Write a message.
    Send(SendMessage),
    /// Typing indicator.
    Typing(Typing),
    /// Sneak peek of the draft.
    Preview(Preview),
    /// Read receipt.
    Read(Read),
    /// The visitor moved to another page.
    PageView(Page),
    /// Liveness probe.
    Ping(Ping),
    /// Answer to the server's ping.
    Pong(Pong),
}

/// What an agent's console sends (to `/ws/agent` or `/http/agent/send`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentFrame {
    /// First frame of a connection.
    Hello(AgentHello),
    /// Follow more conversations.
    Resume(Resume),
    /// Write a message.
    Send(SendMessage),
    /// Typing indicator.
    Typing(Typing),
    /// Read receipt.
    Read(Read),
    /// Change availability.
    SetStatus(SetStatus),
    /// Resolve, reopen or park a conversation.
    SetConversationStatus(SetConversationStatus),
    /// Pick up, transfer or unassign a conversation.
    Assign(Assign),
    /// Invite a visitor to chat.
    Invite(Invite),
    /// Liveness probe.
    Ping(Ping),
    /// Answer to the server's ping.
    Pong(Pong),
}

/// The server's answer to a hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The version both sides now speak (the hello's).
    pub protocol_version: u32,
    /// The server's clock, so clients can correct `created_at` display for their own skew.
    pub server_time: UnixMillis,
    /// Visitors: who they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<VisitorId>,
    /// Visitors: the token to present from now on (new, or the one sent, or a re-signed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_token: Option<String>,
    /// Agents: who they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// Agents: the newest `event_seq` for this agent now (0 if none); the cursor to start from
    /// when the hello had no `events_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<EventSeq>,
    /// Visitors: all their conversations; agents: those named in the hello's cursors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversations: Vec<ConversationHead>,
    /// The limits of this connection.
    pub limits: Limits,
}

/// A file carried by a message: what a client needs to show it and to fetch it from
/// `GET /attachments/{id}` ([`crate::transport::ATTACHMENTS_PATH`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attachment {
    /// The file's public id: 32 random hex digits, which are also what lets one fetch it.
    pub id: String,
    /// The file name the uploader gave, without any directory part.
    pub name: String,
    /// Its media type, one the site allows (`image/png`, `application/pdf` …).
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Attachment {
    /// Whether clients show it inline as a picture (only raster formats: an SVG can carry script).
    pub fn is_image(&self) -> bool {
        matches!(
            self.content_type.as_str(),
            "image/png" | "image/jpeg" | "image/gif" | "image/webp"
        )
    }
}

/// A message's translation for its reader, sent after the message itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    /// The message's conversation.
    pub conversation_id: ConversationId,
    /// The message's seq.
    pub seq: Seq,
    /// The language the message was written in (BCP 47).
    pub source_language: String,
    /// The language of `text` (the reader's).
    pub language: String,
    /// The translation; absent when it is unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why there is no translation, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<Unavailable>,
}

/// Why a message could not be translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// The provider failed or did not answer; it is tried again later.
    Provider,
    /// The site's daily translation budget is spent.
    Budget,
}

/// How the `body` of a `system` message that records a transcript e-mailed from the
/// conversation begins; the address follows (`transcript_sent:mei@example.com`).
pub const TRANSCRIPT_SENT: &str = "transcript_sent:";

/// The address a `system` message's body says a transcript was e-mailed to, if it says so.
pub fn transcript_sent_to(body: &str) -> Option<&str> {
    body.strip_prefix(TRANSCRIPT_SENT)
}

/// One stored chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Its gap-free position in the conversation.
    pub seq: Seq,
    /// The id its sender gave it.
    pub client_id: ClientId,
    /// Who wrote it.
    pub author: Author,
    /// The writing agent, when `author` is `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// The writing agent's display name, when `author` is `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// Plain text, exactly as sent (empty for a file sent without a caption). For an `author`
    /// of `system` it is not text but what happened: the conversation's new status (`open`,
    /// `pending`, `resolved`; `agent_id` says who, when an agent did it).
    pub body: String,
    /// The file it carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// When the server accepted it.
    pub created_at: UnixMillis,
}

/// What the server sends, to visitors and agents alike (`docs/protocol.md` says which go where).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The answer to a hello.
    Welcome(Welcome),
    /// To visitors: whether the site offers chat now (after welcome, then on agent changes).
    Availability {
        /// At least one agent of the site has status `online`, within the site's business hours.
        online: bool,
    },
    /// The message with this `client_id` is stored as `seq`.
    Ack {
        /// The id from the `send`.
        client_id: ClientId,
        /// The conversation (new, when the send had none).
        conversation_id: ConversationId,
        /// The message's position.
        seq: Seq,
    },
    /// A stored message (also the sender's own).
    Message(Message),
    /// A message's translation for its reader, or why there is none (to the site's agents
    /// and the visitor, after the message).
    Translation(Translation),
    /// Someone else started or stopped typing.
    Typing {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who types.
        author: Author,
        /// The typing agent, when `author` is `agent`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<AgentId>,
        /// The typing agent's display name, when `author` is `agent`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_name: Option<String>,
        /// `true` while typing; receivers clear it themselves after 6 s without a repeat.
        typing: bool,
    },
    /// To agents: a visitor's draft.
    Preview {
        /// The visitor typing.
        visitor_id: VisitorId,
        /// The conversation; absent before the visitor's first message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation_id: Option<ConversationId>,
        /// The draft; empty when cleared or sent.
        text: String,
    },
    /// Someone else has read the conversation up to `up_to_seq`.
    Read {
        /// The conversation.
        conversation_id: ConversationId,
        /// The highest seq they have seen.
        up_to_seq: Seq,
        /// Who read.
        author: Author,
        /// The reading agent, when `author` is `agent`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<AgentId>,
    },
    /// To agents: a visitor of their sites came online or went offline.
    VisitorPresence {
        /// The visitor's site.
        site_id: SiteId,
        /// The visitor.
        visitor_id: VisitorId,
        /// Whether the visitor has a live connection now.
        online: bool,
        /// Their browser, when they come online.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<VisitorDetails>,
    },
    /// To agents: a colleague on a shared site changed status.
    AgentPresence {
        /// The agent.
        agent_id: AgentId,
        /// Their status now.
        status: AgentStatus,
    },
    /// To agents: a visitor of their sites opened a page.
    PageView {
        /// The visitor's site.
        site_id: SiteId,
        /// The visitor.
        visitor_id: VisitorId,
        /// The page's URL.
        url: String,
        /// The document title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// The referrer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        referrer: Option<String>,
        /// When the server received it.
        at: UnixMillis,
    },
    /// To agents (durable event): a conversation started on one of their sites.
    ConversationCreated {
        /// The event's position in the agent's event stream.
        event_seq: EventSeq,
        /// The new conversation.
        conversation_id: ConversationId,
        /// Its site.
        site_id: SiteId,
        /// Its visitor.
        visitor_id: VisitorId,
        /// When it started.
        created_at: UnixMillis,
    },
    /// To agents (durable event): a conversation got a new assignee or none.
    AssignmentChanged {
        /// The event's position in the agent's event stream.
        event_seq: EventSeq,
        /// The conversation.
        conversation_id: ConversationId,
        /// The agent now responsible; absent when unassigned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<AgentId>,
        /// The team it waits for, when it was transferred to one and no member has it yet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        team: Option<TeamId>,
        /// The agent who moved it; absent when the router did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// Their note for the colleague taking over, if they wrote one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// To agents (durable event): an internal note on a conversation, never shown to the
    /// visitor.
    Note {
        /// The event's position in the agent's event stream.
        event_seq: EventSeq,
        /// The conversation.
        conversation_id: ConversationId,
        /// Who wrote it.
        agent_id: AgentId,
        /// Their display name.
        agent_name: String,
        /// The note, plain text.
        body: String,
        /// When it was written.
        created_at: UnixMillis,
    },
    /// To agents (durable event): the conversation's tags now (the whole set).
    Tags {
        /// The event's position in the agent's event stream.
        event_seq: EventSeq,
        /// The conversation.
        conversation_id: ConversationId,
        /// Its tags, sorted.
        tags: Vec<String>,
    },
    /// To visitors: every agent is busy; the conversation waits in the site's queue at
    /// `position` (1: next). Sent whenever the position changes.
    Queue {
        /// The waiting conversation.
        conversation_id: ConversationId,
        /// Its place in the queue, from 1.
        position: u32,
    },
    /// To visitors: an agent has taken the conversation.
    Assigned {
        /// The conversation.
        conversation_id: ConversationId,
        /// The agent now answering.
        agent_id: AgentId,
        /// Their display name.
        agent_name: String,
    },
    /// Something the client sent (or the connection) was refused.
    Error {
        /// What went wrong; stable, for translation.
        code: ErrorCode,
        /// English detail for logs; not for display.
        message: String,
        /// The `client_id` of the refused `send`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<ClientId>,
        /// The conversation the refused frame or cursor named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation_id: Option<ConversationId>,
        /// With `rate_limited`: when the same frame would be accepted again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u32>,
    },
    /// Liveness probe; answer with a pong.
    Ping(Ping),
    /// Answer to the client's ping.
    Pong(Pong),
    /// The server is going away (drain, restart): connect again after a random delay.
    Reconnect {
        /// Wait a uniformly random time in `0..within_ms` before reconnecting.
        within_ms: u32,
    },
    /// A replay stopped at its per-burst limit (`MAX_REPLAY_MESSAGES`, `MAX_REPLAY_BYTES`)
    /// with more to come: over WebSocket the server sends the rest next by itself; over HTTP
    /// the client polls again at once with its advanced cursors (and `events_after`).
    ReplayCut,
}

impl ServerFrame {
    /// The position of a durable agent event (`conversation_created`, `assignment_changed`,
    /// `note`, `tags`) in the agent's event stream; `None` for every other frame.
    pub fn event_seq_mut(&mut self) -> Option<&mut EventSeq> {
        match self {
            ServerFrame::ConversationCreated { event_seq, .. }
            | ServerFrame::AssignmentChanged { event_seq, .. }
            | ServerFrame::Note { event_seq, .. }
            | ServerFrame::Tags { event_seq, .. } => Some(event_seq),
            _ => None,
        }
    }

    /// The event seq of a durable agent event, `None` for every other frame.
    pub fn event_seq(&self) -> Option<EventSeq> {
        match self {
            ServerFrame::ConversationCreated { event_seq, .. }
            | ServerFrame::AssignmentChanged { event_seq, .. }
            | ServerFrame::Note { event_seq, .. }
            | ServerFrame::Tags { event_seq, .. } => Some(*event_seq),
            _ => None,
        }
    }

    /// Whether this is a durable agent event.
    pub fn is_event(&self) -> bool {
        self.event_seq().is_some()
    }
}

impl VisitorFrame {
    /// The frame's `"type"` (for logs and metrics).
    pub fn frame_type(&self) -> &'static str {
        match self {
            VisitorFrame::Hello(_) => "hello",
            VisitorFrame::Resume(_) => "resume",
            VisitorFrame::Send(_) => "send",
            VisitorFrame::Typing(_) => "typing",
            VisitorFrame::Preview(_) => "preview",
            VisitorFrame::Read(_) => "read",
            VisitorFrame::PageView(_) => "page_view",
            VisitorFrame::Ping(_) => "ping",
            VisitorFrame::Pong(_) => "pong",
        }
    }
}

impl AgentFrame {
    /// The frame's `"type"` (for logs and metrics).
    pub fn frame_type(&self) -> &'static str {
        match self {
            AgentFrame::Hello(_) => "hello",
            AgentFrame::Resume(_) => "resume",
            AgentFrame::Send(_) => "send",
            AgentFrame::Typing(_) => "typing",
            AgentFrame::Read(_) => "read",
            AgentFrame::SetStatus(_) => "set_status",
            AgentFrame::SetConversationStatus(_) => "set_conversation_status",
            AgentFrame::Assign(_) => "assign",
            AgentFrame::Invite(_) => "invite",
            AgentFrame::Ping(_) => "ping",
            AgentFrame::Pong(_) => "pong",
        }
    }
}

impl ServerFrame {
    /// The frame's `"type"` (for logs and metrics).
    pub fn frame_type(&self) -> &'static str {
        match self {
            ServerFrame::Welcome(_) => "welcome",
            ServerFrame::Availability { .. } => "availability",
            ServerFrame::Ack { .. } => "ack",
            ServerFrame::Message(_) => "message",
            ServerFrame::Translation(_) => "translation",
            ServerFrame::Typing { .. } => "typing",
            ServerFrame::Preview { .. } => "preview",
            ServerFrame::Read { .. } => "read",
            ServerFrame::VisitorPresence { .. } => "visitor_presence",
            ServerFrame::AgentPresence { .. } => "agent_presence",
            ServerFrame::PageView { .. } => "page_view",
            ServerFrame::ConversationCreated { .. } => "conversation_created",
            ServerFrame::AssignmentChanged { .. } => "assignment_changed",
            ServerFrame::Queue { .. } => "queue",
            ServerFrame::Note { .. } => "note",
            ServerFrame::Tags { .. } => "tags",
            ServerFrame::Assigned { .. } => "assigned",
            ServerFrame::Error { .. } => "error",
            ServerFrame::Ping(_) => "ping",
            ServerFrame::Pong(_) => "pong",
            ServerFrame::Reconnect { .. } => "reconnect",
            ServerFrame::ReplayCut => "replay_cut",
        }
    }

    /// Whether the client must keep it: messages and durable agent events, which resume replays;
    /// everything else is live-only.
    pub fn is_durable(&self) -> bool {
        matches!(
            self,
            ServerFrame::Message(_)
                | ServerFrame::ConversationCreated { .. }
                | ServerFrame::AssignmentChanged { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    /// Serialises, checks the exact JSON, parses back and checks equality.
    fn round_trip<T>(frame: &T, expected: serde_json::Value)
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let value = serde_json::to_value(frame).expect("serialize");
        assert_eq!(value, expected);
        let text = serde_json::to_string(frame).expect("serialize");
        let back: T = serde_json::from_str(&text).expect("parse back");
        assert_eq!(&back, frame);
    }

    #[test]
    fn visitor_first_send_omits_absent_fields() {
        let frame = VisitorFrame::Send(SendMessage {
            conversation_id: None,
            client_id: ClientId("c1".into()),
            body: "Hi".into(),
            attachment: None,
        });
        round_trip(
            &frame,
            json!({"type": "send", "client_id": "c1", "body": "Hi"}),
        );
        assert_eq!(frame.frame_type(), "send");
    }

    #[test]
    fn visitor_hello_round_trips_with_nested_page_and_cursors() {
        let frame = VisitorFrame::Hello(VisitorHello {
            protocol_version: crate::PROTOCOL_VERSION,
            site_key: "pk_1".into(),
            visitor_token: Some("tok".into()),
            page: Some(Page {
                url: "https://shop.example/".into(),
                title: None,
                referrer: None,
            }),
            language: None,
            time_zone: None,
            screen: None,
            cursors: vec![Cursor {
                conversation_id: ConversationId(12),
                after_seq: 5,
            }],
        });
        round_trip(
            &frame,
            json!({
                "type": "hello", "protocol_version": 1, "site_key": "pk_1", "visitor_token": "tok",
                "page": {"url": "https://shop.example/"},
                "cursors": [{"conversation_id": 12, "after_seq": 5}]
            }),
        );
    }

    #[test]
    fn agent_frames_round_trip() {
        round_trip(
            &AgentFrame::Hello(AgentHello {
                protocol_version: 1,
                cursors: Vec::new(),
                events_after: Some(40),
            }),
            json!({"type": "hello", "protocol_version": 1, "events_after": 40}),
        );
        round_trip(
            &AgentFrame::SetStatus(SetStatus {
                status: AgentStatus::Away,
            }),
            json!({"type": "set_status", "status": "away"}),
        );
    }

    #[test]
    fn server_frames_round_trip() {
        round_trip(
            &ServerFrame::Translation(Translation {
                conversation_id: ConversationId(12),
                seq: 3,
                source_language: "zh".into(),
                language: "en".into(),
                text: None,
                unavailable: Some(Unavailable::Budget),
            }),
            json!({"type": "translation", "conversation_id": 12, "seq": 3, "source_language": "zh",
                   "language": "en", "unavailable": "budget"}),
        );
        round_trip(
            &ServerFrame::Ack {
                client_id: ClientId("c1".into()),
                conversation_id: ConversationId(12),
                seq: 6,
            },
            json!({"type": "ack", "client_id": "c1", "conversation_id": 12, "seq": 6}),
        );
        round_trip(
            &ServerFrame::AssignmentChanged {
                event_seq: 41,
                conversation_id: ConversationId(12),
                assignee: None,
                team: None,
                by: None,
                note: None,
            },
            json!({"type": "assignment_changed", "event_seq": 41, "conversation_id": 12}),
        );
        round_trip(
            &ServerFrame::Error {
                code: ErrorCode::RateLimited,
                message: "slow down".into(),
                client_id: Some(ClientId("c1".into())),
                conversation_id: None,
                retry_after_ms: Some(1500),
            },
            json!({
                "type": "error", "code": "rate_limited", "message": "slow down",
                "client_id": "c1", "retry_after_ms": 1500
            }),
        );
        let welcome = ServerFrame::Welcome(Welcome {
            protocol_version: 1,
            server_time: 1_700_000_000_000,
            visitor_id: Some(VisitorId(7)),
            visitor_token: Some("tok".into()),
            agent_id: None,
            event_seq: None,
            conversations: Vec::new(),
            limits: Limits::default(),
        });
        let value = serde_json::to_value(&welcome).expect("serialize");
        assert_eq!(value["limits"]["ping_interval_ms"], 15_000);
        assert!(value.get("conversations").is_none());
        let back: ServerFrame = serde_json::from_value(value).expect("parse back");
        assert_eq!(back, welcome);
    }

    #[test]
    fn durable_frames_are_messages_and_agent_events() {
        let ping = ServerFrame::Ping(Ping { nonce: 1 });
        assert!(!ping.is_durable());
        let created = ServerFrame::ConversationCreated {
            event_seq: 1,
            conversation_id: ConversationId(1),
            site_id: SiteId(1),
            visitor_id: VisitorId(1),
            created_at: 0,
        };
        assert!(created.is_durable());
    }

    #[test]
    fn unknown_frame_types_are_refused() {
        let text = r#"{"type": "teleport", "conversation_id": 1}"#;
        assert!(serde_json::from_str::<VisitorFrame>(text).is_err());
        assert!(serde_json::from_str::<AgentFrame>(text).is_err());
        assert!(serde_json::from_str::<ServerFrame>(text).is_err());
    }

    #[test]
    fn frames_of_the_other_role_are_refused() {
        // An agent cannot send a sneak peek or a page view; a visitor cannot set a status.
        let preview = r#"{"type": "preview", "text": "hel"}"#;
        assert!(serde_json::from_str::<VisitorFrame>(preview).is_ok());
        assert!(serde_json::from_str::<AgentFrame>(preview).is_err());
        let status = r#"{"type": "set_status", "status": "online"}"#;
        assert!(serde_json::from_str::<AgentFrame>(status).is_ok());
        assert!(serde_json::from_str::<VisitorFrame>(status).is_err());
        // A visitor hello is not an agent hello and vice versa.
        let visitor_hello = r#"{"type": "hello", "protocol_version": 1, "site_key": "pk"}"#;
        assert!(serde_json::from_str::<AgentFrame>(visitor_hello).is_err());
        let agent_hello = r#"{"type": "hello", "protocol_version": 1, "events_after": 3}"#;
        assert!(serde_json::from_str::<VisitorFrame>(agent_hello).is_err());
    }

    #[test]
    fn malformed_frames_are_refused() {
        for text in [
            "",
            "not json",
            "[]",
            "null",
            r#"{"conversation_id": 1, "typing": true}"#,
            r#"{"type": 7}"#,
            r#"{"type": "typing", "conversation_id": 1}"#,
            r#"{"type": "typing", "conversation_id": "1", "typing": true}"#,
            r#"{"type": "typing", "conversation_id": 1, "typing": "yes"}"#,
            r#"{"type": "send", "client_id": "c1"}"#,
            r#"{"type": "send", "client_id": 5, "body": "x"}"#,
            r#"{"type": "read", "conversation_id": 1, "up_to_seq": 1.5}"#,
            r#"{"type": "ping", "nonce": -1}"#,
            r#"{"type": "resume"}"#,
            r#"{"type": "resume", "cursors": [{"conversation_id": 1}]}"#,
            r#"{"type": "ping", "nonce": 1} trailing"#,
        ] {
            assert!(
                serde_json::from_str::<VisitorFrame>(text).is_err(),
                "visitor accepted {text:?}"
            );
            assert!(
                serde_json::from_str::<AgentFrame>(text).is_err(),
                "agent accepted {text:?}"
            );
        }
    }

    #[test]
    fn client_frames_refuse_unknown_fields() {
        // A typo must not silently mean "start a new conversation".
        let typo = r#"{"type": "send", "conversation_idd": 12, "client_id": "c1", "body": "x"}"#;
        assert!(serde_json::from_str::<VisitorFrame>(typo).is_err());
        let nested = r#"{"type": "hello", "protocol_version": 1, "site_key": "pk",
                         "page": {"url": "https://a.example/", "colour": "red"}}"#;
        assert!(serde_json::from_str::<VisitorFrame>(nested).is_err());
        let cursor =
            r#"{"type": "resume", "cursors": [{"conversation_id": 1, "after_seq": 0, "x": 1}]}"#;
        assert!(serde_json::from_str::<AgentFrame>(cursor).is_err());
    }

    #[test]
    fn server_frames_ignore_unknown_fields() {
        // So the server can add optional fields without breaking older widgets.
        let text = r#"{"type": "availability", "online": true, "since": 5}"#;
        let frame: ServerFrame = serde_json::from_str(text).expect("parse");
        assert_eq!(frame, ServerFrame::Availability { online: true });
    }

    #[test]
    fn frame_type_matches_the_json_tag() {
        let frames = [
            ServerFrame::Reconnect { within_ms: 5000 },
            ServerFrame::VisitorPresence {
                site_id: SiteId(1),
                visitor_id: VisitorId(2),
                online: false,
                details: None,
            },
            ServerFrame::Pong(Pong { nonce: 3 }),
            ServerFrame::ReplayCut,
        ];
        for frame in frames {
            let value = serde_json::to_value(&frame).expect("serialize");
            assert_eq!(value["type"], frame.frame_type());
        }
    }
}
