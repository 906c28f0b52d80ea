//! The conversation's "more" menu: its tags, translation on or off, the transfer, and the ban.
//! Each form talks to its own server function; what changes comes back live.

use crate::api::inbox::{Colleague, TeamChoice};
use crate::i18n::{Key, Lang, t};
use crate::live::Live;
use leptos::prelude::*;
use protocol::{AgentId, ConversationId, SiteId};

use super::transfer::TransferPicker;

/// What the menu needs of the conversation as the header last drew it.
#[component]
pub(super) fn MoreActions(
    live: Live,
    id: ConversationId,
    lang: Lang,
    tags: Vec<String>,
    translating: bool,
    /// Whether the conversation's site translates (else there is no switch).
    site_translates: bool,
    site: SiteId,
    assignee: Option<AgentId>,
    colleagues: StoredValue<Vec<Colleague>>,
    teams: StoredValue<Vec<TeamChoice>>,
    /// The transfer's pick, kept while the header is drawn again.
    transfer_to: RwSignal<String>,
) -> impl IntoView {
    view! {
        <details class="more">
            <summary class="button secondary" aria-label=t(lang, Key::MoreActions)>
                {crate::icons::more()}
            </summary>
            <div class="menu">
                <TagEditor id tags lang />
                {site_translates.then(|| view! {
                    <label class="translating">
                        <input
                            type="checkbox"
                            prop:checked=translating
                            on:change=move |event| {
                                let on = event_target_checked(&event);
                                leptos::task::spawn_local(async move {
                                    if set_translating(id, on).await.is_ok() {
                                        live.desk.update(|d| {
                                            if let Some(thread) = d.threads.get_mut(&id) {
                                                thread.translating = on;
                                            }
                                        });
                                    }
                                });
                            }
                        />
                        " " {t(lang, Key::Translating)}
                    </label>
                })}
                <TransferPicker live id site assignee colleagues teams lang choice=transfer_to />
                <BanForm id lang />
            </div>
        </details>
    }
}

/// The conversation's tags, edited as one comma-separated line; the change comes back live.
#[component]
fn TagEditor(id: ConversationId, tags: Vec<String>, lang: Lang) -> impl IntoView {
    let text = RwSignal::new(tags.join(", "));
    let refused = RwSignal::new(false);
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let tags = text.get_untracked();
        leptos::task::spawn_local(async move {
            refused.set(set_tags(id, tags).await.is_err());
        });
    };
    view! {
        <form class="tag-editor" on:submit=save>
            <input
                type="text"
                aria-label=t(lang, Key::Tags)
                placeholder=t(lang, Key::Tags)
                aria-invalid=move || refused.get().then_some("true")
                prop:value=move || text.get()
                on:input=move |event| text.set(event_target_value(&event))
            />
            <button type="submit" class="secondary">{t(lang, Key::SaveTags)}</button>
        </form>
    }
}

#[cfg(feature = "ssr")]
/// Most tags on one conversation.
const MAX_TAGS: usize = 10;
#[cfg(feature = "ssr")]
/// Longest tag, in characters.
const MAX_TAG_CHARS: usize = 32;

#[cfg(feature = "ssr")]
/// Tags as agents type them ("VIP, refund ,退款") made into the stored set: trimmed,
/// lower-case, each once, sorted. `None` when one is too long or there are too many.
fn normalise_tags(text: &str) -> Option<Vec<String>> {
    let mut tags: Vec<String> = text
        .split([',', '，'])
        .map(|tag| {
            tag.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .filter(|tag| !tag.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    (tags.len() <= MAX_TAGS && tags.iter().all(|t| t.chars().count() <= MAX_TAG_CHARS))
        .then_some(tags)
}

/// Sets conversation `id`'s tags (comma-separated) and tells the site's consoles.
#[server(endpoint = "tags/set")]
pub async fn set_tags(
    id: protocol::ConversationId,
    tags: String,
) -> Result<(), crate::error::ConsoleError> {
    use crate::context;
    use crate::error::ConsoleError;
    let (_, conversation) = context::my_conversation(id).await?;
    let tags = normalise_tags(&tags).ok_or(ConsoleError::Invalid)?;
    context::store()?.set_conversation_tags(id, &tags).await?;
    let frame = protocol::ServerFrame::Tags {
        event_seq: 0,
        conversation_id: id,
        tags,
    };
    context::publish_event(&conversation, "tags", frame).await
}

/// The ban form in a conversation's menu: a reason and a duration, then one click.
#[component]
fn BanForm(id: ConversationId, lang: Lang) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let days = RwSignal::new(7_i64);
    let outcome = RwSignal::new(None::<Result<(), crate::error::ConsoleError>>);
    let ban = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let (words, days) = (reason.get_untracked(), days.get_untracked());
        leptos::task::spawn_local(async move {
            outcome.set(Some(ban_visitor(id, words, days).await));
        });
    };
    view! {
        <form class="ban" on:submit=ban>
            <input
                type="text"
                required
                maxlength="500"
                aria-label=t(lang, Key::Reason)
                placeholder=t(lang, Key::Reason)
                prop:value=move || reason.get()
                on:input=move |event| reason.set(event_target_value(&event))
            />
            <select
                aria-label=t(lang, Key::ForDays)
                on:change=move |event| days.set(event_target_value(&event).parse().unwrap_or(7))
            >
                {[(1_i64, Key::OneDay), (7, Key::OneWeek), (30, Key::OneMonth), (0, Key::Forever)]
                    .into_iter()
                    .map(|(value, key)| view! { <option value=value selected=value == 7>{t(lang, key)}</option> })
                    .collect_view()}
            </select>
            <button type="submit" class="danger">{t(lang, Key::BanVisitor)}</button>
            {move || outcome.get().map(|result| match result {
                Ok(()) => view! { <p role="status">{t(lang, Key::VisitorBanned)}</p> }.into_any(),
                Err(error) => view! { <p class="form-error" role="alert">{error.message(lang)}</p> }.into_any(),
            })}
        </form>
    }
}

/// Bans the conversation's visitor from its site, with a reason and for a number of days (0:
/// for ever); their open widgets are told at once.
#[server(endpoint = "conversation/ban")]
pub async fn ban_visitor(
    id: protocol::ConversationId,
    reason: String,
    days: i64,
) -> Result<(), crate::error::ConsoleError> {
    use crate::context;
    let (_, conversation) = context::my_conversation(id).await?;
    let reason = crate::api::bans::ban_reason(&reason, days)?;
    let now = crate::clock::now();
    context::store()?
        .create_ban(store::NewBan {
            site_id: conversation.site_id,
            visitor_id: Some(conversation.visitor_id),
            ip_cidr: None,
            reason,
            expires_at: (days > 0).then(|| now + days * crate::clock::DAY_MS),
            created_at: now,
        })
        .await?;
    let hub = context::hub()?;
    hub.copies_stale();
    hub.banned(conversation.visitor_id);
    Ok(())
}

/// Turns translation on or off for conversation `id`.
#[server(endpoint = "conversation/translating")]
pub async fn set_translating(
    id: protocol::ConversationId,
    on: bool,
) -> Result<(), crate::error::ConsoleError> {
    use crate::context;
    let (_, conversation) = context::my_conversation(id).await?;
    context::store()?
        .set_conversation_translating(conversation.id, on)
        .await
        .map_err(crate::error::ConsoleError::from)
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_lowered_and_kept_once() {
        assert_eq!(
            normalise_tags(" VIP, refund ,退款，vip,, "),
            Some(vec!["refund".to_string(), "vip".into(), "退款".into()])
        );
        assert_eq!(normalise_tags(""), Some(Vec::new()));
        assert_eq!(normalise_tags(&"x".repeat(MAX_TAG_CHARS + 1)), None);
        let many: Vec<String> = (0..=MAX_TAGS).map(|n| n.to_string()).collect();
        assert_eq!(normalise_tags(&many.join(",")), None);
    }
}
