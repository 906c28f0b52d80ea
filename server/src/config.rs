//! Configuration: built-in defaults → `kefu.toml` → `KEFU_*` environment → command-line flags.
//!
//! The result is a plain [`Config`] value handed to whoever needs it; there is no global. It
//! is data only: values are parsed and checked here, and nothing is opened (`crate::wiring`
//! opens the GeoIP database, the mailer, the HTTP client and the translation provider it
//! names). The layers are merged in `sources` (every key of the file has an environment
//! variable); unknown keys are errors that name the key and where it was set.

mod sources;

pub use sources::{keys, variable};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use store::DatabaseUrl;

/// The file read when `--config` is not given (and it is fine for it not to exist).
pub const DEFAULT_CONFIG_FILE: &str = "kefu.toml";

/// Everything `kefu serve` needs to know; built by [`Config::load`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// Where the data lives; the scheme picks the backend (sqlite, postgres, mysql).
    pub database_url: DatabaseUrl,
    /// Log output: `human` for terminals, `json` for log collectors.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `kefu=debug,sqlx=warn`.
    pub log_level: String,
    /// The Leptos site options file the console is served with (see `Leptos.toml`).
    pub leptos_toml: PathBuf,
    /// Directory holding the built visitor widget (`widget.js`, wasm, css).
    pub widget_dir: PathBuf,
    /// Most simultaneous real-time connections from one IP address (a flood guard).
    pub max_connections_per_ip: u32,
    /// Messages one visitor may send per minute over all their connections (a flood guard).
    pub messages_per_minute: u32,
    /// A WebSocket silent this long is dead; the server pings at half this interval.
    pub idle_timeout_ms: u32,
    /// Outgoing mail (transcripts, leave-message replies and notifications): the relay, the
    /// sender, and whether agents hear of leave-messages.
    pub mail: crate::mail::MailSettings,
    /// Caps on the mail visitors can cause: transcripts per address and per site a day, and
    /// how leave-message notifications are collected into digests.
    pub mail_limits: crate::mail::MailLimits,
    /// The configuration file: the one read, or the one the console writes settings to.
    pub file: PathBuf,
    /// The mail settings come from flags or `KEFU_*` variables, which the file cannot
    /// override: the console shows them but does not offer to change them.
    pub mail_locked: bool,
    /// Some `[translation]` key comes from a `KEFU_TRANSLATION__*` variable, which the file
    /// cannot override: the console shows the settings but does not offer to change them.
    pub translation_locked: bool,
    /// The delay before a failed webhook delivery's first retry; each next one doubles.
    pub webhook_retry_ms: u64,
    /// The GeoIP database that locates visitors for agents; `None`: not located.
    pub geoip: Option<PathBuf>,
    /// Machine translation between agents and visitors (`provider` unset: none).
    pub translation: crate::translate::TranslationSection,
    /// The exceptions `[outbound] allow` makes to the refusal of internal addresses by the
    /// HTTP client for addresses admins type (webhooks, translation).
    pub outbound: crate::outbound::Policy,
    /// How this node reaches the others sharing its database: in-process when it is alone.
    pub bus: crate::bus::Bus,
    /// What Kefu believes about requests at its edge: the proxies in front of it, its own
    /// public address, who may read `/metrics` (`SECURITY.md`).
    pub edge: crate::edge::Edge,
    /// Most simultaneous real-time connections on this node, all addresses together: past it
    /// a new connection is refused with `unavailable` instead of the process running out of
    /// file descriptors.
    pub max_connections: u32,
    /// Timeouts and the connection cap of the HTTP server itself.
    pub http: crate::http_server::HttpLimits,
    /// What one address, and one site, may make per hour (`[budgets]`).
    pub budgets: crate::realtime::budgets::BudgetLimits,
    /// Storage quotas for uploads, and how long an unsent one is kept (`[uploads]`).
    pub uploads: crate::realtime::uploads::UploadLimits,
    /// `serve --demo`: the demo site, admin and the `/demo` page exist only then.
    pub demo: bool,
}

impl LogFormat {
    /// The name the file, a variable or a flag gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Coloured, one event a line.
    Human,
    /// One JSON object a line.
    Json,
}

/// Values given on the command line; each overrides the environment and the file. (Every key
/// also has a `KEFU_*` variable: `sources`.)
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Configuration file (TOML).
    #[arg(long, env = "KEFU_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH, postgres://…, mysql://… (MariaDB too).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Address to listen on, e.g. 0.0.0.0:3000.
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `kefu=debug`.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Site options file for the console.
    #[arg(long, value_name = "FILE")]
    pub leptos_toml: Option<PathBuf>,
    /// Directory of the built visitor widget.
    #[arg(long, value_name = "DIR")]
    pub widget_dir: Option<PathBuf>,
    /// Most simultaneous real-time connections from one IP address.
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<u32>,
    /// Messages one visitor may send per minute.
    #[arg(long, value_name = "N")]
    pub messages_per_minute: Option<u32>,
    /// Milliseconds of silence after which a WebSocket counts as dead (pings at half of it).
    #[arg(long, value_name = "MS")]
    pub idle_timeout_ms: Option<u32>,
    /// SMTP relay for outgoing mail: smtp://user:pass@host:587?tls=required, smtps://…
    #[arg(long, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// Sender of outgoing mail, e.g. "Shop support <support@shop.example>".
    #[arg(long, value_name = "ADDRESS")]
    pub email_from: Option<String>,
    /// E-mail a site's agents when a leave-message arrives (true/false).
    #[arg(long, value_name = "BOOL")]
    pub notify_leave_messages: Option<bool>,
    /// A MaxMind-format city database (GeoLite2-City.mmdb) for visitors' locations.
    #[arg(long, value_name = "PATH")]
    pub geoip_database: Option<PathBuf>,
    /// The bus shared by several nodes over one database: redis://host:6379 (docs/scaling.md).
    #[arg(long, value_name = "URL")]
    pub bus_url: Option<String>,
    /// The address agents open the console at, e.g. https://chat.example.com: console
    /// requests must come from it, and its scheme decides whether cookies are `Secure`.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Reverse proxies whose X-Forwarded-For / X-Real-IP are believed, as addresses or CIDR
    /// networks separated by commas, e.g. 127.0.0.1/32,::1.
    #[arg(long, value_name = "CIDR,…", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Most simultaneous real-time connections on this node (default: from the open-file
    /// limit).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<u32>,
    /// A bearer token that lets a scraper outside `metrics.allow` read /metrics.
    #[arg(long, value_name = "TOKEN")]
    pub metrics_token: Option<String>,
}

/// The shape of `kefu.toml`. Every key is optional; unknown keys are refused.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    leptos_toml: Option<PathBuf>,
    widget_dir: Option<PathBuf>,
    max_connections_per_ip: Option<u32>,
    messages_per_minute: Option<u32>,
    idle_timeout_ms: Option<u32>,
    webhook_retry_ms: Option<u64>,
    #[serde(default)]
    database: DatabaseSection,
    #[serde(default)]
    log: LogSection,
    #[serde(default)]
    email: EmailSection,
    #[serde(default)]
    geoip: GeoipSection,
    #[serde(default)]
    translation: crate::translate::TranslationSection,
    #[serde(default)]
    bus: BusSection,
    public_url: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    max_connections: Option<u32>,
    #[serde(default)]
    http: HttpSection,
    #[serde(default)]
    metrics: MetricsSection,
    #[serde(default)]
    budgets: crate::realtime::budgets::BudgetLimits,
    #[serde(default)]
    uploads: UploadsSection,
    #[serde(default)]
    outbound: OutboundSection,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct UploadsSection {
    visitor_quota_mb: Option<u64>,
    site_quota_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct OutboundSection {
    allow: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    header_timeout_ms: Option<u64>,
    max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    allow: Option<Vec<String>>,
    token: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BusSection {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GeoipSection {
    database: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct EmailSection {
    smtp_url: Option<String>,
    from: Option<String>,
    notify_leave_messages: Option<bool>,
    transcripts_per_address_per_day: Option<u32>,
    transcripts_per_site_per_day: Option<u32>,
    notify_digest_ms: Option<u64>,
}

impl EmailSection {
    /// The limits this section sets, defaults for the keys it leaves out.
    fn limits(&self) -> crate::mail::MailLimits {
        let defaults = crate::mail::MailLimits::default();
        crate::mail::MailLimits {
            transcripts: crate::mail::TranscriptCaps {
                per_address_per_day: self
                    .transcripts_per_address_per_day
                    .unwrap_or(defaults.transcripts.per_address_per_day),
                per_site_per_day: self
                    .transcripts_per_site_per_day
                    .unwrap_or(defaults.transcripts.per_site_per_day),
            },
            notify_digest: self
                .notify_digest_ms
                .map_or(defaults.notify_digest, std::time::Duration::from_millis),
        }
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DatabaseSection {
    url: Option<String>,
    durability: Option<DurabilitySetting>,
}

/// `[database] durability`: how surely SQLite has a commit on disk (see [`store::Durability`]).
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum DurabilitySetting {
    /// Survives a crash of Kefu, not a power cut (the default).
    Normal,
    /// Synced at every commit: survives a power cut.
    Full,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    format: Option<LogFormat>,
    level: Option<String>,
}

/// Why a configuration cannot be used; each message names the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    /// A value a layer set that does not fit its key, or a variable that names no key.
    #[error("{origin}: {message}")]
    Layer { origin: String, message: String },
}

impl Config {
    /// Loads the layers in order, from this process's environment. A missing default
    /// `kefu.toml` is fine; a missing file named with `--config` is an error.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::load_from(overrides, environment())
    }

    /// As [`Config::load`], with the environment's variables given.
    pub fn load_from(
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let sources = Config::sources(overrides, env)?;
        let file = sources.extract()?;
        let bind = file.bind.unwrap_or_else(|| "127.0.0.1:3000".to_string());
        let bind = bind.parse().map_err(|_| ConfigError::Invalid {
            key: "bind",
            message: format!("{bind:?} is not an ADDRESS:PORT such as 127.0.0.1:3000"),
        })?;
        let url = file
            .database
            .url
            .unwrap_or_else(|| "sqlite://data/kefu.db".to_string());
        let database_url = DatabaseUrl::parse(&url)
            .map_err(|error| ConfigError::Invalid {
                key: "database.url",
                message: error.to_string(),
            })?
            .with_durability(match file.database.durability {
                None | Some(DurabilitySetting::Normal) => store::Durability::Normal,
                Some(DurabilitySetting::Full) => store::Durability::Full,
            });
        let mail_limits = file.email.limits();
        let mail = crate::mail::MailSettings {
            smtp_url: file.email.smtp_url,
            from: file.email.from,
            notify_leave_messages: file.email.notify_leave_messages.unwrap_or(false),
        };
        mail.check()
            .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        let mail_locked = [
            "email.smtp_url",
            "email.from",
            "email.notify_leave_messages",
        ]
        .iter()
        .any(|key| sources.set_outside_file(key));
        if let Some(path) = file
            .geoip
            .database
            .as_deref()
            .filter(|path| !path.is_file())
        {
            return Err(ConfigError::Invalid {
                key: "geoip.database",
                message: format!("{} is not a file", path.display()),
            });
        }
        let outbound = outbound_policy(&file.outbound)?;
        let bus = crate::bus::Bus::parse(file.bus.url.as_deref()).map_err(|error| {
            ConfigError::Invalid {
                key: "bus.url",
                message: error.to_string(),
            }
        })?;
        let edge = crate::edge::Edge::new(
            file.public_url.as_deref(),
            file.trusted_proxies.as_deref().unwrap_or_default(),
            file.metrics.allow.as_deref(),
            file.metrics.token.filter(|token| !token.is_empty()),
        )
        .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        let http = crate::http_server::HttpLimits::new(
            file.http.header_timeout_ms,
            file.http.max_connections,
        );
        let max_connections = file
            .max_connections
            .unwrap_or_else(crate::http_server::default_realtime_connections)
            .max(1);
        Ok(Config {
            edge,
            http,
            budgets: file.budgets,
            uploads: {
                let default = crate::realtime::uploads::UploadLimits::default();
                let mb = |value: Option<u64>, default: u64| {
                    value.map_or(default, |mb| mb.saturating_mul(1_000_000))
                };
                crate::realtime::uploads::UploadLimits {
                    visitor_quota_bytes: mb(
                        file.uploads.visitor_quota_mb,
                        default.visitor_quota_bytes,
                    ),
                    site_quota_bytes: mb(file.uploads.site_quota_mb, default.site_quota_bytes),
                    ..default
                }
            },
            max_connections,
            demo: false,
            translation: file.translation,
            outbound,
            bus,
            bind,
            database_url,
            log_format: file.log.format.unwrap_or(LogFormat::Human),
            log_level: file.log.level.unwrap_or_else(|| "info".to_string()),
            leptos_toml: file
                .leptos_toml
                .unwrap_or_else(|| PathBuf::from("Leptos.toml")),
            widget_dir: file
                .widget_dir
                .unwrap_or_else(|| PathBuf::from("target/widget")),
            max_connections_per_ip: file.max_connections_per_ip.unwrap_or(200),
            messages_per_minute: file
                .messages_per_minute
                .unwrap_or(protocol::Limits::default().messages_per_minute),
            idle_timeout_ms: file
                .idle_timeout_ms
                .unwrap_or(protocol::Limits::default().idle_timeout_ms)
                .max(100),
            mail,
            mail_limits,
            file: overrides
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE)),
            mail_locked,
            translation_locked: keys()
                .iter()
                .filter(|key| key.starts_with("translation."))
                .any(|key| sources.set_outside_file(key)),
            webhook_retry_ms: file.webhook_retry_ms.unwrap_or(1_000).max(10),
            geoip: file.geoip.database,
        })
    }

    /// Every key, its value (secrets masked) and where it came from, once the whole
    /// configuration has loaded (`kefu config show`).
    pub fn show(overrides: &Overrides) -> Result<String, ConfigError> {
        Config::load(overrides)?;
        Ok(Config::sources(overrides, environment())?.show())
    }

    /// The layers `overrides` and `env` make, merged (what `kefu config show` prints).
    pub fn sources(
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<sources::Sources, ConfigError> {
        let path = match &overrides.config {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|path| path.exists()),
        };
        let text = path.as_deref().map(read_file).transpose()?;
        sources::Sources::new(path.as_deref().zip(text.as_deref()), env, overrides)
    }
}

/// This process's environment variables (those that are text; configuration never is
/// anything else).
fn environment() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
}

/// The exceptions of `[outbound] allow`.
fn outbound_policy(section: &OutboundSection) -> Result<crate::outbound::Policy, ConfigError> {
    crate::outbound::Policy::parse(section.allow.as_deref().unwrap_or_default()).map_err(
        |message| ConfigError::Invalid {
            key: "outbound.allow",
            message,
        },
    )
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Checks that `text` is a configuration file Kefu can start from (before it is written).
pub fn check_text(path: &Path, text: &str) -> Result<(), ConfigError> {
    let file = sources::Sources::new(Some((path, text)), [], &Overrides::default())?.extract()?;
    crate::mail::MailSettings {
        smtp_url: file.email.smtp_url,
        from: file.email.from,
        notify_leave_messages: file.email.notify_leave_messages.unwrap_or(false),
    }
    .check()
    .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
    crate::edge::Edge::new(
        file.public_url.as_deref(),
        file.trusted_proxies.as_deref().unwrap_or_default(),
        file.metrics.allow.as_deref(),
        file.metrics.token,
    )
    .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
    outbound_policy(&file.outbound)?;
    Ok(())
}

/// toml's errors quote the offending line over several lines; keep the location and the reason.
fn one_line(error: &toml::de::Error) -> String {
    let reason = error.message().trim();
    match error.span() {
        Some(span) => format!("{reason} (at byte {})", span.start),
        None => reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("kefu.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    #[test]
    fn defaults_apply_without_a_file() {
        let config = Config::load_from(&Overrides::default(), []).expect("defaults load");
        assert_eq!(config.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(config.database_url.backend(), store::Backend::Sqlite);
        assert_eq!(config.log_format, LogFormat::Human);
        assert_eq!(config.database_url.durability(), store::Durability::Normal);
    }

    #[test]
    fn durability_is_read_from_the_database_section_or_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let load = |text: &str| {
            Config::load_from(
                &Overrides {
                    config: Some(write(&dir, text)),
                    ..Overrides::default()
                },
                [],
            )
        };
        let full = load("[database]\ndurability = \"full\"\n").expect("full loads");
        assert_eq!(full.database_url.durability(), store::Durability::Full);
        let error = load("[database]\ndurability = \"sometimes\"\n").expect_err("refused");
        assert!(error.to_string().contains("durability"), "{error}");
    }

    #[test]
    fn file_then_flags_override_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "bind = \"127.0.0.1:4000\"\n[database]\nurl = \"postgres://u:secret@db/kefu\"\n[log]\nformat = \"json\"\n",
        );
        let from_file = Config::load_from(
            &Overrides {
                config: Some(path.clone()),
                ..Overrides::default()
            },
            [],
        )
        .expect("file loads");
        assert_eq!(from_file.bind.to_string(), "127.0.0.1:4000");
        assert_eq!(from_file.database_url.backend(), store::Backend::Postgres);
        assert_eq!(from_file.log_format, LogFormat::Json);

        let flagged = Config::load_from(
            &Overrides {
                config: Some(path),
                bind: Some("127.0.0.1:5000".into()),
                database_url: Some("mysql://root@127.0.0.1/test".into()),
                ..Overrides::default()
            },
            [],
        )
        .expect("flags load");
        assert_eq!(flagged.bind.to_string(), "127.0.0.1:5000");
        assert_eq!(flagged.database_url.backend(), store::Backend::MySql);
        assert_eq!(
            flagged.log_format,
            LogFormat::Json,
            "untouched keys keep the file's value"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "[database]\nurll = \"sqlite://x.db\"\n");
        let error = Config::load_from(
            &Overrides {
                config: Some(path),
                ..Overrides::default()
            },
            [],
        )
        .expect_err("unknown key refused")
        .to_string();
        assert!(error.contains("urll"), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad_bind = Config::load_from(
            &Overrides {
                bind: Some("localhost".into()),
                ..Overrides::default()
            },
            [],
        )
        .expect_err("bind without port refused")
        .to_string();
        assert!(bad_bind.starts_with("`bind`"), "{bad_bind}");

        let bad_url = Config::load_from(
            &Overrides {
                database_url: Some("oracle://x".into()),
                ..Overrides::default()
            },
            [],
        )
        .expect_err("unknown scheme refused")
        .to_string();
        assert!(bad_url.starts_with("`database.url`"), "{bad_url}");

        let bad_geoip = Config::load_from(
            &Overrides {
                geoip_database: Some("/nonexistent/GeoLite2-City.mmdb".into()),
                ..Overrides::default()
            },
            [],
        )
        .expect_err("missing database refused")
        .to_string();
        assert!(bad_geoip.starts_with("`geoip.database`"), "{bad_geoip}");
    }

    #[test]
    fn mail_limits_have_defaults_and_keys() {
        let defaults = Config::load_from(&Overrides::default(), []).expect("defaults");
        assert_eq!(defaults.mail_limits, crate::mail::MailLimits::default());
        assert_eq!(defaults.mail_limits.transcripts.per_address_per_day, 5);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "[email]\ntranscripts_per_address_per_day = 3\ntranscripts_per_site_per_day = 40\nnotify_digest_ms = 1500\n",
        );
        let config = Config::load_from(
            &Overrides {
                config: Some(path),
                ..Overrides::default()
            },
            [],
        )
        .expect("loads");
        assert_eq!(config.mail_limits.transcripts.per_address_per_day, 3);
        assert_eq!(config.mail_limits.transcripts.per_site_per_day, 40);
        assert_eq!(
            config.mail_limits.notify_digest,
            std::time::Duration::from_millis(1500)
        );
    }

    #[test]
    fn password_never_shows_in_debug() {
        let config = Config::load_from(
            &Overrides {
                database_url: Some("postgres://kefu:hunter2@127.0.0.1/kefu".into()),
                ..Overrides::default()
            },
            [],
        )
        .expect("loads");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn email_needs_both_keys_and_never_shows_its_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let half = write(
            &dir,
            "[email]\nsmtp_url = \"smtp://u:hunter2@mail.example\"\n",
        );
        let error = Config::load_from(
            &Overrides {
                config: Some(half),
                ..Overrides::default()
            },
            [],
        )
        .expect_err("smtp_url without from");
        assert!(error.to_string().contains("email"), "{error}");

        let both = write(
            &dir,
            "[email]\nsmtp_url = \"smtp://u:hunter2@mail.example\"\nfrom = \"Shop <s@shop.example>\"\n",
        );
        let config = Config::load_from(
            &Overrides {
                config: Some(both),
                ..Overrides::default()
            },
            [],
        )
        .expect("both keys");
        let shown = format!("{config:?}");
        assert!(config.mail.smtp_url.is_some());
        assert!(shown.contains("s@shop.example"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");

        let bad = write(
            &dir,
            "[email]\nsmtp_url = \"smtp://mail.example\"\nfrom = \"nobody\"\n",
        );
        let error = Config::load_from(
            &Overrides {
                config: Some(bad),
                ..Overrides::default()
            },
            [],
        )
        .expect_err("from is not an address");
        assert!(error.to_string().contains("email.from"), "{error}");
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn every_key_has_an_environment_variable() {
        let keys = keys();
        for key in [
            "bind",
            "webhook_retry_ms",
            "database.url",
            "email.smtp_url",
            "translation.api_key",
            "budgets.hellos_per_hour",
            "uploads.site_quota_mb",
            "outbound.allow",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
        }
        for key in &keys {
            let name = variable(key);
            let sources = sources::Sources::new(None, env(&[(&name, "1")]), &Overrides::default())
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(sources.source(key), Some(name.clone()), "{key}");
        }
    }

    #[test]
    fn variables_override_the_file_and_flags_override_variables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "bind = \"127.0.0.1:4000\"\nwebhook_retry_ms = 50\n[email]\ntranscripts_per_site_per_day = 40\n",
        );
        let flags = Overrides {
            config: Some(path.clone()),
            ..Overrides::default()
        };
        let variables = env(&[
            ("KEFU_BIND", "127.0.0.1:5000"),
            ("KEFU_WEBHOOK_RETRY_MS", "250"),
            ("KEFU_EMAIL__TRANSCRIPTS_PER_SITE_PER_DAY", "7"),
            ("KEFU_DATABASE_URL", "mysql://root@127.0.0.1/test"),
            ("KEFU_TRUSTED_PROXIES", "127.0.0.1/32, ::1"),
            ("KEFU_AGENT_PASSWORD", "not configuration"),
        ]);
        let config = Config::load_from(&flags, variables.clone()).expect("loads");
        assert_eq!(config.bind.to_string(), "127.0.0.1:5000");
        assert_eq!(config.webhook_retry_ms, 250);
        assert_eq!(config.mail_limits.transcripts.per_site_per_day, 7);
        assert_eq!(config.database_url.backend(), store::Backend::MySql);
        let sources = Config::sources(&flags, variables.clone()).expect("sources");
        assert_eq!(
            sources.extract().expect("extract").trusted_proxies,
            Some(vec!["127.0.0.1/32".to_string(), "::1".into()])
        );
        assert_eq!(
            sources.source("email.transcripts_per_address_per_day"),
            None
        );

        let flagged = Overrides {
            bind: Some("127.0.0.1:6000".into()),
            ..flags
        };
        let config = Config::load_from(&flagged, variables).expect("loads");
        assert_eq!(config.bind.to_string(), "127.0.0.1:6000");
        assert_eq!(
            config.webhook_retry_ms, 250,
            "other keys keep the variable's value"
        );
    }

    #[test]
    fn settings_set_outside_the_file_are_locked() {
        let mail = [
            ("KEFU_EMAIL__SMTP_URL", "smtp://mail.example"),
            ("KEFU_EMAIL__FROM", "Shop <s@shop.example>"),
        ];
        let config = Config::load_from(&Overrides::default(), env(&mail)).expect("loads");
        assert!(config.mail.smtp_url.is_some() && config.mail_locked);
        assert!(!config.translation_locked);
        let budget = env(&[("KEFU_TRANSLATION__DAILY_CHARS", "5000")]);
        let config = Config::load_from(&Overrides::default(), budget).expect("loads");
        assert!(config.translation_locked && !config.mail_locked);

        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "[email]\nsmtp_url = \"smtp://mail.example\"\nfrom = \"Shop <s@shop.example>\"\n",
        );
        let config = Config::load_from(
            &Overrides {
                config: Some(path),
                ..Overrides::default()
            },
            [],
        )
        .expect("loads");
        assert!(config.mail.smtp_url.is_some() && !config.mail_locked);
    }

    #[test]
    fn a_wrong_variable_is_named() {
        let typo = Config::load_from(
            &Overrides::default(),
            env(&[("KEFU_EMAIL__SMPT_URL", "smtp://mail.example")]),
        )
        .expect_err("a variable naming no key")
        .to_string();
        assert!(typo.starts_with("KEFU_EMAIL__SMPT_URL: "), "{typo}");

        let bad = Config::load_from(
            &Overrides::default(),
            env(&[("KEFU_MAX_CONNECTIONS", "lots")]),
        )
        .expect_err("not a number")
        .to_string();
        assert!(
            bad.starts_with("KEFU_MAX_CONNECTIONS: `max_connections`"),
            "{bad}"
        );
        assert!(!bad.contains('\n'), "one line: {bad}");
    }

    #[test]
    fn show_says_where_each_value_came_from_and_hides_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "[database]\nurl = \"postgres://kefu:hunter2@db/kefu\"\n",
        );
        let flags = Overrides {
            config: Some(path.clone()),
            bind: Some("0.0.0.0:3000".into()),
            ..Overrides::default()
        };
        let shown = Config::sources(&flags, env(&[("KEFU_METRICS__TOKEN", "s3cret")]))
            .expect("sources")
            .show();
        let line = |key: &str| {
            shown
                .lines()
                .find(|line| line.starts_with(&format!("{key} ")))
                .unwrap_or_else(|| panic!("{key} not in {shown}"))
                .to_string()
        };
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(
            line("database.url").ends_with(&format!("# {}", path.display())),
            "{shown}"
        );
        assert_eq!(
            line("metrics.token"),
            "metrics.token = (set, not shown)  # KEFU_METRICS__TOKEN"
        );
        assert_eq!(line("bind"), "bind = \"0.0.0.0:3000\"  # --bind");
        assert_eq!(line("log.level"), "log.level  # default");
        assert_eq!(shown.lines().count(), keys().len());
    }
}
