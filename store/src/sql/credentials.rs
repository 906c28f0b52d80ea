//! [`Credentials`], written once for every backend.

use async_trait::async_trait;

use super::{InsertId, Sql, on_pool, sql};
use crate::error::conflict_on;
use crate::model::agent_columns;
use crate::{
    Agent, AgentId, Agents, ApiToken, Credentials, Error, NewApiToken, Result, TOKEN_USE_STEP_MS,
    UnixMillis, now_millis,
};

#[async_trait]
impl<S: Sql> Credentials for S {
    async fn create_session(
        &self,
        token_hash: &str,
        agent_id: AgentId,
        expires_at: UnixMillis,
    ) -> Result<()> {
        let _writer = self.writer().await;
        on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO sessions (token_hash, agent_id, created_at, expires_at) \
                 VALUES (?, ?, ?, ?)"
            ))
            .bind(token_hash)
            .bind(agent_id)
            .bind(now_millis())
            .bind(expires_at)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(conflict_on("token"))
    }

    async fn session_agent(&self, token_hash: &str, now: UnixMillis) -> Result<Option<Agent>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                agent_columns!(),
                " FROM agents WHERE disabled = FALSE AND id = \
                 (SELECT agent_id FROM sessions WHERE token_hash = ? AND expires_at > ?)"
            )))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let _writer = self.writer().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!("DELETE FROM sessions WHERE token_hash = ?"))
                .bind(token_hash)
                .execute(pool)
                .await
                .map(drop)
        })?)
    }

    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken> {
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO api_tokens (agent_id, name, token_hash, prefix, created_at) \
                 VALUES (?, ?, ?, ?, ?) RETURNING id"
            ))
            .bind(token.agent_id)
            .bind(&token.name)
            .bind(&token.token_hash)
            .bind(&token.prefix)
            .bind(token.created_at)
            .insert_id(pool)
            .await
        })
        .map_err(conflict_on("token"))?;
        Ok(ApiToken {
            id,
            agent_id: token.agent_id,
            name: token.name,
            prefix: token.prefix,
            created_at: token.created_at,
            last_used_at: None,
        })
    }

    async fn api_tokens(&self, agent_id: AgentId) -> Result<Vec<ApiToken>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(
                "SELECT id, agent_id, name, prefix, created_at, last_used_at FROM api_tokens \
                 WHERE agent_id = ? ORDER BY id DESC"
            ))
            .bind(agent_id)
            .fetch_all(pool)
            .await
        })?)
    }

    async fn delete_api_token(&self, agent_id: AgentId, id: i64) -> Result<()> {
        let _writer = self.writer().await;
        let deleted = on_pool!(self, |pool| {
            sqlx::query(sql!("DELETE FROM api_tokens WHERE id = ? AND agent_id = ?"))
                .bind(id)
                .bind(agent_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if deleted == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn api_token_agent(&self, token_hash: &str, now: UnixMillis) -> Result<Option<Agent>> {
        let token: Option<(i64, AgentId, Option<UnixMillis>)> = on_pool!(self, |pool| {
            sqlx::query_as(sql!(
                "SELECT id, agent_id, last_used_at FROM api_tokens WHERE token_hash = ?"
            ))
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })?;
        let Some((id, agent_id, last_used_at)) = token else {
            return Ok(None);
        };
        if last_used_at.is_none_or(|at| at <= now - TOKEN_USE_STEP_MS) {
            let _writer = self.writer().await;
            on_pool!(self, |pool| {
                sqlx::query(sql!("UPDATE api_tokens SET last_used_at = ? WHERE id = ?"))
                    .bind(now)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(drop)
            })?;
        }
        Ok(self.agent(agent_id).await?.filter(|agent| !agent.disabled))
    }
}
