//! Per-address budgets over real sockets: one address that keeps making visitors,
//! conversations, leave-messages and uploads is refused with 429 and a wait, while a second
//! address is served as usual (`docs/protocol.md`, section 7).

use crate::common;

use common::client::{Http, send_frame, visitor_hello};
use protocol::{ServerFrame, VisitorId};
use serde_json::{Value, json};
use server::realtime::budgets::BudgetLimits;
use std::net::IpAddr;

const ORIGIN: &str = "https://shop.example";

/// An HTTP visitor client whose requests leave from `source` (any of 127.0.0.0/8).
fn from(server: &common::TestServer, source: &str) -> Http {
    let mut http = Http::new(&server.url(""), "visitor");
    http.origin = Some(ORIGIN.into());
    http.client = reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().expect("address"))
        .build()
        .expect("client");
    http
}

/// A hello without a token from `http`'s address: the status, and the visitor's token and id
/// when one was made.
async fn new_visitor(http: &mut Http) -> (u16, Option<(String, VisitorId)>) {
    http.token = None;
    let (status, frames) = http.send(json!([visitor_hello("shop", None, &[])])).await;
    let made = frames.iter().find_map(common::client::welcome_of);
    http.token = made.as_ref().map(|(token, _)| token.clone());
    (status, made)
}

/// The `rate_limited` refusal in a batch's answer, with its wait.
fn refused_wait(frames: &[ServerFrame]) -> Option<u32> {
    frames.iter().find_map(|frame| match frame {
        ServerFrame::Error {
            code: protocol::ErrorCode::RateLimited,
            retry_after_ms,
            ..
        } => *retry_after_ms,
        _ => None,
    })
}

/// POSTs a widget form or file with the visitor's token; the status and `Retry-After`.
async fn post(http: &Http, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Option<u64>) {
    let response = http
        .client
        .post(format!("{}{path}", http.base))
        .header("origin", ORIGIN)
        .header("content-type", content_type)
        .header(
            protocol::transport::VISITOR_TOKEN_HEADER,
            http.token.as_deref().unwrap_or_default(),
        )
        .body(body)
        .send()
        .await
        .expect("post");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    (response.status().as_u16(), retry_after)
}

fn leave_message() -> Vec<u8> {
    json!({"contact": "mei@example.com", "body": "call me"})
        .to_string()
        .into_bytes()
}

fn png() -> Vec<u8> {
    let mut data = b"\x89PNG\r\n\x1a\n".to_vec();
    data.extend([0u8; 64]);
    data
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_past_its_budgets_is_refused_while_another_is_served() {
    let server = common::spawn_sqlite_with(|config| {
        config.budgets = BudgetLimits {
            visitors_per_hour: 3,
            conversations_per_hour: 2,
            leave_messages_per_hour: 2,
            uploads_per_hour: 2,
            ..BudgetLimits::default()
        }
    })
    .await;
    common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let mut busy = from(&server, "127.0.0.2");
    let mut other = from(&server, "127.0.0.3");

    // New visitors: three, then a 429 with the wait; the other address is not affected.
    let mut tokens = Vec::new();
    let mut last_id = VisitorId(0);
    for _ in 0..3 {
        let (status, made) = new_visitor(&mut busy).await;
        assert_eq!(status, 200);
        let (token, id) = made.expect("a visitor");
        tokens.push(token);
        last_id = id;
    }
    let (status, made) = new_visitor(&mut busy).await;
    assert_eq!((status, made), (429, None));
    let (status, made) = new_visitor(&mut other).await;
    assert_eq!(status, 200);
    assert_eq!(
        made.expect("a visitor").1,
        VisitorId(last_id.0 + 1),
        "the refused hello stored no visitor"
    );

    // New conversations: two, then `rate_limited` with the wait for the third visitor.
    for (n, token) in tokens.iter().enumerate() {
        busy.token = Some(token.clone());
        let (status, frames) = busy
            .send(json!([send_frame(None, &format!("c{n}"), "hello")]))
            .await;
        assert_eq!(status, 200);
        let refused = refused_wait(&frames);
        if n < 2 {
            assert_eq!(refused, None, "{frames:?}");
        } else {
            assert!(refused.is_some_and(|wait| wait > 0), "{frames:?}");
        }
    }
    let (_, frames) = other.send(json!([send_frame(None, "o", "hello")])).await;
    assert_eq!(refused_wait(&frames), None, "{frames:?}");

    // Leave-messages and uploads: two each, then 429 with `Retry-After`.
    busy.token = Some(tokens[0].clone());
    for (path, content_type, body) in [
        (
            "/http/visitor/leave-message",
            "application/json",
            leave_message(),
        ),
        ("/http/visitor/upload?name=a.png", "image/png", png()),
    ] {
        for _ in 0..2 {
            let (status, _) = post(&busy, path, content_type, body.clone()).await;
            assert!((200..300).contains(&status), "{path}: {status}");
        }
        let (status, retry_after) = post(&busy, path, content_type, body.clone()).await;
        assert_eq!(status, 429, "{path}");
        assert!(
            retry_after.is_some_and(|secs| secs > 0),
            "{path}: {retry_after:?}"
        );
        let (status, _) = post(&other, path, content_type, body).await;
        assert!(
            (200..300).contains(&status),
            "{path} from another address: {status}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_websocket_hello_says_when_to_come_back() {
    let server = common::spawn_sqlite_with(|config| {
        config.budgets = BudgetLimits {
            hellos_per_hour: 2,
            ..BudgetLimits::default()
        }
    })
    .await;
    common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let source: IpAddr = "127.0.0.4".parse().expect("address");
    for _ in 0..2 {
        let mut ws = common::client::Ws::connect_from(
            &server.url(""),
            "/ws/visitor",
            source,
            &[("origin", ORIGIN)],
        )
        .await;
        ws.send_json(visitor_hello("shop", None, &[])).await;
        assert!(matches!(ws.next().await, ServerFrame::Welcome(_)));
    }
    let mut ws = common::client::Ws::connect_from(
        &server.url(""),
        "/ws/visitor",
        source,
        &[("origin", ORIGIN)],
    )
    .await;
    ws.send_json(visitor_hello("shop", None, &[])).await;
    let (frames, code) = ws
        .closed_within(common::client::WAIT)
        .await
        .expect("the connection closes");
    assert_eq!(code, 4429);
    let wait: Vec<Value> = frames
        .iter()
        .map(|frame| serde_json::to_value(frame).expect("json"))
        .collect();
    assert_eq!(wait[0]["code"], "rate_limited", "{wait:?}");
    assert!(wait[0]["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0));
    server.stop().await;
}
