//! [`Events`], written once for every backend.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{InsertId, Sql, finish, on_pool, sql};
use crate::dialect::Dialect;
use crate::model::event_columns;
use crate::{
    ConversationId, Event, EventSeq, Events, NewEvent, Result, SiteId, limit_param, push_id_list,
};

#[async_trait]
impl<S: Sql> Events for S {
    async fn append_event(&self, event: NewEvent) -> Result<Event> {
        // Ids are handed out at insert time but become visible at commit, so two concurrent
        // appends could commit out of id order and a reader past the higher id would never see
        // the lower one. One writer at a time rules that out: SQLite's write gate, and on the
        // servers the event lock row, held until commit.
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let outcome = async {
                if DIALECT != Dialect::Sqlite {
                    sqlx::query(sql!("SELECT id FROM event_lock WHERE id = 1 FOR UPDATE"))
                        .execute(&mut *tx)
                        .await?;
                }
                let id = sqlx::query(sql!(
                    "INSERT INTO events (site_id, kind, conversation_id, payload, created_at) \
                     VALUES (?, ?, ?, ?, ?) RETURNING id"
                ))
                .bind(event.site_id)
                .bind(&event.kind)
                .bind(event.conversation_id)
                .bind(&event.payload)
                .bind(event.created_at)
                .insert_id(&mut *tx)
                .await?;
                Ok(id)
            }
            .await;
            finish(tx, outcome).await?
        });
        Ok(Event::stored(id, event))
    }

    async fn events_after(
        &self,
        site_ids: &[SiteId],
        after_id: EventSeq,
        limit: u32,
    ) -> Result<Vec<Event>> {
        if site_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new(concat!(
                "SELECT ",
                event_columns!(),
                " FROM events WHERE id > "
            ));
            query.push_bind(after_id);
            query.push(" AND site_id");
            push_id_list(&mut query, site_ids);
            query.push(" ORDER BY id ASC LIMIT ");
            query.push_bind(limit_param(limit));
            query.build_query_as().fetch_all(pool).await
        })?)
    }

    async fn conversation_events(
        &self,
        conversation_id: ConversationId,
        kind: &str,
    ) -> Result<Vec<Event>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                event_columns!(),
                " FROM events WHERE conversation_id = ? AND kind = ? ORDER BY id ASC"
            )))
            .bind(conversation_id)
            .bind(kind)
            .fetch_all(pool)
            .await
        })?)
    }

    async fn last_event_id(&self, site_ids: &[SiteId]) -> Result<EventSeq> {
        if site_ids.is_empty() {
            return Ok(0);
        }
        Ok(on_pool!(self, |pool| {
            let mut query =
                QueryBuilder::new("SELECT COALESCE(MAX(id), 0) FROM events WHERE site_id");
            push_id_list(&mut query, site_ids);
            query.build_query_scalar().fetch_one(pool).await
        })?)
    }
}
