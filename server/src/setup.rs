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
//! typed is escaped when shown again, and passwords are never shown again. They speak English
//! or Simplified Chinese ([`text`]): the language chosen with their switch (kept in the
//! console's language cookie, so the console goes on in it), else the browser's.

use std::sync::{Arc, Mutex};

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use store::{ConnectProblem, DatabaseUrl, Role};

use crate::agents::{AgentSpec, create_site};
use crate::answers::{
    MIN_PASSWORD_CHARS, PasswordProblem, check_email, check_origins, check_password,
    check_site_name,
};
use crate::config::{Config, Overrides};
use crate::init::{Answers, create_sqlite_dir, snippet, write_config};
use text::{Lang, Text, fill, fill_in, say};

mod text;

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
    /// The HTTP client the translation provider is tried through.
    outbound: crate::outbound::Outbound,
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
    let token: String = app::session::new_token().chars().take(24).collect();
    let addr = listener.local_addr()?;
    let (finished, done) = tokio::sync::oneshot::channel();
    let wizard = Arc::new(Wizard {
        token: token.clone(),
        outbound: crate::wiring::outbound(&config.outbound)?,
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
    crate::http_server::serve(listener, app, limits, Arc::default(), async move {
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
    app::session::cookie_value(headers, COOKIE).is_some_and(|token| {
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
            let lang = language(&parts.headers);
            Err((StatusCode::FORBIDDEN, Html(token_page(lang, None))).into_response())
        }
    }
}

/// The language the request's page speaks (see the module header).
struct Speaks(Lang);

impl<S: Send + Sync> FromRequestParts<S> for Speaks {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Speaks(language(&parts.headers)))
    }
}

/// The language chosen with the switch, else the browser's.
fn language(headers: &HeaderMap) -> Lang {
    match app::session::cookie_value(headers, app::i18n::LANG_COOKIE) {
        Some(chosen) => Lang::from_tag(&chosen),
        None => app::i18n::accepted_language(headers),
    }
}

#[derive(Deserialize)]
struct PageQuery {
    /// The setup token, from the link in the log.
    token: Option<String>,
    /// A language chosen with the switch (`en`, `zh-CN`).
    lang: Option<String>,
}

/// `GET /setup`: the token form, or (with the token) the wizard; `?lang=` switches language.
async fn page(
    State(wizard): State<Arc<Wizard>>,
    Query(query): Query<PageQuery>,
    Speaks(lang): Speaks,
    headers: HeaderMap,
) -> Response {
    let given = query.token.as_deref().is_some_and(|token| {
        crate::edge::constant_time_eq(token.as_bytes(), wizard.token.as_bytes())
    });
    if given || query.lang.is_some() {
        let mut response = Redirect::to("/setup").into_response();
        if let Some(chosen) = query.lang {
            let cookie = app::session::CookiePolicy::default().readable(
                app::i18n::LANG_COOKIE,
                Lang::from_tag(&chosen).tag().to_owned(),
            );
            if let Ok(value) = cookie.to_string().parse() {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        if given {
            response = with_cookie(&wizard.token, response);
        }
        return response;
    }
    if !authorized(&wizard, &headers) {
        return Html(token_page(lang, None)).into_response();
    }
    Html(wizard_page(lang, &SetupForm::default(), None)).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
}

/// `POST /setup/token`.
async fn give_token(
    State(wizard): State<Arc<Wizard>>,
    Speaks(lang): Speaks,
    Form(form): Form<TokenForm>,
) -> Response {
    if crate::edge::constant_time_eq(form.token.trim().as_bytes(), wizard.token.as_bytes()) {
        return with_cookie(&wizard.token, Redirect::to("/setup").into_response());
    }
    (
        StatusCode::FORBIDDEN,
        Html(token_page(lang, Some(say(lang, Text::WrongToken)))),
    )
        .into_response()
}

fn with_cookie(token: &str, mut response: Response) -> Response {
    if let Ok(value) = format!("{COOKIE}={token}; Path=/setup; HttpOnly; SameSite=Strict").parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
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
    fn database_url(&self, lang: Lang, config: &Config) -> Result<DatabaseUrl, String> {
        let bad_url = |error: store::Error| fill(lang, Text::BadDatabaseUrl, &[&error.to_string()]);
        let scheme = match self.kind.as_str() {
            "" | "sqlite" => {
                return Ok(match config.database_url.backend() {
                    store::Backend::Sqlite => config.database_url.clone(),
                    _ => DatabaseUrl::parse("sqlite://data/kefu.db").map_err(bad_url)?,
                });
            }
            "mysql" => "mysql",
            "postgres" => "postgres",
            _ => return Err(say(lang, Text::ChooseDatabase).into()),
        };
        let host = self.host.trim();
        let name = self.database.trim();
        if host.is_empty() || name.is_empty() || self.user.trim().is_empty() {
            return Err(say(lang, Text::FillDatabase).into());
        }
        let port = match self.port.trim() {
            "" if scheme == "mysql" => 3306,
            "" => 5432,
            port => port
                .parse::<u16>()
                .map_err(|_| say(lang, Text::BadPort).to_owned())?,
        };
        let mut url = url::Url::parse(&format!("{scheme}://{host}:{port}/"))
            .map_err(|_| fill(lang, Text::BadHost, &[&format!("{host:?}")]))?;
        url.set_path(name);
        url.set_username(self.user.trim())
            .and_then(|()| {
                url.set_password(
                    Some(&self.password)
                        .filter(|p| !p.is_empty())
                        .map(String::as_str),
                )
            })
            .map_err(|()| say(lang, Text::BadUser).to_owned())?;
        DatabaseUrl::parse(url.as_str()).map_err(bad_url)
    }

    /// The translation provider the fields describe.
    fn translation(&self) -> crate::translate::TranslationSection {
        crate::translate::TranslationSection {
            provider: optional(&self.translation_provider),
            url: optional(&self.translation_url),
            api_key: optional(&self.translation_api_key),
            ..Default::default()
        }
    }

    /// What to tell about `error` from trying this database.
    fn problem(&self, lang: Lang, error: &store::Error) -> String {
        let (host, user, name) = (self.host.trim(), self.user.trim(), self.database.trim());
        let (user, quoted) = (format!("{user:?}"), format!("{name:?}"));
        match error.connect_problem() {
            Some(ConnectProblem::Unreachable) => fill(lang, Text::Unreachable, &[host]),
            Some(ConnectProblem::BadCredentials) => fill(lang, Text::BadCredentials, &[&user]),
            Some(ConnectProblem::NoDatabase) => fill(lang, Text::NoDatabase, &[&quoted, name]),
            Some(ConnectProblem::NoPrivilege) => fill(lang, Text::NoPrivilege, &[&user, &quoted]),
            None => fill(lang, Text::DatabaseFailed, &[&error.to_string()]),
        }
    }

    /// The relay and the sender, when a relay is given (a sender alone is ignored).
    fn mail(&self) -> (Option<String>, Option<String>) {
        let smtp_url = optional(&self.smtp_url);
        let from = smtp_url.as_ref().and(optional(&self.email_from));
        (smtp_url, from)
    }

    /// The mailer for the relay and sender the form names; `None` without a relay.
    fn mailer(&self, lang: Lang) -> Result<Option<crate::mail::Mailer>, String> {
        use crate::mail::BadMailSetting;
        match self.mail() {
            (None, _) => Ok(None),
            (Some(_), None) => Err(say(lang, Text::SenderMissing).into()),
            (Some(url), Some(from)) => {
                crate::mail::Mailer::new(&url, &from)
                    .map(Some)
                    .map_err(|error| match error {
                        BadMailSetting::SmtpUrl(why) => fill(lang, Text::BadSmtpUrl, &[&why]),
                        BadMailSetting::From(why) => fill(lang, Text::BadSender, &[&why]),
                    })
            }
        }
    }
}

/// `text` trimmed, `None` when that is empty.
fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Tries the database the form describes: `Ok` with what was reached, or what is wrong.
async fn try_database(
    wizard: &Wizard,
    lang: Lang,
    form: &SetupForm,
) -> Result<DatabaseUrl, String> {
    let url = form.database_url(lang, &wizard.config)?;
    create_sqlite_dir(&url).map_err(|error| fill(lang, Text::NoFolder, &[&error.to_string()]))?;
    store::check(&url)
        .await
        .map_err(|error| form.problem(lang, &error))?;
    Ok(url)
}

/// `POST /setup/test-database`: the test-connection button.
async fn test_database(
    State(wizard): State<Arc<Wizard>>,
    _: Authorized,
    Speaks(lang): Speaks,
    Form(form): Form<SetupForm>,
) -> Response {
    let result = try_database(&wizard, lang, &form).await;
    answer(result.map(|url| fill(lang, Text::Connected, &[&url.to_string()])))
}

/// `POST /setup/test-mail`: sends a test e-mail to the administrator's address through the
/// relay the form names.
async fn test_mail(_: Authorized, Speaks(lang): Speaks, Form(form): Form<SetupForm>) -> Response {
    let to = form.admin_email.trim();
    let result = match form.mailer(lang) {
        Err(message) => Err(message),
        Ok(None) => Err(say(lang, Text::RelayMissing).into()),
        Ok(Some(_)) if !to.contains('@') => Err(say(lang, Text::AdminEmailFirst).into()),
        Ok(Some(mailer)) => mailer
            .send(
                to,
                say(lang, Text::TestMailSubject),
                format!("{}\n", say(lang, Text::TestMailBody)),
            )
            .await
            .map(|()| fill(lang, Text::TestMailSent, &[to]))
            .map_err(|error| fill(lang, Text::MailRefused, &[&error.to_string()])),
    };
    answer(result)
}

/// `POST /setup/test-translation`: translates a sample with the provider the form names.
async fn test_translation(
    State(wizard): State<Arc<Wizard>>,
    _: Authorized,
    Speaks(lang): Speaks,
    Form(form): Form<SetupForm>,
) -> Response {
    let result = match form.translation().setup(&wizard.outbound) {
        Err(message) => Err(fill(lang, Text::BadTranslation, &[&message])),
        Ok(None) => Err(say(lang, Text::ChooseProvider).into()),
        Ok(Some(setup)) => setup
            .translator
            .translate("Hello, how can I help you?", Some("en"), "zh-CN")
            .await
            .map(|translation| fill(lang, Text::ProviderAnswered, &[&translation.text]))
            .map_err(|error| fill(lang, Text::ProviderSilent, &[&error.to_string()])),
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
    Speaks(lang): Speaks,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    let _one_at_a_time = wizard.finishing.lock().await;
    if wizard.finished.lock().map_or(true, |f| f.is_none()) {
        return (StatusCode::CONFLICT, Html(set_up_already_page(lang))).into_response();
    }
    match set_up(&wizard, lang, &form, &headers).await {
        Ok(done) => {
            if let Some(finished) = wizard.finished.lock().ok().and_then(|mut f| f.take()) {
                let _ = finished.send(());
            }
            Html(done).into_response()
        }
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(wizard_page(lang, &form, Some(&message))),
        )
            .into_response(),
    }
}

/// Does the set-up; returns the page that says it is done, or what to fix.
async fn set_up(
    wizard: &Wizard,
    lang: Lang,
    form: &SetupForm,
    headers: &HeaderMap,
) -> Result<String, String> {
    let email = check_email(&form.admin_email).map_err(|_| say(lang, Text::BadAdminEmail))?;
    let password = check_password(&form.admin_password).map_err(|problem| match problem {
        PasswordProblem::TooShort => fill(
            lang,
            Text::ShortAdminPassword,
            &[&MIN_PASSWORD_CHARS.to_string()],
        ),
        PasswordProblem::TooLong => fill(
            lang,
            Text::LongAdminPassword,
            &[&app::throttle::MAX_PASSWORD_BYTES.to_string()],
        ),
    })?;
    let site_name = check_site_name(&form.site_name).map_err(|_| say(lang, Text::BadSiteName))?;
    let origins = check_origins(&form.site_origins).map_err(|_| say(lang, Text::BadOrigins))?;
    form.mailer(lang)?;
    let (smtp_url, email_from) = form.mail();
    let translation = form.translation();
    translation
        .clone()
        .setup(&wizard.outbound)
        .map_err(|message| fill(lang, Text::BadTranslation, &[&message]))?;

    let database_url = try_database(wizard, lang, form).await?;
    let internal = |error: crate::Error| {
        tracing::error!(%error, "setting up failed");
        fill(lang, Text::SetupFailed, &[&error.to_string()])
    };
    let store = store::connect(&database_url)
        .await
        .map_err(|error| form.problem(lang, &error))?;
    let (admin, _) = crate::agents::add(
        store.as_ref(),
        AgentSpec {
            email,
            display_name: optional(&form.admin_name)
                .unwrap_or_else(|| say(lang, Text::DefaultAdminName).into()),
            role: Role::Admin,
            max_chats: 5,
            site_keys: Vec::new(),
            password: Some(password),
        },
    )
    .await
    .map_err(|error| internal(error.into()))?;
    let site = create_site(store.as_ref(), site_name, origins, &[admin.id])
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
    tracing::info!(admin = %admin.id, site = %site.id, "Kefu is set up");
    Ok(done_page(lang, &site.name, &snippet(&base, &site)))
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

const WIZARD_SCRIPT: &str = r#"const form = document.getElementById("setup");
for (const button of document.querySelectorAll("button[data-test]")) {
  button.addEventListener("click", async () => {
    const what = button.dataset.test;
    const out = document.getElementById(what + "-result");
    out.textContent = form.dataset.trying;
    out.className = "";
    const body = new URLSearchParams(new FormData(form));
    const response = await fetch("/setup/test-" + what, { method: "POST", body });
    out.textContent = await response.text();
    out.className = response.ok ? "ok" : "";
    out.setAttribute("role", response.ok ? "status" : "alert");
  });
}
"#;

/// A page in `lang` around `body`.
fn document(lang: Lang, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="{tag}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>"#,
        tag = lang.tag(),
        title = escape(say(lang, Text::Title)),
    )
}

/// The link to the same page in the other language (on the pages before the set-up is done:
/// after it, `/setup` is gone).
fn language_switch(lang: Lang) -> String {
    let other = lang.other();
    format!(
        r#"<p class="language"><a href="/setup?lang={tag}" hreflang="{tag}" lang="{tag}">{name}</a></p>"#,
        tag = other.tag(),
        name = app::i18n::t(other, app::i18n::Key::LanguageName),
    )
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;background:#f6f7f9;color:#1f2328;margin:0}\
main{max-width:40rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border-radius:10px;border:1px solid #d0d7de}\
h1{margin-top:0}\
.language{float:right;margin:0 0 0 1rem}\
.language a{color:#0969da}\
fieldset{border:1px solid #d0d7de;border-radius:8px;margin:0 0 1rem;padding:.75rem 1rem}\
label{display:flex;flex-direction:column;font-weight:600;margin:.4rem 0}\
label.choice{flex-direction:row;gap:.4rem;font-weight:400}\
input,select,textarea{font:inherit;font-weight:400;padding:.35rem .5rem;border:1px solid #d0d7de;border-radius:6px}\
button{font:inherit;padding:.45rem 1rem;border:0;border-radius:6px;background:#0969da;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#0969da;border:1px solid #0969da}\
[role=alert]{color:#cf222e;font-weight:600}.ok{color:#1a7f37;font-weight:600}\
textarea.snippet{width:100%;box-sizing:border-box;font-family:monospace}\
@media (max-width:40rem){main{margin:0;border:0;border-radius:0;padding:1rem}}";

/// `error`, if any, as the alert at the top of a page.
fn alert(error: Option<&str>) -> String {
    error
        .map(|e| format!(r#"<p role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default()
}

fn token_page(lang: Lang, error: Option<&str>) -> String {
    let say = |text| escape(say(lang, text));
    document(
        lang,
        &format!(
            r#"{switch}<h1>{title}</h1><p>{intro}</p>{error}
<form method="post" action="/setup/token"><label>{token} <input name="token" required autocomplete="off"></label><button type="submit">{next}</button></form>"#,
            switch = language_switch(lang),
            title = say(Text::Title),
            intro = say(Text::TokenIntro),
            error = alert(error),
            token = say(Text::SetupToken),
            next = say(Text::Continue),
        ),
    )
}

/// The wizard in `lang`, filled with `form` (passwords left empty) and `error` at the top.
fn wizard_page(lang: Lang, form: &SetupForm, error: Option<&str>) -> String {
    let say = |text| escape(say(lang, text));
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
            let shown = if name.is_empty() {
                say(Text::NoProvider)
            } else {
                name.to_owned()
            };
            format!(r#"<option value="{name}"{selected}>{shown}</option>"#)
        })
        .collect();
    document(
        lang,
        &format!(
            r#"{switch}<h1>{title}</h1>{error}
<form method="post" action="/setup" id="setup" data-trying="{trying}">
<fieldset><legend>{database_legend}</legend>
<label class="choice"><input type="radio" name="kind" value="sqlite"{sqlite}> {sqlite_label}</label>
<label class="choice"><input type="radio" name="kind" value="mysql"{mysql}> {mysql_label}</label>
<label class="choice"><input type="radio" name="kind" value="postgres"{postgres}> PostgreSQL</label>
<label>{host_label} <input name="host" value="{host}" placeholder="127.0.0.1"></label>
<label>{port_label} <input name="port" value="{port}" placeholder="{port_hint}"></label>
<label>{user_label} <input name="user" value="{user}" autocomplete="off"></label>
<label>{password_label} <input type="password" name="password" autocomplete="new-password"></label>
<label>{database_label} <input name="database" value="{database}" placeholder="kefu"></label>
<button type="button" class="secondary" data-test="database">{test_connection}</button>
<p id="database-result" role="status"></p>
</fieldset>
<fieldset><legend>{admin_legend}</legend>
<label>{email_label} <input type="email" name="admin_email" value="{admin_email}" required></label>
<label>{admin_name_label} <input name="admin_name" value="{admin_name}" placeholder="{default_admin_name}"></label>
<label>{admin_password_label} <input type="password" name="admin_password" minlength="{min_password}" required autocomplete="new-password"></label>
</fieldset>
<fieldset><legend>{site_legend}</legend>
<label>{site_name_label} <input name="site_name" value="{site_name}" required></label>
<label>{site_origins_label} <input name="site_origins" value="{site_origins}" placeholder="https://www.example.com" required></label>
</fieldset>
<fieldset><legend>{mail_legend}</legend>
<label>{smtp_label} <input name="smtp_url" value="{smtp_url}" placeholder="smtp://user:pass@smtp.example.com:587?tls=required"></label>
<label>{sender_label} <input name="email_from" value="{email_from}" placeholder="{sender_hint}"></label>
<button type="button" class="secondary" data-test="mail">{send_test_mail}</button>
<p id="mail-result" role="status"></p>
</fieldset>
<fieldset><legend>{translation_legend}</legend>
<label>{provider_label} <select name="translation_provider">{providers}</select></label>
<label>{provider_address_label} <input name="translation_url" value="{translation_url}" placeholder="http://127.0.0.1:5000"></label>
<label>{api_key_label} <input type="password" name="translation_api_key" autocomplete="off"></label>
<button type="button" class="secondary" data-test="translation">{test_provider}</button>
<p id="translation-result" role="status"></p>
</fieldset>
<button type="submit">{finish}</button>
</form>
<script src="/setup/wizard.js"></script>"#,
            switch = language_switch(lang),
            title = say(Text::Title),
            error = alert(error),
            trying = say(Text::Trying),
            database_legend = say(Text::DatabaseLegend),
            sqlite_label = say(Text::Sqlite),
            mysql_label = say(Text::Mysql),
            host_label = say(Text::Host),
            port_label = say(Text::Port),
            port_hint = say(Text::PortHint),
            user_label = say(Text::User),
            password_label = say(Text::Password),
            database_label = say(Text::DatabaseName),
            test_connection = say(Text::TestConnection),
            admin_legend = say(Text::AdminLegend),
            email_label = say(Text::Email),
            admin_name_label = say(Text::AdminName),
            default_admin_name = say(Text::DefaultAdminName),
            admin_password_label = escape(&fill(
                lang,
                Text::AdminPassword,
                &[&MIN_PASSWORD_CHARS.to_string()]
            )),
            min_password = MIN_PASSWORD_CHARS,
            site_legend = say(Text::SiteLegend),
            site_name_label = say(Text::SiteName),
            site_origins_label = say(Text::SiteOrigins),
            mail_legend = say(Text::MailLegend),
            smtp_label = say(Text::SmtpUrl),
            sender_label = say(Text::Sender),
            sender_hint = say(Text::SenderHint),
            send_test_mail = say(Text::SendTestMail),
            translation_legend = say(Text::TranslationLegend),
            provider_label = say(Text::Provider),
            provider_address_label = say(Text::ProviderAddress),
            api_key_label = say(Text::ApiKey),
            test_provider = say(Text::TestProvider),
            finish = say(Text::Finish),
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
        ),
    )
}

/// A second Finish, after the first set Kefu up.
fn set_up_already_page(lang: Lang) -> String {
    let say = |text| escape(say(lang, text));
    document(
        lang,
        &format!(
            r#"<h1>{title}</h1><p>{starting} <a href="/login">{open}</a></p>"#,
            title = say(Text::SetUpAlready),
            starting = say(Text::Starting),
            open = say(Text::OpenConsole),
        ),
    )
}

fn done_page(lang: Lang, site: &str, snippet: &str) -> String {
    let say = |text| escape(say(lang, text));
    document(
        lang,
        &format!(
            r#"<h1>{title}</h1>
<p class="ok">{saved}</p>
<p>{paste}</p>
<textarea class="snippet" readonly rows="4" aria-label="{snippet_label}">{snippet}</textarea>
<p><a href="/login">{open}</a></p>"#,
            title = say(Text::Done),
            saved = say(Text::Saved),
            paste = fill_in(
                &say(Text::PasteSnippet),
                &[&escape(site), "<code>&lt;/body&gt;</code>"]
            ),
            snippet_label = say(Text::EmbedSnippet),
            snippet = escape(snippet),
            open = say(Text::OpenConsole),
        ),
    )
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
            form.database_url(Lang::En, &config)
                .expect("url")
                .expose_secret(),
            "mysql://kefu:p%40ss%3Aw%2Frd@db.example:3306/chat"
        );
        let sqlite = SetupForm::default();
        assert_eq!(
            sqlite
                .database_url(Lang::En, &config)
                .expect("url")
                .expose_secret(),
            "sqlite://data/kefu.db"
        );
        let missing = SetupForm {
            kind: "postgres".into(),
            ..SetupForm::default()
        };
        assert!(missing.database_url(Lang::En, &config).is_err());
    }

    /// Every page the wizard can show in `lang`, each problem in its alert once.
    fn pages(lang: Lang) -> Vec<String> {
        let form = SetupForm {
            kind: "mysql".into(),
            ..SetupForm::default()
        };
        let mut pages = vec![
            token_page(lang, None),
            token_page(lang, Some(say(lang, Text::WrongToken))),
            wizard_page(lang, &SetupForm::default(), None),
            set_up_already_page(lang),
            done_page(lang, "Shop", "<script></script>"),
        ];
        pages.extend(
            Text::ALL
                .iter()
                .map(|&text| wizard_page(lang, &form, Some(&fill(lang, text, &["x", "y"])))),
        );
        pages
    }

    #[test]
    fn chinese_pages_say_nothing_in_english_and_declare_their_language() {
        // The English sentences, or what is between their placeholders.
        let english: Vec<&str> = Text::ALL
            .iter()
            .flat_map(|&text| say(Lang::En, text).split(['{', '}']))
            .map(|part| part.trim_matches(|c: char| c.is_ascii_punctuation() || c == ' '))
            .filter(|part| part.chars().filter(char::is_ascii_alphabetic).count() >= 3)
            .filter(|part| part.parse::<u8>().is_err())
            .collect();
        assert!(english.contains(&"Test connection"), "{english:?}");
        for page in pages(Lang::Zh) {
            assert!(page.contains(r#"<html lang="zh-CN">"#), "{page}");
            for sentence in &english {
                assert!(
                    !page.contains(sentence) && !page.contains(&escape(sentence)),
                    "{sentence:?} in a Chinese page: {page}"
                );
            }
        }
        for page in pages(Lang::En) {
            assert!(page.contains(r#"<html lang="en">"#), "{page}");
        }
        assert!(token_page(Lang::En, None).contains(r#"<a href="/setup?lang=zh-CN""#));
        assert!(
            wizard_page(Lang::Zh, &SetupForm::default(), None).contains(r#"lang="en">English</a>"#)
        );
    }

    #[test]
    fn problems_speak_the_pages_language() {
        let config = Config::load(&Overrides {
            database_url: Some("sqlite://data/kefu.db".into()),
            ..Default::default()
        })
        .expect("config");
        let form = SetupForm {
            kind: "postgres".into(),
            host: "db.example".into(),
            user: "kefu".into(),
            database: "chat".into(),
            port: "many".into(),
            smtp_url: "smtp://127.0.0.1:25".into(),
            ..SetupForm::default()
        };
        let problem = |lang| form.database_url(lang, &config).expect_err("bad port");
        assert_eq!(problem(Lang::En), say(Lang::En, Text::BadPort));
        assert_eq!(problem(Lang::Zh), say(Lang::Zh, Text::BadPort));
        let mail = |lang| form.mailer(lang).err();
        assert_eq!(
            mail(Lang::Zh).as_deref(),
            Some(say(Lang::Zh, Text::SenderMissing))
        );
        let unreachable = store::Error::Database(sqlx::Error::PoolTimedOut);
        assert_eq!(
            form.problem(Lang::Zh, &unreachable),
            "无法连接到 db.example 上的数据库服务器：它在运行吗？主机和端口填对了吗？"
        );
        assert!(
            form.problem(Lang::Zh, &store::Error::NotFound)
                .starts_with("数据库出错：")
        );
    }
}
