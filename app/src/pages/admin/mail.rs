//! `/admin/mail`: the SMTP relay Kefu sends mail through (transcripts, replies to
//! leave-messages, notifications), edited as plain fields and saved to the configuration file
//! by the server, which applies them at once; and a button that sends a test e-mail.
//!
//! The password is never sent back to the browser: left empty, the saved one is kept.

use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use crate::ports::{MailForm, MailView};
use leptos::prelude::*;

/// How the connection to the relay is secured.
pub const SECURITY: [&str; 3] = ["starttls", "tls", "none"];

/// The mail settings in force.
#[server(endpoint = "admin/mail")]
pub async fn mail_settings() -> Result<MailView, ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    Ok(context::outbox()?.settings())
}

/// Saves new mail settings to the configuration file and applies them at once. `Invalid` when
/// they do not make a working relay (bad host or port, a sender that is not an address,
/// notifications without a relay), `Forbidden` when flags or variables fix them.
#[server(endpoint = "admin/mail/save")]
pub async fn save_mail_settings(form: MailForm) -> Result<(), ConsoleError> {
    use crate::context;
    let admin = context::require_admin().await?;
    context::outbox()?.save(form)?;
    tracing::info!(admin = %admin.id, "mail settings saved");
    Ok(())
}

/// Sends a test e-mail to `to` through the configured SMTP relay: `NoMail` when none is set
/// up, `MailFailed` when the relay refuses (the log says why).
#[server(endpoint = "admin/mail/test")]
pub async fn send_test_mail(to: String) -> Result<(), ConsoleError> {
    use crate::context;
    let admin = context::require_admin().await?;
    let to = to.trim();
    if !to.contains('@') || to.contains(char::is_whitespace) {
        return Err(ConsoleError::Invalid);
    }
    let body = format!(
        "This is a test e-mail from Kefu, sent by {}. If you can read it, mail works.\n",
        admin.display_name
    );
    context::send_mail(to, "Kefu test e-mail", body).await
}

/// `/admin/mail`.
#[component]
pub fn AdminMailPage() -> impl IntoView {
    let save = ServerAction::<SaveMailSettings>::new();
    let test = ServerAction::<SendTestMail>::new();
    let shell = crate::shell::use_shell();
    let settings = Resource::new(move || save.version().get(), |_| mail_settings());
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
                            Err(error) => crate::ui::refusal([error], lang),
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
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
            {view.locked.then(|| view! { <p role="note">{t(lang, Key::SettingsLocked)}</p> })}
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
