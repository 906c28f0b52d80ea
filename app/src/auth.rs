//! Agent sign-in: the login/logout server functions, who is signed in, their sites, and the
//! connection mode.
//!
//! Sessions themselves are in `session` (tokens, cookies) and `context` (the signed-in agent
//! of a request). The connection-mode choice is a separate, readable cookie because the
//! browser side needs it to pick a transport.

use crate::error::ConsoleError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
#[cfg(feature = "ssr")]
use {crate::context, crate::session};

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

/// What the console knows about the signed-in agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Their id: the desk's "mine" filter compares assignees with it.
    pub id: protocol::AgentId,
    /// Shown in the header so agents see whose session this is.
    pub display_name: String,
    /// Shown next to the name; also lets the console hide admin pages.
    pub email: String,
    /// Whether admin pages are available.
    pub is_admin: bool,
}

#[cfg(feature = "ssr")]
impl From<&store::Agent> for AgentInfo {
    /// What the console shows of an agent.
    fn from(agent: &store::Agent) -> Self {
        AgentInfo {
            id: agent.id,
            display_name: agent.display_name.clone(),
            email: agent.email.clone(),
            is_admin: agent.role == store::Role::Admin,
        }
    }
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
    let client: session::ClientIp = leptos_axum::extract()
        .await
        .map_err(crate::error::internal)?;
    let address = client.group();
    let guard = context::login_guard()?;
    if let Err(crate::throttle::Wait(wait)) =
        guard.begin(address, &email, std::time::Instant::now())
    {
        context::retry_after(wait);
        return Err(ConsoleError::Throttled);
    }
    let store = context::store()?;
    let agent = store
        .agent_by_email(&email)
        .await?
        .filter(|agent| !agent.disabled);
    // Verify against a dummy hash when the agent is unknown so timing does not reveal accounts.
    let hash = agent
        .as_ref()
        .map(|agent| agent.password_hash.clone())
        .unwrap_or_else(|| crate::password::DUMMY_HASH.to_string());
    let valid = guard
        .verify(password, hash)
        .await
        .inspect_err(|_| context::retry_after(std::time::Duration::from_secs(1)))?;
    let Some(agent) = agent.filter(|_| valid) else {
        tracing::info!(%address, "a sign-in with a wrong e-mail or password");
        return Err(ConsoleError::BadCredentials);
    };
    guard.succeeded(address, &email);
    let token = session::new_token();
    let expires = crate::clock::now() + session::SESSION_TTL_MS;
    store
        .create_session(&session::token_hash(&token), agent.id, expires)
        .await?;
    let policy = context::cookie_policy();
    context::set_cookie(policy.session(token, session::SESSION_TTL_MS / 1000));
    context::set_cookie(policy.readable(MODE_COOKIE, mode.as_str().to_string()));
    leptos_axum::redirect("/inbox");
    Ok(())
}

/// Ends the current session (if any) and clears its cookie. The agent's live connections
/// (every tab, every node) re-check their sessions at once, so the other tabs of this browser
/// stay signed in only if they have a session of their own.
#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), ConsoleError> {
    let store = context::store()?;
    let signed_in = context::require_agent().await.ok();
    let policy = context::cookie_policy();
    if let Some(token) = context::session_token().await {
        store.delete_session(&session::token_hash(&token)).await?;
    }
    if let Some(agent) = signed_in {
        let hub = context::hub()?;
        hub.signed_out(agent.id);
        hub.sessions_changed(agent.id);
    }
    context::set_cookie(policy.session(String::new(), 0));
    leptos_axum::redirect("/login");
    Ok(())
}

/// The signed-in agent, or `Unauthorized`.
#[server(endpoint = "me")]
pub async fn current_agent() -> Result<AgentInfo, ConsoleError> {
    Ok(AgentInfo::from(&context::require_agent().await?))
}

/// One of the signed-in agent's sites, for pickers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteChoice {
    /// The site's id, the value a form sends.
    pub id: protocol::SiteId,
    /// Its name, what the agent reads.
    pub name: String,
}

/// The sites the signed-in agent belongs to, in id order.
#[server(endpoint = "my_sites")]
pub async fn my_sites() -> Result<Vec<SiteChoice>, ConsoleError> {
    let agent = context::require_agent().await?;
    let store = context::store()?;
    let mut sites = Vec::new();
    for id in store.agent_sites(agent.id).await? {
        if let Some(site) = store.site(id).await? {
            sites.push(SiteChoice {
                id,
                name: site.name,
            });
        }
    }
    Ok(sites)
}

/// Every site of the installation, in id order, for an administrator's pickers (teams, bans).
#[server(endpoint = "admin/site_choices")]
pub async fn every_site() -> Result<Vec<SiteChoice>, ConsoleError> {
    context::require_admin().await?;
    Ok(context::store()?
        .all_sites()
        .await?
        .into_iter()
        .map(|site| SiteChoice {
            id: site.id,
            name: site.name,
        })
        .collect())
}

/// The connection mode remembered in this browser (read on the server while rendering).
#[server(endpoint = "remembered_mode")]
pub async fn remembered_mode() -> Result<ConnectionMode, ConsoleError> {
    Ok(context::cookie(MODE_COOKIE)
        .await
        .map(|value| ConnectionMode::parse(&value))
        .unwrap_or_default())
}
