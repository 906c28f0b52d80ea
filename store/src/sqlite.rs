//! The SQLite implementation of [`Store`]: the embedded default.
//!
//! One database file in WAL mode: readers run in parallel on the pool while writes are
//! serialised — first by an in-process queue, then by SQLite's own lock with a busy timeout for
//! other processes on the same file. It never creates the file's directory (see [`crate::connect`]).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::{conflict_on, is_unique_violation};
use crate::model::{
    agent_columns, conversation_columns, leave_message_columns, message_columns, site_columns,
    to_json_text, visitor_columns,
};
use crate::{
    Agent, AgentId, Appended, Backend, Conversation, ConversationCursor, ConversationId,
    DatabaseUrl, Error, LeaveMessage, LeaveMessageCursor, LeaveMessageStatus, Message, NewAgent,
    NewLeaveMessage, NewMessage, NewSite, Result, START, Seq, Site, SiteId, Store, UnixMillis,
    Visitor, VisitorId, limit_param, now_millis,
};

/// How long a write waits for another process holding the database's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .map_err(|source| Error::Connect {
                url: url.redacted().to_owned(),
                source,
            })?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore {
            pool,
            write_lock: Mutex::new(()),
        })
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
}

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
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
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
        let _writer = self.writer().await;
        // IMMEDIATE takes the write lock up front, so no read lock ever has to be upgraded
        // (the source of SQLITE_BUSY deadlocks between processes).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let seq: Option<Seq> = sqlx::query_scalar(
            "UPDATE conversations SET last_seq = last_seq + 1, \
             updated_at = MAX(updated_at, ?) WHERE id = ? RETURNING last_seq",
        )
        .bind(message.created_at)
        .bind(conversation_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(seq) = seq else {
            tx.rollback().await?;
            return Err(Error::NotFound);
        };
        if let Some(existing) =
            Self::message_by_client_id(&mut *tx, conversation_id, &message.client_id.0).await?
        {
            tx.rollback().await?;
            return Ok(Appended {
                message: existing,
                created: false,
            });
        }
        let inserted = sqlx::query_scalar(
            "INSERT INTO messages \
             (conversation_id, seq, client_id, author, agent_id, body, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(conversation_id)
        .bind(seq)
        .bind(&message.client_id.0)
        .bind(message.author.as_str())
        .bind(message.agent_id)
        .bind(&message.body)
        .bind(message.created_at)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(id) => id,
            Err(error) if is_unique_violation(&error) => {
                // Another process stored the same client id first: answer with its message.
                tx.rollback().await?;
                let existing =
                    Self::message_by_client_id(&self.pool, conversation_id, &message.client_id.0)
                        .await?;
                return existing
                    .map(|message| Appended {
                        message,
                        created: false,
                    })
                    .ok_or(Error::Database(error));
            }
            Err(error) => return Err(error.into()),
        };
        tx.commit().await?;
        Ok(Appended {
            message: Message::stored(id, conversation_id, seq, message),
            created: true,
        })
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
        .fetch_one(&self.pool)
        .await?;
        Ok(LeaveMessage::stored(id, message))
    }

    async fn leave_messages_page(
        &self,
        site_id: SiteId,
        after: Option<LeaveMessageCursor>,
        limit: u32,
    ) -> Result<Vec<LeaveMessage>> {
        let (created_at, id) = after.map_or(START, |c| (c.created_at, c.id));
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            leave_message_columns!(),
            " FROM leave_messages WHERE site_id = ? AND (created_at, id) < (?, ?) \
             ORDER BY created_at DESC, id DESC LIMIT ?"
        ))
        .bind(site_id)
        .bind(created_at)
        .bind(id)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
