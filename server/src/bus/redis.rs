//! The Redis bus. One pub/sub channel per cluster carries every node's events as JSON
//! [`Envelope`]s. Each node also keeps its roster (who is connected to it) under a key that
//! expires after [`PRESENCE_TTL`], refreshed every [`HEARTBEAT`], so a node that died is
//! forgotten within that time and a node that joins reads the others' rosters at once.
//!
//! Publishing never blocks the hub: events wait in a bounded outbox and are published in
//! pipelined batches. When Redis is slow or down, events that do not fit are dropped, and on
//! every (re)connection the node catches its own sessions up from the store and tells the
//! other nodes to do the same (`Body::Resync`), so nothing published while the bus was down is
//! missed for good. While Redis is down each node keeps serving its own clients and keeps the
//! last rosters it heard.

use super::Seal;
use crate::realtime::broker::{Broker, OUTBOX};
use crate::realtime::hub::Hub;
use crate::realtime::nodes::{Body, Envelope, HEARTBEAT, PRESENCE_TTL};
use crate::realtime::presence::Roster;
use futures_util::StreamExt;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Most events published in one pipelined round trip.
const BATCH: usize = 512;
/// Longest wait for Redis to connect or answer before the connection counts as broken.
const TIMEOUT: Duration = Duration::from_secs(2);
/// First and longest pause between reconnection attempts.
const RETRY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// Shortest interval between two publications of a changed roster: a burst of arrivals is
/// published once.
const ROSTER_EVERY: Duration = Duration::from_millis(200);

/// A node's roster as kept under its key.
#[derive(Serialize, Deserialize)]
struct Stored {
    /// The roster's version: a heartbeat naming another one sends readers here.
    version: u64,
    /// Who is connected to the node.
    roster: Roster,
}

/// One node's link to the cluster's channel and keys.
struct Link {
    /// Opens the connections, again after each failure.
    client: redis::Client,
    /// Where events come from and go to.
    hub: Hub,
    /// This node's name on the bus, new at every start.
    node: String,
    /// The channel all events travel on.
    channel: String,
    /// Prefix of the keys holding each node's roster.
    roster_prefix: String,
    /// The set of node names that published a roster (dead ones are pruned when read).
    nodes: String,
    /// Signs what this node publishes and checks what it receives.
    seal: Seal,
}

/// Why a connection to Redis ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer within {TIMEOUT:?}")]
    Timeout,
    #[error("the subscription ended")]
    Unsubscribed,
    #[error("the subscription went silent (not even this node's heartbeat came back)")]
    Deaf,
}

/// The nodes' link through the Redis server at `url` (`bus.url`).
pub struct RedisBroker {
    /// `redis://…`, checked when the configuration was read.
    pub url: url::Url,
}

impl Broker for RedisBroker {
    fn start(&self, hub: &Hub, secret: &str, tasks: &crate::tasks::Tasks) {
        let client = match redis::Client::open(self.url.as_str()) {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "bus.url cannot be used; this node runs alone");
                return;
            }
        };
        let seal = Seal::new(secret);
        let (outbox, queued) = mpsc::channel(OUTBOX);
        hub.attach(outbox);
        let link = Link {
            client,
            hub: hub.clone(),
            node: crate::util::random_hex::<8>(),
            channel: format!("kefu:{}:events", seal.cluster()),
            roster_prefix: format!("kefu:{}:roster:", seal.cluster()),
            nodes: format!("kefu:{}:nodes", seal.cluster()),
            seal,
        };
        tasks.spawn_loop(link.run(queued));
    }
}

impl Link {
    /// Connects, serves until the connection breaks, and connects again, until the node
    /// leaves.
    async fn run(self, mut queued: mpsc::Receiver<Body>) {
        let mut retry = RETRY.0;
        // Whether events of this node may not have reached the others: then, once connected,
        // it tells them to catch up from the store. Not so at start.
        let mut lost = false;
        loop {
            match self.serve(&mut queued, &mut retry, lost).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "the Redis bus is down; this node serves its own clients and reconnects")
                }
            }
            lost = true;
            // What was queued while down is dropped: the other nodes catch up from the store
            // when this node reconnects. A node leaving meanwhile just leaves.
            while let Ok(body) = queued.try_recv() {
                if matches!(body, Body::Left) {
                    return;
                }
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY.1);
        }
    }

    /// One connection's life: `Ok` when the node left, `Err` when the connection broke.
    async fn serve(
        &self,
        queued: &mut mpsc::Receiver<Body>,
        retry: &mut Duration,
        lost: bool,
    ) -> Result<(), LinkError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut pubsub = within(self.client.get_async_pubsub()).await?;
        within(pubsub.subscribe(&self.channel)).await?;
        let messages = pubsub.into_on_message();
        *retry = RETRY.0;
        tracing::info!(node = %self.node, "connected to the Redis bus");
        // Whatever crossed the bus while this node was not listening is in the store.
        self.hub.heard_all();
        self.hub.resync();
        if self.hub.take_missed() || lost {
            self.publish(&mut conn, Body::Resync).await?;
        }
        self.read_rosters(&mut conn).await?;
        // Receiving and sending run side by side on one task over the one multiplexed
        // connection (it carries both sides' commands at once), so neither waits for the
        // other's round trips.
        tokio::select! {
            ended = self.receive_all(conn.clone(), messages) => ended,
            left = self.send_all(conn, queued) => left,
        }
    }

    /// Delivers the other nodes' messages until the subscription breaks.
    async fn receive_all(
        &self,
        mut conn: MultiplexedConnection,
        mut messages: redis::aio::PubSubStream,
    ) -> Result<(), LinkError> {
        loop {
            // This node hears its own heartbeat every HEARTBEAT: silence means the
            // subscription died without its connection saying so.
            let message = tokio::time::timeout(HEARTBEAT * 3, messages.next())
                .await
                .map_err(|_| LinkError::Deaf)?
                .ok_or(LinkError::Unsubscribed)?;
            self.receive(&mut conn, message.get_payload_bytes()).await?;
        }
    }

    /// Publishes this node's events, roster and heartbeats: `Ok` when the node left.
    async fn send_all(
        &self,
        mut conn: MultiplexedConnection,
        queued: &mut mpsc::Receiver<Body>,
    ) -> Result<(), LinkError> {
        let mut published: Option<u64> = None;
        self.publish_roster(&mut conn, &mut published).await?;
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        let mut last_roster = Instant::now();
        // When a changed roster is to be published (never sooner than ROSTER_EVERY after the
        // previous one); `None` while nothing changed.
        let mut roster_due: Option<Instant> = None;
        loop {
            let due = roster_due.unwrap_or_else(|| Instant::now() + HEARTBEAT);
            tokio::select! {
                body = queued.recv() => {
                    let Some(body) = body else { return Ok(()) };
                    if self.publish_batch(&mut conn, body, queued).await? {
                        return Ok(());
                    }
                }
                () = self.hub.roster_changed(), if roster_due.is_none() => {
                    roster_due = Some(last_roster + ROSTER_EVERY);
                }
                () = tokio::time::sleep_until(due.into()), if roster_due.is_some() => {
                    roster_due = None;
                    self.publish_roster(&mut conn, &mut published).await?;
                    last_roster = Instant::now();
                }
                _ = heartbeat.tick() => {
                    if self.hub.take_missed() {
                        self.publish(&mut conn, Body::Resync).await?;
                    }
                    self.publish_roster(&mut conn, &mut published).await?;
                    self.hub.expire_remote(PRESENCE_TTL);
                }
            }
        }
    }

    /// A message for the channel: the envelope as JSON, sealed.
    fn envelope(&self, body: Body) -> String {
        let json = serde_json::to_string(&Envelope {
            from: self.node.clone(),
            body,
        })
        .unwrap_or_default();
        self.seal.seal(&json)
    }

    async fn publish(&self, conn: &mut MultiplexedConnection, body: Body) -> Result<(), LinkError> {
        within(
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(self.envelope(body))
                .query_async::<()>(conn),
        )
        .await
    }

    /// Publishes `first` and whatever else is queued, in one round trip. Returns whether the
    /// node is leaving (then its roster is withdrawn too).
    async fn publish_batch(
        &self,
        conn: &mut MultiplexedConnection,
        first: Body,
        queued: &mut mpsc::Receiver<Body>,
    ) -> Result<bool, LinkError> {
        let mut pipe = redis::pipe();
        let mut next = Some(first);
        let mut count = 0;
        let mut leaving = false;
        while let Some(body) = next.take() {
            leaving |= matches!(body, Body::Left);
            pipe.cmd("PUBLISH")
                .arg(&self.channel)
                .arg(self.envelope(body))
                .ignore();
            count += 1;
            if count < BATCH && !leaving {
                next = queued.try_recv().ok();
            }
        }
        if leaving {
            pipe.cmd("DEL")
                .arg(format!("{}{}", self.roster_prefix, self.node))
                .ignore();
            pipe.cmd("SREM").arg(&self.nodes).arg(&self.node).ignore();
        }
        within(pipe.query_async::<()>(conn)).await?;
        Ok(leaving)
    }

    /// Stores this node's roster under its key (for nodes that join later or missed it) and
    /// publishes it when it changed, else a heartbeat naming its version.
    async fn publish_roster(
        &self,
        conn: &mut MultiplexedConnection,
        published: &mut Option<u64>,
    ) -> Result<(), LinkError> {
        let (version, roster) = self.hub.local_roster();
        let changed = *published != Some(version);
        let stored = self.seal.seal(
            &serde_json::to_string(&Stored {
                version,
                roster: roster.clone(),
            })
            .unwrap_or_default(),
        );
        let envelope = self.envelope(Body::Roster {
            version,
            roster: changed.then_some(roster),
        });
        let ttl = PRESENCE_TTL.as_millis() as u64;
        within(
            redis::pipe()
                .cmd("SET")
                .arg(format!("{}{}", self.roster_prefix, self.node))
                .arg(stored)
                .arg("PX")
                .arg(ttl)
                .ignore()
                .cmd("SADD")
                .arg(&self.nodes)
                .arg(&self.node)
                .ignore()
                .cmd("PUBLISH")
                .arg(&self.channel)
                .arg(envelope)
                .ignore()
                .query_async::<()>(conn),
        )
        .await?;
        *published = Some(version);
        Ok(())
    }

    /// Reads every other node's stored roster (when this node starts or comes back).
    async fn read_rosters(&self, conn: &mut MultiplexedConnection) -> Result<(), LinkError> {
        let nodes: Vec<String> =
            within(redis::cmd("SMEMBERS").arg(&self.nodes).query_async(conn)).await?;
        for node in nodes.into_iter().filter(|n| *n != self.node) {
            match self.read_roster(conn, &node).await? {
                Some(stored) => self.hub.remote_roster(&node, stored.version, stored.roster),
                None => {
                    within(
                        redis::cmd("SREM")
                            .arg(&self.nodes)
                            .arg(&node)
                            .query_async::<()>(conn),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn read_roster(
        &self,
        conn: &mut MultiplexedConnection,
        node: &str,
    ) -> Result<Option<Stored>, LinkError> {
        let text: Option<String> = within(
            redis::cmd("GET")
                .arg(format!("{}{node}", self.roster_prefix))
                .query_async(conn),
        )
        .await?;
        Ok(text.and_then(|t| {
            let json = self.seal.open(t.as_bytes())?;
            serde_json::from_slice(json).ok()
        }))
    }

    /// Handles another node's message.
    async fn receive(
        &self,
        conn: &mut MultiplexedConnection,
        payload: &[u8],
    ) -> Result<(), LinkError> {
        let Some(json) = self.seal.open(payload) else {
            tracing::warn!("a message on the bus without this cluster's seal was ignored");
            return Ok(());
        };
        let envelope: Envelope = match serde_json::from_slice(json) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, "an unreadable message on the bus was ignored");
                return Ok(());
            }
        };
        if envelope.from == self.node {
            return Ok(());
        }
        let from = envelope.from;
        if self.hub.received(&from, envelope.body).is_some()
            && let Some(stored) = self.read_roster(conn, &from).await?
        {
            // A roster published while this node was not listening.
            self.hub.remote_roster(&from, stored.version, stored.roster);
        }
        Ok(())
    }
}

/// `future`, or [`LinkError::Timeout`] when Redis takes longer than [`TIMEOUT`].
async fn within<T>(
    future: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, LinkError> {
    Ok(tokio::time::timeout(TIMEOUT, future)
        .await
        .map_err(|_| LinkError::Timeout)??)
}
