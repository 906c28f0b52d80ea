//! Who the client is: the TCP peer, or, when the peer is one of the trusted proxies, the
//! address that proxy says it forwarded for. Per-address caps, bans, GeoIP, login throttling
//! and logs all read the result, [`ClientIp`], which [`remember`] puts into every request.
//!
//! `X-Forwarded-For` is read from the right: each proxy appends the address it received
//! from, so the right-most entry that is not a trusted proxy is the first one nobody on our
//! side vouches for less, and anything left of it may be forged by the client.

use super::Edge;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub use app::session::ClientIp;

/// The client behind `peer`: the peer itself unless it is a trusted proxy.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    // On a dual-stack socket IPv4 peers arrive as `::ffff:a.b.c.d`.
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    if !forwarded.is_empty() {
        let mut client = peer;
        for entry in forwarded.iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                // A malformed hop: nothing left of it can be believed.
                return client;
            };
            client = ip;
            if !is_trusted(&ip) {
                return ip;
            }
        }
        // Every hop is one of ours: the left-most is the client.
        return client;
    }
    headers
        .get("x-real-ip")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_entry(value.trim()))
        .unwrap_or(peer)
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .map(|ip| ip.to_canonical())
}

/// Middleware: works out the request's [`ClientIp`] once and keeps it in its extensions.
pub async fn remember(State(edge): State<Arc<Edge>>, mut request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        let client = resolve(peer.ip(), request.headers(), &edge.trusted_proxies);
        request.extensions_mut().insert(ClientIp(client));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let forged = headers(&[("x-forwarded-for", "9.9.9.9"), ("x-real-ip", "8.8.8.8")]);
        assert_eq!(
            resolve(ip("203.0.113.5"), &forged, &nets(&["127.0.0.1/32"])),
            ip("203.0.113.5")
        );
        assert_eq!(resolve(ip("127.0.0.1"), &forged, &[]), ip("127.0.0.1"));
        // A dual-stack socket's IPv4 peer is the IPv4 address.
        assert_eq!(
            resolve(ip("::ffff:127.0.0.1"), &forged, &nets(&["127.0.0.1/32"])),
            ip("9.9.9.9")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        // The client forged 1.1.1.1; nginx appended the real address, a balancer its own.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            resolve(ip("127.0.0.1"), &chain, &trusted),
            ip("198.51.100.7")
        );
        // Two header lines are one list.
        let split = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            resolve(ip("127.0.0.1"), &split, &trusted),
            ip("198.51.100.7")
        );
        // All ours: the left-most.
        let inside = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.2")]);
        assert_eq!(resolve(ip("127.0.0.1"), &inside, &trusted), ip("10.0.0.9"));
        // Garbage stops the walk at the last hop we could read.
        let garbage = headers(&[("x-forwarded-for", "1.1.1.1, nonsense, 10.0.0.2")]);
        assert_eq!(resolve(ip("127.0.0.1"), &garbage, &trusted), ip("10.0.0.2"));
        let ported = headers(&[("x-forwarded-for", "[2001:db8::7]:4711")]);
        assert_eq!(
            resolve(ip("127.0.0.1"), &ported, &trusted),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn x_real_ip_stands_in_without_x_forwarded_for() {
        let trusted = nets(&["::1/128"]);
        let real = headers(&[("x-real-ip", "198.51.100.8")]);
        assert_eq!(resolve(ip("::1"), &real, &trusted), ip("198.51.100.8"));
        assert_eq!(resolve(ip("::1"), &HeaderMap::new(), &trusted), ip("::1"));
    }
}
