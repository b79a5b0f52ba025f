//! The in-memory twin of the durable stores, for tests and simulations.

use std::sync::Mutex;

use projections::Hash;

use super::{EventStore, SignedCheckpoint, StoreError, StoredContent, StoredEntry, StoredTile};

#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<Vec<StoredEntry>>,
    /// Content by commitment, beside the entries (whose own `content` is emptied when stored).
    content: Mutex<std::collections::BTreeMap<[u8; 32], StoredContent>>,
    tiles: Mutex<TileMap>,
    signed: Mutex<Option<SignedCheckpoint>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<StoredEntry>>, StoreError> {
        locked(&self.entries)
    }

    fn tiles(&self) -> Result<std::sync::MutexGuard<'_, TileMap>, StoreError> {
        locked(&self.tiles)
    }

    /// Keeps the batch's content in the content map and the entries without it, as the durable
    /// stores keep them in two tables.
    fn store_batch(
        &self,
        entries: &mut Vec<StoredEntry>,
        batch: Vec<StoredEntry>,
    ) -> Result<(), StoreError> {
        super::check_contiguous(entries.len() as u64, &batch)?;
        let mut content = locked(&self.content)?;
        for mut entry in batch {
            for piece in std::mem::take(&mut entry.content) {
                content.insert(piece.commitment, piece);
            }
            if let Some(erased) = entry.erases {
                let pieces = content
                    .values_mut()
                    .filter(|piece| piece.position == erased);
                for piece in pieces {
                    piece.piece = None;
                    piece.erased_by = Some(entry.position);
                }
            }
            entries.push(entry);
        }
        Ok(())
    }
}

type TileMap = std::collections::BTreeMap<(u8, u64), Vec<u8>>;

/// A poisoned lock means a thread panicked mid-change: the store is unusable, not silently reused.
fn locked<T>(mutex: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, StoreError> {
    mutex
        .lock()
        .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
}

impl EventStore for MemoryStore {
    fn append(&self, batch: &[StoredEntry]) -> Result<(), StoreError> {
        let mut entries = self.lock()?;
        self.store_batch(&mut entries, batch.to_vec())
    }

    fn append_following(
        &self,
        known_size: u64,
        prepare: &mut dyn FnMut(Vec<StoredEntry>) -> Vec<StoredEntry>,
    ) -> Result<(), StoreError> {
        let mut entries = self.lock()?;
        let start = usize::try_from(known_size)
            .unwrap_or(usize::MAX)
            .min(entries.len());
        let batch = prepare(entries[start..].to_vec());
        self.store_batch(&mut entries, batch)
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        let entries = self.lock()?;
        let start = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(entries.len());
        let end = start.saturating_add(limit).min(entries.len());
        Ok(entries[start..end].to_vec())
    }

    fn read_content(&self, commitments: &[[u8; 32]]) -> Result<Vec<StoredContent>, StoreError> {
        let content = locked(&self.content)?;
        let found = commitments
            .iter()
            .filter_map(|commitment| content.get(commitment));
        Ok(found.cloned().collect())
    }

    fn size(&self) -> Result<u64, StoreError> {
        Ok(self.lock()?.len() as u64)
    }

    fn write_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        let mut stored = self.tiles()?;
        for tile in tiles {
            stored
                .entry((tile.level, tile.index))
                .or_insert_with(|| tile.hashes.clone());
        }
        Ok(())
    }

    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self.tiles()?;
        Ok(stored.get(&(level, index)).cloned())
    }

    fn replace_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        let mut stored = self.tiles()?;
        for tile in tiles {
            stored.insert((tile.level, tile.index), tile.hashes.clone());
        }
        Ok(())
    }

    fn record_signed_checkpoint(&self, size: u64, root: &Hash) -> Result<(), StoreError> {
        let mut signed = self
            .signed
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        if signed.is_none_or(|largest| largest.size < size) {
            *signed = Some(SignedCheckpoint { size, root: *root });
        }
        Ok(())
    }

    fn largest_signed_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.signed
            .lock()
            .map(|signed| *signed)
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }
}
