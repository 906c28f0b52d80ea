//! `/api/v1/leave-messages`: messages visitors left while no agent was online, with their
//! handling (status, who has it, notes), the same records the console's leave-message page
//! works on.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use protocol::{AgentId, LeaveMessageId, SiteId, VisitorId};
use serde::{Deserialize, Deserializer, Serialize};
use store::LeaveMessageStatus;
use utoipa::openapi::schema::Object;
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use super::conversations::{one_of, search_words};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::page::{self, Page, PageQuery};
use crate::web::state::AppState;

fn status_schema() -> Object {
    one_of(LeaveMessageStatus::ALL.iter().map(|s| s.as_str()))
}

fn parse_status(text: &str) -> Result<LeaveMessageStatus, ApiError> {
    LeaveMessageStatus::parse(text)
        .ok_or_else(|| ApiError::Invalid("status must be new, in_progress or handled".into()))
}

/// A message left through the widget's offline form.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaveMessage {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: LeaveMessageId,
    /// The site whose form it came through.
    #[schema(value_type = i64)]
    pub site_id: SiteId,
    /// The visitor, if known.
    #[schema(value_type = Option<i64>)]
    pub visitor_id: Option<VisitorId>,
    /// The name they gave.
    pub name: Option<String>,
    /// How to answer them: an e-mail address or phone number, as typed.
    pub contact: String,
    /// What they wrote.
    pub body: String,
    /// `new`, `in_progress` or `handled`.
    #[schema(schema_with = status_schema)]
    pub status: &'static str,
    /// The agent handling it, if any.
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<AgentId>,
    /// When it was left (Unix milliseconds).
    pub created_at: i64,
}

impl From<store::LeaveMessage> for LeaveMessage {
    fn from(message: store::LeaveMessage) -> LeaveMessage {
        LeaveMessage {
            id: message.id,
            site_id: message.site_id,
            visitor_id: message.visitor_id,
            name: message.name,
            contact: message.contact,
            body: message.body,
            status: message.status.as_str(),
            assignee_id: message.assignee_id,
            created_at: message.created_at,
        }
    }
}

/// An agent's note on a leave-message (replies sent by e-mail are kept as notes too).
#[derive(Debug, Serialize, ToSchema)]
pub struct Note {
    /// Its id.
    pub id: i64,
    /// Who wrote it (absent once that agent is deleted).
    #[schema(value_type = Option<i64>)]
    pub agent_id: Option<AgentId>,
    /// What it says.
    pub body: String,
    /// When it was written (Unix milliseconds).
    pub created_at: i64,
}

impl From<store::LeaveMessageNote> for Note {
    fn from(note: store::LeaveMessageNote) -> Note {
        Note {
            id: note.id,
            agent_id: note.agent_id,
            body: note.body,
            created_at: note.created_at,
        }
    }
}

/// A leave-message with its notes.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaveMessageDetail {
    /// The leave-message.
    #[serde(flatten)]
    pub message: LeaveMessage,
    /// Its notes, oldest first.
    pub notes: Vec<Note>,
}

/// Which leave-messages a list holds.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeaveQuery {
    /// Only this site's (default: every site).
    #[param(value_type = Option<i64>)]
    pub site_id: Option<SiteId>,
    /// Only those in this status: `new`, `in_progress` or `handled`.
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    /// Only those whose name, contact or text contain every word of this (any language);
    /// text with nothing to search for (only punctuation, say) finds nothing.
    #[param(max_length = 200)]
    pub q: Option<String>,
}

/// Leave-messages, newest first: by status, matching a search, or both. With `q` and `status`
/// together a page may hold fewer than `limit` items: follow `next` until it is absent.
#[utoipa::path(
    get,
    path = "/api/v1/leave-messages",
    tag = "leave-messages",
    params(LeaveQuery, PageQuery),
    responses(
        (status = 200, description = "A page of leave-messages", body = Page<LeaveMessage>),
        (status = 400, description = "A malformed filter or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such site", body = ErrorBody),
    )
)]
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<LeaveQuery>,
    ApiQuery(paging): ApiQuery<PageQuery>,
) -> Result<Json<Page<LeaveMessage>>, ApiError> {
    let store = state.store.as_ref();
    let sites = super::sites::scope(store, query.site_id).await?;
    let limit = page::limit(paging.limit)?;
    let cursor = paging.cursor.as_deref();
    let status = query.status.as_deref().map(parse_status).transpose()?;
    let after = match cursor {
        None => None,
        Some(cursor) => {
            let (created_at, id) = page::pair(cursor)?;
            Some(store::LeaveMessageCursor {
                created_at,
                id: LeaveMessageId(id),
            })
        }
    };
    let page = match query.q.as_deref() {
        Some(text) => {
            let Some(words) = search_words(text)? else {
                return Ok(Json(Page::empty()));
            };
            // Search pages by id alone; the cursor is the same pair as the list's, so one
            // `next` syntax serves both.
            let before = after.map(|cursor| cursor.id);
            let rows = store
                .search_leave_messages(&sites, &words, before, limit + 1)
                .await?;
            let mut page = Page::of(rows, limit, |m| page::pair_cursor(m.created_at, m.id.0));
            // The store searches every status; the page keeps its cursor, so what follows is
            // the same whether or not some rows were left out here.
            if let Some(status) = status {
                page.items.retain(|m| m.status == status);
            }
            page
        }
        None => {
            let rows = store
                .leave_messages_page(&sites, status, after, limit + 1)
                .await?;
            Page::of(rows, limit, |m| page::pair_cursor(m.created_at, m.id.0))
        }
    };
    Ok(Json(page.map(LeaveMessage::from)))
}

/// One leave-message with its notes.
#[utoipa::path(
    get,
    path = "/api/v1/leave-messages/{id}",
    tag = "leave-messages",
    params(("id" = i64, Path, description = "The leave-message's id", example = 1)),
    responses(
        (status = 200, description = "The leave-message", body = LeaveMessageDetail),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such leave-message", body = ErrorBody),
    )
)]
pub async fn one(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<LeaveMessageId>,
) -> Result<Json<LeaveMessageDetail>, ApiError> {
    let store = state.store.as_ref();
    let message = store.leave_message(id).await?.ok_or(ApiError::NotFound)?;
    let notes = store.leave_message_notes(id).await?;
    Ok(Json(LeaveMessageDetail {
        message: message.into(),
        notes: notes.into_iter().map(Note::from).collect(),
    }))
}

/// A present-but-null field is `Some(None)`; an absent one (via `default`) is `None`. The id
/// is any JSON integer in the `i64` range, written `7` or `7.0` (JSON Schema's `integer`
/// includes both).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<i64>>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(Some(None));
    };
    integer(&number)
        .map(|id| Some(Some(id)))
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not an id")))
}

/// `number` as an `i64` when it is a whole number in range, however it was written.
fn integer(number: &serde_json::Number) -> Option<i64> {
    if let Some(id) = number.as_i64() {
        return Some(id);
    }
    // 2^63 is exact as a float; every whole float below it in magnitude fits an i64.
    let limit = 9_223_372_036_854_775_808.0_f64;
    number
        .as_f64()
        .filter(|f| f.fract() == 0.0 && *f >= -limit && *f < limit)
        .map(|f| f as i64)
}

/// A field that may be left out but, given, must be text: `null` is refused as the document
/// says, rather than read as "left out".
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    String::deserialize(deserializer).map(Some)
}

/// What to change; fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaveMessageChange {
    /// `new`, `in_progress` or `handled`.
    #[serde(default, deserialize_with = "text")]
    #[schema(schema_with = status_schema)]
    pub status: Option<String>,
    /// The agent to handle it (one of its site's agents), or `null` for nobody.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<Option<i64>>,
}

/// Changes a leave-message's status or who handles it.
#[utoipa::path(
    patch,
    path = "/api/v1/leave-messages/{id}",
    tag = "leave-messages",
    params(("id" = i64, Path, description = "The leave-message's id", example = 1)),
    request_body = LeaveMessageChange,
    responses(
        (status = 200, description = "As it is now", body = LeaveMessage),
        (status = 400, description = "Not a status, or a malformed body or id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such leave-message", body = ErrorBody),
        (status = 409, description = "assignee_id is not an enabled agent of its site", body = ErrorBody),
    )
)]
pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<LeaveMessageId>,
    ApiJson(change): ApiJson<LeaveMessageChange>,
) -> Result<Json<LeaveMessage>, ApiError> {
    let store = state.store.as_ref();
    let message = store.leave_message(id).await?.ok_or(ApiError::NotFound)?;
    let status = match change.status.as_deref() {
        Some(text) => parse_status(text)?,
        None => message.status,
    };
    let assignee = change
        .assignee_id
        .map_or(message.assignee_id, |agent| agent.map(AgentId));
    if let Some(agent) = assignee {
        let members = store.site_agents(&[message.site_id]).await?;
        if !members.iter().any(|m| m.id == agent && !m.disabled) {
            return Err(ApiError::Conflict(
                "assignee_id must be an enabled agent of the leave-message's site".into(),
            ));
        }
    }
    let updated = store.update_leave_message(id, status, assignee).await?;
    Ok(Json(updated.into()))
}

/// A note to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// What it says: 1 to 10,000 characters, not only whitespace (which is trimmed).
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub body: String,
}

/// Adds a note, written by the token's administrator.
#[utoipa::path(
    post,
    path = "/api/v1/leave-messages/{id}/notes",
    tag = "leave-messages",
    params(("id" = i64, Path, description = "The leave-message's id", example = 1)),
    request_body = NewNote,
    responses(
        (status = 201, description = "Added", body = Note),
        (status = 400, description = "Empty, too long, or a malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such leave-message", body = ErrorBody),
    )
)]
pub async fn add_note(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<LeaveMessageId>,
    ApiJson(note): ApiJson<NewNote>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    // Counted before trimming, as the document's `maxLength` counts.
    let long = note.body.chars().count() > app::pages::leave::MAX_TEXT;
    let body = note.body.trim().to_owned();
    if body.is_empty() || long {
        return Err(ApiError::Invalid(format!(
            "body must be 1 to {} characters",
            app::pages::leave::MAX_TEXT
        )));
    }
    let store = state.store.as_ref();
    store.leave_message(id).await?.ok_or(ApiError::NotFound)?;
    let note = store
        .add_leave_message_note(store::NewLeaveMessageNote {
            leave_message_id: id,
            agent_id: Some(admin.id),
            body,
            created_at: crate::util::now_ms(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(note.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_any_whole_json_number_in_range() {
        let change = |json: &str| serde_json::from_str::<LeaveMessageChange>(json);
        for (json, expected) in [
            (r#"{"assignee_id": 7}"#, Some(Some(7))),
            (r#"{"assignee_id": -3665.0}"#, Some(Some(-3665))),
            (r#"{"assignee_id": 1e3}"#, Some(Some(1000))),
            (r#"{"assignee_id": null}"#, Some(None)),
            ("{}", None),
        ] {
            assert_eq!(
                change(json).map(|c| c.assignee_id).ok(),
                Some(expected),
                "{json}"
            );
        }
        for json in [
            r#"{"assignee_id": 7.5}"#,
            r#"{"assignee_id": 9223372036854775808}"#,
            r#"{"assignee_id": 9.3e18}"#,
            r#"{"assignee_id": "7"}"#,
            r#"{"status": null}"#,
        ] {
            assert!(change(json).is_err(), "{json}");
        }
    }
}
