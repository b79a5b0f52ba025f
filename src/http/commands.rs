//! Write endpoints: each takes a signed envelope and answers with a receipt once durable.

use actix_web::{post, web, HttpRequest, HttpResponse};

use crate::coordination::{Admission, RateLimit};
use crate::envelope::Envelope;
use crate::http::problem::{ApiError, Problem};
use crate::http::schemas::Receipt;
use crate::http::EnvelopeSchema;
use crate::node::{CommandError, Node};
use crate::writer::SubmitError;
use projections::Refusal;
use projections::{Action, Command};

/// Opens the envelope (the signature check runs on the node's signature-check pool, not on this
/// worker, which stays free for reads), checks that the action fits the endpoint, and waits for
/// the writer's durable receipt.
pub(crate) async fn accept(
    node: &Node,
    request: &HttpRequest,
    envelope: Envelope,
    expected: Option<&'static str>,
    location: impl FnOnce(&Command) -> Result<Location, ApiError>,
) -> Result<HttpResponse, ApiError> {
    if let Some(address) = request.peer_addr() {
        admit(
            node,
            RateLimit::AddressPerMinute,
            &address.ip().to_string(),
            "address",
        )
        .await?;
    }
    let signed = node.open_envelope(envelope).await?;
    if let Some(expected) = expected {
        let found = signed.command.action.name();
        if found != expected {
            return Err(CommandError::ActionMismatch { expected, found }.into());
        }
    }
    let location = location(&signed.command)?;
    let author = signed.command.author.to_hex();
    admit(node, RateLimit::KeyPerMinute, &author, "key").await?;
    if matches!(signed.command.action, Action::FileComplaint(_)) {
        admit(node, RateLimit::ComplaintsPerKeyPerDay, &author, "key").await?;
    }
    // Another node may already hold this command: refuse the replay before it reaches a writer.
    let coordination = node.coordination();
    let nonce = signed.command.nonce.clone();
    if let Some(coordination) = coordination {
        if coordination.claim_nonce(&author, &nonce).await == Some(false) {
            return Err(CommandError::Submit(SubmitError::Refused(Refusal::ReplayedNonce)).into());
        }
    }
    let appended = node.append(signed).await;
    if let (
        Some(coordination),
        Err(
            SubmitError::Overloaded
            | SubmitError::StoreUnavailable(_)
            | SubmitError::Stopped
            | SubmitError::Faulted(_),
        ),
    ) = (coordination, &appended)
    {
        // Not the command's fault: let the client send the same envelope again.
        coordination.release_nonce(&author, &nonce).await;
    }
    let receipt = appended?;
    let mut response = HttpResponse::Created();
    if let Some(location) = location.resolve(receipt.position) {
        response.insert_header(("Location", location));
    }
    Ok(response.json(receipt))
}

/// Where the resource a command created or changed can be read.
pub(crate) enum Location {
    /// No resource of its own (a generic command).
    Nowhere,
    /// A resource whose path the command names.
    At(String),
    /// A new item of this collection, identified by its entry's log position.
    NewItemOf(&'static str),
}

impl Location {
    fn resolve(self, position: u64) -> Option<String> {
        match self {
            Location::Nowhere => None,
            Location::At(path) => Some(path),
            Location::NewItemOf(collection) => Some(format!("{collection}/{position}")),
        }
    }
}

/// Counts one request of `subject` against `limit`; `Err` when it is over.
async fn admit(
    node: &Node,
    limit: RateLimit,
    subject: &str,
    subject_kind: &'static str,
) -> Result<(), ApiError> {
    match node.rate_limits.admit(limit, subject).await {
        Admission::Allowed => Ok(()),
        Admission::Limited {
            retry_after_seconds,
        } => Err(ApiError::RateLimited {
            subject: subject_kind,
            retry_after_seconds,
        }),
    }
}

/// Checks that a lifecycle action sent to `/v1/{collection}/{path_id}/events` is a client action
/// about that item, and names the item as the new resource's location.
pub(crate) fn lifecycle_target(
    action: &Action,
    named: Option<u64>,
    path_id: u64,
    collection: &'static str,
) -> Result<Location, ApiError> {
    match named {
        Some(named) if !action.is_system() => {
            if named == path_id {
                Ok(Location::At(format!("/v1/{collection}/{path_id}")))
            } else {
                Err(ApiError::MalformedRequest(format!(
                    "the command is about item {named} but was sent to /v1/{collection}/{path_id}"
                )))
            }
        }
        _ => Err(CommandError::ActionMismatch {
            expected: "a lifecycle action of this collection",
            found: action.name(),
        }
        .into()),
    }
}

/// Register a public key. The payload's action is `register_key`, its author the key itself.
#[utoipa::path(
    post, path = "/v1/keys", tag = "keys", request_body = EnvelopeSchema,
    responses(
        (status = 201, description = "The key is registered", body = Receipt),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded or store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/keys")]
pub async fn register_key(
    node: web::Data<Node>,
    request: HttpRequest,
    envelope: web::Json<Envelope>,
) -> Result<HttpResponse, ApiError> {
    accept(
        &node,
        &request,
        envelope.into_inner(),
        Some("register_key"),
        |command| Ok(Location::At(format!("/v1/keys/{}", command.author))),
    )
    .await
}

/// Grant or revoke a role. The payload's action is `grant_role` or `revoke_role`, signed by an
/// admin key.
#[utoipa::path(
    post, path = "/v1/roles", tag = "keys", request_body = EnvelopeSchema,
    responses(
        (status = 201, description = "The role change is in the log", body = Receipt),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded or store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/roles")]
pub async fn change_role(
    node: web::Data<Node>,
    request: HttpRequest,
    envelope: web::Json<Envelope>,
) -> Result<HttpResponse, ApiError> {
    accept(
        &node,
        &request,
        envelope.into_inner(),
        None,
        |command| match &command.action {
            Action::GrantRole(change) | Action::RevokeRole(change) => {
                Ok(Location::At(format!("/v1/keys/{}", change.subject)))
            }
            other => Err(CommandError::ActionMismatch {
                expected: "grant_role or revoke_role",
                found: other.name(),
            }
            .into()),
        },
    )
    .await
}

/// Open a poll. The payload's action is `open_poll`, signed by an official; the new poll's
/// identifier is the receipt's position.
#[utoipa::path(
    post, path = "/v1/polls", tag = "polls", request_body = EnvelopeSchema,
    responses(
        (status = 201, description = "The poll is in the log; its id is the receipt's position", body = Receipt),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded or store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/polls")]
pub async fn open_poll(
    node: web::Data<Node>,
    request: HttpRequest,
    envelope: web::Json<Envelope>,
) -> Result<HttpResponse, ApiError> {
    accept(
        &node,
        &request,
        envelope.into_inner(),
        Some("open_poll"),
        |_| Ok(Location::NewItemOf("/v1/polls")),
    )
    .await
}

/// Cast a ballot. The payload's action is `cast_ballot` and its `poll` must equal the path's.
#[utoipa::path(
    post, path = "/v1/polls/{poll}/ballots", tag = "polls", request_body = EnvelopeSchema,
    params(("poll" = u64, Path, description = "Poll identifier")),
    responses(
        (status = 201, description = "The ballot is counted", body = Receipt),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded or store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/polls/{poll}/ballots")]
pub async fn cast_ballot(
    node: web::Data<Node>,
    request: HttpRequest,
    poll: web::Path<u64>,
    envelope: web::Json<Envelope>,
) -> Result<HttpResponse, ApiError> {
    let poll = poll.into_inner();
    accept(
        &node,
        &request,
        envelope.into_inner(),
        Some("cast_ballot"),
        |command| match &command.action {
            Action::CastBallot(ballot) if ballot.poll != poll => {
                Err(ApiError::MalformedRequest(format!(
                    "the ballot is for poll {} but was sent to poll {poll}",
                    ballot.poll
                )))
            }
            _ => Ok(Location::At(format!(
                "/v1/polls/{poll}/ballots/{}",
                command.author
            ))),
        },
    )
    .await
}

/// Submit any signed command. Resource routes are preferred; this one serves clients that sign
/// generically.
#[utoipa::path(
    post, path = "/v1/commands", tag = "log", request_body = EnvelopeSchema,
    responses(
        (status = 201, description = "The command is in the log", body = Receipt),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded or store unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/commands")]
pub async fn submit_command(
    node: web::Data<Node>,
    request: HttpRequest,
    envelope: web::Json<Envelope>,
) -> Result<HttpResponse, ApiError> {
    accept(&node, &request, envelope.into_inner(), None, |_| {
        Ok(Location::Nowhere)
    })
    .await
}
