//! Shared server state handed to every handler.

use crate::metrics::Metrics;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use std::path::PathBuf;
use std::sync::Arc;

/// Cheap to clone: every field is an `Arc` or small value shared by all requests.
#[derive(Clone)]
pub struct AppState {
    /// The database; one pool for the whole process, chosen from the URL scheme at start.
    pub store: Arc<dyn store::Store>,
    /// Site options for the console (pkg dir, output name) read from `Leptos.toml`.
    pub leptos_options: LeptosOptions,
    /// Counters exported at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The real-time core: hub, token key and limits shared by every connection.
    pub realtime: Arc<crate::realtime::Realtime>,
    /// Where the built widget files are served from.
    pub widget_dir: PathBuf,
    /// The configuration file the console saves settings to.
    pub config_file: PathBuf,
    /// The mail settings come from flags or variables (see `Config::mail_locked`).
    pub mail_locked: bool,
    /// Some translation settings come from flags or variables (`Config::translation_locked`).
    pub translation_locked: bool,
    /// Trusted proxies, the console's origin, who may read `/metrics`.
    pub edge: Arc<crate::edge::Edge>,
    /// The HTTP server's timeouts and connection cap.
    pub http: crate::http_server::HttpLimits,
    /// Started with `--demo`: the `/demo` page exists.
    pub demo: bool,
}

impl FromRef<AppState> for Arc<crate::edge::Edge> {
    fn from_ref(state: &AppState) -> Self {
        state.edge.clone()
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
