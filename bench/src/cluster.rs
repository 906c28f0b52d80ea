//! `kefu-bench cluster`: the multi-node scenario (docs/scaling.md). For 1, 2 and 3 nodes over
//! one fresh PostgreSQL database and a Redis bus of the bench's own: visitors spread over the
//! nodes send messages one after another (each waits for its ack) for a fixed time, and an
//! agent on every node receives them; then they send at a steady 300 msg/s in all. It prints
//! acknowledged messages per second, the p50 and p99 time from a send to its arrival at an
//! agent on another node (on one node: the same node) under both loads, and the
//! CPU used, as cores and as messages per second per core: the nodes, Redis and PostgreSQL
//! (the bench's own clients, on the same 2 cores, are shown apart).

use crate::Result;
use crate::children::{Child, cpu_ticks};
use crate::client::{self, ORIGIN};
use crate::serve::Fixture;
use crate::stats::{Summary, ms};
use protocol::{ConversationId, ServerFrame};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Visitors sending at once, spread evenly over the nodes.
const VISITORS: usize = 60;
/// How long each run sends, before `KEFU_BENCH_SCALE`.
const SECONDS: f64 = 20.0;
/// Messages per second of the steady phase, all visitors together: well below what one node
/// persists, so its latency is the bus's and not a queue's.
const STEADY_RATE: f64 = 300.0;

/// Runs 1, 2 and 3 nodes and prints a line for each.
pub fn main() -> Result<bool> {
    let scale = crate::coordinator::Sizes::from_env()?.scale;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let seconds = (SECONDS * scale).max(3.0);
    println!(
        "cluster: {VISITORS} visitors sending one message after another for {seconds:.0} s, an agent on each node, PostgreSQL + Redis bus (KEFU_BENCH_SCALE={scale})"
    );
    let admin = std::env::var("PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    runtime.block_on(async {
        for nodes in 1..=3 {
            match run(&admin, nodes, Duration::from_secs_f64(seconds)).await {
                Ok(line) => println!("{line}"),
                Err(error) => {
                    println!("cluster: {nodes} node(s) could not be measured: {error}");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    })
}

/// A Redis server of the bench's own, killed when dropped.
struct Redis {
    child: tokio::process::Child,
    port: u16,
}

impl Redis {
    async fn start() -> Result<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Redis { child, port });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err("redis-server did not start".into())
    }

    fn cpu_time(&self) -> Duration {
        self.child
            .id()
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .map_or(Duration::ZERO, |stat| cpu_of(&stat))
    }
}

/// One run with `nodes` nodes; its printed line.
async fn run(admin: &str, nodes: usize, duration: Duration) -> Result<String> {
    let name = format!("kefu_bench_cluster_{}_{nodes}", std::process::id());
    crate::history::admin_execute(admin, &format!("CREATE DATABASE {name}")).await?;
    let mut url = url::Url::parse(admin)?;
    url.set_path(&format!("/{name}"));
    let measured = measure(url.as_str(), nodes, duration).await;
    let dropped = crate::history::admin_execute(
        admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await;
    if let Err(error) = dropped {
        eprintln!("kefu-bench: could not drop {name}: {error}");
    }
    measured
}

async fn measure(database_url: &str, nodes: usize, duration: Duration) -> Result<String> {
    let redis = Redis::start().await?;
    let bus = format!("redis://127.0.0.1:{}", redis.port);
    let dir = tempfile::tempdir()?;
    let mut servers = Vec::new();
    let mut fixtures: Vec<Fixture> = Vec::new();
    // One at a time: the first creates the tables and the bench's site and agents.
    for n in 0..nodes {
        let node_dir = dir.path().join(format!("node{n}"));
        std::fs::create_dir_all(&node_dir)?;
        let node_dir = node_dir.display().to_string();
        let mut child = Child::spawn(
            &format!("kefu node {n}"),
            &["server", &node_dir, database_url, &bus],
            Stdio::inherit(),
        )?;
        fixtures.push(child.recv(Duration::from_secs(60)).await?);
        servers.push(child);
    }
    // An agent on every node; each counts what crossed from the other nodes.
    let stop = Arc::new(AtomicBool::new(false));
    let mut agents = Vec::new();
    for (n, fixture) in fixtures.iter().enumerate() {
        let cookie = &fixture.cookies[n % fixture.cookies.len()];
        let ws = client::agent(fixture.addr, cookie, &[]).await?;
        agents.push(tokio::spawn(receive(ws, n, nodes, stop.clone())));
    }
    let acked = Arc::new(AtomicU64::new(0));
    let mut visitors = Vec::new();
    for v in 0..VISITORS {
        let n = v % nodes;
        let fixture = &fixtures[n];
        let mut ws = client::connect(
            fixture.addr,
            Some(client::sources(1, 8)[v % 8]),
            protocol::transport::WS_VISITOR_PATH,
            Some(ORIGIN),
            None,
        )
        .await?;
        client::visitor_handshake(&mut ws, &fixture.site_key, None, &[]).await?;
        let (conversation, _) = client::first_message(&mut ws, &format!("c{v}-0")).await?;
        visitors.push((ws, conversation, n));
    }
    let cpu_before = Cpu::now(&servers, &redis);
    let started = Instant::now();
    let tasks: Vec<_> = visitors
        .into_iter()
        .enumerate()
        .map(|(v, (ws, conversation, n))| {
            let acked = acked.clone();
            tokio::spawn(async move {
                let state = (ws, conversation, n, 1);
                send_from(state, v, started + duration, None, acked).await
            })
        })
        .collect();
    let mut visitors = Vec::new();
    for task in tasks {
        visitors.push(task.await??);
    }
    let elapsed = started.elapsed();
    let cpu_used = Cpu::now(&servers, &redis).since(&cpu_before);
    // The steady phase, once the first one's messages have arrived.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let steady_from = client::unix_us();
    let steady_until = Instant::now() + duration / 2;
    let every = Duration::from_secs_f64(VISITORS as f64 / STEADY_RATE);
    let tasks: Vec<_> = visitors
        .into_iter()
        .enumerate()
        .map(|(v, (ws, conversation, n, next))| {
            let acked = Arc::new(AtomicU64::new(0));
            tokio::spawn(async move {
                // Spread the visitors' sends over the interval.
                tokio::time::sleep(every.mul_f64(v as f64 / VISITORS as f64)).await;
                let state = (ws, conversation, n, next);
                send_from(state, v, steady_until, Some(every), acked).await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut steady) = (Vec::new(), Vec::new());
    for agent in agents {
        for (stamp, latency) in agent.await?? {
            if stamp < steady_from {
                latencies.push(latency);
            } else {
                steady.push(latency);
            }
        }
    }
    for server in servers {
        server.stop().await;
    }
    drop(redis);
    let acked = acked.load(Ordering::Relaxed) as f64;
    let rate = acked / elapsed.as_secs_f64();
    let cores = |used: Duration| used.as_secs_f64() / elapsed.as_secs_f64();
    let serving = cpu_used.nodes + cpu_used.redis + cpu_used.postgres;
    let summary = Summary::of(latencies).ok_or("no message reached an agent")?;
    let steady = Summary::of(steady).ok_or("no steady message reached an agent")?;
    let crossing = if nodes == 1 {
        "at the agent"
    } else {
        "at an agent on another node"
    };
    Ok(format!(
        "cluster: {nodes} node(s): {rate:.0} msg/s acknowledged, p50 {:.1} ms / p99 {:.1} ms {crossing} ({} arrivals); CPU {:.2} cores = nodes {:.2} + Redis {:.2} + PostgreSQL {:.2} -> {:.0} msg/s per core (bench clients {:.2} cores); at a steady {STEADY_RATE:.0} msg/s: p50 {:.2} ms / p99 {:.2} ms ({} arrivals)",
        ms(summary.p50),
        ms(summary.p99),
        summary.count,
        cores(serving),
        cores(cpu_used.nodes),
        cores(cpu_used.redis),
        cores(cpu_used.postgres),
        rate / cores(serving).max(0.01),
        cores(cpu_used.bench),
        ms(steady.p50),
        ms(steady.p99),
        steady.count,
    ))
}

/// The CPU time a `/proc/<pid>/stat` text reports (ticks of 10 ms).
fn cpu_of(stat: &str) -> Duration {
    cpu_ticks(stat).map_or(Duration::ZERO, |ticks| Duration::from_millis(ticks * 10))
}

/// CPU time used so far, by part.
struct Cpu {
    nodes: Duration,
    redis: Duration,
    /// Every `postgres` process on the machine (the bench's database is the only busy one).
    postgres: Duration,
    /// This process: the visitors and agents.
    bench: Duration,
}

impl Cpu {
    fn now(servers: &[Child], redis: &Redis) -> Cpu {
        let postgres = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                stat.contains("(postgres)").then(|| cpu_of(&stat))
            })
            .sum();
        Cpu {
            nodes: servers.iter().filter_map(|s| s.cpu_time().ok()).sum(),
            redis: redis.cpu_time(),
            postgres,
            bench: std::fs::read_to_string("/proc/self/stat")
                .map_or(Duration::ZERO, |s| cpu_of(&s)),
        }
    }

    fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            nodes: self.nodes.saturating_sub(before.nodes),
            redis: self.redis.saturating_sub(before.redis),
            postgres: self.postgres.saturating_sub(before.postgres),
            bench: self.bench.saturating_sub(before.bench),
        }
    }
}

/// A visitor's connection, conversation, node and next message number.
type Visitor = (client::Ws, ConversationId, usize, usize);

/// A visitor: sends stamped messages until `until`, one after another (each waits for its ack)
/// or one every `every`; returns the visitor for the next phase.
async fn send_from(
    (mut ws, conversation, node, mut i): Visitor,
    v: usize,
    until: Instant,
    every: Option<Duration>,
    acked: Arc<AtomicU64>,
) -> Result<Visitor> {
    let mut ticks = every.map(|every| {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    while Instant::now() < until {
        if let Some(ticks) = ticks.as_mut() {
            ticks.tick().await;
        }
        let body = format!("{} n{node}", client::stamped_body(client::unix_us()));
        client::send_text(
            &mut ws,
            client::send_frame(Some(conversation), &format!("c{v}-{i}"), &body),
        )
        .await?;
        client::until(&mut ws, |frame| {
            matches!(frame, ServerFrame::Ack { .. }).then_some(())
        })
        .await?;
        acked.fetch_add(1, Ordering::Relaxed);
        i += 1;
    }
    Ok((ws, conversation, node, i))
}

/// The agent on node `node`: the send stamp and latency (µs) of every message that came from
/// another node (with one node, of every message), until `stop`.
async fn receive(
    mut ws: client::Ws,
    node: usize,
    nodes: usize,
    stop: Arc<AtomicBool>,
) -> Result<Vec<(u64, u64)>> {
    use futures_util::StreamExt;
    let own = format!(" n{node}\"");
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(next) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await else {
            continue;
        };
        let Some(message) = next else { break };
        let Message::Text(text) = message? else {
            continue;
        };
        if client::frame_type(text.as_str()) != Some("message")
            || (nodes > 1 && text.as_str().contains(&own))
        {
            continue;
        }
        if let Some(stamp) = client::stamp_of(text.as_str()) {
            latencies.push((stamp, client::unix_us().saturating_sub(stamp)));
        }
    }
    Ok(latencies)
}
