//! `/api/v1/visitors`: who a visitor is (what they told, what the host page told about them)
//! and their conversations.

use protocol::{SiteId, VisitorId};
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Admin;
use super::conversations::Conversation;
use super::error::{ApiError, ApiPath, ErrorBody};
use crate::web::state::AppState;

/// Someone who opened the widget on a site.
#[derive(Debug, Serialize, ToSchema)]
pub struct Visitor {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: VisitorId,
    /// The site they came to.
    #[schema(value_type = i64)]
    pub site_id: SiteId,
    /// Their name, if they gave one.
    pub name: Option<String>,
    /// Their e-mail address, if they gave one.
    pub email: Option<String>,
    /// What the host page told about them (plan, order number, …).
    pub attributes: BTreeMap<String, String>,
    /// First contact (Unix milliseconds).
    pub created_at: i64,
    /// Latest contact (Unix milliseconds).
    pub last_seen_at: i64,
    /// The browser's language (BCP 47), as the widget last said.
    pub language: Option<String>,
}

/// One visitor.
#[utoipa::path(
    get,
    path = "/api/v1/visitors/{id}",
    tag = "visitors",
    params(("id" = i64, Path, description = "The visitor's id", example = 1)),
    responses(
        (status = 200, description = "The visitor", body = Visitor),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such visitor", body = ErrorBody),
    )
)]
pub async fn one(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<VisitorId>,
) -> Result<Json<Visitor>, ApiError> {
    let visitor = state.store.visitor(id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(Visitor {
        id: visitor.id,
        site_id: visitor.site_id,
        name: visitor.name,
        email: visitor.email,
        attributes: visitor.attributes.0,
        created_at: visitor.created_at,
        last_seen_at: visitor.last_seen_at,
        language: visitor.language,
    }))
}

/// The visitor's conversations (up to their latest 50), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/visitors/{id}/conversations",
    tag = "visitors",
    params(("id" = i64, Path, description = "The visitor's id", example = 1)),
    responses(
        (status = 200, description = "Their conversations", body = Vec<Conversation>),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such visitor", body = ErrorBody),
    )
)]
pub async fn conversations(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<VisitorId>,
) -> Result<Json<Vec<Conversation>>, ApiError> {
    let store = state.store.as_ref();
    store.visitor(id).await?.ok_or(ApiError::NotFound)?;
    let rows = store.visitor_conversations(id).await?;
    Ok(Json(super::conversations::with_tags(store, rows).await?))
}
