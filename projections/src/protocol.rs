//! The bytes of veche's log: domain-separated signed messages, the entry layout and the hash chain.
//!
//! `docs/PROTOCOL.md` is the normative description; this module is its executable form and the
//! worked examples there are checked against it by a test.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256, Sha512};

use crate::time::Timestamp;

/// Prefix of every message a citizen (or admin, official, ...) signs. The trailing newline ends
/// the prefix unambiguously because a payload is a JSON object and starts with `{`.
pub const COMMAND_DOMAIN: &[u8] = b"veche command v1\n";
/// Prefix of every message the server signs for its own system events.
pub const SYSTEM_DOMAIN: &[u8] = b"veche system event v1\n";

/// Format version, the first byte of every entry. Version 2 keeps erasable content beside the
/// log (commitments in the payload); a version-1 log is refused by name, never read as version 2.
pub const ENTRY_VERSION: u8 = 2;
/// Fixed part of an entry: version, kind, position, server time, previous hash, signer, signature.
pub const ENTRY_HEADER_BYTES: usize = 1 + 1 + 8 + 8 + 32 + 32 + 64;
// limits.rs writes the payload limit as a number so that it depends on nothing; this holds the
// two to the entry layout at compile time.
const _: () = assert!(
    crate::limits::PAYLOAD_BYTES_MAX + ENTRY_HEADER_BYTES == crate::limits::ENTRY_BYTES_MAX
);

pub type Hash = [u8; 32];

/// Prefix of every content commitment, so a commitment can never be another hash of the protocol.
pub const CONTENT_DOMAIN: &[u8] = b"veche content v2\n";
/// Bytes of a commitment's salt: fixed, so salt and text split one way only.
pub const SALT_BYTES: usize = 16;

/// A commitment to one piece of content, written as 64 lowercase hexadecimal characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Commitment(pub [u8; 32]);

impl Commitment {
    /// The commitment to `text` under `salt`.
    pub fn of(salt: &[u8; SALT_BYTES], text: &str) -> Commitment {
        let mut hasher = Sha256::new();
        hasher.update(CONTENT_DOMAIN);
        hasher.update(salt);
        hasher.update(text.as_bytes());
        Commitment(hasher.finalize().into())
    }
}

/// Hash that the first entry links to.
pub const GENESIS_PREVIOUS_HASH: Hash = [0; 32];

/// A 32-byte Ed25519 public key, written as 64 lowercase hexadecimal characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// A key is weak when it is not a valid curve point or lies in the small-order subgroup:
    /// signatures under such keys can be forged, so veche never registers one.
    pub fn is_weak(self) -> bool {
        match VerifyingKey::from_bytes(&self.0) {
            Ok(key) => key.is_weak(),
            Err(_) => true,
        }
    }
}

/// 32 bytes written as 64 lowercase hexadecimal characters, one spelling per value: `to_hex`,
/// `from_hex` (upper case refused rather than folded), `Debug`, `Display` and serde as text.
macro_rules! lowercase_hex_32 {
    ($name:ident, $what:literal) => {
        impl $name {
            pub fn to_hex(self) -> String {
                hex::encode(self.0)
            }

            pub fn from_hex(text: &str) -> Option<$name> {
                if text.len() != 64 || text.bytes().any(|byte| byte.is_ascii_uppercase()) {
                    return None;
                }
                let mut bytes = [0; 32];
                hex::decode_to_slice(text, &mut bytes).ok()?;
                Some($name(bytes))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(formatter, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(&self.to_hex())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::from_hex(&text).ok_or_else(|| {
                    serde::de::Error::custom(concat!(
                        $what,
                        " is 64 lowercase hexadecimal characters"
                    ))
                })
            }
        }
    };
}

lowercase_hex_32!(PublicKey, "a public key");
lowercase_hex_32!(Commitment, "a commitment");

/// Who signed an entry, and therefore which domain prefix the signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A command signed by a key holder: citizen, official, moderator, registrar or admin.
    Command = 1,
    /// An event the server signs itself: genesis, poll close.
    System = 2,
}

impl EntryKind {
    pub fn domain(self) -> &'static [u8] {
        match self {
            EntryKind::Command => COMMAND_DOMAIN,
            EntryKind::System => SYSTEM_DOMAIN,
        }
    }
}

/// One record of the log, exactly as it is stored, hashed, chained and served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub position: u64,
    pub server_time: Timestamp,
    pub previous_hash: Hash,
    pub signer: PublicKey,
    pub signature: [u8; 64],
    /// The exact bytes that were signed after the domain prefix: a UTF-8 JSON object.
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum EntryError {
    #[error("entry is {length_bytes} bytes, shorter than the {ENTRY_HEADER_BYTES}-byte header")]
    TooShort { length_bytes: usize },
    #[error("entry is {length_bytes} bytes, longer than the 65535-byte maximum")]
    TooLong { length_bytes: usize },
    #[error(
        "entry format version {0} is not known: this veche reads version {ENTRY_VERSION} only \
         (version 1 logs kept complaint and proposal text in the log; start a new log)"
    )]
    UnknownVersion(u8),
    #[error("entry kind {0} is not known")]
    UnknownKind(u8),
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(ENTRY_HEADER_BYTES + self.payload.len());
        bytes.push(ENTRY_VERSION);
        bytes.push(self.kind as u8);
        bytes.extend_from_slice(&self.position.to_be_bytes());
        bytes.extend_from_slice(&self.server_time.0.to_be_bytes());
        bytes.extend_from_slice(&self.previous_hash);
        bytes.extend_from_slice(&self.signer.0);
        bytes.extend_from_slice(&self.signature);
        bytes.extend_from_slice(&self.payload);
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        if bytes.len() < ENTRY_HEADER_BYTES {
            return Err(EntryError::TooShort {
                length_bytes: bytes.len(),
            });
        }
        if bytes.len() > crate::limits::ENTRY_BYTES_MAX {
            return Err(EntryError::TooLong {
                length_bytes: bytes.len(),
            });
        }
        let (header, payload) = bytes.split_at(ENTRY_HEADER_BYTES);
        if header[0] != ENTRY_VERSION {
            return Err(EntryError::UnknownVersion(header[0]));
        }
        let kind = match header[1] {
            1 => EntryKind::Command,
            2 => EntryKind::System,
            other => return Err(EntryError::UnknownKind(other)),
        };
        Ok(Entry {
            kind,
            position: u64::from_be_bytes(array(&header[2..10])),
            server_time: Timestamp(i64::from_be_bytes(array(&header[10..18]))),
            previous_hash: array(&header[18..50]),
            signer: PublicKey(array(&header[50..82])),
            signature: array(&header[82..146]),
            payload: payload.to_vec(),
        })
    }

    /// The message the signature covers: domain prefix, then the payload bytes.
    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(self.kind, &self.payload)
    }

    /// Strict Ed25519 verification of the entry's signature under its signer key.
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        verify_strict(self.signer, &self.signed_message(), &self.signature)
    }
}

/// Copies a slice whose length the caller has already fixed into an array.
fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(slice);
    out
}

pub fn signed_message(kind: EntryKind, payload: &[u8]) -> Vec<u8> {
    let domain = kind.domain();
    let mut message = Vec::with_capacity(domain.len() + payload.len());
    message.extend_from_slice(domain);
    message.extend_from_slice(payload);
    message
}

/// The hash chain link: SHA-256 over the whole encoded entry, which itself carries the previous
/// entry's hash.
pub fn entry_hash(entry_bytes: &[u8]) -> Hash {
    Sha256::digest(entry_bytes).into()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum SignatureError {
    #[error("the signer key is not a valid Ed25519 public key")]
    InvalidKey,
    #[error("the signature does not verify under the signer key")]
    Mismatch,
}

/// Verifies as ed25519-dalek's `verify_strict` does: rejects small-order keys and signature
/// components and non-canonical encodings, so every conforming library agrees on which
/// signatures count.
///
/// It decides exactly what `VerifyingKey::verify_strict` decides (a test compares the two on
/// valid, corrupted and adversarial signatures) but skips decompressing `R`. `R` is compared as
/// bytes with the canonical encoding of `[s]B - [k]A`; when the two are equal `R` is canonical and
/// decodes to that point, so its small-order check can run on the computed point. The
/// decompression is a field exponentiation, about a tenth of the whole check.
pub fn verify_strict(
    signer: PublicKey,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    let key = CompressedEdwardsY(signer.0)
        .decompress()
        .ok_or(SignatureError::InvalidKey)?;
    if key.is_small_order() {
        return Err(SignatureError::Mismatch);
    }
    let mut commitment = [0u8; 32];
    commitment.copy_from_slice(&signature[..32]);
    let mut response = [0u8; 32];
    response.copy_from_slice(&signature[32..]);
    let response: Option<Scalar> = Scalar::from_canonical_bytes(response).into();
    let response = response.ok_or(SignatureError::Mismatch)?;
    let challenge = Scalar::from_hash(
        Sha512::new()
            .chain_update(commitment)
            .chain_update(signer.0)
            .chain_update(message),
    );
    let expected =
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&challenge, &(-key), &response);
    if expected.compress().0 != commitment || expected.is_small_order() {
        return Err(SignatureError::Mismatch);
    }
    Ok(())
}

/// Verifies many entries' signatures in one batch equation, the fast path of a full-log check.
/// On any failure each entry is checked strictly on its own, so the first bad entry is named
/// exactly (its index in `entries`).
///
/// The batch equation accepts everything strict verification accepts. It can also accept, with
/// probability at most one half per attempt, a valid signature whose `R` was altered by a
/// small-order point: such a signature still proves the key holder signed that exact message.
/// Weak keys, which strict verification refuses, go straight to the strict path.
pub fn verify_batch(entries: &[&Entry]) -> Result<(), (usize, SignatureError)> {
    let strict_one_by_one = || {
        for (index, entry) in entries.iter().enumerate() {
            entry.verify_signature().map_err(|error| (index, error))?;
        }
        Ok(())
    };
    let mut keys = Vec::with_capacity(entries.len());
    for entry in entries {
        match VerifyingKey::from_bytes(&entry.signer.0) {
            Ok(key) if !key.is_weak() => keys.push(key),
            _ => return strict_one_by_one(),
        }
    }
    let messages: Vec<Vec<u8>> = entries.iter().map(|entry| entry.signed_message()).collect();
    let message_slices: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let signatures: Vec<Signature> = entries
        .iter()
        .map(|entry| Signature::from_bytes(&entry.signature))
        .collect();
    match ed25519_dalek::verify_batch(&message_slices, &signatures, &keys) {
        Ok(()) => Ok(()),
        Err(_) => strict_one_by_one(),
    }
}

pub fn sign(key: &SigningKey, kind: EntryKind, payload: &[u8]) -> [u8; 64] {
    key.sign(&signed_message(kind, payload)).to_bytes()
}

pub fn public_key_of(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

/// An Ed25519 signature computed from its secret scalars rather than from a seed, where `key` is
/// `[secret]B` and `commitment` is `[nonce]B`, either plus any small-order point: how the tests and
/// the fuzz target build the mixed-order keys and commitments strict verification must refuse.
/// Not a way to sign entries (`sign` is).
#[doc(hidden)]
pub fn sign_with_scalars(
    secret: Scalar,
    key: EdwardsPoint,
    nonce: Scalar,
    commitment: EdwardsPoint,
    message: &[u8],
) -> (PublicKey, [u8; 64]) {
    let key_bytes = key.compress().0;
    let commitment_bytes = commitment.compress().0;
    let challenge = Scalar::from_hash(
        Sha512::new()
            .chain_update(commitment_bytes)
            .chain_update(key_bytes)
            .chain_update(message),
    );
    let response = nonce + challenge * secret;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&commitment_bytes);
    signature[32..].copy_from_slice(response.as_bytes());
    (PublicKey(key_bytes), signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ed25519-dalek's own strict check, which `verify_strict` must agree with on every input.
    fn reference_verify_strict(
        signer: PublicKey,
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(&signer.0).map_err(|_| SignatureError::InvalidKey)?;
        key.verify_strict(message, &Signature::from_bytes(signature))
            .map_err(|_| SignatureError::Mismatch)
    }

    fn scalar_from_label(label: &str) -> Scalar {
        Scalar::from_bytes_mod_order(Sha256::digest(label.as_bytes()).into())
    }

    #[test]
    fn strict_verification_decides_exactly_as_ed25519_dalek_verify_strict() {
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
        // The group order l, little-endian, to build a non-canonical response s + l.
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        // Non-canonical encodings of small-order points: y = p (that is 0) and y = p + 1 (1),
        // each with and without the sign bit.
        let mut non_canonical = Vec::new();
        for low in [0xedu8, 0xee] {
            for high in [0x7fu8, 0xff] {
                let mut bytes = [0xffu8; 32];
                bytes[0] = low;
                bytes[31] = high;
                non_canonical.push(bytes);
            }
        }
        let torsion_encodings: Vec<[u8; 32]> = EIGHT_TORSION
            .iter()
            .map(|point| point.compress().0)
            .chain(non_canonical.iter().copied())
            .collect();

        let mut cases: Vec<(String, PublicKey, Vec<u8>, [u8; 64])> = Vec::new();
        for index in 0..48 {
            let key = SigningKey::from_bytes(&Sha256::digest(format!("key {index}")).into());
            let signer = public_key_of(&key);
            let message = format!("ballot {index}").into_bytes();
            let signature = key.sign(&message).to_bytes();
            cases.push((format!("valid {index}"), signer, message.clone(), signature));
            for bit in [0, 9, 130, 255, 256, 300, 505, 510] {
                let mut flipped = signature;
                flipped[bit / 8] ^= 1 << (bit % 8);
                cases.push((
                    format!("bit {bit} of {index}"),
                    signer,
                    message.clone(),
                    flipped,
                ));
            }
            let mut other_message = message.clone();
            other_message[0] ^= 1;
            cases.push((
                format!("message of {index}"),
                signer,
                other_message,
                signature,
            ));
            let mut other_key = signer;
            other_key.0[3] ^= 0x10;
            cases.push((
                format!("key of {index}"),
                other_key,
                message.clone(),
                signature,
            ));
            let response: Option<Scalar> =
                Scalar::from_canonical_bytes(signature[32..].try_into().unwrap_or([0; 32])).into();
            if let Some(response) = response {
                // s + l as plain 256-bit integers: the same residue, non-canonically encoded.
                let mut sum = [0u8; 32];
                let mut carry = 0u16;
                for (byte, (left, right)) in sum
                    .iter_mut()
                    .zip(response.as_bytes().iter().zip(order.iter()))
                {
                    let total = u16::from(*left) + u16::from(*right) + carry;
                    *byte = (total & 0xff) as u8;
                    carry = total >> 8;
                }
                let mut stretched = signature;
                stretched[32..].copy_from_slice(&sum);
                cases.push((
                    format!("s + l of {index}"),
                    signer,
                    message.clone(),
                    stretched,
                ));
            }
            for (torsion_index, encoding) in torsion_encodings.iter().enumerate() {
                let mut small_commitment = signature;
                small_commitment[..32].copy_from_slice(encoding);
                cases.push((
                    format!("small-order R {torsion_index} on {index}"),
                    signer,
                    message.clone(),
                    small_commitment,
                ));
                cases.push((
                    format!("small-order key {torsion_index} on {index}"),
                    PublicKey(*encoding),
                    message.clone(),
                    signature,
                ));
            }
            // Keys and commitments with small-order components, signed by hand.
            let secret = scalar_from_label(&format!("secret {index}"));
            let nonce = scalar_from_label(&format!("nonce {index}"));
            let torsion = EIGHT_TORSION[1 + index % 7];
            let prime_key = ED25519_BASEPOINT_POINT * secret;
            let prime_commitment = ED25519_BASEPOINT_POINT * nonce;
            for (label, key_point, commitment_point) in [
                ("hand-made", prime_key, prime_commitment),
                ("mixed-order key", prime_key + torsion, prime_commitment),
                ("mixed-order R", prime_key, prime_commitment + torsion),
                (
                    "both mixed",
                    prime_key + torsion,
                    prime_commitment + torsion,
                ),
            ] {
                let (signer, signature) =
                    sign_with_scalars(secret, key_point, nonce, commitment_point, &message);
                cases.push((
                    format!("{label} {index}"),
                    signer,
                    message.clone(),
                    signature,
                ));
            }
        }

        let mut accepted = 0;
        for (label, signer, message, signature) in &cases {
            let expected = reference_verify_strict(*signer, message, signature);
            assert_eq!(
                verify_strict(*signer, message, signature),
                expected,
                "case {label}"
            );
            accepted += usize::from(expected.is_ok());
        }
        // The table holds both outcomes, so agreement is not agreement on refusing everything.
        assert!(
            accepted >= 48 + 48 && accepted < cases.len(),
            "{accepted} of {}",
            cases.len()
        );
    }

    fn sample_entry() -> Entry {
        let key = SigningKey::from_bytes(&[7; 32]);
        let payload = br#"{"action":"register_key"}"#.to_vec();
        Entry {
            kind: EntryKind::Command,
            position: 5,
            server_time: Timestamp(1_795_000_000_000),
            previous_hash: [9; 32],
            signer: public_key_of(&key),
            signature: sign(&key, EntryKind::Command, &payload),
            payload,
        }
    }

    #[test]
    fn an_entry_decodes_to_what_was_encoded() {
        let entry = sample_entry();
        let bytes = entry.encode();
        assert_eq!(bytes.len(), ENTRY_HEADER_BYTES + entry.payload.len());
        assert_eq!(Entry::decode(&bytes), Ok(entry));
    }

    #[test]
    fn a_signature_does_not_verify_in_the_other_domain() {
        let mut entry = sample_entry();
        assert_eq!(entry.verify_signature(), Ok(()));
        entry.kind = EntryKind::System;
        assert_eq!(entry.verify_signature(), Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_entries_are_refused_with_the_reason() {
        let bytes = sample_entry().encode();
        assert_eq!(
            Entry::decode(&bytes[..10]),
            Err(EntryError::TooShort { length_bytes: 10 })
        );
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 1;
        let refusal = Entry::decode(&wrong_version);
        assert_eq!(refusal, Err(EntryError::UnknownVersion(1)));
        let message = refusal.unwrap_err().to_string();
        assert!(message.contains("version 1 is not known"), "{message}");
        assert!(message.contains("version 2 only"), "{message}");
        let mut wrong_kind = bytes;
        wrong_kind[1] = 9;
        assert_eq!(Entry::decode(&wrong_kind), Err(EntryError::UnknownKind(9)));
    }

    #[test]
    fn small_order_keys_are_weak() {
        // The identity point (y = 1) has order one.
        let mut identity = [0; 32];
        identity[0] = 1;
        assert!(PublicKey(identity).is_weak());
        assert!(!public_key_of(&SigningKey::from_bytes(&[7; 32])).is_weak());
    }

    #[test]
    fn public_keys_are_lowercase_hex_only() {
        let key = public_key_of(&SigningKey::from_bytes(&[7; 32]));
        assert_eq!(PublicKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(PublicKey::from_hex(&key.to_hex().to_uppercase()), None);
        assert_eq!(PublicKey::from_hex("abcd"), None);
    }
}
