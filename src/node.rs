//! One veche node: replays and checks the log at start-up, then serves reads from the published
//! ledger and sends writes through the single writer.
//!
//! Invariant: the published ledger only ever holds durable events; reads never wait for a write.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use ed25519_dalek::SigningKey;
use projections::command::Genesis;
use projections::limits;
use projections::protocol::public_key_of;
use projections::{Action, Command, Ledger, PublicKey, Refusal, Replayer, SignedCommand};

use crate::clock::Clock;
use crate::envelope::{sign_system, EnvelopeError};
use crate::store::{EventStore, StoreError};
use crate::transparency::{Receipt, TreeError, TreeState};
use crate::writer::{catch_up, CatchUpError, SubmitError, Writer, WriterHandle};

#[derive(Clone)]
pub struct NodeConfig {
    pub store: Arc<dyn EventStore>,
    pub clock: Arc<dyn Clock>,
    pub server_key: SigningKey,
    /// Admin keys written into the genesis entry when the log is new; ignored otherwise.
    pub admin_keys: Vec<PublicKey>,
    /// The recovery quorum a new log's genesis names; `None` names none.
    pub recovery: Option<projections::command::RecoveryQuorum>,
    /// The log's name in checkpoints, e.g. `veche.example.city/log`.
    pub log_origin: String,
    /// Where this node keeps its start-up snapshot (see `snapshot`); `None` keeps none and
    /// replays the whole log at every start.
    pub snapshot: Option<PathBuf>,
    /// Entries between two periodic snapshots (`snapshot::periodic`); 0 makes them only when
    /// the node stops.
    pub snapshot_interval_entries: u64,
}

/// How far this node's state is proven to be the fold of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotStanding {
    /// Folded from the whole log at start-up, or started from a snapshot the audit confirmed.
    Verified,
    /// Started from a snapshot the log attests (so proven, and served); the audit that re-folds
    /// the log below it and checks its tiles is still running.
    Auditing,
    /// The audit found the snapshot differs from the log: writes and numbers are refused until
    /// a restart.
    Refuted,
}

/// The published state is not proven against the log (see `Node::proven_ledger`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StateUnproven(pub String);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the stored log does not verify: {0}")]
    Replay(#[from] projections::ReplayError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the stored log could not be checked: the thread checking position {position} on panicked"
    )]
    CheckerPanicked { position: u64 },
    #[error("the log was started by another server key ({found}); this node holds {expected}")]
    ForeignServerKey {
        found: PublicKey,
        expected: PublicKey,
    },
    #[error("the genesis entry was refused: {0}")]
    Genesis(projections::Refusal),
    #[error("the log origin cannot name a checkpoint signer: {0}")]
    InvalidOrigin(String),
    #[error("the published Merkle tree and the ledger's disagree after replay")]
    TreeDiverged,
    #[error(
        "the log holds {log_size} entries, but this node has signed a checkpoint at size \
         {signed_size}: entries were cut from its tail; refusing to start rather than sign a \
         second tree at a size already signed (restore the log from a backup or a mirror)"
    )]
    LogShorterThanSigned { log_size: u64, signed_size: u64 },
    #[error(
        "the log's Merkle root at size {size} is not the one this node signed at that size: its \
         tail was replaced; refusing to start"
    )]
    SignedRootDiffers { size: u64 },
    #[error(
        "{count} stored hash tile(s) differ from the entries' recomputation, first {first}; a \
         start of the node replaces them"
    )]
    BadTiles {
        first: crate::store::TileName,
        count: usize,
    },
    #[error("the stored hash tiles could not be checked: {0}")]
    Tiles(#[from] TreeError),
    #[error("cannot start the writer thread: {0}")]
    Thread(#[from] std::io::Error),
}

impl From<CatchUpError> for StartError {
    fn from(error: CatchUpError) -> Self {
        match error {
            CatchUpError::Store(error) => StartError::Store(error),
            CatchUpError::Replay(error) => StartError::Replay(error),
            CatchUpError::CheckerPanicked { position } => StartError::CheckerPanicked { position },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("this endpoint takes {expected} commands, not {found}")]
    ActionMismatch {
        expected: &'static str,
        found: &'static str,
    },
    /// The content beside the command does not match its commitments; nothing is stored.
    #[error(transparent)]
    ContentMismatch(projections::content::ContentError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

/// What the content store holds for a commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeldContent {
    Text(String),
    /// Deleted by the erasure or redaction entry at this position.
    ErasedBy(u64),
    /// Neither text nor an erasure: a store that lost content it should hold.
    Missing,
}

pub struct Node {
    /// Rate limits, shared through Redis when configured.
    pub rate_limits: crate::coordination::RateLimits,
    observers: Arc<crate::metrics::Observers>,
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    published: Arc<RwLock<Ledger>>,
    tree: Arc<RwLock<TreeState>>,
    recent: Arc<std::sync::Mutex<crate::writer::RecentCommands>>,
    /// Signs checkpoints at earlier sizes on request.
    server_key: SigningKey,
    writer: WriterHandle,
    writer_thread: std::thread::JoinHandle<()>,
    signatures: crate::signature_pool::SignaturePool,
    snapshot: Option<PathBuf>,
    /// When the next periodic snapshot is due; every snapshot file is written through it.
    schedule: crate::snapshot::periodic::Schedule,
    log_origin: String,
    /// A `SnapshotStanding` as its index, shared with the audit thread.
    snapshot_standing: Arc<AtomicU8>,
    /// The registrar role's credential issuers, held in the data directory; unset for a node
    /// started without one (some tests), which then issues no credentials.
    issuers: std::sync::OnceLock<crate::issuer::IssuerRing>,
    /// The Open311 gateways this node signs for, from the data directory; none for a node
    /// started without one.
    gateways: std::sync::OnceLock<crate::gateway::GatewayRing>,
}

const STANDINGS: [SnapshotStanding; 3] = [
    SnapshotStanding::Verified,
    SnapshotStanding::Auditing,
    SnapshotStanding::Refuted,
];

impl Node {
    /// Starts the node (`start_once`), starting again with bounded backoff while the store is
    /// unavailable: a PostgreSQL connection dropped mid-replay must not take the node down when
    /// the running node would ride the same drop out. Every other error ends the start at once.
    pub fn start(config: NodeConfig) -> Result<Node, StartError> {
        let mut delay_ms = limits::STARTUP_RETRY_DELAY_MS_MIN;
        for attempt in 1.. {
            match Node::start_once(config.clone()) {
                Err(StartError::Store(StoreError::Unavailable(error)))
                    if attempt < limits::STARTUP_ATTEMPTS_MAX =>
                {
                    tracing::warn!(
                        %error,
                        attempt,
                        retry_in_ms = delay_ms,
                        "the log store did not answer during start-up; starting again"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                    delay_ms = (delay_ms * 2).min(limits::STARTUP_RETRY_DELAY_MS_MAX);
                }
                outcome => return outcome,
            }
        }
        unreachable!("the start-up attempts run until one returns")
    }

    /// Replays the whole stored log, checking every link, signature and decision, or starts from
    /// a checked snapshot, folds the entries after it and starts its audit; writes the genesis
    /// entry if the log is empty; starts the writer and the signature-check pool.
    fn start_once(config: NodeConfig) -> Result<Node, StartError> {
        projections::checkpoint::check_key_name(&config.log_origin)
            .map_err(|error| StartError::InvalidOrigin(error.to_string()))?;
        // Read before the log: a record is made only after its entries are durable, so on a
        // shared store every record read now is covered by the log read next (another node may
        // append and record meanwhile, but only beyond what it recorded before).
        let signed = config.store.largest_signed_checkpoint()?;
        let (mut replayer, mut tree, audit) = match load_snapshot(&config)? {
            Some(loaded) => {
                // The digest of the state at the snapshot's size is the header's, checked
                // against the bytes just decoded: a periodic snapshot's mark sits at that size,
                // and its attestation, further on, is re-decided against it.
                let marked = projections::replay::MarkedState {
                    size: loaded.header.size,
                    ledger_sha256: loaded.header.ledger_sha256,
                };
                let replayer = Replayer {
                    ledger: loaded.ledger,
                    marked: Some(marked),
                };
                (replayer, loaded.tree, Some(loaded.header))
            }
            None => (
                Replayer::new(),
                TreeState::new(&config.log_origin, &config.server_key),
                None,
            ),
        };
        let mut tiles = crate::transparency::TileWriter::new(&*config.store);
        let mut grow_tree = |event: &projections::Event| {
            tiles.extend(tree.push(event.leaf_hash));
        };
        let replayed = catch_up(&*config.store, &mut replayer, &mut grow_tree)?;
        // Before a genesis could be written over an emptied log.
        check_signed_size(signed, replayer.ledger.size)?;
        if replayer.ledger.size == 0 {
            write_genesis(&config, &replayer.ledger)?;
            catch_up(&*config.store, &mut replayer, &mut grow_tree)?;
        }
        // Tiles are derived from the log: every stored one is checked against the entries just
        // folded (or, below a snapshot, against the snapshot's tree until the audit re-folds them)
        // and a bad one is replaced by its recomputation, never trusted.
        if let Some(header) = &audit {
            tiles.extend(tree.recompute_bad_tiles(&*config.store, header.size)?);
        }
        tiles.finish()?;
        settle_tree(&config, &replayer.ledger, &mut tree)?;
        check_signed_root(signed, &tree, &*config.store)?;
        // `replayed` counts the entries checked now; with a snapshot the rest awaits its audit.
        tracing::info!(
            entries = replayer.ledger.size,
            replayed,
            from_snapshot = audit.as_ref().map_or(0, |header| header.size),
            store = config.store.backend_name(),
            "log in hand and checked"
        );
        Node::serve_from(config, replayer.ledger, tree, audit)
    }

    /// Starts the writer, the snapshot's audit (if the state came from one) and the
    /// signature-check pool over a checked ledger and tree.
    fn serve_from(
        config: NodeConfig,
        ledger: Ledger,
        tree: TreeState,
        audit: Option<crate::snapshot::SnapshotHeader>,
    ) -> Result<Node, StartError> {
        let size = ledger.size;
        let observers = Arc::new(crate::metrics::Observers::new(size));
        let published = Arc::new(RwLock::new(ledger));
        let tree = Arc::new(RwLock::new(tree));
        // Recovered from the log's tail: a client retrying across a restart gets its receipt.
        let recent = Arc::new(std::sync::Mutex::new(
            crate::writer::RecentCommands::recover(&*config.store, size)?,
        ));
        let shared = crate::writer::Published {
            ledger: published.clone(),
            tree: tree.clone(),
            recent: Arc::clone(&recent),
        };
        let (writer, writer_thread) = Writer::spawn(
            config.store.clone(),
            config.clock.clone(),
            config.server_key.clone(),
            shared,
            observers.clone(),
            projections::limits::WRITER_QUEUE_COMMANDS_MAX,
        )?;
        let snapshot_standing = Arc::new(AtomicU8::new(match audit {
            Some(_) => SnapshotStanding::Auditing as u8,
            None => SnapshotStanding::Verified as u8,
        }));
        let newest_snapshot_size = audit.as_ref().map_or(0, |header| header.size);
        if let Some(header) = audit {
            spawn_audit(
                config.store.clone(),
                header,
                config.log_origin.clone(),
                config.server_key.clone(),
                snapshot_standing.clone(),
                config.snapshot.clone(),
            )?;
        }
        let signatures = start_signature_pool(&observers, &published)?;
        Ok(Node {
            rate_limits: crate::coordination::RateLimits::new(config.clock.clone()),
            signatures,
            observers,
            store: config.store,
            clock: config.clock,
            published,
            tree,
            recent,
            server_key: config.server_key,
            writer,
            writer_thread,
            snapshot: config.snapshot,
            schedule: crate::snapshot::periodic::Schedule::new(
                config.snapshot_interval_entries,
                newest_snapshot_size,
            ),
            log_origin: config.log_origin,
            snapshot_standing,
            issuers: std::sync::OnceLock::new(),
            gateways: std::sync::OnceLock::new(),
        })
    }

    /// Gives this node its credential issuers; the first ring given stays.
    pub fn hold_issuers(&self, ring: crate::issuer::IssuerRing) {
        if self.issuers.set(ring).is_err() {
            tracing::warn!("the node already holds its issuers; a second ring was ignored");
        }
    }

    /// Gives this node its Open311 gateways; the first ring given stays.
    pub fn hold_gateways(&self, ring: crate::gateway::GatewayRing) {
        if self.gateways.set(ring).is_err() {
            tracing::warn!("the node already holds its gateways; a second ring was ignored");
        }
    }

    /// The gateway whose Open311 `api_key` this is, if this node holds it.
    pub fn gateway(&self, api_key: &str) -> Option<&ed25519_dalek::SigningKey> {
        self.gateways.get()?.find(api_key)
    }

    /// The node's credential issuers, if it holds any.
    pub fn issuers(&self) -> Option<&crate::issuer::IssuerRing> {
        self.issuers.get()
    }

    /// Whether this node's state is proven to be the fold of its log.
    pub fn snapshot_standing(&self) -> SnapshotStanding {
        let index = usize::from(self.snapshot_standing.load(Ordering::Acquire));
        STANDINGS
            .get(index)
            .copied()
            .unwrap_or(SnapshotStanding::Refuted)
    }

    /// Writes the start-up snapshot of the state every entry so far folds to, when this node
    /// keeps one and its state is proven: first the log attests that state (an `attest_state`
    /// entry naming its digest), then the snapshot of it is written, so the next start can
    /// prove the snapshot by the log. Call when stopping, while the writer still runs.
    pub async fn write_snapshot(
        &self,
    ) -> Result<Option<crate::snapshot::SnapshotHeader>, crate::snapshot::SnapshotFileError> {
        let Some(path) = &self.snapshot else {
            return Ok(None);
        };
        if self.check_proven().is_err() || self.ledger().size == 0 {
            return Ok(None);
        }
        let attested = self.writer.attest_state().await?;
        self.schedule.write(path, &attested, &self.server_key)
    }

    /// Starts a periodic snapshot in the background when one is due, this node keeps
    /// snapshots, its state is proven and no audit holds a ledger of its own.
    pub fn start_periodic_snapshot_if_due(self: &Arc<Node>) {
        let Some(path) = self.snapshot.clone() else {
            return;
        };
        if self.snapshot_standing() != SnapshotStanding::Verified || self.fault().is_some() {
            return;
        }
        let published_size = *self.observers.published_size.borrow();
        if !self.schedule.claim(published_size) {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let outcome = node.make_periodic_snapshot(path).await;
            node.schedule.release();
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match outcome {
                Ok(Some(header)) => tracing::info!(
                    entries = header.size,
                    attestation_position = header.attestation_position,
                    elapsed_ms,
                    "wrote a periodic snapshot"
                ),
                Ok(None) => tracing::info!("a newer snapshot was written meanwhile; kept it"),
                Err(error) => {
                    tracing::warn!(%error, elapsed_ms, "no periodic snapshot was made; trying again at the next interval")
                }
            }
        });
    }

    /// The periodic snapshot's steps: the mark, the fold off the writer, the attestation, the
    /// file (only once the attestation is durable).
    async fn make_periodic_snapshot(
        self: &Arc<Node>,
        path: PathBuf,
    ) -> Result<Option<crate::snapshot::SnapshotHeader>, crate::snapshot::periodic::PeriodicError>
    {
        use crate::snapshot::periodic::{fold_to_mark, PeriodicError};
        use crate::writer::StateRequest;
        let stopped = |error: tokio::task::JoinError| PeriodicError::Stopped(error.to_string());
        let mark = self.writer.append_state_entry(StateRequest::Mark).await?;
        let node = self.clone();
        let folding_path = path.clone();
        let (mut state, marked) = tokio::task::spawn_blocking(move || {
            fold_to_mark(
                &*node.store,
                &folding_path,
                &node.server_key,
                &node.log_origin,
                &mark,
            )
        })
        .await
        .map_err(stopped)??;
        let attestation = self
            .writer
            .append_state_entry(StateRequest::AttestMark(marked))
            .await?;
        state.attestation_position = attestation.position;
        let node = self.clone();
        let written = tokio::task::spawn_blocking(move || {
            node.schedule.write(&path, &state, &node.server_key)
        })
        .await
        .map_err(stopped)??;
        Ok(written)
    }

    /// Opens an envelope (parse and strict signature check) on the signature-check pool.
    pub async fn open_envelope(
        &self,
        envelope: crate::envelope::Envelope,
    ) -> Result<SignedCommand, CommandError> {
        use crate::signature_pool::PoolError;
        match self.signatures.open(envelope).await {
            Ok(opened) => Ok(opened?),
            Err(PoolError::Overloaded) => Err(SubmitError::Overloaded.into()),
            Err(PoolError::Stopped) => Err(SubmitError::Stopped.into()),
        }
    }

    /// Is the opened command fresh and its nonce unused, by the published ledger and this node's
    /// clock? Cheap, and asked before the author's rate limits are charged; the writer decides
    /// again (and finally) when it appends.
    pub fn check_fresh_and_unseen(&self, signed: &SignedCommand) -> Result<(), Refusal> {
        let now = self.clock.now();
        self.ledger()
            .check_fresh_and_unseen(signed.kind, &signed.command, now)
    }

    /// What the content store holds for `commitments`: text, or the entry that erased it.
    /// Reads the store, so call it off the HTTP workers.
    pub fn content(
        &self,
        commitments: &[projections::content::Commitment],
    ) -> Result<
        std::collections::BTreeMap<projections::content::Commitment, HeldContent>,
        SubmitError,
    > {
        let wanted: Vec<[u8; 32]> = commitments.iter().map(|commitment| commitment.0).collect();
        let found = self
            .store
            .read_content(&wanted)
            .map_err(|error| SubmitError::StoreUnavailable(error.to_string()))?;
        let held = |stored: crate::store::StoredContent| match (stored.piece, stored.erased_by) {
            (Some((_, text)), _) => HeldContent::Text(text),
            (None, Some(erased_by)) => HeldContent::ErasedBy(erased_by),
            (None, None) => HeldContent::Missing,
        };
        Ok(found
            .into_iter()
            .map(|stored| {
                (
                    projections::content::Commitment(stored.commitment),
                    held(stored),
                )
            })
            .collect())
    }

    /// The position of the recent command `author` appended with `nonce`, as published here.
    pub fn recent_position(&self, author: PublicKey, nonce: &str) -> Option<u64> {
        match self.recent.lock() {
            Ok(recent) => recent.position(author, nonce),
            Err(_) => {
                self.observers
                    .record_fault("the recent commands' lock is poisoned");
                None
            }
        }
    }

    /// The receipt of the entry that already holds exactly this signed command (same signature,
    /// same payload bytes), if a recent one does: what a client retrying an envelope gets back.
    /// Reads the store, so call it off the HTTP workers.
    pub fn original_receipt(&self, signed: &SignedCommand) -> Result<Option<Receipt>, SubmitError> {
        let unavailable = |error: String| SubmitError::StoreUnavailable(error);
        let command = &signed.command;
        let Some(position) = self.recent_position(command.author, &command.nonce) else {
            return Ok(None);
        };
        let stored = self
            .store
            .read(position, 1)
            .map_err(|e| unavailable(e.to_string()))?;
        let Some(stored) = stored.into_iter().next() else {
            return Ok(None);
        };
        let entry =
            projections::Entry::decode(&stored.bytes).map_err(|e| unavailable(e.to_string()))?;
        let same = entry.kind == signed.kind
            && entry.signature == signed.signature
            && entry.payload == signed.payload;
        if !same {
            return Ok(None);
        }
        let appended = crate::transparency::Appended {
            position,
            entry_hash: stored.hash,
            leaf_hash: projections::merkle::leaf_hash(&stored.bytes),
            server_time: entry.server_time,
        };
        self.tree()
            .receipt(&*self.store, &appended, None)
            .map(Some)
            .map_err(|error| unavailable(error.to_string()))
    }

    /// Appends a command whose envelope has been opened (signature checked); answers once the
    /// entry is durable.
    /// `content` is the command's content, already matched to its commitments.
    pub async fn append(
        &self,
        signed: SignedCommand,
        content: Vec<projections::content::CheckedPiece>,
    ) -> Result<Receipt, SubmitError> {
        self.check_state_proven()?;
        if let Some(fault) = self.fault() {
            return Err(SubmitError::Faulted(fault));
        }
        let appended = self.writer.submit(signed, content).await?;
        // The writer grew the tree before answering, so the current checkpoint covers the entry.
        self.tree()
            .receipt(&*self.store, &appended, None)
            .map_err(|error| SubmitError::StoreUnavailable(error.to_string()))
    }

    /// Nothing is appended on a state the log has not proven: a node starts only from a snapshot
    /// the log attests, and decides nothing once its audit refuted it, so it never appends an
    /// entry that a replay without the snapshot would judge otherwise.
    fn check_state_proven(&self) -> Result<(), SubmitError> {
        self.check_proven()
            .map_err(|unproven| SubmitError::StoreUnavailable(unproven.0))
    }

    /// Whether the published state is proven against the log, and if not, why: the one place
    /// that reads the snapshot standing for both writes and number-bearing reads.
    fn check_proven(&self) -> Result<(), StateUnproven> {
        match self.snapshot_standing() {
            // The log's own `attest_state` entry proved the snapshot before it was used.
            SnapshotStanding::Verified | SnapshotStanding::Auditing => Ok(()),
            SnapshotStanding::Refuted => Err(StateUnproven(
                "this node started from a snapshot that does not match the log; restart it".into(),
            )),
        }
    }

    /// Appends every system event that is due: poll closes, SLA breaches, silent closes of
    /// resolved complaints, proposal expiries.
    pub async fn append_due_system_events(
        &self,
    ) -> Result<Vec<crate::writer::AppendedSystemEvent>, SubmitError> {
        // A close decided on an unproven state could carry a tally the log refutes, for ever.
        if self.check_proven().is_err() {
            return Ok(Vec::new());
        }
        if !self.ledger().has_due_system_actions(self.clock.now()) {
            return Ok(Vec::new());
        }
        self.writer.append_due_system_events().await
    }

    /// The published ledger for reads that serve numbers: only once the state is proven. A node
    /// that started from a snapshot serves none of its numbers until the audit has re-folded the
    /// log and found the same state, and a refuted one none until it restarts.
    pub fn proven_ledger(&self) -> Result<RwLockReadGuard<'_, Ledger>, StateUnproven> {
        self.check_proven()?;
        Ok(self.ledger())
    }

    /// The published ledger: durable events only. Hold the guard briefly.
    pub fn ledger(&self) -> RwLockReadGuard<'_, Ledger> {
        match self.published.read() {
            Ok(guard) => guard,
            // A panic while folding may have left the ledger behind the log: reads still see
            // the last state, but the node stops being ready and refuses writes.
            Err(poisoned) => {
                self.observers
                    .record_fault("the published ledger's lock is poisoned");
                poisoned.into_inner()
            }
        }
    }

    /// The published Merkle tree. Hold the guard briefly: the writer waits for it.
    pub fn tree(&self) -> RwLockReadGuard<'_, TreeState> {
        match self.tree.read() {
            Ok(guard) => guard,
            Err(poisoned) => {
                self.observers
                    .record_fault("the published Merkle tree's lock is poisoned");
                poisoned.into_inner()
            }
        }
    }

    /// The impossible state that took this node out of service, if any: a poisoned lock, or
    /// another fault recorded by the writer or the HTTP layer. Readiness fails and writes are
    /// refused while it is set, which is until the node restarts.
    pub fn fault(&self) -> Option<String> {
        if self.published.is_poisoned() {
            self.observers
                .record_fault("the published ledger's lock is poisoned");
        }
        if self.tree.is_poisoned() {
            self.observers
                .record_fault("the published Merkle tree's lock is poisoned");
        }
        self.observers.fault().map(str::to_string)
    }

    /// Test hook: poisons the published ledger's lock, as a panic while folding would.
    #[doc(hidden)]
    pub fn poison_ledger_lock_for_tests(&self) {
        let published = self.published.clone();
        let _ = std::thread::spawn(move || {
            let _guard = published.write();
            panic!("poisoning the published ledger's lock on purpose");
        })
        .join();
    }

    /// A signed checkpoint of the log at `size` (at most the published size).
    pub fn checkpoint_at(&self, size: u64) -> Result<String, TreeError> {
        self.tree()
            .checkpoint_at(&*self.store, size, &self.server_key)
    }

    /// Asks the writer to fold in other nodes' entries now.
    pub fn follow_now(&self) {
        self.writer.follow_now();
    }

    /// Redis coordination, when configured.
    pub fn coordination(&self) -> Option<&Arc<crate::coordination::Coordination>> {
        self.rate_limits.redis.get()
    }

    /// Whether the store refused this node's last append, recently and with none taken since:
    /// readiness then tells a load balancer the truth, that writes here fail.
    pub fn store_writes_failing(&self) -> bool {
        let now = self.clock.now().milliseconds();
        self.observers
            .store_writes_failing(now, projections::limits::READINESS_WRITE_FAILURE_HOLD_MS)
    }

    pub fn observers(&self) -> &crate::metrics::Observers {
        &self.observers
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    pub fn store(&self) -> &dyn EventStore {
        &*self.store
    }

    /// Stops the writer after it has answered everything queued, and waits for it.
    pub fn shut_down(self) {
        let Node {
            writer,
            writer_thread,
            ..
        } = self;
        drop(writer);
        let _ = writer_thread.join();
    }
}

/// One signature-check thread per core, reading poll issuer keys from the published ledger.
fn start_signature_pool(
    observers: &Arc<crate::metrics::Observers>,
    published: &Arc<RwLock<Ledger>>,
) -> std::io::Result<crate::signature_pool::SignaturePool> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    crate::signature_pool::SignaturePool::start(
        threads,
        projections::limits::SIGNATURE_QUEUE_ENVELOPES_MAX,
        observers.clone(),
        published.clone(),
    )
}

/// The checked start-up snapshot, if the configuration names one and every check passes; a
/// failure is logged and the node replays the whole log instead, except a log shorter than the
/// snapshot: its header is signed by this node's key (checked before the log is), so the node
/// has signed that size, and the log's tail was cut.
fn load_snapshot(
    config: &NodeConfig,
) -> Result<Option<crate::snapshot::LoadedSnapshot>, StartError> {
    use crate::snapshot::SnapshotFileError;
    let Some(path) = config.snapshot.as_deref() else {
        return Ok(None);
    };
    match crate::snapshot::load(path, &config.server_key, &*config.store, &config.log_origin) {
        Ok(loaded) => Ok(loaded),
        Err(SnapshotFileError::LogShorter {
            log_size,
            attested_size,
        }) => Err(StartError::LogShorterThanSigned {
            log_size,
            signed_size: attested_size,
        }),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "the start-up snapshot was not used; replaying the whole log");
            Ok(None)
        }
    }
}

/// Writes the genesis entry of a new log, unless another node starting at the same time did.
fn write_genesis(config: &NodeConfig, ledger: &Ledger) -> Result<(), StartError> {
    let genesis = Command {
        author: public_key_of(&config.server_key),
        nonce: format!("{:032x}", 0),
        issued_at: config.clock.now(),
        action: Action::Genesis(Genesis {
            log_origin: config.log_origin.clone(),
            admin_keys: config.admin_keys.clone(),
            recovery: config.recovery.clone(),
        }),
    };
    let sealed = projections::replay::seal(
        ledger,
        sign_system(&config.server_key, genesis),
        config.clock.now(),
    )
    .map_err(StartError::Genesis)?;
    let genesis = crate::store::StoredEntry {
        position: 0,
        bytes: sealed.bytes,
        hash: sealed.event.hash,
        content: Vec::new(),
        erases: None,
    };
    // Nodes starting together race to begin a new log: under the append lock only the
    // first writes genesis, and the others fold in what it wrote.
    let mut wrote = false;
    config.store.append_following(0, &mut |others| {
        wrote = others.is_empty();
        if wrote {
            vec![genesis.clone()]
        } else {
            Vec::new()
        }
    })?;
    if wrote {
        tracing::info!(log_origin = %config.log_origin, "wrote the genesis entry of a new log");
    }
    Ok(())
}

/// Checks a stored log offline without changing it (`veche verify --data-dir`): every entry as a
/// start-up does, the largest signed checkpoint against the log's size and root, and every stored
/// hash tile against the entries. Returns the folded ledger. `folded` hears of each entry as it
/// is folded, for a progress bar.
pub fn verify_stored_log(store: &dyn EventStore, folded: &dyn Fn()) -> Result<Ledger, StartError> {
    use projections::merkle::Frontier;
    use projections::tiles::TileBuilder;
    let signed = store.largest_signed_checkpoint()?;
    let mut replayer = Replayer::new();
    let (mut frontier, mut builder) = (Frontier::default(), TileBuilder::new());
    let (mut full_tiles, mut root_at_signed) = (Vec::new(), None);
    catch_up(store, &mut replayer, |event| {
        folded();
        let nodes = frontier.push(event.leaf_hash);
        // The builder refuses only nodes out of order, which one frontier never gives.
        full_tiles.extend(builder.add(&nodes).unwrap_or_default());
        if signed.is_some_and(|signed| signed.size == frontier.size()) {
            root_at_signed = Some(frontier.root());
        }
    })?;
    check_signed_size(signed, replayer.ledger.size)?;
    if let Some(signed) = signed.filter(|signed| signed.size > 0) {
        if root_at_signed != Some(signed.root) {
            return Err(StartError::SignedRootDiffers { size: signed.size });
        }
    }
    let mut bad = Vec::new();
    for tile in &full_tiles {
        if let Some(stored) = store.read_tile(tile.level, tile.index)? {
            if stored != tile.encode() {
                bad.push(crate::store::TileName {
                    level: tile.level,
                    index: tile.index,
                });
            }
        }
    }
    match bad.first() {
        Some(first) => Err(StartError::BadTiles {
            first: *first,
            count: bad.len(),
        }),
        None => Ok(replayer.ledger),
    }
}

/// Refuses a log shorter than a checkpoint this node signed: its tail was cut.
fn check_signed_size(
    signed: Option<crate::store::SignedCheckpoint>,
    log_size: u64,
) -> Result<(), StartError> {
    match signed {
        Some(signed) if signed.size > log_size => Err(StartError::LogShorterThanSigned {
            log_size,
            signed_size: signed.size,
        }),
        _ => Ok(()),
    }
}

/// Refuses a log whose tree at the largest signed size has another root: its tail was replaced.
fn check_signed_root(
    signed: Option<crate::store::SignedCheckpoint>,
    tree: &TreeState,
    store: &dyn EventStore,
) -> Result<(), StartError> {
    let Some(signed) = signed else {
        return Ok(());
    };
    if tree.root_at(store, signed.size)? != signed.root {
        return Err(StartError::SignedRootDiffers { size: signed.size });
    }
    Ok(())
}

/// Holds the rebuilt tree to the ledger's root, names it as the genesis does, records and signs
/// its checkpoint, and refuses a log begun under another server key.
fn settle_tree(
    config: &NodeConfig,
    ledger: &Ledger,
    tree: &mut TreeState,
) -> Result<(), StartError> {
    if tree.root() != ledger.merkle.root() {
        return Err(StartError::TreeDiverged);
    }
    // An existing log keeps the name its genesis gave it, whatever this start was told.
    if let Some(identity) = ledger.identity() {
        if identity.log_origin != config.log_origin {
            tracing::warn!(
                genesis = %identity.log_origin,
                configured = %config.log_origin,
                "the log's origin comes from its genesis entry; the configured one is ignored"
            );
            tree.set_origin(&identity.log_origin);
        }
    }
    // Recorded before it is signed: every checkpoint this node hands out is remembered.
    config
        .store
        .record_signed_checkpoint(tree.size(), &tree.root())?;
    tree.sign(&config.server_key);
    let server_public = public_key_of(&config.server_key);
    match ledger.server_key() {
        Some(found) if found != server_public => Err(StartError::ForeignServerKey {
            found,
            expected: server_public,
        }),
        _ => Ok(()),
    }
}

/// Re-folds the log up to a loaded snapshot's size on its own thread and records the verdict; a
/// refuted snapshot file is removed so the next start replays the whole log.
fn spawn_audit(
    store: Arc<dyn EventStore>,
    header: crate::snapshot::SnapshotHeader,
    origin: String,
    key: SigningKey,
    standing: Arc<AtomicU8>,
    path: Option<PathBuf>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("veche-snapshot-audit".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            match crate::snapshot::audit(&*store, &header, &origin, &key) {
                Ok(_repaired) => {
                    standing.store(SnapshotStanding::Verified as u8, Ordering::Release);
                    tracing::info!(
                        entries = header.size,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "the start-up snapshot is the fold of the log: audit passed"
                    );
                }
                Err(error) => {
                    standing.store(SnapshotStanding::Refuted as u8, Ordering::Release);
                    if let Some(path) = &path {
                        if let Err(error) = std::fs::remove_file(path) {
                            tracing::warn!(%error, "could not remove the refuted snapshot");
                        }
                    }
                    tracing::error!(
                        %error,
                        entries = header.size,
                        "the start-up snapshot does not match the log; refusing writes until restarted"
                    );
                }
            }
        })
        .map(drop)
}
