//! Presence that outlives its connection: one queue of who is released when, swept by one
//! task per hub, instead of a sleeping task per closed connection.
//!
//! A closed WebSocket's visitor stays online for a page navigation's grace, a finished long
//! poll's for the idle timeout (`Registration::linger`). A reconnect storm closes thousands of
//! connections at once; each used to spawn its own sleeping task. Here each is one entry in a
//! map ordered by release time, and the hub's sweeper (`Hub::sweep_lingering`) sleeps until the
//! first one is due.

use std::collections::BTreeMap;
use std::time::Instant;

/// Presences (`T`: whose, `hub::Who`) waiting for their release time.
pub(crate) struct Lingering<T> {
    /// Keyed by release time, then by arrival so equal times keep apart.
    due: BTreeMap<(Instant, u64), T>,
    /// The next arrival number.
    arrivals: u64,
}

impl<T> Default for Lingering<T> {
    fn default() -> Self {
        Lingering {
            due: BTreeMap::new(),
            arrivals: 0,
        }
    }
}

impl<T> Lingering<T> {
    /// Keeps `who` until `at`; true when it is now the first due (the sweeper must wake).
    pub(crate) fn keep(&mut self, who: T, at: Instant) -> bool {
        self.arrivals += 1;
        self.due.insert((at, self.arrivals), who);
        self.due
            .first_key_value()
            .is_some_and(|(&(first, arrival), _)| first == at && arrival == self.arrivals)
    }

    /// Takes out everyone due at `now`, in order.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<T> {
        let later = self.due.split_off(&(now, u64::MAX));
        let due = std::mem::replace(&mut self.due, later);
        due.into_values().collect()
    }

    /// When the next presence is due, if any is waiting.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.due.first_key_value().map(|(&(at, _), _)| at)
    }

    /// How many are waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.due.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn presences_are_released_in_time_order_and_only_when_due() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut lingering = Lingering::default();
        assert!(lingering.keep(1, at(3000)), "the first is first");
        assert!(!lingering.keep(2, at(5000)), "a later one is not");
        assert!(lingering.keep(3, at(1000)), "an earlier one is");
        assert!(!lingering.keep(4, at(1000)), "the same time, after it");
        assert!(!lingering.keep(5, at(3000)));
        assert_eq!(lingering.next(), Some(at(1000)));

        assert!(lingering.take_due(at(999)).is_empty());
        assert_eq!(lingering.take_due(at(3000)), vec![3, 4, 1, 5]);
        assert_eq!(lingering.next(), Some(at(5000)));
        assert_eq!(lingering.len(), 1);
        assert_eq!(lingering.take_due(at(9000)), vec![2]);
        assert_eq!(lingering.next(), None);
    }
}
