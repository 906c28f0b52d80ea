//! `/history`: past conversations, filtered and searched, with their transcripts and an export.
//!
//! The filters are a plain GET form, so every view is a URL an agent can bookmark or share and
//! the page works before (or without) hydration. Without search text the page lists the
//! conversations the filters select; with it, the matching messages (newest first, matches
//! marked) and the matching leave-messages. `?c=ID` opens a conversation's transcript beside
//! the list. Pages go back in time with an opaque `page` cursor. Export links repeat the
//! filters to `/console/history/export`, which streams CSV or JSON.

use crate::auth::{SiteChoice, my_sites};
use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use protocol::{
    AgentId, Author, ConversationId, ConversationStatus, LeaveMessageId, MessageId, SiteId,
    VisitorId,
};
use serde::{Deserialize, Serialize};

/// Rows per page.
pub const PAGE: u32 = 30;
/// The history filters, as the page's query string and the export's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryParams {
    /// Search text; empty lists conversations instead.
    #[serde(default)]
    pub q: String,
    /// One of the agent's sites; all of them when absent.
    pub site: Option<SiteId>,
    /// Conversations assigned to this agent.
    pub agent: Option<AgentId>,
    /// One visitor's conversations.
    pub visitor: Option<VisitorId>,
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    pub to: Option<String>,
    /// A tag the conversations carry.
    pub tag: Option<String>,
    /// `open`, `pending` or `resolved`.
    pub status: Option<String>,
    /// The visitor's rating, 1 to 5.
    pub rating: Option<u8>,
    /// Where the previous page ended (from [`HistoryPage::next`]).
    pub page: Option<String>,
}

impl HistoryParams {
    /// The filters read from the page's query string; absent, empty or unreadable values are
    /// no filter (a hand-edited URL shows more, never an error page).
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> HistoryParams {
        let text = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        fn id<T: std::str::FromStr>(value: Option<String>) -> Option<T> {
            value.and_then(|v| v.trim().parse().ok())
        }
        HistoryParams {
            q: text("q").unwrap_or_default(),
            site: id(text("site")),
            agent: id(text("agent")),
            visitor: id(text("visitor")),
            from: text("from"),
            to: text("to"),
            tag: text("tag"),
            status: text("status"),
            rating: text("rating").and_then(|v| v.parse().ok()),
            page: text("page"),
        }
    }

    /// The query string that repeats these filters (without the page cursor), `&`-joined and
    /// percent-encoded.
    pub fn query_string(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        let optional = [
            ("site", self.site.map(|v| v.to_string())),
            ("agent", self.agent.map(|v| v.to_string())),
            ("visitor", self.visitor.map(|v| v.to_string())),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("tag", self.tag.clone()),
            ("status", self.status.clone()),
            ("rating", self.rating.map(|v| v.to_string())),
        ];
        pairs.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// `text` percent-encoded for a query string (everything but unreserved ASCII).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One conversation in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRow {
    /// To open its transcript.
    pub id: ConversationId,
    /// To list only this visitor's conversations.
    pub visitor_id: VisitorId,
    /// Whose site.
    pub site: String,
    /// The visitor's name, or their number.
    pub visitor: String,
    /// Where it stands.
    pub status: ConversationStatus,
    /// Who had it, if anyone.
    pub assignee: Option<String>,
    /// When it last changed, `YYYY-MM-DD HH:MM` UTC.
    pub updated: String,
    /// Its tags.
    pub tags: Vec<String>,
}

/// One matching message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageHit {
    /// The conversation it is in.
    pub conversation_id: ConversationId,
    /// Its id (the list's key).
    pub id: MessageId,
    /// Who wrote it.
    pub author: Author,
    /// The visitor of its conversation.
    pub visitor: String,
    /// When it was sent, `YYYY-MM-DD HH:MM` UTC.
    pub sent: String,
    /// Its text in pieces, each marked whether it matches.
    pub pieces: Vec<(String, bool)>,
}

/// One matching leave-message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveHit {
    /// Its id.
    pub id: LeaveMessageId,
    /// Who left it and how to reach them.
    pub from: String,
    /// When, `YYYY-MM-DD HH:MM` UTC.
    pub left: String,
    /// Its text in pieces, each marked whether it matches.
    pub pieces: Vec<(String, bool)>,
}

/// What one page of history shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryRows {
    /// No search text: the conversations.
    Conversations(Vec<ConversationRow>),
    /// Search text: the messages and leave-messages that match.
    Hits {
        /// Matching chat messages.
        messages: Vec<MessageHit>,
        /// Matching leave-messages (first page only).
        leave: Vec<LeaveHit>,
    },
}

/// One page of history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The rows.
    pub rows: HistoryRows,
    /// The agents of the asking agent's sites, `(id, name)`: the agent filter's choices.
    pub agents: Vec<(AgentId, String)>,
    /// The cursor of the next (older) page, when there may be one.
    pub next: Option<String>,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! Turning the page's parameters into a store filter: shared by the server function and
    //! the export endpoint, so both select exactly the same rows.

    use super::HistoryParams;
    use crate::error::ConsoleError;
    use protocol::SiteId;
    use store::search::Query;
    use store::{ConversationStatus, HistoryFilter};

    use crate::clock::DAY_MS;

    /// Midnight UTC starting `date` (`YYYY-MM-DD`), in Unix milliseconds.
    fn day_start(date: &str) -> Result<i64, ConsoleError> {
        let date: jiff::civil::Date = date.trim().parse().map_err(|_| ConsoleError::Invalid)?;
        jiff::tz::TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map(|t| t.as_millisecond())
            .map_err(|_| ConsoleError::Invalid)
    }

    impl HistoryParams {
        /// The store filter these parameters mean for an agent of `agent_sites`, and the search
        /// if there is search text. A site that is not the agent's is `NotFound`; a malformed
        /// date, status, rating or over-long search is `Invalid`.
        pub fn filter(
            &self,
            agent_sites: &[SiteId],
        ) -> Result<(HistoryFilter, Option<Query>), ConsoleError> {
            let sites = match self.site {
                Some(site) if agent_sites.contains(&site) => vec![site],
                Some(_) => return Err(ConsoleError::NotFound),
                None => agent_sites.to_vec(),
            };
            if self.q.chars().count() > crate::api::MAX_QUERY
                || self.tag.as_ref().is_some_and(|t| t.chars().count() > 64)
                || self.rating.is_some_and(|r| !(1..=5).contains(&r))
            {
                return Err(ConsoleError::Invalid);
            }
            let status = match self.status.as_deref() {
                None => None,
                Some(text) => Some(ConversationStatus::parse(text).ok_or(ConsoleError::Invalid)?),
            };
            let filter = HistoryFilter {
                sites,
                agent: self.agent,
                visitor: self.visitor,
                since: self.from.as_deref().map(day_start).transpose()?,
                until: self
                    .to
                    .as_deref()
                    .map(|d| day_start(d).map(|start| start + DAY_MS))
                    .transpose()?,
                tag: self.tag.as_ref().map(|t| t.trim().to_lowercase()),
                status,
                rating: self.rating,
            };
            Ok((filter, Query::parse(&self.q)))
        }
    }
}

/// One page of the history the parameters select, on the signed-in agent's sites.
#[server(endpoint = "history")]
pub async fn history(params: HistoryParams) -> Result<HistoryPage, ConsoleError> {
    use crate::clock::minute;
    use crate::context;
    use std::collections::HashMap;
    let agent = context::require_agent().await?;
    let store = context::store()?;
    let agent_sites = store.agent_sites(agent.id).await?;
    let (filter, query) = params.filter(&agent_sites)?;
    let cursor = params.page.as_deref().unwrap_or_default();
    let agents: Vec<(AgentId, String)> = store
        .site_agents(&agent_sites)
        .await?
        .into_iter()
        .map(|a| (a.id, a.display_name))
        .collect();
    // Names of visitors, agents and sites, each read once per page.
    let mut visitors: HashMap<VisitorId, String> = HashMap::new();
    let mut visitor_name = async |id: VisitorId| -> Result<String, ConsoleError> {
        if let Some(name) = visitors.get(&id) {
            return Ok(name.clone());
        }
        let visitor = store.visitor(id).await?;
        let name = visitor
            .and_then(|v| v.name)
            .unwrap_or_else(|| format!("#{id}"));
        visitors.insert(id, name.clone());
        Ok(name)
    };
    match query {
        Some(query) => {
            let before = cursor.parse::<MessageId>().ok();
            let found = store.search_messages(&filter, &query, before, PAGE).await?;
            let next = (found.len() == PAGE as usize)
                .then(|| found.last().map(|m| m.id.to_string()))
                .flatten();
            let mut conversations: HashMap<ConversationId, VisitorId> = HashMap::new();
            let mut messages = Vec::with_capacity(found.len());
            for message in found {
                let visitor_id = match conversations.get(&message.conversation_id) {
                    Some(id) => *id,
                    None => {
                        let conversation = store
                            .conversation(message.conversation_id)
                            .await?
                            .ok_or(ConsoleError::Internal)?;
                        conversations.insert(conversation.id, conversation.visitor_id);
                        conversation.visitor_id
                    }
                };
                messages.push(MessageHit {
                    conversation_id: message.conversation_id,
                    id: message.id,
                    author: message.author,
                    visitor: visitor_name(visitor_id).await?,
                    sent: minute(message.created_at),
                    pieces: store::search::highlight(&message.body, &query),
                });
            }
            // Leave-messages have no conversation filters: they are searched on the first page
            // when only sites narrow the view.
            let plain = filter.agent.is_none()
                && filter.visitor.is_none()
                && filter.tag.is_none()
                && filter.status.is_none()
                && filter.rating.is_none();
            let leave = if before.is_none() && plain {
                store
                    .search_leave_messages(&filter.sites, &query, None, PAGE)
                    .await?
                    .into_iter()
                    .filter(|l| {
                        filter.since.is_none_or(|s| l.created_at >= s)
                            && filter.until.is_none_or(|u| l.created_at < u)
                    })
                    .map(|l| {
                        let text = format!("{} {}", l.name.as_deref().unwrap_or_default(), l.body);
                        LeaveHit {
                            id: l.id,
                            from: match &l.name {
                                Some(name) => format!("{name} <{}>", l.contact),
                                None => l.contact.clone(),
                            },
                            left: minute(l.created_at),
                            pieces: store::search::highlight(text.trim(), &query),
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Ok(HistoryPage {
                rows: HistoryRows::Hits { messages, leave },
                agents,
                next,
            })
        }
        None => {
            let after = cursor.split_once('_').and_then(|(updated, id)| {
                Some(store::ConversationCursor {
                    updated_at: updated.parse().ok()?,
                    id: id.parse().ok()?,
                })
            });
            let found = store.history(&filter, after, PAGE).await?;
            let next = (found.len() == PAGE as usize)
                .then(|| found.last().map(|c| format!("{}_{}", c.updated_at, c.id)))
                .flatten();
            let ids: Vec<ConversationId> = found.iter().map(|c| c.id).collect();
            let mut tags: HashMap<ConversationId, Vec<String>> = HashMap::new();
            for (id, tag) in store.conversation_tags(&ids).await? {
                tags.entry(id).or_default().push(tag);
            }
            let mut names = context::AgentNames::default();
            let mut sites: HashMap<SiteId, String> = HashMap::new();
            let mut rows = Vec::with_capacity(found.len());
            for conversation in found {
                let site = match sites.get(&conversation.site_id) {
                    Some(name) => name.clone(),
                    None => {
                        let name = store
                            .site(conversation.site_id)
                            .await?
                            .map(|s| s.name)
                            .unwrap_or_default();
                        sites.insert(conversation.site_id, name.clone());
                        name
                    }
                };
                let assignee = names.of(store.as_ref(), conversation.assignee_id).await?;
                rows.push(ConversationRow {
                    id: conversation.id,
                    visitor_id: conversation.visitor_id,
                    site,
                    visitor: visitor_name(conversation.visitor_id).await?,
                    status: conversation.status,
                    assignee,
                    updated: minute(conversation.updated_at),
                    tags: tags.remove(&conversation.id).unwrap_or_default(),
                });
            }
            Ok(HistoryPage {
                rows: HistoryRows::Conversations(rows),
                agents,
                next,
            })
        }
    }
}

/// A conversation's whole transcript, oldest first, for the history page's side panel.
#[server(endpoint = "history/transcript")]
pub async fn full_transcript(id: ConversationId) -> Result<Vec<TranscriptLine>, ConsoleError> {
    use crate::context;
    let (_, conversation) = context::my_conversation(id).await?;
    let store = context::store()?;
    let mut names = context::AgentNames::default();
    let mut lines = Vec::new();
    let mut after = 0;
    loop {
        let page = store.messages_after(conversation.id, after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let translations = store::made_translations(store.as_ref(), &page).await?;
        for message in page {
            let translation = translations
                .iter()
                .find(|t| t.seq == message.seq)
                .and_then(|t| t.text.clone());
            let who = names
                .of(store.as_ref(), message.agent_id)
                .await?
                .unwrap_or_default();
            lines.push(TranscriptLine {
                author: message.author,
                who,
                sent: crate::clock::minute(message.created_at),
                text: message.body,
                translation,
                file: message.attachment.map(|a| a.name),
            });
        }
    }
    Ok(lines)
}

/// One message of a transcript as the history page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// Who wrote it.
    pub author: Author,
    /// The agent's name, for agents' messages.
    pub who: String,
    /// When, `YYYY-MM-DD HH:MM` UTC.
    pub sent: String,
    /// The text.
    pub text: String,
    /// Its machine translation, if one was made.
    pub translation: Option<String>,
    /// The name of the file it carries, if any.
    pub file: Option<String>,
}

/// `/history`.
#[component]
pub fn HistoryPage() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| query.with(|q| HistoryParams::from_query(|k| q.get(k))));
    let opened = Memo::new(move |_| {
        query.with(|q| q.get("c").and_then(|c| c.parse::<ConversationId>().ok()))
    });
    let shell = crate::shell::use_shell();
    let sites = Resource::new(|| (), |_| my_sites());
    let page = Resource::new(move || params.get(), history);
    let transcript = Resource::new(
        move || opened.get(),
        |id| async move {
            match id {
                Some(id) => full_transcript(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <crate::ui::Page class="history">
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        let params = params.get_untracked();
                        match (sites.await, page.await) {
                            (Ok(sites), Ok(page)) => {
                                view! {
                                    <h1>{t(lang, Key::HistoryTitle)}</h1>
                                    <Filters params=params.clone() sites agents=page.agents.clone() lang />
                                    <Exports params=params.clone() lang />
                                    <div class="history-body">
                                        <Rows page params lang />
                                        <Transcript transcript lang />
                                    </div>
                                }
                                    .into_any()
                            }
                            (first, second) => {
                                crate::ui::refusal(first.err().into_iter().chain(second.err()), lang)
                            }
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
    }
}

/// The filter form: a GET to this page, so the filters end up in the URL.
#[component]
fn Filters(
    params: HistoryParams,
    sites: Vec<SiteChoice>,
    agents: Vec<(AgentId, String)>,
    lang: Lang,
) -> impl IntoView {
    let status = params.status.clone().unwrap_or_default();
    let rating = params.rating.map(|r| r.to_string()).unwrap_or_default();
    let statuses = [
        ("open", Key::StatusOpen),
        ("pending", Key::StatusPending),
        ("resolved", Key::StatusResolved),
    ];
    view! {
        <form method="get" action="/history" class="history-filters" role="search">
            <input
                type="search"
                name="q"
                value=params.q.clone()
                maxlength=crate::api::MAX_QUERY
                placeholder=t(lang, Key::SearchHistory)
                aria-label=t(lang, Key::SearchHistory)
            />
            <label>
                {t(lang, Key::Site)}
                <select name="site">
                    <option value="">{t(lang, Key::All)}</option>
                    {sites
                        .into_iter()
                        .map(|site| {
                            let selected = params.site == Some(site.id);
                            view! { <option value=site.id.0 selected=selected>{site.name}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                {t(lang, Key::Status)}
                <select name="status">
                    <option value="">{t(lang, Key::All)}</option>
                    {statuses
                        .into_iter()
                        .map(|(value, key)| {
                            view! { <option value=value selected=status == value>{t(lang, key)}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                {t(lang, Key::Tags)}
                <input name="tag" value=params.tag.clone().unwrap_or_default() maxlength="64" />
            </label>
            <label>
                {t(lang, Key::Rated)}
                <select name="rating">
                    <option value="">{t(lang, Key::All)}</option>
                    {(1..=5)
                        .rev()
                        .map(|r: u8| {
                            let value = r.to_string();
                            let label = "★".repeat(r.into());
                            view! { <option value=value.clone() selected=rating == value>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                {t(lang, Key::FromDay)}
                <input type="date" name="from" value=params.from.clone().unwrap_or_default() />
            </label>
            <label>
                {t(lang, Key::ToDay)}
                <input type="date" name="to" value=params.to.clone().unwrap_or_default() />
            </label>
            <label>
                {t(lang, Key::Agent)}
                <select name="agent">
                    <option value="">{t(lang, Key::All)}</option>
                    {agents
                        .into_iter()
                        .map(|(id, name)| {
                            let selected = params.agent == Some(id);
                            view! { <option value=id.0 selected=selected>{name}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            // A visitor is chosen from a row's link; the form keeps the choice, shown here.
            {params.visitor.map(|v| view! {
                <input type="hidden" name="visitor" value=v.0 />
                <span class="chip">{format!("{} #{v}", t(lang, Key::VisitorLabel))} " " <a href="/history">"×"</a></span>
            })}
            <button type="submit">{t(lang, Key::Search)}</button>
        </form>
    }
}

/// Download links for the filtered set.
#[component]
fn Exports(params: HistoryParams, lang: Lang) -> impl IntoView {
    let query = params.query_string();
    let link = move |format: &str| {
        let separator = if query.is_empty() { "" } else { "&" };
        format!("/console/history/export?format={format}{separator}{query}")
    };
    view! {
        <p class="exports">
            {t(lang, Key::Export)} " "
            <a href=link("csv") download="">"CSV"</a> " · "
            <a href=link("json") download="">"JSON"</a>
        </p>
    }
}

/// The marked-up text of a hit.
fn marked(pieces: Vec<(String, bool)>) -> impl IntoView {
    pieces
        .into_iter()
        .map(|(text, hit)| {
            if hit {
                view! { <mark>{text}</mark> }.into_any()
            } else {
                text.into_any()
            }
        })
        .collect_view()
}

/// The page's rows, and the link to the next (older) page.
#[component]
fn Rows(page: HistoryPage, params: HistoryParams, lang: Lang) -> impl IntoView {
    let base = params.query_string();
    let href = move |extra: String| {
        let separator = if base.is_empty() || extra.is_empty() {
            ""
        } else {
            "&"
        };
        format!("/history?{base}{separator}{extra}")
    };
    let open = {
        let href = href.clone();
        move |id: ConversationId| {
            let page = params
                .page
                .as_ref()
                .map(|p| format!("&page={p}"))
                .unwrap_or_default();
            href(format!("c={id}{page}"))
        }
    };
    let rows = match page.rows {
        HistoryRows::Conversations(rows) if rows.is_empty() => {
            view! { <p class="empty">{t(lang, Key::NoResults)}</p> }.into_any()
        }
        HistoryRows::Conversations(rows) => view! {
            <table class="history-list">
                <tbody>
                    {rows
                        .into_iter()
                        .map(|row| {
                            let status = match row.status {
                                ConversationStatus::Open => Key::StatusOpen,
                                ConversationStatus::Pending => Key::StatusPending,
                                ConversationStatus::Resolved => Key::StatusResolved,
                            };
                            view! {
                                <tr data-conversation=row.id.0>
                                    <td>
                                        <a href=open(row.id)>{row.visitor}</a> " "
                                        <a class="only-visitor" href=format!("/history?visitor={}", row.visitor_id) title=t(lang, Key::EarlierChats)>"⌕"</a>
                                    </td>
                                    <td>{row.site}</td>
                                    <td>{t(lang, status)}</td>
                                    <td>{row.assignee.unwrap_or_default()}</td>
                                    <td>{row.tags.join(", ")}</td>
                                    <td><time>{row.updated}</time></td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
        HistoryRows::Hits { messages, leave } => {
            let empty = messages.is_empty() && leave.is_empty();
            view! {
                {empty.then(|| view! { <p class="empty">{t(lang, Key::NoResults)}</p> })}
                <ul class="hits">
                    {messages
                        .into_iter()
                        .map(|hit| {
                            let who = match hit.author {
                                Author::Visitor => hit.visitor.clone(),
                                Author::Agent => t(lang, Key::Agent).to_owned(),
                                Author::System => String::new(),
                            };
                            view! {
                                <li class="hit" data-conversation=hit.conversation_id.0>
                                    <a href=open(hit.conversation_id)>{hit.visitor}</a>
                                    <time>{hit.sent}</time>
                                    <p><b>{who}</b> ": " {marked(hit.pieces)}</p>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
                {(!leave.is_empty()).then(|| view! {
                    <h2>{t(lang, Key::LeaveMessages)}</h2>
                    <ul class="hits leave-hits">
                        {leave
                            .into_iter()
                            .map(|hit| view! {
                                <li class="hit" data-leave-message=hit.id.0>
                                    <span>{hit.from}</span>
                                    <time>{hit.left}</time>
                                    <p>{marked(hit.pieces)}</p>
                                </li>
                            })
                            .collect_view()}
                    </ul>
                })}
            }
            .into_any()
        }
    };
    view! {
        {rows}
        {page.next.map(|next| view! {
            <a class="older" href=href(format!("page={}", encode(&next)))>{t(lang, Key::Older)}</a>
        })}
    }
}

/// The opened conversation's transcript.
#[component]
fn Transcript(
    transcript: Resource<Result<Option<Vec<TranscriptLine>>, ConsoleError>>,
    lang: Lang,
) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match transcript.await {
                    Ok(None) => ().into_any(),
                    Ok(Some(lines)) => view! {
                        <section class="transcript" aria-label=t(lang, Key::Transcript)>
                            <h2>{t(lang, Key::Transcript)}</h2>
                            {lines
                                .into_iter()
                                .map(|line| {
                                    let who = match line.author {
                                        Author::Visitor => t(lang, Key::VisitorLabel).to_owned(),
                                        Author::Agent => line.who,
                                        Author::System => String::new(),
                                    };
                                    let class = format!("line {}", line.author.as_str());
                                    let text = match line.author {
                                        Author::System => crate::clock::system_text(lang, &line.text),
                                        _ => line.text,
                                    };
                                    view! {
                                        <div class=class>
                                            <b>{who}</b>
                                            <time>{line.sent}</time>
                                            <p>{text}</p>
                                            {line.translation.map(|text| view! { <p class="translation">{text}</p> })}
                                            {line.file.map(|f| view! { <p class="file">{f}</p> })}
                                        </div>
                                    }
                                })
                                .collect_view()}
                        </section>
                    }
                    .into_any(),
                    Err(error) => view! { <p role="alert">{error.message(lang)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_string_round_trips_through_the_parser() {
        let params = HistoryParams {
            q: "退款 refund&x=1".into(),
            site: Some(SiteId(3)),
            from: Some("2026-11-01".into()),
            rating: Some(5),
            ..HistoryParams::default()
        };
        let text = params.query_string();
        assert_eq!(
            text,
            "q=%E9%80%80%E6%AC%BE%20refund%26x%3D1&site=3&from=2026-11-01&rating=5"
        );
        let pairs: Vec<(String, String)> = text
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').expect("pair");
                (k.to_owned(), decode(v))
            })
            .collect();
        let parsed = HistoryParams::from_query(|key| {
            pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        });
        assert_eq!(parsed, params);
    }

    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).expect("hex"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("utf-8")
    }
}
