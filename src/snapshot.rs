//! Checked start-up snapshots: the ledger and Merkle state at one size, written when a node stops,
//! so the next start folds only the entries after it instead of re-verifying every signature.
//!
//! A snapshot is never trusted blindly. Before it is used: the server key's signature over its
//! header must verify, its bytes must match the digests the header names, the state must sit at
//! the header's size, head hash and Merkle root, and the log's own entry at that size must hash to
//! the same head (so the log under the snapshot is the log the node has). After the node is ready,
//! [`audit`] folds the log up to that size again on its own thread, checking every signature, and
//! compares the digest of what it built with the snapshot's: on a mismatch the node refuses
//! writes and reports itself unready until restarted without the snapshot.
//!
//! File layout: `veche snapshot v1\n`, one line of header JSON, the ledger part's length (`u64`
//! little-endian), the ledger part (`projections::ledger::snapshot`), the tree part
//! (`TreeState::encode`).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use projections::protocol::{entry_hash, public_key_of, verify_strict};
use projections::{Hash, Ledger, PublicKey, Replayer};
use sha2::{Digest, Sha256};

use crate::store::{EventStore, StoreError};
use crate::transparency::TreeState;

/// The snapshot's file name in a data directory.
pub const SNAPSHOT_FILE: &str = "ledger.snapshot";

const MAGIC: &[u8] = b"veche snapshot v1\n";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("cannot read or write the snapshot: {0}")]
    Io(#[from] std::io::Error),
    #[error("the snapshot is not a veche snapshot v1 file")]
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
    #[error("the log holds {log_size} entries, fewer than the snapshot's {snapshot_size}")]
    LogShorter { log_size: u64, snapshot_size: u64 },
    #[error("the log's entry at position {0} does not hash to the snapshot's head hash")]
    LogDiffers(u64),
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
    pub server_key: PublicKey,
    /// Base64 Ed25519 signature by `server_key` over [`SnapshotHeader::signed_message`].
    pub signature: String,
}

impl SnapshotHeader {
    fn signed_message(&self) -> Vec<u8> {
        format!(
            "veche snapshot v1\n{}\n{}\n{}\n{}\n{}\n",
            self.size,
            hex::encode(self.head_hash),
            hex::encode(self.merkle_root),
            hex::encode(self.ledger_sha256),
            hex::encode(self.tree_sha256),
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

/// Writes a snapshot of `ledger` and `tree` (at the same size) to `path`, atomically: a crash
/// leaves the old snapshot or the new one, never a torn file.
pub fn write(
    path: &Path,
    ledger: &Ledger,
    tree: &TreeState,
    key: &SigningKey,
) -> Result<SnapshotHeader, SnapshotFileError> {
    let (ledger_part, tree_part) = encode(ledger, tree);
    let mut header = SnapshotHeader {
        size: ledger.size,
        head_hash: ledger.head_hash,
        merkle_root: ledger.merkle.root(),
        ledger_sha256: sha256(&ledger_part),
        tree_sha256: sha256(&tree_part),
        server_key: public_key_of(key),
        signature: String::new(),
    };
    // The message starts `veche snapshot v1`, a prefix no entry's signed message has, so this
    // signature can never pass for a command or a system event.
    let signature = key.sign(&header.signed_message());
    header.signature = base64::engine::general_purpose::STANDARD.encode(signature.to_bytes());
    let header_line = serde_json::to_vec(&header)
        .map_err(|error| SnapshotFileError::Header(error.to_string()))?;
    let temporary = path.with_extension("snapshot.partial");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
        file.write_all(MAGIC)?;
        file.write_all(&header_line)?;
        file.write_all(b"\n")?;
        file.write_all(&(ledger_part.len() as u64).to_le_bytes())?;
        file.write_all(&ledger_part)?;
        file.write_all(&tree_part)?;
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
    check_against_log(&header, store)?;
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

/// The stored log reaches the snapshot's size, and its entry there hashes to the header's head.
fn check_against_log(
    header: &SnapshotHeader,
    store: &dyn EventStore,
) -> Result<(), SnapshotFileError> {
    let log_size = store.size()?;
    if log_size < header.size {
        return Err(SnapshotFileError::LogShorter {
            log_size,
            snapshot_size: header.size,
        });
    }
    let last = header.size - 1;
    let entry = store.read(last, 1)?;
    let matches = entry.first().is_some_and(|entry| {
        entry.hash == header.head_hash && entry_hash(&entry.bytes) == header.head_hash
    });
    if !matches {
        return Err(SnapshotFileError::LogDiffers(last));
    }
    Ok(())
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
    let mut completed_tiles = Vec::new();
    crate::writer::catch_up_until(store, &mut replayer, header.size, |event| {
        completed_tiles.extend(tree.push(event.leaf_hash));
    })?;
    if replayer.ledger.size != header.size {
        return Err(AuditError::Differs("size"));
    }
    let repaired = crate::transparency::store_recomputed_tiles(store, &completed_tiles)
        .map_err(|error| AuditError::Replay(error.into()))?;
    let (ledger_part, tree_part) = encode(&replayer.ledger, &tree);
    if sha256(&ledger_part) != header.ledger_sha256 {
        return Err(AuditError::Differs("ledger"));
    }
    if sha256(&tree_part) != header.tree_sha256 {
        return Err(AuditError::Differs("Merkle tree"));
    }
    Ok(repaired)
}
