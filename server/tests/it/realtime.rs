//! The real-time core over real sockets: WebSocket and HTTP fallback, acks, resume, idempotent
//! resends, transport switching, and refusals (forged tokens, foreign conversations, bad frames).

use crate::common;

use common::client::{
    Http, Ws, ack_of, agent_hello, error_of, message_of, send_frame, visitor_hello, welcome_of,
};
use protocol::{ConversationId, ServerFrame, SiteId, VisitorId};
use std::time::Duration;

const ORIGIN: &str = "https://shop.example";

/// A server with one site (allowing ORIGIN) and two agents on it.
async fn setup() -> (common::TestServer, String, SiteId, [String; 2]) {
    let server = common::spawn_sqlite().await;
    let (site_id, key) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (_, a1) = common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[site_id]).await;
    let (_, a2) = common::agent_cookie(server.store.as_ref(), "bo@shop.example", &[site_id]).await;
    (server, key, site_id, [a1, a2])
}

async fn visitor(
    server: &common::TestServer,
    key: &str,
    token: Option<&str>,
    cursors: &[(ConversationId, i64)],
) -> (Ws, String) {
    let mut ws = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    ws.send_json(visitor_hello(key, token, cursors)).await;
    let (token, _) = ws.until(welcome_of).await;
    (ws, token)
}

async fn agent(server: &common::TestServer, cookie: &str, cursors: &[(ConversationId, i64)]) -> Ws {
    let mut ws = Ws::connect(&server.url(""), "/ws/agent", None, Some(cookie)).await;
    ws.send_json(agent_hello(cursors)).await;
    ws.until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;
    ws
}

#[tokio::test(flavor = "multi_thread")]
async fn two_visitors_and_two_agents_talk() {
    let (server, key, site_id, [a1, a2]) = setup().await;
    let mut ann = agent(&server, &a1, &[]).await;
    let mut bo = agent(&server, &a2, &[]).await;
    let (mut v1, _) = visitor(&server, &key, None, &[]).await;
    let (mut v2, _) = visitor(&server, &key, None, &[]).await;

    v1.send_json(send_frame(None, "v1-1", "Hello from one"))
        .await;
    let (_, c1, seq) = v1.until(ack_of).await;
    assert_eq!(seq, 1);
    v2.send_json(send_frame(None, "v2-1", "Hello from two"))
        .await;
    let (_, c2, _) = v2.until(ack_of).await;
    assert_ne!(c1, c2, "each visitor has their own conversation");

    for agent in [&mut ann, &mut bo] {
        let created = agent
            .until(|f| match f {
                ServerFrame::ConversationCreated {
                    conversation_id,
                    site_id: s,
                    ..
                } if *conversation_id == c1 => Some(*s),
                _ => None,
            })
            .await;
        assert_eq!(created, site_id);
        let got = agent.until(|f| message_of(f).filter(|m| m.0 == c1)).await;
        assert_eq!(got, (c1, 1, "Hello from one".to_string()));
        let got = agent.until(|f| message_of(f).filter(|m| m.0 == c2)).await;
        assert_eq!(got.2, "Hello from two");
    }

    ann.send_json(send_frame(Some(c1), "ann-1", "Hi one, Ann here"))
        .await;
    assert_eq!(ann.until(ack_of).await, ("ann-1".to_string(), c1, 2));
    let reply = v1.until(|f| message_of(f).filter(|m| m.1 == 2)).await;
    assert_eq!(reply.2, "Hi one, Ann here");
    // Bo sees Ann's reply too; visitor two sees nothing of conversation one.
    assert_eq!(
        bo.until(|f| message_of(f).filter(|m| m.0 == c1 && m.1 == 2))
            .await
            .2,
        "Hi one, Ann here"
    );
    bo.send_json(send_frame(Some(c2), "bo-1", "Hi two")).await;
    let first_for_v2 = v2.until(message_of).await;
    assert_eq!(
        first_for_v2,
        (c2, 1, "Hello from two".to_string()),
        "own message echoed first"
    );
    let second = v2.until(message_of).await;
    assert_eq!(second, (c2, 2, "Hi two".to_string()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resend_with_the_same_client_id_gets_the_same_ack() {
    let (server, key, _, _) = setup().await;
    let (mut v, _) = visitor(&server, &key, None, &[]).await;
    v.send_json(send_frame(None, "dup", "once")).await;
    let first = v.until(ack_of).await;
    v.send_json(send_frame(None, "dup", "once")).await;
    assert_eq!(
        v.until(ack_of).await,
        first,
        "first message resent without conversation id"
    );
    v.send_json(send_frame(Some(first.1), "dup", "once")).await;
    assert_eq!(
        v.until(ack_of).await,
        first,
        "resent with the conversation id"
    );
    let stored = server
        .store
        .messages_after(first.1, 0, 10)
        .await
        .expect("messages");
    assert_eq!(stored.len(), 1, "stored once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resend_of_a_message_stored_without_its_ack_reaches_the_agent() {
    let (server, key, _, [a1, _]) = setup().await;
    let (mut v, _) = visitor(&server, &key, None, &[]).await;
    v.send_json(send_frame(None, "first", "hello")).await;
    let (_, conversation, _) = v.until(ack_of).await;
    let mut ann = agent(&server, &a1, &[(conversation, 0)]).await;
    ann.until(|f| message_of(f).filter(|m| m.1 == 1)).await;
    // The link to the database broke after this commit and before its answer: the visitor was
    // refused, and nobody was told of the message.
    server
        .store
        .append_message(
            conversation,
            store::NewMessage {
                client_id: protocol::ClientId("lost-answer".into()),
                author: protocol::Author::Visitor,
                agent_id: None,
                body: "are you there?".into(),
                attachment: None,
                created_at: server::now_ms(),
            },
        )
        .await
        .expect("stored");
    v.send_json(send_frame(
        Some(conversation),
        "lost-answer",
        "are you there?",
    ))
    .await;
    assert_eq!(v.until(ack_of).await.2, 2, "the resend is acknowledged");
    let mut live = None;
    while let Some(frame) = ann.try_next(Duration::from_secs(5)).await {
        if let Some(message) = message_of(&frame).filter(|m| m.0 == conversation) {
            live = Some(message);
            break;
        }
    }
    assert_eq!(
        live,
        Some((conversation, 2, "are you there?".to_string())),
        "the agent got the message with its resend, not only with the next one"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_resume_delivers_exactly_the_gap() {
    let (server, key, _, [a1, _]) = setup().await;
    let (mut v, token) = visitor(&server, &key, None, &[]).await;
    v.send_json(send_frame(None, "m1", "one")).await;
    let (_, conv, _) = v.until(ack_of).await;
    for (id, body) in [("m2", "two"), ("m3", "three")] {
        v.send_json(send_frame(Some(conv), id, body)).await;
        v.until(ack_of).await;
    }
    v.drop_connection();

    let mut ann = agent(&server, &a1, &[(conv, 3)]).await;
    for (id, body) in [("a4", "four"), ("a5", "five")] {
        ann.send_json(send_frame(Some(conv), id, body)).await;
        ann.until(ack_of).await;
    }

    let (mut v, _) = visitor(&server, &key, Some(&token), &[(conv, 3)]).await;
    let mut got = Vec::new();
    while got.len() < 2 {
        if let Some(m) = message_of(&v.next().await) {
            got.push((m.1, m.2));
        }
    }
    assert_eq!(got, vec![(4, "four".to_string()), (5, "five".to_string())]);
    assert!(
        v.try_next(Duration::from_millis(300))
            .await
            .and_then(|f| message_of(&f))
            .is_none(),
        "nothing repeated"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_fallback_sends_polls_and_resumes() {
    let (server, key, _, [a1, _]) = setup().await;
    let mut http = Http::new(&server.url(""), "visitor");
    http.origin = Some(ORIGIN.into());
    let (status, frames) = http
        .send(serde_json::json!([
            visitor_hello(&key, None, &[]),
            send_frame(None, "h1", "over http")
        ]))
        .await;
    assert_eq!(status, 200, "{frames:?}");
    let (token, _) = frames.iter().find_map(welcome_of).expect("welcome");
    let (_, conv, seq) = frames.iter().find_map(ack_of).expect("ack");
    assert_eq!(seq, 1);
    http.token = Some(token.clone());

    // The poll replays what is after the cursor at once…
    let (_, frames) = http.poll(&[(conv, 0)], 25).await;
    assert_eq!(
        frames.iter().filter_map(message_of).collect::<Vec<_>>(),
        vec![(conv, 1, "over http".to_string())]
    );

    // …and otherwise holds until a live message arrives.
    let held = {
        let http = Http {
            token: Some(token.clone()),
            origin: Some(ORIGIN.into()),
            ..Http::new(&server.url(""), "visitor")
        };
        tokio::spawn(async move { http.poll(&[(conv, 1)], 25).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let agent_http = Http {
        cookie: Some(a1.clone()),
        ..Http::new(&server.url(""), "agent")
    };
    let (status, frames) = agent_http
        .send(send_frame(Some(conv), "ah2", "agent over http"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        frames.iter().find_map(ack_of),
        Some(("ah2".to_string(), conv, 2))
    );
    let (_, live) = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("poll returned")
        .expect("task");
    assert_eq!(
        live.iter().filter_map(message_of).collect::<Vec<_>>(),
        vec![(conv, 2, "agent over http".to_string())]
    );

    // An empty poll times out with an empty array.
    let (status, frames) = http.poll(&[(conv, 2)], 1).await;
    assert_eq!((status, frames.len()), (200, 0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn switching_transports_mid_conversation_loses_and_repeats_nothing() {
    let (server, key, _, _) = setup().await;
    let (mut v, token) = visitor(&server, &key, None, &[]).await;
    v.send_json(send_frame(None, "s1", "ws one")).await;
    let (_, conv, _) = v.until(ack_of).await;
    v.drop_connection();

    let mut http = Http::new(&server.url(""), "visitor");
    http.origin = Some(ORIGIN.into());
    http.token = Some(token.clone());
    let (_, frames) = http.send(send_frame(Some(conv), "s2", "http two")).await;
    assert_eq!(frames.iter().find_map(ack_of).map(|a| a.2), Some(2));
    // A resend of the same message over the other transport is the same ack.
    let (_, frames) = http.send(send_frame(Some(conv), "s1", "ws one")).await;
    assert_eq!(frames.iter().find_map(ack_of).map(|a| a.2), Some(1));

    let (mut v, _) = visitor(&server, &key, Some(&token), &[(conv, 1)]).await;
    v.send_json(send_frame(Some(conv), "s3", "ws three")).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        if let Some(m) = message_of(&v.next().await) {
            seen.push(m.1);
        }
    }
    assert_eq!(seen, vec![2, 3]);
    let stored: Vec<i64> = server
        .store
        .messages_after(conv, 0, 10)
        .await
        .expect("messages")
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(stored, vec![1, 2, 3]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tokens_and_foreign_conversations_are_refused() {
    let (server, key, _, _) = setup().await;
    let (mut v1, t1) = visitor(&server, &key, None, &[]).await;
    v1.send_json(send_frame(None, "private", "my secret order"))
        .await;
    let (_, conv, _) = v1.until(ack_of).await;

    // Same signature, someone else's visitor id.
    let parts: Vec<&str> = t1.split('.').collect();
    let other_id: i64 = parts[2].parse::<i64>().expect("visitor id") + 1;
    let forged = format!("{}.{}.{}.{}", parts[0], parts[1], other_id, parts[3]);
    let mut ws = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    ws.send_json(visitor_hello(&key, Some(&forged), &[])).await;
    assert_eq!(error_of(&ws.next().await).as_deref(), Some("bad_token"));
    assert!(
        ws.try_next(Duration::from_secs(2)).await.is_none(),
        "connection closed"
    );

    // A genuine second visitor asking for the first one's conversation gets not_found.
    let (mut v2, t2) = visitor(&server, &key, None, &[(conv, 0)]).await;
    assert_eq!(v2.until(error_of).await.as_str(), "not_found");
    v2.send_json(send_frame(Some(conv), "intrude", "hi")).await;
    assert_eq!(v2.until(error_of).await.as_str(), "not_found");
    let mut http = Http::new(&server.url(""), "visitor");
    http.origin = Some(ORIGIN.into());
    http.token = Some(t2);
    let (_, frames) = http.poll(&[(conv, 0)], 1).await;
    assert!(
        frames.iter().filter_map(message_of).next().is_none(),
        "{frames:?}"
    );
    assert_eq!(
        frames.iter().find_map(error_of).as_deref(),
        Some("not_found")
    );
    http.token = Some(forged);
    assert_eq!(http.poll(&[], 1).await.0, 401);

    // A page on an origin the site does not allow.
    let mut ws = Ws::connect(
        &server.url(""),
        "/ws/visitor",
        Some("https://evil.example"),
        None,
    )
    .await;
    ws.send_json(visitor_hello(&key, None, &[])).await;
    assert_eq!(
        error_of(&ws.next().await).as_deref(),
        Some("origin_not_allowed")
    );

    // An agent without a session.
    let mut ws = Ws::connect(&server.url(""), "/ws/agent", None, None).await;
    ws.send_json(agent_hello(&[])).await;
    assert_eq!(error_of(&ws.next().await).as_deref(), Some("unauthorized"));
    let stored = server
        .store
        .messages_after(conv, 0, 10)
        .await
        .expect("messages");
    assert_eq!(stored.len(), 1, "nothing was written by intruders");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_frames_get_error_frames() {
    let (server, key, _, _) = setup().await;
    let (mut v, token) = visitor(&server, &key, None, &[]).await;
    v.send_text("{not json".into()).await;
    assert_eq!(v.until(error_of).await.as_str(), "bad_request");
    v.send_json(serde_json::json!({"type": "launch_missiles"}))
        .await;
    assert_eq!(v.until(error_of).await.as_str(), "bad_request");
    v.send_json(send_frame(None, "big", &"x".repeat(9_000)))
        .await;
    assert_eq!(v.until(error_of).await.as_str(), "too_large");
    v.send_json(send_frame(None, "blank", "   ")).await;
    assert_eq!(v.until(error_of).await.as_str(), "bad_request");
    // The connection still works after all that.
    v.send_json(serde_json::json!({"type": "ping", "nonce": 7}))
        .await;
    v.until(|f| matches!(f, ServerFrame::Pong(p) if p.nonce == 7).then_some(()))
        .await;
    // A frame over max_frame_bytes ends the connection, as the protocol says.
    v.send_text(format!(
        "{{\"type\":\"ping\",\"nonce\":1,\"pad\":\"{}\"}}",
        "y".repeat(70_000)
    ))
    .await;
    assert_eq!(v.until(error_of).await.as_str(), "too_large");
    assert!(
        v.try_next(Duration::from_secs(2)).await.is_none(),
        "closed after too_large"
    );

    let mut http = Http::new(&server.url(""), "visitor");
    http.origin = Some(ORIGIN.into());
    http.token = Some(token);
    let (status, frames) = http
        .send_raw("[{\"type\":\"ping\",\"nonce\":1}, 42]".into())
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        frames.iter().find_map(error_of).as_deref(),
        Some("bad_request")
    );
    let (status, frames) = http.send_raw("z".repeat(70_000)).await;
    assert_eq!(status, 413);
    assert_eq!(
        frames.iter().find_map(error_of).as_deref(),
        Some("too_large")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn floods_are_refused_with_error_frames() {
    let server = common::spawn_sqlite_with(|config| {
        config.messages_per_minute = 3;
        config.max_connections_per_ip = 3;
    })
    .await;
    let (_, key) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;

    let (mut v, _) = visitor(&server, &key, None, &[]).await;
    v.send_json(send_frame(None, "r1", "one")).await;
    let (_, conv, _) = v.until(ack_of).await;
    for id in ["r2", "r3"] {
        v.send_json(send_frame(Some(conv), id, "more")).await;
        v.until(ack_of).await;
    }
    v.send_json(send_frame(Some(conv), "r4", "too many")).await;
    let retry = v
        .until(|f| match f {
            ServerFrame::Error {
                code,
                retry_after_ms,
                client_id,
                ..
            } => Some((code.as_str(), *retry_after_ms, client_id.clone())),
            _ => None,
        })
        .await;
    assert_eq!(retry.0, "rate_limited");
    assert!(
        retry.1.is_some_and(|ms| ms > 0),
        "says when to retry: {retry:?}"
    );
    assert_eq!(retry.2.map(|c| c.0).as_deref(), Some("r4"));

    // Two more connections from this address fill the cap; the next is refused.
    let (_v2, _) = visitor(&server, &key, None, &[]).await;
    let (_v3, _) = visitor(&server, &key, None, &[]).await;
    let mut fourth = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    assert_eq!(
        error_of(&fourth.next().await).as_deref(),
        Some("too_many_connections")
    );
    server.stop().await;
}

/// Bans made in the console after the visitor was seen (the node keeps a copy of each site's
/// bans for hellos): the visitor, then anyone from the banned range, is refused at their next
/// hello, over either transport.
#[tokio::test(flavor = "multi_thread")]
async fn banned_visitors_and_addresses_are_refused_at_connect() {
    let (server, key, site_id, _) = setup().await;
    let (_, boss) = common::admin_cookie(server.store.as_ref(), "boss@shop.example").await;
    let (v, token) = visitor(&server, &key, None, &[]).await;
    drop(v);
    let visitor_id: VisitorId = token
        .split('.')
        .nth(2)
        .and_then(|id| id.parse().ok())
        .expect("visitor id");
    let site = site_id.to_string();
    let ban = |visitor: &str, address: &str| {
        let form = [
            ("site", site.clone()),
            ("visitor", visitor.to_owned()),
            ("address", address.to_owned()),
            ("reason", "abuse".to_owned()),
            ("days", "0".to_owned()),
        ];
        let (server, boss) = (&server, boss.clone());
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) =
                common::server_fn(server, &boss, "/api/admin/bans/add", &form).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    ban(&visitor_id.to_string(), "").await;
    let mut ws = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    ws.send_json(visitor_hello(&key, Some(&token), &[])).await;
    assert_eq!(error_of(&ws.next().await).as_deref(), Some("banned"));

    // Anyone from 127.0.0.0/8 once the range is banned, over either transport.
    ban("", "127.0.0.0/8").await;
    let mut ws = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    ws.send_json(visitor_hello(&key, None, &[])).await;
    assert_eq!(error_of(&ws.next().await).as_deref(), Some("banned"));
    let mut http = Http::new(&server.url(""), "visitor");
    http.origin = Some(ORIGIN.into());
    let (status, frames) = http.send(visitor_hello(&key, None, &[])).await;
    assert_eq!(status, 403);
    assert_eq!(frames.iter().find_map(error_of).as_deref(), Some("banned"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_open_websocket_is_noticed_and_the_visitor_goes_offline() {
    let server = common::spawn_sqlite_with(|config| config.idle_timeout_ms = 600).await;
    let (site_id, key) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[site_id]).await;
    let mut ann = agent(&server, &cookie, &[]).await;
    let (mut v, _) = visitor(&server, &key, None, &[]).await;
    let online = |want: bool| {
        move |f: &ServerFrame| {
            matches!(f, ServerFrame::VisitorPresence { online, .. } if *online == want)
                .then_some(())
        }
    };
    ann.until(online(true)).await;
    // The visitor's side stops answering (it reads nothing, so it answers no ping): a
    // half-open link. The agent keeps reading, so only the visitor goes silent.
    let started = std::time::Instant::now();
    ann.until(online(false)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before the idle timeout"
    );
    // The server closed its end: after the frames already queued, the stream ends.
    let mut frames = 0;
    while v.try_next(Duration::from_secs(2)).await.is_some() {
        frames += 1;
        assert!(frames < 10, "connection still open");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_page_views_and_availability_reach_the_right_side() {
    let (server, key, _, [a1, _]) = setup().await;
    // A visitor arrives on a page before any agent is online: chat is unavailable.
    let mut v = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    let mut hello = visitor_hello(&key, None, &[]);
    hello["page"] = serde_json::json!({"url": "https://shop.example/pricing", "title": "Pricing"});
    hello["language"] = "zh-CN".into();
    hello["time_zone"] = "Asia/Shanghai".into();
    hello["screen"] = "390x844".into();
    v.send_json(hello).await;
    v.until(welcome_of).await;
    let first = v.until(|f| match f {
        ServerFrame::Availability { online } => Some(*online),
        _ => None,
    });
    assert!(!first.await);

    // An agent signing in later is told who is on the site and on which page…
    let mut ann = agent(&server, &a1, &[]).await;
    let details = ann
        .until(|f| match f {
            ServerFrame::VisitorPresence {
                online: true,
                details,
                ..
            } => Some(details.clone()),
            _ => None,
        })
        .await
        .expect("details");
    assert_eq!(details.language.as_deref(), Some("zh-CN"));
    assert_eq!(details.time_zone.as_deref(), Some("Asia/Shanghai"));
    assert_eq!(details.screen.as_deref(), Some("390x844"));
    let url = ann
        .until(|f| match f {
            ServerFrame::PageView { url, .. } => Some(url.clone()),
            _ => None,
        })
        .await;
    assert_eq!(url, "https://shop.example/pricing");
    // …and the visitor learns that chat is now available, and unavailable when Ann is away.
    let available = |want: bool| {
        move |f: &ServerFrame| {
            matches!(f, ServerFrame::Availability { online } if *online == want).then_some(())
        }
    };
    v.until(available(true)).await;
    ann.send_json(serde_json::json!({"type": "set_status", "status": "away"}))
        .await;
    v.until(available(false)).await;

    // Navigation is a page view for the agents, live.
    v.send_json(serde_json::json!({"type": "page_view", "url": "https://shop.example/checkout"}))
        .await;
    let next = ann
        .until(|f| match f {
            ServerFrame::PageView { url, .. } if url.ends_with("checkout") => Some(url.clone()),
            _ => None,
        })
        .await;
    assert_eq!(next, "https://shop.example/checkout");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutting_down_tells_clients_to_reconnect() {
    let (server, key, _, _) = setup().await;
    let (mut v, token) = visitor(&server, &key, None, &[]).await;
    let mut http = Http::new(&server.url(""), "visitor");
    http.origin = Some(ORIGIN.into());
    http.token = Some(token);
    let held = tokio::spawn(async move { http.poll(&[], 25).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopping = tokio::spawn(server.stop());
    let reconnect = |f: &ServerFrame| {
        matches!(f, ServerFrame::Reconnect { within_ms } if *within_ms > 0).then_some(())
    };
    v.until(reconnect).await;
    assert!(
        v.try_next(Duration::from_secs(2)).await.is_none(),
        "then the connection closes"
    );
    let (status, frames) = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("poll answered")
        .expect("task");
    assert_eq!(status, 200);
    assert!(frames.iter().any(|f| reconnect(f).is_some()), "{frames:?}");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("server stopped")
        .expect("task");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lagging_agent_catches_up_from_the_store_without_slowing_the_visitor() {
    let server = common::spawn_sqlite_with(|config| config.messages_per_minute = 100_000).await;
    let (site_id, key) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[site_id]).await;
    let (mut v, _) = visitor(&server, &key, None, &[]).await;
    v.send_json(send_frame(None, "lag-0", "start")).await;
    let (_, conv, _) = v.until(ack_of).await;

    // The agent follows the conversation, then stops reading while ~8 MB of messages pass —
    // more than the socket buffers and the hub's topic hold.
    let mut ann = agent(&server, &cookie, &[(conv, 1)]).await;
    let body = "x".repeat(8_000);
    const COUNT: i64 = 1_000;
    for i in 1..COUNT {
        v.send_json(send_frame(Some(conv), &format!("lag-{i}"), &body))
            .await;
        v.until(|f| ack_of(f).filter(|a| a.0 == format!("lag-{i}")))
            .await;
    }
    let mut seqs = Vec::new();
    while seqs.len() < (COUNT - 1) as usize {
        if let Some((c, seq, _)) = message_of(&ann.next().await)
            && c == conv
        {
            seqs.push(seq);
        }
    }
    assert_eq!(
        seqs,
        (2..=COUNT).collect::<Vec<_>>(),
        "every message once, in order"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_clients_count_for_presence_while_they_keep_polling() {
    // Presence of a poll lingers for the idle timeout after it ends.
    let server = common::spawn_sqlite_with(|config| config.idle_timeout_ms = 1_500).await;
    let (site_id, key) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[site_id]).await;
    let (mut watcher, _) = visitor(&server, &key, None, &[]).await;
    let available = |want: bool| {
        move |f: &ServerFrame| {
            matches!(f, ServerFrame::Availability { online } if *online == want).then_some(())
        }
    };
    watcher.until(available(false)).await;

    // An agent in "HTTP only" mode makes the site available while polling…
    let mut ann = Http::new(&server.url(""), "agent");
    ann.cookie = Some(cookie.clone());
    let (status, _) = ann.send(agent_hello(&[])).await;
    assert_eq!(status, 200);
    let polls = tokio::spawn(async move {
        for _ in 0..3 {
            assert_eq!(ann.poll(&[], 1).await.0, 200);
        }
    });
    watcher.until(available(true)).await;
    // …with no flapping between polls…
    let watch_until = tokio::time::Instant::now() + Duration::from_millis(2_500);
    while let Some(frame) = watcher
        .try_next(watch_until.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        assert!(
            !matches!(frame, ServerFrame::Availability { online: false }),
            "availability flapped between polls"
        );
    }
    polls.await.expect("polls");
    // …and unavailable once the polls stop and the linger is over.
    let stopped = std::time::Instant::now();
    watcher.until(available(false)).await;
    assert!(stopped.elapsed() < Duration::from_secs(5));

    // A visitor on the HTTP fallback shows as online to a WebSocket agent, then offline.
    let mut bo = agent(&server, &cookie, &[]).await;
    let mut guest = Http::new(&server.url(""), "visitor");
    guest.origin = Some(ORIGIN.into());
    guest.client = reqwest::Client::builder()
        .user_agent("Mozilla/5.0 (test) ".repeat(100))
        .build()
        .expect("client");
    let mut hello = visitor_hello(&key, None, &[]);
    hello["screen"] = "1440x900".into();
    hello["time_zone"] = "x".repeat(500).into();
    let (_, frames) = guest.send(hello).await;
    guest.token = frames.iter().find_map(welcome_of).map(|(token, _)| token);
    let guest_id = frames
        .iter()
        .find_map(|f| match f {
            ServerFrame::Welcome(w) => w.visitor_id.map(|id| id.0),
            _ => None,
        })
        .expect("visitor id");
    let presence = |want: bool| {
        move |f: &ServerFrame| {
            matches!(f, ServerFrame::VisitorPresence { visitor_id, online, .. }
                if visitor_id.0 == guest_id && *online == want)
            .then_some(())
        }
    };
    // The hello itself brings the visitor online, with their browser (cut to sane sizes).
    let details = bo
        .until(|f| match f {
            ServerFrame::VisitorPresence {
                visitor_id,
                online: true,
                details,
                ..
            } if visitor_id.0 == guest_id => Some(details.clone()),
            _ => None,
        })
        .await
        .expect("details");
    assert_eq!(details.screen.as_deref(), Some("1440x900"));
    assert_eq!(details.time_zone.map(|t| t.len()), Some(64));
    let agent = details.user_agent.expect("user agent");
    assert!(
        agent.starts_with("Mozilla/5.0 (test)") && agent.len() <= 512,
        "{agent}"
    );
    assert_eq!(guest.poll(&[], 1).await.0, 200);
    bo.until(presence(false)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_may_preview_only_into_their_own_conversation() {
    let (server, key, _, [a1, _]) = setup().await;
    let mut ann = agent(&server, &a1, &[]).await;
    let (mut alice, _) = visitor(&server, &key, None, &[]).await;
    alice.send_json(send_frame(None, "a-1", "Hello")).await;
    let (_, alices, _) = alice.until(ack_of).await;
    let (mut mallory, _) = visitor(&server, &key, None, &[]).await;

    // Mallory names Alice's conversation: refused, and the agent never sees it.
    mallory
        .send_json(serde_json::json!({
            "type": "preview", "conversation_id": alices, "text": "send my refund to IBAN XX00"
        }))
        .await;
    let refused = mallory.until(error_of).await;
    assert_eq!(refused, "not_found");
    // Alice's own preview arrives; the forged one never came before it.
    alice
        .send_json(serde_json::json!({
            "type": "preview", "conversation_id": alices, "text": "where is my parcel"
        }))
        .await;
    let text = ann
        .until(|f| match f {
            ServerFrame::Preview { text, .. } => Some(text.clone()),
            _ => None,
        })
        .await;
    assert_eq!(text, "where is my parcel");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_cursor_replays_its_gap_once_and_a_batch_has_one_hello_first() {
    let (server, key, _, _) = setup().await;
    let (mut http, _) = common::http_visitor(&server, &key, ORIGIN).await;
    let mut conversation = ConversationId(0);
    for n in 0..3 {
        let (_, frames) = http
            .send(serde_json::json!([send_frame(
                (n > 0).then_some(conversation),
                &format!("r-{n}"),
                "x".repeat(100).as_str()
            )]))
            .await;
        conversation = frames.iter().find_map(ack_of).expect("ack").1;
    }
    let (status, frames) = http
        .poll(
            &[(conversation, 0), (conversation, 0), (conversation, 2)],
            0,
        )
        .await;
    assert_eq!(status, 200);
    let seqs: Vec<i64> = frames.iter().filter_map(message_of).map(|m| m.1).collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3],
        "each message once, from the lowest cursor"
    );

    // A hello later in a batch, or too many frames, and nothing is processed.
    let hello = visitor_hello(&key, http.token.as_deref(), &[]);
    let (status, frames) = http
        .send(serde_json::json!([{"type": "ping", "nonce": 1}, hello]))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        frames.first().and_then(error_of).as_deref(),
        Some("bad_request")
    );
    let pings: Vec<_> = (0..101)
        .map(|n| serde_json::json!({"type": "ping", "nonce": n}))
        .collect();
    let (status, frames) = http.send(serde_json::Value::Array(pings)).await;
    assert_eq!(status, 413);
    assert_eq!(
        frames.first().and_then(error_of).as_deref(),
        Some("too_large")
    );
    http.token = None;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_banned_address_is_refused_before_a_visitor_is_made_for_it() {
    let (server, key, site_id, _) = setup().await;
    common::ban_address(&server, &server.url(""), site_id, "127.1.4.0/24").await;
    let hello_from = |source: &'static str| {
        let (base, key) = (server.url(""), key.clone());
        async move {
            let mut ws = Ws::connect_from(
                &base,
                "/ws/visitor",
                source.parse().expect("ip"),
                &[("origin", ORIGIN)],
            )
            .await;
            ws.send_json(visitor_hello(&key, None, &[])).await;
            ws.next().await
        }
    };
    let before = welcome_id(&hello_from("127.1.5.1").await);
    for _ in 0..3 {
        let refused = hello_from("127.1.4.9").await;
        assert_eq!(error_of(&refused).as_deref(), Some("banned"), "{refused:?}");
    }
    let after = welcome_id(&hello_from("127.1.5.2").await);
    assert_eq!(
        after,
        VisitorId(before.0 + 1),
        "no visitor was stored for the banned address"
    );
    server.stop().await;
}

fn welcome_id(frame: &ServerFrame) -> VisitorId {
    match frame {
        ServerFrame::Welcome(welcome) => welcome.visitor_id.expect("visitor id"),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// The points where the server and `docs/protocol.md` once disagreed, as the document now says.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_does_what_the_protocol_document_says() {
    let (server, key, _, _) = setup().await;
    let (mut v, token) = visitor(&server, &key, None, &[]).await;
    v.send_json(send_frame(None, "first", "hello")).await;
    let (_, conv, _) = v.until(ack_of).await;

    // A negative `after_seq` is a client bug: `bad_request`, naming the conversation.
    v.send_json(serde_json::json!({
        "type": "resume",
        "cursors": [{"conversation_id": conv, "after_seq": -1}]
    }))
    .await;
    let refused = v
        .until(|f| match f {
            ServerFrame::Error {
                code,
                conversation_id,
                ..
            } => Some((*code, *conversation_id)),
            _ => None,
        })
        .await;
    assert_eq!(refused, (protocol::ErrorCode::BadRequest, Some(conv)));

    // `null` for an optional field is the same as leaving it out; and a second send without a
    // conversation goes into the open one.
    v.send_json(serde_json::json!({
        "type": "send", "client_id": "second", "body": "again", "conversation_id": null
    }))
    .await;
    let (client_id, second_conv, seq) = v.until(ack_of).await;
    assert_eq!((client_id.as_str(), second_conv, seq), ("second", conv, 2));

    // A visitor hello with more cursors than allowed ends the connection, like an agent's.
    let cursors: Vec<(ConversationId, i64)> = (1..=1001).map(|n| (ConversationId(n), 0)).collect();
    let mut ws = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    ws.send_json(visitor_hello(&key, Some(&token), &cursors))
        .await;
    let (frames, code) = ws
        .closed_within(common::client::WAIT)
        .await
        .expect("closed");
    assert_eq!(code, 4413, "{frames:?}");
    assert_eq!(
        frames.iter().find_map(error_of).as_deref(),
        Some("too_large")
    );
    server.stop().await;
}
