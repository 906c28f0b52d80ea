//! `/admin/mail`: the SMTP relay Kefu sends mail through (transcripts, replies to
//! leave-messages, notifications), edited as plain fields and saved to the configuration file
//! by the server, which applies them at once; and a button that sends a test e-mail.
//!
//! The password is never sent back to the browser: left empty, the saved one is kept.

use crate::auth::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// How the connection to the relay is secured.
pub const SECURITY: [&str; 3] = ["starttls", "tls", "none"];

/// The relay's settings as the form edits them. An empty host means no mail at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailForm {
    /// The relay's host name; empty turns mail off.
    #[serde(default)]
    pub host: String,
    /// Its port: 587 for STARTTLS, 465 for TLS, 25 for a relay on the local network.
    pub port: u16,
    /// One of [`SECURITY`].
    pub security: String,
    /// The user name, if the relay wants one.
    #[serde(default)]
    pub username: String,
    /// The password: never filled in when shown; left empty when saved, the saved one stays.
    #[serde(default)]
    pub password: String,
    /// The sender of every mail, e.g. `Shop support <support@shop.example>`.
    #[serde(default)]
    pub from: String,
    /// E-mail a site's agents when a leave-message arrives.
    #[serde(default)]
    pub notify: bool,
}

/// What the page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailView {
    /// The settings in force (without the password).
    pub form: MailForm,
    /// A password is saved.
    pub has_password: bool,
    /// The settings come from command-line flags or `KEFU_*` variables: they can only be
    /// changed there.
    pub locked: bool,
    /// Where saved settings go.
    pub file: String,
}

/// The mail settings in force.
#[server(endpoint = "admin/mail")]
pub async fn mail_settings() -> Result<MailView, ConsoleError> {
    use crate::auth::ssr;
    ssr::require_admin().await?;
    Ok(ssr::outbox()?.settings())
}

/// Saves new mail settings to the configuration file and applies them at once. `Invalid` when
/// they do not make a working relay (bad host or port, a sender that is not an address,
/// notifications without a relay), `Forbidden` when flags or variables fix them.
#[server(endpoint = "admin/mail/save")]
pub async fn save_mail_settings(form: MailForm) -> Result<(), ConsoleError> {
    use crate::auth::ssr;
    let admin = ssr::require_admin().await?;
    ssr::outbox()?.save(form)?;
    tracing::info!(admin = admin.id, "mail settings saved");
    Ok(())
}

/// Sends a test e-mail to `to` through the configured SMTP relay: `NoMail` when none is set
/// up, `MailFailed` when the relay refuses (the log says why).
#[server(endpoint = "admin/mail/test")]
pub async fn send_test_mail(to: String) -> Result<(), ConsoleError> {
    use crate::auth::ssr;
    let admin = ssr::require_admin().await?;
    let to = to.trim();
    if !to.contains('@') || to.contains(char::is_whitespace) {
        return Err(ConsoleError::Invalid);
    }
    let body = format!(
        "This is a test e-mail from Kefu, sent by {}. If you can read it, mail works.\n",
        admin.display_name
    );
    ssr::send_mail(to, "Kefu test e-mail", body).await
}

/// `/admin/mail`.
#[component]
pub fn AdminMailPage() -> impl IntoView {
    let save = ServerAction::<SaveMailSettings>::new();
    let test = ServerAction::<SendTestMail>::new();
    let shell = crate::shell::use_shell();
    let settings = Resource::new(move || save.version().get(), |_| mail_settings());
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <main class="page admin" data-hydrated=move || hydrated.get().then_some("true")>
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        match settings.await {
                            Ok(view) => view! {
                                <super::AdminNav lang />
                                <h1>{t(lang, Key::AdminMail)}</h1>
                                <MailFields view save lang />
                                <section class="mail-test">
                                    <h2>{t(lang, Key::TestMail)}</h2>
                                    <ActionForm action=test>
                                        <label>{t(lang, Key::Email)} <input type="email" name="to" required /></label>
                                        <button type="submit">{t(lang, Key::Send)}</button>
                                    </ActionForm>
                                    {move || test.value().get().map(|result| match result {
                                        Ok(()) => view! { <p role="status">{t(lang, Key::MailSent)}</p> }.into_any(),
                                        Err(error) => view! { <p role="alert">{error.message(lang)}</p> }.into_any(),
                                    })}
                                </section>
                            }
                            .into_any(),
                            Err(error) => crate::pages::refusal([error], lang),
                        }
                    })
                }}
            </Suspense>
        </main>
    }
}

/// The relay's fields; read-only when flags or variables fix them.
#[component]
fn MailFields(view: MailView, save: ServerAction<SaveMailSettings>, lang: Lang) -> impl IntoView {
    let form = view.form;
    let password_hint = if view.has_password {
        t(lang, Key::PasswordKept)
    } else {
        ""
    };
    view! {
        <section class="mail-settings">
            {view.locked.then(|| view! { <p role="note">{t(lang, Key::MailLocked)}</p> })}
            <ActionForm action=save>
                <fieldset disabled=view.locked>
                    <label>{t(lang, Key::SmtpHost)} <input type="text" name="form[host]" value=form.host placeholder="smtp.example.com" /></label>
                    <label>{t(lang, Key::SmtpPort)} <input type="number" name="form[port]" min="1" max="65535" value=form.port required /></label>
                    <label>
                        {t(lang, Key::SmtpSecurity)}
                        <select name="form[security]">
                            {SECURITY
                                .iter()
                                .map(|kind| view! { <option value=*kind selected=form.security == *kind>{*kind}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <label>{t(lang, Key::SmtpUser)} <input type="text" name="form[username]" value=form.username autocomplete="off" /></label>
                    <label>{t(lang, Key::Password)} <input type="password" name="form[password]" autocomplete="new-password" placeholder=password_hint /></label>
                    <label>{t(lang, Key::MailFrom)} <input type="text" name="form[from]" value=form.from placeholder="Shop support <support@shop.example>" /></label>
                    <label><input type="checkbox" name="form[notify]" value="true" checked=form.notify /> " " {t(lang, Key::NotifyLeaveMessages)}</label>
                    <button type="submit">{t(lang, Key::Save)}</button>
                </fieldset>
            </ActionForm>
            <p><small>{t(lang, Key::SavedTo)} " " <code>{view.file}</code></small></p>
            {move || save.value().get().map(|result| match result {
                Ok(()) => view! { <p role="status">{t(lang, Key::Saved)}</p> }.into_any(),
                Err(error) => view! { <p role="alert">{error.message(lang)}</p> }.into_any(),
            })}
        </section>
    }
}
