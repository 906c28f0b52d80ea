//! A fault-injecting TCP proxy for tests: Kefu reaches its database or Redis through it, and the
//! test cuts, partitions, slows and restores that link while the real server behind it runs on,
//! undisturbed for the other tests that share it.
//!
//! It forwards bytes as they come, with no knowledge of the protocol inside; it does not
//! simulate packet loss or reordering (TCP would hide them anyway).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

/// What the link does now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bytes flow both ways.
    Open,
    /// Every connection is reset and new ones are refused: a database that went away, or a
    /// firewall that rejects.
    Cut,
    /// Connections stay open (and new ones are accepted) but no byte crosses: a partition, as
    /// a dropped route or a silent firewall makes it, which the ends only notice by timeouts.
    Blackhole,
    /// Bytes flow, each chunk held this long first: a slow or distant link.
    Delay(Duration),
}

/// A proxy on `127.0.0.1` forwarding to one upstream; stops when dropped.
pub struct Proxy {
    /// Where clients connect (the same port across cuts).
    pub addr: SocketAddr,
    /// The mode every connection and the accept loop follow.
    mode: watch::Sender<Mode>,
    /// Connections accepted so far, to tell that a client reconnected.
    accepted: Arc<AtomicUsize>,
    /// The accept loop; aborting it ends every connection (they are in its `JoinSet`).
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let addr = listen(None).local_addr().expect("proxy addr");
        let (mode, watch) = watch::channel(Mode::Open);
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(addr, upstream, watch, accepted.clone()));
        Proxy {
            addr,
            mode,
            accepted,
            task,
        }
    }

    /// `url` with `upstream` (`host:port` as written in it) replaced by this proxy's address.
    pub fn route(&self, url: &str, upstream: &str) -> String {
        let routed = url.replacen(upstream, &self.addr.to_string(), 1);
        assert_ne!(routed, url, "{upstream} is not in the URL");
        routed
    }

    /// Resets every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Stops every byte, keeping the connections, until [`Proxy::restore`].
    pub fn blackhole(&self) {
        self.mode.send_replace(Mode::Blackhole);
    }

    /// Holds every chunk for `delay` before forwarding it, until [`Proxy::restore`].
    pub fn delay(&self, delay: Duration) {
        self.mode.send_replace(Mode::Delay(delay));
    }

    /// Lets bytes flow again; after a partition, what was held goes through.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener on `addr`, or on a free port of 127.0.0.1; `SO_REUSEADDR` so the same port can
/// be listened on again right after a cut.
fn listen(addr: Option<SocketAddr>) -> tokio::net::TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("reuseaddr");
    let addr = addr.unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr"));
    socket.bind(addr).expect("bind proxy");
    socket.listen(1024).expect("listen")
}

async fn accept_loop(
    addr: SocketAddr,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    accepted: Arc<AtomicUsize>,
) {
    // Dropping the JoinSet (when this task is aborted) aborts every connection.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        if mode.wait_for(|m| *m != Mode::Cut).await.is_err() {
            return;
        }
        // Listening only while not cut: a connection attempt meanwhile is refused.
        let listener = listen(Some(addr));
        let mut cuts = mode.clone();
        loop {
            tokio::select! {
                inbound = listener.accept() => {
                    let Ok((inbound, _)) = inbound else { continue };
                    accepted.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(forward(inbound, upstream, mode.clone()));
                }
                cut = cuts.wait_for(|m| *m == Mode::Cut) => {
                    if cut.is_err() {
                        return;
                    }
                    break;
                }
            }
            // Reap the connections that ended, so the set does not grow over a long test.
            while connections.try_join_next().is_some() {}
        }
    }
}

/// One connection: forwards both ways as the mode says, until either end closes or a cut
/// resets both.
async fn forward(mut inbound: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut in_read, mut in_write) = inbound.split();
    let (mut out_read, mut out_write) = outbound.split();
    let (up_mode, down_mode) = (mode.clone(), mode.clone());
    tokio::select! {
        _ = async {
            tokio::join!(
                pump(&mut in_read, &mut out_write, up_mode),
                pump(&mut out_read, &mut in_write, down_mode),
            )
        } => return,
        _ = mode.wait_for(|m| *m == Mode::Cut) => {}
    }
    // A reset, not a goodbye: both ends see the connection fail at once, as when a server dies
    // or a firewall rejects.
    for stream in [&inbound, &outbound] {
        let _ = stream.set_zero_linger();
    }
}

/// Copies `from` to `to` chunk by chunk, holding each chunk while the link is a black hole or
/// for the delay; shuts `to` for writing when `from` ends.
async fn pump(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Ok(now) = mode.wait_for(|m| *m != Mode::Blackhole).await.map(|m| *m) else {
            break;
        };
        if let Mode::Delay(delay) = now {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
