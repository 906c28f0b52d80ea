//! What can go wrong in the console, as agents are told it: one code per failure, which the
//! UI turns into a sentence in their language (`i18n`). Details stay in the server log; a
//! client only ever sees the code.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Errors the console shows to agents; the UI turns each code into a sentence in their language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleError {
    /// Wrong e-mail or password, or a disabled account (deliberately indistinguishable).
    #[error("bad_credentials")]
    BadCredentials,
    /// No valid session: the agent must sign in again.
    #[error("unauthorized")]
    Unauthorized,
    /// The request could not be decoded or reached the server incompletely.
    #[error("bad_request")]
    BadRequest,
    /// A field is empty, too long or malformed.
    #[error("invalid")]
    Invalid,
    /// The thing does not exist, or is not on one of the agent's sites (not told apart).
    #[error("not_found")]
    NotFound,
    /// Something failed on the server; the details are in the server log only.
    #[error("internal")]
    Internal,
    /// The agent is signed in but is not an administrator.
    #[error("forbidden")]
    Forbidden,
    /// No SMTP server is configured, so Kefu cannot send e-mail.
    #[error("no_mail")]
    NoMail,
    /// The SMTP server could not be reached or refused the mail (details in the server log).
    #[error("mail_failed")]
    MailFailed,
    /// Business hours with an unknown time zone or a span that is not `HH:MM-HH:MM`.
    #[error("bad_hours")]
    BadHours,
    /// No translation provider is set up, or translation is off for the site or the
    /// conversation.
    #[error("no_translation")]
    NoTranslation,
    /// The translation provider failed or did not answer (details in the server log).
    #[error("translation_failed")]
    TranslationFailed,
    /// The site's translation budget for today is spent.
    #[error("translation_budget")]
    TranslationBudget,
    /// The address leads to this machine or a private network that `[outbound] allow` in the
    /// configuration file does not list (`SECURITY.md`).
    #[error("address_refused")]
    AddressRefused,
    /// The address changed: the saved key or secret is not sent to a new one, so it must be
    /// entered again.
    #[error("secret_required")]
    SecretRequired,
    /// Too many sign-in attempts from this address or for this account, or too many at once:
    /// try again later (the response's `Retry-After` says when).
    #[error("throttled")]
    Throttled,
}

impl ConsoleError {
    /// The HTTP status a server function answers with this error: 500 only for faults of the
    /// server itself.
    pub fn http_status(self) -> u16 {
        match self {
            ConsoleError::BadRequest
            | ConsoleError::Invalid
            | ConsoleError::BadHours
            | ConsoleError::AddressRefused
            | ConsoleError::SecretRequired => 400,
            ConsoleError::BadCredentials | ConsoleError::Unauthorized => 401,
            ConsoleError::Forbidden => 403,
            ConsoleError::NotFound => 404,
            ConsoleError::NoMail | ConsoleError::NoTranslation => 409,
            ConsoleError::Throttled | ConsoleError::TranslationBudget => 429,
            ConsoleError::MailFailed | ConsoleError::TranslationFailed => 502,
            ConsoleError::Internal => 500,
        }
    }
}

impl FromServerFnError for ConsoleError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(_)
            | ServerFnErrorErr::MissingArg(_)
            | ServerFnErrorErr::Deserialization(_)
            | ServerFnErrorErr::Request(_) => ConsoleError::BadRequest,
            _ => ConsoleError::Internal,
        }
    }
}

/// Logs an internal error with its details and returns the opaque code for the client.
#[cfg(feature = "ssr")]
pub fn internal(error: impl std::fmt::Display) -> ConsoleError {
    tracing::error!(%error, "server function failed");
    ConsoleError::Internal
}

/// A store error as an agent is told it: a row that is not there is `NotFound`, a name or
/// address already in use is `Invalid`; anything else is logged and `Internal`.
#[cfg(feature = "ssr")]
impl From<store::Error> for ConsoleError {
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::NotFound => ConsoleError::NotFound,
            store::Error::Conflict { .. } => ConsoleError::Invalid,
            error => internal(error),
        }
    }
}
