//! Files in messages over real sockets: uploads by visitors and agents, the site's type and size
//! rules, who may send an uploaded file, and the headers that keep a download inert.

use crate::common;

use common::client::{Http, Ws, ack_of, agent_hello, error_of, send_frame};
use protocol::{Attachment, ConversationId, ServerFrame, SiteId};
use serde_json::{Value, json};

const ORIGIN: &str = "https://shop.example";

/// The eight-byte PNG signature and then some bytes: enough for Kefu's check.
fn png(len: usize) -> Vec<u8> {
    let mut data = b"\x89PNG\r\n\x1a\n".to_vec();
    data.extend((0..len.saturating_sub(8)).map(|i| (i % 251) as u8));
    data
}

async fn site_with(server: &common::TestServer, key: &str, settings: Value) -> SiteId {
    server
        .store
        .create_site(store::NewSite {
            public_key: key.to_string(),
            name: key.to_string(),
            allowed_origins: vec![ORIGIN.to_string()],
            widget_settings: settings,
            created_at: server::now_ms(),
        })
        .await
        .expect("site")
        .id
}

/// POSTs a file to an upload endpoint as `http` (its token or cookie); returns the status and
/// the JSON answer.
async fn upload(http: &Http, query: &str, content_type: &str, data: Vec<u8>) -> (u16, Value) {
    let mut request = http
        .client
        .post(format!("{}/http/{}/upload?{query}", http.base, http.role))
        // Visitors upload from the shop's page, agents from the console's.
        .header("origin", http.origin.as_deref().unwrap_or(ORIGIN))
        .header("content-type", content_type)
        .body(data);
    if let Some(token) = &http.token {
        request = request.header(protocol::transport::VISITOR_TOKEN_HEADER, token);
    }
    if let Some(cookie) = &http.cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("upload");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The visitor says hello, which opens the conversation their files go into; its id.
async fn open_conversation(visitor: &Http) -> ConversationId {
    let (status, frames) = visitor
        .send(json!([send_frame(None, "hello", "hello")]))
        .await;
    assert_eq!(status, 200);
    frames.iter().find_map(ack_of).expect("ack").1
}

fn code_of(answer: &Value) -> &str {
    answer[0]["code"].as_str().unwrap_or_default()
}

fn with_attachment(mut send: Value, id: &str) -> Value {
    send["attachment"] = id.into();
    send
}

fn attachment_of(frame: &ServerFrame) -> Option<Attachment> {
    match frame {
        ServerFrame::Message(message) => message.attachment.clone(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_picture_and_a_document_travel_both_ways() {
    let server = common::spawn_sqlite().await;
    let site_id = site_with(&server, "shop", json!({})).await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[site_id]).await;
    let mut agent = Ws::connect(&server.url(""), "/ws/agent", None, Some(&cookie)).await;
    agent.send_json(agent_hello(&[])).await;
    let (visitor, _) = common::http_visitor(&server, "shop", ORIGIN).await;
    open_conversation(&visitor).await;

    // The visitor's picture: the path is dropped from the name, the bytes come back intact.
    let picture = png(3000);
    let (status, answer) = upload(
        &visitor,
        "name=..%2F..%2Fparcel.png",
        "image/png",
        picture.clone(),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let uploaded: Attachment = serde_json::from_value(answer).expect("attachment");
    assert_eq!(uploaded.name, "parcel.png");
    assert_eq!(uploaded.size, 3000);
    assert_eq!(uploaded.id.len(), 32);

    let (status, frames) = visitor
        .send(json!([with_attachment(
            send_frame(None, "v1", ""),
            &uploaded.id
        )]))
        .await;
    assert_eq!(status, 200);
    let (_, conversation_id, seq) = frames.iter().find_map(ack_of).expect("ack");
    assert_eq!(seq, 2, "after the hello");
    let seen = agent.until(attachment_of).await;
    assert_eq!(seen, uploaded, "the agent gets the file's description");

    let response = reqwest::get(server.url(&format!("/attachments/{}", uploaded.id)))
        .await
        .expect("download");
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(header("content-disposition"), "inline");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-security-policy").contains("sandbox"));
    assert_eq!(header("cross-origin-resource-policy"), "cross-origin");
    assert_eq!(response.bytes().await.expect("bytes").to_vec(), picture);

    // The agent answers with a PDF named in Chinese; the visitor's poll carries it, and the
    // download is an attachment, never rendered on Kefu's origin.
    let mut agent_http = Http::new(&server.url(""), "agent");
    agent_http.cookie = Some(cookie.clone());
    let pdf = b"%PDF-1.7\n1 0 obj\n".to_vec();
    let (status, answer) = upload(
        &agent_http,
        &format!("conversation={conversation_id}&name=%E5%8F%91%E7%A5%A8.pdf"),
        "application/pdf",
        pdf.clone(),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let invoice: Attachment = serde_json::from_value(answer).expect("attachment");
    assert_eq!(invoice.name, "发票.pdf");
    agent
        .send_json(with_attachment(
            send_frame(Some(conversation_id), "a1", "Your invoice"),
            &invoice.id,
        ))
        .await;
    agent.until(ack_of).await;
    let (_, frames) = visitor.poll(&[(conversation_id, 2)], 5).await;
    let message = frames
        .iter()
        .find_map(|f| match f {
            ServerFrame::Message(m) => Some(m.clone()),
            _ => None,
        })
        .expect("the agent's message");
    assert_eq!(message.body, "Your invoice");
    assert_eq!(message.attachment, Some(invoice.clone()));
    let response = reqwest::get(server.url(&format!("/attachments/{}", invoice.id)))
        .await
        .expect("download");
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"__.pdf\"; filename*=UTF-8''%E5%8F%91%E7%A5%A8.pdf"
    );
    assert_eq!(response.bytes().await.expect("bytes").to_vec(), pdf);
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_are_held_to_the_sites_rules() {
    let server = common::spawn_sqlite().await;
    site_with(
        &server,
        "strict",
        json!({"attachments": {"max_bytes": 1000, "types": ["image/png", "image/svg+xml"]}}),
    )
    .await;
    let (mut visitor, _) = common::http_visitor(&server, "strict", ORIGIN).await;
    open_conversation(&visitor).await;

    // The widget learns the rules as they apply: SVG (unchecked, can carry script) is dropped.
    let site: Value = reqwest::Client::new()
        .get(server.url("/http/visitor/site?key=strict"))
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("site")
        .json()
        .await
        .expect("json");
    assert_eq!(
        site["attachments"],
        json!({"max_bytes": 1000, "types": ["image/png"]})
    );

    let cases: [(&str, &str, Vec<u8>, u16, &str); 6] = [
        (
            "name=a.pdf",
            "application/pdf",
            b"%PDF-1.7".to_vec(),
            415,
            "unsupported_type",
        ),
        (
            "name=a.svg",
            "image/svg+xml",
            b"<svg onload=alert(1)>".to_vec(),
            415,
            "unsupported_type",
        ),
        (
            "name=a.png",
            "image/png",
            b"<svg onload=alert(1)>".to_vec(),
            415,
            "unsupported_type",
        ),
        ("name=a.png", "image/png", png(1001), 413, "too_large"),
        ("name=a.png", "image/png", Vec::new(), 400, "bad_request"),
        ("", "image/png", png(100), 400, "bad_request"),
    ];
    for (query, content_type, data, status, code) in cases {
        let (got, answer) = upload(&visitor, query, content_type, data).await;
        assert_eq!(
            (got, code_of(&answer)),
            (status, code),
            "{query} {content_type}"
        );
    }
    let (status, answer) = upload(&visitor, "name=ok.png", "image/png; charset=x", png(1000)).await;
    assert_eq!(status, 201, "exactly the limit is accepted: {answer}");

    visitor.token = Some("v1.1.forged".into());
    let (status, answer) = upload(&visitor, "name=a.png", "image/png", png(100)).await;
    assert_eq!((status, code_of(&answer)), (401, "bad_token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_uploader_may_send_a_file_and_ids_cannot_be_guessed() {
    let server = common::spawn_sqlite().await;
    let shop = site_with(&server, "shop", json!({})).await;
    let other = site_with(&server, "other", json!({})).await;
    let (alice, _) = common::http_visitor(&server, "shop", ORIGIN).await;
    let (bob, _) = common::http_visitor(&server, "shop", ORIGIN).await;
    let conversation_id = open_conversation(&alice).await;
    let (_, answer) = upload(&alice, "name=a.png", "image/png", png(64)).await;
    let alices: Attachment = serde_json::from_value(answer).expect("attachment");

    // Another visitor of the same site cannot send Alice's file, nor a made-up one.
    for id in [alices.id.as_str(), "0123456789abcdef0123456789abcdef"] {
        let (_, frames) = bob
            .send(json!([with_attachment(send_frame(None, "b1", ""), id)]))
            .await;
        assert_eq!(
            frames.iter().find_map(error_of).as_deref(),
            Some("not_found")
        );
    }
    // Without a file, an empty body is still refused.
    let (_, frames) = bob.send(json!([send_frame(None, "b2", " ")])).await;
    assert_eq!(
        frames.iter().find_map(error_of).as_deref(),
        Some("bad_request")
    );

    // Alice's conversation: an agent of another site cannot upload into it, and an agent of
    // the site cannot send the visitor's file as their own.
    let (_, outsider) =
        common::agent_cookie(server.store.as_ref(), "out@other.example", &[other]).await;
    let mut outsider_http = Http::new(&server.url(""), "agent");
    outsider_http.cookie = Some(outsider);
    let (status, answer) = upload(
        &outsider_http,
        &format!("conversation={conversation_id}&name=x.png"),
        "image/png",
        png(64),
    )
    .await;
    assert_eq!((status, code_of(&answer)), (404, "not_found"));
    let (_, member) =
        common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[shop]).await;
    let mut member_http = Http::new(&server.url(""), "agent");
    member_http.cookie = Some(member);
    let (_, frames) = member_http
        .send(json!([with_attachment(
            send_frame(Some(conversation_id), "m1", ""),
            &alices.id
        )]))
        .await;
    assert_eq!(
        frames.iter().find_map(error_of).as_deref(),
        Some("not_found")
    );
    let (status, _) = upload(&member_http, "name=x.png", "image/png", png(64)).await;
    assert_eq!(status, 400, "an agent's upload names its conversation");

    for path in [
        "0123456789abcdef0123456789abcdef",
        "..%2F..%2Fetc%2Fpasswd",
        "short",
    ] {
        let response = reqwest::get(server.url(&format!("/attachments/{path}")))
            .await
            .expect("download");
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_uploads_only_into_an_open_conversation_within_quota_and_unsent_files_go() {
    let server = common::spawn_sqlite_with(|config| {
        config.uploads.unsent_after = std::time::Duration::from_millis(300);
        config.uploads.visitor_quota_bytes = 1_000;
    })
    .await;
    site_with(&server, "shop", json!({})).await;
    let (visitor, _) = common::http_visitor(&server, "shop", ORIGIN).await;

    // No conversation yet: nothing to upload into.
    let (status, answer) = upload(&visitor, "name=a.png", "image/png", png(64)).await;
    assert_eq!((status, code_of(&answer)), (409, "conflict"));

    let conversation = open_conversation(&visitor).await;
    let (status, answer) = upload(&visitor, "name=sent.png", "image/png", png(400)).await;
    assert_eq!(status, 201, "{answer}");
    let sent: Attachment = serde_json::from_value(answer).expect("attachment");
    let (_, frames) = visitor
        .send(json!([with_attachment(
            send_frame(Some(conversation), "file", ""),
            &sent.id
        )]))
        .await;
    assert!(frames.iter().find_map(ack_of).is_some(), "{frames:?}");
    let (status, answer) = upload(&visitor, "name=unsent.png", "image/png", png(400)).await;
    assert_eq!(status, 201, "{answer}");
    let unsent: Attachment = serde_json::from_value(answer).expect("attachment");

    // The visitor's quota (1,000 bytes) has room for 800, not 1,200.
    let (status, answer) = upload(&visitor, "name=more.png", "image/png", png(400)).await;
    assert_eq!((status, code_of(&answer)), (413, "too_large"), "{answer}");

    // The unsent upload goes after its time; the sent one stays.
    let gone = async {
        loop {
            if server
                .store
                .attachment(&unsent.id)
                .await
                .expect("read")
                .is_none()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(common::client::WAIT, gone)
        .await
        .expect("the unsent upload is deleted");
    assert!(
        server
            .store
            .attachment(&sent.id)
            .await
            .expect("read")
            .is_some(),
        "a sent file is kept"
    );
    // With the unsent one gone there is room again.
    let (status, answer) = upload(&visitor, "name=again.png", "image/png", png(400)).await;
    assert_eq!(status, 201, "{answer}");
    server.stop().await;
}
