//! [`Webhooks`], written once for every backend.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{InsertId, Sql, begin_write, finish, on_pool, sql};
use crate::model::webhook_delivery_columns;
use crate::{
    DeliveryAttempt, Error, Result, UnixMillis, Webhook, WebhookDelivery, Webhooks, limit_param,
    push_id_list,
};

/// Claims tried again after a deadlock before the error is returned.
const CLAIM_RETRIES: u32 = 3;

#[async_trait]
impl<S: Sql> Webhooks for S {
    async fn create_webhook(
        &self,
        url: &str,
        secret: &str,
        events: &[&str],
        now: UnixMillis,
    ) -> Result<Webhook> {
        let events = format!(" {} ", events.join(" "));
        let _writer = self.writer().await;
        let id = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO webhooks (url, secret, events, created_at) VALUES (?, ?, ?, ?) \
                 RETURNING id"
            ))
            .bind(url)
            .bind(secret)
            .bind(&events)
            .bind(now)
            .insert_id(pool)
            .await
        })?;
        Ok(Webhook {
            id,
            url: url.to_owned(),
            secret: secret.to_owned(),
            events,
            created_at: now,
        })
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(
                "SELECT id, url, secret, events, created_at FROM webhooks ORDER BY id"
            ))
            .fetch_all(pool)
            .await
        })?)
    }

    async fn delete_webhook(&self, id: i64) -> Result<()> {
        let _writer = self.writer().await;
        on_pool!(self, |pool| {
            sqlx::query(sql!("DELETE FROM webhooks WHERE id = ?"))
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    async fn enqueue_webhook_deliveries(
        &self,
        event: &str,
        payload: &str,
        now: UnixMillis,
    ) -> Result<u64> {
        let _writer = self.writer().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO webhook_deliveries \
                 (webhook_id, event, payload, next_attempt_at, created_at) \
                 SELECT id, ?, ?, ?, ? FROM webhooks WHERE events LIKE ?"
            ))
            .bind(event)
            .bind(payload)
            .bind(now)
            .bind(now)
            .bind(format!("% {event} %"))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?)
    }

    async fn claim_webhook_deliveries(
        &self,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        let _writer = self.writer().await;
        let mut attempt = 0;
        loop {
            let claimed = on_pool!(self, |pool| {
                let mut tx = pool.begin_with(begin_write(DIALECT)).await?;
                let outcome = async {
                    // SKIP LOCKED: senders on other nodes claim other deliveries instead of
                    // waiting for these.
                    let mut due: Vec<WebhookDelivery> = sqlx::query_as(sql!(concat!(
                        "SELECT ",
                        webhook_delivery_columns!(),
                        " FROM webhook_deliveries WHERE state = 'pending' \
                         AND next_attempt_at <= ? ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED"
                    )))
                    .bind(now)
                    .bind(limit_param(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                    if !due.is_empty() {
                        let mut lease =
                            QueryBuilder::new("UPDATE webhook_deliveries SET next_attempt_at = ");
                        lease.push_bind(lease_until);
                        lease.push(" WHERE id");
                        let ids: Vec<i64> = due.iter().map(|delivery| delivery.id).collect();
                        push_id_list(&mut lease, &ids);
                        lease.build().execute(&mut *tx).await?;
                    }
                    for delivery in &mut due {
                        delivery.next_attempt_at = lease_until;
                    }
                    Ok(due)
                }
                .await;
                finish(tx, outcome).await
            });
            match claimed {
                // Two senders claiming at once may deadlock in InnoDB (both lock index gaps);
                // the victim's transaction is rolled back whole, so running it again is safe.
                Err(Error::Database(sqlx::Error::Database(error)))
                    if error.code().as_deref() == Some("40001") && attempt < CLAIM_RETRIES =>
                {
                    attempt += 1;
                }
                claimed => return claimed,
            }
        }
    }

    async fn record_webhook_attempt(&self, id: i64, attempt: &DeliveryAttempt) -> Result<()> {
        let _writer = self.writer().await;
        on_pool!(self, |pool| {
            sqlx::query(sql!(
                "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, \
                 next_attempt_at = ?, last_status = ?, last_error = ? WHERE id = ?"
            ))
            .bind(attempt.state.as_str())
            .bind(attempt.next_attempt_at)
            .bind(attempt.status)
            .bind(&attempt.error)
            .bind(id)
            .execute(pool)
            .await
            .map(drop)
        })?;
        Ok(())
    }

    async fn webhook_deliveries(
        &self,
        webhook_id: i64,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql!(concat!(
                "SELECT ",
                webhook_delivery_columns!(),
                " FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?"
            )))
            .bind(webhook_id)
            .bind(limit_param(limit))
            .fetch_all(pool)
            .await
        })?)
    }
}
