//! The citizen's wallet for anonymous polls: per poll, the secret of the per-poll ballot key,
//! the blinded requests awaiting the issuers' answers, and the finished credentials. Kept beside
//! the citizen's key file (`<key file>.wallet.json`, owner-only), so a vote can be changed later.
//! Whoever loses it cannot vote again in that poll: the log allows one request per resident.
//!
//! With the `http` feature, `obtain_credentials` walks the issuance (request, fetch each
//! issuer's blind signature, finalise) and `cast_anonymous_ballot` casts. Each step is saved
//! before the next, so an interrupted run resumes where it stopped and nothing is half-issued.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use projections::credential::Credential;
use projections::protocol::public_key_of;
use projections::PublicKey;
use serde::{Deserialize, Serialize};

use crate::credentials::PendingCredential;

/// One anonymous poll's secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollSecrets {
    /// The per-poll ballot key's secret: it signs the ballots and nothing else.
    #[serde(with = "hex::serde")]
    pub ballot_key_secret: [u8; 32],
    /// The district the node's credential is issued for, when the poll is for districts.
    pub district: Option<String>,
    /// The node issuer's blinded credential, kept until its answer is finalised.
    pub pending: Option<PendingCredential>,
    /// The co-issuer's, likewise.
    pub co_issuer_pending: Option<PendingCredential>,
    pub credential: Option<Credential>,
    pub co_issuer_credential: Option<Credential>,
}

impl PollSecrets {
    pub fn ballot_key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.ballot_key_secret)
    }

    pub fn ballot_public_key(&self) -> PublicKey {
        public_key_of(&self.ballot_key())
    }

    /// Whether every credential the poll needs is finalised.
    pub fn is_complete(&self) -> bool {
        self.pending.is_none() && self.co_issuer_pending.is_none() && self.credential.is_some()
    }
}

/// Every anonymous poll's secrets, by poll.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wallet {
    pub polls: BTreeMap<u64, PollSecrets>,
}

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("cannot read the wallet {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the wallet {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the wallet {path} is not a veche wallet: {source}")]
    Malformed {
        path: String,
        source: serde_json::Error,
    },
}

/// The wallet file beside `key_file`.
pub fn wallet_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".wallet.json");
    PathBuf::from(name)
}

impl Wallet {
    /// The wallet at `path`, or an empty one if there is none yet.
    pub fn read(path: &Path) -> Result<Wallet, WalletError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Wallet::default())
            }
            Err(source) => {
                return Err(WalletError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        serde_json::from_str(&text).map_err(|source| WalletError::Malformed {
            path: path.display().to_string(),
            source,
        })
    }

    /// Writes the whole wallet to `path`, readable by its owner only, replacing the file in one
    /// rename so a crash leaves the old wallet or the new one.
    pub fn write(&self, path: &Path) -> Result<(), WalletError> {
        let failed = |source| WalletError::Write {
            path: path.display().to_string(),
            source,
        };
        let text = serde_json::to_vec_pretty(self).map_err(|error| failed(error.into()))?;
        let partial = path.with_extension("json.partial");
        // A partial file is what a crash mid-write leaves: the wallet itself is still whole.
        match std::fs::remove_file(&partial) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(failed(error))
            }
            _ => {}
        }
        crate::keys::write_private_file(&partial, &text).map_err(failed)?;
        std::fs::rename(&partial, path).map_err(failed)
    }
}

#[cfg(feature = "http")]
pub use flow::{cast_anonymous_ballot, obtain_credentials, FlowError};

#[cfg(feature = "http")]
mod flow;
