//! The HTTP surface: operations endpoints, widget assets, the demo page and the console.

use crate::web::state::AppState;
use app::{App, shell};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::prelude::provide_context;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use std::sync::{Arc, OnceLock};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// The console's routes, listed once per process. Listing them runs the whole console with
/// resource loading switched off process-wide (leptos_server's `SuppressResourceLoad`, one
/// global flag), so a page that another server of the same process started rendering at that
/// moment would wait for ever (leptos-rs/leptos#4773). `kefu` runs one server, which lists
/// them before it serves; the integration tests run many side by side, and hung on it.
fn console_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// Builds the whole application router; tests call this through [`crate::serve`].
pub fn router(state: AppState) -> Router {
    let routes = console_routes();
    let store = state.store.clone();
    let hub: Arc<dyn app::ports::Hub> = state.realtime.clone();
    let outbox: Arc<dyn app::ports::Outbox> = Arc::new(crate::web::console_mail::ConsoleMail {
        realtime: state.realtime.clone(),
        file: state.config_file.clone(),
        locked: state.mail_locked,
    });
    let interpreter: Arc<dyn app::ports::Interpreter> =
        Arc::new(crate::web::console_translation::ConsoleTranslation {
            realtime: state.realtime.clone(),
            file: state.config_file.clone(),
            locked: state.translation_locked,
        });
    let options = state.leptos_options.clone();
    let edge = state.edge.clone();
    let cookies = crate::web::signed_in::cookie_policy(&edge);
    let login_guard = Arc::new(app::throttle::LoginGuard::default());
    // Customers' pages load these from their own origin: the glue is an ES module and the wasm
    // is fetched, so both need CORS.
    let widget = Router::new()
        .fallback_service(
            ServeDir::new(&state.widget_dir)
                .precompressed_br()
                .precompressed_gzip(),
        )
        .layer(middleware::from_fn(asset_cache))
        .layer(SetResponseHeaderLayer::overriding(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ));
    // The console's wasm, JS and CSS: brotli or gzip as built (`--precompress`), cached for a
    // year under their content-hashed names.
    let pkg = Router::new()
        .fallback_service(
            ServeDir::new(std::path::Path::new(&*options.site_root).join(&*options.site_pkg_dir))
                .precompressed_br()
                .precompressed_gzip(),
        )
        .layer(middleware::from_fn(asset_cache));
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    if state.demo {
        router = router.route("/demo", get(crate::web::demo::page));
    }
    router
        .route("/console/history/export", get(crate::web::export::download))
        .merge(realtime_routes())
        .merge(crate::web::api::router())
        .nest("/widget", widget)
        .nest(&format!("/{}", options.site_pkg_dir), pkg)
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                crate::edge::headers::provide_nonce();
                provide_context(cookies);
                provide_context(login_guard.clone());
                provide_context(store.clone());
                provide_context(hub.clone());
                provide_context(outbox.clone());
                provide_context(interpreter.clone());
            },
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Each layer wraps those above it, so a request meets, in turn: the response counter,
        // the client's address, the console's headers (on refusals too), the origin check of
        // agent actions, and the status of server functions' errors.
        .layer(middleware::from_fn(console_error_status))
        .layer(middleware::from_fn_with_state(
            edge.clone(),
            crate::edge::same_origin::require,
        ))
        .layer(middleware::from_fn(crate::edge::headers::console))
        .layer(middleware::from_fn_with_state(
            edge,
            crate::edge::client_addr::remember,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

/// The real-time endpoints. Visitor endpoints answer CORS for any origin: the site's allowed
/// origins are checked per request against the visitor's site, not here.
fn realtime_routes() -> Router<AppState> {
    use crate::web::transport::{attachments, http, widget, ws};
    use axum::http::{Method, header::CONTENT_TYPE};
    use axum::routing::post;
    use protocol::transport as paths;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            CONTENT_TYPE,
            axum::http::HeaderName::from_static(paths::VISITOR_TOKEN_HEADER),
        ]);
    let visitor_http = Router::new()
        .route(paths::HTTP_VISITOR_SEND_PATH, post(http::visitor_send))
        .route(paths::HTTP_VISITOR_EVENTS_PATH, get(http::visitor_events))
        .route(paths::HTTP_VISITOR_SITE_PATH, get(widget::site))
        .route(
            paths::HTTP_VISITOR_LEAVE_MESSAGE_PATH,
            post(widget::leave_message),
        )
        .route(paths::HTTP_VISITOR_PROFILE_PATH, post(widget::profile))
        .route(paths::HTTP_VISITOR_RATING_PATH, post(widget::rating))
        .route(
            paths::HTTP_VISITOR_TRANSCRIPT_PATH,
            post(widget::transcript),
        )
        .route(
            paths::HTTP_VISITOR_UPLOAD_PATH,
            post(attachments::visitor_upload),
        )
        .layer(cors);
    Router::new()
        .route(paths::WS_VISITOR_PATH, get(ws::visitor))
        .route(paths::WS_AGENT_PATH, get(ws::agent))
        .route(paths::HTTP_AGENT_SEND_PATH, post(http::agent_send))
        .route(paths::HTTP_AGENT_EVENTS_PATH, get(http::agent_events))
        .route(
            paths::HTTP_AGENT_UPLOAD_PATH,
            post(attachments::agent_upload),
        )
        .route(
            &format!("{}/{{id}}", paths::ATTACHMENTS_PATH),
            get(attachments::download),
        )
        .merge(visitor_http)
}

/// Widget and console files with a content hash in their name (`kefu_widget.1a2b3c4d5e6f.js`,
/// `kefu.<md5>.wasm`) never change: browsers keep them for a year. Others — `widget.js`, the
/// address in customers' pages, or a console built without hashes — are kept five minutes so a
/// new release arrives soon.
async fn asset_cache(request: Request, next: Next) -> Response {
    let hashed = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .is_some_and(is_content_hashed);
    let mut response = next.run(request).await;
    if response.status().is_success() {
        let policy = if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=300"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

/// `name.<hash>.ext`: 12 hex digits as `scripts/build-widget.sh` names the widget's files, or
/// 22 base64url characters (an MD5) as cargo-leptos names the console's.
fn is_content_hashed(file: &str) -> bool {
    let mut parts = file.rsplit('.');
    let _extension = parts.next();
    parts.next().is_some_and(|hash| {
        (hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            || (hash.len() == 22
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    }) && parts.next().is_some()
}

/// Liveness: the process answers. Never touches the database, so a database outage does not
/// get the process restarted.
async fn healthz() -> &'static str {
    "ok"
}

/// How long readiness waits for the database before calling the node not ready.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: the database answers, so this node can take traffic.
async fn readyz(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await;
    match ping {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(error)) => not_ready(&state, &error),
        Err(_) => not_ready(&state, &"no answer within the readiness timeout"),
    }
}

fn not_ready(state: &AppState, error: &dyn std::fmt::Display) -> Response {
    state
        .metrics
        .readiness_failures
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::warn!(%error, "readiness check failed");
    (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
}

/// Prometheus text exposition, for addresses in `metrics.allow` or holders of its token.
async fn metrics(
    State(state): State<AppState>,
    client: crate::edge::ClientIp,
    headers: axum::http::HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if !state.edge.may_read_metrics(client.0, authorization) {
        return (StatusCode::FORBIDDEN, "metrics are not public").into_response();
    }
    let backend = format!("{:?}", state.store.backend()).to_lowercase();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(
            &backend,
            crate::metrics::CoreCounts {
                lag_catch_ups: state.realtime.hub.lag_catch_ups(),
                refused_busy: state.realtime.outage.refused_busy(),
            },
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        ),
    )
        .into_response()
}

/// Server functions answer every error with 500; this gives each the status its
/// `ConsoleError` means (401 for a wrong password, 429 when throttled, …), so clients, logs
/// and proxies can tell a refusal from a fault. Only the error body is read: it is one code.
async fn console_error_status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key("serverfnerror")
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4096).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    if let Ok(error) = serde_json::from_slice::<app::error::ConsoleError>(&bytes)
        && let Ok(status) = StatusCode::from_u16(error.http_status())
    {
        parts.status = status;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

async fn count_responses(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    state.metrics.record_response(response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::is_content_hashed;

    #[test]
    fn only_build_hashed_names_are_immutable() {
        assert!(is_content_hashed("kefu_widget.1a2b3c4d5e6f.js"));
        assert!(is_content_hashed("kefu_widget_bg.0123456789ab.wasm"));
        assert!(!is_content_hashed("widget.js"));
        assert!(!is_content_hashed("1a2b3c4d5e6f.js"));
        assert!(!is_content_hashed("kefu_widget.1a2b3c4d5e6g.js"));
        assert!(!is_content_hashed("kefu_widget.1a2b3c4d5e6f.js.gz"));
        assert!(is_content_hashed("kefu.Xr2b-_9aQ0kLmN4pZ7yT1w.wasm"));
        assert!(!is_content_hashed("kefu.Xr2b-_9aQ0kLmN4pZ7yT1.wasm"));
        assert!(!is_content_hashed("kefu.Xr2b+/9aQ0kLmN4pZ7yT1w.wasm"));
        assert!(!is_content_hashed("kefu.wasm"));
    }
}
