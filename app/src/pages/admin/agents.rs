//! `/admin/agents`: administrators invite agents, set their role and concurrent-chat limit,
//! disable them, and choose the sites each one answers. An administrator cannot demote or
//! disable themselves (the install would be left without anyone able to undo it).

use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use protocol::{AgentId, SiteId};
use serde::{Deserialize, Serialize};

/// Most chats an agent may be given at once.
pub const MAX_CHATS: i32 = 50;

/// An agent as the admin page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAgent {
    /// Their id.
    pub id: AgentId,
    /// Their sign-in e-mail.
    pub email: String,
    /// Their name.
    pub name: String,
    /// Whether they are an administrator.
    pub admin: bool,
    /// Chats given to them at once.
    pub max_chats: i32,
    /// Whether they may sign in.
    pub disabled: bool,
    /// The sites they answer.
    pub sites: Vec<SiteId>,
}

/// The agents and the sites they can be put on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentsData {
    /// Every agent.
    pub agents: Vec<AdminAgent>,
    /// Every site, `(id, name)`.
    pub sites: Vec<(SiteId, String)>,
    /// The administrator looking (who cannot demote or disable themselves).
    pub me: AgentId,
}

/// Every agent and site.
#[server(endpoint = "admin/agents")]
pub async fn admin_agents() -> Result<AgentsData, ConsoleError> {
    use crate::context;
    let me = context::require_admin().await?;
    let store = context::store()?;
    let mut agents = Vec::new();
    for agent in store.all_agents().await? {
        agents.push(AdminAgent {
            sites: store.agent_sites(agent.id).await?,
            id: agent.id,
            email: agent.email,
            name: agent.display_name,
            admin: agent.role == store::Role::Admin,
            max_chats: agent.max_chats,
            disabled: agent.disabled,
        });
    }
    let sites = store
        .all_sites()
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    Ok(AgentsData {
        agents,
        sites,
        me: me.id,
    })
}

/// Adds an agent on `site` with a random password, returned once for the administrator to
/// pass on (the agent can be told it by whatever channel the team uses).
#[server(endpoint = "admin/agents/invite")]
pub async fn invite_agent(
    email: String,
    name: String,
    site: SiteId,
    #[server(default)] admin: bool,
) -> Result<String, ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    let email = email.trim().to_lowercase();
    let name = name.trim().to_owned();
    let valid_email = email.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
    });
    if !valid_email || email.len() > 254 || name.is_empty() || name.chars().count() > 100 {
        return Err(ConsoleError::Invalid);
    }
    let store = context::store()?;
    if store.site(site).await?.is_none() {
        return Err(ConsoleError::NotFound);
    }
    let password: String = crate::session::new_token().chars().take(20).collect();
    let hash = crate::password::hash_password(&password).map_err(crate::error::internal)?;
    let agent = match store
        .create_agent(store::NewAgent {
            email,
            password_hash: hash,
            display_name: name,
            role: if admin {
                store::Role::Admin
            } else {
                store::Role::Agent
            },
            language: "en".to_owned(),
            max_chats: 5,
            created_at: crate::clock::now(),
        })
        .await
    {
        Ok(agent) => agent,
        Err(store::Error::Conflict { .. }) => return Err(ConsoleError::Invalid),
        Err(error) => return Err(crate::error::internal(error)),
    };
    store.add_agent_to_site(site, agent.id).await?;
    Ok(password)
}

/// Sets an agent's role, limit and whether they are disabled.
#[server(endpoint = "admin/agents/update")]
pub async fn update_agent(
    id: AgentId,
    max_chats: i32,
    #[server(default)] admin: bool,
    #[server(default)] disabled: bool,
) -> Result<(), ConsoleError> {
    use crate::context;
    let me = context::require_admin().await?;
    if !(1..=MAX_CHATS).contains(&max_chats) || (id == me.id && (!admin || disabled)) {
        return Err(ConsoleError::Invalid);
    }
    let role = if admin {
        store::Role::Admin
    } else {
        store::Role::Agent
    };
    match context::store()?
        .update_agent(id, role, max_chats, disabled)
        .await
    {
        Ok(_) => {
            // A disabled agent's open consoles close now, on every node.
            context::hub()?.sessions_changed(id);
            Ok(())
        }
        Err(store::Error::NotFound) => Err(ConsoleError::NotFound),
        Err(error) => Err(crate::error::internal(error)),
    }
}

/// Puts an agent on a site or takes them off it.
#[server(endpoint = "admin/agents/site")]
pub async fn set_agent_site(id: AgentId, site: SiteId, member: bool) -> Result<(), ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    let store = context::store()?;
    let known = store.agent(id).await?.is_some() && store.site(site).await?.is_some();
    if !known {
        return Err(ConsoleError::NotFound);
    }
    if member {
        store.add_agent_to_site(site, id).await
    } else {
        store.remove_agent_from_site(site, id).await
    }?;
    // Their live connections follow the new set of sites (and stop seeing a removed one).
    context::hub()?.sessions_changed(id);
    Ok(())
}

/// `/admin/agents`.
#[component]
pub fn AdminAgentsPage() -> impl IntoView {
    let invite = ServerAction::<InviteAgent>::new();
    let update = ServerAction::<UpdateAgent>::new();
    let membership = ServerAction::<SetAgentSite>::new();
    let shell = crate::shell::use_shell();
    let data = Resource::new(
        move || {
            (
                invite.version().get(),
                update.version().get(),
                membership.version().get(),
            )
        },
        |_| admin_agents(),
    );
    view! {
        <crate::ui::Page class="admin">
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        let outcome = move || match invite.value().get() {
                            Some(Ok(password)) => Some(view! {
                                <p class="password" role="status">
                                    {t(lang, Key::PasswordOnce)} " " <code>{password}</code>
                                </p>
                            }.into_any()),
                            Some(Err(error)) => Some(view! { <p role="alert">{error.message(lang)}</p> }.into_any()),
                            None => None,
                        };
                        let failed = move || {
                            [update.value().get().and_then(Result::err), membership.value().get().and_then(Result::err)]
                                .into_iter()
                                .flatten()
                                .next()
                                .map(|error| view! { <p role="alert">{error.message(lang)}</p> })
                        };
                        match data.await {
                            Ok(data) => view! {
                                <crate::ui::AdminNav lang />
                                <h1>{t(lang, Key::AdminAgents)}</h1>
                                {failed}
                                <AgentTable data=data.clone() update membership lang />
                                <ActionForm action=invite attr:class="invite">
                                    <h2>{t(lang, Key::InviteAgent)}</h2>
                                    <label>{t(lang, Key::Email)} <input type="email" name="email" required /></label>
                                    <label>{t(lang, Key::Name)} <input type="text" name="name" required maxlength="100" /></label>
                                    <label>
                                        {t(lang, Key::Site)}
                                        <select name="site">
                                            {data.sites.iter().map(|(id, name)| view! { <option value=id.0>{name.clone()}</option> }).collect_view()}
                                        </select>
                                    </label>
                                    <label><input type="checkbox" name="admin" value="true" /> " " {t(lang, Key::Administrator)}</label>
                                    <button type="submit">{t(lang, Key::Add)}</button>
                                </ActionForm>
                                {outcome}
                            }
                            .into_any(),
                            Err(error) => crate::ui::refusal([error], lang),
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
    }
}

/// One row per agent: role, limit, disabled, and a toggle per site.
#[component]
fn AgentTable(
    data: AgentsData,
    update: ServerAction<UpdateAgent>,
    membership: ServerAction<SetAgentSite>,
    lang: Lang,
) -> impl IntoView {
    let sites = data.sites;
    let me = data.me;
    view! {
        <table class="agents">
            <tbody>
                {data
                    .agents
                    .into_iter()
                    .map(|agent| {
                        let id = agent.id;
                        let email = agent.email.clone();
                        let toggles = sites
                            .iter()
                            .map(|(site, name)| {
                                let member = agent.sites.contains(site);
                                let label = if member { format!("✓ {name}") } else { name.clone() };
                                let site = *site;
                                view! {
                                    <ActionForm action=membership>
                                        <input type="hidden" name="id" value=id.0 />
                                        <input type="hidden" name="site" value=site.0 />
                                        <input type="hidden" name="member" value=(!member).to_string() />
                                        <button type="submit" class="secondary" aria-pressed=member.to_string()>{label}</button>
                                    </ActionForm>
                                }
                            })
                            .collect::<Vec<_>>();
                        view! {
                            <tr data-agent=email>
                                <td>{agent.name}<br /><small>{agent.email}</small></td>
                                <td>
                                    <ActionForm action=update attr:class="agent-settings">
                                        <input type="hidden" name="id" value=id.0 />
                                        <label>{t(lang, Key::MaxChats)} <input type="number" name="max_chats" min="1" max=MAX_CHATS value=agent.max_chats /></label>
                                        // Administrators cannot demote or disable themselves.
                                        {(id == me).then(|| view! { <input type="hidden" name="admin" value="true" /> })}
                                        <label><input type="checkbox" name="admin" value="true" checked=agent.admin disabled=id == me /> " " {t(lang, Key::Administrator)}</label>
                                        <label><input type="checkbox" name="disabled" value="true" checked=agent.disabled disabled=id == me /> " " {t(lang, Key::Disabled)}</label>
                                        <button type="submit" class="secondary">{t(lang, Key::Save)}</button>
                                    </ActionForm>
                                </td>
                                <td class="memberships">{toggles}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
