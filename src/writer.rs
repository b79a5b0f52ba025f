//! The single writer: decides, chains and group-commits, one batch per fsync.
//!
//! Invariant: only this thread appends. It owns a working copy of the ledger that runs ahead of
//! the published one by at most one uncommitted batch; the published ledger only ever sees
//! durable events, and a request is answered only after its event is durable.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use projections::content::CheckedPiece;
use projections::protocol::public_key_of;
use projections::replay::{seal, seal_knowing, MarkedState};
use projections::{
    Action, Command, Event, Hash, Ledger, Refusal, SealedEntry, SignedCommand, Timestamp,
};
use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::envelope::sign_system;
use crate::store::{EventStore, StoreError, StoredEntry};
pub use crate::transparency::Appended;
use crate::transparency::TreeState;

/// A system event the writer appended, with its action's name for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendedSystemEvent {
    pub action: &'static str,
    pub appended: Appended,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the writer queue is full")]
    Overloaded,
    #[error("the log store is unavailable: {0}")]
    StoreUnavailable(String),
    #[error("the writer has stopped")]
    Stopped,
    #[error("this node met an impossible state and refuses writes until it restarts: {0}")]
    Faulted(String),
}

type Reply<T> = oneshot::Sender<Result<T, SubmitError>>;

pub enum Submission {
    /// Fold in entries other nodes appended (a Redis announcement says there are some).
    Follow,
    Command {
        signed: Box<SignedCommand>,
        /// The content the command commits to, checked against its commitments; stored beside
        /// the entry in the same transaction.
        content: Vec<CheckedPiece>,
        reply: Reply<Appended>,
    },
    DueSystemEvents {
        reply: Reply<Vec<AppendedSystemEvent>>,
    },
    /// Append an `attest_state` entry for the state every entry before it folds to, and hand
    /// back that state's snapshot parts (a stopping node's start-up snapshot).
    AttestState { reply: Reply<AttestedState> },
    /// Append one entry of the periodic snapshot's protocol (`snapshot::periodic`).
    State {
        request: StateRequest,
        reply: Reply<Appended>,
    },
}

/// What the periodic snapshot asks the writer to append.
#[derive(Clone, Copy, Debug)]
pub enum StateRequest {
    /// A `mark_state` of the state every entry before it folds to.
    Mark,
    /// The `attest_state` of the state at the latest mark, whose digest the background fold
    /// of the durable log to that mark found.
    AttestMark(MarkedState),
}

/// A state the log attests (the `attest_state` entry at position `size` names its ledger
/// part's digest), in the encodings a start-up snapshot is made of.
pub struct AttestedState {
    pub size: u64,
    /// Where the attestation sits: `size` itself, or later, after a mark at `size`.
    pub attestation_position: u64,
    pub head_hash: Hash,
    pub merkle_root: Hash,
    pub ledger_part: Vec<u8>,
    pub tree_part: Vec<u8>,
}

/// An attestation sealed in the batch being committed: its state's ledger part, taken from the
/// working ledger when sealed, and its tree part, taken from the published tree on the way to
/// publishing the attestation itself.
struct Capture {
    state: AttestedState,
    tree_taken: bool,
}

/// What a batch decided: the sealed entries, and each submission's outcome.
type Decided = (Vec<SealedEntry>, Vec<Outcome>);

/// A sealed entry as the store keeps it, with the content its command commits to beside it.
fn stored_entry(entry: &SealedEntry, content: &[CheckedPiece]) -> StoredEntry {
    let position = entry.event.position;
    StoredEntry {
        position,
        bytes: entry.bytes.clone(),
        hash: entry.event.hash,
        content: content
            .iter()
            .map(|checked| crate::store::StoredContent {
                position,
                commitment: checked.commitment.0,
                piece: Some((checked.piece.salt, checked.piece.text.clone())),
                erased_by: None,
            })
            .collect(),
        erases: entry.event.command.action.erased_entry(),
    }
}

/// The sending side, cloned into every request handler.
#[derive(Clone)]
pub struct WriterHandle {
    sender: SyncSender<Submission>,
}

impl WriterHandle {
    pub async fn submit(
        &self,
        signed: SignedCommand,
        content: Vec<CheckedPiece>,
    ) -> Result<Appended, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.send(Submission::Command {
            signed: Box::new(signed),
            content,
            reply,
        })?;
        Self::wait(answer).await
    }

    /// Waits for the writer, but never longer than `WRITER_REPLY_MS_MAX`.
    async fn wait<T>(answer: oneshot::Receiver<Result<T, SubmitError>>) -> Result<T, SubmitError> {
        Self::wait_at_most(answer, projections::limits::WRITER_REPLY_MS_MAX).await
    }

    async fn wait_at_most<T>(
        answer: oneshot::Receiver<Result<T, SubmitError>>,
        milliseconds_max: u64,
    ) -> Result<T, SubmitError> {
        let bound = Duration::from_millis(milliseconds_max);
        match tokio::time::timeout(bound, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(SubmitError::Stopped),
            Err(_) => Err(SubmitError::StoreUnavailable(
                "the log store did not answer in time".into(),
            )),
        }
    }

    pub async fn append_due_system_events(&self) -> Result<Vec<AppendedSystemEvent>, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.send(Submission::DueSystemEvents { reply })?;
        Self::wait(answer).await
    }

    pub async fn attest_state(&self) -> Result<AttestedState, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.send(Submission::AttestState { reply })?;
        Self::wait_at_most(answer, projections::limits::STATE_ATTESTATION_MS_MAX).await
    }

    /// Appends one entry of the periodic snapshot's protocol.
    pub async fn append_state_entry(&self, request: StateRequest) -> Result<Appended, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.send(Submission::State { request, reply })?;
        Self::wait(answer).await
    }

    /// Asks the writer to look for other nodes' entries now rather than at its next idle tick.
    pub fn follow_now(&self) {
        let _ = self.sender.try_send(Submission::Follow);
    }

    fn send(&self, submission: Submission) -> Result<(), SubmitError> {
        self.sender
            .try_send(submission)
            .map_err(|error| match error {
                TrySendError::Full(_) => SubmitError::Overloaded,
                TrySendError::Disconnected(_) => SubmitError::Stopped,
            })
    }
}

pub struct Writer {
    observers: Arc<crate::metrics::Observers>,
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    server_key: SigningKey,
    working: Ledger,
    published: Arc<RwLock<Ledger>>,
    tree: Arc<RwLock<TreeState>>,
    recent: Arc<Mutex<RecentCommands>>,
    /// Hash tiles completed by published events, waiting to be stored.
    pending_tiles: Vec<crate::store::StoredTile>,
    /// Attestations of the batch being committed, by position; empty between batches.
    captures: Vec<Capture>,
    /// The digest of the state at the latest mark another node appended, kept by the replay
    /// that followed it (this node's own marks are attested with the digest its background
    /// snapshot finds).
    followed_mark: Option<MarkedState>,
    receiver: Receiver<Submission>,
}

/// What the writer publishes and the node reads: the ledger, the Merkle tree, and the positions
/// of recent commands.
pub struct Published {
    pub ledger: Arc<RwLock<Ledger>>,
    pub tree: Arc<RwLock<TreeState>>,
    pub recent: Arc<Mutex<RecentCommands>>,
}

/// Where recently appended commands sit, by (author, nonce), for every event published here,
/// including those other nodes appended: lets a retried envelope find its original entry.
///
/// Invariant: holds at most `RECENT_COMMAND_POSITIONS_MAX` commands, the newest; older than the
/// freshness window (with the allowed clock skew) they are forgotten, since a retry that old is
/// refused as stale before its nonce is looked at.
#[derive(Debug, Default)]
pub struct RecentCommands {
    positions: HashMap<(projections::PublicKey, String), u64>,
    /// In log order: when each was appended, and its key in `positions`.
    order: VecDeque<(Timestamp, (projections::PublicKey, String))>,
}

/// How long a command is remembered: past that, a retry of it is refused as stale anyway.
fn recent_horizon(server_time: Timestamp) -> Timestamp {
    server_time.plus_milliseconds(
        -(projections::limits::COMMAND_AGE_MS_MAX + projections::limits::COMMAND_FUTURE_MS_MAX),
    )
}

impl RecentCommands {
    /// The recent commands of the stored log's last entries, read back from its end: what the
    /// node had published before it stopped, so a client retrying across a restart still gets
    /// its original receipt. Reads at most `RECENT_COMMAND_POSITIONS_MAX` entries, and only
    /// those inside the freshness window of the last one.
    pub fn recover(store: &dyn EventStore, size: u64) -> Result<RecentCommands, StoreError> {
        let mut kept: Vec<projections::protocol::Entry> = Vec::new();
        let mut end = size;
        let mut horizon = None;
        while end > 0 && kept.len() < projections::limits::RECENT_COMMAND_POSITIONS_MAX {
            let from = end.saturating_sub(projections::limits::REPLAY_PAGE_ENTRIES as u64);
            let page = store.read(from, (end - from) as usize)?;
            for stored in page.into_iter().rev() {
                let entry = decode_verified(&stored.bytes)?;
                let horizon = *horizon.get_or_insert_with(|| recent_horizon(entry.server_time));
                if entry.server_time < horizon {
                    return Self::of_entries(kept);
                }
                kept.push(entry);
            }
            end = from;
        }
        Self::of_entries(kept)
    }

    /// Records `newest_first` in log order.
    fn of_entries(
        newest_first: Vec<projections::protocol::Entry>,
    ) -> Result<RecentCommands, StoreError> {
        let mut recent = RecentCommands::default();
        for entry in newest_first.into_iter().rev() {
            let command = projections::Command::parse(&entry.payload).map_err(|error| {
                StoreError::Corrupt(format!(
                    "the verified entry at position {} does not parse: {error}",
                    entry.position
                ))
            })?;
            recent.remember(
                entry.position,
                entry.server_time,
                command.author,
                command.nonce,
            );
        }
        Ok(recent)
    }

    /// Remembers a published event's position and forgets what fell out of the window or bound.
    pub fn record(&mut self, event: &Event) {
        self.remember(
            event.position,
            event.server_time,
            event.command.author,
            event.command.nonce.clone(),
        );
    }

    fn remember(
        &mut self,
        position: u64,
        server_time: Timestamp,
        author: projections::PublicKey,
        nonce: String,
    ) {
        let key = (author, nonce);
        self.positions.insert(key.clone(), position);
        self.order.push_back((server_time, key));
        let horizon = recent_horizon(server_time);
        while let Some((appended_at, _)) = self.order.front() {
            let full = self.order.len() > projections::limits::RECENT_COMMAND_POSITIONS_MAX;
            if !full && *appended_at >= horizon {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.positions.remove(&key);
            }
        }
    }

    /// The position of the command `author` appended with `nonce`, if it is recent.
    pub fn position(&self, author: projections::PublicKey, nonce: &str) -> Option<u64> {
        self.positions.get(&(author, nonce.to_string())).copied()
    }
}

/// A stored entry the node has verified, decoded again; one that no longer decodes was changed
/// behind the node's back.
fn decode_verified(bytes: &[u8]) -> Result<projections::protocol::Entry, StoreError> {
    projections::protocol::Entry::decode(bytes)
        .map_err(|error| StoreError::Corrupt(format!("a verified entry does not decode: {error}")))
}

/// What one submission of a batch came to, once decided.
enum Outcome {
    /// Its entries are `sealed[range]`.
    Sealed(std::ops::Range<usize>),
    Refused(Refusal),
}

impl Writer {
    pub fn spawn(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        server_key: SigningKey,
        shared: Published,
        observers: Arc<crate::metrics::Observers>,
        queue_commands_max: usize,
    ) -> std::io::Result<(WriterHandle, std::thread::JoinHandle<()>)> {
        let Published {
            ledger: published,
            tree,
            recent,
        } = shared;
        let (sender, receiver) = std::sync::mpsc::sync_channel(queue_commands_max);
        let working = match published.read() {
            Ok(ledger) => ledger.clone(),
            Err(poisoned) => {
                observers.record_fault("the published ledger's lock is poisoned");
                poisoned.into_inner().clone()
            }
        };
        let writer = Writer {
            observers,
            store,
            clock,
            server_key,
            working,
            published,
            tree,
            recent,
            pending_tiles: Vec::new(),
            captures: Vec::new(),
            followed_mark: None,
            receiver,
        };
        let thread = std::thread::Builder::new()
            .name("veche-writer".into())
            .spawn(move || writer.run())?;
        Ok((WriterHandle { sender }, thread))
    }

    fn run(mut self) {
        tracing::info!(store = self.store.backend_name(), "log writer started");
        loop {
            let first = match self.receiver.recv_timeout(Duration::from_millis(
                projections::limits::WRITER_FOLLOW_INTERVAL_MS,
            )) {
                Ok(submission) => submission,
                Err(RecvTimeoutError::Timeout) => {
                    self.follow();
                    self.store_completed_tiles();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            while batch.len() < projections::limits::WRITER_BATCH_COMMANDS_MAX {
                match self.receiver.try_recv() {
                    Ok(submission) => batch.push(submission),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
            self.store_completed_tiles();
        }
        tracing::info!("log writer stopped: every handle was dropped");
    }

    /// Folds in entries that other nodes appended to a shared store.
    fn follow(&mut self) {
        match self.store.size() {
            Ok(size) if size > self.working.size => self.fold_stored(),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read the log size to follow other nodes"),
        }
    }

    /// Decides every submission against the working ledger, folding accepted ones in so that
    /// later submissions of the batch see them.
    fn decide_batch(&mut self, batch: &[Submission]) -> (Vec<StoredEntry>, Decided) {
        // Server time never runs backwards along the chain, whatever the wall clock does.
        let server_time = self.clock.now().max(self.working.last_server_time);
        let mut sealed: Vec<SealedEntry> = Vec::with_capacity(batch.len());
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut stored = Vec::with_capacity(batch.len());
        for submission in batch {
            let start = sealed.len();
            match submission {
                Submission::Command {
                    signed, content, ..
                } => match seal(&self.working, (**signed).clone(), server_time) {
                    Ok(entry) => {
                        self.working.evolve(&entry.event);
                        stored.push(stored_entry(&entry, content));
                        sealed.push(entry);
                    }
                    Err(refusal) => {
                        outcomes.push(Outcome::Refused(refusal));
                        continue;
                    }
                },
                Submission::Follow => {}
                Submission::DueSystemEvents { .. } => {
                    self.seal_due_system_events(server_time, &mut sealed);
                    let system = sealed[start..].iter();
                    stored.extend(system.map(|entry| stored_entry(entry, &[])));
                }
                Submission::AttestState { .. } => {
                    if let Err(refusal) = self.seal_attestation(server_time, &mut sealed) {
                        outcomes.push(Outcome::Refused(refusal));
                        continue;
                    }
                    let attestation = sealed[start..].iter();
                    stored.extend(attestation.map(|entry| stored_entry(entry, &[])));
                }
                Submission::State { request, .. } => {
                    match self.seal_state_entry(*request, server_time) {
                        Ok(entry) => {
                            self.working.evolve(&entry.event);
                            stored.push(stored_entry(&entry, &[]));
                            sealed.push(entry);
                        }
                        Err(refusal) => {
                            outcomes.push(Outcome::Refused(refusal));
                            continue;
                        }
                    }
                }
            }
            outcomes.push(Outcome::Sealed(start..sealed.len()));
        }
        (stored, (sealed, outcomes))
    }

    fn commit_batch(&mut self, batch: Vec<Submission>) {
        let store = self.store.clone();
        let mut decided = None;
        let started = std::time::Instant::now();
        // Decided inside the store's append lock, after folding in whatever other nodes appended:
        // a command is judged against the latest committed log and never loses a race.
        let appended = store.append_following(self.working.size, &mut |others| {
            self.fold_entries(others);
            let (stored, sealed_and_outcomes) = self.decide_batch(&batch);
            decided = Some(sealed_and_outcomes);
            stored
        });
        let append_microseconds = started.elapsed().as_micros() as u64;
        let result = match (appended, decided) {
            (Ok(()), Some((sealed, outcomes))) => self.publish(&sealed).map(|()| {
                let now = self.clock.now().milliseconds();
                self.observers.record_store_write(true, now);
                // A batch whose every command was refused appended nothing: no batch committed.
                if !sealed.is_empty() {
                    self.observers
                        .record_batch(sealed.len(), append_microseconds);
                }
                let refused = outcomes
                    .iter()
                    .filter(|outcome| matches!(outcome, Outcome::Refused(_)))
                    .count();
                crate::metrics::Observers::count(&self.observers.commands_refused, refused as u64);
                (sealed, outcomes)
            }),
            (Ok(()), None) => Err(StoreError::Unavailable(
                "the store appended without asking for a batch".into(),
            )),
            (Err(error), _) => {
                crate::metrics::Observers::count(&self.observers.batch_failures, 1);
                let now = self.clock.now().milliseconds();
                self.observers.record_store_write(false, now);
                tracing::error!(%error, "appending a batch failed; its commands are refused");
                self.resynchronise();
                Err(error)
            }
        };
        // What the batch captured is answered now or never: a failed batch is decided again.
        let captures = std::mem::take(&mut self.captures);
        match result {
            Ok((sealed, outcomes)) => self.answer_committed(batch, &sealed, outcomes, captures),
            Err(error) => Self::answer_failed(batch, &error.to_string()),
        }
    }

    /// Answers every submission of a batch the store did not take.
    fn answer_failed(batch: Vec<Submission>, message: &str) {
        let failure = || SubmitError::StoreUnavailable(message.to_string());
        for submission in batch {
            match submission {
                Submission::Command { reply, .. } => {
                    let _ = reply.send(Err(failure()));
                }
                Submission::DueSystemEvents { reply } => {
                    let _ = reply.send(Err(failure()));
                }
                Submission::AttestState { reply } => {
                    let _ = reply.send(Err(failure()));
                }
                Submission::State { reply, .. } => {
                    let _ = reply.send(Err(failure()));
                }
                Submission::Follow => {}
            }
        }
    }

    /// Answers each submission of a committed batch with its receipts or its refusal.
    fn answer_committed(
        &self,
        batch: Vec<Submission>,
        sealed: &[SealedEntry],
        outcomes: Vec<Outcome>,
        mut captures: Vec<Capture>,
    ) {
        for (submission, outcome) in batch.into_iter().zip(outcomes) {
            match (submission, outcome) {
                (Submission::Command { reply, .. }, Outcome::Sealed(range))
                | (Submission::State { reply, .. }, Outcome::Sealed(range)) => {
                    let _ = reply.send(self.the_one_appended(&sealed[range]));
                }
                (Submission::State { reply, .. }, Outcome::Refused(refusal)) => {
                    let _ = reply.send(Err(refusal.into()));
                }
                (Submission::DueSystemEvents { reply }, Outcome::Sealed(range)) => {
                    let appended = sealed[range]
                        .iter()
                        .map(|entry| AppendedSystemEvent {
                            action: entry.event.command.action.name(),
                            appended: Appended::of(&entry.event),
                        })
                        .collect();
                    let _ = reply.send(Ok(appended));
                }
                (Submission::Command { reply, .. }, Outcome::Refused(refusal)) => {
                    let _ = reply.send(Err(refusal.into()));
                }
                (Submission::DueSystemEvents { reply }, Outcome::Refused(refusal)) => {
                    let _ = reply.send(Err(refusal.into()));
                }
                (Submission::AttestState { reply }, Outcome::Sealed(range)) => {
                    let answer = self.attested(&sealed[range], &mut captures);
                    let _ = reply.send(answer);
                }
                (Submission::AttestState { reply }, Outcome::Refused(refusal)) => {
                    let _ = reply.send(Err(refusal.into()));
                }
                (Submission::Follow, _) => {}
            }
        }
    }

    /// Where the one entry a submission sealed sits; more or fewer is a fault.
    fn the_one_appended(&self, entries: &[SealedEntry]) -> Result<Appended, SubmitError> {
        match entries {
            [entry] => Ok(Appended::of(&entry.event)),
            entries => {
                let fault = format!(
                    "one submission sealed as {} entries, not one",
                    entries.len()
                );
                self.observers.record_fault(&fault);
                Err(SubmitError::Faulted(fault))
            }
        }
    }

    /// Seals a mark of the working ledger, or the attestation of the state at the latest mark.
    fn seal_state_entry(
        &self,
        request: StateRequest,
        server_time: Timestamp,
    ) -> Result<SealedEntry, Refusal> {
        match request {
            StateRequest::Mark => {
                // This node's own mark: its digest comes from the background snapshot. A
                // followed mark's digest stays: if this batch fails, that mark is still the
                // pending one, and once this mark is durable the digest no longer matches.
                let mark = projections::command::StateMark {
                    size: self.working.size,
                };
                self.seal_system(Action::MarkState(mark), server_time)
            }
            StateRequest::AttestMark(marked) => {
                let action = Action::AttestState(projections::command::StateAttestation {
                    size: marked.size,
                    ledger_sha256: hex::encode(marked.ledger_sha256),
                });
                self.seal_system_knowing(action, server_time, Some(&marked))
            }
        }
    }

    /// Seals every system event due at `server_time`, folding each into the working ledger.
    fn seal_due_system_events(&mut self, server_time: Timestamp, sealed: &mut Vec<SealedEntry>) {
        for mut action in self.working.due_system_actions(server_time) {
            // A close pins the tree just before it, and every event sealed before it in this
            // batch grew that tree: name the tree as it is now, not as it was when listed.
            if let Action::ClosePoll(close) = &mut action {
                close.checkpoint = self.working.checkpoint_reference();
            }
            let name = action.name();
            match self.seal_system(action, server_time) {
                Ok(entry) => {
                    self.working.evolve(&entry.event);
                    sealed.push(entry);
                }
                Err(refusal) => {
                    // The ledger listed it as due and the server signed it: refusing it means
                    // the ledger disagrees with itself.
                    tracing::error!(action = name, %refusal, "a due system event was refused");
                    self.observers
                        .record_fault("the ledger refused a system event it listed as due");
                }
            }
        }
    }

    /// Seals an attestation of the working ledger as it stands, keeping its ledger part for the
    /// snapshot the attestation is for.
    fn seal_attestation(
        &mut self,
        server_time: Timestamp,
        sealed: &mut Vec<SealedEntry>,
    ) -> Result<(), Refusal> {
        let mut ledger_part = Vec::new();
        projections::ledger::snapshot::encode(&self.working, &mut ledger_part);
        let digest: Hash = <sha2::Sha256 as sha2::Digest>::digest(&ledger_part).into();
        let action = Action::AttestState(projections::command::StateAttestation {
            size: self.working.size,
            ledger_sha256: hex::encode(digest),
        });
        let entry = self.seal_system(action, server_time)?;
        self.captures.push(Capture {
            state: AttestedState {
                size: self.working.size,
                attestation_position: self.working.size,
                head_hash: self.working.head_hash,
                merkle_root: self.working.merkle.root(),
                ledger_part,
                tree_part: Vec::new(),
            },
            tree_taken: false,
        });
        self.working.evolve(&entry.event);
        sealed.push(entry);
        Ok(())
    }

    /// The captured state of the one attestation in `entries`, once published.
    fn attested(
        &self,
        entries: &[SealedEntry],
        captures: &mut Vec<Capture>,
    ) -> Result<AttestedState, SubmitError> {
        let [entry] = entries else {
            let fault = format!("one attestation sealed as {} entries", entries.len());
            self.observers.record_fault(&fault);
            return Err(SubmitError::Faulted(fault));
        };
        let found = captures
            .iter()
            .position(|capture| capture.state.size == entry.event.position);
        match found.map(|index| captures.swap_remove(index)) {
            Some(capture) if capture.tree_taken => Ok(capture.state),
            _ => {
                let fault = "an attestation was published without its tree part".to_string();
                self.observers.record_fault(&fault);
                Err(SubmitError::Faulted(fault))
            }
        }
    }

    fn seal_system(&self, action: Action, server_time: Timestamp) -> Result<SealedEntry, Refusal> {
        self.seal_system_knowing(action, server_time, None)
    }

    fn seal_system_knowing(
        &self,
        action: Action,
        server_time: Timestamp,
        marked: Option<&MarkedState>,
    ) -> Result<SealedEntry, Refusal> {
        let command = Command {
            author: public_key_of(&self.server_key),
            nonce: format!("{:032x}", self.working.size),
            issued_at: server_time,
            action,
        };
        let signed = sign_system(&self.server_key, command);
        seal_knowing(&self.working, signed, server_time, marked)
    }

    fn publish(&mut self, sealed: &[SealedEntry]) -> Result<(), StoreError> {
        self.publish_events(sealed.iter().map(|entry| &entry.event))
    }

    /// Folds durable events into the published ledger and the Merkle tree, signs a checkpoint
    /// over the new size, and wakes live subscribers.
    ///
    /// Crash safety of the signed-checkpoint record: the working ledger already stands at the
    /// size about to be published, and its entries are durable (committed before this is
    /// called). The record is made durable (synced, or committed on PostgreSQL) before the
    /// checkpoint is signed and published, so every checkpoint a client ever sees is covered by
    /// the record. A crash after the commit and before the record leaves a record smaller than
    /// the log, which start-up accepts; the record never runs ahead of the durable log, so a
    /// crash can never leave a log shorter than its record and brick the next start. When the
    /// record cannot be made, nothing is published: the working ledger goes back to the
    /// published one, and the entries, durable in the store, are folded in (and recorded) by a
    /// later follow, as after an append that failed once committed.
    fn publish_events<'a>(
        &mut self,
        events: impl Iterator<Item = &'a Event> + Clone,
    ) -> Result<(), StoreError> {
        if let Err(error) = self
            .store
            .record_signed_checkpoint(self.working.size, &self.working.merkle.root())
        {
            crate::metrics::Observers::count(&self.observers.batch_failures, 1);
            tracing::error!(%error, "cannot record the checkpoint about to be signed; publishing nothing");
            match self.published.read().map(|ledger| ledger.clone()) {
                Ok(published) => self.working = published,
                Err(_) => self
                    .observers
                    .record_fault("the published ledger's lock is poisoned"),
            }
            return Err(error);
        }
        let mut completed_tiles = Vec::new();
        let captures = &mut self.captures;
        match self.tree.write() {
            Ok(mut tree) => {
                for event in events.clone() {
                    // An attestation's snapshot holds the tree just before the attestation.
                    for capture in captures.iter_mut() {
                        if capture.state.size == event.position && tree.size() == event.position {
                            tree.encode(&mut capture.state.tree_part);
                            capture.tree_taken = true;
                        }
                    }
                    completed_tiles.extend(tree.push(event.leaf_hash));
                }
                tree.sign(&self.server_key);
            }
            Err(_) => self
                .observers
                .record_fault("the published Merkle tree's lock is poisoned"),
        }
        // Before the ledger: whoever the ledger refuses as a replay must find the position here.
        match self.recent.lock() {
            Ok(mut recent) => {
                for event in events.clone() {
                    recent.record(event);
                }
            }
            Err(_) => self
                .observers
                .record_fault("the recent commands' lock is poisoned"),
        }
        match self.published.write() {
            Ok(mut ledger) => {
                for event in events {
                    ledger.evolve(event);
                }
                self.observers.published_size.send_replace(ledger.size);
            }
            Err(_) => self
                .observers
                .record_fault("the published ledger's lock is poisoned"),
        }
        self.pending_tiles.extend(completed_tiles);
        Ok(())
    }

    /// Stores the hash tiles completed since the last call. Never called inside the store's
    /// append lock: a store may serve both on one connection.
    fn store_completed_tiles(&mut self) {
        if self.pending_tiles.is_empty() {
            return;
        }
        let tiles = std::mem::take(&mut self.pending_tiles);
        // Tiles are derived from the log: a failed write costs only old-leaf proofs until the
        // next start-up rewrites them, never an event. A tile already stored with other hashes
        // (written ahead by someone with access to the store) is replaced by this one.
        if let Err(error) = crate::transparency::store_recomputed_tiles(&*self.store, &tiles) {
            tracing::warn!(%error, tiles = tiles.len(), "storing completed hash tiles failed");
        }
    }

    /// After a failed or conflicting append the working ledger may hold events that never
    /// became durable: start again from the published ledger, then fold in whatever the store
    /// holds beyond it (another node's entries, or an append that failed after its commit).
    fn resynchronise(&mut self) {
        let Ok(published) = self.published.read().map(|ledger| ledger.clone()) else {
            self.observers
                .record_fault("the published ledger's lock is poisoned");
            return;
        };
        self.working = published;
        self.fold_stored();
    }

    /// Folds entries the store holds beyond the working ledger into it and into the published
    /// ledger. Only called when the two are equal (between batches, or just after a reset).
    fn fold_stored(&mut self) {
        let mut replayer = projections::Replayer {
            ledger: std::mem::take(&mut self.working),
            marked: self.followed_mark.take(),
        };
        let mut folded = Vec::new();
        let outcome = catch_up(&*self.store, &mut replayer, |event| {
            folded.push(event.clone())
        });
        self.working = replayer.ledger;
        self.followed_mark = replayer.marked;
        match outcome {
            Ok(_) => {}
            // The store did not answer: nothing is wrong with the log, and the next follow reads on.
            Err(CatchUpError::Store(error)) => {
                tracing::warn!(%error, "reading the shared log failed; following again on the next tick");
            }
            // A bad entry from another node must not be served; stop folding at it.
            Err(error) => {
                tracing::error!(%error, "an entry in the shared log does not verify; not following past it");
            }
        }
        self.publish_followed(&folded);
    }

    /// Folds entries read under the append lock (other nodes' appends), checking each through
    /// the replay pipeline: their signatures in one batch equation (with strict checks naming a
    /// bad one, so it accepts exactly what strict checks do), about half a strict check's time
    /// each, which every other node's writer spends while holding the shared append lock.
    fn fold_entries(&mut self, entries: Vec<StoredEntry>) {
        use veche_verifier::pipeline::{replay, PipelineOptions};
        // The common case on one node, once per batch: setting up the pipeline asks the kernel
        // for the machine's cores (cgroup files), which the ingest profile showed at 3 % of the
        // server's CPU for nothing to fold.
        if entries.is_empty() {
            return;
        }
        let mut replayer = projections::Replayer {
            ledger: std::mem::take(&mut self.working),
            marked: self.followed_mark.take(),
        };
        let mut folded = Vec::new();
        let mut in_hand = InHand(entries.into_iter());
        let outcome = replay(
            &mut in_hand,
            &mut replayer,
            PipelineOptions::every_core(),
            |each| {
                folded.push(each.event.clone());
                Ok::<(), std::convert::Infallible>(())
            },
        );
        if let Err(error) = outcome {
            tracing::error!(%error, "an entry in the shared log does not verify; not following past it");
        }
        self.working = replayer.ledger;
        self.followed_mark = replayer.marked;
        self.publish_followed(&folded);
    }

    fn publish_followed(&mut self, folded: &[Event]) {
        if !folded.is_empty() {
            tracing::debug!(
                events = folded.len(),
                "folded in entries appended elsewhere"
            );
            crate::metrics::Observers::count(&self.observers.entries_followed, folded.len() as u64);
            // A failure is logged and rolled back inside; the next follow tries again.
            let _ = self.publish_events(folded.iter());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Replay(#[from] projections::ReplayError),
    /// A checking thread panicked: its entries count as failed, never as skipped (the policy
    /// of `veche_verifier::pipeline`).
    #[error("position {position}: a checking thread panicked")]
    CheckerPanicked { position: u64 },
}

impl veche_verifier::pipeline::EntryRecord for StoredEntry {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn stored_hash(&self) -> Option<&Hash> {
        Some(&self.hash)
    }
}

/// Entries already read (under the append lock), handed to the replay pipeline a page at a time.
struct InHand(std::vec::IntoIter<StoredEntry>);

impl veche_verifier::pipeline::EntryReader for InHand {
    type Record = StoredEntry;
    type Error = std::convert::Infallible;

    fn read_page(&mut self, limit: usize) -> Result<Vec<StoredEntry>, std::convert::Infallible> {
        Ok(self.0.by_ref().take(limit).collect())
    }
}

/// The store read page by page from a position on, for the replay pipeline.
struct StoreReader<'store> {
    store: &'store dyn EventStore,
    next: u64,
}

impl veche_verifier::pipeline::EntryReader for StoreReader<'_> {
    type Record = StoredEntry;
    type Error = StoreError;

    fn read_page(&mut self, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        let page = self.store.read(self.next, limit)?;
        self.next += page.len() as u64;
        Ok(page)
    }
}

/// Folds every stored entry from the replayer's size on, checking each as it goes; returns how
/// many were folded. This is `veche verify`'s pipeline (`veche_verifier::pipeline`): a large
/// backlog (a start-up) is read and checked on every core with batched signatures one page ahead
/// of the fold, which runs in order on this thread; a small one (another node's appends) is
/// checked on this thread.
pub fn catch_up(
    store: &dyn EventStore,
    replayer: &mut projections::Replayer,
    on_event: impl FnMut(&Event),
) -> Result<u64, CatchUpError> {
    catch_up_until(store, replayer, u64::MAX, on_event)
}

/// Like [`catch_up`], but folds no entry at or beyond position `end`.
pub fn catch_up_until(
    store: &dyn EventStore,
    replayer: &mut projections::Replayer,
    end: u64,
    on_event: impl FnMut(&Event),
) -> Result<u64, CatchUpError> {
    let options = veche_verifier::pipeline::PipelineOptions {
        end,
        ..veche_verifier::pipeline::PipelineOptions::every_core()
    };
    catch_up_with(store, replayer, options, on_event)
}

/// Folds the stored log from the replayer's size to `end` on one thread, checking everything
/// but the signatures, which this node checked on their way in: the periodic snapshot's fold,
/// which must then find the hash it ends at where the writer's own mark says.
pub fn refold_own_entries(
    store: &dyn EventStore,
    replayer: &mut projections::Replayer,
    end: u64,
    on_event: impl FnMut(&Event),
) -> Result<u64, CatchUpError> {
    let options = veche_verifier::pipeline::PipelineOptions {
        threads: 1,
        signatures: veche_verifier::pipeline::Signatures::CheckedOnTheWayIn,
        end,
    };
    catch_up_with(store, replayer, options, on_event)
}

fn catch_up_with(
    store: &dyn EventStore,
    replayer: &mut projections::Replayer,
    options: veche_verifier::pipeline::PipelineOptions,
    mut on_event: impl FnMut(&Event),
) -> Result<u64, CatchUpError> {
    use veche_verifier::pipeline::{replay, PipelineError};
    let mut reader = StoreReader {
        store,
        next: replayer.ledger.size,
    };
    replay(&mut reader, replayer, options, |folded| {
        on_event(folded.event);
        Ok::<(), std::convert::Infallible>(())
    })
    .map_err(|error| match error {
        PipelineError::Read(error) => CatchUpError::Store(error),
        PipelineError::Replay(error) => CatchUpError::Replay(error),
        PipelineError::CheckerPanicked { position } => CatchUpError::CheckerPanicked { position },
        PipelineError::Fold(never) => match never {},
    })
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use projections::command::{Genesis, RegisterKey};
    use projections::protocol::public_key_of;
    use projections::replay::seal;
    use projections::{
        Action, Command, EntryKind, Ledger, ReplayFailure, SignedCommand, Timestamp,
    };
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::store::MemoryStore;
    use projections::limits::REPLAY_PAGE_ENTRIES;

    const START: Timestamp = Timestamp(1_795_428_000_000);

    fn signed(
        key: &SigningKey,
        kind: EntryKind,
        issued_at: Timestamp,
        action: Action,
    ) -> SignedCommand {
        let command = Command {
            author: public_key_of(key),
            nonce: "0".repeat(32),
            issued_at,
            action,
        };
        SignedCommand::sign(key, kind, command)
    }

    /// A genesis and then `registrations` citizens registering, one entry a millisecond.
    fn stored_log(registrations: u64) -> (Vec<StoredEntry>, Ledger) {
        let server = SigningKey::from_bytes(&[1; 32]);
        let mut ledger = Ledger::new();
        let mut entries = Vec::new();
        let genesis = Action::Genesis(Genesis {
            log_origin: "catch-up.veche.test/log".into(),
            admin_keys: vec![public_key_of(&SigningKey::from_bytes(&[2; 32]))],
            recovery: None,
        });
        let mut commands = vec![signed(&server, EntryKind::System, START, genesis)];
        for citizen in 0..registrations {
            let key = SigningKey::from_bytes(&Sha256::digest(citizen.to_be_bytes()).into());
            let time = START.plus_milliseconds(citizen as i64 + 1);
            commands.push(signed(
                &key,
                EntryKind::Command,
                time,
                Action::RegisterKey(RegisterKey {}),
            ));
        }
        for command in commands {
            let time = START.plus_milliseconds(ledger.size as i64);
            let sealed = seal(&ledger, command, time).expect("a valid synthetic command");
            ledger.evolve(&sealed.event);
            entries.push(StoredEntry {
                position: sealed.event.position,
                bytes: sealed.bytes,
                hash: sealed.event.hash,
                content: Vec::new(),
                erases: None,
            });
        }
        (entries, ledger)
    }

    #[test]
    fn a_backlog_of_several_pages_folds_to_the_ledger_that_wrote_it_and_a_forged_entry_is_named() {
        // More than two pages, so the read-ahead pipeline runs and hands over pages in order.
        let registrations = 2 * REPLAY_PAGE_ENTRIES as u64 + 500;
        let (entries, written) = stored_log(registrations);
        let store = MemoryStore::new();
        store.append(&entries).unwrap();
        let mut replayer = projections::Replayer::new();
        let mut seen = 0u64;
        let folded = catch_up(&store, &mut replayer, |event| {
            assert_eq!(event.position, seen, "events arrive in log order");
            seen += 1;
        })
        .unwrap();
        assert_eq!(folded, registrations + 1);
        assert_eq!(replayer.ledger, written);

        // A signature byte changed in the second page, with the stored hash recomputed to match:
        // only the signature check can catch it, and it must name that entry.
        let forged_position = REPLAY_PAGE_ENTRIES as u64 + 1_234;
        let mut forged = entries.clone();
        let target = &mut forged[forged_position as usize];
        target.bytes[100] ^= 0x01;
        target.hash = projections::protocol::entry_hash(&target.bytes);
        let store = MemoryStore::new();
        store.append(&forged).unwrap();
        let mut replayer = projections::Replayer::new();
        match catch_up(&store, &mut replayer, |_| {}) {
            Err(CatchUpError::Replay(error)) => {
                assert_eq!(error.position, forged_position, "{error}");
                assert!(
                    matches!(error.failure, ReplayFailure::Signature(_)),
                    "{error}"
                );
            }
            other => panic!("a forged entry must stop the catch-up, got {other:?}"),
        }
        assert_eq!(
            replayer.ledger.size, forged_position,
            "folded up to the forgery"
        );
    }
}
