//! The SQLite implementation of [`Store`]: the embedded default.
//!
//! One database file in WAL mode: readers run in parallel on the pool while writes are
//! serialised — first by an in-process queue, then by SQLite's own lock with a busy timeout for
//! other processes on the same file. It never creates the file's directory (see [`crate::connect`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::{conflict_on, is_unique_violation};
use crate::model::{
    AppendInTx, agent_columns, attachment_columns, ban_columns, canned_reply_columns,
    conversation_columns, event_columns, leave_message_columns, leave_message_note_columns,
    message_columns, site_columns, to_json_text, visitor_columns, webhook_delivery_columns,
};
use crate::{
    Agent, AgentId, ApiToken, Appended, AppendedNew, Attachment, Backend, Ban, CannedReply,
    CannedReplyId, Conversation, ConversationCursor, ConversationId, ConversationStatus,
    DatabaseUrl, Error, Event, EventId, LeaveMessage, LeaveMessageCursor, LeaveMessageStatus,
    Message, NewAgent, NewApiToken, NewAttachment, NewBan, NewCannedReply, NewEvent,
    NewLeaveMessage, NewMessage, NewSite, Rating, Result, START, Seq, Site, SiteId, Store, Team,
    TeamId, UnixMillis, VISITOR_CONVERSATIONS, Visitor, VisitorAttributes, VisitorId, limit_param,
    now_millis, push_id_list,
};
use crate::{
    BACKFILL_BATCH, BackfillRow, BanId, ConversationStats, DeliveryAttempt, HistoryFilter, Indexed,
    LeaveMessageId, LeaveMessageNote, MessageId, NewLeaveMessageNote, Role, Webhook,
    WebhookDelivery, conversation_stats_query, history_query, leave_message_search_query,
    leave_message_search_text, leave_messages_query, message_search_query, search,
    translated_search_text,
};
use crate::{MessageTranslation, TranslationKey};

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
    write_lock: Mutex<()>,
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
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let mut pool_options = SqlitePoolOptions::new();
        if let Some(limit) = limit {
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
        let store = SqliteStore {
            pool,
            write_lock: Mutex::new(()),
        };
        store.backfill_search().await?;
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
            write_lock: Mutex::new(()),
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
            sqlx::query(COPY.upsert_setting)
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

    /// Indexes `text` as the search text of row `id` of `table` (replacing what it had).
    async fn index_text(
        conn: &mut SqliteConnection,
        table: Indexed,
        id: i64,
        text: &str,
    ) -> Result<()> {
        let table = table.table();
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table}_fts WHERE rowid = ?"
        )))
        .bind(id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table}_fts (rowid, tokens) VALUES (?, ?)"
        )))
        .bind(id)
        .bind(search::fts5_text(text))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Indexes the rows stored before search existed (`0009_search`), a batch per transaction.
    async fn backfill_search(&self) -> Result<()> {
        for table in Indexed::ALL {
            let key = table.backfill_key();
            loop {
                let _writer = self.writer().await;
                let mut tx = self.pool.begin().await?;
                let upto: Option<String> =
                    sqlx::query_scalar(r#"SELECT value FROM settings WHERE "key" = ?"#)
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(upto) = upto.and_then(|v| v.parse::<i64>().ok()) else {
                    // Ended here and now: a dropped transaction is only rolled back when its
                    // connection is next used, and MySQL would hold its locks until then.
                    tx.rollback().await?;
                    break;
                };
                let rows: Vec<BackfillRow> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT {} FROM {} WHERE id <= ? ORDER BY id DESC LIMIT ?",
                    table.text_columns(),
                    table.table()
                )))
                .bind(upto)
                .bind(BACKFILL_BATCH)
                .fetch_all(&mut *tx)
                .await?;
                for (id, name, contact, body) in &rows {
                    Self::index_text(&mut tx, table, *id, &table.text((name, contact, body)))
                        .await?;
                }
                match rows.last() {
                    Some((lowest, ..)) => {
                        sqlx::query(r#"UPDATE settings SET value = ? WHERE "key" = ?"#)
                            .bind((lowest - 1).to_string())
                            .bind(key)
                            .execute(&mut *tx)
                            .await?
                    }
                    None => {
                        sqlx::query(r#"DELETE FROM settings WHERE "key" = ?"#)
                            .bind(key)
                            .execute(&mut *tx)
                            .await?
                    }
                };
                tx.commit().await?;
                tracing::info!(
                    table = table.table(),
                    indexed = rows.len(),
                    "search back-fill"
                );
            }
        }
        Ok(())
    }

    /// Waits for this process's turn to write.
    async fn writer(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().await
    }

    /// The message stored in `conversation_id` under `client_id`, if any.
    async fn message_by_client_id<'e, E>(
        executor: E,
        conversation_id: ConversationId,
        client_id: &str,
    ) -> Result<Option<Message>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE conversation_id = ? AND client_id = ?"
        ))
        .bind(conversation_id)
        .bind(client_id)
        .fetch_optional(executor)
        .await?)
    }

    /// The message stored under `client_id` in any of the visitor's conversations, if any.
    async fn visitor_message_by_client_id<'e, E>(
        executor: E,
        visitor_id: VisitorId,
        client_id: &str,
    ) -> Result<Option<Message>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE client_id = ? AND conversation_id IN \
             (SELECT id FROM conversations WHERE visitor_id = ?) ORDER BY id LIMIT 1"
        ))
        .bind(client_id)
        .bind(visitor_id)
        .fetch_optional(executor)
        .await?)
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

    /// The visitor's newest conversation that is not resolved.
    async fn open_conversation_of<'e, E>(
        executor: E,
        visitor_id: VisitorId,
    ) -> Result<Option<Conversation>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE visitor_id = ? AND status <> 'resolved' \
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(visitor_id)
        .fetch_optional(executor)
        .await?)
    }

    /// Answers a resend found only after the append transaction was rolled back: the visitor's
    /// stored message with this client id and its conversation.
    async fn visitor_resend(&self, visitor_id: VisitorId, client_id: &str) -> Result<AppendedNew> {
        let message = Self::visitor_message_by_client_id(&self.pool, visitor_id, client_id)
            .await?
            .ok_or(Error::NotFound)?;
        let conversation = Self::conversation_by_id(&self.pool, message.conversation_id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(AppendedNew {
            appended: Appended {
                message,
                created: false,
            },
            conversation,
            created_conversation: false,
        })
    }

    /// Appends `message` to `conversation_id` inside the caller's open write transaction: bumps
    /// the conversation's seq, then stores the message under it unless the client id is already
    /// there. The caller commits or rolls back as the outcome says. `NotFound` if the
    /// conversation does not exist.
    async fn append_in_tx(
        conn: &mut SqliteConnection,
        conversation_id: ConversationId,
        message: NewMessage,
    ) -> Result<AppendInTx> {
        let seq: Option<Seq> = sqlx::query_scalar(
            "UPDATE conversations SET last_seq = last_seq + 1, \
             updated_at = MAX(updated_at, ?) WHERE id = ? RETURNING last_seq",
        )
        .bind(message.created_at)
        .bind(conversation_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(seq) = seq else {
            return Err(Error::NotFound);
        };
        if let Some(existing) =
            Self::message_by_client_id(&mut *conn, conversation_id, &message.client_id.0).await?
        {
            return Ok(AppendInTx::Resent(existing));
        }
        match Self::insert_message(conn, conversation_id, seq, &message).await? {
            Ok(id) => Ok(AppendInTx::Stored(Message::stored(
                id,
                conversation_id,
                seq,
                message,
            ))),
            Err(error) if is_unique_violation(&error) => Ok(AppendInTx::Raced(error)),
            Err(error) => Err(error.into()),
        }
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
            Self::index_text(conn, Indexed::Messages, id, &message.body).await?;
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

/// The copy's SQL for SQLite.
const COPY: crate::copy::Dialect = crate::copy::Dialect {
    quote: |name| format!("\"{name}\""),
    upsert_setting: r#"INSERT INTO settings ("key", value) VALUES (?, ?) ON CONFLICT ("key") DO UPDATE SET value = excluded.value"#,
    select_setting: r#"SELECT value FROM settings WHERE "key" = ?"#,
};

/// An assignment's SQL for SQLite. No row locks: the transaction holds the write lock.
const ASSIGN: crate::assign::Sql = crate::assign::Sql {
    lock_conversation: "SELECT assignee_id FROM conversations WHERE id = ?",
    lock_agent: "SELECT id FROM agents WHERE id = ?",
    load: "SELECT COUNT(*) FROM conversations WHERE status = 'open' AND assignee_id = ?",
    assign: "UPDATE conversations SET assignee_id = ? WHERE id = ?",
    take_turn: "UPDATE agents SET last_assigned_at = ? WHERE id = ?",
};

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_site(&self, site: NewSite) -> Result<Site> {
        let origins = to_json_text(&site.allowed_origins)?;
        let settings = to_json_text(&site.widget_settings)?;
        let _writer = self.writer().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sites (public_key, name, allowed_origins, widget_settings, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&site.public_key)
        .bind(&site.name)
        .bind(origins)
        .bind(settings)
        .bind(site.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on("public_key"))?;
        Ok(Site {
            id,
            public_key: site.public_key,
            name: site.name,
            allowed_origins: site.allowed_origins,
            widget_settings: site.widget_settings,
            created_at: site.created_at,
        })
    }

    async fn site_by_key(&self, public_key: &str) -> Result<Option<Site>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            site_columns!(),
            " FROM sites WHERE public_key = ?"
        ))
        .bind(public_key)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn site(&self, id: SiteId) -> Result<Option<Site>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            site_columns!(),
            " FROM sites WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn copy_snapshot(&self) -> Result<Box<dyn crate::copy::Snapshot>> {
        // A deferred transaction takes its snapshot at its first read: read once now.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT COUNT(*) FROM sqlite_schema")
            .execute(&mut *tx)
            .await?;
        Ok(Box::new(crate::copy::TxSnapshot::new(tx, &COPY)))
    }

    async fn copy_count(&self, table: &'static crate::copy::Table) -> Result<i64> {
        crate::copy::count::<Sqlite>(&mut *self.pool.acquire().await?, &COPY, table).await
    }

    async fn copy_write(
        &self,
        table: &'static crate::copy::Table,
        rows: Vec<Vec<crate::copy::Value>>,
        last: Vec<crate::copy::Value>,
    ) -> Result<()> {
        let _writer = self.writer().await;
        crate::copy::write(&self.pool, &COPY, table, rows, last).await
    }

    async fn copy_progress(
        &self,
        table: &'static crate::copy::Table,
    ) -> Result<Option<Vec<crate::copy::Value>>> {
        crate::copy::progress(&self.pool, &COPY, table).await
    }

    async fn copy_finish(&self) -> Result<()> {
        let _writer = self.writer().await;
        for indexed in Indexed::ALL {
            let table = indexed.table();
            sqlx::query(AssertSqlSafe(format!(
                r#"INSERT INTO settings ("key", value) SELECT '{}', CAST(MAX(id) AS TEXT) FROM {table} HAVING MAX(id) IS NOT NULL"#,
                indexed.backfill_key()
            )))
            .execute(&self.pool)
            .await?;
        }
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM settings WHERE substr(\"key\", 1, {}) = '{}'",
            crate::copy::PROGRESS_PREFIX.len(),
            crate::copy::PROGRESS_PREFIX
        )))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn schema_version(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn all_sites(&self) -> Result<Vec<Site>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            site_columns!(),
            " FROM sites ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn update_site(
        &self,
        id: SiteId,
        name: &str,
        allowed_origins: &[String],
        widget_settings: &serde_json::Value,
    ) -> Result<Site> {
        let origins = to_json_text(&allowed_origins)?;
        let settings = to_json_text(widget_settings)?;
        let _writer = self.writer().await;
        sqlx::query(
            "UPDATE sites SET name = ?, allowed_origins = ?, widget_settings = ? WHERE id = ?",
        )
        .bind(name)
        .bind(origins)
        .bind(settings)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.site(id).await?.ok_or(Error::NotFound)
    }

    async fn create_agent(&self, agent: NewAgent) -> Result<Agent> {
        let _writer = self.writer().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO agents \
             (email, password_hash, display_name, role, language, max_chats, disabled, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, FALSE, ?) RETURNING id",
        )
        .bind(&agent.email)
        .bind(&agent.password_hash)
        .bind(&agent.display_name)
        .bind(agent.role.as_str())
        .bind(&agent.language)
        .bind(agent.max_chats)
        .bind(agent.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on("email"))?;
        Ok(Agent {
            id,
            email: agent.email,
            password_hash: agent.password_hash,
            display_name: agent.display_name,
            role: agent.role,
            language: agent.language,
            max_chats: agent.max_chats,
            disabled: false,
            created_at: agent.created_at,
        })
    }

    async fn agent_by_email(&self, email: &str) -> Result<Option<Agent>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE email = ?"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn agent(&self, id: AgentId) -> Result<Option<Agent>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn all_agents(&self) -> Result<Vec<Agent>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn update_agent(
        &self,
        id: AgentId,
        role: Role,
        max_chats: i32,
        disabled: bool,
    ) -> Result<Agent> {
        let _writer = self.writer().await;
        sqlx::query("UPDATE agents SET role = ?, max_chats = ?, disabled = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(max_chats)
            .bind(i64::from(disabled))
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.agent(id).await?.ok_or(Error::NotFound)
    }

    async fn remove_agent_from_site(&self, site_id: SiteId, agent_id: AgentId) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query("DELETE FROM site_agents WHERE site_id = ? AND agent_id = ?")
            .bind(site_id)
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_agent_language(&self, id: AgentId, language: &str) -> Result<()> {
        let _writer = self.writer().await;
        let changed = sqlx::query("UPDATE agents SET language = ? WHERE id = ?")
            .bind(language)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if changed == 0 && self.agent(id).await?.is_none() {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn add_agent_to_site(&self, site_id: SiteId, agent_id: AgentId) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO site_agents (site_id, agent_id) VALUES (?, ?) \
             ON CONFLICT (site_id, agent_id) DO NOTHING",
        )
        .bind(site_id)
        .bind(agent_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn agent_sites(&self, agent_id: AgentId) -> Result<Vec<SiteId>> {
        Ok(sqlx::query_scalar(
            "SELECT site_id FROM site_agents WHERE agent_id = ? ORDER BY site_id",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn site_agents(&self, site_ids: &[SiteId]) -> Result<Vec<Agent>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE NOT disabled AND id IN (SELECT agent_id FROM site_agents WHERE site_id"
        ));
        push_id_list(&mut query, site_ids);
        query.push(") ORDER BY id");
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn create_session(
        &self,
        token_hash: &str,
        agent_id: AgentId,
        expires_at: UnixMillis,
    ) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO sessions (token_hash, agent_id, created_at, expires_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(agent_id)
        .bind(now_millis())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_on("token"))?;
        Ok(())
    }

    async fn session_agent(&self, token_hash: &str, now: UnixMillis) -> Result<Option<Agent>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE disabled = FALSE AND id = \
             (SELECT agent_id FROM sessions WHERE token_hash = ? AND expires_at > ?)"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_agent_password(&self, id: AgentId, password_hash: &str) -> Result<()> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query("UPDATE agents SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0
            && sqlx::query("SELECT 1 FROM agents WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .is_none()
        {
            // Not left to the drop, which rolls back only when the connection is next used
            // (MySQL keeps the table locked until then).
            tx.rollback().await?;
            return Err(Error::NotFound);
        }
        sqlx::query("DELETE FROM sessions WHERE agent_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn upsert_visitor(
        &self,
        site_id: SiteId,
        visitor_key: &str,
        now: UnixMillis,
    ) -> Result<Visitor> {
        let _writer = self.writer().await;
        // Returning visitors are the common case: update first, insert only when new. The
        // insert's upsert clause still covers a concurrent first contact from another process.
        let existing = sqlx::query_as(concat!(
            "UPDATE visitors SET last_seen_at = MAX(last_seen_at, ?) \
             WHERE site_id = ? AND visitor_key = ? RETURNING ",
            visitor_columns!()
        ))
        .bind(now)
        .bind(site_id)
        .bind(visitor_key)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(visitor) = existing {
            return Ok(visitor);
        }
        Ok(sqlx::query_as(concat!(
            "INSERT INTO visitors (site_id, visitor_key, created_at, last_seen_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (site_id, visitor_key) \
             DO UPDATE SET last_seen_at = MAX(last_seen_at, excluded.last_seen_at) RETURNING ",
            visitor_columns!()
        ))
        .bind(site_id)
        .bind(visitor_key)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn visitor(&self, id: VisitorId) -> Result<Option<Visitor>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            visitor_columns!(),
            " FROM visitors WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn set_visitor_profile(
        &self,
        id: VisitorId,
        name: Option<&str>,
        email: Option<&str>,
        attributes: &VisitorAttributes,
    ) -> Result<Visitor> {
        let _writer = self.writer().await;
        sqlx::query_as(concat!(
            "UPDATE visitors SET name = ?, email = ?, attributes = ? WHERE id = ? RETURNING ",
            visitor_columns!()
        ))
        .bind(name)
        .bind(email)
        .bind(to_json_text(attributes)?)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound)
    }

    async fn set_visitor_language(&self, id: VisitorId, language: &str) -> Result<()> {
        let _writer = self.writer().await;
        let updated = sqlx::query("UPDATE visitors SET language = ? WHERE id = ?")
            .bind(language)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn create_conversation(
        &self,
        site_id: SiteId,
        visitor_id: VisitorId,
        now: UnixMillis,
    ) -> Result<Conversation> {
        let _writer = self.writer().await;
        // Selecting from `visitors` makes a visitor of another site count as missing.
        sqlx::query_as(concat!(
            "INSERT INTO conversations \
             (site_id, visitor_id, status, last_seq, created_at, updated_at) \
             SELECT site_id, id, 'open', 0, ?, ? FROM visitors WHERE id = ? AND site_id = ? \
             RETURNING ",
            conversation_columns!()
        ))
        .bind(now)
        .bind(now)
        .bind(visitor_id)
        .bind(site_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound)
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        Self::conversation_by_id(&self.pool, id).await
    }

    async fn open_conversation(&self, visitor_id: VisitorId) -> Result<Option<Conversation>> {
        Self::open_conversation_of(&self.pool, visitor_id).await
    }

    async fn visitor_conversations(&self, visitor_id: VisitorId) -> Result<Vec<Conversation>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE visitor_id = ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(visitor_id)
        .bind(VISITOR_CONVERSATIONS)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn site_conversation_heads(
        &self,
        site_ids: &[SiteId],
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE status <> 'resolved' AND site_id"
        ));
        push_id_list(&mut query, site_ids);
        query.push(" ORDER BY updated_at DESC, id DESC LIMIT ");
        query.push_bind(limit_param(limit));
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn set_conversation_status(
        &self,
        id: ConversationId,
        status: ConversationStatus,
        now: UnixMillis,
    ) -> Result<Conversation> {
        let _writer = self.writer().await;
        sqlx::query_as(concat!(
            "UPDATE conversations SET status = ?, snoozed_until = NULL, \
             updated_at = MAX(updated_at, ?) WHERE id = ? RETURNING ",
            conversation_columns!()
        ))
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound)
    }

    async fn snooze_conversation(
        &self,
        id: ConversationId,
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<Conversation> {
        let _writer = self.writer().await;
        sqlx::query_as(concat!(
            "UPDATE conversations SET status = 'pending', snoozed_until = ?, \
             updated_at = MAX(updated_at, ?) WHERE id = ? RETURNING ",
            conversation_columns!()
        ))
        .bind(until)
        .bind(now)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound)
    }

    async fn due_snoozes(&self, now: UnixMillis, limit: u32) -> Result<Vec<Conversation>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE snoozed_until <= ? ORDER BY snoozed_until, id LIMIT ?"
        ))
        .bind(now)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn wake_conversation(
        &self,
        id: ConversationId,
        now: UnixMillis,
    ) -> Result<Option<Conversation>> {
        let _writer = self.writer().await;
        Ok(sqlx::query_as(concat!(
            "UPDATE conversations SET status = 'open', snoozed_until = NULL, \
             updated_at = MAX(updated_at, ?) WHERE id = ? AND snoozed_until <= ? RETURNING ",
            conversation_columns!()
        ))
        .bind(now)
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn reassign_conversation(
        &self,
        id: ConversationId,
        from: Option<AgentId>,
        to: Option<AgentId>,
    ) -> Result<bool> {
        let _writer = self.writer().await;
        let moved = sqlx::query(
            "UPDATE conversations SET assignee_id = ? WHERE id = ? AND assignee_id IS ?",
        )
        .bind(to)
        .bind(id)
        .bind(from)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if moved > 0 {
            return Ok(true);
        }
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM conversations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        exists.map(|_| false).ok_or(Error::NotFound)
    }

    async fn agent_loads(&self, agent_ids: &[AgentId]) -> Result<Vec<(AgentId, i64)>> {
        if agent_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT assignee_id, COUNT(*) FROM conversations WHERE status = 'open' AND assignee_id",
        );
        push_id_list(&mut query, agent_ids);
        query.push(" GROUP BY assignee_id ORDER BY assignee_id");
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn assign_within_capacity(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        max_chats: i64,
        turn_ms: i64,
    ) -> Result<bool> {
        let _writer = self.writer().await;
        // IMMEDIATE takes the write lock before the load is read: another process on the same
        // file cannot assign between the count and the update.
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        crate::assign::within_capacity(tx, &ASSIGN, conversation, agent, max_chats, turn_ms).await
    }

    async fn assignment_turns(&self, agent_ids: &[AgentId]) -> Result<Vec<(AgentId, i64)>> {
        if agent_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT id, last_assigned_at FROM agents WHERE id");
        push_id_list(&mut query, agent_ids);
        query.push(" ORDER BY id");
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn unassigned_conversations(
        &self,
        site_id: SiteId,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE site_id = ? AND assignee_id IS NULL AND status = 'open' \
             ORDER BY created_at, id LIMIT ?"
        ))
        .bind(site_id)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn conversations_page(
        &self,
        site_id: SiteId,
        after: Option<ConversationCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        let (updated_at, id) = after.map_or(START, |c| (c.updated_at, c.id));
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE site_id = ? AND (updated_at, id) < (?, ?) \
             ORDER BY updated_at DESC, id DESC LIMIT ?"
        ))
        .bind(site_id)
        .bind(updated_at)
        .bind(id)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn append_message(
        &self,
        conversation_id: ConversationId,
        message: NewMessage,
    ) -> Result<Appended> {
        let client_id = message.client_id.0.clone();
        let _writer = self.writer().await;
        // IMMEDIATE takes the write lock up front, so no read lock ever has to be upgraded
        // (the source of SQLITE_BUSY deadlocks between processes).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        match Self::append_in_tx(&mut tx, conversation_id, message).await? {
            AppendInTx::Stored(message) => {
                tx.commit().await?;
                Ok(Appended {
                    message,
                    created: true,
                })
            }
            AppendInTx::Resent(message) => {
                tx.rollback().await?;
                Ok(Appended {
                    message,
                    created: false,
                })
            }
            AppendInTx::Raced(error) => {
                // Another process stored the same client id first: answer with its message.
                tx.rollback().await?;
                Self::message_by_client_id(&self.pool, conversation_id, &client_id)
                    .await?
                    .map(|message| Appended {
                        message,
                        created: false,
                    })
                    .ok_or(Error::Database(error))
            }
        }
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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

    async fn append_message_in_open_conversation(
        &self,
        site_id: SiteId,
        visitor_id: VisitorId,
        message: NewMessage,
    ) -> Result<AppendedNew> {
        let client_id = message.client_id.0.clone();
        // The write mutex and SQLite's write lock (taken by IMMEDIATE) serialise every writer,
        // so the look-up, the conversation's creation and the append below act as one step.
        let _writer = self.writer().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let visitor: Option<i64> =
            sqlx::query_scalar("SELECT id FROM visitors WHERE id = ? AND site_id = ?")
                .bind(visitor_id)
                .bind(site_id)
                .fetch_optional(&mut *tx)
                .await?;
        if visitor.is_none() {
            tx.rollback().await?;
            return Err(Error::NotFound);
        }
        if let Some(existing) =
            Self::visitor_message_by_client_id(&mut *tx, visitor_id, &client_id).await?
        {
            let conversation = Self::conversation_by_id(&mut *tx, existing.conversation_id)
                .await?
                .ok_or(Error::NotFound)?;
            tx.rollback().await?;
            return Ok(AppendedNew {
                appended: Appended {
                    message: existing,
                    created: false,
                },
                conversation,
                created_conversation: false,
            });
        }
        let (conversation_id, created_conversation) =
            match Self::open_conversation_of(&mut *tx, visitor_id).await? {
                Some(open) => (open.id, false),
                None => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO conversations \
                         (site_id, visitor_id, status, last_seq, created_at, updated_at) \
                         VALUES (?, ?, 'open', 0, ?, ?) RETURNING id",
                    )
                    .bind(site_id)
                    .bind(visitor_id)
                    .bind(message.created_at)
                    .bind(message.created_at)
                    .fetch_one(&mut *tx)
                    .await?;
                    (id, true)
                }
            };
        match Self::append_in_tx(&mut tx, conversation_id, message).await? {
            AppendInTx::Stored(message) => {
                let conversation = Self::conversation_by_id(&mut *tx, conversation_id)
                    .await?
                    .ok_or(Error::NotFound)?;
                tx.commit().await?;
                Ok(AppendedNew {
                    appended: Appended {
                        message,
                        created: true,
                    },
                    conversation,
                    created_conversation,
                })
            }
            // Only possible when a plain `append_message` with this client id slipped in; the
            // rollback also undoes a conversation started above.
            AppendInTx::Resent(_) | AppendInTx::Raced(_) => {
                tx.rollback().await?;
                self.visitor_resend(visitor_id, &client_id).await
            }
        }
    }

    async fn messages_after(
        &self,
        conversation_id: ConversationId,
        after_seq: Seq,
        limit: u32,
    ) -> Result<Vec<Message>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?"
        ))
        .bind(conversation_id)
        .bind(after_seq)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn messages_before(
        &self,
        conversation_id: ConversationId,
        before_seq: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
        ))
        .bind(conversation_id)
        .bind(before_seq.unwrap_or(Seq::MAX))
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn create_leave_message(&self, message: NewLeaveMessage) -> Result<LeaveMessage> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO leave_messages \
             (site_id, visitor_id, name, contact, body, status, assignee_id, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, NULL, ?) RETURNING id",
        )
        .bind(message.site_id)
        .bind(message.visitor_id)
        .bind(&message.name)
        .bind(&message.contact)
        .bind(&message.body)
        .bind(LeaveMessageStatus::New.as_str())
        .bind(message.created_at)
        .fetch_one(&mut *tx)
        .await?;
        let text =
            leave_message_search_text(message.name.as_deref(), &message.contact, &message.body);
        Self::index_text(&mut tx, Indexed::LeaveMessages, id, &text).await?;
        tx.commit().await?;
        Ok(LeaveMessage::stored(id, message))
    }

    async fn leave_messages_page(
        &self,
        site_ids: &[SiteId],
        status: Option<LeaveMessageStatus>,
        after: Option<LeaveMessageCursor>,
        limit: u32,
    ) -> Result<Vec<LeaveMessage>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = leave_messages_query::<Sqlite>(site_ids, status, after, limit);
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn leave_message(&self, id: LeaveMessageId) -> Result<Option<LeaveMessage>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            leave_message_columns!(),
            " FROM leave_messages WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn update_leave_message(
        &self,
        id: LeaveMessageId,
        status: LeaveMessageStatus,
        assignee: Option<AgentId>,
    ) -> Result<LeaveMessage> {
        let _writer = self.writer().await;
        sqlx::query_as(concat!(
            "UPDATE leave_messages SET status = ?, assignee_id = ? WHERE id = ? RETURNING ",
            leave_message_columns!()
        ))
        .bind(status.as_str())
        .bind(assignee)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound)
    }

    async fn add_leave_message_note(&self, note: NewLeaveMessageNote) -> Result<LeaveMessageNote> {
        let _writer = self.writer().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO leave_message_notes (leave_message_id, agent_id, body, created_at) \
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(note.leave_message_id)
        .bind(note.agent_id)
        .bind(&note.body)
        .bind(note.created_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(LeaveMessageNote {
            id,
            leave_message_id: note.leave_message_id,
            agent_id: note.agent_id,
            body: note.body,
            created_at: note.created_at,
        })
    }

    async fn leave_message_notes(&self, id: LeaveMessageId) -> Result<Vec<LeaveMessageNote>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            leave_message_note_columns!(),
            " FROM leave_message_notes WHERE leave_message_id = ? ORDER BY id"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn history(
        &self,
        filter: &HistoryFilter,
        after: Option<ConversationCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        if filter.sites.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = history_query::<Sqlite>(filter, after, limit);
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

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
            (before.unwrap_or(i64::MAX), None),
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

    async fn conversation_stats(
        &self,
        site_ids: &[SiteId],
        since: UnixMillis,
        until: UnixMillis,
    ) -> Result<Vec<ConversationStats>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = conversation_stats_query::<Sqlite>(site_ids, since, until);
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn create_attachment(&self, attachment: NewAttachment) -> Result<Attachment> {
        let _writer = self.writer().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO attachments \
             (public_id, site_id, visitor_id, agent_id, name, content_type, size, data, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&attachment.public_id)
        .bind(attachment.site_id)
        .bind(attachment.visitor_id)
        .bind(attachment.agent_id)
        .bind(&attachment.name)
        .bind(&attachment.content_type)
        .bind(i64::try_from(attachment.data.len()).unwrap_or(i64::MAX))
        .bind(&attachment.data)
        .bind(attachment.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on("public_id"))?;
        Ok(Attachment::stored(id, &attachment))
    }

    async fn attachment(&self, public_id: &str) -> Result<Option<Attachment>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            attachment_columns!(),
            " FROM attachments WHERE public_id = ?"
        ))
        .bind(public_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn attachment_data(&self, public_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT data FROM attachments WHERE public_id = ?")
                .bind(public_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn mark_attachment_sent(&self, public_id: &str, at: i64) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query("UPDATE attachments SET sent_at = ? WHERE public_id = ? AND sent_at IS NULL")
            .bind(at)
            .bind(public_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_unsent_attachments(&self, created_before: i64) -> Result<u64> {
        let _writer = self.writer().await;
        let deleted =
            sqlx::query("DELETE FROM attachments WHERE sent_at IS NULL AND created_at < ?")
                .bind(created_before)
                .execute(&self.pool)
                .await?;
        Ok(deleted.rows_affected())
    }

    async fn attachment_usage(&self, site_id: SiteId, visitor_id: VisitorId) -> Result<(i64, i64)> {
        Ok(sqlx::query_as(
            "SELECT COALESCE(SUM(size), 0), \
             COALESCE(SUM(CASE WHEN visitor_id = ? THEN size ELSE 0 END), 0) \
             FROM attachments WHERE site_id = ?",
        )
        .bind(visitor_id)
        .bind(site_id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn rate_conversation(&self, rating: Rating) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO ratings (conversation_id, score, comment, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (conversation_id) DO UPDATE SET score = excluded.score, \
             comment = excluded.comment, created_at = excluded.created_at",
        )
        .bind(rating.conversation_id)
        .bind(rating.score)
        .bind(&rating.comment)
        .bind(rating.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn rating(&self, conversation_id: ConversationId) -> Result<Option<Rating>> {
        Ok(sqlx::query_as(
            "SELECT conversation_id, score, comment, created_at FROM ratings \
             WHERE conversation_id = ?",
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn create_canned_reply(&self, reply: NewCannedReply) -> Result<CannedReply> {
        let _writer = self.writer().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO canned_replies (site_id, agent_id, shortcut, body, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(reply.site_id)
        .bind(reply.agent_id)
        .bind(&reply.shortcut)
        .bind(&reply.body)
        .bind(reply.created_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(CannedReply::stored(id, reply))
    }

    async fn canned_replies(
        &self,
        site_ids: &[SiteId],
        agent_id: AgentId,
    ) -> Result<Vec<CannedReply>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            canned_reply_columns!(),
            " FROM canned_replies WHERE (agent_id IS NULL OR agent_id = "
        ));
        query.push_bind(agent_id);
        query.push(") AND site_id");
        push_id_list(&mut query, site_ids);
        query.push(" ORDER BY shortcut, id");
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn canned_reply(&self, id: CannedReplyId) -> Result<Option<CannedReply>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            canned_reply_columns!(),
            " FROM canned_replies WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_canned_reply(&self, id: CannedReplyId) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query("DELETE FROM canned_replies WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn secret(
        &self,
        key: &str,
        generate: &(dyn Fn() -> String + Send + Sync),
    ) -> Result<String> {
        let select = sqlx::query_scalar(r#"SELECT value FROM settings WHERE "key" = ?"#).bind(key);
        if let Some(value) = select.fetch_optional(&self.pool).await? {
            return Ok(value);
        }
        let candidate = generate();
        {
            let _writer = self.writer().await;
            sqlx::query(
                r#"INSERT INTO settings ("key", value) VALUES (?, ?) ON CONFLICT ("key") DO NOTHING"#,
            )
            .bind(key)
            .bind(&candidate)
            .execute(&self.pool)
            .await?;
        }
        // Whoever inserted first won; everyone reads that value.
        Ok(
            sqlx::query_scalar(r#"SELECT value FROM settings WHERE "key" = ?"#)
                .bind(key)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn create_ban(&self, ban: NewBan) -> Result<Ban> {
        let _writer = self.writer().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bans (site_id, visitor_id, ip_cidr, reason, expires_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(ban.site_id)
        .bind(ban.visitor_id)
        .bind(&ban.ip_cidr)
        .bind(&ban.reason)
        .bind(ban.expires_at)
        .bind(ban.created_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(Ban::stored(id, ban))
    }

    async fn active_bans(&self, site_id: SiteId, now: UnixMillis) -> Result<Vec<Ban>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            ban_columns!(),
            " FROM bans WHERE site_id = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY id"
        ))
        .bind(site_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_ban(&self, id: BanId) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query("DELETE FROM bans WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_history_before(&self, cutoff: UnixMillis) -> Result<u64> {
        let mut conversations = 0;
        for (statement, counts) in [
            (
                "DELETE FROM conversations WHERE id IN \
                 (SELECT id FROM conversations WHERE updated_at < ? LIMIT 1000)",
                true,
            ),
            (
                "DELETE FROM leave_messages WHERE id IN \
                 (SELECT id FROM leave_messages WHERE created_at < ? LIMIT 1000)",
                false,
            ),
            (
                "DELETE FROM attachments WHERE id IN \
                 (SELECT id FROM attachments WHERE created_at < ? LIMIT 1000)",
                false,
            ),
        ] {
            loop {
                let _writer = self.writer().await;
                let deleted = sqlx::query(statement)
                    .bind(cutoff)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if counts {
                    conversations += deleted;
                }
                if deleted == 0 {
                    break;
                }
            }
        }
        Ok(conversations)
    }

    async fn save_message_translation(&self, translation: &MessageTranslation) -> Result<()> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO message_translations (message_id, source_language, target_language, \
             text, state, attempts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (message_id) DO UPDATE SET source_language = excluded.source_language, \
             target_language = excluded.target_language, text = excluded.text, state = excluded.state, \
             attempts = excluded.attempts, updated_at = excluded.updated_at")
        .bind(translation.message_id)
        .bind(&translation.source_language)
        .bind(&translation.target_language)
        .bind(&translation.text)
        .bind(translation.state.as_str())
        .bind(translation.attempts)
        .bind(translation.updated_at)
        .execute(&mut *tx)
        .await?;
        if let Some(text) = &translation.text {
            let body: String = sqlx::query_scalar("SELECT body FROM messages WHERE id = ?")
                .bind(translation.message_id)
                .fetch_one(&mut *tx)
                .await?;
            let indexed = translated_search_text(&body, text);
            Self::index_text(&mut tx, Indexed::Messages, translation.message_id, &indexed).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn message_translations(
        &self,
        message_ids: &[MessageId],
    ) -> Result<Vec<MessageTranslation>> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT message_id, source_language, target_language, text, state, attempts, \
             updated_at FROM message_translations WHERE message_id",
        );
        push_id_list(&mut query, message_ids);
        query.push(" ORDER BY message_id");
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn cached_translation(&self, key: &TranslationKey) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT translation FROM translation_cache WHERE text_hash = ? \
             AND source_language = ? AND target_language = ? AND provider = ?",
        )
        .bind(&key.text_hash)
        .bind(&key.source_language)
        .bind(&key.target_language)
        .bind(&key.provider)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn cache_translation(
        &self,
        key: &TranslationKey,
        translation: &str,
        now: UnixMillis,
    ) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO translation_cache (text_hash, source_language, target_language, \
             provider, translation, created_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&key.text_hash)
        .bind(&key.source_language)
        .bind(&key.target_language)
        .bind(&key.provider)
        .bind(translation)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn spend_translation_chars(
        &self,
        site_id: SiteId,
        day: i64,
        chars: i64,
        budget: i64,
    ) -> Result<bool> {
        if chars > budget {
            return Ok(false);
        }
        let _writer = self.writer().await;
        let counted = sqlx::query("INSERT INTO translation_usage (site_id, day, chars) VALUES (?, ?, ?) \
             ON CONFLICT (site_id, day) DO UPDATE SET chars = translation_usage.chars + excluded.chars \
             WHERE translation_usage.chars + excluded.chars <= ?")
        .bind(site_id)
        .bind(day)
        .bind(chars)
        .bind(budget)
        .execute(&self.pool)
        .await?;
        Ok(counted.rows_affected() > 0)
    }

    async fn translation_chars(&self, site_id: SiteId, day: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT chars FROM translation_usage WHERE site_id = ? AND day = ?")
                .bind(site_id)
                .bind(day)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }

    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken> {
        let _writer = self.writer().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (agent_id, name, token_hash, prefix, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(token.agent_id)
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(&token.prefix)
        .bind(token.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on("token"))?;
        Ok(ApiToken {
            id,
            agent_id: token.agent_id,
            name: token.name,
            prefix: token.prefix,
            created_at: token.created_at,
            last_used_at: None,
        })
    }

    async fn api_tokens(&self, agent_id: AgentId) -> Result<Vec<ApiToken>> {
        Ok(sqlx::query_as(
            "SELECT id, agent_id, name, prefix, created_at, last_used_at FROM api_tokens \
             WHERE agent_id = ? ORDER BY id DESC",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_api_token(&self, agent_id: AgentId, id: i64) -> Result<()> {
        let _writer = self.writer().await;
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE id = ? AND agent_id = ?")
            .bind(id)
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn api_token_agent(&self, token_hash: &str, now: UnixMillis) -> Result<Option<Agent>> {
        let token: Option<(i64, AgentId, Option<UnixMillis>)> = sqlx::query_as(
            "SELECT id, agent_id, last_used_at FROM api_tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, agent_id, last_used_at)) = token else {
            return Ok(None);
        };
        if last_used_at.is_none_or(|at| at <= now - crate::TOKEN_USE_STEP_MS) {
            let _writer = self.writer().await;
            sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(self.agent(agent_id).await?.filter(|agent| !agent.disabled))
    }

    async fn create_webhook(
        &self,
        url: &str,
        secret: &str,
        events: &[&str],
        now: UnixMillis,
    ) -> Result<Webhook> {
        let events = format!(" {} ", events.join(" "));
        let _writer = self.writer().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhooks (url, secret, events, created_at) VALUES (?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(url)
        .bind(secret)
        .bind(&events)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(Webhook {
            id,
            url: url.to_owned(),
            secret: secret.to_owned(),
            events,
            created_at: now,
        })
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(
            sqlx::query_as("SELECT id, url, secret, events, created_at FROM webhooks ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn delete_webhook(&self, id: i64) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn enqueue_webhook_deliveries(
        &self,
        event: &str,
        payload: &str,
        now: UnixMillis,
    ) -> Result<u64> {
        let _writer = self.writer().await;
        Ok(sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event, payload, next_attempt_at, created_at) \
             SELECT id, ?, ?, ?, ? FROM webhooks WHERE events LIKE ?",
        )
        .bind(event)
        .bind(payload)
        .bind(now)
        .bind(now)
        .bind(format!("% {event} %"))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn claim_webhook_deliveries(
        &self,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut due: Vec<WebhookDelivery> = sqlx::query_as(concat!(
            "SELECT ",
            webhook_delivery_columns!(),
            " FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? \
             ORDER BY id LIMIT ?"
        ))
        .bind(now)
        .bind(limit_param(limit))
        .fetch_all(&mut *tx)
        .await?;
        for delivery in &mut due {
            sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?")
                .bind(lease_until)
                .bind(delivery.id)
                .execute(&mut *tx)
                .await?;
            delivery.next_attempt_at = lease_until;
        }
        tx.commit().await?;
        Ok(due)
    }

    async fn record_webhook_attempt(&self, id: i64, attempt: &DeliveryAttempt) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, \
             next_attempt_at = ?, last_status = ?, last_error = ? WHERE id = ?",
        )
        .bind(attempt.state.as_str())
        .bind(attempt.next_attempt_at)
        .bind(attempt.status)
        .bind(&attempt.error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn webhook_deliveries(
        &self,
        webhook_id: i64,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            webhook_delivery_columns!(),
            " FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(webhook_id)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn append_event(&self, event: NewEvent) -> Result<Event> {
        // One writer at a time (this mutex, then SQLite's lock): ids commit in id order.
        let _writer = self.writer().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO events (site_id, kind, conversation_id, payload, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(event.site_id)
        .bind(&event.kind)
        .bind(event.conversation_id)
        .bind(&event.payload)
        .bind(event.created_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(Event::stored(id, event))
    }

    async fn events_after(
        &self,
        site_ids: &[SiteId],
        after_id: EventId,
        limit: u32,
    ) -> Result<Vec<Event>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE id > "
        ));
        query.push_bind(after_id);
        query.push(" AND site_id");
        push_id_list(&mut query, site_ids);
        query.push(" ORDER BY id ASC LIMIT ");
        query.push_bind(limit_param(limit));
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn create_team(&self, site_id: SiteId, name: &str) -> Result<Team> {
        let _writer = self.writer().await;
        let result = sqlx::query("INSERT INTO teams (site_id, name) VALUES (?, ?)")
            .bind(site_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        let id = result.last_insert_rowid();
        Ok(Team {
            id,
            site_id,
            name: name.to_string(),
        })
    }

    async fn add_team_member(&self, team_id: TeamId, agent_id: AgentId) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query("INSERT OR IGNORE INTO team_members (team_id, agent_id) VALUES (?, ?)")
            .bind(team_id)
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn remove_team_member(&self, team_id: TeamId, agent_id: AgentId) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query("DELETE FROM team_members WHERE team_id = ? AND agent_id = ?")
            .bind(team_id)
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_team(&self, team_id: TeamId) -> Result<()> {
        let _writer = self.writer().await;
        let deleted = sqlx::query("DELETE FROM teams WHERE id = ?")
            .bind(team_id)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn site_teams(&self, site_ids: &[SiteId]) -> Result<Vec<Team>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT id, site_id, name FROM teams WHERE site_id");
        push_id_list(&mut query, site_ids);
        query.push(" ORDER BY id");
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn team_members(&self, team_id: TeamId) -> Result<Vec<AgentId>> {
        Ok(sqlx::query_scalar(
            "SELECT agent_id FROM team_members WHERE team_id = ? ORDER BY agent_id",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_conversation_team(&self, id: ConversationId, team: Option<TeamId>) -> Result<()> {
        let _writer = self.writer().await;
        let result = sqlx::query("UPDATE conversations SET team_id = ? WHERE id = ?")
            .bind(team)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn set_conversation_translating(&self, id: ConversationId, on: bool) -> Result<()> {
        let _writer = self.writer().await;
        let result = sqlx::query("UPDATE conversations SET translating = ? WHERE id = ?")
            .bind(on)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn set_conversation_tags(&self, id: ConversationId, tags: &[String]) -> Result<()> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM conversations WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            // Explicitly: a dropped transaction rolls back only when its connection is next
            // used, holding its locks until then.
            tx.rollback().await?;
            return Err(Error::NotFound);
        }
        sqlx::query("DELETE FROM conversation_tags WHERE conversation_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for tag in tags {
            sqlx::query(
                "INSERT OR IGNORE INTO conversation_tags (conversation_id, tag) VALUES (?, ?)",
            )
            .bind(id)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn conversation_tags(
        &self,
        ids: &[ConversationId],
    ) -> Result<Vec<(ConversationId, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT conversation_id, tag FROM conversation_tags WHERE conversation_id",
        );
        push_id_list(&mut query, ids);
        query.push(" ORDER BY conversation_id, tag");
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn conversation_events(
        &self,
        conversation_id: ConversationId,
        kind: &str,
    ) -> Result<Vec<Event>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE conversation_id = ? AND kind = ? ORDER BY id ASC"
        ))
        .bind(conversation_id)
        .bind(kind)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn last_event_id(&self, site_ids: &[SiteId]) -> Result<EventId> {
        if site_ids.is_empty() {
            return Ok(0);
        }
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT COALESCE(MAX(id), 0) FROM events WHERE site_id");
        push_id_list(&mut query, site_ids);
        Ok(query.build_query_scalar().fetch_one(&self.pool).await?)
    }
}
