//! Invitations to chat over real sockets: every online visitor an agent invites gets the
//! agent's words, whether on a WebSocket or on the HTTP fallback (held in a long poll or between
//! two polls), and an invite to a visitor who is not online is refused so the console can say
//! it was not delivered.
//!
//! Nothing here sleeps: each step waits for the frame it expects, with [`WAIT`] only as the
//! safety net.

use crate::common;

use common::client::{Http, WAIT, Ws, ack_of, visitor_hello, welcome_of};
use protocol::{Author, ConversationId, ErrorCode, ServerFrame, VisitorId};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const ORIGIN: &str = "https://shop.example";

/// Visitors on each transport.
const PER_TRANSPORT: usize = 25;

/// How soon after the agent's ack an online visitor has the invitation, at the latest.
const PROMPTLY: Duration = Duration::from_millis(500);

/// What a visitor's client got: (visitor, conversation, author, body) of the first message.
type Got = (VisitorId, ConversationId, Author, String);

fn invite(visitor: VisitorId) -> serde_json::Value {
    serde_json::json!({
        "type": "invite",
        "visitor_id": visitor,
        "client_id": format!("invite-{visitor}"),
        "body": format!("Hello, visitor {visitor}!"),
    })
}

/// The first message a frame list holds, as the widget takes it up.
fn first_message(visitor: VisitorId, frames: &[ServerFrame]) -> Option<Got> {
    frames.iter().find_map(|frame| match frame {
        ServerFrame::Message(m) => Some((visitor, m.conversation_id, m.author, m.body.clone())),
        _ => None,
    })
}

/// A WebSocket visitor browsing (welcomed, not chatting): reports its first message on `got`.
async fn ws_visitor(base: &str, got: mpsc::UnboundedSender<(Got, Instant)>) -> VisitorId {
    let mut ws = Ws::connect(base, "/ws/visitor", Some(ORIGIN), None).await;
    ws.send_json(visitor_hello("shop", None, &[])).await;
    let (_, visitor) = ws.until(welcome_of).await;
    tokio::spawn(async move {
        let message = ws
            .until(|frame| first_message(visitor, std::slice::from_ref(frame)))
            .await;
        let _ = got.send((message, Instant::now()));
        // Kept open until the test has everything: a closed socket is a visitor leaving.
        got.closed().await;
    });
    visitor
}

/// An HTTP-fallback visitor polling as the widget does: with no cursor until a conversation is
/// known, again at once after every answer (an `assigned` alone ends a poll too).
async fn http_visitor(
    server: &common::TestServer,
    got: mpsc::UnboundedSender<(Got, Instant)>,
) -> VisitorId {
    let (http, visitor): (Http, VisitorId) = common::http_visitor(server, "shop", ORIGIN).await;
    tokio::spawn(async move {
        loop {
            let (status, frames) = http.poll(&[], 25).await;
            assert_eq!(status, 200, "poll of visitor {visitor}: {frames:?}");
            if let Some(message) = first_message(visitor, &frames) {
                let _ = got.send((message, Instant::now()));
                return;
            }
        }
    });
    visitor
}

#[tokio::test(flavor = "multi_thread")]
async fn every_online_visitor_invited_gets_the_words_on_either_transport() {
    // Fifty invites in a burst are within the agent's message rate here.
    let server = common::spawn_sqlite_with(|c| c.messages_per_minute = 600).await;
    let store = server.store.as_ref();
    let (site, _) = common::site(store, "shop", &[ORIGIN]).await;
    let (ann, cookie) = common::agent_with_limit(store, "ann@shop.example", &[site], 100).await;
    let mut console = Ws::connect(&server.url(""), "/ws/agent", None, Some(&cookie)).await;
    console.send_json(common::client::agent_hello(&[])).await;
    console
        .until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;

    let (got, mut delivered) = mpsc::unbounded_channel();
    let mut visitors = Vec::new();
    for _ in 0..PER_TRANSPORT {
        visitors.push(("websocket", ws_visitor(&server.url(""), got.clone()).await));
        visitors.push(("http", http_visitor(&server, got.clone()).await));
    }
    drop(got);

    for (_, visitor) in &visitors {
        console.send_json(invite(*visitor)).await;
    }
    // Each invite is answered with its ack: the first message of a new conversation.
    let mut acks = HashMap::new();
    while acks.len() < visitors.len() {
        let (client_id, conversation, seq) = console.until(ack_of).await;
        assert_eq!(seq, 1, "{client_id}");
        acks.insert(client_id, (conversation, Instant::now()));
    }

    let mut reached = HashMap::new();
    while reached.len() < visitors.len() {
        let ((visitor, conversation, author, body), at) =
            tokio::time::timeout(WAIT, delivered.recv())
                .await
                .unwrap_or_else(|_| {
                    let missing: Vec<_> = visitors
                        .iter()
                        .filter(|(_, v)| !reached.contains_key(v))
                        .collect();
                    panic!("invites never reached {missing:?}")
                })
                .expect("a visitor's client ended without a message");
        assert_eq!(author, Author::Agent);
        assert_eq!(body, format!("Hello, visitor {visitor}!"));
        let (acked, acked_at) = acks[&format!("invite-{visitor}")];
        assert_eq!(conversation, acked);
        // Often before the ack is read here; never long after it.
        let late = at.saturating_duration_since(acked_at);
        assert!(
            late < PROMPTLY,
            "visitor {visitor} got the invite {late:?} after the ack"
        );
        reached.insert(visitor, conversation);
    }
    // One conversation per visitor, each the inviting agent's.
    let mut conversations: Vec<ConversationId> = reached.values().copied().collect();
    conversations.sort_unstable();
    conversations.dedup();
    assert_eq!(conversations.len(), visitors.len());
    for conversation in conversations {
        let stored = store.conversation(conversation).await.expect("read");
        assert_eq!(stored.and_then(|c| c.assignee_id), Some(ann));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invite_to_a_visitor_who_is_not_online_is_refused_and_starts_nothing() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (site, _) = common::site(store, "shop", &[ORIGIN]).await;
    let (_, cookie) = common::agent_with_limit(store, "ann@shop.example", &[site], 5).await;
    let mut console = Ws::connect(&server.url(""), "/ws/agent", None, Some(&cookie)).await;
    console.send_json(common::client::agent_hello(&[])).await;
    console
        .until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;
    // Known to the site (a stale row in a console, say) but with no connection anywhere.
    let gone = store
        .upsert_visitor(site, "gone", server::now_ms())
        .await
        .expect("visitor");

    console.send_json(invite(gone.id)).await;
    let refusal = console
        .until(|f| match f {
            ServerFrame::Error {
                code, client_id, ..
            } => Some((*code, client_id.clone().map(|c| c.0))),
            _ => None,
        })
        .await;
    assert_eq!(
        refusal,
        (ErrorCode::Conflict, Some(format!("invite-{}", gone.id)))
    );
    let conversations = store.visitor_conversations(gone.id).await.expect("read");
    assert!(conversations.is_empty(), "{conversations:?}");
    server.stop().await;
}
