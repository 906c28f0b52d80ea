//! The SQLite implementation of [`Store`]: the embedded default.
//!
//! One database file in WAL mode: readers run in parallel on the pool while writes are
//! serialised — first by an in-process queue, then by SQLite's own lock with a busy timeout for
//! other processes on the same file. Messages are appended, and visitors' contacts stored, by
//! the group-commit writer (`group_commit.rs`), many to a transaction under load; every other
//! write goes through the pool. Most of each checkpoint runs on its own thread (`checkpoint.rs`). It never creates the file's
//! directory (see [`crate::connect`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use tokio::sync::{Mutex, MutexGuard};

use crate::checkpoint::Checkpoints;
use crate::dialect::Dialect;
use crate::error::conflict_on;
use crate::group_commit::{Append, GroupCommit, Outcome};
use crate::model::{conversation_columns, message_columns};
use crate::sql::{SearchIndex, begin_write};
use crate::{
    Appended, AppendedNew, Conversation, ConversationId, DatabaseUrl, Durability, Error,
    LeaveMessage, Message, NewMessage, Result, Seq, SiteId, VisitorId,
};
use crate::{
    HistoryFilter, Indexed, LeaveMessageId, MessageId, leave_message_search_query,
    message_search_query, search,
};
use crate::{Messages, Search};

/// How long a write waits for another process holding the database's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite's largest page count, its default `max_page_count`.
const MAX_PAGE_COUNT: u32 = 0xffff_fffe;

/// A cap on an open SQLite database's size that can be put on and lifted while Kefu runs:
/// `PRAGMA max_page_count` on every connection of the store's pool. At the cap a write that
/// needs a new page fails with `SQLITE_FULL`, exactly as on a full disk, so the full-disk
/// behaviour can be tested without root or a small file system. Cheap to clone (shared).
/// Not used by `kefu serve`: a store opened without one runs no extra statement.
#[derive(Clone, Debug)]
pub struct PageLimit(Arc<AtomicU32>);

impl Default for PageLimit {
    fn default() -> Self {
        PageLimit(Arc::new(AtomicU32::new(MAX_PAGE_COUNT)))
    }
}

impl PageLimit {
    /// No cap (SQLite's default).
    pub fn new() -> Self {
        Self::default()
    }

    /// The database may not grow from now on: as full as a full disk. (SQLite never sets the
    /// cap below the pages in use, so 1 means "what it has now".)
    pub fn fill(&self) {
        self.0.store(1, Ordering::SeqCst);
    }

    /// Space returns: the cap is lifted for the next write.
    pub fn lift(&self) {
        self.0.store(MAX_PAGE_COUNT, Ordering::SeqCst);
    }

    async fn apply(&self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        let pages = self.0.load(Ordering::SeqCst);
        sqlx::query(AssertSqlSafe(format!("PRAGMA max_page_count = {pages}")))
            .execute(conn)
            .await
            .map(|_| ())
    }
}

/// A [`Store`] on one SQLite file.
pub(crate) struct SqliteStore {
    /// Connections to the file; WAL lets reads proceed while one of them writes.
    pool: SqlitePool,
    /// SQLite admits one writer at a time. Queuing writers here (fairly, without holding a
    /// connection) keeps them out of SQLite's busy-wait polling, which under load is slow and can
    /// starve a writer past the busy timeout.
    write_lock: Arc<Mutex<()>>,
    /// The thread that appends messages, a batch per transaction (`group_commit.rs`); none on
    /// a store opened only to read.
    appends: Option<GroupCommit>,
    /// The thread that checkpoints the write-ahead log, off every commit (`checkpoint.rs`);
    /// none on a store opened only to read.
    checkpoints: Option<Checkpoints>,
}

impl SqliteStore {
    /// Opens (creating if needed) the file `url` names and applies migrations.
    pub(crate) async fn connect(url: &DatabaseUrl) -> Result<Self> {
        Self::connect_limited(url, None).await
    }

    /// [`SqliteStore::connect`], with every connection held to `limit` when there is one.
    pub(crate) async fn connect_limited(
        url: &DatabaseUrl,
        limit: Option<PageLimit>,
    ) -> Result<Self> {
        let Some(path) = url.sqlite_path() else {
            return Err(Error::UnknownScheme(url.scheme().to_owned()));
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let dir_exists = tokio::fs::metadata(dir)
            .await
            .is_ok_and(|meta| meta.is_dir());
        if !dir_exists {
            let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
            return Err(Error::SqliteDirMissing(shown));
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match url.durability() {
                Durability::Normal => SqliteSynchronous::Normal,
                Durability::Full => SqliteSynchronous::Full,
            })
            // Checkpoints run on their own thread and in the writer (`checkpoint.rs`).
            .pragma("wal_autocheckpoint", "0")
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // A file has no server that wants connections recycled: sqlx's defaults (close after
        // 10 idle minutes, reopen every 30) would only make each connection read the schema
        // and fill its caches again, churning the allocator's arenas on a long-running node.
        let mut pool_options = SqlitePoolOptions::new()
            .idle_timeout(None)
            .max_lifetime(None);
        if let Some(limit) = limit.clone() {
            // A connection keeps its own max_page_count: each is told the current one as it
            // opens and again whenever it is handed out.
            let on_acquire = limit.clone();
            pool_options = pool_options
                .after_connect(move |conn, _| {
                    let limit = limit.clone();
                    Box::pin(async move { limit.apply(conn).await })
                })
                .before_acquire(move |conn, _| {
                    let limit = on_acquire.clone();
                    Box::pin(async move { limit.apply(conn).await.map(|()| true) })
                });
        }
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(|source| Error::Connect {
                url: url.redacted().to_owned(),
                source,
            })?;
        crate::error::migrate(&sqlx::migrate!("migrations/sqlite"), &pool).await?;
        let write_lock = Arc::new(Mutex::new(()));
        let appends = GroupCommit::start(
            path,
            write_lock.clone(),
            limit.map(|limit| limit.0),
            url.durability(),
            BUSY_TIMEOUT,
        )?;
        let checkpoints = Checkpoints::start(path, url.durability())?;
        let store = SqliteStore {
            pool,
            write_lock,
            appends: Some(appends),
            checkpoints: Some(checkpoints),
        };
        crate::sql::backfill_search(&store).await?;
        Ok(store)
    }

    /// Opens the SQLite file at `path` as it is and only to read it — never created, migrated
    /// or switched to WAL, so nothing is written in it or beside it — once it is found whole
    /// (header, length, `PRAGMA integrity_check`) and Kefu's at this version's schema: a backup
    /// to check or restore from.
    pub(crate) async fn open_read_only(path: &Path) -> Result<Self> {
        let owned = path.to_path_buf();
        tokio::task::spawn_blocking(move || check_header(&owned))
            .await
            .map_err(|e| Error::Damaged(e.to_string()))??;
        let damaged = |error: sqlx::Error| Error::Damaged(error.to_string());
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(damaged)?;
        let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check(5)")
            .fetch_all(&pool)
            .await
            .map_err(damaged)?;
        if problems != ["ok"] {
            return Err(Error::Damaged(problems.join("; ")));
        }
        let has_migrations: bool = sqlx::query_scalar(
            "SELECT COUNT(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&pool)
        .await
        .map_err(damaged)?;
        if !has_migrations {
            return Err(Error::NotKefu);
        }
        let applied: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&pool)
        .await
        .map_err(|_| Error::NotKefu)?;
        let migrator = sqlx::migrate!("migrations/sqlite");
        let known: Vec<(i64, Vec<u8>)> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect();
        // Ours when every migration it shares with this Kefu is the same file.
        let shared = applied
            .iter()
            .filter_map(|(version, sum)| {
                known
                    .iter()
                    .find(|(ours, _)| ours == version)
                    .map(|(_, ours)| ours == sum)
            })
            .collect::<Vec<bool>>();
        if shared.is_empty() || shared.contains(&false) {
            return Err(Error::NotKefu);
        }
        if applied != known {
            let newest = |list: &[(i64, Vec<u8>)]| list.iter().map(|(v, _)| *v).max().unwrap_or(0);
            return Err(Error::OtherSchema {
                found: newest(&applied),
                known: newest(&known),
            });
        }
        Ok(SqliteStore {
            pool,
            write_lock: Arc::new(Mutex::new(())),
            appends: None,
            checkpoints: None,
        })
    }

    /// Makes the SQLite file at `path` one self-contained file, with nothing else using it:
    /// stores `settings` (key, value) in it, moves its write-ahead log into it
    /// (`wal_checkpoint(TRUNCATE)`) and switches it to rollback-journal mode, so no `-wal` or
    /// `-shm` file is left beside it, nor made again by whoever opens it next.
    pub(crate) async fn seal(path: &Path, settings: &[(&str, &str)]) -> Result<()> {
        use sqlx::Connection;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT);
        let mut conn = SqliteConnection::connect_with(&options).await?;
        for (key, value) in settings {
            sqlx::query(
                r#"INSERT INTO settings ("key", value) VALUES (?, ?) ON CONFLICT ("key") DO UPDATE SET value = excluded.value"#,
            )
                .bind(key)
                .bind(value)
                .execute(&mut conn)
                .await?;
        }
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut conn)
            .await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = DELETE")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        if busy != 0 || !mode.eq_ignore_ascii_case("delete") {
            return Err(Error::Database(sqlx::Error::Protocol(format!(
                "{} is still in use (checkpoint busy: {busy}, journal mode: {mode})",
                path.display()
            ))));
        }
        Ok(())
    }

    /// Waits for this process's turn to write.
    async fn writer(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().await
    }

    /// Queues an append for the group-commit writer and waits for its batch to commit.
    async fn group_append(&self, append: Append, message: NewMessage) -> Result<Outcome> {
        let Some(appends) = &self.appends else {
            return Err(Error::Writer {
                message: "this SQLite database was opened only to read".into(),
                disk_full: false,
            });
        };
        appends.append(append, message).await
    }

    /// The message with this id, as a resend is answered with.
    async fn stored_message(&self, id: MessageId) -> Result<Message> {
        sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound)
    }

    /// The conversation with this id.
    async fn conversation_by_id<'e, E>(
        executor: E,
        id: ConversationId,
    ) -> Result<Option<Conversation>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(executor)
        .await?)
    }

    /// Inserts `message` under `seq` and indexes its text for search. The insert's own error
    /// comes back as it is: callers tell a resend's unique violation from other failures.
    async fn insert_message(
        conn: &mut SqliteConnection,
        conversation_id: ConversationId,
        seq: Seq,
        message: &NewMessage,
    ) -> Result<std::result::Result<i64, sqlx::Error>> {
        let inserted = sqlx::query_scalar(
            "INSERT INTO messages \
             (conversation_id, seq, client_id, author, agent_id, body, attachment, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(conversation_id)
        .bind(seq)
        .bind(&message.client_id.0)
        .bind(message.author.as_str())
        .bind(message.agent_id)
        .bind(&message.body)
        .bind(message.attachment_text()?)
        .bind(message.created_at)
        .fetch_one(&mut *conn)
        .await;
        if let Ok(id) = inserted {
            conn.index_text(Indexed::Messages, id, &message.body)
                .await?;
        }
        Ok(inserted)
    }
}

/// What the first 100 bytes and the length of the file at `path` say about it as a
/// self-contained SQLite database (<https://www.sqlite.org/fileformat.html#the_database_header>).
fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let unreadable = |error: std::io::Error| Error::Damaged(format!("cannot read it: {error}"));
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let mut header = Vec::with_capacity(100);
    file.by_ref()
        .take(100)
        .read_to_end(&mut header)
        .map_err(unreadable)?;
    if !header.starts_with(b"SQLite format 3\0") {
        return Err(Error::NotSqlite);
    }
    let byte = |i: usize| header.get(i).copied().unwrap_or_default();
    let word = |i: usize| u32::from_be_bytes([byte(i), byte(i + 1), byte(i + 2), byte(i + 3)]);
    if header.len() < 100 {
        return Err(Error::Damaged(format!("cut short at {len} bytes")));
    }
    if byte(18) == 2 || byte(19) == 2 {
        return Err(Error::Damaged(
            "it is in write-ahead-log mode, so part of it may be in a -wal file beside it".into(),
        ));
    }
    let page_size = match u16::from_be_bytes([byte(16), byte(17)]) {
        1 => 65_536,
        size => u64::from(size),
    };
    // The size in pages is valid when written by the same change as the counter beside it.
    let pages = u64::from(word(28));
    if word(24) == word(92) && len < pages * page_size {
        return Err(Error::Damaged(format!(
            "cut short at {len} bytes of {}",
            pages * page_size
        )));
    }
    Ok(())
}

/// SQLite's index is an FTS5 table beside each indexed table, keyed by the row's id.
impl crate::sql::SearchIndex for SqliteConnection {
    async fn index_text(&mut self, table: Indexed, id: i64, text: &str) -> Result<()> {
        let table = table.table();
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table}_fts WHERE rowid = ?"
        )))
        .bind(id)
        .execute(&mut *self)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table}_fts (rowid, tokens) VALUES (?, ?)"
        )))
        .bind(id)
        .bind(search::fts5_text(text))
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

impl crate::sql::Sql for SqliteStore {
    fn pool(&self) -> crate::sql::Pool<'_> {
        crate::sql::Pool::Sqlite(&self.pool)
    }

    async fn writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.write_lock.lock().await)
    }

    async fn close_beside_pool(&self) {
        if let Some(appends) = &self.appends {
            appends.close().await;
        }
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.stop().await;
        }
    }

    fn group_commit(&self) -> Option<&GroupCommit> {
        self.appends.as_ref()
    }
}

#[async_trait]
impl Messages for SqliteStore {
    async fn append_message(
        &self,
        conversation_id: ConversationId,
        message: NewMessage,
    ) -> Result<Appended> {
        match self
            .group_append(Append::To(conversation_id), message)
            .await?
        {
            Outcome::Stored {
                message, parked, ..
            } => Ok(Appended {
                message,
                created: true,
                parked,
            }),
            Outcome::Resent(id) => Ok(Appended {
                message: self.stored_message(id).await?,
                created: false,
                parked: false,
            }),
        }
    }

    async fn append_message_in_open_conversation(
        &self,
        site_id: SiteId,
        visitor_id: VisitorId,
        message: NewMessage,
    ) -> Result<AppendedNew> {
        let (message, created, created_conversation, parked) = match self
            .group_append(Append::Open(site_id, visitor_id), message)
            .await?
        {
            Outcome::Stored {
                message,
                created_conversation,
                parked,
            } => (message, true, created_conversation, parked),
            Outcome::Resent(id) => (self.stored_message(id).await?, false, false, false),
        };
        let conversation = Self::conversation_by_id(&self.pool, message.conversation_id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(AppendedNew {
            appended: Appended {
                message,
                created,
                parked,
            },
            conversation,
            created_conversation,
        })
    }

    async fn import_messages(
        &self,
        conversation_id: ConversationId,
        messages: &[NewMessage],
    ) -> Result<u64> {
        let Some(newest) = messages.iter().map(|m| m.created_at).max() else {
            return Ok(0);
        };
        let count = i64::try_from(messages.len()).unwrap_or(i64::MAX);
        let _writer = self.writer().await;
        let mut tx = self.pool.begin_with(begin_write(Dialect::Sqlite)).await?;
        let last: Option<Seq> = sqlx::query_scalar(
            "UPDATE conversations SET last_seq = last_seq + ?, \
             updated_at = MAX(updated_at, ?) WHERE id = ? RETURNING last_seq",
        )
        .bind(count)
        .bind(newest)
        .bind(conversation_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(last) = last else {
            tx.rollback().await?;
            return Err(Error::NotFound);
        };
        for (seq, message) in (last - count + 1..).zip(messages) {
            if let Err(error) = Self::insert_message(&mut tx, conversation_id, seq, message).await?
            {
                tx.rollback().await?;
                return Err(conflict_on("client_id")(error));
            }
        }
        tx.commit().await?;
        Ok(messages.len() as u64)
    }
}

#[async_trait]
impl Search for SqliteStore {
    async fn search_messages(
        &self,
        filter: &HistoryFilter,
        query: &search::Query,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        if filter.sites.is_empty() {
            return Ok(Vec::new());
        }
        let source = "messages_fts JOIN messages m ON m.id = messages_fts.rowid \
                      JOIN conversations c ON c.id = m.conversation_id";
        // FTS5 walks its matches newest first and stops at the page: no windows needed.
        let mut query = message_search_query::<Sqlite>(
            filter,
            (before.map_or(i64::MAX, i64::from), None),
            limit,
            (source, "messages_fts.rowid"),
            |q| {
                q.push("messages_fts MATCH ").push_bind(query.fts5());
            },
        );
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn search_leave_messages(
        &self,
        site_ids: &[SiteId],
        query: &search::Query,
        before: Option<LeaveMessageId>,
        limit: u32,
    ) -> Result<Vec<LeaveMessage>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        let source = "leave_messages_fts JOIN leave_messages l ON l.id = leave_messages_fts.rowid";
        let mut query = leave_message_search_query::<Sqlite>(
            site_ids,
            before,
            limit,
            (source, "leave_messages_fts.rowid"),
            |q| {
                q.push("leave_messages_fts MATCH ").push_bind(query.fts5());
            },
        );
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }
}
