//! Process counters rendered in the Prometheus text format at `/metrics`.
//!
//! Plain atomics: no registry crate is needed for a handful of counters, and reading them never
//! blocks a request.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by all requests.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Every HTTP request the router saw, to spot traffic changes.
    pub http_requests: AtomicU64,
    /// Responses with a 5xx status, the first sign of trouble.
    pub http_server_errors: AtomicU64,
    /// Failed readiness checks (the database did not answer).
    pub readiness_failures: AtomicU64,
    /// Connections accepted and closed at once because the process had no descriptor left
    /// for them (`http_server`): the node is over its open-file limit.
    pub accepts_shed: AtomicU64,
}

/// What the real-time core counts itself, for [`Metrics::render`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreCounts {
    /// Subscribers that fell behind and caught up from the store.
    pub lag_catch_ups: u64,
    /// Sends refused for a full write queue (overload).
    pub refused_busy: u64,
}

impl Metrics {
    /// Counts one finished request with its status code.
    pub fn record_response(&self, status: u16) {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.http_server_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The exposition text, with HELP and TYPE lines for each metric. `core` is counted by the
    /// real-time core itself; `alive_tasks` comes from the tokio runtime.
    pub fn render(&self, backend: &str, core: CoreCounts, alive_tasks: usize) -> String {
        let counters = [
            (
                "kefu_http_requests_total",
                "HTTP requests handled.",
                &self.http_requests,
            ),
            (
                "kefu_http_server_errors_total",
                "HTTP responses with a 5xx status.",
                &self.http_server_errors,
            ),
            (
                "kefu_readiness_failures_total",
                "Readiness checks that failed because the database did not answer.",
                &self.readiness_failures,
            ),
            (
                "kefu_accepts_shed_total",
                "Connections closed at once for want of a file descriptor.",
                &self.accepts_shed,
            ),
        ];
        let mut out = format!(
            "# HELP kefu_build_info Build and storage information.\n# TYPE kefu_build_info gauge\nkefu_build_info{{version=\"{}\",backend=\"{backend}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        );
        let counters = counters
            .into_iter()
            .map(|(name, help, value)| (name, help, value.load(Ordering::Relaxed)))
            .chain([
                (
                    "kefu_realtime_lag_catch_ups_total",
                    "Subscribers that fell behind the live stream and caught up from the store.",
                    core.lag_catch_ups,
                ),
                (
                    "kefu_sends_refused_busy_total",
                    "Messages refused with a retry because too many were waiting to be stored.",
                    core.refused_busy,
                ),
            ]);
        for (name, help, value) in counters {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        }
        // A task per connection, poll and background job: a count that keeps growing under a
        // steady load is a leak (`make soak` samples it).
        out.push_str(&format!(
            "# HELP kefu_tokio_alive_tasks Tasks alive in the server's tokio runtime.\n\
             # TYPE kefu_tokio_alive_tasks gauge\nkefu_tokio_alive_tasks {alive_tasks}\n"
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_in_text_format() {
        let metrics = Metrics::default();
        metrics.record_response(200);
        metrics.record_response(503);
        let core = CoreCounts {
            lag_catch_ups: 3,
            refused_busy: 5,
        };
        let text = metrics.render("sqlite", core, 17);
        assert!(text.contains("kefu_http_requests_total 2\n"), "{text}");
        assert!(text.contains("kefu_http_server_errors_total 1\n"), "{text}");
        assert!(text.contains("backend=\"sqlite\""), "{text}");
        assert!(text.contains("# TYPE kefu_http_requests_total counter"));
        assert!(
            text.contains("kefu_realtime_lag_catch_ups_total 3\n"),
            "{text}"
        );
        assert!(text.contains("kefu_sends_refused_busy_total 5\n"), "{text}");
        assert!(
            text.contains("# TYPE kefu_tokio_alive_tasks gauge\n"),
            "{text}"
        );
        assert!(text.contains("kefu_tokio_alive_tasks 17\n"), "{text}");
    }
}
