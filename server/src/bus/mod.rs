//! The bus: how the hub's events reach the other kefu nodes that share this database.
//!
//! On one node the bus is in-process: the hub's own topics are all there is, and nothing is
//! forwarded. With `bus.url = "redis://…"` each node publishes every event it fans out on one
//! Redis pub/sub channel and delivers the other nodes' events to its own subscribers (see
//! [`redis`]). The bus is never the record: messages are committed before they are published,
//! ordering comes from the store's seq, a gap a subscriber notices is read from the store, and
//! when the bus was down every session catches up from the store (`Hub::resync`). So Redis
//! going away delays live delivery between nodes; it loses nothing.
//!
//! Nodes sharing a database share its token secret. Its digest names their channel, so two
//! installs on one Redis never hear each other, and it keys an HMAC on every message, so
//! whoever else can publish on that Redis cannot speak for a node.

pub mod redis;

use crate::realtime::broker::Broker;

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
    /// Not a URL at all (the text is not repeated: it may hold a password).
    #[error("not a URL such as redis://127.0.0.1:6379")]
    NotAUrl,
    /// A scheme other than `redis`.
    #[error("`{0}` buses are not supported: use redis://")]
    Scheme(String),
    /// A `redis://` URL the Redis client refuses (a bad port or database number).
    #[error("not a Redis URL: check its host, port and database number")]
    Redis,
}

impl Bus {
    /// The bus `bus.url` names (`None`: in-process).
    pub fn parse(url: Option<&str>) -> Result<Bus, BusError> {
        let Some(text) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Bus::InProcess);
        };
        let url = url::Url::parse(text).map_err(|_| BusError::NotAUrl)?;
        if url.scheme() != "redis" {
            return Err(BusError::Scheme(url.scheme().to_string()));
        }
        ::redis::Client::open(url.as_str()).map_err(|_| BusError::Redis)?;
        Ok(Bus::Redis(url))
    }

    /// The broker that links this node to the others: none when it is alone.
    pub fn broker(&self) -> Option<Box<dyn Broker>> {
        match self {
            Bus::InProcess => None,
            Bus::Redis(url) => Some(Box::new(redis::RedisBroker { url: url.clone() })),
        }
    }
}

/// What the nodes of one cluster share: their channel's name and the key of the HMAC that
/// every message carries.
pub struct Seal {
    /// Names the cluster's channel and keys: a digest of the secret.
    cluster: String,
    /// The HMAC key, another digest of the secret.
    key: [u8; 32],
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl Seal {
    /// The seal of the nodes sharing `secret`.
    pub fn new(secret: &str) -> Seal {
        use sha2::Digest;
        let name = sha2::Sha256::digest(format!("kefu cluster {secret}"));
        Seal {
            cluster: hex::encode(&name[..8]),
            key: sha2::Sha256::digest(format!("kefu bus key {secret}")).into(),
        }
    }

    /// The cluster's name in channel and key names.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    fn mac(&self) -> HmacSha256 {
        use hmac::Mac;
        // HMAC accepts keys of any length; this cannot fail.
        HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// `text` as sent: its HMAC in hex, a dot, the text.
    pub fn seal(&self, text: &str) -> String {
        use hmac::Mac;
        let mut mac = self.mac();
        mac.update(text.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{}.{text}", hex::encode(tag))
    }

    /// The text of a sealed message, if its HMAC is right.
    pub fn open<'a>(&self, sealed: &'a [u8]) -> Option<&'a [u8]> {
        use hmac::Mac;
        let dot = sealed.iter().position(|b| *b == b'.')?;
        let (tag, text) = (&sealed[..dot], &sealed[dot + 1..]);
        let tag = hex::decode(tag).ok()?;
        let mut mac = self.mac();
        mac.update(text);
        mac.verify_slice(&tag).ok().map(|()| text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::nodes::{Body, Envelope};
    use protocol::ServerFrame;
    use protocol::{SiteId, VisitorId};
    use std::sync::Arc;

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
            Err(BusError::NotAUrl)
        ));
        let typo = Bus::parse(Some("redis://:pa/ss#word@10.0.0.5:6379"));
        assert!(
            typo.as_ref()
                .err()
                .is_some_and(|e| !e.to_string().contains("pa/ss")),
            "a URL that does not parse is not repeated: {typo:?}"
        );
        assert!(matches!(
            Bus::parse(Some("redis://127.0.0.1:6379/notanumber")),
            Err(BusError::Redis)
        ));
        let secret = Bus::parse(Some("redis://:hunter2@10.0.0.5:6379")).expect("url");
        assert_eq!(
            format!("{secret:?}"),
            r#"Redis("redis://:***@10.0.0.5:6379")"#,
            "the password is never shown"
        );
    }

    #[test]
    fn only_a_sealed_message_of_the_same_cluster_opens() {
        let seal = Seal::new("secret one");
        let sealed = seal.seal(r#"{"from":"a"}"#);
        assert_eq!(
            seal.open(sealed.as_bytes()),
            Some(r#"{"from":"a"}"#.as_bytes())
        );
        assert_eq!(Seal::new("secret two").open(sealed.as_bytes()), None);
        let forged = sealed.replace(r#""a""#, r#""b""#);
        assert_eq!(seal.open(forged.as_bytes()), None, "changed text");
        assert_eq!(seal.open(br#"{"from":"a"}"#), None, "no seal");
        assert_ne!(
            Seal::new("secret one").cluster(),
            Seal::new("secret two").cluster()
        );
    }

    #[test]
    fn a_roster_crosses_as_json_and_back() {
        let mut presence = crate::realtime::presence::Presence::default();
        presence.visitor_arrived(SiteId(3), VisitorId(17), None);
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
        assert!(here.visitor_online(VisitorId(17)));
    }

    #[test]
    fn an_event_crosses_as_json_and_back() {
        let body = Body::Site {
            site_id: SiteId(3),
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
            Body::Site { site_id: SiteId(3), frame } if *frame == ServerFrame::Availability { online: true }
        ));
    }
}
