//! Fan-out: one broadcast topic per site (agents listen), one per visitor (that visitor's tabs
//! listen) and one per site's visitors (availability), plus the live counters that are not
//! worth storing (who is online, connections per IP, message rates).
//!
//! The hub never waits on a subscriber: topics are bounded broadcast channels, so a slow
//! subscriber lags and catches up from the store by seq (see `session`). Nothing here is
//! durable; a message reaches the hub only after it was committed.
//!
//! With several nodes, every event published here is also handed to the node's broker
//! ([`super::broker`]), which delivers it to the same topics on the other nodes. Presence
//! frames are not forwarded: each node derives them from the cluster-wide view (`presence`).

use super::linger::Lingering;
use super::nodes::Body;
use super::presence::{Presence, Roster, Told};
use crate::util::{Pruned, lock};
use protocol::{AgentId, AgentStatus, ServerFrame, SiteId, VisitorDetails, VisitorId};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast, mpsc, watch};

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
    sites: Topics<SiteId>,
    /// What a visitor's connections receive: their conversations' messages, agent typing, reads.
    visitors: Topics<VisitorId>,
    /// What every visitor of a site receives: whether an agent is available.
    site_visitors: Topics<SiteId>,
    /// Connections per IP and message rates, counted by this node.
    counts: Mutex<Counts>,
    /// Who is online, here and on the other nodes.
    presence: Mutex<Presence>,
    /// Wakes the bus to publish this node's roster after a change.
    roster_changed: Notify,
    /// Where events for other nodes go; unset on a single node (the in-process bus).
    outbox: OnceLock<mpsc::Sender<Body>>,
    /// Set when an event could not be handed to the bus: the other nodes must catch up.
    missed: AtomicBool,
    /// Bumped when live frames may have been missed (the bus was down): every session catches
    /// up from the store, as after a lag.
    resyncs: watch::Sender<u64>,
    /// Bumped when something the node keeps a copy of (webhooks, sites, bans) changed, here
    /// or on another node, or when news of such a change may have been missed (the bus was
    /// down): each copy is read again from the store.
    stale: watch::Sender<u64>,
    /// Sites where an agent connected to another node came online: conversations this node
    /// queued before it heard of them may go to them now.
    online_elsewhere: broadcast::Sender<SiteId>,
    /// Agents whose sessions, role or sites changed (on any node): their connections here
    /// check their session again at once.
    sessions_changed: broadcast::Sender<AgentId>,
    /// Times a subscriber fell behind its topic and caught up from the store (for `/metrics`).
    lag_catch_ups: AtomicU64,
    /// Presences kept after their connections ended, until their release time (`linger`).
    lingering: Mutex<Lingering<Who>>,
    /// Wakes the sweeper when a presence is due sooner than it planned to wake.
    lingering_sooner: Arc<Notify>,
    /// Set once the sweeper task runs (started by the first lingering presence).
    sweeper: OnceLock<()>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            sites: Topics::with_capacity(SITE_TOPIC_CAPACITY),
            visitors: Topics::with_capacity(VISITOR_TOPIC_CAPACITY),
            site_visitors: Topics::with_capacity(VISITOR_TOPIC_CAPACITY),
            counts: Mutex::default(),
            presence: Mutex::default(),
            roster_changed: Notify::new(),
            outbox: OnceLock::new(),
            missed: AtomicBool::new(false),
            resyncs: watch::Sender::new(0),
            stale: watch::Sender::new(0),
            online_elsewhere: broadcast::Sender::new(64),
            sessions_changed: broadcast::Sender::new(256),
            lag_catch_ups: AtomicU64::default(),
            lingering: Mutex::default(),
            lingering_sooner: Arc::new(Notify::new()),
            sweeper: OnceLock::new(),
        }
    }
}

struct Counts {
    /// Open connections per client IP, for the per-IP cap (per node: behind a balancer each
    /// node caps its own share).
    ips: HashMap<IpAddr, u32>,
    /// Open connections from everyone, for the node-wide cap.
    total: u32,
    /// Message-rate buckets per sender (shared by all their connections and transports on
    /// this node); one per visitor ever seen if idle ones were not dropped.
    rates: Pruned<Sender, Bucket>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            ips: HashMap::new(),
            total: 0,
            rates: Pruned::new(PRUNE_RATES_FROM),
        }
    }
}

/// Buckets are pruned first at this many senders.
const PRUNE_RATES_FROM: usize = 10_000;

/// A bucket untouched this long has refilled completely (a minute's worth of tokens refills in
/// a minute), so dropping it changes nothing: the sender would get a full one again.
const IDLE_BUCKET: Duration = Duration::from_secs(60);

impl Counts {
    /// Drops the buckets idle for [`IDLE_BUCKET`] once there are enough of them to matter.
    fn prune_rates(&mut self, now: Instant) {
        self.rates
            .prune(|bucket| now.saturating_duration_since(bucket.last) < IDLE_BUCKET);
    }
}

/// Who a message-rate bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    /// A visitor, by id.
    Visitor(VisitorId),
    /// An agent, by id.
    Agent(AgentId),
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
    senders: Mutex<Senders<K>>,
    /// Frames each topic buffers for its slowest subscriber.
    capacity: usize,
}

/// The topics of one kind: one broadcast sender per key that has (or recently had)
/// subscribers. A topic whose last subscriber left is otherwise dropped only when something is
/// published to it, and most visitors (a page view, no chat) are never sent anything after
/// they leave: one topic per visitor ever seen would stay, so abandoned ones are pruned.
type Senders<K> = Pruned<K, broadcast::Sender<Event>>;

/// Abandoned topics are looked for first at this many topics.
const PRUNE_TOPICS_FROM: usize = 1_024;

impl<K> Topics<K> {
    fn with_capacity(capacity: usize) -> Self {
        Topics {
            senders: Mutex::new(Pruned::new(PRUNE_TOPICS_FROM)),
            capacity,
        }
    }

    /// How many topics are kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.senders).len()
    }
}

impl<K: Eq + Hash + Copy> Topics<K> {
    fn subscribe(&self, key: K) -> broadcast::Receiver<Event> {
        let mut senders = lock(&self.senders);
        senders.prune(|sender| sender.receiver_count() > 0);
        match senders.entry(key) {
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

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TooManyConnections {
    /// Its address has as many connections open as one address may.
    FromAddress,
    /// This node holds as many connections as it may (its share of file descriptors).
    OnNode,
}

/// Holds a connection's place in the counters; dropping it releases the place and, for the
/// last connection of a visitor or agent, announces them offline — at once, or after the
/// connection's linger time.
pub struct Registration {
    hub: Hub,
    ip: Option<IpAddr>,
    /// Whether this registration holds a place in the node-wide count (a lingering presence
    /// does not).
    counted: bool,
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
        site_id: SiteId,
        visitor_id: VisitorId,
        details: Option<Arc<VisitorDetails>>,
    },
    /// An agent of some sites (presence is announced on each).
    Agent {
        agent_id: AgentId,
        site_ids: Vec<SiteId>,
    },
}

impl Hub {
    /// Listens to everything agents of `site_id` should see.
    pub fn subscribe_site(&self, site_id: SiteId) -> broadcast::Receiver<Event> {
        self.shared.sites.subscribe(site_id)
    }

    /// Listens to everything the connections of `visitor_id` should see.
    pub fn subscribe_visitor(&self, visitor_id: VisitorId) -> broadcast::Receiver<Event> {
        self.shared.visitors.subscribe(visitor_id)
    }

    /// Listens to what every visitor of a site gets (availability).
    pub fn subscribe_site_visitors(&self, site_id: SiteId) -> broadcast::Receiver<Event> {
        self.shared.site_visitors.subscribe(site_id)
    }

    /// Sends to the agents of a site, on every node.
    pub fn to_site(&self, site_id: SiteId, frame: ServerFrame) {
        let frame = Arc::new(frame);
        self.shared.sites.publish(site_id, &frame);
        self.forward(Body::Site { site_id, frame });
    }

    /// Sends to a visitor's connections, on every node.
    pub fn to_visitor(&self, visitor_id: VisitorId, frame: ServerFrame) {
        let frame = Arc::new(frame);
        self.shared.visitors.publish(visitor_id, &frame);
        self.forward(Body::Visitor { visitor_id, frame });
    }

    /// Sends one frame to both a site's agents and a visitor (a message, a read mark), on
    /// every node.
    pub fn to_site_and_visitor(&self, site_id: SiteId, visitor_id: VisitorId, frame: ServerFrame) {
        let frame = Arc::new(frame);
        self.shared.sites.publish(site_id, &frame);
        self.shared.visitors.publish(visitor_id, &frame);
        self.forward(Body::SiteAndVisitor {
            site_id,
            visitor_id,
            frame,
        });
    }

    /// Sends a visitor's page view to their site's agents and keeps it for later snapshots.
    pub fn page_view(&self, site_id: SiteId, visitor_id: VisitorId, frame: ServerFrame) {
        let frame = Arc::new(frame);
        lock(&self.shared.presence).page_view(visitor_id, frame.clone());
        self.shared.roster_changed.notify_one();
        self.shared.sites.publish(site_id, &frame);
        self.forward(Body::Site { site_id, frame });
    }

    /// Changes a connected agent's status on every node: tells their sites' agents, and their
    /// visitors when a site's availability flips.
    pub fn set_agent_status(&self, agent_id: AgentId, status: AgentStatus) {
        let at = crate::util::now_ms();
        self.agent_status_at(agent_id, status, at);
        self.forward(Body::AgentStatus {
            agent_id,
            status,
            at,
        });
    }

    /// Applies a status an agent set at `at` (here, or on the node that sent it).
    pub(crate) fn agent_status_at(&self, agent_id: AgentId, status: AgentStatus, at: i64) {
        let told = lock(&self.shared.presence).set_agent_status(agent_id, status, at);
        self.changed_here(told);
    }

    /// `agent_id` signed out, was disabled or removed from a site: their connections on every
    /// node check their session again (and close when it no longer holds).
    pub fn agent_sessions_changed(&self, agent_id: AgentId) {
        let _ = self.shared.sessions_changed.send(agent_id);
        self.forward(Body::SessionsChanged { agent_id });
    }

    /// Something services keep a copy of was written (see [`Hub::staleness`]): the copies on
    /// every node are dropped.
    pub fn copies_stale(&self) {
        self.shared.stale.send_modify(|n| *n += 1);
        self.forward(Body::CopiesStale);
    }

    /// Changes whenever the copies services keep of the store's rows may be stale (here or on
    /// another node, or after a bus outage). A copy taken when it read `n` is good while it
    /// still reads `n`.
    pub fn staleness(&self) -> watch::Receiver<u64> {
        self.shared.stale.subscribe()
    }

    /// Listens for agents whose sessions changed (see [`Hub::agent_sessions_changed`]); a
    /// lagging receiver must assume its agent's changed.
    pub fn subscribe_session_changes(&self) -> broadcast::Receiver<AgentId> {
        self.shared.sessions_changed.subscribe()
    }

    /// Counts a new connection from `ip` (the client's address group, see
    /// `edge::ClientIp::group`) against `max_per_ip`, and every connection of this node
    /// against `max_total`.
    pub fn register(
        &self,
        ip: Option<IpAddr>,
        max_per_ip: u32,
        max_total: u32,
    ) -> Result<Registration, TooManyConnections> {
        let mut counts = lock(&self.shared.counts);
        if counts.total >= max_total {
            return Err(TooManyConnections::OnNode);
        }
        if let Some(ip) = ip {
            let count = counts.ips.entry(ip).or_insert(0);
            if *count >= max_per_ip {
                return Err(TooManyConnections::FromAddress);
            }
            *count += 1;
        }
        counts.total += 1;
        drop(counts);
        Ok(Registration {
            hub: self.clone(),
            ip,
            counted: true,
            who: None,
            linger: Duration::ZERO,
        })
    }

    /// Counts a subscriber that lagged and caught up from the store.
    pub fn record_lag(&self) {
        self.shared.lag_catch_ups.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times subscribers lagged and caught up from the store.
    pub fn lag_catch_ups(&self) -> u64 {
        self.shared.lag_catch_ups.load(Ordering::Relaxed)
    }

    /// Whether an agent of the site is connected, on any node, with status online.
    pub fn site_available(&self, site_id: SiteId) -> bool {
        lock(&self.shared.presence).available(site_id)
    }

    /// The agents of a site connected with status online, on any node, by id: who may be
    /// given chats.
    pub fn online_agents(&self, site_id: SiteId) -> Vec<AgentId> {
        lock(&self.shared.presence).online_agents(site_id)
    }

    /// Whether a visitor has a live connection on any node.
    pub fn visitor_online(&self, visitor_id: VisitorId) -> bool {
        lock(&self.shared.presence).visitor_online(visitor_id)
    }

    /// What an agent of `site_ids` is told right after `welcome`: the colleagues who are not
    /// offline, then each online visitor with their latest page view.
    pub fn agent_snapshot(&self, site_ids: &[SiteId]) -> Vec<ServerFrame> {
        lock(&self.shared.presence).snapshot(site_ids)
    }

    /// Takes one message token from a sender's bucket (`per_minute` capacity and refill).
    pub fn take_message_token(&self, sender: Sender, per_minute: u32) -> Result<(), u32> {
        let capacity = f64::from(per_minute.max(1));
        let now = Instant::now();
        let mut counts = lock(&self.shared.counts);
        counts.prune_rates(now);
        counts
            .rates
            .entry(sender)
            .or_insert_with(|| Bucket::full(capacity))
            .take(capacity, capacity / 60.0, now)
    }

    /// Tells this node's subscribers what a change of this node's roster means, and wakes
    /// the bus to publish the roster.
    fn changed_here(&self, told: Told) {
        self.shared.roster_changed.notify_one();
        self.changed(told);
    }

    /// Tells this node's subscribers what a presence change means.
    fn changed(&self, told: Told) {
        if told.catch_up {
            self.resync();
        }
        for (site_id, frame) in told.to_sites {
            self.shared.sites.publish(site_id, &Arc::new(frame));
        }
        for (site_id, frame) in told.to_site_visitors {
            self.shared.site_visitors.publish(site_id, &Arc::new(frame));
        }
    }

    /// Ends one connection's presence; the last one of a visitor or agent anywhere announces
    /// them offline (and may make their sites unavailable to visitors).
    /// Keeps `who` online for `linger` more, then releases them (unless they came back).
    fn linger(&self, who: Who, linger: Duration, runtime: &tokio::runtime::Handle) {
        self.shared.sweeper.get_or_init(|| {
            runtime.spawn(sweep_lingering(
                Arc::downgrade(&self.shared),
                self.shared.lingering_sooner.clone(),
            ));
        });
        let first = lock(&self.shared.lingering).keep(who, Instant::now() + linger);
        if first {
            self.shared.lingering_sooner.notify_one();
        }
    }

    fn release(&self, who: Who) {
        let told = {
            let mut presence = lock(&self.shared.presence);
            match who {
                Who::Visitor { visitor_id, .. } => presence.visitor_left(visitor_id),
                Who::Agent { agent_id, .. } => presence.agent_left(agent_id),
            }
        };
        self.changed_here(told);
    }
}

/// What the bus asks of the hub: events to send on, events from other nodes, rosters.
impl Hub {
    /// Connects the hub to a bus: from now on every event is also put in `outbox`.
    pub(crate) fn attach(&self, outbox: mpsc::Sender<Body>) {
        if self.shared.outbox.set(outbox).is_err() {
            tracing::error!("the hub was attached to a bus twice; keeping the first");
        }
    }

    /// Hands an event to the bus without waiting. When the bus cannot take it (Redis is slow
    /// or down), it is dropped and the other nodes are later told to catch up from the store.
    fn forward(&self, body: Body) {
        if let Some(outbox) = self.shared.outbox.get()
            && outbox.try_send(body).is_err()
        {
            self.shared.missed.store(true, Ordering::Relaxed);
        }
    }

    /// Whether an event was dropped since the last call (then the other nodes must catch up).
    pub(crate) fn take_missed(&self) -> bool {
        self.shared.missed.swap(false, Ordering::Relaxed)
    }

    /// Takes an event another node (`from`) sent: delivers it to this node's subscribers, or
    /// updates what this node knows of the other. Returns the version of `from`'s roster when
    /// it was a heartbeat naming one this node does not hold: the broker should fetch it.
    pub(crate) fn received(&self, from: &str, body: Body) -> Option<u64> {
        match body {
            Body::Site { site_id, frame } => self.shared.sites.publish(site_id, &frame),
            Body::Visitor { visitor_id, frame } => self.shared.visitors.publish(visitor_id, &frame),
            Body::SiteAndVisitor {
                site_id,
                visitor_id,
                frame,
            } => {
                self.shared.sites.publish(site_id, &frame);
                self.shared.visitors.publish(visitor_id, &frame);
            }
            Body::AgentStatus {
                agent_id,
                status,
                at,
            } => self.agent_status_at(agent_id, status, at),
            Body::SessionsChanged { agent_id } => {
                let _ = self.shared.sessions_changed.send(agent_id);
            }
            Body::CopiesStale => self.shared.stale.send_modify(|n| *n += 1),
            Body::Roster {
                version,
                roster: Some(roster),
            } => self.remote_roster(from, version, roster),
            Body::Roster {
                version,
                roster: None,
            } => {
                if lock(&self.shared.presence).remote_version(from) != Some(version) {
                    return Some(version);
                }
                self.heard(from);
            }
            Body::Resync => self.resync(),
            Body::Left => self.remote_left(from),
        }
        None
    }

    /// Completes when this node's roster changed since it was last published.
    pub(crate) async fn roster_changed(&self) {
        self.shared.roster_changed.notified().await;
    }

    /// This node's roster and its version.
    pub(crate) fn local_roster(&self) -> (u64, Roster) {
        lock(&self.shared.presence).local()
    }

    /// Counts every known node as just heard of: after the bus was down, they get a full
    /// [`super::nodes::PRESENCE_TTL`] to be heard again.
    pub(crate) fn heard_all(&self) {
        lock(&self.shared.presence).heard_all(Instant::now());
    }

    /// Withdraws this node from the bus as it shuts down, waiting briefly for that to be
    /// published.
    pub(crate) async fn leave(&self) {
        let Some(outbox) = self.shared.outbox.get() else {
            return;
        };
        let left = async {
            if outbox.send(Body::Left).await.is_ok() {
                outbox.closed().await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), left).await;
    }

    /// Notes a heartbeat from `node`.
    fn heard(&self, node: &str) {
        lock(&self.shared.presence).heard(node, Instant::now());
    }

    /// Takes another node's roster.
    pub(crate) fn remote_roster(&self, node: &str, version: u64, roster: Roster) {
        let told =
            lock(&self.shared.presence).replace_remote(node, version, roster, Instant::now());
        for (site_id, frame) in &told.to_sites {
            if matches!(
                frame,
                ServerFrame::AgentPresence {
                    status: AgentStatus::Online,
                    ..
                }
            ) {
                // Nobody listening is fine: a single node has no one to tell.
                let _ = self.shared.online_elsewhere.send(*site_id);
            }
        }
        self.changed(told);
    }

    /// Sites where an agent on another node came online, as this node hears of them.
    pub fn online_elsewhere(&self) -> broadcast::Receiver<SiteId> {
        self.shared.online_elsewhere.subscribe()
    }

    /// Another node shut down: its roster counts for the time its clients take to move.
    fn remote_left(&self, node: &str) {
        lock(&self.shared.presence).left(
            node,
            Instant::now(),
            super::nodes::PRESENCE_TTL,
            NAVIGATION_GRACE,
        );
    }

    /// Forgets the nodes not heard of for `ttl`.
    pub(crate) fn expire_remote(&self, ttl: Duration) {
        let Some(since) = Instant::now().checked_sub(ttl) else {
            return;
        };
        let told = lock(&self.shared.presence).expire(since);
        self.changed(told);
    }

    /// Tells every session on this node to catch up from the store: live frames may have been
    /// missed while the bus was down (and so may news of a write that makes copies stale).
    pub(crate) fn resync(&self) {
        self.shared.resyncs.send_modify(|n| *n += 1);
        self.shared.stale.send_modify(|n| *n += 1);
    }

    /// Changes whenever sessions must catch up from the store.
    pub fn resyncs(&self) -> watch::Receiver<u64> {
        self.shared.resyncs.subscribe()
    }
}

impl Registration {
    /// Keeps the presence this connection counts for `linger` after it ends. The per-IP place
    /// is released at once.
    pub fn linger(&mut self, linger: Duration) {
        self.linger = linger;
    }

    /// Marks whose connection this is. The first connection of someone anywhere announces them
    /// online (and, for an agent, may make their sites available to visitors).
    pub fn identify(&mut self, who: Who) {
        self.who = Some(who.clone());
        let hub = &self.hub;
        let told = {
            let mut presence = lock(&hub.shared.presence);
            match who {
                Who::Visitor {
                    site_id,
                    visitor_id,
                    details,
                } => presence.visitor_arrived(site_id, visitor_id, details),
                Who::Agent { agent_id, site_ids } => {
                    presence.agent_arrived(agent_id, site_ids, crate::util::now_ms())
                }
            }
        };
        hub.changed_here(told);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if std::mem::take(&mut self.counted) {
            let mut counts = lock(&self.hub.shared.counts);
            counts.total = counts.total.saturating_sub(1);
            if let Some(ip) = self.ip.take()
                && let Some(count) = counts.ips.get_mut(&ip)
            {
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
            self.hub.linger(who, self.linger, &runtime);
            return;
        }
        self.hub.release(who);
    }
}

/// How long the sweeper sleeps with nothing lingering before it checks whether its hub is gone.
const SWEEPER_IDLE: Duration = Duration::from_secs(30);

/// The hub's one sweeper: releases each lingering presence when it is due, until the hub is
/// dropped. It holds the hub only while releasing, never while it sleeps.
async fn sweep_lingering(shared: Weak<Shared>, sooner: Arc<Notify>) {
    loop {
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let hub = Hub { shared };
            let due = lock(&hub.shared.lingering).take_due(Instant::now());
            for who in due {
                hub.release(who);
            }
            lock(&hub.shared.lingering).next()
        };
        let wake = next.map_or_else(
            || tokio::time::Instant::now() + SWEEPER_IDLE,
            tokio::time::Instant::from_std,
        );
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = sooner.notified() => {}
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

    #[test]
    fn idle_rate_buckets_are_dropped_once_there_are_many() {
        let start = Instant::now();
        let mut counts = Counts::default();
        for id in 0..PRUNE_RATES_FROM as i64 {
            counts
                .rates
                .insert(Sender::Visitor(VisitorId(id)), Bucket::full(60.0));
        }
        // A minute later one of them is busy again.
        let later = start + IDLE_BUCKET + Duration::from_secs(1);
        let busy = counts
            .rates
            .get_mut(&Sender::Visitor(VisitorId(7)))
            .expect("bucket");
        assert!(busy.take(60.0, 1.0, later).is_ok());
        counts.prune_rates(later);
        assert_eq!(counts.rates.len(), 1, "only the busy bucket stays");
        assert!(counts.rates.contains_key(&Sender::Visitor(VisitorId(7))));
        // Below the threshold nothing is scanned.
        counts.prune_rates(later + IDLE_BUCKET * 2);
        assert_eq!(counts.rates.len(), 1);
    }

    #[test]
    fn topics_nobody_listens_to_are_dropped_as_new_ones_come() {
        let hub = Hub::default();
        // A visitor who looked at a page and left: subscribed, never sent anything.
        for visitor in 0..10 * PRUNE_TOPICS_FROM as i64 {
            drop(hub.subscribe_visitor(VisitorId(visitor)));
        }
        let mut staying = hub.subscribe_visitor(VisitorId(-1));
        let topics = hub.shared.visitors.len();
        assert!(topics <= PRUNE_TOPICS_FROM + 1, "{topics} topics kept");
        // A topic with a subscriber is never dropped, however many come and go.
        for visitor in 0..10 * PRUNE_TOPICS_FROM as i64 {
            drop(hub.subscribe_visitor(VisitorId(visitor)));
        }
        hub.to_visitor(VisitorId(-1), ServerFrame::Availability { online: true });
        assert!(matches!(
            *staying.try_recv().expect("still subscribed"),
            ServerFrame::Availability { online: true }
        ));
    }

    #[tokio::test]
    async fn per_ip_cap_and_release() {
        let hub = Hub::default();
        let ip: IpAddr = "127.0.0.9".parse().expect("ip");
        let first = hub.register(Some(ip), 2, 10).expect("first");
        let _second = hub.register(Some(ip), 2, 10).expect("second");
        assert_eq!(
            hub.register(Some(ip), 2, 10).err(),
            Some(TooManyConnections::FromAddress),
            "third refused"
        );
        drop(first);
        assert!(
            hub.register(Some(ip), 2, 10).is_ok(),
            "a place was released"
        );
    }

    #[tokio::test]
    async fn node_cap_counts_every_address() {
        let hub = Hub::default();
        let a = hub.register(Some("10.0.0.1".parse().expect("ip")), 5, 2);
        let _b = hub.register(Some("10.0.0.2".parse().expect("ip")), 5, 2);
        assert_eq!(
            hub.register(Some("10.0.0.3".parse().expect("ip")), 5, 2)
                .err(),
            Some(TooManyConnections::OnNode)
        );
        drop(a);
        assert!(hub.register(None, 5, 2).is_ok(), "a place was released");
    }

    #[tokio::test]
    async fn last_connection_announces_offline() {
        let hub = Hub::default();
        let mut agents = hub.subscribe_site(SiteId(1));
        let who = Who::Visitor {
            site_id: SiteId(1),
            visitor_id: VisitorId(5),
            details: None,
        };
        let mut a = hub.register(None, 10, 10).expect("a");
        let mut b = hub.register(None, 10, 10).expect("b");
        a.identify(who.clone());
        b.identify(who);
        let arrived = agents.recv().await.expect("presence");
        assert!(matches!(
            *arrived,
            ServerFrame::VisitorPresence { online: true, .. }
        ));
        drop(a);
        assert!(hub.visitor_online(VisitorId(5)));
        drop(b);
        assert!(!hub.visitor_online(VisitorId(5)));
        let frame = agents.recv().await.expect("presence");
        assert!(matches!(
            *frame,
            ServerFrame::VisitorPresence { online: false, .. }
        ));
    }

    /// Lingering presences stay online past their connections and are released in the order
    /// they are due by the hub's one sweeper; a visitor who came back meanwhile stays online.
    #[tokio::test]
    async fn lingering_presence_is_released_when_due_unless_the_visitor_came_back() {
        let hub = Hub::default();
        let mut agents = hub.subscribe_site(SiteId(1));
        let visitor = |id| Who::Visitor {
            site_id: SiteId(1),
            visitor_id: VisitorId(id),
            details: None,
        };
        let connect = |id, linger| {
            let mut registration = hub.register(None, 10, 10).expect("place");
            registration.identify(visitor(id));
            registration.linger(linger);
            registration
        };
        let long = connect(1, Duration::from_millis(400));
        let short = connect(2, Duration::from_millis(50));
        let back = connect(3, Duration::from_millis(50));
        drop(long);
        drop(short);
        drop(back);
        let _returned = connect(3, Duration::ZERO);
        for id in [1, 2, 3] {
            assert!(hub.visitor_online(VisitorId(id)), "{id} lingers");
        }
        // Arrivals (four), then the two departures, the sooner due first.
        let mut left = Vec::new();
        while left.len() < 2 {
            if let ServerFrame::VisitorPresence {
                visitor_id,
                online: false,
                ..
            } = *agents.recv().await.expect("presence")
            {
                left.push(visitor_id.0);
            }
        }
        assert_eq!(left, vec![2, 1]);
        assert!(hub.visitor_online(VisitorId(3)), "came back: still online");
        assert_eq!(lock(&hub.shared.lingering).len(), 0);
    }
}

#[cfg(test)]
mod availability_tests {
    use super::*;

    #[tokio::test]
    async fn visitors_learn_when_a_site_gains_or_loses_its_last_online_agent() {
        let hub = Hub::default();
        let mut visitors = hub.subscribe_site_visitors(SiteId(7));
        assert!(!hub.site_available(SiteId(7)));
        let mut agent = hub.register(None, 10, 10).expect("agent");
        agent.identify(Who::Agent {
            agent_id: AgentId(1),
            site_ids: vec![SiteId(7)],
        });
        assert!(hub.site_available(SiteId(7)));
        assert!(matches!(
            *visitors.recv().await.expect("flip"),
            ServerFrame::Availability { online: true }
        ));
        hub.set_agent_status(AgentId(1), AgentStatus::Away);
        assert!(
            !hub.site_available(SiteId(7)),
            "away agents take no new chats"
        );
        assert!(matches!(
            *visitors.recv().await.expect("flip"),
            ServerFrame::Availability { online: false }
        ));
        assert_eq!(
            hub.agent_snapshot(&[SiteId(7)]).len(),
            1,
            "an away colleague is still listed"
        );
        drop(agent);
        assert!(hub.agent_snapshot(&[SiteId(7)]).is_empty());
    }
}
