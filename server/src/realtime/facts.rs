//! What this node remembers of conversations that never changes — their site and visitor — so
//! a message, a typing or a read mark costs no read to check who may send it and where it goes.
//!
//! Nothing to invalidate: a conversation's site and visitor are set when it starts, and ids are
//! never reused (`AUTOINCREMENT`, identity and `AUTO_INCREMENT` columns), so an entry can only
//! outlive its row. A write into a deleted conversation then reaches the store, which refuses
//! it (`NotFound`); a typing or read mark for it reaches nobody who still shows it.

use std::collections::HashMap;
use std::sync::Mutex;

use protocol::ConversationId;
use store::ConversationFacts;

/// Most conversations remembered at once (about 3 MiB); past it the map starts again, and
/// the busy conversations are read back on their next message.
const MOST: usize = 100_000;

/// The remembered facts, by conversation.
#[derive(Default)]
pub struct Facts {
    /// Filled by every read of a conversation a session makes.
    known: Mutex<HashMap<ConversationId, ConversationFacts>>,
}

impl Facts {
    /// What is remembered of conversation `id`.
    pub fn get(&self, id: ConversationId) -> Option<ConversationFacts> {
        crate::util::lock(&self.known).get(&id).copied()
    }

    /// Remembers `facts`.
    pub fn learn(&self, facts: ConversationFacts) {
        let mut known = crate::util::lock(&self.known);
        if known.len() >= MOST && !known.contains_key(&facts.id) {
            known.clear();
        }
        known.insert(facts.id, facts);
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
    fn what_is_learned_is_found_and_the_map_stays_bounded() {
        let known = Facts::default();
        assert_eq!(known.get(ConversationId(7)), None);
        known.learn(facts(7));
        assert_eq!(known.get(ConversationId(7)), Some(facts(7)));
        for id in 0..i64::try_from(MOST).expect("small") + 10 {
            known.learn(facts(id));
        }
        assert!(crate::util::lock(&known.known).len() <= MOST);
        assert_eq!(
            known.get(ConversationId(i64::try_from(MOST).expect("small") + 9)),
            Some(facts(i64::try_from(MOST).expect("small") + 9))
        );
    }
}
