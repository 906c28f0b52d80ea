//! `kefu-bench worker`: a client process holding a share of the idle connections.
//!
//! One process may hold at most ~20,000 file descriptors here, so the coordinator spreads the
//! idle visitors over several workers, each connecting from its own 127.0.x.y addresses. A
//! worker reads [`Command`]s on stdin and answers each with one [`Reply`] line on stdout.
//! Every wait is bounded: a connection gets [`ATTEMPTS`] tries of [`CONNECT_TIMEOUT`] each.

use crate::Result;
use crate::children::reply;
use crate::client::{CONNECT_TIMEOUT, Ws, connect, send_text, unix_us, visitor_handshake};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Tries per connection before it counts as failed.
const ATTEMPTS: u32 = 4;

/// What the connections talk to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// The echo floor: "hello" is one text frame echoed back.
    Echo,
    /// Kefu: a visitor hello answered by `welcome`.
    Kefu {
        /// The bench site's key.
        site_key: String,
    },
}

/// What the coordinator asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Open `count` connections (at most `concurrency` handshakes at a time) and hold them.
    Connect {
        /// Echo or kefu.
        target: Target,
        /// The server.
        addr: SocketAddr,
        /// Source addresses, used in turn.
        sources: Vec<Ipv4Addr>,
        /// How many connections.
        count: usize,
        /// Handshakes in flight at most.
        concurrency: usize,
    },
    /// At `at_unix_us`, drop every held connection and reconnect them all: at once, or each
    /// after its own wait in `0..=jitter_ms` (the protocol's first reconnect delay).
    Storm {
        /// The common start, so all workers drop together.
        at_unix_us: u64,
        /// The most a connection waits before reconnecting (0: none).
        jitter_ms: u64,
    },
    /// How many connections are held right now.
    Status,
    /// Drop every connection.
    Close,
}

/// The worker's answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// After `connect`.
    Connected {
        /// Connections that got their welcome.
        ok: usize,
        /// Connections that failed every attempt.
        failed: usize,
        /// Why the first failure failed.
        first_error: Option<String>,
    },
    /// After `storm`.
    Stormed {
        /// Connections back (welcome received).
        ok: usize,
        /// Connections that failed every attempt.
        failed: usize,
        /// For each connection back: µs from the common start to its welcome.
        latencies_us: Vec<u64>,
        /// Why the first failure failed.
        first_error: Option<String>,
    },
    /// After `status`.
    Status {
        /// Connections open and held.
        held: usize,
    },
    /// After `close`.
    Closed,
}

/// One connection slot: where it connects from, who it is, the task holding it.
struct Slot {
    source: Ipv4Addr,
    token: Option<String>,
    task: Option<JoinHandle<()>>,
}

/// What every connection task shares.
struct Shared {
    target: Target,
    addr: SocketAddr,
    /// Connections currently held (decremented when a held connection ends for any reason).
    held: AtomicUsize,
}

/// The outcome of opening one slot's connection.
struct Outcome {
    slot: usize,
    at_unix_us: u64,
    result: Result<Option<String>, String>,
}

/// Runs the worker until stdin closes.
pub fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    let mut commands = stdin_lines();
    let mut slots: Vec<Slot> = Vec::new();
    let mut shared: Option<Arc<Shared>> = None;
    while let Some(line) = commands.recv().await {
        let answer = match serde_json::from_str::<Command>(&line)? {
            Command::Connect {
                target,
                addr,
                sources,
                count,
                concurrency,
            } => {
                close(&mut slots, shared.as_deref()).await;
                let context = Arc::new(Shared {
                    target,
                    addr,
                    held: AtomicUsize::new(0),
                });
                shared = Some(context.clone());
                let sources = if sources.is_empty() {
                    vec![Ipv4Addr::LOCALHOST]
                } else {
                    sources
                };
                slots = (0..count)
                    .map(|i| Slot {
                        source: sources[i % sources.len()],
                        token: None,
                        task: None,
                    })
                    .collect();
                let gate = Arc::new(Semaphore::new(concurrency.max(1)));
                let (ok, failed, first_error, _) =
                    open_all(&mut slots, &context, Some(gate), |_| Some(Duration::ZERO)).await;
                Reply::Connected {
                    ok,
                    failed,
                    first_error,
                }
            }
            Command::Storm {
                at_unix_us,
                jitter_ms,
            } => match &shared {
                Some(context) => storm(&mut slots, context, at_unix_us, jitter_ms).await,
                None => Reply::Stormed {
                    ok: 0,
                    failed: 0,
                    latencies_us: Vec::new(),
                    first_error: Some("nothing connected".into()),
                },
            },
            Command::Status => Reply::Status {
                held: shared
                    .as_ref()
                    .map_or(0, |context| context.held.load(Ordering::SeqCst)),
            },
            Command::Close => {
                close(&mut slots, shared.as_deref()).await;
                slots.clear();
                Reply::Closed
            }
        };
        reply(&answer)?;
    }
    Ok(())
}

/// Stdin lines, read on a thread (the runtime has no blocking-stdin support compiled in).
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Drops every connection and waits (bounded) until their tasks are gone.
async fn close(slots: &mut [Slot], shared: Option<&Shared>) {
    for slot in slots.iter_mut() {
        if let Some(task) = slot.task.take() {
            task.abort();
        }
    }
    let Some(shared) = shared else { return };
    for _ in 0..100 {
        if shared.held.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Drops every held connection at `at_unix_us`, then reconnects them all with their tokens.
async fn storm(slots: &mut [Slot], shared: &Arc<Shared>, at_unix_us: u64, jitter_ms: u64) -> Reply {
    let now = unix_us();
    if at_unix_us > now {
        tokio::time::sleep(Duration::from_micros(at_unix_us - now)).await;
    }
    let mut back = Vec::new();
    for slot in slots.iter_mut() {
        if let Some(task) = slot.task.take() {
            task.abort();
            back.push(true);
        } else {
            back.push(false);
        }
    }
    let (ok, failed, first_error, times) = open_all(slots, shared, None, |slot| {
        back[slot].then(|| Duration::from_micros(spread(slot, jitter_ms * 1000)))
    })
    .await;
    Reply::Stormed {
        ok,
        failed,
        latencies_us: times
            .into_iter()
            .map(|at| at.saturating_sub(at_unix_us))
            .collect(),
        first_error,
    }
}

/// A pseudo-random but repeatable wait in `0..=max_us` for connection `slot`, spread evenly
/// over the range (a splitmix64 step of the slot number).
pub fn spread(slot: usize, max_us: u64) -> u64 {
    if max_us == 0 {
        return 0;
    }
    let mut x = (slot as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    x % (max_us + 1)
}

/// Opens the slots `delay` chooses (after the delay it gives; `None` skips the slot); each task
/// then keeps holding its connection. Returns `(ok, failed, first error, welcome times)`.
async fn open_all(
    slots: &mut [Slot],
    shared: &Arc<Shared>,
    gate: Option<Arc<Semaphore>>,
    delay: impl Fn(usize) -> Option<Duration>,
) -> (usize, usize, Option<String>, Vec<u64>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut expected = 0;
    for (i, slot) in slots.iter_mut().enumerate() {
        let Some(wait) = delay(i) else {
            continue;
        };
        expected += 1;
        slot.task = Some(tokio::spawn(session(
            i,
            shared.clone(),
            slot.source,
            slot.token.clone(),
            gate.clone(),
            wait,
            tx.clone(),
        )));
    }
    drop(tx);
    let (mut ok, mut failed, mut first_error, mut times) = (0, 0, None, Vec::new());
    for _ in 0..expected {
        let Some(outcome) = rx.recv().await else {
            break;
        };
        match outcome.result {
            Ok(token) => {
                ok += 1;
                times.push(outcome.at_unix_us);
                if token.is_some() {
                    slots[outcome.slot].token = token;
                }
            }
            Err(error) => {
                failed += 1;
                first_error.get_or_insert(error);
                slots[outcome.slot].task = None;
            }
        }
    }
    (ok, failed, first_error, times)
}

/// One connection's life: open it (bounded retries), report, then hold it until aborted or
/// closed by the server.
async fn session(
    slot: usize,
    shared: Arc<Shared>,
    source: Ipv4Addr,
    token: Option<String>,
    gate: Option<Arc<Semaphore>>,
    wait: Duration,
    done: mpsc::UnboundedSender<Outcome>,
) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let opened = {
        let _permit = match gate {
            Some(gate) => gate.acquire_owned().await.ok(),
            None => None,
        };
        open(&shared, source, token.as_deref()).await
    };
    match opened {
        Ok((ws, token)) => {
            shared.held.fetch_add(1, Ordering::SeqCst);
            let _held = Held(&shared.held);
            let _ = done.send(Outcome {
                slot,
                at_unix_us: unix_us(),
                result: Ok(token),
            });
            hold(ws).await;
        }
        Err(error) => {
            let _ = done.send(Outcome {
                slot,
                at_unix_us: unix_us(),
                result: Err(error),
            });
        }
    }
}

/// Counts a held connection until dropped (also when its task is aborted).
struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads (and so answers pings) until the connection ends.
async fn hold(mut ws: Ws) {
    while let Some(Ok(_)) = ws.next().await {}
}

/// Connects and says hello, retrying; returns the connection and the visitor token.
async fn open(
    shared: &Shared,
    source: Ipv4Addr,
    token: Option<&str>,
) -> Result<(Ws, Option<String>), String> {
    let mut last_error = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, open_once(shared, source, token)).await {
            Ok(Ok(opened)) => return Ok(opened),
            Ok(Err(error)) => last_error = error.to_string(),
            Err(_) => last_error = format!("no welcome within {CONNECT_TIMEOUT:?}"),
        }
    }
    Err(last_error)
}

async fn open_once(
    shared: &Shared,
    source: Ipv4Addr,
    token: Option<&str>,
) -> Result<(Ws, Option<String>)> {
    match &shared.target {
        Target::Echo => {
            let mut ws = connect(shared.addr, Some(source), "/", None, None).await?;
            send_text(&mut ws, "hello".into()).await?;
            loop {
                match ws.next().await.ok_or("closed before the echo")?? {
                    Message::Text(_) => return Ok((ws, None)),
                    _ => continue,
                }
            }
        }
        Target::Kefu { site_key } => {
            let mut ws = connect(
                shared.addr,
                Some(source),
                protocol::transport::WS_VISITOR_PATH,
                Some(crate::client::ORIGIN),
                None,
            )
            .await?;
            let token = visitor_handshake(&mut ws, site_key, token, &[]).await?;
            Ok((ws, Some(token)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        assert_eq!(spread(7, 0), 0);
        let waits: Vec<u64> = (0..10_000).map(|slot| spread(slot, 500_000)).collect();
        assert!(waits.iter().all(|&w| w <= 500_000));
        let again: Vec<u64> = (0..10_000).map(|slot| spread(slot, 500_000)).collect();
        assert_eq!(waits, again, "repeatable");
        // Each tenth of the range gets about a tenth of the connections.
        for tenth in 0..10 {
            let n = waits.iter().filter(|&&w| w / 50_001 == tenth).count();
            assert!((800..1200).contains(&n), "tenth {tenth}: {n}");
        }
    }
}
