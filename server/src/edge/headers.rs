//! The headers every console and setup page carries: a Content-Security-Policy whose scripts
//! need this response's nonce (Leptos puts it on its hydration and resource scripts), no
//! framing (clickjacking of admin pages), `nosniff` and a same-origin referrer.
//!
//! What customers' pages load or call stays embeddable and is left alone: the widget's files,
//! the visitor endpoints, attachments (which carry their own sandbox policy) and `/demo`.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// This response's script nonce; the console's Leptos context hands it to `HydrationScripts`.
#[derive(Debug, Clone)]
pub struct CspNonce(pub Arc<str>);

/// Whether `path` is loaded or called by customers' pages rather than the console.
fn embeddable(path: &str) -> bool {
    ["/widget/", "/http/visitor/", "/attachments/"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
        || path == protocol::transport::WS_VISITOR_PATH
        || path == "/demo"
}

/// The policy for a page whose scripts carry `nonce`. WebAssembly needs `wasm-unsafe-eval`;
/// components set inline `style` attributes, hence `unsafe-inline` for styles only.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// Middleware: a fresh nonce per request, and the headers on the way out.
pub async fn console(mut request: Request, next: Next) -> Response {
    if embeddable(request.uri().path()) {
        return next.run(request).await;
    }
    let nonce: Arc<str> = crate::util::random_hex::<16>().into();
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if html && let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce)) {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(policy);
    }
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// For the console's Leptos context: this request's nonce in place of the one Leptos made up,
/// so the page's scripts carry the nonce the header allows.
pub fn provide_nonce() {
    use leptos::prelude::{provide_context, use_context};
    let nonce = use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(CspNonce(nonce)) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widget_and_visitors_stay_embeddable() {
        assert!(embeddable("/widget/widget.js"));
        assert!(embeddable("/http/visitor/send"));
        assert!(embeddable("/ws/visitor"));
        assert!(embeddable("/attachments/abc"));
        assert!(!embeddable("/inbox"));
        assert!(!embeddable("/admin/sites"));
        assert!(!embeddable("/api/login"));
    }
}
