//! Where each configuration value comes from: the file, then `KEFU_*` environment variables,
//! then command-line flags, merged by `figment`, which remembers every value's source for
//! error messages and `kefu config show`.
//!
//! Every key of the file has an environment variable: `KEFU_` and the key's path with `__`
//! between a section and its key, upper-case (`[email] smtp_url` is `KEFU_EMAIL__SMTP_URL`,
//! `bind` is `KEFU_BIND`). The shorter names from before every key had one
//! (`KEFU_DATABASE_URL`, `KEFU_SMTP_URL`, …) still work. Other `KEFU_*` variables belong to
//! other commands (`KEFU_AGENT_PASSWORD`) and are left alone; a variable with `__` that names
//! no key is refused, so a typo does not pass unnoticed.

use super::{ConfigError, FileConfig, Overrides};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use std::path::{Path, PathBuf};

/// Environment names from before every key had one, and the key each sets. A flag's name is
/// the same with dashes (`--database-url`).
const ALIASES: [(&str, &str); 9] = [
    ("database_url", "database.url"),
    ("log_format", "log.format"),
    ("log_level", "log.level"),
    ("smtp_url", "email.smtp_url"),
    ("email_from", "email.from"),
    ("notify_leave_messages", "email.notify_leave_messages"),
    ("geoip_database", "geoip.database"),
    ("bus_url", "bus.url"),
    ("metrics_token", "metrics.token"),
];

/// Keys holding a list: a variable gives it separated by commas (`127.0.0.1/32,::1`).
const LISTS: [&str; 3] = ["trusted_proxies", "metrics.allow", "outbound.allow"];

/// Keys `kefu config show` never prints: passwords and tokens, or URLs that carry them.
const SECRETS: [&str; 5] = [
    "email.smtp_url",
    "bus.url",
    "metrics.token",
    "translation.api_key",
    "translation.secret",
];

/// The layers of one configuration, merged.
pub struct Sources {
    figment: Figment,
}

impl Sources {
    /// The file (its path and text, when there is one), the environment's variables and the
    /// flags, in that order of precedence (the last wins).
    pub fn new(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Sources, ConfigError> {
        let mut figment = Figment::new();
        if let Some((path, text)) = file {
            figment = figment.merge(FileLayer::parse(path, text)?);
        }
        let figment = figment
            .merge(EnvLayer::read(env)?)
            .merge(FlagLayer::of(flags));
        Ok(Sources { figment })
    }

    /// The file's shape filled from every layer (`"42"` from a variable reads as a number
    /// where the key wants one).
    pub(super) fn extract(&self) -> Result<FileConfig, ConfigError> {
        self.figment
            .extract_lossy()
            .map_err(|error| layer_error(&error))
    }

    /// Where `key`'s value came from: the file's path, the variable's or the flag's name; `None`
    /// when no layer sets it (the built-in default applies).
    pub fn source(&self, key: &str) -> Option<String> {
        let metadata = self.figment.find_metadata(key)?;
        let path: Vec<&str> = key.split('.').collect();
        Some(origin(metadata, &path))
    }

    /// Whether `key` was set outside the file (a variable or a flag): the console cannot
    /// change such a value by writing the file.
    pub fn set_outside_file(&self, key: &str) -> bool {
        self.figment
            .find_metadata(key)
            .is_some_and(|metadata| metadata.source.is_none())
    }

    /// Every key, its value as `kefu config show` prints it (secrets masked) and its source.
    pub fn show(&self) -> String {
        let mut out = String::new();
        for key in keys() {
            let line = match (self.figment.find_value(&key), self.source(&key)) {
                (Ok(value), Some(source)) => {
                    format!("{key} = {}  # {source}", shown(&key, &value))
                }
                _ => format!("{key}  # default"),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

/// Every key of the file, as dotted paths (`email.smtp_url`), walked from its shape.
pub fn keys() -> Vec<String> {
    fn walk(prefix: &str, dict: &Dict, out: &mut Vec<String>) {
        for (name, value) in dict {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match value {
                Value::Dict(_, inner) => walk(&key, inner, out),
                _ => out.push(key),
            }
        }
    }
    let shape = Figment::from(figment::providers::Serialized::defaults(
        FileConfig::default(),
    ));
    let mut out = Vec::new();
    if let Ok(data) = shape.data()
        && let Some(dict) = data.get(&Profile::Default)
    {
        walk("", dict, &mut out);
    }
    out
}

/// The variable that sets `key`.
pub fn variable(key: &str) -> String {
    format!("KEFU_{}", key.replace('.', "__").to_ascii_uppercase())
}

/// A value as `kefu config show` prints it.
fn shown(key: &str, value: &Value) -> String {
    if SECRETS.contains(&key) {
        return "(set, not shown)".to_string();
    }
    match value {
        Value::String(_, text) if key == "database.url" => match store::DatabaseUrl::parse(text) {
            Ok(url) => format!("{:?}", url.redacted()),
            Err(_) => "(not a database URL)".to_string(),
        },
        Value::String(_, text) => format!("{text:?}"),
        Value::Array(_, items) => {
            let items: Vec<String> = items.iter().map(|item| shown(key, item)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Num(_, number) => match number.to_i128() {
            Some(n) => n.to_string(),
            None => format!("{:?}", number.to_f64()),
        },
        Value::Bool(_, b) => b.to_string(),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Empty(..) | Value::Dict(..) => String::new(),
    }
}

/// A figment error as one line naming the key and where its value came from.
fn layer_error(error: &figment::Error) -> ConfigError {
    let key = error.path.join(".");
    let path: Vec<&str> = error.path.iter().map(String::as_str).collect();
    let source = match &error.metadata {
        Some(metadata) => origin(metadata, &path),
        None => "configuration".to_string(),
    };
    ConfigError::Layer {
        origin: source,
        message: format!("`{key}`: {}", error.kind),
    }
}

/// The file a value was read from, or the variable or flag that set it.
fn origin(metadata: &Metadata, path: &[&str]) -> String {
    match &metadata.source {
        Some(figment::Source::File(file)) => file.display().to_string(),
        _ => metadata.interpolate(&Profile::Default, path),
    }
}

/// Sets `value` at the dotted `key` inside `dict`.
fn insert(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_string(), value);
        }
        Some((section, rest)) => {
            let entry = dict
                .entry(section.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// The configuration file, already read.
struct FileLayer {
    path: PathBuf,
    dict: Dict,
}

impl FileLayer {
    fn parse(path: &Path, text: &str) -> Result<FileLayer, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: super::one_line(&error),
        })?;
        let dict = Value::serialize(table)
            .ok()
            .and_then(|value| value.into_dict())
            .unwrap_or_default();
        Ok(FileLayer {
            path: path.to_path_buf(),
            dict,
        })
    }
}

impl Provider for FileLayer {
    fn metadata(&self) -> Metadata {
        Metadata::from(
            self.path.display().to_string(),
            figment::Source::File(self.path.clone()),
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The `KEFU_*` variables that are configuration keys.
struct EnvLayer {
    dict: Dict,
}

impl EnvLayer {
    fn read(env: impl IntoIterator<Item = (String, String)>) -> Result<EnvLayer, ConfigError> {
        let known = keys();
        let mut dict = Dict::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("KEFU_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let key = match ALIASES.iter().find(|(alias, _)| *alias == rest) {
                Some((_, key)) => key.to_string(),
                None => rest.replace("__", "."),
            };
            if !known.contains(&key) {
                if rest.contains("__") {
                    return Err(ConfigError::Layer {
                        origin: name,
                        message: "names no configuration key (see `kefu config show`)".into(),
                    });
                }
                continue;
            }
            if value.is_empty() {
                continue;
            }
            let value = if LISTS.contains(&key.as_str()) {
                Value::from(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<String>>(),
                )
            } else {
                Value::from(value)
            };
            insert(&mut dict, &key, value);
        }
        Ok(EnvLayer { dict })
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment").interpolater(|_, keys| variable(&keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The flags given on the command line.
struct FlagLayer {
    dict: Dict,
}

impl FlagLayer {
    fn of(flags: &Overrides) -> FlagLayer {
        let mut dict = Dict::new();
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                insert(&mut dict, key, value);
            }
        };
        let text = |value: &Option<String>| value.clone().map(Value::from);
        let path =
            |value: &Option<PathBuf>| value.as_ref().map(|p| Value::from(p.display().to_string()));
        set("database.url", text(&flags.database_url));
        set("bind", text(&flags.bind));
        set(
            "log.format",
            flags
                .log_format
                .map(|format| Value::from(format.as_str().to_string())),
        );
        set("log.level", text(&flags.log_level));
        set("leptos_toml", path(&flags.leptos_toml));
        set("widget_dir", path(&flags.widget_dir));
        set(
            "max_connections_per_ip",
            flags.max_connections_per_ip.map(Value::from),
        );
        set(
            "messages_per_minute",
            flags.messages_per_minute.map(Value::from),
        );
        set("idle_timeout_ms", flags.idle_timeout_ms.map(Value::from));
        set("email.smtp_url", text(&flags.smtp_url));
        set("email.from", text(&flags.email_from));
        set(
            "email.notify_leave_messages",
            flags.notify_leave_messages.map(Value::from),
        );
        set("geoip.database", path(&flags.geoip_database));
        set("bus.url", text(&flags.bus_url));
        set("public_url", text(&flags.public_url));
        set(
            "trusted_proxies",
            flags.trusted_proxies.clone().map(Value::from),
        );
        set("max_connections", flags.max_connections.map(Value::from));
        set("metrics.token", text(&flags.metrics_token));
        FlagLayer { dict }
    }
}

impl Provider for FlagLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("command line").interpolater(|_, keys| {
            let key = keys.join(".");
            let name = ALIASES
                .iter()
                .find(|(_, aliased)| *aliased == key)
                .map_or(key.as_str(), |(alias, _)| alias);
            format!("--{}", name.replace('_', "-"))
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}
