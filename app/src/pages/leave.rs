//! `/leave-messages`: what visitors left while no agent was online, and what was done about it.
//!
//! A list per status (new, in progress, handled) or a search, newest first. Each leave-message
//! can be taken, given to a colleague of its site, marked handled or reopened, annotated, and
//! answered by e-mail from the console (through the server's SMTP relay; the reply is kept as a
//! note). Every server function checks that the leave-message is on one of the agent's sites.
//! The filters are a GET form and the actions plain forms, so the page works before hydration.

use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use protocol::{AgentId, LeaveMessageId, SiteId};
use serde::{Deserialize, Serialize};

/// Leave-messages per page.
pub const PAGE: u32 = 30;
/// Longest note or reply, in characters.
pub const MAX_TEXT: usize = 10_000;
/// Longest reply subject, in characters.
pub const MAX_SUBJECT: usize = 200;

/// A note on a leave-message as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteItem {
    /// Who wrote it.
    pub who: String,
    /// When, `YYYY-MM-DD HH:MM` UTC.
    pub when: String,
    /// What it says.
    pub body: String,
}

/// One leave-message as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveItem {
    /// Its id.
    pub id: LeaveMessageId,
    /// The site's name.
    pub site: String,
    /// The site's id: who it can be given to.
    pub site_id: SiteId,
    /// The name the visitor gave, if any.
    pub name: Option<String>,
    /// How to reach them, as typed.
    pub contact: String,
    /// Whether `contact` is an e-mail address (then the console can reply).
    pub email: bool,
    /// When it was left, `YYYY-MM-DD HH:MM` UTC.
    pub left: String,
    /// The text in pieces, each marked whether it matches the search.
    pub pieces: Vec<(String, bool)>,
    /// `new`, `in_progress` or `handled`.
    pub status: String,
    /// Who is handling it.
    pub assignee: Option<String>,
    /// The notes, oldest first.
    pub notes: Vec<NoteItem>,
}

/// One page of leave-messages, with who they can be given to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeavePage {
    /// The leave-messages.
    pub items: Vec<LeaveItem>,
    /// Agents of the agent's sites: `(site, agent id, name)`.
    pub colleagues: Vec<(SiteId, AgentId, String)>,
    /// The cursor of the next (older) page, when there may be one.
    pub next: Option<String>,
}

/// The page's filters, from its query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveParams {
    /// `new`, `in_progress` or `handled`; all when absent.
    pub status: Option<String>,
    /// Search text.
    #[serde(default)]
    pub q: String,
    /// Where the previous page ended.
    pub page: Option<String>,
}

#[cfg(feature = "ssr")]
mod ssr {
    //! Loading a leave-message the agent may act on.

    use crate::context;
    use crate::error::ConsoleError;

    /// The leave-message `id` if it is on one of the signed-in agent's sites, with the agent.
    pub async fn my_leave_message(
        id: store::LeaveMessageId,
    ) -> Result<(store::Agent, store::LeaveMessage), ConsoleError> {
        let agent = context::require_agent().await?;
        let store = context::store()?;
        let sites = store.agent_sites(agent.id).await?;
        let message = store
            .leave_message(id)
            .await?
            .filter(|m| sites.contains(&m.site_id))
            .ok_or(ConsoleError::NotFound)?;
        Ok((agent, message))
    }

    /// Whether `contact` looks like an e-mail address (a reply can be sent to it).
    pub fn is_email(contact: &str) -> bool {
        let contact = contact.trim();
        contact
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'))
            && !contact.contains(char::is_whitespace)
    }
}

/// A page of the agent's sites' leave-messages.
#[server(endpoint = "leave_messages")]
pub async fn leave_messages(params: LeaveParams) -> Result<LeavePage, ConsoleError> {
    use crate::clock::minute;
    use crate::context;
    use std::collections::HashMap;
    let agent = context::require_agent().await?;
    let store = context::store()?;
    let sites = store.agent_sites(agent.id).await?;
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            store::LeaveMessageStatus::try_from(text.to_owned())
                .map_err(|_| ConsoleError::Invalid)?,
        ),
    };
    if params.q.chars().count() > crate::api::MAX_QUERY {
        return Err(ConsoleError::Invalid);
    }
    let query = store::search::Query::parse(&params.q);
    let page = params.page.as_deref().unwrap_or_default();
    let found = match &query {
        Some(query) => {
            let before = page.parse::<LeaveMessageId>().ok();
            store
                .search_leave_messages(&sites, query, before, PAGE)
                .await?
                .into_iter()
                .filter(|m| status.is_none_or(|s| m.status == s))
                .collect::<Vec<_>>()
        }
        None => {
            let after = page.split_once('_').and_then(|(created, id)| {
                Some(store::LeaveMessageCursor {
                    created_at: created.parse().ok()?,
                    id: id.parse().ok()?,
                })
            });
            store
                .leave_messages_page(&sites, status, after, PAGE)
                .await?
        }
    };
    let next = (found.len() == PAGE as usize)
        .then(|| {
            found.last().map(|m| match query {
                Some(_) => m.id.to_string(),
                None => format!("{}_{}", m.created_at, m.id),
            })
        })
        .flatten();
    let mut names = context::AgentNames::default();
    let mut site_names: HashMap<SiteId, String> = HashMap::new();
    for site in &sites {
        let name = store.site(*site).await?;
        site_names.insert(*site, name.map(|s| s.name).unwrap_or_default());
    }
    let mut items = Vec::with_capacity(found.len());
    for message in found {
        let mut notes = Vec::new();
        for note in store.leave_message_notes(message.id).await? {
            notes.push(NoteItem {
                who: names
                    .of(store.as_ref(), note.agent_id)
                    .await?
                    .unwrap_or_default(),
                when: minute(note.created_at),
                body: note.body,
            });
        }
        items.push(LeaveItem {
            id: message.id,
            site: site_names
                .get(&message.site_id)
                .cloned()
                .unwrap_or_default(),
            site_id: message.site_id,
            email: self::ssr::is_email(&message.contact),
            left: minute(message.created_at),
            pieces: match &query {
                Some(query) => store::search::highlight(&message.body, query),
                None => vec![(message.body.clone(), false)],
            },
            status: message.status.as_str().to_owned(),
            assignee: names.of(store.as_ref(), message.assignee_id).await?,
            name: message.name,
            contact: message.contact,
            notes,
        });
    }
    let mut colleagues = Vec::new();
    for site in &sites {
        for colleague in store.site_agents(&[*site]).await? {
            colleagues.push((*site, colleague.id, colleague.display_name));
        }
    }
    Ok(LeavePage {
        items,
        colleagues,
        next,
    })
}

/// Changes where a leave-message stands: `take` (in progress, by me), `handled`, `reopen` (new,
/// nobody's), or `give` to `assignee`, an agent of its site (in progress).
#[server(endpoint = "leave_messages/act")]
pub async fn act_on_leave_message(
    id: LeaveMessageId,
    action: String,
    #[server(default)] assignee: Option<String>,
) -> Result<(), ConsoleError> {
    use crate::context;
    use store::LeaveMessageStatus as Status;
    let (agent, message) = self::ssr::my_leave_message(id).await?;
    let store = context::store()?;
    let (status, assignee) = match action.as_str() {
        "take" => (Status::InProgress, Some(agent.id)),
        "handled" => (Status::Handled, message.assignee_id.or(Some(agent.id))),
        "reopen" => (Status::New, None),
        "give" => {
            let to = assignee
                .and_then(|a| a.parse::<AgentId>().ok())
                .ok_or(ConsoleError::Invalid)?;
            let members = store.site_agents(&[message.site_id]).await?;
            if !members.iter().any(|m| m.id == to) {
                return Err(ConsoleError::NotFound);
            }
            (Status::InProgress, Some(to))
        }
        _ => return Err(ConsoleError::Invalid),
    };
    store.update_leave_message(id, status, assignee).await?;
    Ok(())
}

/// Adds the agent's note to a leave-message.
#[server(endpoint = "leave_messages/note")]
pub async fn note_leave_message(id: LeaveMessageId, body: String) -> Result<(), ConsoleError> {
    use crate::context;
    let (agent, message) = self::ssr::my_leave_message(id).await?;
    let body = body.trim().to_owned();
    if body.is_empty() || body.chars().count() > MAX_TEXT {
        return Err(ConsoleError::Invalid);
    }
    context::store()?
        .add_leave_message_note(store::NewLeaveMessageNote {
            leave_message_id: message.id,
            agent_id: Some(agent.id),
            body,
            created_at: crate::clock::now(),
        })
        .await?;
    Ok(())
}

/// Answers a leave-message by e-mail to the address the visitor left, keeps the reply as a
/// note and marks the leave-message handled.
#[server(endpoint = "leave_messages/reply")]
pub async fn reply_to_leave_message(
    id: LeaveMessageId,
    subject: String,
    body: String,
) -> Result<(), ConsoleError> {
    use crate::context;
    let (agent, message) = self::ssr::my_leave_message(id).await?;
    let subject = subject.trim().to_owned();
    let body = body.trim().to_owned();
    if !self::ssr::is_email(&message.contact)
        || subject.is_empty()
        || subject.chars().count() > MAX_SUBJECT
        || subject.contains(['\r', '\n'])
        || body.is_empty()
        || body.chars().count() > MAX_TEXT
    {
        return Err(ConsoleError::Invalid);
    }
    let quoted: String = message
        .body
        .lines()
        .map(|line| format!("> {line}\n"))
        .collect();
    let mail = format!("{body}\n\n{quoted}");
    context::send_mail(message.contact.trim(), &subject, mail).await?;
    let store = context::store()?;
    store
        .add_leave_message_note(store::NewLeaveMessageNote {
            leave_message_id: message.id,
            agent_id: Some(agent.id),
            body: format!("✉ {subject}\n\n{body}"),
            created_at: crate::clock::now(),
        })
        .await?;
    store
        .update_leave_message(
            message.id,
            store::LeaveMessageStatus::Handled,
            message.assignee_id.or(Some(agent.id)),
        )
        .await?;
    Ok(())
}

/// `/leave-messages`.
#[component]
pub fn LeavePage() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| {
        query.with(|q| {
            let text = |key: &str| q.get(key).filter(|v| !v.is_empty());
            LeaveParams {
                status: text("status"),
                q: text("q").unwrap_or_default(),
                page: text("page"),
            }
        })
    });
    let act = ServerAction::<ActOnLeaveMessage>::new();
    let note = ServerAction::<NoteLeaveMessage>::new();
    let reply = ServerAction::<ReplyToLeaveMessage>::new();
    let shell = crate::shell::use_shell();
    let page = Resource::new(
        move || {
            (
                params.get(),
                act.version().get(),
                note.version().get(),
                reply.version().get(),
            )
        },
        |(params, ..)| leave_messages(params),
    );
    view! {
        <crate::ui::Page class="leave-page">
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        let params = params.get_untracked();
                        let failed = move || {
                            [act.value().get().and_then(Result::err), note.value().get().and_then(Result::err), reply.value().get().and_then(Result::err)]
                                .into_iter()
                                .flatten()
                                .next()
                                .map(|error| view! { <p role="alert">{error.message(lang)}</p> })
                        };
                        match page.await {
                            Ok(page) => view! {
                                <h1>{t(lang, Key::LeaveMessages)}</h1>
                                <LeaveFilters params=params.clone() lang />
                                {failed}
                                <LeaveList page params lang act note reply />
                            }
                            .into_any(),
                            Err(error) => crate::ui::refusal([error], lang),
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
    }
}

/// The status tabs and the search box.
#[component]
fn LeaveFilters(params: LeaveParams, lang: Lang) -> impl IntoView {
    let current = params.status.clone().unwrap_or_default();
    let tabs = [
        ("", Key::All),
        ("new", Key::LeaveNew),
        ("in_progress", Key::LeaveInProgress),
        ("handled", Key::LeaveHandled),
    ];
    view! {
        <nav class="tabs">
            {tabs
                .into_iter()
                .map(|(status, key)| {
                    let href = if status.is_empty() {
                        "/leave-messages".to_owned()
                    } else {
                        format!("/leave-messages?status={status}")
                    };
                    let current = (current == status).then_some("page");
                    view! { <a href=href aria-current=current>{t(lang, key)}</a> }
                })
                .collect_view()}
        </nav>
        <form method="get" action="/leave-messages" role="search">
            {params.status.clone().map(|s| view! { <input type="hidden" name="status" value=s /> })}
            <input
                type="search"
                name="q"
                value=params.q.clone()
                maxlength=crate::api::MAX_QUERY
                aria-label=t(lang, Key::SearchLeaveMessages)
                placeholder=t(lang, Key::SearchLeaveMessages)
            />
            <button type="submit">{t(lang, Key::Search)}</button>
        </form>
    }
}

/// The leave-messages with their actions, notes and reply form.
#[component]
fn LeaveList(
    page: LeavePage,
    params: LeaveParams,
    lang: Lang,
    act: ServerAction<ActOnLeaveMessage>,
    note: ServerAction<NoteLeaveMessage>,
    reply: ServerAction<ReplyToLeaveMessage>,
) -> impl IntoView {
    let status_label = move |status: &str| match status {
        "new" => t(lang, Key::LeaveNew),
        "in_progress" => t(lang, Key::LeaveInProgress),
        _ => t(lang, Key::LeaveHandled),
    };
    let next = page.next.clone().map(|next| {
        let mut href = format!("/leave-messages?page={next}");
        if let Some(status) = &params.status {
            href.push_str(&format!("&status={status}"));
        }
        view! { <a class="older" href=href>{t(lang, Key::Older)}</a> }
    });
    let colleagues = page.colleagues;
    let empty = page.items.is_empty();
    view! {
        {empty.then(|| view! { <p class="empty">{t(lang, Key::NoResults)}</p> })}
        {page
            .items
            .into_iter()
            .map(|item| {
                let id = item.id;
                let from = match &item.name {
                    Some(name) => format!("{name} · {}", item.contact),
                    None => item.contact.clone(),
                };
                let choices: Vec<(AgentId, String)> = colleagues
                    .iter()
                    .filter(|(site, ..)| *site == item.site_id)
                    .map(|(_, agent, name)| (*agent, name.clone()))
                    .collect();
                let subject = format!("Re: {}", item.site);
                view! {
                    <article class="leave" data-leave-message=id.0 data-status=item.status.clone()>
                        <header>
                            <strong>{from}</strong>
                            <span class="site">{item.site.clone()}</span>
                            <time>{item.left.clone()}</time>
                            <span class="status">{status_label(&item.status)}</span>
                            {item.assignee.clone().map(|a| view! { <span class="assignee">{a}</span> })}
                        </header>
                        <p class="body">
                            {item
                                .pieces
                                .into_iter()
                                .map(|(text, hit)| if hit { view! { <mark>{text}</mark> }.into_any() } else { text.into_any() })
                                .collect_view()}
                        </p>
                        <div class="actions">
                            // Only what applies: take a new one, finish an open one, reopen a
                            // handled one; handing over is for ones not yet handled.
                            {[("take", Key::Take), ("handled", Key::MarkHandled), ("reopen", Key::Reopen)]
                                .into_iter()
                                .filter(|(action, _)| matches!(
                                    (item.status.as_str(), *action),
                                    ("new", "take" | "handled") | ("in_progress", "handled") | ("handled", "reopen")
                                ))
                                .map(|(action, key)| view! {
                                    <ActionForm action=act>
                                        <input type="hidden" name="id" value=id.0 />
                                        <input type="hidden" name="action" value=action />
                                        <button type="submit" class="secondary">{t(lang, key)}</button>
                                    </ActionForm>
                                })
                                .collect_view()}
                            {(item.status != "handled" && !choices.is_empty()).then(|| view! {
                            <ActionForm action=act>
                                <input type="hidden" name="id" value=id.0 />
                                <input type="hidden" name="action" value="give" />
                                <select name="assignee" aria-label=t(lang, Key::TransferTo)>
                                    {choices
                                        .into_iter()
                                        .map(|(agent, name)| view! { <option value=agent.0>{name}</option> })
                                        .collect_view()}
                                </select>
                                <button type="submit" class="secondary">{t(lang, Key::Transfer)}</button>
                            </ActionForm>
                            })}
                        </div>
                        <ul class="notes">
                            {item
                                .notes
                                .into_iter()
                                .map(|n| view! {
                                    <li><b>{n.who}</b> " " <time>{n.when}</time><p>{n.body}</p></li>
                                })
                                .collect_view()}
                        </ul>
                        <ActionForm action=note attr:class="note-form">
                            <input type="hidden" name="id" value=id.0 />
                            <input name="body" required maxlength=MAX_TEXT aria-label=t(lang, Key::InternalNote) placeholder=t(lang, Key::InternalNote) />
                            <button type="submit" class="secondary">{t(lang, Key::Add)}</button>
                        </ActionForm>
                        {item.email.then(|| view! {
                            <ActionForm action=reply attr:class="reply-form">
                                <input type="hidden" name="id" value=id.0 />
                                <input name="subject" value=subject required maxlength=MAX_SUBJECT aria-label=t(lang, Key::Subject) />
                                <textarea name="body" required maxlength=MAX_TEXT aria-label=t(lang, Key::ReplyByEmail) placeholder=t(lang, Key::ReplyByEmail)></textarea>
                                <button type="submit">{t(lang, Key::ReplyByEmail)}</button>
                            </ActionForm>
                        })}
                    </article>
                }
            })
            .collect_view()}
        {next}
    }
}
