//! The citizen side: build a command, sign it with a key file's key, send it, read answers.
//!
//! Used by the CLI, the integration tests and the load harness, so all three speak the protocol
//! through one piece of code.

use ed25519_dalek::SigningKey;
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

/// The path each action is sent to.
pub fn endpoint_for(action: &Action) -> String {
    if action.is_system() {
        return "/v1/commands".into();
    }
    if let Some(complaint) = action.complaint() {
        return format!("/v1/complaints/{complaint}/events");
    }
    if let Some(proposal) = action.proposal() {
        return format!("/v1/proposals/{proposal}/events");
    }
    match action {
        Action::RegisterKey(_) => "/v1/keys".into(),
        Action::GrantRole(_) | Action::RevokeRole(_) => "/v1/roles".into(),
        Action::OpenPoll(_) => "/v1/polls".into(),
        Action::CastBallot(ballot) => format!("/v1/polls/{}/ballots", ballot.poll),
        Action::AttestResident(_) => "/v1/attestations".into(),
        Action::DefineCategory(_) => "/v1/categories".into(),
        Action::FileComplaint(_) => "/v1/complaints".into(),
        Action::SubmitProposal(_) => "/v1/proposals".into(),
        _ => "/v1/commands".into(),
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
