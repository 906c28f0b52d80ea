//! `/readyz` follows the database while `/healthz` does not, on PostgreSQL and MariaDB.
//!
//! The server reaches the real database through a TCP proxy owned by the test
//! ([`common::proxy`]); cutting the link (every open connection reset, new ones refused) is the
//! database going away as far as the server can tell, without stopping a server that other tests
//! share. Restoring it makes the same server ready again.

use crate::common;

use common::proxy::Proxy;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

async fn status(http: &reqwest::Client, url: String) -> StatusCode {
    http.get(url).send().await.expect("request").status()
}

async fn readiness_follows_the_database(admin_url: String, upstream: &str) {
    let database = common::TestDatabase::create(&admin_url).await;
    let proxy = Proxy::start(upstream.parse().expect("upstream")).await;
    let server = common::spawn(&proxy.route(&database.url, upstream)).await;
    let http = reqwest::Client::new();

    assert_eq!(status(&http, server.url("/readyz")).await, StatusCode::OK);
    assert_eq!(status(&http, server.url("/healthz")).await, StatusCode::OK);

    proxy.cut();
    assert_eq!(
        status(&http, server.url("/readyz")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(status(&http, server.url("/healthz")).await, StatusCode::OK);

    // The link comes back: the same server is ready again without a restart.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&http, server.url("/readyz")).await != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "ready again once the database is back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    server.stop().await;
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_readiness() {
    readiness_follows_the_database(common::pg_url(), "127.0.0.1:5432").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_readiness() {
    readiness_follows_the_database(common::mysql_url(), "127.0.0.1:3306").await;
}
