//! Delivery under chaos and crashes. Both tests print their counts (run with `--nocapture`,
//! as `make test` does): sent, acked, delivered, duplicates, lost.
//!
//! - chaos: 20 conversations × 500 messages while visitor and agent connections are dropped at
//!   random and switched between WebSocket and HTTP.
//! - crash: `kill -9` the server process mid-run, while 50 visitors each have several messages
//!   in flight (batches of the SQLite writer uncommitted), restart it on the same database;
//!   every acknowledged message is there exactly once and clients resume.

mod common;

use common::client::{
    Delivered, Http, Ws, ack_of, agent_hello, message_of, send_frame, visitor_hello, welcome_of,
};
use protocol::{ConversationId, ServerFrame};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const ORIGIN: &str = "https://shop.example";
const CONVERSATIONS: usize = 20;
const MESSAGES: usize = 500;

/// One visitor: sends MESSAGES messages one by one, each until acked, over a randomly chosen
/// transport, dropping WebSocket connections at random (before reading the ack, so the send is
/// retried with the same client id). Returns (attempts, acks by client id).
async fn visitor_run(
    base: String,
    key: String,
    seed: u64,
    first: (String, ConversationId),
) -> (usize, BTreeMap<usize, i64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (token, conversation) = first;
    let mut acked = BTreeMap::new();
    acked.insert(0, 1);
    let mut attempts = 1;
    let mut ws: Option<Ws> = None;
    let mut http = Http::new(&base, "visitor");
    http.origin = Some(ORIGIN.into());
    http.token = Some(token.clone());
    let mut i = 1;
    while i < MESSAGES {
        let client_id = format!("{seed}-{i}");
        let frame = send_frame(Some(conversation), &client_id, &format!("message {i}"));
        attempts += 1;
        let ack = if rng.random_bool(0.3) {
            ws = None;
            let (status, frames) = http.send(frame).await;
            assert_eq!(status, 200, "{frames:?}");
            frames.iter().find_map(ack_of)
        } else {
            if ws.is_none() {
                let mut conn = Ws::connect(&base, "/ws/visitor", Some(ORIGIN), None).await;
                conn.send_json(visitor_hello(&key, Some(&token), &[])).await;
                conn.until(welcome_of).await;
                ws = Some(conn);
            }
            let conn = ws.as_mut().expect("connected");
            conn.send_json(frame).await;
            if rng.random_bool(0.05) {
                // The network dies right after sending: the ack is lost, the message may be stored.
                if let Some(conn) = ws.take() {
                    conn.drop_connection();
                }
                None
            } else {
                Some(conn.until(|f| ack_of(f).filter(|a| a.0 == client_id)).await)
            }
        };
        if let Some((_, _, seq)) = ack {
            acked.insert(i, seq);
            i += 1;
        }
    }
    (attempts, acked)
}

/// The agent: follows every conversation until it has MESSAGES of each, over WebSocket or HTTP
/// polls chosen at random, dropping connections at random and resuming from its cursors.
async fn agent_run(
    base: String,
    cookie: String,
    conversations: Vec<ConversationId>,
    seed: u64,
) -> Delivered {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut delivered = Delivered::default();
    let done = |d: &Delivered| {
        conversations
            .iter()
            .all(|c| d.cursor(*c) >= MESSAGES as i64)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    while !done(&delivered) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent did not catch up in time"
        );
        let cursors: Vec<(ConversationId, i64)> = conversations
            .iter()
            .map(|c| (*c, delivered.cursor(*c)))
            .collect();
        if rng.random_bool(0.3) {
            let http = Http {
                cookie: Some(cookie.clone()),
                ..Http::new(&base, "agent")
            };
            let (status, frames) = http.poll(&cursors, 2).await;
            assert_eq!(status, 200);
            for (c, s, _) in frames.iter().filter_map(message_of) {
                delivered.record(c, s);
            }
        } else {
            let mut ws = Ws::connect(&base, "/ws/agent", None, Some(&cookie)).await;
            ws.send_json(agent_hello(&cursors)).await;
            // Read a random number of frames, then drop the connection without a goodbye.
            let budget = rng.random_range(50..800);
            for _ in 0..budget {
                match ws.try_next(Duration::from_secs(2)).await {
                    Some(frame) => {
                        if let ServerFrame::Message(m) = &frame {
                            delivered.record(m.conversation_id, m.seq);
                        }
                    }
                    None => break,
                }
                if done(&delivered) {
                    break;
                }
            }
            ws.drop_connection();
        }
    }
    delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_twenty_conversations_survive_drops_and_transport_switches() {
    let server = common::spawn_sqlite_with(|config| config.messages_per_minute = 100_000).await;
    let (site_id, key) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[site_id]).await;
    let base = server.url("");
    let seed: u64 = std::env::var("KEFU_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261126);

    // Each visitor opens its conversation with a first message.
    let mut firsts = Vec::new();
    for n in 0..CONVERSATIONS {
        let mut ws = Ws::connect(&base, "/ws/visitor", Some(ORIGIN), None).await;
        ws.send_json(visitor_hello(&key, None, &[])).await;
        let (token, _) = ws.until(welcome_of).await;
        let client_id = format!("{}-0", seed + n as u64);
        ws.send_json(send_frame(None, &client_id, "message 0"))
            .await;
        let (_, conversation, seq) = ws.until(ack_of).await;
        assert_eq!(seq, 1);
        firsts.push((token, conversation));
    }
    let conversations: Vec<ConversationId> = firsts.iter().map(|f| f.1).collect();

    let agent = tokio::spawn(agent_run(
        base.clone(),
        cookie,
        conversations.clone(),
        seed ^ 0xa9e7,
    ));
    let mut visitors = Vec::new();
    for (n, first) in firsts.into_iter().enumerate() {
        let visitor_seed = seed + n as u64;
        visitors.push((
            visitor_seed,
            tokio::spawn(visitor_run(base.clone(), key.clone(), visitor_seed, first)),
        ));
    }
    let mut sent = 0;
    let mut acked = 0;
    let mut lost = 0;
    let mut store_duplicates = 0;
    for ((visitor_seed, visitor), conversation) in visitors.into_iter().zip(&conversations) {
        let (attempts, acks) = visitor.await.expect("visitor task");
        sent += attempts;
        acked += acks.len();
        let stored = server
            .store
            .messages_after(*conversation, 0, 10_000)
            .await
            .expect("stored");
        let by_client: HashMap<&str, i64> = stored
            .iter()
            .map(|m| (m.client_id.0.as_str(), m.seq))
            .collect();
        store_duplicates += stored.len() - by_client.len();
        // Every ack names the stored message, in the order the visitor sent them.
        for (i, seq) in &acks {
            let client_id = format!("{visitor_seed}-{i}");
            match by_client.get(client_id.as_str()) {
                Some(stored_seq) if stored_seq == seq => {}
                _ => lost += 1,
            }
        }
        let seqs: Vec<i64> = acks.values().copied().collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "acks in send order: {seqs:?}"
        );
        assert_eq!(
            stored.len(),
            MESSAGES,
            "conversation {conversation} holds exactly its messages"
        );
    }
    let delivered = tokio::time::timeout(Duration::from_secs(300), agent)
        .await
        .expect("agent finished")
        .expect("agent task");
    let delivered_total: usize = delivered.seen.values().map(Vec::len).sum();
    let undelivered: usize = conversations
        .iter()
        .map(|c| MESSAGES - delivered.seen.get(c).map_or(0, Vec::len))
        .sum();
    println!(
        "chaos: {CONVERSATIONS} conversations x {MESSAGES} messages: sent {sent} (with resends), acked {acked}, delivered {delivered_total}, duplicates {}, lost {}, out of order {} (seed {seed})",
        delivered.duplicates + store_duplicates,
        lost + undelivered,
        delivered.out_of_order
    );
    assert_eq!(acked, CONVERSATIONS * MESSAGES);
    assert_eq!(lost + undelivered, 0, "lost");
    assert_eq!(delivered.duplicates + store_duplicates, 0, "duplicated");
    assert_eq!(delivered.out_of_order, 0, "out of order");
    for c in &conversations {
        let seqs = &delivered.seen[c];
        assert_eq!(
            seqs,
            &(1..=MESSAGES as i64).collect::<Vec<_>>(),
            "conversation {c} in order"
        );
    }
    server.stop().await;
}

/// A `kefu serve` child process on a fixed port and database.
struct Process {
    child: Child,
}

impl Process {
    fn start(port: u16, database_url: &str) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_kefu"))
            .args([
                "serve",
                "--demo",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
            ])
            .args(["--messages-per-minute", "100000", "--log-level", "warn"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("KEFU_DEMO_PASSWORD", "crash-test")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kefu");
        Process { child }
    }

    fn kill_9(mut self) {
        // Child::kill sends SIGKILL on Unix: no shutdown, no flush, no goodbye.
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a crash visitor keeps unacknowledged at once, so that the kill lands with whole
/// batches of the SQLite writer in flight.
const IN_FLIGHT: usize = 4;

/// One visitor sending `total` messages, [`IN_FLIGHT`] at a time, reconnecting (and resending
/// whatever is unacknowledged) whenever the server is gone. Returns (attempts, acked message
/// index → seq, conversation, token).
async fn crash_visitor(
    base: String,
    n: usize,
    total: usize,
    progress: Arc<AtomicUsize>,
) -> (usize, BTreeMap<usize, i64>, ConversationId, String) {
    let mut acked = BTreeMap::new();
    let mut attempts = 0;
    let mut token: Option<String> = None;
    let mut conversation: Option<ConversationId> = None;
    let mut next = 0;
    let client_id = |i: usize| format!("crash-{n}-{i}");
    while acked.len() < total {
        let Some(mut ws) = Ws::try_connect(&base, "/ws/visitor", Some(ORIGIN), None).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        ws.send_json(visitor_hello("demo", token.as_deref(), &[]))
            .await;
        let Some(frame) = ws.try_next(Duration::from_secs(2)).await else {
            continue;
        };
        let Some((new_token, _)) = welcome_of(&frame) else {
            continue;
        };
        token = Some(new_token);
        // What was sent before the connection broke and never acknowledged goes again first.
        let mut in_flight: Vec<usize> = (0..next).filter(|i| !acked.contains_key(i)).collect();
        for &i in &in_flight {
            attempts += 1;
            ws.send_json(send_frame(conversation, &client_id(i), &format!("m{i}")))
                .await;
        }
        loop {
            while in_flight.len() < IN_FLIGHT && next < total {
                attempts += 1;
                ws.send_json(send_frame(
                    conversation,
                    &client_id(next),
                    &format!("m{next}"),
                ))
                .await;
                in_flight.push(next);
                next += 1;
            }
            if in_flight.is_empty() {
                break;
            }
            let Some(frame) = ws.try_next(Duration::from_secs(2)).await else {
                break;
            };
            let Some((id, conv, seq)) = ack_of(&frame) else {
                continue;
            };
            let Some(place) = in_flight.iter().position(|&i| client_id(i) == id) else {
                continue;
            };
            let i = in_flight.remove(place);
            conversation = Some(conv);
            acked.insert(i, seq);
            progress.fetch_add(1, Ordering::Relaxed);
        }
    }
    (
        attempts,
        acked,
        conversation.expect("a conversation"),
        token.expect("a token"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_kill_9_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = format!("sqlite://{}/kefu.db", dir.path().display());
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("addr").port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let first = Process::start(port, &database_url);
    common::wait_ready(&base).await;

    const VISITORS: usize = 50;
    const PER_VISITOR: usize = 100;
    let progress = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..VISITORS)
        .map(|n| {
            tokio::spawn(crash_visitor(
                base.clone(),
                n,
                PER_VISITOR,
                progress.clone(),
            ))
        })
        .collect();
    // Kill once a third of the messages are acknowledged: mid-run, whatever the machine's speed.
    while progress.load(Ordering::Relaxed) < VISITORS * PER_VISITOR / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill_9();
    let acked_before_kill = progress.load(Ordering::Relaxed);
    let _second = Process::start(port, &database_url);
    common::wait_ready(&base).await;

    let store = store::connect(&store::DatabaseUrl::parse(&database_url).expect("url"))
        .await
        .expect("store");
    let mut sent = 0;
    let mut acked_total = 0;
    let mut lost = 0;
    let mut duplicates = 0;
    let mut replayed = 0;
    for (n, task) in tasks.into_iter().enumerate() {
        let (attempts, acked, conversation, token) =
            tokio::time::timeout(Duration::from_secs(120), task)
                .await
                .expect("visitor finished")
                .expect("visitor task");
        sent += attempts;
        acked_total += acked.len();
        let stored = store
            .messages_after(conversation, 0, 10_000)
            .await
            .expect("stored");
        let by_client: HashMap<&str, i64> = stored
            .iter()
            .map(|m| (m.client_id.0.as_str(), m.seq))
            .collect();
        duplicates += stored.len() - by_client.len();
        for (i, seq) in &acked {
            if by_client.get(format!("crash-{n}-{i}").as_str()) != Some(seq) {
                lost += 1;
            }
        }
        // The client resumes: a hello with a cursor halfway gets exactly the rest, in order.
        let mut ws = Ws::connect(&base, "/ws/visitor", Some(ORIGIN), None).await;
        let half = (PER_VISITOR / 2) as i64;
        ws.send_json(visitor_hello("demo", Some(&token), &[(conversation, half)]))
            .await;
        let mut seqs = Vec::new();
        while seqs.len() < PER_VISITOR - half as usize {
            if let Some((_, seq, _)) = message_of(&ws.next().await) {
                seqs.push(seq);
            }
        }
        assert_eq!(seqs, (half + 1..=PER_VISITOR as i64).collect::<Vec<_>>());
        replayed += seqs.len();
    }
    println!(
        "crash: {VISITORS} visitors x {PER_VISITOR} messages, kill -9 after {acked_before_kill} acks: sent {sent} (with resends), acked {acked_total}, delivered on resume {replayed}, duplicates {duplicates}, lost {lost}"
    );
    assert_eq!(acked_total, VISITORS * PER_VISITOR);
    assert!(acked_before_kill < acked_total, "the kill happened mid-run");
    assert_eq!(lost, 0, "acknowledged messages lost");
    assert_eq!(duplicates, 0, "messages stored twice");
}
