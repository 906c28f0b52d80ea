//! Errors of the server layer: start-up, configuration and storage failures.

/// Why the server could not start or an operation failed. Each message is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Store(#[from] store::Error),
    #[error("site options: {0}")]
    Site(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("agent: {0}")]
    Agent(String),
    #[error("password hashing: {0}")]
    Password(String),
    #[error("init: {0}")]
    Init(String),
    #[error("migrate-to: {0}")]
    Migrate(String),
    #[error("{0}")]
    Backup(#[from] crate::backup::BackupError),
}

/// Result with the server's error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
