//! Closing a SQLite store leaves one whole file: the group-commit writer's connection is closed
//! with the pool's, so the last of them checkpoints the write-ahead log and removes it.

use crate::contract::{message, site, visitor};

#[tokio::test]
async fn a_closed_sqlite_store_leaves_only_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = store::DatabaseUrl::parse(&format!("sqlite://{}/kefu.db", dir.path().display()))
        .expect("url");
    let store = store::connect(&url).await.expect("store");
    let site = site(store.as_ref(), "shop").await;
    let visitor = visitor(store.as_ref(), &site, "guest").await;
    for n in 0..3 {
        store
            .append_message_in_open_conversation(
                site.id,
                visitor.id,
                message(&format!("m{n}"), "hello"),
            )
            .await
            .expect("append");
    }
    store.close().await;
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(files, ["kefu.db"], "nothing beside the file after close");
}
