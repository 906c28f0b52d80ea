//! Several nodes: three `kefu serve` processes on one PostgreSQL database, sharing a Redis bus,
//! behind nginx (Debian's package), all started by the test as real processes. The test runs
//! its own Redis server so it can restart it.
//!
//! - Messages, presence and typing cross nodes: a visitor on node A, an agent on node C.
//! - `kill -9` one node under a steady load spread over the three through nginx: its clients
//!   reconnect through nginx within 3 s, and every conversation ends with exactly its messages,
//!   in order, at the agent.
//! - Redis restarted mid-run: no acknowledged message is lost and live delivery resumes.
//! - Redis partitioned from one node for 10 s (a black hole in the test's proxy between them):
//!   no acknowledged message is lost, and the agent on another node gets them all and live
//!   messages again on the connection it had, without reconnecting.
//! - SIGTERM drains a node: its clients are told to reconnect, it exits, and the other nodes
//!   keep a client who moved online and take one who did not offline.
//!
//! Each prints its counts (`make test` runs it with `--nocapture`).

mod common;

use common::client::{
    Delivered, Ws, ack_of, agent_hello, message_of, send_frame, visitor_hello, welcome_of,
};
use protocol::{Author, ConversationId, ServerFrame};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const ORIGIN: &str = "https://shop.example";

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("addr").port()
}

/// A child process killed (SIGKILL) when dropped.
struct Process(Child);

impl Process {
    /// Asks for a graceful stop, as `systemctl stop` does.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM");
    }

    /// How long the process took to exit, if it did within `wait`.
    fn exited_within(&mut self, wait: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < wait {
            if self.0.try_wait().expect("try_wait").is_some() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn kill_9(&mut self) {
        // Child::kill sends SIGKILL on Unix: no drain, no goodbye on the bus.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A Redis server of the test's own, so it can be restarted.
struct Redis {
    port: u16,
    process: Process,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (Debian's redis-server package)");
        wait_for_port(port);
        Redis {
            port,
            process: Process(child),
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on port {port}");
}

/// nginx in front of the nodes: round-robin, no sticky sessions, WebSocket upgrades, the
/// configuration docs/scaling.md shows. One process (`master_process off`), so killing it
/// leaves no worker behind.
struct Nginx {
    port: u16,
    _process: Process,
}

impl Nginx {
    fn start(dir: &Path, upstreams: &[u16]) -> Nginx {
        let port = free_port();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n"))
            .collect();
        let dir = dir.display();
        let config = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream kefu {{
{servers}  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 12m;
    location / {{
      proxy_pass http://kefu;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_connect_timeout 2s;
      proxy_read_timeout 60s;
      proxy_buffering off;
      proxy_next_upstream error timeout http_502 http_503;
    }}
  }}
}}
"#
        );
        let file = format!("{dir}/nginx.conf");
        std::fs::write(&file, config).expect("write nginx.conf");
        let child = common::nginx(&file, &dir.to_string())
            .spawn()
            .expect("start nginx (Debian's nginx package; scripts/tools.sh --test installs it)");
        wait_for_port(port);
        Nginx {
            port,
            _process: Process(child),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A `kefu serve` node.
struct Node {
    port: u16,
    process: Process,
}

impl Node {
    async fn start(database_url: &str, bus_url: &str) -> Node {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_kefu"))
            .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url, "--bus-url", bus_url])
            .args(["--messages-per-minute", "100000"])
            .args(["--max-connections-per-ip", "100000", "--log-level", "warn"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("KEFU_DEMO_PASSWORD", "cluster-test")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kefu");
        let base = format!("http://127.0.0.1:{port}");
        common::wait_ready(&base).await;
        Node {
            port,
            process: Process(child),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Three nodes over a fresh PostgreSQL database and the test's Redis, plus a site and an agent.
struct Cluster {
    nodes: Vec<Node>,
    redis: Redis,
    store: Arc<dyn store::Store>,
    database: common::TestDatabase,
    key: String,
    cookie: String,
}

impl Cluster {
    async fn start() -> Cluster {
        Cluster::start_on(free_port(), |_, url| url.to_string()).await
    }

    /// Three nodes over the test's Redis on `redis_port`, node `n` reaching it at
    /// `bus_url(n, its URL)`: through a proxy, say.
    async fn start_on(redis_port: u16, bus_url: impl Fn(usize, &str) -> String) -> Cluster {
        let database = common::TestDatabase::create(&common::pg_url()).await;
        let redis = Redis::start(redis_port);
        // One at a time: the first creates the tables and the demo accounts.
        let mut nodes = Vec::new();
        for n in 0..3 {
            nodes.push(Node::start(&database.url, &bus_url(n, &redis.url())).await);
        }
        let store = store::connect(&store::DatabaseUrl::parse(&database.url).expect("url"))
            .await
            .expect("store");
        let (site_id, key) = common::site(store.as_ref(), "shop", &[ORIGIN]).await;
        let (_, cookie) =
            common::agent_cookie(store.as_ref(), "ann@shop.example", &[site_id]).await;
        Cluster {
            nodes,
            redis,
            store,
            database,
            key,
            cookie,
        }
    }

    async fn finish(self) {
        drop(self.nodes);
        self.database.drop_now().await;
    }
}

/// Whether the node at `base` offers chat to the site's visitors (an agent online anywhere)
/// within 2 s: rosters cross the bus within a fraction of that.
async fn offers_chat(base: &str, key: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let info: serde_json::Value = reqwest::Client::new()
            .get(format!("{base}/http/visitor/site?key={key}"))
            .header("origin", ORIGIN)
            .send()
            .await
            .expect("site")
            .json()
            .await
            .unwrap_or_default();
        if info["online"] == serde_json::Value::Bool(true) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Reads frames until `pick` matches one, for at most `wait`.
async fn within<T>(
    ws: &mut Ws,
    wait: Duration,
    mut pick: impl FnMut(&ServerFrame) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let frame = ws.try_next(left).await?;
        if let Some(found) = pick(&frame) {
            return Some(found);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_messages_presence_and_typing_cross_nodes() {
    let mut cluster = Cluster::start().await;
    let (a, c) = (cluster.nodes[0].base(), cluster.nodes[2].base());
    let wait = Duration::from_secs(5);

    // The agent is on node C; the visitor, on node A, learns an agent is available.
    let mut agent = Ws::connect(&c, "/ws/agent", None, Some(&cluster.cookie)).await;
    agent.send_json(agent_hello(&[])).await;
    within(&mut agent, wait, |f| {
        matches!(f, ServerFrame::Welcome(_)).then_some(())
    })
    .await
    .expect("agent welcome");
    let mut visitor = Ws::connect(&a, "/ws/visitor", Some(ORIGIN), None).await;
    visitor
        .send_json(visitor_hello(&cluster.key, None, &[]))
        .await;
    let welcome = within(&mut visitor, wait, |f| match f {
        ServerFrame::Welcome(w) => Some(w.clone()),
        _ => None,
    })
    .await
    .expect("visitor welcome");
    let visitor_id = welcome.visitor_id.expect("visitor id").0;

    // Presence: node C's agent sees node A's visitor come online.
    within(&mut agent, wait, |f| match f {
        ServerFrame::VisitorPresence {
            visitor_id: v,
            online: true,
            ..
        } if v.0 == visitor_id => Some(()),
        _ => None,
    })
    .await
    .expect("the agent on node C sees the visitor on node A online");
    // Availability crossed too: the agent on C makes the site available to visitors on A.
    assert!(
        offers_chat(&a, &cluster.key).await,
        "node A knows node C's agent is online"
    );

    // A message from A reaches C.
    visitor
        .send_json(send_frame(None, "x-1", "hello from node A"))
        .await;
    let (_, conversation, _) = visitor.until(ack_of).await;
    let body = within(&mut agent, wait, |f| {
        message_of(f).filter(|m| m.0 == conversation).map(|m| m.2)
    })
    .await
    .expect("the agent on node C gets the visitor's message");
    assert_eq!(body, "hello from node A");

    // Typing crosses both ways.
    types(&mut visitor, &mut agent, conversation, Author::Visitor).await;
    types(&mut agent, &mut visitor, conversation, Author::Agent).await;

    // The reply from C reaches A.
    agent
        .send_json(send_frame(Some(conversation), "y-1", "hello from node C"))
        .await;
    let body = within(&mut visitor, wait, |f| {
        message_of(f).filter(|m| m.0 == conversation).map(|m| m.2)
    })
    .await
    .expect("the visitor on node A gets the agent's reply");
    assert_eq!(body, "hello from node C");

    // The visitor leaves node A: node C's agent sees them go (after the navigation grace).
    visitor.drop_connection();
    within(&mut agent, Duration::from_secs(10), |f| match f {
        ServerFrame::VisitorPresence {
            visitor_id: v,
            online: false,
            ..
        } if v.0 == visitor_id => Some(()),
        _ => None,
    })
    .await
    .expect("the agent on node C sees the visitor leave node A");

    // A node that dies takes its visitors offline elsewhere within a bounded time: its roster
    // stops being refreshed and expires.
    let b = cluster.nodes[1].base();
    let mut stranded = Ws::connect(&b, "/ws/visitor", Some(ORIGIN), None).await;
    stranded
        .send_json(visitor_hello(&cluster.key, None, &[]))
        .await;
    let (_, stranded_id) = stranded.until(welcome_of).await;
    let is_stranded = |online: bool| {
        move |f: &ServerFrame| match f {
            ServerFrame::VisitorPresence {
                visitor_id: v,
                online: o,
                ..
            } if *v == stranded_id && *o == online => Some(()),
            _ => None,
        }
    };
    within(&mut agent, wait, is_stranded(true))
        .await
        .expect("the agent on node C sees the visitor on node B");
    cluster.nodes[1].process.kill_9();
    let killed = Instant::now();
    let bound = server::realtime::nodes::PRESENCE_TTL
        + server::realtime::nodes::HEARTBEAT
        + Duration::from_secs(1);
    within(&mut agent, bound, is_stranded(false))
        .await
        .expect("the dead node's visitor goes offline on node C");
    println!(
        "cluster: a message, typing and presence crossed from node A to node C and back; node B's visitor went offline on node C {} ms after node B was killed",
        killed.elapsed().as_millis()
    );
    cluster.finish().await;
}

/// `from` starts typing in `conversation`; `to`, on another node, is told.
async fn types(from: &mut Ws, to: &mut Ws, conversation: ConversationId, author: Author) {
    from.send_json(
        serde_json::json!({"type": "typing", "conversation_id": conversation, "typing": true}),
    )
    .await;
    within(to, Duration::from_secs(5), |f| match f {
        ServerFrame::Typing { author: who, .. } if *who == author => Some(()),
        _ => None,
    })
    .await
    .unwrap_or_else(|| panic!("{author:?} typing crossed nodes"));
}

/// A visitor of the load: connects through `base` and opens a conversation.
async fn open_conversation(base: &str, key: &str, n: usize) -> (String, ConversationId) {
    let mut ws = Ws::connect(base, "/ws/visitor", Some(ORIGIN), None).await;
    ws.send_json(visitor_hello(key, None, &[])).await;
    let (token, _) = ws.until(welcome_of).await;
    ws.send_json(send_frame(None, &format!("load-{n}-0"), "m0"))
        .await;
    let (_, conversation, seq) = ws.until(ack_of).await;
    assert_eq!(seq, 1);
    (token, conversation)
}

/// A visitor of the load: sends messages 1.. `total` one by one through `base`, each until
/// acked, reconnecting (and resending with the same client id) whenever its connection dies.
/// Returns the acks by message number and the longest time it spent without a connection.
async fn steady_visitor(
    base: String,
    key: String,
    n: usize,
    (token, conversation): (String, ConversationId),
    total: usize,
    pace: Duration,
    progress: Arc<AtomicUsize>,
) -> (BTreeMap<usize, i64>, Duration) {
    let mut acked = BTreeMap::from([(0, 1)]);
    let mut longest_outage = Duration::ZERO;
    let mut lost_at: Option<Instant> = None;
    let mut i = 1;
    while i < total {
        let Some(mut ws) = Ws::try_connect(&base, "/ws/visitor", Some(ORIGIN), None).await else {
            lost_at.get_or_insert_with(Instant::now);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        ws.send_json(visitor_hello(&key, Some(&token), &[])).await;
        if within(&mut ws, Duration::from_secs(2), welcome_of)
            .await
            .is_none()
        {
            lost_at.get_or_insert_with(Instant::now);
            continue;
        }
        if let Some(since) = lost_at.take() {
            longest_outage = longest_outage.max(since.elapsed());
        }
        while i < total {
            let client_id = format!("load-{n}-{i}");
            ws.send_json(send_frame(Some(conversation), &client_id, &format!("m{i}")))
                .await;
            let ack = within(&mut ws, Duration::from_secs(2), |f| {
                ack_of(f).filter(|a| a.0 == client_id)
            })
            .await;
            let Some((_, _, seq)) = ack else {
                lost_at = Some(Instant::now());
                break;
            };
            acked.insert(i, seq);
            progress.fetch_add(1, Ordering::Relaxed);
            i += 1;
            tokio::time::sleep(pace).await;
        }
    }
    (acked, longest_outage)
}

/// What the agent saw, and how its connections went.
#[derive(Default)]
struct Seen {
    /// Per conversation, the seqs in arrival order.
    delivered: Delivered,
    /// The longest time the agent spent without a connection.
    longest_outage: Duration,
    /// Times the agent connected.
    connections: usize,
}

impl Seen {
    fn has_all(&self, conversations: &[ConversationId], total: usize) -> bool {
        conversations
            .iter()
            .all(|c| self.delivered.cursor(*c) >= total as i64)
    }
}

/// The agent: follows `conversations` through `base` until each has `total` messages,
/// reconnecting with its cursors whenever the connection dies.
async fn steady_agent(
    base: String,
    cookie: String,
    conversations: Vec<ConversationId>,
    total: usize,
    seen: Arc<Mutex<Seen>>,
) {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut lost_at: Option<Instant> = None;
    while !seen.lock().await.has_all(&conversations, total) {
        assert!(
            Instant::now() < deadline,
            "the agent did not get every message in time"
        );
        let Some(mut ws) = Ws::try_connect(&base, "/ws/agent", None, Some(&cookie)).await else {
            lost_at.get_or_insert_with(Instant::now);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let cursors: Vec<(ConversationId, i64)> = {
            let seen = seen.lock().await;
            conversations
                .iter()
                .map(|c| (*c, seen.delivered.cursor(*c)))
                .collect()
        };
        ws.send_json(agent_hello(&cursors)).await;
        if within(&mut ws, Duration::from_secs(2), |f| {
            matches!(f, ServerFrame::Welcome(_)).then_some(())
        })
        .await
        .is_none()
        {
            lost_at.get_or_insert_with(Instant::now);
            continue;
        }
        {
            let mut seen = seen.lock().await;
            seen.connections += 1;
            if let Some(since) = lost_at.take() {
                seen.longest_outage = seen.longest_outage.max(since.elapsed());
            }
        }
        // Waits long enough for a node to be declared dead by the socket, not by the clock.
        while let Some(frame) = ws.try_next(Duration::from_secs(20)).await {
            if let ServerFrame::Message(m) = &frame
                && conversations.contains(&m.conversation_id)
            {
                let mut seen = seen.lock().await;
                seen.delivered.record(m.conversation_id, m.seq);
                if seen.has_all(&conversations, total) {
                    return;
                }
            }
        }
        lost_at = Some(Instant::now());
    }
}

/// Per-conversation counts: messages the store holds for each conversation against the acks
/// its visitor got and the seqs the agent saw.
struct Tally {
    acked: usize,
    lost: usize,
    duplicated: usize,
}

async fn tally(
    store: &dyn store::Store,
    runs: &[(usize, ConversationId, BTreeMap<usize, i64>)],
    seen: &Seen,
    total: usize,
) -> Tally {
    let mut tally = Tally {
        acked: 0,
        lost: 0,
        duplicated: seen.delivered.duplicates,
    };
    for (n, conversation, acks) in runs {
        let stored = store
            .messages_after(*conversation, 0, 10_000)
            .await
            .expect("stored");
        let by_client: HashMap<&str, i64> = stored
            .iter()
            .map(|m| (m.client_id.0.as_str(), m.seq))
            .collect();
        tally.duplicated += stored.len() - by_client.len();
        tally.acked += acks.len();
        for (i, seq) in acks {
            if by_client.get(format!("load-{n}-{i}").as_str()) != Some(seq) {
                tally.lost += 1;
            }
        }
        let expected: Vec<i64> = (1..=total as i64).collect();
        let got = seen
            .delivered
            .seen
            .get(conversation)
            .cloned()
            .unwrap_or_default();
        if got != expected {
            tally.lost += expected.iter().filter(|s| !got.contains(s)).count();
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_kill_9_a_node_under_load_loses_and_duplicates_nothing() {
    const VISITORS: usize = 24;
    const PER_VISITOR: usize = 60;
    let mut cluster = Cluster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let nginx = Nginx::start(dir.path(), &ports);
    let base = nginx.base();

    // Conversations opened through nginx land on all three nodes (round-robin).
    let mut firsts = Vec::new();
    for n in 0..VISITORS {
        firsts.push(open_conversation(&base, &cluster.key, n).await);
    }
    let conversations: Vec<ConversationId> = firsts.iter().map(|f| f.1).collect();
    // Three connections of the agent, one after the other: round-robin puts one on each node,
    // so one of them is on the node that dies.
    let mut agents = Vec::new();
    for _ in 0..3 {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let task = tokio::spawn(steady_agent(
            base.clone(),
            cluster.cookie.clone(),
            conversations.clone(),
            PER_VISITOR,
            seen.clone(),
        ));
        while seen.lock().await.connections == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        agents.push((seen, task));
    }
    let progress = Arc::new(AtomicUsize::new(0));
    let visitors: Vec<_> = firsts
        .into_iter()
        .enumerate()
        .map(|(n, first)| {
            tokio::spawn(steady_visitor(
                base.clone(),
                cluster.key.clone(),
                n,
                first,
                PER_VISITOR,
                Duration::from_millis(20),
                progress.clone(),
            ))
        })
        .collect();
    // Kill node B once a third of the load is acknowledged: mid-run, whatever the machine.
    while progress.load(Ordering::Relaxed) < VISITORS * PER_VISITOR / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.nodes[1].process.kill_9();
    let acked_at_kill = progress.load(Ordering::Relaxed);

    let mut runs = Vec::new();
    let mut longest_outage = Duration::ZERO;
    for ((n, visitor), conversation) in visitors.into_iter().enumerate().zip(&conversations) {
        let (acks, outage) = tokio::time::timeout(Duration::from_secs(240), visitor)
            .await
            .expect("visitor finished")
            .expect("visitor task");
        longest_outage = longest_outage.max(outage);
        runs.push((n, *conversation, acks));
    }
    let (mut lost, mut duplicated, mut out_of_order, mut connections, mut acked) = (0, 0, 0, 0, 0);
    for (seen, task) in agents {
        tokio::time::timeout(Duration::from_secs(240), task)
            .await
            .expect("agent finished")
            .expect("agent task");
        let seen = seen.lock().await;
        let tally = tally(cluster.store.as_ref(), &runs, &seen, PER_VISITOR).await;
        longest_outage = longest_outage.max(seen.longest_outage);
        (lost, duplicated, acked) = (
            lost + tally.lost,
            duplicated + tally.duplicated,
            tally.acked,
        );
        out_of_order += seen.delivered.out_of_order;
        connections += seen.connections;
    }
    println!(
        "cluster kill -9: {VISITORS} conversations x {PER_VISITOR} messages over 3 nodes behind nginx, 3 agent connections, node B killed after {acked_at_kill} acks: acked {acked}, lost {lost}, duplicated {duplicated}, out of order {out_of_order}, longest reconnect {} ms, agent connections {connections}",
        longest_outage.as_millis(),
    );
    assert_eq!(acked, VISITORS * PER_VISITOR);
    assert!(acked_at_kill < acked, "the kill happened mid-run");
    assert!(
        connections == 4,
        "the agent connection on node B reconnected once, the others never ({connections} connections)"
    );
    assert_eq!(lost, 0, "lost");
    assert_eq!(duplicated, 0, "duplicated");
    assert_eq!(out_of_order, 0, "out of order");
    assert!(
        longest_outage <= Duration::from_secs(3),
        "clients reconnected through nginx within 3 s (longest {longest_outage:?})"
    );
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_a_redis_restart_loses_no_acknowledged_message_and_live_delivery_resumes() {
    const VISITORS: usize = 8;
    const PER_VISITOR: usize = 60;
    let mut cluster = Cluster::start().await;
    // Visitors on nodes A and B, the agent on node C: every message crosses the bus.
    let bases = [cluster.nodes[0].base(), cluster.nodes[1].base()];
    let mut firsts = Vec::new();
    for n in 0..VISITORS {
        firsts.push(open_conversation(&bases[n % 2], &cluster.key, n).await);
    }
    let conversations: Vec<ConversationId> = firsts.iter().map(|f| f.1).collect();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let agent = tokio::spawn(steady_agent(
        cluster.nodes[2].base(),
        cluster.cookie.clone(),
        conversations.clone(),
        PER_VISITOR,
        seen.clone(),
    ));
    let progress = Arc::new(AtomicUsize::new(0));
    let visitors: Vec<_> = firsts
        .into_iter()
        .enumerate()
        .map(|(n, first)| {
            tokio::spawn(steady_visitor(
                bases[n % 2].clone(),
                cluster.key.clone(),
                n,
                first,
                PER_VISITOR,
                Duration::from_millis(30),
                progress.clone(),
            ))
        })
        .collect();
    while progress.load(Ordering::Relaxed) < VISITORS * PER_VISITOR / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Redis goes away. The nodes keep acknowledging; the visitors finish while it is down,
    // so nothing sent after the restart can fill the agent's gaps: only the catch-up from the
    // store that the restart sets off can.
    let port = cluster.redis.port;
    cluster.redis.process.kill_9();
    let acked_at_kill = progress.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while progress.load(Ordering::Relaxed) < VISITORS * (PER_VISITOR - 1) {
        assert!(Instant::now() < deadline, "the nodes kept acknowledging");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acked_while_down = progress.load(Ordering::Relaxed) - acked_at_kill;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !seen.lock().await.has_all(&conversations, PER_VISITOR),
        "without the bus the agent on node C cannot have everything yet"
    );
    // It comes back empty (it keeps nothing on disk).
    cluster.redis = Redis::start(port);

    let mut runs = Vec::new();
    for ((n, visitor), conversation) in visitors.into_iter().enumerate().zip(&conversations) {
        let (acks, _) = tokio::time::timeout(Duration::from_secs(240), visitor)
            .await
            .expect("visitor finished")
            .expect("visitor task");
        runs.push((n, *conversation, acks));
    }
    tokio::time::timeout(Duration::from_secs(240), agent)
        .await
        .expect("agent finished")
        .expect("agent task");
    let tally = {
        let seen = seen.lock().await;
        tally(cluster.store.as_ref(), &runs, &seen, PER_VISITOR).await
    };

    // Live delivery resumed: with one agent connection open on node C, a new message from
    // node A arrives without a reconnect.
    let mut agent = Ws::connect(
        &cluster.nodes[2].base(),
        "/ws/agent",
        None,
        Some(&cluster.cookie),
    )
    .await;
    agent.send_json(agent_hello(&[])).await;
    agent
        .until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;
    let mut visitor = Ws::connect(&bases[0], "/ws/visitor", Some(ORIGIN), None).await;
    visitor
        .send_json(visitor_hello(&cluster.key, None, &[]))
        .await;
    visitor.until(welcome_of).await;
    let sent = Instant::now();
    visitor
        .send_json(send_frame(None, "after-restart", "still there?"))
        .await;
    let (_, conversation, _) = visitor.until(ack_of).await;
    let live = within(&mut agent, Duration::from_secs(5), |f| {
        message_of(f).filter(|m| m.0 == conversation).map(|m| m.2)
    })
    .await;
    let seen = seen.lock().await;
    println!(
        "cluster Redis restart: {VISITORS} conversations x {PER_VISITOR} messages from nodes A and B to an agent on node C, Redis killed after {acked_at_kill} acks ({acked_while_down} more acked while it was down): acked {}, lost {}, duplicated {}, out of order {}; a message after the restart arrived live in {} ms; the agent connected {} time(s)",
        tally.acked,
        tally.lost,
        tally.duplicated,
        seen.delivered.out_of_order,
        sent.elapsed().as_millis(),
        seen.connections
    );
    assert_eq!(tally.acked, VISITORS * PER_VISITOR);
    assert_eq!(tally.lost, 0, "lost");
    assert_eq!(tally.duplicated, 0, "duplicated");
    assert_eq!(seen.delivered.out_of_order, 0, "out of order");
    assert_eq!(
        seen.connections, 1,
        "the agent caught up on its open connection, without reconnecting"
    );
    assert_eq!(
        live.as_deref(),
        Some("still there?"),
        "live delivery across nodes resumed after the restart"
    );
    drop(seen);
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_redis_partitioned_from_one_node_for_10_s_loses_nothing_and_live_delivery_resumes()
{
    const VISITORS: usize = 8;
    const PER_VISITOR: usize = 60;
    const PARTITION: Duration = Duration::from_secs(10);
    let redis_port = free_port();
    let proxy = common::proxy::Proxy::start(([127, 0, 0, 1], redis_port).into()).await;
    let proxied = format!("redis://{}", proxy.addr);
    // Node A reaches Redis through the proxy, nodes B and C directly.
    let cluster = Cluster::start_on(redis_port, |n, url| {
        if n == 0 {
            proxied.clone()
        } else {
            url.to_string()
        }
    })
    .await;
    // Visitors on node A, the agent on node C: every message crosses the bus.
    let a = cluster.nodes[0].base();
    let c = cluster.nodes[2].base();
    let mut firsts = Vec::new();
    for n in 0..VISITORS {
        firsts.push(open_conversation(&a, &cluster.key, n).await);
    }
    let conversations: Vec<ConversationId> = firsts.iter().map(|f| f.1).collect();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let agent = tokio::spawn(steady_agent(
        c.clone(),
        cluster.cookie.clone(),
        conversations.clone(),
        PER_VISITOR,
        seen.clone(),
    ));
    // A second console on node C, open through it all, for the live check at the end.
    let mut watcher = Ws::connect(&c, "/ws/agent", None, Some(&cluster.cookie)).await;
    watcher.send_json(agent_hello(&[])).await;
    watcher
        .until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;
    let progress = Arc::new(AtomicUsize::new(0));
    let visitors: Vec<_> = firsts
        .into_iter()
        .enumerate()
        .map(|(n, first)| {
            tokio::spawn(steady_visitor(
                a.clone(),
                cluster.key.clone(),
                n,
                first,
                PER_VISITOR,
                Duration::from_millis(30),
                progress.clone(),
            ))
        })
        .collect();
    while progress.load(Ordering::Relaxed) < VISITORS * PER_VISITOR / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The partition: node A's link to Redis stays open but carries nothing.
    proxy.blackhole();
    let partitioned = Instant::now();
    let acked_at_partition = progress.load(Ordering::Relaxed);
    let mut runs = Vec::new();
    for ((n, visitor), conversation) in visitors.into_iter().enumerate().zip(&conversations) {
        let (acks, _) = tokio::time::timeout(Duration::from_secs(240), visitor)
            .await
            .expect("visitor finished")
            .expect("visitor task");
        runs.push((n, *conversation, acks));
    }
    // The visitors finished while node A was cut off: it kept acknowledging its own clients.
    let acked_in_partition = progress.load(Ordering::Relaxed) - acked_at_partition;
    assert!(
        acked_in_partition > 0,
        "node A acknowledged during the partition"
    );
    assert!(
        !seen.lock().await.has_all(&conversations, PER_VISITOR),
        "without the bus the agent on node C cannot have everything yet"
    );
    // Node C may catch its agent up from the database before the partition heals (node A's
    // roster expiring says it may have missed something): note when.
    let mut caught_up = None;
    while partitioned.elapsed() < PARTITION {
        if caught_up.is_none() && agent.is_finished() {
            caught_up = Some(partitioned.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.restore();
    let partition = partitioned.elapsed();
    tokio::time::timeout(Duration::from_secs(240), agent)
        .await
        .expect("agent finished")
        .expect("agent task");
    let caught_up = caught_up.unwrap_or_else(|| partitioned.elapsed());
    let tally = {
        let seen = seen.lock().await;
        tally(cluster.store.as_ref(), &runs, &seen, PER_VISITOR).await
    };

    // Live delivery from node A to node C resumed, on the console that was open all along.
    let mut visitor = Ws::connect(&a, "/ws/visitor", Some(ORIGIN), None).await;
    visitor
        .send_json(visitor_hello(&cluster.key, None, &[]))
        .await;
    visitor.until(welcome_of).await;
    let sent = Instant::now();
    visitor
        .send_json(send_frame(None, "after-partition", "still there?"))
        .await;
    let (_, conversation, _) = visitor.until(ack_of).await;
    let live = within(&mut watcher, Duration::from_secs(10), |f| {
        message_of(f).filter(|m| m.0 == conversation).map(|m| m.2)
    })
    .await;
    let seen = seen.lock().await;
    println!(
        "cluster Redis partition: {VISITORS} conversations x {PER_VISITOR} messages from node A to an agent on node C, node A cut off from Redis (black hole) for {} ms after {acked_at_partition} acks ({acked_in_partition} more acked during it): acked {}, lost {}, duplicated {}, out of order {}; the agent on node C had everything {} ms after the partition began, connected {} time(s); a new message arrived live in {} ms; node A's connections to Redis {}",
        partition.as_millis(),
        tally.acked,
        tally.lost,
        tally.duplicated,
        seen.delivered.out_of_order,
        caught_up.as_millis(),
        seen.connections,
        sent.elapsed().as_millis(),
        proxy.accepted(),
    );
    assert_eq!(tally.acked, VISITORS * PER_VISITOR);
    assert_eq!(tally.lost, 0, "lost");
    assert_eq!(tally.duplicated, 0, "duplicated");
    assert_eq!(seen.delivered.out_of_order, 0, "out of order");
    assert_eq!(
        seen.connections, 1,
        "the agent caught up on its open connection, without reconnecting"
    );
    assert_eq!(
        live.as_deref(),
        Some("still there?"),
        "live delivery from node A resumed after the partition"
    );
    drop(seen);
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_sigterm_drains_a_node_and_its_clients_move() {
    let mut cluster = Cluster::start().await;
    let (a, b, c) = (
        cluster.nodes[0].base(),
        cluster.nodes[1].base(),
        cluster.nodes[2].base(),
    );
    let wait = Duration::from_secs(5);
    let mut agent = Ws::connect(&c, "/ws/agent", None, Some(&cluster.cookie)).await;
    agent.send_json(agent_hello(&[])).await;
    agent
        .until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;
    // Two visitors on node B: one moves to node A when told to, the other just goes away.
    let mut visitors = Vec::new();
    for _ in 0..2 {
        let mut ws = Ws::connect(&b, "/ws/visitor", Some(ORIGIN), None).await;
        ws.send_json(visitor_hello(&cluster.key, None, &[])).await;
        let (token, id) = ws.until(welcome_of).await;
        within(&mut agent, wait, |f| match f {
            ServerFrame::VisitorPresence {
                visitor_id,
                online: true,
                ..
            } if *visitor_id == id => Some(()),
            _ => None,
        })
        .await
        .expect("the agent on C sees the visitor on B");
        visitors.push((ws, token, id));
    }
    let (mut gone, _, gone_id) = visitors.pop().expect("visitor");
    let (mut moving, moving_token, moving_id) = visitors.pop().expect("visitor");

    cluster.nodes[1].process.terminate();
    let reconnect = |f: &ServerFrame| {
        matches!(f, ServerFrame::Reconnect { within_ms } if *within_ms > 0).then_some(())
    };
    within(&mut moving, wait, reconnect)
        .await
        .expect("node B tells its clients to reconnect");
    within(&mut gone, wait, reconnect)
        .await
        .expect("node B tells every client");
    let mut moved = Ws::connect(&a, "/ws/visitor", Some(ORIGIN), None).await;
    moved
        .send_json(visitor_hello(&cluster.key, Some(&moving_token), &[]))
        .await;
    moved.until(welcome_of).await;
    let exited = cluster.nodes[1]
        .process
        .exited_within(server::DRAIN_TIMEOUT + Duration::from_secs(5))
        .expect("node B exits within the drain timeout");
    // Node B said it left: its roster counts while its clients move (the navigation grace),
    // then the visitor who went away is offline on node C; the one who moved never was.
    let exit_seen = Instant::now();
    let mut offline = Vec::new();
    let deadline = exit_seen + Duration::from_secs(7);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match agent.try_next(left).await {
            Some(ServerFrame::VisitorPresence {
                visitor_id,
                online: false,
                ..
            }) => offline.push((visitor_id, exit_seen.elapsed())),
            Some(_) => {}
            None => break,
        }
    }
    println!(
        "cluster SIGTERM: node B exited {} ms after SIGTERM; offline on node C after its exit: {offline:?} (gone {gone_id}, moved {moving_id})",
        exited.as_millis()
    );
    assert!(
        offline
            .iter()
            .any(|(id, after)| *id == gone_id && *after < server::realtime::nodes::PRESENCE_TTL),
        "the visitor who left is offline on node C within {:?} of node B's exit: {offline:?}",
        server::realtime::nodes::PRESENCE_TTL
    );
    assert!(
        !offline.iter().any(|(id, _)| *id == moving_id),
        "the visitor who moved to node A stays online: {offline:?}"
    );
    drop(gone);
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_assignment_limits_hold_across_nodes() {
    let cluster = Cluster::start().await;
    let bases: Vec<String> = cluster.nodes.iter().map(Node::base).collect();
    let site = cluster
        .store
        .site_by_key(&cluster.key)
        .await
        .expect("read")
        .expect("site")
        .id;
    // Two agents allowed 2 chats each, on nodes A and C.
    let mut consoles = Vec::new();
    let mut agents = Vec::new();
    for (email, base) in [
        ("xu@shop.example", &bases[0]),
        ("yan@shop.example", &bases[2]),
    ] {
        let (id, cookie) =
            common::agent_with_limit(cluster.store.as_ref(), email, &[site], 2).await;
        let mut ws = Ws::connect(base, "/ws/agent", None, Some(&cookie)).await;
        ws.send_json(agent_hello(&[])).await;
        ws.until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
            .await;
        consoles.push(ws);
        agents.push(id);
    }
    // Node B, which has no agent of its own, knows they are online.
    assert!(
        offers_chat(&bases[1], &cluster.key).await,
        "node B never saw the agents"
    );
    // Six visitors write at the same moment, two on each node: every node assigns at once.
    let opened: Vec<_> = (0..6)
        .map(|n| {
            let base = bases[n % 3].clone();
            let key = cluster.key.clone();
            tokio::spawn(async move {
                let mut ws = Ws::connect(&base, "/ws/visitor", Some(ORIGIN), None).await;
                ws.send_json(visitor_hello(&key, None, &[])).await;
                ws.until(welcome_of).await;
                ws.send_json(send_frame(None, &format!("q{n}"), "anyone?"))
                    .await;
                let (_, conversation, _) = ws.until(ack_of).await;
                (ws, conversation)
            })
        })
        .collect();
    let mut visitors = Vec::new();
    for task in opened {
        visitors.push(task.await.expect("visitor"));
    }
    // Every node's pass finishes within moments: wait for both agents to be full (or not).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut loads = Vec::new();
    while Instant::now() < deadline {
        loads = cluster.store.agent_loads(&agents).await.expect("loads");
        if loads.iter().all(|(_, load)| *load >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A pass still running could only add more: give it the time to, then read again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loads_after = cluster.store.agent_loads(&agents).await.expect("loads");
    assert_eq!(loads, loads_after, "the loads settled");
    let mut waiting = Vec::new();
    for (_, conversation) in &visitors {
        let assignee = cluster
            .store
            .conversation(*conversation)
            .await
            .expect("read")
            .and_then(|c| c.assignee_id);
        if assignee.is_none() {
            waiting.push(*conversation);
        }
    }
    println!("cluster assignment: loads {loads:?}, waiting {waiting:?}");
    assert_eq!(
        loads,
        vec![(agents[0], 2), (agents[1], 2)],
        "each agent holds exactly their limit"
    );
    assert_eq!(waiting.len(), 2, "the rest wait in line");
    drop(consoles);
    drop(visitors);
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_signing_out_on_one_node_closes_the_agents_socket_on_another() {
    let cluster = Cluster::start().await;
    let (a, b) = (cluster.nodes[0].base(), cluster.nodes[1].base());
    let mut console = Ws::connect(&a, "/ws/agent", None, Some(&cluster.cookie)).await;
    console.send_json(agent_hello(&[])).await;
    assert!(matches!(console.next().await, ServerFrame::Welcome(_)));
    let started = Instant::now();
    let signed_out = reqwest::Client::new()
        .post(format!("{b}/api/logout"))
        .header("origin", &b)
        .header("cookie", &cluster.cookie)
        .header("accept", "application/json")
        .send()
        .await
        .expect("logout on node B");
    assert_eq!(signed_out.status().as_u16(), 200);
    let (_, code) = console
        .closed_within(Duration::from_secs(1))
        .await
        .expect("the socket on node A closed within a second");
    println!(
        "cluster sign-out: the socket on another node closed with {code} after {:?}",
        started.elapsed()
    );
    assert_eq!(code, 4401);
    let poll = reqwest::Client::new()
        .get(format!("{a}/http/agent/events?cursors=&wait=0"))
        .header("origin", &a)
        .header("cookie", &cluster.cookie)
        .send()
        .await
        .expect("poll on node A");
    assert_eq!(poll.status().as_u16(), 401);
    cluster.finish().await;
}
