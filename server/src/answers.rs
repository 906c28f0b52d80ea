//! The checks on what an operator types for an account or a site — e-mail, password, site name,
//! web addresses — the same in `kefu init`, the setup wizard and the `kefu agent`/`kefu site`
//! commands.

/// The administrator's e-mail, lower-cased; the same check in the terminal and the wizard.
pub(crate) fn check_email(text: &str) -> Result<String, String> {
    let email = text.trim().to_lowercase();
    if email.contains('@') && !email.contains(char::is_whitespace) {
        Ok(email)
    } else {
        Err("an e-mail address such as you@example.com".into())
    }
}

/// Fewest characters in a password.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Why a password cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    /// Too easy to guess.
    #[error("at least {} characters", MIN_PASSWORD_CHARS)]
    TooShort,
    /// Longer than signing in accepts.
    #[error("at most {} bytes", app::throttle::MAX_PASSWORD_BYTES)]
    TooLong,
}

/// A password: the administrator's here and in the wizard, and every agent's from the terminal.
pub(crate) fn check_password(text: &str) -> Result<String, PasswordProblem> {
    if text.chars().count() < MIN_PASSWORD_CHARS {
        Err(PasswordProblem::TooShort)
    } else if text.len() > app::throttle::MAX_PASSWORD_BYTES {
        Err(PasswordProblem::TooLong)
    } else {
        Ok(text.to_owned())
    }
}

/// The first site's name.
pub(crate) fn check_site_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    match name.chars().count() {
        1..=100 => Ok(name.to_owned()),
        _ => Err("1 to 100 characters".into()),
    }
}

/// The first site's addresses, separated by spaces, checked as the site form checks them.
pub(crate) fn check_origins(text: &str) -> Result<Vec<String>, String> {
    app::pages::admin::sites::ssr::origins(&text.split_whitespace().collect::<Vec<_>>().join("\n"))
        .ok()
        .filter(|origins| !origins.is_empty())
        .ok_or_else(|| "web addresses such as https://www.example.com".into())
}
