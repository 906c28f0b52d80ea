//! Webhooks: other systems told about events over HTTP — `message.created`,
//! `conversation.resolved`, `leave_message.created` (the admin page's `WEBHOOK_EVENTS`).
//!
//! An event is first written to the store as one pending delivery per webhook that wants it;
//! a sender task on every node then claims due deliveries (a lease in the store, so two nodes
//! never send the same one), POSTs the JSON body and records the outcome. A receiver that does
//! not answer 2xx is tried again after 1 ×, 2 ×, 4 × … the base delay (capped at an hour), up
//! to [`MAX_ATTEMPTS`] times; every attempt is in the delivery log the admin page shows.
//!
//! Each request carries `X-Kefu-Event`, `X-Kefu-Delivery` (the same on retries, for
//! de-duplication), `X-Kefu-Timestamp` (Unix seconds) and `X-Kefu-Signature:
//! sha256=HEX`, the HMAC-SHA256 of `"{timestamp}.{body}"` under the webhook's secret.
//! Receivers recompute it and reject old timestamps (replays).
//!
//! Requests go through [`crate::outbound`]: a URL that leads to this machine or a private
//! network not listed in `[outbound] allow` is refused, the delivery failed at once with the
//! reason in its log; redirects are not followed (a 3xx is a failed attempt), and the
//! receiver's answer is never read, only its status.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use store::{DeliveryAttempt, DeliveryState, Store, Webhook, WebhookDelivery};
use tokio::sync::{Notify, watch};

/// Attempts before a delivery is marked failed.
pub const MAX_ATTEMPTS: i32 = 8;

/// The longest wait between two attempts.
const MAX_DELAY_MS: i64 = 3_600_000;

/// How long a sender holds a claimed delivery before another node may take it.
const LEASE_MS: i64 = 60_000;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries claimed per round.
const BATCH: u32 = 20;

/// Emits events and runs this node's sender.
#[derive(Clone)]
pub struct Webhooks {
    store: Arc<dyn Store>,
    /// Wakes the sender when an event was queued, so deliveries go out at once, not at the
    /// next poll.
    wake: Arc<Notify>,
    /// The first retry's delay; each next one doubles.
    retry_base_ms: i64,
    /// The client every delivery goes out through, with [`REQUEST_TIMEOUT`].
    outbound: crate::outbound::Outbound,
    /// Where the sender and the queueing of events run: a shutdown waits for an event being
    /// queued and stops the sender.
    tasks: crate::tasks::Tasks,
    /// The webhooks as last read, so a message costs no read to learn that nobody wants it.
    subscriptions: Arc<Subscriptions>,
}

/// The copy of the webhooks that [`Webhooks::emit`] checks, good while the staleness it was
/// read under has not changed (a webhook created or deleted on any node, a bus outage).
struct Subscriptions {
    /// Changes when the copy may be stale (`Hub::staleness`).
    staleness: watch::Receiver<u64>,
    /// The webhooks, and the staleness read just before they were.
    copy: std::sync::Mutex<Option<(u64, Arc<Vec<Webhook>>)>>,
}

impl Subscriptions {
    /// The copy, while it is good.
    fn fresh(&self) -> Option<Arc<Vec<Webhook>>> {
        let now = *self.staleness.borrow();
        match &*crate::util::lock(&self.copy) {
            Some((at, hooks)) if *at == now => Some(hooks.clone()),
            _ => None,
        }
    }

    /// The webhooks: the copy while it is good, else read again.
    async fn current(&self, store: &dyn Store) -> Result<Arc<Vec<Webhook>>, store::Error> {
        if let Some(hooks) = self.fresh() {
            return Ok(hooks);
        }
        // Read before the store: a change after this makes the new copy stale at once.
        let now = *self.staleness.borrow();
        let hooks = Arc::new(store.webhooks().await?);
        *crate::util::lock(&self.copy) = Some((now, hooks.clone()));
        Ok(hooks)
    }
}

impl Webhooks {
    /// Webhooks over `store`, sent through `outbound`, retrying after `retry_base_ms`, 2 ×
    /// that, …; the list of webhooks is read again whenever `staleness` changes.
    pub fn new(
        store: Arc<dyn Store>,
        retry_base_ms: u64,
        outbound: &crate::outbound::Outbound,
        tasks: crate::tasks::Tasks,
        staleness: watch::Receiver<u64>,
    ) -> Webhooks {
        Webhooks {
            tasks,
            subscriptions: Arc::new(Subscriptions {
                staleness,
                copy: std::sync::Mutex::new(None),
            }),
            store,
            wake: Arc::new(Notify::new()),
            retry_base_ms: i64::try_from(retry_base_ms).unwrap_or(1_000),
            outbound: outbound.with_timeout(REQUEST_TIMEOUT),
        }
    }

    /// Queues `event` for the webhooks that want it, off the caller's path: the message or
    /// leave-message is already stored and acknowledged, and a store hiccup here costs one
    /// notification (logged), never the caller's answer. `payload` is built only when a
    /// webhook may want the event.
    pub fn emit(&self, event: &'static str, payload: impl FnOnce() -> serde_json::Value) {
        // Most installs have no webhook: the copy answers that at once, where the queueing
        // insert would take SQLite's one write lock on every message.
        if let Some(hooks) = self.subscriptions.fresh()
            && !hooks.iter().any(|h| h.wants(event))
        {
            return;
        }
        let payload = payload();
        let this = self.clone();
        self.tasks.spawn(async move {
            match this.subscriptions.current(this.store.as_ref()).await {
                Ok(hooks) if !hooks.iter().any(|h| h.wants(event)) => return,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, event, "webhook event not queued");
                    return;
                }
            }
            let body = payload.to_string();
            match this
                .store
                .enqueue_webhook_deliveries(event, &body, crate::util::now_ms())
                .await
            {
                Ok(0) => {}
                Ok(_) => this.wake.notify_one(),
                Err(error) => tracing::warn!(%error, event, "webhook event not queued"),
            }
        });
    }

    /// Starts this node's sender: it sends what is due whenever woken, and at least every
    /// second (retries, and other nodes' events).
    pub fn start(&self) {
        let this = self.clone();
        self.tasks.spawn_loop(async move {
            loop {
                if let Err(error) = this.send_due().await {
                    tracing::warn!(%error, "webhook round failed");
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), this.wake.notified()).await;
            }
        });
    }

    /// Claims and sends what is due, until nothing is.
    async fn send_due(&self) -> Result<(), store::Error> {
        loop {
            // Without webhooks there is nothing to claim: a read instead of a write per second.
            let hooks = self.store.webhooks().await?;
            if hooks.is_empty() {
                return Ok(());
            }
            let now = crate::util::now_ms();
            let due = self
                .store
                .claim_webhook_deliveries(now, now + LEASE_MS, BATCH)
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            for delivery in due {
                let attempt = match hooks.iter().find(|h| h.id == delivery.webhook_id) {
                    Some(hook) => self.attempt(hook, &delivery).await,
                    // Deleted meanwhile (its log went with it): nothing to record.
                    None => continue,
                };
                self.store
                    .record_webhook_attempt(delivery.id, &attempt)
                    .await?;
            }
        }
    }

    /// One POST of `delivery` to `hook`, and what it means for the delivery.
    async fn attempt(&self, hook: &store::Webhook, delivery: &WebhookDelivery) -> DeliveryAttempt {
        let timestamp = crate::util::now_ms() / 1000;
        let request = match self.outbound.post(&hook.url) {
            Ok(request) => request,
            Err(error) => return self.failed(delivery, None, error),
        };
        let result = request
            .header("content-type", "application/json")
            .header("user-agent", "Kefu-Webhook/1")
            .header("x-kefu-event", &delivery.event)
            .header("x-kefu-delivery", delivery.id.to_string())
            .header("x-kefu-timestamp", timestamp.to_string())
            .header(
                "x-kefu-signature",
                format!(
                    "sha256={}",
                    signature(&hook.secret, timestamp, &delivery.payload)
                ),
            )
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(crate::outbound::Error::from);
        match result {
            Ok(response) if response.status().is_success() => DeliveryAttempt {
                state: DeliveryState::Delivered,
                next_attempt_at: crate::util::now_ms(),
                status: Some(i32::from(response.status().as_u16())),
                error: None,
            },
            Ok(response) => {
                let status = response.status().as_u16();
                let error = crate::outbound::Error::Failed(format!("HTTP {status}"));
                self.failed(delivery, Some(i32::from(status)), error)
            }
            Err(error) => self.failed(delivery, None, error),
        }
    }

    /// A failed attempt: tried again later, or given up after [`MAX_ATTEMPTS`] — at once when
    /// the URL is refused, since trying again cannot help.
    fn failed(
        &self,
        delivery: &WebhookDelivery,
        status: Option<i32>,
        error: crate::outbound::Error,
    ) -> DeliveryAttempt {
        let attempts = delivery.attempts + 1;
        let delay = self
            .retry_base_ms
            .saturating_mul(1 << (attempts - 1).clamp(0, 20))
            .min(MAX_DELAY_MS);
        DeliveryAttempt {
            state: if attempts >= MAX_ATTEMPTS || error.is_final() {
                DeliveryState::Failed
            } else {
                DeliveryState::Pending
            },
            next_attempt_at: crate::util::now_ms() + delay,
            status,
            error: Some(error.to_string()),
        }
    }
}

/// The hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_documented_hmac() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", 1_700_000_000, r#"{"a":1}"#),
            "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[tokio::test]
    async fn the_copy_of_the_webhooks_holds_until_it_is_made_stale() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let url = store::DatabaseUrl::parse(&url).expect("url");
        let store = store::connect(&url).await.expect("store");
        let (stale, staleness) = watch::channel(0);
        let subscriptions = Subscriptions {
            staleness,
            copy: std::sync::Mutex::new(None),
        };
        assert!(subscriptions.fresh().is_none(), "nothing read yet");
        let none = subscriptions.current(store.as_ref()).await.expect("read");
        assert!(none.is_empty());
        store
            .create_webhook("https://crm.example/", "s", &["message.created"], 1)
            .await
            .expect("hook");
        // Written behind the copy's back: the copy still answers (no read per message).
        assert!(subscriptions.fresh().expect("fresh").is_empty());
        stale.send_modify(|n| *n += 1);
        assert!(subscriptions.fresh().is_none(), "stale once told");
        let one = subscriptions.current(store.as_ref()).await.expect("read");
        assert!(one.iter().any(|h| h.wants("message.created")));
        assert_eq!(subscriptions.fresh().expect("fresh").len(), 1);
        store.close().await;
    }
}
