//! [`Sites`], written once for every backend.

use async_trait::async_trait;

use super::{InsertId, Sql, on_pool, sql};
use crate::error::conflict_on;
use crate::model::{site_columns, to_json_text};
use crate::{Error, NewSite, Result, Site, SiteId, Sites};

#[async_trait]
impl<S: Sql> Sites for S {
    async fn create_site(&self, site: NewSite) -> Result<Site> {
        let origins = to_json_text(&site.allowed_origins)?;
        let settings = to_json_text(&site.widget_settings)?;
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO sites (public_key, name, allowed_origins, widget_settings, created_at) \
                 VALUES (?, ?, ?, ?, ?) RETURNING id"
            ))
            .bind(&site.public_key)
            .bind(&site.name)
            .bind(&origins)
            .bind(&settings)
            .bind(site.created_at)
            .insert_id(pool)
            .await
        })
        .map_err(conflict_on("public_key"))?;
        Ok(Site {
            id: SiteId(id),
            public_key: site.public_key,
            name: site.name,
            allowed_origins: site.allowed_origins,
            widget_settings: site.widget_settings,
            created_at: site.created_at,
        })
    }

    async fn site_by_key(&self, public_key: &str) -> Result<Option<Site>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                site_columns!(),
                " FROM sites WHERE public_key = ?"
            )))
            .bind(public_key)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn site(&self, id: SiteId) -> Result<Option<Site>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                site_columns!(),
                " FROM sites WHERE id = ?"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn all_sites(&self) -> Result<Vec<Site>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                site_columns!(),
                " FROM sites ORDER BY id"
            )))
            .fetch_all(pool)
            .await
        })?)
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
        {
            let _writer = self.writer().await;
            on_pool!(self, |pool| {
                sqlx::query(sql!(
                    "UPDATE sites SET name = ?, allowed_origins = ?, widget_settings = ? \
                     WHERE id = ?"
                ))
                .bind(name)
                .bind(&origins)
                .bind(&settings)
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
            })?;
        }
        self.site(id).await?.ok_or(Error::NotFound)
    }
}
