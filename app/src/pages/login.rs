//! The sign-in page: e-mail, password and the connection mode (automatic or HTTP only).

use crate::auth::{ConnectionMode, Login, remembered_mode};
use leptos::prelude::*;

/// Sign-in form. Works as a plain HTML form before hydration; after it, errors show inline.
#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let show_password = RwSignal::new(false);
    // Effects run only in the browser, so this marks the moment hydration finished.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let remembered = Resource::new(
        || (),
        |_| async { remembered_mode().await.unwrap_or_default() },
    );
    let error = move || {
        login
            .value()
            .get()
            .and_then(Result::err)
            .map(|error| view! { <p class="form-error" role="alert">{error.message()}</p> })
    };

    view! {
        <main class="page page-narrow login" data-hydrated=move || hydrated.get().then_some("true")>
            <h1>"Kefu"</h1>
            <p class="subtitle">"Sign in to answer your visitors."</p>
            <ActionForm action=login attr:class="stack">
                <label>
                    "E-mail"
                    <input type="email" name="email" required autocomplete="username" />
                </label>
                <label>
                    "Password"
                    <span class="password-row">
                        <input
                            type=move || if show_password.get() { "text" } else { "password" }
                            name="password"
                            required
                            autocomplete="current-password"
                        />
                        <button
                            type="button"
                            class="secondary"
                            aria-label="Show password"
                            on:click=move |_| show_password.update(|shown| *shown = !*shown)
                        >
                            {move || if show_password.get() { "Hide" } else { "Show" }}
                        </button>
                    </span>
                </label>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let mode = remembered.await;
                        view! { <ModeChoice mode /> }
                    })}
                </Suspense>
                <button type="submit" disabled=move || login.pending().get()>
                    "Sign in"
                </button>
            </ActionForm>
            {error}
        </main>
    }
}

/// The connection-mode radio buttons, pre-selected with the mode this browser remembered.
#[component]
fn ModeChoice(mode: ConnectionMode) -> impl IntoView {
    view! {
        <fieldset class="mode">
            <legend>"Connection"</legend>
            <label>
                <input
                    type="radio"
                    name="mode"
                    value=ConnectionMode::Auto.as_str()
                    checked=mode == ConnectionMode::Auto
                />
                "Automatic (WebSocket, falls back to HTTP)"
            </label>
            <label>
                <input
                    type="radio"
                    name="mode"
                    value=ConnectionMode::Http.as_str()
                    checked=mode == ConnectionMode::Http
                />
                "HTTP only (for networks that block WebSockets)"
            </label>
        </fieldset>
    }
}
