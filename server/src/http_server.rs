//! The HTTP server itself: how many connections it holds and how long it waits for a client.
//!
//! `axum::serve` has neither a header timeout nor a connection cap, so a client sending its
//! headers one byte a second (slowloris) holds a file descriptor for ever, and enough of them
//! exhaust the process. Here each connection gets hyper's header-read timeout, which hyper also
//! applies while a keep-alive connection waits for its next request (the idle timeout), and
//! at most `max_connections` are served at once: past it new connections wait in the kernel's
//! backlog instead of failing `accept` with "too many open files". A long poll is not
//! affected: its headers arrive at once and the response is what takes time. Upgraded
//! WebSockets leave hyper and are limited by the real-time side (`max_connections`, pings).

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Limits of the HTTP server; see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection is kept for its next request.
    pub header_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
}

/// The default header timeout: generous for a phone on a bad link, short for an attacker.
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;

/// File descriptors kept back from the HTTP server: database pool, log and data files.
const RESERVED_FILES: u64 = 256;

/// Further descriptors kept back from real-time connections, so the console, the API and
/// uploads still get through while the node is full of visitors.
const RESERVED_FOR_REQUESTS: u64 = 256;

impl HttpLimits {
    /// The given settings, or the defaults: a 10 s header timeout, and as many connections as
    /// the process's open-file limit allows after what Kefu needs for itself.
    pub fn new(header_timeout_ms: Option<u64>, max_connections: Option<u32>) -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_millis(
                header_timeout_ms
                    .unwrap_or(DEFAULT_HEADER_TIMEOUT_MS)
                    .max(100),
            ),
            max_connections: max_connections.map_or_else(
                || {
                    usize::try_from(open_file_limit().saturating_sub(RESERVED_FILES).max(64))
                        .unwrap_or(usize::MAX)
                },
                |max| usize::try_from(max.max(1)).unwrap_or(usize::MAX),
            ),
        }
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits::new(None, None)
    }
}

/// The process's open-file limit (its soft limit), or a common default when it cannot be read.
pub fn open_file_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20)
}

/// The default node-wide cap on real-time connections: what the open-file limit leaves after
/// Kefu's own files and room for ordinary requests.
pub fn default_realtime_connections() -> u32 {
    let free = open_file_limit().saturating_sub(RESERVED_FILES + RESERVED_FOR_REQUESTS);
    u32::try_from(free.max(16)).unwrap_or(u32::MAX)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets every connection finish
/// its request and waits for them. Handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .enable_connect_protocol();
    // Connections hold a receiver each: the server is done when they are all gone.
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before accept: wait a moment
                    // rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(axum::body::Body::new)
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let mut asked = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    changed = stopping.wait_for(|stop| *stop), if !asked => {
                        asked = true;
                        if changed.is_ok() {
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
            drop(permit);
            drop(stopping);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(stopping);
    stop.closed().await;
}
