//! How clients reach the real-time core over HTTP: the WebSocket endpoints (`ws`), the plain
//! HTTP fallback (`http`), the widget's other requests (`widget`) and file uploads
//! (`attachments`). Each turns a request into calls on [`crate::realtime`] and its answer into
//! a response; the delivery rules themselves live there, so both transports behave the same.

// Refusals are error frames sent to the client as they are; they are built once per refused
// request, never on the delivery path, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod attachments;
pub mod http;
#[cfg(test)]
mod properties;
pub mod widget;
pub mod ws;
