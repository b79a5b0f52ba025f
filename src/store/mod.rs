//! The log's storage behind one trait: append a batch durably, read in order.
//!
//! Invariant: a store is append-only and keeps one total order. `append` either makes the whole
//! batch durable at the positions it names, right after the current end, or makes none of it.

mod checkpoint_file;
mod memory;
mod postgres;
mod sqlite;

#[cfg(test)]
mod contract;

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::{backup_sqlite, SqliteStore, SIGNED_CHECKPOINT_EXTENSION};

use projections::Hash;

/// One stored entry: its bytes and the chain hash the writer computed for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub position: u64,
    pub bytes: Vec<u8>,
    pub hash: Hash,
    /// The erasable content the entry commits to, written beside it in the same transaction
    /// (never part of `bytes`, the hash chain or the tiles). Reads of the log leave it empty.
    pub content: Vec<StoredContent>,
    /// The entry whose content this one erases (an `erase_content` or `redact_content`): its
    /// text and salt are deleted in the same transaction as this entry is appended.
    pub erases: Option<u64>,
}

/// One piece of erasable content, kept in the content table beside the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredContent {
    /// The position of the entry whose payload commits to it.
    pub position: u64,
    pub commitment: [u8; 32],
    /// The salt and text, until an erasure deletes them.
    pub piece: Option<([u8; projections::content::SALT_BYTES], String)>,
    /// The position of the entry that erased the piece.
    pub erased_by: Option<u64>,
}

/// One full Merkle hash tile (C2SP tlog-tiles): 256 concatenated 32-byte hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTile {
    pub level: u8,
    pub index: u64,
    pub hashes: Vec<u8>,
}

/// A hash tile's address, to name a corrupted one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileName {
    pub level: u8,
    pub index: u64,
}

impl TileName {
    fn of(tile: &StoredTile) -> TileName {
        TileName {
            level: tile.level,
            index: tile.index,
        }
    }
}

impl std::fmt::Display for TileName {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The tile's path under `/tlog/`, as a reader would fetch it.
        formatter.write_str(&projections::tiles::hash_tile_path(
            self.level,
            self.index,
            projections::tiles::TILE_WIDTH,
        ))
    }
}

/// The largest tree this node (or, on a shared store, any node) ever signed a checkpoint for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("append expected position {expected} next but was given {given}")]
    PositionConflict { expected: u64, given: u64 },
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the store holds data it cannot read: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

pub trait EventStore: Send + Sync + 'static {
    /// Appends `entries`, whose positions must run on from the current end without a gap.
    /// Returns only once they are durable.
    fn append(&self, entries: &[StoredEntry]) -> Result<(), StoreError>;

    /// Appends under the store's append lock, after catching up: hands `prepare` every entry
    /// stored from `known_size` on (appended by other nodes), and appends the batch `prepare`
    /// returns right after them, durably, before the lock is released. Deciding inside the lock
    /// means a node never loses a race to another node's append.
    fn append_following(
        &self,
        known_size: u64,
        prepare: &mut dyn FnMut(Vec<StoredEntry>) -> Vec<StoredEntry>,
    ) -> Result<(), StoreError>;

    /// Up to `limit` entries from `from` on, in order.
    fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, StoreError>;

    /// Number of entries, which is also the next position.
    fn size(&self) -> Result<u64, StoreError>;

    /// The content stored for these commitments: erased pieces without their salt and text, and
    /// the entry that erased them; pieces never stored are absent.
    fn read_content(&self, commitments: &[[u8; 32]]) -> Result<Vec<StoredContent>, StoreError>;

    /// Stores full Merkle hash tiles. Tiles are derived from the log and never change once
    /// full, so writing one that is already there is not an error.
    fn write_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError>;

    /// A full hash tile, if stored: 256 hashes of tree level `8 × level`.
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Replaces stored tiles with `tiles`, which the caller recomputed from checked entries: the
    /// only way a stored tile ever changes (the tables refuse UPDATE and DELETE otherwise). A
    /// store that cannot do it (a test double) refuses, and the node keeps serving what it has.
    fn replace_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        let _ = tiles;
        Err(StoreError::Unavailable(format!(
            "the {} store cannot replace a stored tile",
            self.backend_name()
        )))
    }

    /// Makes the store hold exactly `tiles`, recomputed from checked entries: writes the absent
    /// ones, and replaces (and names) any stored with other hashes, which is a corrupted tile.
    fn reconcile_tiles(&self, tiles: &[StoredTile]) -> Result<Vec<TileName>, StoreError> {
        let mut corrupted = Vec::new();
        for tile in tiles {
            if let Some(stored) = self.read_tile(tile.level, tile.index)? {
                if stored != tile.hashes {
                    corrupted.push(tile.clone());
                }
            }
        }
        self.write_tiles(tiles)?;
        if !corrupted.is_empty() {
            self.replace_tiles(&corrupted)?;
        }
        Ok(corrupted.iter().map(TileName::of).collect())
    }

    /// Records that this node signed a checkpoint at `size` with `root`, durably, before the
    /// checkpoint is published. Kept outside the events table, so that cutting the log's tail
    /// cannot also cut the memory of what was signed over it. A store that keeps no record (a
    /// test double wrapping another) accepts and forgets.
    fn record_signed_checkpoint(&self, size: u64, root: &Hash) -> Result<(), StoreError> {
        let _ = (size, root);
        Ok(())
    }

    /// The largest checkpoint ever recorded by [`EventStore::record_signed_checkpoint`].
    fn largest_signed_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        Ok(None)
    }

    /// A short name for logs and metrics.
    fn backend_name(&self) -> &'static str;
}

/// Checks that `batch` runs on from position `next` without a gap or an overlap.
pub(crate) fn check_contiguous(next: u64, batch: &[StoredEntry]) -> Result<(), StoreError> {
    for (expected, entry) in (next..).zip(batch) {
        if entry.position != expected {
            return Err(StoreError::PositionConflict {
                expected,
                given: entry.position,
            });
        }
    }
    Ok(())
}
