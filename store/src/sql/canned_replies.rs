//! [`CannedReplies`], written once for every backend.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{InsertId, Sql, on_pool, sql};
use crate::model::canned_reply_columns;
use crate::{
    AgentId, CannedReplies, CannedReply, CannedReplyId, NewCannedReply, Result, SiteId,
    push_id_list,
};

#[async_trait]
impl<S: Sql> CannedReplies for S {
    async fn create_canned_reply(&self, reply: NewCannedReply) -> Result<CannedReply> {
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO canned_replies (site_id, agent_id, shortcut, body, created_at) \
                 VALUES (?, ?, ?, ?, ?) RETURNING id"
            ))
            .bind(reply.site_id)
            .bind(reply.agent_id)
            .bind(&reply.shortcut)
            .bind(&reply.body)
            .bind(reply.created_at)
            .insert_id(pool)
            .await
        })?;
        Ok(CannedReply::stored(CannedReplyId(id), reply))
    }

    async fn canned_replies(
        &self,
        site_ids: &[SiteId],
        agent_id: AgentId,
    ) -> Result<Vec<CannedReply>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new(concat!(
                "SELECT ",
                canned_reply_columns!(),
                " FROM canned_replies WHERE (agent_id IS NULL OR agent_id = "
            ));
            query.push_bind(agent_id);
            query.push(") AND site_id");
            push_id_list(&mut query, site_ids);
            query.push(" ORDER BY shortcut, id");
            query.build_query_as().fetch_all(pool).await
        })?)
    }

    async fn canned_reply(&self, id: CannedReplyId) -> Result<Option<CannedReply>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                canned_reply_columns!(),
                " FROM canned_replies WHERE id = ?"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn delete_canned_reply(&self, id: CannedReplyId) -> Result<()> {
        let _writer = self.writer().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!("DELETE FROM canned_replies WHERE id = ?"))
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
        })?)
    }
}
