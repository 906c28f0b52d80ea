//! Wire types shared by the server, the console and the widget.
//!
//! Only `serde` lives here: no leptos, sqlx or tokio, so the widget can depend on it without
//! pulling a runtime into its wasm, and every type is a plain derive (nothing generic to bloat
//! the widget's size budget). `docs/protocol.md` is the specification these types implement; a
//! test (`tests/doc_examples.rs`) round-trips every frame example in it through these types.
//!
//! - [`ids`]: ids, positions, [`Author`], [`AgentStatus`].
//! - [`frames`]: [`VisitorFrame`], [`AgentFrame`], [`ServerFrame`] and their payloads.
//! - [`error`]: [`ErrorCode`] and its HTTP / WebSocket mapping.
//! - [`transport`]: endpoint paths, the visitor-token header, the long-poll query.
//! - `arbitrary` (feature `arbitrary`, for tests only): `proptest` strategies for every frame.

#[cfg(any(test, feature = "arbitrary"))]
pub mod arbitrary;
pub mod error;
pub mod frames;
pub mod ids;
#[cfg(test)]
mod properties;
pub mod transport;

pub use error::ErrorCode;
pub use frames::{
    AgentFrame, AgentHello, Assign, Attachment, ConversationHead, Cursor, Invite, Limits, Message,
    Page, Ping, Pong, Preview, Read, Resume, SendMessage, ServerFrame, SetConversationStatus,
    SetStatus, TRANSCRIPT_SENT, Translation, Typing, Unavailable, VisitorDetails, VisitorFrame,
    VisitorHello, Welcome, transcript_sent_to,
};
pub use ids::{
    AgentId, AgentStatus, AttachmentId, Author, BanId, CannedReplyId, ClientId, ConversationId,
    ConversationStatus, EventSeq, LeaveMessageId, MessageId, Seq, SiteId, StatusRecord, TeamId,
    UnixMillis, UnknownStatus, VisitorId,
};

/// Version of the wire protocol a client and the server speak; sent in every hello.
pub const PROTOCOL_VERSION: u32 = 1;
