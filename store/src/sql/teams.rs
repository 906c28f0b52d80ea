//! [`Teams`], written once for every backend.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{InsertId, Sql, on_pool, sql};
use crate::{AgentId, Error, Result, SiteId, Team, TeamId, Teams, push_id_list};

#[async_trait]
impl<S: Sql> Teams for S {
    async fn create_team(&self, site_id: SiteId, name: &str) -> Result<Team> {
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO teams (site_id, name) VALUES (?, ?) RETURNING id"
            ))
            .bind(site_id)
            .bind(name)
            .insert_id(pool)
            .await
        })?;
        Ok(Team {
            id: TeamId(id),
            site_id,
            name: name.to_string(),
        })
    }

    async fn add_team_member(&self, team_id: TeamId, agent_id: AgentId) -> Result<()> {
        let _writer = self.writer().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO team_members (team_id, agent_id) VALUES (?, ?) \
                 ON CONFLICT (team_id, agent_id) DO NOTHING"
            ))
            .bind(team_id)
            .bind(agent_id)
            .execute(pool)
            .await
            .map(drop)
        })?)
    }

    async fn remove_team_member(&self, team_id: TeamId, agent_id: AgentId) -> Result<()> {
        let _writer = self.writer().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!(
                "DELETE FROM team_members WHERE team_id = ? AND agent_id = ?"
            ))
            .bind(team_id)
            .bind(agent_id)
            .execute(pool)
            .await
            .map(drop)
        })?)
    }

    async fn delete_team(&self, team_id: TeamId) -> Result<()> {
        let _writer = self.writer().await;
        let deleted = on_pool!(self, |pool| {
            sqlx::query(sql!("DELETE FROM teams WHERE id = ?"))
                .bind(team_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if deleted == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn site_teams(&self, site_ids: &[SiteId]) -> Result<Vec<Team>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new("SELECT id, site_id, name FROM teams WHERE site_id");
            push_id_list(&mut query, site_ids);
            query.push(" ORDER BY id");
            query.build_query_as().fetch_all(pool).await
        })?)
    }

    async fn team_members(&self, team_id: TeamId) -> Result<Vec<AgentId>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(sql!(
                "SELECT agent_id FROM team_members WHERE team_id = ? ORDER BY agent_id"
            ))
            .bind(team_id)
            .fetch_all(pool)
            .await
        })?)
    }
}
