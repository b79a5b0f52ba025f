//! Moving a city between stores: `veche export` writes a log with its content store as files,
//! `veche import` checks them as a journalist would and appends them to an empty store, and
//! `veche backup` copies a running SQLite node.
//!
//! Invariant: an import appends nothing before the whole export, content included, has verified
//! under the data directory's server key, and it ends by starting a node on the target (the same
//! start-up replay every node runs) whose signed checkpoint must equal the export's.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use ed25519_dalek::SigningKey;
use projections::checkpoint::{Checkpoint, NoteVerifier};
use projections::content::SALT_BYTES;
use projections::limits::{
    CONTENT_PAGE_POSITIONS_MAX, IMPORT_BATCH_ENTRIES_MAX, LOG_PAGE_ENTRIES_MAX,
};
use projections::protocol::{entry_hash, public_key_of};
use projections::{Command, Entry};
use serde::Deserialize;
use veche_verifier::verification::{read_record, verify_export, Options, Published};

use crate::store::{EventStore, StoreError, StoredContent, StoredEntry};

/// The log as `/v1/log/export` serves it: the signed checkpoint, then every entry.
pub const EXPORT_LOG_FILE: &str = "log.export";
/// The content store as one content bundle (`/v1/content` covering the whole log).
pub const EXPORT_CONTENT_FILE: &str = "content.json";

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("the source log does not verify: {0}")]
    Source(#[from] crate::node::StartError),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("the content store cannot be read: {0:?}")]
    Content(crate::http::problem::ApiError),
    #[error("the log has no genesis naming its origin and server key")]
    NoGenesis,
    #[error(
        "the log's genesis names server key {found}, but this data directory holds {expected}"
    )]
    ForeignServerKey { found: String, expected: String },
    #[error("the checkpoint cannot be signed: {0}")]
    Checkpoint(String),
    #[error("the target store already holds {0} entries; an import needs an empty one")]
    TargetNotEmpty(u64),
    #[error("the export does not verify, so nothing was imported: {0}")]
    ExportRefused(String),
    #[error("the content bundle is unreadable, so nothing was imported: {0}")]
    BundleUnreadable(String),
    #[error(
        "the export changed while it was imported (root {found} at size {size}, verified {expected}); \
         the target holds a partial copy: drop it and import again"
    )]
    ExportChanged {
        size: u64,
        found: String,
        expected: String,
    },
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> MigrationError + '_ {
    move |source| MigrationError::File {
        path: path.display().to_string(),
        source,
    }
}

/// What an export or an import moved.
#[derive(Debug, serde::Serialize)]
pub struct Moved {
    pub entries: u64,
    /// The Merkle root at that size, base64, as checkpoints give it.
    pub root: String,
    /// Entries whose payload commits to content.
    pub entries_with_content: u64,
    pub seconds: f64,
}

/// Writes `store`'s log and content into `directory` (created if needed): `log.export`, signed
/// with `server_key` at the size the start-up check reached, and `content.json`. Each file is
/// written under a temporary name and renamed, so a half-written export is never taken for one.
pub fn export(
    store: &dyn EventStore,
    server_key: &SigningKey,
    directory: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Moved, MigrationError> {
    let started = Instant::now();
    let ledger = crate::node::verify_stored_log(store, &|| {})?;
    let identity = ledger.identity().ok_or(MigrationError::NoGenesis)?;
    let expected = public_key_of(server_key);
    if identity.server_key != expected {
        return Err(MigrationError::ForeignServerKey {
            found: identity.server_key.to_hex(),
            expected: expected.to_hex(),
        });
    }
    let (size, root) = (ledger.size, ledger.merkle.root());
    let note = Checkpoint {
        origin: identity.log_origin.clone(),
        size,
        root,
    }
    .sign(&identity.log_origin, server_key)
    .map_err(|error| MigrationError::Checkpoint(error.to_string()))?;
    std::fs::create_dir_all(directory).map_err(file_error(directory))?;
    write_atomically(&directory.join(EXPORT_LOG_FILE), |output| {
        write_log(store, &note, size, output, progress)
    })?;
    let mut entries_with_content = 0;
    write_atomically(&directory.join(EXPORT_CONTENT_FILE), |output| {
        entries_with_content = write_content(store, size, output)?;
        Ok(())
    })?;
    Ok(Moved {
        entries: size,
        root: veche_verifier::verification::base64_of(&root),
        entries_with_content,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Writes through `write` into a temporary file beside `path`, syncs it, and renames it.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), MigrationError>,
) -> Result<(), MigrationError> {
    let partial = path.with_extension("partial");
    let file = File::create(&partial).map_err(file_error(&partial))?;
    let mut output = BufWriter::new(file);
    write(&mut output)?;
    let file = output
        .into_inner()
        .map_err(|error| file_error(&partial)(error.into_error()))?;
    file.sync_all().map_err(file_error(&partial))?;
    std::fs::rename(&partial, path).map_err(file_error(path))
}

/// The export's records: the note, then `size` entries read page by page.
fn write_log(
    store: &dyn EventStore,
    note: &str,
    size: u64,
    output: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), MigrationError> {
    let path = Path::new(EXPORT_LOG_FILE);
    write_record(output, note.as_bytes()).map_err(file_error(path))?;
    let mut from = 0;
    while from < size {
        let limit = usize::try_from(size - from)
            .map_or(LOG_PAGE_ENTRIES_MAX, |left| left.min(LOG_PAGE_ENTRIES_MAX));
        let page = store.read(from, limit)?;
        if page.is_empty() {
            return Err(
                StoreError::Corrupt(format!("entry {from} is missing below {size}")).into(),
            );
        }
        for entry in &page {
            write_record(output, &entry.bytes).map_err(file_error(path))?;
        }
        from += page.len() as u64;
        progress(from, size);
    }
    Ok(())
}

/// One record of the C2SP entry-bundle encoding: a 2-byte big-endian length, then the bytes.
fn write_record(output: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    let length = u16::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("a record longer than 65,535 bytes"))?;
    output.write_all(&length.to_be_bytes())?;
    output.write_all(bytes)
}

/// The content bundle `{"entries":[…]}`, streamed a page of positions at a time.
fn write_content(
    store: &dyn EventStore,
    size: u64,
    output: &mut dyn Write,
) -> Result<u64, MigrationError> {
    let path = Path::new(EXPORT_CONTENT_FILE);
    let io = file_error(path);
    output.write_all(b"{\"entries\":[").map_err(&io)?;
    let (mut from, mut written) = (0u64, 0u64);
    while from < size {
        let limit = usize::try_from(size - from).map_or(CONTENT_PAGE_POSITIONS_MAX, |left| {
            left.min(CONTENT_PAGE_POSITIONS_MAX)
        });
        let entries = crate::http::content::content_of_range(store, from, limit)
            .map_err(MigrationError::Content)?;
        for entry in &entries {
            if written > 0 {
                output.write_all(b",").map_err(&io)?;
            }
            serde_json::to_writer(&mut *output, entry).map_err(|error| io(error.into()))?;
            written += 1;
        }
        from += limit as u64;
    }
    output.write_all(b"]}").map_err(&io)?;
    Ok(written)
}

/// One piece of a content bundle as read back.
#[derive(Deserialize)]
struct BundlePiece {
    commitment: String,
    salt: Option<String>,
    text: Option<String>,
    erased_by: Option<u64>,
}

#[derive(Deserialize)]
struct BundleEntry {
    position: u64,
    pieces: Vec<BundlePiece>,
}

#[derive(Deserialize)]
struct Bundle {
    entries: Vec<BundleEntry>,
}

/// What the export verified to: its checkpoint and note, and the content bundle as parsed.
struct Verified {
    note: String,
    checkpoint: Checkpoint,
    content: BTreeMap<u64, Vec<StoredContent>>,
}

/// Checks the export in `directory` as `veche verify --export … --content …` does, trusting only
/// `server_key`, then appends it to `target`, which must be empty. Returns the verified note with
/// what was moved; the caller starts a node on the target to finish (tiles, checkpoint).
pub fn import(
    target: &dyn EventStore,
    server_key: &SigningKey,
    directory: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(String, Moved), MigrationError> {
    let started = Instant::now();
    let held = target.size()?;
    if held != 0 {
        return Err(MigrationError::TargetNotEmpty(held));
    }
    let verified = verify(server_key, directory, progress)?;
    let root = append_all(target, directory, &verified, progress)?;
    if root != verified.checkpoint.root {
        return Err(MigrationError::ExportChanged {
            size: verified.checkpoint.size,
            found: veche_verifier::verification::base64_of(&root),
            expected: veche_verifier::verification::base64_of(&verified.checkpoint.root),
        });
    }
    let moved = Moved {
        entries: verified.checkpoint.size,
        root: veche_verifier::verification::base64_of(&root),
        entries_with_content: verified.content.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((verified.note, moved))
}

/// The journalist's check of the export and its content bundle, under the server's key.
fn verify(
    server_key: &SigningKey,
    directory: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Verified, MigrationError> {
    let log_path = directory.join(EXPORT_LOG_FILE);
    let open = || -> Result<BufReader<File>, MigrationError> {
        Ok(BufReader::new(
            File::open(&log_path).map_err(file_error(&log_path))?,
        ))
    };
    let note = read_record(&mut open()?)
        .map_err(file_error(&log_path))?
        .ok_or_else(|| MigrationError::ExportRefused("the export is empty".into()))?;
    let note = String::from_utf8(note)
        .map_err(|_| MigrationError::ExportRefused("the checkpoint is not UTF-8".into()))?;
    let origin = note
        .lines()
        .next()
        .ok_or_else(|| MigrationError::ExportRefused("the checkpoint is empty".into()))?;
    let verifier = NoteVerifier::new(origin, public_key_of(server_key))
        .map_err(|error| MigrationError::ExportRefused(error.to_string()))?;
    let options = Options {
        verifier,
        previous: None,
        strict_signatures: false,
        threads: veche_verifier::pipeline::available_threads(),
        keep_leaf_hashes: false,
    };
    let report = verify_export(&mut open()?, &options, &Published::default(), progress);
    if let Some(failure) = &report.failure {
        return Err(MigrationError::ExportRefused(match failure.position {
            Some(position) => format!("position {position}: {}", failure.reason),
            None => failure.reason.clone(),
        }));
    }
    let checkpoint = Checkpoint::open(&note, &options.verifier, origin)
        .map_err(|error| MigrationError::ExportRefused(error.to_string()))?;
    let content = read_bundle(
        &directory.join(EXPORT_CONTENT_FILE),
        &report.committed,
        checkpoint.size,
    )?;
    Ok(Verified {
        note,
        checkpoint,
        content,
    })
}

/// Reads the content bundle, checks it against what the verified log commits to, and keys its
/// pieces by position as the store keeps them.
fn read_bundle(
    path: &Path,
    committed: &BTreeMap<u64, veche_verifier::verification::CommittedEntry>,
    size: u64,
) -> Result<BTreeMap<u64, Vec<StoredContent>>, MigrationError> {
    let text = std::fs::read(path).map_err(file_error(path))?;
    let value: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|error| MigrationError::BundleUnreadable(error.to_string()))?;
    veche_verifier::served_content::check_content_bundle(&value, committed, size)
        .map_err(|error| MigrationError::ExportRefused(error.to_string()))?;
    let bundle: Bundle = serde_json::from_value(value)
        .map_err(|error| MigrationError::BundleUnreadable(error.to_string()))?;
    let mut content = BTreeMap::new();
    for entry in bundle.entries {
        let pieces = entry
            .pieces
            .into_iter()
            .map(|piece| stored_piece(entry.position, piece))
            .collect::<Result<Vec<_>, _>>()?;
        content.insert(entry.position, pieces);
    }
    Ok(content)
}

/// A bundle piece as the content table keeps it: its salt and text, or the entry that erased
/// them (which sets the same mark again when it is appended, as on the source).
fn stored_piece(position: u64, piece: BundlePiece) -> Result<StoredContent, MigrationError> {
    let unreadable =
        |what: &str| MigrationError::BundleUnreadable(format!("position {position}: {what}"));
    let commitment: [u8; 32] = hex::decode(&piece.commitment)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| unreadable("a commitment is not 64 hexadecimal characters"))?;
    let kept = match (piece.salt, piece.text) {
        (Some(salt), Some(text)) => {
            let salt: [u8; SALT_BYTES] = hex::decode(&salt)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| unreadable("a salt is not 32 hexadecimal characters"))?;
            Some((salt, text))
        }
        (None, None) if piece.erased_by.is_some() => None,
        _ => {
            return Err(unreadable(
                "a piece holds neither its salt and text nor its erasure",
            ))
        }
    };
    Ok(StoredContent {
        position,
        commitment,
        piece: kept,
        erased_by: piece.erased_by,
    })
}

/// Appends every entry of the export to `target` in batches, each with its content, and returns
/// the Merkle root of what it appended.
fn append_all(
    target: &dyn EventStore,
    directory: &Path,
    verified: &Verified,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<projections::Hash, MigrationError> {
    let log_path = directory.join(EXPORT_LOG_FILE);
    let mut input = BufReader::new(File::open(&log_path).map_err(file_error(&log_path))?);
    read_record(&mut input).map_err(file_error(&log_path))?;
    let mut frontier = projections::merkle::Frontier::default();
    let (size, mut batch) = (verified.checkpoint.size, Vec::new());
    while frontier.size() < size {
        let bytes = read_record(&mut input)
            .map_err(file_error(&log_path))?
            .ok_or_else(|| MigrationError::ExportChanged {
                size: frontier.size(),
                found: "the end of the file".into(),
                expected: veche_verifier::verification::base64_of(&verified.checkpoint.root),
            })?;
        let position = frontier.size();
        frontier.push(projections::merkle::leaf_hash(&bytes));
        batch.push(stored_entry(position, bytes, &verified.content)?);
        if batch.len() == IMPORT_BATCH_ENTRIES_MAX || frontier.size() == size {
            target.append(&std::mem::take(&mut batch))?;
            progress(frontier.size(), size);
        }
    }
    Ok(frontier.root())
}

/// One exported entry as the store keeps it: its chain hash, content, and the entry it erases.
fn stored_entry(
    position: u64,
    bytes: Vec<u8>,
    content: &BTreeMap<u64, Vec<StoredContent>>,
) -> Result<StoredEntry, MigrationError> {
    let changed = |error: String| MigrationError::ExportChanged {
        size: position,
        found: error,
        expected: "the verified entry".into(),
    };
    let entry = Entry::decode(&bytes).map_err(|error| changed(error.to_string()))?;
    let command = Command::parse(&entry.payload).map_err(|error| changed(error.to_string()))?;
    Ok(StoredEntry {
        position,
        hash: entry_hash(&bytes),
        bytes,
        content: content.get(&position).cloned().unwrap_or_default(),
        erases: command.action.erased_entry(),
    })
}

/// Copies a running node's SQLite log into `target` (a new data directory) consistently, with
/// its record of signed checkpoints and the key files beside it. The record is copied first: the
/// log copy taken after it holds at least every entry it names.
pub fn backup(data_directory: &Path, target: &Path) -> Result<Vec<PathBuf>, MigrationError> {
    std::fs::create_dir_all(target).map_err(file_error(target))?;
    let log = data_directory.join(crate::server::LOG_FILE);
    let mut copied = Vec::new();
    let record = log.with_extension(crate::store::SIGNED_CHECKPOINT_EXTENSION);
    for source in key_files(data_directory)?.into_iter().chain([record]) {
        if let Some(name) = source.file_name().filter(|_| source.exists()) {
            let copy = target.join(name);
            std::fs::copy(&source, &copy).map_err(file_error(&source))?;
            copied.push(copy);
        }
    }
    let copy = target.join(crate::server::LOG_FILE);
    crate::store::backup_sqlite(&log, &copy)?;
    copied.push(copy);
    Ok(copied)
}

/// The key files of a data directory: the server's, the admin's, the recovery keys.
fn key_files(directory: &Path) -> Result<Vec<PathBuf>, MigrationError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(file_error(directory))? {
        let path = entry.map_err(file_error(directory))?.path();
        if path.extension().is_some_and(|extension| extension == "key") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
