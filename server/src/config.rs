//! Configuration: built-in defaults → `kefu.toml` → `KEFU_*` environment → command-line flags.
//!
//! The result is a plain [`Config`] value handed to whoever needs it; there is no global.
//! Environment variables and flags are merged by clap (`env = "KEFU_…"` on each flag), so the
//! file is the only layer parsed here. Unknown keys in the file are errors that name the key.

use serde::Deserialize;
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
    pub mail: crate::mail::MailSetup,
    /// Caps on the mail visitors can cause: transcripts per address and per site a day, and
    /// how leave-message notifications are collected into digests.
    pub mail_limits: crate::mail::MailLimits,
    /// The configuration file: the one read, or the one the console writes settings to.
    pub file: PathBuf,
    /// The mail settings come from flags or `KEFU_*` variables, which the file cannot
    /// override: the console shows them but does not offer to change them.
    pub mail_locked: bool,
    /// The delay before a failed webhook delivery's first retry; each next one doubles.
    pub webhook_retry_ms: u64,
    /// Visitors' locations; `None` when no GeoIP database is configured.
    pub geoip: Option<std::sync::Arc<crate::geoip::Geo>>,
    /// Machine translation between agents and visitors; `None` without a provider.
    pub translation: Option<crate::translate::TranslationSetup>,
    /// The HTTP client for addresses admins type (webhooks, translation), with the
    /// exceptions `[outbound] allow` makes to its refusal of internal addresses.
    pub outbound: crate::outbound::Outbound,
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
    pub uploads: UploadLimits,
    /// `serve --demo`: the demo site, admin and the `/demo` page exist only then.
    pub demo: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Coloured, one event a line.
    Human,
    /// One JSON object a line.
    Json,
}

/// `[uploads]` in `kefu.toml`: how much files may take, and how long an unsent one is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Bytes of files one visitor may have stored (sent or not).
    pub visitor_quota_bytes: u64,
    /// Bytes of files one site may have stored, visitors' and agents' together.
    pub site_quota_bytes: u64,
    /// An upload that no message carries after this long is deleted.
    pub unsent_after: std::time::Duration,
}

impl Default for UploadLimits {
    /// 20 MB per visitor, 2 GB per site, unsent uploads kept an hour.
    fn default() -> Self {
        UploadLimits {
            visitor_quota_bytes: 20 * 1_000_000,
            site_quota_bytes: 2_000 * 1_000_000,
            unsent_after: std::time::Duration::from_secs(60 * 60),
        }
    }
}

/// Values given on the command line or through `KEFU_*` variables; each overrides the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Configuration file (TOML).
    #[arg(long, env = "KEFU_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH, postgres://…, mysql://… (MariaDB too).
    #[arg(
        long,
        env = "KEFU_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Address to listen on, e.g. 0.0.0.0:3000.
    #[arg(long, env = "KEFU_BIND", value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// Log format.
    #[arg(long, env = "KEFU_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `kefu=debug`.
    #[arg(long, env = "KEFU_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Site options file for the console.
    #[arg(long, env = "KEFU_LEPTOS_TOML", value_name = "FILE")]
    pub leptos_toml: Option<PathBuf>,
    /// Directory of the built visitor widget.
    #[arg(long, env = "KEFU_WIDGET_DIR", value_name = "DIR")]
    pub widget_dir: Option<PathBuf>,
    /// Most simultaneous real-time connections from one IP address.
    #[arg(long, env = "KEFU_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<u32>,
    /// Messages one visitor may send per minute.
    #[arg(long, env = "KEFU_MESSAGES_PER_MINUTE", value_name = "N")]
    pub messages_per_minute: Option<u32>,
    /// Milliseconds of silence after which a WebSocket counts as dead (pings at half of it).
    #[arg(long, env = "KEFU_IDLE_TIMEOUT_MS", value_name = "MS")]
    pub idle_timeout_ms: Option<u32>,
    /// SMTP relay for outgoing mail: smtp://user:pass@host:587?tls=required, smtps://…
    #[arg(
        long,
        env = "KEFU_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,
    /// Sender of outgoing mail, e.g. "Shop support <support@shop.example>".
    #[arg(long, env = "KEFU_EMAIL_FROM", value_name = "ADDRESS")]
    pub email_from: Option<String>,
    /// E-mail a site's agents when a leave-message arrives (true/false).
    #[arg(long, env = "KEFU_NOTIFY_LEAVE_MESSAGES", value_name = "BOOL")]
    pub notify_leave_messages: Option<bool>,
    /// A MaxMind-format city database (GeoLite2-City.mmdb) for visitors' locations.
    #[arg(long, env = "KEFU_GEOIP_DATABASE", value_name = "PATH")]
    pub geoip_database: Option<PathBuf>,
    /// The bus shared by several nodes over one database: redis://host:6379 (docs/scaling.md).
    #[arg(long, env = "KEFU_BUS_URL", value_name = "URL", hide_env_values = true)]
    pub bus_url: Option<String>,
    /// The address agents open the console at, e.g. https://chat.example.com: console
    /// requests must come from it, and its scheme decides whether cookies are `Secure`.
    #[arg(long, env = "KEFU_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Reverse proxies whose X-Forwarded-For / X-Real-IP are believed, as addresses or CIDR
    /// networks separated by commas, e.g. 127.0.0.1/32,::1.
    #[arg(
        long,
        env = "KEFU_TRUSTED_PROXIES",
        value_name = "CIDR,…",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// Most simultaneous real-time connections on this node (default: from the open-file
    /// limit).
    #[arg(long, env = "KEFU_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u32>,
    /// A bearer token that lets a scraper outside `metrics.allow` read /metrics.
    #[arg(
        long,
        env = "KEFU_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
}

/// The shape of `kefu.toml`. Every key is optional; unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadsSection {
    visitor_quota_mb: Option<u64>,
    site_quota_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundSection {
    allow: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    header_timeout_ms: Option<u64>,
    max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    allow: Option<Vec<String>>,
    token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BusSection {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GeoipSection {
    database: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
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
            transcripts: crate::realtime::transcripts::TranscriptCaps {
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseSection {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
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
}

impl Config {
    /// Loads the layers in order. A missing default `kefu.toml` is fine; a missing file named
    /// with `--config` is an error.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let file = match &overrides.config {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        let bind = overrides
            .bind
            .clone()
            .or(file.bind)
            .unwrap_or_else(|| "127.0.0.1:3000".to_string());
        let bind = bind.parse().map_err(|_| ConfigError::Invalid {
            key: "bind",
            message: format!("{bind:?} is not an ADDRESS:PORT such as 127.0.0.1:3000"),
        })?;
        let url = overrides
            .database_url
            .clone()
            .or(file.database.url)
            .unwrap_or_else(|| "sqlite://data/kefu.db".to_string());
        let database_url = DatabaseUrl::parse(&url).map_err(|error| ConfigError::Invalid {
            key: "database.url",
            message: error.to_string(),
        })?;
        let mail_limits = file.email.limits();
        let mail = crate::mail::MailSetup::new(
            overrides.smtp_url.clone().or(file.email.smtp_url),
            overrides.email_from.clone().or(file.email.from),
            overrides
                .notify_leave_messages
                .or(file.email.notify_leave_messages)
                .unwrap_or(false),
        )
        .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        let mail_locked = overrides.smtp_url.is_some()
            || overrides.email_from.is_some()
            || overrides.notify_leave_messages.is_some();
        let geoip = match overrides.geoip_database.clone().or(file.geoip.database) {
            None => None,
            Some(path) => Some(std::sync::Arc::new(
                crate::geoip::Geo::open(&path).map_err(|message| ConfigError::Invalid {
                    key: "geoip.database",
                    message,
                })?,
            )),
        };
        let outbound = outbound(&file.outbound)?;
        let translation =
            file.translation
                .setup(&outbound)
                .map_err(|message| ConfigError::Invalid {
                    key: "translation",
                    message,
                })?;
        let bus = crate::bus::Bus::parse(overrides.bus_url.as_deref().or(file.bus.url.as_deref()))
            .map_err(|error| ConfigError::Invalid {
                key: "bus.url",
                message: error.to_string(),
            })?;
        let edge = crate::edge::Edge::new(
            overrides
                .public_url
                .as_deref()
                .or(file.public_url.as_deref()),
            overrides
                .trusted_proxies
                .as_deref()
                .or(file.trusted_proxies.as_deref())
                .unwrap_or_default(),
            file.metrics.allow.as_deref(),
            overrides
                .metrics_token
                .clone()
                .or(file.metrics.token)
                .filter(|token| !token.is_empty()),
        )
        .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        let http = crate::http_server::HttpLimits::new(
            file.http.header_timeout_ms,
            file.http.max_connections,
        );
        let max_connections = overrides
            .max_connections
            .or(file.max_connections)
            .unwrap_or_else(crate::http_server::default_realtime_connections)
            .max(1);
        Ok(Config {
            edge,
            http,
            budgets: file.budgets,
            uploads: {
                let default = UploadLimits::default();
                let mb = |value: Option<u64>, default: u64| {
                    value.map_or(default, |mb| mb.saturating_mul(1_000_000))
                };
                UploadLimits {
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
            translation,
            outbound,
            bus,
            bind,
            database_url,
            log_format: overrides
                .log_format
                .or(file.log.format)
                .unwrap_or(LogFormat::Human),
            log_level: overrides
                .log_level
                .clone()
                .or(file.log.level)
                .unwrap_or_else(|| "info".to_string()),
            leptos_toml: overrides
                .leptos_toml
                .clone()
                .or(file.leptos_toml)
                .unwrap_or_else(|| PathBuf::from("Leptos.toml")),
            widget_dir: overrides
                .widget_dir
                .clone()
                .or(file.widget_dir)
                .unwrap_or_else(|| PathBuf::from("target/widget")),
            max_connections_per_ip: overrides
                .max_connections_per_ip
                .or(file.max_connections_per_ip)
                .unwrap_or(200),
            messages_per_minute: overrides
                .messages_per_minute
                .or(file.messages_per_minute)
                .unwrap_or(protocol::Limits::default().messages_per_minute),
            idle_timeout_ms: overrides
                .idle_timeout_ms
                .or(file.idle_timeout_ms)
                .unwrap_or(protocol::Limits::default().idle_timeout_ms)
                .max(100),
            mail,
            mail_limits,
            file: overrides
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE)),
            mail_locked,
            webhook_retry_ms: file.webhook_retry_ms.unwrap_or(1_000).max(10),
            geoip,
        })
    }
}

/// The outbound client with the exceptions of `[outbound] allow`.
fn outbound(section: &OutboundSection) -> Result<crate::outbound::Outbound, ConfigError> {
    let invalid = |message| ConfigError::Invalid {
        key: "outbound.allow",
        message,
    };
    let policy = crate::outbound::Policy::parse(section.allow.as_deref().unwrap_or_default())
        .map_err(invalid)?;
    crate::outbound::Outbound::new(policy, std::sync::Arc::new(crate::outbound::SystemLookup))
        .map_err(invalid)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_file(path, &text)
}

/// Checks that `text` is a configuration file Kefu can start from (before it is written).
pub fn check_text(path: &Path, text: &str) -> Result<(), ConfigError> {
    let file = parse_file(path, text)?;
    crate::mail::MailSetup::new(
        file.email.smtp_url,
        file.email.from,
        file.email.notify_leave_messages.unwrap_or(false),
    )
    .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
    crate::edge::Edge::new(
        file.public_url.as_deref(),
        file.trusted_proxies.as_deref().unwrap_or_default(),
        file.metrics.allow.as_deref(),
        file.metrics.token,
    )
    .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
    crate::outbound::Policy::parse(file.outbound.allow.as_deref().unwrap_or_default()).map_err(
        |message| ConfigError::Invalid {
            key: "outbound.allow",
            message,
        },
    )?;
    Ok(())
}

fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|error| ConfigError::Parse {
        path: path.to_path_buf(),
        message: one_line(&error),
    })
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
        let config = Config::load(&Overrides::default()).expect("defaults load");
        assert_eq!(config.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(config.database_url.backend(), store::Backend::Sqlite);
        assert_eq!(config.log_format, LogFormat::Human);
    }

    #[test]
    fn file_then_flags_override_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "bind = \"127.0.0.1:4000\"\n[database]\nurl = \"postgres://u:secret@db/kefu\"\n[log]\nformat = \"json\"\n",
        );
        let from_file = Config::load(&Overrides {
            config: Some(path.clone()),
            ..Overrides::default()
        })
        .expect("file loads");
        assert_eq!(from_file.bind.to_string(), "127.0.0.1:4000");
        assert_eq!(from_file.database_url.backend(), store::Backend::Postgres);
        assert_eq!(from_file.log_format, LogFormat::Json);

        let flagged = Config::load(&Overrides {
            config: Some(path),
            bind: Some("127.0.0.1:5000".into()),
            database_url: Some("mysql://root@127.0.0.1/test".into()),
            ..Overrides::default()
        })
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
        let error = Config::load(&Overrides {
            config: Some(path),
            ..Overrides::default()
        })
        .expect_err("unknown key refused")
        .to_string();
        assert!(error.contains("urll"), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad_bind = Config::load(&Overrides {
            bind: Some("localhost".into()),
            ..Overrides::default()
        })
        .expect_err("bind without port refused")
        .to_string();
        assert!(bad_bind.starts_with("`bind`"), "{bad_bind}");

        let bad_url = Config::load(&Overrides {
            database_url: Some("oracle://x".into()),
            ..Overrides::default()
        })
        .expect_err("unknown scheme refused")
        .to_string();
        assert!(bad_url.starts_with("`database.url`"), "{bad_url}");

        let bad_geoip = Config::load(&Overrides {
            geoip_database: Some("/nonexistent/GeoLite2-City.mmdb".into()),
            ..Overrides::default()
        })
        .expect_err("missing database refused")
        .to_string();
        assert!(bad_geoip.starts_with("`geoip.database`"), "{bad_geoip}");
    }

    #[test]
    fn mail_limits_have_defaults_and_keys() {
        let defaults = Config::load(&Overrides::default()).expect("defaults");
        assert_eq!(defaults.mail_limits, crate::mail::MailLimits::default());
        assert_eq!(defaults.mail_limits.transcripts.per_address_per_day, 5);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "[email]\ntranscripts_per_address_per_day = 3\ntranscripts_per_site_per_day = 40\nnotify_digest_ms = 1500\n",
        );
        let config = Config::load(&Overrides {
            config: Some(path),
            ..Overrides::default()
        })
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
        let config = Config::load(&Overrides {
            database_url: Some("postgres://kefu:hunter2@127.0.0.1/kefu".into()),
            ..Overrides::default()
        })
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
        let error = Config::load(&Overrides {
            config: Some(half),
            ..Overrides::default()
        })
        .expect_err("smtp_url without from");
        assert!(error.to_string().contains("email"), "{error}");

        let both = write(
            &dir,
            "[email]\nsmtp_url = \"smtp://u:hunter2@mail.example\"\nfrom = \"Shop <s@shop.example>\"\n",
        );
        let config = Config::load(&Overrides {
            config: Some(both),
            ..Overrides::default()
        })
        .expect("both keys");
        let shown = format!("{config:?}");
        assert!(config.mail.mailer.is_some());
        assert!(shown.contains("s@shop.example"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");

        let bad = write(
            &dir,
            "[email]\nsmtp_url = \"smtp://mail.example\"\nfrom = \"nobody\"\n",
        );
        let error = Config::load(&Overrides {
            config: Some(bad),
            ..Overrides::default()
        })
        .expect_err("from is not an address");
        assert!(error.to_string().contains("email.from"), "{error}");
    }
}
