//! Anonymous-poll credentials: RSA blind signatures (RFC 9474, RSABSSA-SHA384-PSS-Randomized) by
//! a poll's issuers over a fresh per-poll Ed25519 ballot key, checked here as the plain RSASSA-PSS
//! signatures they are.
//!
//! Why this variant: RFC 9474 recommends the randomized variants, whose 32-byte message prefix,
//! chosen by the citizen, keeps the issuer from choosing any part of what it signs; PSS with a
//! 48-byte salt is what every RSA-PSS library verifies by default for SHA-384, so a journalist can
//! check a credential with Python's `cryptography` or Go's `crypto/rsa` alone. The issuer's key
//! is 2048 bits, the floor RFC 9474 sets, because every ballot carries one signature of the
//! modulus's length per issuer and every replay verifies each one.
//!
//! Only verification lives here: the fold is pure. Blinding (random), blind signing (the issuer's
//! secret key) and finalising belong to the client and the issuers.

use blind_rsa_signatures::{Hash as PaddingHash, MessageRandomizer, Options, Signature};
use serde::{Deserialize, Serialize};

use crate::limits;
use crate::protocol::PublicKey;

/// The domain of a credential's message, so no other veche signature can pass for one.
pub const CREDENTIAL_DOMAIN: &[u8] = b"veche credential v1\n";
/// The length of RFC 9474's message randomizer, the prefix the citizen picks.
pub const RANDOMIZER_BYTES: usize = 32;
/// The public exponent every issuer key must use: the one RSA-PSS libraries expect.
const PUBLIC_EXPONENT: u32 = 65_537;

/// The RFC 9474 options of the chosen variant: SHA-384, randomized (probabilistic) PSS with a
/// 48-byte salt.
pub fn padding_options() -> Options {
    Options::new(PaddingHash::Sha384, false, 48)
}

/// What an issuer signs blindly: the domain, the poll's id and the per-poll ballot key. The
/// citizen's own key is not in it, so the credential names nothing of them.
pub fn credential_message(poll: u64, ballot_key: &PublicKey) -> Vec<u8> {
    let mut message = Vec::with_capacity(CREDENTIAL_DOMAIN.len() + 8 + 32);
    message.extend_from_slice(CREDENTIAL_DOMAIN);
    message.extend_from_slice(&poll.to_be_bytes());
    message.extend_from_slice(&ballot_key.0);
    message
}

/// Why an issuer key or a credential is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the issuer key is not a DER SubjectPublicKeyInfo of an RSA key")]
    MalformedIssuerKey,
    #[error(
        "the issuer key has a {bits}-bit modulus and exponent {exponent}; an issuer key has a \
         {}-bit modulus and exponent 65537",
        limits::ISSUER_KEY_BITS
    )]
    UnsupportedIssuerKey { bits: usize, exponent: String },
    #[error("the credential's signature is {length_bytes} bytes, not the issuer modulus's {expected_bytes}")]
    SignatureLength {
        length_bytes: usize,
        expected_bytes: usize,
    },
    #[error("the credential does not verify under the issuer key")]
    DoesNotVerify,
    #[error(
        "the blinded message is {length_bytes} bytes, not the issuer modulus's {expected_bytes}"
    )]
    BlindedMessageLength {
        length_bytes: usize,
        expected_bytes: usize,
    },
    #[error("the blinded message is not below the issuer key's modulus")]
    BlindedMessageNotBelowModulus,
}

/// An issuer's RSA public key, kept as the DER SubjectPublicKeyInfo the poll definition names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerKey {
    der: Vec<u8>,
    key: blind_rsa_signatures::PublicKey,
}

impl IssuerKey {
    /// Parses and checks an issuer key: RSA, of the one supported size, exponent 65537.
    pub fn from_der(der: &[u8]) -> Result<IssuerKey, CredentialError> {
        use rsa::PublicKeyParts;
        let key = blind_rsa_signatures::PublicKey::from_der(der)
            .map_err(|_| CredentialError::MalformedIssuerKey)?;
        let bits = key.0.n().bits();
        let exponent = key.0.e();
        if bits != limits::ISSUER_KEY_BITS || *exponent != rsa::BigUint::from(PUBLIC_EXPONENT) {
            let exponent = exponent.to_string();
            return Err(CredentialError::UnsupportedIssuerKey { bits, exponent });
        }
        Ok(IssuerKey {
            der: der.to_vec(),
            key,
        })
    }

    /// The DER SubjectPublicKeyInfo, as the poll definition names it (in hex).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The key as the blind-signature library takes it, for clients and issuers.
    pub fn key(&self) -> &blind_rsa_signatures::PublicKey {
        &self.key
    }

    /// The modulus's length: every signature under this key has exactly this many bytes.
    pub fn modulus_bytes(&self) -> usize {
        use rsa::PublicKeyParts;
        self.key.0.size()
    }
}

impl Serialize for IssuerKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(&self.der))
    }
}

impl<'de> Deserialize<'de> for IssuerKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<IssuerKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        let der = hex::decode(&text).map_err(serde::de::Error::custom)?;
        IssuerKey::from_der(&der).map_err(serde::de::Error::custom)
    }
}

/// A blinded credential message as a citizen sends it to one issuer: lowercase hex on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlindedMessage(#[serde(with = "hex::serde")] pub Vec<u8>);

impl BlindedMessage {
    /// Checks that `issuer` can sign this message: exactly the modulus's length, and below the
    /// modulus as a big-endian number (RSA signs residues; anything else has no signature).
    pub fn check(&self, issuer: &IssuerKey) -> Result<(), CredentialError> {
        use rsa::PublicKeyParts;
        let expected_bytes = issuer.modulus_bytes();
        if self.0.len() != expected_bytes {
            return Err(CredentialError::BlindedMessageLength {
                length_bytes: self.0.len(),
                expected_bytes,
            });
        }
        // Equal lengths, big-endian: byte order is numeric order.
        if self.0 >= issuer.key.0.n().to_bytes_be() {
            return Err(CredentialError::BlindedMessageNotBelowModulus);
        }
        Ok(())
    }
}

/// One issuer's credential over a ballot key: the citizen's randomizer and the unblinded
/// signature, both lowercase hex on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    #[serde(with = "hex::serde")]
    pub randomizer: [u8; RANDOMIZER_BYTES],
    #[serde(with = "hex::serde")]
    pub signature: Vec<u8>,
    /// A check this process already made, kept beside the credential (never written, never
    /// read: a credential parsed from bytes has none).
    #[serde(skip)]
    checked: CheckedUnder,
}

/// What a credential was verified under, by `Credential::verify_and_remember`: the issuer key,
/// the poll and the ballot key. A memo, not part of the credential's value: two credentials
/// with the same bytes are equal whatever either remembers.
#[derive(Clone, Debug, Default)]
struct CheckedUnder(Option<Box<(IssuerKey, u64, PublicKey)>>);

impl PartialEq for CheckedUnder {
    fn eq(&self, _: &CheckedUnder) -> bool {
        true
    }
}

impl Eq for CheckedUnder {}

impl Credential {
    /// A credential of these bytes, unchecked.
    pub fn new(randomizer: [u8; RANDOMIZER_BYTES], signature: Vec<u8>) -> Credential {
        Credential {
            randomizer,
            signature,
            checked: CheckedUnder::default(),
        }
    }

    /// `verify`, remembering a success beside the credential: the server checks credentials on
    /// its signature threads, so that its single writer, deciding the ballot, need not check
    /// them again (`verified_before`). Replays parse the bytes and check in full.
    pub fn verify_and_remember(
        &mut self,
        issuer: &IssuerKey,
        poll: u64,
        ballot_key: &PublicKey,
    ) -> Result<(), CredentialError> {
        self.verify(issuer, poll, ballot_key)?;
        self.checked = CheckedUnder(Some(Box::new((issuer.clone(), poll, *ballot_key))));
        Ok(())
    }

    /// Whether `verify_and_remember` found this credential good for exactly this issuer key,
    /// poll and ballot key.
    pub fn verified_before(&self, issuer: &IssuerKey, poll: u64, ballot_key: &PublicKey) -> bool {
        self.checked
            .0
            .as_deref()
            .is_some_and(|(key, checked_poll, checked_ballot_key)| {
                key == issuer && *checked_poll == poll && checked_ballot_key == ballot_key
            })
    }

    /// Checks the credential under `issuer` for `ballot_key` in `poll`: an RSASSA-PSS (SHA-384,
    /// MGF1-SHA-384, 48-byte salt) signature over the randomizer followed by the message.
    pub fn verify(
        &self,
        issuer: &IssuerKey,
        poll: u64,
        ballot_key: &PublicKey,
    ) -> Result<(), CredentialError> {
        let expected_bytes = issuer.modulus_bytes();
        if self.signature.len() != expected_bytes {
            return Err(CredentialError::SignatureLength {
                length_bytes: self.signature.len(),
                expected_bytes,
            });
        }
        let message = credential_message(poll, ballot_key);
        let signature = Signature(self.signature.clone());
        let randomizer = Some(MessageRandomizer(self.randomizer));
        issuer
            .key
            .verify(&signature, randomizer, message, &padding_options())
            .map_err(|_| CredentialError::DoesNotVerify)
    }
}

/// Issuers and credentials for the tests of this crate: a blind signer holds a secret key.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use rsa::pkcs8::EncodePublicKey;

    /// A fresh 2048-bit issuer: its secret key and its public key as a poll names it.
    pub fn issuer() -> (blind_rsa_signatures::SecretKey, IssuerKey) {
        let pair = blind_rsa_signatures::KeyPair::generate(&mut rand::thread_rng(), 2_048).unwrap();
        let der = pair.pk.0.to_public_key_der().unwrap();
        (pair.sk, IssuerKey::from_der(der.as_bytes()).unwrap())
    }

    /// What a citizen does: blind the message, have `secret` sign it blindly, unblind.
    pub fn credential(
        secret: &blind_rsa_signatures::SecretKey,
        issuer: &IssuerKey,
        poll: u64,
        ballot_key: &PublicKey,
    ) -> Credential {
        let rng = &mut rand::thread_rng();
        let message = credential_message(poll, ballot_key);
        let blinded = issuer
            .key()
            .blind(rng, &message, true, &padding_options())
            .unwrap();
        let signed = secret
            .blind_sign(rng, &blinded.blind_msg, &padding_options())
            .unwrap();
        let randomizer = blinded.msg_randomizer.unwrap();
        let options = padding_options();
        let signature = issuer
            .key()
            .finalize(
                &signed,
                &blinded.secret,
                Some(randomizer),
                &message,
                &options,
            )
            .unwrap();
        Credential::new(randomizer.0, signature.0)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{credential, issuer};
    use super::*;

    #[test]
    fn a_credential_verifies_only_for_its_issuer_poll_and_ballot_key() {
        let (secret, key) = issuer();
        let (_, other_issuer) = issuer();
        let ballot_key = PublicKey([7; 32]);
        let issued = credential(&secret, &key, 12, &ballot_key);
        assert_eq!(issued.signature.len(), 256);
        assert_eq!(issued.verify(&key, 12, &ballot_key), Ok(()));
        let refused = Err(CredentialError::DoesNotVerify);
        assert_eq!(issued.verify(&key, 13, &ballot_key), refused);
        assert_eq!(issued.verify(&key, 12, &PublicKey([8; 32])), refused);
        assert_eq!(issued.verify(&other_issuer, 12, &ballot_key), refused);
        let mut altered = issued.clone();
        altered.randomizer[0] ^= 1;
        assert_eq!(altered.verify(&key, 12, &ballot_key), refused);
        let mut short = issued;
        short.signature.pop();
        let length = Err(CredentialError::SignatureLength {
            length_bytes: 255,
            expected_bytes: 256,
        });
        assert_eq!(short.verify(&key, 12, &ballot_key), length);
    }

    #[test]
    fn a_remembered_check_holds_only_for_its_key_poll_and_ballot_key_and_never_travels() {
        let (secret, key) = issuer();
        let (_, other_issuer) = issuer();
        let ballot_key = PublicKey([7; 32]);
        let mut issued = credential(&secret, &key, 12, &ballot_key);
        assert!(
            !issued.verified_before(&key, 12, &ballot_key),
            "nothing checked yet"
        );
        let mut forged = issued.clone();
        forged.signature[0] ^= 1;
        assert!(forged.verify_and_remember(&key, 12, &ballot_key).is_err());
        assert!(
            !forged.verified_before(&key, 12, &ballot_key),
            "a failure is not remembered"
        );
        assert_eq!(issued.verify_and_remember(&key, 12, &ballot_key), Ok(()));
        assert!(issued.verified_before(&key, 12, &ballot_key));
        assert!(!issued.verified_before(&other_issuer, 12, &ballot_key));
        assert!(!issued.verified_before(&key, 13, &ballot_key));
        assert!(!issued.verified_before(&key, 12, &PublicKey([8; 32])));
        let wire = serde_json::to_string(&issued).unwrap();
        let parsed: Credential = serde_json::from_str(&wire).unwrap();
        assert_eq!(
            parsed, issued,
            "the memo is not part of the credential's value"
        );
        assert!(
            !parsed.verified_before(&key, 12, &ballot_key),
            "a credential read from bytes remembers no check"
        );
    }

    #[test]
    fn an_issuer_key_travels_as_hex_der_and_a_malformed_one_is_refused() {
        let (_, key) = issuer();
        let wire = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<IssuerKey>(&wire).unwrap(), key);
        assert_eq!(
            IssuerKey::from_der(b"not a key"),
            Err(CredentialError::MalformedIssuerKey)
        );
        assert!(serde_json::from_str::<IssuerKey>("\"zz\"").is_err());
    }

    #[test]
    fn a_credential_message_is_the_domain_the_poll_and_the_ballot_key() {
        let message = credential_message(0x0102, &PublicKey([9; 32]));
        assert_eq!(message.len(), CREDENTIAL_DOMAIN.len() + 8 + 32);
        assert!(message.starts_with(b"veche credential v1\n"));
        assert_eq!(&message[20..28], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(&message[28..], &[9; 32]);
    }
}
