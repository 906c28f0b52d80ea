//! Where the agent writes: the reply (or an internal note), `/shortcut` completion from the
//! canned replies, emoji, a file, and the draft as the visitor will read it when the
//! conversation is translated. Typing is reported to the visitor while the agent writes.

use crate::i18n::{Key, Lang, t};
use crate::live::Live;
use crate::ports::Draft;
use leptos::prelude::*;
use protocol::{AgentFrame, ConversationId, Typing};

use super::Head;

/// The composer's emoji, the ones support chats use most.
const EMOJI: [&str; 16] = [
    "😀", "😊", "🙂", "😉", "😂", "🤔", "😅", "🙏", "👍", "👌", "👋", "🎉", "❤️", "✅", "📦", "💳",
];

/// How many canned replies the composer offers for a `/shortcut` at once.
const MAX_SUGGESTIONS: usize = 5;

/// Typing frames repeat at most this often while the agent keeps typing (protocol: 3 s).
const TYPING_REPEAT_MS: f64 = 3_000.0;

/// The composer of conversation `id`.
#[component]
pub(super) fn Composer(
    live: Live,
    id: ConversationId,
    lang: Lang,
    /// The conversation as the header shows it: whether it is translated now.
    head: Memo<Option<Head>>,
    /// Whether the conversation's site translates.
    site_translates: Signal<bool>,
    /// Whether the emoji list is open (a status change from the header closes it).
    emoji_open: RwSignal<bool>,
) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let typing_sent = StoredValue::new(None::<f64>);
    let note_mode = RwSignal::new(false);
    let file_refused = RwSignal::new(false);
    // The draft as the visitor would read it, after the agent asked (or why not).
    let draft_translation = RwSignal::new(None::<Result<Draft, crate::error::ConsoleError>>);
    let file_input = NodeRef::<leptos::html::Input>::new();
    // Fetched in the browser when the conversation opens; `/shortcut` completes from it.
    let canned = LocalResource::new(crate::api::canned::canned_replies);
    let site = live
        .desk
        .with_untracked(|d| d.threads.get(&id).map(|t| t.site_id));
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
                if add_note(id, body.clone()).await.is_err() {
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
    view! {
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
            {move || (site_translates.get() && head.with(|h| h.as_ref().is_some_and(|h| h.translating))).then(|| view! {
                <button type="button" class="secondary translate-draft" on:click=move |_| {
                    let text = draft.get_untracked();
                    if text.chars().all(char::is_whitespace) {
                        return;
                    }
                    leptos::task::spawn_local(async move {
                        draft_translation.set(Some(translate_draft(id, text).await));
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
pub async fn add_note(
    id: protocol::ConversationId,
    body: String,
) -> Result<(), crate::error::ConsoleError> {
    use crate::context;
    use crate::error::ConsoleError;
    let (agent, conversation) = context::my_conversation(id).await?;
    if body.trim().is_empty() || body.len() > MAX_NOTE_BYTES {
        return Err(ConsoleError::Invalid);
    }
    let frame = protocol::ServerFrame::Note {
        event_seq: 0,
        conversation_id: id,
        agent_id: agent.id,
        agent_name: agent.display_name.clone(),
        body,
        created_at: crate::clock::now(),
    };
    context::publish_event(&conversation, "note", frame).await
}

/// `text`, which the agent is writing in conversation `id`, as the visitor will read it. The
/// same rules as a sent reply: the site's budget, and the cache (sending it then costs
/// nothing more).
#[server(endpoint = "conversation/translate")]
pub async fn translate_draft(
    id: protocol::ConversationId,
    text: String,
) -> Result<Draft, crate::error::ConsoleError> {
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
