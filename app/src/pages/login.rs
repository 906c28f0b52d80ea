//! The sign-in page: e-mail, password and the connection mode (automatic or HTTP only), in the
//! browser's language.

use crate::auth::{ConnectionMode, Login, remembered_mode};
use crate::i18n::{Key, Lang, t};
use crate::language::{LanguageSwitch, SetLanguage, console_lang};
use leptos::prelude::*;

/// Sign-in form. Works as a plain HTML form before hydration; after it, errors show inline.
#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let switch = ServerAction::<SetLanguage>::new();
    let remembered = Resource::new(
        || (),
        |_| async { remembered_mode().await.unwrap_or_default() },
    );
    let lang = Resource::new(
        move || switch.version().get(),
        |_| async { console_lang().await.unwrap_or_default() },
    );
    view! {
        <crate::ui::Page class="page-narrow login">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let (lang, mode) = (lang.await, remembered.await);
                    view! { <LoginForm lang mode login switch /> }
                })}
            </Suspense>
        </crate::ui::Page>
    }
}

/// The form itself, in `lang`, with the connection mode this browser remembered.
#[component]
fn LoginForm(
    lang: Lang,
    mode: ConnectionMode,
    login: ServerAction<Login>,
    switch: ServerAction<SetLanguage>,
) -> impl IntoView {
    let show_password = RwSignal::new(false);
    let error = move || {
        login
            .value()
            .get()
            .and_then(Result::err)
            .map(|error| view! { <p class="form-error" role="alert">{error.message(lang)}</p> })
    };
    view! {
        <leptos_meta::Html {..} lang=lang.tag() />
        <h1>"Kefu"</h1>
        <p class="subtitle">{t(lang, Key::Subtitle)}</p>
        <ActionForm action=login attr:class="stack">
            <label>
                {t(lang, Key::Email)}
                <input type="email" name="email" required autocomplete="username" />
            </label>
            <label>
                {t(lang, Key::Password)}
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
                        aria-label=t(lang, Key::ShowPassword)
                        on:click=move |_| show_password.update(|shown| *shown = !*shown)
                    >
                        {move || t(lang, if show_password.get() { Key::Hide } else { Key::Show })}
                    </button>
                </span>
            </label>
            <fieldset class="mode">
                <legend>{t(lang, Key::Connection)}</legend>
                <label>
                    <input
                        type="radio"
                        name="mode"
                        value=ConnectionMode::Auto.as_str()
                        checked=mode == ConnectionMode::Auto
                    />
                    {t(lang, Key::ModeAuto)}
                </label>
                <label>
                    <input
                        type="radio"
                        name="mode"
                        value=ConnectionMode::Http.as_str()
                        checked=mode == ConnectionMode::Http
                    />
                    {t(lang, Key::ModeHttp)}
                </label>
            </fieldset>
            <button type="submit" disabled=move || login.pending().get()>
                {t(lang, Key::SignIn)}
            </button>
        </ActionForm>
        {error}
        <LanguageSwitch lang action=switch />
    }
}
