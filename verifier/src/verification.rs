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
use std::time::Instant;

use projections::checkpoint::{open_note, Checkpoint, NoteVerifier};
use projections::content::Commitment;
use projections::limits::REPLAY_PAGE_ENTRIES;
use projections::{Hash, Ledger, ReplayFailure, Replayer};
use serde::Serialize;
use serde_json::Value;

use crate::pipeline::{replay, EntryReader, PipelineError, PipelineOptions, Signatures};

/// Magic first line of a saved verification state.
const STATE_MAGIC: &[u8] = b"veche verify state v1\n";

/// Why a log does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read the checkpoint record: {0}")]
    CheckpointUnreadable(#[source] std::io::Error),
    #[error("the export is empty")]
    EmptyExport,
    #[error("the checkpoint record is not UTF-8")]
    CheckpointNotUtf8,
    #[error("the checkpoint's signature does not verify: {0}")]
    CheckpointSignature(String),
    #[error("the checkpoint is malformed: {0}")]
    CheckpointMalformed(String),
    #[error("the checkpoint is for log {found:?}, not {expected:?}")]
    CheckpointOrigin { found: String, expected: String },
    #[error("the saved checkpoint: {0}")]
    SavedState(&'static str),
    #[error("the saved checkpoint: {0}")]
    SavedCheckpoint(Box<VerifyError>),
    #[error("the log shrank: the saved checkpoint has {saved} entries, this one {found}")]
    LogShrank { saved: u64, found: u64 },
    #[error("{}", describe(&.0.failure))]
    Entry(projections::ReplayError),
    #[error("{0}")]
    Broken(BrokenExport),
    #[error("a verification thread failed")]
    CheckerPanicked { position: u64 },
    #[error("the export holds entries beyond the checkpoint's {size} entries")]
    BeyondCheckpoint { position: u64, size: u64 },
    #[error("the log ends here, but the signed checkpoint covers {size} entries")]
    EndsEarly { position: u64, size: u64 },
    #[error(
        "the genesis entry names log {origin:?} with server key {server_key}, not the \
         checkpoint's {checkpoint_origin:?} and verifier key"
    )]
    ForeignGenesis {
        origin: String,
        server_key: String,
        checkpoint_origin: String,
    },
    #[error("the log has no genesis entry")]
    NoGenesis,
    #[error(
        "the Merkle root of the log differs from the signed checkpoint's root: the checkpoint \
         was replaced or the entries were altered without breaking a link"
    )]
    RootDiffers,
    #[error("the server published numbers at log size {size}, beyond this export")]
    PublishedBeyondExport { size: u64 },
    #[error(
        "the log forked: this entry differs from the one the saved checkpoint (size {saved_size}) \
         covers"
    )]
    ForkedEntry { position: u64, saved_size: u64 },
    #[error(
        "the log forked: its first {saved_size} entries do not have the saved checkpoint's root"
    )]
    ForkedRoot { position: u64, saved_size: u64 },
    #[error("the server publishes {what}, which the log does not hold")]
    PublishedUnknown { what: String },
    #[error("{subject}: the server publishes {field} = {published} at log size {size}; the recount gives {recount}")]
    PublishedDiffers {
        subject: String,
        field: &'static str,
        published: Value,
        recount: Value,
        size: u64,
    },
    #[error("the server publishes no standing for proposal {proposal} at log size {size}, which the log holds")]
    ProposalMissing { proposal: u64, size: u64 },
    #[error("complaint statistics at log size {size}: {count} number(s) differ, first {first}")]
    StatisticsDiffer {
        size: u64,
        count: usize,
        first: String,
    },
    #[error(
        "open data at log size {size}: {} file(s) differ from the recount: {}",
        .files.len(),
        .files.join("; ")
    )]
    OpenDataDiffers { size: u64, files: Vec<String> },
    #[error("open data: {0}")]
    OpenData(#[from] crate::open_data::OpenDataError),
    #[error("cannot serialise the recount: {0}")]
    Recount(#[from] serde_json::Error),
    #[error("{0}")]
    ServedConsistency(String),
    #[error("the served hash tile {path} {reason}")]
    ServedTile { path: String, reason: String },
    #[error("the served content {0}")]
    ServedContent(String),
    #[error(
        "content withheld: the server serves no text for commitment {commitment}, and no \
         erasure, redaction or spam rejection of the log erased it"
    )]
    ContentWithheld { position: u64, commitment: String },
    #[error(
        "content altered: the served salt and text do not hash to the signed commitment \
         {commitment}"
    )]
    ContentAltered { position: u64, commitment: String },
    #[error("content kept: the server still serves text that entry {erased_by} erased")]
    ContentKeptAfterErasure { position: u64, erased_by: u64 },
}

impl VerifyError {
    /// The first bad entry's position, when the failure has one.
    pub fn position(&self) -> Option<u64> {
        match self {
            VerifyError::Entry(error) => Some(error.position),
            VerifyError::Broken(broken) => Some(broken.position),
            VerifyError::CheckerPanicked { position }
            | VerifyError::BeyondCheckpoint { position, .. }
            | VerifyError::EndsEarly { position, .. }
            | VerifyError::ForkedEntry { position, .. }
            | VerifyError::ForkedRoot { position, .. }
            | VerifyError::ContentWithheld { position, .. }
            | VerifyError::ContentAltered { position, .. }
            | VerifyError::ContentKeptAfterErasure { position, .. } => Some(*position),
            VerifyError::ForeignGenesis { .. } | VerifyError::NoGenesis => Some(0),
            _ => None,
        }
    }

    fn from_pipeline(error: PipelineError<BrokenExport, VerifyError>) -> VerifyError {
        match error {
            PipelineError::Read(broken) => VerifyError::Broken(broken),
            PipelineError::Replay(error) => VerifyError::Entry(error),
            PipelineError::CheckerPanicked { position } => {
                VerifyError::CheckerPanicked { position }
            }
            PipelineError::Fold(error) => error,
        }
    }
}

/// What went wrong, and where: the report's rendering of a [`VerifyError`].
#[derive(Debug, Serialize)]
pub struct Failure {
    /// The first bad entry's position, when the failure has one.
    pub position: Option<u64>,
    pub reason: String,
    #[serde(skip)]
    pub error: VerifyError,
}

impl From<VerifyError> for Failure {
    fn from(error: VerifyError) -> Failure {
        Failure {
            position: error.position(),
            reason: error.to_string(),
            error,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some(position) => write!(formatter, "position {position}: {}", self.reason),
            None => formatter.write_str(&self.reason),
        }
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
    pub fn decode(bytes: &[u8], verifier: &NoteVerifier) -> Result<SavedState, VerifyError> {
        let bad = VerifyError::SavedState;
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
        let checkpoint = open_checkpoint(&note, verifier)
            .map_err(|error| VerifyError::SavedCheckpoint(Box::new(error)))?;
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

pub fn open_checkpoint(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, VerifyError> {
    let body = open_note(note, verifier)
        .map_err(|error| VerifyError::CheckpointSignature(error.to_string()))?;
    let checkpoint = Checkpoint::parse_body(&body)
        .map_err(|error| VerifyError::CheckpointMalformed(error.to_string()))?;
    if checkpoint.origin != verifier.name() {
        return Err(VerifyError::CheckpointOrigin {
            found: checkpoint.origin,
            expected: verifier.name().to_owned(),
        });
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
    /// Every proposal's standing (`id`, `status`, `supports`, as `/v1/proposals` lists them) by
    /// log size.
    pub proposals: BTreeMap<u64, Vec<Value>>,
    /// The files of an open-data dump, by the log size each was computed at.
    pub open_data: BTreeMap<u64, Vec<crate::open_data::DumpedFile>>,
}

impl Published {
    fn sizes(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self
            .tallies
            .keys()
            .chain(self.statistics.keys())
            .chain(self.proposals.keys())
            .chain(self.open_data.keys())
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

impl Options {
    /// The replay pipeline's options for a log of `size` entries.
    fn pipeline(&self, size: u64) -> PipelineOptions {
        PipelineOptions {
            threads: self.threads.max(1),
            signatures: if self.strict_signatures {
                Signatures::Strict
            } else {
                Signatures::Batched
            },
            end: size,
        }
    }
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
    /// Every entry that commits to content, by position, for checking a server's content.
    #[serde(skip)]
    pub committed: BTreeMap<u64, CommittedEntry>,
}

/// What the log says of one entry's content: its commitments in payload order, and the
/// `erase_content`, `redact_content` or redacting spam rejection that erased them, if one did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedEntry {
    pub commitments: Vec<Commitment>,
    pub erased_by: Option<u64>,
}

/// Notes the commitments of `event`, when it has any.
fn note_content(committed: &mut BTreeMap<u64, Vec<Commitment>>, event: &projections::Event) {
    let fields = event.command.action.committed_fields();
    if !fields.is_empty() {
        let commitments = fields.into_iter().map(|(_, commitment)| commitment);
        committed.insert(event.position, commitments.collect());
    }
}

/// The noted commitments with the erasures the whole log holds.
fn with_erasures(
    committed: BTreeMap<u64, Vec<Commitment>>,
    ledger: &Ledger,
) -> BTreeMap<u64, CommittedEntry> {
    committed
        .into_iter()
        .map(|(position, commitments)| {
            let erased_by = ledger.erasures.erased_by(position);
            (
                position,
                CommittedEntry {
                    commitments,
                    erased_by,
                },
            )
        })
        .collect()
}

/// Reads one length-prefixed record; `Ok(None)` at a clean end of input.
pub fn read_record(input: &mut dyn Read) -> std::io::Result<Option<Vec<u8>>> {
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

/// Where an export stream broke off.
#[derive(Debug, thiserror::Error)]
#[error("the export breaks off inside this entry: {source}")]
pub struct BrokenExport {
    pub position: u64,
    pub source: std::io::Error,
}

/// The export's entries as the pipeline reads them. A stream that breaks off hands over the
/// entries before the break first, and the break on the next read.
struct ExportReader<'input> {
    input: &'input mut (dyn Read + Send),
    position: u64,
    broken: Option<std::io::Error>,
}

impl EntryReader for ExportReader<'_> {
    type Record = Vec<u8>;
    type Error = BrokenExport;

    fn read_page(&mut self, limit: usize) -> Result<Vec<Vec<u8>>, BrokenExport> {
        if let Some(source) = self.broken.take() {
            return Err(BrokenExport {
                position: self.position,
                source,
            });
        }
        let mut records = Vec::with_capacity(limit.min(REPLAY_PAGE_ENTRIES));
        while records.len() < limit {
            match read_record(self.input) {
                Ok(Some(record)) => records.push(record),
                Ok(None) => break,
                Err(error) => {
                    self.broken = Some(error);
                    break;
                }
            }
        }
        self.position += records.len() as u64;
        Ok(records)
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
        committed: BTreeMap::new(),
    };
    let outcome = run(input, options, published, progress, &mut report);
    report.seconds = started.elapsed().as_secs_f64();
    report.events_per_second = report.entries_verified as f64 / report.seconds.max(1e-9);
    match outcome {
        Ok(()) => report.ok = true,
        Err(error) => report.failure = Some(error.into()),
    }
    report
}

/// Reads and opens the export's leading checkpoint, and checks it does not shrink the log.
fn leading_checkpoint(
    input: &mut (dyn Read + Send),
    options: &Options,
) -> Result<(String, Checkpoint), VerifyError> {
    let note = read_record(input)
        .map_err(VerifyError::CheckpointUnreadable)?
        .ok_or(VerifyError::EmptyExport)?;
    let note = String::from_utf8(note).map_err(|_| VerifyError::CheckpointNotUtf8)?;
    let checkpoint = open_checkpoint(&note, &options.verifier)?;
    if let Some(previous) = &options.previous {
        if previous.checkpoint.size > checkpoint.size {
            return Err(VerifyError::LogShrank {
                saved: previous.checkpoint.size,
                found: checkpoint.size,
            });
        }
    }
    Ok((note, checkpoint))
}

fn run(
    input: &mut (dyn Read + Send),
    options: &Options,
    published: &Published,
    progress: &mut dyn FnMut(u64, u64),
    report: &mut Report,
) -> Result<(), VerifyError> {
    let (note, checkpoint) = leading_checkpoint(input, options)?;
    report.log_origin = Some(checkpoint.origin.clone());
    report.tree_size = Some(checkpoint.size);
    let mut replayer = Replayer::new();
    let mut leaf_hashes = Vec::new();
    let published_sizes = published.sizes();
    let mut next_published = 0;
    let mut reader = ExportReader {
        input,
        position: 0,
        broken: None,
    };
    let pipeline = options.pipeline(checkpoint.size);
    let mut compared = 0;
    let (mut consistent, mut committed) = (None, BTreeMap::new());
    let outcome = replay(&mut reader, &mut replayer, pipeline, |folded| {
        let position = folded.event.position;
        note_content(&mut committed, folded.event);
        let leaf = folded.event.leaf_hash;
        if let Some(previous) = &options.previous {
            if compare_with_previous(previous, position, &leaf, folded.ledger)? {
                consistent = Some(previous.checkpoint.size);
            }
        }
        if options.keep_leaf_hashes {
            leaf_hashes.push(leaf);
        }
        let size = folded.ledger.size;
        while published_sizes.get(next_published) == Some(&size) {
            compared += compare_published(published, size, folded.ledger)?;
            next_published += 1;
        }
        if folded.last_of_page {
            progress(size, checkpoint.size);
        }
        Ok::<(), VerifyError>(())
    });
    report.entries_verified = replayer.ledger.size;
    report.published_numbers_compared = compared;
    report.consistent_with_previous_size = consistent;
    outcome.map_err(VerifyError::from_pipeline)?;
    check_complete(&mut reader, &replayer.ledger, &checkpoint, options)?;
    let root = replayer.ledger.merkle.root();
    report.root = Some(base64_of(&root));
    if root != checkpoint.root {
        return Err(VerifyError::RootDiffers);
    }
    if let Some(size) = published_sizes.get(next_published) {
        return Err(VerifyError::PublishedBeyondExport { size: *size });
    }
    report.polls_recounted = replayer.ledger.polls.len() as u64;
    report.committed = with_erasures(committed, &replayer.ledger);
    if options.keep_leaf_hashes {
        report.state = Some(SavedState {
            note,
            checkpoint,
            leaf_hashes,
        });
    }
    Ok(())
}

/// Every hash tile of the tree over `leaf_hashes`, full and partial, recomputed from the
/// leaves: what a server must serve at that size.
pub fn hash_tiles_of(leaf_hashes: &[Hash]) -> Vec<projections::tiles::Tile> {
    let mut frontier = projections::merkle::Frontier::default();
    let mut builder = projections::tiles::TileBuilder::new();
    let mut tiles = Vec::new();
    for leaf in leaf_hashes {
        let nodes = frontier.push(*leaf);
        // The builder refuses only nodes out of order, which one frontier never gives.
        tiles.extend(builder.add(&nodes).unwrap_or_default());
    }
    tiles.extend(builder.partial_tiles());
    tiles
}

/// After the replay: the export holds exactly the checkpoint's entries, and its genesis names
/// the checkpoint's key and origin.
fn check_complete(
    reader: &mut ExportReader<'_>,
    ledger: &Ledger,
    checkpoint: &Checkpoint,
    options: &Options,
) -> Result<(), VerifyError> {
    let beyond = reader.read_page(1).map_err(VerifyError::Broken)?;
    if !beyond.is_empty() {
        return Err(VerifyError::BeyondCheckpoint {
            position: ledger.size,
            size: checkpoint.size,
        });
    }
    if ledger.size < checkpoint.size {
        return Err(VerifyError::EndsEarly {
            position: ledger.size,
            size: checkpoint.size,
        });
    }
    // The checkpoint key must be the key the log's genesis names as the server's, under the same
    // name: otherwise a valid checkpoint could vouch for someone else's log.
    match ledger.identity() {
        Some(identity)
            if identity.server_key == options.verifier.public_key()
                && identity.log_origin == checkpoint.origin =>
        {
            Ok(())
        }
        Some(identity) => Err(VerifyError::ForeignGenesis {
            origin: identity.log_origin.clone(),
            server_key: identity.server_key.to_hex(),
            checkpoint_origin: checkpoint.origin.clone(),
        }),
        None => Err(VerifyError::NoGenesis),
    }
}

/// A hash as the server publishes it: standard base64.
pub fn base64_of(hash: &Hash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// A published base64 hash, if it is one.
pub fn hash_from_base64(text: &str) -> Option<Hash> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?
        .try_into()
        .ok()
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
/// leaves were saved, and by root once the log reaches the saved size (then returns true).
fn compare_with_previous(
    previous: &SavedState,
    position: u64,
    leaf: &Hash,
    ledger: &Ledger,
) -> Result<bool, VerifyError> {
    let saved_size = previous.checkpoint.size;
    if let Some(saved_leaf) = usize::try_from(position)
        .ok()
        .and_then(|index| previous.leaf_hashes.get(index))
    {
        if saved_leaf != leaf {
            return Err(VerifyError::ForkedEntry {
                position,
                saved_size,
            });
        }
    }
    if ledger.size != saved_size {
        return Ok(false);
    }
    if ledger.merkle.root() != previous.checkpoint.root {
        return Err(VerifyError::ForkedRoot {
            position,
            saved_size,
        });
    }
    Ok(true)
}

/// Diffs the numbers the server published at `size` against the recount; returns how many
/// numbers were compared.
fn compare_published(
    published: &Published,
    size: u64,
    ledger: &Ledger,
) -> Result<u64, VerifyError> {
    let mut compared = 0;
    for tally in published.tallies.get(&size).into_iter().flatten() {
        compared += compare_tally(tally, size, ledger)?;
    }
    if let Some(standings) = published.proposals.get(&size) {
        compared += compare_standings(standings, size, ledger)?;
    }
    if let Some(files) = published.open_data.get(&size) {
        let differing = crate::open_data::differing_files(files, ledger)?;
        if !differing.is_empty() {
            return Err(VerifyError::OpenDataDiffers {
                size,
                files: differing,
            });
        }
        compared += files.len() as u64;
    }
    if let Some(statistics) = published.statistics.get(&size) {
        let recount = serde_json::to_value(projections::statistics::complaint_statistics(ledger))?;
        let mut differences = Vec::new();
        compared += diff_values("", statistics, &recount, &mut differences);
        if let Some(first) = differences.first() {
            return Err(VerifyError::StatisticsDiffer {
                size,
                count: differences.len(),
                first: first.clone(),
            });
        }
    }
    Ok(compared)
}

/// Compares each field of one published field set with the recount's.
fn compare_fields(
    subject: &str,
    published: &Value,
    recount: &Value,
    fields: &[&'static str],
    size: u64,
) -> Result<u64, VerifyError> {
    for field in fields {
        if published[field] != recount[field] {
            return Err(VerifyError::PublishedDiffers {
                subject: subject.to_owned(),
                field,
                published: published[field].clone(),
                recount: recount[field].clone(),
                size,
            });
        }
    }
    Ok(fields.len() as u64)
}

fn compare_tally(tally: &Value, size: u64, ledger: &Ledger) -> Result<u64, VerifyError> {
    let unknown = || VerifyError::PublishedUnknown {
        what: format!("a tally for poll {}", tally["poll"]),
    };
    let poll_id = tally["poll"].as_u64().ok_or_else(unknown)?;
    let poll = ledger.polls.get(&poll_id).ok_or_else(unknown)?;
    let recount = serde_json::json!({
        "counts": poll.tally.counts,
        "turnout": poll.tally.turnout,
        "superseded_ballots": poll.tally.superseded_ballots,
        "leading_options": poll.leading_options(),
        "is_final": poll.closed.is_some(),
        "credentials_issued": poll.credentials.as_ref().map(|counts| &counts.issued),
        "ballot_keys_counted": poll.credentials.as_ref().map(|counts| &counts.counted),
    });
    let fields = [
        "counts",
        "turnout",
        "superseded_ballots",
        "leading_options",
        "is_final",
        "credentials_issued",
        "ballot_keys_counted",
    ];
    compare_fields(&format!("poll {poll_id}"), tally, &recount, &fields, size)
}

/// Every proposal's status and supports as published, against the recount; the server must list
/// every proposal the log holds.
fn compare_standings(standings: &[Value], size: u64, ledger: &Ledger) -> Result<u64, VerifyError> {
    let mut compared = 0;
    let mut listed = std::collections::BTreeSet::new();
    for standing in standings {
        let unknown = || VerifyError::PublishedUnknown {
            what: format!("a standing for proposal {}", standing["id"]),
        };
        let id = standing["id"].as_u64().ok_or_else(unknown)?;
        let proposal = ledger.proposals.get(&id).ok_or_else(unknown)?;
        listed.insert(id);
        let recount = serde_json::json!({
            "status": proposal.status.name(),
            "supports": proposal.supports(),
        });
        let subject = format!("proposal {id}");
        compared += compare_fields(&subject, standing, &recount, &["status", "supports"], size)?;
    }
    if let Some(missing) = ledger.proposals.keys().find(|id| !listed.contains(id)) {
        return Err(VerifyError::ProposalMissing {
            proposal: *missing,
            size,
        });
    }
    Ok(compared)
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
