//! `kefu-bench echo`: the floor. A minimal tokio-tungstenite server that sends every text or
//! binary message straight back, with the same listen backlog and WebSocket buffer sizes as
//! kefu, so the difference to kefu is what kefu does, not what sockets cost on this machine.

use crate::Result;
use crate::children::{exit_when_stdin_closes, reply};
use futures_util::{SinkExt, StreamExt};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::TcpStream;

/// Failed accepts (file descriptors run out in a storm), reported once at exit.
static ACCEPT_ERRORS: AtomicU64 = AtomicU64::new(0);

/// The first failed accept's reason.
static FIRST_ACCEPT_ERROR: OnceLock<String> = OnceLock::new();

fn report_accept_errors() {
    let errors = ACCEPT_ERRORS.load(Ordering::Relaxed);
    if errors > 0 {
        eprintln!(
            "  echo server: {errors} failed accepts ({}); it retries after 10 ms",
            FIRST_ACCEPT_ERROR.get().map_or("?", String::as_str)
        );
    }
}

/// Runs the echo server until stdin closes; its first stdout line is the address.
pub fn main() -> Result<()> {
    exit_when_stdin_closes(report_accept_errors);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = server::bind("127.0.0.1:0".parse()?)?;
        reply(&listener.local_addr()?)?;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(echo(stream));
                }
                Err(error) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    ACCEPT_ERRORS.fetch_add(1, Ordering::Relaxed);
                    let _ = FIRST_ACCEPT_ERROR.set(error.to_string());
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    })
}

async fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) =
        tokio_tungstenite::accept_async_with_config(stream, Some(crate::client::ws_config())).await
    else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if message.is_close() {
            break;
        }
        let data = message.is_text() || message.is_binary();
        if data && ws.send(message).await.is_err() {
            break;
        }
    }
}
