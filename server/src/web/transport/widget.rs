//! The widget's HTTP endpoints outside the frame protocol: a site's widget settings (read before
//! the panel is drawn), the offline form's leave-messages, the visitor's profile (pre-chat
//! form, `Kefu.identify`), their rating of a resolved conversation and transcripts by e-mail.
//! Same identity, origin and ban rules as the HTTP fallback, and refusals are the same `[error]`
//! bodies.

use super::http::{refuse, visitor_from_token};
use crate::edge::ClientIp;
use crate::realtime::budgets::Spend;
use crate::realtime::hub::Sender;
use crate::realtime::settings::WidgetSettings;
use crate::realtime::{error_frame, internal, origin_allowed, rate_limited};
use crate::util::header_text;
use crate::util::text::label;
use crate::web::state::AppState;
use app::i18n::Lang;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::{ConversationId, ErrorCode, VisitorId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The answer to `GET /http/visitor/site`: what the widget needs to draw itself.
#[derive(Debug, Serialize)]
struct SiteInfo {
    /// The site's name, shown in the panel header.
    name: String,
    /// Colour, corner, greeting and behaviour, as the site's admin set them.
    #[serde(flatten)]
    settings: WidgetSettings,
    /// Whether chat is offered now: an agent is online, within business hours (the real-time
    /// `availability` frame keeps it current).
    online: bool,
    /// Whether this server can e-mail transcripts (an SMTP relay is configured).
    transcripts: bool,
}

/// `?key=SITE_KEY`.
#[derive(Debug, Deserialize)]
pub struct SiteQuery {
    /// The site's public key (the snippet's `data-site`).
    key: String,
}

/// `GET /http/visitor/site?key=…`: the site's name and widget settings, for an allowed origin.
pub async fn site(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SiteQuery>,
) -> Response {
    let rt = &state.realtime;
    // Every page view asks: the node's copy answers.
    let site = match rt.copies.site_by_key(rt.store.as_ref(), &query.key).await {
        Ok(Some(site)) => site,
        Ok(None) => return refuse(error_frame(ErrorCode::OriginNotAllowed, "unknown site key")),
        Err(error) => return refuse(internal(&error)),
    };
    if !origin_allowed(&site, header_text(&headers, "origin")) {
        return refuse(error_frame(
            ErrorCode::OriginNotAllowed,
            "this page may not use the widget",
        ));
    }
    let info = SiteInfo {
        settings: WidgetSettings::of(&site),
        online: crate::realtime::chat_offered(rt, &site),
        transcripts: rt.mail().mailer.is_some(),
        name: site.name.clone(),
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(info)).into_response()
}

/// The offline form, as the widget posts it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaveMessageForm {
    /// How to address the visitor, if they said.
    #[serde(default)]
    name: Option<String>,
    /// An e-mail address or phone number, as typed: how to answer.
    contact: String,
    /// The message itself.
    body: String,
}

/// Longest accepted name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Longest accepted contact (e-mail address or phone number), in characters.
const MAX_CONTACT_CHARS: usize = 200;

/// A visitor's form post: its size checked, its JSON read, the token's visitor found.
async fn visitor_form<T: serde::de::DeserializeOwned>(
    rt: &crate::realtime::Realtime,
    headers: &HeaderMap,
    client: ClientIp,
    body: &[u8],
) -> Result<(T, Arc<store::Site>, VisitorId), Response> {
    if body.len() > rt.limits.max_frame_bytes as usize {
        return Err(refuse(error_frame(
            ErrorCode::TooLarge,
            "request too large",
        )));
    }
    let form: T = serde_json::from_slice(body).map_err(|error| {
        refuse(error_frame(
            ErrorCode::BadRequest,
            &format!("malformed form: {error}"),
        ))
    })?;
    let identity = visitor_from_token(rt, headers, client)
        .await
        .map_err(refuse)?;
    let crate::realtime::session::Identity::Visitor {
        site, visitor_id, ..
    } = identity
    else {
        return Err(refuse(error_frame(
            ErrorCode::BadToken,
            "bad visitor token",
        )));
    };
    Ok((form, site, visitor_id))
}

/// One of the visitor's conversations; any other (or none) is `not_found`, told apart from
/// nothing.
async fn own_conversation(
    rt: &crate::realtime::Realtime,
    conversation_id: ConversationId,
    visitor_id: VisitorId,
) -> Result<store::Conversation, Response> {
    match rt.store.conversation(conversation_id).await {
        Ok(Some(c)) if c.visitor_id == visitor_id => Ok(c),
        Ok(_) => Err(refuse(error_frame(
            ErrorCode::NotFound,
            "no such conversation",
        ))),
        Err(error) => Err(refuse(internal(&error))),
    }
}

/// Takes one token from the sender's message rate for a valid form or upload, so none of them
/// can flood the inbox or the database.
pub(crate) fn take_token(rt: &crate::realtime::Realtime, sender: Sender) -> Result<(), Response> {
    rt.hub
        .take_message_token(sender, rt.limits.messages_per_minute)
        .map_err(|retry_after_ms| refuse(rate_limited("too many messages", retry_after_ms)))
}

/// `POST /http/visitor/leave-message` with the visitor token: stores an offline message.
pub async fn leave_message(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rt = &state.realtime;
    let (form, site, visitor_id) =
        match visitor_form::<LeaveMessageForm>(rt, &headers, client, &body).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
    if let Err(wait) = rt
        .budgets
        .spend(Spend::LeaveMessage, Some(client.0), Some(site.id))
    {
        return refuse(crate::realtime::over_budget(
            wait,
            "too many messages left; try later",
        ));
    }
    // Names and contacts are labels agents read in lists: one line, no direction overrides.
    let name = form
        .name
        .as_deref()
        .map(|name| label(name, usize::MAX))
        .unwrap_or_default();
    let contact = label(&form.contact, usize::MAX);
    let invalid = if name.chars().count() > MAX_NAME_CHARS {
        Some((ErrorCode::TooLarge, "name too long"))
    } else if contact.is_empty() {
        Some((ErrorCode::BadRequest, "contact is required"))
    } else if contact.chars().count() > MAX_CONTACT_CHARS {
        Some((ErrorCode::TooLarge, "contact too long"))
    } else if form.body.trim().is_empty() {
        Some((ErrorCode::BadRequest, "message is empty"))
    } else if form.body.len() > rt.limits.max_message_bytes as usize {
        Some((ErrorCode::TooLarge, "message too long"))
    } else {
        None
    };
    if let Some((code, message)) = invalid {
        return refuse(error_frame(code, message));
    }
    if let Err(response) = take_token(rt, Sender::Visitor(visitor_id)) {
        return response;
    }
    let stored = rt
        .store
        .create_leave_message(store::NewLeaveMessage {
            site_id: site.id,
            visitor_id: Some(visitor_id),
            name: (!name.is_empty()).then(|| name.to_string()),
            contact,
            body: form.body,
            created_at: crate::util::now_ms(),
        })
        .await;
    match stored {
        Ok(message) => {
            rt.webhooks.emit("leave_message.created", || {
                serde_json::json!({
                    "event": "leave_message.created",
                    "site_id": message.site_id,
                    "leave_message": {
                        "id": message.id,
                        "visitor_id": message.visitor_id,
                        "name": message.name,
                        "contact": message.contact,
                        "text": message.body,
                        "created_at": message.created_at,
                    },
                })
            });
            let mail = rt.mail();
            if let (true, Some(mailer)) = (mail.settings.notify_leave_messages, mail.mailer) {
                rt.leave_digest.notify(mailer, &site.name, &message);
            }
            (
                StatusCode::CREATED,
                Json(serde_json::json!({ "id": message.id })),
            )
                .into_response()
        }
        Err(error) => refuse(internal(&error)),
    }
}

/// The pre-chat form or `Kefu.identify`: fields present are set, fields absent are kept; an
/// attribute set to `null` is removed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileForm {
    /// The visitor's name.
    #[serde(default)]
    name: Option<String>,
    /// The visitor's e-mail address.
    #[serde(default)]
    email: Option<String>,
    /// Attributes to set (a value) or remove (`null`); others stay.
    #[serde(default)]
    attributes: BTreeMap<String, Option<String>>,
}

/// Longest accepted e-mail address (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;
/// Most attributes one visitor keeps, and their size.
const MAX_ATTRIBUTES: usize = 20;
const MAX_ATTRIBUTE_NAME_CHARS: usize = 40;
const MAX_ATTRIBUTE_VALUE_CHARS: usize = 200;

/// `POST /http/visitor/profile` with the visitor token: sets the visitor's name, e-mail and
/// attributes. Answers `204` once stored.
pub async fn profile(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rt = &state.realtime;
    let (form, _site, visitor_id) =
        match visitor_form::<ProfileForm>(rt, &headers, client, &body).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
    if let Err(wait) = rt.budgets.spend(Spend::Profile, Some(client.0), None) {
        return refuse(crate::realtime::over_budget(
            wait,
            "too many profile changes; try later",
        ));
    }
    let visitor = match rt.store.visitor(visitor_id).await {
        Ok(Some(visitor)) => visitor,
        Ok(None) => return refuse(error_frame(ErrorCode::BadToken, "bad visitor token")),
        Err(error) => return refuse(internal(&error)),
    };
    // What agents see beside the visitor: one line each, no direction overrides.
    let trimmed = |value: Option<String>| value.map(|v| label(&v, usize::MAX));
    let name = trimmed(form.name).or(visitor.name);
    let email = trimmed(form.email).or(visitor.email);
    let mut attributes = visitor.attributes;
    for (key, value) in form.attributes {
        match value {
            Some(value) => attributes.0.insert(key, label(&value, usize::MAX)),
            None => attributes.0.remove(&key),
        };
    }
    let name_ok = |key: &str| {
        (1..=MAX_ATTRIBUTE_NAME_CHARS).contains(&key.chars().count())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    let invalid = if name
        .as_deref()
        .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
    {
        Some((ErrorCode::TooLarge, "name too long"))
    } else if email
        .as_deref()
        .is_some_and(|e| !e.is_empty() && (!e.contains('@') || e.chars().count() > MAX_EMAIL_CHARS))
    {
        Some((ErrorCode::BadRequest, "not an e-mail address"))
    } else if attributes.0.len() > MAX_ATTRIBUTES {
        Some((ErrorCode::TooLarge, "too many attributes"))
    } else if !attributes.0.keys().all(|k| name_ok(k)) {
        Some((
            ErrorCode::BadRequest,
            "attribute names are 1-40 of A-Z a-z 0-9 _ - .",
        ))
    } else if attributes
        .0
        .values()
        .any(|v| v.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS)
    {
        Some((ErrorCode::TooLarge, "attribute value too long"))
    } else {
        None
    };
    if let Some((code, message)) = invalid {
        return refuse(error_frame(code, message));
    }
    if let Err(response) = take_token(rt, Sender::Visitor(visitor_id)) {
        return response;
    }
    let empty_to_none = |value: Option<String>| value.filter(|v| !v.is_empty());
    let (name, email) = (empty_to_none(name), empty_to_none(email));
    match rt
        .store
        .set_visitor_profile(visitor_id, name.as_deref(), email.as_deref(), &attributes)
        .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => refuse(internal(&error)),
    }
}

/// A visitor's rating of a resolved conversation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatingForm {
    /// One of the visitor's conversations, resolved.
    conversation_id: ConversationId,
    /// 1 (bad) to 5 (great).
    score: i64,
    /// What the visitor adds, if anything.
    #[serde(default)]
    comment: Option<String>,
    /// Also e-mail the transcript to this address (as `POST /http/visitor/transcript` does).
    #[serde(default)]
    transcript_to: Option<String>,
}

/// Longest accepted rating comment, in characters.
const MAX_COMMENT_CHARS: usize = 1000;

/// `POST /http/visitor/rating` with the visitor token: stores (or replaces) the visitor's rating
/// of one of their resolved conversations. Answers `204` once stored.
pub async fn rating(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rt = &state.realtime;
    let (form, site, visitor_id) =
        match visitor_form::<RatingForm>(rt, &headers, client, &body).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
    let comment = form
        .comment
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if !(1..=5).contains(&form.score) {
        return refuse(error_frame(ErrorCode::BadRequest, "score is 1 to 5"));
    }
    if comment
        .as_deref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
    {
        return refuse(error_frame(ErrorCode::TooLarge, "comment too long"));
    }
    let conversation = match own_conversation(rt, form.conversation_id, visitor_id).await {
        Ok(conversation) => conversation,
        Err(response) => return response,
    };
    if conversation.status != store::ConversationStatus::Resolved {
        return refuse(error_frame(
            ErrorCode::Conflict,
            "the conversation is not resolved",
        ));
    }
    if let Err(response) = take_token(rt, Sender::Visitor(visitor_id)) {
        return response;
    }
    // The copy first: when it cannot be sent nothing is stored, and the visitor may try again.
    if let Some(email) = form
        .transcript_to
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        && let Err(response) = send_transcript(rt, &site, &conversation, client, email).await
    {
        return response;
    }
    let stored = rt
        .store
        .rate_conversation(store::Rating {
            conversation_id: conversation.id,
            score: form.score,
            comment,
            created_at: crate::util::now_ms(),
        })
        .await;
    match stored {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => refuse(internal(&error)),
    }
}

/// A visitor asks for a copy of a conversation by e-mail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscriptForm {
    /// One of the visitor's conversations.
    conversation_id: ConversationId,
    /// Where to send it.
    email: String,
}

/// A transcript costs this many of the visitor's `messages_per_minute`: mail is dearer than
/// chat, and a relay must not become a spam cannon.
const TRANSCRIPT_COST: u32 = 10;
/// Most messages a transcript holds (the newest are kept when a conversation is longer).
const TRANSCRIPT_MESSAGES: u32 = 2_000;

/// `POST /http/visitor/transcript` with the visitor token: e-mails the conversation's transcript.
/// Answers `204` once the relay took the mail, `503` when no relay is configured or it failed,
/// `409` before an agent has written in the conversation, `429` (with `Retry-After`) within an
/// hour of the last copy or past the daily caps of the address or the site.
pub async fn transcript(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rt = &state.realtime;
    let (form, site, visitor_id) =
        match visitor_form::<TranscriptForm>(rt, &headers, client, &body).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
    let conversation = match own_conversation(rt, form.conversation_id, visitor_id).await {
        Ok(conversation) => conversation,
        Err(response) => return response,
    };
    match send_transcript(rt, &site, &conversation, client, &form.email).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

/// E-mails `conversation` to `email`, charging the visitor [`TRANSCRIPT_COST`] tokens: only
/// once an agent has written in it, at most once an hour, within the daily caps of the client's
/// address and the site ([`crate::realtime::transcripts`]). The conversation then records where it went.
async fn send_transcript(
    rt: &crate::realtime::Realtime,
    site: &store::Site,
    conversation: &store::Conversation,
    client: ClientIp,
    email: &str,
) -> Result<(), Response> {
    let email = email.trim();
    if !email.contains('@') || email.chars().count() > MAX_EMAIL_CHARS {
        return Err(refuse(error_frame(
            ErrorCode::BadRequest,
            "not an e-mail address",
        )));
    }
    let Some(mailer) = rt.mail().mailer else {
        return Err(refuse(error_frame(
            ErrorCode::Unavailable,
            "e-mail is not set up on this server",
        )));
    };
    for _ in 0..TRANSCRIPT_COST {
        take_token(rt, Sender::Visitor(conversation.visitor_id))?;
    }
    let mut messages = rt
        .store
        .messages_before(conversation.id, None, TRANSCRIPT_MESSAGES)
        .await
        .map_err(|error| refuse(internal(&error)))?;
    // A conversation only the caller wrote would make this a relay for their own words.
    if !messages.iter().any(|m| m.author == protocol::Author::Agent) {
        return Err(refuse(error_frame(
            ErrorCode::Conflict,
            "a transcript can be sent once an agent has replied",
        )));
    }
    let reservation = rt
        .transcripts
        .reserve(
            conversation.id,
            client.group(),
            site.id,
            crate::util::now_ms(),
        )
        .map_err(|refused| refuse(rate_limited(refused.message(), refused.retry_after_ms())))?;
    messages.reverse();
    let (lang, text) = transcript_text(rt, site, conversation, &messages)
        .await
        .map_err(|error| refuse(internal(&error)))?;
    let subject = crate::realtime::transcript_mail::heading(lang, &site.name);
    match mailer.send(email, &subject, text).await {
        Ok(()) => {
            reservation.sent();
            record_transcript(rt, conversation, email).await;
            Ok(())
        }
        Err(crate::mail::MailError::Address(_)) => Err(refuse(error_frame(
            ErrorCode::BadRequest,
            "not an e-mail address",
        ))),
        Err(error) => {
            tracing::warn!(%error, "sending a transcript failed");
            Err(refuse(error_frame(
                ErrorCode::Unavailable,
                "the mail could not be sent",
            )))
        }
    }
}

/// Tells the conversation's agents (and its visitor, who typed it) where its transcript went:
/// a `system` message whose body is [`protocol::TRANSCRIPT_SENT`] and the address, shown in
/// full to agents. The mail is already out, so a failure here is only logged.
async fn record_transcript(
    rt: &crate::realtime::Realtime,
    conversation: &store::Conversation,
    email: &str,
) {
    let record = store::NewMessage {
        client_id: protocol::ClientId(crate::util::random_hex::<16>()),
        author: protocol::Author::System,
        agent_id: None,
        body: format!("{}{email}", protocol::TRANSCRIPT_SENT),
        attachment: None,
        created_at: crate::util::now_ms(),
    };
    match rt.store.append_message(conversation.id, record).await {
        Ok(appended) => rt.hub.to_site_and_visitor(
            conversation.site_id,
            conversation.visitor_id,
            protocol::ServerFrame::Message(appended.message.into_frame(None)),
        ),
        Err(error) => {
            tracing::warn!(%error, conversation = %conversation.id, "recording a sent transcript failed");
        }
    }
}

/// The conversation (`messages` oldest first) as [`crate::realtime::transcript_mail::text`] writes it,
/// in the visitor's language, with the names of the agents in it.
async fn transcript_text(
    rt: &crate::realtime::Realtime,
    site: &store::Site,
    conversation: &store::Conversation,
    messages: &[store::Message],
) -> Result<(Lang, String), store::Error> {
    let lang = rt
        .store
        .visitor(conversation.visitor_id)
        .await?
        .and_then(|visitor| visitor.language)
        .map_or(Lang::En, |tag| Lang::from_tag(&tag));
    let mut agents = BTreeMap::new();
    for id in messages.iter().filter_map(|message| message.agent_id) {
        if let std::collections::btree_map::Entry::Vacant(entry) = agents.entry(id)
            && let Some(agent) = rt.store.agent(id).await?
        {
            entry.insert(agent.display_name);
        }
    }
    let text = crate::realtime::transcript_mail::text(lang, &site.name, messages, &agents);
    Ok((lang, text))
}
