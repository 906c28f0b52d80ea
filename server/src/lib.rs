//! The Kefu server as a library: what `main.rs` runs and what the integration tests call.
//!
//! [`serve`] takes a bound listener, the state and a shutdown future, so tests can bind
//! `127.0.0.1:0`, spawn it and talk to it over real sockets without sleeping.

pub mod agents;
pub mod answers;
pub mod backup;
pub mod bus;
pub mod config;
pub mod config_file;
pub mod edge;
mod error;
pub mod geoip;
pub mod http_server;
pub mod init;
pub mod leave_digest;
pub mod mail;
pub mod metrics;
pub mod migrate_to;
pub mod outbound;
pub mod realtime;
pub mod setup;
pub mod site;
pub mod tasks;
pub mod telemetry;
pub mod translate;
pub mod util;
pub mod web;
pub mod webhooks;
pub mod wiring;

pub use error::{Error, Result};
pub use util::now_ms;
pub use web::routes::router;
pub use web::state::AppState;

use std::future::Future;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};

/// Prints `line` for the person who started Kefu. A closed standard output (the terminal or
/// pipe gone) must not stop a running server, as `println!` would by panicking.
pub fn announce(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Pending connections the kernel may queue; tokio's default of 128 overflows in reconnect storms.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Opens the listening socket with a large backlog.
pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .and_then(|socket| {
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        Ok(socket)
    })
    .map_err(|source| Error::Bind { addr, source })?;
    socket
        .listen(LISTEN_BACKLOG)
        .map_err(|source| Error::Bind { addr, source })
}

/// Serves until `shutdown` completes, then finishes in-flight requests and returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let realtime = state.realtime.clone();
    let limits = state.http;
    let metrics = state.metrics.clone();
    let app = router(state);
    // On shutdown the listener closes, live connections and held polls tell their clients to
    // reconnect (through the balancer, to another node), and the server waits for in-flight
    // requests to finish, for at most DRAIN_TIMEOUT.
    let draining = realtime.clone();
    let shutdown = async move {
        shutdown.await;
        draining.drain();
    };
    let served = async {
        http_server::serve(listener, app, limits, metrics, shutdown).await;
        // Upgraded WebSockets are no longer the HTTP server's: wait for each to tell its
        // client to reconnect, or the process could exit before they have.
        realtime.sockets_closed().await;
    };
    let overdue = async {
        realtime.drained().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        () = served => {}
        () = overdue => tracing::warn!(
            timeout = ?DRAIN_TIMEOUT,
            "requests still running at the end of the drain; exiting anyway"
        ),
    }
    realtime.leave().await;
    if !realtime.tasks.shut_down(DRAIN_TIMEOUT).await {
        tracing::warn!(
            timeout = ?DRAIN_TIMEOUT,
            "background tasks still running at exit; cut off"
        );
    }
    Ok(())
}

/// The longest a shutting-down server waits for its clients to leave.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
