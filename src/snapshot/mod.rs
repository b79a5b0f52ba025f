//! Checked start-up snapshots: the ledger and Merkle state at one size, written when a node stops
//! and periodically while it runs (`periodic`), so the next start folds only the entries after
//! it instead of re-verifying every signature.
//!
//! The log proves each snapshot. A stopping node appends an `attest_state` entry naming the size
//! and the SHA-256 of the ledger part; a running node appends a `mark_state` entry, makes the
//! snapshot of the state at the mark in the background, then appends an `attest_state` naming
//! the mark's size and that digest. Every replay, the verifier's included, re-decides the
//! attestation against the state it folded. A snapshot is used only when: the server key's
//! signature over its header verifies, its bytes match the digests the header names, the state
//! sits at the header's size, head hash and Merkle root, the log's entry just below that size
//! hashes to the same head, and the log holds the server's attestation of that very ledger
//! digest where the header says (at the size itself, or after the server's mark there). A
//! snapshot that fails any of these (a forged count re-signed with the server key fails the
//! last) is not used: the node replays the whole log. The fold then re-decides the attestation
//! against the decoded state, a second check of the same claim. After the node is ready,
//! [`audit`] folds the log up to that size again on its own thread and checks every stored
//! tile; on a mismatch the node refuses writes and numbers until restarted.
//!
//! File layout: `veche snapshot v2\n`, one line of header JSON, the ledger part's length (`u64`
//! little-endian), the ledger part (`projections::ledger::snapshot`), the tree part
//! (`TreeState::encode`).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use projections::protocol::{entry_hash, public_key_of, verify_strict, Entry, EntryKind};
use projections::{Action, Command};
use projections::{Hash, Ledger, PublicKey, Replayer};
use sha2::{Digest, Sha256};

use crate::store::{EventStore, StoreError};
use crate::transparency::TreeState;
pub use crate::writer::AttestedState;

pub mod periodic;

/// The snapshot's file name in a data directory.
pub const SNAPSHOT_FILE: &str = "ledger.snapshot";

/// Version 2 names where the attestation sits; a version 1 file is not used (one full replay).
const MAGIC: &[u8] = b"veche snapshot v2\n";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("cannot read or write the snapshot: {0}")]
    Io(#[from] std::io::Error),
    #[error("the snapshot is not a veche snapshot v2 file")]
    NotASnapshot,
    #[error("the snapshot header does not read: {0}")]
    Header(String),
    #[error("the snapshot was signed by another server key ({0})")]
    ForeignKey(PublicKey),
    #[error("the snapshot's signature does not verify")]
    Signature,
    #[error("the snapshot's {0} part does not match its digest")]
    Digest(&'static str),
    #[error(transparent)]
    Ledger(#[from] projections::ledger::snapshot::SnapshotError),
    #[error("the snapshot's tree part does not read")]
    Tree,
    #[error("the snapshot's state does not sit at its header's size, head hash and root")]
    Anchor,
    /// The snapshot's attestation, the entry at the snapshot's size, was published (and its
    /// checkpoint signed) before the snapshot was written: the log held `attested_size` entries.
    #[error("the log holds {log_size} entries, fewer than the {attested_size} the snapshot's attestation made it")]
    LogShorter { log_size: u64, attested_size: u64 },
    #[error("the log's entry at position {0} does not hash to the snapshot's head hash")]
    LogDiffers(u64),
    #[error("the log's entry at position {0} is not the server's attestation of the snapshot's ledger digest")]
    Unattested(u64),
    #[error("the log's entry at position {0} is not the server's mark of the snapshot's state")]
    Unmarked(u64),
    #[error("the log did not take the state attestation: {0}")]
    Attestation(#[from] crate::writer::SubmitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a snapshot claims, signed by the server key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotHeader {
    pub size: u64,
    #[serde(with = "hex::serde")]
    pub head_hash: Hash,
    #[serde(with = "hex::serde")]
    pub merkle_root: Hash,
    #[serde(with = "hex::serde")]
    pub ledger_sha256: Hash,
    #[serde(with = "hex::serde")]
    pub tree_sha256: Hash,
    /// Where the log's `attest_state` of this state sits: `size` itself (a stopping node's), or
    /// a later position, after the server's `mark_state` at `size` (a periodic snapshot's).
    pub attestation_position: u64,
    pub server_key: PublicKey,
    /// Base64 Ed25519 signature by `server_key` over [`SnapshotHeader::signed_message`].
    pub signature: String,
}

impl SnapshotHeader {
    fn signed_message(&self) -> Vec<u8> {
        format!(
            "veche snapshot v2\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.size,
            hex::encode(self.head_hash),
            hex::encode(self.merkle_root),
            hex::encode(self.ledger_sha256),
            hex::encode(self.tree_sha256),
            self.attestation_position,
        )
        .into_bytes()
    }
}

/// A snapshot that passed every check `load` makes.
pub struct LoadedSnapshot {
    pub header: SnapshotHeader,
    pub ledger: Ledger,
    pub tree: TreeState,
}

/// The canonical encodings of a ledger and a tree.
fn encode(ledger: &Ledger, tree: &TreeState) -> (Vec<u8>, Vec<u8>) {
    let mut ledger_part = Vec::new();
    projections::ledger::snapshot::encode(ledger, &mut ledger_part);
    let mut tree_part = Vec::new();
    tree.encode(&mut tree_part);
    (ledger_part, tree_part)
}

fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// Writes a snapshot of `ledger` and `tree` (at the same size) to `path`. A node writes only
/// states the log attests (`write_attested`); this form serves tools and tests that need a
/// snapshot of a state of their own making.
pub fn write(
    path: &Path,
    ledger: &Ledger,
    tree: &TreeState,
    key: &SigningKey,
) -> Result<SnapshotHeader, SnapshotFileError> {
    let (ledger_part, tree_part) = encode(ledger, tree);
    write_attested(path, &state_of(ledger, ledger_part, tree_part), key)
}

/// The snapshot parts of `ledger`, attested (until told otherwise) at its own size.
fn state_of(ledger: &Ledger, ledger_part: Vec<u8>, tree_part: Vec<u8>) -> AttestedState {
    AttestedState {
        size: ledger.size,
        attestation_position: ledger.size,
        head_hash: ledger.head_hash,
        merkle_root: ledger.merkle.root(),
        ledger_part,
        tree_part,
    }
}

/// Writes a snapshot of the `state` the log attests to `path`, atomically: a crash leaves the
/// old snapshot or the new one, never a torn file.
pub fn write_attested(
    path: &Path,
    state: &AttestedState,
    key: &SigningKey,
) -> Result<SnapshotHeader, SnapshotFileError> {
    let mut header = SnapshotHeader {
        size: state.size,
        head_hash: state.head_hash,
        merkle_root: state.merkle_root,
        ledger_sha256: sha256(&state.ledger_part),
        tree_sha256: sha256(&state.tree_part),
        attestation_position: state.attestation_position,
        server_key: public_key_of(key),
        signature: String::new(),
    };
    // The message starts `veche snapshot v1`, a prefix no entry's signed message has, so this
    // signature can never pass for a command or a system event.
    let signature = key.sign(&header.signed_message());
    header.signature = base64::engine::general_purpose::STANDARD.encode(signature.to_bytes());
    let header_line = serde_json::to_vec(&header)
        .map_err(|error| SnapshotFileError::Header(error.to_string()))?;
    // One temporary file per process: nodes sharing a data directory never write into one.
    let temporary = path.with_extension(format!("snapshot.partial.{}", std::process::id()));
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
        file.write_all(MAGIC)?;
        file.write_all(&header_line)?;
        file.write_all(b"\n")?;
        file.write_all(&(state.ledger_part.len() as u64).to_le_bytes())?;
        file.write_all(&state.ledger_part)?;
        file.write_all(&state.tree_part)?;
        let file = file.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    if let Some(directory) = path.parent() {
        std::fs::File::open(directory)?.sync_all()?;
    }
    Ok(header)
}

/// Reads and checks the snapshot at `path` against this node's key and the stored log; `None`
/// when there is no snapshot.
pub fn load(
    path: &Path,
    key: &SigningKey,
    store: &dyn EventStore,
    origin: &str,
) -> Result<Option<LoadedSnapshot>, SnapshotFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let (header, body) = signed_header(&bytes, key)?;
    let (ledger_part, tree_part) = parts(body, &header)?;
    let ledger = projections::ledger::snapshot::decode(ledger_part)?;
    let tree = TreeState::decode(tree_part, ledger.merkle.clone(), origin, key)
        .ok_or(SnapshotFileError::Tree)?;
    let anchored = ledger.size == header.size
        && ledger.head_hash == header.head_hash
        && ledger.merkle.root() == header.merkle_root
        && tree.size() == header.size;
    if !anchored || header.size == 0 {
        return Err(SnapshotFileError::Anchor);
    }
    check_against_log(&header, store, key)?;
    Ok(Some(LoadedSnapshot {
        header,
        ledger,
        tree,
    }))
}

/// The header line, signed by this node's key, and the bytes after it.
fn signed_header<'a>(
    bytes: &'a [u8],
    key: &SigningKey,
) -> Result<(SnapshotHeader, &'a [u8]), SnapshotFileError> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or(SnapshotFileError::NotASnapshot)?;
    let line_end = rest
        .iter()
        .position(|byte| *byte == b'\n')
        .ok_or(SnapshotFileError::NotASnapshot)?;
    let header: SnapshotHeader = serde_json::from_slice(&rest[..line_end])
        .map_err(|error| SnapshotFileError::Header(error.to_string()))?;
    if header.server_key != public_key_of(key) {
        return Err(SnapshotFileError::ForeignKey(header.server_key));
    }
    let signature: [u8; 64] = base64::engine::general_purpose::STANDARD
        .decode(&header.signature)
        .ok()
        .and_then(|signature| signature.try_into().ok())
        .ok_or(SnapshotFileError::Signature)?;
    verify_strict(header.server_key, &header.signed_message(), &signature)
        .map_err(|_| SnapshotFileError::Signature)?;
    Ok((header, &rest[line_end + 1..]))
}

/// The ledger and tree parts of the body, each matching the header's digest.
fn parts<'a>(
    body: &'a [u8],
    header: &SnapshotHeader,
) -> Result<(&'a [u8], &'a [u8]), SnapshotFileError> {
    let (length, body) = body
        .split_first_chunk::<8>()
        .ok_or(SnapshotFileError::NotASnapshot)?;
    let ledger_length = usize::try_from(u64::from_le_bytes(*length))
        .ok()
        .filter(|length| *length <= body.len())
        .ok_or(SnapshotFileError::NotASnapshot)?;
    let (ledger_part, tree_part) = body.split_at(ledger_length);
    if sha256(ledger_part) != header.ledger_sha256 {
        return Err(SnapshotFileError::Digest("ledger"));
    }
    if sha256(tree_part) != header.tree_sha256 {
        return Err(SnapshotFileError::Digest("tree"));
    }
    Ok((ledger_part, tree_part))
}

/// The stored log reaches past the snapshot's attestation, its entry just below the snapshot's
/// size hashes to the header's head, and it holds the server's attestation of the header's
/// ledger digest where the header says: at the size itself, or after the server's mark there.
fn check_against_log(
    header: &SnapshotHeader,
    store: &dyn EventStore,
    key: &SigningKey,
) -> Result<(), SnapshotFileError> {
    let log_size = store.size()?;
    let attested_size = header.attestation_position.max(header.size) + 1;
    if log_size < attested_size {
        return Err(SnapshotFileError::LogShorter {
            log_size,
            attested_size,
        });
    }
    let last = header.size - 1;
    let entries = store.read(last, 2)?;
    let matches = entries.first().is_some_and(|entry| {
        entry.hash == header.head_hash && entry_hash(&entry.bytes) == header.head_hash
    });
    if !matches {
        return Err(SnapshotFileError::LogDiffers(last));
    }
    let at_size = entries.get(1).map(|entry| entry.bytes.as_slice());
    if header.attestation_position == header.size {
        return match at_size {
            Some(bytes) if attests(bytes, header, key) => Ok(()),
            _ => Err(SnapshotFileError::Unattested(header.size)),
        };
    }
    if !at_size.is_some_and(|bytes| marks(bytes, header.size, key)) {
        return Err(SnapshotFileError::Unmarked(header.size));
    }
    let attestation = store.read(header.attestation_position, 1)?;
    match attestation.first() {
        Some(entry) if attests(&entry.bytes, header, key) => Ok(()),
        _ => Err(SnapshotFileError::Unattested(header.attestation_position)),
    }
}

/// The system command in `bytes`, if it is an entry signed by this node's key.
fn system_command(bytes: &[u8], key: &SigningKey) -> Option<Command> {
    let entry = Entry::decode(bytes).ok()?;
    let signed = entry.kind == EntryKind::System
        && entry.signer == public_key_of(key)
        && entry.verify_signature().is_ok();
    signed
        .then(|| Command::parse(&entry.payload).ok())
        .flatten()
}

/// Whether `bytes` are a system entry, signed by this node's key, attesting the header's size
/// and ledger digest.
fn attests(bytes: &[u8], header: &SnapshotHeader, key: &SigningKey) -> bool {
    match system_command(bytes, key) {
        Some(Command {
            action: Action::AttestState(claim),
            ..
        }) => claim.size == header.size && claim.ledger_sha256 == hex::encode(header.ledger_sha256),
        _ => false,
    }
}

/// Whether `bytes` are a system entry, signed by this node's key, marking the state at `size`.
fn marks(bytes: &[u8], size: u64, key: &SigningKey) -> bool {
    matches!(
        system_command(bytes, key),
        Some(Command {
            action: Action::MarkState(mark),
            ..
        }) if mark.size == size
    )
}

/// Why an audit refuted a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the log does not fold to the snapshot's size: {0}")]
    Replay(#[from] crate::writer::CatchUpError),
    #[error("the log folds to a different {0} than the snapshot holds")]
    Differs(&'static str),
}

/// Folds the stored log up to the snapshot's size from nothing, checking every entry as a full
/// start-up does, checks every stored hash tile against the entries (replacing a corrupted one by
/// its recomputation), and compares the result with the snapshot. Returns the tiles replaced.
pub fn audit(
    store: &dyn EventStore,
    header: &SnapshotHeader,
    origin: &str,
    key: &SigningKey,
) -> Result<Vec<crate::store::TileName>, AuditError> {
    let mut replayer = Replayer::new();
    let mut tree = TreeState::new(origin, key);
    // Stored as they complete: held to the end, a 10,000,000-entry log's tiles took 320 MiB
    // beside the audit's ledger.
    let mut tiles = crate::transparency::TileWriter::new(store);
    crate::writer::catch_up_until(store, &mut replayer, header.size, |event| {
        tiles.extend(tree.push(event.leaf_hash));
    })?;
    if replayer.ledger.size != header.size {
        return Err(AuditError::Differs("size"));
    }
    let repaired = tiles
        .finish()
        .map_err(|error| AuditError::Replay(error.into()))?;
    // Streamed through the hash: the encoding itself would be a copy of the state again.
    if projections::ledger::snapshot::digest(&replayer.ledger) != header.ledger_sha256 {
        return Err(AuditError::Differs("ledger"));
    }
    let mut tree_part = Vec::new();
    tree.encode(&mut tree_part);
    if sha256(&tree_part) != header.tree_sha256 {
        return Err(AuditError::Differs("Merkle tree"));
    }
    Ok(repaired)
}
