//! The bound on one replay burst: how many messages and bytes a poll's response, or what a
//! WebSocket is sent in one go, may replay from the store.
//!
//! Without it one cheap request (a fresh cursor on a long conversation, or the same cursor a
//! thousand times) makes the server read and hold the whole conversation at once. A session
//! spends a [`ReplayBudget`] while it replays; when the next message does not fit, the burst
//! ends with `replay_cut` and the rest follows in the next burst (`docs/protocol.md`, section 3).

use protocol::ServerFrame;
use protocol::transport::{MAX_REPLAY_BYTES, MAX_REPLAY_MESSAGES};

/// Bytes held back for what surrounds the replayed frames in a poll's response: the array's
/// brackets and the `replay_cut` frame itself.
const FRAMING: usize = 64;

/// What is left of one burst.
#[derive(Debug)]
pub struct ReplayBudget {
    /// Messages and events that may still be replayed.
    items: usize,
    /// JSON bytes that may still be replayed.
    bytes: usize,
    /// Nothing taken yet: the first item always fits, so no single message is too large to
    /// ever be replayed.
    fresh: bool,
    /// The burst was cut; `replay_cut` is sent once per burst.
    cut: bool,
}

impl ReplayBudget {
    /// A whole burst's worth.
    pub fn full() -> ReplayBudget {
        ReplayBudget {
            items: MAX_REPLAY_MESSAGES,
            bytes: MAX_REPLAY_BYTES - FRAMING,
            fresh: true,
            cut: false,
        }
    }

    /// Whether this burst was already cut (nothing more is replayed in it).
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// How many more items the burst can take at most (fewer when bytes run out first).
    pub fn room(&self) -> u32 {
        u32::try_from(self.items).unwrap_or(u32::MAX)
    }

    /// Makes room for one replayed item (a message with its translations, or an event). When
    /// it does not fit, the burst is cut and the answer is `Err` with the `replay_cut` frame
    /// the first time, `Err(None)` after.
    pub fn take(&mut self, frames: &[ServerFrame]) -> Result<(), Option<ServerFrame>> {
        if self.cut {
            return Err(None);
        }
        // Each frame is followed by a comma in a poll's array.
        let size: usize = frames.iter().map(|frame| json_len(frame) + 1).sum();
        if self.fresh || (self.items > 0 && size <= self.bytes) {
            self.fresh = false;
            self.items = self.items.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(size);
            return Ok(());
        }
        self.cut = true;
        Err(Some(ServerFrame::ReplayCut))
    }
}

/// The length of a frame's JSON, counted without building the text.
fn json_len(frame: &ServerFrame) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serialising a frame to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, frame);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(nonce: u32) -> ServerFrame {
        ServerFrame::Pong(protocol::Pong { nonce })
    }

    #[test]
    fn counts_the_bytes_serde_writes() {
        let frame = ping(12345);
        let text = serde_json::to_string(&frame).expect("json");
        assert_eq!(json_len(&frame), text.len());
    }

    #[test]
    fn cuts_at_the_item_limit_once() {
        let mut budget = ReplayBudget::full();
        for _ in 0..MAX_REPLAY_MESSAGES {
            assert!(budget.take(&[ping(1)]).is_ok());
        }
        assert_eq!(budget.take(&[ping(1)]), Err(Some(ServerFrame::ReplayCut)));
        assert_eq!(budget.take(&[ping(1)]), Err(None));
        assert!(budget.is_cut());
    }

    #[test]
    fn cuts_before_the_bytes_run_out_but_always_takes_one() {
        let big = ServerFrame::Error {
            code: protocol::ErrorCode::BadRequest,
            message: "x".repeat(MAX_REPLAY_BYTES),
            client_id: None,
            conversation_id: None,
            retry_after_ms: None,
        };
        let mut budget = ReplayBudget::full();
        assert!(
            budget.take(std::slice::from_ref(&big)).is_ok(),
            "the first always fits"
        );
        assert!(budget.take(&[ping(1)]).is_err());

        let half = ServerFrame::Error {
            code: protocol::ErrorCode::BadRequest,
            message: "x".repeat(MAX_REPLAY_BYTES / 2),
            client_id: None,
            conversation_id: None,
            retry_after_ms: None,
        };
        let mut budget = ReplayBudget::full();
        assert!(budget.take(std::slice::from_ref(&half)).is_ok());
        assert!(budget.take(std::slice::from_ref(&half)).is_err());
    }
}
