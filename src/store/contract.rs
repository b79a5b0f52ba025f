//! The contract every store backend passes: one suite, run against each backend.

use super::{EventStore, StoreError, StoredContent, StoredEntry};

fn entry(position: u64) -> StoredEntry {
    StoredEntry {
        position,
        bytes: format!("entry {position}").into_bytes(),
        hash: [position as u8; 32],
        content: Vec::new(),
        erases: None,
    }
}

pub fn an_empty_store_has_size_zero_and_reads_nothing(store: &dyn EventStore) {
    assert_eq!(store.size().ok(), Some(0));
    assert_eq!(store.read(0, 10).map(|entries| entries.len()).ok(), Some(0));
}

pub fn appended_entries_read_back_in_order(store: &dyn EventStore) {
    let first: Vec<_> = (0..3).map(entry).collect();
    let second: Vec<_> = (3..7).map(entry).collect();
    assert!(store.append(&first).is_ok());
    assert!(store.append(&second).is_ok());
    assert_eq!(store.size().ok(), Some(7));
    let all = store.read(0, 100).unwrap_or_default();
    assert_eq!(all, (0..7).map(entry).collect::<Vec<_>>());
    let page = store.read(2, 3).unwrap_or_default();
    assert_eq!(page, (2..5).map(entry).collect::<Vec<_>>());
    assert_eq!(store.read(7, 10).map(|entries| entries.len()).ok(), Some(0));
}

pub fn a_gap_or_an_overlap_is_refused_and_nothing_of_the_batch_is_kept(store: &dyn EventStore) {
    assert!(store.append(&[entry(0), entry(1)]).is_ok());
    let overlap = store.append(&[entry(2), entry(1)]);
    assert!(matches!(
        overlap,
        Err(StoreError::PositionConflict {
            expected: 3,
            given: 1
        })
    ));
    let gap = store.append(&[entry(3)]);
    assert!(matches!(
        gap,
        Err(StoreError::PositionConflict {
            expected: 2,
            given: 3
        })
    ));
    assert_eq!(store.size().ok(), Some(2));
    assert!(store.append(&[entry(2)]).is_ok());
    assert_eq!(store.size().ok(), Some(3));
}

/// An entry carrying `pieces` pieces of content, each with a commitment unique to the position.
fn entry_with_content(position: u64, pieces: u8) -> StoredEntry {
    let content = (0..pieces)
        .map(|piece| {
            let mut commitment = [0xc0; 32];
            commitment[0] = position as u8;
            commitment[1] = piece;
            StoredContent {
                position,
                commitment,
                piece: Some(([piece; 16], format!("content {piece} of entry {position}"))),
                erased_by: None,
            }
        })
        .collect();
    StoredEntry {
        content,
        ..entry(position)
    }
}

pub fn content_is_kept_beside_its_entry_and_a_refused_batch_keeps_none(store: &dyn EventStore) {
    let first = entry_with_content(0, 2);
    assert!(store.append(std::slice::from_ref(&first)).is_ok());
    let commitments: Vec<[u8; 32]> = first.content.iter().map(|piece| piece.commitment).collect();
    let mut found = store.read_content(&commitments).unwrap();
    found.sort_by_key(|piece| piece.commitment);
    assert_eq!(found, first.content);
    // The log itself reads back without it: content never travels with the entry's bytes.
    assert_eq!(store.read(0, 1).unwrap(), vec![entry(0)]);
    let refused = [entry_with_content(2, 1)];
    assert!(store.append(&refused).is_err());
    let refused_commitment = [refused[0].content[0].commitment];
    assert_eq!(store.read_content(&refused_commitment).unwrap(), vec![]);
    let mut following = None;
    let appended = store.append_following(1, &mut |_| {
        following = Some(entry_with_content(1, 1));
        following.clone().into_iter().collect()
    });
    assert!(appended.is_ok());
    let following = following.unwrap();
    let commitment = [following.content[0].commitment];
    assert_eq!(store.read_content(&commitment).unwrap(), following.content);
    // An erasure deletes the salt and text of every piece of the entry it names, with it.
    let erasure = StoredEntry {
        erases: Some(0),
        ..entry(2)
    };
    assert!(store.append(&[erasure]).is_ok());
    let erased = store.read_content(&commitments).unwrap();
    assert_eq!(erased.len(), 2);
    assert!(erased
        .iter()
        .all(|piece| piece.piece.is_none() && piece.erased_by == Some(2)));
    assert_eq!(store.read_content(&commitment).unwrap(), following.content);
}

pub fn an_empty_batch_changes_nothing(store: &dyn EventStore) {
    assert!(store.append(&[]).is_ok());
    assert_eq!(store.size().ok(), Some(0));
}

pub fn tiles_are_written_once_and_read_back(store: &dyn EventStore) {
    use super::StoredTile;
    assert_eq!(store.read_tile(0, 0).ok(), Some(None));
    let first = StoredTile {
        level: 0,
        index: 0,
        hashes: vec![1; 8192],
    };
    let other = StoredTile {
        level: 1,
        index: 3,
        hashes: vec![2; 8192],
    };
    assert!(store.write_tiles(&[first.clone(), other.clone()]).is_ok());
    let rewrite = StoredTile {
        level: 0,
        index: 0,
        hashes: vec![9; 8192],
    };
    assert!(
        store.write_tiles(&[rewrite]).is_ok(),
        "rewriting a full tile is harmless"
    );
    assert_eq!(store.read_tile(0, 0).ok(), Some(Some(first.hashes)));
    assert_eq!(store.read_tile(1, 3).ok(), Some(Some(other.hashes)));
    assert_eq!(store.read_tile(1, 0).ok(), Some(None));
}

pub fn a_corrupted_tile_is_named_and_replaced_by_the_recomputed_one(store: &dyn EventStore) {
    use super::{StoredTile, TileName};
    let recomputed = StoredTile {
        level: 0,
        index: 2,
        hashes: vec![3; 8192],
    };
    let forged = StoredTile {
        hashes: vec![4; 8192],
        ..recomputed.clone()
    };
    assert!(store.write_tiles(&[forged]).is_ok());
    let named = store.reconcile_tiles(std::slice::from_ref(&recomputed));
    assert_eq!(named.ok(), Some(vec![TileName { level: 0, index: 2 }]));
    assert_eq!(
        store.read_tile(0, 2).ok(),
        Some(Some(recomputed.hashes.clone()))
    );
    assert_eq!(store.reconcile_tiles(&[recomputed]).ok(), Some(vec![]));
}

pub fn the_largest_signed_checkpoint_is_remembered(store: &dyn EventStore) {
    use super::SignedCheckpoint;
    assert_eq!(store.largest_signed_checkpoint().ok(), Some(None));
    for (size, byte) in [(3, 3u8), (8, 8), (5, 5)] {
        assert!(store.record_signed_checkpoint(size, &[byte; 32]).is_ok());
    }
    let largest = SignedCheckpoint {
        size: 8,
        root: [8; 32],
    };
    assert_eq!(store.largest_signed_checkpoint().ok(), Some(Some(largest)));
}

pub fn an_append_following_sees_what_others_appended_and_lands_after_it(store: &dyn EventStore) {
    assert!(store.append(&[entry(0), entry(1)]).is_ok());
    // This appender last saw one entry; another node has appended the second meanwhile.
    let mut seen = Vec::new();
    let outcome = store.append_following(1, &mut |others| {
        seen = others;
        vec![entry(2), entry(3)]
    });
    assert!(outcome.is_ok());
    assert_eq!(seen, vec![entry(1)]);
    assert_eq!(
        store.read(0, 10).unwrap_or_default(),
        (0..4).map(entry).collect::<Vec<_>>()
    );
    let wrong = store.append_following(4, &mut |_| vec![entry(7)]);
    assert!(matches!(
        wrong,
        Err(StoreError::PositionConflict {
            expected: 4,
            given: 7
        })
    ));
    assert_eq!(store.size().ok(), Some(4));
}

/// Generates one test per contract clause for a backend, given an expression that makes a fresh
/// store (it may use a `tempfile::TempDir` bound as `directory`).
macro_rules! store_contract {
    ($module:ident, $make:expr) => {
        store_contract!($module, $make, [
            an_empty_store_has_size_zero_and_reads_nothing,
            appended_entries_read_back_in_order,
            a_gap_or_an_overlap_is_refused_and_nothing_of_the_batch_is_kept,
            tiles_are_written_once_and_read_back,
            an_append_following_sees_what_others_appended_and_lands_after_it,
            a_corrupted_tile_is_named_and_replaced_by_the_recomputed_one,
            the_largest_signed_checkpoint_is_remembered,
            an_empty_batch_changes_nothing,
            content_is_kept_beside_its_entry_and_a_refused_batch_keeps_none,
        ]);
    };
    ($module:ident, $make:expr, [$($clause:ident),* $(,)?]) => {
        mod $module {
            #[allow(unused_imports)]
            use super::super::*;

            $(
                #[test]
                fn $clause() {
                    let directory = tempfile::tempdir().unwrap();
                    let store = $make(&directory);
                    super::$clause(&store);
                }
            )*
        }
    };
}

store_contract!(memory, |_: &tempfile::TempDir| MemoryStore::new());
store_contract!(sqlite, |directory: &tempfile::TempDir| {
    SqliteStore::open(&directory.path().join("log.sqlite")).unwrap()
});

#[test]
fn sqlite_refuses_to_update_or_delete_a_stored_event() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.sqlite");
    let store = super::SqliteStore::open(&path).unwrap();
    store.append(&[entry(0)]).unwrap();
    let connection = rusqlite::Connection::open(&path).unwrap();
    assert!(connection
        .execute("UPDATE events SET entry = x'00'", [])
        .is_err());
    assert!(connection.execute("DELETE FROM events", []).is_err());
    assert_eq!(store.read(0, 1).unwrap(), vec![entry(0)]);
}

#[test]
fn sqlite_refuses_to_update_or_delete_a_stored_tile_and_remembers_signed_checkpoints_on_reopening()
{
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.sqlite");
    let store = super::SqliteStore::open(&path).unwrap();
    let tile = super::StoredTile {
        level: 0,
        index: 0,
        hashes: vec![1; 8192],
    };
    store.write_tiles(&[tile]).unwrap();
    store.record_signed_checkpoint(7, &[7; 32]).unwrap();
    let connection = rusqlite::Connection::open(&path).unwrap();
    assert!(connection
        .execute("UPDATE merkle_tiles SET hashes = zeroblob(8192)", [])
        .is_err());
    assert!(connection.execute("DELETE FROM merkle_tiles", []).is_err());
    drop(store);
    let reopened = super::SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.read_tile(0, 0).unwrap(), Some(vec![1; 8192]));
    assert_eq!(
        reopened
            .largest_signed_checkpoint()
            .unwrap()
            .map(|signed| signed.size),
        Some(7)
    );
}

#[test]
fn sqlite_entries_survive_reopening_the_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.sqlite");
    super::SqliteStore::open(&path)
        .unwrap()
        .append(&[entry(0), entry(1)])
        .unwrap();
    let reopened = super::SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.read(0, 10).unwrap(), vec![entry(0), entry(1)]);
}

/// The PostgreSQL URL. The suite is compiled as ignored when `DATABASE_URL` was unset at build
/// time (see `build.rs`), so reaching this without it (under `CI=true`, or a test binary run by
/// hand) is a failure, never a silent pass.
pub fn database_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("DATABASE_URL is not set: the PostgreSQL suite cannot run without it"),
    }
}

/// Runs `clause` on a store in a fresh schema of its own, so tests never see each other's
/// entries, and drops the schema afterwards.
fn with_postgres_store(clause: fn(&dyn EventStore)) {
    let url = database_url();
    let mut bytes = [0u8; 8];
    crate::keys::Entropy::fill(&crate::keys::OsEntropy, &mut bytes);
    let schema = format!("veche_test_{}", hex::encode(bytes));
    let store = super::PostgresStore::open(&url, Some(&schema))
        .expect("PostgreSQL at DATABASE_URL answers");
    clause(&store);
    drop(store);
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

mod postgres {
    macro_rules! postgres_contract {
        ($($clause:ident),*) => {
            $(
                #[test]
                #[cfg_attr(no_database, ignore = "DATABASE_URL is not set")]
                fn $clause() {
                    super::with_postgres_store(super::$clause);
                }
            )*
        };
    }

    postgres_contract!(
        an_empty_store_has_size_zero_and_reads_nothing,
        appended_entries_read_back_in_order,
        a_gap_or_an_overlap_is_refused_and_nothing_of_the_batch_is_kept,
        an_empty_batch_changes_nothing,
        tiles_are_written_once_and_read_back,
        a_corrupted_tile_is_named_and_replaced_by_the_recomputed_one,
        the_largest_signed_checkpoint_is_remembered,
        an_append_following_sees_what_others_appended_and_lands_after_it,
        content_is_kept_beside_its_entry_and_a_refused_batch_keeps_none
    );
}
