//! The one place that turns errors into RFC 9457 `application/problem+json` responses.
//!
//! Every problem type is a stable URN, `urn:veche:problem:<code>`, documented in
//! `docs/PROBLEMS.md`; clients match on `type`, never on `title` or `detail`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use projections::command::ParseError;
use projections::Refusal;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};

use crate::envelope::EnvelopeError;
use crate::node::CommandError;
use crate::writer::SubmitError;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `urn:veche:problem:poll-closed`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
}

/// The OpenAPI response of one problem status: an `application/problem+json` [`Problem`]
/// whose `type` says which problem it is. An operation lists one per status it can answer.
pub struct ProblemStatus<const STATUS: u16>;

impl<const STATUS: u16> utoipa::IntoResponses for ProblemStatus<STATUS> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problem_responses(&[STATUS])
    }
}

/// The problem responses of `statuses`.
pub fn problem_responses(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .map(|status| {
            let content = Content::new(Some(Ref::from_schema_name("Problem")));
            let response = ResponseBuilder::new()
                .description(problem_description(*status))
                .content(PROBLEM_CONTENT_TYPE, content);
            (status.to_string(), RefOr::T(response.build()))
        })
        .collect()
}

/// What a problem status means wherever it is answered; `docs/PROBLEMS.md` lists the types.
fn problem_description(status: u16) -> &'static str {
    match status {
        400 => {
            "Malformed request, envelope, signature, command or query, or a proof that cannot exist"
        }
        403 => "The signer may not do this, or the tally is sealed until the poll closes",
        404 => "No such item, or beyond the tree's size",
        409 => {
            "The command conflicts with the state things are in (a replayed nonce, a closed poll)"
        }
        413 => "The body or the payload is too large",
        422 => "The command asks for something invalid",
        429 => "Too many requests or live streams from this address or key",
        503 => {
            "Overloaded, shutting down, not ready, store unavailable or streams full: retry later"
        }
        other => panic!("no problem is answered with status {other}"),
    }
}

/// Every way an API call can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("the request is malformed: {0}")]
    MalformedRequest(String),
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("no such resource: {0}")]
    NotFound(String),
    #[error("the running tally of this poll is sealed until it closes")]
    TallySealed,
    #[error("the log store is unavailable: {0}")]
    StoreUnavailable(String),
    #[error("the log has {size} entries; tree size {requested} does not exist yet")]
    BeyondTreeSize { requested: u64, size: u64 },
    #[error("the proof cannot be computed: {0}")]
    ImpossibleProof(String),
    #[error("this node met an impossible state and is not ready: {0}")]
    Faulted(String),
    #[error("the numbers are not proven against the log yet: {0}")]
    StateUnproven(String),
    #[error("this address already holds {0} live streams, the most one address may")]
    TooManyStreams(usize),
    #[error("this node already serves {0} live streams, the most it serves at once; retry later")]
    StreamsFull(usize),
    #[error("this path answers only {0}")]
    MethodNotAllowed(String),
    #[error("no credentials can be issued here: {0}")]
    IssuerKeyNotHeld(String),
    #[error("the api_key names no gateway this node signs for")]
    InvalidApiKey,
    #[error("too many requests from this {subject}; retry after {retry_after_seconds} s")]
    RateLimited {
        subject: &'static str,
        retry_after_seconds: u64,
    },
}

impl ApiError {
    /// Status and stable code of each error.
    fn classify(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MalformedRequest(_) => (StatusCode::BAD_REQUEST, "malformed-request"),
            ApiError::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body-too-large"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::TallySealed => (StatusCode::FORBIDDEN, "tally-sealed"),
            ApiError::InvalidApiKey => (StatusCode::FORBIDDEN, "invalid-api-key"),
            ApiError::IssuerKeyNotHeld(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "issuer-key-not-held")
            }
            ApiError::StoreUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store-unavailable"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            ApiError::TooManyStreams(_) => (StatusCode::TOO_MANY_REQUESTS, "too-many-streams"),
            ApiError::StreamsFull(_) => (StatusCode::SERVICE_UNAVAILABLE, "streams-full"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
            ApiError::BeyondTreeSize { .. } => (StatusCode::NOT_FOUND, "beyond-tree-size"),
            ApiError::ImpossibleProof(_) => (StatusCode::BAD_REQUEST, "impossible-proof"),
            ApiError::Faulted(_) => (StatusCode::SERVICE_UNAVAILABLE, "node-faulted"),
            ApiError::StateUnproven(_) => (StatusCode::SERVICE_UNAVAILABLE, "state-unproven"),
            ApiError::Command(error) => classify_command(error),
        }
    }
}

fn classify_command(error: &CommandError) -> (StatusCode, &'static str) {
    match error {
        CommandError::ActionMismatch { .. } => (StatusCode::BAD_REQUEST, "action-mismatch"),
        CommandError::ContentMismatch(_) => (StatusCode::UNPROCESSABLE_ENTITY, "content-mismatch"),
        CommandError::Envelope(EnvelopeError::MalformedSignature) => {
            (StatusCode::BAD_REQUEST, "malformed-signature")
        }
        CommandError::Envelope(EnvelopeError::WeakKey) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "weak-key")
        }
        CommandError::Envelope(EnvelopeError::Signature(_)) => {
            (StatusCode::BAD_REQUEST, "invalid-signature")
        }
        CommandError::Envelope(EnvelopeError::Payload(ParseError::TooLarge { .. })) => {
            (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large")
        }
        CommandError::Envelope(EnvelopeError::Payload(ParseError::Malformed(_))) => {
            (StatusCode::BAD_REQUEST, "malformed-command")
        }
        CommandError::Envelope(EnvelopeError::Payload(ParseError::UnknownAction(_))) => {
            (StatusCode::BAD_REQUEST, "unknown-action")
        }
        CommandError::Submit(SubmitError::Overloaded) => {
            (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
        }
        CommandError::Submit(SubmitError::StoreUnavailable(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "store-unavailable")
        }
        CommandError::Submit(SubmitError::Stopped) => {
            (StatusCode::SERVICE_UNAVAILABLE, "shutting-down")
        }
        CommandError::Submit(SubmitError::Faulted(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "node-faulted")
        }
        CommandError::Submit(SubmitError::Refused(refusal)) => {
            (refusal_status(refusal), refusal.code())
        }
    }
}

/// The status of each domain refusal: 403 for who you are, 404 for what does not exist, 409
/// for the state things are in, 422 for what the command asks.
pub fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::StaleCommand | Refusal::FutureCommand | Refusal::SignerIsNotAuthor => {
            StatusCode::BAD_REQUEST
        }
        Refusal::NotAdmin
        | Refusal::NotOfficial
        | Refusal::SystemOnly
        | Refusal::NotEligible
        | Refusal::NotModerator
        | Refusal::NotRegistrar
        | Refusal::NotGateway
        | Refusal::NotResponsibleDepartment
        | Refusal::NotAuthor
        | Refusal::NotRecoveryKey
        | Refusal::KeyRevoked
        | Refusal::NotAttestedResident
        | Refusal::InvalidCredential(_)
        | Refusal::MissingCredential(_)
        | Refusal::SeparationOfDuties(_) => StatusCode::FORBIDDEN,
        Refusal::UnknownPoll
        | Refusal::UnknownCategory
        | Refusal::UnknownComplaint
        | Refusal::UnknownProposal
        | Refusal::UnknownContent => StatusCode::NOT_FOUND,
        Refusal::ReplayedNonce
        | Refusal::ContentAlreadyErased
        | Refusal::KeyAlreadyRegistered
        | Refusal::RoleAlreadyHeld
        | Refusal::RoleNotHeld
        | Refusal::PollNotOpenYet
        | Refusal::PollClosed
        | Refusal::BallotAlreadyCast
        | Refusal::PollAlreadyClosed
        | Refusal::TransitionNotAllowed { .. }
        | Refusal::ConfirmationWindowClosed
        | Refusal::AlreadySupported
        | Refusal::NotSupported
        | Refusal::ThresholdReached
        | Refusal::ResidentAlreadyAttested
        | Refusal::PollNotAnonymous
        | Refusal::PollIsAnonymous
        | Refusal::CredentialsAlreadyRequested
        | Refusal::CredentialsExhausted
        | Refusal::StalePollVersion
        | Refusal::RecoveryAlreadyApproved => StatusCode::CONFLICT,
        Refusal::WeakKey
        | Refusal::KeyNotRegistered
        | Refusal::InvalidRoleChange(_)
        | Refusal::InvalidPoll(_)
        | Refusal::UnknownOption
        | Refusal::TooManyChoices
        | Refusal::DuplicateChoice
        | Refusal::EmptyBallot
        | Refusal::InvalidCategory(_)
        | Refusal::InvalidAttestation(_)
        | Refusal::InvalidComplaint(_)
        | Refusal::InvalidProposal(_)
        | Refusal::InvalidBlindedMessage(_)
        | Refusal::InvalidAdminChange(_) => StatusCode::UNPROCESSABLE_ENTITY,
        // Only system events can meet these; a client never should.
        Refusal::MisplacedGenesis
        | Refusal::MissingGenesis
        | Refusal::PollNotDue
        | Refusal::FinalTallyMismatch
        | Refusal::CheckpointMismatch
        | Refusal::EventNotDue
        | Refusal::StateDigestMismatch => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn title_of(code: &str) -> String {
    let mut title = code.replace('-', " ");
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    title
}

impl ApiError {
    /// What the client is told. A store's own messages (PostgreSQL's server errors, file paths)
    /// are internal causes: they go to the log, never into a response.
    fn public_detail(&self) -> String {
        match self {
            ApiError::StoreUnavailable(_)
            | ApiError::Command(CommandError::Submit(SubmitError::StoreUnavailable(_))) => {
                STORE_UNAVAILABLE_DETAIL.to_string()
            }
            other => other.to_string(),
        }
    }
}

impl ApiError {
    /// The status and what the client is told, for the answers of a protocol with its own error
    /// document (Open311's `<errors>`): the same status and words as the problem would carry.
    pub fn status_and_detail(&self) -> (StatusCode, String) {
        let (status, code) = self.classify();
        if status.is_server_error() {
            tracing::warn!(error = %self, code, "request failed on the server side");
        }
        (status, self.public_detail())
    }
}

/// The `detail` of every `store-unavailable` problem; the cause is logged.
pub const STORE_UNAVAILABLE_DETAIL: &str =
    "the log store is unavailable; nothing was applied, retry later";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.classify().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code) = self.classify();
        if status.is_server_error() {
            tracing::warn!(error = %self, code, "request failed on the server side");
        }
        let problem = Problem {
            problem_type: format!("urn:veche:problem:{code}"),
            title: title_of(code),
            status: status.as_u16(),
            detail: self.public_detail(),
        };
        let mut response = HttpResponse::build(status);
        response.content_type(PROBLEM_CONTENT_TYPE);
        if let ApiError::RateLimited {
            retry_after_seconds,
            ..
        } = self
        {
            response.insert_header(("Retry-After", retry_after_seconds.to_string()));
        } else if let ApiError::MethodNotAllowed(allowed) = self {
            response.insert_header(("Allow", allowed.as_str()));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "1"));
        }
        response.json(problem)
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        ApiError::Command(CommandError::Submit(error))
    }
}

impl From<crate::node::StateUnproven> for ApiError {
    fn from(error: crate::node::StateUnproven) -> Self {
        ApiError::StateUnproven(error.0)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::StoreUnavailable(error.to_string())
    }
}

impl From<crate::transparency::TreeError> for ApiError {
    fn from(error: crate::transparency::TreeError) -> Self {
        use crate::transparency::TreeError;
        match error {
            TreeError::BeyondSize { requested, size } => {
                ApiError::BeyondTreeSize { requested, size }
            }
            TreeError::Proof(reason) => ApiError::ImpossibleProof(reason),
            TreeError::MissingTile { .. } | TreeError::Store(_) => {
                ApiError::StoreUnavailable(error.to_string())
            }
        }
    }
}

/// The co-issuer's failures, answered as the API's problems.
impl From<crate::co_issuer::CoIssuerError> for ApiError {
    fn from(error: crate::co_issuer::CoIssuerError) -> ApiError {
        match error {
            crate::co_issuer::CoIssuerError::NoRequest { .. } => {
                ApiError::NotFound(error.to_string())
            }
            crate::co_issuer::CoIssuerError::Follow(why) => ApiError::StoreUnavailable(why),
            crate::co_issuer::CoIssuerError::Issuer(issuer) => {
                ApiError::Faulted(issuer.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_unavailable_problem_keeps_the_stores_own_message_out_of_its_detail() {
        let cause = "db error: FATAL: password authentication failed for user \"veche\"";
        for error in [
            ApiError::StoreUnavailable(cause.into()),
            ApiError::from(SubmitError::StoreUnavailable(cause.into())),
        ] {
            let detail = error.public_detail();
            assert!(!detail.contains("FATAL"), "{detail}");
            assert_eq!(detail, STORE_UNAVAILABLE_DETAIL);
            assert_eq!(error.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        }
    }
}
