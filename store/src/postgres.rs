//! The PostgreSQL implementation of [`Store`].
//!
//! Writers of one conversation are serialised by the row lock that `UPDATE conversations` takes,
//! which is what makes sequence numbers gap-free across any number of server processes; a
//! visitor's messages without a conversation are serialised by the visitor's row lock, and event
//! appends by the one row of `event_lock`. The
//! database must already exist; this module creates tables (via migrations), never databases.

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{PgPool, Postgres};

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
    now_millis,
};
use crate::{
    BACKFILL_BATCH, BackfillRow, BanId, ConversationStats, DeliveryAttempt, HistoryFilter, Indexed,
    LeaveMessageId, LeaveMessageNote, MessageId, NewLeaveMessageNote, Role, Webhook,
    WebhookDelivery, conversation_stats_query, history_query, leave_message_search_query,
    leave_message_search_text, leave_messages_query, message_search_query, search, search_ranges,
    translated_search_text,
};
use crate::{MessageTranslation, TranslationKey};

/// A [`Store`] on a PostgreSQL database.
pub(crate) struct PostgresStore {
    /// Connections to the database, shared by every request.
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database `url` names and applies migrations.
    pub(crate) async fn connect(url: &DatabaseUrl) -> Result<Self> {
        let connect_error = |source| Error::Connect {
            url: url.redacted().to_owned(),
            source,
        };
        let options: PgConnectOptions = url.expose_secret().parse().map_err(connect_error)?;
        let pool = PgPoolOptions::new()
            .acquire_timeout(crate::ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        crate::error::migrate(&sqlx::migrate!("migrations/postgres"), &pool).await?;
        let store = PostgresStore { pool };
        store.backfill_search().await?;
        Ok(store)
    }

    /// Indexes the rows stored before search existed (`0009_search`), a batch per transaction;
    /// the marker row's lock keeps nodes starting together from doing it twice at once.
    async fn backfill_search(&self) -> Result<()> {
        for table in Indexed::ALL {
            let key = table.backfill_key();
            loop {
                let mut tx = self.pool.begin().await?;
                let upto: Option<String> =
                    sqlx::query_scalar(r#"SELECT value FROM settings WHERE "key" = $1 FOR UPDATE"#)
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
                    "SELECT {} FROM {} WHERE id <= $1 ORDER BY id DESC LIMIT $2",
                    table.text_columns(),
                    table.table()
                )))
                .bind(upto)
                .bind(BACKFILL_BATCH)
                .fetch_all(&mut *tx)
                .await?;
                for (id, name, contact, body) in &rows {
                    let text = table.text((name, contact, body));
                    sqlx::query(AssertSqlSafe(format!(
                        "UPDATE {} SET search = $1::tsvector WHERE id = $2",
                        table.table()
                    )))
                    .bind(search::tsvector(&text))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                match rows.last() {
                    Some((lowest, ..)) => {
                        sqlx::query(r#"UPDATE settings SET value = $1 WHERE "key" = $2"#)
                            .bind((lowest - 1).to_string())
                            .bind(key)
                            .execute(&mut *tx)
                            .await?
                    }
                    None => {
                        sqlx::query(r#"DELETE FROM settings WHERE "key" = $1"#)
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

    /// The message stored in `conversation_id` under `client_id`, if any.
    async fn message_by_client_id<'e, E>(
        executor: E,
        conversation_id: ConversationId,
        client_id: &str,
    ) -> Result<Option<Message>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Postgres>,
    {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE conversation_id = $1 AND client_id = $2"
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
        E: sqlx::Executor<'e, Database = sqlx::Postgres>,
    {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE client_id = $1 AND conversation_id IN \
             (SELECT id FROM conversations WHERE visitor_id = $2) ORDER BY id LIMIT 1"
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
        E: sqlx::Executor<'e, Database = sqlx::Postgres>,
    {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE id = $1"
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
        E: sqlx::Executor<'e, Database = sqlx::Postgres>,
    {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE visitor_id = $1 AND status <> 'resolved' \
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

    /// Appends `message` to `conversation_id` inside the caller's open transaction: bumps the
    /// conversation's seq, then stores the message under it unless the client id is already
    /// there. The caller commits or rolls back as the outcome says. `NotFound` if the
    /// conversation does not exist.
    async fn append_in_tx(
        conn: &mut PgConnection,
        conversation_id: ConversationId,
        message: NewMessage,
    ) -> Result<AppendInTx> {
        // The UPDATE comes first: it takes the conversation's row lock, so concurrent writers
        // queue here and each then sees the previous one's committed seq and message.
        let seq: Option<Seq> = sqlx::query_scalar(
            "UPDATE conversations SET last_seq = last_seq + 1, \
             updated_at = GREATEST(updated_at, $1) WHERE id = $2 RETURNING last_seq",
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
        let inserted = sqlx::query_scalar(
            "INSERT INTO messages \
             (conversation_id, seq, client_id, author, agent_id, body, attachment, created_at, \
              search) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::tsvector) RETURNING id",
        )
        .bind(conversation_id)
        .bind(seq)
        .bind(&message.client_id.0)
        .bind(message.author.as_str())
        .bind(message.agent_id)
        .bind(&message.body)
        .bind(message.attachment_text()?)
        .bind(message.created_at)
        .bind(search::tsvector(&message.body))
        .fetch_one(&mut *conn)
        .await;
        match inserted {
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
}

/// The copy's SQL for PostgreSQL.
const COPY: crate::copy::Dialect = crate::copy::Dialect {
    quote: |name| format!("\"{name}\""),
    upsert_setting: r#"INSERT INTO settings ("key", value) VALUES ($1, $2) ON CONFLICT ("key") DO UPDATE SET value = excluded.value"#,
    select_setting: r#"SELECT value FROM settings WHERE "key" = $1"#,
};

/// An assignment's SQL for PostgreSQL (READ COMMITTED, its default: once a row lock is ours,
/// the load counts what the previous holder committed).
const ASSIGN: crate::assign::Sql = crate::assign::Sql {
    lock_conversation: "SELECT assignee_id FROM conversations WHERE id = $1 FOR UPDATE",
    lock_agent: "SELECT id FROM agents WHERE id = $1 FOR UPDATE",
    load: "SELECT COUNT(*) FROM conversations WHERE status = 'open' AND assignee_id = $1",
    assign: "UPDATE conversations SET assignee_id = $1 WHERE id = $2",
    take_turn: "UPDATE agents SET last_assigned_at = $1 WHERE id = $2",
};

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_site(&self, site: NewSite) -> Result<Site> {
        let origins = to_json_text(&site.allowed_origins)?;
        let settings = to_json_text(&site.widget_settings)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sites (public_key, name, allowed_origins, widget_settings, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
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
            " FROM sites WHERE public_key = $1"
        ))
        .bind(public_key)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn site(&self, id: SiteId) -> Result<Option<Site>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            site_columns!(),
            " FROM sites WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn copy_snapshot(&self) -> Result<Box<dyn crate::copy::Snapshot>> {
        let tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        Ok(Box::new(crate::copy::TxSnapshot::new(tx, &COPY)))
    }

    async fn copy_count(&self, table: &'static crate::copy::Table) -> Result<i64> {
        crate::copy::count::<sqlx::Postgres>(&mut *self.pool.acquire().await?, &COPY, table).await
    }

    async fn copy_write(
        &self,
        table: &'static crate::copy::Table,
        rows: Vec<Vec<crate::copy::Value>>,
        last: Vec<crate::copy::Value>,
    ) -> Result<()> {
        crate::copy::write(&self.pool, &COPY, table, rows, last).await
    }

    async fn copy_progress(
        &self,
        table: &'static crate::copy::Table,
    ) -> Result<Option<Vec<crate::copy::Value>>> {
        crate::copy::progress(&self.pool, &COPY, table).await
    }

    async fn copy_finish(&self) -> Result<()> {
        for table in crate::copy::TABLES.iter().filter(|t| t.key == ["id"]) {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {0}",
                table.name
            )))
            .execute(&self.pool)
            .await?;
        }
        for indexed in Indexed::ALL {
            let table = indexed.table();
            sqlx::query(AssertSqlSafe(format!(
                r#"INSERT INTO settings ("key", value) SELECT '{}', MAX(id)::text FROM {table} HAVING MAX(id) IS NOT NULL"#,
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
        sqlx::query(
            "UPDATE sites SET name = $1, allowed_origins = $2, widget_settings = $3 WHERE id = $4",
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO agents \
             (email, password_hash, display_name, role, language, max_chats, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7) RETURNING id",
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
            " FROM agents WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn agent(&self, id: AgentId) -> Result<Option<Agent>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE id = $1"
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
        sqlx::query("UPDATE agents SET role = $1, max_chats = $2, disabled = $3 WHERE id = $4")
            .bind(role.as_str())
            .bind(max_chats)
            .bind(disabled)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.agent(id).await?.ok_or(Error::NotFound)
    }

    async fn remove_agent_from_site(&self, site_id: SiteId, agent_id: AgentId) -> Result<()> {
        sqlx::query("DELETE FROM site_agents WHERE site_id = $1 AND agent_id = $2")
            .bind(site_id)
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_agent_language(&self, id: AgentId, language: &str) -> Result<()> {
        let changed = sqlx::query("UPDATE agents SET language = $1 WHERE id = $2")
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
        sqlx::query(
            "INSERT INTO site_agents (site_id, agent_id) VALUES ($1, $2) \
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
            "SELECT site_id FROM site_agents WHERE agent_id = $1 ORDER BY site_id",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn site_agents(&self, site_ids: &[SiteId]) -> Result<Vec<Agent>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE NOT disabled \
             AND id IN (SELECT agent_id FROM site_agents WHERE site_id = ANY($1)) ORDER BY id"
        ))
        .bind(site_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn create_session(
        &self,
        token_hash: &str,
        agent_id: AgentId,
        expires_at: UnixMillis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, agent_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
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
             (SELECT agent_id FROM sessions WHERE token_hash = $1 AND expires_at > $2)"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_agent_password(&self, id: AgentId, password_hash: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query("UPDATE agents SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0
            && sqlx::query("SELECT 1 FROM agents WHERE id = $1")
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
        sqlx::query("DELETE FROM sessions WHERE agent_id = $1")
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
        // Returning visitors are the common case: update first, insert only when new. The
        // insert's upsert clause still covers a concurrent first contact from another process.
        let existing = sqlx::query_as(concat!(
            "UPDATE visitors SET last_seen_at = GREATEST(last_seen_at, $1) \
             WHERE site_id = $2 AND visitor_key = $3 RETURNING ",
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
             VALUES ($1, $2, $3, $4) ON CONFLICT (site_id, visitor_key) \
             DO UPDATE SET last_seen_at = GREATEST(visitors.last_seen_at, EXCLUDED.last_seen_at) RETURNING ",
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
            " FROM visitors WHERE id = $1"
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
        sqlx::query_as(concat!(
            "UPDATE visitors SET name = $1, email = $2, attributes = $3 WHERE id = $4 RETURNING ",
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
        let updated = sqlx::query("UPDATE visitors SET language = $1 WHERE id = $2")
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
        // Selecting from `visitors` makes a visitor of another site count as missing.
        sqlx::query_as(concat!(
            "INSERT INTO conversations \
             (site_id, visitor_id, status, last_seq, created_at, updated_at) \
             SELECT site_id, id, 'open', 0, $1, $2 FROM visitors WHERE id = $3 AND site_id = $4 \
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
            " FROM conversations WHERE visitor_id = $1 ORDER BY id DESC LIMIT $2"
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
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE site_id = ANY($1) AND status <> 'resolved' \
             ORDER BY updated_at DESC, id DESC LIMIT $2"
        ))
        .bind(site_ids)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_conversation_status(
        &self,
        id: ConversationId,
        status: ConversationStatus,
        now: UnixMillis,
    ) -> Result<Conversation> {
        sqlx::query_as(concat!(
            "UPDATE conversations SET status = $1, snoozed_until = NULL, \
             updated_at = GREATEST(updated_at, $2) WHERE id = $3 RETURNING ",
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
        sqlx::query_as(concat!(
            "UPDATE conversations SET status = 'pending', snoozed_until = $1, \
             updated_at = GREATEST(updated_at, $2) WHERE id = $3 RETURNING ",
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
            " FROM conversations WHERE snoozed_until <= $1 ORDER BY snoozed_until, id LIMIT $2"
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
        Ok(sqlx::query_as(concat!(
            "UPDATE conversations SET status = 'open', snoozed_until = NULL, \
             updated_at = GREATEST(updated_at, $1) WHERE id = $2 AND snoozed_until <= $1 \
             RETURNING ",
            conversation_columns!()
        ))
        .bind(now)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn reassign_conversation(
        &self,
        id: ConversationId,
        from: Option<AgentId>,
        to: Option<AgentId>,
    ) -> Result<bool> {
        let moved = sqlx::query("UPDATE conversations SET assignee_id = $1 WHERE id = $2 AND assignee_id IS NOT DISTINCT FROM $3")
            .bind(to)
            .bind(id)
            .bind(from)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if moved > 0 {
            return Ok(true);
        }
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM conversations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        exists.map(|_| false).ok_or(Error::NotFound)
    }

    async fn agent_loads(&self, agent_ids: &[AgentId]) -> Result<Vec<(AgentId, i64)>> {
        Ok(sqlx::query_as(
            "SELECT assignee_id, COUNT(*) FROM conversations \
             WHERE status = 'open' AND assignee_id = ANY($1) \
             GROUP BY assignee_id ORDER BY assignee_id",
        )
        .bind(agent_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn assign_within_capacity(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        max_chats: i64,
        turn_ms: i64,
    ) -> Result<bool> {
        let tx = self.pool.begin().await?;
        crate::assign::within_capacity(tx, &ASSIGN, conversation, agent, max_chats, turn_ms).await
    }

    async fn assignment_turns(&self, agent_ids: &[AgentId]) -> Result<Vec<(AgentId, i64)>> {
        Ok(
            sqlx::query_as(
                "SELECT id, last_assigned_at FROM agents WHERE id = ANY($1) ORDER BY id",
            )
            .bind(agent_ids)
            .fetch_all(&self.pool)
            .await?,
        )
    }

    async fn unassigned_conversations(
        &self,
        site_id: SiteId,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE site_id = $1 AND assignee_id IS NULL AND status = 'open' \
             ORDER BY created_at, id LIMIT $2"
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
            " FROM conversations WHERE site_id = $1 AND (updated_at, id) < ($2, $3) \
             ORDER BY updated_at DESC, id DESC LIMIT $4"
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
        let mut tx = self.pool.begin().await?;
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
                // A concurrent writer stored the same client id first: answer with its message.
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
        let mut tx = self.pool.begin().await?;
        let last: Option<Seq> = sqlx::query_scalar(
            "UPDATE conversations SET last_seq = last_seq + $1, \
             updated_at = GREATEST(updated_at, $2) WHERE id = $3 RETURNING last_seq",
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
        let rows: Vec<(Seq, &NewMessage, Option<String>)> = (last - count + 1..)
            .zip(messages)
            .map(|(seq, m)| Ok((seq, m, m.attachment_text()?)))
            .collect::<Result<_>>()?;
        let mut insert = sqlx::QueryBuilder::<Postgres>::new(
            "INSERT INTO messages (conversation_id, seq, client_id, author, agent_id, body, \
             attachment, created_at, search) ",
        );
        insert.push_values(rows, |mut row, (seq, m, attachment)| {
            row.push_bind(conversation_id)
                .push_bind(seq)
                .push_bind(m.client_id.0.clone())
                .push_bind(m.author.as_str())
                .push_bind(m.agent_id)
                .push_bind(m.body.clone())
                .push_bind(attachment)
                .push_bind(m.created_at)
                .push_bind(search::tsvector(&m.body))
                .push_unseparated("::tsvector");
        });
        if let Err(error) = insert.build().execute(&mut *tx).await {
            // Ended now, not when the connection is next used: MySQL holds the locks till then.
            tx.rollback().await?;
            return Err(conflict_on("client_id")(error));
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
        let mut tx = self.pool.begin().await?;
        // Locking the visitor row queues this visitor's calls here, so the look-up, the
        // conversation's creation and the append below act as one step. NO KEY UPDATE conflicts
        // with itself but not with the key-share locks of inserts that reference the visitor.
        let visitor: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM visitors WHERE id = $1 AND site_id = $2 FOR NO KEY UPDATE",
        )
        .bind(visitor_id)
        .bind(site_id)
        .fetch_optional(&mut *tx)
        .await?;
        if visitor.is_none() {
            tx.rollback().await?;
            return Err(Error::NotFound);
        }
        // READ COMMITTED: each statement below sees what the previous lock holder committed.
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
                         VALUES ($1, $2, 'open', 0, $3, $4) RETURNING id",
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
            " FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3"
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
            " FROM messages WHERE conversation_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        ))
        .bind(conversation_id)
        .bind(before_seq.unwrap_or(Seq::MAX))
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn create_leave_message(&self, message: NewLeaveMessage) -> Result<LeaveMessage> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO leave_messages \
             (site_id, visitor_id, name, contact, body, status, assignee_id, created_at, search) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8::tsvector) RETURNING id",
        )
        .bind(message.site_id)
        .bind(message.visitor_id)
        .bind(&message.name)
        .bind(&message.contact)
        .bind(&message.body)
        .bind(LeaveMessageStatus::New.as_str())
        .bind(message.created_at)
        .bind(search::tsvector(&leave_message_search_text(
            message.name.as_deref(),
            &message.contact,
            &message.body,
        )))
        .fetch_one(&self.pool)
        .await?;
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
        let mut query = leave_messages_query::<Postgres>(site_ids, status, after, limit);
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn leave_message(&self, id: LeaveMessageId) -> Result<Option<LeaveMessage>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            leave_message_columns!(),
            " FROM leave_messages WHERE id = $1"
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
        sqlx::query_as(concat!(
            "UPDATE leave_messages SET status = $1, assignee_id = $2 WHERE id = $3 RETURNING ",
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO leave_message_notes (leave_message_id, agent_id, body, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
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
            " FROM leave_message_notes WHERE leave_message_id = $1 ORDER BY id"
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
        let mut query = history_query::<Postgres>(filter, after, limit);
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn search_messages(
        &self,
        filter: &HistoryFilter,
        query: &search::Query,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        if filter.sites.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let upper = match before {
            Some(before) => before,
            None => {
                let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM messages")
                    .fetch_one(&self.pool)
                    .await?;
                newest.unwrap_or(0) + 1
            }
        };
        // Scanned windows first, then the index (see `SEARCH_WINDOWS`).
        let source = "messages m JOIN conversations c ON c.id = m.conversation_id";
        let mut found: Vec<Message> = Vec::new();
        for range in search_ranges(upper) {
            let want = limit.saturating_sub(found.len() as u32);
            if want == 0 {
                break;
            }
            let tsquery = query.tsquery();
            // In the index's range, `m.id + 0` keeps the planner from walking the primary key
            // backwards in the hope of meeting matches soon: by now the word is rare (or new,
            // an order number the statistics have never seen), and that walk would read every
            // row. Ordering by an expression leaves it the GIN index and a small sort.
            let id = if range.1.is_some() {
                "m.id"
            } else {
                "(m.id + 0)"
            };
            let mut page =
                message_search_query::<Postgres>(filter, range, want, (source, id), |q| {
                    if range.1.is_some() {
                        q.push("ts_match_vq(m.search, ")
                            .push_bind(tsquery)
                            .push("::tsquery)");
                    } else {
                        q.push("m.search @@ ").push_bind(tsquery).push("::tsquery");
                    }
                });
            found.extend(
                page.build_query_as::<Message>()
                    .fetch_all(&self.pool)
                    .await?,
            );
        }
        Ok(found)
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
        let source = "leave_messages l";
        let mut query = leave_message_search_query::<Postgres>(
            site_ids,
            before,
            limit,
            (source, "l.id"),
            |q| {
                q.push("l.search @@ ")
                    .push_bind(query.tsquery())
                    .push("::tsquery");
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
        let mut query = conversation_stats_query::<Postgres>(site_ids, since, until);
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn create_attachment(&self, attachment: NewAttachment) -> Result<Attachment> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO attachments \
             (public_id, site_id, visitor_id, agent_id, name, content_type, size, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
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
            " FROM attachments WHERE public_id = $1"
        ))
        .bind(public_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn attachment_data(&self, public_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT data FROM attachments WHERE public_id = $1")
                .bind(public_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn mark_attachment_sent(&self, public_id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE attachments SET sent_at = $1 WHERE public_id = $2 AND sent_at IS NULL")
            .bind(at)
            .bind(public_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_unsent_attachments(&self, created_before: i64) -> Result<u64> {
        let deleted =
            sqlx::query("DELETE FROM attachments WHERE sent_at IS NULL AND created_at < $1")
                .bind(created_before)
                .execute(&self.pool)
                .await?;
        Ok(deleted.rows_affected())
    }

    async fn attachment_usage(&self, site_id: SiteId, visitor_id: VisitorId) -> Result<(i64, i64)> {
        Ok(sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN visitor_id = $1 THEN size ELSE 0 END), 0) AS BIGINT) \
             FROM attachments WHERE site_id = $2",
        )
        .bind(visitor_id)
        .bind(site_id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn rate_conversation(&self, rating: Rating) -> Result<()> {
        sqlx::query(
            "INSERT INTO ratings (conversation_id, score, comment, created_at) \
             VALUES ($1, $2, $3, $4) \
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
             WHERE conversation_id = $1",
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn create_canned_reply(&self, reply: NewCannedReply) -> Result<CannedReply> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO canned_replies (site_id, agent_id, shortcut, body, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
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
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            canned_reply_columns!(),
            " FROM canned_replies WHERE site_id = ANY($1) \
             AND (agent_id IS NULL OR agent_id = $2) ORDER BY shortcut, id"
        ))
        .bind(site_ids)
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn canned_reply(&self, id: CannedReplyId) -> Result<Option<CannedReply>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            canned_reply_columns!(),
            " FROM canned_replies WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_canned_reply(&self, id: CannedReplyId) -> Result<()> {
        sqlx::query("DELETE FROM canned_replies WHERE id = $1")
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
        let select = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key);
        if let Some(value) = select.fetch_optional(&self.pool).await? {
            return Ok(value);
        }
        // A concurrent insert of the same key makes this one wait for it, then do nothing.
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(generate())
        .execute(&self.pool)
        .await?;
        // Whoever inserted first won; everyone reads that value.
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn create_ban(&self, ban: NewBan) -> Result<Ban> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bans (site_id, visitor_id, ip_cidr, reason, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
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
            " FROM bans WHERE site_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY id"
        ))
        .bind(site_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_ban(&self, id: BanId) -> Result<()> {
        sqlx::query("DELETE FROM bans WHERE id = $1")
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
                 (SELECT id FROM conversations WHERE updated_at < $1 LIMIT 1000)",
                true,
            ),
            (
                "DELETE FROM leave_messages WHERE id IN \
                 (SELECT id FROM leave_messages WHERE created_at < $1 LIMIT 1000)",
                false,
            ),
            (
                "DELETE FROM attachments WHERE id IN \
                 (SELECT id FROM attachments WHERE created_at < $1 LIMIT 1000)",
                false,
            ),
        ] {
            loop {
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO message_translations (message_id, source_language, target_language, \
             text, state, attempts, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
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
            let body: String = sqlx::query_scalar("SELECT body FROM messages WHERE id = $1")
                .bind(translation.message_id)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("UPDATE messages SET search = $1::tsvector WHERE id = $2")
                .bind(search::tsvector(&translated_search_text(&body, text)))
                .bind(translation.message_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn message_translations(
        &self,
        message_ids: &[MessageId],
    ) -> Result<Vec<MessageTranslation>> {
        Ok(sqlx::query_as(
            "SELECT message_id, source_language, target_language, text, state, attempts, \
             updated_at FROM message_translations WHERE message_id = ANY($1) ORDER BY message_id",
        )
        .bind(message_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn cached_translation(&self, key: &TranslationKey) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT translation FROM translation_cache WHERE text_hash = $1 \
             AND source_language = $2 AND target_language = $3 AND provider = $4",
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
        sqlx::query(
            "INSERT INTO translation_cache (text_hash, source_language, target_language, \
             provider, translation, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
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
        let counted = sqlx::query("INSERT INTO translation_usage (site_id, day, chars) VALUES ($1, $2, $3) \
             ON CONFLICT (site_id, day) DO UPDATE SET chars = translation_usage.chars + excluded.chars \
             WHERE translation_usage.chars + excluded.chars <= $4")
        .bind(site_id)
        .bind(day)
        .bind(chars)
        .bind(budget)
        .execute(&self.pool)
        .await?;
        Ok(counted.rows_affected() > 0)
    }

    async fn translation_chars(&self, site_id: SiteId, day: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT chars FROM translation_usage WHERE site_id = $1 AND day = $2",
        )
        .bind(site_id)
        .bind(day)
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(0))
    }

    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (agent_id, name, token_hash, prefix, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
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
             WHERE agent_id = $1 ORDER BY id DESC",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_api_token(&self, agent_id: AgentId, id: i64) -> Result<()> {
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND agent_id = $2")
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
            "SELECT id, agent_id, last_used_at FROM api_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, agent_id, last_used_at)) = token else {
            return Ok(None);
        };
        if last_used_at.is_none_or(|at| at <= now - crate::TOKEN_USE_STEP_MS) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhooks (url, secret, events, created_at) VALUES ($1, $2, $3, $4) \
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
        sqlx::query("DELETE FROM webhooks WHERE id = $1")
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
        Ok(sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event, payload, next_attempt_at, created_at) \
             SELECT id, $1, $2, $3, $4 FROM webhooks WHERE events LIKE $5",
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
        Ok(sqlx::query_as(concat!(
            "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id IN \
             (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $2 \
             ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING ",
            webhook_delivery_columns!()
        ))
        .bind(lease_until)
        .bind(now)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn record_webhook_attempt(&self, id: i64, attempt: &DeliveryAttempt) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, \
             next_attempt_at = $2, last_status = $3, last_error = $4 WHERE id = $5",
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
            " FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(webhook_id)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn append_event(&self, event: NewEvent) -> Result<Event> {
        // Identity values are handed out at insert time but become visible at commit, so two
        // concurrent appends could commit out of id order and a reader past the higher id would
        // never see the lower one. Holding the event lock row until commit rules that out.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT id FROM event_lock WHERE id = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO events (site_id, kind, conversation_id, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(event.site_id)
        .bind(&event.kind)
        .bind(event.conversation_id)
        .bind(&event.payload)
        .bind(event.created_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Event::stored(id, event))
    }

    async fn events_after(
        &self,
        site_ids: &[SiteId],
        after_id: EventId,
        limit: u32,
    ) -> Result<Vec<Event>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE site_id = ANY($1) AND id > $2 ORDER BY id ASC LIMIT $3"
        ))
        .bind(site_ids)
        .bind(after_id)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn create_team(&self, site_id: SiteId, name: &str) -> Result<Team> {
        let id: i64 =
            sqlx::query_scalar("INSERT INTO teams (site_id, name) VALUES ($1, $2) RETURNING id")
                .bind(site_id)
                .bind(name)
                .fetch_one(&self.pool)
                .await?;
        Ok(Team {
            id,
            site_id,
            name: name.to_string(),
        })
    }

    async fn add_team_member(&self, team_id: TeamId, agent_id: AgentId) -> Result<()> {
        sqlx::query(
            "INSERT INTO team_members (team_id, agent_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(team_id)
        .bind(agent_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_team_member(&self, team_id: TeamId, agent_id: AgentId) -> Result<()> {
        sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND agent_id = $2")
            .bind(team_id)
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_team(&self, team_id: TeamId) -> Result<()> {
        let deleted = sqlx::query("DELETE FROM teams WHERE id = $1")
            .bind(team_id)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn site_teams(&self, site_ids: &[SiteId]) -> Result<Vec<Team>> {
        Ok(sqlx::query_as(
            "SELECT id, site_id, name FROM teams WHERE site_id = ANY($1) ORDER BY id",
        )
        .bind(site_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn team_members(&self, team_id: TeamId) -> Result<Vec<AgentId>> {
        Ok(sqlx::query_scalar(
            "SELECT agent_id FROM team_members WHERE team_id = $1 ORDER BY agent_id",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_conversation_team(&self, id: ConversationId, team: Option<TeamId>) -> Result<()> {
        let result = sqlx::query("UPDATE conversations SET team_id = $1 WHERE id = $2")
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
        let result = sqlx::query("UPDATE conversations SET translating = $1 WHERE id = $2")
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
        let mut tx = self.pool.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM conversations WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            // Explicitly: a dropped transaction rolls back only when its connection is next
            // used, holding its locks until then.
            tx.rollback().await?;
            return Err(Error::NotFound);
        }
        sqlx::query("DELETE FROM conversation_tags WHERE conversation_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for tag in tags {
            sqlx::query("INSERT INTO conversation_tags (conversation_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
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
        Ok(sqlx::query_as(
            "SELECT conversation_id, tag FROM conversation_tags \
             WHERE conversation_id = ANY($1) ORDER BY conversation_id, tag",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn conversation_events(
        &self,
        conversation_id: ConversationId,
        kind: &str,
    ) -> Result<Vec<Event>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE conversation_id = $1 AND kind = $2 ORDER BY id ASC"
        ))
        .bind(conversation_id)
        .bind(kind)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn last_event_id(&self, site_ids: &[SiteId]) -> Result<EventId> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events WHERE site_id = ANY($1)")
                .bind(site_ids)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
