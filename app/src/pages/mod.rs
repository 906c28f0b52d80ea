//! Console pages, one module per route.

pub mod canned;
pub mod inbox;
pub mod login;

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
    view! {
        <main class="page page-narrow">
            <h1>"Page not found"</h1>
            <a href="/login">"Back to the console"</a>
        </main>
    }
}
