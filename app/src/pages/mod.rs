//! Console pages, one module per route.

pub mod admin;
pub mod canned;
pub mod conversation;
pub mod history;
pub mod inbox;
pub mod leave;
pub mod login;
pub mod reports;
pub mod visitors;

use crate::auth::ConsoleError;

/// Milliseconds in a day: date filters, report ranges, ban expiries and retention count in it.
pub const DAY_MS: i64 = 86_400_000;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use leptos_router::components::Redirect;

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

/// Shown for any path the router does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    let lang = Resource::new(
        || (),
        |_| async { crate::i18n::console_lang().await.unwrap_or_default() },
    );
    view! {
        <main class="page page-narrow">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let lang = lang.await;
                    view! {
                        <leptos_meta::Html {..} lang=lang.tag() />
                        <h1>{t(lang, Key::PageNotFound)}</h1>
                        <a href="/login">{t(lang, Key::BackToConsole)}</a>
                    }
                })}
            </Suspense>
        </main>
    }
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
