//! The single writer: decides, chains and group-commits, one batch per fsync.
//!
//! Invariant: only this thread appends. It owns a working copy of the ledger that runs ahead of
//! the published one by at most one uncommitted batch; the published ledger only ever sees
//! durable events, and a request is answered only after its event is durable.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use projections::protocol::public_key_of;
use projections::replay::seal;
use projections::{
    Action, Command, Event, Hash, Ledger, Refusal, SealedEntry, SignedCommand, Timestamp,
};
use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::envelope::sign_system;
use crate::store::{EventStore, StoreError, StoredEntry};

/// What an accepted command gets back.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Receipt {
    /// Position of the entry in the log, counted from zero.
    pub position: u64,
    /// SHA-256 of the entry bytes, hexadecimal: the chain link.
    pub entry_hash: String,
    #[schema(value_type = String, format = DateTime)]
    pub server_time: Timestamp,
}

impl Receipt {
    fn of(event: &Event) -> Receipt {
        Receipt {
            position: event.position,
            entry_hash: hex::encode(event.hash),
            server_time: event.server_time,
        }
    }
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
}

type Reply<T> = oneshot::Sender<Result<T, SubmitError>>;

pub enum Submission {
    Command {
        signed: Box<SignedCommand>,
        reply: Reply<Receipt>,
    },
    DueSystemEvents {
        reply: Reply<Vec<Receipt>>,
    },
}

/// The sending side, cloned into every request handler.
#[derive(Clone)]
pub struct WriterHandle {
    sender: SyncSender<Submission>,
}

impl WriterHandle {
    pub async fn submit(&self, signed: SignedCommand) -> Result<Receipt, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.send(Submission::Command {
            signed: Box::new(signed),
            reply,
        })?;
        answer.await.map_err(|_| SubmitError::Stopped)?
    }

    pub async fn append_due_system_events(&self) -> Result<Vec<Receipt>, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.send(Submission::DueSystemEvents { reply })?;
        answer.await.map_err(|_| SubmitError::Stopped)?
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
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    server_key: SigningKey,
    working: Ledger,
    published: Arc<RwLock<Ledger>>,
    receiver: Receiver<Submission>,
}

/// Replies owed once the batch is durable.
enum Owed {
    One(Reply<Receipt>, usize),
    Many(Reply<Vec<Receipt>>, std::ops::Range<usize>),
}

impl Writer {
    pub fn spawn(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        server_key: SigningKey,
        published: Arc<RwLock<Ledger>>,
        queue_commands_max: usize,
    ) -> std::io::Result<(WriterHandle, std::thread::JoinHandle<()>)> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(queue_commands_max);
        let working = published
            .read()
            .map(|ledger| ledger.clone())
            .unwrap_or_default();
        let writer = Writer {
            store,
            clock,
            server_key,
            working,
            published,
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
            let first = match self.receiver.recv_timeout(Duration::from_secs(1)) {
                Ok(submission) => submission,
                Err(RecvTimeoutError::Timeout) => continue,
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
        }
        tracing::info!("log writer stopped: every handle was dropped");
    }

    fn commit_batch(&mut self, batch: Vec<Submission>) {
        // Server time never runs backwards along the chain, whatever the wall clock does.
        let server_time = self.clock.now().max(self.working.last_server_time);
        let mut sealed: Vec<SealedEntry> = Vec::with_capacity(batch.len());
        let mut owed = Vec::with_capacity(batch.len());
        for submission in batch {
            match submission {
                Submission::Command { signed, reply } => {
                    match seal(&self.working, *signed, server_time) {
                        Ok(entry) => {
                            self.working.evolve(&entry.event);
                            owed.push(Owed::One(reply, sealed.len()));
                            sealed.push(entry);
                        }
                        Err(refusal) => {
                            let _ = reply.send(Err(refusal.into()));
                        }
                    }
                }
                Submission::DueSystemEvents { reply } => {
                    let start = sealed.len();
                    for action in self.working.due_system_actions(server_time) {
                        let name = action.name();
                        match self.seal_system(action, server_time) {
                            Ok(entry) => {
                                self.working.evolve(&entry.event);
                                sealed.push(entry);
                            }
                            Err(refusal) => {
                                tracing::error!(action = name, %refusal, "a due system event was refused");
                            }
                        }
                    }
                    owed.push(Owed::Many(reply, start..sealed.len()));
                }
            }
        }
        let stored: Vec<StoredEntry> = sealed
            .iter()
            .map(|entry| StoredEntry {
                position: entry.event.position,
                bytes: entry.bytes.clone(),
                hash: entry.event.hash,
            })
            .collect();
        match self.store.append(&stored) {
            Ok(()) => {
                self.publish(&sealed);
                let receipts: Vec<Receipt> = sealed
                    .iter()
                    .map(|entry| Receipt::of(&entry.event))
                    .collect();
                for debt in owed {
                    match debt {
                        Owed::One(reply, index) => {
                            let _ = reply.send(Ok(receipts[index].clone()));
                        }
                        Owed::Many(reply, range) => {
                            let _ = reply.send(Ok(receipts[range].to_vec()));
                        }
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, entries = stored.len(), "appending a batch failed; its commands are refused");
                self.resynchronise();
                let message = error.to_string();
                for debt in owed {
                    match debt {
                        Owed::One(reply, _) => {
                            let _ = reply.send(Err(SubmitError::StoreUnavailable(message.clone())));
                        }
                        Owed::Many(reply, _) => {
                            let _ = reply.send(Err(SubmitError::StoreUnavailable(message.clone())));
                        }
                    }
                }
            }
        }
    }

    fn seal_system(&self, action: Action, server_time: Timestamp) -> Result<SealedEntry, Refusal> {
        let command = Command {
            author: public_key_of(&self.server_key),
            nonce: format!("{:032x}", self.working.size),
            issued_at: server_time,
            action,
        };
        seal(
            &self.working,
            sign_system(&self.server_key, command),
            server_time,
        )
    }

    fn publish(&self, sealed: &[SealedEntry]) {
        match self.published.write() {
            Ok(mut ledger) => {
                for entry in sealed {
                    ledger.evolve(&entry.event);
                }
            }
            Err(_) => tracing::error!("published ledger lock poisoned; reads are stale"),
        }
    }

    /// After a failed append the working ledger may hold events that never became durable.
    /// Start again from the published ledger, then fold in whatever the store did keep (an
    /// append can fail after its commit, for example when a connection drops).
    fn resynchronise(&mut self) {
        let Ok(published) = self.published.read().map(|ledger| ledger.clone()) else {
            return;
        };
        let mut replayer = projections::Replayer { ledger: published };
        let mut recovered = Vec::new();
        match catch_up(&*self.store, &mut replayer, |event| {
            recovered.push(event.clone())
        }) {
            Ok(_) => {
                if !recovered.is_empty() {
                    tracing::warn!(
                        events = recovered.len(),
                        "a failed append had committed; folding it in"
                    );
                    if let Ok(mut ledger) = self.published.write() {
                        for event in &recovered {
                            ledger.evolve(event);
                        }
                    }
                }
            }
            Err(error) => tracing::error!(%error, "reading the store after a failed append failed"),
        }
        self.working = replayer.ledger;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Replay(#[from] projections::ReplayError),
}

/// Folds every stored entry from the replayer's size on, checking each as it goes; returns how
/// many were folded.
pub fn catch_up(
    store: &dyn EventStore,
    replayer: &mut projections::Replayer,
    mut on_event: impl FnMut(&Event),
) -> Result<u64, CatchUpError> {
    let mut folded = 0;
    loop {
        let page = store.read(
            replayer.ledger.size,
            projections::limits::LOG_PAGE_ENTRIES_MAX,
        )?;
        if page.is_empty() {
            return Ok(folded);
        }
        for stored in &page {
            let stored_hash: &Hash = &stored.hash;
            on_event(&replayer.apply(&stored.bytes, Some(stored_hash))?);
            folded += 1;
        }
    }
}
