//! A map that forgets its dead entries as it grows: the one way the node keeps per-visitor,
//! per-conversation or per-address state in memory without keeping it for ever.
//!
//! An entry's owner says what "dead" means (a bucket refilled, a copy expired, a topic nobody
//! listens to); [`Pruned::prune`] drops such entries once the map reaches a mark, then sets
//! the mark at twice what stayed. Pruning so costs a constant per insert, and the map holds at
//! most about twice its live entries — what a visitor leaves behind is gone within one growth
//! of the map, not kept until a fixed cap far above a small site's traffic.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};

/// A `HashMap` pruned of dead entries whenever it has doubled since the last pruning.
#[derive(Debug)]
pub struct Pruned<K, V> {
    /// The entries, dead or alive.
    entries: HashMap<K, V>,
    /// The smallest mark: below it the map is never pruned (too small to matter).
    from: usize,
    /// The size at which the next pruning happens.
    prune_at: usize,
}

impl<K, V> Pruned<K, V> {
    /// An empty map, first pruned at `from` entries.
    pub fn new(from: usize) -> Self {
        Pruned {
            entries: HashMap::new(),
            from,
            prune_at: from,
        }
    }
}

impl<K: Eq + Hash, V> Pruned<K, V> {
    /// Drops the entries `live` refuses, once the map has reached its mark; call it before an
    /// insert. The memory the dropped entries took is given back down to the next mark.
    pub fn prune(&mut self, mut live: impl FnMut(&V) -> bool) {
        if self.entries.len() < self.prune_at {
            return;
        }
        self.entries.retain(|_, value| live(value));
        self.prune_at = (self.entries.len() * 2).max(self.from);
        self.entries.shrink_to(self.prune_at);
    }
}

impl<K, V> Deref for Pruned<K, V> {
    type Target = HashMap<K, V>;

    fn deref(&self) -> &HashMap<K, V> {
        &self.entries
    }
}

impl<K, V> DerefMut for Pruned<K, V> {
    fn deref_mut(&mut self) -> &mut HashMap<K, V> {
        &mut self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_entries_go_when_the_map_reaches_its_mark_and_the_mark_follows_what_stays() {
        let mut map = Pruned::new(4);
        for key in 0..4 {
            map.prune(|_| false);
            map.insert(key, key);
        }
        assert_eq!(map.len(), 4, "below the mark nothing is pruned");
        map.prune(|value| value % 2 == 1);
        let mut kept: Vec<_> = map.keys().copied().collect();
        kept.sort_unstable();
        assert_eq!(kept, [1, 3], "at the mark the dead go");

        for key in 4..6 {
            map.prune(|_| true);
            map.insert(key, key);
        }
        map.prune(|_| true);
        assert_eq!(map.len(), 4, "all four live: the mark moves to eight");
        for key in 6..10 {
            map.prune(|_| false);
            map.insert(key, key);
        }
        assert_eq!(
            map.len(),
            8,
            "nothing pruned below twice the four that stayed"
        );
        map.prune(|value| *value >= 9);
        assert_eq!(map.len(), 1);

        // A burst of keys (a reconnect storm) that then die: their memory is given back.
        let mut burst = Pruned::new(4);
        for key in 0..10_000 {
            burst.insert(key, key);
        }
        let grown = burst.capacity();
        burst.prune(|value| *value < 10);
        assert_eq!(burst.len(), 10);
        assert!(
            burst.capacity() < grown / 100,
            "{} of {grown}",
            burst.capacity()
        );
    }

    #[test]
    fn a_stream_of_short_lived_keys_keeps_the_map_small() {
        // Visitors who come and go: each key is live for 100 inserts, then dead.
        let mut map = Pruned::new(64);
        let mut largest = 0;
        for now in 0..100_000_u64 {
            map.prune(|born: &u64| now - born < 100);
            map.insert(now, now);
            largest = largest.max(map.len());
        }
        assert!(largest <= 200, "at most twice the live entries: {largest}");
        assert!(map.capacity() <= 512, "capacity {}", map.capacity());
    }
}
