//! SQLite's group commit: one thread owns the connection that appends messages, and commits
//! whatever is queued as one transaction.
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

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{ConversationId, Error, Message, MessageId, NewMessage, Result, SiteId, VisitorId};

/// Most jobs committed together: bounds how long the write queue is held at once.
const MAX_BATCH: usize = 512;

/// Jobs that may wait for the writer besides the batch it is committing; an append past it
/// is refused at once ([`Error::Busy`]), so a wait is at most about two batches long.
const QUEUE: usize = MAX_BATCH;

/// What a job asks for.
pub(crate) enum Append {
    /// [`crate::Messages::append_message`].
    To(ConversationId),
    /// [`crate::Messages::append_message_in_open_conversation`].
    Open(SiteId, VisitorId),
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

/// One append waiting for its batch.
struct Job {
    /// Where the message goes.
    append: Append,
    /// The message.
    message: NewMessage,
    /// Answered once the batch is committed (or has failed).
    reply: oneshot::Sender<Result<Outcome>>,
}

/// What the thread is asked.
enum Request {
    /// Store a message.
    Append(Job),
    /// Commit what came before, close the connection, then answer (see [`GroupCommit::close`]).
    Close(oneshot::Sender<()>),
}

/// The handle the store keeps: where appends are queued. Dropping it ends the thread once the
/// queued jobs are done.
pub(crate) struct GroupCommit {
    /// The thread's bounded queue; a full one refuses appends.
    jobs: mpsc::Sender<Request>,
}

impl GroupCommit {
    /// Opens a connection to the database at `path` (already created and migrated by the pool)
    /// and starts the thread that owns it. `pages` is the size cap the pool's connections also
    /// apply (see `PageLimit`), read again before each batch.
    pub(crate) fn start(
        path: &Path,
        write_queue: Arc<Mutex<()>>,
        pages: Option<Arc<AtomicU32>>,
        busy_timeout: Duration,
    ) -> Result<GroupCommit> {
        let conn = Connection::open(path).map_err(|e| writer_error(&e))?;
        conn.busy_timeout(busy_timeout)
            .map_err(|e| writer_error(&e))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| writer_error(&e))?;
        let (jobs, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("kefu-sqlite-writer".into())
            .spawn(move || run(conn, queue, &write_queue, pages.as_deref()))
            .map_err(|error| Error::Writer {
                message: format!("cannot start the SQLite writer: {error}"),
                disk_full: false,
            })?;
        Ok(GroupCommit { jobs })
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
        let job = Job {
            append,
            message,
            reply,
        };
        match self.jobs.try_send(Request::Append(job)) {
            Ok(()) => Ok(answer),
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

/// The writer thread: a batch per turn until the store is dropped.
fn run(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Request>,
    write_queue: &Mutex<()>,
    pages: Option<&AtomicU32>,
) {
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = queue.blocking_recv() else {
            break;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Append(job) => batch.push(job),
                Request::Close(done) => closing = Some(done),
            }
            if closing.is_none() && batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        let turn = write_queue.blocking_lock();
        let answered = commit(&mut conn, batch, pages);
        drop(turn);
        for (reply, outcome) in answered {
            // The asker may have gone (a dropped connection): its message is stored all the same.
            let _ = reply.send(outcome);
        }
    }
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// A job's reply, and what to send on it.
type Answer = (oneshot::Sender<Result<Outcome>>, Result<Outcome>);

/// Runs `batch` in one transaction: each job's reply and outcome, or every job's error when
/// the transaction itself fails.
fn commit(conn: &mut Connection, batch: Vec<Job>, pages: Option<&AtomicU32>) -> Vec<Answer> {
    let fail_all = |replies: Vec<oneshot::Sender<Result<Outcome>>>, error: rusqlite::Error| {
        replies
            .into_iter()
            .map(|reply| (reply, Err(writer_error(&error))))
            .collect()
    };
    if let Some(pages) = pages {
        let pages = pages.load(Ordering::SeqCst);
        if let Err(error) = conn.execute_batch(&format!("PRAGMA max_page_count = {pages}")) {
            return fail_all(batch.into_iter().map(|job| job.reply).collect(), error);
        }
    }
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return fail_all(batch.into_iter().map(|job| job.reply).collect(), error),
    };
    let mut answered = Vec::with_capacity(batch.len());
    for job in batch {
        let outcome = in_savepoint(&tx, &job.append, job.message);
        answered.push((job.reply, outcome));
    }
    match tx.commit() {
        Ok(()) => answered,
        Err(error) => fail_all(
            answered.into_iter().map(|(reply, _)| reply).collect(),
            error,
        ),
    }
}

/// One job in its own savepoint: kept when it stored a message, rolled back otherwise.
fn in_savepoint(
    tx: &rusqlite::Transaction<'_>,
    append: &Append,
    message: NewMessage,
) -> Result<Outcome> {
    tx.execute_batch("SAVEPOINT job")
        .map_err(|e| writer_error(&e))?;
    let outcome = match append {
        Append::To(conversation) => append_to(tx, *conversation, message),
        Append::Open(site, visitor) => append_open(tx, *site, *visitor, message),
    };
    let end = match &outcome {
        Ok(Outcome::Stored { .. }) => "RELEASE job",
        _ => "ROLLBACK TO job; RELEASE job",
    };
    tx.execute_batch(end).map_err(|e| writer_error(&e))?;
    outcome
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

    /// While the writer cannot commit (here: its write queue is held), appends queue up to
    /// about two batches; the next is refused at once with `Busy`, nothing of it stored, and
    /// once the writer runs again every queued append is committed in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_the_queued_appends_all_commit() {
        let dir = tempfile::tempdir().expect("dir");
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

        let write_queue = Arc::new(Mutex::new(()));
        let writer = GroupCommit::start(&path, write_queue.clone(), None, Duration::from_secs(5))
            .expect("writer");
        let held = write_queue.lock().await;
        let mut answers = Vec::new();
        let refused = loop {
            match writer.enqueue(Append::To(conversation.id), message(answers.len() + 1)) {
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
        for (n, answer) in answers.into_iter().enumerate() {
            match answer.await.expect("answered").expect("stored") {
                Outcome::Stored { message, .. } => {
                    assert_eq!(message.seq, i64::try_from(n + 1).expect("small"));
                }
                Outcome::Resent(_) => panic!("nothing was sent twice"),
            }
        }
        // Room again: the next append is taken.
        let next = writer
            .append(Append::To(conversation.id), message(10_000))
            .await
            .expect("stored");
        assert!(matches!(next, Outcome::Stored { .. }));
        writer.close().await;
        store.close().await;
    }
}
