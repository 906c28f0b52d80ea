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
    let path = leptos_router::hooks::use_location().pathname;
    let link = move |href: &'static str, key: Key| {
        let current = move || (path.get() == href).then_some("page");
        view! { <a href=href aria-current=current>{t(lang, key)}</a> }
    };
    view! {
        <nav class="admin-nav" aria-label=t(lang, Key::Settings)>
            {link("/admin/sites", Key::AdminSites)}
            {link("/admin/agents", Key::AdminAgents)}
            {link("/admin/teams", Key::AdminTeams)}
            {link("/admin/api", Key::ApiTokens)}
            {link("/admin/mail", Key::AdminMail)}
            {link("/admin/translation", Key::AdminTranslation)}
            {link("/admin/upkeep", Key::AdminUpkeep)}
        </nav>
    }
}
