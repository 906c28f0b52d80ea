//! [`Visitors`], written once for every backend.

use async_trait::async_trait;

use super::{InsertId, Sql, on_pool, sql};
use crate::dialect::Dialect;
use crate::model::{ban_columns, to_json_text, visitor_columns};
use crate::{
    Ban, BanId, Error, NewBan, Result, SiteId, UnixMillis, Visitor, VisitorAttributes, VisitorId,
    Visitors,
};

#[async_trait]
impl<S: Sql> Visitors for S {
    async fn upsert_visitor(
        &self,
        site_id: SiteId,
        visitor_key: &str,
        now: UnixMillis,
    ) -> Result<Visitor> {
        if let Some(writer) = self.group_commit() {
            return writer.upsert_visitor(site_id, visitor_key, now).await;
        }
        let _writer = self.writer().await;
        // Returning visitors are the common case: update first and insert only when new, so
        // page views do not burn MySQL's AUTO_INCREMENT values the way a plain upsert does. The
        // insert's upsert clause still covers a concurrent first contact from another process.
        on_pool!(self, |pool| {
            const FIND: &str = concat!(
                "SELECT ",
                visitor_columns!(),
                " FROM visitors WHERE site_id = ? AND visitor_key = ?"
            );
            let existing: Option<Visitor> = if DIALECT == Dialect::MySql {
                sqlx::query(sql!(
                    "UPDATE visitors SET last_seen_at = GREATEST(last_seen_at, ?) \
                     WHERE site_id = ? AND visitor_key = ?"
                ))
                .bind(now)
                .bind(site_id)
                .bind(visitor_key)
                .execute(pool)
                .await?;
                // MySQL has no UPDATE … RETURNING (and counts a row found but unchanged as 0):
                // read the row back.
                sqlx::query_as(sql!(FIND))
                    .bind(site_id)
                    .bind(visitor_key)
                    .fetch_optional(pool)
                    .await?
            } else {
                sqlx::query_as(sql!(concat!(
                    "UPDATE visitors SET last_seen_at = GREATEST(last_seen_at, ?) \
                     WHERE site_id = ? AND visitor_key = ? RETURNING ",
                    visitor_columns!()
                )))
                .bind(now)
                .bind(site_id)
                .bind(visitor_key)
                .fetch_optional(pool)
                .await?
            };
            if let Some(visitor) = existing {
                return Ok(visitor);
            }
            sqlx::query(sql!(
                "INSERT INTO visitors (site_id, visitor_key, created_at, last_seen_at) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (site_id, visitor_key) \
                 DO UPDATE SET last_seen_at = GREATEST(visitors.last_seen_at, excluded.last_seen_at)"
            ))
            .bind(site_id)
            .bind(visitor_key)
            .bind(now)
            .bind(now)
            .execute(pool)
            .await?;
            sqlx::query_as(sql!(FIND))
                .bind(site_id)
                .bind(visitor_key)
                .fetch_optional(pool)
                .await?
                .ok_or(Error::NotFound)
        })
    }

    async fn visitor(&self, id: VisitorId) -> Result<Option<Visitor>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                visitor_columns!(),
                " FROM visitors WHERE id = ?"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn set_visitor_profile(
        &self,
        id: VisitorId,
        name: Option<&str>,
        email: Option<&str>,
        attributes: &VisitorAttributes,
    ) -> Result<Visitor> {
        let attributes = to_json_text(attributes)?;
        {
            let _writer = self.writer().await;
            on_pool!(self, |pool| {
                sqlx::query(sql!(
                    "UPDATE visitors SET name = ?, email = ?, attributes = ? WHERE id = ?"
                ))
                .bind(name)
                .bind(email)
                .bind(&attributes)
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
            })?;
        }
        self.visitor(id).await?.ok_or(Error::NotFound)
    }

    async fn set_visitor_language(&self, id: VisitorId, language: &str) -> Result<()> {
        let updated = {
            let _writer = self.writer().await;
            on_pool!(self, |pool| {
                sqlx::query(sql!("UPDATE visitors SET language = ? WHERE id = ?"))
                    .bind(language)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            })?
        };
        // MySQL counts only rows whose value changed: ask whether the visitor exists.
        if updated == 0 && self.visitor(id).await?.is_none() {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn create_ban(&self, ban: NewBan) -> Result<Ban> {
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO bans (site_id, visitor_id, ip_cidr, reason, expires_at, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
            ))
            .bind(ban.site_id)
            .bind(ban.visitor_id)
            .bind(&ban.ip_cidr)
            .bind(&ban.reason)
            .bind(ban.expires_at)
            .bind(ban.created_at)
            .insert_id(pool)
            .await
        })?;
        Ok(Ban::stored(BanId(id), ban))
    }

    async fn active_bans(&self, site_id: SiteId, now: UnixMillis) -> Result<Vec<Ban>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                ban_columns!(),
                " FROM bans WHERE site_id = ? AND (expires_at IS NULL OR expires_at > ?) \
                 ORDER BY id"
            )))
            .bind(site_id)
            .bind(now)
            .fetch_all(pool)
            .await
        })?)
    }

    async fn delete_ban(&self, id: BanId) -> Result<()> {
        let _writer = self.writer().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!("DELETE FROM bans WHERE id = ?"))
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
        })?)
    }
}
