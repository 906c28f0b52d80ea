//! SQLite's group commit: one thread owns the connection that appends messages (and stores
//! visitors' first contacts), and commits whatever is queued as one transaction.
//!
//! One message per transaction costs a `COMMIT` (its WAL frames and, every few dozen messages,
//! a checkpoint) and some eight hand-offs to sqlx's worker thread under the write queue; under
//! load messages wait behind each other's commits. Here appends wait in a bounded queue; the
//! thread takes the first, then every job already queued (at most [`MAX_BATCH`]), and runs them
//! in one `BEGIN IMMEDIATE … COMMIT` with a savepoint per job, so a job that fails (a
//! conversation that does not exist) is rolled back alone. There is no timer: a lone message
//! commits at once, and the batch grows with the load. Replies go out only after `COMMIT`
//! returns; a failed commit fails every job of the batch and, rolled back, uses up no seq.
//!
//! The connection is rusqlite's, on the same `libsqlite3-sys` as the pool (`links = "sqlite3"`
//! allows only one SQLite library in the process): plain calls on this thread, no hand-offs. For
//! each batch it takes the store's write queue, the `tokio::sync::Mutex` the pool's writers wait
//! on, so batches and other writes never meet in SQLite's busy handler.
//!
//! Should the thread panic mid-batch, that batch's jobs are answered with an error (nothing of
//! them is committed), the store reports itself unhealthy ([`GroupCommit::health`], which
//! `/readyz` reads), and after [`RESTART_PAUSE`] the thread opens a new connection and serves
//! the jobs that queued meanwhile.
//!
//! A visitor's contact (`upsert_visitor`, each new visitor's hello) is a job too: a reconnect
//! storm of new visitors is then a few batches, not one transaction each through the pool.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::model::visitor_columns;
use crate::{
    ConversationId, Durability, Error, Message, MessageId, NewMessage, Result, SiteId, UnixMillis,
    Visitor, VisitorAttributes, VisitorId,
};

/// Most jobs committed together: bounds how long the write queue is held at once.
const MAX_BATCH: usize = 512;

/// Jobs that may wait for the writer besides the batch it is committing; an append past it
/// is refused at once ([`Error::Busy`]), so a wait is at most about two batches long (and
/// usually much less: [`MAX_WAIT_NS`]).
const QUEUE: usize = MAX_BATCH;

/// The longest a job should expect to wait in the queue (40 ms): past it, by the writer's
/// measured cost per job, a job is refused at once ([`Error::Busy`]) even though there is
/// room. What an overloaded writer accepts is then committed within about twice this,
/// whatever the disk's speed, instead of after a full queue.
const MAX_WAIT_NS: u64 = 40_000_000;

/// Jobs a batch must have for its time to count in the cost per job: a lone job's commit is
/// mostly the commit's own fixed cost, which a batch shares.
const MEASURED_BATCH: usize = 8;

/// Whether a job that would wait behind `queued` others, each costing `per_job_ns` of the
/// writer's time (0: not measured yet), should be refused.
fn waits_too_long(queued: usize, per_job_ns: u64) -> bool {
    let expected = u64::try_from(queued)
        .unwrap_or(u64::MAX)
        .saturating_mul(per_job_ns);
    per_job_ns > 0 && queued >= MEASURED_BATCH && expected > MAX_WAIT_NS
}

/// The log's length (4 KiB pages: 16 MiB) at which the writer checkpoints what the checkpoint
/// thread has not yet copied (`checkpoint.rs`).
const WRITER_CHECKPOINT_PAGES: u32 = 4096;

/// Bytes a log is cut back to when it starts again (`journal_size_limit`).
const LOG_LIMIT: u64 = 64 * 1024 * 1024;

/// How long a writer that panicked waits before opening a new connection: a fault that
/// returns at once is not retried in a tight loop.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// What a job asks for.
pub(crate) enum Append {
    /// [`crate::Messages::append_message`].
    To(ConversationId),
    /// [`crate::Messages::append_message_in_open_conversation`].
    Open(SiteId, VisitorId),
    /// A fault a test injects into a batch.
    #[cfg(test)]
    Fault(Fault),
}

/// The faults a test can put in a batch.
#[cfg(test)]
#[derive(Clone, Copy)]
pub(crate) enum Fault {
    /// The writer thread panics.
    Panic,
    /// The batch's `COMMIT` fails: a message in a conversation that does not exist, its
    /// foreign key checked only at `COMMIT`.
    FailCommit,
}

/// What a job did, once its batch is committed.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Stored as a new message, in a conversation this append started or not.
    Stored {
        /// The message as stored.
        message: Message,
        /// Whether the append started its conversation.
        created_conversation: bool,
        /// Whether the conversation was resolved or snoozed ([`crate::Appended::parked`]).
        parked: bool,
    },
    /// A resend: the message stored earlier under this client id.
    Resent(MessageId),
}

/// What a job asks the writer to do in its batch.
enum Work {
    /// Append a message.
    Append(Append, NewMessage),
    /// [`crate::Visitors::upsert_visitor`]: a visitor's first contact, or a returning one's.
    Visitor {
        /// The visitor's site.
        site: SiteId,
        /// The widget's key for the visitor.
        key: String,
        /// When they were seen.
        now: UnixMillis,
    },
}

/// What a job did, before its batch is committed.
enum Done {
    /// An append's outcome.
    Append(Outcome),
    /// The visitor as stored.
    Visitor(Visitor),
}

/// Where a job is answered once its batch is committed (or has failed).
enum Reply {
    /// An append's asker.
    Append(oneshot::Sender<Result<Outcome>>),
    /// A visitor upsert's asker.
    Visitor(oneshot::Sender<Result<Visitor>>),
}

impl Reply {
    /// Answers with `done`. The asker may have gone (a dropped connection): what it asked for
    /// is stored all the same.
    fn send(self, done: Result<Done>) {
        match (self, done) {
            (Reply::Append(asker), Ok(Done::Append(outcome))) => {
                let _ = asker.send(Ok(outcome));
            }
            (Reply::Visitor(asker), Ok(Done::Visitor(visitor))) => {
                let _ = asker.send(Ok(visitor));
            }
            (Reply::Append(asker), Err(error)) => {
                let _ = asker.send(Err(error));
            }
            (Reply::Visitor(asker), Err(error)) => {
                let _ = asker.send(Err(error));
            }
            // A job is built with its own kind of reply: never reached.
            (Reply::Append(asker), Ok(_)) => {
                let _ = asker.send(Err(stopped("a mismatched answer")));
            }
            (Reply::Visitor(asker), Ok(_)) => {
                let _ = asker.send(Err(stopped("a mismatched answer")));
            }
        }
    }
}

/// One job waiting for its batch.
struct Job {
    /// What to do.
    work: Work,
    /// Who to answer.
    reply: Reply,
}

/// What the thread is asked.
enum Request {
    /// Store a message or a visitor.
    Job(Job),
    /// Commit what came before, close the connection, then answer (see [`GroupCommit::close`]).
    Close(oneshot::Sender<()>),
}

/// The handle the store keeps: where appends are queued. Dropping it ends the thread once the
/// queued jobs are done.
pub(crate) struct GroupCommit {
    /// The thread's bounded queue; a full one refuses appends.
    jobs: mpsc::Sender<Request>,
    /// False while the thread has no working connection: from a panic until it has opened a
    /// new one.
    up: Arc<AtomicBool>,
    /// What a job costs the writer, in nanoseconds (a moving average over batches of at least
    /// [`MEASURED_BATCH`]; 0 until one ran): how long a new job would wait.
    per_job_ns: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Opens a connection to the database at `path` (already created and migrated by the pool)
    /// and starts the thread that owns it. `pages` is the size cap the pool's connections also
    /// apply (see `PageLimit`), read again before each batch.
    pub(crate) fn start(
        path: &Path,
        write_queue: Arc<Mutex<()>>,
        pages: Option<Arc<AtomicU32>>,
        durability: Durability,
        busy_timeout: Duration,
    ) -> Result<GroupCommit> {
        let (writer, queue) = GroupCommit::idle();
        writer.spawn(queue, path, write_queue, pages, durability, busy_timeout)?;
        Ok(writer)
    }

    /// The handle and its queue, with no thread taking from it yet.
    fn idle() -> (GroupCommit, mpsc::Receiver<Request>) {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let up = Arc::new(AtomicBool::new(true));
        let per_job_ns = Arc::new(AtomicU64::new(0));
        (
            GroupCommit {
                jobs,
                up,
                per_job_ns,
            },
            queue,
        )
    }

    /// Opens the writer's connection and starts the thread that takes from `queue`.
    fn spawn(
        &self,
        queue: mpsc::Receiver<Request>,
        path: &Path,
        write_queue: Arc<Mutex<()>>,
        pages: Option<Arc<AtomicU32>>,
        durability: Durability,
        busy_timeout: Duration,
    ) -> Result<()> {
        let conn = open_writer(path, durability, busy_timeout)?;
        let writer = Writer {
            path: path.to_path_buf(),
            durability,
            busy_timeout,
            write_queue,
            pages,
            up: self.up.clone(),
            per_job_ns: self.per_job_ns.clone(),
        };
        std::thread::Builder::new()
            .name("kefu-sqlite-writer".into())
            .spawn(move || writer.supervise(conn, queue))
            .map_err(|error| Error::Writer {
                message: format!("cannot start the SQLite writer: {error}"),
                disk_full: false,
            })?;
        Ok(())
    }

    /// Whether the writer can take appends: an error while it starts again after a panic.
    pub(crate) fn health(&self) -> Result<()> {
        if self.up.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(stopped(
                "the SQLite writer is starting again after a failure",
            ))
        }
    }

    /// Queues `message` and waits for its batch to be committed; [`Error::Busy`] at once when
    /// the queue is full.
    pub(crate) async fn append(&self, append: Append, message: NewMessage) -> Result<Outcome> {
        self.enqueue(append, message)?
            .await
            .map_err(|_| stopped("the SQLite writer stopped before committing"))?
    }

    /// Queues `message`; the answer comes once its batch is committed.
    fn enqueue(
        &self,
        append: Append,
        message: NewMessage,
    ) -> Result<oneshot::Receiver<Result<Outcome>>> {
        let (reply, answer) = oneshot::channel();
        self.queue(Work::Append(append, message), Reply::Append(reply))?;
        Ok(answer)
    }

    /// Stores a visitor's contact as [`crate::Visitors::upsert_visitor`] does, in the next
    /// batch: a storm of new visitors' hellos is committed together.
    pub(crate) async fn upsert_visitor(
        &self,
        site: SiteId,
        key: &str,
        now: UnixMillis,
    ) -> Result<Visitor> {
        let (reply, answer) = oneshot::channel();
        let work = Work::Visitor {
            site,
            key: key.to_owned(),
            now,
        };
        self.queue(work, Reply::Visitor(reply))?;
        answer
            .await
            .map_err(|_| stopped("the SQLite writer stopped before committing"))?
    }

    /// Puts a job in the queue, or refuses it at once.
    fn queue(&self, work: Work, reply: Reply) -> Result<()> {
        let queued = self.jobs.max_capacity() - self.jobs.capacity();
        if waits_too_long(queued, self.per_job_ns.load(Ordering::Relaxed)) {
            return Err(Error::Busy);
        }
        match self.jobs.try_send(Request::Job(Job { work, reply })) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Error::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(stopped("the SQLite writer has stopped"))
            }
        }
    }

    /// Commits what is queued, closes the writer's connection and waits until it is closed, so
    /// that the pool's last connection can checkpoint the file and remove its write-ahead log
    /// (`Store::close`). Appends after it fail.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.jobs.send(Request::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

/// Opens a connection to the database at `path` as the store's own threads use it: it never
/// checkpoints inside its commits, and it syncs as `durability` says.
pub(crate) fn open(
    path: &Path,
    durability: Durability,
    busy_timeout: Duration,
) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| writer_error(&e))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| writer_error(&e))?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
        durability.synchronous()
    ))
    .map_err(|e| writer_error(&e))?;
    Ok(conn)
}

/// The writer's connection: as [`open`], but it copies what the checkpoint thread has not yet
/// copied once the log is long, so that its next batch starts the log again (`checkpoint.rs`).
fn open_writer(path: &Path, durability: Durability, busy_timeout: Duration) -> Result<Connection> {
    let conn = open(path, durability, busy_timeout)?;
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}; \
         PRAGMA journal_size_limit = {LOG_LIMIT};"
    ))
    .map_err(|e| writer_error(&e))?;
    Ok(conn)
}

/// What the writer thread needs besides its connection and queue, to run and to start again.
struct Writer {
    /// The database file, opened again after a panic.
    path: PathBuf,
    /// How commits are synced.
    durability: Durability,
    /// How long a commit waits for another process's write.
    busy_timeout: Duration,
    /// The store's queue of writers, taken for each batch.
    write_queue: Arc<Mutex<()>>,
    /// The size cap the pool also applies (`PageLimit`), if the store has one.
    pages: Option<Arc<AtomicU32>>,
    /// Shared with [`GroupCommit::up`].
    up: Arc<AtomicBool>,
    /// Shared with [`GroupCommit::per_job_ns`].
    per_job_ns: Arc<AtomicU64>,
}

/// Why [`Writer::run`] returned.
enum Ended {
    /// The store is closed (or dropped); the sender, if any, waits for the connection to close.
    Closed(Option<oneshot::Sender<()>>),
    /// A batch panicked; its jobs have been answered.
    Panicked,
}

impl Writer {
    /// Runs batches until the store is closed, on a new connection after each panic.
    fn supervise(self, mut conn: Connection, mut queue: mpsc::Receiver<Request>) {
        loop {
            match self.run(&mut conn, &mut queue) {
                Ended::Closed(done) => {
                    drop(conn);
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
                Ended::Panicked => {
                    tracing::error!("the SQLite writer failed; it starts again");
                    conn = loop {
                        std::thread::sleep(RESTART_PAUSE);
                        if queue.is_closed() && queue.is_empty() {
                            return;
                        }
                        match open_writer(&self.path, self.durability, self.busy_timeout) {
                            Ok(conn) => break conn,
                            Err(error) => {
                                tracing::error!(%error, "the SQLite writer cannot start again")
                            }
                        }
                    };
                    self.up.store(true, Ordering::SeqCst);
                    tracing::info!("the SQLite writer runs again");
                }
            }
        }
    }

    /// A batch per turn until the store is closed or a batch panics.
    fn run(&self, conn: &mut Connection, queue: &mut mpsc::Receiver<Request>) -> Ended {
        let mut closing = None;
        while closing.is_none() {
            let Some(first) = queue.blocking_recv() else {
                break;
            };
            let mut replies = Vec::with_capacity(MAX_BATCH);
            let mut batch = Vec::with_capacity(MAX_BATCH);
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Job(job) => {
                        replies.push(job.reply);
                        batch.push(job.work);
                    }
                    Request::Close(done) => closing = Some(done),
                }
                if closing.is_none() && batch.len() < MAX_BATCH {
                    next = queue.try_recv().ok();
                }
            }
            if batch.is_empty() {
                continue;
            }
            let jobs = batch.len();
            let turn = self.write_queue.blocking_lock();
            let started = std::time::Instant::now();
            let pages = self.pages.as_deref();
            let committed =
                std::panic::catch_unwind(AssertUnwindSafe(|| commit(conn, batch, pages)));
            drop(turn);
            if jobs >= MEASURED_BATCH {
                let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let per_job = elapsed / u64::try_from(jobs).unwrap_or(u64::MAX);
                let before = self.per_job_ns.load(Ordering::Relaxed);
                let average = if before == 0 {
                    per_job
                } else {
                    (before.saturating_mul(7)).saturating_add(per_job) / 8
                };
                self.per_job_ns.store(average, Ordering::Relaxed);
            }
            let Ok(committed) = committed else {
                // Down before anyone hears of it, so whoever saw the failure sees it unhealthy.
                self.up.store(false, Ordering::SeqCst);
                for reply in replies {
                    reply.send(Err(stopped("the SQLite writer failed; send again")));
                }
                return Ended::Panicked;
            };
            let outcomes: Vec<Result<Done>> = match committed {
                Ok(outcomes) => outcomes,
                Err(error) => {
                    tracing::warn!(%error, jobs = replies.len(), "a batch failed to commit");
                    (0..replies.len())
                        .map(|_| Err(commit_error(&error)))
                        .collect()
                }
            };
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                reply.send(outcome);
            }
        }
        Ended::Closed(closing)
    }
}

/// Runs `batch` in one transaction: each job's outcome, in order, or the error that failed the
/// whole transaction (nothing of it is then committed).
fn commit(
    conn: &mut Connection,
    batch: Vec<Work>,
    pages: Option<&AtomicU32>,
) -> rusqlite::Result<Vec<Result<Done>>> {
    if let Some(pages) = pages {
        let pages = pages.load(Ordering::SeqCst);
        conn.execute_batch(&format!("PRAGMA max_page_count = {pages}"))?;
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let outcomes = batch
        .into_iter()
        .map(|work| in_savepoint(&tx, work))
        .collect();
    tx.commit()?;
    Ok(outcomes)
}

/// One job in its own savepoint: kept when it stored something, rolled back otherwise.
fn in_savepoint(tx: &rusqlite::Transaction<'_>, work: Work) -> Result<Done> {
    tx.execute_batch("SAVEPOINT job")
        .map_err(|e| writer_error(&e))?;
    // The failing commit's row must reach the `COMMIT`.
    #[cfg(test)]
    let fails_commit = matches!(work, Work::Append(Append::Fault(Fault::FailCommit), _));
    let done = match work {
        Work::Append(Append::To(conversation), message) => {
            append_to(tx, conversation, message).map(Done::Append)
        }
        Work::Append(Append::Open(site, visitor), message) => {
            append_open(tx, site, visitor, message).map(Done::Append)
        }
        #[cfg(test)]
        Work::Append(Append::Fault(fault), _) => inject(tx, fault).map(Done::Append),
        Work::Visitor { site, key, now } => upsert_visitor(tx, site, &key, now).map(Done::Visitor),
    };
    let keep = matches!(
        done,
        Ok(Done::Append(Outcome::Stored { .. }) | Done::Visitor(_))
    );
    #[cfg(test)]
    let keep = keep || fails_commit;
    let end = if keep {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    tx.execute_batch(end).map_err(|e| writer_error(&e))?;
    done
}

/// The visitor `key` names on `site`, seen at `now`: updated when known, stored when new.
fn upsert_visitor(
    tx: &rusqlite::Transaction<'_>,
    site: SiteId,
    key: &str,
    now: UnixMillis,
) -> Result<Visitor> {
    // Update first: no insert attempted for a returning visitor (the pool's path does the
    // same, for MySQL's AUTO_INCREMENT's sake).
    let seen = tx
        .query_row(
            concat!(
                "UPDATE visitors SET last_seen_at = MAX(last_seen_at, ?1) \
                 WHERE site_id = ?2 AND visitor_key = ?3 RETURNING ",
                visitor_columns!()
            ),
            params![now, site.0, key],
            visitor_row,
        )
        .optional()
        .map_err(|e| writer_error(&e))?;
    if let Some(visitor) = seen {
        return Ok(visitor);
    }
    tx.query_row(
        concat!(
            "INSERT INTO visitors (site_id, visitor_key, created_at, last_seen_at) \
             VALUES (?1, ?2, ?3, ?3) RETURNING ",
            visitor_columns!()
        ),
        params![site.0, key, now],
        visitor_row,
    )
    .map_err(|e| writer_error(&e))
}

/// A visitor read with `visitor_columns!()`.
fn visitor_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Visitor> {
    let attributes: String = row.get(5)?;
    Ok(Visitor {
        id: VisitorId(row.get(0)?),
        site_id: SiteId(row.get(1)?),
        visitor_key: row.get(2)?,
        name: row.get(3)?,
        email: row.get(4)?,
        attributes: VisitorAttributes::try_from(attributes).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, error.into())
        })?,
        created_at: row.get(6)?,
        last_seen_at: row.get(7)?,
        language: row.get(8)?,
    })
}

/// Appends `message` to `conversation` under its next seq, unless the conversation already
/// holds its client id.
fn append_to(
    tx: &rusqlite::Transaction<'_>,
    conversation: ConversationId,
    message: NewMessage,
) -> Result<Outcome> {
    let existing = find(
        tx,
        "SELECT id FROM messages WHERE conversation_id = ?1 AND client_id = ?2",
        params![conversation.0, message.client_id.0],
    )?;
    match existing {
        Some(id) => Ok(Outcome::Resent(MessageId(id))),
        None => store_new(tx, conversation, message, false),
    }
}

/// Stores `message` in `conversation` under its next seq, its client id known to be new there.
fn store_new(
    tx: &rusqlite::Transaction<'_>,
    conversation: ConversationId,
    message: NewMessage,
    created_conversation: bool,
) -> Result<Outcome> {
    let bumped = tx
        .query_row(
            "UPDATE conversations SET last_seq = last_seq + 1, \
             updated_at = MAX(updated_at, ?1) WHERE id = ?2 \
             RETURNING last_seq, status, snoozed_until",
            params![message.created_at, conversation.0],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                ))
            },
        )
        .optional()
        .map_err(|e| writer_error(&e))?;
    let Some((seq, status, snoozed_until)) = bumped else {
        return Err(Error::NotFound);
    };
    let id = one(
        tx,
        "INSERT INTO messages \
         (conversation_id, seq, client_id, author, agent_id, body, attachment, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        params![
            conversation.0,
            seq,
            message.client_id.0,
            message.author.as_str(),
            message.agent_id.map(|agent| agent.0),
            message.body,
            message.attachment_text()?,
            message.created_at,
        ],
    )?;
    // A new row: nothing of it is in the index yet.
    tx.execute(
        "INSERT INTO messages_fts (rowid, tokens) VALUES (?1, ?2)",
        params![id, crate::search::fts5_text(&message.body)],
    )
    .map_err(|e| writer_error(&e))?;
    Ok(Outcome::Stored {
        message: Message::stored(MessageId(id), conversation, seq, message),
        created_conversation,
        parked: crate::model::parked(&status, snoozed_until),
    })
}

/// Appends `message` to the visitor's open conversation, starting one when there is none; a
/// resend is found in any of the visitor's conversations.
fn append_open(
    tx: &rusqlite::Transaction<'_>,
    site: SiteId,
    visitor: VisitorId,
    message: NewMessage,
) -> Result<Outcome> {
    let known = find(
        tx,
        "SELECT id FROM visitors WHERE id = ?1 AND site_id = ?2",
        params![visitor.0, site.0],
    )?;
    if known.is_none() {
        return Err(Error::NotFound);
    }
    let resent = find(
        tx,
        "SELECT id FROM messages WHERE client_id = ?1 AND conversation_id IN \
         (SELECT id FROM conversations WHERE visitor_id = ?2) ORDER BY id LIMIT 1",
        params![message.client_id.0, visitor.0],
    )?;
    if let Some(id) = resent {
        return Ok(Outcome::Resent(MessageId(id)));
    }
    let open = find(
        tx,
        "SELECT id FROM conversations WHERE visitor_id = ?1 AND status <> 'resolved' \
         ORDER BY id DESC LIMIT 1",
        params![visitor.0],
    )?;
    let (conversation, created) = match open {
        Some(id) => (id, false),
        None => {
            let id = one(
                tx,
                "INSERT INTO conversations \
                 (site_id, visitor_id, status, last_seq, created_at, updated_at) \
                 VALUES (?1, ?2, 'open', 0, ?3, ?3) RETURNING id",
                params![site.0, visitor.0, message.created_at],
            )?;
            (id, true)
        }
    };
    // The resend check above covered every conversation of the visitor, this one included.
    store_new(tx, ConversationId(conversation), message, created)
}

/// The first column of the row `sql` finds (an id, a seq), if it finds one.
fn find(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<i64>> {
    tx.query_row(sql, params, |row| row.get(0))
        .optional()
        .map_err(|e| writer_error(&e))
}

/// The first column of the one row `sql` returns (an `INSERT … RETURNING id`).
fn one(tx: &rusqlite::Transaction<'_>, sql: &str, params: impl rusqlite::Params) -> Result<i64> {
    find(tx, sql, params)?.ok_or_else(|| writer_error(&rusqlite::Error::QueryReturnedNoRows))
}

/// SQLite's extended code for a foreign-key violation.
const SQLITE_CONSTRAINT_FOREIGNKEY: i32 = 787;

/// The store's error for a failure of the writer's connection: as for the pool's errors, a
/// foreign-key violation means a row the message names is missing.
fn writer_error(error: &rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(failure, _) = error
        && failure.extended_code == SQLITE_CONSTRAINT_FOREIGNKEY
    {
        return Error::NotFound;
    }
    Error::Writer {
        message: error.to_string(),
        disk_full: error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
    }
}

/// The store's error for a transaction that could not be begun or committed: whatever the
/// cause (a constraint checked at `COMMIT` included), the batch is not stored and may be sent
/// again, so it is never [`Error::NotFound`].
fn commit_error(error: &rusqlite::Error) -> Error {
    Error::Writer {
        message: error.to_string(),
        disk_full: error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
    }
}

/// Does what `fault` says, inside a batch.
#[cfg(test)]
fn inject(tx: &rusqlite::Transaction<'_>, fault: Fault) -> Result<Outcome> {
    match fault {
        Fault::Panic => panic!("a fault injected into the SQLite writer"),
        Fault::FailCommit => {
            tx.execute_batch(
                "PRAGMA defer_foreign_keys = ON; \
                 INSERT INTO messages (conversation_id, seq, client_id, author, body, created_at) \
                 VALUES (-1, 1, 'fault', 'visitor', 'fault', 1);",
            )
            .map_err(|e| writer_error(&e))?;
            Ok(Outcome::Resent(MessageId(0)))
        }
    }
}

/// The error for an append the writer thread never answered.
fn stopped(message: &str) -> Error {
    Error::Writer {
        message: message.to_owned(),
        disk_full: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DatabaseUrl, NewSite};
    use protocol::{Author, ClientId};

    fn message(n: usize) -> NewMessage {
        NewMessage {
            client_id: ClientId(format!("m{n}")),
            author: Author::Visitor,
            agent_id: None,
            body: format!("body {n}"),
            attachment: None,
            created_at: 1,
        }
    }

    /// A database with one conversation, whose id it returns.
    async fn database(dir: &tempfile::TempDir) -> (std::path::PathBuf, ConversationId) {
        let path = dir.path().join("k.db");
        let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).expect("url");
        let store = crate::connect(&url).await.expect("store");
        let site = store
            .create_site(NewSite {
                public_key: "key".into(),
                name: "shop".into(),
                allowed_origins: vec![],
                widget_settings: serde_json::json!({}),
                created_at: 1,
            })
            .await
            .expect("site");
        let visitor = store
            .upsert_visitor(site.id, "visitor", 1)
            .await
            .expect("visitor");
        let conversation = store
            .create_conversation(site.id, visitor.id, 1)
            .await
            .expect("conversation");
        store.close().await;
        (path, conversation.id)
    }

    /// Starts a writer on `path` whose first batch is `jobs`, all queued before it runs, and
    /// checks that every one of them fails with a writer error.
    async fn first_batch_fails(path: &Path, jobs: Vec<Append>) -> GroupCommit {
        let (writer, queue) = GroupCommit::idle();
        let answers: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(n, append)| writer.enqueue(append, message(n + 1)).expect("queued"))
            .collect();
        writer
            .spawn(
                queue,
                path,
                Arc::new(Mutex::new(())),
                None,
                Durability::Normal,
                Duration::from_secs(5),
            )
            .expect("writer");
        for answer in answers {
            let error = answer
                .await
                .expect("answered")
                .expect_err("not acknowledged");
            assert!(matches!(error, Error::Writer { .. }), "{error:?}");
        }
        writer
    }

    /// The seqs `conversation` holds, and its `last_seq`.
    fn stored(path: &Path, conversation: ConversationId) -> (Vec<i64>, i64) {
        let conn = Connection::open(path).expect("open");
        let mut seqs = conn
            .prepare("SELECT seq FROM messages WHERE conversation_id = ?1 ORDER BY seq")
            .expect("sql");
        let seqs = seqs
            .query_map([conversation.0], |row| row.get(0))
            .expect("query")
            .collect::<rusqlite::Result<Vec<i64>>>()
            .expect("rows");
        let last = conn
            .query_row(
                "SELECT last_seq FROM conversations WHERE id = ?1",
                [conversation.0],
                |row| row.get(0),
            )
            .expect("conversation");
        (seqs, last)
    }

    async fn stored_seq(writer: &GroupCommit, conversation: ConversationId, n: usize) -> i64 {
        match writer
            .append(Append::To(conversation), message(n))
            .await
            .expect("stored")
        {
            Outcome::Stored { message, .. } => message.seq,
            Outcome::Resent(_) => panic!("message {n} was not stored before"),
        }
    }

    /// A batch whose `COMMIT` fails acknowledges none of its jobs and uses up no seq; each
    /// is stored when sent again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_commit_acks_nothing_and_uses_up_no_seq() {
        let dir = tempfile::tempdir().expect("dir");
        let (path, conversation) = database(&dir).await;
        let writer = first_batch_fails(
            &path,
            vec![
                Append::To(conversation),
                Append::To(conversation),
                Append::Fault(Fault::FailCommit),
                Append::To(conversation),
            ],
        )
        .await;
        assert_eq!(stored(&path, conversation), (vec![], 0));

        for (n, seq) in [(1, 1), (2, 2), (4, 3)] {
            assert_eq!(stored_seq(&writer, conversation, n).await, seq);
        }
        assert_eq!(stored(&path, conversation), (vec![1, 2, 3], 3));
        writer.close().await;
    }

    /// A writer that panics mid-batch answers that batch's jobs with an error (none stored),
    /// reports itself unhealthy before anyone hears of the failure, and starts again: the job
    /// that queued meanwhile is stored, then the failed ones when sent again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_panics_fails_its_batch_and_starts_again() {
        let dir = tempfile::tempdir().expect("dir");
        let (path, conversation) = database(&dir).await;
        let writer = first_batch_fails(
            &path,
            vec![
                Append::To(conversation),
                Append::Fault(Fault::Panic),
                Append::To(conversation),
            ],
        )
        .await;
        assert!(writer.health().is_err(), "the writer is down");
        assert_eq!(stored(&path, conversation), (vec![], 0));

        // Queued while the writer is down; stored once it runs again.
        assert_eq!(stored_seq(&writer, conversation, 10).await, 1);
        writer.health().expect("up again");
        for (n, seq) in [(1, 2), (3, 3)] {
            assert_eq!(stored_seq(&writer, conversation, n).await, seq);
        }
        assert_eq!(stored(&path, conversation), (vec![1, 2, 3], 3));
        writer.close().await;
    }

    /// A job is refused when what is queued ahead of it would take longer than `MAX_WAIT_NS`,
    /// never before the cost is measured or for a handful of jobs.
    #[test]
    fn a_job_that_would_wait_too_long_is_refused() {
        let per_job = 100_000; // 0.1 ms
        let fits = usize::try_from(MAX_WAIT_NS / per_job).expect("small");
        assert!(!waits_too_long(fits, per_job));
        assert!(waits_too_long(fits + 1, per_job));
        assert!(!waits_too_long(QUEUE, 0), "not measured yet");
        assert!(!waits_too_long(MEASURED_BATCH - 1, u64::MAX), "a handful");
    }

    /// While the writer cannot commit (here: its write queue is held), appends queue up to
    /// about two batches; the next is refused at once with `Busy`, nothing of it stored, and
    /// once the writer runs again every queued append is committed in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_the_queued_appends_all_commit() {
        let dir = tempfile::tempdir().expect("dir");
        let (path, conversation) = database(&dir).await;

        let write_queue = Arc::new(Mutex::new(()));
        let writer = GroupCommit::start(
            &path,
            write_queue.clone(),
            None,
            Durability::Normal,
            Duration::from_secs(5),
        )
        .expect("writer");
        let held = write_queue.lock().await;
        let mut answers = Vec::new();
        let refused = loop {
            match writer.enqueue(Append::To(conversation), message(answers.len() + 1)) {
                Ok(answer) => answers.push(answer),
                Err(error) => break error,
            }
            assert!(answers.len() <= MAX_BATCH + QUEUE, "never refused");
        };
        assert!(matches!(refused, Error::Busy), "{refused:?}");
        assert!(
            answers.len() >= QUEUE,
            "refused after only {}",
            answers.len()
        );

        drop(held);
        let queued = answers.len();
        for (n, answer) in answers.into_iter().enumerate() {
            match answer.await.expect("answered").expect("stored") {
                Outcome::Stored { message, .. } => {
                    assert_eq!(message.seq, i64::try_from(n + 1).expect("small"));
                }
                Outcome::Resent(_) => panic!("nothing was sent twice"),
            }
        }
        // Room again: the next append is taken.
        let next = stored_seq(&writer, conversation, 10_000).await;
        assert_eq!(next, i64::try_from(queued + 1).expect("small"));
        writer.close().await;
    }
}
