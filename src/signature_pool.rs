//! The signature-check pool: envelopes are opened (parsed and strictly verified) on threads of
//! their own, so the HTTP workers, which also serve reads, never hold a read behind a queue of
//! 35 µs signature checks.
//!
//! An anonymous ballot's credentials (RSA, about five times an Ed25519 check) are verified here
//! too, against the issuer keys of its poll in the published ledger, and the success is
//! remembered beside each credential (`Credential::verify_and_remember`), so the single writer
//! does not repeat them; a failure is left for the writer to refuse with its reason.
//!
//! Invariant: one thread per core, a bounded queue (`limits::SIGNATURE_QUEUE_ENVELOPES_MAX`); a
//! full queue is refused at once as overload rather than waited on; the published ledger's lock
//! is held only to copy a poll's issuer keys, never while verifying.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};

use projections::{Action, Ledger, SignedCommand};
use tokio::sync::oneshot;

use crate::envelope::{Envelope, EnvelopeError};
use crate::metrics::Observers;

type Job = (
    Envelope,
    oneshot::Sender<Result<SignedCommand, EnvelopeError>>,
);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("the signature-check queue is full")]
    Overloaded,
    #[error("the signature-check pool has stopped")]
    Stopped,
}

pub struct SignaturePool {
    jobs: SyncSender<Job>,
}

impl SignaturePool {
    /// Starts `threads` checking threads; they stop when the pool is dropped.
    pub fn start(
        threads: usize,
        queue_envelopes_max: usize,
        observers: Arc<Observers>,
        published: Arc<RwLock<Ledger>>,
    ) -> std::io::Result<SignaturePool> {
        let (jobs, receiver) = sync_channel::<Job>(queue_envelopes_max);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = receiver.clone();
            let observers = observers.clone();
            let published = published.clone();
            std::thread::Builder::new()
                .name(format!("veche-signatures-{index}"))
                .spawn(move || check_until_closed(&receiver, &observers, &published))?;
        }
        Ok(SignaturePool { jobs })
    }

    /// Opens `envelope` on a pool thread.
    pub async fn open(
        &self,
        envelope: Envelope,
    ) -> Result<Result<SignedCommand, EnvelopeError>, PoolError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .try_send((envelope, answer))
            .map_err(|error| match error {
                TrySendError::Full(_) => PoolError::Overloaded,
                TrySendError::Disconnected(_) => PoolError::Stopped,
            })?;
        answered.await.map_err(|_| PoolError::Stopped)
    }
}

fn check_until_closed(
    receiver: &Mutex<Receiver<Job>>,
    observers: &Observers,
    published: &RwLock<Ledger>,
) {
    loop {
        // The lock is held only to take one job, never while checking it.
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok((envelope, answer)) = job else {
            return;
        };
        let started = std::time::Instant::now();
        let mut opened = envelope.open();
        if let Ok(signed) = &mut opened {
            check_credentials_ahead(published, signed);
        }
        Observers::count(&observers.signature_checks, 1);
        Observers::count(
            &observers.signature_check_microseconds,
            started.elapsed().as_micros() as u64,
        );
        // The request may have gone (client closed the connection): nothing to answer then.
        let _ = answer.send(opened);
    }
}

/// Verifies an anonymous ballot's credentials against its poll's issuer keys, remembering each
/// success; does nothing for any other command, or when the poll is unknown here (the writer
/// decides, and refuses, in full).
fn check_credentials_ahead(published: &RwLock<Ledger>, signed: &mut SignedCommand) {
    let Action::CastAnonymousBallot(ballot) = &mut signed.command.action else {
        return;
    };
    let issuers = match published.read() {
        Ok(ledger) => ledger.polls.get(&ballot.poll).and_then(|poll| {
            projections::ledger::polls::anonymous::credential_issuers(poll, ballot)
        }),
        // A poisoned lock is the node's fault to report elsewhere; the writer checks in full.
        Err(_) => None,
    };
    let Some((issuer, co_issuer)) = issuers else {
        return;
    };
    let (poll, ballot_key) = (ballot.poll, signed.command.author);
    // A failure is not remembered: the writer verifies again and refuses with the reason.
    let _ = ballot
        .credential
        .verify_and_remember(&issuer, poll, &ballot_key);
    if let (Some(key), Some(credential)) = (co_issuer, ballot.co_issuer_credential.as_mut()) {
        let _ = credential.verify_and_remember(&key, poll, &ballot_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_key, SeededEntropy};
    use projections::command::RegisterKey;
    use projections::protocol::public_key_of;
    use projections::{Action, Command, Timestamp};

    fn envelope(seed: u64) -> Envelope {
        let key = generate_key(&SeededEntropy::new(seed));
        Envelope::sign(
            &key,
            &Command {
                author: public_key_of(&key),
                nonce: format!("{seed:032x}"),
                issued_at: Timestamp(1_795_428_000_000),
                action: Action::RegisterKey(RegisterKey {}),
            },
        )
    }

    #[test]
    fn the_pool_opens_good_envelopes_refuses_forged_ones_and_counts_every_check() {
        futures::executor::block_on(async {
            let observers = Arc::new(Observers::new(0));
            let pool = SignaturePool::start(2, 16, observers.clone(), Default::default()).unwrap();
            let good = pool.open(envelope(1)).await.unwrap().unwrap();
            assert_eq!(good.command.nonce, format!("{:032x}", 1));
            let mut forged = envelope(2);
            forged.signature = envelope(3).signature;
            assert!(pool.open(forged).await.unwrap().is_err());
            assert_eq!(
                observers
                    .signature_checks
                    .load(std::sync::atomic::Ordering::Relaxed),
                2
            );
        });
    }

    #[test]
    fn a_full_queue_is_refused_at_once_and_a_stopped_pool_says_so() {
        futures::executor::block_on(async {
            // No threads take jobs from this channel: the one queue slot fills and stays full.
            let (jobs, receiver) = sync_channel::<Job>(1);
            let pool = SignaturePool { jobs };
            let waiting = pool.jobs.try_send((envelope(4), oneshot::channel().0));
            assert!(waiting.is_ok());
            assert_eq!(
                pool.open(envelope(5)).await.err(),
                Some(PoolError::Overloaded)
            );
            drop(receiver);
            assert_eq!(pool.open(envelope(6)).await.err(), Some(PoolError::Stopped));
        });
    }
}
