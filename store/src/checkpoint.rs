//! SQLite's checkpoints, on their own connection and thread, never inside a `COMMIT`.
//!
//! In WAL mode every commit appends pages to the write-ahead log, and a checkpoint copies them
//! back into the database file. SQLite's default runs that copy inside whichever `COMMIT` takes
//! the log past 1,000 pages — in the group-commit writer, that stalls every message of the next
//! batch behind it. The store's connections turn that off (`wal_autocheckpoint = 0`) and this
//! thread checkpoints instead: a `PASSIVE` checkpoint every [`PERIOD`], which runs beside the
//! writer and never waits for it. Under steady writes a passive checkpoint never catches up with
//! the log's end, so the log is never started again from its beginning and only grows; once it
//! is past [`TRUNCATE_FRAMES`], the thread takes the store's write queue (writers wait in it for
//! as long as the last frames take to copy), checkpoints what is left and truncates the log.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Mutex;

use crate::{Durability, Error, Result};

/// How often the log is copied back into the database file.
const PERIOD: Duration = Duration::from_millis(250);

/// Pages in the log (4 KiB each: 64 MiB) past which it is truncated under the write queue.
const TRUNCATE_FRAMES: i64 = 16_384;

/// The handle the store keeps; [`Checkpoints::stop`] (or dropping it) ends the thread.
pub(crate) struct Checkpoints {
    /// The sender dropped to tell the thread to stop, and the thread, joined on stop so its
    /// connection is closed before the pool's last one is; taken by the first stop.
    running: std::sync::Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl Checkpoints {
    /// Opens a connection to the database at `path` and starts the thread that checkpoints it.
    pub(crate) fn start(
        path: &Path,
        write_queue: Arc<Mutex<()>>,
        durability: Durability,
        busy_timeout: Duration,
    ) -> Result<Checkpoints> {
        let conn = crate::group_commit::open(path, durability, busy_timeout)?;
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kefu-sqlite-checkpoints".into())
            .spawn(move || run(&conn, &stopped, &write_queue))
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

/// A checkpoint every [`PERIOD`] until the store stops it.
fn run(conn: &Connection, stopped: &mpsc::Receiver<()>, write_queue: &Mutex<()>) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(PERIOD) {
        match checkpoint(conn, "PASSIVE") {
            Ok(frames) if frames >= TRUNCATE_FRAMES => {
                let turn = write_queue.blocking_lock();
                if let Err(error) = checkpoint(conn, "TRUNCATE") {
                    tracing::warn!(%error, frames, "the write-ahead log could not be truncated");
                }
                drop(turn);
            }
            Ok(_) => {}
            // A full disk or a busy reader: the next turn tries again, and the log only grows.
            Err(error) => tracing::warn!(%error, "checkpoint failed"),
        }
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)`; the pages in the log afterwards.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        row.get::<_, i64>(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `wal_autocheckpoint = 0` a commit never checkpoints, however long the log; the
    /// thread does, and truncates a log past its limit.
    #[test]
    fn commits_never_checkpoint_and_the_thread_truncates_a_long_log() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("k.db");
        let conn = crate::group_commit::open(&path, Durability::Normal, Duration::from_secs(5))
            .expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB);")
            .expect("schema");
        // 20,000 single-page commits: far past SQLite's default checkpoint at 1,000 pages.
        let mut insert = conn
            .prepare("INSERT INTO t VALUES (zeroblob(3000))")
            .expect("sql");
        for _ in 0..20_000 {
            insert.execute([]).expect("insert");
        }
        drop(insert);
        let wal = dir.path().join("k.db-wal");
        let before = std::fs::metadata(&wal).expect("wal").len();
        assert!(
            before > 4096 * u64::try_from(TRUNCATE_FRAMES).expect("small"),
            "the commits checkpointed: the log is only {before} bytes"
        );

        let write_queue = Arc::new(Mutex::new(()));
        let checkpoints = Checkpoints::start(
            &path,
            write_queue,
            Durability::Normal,
            Duration::from_secs(5),
        )
        .expect("start");
        // The thread's first turn copies the log back and truncates it.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::fs::metadata(&wal).map_or(0, |m| m.len()) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was never truncated"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .expect("count");
        assert_eq!(rows, 20_000);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(checkpoints.stop());
    }
}
