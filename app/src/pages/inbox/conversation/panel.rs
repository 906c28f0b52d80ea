//! The visitor's side of a conversation: what they told, what the host page said about them,
//! the pages they are looking at now, their rating and their earlier conversations.

use crate::i18n::{Key, Lang, t};
use crate::live::Live;
use leptos::prelude::*;
use protocol::{ConversationId, ConversationStatus};

/// What the side panel shows of a conversation's visitor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VisitorCard {
    /// The name they gave.
    pub name: Option<String>,
    /// The e-mail they gave.
    pub email: Option<String>,
    /// What the host page said about them (`Kefu.identify`).
    pub attributes: Vec<(String, String)>,
    /// First contact, UTC milliseconds.
    pub first_seen: i64,
    /// Their other conversations, newest first: (id, status, last activity).
    pub past: Vec<(protocol::ConversationId, ConversationStatus, i64)>,
    /// How the visitor rated this conversation (1–5) and what they added, once resolved.
    pub rating: Option<(i64, Option<String>)>,
}

/// The visitor of conversation `id`, with their earlier conversations.
#[server(endpoint = "visitor_profile")]
pub async fn visitor_profile(
    id: protocol::ConversationId,
) -> Result<VisitorCard, crate::error::ConsoleError> {
    use crate::context;
    let (_, conversation) = context::my_conversation(id).await?;
    let store = context::store()?;
    let visitor = store
        .visitor(conversation.visitor_id)
        .await?
        .ok_or(crate::error::ConsoleError::NotFound)?;
    let past = store
        .visitor_conversations(visitor.id)
        .await?
        .into_iter()
        .filter(|c| c.id != id)
        .map(|c| (c.id, c.status, c.updated_at))
        .collect();
    let rating = store.rating(id).await?.map(|r| (r.score, r.comment));
    Ok(VisitorCard {
        rating,
        name: visitor.name,
        email: visitor.email,
        attributes: visitor.attributes.0.into_iter().collect(),
        first_seen: visitor.created_at,
        past,
    })
}

/// Who the visitor is: what they told, what the page said, where they are now, and their
/// earlier conversations. Loaded when the conversation opens.
#[component]
pub(super) fn VisitorPanel(live: Live, id: ConversationId, lang: Lang) -> impl IntoView {
    let profile = LocalResource::new(move || visitor_profile(id));
    let visitor = live
        .desk
        .with_untracked(|d| d.threads.get(&id).map(|t| t.visitor_id));
    view! {
        <aside class="visitor-panel" aria-label=t(lang, Key::AboutVisitor)>
            {move || {
                profile
                    .get()
                    .and_then(Result::ok)
                    .map(|p| {
                        view! {
                            {p.rating.map(|(score, comment)| {
                                let stars = "★".repeat(score.clamp(0, 5) as usize);
                                view! {
                                    <p class="rating" data-score=score>
                                        {t(lang, Key::Rated)} ": " {stars}
                                        {comment.map(|c| view! { <q>{c}</q> })}
                                    </p>
                                }
                            })}
                            <dl>
                                {p.name.map(|n| view! { <dt>{t(lang, Key::Name)}</dt><dd class="name">{n}</dd> })}
                                {p.email.map(|e| view! { <dt>{t(lang, Key::Email)}</dt><dd class="email">{e}</dd> })}
                                {p
                                    .attributes
                                    .into_iter()
                                    .map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> })
                                    .collect_view()}
                            </dl>
                            {(!p.past.is_empty()).then(|| view! {
                                <h3>{t(lang, Key::EarlierChats)}</h3>
                                <ul class="past">
                                    {p.past
                                        .into_iter()
                                        .map(|(past, status, _)| view! {
                                            <li data-conversation=past.0>"#" {past.0} " · " {status_text(status, lang)}</li>
                                        })
                                        .collect_view()}
                                </ul>
                            })}
                        }
                    })
            }}
            {move || {
                let pages = visitor.and_then(|v| live.desk.with(|d| d.visitors.get(&v).map(|o| o.pages.clone())));
                pages.map(|pages| view! {
                    <h3>{t(lang, Key::PagesVisited)}</h3>
                    <ol class="pages-visited">
                        {pages.into_iter().rev().map(|(url, title, _)| view! {
                            <li><span>{title.unwrap_or_else(|| url.clone())}</span><small>{url}</small></li>
                        }).collect_view()}
                    </ol>
                })
            }}
        </aside>
    }
}

/// A status in the agent's language.
fn status_text(status: ConversationStatus, lang: Lang) -> &'static str {
    match status {
        ConversationStatus::Open => t(lang, Key::StatusOpen),
        ConversationStatus::Pending => t(lang, Key::StatusPending),
        ConversationStatus::Resolved => t(lang, Key::StatusResolved),
    }
}
