//! The console's server functions and server-rendered pages over real HTTP: what an agent may
//! see is decided on the server, per site membership, on every call.

mod common;

use common::client::{Http, send_frame, visitor_hello, welcome_of};
use serde_json::Value;

/// A visitor of `key` (from `origin`) who starts a conversation with `text`.
async fn visitor_says(server: &common::TestServer, key: &str, origin: &str, text: &str) {
    let mut http = Http::new(&server.url(""), "visitor");
    http.origin = Some(origin.to_string());
    let (status, frames) = http
        .send(serde_json::json!([
            visitor_hello(key, None, &[]),
            send_frame(None, "first", text)
        ]))
        .await;
    assert_eq!(status, 200, "{frames:?}");
    assert!(frames.iter().find_map(welcome_of).is_some());
}

async fn inbox(server: &common::TestServer, cookie: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(server.url("/api/inbox"))
        .header("accept", "application/json");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("inbox");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_see_only_their_own_sites_conversations() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (a, key_a) = common::site(store, "shop-a", &["https://a.example"]).await;
    let (b, key_b) = common::site(store, "shop-b", &["https://b.example"]).await;
    let (_, ann) = common::agent_cookie(store, "ann@a.example", &[a]).await;
    let (_, bo) = common::agent_cookie(store, "bo@b.example", &[b]).await;
    visitor_says(&server, &key_a, "https://a.example", "Order A-17 is late").await;
    visitor_says(&server, &key_b, "https://b.example", "B's secret question").await;
    visitor_says(
        &server,
        &key_a,
        "https://a.example",
        "<script>alert(1)</script> hello",
    )
    .await;

    let (status, body) = inbox(&server, Some(&ann)).await;
    assert_eq!(status, 200, "{body}");
    let items: Vec<Value> = serde_json::from_str(&body).expect("json list");
    let previews: Vec<&str> = items
        .iter()
        .map(|i| i["preview"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        previews,
        ["<script>alert(1)</script> hello", "Order A-17 is late"],
        "newest first, site A only"
    );
    assert!(items.iter().all(|i| i["site"] == "shop-a"));

    let (_, body) = inbox(&server, Some(&bo)).await;
    assert!(body.contains("B's secret question"), "{body}");
    assert!(!body.contains("A-17"), "{body}");

    let (status, body) = inbox(&server, None).await;
    assert_ne!(status, 200);
    assert!(body.contains("unauthorized"), "{body}");

    // The inbox page itself arrives with the list in its HTML, text escaped.
    let page = reqwest::Client::new()
        .get(server.url("/inbox"))
        .header("cookie", &ann)
        .send()
        .await
        .expect("inbox page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("Order A-17 is late"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; hello"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(!html.contains("secret question"), "{html}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_writing_again_reopens_a_resolved_conversation() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (site, key) = common::site(store, "shop", &["https://a.example"]).await;
    let (_, ann) = common::agent_cookie(store, "ann@a.example", &[site]).await;
    let mut visitor = Http::new(&server.url(""), "visitor");
    visitor.origin = Some("https://a.example".into());
    let (_, frames) = visitor
        .send(serde_json::json!([
            visitor_hello(&key, None, &[]),
            send_frame(None, "one", "Where is my parcel?")
        ]))
        .await;
    visitor.token = frames.iter().find_map(welcome_of).map(|(token, _)| token);
    let conversation = frames
        .iter()
        .find_map(common::client::ack_of)
        .map(|(_, conversation, _)| conversation)
        .expect("ack");
    store
        .set_conversation_status(
            conversation,
            store::ConversationStatus::Resolved,
            server::now_ms(),
        )
        .await
        .expect("resolve");
    assert_eq!(
        inbox(&server, Some(&ann)).await.1,
        "[]",
        "resolved: not in the inbox"
    );

    let (status, _) = visitor
        .send(send_frame(
            Some(conversation),
            "two",
            "It still has not arrived.",
        ))
        .await;
    assert_eq!(status, 200);
    let reopened = store
        .conversation(conversation)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(reopened.status, store::ConversationStatus::Open);
    let (_, body) = inbox(&server, Some(&ann)).await;
    assert!(body.contains("It still has not arrived."), "{body}");
    server.stop().await;
}
