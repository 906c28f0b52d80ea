//! The agent's desk: the inbox of conversations (filtered by status and owner, with unread
//! counts), the open conversation, and the visitors on the sites right now.
//!
//! The console's shell loads [`inbox`] (the desk's starting point) once per tab and keeps it
//! current over the live link; the server renders it into the first HTML, so the list is there
//! before any script runs.

use crate::auth::{AgentInfo, ConnectionMode, ConsoleError};
use crate::i18n::{Key, Lang, t};
use crate::live::ThreadSeed;
use crate::shell::{Console, use_shell};
use leptos::prelude::*;
use protocol::{AgentId, ConversationStatus, EventSeq, Message, Seq, SiteId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    pub id: i64,
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
    use crate::auth::{MODE_COOKIE, ssr};
    use std::collections::HashMap;
    let agent = ssr::require_agent().await?;
    let store = ssr::store()?;
    let site_ids = store.agent_sites(agent.id).await.map_err(ssr::internal)?;
    // Read the event position first: a conversation created after it is replayed live.
    let events_after = store
        .last_event_id(&site_ids)
        .await
        .map_err(ssr::internal)?;
    let mut sites = BTreeMap::new();
    let mut translating_sites = Vec::new();
    let interpreter = ssr::interpreter()?;
    for id in &site_ids {
        if let Some(site) = store.site(*id).await.map_err(ssr::internal)? {
            if interpreter.translates(&site) {
                translating_sites.push(SiteId(*id));
            }
            sites.insert(SiteId(*id), site.name);
        }
    }
    // One query per site (not per colleague) tells who answers which of the agent's sites.
    let mut colleagues: BTreeMap<i64, Colleague> = BTreeMap::new();
    for site in &site_ids {
        for colleague in store.site_agents(&[*site]).await.map_err(ssr::internal)? {
            colleagues
                .entry(colleague.id)
                .or_insert_with(|| Colleague {
                    id: AgentId(colleague.id),
                    name: colleague.display_name,
                    site_ids: Vec::new(),
                })
                .site_ids
                .push(SiteId(*site));
        }
    }
    let colleagues: Vec<Colleague> = colleagues.into_values().collect();
    let teams = store
        .site_teams(&site_ids)
        .await
        .map_err(ssr::internal)?
        .into_iter()
        .map(|team| TeamChoice {
            id: team.id,
            site_id: SiteId(team.site_id),
            name: team.name,
        })
        .collect();
    let mut heads = store
        .site_conversation_heads(&site_ids, INBOX_SIZE)
        .await
        .map_err(ssr::internal)?;
    // The "resolved" tab starts with each site's most recently resolved conversations.
    for site in &site_ids {
        let recent = store
            .conversations_page(*site, None, RESOLVED_SIZE * 2)
            .await
            .map_err(ssr::internal)?;
        heads.extend(
            recent
                .into_iter()
                .filter(|c| c.status == ConversationStatus::Resolved)
                .take(RESOLVED_SIZE as usize),
        );
    }
    let ids: Vec<i64> = heads.iter().map(|c| c.id).collect();
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, tag) in store.conversation_tags(&ids).await.map_err(ssr::internal)? {
        tags.entry(id).or_default().push(tag);
    }
    let mut names = ssr::AgentNames::default();
    let mut threads = Vec::with_capacity(heads.len());
    for head in heads {
        let tags = tags.remove(&head.id).unwrap_or_default();
        threads.push(thread_seed(store.as_ref(), head, tags, &mut names).await?);
    }
    let mode = ssr::cookie(MODE_COOKIE)
        .await
        .map(|value| ConnectionMode::parse(&value))
        .unwrap_or_default();
    Ok(InboxData {
        agent: ssr::agent_info(&agent),
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
pub async fn conversation_seed(id: i64) -> Result<ThreadSeed, ConsoleError> {
    use crate::auth::ssr;
    let (_, conversation) = ssr::my_conversation(id).await?;
    let store = ssr::store()?;
    let tags = store
        .conversation_tags(&[id])
        .await
        .map_err(ssr::internal)?
        .into_iter()
        .map(|(_, tag)| tag)
        .collect();
    thread_seed(
        store.as_ref(),
        conversation,
        tags,
        &mut ssr::AgentNames::default(),
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
pub async fn transcript(id: i64, before: Seq) -> Result<TranscriptPage, ConsoleError> {
    use crate::auth::ssr;
    let (_, conversation) = ssr::my_conversation(id).await?;
    let store = ssr::store()?;
    let mut page = store
        .messages_before(conversation.id, Some(before), TRANSCRIPT_PAGE)
        .await
        .map_err(ssr::internal)?;
    page.reverse();
    let translations = store::made_translations(store.as_ref(), &page)
        .await
        .map_err(ssr::internal)?;
    let mut names = ssr::AgentNames::default();
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
    names: &mut crate::auth::ssr::AgentNames,
) -> Result<ThreadSeed, ConsoleError> {
    use crate::auth::ssr;
    let visitor_name = store
        .visitor(conversation.visitor_id)
        .await
        .map_err(ssr::internal)?
        .and_then(|v| v.name);
    let mut newest = store
        .messages_before(conversation.id, None, RECENT_MESSAGES)
        .await
        .map_err(ssr::internal)?;
    newest.reverse();
    let translations = store::made_translations(store, &newest)
        .await
        .map_err(ssr::internal)?;
    let mut recent = Vec::with_capacity(newest.len());
    for message in newest {
        let name = names.of(store, message.agent_id).await?;
        recent.push(message.into_frame(name));
    }
    Ok(ThreadSeed {
        conversation_id: protocol::ConversationId(conversation.id),
        site_id: SiteId(conversation.site_id),
        visitor_id: protocol::VisitorId(conversation.visitor_id),
        visitor_name,
        status: conversation.status,
        assignee: conversation.assignee_id.map(AgentId),
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

/// The page agents land on after signing in: the conversations and the visitors on the sites.
/// The shell loaded the desk and keeps it live; this page only shows it.
#[component]
pub fn InboxPage() -> impl IntoView {
    let shell = use_shell();
    // Effects run only in the browser, so this marks the moment hydration finished.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <main class="page desk-page" data-hydrated=move || hydrated.get().then_some("true")>
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        match shell.console().await {
                            Ok(console) => view! { <DeskView console lang /> }.into_any(),
                            Err(error) => crate::pages::refusal([error], lang),
                        }
                    })
                }}
            </Suspense>
        </main>
    }
}

/// Which conversations the list shows, besides their status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Mine,
    Unassigned,
    All,
}

/// The desk in `lang`: the list, the open conversation and the visitors.
#[component]
fn DeskView(console: Console, lang: Lang) -> impl IntoView {
    let live = console.live;
    let me = console.me();
    let sites = console.sites;
    let colleagues = console.colleagues;
    let teams = console.teams;
    let translating_sites = console.translating_sites;
    let selected = console.selected;
    let is_admin = console.agent.with_value(|a| a.is_admin);
    // Phones show the visitor's profile instead of the transcript when asked.
    let profile = RwSignal::new(false);
    let status = RwSignal::new(ConversationStatus::Open);
    let owner = RwSignal::new(Owner::All);
    let status_tab = move |value: ConversationStatus, key: Key| {
        view! {
            <button
                type="button"
                class="tab"
                aria-pressed=move || (status.get() == value).to_string()
                on:click=move |_| status.set(value)
            >
                {t(lang, key)}
                " "
                <span class="count">
                    {move || {
                        live.desk.with(|d| d.threads.values().filter(|t| t.status == value).count())
                    }}
                </span>
            </button>
        }
    };
    let owner_tab = move |value: Owner, key: Key| {
        view! {
            <button
                type="button"
                class="tab"
                aria-pressed=move || (owner.get() == value).to_string()
                on:click=move |_| owner.set(value)
            >
                {t(lang, key)}
            </button>
        }
    };
    let tag_filter = RwSignal::new(String::new());
    let rows = move || {
        let (status, owner) = (status.get(), owner.get());
        let tag = tag_filter.get().trim().to_lowercase();
        live.desk.with(|desk| {
            let mut rows: Vec<_> = desk
                .threads
                .iter()
                .filter(|(_, t)| t.status == status)
                .filter(|(_, t)| tag.is_empty() || t.tags.iter().any(|have| have == &tag))
                .filter(|(_, t)| match owner {
                    Owner::Mine => t.assignee == Some(me),
                    Owner::Unassigned => t.assignee.is_none(),
                    Owner::All => true,
                })
                .map(|(id, t)| {
                    let preview =
                        t.last_words()
                            .map(|m| match (&m.attachment, m.body.is_empty()) {
                                (Some(file), true) => format!(
                                    "{}: {}",
                                    crate::i18n::t(lang, Key::Attachment),
                                    file.name
                                ),
                                _ => m.body.chars().take(120).collect(),
                            });
                    (
                        t.updated_at,
                        *id,
                        t.visitor_label(),
                        t.site_id,
                        preview,
                        t.unread(),
                        t.tags.clone(),
                    )
                })
                .collect();
            rows.sort_by_key(|row| std::cmp::Reverse((row.0, row.1)));
            rows
        })
    };
    view! {
        <div class="desk" data-open=move || selected.get().is_some().to_string()>
            <section class="inbox-pane">
                <nav class="tabs" aria-label="status">
                    {status_tab(ConversationStatus::Open, Key::StatusOpen)}
                    {status_tab(ConversationStatus::Pending, Key::StatusPending)}
                    {status_tab(ConversationStatus::Resolved, Key::StatusResolved)}
                </nav>
                <nav class="tabs" aria-label="owner">
                    {owner_tab(Owner::Mine, Key::Mine)}
                    {owner_tab(Owner::Unassigned, Key::Unassigned)}
                    {owner_tab(Owner::All, Key::All)}
                </nav>
                <input
                    type="search"
                    class="tag-filter"
                    aria-label=t(lang, Key::FilterByTag)
                    placeholder=t(lang, Key::FilterByTag)
                    prop:value=move || tag_filter.get()
                    on:input=move |event| tag_filter.set(event_target_value(&event))
                />
                <ul class="inbox">
                    {move || {
                        let rows = rows();
                        if rows.is_empty() {
                            // A desk with nothing at all says where chats come from; an
                            // empty tab says only that this tab is empty.
                            if live.desk.with(|d| d.threads.is_empty()) {
                                return view! {
                                    <li class="empty first-run">
                                        <strong>{t(lang, Key::NoConversations)}</strong>
                                        <p>{t(lang, Key::FirstRunHint)}</p>
                                        {is_admin.then(|| view! { <a href="/admin/sites">{t(lang, Key::EmbedSnippet)}</a> })}
                                    </li>
                                }
                                .into_any();
                            }
                            let empty = match status.get() {
                                ConversationStatus::Open => Key::NoOpen,
                                ConversationStatus::Pending => Key::NoPending,
                                ConversationStatus::Resolved => Key::NoResolved,
                            };
                            return view! { <li class="empty">{t(lang, empty)}</li> }.into_any();
                        }
                        rows.into_iter()
                            .map(|(_, id, visitor, site, preview, unread, tags)| {
                                let site = sites.with_value(|s| s.get(&site).cloned()).unwrap_or_default();
                                view! {
                                    <li
                                        class="conversation"
                                        data-conversation=id.0
                                        aria-current=move || (selected.get() == Some(id)).then_some("true")
                                        on:click=move |_| selected.set(Some(id))
                                    >
                                        <strong class="visitor">{visitor}</strong>
                                        <span class="site">{site}</span>
                                        {(unread > 0).then(|| view! { <span class="unread">{unread}</span> })}
                                        <p class="preview">{preview}</p>
                                        <ul class="tags">
                                            {tags.into_iter().map(|tag| view! { <li class="tag">{tag}</li> }).collect_view()}
                                        </ul>
                                    </li>
                                }
                            })
                            .collect_view()
                            .into_any()
                    }}
                </ul>
            </section>
            <section class="conversation-pane" data-profile=move || profile.get().to_string()>
                {move || match selected.get() {
                    Some(id) => view! { <super::conversation::ConversationView live id me lang colleagues teams translating_sites profile /> }.into_any(),
                    None => view! { <p class="empty">{t(lang, Key::PickConversation)}</p> }.into_any(),
                }}
            </section>
            <aside class="visitors-pane">
                <super::visitors::VisitorList live lang sites />
            </aside>
        </div>
    }
}
