//! The HTTP+JSON API under `/v1`, its OpenAPI document and its offline docs UI.
//!
//! Invariant: only this module knows actix-web. Handlers translate between HTTP and `Node`, and
//! `problem` is the one place errors become responses.

pub mod commands;
pub mod problem;
pub mod reads;

use actix_web::{error::JsonPayloadError, web, HttpRequest, HttpResponse};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::node::Node;
use problem::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "veche",
        description = "Citizen-signed, hash-chained log for city polls. Every write is an Ed25519-signed \
                       envelope (see docs/PROTOCOL.md); every error is an RFC 9457 problem whose `type` \
                       is `urn:veche:problem:<code>` (see docs/PROBLEMS.md).",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        commands::register_key,
        commands::change_role,
        commands::open_poll,
        commands::cast_ballot,
        commands::submit_command,
        reads::list_polls,
        reads::get_poll,
        reads::get_tally,
        reads::get_ballot,
        reads::get_key,
        reads::log_head,
        reads::log_entries,
        reads::healthz,
        reads::readyz,
    ),
    tags(
        (name = "keys", description = "Registering keys and granting roles"),
        (name = "polls", description = "Polls, ballots and tallies"),
        (name = "log", description = "The raw signed log"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document as served and as committed at `openapi/openapi.json`.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default() + "\n"
}

async fn openapi_document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi_json())
}

async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(request.path().to_string()))
}

/// Registers every route, the body limits and the problem+json error handlers.
pub fn configure(config: &mut web::ServiceConfig) {
    let body_bytes_max = projections::limits::REQUEST_BODY_BYTES_MAX;
    config
        .app_data(
            web::JsonConfig::default()
                .limit(body_bytes_max)
                .error_handler(move |error, _| {
                    match error {
                        JsonPayloadError::Overflow { .. }
                        | JsonPayloadError::OverflowKnownLength { .. } => {
                            ApiError::BodyTooLarge(body_bytes_max)
                        }
                        other => ApiError::MalformedRequest(other.to_string()),
                    }
                    .into()
                }),
        )
        .app_data(web::PayloadConfig::default().limit(body_bytes_max))
        .app_data(
            web::PathConfig::default()
                .error_handler(|error, _| ApiError::MalformedRequest(error.to_string()).into()),
        )
        .app_data(
            web::QueryConfig::default()
                .error_handler(|error, _| ApiError::MalformedRequest(error.to_string()).into()),
        )
        .service(commands::register_key)
        .service(commands::change_role)
        .service(commands::open_poll)
        .service(commands::cast_ballot)
        .service(commands::submit_command)
        .service(reads::list_polls)
        .service(reads::get_poll)
        .service(reads::get_tally)
        .service(reads::get_ballot)
        .service(reads::get_key)
        .service(reads::log_head)
        .service(reads::log_entries)
        .service(reads::healthz)
        .service(reads::readyz)
        .route("/openapi.json", web::get().to(openapi_document))
        // The UI's scripts are compiled into the binary (the `vendored` feature): it works offline.
        .service(SwaggerUi::new("/docs/{_:.*}").url("/docs/openapi.json", ApiDoc::openapi()))
        .default_service(web::to(not_found));
}

/// Keeps `Node` reachable from handlers.
pub fn node_data(node: std::sync::Arc<Node>) -> web::Data<Node> {
    web::Data::from(node)
}
