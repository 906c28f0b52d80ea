//! The console's side of mail (`app::ports::Outbox`): sending through the relay in force,
//! and the relay's settings as the admin mail page's fields — read from the running setup, and
//! saved to the configuration file, then put in force at once, with no restart.
//!
//! The page edits host, port, security, user and password; the configuration keeps one relay
//! URL (`smtp://user:pass@host:587?tls=required`, `smtps://…` for TLS from the start, plain
//! `smtp://` for a relay on the local network), so the fields are read from and written to it
//! here. The password never goes back to the browser; left empty, the saved one is kept —
//! for the saved host, port and security only. A form that changes them must carry the
//! password again (`SecretRequired`), so the saved password is never sent to a new host.

use std::path::PathBuf;
use std::sync::Arc;

use app::error::ConsoleError;
use app::ports::{MailForm, MailView};

use crate::mail::{MailSettings, MailSetup};
use crate::realtime::Realtime;

/// What the console's server functions use to send mail and change its settings.
pub struct ConsoleMail {
    /// Holds the setup in force.
    pub realtime: Arc<Realtime>,
    /// Where saved settings are written.
    pub file: PathBuf,
    /// Flags or variables fix the settings: saving is refused.
    pub locked: bool,
}

impl app::ports::Outbox for ConsoleMail {
    fn configured(&self) -> bool {
        self.realtime.mail().mailer.is_some()
    }

    fn send(
        &self,
        to: String,
        subject: String,
        body: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
        let mailer = self.realtime.mail().mailer;
        Box::pin(async move {
            match mailer {
                Some(mailer) => mailer
                    .send(&to, &subject, body)
                    .await
                    .map_err(|error| error.to_string()),
                None => Err("no SMTP relay is configured".into()),
            }
        })
    }

    fn settings(&self) -> MailView {
        let setup = self.realtime.mail();
        let (form, has_password) = form_of(&setup);
        MailView {
            form,
            has_password,
            locked: self.locked,
            file: self.file.display().to_string(),
        }
    }

    fn save(&self, form: MailForm) -> Result<(), ConsoleError> {
        if self.locked {
            return Err(ConsoleError::Forbidden);
        }
        let current = self.realtime.mail();
        let saved_password = current
            .settings
            .smtp_url
            .as_deref()
            .and_then(|url| url::Url::parse(url).ok())
            .and_then(|url| url.password().map(str::to_owned));
        let (saved, _) = form_of(&current);
        let same_relay = form.host.trim().eq_ignore_ascii_case(&saved.host)
            && form.port == saved.port
            && form.security == saved.security;
        let needs_password = !form.username.trim().is_empty() && form.password.is_empty();
        if !same_relay && needs_password && saved_password.is_some() {
            return Err(ConsoleError::SecretRequired);
        }
        let smtp_url = url_of(&form, saved_password.filter(|_| same_relay))?;
        let from = smtp_url
            .as_ref()
            .map(|_| form.from.trim().to_owned())
            .filter(|from| !from.is_empty());
        let setup = MailSetup::open(MailSettings {
            smtp_url: smtp_url.clone(),
            from: from.clone(),
            notify_leave_messages: form.notify,
        })
        .map_err(|_| ConsoleError::Invalid)?;
        crate::config_file::edit(&self.file, |document| {
            let mut set = |key: &str, value: Option<toml_edit::Item>| {
                crate::config_file::set(document, "email", key, value);
            };
            set("smtp_url", smtp_url.map(toml_edit::value));
            set("from", from.map(toml_edit::value));
            set("notify_leave_messages", Some(toml_edit::value(form.notify)));
        })
        .map_err(|error| {
            tracing::error!(%error, "saving the mail settings failed");
            ConsoleError::Internal
        })?;
        self.realtime.set_mail(setup);
        Ok(())
    }
}

/// The form's fields for the relay in force, and whether it has a password.
fn form_of(setup: &MailSetup) -> (MailForm, bool) {
    let url = setup
        .settings
        .smtp_url
        .as_deref()
        .and_then(|url| url::Url::parse(url).ok());
    let Some(url) = url else {
        return (
            MailForm {
                port: 587,
                security: "starttls".into(),
                ..MailForm::default()
            },
            false,
        );
    };
    let tls = url
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    let security = match (url.scheme(), tls.as_deref()) {
        ("smtps", _) => "tls",
        (_, Some(_)) => "starttls",
        _ => "none",
    };
    let default_port = match security {
        "tls" => 465,
        "starttls" => 587,
        _ => 25,
    };
    let decoded = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    (
        MailForm {
            host: url.host_str().unwrap_or_default().to_owned(),
            port: url.port().unwrap_or(default_port),
            security: security.into(),
            username: decoded(url.username()),
            password: String::new(),
            from: setup.settings.from.clone().unwrap_or_default(),
            notify: setup.settings.notify_leave_messages,
        },
        url.password().is_some(),
    )
}

/// The relay URL the form describes (`None`: no relay), with `saved_password` when the form's
/// password is left empty. `Invalid` for a host that is not a host name or address, a port of
/// 0, or an unknown security.
fn url_of(form: &MailForm, saved_password: Option<String>) -> Result<Option<String>, ConsoleError> {
    let host = form.host.trim();
    if host.is_empty() {
        return Ok(None);
    }
    let host_ok = host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    let scheme = match form.security.as_str() {
        "tls" => "smtps",
        "starttls" | "none" => "smtp",
        _ => return Err(ConsoleError::Invalid),
    };
    if !host_ok || form.port == 0 {
        return Err(ConsoleError::Invalid);
    }
    let mut url = url::Url::parse(&format!("{scheme}://{host}:{}", form.port))
        .map_err(|_| ConsoleError::Invalid)?;
    let username = form.username.trim();
    if !username.is_empty() {
        url.set_username(username)
            .map_err(|()| ConsoleError::Invalid)?;
        let password = Some(form.password.clone())
            .filter(|p| !p.is_empty())
            .or(saved_password);
        url.set_password(password.as_deref())
            .map_err(|()| ConsoleError::Invalid)?;
    }
    if form.security == "starttls" {
        url.set_query(Some("tls=required"));
    }
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(host: &str, security: &str, user: &str, password: &str) -> MailForm {
        MailForm {
            host: host.into(),
            port: 587,
            security: security.into(),
            username: user.into(),
            password: password.into(),
            from: "Shop <s@shop.example>".into(),
            notify: false,
        }
    }

    #[test]
    fn fields_become_a_relay_url_and_back_without_the_password() {
        let url = url_of(
            &form("mail.example", "starttls", "me@shop", "p@ss:w/rd"),
            None,
        )
        .expect("valid")
        .expect("a relay");
        assert_eq!(
            url,
            "smtp://me%40shop:p%40ss%3Aw%2Frd@mail.example:587?tls=required"
        );
        let setup = MailSetup::open(MailSettings {
            smtp_url: Some(url),
            from: Some("Shop <s@shop.example>".into()),
            notify_leave_messages: true,
        })
        .expect("lettre takes it");
        let (back, has_password) = form_of(&setup);
        assert!(has_password);
        assert_eq!(
            back,
            MailForm {
                notify: true,
                ..form("mail.example", "starttls", "me@shop", "")
            }
        );
        let tls = url_of(&form("mail.example", "tls", "", ""), None).expect("valid");
        assert_eq!(tls.as_deref(), Some("smtps://mail.example:587"));
    }

    #[test]
    fn an_empty_password_keeps_the_saved_one_and_an_empty_host_means_no_mail() {
        let url = url_of(
            &form("mail.example", "none", "me", ""),
            Some("secret".into()),
        )
        .expect("valid");
        assert_eq!(url.as_deref(), Some("smtp://me:secret@mail.example:587"));
        assert_eq!(
            url_of(&form(" ", "tls", "me", "x"), None).expect("off"),
            None
        );
        for bad in [
            form("mail.example/evil", "tls", "", ""),
            form("mail example", "tls", "", ""),
            form("mail.example", "ssl3", "", ""),
        ] {
            assert_eq!(url_of(&bad, None), Err(ConsoleError::Invalid), "{bad:?}");
        }
    }
}
