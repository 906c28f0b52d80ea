//! Where settings become the running server. [`Config`] is plain data (parsed and checked,
//! nothing opened); [`services`] opens what it names — the GeoIP database, the mail relay's
//! client, the HTTP client for admins' addresses, the translation provider, the broker that
//! links the nodes — and [`assemble`] builds the state every request shares from the settings,
//! those services and the store. Nothing else turns settings into live objects, so a test can
//! replace one service between the two steps and run the real server around it.

use crate::config::{Config, ConfigError};
use crate::realtime::{self, Realtime, Services};
use crate::web::state::AppState;
use std::sync::Arc;

/// Opens the services `config` names. The error names the key at fault.
pub fn services(config: &Config) -> Result<Services, ConfigError> {
    let invalid = |key: &'static str| move |message: String| ConfigError::Invalid { key, message };
    let mail = crate::mail::MailSetup::open(config.mail.clone())
        .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
    let geoip = config
        .geoip
        .as_deref()
        .map(|path| crate::geoip::Geo::open(path).map(Arc::new))
        .transpose()
        .map_err(invalid("geoip.database"))?;
    let outbound = outbound(&config.outbound)?;
    let translation = config
        .translation
        .clone()
        .setup(&outbound)
        .map_err(invalid("translation"))?;
    Ok(Services {
        mail,
        geoip,
        translation,
        outbound,
        broker: config.bus.broker(),
    })
}

/// The HTTP client for addresses admins type, with the exceptions `policy` makes.
pub fn outbound(
    policy: &crate::outbound::Policy,
) -> Result<crate::outbound::Outbound, ConfigError> {
    crate::outbound::Outbound::new(policy.clone(), Arc::new(crate::outbound::SystemLookup)).map_err(
        |message| ConfigError::Invalid {
            key: "outbound.allow",
            message,
        },
    )
}

/// The real-time core's settings, as configured.
fn realtime_settings(config: &Config) -> realtime::Settings {
    realtime::Settings {
        messages_per_minute: config.messages_per_minute,
        idle_timeout_ms: config.idle_timeout_ms,
        max_connections_per_ip: config.max_connections_per_ip,
        max_connections: config.max_connections,
        budgets: config.budgets.clone(),
        uploads: config.uploads,
        mail_limits: config.mail_limits,
        webhook_retry_ms: config.webhook_retry_ms,
    }
}

/// The server's state from its settings, its services and the connected `store`
/// (`store::connect`, which ran the migrations); starts the background work.
pub async fn assemble(
    config: &Config,
    services: Services,
    store: Arc<dyn store::Store>,
) -> crate::Result<AppState> {
    let leptos_options = crate::site::load(&config.leptos_toml, config.bind)?;
    let realtime =
        Arc::new(Realtime::new(store.clone(), realtime_settings(config), services).await?);
    realtime.webhooks.start();
    realtime::assign::follow_other_nodes(&realtime);
    realtime::snooze::start(&realtime);
    Ok(AppState {
        realtime,
        store,
        leptos_options,
        metrics: Arc::new(crate::metrics::Metrics::default()),
        widget_dir: config.widget_dir.clone(),
        config_file: config.file.clone(),
        mail_locked: config.mail_locked,
        translation_locked: config.translation_locked,
        edge: Arc::new(config.edge.clone()),
        http: config.http,
        demo: config.demo,
    })
}

/// [`services`] then [`assemble`]: the state `kefu serve` runs with.
pub async fn build_state(config: &Config, store: Arc<dyn store::Store>) -> crate::Result<AppState> {
    assemble(config, services(config)?, store).await
}
