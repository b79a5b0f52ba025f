//! The citizen side: build a command, sign it with a key file's key, send it, read answers.
//!
//! Used by the CLI, the integration tests and the load harness, so all three speak the protocol
//! through one piece of code.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use projections::content::{Commitment, ContentPiece, SALT_BYTES};
use projections::protocol::public_key_of;
use projections::{Action, Command, Timestamp};
use serde_json::Value;

use crate::envelope::Envelope;
use crate::keys::{generate_nonce, Entropy};

/// A command by `key`'s holder, issued at `issued_at` with a fresh nonce.
pub fn new_command(
    key: &SigningKey,
    action: Action,
    issued_at: Timestamp,
    entropy: &dyn Entropy,
) -> Command {
    Command {
        author: public_key_of(key),
        nonce: generate_nonce(entropy),
        issued_at,
        action,
    }
}

/// Builds and signs in one step.
pub fn signed_envelope(
    key: &SigningKey,
    action: Action,
    issued_at: Timestamp,
    entropy: &dyn Entropy,
) -> Envelope {
    Envelope::sign(key, &new_command(key, action, issued_at, entropy))
}

/// The content a client committed to and has not sent yet: `commit` gives the commitment to put
/// in a command and keeps the salted text, and `attach` puts the pieces a signed command names
/// beside it in its envelope.
pub struct ContentBook {
    pieces: Mutex<BTreeMap<Commitment, ContentPiece>>,
}

impl ContentBook {
    pub const fn new() -> ContentBook {
        ContentBook {
            pieces: Mutex::new(BTreeMap::new()),
        }
    }

    /// A commitment to `text` under a fresh random salt: the same text twice gives two.
    pub fn commit(&self, text: &str, entropy: &dyn Entropy) -> Commitment {
        let mut salt = [0; SALT_BYTES];
        entropy.fill(&mut salt);
        let piece = ContentPiece {
            salt,
            text: text.to_owned(),
        };
        let commitment = piece.commitment();
        self.lock().insert(commitment, piece);
        commitment
    }

    /// The text behind a commitment this book made, if it still holds it.
    pub fn text(&self, commitment: &Commitment) -> Option<String> {
        self.lock().get(commitment).map(|piece| piece.text.clone())
    }

    /// Puts beside `envelope` every piece its command commits to that this book holds.
    pub fn attach(&self, mut envelope: Envelope) -> Envelope {
        let Ok(command) = Command::parse(envelope.payload.as_bytes()) else {
            return envelope;
        };
        let pieces = self.lock();
        envelope.content = command
            .action
            .committed_fields()
            .iter()
            .filter_map(|(_, commitment)| pieces.get(commitment).cloned())
            .collect();
        envelope
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Commitment, ContentPiece>> {
        // A panic while holding the book leaves plain data behind: keep using it.
        self.pieces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for ContentBook {
    fn default() -> Self {
        ContentBook::new()
    }
}

/// The path each action is sent to. The match names every action, so a new one cannot be sent
/// to the generic route by oversight.
pub fn endpoint_for(action: &Action) -> String {
    // Lifecycle actions go to their item's events route; the server-signed ones, which a
    // client never sends, to the generic route.
    match action {
        Action::RegisterKey(_) => "/v1/keys".into(),
        Action::TriageComplaint(_) | Action::MergeComplaint(_) => complaint_events(action),
        Action::GrantRole(_) | Action::RevokeRole(_) => "/v1/roles".into(),
        Action::SupplementComplaint(_) | Action::StartWork(_) => complaint_events(action),
        Action::OpenPoll(_) => "/v1/polls".into(),
        Action::CorrectPoll(correction) => format!("/v1/polls/{}/corrections", correction.poll),
        Action::ResolveComplaint(_) | Action::CannotResolve(_) => complaint_events(action),
        Action::CastBallot(ballot) => format!("/v1/polls/{}/ballots", ballot.poll),
        Action::RequestCredentials(request) => format!("/v1/polls/{}/credentials", request.poll),
        Action::CastAnonymousBallot(ballot) => {
            format!("/v1/polls/{}/anonymous-ballots", ballot.poll)
        }
        Action::ConfirmResolution(_) | Action::DisputeResolution(_) => complaint_events(action),
        Action::AttestResident(_) => "/v1/attestations".into(),
        Action::RevokeKey(_) => "/v1/revocations".into(),
        Action::ModerateProposal(_) | Action::SupportProposal(_) => proposal_events(action),
        Action::DefineCategory(_) => "/v1/categories".into(),
        Action::WithdrawSupport(_) | Action::AnswerProposal(_) => proposal_events(action),
        Action::FileComplaint(_) => "/v1/complaints".into(),
        Action::WithdrawProposal(_) => proposal_events(action),
        Action::SubmitProposal(_) => "/v1/proposals".into(),
        Action::Genesis(_) | Action::ClosePoll(_) | Action::ExpireProposal(_) => {
            "/v1/commands".into()
        }
        Action::BreachSla(_) | Action::CloseUnconfirmed(_) => "/v1/commands".into(),
        Action::AttestState(_) | Action::MarkState(_) => "/v1/commands".into(),
        // The admin office has no resource of its own to route to.
        Action::HandOverAdmin(_) | Action::ApproveRecovery(_) => "/v1/commands".into(),
        // Erasures name an entry of any kind: they have no collection of their own.
        Action::EraseContent(_) | Action::RedactContent(_) => "/v1/commands".into(),
    }
}

/// The events route of the complaint a lifecycle action is about.
fn complaint_events(action: &Action) -> String {
    match action.complaint() {
        Some(complaint) => format!("/v1/complaints/{complaint}/events"),
        None => unreachable!("{} is not about a complaint", action.name()),
    }
}

/// The events route of the proposal a lifecycle action is about.
fn proposal_events(action: &Action) -> String {
    match action.proposal() {
        Some(proposal) => format!("/v1/proposals/{proposal}/events"),
        None => unreachable!("{} is not about a proposal", action.name()),
    }
}

#[cfg(feature = "http")]
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("the server answered {status}: {body}")]
    Refused { status: u16, body: Value },
}

/// A blocking HTTP client for one server.
#[cfg(feature = "http")]
pub struct Client {
    base_url: String,
    http: reqwest::blocking::Client,
}

#[cfg(feature = "http")]
impl Client {
    pub fn new(base_url: &str) -> Result<Client, ClientError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Client {
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
        })
    }

    pub fn post(&self, path: &str, envelope: &Envelope) -> Result<Value, ClientError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .json(envelope)
            .send()?;
        Self::answer(response)
    }

    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        Self::answer(self.http.get(format!("{}{path}", self.base_url)).send()?)
    }

    fn answer(response: reqwest::blocking::Response) -> Result<Value, ClientError> {
        let status = response.status();
        let body: Value = response.json().unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(ClientError::Refused {
                status: status.as_u16(),
                body,
            })
        }
    }
}
