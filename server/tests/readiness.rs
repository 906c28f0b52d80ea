//! `/readyz` follows the database while `/healthz` does not, on PostgreSQL and MariaDB.
//!
//! The server reaches the real database through a TCP proxy owned by the test; stopping the proxy
//! (listener and every open connection) is the database going away as far as the server can tell,
//! without stopping a server that other tests share.

mod common;

use reqwest::StatusCode;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Forwards every connection to `upstream` until stopped.
struct Proxy {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let task = tokio::spawn(async move {
            // Dropping the JoinSet (when this task is aborted) aborts every forwarding task.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { addr, task }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn status(http: &reqwest::Client, url: String) -> StatusCode {
    http.get(url).send().await.expect("request").status()
}

async fn readiness_follows_the_database(admin_url: String, upstream: &str) {
    let database = common::TestDatabase::create(&admin_url).await;
    let proxy = Proxy::start(upstream.parse().expect("upstream")).await;
    let proxied = database.url.replacen(upstream, &proxy.addr.to_string(), 1);
    assert_ne!(proxied, database.url, "URL goes through the proxy");
    let server = common::spawn(&proxied).await;
    let http = reqwest::Client::new();

    assert_eq!(status(&http, server.url("/readyz")).await, StatusCode::OK);
    assert_eq!(status(&http, server.url("/healthz")).await, StatusCode::OK);

    proxy.stop().await;
    assert_eq!(
        status(&http, server.url("/readyz")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(status(&http, server.url("/healthz")).await, StatusCode::OK);

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
