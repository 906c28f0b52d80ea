//! The bus: how the hub's events reach the other kefu nodes that share this database.
//!
//! On one node the bus is in-process: the hub's own topics are all there is, and nothing is
//! forwarded. With `bus.url = "redis://…"` each node publishes every event it fans out on one
//! Redis pub/sub channel and delivers the other nodes' events to its own subscribers (see
//! [`redis`]). The bus is never the record: messages are committed before they are published,
//! ordering comes from the store's seq, a gap a subscriber notices is read from the store, and
//! when the bus was down every session catches up from the store (`Hub::resync`). So Redis
//! going away delays live delivery between nodes; it loses nothing.

pub mod redis;

use crate::realtime::hub::Hub;
use crate::realtime::presence::Roster;
use protocol::{AgentStatus, ServerFrame};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How often a node publishes that it is alive (and its roster, when it changed).
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a node's roster counts without news from it: a node that died takes its visitors
/// and agents offline within this time.
pub const PRESENCE_TTL: Duration = Duration::from_secs(5);

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
        site_id: i64,
        frame: Arc<ServerFrame>,
    },
    /// For a visitor's connections.
    Visitor {
        visitor_id: i64,
        frame: Arc<ServerFrame>,
    },
    /// For both (a message, a read mark).
    SiteAndVisitor {
        site_id: i64,
        visitor_id: i64,
        frame: Arc<ServerFrame>,
    },
    /// An agent set their status at `at` (ms): their connections on every node take it.
    AgentStatus {
        agent_id: i64,
        status: AgentStatus,
        at: i64,
    },
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

/// Which bus the nodes share.
#[derive(Clone, Default)]
pub enum Bus {
    /// A single node: nothing to forward.
    #[default]
    InProcess,
    /// Redis pub/sub at this URL.
    Redis(url::Url),
}

/// Shown by `kefu config show`: the URL without its password.
impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bus::InProcess => f.write_str("InProcess"),
            Bus::Redis(url) => {
                let mut shown = url.clone();
                if shown.password().is_some() {
                    // Only fails for URLs without a host, which a password implies.
                    let _ = shown.set_password(Some("***"));
                }
                f.debug_tuple("Redis").field(&shown.as_str()).finish()
            }
        }
    }
}

/// Why `bus.url` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("{0:?} is not a URL such as redis://127.0.0.1:6379")]
    NotAUrl(String),
    #[error("`{0}` buses are not supported: use redis://")]
    Scheme(String),
}

impl Bus {
    /// The bus `bus.url` names (`None`: in-process).
    pub fn parse(url: Option<&str>) -> Result<Bus, BusError> {
        let Some(text) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Bus::InProcess);
        };
        let url = url::Url::parse(text).map_err(|_| BusError::NotAUrl(text.to_string()))?;
        match url.scheme() {
            "redis" => Ok(Bus::Redis(url)),
            other => Err(BusError::Scheme(other.to_string())),
        }
    }

    /// Connects `hub` to the bus. `cluster` names the nodes that belong together: those
    /// sharing one database.
    pub fn start(&self, hub: &Hub, cluster: &str) {
        match self {
            Bus::InProcess => {}
            Bus::Redis(url) => redis::start(url, hub, cluster),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_redis_urls_make_a_bus() {
        assert!(matches!(Bus::parse(None), Ok(Bus::InProcess)));
        assert!(matches!(Bus::parse(Some(" ")), Ok(Bus::InProcess)));
        assert!(matches!(
            Bus::parse(Some("redis://127.0.0.1:6379")),
            Ok(Bus::Redis(_))
        ));
        assert!(matches!(
            Bus::parse(Some("nats://127.0.0.1:4222")),
            Err(BusError::Scheme(_))
        ));
        assert!(matches!(
            Bus::parse(Some("127.0.0.1")),
            Err(BusError::NotAUrl(_))
        ));
        let secret = Bus::parse(Some("redis://:hunter2@10.0.0.5:6379")).expect("url");
        assert_eq!(
            format!("{secret:?}"),
            r#"Redis("redis://:***@10.0.0.5:6379")"#,
            "the password is never shown"
        );
    }

    #[test]
    fn a_roster_crosses_as_json_and_back() {
        let mut presence = crate::realtime::presence::Presence::default();
        presence.visitor_arrived(3, 17, None);
        let (version, roster) = presence.local();
        let text = serde_json::to_string(&Envelope {
            from: "a".into(),
            body: Body::Roster {
                version,
                roster: Some(roster),
            },
        })
        .expect("json");
        let back: Envelope = serde_json::from_str(&text).expect("parse");
        let Body::Roster {
            roster: Some(roster),
            ..
        } = back.body
        else {
            panic!("a roster: {text}");
        };
        let mut here = crate::realtime::presence::Presence::default();
        here.replace_remote("a", version, roster, std::time::Instant::now());
        assert!(here.visitor_online(17));
    }

    #[test]
    fn an_event_crosses_as_json_and_back() {
        let body = Body::Site {
            site_id: 3,
            frame: Arc::new(ServerFrame::Availability { online: true }),
        };
        let text = serde_json::to_string(&Envelope {
            from: "a".into(),
            body,
        })
        .expect("json");
        let back: Envelope = serde_json::from_str(&text).expect("parse");
        assert!(matches!(
            back.body,
            Body::Site { site_id: 3, frame } if *frame == ServerFrame::Availability { online: true }
        ));
    }
}
