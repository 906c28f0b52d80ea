//! What every server function reaches through the Leptos context the server provides: the
//! store, the hub, mail and translation ports, the sign-in throttle, the request's cookies and
//! response headers, and the signed-in agent (`require_agent`, `require_admin`,
//! `my_conversation`): the one path that checks session and role.

use crate::error::ConsoleError;
use crate::ports::{Hub, Interpreter, Outbox};
use crate::session::{CookiePolicy, cookie_value, session_agent};
use axum::http::{HeaderMap, HeaderValue, header};
use cookie::Cookie;
use leptos::prelude::use_context;
use std::sync::Arc;

/// The database handle the server put into the Leptos context.
pub fn store() -> Result<Arc<dyn store::Store>, ConsoleError> {
    use_context::<Arc<dyn store::Store>>().ok_or_else(|| {
        tracing::error!("server function called without a store in context");
        ConsoleError::Internal
    })
}

/// The hub the server provided.
pub fn hub() -> Result<std::sync::Arc<dyn Hub>, ConsoleError> {
    use_context::<Arc<dyn Hub>>().ok_or_else(|| {
        tracing::error!("server function called without the hub in context");
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

/// The interpreter the server provided.
pub fn interpreter() -> Result<Arc<dyn Interpreter>, ConsoleError> {
    use_context::<Arc<dyn Interpreter>>().ok_or_else(|| {
        tracing::error!("server function called without the interpreter in context");
        ConsoleError::Internal
    })
}

/// The sign-in throttle the server provided.
pub fn login_guard() -> Result<Arc<crate::throttle::LoginGuard>, ConsoleError> {
    use_context::<Arc<crate::throttle::LoginGuard>>().ok_or_else(|| {
        tracing::error!("server function called without the login guard in context");
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
            payload: serde_json::to_string(&frame).map_err(crate::error::internal)?,
            created_at: crate::clock::now(),
        })
        .await?;
    if let Some(seq) = frame.event_seq_mut() {
        *seq = event.id;
    }
    hub()?.to_agents(conversation.site_id, frame);
    Ok(())
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

/// The agent behind the request's session cookie, or `Unauthorized`.
pub async fn require_agent() -> Result<store::Agent, ConsoleError> {
    let token = session_token().await.ok_or(ConsoleError::Unauthorized)?;
    session_agent(store()?.as_ref(), &token)
        .await?
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

/// The signed-in agent and conversation `id`, if it belongs to one of their sites; else
/// `NotFound` (the same answer whether it exists elsewhere or not at all).
pub async fn my_conversation(
    id: store::ConversationId,
) -> Result<(store::Agent, store::Conversation), ConsoleError> {
    let agent = require_agent().await?;
    let store = store()?;
    let conversation = store
        .conversation(id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let sites = store.agent_sites(agent.id).await?;
    if !sites.contains(&conversation.site_id) {
        return Err(ConsoleError::NotFound);
    }
    Ok((agent, conversation))
}

/// Agents' display names, looked up once per request: messages carry their author's name.
#[derive(Default)]
pub struct AgentNames(std::collections::HashMap<store::AgentId, Option<String>>);

impl AgentNames {
    /// The display name of `agent` (none for visitor and system messages).
    pub async fn of(
        &mut self,
        store: &dyn store::Store,
        agent: Option<store::AgentId>,
    ) -> Result<Option<String>, ConsoleError> {
        let Some(id) = agent else {
            return Ok(None);
        };
        if let Some(name) = self.0.get(&id) {
            return Ok(name.clone());
        }
        let name = store.agent(id).await?.map(|a| a.display_name);
        self.0.insert(id, name.clone());
        Ok(name)
    }
}
