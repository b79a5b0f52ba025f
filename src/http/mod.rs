//! The HTTP+JSON API under `/v1`, its OpenAPI document and its offline docs UI.
//!
//! Invariant: only this module knows actix-web. Handlers translate between HTTP and `Node`, and
//! `problem` is the one place errors become responses.

pub mod board;
pub mod catalogue;
pub mod co_issuer;
pub mod commands;
pub mod complaints;
pub mod content;
pub mod credentials;
pub mod issuance;
pub mod live;
pub mod open311;
pub mod open311_gateway;
pub mod open_data;
pub mod page;
pub mod problem;
pub mod proposals;
pub mod reads;
pub mod record;
pub mod request_log;
pub mod schemas;
pub mod transparency;
pub mod turnout;
pub mod versions;

use actix_web::{error::JsonPayloadError, web, HttpRequest, HttpResponse};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig as DocumentedRoutes;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::node::Node;
use problem::ApiError;

/// What the OpenAPI document says besides its operations, which [`routes`] collects.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "veche",
        description = "Citizen-signed, hash-chained log for city polls. Every write is an Ed25519-signed \
                       envelope (see docs/PROTOCOL.md); every error is an RFC 9457 problem whose `type` \
                       is `urn:veche:problem:<code>` (see docs/PROBLEMS.md).",
        license(name = "AGPL-3.0-or-later")
    ),
    components(schemas(problem::Problem, open311::GeoReportError)),
    tags(
        (name = "keys", description = "Registering keys and granting roles"),
        (name = "polls", description = "Polls, ballots and tallies"),
        (name = "catalogue", description = "Complaint and proposal categories"),
        (name = "complaints", description = "\"Our City\" complaints, queues and statistics"),
        (name = "proposals", description = "Crowdsourced proposals"),
        (name = "open-data", description = "Open-data exports (CSV, GeoJSON, JSON), each at one log size with its signed checkpoint"),
        (name = "open311", description = "Open311 GeoReport v2 in XML and JSON (by the path's extension); errors are GeoReport error documents, not problems; gateways file through POST requests"),
        (name = "log", description = "The raw signed log"),
        (name = "transparency", description = "Merkle tree: C2SP tlog-tiles, signed checkpoints, proofs and receipts"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

// The OpenAPI schema of `veche_verifier::envelope::Envelope`, which knows no HTTP framework:
// the same two members and the same refusal of unknown ones, documented here.
/// What every write endpoint takes. The payload is a JSON object written as a JSON string, so
/// its exact bytes travel untouched; the signature covers `"veche command v1\n"` followed by
/// those bytes.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Envelope)]
#[allow(dead_code)]
pub struct EnvelopeSchema {
    /// The command payload, exactly as signed (UTF-8 JSON text).
    #[schema(example = json!("{\"action\":\"register_key\",\"author\":\"…\",\"nonce\":\"…\",\"issued_at\":\"2026-11-23T10:00:00.000Z\",\"body\":{}}"))]
    payload: String,
    /// Ed25519 signature, 128 lowercase hexadecimal characters.
    signature: String,
}

/// The OpenAPI document: [`ApiDoc`] with the operation and schemas of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, document) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    declare_malformed_parameters(document)
}

/// Adds the 400 answer to every operation with a path or query parameter: the extractors
/// refuse a parameter that does not parse with `malformed-request` (see
/// [`configure_extractors`]), whatever the handler declares.
fn declare_malformed_parameters(
    mut document: utoipa::openapi::OpenApi,
) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::path::ParameterIn;
    for (path, item) in document.paths.paths.iter_mut() {
        // Open311's handlers read their parameters as text and answer GeoReport's own errors.
        if path.starts_with("/open311/") {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let parses_parameters = operation.parameters.iter().flatten().any(|parameter| {
                matches!(
                    parameter.parameter_in,
                    ParameterIn::Path | ParameterIn::Query
                )
            });
            if parses_parameters {
                for (status, response) in problem::problem_responses(&[400]) {
                    operation
                        .responses
                        .responses
                        .entry(status)
                        .or_insert(response);
                }
            }
        }
    }
    document
}

/// The OpenAPI document as served and as committed at `openapi/openapi.json`.
pub fn openapi_json() -> String {
    match openapi().to_pretty_json() {
        Ok(document) => document + "\n",
        // The document is built from derives at compile time; an empty one would be served as
        // if it were the API.
        Err(error) => panic!("the OpenAPI document failed to serialise: {error}"),
    }
}

async fn openapi_document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi_json())
}

/// What a JSON read answers.
pub(crate) type Reply<T> = Result<web::Json<T>, ApiError>;

/// What a write, or a read with its own headers, answers.
pub(crate) type Answer = Result<HttpResponse, ApiError>;

/// Runs `work` on actix's blocking pool, so that a store read never holds a worker; a pool that
/// cannot run it is a store that cannot answer.
pub(crate) async fn off_worker<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
    web::block(work)
        .await
        .map_err(|error| ApiError::StoreUnavailable(error.to_string()))?
        .map_err(ApiError::from)
}

/// The methods each documented path answers, its template split into segments.
fn documented_methods() -> &'static [(Vec<String>, String)] {
    static METHODS: std::sync::OnceLock<Vec<(Vec<String>, String)>> = std::sync::OnceLock::new();
    METHODS.get_or_init(|| {
        let document = openapi();
        document
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let mut methods = Vec::new();
                for (method, operation) in [
                    ("GET", &item.get),
                    ("POST", &item.post),
                    ("PUT", &item.put),
                    ("DELETE", &item.delete),
                    ("PATCH", &item.patch),
                ] {
                    if operation.is_some() {
                        methods.push(method);
                    }
                }
                if methods.contains(&"GET") {
                    // actix answers HEAD wherever it answers GET.
                    methods.push("HEAD");
                }
                let segments = template.split('/').map(str::to_string).collect();
                (segments, methods.join(", "))
            })
            .collect()
    })
}

/// Whether `path` fits `template`: a `{parameter}` segment matches any one segment, except the
/// last one, which (as in the tile route) may take the rest of the path.
fn fits(template: &[String], path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    let is_parameter = |segment: &str| segment.starts_with('{') && segment.ends_with('}');
    let tail = template.last().is_some_and(|last| is_parameter(last));
    let lengths_fit = segments.len() == template.len() || (tail && segments.len() > template.len());
    lengths_fit
        && template.iter().zip(&segments).all(|(expected, actual)| {
            expected == actual
                || (is_parameter(expected) && !actual.is_empty())
                || expected.strip_suffix(".{format}").is_some_and(|stem| {
                    actual.rsplit_once('.').is_some_and(|(head, _)| {
                        head == stem || (is_parameter(stem) && !head.is_empty())
                    })
                })
        })
}

/// What no route takes: 405 with `Allow` on a documented path (TRACE included), else 404.
async fn not_routed(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = request.path();
    match documented_methods()
        .iter()
        .find(|(template, _)| fits(template, path))
    {
        Some((_, allowed)) => Err(ApiError::MethodNotAllowed(allowed.clone())),
        None => Err(ApiError::NotFound(path.to_string())),
    }
}

/// Every API route, declared once: a handler's actix attribute names its method and path, its
/// `utoipa::path` attribute the rest of its operation, and this list both serves and documents it.
fn routes(config: &mut DocumentedRoutes) {
    config
        .service(commands::register_key)
        .service(commands::change_role)
        .service(commands::open_poll)
        .service(commands::correct_poll)
        .service(commands::cast_ballot)
        .service(credentials::node_issuer_key)
        .service(credentials::request_credentials)
        .service(credentials::blind_signature)
        .service(credentials::cast_anonymous_ballot)
        .service(commands::submit_command)
        .service(catalogue::attest_resident)
        .service(catalogue::revoke_key)
        .service(catalogue::define_category)
        .service(catalogue::list_categories)
        .service(complaints::file_complaint)
        .service(complaints::complaint_event)
        .service(complaints::list_complaints)
        .service(complaints::department_queue)
        .service(complaints::get_complaint)
        .service(complaints::statistics)
        .service(open_data::open_data_index)
        .service(open_data::open_data_file)
        .service(proposals::submit_proposal)
        .service(proposals::proposal_event)
        .service(proposals::list_proposals)
        .service(proposals::get_proposal)
        .service(open311::discovery)
        .service(open311::services)
        .service(open311::service_definition)
        .service(open311::requests)
        .service(open311_gateway::create_request)
        .service(open311::request)
        .service(reads::list_polls)
        .service(reads::get_poll)
        .service(versions::get_poll_version)
        .service(reads::get_tally)
        .service(turnout::get_turnout)
        .service(live::tally_stream)
        .service(live::metrics)
        .service(reads::get_ballot)
        .service(reads::get_key)
        .service(record::list_roles)
        .service(reads::log_head)
        .service(reads::log_entries)
        .service(record::log_actions)
        .service(reads::export_log)
        .service(content::held_content)
        .service(reads::healthz)
        .service(reads::readyz)
        .service(transparency::latest_checkpoint)
        .service(transparency::tile)
        .service(transparency::checkpoint_at)
        .service(transparency::inclusion_proof)
        .service(transparency::consistency_proof)
        .service(transparency::upgrade_receipt);
}

/// Registers every route, the body limits and the problem+json error handlers.
pub fn configure(config: &mut web::ServiceConfig) {
    configure_extractors(config);
    routes(&mut DocumentedRoutes::new(config));
    config
        .route("/openapi.json", web::get().to(openapi_document))
        .configure(board::configure)
        // The UI's scripts are compiled into the binary (the `vendored` feature): it works offline.
        // Its validator badge would send the document to validator.swagger.io: "none" turns it off.
        .service(
            SwaggerUi::new("/docs/{_:.*}")
                .url("/docs/openapi.json", openapi())
                .config(Config::default().validator_url("none")),
        )
        .default_service(web::to(not_routed));
}

/// Body limits, and extractor errors answered as problem+json.
fn configure_extractors(config: &mut web::ServiceConfig) {
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
        );
}

/// Keeps `Node` reachable from handlers.
fn node_data(node: std::sync::Arc<Node>) -> web::Data<Node> {
    web::Data::from(node)
}

/// The running HTTP server: a future that ends when the server stops (on SIGTERM or SIGINT, or
/// through its handle). Named here so that only `http` names actix-web.
pub type RunningHttpServer = actix_web::dev::Server;

/// Binds the API to `listener`. The returned server must be awaited or spawned inside
/// [`block_on`]'s runtime.
pub fn bind(
    node: std::sync::Arc<Node>,
    listener: std::net::TcpListener,
) -> std::io::Result<RunningHttpServer> {
    let data = node_data(node);
    // One table for every worker: the caps are the server's, not a worker's.
    let stream_slots = web::Data::new(std::sync::Arc::new(live::StreamSlots::default()));
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(stream_slots.clone())
            .wrap(actix_web::middleware::Compress::default())
            .wrap(actix_web::middleware::from_fn(request_log::log_request))
            .configure(configure)
    })
    .listen(listener)?
    .shutdown_timeout(projections::limits::HTTP_SHUTDOWN_TIMEOUT_SECONDS)
    .run();
    Ok(server)
}

/// Runs `future` on the runtime the HTTP server needs (actix's system, which also drives the
/// tokio tasks the node spawns).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}

/// A public key from a path segment: 64 lowercase hexadecimal characters.
pub(crate) fn parse_key(text: &str) -> Result<projections::PublicKey, problem::ApiError> {
    projections::PublicKey::from_hex(text).ok_or_else(|| {
        problem::ApiError::MalformedRequest("a key is 64 lowercase hexadecimal characters".into())
    })
}
