//! Tampering with the stored log is caught at start-up and by `veche verify`, naming the position.

use projections::command::RegisterKey;
use projections::{Action, ReplayFailure};
use veche::clock::ManualClock;
use veche::server::{DataDirectory, LOG_FILE};
use veche::store::SqliteStore;

use crate::harness::{assert_data_directory_verifies, verify_data_directory, TestApp, TEST_START};

/// Rewrites one stored entry behind the store's back, as an attacker with file access would.
fn overwrite_entry(directory: &std::path::Path, position: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    let (connection, mut entry) = entry_for_rewrite(directory, position);
    edit(&mut entry);
    connection
        .execute(
            "UPDATE events SET entry = ?1 WHERE position = ?2",
            rusqlite::params![entry, position as i64],
        )
        .unwrap();
}

/// The stored bytes of the entry at `position`, and a connection with the append-only trigger
/// dropped, so that the entry can be rewritten.
fn entry_for_rewrite(
    directory: &std::path::Path,
    position: u64,
) -> (rusqlite::Connection, Vec<u8>) {
    let connection = rusqlite::Connection::open(directory.join(LOG_FILE)).unwrap();
    connection
        .execute_batch("DROP TRIGGER events_are_never_updated")
        .unwrap();
    let entry: Vec<u8> = connection
        .query_row(
            "SELECT entry FROM events WHERE position = ?1",
            [position as i64],
            |row| row.get(0),
        )
        .unwrap();
    (connection, entry)
}

async fn populated_log(directory: &std::path::Path) -> u64 {
    let app = TestApp::spawn(directory).await;
    let official = app.official().await;
    let poll = app.open_standard_poll(&official, 2).await;
    for choice in [0, 1, 1, 0, 1] {
        let voter = app.citizen().await;
        assert_eq!(app.vote(&voter, poll, vec![choice]).await.status, 201);
    }
    let citizen = app.new_key();
    assert_eq!(
        app.act(&citizen, Action::RegisterKey(RegisterKey {}))
            .await
            .status,
        201
    );
    let size = app.log_size().await;
    app.stop().await;
    size
}

fn restart_error(directory: &std::path::Path) -> projections::ReplayError {
    let data = DataDirectory::open_existing(directory).unwrap();
    let clock = std::sync::Arc::new(ManualClock::starting_at(TEST_START));
    match data.start_node(data.open_store().unwrap(), clock, "test.veche/log") {
        Ok(_) => panic!("a tampered log must not start"),
        Err(veche::server::ServeError::Start(veche::node::StartError::Replay(error))) => error,
        Err(other) => panic!("unexpected start error: {other}"),
    }
}

#[actix_web::test]
async fn changing_one_byte_of_a_stored_ballot_is_named_by_its_position() {
    let directory = tempfile::tempdir().unwrap();
    let size = populated_log(directory.path()).await;
    // Position 8 is a ballot: genesis, official, grant, poll, then citizen/ballot pairs.
    let target = 8;
    overwrite_entry(directory.path(), target, |entry| {
        let last = entry.len() - 3;
        entry[last] ^= 0x01;
    });
    let error = restart_error(directory.path());
    assert_eq!(error.position, target, "{error}");
    assert_eq!(error.failure, ReplayFailure::StoredHashMismatch, "{error}");

    let store = SqliteStore::open(&directory.path().join(LOG_FILE)).unwrap();
    let mut replayer = projections::Replayer::new();
    let outcome = veche::writer::catch_up(&store, &mut replayer, |_| {});
    assert!(outcome.is_err());
    assert_eq!(
        replayer.ledger.size, target,
        "replay stops before the bad entry of {size}"
    );
}

#[actix_web::test]
async fn a_rewritten_entry_with_a_recomputed_stored_hash_still_breaks_the_next_link() {
    let directory = tempfile::tempdir().unwrap();
    populated_log(directory.path()).await;
    let target = 6;
    let (connection, mut entry) = entry_for_rewrite(directory.path(), target);
    let last = entry.len() - 3;
    entry[last] ^= 0x01;
    let hash = projections::protocol::entry_hash(&entry);
    connection
        .execute(
            "UPDATE events SET entry = ?1, hash = ?2 WHERE position = ?3",
            rusqlite::params![entry, hash.as_slice(), target as i64],
        )
        .unwrap();
    let error = restart_error(directory.path());
    // The signature no longer covers the edited payload, so the edited entry itself fails.
    assert_eq!(error.position, target, "{error}");
    assert!(
        matches!(error.failure, ReplayFailure::Signature(_)),
        "{error}"
    );
}

#[actix_web::test]
async fn the_verify_command_names_the_first_bad_position() {
    let directory = tempfile::tempdir().unwrap();
    populated_log(directory.path()).await;
    let clean = assert_data_directory_verifies(directory.path());
    assert!(String::from_utf8_lossy(&clean.stdout).contains("counts [2, 3]"));

    overwrite_entry(directory.path(), 7, |entry| entry[20] ^= 0x80);
    let tampered = verify_data_directory(directory.path());
    assert!(!tampered.status.success());
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    assert!(stderr.contains("entry at position 7"), "{stderr}");
}
