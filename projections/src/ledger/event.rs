//! One appended event, as every aggregate folds it: the entry's header facts and its parsed payload.

use crate::command::Command;
use crate::protocol::{EntryKind, Hash, PublicKey};
use crate::time::Timestamp;

/// One appended event: an entry's header facts plus its parsed payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub position: u64,
    pub server_time: Timestamp,
    pub kind: EntryKind,
    pub hash: Hash,
    /// The entry's leaf hash in the Merkle tree over the log.
    pub leaf_hash: Hash,
    pub command: Command,
}

/// A command being decided: who asks, at what server time, for which action (by name, for the
/// refusals that say which action a status does not allow).
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    pub author: PublicKey,
    pub at: Timestamp,
    pub action_name: &'static str,
}
