//! The `Store` contract, run unchanged against whichever backend `TEST_DATABASE_URL` selects
//! (default: SQLite in a temporary directory). Every test gets a database of its own.

use crate::common;

use std::cmp::Reverse;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Beyond, TestDb};
use protocol::{Author, ClientId, Seq};
use store::search::Query;
use store::{
    Agent, AgentId, Conversation, ConversationId, ConversationStatus, DeliveryAttempt,
    DeliveryState, Error, Event, HistoryFilter, LeaveMessageStatus, MessageTranslation, NewAgent,
    NewApiToken, NewAttachment, NewBan, NewEvent, NewLeaveMessage, NewMessage, NewSite, Role, Site,
    SiteId, Store, Visitor, VisitorAttributes,
};
use store::{TranslationKey, TranslationState};

/// A fixed "now" so results do not depend on the clock.
const T0: i64 = 1_700_000_000_000;

pub(crate) async fn site(store: &dyn Store, key: &str) -> Site {
    store
        .create_site(NewSite {
            public_key: key.to_owned(),
            name: format!("Site {key}"),
            allowed_origins: vec!["https://shop.example".to_owned()],
            widget_settings: serde_json::json!({ "color": "#0a7" }),
            created_at: T0,
        })
        .await
        .expect("create site")
}

async fn agent(store: &dyn Store, email: &str) -> Agent {
    store
        .create_agent(new_agent(email))
        .await
        .expect("create agent")
}

fn new_agent(email: &str) -> NewAgent {
    NewAgent {
        email: email.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        display_name: "Ada".to_owned(),
        role: Role::Agent,
        language: "en".to_owned(),
        max_chats: 5,
        created_at: T0,
    }
}

pub(crate) async fn visitor(store: &dyn Store, site: &Site, key: &str) -> Visitor {
    store
        .upsert_visitor(site.id, key, T0)
        .await
        .expect("upsert visitor")
}

/// A site, a visitor and an empty conversation between them.
async fn conversation(store: &dyn Store) -> Conversation {
    let site = site(store, "site-key").await;
    let visitor = visitor(store, &site, "visitor-key").await;
    store
        .create_conversation(site.id, visitor.id, T0)
        .await
        .expect("create conversation")
}

pub(crate) fn message(client_id: &str, body: &str) -> NewMessage {
    NewMessage {
        client_id: ClientId(client_id.to_owned()),
        author: Author::Visitor,
        agent_id: None,
        body: body.to_owned(),
        attachment: None,
        created_at: T0 + 1,
    }
}

/// Appends `count` messages with client ids `m1`, `m2` … one after another.
async fn append_many(store: &dyn Store, conversation: &Conversation, count: usize) {
    for n in 1..=count {
        store
            .append_message(
                conversation.id,
                message(&format!("m{n}"), &format!("body {n}")),
            )
            .await
            .expect("append");
    }
}

fn seqs(messages: &[store::Message]) -> Vec<Seq> {
    messages.iter().map(|m| m.seq).collect()
}

#[tokio::test]
async fn ping_answers_and_backend_matches_the_url() {
    let db = TestDb::new().await;
    db.store.ping().await.expect("ping");
    let expected = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => store::DatabaseUrl::parse(&url).expect("url").backend(),
        Err(_) => store::Backend::Sqlite,
    };
    assert_eq!(db.store.backend(), expected);
}

#[tokio::test]
async fn appending_the_same_client_id_twice_stores_one_message() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let conv = conversation(store).await;

    let first = store
        .append_message(conv.id, message("c-1", "hello"))
        .await
        .expect("first append");
    assert!(first.created);
    assert_eq!(first.message.seq, 1);
    assert_eq!(first.message.client_id, ClientId("c-1".into()));

    let again = store
        .append_message(conv.id, message("c-1", "hello (resent)"))
        .await
        .expect("second append");
    assert!(!again.created, "a resend must not create a message");
    assert_eq!(
        again.message, first.message,
        "a resend returns the stored original"
    );

    let next = store
        .append_message(conv.id, message("c-2", "next"))
        .await
        .expect("third append");
    assert_eq!(next.message.seq, 2, "a resend must not consume a seq");

    let all = store.messages_after(conv.id, 0, 100).await.expect("list");
    assert_eq!(seqs(&all), vec![1, 2]);
    let conv = store
        .conversation(conv.id)
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(conv.last_seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_writers_get_seqs_one_to_fifty() {
    let db = TestDb::new().await;
    let conv = conversation(db.store.as_ref()).await;

    let writers: Vec<_> = (1..=50)
        .map(|n| {
            let store = Arc::clone(&db.store);
            tokio::spawn(async move {
                store
                    .append_message(conv.id, message(&format!("w{n}"), &format!("from {n}")))
                    .await
            })
        })
        .collect();
    let mut assigned = Vec::new();
    for writer in writers {
        let appended = writer.await.expect("writer task").expect("append");
        assert!(appended.created);
        assigned.push(appended.message.seq);
    }
    assigned.sort_unstable();
    assert_eq!(assigned, (1..=50).collect::<Vec<Seq>>());

    let stored = db
        .store
        .messages_after(conv.id, 0, 100)
        .await
        .expect("list");
    assert_eq!(seqs(&stored), (1..=50).collect::<Vec<Seq>>());
    let client_ids: HashSet<_> = stored.iter().map(|m| m.client_id.0.clone()).collect();
    assert_eq!(client_ids.len(), 50);
    let conv = db
        .store
        .conversation(conv.id)
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(conv.last_seq, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_resends_store_exactly_one_message() {
    let db = TestDb::new().await;
    let conv = conversation(db.store.as_ref()).await;

    let senders: Vec<_> = (0..10)
        .map(|_| {
            let store = Arc::clone(&db.store);
            tokio::spawn(async move { store.append_message(conv.id, message("same", "hi")).await })
        })
        .collect();
    let mut created = 0;
    for sender in senders {
        let appended = sender.await.expect("sender task").expect("append");
        assert_eq!(appended.message.seq, 1);
        created += usize::from(appended.created);
    }
    assert_eq!(created, 1, "exactly one of the resends creates the message");
    let stored = db
        .store
        .messages_after(conv.id, 0, 100)
        .await
        .expect("list");
    assert_eq!(seqs(&stored), vec![1]);
}

/// An append says whether its conversation was parked (resolved or snoozed) when the message
/// went in, read in the same transaction: the server reopens on a visitor's message by it,
/// without reading the conversation first. A resend says no.
#[tokio::test]
async fn an_append_says_whether_its_conversation_was_resolved_or_snoozed() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let conv = conversation(store).await;
    let open = store
        .append_message(conv.id, message("a", "open"))
        .await
        .expect("append");
    assert!(open.created && !open.parked);
    store
        .set_conversation_status(conv.id, ConversationStatus::Resolved, 2)
        .await
        .expect("resolve");
    let resolved = store
        .append_message(conv.id, message("b", "resolved"))
        .await
        .expect("append");
    assert!(resolved.created && resolved.parked);
    let resent = store
        .append_message(conv.id, message("b", "resolved"))
        .await
        .expect("resend");
    assert!(!resent.created && !resent.parked);
    store
        .set_conversation_status(conv.id, ConversationStatus::Open, 3)
        .await
        .expect("reopen");
    store
        .snooze_conversation(conv.id, 9_000_000_000_000, 4)
        .await
        .expect("snooze");
    let snoozed = store
        .append_message(conv.id, message("c", "snoozed"))
        .await
        .expect("append");
    assert!(snoozed.created && snoozed.parked);
}

/// Appends that arrive together may be committed together (SQLite's group commit): one that
/// fails after taking its seq — written by an agent that does not exist — fails alone, and its
/// seq goes to the next message: no gap, and nothing of it is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_append_that_fails_among_concurrent_ones_fails_alone() {
    let db = TestDb::new().await;
    let conv = conversation(db.store.as_ref()).await;
    let nobody = agent(db.store.as_ref(), "ann@shop.example")
        .await
        .id
        .beyond(1000);

    let writers: Vec<_> = (1..=40)
        .map(|n| {
            let store = Arc::clone(&db.store);
            let mut new = message(&format!("w{n}"), &format!("from {n}"));
            // Every tenth one names an agent that does not exist.
            let bad = n % 10 == 0;
            if bad {
                new.author = Author::Agent;
                new.agent_id = Some(nobody);
            }
            tokio::spawn(async move { (bad, store.append_message(conv.id, new).await) })
        })
        .collect();
    let mut assigned = Vec::new();
    for writer in writers {
        match writer.await.expect("writer task") {
            (true, Err(Error::NotFound)) => {}
            (false, Ok(appended)) => {
                assert!(appended.created);
                assigned.push(appended.message.seq);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assigned.sort_unstable();
    assert_eq!(assigned, (1..=36).collect::<Vec<Seq>>());
    let stored = db
        .store
        .messages_after(conv.id, 0, 100)
        .await
        .expect("list");
    assert_eq!(seqs(&stored), (1..=36).collect::<Vec<Seq>>());
    let conv = db
        .store
        .conversation(conv.id)
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(conv.last_seq, 36, "the failed appends took no seq");
}

#[tokio::test]
async fn messages_after_returns_exactly_the_gap_in_order() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let conv = conversation(store).await;
    append_many(store, &conv, 10).await;

    let gap = store.messages_after(conv.id, 4, 100).await.expect("gap");
    assert_eq!(seqs(&gap), vec![5, 6, 7, 8, 9, 10]);
    assert_eq!(gap[0].body, "body 5");
    assert_eq!(gap[0].client_id, ClientId("m5".into()));

    let limited = store.messages_after(conv.id, 4, 3).await.expect("limited");
    assert_eq!(seqs(&limited), vec![5, 6, 7]);
    let rest = store
        .messages_after(conv.id, 7, 3)
        .await
        .expect("continued");
    assert_eq!(seqs(&rest), vec![8, 9, 10]);

    assert!(
        store
            .messages_after(conv.id, 10, 5)
            .await
            .expect("none")
            .is_empty()
    );
    assert!(
        store
            .messages_after(conv.id, 0, 0)
            .await
            .expect("zero")
            .is_empty()
    );

    // Another conversation's messages never leak in.
    let site = store
        .site_by_key("site-key")
        .await
        .expect("site")
        .expect("exists");
    let other_visitor = visitor(store, &site, "other").await;
    let other = store
        .create_conversation(site.id, other_visitor.id, T0)
        .await
        .expect("other conversation");
    append_many(store, &other, 3).await;
    let again = store.messages_after(conv.id, 0, 100).await.expect("again");
    assert_eq!(seqs(&again), (1..=10).collect::<Vec<Seq>>());
    assert!(again.iter().all(|m| m.conversation_id == conv.id));
}

#[tokio::test]
async fn messages_before_pages_backwards() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let conv = conversation(store).await;
    append_many(store, &conv, 10).await;

    let newest = store
        .messages_before(conv.id, None, 4)
        .await
        .expect("newest");
    assert_eq!(seqs(&newest), vec![10, 9, 8, 7]);
    let older = store
        .messages_before(conv.id, Some(7), 4)
        .await
        .expect("older");
    assert_eq!(seqs(&older), vec![6, 5, 4, 3]);
    let oldest = store
        .messages_before(conv.id, Some(3), 4)
        .await
        .expect("oldest");
    assert_eq!(seqs(&oldest), vec![2, 1]);
    let none = store
        .messages_before(conv.id, Some(1), 4)
        .await
        .expect("none");
    assert!(none.is_empty());
}

#[tokio::test]
async fn conversations_page_by_keyset_without_gaps_or_repeats() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let site_a = site(store, "a").await;
    let site_b = site(store, "b").await;
    let mut expected = Vec::new();
    for n in 0..25_i64 {
        let visitor = visitor(store, &site_a, &format!("v{n}")).await;
        // Five distinct timestamps, five conversations on each: ties must be broken by id.
        let conv = store
            .create_conversation(site_a.id, visitor.id, T0 + (n % 5) * 1000)
            .await
            .expect("create");
        expected.push(conv);
    }
    // A message moves a conversation to the top.
    let bumped = expected[3].id;
    store
        .append_message(
            bumped,
            NewMessage {
                created_at: T0 + 60_000,
                ..message("bump", "bump")
            },
        )
        .await
        .expect("append");
    for conv in &mut expected {
        if conv.id == bumped {
            conv.updated_at = T0 + 60_000;
            conv.last_seq = 1;
        }
    }
    let noise = visitor(store, &site_b, "noise").await;
    store
        .create_conversation(site_b.id, noise.id, T0 + 500)
        .await
        .expect("other site");
    expected.sort_by_key(|c| Reverse((c.updated_at, c.id)));

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .conversations_page(site_a.id, cursor, 7)
            .await
            .expect("page");
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        cursor = Some(last.cursor());
        seen.extend(page);
    }
    assert_eq!(seen, expected);
    assert_eq!(seen[0].id, bumped);
}

#[tokio::test]
async fn leave_messages_page_by_keyset_newest_first() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let site_a = site(store, "a").await;
    let site_b = site(store, "b").await;
    let known = visitor(store, &site_a, "known").await;
    let mut expected = Vec::new();
    for n in 0..25_i64 {
        let stored = store
            .create_leave_message(NewLeaveMessage {
                site_id: site_a.id,
                visitor_id: (n % 2 == 0).then_some(known.id),
                name: (n % 3 == 0).then(|| format!("name {n}")),
                contact: format!("v{n}@example.com"),
                body: format!("please call back {n}"),
                created_at: T0 + (n % 4) * 1000,
            })
            .await
            .expect("create");
        assert_eq!(stored.status, LeaveMessageStatus::New);
        assert_eq!(stored.assignee_id, None);
        expected.push(stored);
    }
    store
        .create_leave_message(NewLeaveMessage {
            site_id: site_b.id,
            visitor_id: None,
            name: None,
            contact: "x@example.com".into(),
            body: "other site".into(),
            created_at: T0,
        })
        .await
        .expect("other site");
    expected.sort_by_key(|m| Reverse((m.created_at, m.id)));

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .leave_messages_page(&[site_a.id], None, cursor, 7)
            .await
            .expect("page");
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        cursor = Some(last.cursor());
        seen.extend(page);
    }
    assert_eq!(seen, expected);

    let missing_site = store
        .create_leave_message(NewLeaveMessage {
            site_id: site_b.id.beyond(1000),
            visitor_id: None,
            name: None,
            contact: "x".into(),
            body: "x".into(),
            created_at: T0,
        })
        .await;
    assert!(
        matches!(missing_site, Err(Error::NotFound)),
        "{missing_site:?}"
    );
}

#[tokio::test]
async fn duplicate_agent_email_is_a_conflict_on_email() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let ada = agent(store, "ada@example.com").await;
    assert_eq!(ada.role, Role::Agent);
    assert!(!ada.disabled);

    let duplicate = store.create_agent(new_agent("ada@example.com")).await;
    assert!(
        matches!(duplicate, Err(Error::Conflict { field: "email" })),
        "{duplicate:?}"
    );

    let found = store
        .agent_by_email("ada@example.com")
        .await
        .expect("lookup")
        .expect("exists");
    assert_eq!(found, ada);
    assert!(
        store
            .agent_by_email("bob@example.com")
            .await
            .expect("lookup")
            .is_none()
    );
}

#[tokio::test]
async fn agents_join_sites() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let ada = agent(store, "ada@example.com").await;
    let (a, b) = (site(store, "a").await, site(store, "b").await);
    assert!(
        store
            .agent_sites(ada.id)
            .await
            .expect("none yet")
            .is_empty()
    );
    store.add_agent_to_site(b.id, ada.id).await.expect("join b");
    store.add_agent_to_site(a.id, ada.id).await.expect("join a");
    store
        .add_agent_to_site(a.id, ada.id)
        .await
        .expect("join a again");
    assert_eq!(
        store.agent_sites(ada.id).await.expect("sites"),
        vec![a.id, b.id]
    );
    let missing = store.add_agent_to_site(a.id, ada.id.beyond(1000)).await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
}

#[tokio::test]
async fn sessions_authenticate_until_they_expire_or_are_deleted() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let ada = agent(store, "ada@example.com").await;
    let expires = T0 + 3_600_000;
    store
        .create_session("hash-1", ada.id, expires)
        .await
        .expect("create session");

    let found = store.session_agent("hash-1", T0).await.expect("lookup");
    assert_eq!(found, Some(ada.clone()));
    assert_eq!(
        store.session_agent("hash-2", T0).await.expect("lookup"),
        None
    );
    assert_eq!(
        store
            .session_agent("hash-1", expires)
            .await
            .expect("lookup"),
        None,
        "a session is expired at its expiry instant"
    );

    let duplicate = store.create_session("hash-1", ada.id, expires).await;
    assert!(
        matches!(duplicate, Err(Error::Conflict { .. })),
        "{duplicate:?}"
    );
    let unknown_agent = store
        .create_session("hash-3", ada.id.beyond(1000), expires)
        .await;
    assert!(
        matches!(unknown_agent, Err(Error::NotFound)),
        "{unknown_agent:?}"
    );

    store.delete_session("hash-1").await.expect("delete");
    assert_eq!(
        store.session_agent("hash-1", T0).await.expect("lookup"),
        None
    );
    store
        .delete_session("hash-1")
        .await
        .expect("delete again is fine");
}

#[tokio::test]
async fn a_new_password_ends_every_session_of_that_agent_only() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let ada = agent(store, "ada@example.com").await;
    let bob = agent(store, "bob@example.com").await;
    let expires = T0 + 3_600_000;
    for (hash, who) in [("ada-1", &ada), ("ada-2", &ada), ("bob-1", &bob)] {
        store
            .create_session(hash, who.id, expires)
            .await
            .expect("create session");
    }

    store
        .set_agent_password(ada.id, "new-hash")
        .await
        .expect("set password");
    let stored = store.agent(ada.id).await.expect("agent").expect("exists");
    assert_eq!(stored.password_hash, "new-hash");
    for hash in ["ada-1", "ada-2"] {
        assert_eq!(
            store.session_agent(hash, T0).await.expect("lookup"),
            None,
            "{hash} still signs in"
        );
    }
    assert_eq!(
        store.session_agent("bob-1", T0).await.expect("lookup"),
        Some(bob.clone()),
        "another agent's session survives"
    );
    store
        .set_agent_password(ada.id, "new-hash")
        .await
        .expect("the same hash again is fine");

    let unknown = store.set_agent_password(bob.id.beyond(1000), "x").await;
    assert!(matches!(unknown, Err(Error::NotFound)), "{unknown:?}");
}

#[tokio::test]
async fn upsert_visitor_is_idempotent_per_site() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let (a, b) = (site(store, "a").await, site(store, "b").await);

    let first = store.upsert_visitor(a.id, "vk", T0).await.expect("first");
    assert_eq!((first.created_at, first.last_seen_at), (T0, T0));
    assert_eq!(
        (first.name.as_deref(), first.email.as_deref()),
        (None, None)
    );

    let again = store
        .upsert_visitor(a.id, "vk", T0 + 5000)
        .await
        .expect("again");
    assert_eq!(again.id, first.id);
    assert_eq!(again.created_at, T0);
    assert_eq!(again.last_seen_at, T0 + 5000);

    let stale = store
        .upsert_visitor(a.id, "vk", T0 + 10)
        .await
        .expect("stale");
    assert_eq!(
        stale.last_seen_at,
        T0 + 5000,
        "last_seen_at never moves backwards"
    );

    let other_site = store
        .upsert_visitor(b.id, "vk", T0)
        .await
        .expect("other site");
    assert_ne!(other_site.id, first.id, "visitor keys are per site");

    let missing = store.upsert_visitor(b.id.beyond(1000), "vk", T0).await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
}

#[tokio::test]
async fn visitor_profiles_round_trip_and_leave_others_alone() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let site = site(store, "a").await;
    let mei = visitor(store, &site, "mei").await;
    let other = visitor(store, &site, "other").await;
    assert!(
        mei.attributes.0.is_empty(),
        "a new visitor has no attributes"
    );

    let attributes = VisitorAttributes(
        [
            ("plan", "金卡 gold"),
            ("order", "A-1'; DROP TABLE visitors;--"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let updated = store
        .set_visitor_profile(mei.id, Some("李梅"), Some("mei@example.com"), &attributes)
        .await
        .expect("set profile");
    assert_eq!(updated.name.as_deref(), Some("李梅"));
    assert_eq!(updated.email.as_deref(), Some("mei@example.com"));
    assert_eq!(updated.attributes, attributes);
    assert_eq!(updated.created_at, mei.created_at);
    let read = store.visitor(mei.id).await.expect("read").expect("exists");
    assert_eq!(read, updated);
    // Returning keeps the profile.
    let back = store
        .upsert_visitor(site.id, "mei", T0 + 1)
        .await
        .expect("upsert");
    assert_eq!(back.attributes, attributes);

    let cleared = store
        .set_visitor_profile(mei.id, None, None, &VisitorAttributes::default())
        .await
        .expect("clear");
    assert_eq!((cleared.name, cleared.email), (None, None));
    assert!(cleared.attributes.0.is_empty());
    let untouched = store
        .visitor(other.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(untouched, other);

    let missing = store
        .set_visitor_profile(
            other.id.beyond(1000),
            None,
            None,
            &VisitorAttributes::default(),
        )
        .await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
}

#[tokio::test]
async fn sites_are_found_by_public_key() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let created = store
        .create_site(NewSite {
            public_key: "pk_live_1".into(),
            name: "商店".into(),
            allowed_origins: vec!["https://a.example".into(), "https://b.example".into()],
            widget_settings: serde_json::json!({ "greeting": "你好！", "position": "right" }),
            created_at: T0,
        })
        .await
        .expect("create");
    let found = store
        .site_by_key("pk_live_1")
        .await
        .expect("lookup")
        .expect("exists");
    assert_eq!(found, created);
    assert!(
        store
            .site_by_key("pk_live_2")
            .await
            .expect("lookup")
            .is_none()
    );
    assert!(
        store
            .site_by_key("PK_LIVE_1")
            .await
            .expect("lookup")
            .is_none(),
        "keys compare exactly on every backend"
    );

    let duplicate = store
        .create_site(NewSite {
            name: "again".into(),
            ..NewSite {
                public_key: "pk_live_1".into(),
                name: String::new(),
                allowed_origins: Vec::new(),
                widget_settings: serde_json::json!({}),
                created_at: T0,
            }
        })
        .await;
    assert!(
        matches!(
            duplicate,
            Err(Error::Conflict {
                field: "public_key"
            })
        ),
        "{duplicate:?}"
    );
}

#[tokio::test]
async fn conversations_need_an_existing_conversation_or_visitor() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let conv = conversation(store).await;
    assert_eq!(conv.status, ConversationStatus::Open);
    assert_eq!((conv.last_seq, conv.assignee_id), (0, None));
    assert_eq!(
        store.conversation(conv.id).await.expect("load"),
        Some(conv.clone())
    );
    assert_eq!(
        store
            .conversation(conv.id.beyond(1000))
            .await
            .expect("load"),
        None
    );

    let missing = store
        .append_message(conv.id.beyond(1000), message("x", "to nowhere"))
        .await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");

    let other_site = site(store, "other").await;
    let wrong_site = store
        .create_conversation(other_site.id, conv.visitor_id, T0)
        .await;
    assert!(matches!(wrong_site, Err(Error::NotFound)), "{wrong_site:?}");
    let no_visitor = store
        .create_conversation(conv.site_id, conv.visitor_id.beyond(1000), T0)
        .await;
    assert!(matches!(no_visitor, Err(Error::NotFound)), "{no_visitor:?}");
}

#[tokio::test]
async fn chinese_text_round_trips_intact() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let conv = conversation(store).await;
    let ada = store
        .create_agent(NewAgent {
            display_name: "客服小王".into(),
            language: "zh-CN".into(),
            ..new_agent("wang@example.com")
        })
        .await
        .expect("agent");
    let body = "退款请求：订单 #42 还没到，能退款吗？🙏";
    let appended = store
        .append_message(
            conv.id,
            NewMessage {
                author: Author::Agent,
                agent_id: Some(ada.id),
                ..message("中文-1", body)
            },
        )
        .await
        .expect("append");
    let stored = store.messages_after(conv.id, 0, 10).await.expect("list");
    assert_eq!(stored, vec![appended.message.clone()]);
    assert_eq!(stored[0].body, body);
    assert_eq!(stored[0].client_id, ClientId("中文-1".into()));
    assert_eq!(
        (stored[0].author, stored[0].agent_id),
        (Author::Agent, Some(ada.id))
    );

    let found = store
        .agent_by_email("wang@example.com")
        .await
        .expect("lookup")
        .expect("exists");
    assert_eq!(found.display_name, "客服小王");

    let left = store
        .create_leave_message(NewLeaveMessage {
            site_id: conv.site_id,
            visitor_id: Some(conv.visitor_id),
            name: Some("李雷".into()),
            contact: "微信: lilei".into(),
            body: "退款请求".into(),
            created_at: T0,
        })
        .await
        .expect("leave message");
    let page = store
        .leave_messages_page(&[conv.site_id], None, None, 10)
        .await
        .expect("page");
    assert_eq!(page, vec![left]);
    assert_eq!(page[0].body, "退款请求");
}

#[tokio::test]
async fn secret_is_generated_once_and_then_stable() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let calls = AtomicUsize::new(0);
    let generate = || {
        calls.fetch_add(1, Ordering::SeqCst);
        "s3cr3t-1".to_owned()
    };
    let first = store.secret("jwt_key", &generate).await.expect("first");
    assert_eq!(first, "s3cr3t-1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let again = store
        .secret("jwt_key", &|| "something else".to_owned())
        .await
        .expect("again");
    assert_eq!(again, "s3cr3t-1", "a stored secret is never replaced");
    let again = store.secret("jwt_key", &generate).await.expect("third");
    assert_eq!(again, "s3cr3t-1");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "generate only runs when the key is absent"
    );

    let other = store
        .secret("other_key", &|| "密钥".to_owned())
        .await
        .expect("other key");
    assert_eq!(other, "密钥", "keys are independent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_secret_callers_all_get_the_same_value() {
    let db = TestDb::new().await;
    let callers: Vec<_> = (0..10)
        .map(|n| {
            let store = Arc::clone(&db.store);
            tokio::spawn(async move {
                let generate = move || format!("value-{n}");
                store.secret("node_secret", &generate).await
            })
        })
        .collect();
    let mut values = HashSet::new();
    for caller in callers {
        values.insert(caller.await.expect("caller task").expect("secret"));
    }
    assert_eq!(
        values.len(),
        1,
        "every caller gets the one stored value: {values:?}"
    );
    let winner = values.into_iter().next().expect("one value");
    assert!(winner.starts_with("value-"));
    let later = db
        .store
        .secret("node_secret", &|| "late".to_owned())
        .await
        .expect("later");
    assert_eq!(later, winner);
}

#[tokio::test]
async fn active_bans_exclude_expired_ones_and_other_sites() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let (a, b) = (site(store, "a").await, site(store, "b").await);
    let troll = visitor(store, &a, "troll").await;
    let ban = |site_id, visitor_id, ip_cidr: Option<&str>, expires_at| NewBan {
        site_id,
        visitor_id,
        ip_cidr: ip_cidr.map(str::to_owned),
        reason: "spam".to_owned(),
        expires_at,
        created_at: T0 - 10,
    };

    let forever = store
        .create_ban(ban(a.id, Some(troll.id), None, None))
        .await
        .expect("visitor ban");
    assert_eq!(
        (forever.visitor_id, forever.ip_cidr.as_deref()),
        (Some(troll.id), None)
    );
    let range = store
        .create_ban(NewBan {
            reason: "广告".to_owned(),
            ..ban(a.id, None, Some("203.0.113.0/24"), Some(T0 + 1000))
        })
        .await
        .expect("range ban");
    let _expired = store
        .create_ban(ban(a.id, None, Some("2001:db8::1"), Some(T0)))
        .await
        .expect("expired ban");
    let _elsewhere = store
        .create_ban(ban(b.id, None, Some("198.51.100.7"), None))
        .await
        .expect("other site");
    assert!(forever.id < range.id);

    assert_eq!(
        store.active_bans(a.id, T0).await.expect("active"),
        vec![forever.clone(), range.clone()],
        "a ban has expired at its expiry instant"
    );
    assert_eq!(
        store.active_bans(a.id, T0 + 1000).await.expect("later"),
        vec![forever]
    );
    assert_eq!(store.active_bans(b.id, T0).await.expect("b").len(), 1);

    let missing = store
        .create_ban(ban(b.id.beyond(1000), None, Some("192.0.2.1"), None))
        .await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
}

#[tokio::test]
async fn events_page_by_id_over_a_set_of_sites() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let sites = [
        site(store, "a").await,
        site(store, "b").await,
        site(store, "c").await,
    ];
    let (a, b, c) = (sites[0].id, sites[1].id, sites[2].id);
    assert_eq!(store.last_event_id(&[a, b, c]).await.expect("empty"), 0);

    let mut conversations = Vec::new();
    for site in &sites[..2] {
        let visitor = visitor(store, site, "v").await;
        let conv = store
            .create_conversation(site.id, visitor.id, T0)
            .await
            .expect("conversation");
        conversations.push(conv);
    }
    let mut appended: Vec<Event> = Vec::new();
    for n in 0..6_i64 {
        let conv = &conversations[usize::from(n % 3 == 2)];
        let event = store
            .append_event(NewEvent {
                site_id: conv.site_id,
                kind: if n == 0 {
                    "conversation_created"
                } else {
                    "assignment_changed"
                }
                .to_owned(),
                conversation_id: conv.id,
                payload: serde_json::json!({ "n": n, "note": "转接" }).to_string(),
                created_at: T0 + n,
            })
            .await
            .expect("append event");
        if let Some(previous) = appended.last() {
            assert!(event.id > previous.id, "event ids increase");
        }
        appended.push(event);
    }
    let of = |site_ids: &[SiteId]| -> Vec<Event> {
        appended
            .iter()
            .filter(|e| site_ids.contains(&e.site_id))
            .cloned()
            .collect()
    };

    let only_a = store.events_after(&[a], 0, 100).await.expect("a");
    assert_eq!(only_a, of(&[a]));
    assert_eq!(only_a.len(), 4);
    assert_eq!(only_a[0].kind, "conversation_created");
    let payload: serde_json::Value = serde_json::from_str(&only_a[0].payload).expect("json");
    assert_eq!(payload["note"], "转接");

    let both = store.events_after(&[b, a], 0, 100).await.expect("a and b");
    assert_eq!(both, appended);
    // One conversation's events of one kind, oldest first.
    let first = conversations[0].id;
    let of_kind = |kind: &str| -> Vec<Event> {
        appended
            .iter()
            .filter(|e| e.conversation_id == first && e.kind == kind)
            .cloned()
            .collect()
    };
    let changes = store
        .conversation_events(first, "assignment_changed")
        .await
        .expect("by conversation");
    assert_eq!(changes, of_kind("assignment_changed"));
    assert_eq!(changes.len(), 3);
    assert_eq!(
        store
            .conversation_events(first, "note")
            .await
            .expect("none of that kind"),
        []
    );
    let after_second = store
        .events_after(&[a, b], appended[1].id, 2)
        .await
        .expect("paged");
    assert_eq!(after_second, appended[2..4].to_vec());
    let rest = store
        .events_after(&[a, b], after_second[1].id, 100)
        .await
        .expect("rest");
    assert_eq!(rest, appended[4..].to_vec());
    assert!(
        store
            .events_after(&[a, b], appended[5].id, 100)
            .await
            .expect("none left")
            .is_empty()
    );
    assert!(
        store
            .events_after(&[c], 0, 100)
            .await
            .expect("c")
            .is_empty()
    );
    assert!(
        store
            .events_after(&[], 0, 100)
            .await
            .expect("no sites")
            .is_empty()
    );
    assert!(
        store
            .events_after(&[a], 0, 0)
            .await
            .expect("zero")
            .is_empty()
    );

    let last_a = of(&[a]).last().expect("a has events").id;
    assert_eq!(store.last_event_id(&[a]).await.expect("last a"), last_a);
    assert_eq!(
        store.last_event_id(&[a, b, c]).await.expect("last all"),
        appended[5].id
    );
    assert_eq!(store.last_event_id(&[c]).await.expect("last c"), 0);
    assert_eq!(store.last_event_id(&[]).await.expect("no sites"), 0);
}

#[tokio::test]
async fn sites_agents_and_visitors_are_found_by_id() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let ada = agent(store, "ada@example.com").await;
    let guest = visitor(store, &shop, "guest").await;

    assert_eq!(store.site(shop.id).await.expect("site"), Some(shop.clone()));
    assert_eq!(store.agent(ada.id).await.expect("agent"), Some(ada.clone()));
    assert_eq!(
        store.visitor(guest.id).await.expect("visitor"),
        Some(guest.clone())
    );
    assert_eq!(
        store.site(shop.id.beyond(1000)).await.expect("no site"),
        None
    );
    assert_eq!(
        store.agent(ada.id.beyond(1000)).await.expect("no agent"),
        None
    );
    assert_eq!(
        store
            .visitor(guest.id.beyond(1000))
            .await
            .expect("no visitor"),
        None
    );
}

#[tokio::test]
async fn open_conversation_skips_resolved_ones() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let guest = visitor(store, &shop, "guest").await;
    let other = visitor(store, &shop, "other").await;
    assert_eq!(store.open_conversation(guest.id).await.expect("none"), None);

    let older = store
        .create_conversation(shop.id, guest.id, T0)
        .await
        .expect("older");
    let newer = store
        .create_conversation(shop.id, guest.id, T0)
        .await
        .expect("newer");
    let _others = store
        .create_conversation(shop.id, other.id, T0 + 5)
        .await
        .expect("other visitor");
    assert_eq!(
        store.open_conversation(guest.id).await.expect("open"),
        Some(newer.clone())
    );

    let resolved = store
        .set_conversation_status(newer.id, ConversationStatus::Resolved, T0 + 100)
        .await
        .expect("resolve");
    assert_eq!(resolved.status, ConversationStatus::Resolved);
    assert_eq!(resolved.updated_at, T0 + 100);
    assert_eq!(
        store.conversation(newer.id).await.expect("load"),
        Some(resolved.clone())
    );
    assert_eq!(
        store.open_conversation(guest.id).await.expect("open"),
        Some(older.clone()),
        "a resolved conversation is not open"
    );

    let pending = store
        .set_conversation_status(older.id, ConversationStatus::Pending, T0 - 100)
        .await
        .expect("pending");
    assert_eq!(pending.updated_at, T0, "updated_at never moves backwards");
    assert_eq!(
        store.open_conversation(guest.id).await.expect("open"),
        Some(pending.clone()),
        "pending still counts as open"
    );
    store
        .set_conversation_status(older.id, ConversationStatus::Resolved, T0 + 200)
        .await
        .expect("resolve older");
    assert_eq!(store.open_conversation(guest.id).await.expect("none"), None);

    let missing = store
        .set_conversation_status(newer.id.beyond(1000), ConversationStatus::Open, T0)
        .await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
}

#[tokio::test]
async fn a_snoozed_conversation_is_pending_until_it_is_woken_once() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let guest = visitor(store, &shop, "guest").await;
    let first = store
        .create_conversation(shop.id, guest.id, T0)
        .await
        .expect("first");
    let second = store
        .create_conversation(shop.id, guest.id, T0)
        .await
        .expect("second");
    let third = store
        .create_conversation(shop.id, guest.id, T0)
        .await
        .expect("third");

    let snoozed = store
        .snooze_conversation(first.id, T0 + 2_000, T0 + 10)
        .await
        .expect("snooze");
    assert_eq!(snoozed.status, ConversationStatus::Pending);
    assert_eq!(snoozed.snoozed_until, Some(T0 + 2_000));
    assert_eq!(snoozed.updated_at, T0 + 10);
    store
        .snooze_conversation(second.id, T0 + 1_000, T0 + 10)
        .await
        .expect("snooze second");
    store
        .snooze_conversation(third.id, T0 + 500, T0 + 10)
        .await
        .expect("snooze third");
    // Any other status change ends a snooze.
    let reopened = store
        .set_conversation_status(third.id, ConversationStatus::Open, T0 + 20)
        .await
        .expect("reopen by hand");
    assert_eq!(reopened.snoozed_until, None);

    assert_eq!(
        store.due_snoozes(T0 + 999, 10).await.expect("none due"),
        vec![]
    );
    let due = store.due_snoozes(T0 + 5_000, 10).await.expect("due");
    let due: Vec<ConversationId> = due.iter().map(|c| c.id).collect();
    assert_eq!(due, vec![second.id, first.id], "the longest due first");
    assert_eq!(
        store.due_snoozes(T0 + 5_000, 1).await.expect("limit").len(),
        1
    );

    assert_eq!(
        store
            .wake_conversation(first.id, T0 + 1_999)
            .await
            .expect("early"),
        None,
        "not before its time"
    );
    let woken = store
        .wake_conversation(first.id, T0 + 2_000)
        .await
        .expect("wake")
        .expect("woken");
    assert_eq!(woken.status, ConversationStatus::Open);
    assert_eq!(woken.snoozed_until, None);
    assert_eq!(woken.updated_at, T0 + 2_000);
    assert_eq!(
        store
            .wake_conversation(first.id, T0 + 3_000)
            .await
            .expect("again"),
        None,
        "a second server waking it changes nothing"
    );
    assert_eq!(
        store
            .wake_conversation(third.id, T0 + 3_000)
            .await
            .expect("never due"),
        None
    );
    let missing = store
        .snooze_conversation(third.id.beyond(1000), T0 + 1, T0)
        .await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
}

#[tokio::test]
async fn visitor_conversations_lists_the_newest_fifty() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let guest = visitor(store, &shop, "guest").await;
    let other = visitor(store, &shop, "other").await;
    assert!(
        store
            .visitor_conversations(guest.id)
            .await
            .expect("none")
            .is_empty()
    );
    let mut ids = Vec::new();
    for n in 0..55_i64 {
        let conv = store
            .create_conversation(shop.id, guest.id, T0 + n)
            .await
            .expect("create");
        ids.push(conv.id);
        store
            .create_conversation(shop.id, other.id, T0 + n)
            .await
            .expect("other visitor");
    }
    store
        .set_conversation_status(ids[54], ConversationStatus::Resolved, T0 + 100)
        .await
        .expect("resolve");
    let listed = store.visitor_conversations(guest.id).await.expect("listed");
    ids.reverse();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        ids[..50].to_vec()
    );
    assert!(listed.iter().all(|c| c.visitor_id == guest.id));
    assert_eq!(
        listed[0].status,
        ConversationStatus::Resolved,
        "resolved ones are history too"
    );
}

#[tokio::test]
async fn site_conversation_heads_are_the_unresolved_most_recent_first() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let sites = [
        site(store, "a").await,
        site(store, "b").await,
        site(store, "c").await,
    ];
    let mut expected = Vec::new();
    for n in 0..12_i64 {
        let site = &sites[usize::try_from(n % 3).expect("index")];
        let visitor = visitor(store, site, &format!("v{n}")).await;
        // Four timestamps over twelve conversations: ties are broken by id.
        let conv = store
            .create_conversation(site.id, visitor.id, T0 + (n % 4) * 1000)
            .await
            .expect("create");
        if n == 4 {
            store
                .set_conversation_status(conv.id, ConversationStatus::Resolved, T0)
                .await
                .expect("resolve");
        } else if n % 3 != 2 {
            expected.push(conv);
        }
    }
    expected.sort_by_key(|c| Reverse((c.updated_at, c.id)));
    let (a, b) = (sites[0].id, sites[1].id);

    let heads = store
        .site_conversation_heads(&[a, b], 100)
        .await
        .expect("heads");
    assert_eq!(heads, expected);
    let top = store
        .site_conversation_heads(&[b, a], 3)
        .await
        .expect("top");
    assert_eq!(top, expected[..3].to_vec());
    assert!(
        store
            .site_conversation_heads(&[], 10)
            .await
            .expect("no sites")
            .is_empty()
    );
}

#[tokio::test]
async fn a_message_without_conversation_opens_one_and_resends_never_open_another() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let guest = visitor(store, &shop, "guest").await;

    let first = store
        .append_message_in_open_conversation(shop.id, guest.id, message("c-1", "hello"))
        .await
        .expect("first");
    assert!(first.created_conversation);
    assert!(first.appended.created);
    assert_eq!(first.appended.message.seq, 1);
    let conv = first.conversation.clone();
    assert_eq!((conv.site_id, conv.visitor_id), (shop.id, guest.id));
    assert_eq!((conv.status, conv.last_seq), (ConversationStatus::Open, 1));
    assert_eq!(conv.updated_at, T0 + 1);
    assert_eq!(
        store.conversation(conv.id).await.expect("load"),
        Some(conv.clone())
    );

    let second = store
        .append_message_in_open_conversation(shop.id, guest.id, message("c-2", "anyone?"))
        .await
        .expect("second");
    assert!(!second.created_conversation);
    assert!(second.appended.created);
    assert_eq!(second.conversation.id, conv.id);
    assert_eq!(second.appended.message.seq, 2);
    assert_eq!(second.conversation.last_seq, 2);

    let resend = store
        .append_message_in_open_conversation(shop.id, guest.id, message("c-1", "hello (resent)"))
        .await
        .expect("resend");
    assert!(!resend.created_conversation);
    assert!(!resend.appended.created);
    assert_eq!(resend.appended.message, first.appended.message);
    assert_eq!(resend.conversation.id, conv.id);
    assert_eq!(resend.conversation.last_seq, 2, "a resend consumes no seq");

    // Once resolved, a resend still finds the original; only a new message opens a new one.
    store
        .set_conversation_status(conv.id, ConversationStatus::Resolved, T0 + 10)
        .await
        .expect("resolve");
    let late_resend = store
        .append_message_in_open_conversation(shop.id, guest.id, message("c-1", "hello?"))
        .await
        .expect("late resend");
    assert!(!late_resend.created_conversation && !late_resend.appended.created);
    assert_eq!(late_resend.appended.message, first.appended.message);
    assert_eq!(
        late_resend.conversation.status,
        ConversationStatus::Resolved
    );
    assert_eq!(
        store
            .visitor_conversations(guest.id)
            .await
            .expect("list")
            .len(),
        1
    );

    let reopened = store
        .append_message_in_open_conversation(shop.id, guest.id, message("c-3", "me again"))
        .await
        .expect("new conversation");
    assert!(reopened.created_conversation);
    assert_ne!(reopened.conversation.id, conv.id);
    assert_eq!(reopened.appended.message.seq, 1);
    assert_eq!(
        store
            .messages_after(conv.id, 0, 10)
            .await
            .expect("old")
            .len(),
        2
    );

    let other_site = site(store, "other").await;
    let wrong_site = store
        .append_message_in_open_conversation(other_site.id, guest.id, message("c-4", "x"))
        .await;
    assert!(matches!(wrong_site, Err(Error::NotFound)), "{wrong_site:?}");
    let no_visitor = store
        .append_message_in_open_conversation(shop.id, guest.id.beyond(1000), message("c-4", "x"))
        .await;
    assert!(matches!(no_visitor, Err(Error::NotFound)), "{no_visitor:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_messages_open_exactly_one_conversation() {
    let db = TestDb::new().await;
    let shop = site(db.store.as_ref(), "shop").await;
    let guest = visitor(db.store.as_ref(), &shop, "guest").await;

    let tabs: Vec<_> = (1..=10)
        .map(|n| {
            let store = Arc::clone(&db.store);
            tokio::spawn(async move {
                store
                    .append_message_in_open_conversation(
                        shop.id,
                        guest.id,
                        message(&format!("tab-{n}"), &format!("from tab {n}")),
                    )
                    .await
            })
        })
        .collect();
    let mut conversation_ids = HashSet::new();
    let mut created_conversations = 0;
    let mut assigned = Vec::new();
    for tab in tabs {
        let appended = tab.await.expect("tab task").expect("append");
        assert!(appended.appended.created);
        conversation_ids.insert(appended.conversation.id);
        created_conversations += usize::from(appended.created_conversation);
        assigned.push(appended.appended.message.seq);
    }
    assert_eq!(conversation_ids.len(), 1, "{conversation_ids:?}");
    assert_eq!(created_conversations, 1);
    assigned.sort_unstable();
    assert_eq!(assigned, (1..=10).collect::<Vec<Seq>>());

    let conversations = db
        .store
        .visitor_conversations(guest.id)
        .await
        .expect("list");
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0].last_seq, 10);
    let stored = db
        .store
        .messages_after(conversations[0].id, 0, 100)
        .await
        .expect("messages");
    assert_eq!(seqs(&stored), (1..=10).collect::<Vec<Seq>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_resends_of_a_first_message_store_one_message() {
    let db = TestDb::new().await;
    let shop = site(db.store.as_ref(), "shop").await;
    let guest = visitor(db.store.as_ref(), &shop, "guest").await;

    let senders: Vec<_> = (0..10)
        .map(|_| {
            let store = Arc::clone(&db.store);
            tokio::spawn(async move {
                store
                    .append_message_in_open_conversation(shop.id, guest.id, message("same", "hi"))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    let mut created_conversations = 0;
    for sender in senders {
        let appended = sender.await.expect("sender task").expect("append");
        assert_eq!(appended.appended.message.seq, 1);
        created += usize::from(appended.appended.created);
        created_conversations += usize::from(appended.created_conversation);
    }
    assert_eq!(created, 1, "exactly one of the resends stores the message");
    assert_eq!(created_conversations, 1);
    let conversations = db
        .store
        .visitor_conversations(guest.id)
        .await
        .expect("list");
    assert_eq!(conversations.len(), 1);
    let stored = db
        .store
        .messages_after(conversations[0].id, 0, 100)
        .await
        .expect("messages");
    assert_eq!(seqs(&stored), vec![1]);
}

fn new_attachment(site: &Site, visitor: &Visitor, public_id: &str, data: &[u8]) -> NewAttachment {
    NewAttachment {
        public_id: public_id.to_owned(),
        site_id: site.id,
        visitor_id: Some(visitor.id),
        agent_id: None,
        name: "发票 invoice.pdf".to_owned(),
        content_type: "application/pdf".to_owned(),
        data: data.to_vec(),
        created_at: T0,
    }
}

#[tokio::test]
async fn attachments_keep_their_bytes_and_messages_carry_them() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let site = site(store, "site-key").await;
    let visitor = visitor(store, &site, "visitor-key").await;
    // Every byte value, so no backend may treat the data as text.
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let stored = store
        .create_attachment(new_attachment(&site, &visitor, "a1b2", &data))
        .await
        .expect("create attachment");
    assert_eq!(stored.size, 70_000);
    assert_eq!(stored.visitor_id, Some(visitor.id));

    let found = store
        .attachment("a1b2")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found, stored);
    let bytes = store.attachment_data("a1b2").await.expect("data");
    assert_eq!(bytes.as_deref(), Some(data.as_slice()));
    assert_eq!(store.attachment("nope").await.expect("read"), None);
    assert_eq!(store.attachment_data("nope").await.expect("read"), None);

    let duplicate = store
        .create_attachment(new_attachment(&site, &visitor, "a1b2", b"x"))
        .await;
    assert!(
        matches!(duplicate, Err(Error::Conflict { field: "public_id" })),
        "{duplicate:?}"
    );
    let mut orphan = new_attachment(&site, &visitor, "c3d4", b"x");
    orphan.site_id = site.id.beyond(1000);
    assert!(matches!(
        store.create_attachment(orphan).await,
        Err(Error::NotFound)
    ));

    let conv = store
        .create_conversation(site.id, visitor.id, T0)
        .await
        .expect("conversation");
    let mut with_file = message("m-file", "");
    with_file.attachment = Some(found.wire());
    let appended = store
        .append_message(conv.id, with_file)
        .await
        .expect("append");
    assert_eq!(appended.message.attachment, Some(found.wire()));
    store
        .append_message(conv.id, message("m-text", "plain"))
        .await
        .expect("append text");
    let replayed = store.messages_after(conv.id, 0, 10).await.expect("replay");
    assert_eq!(replayed[0].attachment, Some(found.wire()));
    assert_eq!(replayed[0].body, "");
    assert_eq!(replayed[1].attachment, None);
}

#[tokio::test]
async fn unsent_uploads_are_swept_and_usage_is_counted() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let site = site(store, "site-key").await;
    let alice = visitor(store, &site, "alice").await;
    let bob = visitor(store, &site, "bob").await;
    let mut sent = new_attachment(&site, &alice, "sent", &[1; 300]);
    sent.created_at = T0;
    let mut unsent = new_attachment(&site, &alice, "unsent", &[2; 200]);
    unsent.created_at = T0;
    let mut young = new_attachment(&site, &bob, "young", &[3; 50]);
    young.created_at = T0 + 10_000;
    for attachment in [sent, unsent, young] {
        store.create_attachment(attachment).await.expect("create");
    }
    assert_eq!(
        store
            .attachment_usage(site.id, alice.id)
            .await
            .expect("usage"),
        (550, 500)
    );
    assert_eq!(
        store
            .attachment_usage(site.id, bob.id)
            .await
            .expect("usage"),
        (550, 50)
    );
    store
        .mark_attachment_sent("sent", T0 + 1)
        .await
        .expect("mark");
    // Marking again keeps the first time; an unknown id is no error.
    store
        .mark_attachment_sent("sent", T0 + 2)
        .await
        .expect("again");
    store
        .mark_attachment_sent("nope", T0 + 2)
        .await
        .expect("unknown");

    let deleted = store
        .delete_unsent_attachments(T0 + 5_000)
        .await
        .expect("sweep");
    assert_eq!(deleted, 1, "only the old unsent upload");
    assert!(store.attachment("sent").await.expect("read").is_some());
    assert!(store.attachment("unsent").await.expect("read").is_none());
    assert!(store.attachment("young").await.expect("read").is_some());
    assert_eq!(
        store
            .attachment_usage(site.id, alice.id)
            .await
            .expect("usage"),
        (350, 300)
    );
    assert_eq!(
        store
            .attachment_usage(site.id.beyond(1000), alice.id)
            .await
            .expect("usage"),
        (0, 0)
    );
}

#[tokio::test]
async fn a_rating_is_kept_per_conversation_and_replaced_by_a_new_one() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let conv = conversation(store).await;
    assert_eq!(store.rating(conv.id).await.expect("read"), None);
    let first = store::Rating {
        conversation_id: conv.id,
        score: 2,
        comment: Some("慢".to_owned()),
        created_at: T0,
    };
    store.rate_conversation(first.clone()).await.expect("rate");
    assert_eq!(store.rating(conv.id).await.expect("read"), Some(first));
    let second = store::Rating {
        conversation_id: conv.id,
        score: 5,
        comment: None,
        created_at: T0 + 1,
    };
    store
        .rate_conversation(second.clone())
        .await
        .expect("rate again");
    assert_eq!(store.rating(conv.id).await.expect("read"), Some(second));

    let out_of_range = store::Rating {
        conversation_id: conv.id,
        score: 6,
        comment: None,
        created_at: T0,
    };
    assert!(store.rate_conversation(out_of_range).await.is_err());
    let nowhere = store::Rating {
        conversation_id: conv.id.beyond(1000),
        score: 3,
        comment: None,
        created_at: T0,
    };
    assert!(matches!(
        store.rate_conversation(nowhere).await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn assignment_is_a_compare_and_set_and_the_queue_is_oldest_first() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let site = site(store, "site-key").await;
    let other = self::site(store, "other-key").await;
    let (ann, bo) = (
        agent(store, "ann@x.example").await,
        agent(store, "bo@x.example").await,
    );
    let mut queue = Vec::new();
    for (n, at) in [(1, T0 + 30), (2, T0 + 10), (3, T0 + 20)] {
        let visitor = visitor(store, &site, &format!("v{n}")).await;
        let conversation = store
            .create_conversation(site.id, visitor.id, at)
            .await
            .expect("conversation");
        queue.push(conversation.id);
    }
    let elsewhere = visitor(store, &other, "v9").await;
    store
        .create_conversation(other.id, elsewhere.id, T0)
        .await
        .expect("other site's conversation");
    let ids = |list: Vec<Conversation>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .unassigned_conversations(site.id, 10)
            .await
            .expect("queue")),
        [queue[1], queue[2], queue[0]],
        "oldest first, this site only"
    );

    // Two nodes race for the oldest: exactly one wins.
    assert!(
        store
            .reassign_conversation(queue[1], None, Some(ann.id))
            .await
            .expect("cas")
    );
    assert!(
        !store
            .reassign_conversation(queue[1], None, Some(bo.id))
            .await
            .expect("cas")
    );
    assert_eq!(
        store
            .conversation(queue[1])
            .await
            .expect("read")
            .map(|c| c.assignee_id),
        Some(Some(ann.id))
    );
    // A transfer names the current assignee; a stale one changes nothing.
    assert!(
        !store
            .reassign_conversation(queue[1], Some(bo.id), None)
            .await
            .expect("cas")
    );
    assert!(
        store
            .reassign_conversation(queue[1], Some(ann.id), Some(bo.id))
            .await
            .expect("cas")
    );
    assert!(
        store
            .reassign_conversation(queue[2], None, Some(bo.id))
            .await
            .expect("cas")
    );
    assert!(
        store
            .reassign_conversation(queue[0], None, Some(ann.id))
            .await
            .expect("cas")
    );
    assert!(matches!(
        store
            .reassign_conversation(queue[0].beyond(1000), None, Some(ann.id))
            .await,
        Err(Error::NotFound)
    ));
    assert!(
        store
            .unassigned_conversations(site.id, 10)
            .await
            .expect("queue")
            .is_empty()
    );

    // Loads count open conversations only.
    store
        .set_conversation_status(queue[2], ConversationStatus::Resolved, T0 + 40)
        .await
        .expect("resolve");
    assert_eq!(
        store.agent_loads(&[bo.id, ann.id]).await.expect("loads"),
        [(ann.id, 1), (bo.id, 1)]
    );
    assert_eq!(store.agent_loads(&[]).await.expect("none"), []);
}

/// `count` conversations of `site` waiting for an agent, oldest first, each with a visitor of
/// its own.
async fn waiting(store: &dyn Store, site: &Site, count: i64) -> Vec<ConversationId> {
    let mut ids = Vec::new();
    for n in 0..count {
        let visitor = visitor(store, site, &format!("waiting-{n}")).await;
        let conversation = store
            .create_conversation(site.id, visitor.id, T0 + n)
            .await
            .expect("conversation");
        ids.push(conversation.id);
    }
    ids
}

/// The store under test and a second store on the same database: two server nodes.
async fn two_nodes(db: &TestDb) -> [Arc<dyn Store>; 2] {
    let other = store::connect(&db.url).await.expect("second node");
    [Arc::clone(&db.store), other]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_assignments_on_two_nodes_never_exceed_an_agents_capacity() {
    let db = TestDb::new().await;
    let nodes = two_nodes(&db).await;
    let store = db.store.as_ref();
    let site = site(store, "site-key").await;
    let (ann, bo) = (
        agent(store, "ann@x.example").await,
        agent(store, "bo@x.example").await,
    );
    let queue = waiting(store, &site, 6).await;

    // Each agent is offered every waiting conversation at once, half of the offers through
    // each node; each may take two.
    let mut calls = tokio::task::JoinSet::new();
    for (n, conversation) in queue.iter().copied().enumerate() {
        for (a, agent) in [ann.id, bo.id].into_iter().enumerate() {
            let node = Arc::clone(&nodes[(n + a) % 2]);
            calls.spawn(async move {
                let assigned = node
                    .assign_within_capacity(conversation, agent, 2, T0 + 100)
                    .await
                    .expect("assign");
                (agent, conversation, assigned)
            });
        }
    }
    let mut taken = Vec::new();
    while let Some(call) = calls.join_next().await {
        let (agent, conversation, assigned) = call.expect("task");
        if assigned {
            taken.push((agent, conversation));
        }
    }
    let count = |agent| taken.iter().filter(|(a, _)| *a == agent).count();
    assert_eq!((count(ann.id), count(bo.id)), (2, 2), "{taken:?}");
    let conversations: HashSet<ConversationId> = taken.iter().map(|(_, c)| *c).collect();
    assert_eq!(conversations.len(), 4, "no conversation assigned twice");
    for (agent, conversation) in &taken {
        let stored = store.conversation(*conversation).await.expect("read");
        assert_eq!(stored.map(|c| c.assignee_id), Some(Some(*agent)));
    }
    assert_eq!(
        store.agent_loads(&[ann.id, bo.id]).await.expect("loads"),
        [(ann.id, 2), (bo.id, 2)]
    );
    assert_eq!(
        store
            .unassigned_conversations(site.id, 10)
            .await
            .expect("queue")
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conversation_offered_to_two_agents_at_once_goes_to_one() {
    let db = TestDb::new().await;
    let nodes = two_nodes(&db).await;
    let store = db.store.as_ref();
    let site = site(store, "site-key").await;
    let (ann, bo) = (
        agent(store, "ann@x.example").await,
        agent(store, "bo@x.example").await,
    );
    for conversation in waiting(store, &site, 5).await {
        let offer = |node: &Arc<dyn Store>, agent| {
            let node = Arc::clone(node);
            async move {
                node.assign_within_capacity(conversation, agent, 10, T0 + 100)
                    .await
                    .expect("assign")
            }
        };
        let (to_ann, to_bo) = tokio::join!(
            tokio::spawn(offer(&nodes[0], ann.id)),
            tokio::spawn(offer(&nodes[1], bo.id)),
        );
        let (to_ann, to_bo) = (to_ann.expect("task"), to_bo.expect("task"));
        assert!(to_ann != to_bo, "exactly one wins: {to_ann} {to_bo}");
        let winner = if to_ann { ann.id } else { bo.id };
        assert_eq!(
            store
                .conversation(conversation)
                .await
                .expect("read")
                .map(|c| c.assignee_id),
            Some(Some(winner))
        );
    }
    let loads = store.agent_loads(&[ann.id, bo.id]).await.expect("loads");
    assert_eq!(loads.iter().map(|(_, n)| n).sum::<i64>(), 5);
}

#[tokio::test]
async fn an_agents_turn_is_the_time_of_their_latest_automatic_assignment() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let site = site(store, "site-key").await;
    let (ann, bo) = (
        agent(store, "ann@x.example").await,
        agent(store, "bo@x.example").await,
    );
    let queue = waiting(store, &site, 3).await;
    let turns =
        |agents: Vec<AgentId>| async move { store.assignment_turns(&agents).await.expect("turns") };
    assert_eq!(turns(vec![bo.id, ann.id]).await, [(ann.id, 0), (bo.id, 0)]);

    assert!(
        store
            .assign_within_capacity(queue[0], ann.id, 1, T0 + 10)
            .await
            .expect("assign")
    );
    assert_eq!(
        turns(vec![bo.id, ann.id]).await,
        [(ann.id, T0 + 10), (bo.id, 0)]
    );

    // Full, or offered a conversation taken already: refused, and no turn is used up.
    assert!(
        !store
            .assign_within_capacity(queue[1], ann.id, 1, T0 + 20)
            .await
            .expect("full")
    );
    assert!(
        !store
            .assign_within_capacity(queue[0], bo.id, 5, T0 + 20)
            .await
            .expect("taken")
    );
    assert_eq!(
        turns(vec![ann.id, bo.id]).await,
        [(ann.id, T0 + 10), (bo.id, 0)]
    );
    let assignee = |id| async move {
        store
            .conversation(id)
            .await
            .expect("read")
            .and_then(|c| c.assignee_id)
    };
    assert_eq!(assignee(queue[0]).await, Some(ann.id));
    assert_eq!(assignee(queue[1]).await, None);

    // Only open conversations count, as in `agent_loads`: a resolved one frees its slot.
    store
        .set_conversation_status(queue[0], ConversationStatus::Resolved, T0 + 25)
        .await
        .expect("resolve");
    assert!(
        store
            .assign_within_capacity(queue[1], ann.id, 1, T0 + 30)
            .await
            .expect("assign")
    );
    assert_eq!(turns(vec![ann.id]).await, [(ann.id, T0 + 30)]);
    assert_eq!(assignee(queue[1]).await, Some(ann.id));

    // A conversation or an agent that does not exist.
    assert!(matches!(
        store
            .assign_within_capacity(queue[2].beyond(1000), bo.id, 5, T0 + 40)
            .await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store
            .assign_within_capacity(queue[2], bo.id.beyond(1000), 5, T0 + 40)
            .await,
        Err(Error::NotFound)
    ));
    assert_eq!(assignee(queue[2]).await, None);
    assert_eq!(turns(vec![bo.id, bo.id.beyond(1000)]).await, [(bo.id, 0)]);
    assert_eq!(turns(Vec::new()).await, []);
}

#[tokio::test]
async fn teams_group_a_sites_agents_and_conversations_can_wait_for_one() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let other = site(store, "other").await;
    let ann = agent(store, "ann@x.example").await;
    let bo = agent(store, "bo@x.example").await;
    let billing = store.create_team(shop.id, "Billing").await.expect("team");
    let sales = store.create_team(other.id, "销售").await.expect("team");
    assert_eq!(
        (billing.site_id, billing.name.as_str()),
        (shop.id, "Billing")
    );
    for member in [bo.id, ann.id, bo.id] {
        store
            .add_team_member(billing.id, member)
            .await
            .expect("member");
    }
    assert_eq!(
        store.team_members(billing.id).await.expect("members"),
        [ann.id.min(bo.id), ann.id.max(bo.id)]
    );
    assert!(store.team_members(sales.id).await.expect("none").is_empty());
    assert_eq!(
        store.site_teams(&[other.id, shop.id]).await.expect("teams"),
        [billing.clone(), sales.clone()]
    );
    assert_eq!(
        store.site_teams(&[shop.id]).await.expect("shop"),
        std::slice::from_ref(&billing)
    );
    assert!(store.site_teams(&[]).await.expect("no sites").is_empty());
    assert!(matches!(
        store.create_team(other.id.beyond(1000), "x").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.add_team_member(billing.id, bo.id.beyond(1000)).await,
        Err(Error::NotFound)
    ));

    let conversation = store
        .create_conversation(shop.id, visitor(store, &shop, "v").await.id, T0)
        .await
        .expect("conversation");
    assert_eq!(conversation.team_id, None);
    store
        .set_conversation_team(conversation.id, Some(billing.id))
        .await
        .expect("route");
    let routed = store
        .conversation(conversation.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(routed.team_id, Some(billing.id));
    store
        .set_conversation_team(conversation.id, None)
        .await
        .expect("unroute");
    assert_eq!(
        store
            .conversation(conversation.id)
            .await
            .expect("read")
            .and_then(|c| c.team_id),
        None
    );
    assert!(matches!(
        store
            .set_conversation_team(conversation.id.beyond(1000), None)
            .await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn a_visitors_browser_language_is_kept_across_visits() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let wang = visitor(store, &shop, "wang").await;
    assert_eq!(wang.language, None);
    store
        .set_visitor_language(wang.id, "zh-CN")
        .await
        .expect("language");
    let again = store
        .upsert_visitor(shop.id, "wang", T0 + 1_000)
        .await
        .expect("returning");
    assert_eq!(again.language.as_deref(), Some("zh-CN"));
    assert_eq!(
        store
            .visitor(wang.id)
            .await
            .expect("read")
            .and_then(|v| v.language)
            .as_deref(),
        Some("zh-CN")
    );
    assert!(matches!(
        store.set_visitor_language(wang.id.beyond(1000), "en").await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn a_deleted_team_lets_its_conversations_go_to_anyone() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let ann = agent(store, "ann@x.example").await;
    let bo = agent(store, "bo@x.example").await;
    let billing = store.create_team(shop.id, "Billing").await.expect("team");
    for member in [ann.id, bo.id] {
        store
            .add_team_member(billing.id, member)
            .await
            .expect("member");
    }
    for _twice in 0..2 {
        store
            .remove_team_member(billing.id, ann.id)
            .await
            .expect("remove");
    }
    assert_eq!(
        store.team_members(billing.id).await.expect("members"),
        [bo.id]
    );
    let conversation = store
        .create_conversation(shop.id, visitor(store, &shop, "v").await.id, T0)
        .await
        .expect("conversation");
    store
        .set_conversation_team(conversation.id, Some(billing.id))
        .await
        .expect("route");

    store.delete_team(billing.id).await.expect("delete");
    assert!(
        store
            .site_teams(&[shop.id])
            .await
            .expect("teams")
            .is_empty()
    );
    assert!(
        store
            .team_members(billing.id)
            .await
            .expect("none")
            .is_empty()
    );
    let unrouted = store
        .conversation(conversation.id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(unrouted.team_id, None);
    assert!(matches!(
        store.delete_team(billing.id).await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn a_messages_translation_is_stored_replaced_and_goes_with_its_message() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let chat = conversation(store).await;
    append_many(store, &chat, 3).await;
    let messages = store
        .messages_after(chat.id, 0, 10)
        .await
        .expect("messages");
    let (first, second) = (messages[0].id, messages[1].id);
    let pending = MessageTranslation {
        message_id: first,
        source_language: "zh".into(),
        target_language: "en".into(),
        text: None,
        state: TranslationState::Pending,
        attempts: 1,
        updated_at: T0,
    };
    store
        .save_message_translation(&pending)
        .await
        .expect("pending");
    let done = MessageTranslation {
        text: Some("I would like a refund".into()),
        state: TranslationState::Done,
        attempts: 2,
        updated_at: T0 + 1,
        ..pending.clone()
    };
    store.save_message_translation(&done).await.expect("done");
    let failed = MessageTranslation {
        message_id: second,
        state: TranslationState::Failed,
        ..pending.clone()
    };
    store
        .save_message_translation(&failed)
        .await
        .expect("failed");
    assert_eq!(
        store
            .message_translations(&[second, first, first.beyond(1000)])
            .await
            .expect("read"),
        [done, failed]
    );
    assert!(
        store
            .message_translations(&[])
            .await
            .expect("none")
            .is_empty()
    );
    assert!(matches!(
        store
            .save_message_translation(&MessageTranslation {
                message_id: first.beyond(1000),
                ..pending
            })
            .await,
        Err(Error::NotFound)
    ));
    store
        .delete_history_before(T0 + 86_400_000)
        .await
        .expect("retention");
    assert!(
        store
            .message_translations(&[first, second])
            .await
            .expect("read")
            .is_empty(),
        "gone with their messages"
    );
}

#[tokio::test]
async fn a_translated_message_is_found_by_its_translation_too() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let chat = conversation(store).await;
    let stored = say(store, &chat, &["我想申请退款", "包裹还没到"]).await;
    let sites = [chat.site_id];
    assert!(found(store, &sites, "refund").await.is_empty());
    let translation = |message: &store::Message, text: &str| MessageTranslation {
        message_id: message.id,
        source_language: "zh".into(),
        target_language: "en".into(),
        text: Some(text.into()),
        state: TranslationState::Done,
        attempts: 1,
        updated_at: T0,
    };
    store
        .save_message_translation(&translation(&stored[0], "I would like a refund"))
        .await
        .expect("translated");
    // A failure on the other message indexes nothing new.
    store
        .save_message_translation(&MessageTranslation {
            text: None,
            state: TranslationState::Failed,
            ..translation(&stored[1], "")
        })
        .await
        .expect("failed");
    assert_eq!(found(store, &sites, "refund").await, ["我想申请退款"]);
    // The original stays findable, and a term from each language must be in the one message.
    assert_eq!(found(store, &sites, "退款").await, ["我想申请退款"]);
    assert_eq!(found(store, &sites, "退款 refund").await, ["我想申请退款"]);
    assert!(found(store, &sites, "包裹 refund").await.is_empty());
    // A new translation replaces the old one in the index.
    store
        .save_message_translation(&translation(&stored[0], "Please give my money back"))
        .await
        .expect("replaced");
    assert!(found(store, &sites, "refund").await.is_empty());
    assert_eq!(found(store, &sites, "money").await, ["我想申请退款"]);
}

#[tokio::test]
async fn an_agent_turns_translation_off_for_one_conversation() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let chat = conversation(store).await;
    assert!(chat.translating, "on by default");
    store
        .set_conversation_translating(chat.id, false)
        .await
        .expect("off");
    let loaded = store
        .conversation(chat.id)
        .await
        .expect("load")
        .expect("kept");
    assert!(!loaded.translating);
    store
        .set_conversation_translating(chat.id, true)
        .await
        .expect("on");
    assert!(
        store
            .conversation(chat.id)
            .await
            .expect("load")
            .expect("kept")
            .translating
    );
    assert!(matches!(
        store
            .set_conversation_translating(chat.id.beyond(1000), false)
            .await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn a_cached_translation_is_found_by_text_languages_and_provider() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let key = TranslationKey {
        text_hash: "ab".repeat(32),
        source_language: "zh".into(),
        target_language: "en".into(),
        provider: "deepl".into(),
    };
    assert_eq!(store.cached_translation(&key).await.expect("miss"), None);
    store
        .cache_translation(&key, "Refund, please", T0)
        .await
        .expect("keep");
    store
        .cache_translation(&key, "another answer", T0 + 1)
        .await
        .expect("kept already");
    assert_eq!(
        store
            .cached_translation(&key)
            .await
            .expect("hit")
            .as_deref(),
        Some("Refund, please")
    );
    for other in [
        TranslationKey {
            provider: "google".into(),
            ..key.clone()
        },
        TranslationKey {
            target_language: "ja".into(),
            ..key.clone()
        },
        TranslationKey {
            text_hash: "cd".repeat(32),
            ..key.clone()
        },
    ] {
        assert_eq!(store.cached_translation(&other).await.expect("miss"), None);
    }
}

#[tokio::test]
async fn concurrent_spending_never_overdraws_a_sites_daily_translation_budget() {
    let db = TestDb::new().await;
    let store = db.store.clone();
    let shop = site(store.as_ref(), "shop").await;
    let other = site(store.as_ref(), "other").await;
    let day = T0 / 86_400_000;
    let spends = (0..25).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .spend_translation_chars(shop.id, day, 100, 1_000)
                .await
                .expect("spend")
        })
    });
    let mut granted = 0;
    for spend in spends {
        if spend.await.expect("task") {
            granted += 1;
        }
    }
    assert_eq!(granted, 10, "exactly the budget");
    assert_eq!(
        store.translation_chars(shop.id, day).await.expect("count"),
        1_000
    );
    assert!(
        !store
            .spend_translation_chars(shop.id, day, 1, 1_000)
            .await
            .expect("spend")
    );
    assert!(
        store
            .spend_translation_chars(shop.id, day + 1, 1_000, 1_000)
            .await
            .expect("a new day"),
    );
    assert!(
        !store
            .spend_translation_chars(other.id, day, 1_001, 1_000)
            .await
            .expect("more than the budget at once")
    );
    assert_eq!(
        store.translation_chars(other.id, day).await.expect("count"),
        0
    );
}

#[tokio::test]
async fn api_tokens_act_as_their_enabled_agent_and_note_use_once_a_minute() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let ada = agent(store, "ada@example.com").await;
    let bob = agent(store, "bob@example.com").await;
    let new = |agent_id, name: &str, hash: &str| NewApiToken {
        agent_id,
        name: name.to_owned(),
        token_hash: hash.to_owned(),
        prefix: format!("kefu_{hash}"),
        created_at: T0,
    };
    let crm = store
        .create_api_token(new(ada.id, "CRM", "h1"))
        .await
        .expect("token");
    let bi = store
        .create_api_token(new(ada.id, "报表", "h2"))
        .await
        .expect("token");
    store
        .create_api_token(new(bob.id, "bob's", "h3"))
        .await
        .expect("token");
    assert_eq!(
        (crm.name.as_str(), crm.prefix.as_str(), crm.last_used_at),
        ("CRM", "kefu_h1", None)
    );
    assert_eq!(
        store.api_tokens(ada.id).await.expect("list"),
        [bi.clone(), crm.clone()],
        "newest first, only ada's"
    );
    assert!(matches!(
        store.create_api_token(new(bob.id, "dup", "h1")).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        store
            .create_api_token(new(bob.id.beyond(1000), "x", "h9"))
            .await,
        Err(Error::NotFound)
    ));

    assert_eq!(
        store.api_token_agent("h1", T0 + 1_000).await.expect("use"),
        Some(ada.clone())
    );
    assert_eq!(store.api_token_agent("nope", T0).await.expect("use"), None);
    store
        .api_token_agent("h1", T0 + 30_000)
        .await
        .expect("use within the minute");
    let used = |tokens: Vec<store::ApiToken>| {
        tokens
            .into_iter()
            .find(|t| t.id == crm.id)
            .and_then(|t| t.last_used_at)
    };
    assert_eq!(
        used(store.api_tokens(ada.id).await.expect("list")),
        Some(T0 + 1_000)
    );
    store
        .api_token_agent("h1", T0 + 61_000)
        .await
        .expect("use a minute later");
    assert_eq!(
        used(store.api_tokens(ada.id).await.expect("list")),
        Some(T0 + 61_000)
    );

    assert!(matches!(
        store.delete_api_token(bob.id, crm.id).await,
        Err(Error::NotFound)
    ));
    store
        .delete_api_token(ada.id, crm.id)
        .await
        .expect("revoke");
    assert_eq!(store.api_token_agent("h1", T0).await.expect("use"), None);

    store
        .update_agent(bob.id, Role::Agent, 5, true)
        .await
        .expect("disable");
    assert_eq!(
        store.api_token_agent("h3", T0).await.expect("use"),
        None,
        "a disabled agent's tokens stop working"
    );
}

#[tokio::test]
async fn conversation_tags_are_replaced_as_a_set() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let first = store
        .create_conversation(shop.id, visitor(store, &shop, "a").await.id, T0)
        .await
        .expect("conversation");
    let second = store
        .create_conversation(shop.id, visitor(store, &shop, "b").await.id, T0)
        .await
        .expect("conversation");
    let tags = |list: &[&str]| list.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    store
        .set_conversation_tags(first.id, &tags(&["vip", "退款", "vip"]))
        .await
        .expect("tag");
    store
        .set_conversation_tags(second.id, &tags(&["refund"]))
        .await
        .expect("tag");
    let listed = store
        .conversation_tags(&[second.id, first.id])
        .await
        .expect("tags");
    assert_eq!(
        listed,
        [
            (first.id, "vip".to_string()),
            (first.id, "退款".to_string()),
            (second.id, "refund".to_string())
        ]
    );
    // Replacing removes what is no longer there; an empty set clears.
    store
        .set_conversation_tags(first.id, &tags(&["退款"]))
        .await
        .expect("retag");
    store
        .set_conversation_tags(second.id, &[])
        .await
        .expect("clear");
    assert_eq!(
        store
            .conversation_tags(&[first.id, second.id])
            .await
            .expect("tags"),
        [(first.id, "退款".to_string())]
    );
    assert!(store.conversation_tags(&[]).await.expect("none").is_empty());
    assert!(matches!(
        store
            .set_conversation_tags(first.id.beyond(1000), &tags(&["x"]))
            .await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn site_agents_are_the_members_of_any_of_the_sites_once() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let other = site(store, "other").await;
    let lonely = site(store, "lonely").await;
    let ann = agent(store, "ann@x.example").await;
    let bo = agent(store, "bo@x.example").await;
    let cy = agent(store, "cy@x.example").await;
    for (site, agent) in [(&shop, &ann), (&shop, &bo), (&other, &bo), (&other, &cy)] {
        store
            .add_agent_to_site(site.id, agent.id)
            .await
            .expect("membership");
    }
    let ids = |agents: Vec<Agent>| agents.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.site_agents(&[shop.id]).await.expect("shop")),
        [ann.id, bo.id]
    );
    assert_eq!(
        ids(store.site_agents(&[other.id, shop.id]).await.expect("both")),
        [ann.id, bo.id, cy.id]
    );
    assert!(
        store
            .site_agents(&[lonely.id])
            .await
            .expect("none")
            .is_empty()
    );
    assert!(store.site_agents(&[]).await.expect("empty").is_empty());
    let agent = store.site_agents(&[other.id]).await.expect("other");
    assert_eq!(agent[0].email, "bo@x.example");
}

#[tokio::test]
async fn canned_replies_are_shared_per_site_or_an_agents_own() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let other = site(store, "other").await;
    let ann = agent(store, "ann@x.example").await;
    let bo = agent(store, "bo@x.example").await;
    let reply = |site: &Site, agent: Option<AgentId>, shortcut: &str| store::NewCannedReply {
        site_id: site.id,
        agent_id: agent,
        shortcut: shortcut.to_owned(),
        body: format!("text of {shortcut}"),
        created_at: T0,
    };
    let shared = store
        .create_canned_reply(reply(&shop, None, "refund"))
        .await
        .expect("shared");
    let own = store
        .create_canned_reply(reply(&shop, Some(ann.id), "hello"))
        .await
        .expect("ann's own");
    store
        .create_canned_reply(reply(&shop, Some(bo.id), "bye"))
        .await
        .expect("bo's own");
    store
        .create_canned_reply(reply(&other, None, "elsewhere"))
        .await
        .expect("other site's");
    let shortcuts =
        |list: Vec<store::CannedReply>| list.into_iter().map(|r| r.shortcut).collect::<Vec<_>>();
    assert_eq!(
        shortcuts(
            store
                .canned_replies(&[shop.id], ann.id)
                .await
                .expect("list")
        ),
        ["hello", "refund"],
        "shared ones and Ann's own, by shortcut; not Bo's, not another site's"
    );
    assert_eq!(
        shortcuts(
            store
                .canned_replies(&[shop.id, other.id], bo.id)
                .await
                .expect("list")
        ),
        ["bye", "elsewhere", "refund"]
    );
    assert!(
        store
            .canned_replies(&[], ann.id)
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(
        store.canned_reply(own.id).await.expect("read"),
        Some(own.clone())
    );
    store.delete_canned_reply(own.id).await.expect("delete");
    store
        .delete_canned_reply(own.id)
        .await
        .expect("delete again");
    assert_eq!(store.canned_reply(own.id).await.expect("read"), None);
    assert_eq!(
        store.canned_reply(shared.id).await.expect("read"),
        Some(shared)
    );
    let mut orphan = reply(&shop, None, "x");
    orphan.site_id = shop.id.beyond(1000);
    assert!(matches!(
        store.create_canned_reply(orphan).await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn an_agents_language_can_be_changed() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let ann = agent(store, "ann@x.example").await;
    store
        .set_agent_language(ann.id, "zh-CN")
        .await
        .expect("set");
    assert_eq!(
        store.agent(ann.id).await.expect("read").map(|a| a.language),
        Some("zh-CN".to_owned())
    );
    // Setting the same value again is fine (MySQL reports no changed row).
    store
        .set_agent_language(ann.id, "zh-CN")
        .await
        .expect("same again");
    assert!(matches!(
        store.set_agent_language(ann.id.beyond(1000), "en").await,
        Err(Error::NotFound)
    ));
}

/// Appends `bodies` to `conversation` as visitor messages, one second apart.
async fn say(
    store: &dyn Store,
    conversation: &Conversation,
    bodies: &[&str],
) -> Vec<store::Message> {
    let mut stored = Vec::new();
    for body in bodies {
        let n = stored.len() as i64;
        let mut new = message(&format!("{}-{n}", conversation.id), body);
        new.created_at = T0 + n * 1000;
        let appended = store
            .append_message(conversation.id, new)
            .await
            .expect("append");
        stored.push(appended.message);
    }
    stored
}

/// The bodies of the messages `query` finds on `sites`, newest first.
async fn found(store: &dyn Store, sites: &[SiteId], query: &str) -> Vec<String> {
    let filter = HistoryFilter {
        sites: sites.to_vec(),
        ..HistoryFilter::default()
    };
    let query = Query::parse(query).expect("searchable query");
    store
        .search_messages(&filter, &query, None, 50)
        .await
        .expect("search")
        .into_iter()
        .map(|m| m.body)
        .collect()
}

#[tokio::test]
async fn search_finds_chinese_japanese_and_english_inside_longer_text() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let other = site(store, "other").await;
    let ann = visitor(store, &shop, "ann").await;
    let chat = store
        .create_conversation(shop.id, ann.id, T0)
        .await
        .expect("conversation");
    let zh = "您好，我想申请退款，订单号12345";
    let ja = "注文の返金をお願いします。";
    let en = "Could you process a REFUND for order 42 please?";
    let en2 = "The refunded amount arrived, thanks";
    say(
        store,
        &chat,
        &[zh, "款项已经到账了", "我要退货", ja, en, "hello there", en2],
    )
    .await;
    let elsewhere_visitor = visitor(store, &other, "bo").await;
    let elsewhere = store
        .create_conversation(other.id, elsewhere_visitor.id, T0)
        .await
        .expect("conversation");
    say(store, &elsewhere, &["另一个网站的退款问题"]).await;

    let sites = [shop.id];
    assert_eq!(found(store, &sites, "退款").await, [zh]);
    assert_eq!(found(store, &sites, "申请退款").await, [zh]);
    assert_eq!(found(store, &sites, "12345").await, [zh]);
    assert_eq!(found(store, &sites, "返金").await, [ja]);
    assert_eq!(found(store, &sites, "お願い").await, [ja]);
    // A word matches as a prefix ("refund" in "refunded"), in any case, newest first.
    assert_eq!(found(store, &sites, "Refund").await, [en2, en]);
    assert_eq!(found(store, &sites, "refund order").await, [en]);
    // Every term must match in the same message: no hit is put together from two rows.
    assert!(found(store, &sites, "退款 refund").await.is_empty());
    assert!(found(store, &sites, "退款 返金").await.is_empty());
    // Characters that are in the text but not next to each other are not the word.
    assert!(found(store, &sites, "退到").await.is_empty());
    assert!(found(store, &sites, "fund").await.is_empty());
    // A short number is a prefix on every backend, padded for InnoDB or not.
    assert_eq!(found(store, &sites, "4").await, [en]);
    // A single CJK character finds every message holding it, wherever it stands in its run.
    assert_eq!(found(store, &sites, "货").await, ["我要退货"]);
    // The other site's message is not found from this one, and is from its own.
    assert_eq!(
        found(store, &[other.id], "退款").await,
        ["另一个网站的退款问题"]
    );
    assert_eq!(found(store, &[shop.id, other.id], "退款").await.len(), 2);
    assert!(found(store, &[], "退款").await.is_empty());
}

#[tokio::test]
async fn search_results_page_by_id_and_honour_the_history_filter() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let ada = agent(store, "ada@example.com").await;
    let ann = visitor(store, &shop, "ann").await;
    let bo = visitor(store, &shop, "bo").await;
    let first = store
        .create_conversation(shop.id, ann.id, T0)
        .await
        .expect("conversation");
    let second = store
        .create_conversation(shop.id, bo.id, T0)
        .await
        .expect("conversation");
    let bodies: Vec<String> = (0..7).map(|n| format!("invoice number {n}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let in_first = say(store, &first, &refs).await;
    say(store, &second, &["invoice for bo"]).await;
    assert!(
        store
            .reassign_conversation(first.id, None, Some(ada.id))
            .await
            .expect("assign")
    );
    store
        .set_conversation_tags(first.id, &["billing".to_owned()])
        .await
        .expect("tags");

    let query = Query::parse("invoice").expect("query");
    let only_first = HistoryFilter {
        sites: vec![shop.id],
        agent: Some(ada.id),
        ..HistoryFilter::default()
    };
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .search_messages(&only_first, &query, before, 3)
            .await
            .expect("page");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        seen.extend(page);
    }
    let mut expected = in_first.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    let query = &query;
    let filtered = |filter: HistoryFilter| async move {
        store
            .search_messages(&filter, query, None, 50)
            .await
            .expect("search")
            .len()
    };
    let base = HistoryFilter {
        sites: vec![shop.id],
        ..HistoryFilter::default()
    };
    assert_eq!(filtered(base.clone()).await, 8);
    let by_visitor = HistoryFilter {
        visitor: Some(bo.id),
        ..base.clone()
    };
    assert_eq!(filtered(by_visitor).await, 1);
    let by_tag = HistoryFilter {
        tag: Some("billing".into()),
        ..base.clone()
    };
    assert_eq!(filtered(by_tag).await, 7);
    // Messages 2, 3 and 4 of the first conversation were sent in [T0 + 2s, T0 + 5s).
    let by_date = HistoryFilter {
        since: Some(T0 + 2000),
        until: Some(T0 + 5000),
        visitor: Some(ann.id),
        ..base.clone()
    };
    assert_eq!(filtered(by_date).await, 3);
    let by_status = HistoryFilter {
        status: Some(ConversationStatus::Resolved),
        ..base.clone()
    };
    assert_eq!(filtered(by_status).await, 0);
}

#[tokio::test]
async fn history_lists_the_conversations_a_filter_selects() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let other = site(store, "other").await;
    let ann = visitor(store, &shop, "ann").await;
    let mut conversations = Vec::new();
    for n in 0..5_i64 {
        let c = store
            .create_conversation(shop.id, ann.id, T0 + n * 1000)
            .await
            .expect("conversation");
        conversations.push(c);
    }
    let stranger = visitor(store, &other, "x").await;
    store
        .create_conversation(other.id, stranger.id, T0)
        .await
        .expect("other site");
    store
        .set_conversation_status(conversations[1].id, ConversationStatus::Resolved, T0 + 9000)
        .await
        .expect("resolve");
    store
        .rate_conversation(store::Rating {
            conversation_id: conversations[1].id,
            score: 5,
            comment: None,
            created_at: T0 + 9000,
        })
        .await
        .expect("rate");

    let all = HistoryFilter {
        sites: vec![shop.id],
        ..HistoryFilter::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.history(&all, after, 2).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        seen.extend(page.into_iter().map(|c| c.id));
    }
    // The resolved one was updated last; the others by creation, newest first.
    let ids: Vec<ConversationId> = conversations.iter().map(|c| c.id).collect();
    assert_eq!(seen, [ids[1], ids[4], ids[3], ids[2], ids[0]]);

    let rated = HistoryFilter {
        rating: Some(5),
        ..all.clone()
    };
    let rated: Vec<ConversationId> = store
        .history(&rated, None, 10)
        .await
        .expect("rated")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(rated, [ids[1]]);
    let open_recent = HistoryFilter {
        status: Some(ConversationStatus::Open),
        since: Some(T0 + 3000),
        ..all.clone()
    };
    let open_recent: Vec<ConversationId> = store
        .history(&open_recent, None, 10)
        .await
        .expect("open recent")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(open_recent, [ids[4], ids[3]]);
}

#[tokio::test]
async fn leave_messages_are_found_by_name_contact_and_text() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let leave = |name: Option<&str>, contact: &str, body: &str| NewLeaveMessage {
        site_id: shop.id,
        visitor_id: None,
        name: name.map(str::to_owned),
        contact: contact.to_owned(),
        body: body.to_owned(),
        created_at: T0,
    };
    let zhang = store
        .create_leave_message(leave(
            Some("张三"),
            "zhang@example.com",
            "网站无法付款，请联系我",
        ))
        .await
        .expect("leave");
    let tanaka = store
        .create_leave_message(leave(None, "+81 90 1234", "配送状況を教えてください"))
        .await
        .expect("leave");
    let search = |text: &str| {
        let query = Query::parse(text).expect("query");
        async move {
            store
                .search_leave_messages(&[shop.id], &query, None, 10)
                .await
                .expect("search")
                .into_iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("付款").await, [zhang.id]);
    assert_eq!(search("zhang@example.com").await, [zhang.id]);
    assert_eq!(search("张三").await, [zhang.id]);
    assert_eq!(search("配送").await, [tanaka.id]);
    assert_eq!(search("1234").await, [tanaka.id]);
    assert!(search("退款").await.is_empty());
    assert!(search("付款 配送").await.is_empty());
}

#[tokio::test]
async fn rows_stored_before_search_existed_are_indexed_at_the_next_start() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let chat = conversation(store).await;
    let bodies: Vec<String> = (0..510).map(|n| format!("order {n} 退款")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let stored = say(store, &chat, &refs).await;
    let highest = stored.last().map(|m| m.id).expect("stored");
    // What a database upgraded to search looks like: rows without index entries, and the marker
    // the 0009_search migration leaves.
    let unindex = match db.url.backend() {
        store::Backend::Sqlite => "DELETE FROM messages_fts",
        store::Backend::Postgres => "UPDATE messages SET search = NULL",
        store::Backend::MySql => "UPDATE messages SET search_text = NULL",
    };
    db.execute(&format!(
        "{unindex}; INSERT INTO settings VALUES ('search_backfill_messages', '{highest}')"
    ))
    .await;
    assert!(found(store, &[chat.site_id], "退款").await.is_empty());

    let restarted = store::connect(&db.url).await.expect("reconnect");
    let filter = HistoryFilter {
        sites: vec![chat.site_id],
        ..HistoryFilter::default()
    };
    let query = Query::parse("退款").expect("query");
    let mut count = 0;
    let mut before = None;
    loop {
        let page = restarted
            .search_messages(&filter, &query, before, 200)
            .await
            .expect("search");
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        count += page.len();
    }
    assert_eq!(count, 510);
    assert_eq!(
        found(restarted.as_ref(), &[chat.site_id], "order 509")
            .await
            .len(),
        1
    );
    assert_eq!(
        restarted
            .secret("search_backfill_messages", &|| "gone".to_owned())
            .await
            .expect("setting"),
        "gone",
        "the marker is removed once every row is indexed"
    );
}

#[tokio::test]
async fn imported_messages_follow_the_stored_ones_and_are_found() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let chat = conversation(store).await;
    say(store, &chat, &["first"]).await;
    let batch: Vec<NewMessage> = (1..=3)
        .map(|n| {
            let mut m = message(&format!("import-{n}"), &format!("导入的消息 imported {n}"));
            m.created_at = T0 + 60_000 + n;
            m
        })
        .collect();
    assert_eq!(
        store
            .import_messages(chat.id, &batch)
            .await
            .expect("import"),
        3
    );
    let all = store
        .messages_after(chat.id, 0, 10)
        .await
        .expect("messages");
    assert_eq!(seqs(&all), [1, 2, 3, 4]);
    assert_eq!(all[3].body, "导入的消息 imported 3");
    let updated = store
        .conversation(chat.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(updated.updated_at, T0 + 60_003);
    assert_eq!(updated.last_seq, 4);
    assert_eq!(found(store, &[chat.site_id], "导入").await.len(), 3);

    // A client id already there fails the whole batch, and stores nothing of it.
    let again = vec![message("import-9", "new"), message("import-1", "repeat")];
    let refused = store.import_messages(chat.id, &again).await;
    assert!(
        matches!(refused, Err(Error::Conflict { field: "client_id" })),
        "{refused:?}"
    );
    let after = store
        .messages_after(chat.id, 0, 10)
        .await
        .expect("messages");
    assert_eq!(after.len(), 4);
    assert_eq!(
        store
            .import_messages(chat.id.beyond(1000), &batch)
            .await
            .map_err(|e| e.to_string()),
        Err(Error::NotFound.to_string())
    );
}

#[tokio::test]
async fn leave_messages_are_taken_handled_and_annotated() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let other = site(store, "other").await;
    let ada = agent(store, "ada@example.com").await;
    let leave = |site_id: SiteId, body: &str, n: i64| NewLeaveMessage {
        site_id,
        visitor_id: None,
        name: None,
        contact: format!("v{n}@example.com"),
        body: body.to_owned(),
        created_at: T0 + n,
    };
    let first = store
        .create_leave_message(leave(shop.id, "call me", 1))
        .await
        .expect("leave");
    let second = store
        .create_leave_message(leave(shop.id, "mail me", 2))
        .await
        .expect("leave");
    let elsewhere = store
        .create_leave_message(leave(other.id, "other site", 3))
        .await
        .expect("leave");

    let taken = store
        .update_leave_message(first.id, LeaveMessageStatus::InProgress, Some(ada.id))
        .await
        .expect("take");
    assert_eq!(taken.status, LeaveMessageStatus::InProgress);
    assert_eq!(taken.assignee_id, Some(ada.id));
    assert_eq!(
        store.leave_message(first.id).await.expect("read"),
        Some(taken)
    );

    let ids = |page: Vec<store::LeaveMessage>| page.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let new = store
        .leave_messages_page(&[shop.id], Some(LeaveMessageStatus::New), None, 10)
        .await
        .expect("new ones");
    assert_eq!(ids(new), [second.id]);
    let both_sites = store
        .leave_messages_page(&[shop.id, other.id], None, None, 10)
        .await
        .expect("all");
    assert_eq!(ids(both_sites), [elsewhere.id, second.id, first.id]);
    assert!(
        store
            .leave_messages_page(&[], None, None, 10)
            .await
            .expect("none")
            .is_empty()
    );

    for body in ["Called, no answer", "Replied by e-mail: Hello"] {
        store
            .add_leave_message_note(store::NewLeaveMessageNote {
                leave_message_id: first.id,
                agent_id: Some(ada.id),
                body: body.to_owned(),
                created_at: T0 + 10,
            })
            .await
            .expect("note");
    }
    let notes: Vec<String> = store
        .leave_message_notes(first.id)
        .await
        .expect("notes")
        .into_iter()
        .map(|n| n.body)
        .collect();
    assert_eq!(notes, ["Called, no answer", "Replied by e-mail: Hello"]);
    assert!(
        store
            .leave_message_notes(second.id)
            .await
            .expect("none")
            .is_empty()
    );

    let released = store
        .update_leave_message(first.id, LeaveMessageStatus::Handled, None)
        .await
        .expect("handled");
    assert_eq!(released.assignee_id, None);
    let missing = store
        .update_leave_message(first.id.beyond(1000), LeaveMessageStatus::Handled, None)
        .await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
    let orphan = store
        .add_leave_message_note(store::NewLeaveMessageNote {
            leave_message_id: first.id.beyond(1000),
            agent_id: None,
            body: "x".into(),
            created_at: T0,
        })
        .await;
    assert!(matches!(orphan, Err(Error::NotFound)), "{orphan:?}");
}

#[tokio::test]
async fn a_search_across_many_thousand_messages_finds_every_match_in_order() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let chat = conversation(store).await;
    // 23,000 messages, one in a thousand with the word: beyond every window a backend may scan
    // before it asks its index, so both paths have to agree.
    let mut expected = Vec::new();
    for batch in 0..23 {
        let messages: Vec<NewMessage> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                let body = if i == 500 {
                    expected.push(format!("needle 针线 {n}"));
                    format!("needle 针线 {n}")
                } else {
                    format!("hay {n}")
                };
                message(&format!("bulk-{n}"), &body)
            })
            .collect();
        store
            .import_messages(chat.id, &messages)
            .await
            .expect("import");
    }
    expected.reverse();
    for text in ["needle", "针线"] {
        let query = Query::parse(text).expect("query");
        let filter = HistoryFilter {
            sites: vec![chat.site_id],
            ..HistoryFilter::default()
        };
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .search_messages(&filter, &query, before, 5)
                .await
                .expect("search");
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            seen.extend(page.into_iter().map(|m| m.body));
        }
        assert_eq!(seen, expected, "{text}");
        // One page of them all: the newest from scanned windows, the oldest from the index.
        let all: Vec<String> = store
            .search_messages(&filter, &query, None, 50)
            .await
            .expect("search")
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(all, expected, "{text}");
    }
}

#[tokio::test]
async fn sites_are_listed_and_updated_but_keep_their_key() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let first = site(store, "first").await;
    let second = site(store, "second").await;
    let listed: Vec<SiteId> = store
        .all_sites()
        .await
        .expect("sites")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [first.id, second.id]);
    let settings = serde_json::json!({ "color": "#ff0000", "prechat": true });
    let origins = vec![
        "https://new.example".to_owned(),
        "https://www.new.example".to_owned(),
    ];
    let updated = store
        .update_site(first.id, "新的名字", &origins, &settings)
        .await
        .expect("update");
    assert_eq!(updated.public_key, "first");
    assert_eq!(updated.name, "新的名字");
    assert_eq!(updated.allowed_origins, origins);
    assert_eq!(updated.widget_settings, settings);
    assert_eq!(
        store.site_by_key("first").await.expect("read"),
        Some(updated)
    );
    let missing = store
        .update_site(second.id.beyond(100), "x", &[], &serde_json::json!({}))
        .await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
}

#[tokio::test]
async fn administrators_change_agents_and_their_sites() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let ada = agent(store, "ada@example.com").await;
    let bo = agent(store, "bo@example.com").await;
    let listed: Vec<AgentId> = store
        .all_agents()
        .await
        .expect("agents")
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, [ada.id, bo.id]);
    let changed = store
        .update_agent(bo.id, Role::Admin, 9, true)
        .await
        .expect("update");
    assert_eq!(
        (changed.role, changed.max_chats, changed.disabled),
        (Role::Admin, 9, true)
    );
    assert_eq!(store.agent(bo.id).await.expect("read"), Some(changed));
    let missing = store
        .update_agent(bo.id.beyond(100), Role::Agent, 1, false)
        .await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");

    store
        .add_agent_to_site(shop.id, ada.id)
        .await
        .expect("join");
    store
        .remove_agent_from_site(shop.id, ada.id)
        .await
        .expect("leave");
    store
        .remove_agent_from_site(shop.id, ada.id)
        .await
        .expect("leaving twice is no error");
    assert!(store.agent_sites(ada.id).await.expect("sites").is_empty());
}

#[tokio::test]
async fn bans_are_lifted_and_old_history_is_deleted() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let ban = store
        .create_ban(NewBan {
            site_id: shop.id,
            visitor_id: None,
            ip_cidr: Some("203.0.113.0/24".into()),
            reason: "spam".into(),
            expires_at: None,
            created_at: T0,
        })
        .await
        .expect("ban");
    store.delete_ban(ban.id).await.expect("lift");
    store
        .delete_ban(ban.id)
        .await
        .expect("lifting twice is no error");
    assert!(
        store
            .active_bans(shop.id, T0)
            .await
            .expect("bans")
            .is_empty()
    );

    let ann = visitor(store, &shop, "ann").await;
    let old = store
        .create_conversation(shop.id, ann.id, T0)
        .await
        .expect("old");
    say(store, &old, &["退款 old"]).await;
    let recent = store
        .create_conversation(shop.id, ann.id, T0 + 100_000)
        .await
        .expect("recent");
    let mut late = message("late", "退款 recent");
    late.created_at = T0 + 100_000;
    store.append_message(recent.id, late).await.expect("append");
    store
        .create_leave_message(NewLeaveMessage {
            site_id: shop.id,
            visitor_id: None,
            name: None,
            contact: "x@example.com".into(),
            body: "old".into(),
            created_at: T0,
        })
        .await
        .expect("leave");

    assert_eq!(
        store
            .delete_history_before(T0 + 50_000)
            .await
            .expect("retention"),
        1
    );
    assert_eq!(store.conversation(old.id).await.expect("read"), None);
    assert!(store.conversation(recent.id).await.expect("read").is_some());
    assert_eq!(found(store, &[shop.id], "退款").await, ["退款 recent"]);
    assert!(
        store
            .leave_messages_page(&[shop.id], None, None, 10)
            .await
            .expect("page")
            .is_empty()
    );
}

#[tokio::test]
async fn webhook_deliveries_are_queued_leased_once_and_logged() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let messages = store
        .create_webhook(
            "https://a.example/hook",
            "s1",
            &["message.created", "conversation.resolved"],
            T0,
        )
        .await
        .expect("hook");
    let leaves = store
        .create_webhook(
            "https://b.example/hook",
            "s2",
            &["leave_message.created"],
            T0,
        )
        .await
        .expect("hook");
    assert!(messages.wants("message.created") && !messages.wants("message"));
    assert_eq!(
        store.webhooks().await.expect("hooks"),
        [messages.clone(), leaves.clone()]
    );
    for n in 0..6 {
        let queued = store
            .enqueue_webhook_deliveries("message.created", &format!("{{\"n\":{n}}}"), T0)
            .await
            .expect("enqueue");
        assert_eq!(queued, 1, "only the hook that wants it");
    }
    // Two senders at once never take the same delivery (InnoDB may make the second skip rows
    // the first only looked at: a third pass takes what is left); what is leased is not taken
    // again until the lease runs out.
    let (a, b) = tokio::join!(
        store.claim_webhook_deliveries(T0, T0 + 30_000, 4),
        store.claim_webhook_deliveries(T0, T0 + 30_000, 4),
    );
    let rest = store
        .claim_webhook_deliveries(T0, T0 + 30_000, 10)
        .await
        .expect("claim");
    let claimed: Vec<i64> = a
        .expect("claim")
        .iter()
        .chain(&b.expect("claim"))
        .chain(&rest)
        .map(|d| d.id)
        .collect();
    let mut distinct = claimed.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), claimed.len(), "claimed twice: {claimed:?}");
    assert_eq!(distinct.len(), 6);
    assert!(
        store
            .claim_webhook_deliveries(T0 + 1, T0 + 60_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let mut again = store
        .claim_webhook_deliveries(T0 + 30_000, T0 + 60_000, 10)
        .await
        .expect("claim");
    again.sort_by_key(|d| d.id);
    assert_eq!(again.len(), 6, "a dead sender's lease runs out");

    let first = again[0].clone();
    assert_eq!(
        (first.event.as_str(), first.payload.as_str()),
        ("message.created", "{\"n\":0}")
    );
    store
        .record_webhook_attempt(
            first.id,
            &DeliveryAttempt {
                state: DeliveryState::Pending,
                next_attempt_at: T0 + 90_000,
                status: Some(500),
                error: Some("HTTP 500".into()),
            },
        )
        .await
        .expect("retry later");
    store
        .record_webhook_attempt(
            first.id,
            &DeliveryAttempt {
                state: DeliveryState::Delivered,
                next_attempt_at: T0 + 90_000,
                status: Some(204),
                error: None,
            },
        )
        .await
        .expect("delivered");
    let log = store
        .webhook_deliveries(messages.id, 10)
        .await
        .expect("log");
    assert_eq!(log.len(), 6);
    let logged = log.iter().find(|d| d.id == first.id).expect("logged");
    assert_eq!(
        (logged.state, logged.attempts, logged.last_status),
        (DeliveryState::Delivered, 2, Some(204))
    );
    let due = store
        .claim_webhook_deliveries(T0 + 100_000, T0 + 130_000, 10)
        .await
        .expect("claim");
    assert_eq!(due.len(), 5, "the delivered one is done");

    store.delete_webhook(messages.id).await.expect("delete");
    assert!(
        store
            .webhook_deliveries(messages.id, 10)
            .await
            .expect("log")
            .is_empty()
    );
    assert_eq!(store.webhooks().await.expect("hooks"), [leaves]);
}

#[tokio::test]
async fn conversation_stats_give_first_reply_resolution_assignee_and_rating() {
    let db = TestDb::new().await;
    let store = db.store.as_ref();
    let shop = site(store, "shop").await;
    let other = site(store, "other").await;
    let ada = agent(store, "ada@example.com").await;
    let ann = visitor(store, &shop, "ann").await;
    let answered = store
        .create_conversation(shop.id, ann.id, T0)
        .await
        .expect("conversation");
    let mut hello = message("v1", "hello");
    hello.created_at = T0 + 1_000;
    store
        .append_message(answered.id, hello)
        .await
        .expect("append");
    for (id, at) in [("a1", T0 + 30_000), ("a2", T0 + 60_000)] {
        let mut reply = message(id, "hi");
        reply.author = Author::Agent;
        reply.agent_id = Some(ada.id);
        reply.created_at = at;
        store
            .append_message(answered.id, reply)
            .await
            .expect("append");
    }
    assert!(
        store
            .reassign_conversation(answered.id, None, Some(ada.id))
            .await
            .expect("assign")
    );
    store
        .set_conversation_status(answered.id, ConversationStatus::Resolved, T0 + 90_000)
        .await
        .expect("resolve");
    store
        .rate_conversation(store::Rating {
            conversation_id: answered.id,
            score: 4,
            comment: None,
            created_at: T0 + 95_000,
        })
        .await
        .expect("rate");
    let missed = store
        .create_conversation(shop.id, ann.id, T0 + 10)
        .await
        .expect("conversation");
    let late = store
        .create_conversation(shop.id, ann.id, T0 + 86_400_000)
        .await
        .expect("next day");
    let stranger = visitor(store, &other, "x").await;
    store
        .create_conversation(other.id, stranger.id, T0)
        .await
        .expect("other site");

    let stats = store
        .conversation_stats(&[shop.id], T0, T0 + 86_400_000)
        .await
        .expect("stats");
    assert_eq!(
        stats,
        [
            store::ConversationStats {
                id: answered.id,
                created_at: T0,
                first_reply_at: Some(T0 + 30_000),
                resolved_at: Some(T0 + 90_000),
                assignee_id: Some(ada.id),
                rating: Some(4),
            },
            store::ConversationStats {
                id: missed.id,
                created_at: T0 + 10,
                first_reply_at: None,
                resolved_at: None,
                assignee_id: None,
                rating: None,
            },
        ],
        "the next day's ({}) and the other site's are outside",
        late.id
    );
}

#[tokio::test]
async fn a_database_a_newer_kefu_upgraded_is_refused_with_a_clear_message() {
    let db = TestDb::new().await;
    let current = db.store.schema_version().await.expect("version");
    assert!(current >= 16, "every migration applied: {current}");
    let checksum = match db.url.backend() {
        store::Backend::Postgres => "'\\x00'::bytea",
        _ => "X'00'",
    };
    db.execute(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'a newer kefu', TRUE, {checksum}, 0)"
    ))
    .await;
    let Err(error) = store::connect(&db.url).await else {
        panic!("a database with an unknown migration was opened");
    };
    assert!(
        matches!(error, Error::NewerDatabase { found: 99999, known } if known == current),
        "{error}"
    );
    assert!(
        error.to_string().contains("upgraded by a newer Kefu"),
        "{error}"
    );
}

#[tokio::test]
async fn the_copy_for_migrate_to_covers_every_table_and_column() {
    use sqlx::Connection;
    let db = TestDb::new().await;
    let url = db.url.expose_secret().to_owned();
    let columns: Vec<(String, String)> = match db.url.backend() {
        store::Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connect");
            sqlx::query_as(
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("columns")
        }
        store::Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            sqlx::query_as(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("columns")
        }
        store::Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(&url).await.expect("connect");
            sqlx::query_as(
                "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR) \
                 FROM information_schema.columns WHERE table_schema = DATABASE()",
            )
            .fetch_all(&mut conn)
            .await
            .expect("columns")
        }
    };
    let mut in_schema: Vec<(String, String)> = columns
        .into_iter()
        .filter(|(table, column)| {
            !table.contains("_fts")
                && !store::copy::NOT_COPIED.contains(&table.as_str())
                && !store::copy::NOT_COPIED_COLUMNS.contains(&(table.as_str(), column.as_str()))
        })
        .collect();
    in_schema.sort();
    let mut copied: Vec<(String, String)> = store::copy::TABLES
        .iter()
        .flat_map(|t| {
            t.columns
                .iter()
                .map(|(c, _)| (t.name.to_owned(), (*c).to_owned()))
        })
        .collect();
    copied.sort();
    assert_eq!(
        copied, in_schema,
        "a migration added a table or column: add it to store::copy::TABLES"
    );
}
