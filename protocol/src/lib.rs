//! Wire types shared by the server, the console and the widget.
//!
//! Only `serde` lives here: no leptos, sqlx or tokio, so the widget can depend on it without
//! pulling a runtime into its wasm. Frames of the real-time protocol are added next to these as
//! they are specified in `docs/protocol.md`.

use serde::{Deserialize, Serialize};

/// Version of the wire protocol a client and the server speak; sent in every hello.
pub const PROTOCOL_VERSION: u32 = 1;

/// A conversation's position of a message: gap-free, starting at 1, assigned by the server.
pub type Seq = i64;

/// A client-made message id (a UUID in its text form); the server deduplicates resends by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub String);

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Visitor,
    Agent,
    System,
}

impl Author {
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
        match text {
            "visitor" => Some(Author::Visitor),
            "agent" => Some(Author::Agent),
            "system" => Some(Author::System),
            _ => None,
        }
    }
}

/// Errors a client must be able to show in the user's language: stable snake_case codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn error_codes_are_snake_case() {
        let json = serde_json::to_string(&ErrorCode::RateLimited).expect("serialize");
        assert_eq!(json, "\"rate_limited\"");
    }
}
