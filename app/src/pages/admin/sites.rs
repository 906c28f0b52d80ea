//! `/admin/sites`: administrators add and edit sites — name, the origins whose pages may open
//! the widget, and the widget's look and behaviour (colour, corner, greeting, pre-chat form,
//! sneak peek, files, business hours) as plain form fields — and copy each site's snippet.
//!
//! Every server function here starts with `require_admin`: an agent without the admin role
//! gets `Forbidden`, whether through the page or by calling the endpoint directly. Widget
//! settings are checked by the real-time side, which owns their shape (`Hub`).

use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use protocol::SiteId;
use serde::{Deserialize, Serialize};

/// Longest site name, in characters.
pub const MAX_NAME: usize = 100;
/// Most allowed origins per site.
pub const MAX_ORIGINS: usize = 50;
/// The weekdays of the business-hours fields, Monday first, as the settings name them.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One MiB: files sizes are entered in MiB.
const MIB: u64 = 1024 * 1024;

/// The widget's look and behaviour as the site form edits it, one input per field. The
/// real-time side owns the stored shape and checks it (`Hub::check_widget_settings`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookForm {
    /// Launcher and header colour, `#rrggbb` from the colour picker.
    pub color: String,
    /// The bottom corner: `right` or `left`.
    pub position: String,
    /// The panel's greeting; empty for the widget's own, in the visitor's language.
    #[serde(default)]
    pub greeting: String,
    /// Ask for name and e-mail before the first message.
    #[serde(default)]
    pub prechat: bool,
    /// Agents see what visitors type before they send it.
    #[serde(default)]
    pub sneak_peek: bool,
    /// The largest file visitors and agents may send, in MiB.
    pub max_file_mib: u64,
    /// The media types accepted in chats (none: no files).
    #[serde(default)]
    pub types: Vec<String>,
    /// The IANA time zone of the business hours; empty for none (chat whenever an agent is
    /// online).
    #[serde(default)]
    pub time_zone: String,
    /// Opening spans per weekday, Monday first (`09:00-12:00,13:30-18:00`); empty: closed.
    #[serde(default)]
    pub hours: Vec<String>,
    /// Translate between agents and visitors automatically.
    #[serde(default)]
    pub translate: bool,
}

impl LookForm {
    /// The form's values for stored (normalised) settings.
    pub fn of(settings: &serde_json::Value) -> LookForm {
        let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
        let hours = &settings["business_hours"];
        // The colour picker takes only `#rrggbb`: `#0a7` becomes `#00aa77`.
        let color = text(&settings["color"]);
        let color = match color.strip_prefix('#') {
            Some(short) if short.len() == 3 => {
                format!(
                    "#{}",
                    short.chars().flat_map(|c| [c, c]).collect::<String>()
                )
            }
            _ => color,
        };
        LookForm {
            color,
            position: text(&settings["position"]),
            greeting: text(&settings["greeting"]),
            prechat: settings["prechat"].as_bool().unwrap_or_default(),
            sneak_peek: settings["sneak_peek"].as_bool().unwrap_or_default(),
            max_file_mib: settings["attachments"]["max_bytes"]
                .as_u64()
                .unwrap_or_default()
                .div_ceil(MIB),
            types: settings["attachments"]["types"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect(),
            time_zone: text(&hours["time_zone"]),
            hours: DAYS.iter().map(|day| text(&hours["days"][*day])).collect(),
            translate: settings["translate"].as_bool().unwrap_or_default(),
        }
    }

    /// The settings the form describes, for the real-time side to check. Hours without a time
    /// zone are refused (`BadHours`): they could not be placed in time.
    pub fn settings(&self) -> Result<serde_json::Value, ConsoleError> {
        let mut settings = serde_json::json!({
            "color": self.color.trim(),
            "position": self.position,
            "prechat": self.prechat,
            "sneak_peek": self.sneak_peek,
            "translate": self.translate,
            "attachments": {
                "max_bytes": self.max_file_mib.saturating_mul(MIB),
                "types": self.types,
            },
        });
        let greeting = self.greeting.trim();
        if !greeting.is_empty() {
            settings["greeting"] = greeting.into();
        }
        let days: serde_json::Map<String, serde_json::Value> = DAYS
            .iter()
            .zip(&self.hours)
            .map(|(day, spans)| (day.to_string(), spans.trim().replace(' ', "")))
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(day, spans)| (day, spans.into()))
            .collect();
        let zone = self.time_zone.trim();
        match (zone.is_empty(), days.is_empty()) {
            (true, true) => {}
            (true, false) => return Err(ConsoleError::BadHours),
            (false, _) => {
                settings["business_hours"] = serde_json::json!({ "time_zone": zone, "days": days });
            }
        }
        Ok(settings)
    }
}

/// A site as the admin page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSite {
    /// Its id.
    pub id: SiteId,
    /// The key in the snippet's `data-site`.
    pub key: String,
    /// Its name.
    pub name: String,
    /// One origin per line.
    pub origins: String,
    /// The widget's look and behaviour.
    pub look: LookForm,
    /// The `<script>` line to paste into the site's pages.
    pub snippet: String,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! Reading the admin's form fields.

    use crate::error::ConsoleError;

    /// The origins typed one per line: each `scheme://host[:port]`, without a path.
    pub fn origins(text: &str) -> Result<Vec<String>, ConsoleError> {
        let origins: Vec<String> = text
            .lines()
            .map(|line| line.trim().trim_end_matches('/').to_owned())
            .filter(|line| !line.is_empty())
            .collect();
        // `*` lets any page embed the widget (the demo site has it).
        let valid = |origin: &String| {
            if origin == "*" {
                return true;
            }
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

    /// The widget settings the form describes, checked and normalised by the real-time side.
    pub fn settings(look: &super::LookForm) -> Result<serde_json::Value, ConsoleError> {
        crate::context::hub()?.check_widget_settings(look.settings()?)
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
    use crate::context;
    context::require_admin().await?;
    let base = self::ssr::public_base().await;
    let hub = context::hub()?;
    let sites = context::store()?.all_sites().await?;
    Ok(sites
        .into_iter()
        .map(|site| AdminSite {
            // Stored settings are spelled out in full when read back through the check; ones
            // that no longer pass it (hand-edited) show as the defaults the widget uses.
            look: LookForm::of(
                &hub.check_widget_settings(site.widget_settings)
                    .or_else(|_| hub.check_widget_settings(serde_json::json!({})))
                    .unwrap_or_default(),
            ),
            snippet: format!(
                "<script src=\"{base}/widget/widget.js\" data-site=\"{}\" async></script>",
                site.public_key
            ),
            id: site.id,
            key: site.public_key,
            name: site.name,
            origins: site.allowed_origins.join("\n"),
        })
        .collect())
}

/// The look a new site starts with: the widget's defaults.
#[server(endpoint = "admin/sites/default_look")]
pub async fn default_look() -> Result<LookForm, ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    Ok(LookForm::of(
        &context::hub()?.check_widget_settings(serde_json::json!({}))?,
    ))
}

/// Adds a site with a new random key (and the widget's default look, unless `look` is
/// given); the admin who adds it becomes one of its agents.
#[server(endpoint = "admin/sites/create")]
pub async fn create_site(
    name: String,
    origins: String,
    #[server(default)] look: Option<LookForm>,
) -> Result<(), ConsoleError> {
    use crate::context;
    let admin = context::require_admin().await?;
    let name = self::ssr::name(&name)?;
    let allowed_origins = self::ssr::origins(&origins)?;
    let widget_settings = match look {
        Some(look) => self::ssr::settings(&look)?,
        None => context::hub()?.check_widget_settings(serde_json::json!({}))?,
    };
    let store = context::store()?;
    let key: String = crate::session::new_token().chars().take(16).collect();
    let site = store
        .create_site(store::NewSite {
            public_key: key,
            name,
            allowed_origins,
            widget_settings,
            created_at: crate::clock::now(),
        })
        .await?;
    store
        .add_agent_to_site(site.id, admin.id)
        .await
        .map_err(ConsoleError::from)
}

/// Replaces a site's name, origins and widget settings.
#[server(endpoint = "admin/sites/update")]
pub async fn update_site(
    id: SiteId,
    name: String,
    origins: String,
    look: LookForm,
) -> Result<(), ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    let name = self::ssr::name(&name)?;
    let origins = self::ssr::origins(&origins)?;
    let settings = self::ssr::settings(&look)?;
    match context::store()?
        .update_site(id, &name, &origins, &settings)
        .await
    {
        Ok(_) => {
            // Nodes keep a copy of each site for hellos: its new origins and look apply now.
            context::hub()?.copies_stale();
            Ok(())
        }
        Err(store::Error::NotFound) => Err(ConsoleError::NotFound),
        Err(error) => Err(crate::error::internal(error)),
    }
}

/// `/admin/sites`.
#[component]
pub fn AdminSitesPage() -> impl IntoView {
    let create = ServerAction::<CreateSite>::new();
    let update = ServerAction::<UpdateSite>::new();
    let shell = crate::shell::use_shell();
    let sites = Resource::new(
        move || (create.version().get(), update.version().get()),
        |_| admin_sites(),
    );
    let defaults = Resource::new(|| (), |_| default_look());
    view! {
        <crate::ui::Page class="admin">
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        let failed = move || {
                            [create.value().get().and_then(Result::err), update.value().get().and_then(Result::err)]
                                .into_iter()
                                .flatten()
                                .next()
                                .map(|error| view! { <p role="alert">{error.message(lang)}</p> })
                        };
                        match (sites.await, defaults.await) {
                            (Ok(sites), Ok(defaults)) => view! {
                                <crate::ui::AdminNav lang />
                                <h1>{t(lang, Key::AdminSites)}</h1>
                                {failed}
                                // One row per site; the newest opens (it was probably just made).
                                {
                                    let newest = sites.iter().map(|site| site.id).max();
                                    sites
                                        .into_iter()
                                        .map(|site| {
                                            let open = Some(site.id) == newest;
                                            view! { <SiteForm site update lang open /> }
                                        })
                                        .collect_view()
                                }
                                <ActionForm action=create attr:class="site-form new-site">
                                    <h2>{t(lang, Key::NewSite)}</h2>
                                    <label>{t(lang, Key::Title)} <input type="text" name="name" required maxlength=MAX_NAME /></label>
                                    <label>{t(lang, Key::AllowedOrigins)} <textarea name="origins" placeholder="https://shop.example"></textarea></label>
                                    <LookFields look=defaults lang />
                                    <button type="submit">{t(lang, Key::Create)}</button>
                                </ActionForm>
                            }
                            .into_any(),
                            (first, second) => crate::ui::refusal(first.err().into_iter().chain(second.err()), lang),
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
    }
}

/// One site: its snippet to copy, and the form that edits it.
#[component]
fn SiteForm(
    site: AdminSite,
    update: ServerAction<UpdateSite>,
    lang: Lang,
    /// Whether the form starts open.
    open: bool,
) -> impl IntoView {
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
        <details class="site-item" open=open>
        <summary>{site.name.clone()} <small><code class="key">{site.key.clone()}</code></small></summary>
        <section class="site-form" data-site=site.key.clone()>
            <label>
                {t(lang, Key::EmbedSnippet)}
                <textarea class="snippet" readonly rows="2">{site.snippet.clone()}</textarea>
            </label>
            <button type="button" class="secondary" on:click=copy>
                {move || if copied.get() { t(lang, Key::Copied) } else { t(lang, Key::Copy) }}
            </button>
            <ActionForm action=update>
                <input type="hidden" name="id" value=site.id.0 />
                <label>{t(lang, Key::Title)} <input type="text" name="name" value=site.name required maxlength=MAX_NAME /></label>
                <label>{t(lang, Key::AllowedOrigins)} <textarea name="origins">{site.origins}</textarea></label>
                <LookFields look=site.look lang />
                <button type="submit">{t(lang, Key::Save)}</button>
            </ActionForm>
        </section>
        </details>
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

/// The inputs of a [`LookForm`], named `look[…]` for the server function's argument.
#[component]
fn LookFields(look: LookForm, lang: Lang) -> impl IntoView {
    let days = crate::i18n::WEEKDAYS;
    let right = look.position != "left";
    view! {
        <fieldset class="look">
            <legend>{t(lang, Key::WidgetSettings)}</legend>
            <label>{t(lang, Key::Colour)} <input type="color" name="look[color]" value=look.color /></label>
            <label>
                {t(lang, Key::Corner)}
                <select name="look[position]">
                    <option value="right" selected=right>{t(lang, Key::Right)}</option>
                    <option value="left" selected=!right>{t(lang, Key::Left)}</option>
                </select>
            </label>
            <label>
                {t(lang, Key::Greeting)}
                <input type="text" name="look[greeting]" value=look.greeting maxlength=protocol::transport::MAX_GREETING_CHARS />
            </label>
            <label><input type="checkbox" name="look[prechat]" value="true" checked=look.prechat /> " " {t(lang, Key::PrechatForm)}</label>
            <label><input type="checkbox" name="look[sneak_peek]" value="true" checked=look.sneak_peek /> " " {t(lang, Key::SneakPeek)}</label>
            <label><input type="checkbox" name="look[translate]" value="true" checked=look.translate /> " " {t(lang, Key::TranslateChats)}</label>
            <label>
                {t(lang, Key::MaxFileMib)}
                <input type="number" name="look[max_file_mib]" min="1" max=protocol::transport::MAX_ATTACHMENT_BYTES / (1024 * 1024) value=look.max_file_mib required />
            </label>
            <div class="types">
                {t(lang, Key::FileTypes)} " "
                {protocol::transport::ATTACHMENT_TYPES
                    .iter()
                    .enumerate()
                    .map(|(n, kind)| {
                        let on = look.types.iter().any(|t| t == kind);
                        view! { <label><input type="checkbox" name=format!("look[types][{n}]") value=*kind checked=on /> " " {*kind}</label> }
                    })
                    .collect_view()}
            </div>
            <div class="hours">
                <label>{t(lang, Key::TimeZone)} <input type="text" name="look[time_zone]" value=look.time_zone placeholder="Asia/Shanghai" /></label>
                {days
                    .into_iter()
                    .enumerate()
                    .map(|(n, day)| {
                        let spans = look.hours.get(n).cloned().unwrap_or_default();
                        view! { <label>{t(lang, day)} <input type="text" name=format!("look[hours][{n}]") value=spans placeholder="09:00-18:00" /></label> }
                    })
                    .collect_view()}
            </div>
        </fieldset>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::ssr::origins;
    use crate::error::ConsoleError;

    #[test]
    fn origins_are_web_origins_one_per_line_or_a_star_for_any() {
        assert_eq!(
            origins("https://shop.example/\n\n http://127.0.0.1:8080 "),
            Ok(vec![
                "https://shop.example".to_owned(),
                "http://127.0.0.1:8080".to_owned()
            ])
        );
        // The demo site's "any page" can be saved again as it is.
        assert_eq!(origins("*"), Ok(vec!["*".to_owned()]));
        for bad in [
            "shop.example",
            "javascript:alert(1)",
            "https://a.example/x",
            "*.example",
        ] {
            assert_eq!(origins(bad), Err(ConsoleError::Invalid), "{bad}");
        }
    }
}
