//! Kefu's edge, where requests arrive from the internet (`SECURITY.md`): which peers are its
//! own reverse proxies and so who the client really is ([`client_addr`]), which origin the
//! console lives at and the check that agent actions come from it ([`same_origin`]), the
//! headers every console page carries ([`headers`]), and who may read `/metrics`.
//!
//! Visitors' own rule (a site's allowed origins) belongs to the real-time side, not here.

pub mod client_addr;
pub mod headers;
pub mod same_origin;

pub use client_addr::ClientIp;

use ipnet::IpNet;
use url::Url;

/// The edge's settings: plain data, built once from the configuration.
#[derive(Clone)]
pub struct Edge {
    /// Reverse proxies whose `X-Forwarded-For` / `X-Real-IP` are believed. Anyone else can
    /// write any address into those headers, so they count only when the peer is one of these.
    pub trusted_proxies: Vec<IpNet>,
    /// The address agents open the console at. Console requests must come from its origin,
    /// and an https address makes the cookies `Secure`. `None` (as under `make run`): each
    /// request's own scheme and `Host` stand in.
    pub public_url: Option<Url>,
    /// Addresses that may read `/metrics` without the token (by default loopback only: the
    /// counts tell an outsider the version and the traffic).
    pub metrics_allow: Vec<IpNet>,
    /// A bearer token that lets a scraper at any other address read `/metrics`.
    pub metrics_token: Option<String>,
}

/// Shown by `kefu config show`: everything but the token.
impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("trusted_proxies", &self.trusted_proxies)
            .field("public_url", &self.public_url.as_ref().map(Url::as_str))
            .field("metrics_allow", &self.metrics_allow)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "…"))
            .finish()
    }
}

impl Default for Edge {
    fn default() -> Self {
        Edge {
            trusted_proxies: Vec::new(),
            public_url: None,
            metrics_allow: loopback(),
            metrics_token: None,
        }
    }
}

/// `127.0.0.0/8` and `::1`.
fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

impl Edge {
    /// Checks and builds the settings; an error names the key at fault and says why.
    pub fn new(
        public_url: Option<&str>,
        trusted_proxies: &[String],
        metrics_allow: Option<&[String]>,
        metrics_token: Option<String>,
    ) -> Result<Edge, (&'static str, String)> {
        let public_url = match public_url.map(str::trim).filter(|url| !url.is_empty()) {
            None => None,
            Some(text) => Some(parse_public_url(text).map_err(|message| ("public_url", message))?),
        };
        Ok(Edge {
            trusted_proxies: networks(trusted_proxies)
                .map_err(|message| ("trusted_proxies", message))?,
            public_url,
            metrics_allow: match metrics_allow {
                Some(list) => networks(list).map_err(|message| ("metrics.allow", message))?,
                None => loopback(),
            },
            metrics_token,
        })
    }

    /// Whether the console is served over https: its cookies are then `Secure` and the session
    /// cookie takes the `__Host-` prefix (no other host or path can set or shadow it).
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|url| url.scheme() == "https")
    }

    /// Whether `/metrics` may answer a request from `client` carrying `authorization`.
    pub fn may_read_metrics(&self, client: std::net::IpAddr, authorization: Option<&str>) -> bool {
        let client = client.to_canonical();
        let allowed = self.metrics_allow.iter().any(|net| net.contains(&client));
        let token = self
            .metrics_token
            .as_deref()
            .zip(authorization)
            .is_some_and(|(token, header)| {
                header
                    .strip_prefix("Bearer ")
                    .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
            });
        allowed || token
    }
}

/// Compares secrets without stopping at the first difference.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An `http(s)://host[:port]` address with nothing after the host but `/`.
fn parse_public_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| format!("{text:?} is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{text:?} must be an http:// or https:// address such as https://chat.example.com"
        ));
    }
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err(format!(
            "{text:?}: give only the scheme, host and port (Kefu is served at the root)"
        ));
    }
    Ok(url)
}

/// Addresses (`10.0.0.1`, `::1`) and networks (`10.0.0.0/8`).
fn networks(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|item| item.trim())
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item:?} is neither an address nor a CIDR network"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_name_their_key() {
        let edge = Edge::new(
            Some("https://chat.example.com"),
            &["127.0.0.1".into(), "10.0.0.0/8".into()],
            None,
            None,
        )
        .expect("valid");
        assert!(edge.secure_cookies());
        assert_eq!(edge.trusted_proxies.len(), 2);
        assert!(!Edge::default().secure_cookies());
        let (key, _) = Edge::new(Some("chat.example.com"), &[], None, None).expect_err("no scheme");
        assert_eq!(key, "public_url");
        let (key, _) =
            Edge::new(Some("https://x.example/chat"), &[], None, None).expect_err("a path");
        assert_eq!(key, "public_url");
        let (key, message) =
            Edge::new(None, &["nginx".into()], None, None).expect_err("not an address");
        assert_eq!(key, "trusted_proxies");
        assert!(message.contains("nginx"), "{message}");
    }

    #[test]
    fn metrics_need_an_allowed_address_or_the_token() {
        let edge = Edge::new(None, &[], None, Some("s3cret".into())).expect("valid");
        let outside: std::net::IpAddr = "203.0.113.9".parse().expect("ip");
        assert!(edge.may_read_metrics("127.0.0.1".parse().expect("ip"), None));
        assert!(edge.may_read_metrics("::1".parse().expect("ip"), None));
        assert!(edge.may_read_metrics("::ffff:127.0.0.1".parse().expect("ip"), None));
        assert!(!format!("{edge:?}").contains("s3cret"));
        assert!(!edge.may_read_metrics(outside, None));
        assert!(!edge.may_read_metrics(outside, Some("Bearer nope")));
        assert!(edge.may_read_metrics(outside, Some("Bearer s3cret")));
    }
}
