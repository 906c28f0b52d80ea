//! The first-run setup wizard in the browser. When `kefu serve` (without `--demo`) finds no
//! agent in its database, it serves only this: every URL leads to `/setup`, which asks for the
//! one-time setup token printed in the server log, then for the database (the built-in SQLite,
//! or MySQL/MariaDB or PostgreSQL with a "test connection" button that names the problem),
//! the first administrator, the first site, and optionally the SMTP relay and the translation
//! provider. Finishing creates the accounts in the chosen database, writes the configuration
//! file (checked, atomic, the previous one kept as `.bak`), shows the embed snippet, and hands
//! over to Kefu itself on the same address, without a restart.
//!
//! The pages are plain HTML forms (no console assets are needed to set up); all text a user
//! typed is escaped when shown again, and passwords are never shown again.

use std::sync::{Arc, Mutex};

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use store::{ConnectProblem, DatabaseUrl, Role};

use crate::agents::AgentSpec;
use crate::config::{Config, Overrides};
use crate::init::{
    Answers, add_site, check_email, check_origins, check_password, check_site_name,
    create_sqlite_dir, snippet, write_config,
};

/// The cookie that carries the setup token once it was given.
const COOKIE: &str = "kefu_setup";

/// Whether Kefu must be set up first: its database has no agent at all.
pub async fn needed(store: &dyn store::Store) -> crate::Result<bool> {
    Ok(store.all_agents().await?.is_empty())
}

/// The wizard's shared state.
struct Wizard {
    /// Proves the person at the browser can read the server's log.
    token: String,
    /// The configuration being set up (its file is where the answers are written).
    config: Config,
    /// Fired once the set-up is written: the wizard's server stops and Kefu starts.
    finished: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// One finishing at a time: a double-clicked Finish must not set Kefu up twice.
    finishing: tokio::sync::Mutex<()>,
}

/// Serves the wizard on `listener` until it is finished (then returns the configuration it
/// wrote, loaded with `overrides`) or `shutdown` completes (then `None`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    overrides: &Overrides,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> crate::Result<Option<Config>> {
    let token: String = app::auth::ssr::new_token().chars().take(24).collect();
    let addr = listener.local_addr()?;
    let (finished, done) = tokio::sync::oneshot::channel();
    let wizard = Arc::new(Wizard {
        token: token.clone(),
        config,
        finished: Mutex::new(Some(finished)),
        finishing: tokio::sync::Mutex::new(()),
    });
    tracing::warn!(
        "Kefu is not set up yet: open http://{addr}/setup and give the setup token {token}"
    );
    crate::announce(&format!(
        "Kefu is not set up yet. Open http://{addr}/setup?token={token}"
    ));
    let app = axum::Router::new()
        .route("/setup", get(page).post(finish))
        .route("/setup/token", post(give_token))
        .route("/setup/test-database", post(test_database))
        .route("/setup/test-mail", post(test_mail))
        .route("/setup/test-translation", post(test_translation))
        .route("/setup/wizard.js", get(wizard_script))
        .route("/healthz", get(|| async { "setting up" }))
        .route(
            "/readyz",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "not set up yet") }),
        )
        .fallback(|| async { Redirect::to("/setup") })
        .layer(axum::middleware::from_fn(crate::edge::headers::console))
        .with_state(wizard);
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handed_over = finished.clone();
    let limits = crate::http_server::HttpLimits::default();
    crate::http_server::serve(listener, app, limits, async move {
        tokio::select! {
            () = shutdown => {}
            Ok(()) = done => {
                // A moment for the page that says so to reach the browser.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                handed_over.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    })
    .await;
    if finished.load(std::sync::atomic::Ordering::SeqCst) {
        Ok(Some(Config::load(overrides)?))
    } else {
        Ok(None)
    }
}

/// Whether the request carries the setup token (as its cookie).
fn authorized(wizard: &Wizard, headers: &HeaderMap) -> bool {
    app::auth::ssr::cookie_value(headers, COOKIE).is_some_and(|token| {
        crate::edge::constant_time_eq(token.as_bytes(), wizard.token.as_bytes())
    })
}

/// A request that carries the setup token; any other is refused with the token form (403).
struct Authorized;

impl FromRequestParts<Arc<Wizard>> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        wizard: &Arc<Wizard>,
    ) -> Result<Self, Self::Rejection> {
        if authorized(wizard, &parts.headers) {
            Ok(Authorized)
        } else {
            Err((StatusCode::FORBIDDEN, Html(token_page(None))).into_response())
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// `GET /setup`: the token form, or (with the token) the wizard.
async fn page(
    State(wizard): State<Arc<Wizard>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    if query.token.as_deref().is_some_and(|token| {
        crate::edge::constant_time_eq(token.as_bytes(), wizard.token.as_bytes())
    }) {
        return with_cookie(&wizard.token, Redirect::to("/setup").into_response());
    }
    if !authorized(&wizard, &headers) {
        return Html(token_page(None)).into_response();
    }
    Html(wizard_page(&SetupForm::default(), None)).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
}

/// `POST /setup/token`.
async fn give_token(State(wizard): State<Arc<Wizard>>, Form(form): Form<TokenForm>) -> Response {
    if crate::edge::constant_time_eq(form.token.trim().as_bytes(), wizard.token.as_bytes()) {
        return with_cookie(&wizard.token, Redirect::to("/setup").into_response());
    }
    (
        StatusCode::FORBIDDEN,
        Html(token_page(Some(
            "That is not the setup token in the server log.",
        ))),
    )
        .into_response()
}

fn with_cookie(token: &str, mut response: Response) -> Response {
    if let Ok(value) = format!("{COOKIE}={token}; Path=/setup; HttpOnly; SameSite=Strict").parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Every field of the wizard.
#[derive(Debug, Default, Deserialize)]
struct SetupForm {
    /// `sqlite`, `mysql` or `postgres`.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    database: String,
    #[serde(default)]
    admin_email: String,
    #[serde(default)]
    admin_name: String,
    #[serde(default)]
    admin_password: String,
    #[serde(default)]
    site_name: String,
    #[serde(default)]
    site_origins: String,
    #[serde(default)]
    smtp_url: String,
    #[serde(default)]
    email_from: String,
    #[serde(default)]
    translation_provider: String,
    #[serde(default)]
    translation_url: String,
    #[serde(default)]
    translation_api_key: String,
}

impl SetupForm {
    /// The database URL the fields describe: the configured SQLite file for `sqlite`.
    fn database_url(&self, config: &Config) -> Result<DatabaseUrl, String> {
        let scheme = match self.kind.as_str() {
            "" | "sqlite" => {
                return Ok(match config.database_url.backend() {
                    store::Backend::Sqlite => config.database_url.clone(),
                    _ => DatabaseUrl::parse("sqlite://data/kefu.db").map_err(|e| e.to_string())?,
                });
            }
            "mysql" => "mysql",
            "postgres" => "postgres",
            _ => return Err("Choose SQLite, MySQL/MariaDB or PostgreSQL.".into()),
        };
        let host = self.host.trim();
        let name = self.database.trim();
        if host.is_empty() || name.is_empty() || self.user.trim().is_empty() {
            return Err("Fill in the database server's host, user and database name.".into());
        }
        let port = match self.port.trim() {
            "" if scheme == "mysql" => 3306,
            "" => 5432,
            port => port
                .parse::<u16>()
                .map_err(|_| "The port is a number such as 3306.".to_owned())?,
        };
        let mut url = url::Url::parse(&format!("{scheme}://{host}:{port}/"))
            .map_err(|_| format!("{host:?} is not a host name or address."))?;
        url.set_path(name);
        url.set_username(self.user.trim())
            .and_then(|()| {
                url.set_password(
                    Some(&self.password)
                        .filter(|p| !p.is_empty())
                        .map(String::as_str),
                )
            })
            .map_err(|()| "The user name cannot be used in an address.".to_owned())?;
        DatabaseUrl::parse(url.as_str()).map_err(|error| error.to_string())
    }

    /// The translation provider the fields describe.
    fn translation(&self) -> crate::translate::TranslationSection {
        let optional = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        crate::translate::TranslationSection {
            provider: optional(&self.translation_provider),
            url: optional(&self.translation_url),
            api_key: optional(&self.translation_api_key),
            ..Default::default()
        }
    }

    /// What to tell about `error` from trying this database.
    fn problem(&self, error: &store::Error) -> String {
        let (host, user, name) = (self.host.trim(), self.user.trim(), self.database.trim());
        match error.connect_problem() {
            Some(ConnectProblem::Unreachable) => format!(
                "Cannot reach a database server at {host}: is it running, and are the host and port right?"
            ),
            Some(ConnectProblem::BadCredentials) => format!(
                "The database server refused user {user:?}: wrong password (or no such user)."
            ),
            Some(ConnectProblem::NoDatabase) => format!(
                "There is no database {name:?} on that server: create it first (CREATE DATABASE {name};)."
            ),
            Some(ConnectProblem::NoPrivilege) => format!(
                "User {user:?} may connect but not create tables in {name:?}: grant it all privileges on that database."
            ),
            None => error.to_string(),
        }
    }
}

/// Tries the database the form describes: `Ok` with what was reached, or what is wrong.
async fn try_database(wizard: &Wizard, form: &SetupForm) -> Result<DatabaseUrl, String> {
    let url = form.database_url(&wizard.config)?;
    create_sqlite_dir(&url).map_err(|error| error.to_string())?;
    store::check(&url)
        .await
        .map_err(|error| form.problem(&error))?;
    Ok(url)
}

/// `POST /setup/test-database`: the test-connection button.
async fn test_database(
    State(wizard): State<Arc<Wizard>>,
    _: Authorized,
    Form(form): Form<SetupForm>,
) -> Response {
    let (status, text) = match try_database(&wizard, &form).await {
        Ok(url) => (StatusCode::OK, format!("Connected to {url}.")),
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
    };
    (status, text).into_response()
}

/// `POST /setup/test-mail`: sends a test e-mail to the administrator's address through the
/// relay the form names.
async fn test_mail(_: Authorized, Form(form): Form<SetupForm>) -> Response {
    let to = form.admin_email.trim();
    let result = match crate::mail::Mailer::new(form.smtp_url.trim(), form.email_from.trim()) {
        Err(message) => Err(format!("E-mail: {message}")),
        Ok(_) if !to.contains('@') => {
            Err("Fill in the administrator's e-mail first: the test goes there.".into())
        }
        Ok(mailer) => mailer
            .send(
                to,
                "Kefu test e-mail",
                "This is a test e-mail from the Kefu setup wizard. If you can read it, mail works.\n"
                    .into(),
            )
            .await
            .map(|()| format!("A test e-mail was sent to {to}."))
            .map_err(|error| format!("The mail server did not take it: {error}")),
    };
    answer(result)
}

/// `POST /setup/test-translation`: translates a sample with the provider the form names.
async fn test_translation(
    State(wizard): State<Arc<Wizard>>,
    _: Authorized,
    Form(form): Form<SetupForm>,
) -> Response {
    let result = match form.translation().setup(&wizard.config.outbound) {
        Err(message) => Err(format!("Translation: {message}")),
        Ok(None) => Err("Choose a provider first.".into()),
        Ok(Some(setup)) => setup
            .translator
            .translate("Hello, how can I help you?", Some("en"), "zh-CN")
            .await
            .map(|translation| format!("The provider answered: {}", translation.text))
            .map_err(|error| format!("The provider did not answer: {error}")),
    };
    answer(result)
}

/// A test button's answer: 200 with what worked, 422 with what did not.
fn answer(result: Result<String, String>) -> Response {
    match result {
        Ok(text) => (StatusCode::OK, text).into_response(),
        Err(text) => (StatusCode::UNPROCESSABLE_ENTITY, text).into_response(),
    }
}

/// `POST /setup`: checks every answer, creates the accounts, writes the configuration and
/// hands over to Kefu; any wrong answer shows the wizard again with what to fix.
async fn finish(
    State(wizard): State<Arc<Wizard>>,
    _: Authorized,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    let _one_at_a_time = wizard.finishing.lock().await;
    if wizard.finished.lock().map_or(true, |f| f.is_none()) {
        return (
            StatusCode::CONFLICT,
            Html(document(
                r#"<h1>Kefu is set up already</h1><p>It is starting. <a href="/login">Open the console and sign in</a></p>"#,
            )),
        )
            .into_response();
    }
    match set_up(&wizard, &form, &headers).await {
        Ok(done) => {
            if let Some(finished) = wizard.finished.lock().ok().and_then(|mut f| f.take()) {
                let _ = finished.send(());
            }
            Html(done).into_response()
        }
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(wizard_page(&form, Some(&message))),
        )
            .into_response(),
    }
}

/// Does the set-up; returns the page that says it is done, or what to fix.
async fn set_up(wizard: &Wizard, form: &SetupForm, headers: &HeaderMap) -> Result<String, String> {
    let email =
        check_email(&form.admin_email).map_err(|m| format!("Administrator's e-mail: {m}."))?;
    let password = check_password(&form.admin_password)
        .map_err(|m| format!("Administrator's password: {m}."))?;
    let site_name =
        check_site_name(&form.site_name).map_err(|m| format!("Your website's name: {m}."))?;
    let origins =
        check_origins(&form.site_origins).map_err(|m| format!("Your website's addresses: {m}."))?;
    let optional = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let smtp_url = optional(&form.smtp_url);
    let email_from = smtp_url.as_ref().and(optional(&form.email_from));
    crate::mail::MailSetup::new(smtp_url.clone(), email_from.clone(), false)
        .map_err(|(key, message)| format!("E-mail ({key}): {message}"))?;
    let translation = form.translation();
    translation
        .clone()
        .setup(&wizard.config.outbound)
        .map_err(|message| format!("Translation: {message}"))?;

    let database_url = try_database(wizard, form).await?;
    let internal = |error: crate::Error| {
        tracing::error!(%error, "setting up failed");
        error.to_string()
    };
    let store = store::connect(&database_url)
        .await
        .map_err(|error| form.problem(&error))?;
    let (admin, _) = crate::agents::add(
        store.as_ref(),
        AgentSpec {
            email,
            display_name: optional(&form.admin_name).unwrap_or_else(|| "Admin".into()),
            role: Role::Admin,
            max_chats: 5,
            site_keys: Vec::new(),
            password: Some(password),
        },
    )
    .await
    .map_err(|error| internal(error.into()))?;
    let site = add_site(store.as_ref(), site_name, origins, &[admin.id])
        .await
        .map_err(internal)?;
    let base = base_url(headers);
    write_config(
        &wizard.config.file,
        &Answers {
            bind: None,
            database_url,
            smtp_url,
            email_from,
            translation,
            // Behind https the address the administrator set up at is the console's; a plain
            // http one may be a tunnel or a test, where each request's own host stands in.
            public_url: base.starts_with("https://").then(|| base.clone()),
        },
    )
    .map_err(|error| internal(error.into()))?;
    tracing::info!(admin = admin.id, site = site.id, "Kefu is set up");
    Ok(done_page(&site.name, &snippet(&base, &site)))
}

/// Where browsers reach this server, from the request (behind a proxy, its forwarded scheme).
fn base_url(headers: &HeaderMap) -> String {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let scheme = text("x-forwarded-proto").unwrap_or_else(|| "http".into());
    let host = text("host").unwrap_or_else(|| "localhost".into());
    format!("{scheme}://{host}")
}

/// `text` safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `GET /setup/wizard.js`: the "Test" buttons, as a file rather than inline, so the pages'
/// Content-Security-Policy allows no inline script at all.
async fn wizard_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        WIZARD_SCRIPT,
    )
        .into_response()
}

const WIZARD_SCRIPT: &str = r#"for (const button of document.querySelectorAll("button[data-test]")) {
  button.addEventListener("click", async () => {
    const what = button.dataset.test;
    const out = document.getElementById(what + "-result");
    out.textContent = "Trying…";
    out.className = "";
    const body = new URLSearchParams(new FormData(document.getElementById("setup")));
    const response = await fetch("/setup/test-" + what, { method: "POST", body });
    out.textContent = await response.text();
    out.className = response.ok ? "ok" : "";
    out.setAttribute("role", response.ok ? "status" : "alert");
  });
}
"#;

/// A page around `body`.
fn document(body: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Set up Kefu</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>"#
    )
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;background:#f6f7f9;color:#1f2328;margin:0}\
main{max-width:40rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border-radius:10px;border:1px solid #d0d7de}\
fieldset{border:1px solid #d0d7de;border-radius:8px;margin:0 0 1rem;padding:.75rem 1rem}\
label{display:flex;flex-direction:column;font-weight:600;margin:.4rem 0}\
label.choice{flex-direction:row;gap:.4rem;font-weight:400}\
input,select,textarea{font:inherit;padding:.35rem .5rem;border:1px solid #d0d7de;border-radius:6px}\
button{font:inherit;padding:.45rem 1rem;border:0;border-radius:6px;background:#0969da;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#0969da;border:1px solid #0969da}\
[role=alert]{color:#cf222e;font-weight:600}.ok{color:#1a7f37;font-weight:600}\
textarea.snippet{width:100%;font-family:monospace}";

fn token_page(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    document(&format!(
        r#"<h1>Set up Kefu</h1><p>Kefu printed a one-time setup token in its log when it started. Enter it to continue.</p>{error}
<form method="post" action="/setup/token"><label>Setup token <input name="token" required autocomplete="off"></label><button type="submit">Continue</button></form>"#
    ))
}

/// The wizard, filled with `form` (passwords left empty) and `error` at the top.
fn wizard_page(form: &SetupForm, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let value = |text: &str| escape(text);
    let checked = |kind: &str| {
        if form.kind == kind || (kind == "sqlite" && form.kind.is_empty()) {
            " checked"
        } else {
            ""
        }
    };
    let providers: String = std::iter::once("")
        .chain(app::pages::admin::translation::PROVIDERS)
        .map(|name| {
            let selected = if form.translation_provider == name {
                " selected"
            } else {
                ""
            };
            let shown = if name.is_empty() { "None" } else { name };
            format!(r#"<option value="{name}"{selected}>{shown}</option>"#)
        })
        .collect();
    document(&format!(
        r#"<h1>Set up Kefu</h1>{error}
<form method="post" action="/setup" id="setup">
<fieldset><legend>1. Database</legend>
<label class="choice"><input type="radio" name="kind" value="sqlite"{sqlite}> SQLite, built in (nothing to install)</label>
<label class="choice"><input type="radio" name="kind" value="mysql"{mysql}> MySQL or MariaDB</label>
<label class="choice"><input type="radio" name="kind" value="postgres"{postgres}> PostgreSQL</label>
<label>Host <input name="host" value="{host}" placeholder="127.0.0.1"></label>
<label>Port <input name="port" value="{port}" placeholder="3306 or 5432"></label>
<label>User <input name="user" value="{user}" autocomplete="off"></label>
<label>Password <input type="password" name="password" autocomplete="new-password"></label>
<label>Database name <input name="database" value="{database}" placeholder="kefu"></label>
<button type="button" class="secondary" data-test="database">Test connection</button>
<p id="database-result" role="status"></p>
</fieldset>
<fieldset><legend>2. Administrator</legend>
<label>E-mail <input type="email" name="admin_email" value="{admin_email}" required></label>
<label>Name <input name="admin_name" value="{admin_name}" placeholder="Admin"></label>
<label>Password (8 characters or more) <input type="password" name="admin_password" minlength="8" required autocomplete="new-password"></label>
</fieldset>
<fieldset><legend>3. Your website</legend>
<label>Name <input name="site_name" value="{site_name}" required></label>
<label>Addresses (separate several with spaces) <input name="site_origins" value="{site_origins}" placeholder="https://www.example.com" required></label>
</fieldset>
<fieldset><legend>4. E-mail (optional)</legend>
<label>SMTP relay URL <input name="smtp_url" value="{smtp_url}" placeholder="smtp://user:pass@smtp.example.com:587?tls=required"></label>
<label>Sender <input name="email_from" value="{email_from}" placeholder="Support &lt;support@example.com&gt;"></label>
<button type="button" class="secondary" data-test="mail">Send a test e-mail</button>
<p id="mail-result" role="status"></p>
</fieldset>
<fieldset><legend>5. Translation (optional)</legend>
<label>Provider <select name="translation_provider">{providers}</select></label>
<label>Provider address <input name="translation_url" value="{translation_url}" placeholder="http://127.0.0.1:5000"></label>
<label>API key <input type="password" name="translation_api_key" autocomplete="off"></label>
<button type="button" class="secondary" data-test="translation">Test provider</button>
<p id="translation-result" role="status"></p>
</fieldset>
<button type="submit">Finish set-up</button>
</form>
<script src="/setup/wizard.js"></script>"#,
        sqlite = checked("sqlite"),
        mysql = checked("mysql"),
        postgres = checked("postgres"),
        host = value(&form.host),
        port = value(&form.port),
        user = value(&form.user),
        database = value(&form.database),
        admin_email = value(&form.admin_email),
        admin_name = value(&form.admin_name),
        site_name = value(&form.site_name),
        site_origins = value(&form.site_origins),
        smtp_url = value(&form.smtp_url),
        email_from = value(&form.email_from),
        translation_url = value(&form.translation_url),
    ))
}

fn done_page(site: &str, snippet: &str) -> String {
    document(&format!(
        r#"<h1>Kefu is set up</h1>
<p class="ok">The settings are saved and Kefu is starting.</p>
<p>Paste this line into the pages of {site}, before <code>&lt;/body&gt;</code>:</p>
<textarea class="snippet" readonly rows="3" aria-label="Embed snippet">{snippet}</textarea>
<p><a href="/login">Open the console and sign in</a></p>"#,
        site = escape(site),
        snippet = escape(snippet),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_text_is_escaped_and_database_fields_make_a_url() {
        assert_eq!(
            escape(r#"<script>"x" & 'y'"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
        let config = Config::load(&Overrides {
            database_url: Some("sqlite://data/kefu.db".into()),
            ..Default::default()
        })
        .expect("config");
        let form = SetupForm {
            kind: "mysql".into(),
            host: "db.example".into(),
            user: "kefu".into(),
            password: "p@ss:w/rd".into(),
            database: "chat".into(),
            ..SetupForm::default()
        };
        assert_eq!(
            form.database_url(&config).expect("url").expose_secret(),
            "mysql://kefu:p%40ss%3Aw%2Frd@db.example:3306/chat"
        );
        let sqlite = SetupForm::default();
        assert_eq!(
            sqlite.database_url(&config).expect("url").expose_secret(),
            "sqlite://data/kefu.db"
        );
        let missing = SetupForm {
            kind: "postgres".into(),
            ..SetupForm::default()
        };
        assert!(missing.database_url(&config).is_err());
    }
}
