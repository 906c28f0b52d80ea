//! Outgoing e-mail over SMTP (`lettre`): the one place Kefu sends mail from — conversation
//! transcripts a visitor asks for, agents' replies to leave-messages (through the console's
//! [`app::auth::ssr::Outbox`]) and, with `notify_leave_messages`, a note to a site's agents
//! when a leave-message arrives. Configured by `[email] smtp_url` and `from`; without them Kefu
//! sends nothing and says so.

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

impl app::auth::ssr::Outbox for Mailer {
    fn send(
        &self,
        to: String,
        subject: String,
        body: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
        let mailer = self.clone();
        Box::pin(async move {
            mailer
                .send(&to, &subject, body)
                .await
                .map_err(|error| error.to_string())
        })
    }
}

/// E-mails the site's enabled agents that `message` arrived, on a task of its own: the visitor
/// is answered at once, and a relay that fails only leaves a warning in the log.
pub fn notify_leave_message(
    mailer: Mailer,
    store: std::sync::Arc<dyn store::Store>,
    site: String,
    message: store::LeaveMessage,
) {
    tokio::spawn(async move {
        let agents = match store.site_agents(&[message.site_id]).await {
            Ok(agents) => agents,
            Err(error) => {
                tracing::warn!(%error, "leave-message notification: reading the agents failed");
                return;
            }
        };
        let from = match &message.name {
            Some(name) => format!("{name} <{}>", message.contact),
            None => message.contact.clone(),
        };
        let subject = format!("New leave-message on {site}");
        let body = format!(
            "{from} left a message on {site}:\n\n{}\n\nAnswer it under Leave-messages in the Kefu console.\n",
            message.body
        );
        for agent in agents {
            if let Err(error) = mailer.send(&agent.email, &subject, body.clone()).await {
                tracing::warn!(%error, agent = agent.id, "leave-message notification not sent");
            }
        }
    });
}
