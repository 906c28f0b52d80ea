//! [`Conversations`] and [`Assignment`], written once for every backend.
//!
//! An automatic assignment locks the conversation's row before the agent's. Every other writer
//! takes them in that order too — a message or a manual assignment changes the conversation's
//! row first, and the foreign-key check then locks the agent's row in share mode — so an
//! assignment can wait for them but never deadlock with them.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{InsertId, Sql, begin_write, finish, on_pool, sql};
use crate::dialect::Dialect;
use crate::model::conversation_columns;
use crate::{
    AgentId, Assignment, Conversation, ConversationCursor, ConversationId, ConversationStatus,
    Conversations, Error, Rating, Result, START, SiteId, TeamId, UnixMillis, VISITOR_CONVERSATIONS,
    VisitorId, limit_param, push_id_list,
};

/// A conversation by its id.
const BY_ID: &str = concat!(
    "SELECT ",
    conversation_columns!(),
    " FROM conversations WHERE id = ?"
);

/// Runs `$update` (an `UPDATE conversations … WHERE id = ? …` binding `$binds`) and answers the
/// row as it now is, or `None` when no row matched: in one statement with `RETURNING` where the
/// backend has it; on MySQL/MariaDB, which has no `UPDATE … RETURNING`, by reading row `$id`
/// after the update — only if the update matched it, when `$matched_only` (a condition in the
/// `WHERE` clause then decides, as for a second waker of a snoozed conversation).
macro_rules! update_returning {
    ($pool:ident, $update:expr, $id:expr, $matched_only:expr, $($bind:expr),+) => {{
        let row: Option<Conversation> = if DIALECT == Dialect::MySql {
            let matched = sqlx::query(sql!(concat!($update, " RETURNING ", conversation_columns!())))
                $(.bind($bind))+
                .execute($pool)
                .await?
                .rows_affected();
            if $matched_only && matched == 0 {
                None
            } else {
                sqlx::query_as(sql!(BY_ID)).bind($id).fetch_optional($pool).await?
            }
        } else {
            sqlx::query_as(sql!(concat!($update, " RETURNING ", conversation_columns!())))
                $(.bind($bind))+
                .fetch_optional($pool)
                .await?
        };
        row
    }};
}

#[async_trait]
impl<S: Sql> Conversations for S {
    async fn create_conversation(
        &self,
        site_id: SiteId,
        visitor_id: VisitorId,
        now: UnixMillis,
    ) -> Result<Conversation> {
        // Selecting from `visitors` makes a visitor of another site count as missing.
        const INSERT: &str = concat!(
            "INSERT INTO conversations \
             (site_id, visitor_id, status, last_seq, created_at, updated_at) \
             SELECT site_id, id, 'open', 0, ?, ? FROM visitors WHERE id = ? AND site_id = ? \
             RETURNING ",
            conversation_columns!()
        );
        let _writer = self.writer().await;
        let created: Option<Conversation> = on_pool!(self, |pool| {
            let insert = sqlx::query(sql!(INSERT))
                .bind(now)
                .bind(now)
                .bind(visitor_id)
                .bind(site_id);
            if DIALECT == Dialect::MySql {
                // No INSERT … RETURNING: the new row is read back by its id.
                match insert.inserted(pool).await? {
                    None => None,
                    Some(id) => {
                        sqlx::query_as(sql!(BY_ID))
                            .bind(id)
                            .fetch_optional(pool)
                            .await?
                    }
                }
            } else {
                use sqlx::FromRow;
                match insert.fetch_optional(pool).await? {
                    None => None,
                    Some(row) => Some(Conversation::from_row(&row)?),
                }
            }
        });
        created.ok_or(Error::NotFound)
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(BY_ID))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    async fn open_conversation(&self, visitor_id: VisitorId) -> Result<Option<Conversation>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations WHERE visitor_id = ? AND status <> 'resolved' \
                 ORDER BY id DESC LIMIT 1"
            )))
            .bind(visitor_id)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn visitor_conversations(&self, visitor_id: VisitorId) -> Result<Vec<Conversation>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations WHERE visitor_id = ? ORDER BY id DESC LIMIT ?"
            )))
            .bind(visitor_id)
            .bind(VISITOR_CONVERSATIONS)
            .fetch_all(pool)
            .await
        })?)
    }

    async fn site_conversation_heads(
        &self,
        site_ids: &[SiteId],
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new(concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations WHERE status <> 'resolved' AND site_id"
            ));
            push_id_list(&mut query, site_ids);
            query.push(" ORDER BY updated_at DESC, id DESC LIMIT ");
            query.push_bind(limit_param(limit));
            query.build_query_as().fetch_all(pool).await
        })?)
    }

    async fn set_conversation_status(
        &self,
        id: ConversationId,
        status: ConversationStatus,
        now: UnixMillis,
    ) -> Result<Conversation> {
        let _writer = self.writer().await;
        let row = on_pool!(self, |pool| update_returning!(
            pool,
            "UPDATE conversations SET status = ?, snoozed_until = NULL, \
             updated_at = GREATEST(updated_at, ?) WHERE id = ?",
            id,
            false,
            status.as_str(),
            now,
            id
        ));
        row.ok_or(Error::NotFound)
    }

    async fn snooze_conversation(
        &self,
        id: ConversationId,
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<Conversation> {
        let _writer = self.writer().await;
        let row = on_pool!(self, |pool| update_returning!(
            pool,
            "UPDATE conversations SET status = 'pending', snoozed_until = ?, \
             updated_at = GREATEST(updated_at, ?) WHERE id = ?",
            id,
            false,
            until,
            now,
            id
        ));
        row.ok_or(Error::NotFound)
    }

    async fn due_snoozes(&self, now: UnixMillis, limit: u32) -> Result<Vec<Conversation>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations WHERE snoozed_until <= ? ORDER BY snoozed_until, id LIMIT ?"
            )))
            .bind(now)
            .bind(limit_param(limit))
            .fetch_all(pool)
            .await
        })?)
    }

    async fn wake_conversation(
        &self,
        id: ConversationId,
        now: UnixMillis,
    ) -> Result<Option<Conversation>> {
        let _writer = self.writer().await;
        // The condition makes a second waker match nothing: only one of them gets the row.
        Ok(on_pool!(self, |pool| update_returning!(
            pool,
            "UPDATE conversations SET status = 'open', snoozed_until = NULL, \
             updated_at = GREATEST(updated_at, ?) WHERE id = ? AND snoozed_until <= ?",
            id,
            true,
            now,
            id,
            now
        )))
    }

    async fn conversations_page(
        &self,
        site_id: SiteId,
        after: Option<ConversationCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        let (updated_at, id) = after.map_or(START, |c| (c.updated_at, c.id.0));
        // `(updated_at, id) < (?, ?)` spelled out, with `updated_at <= ?` first so that every
        // backend scans the (site_id, updated_at) index from the cursor on (not every
        // MySQL/MariaDB version does so for a row comparison).
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations WHERE site_id = ? AND updated_at <= ? \
                 AND (updated_at < ? OR id < ?) \
                 ORDER BY updated_at DESC, id DESC LIMIT ?"
            )))
            .bind(site_id)
            .bind(updated_at)
            .bind(updated_at)
            .bind(id)
            .bind(limit_param(limit))
            .fetch_all(pool)
            .await
        })?)
    }

    async fn set_conversation_team(&self, id: ConversationId, team: Option<TeamId>) -> Result<()> {
        let _writer = self.writer().await;
        let matched = on_pool!(self, |pool| {
            sqlx::query(sql!("UPDATE conversations SET team_id = ? WHERE id = ?"))
                .bind(team)
                .bind(id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if matched == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn set_conversation_translating(&self, id: ConversationId, on: bool) -> Result<()> {
        let _writer = self.writer().await;
        let matched = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "UPDATE conversations SET translating = ? WHERE id = ?"
            ))
            .bind(on)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if matched == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn set_conversation_tags(&self, id: ConversationId, tags: &[String]) -> Result<()> {
        let _writer = self.writer().await;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let outcome = async {
                let exists: Option<i64> =
                    sqlx::query_scalar(sql!("SELECT id FROM conversations WHERE id = ?"))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_none() {
                    return Err(Error::NotFound);
                }
                sqlx::query(sql!(
                    "DELETE FROM conversation_tags WHERE conversation_id = ?"
                ))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                for tag in tags {
                    sqlx::query(sql!(
                        "INSERT INTO conversation_tags (conversation_id, tag) VALUES (?, ?) \
                         ON CONFLICT (conversation_id, tag) DO NOTHING"
                    ))
                    .bind(id)
                    .bind(tag)
                    .execute(&mut *tx)
                    .await?;
                }
                Ok(())
            }
            .await;
            finish(tx, outcome).await
        })
    }

    async fn conversation_tags(
        &self,
        ids: &[ConversationId],
    ) -> Result<Vec<(ConversationId, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new(
                "SELECT conversation_id, tag FROM conversation_tags WHERE conversation_id",
            );
            push_id_list(&mut query, ids);
            query.push(" ORDER BY conversation_id, tag");
            query.build_query_as().fetch_all(pool).await
        })?)
    }

    async fn rate_conversation(&self, rating: Rating) -> Result<()> {
        let _writer = self.writer().await;
        on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO ratings (conversation_id, score, comment, created_at) \
                 VALUES (?, ?, ?, ?) \
                 ON CONFLICT (conversation_id) DO UPDATE SET score = excluded.score, \
                 comment = excluded.comment, created_at = excluded.created_at"
            ))
            .bind(rating.conversation_id)
            .bind(rating.score)
            .bind(&rating.comment)
            .bind(rating.created_at)
            .execute(pool)
            .await
            .map(drop)
        })?;
        Ok(())
    }

    async fn rating(&self, conversation_id: ConversationId) -> Result<Option<Rating>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(
                "SELECT conversation_id, score, comment, created_at FROM ratings \
                 WHERE conversation_id = ?"
            ))
            .bind(conversation_id)
            .fetch_optional(pool)
            .await
        })?)
    }
}

#[async_trait]
impl<S: Sql> Assignment for S {
    async fn reassign_conversation(
        &self,
        id: ConversationId,
        from: Option<AgentId>,
        to: Option<AgentId>,
    ) -> Result<bool> {
        let _writer = self.writer().await;
        let moved = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "UPDATE conversations SET assignee_id = ? \
                 WHERE id = ? AND assignee_id IS NOT DISTINCT FROM ?"
            ))
            .bind(to)
            .bind(id)
            .bind(from)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if moved > 0 {
            return Ok(true);
        }
        self.conversation(id)
            .await?
            .map(|_| false)
            .ok_or(Error::NotFound)
    }

    async fn agent_loads(&self, agent_ids: &[AgentId]) -> Result<Vec<(AgentId, i64)>> {
        if agent_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new(
                "SELECT assignee_id, COUNT(*) FROM conversations \
                 WHERE status = 'open' AND assignee_id",
            );
            push_id_list(&mut query, agent_ids);
            query.push(" GROUP BY assignee_id ORDER BY assignee_id");
            query.build_query_as().fetch_all(pool).await
        })?)
    }

    async fn assign_within_capacity(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        max_chats: i64,
        turn_ms: i64,
    ) -> Result<bool> {
        let _writer = self.writer().await;
        on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin_write(DIALECT)).await?;
            let outcome = async {
                let assignee: Option<Option<AgentId>> = sqlx::query_scalar(sql!(
                    "SELECT assignee_id FROM conversations WHERE id = ? FOR UPDATE"
                ))
                .bind(conversation)
                .fetch_optional(&mut *tx)
                .await?;
                match assignee {
                    None => return Err(Error::NotFound),
                    Some(Some(_)) => return Ok(false),
                    Some(None) => {}
                }
                let found: Option<AgentId> =
                    sqlx::query_scalar(sql!("SELECT id FROM agents WHERE id = ? FOR UPDATE"))
                        .bind(agent)
                        .fetch_optional(&mut *tx)
                        .await?;
                if found.is_none() {
                    return Err(Error::NotFound);
                }
                // The load as `agent_loads` counts it.
                let load: i64 = sqlx::query_scalar(sql!(
                    "SELECT COUNT(*) FROM conversations WHERE status = 'open' AND assignee_id = ?"
                ))
                .bind(agent)
                .fetch_one(&mut *tx)
                .await?;
                if load >= max_chats {
                    return Ok(false);
                }
                // The conversation's row is locked and was unassigned, so this changes it.
                sqlx::query(sql!(
                    "UPDATE conversations SET assignee_id = ? WHERE id = ?"
                ))
                .bind(agent)
                .bind(conversation)
                .execute(&mut *tx)
                .await?;
                sqlx::query(sql!("UPDATE agents SET last_assigned_at = ? WHERE id = ?"))
                    .bind(turn_ms)
                    .bind(agent)
                    .execute(&mut *tx)
                    .await?;
                Ok(true)
            }
            .await;
            finish(tx, outcome).await
        })
    }

    async fn assignment_turns(&self, agent_ids: &[AgentId]) -> Result<Vec<(AgentId, i64)>> {
        if agent_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new("SELECT id, last_assigned_at FROM agents WHERE id");
            push_id_list(&mut query, agent_ids);
            query.push(" ORDER BY id");
            query.build_query_as().fetch_all(pool).await
        })?)
    }

    async fn unassigned_conversations(
        &self,
        site_id: SiteId,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations \
                 WHERE site_id = ? AND assignee_id IS NULL AND status = 'open' \
                 ORDER BY created_at, id LIMIT ?"
            )))
            .bind(site_id)
            .bind(limit_param(limit))
            .fetch_all(pool)
            .await
        })?)
    }
}
