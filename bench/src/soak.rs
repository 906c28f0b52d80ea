//! `kefu-bench soak` (`make soak`): a long run at a steady load, to find what grows.
//!
//! One kefu server process (as `make bench` starts it, with the per-address budgets on so their
//! maps are exercised) is driven at `KEFU_SOAK_RATE` messages a second (default 500) for
//! `KEFU_SOAK_MINUTES` (default 60): visitors over WebSocket who chat for a minute or three and
//! leave (a third drop their connection once and resume with their token and cursor), visitors
//! over the HTTP fallback who send and long-poll, visitors who only look at a page and leave, an
//! agent console that receives everything, answers one message in ten and resolves each
//! conversation its visitor left, and a second console that comes and goes.
//!
//! Every `KEFU_SOAK_SAMPLE_SECS` (default 60) it samples the server's RSS, open descriptors,
//! tokio tasks (`/metrics`) and database size. At the end it prints the least-squares slope of
//! each after the warm-up (the first sixth of the run), the message counts (sent, acked,
//! delivered to the agent, lost, duplicated, stored), and fails when RSS or descriptors keep
//! growing or a message was lost. It does not measure latency or throughput (`make bench` does).

use crate::Result;
use crate::children::Child;
use crate::client::{
    Ws, agent, connect, first_message, resolve_frame, send_frame, send_text, visitor_handshake,
};
use crate::coordinator::{Errors, http_visitor, log_summary, verify_stored};
use crate::report::number;
use crate::serve::Fixture;
use futures_util::{SinkExt, StreamExt};
use protocol::{Author, ConversationId, ServerFrame};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

/// Visitors chatting over WebSocket at any time.
const CHAT_SLOTS: usize = 300;
/// Visitors chatting over the HTTP fallback (send + long poll) at any time.
const HTTP_SLOTS: usize = 40;
/// Visitors who open the widget on a page and leave without writing, at any time.
const BROWSE_SLOTS: usize = 40;
/// The agent answers one visitor message in this many, so replies are about a tenth of the
/// traffic and the visitors send the rest.
const REPLY_EVERY: u64 = 10;
/// A chatting visitor stays this long (uniformly in the range), then leaves.
const CHAT_SECS: (f64, f64) = (60.0, 180.0);
/// A browsing visitor stays this long.
const BROWSE_SECS: (f64, f64) = (5.0, 20.0);
/// The second console stays connected this long, then reconnects.
const CONSOLE_SECS: (f64, f64) = (60.0, 180.0);
/// A leaving visitor waits this long for the acks of its last messages.
const LEAVE_WAIT: Duration = Duration::from_secs(10);
/// A chat-sized message body.
const BODY: &str = "Hi! Is the blue one still in stock in size 40?";

/// RSS growing faster than this share of its mean per hour (after warm-up) fails the run.
const RSS_GROWTH_LIMIT: f64 = 0.05;
/// Descriptors growing faster than this many per hour (after warm-up) fail the run.
const FD_GROWTH_LIMIT: f64 = 20.0;

/// The budgets the soak's server runs with: on, so the per-address limiters fill and are
/// pruned, but far above what the soak's few hundred source addresses spend.
const CONFIG: &str = "[budgets]\nenabled = true\nhellos_per_hour = 100000\n\
                      resumes_per_hour = 100000\nvisitors_per_hour = 100000\n\
                      conversations_per_hour = 100000\nsite_conversations_per_hour = 10000000\n";

/// How long and how hard the soak runs.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// The whole run.
    duration: Duration,
    /// Time between samples.
    sample_every: Duration,
    /// Samples before this are left out of the slopes (allocator, caches and pools filling).
    warmup: Duration,
    /// Messages offered per second, visitors and agent together.
    rate: f64,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let minutes = env_number("KEFU_SOAK_MINUTES", 60.0)?;
        let sample_secs = env_number("KEFU_SOAK_SAMPLE_SECS", 60.0)?;
        let rate = env_number("KEFU_SOAK_RATE", 500.0)?;
        if !(minutes > 0.0 && sample_secs >= 1.0 && rate >= 1.0) {
            return Err(
                "KEFU_SOAK_MINUTES must be > 0, KEFU_SOAK_SAMPLE_SECS ≥ 1 and \
                        KEFU_SOAK_RATE ≥ 1"
                    .into(),
            );
        }
        let duration = Duration::from_secs_f64(minutes * 60.0);
        Ok(Settings {
            duration,
            sample_every: Duration::from_secs_f64(sample_secs),
            warmup: duration / 6,
            rate,
        })
    }

    /// How often each chatting visitor sends.
    fn send_period(&self) -> Duration {
        let visitor_rate = self.rate * (REPLY_EVERY - 1) as f64 / REPLY_EVERY as f64;
        Duration::from_secs_f64((CHAT_SLOTS + HTTP_SLOTS) as f64 / visitor_rate)
    }
}

fn env_number(name: &str, default: f64) -> Result<f64> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("{name}={text:?} is not a number").into()),
        Err(_) => Ok(default),
    }
}

/// A small deterministic random source (splitmix64): lifetimes and choices, no crate needed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn secs(&mut self, (low, high): (f64, f64)) -> Duration {
        Duration::from_secs_f64(low + (high - low) * self.unit())
    }
}

/// Which visitor messages were acked and which of them the receiving agent saw, by
/// conversation and seq (bitsets: a conversation holds a few hundred seqs at most).
#[derive(Default)]
struct Delivery {
    /// Seqs of visitor messages acked to their sender.
    acked: Vec<u64>,
    /// Seqs of visitor messages the receiving agent got.
    seen: Vec<u64>,
    /// Visitor messages the receiving agent got a second time.
    duplicates: u64,
}

/// Sets bit `seq` in `bits`; whether it was set already.
fn set_bit(bits: &mut Vec<u64>, seq: i64) -> bool {
    let seq = usize::try_from(seq).unwrap_or(0);
    let (word, bit) = (seq / 64, seq % 64);
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    let was = bits[word] & (1 << bit) != 0;
    bits[word] |= 1 << bit;
    was
}

/// The counts of the whole run, shared by every client task.
#[derive(Default)]
struct Tally {
    /// New visitors made (each a hello without a token).
    visitors: AtomicU64,
    /// Of those, visitors who only looked at a page.
    browsers: AtomicU64,
    /// WebSocket visitors who dropped their connection and resumed.
    resumes: AtomicU64,
    /// Long polls answered.
    polls: AtomicU64,
    /// Times the second console reconnected.
    console_reconnects: AtomicU64,
    /// Visitor messages sent (each client id once, resends not counted).
    sent: AtomicU64,
    /// Visitor messages acked (each client id once).
    acked: AtomicU64,
    /// Visitor messages still unacked when their visitor gave up waiting.
    unacked: AtomicU64,
    /// Visitor sends the server refused with a retryable error (its writer's queue was full
    /// or too slow): sent again with the same client id after the wait, as the widget does.
    refused: AtomicU64,
    /// Agent replies sent.
    replies_sent: AtomicU64,
    /// Agent replies acked.
    replies_acked: AtomicU64,
    /// Agent replies that reached a visitor still there.
    replies_received: AtomicU64,
    /// Conversations resolved by the agent after their visitor left.
    resolved: AtomicU64,
    /// By conversation.
    delivery: Mutex<HashMap<ConversationId, Delivery>>,
    /// Error frames, failed requests and dropped connections.
    errors: Errors,
}

impl Tally {
    fn delivery(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, Delivery>> {
        self.delivery
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn acked(&self, conversation: ConversationId, seq: i64) {
        self.acked.fetch_add(1, Ordering::Relaxed);
        set_bit(
            &mut self.delivery().entry(conversation).or_default().acked,
            seq,
        );
    }

    fn seen(&self, conversation: ConversationId, seq: i64) {
        let mut delivery = self.delivery();
        let entry = delivery.entry(conversation).or_default();
        if set_bit(&mut entry.seen, seq) {
            entry.duplicates += 1;
        }
    }
}

/// What every client task shares.
struct Ctx {
    /// The server's address, site and agents.
    fixture: Fixture,
    /// How long and how hard.
    settings: Settings,
    /// The counts so far.
    tally: Tally,
    /// Set when the run is over: visitors leave at their next step.
    stop: AtomicBool,
    /// Conversations whose visitor left, for the agent to resolve.
    resolve: mpsc::Sender<ConversationId>,
    /// Numbers visitors across all slots, for unique client ids.
    next_visitor: AtomicU64,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn visitor_number(&self) -> u64 {
        self.next_visitor.fetch_add(1, Ordering::Relaxed)
    }
}

/// `127.0.group.1 ..= 127.0.group.200` by slot: budgets and per-IP counts see many addresses.
fn source(group: u8, slot: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, group, (slot % 200 + 1) as u8)
}

pub fn main() -> Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<bool> {
    let settings = Settings::from_env()?;
    println!("== Kefu soak ==");
    println!(
        "{:.0} min at {} msg/s offered ({} WebSocket + {} HTTP visitors chatting, {} browsing, \
         one agent answering 1 in {REPLY_EVERY}); a sample every {:.0} s; slopes after a \
         {:.1} min warm-up",
        settings.duration.as_secs_f64() / 60.0,
        number(settings.rate),
        CHAT_SLOTS,
        HTTP_SLOTS,
        BROWSE_SLOTS,
        settings.sample_every.as_secs_f64(),
        settings.warmup.as_secs_f64() / 60.0,
    );
    let dir = tempfile::Builder::new().prefix("kefu-soak-").tempdir()?;
    std::fs::write(dir.path().join("kefu.toml"), CONFIG)?;
    let log_path = dir.path().join("server.log");
    let dir_arg = dir
        .path()
        .to_str()
        .ok_or("the temp dir's path is not UTF-8")?
        .to_string();
    let mut server = Child::spawn(
        "kefu server",
        &["server", &dir_arg],
        Stdio::from(std::fs::File::create(&log_path)?),
    )?;
    let fixture: Fixture = server.recv(Duration::from_secs(60)).await?;
    let (resolve, resolve_rx) = mpsc::channel(4096);
    let ctx = Arc::new(Ctx {
        fixture,
        settings,
        tally: Tally::default(),
        stop: AtomicBool::new(false),
        resolve,
        next_visitor: AtomicU64::new(0),
    });

    let receiver = {
        let ws = agent(ctx.fixture.addr, &ctx.fixture.cookies[0], &[]).await?;
        tokio::spawn(receiving_agent(ctx.clone(), ws, resolve_rx))
    };
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(coming_and_going_console(ctx.clone())));
    for slot in 0..CHAT_SLOTS {
        tasks.push(tokio::spawn(ws_chatter(ctx.clone(), slot)));
    }
    for slot in 0..HTTP_SLOTS {
        tasks.push(tokio::spawn(http_chatter(ctx.clone(), slot)));
    }
    for slot in 0..BROWSE_SLOTS {
        tasks.push(tokio::spawn(browser(ctx.clone(), slot)));
    }

    let samples = sample(&ctx, &server).await;

    ctx.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        // Chatting visitors leave at their next send; each waits at most LEAVE_WAIT for acks.
        let _ = tokio::time::timeout(LEAVE_WAIT * 3, task).await;
    }
    // The agent's last deliveries and resolutions.
    tokio::time::sleep(Duration::from_secs(2)).await;
    receiver.abort();
    let agent_result = receiver.await;

    println!();
    let mut ok = verdicts(&samples, &settings);
    let lags = samples.last().map_or(0.0, |s| s.lags);
    ok &= counts(&ctx, lags).await?;
    if let Ok(Err(error)) = agent_result {
        println!("FAILED: the receiving agent's connection ended: {error}");
        ok = false;
    }
    server.stop().await;
    log_summary(&log_path);
    println!();
    println!("soak: {}", if ok { "passed" } else { "FAILED" });
    Ok(ok)
}

/// One reading of the server.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Since the load started.
    at: Duration,
    /// Resident memory (`VmRSS`).
    rss_kib: f64,
    /// Entries of `/proc/<pid>/fd`.
    fds: f64,
    /// `kefu_tokio_alive_tasks` from `/metrics`.
    tasks: f64,
    /// The SQLite file and its WAL.
    db_bytes: f64,
    /// `kefu_realtime_lag_catch_ups_total` from `/metrics`: subscribers that fell behind.
    lags: f64,
}

/// Samples the server until the run's time is up, printing each reading.
async fn sample(ctx: &Ctx, server: &Child) -> Vec<Sample> {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(ctx.settings.sample_every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    let mut last_acked = (0u64, Instant::now());
    println!(
        "{:>7}  {:>9}  {:>5}  {:>6}  {:>9}  {:>7}  {:>8}  {:>5}  {:>6}",
        "t", "RSS MiB", "fds", "tasks", "db MiB", "msg/s", "visitors", "lags", "errors"
    );
    loop {
        ticker.tick().await;
        let at = started.elapsed();
        let metrics = server_metrics(ctx).await;
        let sample = Sample {
            at,
            rss_kib: server.rss_kib().map_or(f64::NAN, |kib| kib as f64),
            fds: server.open_fds().map_or(f64::NAN, |n| n as f64),
            tasks: metric(&metrics, "kefu_tokio_alive_tasks").unwrap_or(f64::NAN),
            db_bytes: database_bytes(&ctx.fixture),
            lags: metric(&metrics, "kefu_realtime_lag_catch_ups_total").unwrap_or(f64::NAN),
        };
        let acked = ctx.tally.acked.load(Ordering::Relaxed)
            + ctx.tally.replies_acked.load(Ordering::Relaxed);
        let rate = (acked - last_acked.0) as f64 / last_acked.1.elapsed().as_secs_f64();
        last_acked = (acked, Instant::now());
        println!(
            "{:>5.0} s  {:>9.1}  {:>5.0}  {:>6.0}  {:>9.1}  {:>7.0}  {:>8}  {:>5}  {:>6}",
            at.as_secs_f64(),
            sample.rss_kib / 1024.0,
            sample.fds,
            sample.tasks,
            sample.db_bytes / 1024.0 / 1024.0,
            rate,
            ctx.tally.visitors.load(Ordering::Relaxed),
            sample.lags,
            ctx.tally.errors.count(),
        );
        samples.push(sample);
        if at >= ctx.settings.duration {
            return samples;
        }
    }
}

/// The server's `/metrics` text (empty when it cannot be read: the sample shows NaN).
async fn server_metrics(ctx: &Ctx) -> String {
    let url = format!("http://{}/metrics", ctx.fixture.addr);
    let response = async { reqwest::get(url).await?.error_for_status()?.text().await };
    match tokio::time::timeout(Duration::from_secs(10), response).await {
        Ok(Ok(text)) => text,
        Ok(Err(error)) => {
            ctx.tally.errors.note(format!("/metrics: {error}"));
            String::new()
        }
        Err(_) => {
            ctx.tally.errors.note("/metrics did not answer within 10 s");
            String::new()
        }
    }
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// The SQLite file and its write-ahead log.
fn database_bytes(fixture: &Fixture) -> f64 {
    let size = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let mut wal = fixture.database.clone().into_os_string();
    wal.push("-wal");
    (size(&fixture.database) + size(std::path::Path::new(&wal))) as f64
}

/// A least-squares line through `(hours, value)` points.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    /// Change per hour.
    slope: f64,
    /// The slope's standard error: how much of it noise alone could make.
    error: f64,
    /// The mean value.
    mean: f64,
}

impl Fit {
    /// `None` with fewer than three points or no spread in time.
    fn of(points: &[(f64, f64)]) -> Option<Fit> {
        let n = points.len() as f64;
        if points.len() < 3 {
            return None;
        }
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean)).sum();
        let slope = sxy / sxx;
        let residuals: f64 = points
            .iter()
            .map(|p| (p.1 - mean - slope * (p.0 - mean_x)).powi(2))
            .sum();
        let error = (residuals / (n - 2.0) / sxx).sqrt();
        Some(Fit { slope, error, mean })
    }

    /// Growing faster than `limit` per hour, by more than twice what noise explains.
    fn grows(&self, limit: f64) -> bool {
        self.slope > limit && self.slope > 2.0 * self.error
    }
}

/// Prints each series' slope after warm-up; whether RSS and descriptors stayed flat.
fn verdicts(samples: &[Sample], settings: &Settings) -> bool {
    let kept: Vec<&Sample> = samples.iter().filter(|s| s.at >= settings.warmup).collect();
    println!(
        "-- slopes after warm-up ({} samples from {:.1} to {:.1} min; least squares, ± one \
         standard error) --",
        kept.len(),
        kept.first().map_or(0.0, |s| s.at.as_secs_f64() / 60.0),
        kept.last().map_or(0.0, |s| s.at.as_secs_f64() / 60.0),
    );
    let fit = |value: fn(&Sample) -> f64| {
        let points: Vec<(f64, f64)> = kept
            .iter()
            .map(|s| (s.at.as_secs_f64() / 3600.0, value(s)))
            .filter(|p| p.1.is_finite())
            .collect();
        Fit::of(&points)
    };
    let mut ok = true;
    let mib = 1024.0;
    match fit(|s| s.rss_kib) {
        Some(rss) => {
            let limit = RSS_GROWTH_LIMIT * rss.mean;
            let grows = rss.grows(limit);
            println!(
                "RSS: {:+.2} ± {:.2} MiB/h ({:+.1} % of the mean {:.1} MiB per hour; fails above \
                 {:.0} % when beyond twice the error): {}",
                rss.slope / mib,
                rss.error / mib,
                rss.slope / rss.mean * 100.0,
                rss.mean / mib,
                RSS_GROWTH_LIMIT * 100.0,
                if grows { "GROWING" } else { "flat" }
            );
            ok &= !grows;
        }
        None => {
            println!("RSS: too few samples after warm-up for a slope: NOT MEASURED");
            ok = false;
        }
    }
    match fit(|s| s.fds) {
        Some(fds) => {
            let grows = fds.grows(FD_GROWTH_LIMIT);
            println!(
                "open descriptors: {:+.1} ± {:.1} per hour (mean {:.0}; fails above \
                 {FD_GROWTH_LIMIT:.0}/h when beyond twice the error): {}",
                fds.slope,
                fds.error,
                fds.mean,
                if grows { "GROWING" } else { "flat" }
            );
            ok &= !grows;
        }
        None => {
            println!("open descriptors: too few samples after warm-up for a slope: NOT MEASURED");
            ok = false;
        }
    }
    match fit(|s| s.tasks) {
        Some(tasks) => println!(
            "tokio tasks: {:+.1} ± {:.1} per hour (mean {:.0}; not a failure by itself)",
            tasks.slope, tasks.error, tasks.mean
        ),
        None => println!("tokio tasks: no slope (/metrics unreadable or too few samples)"),
    }
    if let Some(db) = fit(|s| s.db_bytes) {
        println!(
            "database (file + WAL): {:+.1} ± {:.1} MiB/h (mean {:.1} MiB; grows with the \
             messages stored, by design)",
            db.slope / mib / mib,
            db.error / mib / mib,
            db.mean / mib / mib
        );
    }
    ok
}

/// Prints the message counts and checks them against the database; whether nothing was lost.
/// `lags` is how often a subscriber fell behind its topic: the receiving agent follows no
/// conversation, so what it missed while behind is not replayed to it (a list update carries
/// no gap promise, docs/protocol.md), and a message it did not get live is only a failure
/// when nobody lagged.
async fn counts(ctx: &Ctx, lags: f64) -> Result<bool> {
    let tally = &ctx.tally;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let (mut delivered, mut lost, mut duplicated) = (0u64, 0u64, 0u64);
    let mut highest: Vec<(ConversationId, i64)> = Vec::new();
    for (conversation, delivery) in tally.delivery().iter() {
        let mut top = None;
        for (word, acked) in delivery.acked.iter().enumerate() {
            let seen = delivery.seen.get(word).copied().unwrap_or(0);
            delivered += u64::from((acked & seen).count_ones());
            lost += u64::from((acked & !seen).count_ones());
            if *acked != 0 {
                top = Some(word as i64 * 64 + 63 - i64::from(acked.leading_zeros()));
            }
        }
        if let Some(seq) = top {
            highest.push((*conversation, seq));
        }
        duplicated += delivery.duplicates;
    }
    let stored = verify_stored(&ctx.fixture, &highest).await?;
    println!("-- messages --");
    println!(
        "visitors: {} new ({} only browsing), {} WebSocket resumes, {} long polls answered, \
         {} console reconnects, {} conversations resolved",
        load(&tally.visitors),
        load(&tally.browsers),
        load(&tally.resumes),
        load(&tally.polls),
        load(&tally.console_reconnects),
        load(&tally.resolved),
    );
    let (sent, acked, unacked) = (load(&tally.sent), load(&tally.acked), load(&tally.unacked));
    println!(
        "visitor messages: {sent} sent, {acked} acked, {unacked} never acked, {} refused for a \
         moment and sent again; {delivered} delivered live to the agent, {lost} acked but not delivered to it (lost), {duplicated} \
         delivered twice (duplicated); {} in {} conversations",
        load(&tally.refused),
        if stored.complete {
            "every acked one stored"
        } else {
            "acked ones MISSING from the database"
        },
        highest.len()
    );
    println!(
        "agent replies: {} sent, {} acked, {} received by visitors still there",
        load(&tally.replies_sent),
        load(&tally.replies_acked),
        load(&tally.replies_received),
    );
    if tally.errors.count() > 0 {
        println!("errors: {}", tally.errors.describe());
    }
    if lost > 0 && lags > 0.0 {
        println!(
            "  the {lost} not delivered were missed while the agent's connection was behind its \
             site topic ({lags} lag catch-ups): it follows no conversation, so they are not \
             replayed to it; they are stored"
        );
    }
    let ok = stored.complete
        && unacked == 0
        && (lost == 0 || lags > 0.0)
        && duplicated == 0
        && acked > 0;
    if !ok {
        println!("FAILED: messages were lost, duplicated or never acked");
    }
    Ok(ok)
}

/// Repeats `visit` for one slot until the run stops, noting failures and going on.
async fn slot_loop<F, Fut>(ctx: Arc<Ctx>, mut visit: F)
where
    F: FnMut(Arc<Ctx>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    while !ctx.stopped() {
        if let Err(error) = visit(ctx.clone()).await {
            ctx.tally.errors.note(error);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// One WebSocket visitor after another in this slot.
async fn ws_chatter(ctx: Arc<Ctx>, slot: usize) {
    let mut rng = Rng::new(slot as u64);
    slot_loop(ctx, move |ctx| {
        let lifetime = rng.secs(CHAT_SECS);
        let resume_at = (rng.unit() < 1.0 / 3.0).then(|| lifetime.mul_f64(rng.unit()));
        async move { ws_chat(&ctx, slot, lifetime, resume_at).await }
    })
    .await;
}

/// A visitor's live WebSocket state: what it waits to be acked and how far it has read.
struct WsVisitor {
    /// What it presents when it resumes.
    token: String,
    /// Makes its client ids unique across the run.
    number: u64,
    /// Its one conversation.
    conversation: ConversationId,
    /// Client ids sent and not yet acked (resent after a resume).
    pending: Vec<String>,
    /// Client ids the server refused for now, sent again at the next tick.
    refused: Vec<String>,
    /// The highest seq seen in the conversation, for resuming.
    cursor: i64,
}

impl WsVisitor {
    /// Takes in one frame from the server.
    fn frame(&mut self, tally: &Tally, message: Message) {
        let Message::Text(text) = message else {
            return;
        };
        match serde_json::from_str::<ServerFrame>(text.as_str()) {
            Ok(ServerFrame::Ack { client_id, seq, .. }) => {
                if let Some(at) = self.pending.iter().position(|id| *id == client_id.0) {
                    self.pending.swap_remove(at);
                    tally.acked(self.conversation, seq);
                }
            }
            Ok(ServerFrame::Message(message)) if message.conversation_id == self.conversation => {
                self.cursor = self.cursor.max(message.seq);
                if message.author == Author::Agent {
                    tally.replies_received.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(ServerFrame::Error {
                client_id: Some(client_id),
                retry_after_ms: Some(_),
                ..
            }) if self.pending.contains(&client_id.0) => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                self.refused.push(client_id.0);
            }
            Ok(ServerFrame::Error { code, message, .. }) => tally
                .errors
                .note(format!("visitor got {}: {message}", code.as_str())),
            Ok(_) => {}
            Err(error) => tally.errors.note(format!("unreadable frame: {error}")),
        }
    }
}

async fn open_ws_visitor(ctx: &Ctx, slot: usize) -> Result<Ws> {
    connect(
        ctx.fixture.addr,
        Some(source(40, slot)),
        protocol::transport::WS_VISITOR_PATH,
        Some(crate::client::ORIGIN),
        None,
    )
    .await
}

async fn ws_chat(
    ctx: &Ctx,
    slot: usize,
    lifetime: Duration,
    resume_at: Option<Duration>,
) -> Result<()> {
    let tally = &ctx.tally;
    let visitor_no = ctx.visitor_number();
    let mut ws = open_ws_visitor(ctx, slot).await?;
    let token = visitor_handshake(&mut ws, &ctx.fixture.site_key, None, &[]).await?;
    tally.visitors.fetch_add(1, Ordering::Relaxed);
    let (conversation, cursor) = first_message(&mut ws, &format!("sv{visitor_no}-0")).await?;
    let mut visitor = WsVisitor {
        token,
        number: visitor_no,
        conversation,
        pending: Vec::new(),
        refused: Vec::new(),
        cursor,
    };
    let chatted = chat(ctx, slot, lifetime, resume_at, ws, &mut visitor).await;
    // What the visitor still waits for when it leaves, or when its connection failed.
    tally
        .unacked
        .fetch_add(visitor.pending.len() as u64, Ordering::Relaxed);
    let _ = ctx.resolve.try_send(conversation);
    chatted
}

/// A WebSocket visitor's chat after its first message, until it leaves.
async fn chat(
    ctx: &Ctx,
    slot: usize,
    lifetime: Duration,
    mut resume_at: Option<Duration>,
    mut ws: Ws,
    visitor: &mut WsVisitor,
) -> Result<()> {
    let tally = &ctx.tally;
    let conversation = visitor.conversation;
    let started = Instant::now();
    let mut ticker = tokio::time::interval(ctx.settings.send_period());
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sent = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if ctx.stopped() || started.elapsed() >= lifetime {
                    break;
                }
                if resume_at.is_some_and(|at| started.elapsed() >= at) {
                    resume_at = None;
                    // Gone without a close handshake, as a phone losing its network is.
                    drop(ws);
                    ws = open_ws_visitor(ctx, slot).await?;
                    let cursors = [(conversation, visitor.cursor)];
                    let token = Some(visitor.token.as_str());
                    visitor_handshake(&mut ws, &ctx.fixture.site_key, token, &cursors).await?;
                    tally.resumes.fetch_add(1, Ordering::Relaxed);
                    for id in &visitor.pending {
                        send_text(&mut ws, send_frame(Some(conversation), id, BODY)).await?;
                    }
                    visitor.refused.clear();
                }
                // The server's wait (250 ms) is shorter than a tick: refused sends go again now.
                for id in visitor.refused.drain(..) {
                    send_text(&mut ws, send_frame(Some(conversation), &id, BODY)).await?;
                }
                sent += 1;
                let id = format!("sv{}-{sent}", visitor.number);
                send_text(&mut ws, send_frame(Some(conversation), &id, BODY)).await?;
                visitor.pending.push(id);
                tally.sent.fetch_add(1, Ordering::Relaxed);
            }
            message = ws.next() => match message {
                Some(Ok(message)) => visitor.frame(tally, message),
                Some(Err(error)) => return Err(format!("visitor connection: {error}").into()),
                None => return Err("the server closed a visitor's connection".into()),
            },
        }
    }
    // Leaving: the last messages' acks first.
    let deadline = tokio::time::Instant::now() + LEAVE_WAIT;
    while !visitor.pending.is_empty() {
        for id in visitor.refused.drain(..) {
            send_text(&mut ws, send_frame(Some(conversation), &id, BODY)).await?;
        }
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(message))) => visitor.frame(tally, message),
            _ => break,
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

/// One HTTP-fallback visitor after another in this slot.
async fn http_chatter(ctx: Arc<Ctx>, slot: usize) {
    let mut rng = Rng::new(10_000 + slot as u64);
    let client = match reqwest::Client::builder()
        .local_address(IpAddr::V4(source(41, slot)))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(40))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            ctx.tally.errors.note(format!("HTTP client: {error}"));
            return;
        }
    };
    slot_loop(ctx, move |ctx| {
        let lifetime = rng.secs(CHAT_SECS);
        let client = client.clone();
        async move { http_chat(&ctx, &client, lifetime).await }
    })
    .await;
}

/// The frames of one answer of the HTTP fallback.
async fn frames_of(response: reqwest::Response) -> Result<Vec<ServerFrame>> {
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP fallback answered {status}").into());
    }
    Ok(serde_json::from_slice(&response.bytes().await?)?)
}

/// One message over `POST /http/visitor/send`; the seq it was acked as.
async fn http_send(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    conversation: ConversationId,
    id: &str,
) -> Result<HttpSent> {
    let response = client
        .post(format!(
            "{base}{}",
            protocol::transport::HTTP_VISITOR_SEND_PATH
        ))
        .header("content-type", "application/json")
        .header(protocol::transport::VISITOR_TOKEN_HEADER, token)
        .header("origin", crate::client::ORIGIN)
        .body(format!("[{}]", send_frame(Some(conversation), id, BODY)))
        .send()
        .await?;
    let mut sent = HttpSent::Unanswered;
    for frame in frames_of(response).await? {
        match frame {
            ServerFrame::Ack { client_id, seq, .. } if client_id.0 == id => {
                sent = HttpSent::Acked(seq);
            }
            ServerFrame::Error {
                client_id: Some(client_id),
                retry_after_ms: Some(_),
                ..
            } if client_id.0 == id => sent = HttpSent::Refused,
            _ => {}
        }
    }
    Ok(sent)
}

/// What became of one HTTP send.
enum HttpSent {
    /// Stored, with this seq.
    Acked(i64),
    /// Refused for now with a retryable error: to be sent again.
    Refused,
    /// Answered with neither.
    Unanswered,
}

async fn http_chat(ctx: &Ctx, client: &reqwest::Client, lifetime: Duration) -> Result<()> {
    let tally = &ctx.tally;
    let base = format!("http://{}", ctx.fixture.addr);
    let visitor_no = ctx.visitor_number();
    let (token, conversation) =
        http_visitor(client, &base, &ctx.fixture, visitor_no as usize).await?;
    tally.visitors.fetch_add(1, Ordering::Relaxed);
    let poll = |cursor: i64| {
        let request = client
            .get(format!(
                "{base}{}?cursors={conversation}:{cursor}&wait=25",
                protocol::transport::HTTP_VISITOR_EVENTS_PATH
            ))
            .header(protocol::transport::VISITOR_TOKEN_HEADER, &token)
            .header("origin", crate::client::ORIGIN);
        Box::pin(async move { frames_of(request.send().await?).await })
    };
    let mut cursor = 1;
    let mut waiting = poll(cursor);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(ctx.settings.send_period());
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sent = 0u64;
    // A send the server refused for now, sent again at the next tick with the same id.
    let mut refused: Option<String> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if ctx.stopped() || started.elapsed() >= lifetime {
                    if refused.is_some() {
                        tally.unacked.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                let id = match refused.take() {
                    Some(id) => id,
                    None => {
                        sent += 1;
                        tally.sent.fetch_add(1, Ordering::Relaxed);
                        format!("sh{visitor_no}-{sent}")
                    }
                };
                match http_send(client, &base, &token, conversation, &id).await {
                    Ok(HttpSent::Acked(seq)) => tally.acked(conversation, seq),
                    Ok(HttpSent::Refused) => {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                        refused = Some(id);
                    }
                    Ok(HttpSent::Unanswered) => {
                        tally.unacked.fetch_add(1, Ordering::Relaxed);
                        tally.errors.note("an HTTP send was answered without its ack");
                    }
                    Err(error) => {
                        tally.unacked.fetch_add(1, Ordering::Relaxed);
                        return Err(error);
                    }
                }
            }
            frames = &mut waiting => {
                tally.polls.fetch_add(1, Ordering::Relaxed);
                for frame in frames? {
                    match frame {
                        ServerFrame::Message(message)
                            if message.conversation_id == conversation =>
                        {
                            cursor = cursor.max(message.seq);
                            if message.author == Author::Agent {
                                tally.replies_received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        ServerFrame::Error { code, message, .. } => tally
                            .errors
                            .note(format!("poll got {}: {message}", code.as_str())),
                        _ => {}
                    }
                }
                waiting = poll(cursor);
            }
        }
    }
    let _ = ctx.resolve.try_send(conversation);
    Ok(())
}

/// Visitors who open the widget on a page, stay a little and leave without writing.
async fn browser(ctx: Arc<Ctx>, slot: usize) {
    let mut rng = Rng::new(20_000 + slot as u64);
    slot_loop(ctx, move |ctx| {
        let stay = rng.secs(BROWSE_SECS);
        async move {
            let mut ws = connect(
                ctx.fixture.addr,
                Some(source(42, slot)),
                protocol::transport::WS_VISITOR_PATH,
                Some(crate::client::ORIGIN),
                None,
            )
            .await?;
            visitor_handshake(&mut ws, &ctx.fixture.site_key, None, &[]).await?;
            ctx.tally.visitors.fetch_add(1, Ordering::Relaxed);
            ctx.tally.browsers.fetch_add(1, Ordering::Relaxed);
            let _ =
                tokio::time::timeout(stay, async { while let Some(Ok(_)) = ws.next().await {} })
                    .await;
            let _ = ws.close(None).await;
            Ok(())
        }
    })
    .await;
}

/// A second console that stays a while, then reconnects (a reload, a laptop waking up).
async fn coming_and_going_console(ctx: Arc<Ctx>) {
    let mut rng = Rng::new(30_000);
    slot_loop(ctx, move |ctx| {
        let stay = rng.secs(CONSOLE_SECS);
        async move {
            let mut ws = agent(ctx.fixture.addr, &ctx.fixture.cookies[1], &[]).await?;
            let deadline = tokio::time::Instant::now() + stay;
            while !ctx.stopped() && tokio::time::Instant::now() < deadline {
                let read = tokio::time::timeout(Duration::from_secs(1), ws.next()).await;
                if let Ok(None | Some(Err(_))) = read {
                    return Err("the second console's connection ended".into());
                }
            }
            let _ = ws.close(None).await;
            ctx.tally.console_reconnects.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    })
    .await;
}

/// The agent console that receives every visitor message, replies to some and resolves the
/// conversations of visitors who left. Its connection must last the whole run.
async fn receiving_agent(
    ctx: Arc<Ctx>,
    mut ws: Ws,
    mut resolve: mpsc::Receiver<ConversationId>,
) -> Result<()> {
    let tally = &ctx.tally;
    let mut received = 0u64;
    let mut replies = 0u64;
    loop {
        tokio::select! {
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => return Err(error.into()),
                    None => return Err("closed by the server".into()),
                };
                match serde_json::from_str::<ServerFrame>(text.as_str()) {
                    Ok(ServerFrame::Message(message)) if message.author == Author::Visitor => {
                        tally.seen(message.conversation_id, message.seq);
                        received += 1;
                        if received.is_multiple_of(REPLY_EVERY) {
                            replies += 1;
                            let frame = send_frame(
                                Some(message.conversation_id),
                                &format!("sa-{replies}"),
                                "Yes, it ships today.",
                            );
                            ws.send(Message::Text(frame.into())).await?;
                            tally.replies_sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(ServerFrame::Ack { client_id, .. }) => {
                        if client_id.0.starts_with("sa-") {
                            tally.replies_acked.fetch_add(1, Ordering::Relaxed);
                        } else {
                            tally.resolved.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(ServerFrame::Error { code, message, .. }) => tally
                        .errors
                        .note(format!("agent got {}: {message}", code.as_str())),
                    Ok(_) => {}
                    Err(error) => tally.errors.note(format!("unreadable agent frame: {error}")),
                }
            }
            Some(conversation) = resolve.recv() => {
                let frame = resolve_frame(conversation, &format!("sr-{conversation}"));
                ws.send(Message::Text(frame.into())).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_noisy_series_is_flat_and_a_steady_climb_grows() {
        let flat: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64 / 60.0, 100.0 + if i % 2 == 0 { 3.0 } else { -3.0 }))
            .collect();
        let fit = Fit::of(&flat).expect("fit");
        assert!(fit.slope.abs() < 5.0, "{fit:?}");
        assert!(!fit.grows(5.0), "{fit:?}");
        let climbing: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64 / 60.0, 100.0 + 12.0 * i as f64 / 60.0))
            .collect();
        let fit = Fit::of(&climbing).expect("fit");
        assert!((fit.slope - 12.0).abs() < 1e-9, "{fit:?}");
        assert!(fit.grows(5.0));
        assert_eq!(Fit::of(&climbing[..2]), None, "two points are no trend");
    }

    #[test]
    fn bitsets_tell_delivered_from_lost_and_duplicated() {
        let mut bits = Vec::new();
        assert!(!set_bit(&mut bits, 3));
        assert!(set_bit(&mut bits, 3));
        assert!(!set_bit(&mut bits, 200));
        assert_eq!(bits.len(), 4);
    }

    #[test]
    fn metrics_are_read_by_exact_name() {
        let text = "# TYPE kefu_tokio_alive_tasks gauge\nkefu_tokio_alive_tasks 42\n\
                    kefu_tokio_alive_tasks_extra 7\n";
        assert_eq!(metric(text, "kefu_tokio_alive_tasks"), Some(42.0));
        assert_eq!(metric(text, "kefu_nothing"), None);
    }
}
