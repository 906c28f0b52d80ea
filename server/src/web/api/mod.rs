//! The REST API under `/api/v1`, for integrations (a CRM, a shop's back office, a bot): sites,
//! conversations and their messages, visitors and leave-messages, as JSON.
//!
//! Every call carries `Authorization: Bearer <token>`, a key an administrator made at
//! `/admin/api`; it acts as that administrator, on every site, for as long as they are an
//! enabled admin. The OpenAPI document at `/api/v1/openapi.json` is generated from the handlers
//! below by `utoipa`, so it cannot drift from what they do. Errors are JSON
//! (`{"error": "not_found", "message": "…"}`) with a stable code and a message for people.

mod auth;
mod conversations;
mod error;
mod leave_messages;
mod page;
mod sites;
mod visitors;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayItems, KnownFormat, Schema, SchemaFormat};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::web::state::AppState;

pub use error::ApiError;

/// Where the document describing the API is served (no token needed to read it).
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The document's fixed parts; the paths and schemas come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kefu REST API",
        description = "Sites, conversations, messages, visitors and leave-messages of a Kefu \
                       install. Authenticate with `Authorization: Bearer <token>`, a token an \
                       administrator makes at /admin/api. Times are Unix milliseconds. Lists \
                       are newest first and paged with the opaque `next` cursor."
    ),
    modifiers(&BearerToken),
    security(("token" = [])),
    tags(
        (name = "sites", description = "The websites that embed the widget."),
        (name = "conversations", description = "Chats and their messages."),
        (name = "visitors", description = "People who opened the widget."),
        (name = "leave-messages", description = "Messages left while no agent was online."),
    )
)]
struct ApiDoc;

/// Declares the bearer-token scheme every operation uses.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_default()
            .add_security_scheme(
                "token",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("An API token made by an administrator at /admin/api."))
                        .build(),
                ),
            );
    }
}

/// Gives every 64-bit integer (ids, times) the `i64` range as its bounds where the handler
/// did not set narrower ones: the server refuses a number outside it with 400, so a document
/// without them would call such a request valid. Applied to the finished document (the paths
/// and schemas come from the routes, after [`ApiDoc`]'s own modifiers ran).
struct IntegerBounds;

impl Modify for IntegerBounds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let RefOr::T(parameter) = parameter
                        && let Some(RefOr::T(schema)) = &mut parameter.schema
                    {
                        bound_integers(schema);
                    }
                }
            }
        }
        if let Some(components) = &mut openapi.components {
            for schema in components.schemas.values_mut() {
                if let RefOr::T(schema) = schema {
                    bound_integers(schema);
                }
            }
        }
    }
}

/// [`IntegerBounds`] on one schema and every schema inside it.
fn bound_integers(schema: &mut Schema) {
    let inner: Vec<&mut RefOr<Schema>> = match schema {
        Schema::Object(object) => {
            if matches!(
                object.format,
                Some(SchemaFormat::KnownFormat(KnownFormat::Int64))
            ) {
                object.minimum.get_or_insert(i64::MIN.into());
                object.maximum.get_or_insert(i64::MAX.into());
            }
            object.properties.values_mut().collect()
        }
        Schema::Array(array) => match &mut array.items {
            ArrayItems::RefOrSchema(items) => vec![items.as_mut()],
            _ => Vec::new(),
        },
        Schema::OneOf(one_of) => one_of.items.iter_mut().collect(),
        Schema::AllOf(all_of) => all_of.items.iter_mut().collect(),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().collect(),
        _ => Vec::new(),
    };
    for schema in inner {
        if let RefOr::T(schema) = schema {
            bound_integers(schema);
        }
    }
}

/// The API's routes and its OpenAPI document, from the same declarations.
fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sites::list))
        .routes(routes!(sites::one))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::one))
        .routes(routes!(conversations::messages, conversations::send))
        .routes(routes!(conversations::set_status))
        .routes(routes!(conversations::search))
        .routes(routes!(visitors::one))
        .routes(routes!(visitors::conversations))
        .routes(routes!(leave_messages::list))
        .routes(routes!(leave_messages::one, leave_messages::update))
        .routes(routes!(leave_messages::add_note))
        .split_for_parts();
    IntegerBounds.modify(&mut doc);
    (routes, doc)
}

/// `/api/v1/…` with the OpenAPI document beside it.
pub fn router() -> Router<AppState> {
    let (routes, doc) = parts();
    let doc = match doc.to_json() {
        Ok(json) => Bytes::from(json),
        Err(error) => {
            // Cannot happen with the derived document; the API still works without it.
            tracing::error!(%error, "the OpenAPI document does not serialise");
            Bytes::new()
        }
    };
    routes.route(
        OPENAPI_PATH,
        get(move || {
            let doc = doc.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], doc) }
        }),
    )
}
