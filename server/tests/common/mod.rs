//! Shared helpers for the server's integration tests: spawn a real server on `127.0.0.1:0`
//! over a real database, and create or drop per-test databases on the local servers.
#![allow(dead_code)] // each test binary uses a different subset of these helpers

pub mod client;
pub mod mmdb;
pub mod proxy;

use protocol::SiteId;
use server::config::{Config, LogFormat};
use server::realtime::Services;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Password of the demo admin every test server gets.
pub const DEMO_PASSWORD: &str = "test-demo-password";

/// A running server; stops when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The store it serves, for arranging data directly.
    pub store: Arc<dyn store::Store>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<server::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// `http://addr` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server result");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn workspace_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
}

/// A server over a fresh SQLite database in a temp dir, with the demo site and admin.
pub async fn spawn_sqlite() -> TestServer {
    spawn_sqlite_with(|_| {}).await
}

/// A server over a fresh SQLite database with adjusted configuration.
pub async fn spawn_sqlite_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
    spawn_sqlite_wired(adjust, |_| {}).await
}

/// A server over a fresh SQLite database with adjusted configuration, and services (opened
/// from it by `server::wiring::services`) then replaced by `wire`: a translation provider or
/// an outbound client of the test's own.
pub async fn spawn_sqlite_wired(
    adjust: impl FnOnce(&mut Config),
    wire: impl FnOnce(&mut Services),
) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/kefu.db", dir.path().display());
    let mut server = spawn_on(&url, None, adjust, wire).await;
    server._dir = Some(dir);
    server
}

/// A server over a fresh SQLite database whose size `limit` caps, so a test can fill its disk
/// and give the space back while it runs (see [`store::PageLimit`]).
pub async fn spawn_sqlite_limited(
    limit: store::PageLimit,
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/kefu.db", dir.path().display());
    let database_url = store::DatabaseUrl::parse(&url).expect("database url");
    let store = store::connect_sqlite_limited(&database_url, limit)
        .await
        .expect("store");
    let mut server = spawn_on(&url, Some(store), adjust, |_| {}).await;
    server._dir = Some(dir);
    server
}

/// A server over the given database URL, with the demo site and admin.
pub async fn spawn(url: &str) -> TestServer {
    spawn_with(url, |_| {}).await
}

/// A server over `url` with configuration changed by `adjust` (limits, caps).
pub async fn spawn_with(url: &str, adjust: impl FnOnce(&mut Config)) -> TestServer {
    spawn_on(url, None, adjust, |_| {}).await
}

/// The configuration test servers start from, over the database at `url`.
pub fn config(url: &str) -> Config {
    Config {
        bind: "127.0.0.1:0".parse().expect("addr"),
        database_url: store::DatabaseUrl::parse(url).expect("database url"),
        log_format: LogFormat::Human,
        log_level: "warn".into(),
        leptos_toml: workspace_file("Leptos.toml"),
        widget_dir: workspace_file("target/widget"),
        max_connections_per_ip: 10_000,
        messages_per_minute: 60,
        idle_timeout_ms: 30_000,
        mail: server::mail::MailSettings::default(),
        mail_limits: server::mail::MailLimits::default(),
        // Tests that save settings point this at a file of their own.
        file: std::path::PathBuf::from("/nonexistent/kefu.toml"),
        mail_locked: false,
        translation_locked: false,
        webhook_retry_ms: 1_000,
        geoip: None,
        translation: server::translate::TranslationSection::default(),
        outbound: server::outbound::Policy::default(),
        bus: server::bus::Bus::InProcess,
        edge: server::edge::Edge::default(),
        max_connections: 100_000,
        http: server::http_server::HttpLimits::default(),
        // Tests drive many visitors from 127.0.0.1; the budget tests switch them on.
        budgets: server::realtime::budgets::BudgetLimits::off(),
        uploads: server::realtime::uploads::UploadLimits::default(),
        demo: true,
    }
}

/// A server over `store` when given (opened on `url`), else over a store connected to `url`.
async fn spawn_on(
    url: &str,
    store: Option<Arc<dyn store::Store>>,
    adjust: impl FnOnce(&mut Config),
    wire: impl FnOnce(&mut Services),
) -> TestServer {
    let mut config = config(url);
    adjust(&mut config);
    let store = match store {
        Some(store) => store,
        None => store::connect(&config.database_url).await.expect("store"),
    };
    let mut services = server::wiring::services(&config).expect("services");
    wire(&mut services);
    let state = server::wiring::assemble(&config, services, store)
        .await
        .expect("state");
    server::web::demo::ensure(state.store.as_ref(), Some(DEMO_PASSWORD.into()))
        .await
        .expect("demo data");
    let store = state.store.clone();
    let listener = server::bind(config.bind).expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server::serve(listener, state, async {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        store,
        shutdown: Some(tx),
        handle: Some(handle),
        _dir: None,
    }
}

/// `[outbound] allow` set to `allow`.
pub fn allow(allow: &[&str]) -> server::outbound::Policy {
    let allow: Vec<String> = allow.iter().map(|entry| entry.to_string()).collect();
    server::outbound::Policy::parse(&allow).expect("allow list")
}

/// The outbound client with `allow` as `[outbound] allow`, resolving the `(name, address)`
/// pairs of `names` instead of asking the system (when there are any): a test's stand-in on
/// 127.0.0.1 is reached only when allowed, as in production.
pub fn outbound(allow: &[&str], names: &[(&str, &str)]) -> server::outbound::Outbound {
    use server::outbound::{FixedLookup, Lookup, Outbound, SystemLookup};
    let lookup: Arc<dyn Lookup> = if names.is_empty() {
        Arc::new(SystemLookup)
    } else {
        let mut table = std::collections::HashMap::<String, Vec<std::net::IpAddr>>::new();
        for (name, address) in names {
            table
                .entry(name.to_string())
                .or_default()
                .push(address.parse().expect("an address"));
        }
        Arc::new(FixedLookup(table))
    };
    Outbound::new(self::allow(allow), lookup).expect("client")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database created for one test on a local server; dropped by [`TestDatabase::drop_now`].
pub struct TestDatabase {
    /// Server URL with the admin database (used to drop it again).
    admin_url: String,
    /// The new database's name.
    pub name: String,
    /// URL of the new database.
    pub url: String,
}

impl TestDatabase {
    /// Creates a uniquely named database next to the one in `admin_url`.
    pub async fn create(admin_url: &str) -> TestDatabase {
        use sqlx::Connection;
        let name = format!(
            "kefu_srv_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let (base, _) = admin_url.rsplit_once('/').expect("url has a database");
        if admin_url.starts_with("postgres") {
            let mut conn = sqlx::PgConnection::connect(admin_url)
                .await
                .expect("connect postgres");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create database");
        } else {
            let mut conn = sqlx::MySqlConnection::connect(admin_url)
                .await
                .expect("connect mysql");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {name} CHARACTER SET utf8mb4"
            )))
            .execute(&mut conn)
            .await
            .expect("create database");
        }
        TestDatabase {
            admin_url: admin_url.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Drops the database (call at the end of the test).
    pub async fn drop_now(self) {
        use sqlx::Connection;
        if self.admin_url.starts_with("postgres") {
            let mut conn = sqlx::PgConnection::connect(&self.admin_url)
                .await
                .expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await
            .expect("drop database");
        } else {
            let mut conn = sqlx::MySqlConnection::connect(&self.admin_url)
                .await
                .expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {}",
                self.name
            )))
            .execute(&mut conn)
            .await
            .expect("drop database");
        }
    }
}

/// The `kefu` binary, run from the workspace as an operator would, with no database URL or
/// configuration file from the environment.
pub fn kefu() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kefu"));
    command
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_CONFIG")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    command
}

/// An install's beginnings in `store`: the site `shop` (translating) answered by the admin
/// `mei@shop.example` (password `mei-password`), and the visitor token secret.
pub async fn shop_with_admin(store: &dyn store::Store) -> store::Site {
    let site = store
        .create_site(store::NewSite {
            public_key: "shop".into(),
            name: "Shop".into(),
            allowed_origins: vec!["https://shop.example".into()],
            widget_settings: serde_json::json!({"translate": true}),
            created_at: 1,
        })
        .await
        .expect("site");
    server::agents::add(
        store,
        server::agents::AgentSpec {
            email: "mei@shop.example".into(),
            display_name: "Mei".into(),
            role: store::Role::Admin,
            max_chats: 5,
            site_keys: vec!["shop".into()],
            password: Some("mei-password".into()),
        },
    )
    .await
    .expect("agent");
    store
        .secret("visitor_token_key", &|| "s3cret".into())
        .await
        .expect("secret");
    site
}

/// The PostgreSQL admin URL the suite uses (`PG_URL`, else the local default).
pub fn pg_url() -> String {
    std::env::var("PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The MariaDB/MySQL admin URL the suite uses (`MYSQL_URL`, else the local default).
pub fn mysql_url() -> String {
    std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// Calls the console's server function at `path` with a form body as the holder of `cookie`,
/// from the console's own origin; returns the status and the body.
pub async fn server_fn(
    server: &TestServer,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    server_fn_from(server, &server.url(""), cookie, path, form).await
}

/// As [`server_fn`], from the page at `origin`.
pub async fn server_fn_from(
    server: &TestServer,
    origin: &str,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let request = reqwest::Client::new()
        .post(server.url(path))
        .header("origin", origin)
        .header("cookie", cookie)
        .header("accept", "application/json")
        .form(form)
        .send();
    // A server function that never answers fails here, named, instead of hanging the suite.
    let response = tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within {REQUEST_TIMEOUT:?}"))
        .expect("server function");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The longest a test waits for the server to answer one request: far beyond any answer the
/// suite expects, so reaching it means the server is stuck.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Signs an agent in directly through the store; returns the `Cookie` header value.
pub async fn agent_cookie(
    store: &dyn store::Store,
    email: &str,
    site_ids: &[SiteId],
) -> (store::AgentId, String) {
    agent_with_limit(store, email, site_ids, 5).await
}

/// As [`agent_cookie`], for an agent allowed `max_chats` conversations at once.
pub async fn agent_with_limit(
    store: &dyn store::Store,
    email: &str,
    site_ids: &[SiteId],
    max_chats: i32,
) -> (store::AgentId, String) {
    agent_with_role(store, email, site_ids, max_chats, store::Role::Agent).await
}

/// As [`agent_cookie`], for an administrator.
pub async fn admin_cookie(store: &dyn store::Store, email: &str) -> (store::AgentId, String) {
    agent_with_role(store, email, &[], 5, store::Role::Admin).await
}

async fn agent_with_role(
    store: &dyn store::Store,
    email: &str,
    site_ids: &[SiteId],
    max_chats: i32,
    role: store::Role,
) -> (store::AgentId, String) {
    let agent = store
        .create_agent(store::NewAgent {
            email: email.to_string(),
            password_hash: "unused".into(),
            display_name: email.split('@').next().unwrap_or("agent").to_string(),
            role,
            language: "en".into(),
            max_chats,
            created_at: server::now_ms(),
        })
        .await
        .expect("agent");
    for site in site_ids {
        store
            .add_agent_to_site(*site, agent.id)
            .await
            .expect("membership");
    }
    let token = format!("test-token-{email}");
    store
        .create_session(
            &app::session::token_hash(&token),
            agent.id,
            server::now_ms() + 3_600_000,
        )
        .await
        .expect("session");
    (
        agent.id,
        format!("{}={token}", app::session::SESSION_COOKIE),
    )
}

/// Creates a site with the given allowed origins; returns (id, public key).
pub async fn site(
    store: &dyn store::Store,
    key: &str,
    origins: &[&str],
) -> (store::SiteId, String) {
    let site = store
        .create_site(store::NewSite {
            public_key: key.to_string(),
            name: key.to_string(),
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            widget_settings: serde_json::json!({}),
            created_at: server::now_ms(),
        })
        .await
        .expect("site");
    (site.id, site.public_key)
}

/// Bans the addresses `cidr` covers from site `site_id`, for good, as an administrator does in
/// the console at `console` (so every node drops its copy of the site's bans).
pub async fn ban_address(server: &TestServer, console: &str, site_id: SiteId, cidr: &str) {
    static BANNERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = BANNERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let email = format!("banner-{n}@kefu.test");
    let (_, admin) = admin_cookie(server.store.as_ref(), &email).await;
    let site = site_id.to_string();
    let form = [
        ("site", site.as_str()),
        ("address", cidr),
        ("reason", "abuse"),
        ("days", "0"),
    ];
    let (status, body) =
        server_fn_from(server, console, &admin, "/api/admin/bans/add", &form).await;
    assert_eq!(status, 200, "ban: {body}");
}

/// A visitor who said hello over HTTP from `origin`, with their token; and their id.
pub async fn http_visitor(
    server: &TestServer,
    key: &str,
    origin: &str,
) -> (client::Http, store::VisitorId) {
    let mut http = client::Http::new(&server.url(""), "visitor");
    http.origin = Some(origin.to_string());
    let (status, frames) = http
        .send(serde_json::json!([client::visitor_hello(key, None, &[])]))
        .await;
    assert_eq!(status, 200);
    let Some(protocol::ServerFrame::Welcome(welcome)) = frames.first() else {
        panic!("expected welcome, got {frames:?}");
    };
    http.token = welcome.visitor_token.clone();
    let id = welcome.visitor_id.expect("visitor id");
    (http, id)
}

/// nginx (Debian's package; `scripts/tools.sh --test` installs it) running the configuration
/// `file` with `dir` as its prefix, its output on the test's.
pub fn nginx(file: &str, dir: &str) -> std::process::Command {
    let binary = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|n| std::path::Path::new(n).exists())
        .unwrap_or("nginx");
    let mut command = std::process::Command::new(binary);
    command
        .args(["-c", file, "-p", dir])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    command
}

/// Waits until the server at `base` answers `/readyz` (a `kefu serve` child process starting);
/// panics after 20 s.
pub async fn wait_ready(base: &str) {
    let client = reqwest::Client::new();
    for _ in 0..400 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{base} did not become ready");
}
