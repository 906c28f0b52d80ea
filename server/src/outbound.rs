//! The one way Kefu calls HTTP addresses that an administrator typed (webhooks, translation
//! providers, and whatever comes next), so that the console — or a forged request to it —
//! cannot make the server reach its own machine or its private network and read the answer.
//!
//! [`Outbound`] wraps one `reqwest` client that:
//! - checks every URL before the request: `http`/`https` with a host, and a host written as
//!   an address must not be a loopback, private, link-local, unique-local, unspecified,
//!   carrier-grade NAT, multicast, broadcast or documentation address ([`is_forbidden`]);
//! - resolves names through its own resolver, which drops such addresses and hands reqwest
//!   only what is left: reqwest connects to exactly what was checked (the address is pinned,
//!   so a name that answers differently a moment later — DNS rebinding — gains nothing);
//! - never follows redirects (a 3xx is the answer), and ignores `HTTP(S)_PROXY`;
//! - reads answers through [`body`], which stops past [`MAX_BODY`] bytes.
//!
//! Exceptions come from `[outbound] allow` in the configuration file only ([`Policy`]): the
//! console can change URLs but not this list. The resolver is a [`Lookup`], swapped in tests so
//! a public-looking name can resolve to a loopback address.
//!
//! SMTP is not covered: the relay is part of the server's configuration, and a relay on the
//! same machine is the usual case.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// The largest answer read from a webhook receiver or a translation provider.
pub const MAX_BODY: usize = 1 << 20;

/// What the admin reads when a URL is refused. It says which rule applies, never which
/// address a name resolved to.
const REFUSED: &str = "refused: the address is on a loopback, private or link-local network \
                       that `[outbound] allow` in kefu.toml does not list";

/// Why an outbound request did not produce a usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The URL is not `http://` or `https://` with a host.
    #[error("not an http:// or https:// address with a host")]
    BadUrl,
    /// The URL leads only to addresses the policy refuses.
    #[error("{}", REFUSED)]
    Refused,
    /// No answer within the request's time.
    #[error("no answer in time")]
    Timeout,
    /// The connection or the request failed (the message has no URL: it may hold a key).
    #[error("{0}")]
    Failed(String),
    /// The answer is larger than [`MAX_BODY`].
    #[error("the answer is larger than {} bytes", MAX_BODY)]
    TooLarge,
}

impl Error {
    /// Whether asking again cannot help until the configuration changes.
    pub fn is_final(&self) -> bool {
        matches!(self, Error::BadUrl | Error::Refused)
    }
}

/// A failed request: the resolver's refusal (found in the error's causes), a timeout, or
/// anything else, without its URL.
impl From<reqwest::Error> for Error {
    fn from(error: reqwest::Error) -> Error {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(cause) = source {
            if cause.is::<RefusedAddress>() {
                return Error::Refused;
            }
            source = cause.source();
        }
        if error.is_timeout() {
            Error::Timeout
        } else {
            Error::Failed(error.without_url().to_string())
        }
    }
}

/// The resolver's refusal, found again in reqwest's error's causes.
#[derive(Debug, thiserror::Error)]
#[error("{}", REFUSED)]
struct RefusedAddress;

/// Whether `ip` is somewhere an outbound request must not go unless allowed: this machine,
/// a private or link-local network, or no real host at all. IPv6 forms that carry an IPv4
/// address (mapped, compatible, NAT64, 6to4) are judged by that address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    const NETWORKS: [(u32, u8); 15] = [
        (0x0000_0000, 8),  // 0.0.0.0/8: "this network", unspecified
        (0x0a00_0000, 8),  // 10.0.0.0/8: private
        (0x6440_0000, 10), // 100.64.0.0/10: carrier-grade NAT
        (0x7f00_0000, 8),  // 127.0.0.0/8: loopback
        (0xa9fe_0000, 16), // 169.254.0.0/16: link-local (cloud metadata)
        (0xac10_0000, 12), // 172.16.0.0/12: private
        (0xc000_0000, 24), // 192.0.0.0/24: IETF protocol assignments
        (0xc000_0200, 24), // 192.0.2.0/24: documentation
        (0xc058_6300, 24), // 192.88.99.0/24: 6to4 relay anycast
        (0xc0a8_0000, 16), // 192.168.0.0/16: private
        (0xc612_0000, 15), // 198.18.0.0/15: benchmarking
        (0xc633_6400, 24), // 198.51.100.0/24: documentation
        (0xcb00_7100, 24), // 203.0.113.0/24: documentation
        (0xe000_0000, 4),  // 224.0.0.0/4: multicast
        (0xf000_0000, 4),  // 240.0.0.0/4: reserved, and the broadcast address
    ];
    let bits = u32::from(ip);
    NETWORKS
        .iter()
        .any(|&(network, prefix)| bits >> (32 - prefix) == network >> (32 - prefix))
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let segments = ip.segments();
    let embedded = |low: u128| Ipv4Addr::from((low & 0xffff_ffff) as u32);
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64).
    if bits >> 32 == 0xffff || bits >> 32 == 0 || bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return forbidden_v4(embedded(bits));
    }
    // 2002:AABB:CCDD::/48 (6to4) carries AA.BB.CC.DD.
    if segments[0] == 0x2002 {
        return forbidden_v4(embedded(bits >> 80));
    }
    let first = segments[0];
    first & 0xfe00 == 0xfc00 // fc00::/7: unique-local
        || first & 0xffc0 == 0xfe80 // fe80::/10: link-local
        || first & 0xffc0 == 0xfec0 // fec0::/10: the old site-local
        || first & 0xff00 == 0xff00 // ff00::/8: multicast
        || (first == 0x2001 && segments[1] == 0x0db8) // 2001:db8::/32: documentation
        || bits >> 64 == 0x0100_0000_0000_0000 // 100::/64: discard
}

/// The exceptions `[outbound] allow` lists. Two forms, nothing else:
/// - `HOST:PORT` — this host on this port, where HOST is a name (`localhost:5000`), an IPv4
///   address (`127.0.0.1:5000`) or a bracketed IPv6 one (`[::1]:5000`). A listed name may
///   resolve to any address; a listed address is for URLs that write that address.
/// - `ADDRESS/PREFIX` — a network (`10.0.0.0/8`, `fd00::/8`, `192.168.1.20/32`): any port of
///   any address in it, whichever name leads there.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Names allowed to resolve anywhere, each on the ports listed with it.
    names: HashMap<String, Vec<u16>>,
    /// Addresses allowed when a URL writes them, on these ports.
    addresses: Vec<SocketAddr>,
    /// Networks allowed on every port, reached by address or by name.
    networks: Vec<IpNet>,
}

impl Policy {
    /// Reads the entries of `[outbound] allow`; the error quotes the entry at fault.
    pub fn parse(entries: &[String]) -> Result<Policy, String> {
        let mut policy = Policy::default();
        for entry in entries {
            let entry = entry.trim();
            let bad = || {
                format!(
                    "{entry:?} is neither HOST:PORT (localhost:5000, 127.0.0.1:5000, [::1]:5000) \
                     nor a network such as 10.0.0.0/8"
                )
            };
            if entry.contains('/') {
                policy.networks.push(entry.parse().map_err(|_| bad())?);
            } else if let Ok(address) = entry.parse::<SocketAddr>() {
                policy.addresses.push(address);
            } else {
                let (name, port) = entry.rsplit_once(':').ok_or_else(bad)?;
                let port: u16 = port.parse().map_err(|_| bad())?;
                let name = name.to_ascii_lowercase();
                // A name has a letter: `1.2.3` would be read as an address in a URL.
                let is_name = name.chars().any(|c| c.is_ascii_alphabetic())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
                if !is_name {
                    return Err(bad());
                }
                policy.names.entry(name).or_default().push(port);
            }
        }
        Ok(policy)
    }

    /// Whether a URL with `host` and `port` may be requested: the resolver judges the
    /// addresses of names; here, written addresses and the ports of listed names.
    fn check(&self, host: url::Host<&str>, port: u16) -> Result<(), Error> {
        let ip = match host {
            url::Host::Domain(name) => {
                return match self.names.get(name) {
                    Some(ports) if !ports.contains(&port) => Err(Error::Refused),
                    _ => Ok(()),
                };
            }
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
        };
        if !is_forbidden(ip)
            || self.in_networks(ip)
            || self.addresses.contains(&SocketAddr::new(ip, port))
        {
            Ok(())
        } else {
            Err(Error::Refused)
        }
    }

    fn in_networks(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|network| network.contains(&ip))
    }

    /// Of what `name` resolved to, what a request may connect to.
    fn admit(&self, name: &str, addresses: Vec<IpAddr>) -> Vec<IpAddr> {
        if self.names.contains_key(name) {
            return addresses;
        }
        addresses
            .into_iter()
            .filter(|ip| !is_forbidden(*ip) || self.in_networks(*ip))
            .collect()
    }
}

/// Turns a host name into addresses: the system's resolver in Kefu, a fixed table in tests.
pub trait Lookup: Send + Sync {
    /// The addresses of `name`.
    fn lookup(
        &self,
        name: &str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        name: &str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let name = name.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .map(|address| address.ip())
                .collect())
        })
    }
}

/// A fixed table of names and their addresses; any other name does not resolve.
pub struct FixedLookup(pub HashMap<String, Vec<IpAddr>>);

impl Lookup for FixedLookup {
    fn lookup(
        &self,
        name: &str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let found = self.0.get(name).cloned().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no address for {name}"),
            )
        });
        Box::pin(async move { found })
    }
}

/// reqwest's resolver: the lookup, filtered by the policy.
struct Guard {
    policy: Arc<Policy>,
    lookup: Arc<dyn Lookup>,
}

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_ascii_lowercase();
        let (policy, found) = (self.policy.clone(), self.lookup.lookup(&name));
        Box::pin(async move {
            let addresses = found.await?;
            let admitted = policy.admit(&name, addresses.clone());
            if admitted.is_empty() && !addresses.is_empty() {
                tracing::warn!(host = %name, ?addresses, "outbound request refused");
                return Err(Box::new(RefusedAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: reqwest::dns::Addrs = Box::new(
                admitted
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}

/// The outbound HTTP client. Cheap to clone: clones share one connection pool and the policy.
#[derive(Clone)]
pub struct Outbound {
    /// The client whose resolver is the [`Guard`]; never follows redirects.
    client: reqwest::Client,
    /// The exceptions, for the check of each URL before its request.
    policy: Arc<Policy>,
    /// How long one request may take, its answer included.
    timeout: Duration,
}

/// Shows the policy only.
impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    /// A client that allows what `policy` lists and resolves names with `lookup`; requests
    /// give up after ten seconds until [`Outbound::with_timeout`] says otherwise.
    pub fn new(policy: Policy, lookup: Arc<dyn Lookup>) -> Result<Outbound, String> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(Guard {
                policy: policy.clone(),
                lookup,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|error| format!("cannot make the HTTP client: {error}"))?;
        Ok(Outbound {
            client,
            policy,
            timeout: Duration::from_secs(10),
        })
    }

    /// The same client, with requests that give up after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> Outbound {
        Outbound {
            timeout,
            ..self.clone()
        }
    }

    /// Checks `url` against the policy as far as it can be without resolving it: the
    /// scheme, a written address, the port of a listed name.
    pub fn check(&self, url: &str) -> Result<(), Error> {
        let url = url::Url::parse(url).map_err(|_| Error::BadUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::BadUrl);
        }
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return Err(Error::BadUrl);
        };
        self.policy.check(host, port).inspect_err(|_| {
            tracing::warn!(host = %url.host_str().unwrap_or_default(), port, "outbound request refused");
        })
    }

    /// A POST to `url`, once [`Outbound::check`] passed. Its send error converts into an
    /// [`Error`], which tells a refusal by the resolver.
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, Error> {
        self.check(url)?;
        Ok(self.client.post(url).timeout(self.timeout))
    }
}

/// The answer's body, read chunk by chunk up to [`MAX_BODY`] bytes; past it,
/// [`Error::TooLarge`] without reading the rest.
pub async fn body(mut response: reqwest::Response) -> Result<Vec<u8>, Error> {
    let too_large = |length: u64| usize::try_from(length).map_or(true, |n| n > MAX_BODY);
    if response.content_length().is_some_and(too_large) {
        return Err(Error::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn internal_and_special_addresses_are_forbidden_and_public_ones_are_not() {
        for internal in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(is_forbidden(ip(internal)), "{internal}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::",
        ] {
            assert!(!is_forbidden(ip(public)), "{public}");
        }
    }

    #[test]
    fn the_allow_list_takes_host_and_port_or_a_network_and_nothing_vague() {
        let policy = Policy::parse(&[
            "localhost:5000".into(),
            "127.0.0.1:5000".into(),
            "[::1]:5000".into(),
            "10.0.0.0/8".into(),
        ])
        .expect("valid");
        let domain = |name| url::Host::Domain(name);
        assert_eq!(policy.check(domain("localhost"), 5000), Ok(()));
        assert_eq!(
            policy.check(domain("LOCALHOST"), 5000),
            Ok(()),
            "url lowercases, entries too"
        );
        assert_eq!(policy.check(domain("localhost"), 6379), Err(Error::Refused));
        assert_eq!(
            policy.check(domain("public.example"), 443),
            Ok(()),
            "the resolver decides"
        );
        let v4 = |text: &str| url::Host::Ipv4(text.parse().expect("v4"));
        assert_eq!(policy.check(v4("127.0.0.1"), 5000), Ok(()));
        assert_eq!(policy.check(v4("127.0.0.1"), 5001), Err(Error::Refused));
        assert_eq!(policy.check(v4("10.9.8.7"), 22), Ok(()));
        assert_eq!(policy.check(v4("192.168.0.1"), 80), Err(Error::Refused));
        assert_eq!(policy.check(v4("8.8.8.8"), 80), Ok(()));
        assert_eq!(
            policy.check(url::Host::Ipv6(Ipv6Addr::LOCALHOST), 5000),
            Ok(())
        );

        assert_eq!(
            policy.admit("localhost", vec![ip("127.0.0.1")]),
            vec![ip("127.0.0.1")]
        );
        assert_eq!(
            policy.admit(
                "other.example",
                vec![ip("127.0.0.1"), ip("10.1.1.1"), ip("8.8.8.8")]
            ),
            vec![ip("10.1.1.1"), ip("8.8.8.8")],
            "a listed address with a port is for written addresses only"
        );

        for vague in [
            "localhost",
            "127.0.0.1",
            "*",
            "10.0.0.0/33",
            ":5000",
            "a b:80",
            "1.2.3:80",
        ] {
            let error = Policy::parse(&[vague.into()]).expect_err(vague);
            assert!(error.contains(vague), "{error}");
        }
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let outbound = Outbound::new(Policy::default(), Arc::new(SystemLookup)).expect("client");
        for refused in [
            "http://127.0.0.1:5000/translate",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://2130706433/",
            "http://0/",
            "https://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/hook",
        ] {
            assert_eq!(outbound.check(refused), Err(Error::Refused), "{refused}");
        }
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://",
            "not a url",
        ] {
            assert_eq!(outbound.check(bad), Err(Error::BadUrl), "{bad}");
        }
        assert_eq!(outbound.check("https://api.deepl.com/v2/translate"), Ok(()));
    }
}
