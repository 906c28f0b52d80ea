//! Automatic assignment over real sockets: round-robin among online agents under their chat
//! limit, a queue whose positions visitors are told, and a freed slot taking the next in line.

use crate::common;

use common::client::{Ws, ack_of, agent_hello, send_frame, visitor_hello, welcome_of};
use protocol::{AgentId, ConversationId, ServerFrame, SiteId, VisitorId};

const ORIGIN: &str = "https://shop.example";

/// An agent of `site` allowed `max_chats` at once, signed in; returns (id, cookie).
async fn agent(
    server: &common::TestServer,
    email: &str,
    site: SiteId,
    max_chats: i32,
) -> (AgentId, String) {
    common::agent_with_limit(server.store.as_ref(), email, &[site], max_chats).await
}

/// A connected agent console, welcomed.
async fn console(server: &common::TestServer, cookie: &str) -> Ws {
    let mut ws = Ws::connect(&server.url(""), "/ws/agent", None, Some(cookie)).await;
    ws.send_json(agent_hello(&[])).await;
    ws.until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;
    ws
}

/// A visitor who opened a conversation with `text`: their socket and the conversation.
async fn visitor(server: &common::TestServer, text: &str) -> (Ws, ConversationId) {
    let mut ws = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    ws.send_json(visitor_hello("shop", None, &[])).await;
    ws.send_json(send_frame(None, "first", text)).await;
    let (_, conversation, _) = ws.until(ack_of).await;
    (ws, conversation)
}

/// The next `assigned` (agent name) or `queue` (position) frame a visitor gets.
async fn placed(ws: &mut Ws) -> Result<String, u32> {
    ws.until(|f| match f {
        ServerFrame::Assigned { agent_name, .. } => Some(Ok(agent_name.clone())),
        ServerFrame::Queue { position, .. } => Some(Err(*position)),
        _ => None,
    })
    .await
}

async fn assignee(server: &common::TestServer, conversation: ConversationId) -> Option<AgentId> {
    server
        .store
        .conversation(conversation)
        .await
        .expect("read")
        .and_then(|c| c.assignee_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn conversations_go_round_robin_up_to_each_limit_then_wait_in_line() {
    let server = common::spawn_sqlite().await;
    let (site, _) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (ann, ann_cookie) = agent(&server, "ann@shop.example", site, 2).await;
    let (bo, bo_cookie) = agent(&server, "bo@shop.example", site, 2).await;
    let mut ann_console = console(&server, &ann_cookie).await;
    let _bo_console = console(&server, &bo_cookie).await;

    let mut visitors = Vec::new();
    for n in 1..=6 {
        visitors.push(visitor(&server, &format!("question {n}")).await);
    }
    let mut placements = Vec::new();
    for (ws, _) in &mut visitors {
        placements.push(placed(ws).await);
    }
    assert_eq!(
        placements,
        [
            Ok("ann".to_string()),
            Ok("bo".to_string()),
            Ok("ann".to_string()),
            Ok("bo".to_string()),
            Err(1),
            Err(2),
        ]
    );
    let mut owners = Vec::new();
    for (_, conversation) in &visitors {
        owners.push(assignee(&server, *conversation).await);
    }
    assert_eq!(
        owners,
        [Some(ann), Some(bo), Some(ann), Some(bo), None, None]
    );
    // The agents' consoles were told, as durable events.
    let told = ann_console
        .until(|f| match f {
            ServerFrame::AssignmentChanged {
                conversation_id,
                assignee,
                ..
            } if *conversation_id == visitors[3].1 => Some(*assignee),
            _ => None,
        })
        .await;
    assert_eq!(told, Some(bo));

    // Ann resolves her first chat: the first in line is hers, the second moves up.
    let first = visitors[0].1;
    ann_console
        .send_json(serde_json::json!({"type": "set_conversation_status",
            "conversation_id": first, "client_id": "done-1", "status": "resolved"}))
        .await;
    assert_eq!(placed(&mut visitors[4].0).await, Ok("ann".to_string()));
    assert_eq!(placed(&mut visitors[5].0).await, Err(1));
    assert_eq!(assignee(&server, visitors[4].1).await, Some(ann));
    assert_eq!(assignee(&server, visitors[5].1).await, None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_coming_online_takes_the_waiting_conversations() {
    let server = common::spawn_sqlite().await;
    let (site, _) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (ann, ann_cookie) = agent(&server, "ann@shop.example", site, 1).await;
    let (mut early, first) = visitor(&server, "anyone there?").await;
    // Nobody online: the visitor waits first in line.
    assert_eq!(placed(&mut early).await, Err(1));
    assert_eq!(assignee(&server, first).await, None);

    let mut ann_console = console(&server, &ann_cookie).await;
    assert_eq!(placed(&mut early).await, Ok("ann".to_string()));
    assert_eq!(assignee(&server, first).await, Some(ann));

    // An agent away takes nothing new; back online, she takes the next one.
    ann_console
        .send_json(serde_json::json!({"type": "set_conversation_status",
            "conversation_id": first, "client_id": "r1", "status": "resolved"}))
        .await;
    ann_console
        .send_json(serde_json::json!({"type": "set_status", "status": "away"}))
        .await;
    ann_console.until(ack_of).await;
    let (mut later, second) = visitor(&server, "hello?").await;
    assert_eq!(placed(&mut later).await, Err(1));
    ann_console
        .send_json(serde_json::json!({"type": "set_status", "status": "online"}))
        .await;
    assert_eq!(placed(&mut later).await, Ok("ann".to_string()));
    assert_eq!(assignee(&server, second).await, Some(ann));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_visitor_who_reconnects_is_told_their_place_at_once() {
    let server = common::spawn_sqlite().await;
    let (site, _) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (_, ann_cookie) = agent(&server, "ann@shop.example", site, 1).await;
    let _ann = console(&server, &ann_cookie).await;
    let (mut served, _) = visitor(&server, "first").await;
    assert_eq!(placed(&mut served).await, Ok("ann".to_string()));

    let mut waiting = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    waiting.send_json(visitor_hello("shop", None, &[])).await;
    let (token, _) = waiting.until(welcome_of).await;
    waiting.send_json(send_frame(None, "w1", "me too")).await;
    let (_, conversation, _) = waiting.until(ack_of).await;
    assert_eq!(placed(&mut waiting).await, Err(1));
    waiting.drop_connection();

    // A new connection (a reload, another tab) hears the place right after the welcome.
    let mut again = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    again
        .send_json(visitor_hello("shop", Some(&token), &[(conversation, 1)]))
        .await;
    let queue = again
        .until(|f| match f {
            ServerFrame::Queue {
                conversation_id,
                position,
            } => Some((*conversation_id, *position)),
            ServerFrame::Message(_) => Some((ConversationId(0), 0)),
            _ => None,
        })
        .await;
    assert_eq!(queue, (conversation, 1), "before any replayed message");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_pick_up_transfer_and_give_back_conversations() {
    let server = common::spawn_sqlite().await;
    let (site, _) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (other_site, _) = common::site(server.store.as_ref(), "other", &[ORIGIN]).await;
    let (ann, ann_cookie) = agent(&server, "ann@shop.example", site, 1).await;
    let (bo, bo_cookie) = agent(&server, "bo@shop.example", site, 5).await;
    let (outsider, _) = agent(&server, "out@other.example", other_site, 5).await;
    let mut ann_console = console(&server, &ann_cookie).await;
    let (mut first_visitor, first) = visitor(&server, "first").await;
    assert_eq!(placed(&mut first_visitor).await, Ok("ann".to_string()));
    let (mut second_visitor, second) = visitor(&server, "second").await;
    assert_eq!(placed(&mut second_visitor).await, Err(1), "ann is full");

    // Bo signs in and picks up the waiting one.
    let mut bo_console = console(&server, &bo_cookie).await;
    assert_eq!(placed(&mut second_visitor).await, Ok("bo".to_string()));

    // Ann transfers hers to Bo: both consoles see it, and the visitor learns who answers.
    let transfer = |to: Option<AgentId>| {
        let mut frame = serde_json::json!({"type": "assign", "conversation_id": first});
        if let Some(to) = to {
            frame["to"] = to.0.into();
        }
        frame
    };
    // A note longer than a message is refused and moves nothing.
    let mut too_long = transfer(Some(bo));
    too_long["note"] = "x"
        .repeat(protocol::Limits::default().max_message_bytes as usize + 1)
        .into();
    ann_console.send_json(too_long).await;
    let refused = ann_console
        .until(|f| match f {
            ServerFrame::Error { code, .. } => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(refused, protocol::ErrorCode::TooLarge);
    assert_eq!(assignee(&server, first).await, Some(ann));
    let mut with_note = transfer(Some(bo));
    with_note["note"] = "Wants a refund; order 1182 shipped.".into();
    ann_console.send_json(with_note).await;
    assert_eq!(placed(&mut first_visitor).await, Ok("bo".to_string()));
    for console in [&mut ann_console, &mut bo_console] {
        // Earlier events (the first assignment, to Ann) come first; wait for the transfer's.
        let handover = console
            .until(|f| match f {
                ServerFrame::AssignmentChanged {
                    conversation_id,
                    assignee: Some(to),
                    by,
                    note,
                    ..
                } if *conversation_id == first && *to == bo => Some((*by, note.clone())),
                _ => None,
            })
            .await;
        assert_eq!(
            handover,
            (
                Some(ann),
                Some("Wants a refund; order 1182 shipped.".to_string())
            )
        );
    }
    assert_eq!(assignee(&server, first).await, Some(bo));
    // The note is for agents: the visitor's frames never carry it.
    let leaked = first_visitor
        .try_next(std::time::Duration::from_millis(300))
        .await
        .map(|f| serde_json::to_string(&f).unwrap_or_default());
    assert!(!leaked.is_some_and(|f| f.contains("refund")));

    // Nobody outside the site can be given a conversation.
    bo_console.send_json(transfer(Some(outsider))).await;
    let refused = bo_console
        .until(|f| match f {
            ServerFrame::Error { code, .. } => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(refused, protocol::ErrorCode::NotFound);
    assert_eq!(assignee(&server, first).await, Some(bo));

    // Bo gives the second one back: it goes to the queue, and Ann (free again) takes it.
    bo_console
        .send_json(serde_json::json!({"type": "assign", "conversation_id": second}))
        .await;
    assert_eq!(placed(&mut second_visitor).await, Ok("ann".to_string()));
    assert_eq!(assignee(&server, second).await, Some(ann));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_invites_a_browsing_visitor_and_keeps_the_chat() {
    let server = common::spawn_sqlite().await;
    let (site, _) = common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (other, _) = common::site(server.store.as_ref(), "other", &[ORIGIN]).await;
    let (ann, ann_cookie) = agent(&server, "ann@shop.example", site, 3).await;
    let (_, bo_cookie) = agent(&server, "bo@shop.example", site, 3).await;
    let mut ann_console = console(&server, &ann_cookie).await;
    let _bo_console = console(&server, &bo_cookie).await;
    // A visitor browsing, not chatting.
    let mut browsing = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    browsing.send_json(visitor_hello("shop", None, &[])).await;
    let (_, visitor_id) = browsing.until(welcome_of).await;

    let invite = |client_id: &str, visitor: VisitorId, body: &str| {
        serde_json::json!({"type": "invite", "visitor_id": visitor, "client_id": client_id,
            "body": body})
    };
    ann_console
        .send_json(invite(
            "inv-1",
            visitor_id,
            "Hi! Can I help you find a size?",
        ))
        .await;
    let (_, conversation, seq) = ann_console.until(ack_of).await;
    assert_eq!(seq, 1);
    // The visitor hears who answers and the words, and the chat is Ann's, not the router's.
    assert_eq!(placed(&mut browsing).await, Ok("ann".to_string()));
    let words = browsing
        .until(|f| match f {
            ServerFrame::Message(m) => Some((m.conversation_id, m.author, m.body.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        words,
        (
            conversation,
            protocol::Author::Agent,
            "Hi! Can I help you find a size?".to_string()
        )
    );
    assert_eq!(assignee(&server, conversation).await, Some(ann));

    // A resend is the same message; a second invite joins the open conversation.
    ann_console
        .send_json(invite("inv-1", visitor_id, "ignored"))
        .await;
    assert_eq!(
        ann_console.until(ack_of).await,
        ("inv-1".to_string(), conversation, 1)
    );
    ann_console
        .send_json(invite("inv-2", visitor_id, "Still there?"))
        .await;
    assert_eq!(
        ann_console.until(ack_of).await,
        ("inv-2".to_string(), conversation, 2)
    );

    // Refused: a visitor of another site, an empty message.
    let stranger = server
        .store
        .upsert_visitor(other, "stranger", server::now_ms())
        .await
        .expect("visitor");
    for (frame, code) in [
        (
            invite("inv-3", stranger.id, "hello"),
            protocol::ErrorCode::NotFound,
        ),
        (
            invite("inv-4", visitor_id, "   "),
            protocol::ErrorCode::BadRequest,
        ),
    ] {
        ann_console.send_json(frame).await;
        let refused = ann_console
            .until(|f| match f {
                ServerFrame::Error { code, .. } => Some(*code),
                _ => None,
            })
            .await;
        assert_eq!(refused, code);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_transferred_to_a_team_goes_to_its_members_only() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (site, _) = common::site(store, "shop", &[ORIGIN]).await;
    let (other_site, _) = common::site(store, "other", &[ORIGIN]).await;
    let (ann, ann_cookie) = agent(&server, "ann@shop.example", site, 5).await;
    let (bo, bo_cookie) = agent(&server, "bo@shop.example", site, 1).await;
    let billing = store.create_team(site, "Billing").await.expect("team");
    store.add_team_member(billing.id, bo).await.expect("member");
    let elsewhere = store.create_team(other_site, "Other").await.expect("team");
    let mut ann_console = console(&server, &ann_cookie).await;
    let (mut visitor_one, first) = visitor(&server, "a billing question").await;
    assert_eq!(placed(&mut visitor_one).await, Ok("ann".to_string()));

    // A team of another site is refused, and nothing moves.
    ann_console
        .send_json(
            serde_json::json!({"type": "assign", "conversation_id": first,
            "team": elsewhere.id}),
        )
        .await;
    let refused = ann_console
        .until(|f| match f {
            ServerFrame::Error { code, .. } => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(refused, protocol::ErrorCode::NotFound);
    assert_eq!(assignee(&server, first).await, Some(ann));

    // To Billing, while Bo (its only member) is offline: it waits, and Ann, free and online,
    // is not given it back.
    ann_console
        .send_json(
            serde_json::json!({"type": "assign", "conversation_id": first,
            "team": billing.id, "note": "Invoice question."}),
        )
        .await;
    let routed = ann_console
        .until(|f| match f {
            ServerFrame::AssignmentChanged {
                conversation_id,
                assignee: None,
                team,
                ..
            } if *conversation_id == first => Some(*team),
            _ => None,
        })
        .await;
    assert_eq!(routed, Some(billing.id));
    assert_eq!(placed(&mut visitor_one).await, Err(1));
    assert_eq!(assignee(&server, first).await, None);

    // Bo comes online and takes it; a new visitor still goes to Ann (Bo is full now).
    let _bo_console = console(&server, &bo_cookie).await;
    assert_eq!(placed(&mut visitor_one).await, Ok("bo".to_string()));
    assert_eq!(assignee(&server, first).await, Some(bo));
    let (mut visitor_two, second) = visitor(&server, "something else").await;
    assert_eq!(placed(&mut visitor_two).await, Ok("ann".to_string()));
    assert_eq!(assignee(&server, second).await, Some(ann));
    server.stop().await;
}
