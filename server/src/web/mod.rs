//! Kefu over HTTP: everything axum touches. The shared state ([`state::AppState`]) and the
//! signed-in agent extractor, the real-time transports ([`transport`]: WebSocket, the HTTP
//! fallback, the widget's other requests, uploads), the REST API ([`api`]), the console's ports
//! to mail and translation settings, the history export, the demo page, and the router that
//! puts them together ([`routes`]). Nothing below this layer imports it.

pub mod api;
pub mod console_mail;
pub mod console_translation;
pub mod demo;
pub mod export;
pub mod routes;
pub mod signed_in;
pub mod state;
pub mod transport;
