//! Translating chat messages as they are sent, off the delivery path: a message is stored,
//! acknowledged and delivered first; then, on a task of its own, its translation for the
//! other side is found (in the cache, else from the provider within the site's daily budget),
//! stored, and sent to the site's agents and the visitor as a `translation` frame. When the
//! provider fails, the frame says the translation is unavailable, and it is tried again a few
//! times, later.
//!
//! Languages: a visitor's message is in the language detected offline (`whatlang`) when that
//! is sure, else their browser's language (as the widget said), else the provider detects it; it is translated into its agent's language (their
//! profile), or the configured default while no agent has it. An agent's message is in the
//! agent's language and is translated into the language of the visitor's latest translated
//! message (or, failing that, detected in the visitor's recent messages). Nothing is sent when
//! both sides turn out to share a language.

use std::sync::Arc;
use std::time::Duration;

use app::ports::Draft;
use protocol::{Author, ConversationId, ServerFrame, SiteId, Unavailable};
use sha2::{Digest, Sha256};
use store::{MessageTranslation, TranslationKey, TranslationState};

use super::Realtime;
use crate::translate::{TranslationSetup, primary};

/// Waits before the later tries of a translation the provider failed.
const LATER: [Duration; 2] = [Duration::from_secs(20), Duration::from_secs(120)];

/// One UTC day in milliseconds: budgets are per day.
const DAY_MS: i64 = 86_400_000;

/// Today's number (days since 1970, UTC): the day translation budgets count in.
pub fn today() -> i64 {
    crate::util::now_ms() / DAY_MS
}

/// Starts translating `message` of `conversation` if its site translates; returns at once.
pub fn after_message(
    realtime: Arc<Realtime>,
    conversation: ConversationId,
    message: store::Message,
) {
    let Some(setup) = realtime.translation() else {
        return;
    };
    if message.author == Author::System || message.body.trim().is_empty() {
        return;
    }
    let tasks = realtime.tasks.clone();
    tasks.spawn(async move {
        if let Err(error) = translate(&realtime, &setup, conversation, &message).await {
            tracing::warn!(%error, message = %message.id, "translating a message failed");
        }
    });
}

/// Where a translation came from, or why there is none.
enum Outcome {
    /// The translation, and the source language the provider detected (when it was asked to).
    Text(String, Option<String>),
    Unavailable(Unavailable),
}

/// The source language's tag in cache keys and rows when the provider was left to detect it.
const AUTO: &str = "auto";

async fn translate(
    realtime: &Realtime,
    setup: &TranslationSetup,
    conversation: ConversationId,
    message: &store::Message,
) -> Result<(), store::Error> {
    let store = realtime.store.as_ref();
    // Read here, as it is now: an agent may have switched translation off a moment ago.
    let Some(conversation) = store.conversation(conversation).await? else {
        return Ok(());
    };
    let conversation = &conversation;
    if !conversation.translating {
        return Ok(());
    }
    let Some(site) = store.site(conversation.site_id).await? else {
        return Ok(());
    };
    if !super::settings::WidgetSettings::of(&site).translate {
        return Ok(());
    }
    let Some((source, target)) = languages(store, setup, conversation, message).await? else {
        return Ok(());
    };
    if source
        .as_deref()
        .is_some_and(|s| primary(s) == primary(&target))
    {
        return Ok(());
    }
    let mut attempt = 0;
    loop {
        let outcome = attempt_once(
            store,
            setup,
            site.id,
            &message.body,
            source.as_deref(),
            &target,
        )
        .await?;
        let failed = matches!(outcome, Outcome::Unavailable(Unavailable::Provider));
        let (text, detected, unavailable, state) = match outcome {
            Outcome::Text(text, detected) => (Some(text), detected, None, TranslationState::Done),
            Outcome::Unavailable(why) => (None, None, Some(why), TranslationState::Failed),
        };
        let source_language = source
            .clone()
            .or(detected)
            .unwrap_or_else(|| AUTO.to_owned());
        if primary(&source_language) == primary(&target) {
            // The provider found the visitor writes the agent's language already.
            return Ok(());
        }
        store
            .save_message_translation(&MessageTranslation {
                message_id: message.id,
                source_language: source_language.clone(),
                target_language: target.clone(),
                text: text.clone(),
                state,
                attempts: attempt + 1,
                updated_at: crate::util::now_ms(),
            })
            .await?;
        realtime.hub.to_site_and_visitor(
            conversation.site_id,
            conversation.visitor_id,
            ServerFrame::Translation(protocol::Translation {
                conversation_id: conversation.id,
                seq: message.seq,
                source_language,
                language: target.clone(),
                text,
                unavailable,
            }),
        );
        match LATER.get(attempt as usize) {
            Some(wait) if failed => {
                tokio::time::sleep(*wait).await;
                attempt += 1;
            }
            _ => return Ok(()),
        }
    }
}

/// The translation of `text` from the cache, else from the provider if the site's budget
/// allows; stored in the cache when the provider made it.
async fn attempt_once(
    store: &dyn store::Store,
    setup: &TranslationSetup,
    site_id: SiteId,
    text: &str,
    source: Option<&str>,
    target: &str,
) -> Result<Outcome, store::Error> {
    let key = TranslationKey {
        text_hash: hex::encode(Sha256::digest(text.as_bytes())),
        source_language: source.unwrap_or(AUTO).to_owned(),
        target_language: target.to_owned(),
        provider: setup.translator.name().to_owned(),
    };
    if let Some(text) = store.cached_translation(&key).await? {
        return Ok(Outcome::Text(text, None));
    }
    let chars = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    let (day, limit) = (today(), setup.daily_chars);
    if !store
        .spend_translation_chars(site_id, day, chars, limit)
        .await?
    {
        // Translation stops for the rest of the day, as the console then says, rather than
        // letting shorter texts through: the rest of the budget counts as spent.
        let used = store.translation_chars(site_id, day).await?;
        store
            .spend_translation_chars(site_id, day, (limit - used).max(0), limit)
            .await?;
        return Ok(Outcome::Unavailable(Unavailable::Budget));
    }
    match setup.translator.translate(text, source, target).await {
        Ok(translation) => {
            store
                .cache_translation(&key, &translation.text, crate::util::now_ms())
                .await?;
            Ok(Outcome::Text(translation.text, translation.detected))
        }
        Err(error) => {
            tracing::warn!(%error, provider = setup.translator.name(), "translation unavailable");
            Ok(Outcome::Unavailable(Unavailable::Provider))
        }
    }
}

/// Translates `text`, which `agent` is writing in `conversation`, into the visitor's language,
/// as the reply will be (and through the same cache, so sending it then costs nothing more);
/// `Err` inside when no translation can be had now, and why.
pub async fn draft(
    store: &dyn store::Store,
    setup: &TranslationSetup,
    conversation: &store::Conversation,
    agent: &store::Agent,
    text: &str,
) -> Result<Result<Draft, Unavailable>, store::Error> {
    let Some(target) = visitor_language(store, conversation, conversation.last_seq + 1).await?
    else {
        return Ok(Ok(Draft::Unknown));
    };
    if primary(&agent.language) == primary(&target) {
        return Ok(Ok(Draft::Same));
    }
    let source = Some(agent.language.as_str());
    Ok(
        match attempt_once(store, setup, conversation.site_id, text, source, &target).await? {
            Outcome::Text(text, _) => Ok(Draft::Text {
                text,
                language: target,
            }),
            Outcome::Unavailable(why) => Err(why),
        },
    )
}

/// `(source, target)` for `message` (the source `None` when the provider is to detect it), or
/// `None` when the reader's language cannot be told.
async fn languages(
    store: &dyn store::Store,
    setup: &TranslationSetup,
    conversation: &store::Conversation,
    message: &store::Message,
) -> Result<Option<(Option<String>, String)>, store::Error> {
    let agent_language = |id: Option<store::AgentId>| async move {
        Ok::<_, store::Error>(match id {
            Some(id) => store.agent(id).await?.map(|agent| agent.language),
            None => None,
        })
    };
    Ok(match message.author {
        Author::Visitor => {
            let target = agent_language(conversation.assignee_id)
                .await?
                .unwrap_or_else(|| setup.agent_language.clone());
            let source = match detect(&message.body) {
                Some(language) => Some(language),
                None => browser_language(store, conversation).await?,
            };
            Some((source, target))
        }
        Author::Agent => {
            let source = agent_language(message.agent_id)
                .await?
                .or_else(|| detect(&message.body));
            visitor_language(store, conversation, message.seq)
                .await?
                .map(|target| (source, target))
        }
        Author::System => None,
    })
}

/// The language the visitor writes, from their recent messages: the one their translations
/// name, else the one detected offline.
async fn visitor_language(
    store: &dyn store::Store,
    conversation: &store::Conversation,
    before_seq: i64,
) -> Result<Option<String>, store::Error> {
    let recent: Vec<store::Message> = store
        .messages_before(conversation.id, Some(before_seq), 20)
        .await?
        .into_iter()
        .filter(|m| m.author == Author::Visitor)
        .collect();
    let ids: Vec<store::MessageId> = recent.iter().map(|m| m.id).collect();
    let named = store
        .message_translations(&ids)
        .await?
        .into_iter()
        .rev()
        .map(|t| t.source_language)
        .find(|language| language != AUTO);
    let detected = named.or_else(|| recent.iter().find_map(|m| detect(&m.body)));
    Ok(match detected {
        Some(language) => Some(language),
        None => browser_language(store, conversation).await?,
    })
}

/// The primary language of the visitor's browser, if the widget said.
async fn browser_language(
    store: &dyn store::Store,
    conversation: &store::Conversation,
) -> Result<Option<String>, store::Error> {
    Ok(store
        .visitor(conversation.visitor_id)
        .await?
        .and_then(|visitor| visitor.language)
        .map(|tag| primary(&tag)))
}

/// ISO 639-3 codes `whatlang` gives and their BCP 47 tags.
const TAGS: [(&str, &str); 24] = [
    ("cmn", "zh"),
    ("eng", "en"),
    ("jpn", "ja"),
    ("kor", "ko"),
    ("spa", "es"),
    ("fra", "fr"),
    ("deu", "de"),
    ("rus", "ru"),
    ("por", "pt"),
    ("ita", "it"),
    ("ara", "ar"),
    ("vie", "vi"),
    ("tha", "th"),
    ("ind", "id"),
    ("tur", "tr"),
    ("nld", "nl"),
    ("pol", "pl"),
    ("ukr", "uk"),
    ("hin", "hi"),
    ("heb", "he"),
    ("swe", "sv"),
    ("ces", "cs"),
    ("ell", "el"),
    ("fas", "fa"),
];

/// The language of `text` (BCP 47), when offline detection is sure enough. Only the languages
/// of [`TAGS`] are considered (a chat in a shop is rarely in the others, and a short English
/// sentence is otherwise taken for Danish). Chinese, Japanese and Korean are told by their
/// scripts, so a greeting of two characters is enough.
pub fn detect(text: &str) -> Option<String> {
    static DETECTOR: std::sync::OnceLock<whatlang::Detector> = std::sync::OnceLock::new();
    let detector = DETECTOR.get_or_init(|| {
        whatlang::Detector::with_allowlist(
            TAGS.iter()
                .filter_map(|(iso3, _)| whatlang::Lang::from_code(*iso3))
                .collect(),
        )
    });
    let info = detector.detect(text)?;
    let by_script = matches!(
        info.script(),
        whatlang::Script::Mandarin
            | whatlang::Script::Hiragana
            | whatlang::Script::Katakana
            | whatlang::Script::Hangul
    );
    if !(info.is_reliable() || by_script) {
        return None;
    }
    let code = info.lang().code();
    TAGS.iter()
        .find(|(iso3, _)| *iso3 == code)
        .map(|(_, tag)| (*tag).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_names_the_common_languages_and_refuses_to_guess() {
        assert_eq!(detect("您好，我想申请退款").as_deref(), Some("zh"));
        assert_eq!(detect("你好").as_deref(), Some("zh"));
        assert_eq!(detect("返金をお願いします").as_deref(), Some("ja"));
        assert_eq!(detect("환불해 주세요").as_deref(), Some("ko"));
        assert_eq!(
            detect("Where is my parcel? It has not arrived yet.").as_deref(),
            Some("en")
        );
        assert_eq!(detect("12345"), None);
    }
}
