//! The stable error codes of the wire protocol and how each maps onto HTTP and WebSocket.
//!
//! A client shows errors in the user's language by translating the code; the `message` of an
//! error frame is English for logs only. Codes are never renamed or reused: a new situation gets
//! a new code (and older clients treat an unknown code like `internal`). This module does not
//! decide *when* an error ends a connection; `docs/protocol.md` ("Errors") says that per code.

use serde::{Deserialize, Serialize};

/// Errors a client must be able to show in the user's language: stable snake_case codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON, not a known frame, misses a field, or breaks a rule
    /// (e.g. a frame before `hello`, an empty body, a bad `client_id`).
    BadRequest,
    /// An agent connection without a valid console session cookie (or the session ended).
    Unauthorized,
    /// The caller is known but may not do this.
    Forbidden,
    /// The conversation does not exist or is not the caller's to read (the two are not told apart).
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// A message body or preview is longer than `max_message_bytes`, or a frame or HTTP body is
    /// longer than `max_frame_bytes`.
    TooLarge,
    /// Too many messages (or ephemeral frames) in a short time; retry after `retry_after_ms`.
    RateLimited,
    /// The server cannot serve this right now (starting, draining, database down); retry later.
    Unavailable,
    /// An unexpected server fault; details are in the server log, never in the frame.
    Internal,
    /// The hello's `protocol_version` is not one this server speaks.
    VersionUnsupported,
    /// The page's `Origin` is not among the site's allowed origins (or the site key is unknown).
    OriginNotAllowed,
    /// The visitor token is forged, expired, or belongs to another site; drop it and reconnect
    /// without one.
    BadToken,
    /// The visitor or their IP address is banned from the site.
    Banned,
    /// The per-IP connection cap is reached.
    TooManyConnections,
    /// The connection fell too far behind the live stream; reconnect at once and resume.
    Lagging,
    /// An uploaded file's type is not one the site accepts, or its bytes are not of that type.
    UnsupportedType,
}

impl ErrorCode {
    /// Every code, in declaration order (for tests and documentation checks).
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::VersionUnsupported,
        ErrorCode::OriginNotAllowed,
        ErrorCode::BadToken,
        ErrorCode::Banned,
        ErrorCode::TooManyConnections,
        ErrorCode::Lagging,
        ErrorCode::UnsupportedType,
    ];

    /// The stable text form: the JSON value and the WebSocket close reason.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::VersionUnsupported => "version_unsupported",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::Banned => "banned",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::Lagging => "lagging",
            ErrorCode::UnsupportedType => "unsupported_type",
        }
    }

    /// Parses the text form written by [`ErrorCode::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == text)
    }

    /// The HTTP status of a fallback request refused as a whole with this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::VersionUnsupported => 400,
            ErrorCode::Unauthorized | ErrorCode::BadToken => 401,
            ErrorCode::Forbidden | ErrorCode::OriginNotAllowed | ErrorCode::Banned => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::UnsupportedType => 415,
            ErrorCode::RateLimited | ErrorCode::TooManyConnections => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable | ErrorCode::Lagging => 503,
        }
    }

    /// The WebSocket close code used when this error ends a connection: 4000 + the HTTP status
    /// (the close reason is [`ErrorCode::as_str`]).
    pub fn ws_close_code(self) -> u16 {
        4000 + self.http_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_snake_case() {
        let json = serde_json::to_string(&ErrorCode::RateLimited).expect("serialize");
        assert_eq!(json, "\"rate_limited\"");
    }

    #[test]
    fn text_form_matches_serde_and_parses_back() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("teapot"), None);
    }

    #[test]
    fn close_codes_are_in_the_private_range() {
        for code in ErrorCode::ALL {
            assert!((4000..5000).contains(&code.ws_close_code()), "{code:?}");
        }
        assert_eq!(ErrorCode::Banned.ws_close_code(), 4403);
    }
}
