//! [`Attachments`], written once for every backend.

use async_trait::async_trait;

use super::{InsertId, Sql, on_pool, sql};
use crate::error::conflict_on;
use crate::model::attachment_columns;
use crate::{Attachment, AttachmentId, Attachments, NewAttachment, Result, SiteId, VisitorId};

#[async_trait]
impl<S: Sql> Attachments for S {
    async fn create_attachment(&self, attachment: NewAttachment) -> Result<Attachment> {
        let size = i64::try_from(attachment.data.len()).unwrap_or(i64::MAX);
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO attachments \
                 (public_id, site_id, visitor_id, agent_id, name, content_type, size, data, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
            ))
            .bind(&attachment.public_id)
            .bind(attachment.site_id)
            .bind(attachment.visitor_id)
            .bind(attachment.agent_id)
            .bind(&attachment.name)
            .bind(&attachment.content_type)
            .bind(size)
            .bind(&attachment.data)
            .bind(attachment.created_at)
            .insert_id(pool)
            .await
        })
        .map_err(conflict_on("public_id"))?;
        Ok(Attachment::stored(AttachmentId(id), &attachment))
    }

    async fn attachment(&self, public_id: &str) -> Result<Option<Attachment>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                attachment_columns!(),
                " FROM attachments WHERE public_id = ?"
            )))
            .bind(public_id)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn attachment_data(&self, public_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(sql!("SELECT data FROM attachments WHERE public_id = ?"))
                .bind(public_id)
                .fetch_optional(pool)
                .await
        })?)
    }

    async fn mark_attachment_sent(&self, public_id: &str, at: i64) -> Result<()> {
        let _writer = self.writer().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!(
                "UPDATE attachments SET sent_at = ? WHERE public_id = ? AND sent_at IS NULL"
            ))
            .bind(at)
            .bind(public_id)
            .execute(pool)
            .await
            .map(drop)
        })?)
    }

    async fn delete_unsent_attachments(&self, created_before: i64) -> Result<u64> {
        let _writer = self.writer().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!(
                "DELETE FROM attachments WHERE sent_at IS NULL AND created_at < ?"
            ))
            .bind(created_before)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?)
    }

    async fn attachment_usage(&self, site_id: SiteId, visitor_id: VisitorId) -> Result<(i64, i64)> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(
                "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN visitor_id = ? THEN size ELSE 0 END), 0) AS BIGINT) \
                 FROM attachments WHERE site_id = ?"
            ))
            .bind(visitor_id)
            .bind(site_id)
            .fetch_one(pool)
            .await
        })?)
    }
}
