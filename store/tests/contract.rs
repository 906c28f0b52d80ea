//! The `Store` contract, run unchanged against whichever backend `TEST_DATABASE_URL` selects
//! (default: SQLite in a temporary directory). Every test gets a database of its own.

mod common;

use std::cmp::Reverse;
use std::collections::HashSet;
use std::sync::Arc;

use common::TestDb;
use protocol::{Author, ClientId, Seq};
use store::{
    Agent, Conversation, ConversationStatus, Error, LeaveMessageStatus, NewAgent, NewLeaveMessage,
    NewMessage, NewSite, Role, Site, Store, Visitor,
};

/// A fixed "now" so results do not depend on the clock.
const T0: i64 = 1_700_000_000_000;

async fn site(store: &dyn Store, key: &str) -> Site {
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

async fn visitor(store: &dyn Store, site: &Site, key: &str) -> Visitor {
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

fn message(client_id: &str, body: &str) -> NewMessage {
    NewMessage {
        client_id: ClientId(client_id.to_owned()),
        author: Author::Visitor,
        agent_id: None,
        body: body.to_owned(),
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
            .leave_messages_page(site_a.id, cursor, 7)
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
            site_id: site_b.id + 1000,
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
    let missing = store.add_agent_to_site(a.id, ada.id + 1000).await;
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
    let unknown_agent = store.create_session("hash-3", ada.id + 1000, expires).await;
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

    let missing = store.upsert_visitor(b.id + 1000, "vk", T0).await;
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
        store.conversation(conv.id + 1000).await.expect("load"),
        None
    );

    let missing = store
        .append_message(conv.id + 1000, message("x", "to nowhere"))
        .await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");

    let other_site = site(store, "other").await;
    let wrong_site = store
        .create_conversation(other_site.id, conv.visitor_id, T0)
        .await;
    assert!(matches!(wrong_site, Err(Error::NotFound)), "{wrong_site:?}");
    let no_visitor = store
        .create_conversation(conv.site_id, conv.visitor_id + 1000, T0)
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
        .leave_messages_page(conv.site_id, None, 10)
        .await
        .expect("page");
    assert_eq!(page, vec![left]);
    assert_eq!(page[0].body, "退款请求");
}
