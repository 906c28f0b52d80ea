//! The MySQL / MariaDB implementation of [`Store`].
//!
//! One implementation serves both servers, so it uses only what they share: no `RETURNING`
//! (MySQL lacks it), `ON DUPLICATE KEY UPDATE … VALUES()` for upserts, ids from
//! `LAST_INSERT_ID()`. Writers of one conversation are serialised by the row lock that
//! `UPDATE conversations` takes; a visitor's messages without a conversation by the visitor's
//! row lock, and event appends by the one row of `event_lock`. The database must already exist; this module creates tables (via
//! migrations), never databases.

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPoolOptions, MySqlQueryResult};
use sqlx::{MySql, MySqlPool};

use crate::dialect::Dialect;
use crate::error::{conflict_on, is_unique_violation};
use crate::model::{AppendInTx, conversation_columns, message_columns};
use crate::sql::begin_write;
use crate::{
    Appended, AppendedNew, Conversation, ConversationId, DatabaseUrl, Error, LeaveMessage, Message,
    NewMessage, Result, Seq, SiteId, VisitorId,
};
use crate::{
    HistoryFilter, Indexed, LeaveMessageId, MessageId, leave_message_search_query,
    message_search_query, search, search_ranges,
};
use crate::{Messages, Search};

/// A [`Store`] on a MySQL or MariaDB database.
pub(crate) struct MySqlStore {
    /// Connections to the database, shared by every request.
    pool: MySqlPool,
}

/// The id `LAST_INSERT_ID()` reported for an insert (AUTO_INCREMENT columns are signed BIGINT).
fn inserted_id(result: &MySqlQueryResult) -> Result<i64> {
    i64::try_from(result.last_insert_id()).map_err(|_| {
        Error::Database(sqlx::Error::Protocol(
            "LAST_INSERT_ID() out of BIGINT range".to_owned(),
        ))
    })
}

impl MySqlStore {
    /// Connects to the database `url` names and applies migrations.
    pub(crate) async fn connect(url: &DatabaseUrl) -> Result<Self> {
        let connect_error = |source| Error::Connect {
            url: url.redacted().to_owned(),
            source,
        };
        // The driver ignores the scheme, so `mariadb://` parses as it is.
        let options: MySqlConnectOptions = url.expose_secret().parse().map_err(connect_error)?;
        let pool = MySqlPoolOptions::new()
            .acquire_timeout(crate::ACQUIRE_TIMEOUT)
            .connect_with(options.charset("utf8mb4"))
            .await
            .map_err(connect_error)?;
        crate::error::migrate(&sqlx::migrate!("migrations/mysql"), &pool).await?;
        let store = MySqlStore { pool };
        crate::sql::backfill_search(&store).await?;
        Ok(store)
    }

    /// The message stored in `conversation_id` under `client_id`, if any.
    async fn message_by_client_id<'e, E>(
        executor: E,
        conversation_id: ConversationId,
        client_id: &str,
    ) -> Result<Option<Message>>
    where
        E: sqlx::Executor<'e, Database = sqlx::MySql>,
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
        E: sqlx::Executor<'e, Database = sqlx::MySql>,
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
        E: sqlx::Executor<'e, Database = sqlx::MySql>,
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
        E: sqlx::Executor<'e, Database = sqlx::MySql>,
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
                parked: false,
            },
            conversation,
            created_conversation: false,
        })
    }

    /// Appends `message` to `conversation_id` inside the caller's open READ COMMITTED
    /// transaction: bumps the conversation's seq, then stores the message under it unless the
    /// client id is already there. The caller commits or rolls back as the outcome says.
    /// `NotFound` if the conversation does not exist.
    async fn append_in_tx(
        conn: &mut MySqlConnection,
        conversation_id: ConversationId,
        message: NewMessage,
    ) -> Result<AppendInTx> {
        // The UPDATE comes first: it takes the conversation's row lock, so concurrent writers
        // queue here and never need to upgrade a shared lock (no deadlocks).
        sqlx::query(
            "UPDATE conversations SET last_seq = last_seq + 1, \
             updated_at = GREATEST(updated_at, ?) WHERE id = ?",
        )
        .bind(message.created_at)
        .bind(conversation_id)
        .execute(&mut *conn)
        .await?;
        let bumped: Option<(Seq, String, Option<crate::UnixMillis>)> = sqlx::query_as(
            "SELECT last_seq, status, snoozed_until FROM conversations WHERE id = ?",
        )
        .bind(conversation_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((seq, status, snoozed_until)) = bumped else {
            return Err(Error::NotFound);
        };
        if let Some(existing) =
            Self::message_by_client_id(&mut *conn, conversation_id, &message.client_id.0).await?
        {
            return Ok(AppendInTx::Resent(existing));
        }
        let inserted = sqlx::query(
            "INSERT INTO messages \
             (conversation_id, seq, client_id, author, agent_id, body, attachment, created_at, \
              search_text) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(conversation_id)
        .bind(seq)
        .bind(&message.client_id.0)
        .bind(message.author.as_str())
        .bind(message.agent_id)
        .bind(&message.body)
        .bind(message.attachment_text()?)
        .bind(message.created_at)
        .bind(search::mysql_text(&message.body))
        .execute(&mut *conn)
        .await;
        match inserted {
            Ok(result) => Ok(AppendInTx::Stored(
                Message::stored(
                    MessageId(inserted_id(&result)?),
                    conversation_id,
                    seq,
                    message,
                ),
                crate::model::parked(&status, snoozed_until),
            )),
            Err(error) if is_unique_violation(&error) => Ok(AppendInTx::Raced(error)),
            Err(error) => Err(error.into()),
        }
    }
}

/// MySQL's index is a `FULLTEXT` column of the indexed table, holding its words spaced out.
impl crate::sql::SearchIndex for MySqlConnection {
    async fn index_text(&mut self, table: Indexed, id: i64, text: &str) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET search_text = ? WHERE id = ?",
            table.table()
        )))
        .bind(search::mysql_text(text))
        .bind(id)
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

impl crate::sql::Sql for MySqlStore {
    fn pool(&self) -> crate::sql::Pool<'_> {
        crate::sql::Pool::MySql(&self.pool)
    }

    async fn writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    async fn close_beside_pool(&self) {}

    fn group_commit(&self) -> Option<&crate::group_commit::GroupCommit> {
        None
    }
}

#[async_trait]
impl Messages for MySqlStore {
    async fn append_message(
        &self,
        conversation_id: ConversationId,
        message: NewMessage,
    ) -> Result<Appended> {
        let client_id = message.client_id.0.clone();
        let mut tx = self.pool.begin_with(begin_write(Dialect::MySql)).await?;
        match Self::append_in_tx(&mut tx, conversation_id, message).await? {
            AppendInTx::Stored(message, parked) => {
                tx.commit().await?;
                Ok(Appended {
                    message,
                    created: true,
                    parked,
                })
            }
            AppendInTx::Resent(message) => {
                tx.rollback().await?;
                Ok(Appended {
                    message,
                    created: false,
                    parked: false,
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
                        parked: false,
                    })
                    .ok_or(Error::Database(error))
            }
        }
    }

    async fn append_message_in_open_conversation(
        &self,
        site_id: SiteId,
        visitor_id: VisitorId,
        message: NewMessage,
    ) -> Result<AppendedNew> {
        let client_id = message.client_id.0.clone();
        let mut tx = self.pool.begin_with(begin_write(Dialect::MySql)).await?;
        // Locking the visitor row queues this visitor's calls here, so the look-up, the
        // conversation's creation and the append below act as one step.
        let visitor: Option<i64> =
            sqlx::query_scalar("SELECT id FROM visitors WHERE id = ? AND site_id = ? FOR UPDATE")
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
                    parked: false,
                },
                conversation,
                created_conversation: false,
            });
        }
        let (conversation_id, created_conversation) =
            match Self::open_conversation_of(&mut *tx, visitor_id).await? {
                Some(open) => (open.id, false),
                None => {
                    let result = sqlx::query(
                        "INSERT INTO conversations \
                         (site_id, visitor_id, status, last_seq, created_at, updated_at) \
                         VALUES (?, ?, 'open', 0, ?, ?)",
                    )
                    .bind(site_id)
                    .bind(visitor_id)
                    .bind(message.created_at)
                    .bind(message.created_at)
                    .execute(&mut *tx)
                    .await?;
                    (ConversationId(inserted_id(&result)?), true)
                }
            };
        match Self::append_in_tx(&mut tx, conversation_id, message).await? {
            AppendInTx::Stored(message, parked) => {
                let conversation = Self::conversation_by_id(&mut *tx, conversation_id)
                    .await?
                    .ok_or(Error::NotFound)?;
                tx.commit().await?;
                Ok(AppendedNew {
                    appended: Appended {
                        message,
                        created: true,
                        parked,
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
        sqlx::query(
            "UPDATE conversations SET last_seq = last_seq + ?, \
             updated_at = GREATEST(updated_at, ?) WHERE id = ?",
        )
        .bind(count)
        .bind(newest)
        .bind(conversation_id)
        .execute(&mut *tx)
        .await?;
        let last: Option<Seq> =
            sqlx::query_scalar("SELECT last_seq FROM conversations WHERE id = ?")
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
        let mut insert = sqlx::QueryBuilder::<MySql>::new(
            "INSERT INTO messages (conversation_id, seq, client_id, author, agent_id, body, \
             attachment, created_at, search_text) ",
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
                .push_bind(search::mysql_text(&m.body));
        });
        if let Err(error) = insert.build().execute(&mut *tx).await {
            // Ended now, not when the connection is next used: MySQL holds the locks till then.
            tx.rollback().await?;
            return Err(conflict_on("client_id")(error));
        }
        tx.commit().await?;
        Ok(messages.len() as u64)
    }
}

#[async_trait]
impl Search for MySqlStore {
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
            Some(before) => before.0,
            None => {
                let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM messages")
                    .fetch_one(&self.pool)
                    .await?;
                newest.unwrap_or(0) + 1
            }
        };
        // Scanned windows first, then the index (see `SEARCH_WINDOWS`).
        let source = "messages m STRAIGHT_JOIN conversations c ON c.id = m.conversation_id";
        let mut found: Vec<Message> = Vec::new();
        for range in search_ranges(upper) {
            let want = limit.saturating_sub(found.len() as u32);
            if want == 0 {
                break;
            }
            let mut page =
                message_search_query::<MySql>(filter, range, want, (source, "m.id"), |q| {
                    if range.1.is_some() {
                        for (i, pattern) in query.mysql_like().into_iter().enumerate() {
                            if i > 0 {
                                q.push(" AND ");
                            }
                            q.push("m.search_text LIKE ")
                                .push_bind(pattern)
                                .push(" ESCAPE '!'");
                        }
                    } else {
                        q.push("MATCH (m.search_text) AGAINST (")
                            .push_bind(query.mysql())
                            .push(" IN BOOLEAN MODE)");
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
        let mut query =
            leave_message_search_query::<MySql>(site_ids, before, limit, (source, "l.id"), |q| {
                q.push("MATCH (l.search_text) AGAINST (")
                    .push_bind(query.mysql())
                    .push(" IN BOOLEAN MODE)");
            });
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }
}
