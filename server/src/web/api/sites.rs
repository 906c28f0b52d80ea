//! `/api/v1/sites`: the websites that embed the widget.

use axum::Json;
use axum::extract::State;
use protocol::SiteId;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, ApiPath, ErrorBody};
use crate::web::state::AppState;

/// A website that embeds the widget.
#[derive(Debug, Serialize, ToSchema)]
pub struct Site {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: SiteId,
    /// The key in the embed snippet's `data-site`.
    pub public_key: String,
    /// Its name in the console.
    pub name: String,
    /// Origins whose pages may open the widget.
    pub allowed_origins: Vec<String>,
    /// The widget's look and behaviour (colour, pre-chat form, business hours, …).
    pub widget_settings: serde_json::Value,
    /// When it was added (Unix milliseconds).
    pub created_at: i64,
}

impl From<store::Site> for Site {
    fn from(site: store::Site) -> Site {
        Site {
            id: site.id,
            public_key: site.public_key,
            name: site.name,
            allowed_origins: site.allowed_origins,
            widget_settings: site.widget_settings,
            created_at: site.created_at,
        }
    }
}

/// Every site, by id.
#[utoipa::path(
    get,
    path = "/api/v1/sites",
    tag = "sites",
    responses(
        (status = 200, description = "Every site", body = Vec<Site>),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
    )
)]
pub async fn list(_: Admin, State(state): State<AppState>) -> Result<Json<Vec<Site>>, ApiError> {
    let sites = state.store.all_sites().await?;
    Ok(Json(sites.into_iter().map(Site::from).collect()))
}

/// One site.
#[utoipa::path(
    get,
    path = "/api/v1/sites/{id}",
    tag = "sites",
    params(("id" = i64, Path, description = "The site's id", example = 1)),
    responses(
        (status = 200, description = "The site", body = Site),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token's owner is not an administrator", body = ErrorBody),
        (status = 404, description = "No such site", body = ErrorBody),
    )
)]
pub async fn one(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<SiteId>,
) -> Result<Json<Site>, ApiError> {
    let site = state.store.site(id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(site.into()))
}

/// The sites a list covers: `site_id` (`NotFound` if there is no such site), or every site.
pub(super) async fn scope(
    store: &dyn store::Store,
    site_id: Option<SiteId>,
) -> Result<Vec<SiteId>, ApiError> {
    Ok(match site_id {
        Some(id) => vec![store.site(id).await?.ok_or(ApiError::NotFound)?.id],
        None => store.all_sites().await?.iter().map(|s| s.id).collect(),
    })
}
