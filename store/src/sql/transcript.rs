//! [`Transcript`], written once for every backend.

use async_trait::async_trait;

use super::{Sql, on_pool, sql};
use crate::model::message_columns;
use crate::{ConversationId, Message, Result, Seq, Transcript, limit_param};

#[async_trait]
impl<S: Sql> Transcript for S {
    async fn messages_after(
        &self,
        conversation_id: ConversationId,
        after_seq: Seq,
        limit: u32,
    ) -> Result<Vec<Message>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?"
            )))
            .bind(conversation_id)
            .bind(after_seq)
            .bind(limit_param(limit))
            .fetch_all(pool)
            .await
        })?)
    }

    async fn messages_before(
        &self,
        conversation_id: ConversationId,
        before_seq: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
            )))
            .bind(conversation_id)
            .bind(before_seq.unwrap_or(Seq::MAX))
            .bind(limit_param(limit))
            .fetch_all(pool)
            .await
        })?)
    }
}
