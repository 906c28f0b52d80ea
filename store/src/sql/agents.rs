//! [`Agents`], written once for every backend.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{InsertId, Sql, finish, on_pool, sql};
use crate::error::conflict_on;
use crate::model::agent_columns;
use crate::{Agent, AgentId, Agents, Error, NewAgent, Result, Role, SiteId, push_id_list};

#[async_trait]
impl<S: Sql> Agents for S {
    async fn create_agent(&self, agent: NewAgent) -> Result<Agent> {
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO agents \
                 (email, password_hash, display_name, role, language, max_chats, disabled, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, FALSE, ?) RETURNING id"
            ))
            .bind(&agent.email)
            .bind(&agent.password_hash)
            .bind(&agent.display_name)
            .bind(agent.role.as_str())
            .bind(&agent.language)
            .bind(agent.max_chats)
            .bind(agent.created_at)
            .insert_id(pool)
            .await
        })
        .map_err(conflict_on("email"))?;
        Ok(Agent {
            id: AgentId(id),
            email: agent.email,
            password_hash: agent.password_hash,
            display_name: agent.display_name,
            role: agent.role,
            language: agent.language,
            max_chats: agent.max_chats,
            disabled: false,
            created_at: agent.created_at,
        })
    }

    async fn agent_by_email(&self, email: &str) -> Result<Option<Agent>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                agent_columns!(),
                " FROM agents WHERE email = ?"
            )))
            .bind(email)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn agent(&self, id: AgentId) -> Result<Option<Agent>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                agent_columns!(),
                " FROM agents WHERE id = ?"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn all_agents(&self) -> Result<Vec<Agent>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                agent_columns!(),
                " FROM agents ORDER BY id"
            )))
            .fetch_all(pool)
            .await
        })?)
    }

    async fn update_agent(
        &self,
        id: AgentId,
        role: Role,
        max_chats: i32,
        disabled: bool,
    ) -> Result<Agent> {
        {
            let _writer = self.writer().await;
            on_pool!(self, |pool| {
                sqlx::query(sql!(
                    "UPDATE agents SET role = ?, max_chats = ?, disabled = ? WHERE id = ?"
                ))
                .bind(role.as_str())
                .bind(max_chats)
                .bind(disabled)
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
            })?;
        }
        self.agent(id).await?.ok_or(Error::NotFound)
    }

    async fn remove_agent_from_site(&self, site_id: SiteId, agent_id: AgentId) -> Result<()> {
        let _writer = self.writer().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!(
                "DELETE FROM site_agents WHERE site_id = ? AND agent_id = ?"
            ))
            .bind(site_id)
            .bind(agent_id)
            .execute(pool)
            .await
            .map(drop)
        })?)
    }

    async fn set_agent_language(&self, id: AgentId, language: &str) -> Result<()> {
        let changed = {
            let _writer = self.writer().await;
            on_pool!(self, |pool| {
                sqlx::query(sql!("UPDATE agents SET language = ? WHERE id = ?"))
                    .bind(language)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            })?
        };
        // MySQL counts only rows whose value changed: ask whether the agent exists.
        if changed == 0 && self.agent(id).await?.is_none() {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn add_agent_to_site(&self, site_id: SiteId, agent_id: AgentId) -> Result<()> {
        let _writer = self.writer().await;
        // Not INSERT IGNORE on MySQL: that would also turn a missing site or agent into a warning.
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO site_agents (site_id, agent_id) VALUES (?, ?) \
                 ON CONFLICT (site_id, agent_id) DO NOTHING"
            ))
            .bind(site_id)
            .bind(agent_id)
            .execute(pool)
            .await
            .map(drop)
        })?)
    }

    async fn agent_sites(&self, agent_id: AgentId) -> Result<Vec<SiteId>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(sql!(
                "SELECT site_id FROM site_agents WHERE agent_id = ? ORDER BY site_id"
            ))
            .bind(agent_id)
            .fetch_all(pool)
            .await
        })?)
    }

    async fn site_agents(&self, site_ids: &[SiteId]) -> Result<Vec<Agent>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new(concat!(
                "SELECT ",
                agent_columns!(),
                " FROM agents WHERE NOT disabled \
                 AND id IN (SELECT agent_id FROM site_agents WHERE site_id"
            ));
            push_id_list(&mut query, site_ids);
            query.push(") ORDER BY id");
            query.build_query_as().fetch_all(pool).await
        })?)
    }

    async fn set_agent_password(&self, id: AgentId, password_hash: &str) -> Result<()> {
        let _writer = self.writer().await;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let outcome = async {
                let changed = sqlx::query(sql!("UPDATE agents SET password_hash = ? WHERE id = ?"))
                    .bind(password_hash)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                // MySQL counts only rows whose value changed: ask whether the agent exists.
                if changed == 0
                    && sqlx::query(sql!("SELECT 1 FROM agents WHERE id = ?"))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_none()
                {
                    return Err(Error::NotFound);
                }
                sqlx::query(sql!("DELETE FROM sessions WHERE agent_id = ?"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }
            .await;
            finish(tx, outcome).await
        })
    }
}
