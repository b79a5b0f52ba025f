//! A memory store that fails where a test says: the one wrapper the fault-injecting tests share,
//! so that each says only when its store fails, not how every other call passes through.

use veche::store::{EventStore, MemoryStore, StoreError, StoredEntry, StoredTile};

/// Where a write meets its fault.
pub enum WriteFault {
    None,
    /// Refused, and nothing is written.
    BeforeTheWrite(StoreError),
    /// Written, but the caller is told it failed: a commit whose answer was lost.
    AfterTheWrite(StoreError),
}

/// When a `FaultyStore` fails.
pub trait Faults: Send + Sync + 'static {
    /// The fault of the next append; `following` tells `append_following` from `append`.
    fn next_write(&self, following: bool) -> WriteFault;
    /// The error of the next read, when it is to fail.
    fn next_read(&self) -> Option<StoreError>;
    fn backend_name(&self) -> &'static str;
}

/// A `MemoryStore` that answers as it does except where `faults` says otherwise.
pub struct FaultyStore<F> {
    pub inner: MemoryStore,
    pub faults: F,
}

impl<F: Faults> FaultyStore<F> {
    pub fn new(faults: F) -> FaultyStore<F> {
        FaultyStore {
            inner: MemoryStore::new(),
            faults,
        }
    }

    fn write(
        &self,
        following: bool,
        append: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self.faults.next_write(following) {
            WriteFault::None => append(),
            WriteFault::BeforeTheWrite(error) => Err(error),
            WriteFault::AfterTheWrite(error) => {
                append()?;
                Err(error)
            }
        }
    }
}

impl<F: Faults> EventStore for FaultyStore<F> {
    fn append(&self, entries: &[StoredEntry]) -> Result<(), StoreError> {
        self.write(false, || self.inner.append(entries))
    }
    fn append_following(
        &self,
        known: u64,
        prepare: &mut dyn FnMut(Vec<StoredEntry>) -> Vec<StoredEntry>,
    ) -> Result<(), StoreError> {
        self.write(true, || self.inner.append_following(known, prepare))
    }
    fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        match self.faults.next_read() {
            Some(error) => Err(error),
            None => self.inner.read(from, limit),
        }
    }
    fn size(&self) -> Result<u64, StoreError> {
        self.inner.size()
    }
    fn read_content(
        &self,
        commitments: &[[u8; 32]],
    ) -> Result<Vec<veche::store::StoredContent>, StoreError> {
        self.inner.read_content(commitments)
    }
    fn write_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        self.inner.write_tiles(tiles)
    }
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read_tile(level, index)
    }
    fn replace_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        self.inner.replace_tiles(tiles)
    }
    fn backend_name(&self) -> &'static str {
        self.faults.backend_name()
    }
}
