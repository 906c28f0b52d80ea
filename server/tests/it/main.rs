//! The server's integration tests, linked as one binary: one link instead of one per file.
//! The suites that must run alone (they measure the process, or stop and start servers under
//! load with one test at a time) have their own binaries: `chaos`, `cluster`, `faults`,
//! `replay` and `login` (see the Makefile's `unit`).

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod api;
mod assignment;
mod attachments;
mod backup;
mod budgets;
mod cli;
mod console;
mod disk_full;
mod edge;
mod email;
mod history;
mod http;
mod init;
mod invite;
mod leptos_toml;
mod migrate_to;
mod readiness;
mod realtime;
mod setup;
mod translate;
mod translation;
mod webhooks;
mod widget;
