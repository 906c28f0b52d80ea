//! Handing a conversation over: to a colleague of its site (their status beside the name) or
//! to a team, with a note for whoever takes it.

use crate::api::inbox::{Colleague, TeamChoice};
use crate::i18n::{Key, Lang, t};
use crate::live::Live;
use leptos::prelude::*;
use protocol::{AgentFrame, AgentId, AgentStatus, Assign, ConversationId, SiteId, TeamId};

/// Moves the conversation to a colleague of its site; their status is shown next to the name.
#[component]
pub(super) fn TransferPicker(
    live: Live,
    id: ConversationId,
    site: SiteId,
    assignee: Option<AgentId>,
    colleagues: StoredValue<Vec<Colleague>>,
    teams: StoredValue<Vec<TeamChoice>>,
    lang: Lang,
    choice: RwSignal<String>,
) -> impl IntoView {
    let site_teams: Vec<TeamChoice> =
        teams.with_value(|all| all.iter().filter(|t| t.site_id == site).cloned().collect());
    let candidates: Vec<Colleague> = colleagues.with_value(|all| {
        all.iter()
            .filter(|c| c.site_ids.contains(&site) && Some(c.id) != assignee)
            .cloned()
            .collect()
    });
    if candidates.is_empty() && site_teams.is_empty() {
        return ().into_any();
    }
    let note = RwSignal::new(String::new());
    let transfer = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        // "team:ID" routes to a team, a bare id to an agent.
        let picked = choice.get_untracked();
        let (to, team) = match picked.strip_prefix("team:") {
            Some(team) => (None, team.parse::<TeamId>().ok()),
            None => (picked.parse::<AgentId>().ok(), None),
        };
        if to.is_some() || team.is_some() {
            let words = note.get_untracked();
            live.send(AgentFrame::Assign(Assign {
                conversation_id: id,
                to,
                team,
                note: (!words.trim().is_empty()).then_some(words),
            }));
            choice.set(String::new());
            note.set(String::new());
        }
    };
    view! {
        <form class="transfer" on:submit=transfer>
            <select
                aria-label=t(lang, Key::TransferTo)
                prop:value=move || choice.get()
                on:change=move |event| choice.set(event_target_value(&event))
            >
                <option value="">{t(lang, Key::TransferTo)} "…"</option>
                {candidates
                    .into_iter()
                    .map(|c| {
                        let status = move || {
                            let key = match live.desk.with(|d| d.agents.get(&c.id).copied()) {
                                Some(AgentStatus::Online) => Key::Online,
                                Some(AgentStatus::Away) => Key::Away,
                                _ => Key::Offline,
                            };
                            t(lang, key)
                        };
                        view! { <option value=c.id.0>{c.name} " (" {status} ")"</option> }
                    })
                    .collect_view()}
                {site_teams
                    .into_iter()
                    .map(|team| {
                        view! {
                            <option value=format!("team:{}", team.id)>
                                {t(lang, Key::Team)} ": " {team.name}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            <input
                type="text"
                maxlength="1000"
                aria-label=t(lang, Key::TransferNote)
                placeholder=t(lang, Key::TransferNote)
                prop:value=move || note.get()
                on:input=move |event| note.set(event_target_value(&event))
            />
            <button type="submit" class="secondary" disabled=move || choice.get().is_empty()>
                {t(lang, Key::Transfer)}
            </button>
        </form>
    }
    .into_any()
}
