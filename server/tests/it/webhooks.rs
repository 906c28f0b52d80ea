//! Webhooks over real HTTP: a receiving server started by the test gets each event signed with
//! HMAC-SHA256 under its secret; one that fails is retried with backoff until it answers, one
//! that never does ends `failed`, and every attempt is in the delivery log. The receivers are
//! on 127.0.0.1, reached only where the test allows it as `[outbound] allow` would: a URL that
//! leads to this machine or a private network otherwise fails at once with the reason in the
//! log, and a redirect is not followed.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::client::send_frame;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// What the receiver was sent: headers and body of each request.
type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver answering the statuses in `answers` in turn (then 200); returns its URL and
/// what it got.
async fn receiver(answers: Vec<u16>) -> (String, Received) {
    let received: Received = Arc::default();
    let answers = Arc::new(Mutex::new(answers));
    let log = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (log, answers) = (log.clone(), answers.clone());
            async move {
                log.lock().expect("log").push((headers, body));
                let mut answers = answers.lock().expect("answers");
                let status = if answers.is_empty() {
                    200
                } else {
                    answers.remove(0)
                };
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Whether `headers` carry the HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
fn signed(headers: &HeaderMap, body: &str, secret: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{}.{body}", header(headers, "x-kefu-timestamp")).as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    header(headers, "x-kefu-signature") == format!("sha256={expected}")
}

/// Waits up to ten seconds for `done` to hold.
async fn eventually(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_reach_webhooks_signed_and_failures_are_retried_with_backoff() {
    let server = common::spawn_sqlite_with(|config| {
        config.webhook_retry_ms = 20;
        config.outbound = common::allow(&["127.0.0.0/8"]);
    })
    .await;
    let store = server.store.as_ref();
    let (site, key) = common::site(store, "shop", &["https://shop.example"]).await;
    let (flaky_url, flaky) = receiver(vec![503, 500]).await;
    let flaky_hook = store
        .create_webhook(&flaky_url, "s3cret", &["message.created"], server::now_ms())
        .await
        .expect("hook");
    // A receiver nobody listens on: every attempt fails.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let dead_hook = store
        .create_webhook(
            &format!("http://127.0.0.1:{dead_port}/hook"),
            "other",
            &["message.created"],
            server::now_ms(),
        )
        .await
        .expect("hook");

    let (visitor, visitor_id) = common::http_visitor(&server, &key, "https://shop.example").await;
    let (status, _) = visitor
        .send(json!([send_frame(None, "v1", "订单 A-17 什么时候到？")]))
        .await;
    assert_eq!(status, 200);

    // Two failures, then delivered: three requests, one delivery id, each signed.
    eventually(|| flaky.lock().expect("log").len() >= 3).await;
    let requests = flaky.lock().expect("log").clone();
    assert_eq!(requests.len(), 3, "no request after the 200");
    let delivery = header(&requests[0].0, "x-kefu-delivery").to_owned();
    for (headers, body) in &requests {
        assert_eq!(header(headers, "x-kefu-event"), "message.created");
        assert_eq!(
            header(headers, "x-kefu-delivery"),
            delivery,
            "retries keep the id"
        );
        assert!(signed(headers, body, "s3cret"), "signature of {body}");
        assert!(!signed(headers, body, "wrong"));
    }
    let event: Value = serde_json::from_str(&requests[0].1).expect("json");
    assert_eq!(event["event"], "message.created");
    assert_eq!(event["site_id"], site.0);
    assert_eq!(event["visitor_id"], visitor_id.0);
    assert_eq!(event["message"]["body"], "订单 A-17 什么时候到？");
    assert_eq!(event["message"]["author"], "visitor");

    let log = || async {
        (
            store
                .webhook_deliveries(flaky_hook.id, 10)
                .await
                .expect("log"),
            store
                .webhook_deliveries(dead_hook.id, 10)
                .await
                .expect("log"),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (flaky_log, dead_log) = log().await;
        let done = flaky_log
            .first()
            .is_some_and(|d| d.state == store::DeliveryState::Delivered)
            && dead_log
                .first()
                .is_some_and(|d| d.state == store::DeliveryState::Failed);
        if done {
            assert_eq!(flaky_log.len(), 1);
            assert_eq!(
                (flaky_log[0].attempts, flaky_log[0].last_status),
                (3, Some(200))
            );
            assert_eq!(dead_log[0].attempts, server::webhooks::MAX_ATTEMPTS);
            assert_eq!(dead_log[0].last_status, None);
            assert!(dead_log[0].last_error.is_some());
            break;
        }
        assert!(Instant::now() < deadline, "{flaky_log:?} {dead_log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_to_this_machine_or_a_private_network_are_refused_and_redirects_not_followed() {
    let (inside_url, inside) = receiver(vec![]).await;
    let inside_port = inside_url
        .trim_end_matches("/hook")
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    // A public-looking receiver the configuration allows, which redirects to the inside one.
    let location = inside_url.clone();
    let redirector = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [("location", location)]) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let redirect_port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, redirector).await });
    let allowed = format!("public.example:{redirect_port}");
    let server = common::spawn_sqlite_wired(
        |config| config.webhook_retry_ms = 20,
        |services| {
            services.outbound = common::outbound(
                &[allowed.as_str()],
                &[
                    ("public.example", "127.0.0.1"),
                    ("internal.example", "127.0.0.1"),
                ],
            );
        },
    )
    .await;
    let store = server.store.as_ref();
    let (_, key) = common::site(store, "shop", &["https://shop.example"]).await;
    let mut refused = Vec::new();
    for url in [
        inside_url.clone(),
        format!("http://internal.example:{inside_port}/hook"),
        "http://10.0.0.1/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://[::ffff:127.0.0.1]:{inside_port}/hook"),
    ] {
        let hook = store
            .create_webhook(&url, "s3cret", &["message.created"], server::now_ms())
            .await
            .expect("hook");
        refused.push((url, hook.id));
    }
    let redirecting = store
        .create_webhook(
            &format!("http://public.example:{redirect_port}/hook"),
            "s3cret",
            &["message.created"],
            server::now_ms(),
        )
        .await
        .expect("hook");

    let (visitor, _) = common::http_visitor(&server, &key, "https://shop.example").await;
    let (status, _) = visitor.send(json!([send_frame(None, "v1", "hello")])).await;
    assert_eq!(status, 200);

    // Each refused one fails at its first attempt, saying why; the redirect is an answer.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut logs = Vec::new();
        for (url, id) in &refused {
            logs.push((url, store.webhook_deliveries(*id, 10).await.expect("log")));
        }
        let redirected = store
            .webhook_deliveries(redirecting.id, 10)
            .await
            .expect("log");
        let done = logs.iter().all(|(_, log)| {
            log.first()
                .is_some_and(|d| d.state == store::DeliveryState::Failed)
        }) && redirected.first().is_some_and(|d| d.attempts >= 1);
        if done {
            for (url, log) in &logs {
                let delivery = &log[0];
                assert_eq!(
                    (delivery.attempts, delivery.last_status),
                    (1, None),
                    "{url}"
                );
                let error = delivery.last_error.as_deref().unwrap_or_default();
                assert!(error.starts_with("refused:"), "{url}: {error}");
                assert!(!error.contains("127.0.0.1"), "no address told: {error}");
            }
            assert_eq!(redirected[0].last_status, Some(307));
            break;
        }
        assert!(Instant::now() < deadline, "{logs:?} {redirected:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        inside.lock().expect("log").is_empty(),
        "nothing reached the inside"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_added_in_the_console_after_messages_flowed_gets_the_next_one() {
    let server = common::spawn_sqlite_with(|config| {
        config.outbound = common::allow(&["127.0.0.0/8"]);
    })
    .await;
    let store = server.store.as_ref();
    let (_, key) = common::site(store, "shop", &["https://shop.example"]).await;
    let (_, boss) = common::admin_cookie(store, "boss@shop.example").await;
    let (visitor, _) = common::http_visitor(&server, &key, "https://shop.example").await;
    // Nobody listens yet: the node keeps a copy saying so.
    let (status, _) = visitor
        .send(json!([send_frame(None, "v1", "before")]))
        .await;
    assert_eq!(status, 200);

    let (url, received) = receiver(vec![]).await;
    let (status, body) = common::server_fn(
        &server,
        &boss,
        "/api/admin/webhooks/add",
        &[("url", url.as_str()), ("message_created", "true")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = visitor.send(json!([send_frame(None, "v2", "after")])).await;
    assert_eq!(status, 200);

    eventually(|| !received.lock().expect("log").is_empty()).await;
    let requests = received.lock().expect("log").clone();
    let event: Value = serde_json::from_str(&requests[0].1).expect("json");
    assert_eq!(event["message"]["body"], "after");
}
