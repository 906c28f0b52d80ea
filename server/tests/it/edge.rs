//! Kefu at its edge (`SECURITY.md`): real client addresses behind the shipped nginx site,
//! agent actions bound to the console's origin, live sockets that end with their session,
//! the console's headers, `/metrics` and `/demo` exposure, and the HTTP server's timeouts.

use crate::common;

use common::client::{Http, Ws, agent_hello, visitor_hello};
use protocol::{AgentId, ErrorCode, ServerFrame};
use std::net::IpAddr;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// The page the test visitors' widget runs on.
const SHOP: &str = "https://shop.example";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

/// nginx with the `location /` block of the shipped `deploy/nginx.conf`, on plain HTTP (the
/// TLS server around it is the operator's), in front of `upstream`.
struct Nginx {
    base: String,
    child: Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// nginx on `port` (see [`free_port`]).
    fn start(dir: &Path, port: u16, upstream: std::net::SocketAddr) -> Nginx {
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx.conf"),
        )
        .expect("deploy/nginx.conf");
        let start = shipped.find("location / {").expect("a location / block");
        let end = start + shipped[start..].find("\n    }").expect("its end") + "\n    }".len();
        let location = shipped[start..end].replace(
            "proxy_pass http://127.0.0.1:3000;",
            &format!("proxy_pass http://{upstream};"),
        );
        assert!(location.contains(&upstream.to_string()), "{location}");
        let dir = dir.display();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {dir}/nginx.pid;\n\
             error_log {dir}/nginx-error.log warn;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n\
             proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fastcgi;\n\
             uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
             map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    client_max_body_size 12m;\n    {location}\n  }}\n}}\n"
        );
        let file = format!("{dir}/nginx.conf");
        std::fs::write(&file, config).expect("write nginx.conf");
        let nginx = Nginx {
            base: format!("http://127.0.0.1:{port}"),
            child: common::nginx(&file, &dir.to_string())
                .spawn()
                .expect("start nginx (scripts/tools.sh --test installs it)"),
        };
        for _ in 0..400 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nginx did not listen on {port}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A visitor's WebSocket from `source` through `base`, with an `X-Forwarded-For` of its own
/// when `forged` is given; the first frame it gets after its hello.
async fn visitor_from(base: &str, source: IpAddr, forged: Option<&str>, key: &str) -> ServerFrame {
    let mut headers = vec![("origin", SHOP)];
    if let Some(forged) = forged {
        headers.push(("x-forwarded-for", forged));
    }
    let mut ws = Ws::connect_from(base, "/ws/visitor", source, &headers).await;
    ws.send_json(visitor_hello(key, None, &[])).await;
    let frame = ws.next().await;
    // Keep the connection open for the rest of the test.
    std::mem::forget(ws);
    frame
}

fn is_welcome(frame: &ServerFrame) -> bool {
    matches!(frame, ServerFrame::Welcome(_))
}

fn error_code(frame: &ServerFrame) -> Option<ErrorCode> {
    match frame {
        ServerFrame::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn behind_nginx_each_forwarded_client_is_counted_and_banned_on_its_own() {
    // The console is where nginx serves it: the shipped site passes `Host` without the port.
    let port = free_port();
    let console = format!("http://127.0.0.1:{port}");
    let server = common::spawn_sqlite_with(|config| {
        config.max_connections_per_ip = 3;
        config.edge = server::edge::Edge::new(Some(&console), &["127.0.0.1/32".into()], None, None)
            .expect("edge");
    })
    .await;
    let (site_id, key) = common::site(server.store.as_ref(), "edge", &[SHOP]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let nginx = Nginx::start(dir.path(), port, server.addr);

    // 300 visitors, each from an address of its own, all through nginx (one TCP peer for Kefu).
    let mut welcomed = 0;
    for n in 0..300u32 {
        let source = IpAddr::from([127, 1, (n / 200) as u8, (n % 200 + 1) as u8]);
        if is_welcome(&visitor_from(&nginx.base, source, None, &key).await) {
            welcomed += 1;
        }
    }
    println!("behind nginx: {welcomed} of 300 visitors from distinct addresses welcomed");
    assert_eq!(welcomed, 300);

    // One forwarded address is held to its cap (it has one connection already).
    let crowded = ip("127.1.0.1");
    assert!(is_welcome(
        &visitor_from(&nginx.base, crowded, None, &key).await
    ));
    assert!(is_welcome(
        &visitor_from(&nginx.base, crowded, None, &key).await
    ));
    let over = visitor_from(&nginx.base, crowded, None, &key).await;
    assert_eq!(
        error_code(&over),
        Some(ErrorCode::TooManyConnections),
        "{over:?}"
    );

    // The agent console still connects through the same nginx.
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "ana@edge.example", &[site_id]).await;
    let mut agent = Ws::connect(&nginx.base, "/ws/agent", None, Some(&cookie)).await;
    agent.send_json(agent_hello(&[])).await;
    assert!(is_welcome(&agent.next().await), "the console connects");

    // A ban on one forwarded address refuses only that address.
    common::ban_address(&server, &console, site_id, "127.1.1.7").await;
    let banned = visitor_from(&nginx.base, ip("127.1.1.7"), None, &key).await;
    assert_eq!(error_code(&banned), Some(ErrorCode::Banned), "{banned:?}");
    assert!(is_welcome(
        &visitor_from(&nginx.base, ip("127.1.1.8"), None, &key).await
    ));

    // Forging X-Forwarded-For changes nothing: through nginx the real address is appended
    // after the forged one, and straight to Kefu the peer is not a trusted proxy.
    let forged_via_nginx =
        visitor_from(&nginx.base, ip("127.1.1.9"), Some("127.1.1.7"), &key).await;
    assert!(is_welcome(&forged_via_nginx), "{forged_via_nginx:?}");
    let direct = server.url("");
    let forged_direct = visitor_from(&direct, ip("127.1.1.10"), Some("127.1.1.7"), &key).await;
    assert!(is_welcome(&forged_direct), "{forged_direct:?}");
    // And a peer that is not trusted cannot take the banned address's place either way: the
    // banned address itself, straight to Kefu, is still refused.
    let banned_direct = visitor_from(&direct, ip("127.1.1.7"), Some("203.0.113.1"), &key).await;
    assert_eq!(error_code(&banned_direct), Some(ErrorCode::Banned));
}

/// A server whose console lives at `https://chat.example.test`.
async fn console_server() -> common::TestServer {
    common::spawn_sqlite_with(|config| {
        config.edge = server::edge::Edge::new(Some(CONSOLE), &[], None, None).expect("edge");
    })
    .await
}

const CONSOLE: &str = "https://chat.example.test";
/// Enough of a PNG for the upload check.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n0123456789abcdef";
const EVIL: &str = "https://evil.example";

#[tokio::test]
async fn agent_actions_from_another_origin_are_refused_and_change_nothing() {
    let server = console_server().await;
    let store = server.store.as_ref();
    let (site_id, key) = common::site(store, "origins", &[SHOP]).await;
    // Under an https console the session cookie carries the `__Host-` prefix.
    let host_bound = |(_, cookie): (AgentId, String)| format!("__Host-{cookie}");
    let admin = host_bound(common::admin_cookie(store, "boss@origins.example").await);
    let cookie = host_bound(common::agent_cookie(store, "ana@origins.example", &[site_id]).await);
    let base = server.url("");

    // The agent WebSocket.
    for origin in [Some(EVIL), None] {
        let mut headers = vec![("cookie", cookie.as_str())];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        assert_eq!(
            Ws::upgrade_status(&base, "/ws/agent", &headers).await,
            403,
            "{origin:?}"
        );
    }
    let mut console = Ws::connect(&base, "/ws/agent", Some(CONSOLE), Some(&cookie)).await;
    console.send_json(agent_hello(&[])).await;
    let welcome = console.next().await;
    assert!(is_welcome(&welcome), "{welcome:?}");

    // A visitor's conversation the agent could answer.
    let (visitor, _) = common::http_visitor(&server, &key, SHOP).await;
    let (_, acks) = visitor
        .send(serde_json::json!([common::client::send_frame(
            None, "c-1", "hello"
        )]))
        .await;
    let conversation = acks
        .iter()
        .find_map(|frame| match frame {
            ServerFrame::Ack {
                conversation_id, ..
            } => Some(*conversation_id),
            _ => None,
        })
        .expect("ack");
    let reply = serde_json::json!([common::client::send_frame(Some(conversation), "a-1", "hi")]);

    // `/http/agent/send`: refused from elsewhere, nothing stored; works from the console.
    for origin in [Some(EVIL), None] {
        let mut agent = Http::new(&base, "agent");
        agent.cookie = Some(cookie.clone());
        agent.origin = origin.map(str::to_string);
        let (status, _) = agent.send(reply.clone()).await;
        assert_eq!(status, 403, "{origin:?}");
    }
    let stored = || async {
        server
            .store
            .messages_after(conversation, 0, 100)
            .await
            .expect("messages")
            .len()
    };
    assert_eq!(stored().await, 1, "only the visitor's message");
    let mut agent = Http::new(&base, "agent");
    agent.cookie = Some(cookie.clone());
    agent.origin = Some(CONSOLE.into());
    let (status, _) = agent.send(reply.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(stored().await, 2, "the reply from the console is stored");

    // A server function (the one that would copy every message elsewhere).
    let add_webhook = |origin: Option<&'static str>| {
        let mut request = reqwest::Client::new()
            .post(server.url("/api/admin/webhooks/add"))
            .header("cookie", &admin)
            .header("accept", "application/json")
            .form(&[("url", "https://evil.example/hook"), ("events", "message")]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    for origin in [Some(EVIL), None] {
        let status = add_webhook(origin).await.expect("call").status().as_u16();
        assert_eq!(status, 403, "{origin:?}");
    }
    assert!(server.store.webhooks().await.expect("webhooks").is_empty());
    let (status, body) =
        common::server_fn_from(&server, CONSOLE, &admin, "/api/admin/webhooks", &[]).await;
    assert_eq!(status, 200, "{body}");

    // The agent upload.
    let upload = |origin: Option<&'static str>| {
        let mut request = reqwest::Client::new()
            .post(server.url(&format!(
                "/http/agent/upload?conversation={conversation}&name=a.png"
            )))
            .header("cookie", &cookie)
            .header("content-type", "image/png")
            .body(PNG.to_vec());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    for origin in [Some(EVIL), None] {
        let status = upload(origin).await.expect("upload").status().as_u16();
        assert_eq!(status, 403, "{origin:?}");
    }
    let status = upload(Some(CONSOLE))
        .await
        .expect("upload")
        .status()
        .as_u16();
    assert_eq!(status, 201);

    // A browser that sends no Origin on a same-origin request still gets through.
    let same = reqwest::Client::new()
        .post(server.url("/api/me"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("me");
    assert_eq!(same.status().as_u16(), 200);
}

#[tokio::test]
async fn under_an_https_public_url_the_session_cookie_is_secure_and_host_bound() {
    let server = console_server().await;
    let login = |origin: &'static str| {
        reqwest::Client::new()
            .post(server.url("/api/login"))
            .header("origin", origin)
            .header("accept", "application/json")
            .form(&[
                ("email", server::web::demo::DEMO_EMAIL),
                ("password", common::DEMO_PASSWORD),
                ("mode", "auto"),
            ])
            .send()
    };
    // Login CSRF: a foreign page cannot sign the browser in to an account of its choosing.
    assert_eq!(login(EVIL).await.expect("login").status().as_u16(), 403);
    let signed_in = login(CONSOLE).await.expect("login");
    assert_eq!(signed_in.status().as_u16(), 200);
    let cookies: Vec<String> = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().expect("ascii").to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-kefu_session="))
        .unwrap_or_else(|| panic!("a __Host- session cookie in {cookies:?}"));
    assert!(
        session.contains("Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    assert!(
        session.contains("Path=/") && !session.contains("Domain"),
        "{session}"
    );
    assert!(cookies.iter().all(|c| c.contains("Secure")), "{cookies:?}");
    // The cookie works for the console's own requests.
    let pair = session.split(';').next().expect("pair").to_string();
    let (status, _) = common::server_fn_from(&server, CONSOLE, &pair, "/api/me", &[]).await;
    assert_eq!(status, 200);
}

/// Signs `email` in over the console's login; the `Cookie` header value.
async fn sign_in(server: &common::TestServer, email: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .post(server.url("/api/login"))
        .header("origin", server.url(""))
        .header("accept", "application/json")
        .form(&[("email", email), ("password", password), ("mode", "auto")])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status().as_u16(), 200);
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|c| c.starts_with("kefu_session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string()
}

/// An agent's live console: its WebSocket after the welcome.
async fn live_console(server: &common::TestServer, cookie: &str) -> Ws {
    let mut ws = Ws::connect(&server.url(""), "/ws/agent", None, Some(cookie)).await;
    ws.send_json(agent_hello(&[])).await;
    assert!(is_welcome(&ws.next().await));
    ws
}

/// The status of the agent's next long poll.
async fn poll_status(server: &common::TestServer, cookie: &str, cursors: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(server.url(&format!("/http/agent/events?cursors={cursors}&wait=0")))
        .header("origin", server.url(""))
        .header("cookie", cookie)
        .send()
        .await
        .expect("poll");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn signing_out_disabling_and_removal_end_live_consoles_at_once() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (site_id, key) = common::site(store, "ends", &[SHOP]).await;
    let (_, admin) = common::admin_cookie(store, "boss@ends.example").await;
    let password = "a long enough password";
    let hash = app::password::hash_password(password).expect("hash");
    let mut people = Vec::new();
    for name in ["out", "off", "moved"] {
        let agent = store
            .create_agent(store::NewAgent {
                email: format!("{name}@ends.example"),
                password_hash: hash.clone(),
                display_name: name.into(),
                role: store::Role::Agent,
                language: "en".into(),
                max_chats: 5,
                created_at: server::now_ms(),
            })
            .await
            .expect("agent");
        store
            .add_agent_to_site(site_id, agent.id)
            .await
            .expect("member");
        people.push(agent.id);
    }
    let ends = |closed: Option<(Vec<ServerFrame>, u16)>, started: Instant, what: &str| {
        let (frames, code) = closed.unwrap_or_else(|| panic!("{what}: the socket stayed open"));
        println!("{what}: closed with {code} after {:?}", started.elapsed());
        (frames, code)
    };

    // Signing out.
    let cookie = sign_in(&server, "out@ends.example", password).await;
    let mut console = live_console(&server, &cookie).await;
    let started = Instant::now();
    let (status, _) = common::server_fn(&server, &cookie, "/api/logout", &[]).await;
    assert_eq!(status, 200);
    let (frames, code) = ends(
        console.closed_within(Duration::from_secs(1)).await,
        started,
        "sign-out",
    );
    assert_eq!(code, 4401);
    assert!(
        frames
            .iter()
            .any(|f| error_code(f) == Some(ErrorCode::Unauthorized)),
        "{frames:?}"
    );
    assert_eq!(poll_status(&server, &cookie, "").await.0, 401);

    // Disabled by an administrator.
    let cookie = sign_in(&server, "off@ends.example", password).await;
    let mut console = live_console(&server, &cookie).await;
    let started = Instant::now();
    let id = people[1].to_string();
    let (status, body) = common::server_fn(
        &server,
        &admin,
        "/api/admin/agents/update",
        &[("id", &id), ("max_chats", "5"), ("disabled", "true")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, code) = ends(
        console.closed_within(Duration::from_secs(1)).await,
        started,
        "disabled",
    );
    assert_eq!(code, 4401);
    assert_eq!(poll_status(&server, &cookie, "").await.0, 401);

    // Removed from the site: the console starts afresh without it, and the site's
    // conversations are no longer delivered to it.
    let (_, visitor) = common::http_visitor(&server, &key, SHOP).await;
    let conversation = store
        .create_conversation(site_id, visitor, server::now_ms())
        .await
        .expect("conversation")
        .id;
    let cookie = sign_in(&server, "moved@ends.example", password).await;
    let mut console = live_console(&server, &cookie).await;
    let started = Instant::now();
    let id = people[2].to_string();
    let site = site_id.to_string();
    let (status, body) = common::server_fn(
        &server,
        &admin,
        "/api/admin/agents/site",
        &[("id", &id), ("site", &site), ("member", "false")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (frames, code) = ends(
        console.closed_within(Duration::from_secs(1)).await,
        started,
        "removed",
    );
    assert_eq!(code, 1012);
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Reconnect { .. })),
        "{frames:?}"
    );
    let (status, body) = poll_status(&server, &cookie, &format!("{conversation}:0")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("not_found"),
        "the site's conversation is refused: {body}"
    );
}

#[tokio::test]
async fn a_full_node_refuses_new_connections_with_its_own_error() {
    let server = common::spawn_sqlite_with(|config| config.max_connections = 2).await;
    let base = server.url("");
    let mut first = Ws::connect(&base, "/ws/visitor", Some("http://localhost"), None).await;
    first.send_json(visitor_hello("demo", None, &[])).await;
    assert!(is_welcome(&first.next().await));
    // From another address, so it is the node's cap and not the address's that refuses.
    let second = visitor_from(&base, ip("127.1.2.1"), None, "demo").await;
    assert!(is_welcome(&second), "{second:?}");
    let third = visitor_from(&base, ip("127.1.2.2"), None, "demo").await;
    assert_eq!(
        error_code(&third),
        Some(ErrorCode::Unavailable),
        "{third:?}"
    );
    // A place frees when a connection ends.
    first.drop_connection();
    let mut fourth = None;
    for _ in 0..250 {
        let frame = visitor_from(&base, ip("127.1.2.3"), None, "demo").await;
        if is_welcome(&frame) {
            fourth = Some(frame);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fourth.is_some(), "the freed place is taken again");
}

#[tokio::test]
async fn console_pages_carry_the_security_headers_and_a_script_nonce() {
    let server = common::spawn_sqlite().await;
    let page = reqwest::get(server.url("/login"))
        .await
        .expect("login page");
    let headers = page.headers().clone();
    let html = page.text().await.expect("html");
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{name} on /login"))
            .to_string()
    };
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "same-origin");
    let policy = header("content-security-policy");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the policy");
    assert!(nonce.len() >= 16, "{nonce}");
    let scripts = html.matches("<script").count();
    assert!(scripts > 0, "the page has scripts");
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        html.matches("<script").count(),
        "every script carries this response's nonce: {html}"
    );
    // A second page gets a nonce of its own.
    let again = reqwest::get(server.url("/login")).await.expect("again");
    let other = again
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("policy")
        .to_string();
    assert!(!other.contains(nonce));

    // What customers' pages embed stays embeddable.
    let site = reqwest::Client::new()
        .get(server.url("/http/visitor/site?key=demo"))
        .header("origin", SHOP)
        .send()
        .await
        .expect("site");
    assert!(site.headers().get("x-frame-options").is_none());
    assert!(site.headers().get("content-security-policy").is_none());
}

#[tokio::test]
async fn metrics_answer_only_allowed_addresses_or_the_token_and_demo_needs_the_flag() {
    let server = common::spawn_sqlite_with(|config| {
        config.demo = false;
        config.edge = server::edge::Edge::new(
            None,
            &[],
            Some(&["192.0.2.0/24".to_string()]),
            Some("scrape-me".into()),
        )
        .expect("edge");
    })
    .await;
    let http = reqwest::Client::new();
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(
        metrics.status().as_u16(),
        403,
        "127.0.0.1 is not in metrics.allow"
    );
    let wrong = http
        .get(server.url("/metrics"))
        .bearer_auth("guess")
        .send()
        .await
        .expect("metrics");
    assert_eq!(wrong.status().as_u16(), 403);
    let scraped = http
        .get(server.url("/metrics"))
        .bearer_auth("scrape-me")
        .send()
        .await
        .expect("metrics");
    assert_eq!(scraped.status().as_u16(), 200);
    assert!(scraped.text().await.expect("body").contains("kefu_"));
    let demo = http.get(server.url("/demo")).send().await.expect("demo");
    assert_eq!(demo.status().as_u16(), 404);
}

#[tokio::test]
async fn a_client_dripping_its_headers_is_dropped_and_long_polls_still_hold() {
    let server = common::spawn_sqlite_with(|config| {
        config.http = server::http_server::HttpLimits::new(Some(1_000), None);
    })
    .await;
    let mut slow = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let started = Instant::now();
    let request = b"GET /healthz HTTP/1.1\r\nHost: kefu\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut dropped = false;
    let mut buffer = [0u8; 256];
    for byte in request {
        if slow.write_all(&[*byte]).await.is_err() {
            dropped = true;
            break;
        }
        // One byte a second, waiting for the server's answer in between.
        match tokio::time::timeout(Duration::from_secs(1), slow.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => {
                dropped = true;
                break;
            }
            Ok(Ok(_)) => {
                // An error response (408) before the close is fine too.
                dropped = true;
                break;
            }
            Err(_) => {}
        }
    }
    println!(
        "a client sending one byte every 250 ms was dropped after {:?}",
        started.elapsed()
    );
    assert!(
        dropped,
        "the slow client was still connected after all its bytes"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before the timeout"
    );

    // A long poll holds longer than the header timeout: its headers came at once.
    let (visitor, _) = common::http_visitor(&server, "demo", "http://localhost").await;
    let held = Instant::now();
    let (status, _) = visitor.poll(&[], 2).await;
    assert_eq!(status, 200);
    assert!(
        held.elapsed() >= Duration::from_millis(1_500),
        "{:?}",
        held.elapsed()
    );
}

/// A node with no descriptor left (here `prlimit` gives the process 200 open files and idle
/// connections take them all) never sleeps on a failed `accept`: it retries for a moment, then
/// lets a reserve descriptor go to accept a waiting connection and close it at once, so that
/// client is told instead of hanging; it counts those in `/metrics`, logs no `accept failed`,
/// and serves again as soon as descriptors are free.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_out_of_descriptors_sheds_connections_and_serves_again_once_they_free() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("kefu.toml");
    // Idle connections stay for as long as the test needs, and the HTTP cap is not what stops
    // them: only the open-file limit is.
    std::fs::write(
        &config,
        "[http]\nheader_timeout_ms = 600000\nmax_connections = 100000\n",
    )
    .expect("config");
    let port = free_port();
    let mut child = tokio::process::Command::new("prlimit")
        .arg("--nofile=200:200")
        .arg(env!("CARGO_BIN_EXE_kefu"))
        .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.path().join("kefu.db").display()))
        .arg("--config")
        .arg(&config)
        .args(["--log-level", "info"])
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_DEMO_PASSWORD")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start kefu under prlimit");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let stderr = child.stderr.take().expect("stderr");
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::BufReader::new(stderr)
            .read_to_string(&mut text)
            .await;
        text
    });
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = stdout.next_line().await.expect("stdout") {
            if line.starts_with("Kefu console:") {
                return;
            }
        }
        panic!("kefu exited before serving");
    })
    .await
    .expect("kefu serves");
    let base = format!("http://127.0.0.1:{port}");

    // More idle connections than the process has descriptors: each says nothing, and the
    // first one the server closes is a shed one.
    let (closed, mut shed) = tokio::sync::mpsc::channel(1);
    let mut idle = Vec::new();
    for _ in 0..300 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect (the backlog takes it)");
        let closed = closed.clone();
        idle.push(tokio::spawn(async move {
            let mut buffer = [0u8; 64];
            if let Ok(0) = stream.read(&mut buffer).await {
                let _ = closed.send(()).await;
            }
            // Held until the test aborts the task.
            std::future::pending::<()>().await;
        }));
    }
    tokio::time::timeout(Duration::from_secs(60), shed.recv())
        .await
        .expect("a waiting connection is closed at once, not left hanging")
        .expect("a close");

    for task in &idle {
        task.abort();
    }
    // Free again: the node answers, and counted what it shed.
    let http = reqwest::Client::new();
    let metrics = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(answer) = http.get(format!("{base}/metrics")).send().await
                && answer.status().is_success()
            {
                return answer.text().await.expect("body");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the node serves again");
    let shed_total = metrics
        .lines()
        .find_map(|line| line.strip_prefix("kefu_accepts_shed_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("the shed counter");
    assert!(shed_total >= 1, "{metrics}");

    child.start_kill().expect("kill");
    let _ = child.wait().await;
    let log = log.await.expect("log");
    assert!(log.contains("out of file descriptors"), "{log}");
    assert!(!log.contains("accept failed"), "{log}");
    assert!(log.contains("open-file limit"), "{log}");
}
