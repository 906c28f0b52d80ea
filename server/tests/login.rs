//! Sign-in throttling, against a real `kefu serve` process whose memory is read from `/proc`:
//! guesses from one address are stopped with 429 and `Retry-After` while the owner still signs
//! in from another, a wrong password is 401 (never 500), and a burst of junk sign-ins leaves
//! the server answering and small. Clients use their own loopback addresses (127.x.y.z), so
//! each is a different client to Kefu, as on the internet.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "login-test-password";

struct Kefu {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Kefu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Kefu {
    async fn start() -> Kefu {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        std::fs::write(dir.path().join("kefu.toml"), "").expect("empty config");
        let child = Command::new(env!("CARGO_BIN_EXE_kefu"))
            .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
            .args([
                "--database-url",
                &format!("sqlite://{}/kefu.db", dir.path().display()),
            ])
            .args(["--log-level", "warn"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("KEFU_DEMO_PASSWORD", PASSWORD)
            .env("KEFU_CONFIG", dir.path().join("kefu.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kefu");
        // Owned (and so stopped) before anything can fail.
        let kefu = Kefu {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        common::wait_ready(&kefu.base).await;
        kefu
    }

    /// The process's peak resident memory, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// A sign-in from `address`: the status and the `Retry-After` header.
    async fn sign_in(&self, address: IpAddr, email: &str, password: &str) -> (u16, Option<u64>) {
        let response = reqwest::Client::builder()
            .local_address(address)
            .build()
            .expect("client")
            .post(format!("{}/api/login", self.base))
            .header("origin", &self.base)
            .header("accept", "application/json")
            .form(&[("email", email), ("password", password), ("mode", "auto")])
            .send()
            .await
            .expect("login");
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        (response.status().as_u16(), retry)
    }
}

#[tokio::test]
async fn signin_throttle_guesses_are_throttled_per_address_while_the_owner_signs_in_elsewhere() {
    let kefu = Kefu::start().await;
    let guesser: IpAddr = "127.0.0.2".parse().expect("ip");
    let owner: IpAddr = "127.0.0.3".parse().expect("ip");
    let admin = server::web::demo::DEMO_EMAIL;

    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(kefu.sign_in(guesser, admin, "wrong password").await);
    }
    println!("20 wrong passwords from one address: {statuses:?}");
    assert_eq!(statuses[0].0, 401, "a wrong password is 401");
    assert!(
        statuses
            .iter()
            .all(|(status, _)| [401, 429].contains(status))
    );
    let throttled: Vec<_> = statuses
        .iter()
        .filter(|(status, _)| *status == 429)
        .collect();
    assert!(!throttled.is_empty(), "the address was throttled");
    assert!(
        throttled
            .iter()
            .all(|(_, retry)| retry.is_some_and(|s| s >= 1)),
        "429 says when to retry: {throttled:?}"
    );
    // The right password from the throttled address waits too; from another it works.
    assert_eq!(kefu.sign_in(guesser, admin, PASSWORD).await.0, 429);
    assert_eq!(kefu.sign_in(owner, admin, PASSWORD).await.0, 200);

    // A password too long to be worth hashing is refused as bad input.
    let huge = "x".repeat(2_000);
    assert_eq!(kefu.sign_in(owner, "nobody@x.example", &huge).await.0, 400);
}

/// One HTTP/1.1 request over a fresh connection from `source` (with `Connection: close`):
/// the response's status. Plain bytes on a socket, so the test itself costs little CPU while
/// it measures the server.
async fn raw_request(server: SocketAddr, source: IpAddr, request: &[u8]) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind the source address");
    let mut stream = socket.connect(server).await.expect("connect");
    stream.write_all(request).await.expect("request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("response");
    std::str::from_utf8(&answer[..answer.len().min(12)])
        .ok()
        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
        .and_then(|status| status.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "not an HTTP response: {:?}",
                String::from_utf8_lossy(&answer)
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signin_throttle_burst_of_junk_sign_ins_keeps_the_server_answering_and_small() {
    let kefu = Kefu::start().await;
    let server: SocketAddr = kefu
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let baseline = kefu.peak_rss_kib();
    // The requests first (each from an address of its own), so preparing them takes nothing
    // from the burst.
    let requests: Vec<(IpAddr, Vec<u8>)> = (0..200u32)
        .map(|n| {
            let body = format!("email=junk{n}%40junk.example&password=guess&mode=auto");
            let request = format!(
                "POST /api/login HTTP/1.1\r\nHost: {server}\r\nOrigin: {}\r\n\
                 Accept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                kefu.base,
                body.len()
            );
            let address = IpAddr::from([127, 3, (n / 200) as u8, (n % 200 + 1) as u8]);
            (address, request.into_bytes())
        })
        .collect();
    // /healthz is probed from a task of its own while the burst runs.
    let probing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = tokio::spawn({
        let probing = probing.clone();
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
        async move {
            let (mut slowest, mut probes) = (Duration::ZERO, 0);
            while probing.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let status =
                    raw_request(server, "127.0.0.1".parse().expect("ip"), request.as_bytes()).await;
                assert_eq!(status, 200);
                slowest = slowest.max(started.elapsed());
                probes += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (slowest, probes)
        }
    });
    let burst = requests
        .iter()
        .map(|(address, request)| raw_request(server, *address, request));
    let statuses = futures_util::future::join_all(burst).await;
    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    let (slowest, probes) = probe.await.expect("probe");
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    let peak = kefu.peak_rss_kib();
    println!(
        "200 concurrent junk sign-ins: {refused} answered 401, {throttled} answered 429; \
         /healthz slowest {slowest:?} over {probes} probes; peak RSS {} MiB (at rest {} MiB)",
        peak / 1024,
        baseline / 1024
    );
    assert_eq!(refused + throttled, 200, "only 401 or 429: {statuses:?}");
    // Health checks kept being answered while the burst was hashed: were the hashes on the
    // runtime's workers, each probe would wait for the burst, and only a few would complete.
    // (The slowest probe is printed, not asserted: a clock flakes on a busy machine.)
    assert!(
        probes > 10,
        "only {probes} /healthz answered during the burst"
    );
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB");
}
