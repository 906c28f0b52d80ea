//! What the hub exchanges with the other kefu nodes: the events it forwards and the ones it is
//! handed ([`crate::realtime::hub::Hub::attach`] and `received`). Which broker carries them
//! (Redis pub/sub in `crate::bus::redis`, [`super::broker::MemoryBroker`] in one process, or
//! none on a single node) is not the hub's concern: this module and [`super::broker`] are the
//! whole of what they share, so the hub never imports a broker.

use crate::realtime::presence::Roster;
use protocol::{AgentId, AgentStatus, ServerFrame, SiteId, VisitorId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How long a node's roster counts without news from it: a node that died takes its visitors
/// and agents offline within this time.
pub const PRESENCE_TTL: Duration = Duration::from_secs(5);

/// How often a node publishes that it is alive (and its roster, when it changed).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// What travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The node that sent it; a node ignores its own.
    pub from: String,
    /// The event.
    pub body: Body,
}

/// One event for the other nodes. Externally tagged: an internal tag (or `flatten`) makes
/// serde buffer the content, which loses the integer keys of a roster's maps.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// For a site's agents.
    Site {
        site_id: SiteId,
        frame: Arc<ServerFrame>,
    },
    /// For a visitor's connections.
    Visitor {
        visitor_id: VisitorId,
        frame: Arc<ServerFrame>,
    },
    /// For both (a message, a read mark).
    SiteAndVisitor {
        site_id: SiteId,
        visitor_id: VisitorId,
        frame: Arc<ServerFrame>,
    },
    /// An agent set their status at `at` (ms): their connections on every node take it.
    AgentStatus {
        agent_id: AgentId,
        status: AgentStatus,
        at: i64,
    },
    /// An agent's sessions, role or sites changed: their connections re-check their session.
    SessionsChanged { agent_id: AgentId },
    /// The sender wrote rows that nodes keep copies of (webhooks, sites, bans): read them again.
    CopiesStale,
    /// The sender's connected visitors and agents (`None`: only a heartbeat naming the version
    /// it holds, so a node that missed that version reads it from Redis).
    Roster {
        version: u64,
        roster: Option<Roster>,
    },
    /// The sender may have failed to publish events: catch up from the store.
    Resync,
    /// The sender shut down: forget its roster once its clients had time to move, rather than
    /// when it expires.
    Left,
}
