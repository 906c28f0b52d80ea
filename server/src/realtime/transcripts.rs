//! How often visitors may have a transcript mailed: at most once per conversation per hour, and
//! at most `email.transcripts_per_address_per_day` per client address (an IPv6 /64 is one) and
//! `email.transcripts_per_site_per_day` per site. A send is recorded before the mail goes out,
//! under one lock, so fifty requests at once for one conversation send one mail; a send that
//! fails gives its place back.
//!
//! The counts are **per node**, in memory: a cluster of N nodes sends at most N copies of a
//! conversation per hour, and the daily caps are N times larger. Kept here rather than on the
//! conversation row because a row would need a migration on three backends and a write per
//! request for what is only a guard against abuse; a restart forgets the counts. Memory is
//! bounded by what was sent: an entry exists only for a mail that went out within the last day
//! (the per-site caps bound those), and expired entries are pruned as the maps grow.
//!
//! It does not decide *whether* a conversation may be mailed at all (an agent must have written
//! in it); the endpoint does, before asking here.

use protocol::{ConversationId, SiteId};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::mail::TranscriptCaps;
use crate::util::Pruned;

/// One conversation's transcript goes out at most once in this long (an hour).
pub const CONVERSATION_INTERVAL_MS: i64 = 60 * 60 * 1000;
/// The daily caps count over windows this long, each starting with its first send.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// The maps are pruned of expired entries when they grow past this (and then past twice
/// what was left), so pruning costs little per request.
const PRUNE_FROM: usize = 1024;

/// Why a transcript may not go out now, and when it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This conversation's transcript went out within the hour.
    Conversation { retry_after_ms: u32 },
    /// The client address used its daily cap.
    Address { retry_after_ms: u32 },
    /// The site used its daily cap.
    Site { retry_after_ms: u32 },
}

impl Refused {
    /// How long until the refused request could succeed.
    pub fn retry_after_ms(self) -> u32 {
        match self {
            Refused::Conversation { retry_after_ms }
            | Refused::Address { retry_after_ms }
            | Refused::Site { retry_after_ms } => retry_after_ms,
        }
    }

    /// The refusal's English words (for the error frame and logs).
    pub fn message(self) -> &'static str {
        match self {
            Refused::Conversation { .. } => "a transcript of this conversation was sent recently",
            Refused::Address { .. } => "too many transcripts from this address today",
            Refused::Site { .. } => "too many transcripts from this site today",
        }
    }
}

/// The counts behind every transcript this node sent recently. Shared by all requests.
#[derive(Debug, Default)]
pub struct TranscriptGuard {
    /// The configured caps.
    caps: TranscriptCaps,
    /// Never held across an await.
    counts: Mutex<Counts>,
}

#[derive(Debug)]
struct Counts {
    /// When each conversation's transcript last went out (or is going out).
    conversations: Pruned<ConversationId, i64>,
    /// Sends per client address (its `group()`) in its current day.
    addresses: Pruned<IpAddr, Window>,
    /// Sends per site in its current day.
    sites: Pruned<SiteId, Window>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            conversations: Pruned::new(PRUNE_FROM),
            addresses: Pruned::new(PRUNE_FROM),
            sites: Pruned::new(PRUNE_FROM),
        }
    }
}

/// A day's count: when it started and how many sends it holds.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// The first send of the window.
    started: i64,
    /// Sends counted in it.
    used: u32,
}

/// The day's window of `key` at `now`: its current count, or a fresh one.
fn current<K: Eq + Hash>(windows: &Pruned<K, Window>, key: &K, now: i64) -> Window {
    windows
        .get(key)
        .copied()
        .filter(|w| now - w.started < DAY_MS)
        .unwrap_or(Window {
            started: now,
            used: 0,
        })
}

/// What one send took: given back when it is dropped without [`Reservation::sent`] (the mail
/// failed, or the request went away before it went out).
pub struct Reservation<'a> {
    /// Where to give it back.
    guard: &'a TranscriptGuard,
    /// The conversation, the address and the site it counted against.
    keys: (ConversationId, IpAddr, SiteId),
    /// When it was taken (the conversation's entry is removed only if still this one).
    at: i64,
    /// Set once the mail went out: nothing to give back.
    kept: bool,
}

impl Reservation<'_> {
    /// The mail went out: the send stays counted.
    pub fn sent(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let (conversation, address, site) = self.keys;
        let mut counts = self.guard.lock();
        let counts = &mut *counts;
        if counts.conversations.get(&conversation) == Some(&self.at) {
            counts.conversations.remove(&conversation);
        }
        for window in [
            counts.addresses.get_mut(&address),
            counts.sites.get_mut(&site),
        ]
        .into_iter()
        .flatten()
        {
            if window.started <= self.at {
                window.used = window.used.saturating_sub(1);
            }
        }
    }
}

impl TranscriptGuard {
    /// A guard with `caps`.
    pub fn new(caps: TranscriptCaps) -> TranscriptGuard {
        TranscriptGuard {
            caps,
            counts: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        crate::util::lock(&self.counts)
    }

    /// Counts a transcript of `conversation` asked for from `address` (already grouped) on
    /// `site` at `now`, or says why it may not go out. Checks and counts under one lock.
    pub fn reserve(
        &self,
        conversation: ConversationId,
        address: IpAddr,
        site: SiteId,
        now: i64,
    ) -> Result<Reservation<'_>, Refused> {
        let wait = |until: i64| u32::try_from((until - now).max(1)).unwrap_or(u32::MAX);
        let mut counts = self.lock();
        let counts = &mut *counts;
        counts
            .conversations
            .prune(|sent| now - sent < CONVERSATION_INTERVAL_MS);
        counts.addresses.prune(|w| now - w.started < DAY_MS);
        counts.sites.prune(|w| now - w.started < DAY_MS);
        if let Some(sent) = counts.conversations.get(&conversation)
            && now - sent < CONVERSATION_INTERVAL_MS
        {
            return Err(Refused::Conversation {
                retry_after_ms: wait(sent + CONVERSATION_INTERVAL_MS),
            });
        }
        let by_address = current(&counts.addresses, &address, now);
        if by_address.used >= self.caps.per_address_per_day {
            return Err(Refused::Address {
                retry_after_ms: wait(by_address.started + DAY_MS),
            });
        }
        let by_site = current(&counts.sites, &site, now);
        if by_site.used >= self.caps.per_site_per_day {
            return Err(Refused::Site {
                retry_after_ms: wait(by_site.started + DAY_MS),
            });
        }
        counts.conversations.insert(conversation, now);
        let count = |w: Window| Window {
            used: w.used + 1,
            ..w
        };
        counts.addresses.insert(address, count(by_address));
        counts.sites.insert(site, count(by_site));
        Ok(Reservation {
            guard: self,
            keys: (conversation, address, site),
            at: now,
            kept: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = CONVERSATION_INTERVAL_MS;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    /// [`TranscriptGuard::reserve`] for conversation and site numbers.
    fn reserve(
        guard: &TranscriptGuard,
        conversation: i64,
        address: IpAddr,
        site: i64,
        now: i64,
    ) -> Result<Reservation<'_>, Refused> {
        guard.reserve(ConversationId(conversation), address, SiteId(site), now)
    }

    fn guard(per_address: u32, per_site: u32) -> TranscriptGuard {
        TranscriptGuard::new(TranscriptCaps {
            per_address_per_day: per_address,
            per_site_per_day: per_site,
        })
    }

    #[test]
    fn one_transcript_per_conversation_per_hour() {
        let guard = guard(100, 100);
        let a = ip("203.0.113.1");
        reserve(&guard, 1, a, 9, 0).expect("first").sent();
        assert_eq!(
            reserve(&guard, 1, a, 9, HOUR - 1000).err(),
            Some(Refused::Conversation {
                retry_after_ms: 1000
            })
        );
        reserve(&guard, 2, a, 9, 10)
            .expect("another conversation")
            .sent();
        reserve(&guard, 1, a, 9, HOUR)
            .expect("an hour later")
            .sent();
    }

    #[test]
    fn a_failed_send_gives_its_place_back() {
        let guard = guard(1, 1);
        let a = ip("203.0.113.1");
        drop(reserve(&guard, 1, a, 9, 0).expect("first"));
        reserve(&guard, 1, a, 9, 5).expect("again, at once").sent();
        assert!(matches!(
            reserve(&guard, 2, a, 9, 6),
            Err(Refused::Address { .. })
        ));
    }

    #[test]
    fn daily_caps_per_address_and_per_site() {
        let guard = guard(2, 3);
        let (a, b) = (ip("203.0.113.1"), ip("203.0.113.2"));
        reserve(&guard, 1, a, 9, 0).expect("1").sent();
        reserve(&guard, 2, a, 9, 1).expect("2").sent();
        assert_eq!(
            reserve(&guard, 3, a, 9, 2).err(),
            Some(Refused::Address {
                retry_after_ms: (DAY_MS - 2) as u32
            })
        );
        reserve(&guard, 3, b, 9, 3)
            .expect("3, another address")
            .sent();
        assert!(matches!(
            reserve(&guard, 4, b, 9, 4),
            Err(Refused::Site { .. })
        ));
        reserve(&guard, 4, b, 8, 5).expect("another site").sent();
        reserve(&guard, 5, a, 9, DAY_MS)
            .expect("the next day")
            .sent();
    }

    #[test]
    fn expired_entries_are_pruned() {
        let guard = guard(1, u32::MAX);
        for n in 0..PRUNE_FROM as i64 {
            let address = IpAddr::from(std::net::Ipv4Addr::from(n as u32));
            reserve(&guard, n, address, 9, 0).expect("sent").sent();
        }
        reserve(&guard, -1, ip("203.0.113.1"), 9, DAY_MS)
            .expect("a day later")
            .sent();
        let counts = guard.lock();
        assert_eq!(counts.addresses.len(), 1);
        assert_eq!(counts.conversations.len(), 1);
    }
}
