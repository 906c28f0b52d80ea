//! In-process fan-out: one broadcast topic per site (agents listen) and one per visitor (that
//! visitor's tabs listen), plus the live counters that are not worth storing (who is online,
//! connections per IP, message rates).
//!
//! The hub never waits on a subscriber: topics are bounded broadcast channels, so a slow
//! subscriber lags and catches up from the store by seq (see `session`). Nothing here is
//! durable; a message reaches the hub only after it was committed.

use protocol::ServerFrame;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::broadcast;

/// Frames buffered per topic before the slowest subscriber is declared lagging.
const TOPIC_CAPACITY: usize = 512;

/// A frame shared by every subscriber of a topic.
pub type Event = Arc<ServerFrame>;

/// Cheap to clone: all state lives behind one `Arc`.
#[derive(Clone, Default)]
pub struct Hub {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// What agents of a site receive: messages, typing, previews, presence, page views, events.
    sites: Topics<i64>,
    /// What a visitor's connections receive: their conversations' messages, agent typing, reads.
    visitors: Topics<i64>,
    /// Live connection counts; a visitor is online while the count is above zero.
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    /// Open connections per visitor, for presence.
    visitors: HashMap<i64, u32>,
    /// Open connections per agent, for presence.
    agents: HashMap<i64, u32>,
    /// Open connections per client IP, for the per-IP cap.
    ips: HashMap<IpAddr, u32>,
    /// Message-rate buckets per visitor (shared by all their connections).
    rates: HashMap<i64, Bucket>,
}

/// A token bucket: `capacity` tokens, refilled continuously at `per_second`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(capacity: f64) -> Bucket {
        Bucket {
            tokens: capacity,
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one; otherwise says how long until there will be.
    pub fn take(&mut self, capacity: f64, per_second: f64, now: Instant) -> Result<(), u32> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / per_second * 1000.0;
            Err(wait.ceil() as u32)
        }
    }
}

struct Topics<K> {
    /// Only topics with subscribers are kept; publishing to a missing topic is a no-op.
    senders: Mutex<HashMap<K, broadcast::Sender<Event>>>,
}

impl<K> Default for Topics<K> {
    fn default() -> Self {
        Topics {
            senders: Mutex::new(HashMap::new()),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short, non-async locks leaves consistent data.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<K: Eq + Hash + Copy> Topics<K> {
    fn subscribe(&self, key: K) -> broadcast::Receiver<Event> {
        match lock(&self.senders).entry(key) {
            Entry::Occupied(entry) => entry.get().subscribe(),
            Entry::Vacant(entry) => entry
                .insert(broadcast::channel(TOPIC_CAPACITY).0)
                .subscribe(),
        }
    }

    fn publish(&self, key: K, event: &Event) {
        let mut senders = lock(&self.senders);
        if let Some(sender) = senders.get(&key)
            && sender.send(event.clone()).is_err()
        {
            // Nobody listens any more: forget the topic.
            senders.remove(&key);
        }
    }
}

/// Why a connection was refused by the per-IP cap.
#[derive(Debug)]
pub struct TooManyConnections;

/// Holds a connection's place in the counters; dropping it releases the place and, for the
/// last connection of a visitor or agent, announces them offline.
pub struct Registration {
    hub: Hub,
    ip: Option<IpAddr>,
    who: Option<Who>,
}

/// Whose presence a registration counts.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    /// A visitor of a site.
    Visitor { site_id: i64, visitor_id: i64 },
    /// An agent of some sites (presence is announced on each).
    Agent { agent_id: i64 },
}

impl Hub {
    /// Listens to everything agents of `site_id` should see.
    pub fn subscribe_site(&self, site_id: i64) -> broadcast::Receiver<Event> {
        self.shared.sites.subscribe(site_id)
    }

    /// Listens to everything the connections of `visitor_id` should see.
    pub fn subscribe_visitor(&self, visitor_id: i64) -> broadcast::Receiver<Event> {
        self.shared.visitors.subscribe(visitor_id)
    }

    /// Sends to the agents of a site.
    pub fn to_site(&self, site_id: i64, frame: ServerFrame) {
        self.shared.sites.publish(site_id, &Arc::new(frame));
    }

    /// Sends to a visitor's connections.
    pub fn to_visitor(&self, visitor_id: i64, frame: ServerFrame) {
        self.shared.visitors.publish(visitor_id, &Arc::new(frame));
    }

    /// Sends one frame to both a site's agents and a visitor (a message, a read mark).
    pub fn to_site_and_visitor(&self, site_id: i64, visitor_id: i64, frame: ServerFrame) {
        let event = Arc::new(frame);
        self.shared.sites.publish(site_id, &event);
        self.shared.visitors.publish(visitor_id, &event);
    }

    /// Counts a new connection from `ip` against `max_per_ip`.
    pub fn register(
        &self,
        ip: Option<IpAddr>,
        max_per_ip: u32,
    ) -> Result<Registration, TooManyConnections> {
        if let Some(ip) = ip {
            let mut counts = lock(&self.shared.counts);
            let count = counts.ips.entry(ip).or_insert(0);
            if *count >= max_per_ip {
                return Err(TooManyConnections);
            }
            *count += 1;
        }
        Ok(Registration {
            hub: self.clone(),
            ip,
            who: None,
        })
    }

    /// Whether any agent is connected (the widget shows chat or the offline form).
    pub fn agents_online(&self) -> bool {
        !lock(&self.shared.counts).agents.is_empty()
    }

    /// Whether a visitor has a live connection.
    pub fn visitor_online(&self, visitor_id: i64) -> bool {
        lock(&self.shared.counts).visitors.contains_key(&visitor_id)
    }

    /// Takes one message token from a visitor's bucket (`per_minute` capacity and refill).
    pub fn take_message_token(&self, visitor_id: i64, per_minute: u32) -> Result<(), u32> {
        let capacity = f64::from(per_minute.max(1));
        let mut counts = lock(&self.shared.counts);
        counts
            .rates
            .entry(visitor_id)
            .or_insert_with(|| Bucket::full(capacity))
            .take(capacity, capacity / 60.0, Instant::now())
    }
}

impl Registration {
    /// Marks whose connection this is; the first connection of someone announces them online.
    /// Returns true when this made them online.
    pub fn identify(&mut self, who: Who) -> bool {
        self.who = Some(who);
        let mut counts = lock(&self.hub.shared.counts);
        let count = match who {
            Who::Visitor { visitor_id, .. } => counts.visitors.entry(visitor_id).or_insert(0),
            Who::Agent { agent_id } => counts.agents.entry(agent_id).or_insert(0),
        };
        *count += 1;
        *count == 1
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let went_offline = {
            let mut counts = lock(&self.hub.shared.counts);
            if let Some(ip) = self.ip
                && let Some(count) = counts.ips.get_mut(&ip)
            {
                *count -= 1;
                if *count == 0 {
                    counts.ips.remove(&ip);
                }
            }
            let release = |map: &mut HashMap<i64, u32>, key: i64| match map.get_mut(&key) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    map.remove(&key);
                    true
                }
                None => false,
            };
            match self.who {
                Some(Who::Visitor { visitor_id, .. }) => release(&mut counts.visitors, visitor_id),
                Some(Who::Agent { agent_id }) => release(&mut counts.agents, agent_id),
                None => false,
            }
        };
        if went_offline
            && let Some(Who::Visitor {
                site_id,
                visitor_id,
            }) = self.who
        {
            self.hub.to_site(
                site_id,
                ServerFrame::VisitorPresence {
                    site_id: protocol::SiteId(site_id),
                    visitor_id: protocol::VisitorId(visitor_id),
                    online: false,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_its_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::full(2.0);
        assert!(bucket.take(2.0, 1.0, start).is_ok());
        assert!(bucket.take(2.0, 1.0, start).is_ok());
        let wait = bucket.take(2.0, 1.0, start).expect_err("empty");
        assert!((900..=1000).contains(&wait), "{wait}");
        assert!(
            bucket
                .take(2.0, 1.0, start + Duration::from_millis(1100))
                .is_ok()
        );
    }

    #[tokio::test]
    async fn per_ip_cap_and_release() {
        let hub = Hub::default();
        let ip: IpAddr = "127.0.0.9".parse().expect("ip");
        let first = hub.register(Some(ip), 2).expect("first");
        let _second = hub.register(Some(ip), 2).expect("second");
        assert!(hub.register(Some(ip), 2).is_err(), "third refused");
        drop(first);
        assert!(hub.register(Some(ip), 2).is_ok(), "a place was released");
    }

    #[tokio::test]
    async fn last_connection_announces_offline() {
        let hub = Hub::default();
        let mut agents = hub.subscribe_site(1);
        let who = Who::Visitor {
            site_id: 1,
            visitor_id: 5,
        };
        let mut a = hub.register(None, 10).expect("a");
        let mut b = hub.register(None, 10).expect("b");
        assert!(a.identify(who));
        assert!(!b.identify(who), "second tab is not a new arrival");
        drop(a);
        assert!(hub.visitor_online(5));
        drop(b);
        assert!(!hub.visitor_online(5));
        let frame = agents.recv().await.expect("presence");
        assert!(matches!(
            *frame,
            ServerFrame::VisitorPresence { online: false, .. }
        ));
    }
}
