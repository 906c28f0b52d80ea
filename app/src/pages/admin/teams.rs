//! `/admin/teams`: groups of a site's agents. A conversation transferred to a team waits for
//! that team's agents only; deleting a team gives its waiting conversations back to everyone
//! on the site.

use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use protocol::{AgentId, SiteId, TeamId};
use serde::{Deserialize, Serialize};

/// Longest team name, in characters.
pub const MAX_NAME: usize = 100;

/// A team as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRow {
    /// Its id.
    pub id: TeamId,
    /// Its site's name.
    pub site: String,
    /// Its name.
    pub name: String,
    /// Its agents: id and display name.
    pub members: Vec<(AgentId, String)>,
    /// The site's other agents, who could join.
    pub others: Vec<(AgentId, String)>,
}

#[cfg(feature = "ssr")]
mod ssr {
    //! Finding a team and checking who may join it.

    use crate::context;
    use crate::error::ConsoleError;
    use protocol::{SiteId, TeamId};

    /// The team `id`, or `NotFound`.
    pub async fn team(id: TeamId) -> Result<store::Team, ConsoleError> {
        let store = context::store()?;
        let sites: Vec<SiteId> = store.all_sites().await?.iter().map(|s| s.id).collect();
        store
            .site_teams(&sites)
            .await?
            .into_iter()
            .find(|team| team.id == id)
            .ok_or(ConsoleError::NotFound)
    }
}

/// Every site's teams with their members.
#[server(endpoint = "admin/teams")]
pub async fn admin_teams() -> Result<Vec<TeamRow>, ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    let store = context::store()?;
    let sites = store.all_sites().await?;
    let ids: Vec<SiteId> = sites.iter().map(|s| s.id).collect();
    let mut rows = Vec::new();
    for team in store.site_teams(&ids).await? {
        let members = store.team_members(team.id).await?;
        let agents = store.site_agents(&[team.site_id]).await?;
        let (inside, outside): (Vec<_>, Vec<_>) =
            agents.into_iter().partition(|a| members.contains(&a.id));
        let named = |agents: Vec<store::Agent>| {
            agents
                .into_iter()
                .map(|a| (a.id, a.display_name))
                .collect::<Vec<_>>()
        };
        rows.push(TeamRow {
            id: team.id,
            site: sites
                .iter()
                .find(|s| s.id == team.site_id)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            name: team.name,
            members: named(inside),
            others: named(outside),
        });
    }
    Ok(rows)
}

/// Adds a team called `name` to `site`.
#[server(endpoint = "admin/teams/create")]
pub async fn create_team(site: SiteId, name: String) -> Result<(), ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ConsoleError::Invalid);
    }
    match context::store()?.create_team(site, name).await {
        Ok(_) => Ok(()),
        Err(store::Error::NotFound) => Err(ConsoleError::NotFound),
        Err(error) => Err(crate::error::internal(error)),
    }
}

/// Puts an agent of the team's site into the team.
#[server(endpoint = "admin/teams/add")]
pub async fn join_team(team: TeamId, agent: AgentId) -> Result<(), ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    let team = self::ssr::team(team).await?;
    let store = context::store()?;
    let on_site = store
        .site_agents(&[team.site_id])
        .await?
        .iter()
        .any(|a| a.id == agent);
    if !on_site {
        return Err(ConsoleError::NotFound);
    }
    store
        .add_team_member(team.id, agent)
        .await
        .map_err(ConsoleError::from)
}

/// Takes an agent out of a team.
#[server(endpoint = "admin/teams/remove")]
pub async fn leave_team(team: TeamId, agent: AgentId) -> Result<(), ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    context::store()?
        .remove_team_member(team, agent)
        .await
        .map_err(ConsoleError::from)
}

/// Deletes a team; conversations waiting for it go back to every agent of the site.
#[server(endpoint = "admin/teams/delete")]
pub async fn delete_team(team: TeamId) -> Result<(), ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    match context::store()?.delete_team(team).await {
        Ok(()) => Ok(()),
        Err(store::Error::NotFound) => Err(ConsoleError::NotFound),
        Err(error) => Err(crate::error::internal(error)),
    }
}

/// `/admin/teams`.
#[component]
pub fn AdminTeamsPage() -> impl IntoView {
    let create = ServerAction::<CreateTeam>::new();
    let join = ServerAction::<JoinTeam>::new();
    let leave = ServerAction::<LeaveTeam>::new();
    let delete = ServerAction::<DeleteTeam>::new();
    let shell = crate::shell::use_shell();
    let teams = Resource::new(
        move || {
            (
                create.version().get(),
                join.version().get(),
                leave.version().get(),
                delete.version().get(),
            )
        },
        |_| admin_teams(),
    );
    let sites = Resource::new(|| (), |_| crate::auth::every_site());
    view! {
        <crate::ui::Page class="admin">
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        let failed = move || {
                            [
                                create.value().get().and_then(Result::err),
                                join.value().get().and_then(Result::err),
                                leave.value().get().and_then(Result::err),
                                delete.value().get().and_then(Result::err),
                            ]
                            .into_iter()
                            .flatten()
                            .next()
                            .map(|error| view! { <p role="alert">{error.message(lang)}</p> })
                        };
                        match (teams.await, sites.await) {
                            (Ok(teams), Ok(sites)) => view! {
                                <crate::ui::AdminNav lang />
                                <h1>{t(lang, Key::AdminTeams)}</h1>
                                {failed}
                                {teams
                                    .into_iter()
                                    .map(|team| view! { <TeamCard team join leave delete lang /> })
                                    .collect_view()}
                                <ActionForm action=create attr:class="new-team">
                                    <h2>{t(lang, Key::NewTeam)}</h2>
                                    <label>
                                        {t(lang, Key::Site)}
                                        <select name="site">
                                            {sites
                                                .into_iter()
                                                .map(|site| view! { <option value=site.id.0>{site.name}</option> })
                                                .collect_view()}
                                        </select>
                                    </label>
                                    <label>{t(lang, Key::Title)} <input type="text" name="name" required maxlength=MAX_NAME /></label>
                                    <button type="submit">{t(lang, Key::Create)}</button>
                                </ActionForm>
                            }
                            .into_any(),
                            (first, second) => crate::ui::refusal(first.err().into_iter().chain(second.err()), lang),
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
    }
}

/// One team: its members (each removable), a list to add one of the site's other agents, and
/// a button that deletes the team.
#[component]
fn TeamCard(
    team: TeamRow,
    join: ServerAction<JoinTeam>,
    leave: ServerAction<LeaveTeam>,
    delete: ServerAction<DeleteTeam>,
    lang: Lang,
) -> impl IntoView {
    let id = team.id;
    let has_others = !team.others.is_empty();
    view! {
        <section class="team" data-team=id.0>
            <h2>{team.name} " " <small>{team.site}</small></h2>
            <ul class="members">
                {team
                    .members
                    .into_iter()
                    .map(|(agent, name)| view! {
                        <li data-agent=agent.0>
                            {name} " "
                            <ActionForm action=leave>
                                <input type="hidden" name="team" value=id.0 />
                                <input type="hidden" name="agent" value=agent.0 />
                                <crate::ui::ConfirmButton label=t(lang, Key::Remove) lang />
                            </ActionForm>
                        </li>
                    })
                    .collect_view()}
            </ul>
            {has_others.then(|| view! {
                <ActionForm action=join attr:class="add-member">
                    <input type="hidden" name="team" value=id.0 />
                    <select name="agent">
                        {team
                            .others
                            .into_iter()
                            .map(|(agent, name)| view! { <option value=agent.0>{name}</option> })
                            .collect_view()}
                    </select>
                    <button type="submit">{t(lang, Key::Add)}</button>
                </ActionForm>
            })}
            <ActionForm action=delete>
                <input type="hidden" name="team" value=id.0 />
                <crate::ui::ConfirmButton label=t(lang, Key::Delete) lang />
            </ActionForm>
        </section>
    }
}
