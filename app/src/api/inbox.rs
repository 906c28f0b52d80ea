//! What the desk starts from and pages in: the inbox (conversations, colleagues, teams, the
//! agent's profile), one conversation's seed, and older transcript pages.
//!
//! The console's shell loads [`inbox`] once per tab and keeps it current over the live link;
//! the server renders it into the first HTML, so the list is there before any script runs.

use crate::auth::{AgentInfo, ConnectionMode};
use crate::error::ConsoleError;
use crate::i18n::Lang;
use leptos::prelude::*;
use protocol::{
    AgentId, ConversationId, ConversationStatus, EventSeq, Message, Seq, SiteId, TeamId,
    Translation, UnixMillis, VisitorId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A conversation as the server rendered it into the page; the desk starts from these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadSeed {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its site.
    pub site_id: SiteId,
    /// Its visitor.
    pub visitor_id: VisitorId,
    /// The name the visitor gave, if any.
    pub visitor_name: Option<String>,
    /// Open, pending or resolved.
    pub status: ConversationStatus,
    /// Until when it is snoozed, if it is.
    pub snoozed_until: Option<UnixMillis>,
    /// The agent responsible, if any.
    pub assignee: Option<AgentId>,
    /// The newest message's seq: live delivery continues from here.
    pub last_seq: Seq,
    /// Last activity, UTC milliseconds.
    pub updated_at: UnixMillis,
    /// The newest messages, oldest first; older ones are paged in on demand.
    pub recent: Vec<Message>,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// The team it waits for, after a transfer to one.
    pub team: Option<TeamId>,
    /// Whether its messages are translated (when its site translates).
    pub translating: bool,
    /// The translations of `recent` that are made.
    pub translations: Vec<Translation>,
}

/// What the desk starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxData {
    /// The signed-in agent.
    pub agent: AgentInfo,
    /// The agent's sites by id, for labels.
    pub sites: BTreeMap<SiteId, String>,
    /// The agents of those sites (the signed-in one included), for names and transfers.
    pub colleagues: Vec<Colleague>,
    /// The teams of those sites, for transfers.
    pub teams: Vec<TeamChoice>,
    /// The sites' conversations that are not resolved, most recent first, then each site's most
    /// recently resolved ones.
    pub threads: Vec<ThreadSeed>,
    /// The newest agent event when the page was rendered: the live stream continues after it,
    /// so nothing that happens between rendering and connecting is missed.
    pub events_after: EventSeq,
    /// How this browser connects.
    pub mode: ConnectionMode,
    /// The sites whose conversations are translated (a provider is set up and the site's
    /// switch is on): their conversations get the translation switch and button.
    pub translating_sites: Vec<SiteId>,
    /// The agent's language: the console draws in it from the first frame.
    pub lang: Lang,
}

/// An agent sharing a site with the signed-in one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Colleague {
    /// Their id, what an assignment names.
    pub id: AgentId,
    /// The name shown.
    pub name: String,
    /// The sites they answer: a conversation can move only to an agent of its site.
    pub site_ids: Vec<SiteId>,
}

/// A team a conversation can be transferred to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamChoice {
    /// What an assignment names.
    pub id: TeamId,
    /// Its site: only that site's conversations go to it.
    pub site_id: SiteId,
    /// The name shown.
    pub name: String,
}

/// How many conversations the inbox starts with.
pub const INBOX_SIZE: u32 = 50;
/// How many recently resolved conversations per site the inbox starts with (history has the
/// rest).
pub const RESOLVED_SIZE: u32 = 20;
/// How many of a conversation's newest messages come with it; older ones are paged in.
pub const RECENT_MESSAGES: u32 = 30;
/// How many messages one "load earlier" brings.
pub const TRANSCRIPT_PAGE: u32 = 50;

/// The desk of the signed-in agent: only conversations of sites they belong to.
#[server(endpoint = "inbox")]
pub async fn inbox() -> Result<InboxData, ConsoleError> {
    use crate::auth::MODE_COOKIE;
    use crate::context;
    use std::collections::HashMap;
    let agent = context::require_agent().await?;
    let store = context::store()?;
    let site_ids = store.agent_sites(agent.id).await?;
    // Read the event position first: a conversation created after it is replayed live.
    let events_after = store.last_event_id(&site_ids).await?;
    let mut sites = BTreeMap::new();
    let mut translating_sites = Vec::new();
    let interpreter = context::interpreter()?;
    for id in &site_ids {
        if let Some(site) = store.site(*id).await? {
            if interpreter.translates(&site) {
                translating_sites.push(*id);
            }
            sites.insert(*id, site.name);
        }
    }
    // One query per site (not per colleague) tells who answers which of the agent's sites.
    let mut colleagues: BTreeMap<AgentId, Colleague> = BTreeMap::new();
    for site in &site_ids {
        for colleague in store.site_agents(&[*site]).await? {
            colleagues
                .entry(colleague.id)
                .or_insert_with(|| Colleague {
                    id: colleague.id,
                    name: colleague.display_name,
                    site_ids: Vec::new(),
                })
                .site_ids
                .push(*site);
        }
    }
    let colleagues: Vec<Colleague> = colleagues.into_values().collect();
    let teams = store
        .site_teams(&site_ids)
        .await?
        .into_iter()
        .map(|team| TeamChoice {
            id: team.id,
            site_id: team.site_id,
            name: team.name,
        })
        .collect();
    let mut heads = store.site_conversation_heads(&site_ids, INBOX_SIZE).await?;
    // The "resolved" tab starts with each site's most recently resolved conversations.
    for site in &site_ids {
        let recent = store
            .conversations_page(*site, None, RESOLVED_SIZE * 2)
            .await?;
        heads.extend(
            recent
                .into_iter()
                .filter(|c| c.status == ConversationStatus::Resolved)
                .take(RESOLVED_SIZE as usize),
        );
    }
    let ids: Vec<ConversationId> = heads.iter().map(|c| c.id).collect();
    let mut tags: HashMap<ConversationId, Vec<String>> = HashMap::new();
    for (id, tag) in store.conversation_tags(&ids).await? {
        tags.entry(id).or_default().push(tag);
    }
    let mut names = context::AgentNames::default();
    let mut threads = Vec::with_capacity(heads.len());
    for head in heads {
        let tags = tags.remove(&head.id).unwrap_or_default();
        threads.push(thread_seed(store.as_ref(), head, tags, &mut names).await?);
    }
    let mode = context::cookie(MODE_COOKIE)
        .await
        .map(|value| ConnectionMode::parse(&value))
        .unwrap_or_default();
    Ok(InboxData {
        agent: crate::auth::AgentInfo::from(&agent),
        sites,
        colleagues,
        teams,
        threads,
        events_after,
        mode,
        translating_sites,
        lang: Lang::from_tag(&agent.language),
    })
}

/// One conversation of the agent's sites with its newest messages: for a conversation the desk
/// meets live that was not in its first list (a resolved one the visitor wrote into again).
#[server(endpoint = "conversation")]
pub async fn conversation_seed(id: ConversationId) -> Result<ThreadSeed, ConsoleError> {
    use crate::context;
    let (_, conversation) = context::my_conversation(id).await?;
    let store = context::store()?;
    let tags = store
        .conversation_tags(&[id])
        .await?
        .into_iter()
        .map(|(_, tag)| tag)
        .collect();
    thread_seed(
        store.as_ref(),
        conversation,
        tags,
        &mut context::AgentNames::default(),
    )
    .await
}

/// A page of a conversation's transcript, with the translations of its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptPage {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// Those made of `messages`.
    pub translations: Vec<protocol::Translation>,
}

/// A page of the conversation's messages before `before` (a seq), oldest first: the
/// transcript pages backwards by seq, never by offset.
#[server(endpoint = "transcript")]
pub async fn transcript(id: ConversationId, before: Seq) -> Result<TranscriptPage, ConsoleError> {
    use crate::context;
    let (_, conversation) = context::my_conversation(id).await?;
    let store = context::store()?;
    let mut page = store
        .messages_before(conversation.id, Some(before), TRANSCRIPT_PAGE)
        .await?;
    page.reverse();
    let translations = store::made_translations(store.as_ref(), &page).await?;
    let mut names = context::AgentNames::default();
    let mut messages = Vec::with_capacity(page.len());
    for message in page {
        let name = names.of(store.as_ref(), message.agent_id).await?;
        messages.push(message.into_frame(name));
    }
    Ok(TranscriptPage {
        messages,
        translations,
    })
}

/// The desk's starting point for one conversation: its visitor and newest messages.
#[cfg(feature = "ssr")]
async fn thread_seed(
    store: &dyn store::Store,
    conversation: store::Conversation,
    tags: Vec<String>,
    names: &mut crate::context::AgentNames,
) -> Result<ThreadSeed, ConsoleError> {
    let visitor_name = store
        .visitor(conversation.visitor_id)
        .await?
        .and_then(|v| v.name);
    let mut newest = store
        .messages_before(conversation.id, None, RECENT_MESSAGES)
        .await?;
    newest.reverse();
    let translations = store::made_translations(store, &newest).await?;
    let mut recent = Vec::with_capacity(newest.len());
    for message in newest {
        let name = names.of(store, message.agent_id).await?;
        recent.push(message.into_frame(name));
    }
    Ok(ThreadSeed {
        conversation_id: conversation.id,
        site_id: conversation.site_id,
        visitor_id: conversation.visitor_id,
        visitor_name,
        status: conversation.status,
        assignee: conversation.assignee_id,
        last_seq: conversation.last_seq,
        updated_at: conversation.updated_at,
        recent,
        tags,
        team: conversation.team_id,
        translating: conversation.translating,
        snoozed_until: conversation.snoozed_until,
        translations,
    })
}
