//! `/admin/sites`: administrators add and edit sites — name, the origins whose pages may open
//! the widget, and the widget's settings — and copy each site's embed snippet.
//!
//! Every server function here starts with `require_admin`: an agent without the admin role
//! gets `Forbidden`, whether through the page or by calling the endpoint directly. Widget
//! settings are checked by the real-time side, which owns their shape (`Hub`).

use crate::auth::ConsoleError;
use crate::i18n::{Key, Lang, console_lang, t};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Longest site name, in characters.
pub const MAX_NAME: usize = 100;
/// Most allowed origins per site.
pub const MAX_ORIGINS: usize = 50;
/// Longest widget settings, in bytes of JSON.
pub const MAX_SETTINGS: usize = 16_384;

/// A site as the admin page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSite {
    /// Its id.
    pub id: i64,
    /// The key in the snippet's `data-site`.
    pub key: String,
    /// Its name.
    pub name: String,
    /// One origin per line.
    pub origins: String,
    /// The widget settings, as pretty JSON.
    pub settings: String,
    /// The `<script>` line to paste into the site's pages.
    pub snippet: String,
}

#[cfg(feature = "ssr")]
mod ssr {
    //! Reading the admin's form fields.

    use crate::auth::ConsoleError;

    /// The origins typed one per line: each `scheme://host[:port]`, without a path.
    pub fn origins(text: &str) -> Result<Vec<String>, ConsoleError> {
        let origins: Vec<String> = text
            .lines()
            .map(|line| line.trim().trim_end_matches('/').to_owned())
            .filter(|line| !line.is_empty())
            .collect();
        let valid = |origin: &String| {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            rest.is_some_and(|host| {
                !host.is_empty()
                    && host.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                    })
            })
        };
        if origins.len() > super::MAX_ORIGINS || !origins.iter().all(valid) {
            return Err(ConsoleError::Invalid);
        }
        Ok(origins)
    }

    /// The site's name, trimmed: 1 to 100 characters.
    pub fn name(text: &str) -> Result<String, ConsoleError> {
        let name = text.trim();
        if name.is_empty() || name.chars().count() > super::MAX_NAME {
            return Err(ConsoleError::Invalid);
        }
        Ok(name.to_owned())
    }

    /// The widget settings typed as JSON, checked and normalised by the real-time side.
    pub fn settings(text: &str) -> Result<serde_json::Value, ConsoleError> {
        let text = if text.trim().is_empty() { "{}" } else { text };
        if text.len() > super::MAX_SETTINGS {
            return Err(ConsoleError::Invalid);
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| ConsoleError::Invalid)?;
        crate::auth::ssr::hub()?
            .check_widget_settings(value)
            .map_err(|_| ConsoleError::Invalid)
    }

    /// Where this Kefu is reached, as the admin's browser reached it (behind a proxy, its
    /// `X-Forwarded-Proto` and `Host`): the start of the snippet's URL.
    pub async fn public_base() -> String {
        let headers: axum::http::HeaderMap = leptos_axum::extract().await.unwrap_or_default();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let scheme = header("x-forwarded-proto").unwrap_or_else(|| "http".to_owned());
        let host = header("host").unwrap_or_else(|| "localhost".to_owned());
        format!("{scheme}://{host}")
    }
}

/// Every site, with its snippet.
#[server(endpoint = "admin/sites")]
pub async fn admin_sites() -> Result<Vec<AdminSite>, ConsoleError> {
    use crate::auth::ssr;
    ssr::require_admin().await?;
    let base = self::ssr::public_base().await;
    let sites = ssr::store()?.all_sites().await.map_err(ssr::internal)?;
    Ok(sites
        .into_iter()
        .map(|site| AdminSite {
            snippet: format!(
                "<script src=\"{base}/widget/widget.js\" data-site=\"{}\" async></script>",
                site.public_key
            ),
            id: site.id,
            key: site.public_key,
            name: site.name,
            origins: site.allowed_origins.join("\n"),
            settings: serde_json::to_string_pretty(&site.widget_settings).unwrap_or_default(),
        })
        .collect())
}

/// Adds a site with a new random key; the admin who adds it becomes one of its agents.
#[server(endpoint = "admin/sites/create")]
pub async fn create_site(
    name: String,
    origins: String,
    #[server(default)] settings: String,
) -> Result<(), ConsoleError> {
    use crate::auth::ssr;
    let admin = ssr::require_admin().await?;
    let name = self::ssr::name(&name)?;
    let allowed_origins = self::ssr::origins(&origins)?;
    let widget_settings = self::ssr::settings(&settings)?;
    let store = ssr::store()?;
    let key: String = ssr::new_token().chars().take(16).collect();
    let site = store
        .create_site(store::NewSite {
            public_key: key,
            name,
            allowed_origins,
            widget_settings,
            created_at: ssr::now_ms(),
        })
        .await
        .map_err(ssr::internal)?;
    store
        .add_agent_to_site(site.id, admin.id)
        .await
        .map_err(ssr::internal)
}

/// Replaces a site's name, origins and widget settings.
#[server(endpoint = "admin/sites/update")]
pub async fn update_site(
    id: i64,
    name: String,
    origins: String,
    settings: String,
) -> Result<(), ConsoleError> {
    use crate::auth::ssr;
    ssr::require_admin().await?;
    let name = self::ssr::name(&name)?;
    let origins = self::ssr::origins(&origins)?;
    let settings = self::ssr::settings(&settings)?;
    match ssr::store()?
        .update_site(id, &name, &origins, &settings)
        .await
    {
        Ok(_) => Ok(()),
        Err(store::Error::NotFound) => Err(ConsoleError::NotFound),
        Err(error) => Err(ssr::internal(error)),
    }
}

/// `/admin/sites`.
#[component]
pub fn AdminSitesPage() -> impl IntoView {
    let create = ServerAction::<CreateSite>::new();
    let update = ServerAction::<UpdateSite>::new();
    let lang = Resource::new(
        || (),
        |_| async { console_lang().await.unwrap_or_default() },
    );
    let sites = Resource::new(
        move || (create.version().get(), update.version().get()),
        |_| admin_sites(),
    );
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <main class="page admin" data-hydrated=move || hydrated.get().then_some("true")>
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || Suspend::new(async move {
                    let lang = lang.await;
                    let failed = move || {
                        [create.value().get().and_then(Result::err), update.value().get().and_then(Result::err)]
                            .into_iter()
                            .flatten()
                            .next()
                            .map(|error| view! { <p role="alert">{error.message(lang)}</p> })
                    };
                    match sites.await {
                        Ok(sites) => view! {
                            <super::AdminNav lang />
                            <h1>{t(lang, Key::AdminSites)}</h1>
                            {failed}
                            {sites.into_iter().map(|site| view! { <SiteForm site update lang /> }).collect_view()}
                            <ActionForm action=create attr:class="site-form new-site">
                                <h2>{t(lang, Key::NewSite)}</h2>
                                <label>{t(lang, Key::Name)} <input type="text" name="name" required maxlength=MAX_NAME /></label>
                                <label>{t(lang, Key::AllowedOrigins)} <textarea name="origins" placeholder="https://shop.example"></textarea></label>
                                <label>{t(lang, Key::WidgetSettings)} <textarea name="settings" placeholder=r##"{"color": "#2563eb"}"##></textarea></label>
                                <button type="submit">{t(lang, Key::Create)}</button>
                            </ActionForm>
                        }
                        .into_any(),
                        Err(error) => crate::pages::refusal([error], lang),
                    }
                })}
            </Suspense>
        </main>
    }
}

/// One site: its snippet to copy, and the form that edits it.
#[component]
fn SiteForm(site: AdminSite, update: ServerAction<UpdateSite>, lang: Lang) -> impl IntoView {
    let copied = RwSignal::new(false);
    let snippet = site.snippet.clone();
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            copy_text(&snippet);
            copied.set(true);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &snippet;
    };
    view! {
        <section class="site-form" data-site=site.key.clone()>
            <h2>{site.name.clone()} " " <code class="key">{site.key.clone()}</code></h2>
            <label>
                {t(lang, Key::EmbedSnippet)}
                <textarea class="snippet" readonly rows="2">{site.snippet.clone()}</textarea>
            </label>
            <button type="button" class="secondary" on:click=copy>
                {move || if copied.get() { t(lang, Key::Copied) } else { t(lang, Key::Copy) }}
            </button>
            <ActionForm action=update>
                <input type="hidden" name="id" value=site.id />
                <label>{t(lang, Key::Name)} <input type="text" name="name" value=site.name required maxlength=MAX_NAME /></label>
                <label>{t(lang, Key::AllowedOrigins)} <textarea name="origins">{site.origins}</textarea></label>
                <label>{t(lang, Key::WidgetSettings)} <textarea name="settings" rows="6">{site.settings}</textarea></label>
                <button type="submit">{t(lang, Key::Save)}</button>
            </ActionForm>
        </section>
    }
}

/// Puts `text` on the clipboard (`navigator.clipboard.writeText`, looked up at run time so no
/// unstable web-sys API is needed). Where the browser refuses, the snippet stays selectable.
#[cfg(feature = "hydrate")]
fn copy_text(text: &str) {
    use wasm_bindgen::JsCast;
    let Some(window) = web_sys::window() else {
        return;
    };
    let navigator: wasm_bindgen::JsValue = window.navigator().into();
    let Ok(clipboard) = js_sys::Reflect::get(&navigator, &"clipboard".into()) else {
        return;
    };
    let write = js_sys::Reflect::get(&clipboard, &"writeText".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let Some(write) = write {
        let _ = write.call1(&clipboard, &text.into());
    }
}
