//! `/admin/translation`: the machine-translation provider (LibreTranslate, DeepL, Google,
//! Azure, Baidu or an OpenAI-compatible server) edited as plain fields, saved to the
//! configuration file by the server and applied at once; a button that tries the provider the
//! form describes before it is saved; and each site's characters sent today against the daily
//! budget, so an admin sees when a site's translation has stopped for the day.
//!
//! The key and the secret are never sent back to the browser: left empty, the saved ones stay.

use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use crate::ports::{TranslationForm, TranslationView};
use leptos::prelude::*;

/// The providers Kefu speaks to, as the configuration names them.
pub const PROVIDERS: [&str; 6] = [
    "libretranslate",
    "deepl",
    "google",
    "azure",
    "baidu",
    "openai",
];

/// The translation settings in force, with every site's use of today's budget.
#[server(endpoint = "admin/translation")]
pub async fn translation_settings() -> Result<TranslationView, ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    let interpreter = context::interpreter()?;
    let mut view = interpreter.settings();
    let store = context::store()?;
    let today = crate::clock::now() / crate::clock::DAY_MS;
    for site in store.all_sites().await? {
        view.usage.push(crate::ports::SiteUsage {
            used: store.translation_chars(site.id, today).await?,
            on: interpreter.translates(&site),
            site: site.name,
        });
    }
    Ok(view)
}

/// Saves new translation settings to the configuration file and applies them at once.
/// `Invalid` when they make no working provider (unknown provider, missing key, bad address).
#[server(endpoint = "admin/translation/save")]
pub async fn save_translation_settings(form: TranslationForm) -> Result<(), ConsoleError> {
    use crate::context;
    let admin = context::require_admin().await?;
    context::interpreter()?.save(form)?;
    tracing::info!(admin = %admin.id, "translation settings saved");
    Ok(())
}

/// Translates a sample sentence with the provider the form describes, saving nothing.
#[server(endpoint = "admin/translation/test")]
pub async fn test_translation(form: TranslationForm) -> Result<String, ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    context::interpreter()?.test(form).await
}

/// `/admin/translation`.
#[component]
pub fn AdminTranslationPage() -> impl IntoView {
    let save = ServerAction::<SaveTranslationSettings>::new();
    let test = ServerAction::<TestTranslation>::new();
    let shell = crate::shell::use_shell();
    let settings = Resource::new(move || save.version().get(), |_| translation_settings());
    view! {
        <crate::ui::Page class="admin">
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        match settings.await {
                            Ok(view) => view! {
                                <crate::ui::AdminNav lang />
                                <h1>{t(lang, Key::AdminTranslation)}</h1>
                                <Usage view=view.clone() lang />
                                <TranslationFields view save test lang />
                            }
                            .into_any(),
                            Err(error) => crate::ui::refusal([error], lang),
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
    }
}

/// Each site's characters today against the budget.
#[component]
fn Usage(view: TranslationView, lang: Lang) -> impl IntoView {
    let limit = view.form.daily_chars;
    let configured = !view.form.provider.is_empty();
    view! {
        <section class="translation-usage">
            <h2>{t(lang, Key::TranslatedToday)}</h2>
            <table>
                <thead><tr>
                    <th>{t(lang, Key::Site)}</th>
                    <th>{t(lang, Key::Characters)}</th>
                    <th></th>
                </tr></thead>
                <tbody>
                    {view.usage.into_iter().map(|usage| {
                        let state = if !configured || !usage.on {
                            t(lang, Key::TranslationOff)
                        } else if usage.used >= limit {
                            t(lang, Key::BudgetReached)
                        } else {
                            ""
                        };
                        view! {
                            <tr data-limit-reached=(configured && usage.on && usage.used >= limit).then_some("true")>
                                <td>{usage.site}</td>
                                <td>{format!("{} / {limit}", usage.used)}</td>
                                <td>{state}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// The provider's fields, with the save and test buttons.
#[component]
fn TranslationFields(
    view: TranslationView,
    save: ServerAction<SaveTranslationSettings>,
    test: ServerAction<TestTranslation>,
    lang: Lang,
) -> impl IntoView {
    let form = view.form;
    let kept = move |saved: bool| {
        if saved {
            t(lang, Key::PasswordKept)
        } else {
            ""
        }
    };
    let form_ref = NodeRef::<leptos::html::Form>::new();
    // The test button sends the same fields as the save button, to the test function.
    let try_it = move |_| {
        let Some(element) = form_ref.get_untracked() else {
            return;
        };
        let Ok(data) = leptos::web_sys::FormData::new_with_form(&element) else {
            return;
        };
        let field = |name: &str| {
            data.get(&format!("form[{name}]"))
                .as_string()
                .unwrap_or_default()
        };
        test.dispatch(TestTranslation {
            form: TranslationForm {
                provider: field("provider"),
                url: field("url"),
                api_key: field("api_key"),
                region: field("region"),
                app_id: field("app_id"),
                secret: field("secret"),
                model: field("model"),
                daily_chars: field("daily_chars").parse().unwrap_or_default(),
                agent_language: field("agent_language"),
            },
        });
    };
    view! {
        <section class="translation-settings">
            {view.locked.then(|| view! { <p role="note">{t(lang, Key::SettingsLocked)}</p> })}
            <ActionForm action=save node_ref=form_ref>
                <fieldset disabled=view.locked>
                <label>
                    {t(lang, Key::Provider)}
                    <select name="form[provider]">
                        <option value="" selected=form.provider.is_empty()>{t(lang, Key::TranslationOff)}</option>
                        {PROVIDERS
                            .iter()
                            .map(|name| view! { <option value=*name selected=form.provider == *name>{*name}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label>{t(lang, Key::ProviderUrl)} <input type="url" name="form[url]" value=form.url placeholder="http://127.0.0.1:5000" /></label>
                <label>{t(lang, Key::ApiKey)} <input type="password" name="form[api_key]" autocomplete="new-password" placeholder=kept(view.has_api_key) /></label>
                <label>{t(lang, Key::AzureRegion)} <input type="text" name="form[region]" value=form.region /></label>
                <label>{t(lang, Key::BaiduAppId)} <input type="text" name="form[app_id]" value=form.app_id autocomplete="off" /></label>
                <label>{t(lang, Key::BaiduSecret)} <input type="password" name="form[secret]" autocomplete="new-password" placeholder=kept(view.has_secret) /></label>
                <label>{t(lang, Key::Model)} <input type="text" name="form[model]" value=form.model /></label>
                <label>{t(lang, Key::DailyChars)} <input type="number" name="form[daily_chars]" min="0" value=form.daily_chars required /></label>
                <label>{t(lang, Key::AgentLanguage)} <input type="text" name="form[agent_language]" value=form.agent_language placeholder="en" /></label>
                <button type="submit">{t(lang, Key::Save)}</button>
                <button type="button" class="secondary" on:click=try_it>{t(lang, Key::TestProvider)}</button>
                </fieldset>
            </ActionForm>
            <p><small>{t(lang, Key::SavedTo)} " " <code>{view.file}</code></small></p>
            {move || save.value().get().map(|result| match result {
                Ok(()) => view! { <p role="status">{t(lang, Key::Saved)}</p> }.into_any(),
                Err(error) => view! { <p role="alert">{error.message(lang)}</p> }.into_any(),
            })}
            {move || test.value().get().map(|result| match result {
                Ok(text) => view! {
                    <p role="status" class="provider-answer">{t(lang, Key::ProviderAnswered)} " " <q>{text}</q></p>
                }.into_any(),
                Err(error) => view! { <p role="alert" class="provider-answer">{error.message(lang)}</p> }.into_any(),
            })}
        </section>
    }
}
