//! The conversation's header: who the visitor is and whether they are still here, who has
//! the conversation, its tags and snooze, and the actions on it (pick up, pending, snooze,
//! resolve or reopen, and the "more" menu).

use crate::api::inbox::{Colleague, TeamChoice};
use crate::i18n::{Key, Lang, t};
use crate::live::Live;
use leptos::prelude::*;
use protocol::{AgentFrame, AgentId, Assign, ConversationId, ConversationStatus, StatusRecord};

use super::Head;
use super::menu::MoreActions;

/// The header of conversation `id` as `me` sees it.
#[component]
pub(super) fn ConversationHead(
    live: Live,
    id: ConversationId,
    me: AgentId,
    lang: Lang,
    /// Only what the header shows: it is drawn again when one of these changes, not on every
    /// message, so a half-typed transfer note survives.
    head: Memo<Option<Head>>,
    colleagues: StoredValue<Vec<Colleague>>,
    teams: StoredValue<Vec<TeamChoice>>,
    /// Whether the conversation's site translates.
    site_translates: Signal<bool>,
    /// On a phone, whether the visitor's profile shows instead of the transcript.
    profile: RwSignal<bool>,
    /// Whether the composer's emoji list is open: a status change closes it.
    emoji_open: RwSignal<bool>,
    name_of: Callback<AgentId, String>,
) -> impl IntoView {
    let selected = crate::shell::use_shell().selected;
    let visitor_id = live
        .desk
        .with_untracked(|d| d.threads.get(&id).map(|t| t.visitor_id));
    let transfer_to = RwSignal::new(String::new());
    let set_status = move |record: StatusRecord| {
        emoji_open.set(false);
        live.set_status(id, record);
    };
    let snooze = Callback::new(move |until: i64| {
        set_status(StatusRecord {
            status: ConversationStatus::Pending,
            until: Some(until),
        })
    });
    move || {
        let Some(thread) = head.get() else {
            return view! { <p class="empty">{t(lang, Key::PickConversation)}</p> }.into_any();
        };
        let status = thread.status;
        let assignee = thread.assignee;
        view! {
            <header class="conversation-head" data-conversation=id.0 data-status=status.as_str()>
                <button
                    type="button"
                    class="secondary back"
                    aria-label=t(lang, Key::BackToList)
                    on:click=move |_| {
                        if profile.get_untracked() {
                            profile.set(false);
                        } else {
                            selected.set(None);
                        }
                    }
                >
                    {crate::icons::back()}
                </button>
                {view! {
                <div class="head-who">
                    <strong>{thread.visitor}</strong>
                    <span class="assignee">
                        {t(lang, Key::AssignedTo)} " "
                        {match assignee {
                            Some(agent) if agent == me => t(lang, Key::You).to_string(),
                            Some(agent) => name_of.run(agent),
                            None => t(lang, Key::Nobody).to_string(),
                        }}
                    </span>
                    {move || {
                        let here = visitor_id.is_some_and(|v| live.desk.with(|d| d.visitors.contains_key(&v)));
                        view! {
                            <span class="presence" data-online=here.to_string()>
                                {t(lang, if here { Key::VisitorHere } else { Key::VisitorLeft })}
                            </span>
                        }
                    }}
                    {thread.snoozed_until.map(|until| view! {
                        <span class="snoozed" data-until=until>
                            {t(lang, Key::SnoozedUntil)} " " {crate::clock::moment(until, lang)}
                        </span>
                    })}
                    <ul class="tags">
                        {thread.tags.iter().map(|tag| view! { <li class="tag">{tag.clone()}</li> }).collect_view()}
                    </ul>
                </div>
                }.into_any()}
                <div class="head-actions">
                    <button
                        type="button"
                        class="secondary profile-toggle"
                        aria-pressed=move || profile.get().to_string()
                        on:click=move |_| profile.update(|shown| *shown = !*shown)
                    >
                        {t(lang, Key::AboutVisitor)}
                    </button>
                    {(assignee != Some(me)).then(|| view! {
                        <button type="button" class="secondary" on:click=move |_| {
                            live.send(AgentFrame::Assign(Assign { conversation_id: id, to: Some(me), team: None, note: None }))
                        }>{t(lang, Key::PickUp)}</button>
                    })}
                    {(status == ConversationStatus::Open).then(|| view! {
                        <button type="button" class="secondary" data-action="pending" on:click=move |_| set_status(ConversationStatus::Pending.into())>
                            {t(lang, Key::SetPending)}
                        </button>
                        <SnoozeMenu lang snooze />
                    }.into_any())}
                    {if status == ConversationStatus::Open {
                        view! {
                            <button type="button" data-action="resolve" on:click=move |_| set_status(ConversationStatus::Resolved.into())>
                                {t(lang, Key::Resolve)}
                            </button>
                        }.into_any()
                    } else {
                        view! {
                            <button type="button" class="secondary" data-action="reopen" on:click=move |_| set_status(ConversationStatus::Open.into())>
                                {t(lang, Key::Reopen)}
                            </button>
                        }.into_any()
                    }}
                    // Erased: the header's type is otherwise too deep for the compiler.
                    {view! {
                        <MoreActions
                            live id lang
                            tags=thread.tags
                            translating=thread.translating
                            site_translates=site_translates.get()
                            site=thread.site
                            assignee colleagues teams transfer_to
                        />
                    }.into_any()}
                </div>
            </header>
        }.into_any()
    }
}

/// Snooze: parks the conversation until a moment the agent picks (in an hour, tomorrow or
/// next Monday at 9:00 on their clock, or any time); the server reopens it then, or as soon
/// as the visitor writes.
#[component]
fn SnoozeMenu(lang: Lang, snooze: Callback<i64>) -> impl IntoView {
    use crate::clock::{at_hour, days_to_monday, now, parse_local};
    let custom = RwSignal::new(String::new());
    let pick = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if let Some(until) = parse_local(&custom.get_untracked()) {
            snooze.run(until);
        }
    };
    view! {
        <details class="snooze">
            <summary class="button secondary" data-action="snooze">{t(lang, Key::Snooze)}</summary>
            <div class="menu">
                <button type="button" class="secondary" data-snooze="hour" on:click=move |_| snooze.run(now() + 3_600_000)>
                    {t(lang, Key::SnoozeHour)}
                </button>
                <button type="button" class="secondary" data-snooze="tomorrow" on:click=move |_| snooze.run(at_hour(now(), 1, 9))>
                    {t(lang, Key::SnoozeTomorrow)}
                </button>
                <button type="button" class="secondary" data-snooze="monday" on:click=move |_| snooze.run(at_hour(now(), days_to_monday(now()), 9))>
                    {t(lang, Key::SnoozeMonday)}
                </button>
                <form class="snooze-until" on:submit=pick>
                    <input
                        type="datetime-local"
                        required
                        aria-label=t(lang, Key::SnoozeUntil)
                        on:input=move |event| custom.set(event_target_value(&event))
                    />
                    <button type="submit">{t(lang, Key::Snooze)}</button>
                </form>
            </div>
        </details>
    }
}
