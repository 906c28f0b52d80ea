//! Which language the console speaks to this agent, and switching it: the agent's profile
//! when signed in, else this browser's cookie, else its `Accept-Language` (the words
//! themselves are in `i18n`).

use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    crate::context,
    crate::i18n::{LANG_COOKIE, accepted_language},
};

/// The language to render in (see the module header).
#[server(endpoint = "lang")]
pub async fn console_lang() -> Result<Lang, ConsoleError> {
    if let Ok(agent) = context::require_agent().await {
        return Ok(Lang::from_tag(&agent.language));
    }
    if let Some(chosen) = context::cookie(LANG_COOKIE).await {
        return Ok(Lang::from_tag(&chosen));
    }
    let headers: axum::http::HeaderMap = leptos_axum::extract().await.unwrap_or_default();
    Ok(accepted_language(&headers))
}

/// Switches the console's language: the signed-in agent's profile, and this browser's cookie.
/// Answers the language now in force, which the console then draws in.
#[server(endpoint = "set_language")]
pub async fn set_language(lang: String) -> Result<Lang, ConsoleError> {
    let lang = Lang::from_tag(&lang);
    if let Ok(agent) = context::require_agent().await {
        context::store()?
            .set_agent_language(agent.id, lang.tag())
            .await?;
    }
    context::set_cookie(context::cookie_policy().readable(LANG_COOKIE, lang.tag().to_string()));
    Ok(lang)
}

/// A button switching to the other language; the page re-renders through `refresh`.
#[component]
pub fn LanguageSwitch(lang: Lang, action: ServerAction<SetLanguage>) -> impl IntoView {
    let other = lang.other();
    view! {
        <ActionForm action attr:class="language">
            <input type="hidden" name="lang" value=other.tag() />
            <button type="submit" class="secondary" lang=other.tag()>
                {t(other, Key::LanguageName)}
            </button>
        </ActionForm>
    }
}
