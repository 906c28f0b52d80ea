//! Automatic assignment. A new conversation goes to the online agent of its site whose turn it
//! is (round-robin: the one given a conversation least recently), among those under their
//! concurrent-chat limit. When all are full it waits in the site's queue, oldest first, and is
//! handed out as soon as a slot frees: a conversation resolved or parked, an agent coming
//! online. Waiting visitors are told their place whenever it changes.
//!
//! Several nodes may run passes for one site at once. The store decides each assignment in one
//! transaction (`assign_within_capacity`): the conversation must still be waiting and the agent
//! under their limit, counted across every node, and the agent's turn (the time of their latest
//! assignment) is recorded with it, so round-robin is cluster-wide too. A per-site lock keeps
//! this node from racing itself.

use super::Realtime;
use crate::util::lock;
use protocol::{AgentId, ConversationId, ServerFrame, SiteId, TeamId, VisitorId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::NewEvent;

/// The longest queue handled in one pass (and told their positions).
const QUEUE_WINDOW: u32 = 200;

/// Per-site passes and what waiting visitors were told.
#[derive(Default)]
pub struct Assigner {
    /// The latest turn this node recorded (ms): each new one is later, even within one ms.
    last_turn: Mutex<i64>,
    /// One assignment pass per site at a time.
    passes: Mutex<HashMap<SiteId, Arc<tokio::sync::Mutex<()>>>>,
    /// The site and queue position each waiting conversation's visitor was last told, so a
    /// visitor hears of a change, not of every pass.
    told: Mutex<HashMap<ConversationId, (SiteId, u32)>>,
}

impl Assigner {
    fn pass(&self, site_id: SiteId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.passes).entry(site_id).or_default().clone()
    }

    /// A turn for the next assignment: now, or just after this node's previous one.
    fn next_turn(&self) -> i64 {
        let mut last = lock(&self.last_turn);
        *last = crate::util::now_ms().max(*last + 1);
        *last
    }

    /// The queue position conversation `id` was last announced at, while it waits.
    pub fn place(&self, id: ConversationId) -> Option<u32> {
        lock(&self.told).get(&id).map(|(_, position)| *position)
    }

    /// Which of the site's waiting conversations moved since their visitors were last told,
    /// as `(conversation, visitor, position)`; forgets the site's conversations no longer
    /// waiting.
    fn moved(
        &self,
        site_id: SiteId,
        waiting: &[store::Conversation],
    ) -> Vec<(ConversationId, VisitorId, u32)> {
        let mut told = lock(&self.told);
        told.retain(|id, (site, _)| *site != site_id || waiting.iter().any(|c| c.id == *id));
        let mut moved = Vec::new();
        for (place, conversation) in waiting.iter().enumerate() {
            let position = u32::try_from(place + 1).unwrap_or(u32::MAX);
            if told.insert(conversation.id, (site_id, position)) != Some((site_id, position)) {
                moved.push((conversation.id, conversation.visitor_id, position));
            }
        }
        moved
    }
}

/// Hands the site's waiting conversations to online agents with free slots, then tells those
/// still waiting their place when it changed.
pub async fn fill(rt: &Realtime, site_id: SiteId) -> Result<(), store::Error> {
    let pass = rt.assigner.pass(site_id);
    let _pass = pass.lock().await;
    let queue = rt
        .store
        .unassigned_conversations(site_id, QUEUE_WINDOW)
        .await?;
    if queue.is_empty() {
        rt.assigner.moved(site_id, &[]);
        return Ok(());
    }
    let online = rt.hub.online_agents(site_id);
    let mut agents = Vec::with_capacity(online.len());
    for id in &online {
        if let Some(agent) = rt.store.agent(*id).await? {
            agents.push(agent);
        }
    }
    let mut loads: HashMap<AgentId, i64> =
        rt.store.agent_loads(&online).await?.into_iter().collect();
    // When each agent was last given a conversation, by any node: the earliest is next.
    let mut turns: HashMap<AgentId, i64> = rt
        .store
        .assignment_turns(&online)
        .await?
        .into_iter()
        .collect();
    // The members of the teams waiting conversations were transferred to, read once a pass.
    let mut teams: HashMap<TeamId, Vec<AgentId>> = HashMap::new();
    for team in queue.iter().filter_map(|c| c.team_id) {
        if let std::collections::hash_map::Entry::Vacant(entry) = teams.entry(team) {
            entry.insert(rt.store.team_members(team).await?);
        }
    }
    let mut waiting = Vec::new();
    'queue: for conversation in queue {
        loop {
            let next = agents
                .iter()
                .filter(|a| loads.get(&a.id).copied().unwrap_or(0) < i64::from(a.max_chats))
                .filter(|a| {
                    conversation
                        .team_id
                        .is_none_or(|team| teams.get(&team).is_some_and(|m| m.contains(&a.id)))
                })
                .min_by_key(|a| (turns.get(&a.id).copied().unwrap_or(0), a.id));
            let Some(agent) = next else {
                waiting.push(conversation);
                continue 'queue;
            };
            let turn = rt.assigner.next_turn();
            let max_chats = i64::from(agent.max_chats);
            if rt
                .store
                .assign_within_capacity(conversation.id, agent.id, max_chats, turn)
                .await?
            {
                turns.insert(agent.id, turn);
                *loads.entry(agent.id).or_default() += 1;
                announce(rt, &conversation, Some(agent), None).await?;
                continue 'queue;
            }
            // Another node took the agent's last slot, or the conversation itself. With the
            // agent's load read again, a full agent is passed over and the next one tried; an
            // agent with room means the conversation was taken.
            let load = rt
                .store
                .agent_loads(&[agent.id])
                .await?
                .first()
                .map_or(0, |(_, load)| *load);
            loads.insert(agent.id, load);
            if load < max_chats {
                continue 'queue;
            }
        }
    }
    for (conversation_id, visitor_id, position) in rt.assigner.moved(site_id, &waiting) {
        rt.hub.to_visitor(
            visitor_id,
            ServerFrame::Queue {
                conversation_id,
                position,
            },
        );
    }
    Ok(())
}

/// Runs [`fill`] for each site, logging failures: for callers that must not fail on it (an
/// agent's status change, a connection's welcome).
pub async fn fill_sites(rt: &Realtime, site_ids: &[SiteId]) {
    for site_id in site_ids {
        if let Err(error) = fill(rt, *site_id).await {
            tracing::error!(%error, %site_id, "assigning waiting conversations failed");
        }
    }
}

/// Hands waiting conversations to agents on other nodes as this node hears they came online:
/// a conversation queued here just before the news arrived would otherwise wait for the next
/// unrelated pass.
pub fn follow_other_nodes(rt: &Arc<Realtime>) {
    let mut online = rt.hub.online_elsewhere();
    // Weak: the task must not keep a stopped server's state (and its database pool) alive.
    let weak = Arc::downgrade(rt);
    rt.tasks.spawn_loop(async move {
        let rt = weak;
        loop {
            match online.recv().await {
                Ok(site_id) => {
                    let Some(rt) = rt.upgrade() else { return };
                    fill_sites(&rt, &[site_id]).await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Who moved a conversation by hand, and the note they left for the colleague taking over.
pub struct Handover {
    /// The team it was sent to, when it was.
    pub team: Option<TeamId>,
    /// The agent who moved it.
    pub by: AgentId,
    /// Their note, if any.
    pub note: Option<String>,
}

/// Records an assignment (`None`: back to the queue) as a durable event for the site's agents
/// and tells the visitor who answers now. `handover` is absent when the router assigned it.
pub async fn announce(
    rt: &Realtime,
    conversation: &store::Conversation,
    agent: Option<&store::Agent>,
    handover: Option<Handover>,
) -> Result<(), store::Error> {
    let (team, by, note) = handover.map_or((None, None, None), |h| (h.team, Some(h.by), h.note));
    let mut frame = ServerFrame::AssignmentChanged {
        event_seq: 0,
        conversation_id: conversation.id,
        assignee: agent.map(|a| a.id),
        team,
        by,
        note,
    };
    let event = rt
        .store
        .append_event(NewEvent {
            site_id: conversation.site_id,
            kind: "assignment_changed".into(),
            conversation_id: conversation.id,
            payload: serde_json::to_string(&frame).unwrap_or_default(),
            created_at: crate::util::now_ms(),
        })
        .await?;
    if let ServerFrame::AssignmentChanged { event_seq, .. } = &mut frame {
        *event_seq = event.id;
    }
    rt.hub.to_site(conversation.site_id, frame);
    if let Some(agent) = agent {
        rt.hub.to_visitor(
            conversation.visitor_id,
            ServerFrame::Assigned {
                conversation_id: conversation.id,
                agent_id: agent.id,
                agent_name: agent.display_name.clone(),
            },
        );
    }
    Ok(())
}
