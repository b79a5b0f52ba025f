//! Write endpoints: each takes a signed envelope and answers with a receipt once durable.

use std::collections::BTreeMap;

use actix_web::dev::Payload;
use actix_web::{post, web, FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder};
use futures_util::future::LocalBoxFuture;
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::IntoResponses;

use crate::coordination::{Admission, RateLimit};
use crate::envelope::Envelope;
use crate::http::problem::{problem_responses, ApiError};
use crate::http::EnvelopeSchema;
use crate::http::{off_worker, Answer};
use crate::node::{CommandError, Node};
use crate::transparency::Receipt;
use crate::writer::SubmitError;
use projections::content::{CheckedPiece, ContentError, ContentPiece};
use projections::Refusal;
use projections::{Action, Command, PublicKey, SignedCommand};

/// What a write did: appended a new entry, or found the exact envelope already appended.
pub(crate) enum Outcome {
    Appended(Receipt),
    AlreadyAppended(Receipt),
}

impl Outcome {
    pub(crate) fn receipt(&self) -> &Receipt {
        match self {
            Outcome::Appended(receipt) | Outcome::AlreadyAppended(receipt) => receipt,
        }
    }
}

/// Opens the envelope (the signature check runs on the node's signature-check pool, not on this
/// worker, which stays free for reads), checks that the action fits the endpoint, and waits for
/// the writer's durable receipt.
async fn accept(
    node: &web::Data<Node>,
    request: &HttpRequest,
    envelope: Envelope,
    expected: Option<&'static str>,
    location: impl FnOnce(&Command) -> Result<Location, ApiError>,
) -> Answer {
    let (outcome, location) = submit(node, request, envelope, expected, location).await?;
    Ok(match outcome {
        Outcome::Appended(receipt) => answer(HttpResponse::Created(), location, receipt),
        Outcome::AlreadyAppended(receipt) => answer(HttpResponse::Ok(), location, receipt),
    })
}

/// [`accept`]'s work, answering with the outcome and where the result can be read, for writes
/// that answer in a shape of their own (Open311).
pub(crate) async fn submit<L>(
    node: &web::Data<Node>,
    request: &HttpRequest,
    mut envelope: Envelope,
    expected: Option<&'static str>,
    location: impl FnOnce(&Command) -> Result<L, ApiError>,
) -> Result<(Outcome, L), ApiError> {
    if let Some(address) = request.peer_addr() {
        admit(
            node,
            RateLimit::AddressPerMinute,
            &address.ip().to_string(),
            "address",
        )
        .await?;
    }
    let pieces = std::mem::take(&mut envelope.content);
    let signed = node.open_envelope(envelope).await?;
    if let Some(expected) = expected {
        let found = signed.command.action.name();
        if found != expected {
            return Err(CommandError::ActionMismatch { expected, found }.into());
        }
    }
    let content = check_content(&signed.command.action, pieces)?;
    let location = location(&signed.command)?;
    // Stale and replayed commands are refused before the author is charged: anyone can copy a
    // published entry, and sending it again must not spend its author's limits.
    match node.check_fresh_and_unseen(&signed) {
        Ok(()) => {}
        Err(Refusal::ReplayedNonce) => return retried(node, signed, location).await,
        Err(refusal) => return Err(refused(refusal)),
    }
    let author = signed.command.author.to_hex();
    // Another node may already hold this command: refuse the replay before it reaches a writer.
    let coordination = node.coordination();
    let nonce = signed.command.nonce.clone();
    if let Some(coordination) = coordination {
        if coordination.claim_nonce(&author, &nonce).await == Some(false) {
            return retried(node, signed, location).await;
        }
    }
    if let Err(limited) = charge_author(node, request, &signed.command, &author).await {
        if let Some(coordination) = coordination {
            // Refused before the writer saw it: the same envelope may come back later.
            coordination.release_nonce(&author, &nonce).await;
        }
        return Err(limited);
    }
    // Kept for a replay the writer finds only once it has folded in another node's entries.
    let resent = signed.clone();
    let appended = node.append(signed, content).await;
    if let Err(SubmitError::Refused(Refusal::ReplayedNonce)) = &appended {
        return retried(node, resent, location).await;
    }
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
    Ok((Outcome::Appended(appended?), location))
}

/// Matches the content sent beside a command to its commitments. Text that matches but breaks
/// its field's rules is refused as the aggregate refuses an invalid command, so a client sees
/// the same problem it saw when the text was signed in the clear.
fn check_content(
    action: &Action,
    pieces: Vec<ContentPiece>,
) -> Result<Vec<CheckedPiece>, ApiError> {
    match projections::content::check(action, pieces) {
        Ok(checked) => Ok(checked),
        Err(ContentError::Invalid(reason)) => Err(refused(match action {
            Action::SubmitProposal(_) => Refusal::InvalidProposal(reason),
            _ => Refusal::InvalidComplaint(reason),
        })),
        Err(mismatch) => Err(CommandError::ContentMismatch(mismatch).into()),
    }
}

/// Charges the author's limits, once the command is known fresh and unseen: per key, per
/// resident for complaints, and per client address for a new key's registration.
async fn charge_author(
    node: &Node,
    request: &HttpRequest,
    command: &Command,
    author: &str,
) -> Result<(), ApiError> {
    // Refused before it is charged: whoever holds a lost key must not spend the quota the
    // resident's new key shares. The writer decides the same again against the latest log.
    if node.ledger().keys.is_revoked(command.author) {
        return Err(refused(Refusal::KeyRevoked));
    }
    crate::http::issuance::check_answerable(node, command)?;
    admit(node, RateLimit::KeyPerMinute, author, "key").await?;
    match &command.action {
        // A gateway files for many residents who hold no key: no one resident's daily quota is
        // its to spend (its key's own per-minute limit above still holds).
        Action::FileComplaint(filing) if filing.through_gateway => Ok(()),
        Action::FileComplaint(_) => {
            let resident = complaint_quota_subject(node, command.author, author);
            admit(
                node,
                RateLimit::ComplaintsPerResidentPerDay,
                &resident,
                "key",
            )
            .await
        }
        Action::RegisterKey(_) => match request.peer_addr() {
            Some(address) => {
                let address = address.ip().to_string();
                let limit = RateLimit::RegistrationsPerAddressPerHour;
                admit(node, limit, &address, "address").await
            }
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Whom a complaint counts against: the resident, by the tag of the key's attestation, so
/// that a resident's old and new keys share one daily quota; the key itself when unattested.
fn complaint_quota_subject(node: &Node, key: PublicKey, author: &str) -> String {
    let ledger = node.ledger();
    match ledger
        .keys
        .get(&key)
        .and_then(|record| record.resident_tag())
    {
        Some(tag) => format!("resident:{tag}"),
        None => author.to_string(),
    }
}

/// A command whose nonce is taken: the exact envelope of an appended command (a client retrying
/// after a lost answer) gets the original receipt with `200 OK`; anything else is a replay.
/// On a shared log the original may be another node's entry this node has not folded in yet: it
/// follows the log again, a bounded number of times, before calling the envelope a replay.
async fn retried<L>(
    node: &web::Data<Node>,
    signed: SignedCommand,
    location: L,
) -> Result<(Outcome, L), ApiError> {
    let signed = std::sync::Arc::new(signed);
    for attempt in 0..=projections::limits::RETRY_FOLLOW_ATTEMPTS_MAX {
        let (reader, lookup) = (node.clone(), signed.clone());
        if let Some(receipt) = off_worker(move || reader.original_receipt(&lookup)).await? {
            return Ok((Outcome::AlreadyAppended(receipt), location));
        }
        // Without Redis no node learns of another's nonce before folding its entry in (here or
        // in the writer), so there is nothing to wait for.
        let uncoordinated = node.coordination().is_none();
        if uncoordinated || attempt == projections::limits::RETRY_FOLLOW_ATTEMPTS_MAX {
            break;
        }
        node.follow_now();
        let interval = projections::limits::WRITER_FOLLOW_INTERVAL_MS;
        tokio::time::sleep(std::time::Duration::from_millis(interval)).await;
    }
    Err(refused(Refusal::ReplayedNonce))
}

fn refused(refusal: Refusal) -> ApiError {
    CommandError::Submit(SubmitError::Refused(refusal)).into()
}

/// The receipt as the answer, with the resource's `Location` where it has one.
fn answer(mut response: HttpResponseBuilder, location: Location, receipt: Receipt) -> HttpResponse {
    if let Some(location) = location.resolve(receipt.position) {
        response.insert_header(("Location", location));
    }
    response.json(receipt)
}

/// A write request: a signed envelope, the node it is for and the connection it came on. Every
/// write endpoint takes one and names only what is its own: the action it expects and where
/// the result can be read.
pub struct Submission {
    node: web::Data<Node>,
    request: HttpRequest,
    envelope: Envelope,
}

impl FromRequest for Submission {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Submission, actix_web::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let parts = <(web::Data<Node>, web::Json<Envelope>)>::from_request(&request, payload);
        Box::pin(async move {
            let (node, envelope) = parts.await?;
            Ok(Submission {
                node,
                request,
                envelope: envelope.into_inner(),
            })
        })
    }
}

impl Submission {
    /// Submits the envelope if its action is `expected` (any action when `None`), answering
    /// `201 Created` with the receipt and, where `location` names one, a `Location`.
    pub(crate) async fn accept(
        self,
        expected: Option<&'static str>,
        location: impl FnOnce(&Command) -> Result<Location, ApiError>,
    ) -> Answer {
        accept(&self.node, &self.request, self.envelope, expected, location).await
    }
}

/// The responses of every write: the receipt, or a refusal.
pub struct Written;

impl IntoResponses for Written {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = problem_responses(&[400, 403, 404, 409, 413, 422, 429, 503]);
        let receipt = ResponseBuilder::new()
            .description("The command is in the log; the receipt proves it")
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("Receipt"))),
            );
        responses.insert("201".into(), RefOr::T(receipt.build()));
        let original = ResponseBuilder::new()
            .description(
                "The exact envelope of a command already in the log, sent again: the original \
                 entry's receipt; nothing is appended",
            )
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("Receipt"))),
            );
        responses.insert("200".into(), RefOr::T(original.build()));
        responses
    }
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

/// Submits a lifecycle action sent to `/v1/{collection}/{path_id}/events`; `item` names the item
/// an action of this collection is about.
pub(crate) async fn lifecycle_event(
    submission: Submission,
    item: fn(&Action) -> Option<u64>,
    path_id: u64,
    collection: &'static str,
) -> Answer {
    let location = |command: &Command| {
        let action = &command.action;
        lifecycle_target(action, item(action), path_id, collection)
    };
    submission.accept(None, location).await
}

/// Checks that a lifecycle action is a client action about the item of its path, and names the
/// item as the new resource's location.
fn lifecycle_target(
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
#[utoipa::path(tag = "keys", request_body = EnvelopeSchema, responses(Written))]
#[post("/v1/keys")]
pub async fn register_key(submission: Submission) -> Answer {
    let location = |command: &Command| Ok(Location::At(format!("/v1/keys/{}", command.author)));
    submission.accept(Some("register_key"), location).await
}

/// Grant or revoke a role. The payload's action is `grant_role` or `revoke_role`, signed by an
/// admin key.
#[utoipa::path(tag = "keys", request_body = EnvelopeSchema, responses(Written))]
#[post("/v1/roles")]
pub async fn change_role(submission: Submission) -> Answer {
    submission
        .accept(None, |command| match &command.action {
            Action::GrantRole(change) | Action::RevokeRole(change) => {
                Ok(Location::At(format!("/v1/keys/{}", change.subject)))
            }
            other => Err(CommandError::ActionMismatch {
                expected: "grant_role or revoke_role",
                found: other.name(),
            }
            .into()),
        })
        .await
}

/// Open a poll. The payload's action is `open_poll`, signed by an official; the new poll's
/// identifier is the receipt's position.
#[utoipa::path(tag = "polls", request_body = EnvelopeSchema, responses(Written))]
#[post("/v1/polls")]
pub async fn open_poll(submission: Submission) -> Answer {
    let location = |_: &Command| Ok(Location::NewItemOf("/v1/polls"));
    submission.accept(Some("open_poll"), location).await
}

/// Correct a running poll: a new version of its definition, signed by the poll's author. The
/// payload's action is `correct_poll`, its `poll` must equal the path's and its `replaces` must
/// name the current version; the new version is readable at the answer's location.
#[utoipa::path(tag = "polls", request_body = EnvelopeSchema, responses(Written),
    params(("poll" = u64, Path, description = "Poll identifier")))]
#[post("/v1/polls/{poll}/corrections")]
pub async fn correct_poll(submission: Submission, poll: web::Path<u64>) -> Answer {
    let poll = poll.into_inner();
    let location = |command: &Command| match &command.action {
        Action::CorrectPoll(correction) if correction.poll != poll => {
            Err(ApiError::MalformedRequest(format!(
                "the correction is for poll {} but was sent to poll {poll}",
                correction.poll
            )))
        }
        Action::CorrectPoll(correction) => Ok(Location::At(format!(
            "/v1/polls/{poll}/versions/{}",
            u64::from(correction.replaces) + 1
        ))),
        _ => Ok(Location::At(format!("/v1/polls/{poll}"))),
    };
    submission.accept(Some("correct_poll"), location).await
}

/// Cast a ballot. The payload's action is `cast_ballot` and its `poll` must equal the path's.
#[utoipa::path(tag = "polls", request_body = EnvelopeSchema, responses(Written),
    params(("poll" = u64, Path, description = "Poll identifier")))]
#[post("/v1/polls/{poll}/ballots")]
pub async fn cast_ballot(submission: Submission, poll: web::Path<u64>) -> Answer {
    let poll = poll.into_inner();
    let location = |command: &Command| match &command.action {
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
    };
    submission.accept(Some("cast_ballot"), location).await
}

/// Submit any signed command. Resource routes are preferred; this one serves clients that sign
/// generically.
#[utoipa::path(tag = "log", request_body = EnvelopeSchema, responses(Written))]
#[post("/v1/commands")]
pub async fn submit_command(submission: Submission) -> Answer {
    submission.accept(None, |_| Ok(Location::Nowhere)).await
}
