//! Administration, for agents with the admin role: sites, agents, teams, API keys, mail,
//! translation, and upkeep (bans, webhooks, data retention). Every server function under here
//! starts with `require_admin`, so an agent without the role is refused whether they open a
//! page or call an endpoint.

pub mod agents;
pub mod api;
pub mod mail;
pub mod sites;
pub mod teams;
pub mod translation;
pub mod upkeep;

use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;

/// The links between the admin pages, under the console header.
#[component]
pub fn AdminNav(lang: Lang) -> impl IntoView {
    view! {
        <nav class="admin-nav">
            <a href="/admin/sites">{t(lang, Key::AdminSites)}</a>
            <a href="/admin/agents">{t(lang, Key::AdminAgents)}</a>
            <a href="/admin/teams">{t(lang, Key::AdminTeams)}</a>
            <a href="/admin/api">{t(lang, Key::ApiTokens)}</a>
            <a href="/admin/mail">{t(lang, Key::AdminMail)}</a>
            <a href="/admin/translation">{t(lang, Key::AdminTranslation)}</a>
            <a href="/admin/upkeep">{t(lang, Key::AdminUpkeep)}</a>
        </nav>
    }
}
