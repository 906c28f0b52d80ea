//! [`LeaveMessages`], written once for every backend.

use async_trait::async_trait;

use super::{InsertId, SearchIndex, Sql, finish, on_pool, sql};
use crate::model::{leave_message_columns, leave_message_note_columns};
use crate::{
    AgentId, Error, Indexed, LeaveMessage, LeaveMessageCursor, LeaveMessageId, LeaveMessageNote,
    LeaveMessageStatus, LeaveMessages, NewLeaveMessage, NewLeaveMessageNote, Result, SiteId,
    leave_message_search_text, leave_messages_query,
};

#[async_trait]
impl<S: Sql> LeaveMessages for S {
    async fn create_leave_message(&self, message: NewLeaveMessage) -> Result<LeaveMessage> {
        let text =
            leave_message_search_text(message.name.as_deref(), &message.contact, &message.body);
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let outcome = async {
                let id = sqlx::query(sql!(
                    "INSERT INTO leave_messages \
                     (site_id, visitor_id, name, contact, body, status, assignee_id, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, NULL, ?) RETURNING id"
                ))
                .bind(message.site_id)
                .bind(message.visitor_id)
                .bind(&message.name)
                .bind(&message.contact)
                .bind(&message.body)
                .bind(LeaveMessageStatus::New.as_str())
                .bind(message.created_at)
                .insert_id(&mut *tx)
                .await?;
                tx.index_text(Indexed::LeaveMessages, id, &text).await?;
                Ok(id)
            }
            .await;
            finish(tx, outcome).await?
        });
        Ok(LeaveMessage::stored(LeaveMessageId(id), message))
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
        Ok(on_pool!(self, |pool| {
            leave_messages_query(site_ids, status, after, limit)
                .build_query_as()
                .fetch_all(pool)
                .await
        })?)
    }

    async fn leave_message(&self, id: LeaveMessageId) -> Result<Option<LeaveMessage>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                leave_message_columns!(),
                " FROM leave_messages WHERE id = ?"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn update_leave_message(
        &self,
        id: LeaveMessageId,
        status: LeaveMessageStatus,
        assignee: Option<AgentId>,
    ) -> Result<LeaveMessage> {
        {
            let _writer = self.writer().await;
            on_pool!(self, |pool| {
                sqlx::query(sql!(
                    "UPDATE leave_messages SET status = ?, assignee_id = ? WHERE id = ?"
                ))
                .bind(status.as_str())
                .bind(assignee)
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
            })?;
        }
        self.leave_message(id).await?.ok_or(Error::NotFound)
    }

    async fn add_leave_message_note(&self, note: NewLeaveMessageNote) -> Result<LeaveMessageNote> {
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO leave_message_notes (leave_message_id, agent_id, body, created_at) \
                 VALUES (?, ?, ?, ?) RETURNING id"
            ))
            .bind(note.leave_message_id)
            .bind(note.agent_id)
            .bind(&note.body)
            .bind(note.created_at)
            .insert_id(pool)
            .await
        })?;
        Ok(LeaveMessageNote {
            id,
            leave_message_id: note.leave_message_id,
            agent_id: note.agent_id,
            body: note.body,
            created_at: note.created_at,
        })
    }

    async fn leave_message_notes(&self, id: LeaveMessageId) -> Result<Vec<LeaveMessageNote>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                leave_message_note_columns!(),
                " FROM leave_message_notes WHERE leave_message_id = ? ORDER BY id"
            )))
            .bind(id)
            .fetch_all(pool)
            .await
        })?)
    }
}
