//! SQLite's checkpoints: the bulk on their own connection and thread, only the remainder
//! in the writer.
//!
//! In WAL mode every commit appends pages to the write-ahead log, and a checkpoint copies them
//! back into the database file. SQLite's default copies inside whichever `COMMIT` takes the log
//! past 1,000 pages: in the group-commit writer, the next batch waits behind the whole copy and
//! its sync, some 28 times a second at 2,000 single-message commits a second.
//!
//! Here a `PASSIVE` checkpoint runs every [`PERIOD`] on this thread, beside the writer, never
//! waiting for it. That alone is not enough: the log starts again from its beginning only when
//! a writer finds every frame of it copied, which under steady writes never happens (frames
//! keep arriving while a passive checkpoint copies), so the log would only grow. So the writer
//! keeps SQLite's own checkpoint, at 4,096 pages instead of 1,000 (`group_commit::open_writer`): by then this
//! thread has copied all but the last [`PERIOD`]'s frames (a checkpoint resumes where the last
//! stopped), the writer copies that remainder right after its commit, with no new frame
//! arriving meanwhile, and its next batch starts the log again. The pool's connections never
//! checkpoint (`wal_autocheckpoint = 0`), and a log longer than 64 MiB is cut back to it
//! when it starts again. The thread runs at a lower priority ([`NICENESS`]): on a saturated
//! machine, where copying elsewhere saves nothing, the writer does more of it.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::{Durability, Error, Result};

/// How often the log is copied back into the database file.
const PERIOD: Duration = Duration::from_millis(100);

/// The handle the store keeps; [`Checkpoints::stop`] (or dropping it) ends the thread.
pub(crate) struct Checkpoints {
    /// The sender dropped to tell the thread to stop, and the thread, joined on stop so its
    /// connection is closed before the pool's last one is; taken by the first stop.
    running: std::sync::Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl Checkpoints {
    /// Opens a connection to the database at `path` and starts the thread that checkpoints it.
    pub(crate) fn start(path: &Path, durability: Durability) -> Result<Checkpoints> {
        // A passive checkpoint never waits, so no busy timeout.
        let conn = crate::group_commit::open(path, durability, Duration::ZERO)?;
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kefu-sqlite-checkpoints".into())
            .spawn(move || run(&conn, &stopped))
            .map_err(|error| Error::Writer {
                message: format!("cannot start SQLite's checkpoints: {error}"),
                disk_full: false,
            })?;
        Ok(Checkpoints {
            running: std::sync::Mutex::new(Some((stop, thread))),
        })
    }

    /// Stops the thread and waits until its connection is closed.
    pub(crate) async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((stop, thread)) = running {
            drop(stop);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// How much less CPU time the thread asks for than Kefu's others (a `nice` value): when the
/// machine is saturated, the copying is left to the writer's remainder rather than taking
/// the cores that accept, store and deliver messages.
const NICENESS: i32 = 10;

/// A passive checkpoint every [`PERIOD`] until the store stops it.
fn run(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    // On Linux a thread's id names it alone for `setpriority`.
    if let Err(error) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICENESS)
    {
        tracing::debug!(%error, "the checkpoint thread keeps its priority");
    }
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(PERIOD) {
        // A full disk or a reader in the way: the next turn tries again, and meanwhile the
        // writer's own checkpoint copies more.
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection of the store's pool (or this thread) never checkpoints in its commits,
    /// however long the log; the thread copies the log into the database file.
    #[test]
    fn commits_never_checkpoint_and_the_thread_copies_the_log() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("k.db");
        let conn = crate::group_commit::open(&path, Durability::Normal, Duration::from_secs(5))
            .expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB);")
            .expect("schema");
        // 5,000 single-page commits: far past SQLite's default checkpoint at 1,000 pages.
        let mut insert = conn
            .prepare("INSERT INTO t VALUES (zeroblob(3000))")
            .expect("sql");
        for _ in 0..5_000 {
            insert.execute([]).expect("insert");
        }
        drop(insert);
        let size = |name: &str| std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
        let copied = 5_000 * 3_000;
        assert!(size("k.db-wal") > copied, "the log holds every commit");
        assert!(size("k.db") < copied, "no commit checkpointed");

        let checkpoints = Checkpoints::start(&path, Durability::Normal).expect("start");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while size("k.db") < copied {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was never copied"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .expect("count");
        assert_eq!(rows, 5_000);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(checkpoints.stop());
    }
}
