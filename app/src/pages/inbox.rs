//! The agent's inbox: the open and pending conversations of the agent's sites, most recent
//! first, each with its visitor and newest message. Rendered on the server, so the list is in
//! the HTML before any script runs. Live updates arrive with the console's real-time client.

use crate::auth::{ConsoleError, Logout, current_agent};
use crate::i18n::{Key, Lang, LanguageSwitch, SetLanguage, console_lang, t};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One conversation in the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    /// The conversation, to open it.
    pub conversation_id: i64,
    /// The site it came from: agents often answer several.
    pub site: String,
    /// Who is asking: the name they gave, or a stable label when they gave none.
    pub visitor: String,
    /// The newest message, cut to a line for the list.
    pub preview: String,
    /// `open` or `pending` (resolved conversations are not in the inbox).
    pub status: String,
    /// Last activity, UTC milliseconds; the list is sorted by it.
    pub updated_at: i64,
}

/// The inbox of the signed-in agent: only conversations of sites they belong to.
#[server(endpoint = "inbox")]
pub async fn inbox() -> Result<Vec<InboxItem>, ConsoleError> {
    use crate::auth::ssr;
    use std::collections::HashMap;
    /// How many conversations the inbox shows.
    const INBOX_SIZE: u32 = 50;
    /// How many of a conversation's newest messages are searched for its preview.
    const PREVIEW_LOOKBACK: u32 = 5;
    /// Longest preview, in characters.
    const PREVIEW_CHARS: usize = 120;
    let agent = ssr::require_agent().await?;
    let store = ssr::store()?;
    let site_ids = store.agent_sites(agent.id).await.map_err(ssr::internal)?;
    let heads = store
        .site_conversation_heads(&site_ids, INBOX_SIZE)
        .await
        .map_err(ssr::internal)?;
    let mut site_names: HashMap<i64, String> = HashMap::new();
    let mut items = Vec::with_capacity(heads.len());
    for head in heads {
        if let std::collections::hash_map::Entry::Vacant(entry) = site_names.entry(head.site_id) {
            let site = store.site(head.site_id).await.map_err(ssr::internal)?;
            entry.insert(site.map(|s| s.name).unwrap_or_default());
        }
        let visitor = store
            .visitor(head.visitor_id)
            .await
            .map_err(ssr::internal)?
            .and_then(|v| v.name)
            .unwrap_or_else(|| format!("Visitor #{}", head.visitor_id));
        // The newest written message: `system` ones record status changes, not words.
        let newest = store
            .messages_before(head.id, None, PREVIEW_LOOKBACK)
            .await
            .map_err(ssr::internal)?;
        let preview = newest
            .iter()
            .find(|m| m.author != protocol::Author::System)
            .map(|m| match (&m.attachment, m.body.is_empty()) {
                (Some(file), true) => format!("📎 {}", file.name),
                _ => m.body.chars().take(PREVIEW_CHARS).collect(),
            })
            .unwrap_or_default();
        items.push(InboxItem {
            conversation_id: head.id,
            site: site_names.get(&head.site_id).cloned().unwrap_or_default(),
            visitor,
            preview,
            status: head.status.as_str().to_string(),
            updated_at: head.updated_at,
        });
    }
    Ok(items)
}

/// The page agents land on after signing in; sends anyone without a session to `/login`.
#[component]
pub fn InboxPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| current_agent());
    let conversations = Resource::new(|| (), |_| inbox());
    let logout = ServerAction::<Logout>::new();
    let switch = ServerAction::<SetLanguage>::new();
    let lang = Resource::new(
        move || switch.version().get(),
        |_| async { console_lang().await.unwrap_or_default() },
    );
    // Effects run only in the browser, so this marks the moment hydration finished.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <main class="page" data-hydrated=move || hydrated.get().then_some("true")>
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || Suspend::new(async move {
                    let lang = lang.await;
                    match (me.await, conversations.await) {
                        (Ok(agent), Ok(items)) => {
                            view! {
                                <header class="topbar">
                                    <strong>"Kefu"</strong>
                                    <span class="who">{agent.display_name} " · " {agent.email}</span>
                                    <a href="/canned">{t(lang, Key::CannedTitle)}</a>
                                    <LanguageSwitch lang action=switch />
                                    <ActionForm action=logout>
                                        <button type="submit" class="secondary">
                                            {t(lang, Key::SignOut)}
                                        </button>
                                    </ActionForm>
                                </header>
                                <InboxList items lang />
                            }
                                .into_any()
                        }
                        (first, second) => {
                            super::refusal(first.err().into_iter().chain(second.err()), lang)
                        }
                    }
                })}
            </Suspense>
        </main>
    }
}

/// The conversations, or a line saying there are none.
#[component]
fn InboxList(items: Vec<InboxItem>, lang: Lang) -> impl IntoView {
    if items.is_empty() {
        return view! { <p class="empty">{t(lang, Key::NoConversations)}</p> }.into_any();
    }
    view! {
        <ul class="inbox">
            {items
                .into_iter()
                .map(|item| {
                    view! {
                        <li class="conversation" data-conversation=item.conversation_id data-status=item.status>
                            <strong class="visitor">{item.visitor}</strong>
                            <span class="site">{item.site}</span>
                            <p class="preview">{item.preview}</p>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}
