//! The one replay pipeline: read a page ahead, check its entries on their own over every core
//! (signatures batched), fold them in log order. `veche verify` runs it over an export; the
//! server runs it over its store at start-up, when following other nodes and when auditing a
//! snapshot.
//!
//! **Policy for a panicking checking thread:** its slice counts as failed, never as skipped. The
//! pipeline stops with [`PipelineError::CheckerPanicked`] naming the first position of that
//! slice, after folding every entry before it; nothing at or after it is folded.

use projections::limits::{REPLAY_PAGE_ENTRIES, REPLAY_PARALLEL_CHECK_ENTRIES_MIN};
use projections::protocol::entry_hash;
use projections::replay::{check_entry, CheckedEntry, SignatureCheck};
use projections::{Entry, Event, Hash, Ledger, ReplayError, ReplayFailure, Replayer};

/// One entry as a source hands it over: its bytes and, if the source keeps one, the hash stored
/// beside it.
pub trait EntryRecord: Send + Sync {
    fn bytes(&self) -> &[u8];
    fn stored_hash(&self) -> Option<&Hash>;
}

impl EntryRecord for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn stored_hash(&self) -> Option<&Hash> {
        None
    }
}

/// Where entries come from, in log order: an export stream, or a server's store.
pub trait EntryReader: Send {
    type Record: EntryRecord;
    type Error: std::error::Error + Send;
    /// Up to `limit` entries following the last ones read; empty at the end of the log.
    fn read_page(&mut self, limit: usize) -> Result<Vec<Self::Record>, Self::Error>;
}

/// How signatures are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signatures {
    /// One batch equation per slice; any failure falls back to strict checks that name the entry,
    /// so it accepts exactly what `Strict` accepts (see `projections::protocol::verify_batch`).
    Batched,
    /// Each signature on its own.
    Strict,
    /// None: the caller checked every one of these entries' signatures on their way in, and
    /// compares the hash the fold ends at with one it holds (a node's background snapshot,
    /// over the node's own durable entries). Never for a log from elsewhere.
    CheckedOnTheWayIn,
}

#[derive(Clone, Copy, Debug)]
pub struct PipelineOptions {
    pub threads: usize,
    pub signatures: Signatures,
    /// Fold no entry at or beyond this position.
    pub end: u64,
}

impl PipelineOptions {
    /// Batched signatures on every core, to the end of the log: what the server uses.
    pub fn every_core() -> PipelineOptions {
        PipelineOptions {
            threads: available_threads(),
            signatures: Signatures::Batched,
            end: u64::MAX,
        }
    }
}

/// The machine's cores, or one if it cannot tell.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError<R: std::error::Error, F: std::error::Error> {
    #[error("reading the log: {0}")]
    Read(#[source] R),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("position {position}: a checking thread panicked; its entries count as failed")]
    CheckerPanicked { position: u64 },
    #[error(transparent)]
    Fold(F),
}

/// One folded entry, handed to the caller's observer with the ledger just after it.
pub struct Folded<'a> {
    pub event: &'a Event,
    pub ledger: &'a Ledger,
    /// True for the last entry of a page: a place to report progress.
    pub last_of_page: bool,
}

type Checks = Vec<Result<CheckedEntry, ReplayFailure>>;

/// A page's entries checked on their own, in log order, up to the slice whose thread panicked.
struct CheckedPage {
    checks: Checks,
    /// The first position of the slice whose checking thread panicked, if one did.
    panicked_at: Option<u64>,
}

type PageMessage<R> = Result<(u64, CheckedPage), R>;

/// Folds every entry `reader` yields into `replayer` (from its size on), checking each; returns
/// how many were folded. `observe` sees each folded entry and may stop the replay with an error.
pub fn replay<R, F>(
    reader: &mut R,
    replayer: &mut Replayer,
    options: PipelineOptions,
    mut observe: impl FnMut(Folded<'_>) -> Result<(), F>,
) -> Result<u64, PipelineError<R::Error, F>>
where
    R: EntryReader,
    F: std::error::Error,
{
    let threads = options.threads.max(1);
    let signatures = options.signatures;
    let base = replayer.ledger.size;
    let mut next = base;
    let mut read_page = move |reader: &mut R| -> Result<(u64, Vec<R::Record>), R::Error> {
        let left = usize::try_from(options.end.saturating_sub(next)).unwrap_or(usize::MAX);
        let page = match left.min(REPLAY_PAGE_ENTRIES) {
            0 => Vec::new(),
            limit => reader.read_page(limit)?,
        };
        let page_base = next;
        next += page.len() as u64;
        Ok((page_base, page))
    };
    let (_, page) = read_page(reader).map_err(PipelineError::Read)?;
    let full = page.len() == REPLAY_PAGE_ENTRIES;
    let checks = check_page(&page, base, threads, signatures);
    let mut folded = fold_page(replayer, base, checks, &mut observe)?;
    if !full || threads == 1 {
        // The whole backlog is in hand (or there is one core): no pipeline to gain from.
        loop {
            let (page_base, page) = read_page(reader).map_err(PipelineError::Read)?;
            if page.is_empty() {
                return Ok(folded);
            }
            let checks = check_page(&page, page_base, threads, signatures);
            folded += fold_page(replayer, page_base, checks, &mut observe)?;
        }
    }
    std::thread::scope(|scope| {
        // Two checked pages in flight at most: enough to keep the fold busy, bounded in memory.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<PageMessage<R::Error>>(2);
        scope.spawn(move || loop {
            let message = read_page(reader).map(|(page_base, page)| {
                let empty = page.is_empty();
                let checks = check_page(&page, page_base, threads, signatures);
                (empty, (page_base, checks))
            });
            let (stop, message) = match message {
                Ok((empty, page)) => (empty, Ok(page)),
                Err(error) => (true, Err(error)),
            };
            // A closed channel means the fold stopped at a failure: nothing more to read.
            if sender.send(message).is_err() || stop {
                return;
            }
        });
        for message in receiver {
            let (page_base, checks) = message.map_err(PipelineError::Read)?;
            folded += fold_page(replayer, page_base, checks, &mut observe)?;
        }
        Ok(folded)
    })
}

/// Folds one checked page in order from `base`; the first failure names its position.
fn fold_page<R: std::error::Error, F: std::error::Error>(
    replayer: &mut Replayer,
    base: u64,
    page: CheckedPage,
    observe: &mut impl FnMut(Folded<'_>) -> Result<(), F>,
) -> Result<u64, PipelineError<R, F>> {
    let CheckedPage {
        checks,
        panicked_at,
    } = page;
    let count = checks.len();
    for (offset, checked) in checks.into_iter().enumerate() {
        let checked = checked.map_err(|failure| ReplayError {
            position: base + offset as u64,
            failure,
        })?;
        let event = replayer.apply_checked(checked)?;
        observe(Folded {
            event: &event,
            ledger: &replayer.ledger,
            last_of_page: offset + 1 == count && panicked_at.is_none(),
        })
        .map_err(PipelineError::Fold)?;
    }
    match panicked_at {
        None => Ok(count as u64),
        Some(position) => Err(PipelineError::CheckerPanicked { position }),
    }
}

/// Checks one page on its own, in slices over `threads` threads when it is large enough to pay
/// for them; results in log order, cut at a slice whose thread panicked.
fn check_page<Record: EntryRecord>(
    page: &[Record],
    base: u64,
    threads: usize,
    signatures: Signatures,
) -> CheckedPage {
    if page.len() < REPLAY_PARALLEL_CHECK_ENTRIES_MIN || threads == 1 {
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_slice(page, signatures)
        }));
        return match checked {
            Ok(checks) => CheckedPage {
                checks,
                panicked_at: None,
            },
            Err(_) => CheckedPage {
                checks: Vec::new(),
                panicked_at: Some(base),
            },
        };
    }
    let slice_length = page.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = page
            .chunks(slice_length)
            .map(|slice| scope.spawn(move || check_slice(slice, signatures)))
            .collect();
        let mut checks = Vec::with_capacity(page.len());
        for (index, worker) in workers.into_iter().enumerate() {
            match worker.join() {
                Ok(slice) => checks.extend(slice),
                Err(_) => {
                    return CheckedPage {
                        checks,
                        panicked_at: Some(base + (index * slice_length) as u64),
                    }
                }
            }
        }
        CheckedPage {
            checks,
            panicked_at: None,
        }
    })
}

/// Checks one slice of entries on their own (decoding, stored hash, signature, payload), in
/// order. Signatures are checked before payloads, so an altered payload is reported as the
/// forgery it is.
fn check_slice<Record: EntryRecord>(slice: &[Record], signatures: Signatures) -> Checks {
    let each = |check: SignatureCheck| {
        slice
            .iter()
            .map(|record| check_entry(record.bytes(), record.stored_hash(), check))
            .collect()
    };
    match signatures {
        Signatures::Strict => return each(SignatureCheck::Strict),
        Signatures::CheckedOnTheWayIn => return each(SignatureCheck::AlreadyVerified),
        Signatures::Batched => {}
    }
    let decoded: Vec<Result<Entry, ReplayFailure>> = slice
        .iter()
        .map(|record| Entry::decode(record.bytes()).map_err(ReplayFailure::from))
        .collect();
    let candidates: Vec<(usize, &Entry)> = decoded
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| entry.as_ref().ok().map(|entry| (index, entry)))
        .collect();
    let entries: Vec<&Entry> = candidates.iter().map(|(_, entry)| *entry).collect();
    let first_bad_signature = projections::protocol::verify_batch(&entries)
        .err()
        .map(|(bad, error)| (candidates[bad].0, error));
    slice
        .iter()
        .zip(decoded)
        .enumerate()
        .map(|(index, (record, entry))| {
            entry?;
            match first_bad_signature {
                // The stored hash is checked first, as `check_entry` does: an entry altered in
                // the store is named as such, not as a bad signature.
                Some((bad, _))
                    if bad == index
                        && record
                            .stored_hash()
                            .is_some_and(|stored| *stored != entry_hash(record.bytes())) =>
                {
                    Err(ReplayFailure::StoredHashMismatch)
                }
                Some((bad, error)) if bad == index => Err(ReplayFailure::Signature(error)),
                // Replay stops at the first failure, so entries after a bad one need no verdict
                // of their own.
                _ => check_entry(
                    record.bytes(),
                    record.stored_hash(),
                    SignatureCheck::AlreadyVerified,
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use projections::command::{Genesis, RegisterKey};
    use projections::protocol::public_key_of;
    use projections::replay::{seal, SignedCommand};
    use projections::{Action, Command, EntryKind, Timestamp};

    use super::*;

    const START: Timestamp = Timestamp(1_795_428_000_000);

    /// An entry whose bytes panic when read at `panics`: a stand-in for a bug in a check.
    struct Record {
        bytes: Vec<u8>,
        panics: bool,
    }

    impl EntryRecord for Record {
        fn bytes(&self) -> &[u8] {
            assert!(!self.panics, "a check that panics");
            &self.bytes
        }
        fn stored_hash(&self) -> Option<&Hash> {
            None
        }
    }

    struct Records(std::vec::IntoIter<Record>);

    impl EntryReader for Records {
        type Record = Record;
        type Error = std::io::Error;
        fn read_page(&mut self, limit: usize) -> Result<Vec<Record>, std::io::Error> {
            Ok(self.0.by_ref().take(limit).collect())
        }
    }

    /// A genesis and `registrations` citizens registering; the entry at `panics` panics when
    /// checked.
    fn log(registrations: u64, panics: Option<usize>) -> Records {
        let server = SigningKey::from_bytes(&[1; 32]);
        let signed = |key: &SigningKey, kind, action| {
            let command = Command {
                author: public_key_of(key),
                nonce: "0".repeat(32),
                issued_at: START,
                action,
            };
            SignedCommand::sign(key, kind, command)
        };
        let genesis = Action::Genesis(Genesis {
            log_origin: "pipeline.veche.test/log".into(),
            admin_keys: vec![public_key_of(&SigningKey::from_bytes(&[2; 32]))],
            recovery: None,
        });
        let mut commands = vec![signed(&server, EntryKind::System, genesis)];
        for citizen in 0..registrations {
            let mut seed = [3; 32];
            seed[..8].copy_from_slice(&citizen.to_be_bytes());
            let key = SigningKey::from_bytes(&seed);
            let action = Action::RegisterKey(RegisterKey {});
            commands.push(signed(&key, EntryKind::Command, action));
        }
        let mut ledger = Ledger::new();
        let mut records = Vec::new();
        for command in commands {
            let sealed = seal(&ledger, command, START).expect("a valid synthetic command");
            ledger.evolve(&sealed.event);
            records.push(Record {
                bytes: sealed.bytes,
                panics: panics == Some(records.len()),
            });
        }
        Records(records.into_iter())
    }

    fn options(threads: usize) -> PipelineOptions {
        PipelineOptions {
            threads,
            signatures: Signatures::Batched,
            end: u64::MAX,
        }
    }

    #[test]
    fn a_clean_log_folds_whole_on_one_thread_and_on_several() {
        for threads in [1, 2] {
            let entries = REPLAY_PARALLEL_CHECK_ENTRIES_MIN as u64 * 2;
            let mut replayer = Replayer::new();
            let folded = replay(
                &mut log(entries - 1, None),
                &mut replayer,
                options(threads),
                |_| Ok::<(), std::io::Error>(()),
            )
            .unwrap();
            assert_eq!(folded, entries, "{threads} threads");
            assert_eq!(replayer.ledger.size, entries, "{threads} threads");
        }
    }

    #[test]
    fn a_panicking_check_fails_its_slice_after_folding_every_entry_before_it() {
        // Two threads, two slices of the one page: the second slice's thread panics.
        let entries = REPLAY_PARALLEL_CHECK_ENTRIES_MIN * 2;
        let slice = entries / 2;
        let mut replayer = Replayer::new();
        let outcome = replay(
            &mut log(entries as u64 - 1, Some(slice + 5)),
            &mut replayer,
            options(2),
            |_| Ok::<(), std::io::Error>(()),
        );
        match outcome {
            Err(PipelineError::CheckerPanicked { position }) => {
                assert_eq!(position, slice as u64)
            }
            other => panic!("a panicking check must fail the replay, got {other:?}"),
        }
        assert_eq!(replayer.ledger.size, slice as u64, "folded up to the slice");
    }

    #[test]
    fn a_panicking_check_on_one_thread_fails_its_page_and_folds_nothing_of_it() {
        let mut replayer = Replayer::new();
        let outcome = replay(&mut log(10, Some(4)), &mut replayer, options(1), |_| {
            Ok::<(), std::io::Error>(())
        });
        assert!(
            matches!(outcome, Err(PipelineError::CheckerPanicked { position: 0 })),
            "{outcome:?}"
        );
        assert_eq!(replayer.ledger.size, 0);
    }
}
