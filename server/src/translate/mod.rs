//! Machine translation between agents and visitors: one [`Provider`] trait and an
//! implementation per service, each speaking that service's documented HTTP API —
//! LibreTranslate (self-hostable), DeepL, Google Cloud Translation v2, Azure Translator, Baidu
//! Translate, and any OpenAI-compatible chat-completions endpoint (local LLM servers too).
//!
//! [`Translator`] wraps a provider with what every one of them needs: texts longer than the
//! provider takes in one request are split at sentence or word boundaries and the pieces
//! translated in order; a request that times out, is rate-limited (429) or fails on the
//! provider's side (5xx) is retried with doubling delays (a `Retry-After` is honoured, within
//! reason); anything else fails at once with a [`TranslateError`] that says what happened.
//! Languages are BCP 47 tags (`zh-CN`, `en`, `ja`); each provider maps them to its own codes.

mod azure;
mod baidu;
mod deepl;
mod google;
mod libre;
mod openai;
mod setup;
mod split;

use std::time::Duration;

pub use azure::Azure;
pub use baidu::{Baidu, sign as baidu_sign};
pub use deepl::DeepL;
pub use google::Google;
pub use libre::LibreTranslate;
pub use openai::OpenAiChat;
pub use setup::{TranslationSection, TranslationSetup};

/// A translated text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// The text in the target language.
    pub text: String,
    /// The source language the provider detected (BCP 47, as the provider spells it), when
    /// it was not given and the provider says.
    pub detected: Option<String>,
}

/// Why a translation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The provider did not answer in time (after the retries).
    #[error("the provider did not answer in time")]
    Timeout,
    /// The provider kept refusing for rate or quota (after the retries).
    #[error("the provider is rate-limiting us")]
    RateLimited,
    /// The provider answered with an error status; its message, if any, is kept for the log.
    #[error("the provider answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// What the provider said.
        message: String,
    },
    /// The provider's answer is not the documented shape.
    #[error("the provider's answer is malformed: {0}")]
    Malformed(String),
    /// The provider could not be reached.
    #[error("cannot reach the provider: {0}")]
    Unreachable(String),
    /// The provider's address is not one Kefu may call (`crate::outbound`): refused, or not
    /// an http(s) URL.
    #[error("the provider's address: {0}")]
    Address(crate::outbound::Error),
    /// The provider has no code for this language.
    #[error("the provider does not translate {0:?}")]
    Language(String),
    /// The provider refused the request for a reason retrying does not fix (a bad key, no
    /// balance left); its words are kept for the log.
    #[error("the provider refused: {0}")]
    Refused(String),
}

impl TranslateError {
    /// Whether trying again later may succeed.
    fn transient(&self) -> bool {
        match self {
            TranslateError::Timeout
            | TranslateError::RateLimited
            | TranslateError::Unreachable(_) => true,
            TranslateError::Status { status, .. } => *status >= 500,
            TranslateError::Malformed(_)
            | TranslateError::Address(_)
            | TranslateError::Language(_)
            | TranslateError::Refused(_) => false,
        }
    }
}

/// A failed attempt: the error, and how long the provider asked us to wait (`Retry-After`).
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub error: TranslateError,
    /// The provider's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
}

/// What an outbound failure means for a translation.
impl From<crate::outbound::Error> for Failure {
    fn from(error: crate::outbound::Error) -> Failure {
        use crate::outbound::Error;
        match error {
            Error::Timeout => TranslateError::Timeout,
            Error::Failed(message) => TranslateError::Unreachable(message),
            Error::TooLarge => TranslateError::Malformed(error.to_string()),
            Error::BadUrl | Error::Refused => TranslateError::Address(error),
        }
        .into()
    }
}

impl From<TranslateError> for Failure {
    fn from(error: TranslateError) -> Failure {
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// One translation service, spoken to in its own wire format.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Its name in settings and logs (`libretranslate`, `deepl`, …).
    fn name(&self) -> &'static str;

    /// The most characters one request may carry (the provider's documented limit, with a
    /// margin).
    fn max_chars(&self) -> usize;

    /// Translates `text` (at most [`Provider::max_chars`]) from `source` (`None`: detect) into
    /// `target`, in one request.
    async fn translate_once(
        &self,
        text: &str,
        source: Option<&str>,
        target: &str,
    ) -> Result<Translation, Failure>;
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts per piece, the first included.
    pub attempts: u32,
    /// The wait before the first retry; each next one doubles.
    pub first_delay: Duration,
    /// The longest wait, whatever the provider's `Retry-After` says.
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// A provider with splitting and retries.
pub struct Translator {
    provider: Box<dyn Provider>,
    retry: Retry,
}

impl Translator {
    /// `provider`, tried as `retry` says.
    pub fn new(provider: Box<dyn Provider>, retry: Retry) -> Translator {
        Translator { provider, retry }
    }

    /// The provider's name.
    pub fn name(&self) -> &'static str {
        self.provider.name()
    }

    /// Translates `text` from `source` (`None`: detect) into `target`. A text too long for
    /// one request is split and its pieces translated in order; the detected language is the
    /// first piece's.
    pub async fn translate(
        &self,
        text: &str,
        source: Option<&str>,
        target: &str,
    ) -> Result<Translation, TranslateError> {
        let mut translated = String::new();
        let mut detected = None;
        for piece in split::pieces(text, self.provider.max_chars()) {
            let part = self.with_retries(piece, source, target).await?;
            translated.push_str(&part.text);
            detected = detected.or(part.detected);
        }
        Ok(Translation {
            text: translated,
            detected,
        })
    }

    async fn with_retries(
        &self,
        piece: &str,
        source: Option<&str>,
        target: &str,
    ) -> Result<Translation, TranslateError> {
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            match self.provider.translate_once(piece, source, target).await {
                Ok(translation) => return Ok(translation),
                Err(failure) if failure.error.transient() && attempt < self.retry.attempts => {
                    let wait = failure
                        .retry_after
                        .unwrap_or(delay)
                        .min(self.retry.max_delay);
                    tracing::info!(
                        provider = self.provider.name(),
                        error = %failure.error,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "translation failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(self.retry.max_delay);
                    attempt += 1;
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }
}

/// What every provider does with an HTTP answer: a success status yields the body (read up
/// to `outbound::MAX_BODY`), anything else the matching failure (with `Retry-After` when
/// sent).
async fn body_of(response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = crate::outbound::body(response).await?;
    if status.is_success() {
        return Ok(body);
    }
    let error = if status.as_u16() == 429 {
        TranslateError::RateLimited
    } else {
        TranslateError::Status {
            status: status.as_u16(),
            message: String::from_utf8_lossy(&body).chars().take(300).collect(),
        }
    };
    Err(Failure { error, retry_after })
}

/// A request that failed before an answer: timed out, refused, or the provider unreachable.
fn request_failure(error: reqwest::Error) -> Failure {
    crate::outbound::Error::from(error).into()
}

/// Reads a JSON answer of type `T`.
fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|error| TranslateError::Malformed(error.to_string()).into())
}

/// Whether `tag` looks like a BCP 47 language tag (`en`, `zh-CN`, `zh-Hant-TW`): what a
/// browser or an admin says is only kept when it does.
pub fn is_language_tag(tag: &str) -> bool {
    (2..=35).contains(&tag.len())
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && tag.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
}

/// The primary language subtag of a BCP 47 tag, lower-cased (`zh-CN` → `zh`).
pub(crate) fn primary(tag: &str) -> String {
    tag.split(['-', '_'])
        .next()
        .unwrap_or(tag)
        .to_ascii_lowercase()
}

/// The code of `tag` for a provider that names languages by their ISO 639-1 code, and
/// Chinese by script: `simplified_code` or `traditional_code`.
fn code_with_chinese(tag: &str, simplified_code: &str, traditional_code: &str) -> String {
    match primary(tag).as_str() {
        "zh" if traditional(tag) => traditional_code.to_owned(),
        "zh" => simplified_code.to_owned(),
        other => other.to_owned(),
    }
}

/// Whether a Chinese tag means traditional characters (`zh-TW`, `zh-HK`, `zh-Hant`).
fn traditional(tag: &str) -> bool {
    let tag = tag.to_ascii_lowercase();
    primary(&tag) == "zh"
        && ["-tw", "-hk", "-mo", "-hant"]
            .iter()
            .any(|region| tag.contains(region))
}
