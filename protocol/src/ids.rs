//! Identifiers, positions and small value types that frames are made of.
//!
//! Database ids are newtypes over `i64` (the store's primary keys) so a visitor id can never be
//! passed where a conversation id is expected. They are the store's own id types too: with the
//! `sqlx` feature each is a transparent `i64` column, so one id type travels from the row to the
//! frame. On the wire each is a plain JSON integer (`#[serde(transparent)]`). Positions ([`Seq`],
//! [`EventSeq`]) and timestamps ([`UnixMillis`]) stay plain aliases because they are compared and
//! incremented, and the store shares them.
//! Every integer the server sends stays below 2^53, so JavaScript clients read them exactly.
//!
//! This module does not validate values (lengths, ranges): the server does that and answers with
//! an [`ErrorCode`](crate::ErrorCode).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A message's position in its conversation: gap-free, starting at 1, assigned by the server.
/// A cursor value of 0 means "nothing seen yet".
pub type Seq = i64;

/// A durable agent event's position ([`crate::ServerFrame::ConversationCreated`],
/// [`crate::ServerFrame::AssignmentChanged`]): increasing, but with gaps, because each agent only
/// sees the events of their own sites.
pub type EventSeq = i64;

/// A UTC instant as milliseconds since the Unix epoch (how every timestamp travels).
pub type UnixMillis = i64;

/// Declares a transparent `i64` id newtype: `Display` and `FromStr` as the number (URLs and
/// forms carry ids as text), `i64::from` for the rare place that needs the number itself.
macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(pub i64);

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_newtype! {
    /// Identifies a conversation (the store's `conversations.id`).
    ConversationId
}

id_newtype! {
    /// Identifies a visitor within the whole server (the store's `visitors.id`).
    VisitorId
}

id_newtype! {
    /// Identifies a site (the store's `sites.id`); agents see it, visitors use the public key.
    SiteId
}

id_newtype! {
    /// Identifies an agent (the store's `agents.id`).
    AgentId
}

id_newtype! {
    /// Identifies a team of agents (the store's `teams.id`).
    TeamId
}

id_newtype! {
    /// Identifies a message across all conversations (the store's `messages.id`); its place inside
    /// its conversation is its [`Seq`].
    MessageId
}

id_newtype! {
    /// Identifies an offline message left when nobody answered (the store's `leave_messages.id`).
    LeaveMessageId
}

id_newtype! {
    /// Identifies a ban on a visitor or an address (the store's `bans.id`).
    BanId
}

id_newtype! {
    /// Identifies a canned reply (the store's `canned_replies.id`).
    CannedReplyId
}

id_newtype! {
    /// Identifies an attachment inside the database (the store's `attachments.id`); clients know
    /// it only by its public id.
    AttachmentId
}

/// A client-made message id (a UUID in its text form); the server deduplicates resends by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub String);

impl ClientId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is what `docs/protocol.md` allows: 1–64 characters from `A–Z a–z 0–9 - _`.
    pub fn is_valid(&self) -> bool {
        (1..=64).contains(&self.0.len())
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

/// Who wrote a message (or is typing, or has read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    /// The visitor of the conversation.
    Visitor,
    /// An agent of the site; frames then also carry the agent's id.
    Agent,
    /// The server itself (e.g. "conversation assigned to Mei").
    System,
}

impl Author {
    /// Every author.
    pub const ALL: [Author; 3] = [Author::Visitor, Author::Agent, Author::System];

    /// The stable text form used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Author::Visitor => "visitor",
            Author::Agent => "agent",
            Author::System => "system",
        }
    }

    /// Parses the text form written by [`Author::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|author| author.as_str() == text)
    }
}

/// An agent's availability, set by the agent and shown to colleagues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Connected and taking chats.
    Online,
    /// Connected but not taking new chats.
    Away,
    /// Not connected (or chose to appear offline).
    Offline,
}

impl AgentStatus {
    /// The stable text form, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Online => "online",
            AgentStatus::Away => "away",
            AgentStatus::Offline => "offline",
        }
    }

    /// Parses the text form written by [`AgentStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Online, Self::Away, Self::Offline]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// Where a conversation is in its life: the console's queues, and what the widget offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Active: the visitor or an agent is expected to write.
    Open,
    /// Waiting on something outside the chat.
    Pending,
    /// Done: the visitor may rate it; their next message reopens it.
    Resolved,
}

impl ConversationStatus {
    /// Every status, in the order a conversation usually goes through them.
    pub const ALL: [ConversationStatus; 3] = [Self::Open, Self::Pending, Self::Resolved];

    /// The stable text form: the JSON value, and the body of the `system` message recording a
    /// change to it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Pending => "pending",
            ConversationStatus::Resolved => "resolved",
        }
    }

    /// Parses the text form written by [`ConversationStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// What the `system` message recording a status change says: the new status, and for a snooze
/// until when. Its body is the status's text form, or `pending until <Unix ms>` for a snooze.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRecord {
    /// The new status.
    pub status: ConversationStatus,
    /// Until when a pending conversation is snoozed.
    pub until: Option<UnixMillis>,
}

impl StatusRecord {
    /// The message body that records it.
    pub fn body(self) -> String {
        match self.until {
            Some(until) => format!("{} until {until}", self.status.as_str()),
            None => self.status.as_str().to_string(),
        }
    }

    /// Reads a body written by [`StatusRecord::body`]; `None` for any other text.
    pub fn parse(body: &str) -> Option<Self> {
        match body.split_once(" until ") {
            Some((status, until)) => Some(StatusRecord {
                status: ConversationStatus::parse(status)?,
                until: Some(until.parse().ok()?),
            }),
            None => Some(StatusRecord {
                status: ConversationStatus::parse(body)?,
                until: None,
            }),
        }
    }
}

/// A change to `status` with no snooze.
impl From<ConversationStatus> for StatusRecord {
    fn from(status: ConversationStatus) -> Self {
        StatusRecord {
            status,
            until: None,
        }
    }
}

/// Text that is not a [`ConversationStatus`] (a newer or hand-edited database row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus(pub String);

impl std::fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unexpected conversation status {:?}", self.0)
    }
}

impl std::error::Error for UnknownStatus {}

/// How the store reads the status column.
impl TryFrom<String> for ConversationStatus {
    type Error = UnknownStatus;

    fn try_from(text: String) -> Result<Self, UnknownStatus> {
        ConversationStatus::parse(&text).ok_or(UnknownStatus(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_records_read_back_what_they_write() {
        for record in [
            StatusRecord {
                status: ConversationStatus::Resolved,
                until: None,
            },
            StatusRecord {
                status: ConversationStatus::Pending,
                until: Some(1_765_000_000_000),
            },
        ] {
            assert_eq!(StatusRecord::parse(&record.body()), Some(record));
        }
        assert_eq!(
            StatusRecord::parse("open").map(|r| r.status),
            Some(ConversationStatus::Open)
        );
        for other in [
            "",
            "Resolved",
            "pending until",
            "pending until soon",
            "later until 5",
            "hello",
        ] {
            assert_eq!(StatusRecord::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn client_ids_are_short_and_plain() {
        let ok = ["a", "0c5e7a91-6d2b-4f3e-9a8c-1b2d3e4f5a6b", "c12-3_x"];
        for id in ok {
            assert!(ClientId(id.into()).is_valid(), "{id}");
        }
        let long = "x".repeat(65);
        for id in [
            "",
            long.as_str(),
            "a b",
            "a/b",
            "é",
            "a\u{202e}b",
            "<script>",
        ] {
            assert!(!ClientId(id.into()).is_valid(), "{id:?}");
        }
    }

    #[test]
    fn author_text_round_trips() {
        for author in [Author::Visitor, Author::Agent, Author::System] {
            assert_eq!(Author::parse(author.as_str()), Some(author));
            let json = serde_json::to_string(&author).expect("serialize");
            assert_eq!(json, format!("\"{}\"", author.as_str()));
        }
        assert_eq!(Author::parse("robot"), None);
    }

    #[test]
    fn agent_status_text_round_trips() {
        for status in [AgentStatus::Online, AgentStatus::Away, AgentStatus::Offline] {
            assert_eq!(AgentStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).expect("serialize");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(AgentStatus::parse("busy"), None);
    }

    #[test]
    fn conversation_status_text_round_trips() {
        for status in [
            ConversationStatus::Open,
            ConversationStatus::Pending,
            ConversationStatus::Resolved,
        ] {
            assert_eq!(
                ConversationStatus::try_from(status.as_str().to_string()),
                Ok(status)
            );
            let json = serde_json::to_string(&status).expect("serialize");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(
            ConversationStatus::try_from("closed".to_string()),
            Err(UnknownStatus("closed".into()))
        );
    }

    #[test]
    fn ids_are_plain_integers_on_the_wire() {
        let json = serde_json::to_string(&ConversationId(42)).expect("serialize");
        assert_eq!(json, "42");
        let id: VisitorId = serde_json::from_str("7").expect("parse");
        assert_eq!(id, VisitorId(7));
        assert_eq!(AgentId(3).to_string(), "3");
        assert!(serde_json::from_str::<SiteId>("\"7\"").is_err());
    }

    #[test]
    fn client_ids_are_plain_strings_on_the_wire() {
        let id = ClientId("6f1c".into());
        assert_eq!(serde_json::to_string(&id).expect("serialize"), "\"6f1c\"");
        assert_eq!(id.as_str(), "6f1c");
    }
}
