//! Wakes snoozed conversations: once a second each node asks the store for conversations whose
//! snooze is due, reopens them, and records an `open` system message with no agent — the same
//! record a status change makes, so every desk and the visitor learn it in order. The store's
//! conditional wake lets only one of several nodes record each one.

use super::Realtime;
use super::session::{publish, system_message};
use protocol::ClientId;
use std::sync::{Arc, Weak};
use std::time::Duration;
use store::ConversationStatus;

/// How often the store is asked; a snooze ends at most this late.
const EVERY: Duration = Duration::from_secs(1);
/// Conversations woken per pass; more wait for the next one.
const BATCH: u32 = 100;

/// Starts the waker; it stops at shutdown, or with the server (it holds the state only
/// weakly).
pub fn start(rt: &Arc<Realtime>) {
    let weak = Arc::downgrade(rt);
    rt.tasks.spawn_loop(run(weak));
}

async fn run(rt: Weak<Realtime>) {
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(rt) = rt.upgrade() else { return };
        if let Err(error) = wake_due(&rt).await {
            tracing::warn!(%error, "could not wake snoozed conversations");
        }
    }
}

/// Reopens the conversations whose snooze is due; returns how many this node woke.
pub async fn wake_due(rt: &Arc<Realtime>) -> Result<usize, store::Error> {
    let now = crate::util::now_ms();
    let mut woken = 0;
    for due in rt.store.due_snoozes(now, BATCH).await? {
        let Some(until) = due.snoozed_until else {
            continue;
        };
        let Some(conversation) = rt.store.wake_conversation(due.id, now).await? else {
            continue;
        };
        let record = system_message(
            ClientId(format!("snooze-{}-{until}", conversation.id)),
            ConversationStatus::Open.into(),
            None,
        );
        let appended = rt.store.append_message(conversation.id, record).await?;
        publish(rt, &conversation.facts(), appended, None);
        super::assign::fill(rt, conversation.site_id).await?;
        woken += 1;
    }
    Ok(woken)
}
