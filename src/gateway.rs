//! Open311 gateways: the signing keys of call centres and reporting apps that file complaints for
//! residents who hold no key, and the `api_key` each one's Open311 client sends instead of a
//! signature.
//!
//! A gateway's operator registers its key (`veche register`), the admin grants it the gateway
//! role, and the node's operator puts its key file in the data directory's `gateway-keys`
//! directory. `veche gateway-api-key --key FILE` prints the key's `api_key`: HMAC-SHA-256 of a
//! fixed domain under the key's secret half, so only a holder of the key can compute it and
//! nothing about the key can be learnt from it. At start-up the node reads each key file and
//! keeps, per gateway, only the SHA-256 of its `api_key` beside the key; a request's `api_key`
//! is hashed and looked up. **Invariant:** the node never logs or serves an `api_key`, and it
//! signs with a gateway's key only a `file_complaint` marked `through_gateway`, which the log's
//! rules accept only from a key holding the gateway role.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::keys::{read_key_file, KeyFileError};
use projections::protocol::public_key_of;
use projections::PublicKey;

/// The data directory's folder of gateway key files (`*.key`, as `veche keygen` writes them).
pub const GATEWAY_KEYS_DIRECTORY: &str = "gateway-keys";

/// What the `api_key`'s HMAC covers, so that it is no other value ever computed from the key.
const API_KEY_DOMAIN: &[u8] = b"veche open311 api key v1\n";

/// The `api_key` of a gateway's key: 64 lowercase hexadecimal characters.
pub fn api_key_of(key: &SigningKey) -> String {
    hex::encode(crate::registrar::hmac_sha256(
        key.as_bytes(),
        API_KEY_DOMAIN,
    ))
}

fn digest_of(api_key: &str) -> [u8; 32] {
    Sha256::digest(api_key.as_bytes()).into()
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot read the gateway keys in {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
}

/// The gateways this node signs for, by the SHA-256 of their `api_key`.
#[derive(Default)]
pub struct GatewayRing {
    by_api_key_digest: BTreeMap<[u8; 32], SigningKey>,
}

impl GatewayRing {
    /// Reads every `*.key` file of the data directory's `gateway-keys` folder; none when the
    /// folder does not exist.
    pub fn open(data_directory: &Path) -> Result<GatewayRing, GatewayError> {
        let folder = data_directory.join(GATEWAY_KEYS_DIRECTORY);
        let unreadable = |source| GatewayError::Directory {
            path: folder.display().to_string(),
            source,
        };
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(GatewayRing::default())
            }
            Err(error) => return Err(unreadable(error)),
        };
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry.map_err(unreadable)?.path();
            if path.extension().is_some_and(|extension| extension == "key") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut keys = Vec::new();
        for path in paths {
            keys.push(read_key_file(&path)?);
        }
        let ring = GatewayRing::of(keys);
        for key in ring.by_api_key_digest.values() {
            tracing::info!(gateway = %public_key_of(key), "holding an Open311 gateway key");
        }
        Ok(ring)
    }

    pub fn of(keys: impl IntoIterator<Item = SigningKey>) -> GatewayRing {
        GatewayRing {
            by_api_key_digest: keys
                .into_iter()
                .map(|key| (digest_of(&api_key_of(&key)), key))
                .collect(),
        }
    }

    /// The gateway key whose `api_key` this is.
    pub fn find(&self, api_key: &str) -> Option<&SigningKey> {
        self.by_api_key_digest.get(&digest_of(api_key))
    }

    /// The public keys of the gateways held.
    pub fn public_keys(&self) -> Vec<PublicKey> {
        self.by_api_key_digest.values().map(public_key_of).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_key_finds_its_gateway_and_no_other_text_does() {
        let first = SigningKey::from_bytes(&[7; 32]);
        let second = SigningKey::from_bytes(&[8; 32]);
        let ring = GatewayRing::of([first.clone(), second.clone()]);
        let api_key = api_key_of(&first);
        assert_eq!(api_key.len(), 64);
        assert_ne!(api_key, api_key_of(&second));
        assert_eq!(
            ring.find(&api_key).map(public_key_of),
            Some(public_key_of(&first))
        );
        assert!(ring.find(&api_key.to_uppercase()).is_none());
        assert!(ring.find(&hex::encode(first.as_bytes())).is_none());
        assert!(ring.find("").is_none());
    }
}
