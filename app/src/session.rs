//! Sessions and the request's identity, without the Leptos context: session tokens and their
//! hashes, the cookies that carry them, the client's address, and the one lookup from a token
//! to its agent that server functions, both real-time transports, uploads and the export share.
//!
//! The session cookie holds a random token; the database keeps only its SHA-256, so a leaked
//! database does not leak live sessions.

use axum::http::{HeaderMap, header};
use cookie::{Cookie, SameSite};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Name of the HttpOnly cookie that carries the session token over plain http.
pub const SESSION_COOKIE: &str = "kefu_session";

/// How long a console session lasts without signing in again.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// A new random session token (256 bits, hex).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the database stores for a token: its SHA-256 in hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How the console's cookies are written: `Secure`, and the `__Host-` prefix on the
/// session cookie (no other host or path can set or shadow it), when the console is served
/// over https (`public_url`). The server puts one into the Leptos context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CookiePolicy {
    /// The console is served over https.
    pub secure: bool,
}

impl CookiePolicy {
    /// The session cookie's name under this policy.
    pub fn session_name(self) -> &'static str {
        if self.secure {
            "__Host-kefu_session"
        } else {
            SESSION_COOKIE
        }
    }

    /// The session token the browser sent, if any.
    pub fn session_token(self, headers: &HeaderMap) -> Option<String> {
        cookie_value(headers, self.session_name())
    }

    /// The session cookie holding `token` for `max_age_secs` (0: removes it).
    pub fn session(self, token: String, max_age_secs: i64) -> Cookie<'static> {
        self.cookie(self.session_name(), token, max_age_secs, true)
    }

    /// A cookie pages may read (language, connection mode), kept for a year.
    pub fn readable(self, name: &'static str, value: String) -> Cookie<'static> {
        self.cookie(name, value, 365 * 24 * 60 * 60, false)
    }

    fn cookie(
        self,
        name: &'static str,
        value: String,
        max_age_secs: i64,
        http_only: bool,
    ) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(http_only)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(cookie::time::Duration::seconds(max_age_secs))
            .build()
    }
}

/// The client's address (the peer, or what a trusted proxy forwarded for), which the
/// server puts into every request: per-address limits and logs use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

impl ClientIp {
    /// The address per-address limits count against. An IPv6 client is given a whole
    /// /64 (a home, a phone) and may pick any address in it, so the /64 is one client.
    pub fn group(self) -> std::net::IpAddr {
        use std::net::{IpAddr, Ipv6Addr};
        match self.0 {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let [a, b, c, d, ..] = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
                }
            },
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = axum::http::StatusCode;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::ConnectInfo;
        if let Some(client) = parts.extensions.get::<ClientIp>() {
            return Ok(*client);
        }
        // A router used without the server's address middleware: the peer is the client.
        parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(peer)| ClientIp(peer.ip()))
            .ok_or_else(|| {
                tracing::error!("a request without its peer address");
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            })
    }
}

/// Finds a cookie in request headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_string())
}

/// The one way from a session token to its agent, for server functions, both real-time
/// transports, uploads and the export: an unexpired session of an agent who is not
/// disabled.
pub async fn session_agent(
    store: &dyn store::Store,
    token: &str,
) -> Result<Option<store::Agent>, store::Error> {
    Ok(store
        .session_agent(&token_hash(token), crate::clock::now())
        .await?
        .filter(|agent| !agent.disabled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookie_lookup_finds_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; kefu_session_x=2; kefu_session=abc"),
        );
        assert_eq!(
            cookie_value(&headers, "kefu_session").as_deref(),
            Some("abc")
        );
        assert_eq!(cookie_value(&headers, "missing"), None);
    }

    #[test]
    fn cookies_are_secure_and_host_bound_under_https() {
        let plain = CookiePolicy::default()
            .session("abc".into(), 60)
            .to_string();
        assert!(plain.starts_with("kefu_session=abc"), "{plain}");
        assert!(
            plain.contains("HttpOnly") && plain.contains("SameSite=Lax"),
            "{plain}"
        );
        assert!(!plain.contains("Secure"), "{plain}");
        let https = CookiePolicy { secure: true };
        let secure = https.session("abc".into(), 60).to_string();
        assert!(secure.starts_with("__Host-kefu_session=abc"), "{secure}");
        assert!(
            secure.contains("Secure") && secure.contains("Path=/"),
            "{secure}"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("kefu_session=plain; __Host-kefu_session=bound"),
        );
        assert_eq!(https.session_token(&headers).as_deref(), Some("bound"));
        assert_eq!(
            CookiePolicy::default().session_token(&headers).as_deref(),
            Some("plain")
        );
        let mode = https.readable("kefu_mode", "http".into()).to_string();
        assert!(
            !mode.contains("HttpOnly") && mode.contains("Secure"),
            "{mode}"
        );
    }

    #[test]
    fn ipv6_clients_are_grouped_per_64() {
        let ip = |text: &str| -> std::net::IpAddr { text.parse().expect("ip") };
        let a = ClientIp(ip("2001:db8:1:2:aaaa::1")).group();
        let b = ClientIp(ip("2001:db8:1:2:bbbb::9")).group();
        let other = ClientIp(ip("2001:db8:1:3::1")).group();
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(ClientIp(ip("::ffff:192.0.2.1")).group(), ip("192.0.2.1"));
        assert_eq!(ClientIp(ip("192.0.2.1")).group(), ip("192.0.2.1"));
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
