//! Periodic snapshots, made in the background while the node serves, so that a crash costs the
//! entries since the latest one instead of a full replay.
//!
//! Every `interval` entries the node asks the writer for a `mark_state` entry (cheap: it carries
//! no digest). A background thread then folds the node's own durable log from its newest
//! snapshot (or from nothing) to the mark, checking every link, stored hash, time and decision
//! but not the signatures, which the node checked on their way in; the fold must end at the
//! very hash the writer put in the mark, so it folded the entries the writer decided. It encodes
//! that state, and the writer appends an `attest_state` naming the mark's size and the digest.
//! Only once that attestation is durable is the snapshot file written, naming where the
//! attestation sits. Every replay keeps the digest of the state at each mark and re-decides the
//! attestation, so a snapshot is proven by the log exactly as a stopping node's is.
//!
//! **Invariant:** the writer never encodes the state for its own periodic snapshot; the fold
//! holds one extra ledger while it runs, never two (no fold while a start-up audit runs), at
//! most one fold runs at a time, and a failed one is tried again an interval later. Nodes
//! sharing a PostgreSQL log each mark on their own schedule; a node's writer, following another
//! node's mark, does encode the state (its replay must keep that mark's digest), and a mark
//! replaces another node's pending one, whose attestation is then refused and retried.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use projections::replay::MarkedState;
use projections::Replayer;

use super::SnapshotHeader;
use super::{encode, load, sha256, state_of, write_attested, AttestedState, SnapshotFileError};
use crate::store::EventStore;
use crate::transparency::{Appended, TreeState};

/// Why a periodic snapshot was not made.
#[derive(Debug, thiserror::Error)]
pub enum PeriodicError {
    #[error(transparent)]
    File(#[from] SnapshotFileError),
    #[error("the fold of the stored log to the mark failed: {0}")]
    Fold(#[from] crate::writer::CatchUpError),
    #[error("the stored log does not reach the mark at {0} with the hash the writer gave it")]
    MarkNotReached(u64),
    #[error("the writer did not append the snapshot's entry: {0}")]
    Submit(#[from] crate::writer::SubmitError),
    #[error("the background fold stopped: {0}")]
    Stopped(String),
}

/// When the next periodic snapshot is due, and the one lock every snapshot file is written under.
pub struct Schedule {
    /// Entries between two snapshots; 0 makes none.
    interval_entries: u64,
    /// The size of the newest snapshot this node started from or wrote, under the lock that
    /// keeps two writers (the periodic fold and a stopping node) from crossing.
    newest_size: Mutex<u64>,
    /// The published size when the last snapshot was claimed: a snapshot that failed (another
    /// node's mark replaced this one's, say) is tried again an interval later, not at once.
    last_claimed_size: AtomicU64,
    running: AtomicBool,
}

impl Schedule {
    pub fn new(interval_entries: u64, newest_size: u64) -> Schedule {
        Schedule {
            interval_entries,
            newest_size: Mutex::new(newest_size),
            last_claimed_size: AtomicU64::new(newest_size),
            running: AtomicBool::new(false),
        }
    }

    /// Claims the next periodic snapshot if one is due at `published_size` and none is running.
    pub fn claim(&self, published_size: u64) -> bool {
        let Ok(newest) = self.newest_size.lock().map(|size| *size) else {
            return false;
        };
        let since = newest.max(self.last_claimed_size.load(Ordering::Acquire));
        let due = self.interval_entries > 0
            && published_size >= since.saturating_add(self.interval_entries);
        let claimed = due
            && self
                .running
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if claimed {
            self.last_claimed_size
                .store(published_size, Ordering::Release);
        }
        claimed
    }

    /// Ends the claimed snapshot, made or not.
    pub fn release(&self) {
        self.running.store(false, Ordering::Release);
    }

    /// Writes `state` to `path` unless a snapshot at least as new was written meanwhile.
    pub fn write(
        &self,
        path: &Path,
        state: &AttestedState,
        key: &SigningKey,
    ) -> Result<Option<SnapshotHeader>, SnapshotFileError> {
        let mut newest = self.newest_size.lock().map_err(|_| {
            SnapshotFileError::Header("the snapshot schedule's lock is poisoned".into())
        })?;
        if state.size <= *newest && path.exists() {
            return Ok(None);
        }
        let header = write_attested(path, state, key)?;
        *newest = state.size;
        Ok(Some(header))
    }
}

/// Folds the stored log to the state at `mark`, starting from the snapshot at `path` when it
/// still passes every check of a start-up, else from nothing. Returns that state's snapshot
/// parts (its attestation position still to be filled in) and its digest.
pub fn fold_to_mark(
    store: &dyn EventStore,
    path: &Path,
    key: &SigningKey,
    origin: &str,
    mark: &Appended,
) -> Result<(AttestedState, MarkedState), PeriodicError> {
    let (mut replayer, mut tree) = match load(path, key, store, origin) {
        Ok(Some(loaded)) if loaded.header.size <= mark.position => (
            Replayer {
                ledger: loaded.ledger,
                marked: Some(MarkedState {
                    size: loaded.header.size,
                    ledger_sha256: loaded.header.ledger_sha256,
                }),
            },
            loaded.tree,
        ),
        Ok(_) => (Replayer::new(), TreeState::new(origin, key)),
        Err(error) => {
            tracing::warn!(%error, "the newest snapshot does not check; the periodic snapshot folds the whole log");
            (Replayer::new(), TreeState::new(origin, key))
        }
    };
    crate::writer::refold_own_entries(store, &mut replayer, mark.position, |event| {
        // The writer stores the tiles; this fold only needs the tree's state.
        drop(tree.push(event.leaf_hash));
    })?;
    check_reaches_mark(store, &replayer, mark)?;
    let (ledger_part, tree_part) = encode(&replayer.ledger, &tree);
    let marked = MarkedState {
        size: replayer.ledger.size,
        ledger_sha256: sha256(&ledger_part),
    };
    Ok((state_of(&replayer.ledger, ledger_part, tree_part), marked))
}

/// The fold stands just before the mark, and the mark the store holds is the one the writer
/// appended (its hash) and links to the hash the fold ends at.
fn check_reaches_mark(
    store: &dyn EventStore,
    replayer: &Replayer,
    mark: &Appended,
) -> Result<(), PeriodicError> {
    let not_reached = || PeriodicError::MarkNotReached(mark.position);
    if replayer.ledger.size != mark.position {
        return Err(not_reached());
    }
    let stored = store
        .read(mark.position, 1)
        .map_err(|error| PeriodicError::Fold(error.into()))?;
    let entry = stored.first().ok_or_else(not_reached)?;
    let linked = projections::protocol::entry_hash(&entry.bytes) == mark.entry_hash
        && projections::Entry::decode(&entry.bytes)
            .is_ok_and(|decoded| decoded.previous_hash == replayer.ledger.head_hash);
    if !linked {
        return Err(not_reached());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn a_snapshot_is_claimed_once_an_interval_is_published_and_a_failed_one_waits_another() {
        let schedule = Schedule::new(100, 40);
        assert!(
            !schedule.claim(139),
            "not yet an interval after the newest snapshot"
        );
        assert!(schedule.claim(140));
        assert!(!schedule.claim(500), "one runs at a time");
        schedule.release();
        assert!(
            !schedule.claim(239),
            "a failed snapshot is retried an interval later"
        );
        assert!(schedule.claim(240));
        schedule.release();
        assert!(
            !Schedule::new(0, 0).claim(u64::MAX),
            "an interval of 0 makes none"
        );
    }
}
