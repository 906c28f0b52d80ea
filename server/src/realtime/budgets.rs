//! Per-address and per-site budgets for what anonymous visitors can make.
//!
//! A site key is public and a visitor costs nothing, so a script could otherwise mint visitors,
//! conversations, leave-messages and uploads without end and flood every inbox. Each kind of
//! [`Spend`] has an hourly budget per client address (an IPv6 /64 counts as one, see
//! `ClientIp::group`), and new conversations and leave-messages also have one per site. Past a
//! budget the request is refused with `rate_limited` and the wait (`Retry-After`).
//!
//! The counting is `governor`'s keyed GCRA limiter: one small state per address that is busy,
//! none for an idle one. Keys idle long enough to be full again are dropped at most once a
//! minute, on the next spend, so memory follows the recent traffic, not every address ever
//! seen. Budgets are per node (`docs/scaling.md`).

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use protocol::SiteId;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

/// What a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spend {
    /// A visitor `hello` (each one reads the site, bans and the visitor's conversations).
    Hello,
    /// A `resume` (each one may replay a burst).
    Resume,
    /// A new visitor (a `hello` without a token stores one).
    Visitor,
    /// A new conversation (a visitor's first message).
    Conversation,
    /// A leave-message.
    LeaveMessage,
    /// An uploaded file.
    Upload,
    /// A profile update (pre-chat form, `Kefu.identify`).
    Profile,
}

/// `[budgets]` in `kefu.toml`: how many of each thing one address, and one site, may make per
/// hour. At most that many at once, then one more each `3600 / n` seconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetLimits {
    /// `false` turns every budget off: load tests and benchmarks that drive thousands of
    /// visitors from one machine.
    pub enabled: bool,
    /// Visitor hellos (connections and reconnects) per address.
    pub hellos_per_hour: u32,
    /// `resume` frames per address.
    pub resumes_per_hour: u32,
    /// New visitors per address: one per browser that has never been seen.
    pub visitors_per_hour: u32,
    /// New conversations per address.
    pub conversations_per_hour: u32,
    /// Leave-messages per address.
    pub leave_messages_per_hour: u32,
    /// Uploads per address.
    pub uploads_per_hour: u32,
    /// Profile updates per address.
    pub profiles_per_hour: u32,
    /// New conversations per site, all addresses together: what an inbox can be flooded with.
    pub site_conversations_per_hour: u32,
    /// Leave-messages per site, all addresses together.
    pub site_leave_messages_per_hour: u32,
}

impl Default for BudgetLimits {
    /// Generous for an office or a campus behind one address, small for a script.
    fn default() -> Self {
        BudgetLimits {
            enabled: true,
            hellos_per_hour: 1_200,
            resumes_per_hour: 1_200,
            visitors_per_hour: 200,
            conversations_per_hour: 60,
            leave_messages_per_hour: 30,
            uploads_per_hour: 120,
            profiles_per_hour: 240,
            site_conversations_per_hour: 1_000,
            site_leave_messages_per_hour: 500,
        }
    }
}

impl BudgetLimits {
    /// No budget at all (tests that drive many visitors from one address).
    pub fn off() -> BudgetLimits {
        BudgetLimits {
            enabled: false,
            ..BudgetLimits::default()
        }
    }

    fn per_address(&self, spend: Spend) -> u32 {
        match spend {
            Spend::Hello => self.hellos_per_hour,
            Spend::Resume => self.resumes_per_hour,
            Spend::Visitor => self.visitors_per_hour,
            Spend::Conversation => self.conversations_per_hour,
            Spend::LeaveMessage => self.leave_messages_per_hour,
            Spend::Upload => self.uploads_per_hour,
            Spend::Profile => self.profiles_per_hour,
        }
    }

    fn per_site(&self, spend: Spend) -> Option<u32> {
        match spend {
            Spend::Conversation => Some(self.site_conversations_per_hour),
            Spend::LeaveMessage => Some(self.site_leave_messages_per_hour),
            _ => None,
        }
    }
}

/// Who a budget belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Owner {
    /// A client address (already grouped: an IPv6 /64).
    Address(IpAddr),
    /// A site, all its visitors together.
    Site(SiteId),
}

type Limiter<C> = RateLimiter<
    (Spend, Owner),
    HashMapStateStore<(Spend, Owner)>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// Idle keys are looked for at most this often.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The budgets of one node. Cheap to share behind the `Realtime` it lives in.
pub struct Budgets<C: Clock = DefaultClock> {
    /// The configured sizes; a budget of 0 is no budget.
    limits: BudgetLimits,
    /// One limiter per hourly size in use (a GCRA quota is per limiter, keys are per owner).
    limiters: Vec<(u32, Limiter<C>)>,
    /// The clock the limiters read (a fake one in tests).
    clock: C,
    /// When idle keys were last dropped.
    pruned: Mutex<Option<C::Instant>>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Budgets {
    /// Budgets of the given sizes on the real clock.
    pub fn new(limits: BudgetLimits) -> Budgets {
        Budgets::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Budgets<C> {
    /// Budgets on a given clock.
    pub fn with_clock(limits: BudgetLimits, clock: C) -> Budgets<C> {
        let all = [
            Spend::Hello,
            Spend::Resume,
            Spend::Visitor,
            Spend::Conversation,
            Spend::LeaveMessage,
            Spend::Upload,
            Spend::Profile,
        ];
        let mut sizes: Vec<u32> = all
            .iter()
            .map(|spend| limits.per_address(*spend))
            .chain(all.iter().filter_map(|spend| limits.per_site(*spend)))
            .filter(|size| *size > 0)
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        let limiters = if limits.enabled {
            sizes
                .into_iter()
                .filter_map(|size| {
                    let size_nz = NonZeroU32::new(size)?;
                    let quota = Quota::per_hour(size_nz);
                    Some((
                        size,
                        RateLimiter::new(quota, HashMapStateStore::default(), clock.clone()),
                    ))
                })
                .collect()
        } else {
            Vec::new()
        };
        Budgets {
            limits,
            limiters,
            clock,
            pruned: Mutex::new(None),
        }
    }

    /// Spends one `spend` for a client address and, for conversations and leave-messages,
    /// for its site. `Err` is the wait in milliseconds before it would be allowed; a refused
    /// request spends nothing from the site's budget.
    pub fn spend(
        &self,
        spend: Spend,
        address: Option<IpAddr>,
        site_id: Option<SiteId>,
    ) -> Result<(), u32> {
        if !self.limits.enabled {
            return Ok(());
        }
        self.prune_now_and_then();
        if let Some(address) = address.map(|ip| app::session::ClientIp(ip).group()) {
            self.check(
                self.limits.per_address(spend),
                (spend, Owner::Address(address)),
            )?;
        }
        if let (Some(size), Some(site_id)) = (self.limits.per_site(spend), site_id) {
            self.check(size, (spend, Owner::Site(site_id)))?;
        }
        Ok(())
    }

    fn check(&self, size: u32, key: (Spend, Owner)) -> Result<(), u32> {
        let Some((_, limiter)) = self.limiters.iter().find(|(s, _)| *s == size) else {
            return Ok(());
        };
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            u32::try_from(wait.as_millis()).unwrap_or(u32::MAX).max(1)
        })
    }

    /// How many owners have a budget in use (what the memory grows with).
    pub fn keys(&self) -> usize {
        self.limiters.iter().map(|(_, limiter)| limiter.len()).sum()
    }

    /// Drops the keys that are full again, if that was not done in the last minute.
    fn prune_now_and_then(&self) {
        let now = self.clock.now();
        {
            let mut pruned = match self.pruned.lock() {
                Ok(pruned) => pruned,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some(last) = *pruned
                && Duration::from(now.duration_since(last)) < PRUNE_EVERY
            {
                return;
            }
            *pruned = Some(now);
        }
        for (_, limiter) in &self.limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::net::Ipv4Addr;

    fn address(n: u32) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
    }

    #[test]
    fn an_address_is_refused_past_its_budget_while_another_is_served() {
        let clock = FakeRelativeClock::default();
        let limits = BudgetLimits {
            visitors_per_hour: 3,
            ..BudgetLimits::default()
        };
        let budgets = Budgets::with_clock(limits, clock.clone());
        for _ in 0..3 {
            assert_eq!(
                budgets.spend(Spend::Visitor, address(1), Some(SiteId(1))),
                Ok(())
            );
        }
        let wait = budgets
            .spend(Spend::Visitor, address(1), Some(SiteId(1)))
            .expect_err("past the budget");
        // Three an hour: the next one after twenty minutes.
        assert!((1_199_000..=1_200_000).contains(&wait), "{wait}");
        assert_eq!(
            budgets.spend(Spend::Visitor, address(2), Some(SiteId(1))),
            Ok(())
        );
        assert_eq!(
            budgets.spend(Spend::Upload, address(1), Some(SiteId(1))),
            Ok(())
        );
        clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(
            budgets.spend(Spend::Visitor, address(1), Some(SiteId(1))),
            Ok(())
        );
    }

    #[test]
    fn a_site_ceiling_holds_over_many_addresses() {
        let limits = BudgetLimits {
            site_conversations_per_hour: 5,
            ..BudgetLimits::default()
        };
        let budgets = Budgets::with_clock(limits, FakeRelativeClock::default());
        for n in 0..5 {
            assert_eq!(
                budgets.spend(Spend::Conversation, address(n), Some(SiteId(7))),
                Ok(())
            );
        }
        assert!(
            budgets
                .spend(Spend::Conversation, address(99), Some(SiteId(7)))
                .is_err()
        );
        assert_eq!(
            budgets.spend(Spend::Conversation, address(99), Some(SiteId(8))),
            Ok(())
        );
    }

    #[test]
    fn switched_off_nothing_is_counted() {
        let budgets = Budgets::with_clock(BudgetLimits::off(), FakeRelativeClock::default());
        for _ in 0..10_000 {
            assert_eq!(
                budgets.spend(Spend::Visitor, address(1), Some(SiteId(1))),
                Ok(())
            );
        }
        assert_eq!(budgets.keys(), 0);
    }

    #[test]
    fn budget_memory_of_idle_addresses_is_given_back() {
        let clock = FakeRelativeClock::default();
        let budgets = Budgets::with_clock(BudgetLimits::default(), clock.clone());
        let baseline = budgets.keys();
        for n in 0..100_000 {
            budgets
                .spend(Spend::Visitor, address(n), Some(SiteId(1)))
                .expect("one each");
        }
        let busy = budgets.keys();
        assert_eq!(busy, baseline + 100_000);
        // An hour on, every one of them is full again; the next spend drops them.
        clock.advance(Duration::from_secs(3_601));
        budgets
            .spend(Spend::Hello, address(0), Some(SiteId(1)))
            .expect("a hello");
        let after = budgets.keys();
        println!(
            "budget keys: baseline {baseline}, after 100,000 new visitors {busy}, an hour idle later {after}"
        );
        assert!(after <= baseline + 1, "{after}");
    }
}
