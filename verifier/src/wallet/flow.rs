//! Issuance and casting over HTTP, saving the wallet after every step that changes it.

use std::path::Path;

use ed25519_dalek::SigningKey;
use projections::command::{AnonymousBallot, CredentialRequest};
use projections::credential::IssuerKey;
use projections::protocol::public_key_of;
use projections::{Action, PublicKey, Timestamp};
use serde_json::Value;

use super::{PollSecrets, Wallet, WalletError};
use crate::client::{signed_envelope, Client, ClientError};
use crate::credentials::{BlindingError, PendingCredential};
use crate::keys::{generate_key, Entropy};

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Blinding(#[from] BlindingError),
    #[error("poll {poll} is not anonymous, or its definition cannot be read: {why}")]
    NotAnonymous { poll: u64, why: String },
    #[error("the {issuer} could not be reached or refused ({error}); your request is in the log: run the command again later to fetch its answer")]
    IssuerUnavailable {
        issuer: &'static str,
        error: ClientError,
    },
    #[error("poll {poll} names a co-issuer: give its address (--co-issuer)")]
    NoCoIssuerAddress { poll: u64 },
    #[error("the wallet has no finished credentials for poll {poll}: request them first")]
    NoCredentials { poll: u64 },
}

/// What a poll's page says of its issuers.
struct Issuers {
    /// Each node issuer key with the district it issues for.
    node: Vec<(Option<String>, IssuerKey)>,
    co_issuer: Option<IssuerKey>,
}

fn issuers_of(server: &Client, poll: u64) -> Result<Issuers, FlowError> {
    let page = server.get(&format!("/v1/polls/{poll}"))?;
    let not_anonymous = |why: &str| FlowError::NotAnonymous {
        poll,
        why: why.to_string(),
    };
    let anonymous = &page["anonymous"];
    let listed = anonymous["issuers"]
        .as_array()
        .ok_or_else(|| not_anonymous("it lists no issuers"))?;
    let mut node = Vec::new();
    for issuer in listed {
        let district = issuer["district"].as_str().map(str::to_string);
        node.push((
            district,
            parse_key(&issuer["issuer_key"]).map_err(|why| not_anonymous(&why))?,
        ));
    }
    let co_issuer = match &anonymous["co_issuer_key"] {
        Value::Null => None,
        key => Some(parse_key(key).map_err(|why| not_anonymous(&why))?),
    };
    Ok(Issuers { node, co_issuer })
}

fn parse_key(value: &Value) -> Result<IssuerKey, String> {
    serde_json::from_value(value.clone()).map_err(|error| format!("an issuer key: {error}"))
}

/// The district of `key` as the registrar attested it.
fn district_of(server: &Client, key: PublicKey) -> Result<Option<String>, FlowError> {
    let page = server.get(&format!("/v1/keys/{key}"))?;
    Ok(page["district"].as_str().map(str::to_string))
}

/// Obtains the citizen's credentials for `poll`, resuming from the wallet at `wallet_file`: a
/// fresh ballot key and blinded messages (saved before anything is sent), the request in the
/// log, then each issuer's blind signature, finalised and saved. Returns the poll's secrets.
pub fn obtain_credentials(
    server: &Client,
    co_issuer: Option<&Client>,
    key: &SigningKey,
    poll: u64,
    wallet_file: &Path,
    now: Timestamp,
    entropy: &dyn Entropy,
) -> Result<PollSecrets, FlowError> {
    let mut wallet = Wallet::read(wallet_file)?;
    if let Some(secrets) = wallet
        .polls
        .get(&poll)
        .filter(|secrets| secrets.is_complete())
    {
        return Ok(secrets.clone());
    }
    let issuers = issuers_of(server, poll)?;
    if issuers.co_issuer.is_some() && co_issuer.is_none() {
        return Err(FlowError::NoCoIssuerAddress { poll });
    }
    let secrets = match wallet.polls.get(&poll) {
        Some(secrets) => secrets.clone(),
        None => {
            let fresh = blind_fresh(server, &issuers, key, poll, entropy)?;
            save(&mut wallet, wallet_file, poll, &fresh)?;
            fresh
        }
    };
    if secrets.pending.is_some() {
        send_request(server, key, poll, &secrets, now, entropy)?;
    }
    let citizen = public_key_of(key);
    let secrets = finish(server, "node's issuer", citizen, poll, secrets, false)?;
    save(&mut wallet, wallet_file, poll, &secrets)?;
    let secrets = match co_issuer {
        Some(co_issuer) if secrets.co_issuer_pending.is_some() => {
            finish(co_issuer, "co-issuer", citizen, poll, secrets, true)?
        }
        _ => secrets,
    };
    save(&mut wallet, wallet_file, poll, &secrets)?;
    Ok(secrets)
}

fn save(
    wallet: &mut Wallet,
    path: &Path,
    poll: u64,
    secrets: &PollSecrets,
) -> Result<(), FlowError> {
    wallet.polls.insert(poll, secrets.clone());
    Ok(wallet.write(path)?)
}

/// A fresh ballot key and its credential messages blinded for each issuer.
fn blind_fresh(
    server: &Client,
    issuers: &Issuers,
    key: &SigningKey,
    poll: u64,
    entropy: &dyn Entropy,
) -> Result<PollSecrets, FlowError> {
    let ballot_key = generate_key(entropy);
    let ballot_public = public_key_of(&ballot_key);
    let district = if issuers.node.iter().any(|(district, _)| district.is_some()) {
        district_of(server, public_key_of(key))?
    } else {
        None
    };
    let issuer = issuers
        .node
        .iter()
        .find(|(named, _)| *named == district)
        .map(|(_, issuer)| issuer)
        .ok_or_else(|| FlowError::NotAnonymous {
            poll,
            why: format!(
                "it has no issuer key for the district {district:?} this key is attested in"
            ),
        })?;
    let pending = PendingCredential::blind(issuer, poll, ballot_public)?;
    let co_issuer_pending = match &issuers.co_issuer {
        Some(co_issuer) => Some(PendingCredential::blind(co_issuer, poll, ballot_public)?),
        None => None,
    };
    Ok(PollSecrets {
        ballot_key_secret: ballot_key.to_bytes(),
        district,
        pending: Some(pending),
        co_issuer_pending,
        credential: None,
        co_issuer_credential: None,
    })
}

/// Appends the request. A request already in the log (an earlier run that lost its answer, or
/// stopped before fetching it) is not an error: the blind signatures are fetched for it.
fn send_request(
    server: &Client,
    key: &SigningKey,
    poll: u64,
    secrets: &PollSecrets,
    now: Timestamp,
    entropy: &dyn Entropy,
) -> Result<(), FlowError> {
    let blinded = |pending: &Option<PendingCredential>| {
        pending
            .as_ref()
            .map(|pending| projections::credential::BlindedMessage(pending.blinded_message.clone()))
    };
    let Some(blinded_message) = blinded(&secrets.pending) else {
        unreachable!("a fresh wallet entry holds the node issuer's blinded message")
    };
    let request = CredentialRequest {
        poll,
        blinded_message,
        co_issuer_blinded_message: blinded(&secrets.co_issuer_pending),
    };
    let action = Action::RequestCredentials(request);
    let path = crate::client::endpoint_for(&action);
    let envelope = signed_envelope(key, action, now, entropy);
    match server.post(&path, &envelope) {
        Ok(_) => Ok(()),
        Err(ClientError::Refused { body, .. })
            if body["type"] == "urn:veche:problem:credentials-already-requested" =>
        {
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Fetches one issuer's blind signature for the citizen's request and finalises it.
fn finish(
    issuer: &Client,
    name: &'static str,
    citizen: PublicKey,
    poll: u64,
    mut secrets: PollSecrets,
    co_issuer: bool,
) -> Result<PollSecrets, FlowError> {
    let pending = if co_issuer {
        &mut secrets.co_issuer_pending
    } else {
        &mut secrets.pending
    };
    let Some(waiting) = pending.clone() else {
        return Ok(secrets);
    };
    let answer = issuer
        .get(&format!("/v1/polls/{poll}/credentials/{citizen}"))
        .map_err(|error| FlowError::IssuerUnavailable {
            issuer: name,
            error,
        })?;
    let signature = answer["blind_signature"]
        .as_str()
        .and_then(|text| hex::decode(text).ok())
        .unwrap_or_default();
    let credential = waiting.finalize(&signature)?;
    *pending = None;
    if co_issuer {
        secrets.co_issuer_credential = Some(credential);
    } else {
        secrets.credential = Some(credential);
    }
    Ok(secrets)
}

/// Casts (or, where the poll allows, changes) the ballot of the wallet's ballot key in `poll`,
/// with its `issued_at` blurred.
pub fn cast_anonymous_ballot(
    server: &Client,
    wallet_file: &Path,
    poll: u64,
    choices: Vec<u32>,
    now: Timestamp,
    entropy: &dyn Entropy,
) -> Result<Value, FlowError> {
    let wallet = Wallet::read(wallet_file)?;
    let secrets = wallet
        .polls
        .get(&poll)
        .filter(|secrets| secrets.is_complete())
        .ok_or(FlowError::NoCredentials { poll })?;
    let Some(credential) = secrets.credential.clone() else {
        unreachable!("a complete wallet entry holds the node issuer's credential")
    };
    let ballot = AnonymousBallot {
        poll,
        choices,
        district: secrets.district.clone(),
        credential,
        co_issuer_credential: secrets.co_issuer_credential.clone(),
    };
    let action = Action::CastAnonymousBallot(ballot);
    let path = crate::client::endpoint_for(&action);
    let issued_at = blurred(now, entropy);
    let envelope = signed_envelope(&secrets.ballot_key(), action, issued_at, entropy);
    Ok(server.post(&path, &envelope)?)
}

/// `now` moved back by a uniformly random amount of up to
/// `ANONYMOUS_BALLOT_ISSUED_AT_BLUR_MS_MAX`: a device whose clock is off by an unusual amount
/// would otherwise show the same offset from the server time on its request and on its ballot.
fn blurred(now: Timestamp, entropy: &dyn Entropy) -> Timestamp {
    let mut bytes = [0u8; 8];
    entropy.fill(&mut bytes);
    let span = projections::limits::ANONYMOUS_BALLOT_ISSUED_AT_BLUR_MS_MAX.unsigned_abs() + 1;
    let back = u64::from_le_bytes(bytes) % span;
    Timestamp(now.0.saturating_sub_unsigned(back))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SeededEntropy;

    #[test]
    fn a_blurred_issued_at_stays_within_the_blur_behind_now_and_varies() {
        let now = Timestamp(1_800_000_000_000);
        let entropy = SeededEntropy::new(7);
        let blurred: Vec<i64> = (0..200).map(|_| blurred(now, &entropy).0).collect();
        let earliest = now.0 - projections::limits::ANONYMOUS_BALLOT_ISSUED_AT_BLUR_MS_MAX;
        assert!(
            blurred.iter().all(|at| (earliest..=now.0).contains(at)),
            "{blurred:?}"
        );
        let distinct: std::collections::BTreeSet<i64> = blurred.iter().copied().collect();
        assert!(
            distinct.len() > 190,
            "only {} distinct values",
            distinct.len()
        );
        // Spread over the whole span, not bunched at one end.
        let span = projections::limits::ANONYMOUS_BALLOT_ISSUED_AT_BLUR_MS_MAX;
        assert!(blurred.iter().any(|at| now.0 - at > span * 3 / 4));
        assert!(blurred.iter().any(|at| now.0 - at < span / 4));
    }
}
