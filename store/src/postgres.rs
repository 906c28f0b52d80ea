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
use crate::model::{AppendInTx, conversation_columns, message_columns};
use crate::{
    Appended, AppendedNew, Conversation, ConversationId, DatabaseUrl, Error, LeaveMessage, Message,
    NewMessage, Result, Seq, SiteId, VisitorId,
};
use crate::{
    HistoryFilter, Indexed, LeaveMessageId, MessageId, leave_message_search_query,
    message_search_query, search, search_ranges,
};
use crate::{Messages, Search};

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
                parked: false,
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
        let bumped: Option<(Seq, String, Option<crate::UnixMillis>)> = sqlx::query_as(
            "UPDATE conversations SET last_seq = last_seq + 1, \
             updated_at = GREATEST(updated_at, $1) WHERE id = $2 \
             RETURNING last_seq, status, snoozed_until",
        )
        .bind(message.created_at)
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
            Ok(id) => Ok(AppendInTx::Stored(
                Message::stored(id, conversation_id, seq, message),
                crate::model::parked(&status, snoozed_until),
            )),
            Err(error) if is_unique_violation(&error) => Ok(AppendInTx::Raced(error)),
            Err(error) => Err(error.into()),
        }
    }
}

/// PostgreSQL's index is a `tsvector` column of the indexed table.
impl crate::sql::SearchIndex for PgConnection {
    async fn index_text(&mut self, table: Indexed, id: i64, text: &str) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET search = $1::tsvector WHERE id = $2",
            table.table()
        )))
        .bind(search::tsvector(text))
        .bind(id)
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

impl crate::sql::Sql for PostgresStore {
    fn pool(&self) -> crate::sql::Pool<'_> {
        crate::sql::Pool::Postgres(&self.pool)
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
impl Messages for PostgresStore {
    async fn append_message(
        &self,
        conversation_id: ConversationId,
        message: NewMessage,
    ) -> Result<Appended> {
        let client_id = message.client_id.0.clone();
        let mut tx = self.pool.begin().await?;
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
                    let id: ConversationId = sqlx::query_scalar(
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
}

#[async_trait]
impl Search for PostgresStore {
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
}
