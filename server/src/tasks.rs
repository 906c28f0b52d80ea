//! The node's background tasks, tracked: every task the server starts outside a request goes
//! through [`Tasks`], so a shutdown stops the loops (a webhook sender, the snooze waker, the
//! bus link) and waits, for a bounded time, for the one-off tasks in flight (a webhook event
//! being queued, a message being translated) instead of dropping them with the runtime.

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Spawns and tracks the node's background tasks; cheap to clone (every clone is the same
/// set).
#[derive(Clone, Default)]
pub struct Tasks {
    /// Every task spawned, finished or not: a shutdown waits on it.
    tracker: TaskTracker,
    /// Fired at shutdown: loops stop at their next await.
    stop: CancellationToken,
}

impl Tasks {
    /// Runs `task` to its end; a shutdown waits for it.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(task);
    }

    /// Runs `task`, a loop, until shutdown begins: it is cut at its next await then.
    pub fn spawn_loop(&self, task: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = task => {}
            }
        });
    }

    /// Stops the loops and waits up to `limit` for every task to end; `false` when some were
    /// still running then (they are dropped with the runtime).
    pub async fn shut_down(&self, limit: Duration) -> bool {
        self.tracker.close();
        self.stop.cancel();
        tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn shutdown_cuts_loops_and_waits_for_one_off_tasks() {
        let tasks = Tasks::default();
        let looped = Arc::new(AtomicBool::new(false));
        let flag = looped.clone();
        tasks.spawn_loop(async move {
            flag.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        });
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            flag.store(true, Ordering::SeqCst);
        });
        tokio::task::yield_now().await;
        assert!(looped.load(Ordering::SeqCst));
        assert!(tasks.shut_down(Duration::from_secs(60)).await);
        assert!(
            finished.load(Ordering::SeqCst),
            "the one-off task ran to its end"
        );
    }

    #[tokio::test]
    async fn a_task_that_never_ends_is_cut_off_at_the_limit() {
        let tasks = Tasks::default();
        tasks.spawn(std::future::pending::<()>());
        assert!(!tasks.shut_down(Duration::from_millis(50)).await);
    }
}
