//! `veche verify`, the journalist's check: replays an export (downloaded or on disk) trusting
//! nothing but the log's public key, and diffs the recount against what the server publishes.
//!
//! Checks, in order: the checkpoint's signature; per entry (spread over every core) its encoding,
//! its signature (batched) and its payload; then in log order its position, its hash link, its
//! time and the decision the server should have made; the Merkle root against the checkpoint; the
//! saved checkpoint of an earlier run against this log; and every published number against the
//! recount. The first failure names its position when it has one.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use projections::checkpoint::{open_note, Checkpoint, NoteVerifier};
use projections::replay::{check_entry, CheckedEntry, SignatureCheck};
use projections::{Hash, Ledger, ReplayFailure, Replayer};
use serde::Serialize;
use serde_json::Value;

/// Entries read and checked in parallel at a time: big enough to keep every core busy with
/// batch verification, small enough to bound memory on any log size.
const CHUNK_ENTRIES: usize = 16_384;
/// Magic first line of a saved verification state.
const STATE_MAGIC: &[u8] = b"veche verify state v1\n";

/// What went wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The first bad entry's position, when the failure has one.
    pub position: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some(position) => write!(formatter, "position {position}: {}", self.reason),
            None => formatter.write_str(&self.reason),
        }
    }
}

fn failure(position: Option<u64>, reason: impl Into<String>) -> Failure {
    Failure {
        position,
        reason: reason.into(),
    }
}

/// A checkpoint kept from an earlier run, with its leaf hashes so a fork is located exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedState {
    pub note: String,
    pub checkpoint: Checkpoint,
    /// Empty when only a bare checkpoint note was saved.
    pub leaf_hashes: Vec<Hash>,
}

impl SavedState {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = STATE_MAGIC.to_vec();
        bytes.extend_from_slice(&(self.note.len() as u32).to_be_bytes());
        bytes.extend_from_slice(self.note.as_bytes());
        for leaf in &self.leaf_hashes {
            bytes.extend_from_slice(leaf);
        }
        bytes
    }

    /// Reads a saved state, or a bare signed checkpoint note, checking its signature.
    pub fn decode(bytes: &[u8], verifier: &NoteVerifier) -> Result<SavedState, Failure> {
        let bad = |reason: &str| failure(None, format!("the saved checkpoint: {reason}"));
        let (note, leaves) = match bytes.strip_prefix(STATE_MAGIC) {
            Some(rest) => {
                let length: [u8; 4] = rest
                    .get(..4)
                    .and_then(|slice| slice.try_into().ok())
                    .ok_or_else(|| bad("truncated"))?;
                let length = u32::from_be_bytes(length) as usize;
                let note = rest.get(4..4 + length).ok_or_else(|| bad("truncated"))?;
                (note, &rest[4 + length..])
            }
            None => (bytes, &[][..]),
        };
        let note = std::str::from_utf8(note)
            .map_err(|_| bad("the note is not UTF-8"))?
            .to_owned();
        let checkpoint = open_checkpoint(&note, verifier).map_err(|reason| bad(&reason.reason))?;
        if leaves.len() % 32 != 0 {
            return Err(bad("the leaf hashes are truncated"));
        }
        let leaf_hashes: Vec<Hash> = leaves
            .chunks_exact(32)
            .map(|chunk| {
                let mut hash = [0; 32];
                hash.copy_from_slice(chunk);
                hash
            })
            .collect();
        if !leaf_hashes.is_empty() && leaf_hashes.len() as u64 != checkpoint.size {
            return Err(bad(
                "it holds a different number of leaf hashes than its size",
            ));
        }
        Ok(SavedState {
            note,
            checkpoint,
            leaf_hashes,
        })
    }
}

fn open_checkpoint(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, Failure> {
    let body = open_note(note, verifier).map_err(|error| {
        failure(
            None,
            format!("the checkpoint's signature does not verify: {error}"),
        )
    })?;
    let checkpoint = Checkpoint::parse_body(&body)
        .map_err(|error| failure(None, format!("the checkpoint is malformed: {error}")))?;
    if checkpoint.origin != verifier.name() {
        return Err(failure(
            None,
            format!(
                "the checkpoint is for log {:?}, not {:?}",
                checkpoint.origin,
                verifier.name()
            ),
        ));
    }
    Ok(checkpoint)
}

/// Numbers the server published, each with the log size it was computed from.
#[derive(Default, Debug)]
pub struct Published {
    /// Poll tallies by log size.
    pub tallies: BTreeMap<u64, Vec<Value>>,
    /// Complaint statistics by log size.
    pub statistics: BTreeMap<u64, Value>,
}

impl Published {
    fn sizes(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self
            .tallies
            .keys()
            .chain(self.statistics.keys())
            .copied()
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }
}

pub struct Options {
    pub verifier: NoteVerifier,
    pub previous: Option<SavedState>,
    /// Verify each signature on its own instead of in batches.
    pub strict_signatures: bool,
    pub threads: usize,
    /// Keep every leaf hash, to save a state for the next run.
    pub keep_leaf_hashes: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub log_origin: Option<String>,
    pub tree_size: Option<u64>,
    /// The recomputed Merkle root, base64.
    pub root: Option<String>,
    pub entries_verified: u64,
    pub signatures: &'static str,
    pub threads: usize,
    pub seconds: f64,
    pub events_per_second: f64,
    /// Size of the earlier run's checkpoint that this log was checked to extend.
    pub consistent_with_previous_size: Option<u64>,
    pub polls_recounted: u64,
    pub published_numbers_compared: u64,
    pub failure: Option<Failure>,
    #[serde(skip)]
    pub state: Option<SavedState>,
}

/// Reads one length-prefixed record; `Ok(None)` at a clean end of input.
fn read_record(input: &mut dyn Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 2];
    let mut filled = 0;
    while filled < 2 {
        let read = input.read(&mut length[filled..])?;
        if read == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        filled += read;
    }
    let mut record = vec![0u8; usize::from(u16::from_be_bytes(length))];
    input.read_exact(&mut record)?;
    Ok(Some(record))
}

/// Checks one slice of entries on its own (decoding, signatures, payload, and the hash the store
/// keeps beside an entry, if any), in order. Signatures are checked before payloads, so an altered
/// payload is reported as the forgery it is.
///
/// Signatures are checked in one batch equation unless `strict`: the batch accepts everything
/// the strict check accepts, and any failure falls back to strict checks that name the entry
/// (see `projections::protocol::verify_batch`).
fn check_slice(
    records: &[(&[u8], Option<&Hash>)],
    strict: bool,
) -> Vec<Result<CheckedEntry, ReplayFailure>> {
    if strict {
        return records
            .iter()
            .map(|(bytes, stored_hash)| check_entry(bytes, *stored_hash, SignatureCheck::Strict))
            .collect();
    }
    let decoded: Vec<Result<projections::Entry, ReplayFailure>> = records
        .iter()
        .map(|(bytes, _)| projections::Entry::decode(bytes).map_err(ReplayFailure::from))
        .collect();
    let mut first_bad_signature = None;
    let candidates: Vec<(usize, &projections::Entry)> = decoded
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| entry.as_ref().ok().map(|entry| (index, entry)))
        .collect();
    let entries: Vec<&projections::Entry> = candidates.iter().map(|(_, entry)| *entry).collect();
    if let Err((bad, error)) = projections::protocol::verify_batch(&entries) {
        first_bad_signature = Some((candidates[bad].0, error));
    }
    records
        .iter()
        .zip(decoded)
        .enumerate()
        .map(|(index, ((bytes, stored_hash), entry))| {
            entry?;
            match first_bad_signature {
                Some((bad, error)) if bad == index => Err(ReplayFailure::Signature(error)),
                // Replay stops at the first failure, so entries after a bad one need no verdict
                // of their own.
                _ => check_entry(bytes, *stored_hash, SignatureCheck::AlreadyVerified),
            }
        })
        .collect()
}

/// Checks stored entries on their own, spread over `threads` threads, each slice's signatures
/// in one batch (as `veche verify` does); results in log order. The server checked every
/// signature strictly on the way in; this is the second check of the pair, on replay.
pub fn check_stored_in_parallel(
    page: &[crate::store::StoredEntry],
    threads: usize,
) -> Vec<Result<CheckedEntry, ReplayFailure>> {
    let slice_length = page.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = page
            .chunks(slice_length)
            .map(|slice| {
                scope.spawn(move || {
                    let records: Vec<(&[u8], Option<&Hash>)> = slice
                        .iter()
                        .map(|stored| (stored.bytes.as_slice(), Some(&stored.hash)))
                        .collect();
                    check_slice(&records, false)
                })
            })
            .collect();
        workers
            .into_iter()
            .zip(page.chunks(slice_length))
            .flat_map(|(worker, slice)| {
                worker.join().unwrap_or_else(|_| {
                    // A panicking check is a failed check, never a skipped one.
                    slice
                        .iter()
                        .map(|_| {
                            Err(ReplayFailure::Signature(
                                projections::protocol::SignatureError::Mismatch,
                            ))
                        })
                        .collect()
                })
            })
            .collect()
    })
}

/// A chunk of entries checked on their own, in log order from `base`.
struct CheckedChunk {
    base: u64,
    /// Entries read; `checked` holds fewer only if a checking thread failed.
    read: usize,
    checked: Vec<Result<CheckedEntry, ReplayFailure>>,
    /// Where the input broke off, if it did after this chunk's entries.
    broken: Option<(u64, String)>,
}

/// Reads the export chunk by chunk and checks each chunk's entries over `threads` threads,
/// until the input ends, breaks, or the receiver stops listening.
fn read_and_check(
    input: &mut (dyn Read + Send),
    threads: usize,
    strict: bool,
    sender: &std::sync::mpsc::SyncSender<CheckedChunk>,
) {
    let mut base = 0u64;
    loop {
        let mut records = Vec::with_capacity(CHUNK_ENTRIES);
        let mut broken = None;
        let mut ended = false;
        while records.len() < CHUNK_ENTRIES {
            match read_record(input) {
                Ok(Some(record)) => records.push(record),
                Ok(None) => {
                    ended = true;
                    break;
                }
                Err(error) => {
                    broken = Some((base + records.len() as u64, error.to_string()));
                    break;
                }
            }
        }
        let slice_length = records.len().div_ceil(threads).max(1);
        let checked: Vec<Result<CheckedEntry, ReplayFailure>> = std::thread::scope(|scope| {
            let workers: Vec<_> = records
                .chunks(slice_length)
                .map(|slice| {
                    scope.spawn(move || {
                        let records: Vec<(&[u8], Option<&Hash>)> =
                            slice.iter().map(|bytes| (bytes.as_slice(), None)).collect();
                        check_slice(&records, strict)
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap_or_default())
                .collect()
        });
        let count = records.len() as u64;
        let stop = ended || broken.is_some();
        if sender
            .send(CheckedChunk {
                base,
                read: records.len(),
                checked,
                broken,
            })
            .is_err()
            || stop
        {
            return;
        }
        base += count;
    }
}

/// Verifies an export stream: the checkpoint record, then the entries.
pub fn verify_export(
    input: &mut (dyn Read + Send),
    options: &Options,
    published: &Published,
    progress: &mut dyn FnMut(u64, u64),
) -> Report {
    let started = Instant::now();
    let mut report = Report {
        ok: false,
        log_origin: None,
        tree_size: None,
        root: None,
        entries_verified: 0,
        signatures: if options.strict_signatures {
            "strict, one by one"
        } else {
            "batched"
        },
        threads: options.threads.max(1),
        seconds: 0.0,
        events_per_second: 0.0,
        consistent_with_previous_size: None,
        polls_recounted: 0,
        published_numbers_compared: 0,
        failure: None,
        state: None,
    };
    let outcome = run(input, options, published, progress, &mut report);
    report.seconds = started.elapsed().as_secs_f64();
    report.events_per_second = report.entries_verified as f64 / report.seconds.max(1e-9);
    match outcome {
        Ok(()) => report.ok = true,
        Err(failure) => report.failure = Some(failure),
    }
    report
}

fn run(
    input: &mut (dyn Read + Send),
    options: &Options,
    published: &Published,
    progress: &mut dyn FnMut(u64, u64),
    report: &mut Report,
) -> Result<(), Failure> {
    let note = read_record(input)
        .map_err(|error| failure(None, format!("cannot read the checkpoint record: {error}")))?
        .ok_or_else(|| failure(None, "the export is empty"))?;
    let note =
        String::from_utf8(note).map_err(|_| failure(None, "the checkpoint record is not UTF-8"))?;
    let checkpoint = open_checkpoint(&note, &options.verifier)?;
    report.log_origin = Some(checkpoint.origin.clone());
    report.tree_size = Some(checkpoint.size);
    if let Some(previous) = &options.previous {
        if previous.checkpoint.size > checkpoint.size {
            return Err(failure(
                None,
                format!(
                    "the log shrank: the saved checkpoint has {} entries, this one {}",
                    previous.checkpoint.size, checkpoint.size
                ),
            ));
        }
    }
    let threads = options.threads.max(1);
    let strict = options.strict_signatures;
    let mut replayer = Replayer::new();
    let mut leaf_hashes = Vec::new();
    let published_sizes = published.sizes();
    let mut next_published = 0;
    // A pipeline: one thread reads and checks the next chunk (spread over every core) while this
    // one replays the chunk before it in order.
    std::thread::scope(|scope| -> Result<(), Failure> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<CheckedChunk>(2);
        scope.spawn(move || read_and_check(input, threads, strict, &sender));
        for chunk in receiver {
            if chunk.checked.len() != chunk.read {
                return Err(failure(Some(chunk.base), "a verification thread failed"));
            }
            for (offset, result) in chunk.checked.into_iter().enumerate() {
                let position = chunk.base + offset as u64;
                if position >= checkpoint.size {
                    return Err(failure(
                        Some(position),
                        format!(
                            "the export holds entries beyond the checkpoint's {} entries",
                            checkpoint.size
                        ),
                    ));
                }
                let checked = result.map_err(|error| failure(Some(position), describe(&error)))?;
                let leaf = checked.leaf_hash;
                replayer
                    .apply_checked(checked)
                    .map_err(|error| failure(Some(error.position), describe(&error.failure)))?;
                if let Some(previous) = &options.previous {
                    compare_with_previous(previous, position, &leaf, &replayer.ledger, report)?;
                }
                if options.keep_leaf_hashes {
                    leaf_hashes.push(leaf);
                }
                let size = replayer.ledger.size;
                while published_sizes.get(next_published) == Some(&size) {
                    compare_published(published, size, &replayer.ledger, report)?;
                    next_published += 1;
                }
            }
            if let Some((position, error)) = chunk.broken {
                return Err(failure(
                    Some(position),
                    format!("the export breaks off inside this entry: {error}"),
                ));
            }
            report.entries_verified = replayer.ledger.size;
            progress(replayer.ledger.size, checkpoint.size);
        }
        Ok(())
    })?;
    let size = replayer.ledger.size;
    if size < checkpoint.size {
        return Err(failure(
            Some(size),
            format!(
                "the log ends here, but the signed checkpoint covers {} entries",
                checkpoint.size
            ),
        ));
    }
    // The checkpoint key must be the key the log's genesis names as the server's, under the same
    // name: otherwise a valid checkpoint could vouch for someone else's log.
    match &replayer.ledger.identity {
        Some(identity)
            if identity.server_key == options.verifier.public_key()
                && identity.log_origin == checkpoint.origin => {}
        Some(identity) => {
            return Err(failure(
                Some(0),
                format!(
                    "the genesis entry names log {:?} with server key {}, not the checkpoint's \
                     {:?} and verifier key",
                    identity.log_origin,
                    identity.server_key.to_hex(),
                    checkpoint.origin
                ),
            ))
        }
        None => return Err(failure(Some(0), "the log has no genesis entry")),
    }
    let root = replayer.ledger.merkle.root();
    report.root = Some(crate::transparency::base64(&root));
    if root != checkpoint.root {
        return Err(failure(
            None,
            "the Merkle root of the log differs from the signed checkpoint's root: the checkpoint \
             was replaced or the entries were altered without breaking a link",
        ));
    }
    if let Some(size) = published_sizes.get(next_published) {
        return Err(failure(
            None,
            format!("the server published numbers at log size {size}, beyond this export"),
        ));
    }
    report.polls_recounted = replayer.ledger.polls.len() as u64;
    if options.keep_leaf_hashes {
        report.state = Some(SavedState {
            note,
            checkpoint,
            leaf_hashes,
        });
    }
    Ok(())
}

fn describe(failure: &ReplayFailure) -> String {
    match failure {
        ReplayFailure::BrokenLink => {
            "the entry's previous-hash link does not match the hash of the \
                                      entry before it (one of the two was altered, or an entry \
                                      was removed or moved)"
                .into()
        }
        other => other.to_string(),
    }
}

/// Checks that the log agrees with the earlier run's saved checkpoint: leaf by leaf when the
/// leaves were saved, and by root once the log reaches the saved size.
fn compare_with_previous(
    previous: &SavedState,
    position: u64,
    leaf: &Hash,
    ledger: &Ledger,
    report: &mut Report,
) -> Result<(), Failure> {
    let saved_size = previous.checkpoint.size;
    if let Some(saved_leaf) = usize::try_from(position)
        .ok()
        .and_then(|index| previous.leaf_hashes.get(index))
    {
        if saved_leaf != leaf {
            return Err(failure(
                Some(position),
                format!(
                    "the log forked: this entry differs from the one the saved checkpoint (size \
                     {saved_size}) covers"
                ),
            ));
        }
    }
    if ledger.size == saved_size {
        if ledger.merkle.root() != previous.checkpoint.root {
            return Err(failure(
                Some(position),
                format!(
                    "the log forked: its first {saved_size} entries do not have the saved \
                     checkpoint's root"
                ),
            ));
        }
        report.consistent_with_previous_size = Some(saved_size);
    }
    Ok(())
}

/// Diffs the numbers the server published at `size` against the recount.
fn compare_published(
    published: &Published,
    size: u64,
    ledger: &Ledger,
    report: &mut Report,
) -> Result<(), Failure> {
    for tally in published.tallies.get(&size).into_iter().flatten() {
        let poll_id = tally["poll"].as_u64().unwrap_or(u64::MAX);
        let Some(poll) = ledger.polls.get(&poll_id) else {
            return Err(failure(
                None,
                format!(
                    "the server publishes a tally for poll {poll_id}, which the log does not hold"
                ),
            ));
        };
        let recount = serde_json::json!({
            "counts": poll.tally.counts,
            "turnout": poll.tally.turnout,
            "superseded_ballots": poll.tally.superseded_ballots,
            "leading_options": poll.leading_options(),
            "is_final": poll.closed.is_some(),
        });
        for field in [
            "counts",
            "turnout",
            "superseded_ballots",
            "leading_options",
            "is_final",
        ] {
            if tally[field] != recount[field] {
                return Err(failure(
                    None,
                    format!(
                        "poll {poll_id}: the server publishes {field} = {} at log size {size}; the \
                         recount gives {}",
                        tally[field], recount[field]
                    ),
                ));
            }
            report.published_numbers_compared += 1;
        }
    }
    if let Some(statistics) = published.statistics.get(&size) {
        let recount =
            serde_json::to_value(projections::statistics::complaint_statistics(ledger))
                .map_err(|error| failure(None, format!("cannot serialise the recount: {error}")))?;
        let mut differences = Vec::new();
        let compared = diff_values("", statistics, &recount, &mut differences);
        report.published_numbers_compared += compared;
        if let Some(first) = differences.first() {
            return Err(failure(
                None,
                format!(
                    "complaint statistics at log size {size}: {} number(s) differ, first {first}",
                    differences.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Walks two JSON documents; returns how many leaves were compared and lists each difference.
fn diff_values(
    path: &str,
    published: &Value,
    recount: &Value,
    differences: &mut Vec<String>,
) -> u64 {
    match (published, recount) {
        (Value::Object(left), Value::Object(right)) => {
            let mut compared = 0;
            for key in left
                .keys()
                .chain(right.keys().filter(|key| !left.contains_key(*key)))
            {
                let null = Value::Null;
                compared += diff_values(
                    &format!("{path}/{key}"),
                    left.get(key).unwrap_or(&null),
                    right.get(key).unwrap_or(&null),
                    differences,
                );
            }
            compared
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => left
            .iter()
            .zip(right)
            .enumerate()
            .map(|(index, (left, right))| {
                diff_values(&format!("{path}/{index}"), left, right, differences)
            })
            .sum(),
        (left, right) => {
            if left != right {
                differences.push(format!("{path}: published {left}, recounted {right}"));
            }
            1
        }
    }
}

/// Fetches the numbers the server publishes, each with the log size it was computed at.
pub fn fetch_published(
    client: &reqwest::blocking::Client,
    base: &str,
) -> Result<Published, String> {
    let get = |path: &str| -> Result<reqwest::blocking::Response, String> {
        client
            .get(format!("{base}{path}"))
            .timeout(Duration::from_secs(60))
            .send()
            .map_err(|error| format!("GET {path}: {error}"))
    };
    let mut published = Published::default();
    let mut cursor: Option<u64> = None;
    let mut poll_ids = Vec::new();
    loop {
        let path = match cursor {
            Some(after) => format!("/v1/polls?limit=100&after={after}"),
            None => "/v1/polls?limit=100".to_owned(),
        };
        let page: Value = get(&path)?
            .json()
            .map_err(|error| format!("GET {path}: {error}"))?;
        for poll in page["polls"].as_array().into_iter().flatten() {
            if let Some(id) = poll["id"].as_u64() {
                poll_ids.push(id);
            }
        }
        cursor = page["next_after"].as_u64();
        if cursor.is_none() {
            break;
        }
    }
    for id in poll_ids {
        let response = get(&format!("/v1/polls/{id}/tally"))?;
        if response.status() == reqwest::StatusCode::FORBIDDEN {
            // Sealed until it closes: nothing is published to compare.
            continue;
        }
        let tally: Value = response
            .error_for_status()
            .map_err(|error| format!("poll {id} tally: {error}"))?
            .json()
            .map_err(|error| format!("poll {id} tally: {error}"))?;
        let size = tally["log_size"]
            .as_u64()
            .ok_or("a tally without log_size")?;
        published.tallies.entry(size).or_default().push(tally);
    }
    let response = get("/v1/statistics/complaints")?;
    let size = response
        .headers()
        .get("X-Veche-Log-Size")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .ok_or("the statistics response carries no X-Veche-Log-Size header")?;
    let statistics: Value = response
        .json()
        .map_err(|error| format!("statistics: {error}"))?;
    published.statistics.insert(size, statistics);
    Ok(published)
}
