//! Idle connections held by the worker processes, the server's memory per connection, and
//! the reconnect storm (everyone drops at one instant and reconnects).

use super::*;

pub(super) struct Idle {
    pub(super) sources: String,
    pub(super) held: usize,
    pub(super) failed: usize,
    pub(super) first_error: Option<String>,
    pub(super) connect_time: Duration,
    pub(super) rss_before_kib: u64,
    pub(super) rss_after_kib: u64,
    pub(super) kib_per_conn: f64,
}

impl Idle {
    pub(super) fn note(&self) -> String {
        let mut note = format!(
            "connected in {:.1} s from {}",
            self.connect_time.as_secs_f64(),
            self.sources
        );
        if self.failed > 0 {
            note.push_str(&format!(
                "; {} failed: {}",
                self.failed,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        note
    }
}

/// Opens `total` idle connections spread over the workers and reads the server's memory.
pub(super) async fn idle(
    workers: &mut [Child],
    target: Target,
    addr: SocketAddr,
    total: usize,
    server: &Child,
) -> Result<Idle> {
    let rss_before_kib = server.rss_kib()?;
    let n = workers.len();
    let started = Instant::now();
    for (w, worker) in workers.iter_mut().enumerate() {
        worker
            .send(&Command::Connect {
                target: target.clone(),
                addr,
                sources: sources(20 + w as u8, 8),
                count: total / n + usize::from(w < total % n),
                concurrency: 100,
            })
            .await?;
    }
    let (mut failed, mut first_error) = (0, None);
    for worker in workers.iter_mut() {
        match worker.recv(REPLY_WAIT).await? {
            Reply::Connected {
                failed: f,
                first_error: e,
                ..
            } => {
                failed += f;
                if first_error.is_none() {
                    first_error = e;
                }
            }
            other => return Err(format!("unexpected reply {other:?}").into()),
        }
    }
    let connect_time = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let held = held(workers).await?;
    let rss_after_kib = server.rss_kib()?;
    Ok(Idle {
        sources: format!(
            "{} client processes, {} source addresses 127.0.20.1-127.0.{}.8",
            n,
            n * 8,
            19 + n
        ),
        held,
        failed,
        first_error,
        connect_time,
        rss_before_kib,
        rss_after_kib,
        kib_per_conn: rss_after_kib.saturating_sub(rss_before_kib) as f64 / held.max(1) as f64,
    })
}

pub(super) async fn held(workers: &mut [Child]) -> Result<usize> {
    let mut total = 0;
    for worker in workers.iter_mut() {
        worker.send(&Command::Status).await?;
        match worker.recv(REPLY_WAIT).await? {
            Reply::Status { held } => total += held,
            other => return Err(format!("unexpected reply {other:?}").into()),
        }
    }
    Ok(total)
}

pub(super) async fn close_workers(workers: &mut [Child]) -> Result<()> {
    for worker in workers.iter_mut() {
        worker.send(&Command::Close).await?;
    }
    for worker in workers.iter_mut() {
        match worker.recv(REPLY_WAIT).await? {
            Reply::Closed => {}
            other => return Err(format!("unexpected reply {other:?}").into()),
        }
    }
    Ok(())
}

pub(super) struct Storm {
    pub(super) back: usize,
    pub(super) failed: usize,
    pub(super) first_error: Option<String>,
    /// Seconds until the last one was back; infinite when some never came back.
    pub(super) all_back_s: f64,
    pub(super) latencies: Option<Summary>,
    pub(super) held_after: usize,
    pub(super) listen_overflows: Option<u64>,
    pub(super) server_cpu: String,
}

impl Storm {
    pub(super) fn note(&self) -> String {
        let mut note = format!(
            "{} dropped together and reconnected",
            self.back + self.failed
        );
        if let Some(latencies) = self.latencies {
            note.push_str(&format!(
                "; per connection p50 {} ms, p99 {} ms",
                number(ms(latencies.p50)),
                number(ms(latencies.p99))
            ));
        }
        note.push_str(&format!("; {} held 1 s later", self.held_after));
        if let Some(overflows) = self.listen_overflows {
            note.push_str(&format!(
                "; {} SYNs dropped by the full accept queue (kernel ListenOverflows)",
                number(overflows as f64)
            ));
        }
        if !self.server_cpu.is_empty() {
            note.push_str(&format!("; {}", self.server_cpu));
        }
        if self.failed > 0 {
            note.push_str(&format!(
                "; {} NEVER came back: {}",
                self.failed,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        note
    }
}

/// Every worker drops all its connections at one instant and reconnects them, at once or each
/// after a wait in `0..=jitter_ms`.
pub(super) async fn storm(
    workers: &mut [Child],
    (server, who): (&Child, &str),
    jitter_ms: u64,
) -> Result<Storm> {
    let overflows_before = crate::children::tcp_ext_counter("ListenOverflows");
    let meter = CpuMeter::start(server);
    let at_unix_us = unix_us() + 500_000;
    for worker in workers.iter_mut() {
        worker
            .send(&Command::Storm {
                at_unix_us,
                jitter_ms,
            })
            .await?;
    }
    let (mut back, mut failed, mut first_error, mut latencies) = (0, 0, None, Vec::new());
    for worker in workers.iter_mut() {
        match worker.recv(REPLY_WAIT).await? {
            Reply::Stormed {
                ok,
                failed: f,
                latencies_us,
                first_error: e,
            } => {
                back += ok;
                failed += f;
                latencies.extend(latencies_us);
                if first_error.is_none() {
                    first_error = e;
                }
            }
            other => return Err(format!("unexpected reply {other:?}").into()),
        }
    }
    let latencies = Summary::of(latencies);
    let all_back_s = match latencies {
        Some(latencies) if failed == 0 => latencies.max as f64 / 1e6,
        _ => f64::INFINITY,
    };
    let listen_overflows = crate::children::tcp_ext_counter("ListenOverflows")
        .zip(overflows_before)
        .map(|(after, before)| after.saturating_sub(before));
    let server_cpu = cpu_note(meter, server, who);
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Storm {
        back,
        failed,
        first_error,
        all_back_s,
        latencies,
        held_after: held(workers).await?,
        listen_overflows,
        server_cpu,
    })
}
