//! The embedded default store: one SQLite file in WAL mode with full synchronous commits.
//!
//! Append-only is enforced twice: the code only inserts, and triggers refuse UPDATE and DELETE,
//! on the events and on the hash tiles alike. The largest signed checkpoint is recorded in a
//! file of its own beside the database (see `checkpoint_file`).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use projections::Hash;

use super::checkpoint_file::CheckpointFile;
use super::{EventStore, SignedCheckpoint, StoreError, StoredContent, StoredEntry, StoredTile};

/// The signed-checkpoint record's extension: `log.sqlite` keeps it in `log.signed-checkpoint`.
pub const SIGNED_CHECKPOINT_EXTENSION: &str = "signed-checkpoint";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    entry    BLOB NOT NULL,
    hash     BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE TRIGGER IF NOT EXISTS events_are_never_updated BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the veche log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_are_never_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the veche log is append-only'); END;
CREATE TABLE IF NOT EXISTS merkle_tiles (
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    hashes BLOB NOT NULL CHECK (length(hashes) = 8192),
    PRIMARY KEY (level, idx)
) STRICT;
CREATE TRIGGER IF NOT EXISTS merkle_tiles_are_never_deleted BEFORE DELETE ON merkle_tiles
BEGIN SELECT RAISE(ABORT, 'veche hash tiles are derived from the log and never removed'); END;
CREATE TABLE IF NOT EXISTS content (
    commitment BLOB PRIMARY KEY CHECK (length(commitment) = 32),
    position   INTEGER NOT NULL,
    salt       BLOB CHECK (length(salt) = 16),
    text       TEXT,
    erased_by  INTEGER,
    CHECK ((salt IS NULL) = (text IS NULL) AND (text IS NULL) = (erased_by IS NOT NULL))
) STRICT;
CREATE INDEX IF NOT EXISTS content_by_position ON content (position);
";

/// Kept apart from `SCHEMA` because `replace_tiles` lifts it for the length of one transaction.
const TILE_UPDATE_TRIGGER: &str = "
CREATE TRIGGER IF NOT EXISTS merkle_tiles_are_never_updated BEFORE UPDATE ON merkle_tiles
BEGIN SELECT RAISE(ABORT, 'veche hash tiles change only by recomputation from the log'); END;
";

/// The writer and readers use separate connections so that reads never wait behind an fsync.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    signed: CheckpointFile,
}

impl SqliteStore {
    /// Opens the file, creating it and its schema on first use.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let writer = Connection::open(path)?;
        // WAL lets readers proceed during a commit; FULL syncs the WAL on every commit, so a
        // returned append survives power loss.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        // Erased content is overwritten with zeros in the file, not only unlinked.
        writer.pragma_update(None, "secure_delete", "ON")?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        writer.execute_batch(SCHEMA)?;
        writer.execute_batch(TILE_UPDATE_TRIGGER)?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        let signed = CheckpointFile::open(&path.with_extension(SIGNED_CHECKPOINT_EXTENSION))?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            signed,
        })
    }

    fn lock(
        connection: &Mutex<Connection>,
    ) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        connection
            .lock()
            .map_err(|_| StoreError::Unavailable("sqlite connection lock poisoned".into()))
    }
}

/// Copies the SQLite log at `source` into a new file `target` as one consistent read: SQLite's
/// `VACUUM INTO` reads inside a transaction, so a node appending meanwhile is neither blocked nor
/// half-copied, and erased text (already deleted) is not carried over. `target` must not exist.
pub fn backup_sqlite(source: &Path, target: &Path) -> Result<(), StoreError> {
    if target.exists() {
        return Err(StoreError::Unavailable(format!(
            "{} exists; a backup is written only to a new file",
            target.display()
        )));
    }
    let connection =
        Connection::open_with_flags(source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    let target = target
        .to_str()
        .ok_or_else(|| StoreError::Unavailable("the backup path is not UTF-8".into()))?;
    connection.execute("VACUUM INTO ?1", params![target])?;
    Ok(())
}

fn next_position(connection: &Connection) -> Result<u64, StoreError> {
    // Cached: the writer asks once per batch, and parsing the statement each time showed up in
    // the ingest profile.
    let last: Option<i64> = connection
        .prepare_cached("SELECT max(position) FROM events")?
        .query_row([], |row| row.get(0))
        .optional()?
        .flatten();
    Ok(last.map_or(0, |position| position as u64 + 1))
}

fn insert_rows(connection: &Connection, entries: &[StoredEntry]) -> Result<(), StoreError> {
    let mut insert = connection
        .prepare_cached("INSERT INTO events (position, entry, hash) VALUES (?1, ?2, ?3)")?;
    for entry in entries {
        let position = i64::try_from(entry.position)
            .map_err(|_| StoreError::Corrupt("position beyond i64".into()))?;
        insert.execute(params![position, entry.bytes, entry.hash.as_slice()])?;
    }
    // The content goes in the same transaction: an entry and the content it commits to are
    // durable together or not at all.
    let mut insert = connection.prepare_cached(
        "INSERT INTO content (commitment, position, salt, text, erased_by) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for piece in entries.iter().flat_map(|entry| &entry.content) {
        let position = piece.position as i64;
        let (salt, text) = match &piece.piece {
            Some((salt, text)) => (Some(salt.as_slice()), Some(text.as_str())),
            None => (None, None),
        };
        // Set only by an import, for content its source had already erased.
        let erased_by = piece.erased_by.map(|position| position as i64);
        insert.execute(params![
            piece.commitment.as_slice(),
            position,
            salt,
            text,
            erased_by
        ])?;
    }
    // An erasure deletes the text and salt in the entry's own transaction: once the erasure is
    // durable, the content is gone (`secure_delete` overwrites the freed bytes in the file).
    let mut erase = connection.prepare_cached(
        "UPDATE content SET salt = NULL, text = NULL, erased_by = ?2 WHERE position = ?1",
    )?;
    for entry in entries {
        if let Some(erased) = entry.erases {
            erase.execute(params![erased as i64, entry.position as i64])?;
        }
    }
    Ok(())
}

/// After a batch that erased content: the write-ahead log still holds the pages as they were
/// before, text included, so they are copied into the database (whose freed bytes
/// `secure_delete` zeroed) and the write-ahead log is truncated to nothing.
fn forget_erased(connection: &Connection, batch: &[StoredEntry]) -> Result<(), StoreError> {
    if batch.iter().any(|entry| entry.erases.is_some()) {
        let busy: i64 =
            connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy != 0 {
            tracing::warn!("a reader held the write-ahead log; erased text stays in it until the next checkpoint");
        }
    }
    Ok(())
}

fn read_content_rows(
    connection: &Connection,
    commitments: &[[u8; 32]],
) -> Result<Vec<StoredContent>, StoreError> {
    let mut select = connection.prepare_cached(
        "SELECT position, salt, text, erased_by FROM content WHERE commitment = ?1",
    )?;
    let mut found = Vec::new();
    for commitment in commitments {
        let row = select
            .query_row(params![commitment.as_slice()], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Option<Vec<u8>>>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<i64>>(3)?,
                ))
            })
            .optional()?;
        if let Some((position, salt, text, erased_by)) = row {
            let corrupt = || StoreError::Corrupt(format!("content at {position}"));
            let piece = match (salt, text) {
                (Some(salt), Some(text)) => Some((salt.try_into().map_err(|_| corrupt())?, text)),
                (None, None) => None,
                _ => return Err(corrupt()),
            };
            found.push(StoredContent {
                position: position as u64,
                commitment: *commitment,
                piece,
                erased_by: erased_by.map(|erased_by| erased_by as u64),
            });
        }
    }
    Ok(found)
}

fn read_rows(
    connection: &Connection,
    from: u64,
    limit: usize,
) -> Result<Vec<StoredEntry>, StoreError> {
    let mut select = connection.prepare_cached(
        "SELECT position, entry, hash FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2",
    )?;
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = select.query_map(params![from, limit], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, Vec<u8>>(1)?,
            row.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut entries = Vec::new();
    for row in rows {
        let (position, bytes, hash) = row?;
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("hash at position {position}")))?;
        entries.push(StoredEntry {
            position: position as u64,
            bytes,
            hash,
            content: Vec::new(),
            erases: None,
        });
    }
    Ok(entries)
}

impl EventStore for SqliteStore {
    fn append(&self, entries: &[StoredEntry]) -> Result<(), StoreError> {
        let mut connection = Self::lock(&self.writer)?;
        let transaction = connection.transaction()?;
        super::check_contiguous(next_position(&transaction)?, entries)?;
        insert_rows(&transaction, entries)?;
        transaction.commit()?;
        forget_erased(&connection, entries)
    }

    fn append_following(
        &self,
        known_size: u64,
        prepare: &mut dyn FnMut(Vec<StoredEntry>) -> Vec<StoredEntry>,
    ) -> Result<(), StoreError> {
        let mut connection = Self::lock(&self.writer)?;
        // IMMEDIATE takes the database's write lock now: the append lock across processes.
        let transaction =
            connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let others = read_rows(&transaction, known_size, usize::MAX)?;
        let batch = prepare(others);
        super::check_contiguous(next_position(&transaction)?, &batch)?;
        insert_rows(&transaction, &batch)?;
        transaction.commit()?;
        forget_erased(&connection, &batch)
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        let connection = Self::lock(&self.reader)?;
        read_rows(&connection, from, limit)
    }

    fn read_content(&self, commitments: &[[u8; 32]]) -> Result<Vec<StoredContent>, StoreError> {
        let connection = Self::lock(&self.reader)?;
        read_content_rows(&connection, commitments)
    }

    fn size(&self) -> Result<u64, StoreError> {
        let connection = Self::lock(&self.reader)?;
        next_position(&connection)
    }

    fn write_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        if tiles.is_empty() {
            return Ok(());
        }
        let mut connection = Self::lock(&self.writer)?;
        let transaction = connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO merkle_tiles (level, idx, hashes) VALUES (?1, ?2, ?3)",
            )?;
            for tile in tiles {
                let index = i64::try_from(tile.index)
                    .map_err(|_| StoreError::Corrupt("tile index beyond i64".into()))?;
                insert.execute(params![tile.level, index, tile.hashes])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let connection = Self::lock(&self.reader)?;
        let index = i64::try_from(index).unwrap_or(i64::MAX);
        let mut select = connection
            .prepare_cached("SELECT hashes FROM merkle_tiles WHERE level = ?1 AND idx = ?2")?;
        let tile = select
            .query_row(params![level, index], |row| row.get(0))
            .optional()?;
        Ok(tile)
    }

    fn replace_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        let mut connection = Self::lock(&self.writer)?;
        // The protection is lifted and restored inside one transaction: no other connection
        // ever sees the table without it, and a crash rolls the lifting back with the update.
        let transaction =
            connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        transaction.execute_batch("DROP TRIGGER IF EXISTS merkle_tiles_are_never_updated")?;
        {
            let mut update = transaction.prepare_cached(
                "UPDATE merkle_tiles SET hashes = ?3 WHERE level = ?1 AND idx = ?2",
            )?;
            for tile in tiles {
                let index = i64::try_from(tile.index)
                    .map_err(|_| StoreError::Corrupt("tile index beyond i64".into()))?;
                update.execute(params![tile.level, index, tile.hashes])?;
            }
        }
        transaction.execute_batch(TILE_UPDATE_TRIGGER)?;
        transaction.commit()?;
        Ok(())
    }

    fn record_signed_checkpoint(&self, size: u64, root: &Hash) -> Result<(), StoreError> {
        self.signed.record(size, root)
    }

    fn largest_signed_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.signed.largest()
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}
