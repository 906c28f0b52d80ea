//! The agent's desk: the inbox of conversations (filtered by status and owner, with unread
//! counts), the open conversation, and the visitors on the sites right now. The data comes
//! from `api::inbox`, loaded once per tab by the shell and kept live.

mod conversation;
mod visitors;

use crate::i18n::{Key, Lang, t};
use crate::shell::{Console, use_shell};
use leptos::prelude::*;
use protocol::ConversationStatus;

/// The page agents land on after signing in: the conversations and the visitors on the sites.
/// The shell loaded the desk and keeps it live; this page only shows it.
#[component]
pub fn InboxPage() -> impl IntoView {
    let shell = use_shell();
    view! {
        <crate::ui::Page class="desk-page">
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        match shell.console().await {
                            Ok(console) => view! { <DeskView console lang /> }.into_any(),
                            Err(error) => crate::ui::refusal([error], lang),
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
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
                    Some(id) => view! { <conversation::ConversationView live id me lang colleagues teams translating_sites profile /> }.into_any(),
                    None => view! { <p class="empty">{t(lang, Key::PickConversation)}</p> }.into_any(),
                }}
            </section>
            <aside class="visitors-pane">
                <visitors::VisitorList live lang sites />
            </aside>
        </div>
    }
}
