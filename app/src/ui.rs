//! Pieces every page shares: the page's frame, what a page shows when its data could not be
//! loaded, the two-step button of destructive forms, and the navigation between admin pages.

use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use leptos_router::components::Redirect;

/// A console page's `<main>`: the `page` class plus the page's own `class`, and
/// `data-hydrated="true"` once the page is live in the browser (effects run only there), which
/// tests and agents' own scripts wait for before they act.
#[component]
pub fn Page(#[prop(optional)] class: &'static str, children: Children) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let class = if class.is_empty() {
        "page".to_owned()
    } else {
        format!("page {class}")
    };
    view! {
        <main class=class data-hydrated=move || hydrated.get().then_some("true")>
            {children()}
        </main>
    }
}

/// What a page shows when its data could not be loaded: the sign-in page when any of the
/// `errors` says the session is gone, else the first error, translated.
pub fn refusal(errors: impl IntoIterator<Item = ConsoleError>, lang: Lang) -> AnyView {
    let errors: Vec<ConsoleError> = errors.into_iter().collect();
    if errors.contains(&ConsoleError::Unauthorized) {
        return view! { <Redirect path="/login" /> }.into_any();
    }
    let message = errors
        .first()
        .copied()
        .unwrap_or(ConsoleError::Internal)
        .message(lang);
    view! { <p role="alert">{message}</p> }.into_any()
}

/// A destructive form's submit button, in two steps: the first click asks, the second (on
/// "Yes, `label`") submits; Cancel steps back. Nothing is deleted by one slip of the mouse.
#[component]
pub fn ConfirmButton(label: &'static str, lang: Lang) -> impl IntoView {
    let armed = RwSignal::new(false);
    move || {
        if armed.get() {
            view! {
                <span class="confirm" role="group">
                    <span>{t(lang, Key::AreYouSure)}</span>
                    <button type="submit" class="danger">{t(lang, Key::Yes)} ", " {label}</button>
                    <button type="button" class="secondary" on:click=move |_| armed.set(false)>
                        {t(lang, Key::Cancel)}
                    </button>
                </span>
            }
            .into_any()
        } else {
            view! {
                <button type="button" class="secondary" on:click=move |_| armed.set(true)>
                    {label}
                </button>
            }
            .into_any()
        }
    }
}

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
