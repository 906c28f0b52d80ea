//! In-process fan-out: one broadcast topic per site (agents listen) and one per visitor (that
//! visitor's tabs listen), plus the live counters that are not worth storing (who is online,
//! connections per IP, message rates).
//!
//! The hub never waits on a subscriber: topics are bounded broadcast channels, so a slow
//! subscriber lags and catches up from the store by seq (see `session`). Nothing here is
//! durable; a message reaches the hub only after it was committed.

use protocol::{AgentId, AgentStatus, ServerFrame, SiteId, VisitorDetails, VisitorId};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Frames buffered per site topic (all of a site's traffic, read by agents) before the slowest
/// subscriber is declared lagging.
const SITE_TOPIC_CAPACITY: usize = 512;
/// Frames buffered per visitor topic. Small, because there is one per connected visitor and the
/// buffer is most of an idle visitor's memory (`make bench`: 512 slots cost ~16 KiB); a visitor
/// that falls behind catches up from the store like anyone else.
const VISITOR_TOPIC_CAPACITY: usize = 16;

/// A frame shared by every subscriber of a topic.
pub type Event = Arc<ServerFrame>;

/// Cheap to clone: all state lives behind one `Arc`.
#[derive(Clone, Default)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    /// What agents of a site receive: messages, typing, previews, presence, page views, events.
    sites: Topics<i64>,
    /// What a visitor's connections receive: their conversations' messages, agent typing, reads.
    visitors: Topics<i64>,
    /// What every visitor of a site receives: whether an agent is available.
    site_visitors: Topics<i64>,
    /// Live connection counts; a visitor is online while the count is above zero.
    counts: Mutex<Counts>,
    /// Times a subscriber fell behind its topic and caught up from the store (for `/metrics`).
    lag_catch_ups: std::sync::atomic::AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            sites: Topics::with_capacity(SITE_TOPIC_CAPACITY),
            visitors: Topics::with_capacity(VISITOR_TOPIC_CAPACITY),
            site_visitors: Topics::with_capacity(VISITOR_TOPIC_CAPACITY),
            counts: Mutex::default(),
            lag_catch_ups: std::sync::atomic::AtomicU64::default(),
        }
    }
}

#[derive(Default)]
struct Counts {
    /// Visitors with a live connection, for presence and the agents' snapshot.
    visitors: HashMap<i64, LiveVisitor>,
    /// Agents with a live connection, for presence, availability and the snapshot.
    agents: HashMap<i64, LiveAgent>,
    /// Open connections per client IP, for the per-IP cap.
    ips: HashMap<IpAddr, u32>,
    /// Message-rate buckets per sender (shared by all their connections and transports).
    rates: HashMap<Sender, Bucket>,
}

/// Who a message-rate bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    /// A visitor, by id.
    Visitor(i64),
    /// An agent, by id.
    Agent(i64),
}

/// A connected visitor.
struct LiveVisitor {
    /// Their site; presence and page views go to its agents.
    site_id: i64,
    /// Open connections (tabs); online while above zero.
    connections: u32,
    /// The latest page view, replayed to agents who connect later.
    last_page: Option<Event>,
    /// Their browser (the latest hello's), told to agents who connect later.
    details: Option<Arc<VisitorDetails>>,
}

/// A connected agent.
struct LiveAgent {
    /// The sites they answer; presence goes to those sites' agents.
    site_ids: Vec<i64>,
    /// Open connections; connected while above zero.
    connections: u32,
    /// What they set (online when they connect).
    status: AgentStatus,
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
    /// Frames each topic buffers for its slowest subscriber.
    capacity: usize,
}

impl<K> Topics<K> {
    fn with_capacity(capacity: usize) -> Self {
        Topics {
            senders: Mutex::new(HashMap::new()),
            capacity,
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
                .insert(broadcast::channel(self.capacity).0)
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
/// last connection of a visitor or agent, announces them offline — at once, or after the
/// connection's linger time.
pub struct Registration {
    hub: Hub,
    ip: Option<IpAddr>,
    who: Option<Who>,
    /// How long presence outlives this connection: a page navigation's new socket, or the next
    /// long-poll, arrives within it, so presence does not flicker off and on.
    linger: Duration,
}

/// How long a WebSocket's presence outlives it: long enough for a page navigation (the old
/// page's socket closes, the new page's opens) or a console reload.
pub const NAVIGATION_GRACE: Duration = Duration::from_secs(3);

/// Whose presence a registration counts.
#[derive(Debug, Clone)]
pub enum Who {
    /// A visitor of a site, with their browser when the connection's hello told it.
    Visitor {
        site_id: i64,
        visitor_id: i64,
        details: Option<Arc<VisitorDetails>>,
    },
    /// An agent of some sites (presence is announced on each).
    Agent { agent_id: i64, site_ids: Vec<i64> },
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
            linger: Duration::ZERO,
        })
    }

    /// Counts a subscriber that lagged and caught up from the store.
    pub fn record_lag(&self) {
        self.shared
            .lag_catch_ups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many times subscribers lagged and caught up from the store.
    pub fn lag_catch_ups(&self) -> u64 {
        self.shared
            .lag_catch_ups
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Listens to what every visitor of a site gets (availability).
    pub fn subscribe_site_visitors(&self, site_id: i64) -> broadcast::Receiver<Event> {
        self.shared.site_visitors.subscribe(site_id)
    }

    /// Whether an agent of the site is connected with status online.
    pub fn site_available(&self, site_id: i64) -> bool {
        available(&lock(&self.shared.counts), site_id)
    }

    /// The agents of a site connected with status online, by id: who may be given chats.
    pub fn online_agents(&self, site_id: i64) -> Vec<i64> {
        let counts = lock(&self.shared.counts);
        let mut ids: Vec<i64> = counts
            .agents
            .iter()
            .filter(|(_, a)| a.status == AgentStatus::Online && a.site_ids.contains(&site_id))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Whether a visitor has a live connection.
    pub fn visitor_online(&self, visitor_id: i64) -> bool {
        lock(&self.shared.counts).visitors.contains_key(&visitor_id)
    }

    /// Sends a visitor's page view to their site's agents and keeps it for later snapshots.
    pub fn page_view(&self, site_id: i64, visitor_id: i64, frame: ServerFrame) {
        let event = Arc::new(frame);
        if let Some(live) = lock(&self.shared.counts).visitors.get_mut(&visitor_id) {
            live.last_page = Some(event.clone());
        }
        self.shared.sites.publish(site_id, &event);
    }

    /// Changes a connected agent's status: tells their sites' agents, and their visitors when
    /// a site's availability flips.
    pub fn set_agent_status(&self, agent_id: i64, status: AgentStatus) {
        let site_ids = {
            let mut counts = lock(&self.shared.counts);
            let Some(agent) = counts.agents.get(&agent_id) else {
                return;
            };
            let site_ids = agent.site_ids.clone();
            let before: Vec<bool> = site_ids.iter().map(|s| available(&counts, *s)).collect();
            if let Some(agent) = counts.agents.get_mut(&agent_id) {
                agent.status = status;
            }
            site_ids
                .into_iter()
                .zip(before)
                .map(|(site, was)| {
                    (
                        site,
                        was != available(&counts, site),
                        available(&counts, site),
                    )
                })
                .collect::<Vec<_>>()
        };
        self.after_agent_change(agent_id, status, &site_ids);
    }

    fn after_agent_change(&self, agent_id: i64, status: AgentStatus, sites: &[(i64, bool, bool)]) {
        let presence = Arc::new(ServerFrame::AgentPresence {
            agent_id: AgentId(agent_id),
            status,
        });
        for (site_id, flipped, online) in sites {
            self.shared.sites.publish(*site_id, &presence);
            if *flipped {
                self.shared.site_visitors.publish(
                    *site_id,
                    &Arc::new(ServerFrame::Availability { online: *online }),
                );
            }
        }
    }

    /// What an agent of `site_ids` is told right after `welcome`: the colleagues who are not
    /// offline, then each online visitor with their latest page view.
    pub fn agent_snapshot(&self, site_ids: &[i64]) -> Vec<ServerFrame> {
        let counts = lock(&self.shared.counts);
        let mut frames: Vec<ServerFrame> = counts
            .agents
            .iter()
            .filter(|(_, a)| {
                a.status != AgentStatus::Offline && a.site_ids.iter().any(|s| site_ids.contains(s))
            })
            .map(|(id, a)| ServerFrame::AgentPresence {
                agent_id: AgentId(*id),
                status: a.status,
            })
            .collect();
        for (id, visitor) in counts
            .visitors
            .iter()
            .filter(|(_, v)| site_ids.contains(&v.site_id))
        {
            frames.push(ServerFrame::VisitorPresence {
                site_id: SiteId(visitor.site_id),
                visitor_id: VisitorId(*id),
                online: true,
                details: visitor.details.as_deref().cloned(),
            });
            if let Some(page) = &visitor.last_page {
                frames.push((**page).clone());
            }
        }
        frames
    }

    /// Takes one message token from a sender's bucket (`per_minute` capacity and refill).
    pub fn take_message_token(&self, sender: Sender, per_minute: u32) -> Result<(), u32> {
        let capacity = f64::from(per_minute.max(1));
        let mut counts = lock(&self.shared.counts);
        counts
            .rates
            .entry(sender)
            .or_insert_with(|| Bucket::full(capacity))
            .take(capacity, capacity / 60.0, Instant::now())
    }
}

/// Whether an agent of the site is connected with status online.
fn available(counts: &Counts, site_id: i64) -> bool {
    counts
        .agents
        .values()
        .any(|a| a.status == AgentStatus::Online && a.site_ids.contains(&site_id))
}

impl Registration {
    /// Keeps the presence this connection counts for `linger` after it ends. The per-IP place
    /// is released at once.
    pub fn linger(&mut self, linger: Duration) {
        self.linger = linger;
    }

    /// Marks whose connection this is. The first connection of someone announces them online
    /// (and, for an agent, may make their sites available to visitors).
    pub fn identify(&mut self, who: Who) {
        self.who = Some(who.clone());
        let hub = &self.hub;
        match who {
            Who::Visitor {
                site_id,
                visitor_id,
                details,
            } => {
                let arrived = {
                    let mut counts = lock(&hub.shared.counts);
                    let live = counts.visitors.entry(visitor_id).or_insert(LiveVisitor {
                        site_id,
                        connections: 0,
                        last_page: None,
                        details: None,
                    });
                    live.connections += 1;
                    if details.is_some() {
                        live.details = details;
                    }
                    (live.connections == 1).then(|| live.details.as_deref().cloned())
                };
                if let Some(details) = arrived {
                    hub.to_site(
                        site_id,
                        ServerFrame::VisitorPresence {
                            site_id: SiteId(site_id),
                            visitor_id: VisitorId(visitor_id),
                            online: true,
                            details,
                        },
                    );
                }
            }
            Who::Agent { agent_id, site_ids } => {
                let (changes, status, first, back) = {
                    let mut counts = lock(&hub.shared.counts);
                    // The sites whose availability this connection may change: its own, and
                    // those an earlier connection of the agent registered.
                    let mut touched = site_ids.clone();
                    if let Some(live) = counts.agents.get(&agent_id) {
                        touched.extend(live.site_ids.iter().copied());
                    }
                    touched.sort_unstable();
                    touched.dedup();
                    let before: Vec<bool> =
                        touched.iter().map(|s| available(&counts, *s)).collect();
                    let live = counts.agents.entry(agent_id).or_insert(LiveAgent {
                        site_ids: site_ids.clone(),
                        connections: 0,
                        status: AgentStatus::Online,
                    });
                    live.connections += 1;
                    // The newest connection read the agent's sites last: a site they were added
                    // to since an earlier connection counts from now on.
                    live.site_ids = site_ids.clone();
                    let (status, first) = (live.status, live.connections == 1);
                    // Signed out while an earlier connection still lingered: a new one means
                    // they are back.
                    let back = !first && status == AgentStatus::Offline;
                    let changes: Vec<(i64, bool, bool)> = touched
                        .iter()
                        .zip(before)
                        .map(|(site, was)| {
                            let now = available(&counts, *site);
                            (*site, was != now, now)
                        })
                        .collect();
                    (changes, status, first, back)
                };
                if back {
                    hub.set_agent_status(agent_id, AgentStatus::Online);
                } else if first || changes.iter().any(|(_, flipped, _)| *flipped) {
                    hub.after_agent_change(agent_id, status, &changes);
                }
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(ip) = self.ip.take() {
            let mut counts = lock(&self.hub.shared.counts);
            if let Some(count) = counts.ips.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    counts.ips.remove(&ip);
                }
            }
        }
        let Some(who) = self.who.take() else {
            return;
        };
        if !self.linger.is_zero()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // The presence is released by a registration that ends later.
            let later = Registration {
                hub: self.hub.clone(),
                ip: None,
                who: Some(who),
                linger: Duration::ZERO,
            };
            let linger = self.linger;
            runtime.spawn(async move {
                tokio::time::sleep(linger).await;
                drop(later);
            });
            return;
        }
        self.hub.release(who);
    }
}

impl Hub {
    /// Ends one connection's presence; the last one of a visitor or agent announces them
    /// offline (and may make their sites unavailable to visitors).
    fn release(&self, who: Who) {
        let mut counts = lock(&self.shared.counts);
        match who {
            Who::Visitor {
                site_id,
                visitor_id,
                ..
            } => {
                let Some(live) = counts.visitors.get_mut(&visitor_id) else {
                    return;
                };
                live.connections -= 1;
                if live.connections > 0 {
                    return;
                }
                counts.visitors.remove(&visitor_id);
                drop(counts);
                self.to_site(
                    site_id,
                    ServerFrame::VisitorPresence {
                        site_id: SiteId(site_id),
                        visitor_id: VisitorId(visitor_id),
                        online: false,
                        details: None,
                    },
                );
            }
            Who::Agent { agent_id, site_ids } => {
                let Some(live) = counts.agents.get_mut(&agent_id) else {
                    return;
                };
                live.connections -= 1;
                if live.connections > 0 {
                    return;
                }
                let before: Vec<bool> = site_ids.iter().map(|s| available(&counts, *s)).collect();
                counts.agents.remove(&agent_id);
                let changes: Vec<_> = site_ids
                    .iter()
                    .zip(before)
                    .map(|(site, was)| {
                        (
                            *site,
                            was != available(&counts, *site),
                            available(&counts, *site),
                        )
                    })
                    .collect();
                drop(counts);
                self.after_agent_change(agent_id, AgentStatus::Offline, &changes);
            }
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
            details: None,
        };
        let mut a = hub.register(None, 10).expect("a");
        let mut b = hub.register(None, 10).expect("b");
        a.identify(who.clone());
        b.identify(who);
        let arrived = agents.recv().await.expect("presence");
        assert!(matches!(
            *arrived,
            ServerFrame::VisitorPresence { online: true, .. }
        ));
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

#[cfg(test)]
mod availability_tests {
    use super::*;

    #[tokio::test]
    async fn visitors_learn_when_a_site_gains_or_loses_its_last_online_agent() {
        let hub = Hub::default();
        let mut visitors = hub.subscribe_site_visitors(7);
        assert!(!hub.site_available(7));
        let mut agent = hub.register(None, 10).expect("agent");
        agent.identify(Who::Agent {
            agent_id: 1,
            site_ids: vec![7],
        });
        assert!(hub.site_available(7));
        assert!(matches!(
            *visitors.recv().await.expect("flip"),
            ServerFrame::Availability { online: true }
        ));
        hub.set_agent_status(1, AgentStatus::Away);
        assert!(!hub.site_available(7), "away agents take no new chats");
        assert!(matches!(
            *visitors.recv().await.expect("flip"),
            ServerFrame::Availability { online: false }
        ));
        assert_eq!(
            hub.agent_snapshot(&[7]).len(),
            1,
            "an away colleague is still listed"
        );
        drop(agent);
        assert!(hub.agent_snapshot(&[7]).is_empty());
    }
}
