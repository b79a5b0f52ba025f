//! The scale-out store: the log in PostgreSQL, one total order across every API node.
//!
//! Appends from any node serialise on a transaction-scoped advisory lock, so positions are
//! assigned in one order and commit in that order: a reader that follows positions never skips a
//! committed entry (the trap of `bigserial`, whose values commit out of order, does not arise).

use std::sync::Mutex;

use postgres::{Client, NoTls};

use projections::Hash;

use super::{EventStore, SignedCheckpoint, StoreError, StoredContent, StoredEntry, StoredTile};

/// The advisory lock key every appender takes: "veche" in ASCII.
const APPEND_LOCK_KEY: i64 = 0x0076_6563_6865;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position BIGINT PRIMARY KEY,
    entry    BYTEA NOT NULL,
    hash     BYTEA NOT NULL CHECK (length(hash) = 32)
);
CREATE OR REPLACE FUNCTION veche_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the veche log is append-only'; END $$;
DROP TRIGGER IF EXISTS events_are_never_changed ON events;
CREATE TRIGGER events_are_never_changed BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION veche_refuse_change();
CREATE TABLE IF NOT EXISTS merkle_tiles (
    level  SMALLINT NOT NULL,
    idx    BIGINT NOT NULL,
    hashes BYTEA NOT NULL CHECK (length(hashes) = 8192),
    PRIMARY KEY (level, idx)
);
DROP TRIGGER IF EXISTS merkle_tiles_are_never_changed ON merkle_tiles;
CREATE TRIGGER merkle_tiles_are_never_changed BEFORE UPDATE OR DELETE OR TRUNCATE ON merkle_tiles
    FOR EACH STATEMENT EXECUTE FUNCTION veche_refuse_change();
CREATE TABLE IF NOT EXISTS content (
    commitment BYTEA PRIMARY KEY CHECK (length(commitment) = 32),
    position   BIGINT NOT NULL,
    salt       BYTEA CHECK (length(salt) = 16),
    text       TEXT,
    erased_by  BIGINT,
    CHECK ((salt IS NULL) = (text IS NULL) AND (text IS NULL) = (erased_by IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS content_by_position ON content (position);
CREATE TABLE IF NOT EXISTS signed_checkpoints (
    size BIGINT PRIMARY KEY,
    root BYTEA NOT NULL CHECK (length(root) = 32)
);
DROP TRIGGER IF EXISTS signed_checkpoints_are_never_changed ON signed_checkpoints;
CREATE TRIGGER signed_checkpoints_are_never_changed
    BEFORE UPDATE OR DELETE OR TRUNCATE ON signed_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION veche_refuse_change();
";

/// Restores the tiles' protection after `replace_tiles` lifted it inside its transaction.
const TILE_TRIGGER: &str = "
CREATE TRIGGER merkle_tiles_are_never_changed BEFORE UPDATE OR DELETE OR TRUNCATE ON merkle_tiles
    FOR EACH STATEMENT EXECUTE FUNCTION veche_refuse_change();
";

/// Work for a connection's thread.
type Job = Box<dyn FnOnce(Result<&mut Client, StoreError>) + Send>;

/// One connection, owned by a thread of its own. The `postgres` client blocks on a private
/// runtime, which must never happen on an async runtime's thread; callers anywhere (the writer
/// thread, blocking pools, tests) hand it work and wait on a plain channel instead.
struct Connection {
    work: Mutex<std::sync::mpsc::Sender<Job>>,
}

impl Connection {
    /// Starts the connection's thread. A lost connection is made again before the next job, so
    /// the node recovers by itself when PostgreSQL (or the network to it) comes back.
    fn open(
        connect: impl Fn() -> Result<Client, StoreError> + Send + 'static,
    ) -> Result<Connection, StoreError> {
        let (work, queue) = std::sync::mpsc::channel::<Job>();
        let first = connect()?;
        std::thread::Builder::new()
            .name("veche-postgres".into())
            .spawn(move || {
                let mut client = Some(first);
                while let Ok(job) = queue.recv() {
                    if client.as_ref().is_none_or(Client::is_closed) {
                        client = match connect() {
                            Ok(fresh) => {
                                tracing::info!("reconnected to postgres");
                                Some(fresh)
                            }
                            Err(error) => {
                                job(Err(error));
                                continue;
                            }
                        };
                    }
                    match client.as_mut() {
                        Some(connected) => job(Ok(connected)),
                        None => job(Err(StoreError::Unavailable(
                            "postgres: not connected".into(),
                        ))),
                    }
                }
            })
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        Ok(Connection {
            work: Mutex::new(work),
        })
    }

    fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = std::sync::mpsc::channel();
        let sender = self
            .work
            .lock()
            .map_err(|_| StoreError::Unavailable("postgres connection lock poisoned".into()))?
            .clone();
        sender
            .send(Box::new(move |client: Result<&mut Client, StoreError>| {
                let _ = reply.send(client.and_then(job));
            }))
            .map_err(|_| {
                StoreError::Unavailable("the postgres connection thread stopped".into())
            })?;
        answer
            .recv()
            .map_err(|_| StoreError::Unavailable("the postgres connection thread stopped".into()))?
    }
}

pub struct PostgresStore {
    writer: Connection,
    reader: Connection,
    /// Records signed checkpoints. Not the writer's connection: the writer publishes (and so
    /// records) while that connection holds the append transaction open.
    recorder: Connection,
    /// The largest size this node has recorded, so an unchanged size costs no round trip.
    recorded: Mutex<Option<u64>>,
}

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> Self {
        // The plain display says only "db error"; the server's message says what happened.
        match error.as_db_error() {
            Some(database) => StoreError::Unavailable(format!("postgres: {}", database.message())),
            None => StoreError::Unavailable(format!("postgres: {error}")),
        }
    }
}

impl PostgresStore {
    /// Connects, creating or upgrading the schema. `schema` selects a PostgreSQL schema (created
    /// if needed), so several logs can share one database; `None` uses the default search path.
    /// Must not be called from inside an async runtime thread (the client blocks).
    pub fn open(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        if let Some(schema) = schema {
            if !schema
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
            {
                return Err(StoreError::Unavailable(format!(
                    "schema name {schema:?} is not plain"
                )));
            }
        }
        let connect = |create_schema: bool| {
            let url = url.to_string();
            let schema = schema.map(str::to_string);
            move || -> Result<Client, StoreError> {
                let mut config: postgres::Config = url.parse()?;
                // A node must notice an unreachable database quickly and answer 503, not hang.
                config
                    .connect_timeout(std::time::Duration::from_millis(
                        projections::limits::STORE_CONNECT_MS_MAX,
                    ))
                    .keepalives_idle(std::time::Duration::from_secs(10));
                let mut client = config.connect(NoTls)?;
                if let Some(schema) = &schema {
                    client.batch_execute(&format!(
                        "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
                    ))?;
                }
                if create_schema {
                    // Several nodes may start at once: let one create the schema at a time.
                    let mut transaction = client.transaction()?;
                    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK_KEY])?;
                    transaction.batch_execute(SCHEMA)?;
                    transaction.commit()?;
                }
                Ok(client)
            }
        };
        let writer = Connection::open(connect(true))?;
        let reader = Connection::open(connect(false))?;
        let recorder = Connection::open(connect(false))?;
        Ok(PostgresStore {
            writer,
            reader,
            recorder,
            recorded: Mutex::new(None),
        })
    }
}

fn next_position(client: &mut impl postgres::GenericClient) -> Result<u64, StoreError> {
    let row = client.query_one("SELECT coalesce(max(position) + 1, 0) FROM events", &[])?;
    let next: i64 = row.get(0);
    Ok(next as u64)
}

impl EventStore for PostgresStore {
    fn append(&self, entries: &[StoredEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let entries = entries.to_vec();
        self.writer
            .call(move |client| append_batch(client, &entries))
    }

    fn append_following(
        &self,
        known_size: u64,
        prepare: &mut dyn FnMut(Vec<StoredEntry>) -> Vec<StoredEntry>,
    ) -> Result<(), StoreError> {
        // The transaction lives on the connection's thread; the caller decides on its own thread.
        // They talk over channels: others' entries go out, the batch to append comes back.
        let (others_sender, others) = std::sync::mpsc::channel();
        let (batch_sender, batch) = std::sync::mpsc::channel::<Vec<StoredEntry>>();
        let (outcome_sender, outcome) = std::sync::mpsc::channel();
        let sender = self
            .writer
            .work
            .lock()
            .map_err(|_| StoreError::Unavailable("postgres connection lock poisoned".into()))?
            .clone();
        let stopped = || StoreError::Unavailable("the postgres connection thread stopped".into());
        sender
            .send(Box::new(move |client: Result<&mut Client, StoreError>| {
                let result = (|| {
                    let client = client?;
                    let mut transaction = client.transaction()?;
                    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK_KEY])?;
                    let found = read_page(&mut transaction, known_size, usize::MAX)?;
                    let next = known_size + found.len() as u64;
                    others_sender.send(found).map_err(|_| stopped())?;
                    let entries = batch.recv().map_err(|_| stopped())?;
                    super::check_contiguous(next, &entries)?;
                    insert_batch(&mut transaction, &entries)?;
                    transaction.commit()?;
                    Ok(())
                })();
                let _ = outcome_sender.send(result);
            }))
            .map_err(|_| stopped())?;
        if let Ok(found) = others.recv() {
            let _ = batch_sender.send(prepare(found));
        }
        outcome.recv().map_err(|_| stopped())?
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        self.reader
            .call(move |client| read_page(client, from, limit))
    }

    fn size(&self) -> Result<u64, StoreError> {
        self.reader.call(next_position)
    }

    fn read_content(&self, commitments: &[[u8; 32]]) -> Result<Vec<StoredContent>, StoreError> {
        let commitments = commitments.to_vec();
        self.reader
            .call(move |client| read_content_rows(client, &commitments))
    }

    fn write_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        if tiles.is_empty() {
            return Ok(());
        }
        let tiles = tiles.to_vec();
        self.writer.call(move |client| insert_tiles(client, &tiles))
    }

    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.reader
            .call(move |client| select_tile(client, level, index))
    }

    fn replace_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        let tiles = tiles.to_vec();
        self.writer.call(move |client| update_tiles(client, &tiles))
    }

    fn record_signed_checkpoint(&self, size: u64, root: &Hash) -> Result<(), StoreError> {
        let poisoned = || StoreError::Unavailable("postgres record lock poisoned".into());
        if self
            .recorded
            .lock()
            .map_err(|_| poisoned())?
            .is_some_and(|recorded| recorded >= size)
        {
            return Ok(());
        }
        let stored_size = i64::try_from(size)
            .map_err(|_| StoreError::Corrupt("checkpoint size beyond i64".into()))?;
        let root = root.to_vec();
        // Autocommit: the row is durable on the server when the call returns.
        self.recorder.call(move |client| {
            client.execute(
                "INSERT INTO signed_checkpoints (size, root) VALUES ($1, $2) \
                 ON CONFLICT (size) DO NOTHING",
                &[&stored_size, &root],
            )?;
            Ok(())
        })?;
        let mut recorded = self.recorded.lock().map_err(|_| poisoned())?;
        *recorded = Some(recorded.map_or(size, |recorded| recorded.max(size)));
        Ok(())
    }

    fn largest_signed_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.reader.call(|client| {
            let row = client.query_opt(
                "SELECT size, root FROM signed_checkpoints ORDER BY size DESC LIMIT 1",
                &[],
            )?;
            row.map(|row| {
                let size: i64 = row.get(0);
                let root: Vec<u8> = row.get(1);
                let root: Hash = root
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("a signed checkpoint's root".into()))?;
                Ok(SignedCheckpoint {
                    size: size as u64,
                    root,
                })
            })
            .transpose()
        })
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}

/// Replaces tiles with recomputed ones, lifting their protection inside the same transaction
/// (DDL is transactional in PostgreSQL: no other session sees the table unprotected).
fn update_tiles(client: &mut Client, tiles: &[StoredTile]) -> Result<(), StoreError> {
    let mut transaction = client.transaction()?;
    transaction
        .batch_execute("DROP TRIGGER IF EXISTS merkle_tiles_are_never_changed ON merkle_tiles")?;
    for tile in tiles {
        let index = i64::try_from(tile.index)
            .map_err(|_| StoreError::Corrupt("tile index beyond i64".into()))?;
        transaction.execute(
            "UPDATE merkle_tiles SET hashes = $3 WHERE level = $1 AND idx = $2",
            &[&i16::from(tile.level), &index, &tile.hashes],
        )?;
    }
    transaction.batch_execute(TILE_TRIGGER)?;
    transaction.commit()?;
    Ok(())
}

fn append_batch(client: &mut Client, entries: &[StoredEntry]) -> Result<(), StoreError> {
    let mut transaction = client.transaction()?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK_KEY])?;
    super::check_contiguous(next_position(&mut transaction)?, entries)?;
    insert_batch(&mut transaction, entries)?;
    transaction.commit()?;
    Ok(())
}

fn insert_batch(
    transaction: &mut postgres::Transaction<'_>,
    entries: &[StoredEntry],
) -> Result<(), StoreError> {
    let mut positions = Vec::with_capacity(entries.len());
    for entry in entries {
        positions.push(
            i64::try_from(entry.position)
                .map_err(|_| StoreError::Corrupt("position beyond i64".into()))?,
        );
    }
    let bytes: Vec<&[u8]> = entries.iter().map(|entry| entry.bytes.as_slice()).collect();
    let hashes: Vec<&[u8]> = entries.iter().map(|entry| entry.hash.as_slice()).collect();
    // One statement per batch: the whole group commit is one round trip and one fsync.
    transaction.execute(
        "INSERT INTO events (position, entry, hash) \
         SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[], $3::BYTEA[])",
        &[&positions, &bytes, &hashes],
    )?;
    // Same transaction: an entry and the content it commits to are durable together or not at all.
    let pieces: Vec<&StoredContent> = entries.iter().flat_map(|entry| &entry.content).collect();
    if !pieces.is_empty() {
        let commitments: Vec<&[u8]> = pieces.iter().map(|piece| &piece.commitment[..]).collect();
        let positions: Vec<i64> = pieces.iter().map(|piece| piece.position as i64).collect();
        let salts: Vec<Option<&[u8]>> = pieces
            .iter()
            .map(|piece| piece.piece.as_ref().map(|(salt, _)| &salt[..]))
            .collect();
        let texts: Vec<Option<&str>> = pieces
            .iter()
            .map(|piece| piece.piece.as_ref().map(|(_, text)| text.as_str()))
            .collect();
        // Set only by an import, for content its source had already erased.
        let erased_by: Vec<Option<i64>> = pieces
            .iter()
            .map(|piece| piece.erased_by.map(|position| position as i64))
            .collect();
        transaction.execute(
            "INSERT INTO content (commitment, position, salt, text, erased_by) \
             SELECT * FROM unnest($1::BYTEA[], $2::BIGINT[], $3::BYTEA[], $4::TEXT[], $5::BIGINT[])",
            &[&commitments, &positions, &salts, &texts, &erased_by],
        )?;
    }
    // An erasure deletes the text and salt in the entry's own transaction: every node shares the
    // table, so once the erasure is durable no node can serve the content.
    for entry in entries {
        if let Some(erased) = entry.erases {
            transaction.execute(
                "UPDATE content SET salt = NULL, text = NULL, erased_by = $2 WHERE position = $1",
                &[&(erased as i64), &(entry.position as i64)],
            )?;
        }
    }
    Ok(())
}

fn read_content_rows(
    client: &mut impl postgres::GenericClient,
    commitments: &[[u8; 32]],
) -> Result<Vec<StoredContent>, StoreError> {
    let wanted: Vec<&[u8]> = commitments
        .iter()
        .map(|commitment| &commitment[..])
        .collect();
    let rows = client.query(
        "SELECT commitment, position, salt, text, erased_by FROM content \
         WHERE commitment = ANY($1)",
        &[&wanted],
    )?;
    rows.into_iter()
        .map(|row| {
            let position: i64 = row.get(1);
            let corrupt = || StoreError::Corrupt(format!("content at position {position}"));
            let commitment: Vec<u8> = row.get(0);
            let salt: Option<Vec<u8>> = row.get(2);
            let text: Option<String> = row.get(3);
            let erased_by: Option<i64> = row.get(4);
            let piece = match (salt, text) {
                (Some(salt), Some(text)) => Some((salt.try_into().map_err(|_| corrupt())?, text)),
                (None, None) => None,
                _ => return Err(corrupt()),
            };
            Ok(StoredContent {
                position: position as u64,
                commitment: commitment.try_into().map_err(|_| corrupt())?,
                piece,
                erased_by: erased_by.map(|erased_by| erased_by as u64),
            })
        })
        .collect()
}

fn read_page(
    client: &mut impl postgres::GenericClient,
    from: u64,
    limit: usize,
) -> Result<Vec<StoredEntry>, StoreError> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client.query(
        "SELECT position, entry, hash FROM events WHERE position >= $1 ORDER BY position LIMIT $2",
        &[&from, &limit],
    )?;
    rows.into_iter()
        .map(|row| {
            let position: i64 = row.get(0);
            let hash: Vec<u8> = row.get(2);
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("hash at position {position}")))?;
            Ok(StoredEntry {
                position: position as u64,
                bytes: row.get(1),
                hash,
                content: Vec::new(),
                erases: None,
            })
        })
        .collect()
}

fn insert_tiles(client: &mut Client, tiles: &[StoredTile]) -> Result<(), StoreError> {
    let mut transaction = client.transaction()?;
    for tile in tiles {
        let index = i64::try_from(tile.index)
            .map_err(|_| StoreError::Corrupt("tile index beyond i64".into()))?;
        transaction.execute(
            "INSERT INTO merkle_tiles (level, idx, hashes) VALUES ($1, $2, $3) \
             ON CONFLICT (level, idx) DO NOTHING",
            &[&i16::from(tile.level), &index, &tile.hashes],
        )?;
    }
    transaction.commit()?;
    Ok(())
}

fn select_tile(client: &mut Client, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let index = i64::try_from(index).unwrap_or(i64::MAX);
    let row = client.query_opt(
        "SELECT hashes FROM merkle_tiles WHERE level = $1 AND idx = $2",
        &[&i16::from(level), &index],
    )?;
    Ok(row.map(|row| row.get(0)))
}
