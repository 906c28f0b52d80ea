//! The HTTP surface: operations endpoints, widget assets, the demo page and the console.

use crate::state::AppState;
use app::{App, shell};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Builds the whole application router; tests call this through [`crate::serve`].
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let store = state.store.clone();
    let options = state.leptos_options.clone();
    let widget = Router::new()
        .fallback_service(ServeDir::new(&state.widget_dir).precompressed_gzip())
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/demo", get(crate::demo::page))
        .merge(realtime_routes())
        .nest("/widget", widget)
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(store.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

/// The real-time endpoints. Visitor endpoints answer CORS for any origin: the site's allowed
/// origins are checked per request against the visitor's site, not here.
fn realtime_routes() -> Router<AppState> {
    use crate::realtime::{http, ws};
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
        .layer(cors);
    Router::new()
        .route(paths::WS_VISITOR_PATH, get(ws::visitor))
        .route(paths::WS_AGENT_PATH, get(ws::agent))
        .route(paths::HTTP_AGENT_SEND_PATH, post(http::agent_send))
        .route(paths::HTTP_AGENT_EVENTS_PATH, get(http::agent_events))
        .merge(visitor_http)
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

/// Prometheus text exposition.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let backend = format!("{:?}", state.store.backend()).to_lowercase();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state
            .metrics
            .render(&backend, state.realtime.hub.lag_catch_ups()),
    )
}

async fn count_responses(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    state.metrics.record_response(response.status().as_u16());
    response
}
