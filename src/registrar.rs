//! The registrar's resident tags: an opaque, stable name for a resident that the log can carry.
//!
//! A tag is HMAC-SHA-256 (RFC 2104) of the resident's identity under a secret the registrar
//! keeps. The same identity always gives the same tag, so the ledger can refuse a second active
//! key for one resident; without the secret nobody can tell whose tag it is, or test a guessed
//! identity against it. The secret never reaches the node: only the tag travels, inside
//! `attest_resident`.

use sha2::digest::core_api::BlockSizeUser;
use sha2::{Digest, Sha256};

/// Set before the identity, so a tag can never equal an HMAC the registrar makes for another
/// purpose with the same secret.
const TAG_DOMAIN: &[u8] = b"veche resident tag v1\n";

/// The resident tag of `identity` (as the registrar writes it down, normalised by them: a
/// document number without spaces, say) under `secret`: 64 lowercase hexadecimal characters.
pub fn resident_tag(secret: &[u8], identity: &str) -> String {
    let mut message = TAG_DOMAIN.to_vec();
    message.extend_from_slice(identity.as_bytes());
    hex::encode(hmac_sha256(secret, &message))
}

/// HMAC-SHA-256 as RFC 2104 defines it: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ message)).
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC pads its key to one input block of the hash (64 bytes for SHA-256), hashing a
    // longer key first.
    let block_bytes = Sha256::block_size();
    let mut block = if key.len() > block_bytes {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    block.resize(block_bytes, 0);
    let inner_pad: Vec<u8> = block.iter().map(|byte| byte ^ 0x36).collect();
    let outer_pad: Vec<u8> = block.iter().map(|byte| byte ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_the_rfc_4231_test_cases() {
        // Test case 2: a short key.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than a block is hashed first.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_tag_is_stable_for_an_identity_and_differs_between_identities_and_secrets() {
        let tag = resident_tag(b"registrar secret", "AB123456");
        assert_eq!(tag.len(), projections::limits::RESIDENT_TAG_HEX_CHARS);
        assert_eq!(tag, resident_tag(b"registrar secret", "AB123456"));
        assert_ne!(tag, resident_tag(b"registrar secret", "AB123457"));
        assert_ne!(tag, resident_tag(b"another secret", "AB123456"));
    }
}
