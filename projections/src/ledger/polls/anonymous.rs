//! Anonymous polls: credential requests from the audience, once per resident, and ballots signed
//! by per-poll keys that the issuers' credentials (RFC 9474) cover.
//!
//! Invariant: under each issuer key of a poll, the ballot keys counted never outnumber the
//! credential requests in the log, and every counted ballot carried a credential of every issuer
//! the poll names that verifies over its own key. The requests name residents; the ballots name
//! only their per-poll keys, and nothing the fold keeps joins the two.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{check_choices, in_audience, Poll, PollStatus};
use crate::command::{Anonymity, AnonymousBallot, Audience, CredentialRequest, PollDefinition};
use crate::credential::{BlindedMessage, Credential, IssuerKey};
use crate::ledger::arithmetic::increment;
use crate::ledger::keys::Keys;
use crate::ledger::refusal::Refusal;

use crate::protocol::PublicKey;
use crate::time::Timestamp;

/// An anonymous poll's issuance and counting, per issuer key of its definition (one for the
/// whole audience, or one per district, in the audience's order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialCounts {
    /// Credential requests in the log, per issuer key.
    pub issued: Vec<u64>,
    /// Distinct ballot keys counted, per issuer key: never more than `issued`.
    pub counted: Vec<u64>,
    /// Each requesting resident (their voter number) with their request: public, as the log
    /// that names them is.
    pub requests: BTreeMap<u64, IssuedRequest>,
    /// Each counted ballot key with the position of its first ballot, which numbers its ballot
    /// among the poll's ballots.
    pub ballot_keys: BTreeMap<PublicKey, u64>,
}

/// Where a resident's credential request is, and which issuer key it was issued under (the
/// resident's district's when they requested).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedRequest {
    pub position: u64,
    pub issuer_index: usize,
}

impl CredentialCounts {
    pub(super) fn for_poll(anonymity: &Anonymity) -> CredentialCounts {
        let keys = anonymity.issuer_keys.len();
        CredentialCounts {
            issued: vec![0; keys],
            counted: vec![0; keys],
            ..CredentialCounts::default()
        }
    }
}

/// The poll's anonymity, or the refusal for a poll without one.
fn anonymity_of(poll: &Poll) -> Result<(&Anonymity, &CredentialCounts), Refusal> {
    match (&poll.definition.anonymous, &poll.credentials) {
        (Some(anonymity), Some(counts)) => Ok((anonymity, counts)),
        (None, None) => Err(Refusal::PollNotAnonymous),
        _ => unreachable!(
            "poll {}: an anonymous definition and its counts go together",
            poll.id
        ),
    }
}

/// The issuer keys whose credentials `ballot` must carry, if its poll is anonymous and its
/// district names one: the node's issuer key and the co-issuer's. Cloned, so a caller can
/// verify the credentials without holding the ledger.
pub fn credential_issuers(
    poll: &Poll,
    ballot: &AnonymousBallot,
) -> Option<(IssuerKey, Option<IssuerKey>)> {
    let anonymity = poll.definition.anonymous.as_ref()?;
    let index = issuer_index(&poll.definition, ballot.district.as_deref())?;
    let issuer = anonymity.issuer_keys.get(index)?.clone();
    Some((issuer, anonymity.co_issuer_key.clone()))
}

/// Which of the poll's issuer keys covers `district`'s residents: the one key, or the district's.
pub fn issuer_index(definition: &PollDefinition, district: Option<&str>) -> Option<usize> {
    match (&definition.audience, district) {
        (Audience::Districts { districts }, Some(district)) => {
            districts.iter().position(|listed| listed == district)
        }
        (Audience::Districts { .. }, None) => None,
        (Audience::Everyone | Audience::Verified, None) => Some(0),
        (Audience::Everyone | Audience::Verified, Some(_)) => None,
    }
}

/// A definition's anonymity holds one issuer key per district of a district audience (one
/// otherwise), and no key twice, the co-issuer's included.
pub(super) fn check_anonymity(definition: &PollDefinition) -> Result<(), String> {
    let Some(anonymity) = &definition.anonymous else {
        return Ok(());
    };
    let expected = match &definition.audience {
        Audience::Districts { districts } => districts.len(),
        Audience::Everyone | Audience::Verified => 1,
    };
    if anonymity.issuer_keys.len() != expected {
        return Err(format!(
            "an anonymous poll names {expected} issuer key(s): one per district of a district \
             audience, one otherwise"
        ));
    }
    let mut every_key: Vec<&IssuerKey> = anonymity.issuer_keys.iter().collect();
    every_key.extend(anonymity.co_issuer_key.iter());
    for (index, key) in every_key.iter().enumerate() {
        if every_key[..index].contains(key) {
            return Err("an anonymous poll names each issuer key once".into());
        }
    }
    Ok(())
}

/// May `citizen` request credentials for the poll at `at`? Once per resident, from the audience,
/// before the poll closes (early requests keep issuance apart from casting in time).
pub(super) fn decide_request(
    poll: &Poll,
    citizen: PublicKey,
    request: &CredentialRequest,
    at: Timestamp,
    keys: &Keys,
) -> Result<(), Refusal> {
    let (anonymity, counts) = anonymity_of(poll)?;
    if matches!(poll.status(at), PollStatus::Closing | PollStatus::Closed) {
        return Err(Refusal::PollClosed);
    }
    if !in_audience(keys, citizen, &poll.definition.audience) {
        return Err(Refusal::NotEligible);
    }
    let Some(voter) = keys.voter_number(citizen) else {
        unreachable!("a key in a poll's audience is registered")
    };
    if counts.requests.contains_key(&voter) {
        return Err(Refusal::CredentialsAlreadyRequested);
    }
    let index = requester_index(&poll.definition, keys, citizen);
    check_blinded(&anonymity.issuer_keys[index], &request.blinded_message, "")?;
    match (&anonymity.co_issuer_key, &request.co_issuer_blinded_message) {
        (Some(key), Some(message)) => check_blinded(key, message, "the co-issuer's: "),
        (None, None) => Ok(()),
        (Some(_), None) => Err(Refusal::InvalidBlindedMessage(
            "the poll names a co-issuer: the request carries a blinded message for it too".into(),
        )),
        (None, Some(_)) => Err(Refusal::InvalidBlindedMessage(
            "the poll names no co-issuer: the request carries one blinded message".into(),
        )),
    }
}

fn check_blinded(key: &IssuerKey, message: &BlindedMessage, whose: &str) -> Result<(), Refusal> {
    message
        .check(key)
        .map_err(|problem| Refusal::InvalidBlindedMessage(format!("{whose}{problem}")))
}

/// The issuer key a requester's credential is under: their district's in a district audience.
pub fn requester_index(definition: &PollDefinition, keys: &Keys, citizen: PublicKey) -> usize {
    let district = match &definition.audience {
        Audience::Districts { .. } => keys.get(&citizen).and_then(|record| record.district()),
        Audience::Everyone | Audience::Verified => None,
    };
    match issuer_index(definition, district) {
        Some(index) => index,
        None => unreachable!("a requester in a poll's audience has a district of its audience"),
    }
}

/// May `ballot_key` cast this anonymous ballot at `at`? Cheap checks first: each credential
/// costs an RSA verification.
pub(super) fn decide_ballot(
    poll: &Poll,
    ballot_key: PublicKey,
    ballot: &AnonymousBallot,
    at: Timestamp,
) -> Result<(), Refusal> {
    let (anonymity, counts) = anonymity_of(poll)?;
    match poll.status(at) {
        PollStatus::Scheduled => return Err(Refusal::PollNotOpenYet),
        PollStatus::Closing | PollStatus::Closed => return Err(Refusal::PollClosed),
        PollStatus::Open => {}
    }
    if ballot_key.is_weak() {
        return Err(Refusal::WeakKey);
    }
    let Some(index) = issuer_index(&poll.definition, ballot.district.as_deref()) else {
        return Err(Refusal::InvalidCredential(match ballot.district {
            Some(_) => "the ballot names a district the poll's audience does not list".into(),
            None => "a ballot in a poll for districts names the district of its credential".into(),
        }));
    };
    check_choices(poll, &ballot.choices)?;
    let counted_before = counts.ballot_keys.contains_key(&ballot_key);
    if counted_before && !poll.definition.vote_changes_allowed {
        return Err(Refusal::BallotAlreadyCast);
    }
    let issuer = &anonymity.issuer_keys[index];
    check_credential(issuer, &ballot.credential, poll.id, &ballot_key, "")?;
    match (&anonymity.co_issuer_key, &ballot.co_issuer_credential) {
        (Some(key), Some(credential)) => {
            check_credential(key, credential, poll.id, &ballot_key, "the co-issuer's: ")?
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(Refusal::MissingCredential(
                "the poll names a co-issuer, and the ballot carries no credential of its".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(Refusal::InvalidCredential(
                "the poll names no co-issuer, and the ballot carries a co-issuer credential".into(),
            ))
        }
    }
    if !counted_before && counts.counted[index] >= counts.issued[index] {
        return Err(Refusal::CredentialsExhausted);
    }
    Ok(())
}

fn check_credential(
    issuer: &IssuerKey,
    credential: &Credential,
    poll: u64,
    ballot_key: &PublicKey,
    whose: &str,
) -> Result<(), Refusal> {
    // Checked on the server's signature threads against the very key, poll and ballot key this
    // decision names: the same verification, not repeated on the single writer.
    if credential.verified_before(issuer, poll, ballot_key) {
        return Ok(());
    }
    credential
        .verify(issuer, poll, ballot_key)
        .map_err(|problem| Refusal::InvalidCredential(format!("{whose}{problem}")))
}

/// Folds a decided request in: one more credential issued under the requester's issuer key.
pub(super) fn count_request(poll: &mut Poll, voter: u64, index: usize, position: u64) {
    let counts = counts_mut(poll);
    counts.issued[index] = increment(counts.issued[index], "credentials issued");
    let issued = IssuedRequest {
        position,
        issuer_index: index,
    };
    counts.requests.insert(voter, issued);
}

/// The number a decided anonymous ballot is counted under: its key's first ballot's position,
/// taken now for a new key, whose issuer key counts one more ballot key.
pub(super) fn ballot_number(
    poll: &mut Poll,
    ballot_key: PublicKey,
    ballot: &AnonymousBallot,
    position: u64,
) -> u64 {
    let Some(index) = issuer_index(&poll.definition, ballot.district.as_deref()) else {
        unreachable!(
            "poll {}: a counted ballot names a district of its audience",
            poll.id
        )
    };
    let counts = counts_mut(poll);
    if let Some(&number) = counts.ballot_keys.get(&ballot_key) {
        return number;
    }
    counts.counted[index] = increment(counts.counted[index], "ballot keys counted");
    counts.ballot_keys.insert(ballot_key, position);
    position
}

fn counts_mut(poll: &mut Poll) -> &mut CredentialCounts {
    let id = poll.id;
    match poll.credentials.as_mut() {
        Some(counts) => counts,
        None => unreachable!("poll {id}: decide found it anonymous"),
    }
}
