//! The independent co-issuer of anonymous polls (`veche co-issuer`): a separate process, run by
//! someone other than the city (an observers' organisation), with its own RSA key. It follows a
//! node's public log, replaying and deciding every entry itself, and blind-signs only credential
//! requests that its own replay accepted (eligible, and the resident's first in the poll) in
//! polls that name its key. So a ballot needs a credential from each side, and stuffing takes
//! both issuers colluding.
//!
//! Invariant: the co-issuer keeps nothing but its key file; every answer is computed again from
//! the log (blind signing is deterministic), so a co-issuer killed mid-issuance and restarted
//! answers the same request with the same signature, and no citizen is left half-issued.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use projections::command::Action;
use projections::credential::{BlindedMessage, IssuerKey};
use projections::{Event, Ledger, PublicKey, Replayer};
use veche_verifier::client::{Client, ClientError};
use veche_verifier::pipeline::{replay, EntryReader, PipelineError, PipelineOptions, Signatures};

use crate::issuer::{Issuer, IssuerError};

/// Why following the log or answering a request failed.
#[derive(Debug, thiserror::Error)]
pub enum CoIssuerError {
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    #[error("cannot read the followed log: {0}")]
    Follow(String),
    #[error(
        "no credential request of {key} in poll {poll} that names this co-issuer is in the log"
    )]
    NoRequest { poll: u64, key: PublicKey },
}

/// A request the co-issuer answers: where it is in the log, and what to sign.
#[derive(Clone, Debug)]
struct AcceptedRequest {
    position: u64,
    blinded_message: BlindedMessage,
}

/// The followed log's fold, and the requests in it addressed to this co-issuer, by poll and
/// resident (voter number): one each, as the rules allow.
struct Followed {
    replayer: Replayer,
    requests: BTreeMap<(u64, u64), AcceptedRequest>,
}

pub struct CoIssuer {
    issuer: Issuer,
    server: Client,
    followed: Mutex<Followed>,
}

/// The co-issuer's answer to one request.
pub struct CoIssuerAnswer {
    pub request_position: u64,
    pub blind_signature: Vec<u8>,
}

impl CoIssuer {
    /// The co-issuer with the key at `key_file` (created there on first use), following the
    /// node at `server`.
    pub fn open(key_file: &Path, server: &str) -> Result<(CoIssuer, bool), CoIssuerError> {
        let (issuer, created) = Issuer::read_or_create(key_file)?;
        let server =
            Client::new(server).map_err(|error| CoIssuerError::Follow(error.to_string()))?;
        let followed = Followed {
            replayer: Replayer::new(),
            requests: BTreeMap::new(),
        };
        let co_issuer = CoIssuer {
            issuer,
            server,
            followed: Mutex::new(followed),
        };
        Ok((co_issuer, created))
    }

    pub fn public_key(&self) -> &IssuerKey {
        self.issuer.public_key()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Followed> {
        // A panic mid-fold would leave the replayer mid-entry; the replay pipeline folds an entry
        // in one step after checking it, so the state is a prefix of the log.
        self.followed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of log entries followed so far.
    pub fn followed_size(&self) -> u64 {
        self.lock().replayer.ledger.size
    }

    /// Reads and folds every entry the node has published since the last call; how many.
    pub fn follow(&self) -> Result<u64, CoIssuerError> {
        let mut followed = self.lock();
        let Followed { replayer, requests } = &mut *followed;
        let mut reader = LogReader {
            server: &self.server,
            next: replayer.ledger.size,
        };
        let options = PipelineOptions {
            threads: 1,
            signatures: Signatures::Strict,
            end: u64::MAX,
        };
        let own_key = self.issuer.public_key().clone();
        let folded = replay(&mut reader, replayer, options, |folded| {
            record_request(requests, folded.event, folded.ledger, &own_key);
            Ok::<(), std::convert::Infallible>(())
        });
        folded.map_err(|error| match error {
            PipelineError::Read(error) => CoIssuerError::Follow(error.to_string()),
            other => CoIssuerError::Follow(format!("the log does not verify: {other}")),
        })
    }

    /// Blind-signs the request of `key`'s resident in `poll`, if the followed log holds one
    /// that names this co-issuer; follows the log first when it does not yet.
    pub fn answer(&self, poll: u64, key: PublicKey) -> Result<CoIssuerAnswer, CoIssuerError> {
        let found = match self.find(poll, key) {
            Some(found) => found,
            None => {
                self.follow()?;
                self.find(poll, key)
                    .ok_or(CoIssuerError::NoRequest { poll, key })?
            }
        };
        let blind_signature = self.issuer.blind_sign(&found.blinded_message.0)?;
        Ok(CoIssuerAnswer {
            request_position: found.position,
            blind_signature,
        })
    }

    fn find(&self, poll: u64, key: PublicKey) -> Option<AcceptedRequest> {
        let followed = self.lock();
        let voter = followed.replayer.ledger.keys.voter_number(key)?;
        followed.requests.get(&(poll, voter)).cloned()
    }
}

/// Keeps a folded credential request if its poll names `own_key` as co-issuer. The fold only
/// reaches here for entries its rules accepted, so the request is eligible and first.
fn record_request(
    requests: &mut BTreeMap<(u64, u64), AcceptedRequest>,
    event: &Event,
    ledger: &Ledger,
    own_key: &IssuerKey,
) {
    let Action::RequestCredentials(request) = &event.command.action else {
        return;
    };
    let Some(poll) = ledger.polls.get(&request.poll) else {
        unreachable!(
            "a folded request names poll {}, which the fold holds",
            request.poll
        )
    };
    let names_us = poll
        .definition
        .anonymous
        .as_ref()
        .and_then(|anonymity| anonymity.co_issuer_key.as_ref())
        == Some(own_key);
    let (true, Some(blinded_message)) = (names_us, request.co_issuer_blinded_message.clone())
    else {
        return;
    };
    let Some(voter) = ledger.keys.voter_number(event.command.author) else {
        unreachable!("a folded request's author is registered")
    };
    let accepted = AcceptedRequest {
        position: event.position,
        blinded_message,
    };
    requests.insert((request.poll, voter), accepted);
}

/// The node's log, page by page, through `/v1/log/entries`.
struct LogReader<'a> {
    server: &'a Client,
    next: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReadError(String);

impl EntryReader for LogReader<'_> {
    type Record = Vec<u8>;
    type Error = ReadError;

    fn read_page(&mut self, limit: usize) -> Result<Vec<Vec<u8>>, ReadError> {
        let limit = limit.min(projections::limits::LOG_PAGE_ENTRIES_MAX);
        let path = format!("/v1/log/entries?from={}&limit={limit}", self.next);
        let page = self
            .server
            .get(&path)
            .map_err(|error: ClientError| ReadError(error.to_string()))?;
        let items = page["entries"]
            .as_array()
            .ok_or_else(|| ReadError(format!("{path} answered no entries")))?;
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let bytes = item["entry"]
                .as_str()
                .and_then(|text| hex::decode(text).ok())
                .ok_or_else(|| ReadError(format!("{path}: an entry is not hex")))?;
            entries.push(bytes);
        }
        self.next += entries.len() as u64;
        Ok(entries)
    }
}
