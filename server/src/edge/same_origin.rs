//! Agent actions come only from Kefu's own console: every server function, the agent
//! WebSocket and HTTP transport and the agent upload require the request's `Origin` to be
//! the console's (`public_url`, or the request's own `Host` when that is unset). Browsers
//! always send `Origin` on WebSocket upgrades and cross-origin or non-GET fetches; where one
//! sends none, `Sec-Fetch-Site: same-origin` stands in. Anything else is refused with 403 and
//! logged.
//!
//! `SameSite=Lax` cookies alone do not do this: a sibling subdomain (`www.shop.example` next
//! to `chat.shop.example`) is the same *site*, so its pages carry the agent's cookie. The
//! REST API (bearer keys, no cookies) and the visitor endpoints (a site's allowed origins,
//! checked by the real-time side) are not affected.

use super::{ClientIp, Edge};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use protocol::transport as paths;
use std::sync::Arc;

/// Whether a request to `path` acts as a signed-in agent through the browser's cookie.
pub fn is_agent_action(path: &str) -> bool {
    path == paths::WS_AGENT_PATH
        || path == paths::HTTP_AGENT_SEND_PATH
        || path == paths::HTTP_AGENT_EVENTS_PATH
        || path == paths::HTTP_AGENT_UPLOAD_PATH
        || (path.starts_with("/api/") && !path.starts_with("/api/v1/"))
}

/// Why a request is not from the console's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Origin` names another origin (or `null`, a sandboxed or opaque one).
    Foreign,
    /// Neither `Origin` nor `Sec-Fetch-Site: same-origin`.
    Unproven,
}

/// Checks that `headers` prove the request came from the console's own pages.
pub fn check(edge: &Edge, headers: &HeaderMap) -> Result<(), Refusal> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok());
    let Some(origin) = origin else {
        let same = headers
            .get("sec-fetch-site")
            .is_some_and(|value| value.as_bytes() == b"same-origin");
        return if same { Ok(()) } else { Err(Refusal::Unproven) };
    };
    let matches = match &edge.public_url {
        Some(url) => origin.eq_ignore_ascii_case(&url.origin().ascii_serialization()),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok());
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            authority
                .zip(host)
                .is_some_and(|(authority, host)| authority.eq_ignore_ascii_case(host))
        }
    };
    if matches {
        Ok(())
    } else {
        Err(Refusal::Foreign)
    }
}

/// Middleware: refuses agent actions (see [`is_agent_action`]) that are not from the console.
pub async fn require(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !is_agent_action(path) {
        return next.run(request).await;
    }
    match check(&edge, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            let origin = request
                .headers()
                .get(header::ORIGIN)
                .and_then(|value| value.to_str().ok());
            let client = request.extensions().get::<ClientIp>().map(|ip| ip.0);
            tracing::warn!(
                path,
                origin,
                ?client,
                ?refusal,
                "refused an agent request from outside the console's origin"
            );
            refusal_for(path)
        }
    }
}

/// The 403 in the shape each kind of client reads: error frames for the HTTP transport, a
/// `ConsoleError` for server functions, text for a WebSocket upgrade.
fn refusal_for(path: &str) -> Response {
    const WHY: &str = "agent requests must come from the Kefu console's own pages";
    if path.starts_with("/http/") {
        let frames = vec![crate::realtime::error_frame(
            protocol::ErrorCode::Forbidden,
            WHY,
        )];
        return (StatusCode::FORBIDDEN, axum::Json(frames)).into_response();
    }
    if path.starts_with("/api/") {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(app::error::ConsoleError::Forbidden),
        )
            .into_response();
    }
    (StatusCode::FORBIDDEN, WHY).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn public_url_is_the_only_origin() {
        let edge = Edge::new(Some("https://chat.shop.example"), &[], None, None).expect("settings");
        let own = headers(&[("origin", "https://chat.shop.example")]);
        assert_eq!(check(&edge, &own), Ok(()));
        for foreign in [
            "https://www.shop.example",
            "http://chat.shop.example",
            "https://chat.shop.example.evil.example",
            "null",
        ] {
            let mut map = headers(&[("host", "chat.shop.example")]);
            map.insert("origin", HeaderValue::from_static(foreign));
            assert_eq!(check(&edge, &map), Err(Refusal::Foreign), "{foreign}");
        }
    }

    #[test]
    fn without_public_url_the_host_stands_in() {
        let edge = Edge::default();
        let own = headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000"),
        ]);
        assert_eq!(check(&edge, &own), Ok(()));
        let other = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:3000"),
        ]);
        assert_eq!(check(&edge, &other), Err(Refusal::Foreign));
    }

    #[test]
    fn no_origin_needs_sec_fetch_site() {
        let edge = Edge::default();
        assert_eq!(
            check(&edge, &headers(&[("sec-fetch-site", "same-origin")])),
            Ok(())
        );
        assert_eq!(
            check(&edge, &headers(&[("sec-fetch-site", "same-site")])),
            Err(Refusal::Unproven)
        );
        assert_eq!(check(&edge, &HeaderMap::new()), Err(Refusal::Unproven));
    }

    #[test]
    fn the_rest_api_and_visitors_are_not_agent_actions() {
        assert!(is_agent_action("/api/login"));
        assert!(is_agent_action("/ws/agent"));
        assert!(is_agent_action("/http/agent/send"));
        assert!(!is_agent_action("/api/v1/conversations"));
        assert!(!is_agent_action("/ws/visitor"));
        assert!(!is_agent_action("/http/visitor/send"));
        assert!(!is_agent_action("/inbox"));
    }
}
