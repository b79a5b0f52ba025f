//! Anonymous polls over HTTP: the node's issuer keys, credential requests and the node's blind
//! signatures over them, and anonymous ballots.
//!
//! Invariant: a blind signature is computed again from the request in the log each time it is
//! asked for (RSA blind signing is deterministic), so an answer lost on the way can always be
//! fetched again and nothing is ever half-issued. Nothing here logs or keeps a client's address.

use actix_web::{get, post, web};
use projections::command::{Anonymity, CredentialRequest};
use projections::credential::IssuerKey;
use projections::{Action, Command, Ledger, Poll, PublicKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::commands::{Location, Submission, Written};
use crate::http::issuance::held_ring;
use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::{off_worker, Answer, EnvelopeSchema, Reply};
use crate::node::Node;

/// How an anonymous poll's credentials are issued, and how many were issued and used.
#[derive(Serialize, ToSchema)]
pub struct AnonymityView {
    /// The node's issuer keys: one for the whole audience, or one per district in the
    /// audience's order.
    pub issuers: Vec<IssuerCountView>,
    /// The independent co-issuer's key, hex DER, if the poll names one.
    pub co_issuer_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IssuerCountView {
    /// The district this key issues for; absent for audiences without districts.
    pub district: Option<String>,
    /// The RSA public key, hex DER SubjectPublicKeyInfo.
    pub issuer_key: String,
    /// Credential requests in the log under this key.
    pub credentials_issued: u64,
    /// Distinct ballot keys counted under this key: never more than `credentials_issued`.
    pub ballot_keys_counted: u64,
}

impl AnonymityView {
    pub(crate) fn of(poll: &Poll) -> Option<AnonymityView> {
        let (anonymity, counts) = (
            poll.definition.anonymous.as_ref()?,
            poll.credentials.as_ref()?,
        );
        let districts: Vec<Option<String>> = match &poll.definition.audience {
            projections::command::Audience::Districts { districts } => {
                districts.iter().cloned().map(Some).collect()
            }
            _ => vec![None],
        };
        let issuers = anonymity
            .issuer_keys
            .iter()
            .zip(districts)
            .enumerate()
            .map(|(index, (key, district))| IssuerCountView {
                district,
                issuer_key: hex::encode(key.der()),
                credentials_issued: counts.issued[index],
                ballot_keys_counted: counts.counted[index],
            })
            .collect();
        Some(AnonymityView {
            issuers,
            co_issuer_key: anonymity
                .co_issuer_key
                .as_ref()
                .map(|key| hex::encode(key.der())),
        })
    }
}

#[derive(Deserialize, IntoParams)]
pub struct IssuerKeyQuery {
    /// The district whose residents the key issues for; absent for audiences without districts.
    pub district: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IssuerKeyView {
    pub district: Option<String>,
    /// The RSA public key (2048 bits, e = 65537) as a DER SubjectPublicKeyInfo, hex.
    pub issuer_key: String,
}

/// The node's issuer key for a district (or for audiences without districts), created the first
/// time it is asked for. An official names it in an anonymous poll's definition.
#[utoipa::path(tag = "polls", params(IssuerKeyQuery),
    responses((status = 200, body = IssuerKeyView), ProblemStatus<503>))]
#[get("/v1/issuer-keys")]
pub async fn node_issuer_key(
    node: web::Data<Node>,
    query: web::Query<IssuerKeyQuery>,
) -> Reply<IssuerKeyView> {
    let district = query.into_inner().district;
    let worker = node.clone();
    let named = district.clone();
    let issuer = off_worker(move || {
        let ring = held_ring(&worker)?;
        ring.for_district(named.as_deref())
            .map_err(|error| ApiError::StoreUnavailable(error.to_string()))
    })
    .await?;
    Ok(web::Json(IssuerKeyView {
        district,
        issuer_key: hex::encode(issuer.public_key().der()),
    }))
}

/// Request an anonymous poll's credentials. The payload's action is `request_credentials`,
/// signed by the citizen's own key; the log names them as having requested. The blind
/// signatures are then fetched from each issuer.
#[utoipa::path(tag = "polls", request_body = EnvelopeSchema, responses(Written),
    params(("poll" = u64, Path, description = "Poll identifier")))]
#[post("/v1/polls/{poll}/credentials")]
pub async fn request_credentials(submission: Submission, poll: web::Path<u64>) -> Answer {
    let poll = poll.into_inner();
    let location = move |command: &Command| {
        if let Action::RequestCredentials(request) = &command.action {
            path_names_poll(request.poll, poll)?;
        }
        Ok(Location::At(format!(
            "/v1/polls/{poll}/credentials/{}",
            command.author
        )))
    };
    submission
        .accept(Some("request_credentials"), location)
        .await
}

fn path_names_poll(named: u64, path: u64) -> Result<(), ApiError> {
    if named == path {
        return Ok(());
    }
    Err(ApiError::MalformedRequest(format!(
        "the command is for poll {named} but was sent to poll {path}"
    )))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct BlindSignatureView {
    pub poll: u64,
    /// The log position of the credential request answered.
    pub request_position: u64,
    /// The issuer key that signed, hex DER.
    pub issuer_key: String,
    /// The issuer's RSA blind signature over the request's blinded message, hex: the citizen
    /// unblinds it into their credential.
    pub blind_signature: String,
}

/// The node issuer's blind signature over a resident's credential request in the log, computed
/// again at every ask. `key` is the requesting key, or any later key of the same resident.
#[utoipa::path(tag = "polls",
    params(("poll" = u64, Path, description = "Poll identifier"), ("key" = String, Path, description = "Requesting key, hex")),
    responses((status = 200, body = BlindSignatureView),
        ProblemStatus<404>, ProblemStatus<422>, ProblemStatus<503>))]
#[get("/v1/polls/{poll}/credentials/{key}")]
pub async fn blind_signature(
    node: web::Data<Node>,
    path: web::Path<(u64, String)>,
) -> Reply<BlindSignatureView> {
    let (poll, key) = path.into_inner();
    let key = crate::http::parse_key(&key)?;
    let (position, issuer) = {
        let ledger = node.proven_ledger()?;
        let found = ledger
            .polls
            .get(&poll)
            .ok_or_else(|| ApiError::NotFound(format!("poll {poll}")))?;
        request_of(&ledger, found, key)?
    };
    let signer = hex::encode(issuer.der());
    let ring_node = node.clone();
    let signed = off_worker(move || sign_request(&ring_node, position, &issuer)).await?;
    Ok(web::Json(BlindSignatureView {
        poll,
        request_position: position,
        issuer_key: signer,
        blind_signature: hex::encode(signed),
    }))
}

/// The position of `key`'s resident's request in `poll`, and the issuer key it was issued under.
fn request_of(ledger: &Ledger, poll: &Poll, key: PublicKey) -> Result<(u64, IssuerKey), ApiError> {
    let (Some(anonymity), Some(counts)) = (&poll.definition.anonymous, &poll.credentials) else {
        return Err(ApiError::NotFound(format!(
            "credentials of poll {}: it is not anonymous",
            poll.id
        )));
    };
    let missing =
        || ApiError::NotFound(format!("a credential request of {key} in poll {}", poll.id));
    let voter = ledger.keys.voter_number(key).ok_or_else(missing)?;
    let issued = counts.requests.get(&voter).ok_or_else(missing)?;
    Ok((
        issued.position,
        issuer_key_at(anonymity, issued.issuer_index),
    ))
}

fn issuer_key_at(anonymity: &Anonymity, index: usize) -> IssuerKey {
    match anonymity.issuer_keys.get(index) {
        Some(key) => key.clone(),
        None => unreachable!("a request names issuer key {index}, which its poll's definition has"),
    }
}

/// Reads the request at `position` from the log and signs its blinded message with `issuer`.
fn sign_request(node: &Node, position: u64, issuer: &IssuerKey) -> Result<Vec<u8>, ApiError> {
    let held = held_ring(node)?.holding(issuer).ok_or_else(|| {
        ApiError::IssuerKeyNotHeld("this node does not hold the issuer key of that request".into())
    })?;
    let request = read_request(node, position)?;
    held.blind_sign(&request.blinded_message.0)
        .map_err(|error| ApiError::Faulted(format!("the logged request at {position}: {error}")))
}

/// The credential request the entry at `position` holds, as the fold accepted it.
pub(crate) fn read_request(node: &Node, position: u64) -> Result<CredentialRequest, ApiError> {
    let stored = node.store().read(position, 1)?;
    let unreadable = |why: String| ApiError::Faulted(format!("the entry at {position}: {why}"));
    let entry = stored
        .first()
        .ok_or_else(|| unreadable("not in the store".into()))?;
    let entry =
        projections::Entry::decode(&entry.bytes).map_err(|error| unreadable(error.to_string()))?;
    let command = Command::parse(&entry.payload).map_err(|error| unreadable(error.to_string()))?;
    match command.action {
        Action::RequestCredentials(request) => Ok(request),
        other => Err(unreadable(format!(
            "holds {}, not a credential request",
            other.name()
        ))),
    }
}

/// Cast a ballot in an anonymous poll. The payload's action is `cast_anonymous_ballot`, signed
/// by the per-poll ballot key its credentials cover; its `poll` must equal the path's.
#[utoipa::path(tag = "polls", request_body = EnvelopeSchema, responses(Written),
    params(("poll" = u64, Path, description = "Poll identifier")))]
#[post("/v1/polls/{poll}/anonymous-ballots")]
pub async fn cast_anonymous_ballot(submission: Submission, poll: web::Path<u64>) -> Answer {
    let poll = poll.into_inner();
    let location = move |command: &Command| {
        if let Action::CastAnonymousBallot(ballot) = &command.action {
            path_names_poll(ballot.poll, poll)?;
        }
        Ok(Location::At(format!(
            "/v1/polls/{poll}/ballots/{}",
            command.author
        )))
    };
    submission
        .accept(Some("cast_anonymous_ballot"), location)
        .await
}
