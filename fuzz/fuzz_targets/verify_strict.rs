//! Checks that veche's strict Ed25519 check (`protocol::verify_strict`) decides exactly as
//! ed25519-dalek's `VerifyingKey::verify_strict` on arbitrary keys, signatures and messages, and
//! on genuine signatures altered in the ways strict verification exists to catch.
#![no_main]

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;
use projections::protocol::{sign_with_scalars, verify_strict, PublicKey};
use sha2::{Digest, Sha512};

/// The group order L, little-endian: `S + L` is the classic non-canonical response.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

fn reference(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    match VerifyingKey::from_bytes(key) {
        Ok(key) => key
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok(),
        Err(_) => false,
    }
}

fn assert_same_decision(case: &str, key: &[u8; 32], message: &[u8], signature: &[u8; 64]) {
    let expected = reference(key, message, signature);
    let actual = verify_strict(PublicKey(*key), message, signature).is_ok();
    assert_eq!(
        actual,
        expected,
        "{case}: veche's verify_strict {} what ed25519-dalek {} (key {}, signature {})",
        if actual { "accepts" } else { "refuses" },
        if expected { "accepts" } else { "refuses" },
        hex(key),
        hex(signature)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `S + L` as 32 bytes when it fits (it does whenever the top bits of S leave room).
fn add_group_order(response: &[u8; 32]) -> [u8; 32] {
    let mut sum = [0u8; 32];
    let mut carry = 0u16;
    for index in 0..32 {
        let total = u16::from(response[index]) + u16::from(GROUP_ORDER[index]) + carry;
        sum[index] = total as u8;
        carry = total >> 8;
    }
    sum
}

/// The raw reading: 32 bytes of key, 64 of signature, the rest the message.
fn check_raw(data: &[u8]) {
    if data.len() < 96 {
        return;
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&data[..32]);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&data[32..96]);
    assert_same_decision("raw bytes", &key, &data[96..], &signature);
}

/// The structured reading: byte 0 picks the mutation, bytes 1..33 the signing key seed, byte 33
/// a bit or torsion index, the rest the message. The genuine signature must be accepted by both.
fn check_signed(data: &[u8]) {
    if data.len() < 34 {
        return;
    }
    let mutation = data[0];
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&data[1..33]);
    let selector = data[33];
    let message = &data[34..];
    let signing_key = SigningKey::from_bytes(&seed);
    let key = signing_key.verifying_key().to_bytes();
    let signature = signing_key.sign(message).to_bytes();
    assert!(
        reference(&key, message, &signature),
        "ed25519-dalek refuses its own signature"
    );
    assert_same_decision("genuine signature", &key, message, &signature);

    let torsion = EIGHT_TORSION[usize::from(selector % 8)];
    let mut key_altered = key;
    let mut signature_altered = signature;
    let case = match mutation % 8 {
        0 => {
            signature_altered[usize::from(selector) % 64] ^= 1 << (mutation / 8 % 8);
            "a bit flipped in the signature"
        }
        1 => {
            key_altered[usize::from(selector) % 32] ^= 1 << (mutation / 8 % 8);
            "a bit flipped in the key"
        }
        2 => {
            signature_altered[..32].copy_from_slice(&torsion.compress().0);
            "R replaced by a small-order point"
        }
        3 => {
            key_altered = torsion.compress().0;
            "the key replaced by a small-order point"
        }
        4 => {
            let mut response = [0u8; 32];
            response.copy_from_slice(&signature[32..]);
            signature_altered[32..].copy_from_slice(&add_group_order(&response));
            "S + L"
        }
        5 => {
            // A response with the top bits set: never a canonical scalar.
            signature_altered[63] |= 0xf0 | (mutation >> 4);
            "non-canonical S"
        }
        6 => {
            let secret = Scalar::from_bytes_mod_order(seed);
            let nonce = Scalar::from_hash(Sha512::new().chain_update(seed).chain_update(message));
            let torsion_of_key = EIGHT_TORSION[usize::from(mutation / 8 % 8)];
            // The key `A = [a]B + T_key` and the commitment `R = [r]B + T_commitment` carry
            // small-order components.
            let (key, signature) = sign_with_scalars(
                secret,
                ED25519_BASEPOINT_POINT * secret + torsion_of_key,
                nonce,
                ED25519_BASEPOINT_POINT * nonce + torsion,
                message,
            );
            (key_altered, signature_altered) = (key.0, signature);
            "torsion added to A and R, signed by hand"
        }
        _ => {
            let mut commitment = [0u8; 32];
            commitment.copy_from_slice(&signature[..32]);
            let Some(commitment) = CompressedEdwardsY(commitment).decompress() else {
                panic!("a genuine signature's R is a curve point");
            };
            signature_altered[..32].copy_from_slice(&(commitment + torsion).compress().0);
            "torsion added to R of the genuine signature"
        }
    };
    assert_same_decision(case, &key_altered, message, &signature_altered);
}

fuzz_target!(|data: &[u8]| {
    check_raw(data);
    check_signed(data);
});
