//! The conversation's transcript: a colleague's hand-over note, the messages and internal
//! notes by day (earlier ones paged in when the agent scrolls to the top), the agent's own
//! messages still on their way, and what the visitor is typing.

use crate::i18n::{Key, Lang, t};
use crate::live::{Live, Thread};
use leptos::prelude::*;
use protocol::{Author, ConversationId, Message};

/// The transcript of conversation `id`; `name_of` names a colleague.
#[component]
pub(super) fn Transcript(
    live: Live,
    id: ConversationId,
    lang: Lang,
    name_of: Callback<protocol::AgentId, String>,
) -> impl IntoView {
    let loading = RwSignal::new(false);
    // Earlier notes come with the conversation; later ones arrive live.
    let earlier_notes = LocalResource::new(move || notes(id));
    Effect::new(move |_| {
        if let Some(Ok(loaded)) = earlier_notes.get() {
            live.desk.update(|d| d.add_notes(loaded));
        }
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
            if let Ok(page) = crate::api::inbox::transcript(id, before).await {
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
            live.desk.with(|d| d.threads.get(&id).and_then(|t| t.handover.clone())).map(|(by, words)| {
                view! {
                    <p class="handover" role="note">
                        <strong>{t(lang, Key::NoteFrom)} " " {name_of.run(by)} ": "</strong>
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
    }
}

/// The internal notes on conversation `id`, oldest first (the console loads them on opening
/// it; later ones arrive live).
#[server(endpoint = "notes")]
pub async fn notes(
    id: protocol::ConversationId,
) -> Result<Vec<protocol::ServerFrame>, crate::error::ConsoleError> {
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
