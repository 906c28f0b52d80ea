//! A full disk under SQLite, while visitors (over WebSocket and HTTP) and an agent send: every
//! send is refused with `unavailable` by its client id and nothing is acknowledged that was not
//! stored; the log says so once for the whole episode; when space returns the same server (no
//! restart) takes the resends and new messages, each stored and delivered once. Prints its
//! counts (run with `--nocapture`, as `make test` does).
//!
//! The disk is filled with `store::PageLimit` (SQLite's `max_page_count` on every pooled
//! connection), which makes SQLite answer `SQLITE_FULL` exactly as it does for a disk with no
//! space left, with no root, loop device or small file system needed.

use crate::common;

use common::client::{Delivered, Http, Ws, agent_hello, send_frame, visitor_hello, welcome_of};
use protocol::{ConversationId, ErrorCode, ServerFrame};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ORIGIN: &str = "https://shop.example";
/// Visitors over WebSocket (one more talks over HTTP).
const WS_VISITORS: usize = 3;
/// New messages each sender sends before the disk fills and after space returns.
const BEFORE: usize = 5;
const AFTER: usize = 5;

/// The log the server writes, kept for the test to read.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    /// Installs this log as the process's subscriber (this test binary has one test).
    fn install() -> Log {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        log
    }

    /// Lines containing `text`.
    fn count(&self, text: &str) -> usize {
        let bytes = self.0.lock().expect("log");
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| line.contains(text))
            .count()
    }
}

/// What the server answered one send.
#[derive(Debug)]
enum Outcome {
    /// `(conversation, seq)`.
    Acked(ConversationId, i64),
    /// `(code, message, retry_after_ms)`.
    Refused(ErrorCode, String, Option<u32>),
}

/// The answer to `client_id` among the frames; an error that names no message fails the test
/// (a send must be refused by its client id, so the client knows what to resend).
fn outcome_of(frame: &ServerFrame, client_id: &str) -> Option<Outcome> {
    match frame {
        ServerFrame::Ack {
            client_id: id,
            conversation_id,
            seq,
        } if id.0 == client_id => Some(Outcome::Acked(*conversation_id, *seq)),
        ServerFrame::Error {
            code,
            message,
            client_id: Some(id),
            retry_after_ms,
            ..
        } if id.0 == client_id => Some(Outcome::Refused(*code, message.clone(), *retry_after_ms)),
        ServerFrame::Error {
            client_id: None, ..
        } => panic!("an error that names no message: {frame:?}"),
        _ => None,
    }
}

enum Link {
    Ws(Ws),
    Http(Http),
}

/// One client that sends messages, keeps those not yet acknowledged in its outbox (as the
/// widget and the console do) and resends them.
struct Sender {
    name: String,
    link: Link,
    conversation: Option<ConversationId>,
    /// Client ids sent and not acknowledged, oldest first.
    outbox: Vec<String>,
    /// Acknowledged client ids → (conversation, seq).
    acked: BTreeMap<String, (ConversationId, i64)>,
    /// Every send frame, resends included.
    sent: usize,
    /// Refusals, with their code and text, to check them.
    refusals: Vec<(ErrorCode, String, Option<u32>)>,
    next: usize,
}

impl Sender {
    fn new(name: &str, link: Link, conversation: Option<ConversationId>) -> Sender {
        Sender {
            name: name.to_string(),
            link,
            conversation,
            outbox: Vec::new(),
            acked: BTreeMap::new(),
            sent: 0,
            refusals: Vec::new(),
            next: 0,
        }
    }

    async fn send(&mut self, client_id: &str) -> bool {
        self.sent += 1;
        let body = format!("{client_id} {}", "x".repeat(1_000));
        let frame = send_frame(self.conversation, client_id, &body);
        let outcome = match &mut self.link {
            Link::Ws(ws) => {
                ws.send_json(frame).await;
                ws.until(|f| outcome_of(f, client_id)).await
            }
            Link::Http(http) => {
                let (status, frames) = http.send(frame).await;
                assert_eq!(status, 200, "{frames:?}");
                frames
                    .iter()
                    .find_map(|f| outcome_of(f, client_id))
                    .unwrap_or_else(|| panic!("no answer to {client_id}: {frames:?}"))
            }
        };
        match outcome {
            Outcome::Acked(conversation, seq) => {
                self.conversation = Some(conversation);
                self.acked
                    .insert(client_id.to_string(), (conversation, seq));
                self.outbox.retain(|id| id != client_id);
                true
            }
            Outcome::Refused(code, message, wait) => {
                self.refusals.push((code, message, wait));
                if !self.outbox.iter().any(|id| id == client_id) {
                    self.outbox.push(client_id.to_string());
                }
                false
            }
        }
    }

    /// Sends a new message; whether it was acknowledged.
    async fn send_new(&mut self) -> bool {
        let client_id = format!("{}-{}", self.name, self.next);
        self.next += 1;
        self.outbox.push(client_id.clone());
        self.send(&client_id).await
    }

    /// Resends the outbox, oldest first; whether every message was acknowledged.
    async fn resend(&mut self) -> bool {
        let mut all = true;
        for client_id in self.outbox.clone() {
            all &= self.send(&client_id).await;
        }
        all
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disk_full_refuses_sends_without_acks_and_recovers_without_a_restart() {
    let log = Log::install();
    let limit = store::PageLimit::new();
    let server =
        common::spawn_sqlite_limited(limit.clone(), |config| config.messages_per_minute = 100_000)
            .await;
    let (site_id, key) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[site_id]).await;
    let base = server.url("");

    // Space: each visitor opens its conversation and sends, the agent answers the first one.
    let mut senders = Vec::new();
    for n in 0..WS_VISITORS {
        let mut ws = Ws::connect(&base, "/ws/visitor", Some(ORIGIN), None).await;
        ws.send_json(visitor_hello(&key, None, &[])).await;
        ws.until(welcome_of).await;
        senders.push(Sender::new(&format!("ws{n}"), Link::Ws(ws), None));
    }
    let (http, _) = common::http_visitor(&server, &key, ORIGIN).await;
    senders.push(Sender::new("http", Link::Http(http), None));
    for sender in &mut senders {
        for _ in 0..BEFORE {
            assert!(sender.send_new().await, "{} with space", sender.name);
        }
    }
    let conversations: Vec<ConversationId> = senders
        .iter()
        .map(|s| s.conversation.expect("a conversation"))
        .collect();
    let mut agent_ws = Ws::connect(&base, "/ws/agent", None, Some(&cookie)).await;
    agent_ws.send_json(agent_hello(&[])).await;
    agent_ws
        .until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;
    let mut agent = Sender::new("agent", Link::Ws(agent_ws), Some(conversations[0]));
    for _ in 0..BEFORE {
        assert!(agent.send_new().await, "agent with space");
    }
    senders.push(agent);

    // An agent's console following every conversation from the start, live.
    let (targets_tx, mut targets) =
        tokio::sync::watch::channel(None::<HashMap<ConversationId, usize>>);
    let mut reader = Ws::connect(&base, "/ws/agent", None, Some(&cookie)).await;
    let cursors: Vec<(ConversationId, i64)> = conversations.iter().map(|c| (*c, 0)).collect();
    reader.send_json(agent_hello(&cursors)).await;
    let reader = tokio::spawn(async move {
        let mut delivered = Delivered::default();
        loop {
            if let Some(targets) = &*targets.borrow_and_update()
                && targets
                    .iter()
                    .all(|(c, n)| delivered.cursor(*c) >= *n as i64)
            {
                return delivered;
            }
            tokio::select! {
                frame = reader.try_next(Duration::from_secs(60)) => match frame {
                    Some(ServerFrame::Message(m)) => delivered.record(m.conversation_id, m.seq),
                    Some(_) => {}
                    None => panic!("the console's connection ended or went quiet"),
                },
                _ = targets.changed() => {}
            }
        }
    });

    // The disk fills. Every sender keeps sending new messages until one is refused (the pages
    // in use may still hold a few), and tries a refused one once more: still full.
    limit.fill();
    let mut acked_while_filling = 0;
    for _round in 0..2_000 {
        let mut waiting = 0;
        for sender in senders.iter_mut().filter(|s| s.refusals.is_empty()) {
            waiting += 1;
            if sender.send_new().await {
                acked_while_filling += 1;
            }
        }
        if waiting == 0 {
            break;
        }
    }
    for sender in &mut senders {
        assert!(
            !sender.refusals.is_empty(),
            "{} was never refused",
            sender.name
        );
        assert!(!sender.resend().await, "{}: still full", sender.name);
    }
    let refused: usize = senders.iter().map(|s| s.refusals.len()).sum();
    for sender in &senders {
        for (code, message, wait) in &sender.refusals {
            assert_eq!(*code, ErrorCode::Unavailable, "{}", sender.name);
            assert!(wait.is_some_and(|ms| ms > 0), "a retry hint");
            let lower = message.to_lowercase();
            assert!(
                !lower.contains("sqlite") && !lower.contains("database or disk"),
                "no internals to clients: {message}"
            );
        }
    }
    assert_eq!(
        log.count("database disk is full"),
        1,
        "said once for {refused} refusals"
    );
    assert_eq!(log.count("ERROR"), 1, "nothing else logged per message");
    assert_eq!(log.count("database writable again"), 0);

    // Space returns: the same server takes the resends and new messages.
    limit.lift();
    for sender in &mut senders {
        assert!(
            sender.resend().await,
            "{}: resent after space returned",
            sender.name
        );
        assert!(sender.outbox.is_empty());
        for _ in 0..AFTER {
            assert!(
                sender.send_new().await,
                "{} after space returned",
                sender.name
            );
        }
    }
    assert_eq!(log.count("database writable again"), 1);
    assert_eq!(log.count("database disk is full"), 1);

    // Count: every acknowledged message stored once under its seq, and delivered once.
    let mut stored_by_conversation = HashMap::new();
    let mut stored_total = 0;
    let mut store_duplicates = 0;
    let mut acked_not_stored = 0;
    let mut stored_by_client: HashMap<String, i64> = HashMap::new();
    for conversation in &conversations {
        let stored = server
            .store
            .messages_after(*conversation, 0, 10_000)
            .await
            .expect("stored");
        stored_by_conversation.insert(*conversation, stored.len());
        stored_total += stored.len();
        for m in &stored {
            if stored_by_client
                .insert(m.client_id.0.clone(), m.seq)
                .is_some()
            {
                store_duplicates += 1;
            }
        }
    }
    let mut acked = 0;
    let mut sent = 0;
    let mut attempted = 0;
    for sender in &senders {
        sent += sender.sent;
        attempted += sender.next;
        acked += sender.acked.len();
        for (client_id, (_, seq)) in &sender.acked {
            if stored_by_client.get(client_id) != Some(seq) {
                acked_not_stored += 1;
            }
        }
    }
    let ours_stored = senders
        .iter()
        .flat_map(|s| s.acked.keys())
        .filter(|id| stored_by_client.contains_key(*id))
        .count();
    targets_tx
        .send(Some(stored_by_conversation.clone()))
        .expect("reader waiting");
    let delivered = tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .expect("every stored message delivered")
        .expect("reader task");
    let delivered_total: usize = delivered.seen.values().map(Vec::len).sum();
    let undelivered = stored_total.saturating_sub(delivered_total);
    println!(
        "disk full: {} senders (WebSocket and HTTP visitors, an agent): messages {attempted}, sent {sent} (with resends), refused {refused} (all `unavailable`), acked {acked} ({acked_while_filling} while the disk filled), stored {stored_total}, delivered {delivered_total}, acked but not stored {acked_not_stored}, lost {}, duplicated {}, out of order {}; log: 'disk is full' x{}, 'writable again' x{}",
        senders.len(),
        acked_not_stored + undelivered,
        delivered.duplicates + store_duplicates,
        delivered.out_of_order,
        log.count("database disk is full"),
        log.count("database writable again"),
    );
    assert_eq!(acked_not_stored, 0, "acknowledged but not stored");
    assert_eq!(acked, attempted, "every message acknowledged in the end");
    assert_eq!(ours_stored, acked, "everything acknowledged is stored");
    assert_eq!(undelivered, 0, "lost");
    assert_eq!(delivered.duplicates + store_duplicates, 0, "duplicated");
    assert_eq!(delivered.out_of_order, 0, "out of order");
    for c in &conversations {
        assert_eq!(
            delivered.seen[c],
            (1..=stored_by_conversation[c] as i64).collect::<Vec<_>>(),
            "conversation {c} delivered in order"
        );
    }
    server.stop().await;
}
