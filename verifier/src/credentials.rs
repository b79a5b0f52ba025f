//! The citizen's side of an anonymous poll's credentials (RFC 9474): blinding the credential
//! message of a fresh per-poll ballot key for one issuer, and finalising that issuer's blind
//! signature into a credential that verifies as a plain RSASSA-PSS signature.
//!
//! A pending credential holds the blinding secret, so it is kept (in the wallet) only until the
//! issuer answers; an answer can be finalised any time later, which is what lets a citizen whose
//! issuer was down retry without starting over.

use blind_rsa_signatures::{BlindSignature, MessageRandomizer, Secret};
use projections::credential::{credential_message, padding_options, Credential, IssuerKey};
use projections::protocol::PublicKey;
use serde::{Deserialize, Serialize};

/// Why blinding or finalising failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlindingError {
    #[error("the credential message cannot be blinded under this issuer key")]
    Blinding,
    #[error(
        "the issuer's blind signature is {length_bytes} bytes, not its modulus's {expected_bytes}"
    )]
    SignatureLength {
        length_bytes: usize,
        expected_bytes: usize,
    },
    #[error("the issuer's blind signature does not unblind to a credential under its key")]
    DoesNotVerify,
}

/// One issuer's credential, blinded and sent, awaiting the issuer's blind signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingCredential {
    pub issuer: IssuerKey,
    pub poll: u64,
    pub ballot_key: PublicKey,
    /// RFC 9474's message randomizer, the citizen's own prefix to the message.
    #[serde(with = "hex::serde")]
    pub randomizer: [u8; 32],
    /// The blinding inverse: whoever holds it can link the blinded message to the credential.
    #[serde(with = "hex::serde")]
    pub secret: Vec<u8>,
    /// What the issuer signs, as sent in the issuance request.
    #[serde(with = "hex::serde")]
    pub blinded_message: Vec<u8>,
}

impl PendingCredential {
    /// Blinds the credential message of `ballot_key` in `poll` for `issuer`, with fresh
    /// randomness from the operating system.
    pub fn blind(
        issuer: &IssuerKey,
        poll: u64,
        ballot_key: PublicKey,
    ) -> Result<PendingCredential, BlindingError> {
        let message = credential_message(poll, &ballot_key);
        let blinded = issuer
            .key()
            .blind(&mut rand_core::OsRng, message, true, &padding_options())
            .map_err(|_| BlindingError::Blinding)?;
        let randomizer = blinded.msg_randomizer.ok_or(BlindingError::Blinding)?;
        Ok(PendingCredential {
            issuer: issuer.clone(),
            poll,
            ballot_key,
            randomizer: randomizer.0,
            secret: blinded.secret.0,
            blinded_message: blinded.blind_msg.0,
        })
    }

    /// Unblinds the issuer's `blind_signature` into the credential, checking it verifies.
    pub fn finalize(&self, blind_signature: &[u8]) -> Result<Credential, BlindingError> {
        let expected_bytes = self.issuer.modulus_bytes();
        if blind_signature.len() != expected_bytes {
            return Err(BlindingError::SignatureLength {
                length_bytes: blind_signature.len(),
                expected_bytes,
            });
        }
        let message = credential_message(self.poll, &self.ballot_key);
        let signature = self
            .issuer
            .key()
            .finalize(
                &BlindSignature(blind_signature.to_vec()),
                &Secret(self.secret.clone()),
                Some(MessageRandomizer(self.randomizer)),
                message,
                &padding_options(),
            )
            .map_err(|_| BlindingError::DoesNotVerify)?;
        Ok(Credential::new(self.randomizer, signature.0))
    }
}
