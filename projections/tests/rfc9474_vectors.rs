//! The RFC 9474 blind-signature steps against the RFC's own test vectors (Appendix A), read from
//! `../shared/testdata/rfc9474-vectors/`: the blinding with the given inverse, the blind
//! signature, the final signature and its verification, for all four variants.
// Integration tests read their vector files from disk; the purity rules are for the library.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use blind_rsa_signatures::{
    BlindSignature, Hash, MessageRandomizer, Options, PublicKey, Secret, SecretKey, Signature,
};
use rsa::{BigUint, RsaPrivateKey};
use serde_json::Value;

/// A vector field as bytes: hex, with or without a `0x` prefix.
fn bytes(vector: &Value, field: &str) -> Vec<u8> {
    let text = vector[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is absent"));
    hex::decode(text.trim_start_matches("0x")).unwrap()
}

fn number(vector: &Value, field: &str) -> BigUint {
    BigUint::from_bytes_be(&bytes(vector, field))
}

/// A hex number such as `0x30` or `0x01`.
fn small(vector: &Value, field: &str) -> usize {
    let text = vector[field].as_str().unwrap().trim_start_matches("0x");
    usize::from_str_radix(text, 16).unwrap()
}

fn vectors() -> Vec<Value> {
    let path = common::testdata("rfc9474-vectors").join("vectors.json");
    let vectors: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let vectors = vectors.as_array().unwrap().clone();
    assert_eq!(vectors.len(), 4, "the four variants of RFC 9474 Appendix A");
    vectors
}

fn secret_key(vector: &Value) -> SecretKey {
    let primes = vec![number(vector, "p"), number(vector, "q")];
    let key = RsaPrivateKey::from_components(
        number(vector, "n"),
        number(vector, "e"),
        number(vector, "d"),
        primes,
    )
    .unwrap();
    SecretKey(key)
}

/// The variant's options: SHA-384 with the vector's salt length (a zero salt is PSSZERO).
fn options(vector: &Value) -> Options {
    let salt_bytes = small(vector, "sLen");
    Options::new(Hash::Sha384, salt_bytes == 0, salt_bytes)
}

/// The message randomizer of a randomized variant: the vector's 32-byte `msg_prefix`.
fn randomizer(vector: &Value) -> Option<MessageRandomizer> {
    (small(vector, "is_randomized") == 1).then(|| {
        let prefix: [u8; 32] = bytes(vector, "msg_prefix").try_into().unwrap();
        MessageRandomizer(prefix)
    })
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn the_blind_signature_of_each_vector_is_the_one_the_rfc_gives() {
    for vector in vectors() {
        let name = vector["name"].as_str().unwrap();
        let signed = secret_key(&vector)
            .blind_sign(
                &mut rand::thread_rng(),
                bytes(&vector, "blinded_msg"),
                &options(&vector),
            )
            .unwrap();
        assert_eq!(signed.0, bytes(&vector, "blind_sig"), "{name}");
    }
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn unblinding_with_the_given_inverse_gives_the_final_signature_and_it_verifies() {
    for vector in vectors() {
        let name = vector["name"].as_str().unwrap();
        let public = secret_key(&vector).public_key().unwrap();
        let finalised = public
            .finalize(
                &BlindSignature(bytes(&vector, "blind_sig")),
                &Secret(bytes(&vector, "inv")),
                randomizer(&vector),
                bytes(&vector, "msg"),
                &options(&vector),
            )
            .unwrap();
        assert_eq!(finalised.0, bytes(&vector, "sig"), "{name}");
        let verified = public.verify(
            &Signature(bytes(&vector, "sig")),
            randomizer(&vector),
            bytes(&vector, "msg"),
            &options(&vector),
        );
        assert_eq!(verified, Ok(()), "{name}");
    }
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn the_blinded_message_is_the_encoded_message_blinded_by_the_inverse_of_the_given_inverse() {
    for vector in vectors() {
        let name = vector["name"].as_str().unwrap();
        let public = secret_key(&vector).public_key().unwrap();
        let (n, e) = (number(&vector, "n"), number(&vector, "e"));
        // The final signature's public operation gives the PSS-encoded message m; blinding sent
        // m · r^e with r the inverse of `inv`, so the blinded message times inv^e is m again.
        let encoded = number(&vector, "sig").modpow(&e, &n);
        if vector.get("encoded_msg").is_some() {
            assert_eq!(encoded, number(&vector, "encoded_msg"), "{name}");
        }
        let unblinded = number(&vector, "blinded_msg") * number(&vector, "inv").modpow(&e, &n) % &n;
        assert_eq!(unblinded, encoded, "{name}");
        let wrong = Signature(bytes(&vector, "blind_sig"));
        let refused = public.verify(
            &wrong,
            randomizer(&vector),
            bytes(&vector, "msg"),
            &options(&vector),
        );
        assert!(
            refused.is_err(),
            "{name}: the blind signature is not the final one"
        );
    }
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn an_issuer_key_of_another_size_than_2048_bits_is_refused() {
    use rsa::pkcs8::EncodePublicKey;
    let vector = &vectors()[0];
    let public: PublicKey = secret_key(vector).public_key().unwrap();
    let der = public.0.to_public_key_der().unwrap();
    let refused = projections::credential::IssuerKey::from_der(der.as_bytes());
    assert!(
        matches!(
            refused,
            Err(projections::credential::CredentialError::UnsupportedIssuerKey { bits: 4096, .. })
        ),
        "{refused:?}"
    );
}
