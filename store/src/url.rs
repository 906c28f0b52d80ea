//! Database URLs: which backend a URL selects, and how to show one without its password.
//!
//! [`DatabaseUrl`] is the only way the rest of Kefu holds a database URL, so printing or logging
//! one (`{}` or `{:?}`) can never reveal the password. It validates the shape of the URL and picks
//! the [`Backend`]; it does not connect or touch the file system — [`crate::connect`] does that.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Replaces a password wherever a redacted URL shows it.
const REDACTED: &str = "***";

/// The database engines Kefu can store its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An embedded SQLite file: the zero-setup default.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
    /// A MySQL or MariaDB server (one wire protocol, one implementation).
    MySql,
}

impl Backend {
    /// The backend's short name, as used for the migration folders and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How surely a commit SQLite has acknowledged is on disk (`[database] durability`). The
/// servers keep their own setting (PostgreSQL's `synchronous_commit`, InnoDB's
/// `innodb_flush_log_at_trx_commit`), both full by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = NORMAL`: a commit survives Kefu's crash or `kill -9`, but the last
    /// commits before a power cut or an operating-system crash may be lost (the database stays
    /// whole). No `fsync` per commit, so group commit is not bound by the disk's flush rate.
    #[default]
    Normal,
    /// `synchronous = FULL`: the write-ahead log is synced at every commit (one batch of
    /// messages), so a commit survives a power cut too.
    Full,
}

impl Durability {
    /// The value of SQLite's `synchronous` pragma.
    pub(crate) fn synchronous(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// A validated database URL whose `Debug` and `Display` hide the password.
///
/// Accepted forms: `sqlite:path`, `sqlite://path` (both relative to the working directory),
/// `sqlite:///absolute/path`, `postgres://…`, `postgresql://…`, `mysql://…` and `mariadb://…`
/// (the latter is the MySQL backend).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// The URL exactly as configured, password included; only handed to the driver.
    raw: String,
    /// The scheme as written, lower-cased (`mariadb` stays `mariadb`).
    scheme: String,
    /// The backend the scheme selects.
    backend: Backend,
    /// The form safe to print, computed once.
    redacted: String,
    /// For SQLite, the database file; `None` for server backends.
    sqlite_path: Option<PathBuf>,
    /// How SQLite syncs its commits; set from the configuration, not part of the URL's text.
    durability: Durability,
}

impl DatabaseUrl {
    /// Parses and validates `text`; see the type's documentation for the accepted forms.
    pub fn parse(text: &str) -> Result<DatabaseUrl> {
        let text = text.trim();
        let scheme = scheme_of(text).ok_or_else(|| Error::UnknownScheme(String::new()))?;
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => parse_sqlite(text, scheme),
            "postgres" | "postgresql" => parse_server(text, scheme, Backend::Postgres),
            "mysql" | "mariadb" => parse_server(text, scheme, Backend::MySql),
            _ => Err(Error::UnknownScheme(scheme)),
        }
    }

    /// The scheme as written, lower-cased: `sqlite`, `postgres`, `postgresql`, `mysql` or `mariadb`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite database file, for a `sqlite:` URL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref()
    }

    /// The same database, its SQLite commits synced as `durability` says.
    pub fn with_durability(mut self, durability: Durability) -> DatabaseUrl {
        self.durability = durability;
        self
    }

    /// How SQLite syncs its commits ([`Durability::Normal`] unless set).
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The URL with any password replaced by `***`; what `Display` prints.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The full URL, password included. Only for handing to a driver: never log or display it.
    pub fn expose_secret(&self) -> &str {
        &self.raw
    }
}

impl FromStr for DatabaseUrl {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        DatabaseUrl::parse(text)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.redacted).finish()
    }
}

/// The RFC 3986 scheme of `text` (letters, digits, `+`, `-`, `.` before the first `:`), if any.
fn scheme_of(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn parse_sqlite(text: &str, scheme: String) -> Result<DatabaseUrl> {
    let rest = &text[scheme.len() + 1..];
    // `sqlite://x` is relative and `sqlite:///x` absolute: strip exactly the `//`.
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let invalid = |reason| Error::InvalidUrl {
        url: text.to_owned(),
        reason,
    };
    if path.contains('?') || path.contains('#') {
        return Err(invalid(
            "query parameters are not supported for sqlite URLs; give only the file path",
        ));
    }
    if path.is_empty() || path.ends_with('/') {
        return Err(invalid(
            "a sqlite URL needs a file path, e.g. sqlite://data/kefu.db",
        ));
    }
    if path.starts_with(':') {
        return Err(invalid(
            "in-memory sqlite databases are not supported; give a file path",
        ));
    }
    Ok(DatabaseUrl {
        raw: text.to_owned(),
        scheme,
        backend: Backend::Sqlite,
        redacted: text.to_owned(),
        sqlite_path: Some(PathBuf::from(path)),
        durability: Durability::Normal,
    })
}

fn parse_server(text: &str, scheme: String, backend: Backend) -> Result<DatabaseUrl> {
    let Ok(mut url) = url::Url::parse(text) else {
        // The text may hold a password we cannot locate reliably: show only the scheme.
        return Err(Error::InvalidUrl {
            url: format!("{scheme}://…"),
            reason: "not a valid URL (expected scheme://user:password@host:port/database)",
        });
    };
    if url.password().is_some() && url.set_password(Some(REDACTED)).is_err() {
        // Cannot happen for a URL with a host, but never fall back to printing the secret.
        return Err(Error::InvalidUrl {
            url: format!("{scheme}://…"),
            reason: "the URL has a password but no host",
        });
    }
    let has_secret_param = url
        .query_pairs()
        .any(|(key, _)| key.to_ascii_lowercase().contains("password"));
    if has_secret_param {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if key.to_ascii_lowercase().contains("password") {
                    REDACTED.to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // No host is fine: PostgreSQL can take a Unix socket as `?host=/run/postgresql`.
    Ok(DatabaseUrl {
        raw: text.to_owned(),
        scheme,
        backend,
        redacted: url.to_string(),
        sqlite_path: None,
        durability: Durability::Normal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DatabaseUrl {
        DatabaseUrl::parse(text).expect("valid database URL")
    }

    #[test]
    fn display_and_debug_hide_the_password() {
        let url = parse("postgres://kefu:s3cr%40t-pw@db.example:5432/kefu");
        for shown in [url.to_string(), format!("{url:?}"), format!("{url:#?}")] {
            assert!(!shown.contains("s3cr"), "password leaked: {shown}");
            assert!(shown.contains("kefu:***@db.example:5432/kefu"), "{shown}");
        }
        assert!(url.expose_secret().contains("s3cr%40t-pw"));
    }

    #[test]
    fn password_query_parameters_are_hidden() {
        let url = parse("mysql://kefu@db/kefu?password=hunter2&ssl-mode=required");
        let shown = url.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ssl-mode=required"), "{shown}");
    }

    #[test]
    fn urls_without_password_are_shown_unchanged() {
        assert_eq!(
            parse("postgres://postgres@127.0.0.1:5432/kefu").to_string(),
            "postgres://postgres@127.0.0.1:5432/kefu"
        );
        assert_eq!(
            parse("sqlite://data/kefu.db").to_string(),
            "sqlite://data/kefu.db"
        );
    }

    #[test]
    fn schemes_select_backends() {
        let cases = [
            ("sqlite://kefu.db", "sqlite", Backend::Sqlite),
            ("sqlite:kefu.db", "sqlite", Backend::Sqlite),
            ("SQLite:///var/lib/kefu/kefu.db", "sqlite", Backend::Sqlite),
            ("postgres://u@h/db", "postgres", Backend::Postgres),
            ("postgresql://u@h/db", "postgresql", Backend::Postgres),
            ("mysql://u@h/db", "mysql", Backend::MySql),
            ("mariadb://u:p@h:3306/db", "mariadb", Backend::MySql),
        ];
        for (text, scheme, backend) in cases {
            let url = parse(text);
            assert_eq!(url.scheme(), scheme, "{text}");
            assert_eq!(url.backend(), backend, "{text}");
        }
    }

    #[test]
    fn sqlite_paths_are_relative_or_absolute() {
        let path = |text| parse(text).sqlite_path().map(Path::to_path_buf);
        assert_eq!(path("sqlite://data/kefu.db"), Some("data/kefu.db".into()));
        assert_eq!(path("sqlite:data/kefu.db"), Some("data/kefu.db".into()));
        assert_eq!(
            path("sqlite:///var/lib/kefu.db"),
            Some("/var/lib/kefu.db".into())
        );
        assert_eq!(
            path("sqlite:/var/lib/kefu.db"),
            Some("/var/lib/kefu.db".into())
        );
        assert_eq!(path("postgres://h/db"), None);
    }

    #[test]
    fn unknown_schemes_are_errors() {
        for (text, scheme) in [
            ("mssql://sa@h/db", "mssql"),
            ("sqlserver://h", "sqlserver"),
            ("/var/lib/kefu.db", ""),
            ("kefu.db", ""),
        ] {
            match DatabaseUrl::parse(text) {
                Err(Error::UnknownScheme(found)) => assert_eq!(found, scheme, "{text}"),
                other => panic!("{text}: expected UnknownScheme, got {other:?}"),
            }
        }
        let message = Error::UnknownScheme("mssql".into()).to_string();
        assert!(
            message.contains("\"mssql\"") && !message.contains('\n'),
            "{message}"
        );
    }

    #[test]
    fn malformed_urls_are_rejected_without_echoing_secrets() {
        for text in [
            "sqlite:",
            "sqlite://",
            "sqlite://data/",
            "sqlite::memory:",
            "sqlite://kefu.db?mode=rwc",
            "mysql://user:pw@/db",
        ] {
            match DatabaseUrl::parse(text) {
                Err(error @ Error::InvalidUrl { .. }) => {
                    let message = error.to_string();
                    assert!(!message.contains("pw@"), "{message}");
                    assert!(!message.contains('\n'), "{message}");
                }
                other => panic!("{text}: expected InvalidUrl, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn connect_refuses_a_missing_sqlite_directory() {
        let url = parse("sqlite:///no/such/dir/x.db");
        match crate::connect(&url).await {
            Err(error @ Error::SqliteDirMissing(_)) => {
                let Error::SqliteDirMissing(dir) = &error else {
                    unreachable!()
                };
                assert_eq!(dir, Path::new("/no/such/dir"));
                let message = error.to_string();
                assert!(message.contains("/no/such/dir"), "{message}");
                assert!(!message.contains('\n'), "{message}");
            }
            Err(other) => panic!("expected SqliteDirMissing, got {other:?}"),
            Ok(_) => panic!("expected SqliteDirMissing, got a store"),
        }
        assert!(
            !Path::new("/no/such/dir").exists(),
            "connect must not create directories"
        );
    }

    #[tokio::test]
    async fn connect_errors_name_the_server_without_its_password() {
        // Rejected while building the connect options, so no network (and no retrying) is
        // involved; a refused connection produces the same variant after the pool's retries.
        for text in [
            "postgres://kefu:hunter2@127.0.0.1:1/kefu?sslmode=bogus",
            "mariadb://kefu:hunter2@127.0.0.1:1/kefu?ssl-mode=bogus",
        ] {
            let url = parse(text);
            match crate::connect(&url).await {
                Err(error @ Error::Connect { .. }) => {
                    let message = error.to_string();
                    assert!(message.contains("kefu:***@127.0.0.1:1"), "{message}");
                    assert!(!message.contains("hunter2"), "{message}");
                    assert!(!message.contains('\n'), "{message}");
                }
                Err(other) => panic!("{text}: expected Connect, got {other:?}"),
                Ok(_) => panic!("{text}: the ssl mode is invalid"),
            }
        }
    }

    #[tokio::test]
    async fn connect_creates_a_missing_sqlite_file_in_an_existing_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("kefu.db");
        let url = parse(&format!("sqlite://{}", file.display()));
        let store = crate::connect(&url).await.expect("connect");
        store.ping().await.expect("ping");
        assert_eq!(store.backend(), Backend::Sqlite);
        assert!(file.exists());
    }
}
