//! The seam between the hub and whatever carries its events to the other nodes sharing the
//! database. A broker takes what the hub forwards (the outbox it hands [`Hub::attach`]) to the
//! other nodes, and gives the hub theirs ([`Hub::received`]); the hub never knows which broker
//! it has. Redis pub/sub is one (`crate::bus::redis`); [`MemoryBroker`] links hubs in one
//! process, so the cluster's rules (events cross, presence is shared, a node that leaves or
//! dies is forgotten) are tested without a server. A new broker (NATS, say) implements
//! [`Broker`] and touches nothing here.
//!
//! Whatever the broker, it is never the record: messages are committed before the hub hears of
//! them, and a node that may have missed events catches up from the store ([`Hub::resync`]).

use super::hub::Hub;
use super::nodes::{Body, Envelope, HEARTBEAT, PRESENCE_TTL};
use crate::tasks::Tasks;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

/// Events a node's broker may hold before the hub counts them as missed (the other nodes then
/// catch up from the store).
pub const OUTBOX: usize = 16_384;

/// Carries one node's events to the other nodes of its cluster and theirs to it.
pub trait Broker: Send + Sync {
    /// Links `hub` to the other nodes that share `secret` (the database's token secret, which
    /// keeps two installs on one broker apart), in the background on `tasks`, until the node
    /// leaves ([`Hub::leave`]).
    fn start(&self, hub: &Hub, secret: &str, tasks: &Tasks);
}

/// Hubs in one process linked as the nodes of one cluster. Every event and every roster
/// crosses as the same JSON a network broker carries.
#[derive(Clone)]
pub struct MemoryBroker {
    /// Every node's envelopes, as JSON; each node reads all of them and skips its own.
    channel: broadcast::Sender<Arc<str>>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        MemoryBroker {
            channel: broadcast::Sender::new(OUTBOX),
        }
    }
}

impl Broker for MemoryBroker {
    fn start(&self, hub: &Hub, _secret: &str, tasks: &Tasks) {
        let (outbox, queued) = mpsc::channel(OUTBOX);
        hub.attach(outbox);
        let node = MemoryNode {
            hub: hub.clone(),
            name: crate::util::random_hex::<8>(),
            channel: self.channel.clone(),
        };
        let incoming = self.channel.subscribe();
        tasks.spawn_loop(node.run(queued, incoming));
    }
}

/// One hub's side of a [`MemoryBroker`].
struct MemoryNode {
    /// Where events come from and go to.
    hub: Hub,
    /// This node's name, new at every start.
    name: String,
    /// The shared channel.
    channel: broadcast::Sender<Arc<str>>,
}

impl MemoryNode {
    /// Carries events both ways until the node leaves. Rosters always travel whole (there is
    /// no store to fetch one from), on every change and every heartbeat.
    async fn run(
        self,
        mut queued: mpsc::Receiver<Body>,
        mut incoming: broadcast::Receiver<Arc<str>>,
    ) {
        self.publish_roster();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                body = queued.recv() => match body {
                    None => return,
                    Some(Body::Left) => {
                        self.publish(Body::Left);
                        return;
                    }
                    Some(body) => self.publish(body),
                },
                () = self.hub.roster_changed() => self.publish_roster(),
                _ = heartbeat.tick() => {
                    if self.hub.take_missed() {
                        self.publish(Body::Resync);
                    }
                    self.publish_roster();
                    self.hub.expire_remote(PRESENCE_TTL);
                }
                text = incoming.recv() => match text {
                    Ok(text) => self.receive(&text),
                    // Events went by unread: catch up from the store, as after a bus outage.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.hub.resync(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    fn publish(&self, body: Body) {
        let envelope = Envelope {
            from: self.name.clone(),
            body,
        };
        match serde_json::to_string(&envelope) {
            // No receiver is fine: no other node is listening yet.
            Ok(text) => {
                let _ = self.channel.send(text.into());
            }
            Err(error) => tracing::error!(%error, "an event could not be written as JSON"),
        }
    }

    fn publish_roster(&self) {
        let (version, roster) = self.hub.local_roster();
        self.publish(Body::Roster {
            version,
            roster: Some(roster),
        });
    }

    fn receive(&self, text: &str) {
        match serde_json::from_str::<Envelope>(text) {
            Ok(envelope) if envelope.from != self.name => {
                // Rosters travel whole here, so there is never one to fetch.
                let _ = self.hub.received(&envelope.from, envelope.body);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "an unreadable event was ignored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::hub::Who;
    use protocol::ServerFrame;
    use protocol::{SiteId, VisitorId};
    use std::time::Duration;

    /// Two hubs linked by one memory broker, as two nodes.
    fn cluster() -> (Hub, Hub, Tasks) {
        let broker = MemoryBroker::default();
        let tasks = Tasks::default();
        let (a, b) = (Hub::default(), Hub::default());
        broker.start(&a, "secret", &tasks);
        broker.start(&b, "secret", &tasks);
        (a, b, tasks)
    }

    /// Waits until `done` holds (the callers bound the wait).
    async fn until(mut done: impl FnMut() -> bool) {
        while !done() {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn an_event_published_on_one_node_reaches_the_subscribers_of_the_other() {
        let (a, b, _tasks) = cluster();
        let mut agents_on_b = b.subscribe_site(SiteId(7));
        let mut visitor_on_b = b.subscribe_visitor(VisitorId(42));
        a.to_site_and_visitor(
            SiteId(7),
            VisitorId(42),
            ServerFrame::Availability { online: true },
        );
        for topic in [&mut agents_on_b, &mut visitor_on_b] {
            let frame = tokio::time::timeout(Duration::from_secs(10), topic.recv())
                .await
                .expect("the event crosses")
                .expect("a frame");
            assert_eq!(*frame, ServerFrame::Availability { online: true });
        }
    }

    #[tokio::test]
    async fn presence_is_shared_and_a_node_that_leaves_takes_its_visitors_with_it() {
        let (a, b, _tasks) = cluster();
        let mut registration = a
            .register(None, 10, 10)
            .unwrap_or_else(|_| panic!("registered"));
        registration.identify(Who::Visitor {
            site_id: SiteId(7),
            visitor_id: VisitorId(42),
            details: None,
        });
        tokio::time::timeout(
            Duration::from_secs(30),
            until(|| b.visitor_online(VisitorId(42))),
        )
        .await
        .expect("node B hears of node A's visitor");
        // Node A shuts down with the visitor still connected: node B forgets them once
        // their connection had time to move to another node.
        a.leave().await;
        tokio::time::timeout(
            Duration::from_secs(30),
            until(|| !b.visitor_online(VisitorId(42))),
        )
        .await
        .expect("the visitor goes offline on node B");
        drop(registration);
    }

    #[tokio::test]
    async fn a_write_that_makes_copies_stale_reaches_the_other_node() {
        let (a, b, _tasks) = cluster();
        let mut on_b = b.staleness();
        let before = *on_b.borrow_and_update();
        a.copies_stale();
        tokio::time::timeout(Duration::from_secs(30), on_b.changed())
            .await
            .expect("node B hears of it")
            .expect("a hub");
        assert!(*on_b.borrow() > before);
        // A bus outage may have hidden such news: the copies go stale too.
        b.resync();
        assert!(on_b.has_changed().expect("a hub"));
    }
}
