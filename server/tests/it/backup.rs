//! `kefu backup`, `kefu backup --verify` and `kefu restore`, run as an operator runs them, on
//! real SQLite, PostgreSQL and MariaDB databases.
//!
//! From each backend a backup is taken while a task keeps writing messages into it. It must
//! be one file (nothing beside it), which copied alone into an empty directory passes
//! `--verify` and restores into an empty database of every backend with the row counts and
//! checksums it was taken with. Files that are not complete backups (cut short, another
//! program's SQLite file, a text file, a backup without its marker or changed after it was
//! taken) are refused by both commands with one line, before the target is touched.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{TestDatabase, kefu};
use protocol::{Author, ClientId, ConversationId};
use sqlx::Connection;
use store::DatabaseUrl;

/// Messages in the install before the writer starts (several copy batches).
const MESSAGES: usize = 3_000;

/// Runs `kefu` with `args`; whether it succeeded, and what it printed.
async fn run(args: &[&str]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || kefu().args(&args).output())
        .await
        .expect("join")
        .expect("kefu");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The names of the files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// An install at `url`: a site, an agent, a visitor's conversation of `MESSAGES` messages
/// and a settings row; returns the store and the conversation.
async fn install(url: &str) -> (Arc<dyn store::Store>, ConversationId) {
    let store = store::connect(&DatabaseUrl::parse(url).expect("url"))
        .await
        .expect("connect");
    let site = common::shop_with_admin(store.as_ref()).await;
    let visitor = store
        .upsert_visitor(site.id, "v1", server::now_ms())
        .await
        .expect("visitor");
    let conversation = store
        .create_conversation(site.id, visitor.id, server::now_ms())
        .await
        .expect("conversation");
    let messages: Vec<store::NewMessage> = (0..MESSAGES)
        .map(|n| message(&format!("seed{n}"), n))
        .collect();
    for batch in messages.chunks(1_000) {
        store
            .import_messages(conversation.id, batch)
            .await
            .expect("import");
    }
    (store, conversation.id)
}

fn message(client_id: &str, n: usize) -> store::NewMessage {
    store::NewMessage {
        client_id: ClientId(client_id.to_owned()),
        author: Author::Visitor,
        agent_id: None,
        body: format!("订单 {n} refund please"),
        attachment: None,
        created_at: 1_000 + n as i64,
    }
}

/// Every table of `store`: name, rows and checksum, read as a backup reads them.
async fn tallies_of(store: &dyn store::Store) -> Vec<(String, u64, String)> {
    let mut snapshot = store.copy_snapshot().await.expect("snapshot");
    let mut tallies = Vec::new();
    for table in store::copy::TABLES {
        let tally = server::migrate_to::tally(snapshot.as_mut(), table)
            .await
            .expect("tally");
        tallies.push((table.name.to_owned(), tally.rows, tally.checksum()));
    }
    snapshot.close().await.expect("close");
    tallies
}

/// Takes a backup of the install at `url` into `dir/backup.db` while a task appends
/// messages to it; returns the file.
async fn backup_while_writing(url: &str, dir: &Path) -> PathBuf {
    let (store, conversation) = install(url).await;
    let (written_tx, mut written) = tokio::sync::watch::channel(0usize);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                store
                    .append_message(conversation, message(&format!("live{n}"), MESSAGES + n))
                    .await
                    .expect("append while the backup runs");
                n += 1;
                written_tx.send_replace(n);
            }
        }
    });
    // Writing before the backup starts, and until it has ended.
    written.wait_for(|n| *n > 0).await.expect("writer");
    let before = *written.borrow();
    let file = dir.join("backup.db");
    let (ok, out, err) = run(&[
        "backup",
        file.to_str().expect("utf-8"),
        "--database-url",
        url,
    ])
    .await;
    let during = *written.borrow() - before;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    println!("{during} messages written while the backup of {url} ran");
    assert!(ok && out.contains("backup written"), "{out}{err}");
    assert_eq!(files_in(dir), ["backup.db"], "one file, nothing beside it");
    store.close().await;
    file
}

/// Copies `backup` alone into an empty directory, checks it there, and restores it into an
/// empty SQLite, PostgreSQL and MariaDB database, each then holding exactly what it holds.
async fn restores_everywhere(backup: &Path) {
    let lone = tempfile::tempdir().expect("tempdir");
    let file = lone.path().join("copied.db");
    std::fs::copy(backup, &file).expect("copy");
    let file_text = file.to_str().expect("utf-8");
    let (ok, out, err) = run(&["backup", "--verify", file_text]).await;
    assert!(
        ok && out.contains(&format!("backup {file_text} is complete")),
        "{out}{err}"
    );
    let held = tallies_of(
        store::open_read_only(&file)
            .await
            .expect("a backup opens")
            .as_ref(),
    )
    .await;
    let messages = held.iter().find(|t| t.0 == "messages").expect("messages");
    assert!(messages.1 > MESSAGES as u64, "{messages:?}");

    let sqlite_dir = tempfile::tempdir().expect("tempdir");
    let postgres = TestDatabase::create(&common::pg_url()).await;
    let mariadb = TestDatabase::create(&common::mysql_url()).await;
    let targets = [
        format!("sqlite://{}/restored.db", sqlite_dir.path().display()),
        postgres.url.clone(),
        mariadb.url.clone(),
    ];
    for target in &targets {
        let (ok, out, err) = run(&["restore", file_text, "--database-url", target]).await;
        assert!(ok && out.contains("restored into"), "{target}: {out}{err}");
        let restored = store::connect(&DatabaseUrl::parse(target).expect("url"))
            .await
            .expect("connect");
        assert_eq!(tallies_of(restored.as_ref()).await, held, "{target}");
        restored.close().await;
    }
    assert_eq!(
        files_in(lone.path()),
        ["copied.db"],
        "checking and restoring leave nothing beside the backup"
    );
    postgres.drop_now().await;
    mariadb.drop_now().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_backup_taken_while_writing_is_one_file_that_restores_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/kefu.db", data.path().display());
    let backup = backup_while_writing(&url, dir.path()).await;
    restores_everywhere(&backup).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_backup_taken_while_writing_is_one_file_that_restores_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = TestDatabase::create(&common::pg_url()).await;
    let backup = backup_while_writing(&source.url, dir.path()).await;
    restores_everywhere(&backup).await;
    source.drop_now().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mariadb_backup_taken_while_writing_is_one_file_that_restores_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = TestDatabase::create(&common::mysql_url()).await;
    let backup = backup_while_writing(&source.url, dir.path()).await;
    restores_everywhere(&backup).await;
    source.drop_now().await;
}

/// The tables in the PostgreSQL database at `url`.
async fn postgres_tables(url: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("count")
}

/// Runs SQL on the SQLite file at `path` as it is (its journal mode untouched).
async fn change(path: &Path, sql: &str) {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("change");
    conn.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_that_are_not_complete_backups_are_refused_before_the_target_is_touched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/kefu.db", data.path().display());
    let (store, _) = install(&url).await;
    store.close().await;
    // A partial file left by a killed backup is replaced, never taken for a backup.
    let good = dir.path().join("good.db");
    std::fs::write(dir.path().join("good.db.partial"), "half a backup").expect("write");
    let (ok, out, err) = run(&[
        "backup",
        good.to_str().expect("utf-8"),
        "--database-url",
        &url,
    ])
    .await;
    assert!(ok, "{out}{err}");
    assert_eq!(files_in(dir.path()), ["good.db"]);
    // A backup never overwrites a file.
    let (ok, _, err) = run(&[
        "backup",
        good.to_str().expect("utf-8"),
        "--database-url",
        &url,
    ])
    .await;
    assert!(!ok && err.contains("never overwrites"), "{err}");

    let bytes = std::fs::read(&good).expect("read");
    let bad = tempfile::tempdir().expect("tempdir");
    let cut = bad.path().join("cut.db");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let header_only = bad.path().join("header.db");
    std::fs::write(&header_only, &bytes[..60]).expect("write");
    let text = bad.path().join("notes.txt");
    std::fs::write(&text, "these are not the rows you are looking for\n").expect("write");
    let foreign = bad.path().join("foreign.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&foreign)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("create");
    sqlx::raw_sql("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hello');")
        .execute(&mut conn)
        .await
        .expect("foreign rows");
    conn.close().await.expect("close");
    let unmarked = bad.path().join("unmarked.db");
    std::fs::copy(&good, &unmarked).expect("copy");
    change(
        &unmarked,
        &format!(
            "DELETE FROM settings WHERE \"key\" = '{}'",
            store::copy::BACKUP_MARKER
        ),
    )
    .await;
    let changed = bad.path().join("changed.db");
    std::fs::copy(&good, &changed).expect("copy");
    change(
        &changed,
        "UPDATE messages SET body = 'changed' WHERE seq = 7",
    )
    .await;

    let cases: [(&Path, &str); 6] = [
        (&cut, "cut short"),
        (&header_only, "cut short"),
        (&text, "not a SQLite database"),
        (&foreign, "not a Kefu database"),
        (&unmarked, "no completeness marker"),
        (&changed, "table messages holds"),
    ];
    let postgres = TestDatabase::create(&common::pg_url()).await;
    let target_dir = tempfile::tempdir().expect("tempdir");
    let sqlite_target = target_dir.path().join("restored.db");
    let sqlite_url = format!("sqlite://{}", sqlite_target.display());
    for (file, reason) in cases {
        let file_text = file.to_str().expect("utf-8");
        let expected = format!("{file_text} is not a complete Kefu backup: ");
        let (ok, out, err) = run(&["backup", "--verify", file_text]).await;
        assert!(!ok, "--verify accepted {file_text}: {out}");
        assert!(
            err.contains(&expected) && err.contains(reason) && err.trim().lines().count() == 1,
            "--verify {file_text}: {err}"
        );
        for target in [&sqlite_url, &postgres.url] {
            let (ok, out, err) = run(&["restore", file_text, "--database-url", target]).await;
            assert!(!ok, "restore accepted {file_text}: {out}");
            assert!(
                err.contains(&expected) && err.contains(reason) && err.trim().lines().count() == 1,
                "restore {file_text}: {err}"
            );
        }
        assert!(
            files_in(target_dir.path()).is_empty(),
            "no SQLite database was made"
        );
        assert_eq!(
            postgres_tables(&postgres.url).await,
            0,
            "PostgreSQL untouched"
        );
    }
    // The good one passes, and is restored.
    let (ok, out, err) = run(&[
        "restore",
        good.to_str().expect("utf-8"),
        "--database-url",
        &postgres.url,
    ])
    .await;
    assert!(ok && out.contains("restored into"), "{out}{err}");
    postgres.drop_now().await;
}
