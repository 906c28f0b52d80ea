//! The rows the store reads and writes, and the values that create them.
//!
//! These are storage types, not wire types: they carry everything a row holds (an agent's
//! password hash included), so the server converts them into `protocol` types before anything
//! leaves the process. Ids are the exception: they are `protocol`'s newtypes ([`SiteId`],
//! [`ConversationId`], …), stored as plain integers through its `sqlx` feature, so one id type
//! travels from the row to the frame. Timestamps are UTC Unix milliseconds ([`UnixMillis`])
//! because that one representation is stored, compared and paged identically by SQLite,
//! PostgreSQL and MySQL. Enumerations are stored as the stable lower-case text returned by their
//! `as_str`.

use std::fmt;

pub use protocol::{
    AgentId, AttachmentId, BanId, CannedReplyId, ConversationId, ConversationStatus, EventSeq,
    LeaveMessageId, MessageId, SiteId, TeamId, UnixMillis, VisitorId,
};
use protocol::{Author, ClientId, Seq};
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

/// The current time as [`UnixMillis`], for callers that have no clock of their own to pass.
pub fn now_millis() -> UnixMillis {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// A stored enumeration held a value this version does not know (a newer or hand-edited row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected {kind} value {value:?} in the database")]
pub struct UnknownVariant {
    /// Which enumeration was being read (`"role"`, `"status"` …).
    pub kind: &'static str,
    /// The text found in the row.
    pub value: String,
}

/// Declares a text-backed enumeration with `as_str`, `parse` and the `TryFrom<String>` that
/// `#[sqlx(try_from = "String")]` uses to read it.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            /// The stable text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses the text written by `as_str`.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownVariant;

            fn try_from(value: String) -> Result<Self, UnknownVariant> {
                $name::parse(&value).ok_or(UnknownVariant { kind: $kind, value })
            }
        }
    };
}

text_enum! {
    /// What an agent may do: admins manage sites and agents, agents answer chats.
    Role, "role" {
        /// Manages sites, agents and settings, and can also chat.
        Admin = "admin",
        /// Answers conversations and leave-messages on the sites they belong to.
        Agent = "agent",
    }
}

text_enum! {
    /// Where a leave-message (offline form submission) is in its handling.
    LeaveMessageStatus, "leave message status" {
        /// Nobody has looked at it yet.
        New = "new",
        /// An agent has taken it.
        InProgress = "in_progress",
        /// Answered or otherwise closed.
        Handled = "handled",
    }
}

/// A customer website that embeds the widget.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Primary key.
    pub id: SiteId,
    /// The public key in the widget's `data-site` attribute; how a visitor's request finds its site.
    pub public_key: String,
    /// Shown to agents in the console.
    pub name: String,
    /// Origins (`https://shop.example`) whose pages may open the widget; checked against `Origin`.
    pub allowed_origins: Vec<String>,
    /// Widget appearance and behaviour, owned by the server and widget (stored as JSON text).
    pub widget_settings: serde_json::Value,
    /// When the site was added.
    pub created_at: UnixMillis,
}

/// The values needed to create a [`Site`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewSite {
    /// See [`Site::public_key`]; must be unique (else `Conflict { field: "public_key" }`).
    pub public_key: String,
    /// See [`Site::name`].
    pub name: String,
    /// See [`Site::allowed_origins`].
    pub allowed_origins: Vec<String>,
    /// See [`Site::widget_settings`].
    pub widget_settings: serde_json::Value,
    /// See [`Site::created_at`].
    pub created_at: UnixMillis,
}

/// A person who answers chats in the console.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Agent {
    /// Primary key.
    pub id: AgentId,
    /// Login name; unique and compared exactly, so the caller normalises it (e.g. lower-case).
    pub email: String,
    /// Argon2 PHC string made by the caller; the store never sees the password itself.
    pub password_hash: String,
    /// The name visitors and colleagues see.
    pub display_name: String,
    /// What the agent may do.
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// The agent's language (BCP 47 tag); the target language of translations.
    pub language: String,
    /// How many chats the router may assign to this agent at once.
    pub max_chats: i32,
    /// A disabled agent keeps their history but cannot sign in.
    pub disabled: bool,
    /// When the agent was added.
    pub created_at: UnixMillis,
}

/// The values needed to create an [`Agent`] (enabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    /// See [`Agent::email`]; must be unique (else `Conflict { field: "email" }`).
    pub email: String,
    /// See [`Agent::password_hash`].
    pub password_hash: String,
    /// See [`Agent::display_name`].
    pub display_name: String,
    /// See [`Agent::role`].
    pub role: Role,
    /// See [`Agent::language`].
    pub language: String,
    /// See [`Agent::max_chats`].
    pub max_chats: i32,
    /// See [`Agent::created_at`].
    pub created_at: UnixMillis,
}

/// A group of agents on one site, used for routing chats.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Team {
    /// Primary key.
    pub id: TeamId,
    /// The site the team works on.
    pub site_id: SiteId,
    /// Shown in the console.
    pub name: String,
}

/// Someone who opened the widget on a site, recognised again by their visitor key.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Visitor {
    /// Primary key.
    pub id: VisitorId,
    /// The site the visitor came to; visitor keys are only unique within it.
    pub site_id: SiteId,
    /// The widget's stable random identifier for this browser.
    pub visitor_key: String,
    /// Name, if the visitor gave one.
    pub name: Option<String>,
    /// Email, if the visitor gave one.
    pub email: Option<String>,
    /// What the host page told about the visitor (plan, order number…), for the agents.
    #[sqlx(try_from = "String")]
    pub attributes: VisitorAttributes,
    /// First contact.
    pub created_at: UnixMillis,
    /// Most recent contact, for "returning visitor" and clean-up.
    pub last_seen_at: UnixMillis,
    /// The browser's language (BCP 47), as the widget last said: translation's fallback when a
    /// message is too short to tell its language.
    pub language: Option<String>,
}

/// Name → value pairs set by the host page; stored as a JSON object of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct VisitorAttributes(pub std::collections::BTreeMap<String, String>);

impl TryFrom<String> for VisitorAttributes {
    type Error = serde_json::Error;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&text)
    }
}

/// A chat between one visitor and the site's agents.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Conversation {
    /// Primary key.
    pub id: ConversationId,
    /// The site it belongs to (access control and the console's lists).
    pub site_id: SiteId,
    /// The visitor who started it.
    pub visitor_id: VisitorId,
    /// Where it is in its life.
    #[sqlx(try_from = "String")]
    pub status: ConversationStatus,
    /// The agent responsible, if assigned.
    pub assignee_id: Option<AgentId>,
    /// The team it was transferred to: while unassigned, only that team's agents are given it.
    pub team_id: Option<TeamId>,
    /// The seq of the newest message (0 when empty); clients compare it to their cursor.
    pub last_seq: Seq,
    /// When it was started.
    pub created_at: UnixMillis,
    /// When it last changed (a message arrived); the console lists newest first by it.
    pub updated_at: UnixMillis,
    /// Whether its messages are translated when its site translates: an agent turns it off
    /// for a visitor who reads the agent's language well enough.
    pub translating: bool,
    /// Until when it is snoozed (pending, and reopened then or when the visitor writes).
    pub snoozed_until: Option<UnixMillis>,
}

/// What never changes about a conversation: whose it is and on which site. Enough to check who
/// may write into it and where its events go, so the server keeps it and a message needs no
/// read (conversation ids are never reused, even after a deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationFacts {
    /// The conversation.
    pub id: ConversationId,
    /// Its site: who of the agents may read it.
    pub site_id: SiteId,
    /// Its visitor: the only visitor who may.
    pub visitor_id: VisitorId,
}

impl Conversation {
    /// What never changes about it.
    pub fn facts(&self) -> ConversationFacts {
        ConversationFacts {
            id: self.id,
            site_id: self.site_id,
            visitor_id: self.visitor_id,
        }
    }

    /// The cursor that continues a [`crate::Conversations::conversations_page`] after this row.
    pub fn cursor(&self) -> ConversationCursor {
        ConversationCursor {
            updated_at: self.updated_at,
            id: self.id,
        }
    }
}

/// Keyset position in the (updated_at DESC, id DESC) order of conversations: the last row seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConversationCursor {
    /// `updated_at` of the last row of the previous page.
    pub updated_at: UnixMillis,
    /// `id` of the last row of the previous page; breaks ties between equal timestamps.
    pub id: ConversationId,
}

/// One stored chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Primary key.
    pub id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Its gap-free position in the conversation (1, 2, 3 …); clients resume from it.
    pub seq: Seq,
    /// The sender's id for it; a resend with the same id is recognised and not stored twice.
    pub client_id: ClientId,
    /// Who wrote it.
    pub author: Author,
    /// The agent who wrote it, when `author` is [`Author::Agent`].
    pub agent_id: Option<AgentId>,
    /// The text, exactly as sent (empty for a file sent without a caption).
    pub body: String,
    /// The file it carries, as clients see it: a copy of the upload's (immutable) description,
    /// so replaying a transcript needs no join.
    pub attachment: Option<protocol::Attachment>,
    /// When the server accepted it.
    pub created_at: UnixMillis,
}

/// The values needed to append a [`Message`]; the store assigns `id` and `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// See [`Message::client_id`].
    pub client_id: ClientId,
    /// See [`Message::author`].
    pub author: Author,
    /// See [`Message::agent_id`].
    pub agent_id: Option<AgentId>,
    /// See [`Message::body`].
    pub body: String,
    /// See [`Message::attachment`].
    pub attachment: Option<protocol::Attachment>,
    /// See [`Message::created_at`]; also becomes the conversation's `updated_at` (never moving
    /// it backwards).
    pub created_at: UnixMillis,
}

impl NewMessage {
    /// The `messages.attachment` column's value: the attachment as JSON text.
    pub(crate) fn attachment_text(&self) -> crate::Result<Option<String>> {
        self.attachment.as_ref().map(to_json_text).transpose()
    }
}

/// The result of [`crate::Messages::append_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stored message: the new one, or the one stored earlier with the same client id.
    pub message: Message,
    /// `false` when this was a resend and nothing new was stored (so nothing new to fan out).
    pub created: bool,
    /// Whether the conversation was resolved or snoozed when the message went in (read in the
    /// same transaction, so no status change can come between): a visitor writing into it
    /// reopens it. `false` for a resend.
    pub parked: bool,
}

/// Whether a conversation with this status and snooze is parked: resolved, or snoozed.
pub(crate) fn parked(status: &str, snoozed_until: Option<UnixMillis>) -> bool {
    status == ConversationStatus::Resolved.as_str() || snoozed_until.is_some()
}

/// The result of [`crate::Messages::append_message_in_open_conversation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedNew {
    /// The stored message (new, or the one stored earlier under the same client id) and whether
    /// it was created by this call.
    pub appended: Appended,
    /// The conversation holding the message, as it is after the append: its `last_seq` is at
    /// least the message's seq (on SQLite it is read after the batch commits, so later appends
    /// may show).
    pub conversation: Conversation,
    /// `true` when this call started the conversation (agents must be told about it).
    pub created_conversation: bool,
}

/// A message left through the widget's offline form when no agent was available.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct LeaveMessage {
    /// Primary key.
    pub id: LeaveMessageId,
    /// The site whose form it came through.
    pub site_id: SiteId,
    /// The visitor, if known (a leave-message can also come from a bare form post).
    pub visitor_id: Option<VisitorId>,
    /// Name the visitor gave, if any.
    pub name: Option<String>,
    /// How to answer: email address or phone number, as typed.
    pub contact: String,
    /// The message text.
    pub body: String,
    /// Where it is in its handling.
    #[sqlx(try_from = "String")]
    pub status: LeaveMessageStatus,
    /// The agent handling it, if any.
    pub assignee_id: Option<AgentId>,
    /// When it was left.
    pub created_at: UnixMillis,
}

impl LeaveMessage {
    /// The cursor that continues a [`crate::LeaveMessages::leave_messages_page`] after this row.
    pub fn cursor(&self) -> LeaveMessageCursor {
        LeaveMessageCursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// The values needed to store a [`LeaveMessage`] (created with status `new`, unassigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLeaveMessage {
    /// See [`LeaveMessage::site_id`].
    pub site_id: SiteId,
    /// See [`LeaveMessage::visitor_id`].
    pub visitor_id: Option<VisitorId>,
    /// See [`LeaveMessage::name`].
    pub name: Option<String>,
    /// See [`LeaveMessage::contact`].
    pub contact: String,
    /// See [`LeaveMessage::body`].
    pub body: String,
    /// See [`LeaveMessage::created_at`].
    pub created_at: UnixMillis,
}

/// Keyset position in the (created_at DESC, id DESC) order of leave-messages: the last row seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaveMessageCursor {
    /// `created_at` of the last row of the previous page.
    pub created_at: UnixMillis,
    /// `id` of the last row of the previous page; breaks ties between equal timestamps.
    pub id: LeaveMessageId,
}

/// An agent's note on a leave-message (a reply sent by e-mail is recorded as one too).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct LeaveMessageNote {
    /// Primary key.
    pub id: i64,
    /// The leave-message it is about.
    pub leave_message_id: LeaveMessageId,
    /// Who wrote it (none once that agent is deleted).
    pub agent_id: Option<AgentId>,
    /// What it says.
    pub body: String,
    /// When it was written.
    pub created_at: UnixMillis,
}

/// The values needed to store a [`LeaveMessageNote`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLeaveMessageNote {
    /// See [`LeaveMessageNote::leave_message_id`].
    pub leave_message_id: LeaveMessageId,
    /// See [`LeaveMessageNote::agent_id`].
    pub agent_id: Option<AgentId>,
    /// See [`LeaveMessageNote::body`].
    pub body: String,
    /// See [`LeaveMessageNote::created_at`].
    pub created_at: UnixMillis,
}

text_enum! {
    /// Where a message's translation stands.
    TranslationState, "translation state" {
        /// Asked for; not answered yet.
        Pending = "pending",
        /// Translated: the text is there.
        Done = "done",
        /// The provider failed (down, slow, out of budget); shown as unavailable, retried.
        Failed = "failed",
    }
}

/// A message's translation for the other side of the chat, or where getting it stands.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct MessageTranslation {
    /// The message translated.
    pub message_id: MessageId,
    /// The language it was written in (detected or declared; BCP 47).
    pub source_language: String,
    /// The language it is translated into (the reader's; BCP 47).
    pub target_language: String,
    /// The translation, once there is one.
    pub text: Option<String>,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub state: TranslationState,
    /// Requests made for it so far (retries are counted).
    pub attempts: i32,
    /// When it last changed.
    pub updated_at: UnixMillis,
}

/// What a cached translation is found by: the same text between the same languages from the
/// same provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TranslationKey {
    /// SHA-256 of the text, in hex (the text itself is not the key: it can be long).
    pub text_hash: String,
    /// The text's language.
    pub source_language: String,
    /// The translation's language.
    pub target_language: String,
    /// The provider that translated it (`deepl`, …): providers translate differently.
    pub provider: String,
}

/// A key for the REST API, made by an admin and acting as them. The key itself is shown once,
/// when it is made; the store keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ApiToken {
    /// Primary key.
    pub id: i64,
    /// The admin it acts as; it stops working when they are disabled or lose the role.
    pub agent_id: AgentId,
    /// What the admin called it ("CRM sync"), to tell tokens apart.
    pub name: String,
    /// Its first characters, shown in the list so a leaked key can be matched to its row.
    pub prefix: String,
    /// When it was made.
    pub created_at: UnixMillis,
    /// When it was last used (to the minute), if ever: unused keys are the ones to revoke.
    pub last_used_at: Option<UnixMillis>,
}

/// The values needed to store an [`ApiToken`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// See [`ApiToken::agent_id`].
    pub agent_id: AgentId,
    /// See [`ApiToken::name`].
    pub name: String,
    /// The key's SHA-256 in hex, as [`crate::Credentials::api_token_agent`] is asked with; unique.
    pub token_hash: String,
    /// See [`ApiToken::prefix`].
    pub prefix: String,
    /// See [`ApiToken::created_at`].
    pub created_at: UnixMillis,
}

/// A URL told about events, with the secret its deliveries are signed with.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Webhook {
    /// Primary key.
    pub id: i64,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The HMAC-SHA256 key of the signature header; shown to the admin who adds the hook.
    pub secret: String,
    /// The events it wants, space-separated with a space at each end (` message.created `).
    pub events: String,
    /// When it was added.
    pub created_at: UnixMillis,
}

impl Webhook {
    /// Whether it wants `event`.
    pub fn wants(&self, event: &str) -> bool {
        self.events.split_whitespace().any(|e| e == event)
    }
}

text_enum! {
    /// Where a webhook delivery stands.
    DeliveryState, "delivery state" {
        /// Waiting for its (next) attempt.
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Every attempt failed.
        Failed = "failed",
    }
}

/// One event sent (or to be sent) to one webhook.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct WebhookDelivery {
    /// Primary key; receivers see it as the delivery id (retries repeat it).
    pub id: i64,
    /// The webhook it goes to.
    pub webhook_id: i64,
    /// `message.created`, `conversation.resolved` or `leave_message.created`.
    pub event: String,
    /// The JSON body, exactly as sent (and signed) on every attempt.
    pub payload: String,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt may start (while pending; a sender's lease while it sends).
    pub next_attempt_at: UnixMillis,
    /// The HTTP status of the last attempt, if the receiver answered.
    pub last_status: Option<i32>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When the event happened.
    pub created_at: UnixMillis,
}

/// How a delivery attempt ended, for [`crate::Webhooks::record_webhook_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// The state afterwards: delivered, pending again (retry) or failed (no more retries).
    pub state: DeliveryState,
    /// When to try again, if pending.
    pub next_attempt_at: UnixMillis,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<i32>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// One conversation's facts for reports (see [`crate::History::conversation_stats`]).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ConversationStats {
    /// The conversation.
    pub id: ConversationId,
    /// When it started.
    pub created_at: UnixMillis,
    /// When an agent first wrote in it, if one did.
    pub first_reply_at: Option<UnixMillis>,
    /// When it was resolved, if it is (its last update: a new message would reopen it).
    pub resolved_at: Option<UnixMillis>,
    /// Who has it.
    pub assignee_id: Option<AgentId>,
    /// The visitor's rating, 1 to 5, if any.
    pub rating: Option<i64>,
}

/// Which conversations (and their messages) a history view shows: every condition given must
/// hold. The sites are the ones the asking agent may see; the caller checks that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// The sites searched; none means nothing is found.
    pub sites: Vec<SiteId>,
    /// Only conversations assigned to this agent.
    pub agent: Option<AgentId>,
    /// Only this visitor's conversations.
    pub visitor: Option<VisitorId>,
    /// Created (a message: sent) at or after this instant.
    pub since: Option<UnixMillis>,
    /// Created (a message: sent) before this instant.
    pub until: Option<UnixMillis>,
    /// Only conversations carrying this tag.
    pub tag: Option<String>,
    /// Only conversations in this status.
    pub status: Option<ConversationStatus>,
    /// Only conversations the visitor rated with this score.
    pub rating: Option<u8>,
}

/// A file a visitor or agent uploaded to send in a message. Its bytes are kept in the database
/// too (read with [`crate::Attachments::attachment_data`]), so backups, `migrate-to` and several nodes
/// need no shared disk.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Attachment {
    /// Primary key.
    pub id: AttachmentId,
    /// 32 random hex digits: the id in URLs and frames. Being unguessable is what keeps a file
    /// private to the people who were sent the message.
    pub public_id: String,
    /// The site it was uploaded to; only messages of this site may carry it.
    pub site_id: SiteId,
    /// The uploading visitor (one of `visitor_id` and `agent_id` is set): only they may send it.
    pub visitor_id: Option<VisitorId>,
    /// The uploading agent.
    pub agent_id: Option<AgentId>,
    /// The file name, as sanitised by the server.
    pub name: String,
    /// The media type the server checked the bytes against.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// When it was uploaded.
    pub created_at: UnixMillis,
}

impl Attachment {
    /// How messages describe it to clients.
    pub fn wire(&self) -> protocol::Attachment {
        protocol::Attachment {
            id: self.public_id.clone(),
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            size: u64::try_from(self.size).unwrap_or_default(),
        }
    }

    /// The attachment `create_attachment` stores: `new` without its bytes, with database id `id`.
    pub(crate) fn stored(id: AttachmentId, new: &NewAttachment) -> Attachment {
        Attachment {
            id,
            public_id: new.public_id.clone(),
            site_id: new.site_id,
            visitor_id: new.visitor_id,
            agent_id: new.agent_id,
            name: new.name.clone(),
            content_type: new.content_type.clone(),
            size: i64::try_from(new.data.len()).unwrap_or(i64::MAX),
            created_at: new.created_at,
        }
    }
}

/// The values needed to store an [`Attachment`]; its size is the length of `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    /// See [`Attachment::public_id`]; made by the caller from a secure random source.
    pub public_id: String,
    /// See [`Attachment::site_id`].
    pub site_id: SiteId,
    /// See [`Attachment::visitor_id`].
    pub visitor_id: Option<VisitorId>,
    /// See [`Attachment::agent_id`].
    pub agent_id: Option<AgentId>,
    /// See [`Attachment::name`].
    pub name: String,
    /// See [`Attachment::content_type`].
    pub content_type: String,
    /// The file's bytes.
    pub data: Vec<u8>,
    /// See [`Attachment::created_at`].
    pub created_at: UnixMillis,
}

/// A visitor's rating of a resolved conversation (CSAT).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Rating {
    /// The conversation rated (one rating each; rating again replaces it).
    pub conversation_id: ConversationId,
    /// 1 (bad) to 5 (great).
    pub score: i64,
    /// What the visitor added, if anything.
    pub comment: Option<String>,
    /// When it was (last) given.
    pub created_at: UnixMillis,
}

/// Text an agent inserts by typing `/shortcut` in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CannedReply {
    /// Primary key.
    pub id: CannedReplyId,
    /// The site whose conversations it is for.
    pub site_id: SiteId,
    /// The agent whose own reply it is; `None`: shared by every agent of the site.
    pub agent_id: Option<AgentId>,
    /// What follows the `/`, e.g. `refund`.
    pub shortcut: String,
    /// The text inserted.
    pub body: String,
    /// When it was written.
    pub created_at: UnixMillis,
}

/// The values needed to store a [`CannedReply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCannedReply {
    /// See [`CannedReply::site_id`].
    pub site_id: SiteId,
    /// See [`CannedReply::agent_id`].
    pub agent_id: Option<AgentId>,
    /// See [`CannedReply::shortcut`].
    pub shortcut: String,
    /// See [`CannedReply::body`].
    pub body: String,
    /// See [`CannedReply::created_at`].
    pub created_at: UnixMillis,
}

impl CannedReply {
    /// The reply `create_canned_reply` stores: `new` with database id `id`.
    pub(crate) fn stored(id: CannedReplyId, new: NewCannedReply) -> CannedReply {
        CannedReply {
            id,
            site_id: new.site_id,
            agent_id: new.agent_id,
            shortcut: new.shortcut,
            body: new.body,
            created_at: new.created_at,
        }
    }
}

/// A signed-in agent's console session.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Session {
    /// Hash of the cookie's token: a leaked database does not yield usable cookies.
    pub token_hash: String,
    /// Who signed in.
    pub agent_id: AgentId,
    /// When they signed in.
    pub created_at: UnixMillis,
    /// After this instant the session no longer authenticates anyone.
    pub expires_at: UnixMillis,
}

/// A block on a visitor or an address range, on one site, until it expires.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Ban {
    /// Primary key.
    pub id: BanId,
    /// The site the ban applies to.
    pub site_id: SiteId,
    /// The banned visitor, if the ban targets one.
    pub visitor_id: Option<VisitorId>,
    /// The banned addresses as text, a range (`203.0.113.0/24`) or one address (`2001:db8::1`);
    /// the server parses and matches it, the store does not.
    pub ip_cidr: Option<String>,
    /// Why, for the agents who see the ban later.
    pub reason: String,
    /// From this instant on the ban no longer applies; `None` bans for good.
    pub expires_at: Option<UnixMillis>,
    /// When the ban was made.
    pub created_at: UnixMillis,
}

/// The values needed to create a [`Ban`]. At least one of `visitor_id` and `ip_cidr` must be set
/// (the database rejects a ban on nobody).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBan {
    /// See [`Ban::site_id`].
    pub site_id: SiteId,
    /// See [`Ban::visitor_id`].
    pub visitor_id: Option<VisitorId>,
    /// See [`Ban::ip_cidr`].
    pub ip_cidr: Option<String>,
    /// See [`Ban::reason`].
    pub reason: String,
    /// See [`Ban::expires_at`].
    pub expires_at: Option<UnixMillis>,
    /// See [`Ban::created_at`].
    pub created_at: UnixMillis,
}

/// One entry of the durable log of what agents' consoles must learn about. A console that missed
/// live events catches up with [`crate::Events::events_after`] from the last id it saw.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Event {
    /// Primary key and sequence number: ids only grow, and become visible in id order.
    pub id: EventSeq,
    /// The site it happened on; consoles only see events of their agent's sites.
    pub site_id: SiteId,
    /// What happened (`conversation_created`, `assignment_changed` …); named by the server.
    pub kind: String,
    /// The conversation it is about.
    pub conversation_id: ConversationId,
    /// The details as JSON text, written and read by the server; opaque to the store.
    pub payload: String,
    /// When it happened.
    pub created_at: UnixMillis,
}

/// The values needed to append an [`Event`]; the store assigns its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// See [`Event::site_id`].
    pub site_id: SiteId,
    /// See [`Event::kind`] (at most 32 characters).
    pub kind: String,
    /// See [`Event::conversation_id`].
    pub conversation_id: ConversationId,
    /// See [`Event::payload`].
    pub payload: String,
    /// See [`Event::created_at`].
    pub created_at: UnixMillis,
}

/// Column lists shared by every backend's queries, in the order the `FromRow` impls read them.
macro_rules! site_columns {
    () => {
        "id, public_key, name, allowed_origins, widget_settings, created_at"
    };
}
macro_rules! agent_columns {
    () => {
        "id, email, password_hash, display_name, role, language, max_chats, disabled, created_at"
    };
}
macro_rules! visitor_columns {
    () => {
        "id, site_id, visitor_key, name, email, attributes, created_at, last_seen_at, language"
    };
}
macro_rules! conversation_columns {
    () => {
        "id, site_id, visitor_id, status, assignee_id, team_id, last_seq, created_at, updated_at, \
         translating, snoozed_until"
    };
}
macro_rules! message_columns {
    () => {
        "id, conversation_id, seq, client_id, author, agent_id, body, attachment, created_at"
    };
}
macro_rules! leave_message_columns {
    () => {
        "id, site_id, visitor_id, name, contact, body, status, assignee_id, created_at"
    };
}
macro_rules! leave_message_note_columns {
    () => {
        "id, leave_message_id, agent_id, body, created_at"
    };
}
macro_rules! webhook_delivery_columns {
    () => {
        "id, webhook_id, event, payload, state, attempts, next_attempt_at, last_status, \
         last_error, created_at"
    };
}
macro_rules! ban_columns {
    () => {
        "id, site_id, visitor_id, ip_cidr, reason, expires_at, created_at"
    };
}
macro_rules! event_columns {
    () => {
        "id, site_id, kind, conversation_id, payload, created_at"
    };
}
macro_rules! canned_reply_columns {
    () => {
        "id, site_id, agent_id, shortcut, body, created_at"
    };
}
macro_rules! attachment_columns {
    () => {
        "id, public_id, site_id, visitor_id, agent_id, name, content_type, size, created_at"
    };
}
pub(crate) use {
    agent_columns, attachment_columns, ban_columns, canned_reply_columns, conversation_columns,
    event_columns, leave_message_columns, leave_message_note_columns, message_columns,
    site_columns, visitor_columns, webhook_delivery_columns,
};

/// Turns a conversion failure into the decode error sqlx reports for `column`.
fn decode_error(
    column: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(source),
    }
}

impl<'r, R> FromRow<'r, R> for Site
where
    R: Row,
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let origins: String = row.try_get("allowed_origins")?;
        let settings: String = row.try_get("widget_settings")?;
        Ok(Site {
            id: row.try_get("id")?,
            public_key: row.try_get("public_key")?,
            name: row.try_get("name")?,
            allowed_origins: serde_json::from_str(&origins)
                .map_err(|e| decode_error("allowed_origins", e))?,
            widget_settings: serde_json::from_str(&settings)
                .map_err(|e| decode_error("widget_settings", e))?,
            created_at: row.try_get("created_at")?,
        })
    }
}

impl<'r, R> FromRow<'r, R> for Message
where
    R: Row,
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let author: String = row.try_get("author")?;
        let attachment: Option<String> = row.try_get("attachment")?;
        let author = Author::parse(&author).ok_or_else(|| {
            decode_error(
                "author",
                UnknownVariant {
                    kind: "author",
                    value: author.clone(),
                },
            )
        })?;
        Ok(Message {
            id: row.try_get("id")?,
            conversation_id: row.try_get("conversation_id")?,
            seq: row.try_get("seq")?,
            client_id: ClientId(row.try_get("client_id")?),
            author,
            agent_id: row.try_get("agent_id")?,
            body: row.try_get("body")?,
            attachment: attachment
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .map_err(|e| decode_error("attachment", e))?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// JSON text for a site's `allowed_origins` / `widget_settings` columns.
pub(crate) fn to_json_text<T: serde::Serialize + ?Sized>(value: &T) -> crate::Result<String> {
    serde_json::to_string(value)
        .map_err(|e| crate::Error::Database(sqlx::Error::Encode(Box::new(e))))
}

impl Message {
    /// The message `append_message` stores: `new` at position `seq` with database id `id`.
    pub(crate) fn stored(
        id: MessageId,
        conversation_id: ConversationId,
        seq: Seq,
        new: NewMessage,
    ) -> Message {
        Message {
            id,
            conversation_id,
            seq,
            client_id: new.client_id,
            author: new.author,
            agent_id: new.agent_id,
            body: new.body,
            attachment: new.attachment,
            created_at: new.created_at,
        }
    }

    /// The wire form clients receive; `agent_name` names the author when it is an agent.
    pub fn into_frame(self, agent_name: Option<String>) -> protocol::Message {
        protocol::Message {
            conversation_id: self.conversation_id,
            seq: self.seq,
            client_id: self.client_id,
            author: self.author,
            agent_id: self.agent_id,
            agent_name,
            body: self.body,
            attachment: self.attachment,
            created_at: self.created_at,
        }
    }
}

/// What appending inside an already open transaction did; the caller commits or rolls back.
pub(crate) enum AppendInTx {
    /// A new message was stored under the next seq: commit. With whether the conversation
    /// was parked ([`Appended::parked`]).
    Stored(Message, bool),
    /// The conversation already holds this client id (a resend): roll back, which also undoes
    /// the seq bump, and answer with the stored original.
    Resent(Message),
    /// A concurrent writer stored the same client id first and the insert failed (on PostgreSQL
    /// that aborts the transaction): roll back, then look the winner's message up.
    Raced(sqlx::Error),
}

impl Ban {
    /// The ban `create_ban` stores: `new` with database id `id`.
    pub(crate) fn stored(id: BanId, new: NewBan) -> Ban {
        Ban {
            id,
            site_id: new.site_id,
            visitor_id: new.visitor_id,
            ip_cidr: new.ip_cidr,
            reason: new.reason,
            expires_at: new.expires_at,
            created_at: new.created_at,
        }
    }
}

impl Event {
    /// The event `append_event` stores: `new` with database id `id`.
    pub(crate) fn stored(id: EventSeq, new: NewEvent) -> Event {
        Event {
            id,
            site_id: new.site_id,
            kind: new.kind,
            conversation_id: new.conversation_id,
            payload: new.payload,
            created_at: new.created_at,
        }
    }
}

impl LeaveMessage {
    /// The leave-message `create_leave_message` stores: `new`, unassigned, with database id `id`.
    pub(crate) fn stored(id: LeaveMessageId, new: NewLeaveMessage) -> LeaveMessage {
        LeaveMessage {
            id,
            site_id: new.site_id,
            visitor_id: new.visitor_id,
            name: new.name,
            contact: new.contact,
            body: new.body,
            status: LeaveMessageStatus::New,
            assignee_id: None,
            created_at: new.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_text_round_trips() {
        for role in [Role::Admin, Role::Agent] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(LeaveMessageStatus::InProgress.as_str(), "in_progress");
        let error = Role::try_from("owner".to_owned()).expect_err("unknown role");
        assert_eq!(
            error.to_string(),
            "unexpected role value \"owner\" in the database"
        );
    }
}
