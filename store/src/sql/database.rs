//! [`Database`], written once for every backend.

use async_trait::async_trait;

use super::{Pool, Sql, on_pool, sql};
use crate::{Backend, Database, Result};

#[async_trait]
impl<S: Sql> Database for S {
    fn backend(&self) -> Backend {
        match self.pool() {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
            Pool::MySql(_) => Backend::MySql,
        }
    }

    async fn ping(&self) -> Result<()> {
        if let Some(writer) = self.group_commit() {
            writer.health()?;
        }
        on_pool!(self, |pool| {
            sqlx::query(sql!("SELECT 1")).execute(pool).await.map(drop)
        })?;
        Ok(())
    }

    async fn schema_version(&self) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(sql!(
                "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations"
            ))
            .fetch_one(pool)
            .await
        })?)
    }

    async fn secret(
        &self,
        key: &str,
        generate: &(dyn Fn() -> String + Send + Sync),
    ) -> Result<String> {
        const SELECT: &str = r#"SELECT value FROM settings WHERE "key" = ?"#;
        let found: Option<String> = on_pool!(self, |pool| {
            sqlx::query_scalar(sql!(SELECT))
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        if let Some(value) = found {
            return Ok(value);
        }
        let candidate = generate();
        {
            let _writer = self.writer().await;
            on_pool!(self, |pool| {
                sqlx::query(sql!(
                    r#"INSERT INTO settings ("key", value) VALUES (?, ?) ON CONFLICT ("key") DO NOTHING"#
                ))
                .bind(key)
                .bind(&candidate)
                .execute(pool)
                .await
                .map(drop)
            })?;
        }
        // Whoever inserted first won; everyone reads that value.
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(sql!(SELECT))
                .bind(key)
                .fetch_one(pool)
                .await
        })?)
    }

    async fn close(&self) {
        self.close_beside_pool().await;
        on_pool!(self, |pool| pool.close().await)
    }
}
