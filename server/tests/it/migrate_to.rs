//! `kefu db migrate-to`, run as an administrator would: a SQLite install holding 100,000
//! messages (with an agent, a file, a translation, settings) moves to PostgreSQL and to
//! MariaDB. Every row arrives (the command compares counts and checksums, and the test checks
//! the data through the store); the MariaDB move is killed half-way and run again, and
//! completes; afterwards Kefu serves from the new database, the agent signs in, search works.
//! `kefu backup` and `kefu restore` go through the same copy: a SQLite backup restored into
//! PostgreSQL, and PostgreSQL exported to a SQLite file again.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::kefu;
use sqlx::Connection;
use store::DatabaseUrl;

const CONVERSATIONS: i64 = 1_000;
const PER_CONVERSATION: i64 = 100;

/// A SQLite install: an agent, a site, a visitor with `CONVERSATIONS` conversations of
/// `PER_CONVERSATION` messages, a picture, a translation and the token secret.
async fn install(url: &DatabaseUrl) {
    let store = store::connect(url).await.expect("sqlite");
    let site = common::shop_with_admin(store.as_ref()).await;
    let mut conn = sqlx::SqliteConnection::connect(url.expose_secret())
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO visitors (site_id, visitor_key, name, created_at, last_seen_at, attributes) \
           VALUES ({site}, 'v1', NULL, 1, 1, '{{}}');
         INSERT INTO conversations (site_id, visitor_id, status, last_seq, created_at, updated_at, translating)
           WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {CONVERSATIONS})
           SELECT {site}, 1, 'open', {PER_CONVERSATION}, i, i, i % 2 FROM n;
         INSERT INTO messages (conversation_id, seq, client_id, author, agent_id, body, created_at)
           WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {total} - 1)
           SELECT i / {PER_CONVERSATION} + 1, i % {PER_CONVERSATION} + 1, 'c' || i, 'visitor', NULL,
                  '订单 ' || i || ' refund please', i FROM n;
         INSERT INTO attachments (public_id, site_id, visitor_id, name, content_type, size, data, created_at)
           VALUES ('pic', {site}, 1, 'a.png', 'image/png', 4, X'89504E47', 5);
         INSERT INTO message_translations (message_id, source_language, target_language, text, state, attempts, updated_at)
           VALUES (1, 'zh', 'en', 'order 0 refund please', 'done', 1, 7);",
        site = site.id,
        total = CONVERSATIONS * PER_CONVERSATION,
    )))
    .execute(&mut conn)
    .await
    .expect("rows");
}

/// Checks what arrived in `url`, then that Kefu serves from it.
async fn check_arrived(url: &DatabaseUrl) {
    let store = store::connect(url).await.expect("target");
    let messages = &store::copy::TABLES
        .iter()
        .find(|t| t.name == "messages")
        .expect("messages");
    assert_eq!(
        store.copy_count(messages).await.expect("count"),
        CONVERSATIONS * PER_CONVERSATION
    );
    let last = store
        .conversation(store::ConversationId(CONVERSATIONS))
        .await
        .expect("load")
        .expect("the last conversation");
    assert_eq!(last.last_seq, PER_CONVERSATION);
    assert!(!last.translating, "booleans arrive as booleans");
    let transcript = store
        .messages_after(store::ConversationId(CONVERSATIONS), 0, 500)
        .await
        .expect("messages");
    let seqs: Vec<i64> = transcript.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=PER_CONVERSATION).collect::<Vec<_>>(), "in order");
    assert_eq!(transcript[0].body, "订单 99900 refund please");
    let file = store
        .attachment_data("pic")
        .await
        .expect("file")
        .expect("the picture");
    assert_eq!(file, vec![0x89, 0x50, 0x4E, 0x47]);
    // The search index was built on the new database.
    let filter = store::HistoryFilter {
        sites: vec![last.site_id],
        ..Default::default()
    };
    let query = store::search::Query::parse("订单 99999").expect("query");
    let found = store
        .search_messages(&filter, &query, None, 10)
        .await
        .expect("search");
    assert_eq!(found.len(), 1, "{found:?}");
    drop(store);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut server = kefu()
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--database-url", url.expose_secret()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let client = reqwest::Client::new();
    let mut signed_in = false;
    for _ in 0..100 {
        let login = client
            .post(format!("http://127.0.0.1:{port}/api/login"))
            .header("origin", format!("http://127.0.0.1:{port}"))
            .header("accept", "application/json")
            .form(&[
                ("email", "mei@shop.example"),
                ("password", "mei-password"),
                ("mode", "auto"),
            ])
            .send()
            .await;
        if let Ok(login) = login {
            signed_in = login.status().is_success();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(signed_in, "the agent signs in to Kefu on the new database");
}

/// `kefu db migrate-to target` from `source`; returns its output when it succeeded.
fn migrate(source: &DatabaseUrl, target: &str) -> String {
    let out = kefu()
        .args(["db", "migrate-to", target])
        .args(["--database-url", source.expose_secret()])
        .output()
        .expect("migrate-to");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_install_moves_to_postgres_and_to_mariadb_even_when_interrupted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source =
        DatabaseUrl::parse(&format!("sqlite://{}/kefu.db", dir.path().display())).expect("url");
    install(&source).await;

    let postgres = common::TestDatabase::create(&common::pg_url()).await;
    let printed = migrate(&source, &postgres.url);
    assert!(
        printed.contains(&format!(
            "messages {:>9} rows",
            CONVERSATIONS * PER_CONVERSATION
        )),
        "{printed}"
    );
    assert!(printed.contains("every table arrived"), "{printed}");
    check_arrived(&DatabaseUrl::parse(&postgres.url).expect("url")).await;
    // Moving into it again is refused: it holds an install now.
    let again = kefu()
        .args(["db", "migrate-to", &postgres.url])
        .args(["--database-url", source.expose_secret()])
        .output()
        .expect("migrate-to");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a Kefu install"));

    // Into MariaDB, killed once the messages are on their way, then run again.
    let mariadb = common::TestDatabase::create(&common::mysql_url()).await;
    let mut first = kefu()
        .args(["db", "migrate-to", &mariadb.url])
        .args(["--database-url", source.expose_secret()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("migrate-to");
    let target = DatabaseUrl::parse(&mariadb.url).expect("url");
    let mut interrupted = false;
    for _ in 0..600 {
        if let Ok(mut conn) = sqlx::MySqlConnection::connect(target.expose_secret()).await {
            let progress: Option<String> = sqlx::query_scalar(
                "SELECT value FROM settings WHERE `key` = 'migrate_to.messages'",
            )
            .fetch_optional(&mut conn)
            .await
            .unwrap_or(None);
            if progress.is_some() {
                first.kill().expect("kill -9");
                interrupted = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = first.wait();
    assert!(interrupted, "the first run was stopped half-way");
    let mut conn = sqlx::MySqlConnection::connect(target.expose_secret())
        .await
        .expect("connect");
    let halfway: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert!(
        halfway < CONVERSATIONS * PER_CONVERSATION,
        "stopped before the end: {halfway}"
    );
    let printed = migrate(&source, &mariadb.url);
    assert!(printed.contains("every table arrived"), "{printed}");
    check_arrived(&target).await;
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM settings WHERE `key` LIKE 'migrate!_to.%' ESCAPE '!'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("count");
    assert_eq!(left, 0, "the progress is forgotten once done");

    postgres.drop_now().await;
    mariadb.drop_now().await;
}

/// The number of messages in the database at `url`.
async fn messages_in(url: &DatabaseUrl) -> i64 {
    let store = store::connect(url).await.expect("connect");
    let messages = store::copy::TABLES
        .iter()
        .find(|t| t.name == "messages")
        .expect("messages");
    store.copy_count(messages).await.expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_is_restored_into_postgres_and_postgres_is_backed_up_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source =
        DatabaseUrl::parse(&format!("sqlite://{}/kefu.db", dir.path().display())).expect("url");
    install(&source).await;
    let run = |args: &[&str]| {
        let out = kefu().args(args).output().expect("kefu");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let snapshot = dir.path().join("snapshot.db");
    let snapshot_text = snapshot.to_str().expect("utf-8");
    let (ok, said) = run(&[
        "backup",
        snapshot_text,
        "--database-url",
        source.expose_secret(),
    ]);
    assert!(ok && said.contains("backup written"), "{said}");
    let (ok, said) = run(&[
        "backup",
        snapshot_text,
        "--database-url",
        source.expose_secret(),
    ]);
    assert!(!ok && said.contains("never overwrites"), "{said}");

    let postgres = common::TestDatabase::create(&common::pg_url()).await;
    let (ok, said) = run(&["restore", snapshot_text, "--database-url", &postgres.url]);
    assert!(ok && said.contains("restored into"), "{said}");
    let restored = DatabaseUrl::parse(&postgres.url).expect("url");
    assert_eq!(
        messages_in(&restored).await,
        CONVERSATIONS * PER_CONVERSATION
    );

    let export = dir.path().join("export.db");
    let export_text = export.to_str().expect("utf-8");
    let (ok, said) = run(&["backup", export_text, "--database-url", &postgres.url]);
    assert!(ok && said.contains("backup written"), "{said}");
    let exported = DatabaseUrl::parse(&format!("sqlite://{export_text}")).expect("url");
    assert_eq!(
        messages_in(&exported).await,
        CONVERSATIONS * PER_CONVERSATION
    );
    postgres.drop_now().await;
}
