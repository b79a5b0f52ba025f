//! The record of the largest checkpoint a SQLite node ever signed: a small file beside the log,
//! outside the table that a cut tail would shorten.
//!
//! Layout: two 64-byte slots, each the size (`u64` little-endian), the root (32 bytes) and the
//! first 24 bytes of SHA-256 over a tag, the size and the root. A record overwrites the slot that
//! does not hold the largest one and syncs it, so a torn write can spoil only the slot being
//! written, whose checkpoint was not yet published: the other slot still holds the previous one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use projections::Hash;
use sha2::{Digest, Sha256};

use super::{SignedCheckpoint, StoreError};

/// One slot: size (8 bytes), root (32), check (24). Format sizes, not limits: written as types.
type Slot = [u8; 64];
/// The truncated SHA-256 that tells a whole slot from a torn one.
type Check = [u8; 24];
const SLOT_BYTES: usize = std::mem::size_of::<Slot>();
const CHECK_BYTES: usize = std::mem::size_of::<Check>();
const TAG: &[u8] = b"veche signed checkpoint v1\n";

/// The open record file and the largest checkpoint it holds.
pub struct CheckpointFile {
    state: Mutex<State>,
}

struct State {
    file: File,
    largest: Option<SignedCheckpoint>,
    /// The slot the next record overwrites: never the one holding `largest`.
    next_slot: u64,
}

fn io_error(error: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("the signed-checkpoint record: {error}"))
}

fn check_of(size: u64, root: &Hash) -> Check {
    let digest = Sha256::new()
        .chain_update(TAG)
        .chain_update(size.to_le_bytes())
        .chain_update(root)
        .finalize();
    let mut check = [0; CHECK_BYTES];
    check.copy_from_slice(&digest[..CHECK_BYTES]);
    check
}

fn encode_slot(checkpoint: &SignedCheckpoint) -> Slot {
    let mut slot = [0; SLOT_BYTES];
    slot[..8].copy_from_slice(&checkpoint.size.to_le_bytes());
    slot[8..40].copy_from_slice(&checkpoint.root);
    slot[40..].copy_from_slice(&check_of(checkpoint.size, &checkpoint.root));
    slot
}

/// A slot's checkpoint, or `None` when it is empty or torn.
fn decode_slot(slot: &[u8]) -> Option<SignedCheckpoint> {
    let size = u64::from_le_bytes(slot.get(..8)?.try_into().ok()?);
    let root: Hash = slot.get(8..40)?.try_into().ok()?;
    (slot.get(40..SLOT_BYTES)? == check_of(size, &root)).then_some(SignedCheckpoint { size, root })
}

impl CheckpointFile {
    /// Opens the record at `path`, creating it (and syncing its directory, so that the file
    /// outlives a crash) on first use.
    pub fn open(path: &Path) -> Result<CheckpointFile, StoreError> {
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_error)?;
        if !existed {
            file.sync_all().map_err(io_error)?;
            if let Some(directory) = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                File::open(directory)
                    .and_then(|directory| directory.sync_all())
                    .map_err(io_error)?;
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error)?;
        let slots: Vec<Option<SignedCheckpoint>> = (0..2)
            .map(|slot| bytes.get(slot * SLOT_BYTES..(slot + 1) * SLOT_BYTES))
            .map(|slot| slot.and_then(decode_slot))
            .collect();
        let (largest, next_slot) = match (slots[0], slots[1]) {
            (Some(first), Some(second)) if second.size > first.size => (Some(second), 0),
            (Some(first), _) => (Some(first), 1),
            (None, Some(second)) => (Some(second), 0),
            (None, None) => (None, 0),
        };
        Ok(CheckpointFile {
            state: Mutex::new(State {
                file,
                largest,
                next_slot,
            }),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("the signed-checkpoint lock is poisoned".into()))
    }

    /// Records a checkpoint larger than any recorded, and returns once it is on disk; a smaller
    /// or equal size changes nothing (and costs no sync).
    pub fn record(&self, size: u64, root: &Hash) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        if state.largest.is_some_and(|largest| largest.size >= size) {
            return Ok(());
        }
        let checkpoint = SignedCheckpoint { size, root: *root };
        let offset = state.next_slot * SLOT_BYTES as u64;
        state
            .file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| state.file.write_all(&encode_slot(&checkpoint)))
            .and_then(|()| state.file.sync_data())
            .map_err(io_error)?;
        state.largest = Some(checkpoint);
        state.next_slot = 1 - state.next_slot;
        Ok(())
    }

    pub fn largest(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        Ok(self.lock()?.largest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_record_survives_reopening_and_a_torn_slot_falls_back_to_the_other() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("log.signed-checkpoint");
        let record = CheckpointFile::open(&path).unwrap();
        assert_eq!(record.largest().unwrap(), None);
        record.record(5, &[5; 32]).unwrap();
        record.record(9, &[9; 32]).unwrap();
        record.record(7, &[7; 32]).unwrap();
        drop(record);
        let reopened = CheckpointFile::open(&path).unwrap();
        let nine = SignedCheckpoint {
            size: 9,
            root: [9; 32],
        };
        assert_eq!(reopened.largest().unwrap(), Some(nine));
        drop(reopened);
        // Tear the slot holding size 9 as a crash mid-write would: size 5 is what is left.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SLOT_BYTES + 3] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let torn = CheckpointFile::open(&path).unwrap();
        assert_eq!(torn.largest().unwrap().map(|largest| largest.size), Some(5));
    }
}
