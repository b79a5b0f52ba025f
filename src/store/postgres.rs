//! The scale-out store: the log in PostgreSQL, one total order across every API node.
//!
//! Appends from any node serialise on a transaction-scoped advisory lock, so positions are
//! assigned in one order and commit in that order: a reader that follows positions never skips a
//! committed entry (the trap of `bigserial`, whose values commit out of order, does not arise).

use std::sync::Mutex;

use postgres::{Client, NoTls};

use super::{EventStore, StoreError, StoredEntry, StoredTile};

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
";

pub struct PostgresStore {
    writer: Mutex<Client>,
    reader: Mutex<Client>,
}

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

impl PostgresStore {
    /// Connects, creating or upgrading the schema. `schema` selects a PostgreSQL schema (created
    /// if needed), so several logs can share one database; `None` uses the default search path.
    /// Must not be called from inside an async runtime thread (the client blocks).
    pub fn open(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        let connect = || -> Result<Client, StoreError> {
            let mut client = Client::connect(url, NoTls)?;
            if let Some(schema) = schema {
                if !schema
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
                {
                    return Err(StoreError::Unavailable(format!(
                        "schema name {schema:?} is not plain"
                    )));
                }
                client.batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
                ))?;
            }
            Ok(client)
        };
        let mut writer = connect()?;
        // Several nodes may start at once: let one create the schema at a time.
        let mut transaction = writer.transaction()?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK_KEY])?;
        transaction.batch_execute(SCHEMA)?;
        transaction.commit()?;
        Ok(PostgresStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(connect()?),
        })
    }

    fn lock(client: &Mutex<Client>) -> Result<std::sync::MutexGuard<'_, Client>, StoreError> {
        client
            .lock()
            .map_err(|_| StoreError::Unavailable("postgres client lock poisoned".into()))
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
        let mut client = Self::lock(&self.writer)?;
        let mut transaction = client.transaction()?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK_KEY])?;
        super::check_contiguous(next_position(&mut transaction)?, entries)?;
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
        transaction.commit()?;
        Ok(())
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        let mut client = Self::lock(&self.reader)?;
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
                })
            })
            .collect()
    }

    fn size(&self) -> Result<u64, StoreError> {
        next_position(&mut *Self::lock(&self.reader)?)
    }

    fn write_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        if tiles.is_empty() {
            return Ok(());
        }
        let mut client = Self::lock(&self.writer)?;
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

    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut client = Self::lock(&self.reader)?;
        let index = i64::try_from(index).unwrap_or(i64::MAX);
        let row = client.query_opt(
            "SELECT hashes FROM merkle_tiles WHERE level = $1 AND idx = $2",
            &[&i16::from(level), &index],
        )?;
        Ok(row.map(|row| row.get(0)))
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}
