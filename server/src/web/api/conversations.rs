//! `/api/v1/conversations` and `/api/v1/messages`: the history with the console's filters,
//! transcripts, full-text search, and writing into a conversation as the token's administrator.
//!
//! Writes go through the same real-time session as the console's, so a message sent here is
//! checked, rate-limited, stored, then delivered live to the visitor and the agents (and to
//! webhooks) exactly like one typed in the console; a resend with the same `client_id` stores
//! nothing new.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use protocol::{
    AgentId, ClientId, ConversationId, ConversationStatus, ErrorCode, MessageId, ServerFrame,
    SiteId, TeamId, VisitorId,
};
use serde::{Deserialize, Serialize};
use store::HistoryFilter;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::page::{self, IdPageQuery, Page, PageQuery};
use crate::realtime::session::{Identity, Inbound, Session};
use crate::web::state::AppState;

/// A string schema allowing only `values`.
pub(super) fn one_of(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

fn status_schema() -> Object {
    one_of(ConversationStatus::ALL.map(ConversationStatus::as_str))
}

fn author_schema() -> Object {
    one_of(protocol::Author::ALL.map(protocol::Author::as_str))
}

/// A chat between a visitor and a site's agents.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conversation {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: ConversationId,
    /// The site it is on.
    #[schema(value_type = i64)]
    pub site_id: SiteId,
    /// The visitor who started it.
    #[schema(value_type = i64)]
    pub visitor_id: VisitorId,
    /// `open`, `pending` or `resolved`.
    #[schema(schema_with = status_schema)]
    pub status: &'static str,
    /// The agent who has it, if any.
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<AgentId>,
    /// The team it waits for, if it was transferred to one.
    #[schema(value_type = Option<i64>)]
    pub team_id: Option<TeamId>,
    /// Until when it is snoozed (Unix milliseconds): pending until then, or until the visitor
    /// writes.
    pub snoozed_until: Option<i64>,
    /// The seq of its newest message (0 when empty).
    pub last_seq: i64,
    /// Its tags.
    pub tags: Vec<String>,
    /// When it started (Unix milliseconds).
    pub created_at: i64,
    /// When it last changed (Unix milliseconds).
    pub updated_at: i64,
}

impl Conversation {
    fn of(conversation: store::Conversation, tags: Vec<String>) -> Conversation {
        Conversation {
            id: conversation.id,
            site_id: conversation.site_id,
            visitor_id: conversation.visitor_id,
            status: conversation.status.as_str(),
            assignee_id: conversation.assignee_id,
            team_id: conversation.team_id,
            snoozed_until: conversation.snoozed_until,
            last_seq: conversation.last_seq,
            tags,
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
        }
    }
}

/// A conversation with the visitor's rating.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationDetail {
    /// The conversation.
    #[serde(flatten)]
    pub conversation: Conversation,
    /// How the visitor rated it, if they did.
    pub rating: Option<Rating>,
}

/// A visitor's rating of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rating {
    /// 1 (bad) to 5 (great).
    pub score: i64,
    /// What the visitor added.
    pub comment: Option<String>,
    /// When it was given (Unix milliseconds).
    pub created_at: i64,
}

/// A file a message carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attachment {
    /// Its public id.
    pub id: String,
    /// The file name the uploader gave.
    pub name: String,
    /// Its media type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where to download it (relative to the server).
    pub url: String,
}

/// One message of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: MessageId,
    /// The conversation it is in.
    #[schema(value_type = i64)]
    pub conversation_id: ConversationId,
    /// Its position in the conversation: 1, 2, 3 … without gaps.
    pub seq: i64,
    /// The sender's id for it; resending with the same id stores nothing new.
    pub client_id: String,
    /// `visitor`, `agent` or `system` (a status change, whose body is the new status).
    #[schema(schema_with = author_schema)]
    pub author: &'static str,
    /// The agent who wrote it, when `author` is `agent`.
    #[schema(value_type = Option<i64>)]
    pub agent_id: Option<AgentId>,
    /// The text, exactly as sent (plain text, never HTML).
    pub body: String,
    /// The file it carries, if any.
    pub attachment: Option<Attachment>,
    /// When the server accepted it (Unix milliseconds).
    pub created_at: i64,
}

impl From<store::Message> for Message {
    fn from(message: store::Message) -> Message {
        Message {
            id: message.id,
            conversation_id: message.conversation_id,
            seq: message.seq,
            client_id: message.client_id.0,
            author: message.author.as_str(),
            agent_id: message.agent_id,
            body: message.body,
            attachment: message.attachment.map(|file| Attachment {
                url: format!("{}/{}", protocol::transport::ATTACHMENTS_PATH, file.id),
                id: file.id,
                name: file.name,
                content_type: file.content_type,
                size: file.size,
            }),
            created_at: message.created_at,
        }
    }
}

/// Which conversations a history list holds; every condition given must hold.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only this site's conversations (default: every site).
    #[param(value_type = Option<i64>)]
    pub site_id: Option<SiteId>,
    /// Only conversations in this status: `open`, `pending` or `resolved`.
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    /// Only conversations assigned to this agent.
    #[param(value_type = Option<i64>)]
    pub agent_id: Option<AgentId>,
    /// Only this visitor's conversations.
    #[param(value_type = Option<i64>)]
    pub visitor_id: Option<VisitorId>,
    /// Started (for `/messages`: sent) at or after this time (Unix milliseconds).
    pub since: Option<i64>,
    /// Started (for `/messages`: sent) before this time (Unix milliseconds).
    pub until: Option<i64>,
    /// Only conversations with this tag.
    pub tag: Option<String>,
    /// Only conversations the visitor rated with this score (1–5).
    #[param(minimum = 1, maximum = 5)]
    pub rating: Option<u8>,
}

impl HistoryQuery {
    async fn filter(&self, store: &dyn store::Store) -> Result<HistoryFilter, ApiError> {
        let sites = super::sites::scope(store, self.site_id).await?;
        let status = match self.status.as_deref() {
            None => None,
            Some(text) => Some(ConversationStatus::parse(text).ok_or_else(|| {
                ApiError::Invalid("status must be open, pending or resolved".into())
            })?),
        };
        if self.rating.is_some_and(|score| !(1..=5).contains(&score)) {
            return Err(ApiError::Invalid("rating must be 1 to 5".into()));
        }
        Ok(HistoryFilter {
            sites,
            agent: self.agent_id,
            visitor: self.visitor_id,
            since: self.since,
            until: self.until,
            tag: self.tag.as_deref().map(|tag| tag.trim().to_lowercase()),
            status,
            rating: self.rating,
        })
    }
}

/// Conversations, most recently updated first, with the history page's filters.
#[utoipa::path(
    get,
    path = "/api/v1/conversations",
    tag = "conversations",
    params(HistoryQuery, PageQuery),
    responses(
        (status = 200, description = "A page of conversations", body = Page<Conversation>),
        (status = 400, description = "A filter or the cursor is malformed", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such site", body = ErrorBody),
    )
)]
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
    ApiQuery(paging): ApiQuery<PageQuery>,
) -> Result<Json<Page<Conversation>>, ApiError> {
    let store = state.store.as_ref();
    let filter = query.filter(store).await?;
    let limit = page::limit(paging.limit)?;
    let after = match paging.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let (updated_at, id) = page::pair(cursor)?;
            Some(store::ConversationCursor {
                updated_at,
                id: ConversationId(id),
            })
        }
    };
    let rows = store.history(&filter, after, limit + 1).await?;
    let page = Page::of(rows, limit, |c| page::pair_cursor(c.updated_at, c.id.0));
    Ok(Json(Page {
        items: with_tags(store, page.items).await?,
        next: page.next,
    }))
}

/// `rows` as the API shows them, each with its tags.
pub(super) async fn with_tags(
    store: &dyn store::Store,
    rows: Vec<store::Conversation>,
) -> Result<Vec<Conversation>, ApiError> {
    let ids: Vec<ConversationId> = rows.iter().map(|c| c.id).collect();
    let mut tags: HashMap<ConversationId, Vec<String>> = HashMap::new();
    for (id, tag) in store.conversation_tags(&ids).await? {
        tags.entry(id).or_default().push(tag);
    }
    Ok(rows
        .into_iter()
        .map(|c| {
            let tags = tags.remove(&c.id).unwrap_or_default();
            Conversation::of(c, tags)
        })
        .collect())
}

/// One conversation with its tags and rating.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}",
    tag = "conversations",
    params(("id" = i64, Path, description = "The conversation's id", example = 1)),
    responses(
        (status = 200, description = "The conversation", body = ConversationDetail),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
    )
)]
pub async fn one(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ConversationId>,
) -> Result<Json<ConversationDetail>, ApiError> {
    let store = state.store.as_ref();
    let conversation = store.conversation(id).await?.ok_or(ApiError::NotFound)?;
    let tags = store
        .conversation_tags(&[id])
        .await?
        .into_iter()
        .map(|(_, tag)| tag)
        .collect();
    let rating = store.rating(id).await?.map(|r| Rating {
        score: r.score,
        comment: r.comment,
        created_at: r.created_at,
    });
    Ok(Json(ConversationDetail {
        conversation: Conversation::of(conversation, tags),
        rating,
    }))
}

/// Where a transcript page starts and how long it is.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TranscriptQuery {
    /// The `next` value of the previous page (the seq it ended at).
    #[param(pattern = r"^-?[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Messages per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// A conversation's messages in order (oldest first), from the start or from `cursor`.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/messages",
    tag = "conversations",
    params(("id" = i64, Path, description = "The conversation's id", example = 1), TranscriptQuery),
    responses(
        (status = 200, description = "A page of messages, oldest first", body = Page<Message>),
        (status = 400, description = "The id, cursor or limit is malformed", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
    )
)]
pub async fn messages(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ConversationId>,
    ApiQuery(query): ApiQuery<TranscriptQuery>,
) -> Result<Json<Page<Message>>, ApiError> {
    let store = state.store.as_ref();
    store.conversation(id).await?.ok_or(ApiError::NotFound)?;
    let limit = page::limit(query.limit)?;
    let after = query.cursor.as_deref().map(page::single).transpose()?;
    let rows = store
        .messages_after(id, after.unwrap_or(0), limit + 1)
        .await?;
    Ok(Json(
        Page::of(rows, limit, |m| m.seq.to_string()).map(Message::from),
    ))
}

/// A message to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// Plain text (never HTML), not only whitespace, of at most the server's
    /// `limits.max_message_bytes` in UTF-8 (8,192 bytes unless the operator changed it; longer
    /// is a 400).
    #[schema(
        min_length = 1,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub body: String,
    /// Your id for this message, 1 to 64 visible ASCII characters (a UUID, say): send again
    /// with the same id after a timeout and it is stored once. Made up by the server when
    /// absent.
    #[schema(pattern = r"^[!-~]{1,64}$")]
    pub client_id: Option<String>,
}

/// Sends a message into the conversation as the token's administrator: stored, then delivered
/// live to the visitor and the agents.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/messages",
    tag = "conversations",
    params(("id" = i64, Path, description = "The conversation's id", example = 1)),
    request_body = NewMessage,
    responses(
        (status = 201, description = "Stored and delivered", body = Message),
        (status = 200, description = "Stored before under this client_id; nothing new", body = Message),
        (status = 400, description = "Empty, too long, or a bad client_id or id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
        (status = 429, description = "Too many messages; see Retry-After", body = ErrorBody),
        (status = 503, description = "Not stored now (database down, or overloaded); retry after Retry-After", body = ErrorBody),
    )
)]
pub async fn send(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(new): ApiJson<NewMessage>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let store = state.store.clone();
    let before = store.conversation(id).await?.ok_or(ApiError::NotFound)?;
    let client_id = match new.client_id {
        Some(id) if valid_client_id(&id) => id,
        Some(_) => {
            return Err(ApiError::Invalid(
                "client_id must be 1 to 64 visible ASCII characters".into(),
            ));
        }
        None => crate::util::random_hex::<16>(),
    };
    let frame = Inbound::Send(protocol::SendMessage {
        conversation_id: Some(id),
        client_id: ClientId(client_id),
        body: new.body,
        attachment: None,
    });
    let seq = acknowledged(&state, admin, before.site_id, frame).await?;
    let message = store
        .messages_after(id, seq - 1, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("an acknowledged message is missing"))?;
    // Stored now if it is past what the conversation held before this call.
    let status = if seq > before.last_seq {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message.into())))
}

/// The document's `^[!-~]{1,64}$`: within the real-time protocol's 64 bytes whatever it holds.
fn valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A conversation's new status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStatus {
    /// `open`, `pending` or `resolved`.
    #[schema(schema_with = status_schema)]
    pub status: String,
}

/// The seq of the system message that records a status change.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChanged {
    /// The recording message's seq in the conversation.
    pub seq: i64,
}

/// Resolves, reopens or parks a conversation, as the token's administrator. The change is
/// recorded as a `system` message and shown to everyone at once; resolving asks the visitor
/// for a rating.
#[utoipa::path(
    put,
    path = "/api/v1/conversations/{id}/status",
    tag = "conversations",
    params(("id" = i64, Path, description = "The conversation's id", example = 1)),
    request_body = NewStatus,
    responses(
        (status = 200, description = "Changed", body = StatusChanged),
        (status = 400, description = "Not a status, or a malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
        (status = 429, description = "Too many changes and messages; see Retry-After", body = ErrorBody),
    )
)]
pub async fn set_status(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(change): ApiJson<NewStatus>,
) -> Result<Json<StatusChanged>, ApiError> {
    let status = ConversationStatus::parse(&change.status)
        .ok_or_else(|| ApiError::Invalid("status must be open, pending or resolved".into()))?;
    let conversation = state
        .store
        .conversation(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let frame = Inbound::SetConversationStatus(protocol::SetConversationStatus {
        conversation_id: id,
        client_id: ClientId(crate::util::random_hex::<16>()),
        status,
        until: None,
    });
    let seq = acknowledged(&state, admin, conversation.site_id, frame).await?;
    Ok(Json(StatusChanged { seq }))
}

/// Runs `frame` through a real-time session of `admin` on `site_id`, and returns the seq its
/// ack names, or the error the session answered.
async fn acknowledged(
    state: &AppState,
    admin: store::Agent,
    site_id: SiteId,
    frame: Inbound,
) -> Result<i64, ApiError> {
    let identity = Identity::Agent {
        agent: Arc::new(admin),
        site_ids: vec![site_id],
    };
    let mut session = Session::new(state.realtime.clone(), identity);
    let frames = session.handle(frame).await?;
    for frame in frames {
        match frame {
            ServerFrame::Ack { seq, .. } => return Ok(seq),
            ServerFrame::Error {
                code,
                message,
                retry_after_ms,
                ..
            } => {
                return Err(match code {
                    ErrorCode::NotFound => ApiError::NotFound,
                    ErrorCode::RateLimited => ApiError::RateLimited(retry_after_ms.unwrap_or(1000)),
                    ErrorCode::Unavailable => ApiError::Unavailable(
                        retry_after_ms.unwrap_or(crate::realtime::UNAVAILABLE_RETRY_MS),
                    ),
                    ErrorCode::BadRequest | ErrorCode::TooLarge => ApiError::Invalid(message),
                    other => ApiError::internal(format!("session refused: {other:?} {message}")),
                });
            }
            _ => {}
        }
    }
    Err(ApiError::internal("the session answered no ack"))
}

/// What to search for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find, all of them, in any language (Chinese and Japanese need no spaces):
    /// `退款`, `refund order`. Text with nothing to search for (only punctuation, say) finds
    /// nothing.
    #[param(max_length = 200)]
    pub q: String,
}

/// Messages containing every word of `q`, newest first, in the conversations the filters
/// select.
#[utoipa::path(
    get,
    path = "/api/v1/messages",
    tag = "conversations",
    params(SearchQuery, HistoryQuery, IdPageQuery),
    responses(
        (status = 200, description = "A page of matching messages, newest first (none when `q` has no word to search for)", body = Page<Message>),
        (status = 400, description = "A malformed filter or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such site", body = ErrorBody),
    )
)]
pub async fn search(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(search): ApiQuery<SearchQuery>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
    ApiQuery(paging): ApiQuery<IdPageQuery>,
) -> Result<Json<Page<Message>>, ApiError> {
    let store = state.store.as_ref();
    let words = search_words(&search.q)?;
    let filter = query.filter(store).await?;
    let limit = page::limit(paging.limit)?;
    let before = paging
        .cursor
        .as_deref()
        .map(page::single)
        .transpose()?
        .map(MessageId);
    let Some(words) = words else {
        return Ok(Json(Page::empty()));
    };
    let rows = store
        .search_messages(&filter, &words, before, limit + 1)
        .await?;
    Ok(Json(
        Page::of(rows, limit, |m| m.id.to_string()).map(Message::from),
    ))
}

/// `q` as search words, checked; `None` when it holds nothing to search for (it then finds
/// nothing: an answer, not a mistake the document could describe).
pub(super) fn search_words(q: &str) -> Result<Option<store::search::Query>, ApiError> {
    if q.chars().count() > app::api::MAX_QUERY {
        return Err(ApiError::Invalid(format!(
            "q must be at most {} characters",
            app::api::MAX_QUERY
        )));
    }
    Ok(store::search::Query::parse(q))
}
