//! Issuance admission: whether this node can answer what an anonymous poll or a credential
//! request will ask of it, checked on every write route before the writer sees the command.

use projections::command::{Anonymity, CredentialRequest};
use projections::ledger::polls::anonymous::issuer_index;
use projections::{Action, Command, Ledger, Poll, PublicKey};

use crate::http::problem::ApiError;
use crate::issuer::IssuerRing;
use crate::node::Node;

/// The node's issuers, or the problem of a node started without them.
pub(crate) fn held_ring(node: &Node) -> Result<&IssuerRing, ApiError> {
    node.issuers()
        .ok_or_else(|| ApiError::IssuerKeyNotHeld("this node holds no credential issuers".into()))
}

/// Admission on every write route: this node appends an anonymous poll only when it holds every
/// node issuer key the poll names, and a credential request only when it holds the key the
/// request would be issued under, or the log would hold requests that no one can answer.
pub(crate) fn check_answerable(node: &Node, command: &Command) -> Result<(), ApiError> {
    match &command.action {
        Action::OpenPoll(definition) => match &definition.anonymous {
            Some(anonymity) => check_issuer_keys_held(node, anonymity),
            None => Ok(()),
        },
        Action::RequestCredentials(request) => {
            check_request_answerable(node, command.author, request)
        }
        _ => Ok(()),
    }
}

fn check_issuer_keys_held(node: &Node, anonymity: &Anonymity) -> Result<(), ApiError> {
    let ring = held_ring(node)?;
    match anonymity
        .issuer_keys
        .iter()
        .position(|key| ring.holding(key).is_none())
    {
        Some(index) => Err(ApiError::IssuerKeyNotHeld(format!(
            "this node does not hold issuer key {index} of the poll; ask GET /v1/issuer-keys for its keys"
        ))),
        None => Ok(()),
    }
}

/// A request this node could not answer (it does not hold the requester's issuer key) is
/// refused before it reaches the log.
fn check_request_answerable(
    node: &Node,
    author: PublicKey,
    request: &CredentialRequest,
) -> Result<(), ApiError> {
    let ledger = node.ledger();
    let Some(poll) = ledger.polls.get(&request.poll) else {
        return Ok(());
    };
    let (Some(anonymity), Some(district)) = (
        &poll.definition.anonymous,
        requester_district(&ledger, poll, author),
    ) else {
        return Ok(());
    };
    let ring = held_ring(node)?;
    match issuer_index(&poll.definition, district.as_deref()) {
        Some(index) if ring.holding(&anonymity.issuer_keys[index]).is_none() => {
            Err(ApiError::IssuerKeyNotHeld(format!(
                "this node does not hold issuer key {index} of poll {}",
                poll.id
            )))
        }
        _ => Ok(()),
    }
}

/// The district a requester's credential would be issued for: `Some(None)` for audiences
/// without districts, `None` when the ledger will refuse the request anyway.
fn requester_district(ledger: &Ledger, poll: &Poll, author: PublicKey) -> Option<Option<String>> {
    match &poll.definition.audience {
        projections::command::Audience::Districts { .. } => {
            let record = ledger.keys.get(&author)?;
            Some(Some(record.district()?.to_string()))
        }
        _ => Some(None),
    }
}
