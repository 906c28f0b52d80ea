//! Who is calling: the `Authorization: Bearer` token (made at `/admin/api`, see
//! `app::pages::admin::api`), looked up by its hash, must belong to an enabled administrator.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::ApiError;
use crate::web::state::AppState;

/// The administrator a valid token acts as.
pub struct Admin(pub store::Agent);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        let agent = state
            .store
            .api_token_agent(&app::session::token_hash(token), crate::util::now_ms())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if agent.role != store::Role::Admin {
            return Err(ApiError::Forbidden);
        }
        Ok(Admin(agent))
    }
}
