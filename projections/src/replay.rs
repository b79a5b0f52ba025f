//! Sealing new entries onto the chain and replaying stored ones, with every integrity check.
//!
//! The writer seals; start-up and `veche verify` replay. Both go through `decide`, so a log is
//! accepted on replay exactly when the server would have accepted it entry by entry.

use crate::command::{Action, Command, ParseError};
use crate::ledger::{Event, Ledger, Refusal};
use crate::protocol::{entry_hash, Entry, EntryError, EntryKind, Hash, PublicKey, SignatureError};
use crate::time::Timestamp;

/// A command whose signature has been checked, ready for the writer.
#[derive(Clone, Debug)]
pub struct SignedCommand {
    pub kind: EntryKind,
    pub signer: PublicKey,
    pub signature: [u8; 64],
    pub payload: Vec<u8>,
    pub command: Command,
}

impl SignedCommand {
    /// Signs `command` with `key` as an entry of `kind`: how the server signs its own events and
    /// how tools write logs offline (clients sign the same bytes on their side).
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        kind: EntryKind,
        command: Command,
    ) -> SignedCommand {
        let payload = command.to_payload();
        SignedCommand {
            kind,
            signer: crate::protocol::public_key_of(key),
            signature: crate::protocol::sign(key, kind, &payload),
            payload,
            command,
        }
    }
}

/// An entry ready to store: its bytes, its chain hash and its meaning.
#[derive(Clone, Debug)]
pub struct SealedEntry {
    pub bytes: Vec<u8>,
    pub event: Event,
}

/// The digest of the state at a `mark_state` (the ledger just before the mark's position):
/// what an `attest_state` naming that mark must name. A replayer computes it as it folds the
/// mark; the writer is handed it by the node's background snapshot, which folds the same
/// durable entries to the same state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkedState {
    pub size: u64,
    pub ledger_sha256: Hash,
}

/// Decides `signed` against `ledger` and, if accepted, lays it at the next position, linked to
/// the current head. Does not fold it in: the caller evolves once the entry is durable.
pub fn seal(
    ledger: &Ledger,
    signed: SignedCommand,
    server_time: Timestamp,
) -> Result<SealedEntry, Refusal> {
    seal_knowing(ledger, signed, server_time, None)
}

/// `seal`, knowing the digest of the state at the latest mark (needed only to decide an
/// attestation of that mark).
pub fn seal_knowing(
    ledger: &Ledger,
    signed: SignedCommand,
    server_time: Timestamp,
    marked: Option<&MarkedState>,
) -> Result<SealedEntry, Refusal> {
    decide(
        ledger,
        signed.kind,
        signed.signer,
        &signed.command,
        server_time,
        marked,
    )?;
    Ok(lay(ledger, signed, server_time))
}

/// The one way an entry is decided, at the writer (`seal`) and on replay alike: the ledger's own
/// rules, then, for a state attestation, the digest of the state it names: the ledger's
/// canonical encoding now, which costs one encoding of the whole state (so a stopping server
/// attests only before its snapshot), or the digest kept at the mark it names.
fn decide(
    ledger: &Ledger,
    kind: EntryKind,
    signer: PublicKey,
    command: &Command,
    server_time: Timestamp,
    marked: Option<&MarkedState>,
) -> Result<(), Refusal> {
    ledger.decide(kind, signer, command, server_time)?;
    if let Action::AttestState(attestation) = &command.action {
        let digest = if attestation.size == ledger.size {
            crate::ledger::snapshot::digest(ledger)
        } else {
            match marked {
                Some(marked) if marked.size == attestation.size => marked.ledger_sha256,
                _ => return Err(Refusal::StateDigestMismatch),
            }
        };
        if attestation.ledger_sha256 != hex::encode(digest) {
            return Err(Refusal::StateDigestMismatch);
        }
    }
    Ok(())
}

/// Lays `signed` at the next position, linked to the current head, without deciding it: `seal`
/// after its decision, and tests that play a server which appends what it should refuse.
pub fn lay(ledger: &Ledger, signed: SignedCommand, server_time: Timestamp) -> SealedEntry {
    let entry = Entry {
        kind: signed.kind,
        position: ledger.size,
        server_time,
        previous_hash: ledger.head_hash,
        signer: signed.signer,
        signature: signed.signature,
        payload: signed.payload,
    };
    let bytes = entry.encode();
    let event = Event {
        position: entry.position,
        server_time,
        kind: entry.kind,
        hash: entry_hash(&bytes),
        leaf_hash: crate::merkle::leaf_hash(&bytes),
        command: signed.command,
    };
    SealedEntry { bytes, event }
}

/// What is wrong with the first bad entry of a log.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ReplayFailure {
    #[error("the entry cannot be decoded: {0}")]
    Entry(#[from] EntryError),
    #[error("the entry says it is at position {found}")]
    PositionMismatch { found: u64 },
    #[error("the entry's previous hash does not match the hash of the entry before it")]
    BrokenLink,
    #[error("the stored hash differs from the hash of the entry's bytes")]
    StoredHashMismatch,
    #[error("the entry's server time is earlier than the entry before it")]
    TimeWentBackwards,
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("payload: {0}")]
    Payload(#[from] ParseError),
    #[error("the server should have refused this command: {0}")]
    Refused(#[from] Refusal),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("entry at position {position}: {failure}")]
pub struct ReplayError {
    pub position: u64,
    pub failure: ReplayFailure,
}

/// An entry whose self-contained checks passed (decoding, stored hash, signature, payload):
/// what is left is its place in the chain and the decision, which need the entries before it.
///
/// Checking is independent per entry, so a verifier spreads it over every core; `apply_checked`
/// then runs in log order.
#[derive(Clone, Debug)]
pub struct CheckedEntry {
    pub entry: Entry,
    pub hash: Hash,
    pub leaf_hash: Hash,
    pub command: Command,
}

/// Whether `check_entry` verifies the signature itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Strict single verification, as the server does on the way in.
    Strict,
    /// The caller has already verified this entry's signature (in a batch).
    AlreadyVerified,
}

/// Decodes and checks one entry on its own. `stored_hash` is the hash a store kept beside the
/// entry, when it keeps one.
pub fn check_entry(
    bytes: &[u8],
    stored_hash: Option<&Hash>,
    signature: SignatureCheck,
) -> Result<CheckedEntry, ReplayFailure> {
    let entry = Entry::decode(bytes)?;
    let hash = entry_hash(bytes);
    if stored_hash.is_some_and(|stored| *stored != hash) {
        return Err(ReplayFailure::StoredHashMismatch);
    }
    if signature == SignatureCheck::Strict {
        entry.verify_signature()?;
    }
    let command = Command::parse(&entry.payload)?;
    Ok(CheckedEntry {
        entry,
        hash,
        leaf_hash: crate::merkle::leaf_hash(bytes),
        command,
    })
}

/// Folds a log in order, checking each entry on the way in.
#[derive(Clone, Debug, Default)]
pub struct Replayer {
    pub ledger: Ledger,
    /// The digest of the state at the latest mark folded (or, for a replay that starts at a
    /// snapshot taken at a mark, at that mark, from the snapshot's checked digest).
    pub marked: Option<MarkedState>,
}

impl Replayer {
    pub fn new() -> Replayer {
        Replayer::resuming(Ledger::new())
    }

    /// A replay that goes on from `ledger`, knowing no mark.
    pub fn resuming(ledger: Ledger) -> Replayer {
        Replayer {
            ledger,
            marked: None,
        }
    }

    /// Checks and folds the next entry, verifying its signature strictly.
    pub fn apply(
        &mut self,
        bytes: &[u8],
        stored_hash: Option<&Hash>,
    ) -> Result<Event, ReplayError> {
        let position = self.ledger.size;
        let checked = check_entry(bytes, stored_hash, SignatureCheck::Strict)
            .map_err(|failure| ReplayError { position, failure })?;
        self.apply_checked(checked)
    }

    /// Folds the next entry, already checked on its own by `check_entry`: checks its position,
    /// its link to the entry before, its time and the decision.
    pub fn apply_checked(&mut self, checked: CheckedEntry) -> Result<Event, ReplayError> {
        let position = self.ledger.size;
        let fail = |failure: ReplayFailure| ReplayError { position, failure };
        let CheckedEntry {
            entry,
            hash,
            leaf_hash,
            command,
        } = checked;
        if entry.position != position {
            return Err(fail(ReplayFailure::PositionMismatch {
                found: entry.position,
            }));
        }
        if entry.previous_hash != self.ledger.head_hash {
            return Err(fail(ReplayFailure::BrokenLink));
        }
        if entry.server_time < self.ledger.last_server_time {
            return Err(fail(ReplayFailure::TimeWentBackwards));
        }
        decide(
            &self.ledger,
            entry.kind,
            entry.signer,
            &command,
            entry.server_time,
            self.marked.as_ref(),
        )
        .map_err(|refusal| fail(refusal.into()))?;
        if let Action::MarkState(_) = &command.action {
            self.keep_marked_state();
        }
        let event = Event {
            position,
            server_time: entry.server_time,
            kind: entry.kind,
            hash,
            leaf_hash,
            command,
        };
        self.ledger.evolve(&event);
        Ok(event)
    }

    /// Keeps the digest of the state as it stands, at a mark: one encoding of the whole state,
    /// the replay's price for the attestation that will name it. A replay started from a
    /// snapshot at this very mark already holds it.
    fn keep_marked_state(&mut self) {
        let size = self.ledger.size;
        if self.marked.is_some_and(|marked| marked.size == size) {
            return;
        }
        self.marked = Some(MarkedState {
            size,
            ledger_sha256: crate::ledger::snapshot::digest(&self.ledger),
        });
    }
}
