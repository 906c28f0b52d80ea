//! The HTTP surface over a real socket: operations endpoints, the server-rendered console and
//! signing in through the login server function.

use crate::common;

use reqwest::StatusCode;
use reqwest::redirect::Policy;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let server = common::spawn_sqlite().await;
    let http = client();
    let health = http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    let ready = http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.expect("body");
    assert!(
        text.contains("# TYPE kefu_http_requests_total counter"),
        "{text}"
    );
    assert!(text.contains("backend=\"sqlite\""), "{text}");
    // The two requests before this one were counted.
    let count: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("kefu_http_requests_total "))
        .and_then(|value| value.parse().ok())
        .expect("request counter");
    assert!(count >= 2, "{text}");
    server.stop().await;
}

#[tokio::test]
async fn login_page_is_server_rendered() {
    let server = common::spawn_sqlite().await;
    let response = client()
        .get(server.url("/login"))
        .send()
        .await
        .expect("login page");
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.expect("body");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains(r#"name="email""#), "{html}");
    assert!(html.contains("HTTP only"), "{html}");
    assert!(
        html.contains("/pkg/kefu.js"),
        "hydration script missing: {html}"
    );

    let missing = client()
        .get(server.url("/no/such/page"))
        .send()
        .await
        .expect("404 page");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

/// Pages render while other servers of the same process start. Starting one lists the
/// console's routes, which switches resource loading off for the whole process
/// (leptos-rs/leptos#4773): a page rendering at that moment waited for ever, and the suite hung
/// now and then. The routes are listed once per process now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_other_servers_start() {
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = common::spawn_sqlite().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::config(&format!("sqlite://{}/kefu.db", dir.path().display()));
    let store = store::connect(&config.database_url).await.expect("store");
    let state = server::wiring::build_state(&config, store)
        .await
        .expect("state");
    /// Stops the servers starting when the test ends, even by a failure: the runtime waits
    /// for that thread before the test can end.
    struct Stop(std::sync::Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopping = Stop(stop.clone());
    let starting = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let mut started = 0;
            while !stop.load(Ordering::Relaxed) {
                drop(server::router(state.clone()));
                started += 1;
            }
            started
        })
    };
    let render = |_| async {
        let page = async {
            let response = client().get(server.url("/login")).send().await?;
            response.text().await
        };
        let html = tokio::time::timeout(common::REQUEST_TIMEOUT, page)
            .await
            .expect("the login page is rendered to its end")
            .expect("login page");
        assert!(html.contains(r#"name="email""#), "{html}");
    };
    futures_util::stream::iter(0..200)
        .for_each_concurrent(8, render)
        .await;
    drop(stopping);
    let started = starting.await.expect("routers");
    eprintln!("{started} routers built while 200 pages rendered");
    assert!(started > 0);
    server.stop().await;
}

#[tokio::test]
async fn sign_in_sets_an_http_only_session_that_identifies_the_agent() {
    let server = common::spawn_sqlite().await;
    let http = client();

    let refused = http
        .post(server.url("/api/login"))
        .header("origin", server.url(""))
        .form(&[
            ("email", server::web::demo::DEMO_EMAIL),
            ("password", "wrong"),
            ("mode", "auto"),
        ])
        .send()
        .await
        .expect("bad login");
    assert!(
        refused
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap_or_default().starts_with("kefu_session=")),
        "no session for a wrong password"
    );

    let accepted = http
        .post(server.url("/api/login"))
        .header("origin", server.url(""))
        .form(&[
            ("email", server::web::demo::DEMO_EMAIL),
            ("password", common::DEMO_PASSWORD),
            ("mode", "http"),
        ])
        .send()
        .await
        .expect("good login");
    let cookies: Vec<String> = accepted
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().expect("ascii cookie").to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("kefu_session="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Lax"), "{session}");
    assert!(
        cookies.iter().any(|c| c.starts_with("kefu_mode=http;")),
        "{cookies:?}"
    );

    let token = session.split(';').next().expect("name=value").to_string();
    let me = http
        .post(server.url("/api/me"))
        .header("origin", server.url(""))
        .header("cookie", &token)
        .header("accept", "application/json")
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::OK);
    let body = me.text().await.expect("body");
    assert!(body.contains("Demo Admin"), "{body}");

    let anonymous = http
        .post(server.url("/api/me"))
        .header("origin", server.url(""))
        .header("accept", "application/json")
        .send()
        .await
        .expect("me without cookie");
    assert_ne!(anonymous.status(), StatusCode::OK);
    assert!(
        anonymous
            .text()
            .await
            .expect("body")
            .contains("unauthorized")
    );
    server.stop().await;
}

#[tokio::test]
async fn an_agent_added_from_the_terminal_can_sign_in_to_their_sites() {
    use server::agents::{AddAgentError, AgentSpec, add};
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let spec = |email: &str, sites: &[&str], max_chats| AgentSpec {
        email: email.to_string(),
        display_name: "Mei".to_string(),
        role: store::Role::Agent,
        max_chats,
        site_keys: sites.iter().map(|s| s.to_string()).collect(),
        password: Some("a long enough password".to_string()),
    };
    for (bad, why) in [
        (spec("mei@shop.example", &["nope"], 2), "no site"),
        (spec("not an address", &["demo"], 2), "not valid"),
        (spec("mei@shop.example", &["demo"], 0), "between 1 and 100"),
        (
            spec(server::web::demo::DEMO_EMAIL, &["demo"], 2),
            "already exists",
        ),
    ] {
        let error = add(store, bad).await.expect_err(why);
        assert!(error.to_string().contains(why), "{error}");
        assert!(!matches!(error, AddAgentError::Server(_)));
    }
    let (agent, generated) = add(store, spec(" Mei@Shop.example", &["demo"], 2))
        .await
        .expect("added");
    assert_eq!(
        (agent.email.as_str(), agent.max_chats, generated),
        ("mei@shop.example", 2, None)
    );
    let demo = store
        .site_by_key("demo")
        .await
        .expect("site")
        .expect("demo");
    assert_eq!(store.agent_sites(agent.id).await.expect("sites"), [demo.id]);
    let signed_in = client()
        .post(server.url("/api/login"))
        .header("origin", server.url(""))
        .form(&[
            ("email", "mei@shop.example"),
            ("password", "a long enough password"),
            ("mode", "auto"),
        ])
        .send()
        .await
        .expect("login");
    assert!(
        signed_in
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap_or_default().starts_with("kefu_session=")),
        "the new agent signs in"
    );
    // Without a password one is made up and shown once.
    let mut random = spec("lu@shop.example", &["demo"], 3);
    random.password = None;
    let (_, generated) = add(store, random).await.expect("added");
    assert_eq!(generated.map(|p| p.len()), Some(16));

    // Teams are made of the site's agents.
    let team = server::agents::add_team(store, "demo", " Billing ", &["MEI@shop.example".into()])
        .await
        .expect("team");
    assert_eq!(team.name, "Billing");
    assert_eq!(
        store.team_members(team.id).await.expect("members"),
        [agent.id]
    );
    for (site, members, why) in [
        ("demo", vec!["nobody@shop.example".to_string()], "no agent"),
        ("nope", vec![], "no site"),
    ] {
        let error = server::agents::add_team(store, site, "X", &members)
            .await
            .expect_err(why);
        assert!(error.to_string().contains(why), "{error}");
    }
    server.stop().await;
}
