//! [`History`], written once for every backend ([`crate::Search`] is each backend's own).

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{Sql, on_pool};
use crate::model::conversation_columns;
use crate::{
    Conversation, ConversationCursor, ConversationStats, History, HistoryFilter, Result, START,
    SiteId, UnixMillis, limit_param, push_history_filter, push_id_list,
};

/// Rows data retention deletes per statement, so other writers are not held up for long.
const RETENTION_BATCH: i64 = 1_000;

#[async_trait]
impl<S: Sql> History for S {
    async fn history(
        &self,
        filter: &HistoryFilter,
        after: Option<ConversationCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        if filter.sites.is_empty() {
            return Ok(Vec::new());
        }
        let (updated_at, id) = after.map_or(START, |c| (c.updated_at, c.id.0));
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new(concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations c"
            ));
            push_history_filter(&mut query, filter, "c.created_at");
            query
                .push(" AND (c.updated_at, c.id) < (")
                .push_bind(updated_at)
                .push(", ")
                .push_bind(id)
                .push(") ORDER BY c.updated_at DESC, c.id DESC LIMIT ")
                .push_bind(limit_param(limit));
            query.build_query_as().fetch_all(pool).await
        })?)
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
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new(
                "SELECT c.id, c.created_at, \
                 (SELECT MIN(m.created_at) FROM messages m \
                  WHERE m.conversation_id = c.id AND m.author = 'agent') AS first_reply_at, \
                 CASE WHEN c.status = 'resolved' THEN c.updated_at END AS resolved_at, \
                 c.assignee_id, \
                 (SELECT r.score FROM ratings r WHERE r.conversation_id = c.id) AS rating \
                 FROM conversations c WHERE c.site_id",
            );
            push_id_list(&mut query, site_ids);
            query
                .push(" AND c.created_at >= ")
                .push_bind(since)
                .push(" AND c.created_at < ")
                .push_bind(until)
                .push(" ORDER BY c.id");
            query.build_query_as().fetch_all(pool).await
        })?)
    }

    async fn delete_history_before(&self, cutoff: UnixMillis) -> Result<u64> {
        let mut conversations = 0;
        // (table, the column whose age counts, whether its rows are the count returned)
        for (table, age, counted) in [
            ("conversations", "updated_at", true),
            ("leave_messages", "created_at", false),
            ("attachments", "created_at", false),
        ] {
            loop {
                let _writer = self.writer().await;
                let deleted = on_pool!(self, |pool| {
                    // A subquery, as MySQL has no LIMIT on a multi-row DELETE … IN.
                    let mut query = QueryBuilder::new(format!(
                        "DELETE FROM {table} WHERE id IN (SELECT id FROM \
                         (SELECT id FROM {table} WHERE {age} < "
                    ));
                    query
                        .push_bind(cutoff)
                        .push(" LIMIT ")
                        .push_bind(RETENTION_BATCH)
                        .push(") AS old)");
                    query
                        .build()
                        .execute(pool)
                        .await
                        .map(|done| done.rows_affected())
                })?;
                if counted {
                    conversations += deleted;
                }
                if deleted == 0 {
                    break;
                }
            }
        }
        Ok(conversations)
    }
}
