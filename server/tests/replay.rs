//! Bounded replay over real sockets: a visitor with a long conversation who names its cursor a
//! thousand times gets the conversation once, in bursts no larger than the documented cap, and
//! the server's memory hardly moves (`docs/protocol.md`, section 3).
//!
//! One test function on purpose: the server runs in this process, and the RSS it measures must
//! not include another test's.

mod common;

use common::client::{Ws, message_of, visitor_hello, welcome_of};
use protocol::ServerFrame;
use protocol::transport::{MAX_REPLAY_BYTES, VISITOR_TOKEN_HEADER};
use std::collections::BTreeSet;

const ORIGIN: &str = "https://shop.example";
const MESSAGES: i64 = 50;
const BODY_BYTES: usize = 8_000;

/// A line of `/proc/self/status` in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field")
}

/// Starts measuring the peak RSS afresh (Linux: writing 5 to `clear_refs` resets `VmHWM`).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}

/// The JSON bytes of the replayed messages in a burst, as the server counts them (a comma
/// after each).
fn replayed_bytes(frames: &[ServerFrame]) -> usize {
    frames
        .iter()
        .filter(|frame| matches!(frame, ServerFrame::Message(_)))
        .map(|frame| serde_json::to_string(frame).expect("json").len() + 1)
        .sum()
}

/// Records the messages of a burst; panics on a message received twice.
fn record(delivered: &mut BTreeSet<i64>, frames: &[ServerFrame]) {
    for (_, seq, body) in frames.iter().filter_map(message_of) {
        assert_eq!(body.len(), BODY_BYTES);
        assert!(delivered.insert(seq), "seq {seq} delivered twice");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_bounded_a_thousand_copies_of_a_cursor_replay_the_conversation_once() {
    let server = common::spawn_sqlite().await;
    common::site(server.store.as_ref(), "shop", &[ORIGIN]).await;
    let (http, _) = common::http_visitor(&server, "shop", ORIGIN).await;
    let token = http.token.clone().expect("token");
    let body = "字".repeat(BODY_BYTES / 3) + &"x".repeat(BODY_BYTES % 3);
    let (status, frames) = http
        .send(serde_json::json!([common::client::send_frame(
            None, "first", &body
        )]))
        .await;
    assert_eq!(status, 200, "{frames:?}");
    let conversation = frames
        .iter()
        .find_map(common::client::ack_of)
        .expect("ack")
        .1;
    for n in 2..=MESSAGES {
        server
            .store
            .append_message(
                conversation,
                store::NewMessage {
                    client_id: protocol::ClientId(format!("m{n}")),
                    author: protocol::Author::Visitor,
                    agent_id: None,
                    body: body.clone(),
                    attachment: None,
                    created_at: server::now_ms(),
                },
            )
            .await
            .expect("message");
    }
    let rss_before = status_kib("VmRSS:");
    reset_peak();

    // HTTP: one poll names the cursor a thousand times; each response stays under the cap and
    // the client continues from its advanced cursor.
    let client = reqwest::Client::new();
    let mut delivered = BTreeSet::new();
    let mut polls = 0;
    let mut largest = 0;
    while (delivered.len() as i64) < MESSAGES {
        let cursor = delivered.last().copied().unwrap_or(0);
        let cursors = vec![format!("{conversation}:{cursor}"); 1000].join(",");
        let response = client
            .get(server.url(&format!("/http/visitor/events?cursors={cursors}&wait=0")))
            .header(VISITOR_TOKEN_HEADER, &token)
            .header("origin", ORIGIN)
            .send()
            .await
            .expect("poll");
        assert_eq!(response.status(), 200);
        let bytes = response.bytes().await.expect("body");
        assert!(
            bytes.len() <= MAX_REPLAY_BYTES,
            "a response of {} bytes",
            bytes.len()
        );
        largest = largest.max(bytes.len());
        let frames: Vec<ServerFrame> = serde_json::from_slice(&bytes).expect("frames");
        let before = delivered.len();
        record(&mut delivered, &frames);
        assert!(delivered.len() > before, "a poll that brought nothing");
        let cut = frames.last() == Some(&ServerFrame::ReplayCut);
        assert_eq!(
            cut,
            (delivered.len() as i64) < MESSAGES,
            "{:?}",
            frames.last()
        );
        polls += 1;
        assert!(polls <= 10, "too many polls");
    }
    assert_eq!(
        delivered,
        (1..=MESSAGES).collect::<BTreeSet<_>>(),
        "every message exactly once"
    );
    assert!(polls >= 2, "400 KB must not fit one response");
    println!(
        "HTTP: {MESSAGES} messages of 8 KB in {polls} responses, the largest {largest} bytes (cap {MAX_REPLAY_BYTES})"
    );

    // WebSocket: a hello with the cursor a thousand times; the server sends burst after burst
    // by itself, each under the cap and ending in `replay_cut` while there is more.
    let mut ws = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    let cursors = vec![(conversation, 0); 1000];
    ws.send_json(visitor_hello("shop", Some(&token), &cursors))
        .await;
    let welcome = ws.next().await;
    assert!(welcome_of(&welcome).is_some(), "{welcome:?}");
    let mut delivered = BTreeSet::new();
    let mut bursts = Vec::new();
    let mut burst = Vec::new();
    while (delivered.len() as i64) < MESSAGES {
        let frame = ws.next().await;
        match frame {
            ServerFrame::ReplayCut => {
                bursts.push(replayed_bytes(&burst));
                record(&mut delivered, &burst);
                burst.clear();
            }
            ServerFrame::Message(_) => {
                burst.push(frame);
                if burst.len() as i64 + delivered.len() as i64 == MESSAGES {
                    bursts.push(replayed_bytes(&burst));
                    record(&mut delivered, &burst);
                    burst.clear();
                }
            }
            _ => {}
        }
    }
    assert_eq!(delivered, (1..=MESSAGES).collect::<BTreeSet<_>>());
    assert!(bursts.len() >= 2, "{bursts:?}");
    assert!(
        bursts.iter().all(|bytes| *bytes <= MAX_REPLAY_BYTES),
        "{bursts:?}"
    );
    // Nothing more: no message is sent twice.
    if let Some(frame) = ws.try_next(std::time::Duration::from_millis(300)).await {
        assert!(
            message_of(&frame).is_none(),
            "a message after the replay: {frame:?}"
        );
    }
    println!("WebSocket: {MESSAGES} messages in bursts of {bursts:?} bytes");

    let peak = status_kib("VmHWM:");
    let grown_mib = peak.saturating_sub(rss_before) as f64 / 1024.0;
    println!(
        "RSS before {:.1} MiB, peak while replaying {:.1} MiB: grew {grown_mib:.1} MiB",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    assert!(
        grown_mib < 20.0,
        "the replays grew the process by {grown_mib:.1} MiB"
    );
    server.stop().await;
}
