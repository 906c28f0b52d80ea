//! What this node remembers of conversations that never changes — their site and visitor — so
//! a message, a typing or a read mark costs no read to check who may send it and where it goes.
//!
//! Nothing to invalidate: a conversation's site and visitor are set when it starts, and ids are
//! never reused (`AUTOINCREMENT`, identity and `AUTO_INCREMENT` columns), so an entry can only
//! outlive its row. A write into a deleted conversation then reaches the store, which refuses
//! it (`NotFound`); a typing or read mark for it reaches nobody who still shows it. An entry
//! idle for [`IDLE`] is never used: the conversations retention deletes are idle for days, so
//! a client resuming one is read from the store and told it is gone.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use protocol::ConversationId;
use store::ConversationFacts;

use crate::util::Pruned;

/// A conversation nobody wrote in for this long is forgotten: its next use reads it back once.
/// What a closed conversation's visitor leaves here is dropped within one growth of the map,
/// so memory follows the conversations of the last minutes.
const IDLE: Duration = Duration::from_secs(10 * 60);

/// Below this many conversations the map is never pruned (about 64 KiB).
const PRUNE_FROM: usize = 1_024;

/// The remembered facts, by conversation.
pub struct Facts {
    /// Filled by every read of a conversation a session makes, each with when it was last
    /// used.
    known: Mutex<Pruned<ConversationId, (ConversationFacts, Instant)>>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            known: Mutex::new(Pruned::new(PRUNE_FROM)),
        }
    }
}

impl Facts {
    /// What is remembered of conversation `id`.
    pub fn get(&self, id: ConversationId) -> Option<ConversationFacts> {
        self.get_at(id, Instant::now())
    }

    /// Remembers `facts`.
    pub fn learn(&self, facts: ConversationFacts) {
        self.learn_at(facts, Instant::now());
    }

    fn get_at(&self, id: ConversationId, now: Instant) -> Option<ConversationFacts> {
        let mut known = crate::util::lock(&self.known);
        let (facts, used) = known.get_mut(&id)?;
        if now.saturating_duration_since(*used) >= IDLE {
            known.remove(&id);
            return None;
        }
        *used = now;
        Some(*facts)
    }

    fn learn_at(&self, facts: ConversationFacts, now: Instant) {
        let mut known = crate::util::lock(&self.known);
        known.prune(|(_, used)| now.saturating_duration_since(*used) < IDLE);
        known.insert(facts.id, (facts, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{SiteId, VisitorId};

    fn facts(id: i64) -> ConversationFacts {
        ConversationFacts {
            id: ConversationId(id),
            site_id: SiteId(1),
            visitor_id: VisitorId(id * 10),
        }
    }

    #[test]
    fn what_is_learned_is_found_and_idle_conversations_are_forgotten() {
        let known = Facts::default();
        let start = Instant::now();
        assert_eq!(known.get_at(ConversationId(7), start), None);
        known.learn_at(facts(7), start);
        known.learn_at(facts(8), start);
        let soon = start + IDLE / 2;
        assert_eq!(known.get_at(ConversationId(7), soon), Some(facts(7)));
        let later = soon + IDLE / 2 + Duration::from_secs(1);
        assert_eq!(known.get_at(ConversationId(7), later), Some(facts(7)));
        // 8 went idle: not used, though the map is far below its first pruning (a
        // conversation retention deleted is read again, and found gone).
        assert_eq!(known.get_at(ConversationId(8), later), None);
        // Closed conversations come and go; 7 is still written in, 8 is not.
        for id in 100..100 + i64::try_from(PRUNE_FROM).expect("small") {
            known.learn_at(facts(id), later);
        }
        let mut now = later;
        for id in 10_000..20_000 {
            now += Duration::from_millis(100);
            known.learn_at(facts(id), now);
            assert_eq!(known.get_at(ConversationId(7), now), Some(facts(7)));
        }
        assert_eq!(
            known.get_at(ConversationId(150), now),
            None,
            "idle: forgotten"
        );
        let held = crate::util::lock(&known.known).len();
        // 10 minutes at one new conversation per 100 ms is 6,000 live ones.
        assert!(held <= 2 * 6_001, "{held}");
        assert_eq!(
            known.get_at(ConversationId(19_999), now),
            Some(facts(19_999))
        );
    }
}
