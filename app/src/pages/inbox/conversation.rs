//! One conversation on the desk: its transcript (paged backwards on demand), what the visitor
//! is typing, the composer, and the actions an agent takes on it (pick up, resolve, reopen).
//!
//! Everything shown comes from the live desk; actions go out as frames, and their effects come
//! back as frames like everyone else's, so two agents' screens never disagree.

use crate::api::inbox::{Colleague, TeamChoice};
use crate::i18n::{Key, Lang, t};
use crate::live::{Live, Thread};
use crate::ports::Draft;
use leptos::prelude::*;
use protocol::{
    AgentFrame, AgentId, AgentStatus, Assign, Author, ConversationId, ConversationStatus, Message,
    SiteId, StatusRecord, Typing,
};

/// The composer's emoji, the ones support chats use most.
const EMOJI: [&str; 16] = [
    "😀", "😊", "🙂", "😉", "😂", "🤔", "😅", "🙏", "👍", "👌", "👋", "🎉", "❤️", "✅", "📦", "💳",
];

/// How many canned replies the composer offers for a `/shortcut` at once.
const MAX_SUGGESTIONS: usize = 5;

/// Typing frames repeat at most this often while the agent keeps typing (protocol: 3 s).
const TYPING_REPEAT_MS: f64 = 3_000.0;

/// What the conversation's header shows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    visitor: String,
    status: ConversationStatus,
    snoozed_until: Option<i64>,
    assignee: Option<AgentId>,
    site: SiteId,
    tags: Vec<String>,
    translating: bool,
}

/// The conversation `id` as `me` sees it.
#[component]
pub fn ConversationView(
    live: Live,
    id: ConversationId,
    me: AgentId,
    lang: Lang,
    colleagues: StoredValue<Vec<Colleague>>,
    teams: StoredValue<Vec<TeamChoice>>,
    translating_sites: StoredValue<Vec<SiteId>>,
    /// On a phone, whether the visitor's profile shows instead of the transcript.
    profile: RwSignal<bool>,
) -> impl IntoView {
    let selected = crate::shell::use_shell().selected;
    let visitor_id = live
        .desk
        .with_untracked(|d| d.threads.get(&id).map(|t| t.visitor_id));
    let name_of = move |agent: AgentId| {
        colleagues
            .with_value(|all| all.iter().find(|c| c.id == agent).map(|c| c.name.clone()))
            .unwrap_or_else(|| format!("#{}", agent.0))
    };
    let transfer_to = RwSignal::new(String::new());
    // Only what the header shows: the header (and the forms in it) is drawn again when one of
    // these changes, not on every message, so a half-typed transfer note survives.
    let head = Memo::new(move |_| {
        live.desk.with(|d| {
            d.threads.get(&id).map(|t| Head {
                visitor: t.visitor_label(),
                status: t.status,
                snoozed_until: t.snoozed_until,
                assignee: t.assignee,
                site: t.site_id,
                tags: t.tags.clone(),
                translating: t.translating,
            })
        })
    });
    let draft = RwSignal::new(String::new());
    let typing_sent = StoredValue::new(None::<f64>);
    let loading = RwSignal::new(false);
    let emoji_open = RwSignal::new(false);
    let note_mode = RwSignal::new(false);
    // Earlier notes come with the conversation; later ones arrive live.
    let earlier_notes = LocalResource::new(move || notes(id.0));
    Effect::new(move |_| {
        if let Some(Ok(loaded)) = earlier_notes.get() {
            live.desk.update(|d| d.add_notes(loaded));
        }
    });
    let file_refused = RwSignal::new(false);
    // The draft as the visitor would read it, after the agent asked (or why not).
    let draft_translation = RwSignal::new(None::<Result<Draft, crate::error::ConsoleError>>);
    let site_translates = move || {
        let site = live
            .desk
            .with_untracked(|d| d.threads.get(&id).map(|t| t.site_id));
        site.is_some_and(|site| translating_sites.with_value(|sites| sites.contains(&site)))
    };
    let file_input = NodeRef::<leptos::html::Input>::new();
    // Fetched in the browser when the conversation opens; `/shortcut` completes from it.
    let canned = LocalResource::new(crate::api::canned::canned_replies);
    let site = live
        .desk
        .with_untracked(|d| d.threads.get(&id).map(|t| t.site_id.0));
    let suggestions = move || -> Vec<(String, String)> {
        let draft = draft.get();
        let Some(word) = draft
            .strip_prefix('/')
            .filter(|w| !w.contains(char::is_whitespace))
        else {
            return Vec::new();
        };
        let Some(Ok(replies)) = canned.get() else {
            return Vec::new();
        };
        replies
            .into_iter()
            .filter(|r| Some(r.site_id) == site && r.shortcut.starts_with(word))
            .take(MAX_SUGGESTIONS)
            .map(|r| (r.shortcut, r.body))
            .collect()
    };

    // The agent is looking at it: report what they have seen whenever more arrives.
    Effect::new(move |_| {
        let cursor = live.desk.with(|d| d.threads.get(&id).map(|t| t.cursor));
        if cursor.is_some()
            && let Some(up_to_seq) = live
                .desk
                .try_maybe_update(|d| {
                    let seen = d.mark_read(id);
                    (seen.is_some(), seen)
                })
                .flatten()
        {
            live.send(AgentFrame::Read(protocol::Read {
                conversation_id: id,
                up_to_seq,
            }));
        }
    });

    let stop_typing = move || {
        if typing_sent.get_value().is_some() {
            typing_sent.set_value(None);
            live.send(AgentFrame::Typing(Typing {
                conversation_id: id,
                typing: false,
            }));
        }
    };
    let submit = move || {
        let body = draft.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        draft.set(String::new());
        draft_translation.set(None);
        if note_mode.get_untracked() {
            // A note goes through a server function; on failure the words come back.
            leptos::task::spawn_local(async move {
                if add_note(id.0, body.clone()).await.is_err() {
                    draft.set(body);
                }
            });
            return;
        }
        stop_typing();
        live.say(id, body, None);
    };
    let on_input = move |event: leptos::ev::Event| {
        let text = event_target_value(&event);
        let now = live.now.get_untracked();
        if text.is_empty() {
            stop_typing();
        } else if typing_sent
            .get_value()
            .is_none_or(|sent| now - sent >= TYPING_REPEAT_MS)
        {
            typing_sent.set_value(Some(now));
            live.send(AgentFrame::Typing(Typing {
                conversation_id: id,
                typing: true,
            }));
        }
        draft.set(text);
    };
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
    let load_earlier = move |_: ()| {
        let Some(before) = live
            .desk
            .with_untracked(|d| d.threads.get(&id).map(|t| t.oldest))
        else {
            return;
        };
        loading.set(true);
        leptos::task::spawn_local(async move {
            if let Ok(page) = crate::api::inbox::transcript(id.0, before).await {
                live.desk.update(|d| {
                    d.add_history(id, page.messages);
                    d.add_translations(id, page.translations);
                });
            }
            loading.set(false);
        });
    };

    view! {
        {move || {
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
                                Some(agent) => name_of(agent),
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
                        <details class="more">
                            <summary class="button secondary" aria-label=t(lang, Key::MoreActions)>
                                {crate::icons::more()}
                            </summary>
                            <div class="menu">
                                <TagEditor id tags=thread.tags lang />
                                {site_translates().then(|| view! {
                                    <label class="translating">
                                        <input
                                            type="checkbox"
                                            prop:checked=thread.translating
                                            on:change=move |event| {
                                                let on = event_target_checked(&event);
                                                leptos::task::spawn_local(async move {
                                                    if set_translating(id.0, on).await.is_ok() {
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
                                <TransferPicker live id site=thread.site assignee colleagues teams lang choice=transfer_to />
                                <BanForm id lang />
                            </div>
                        </details>
                        }.into_any()}
                    </div>
                </header>
            }.into_any()
        }}
        {move || {
            live.desk.with(|d| d.threads.get(&id).and_then(|t| t.handover.clone())).map(|(by, words)| {
                view! {
                    <p class="handover" role="note">
                        <strong>{t(lang, Key::NoteFrom)} " " {name_of(by)} ": "</strong>
                        {words}
                    </p>
                }
            })
        }}
        <div
            class="transcript"
            aria-live="polite"
            on:scroll=move |event| {
                // Reaching the top pages earlier messages in, as the button does.
                let at_top = event_target::<leptos::web_sys::Element>(&event).scroll_top() <= 0;
                let more = live.desk.with_untracked(|d| d.threads.get(&id).is_some_and(|t| t.oldest > 1));
                if at_top && more && !loading.get_untracked() {
                    load_earlier(());
                }
            }
        >
            {move || {
                live.desk.with(|d| d.threads.get(&id).is_some_and(|t| t.oldest > 1)).then(|| view! {
                    <button type="button" class="secondary load-earlier" disabled=move || loading.get() on:click=move |_| load_earlier(())>
                        {t(lang, Key::LoadEarlier)}
                    </button>
                })
            }}
            <ol class="messages">
                {move || {
                    let now = live.now.get_untracked() as i64;
                    live.desk.with(|d| d.threads.get(&id).map(|thread| transcript(thread, now, lang)))
                }}
                {move || live.desk.with(|d| {
                    d.outbox
                        .iter()
                        .filter(|p| p.send.conversation_id == Some(id))
                        .map(|p| {
                            let note = if p.refused.is_some() { Key::NotSent } else { Key::Sending };
                            view! {
                                <li class="message agent pending" data-refused=p.refused.is_some().then_some("true")>
                                    <p class="body">{p.send.body.clone()}</p>
                                    <small>{t(lang, note)}</small>
                                </li>
                            }
                        })
                        .collect_view()
                })}
            </ol>
            <p class="typing">
                {move || {
                    let now = live.now.get();
                    live.desk.with(|d| d.threads.get(&id).and_then(|thread| {
                        if !thread.draft.is_empty() {
                            Some(format!("✎ {}", thread.draft))
                        } else if thread.visitor_typing(now) {
                            Some(format!("{} {}", thread.visitor_label(), t(lang, Key::IsTyping)))
                        } else {
                            None
                        }
                    }))
                }}
            </p>
        </div>
        <VisitorPanel live id lang />
        <form class="composer" class:noting=move || note_mode.get() on:submit=move |event| {
            event.prevent_default();
            submit();
        }>
            <textarea
                name="reply"
                aria-label=t(lang, Key::Reply)
                placeholder=t(lang, Key::Reply)
                prop:value=move || draft.get()
                on:input=on_input
                on:keydown=move |event: leptos::ev::KeyboardEvent| {
                    let key = event.key();
                    if (key == "Enter" || key == "Tab") && !event.shift_key() {
                        // A `/shortcut` first becomes its reply; the next Enter sends it.
                        if let Some((_, body)) = suggestions().into_iter().next() {
                            event.prevent_default();
                            draft.set(body);
                        } else if key == "Enter" {
                            event.prevent_default();
                            submit();
                        }
                    }
                }
            ></textarea>
            <ul class="suggestions" role="listbox">
                {move || {
                    suggestions()
                        .into_iter()
                        .map(|(shortcut, body)| {
                            let text = body.clone();
                            view! {
                                <li role="option" on:click=move |_| draft.set(text.clone())>
                                    <strong>"/" {shortcut}</strong>
                                    " "
                                    <span>{body}</span>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
            <label class="note-mode">
                <input
                    type="checkbox"
                    prop:checked=move || note_mode.get()
                    on:change=move |event| note_mode.set(event_target_checked(&event))
                />
                {t(lang, Key::InternalNote)}
            </label>
            <button
                type="button"
                class="secondary icon"
                aria-label=t(lang, Key::Emoji)
                aria-expanded=move || emoji_open.get().to_string()
                on:click=move |_| emoji_open.update(|open| *open = !*open)
            >
                {crate::icons::smile()}
            </button>
            <label class="secondary icon attach" title=t(lang, Key::SendFile)>
                {crate::icons::paperclip()}
                <input
                    type="file"
                    node_ref=file_input
                    aria-label=t(lang, Key::SendFile)
                    on:change=move |_| {
                        let Some(input) = file_input.get_untracked() else {
                            return;
                        };
                        file_refused.set(false);
                        leptos::task::spawn_local(async move {
                            let input: leptos::web_sys::HtmlInputElement = input;
                            if !live.send_file(id, input).await {
                                file_refused.set(true);
                            }
                        });
                    }
                />
            </label>
            {move || (site_translates() && head.with(|h| h.as_ref().is_some_and(|h| h.translating))).then(|| view! {
                <button type="button" class="secondary translate-draft" on:click=move |_| {
                    let text = draft.get_untracked();
                    if text.chars().all(char::is_whitespace) {
                        return;
                    }
                    leptos::task::spawn_local(async move {
                        draft_translation.set(Some(translate_draft(id.0, text).await));
                    });
                }>{t(lang, Key::TranslateDraft)}</button>
            })}
            <button type="submit">{t(lang, Key::Send)}</button>
            {move || draft_translation.get().map(|result| {
                let said = match result {
                    Ok(Draft::Text { text, .. }) => {
                        return view! {
                            <p class="draft-translation" role="status">
                                {t(lang, Key::VisitorReads)} " " <q>{text}</q>
                            </p>
                        }
                        .into_any();
                    }
                    Ok(Draft::Same) => t(lang, Key::SameLanguage),
                    Ok(Draft::Unknown) => t(lang, Key::UnknownLanguage),
                    Err(error) => error.message(lang),
                };
                view! { <p class="draft-translation" role="status">{said}</p> }.into_any()
            })}
            {move || emoji_open.get().then(|| view! {
                <div class="emoji" role="listbox">
                    {EMOJI.into_iter().map(|emoji| view! {
                        <button type="button" role="option" on:click=move |_| {
                            draft.update(|text| text.push_str(emoji));
                            emoji_open.set(false);
                        }>{emoji}</button>
                    }).collect_view()}
                </div>
            })}
            {move || file_refused.get().then(|| view! {
                <p class="form-error" role="alert">{t(lang, Key::FileRefused)}</p>
            })}
        </form>
    }
}

#[cfg(feature = "ssr")]
/// Longest internal note, in bytes (a message's limit).
const MAX_NOTE_BYTES: usize = 4000;

/// Writes an internal note on conversation `id`: stored as a durable agent event and sent live
/// to the consoles of the site's agents, never to the visitor.
#[server(endpoint = "notes/add")]
pub async fn add_note(id: i64, body: String) -> Result<(), crate::error::ConsoleError> {
    use crate::context;
    use crate::error::ConsoleError;
    let (agent, conversation) = context::my_conversation(id).await?;
    if body.trim().is_empty() || body.len() > MAX_NOTE_BYTES {
        return Err(ConsoleError::Invalid);
    }
    let frame = protocol::ServerFrame::Note {
        event_seq: 0,
        conversation_id: ConversationId(id),
        agent_id: AgentId(agent.id),
        agent_name: agent.display_name.clone(),
        body,
        created_at: crate::clock::now(),
    };
    context::publish_event(&conversation, "note", frame).await
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
pub async fn set_tags(id: i64, tags: String) -> Result<(), crate::error::ConsoleError> {
    use crate::context;
    use crate::error::ConsoleError;
    let (_, conversation) = context::my_conversation(id).await?;
    let tags = normalise_tags(&tags).ok_or(ConsoleError::Invalid)?;
    context::store()?.set_conversation_tags(id, &tags).await?;
    let frame = protocol::ServerFrame::Tags {
        event_seq: 0,
        conversation_id: ConversationId(id),
        tags,
    };
    context::publish_event(&conversation, "tags", frame).await
}

/// The internal notes on conversation `id`, oldest first (the console loads them on opening
/// it; later ones arrive live).
#[server(endpoint = "notes")]
pub async fn notes(id: i64) -> Result<Vec<protocol::ServerFrame>, crate::error::ConsoleError> {
    use crate::context;
    let (_, conversation) = context::my_conversation(id).await?;
    let events = context::store()?
        .conversation_events(conversation.id, "note")
        .await?;
    Ok(events
        .into_iter()
        .filter_map(|event| {
            let mut frame: protocol::ServerFrame = serde_json::from_str(&event.payload).ok()?;
            *frame.event_seq_mut()? = event.id;
            Some(frame)
        })
        .collect())
}

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
    pub past: Vec<(i64, ConversationStatus, i64)>,
    /// How the visitor rated this conversation (1–5) and what they added, once resolved.
    pub rating: Option<(i64, Option<String>)>,
}

/// The visitor of conversation `id`, with their earlier conversations.
#[server(endpoint = "visitor_profile")]
pub async fn visitor_profile(id: i64) -> Result<VisitorCard, crate::error::ConsoleError> {
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
fn VisitorPanel(live: Live, id: ConversationId, lang: Lang) -> impl IntoView {
    let profile = LocalResource::new(move || visitor_profile(id.0));
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
                                            <li data-conversation=past>"#" {past} " · " {status_text(status, lang)}</li>
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

/// Bans the conversation's visitor from its site, with a reason and for a number of days (0:
/// for ever); their open widgets are told at once.
#[server(endpoint = "conversation/ban")]
pub async fn ban_visitor(
    id: i64,
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
    context::hub()?.banned(conversation.visitor_id);
    Ok(())
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
            outcome.set(Some(ban_visitor(id.0, words, days).await));
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

/// The conversation's tags, edited as one comma-separated line; the change comes back live.
#[component]
fn TagEditor(id: ConversationId, tags: Vec<String>, lang: Lang) -> impl IntoView {
    let text = RwSignal::new(tags.join(", "));
    let refused = RwSignal::new(false);
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let tags = text.get_untracked();
        leptos::task::spawn_local(async move {
            refused.set(set_tags(id.0, tags).await.is_err());
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

/// Moves the conversation to a colleague of its site; their status is shown next to the name.
#[component]
fn TransferPicker(
    live: Live,
    id: ConversationId,
    site: SiteId,
    assignee: Option<AgentId>,
    colleagues: StoredValue<Vec<Colleague>>,
    teams: StoredValue<Vec<TeamChoice>>,
    lang: Lang,
    choice: RwSignal<String>,
) -> impl IntoView {
    let site_teams: Vec<TeamChoice> =
        teams.with_value(|all| all.iter().filter(|t| t.site_id == site).cloned().collect());
    let candidates: Vec<Colleague> = colleagues.with_value(|all| {
        all.iter()
            .filter(|c| c.site_ids.contains(&site) && Some(c.id) != assignee)
            .cloned()
            .collect()
    });
    if candidates.is_empty() && site_teams.is_empty() {
        return ().into_any();
    }
    let note = RwSignal::new(String::new());
    let transfer = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        // "team:ID" routes to a team, a bare id to an agent.
        let picked = choice.get_untracked();
        let (to, team) = match picked.strip_prefix("team:") {
            Some(team) => (None, team.parse::<i64>().ok()),
            None => (picked.parse::<i64>().ok().map(AgentId), None),
        };
        if to.is_some() || team.is_some() {
            let words = note.get_untracked();
            live.send(AgentFrame::Assign(Assign {
                conversation_id: id,
                to,
                team,
                note: (!words.trim().is_empty()).then_some(words),
            }));
            choice.set(String::new());
            note.set(String::new());
        }
    };
    view! {
        <form class="transfer" on:submit=transfer>
            <select
                aria-label=t(lang, Key::TransferTo)
                prop:value=move || choice.get()
                on:change=move |event| choice.set(event_target_value(&event))
            >
                <option value="">{t(lang, Key::TransferTo)} "…"</option>
                {candidates
                    .into_iter()
                    .map(|c| {
                        let status = move || {
                            let key = match live.desk.with(|d| d.agents.get(&c.id).copied()) {
                                Some(AgentStatus::Online) => Key::Online,
                                Some(AgentStatus::Away) => Key::Away,
                                _ => Key::Offline,
                            };
                            t(lang, key)
                        };
                        view! { <option value=c.id.0>{c.name} " (" {status} ")"</option> }
                    })
                    .collect_view()}
                {site_teams
                    .into_iter()
                    .map(|team| {
                        view! {
                            <option value=format!("team:{}", team.id)>
                                {t(lang, Key::Team)} ": " {team.name}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            <input
                type="text"
                maxlength="1000"
                aria-label=t(lang, Key::TransferNote)
                placeholder=t(lang, Key::TransferNote)
                prop:value=move || note.get()
                on:input=move |event| note.set(event_target_value(&event))
            />
            <button type="submit" class="secondary" disabled=move || choice.get().is_empty()>
                {t(lang, Key::Transfer)}
            </button>
        </form>
    }
    .into_any()
}

/// The messages held for `thread`, oldest first; the visitor's read mark under the last one
/// they have seen.
fn transcript(thread: &Thread, now: i64, lang: Lang) -> impl IntoView + use<> {
    let seen = thread.visitor_read;
    let mut notes = thread.notes.values().peekable();
    let mut rows = Vec::with_capacity(thread.messages.len() + thread.notes.len());
    // A separator starts every day, the first one included.
    let mut day = None;
    let mut separate = |rows: &mut Vec<AnyView>, at: i64| {
        let this = crate::clock::local(at).day;
        if day != Some(this) {
            day = Some(this);
            let label = crate::clock::day_label(at, now, lang);
            rows.push(view! { <li class="day" role="separator">{label}</li> }.into_any());
        }
    };
    for message in thread.messages.values() {
        // Notes sit among the messages by time.
        while let Some(note) = notes.next_if(|n| n.created_at < message.created_at) {
            separate(&mut rows, note.created_at);
            rows.push(note_row(note, lang).into_any());
        }
        separate(&mut rows, message.created_at);
        let translation = thread.translations.get(&message.seq);
        rows.push(message_row(message, translation, seen, lang).into_any());
    }
    for note in notes {
        separate(&mut rows, note.created_at);
        rows.push(note_row(note, lang).into_any());
    }
    rows
}

/// When a message or note was written, as the agent's clock reads it.
fn sent_at(ms: i64) -> impl IntoView + use<> {
    view! { <time class="sent" data-ms=ms>{crate::clock::time_of_day(ms)}</time> }
}

fn note_row(note: &crate::live::Note, lang: Lang) -> impl IntoView + use<> {
    view! {
        <li class="message note" role="note">
            <small class="name">{t(lang, Key::InternalNote)} " · " {note.agent_name.clone()}</small>
            <p class="body">{note.body.clone()}</p>
            {sent_at(note.created_at)}
        </li>
    }
}

fn message_row(
    message: &Message,
    translation: Option<&protocol::Translation>,
    seen: protocol::Seq,
    lang: Lang,
) -> impl IntoView + use<> {
    let author = message.author.as_str();
    if message.author == Author::System {
        let text = crate::clock::system_text(lang, &message.body);
        return view! {
            <li class="message system" data-seq=message.seq>
                "— " {text} " · " {crate::clock::time_of_day(message.created_at)} " —"
            </li>
        }
        .into_any();
    }
    let file = message.attachment.clone().map(|file| {
        let href = format!("{}/{}", protocol::transport::ATTACHMENTS_PATH, file.id);
        if file.is_image() {
            let src = href.clone();
            view! { <a href=href target="_blank" rel="noopener"><img src=src alt=file.name /></a> }
                .into_any()
        } else {
            view! { <a href=href target="_blank" rel="noopener" class="file">{crate::icons::file()} {file.name}</a> }
                .into_any()
        }
    });
    let read = (message.author == Author::Agent && message.seq == seen)
        .then(|| view! { <small class="seen">{t(lang, Key::Seen)}</small> });
    view! {
        <li class=format!("message {author}") data-seq=message.seq>
            {message.agent_name.clone().map(|name| view! { <small class="name">{name}</small> })}
            {(!message.body.is_empty()).then(|| {
                let body = crate::visible::visible(&message.body).into_owned();
                view! { <p class="body">{body}</p> }
            })}
            {translation.map(translation_row(lang))}
            {file}
            <small class="meta">{sent_at(message.created_at)} {read}</small>
        </li>
    }
    .into_any()
}

/// A message's translation under it, or the marker that says why there is none.
fn translation_row(lang: Lang) -> impl Fn(&protocol::Translation) -> AnyView {
    move |translation| {
        match (&translation.text, translation.unavailable) {
        (Some(text), _) => view! {
            <p class="translation" lang=translation.language.clone()>
                <small>{t(lang, Key::TranslatedFrom)} " " {translation.source_language.clone()} ": "</small>
                {text.clone()}
            </p>
        }
        .into_any(),
        (None, Some(protocol::Unavailable::Budget)) => view! {
            <small class="translation-unavailable" data-why="budget">{t(lang, Key::TranslationBudgetSpent)}</small>
        }
        .into_any(),
        (None, _) => view! {
            <small class="translation-unavailable" data-why="provider">{t(lang, Key::TranslationUnavailable)}</small>
        }
        .into_any(),
    }
    }
}

/// Turns translation on or off for conversation `id`.
#[server(endpoint = "conversation/translating")]
pub async fn set_translating(id: i64, on: bool) -> Result<(), crate::error::ConsoleError> {
    use crate::context;
    let (_, conversation) = context::my_conversation(id).await?;
    context::store()?
        .set_conversation_translating(conversation.id, on)
        .await
        .map_err(crate::error::ConsoleError::from)
}

/// `text`, which the agent is writing in conversation `id`, as the visitor will read it. The
/// same rules as a sent reply: the site's budget, and the cache (sending it then costs
/// nothing more).
#[server(endpoint = "conversation/translate")]
pub async fn translate_draft(id: i64, text: String) -> Result<Draft, crate::error::ConsoleError> {
    use crate::context;
    use crate::error::ConsoleError;
    let (agent, conversation) = context::my_conversation(id).await?;
    if text.chars().all(char::is_whitespace) || text.len() > MAX_NOTE_BYTES {
        return Err(ConsoleError::Invalid);
    }
    context::interpreter()?
        .draft(conversation, agent, text)
        .await
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
