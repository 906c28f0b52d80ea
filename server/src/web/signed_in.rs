//! The signed-in agent for the server's own handlers (the export; the transports read the
//! token here too): the session cookie, named as the cookie policy says, looked up through
//! `app::session::session_agent`, the one lookup server functions use as well.

use crate::edge::Edge;
use crate::web::state::AppState;
use app::session::CookiePolicy;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// How cookies are written and read: `Secure` and `__Host-` when `public_url` is https.
pub fn cookie_policy(edge: &Edge) -> CookiePolicy {
    CookiePolicy {
        secure: edge.secure_cookies(),
    }
}

/// The session token the request's cookie carries, if any.
pub fn session_token(edge: &Edge, headers: &HeaderMap) -> Option<String> {
    cookie_policy(edge).session_token(headers)
}

/// An extractor: the agent whose session the request carries; 401 without one.
pub struct SignedIn(pub store::Agent);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let unauthorized = || (StatusCode::UNAUTHORIZED, "sign in first").into_response();
        let token = session_token(&state.edge, &parts.headers).ok_or_else(unauthorized)?;
        match app::session::session_agent(state.store.as_ref(), &token).await {
            Ok(Some(agent)) => Ok(SignedIn(agent)),
            Ok(None) => Err(unauthorized()),
            Err(error) => {
                tracing::error!(%error, "reading a session failed");
                Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
            }
        }
    }
}
