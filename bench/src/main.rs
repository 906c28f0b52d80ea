//! `kefu-bench`: the load benchmark behind `make bench` (see `docs/benchmarks.md`).
//!
//! Without arguments it is the coordinator: it measures a raw WebSocket echo server as the
//! floor, then a real kefu server, and prints every figure with its target and its ratio to the
//! floor. Targets are reported, never asserted: the run exits 0 when a target is missed, and
//! non-zero only when a scenario could not be measured at all.
//!
//! The same binary, started with a subcommand, is each of the coordinator's child processes:
//! `server DIR` (kefu), `echo` (the floor) and `worker` (a client process holding idle
//! connections — one process may hold only ~20,000 file descriptors here). `history` is the
//! separate history-search benchmark (see `history.rs`), `cluster` the multi-node one (see
//! `cluster.rs`), `soak` the long run behind `make soak` (see `soak.rs`).

mod children;
mod client;
mod cluster;
mod coordinator;
mod echo;
mod history;
mod report;
mod serve;
mod soak;
mod stats;
mod worker;

use std::process::ExitCode;

/// Any error, with its message; the bench reports and moves on or stops, never recovers.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The bench's result type.
type Result<T, E = BoxError> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("run") => coordinator::main(),
        Some("worker") => worker::main().map(|()| true),
        Some("echo") => echo::main().map(|()| true),
        Some("history") => history::main(),
        Some("server") => serve::main(
            args.get(1).map(String::as_str),
            args.get(2).map(String::as_str),
            args.get(3).map(String::as_str),
        )
        .map(|()| true),
        Some("cluster") => cluster::main(),
        Some("soak") => soak::main(),
        Some(other) => Err(format!(
            "unknown subcommand {other:?} (run without arguments; KEFU_BENCH_SCALE=0.1 for a quick run)"
        )
        .into()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("kefu-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
