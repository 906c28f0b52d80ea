//! Setting an install up from the terminal, without a browser: agents and teams (`kefu agent
//! add`, `kefu team add`, also used by the demo: the one place an agent account is created with
//! a hashed password and its site memberships), new passwords (`kefu agent passwd`), sites
//! (`kefu site add|list`) and API keys (`kefu apikey add|revoke`).

use store::{Agent, NewAgent, Role, Store};

/// What `kefu agent add` asks for.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// Sign-in e-mail; stored lower-case.
    pub email: String,
    /// The name visitors and colleagues see.
    pub display_name: String,
    /// Admin or agent.
    pub role: Role,
    /// Chats the router may assign at once.
    pub max_chats: i32,
    /// The public keys of the sites they answer.
    pub site_keys: Vec<String>,
    /// The password; a random one is made (and returned) when absent.
    pub password: Option<String>,
}

/// Why an agent, team, site or key could not be added, or a password not set (the message
/// names what to fix).
#[derive(Debug, thiserror::Error)]
pub enum AddAgentError {
    #[error("no site with key {0:?}")]
    UnknownSite(String),
    #[error("an agent with e-mail {0:?} already exists")]
    Exists(String),
    #[error("the e-mail address {0:?} is not valid")]
    BadEmail(String),
    #[error("max chats must be between 1 and 100, not {0}")]
    BadLimit(i32),
    #[error("no agent with e-mail {0:?} on that site")]
    UnknownMember(String),
    #[error("a team name is 1 to 64 characters")]
    BadTeamName,
    #[error("no agent with e-mail {0:?}")]
    UnknownAgent(String),
    #[error("{0}")]
    BadSite(String),
    #[error("an API key's name is 1 to 100 characters")]
    BadKeyName,
    #[error("{0:?} is not an administrator: API keys act as one")]
    NotAdmin(String),
    #[error("{0:?} has no API key with id {1}")]
    UnknownKey(String, i64),
    #[error("the password must have {0}")]
    BadPassword(#[from] crate::answers::PasswordProblem),
    #[error(transparent)]
    Server(#[from] crate::Error),
}

impl From<AddAgentError> for crate::Error {
    fn from(error: AddAgentError) -> Self {
        match error {
            AddAgentError::Server(error) => error,
            other => crate::Error::Agent(other.to_string()),
        }
    }
}

/// Creates the agent with a hashed password and adds them to their sites. Returns the agent
/// and the password when it was generated here (to show once).
pub async fn add(
    store: &dyn Store,
    spec: AgentSpec,
) -> Result<(Agent, Option<String>), AddAgentError> {
    let email = spec.email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 || email.contains(char::is_whitespace) {
        return Err(AddAgentError::BadEmail(spec.email));
    }
    if !(1..=100).contains(&spec.max_chats) {
        return Err(AddAgentError::BadLimit(spec.max_chats));
    }
    let mut sites = Vec::with_capacity(spec.site_keys.len());
    for key in &spec.site_keys {
        let site = store
            .site_by_key(key)
            .await
            .map_err(crate::Error::from)?
            .ok_or_else(|| AddAgentError::UnknownSite(key.clone()))?;
        sites.push(site.id);
    }
    if store
        .agent_by_email(&email)
        .await
        .map_err(crate::Error::from)?
        .is_some()
    {
        return Err(AddAgentError::Exists(email));
    }
    let (password, password_hash) = password_and_hash(spec.password)?;
    let agent = store
        .create_agent(NewAgent {
            email,
            password_hash,
            display_name: spec.display_name,
            role: spec.role,
            language: "en".to_string(),
            max_chats: spec.max_chats,
            created_at: crate::util::now_ms(),
        })
        .await
        .map_err(crate::Error::from)?;
    for site in sites {
        store
            .add_agent_to_site(site, agent.id)
            .await
            .map_err(crate::Error::from)?;
    }
    Ok((agent, password))
}

/// Gives the agent with this e-mail a new password and signs them out everywhere (every
/// session ends; an open console notices within a minute). Returns the agent and the password
/// when it was generated here (to show once).
pub async fn set_password(
    store: &dyn Store,
    email: &str,
    password: Option<String>,
) -> Result<(Agent, Option<String>), AddAgentError> {
    let agent = agent_named(store, email).await?;
    let (password, password_hash) = password_and_hash(password)?;
    store
        .set_agent_password(agent.id, &password_hash)
        .await
        .map_err(crate::Error::from)?;
    Ok((agent, password))
}

/// Checks the given password (the rule the wizard and `kefu init` apply), or makes a random
/// one; returns that generated one (to show once) and the hash to store.
fn password_and_hash(given: Option<String>) -> Result<(Option<String>, String), AddAgentError> {
    let (password, generated) = match given {
        Some(given) => (crate::answers::check_password(&given)?, false),
        None => (app::session::new_token()[..16].to_string(), true),
    };
    let hash = app::password::hash_password(&password)
        .map_err(|error| crate::Error::Password(error.to_string()))?;
    Ok((generated.then_some(password), hash))
}

/// Creates a team on the site with public key `site_key`, made of the agents with these
/// e-mails (each must belong to the site).
pub async fn add_team(
    store: &dyn Store,
    site_key: &str,
    name: &str,
    members: &[String],
) -> Result<store::Team, AddAgentError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AddAgentError::BadTeamName);
    }
    let site = store
        .site_by_key(site_key)
        .await
        .map_err(crate::Error::from)?
        .ok_or_else(|| AddAgentError::UnknownSite(site_key.to_string()))?;
    let mut member_ids = Vec::with_capacity(members.len());
    for email in members {
        let agent = store
            .agent_by_email(&email.trim().to_lowercase())
            .await
            .map_err(crate::Error::from)?;
        let on_site = match &agent {
            Some(agent) => store
                .agent_sites(agent.id)
                .await
                .map_err(crate::Error::from)?
                .contains(&site.id),
            None => false,
        };
        match agent {
            Some(agent) if on_site => member_ids.push(agent.id),
            _ => return Err(AddAgentError::UnknownMember(email.clone())),
        }
    }
    let team = store
        .create_team(site.id, name)
        .await
        .map_err(crate::Error::from)?;
    for member in member_ids {
        store
            .add_team_member(team.id, member)
            .await
            .map_err(crate::Error::from)?;
    }
    Ok(team)
}

/// The agent with this e-mail (any case).
async fn agent_named(store: &dyn Store, email: &str) -> Result<Agent, AddAgentError> {
    store
        .agent_by_email(&email.trim().to_lowercase())
        .await
        .map_err(crate::Error::from)?
        .ok_or_else(|| AddAgentError::UnknownAgent(email.to_string()))
}

/// Adds a site with a new random key, the widget's defaults and the given allowed origins,
/// answered by the agents with these e-mails.
pub async fn add_site(
    store: &dyn Store,
    name: &str,
    origins: &[String],
    agents: &[String],
) -> Result<store::Site, AddAgentError> {
    let name = crate::answers::check_site_name(name)
        .map_err(|message| AddAgentError::BadSite(format!("site name: {message}")))?;
    let origins = crate::answers::check_origins(&origins.join(" "))
        .map_err(|message| AddAgentError::BadSite(format!("--origin: {message}")))?;
    let mut members = Vec::with_capacity(agents.len());
    for email in agents {
        members.push(agent_named(store, email).await?.id);
    }
    Ok(create_site(store, name, origins, &members).await?)
}

/// Adds a site with a new random key and the widget's defaults, answered by `agents` (the
/// first site by its administrator; `kefu site add` by whom it names).
pub(crate) async fn create_site(
    store: &dyn Store,
    name: String,
    origins: Vec<String>,
    agents: &[store::AgentId],
) -> Result<store::Site, crate::Error> {
    let site = store
        .create_site(store::NewSite {
            public_key: app::session::new_token().chars().take(16).collect(),
            name,
            allowed_origins: origins,
            widget_settings: serde_json::json!({}),
            created_at: crate::util::now_ms(),
        })
        .await?;
    for agent in agents {
        store.add_agent_to_site(site.id, *agent).await?;
    }
    Ok(site)
}

/// Makes an API key called `name` for the agent with this e-mail, as the console's API page
/// does; returns the key (shown once) and its id.
pub async fn add_api_key(
    store: &dyn Store,
    email: &str,
    name: &str,
) -> Result<(String, i64), AddAgentError> {
    use app::pages::admin::api::{MAX_NAME, TOKEN_START};
    let agent = agent_named(store, email).await?;
    if agent.role != Role::Admin {
        return Err(AddAgentError::NotAdmin(agent.email));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(AddAgentError::BadKeyName);
    }
    let key = format!("{TOKEN_START}{}", app::session::new_token());
    let stored = store
        .create_api_token(store::NewApiToken {
            agent_id: agent.id,
            name: name.to_owned(),
            token_hash: app::session::token_hash(&key),
            prefix: key.chars().take(TOKEN_START.len() + 8).collect(),
            created_at: crate::util::now_ms(),
        })
        .await
        .map_err(crate::Error::from)?;
    Ok((key, stored.id))
}

/// Revokes the API key `id` of the agent with this e-mail: it stops working at once.
pub async fn revoke_api_key(store: &dyn Store, email: &str, id: i64) -> Result<(), AddAgentError> {
    let agent = agent_named(store, email).await?;
    match store.delete_api_token(agent.id, id).await {
        Ok(()) => Ok(()),
        Err(store::Error::NotFound) => Err(AddAgentError::UnknownKey(email.to_string(), id)),
        Err(error) => Err(crate::Error::from(error).into()),
    }
}
