//! Console pages, one module per route.

pub mod admin;
pub mod canned;
pub mod history;
pub mod inbox;
pub mod leave;
pub mod login;
pub mod reports;

use crate::i18n::{Key, t};
use leptos::prelude::*;

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
        |_| async { crate::language::console_lang().await.unwrap_or_default() },
    );
    view! {
        <crate::ui::Page class="page-narrow">
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
        </crate::ui::Page>
    }
}
