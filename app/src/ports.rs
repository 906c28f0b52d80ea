//! The ports between the console and the rest of the server: what server functions ask of the
//! real-time hub, the mail relay and the translation provider, and the data that crosses
//! them. The server implements the traits and puts them into the Leptos context (`context`
//! hands them out); the data types are shared with the browser, which shows and edits them.

use serde::{Deserialize, Serialize};

/// The relay's settings as the form edits them. An empty host means no mail at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailForm {
    /// The relay's host name; empty turns mail off.
    #[serde(default)]
    pub host: String,
    /// Its port: 587 for STARTTLS, 465 for TLS, 25 for a relay on the local network.
    pub port: u16,
    /// One of `pages::admin::mail::SECURITY`.
    pub security: String,
    /// The user name, if the relay wants one.
    #[serde(default)]
    pub username: String,
    /// The password: never filled in when shown; left empty when saved, the saved one stays.
    #[serde(default)]
    pub password: String,
    /// The sender of every mail, e.g. `Shop support <support@shop.example>`.
    #[serde(default)]
    pub from: String,
    /// E-mail a site's agents when a leave-message arrives.
    #[serde(default)]
    pub notify: bool,
}

/// What the page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailView {
    /// The settings in force (without the password).
    pub form: MailForm,
    /// A password is saved.
    pub has_password: bool,
    /// The settings come from command-line flags or `KEFU_*` variables: they can only be
    /// changed there.
    pub locked: bool,
    /// Where saved settings go.
    pub file: String,
}

/// The provider's settings as the form edits them. An empty provider turns translation off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranslationForm {
    /// One of `pages::admin::translation::PROVIDERS`, or empty.
    #[serde(default)]
    pub provider: String,
    /// Where the provider answers; empty for a cloud provider's own address.
    #[serde(default)]
    pub url: String,
    /// The API key: never filled in when shown; left empty when saved, the saved one stays.
    #[serde(default)]
    pub api_key: String,
    /// Azure's resource region.
    #[serde(default)]
    pub region: String,
    /// Baidu's app id.
    #[serde(default)]
    pub app_id: String,
    /// Baidu's secret, kept like the key.
    #[serde(default)]
    pub secret: String,
    /// The model of an OpenAI-compatible server.
    #[serde(default)]
    pub model: String,
    /// Characters each site may send per UTC day (cloud providers bill per character).
    pub daily_chars: i64,
    /// The agents' language while a conversation has no agent (BCP 47, e.g. `en`).
    #[serde(default)]
    pub agent_language: String,
}

/// One site's use of its budget today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteUsage {
    /// The site's name.
    pub site: String,
    /// Characters sent to the provider today (UTC).
    pub used: i64,
    /// Whether the site has translation switched on.
    pub on: bool,
}

/// What the page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranslationView {
    /// The settings in force (without key and secret).
    pub form: TranslationForm,
    /// A key is saved.
    pub has_api_key: bool,
    /// A secret is saved.
    pub has_secret: bool,
    /// Some of the settings come from command-line flags or `KEFU_*` variables, which the
    /// file cannot override: the console shows them but does not offer to change them.
    pub locked: bool,
    /// Where saved settings go.
    pub file: String,
    /// Every site's characters today.
    pub usage: Vec<SiteUsage>,
}

/// How the agent's draft reads to the visitor (the composer's translate button).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Draft {
    /// In the visitor's language.
    Text {
        /// The translation.
        text: String,
        /// The visitor's language (BCP 47).
        language: String,
    },
    /// The visitor reads the agent's language.
    Same,
    /// The visitor's language is not known yet.
    Unknown,
}

#[cfg(feature = "ssr")]
pub use ssr::{Hub, Interpreter, Outbox};

#[cfg(feature = "ssr")]
mod ssr {
    //! The traits themselves: only the server implements and calls them.

    use super::{Draft, MailForm, MailView, TranslationForm, TranslationView};
    use crate::error::ConsoleError;
    use std::future::Future;
    use std::pin::Pin;

    /// What server functions tell the real-time side; the server puts one into the Leptos
    /// context.
    pub trait Hub: Send + Sync {
        /// `agent_id` signed out: show them offline now.
        fn signed_out(&self, agent_id: protocol::AgentId);
        /// `agent_id`'s sessions, role or sites changed (signed out, disabled, removed from a
        /// site): their live connections on every node check their session again now and
        /// close if it no longer holds.
        fn sessions_changed(&self, agent_id: protocol::AgentId);
        /// A webhook, a site or a ban was written: every node reads them again before it
        /// next uses them (nodes keep copies, so a message or a hello costs no read for them).
        fn copies_stale(&self);
        /// `visitor_id` was banned: their open widgets are told now and stop (a banned visitor's
        /// next hello is refused anyway).
        fn banned(&self, visitor_id: protocol::VisitorId);
        /// Sends `frame` live to the consoles of the site's agents (never to visitors).
        fn to_agents(&self, site_id: protocol::SiteId, frame: protocol::ServerFrame);
        /// Checks widget settings an administrator typed (the real-time side owns their
        /// shape: colour, corner, pre-chat, business hours, attachment rules) and returns them
        /// normalised: `BadHours` for business hours that cannot be read, `Invalid` for
        /// anything else wrong.
        fn check_widget_settings(
            &self,
            settings: serde_json::Value,
        ) -> Result<serde_json::Value, ConsoleError>;
    }

    /// Mail for server functions: sending (replies to leave-messages, test mails) and the
    /// relay's settings (the admin mail page). The server puts its implementation into the
    /// Leptos context as an `Arc<dyn Outbox>`.
    pub trait Outbox: Send + Sync {
        /// Whether a relay is configured.
        fn configured(&self) -> bool;
        /// Sends a plain-text mail; the error is the relay's answer, for the log only.
        fn send(
            &self,
            to: String,
            subject: String,
            body: String,
        ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
        /// The settings in force, without the password.
        fn settings(&self) -> MailView;
        /// Saves new settings to the configuration file and applies them at once;
        /// `SecretRequired` when they name another relay without its password.
        fn save(&self, form: MailForm) -> Result<(), ConsoleError>;
    }

    /// Translation for server functions: the agent's draft in the visitor's language, and the
    /// provider's settings (the admin translation page). The server puts its implementation
    /// into the Leptos context as an `Arc<dyn Interpreter>`.
    pub trait Interpreter: Send + Sync {
        /// Whether `site`'s conversations are translated: a provider is set up and the site's
        /// switch is on.
        fn translates(&self, site: &store::Site) -> bool;
        /// `text`, which `agent` is writing in `conversation`, as the visitor will read it.
        /// `NoTranslation` when the conversation is not translated, `TranslationFailed` or
        /// `TranslationBudget` when no translation can be had now.
        fn draft(
            &self,
            conversation: store::Conversation,
            agent: store::Agent,
            text: String,
        ) -> Pin<Box<dyn Future<Output = Result<Draft, ConsoleError>> + Send>>;
        /// The settings in force, without the key and secret.
        fn settings(&self) -> TranslationView;
        /// Translates a sample with the provider `form` describes (saved key and secret
        /// where the form leaves them empty and keeps the provider and address), without
        /// saving anything: the translation, or `Invalid` for settings that make no provider,
        /// `AddressRefused` for an address Kefu may not call, `SecretRequired` for a new
        /// address without its key, `TranslationFailed` when it fails.
        fn test(
            &self,
            form: TranslationForm,
        ) -> Pin<Box<dyn Future<Output = Result<String, ConsoleError>> + Send>>;
        /// Saves new settings to the configuration file and applies them at once.
        fn save(&self, form: TranslationForm) -> Result<(), ConsoleError>;
    }
}
