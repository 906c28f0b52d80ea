//! The console's server functions and server-rendered pages over real HTTP: what an agent may
//! see is decided on the server, per site membership, on every call.

use crate::common;

use common::client::{Http, ack_of, error_of, message_of, send_frame, visitor_hello, welcome_of};
use protocol::{ConversationId, ServerFrame};
use serde_json::{Value, json};

/// A visitor of `key` (from `origin`) who starts a conversation with `text`: their HTTP client
/// (holding their token) and the conversation.
async fn visitor_says(
    server: &common::TestServer,
    key: &str,
    origin: &str,
    text: &str,
) -> (Http, ConversationId) {
    let mut http = Http::new(&server.url(""), "visitor");
    http.origin = Some(origin.to_string());
    let (status, frames) = http
        .send(serde_json::json!([
            visitor_hello(key, None, &[]),
            send_frame(None, "first", text)
        ]))
        .await;
    assert_eq!(status, 200, "{frames:?}");
    http.token = frames.iter().find_map(welcome_of).map(|(token, _)| token);
    let conversation = frames
        .iter()
        .find_map(ack_of)
        .map(|(_, conversation, _)| conversation)
        .expect("ack");
    (http, conversation)
}

/// The newest message of each conversation in an inbox answer.
fn newest_words(threads: &[Value]) -> Vec<String> {
    threads
        .iter()
        .filter_map(|t| t["recent"].as_array()?.last()?["body"].as_str())
        .map(str::to_string)
        .collect()
}

async fn inbox(server: &common::TestServer, cookie: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(server.url("/api/inbox"))
        .header("origin", server.url(""))
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
    let data: Value = serde_json::from_str(&body).expect("json");
    let threads = data["threads"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        newest_words(&threads),
        ["<script>alert(1)</script> hello", "Order A-17 is late"],
        "newest first, site A only"
    );
    assert!(threads.iter().all(|t| t["site_id"] == a.0));
    assert_eq!(data["sites"][a.to_string()], "shop-a", "{data}");

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

/// POSTs a rating as the visitor.
async fn rate(visitor: &Http, body: Value) -> (u16, Value) {
    visitor
        .post_text("/http/visitor/rating", &body.to_string())
        .await
}

/// Bodies and authors of the system messages among `frames`.
fn system_records(frames: &[ServerFrame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message(m) if m.author == protocol::Author::System => Some(m.body.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snoozed_conversation_wakes_on_time_or_when_the_visitor_writes() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (site, key) = common::site(store, "shop", &["https://a.example"]).await;
    let (_, ann) = common::agent_cookie(store, "ann@a.example", &[site]).await;
    let (visitor, conversation) =
        visitor_says(&server, &key, "https://a.example", "Call me back tomorrow").await;
    let mut agent = Http::new(&server.url(""), "agent");
    agent.cookie = Some(ann.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let snooze = |client_id: &str, status: &str, until: i64| {
        json!({"type": "set_conversation_status", "conversation_id": conversation,
            "client_id": client_id, "status": status, "until": until})
    };

    // Not in the past, not beyond 30 days, only with pending.
    for (client_id, status, until) in [
        ("past", "pending", now - 1_000),
        ("far", "pending", now + 31 * 86_400_000),
        ("resolved", "resolved", now + 60_000),
    ] {
        let (_, frames) = agent.send(json!([snooze(client_id, status, until)])).await;
        assert_eq!(
            frames.iter().find_map(error_of).as_deref(),
            Some("bad_request"),
            "{client_id}: {frames:?}"
        );
    }
    assert_eq!(
        store
            .conversation(conversation)
            .await
            .expect("read")
            .map(|c| c.status),
        Some(store::ConversationStatus::Open),
        "a refused snooze changes nothing"
    );

    // Snoozed for a moment: pending, with its time, in the inbox too.
    let until = now + 1_500;
    let (status, frames) = agent.send(json!([snooze("nap-1", "pending", until)])).await;
    assert_eq!(status, 200);
    assert_eq!(
        frames.iter().find_map(ack_of),
        Some(("nap-1".to_string(), conversation, 2))
    );
    let (_, body) = inbox(&server, Some(&ann)).await;
    let data: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(data["threads"][0]["status"], "pending", "{data}");
    assert_eq!(data["threads"][0]["snoozed_until"], json!(until), "{data}");

    // The server reopens it on time: the visitor (like every client) hears the snooze, then the
    // wake, a record with no agent. Long polls until it comes; no clock in the test.
    let mut records = Vec::new();
    let mut seen = 1;
    while !records
        .iter()
        .any(|r: &ServerFrame| matches!(r, ServerFrame::Message(m) if m.body == "open"))
    {
        let (status, frames) = visitor.poll(&[(conversation, seen)], 20).await;
        assert_eq!(status, 200, "{frames:?}");
        for frame in frames {
            if let ServerFrame::Message(m) = &frame {
                seen = seen.max(m.seq);
                records.push(frame);
            }
        }
    }
    let bodies: Vec<(String, Option<i64>)> = records
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message(m) => Some((m.body.clone(), m.agent_id.map(|a| a.0))),
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0].0, format!("pending until {until}"));
    assert_eq!(bodies[1], ("open".to_string(), None));
    let woken = store
        .conversation(conversation)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(
        (woken.status, woken.snoozed_until),
        (store::ConversationStatus::Open, None)
    );

    // Snoozed till tomorrow, the visitor writes first: their message, then the reopening.
    let (_, frames) = agent
        .send(json!([snooze("nap-2", "pending", now + 86_400_000)]))
        .await;
    let (_, _, snoozed_seq) = frames.iter().find_map(ack_of).expect("ack");
    let (status, _) = visitor
        .send(send_frame(
            Some(conversation),
            "again-1",
            "Actually, now please",
        ))
        .await;
    assert_eq!(status, 200);
    let (_, frames) = visitor.poll(&[(conversation, snoozed_seq)], 0).await;
    let bodies: Vec<String> = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message(m) => Some(m.body.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, ["Actually, now please", "open"]);
    let reopened = store
        .conversation(conversation)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(
        (reopened.status, reopened.snoozed_until),
        (store::ConversationStatus::Open, None)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_resolves_the_visitor_rates_and_writing_again_reopens() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (site, key) = common::site(store, "shop", &["https://a.example"]).await;
    let (ann_id, ann) = common::agent_cookie(store, "ann@a.example", &[site]).await;
    let (visitor, conversation) =
        visitor_says(&server, &key, "https://a.example", "Where is my parcel?").await;

    // Not resolved yet: nothing to rate.
    let (status, body) = rate(
        &visitor,
        json!({"conversation_id": conversation, "score": 5}),
    )
    .await;
    assert_eq!((status, body[0]["code"].as_str()), (409, Some("conflict")));

    // The agent resolves it; a resend of the same frame changes nothing more.
    let mut agent = Http::new(&server.url(""), "agent");
    agent.cookie = Some(ann.clone());
    let resolve = json!({"type": "set_conversation_status", "conversation_id": conversation,
        "client_id": "resolve-1", "status": "resolved"});
    for _ in 0..2 {
        let (status, frames) = agent.send(json!([resolve.clone()])).await;
        assert_eq!(status, 200);
        assert_eq!(
            frames.iter().find_map(ack_of),
            Some(("resolve-1".to_string(), conversation, 2))
        );
    }
    let (_, body) = inbox(&server, Some(&ann)).await;
    let data: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        data["threads"][0]["status"], "resolved",
        "resolved: in the inbox's resolved tab: {data}"
    );
    assert_eq!(data["threads"].as_array().map(Vec::len), Some(1), "{data}");

    // The visitor learns it in order, from the transcript, over either transport.
    let (_, frames) = visitor.poll(&[(conversation, 1)], 0).await;
    assert_eq!(system_records(&frames), ["resolved"]);
    let Some(ServerFrame::Message(record)) = frames.first() else {
        panic!("{frames:?}");
    };
    assert_eq!(record.agent_id, Some(ann_id));

    // Now the visitor may rate it, within the rules.
    for (bad, status, code) in [
        (
            json!({"conversation_id": conversation, "score": 0}),
            400,
            "bad_request",
        ),
        (
            json!({"conversation_id": conversation, "score": 5, "comment": "x".repeat(1001)}),
            413,
            "too_large",
        ),
        (
            json!({"conversation_id": conversation.0 + 99, "score": 5}),
            404,
            "not_found",
        ),
        (
            json!({"conversation_id": conversation, "stars": 5}),
            400,
            "bad_request",
        ),
    ] {
        let (got, body) = rate(&visitor, bad).await;
        assert_eq!((got, body[0]["code"].as_str()), (status, Some(code)));
    }
    let (status, _) = rate(
        &visitor,
        json!({"conversation_id": conversation, "score": 4, "comment": "  Quick, thanks  "}),
    )
    .await;
    assert_eq!(status, 204);
    let rating = store
        .rating(conversation)
        .await
        .expect("read")
        .expect("rated");
    assert_eq!(
        (rating.score, rating.comment.as_deref()),
        (4, Some("Quick, thanks"))
    );
    // Agents see it with the conversation.
    let id = conversation.to_string();
    let (status, body) = call(&server, "visitor_profile", Some(&ann), &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    let card: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(card["rating"], json!([4, "Quick, thanks"]), "{card}");

    // Writing again reopens it: the visitor's message, then the record of the reopening.
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
    let (_, frames) = visitor.poll(&[(conversation, 2)], 0).await;
    let seqs: Vec<(i64, String)> = frames
        .iter()
        .filter_map(message_of)
        .map(|(_, seq, body)| (seq, body))
        .collect();
    assert_eq!(
        seqs,
        [
            (3, "It still has not arrived.".to_string()),
            (4, "open".to_string())
        ]
    );
    // The inbox has it again, with the status record after the words.
    let (_, body) = inbox(&server, Some(&ann)).await;
    let data: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(data["threads"][0]["status"], "open", "{data}");
    assert_eq!(
        data["threads"][0]["recent"][2]["body"],
        "It still has not arrived."
    );

    // Visitors cannot change a status.
    let (_, frames) = visitor.send(json!([resolve])).await;
    assert_eq!(
        frames.iter().find_map(error_of).as_deref(),
        Some("bad_request")
    );
    server.stop().await;
}

/// Calls a console server function with a form body as the agent of `cookie` (if any).
async fn call(
    server: &common::TestServer,
    endpoint: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(server.url(&format!("/api/{endpoint}")))
        .header("origin", server.url(""))
        .header("accept", "application/json")
        .form(form);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("server function");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn canned_replies_stay_on_their_site_and_personal_ones_with_their_agent() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (a, _) = common::site(store, "shop-a", &["https://a.example"]).await;
    let (b, _) = common::site(store, "shop-b", &["https://b.example"]).await;
    let (_, ann) = common::agent_cookie(store, "ann@a.example", &[a]).await;
    let (_, bo) = common::agent_cookie(store, "bo@a.example", &[a]).await;
    let a_id = a.to_string();
    let b_id = b.to_string();

    let (status, body) = call(
        &server,
        "canned_replies/add",
        Some(&ann),
        &[
            ("site_id", &a_id),
            ("shortcut", "/Refund"),
            ("body", "Refunds take 3–5 days."),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(
        &server,
        "canned_replies/add",
        Some(&ann),
        &[
            ("site_id", &a_id),
            ("shortcut", "hi"),
            ("body", "Hi, I'm Ann!"),
            ("personal", "true"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    // Refused: another site, a bad shortcut, an empty text, no session.
    for (cookie, form, expected) in [
        (
            Some(&ann),
            vec![("site_id", b_id.as_str()), ("shortcut", "x"), ("body", "x")],
            "not_found",
        ),
        (
            Some(&ann),
            vec![
                ("site_id", a_id.as_str()),
                ("shortcut", "two words"),
                ("body", "x"),
            ],
            "invalid",
        ),
        (
            Some(&ann),
            vec![
                ("site_id", a_id.as_str()),
                ("shortcut", "x"),
                ("body", "  "),
            ],
            "invalid",
        ),
        (
            None,
            vec![("site_id", a_id.as_str()), ("shortcut", "x"), ("body", "x")],
            "unauthorized",
        ),
    ] {
        let (status, body) = call(
            &server,
            "canned_replies/add",
            cookie.map(String::as_str),
            &form,
        )
        .await;
        assert_ne!(status, 200, "{form:?}");
        assert!(body.contains(expected), "{form:?}: {body}");
    }

    let list = |body: &str| -> Vec<(String, bool)> {
        let items: Vec<Value> = serde_json::from_str(body).expect("json list");
        items
            .iter()
            .map(|i| {
                (
                    i["shortcut"].as_str().unwrap_or_default().to_string(),
                    i["personal"] == true,
                )
            })
            .collect()
    };
    let (_, body) = call(&server, "canned_replies", Some(&ann), &[]).await;
    assert_eq!(
        list(&body),
        [("hi".to_string(), true), ("refund".to_string(), false)]
    );
    let (_, body) = call(&server, "canned_replies", Some(&bo), &[]).await;
    let items = list(&body);
    assert_eq!(
        items,
        [("refund".to_string(), false)],
        "Ann's own stays hers"
    );

    // Bo cannot delete Ann's own reply, but may delete the shared one.
    let ids: Vec<Value> =
        serde_json::from_str(&call(&server, "canned_replies", Some(&ann), &[]).await.1)
            .expect("json");
    let own = ids[0]["id"].to_string();
    let shared = ids[1]["id"].to_string();
    let (status, body) = call(&server, "canned_replies/delete", Some(&bo), &[("id", &own)]).await;
    assert!(status != 200 && body.contains("not_found"), "{body}");
    let (status, _) = call(
        &server,
        "canned_replies/delete",
        Some(&bo),
        &[("id", &shared)],
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = call(&server, "canned_replies", Some(&ann), &[]).await;
    assert_eq!(list(&body), [("hi".to_string(), true)]);

    // The page renders the list on the server.
    let page = reqwest::Client::new()
        .get(server.url("/canned"))
        .header("cookie", &ann)
        .send()
        .await
        .expect("page");
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Hi, I&#x27;m Ann!") || html.contains("Hi, I'm Ann!"),
        "{html}"
    );
    assert!(html.contains("shop-a"), "{html}");
    server.stop().await;
}

/// The server-rendered HTML of `path`, with the given request headers.
async fn page(server: &common::TestServer, path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = reqwest::Client::new().get(server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_speaks_the_agents_language_and_switches_it() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    // Before signing in: the browser's language.
    let english = page(&server, "/login", &[("accept-language", "en-GB,en;q=0.9")]).await;
    assert!(
        english.contains("Sign in to answer your visitors."),
        "{english}"
    );
    let chinese = page(
        &server,
        "/login",
        &[("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")],
    )
    .await;
    assert!(chinese.contains("登录后回复您的访客。"), "{chinese}");
    assert!(!chinese.contains("Sign in to answer"), "{chinese}");

    // Signed in: the agent's profile wins over the browser.
    let (site, _) = common::site(store, "shop", &["https://a.example"]).await;
    let (ann_id, ann) = common::agent_cookie(store, "ann@a.example", &[site]).await;
    let inbox = page(
        &server,
        "/inbox",
        &[("cookie", &ann), ("accept-language", "zh-CN")],
    )
    .await;
    assert!(inbox.contains("Sign out"), "{inbox}");
    let (status, body) = call(&server, "set_language", Some(&ann), &[("lang", "zh-CN")]).await;
    assert_eq!(status, 200, "{body}");
    let inbox = page(&server, "/inbox", &[("cookie", &ann)]).await;
    assert!(inbox.contains("退出登录"), "{inbox}");
    assert!(inbox.contains("暂无会话。"), "{inbox}");
    let saved = store.agent(ann_id).await.expect("read").map(|a| a.language);
    assert_eq!(saved.as_deref(), Some("zh-CN"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transcripts_page_backwards_and_only_for_the_sites_agents() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (a, key) = common::site(store, "shop-a", &["https://a.example"]).await;
    let (b, _) = common::site(store, "shop-b", &["https://b.example"]).await;
    let (_, ann) = common::agent_cookie(store, "ann@a.example", &[a]).await;
    let (_, bo) = common::agent_cookie(store, "bo@b.example", &[b]).await;
    let (visitor, conversation) =
        visitor_says(&server, &key, "https://a.example", "message 1").await;
    let frames: Vec<Value> = (2..=40)
        .map(|n| {
            send_frame(
                Some(conversation),
                &format!("m{n}"),
                &format!("message {n}"),
            )
        })
        .collect();
    let (status, _) = visitor.send(json!(frames)).await;
    assert_eq!(status, 200);

    // The inbox brings the newest 30; the rest come a page at a time, by seq.
    let (_, body) = inbox(&server, Some(&ann)).await;
    let data: Value = serde_json::from_str(&body).expect("json");
    let recent = data["threads"][0]["recent"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(recent.len(), 30);
    assert_eq!(
        (
            recent[0]["seq"].as_i64(),
            data["threads"][0]["last_seq"].as_i64()
        ),
        (Some(11), Some(40))
    );
    let id = conversation.to_string();
    let (status, body) = call(
        &server,
        "transcript",
        Some(&ann),
        &[("id", &id), ("before", "11")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("json");
    let messages = page["messages"].as_array().expect("messages");
    let seqs: Vec<i64> = messages.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    assert_eq!(messages[0]["body"], "message 1");
    assert_eq!(page["translations"], json!([]), "nothing was translated");
    let (status, body) = call(&server, "conversation", Some(&ann), &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("message 40"), "{body}");

    // The side panel: who the visitor is and their other conversations.
    let (status, body) = call(&server, "visitor_profile", Some(&ann), &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    let card: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(card["past"], json!([]), "{card}");

    // An agent of another site, and nobody at all, get nothing.
    for endpoint in ["transcript", "conversation", "visitor_profile"] {
        let (status, body) = call(
            &server,
            endpoint,
            Some(&bo),
            &[("id", &id), ("before", "11")],
        )
        .await;
        assert_ne!(status, 200);
        assert!(
            body.contains("not_found") && !body.contains("message"),
            "{body}"
        );
        let (status, body) = call(&server, endpoint, None, &[("id", &id), ("before", "11")]).await;
        assert_ne!(status, 200);
        assert!(body.contains("unauthorized"), "{body}");
    }
    server.stop().await;
}

/// The text of a `note` frame.
fn note_of(frame: &ServerFrame) -> Option<String> {
    match frame {
        ServerFrame::Note { body, .. } => Some(body.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_notes_reach_the_sites_agents_live_and_on_resume_never_the_visitor() {
    use common::client::{Ws, agent_hello};
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (a, key) = common::site(store, "shop-a", &["https://a.example"]).await;
    let (b, _) = common::site(store, "shop-b", &["https://b.example"]).await;
    let (_, ann) = common::agent_cookie(store, "ann@a.example", &[a]).await;
    let (_, bo) = common::agent_cookie(store, "bo@b.example", &[b]).await;
    let (visitor, conversation) =
        visitor_says(&server, &key, "https://a.example", "Where is my refund?").await;
    let mut console = Ws::connect(&server.url(""), "/ws/agent", None, Some(&ann)).await;
    console.send_json(agent_hello(&[])).await;
    let events_before = console
        .until(|f| match f {
            ServerFrame::Welcome(w) => w.event_seq,
            _ => None,
        })
        .await;

    let id = conversation.to_string();
    let (status, body) = call(
        &server,
        "notes/add",
        Some(&ann),
        &[("id", &id), ("body", "Finance approved the refund.")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Live to the site's consoles…
    let live = console.until(note_of).await;
    assert_eq!(live, "Finance approved the refund.");
    // …listed with the conversation, and replayed to a console resuming from before it…
    let (status, body) = call(&server, "notes", Some(&ann), &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Finance approved the refund."), "{body}");
    let mut resumed = Ws::connect(&server.url(""), "/ws/agent", None, Some(&ann)).await;
    let mut hello = agent_hello(&[]);
    hello["events_after"] = events_before.into();
    resumed.send_json(hello).await;
    let replayed = resumed.until(note_of).await;
    assert_eq!(replayed, "Finance approved the refund.");
    // …never to the visitor.
    let (_, frames) = visitor.poll(&[(conversation, 0)], 0).await;
    assert!(!format!("{frames:?}").contains("Finance"), "{frames:?}");

    // Tags: set as one line, stored normalised, sent live, listed with the inbox.
    let (status, body) = call(
        &server,
        "tags/set",
        Some(&ann),
        &[("id", &id), ("tags", " VIP, 退款 ,vip")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let tags = console
        .until(|f| match f {
            ServerFrame::Tags { tags, .. } => Some(tags.clone()),
            _ => None,
        })
        .await;
    assert_eq!(tags, ["vip", "退款"]);
    let (_, body) = inbox(&server, Some(&ann)).await;
    let data: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(data["threads"][0]["tags"], json!(["vip", "退款"]), "{data}");
    let long = "x".repeat(33);
    let (status, body) = call(
        &server,
        "tags/set",
        Some(&ann),
        &[("id", &id), ("tags", &long)],
    )
    .await;
    assert!(status != 200 && body.contains("invalid"), "{body}");
    let (status, body) = call(
        &server,
        "tags/set",
        Some(&bo),
        &[("id", &id), ("tags", "x")],
    )
    .await;
    assert!(status != 200 && body.contains("not_found"), "{body}");

    // Refused: a blank note, another site's agent, no session.
    let (status, body) = call(
        &server,
        "notes/add",
        Some(&ann),
        &[("id", &id), ("body", "  ")],
    )
    .await;
    assert!(status != 200 && body.contains("invalid"), "{body}");
    for endpoint in ["notes/add", "notes"] {
        let (status, body) =
            call(&server, endpoint, Some(&bo), &[("id", &id), ("body", "x")]).await;
        assert!(status != 200 && body.contains("not_found"), "{body}");
        let (status, body) = call(&server, endpoint, None, &[("id", &id), ("body", "x")]).await;
        assert!(status != 200 && body.contains("unauthorized"), "{body}");
    }
    server.stop().await;
}
