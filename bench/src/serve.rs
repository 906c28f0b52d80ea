//! `kefu-bench server DIR [DATABASE_URL BUS_URL]`: the real kefu server — the library
//! `kefu serve` runs — in its own process, so its memory can be read from `/proc`. Over a fresh
//! SQLite database in DIR, or, for the cluster scenario, as one node over a shared database and
//! bus.
//!
//! Before serving it creates the bench site and a few signed-in agents directly through the
//! store (as the integration tests do; a later node finds them there) and prints them with the
//! address as one JSON line.

use crate::Result;
use crate::children::{exit_when_stdin_closes, reply};
use serde::{Deserialize, Serialize};
use server::config::{Config, Overrides};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Messages per visitor per minute: the bench's visitors send far faster than people type.
pub const MESSAGES_PER_MINUTE: u32 = 1_000_000;

/// Agents created for the bench (each with its own session).
const AGENTS: usize = 4;

/// What the coordinator needs to know about the server it started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fixture {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The bench site's public key.
    pub site_key: String,
    /// `Cookie` header values of signed-in agents of the site.
    pub cookies: Vec<String>,
    /// The SQLite file, for checking what was stored.
    pub database: PathBuf,
}

/// Runs the server until stdin closes.
pub fn main(dir: Option<&str>, database_url: Option<&str>, bus_url: Option<&str>) -> Result<()> {
    exit_when_stdin_closes(|| {});
    let dir = PathBuf::from(dir.ok_or("usage: kefu-bench server DIR")?);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // A file of its own keeps a `kefu.toml` in the working directory out of the measurement.
    // The soak writes one first (its budgets are on); the other scenarios get this one.
    let config_file = dir.join("kefu.toml");
    if !config_file.exists() {
        // Thousands of visitors from one machine: no per-address budgets.
        std::fs::write(&config_file, "[budgets]\nenabled = false\n")?;
    }
    let database = dir.join("kefu.db");
    // As `kefu serve` does, before the configuration works out its connection caps.
    server::http_server::raise_open_file_limit();
    let config = Config::load(&Overrides {
        config: Some(config_file),
        database_url: Some(database_url.map_or_else(
            || format!("sqlite://{}", database.display()),
            str::to_string,
        )),
        bus_url: bus_url.map(str::to_string),
        bind: Some("127.0.0.1:0".into()),
        log_level: Some("warn".into()),
        leptos_toml: Some(workspace.join("Leptos.toml")),
        widget_dir: Some(workspace.join("target/widget")),
        max_connections_per_ip: Some(1_000_000),
        messages_per_minute: Some(MESSAGES_PER_MINUTE),
        ..Overrides::default()
    })?;
    server::telemetry::init(config.log_format, &config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state =
            server::wiring::build_state(&config, store::connect(&config.database_url).await?)
                .await?;
        let (site_key, cookies) = fixtures(state.store.as_ref()).await?;
        let listener = server::bind(config.bind)?;
        reply(&Fixture {
            addr: listener.local_addr()?,
            site_key,
            cookies,
            database,
        })?;
        server::serve(listener, state, std::future::pending()).await?;
        Ok(())
    })
}

/// The bench site and its signed-in agents.
async fn fixtures(store: &dyn store::Store) -> Result<(String, Vec<String>)> {
    let cookie = |n: usize| format!("{}=bench-session-{n}", app::session::SESSION_COOKIE);
    if let Some(site) = store.site_by_key("pk_bench").await? {
        // Another node of the cluster made them.
        return Ok((site.public_key, (0..AGENTS).map(cookie).collect()));
    }
    let now = server::now_ms();
    let site = store
        .create_site(store::NewSite {
            public_key: "pk_bench".into(),
            name: "Bench".into(),
            allowed_origins: vec![crate::client::ORIGIN.into()],
            widget_settings: serde_json::json!({}),
            created_at: now,
        })
        .await?;
    let mut cookies = Vec::new();
    for n in 0..AGENTS {
        let agent = store
            .create_agent(store::NewAgent {
                email: format!("agent{n}@bench.example"),
                password_hash: "unused".into(),
                display_name: format!("Agent {n}"),
                role: store::Role::Agent,
                language: "en".into(),
                max_chats: 1_000,
                created_at: now,
            })
            .await?;
        store.add_agent_to_site(site.id, agent.id).await?;
        let token = format!("bench-session-{n}");
        store
            .create_session(
                &app::session::token_hash(&token),
                agent.id,
                now + 24 * 3_600_000,
            )
            .await?;
        cookies.push(cookie(n));
    }
    Ok((site.public_key, cookies))
}
