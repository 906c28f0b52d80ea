//! Outgoing e-mail over SMTP (`lettre`): the one place Kefu sends mail from — conversation
//! transcripts a visitor asks for, agents' replies to leave-messages (through the console's
//! `Outbox`, see [`crate::web::console_mail`]) and, with `notify_leave_messages`, notes to a site's
//! agents about new leave-messages (collected into digests by [`crate::leave_digest`]). Configured
//! by `[email] smtp_url` and `from` (or at `/admin/mail`); without them Kefu sends nothing and says
//! so.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
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

/// Why a relay URL or sender cannot be used (the message names the configuration key).
#[derive(Debug, thiserror::Error)]
pub enum BadMailSetting {
    /// Not an SMTP URL: lettre's reason.
    #[error("email.smtp_url: {0}")]
    SmtpUrl(String),
    /// Not a mailbox such as `Support <support@example.com>`: the parser's reason.
    #[error("email.from: {0}")]
    From(String),
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
    pub fn new(smtp_url: &str, from: &str) -> Result<Mailer, BadMailSetting> {
        let (transport, from) = Mailer::parse(smtp_url, from)?;
        Ok(Mailer {
            transport: transport.build(),
            from,
        })
    }

    /// The relay and the sender `smtp_url` and `from` name, read but not built.
    fn parse(
        smtp_url: &str,
        from: &str,
    ) -> Result<(AsyncSmtpTransportBuilder, Mailbox), BadMailSetting> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| BadMailSetting::SmtpUrl(e.to_string()))?;
        let from = from
            .parse()
            .map_err(|e: lettre::address::AddressError| BadMailSetting::From(e.to_string()))?;
        Ok((transport, from))
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

/// The mail settings in force: the relay and sender, and whether a site's agents are e-mailed
/// when a leave-message arrives. Built from the configuration at start; replaced while running
/// when an administrator saves new settings in the console.
#[derive(Clone, Default)]
pub struct MailSetup {
    /// What was configured.
    pub settings: MailSettings,
    /// Where mail goes out; `None` when no relay is configured.
    pub mailer: Option<Mailer>,
}

/// `[email]` as configured: plain values, checked ([`MailSettings::check`]) but not built
/// into a mailer until [`MailSetup::open`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MailSettings {
    /// The relay, `smtp://user:pass@host:587?tls=required` or `smtps://…` (may hold a password).
    pub smtp_url: Option<String>,
    /// The `From:` of every mail.
    pub from: Option<String>,
    /// E-mail a site's agents when a leave-message arrives.
    pub notify_leave_messages: bool,
}

impl MailSettings {
    /// Whether these settings make a working setup: a relay and a sender go together and
    /// read as such, and notifications need them. The error names the key at fault.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        match (&self.smtp_url, &self.from) {
            (None, None) if self.notify_leave_messages => Err((
                "email.notify_leave_messages",
                "needs email.smtp_url and email.from".into(),
            )),
            (None, None) => Ok(()),
            (Some(url), Some(from)) => Mailer::parse(url, from)
                .map(drop)
                .map_err(|e| ("email", e.to_string())),
            _ => Err((
                "email",
                "set both email.smtp_url and email.from, or neither".into(),
            )),
        }
    }
}

/// Shows the sender only: the relay's URL may hold a password.
impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("from", &self.from)
            .field("relay", &self.smtp_url.is_some())
            .field("notify_leave_messages", &self.notify_leave_messages)
            .finish()
    }
}

/// Whether `smtp_url` reads as a relay's URL (lettre's reason when not).
pub fn check_relay(smtp_url: &str) -> Result<(), String> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
        .map(drop)
        .map_err(|e| BadMailSetting::SmtpUrl(e.to_string()).to_string())
}

impl MailSetup {
    /// Checks `settings` and builds their mailer.
    pub fn open(settings: MailSettings) -> Result<MailSetup, (&'static str, String)> {
        settings.check()?;
        let mailer = match (&settings.smtp_url, &settings.from) {
            (Some(url), Some(from)) => {
                Some(Mailer::new(url, from).map_err(|e| ("email", e.to_string()))?)
            }
            _ => None,
        };
        Ok(MailSetup { settings, mailer })
    }
}

/// Shows the sender only: the relay's URL may hold a password.
impl std::fmt::Debug for MailSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSetup")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Shows the sender only: the transport's URL may hold a password.
impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

/// The daily caps on the transcripts visitors may ask for (`[email]` in `kefu.toml`),
/// enforced by `crate::realtime::transcripts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscriptCaps {
    /// Transcripts one client address may have sent in a day.
    pub per_address_per_day: u32,
    /// Transcripts one site's visitors may have sent in a day, all together.
    pub per_site_per_day: u32,
}

impl Default for TranscriptCaps {
    fn default() -> Self {
        TranscriptCaps {
            per_address_per_day: 5,
            per_site_per_day: 200,
        }
    }
}

/// What limits the mail visitors can cause, from `[email]` in `kefu.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailLimits {
    /// Daily caps on transcripts per client address and per site.
    pub transcripts: TranscriptCaps,
    /// After a leave-message notification, how long the next waits while more are collected
    /// into one digest ([`crate::leave_digest`]).
    pub notify_digest: std::time::Duration,
}

impl Default for MailLimits {
    fn default() -> Self {
        MailLimits {
            transcripts: Default::default(),
            notify_digest: std::time::Duration::from_secs(5 * 60),
        }
    }
}
