//! Agent sign-in: the login/logout server functions, the session cookie and password hashing.
//!
//! The session cookie holds a random token; the database keeps only its SHA-256, so a leaked
//! database does not leak live sessions. The connection-mode choice is a separate, readable
//! cookie because the browser side needs it to pick a transport.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Name of the HttpOnly cookie that carries the session token.
pub const SESSION_COOKIE: &str = "kefu_session";
/// Name of the readable cookie that remembers the connection mode chosen on the login page.
pub const MODE_COOKIE: &str = "kefu_mode";

/// How the console talks to the server in real time; chosen on the login page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionMode {
    /// WebSocket first, falling back to HTTP when it fails.
    #[default]
    Auto,
    /// Plain HTTP only, for networks whose proxies break WebSockets.
    Http,
}

impl ConnectionMode {
    /// The cookie and form value of this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionMode::Auto => "auto",
            ConnectionMode::Http => "http",
        }
    }

    /// Reads a cookie or form value; anything unknown means the default.
    pub fn parse(value: &str) -> Self {
        match value {
            "http" => ConnectionMode::Http,
            _ => ConnectionMode::Auto,
        }
    }
}

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

/// What the console knows about the signed-in agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Their id: the desk's "mine" filter compares assignees with it.
    pub id: i64,
    /// Shown in the header so agents see whose session this is.
    pub display_name: String,
    /// Shown next to the name; also lets the console hide admin pages.
    pub email: String,
    /// Whether admin pages are available.
    pub is_admin: bool,
}

/// Signs an agent in: checks the password, opens a session and sets the cookies.
#[server(endpoint = "login")]
pub async fn login(
    email: String,
    password: String,
    mode: ConnectionMode,
) -> Result<(), ConsoleError> {
    if password.len() > crate::throttle::MAX_PASSWORD_BYTES {
        return Err(ConsoleError::Invalid);
    }
    let email = email.trim().to_lowercase();
    let client: ssr::ClientIp = leptos_axum::extract().await.map_err(ssr::internal)?;
    let address = client.group();
    let guard = ssr::login_guard()?;
    if let Err(crate::throttle::Wait(wait)) =
        guard.begin(address, &email, std::time::Instant::now())
    {
        ssr::retry_after(wait);
        return Err(ConsoleError::Throttled);
    }
    let store = ssr::store()?;
    let agent = store
        .agent_by_email(&email)
        .await
        .map_err(ssr::internal)?
        .filter(|agent| !agent.disabled);
    // Verify against a dummy hash when the agent is unknown so timing does not reveal accounts.
    let hash = agent
        .as_ref()
        .map(|agent| agent.password_hash.clone())
        .unwrap_or_else(|| ssr::DUMMY_HASH.to_string());
    let valid = guard
        .verify(password, hash)
        .await
        .inspect_err(|_| ssr::retry_after(std::time::Duration::from_secs(1)))?;
    let Some(agent) = agent.filter(|_| valid) else {
        tracing::info!(%address, "a sign-in with a wrong e-mail or password");
        return Err(ConsoleError::BadCredentials);
    };
    guard.succeeded(address, &email);
    let token = ssr::new_token();
    let expires = ssr::now_ms() + ssr::SESSION_TTL_MS;
    store
        .create_session(&ssr::token_hash(&token), agent.id, expires)
        .await
        .map_err(ssr::internal)?;
    let policy = ssr::cookie_policy();
    ssr::set_cookie(policy.session(token, ssr::SESSION_TTL_MS / 1000));
    ssr::set_cookie(policy.readable(MODE_COOKIE, mode.as_str().to_string()));
    leptos_axum::redirect("/inbox");
    Ok(())
}

/// Ends the current session (if any) and clears its cookie. The agent's live connections
/// (every tab, every node) re-check their sessions at once, so the other tabs of this browser
/// stay signed in only if they have a session of their own.
#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), ConsoleError> {
    let store = ssr::store()?;
    let signed_in = ssr::require_agent().await.ok();
    let policy = ssr::cookie_policy();
    if let Some(token) = ssr::session_token().await {
        store
            .delete_session(&ssr::token_hash(&token))
            .await
            .map_err(ssr::internal)?;
    }
    if let Some(agent) = signed_in {
        let hub = ssr::hub()?;
        hub.signed_out(agent.id);
        hub.sessions_changed(agent.id);
    }
    ssr::set_cookie(policy.session(String::new(), 0));
    leptos_axum::redirect("/login");
    Ok(())
}

/// The signed-in agent, or `Unauthorized`.
#[server(endpoint = "me")]
pub async fn current_agent() -> Result<AgentInfo, ConsoleError> {
    Ok(ssr::agent_info(&ssr::require_agent().await?))
}

/// One of the signed-in agent's sites, for pickers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteChoice {
    /// The site's id, the value a form sends.
    pub id: i64,
    /// Its name, what the agent reads.
    pub name: String,
}

/// The sites the signed-in agent belongs to, in id order.
#[server(endpoint = "my_sites")]
pub async fn my_sites() -> Result<Vec<SiteChoice>, ConsoleError> {
    let agent = ssr::require_agent().await?;
    let store = ssr::store()?;
    let mut sites = Vec::new();
    for id in store.agent_sites(agent.id).await.map_err(ssr::internal)? {
        if let Some(site) = store.site(id).await.map_err(ssr::internal)? {
            sites.push(SiteChoice {
                id,
                name: site.name,
            });
        }
    }
    Ok(sites)
}

/// The connection mode remembered in this browser (read on the server while rendering).
#[server(endpoint = "remembered_mode")]
pub async fn remembered_mode() -> Result<ConnectionMode, ConsoleError> {
    Ok(ssr::cookie(MODE_COOKIE)
        .await
        .map(|value| ConnectionMode::parse(&value))
        .unwrap_or_default())
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! Server-side helpers shared by every server function: store access, sessions, hashing.

    use super::{AgentInfo, ConsoleError, SESSION_COOKIE};
    use argon2::Argon2;
    use argon2::password_hash::{PasswordHasher, SaltString};
    use axum::http::{HeaderMap, HeaderValue, header};
    use cookie::{Cookie, SameSite};
    use leptos::prelude::use_context;
    use rand::RngCore;
    use sha2::{Digest, Sha256};
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    /// What server functions tell the real-time side; the server puts one into the Leptos
    /// context.
    pub trait Hub: Send + Sync {
        /// `agent_id` signed out: show them offline now.
        fn signed_out(&self, agent_id: i64);
        /// `agent_id`'s sessions, role or sites changed (signed out, disabled, removed from a
        /// site): their live connections on every node check their session again now and
        /// close if it no longer holds.
        fn sessions_changed(&self, agent_id: i64);
        /// `visitor_id` was banned: their open widgets are told now and stop (a banned visitor's
        /// next hello is refused anyway).
        fn banned(&self, visitor_id: i64);
        /// Sends `frame` live to the consoles of the site's agents (never to visitors).
        fn to_agents(&self, site_id: i64, frame: protocol::ServerFrame);
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
        fn settings(&self) -> crate::pages::admin::mail::MailView;
        /// Saves new settings to the configuration file and applies them at once;
        /// `SecretRequired` when they name another relay without its password.
        fn save(&self, form: crate::pages::admin::mail::MailForm) -> Result<(), ConsoleError>;
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
        ) -> Pin<
            Box<
                dyn Future<Output = Result<crate::pages::conversation::Draft, ConsoleError>> + Send,
            >,
        >;
        /// The settings in force, without the key and secret.
        fn settings(&self) -> crate::pages::admin::translation::TranslationView;
        /// Translates a sample with the provider `form` describes (saved key and secret
        /// where the form leaves them empty and keeps the provider and address), without
        /// saving anything: the translation, or `Invalid` for settings that make no provider,
        /// `AddressRefused` for an address Kefu may not call, `SecretRequired` for a new
        /// address without its key, `TranslationFailed` when it fails.
        fn test(
            &self,
            form: crate::pages::admin::translation::TranslationForm,
        ) -> Pin<Box<dyn Future<Output = Result<String, ConsoleError>> + Send>>;
        /// Saves new settings to the configuration file and applies them at once.
        fn save(
            &self,
            form: crate::pages::admin::translation::TranslationForm,
        ) -> Result<(), ConsoleError>;
    }

    /// The interpreter the server provided.
    pub fn interpreter() -> Result<Arc<dyn Interpreter>, ConsoleError> {
        use_context::<Arc<dyn Interpreter>>().ok_or_else(|| {
            tracing::error!("server function called without the interpreter in context");
            ConsoleError::Internal
        })
    }

    /// The outbox the server provided.
    pub fn outbox() -> Result<Arc<dyn Outbox>, ConsoleError> {
        use_context::<Arc<dyn Outbox>>().ok_or_else(|| {
            tracing::error!("server function called without the outbox in context");
            ConsoleError::Internal
        })
    }

    /// Sends a mail through the server's [`Outbox`]: `NoMail` when no relay is configured,
    /// `MailFailed` (and a log line) when the relay fails.
    pub async fn send_mail(to: &str, subject: &str, body: String) -> Result<(), ConsoleError> {
        let outbox = outbox()?;
        if !outbox.configured() {
            return Err(ConsoleError::NoMail);
        }
        outbox
            .send(to.to_owned(), subject.to_owned(), body)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "sending mail failed");
                ConsoleError::MailFailed
            })
    }

    /// Stores `frame` (a durable agent event: note, tags) as an event of kind `kind` on the
    /// conversation, gives it its event seq and sends it live to the site's consoles.
    pub async fn publish_event(
        conversation: &store::Conversation,
        kind: &str,
        mut frame: protocol::ServerFrame,
    ) -> Result<(), ConsoleError> {
        let event = store()?
            .append_event(store::NewEvent {
                site_id: conversation.site_id,
                kind: kind.to_string(),
                conversation_id: conversation.id,
                payload: serde_json::to_string(&frame).map_err(internal)?,
                created_at: now_ms(),
            })
            .await
            .map_err(internal)?;
        if let Some(seq) = frame.event_seq_mut() {
            *seq = event.id;
        }
        hub()?.to_agents(conversation.site_id, frame);
        Ok(())
    }

    /// The hub the server provided.
    pub fn hub() -> Result<std::sync::Arc<dyn Hub>, ConsoleError> {
        use_context::<Arc<dyn Hub>>().ok_or_else(|| {
            tracing::error!("server function called without the hub in context");
            ConsoleError::Internal
        })
    }

    /// How long a console session lasts without signing in again.
    pub const SESSION_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

    /// A valid argon2 hash of a random password, verified against when an e-mail is unknown.
    pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AsaeJ7VrzDtJfUY3iQd1+5JqmiY8GdaN4lHCO7U5tAY";

    /// The database handle the server put into the Leptos context.
    pub fn store() -> Result<Arc<dyn store::Store>, ConsoleError> {
        use_context::<Arc<dyn store::Store>>().ok_or_else(|| {
            tracing::error!("server function called without a store in context");
            ConsoleError::Internal
        })
    }

    /// Logs an internal error with its details and returns the opaque code for the client.
    pub fn internal(error: impl std::fmt::Display) -> ConsoleError {
        tracing::error!(%error, "server function failed");
        ConsoleError::Internal
    }

    /// Milliseconds since the Unix epoch, the store's time unit.
    pub fn now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// A new random session token (256 bits, hex).
    pub fn new_token() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// What the database stores for a token: its SHA-256 in hex.
    pub fn token_hash(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    /// Hashes a password with argon2id (default parameters) into a PHC string.
    pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt)?;
        Ok(Argon2::default()
            .hash_password(password.as_bytes(), &salt)?
            .to_string())
    }

    /// How the console's cookies are written: `Secure`, and the `__Host-` prefix on the
    /// session cookie (no other host or path can set or shadow it), when the console is served
    /// over https (`public_url`). The server puts one into the Leptos context.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct CookiePolicy {
        /// The console is served over https.
        pub secure: bool,
    }

    impl CookiePolicy {
        /// The session cookie's name under this policy.
        pub fn session_name(self) -> &'static str {
            if self.secure {
                "__Host-kefu_session"
            } else {
                SESSION_COOKIE
            }
        }

        /// The session token the browser sent, if any.
        pub fn session_token(self, headers: &HeaderMap) -> Option<String> {
            cookie_value(headers, self.session_name())
        }

        /// The session cookie holding `token` for `max_age_secs` (0: removes it).
        pub fn session(self, token: String, max_age_secs: i64) -> Cookie<'static> {
            self.cookie(self.session_name(), token, max_age_secs, true)
        }

        /// A cookie pages may read (language, connection mode), kept for a year.
        pub fn readable(self, name: &'static str, value: String) -> Cookie<'static> {
            self.cookie(name, value, 365 * 24 * 60 * 60, false)
        }

        fn cookie(
            self,
            name: &'static str,
            value: String,
            max_age_secs: i64,
            http_only: bool,
        ) -> Cookie<'static> {
            Cookie::build((name, value))
                .path("/")
                .http_only(http_only)
                .same_site(SameSite::Lax)
                .secure(self.secure)
                .max_age(cookie::time::Duration::seconds(max_age_secs))
                .build()
        }
    }

    /// The client's address (the peer, or what a trusted proxy forwarded for), which the
    /// server puts into every request: per-address limits and logs use it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ClientIp(pub std::net::IpAddr);

    impl ClientIp {
        /// The address per-address limits count against. An IPv6 client is given a whole
        /// /64 (a home, a phone) and may pick any address in it, so the /64 is one client.
        pub fn group(self) -> std::net::IpAddr {
            use std::net::{IpAddr, Ipv6Addr};
            match self.0 {
                IpAddr::V4(v4) => IpAddr::V4(v4),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => {
                        let [a, b, c, d, ..] = v6.segments();
                        IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
                    }
                },
            }
        }
    }

    impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
        type Rejection = axum::http::StatusCode;

        async fn from_request_parts(
            parts: &mut axum::http::request::Parts,
            _: &S,
        ) -> Result<Self, Self::Rejection> {
            use axum::extract::ConnectInfo;
            if let Some(client) = parts.extensions.get::<ClientIp>() {
                return Ok(*client);
            }
            // A router used without the server's address middleware: the peer is the client.
            parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|ConnectInfo(peer)| ClientIp(peer.ip()))
                .ok_or_else(|| {
                    tracing::error!("a request without its peer address");
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                })
        }
    }

    /// The sign-in throttle the server provided.
    pub fn login_guard() -> Result<Arc<crate::throttle::LoginGuard>, ConsoleError> {
        use_context::<Arc<crate::throttle::LoginGuard>>().ok_or_else(|| {
            tracing::error!("server function called without the login guard in context");
            ConsoleError::Internal
        })
    }

    /// Tells the client when to try again (`Retry-After`, whole seconds, at least one).
    pub fn retry_after(wait: std::time::Duration) {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.insert_header(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
    }

    /// The policy the server provided (plain http when none was, as in unit tests).
    pub fn cookie_policy() -> CookiePolicy {
        use_context::<CookiePolicy>().unwrap_or_default()
    }

    /// Adds a `Set-Cookie` header to the server function's response.
    pub fn set_cookie(cookie: Cookie<'static>) {
        let Some(response) = use_context::<leptos_axum::ResponseOptions>() else {
            tracing::error!("no response options in context; cookie not set");
            return;
        };
        match HeaderValue::from_str(&cookie.to_string()) {
            Ok(value) => response.append_header(header::SET_COOKIE, value),
            Err(error) => tracing::error!(%error, "invalid cookie value"),
        }
    }

    /// The value of a request cookie.
    pub async fn cookie(name: &str) -> Option<String> {
        let headers: HeaderMap = leptos_axum::extract().await.ok()?;
        cookie_value(&headers, name)
    }

    /// The request's session token, under the server's cookie policy.
    pub async fn session_token() -> Option<String> {
        let headers: HeaderMap = leptos_axum::extract().await.ok()?;
        cookie_policy().session_token(&headers)
    }

    /// Finds a cookie in request headers.
    pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value().to_string())
    }

    /// The one way from a session token to its agent, for server functions, both real-time
    /// transports, uploads and the export: an unexpired session of an agent who is not
    /// disabled.
    pub async fn session_agent(
        store: &dyn store::Store,
        token: &str,
    ) -> Result<Option<store::Agent>, store::Error> {
        Ok(store
            .session_agent(&token_hash(token), now_ms())
            .await?
            .filter(|agent| !agent.disabled))
    }

    /// What the console shows of an agent.
    pub fn agent_info(agent: &store::Agent) -> AgentInfo {
        AgentInfo {
            id: agent.id,
            display_name: agent.display_name.clone(),
            email: agent.email.clone(),
            is_admin: agent.role == store::Role::Admin,
        }
    }

    /// The signed-in agent and conversation `id`, if it belongs to one of their sites; else
    /// `NotFound` (the same answer whether it exists elsewhere or not at all).
    pub async fn my_conversation(
        id: i64,
    ) -> Result<(store::Agent, store::Conversation), ConsoleError> {
        let agent = require_agent().await?;
        let store = store()?;
        let conversation = store
            .conversation(id)
            .await
            .map_err(internal)?
            .ok_or(ConsoleError::NotFound)?;
        let sites = store.agent_sites(agent.id).await.map_err(internal)?;
        if !sites.contains(&conversation.site_id) {
            return Err(ConsoleError::NotFound);
        }
        Ok((agent, conversation))
    }

    /// Agents' display names, looked up once per request: messages carry their author's name.
    #[derive(Default)]
    pub struct AgentNames(std::collections::HashMap<i64, Option<String>>);

    impl AgentNames {
        /// The display name of `agent` (none for visitor and system messages).
        pub async fn of(
            &mut self,
            store: &dyn store::Store,
            agent: Option<i64>,
        ) -> Result<Option<String>, ConsoleError> {
            let Some(id) = agent else {
                return Ok(None);
            };
            if let Some(name) = self.0.get(&id) {
                return Ok(name.clone());
            }
            let name = store
                .agent(id)
                .await
                .map_err(internal)?
                .map(|a| a.display_name);
            self.0.insert(id, name.clone());
            Ok(name)
        }
    }

    /// The agent behind the request's session cookie, or `Unauthorized`.
    pub async fn require_agent() -> Result<store::Agent, ConsoleError> {
        let token = session_token().await.ok_or(ConsoleError::Unauthorized)?;
        session_agent(store()?.as_ref(), &token)
            .await
            .map_err(internal)?
            .ok_or(ConsoleError::Unauthorized)
    }

    /// The signed-in agent, if they are an administrator: `Unauthorized` when not signed in,
    /// `Forbidden` when signed in without the admin role. Every admin server function starts
    /// here.
    pub async fn require_admin() -> Result<store::Agent, ConsoleError> {
        let agent = require_agent().await?;
        if agent.role != store::Role::Admin {
            return Err(ConsoleError::Forbidden);
        }
        Ok(agent)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use argon2::password_hash::{PasswordHash, PasswordVerifier};

        #[test]
        fn dummy_hash_parses_and_rejects() {
            let parsed = PasswordHash::new(DUMMY_HASH).expect("dummy hash is a PHC string");
            assert!(Argon2::default().verify_password(b"", &parsed).is_err());
        }

        #[test]
        fn hash_then_verify() {
            let hash = hash_password("correct horse").expect("hash");
            let parsed = PasswordHash::new(&hash).expect("parse");
            assert!(
                Argon2::default()
                    .verify_password(b"correct horse", &parsed)
                    .is_ok()
            );
            assert!(
                Argon2::default()
                    .verify_password(b"wrong", &parsed)
                    .is_err()
            );
        }

        #[test]
        fn cookie_lookup_finds_exact_name() {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::COOKIE,
                HeaderValue::from_static("a=1; kefu_session_x=2; kefu_session=abc"),
            );
            assert_eq!(
                cookie_value(&headers, "kefu_session").as_deref(),
                Some("abc")
            );
            assert_eq!(cookie_value(&headers, "missing"), None);
        }

        #[test]
        fn cookies_are_secure_and_host_bound_under_https() {
            let plain = CookiePolicy::default()
                .session("abc".into(), 60)
                .to_string();
            assert!(plain.starts_with("kefu_session=abc"), "{plain}");
            assert!(
                plain.contains("HttpOnly") && plain.contains("SameSite=Lax"),
                "{plain}"
            );
            assert!(!plain.contains("Secure"), "{plain}");
            let https = CookiePolicy { secure: true };
            let secure = https.session("abc".into(), 60).to_string();
            assert!(secure.starts_with("__Host-kefu_session=abc"), "{secure}");
            assert!(
                secure.contains("Secure") && secure.contains("Path=/"),
                "{secure}"
            );
            let mut headers = HeaderMap::new();
            headers.insert(
                header::COOKIE,
                HeaderValue::from_static("kefu_session=plain; __Host-kefu_session=bound"),
            );
            assert_eq!(https.session_token(&headers).as_deref(), Some("bound"));
            assert_eq!(
                CookiePolicy::default().session_token(&headers).as_deref(),
                Some("plain")
            );
            let mode = https.readable("kefu_mode", "http".into()).to_string();
            assert!(
                !mode.contains("HttpOnly") && mode.contains("Secure"),
                "{mode}"
            );
        }

        #[test]
        fn ipv6_clients_are_grouped_per_64() {
            let ip = |text: &str| -> std::net::IpAddr { text.parse().expect("ip") };
            let a = ClientIp(ip("2001:db8:1:2:aaaa::1")).group();
            let b = ClientIp(ip("2001:db8:1:2:bbbb::9")).group();
            let other = ClientIp(ip("2001:db8:1:3::1")).group();
            assert_eq!(a, b);
            assert_ne!(a, other);
            assert_eq!(ClientIp(ip("::ffff:192.0.2.1")).group(), ip("192.0.2.1"));
            assert_eq!(ClientIp(ip("192.0.2.1")).group(), ip("192.0.2.1"));
        }

        #[test]
        fn token_hash_is_sha256_hex() {
            assert_eq!(
                token_hash("abc"),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            );
        }
    }
}
