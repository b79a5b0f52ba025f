//! Signed checkpoints: C2SP `tlog-checkpoint` bodies (https://c2sp.org/tlog-checkpoint) in C2SP
//! `signed-note`s (https://c2sp.org/signed-note) with Ed25519 keys, and C2SP `tlog-proof`
//! documents (https://c2sp.org/tlog-proof) that bundle an inclusion proof with the checkpoint it
//! leads to, for offline verification.
//!
//! Everything here is strict on input: a note, checkpoint or proof that another implementation
//! would read differently is refused rather than guessed at, because a verifier that accepts
//! more than the signer meant is how signed data gets reinterpreted.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::merkle::{verify_inclusion, ProofError};
use crate::protocol::{verify_strict, Hash, PublicKey};

/// Signature type byte of plain Ed25519 note signatures.
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;
pub use crate::limits::NOTE_SIGNATURES_MAX;
/// First line of a C2SP tlog-proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// An inclusion proof in a tree whose size fits a `u64` has at most 64 hashes.
const INCLUSION_PROOF_HASHES_MAX: usize = 64;
/// Start of every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum NoteError {
    #[error("a key name is non-empty and holds no spaces and no `+`")]
    InvalidKeyName,
    #[error("a note text is non-empty and ends with a newline")]
    InvalidText,
    #[error("a note holds no control characters other than newline")]
    ControlCharacter,
    #[error("the note has no signature lines after a blank line")]
    MissingSignatures,
    #[error("signature line {line} is not `— <name> <base64 of key id and signature>`")]
    MalformedSignatureLine { line: usize },
    #[error("the note carries more than {NOTE_SIGNATURES_MAX} signatures")]
    TooManySignatures,
    #[error("a verifier key is `<name>+<8 hex digits key id>+<base64 of type and key>`")]
    MalformedVerifierKey,
    #[error("signature type {0:#04x} is not Ed25519 (0x01)")]
    UnsupportedSignatureType(u8),
    #[error("the verifier key's id does not match its name and public key")]
    VerifierKeyIdMismatch,
    #[error("the public key is not a usable Ed25519 key (invalid or of small order)")]
    WeakPublicKey,
    #[error("the signature by {name} does not verify: the note was altered or forged")]
    SignatureInvalid { name: String },
    #[error("the note carries no signature by the key {name}+{key_id}")]
    NoKnownSignature { name: String, key_id: String },
}

/// SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[..4]: the id that, with the name, tells a verifier
/// which of a note's signatures is the one to check.
pub fn key_id(name: &str, public: &PublicKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519_SIGNATURE_TYPE]);
    hasher.update(public.0);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The verifier key string `<name>+<hex key id>+<base64(0x01 ‖ public key)>` that verifiers are
/// configured with.
pub fn verifier_key(name: &str, public: &PublicKey) -> String {
    let mut typed_key = Vec::with_capacity(33);
    typed_key.push(ED25519_SIGNATURE_TYPE);
    typed_key.extend_from_slice(&public.0);
    format!(
        "{name}+{}+{}",
        hex::encode(key_id(name, public)),
        BASE64.encode(typed_key)
    )
}

/// Key names are non-empty with no Unicode space and no `+`, which separates the parts of a
/// verifier key; a space would split a signature line.
pub fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name.contains(|character: char| character.is_whitespace() || character == '+')
    {
        return Err(NoteError::InvalidKeyName);
    }
    check_no_control_characters(name)
}

/// A note text is non-empty, ends with a newline and holds no other control characters.
pub fn check_note_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::InvalidText);
    }
    check_no_control_characters(text)
}

fn check_no_control_characters(text: &str) -> Result<(), NoteError> {
    if text
        .chars()
        .any(|character| character < ' ' && character != '\n')
    {
        return Err(NoteError::ControlCharacter);
    }
    Ok(())
}

/// A trusted Ed25519 note key: a name, its key id and the public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; 4],
    public: PublicKey,
}

impl NoteVerifier {
    pub fn new(name: &str, public: PublicKey) -> Result<NoteVerifier, NoteError> {
        check_key_name(name)?;
        if public.is_weak() {
            return Err(NoteError::WeakPublicKey);
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: key_id(name, &public),
            public,
        })
    }

    /// Reads a verifier key string as [`verifier_key`] writes it, checking that its key id is
    /// the one its name and key give.
    pub fn parse(text: &str) -> Result<NoteVerifier, NoteError> {
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_base64)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::MalformedVerifierKey);
        };
        check_key_name(name)?;
        let mut claimed_id = [0; 4];
        if id_hex.len() != 8 || hex::decode_to_slice(id_hex, &mut claimed_id).is_err() {
            return Err(NoteError::MalformedVerifierKey);
        }
        let typed_key = BASE64
            .decode(key_base64)
            .map_err(|_| NoteError::MalformedVerifierKey)?;
        let (signature_type, key) = typed_key
            .split_first()
            .ok_or(NoteError::MalformedVerifierKey)?;
        if *signature_type != ED25519_SIGNATURE_TYPE {
            return Err(NoteError::UnsupportedSignatureType(*signature_type));
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::MalformedVerifierKey)?;
        let verifier = NoteVerifier::new(name, PublicKey(key))?;
        if verifier.key_id != claimed_id {
            return Err(NoteError::VerifierKeyIdMismatch);
        }
        Ok(verifier)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }
}

impl std::fmt::Display for NoteVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&verifier_key(&self.name, &self.public))
    }
}

impl std::str::FromStr for NoteVerifier {
    type Err = NoteError;

    fn from_str(text: &str) -> Result<NoteVerifier, NoteError> {
        NoteVerifier::parse(text)
    }
}

/// Signs `body` as a signed note: the body, a blank line, and `— <name> <base64(key id ‖
/// signature)>`.
///
/// The body must pass [`check_note_text`] and the name [`check_key_name`] (check them once where
/// they are configured); otherwise the note produced will not open.
pub fn sign_note(body: &str, name: &str, key: &SigningKey) -> String {
    debug_assert_eq!(check_note_text(body), Ok(()));
    debug_assert_eq!(check_key_name(name), Ok(()));
    let public = PublicKey(key.verifying_key().to_bytes());
    let signature = key.sign(body.as_bytes()).to_bytes();
    let mut signed = Vec::with_capacity(4 + signature.len());
    signed.extend_from_slice(&key_id(name, &public));
    signed.extend_from_slice(&signature);
    format!(
        "{body}\n{SIGNATURE_PREFIX}{name} {}\n",
        BASE64.encode(signed)
    )
}

/// One signature line: who signed and what.
struct SignatureLine<'a> {
    name: &'a str,
    key_id: [u8; 4],
    signature: Vec<u8>,
}

/// Splits a note into its text and its signature lines, refusing anything malformed.
fn split_note(note: &str) -> Result<(&str, Vec<SignatureLine<'_>>), NoteError> {
    check_no_control_characters(note)?;
    if !note.ends_with('\n') {
        return Err(NoteError::MissingSignatures);
    }
    // The text ends at the last blank line; it keeps its final newline.
    let split = note.rfind("\n\n").ok_or(NoteError::MissingSignatures)?;
    let (text, block) = (&note[..=split], &note[split + 2..]);
    if block.is_empty() {
        return Err(NoteError::MissingSignatures);
    }
    let mut lines = Vec::new();
    for (number, line) in (1..).zip(block.split_terminator('\n')) {
        if number > NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures);
        }
        let malformed = NoteError::MalformedSignatureLine { line: number };
        let (name, encoded) = line
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(|rest| rest.split_once(' '))
            .ok_or(malformed.clone())?;
        if check_key_name(name).is_err() {
            return Err(malformed);
        }
        let decoded = BASE64.decode(encoded).map_err(|_| malformed.clone())?;
        // A key id and at least one byte of signature.
        if decoded.len() < 5 {
            return Err(malformed);
        }
        let (id, signature) = decoded.split_at(4);
        lines.push(SignatureLine {
            name,
            key_id: [id[0], id[1], id[2], id[3]],
            signature: signature.to_vec(),
        });
    }
    Ok((text, lines))
}

/// Verifies a signed note against one trusted key and returns its text.
///
/// Signatures by other keys (another name, or the same name with another key id, such as a
/// witness cosignature) are ignored, as the specification requires. A signature that claims to
/// be by the trusted key and does not verify rejects the whole note: it means tampering.
pub fn open_note(note: &str, verifier: &NoteVerifier) -> Result<String, NoteError> {
    let (text, lines) = split_note(note)?;
    let mut verified = false;
    for line in lines {
        if line.name != verifier.name || line.key_id != verifier.key_id {
            continue;
        }
        let invalid = || NoteError::SignatureInvalid {
            name: verifier.name.clone(),
        };
        let signature: [u8; 64] = line
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| invalid())?;
        verify_strict(verifier.public, text.as_bytes(), &signature).map_err(|_| invalid())?;
        verified = true;
    }
    if !verified {
        return Err(NoteError::NoKnownSignature {
            name: verifier.name.clone(),
            key_id: hex::encode(verifier.key_id),
        });
    }
    Ok(text.to_owned())
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum CheckpointError {
    #[error("a checkpoint body ends with a newline")]
    MissingFinalNewline,
    #[error("a checkpoint body has an origin, a size and a root hash line")]
    TooFewLines,
    #[error("the checkpoint origin is empty")]
    EmptyOrigin,
    #[error("the checkpoint origin is one line without control characters")]
    InvalidOrigin,
    #[error("the checkpoint size is not a decimal number without leading zeros that fits 64 bits")]
    InvalidSize,
    #[error("the checkpoint root is not the base64 of 32 bytes")]
    InvalidRoot,
    #[error("extension line {line} of the checkpoint is empty")]
    EmptyExtensionLine { line: usize },
    #[error("the checkpoint is for log {actual:?}, not {expected:?}")]
    OriginMismatch { expected: String, actual: String },
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// The head of the log at one size: what a signed checkpoint commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text `<origin>\n<size>\n<base64 root>\n`; veche writes no extension lines.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Reads a checkpoint body. Extension lines, which other logs may add, are accepted and
    /// dropped; use [`Checkpoint::parse_body_with_extensions`] to see them.
    pub fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::parse_body_with_extensions(body).map(|(checkpoint, _)| checkpoint)
    }

    /// Reads a checkpoint body and its extension lines (usually none).
    pub fn parse_body_with_extensions(
        body: &str,
    ) -> Result<(Checkpoint, Vec<String>), CheckpointError> {
        let lines = body
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        check_no_control_characters(lines)?;
        let mut lines = lines.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::TooFewLines);
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let canonical_size = !size.is_empty()
            && size.bytes().all(|byte| byte.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size: u64 = canonical_size
            .then(|| size.parse().ok())
            .flatten()
            .ok_or(CheckpointError::InvalidSize)?;
        let root: Hash = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(CheckpointError::InvalidRoot)?;
        let mut extensions = Vec::new();
        for (number, line) in (1..).zip(lines) {
            if line.is_empty() {
                return Err(CheckpointError::EmptyExtensionLine { line: number });
            }
            extensions.push(line.to_owned());
        }
        let checkpoint = Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        };
        Ok((checkpoint, extensions))
    }

    /// Signs the checkpoint as a note under `name` (normally the origin).
    pub fn sign(&self, name: &str, key: &SigningKey) -> Result<String, CheckpointError> {
        if self.origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        if self.origin.contains(|character: char| character < ' ') {
            return Err(CheckpointError::InvalidOrigin);
        }
        check_key_name(name)?;
        Ok(sign_note(&self.body(), name, key))
    }

    /// Verifies a signed checkpoint with the log's key and checks it is for log `origin`.
    pub fn open(
        note: &str,
        verifier: &NoteVerifier,
        origin: &str,
    ) -> Result<Checkpoint, CheckpointError> {
        let body = open_note(note, verifier)?;
        let checkpoint = Checkpoint::parse_body(&body)?;
        if checkpoint.origin != origin {
            return Err(CheckpointError::OriginMismatch {
                expected: origin.to_owned(),
                actual: checkpoint.origin,
            });
        }
        Ok(checkpoint)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum TlogProofError {
    #[error("a tlog-proof starts with the line `{TLOG_PROOF_HEADER}`")]
    MissingHeader,
    #[error("the extra data is not base64")]
    InvalidExtra,
    #[error("the proof has no `index <decimal>` line, without leading zeros")]
    InvalidIndex,
    #[error("proof line {line} is not the base64 of a 32-byte hash")]
    InvalidHash { line: usize },
    #[error("an inclusion proof has at most {INCLUSION_PROOF_HASHES_MAX} hashes")]
    TooManyHashes,
    #[error("the proof has no blank line followed by a signed checkpoint")]
    MissingCheckpoint,
    #[error("the proof's checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("the inclusion proof does not verify: {0}")]
    Inclusion(#[from] ProofError),
}

/// A C2SP tlog-proof: where an entry sits, the inclusion proof to a checkpoint's root, and that
/// signed checkpoint, verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Unauthenticated application data; never trust it without checking it some other way.
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub inclusion_proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

/// Writes a tlog-proof without extra data.
pub fn encode_tlog_proof(index: u64, inclusion_proof: &[Hash], checkpoint: &str) -> String {
    TlogProof {
        extra: None,
        index,
        inclusion_proof: inclusion_proof.to_vec(),
        checkpoint: checkpoint.to_owned(),
    }
    .encode()
}

/// Splits off one newline-terminated line.
fn take_line(text: &str) -> Option<(&str, &str)> {
    text.split_once('\n')
}

impl TlogProof {
    pub fn encode(&self) -> String {
        let mut text = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            text.push_str(&format!("extra {}\n", BASE64.encode(extra)));
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.inclusion_proof {
            text.push_str(&BASE64.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint);
        text
    }

    /// Reads a tlog-proof. The checkpoint is kept as text; [`TlogProof::verify`] checks it.
    pub fn parse(text: &str) -> Result<TlogProof, TlogProofError> {
        let (header, mut rest) = take_line(text).ok_or(TlogProofError::MissingHeader)?;
        if header != TLOG_PROOF_HEADER {
            return Err(TlogProofError::MissingHeader);
        }
        let (mut line, mut after) = take_line(rest).ok_or(TlogProofError::InvalidIndex)?;
        let mut extra = None;
        if let Some(encoded) = line.strip_prefix("extra ") {
            extra = Some(
                BASE64
                    .decode(encoded)
                    .map_err(|_| TlogProofError::InvalidExtra)?,
            );
            (line, after) = take_line(after).ok_or(TlogProofError::InvalidIndex)?;
        }
        let index = line
            .strip_prefix("index ")
            .filter(|digits| {
                !digits.is_empty()
                    && digits.bytes().all(|byte| byte.is_ascii_digit())
                    && (*digits == "0" || !digits.starts_with('0'))
            })
            .and_then(|digits| digits.parse::<u64>().ok())
            .ok_or(TlogProofError::InvalidIndex)?;
        rest = after;
        let mut inclusion_proof = Vec::new();
        // Line numbers count from the header as line 1.
        let mut number = if extra.is_some() { 4 } else { 3 };
        loop {
            let (line, after) = take_line(rest).ok_or(TlogProofError::MissingCheckpoint)?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if inclusion_proof.len() == INCLUSION_PROOF_HASHES_MAX {
                return Err(TlogProofError::TooManyHashes);
            }
            let hash: Hash = BASE64
                .decode(line)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or(TlogProofError::InvalidHash { line: number })?;
            inclusion_proof.push(hash);
            number += 1;
        }
        if rest.is_empty() {
            return Err(TlogProofError::MissingCheckpoint);
        }
        Ok(TlogProof {
            extra,
            index,
            inclusion_proof,
            checkpoint: rest.to_owned(),
        })
    }

    /// Checks that the entry with leaf hash `leaf` is at `index` in the tree that the log
    /// `origin`, trusted through `verifier`, signed; returns that checkpoint.
    pub fn verify(
        &self,
        leaf: &Hash,
        verifier: &NoteVerifier,
        origin: &str,
    ) -> Result<Checkpoint, TlogProofError> {
        let checkpoint = Checkpoint::open(&self.checkpoint, verifier, origin)?;
        verify_inclusion(
            leaf,
            self.index,
            checkpoint.size,
            &self.inclusion_proof,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{inclusion_proof, leaf_hash, root, LeafHashes};

    const ORIGIN: &str = "veche.example/log";

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn public(key: &SigningKey) -> PublicKey {
        PublicKey(key.verifying_key().to_bytes())
    }

    fn verifier(name: &str, key: &SigningKey) -> NoteVerifier {
        NoteVerifier::new(name, public(key)).unwrap()
    }

    /// The verifier that trusts `key(1)` under `ORIGIN`, and `text` signed by that key.
    fn trusted_and_signed(text: &str) -> (NoteVerifier, String) {
        let signer = key(1);
        (verifier(ORIGIN, &signer), sign_note(text, ORIGIN, &signer))
    }

    /// A note's last signature line, from its em dash on.
    fn signature_line(note: &str) -> &str {
        &note[note.rfind('\u{2014}').unwrap()..]
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.to_owned(),
            size: 15,
            root: [0xac; 32],
        }
    }

    #[test]
    fn a_checkpoint_body_is_three_lines_and_parses_back() {
        let body = checkpoint().body();
        assert_eq!(
            body,
            format!("{ORIGIN}\n15\n{}\n", BASE64.encode([0xac; 32]))
        );
        assert_eq!(Checkpoint::parse_body(&body), Ok(checkpoint()));
        let with_extensions = format!("{body}first extension\nsecond\n");
        assert_eq!(
            Checkpoint::parse_body_with_extensions(&with_extensions),
            Ok((
                checkpoint(),
                vec!["first extension".to_owned(), "second".to_owned()]
            ))
        );
        assert_eq!(Checkpoint::parse_body(&with_extensions), Ok(checkpoint()));
    }

    #[test]
    fn malformed_checkpoint_bodies_are_refused_with_the_reason() {
        let root = BASE64.encode([1; 32]);
        let cases = [
            (
                format!("{ORIGIN}\n15\n{root}"),
                CheckpointError::MissingFinalNewline,
            ),
            (format!("{ORIGIN}\n15\n"), CheckpointError::TooFewLines),
            (format!("\n15\n{root}\n"), CheckpointError::EmptyOrigin),
            (
                format!("{ORIGIN}\n015\n{root}\n"),
                CheckpointError::InvalidSize,
            ),
            (
                format!("{ORIGIN}\n+15\n{root}\n"),
                CheckpointError::InvalidSize,
            ),
            (
                format!("{ORIGIN}\n\n{root}\n"),
                CheckpointError::InvalidSize,
            ),
            (
                format!("{ORIGIN}\n18446744073709551616\n{root}\n"),
                CheckpointError::InvalidSize,
            ),
            (
                format!("{ORIGIN}\n15\n{}\n", BASE64.encode([1; 31])),
                CheckpointError::InvalidRoot,
            ),
            (
                format!("{ORIGIN}\n15\n{}\n", root.trim_end_matches('=')),
                CheckpointError::InvalidRoot,
            ),
            (
                format!("{ORIGIN}\n15\n{root}\n\nextension\n"),
                CheckpointError::EmptyExtensionLine { line: 1 },
            ),
            (
                format!("{ORIGIN}\n15\n{root}\n\n"),
                CheckpointError::EmptyExtensionLine { line: 1 },
            ),
            (
                format!("{ORIGIN}\r\n15\n{root}\n"),
                CheckpointError::Note(NoteError::ControlCharacter),
            ),
        ];
        for (body, error) in cases {
            assert_eq!(Checkpoint::parse_body(&body), Err(error), "{body:?}");
        }
        assert_eq!(
            Checkpoint::parse_body(&format!("{ORIGIN}\n0\n{root}\n")).map(|parsed| parsed.size),
            Ok(0)
        );
        assert_eq!(
            Checkpoint::parse_body(&format!("{ORIGIN}\n18446744073709551615\n{root}\n"))
                .map(|parsed| parsed.size),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn a_signed_note_opens_with_its_key_and_no_other() {
        let signer = key(1);
        let note = sign_note("hello\n", ORIGIN, &signer);
        assert!(note.starts_with("hello\n\n\u{2014} veche.example/log "));
        assert!(note.ends_with('\n'));
        assert_eq!(
            open_note(&note, &verifier(ORIGIN, &signer)),
            Ok("hello\n".to_owned())
        );
        let stranger = verifier(ORIGIN, &key(2));
        assert_eq!(
            open_note(&note, &stranger),
            Err(NoteError::NoKnownSignature {
                name: ORIGIN.to_owned(),
                key_id: hex::encode(stranger.key_id())
            })
        );
        assert!(matches!(
            open_note(&note, &verifier("other.example/log", &signer)),
            Err(NoteError::NoKnownSignature { .. })
        ));
    }

    #[test]
    fn an_altered_text_or_signature_is_refused() {
        let (trusted, note) = trusted_and_signed("size 15\n");
        let altered = note.replacen("15", "16", 1);
        assert_eq!(
            open_note(&altered, &trusted),
            Err(NoteError::SignatureInvalid {
                name: ORIGIN.to_owned()
            })
        );
        // Same key id, signature bytes cut short.
        let (text, line) = note.split_at(note.rfind('\u{2014}').unwrap());
        let encoded = line.trim_end().rsplit(' ').next().unwrap();
        let mut bytes = BASE64.decode(encoded).unwrap();
        bytes.truncate(40);
        let truncated = format!("{text}\u{2014} {ORIGIN} {}\n", BASE64.encode(&bytes));
        assert!(matches!(
            open_note(&truncated, &trusted),
            Err(NoteError::SignatureInvalid { .. })
        ));
    }

    #[test]
    fn signatures_by_unknown_keys_are_ignored_but_must_be_well_formed() {
        let (trusted, note) = trusted_and_signed("text\n");
        let witness = sign_note("text\n", "witness.example", &key(3));
        let witness_line = signature_line(&witness);
        let both = format!("{note}{witness_line}");
        assert_eq!(open_note(&both, &trusted), Ok("text\n".to_owned()));
        // A signature from the trusted name under another key id is someone else's.
        let impostor = sign_note("text\n", ORIGIN, &key(4));
        let impostor_line = signature_line(&impostor);
        assert_eq!(
            open_note(&format!("{note}{impostor_line}"), &trusted),
            Ok("text\n".to_owned())
        );
        assert!(open_note(&format!("text\n\n{impostor_line}"), &trusted).is_err());
        let malformed = [
            format!("{note}\u{2014} nobody\n"),
            format!("{note}\u{2014} nobody !!!!\n"),
            format!("{note}- nobody AAAAAAA=\n"),
            format!("{note}\u{2014} nobody AAAA\n"),
            format!("{note}\u{2014} no+body AAAAAAA=\n"),
        ];
        for note in malformed {
            assert!(
                matches!(
                    open_note(&note, &trusted),
                    Err(NoteError::MalformedSignatureLine { line: 2 })
                ),
                "{note:?}"
            );
        }
        let many = format!("{note}{}", witness_line.repeat(NOTE_SIGNATURES_MAX));
        assert_eq!(
            open_note(&many, &trusted),
            Err(NoteError::TooManySignatures)
        );
        let sixteen = format!("{note}{}", witness_line.repeat(15));
        assert!(open_note(&sixteen, &trusted).is_ok());
    }

    #[test]
    fn notes_without_signatures_or_with_control_characters_are_refused() {
        let (trusted, note) = trusted_and_signed("text\n");
        assert_eq!(
            open_note("text\n", &trusted),
            Err(NoteError::MissingSignatures)
        );
        assert_eq!(
            open_note("text\n\n", &trusted),
            Err(NoteError::MissingSignatures)
        );
        assert_eq!(
            open_note(note.trim_end_matches('\n'), &trusted),
            Err(NoteError::MissingSignatures)
        );
        assert_eq!(
            open_note(&note.replace("text", "te\txt"), &trusted),
            Err(NoteError::ControlCharacter)
        );
        // A blank line inside the text is allowed; the last one separates the signatures.
        let (_, paragraphs) = trusted_and_signed("one\n\ntwo\n");
        assert_eq!(
            open_note(&paragraphs, &trusted),
            Ok("one\n\ntwo\n".to_owned())
        );
    }

    #[test]
    fn verifier_keys_round_trip_and_are_checked() {
        let signer = key(5);
        let text = verifier_key(ORIGIN, &public(&signer));
        let parsed = NoteVerifier::parse(&text).unwrap();
        assert_eq!(parsed, verifier(ORIGIN, &signer));
        assert_eq!(parsed.to_string(), text);
        assert_eq!(text.parse::<NoteVerifier>(), Ok(parsed.clone()));
        assert_eq!(parsed.name(), ORIGIN);
        assert_eq!(parsed.public_key(), public(&signer));

        let (name, rest) = text.split_once('+').unwrap();
        let (id_hex, key_part) = rest.split_once('+').unwrap();
        assert_eq!(
            NoteVerifier::parse(&format!("{name}+00000000+{key_part}")),
            Err(NoteError::VerifierKeyIdMismatch)
        );
        assert_eq!(
            NoteVerifier::parse(&format!("other{}", &text[name.len()..])),
            Err(NoteError::VerifierKeyIdMismatch)
        );
        let mut typed = BASE64.decode(key_part).unwrap();
        typed[0] = 0x04;
        assert_eq!(
            NoteVerifier::parse(&format!("{name}+{id_hex}+{}", BASE64.encode(&typed))),
            Err(NoteError::UnsupportedSignatureType(0x04))
        );
        for malformed in [
            "",
            "name",
            "name+1234",
            "name+1234567+AQ==",
            "name+123456789+AQ==",
            "name+zzzzzzzz+AQ==",
            "name+12345678+AQ",
            "name+12345678+AQ==",
        ] {
            assert_eq!(
                NoteVerifier::parse(malformed),
                Err(NoteError::MalformedVerifierKey),
                "{malformed}"
            );
        }
        assert_eq!(
            NoteVerifier::parse(&format!("+{}", &text[name.len() + 1..])),
            Err(NoteError::InvalidKeyName)
        );
        assert_eq!(
            NoteVerifier::new("two words", public(&signer)),
            Err(NoteError::InvalidKeyName)
        );
        let mut identity = [0; 32];
        identity[0] = 1;
        assert_eq!(
            NoteVerifier::new(ORIGIN, PublicKey(identity)),
            Err(NoteError::WeakPublicKey)
        );
    }

    #[test]
    fn a_signed_checkpoint_opens_only_for_its_origin() {
        let signer = key(6);
        let trusted = verifier(ORIGIN, &signer);
        let note = checkpoint().sign(ORIGIN, &signer).unwrap();
        assert_eq!(Checkpoint::open(&note, &trusted, ORIGIN), Ok(checkpoint()));
        assert_eq!(
            Checkpoint::open(&note, &trusted, "elsewhere"),
            Err(CheckpointError::OriginMismatch {
                expected: "elsewhere".to_owned(),
                actual: ORIGIN.to_owned()
            })
        );
        let bad_origin = Checkpoint {
            origin: "two\nlines".to_owned(),
            ..checkpoint()
        };
        assert_eq!(
            bad_origin.sign(ORIGIN, &signer),
            Err(CheckpointError::InvalidOrigin)
        );
        assert_eq!(
            checkpoint().sign("bad name", &signer),
            Err(CheckpointError::Note(NoteError::InvalidKeyName))
        );
    }

    #[test]
    fn a_tlog_proof_round_trips_and_verifies() {
        let signer = key(7);
        let trusted = verifier(ORIGIN, &signer);
        let leaves: Vec<Hash> = (0..11u8).map(|number| leaf_hash(&[number])).collect();
        let source = LeafHashes(leaves.clone());
        let tree = Checkpoint {
            origin: ORIGIN.to_owned(),
            size: 11,
            root: root(&source, 11).unwrap(),
        };
        let note = tree.sign(ORIGIN, &signer).unwrap();
        let proof = inclusion_proof(&source, 6, 11).unwrap();
        let text = encode_tlog_proof(6, &proof, &note);
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 6\n"));
        let parsed = TlogProof::parse(&text).unwrap();
        assert_eq!(parsed.index, 6);
        assert_eq!(parsed.inclusion_proof, proof);
        assert_eq!(parsed.checkpoint, note);
        assert_eq!(parsed.encode(), text);
        assert_eq!(
            parsed.verify(&leaves[6], &trusted, ORIGIN),
            Ok(tree.clone())
        );
        assert_eq!(
            parsed.verify(&leaves[5], &trusted, ORIGIN),
            Err(TlogProofError::Inclusion(ProofError::RootMismatch))
        );
        assert!(matches!(
            parsed.verify(&leaves[6], &verifier(ORIGIN, &key(8)), ORIGIN),
            Err(TlogProofError::Checkpoint(CheckpointError::Note(
                NoteError::NoKnownSignature { .. }
            )))
        ));

        let with_extra = TlogProof {
            extra: Some(b"context".to_vec()),
            ..parsed.clone()
        };
        let extra_text = with_extra.encode();
        assert!(extra_text.contains("\nextra Y29udGV4dA==\nindex 6\n"));
        assert_eq!(TlogProof::parse(&extra_text), Ok(with_extra));

        // The first leaf of a one-leaf tree has an empty proof.
        let single = encode_tlog_proof(0, &[], &note);
        assert_eq!(
            TlogProof::parse(&single).map(|proof| proof.inclusion_proof.len()),
            Ok(0)
        );
    }

    #[test]
    fn malformed_tlog_proofs_are_refused_with_the_reason() {
        let hash = BASE64.encode([9; 32]);
        let note = "log\n1\nAAAA\n\n\u{2014} log AAAA\n";
        let cases = [
            (
                format!("c2sp.org/tlog-proof@v2\nindex 0\n\n{note}"),
                TlogProofError::MissingHeader,
            ),
            (
                "c2sp.org/tlog-proof@v1".to_owned(),
                TlogProofError::MissingHeader,
            ),
            (
                format!("c2sp.org/tlog-proof@v1\nindex 01\n\n{note}"),
                TlogProofError::InvalidIndex,
            ),
            (
                format!("c2sp.org/tlog-proof@v1\nindex -1\n\n{note}"),
                TlogProofError::InvalidIndex,
            ),
            (
                format!("c2sp.org/tlog-proof@v1\nindex\n\n{note}"),
                TlogProofError::InvalidIndex,
            ),
            (
                format!("c2sp.org/tlog-proof@v1\n{hash}\n\n{note}"),
                TlogProofError::InvalidIndex,
            ),
            (
                format!("c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\n{note}"),
                TlogProofError::InvalidExtra,
            ),
            (
                format!("c2sp.org/tlog-proof@v1\nindex 0\n{hash}\nAAAA\n\n{note}"),
                TlogProofError::InvalidHash { line: 4 },
            ),
            (
                format!("c2sp.org/tlog-proof@v1\nindex 0\n{hash}\n"),
                TlogProofError::MissingCheckpoint,
            ),
            (
                format!("c2sp.org/tlog-proof@v1\nindex 0\n{hash}\n\n"),
                TlogProofError::MissingCheckpoint,
            ),
            (
                format!(
                    "c2sp.org/tlog-proof@v1\nindex 0\n{}\n{note}",
                    format!("{hash}\n").repeat(65)
                ),
                TlogProofError::TooManyHashes,
            ),
        ];
        for (text, error) in cases {
            assert_eq!(TlogProof::parse(&text), Err(error), "{text:?}");
        }
    }
}
