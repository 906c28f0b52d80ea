//! Database outages under a steady load, on PostgreSQL and MariaDB: the link between Kefu and
//! its database cut, black-holed (a partition) or slowed for 5 s (through the test's proxy,
//! [`common::proxy`]), and the database server itself restarted (a private server the test
//! starts, so no other test is disturbed).
//!
//! Visitors keep sending over WebSocket, each message until it is acknowledged: a send refused
//! with `unavailable` is resent after the server's `retry_after_ms`, and a connection that dies
//! or goes quiet is opened again and the message resent with the same client id, as the widget
//! does. An agent's console follows every conversation. Afterwards every acknowledged message is
//! stored once under its seq and delivered once, in order; nothing was acknowledged while the
//! database could not store it; `/readyz` said so during the outage and the same server (no
//! restart) took the load again. Each test prints its counts (run with `--nocapture`, as
//! `make test` does).

mod common;

use common::client::{Delivered, Ws, agent_hello, send_frame, visitor_hello, welcome_of};
use common::proxy::{Mode, Proxy};
use protocol::{ConversationId, ErrorCode, ServerFrame};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ORIGIN: &str = "https://shop.example";
/// Visitors sending at once.
const VISITORS: usize = 8;
/// Messages each visitor sends.
const PER_VISITOR: usize = 80;
/// The pause between one visitor's messages.
const PACE: Duration = Duration::from_millis(25);
/// How long the link stays cut.
const OUTAGE: Duration = Duration::from_secs(5);
/// How long anything may take on a busy machine before the test gives up.
const PATIENCE: Duration = Duration::from_secs(120);

/// What one visitor did and got.
struct Visitor {
    /// Its conversation, opened before the load.
    conversation: ConversationId,
    /// Acknowledged message number → its seq, when the send that was acknowledged left, and
    /// when the ack arrived.
    acked: BTreeMap<usize, (i64, Instant, Instant)>,
    /// Send frames, resends included.
    sent: usize,
    /// Sends refused with `unavailable` (the only refusal allowed).
    refused: usize,
    /// Connections opened again after one died, went quiet or was refused at its hello.
    reconnects: usize,
}

/// The answer to `client_id` in `frame`: `Ok(seq)` for an ack, `Err(wait)` for a refusal. Any
/// other refusal, and an `internal` error about anything, fails the test: an outage must be
/// told as `unavailable` with a wait, naming the message to resend.
fn answer_to(frame: &ServerFrame, client_id: &str) -> Option<Result<i64, u32>> {
    match frame {
        ServerFrame::Error {
            code: ErrorCode::Internal,
            ..
        } => panic!("an outage answered as an internal error: {frame:?}"),
        ServerFrame::Ack {
            client_id: id, seq, ..
        } if id.0 == client_id => Some(Ok(*seq)),
        ServerFrame::Error {
            code,
            client_id: Some(id),
            retry_after_ms,
            message,
            ..
        } if id.0 == client_id => {
            assert_eq!(*code, ErrorCode::Unavailable, "{message}");
            assert!(
                !message.to_lowercase().contains("database error"),
                "no internals to clients: {message}"
            );
            Some(Err(
                retry_after_ms.expect("a refusal for an outage says when to retry")
            ))
        }
        _ => None,
    }
}

/// Reads frames until one answers `client_id`, for at most `wait`; `None` if the connection
/// died or went quiet.
async fn answer(ws: &mut Ws, client_id: &str, wait: Duration) -> Option<Result<i64, u32>> {
    let deadline = Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let frame = ws.try_next(left).await?;
        if let Some(found) = answer_to(&frame, client_id) {
            return Some(found);
        }
    }
    None
}

/// A visitor connection whose hello was welcomed, or `None` while the server cannot take it
/// (a hello that meets the outage is answered with an error and the connection ends).
async fn connect_visitor(base: &str, key: &str, token: Option<&str>) -> Option<(Ws, String)> {
    let mut ws = Ws::try_connect(base, "/ws/visitor", Some(ORIGIN), None).await?;
    ws.send_json(visitor_hello(key, token, &[])).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let frame = ws.try_next(left).await?;
        if let Some((token, _)) = welcome_of(&frame) {
            return Some((ws, token));
        }
        if matches!(frame, ServerFrame::Error { .. }) {
            return None;
        }
    }
    None
}

/// A visitor of the load: says hello and opens a conversation with message 0.
async fn open_conversation(base: &str, key: &str, n: usize) -> (String, ConversationId) {
    let (mut ws, token) = connect_visitor(base, key, None).await.expect("welcome");
    let client_id = format!("fault-{n}-0");
    ws.send_json(send_frame(None, &client_id, "m0")).await;
    let conversation = ws
        .until(|f| match f {
            ServerFrame::Ack {
                client_id: id,
                conversation_id,
                seq: 1,
            } if id.0 == client_id => Some(*conversation_id),
            _ => None,
        })
        .await;
    (token, conversation)
}

/// A visitor of the load: sends messages 1..[`PER_VISITOR`] in its conversation, each until
/// acknowledged, resending after a refusal's wait or over a new connection.
async fn visitor(
    base: String,
    key: String,
    n: usize,
    (token, conversation): (String, ConversationId),
    progress: Arc<AtomicUsize>,
) -> Visitor {
    let mut me = Visitor {
        conversation,
        acked: BTreeMap::from([(0, (1, Instant::now(), Instant::now()))]),
        sent: 1,
        refused: 0,
        reconnects: 0,
    };
    let deadline = Instant::now() + PATIENCE;
    let mut i = 1;
    while i < PER_VISITOR {
        assert!(
            Instant::now() < deadline,
            "visitor {n}: message {i} never acknowledged"
        );
        let Some((mut ws, _)) = connect_visitor(&base, &key, Some(&token)).await else {
            me.reconnects += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        while i < PER_VISITOR {
            let client_id = format!("fault-{n}-{i}");
            me.sent += 1;
            let sent_at = Instant::now();
            ws.send_json(send_frame(Some(conversation), &client_id, &format!("m{i}")))
                .await;
            match answer(&mut ws, &client_id, Duration::from_secs(20)).await {
                Some(Ok(seq)) => {
                    me.acked.insert(i, (seq, sent_at, Instant::now()));
                    progress.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    tokio::time::sleep(PACE).await;
                }
                Some(Err(wait)) => {
                    me.refused += 1;
                    tokio::time::sleep(Duration::from_millis(wait.into())).await;
                }
                None => {
                    me.reconnects += 1;
                    break;
                }
            }
        }
    }
    me
}

/// What the agent's console saw.
#[derive(Default)]
struct Seen {
    delivered: Delivered,
    /// Times it connected (1 when the outage never cost it its connection).
    connections: usize,
}

/// The agent's console: follows `conversations` from their start until each has as many
/// messages as `targets` says (once the load is over), reconnecting with its cursors whenever
/// its connection dies.
async fn agent(
    base: String,
    cookie: String,
    conversations: Vec<ConversationId>,
    mut targets: tokio::sync::watch::Receiver<Option<HashMap<ConversationId, usize>>>,
) -> Seen {
    let mut seen = Seen::default();
    let done = |seen: &Seen, targets: &Option<HashMap<ConversationId, usize>>| {
        targets.as_ref().is_some_and(|targets| {
            targets
                .iter()
                .all(|(c, n)| seen.delivered.cursor(*c) >= *n as i64)
        })
    };
    loop {
        let Some(mut ws) = Ws::try_connect(&base, "/ws/agent", None, Some(&cookie)).await else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        let cursors: Vec<(ConversationId, i64)> = conversations
            .iter()
            .map(|c| (*c, seen.delivered.cursor(*c)))
            .collect();
        ws.send_json(agent_hello(&cursors)).await;
        seen.connections += 1;
        loop {
            if done(&seen, &targets.borrow_and_update()) {
                return seen;
            }
            tokio::select! {
                frame = ws.try_next(Duration::from_secs(30)) => match frame {
                    Some(ServerFrame::Message(m)) => seen.delivered.record(m.conversation_id, m.seq),
                    Some(_) => {}
                    None => break,
                },
                _ = targets.changed() => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// When the fault lasted, and what `/readyz` said.
struct Outage {
    /// The fault began (the link cut or slowed, the database's process gone).
    from: Instant,
    /// The link or the database was back.
    to: Instant,
    /// How long `/readyz` took to say 503 after the fault began; `None` for a fault during
    /// which the database still answers (a slow link), when it stayed 200.
    not_ready_after: Option<Duration>,
    /// How long `/readyz` took to say 200 again after the database was back.
    ready_after: Duration,
}

/// `/readyz`'s status at `base`.
async fn readyz(base: &str) -> u16 {
    match reqwest::get(format!("{base}/readyz")).await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// Waits (at most [`PATIENCE`]) until `/readyz` at `base` answers `status`; how long it took.
async fn readyz_becomes(base: &str, status: u16) -> Duration {
    let start = Instant::now();
    while readyz(base).await != status {
        assert!(start.elapsed() < PATIENCE, "/readyz never said {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

/// Runs the load against a server over `database_url`, does `fault` to the database once a
/// third of it is acknowledged, and checks and prints the counts under `label`.
async fn under_load<F, Fut>(label: &str, database_url: &str, fault: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Outage>,
{
    let server = common::spawn_with(database_url, |config| {
        config.messages_per_minute = 100_000;
    })
    .await;
    let base = server.url("");
    let (site_id, key) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[site_id]).await;
    let mut firsts = Vec::new();
    for n in 0..VISITORS {
        firsts.push(open_conversation(&base, &key, n).await);
    }
    let conversations: Vec<ConversationId> = firsts.iter().map(|(_, c)| *c).collect();
    let (targets_tx, targets) = tokio::sync::watch::channel(None);
    let agent = tokio::spawn(agent(base.clone(), cookie, conversations.clone(), targets));
    let progress = Arc::new(AtomicUsize::new(0));
    let visitors: Vec<_> = firsts
        .into_iter()
        .enumerate()
        .map(|(n, first)| {
            tokio::spawn(visitor(
                base.clone(),
                key.clone(),
                n,
                first,
                progress.clone(),
            ))
        })
        .collect();
    let start = Instant::now();
    while progress.load(Ordering::Relaxed) < VISITORS * PER_VISITOR / 3 {
        assert!(start.elapsed() < PATIENCE, "the load never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acked_before = progress.load(Ordering::Relaxed);
    let outage = fault(base.clone()).await;
    let mut runs = Vec::new();
    for task in visitors {
        runs.push(task.await.expect("visitor"));
    }

    // Count: every acknowledged message stored once under its seq and delivered once, in order.
    let mut stored_by_conversation = HashMap::new();
    let (mut stored, mut duplicated, mut acked_not_stored) = (0, 0, 0);
    for (n, run) in runs.iter().enumerate() {
        let messages = server
            .store
            .messages_after(run.conversation, 0, 10_000)
            .await
            .expect("stored");
        let by_client: HashMap<&str, i64> = messages
            .iter()
            .map(|m| (m.client_id.0.as_str(), m.seq))
            .collect();
        duplicated += messages.len() - by_client.len();
        stored += messages.len();
        stored_by_conversation.insert(run.conversation, messages.len());
        for (i, (seq, ..)) in &run.acked {
            if by_client.get(format!("fault-{n}-{i}").as_str()) != Some(seq) {
                acked_not_stored += 1;
            }
        }
    }
    targets_tx
        .send(Some(stored_by_conversation.clone()))
        .expect("the agent waits");
    let seen = tokio::time::timeout(PATIENCE, agent)
        .await
        .expect("every stored message delivered to the agent")
        .expect("agent task");
    let delivered: usize = seen.delivered.seen.values().map(Vec::len).sum();
    duplicated += seen.delivered.duplicates;
    let lost = acked_not_stored + stored.saturating_sub(delivered);
    let mut out_of_order = seen.delivered.out_of_order;
    for (conversation, count) in &stored_by_conversation {
        if seen.delivered.seen.get(conversation) != Some(&(1..=*count as i64).collect()) {
            out_of_order += 1;
        }
    }
    // Nothing can be stored between the fault and the database's return: a message sent after
    // the fault began and acknowledged before the database was back was not stored. (Compared
    // by event, not by a grace period: a message sent just before the fault may be committed
    // and acknowledged however late a busy machine lets its ack arrive.)
    let stores = outage.not_ready_after.is_none();
    let acked_in_outage = runs
        .iter()
        .flat_map(|r| r.acked.values())
        .filter(|(_, sent, acked)| *sent > outage.from && *acked < outage.to)
        .count();
    let sent: usize = runs.iter().map(|r| r.sent).sum();
    let acked: usize = runs.iter().map(|r| r.acked.len()).sum();
    let refused: usize = runs.iter().map(|r| r.refused).sum();
    let reconnects: usize = runs.iter().map(|r| r.reconnects).sum();
    println!(
        "{label}: {VISITORS} visitors x {PER_VISITOR} messages, outage of {} ms after {acked_before} acks: sent {sent} (with resends), acked {acked}, refused {refused} (all `unavailable`), acked during the outage {acked_in_outage}, stored {stored}, delivered {delivered}, lost {lost}, duplicated {duplicated}, out of order {out_of_order}; visitor reconnects {reconnects}, agent connections {}; /readyz {}, 200 {} ms after the database was back",
        (outage.to - outage.from).as_millis(),
        seen.connections,
        outage
            .not_ready_after
            .map_or("stayed 200".into(), |after| format!(
                "503 after {} ms",
                after.as_millis()
            )),
        outage.ready_after.as_millis(),
    );
    assert_eq!(
        acked,
        VISITORS * PER_VISITOR,
        "every message acknowledged in the end"
    );
    assert_eq!(stored, acked, "stored exactly what was acknowledged");
    if !stores {
        assert_eq!(
            acked_in_outage, 0,
            "acknowledged while nothing could be stored"
        );
    }
    assert_eq!(lost, 0, "lost");
    assert_eq!(duplicated, 0, "duplicated");
    assert_eq!(out_of_order, 0, "out of order");
    server.stop().await;
}

/// Does `fault` to the link between the server at `base` and its database for [`OUTAGE`]:
/// `/readyz` says 503 while the database cannot answer (a cut, a black hole) and 200 while it
/// answers slowly, and 200 again once the link is restored.
async fn link_fault(proxy: &Proxy, fault: Mode, base: &str) -> Outage {
    let from = Instant::now();
    match fault {
        Mode::Cut => proxy.cut(),
        Mode::Blackhole => proxy.blackhole(),
        Mode::Delay(delay) => proxy.delay(delay),
        Mode::Open => {}
    }
    let not_ready_after = if let Mode::Delay(_) = fault {
        tokio::time::sleep(OUTAGE / 2).await;
        assert_eq!(readyz(base).await, 200, "a slow database is still ready");
        None
    } else {
        Some(readyz_becomes(base, 503).await)
    };
    tokio::time::sleep(OUTAGE.saturating_sub(from.elapsed())).await;
    proxy.restore();
    let to = Instant::now();
    let ready_after = readyz_becomes(base, 200).await;
    Outage {
        from,
        to,
        not_ready_after,
        ready_after,
    }
}

async fn link(label: &str, admin_url: &str, upstream: &str, fault: Mode) {
    let database = common::TestDatabase::create(admin_url).await;
    let proxy = Proxy::start(upstream.parse().expect("upstream")).await;
    let url = proxy.route(&database.url, upstream);
    let proxy = &proxy;
    under_load(label, &url, |base| async move {
        link_fault(proxy, fault, &base).await
    })
    .await;
    database.drop_now().await;
}

const PG: &str = "127.0.0.1:5432";
const MARIADB: &str = "127.0.0.1:3306";
/// How long a slowed link holds each chunk, each way.
const SLOW: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_postgres_link_cut_for_5_s_under_load() {
    link("PostgreSQL link cut", &common::pg_url(), PG, Mode::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_mariadb_link_cut_for_5_s_under_load() {
    link("MariaDB link cut", &common::mysql_url(), MARIADB, Mode::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_postgres_link_partitioned_for_5_s_under_load() {
    let label = "PostgreSQL link partitioned (black hole)";
    link(label, &common::pg_url(), PG, Mode::Blackhole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_mariadb_link_partitioned_for_5_s_under_load() {
    let label = "MariaDB link partitioned (black hole)";
    link(label, &common::mysql_url(), MARIADB, Mode::Blackhole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_postgres_link_slowed_for_5_s_under_load() {
    let label = "PostgreSQL link slowed (100 ms each way)";
    link(label, &common::pg_url(), PG, Mode::Delay(SLOW)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_mariadb_link_slowed_for_5_s_under_load() {
    let label = "MariaDB link slowed (100 ms each way)";
    link(label, &common::mysql_url(), MARIADB, Mode::Delay(SLOW)).await;
}

/// Restarts `database` under the server at `base`: `/readyz` follows it down and up.
async fn restart(database: &mut Database, base: &str) -> Outage {
    database.stop().await;
    // Not when it was told to stop: a graceful shutdown still commits what is under way.
    let from = Instant::now();
    let not_ready_after = readyz_becomes(base, 503).await;
    database.start().await;
    let to = Instant::now();
    let ready_after = readyz_becomes(base, 200).await;
    Outage {
        from,
        to,
        not_ready_after: Some(not_ready_after),
        ready_after,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_postgres_server_restart_under_load() {
    let mut database = Database::postgres().await;
    let url = database.url.clone();
    let database = &mut database;
    under_load("PostgreSQL restart", &url, |base| async move {
        restart(database, &base).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_mariadb_server_restart_under_load() {
    let mut database = Database::mariadb().await;
    let url = database.url.clone();
    let database = &mut database;
    under_load("MariaDB restart", &url, |base| async move {
        restart(database, &base).await
    })
    .await;
}

/// A database server of the test's own, in a temporary directory on a free port, so it can be
/// restarted without disturbing the servers other tests share. Killed when dropped.
struct Database {
    /// The server program, started again by each restart.
    program: PathBuf,
    /// Its arguments: the data directory, the port.
    args: Vec<String>,
    /// As whom it runs: PostgreSQL and MariaDB refuse to run as root.
    user: Option<(u32, u32)>,
    /// The running server, `None` while stopped.
    process: Option<Child>,
    /// A URL of a database on it that Kefu may use.
    url: String,
    /// Where the admin connection checks it is up.
    admin_url: String,
    /// Its data, socket and working directory.
    dir: tempfile::TempDir,
}

impl Database {
    /// A fresh PostgreSQL cluster (`initdb`), its `postgres` database for Kefu.
    async fn postgres() -> Database {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        let user = db_user("postgres");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let data = dir.path().join("data");
        let status = as_user(Command::new(bin.join("initdb")), user)
            .current_dir(dir.path())
            .args(["-D", &data.display().to_string()])
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("initdb (Debian's postgresql package)");
        assert!(status.success(), "initdb");
        let port = free_port();
        let args = vec![
            "-D".into(),
            data.display().to_string(),
            "-p".into(),
            port.to_string(),
            "-h".into(),
            "127.0.0.1".into(),
            "-k".into(),
            dir.path().display().to_string(),
            // No fsync: the restarts here are clean shutdowns, and the machine is busy.
            "-F".into(),
        ];
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let mut database = Database {
            program: bin.join("postgres"),
            args,
            user,
            process: None,
            admin_url: url.clone(),
            url,
            dir,
        };
        database.start().await;
        database
    }

    /// A fresh MariaDB (`mariadb-install-db`), with a database `kefu` for Kefu.
    async fn mariadb() -> Database {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let root = running_as_root();
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if root {
            install.arg("--user=root");
        }
        let status = install
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db (Debian's mariadb-server package)");
        assert!(status.success(), "mariadb-install-db");
        let port = free_port();
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", data.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={}/mysqld.sock", dir.path().display()),
            format!("--pid-file={}/mysqld.pid", dir.path().display()),
            // A test server: no grant tables to set up, a small footprint on a busy machine.
            "--skip-grant-tables".into(),
            "--skip-name-resolve".into(),
            "--performance-schema=off".into(),
            "--innodb-buffer-pool-size=32M".into(),
            "--innodb-log-file-size=16M".into(),
        ];
        if root {
            args.push("--user=root".into());
        }
        let admin_url = format!("mysql://root@127.0.0.1:{port}/mysql");
        let mut database = Database {
            program: PathBuf::from("/usr/sbin/mariadbd"),
            args,
            user: None,
            process: None,
            url: format!("mysql://root@127.0.0.1:{port}/kefu"),
            admin_url,
            dir,
        };
        database.start().await;
        use sqlx::Connection;
        let mut admin = sqlx::MySqlConnection::connect(&database.admin_url)
            .await
            .expect("connect");
        sqlx::query("CREATE DATABASE kefu CHARACTER SET utf8mb4")
            .execute(&mut admin)
            .await
            .expect("create database");
        database
    }

    /// Starts the server and waits until it takes connections.
    async fn start(&mut self) {
        let child = as_user(Command::new(&self.program), self.user)
            .current_dir(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.program.display()));
        self.process = Some(child);
        let start = Instant::now();
        loop {
            let up = if self.admin_url.starts_with("postgres") {
                use sqlx::Connection;
                sqlx::PgConnection::connect(&self.admin_url).await.is_ok()
            } else {
                use sqlx::Connection;
                sqlx::MySqlConnection::connect(&self.admin_url)
                    .await
                    .is_ok()
            };
            if up {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{} did not start",
                self.program.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server as its service manager would (SIGINT, PostgreSQL's fast shutdown:
    /// sessions ended, transactions rolled back; SIGTERM for MariaDB) and waits for it to exit.
    async fn stop(&mut self) {
        let mut child = self.process.take().expect("running");
        let signal = if self.admin_url.starts_with("postgres") {
            "-INT"
        } else {
            "-TERM"
        };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
        let start = Instant::now();
        while child.try_wait().expect("try_wait").is_none() {
            assert!(start.elapsed() < PATIENCE, "the database did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The directory of PostgreSQL's server programs (Debian keeps them out of `PATH`).
fn postgres_bin() -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL installed");
    let mut bins: Vec<PathBuf> = versions
        .filter_map(|v| v.ok())
        .map(|v| v.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    bins.sort();
    bins.pop().expect("a PostgreSQL with initdb")
}

/// `(uid, gid)` of the system user `name` when this test runs as root (the database servers
/// refuse root), else `None`: they run as the user running the test.
fn db_user(name: &str) -> Option<(u32, u32)> {
    if !running_as_root() {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, name]).output().expect("id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no user {name}"))
    };
    Some((id("-u"), id("-g")))
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").expect("/proc").uid() == 0
}

/// `command`, run as `user` when given.
fn as_user(mut command: Command, user: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("addr").port()
}
