//! A fresh, private database for each test, on the backend `TEST_DATABASE_URL` names.
//!
//! Unset: a SQLite file in a new temporary directory. Set to a *server* URL
//! (`postgres://postgres@127.0.0.1:5432/postgres`, `mysql://root@127.0.0.1:3306/test`): each test
//! creates its own uniquely named database there through an admin connection, and drops it when
//! the [`TestDb`] is dropped, so tests run in parallel and leave nothing behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection};
use store::{
    AgentId, AttachmentId, Backend, BanId, CannedReplyId, ConversationId, DatabaseUrl,
    LeaveMessageId, MessageId, SiteId, Store, TeamId, VisitorId,
};

/// An id `by` past an existing one, so that it names no row: the "not found" cases.
pub trait Beyond: Copy {
    /// The id `by` after this one.
    fn beyond(self, by: i64) -> Self;
}

macro_rules! beyond {
    ($($id:ident),*) => {
        $(impl Beyond for $id {
            fn beyond(self, by: i64) -> Self {
                $id(self.0 + by)
            }
        })*
    };
}

beyond!(
    AgentId,
    AttachmentId,
    BanId,
    CannedReplyId,
    ConversationId,
    LeaveMessageId,
    MessageId,
    SiteId,
    TeamId,
    VisitorId
);

/// A store on a database of its own, removed again on drop.
pub struct TestDb {
    /// The store under test (migrations applied).
    pub store: Arc<dyn Store>,
    /// Where it is, for connecting a second store to the same data.
    pub url: DatabaseUrl,
    /// What to remove afterwards.
    cleanup: Cleanup,
}

enum Cleanup {
    /// The temporary directory holding the SQLite file; deleted with it.
    Sqlite {
        /// Held only so the directory outlives the store.
        _dir: tempfile::TempDir,
    },
    /// A database created on a server through `admin_url`.
    Server {
        backend: Backend,
        admin_url: String,
        name: String,
    },
}

/// A database name no other test (or concurrent test run) uses.
fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "kefu_test_{}_{}_{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestDb {
    /// Creates the database and connects a store to it.
    pub async fn new() -> TestDb {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            let dir = tempfile::tempdir().expect("create temp dir");
            let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
            let url = DatabaseUrl::parse(&url).expect("sqlite test URL");
            let store = store::connect(&url).await.expect("connect to sqlite");
            return TestDb {
                store,
                url,
                cleanup: Cleanup::Sqlite { _dir: dir },
            };
        };
        let backend = DatabaseUrl::parse(&admin_url)
            .expect("TEST_DATABASE_URL parses")
            .backend();
        let name = unique_name();
        let create = match backend {
            Backend::Postgres => format!("CREATE DATABASE \"{name}\""),
            Backend::MySql => {
                format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            }
            Backend::Sqlite => {
                panic!("TEST_DATABASE_URL must be a server URL; unset it for SQLite")
            }
        };
        admin_execute(backend, &admin_url, create).await;
        let cleanup = Cleanup::Server {
            backend,
            admin_url: admin_url.clone(),
            name: name.clone(),
        };
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        let url = DatabaseUrl::parse(url.as_str()).expect("test database URL");
        let store = store::connect(&url)
            .await
            .expect("connect to test database");
        TestDb {
            store,
            url,
            cleanup,
        }
    }

    /// Runs `sql` (one or more statements) on the test database behind the store's back: for
    /// putting data into a state the store's own methods never produce.
    pub async fn execute(&self, sql: &str) {
        let raw = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
        match self.url.backend() {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(self.url.expose_secret())
                    .await
                    .expect("connection to sqlite");
                raw.execute(&mut conn).await.expect("statement");
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(self.url.expose_secret())
                    .await
                    .expect("connection to postgres");
                raw.execute(&mut conn).await.expect("statement");
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(self.url.expose_secret())
                    .await
                    .expect("connection to mysql");
                raw.execute(&mut conn).await.expect("statement");
            }
        }
    }
}

/// Runs one administrative statement (CREATE/DROP DATABASE) on its own connection.
async fn admin_execute(backend: Backend, admin_url: &str, sql: String) {
    let sql = sqlx::raw_sql(AssertSqlSafe(sql));
    match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(admin_url)
                .await
                .expect("admin connection to postgres");
            sql.execute(&mut conn).await.expect("admin statement");
            conn.close().await.ok();
        }
        Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(admin_url)
                .await
                .expect("admin connection to mysql");
            sql.execute(&mut conn).await.expect("admin statement");
            conn.close().await.ok();
        }
        Backend::Sqlite => unreachable!("sqlite needs no admin connection"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Cleanup::Server {
            backend,
            admin_url,
            name,
        } = &self.cleanup
        else {
            return;
        };
        let drop_sql = match backend {
            // FORCE ends the store's pooled connections, which are still open at this point.
            Backend::Postgres => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS `{name}`"),
        };
        let (backend, admin_url) = (*backend, admin_url.clone());
        // Drop cannot await, and may run inside the test's runtime: use a runtime of our own on
        // a separate thread. Best effort — a failure here must not hide the test's own result.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(admin_execute(backend, &admin_url, drop_sql));
        })
        .join();
        if dropped.is_err() {
            eprintln!("warning: could not drop test database {name}");
        }
    }
}
