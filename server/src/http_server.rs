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
//!
//! When descriptors run out all the same (a reconnect storm: thousands of old sockets still
//! closing as their clients come back), `accept` is retried every 2 ms while the closing
//! sockets free theirs; after half a second with none freed, one descriptor kept in reserve is
//! let go to accept a waiting connection and close it at once (shed, counted in `/metrics`),
//! so its client retries instead of hanging in the backlog.

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

/// Raises the process's soft open-file limit to its hard limit, at start: every connection is
/// a descriptor, and services are often started with a soft limit (1,024) far below what the
/// system allows them. Returns the limit before and after.
pub fn raise_open_file_limit() -> (u64, u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let was = before.current.unwrap_or(u64::MAX);
    if before.current < before.maximum || (before.current.is_some() && before.maximum.is_none()) {
        let raised = rustix::process::Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        // Refused (a container's seccomp, say): the soft limit stays and is what is logged.
        let _ = setrlimit(Resource::Nofile, raised);
    }
    (was, open_file_limit())
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

/// How soon an `accept` that found no free descriptor is tried again: in a reconnect storm the
/// old sockets close by the thousand, and each one closed lets one new connection in.
const ACCEPT_RETRY: Duration = Duration::from_millis(2);

/// How long `accept` may go on finding no free descriptor before a waiting connection is shed:
/// nothing closed for that long means the node is full, not in the middle of a storm.
const SHED_AFTER: Duration = Duration::from_millis(500);

/// A descriptor held back for when the process runs out: let go, it makes room to accept one
/// waiting connection and close it, so its client is told at once.
struct Reserve(Option<std::fs::File>);

impl Reserve {
    fn hold() -> Reserve {
        Reserve(std::fs::File::open("/dev/null").ok())
    }

    /// Closes the reserve: one descriptor free.
    fn let_go(&mut self) {
        self.0 = None;
    }

    /// Holds a descriptor again (when one is free).
    fn take_back(&mut self) {
        if self.0.is_none() {
            self.0 = std::fs::File::open("/dev/null").ok();
        }
    }
}

/// Whether `accept` failed for want of a descriptor: the process's limit (`EMFILE`) or the
/// system's (`ENFILE`).
fn out_of_descriptors(error: &std::io::Error) -> bool {
    use rustix::io::Errno;
    let code = error.raw_os_error();
    code == Some(Errno::MFILE.raw_os_error()) || code == Some(Errno::NFILE.raw_os_error())
}

/// Serves `app` on `listener` until `shutdown` completes, then lets every connection finish
/// its request and waits for them. Handlers see the peer as `ConnectInfo<SocketAddr>`.
/// Connections shed for want of descriptors are counted in `metrics`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    metrics: Arc<crate::metrics::Metrics>,
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
    let mut reserve = Reserve::hold();
    // Since when `accept` has found no free descriptor.
    let mut starved: Option<std::time::Instant> = None;
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
                Ok(accepted) => {
                    starved = None;
                    accepted
                }
                Err(error) if out_of_descriptors(&error) => {
                    let since = *starved.get_or_insert_with(|| {
                        tracing::info!("out of file descriptors: new connections wait a moment");
                        std::time::Instant::now()
                    });
                    if since.elapsed() < SHED_AFTER {
                        tokio::time::sleep(ACCEPT_RETRY).await;
                        continue;
                    }
                    starved = None;
                    reserve.let_go();
                    if let Ok((stream, _)) = listener.accept().await {
                        drop(stream);
                        metrics
                            .accepts_shed
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    reserve.take_back();
                    continue;
                }
                Err(error) => {
                    // A connection reset before it was accepted: nothing to wait for.
                    tracing::debug!(%error, "accept failed");
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
