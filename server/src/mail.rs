//! Outgoing e-mail over SMTP (`lettre`): the one place Kefu sends mail from. Today that is
//! conversation transcripts a visitor asks for; leave-message replies and notifications use the
//! same [`Mailer`]. Configured by `[email] smtp_url` and `from`; without them Kefu sends nothing
//! and says so.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why a mail was not sent. The SMTP server's own words are logged, never shown to visitors.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The recipient is not a valid address.
    #[error("not an e-mail address: {0}")]
    Address(String),
    /// The body could not be encoded.
    #[error("cannot encode the body")]
    Encoding,
    /// Building the message failed (a header the builder refused).
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    /// The SMTP server could not be reached or refused the message.
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Sends plain-text mails from one sender through one SMTP relay.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The `From:` of every mail, e.g. `Shop support <support@shop.example>`.
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `smtp_url` (`smtp://user:pass@host:587?tls=required`, `smtps://…`, or
    /// `smtp://host:25` for a relay on the local network) sending as `from`.
    pub fn new(smtp_url: &str, from: &str) -> Result<Mailer, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| format!("email.smtp_url: {e}"))?
            .build();
        let from = from.parse().map_err(|e| format!("email.from: {e}"))?;
        Ok(Mailer { transport, from })
    }

    /// Sends `body` as a UTF-8 plain-text mail (base64, so any text and line length passes
    /// every relay unchanged).
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|_| MailError::Address(to.to_string()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .singlepart(
                SinglePart::builder().header(ContentType::TEXT_PLAIN).body(
                    Body::new_with_encoding(body, ContentTransferEncoding::Base64)
                        .map_err(|_| MailError::Encoding)?,
                ),
            )?;
        self.transport.send(message).await?;
        Ok(())
    }
}

/// Shows the sender only: the transport's URL may hold a password.
impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}
