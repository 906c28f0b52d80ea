//! A full disk under SQLite, made with [`store::PageLimit`]: a refused write is
//! [`store::Error::is_disk_full`] and leaves nothing behind; after the cap is lifted the same
//! store writes again, with no reconnect.

use protocol::{Author, ClientId};
use store::{NewMessage, NewSite, PageLimit};

fn message(client_id: &str) -> NewMessage {
    NewMessage {
        client_id: ClientId(client_id.to_owned()),
        author: Author::Visitor,
        agent_id: None,
        // Long enough that the pages in use fill within a few messages.
        body: "x".repeat(2_000),
        attachment: None,
        created_at: 1_700_000_000_000,
    }
}

#[tokio::test]
async fn a_full_database_refuses_writes_as_disk_full_and_writes_again_when_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = store::DatabaseUrl::parse(&format!("sqlite://{}/kefu.db", dir.path().display()))
        .expect("url");
    let limit = PageLimit::new();
    let store = store::connect_sqlite_limited(&url, limit.clone())
        .await
        .expect("store");
    let site = store
        .create_site(NewSite {
            public_key: "shop".into(),
            name: "Shop".into(),
            allowed_origins: vec![],
            widget_settings: serde_json::json!({}),
            created_at: 0,
        })
        .await
        .expect("site");
    let visitor = store
        .upsert_visitor(site.id, "guest", 0)
        .await
        .expect("visitor");
    let conversation = store
        .create_conversation(site.id, visitor.id, 0)
        .await
        .expect("conversation");

    limit.fill();
    let mut stored = 0;
    let refused = loop {
        match store
            .append_message(conversation.id, message(&format!("m{stored}")))
            .await
        {
            Ok(_) => stored += 1,
            Err(error) => break error,
        }
        assert!(stored < 1_000, "the cap never filled");
    };
    assert!(refused.is_disk_full(), "{refused}");
    let held = store
        .messages_after(conversation.id, 0, 10_000)
        .await
        .expect("read while full");
    assert_eq!(held.len(), stored, "the refused message left nothing");

    limit.lift();
    let appended = store
        .append_message(conversation.id, message(&format!("m{stored}")))
        .await
        .expect("writes again");
    assert!(appended.created);
    assert_eq!(appended.message.seq, stored as i64 + 1);
}
