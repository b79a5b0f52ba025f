//! The signed envelope a client sends: the exact payload text and its signature.

use ed25519_dalek::SigningKey;
use projections::command::ParseError;
use projections::content::ContentPiece;
use projections::protocol::{sign, verify_strict, SignatureError};
use projections::{Command, EntryKind, SignedCommand};
use serde::{Deserialize, Serialize};

/// What every write endpoint takes. The payload is a JSON object written as a JSON string, so
/// its exact bytes travel untouched; the signature covers `"veche command v1\n"` followed by
/// those bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The command payload, exactly as signed (UTF-8 JSON text).
    pub payload: String,
    /// Ed25519 signature, 128 lowercase hexadecimal characters.
    pub signature: String,
    /// The content the payload commits to (salt and text per committed field), in any order.
    /// Outside the signature: the commitments inside the payload bind it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ContentPiece>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the signature is not 128 lowercase hexadecimal characters")]
    MalformedSignature,
    #[error("the author key is weak (small order): no signature under it can be trusted")]
    WeakKey,
    #[error(transparent)]
    Payload(#[from] ParseError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

impl Envelope {
    /// Signs a command with `key` as its author.
    pub fn sign(key: &SigningKey, command: &Command) -> Envelope {
        let payload = command.to_payload();
        let signature = sign(key, EntryKind::Command, &payload);
        Envelope {
            payload: String::from_utf8_lossy(&payload).into_owned(),
            signature: hex::encode(signature),
            content: Vec::new(),
        }
    }

    /// Parses the payload and checks the signature strictly under the payload's author key.
    /// This is the expensive step; it runs on the signature-check pool, never in the writer or on
    /// an HTTP worker.
    pub fn open(self) -> Result<SignedCommand, EnvelopeError> {
        let signature = decode_signature(&self.signature)?;
        let payload = self.payload.into_bytes();
        let command = Command::parse(&payload)?;
        if let Err(error) = verify_strict(
            command.author,
            &projections::protocol::signed_message(EntryKind::Command, &payload),
            &signature,
        ) {
            // Strict verification refuses weak keys too, as a bare "invalid signature"; say what
            // is really wrong. Asked only on failure: a key that verified is not weak, and the
            // check decodes the key again (a tenth of the request's cost, the profile showed).
            if command.author.is_weak() {
                return Err(EnvelopeError::WeakKey);
            }
            return Err(error.into());
        }
        Ok(SignedCommand {
            kind: EntryKind::Command,
            signer: command.author,
            signature,
            payload,
            command,
        })
    }
}

/// The signature as the protocol writes it: 128 lowercase hexadecimal characters, one spelling
/// per signature (as for keys and nonces), so upper case is refused rather than folded.
fn decode_signature(text: &str) -> Result<[u8; 64], EnvelopeError> {
    if !text
        .bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    {
        return Err(EnvelopeError::MalformedSignature);
    }
    let mut signature = [0; 64];
    hex::decode_to_slice(text, &mut signature).map_err(|_| EnvelopeError::MalformedSignature)?;
    Ok(signature)
}

/// Signs a system event with the server key.
pub fn sign_system(key: &SigningKey, command: Command) -> SignedCommand {
    SignedCommand::sign(key, EntryKind::System, command)
}
