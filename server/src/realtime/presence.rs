//! Who is online, cluster-wide. This node's own connections are counted exactly; other nodes'
//! are the rosters they publish over the bus, forgotten when a node goes quiet (so a node that
//! died takes its visitors and agents offline within [`super::nodes::PRESENCE_TTL`]).
//!
//! Every change, local or remote, is diffed against the cluster-wide view before and after it.
//! What the diff says is what this node tells its own subscribers, so each node tells the same
//! story whichever node a visitor or agent is connected to, and a visitor with tabs on two
//! nodes stays online until the last one closes.

use protocol::{AgentId, AgentStatus, ServerFrame, SiteId, VisitorDetails, VisitorId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One node's connected visitors and agents: what it counts, and what it publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Roster {
    /// Visitors with a live connection, by id.
    visitors: HashMap<VisitorId, LiveVisitor>,
    /// Agents with a live connection, by id.
    agents: HashMap<AgentId, LiveAgent>,
}

/// A connected visitor.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LiveVisitor {
    /// Their site; presence and page views go to its agents.
    site_id: SiteId,
    /// Open connections (tabs) on the node; online while above zero.
    connections: u32,
    /// The latest page view, replayed to agents who connect later.
    last_page: Option<Arc<ServerFrame>>,
    /// Their browser (the latest hello's), told to agents who connect later.
    details: Option<Arc<VisitorDetails>>,
}

/// A connected agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LiveAgent {
    /// The sites they answer; presence goes to those sites' agents.
    site_ids: Vec<SiteId>,
    /// Open connections on the node; connected while above zero.
    connections: u32,
    /// What they set (online when they connect).
    status: AgentStatus,
    /// When `status` was set (ms): with connections on several nodes, the latest setting wins.
    since: i64,
}

/// Another node's roster and when it was last heard of.
struct Remote {
    roster: Roster,
    /// The version the node gave this roster: a heartbeat naming another one means a newer
    /// roster was missed.
    version: u64,
    /// When the node was last heard of; quiet too long, it is forgotten.
    seen: Instant,
    /// The node said it shut down: forgotten sooner, and without a warning.
    left: bool,
}

/// This node's roster and the others'.
#[derive(Default)]
pub struct Presence {
    /// This node's connections, counted exactly.
    local: Roster,
    /// Bumped on every local change, so the bus republishes the roster.
    version: u64,
    /// The other nodes' rosters, by node name, as last heard.
    remote: HashMap<String, Remote>,
}

/// What a change means for this node's subscribers.
#[derive(Default)]
pub struct Told {
    /// Presence frames for a site's agents.
    pub to_sites: Vec<(SiteId, ServerFrame)>,
    /// Availability flips for a site's visitors.
    pub to_site_visitors: Vec<(SiteId, ServerFrame)>,
    /// A node died: events it committed may not have crossed the bus before it did, so every
    /// session must catch up from the store.
    pub catch_up: bool,
}

/// The cluster-wide view of one visitor: their site and browser.
type VisitorView = (SiteId, Option<Arc<VisitorDetails>>);
/// The cluster-wide view of one agent: their status and sites.
type AgentView = (AgentStatus, Vec<SiteId>);

impl Presence {
    fn rosters(&self) -> impl Iterator<Item = &Roster> {
        std::iter::once(&self.local).chain(self.remote.values().map(|r| &r.roster))
    }

    fn visitor(&self, id: VisitorId) -> Option<&LiveVisitor> {
        self.rosters().find_map(|r| r.visitors.get(&id))
    }

    /// An agent as the cluster sees them: the latest status any node holds.
    fn agent(&self, id: AgentId) -> Option<&LiveAgent> {
        self.rosters()
            .filter_map(|r| r.agents.get(&id))
            .reduce(|a, b| if b.since > a.since { b } else { a })
    }

    fn visitor_view(&self, id: VisitorId) -> Option<VisitorView> {
        self.visitor(id).map(|v| (v.site_id, v.details.clone()))
    }

    fn agent_view(&self, id: AgentId) -> Option<AgentView> {
        self.agent(id).map(|a| (a.status, a.site_ids.clone()))
    }

    /// Every agent id connected anywhere, once each, in order.
    fn agent_ids(&self) -> BTreeSet<AgentId> {
        self.rosters()
            .flat_map(|r| r.agents.keys().copied())
            .collect()
    }

    /// Whether an agent of the site is connected somewhere with status online.
    pub fn available(&self, site_id: SiteId) -> bool {
        self.agent_ids().into_iter().any(|id| {
            self.agent(id)
                .is_some_and(|a| a.status == AgentStatus::Online && a.site_ids.contains(&site_id))
        })
    }

    /// The agents of a site connected with status online, by id, in order.
    pub fn online_agents(&self, site_id: SiteId) -> Vec<AgentId> {
        self.agent_ids()
            .into_iter()
            .filter(|id| {
                self.agent(*id).is_some_and(|a| {
                    a.status == AgentStatus::Online && a.site_ids.contains(&site_id)
                })
            })
            .collect()
    }

    /// Whether a visitor has a live connection on any node.
    pub fn visitor_online(&self, visitor_id: VisitorId) -> bool {
        self.visitor(visitor_id).is_some()
    }

    /// The colleagues who are not offline, then each online visitor with their latest page view.
    pub fn snapshot(&self, site_ids: &[SiteId]) -> Vec<ServerFrame> {
        let mut frames = Vec::new();
        for id in self.agent_ids() {
            if let Some(agent) = self.agent(id)
                && agent.status != AgentStatus::Offline
                && agent.site_ids.iter().any(|s| site_ids.contains(s))
            {
                frames.push(ServerFrame::AgentPresence {
                    agent_id: id,
                    status: agent.status,
                });
            }
        }
        let visitors: BTreeSet<VisitorId> = self
            .rosters()
            .flat_map(|r| r.visitors.keys().copied())
            .collect();
        for id in visitors {
            let Some(visitor) = self.visitor(id).filter(|v| site_ids.contains(&v.site_id)) else {
                continue;
            };
            frames.push(ServerFrame::VisitorPresence {
                site_id: visitor.site_id,
                visitor_id: id,
                online: true,
                details: visitor.details.as_deref().cloned(),
            });
            if let Some(page) = &visitor.last_page {
                frames.push((**page).clone());
            }
        }
        frames
    }

    /// Every site some connected agent answers: where availability can flip.
    fn agent_sites(&self) -> BTreeSet<SiteId> {
        self.rosters()
            .flat_map(|r| r.agents.values().flat_map(|a| a.site_ids.iter().copied()))
            .collect()
    }

    /// Applies `mutate` and diffs the views of the given visitors and agents (and, when agents
    /// are involved, every site's availability) before and after it.
    fn change(
        &mut self,
        visitors: &[VisitorId],
        agents: &[AgentId],
        mutate: impl FnOnce(&mut Self),
    ) -> Told {
        let visitors_before: Vec<_> = visitors.iter().map(|id| self.visitor_view(*id)).collect();
        let agents_before: Vec<_> = agents.iter().map(|id| self.agent_view(*id)).collect();
        let sites_before = self.agent_sites();
        let available_before: HashMap<SiteId, bool> = if agents.is_empty() {
            HashMap::new()
        } else {
            sites_before
                .iter()
                .map(|s| (*s, self.available(*s)))
                .collect()
        };
        mutate(self);
        let mut told = Told::default();
        for (id, before) in visitors.iter().zip(visitors_before) {
            let after = self.visitor_view(*id);
            match (before, after) {
                (None, Some((site_id, details))) => told.to_sites.push((
                    site_id,
                    ServerFrame::VisitorPresence {
                        site_id,
                        visitor_id: *id,
                        online: true,
                        details: details.as_deref().cloned(),
                    },
                )),
                (Some((site_id, _)), None) => told.to_sites.push((
                    site_id,
                    ServerFrame::VisitorPresence {
                        site_id,
                        visitor_id: *id,
                        online: false,
                        details: None,
                    },
                )),
                _ => {}
            }
        }
        for (id, before) in agents.iter().zip(agents_before) {
            let after = self.agent_view(*id);
            if before == after {
                continue;
            }
            let status = after.as_ref().map_or(AgentStatus::Offline, |a| a.0);
            let mut sites: BTreeSet<SiteId> = BTreeSet::new();
            sites.extend(before.iter().flat_map(|a| a.1.iter().copied()));
            sites.extend(after.iter().flat_map(|a| a.1.iter().copied()));
            for site_id in sites {
                told.to_sites.push((
                    site_id,
                    ServerFrame::AgentPresence {
                        agent_id: *id,
                        status,
                    },
                ));
            }
        }
        if !agents.is_empty() {
            let mut sites = sites_before;
            sites.extend(self.agent_sites());
            for site_id in sites {
                let now = self.available(site_id);
                if available_before.get(&site_id).copied().unwrap_or(false) != now {
                    told.to_site_visitors
                        .push((site_id, ServerFrame::Availability { online: now }));
                }
            }
        }
        told
    }

    /// A new local connection of a visitor.
    pub fn visitor_arrived(
        &mut self,
        site_id: SiteId,
        visitor_id: VisitorId,
        details: Option<Arc<VisitorDetails>>,
    ) -> Told {
        self.version += 1;
        self.change(&[visitor_id], &[], |p| {
            let live = p.local.visitors.entry(visitor_id).or_insert(LiveVisitor {
                site_id,
                connections: 0,
                last_page: None,
                details: None,
            });
            live.connections += 1;
            if details.is_some() {
                live.details = details;
            }
        })
    }

    /// A local connection of a visitor ended.
    pub fn visitor_left(&mut self, visitor_id: VisitorId) -> Told {
        self.version += 1;
        self.change(&[visitor_id], &[], |p| {
            if let Some(live) = p.local.visitors.get_mut(&visitor_id) {
                live.connections = live.connections.saturating_sub(1);
                if live.connections == 0 {
                    p.local.visitors.remove(&visitor_id);
                }
            }
        })
    }

    /// A new local connection of an agent, who answers `site_ids` (read by this newest
    /// connection, so a site they were added to since counts from now on). Signed out while an
    /// earlier connection still lingered, a new one means they are back online.
    pub fn agent_arrived(&mut self, agent_id: AgentId, site_ids: Vec<SiteId>, now_ms: i64) -> Told {
        self.version += 1;
        // Connected elsewhere already: this connection takes the status they set there (a
        // second tab on another node does not make an away agent available).
        let (status, since) = self
            .agent(agent_id)
            .filter(|a| a.status != AgentStatus::Offline)
            .map_or((AgentStatus::Online, now_ms), |a| (a.status, a.since));
        self.change(&[], &[agent_id], |p| {
            let live = p.local.agents.entry(agent_id).or_insert(LiveAgent {
                site_ids: Vec::new(),
                connections: 0,
                status,
                since,
            });
            live.connections += 1;
            live.site_ids = site_ids;
            if live.status == AgentStatus::Offline {
                live.status = AgentStatus::Online;
                live.since = now_ms;
            }
        })
    }

    /// A local connection of an agent ended.
    pub fn agent_left(&mut self, agent_id: AgentId) -> Told {
        self.version += 1;
        self.change(&[], &[agent_id], |p| {
            if let Some(live) = p.local.agents.get_mut(&agent_id) {
                live.connections = live.connections.saturating_sub(1);
                if live.connections == 0 {
                    p.local.agents.remove(&agent_id);
                }
            }
        })
    }

    /// An agent set their status at `at_ms` (on this node or another): their connections here
    /// take it, unless they hold a later one (two changes crossed on the bus).
    pub fn set_agent_status(&mut self, agent_id: AgentId, status: AgentStatus, at_ms: i64) -> Told {
        if self
            .local
            .agents
            .get(&agent_id)
            .is_none_or(|live| live.since > at_ms)
        {
            return Told::default();
        }
        self.version += 1;
        self.change(&[], &[agent_id], |p| {
            if let Some(live) = p.local.agents.get_mut(&agent_id) {
                live.status = status;
                live.since = at_ms;
            }
        })
    }

    /// Keeps a local visitor's latest page view for agents who connect later.
    pub fn page_view(&mut self, visitor_id: VisitorId, frame: Arc<ServerFrame>) {
        if let Some(live) = self.local.visitors.get_mut(&visitor_id) {
            live.last_page = Some(frame);
            self.version += 1;
        }
    }

    /// This node's roster and its version, for the bus to publish.
    pub fn local(&self) -> (u64, Roster) {
        (self.version, self.local.clone())
    }

    /// The roster version last heard from `node`, if it is known.
    pub fn remote_version(&self, node: &str) -> Option<u64> {
        self.remote.get(node).map(|r| r.version)
    }

    /// Notes that `node` is alive (a heartbeat naming the version it holds).
    pub fn heard(&mut self, node: &str, now: Instant) {
        if let Some(remote) = self.remote.get_mut(node) {
            remote.seen = now;
        }
    }

    /// Counts every known node as heard of at `now`.
    pub fn heard_all(&mut self, now: Instant) {
        for remote in self.remote.values_mut() {
            remote.seen = now;
        }
    }

    /// Another node's roster replaced its previous one.
    pub fn replace_remote(
        &mut self,
        node: &str,
        version: u64,
        roster: Roster,
        now: Instant,
    ) -> Told {
        if let Some(known) = self.remote.get_mut(node)
            && known.version > version
        {
            // An older roster overtaken by a newer one (a stored copy read while the pub/sub
            // message was on its way): the node is alive, its roster is the newer one.
            known.seen = now;
            return Told::default();
        }
        let (visitors, agents) = self.ids_of(node, Some(&roster));
        self.change(&visitors, &agents, |p| {
            p.remote.insert(
                node.to_string(),
                Remote {
                    roster,
                    version,
                    seen: now,
                    left: false,
                },
            );
        })
    }

    /// Forgets a node that went quiet.
    fn drop_remote(&mut self, node: &str) -> Told {
        let (visitors, agents) = self.ids_of(node, None);
        self.change(&visitors, &agents, |p| {
            p.remote.remove(node);
        })
    }

    /// A node shut down at `now`: its clients were told to reconnect to other nodes, which
    /// takes them up to `grace`; its roster counts until then, so a client that moved is not
    /// shown offline in between, and one that did not is shown offline then.
    pub fn left(&mut self, node: &str, now: Instant, ttl: Duration, grace: Duration) {
        if let Some(remote) = self.remote.get_mut(node) {
            remote.seen = now.checked_sub(ttl.saturating_sub(grace)).unwrap_or(now);
            remote.left = true;
        }
    }

    /// Forgets every node not heard of since `since`.
    pub fn expire(&mut self, since: Instant) -> Told {
        let quiet: Vec<(String, bool)> = self
            .remote
            .iter()
            .filter(|(_, r)| r.seen < since)
            .map(|(node, r)| (node.clone(), r.left))
            .collect();
        let mut told = Told::default();
        for (node, left) in quiet {
            if !left {
                tracing::warn!(
                    node,
                    "a kefu node went quiet; its connections count as gone"
                );
                told.catch_up = true;
            }
            let more = self.drop_remote(&node);
            told.to_sites.extend(more.to_sites);
            told.to_site_visitors.extend(more.to_site_visitors);
        }
        told
    }

    /// The visitor and agent ids a node's current roster and `next` name.
    fn ids_of(&self, node: &str, next: Option<&Roster>) -> (Vec<VisitorId>, Vec<AgentId>) {
        let current = self.remote.get(node).map(|r| &r.roster);
        let visitors: BTreeSet<VisitorId> = current
            .into_iter()
            .chain(next)
            .flat_map(|r| r.visitors.keys().copied())
            .collect();
        let agents: BTreeSet<AgentId> = current
            .into_iter()
            .chain(next)
            .flat_map(|r| r.agents.keys().copied())
            .collect();
        (visitors.into_iter().collect(), agents.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other_node_with(
        visitor: Option<(SiteId, VisitorId)>,
        agent: Option<(AgentId, SiteId, i64)>,
    ) -> Roster {
        let mut node = Presence::default();
        if let Some((site, id)) = visitor {
            node.visitor_arrived(site, id, None);
        }
        if let Some((id, site, since)) = agent {
            node.agent_arrived(id, vec![site], since);
        }
        node.local().1
    }

    #[test]
    fn a_visitor_on_two_nodes_stays_online_until_both_have_left() {
        let mut here = Presence::default();
        let now = Instant::now();
        let told = here.visitor_arrived(SiteId(1), VisitorId(5), None);
        assert_eq!(told.to_sites.len(), 1, "online");
        let told = here.replace_remote(
            "b",
            1,
            other_node_with(Some((SiteId(1), VisitorId(5))), None),
            now,
        );
        assert!(told.to_sites.is_empty(), "already online: nothing to tell");
        let told = here.visitor_left(VisitorId(5));
        assert!(told.to_sites.is_empty(), "still connected on node b");
        assert!(here.visitor_online(VisitorId(5)));
        let told = here.drop_remote("b");
        assert!(matches!(
            told.to_sites.as_slice(),
            [(
                SiteId(1),
                ServerFrame::VisitorPresence { online: false, .. }
            )]
        ));
        assert!(!here.visitor_online(VisitorId(5)));
    }

    #[test]
    fn an_agent_on_another_node_makes_the_site_available_until_the_node_goes_quiet() {
        let mut here = Presence::default();
        let start = Instant::now();
        let told = here.replace_remote(
            "b",
            1,
            other_node_with(None, Some((AgentId(9), SiteId(3), 10))),
            start,
        );
        assert!(here.available(SiteId(3)));
        assert_eq!(here.online_agents(SiteId(3)), vec![AgentId(9)]);
        assert!(matches!(
            told.to_site_visitors.as_slice(),
            [(SiteId(3), ServerFrame::Availability { online: true })]
        ));
        assert!(told.to_sites.iter().any(|(site, frame)| *site == SiteId(3)
            && matches!(
                frame,
                ServerFrame::AgentPresence {
                    status: AgentStatus::Online,
                    ..
                }
            )));
        let told = here.expire(start + std::time::Duration::from_secs(1));
        assert!(!here.available(SiteId(3)));
        assert!(matches!(
            told.to_site_visitors.as_slice(),
            [(SiteId(3), ServerFrame::Availability { online: false })]
        ));
    }

    #[test]
    fn a_node_that_left_counts_for_the_grace_then_is_forgotten_quietly() {
        let mut here = Presence::default();
        let start = Instant::now();
        here.replace_remote(
            "b",
            1,
            other_node_with(Some((SiteId(1), VisitorId(5))), None),
            start,
        );
        let ttl = Duration::from_secs(5);
        let grace = Duration::from_secs(3);
        let left_at = start + ttl;
        here.left("b", left_at, ttl, grace);
        // `expire(since)` forgets nodes not heard of since then: at time t that is t - ttl.
        let at = |t: Instant| t - ttl;
        let told = here.expire(at(left_at + grace - Duration::from_millis(1)));
        assert!(told.to_sites.is_empty(), "kept during the grace");
        assert!(here.visitor_online(VisitorId(5)));
        let told = here.expire(at(left_at + grace + Duration::from_millis(1)));
        assert!(!here.visitor_online(VisitorId(5)));
        assert!(matches!(
            told.to_sites.as_slice(),
            [(
                SiteId(1),
                ServerFrame::VisitorPresence { online: false, .. }
            )]
        ));
    }

    #[test]
    fn the_latest_status_wins_across_nodes() {
        let mut here = Presence::default();
        here.agent_arrived(AgentId(9), vec![SiteId(3)], 10);
        here.replace_remote(
            "b",
            1,
            other_node_with(None, Some((AgentId(9), SiteId(3), 10))),
            Instant::now(),
        );
        // The agent set "away" on node b at 20: node b's roster says so before our copy does.
        let mut b = Presence::default();
        b.agent_arrived(AgentId(9), vec![SiteId(3)], 10);
        b.set_agent_status(AgentId(9), AgentStatus::Away, 20);
        let told = here.replace_remote("b", 2, b.local().1, Instant::now());
        assert!(!here.available(SiteId(3)), "away everywhere");
        assert!(told.to_sites.iter().any(|(_, frame)| matches!(
            frame,
            ServerFrame::AgentPresence {
                status: AgentStatus::Away,
                ..
            }
        )));
        // Our own connection hears of it over the bus: nothing new to tell.
        let told = here.set_agent_status(AgentId(9), AgentStatus::Away, 20);
        assert!(told.to_sites.is_empty() && told.to_site_visitors.is_empty());
    }
}
