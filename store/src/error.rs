//! The store's error type.
//!
//! Every variant's `Display` is one line a person can act on, because `connect` errors are printed
//! as they are when the server starts. None of them ever contains a database password: URLs only
//! appear here in their redacted form (see [`crate::DatabaseUrl`]). This module does not decide
//! HTTP status codes; the server maps [`Error::NotFound`] and [`Error::Conflict`] to its own.

use std::path::PathBuf;

/// `Result` with the store's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when connecting to or using a [`crate::Store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL's scheme names no supported backend (the scheme alone, never the URL,
    /// so no password can leak through this message).
    #[error(
        "unsupported database URL scheme \"{0}\" (expected sqlite:, postgres://, postgresql://, mysql:// or mariadb://)"
    )]
    UnknownScheme(String),

    /// The database URL has a supported scheme but cannot be used as written.
    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl {
        /// The URL with its password redacted, so the user can see which setting is wrong.
        url: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// The directory that should hold the SQLite file does not exist. Kefu never creates it: a
    /// typo in the path must not quietly start a new, empty database somewhere else.
    #[error(
        "database directory {} does not exist; create it or point database.url at an existing directory",
        .0.display()
    )]
    SqliteDirMissing(PathBuf),

    /// The database server could not be reached or refused the connection.
    #[error("cannot connect to database {url}: {source}")]
    Connect {
        /// The URL with its password redacted.
        url: String,
        /// The driver's reason.
        #[source]
        source: sqlx::Error,
    },

    /// Applying the schema migrations failed, so the database is not usable by this version.
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),

    /// The database holds a schema migration this Kefu does not know: a newer Kefu upgraded it.
    /// Starting anyway could misread or damage what the newer version wrote.
    #[error(
        "the database was upgraded by a newer Kefu (it has schema migration {found}; this Kefu knows migrations up to {known}): run that newer Kefu, or restore a backup taken before the upgrade"
    )]
    NewerDatabase {
        /// The unknown migration's version.
        found: i64,
        /// The newest migration this Kefu has.
        known: i64,
    },

    /// The row the operation refers to (a conversation, site, agent …) does not exist.
    #[error("not found")]
    NotFound,

    /// A unique constraint was violated; `field` names the column the caller should report
    /// (for example `"email"` when an agent with that address already exists).
    #[error("{field} is already in use")]
    Conflict {
        /// The user-facing name of the conflicting field.
        field: &'static str,
    },

    /// A file that should be a SQLite database (a backup) is not one.
    #[error("not a SQLite database")]
    NotSqlite,

    /// A SQLite file is cut short or damaged (`PRAGMA integrity_check`), or needs files
    /// beside it to be whole.
    #[error("the SQLite file is damaged: {0}")]
    Damaged(String),

    /// A SQLite database, but not Kefu's: it has no Kefu schema migrations.
    #[error("not a Kefu database (it holds no Kefu schema)")]
    NotKefu,

    /// A Kefu SQLite file at another schema version than this Kefu's, read as it is (a backup
    /// is never migrated in place).
    #[error(
        "a Kefu database at schema migration {found}, while this Kefu is at {known}: use the Kefu version that wrote it"
    )]
    OtherSchema {
        /// The file's newest migration.
        found: i64,
        /// This Kefu's newest migration.
        known: i64,
    },

    /// Any other database error. Internal: log it, answer a plain 500.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),

    /// SQLite's group-commit writer (`group_commit.rs`, on its own connection) failed, or
    /// stopped before answering. Internal like [`Error::Database`], except that a full disk
    /// says so.
    #[error("database error: {message}")]
    Writer {
        /// SQLite's or the thread's own words.
        message: String,
        /// `SQLITE_FULL`: see [`Error::is_disk_full`].
        disk_full: bool,
    },

    /// As many appends as the writer commits in two batches are waiting already: this one was
    /// refused at once and not stored, so a client retries shortly instead of waiting behind a
    /// queue that only grows under overload.
    #[error("too many messages are waiting to be stored")]
    Busy,
}

impl From<sqlx::Error> for Error {
    /// Foreign-key violations mean a referenced row is missing, so they become
    /// [`Error::NotFound`]; everything else is an internal [`Error::Database`]. Unique violations
    /// are mapped where the column is known, with [`conflict_on`].
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => Error::NotFound,
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Error::NotFound,
            _ => Error::Database(error),
        }
    }
}

/// Brings the schema up to this Kefu's with `migrator`: [`Error::NewerDatabase`] when the
/// database has a migration the migrator does not (a newer Kefu ran it).
pub(crate) async fn migrate<'a, A>(migrator: &sqlx::migrate::Migrator, pool: A) -> Result<()>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    migrator.run(pool).await.map_err(|error| match error {
        sqlx::migrate::MigrateError::VersionMissing(found) => Error::NewerDatabase {
            found,
            known: migrator.iter().map(|m| m.version).max().unwrap_or(0),
        },
        other => Error::Migrate(other),
    })
}

/// What went wrong reaching a database, in the terms a person setting Kefu up can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectProblem {
    /// Nothing answers at that host and port (or it is not that kind of database).
    Unreachable,
    /// The server refused the user name or password.
    BadCredentials,
    /// The server has no database of that name.
    NoDatabase,
    /// The user may connect but not create Kefu's tables.
    NoPrivilege,
}

impl Error {
    /// Whether the database refused a write because its disk (or its size cap) is full: it
    /// may succeed again once space returns, so the caller should answer "retry later".
    ///
    /// SQLite: `SQLITE_FULL` (13, "database or disk is full"), which its Unix VFS also
    /// returns for a write that hits `ENOSPC` (an `SQLITE_IOERR_*` does not say which errno it
    /// met, so those stay internal). PostgreSQL: `53100` disk_full. MySQL/MariaDB: 1021
    /// `ER_DISK_FULL` and 1114 `ER_RECORD_FILE_FULL`.
    pub fn is_disk_full(&self) -> bool {
        if let Error::Writer { disk_full, .. } = self {
            return *disk_full;
        }
        let Error::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            return matches!(mysql.number(), 1021 | 1114);
        }
        if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            return db.code().as_deref() == Some("13");
        }
        db.code().as_deref() == Some("53100")
    }

    /// Whether the database could not be reached, or the link to it broke mid-request: the
    /// server stopped or is restarting, or the network between is down. It may succeed again
    /// once the database answers (the pool opens new connections by itself), so the caller
    /// should answer "retry later". A write that met this may or may not have been committed;
    /// the message's `client_id` makes the retry safe.
    ///
    /// Any I/O or TLS error, and the pool finding no connection within its acquire timeout;
    /// PostgreSQL: class `08` (connection exception) and `57P01`-`57P03` (the server is shutting
    /// down or starting); MySQL/MariaDB: 1053 `ER_SERVER_SHUTDOWN` and 1927
    /// `ER_CONNECTION_KILLED`.
    pub fn is_unreachable(&self) -> bool {
        let Error::Database(source) = self else {
            return false;
        };
        match source {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
            sqlx::Error::Database(db) => {
                if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    return matches!(mysql.number(), 1053 | 1927);
                }
                if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    return false;
                }
                db.code().is_some_and(|code| {
                    code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
                })
            }
            _ => false,
        }
    }

    /// Which of the usual set-up mistakes this error is, if it is one.
    pub fn connect_problem(&self) -> Option<ConnectProblem> {
        let source = match self {
            Error::Connect { source, .. } => source,
            Error::Migrate(sqlx::migrate::MigrateError::Execute(source)) => source,
            Error::Database(source) => source,
            _ => return None,
        };
        match source {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
                Some(ConnectProblem::Unreachable)
            }
            sqlx::Error::Database(db) => {
                if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    return match mysql.number() {
                        // ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR
                        1045 | 1698 => Some(ConnectProblem::BadCredentials),
                        // ER_BAD_DB_ERROR
                        1049 => Some(ConnectProblem::NoDatabase),
                        // ER_DBACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR
                        1044 | 1142 => Some(ConnectProblem::NoPrivilege),
                        _ => None,
                    };
                }
                match db.code().as_deref() {
                    // invalid_password, invalid_authorization_specification
                    Some("28P01" | "28000") => Some(ConnectProblem::BadCredentials),
                    // invalid_catalog_name
                    Some("3D000") => Some(ConnectProblem::NoDatabase),
                    // insufficient_privilege
                    Some("42501") => Some(ConnectProblem::NoPrivilege),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Maps a unique violation to [`Error::Conflict`] on `field`, anything else as [`From`] does.
pub(crate) fn conflict_on(field: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict { field },
        _ => Error::from(error),
    }
}

/// True when `error` is a unique-constraint violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}
