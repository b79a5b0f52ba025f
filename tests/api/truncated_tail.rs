//! A log shorter than a checkpoint its node signed does not start: the node remembers the
//! largest checkpoint it signed outside the events table (issue 14, defect 3).

use std::path::Path;
use std::sync::Arc;

use projections::command::RegisterKey;
use projections::Action;
use veche::clock::ManualClock;
use veche::node::StartError;
use veche::server::{DataDirectory, ServeError, LOG_FILE};

use crate::harness::{verify_data_directory, TestApp, TEST_START};

/// A log of genesis plus `registrations` entries; with `snapshot`, stopped with a snapshot at
/// its size. Returns the size.
async fn log_of(directory: &Path, registrations: usize, snapshot: bool) -> u64 {
    let app = TestApp::spawn(directory).await;
    for _ in 0..registrations {
        let key = app.new_key();
        let answer = app.act(&key, Action::RegisterKey(RegisterKey {})).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    if snapshot {
        assert!(app.node.write_snapshot().await.unwrap().is_some());
    }
    // With a snapshot, its attestation is the last entry.
    let size = app.log_size().await;
    app.stop().await;
    size
}

/// Deletes the last `count` entries behind the store's back, as an attacker with file access
/// would: the protecting trigger is dropped first.
fn cut_tail(directory: &Path, count: u64) {
    let connection = rusqlite::Connection::open(directory.join(LOG_FILE)).unwrap();
    connection
        .execute_batch("DROP TRIGGER IF EXISTS events_are_never_deleted")
        .unwrap();
    connection
        .execute(
            "DELETE FROM events WHERE position >= (SELECT max(position) + 1 FROM events) - ?1",
            [count as i64],
        )
        .unwrap();
}

fn start_error(directory: &Path) -> StartError {
    let data = DataDirectory::open_existing(directory).unwrap();
    let clock = Arc::new(ManualClock::starting_at(TEST_START));
    match data.start_node(data.open_store().unwrap(), clock, "test.veche/log") {
        Ok(_) => panic!("a log with a cut tail must not start"),
        Err(ServeError::Start(error)) => error,
        Err(other) => panic!("unexpected start error: {other}"),
    }
}

/// The start error on `directory`, which must be the refusal naming both sizes.
fn refused_start(directory: &Path, log_size: u64, signed_size: u64) -> StartError {
    let error = start_error(directory);
    assert!(
        matches!(
            error,
            StartError::LogShorterThanSigned { log_size: found, signed_size: signed }
                if found == log_size && signed == signed_size
        ),
        "{error}"
    );
    error
}

#[actix_web::test]
async fn deleting_the_last_entry_under_a_snapshot_at_the_old_size_refuses_start_naming_both_sizes()
{
    let directory = tempfile::tempdir().unwrap();
    let size = log_of(directory.path(), 4, true).await;
    cut_tail(directory.path(), 1);
    let error = refused_start(directory.path(), size - 1, size);
    let message = error.to_string();
    assert!(
        message.contains(&format!("holds {} entries", size - 1))
            && message.contains(&format!("at size {size}")),
        "{message}"
    );
    let verified = verify_data_directory(directory.path());
    assert!(!verified.status.success());
    let stderr = String::from_utf8_lossy(&verified.stderr);
    assert!(stderr.contains(&format!("at size {size}")), "{stderr}");
}

#[actix_web::test]
async fn deleting_a_hundred_entries_without_a_snapshot_refuses_start_and_fails_verify() {
    let directory = tempfile::tempdir().unwrap();
    let size = log_of(directory.path(), 105, false).await;
    let clean = verify_data_directory(directory.path());
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    cut_tail(directory.path(), 100);
    refused_start(directory.path(), size - 100, size);
    let verified = verify_data_directory(directory.path());
    assert!(!verified.status.success());
    let stderr = String::from_utf8_lossy(&verified.stderr);
    assert!(
        stderr.contains(&format!("holds {} entries", size - 100)),
        "{stderr}"
    );
}

#[actix_web::test]
async fn with_the_record_deleted_too_a_snapshot_at_the_old_size_still_refuses_start() {
    let directory = tempfile::tempdir().unwrap();
    let size = log_of(directory.path(), 2, true).await;
    cut_tail(directory.path(), 1);
    let record = directory
        .path()
        .join(LOG_FILE)
        .with_extension(veche::store::SIGNED_CHECKPOINT_EXTENSION);
    std::fs::remove_file(record).unwrap();
    refused_start(directory.path(), size - 1, size);
}

#[actix_web::test]
async fn a_node_that_stops_and_starts_again_on_an_intact_log_starts() {
    let directory = tempfile::tempdir().unwrap();
    let size = log_of(directory.path(), 3, true).await;
    let app = TestApp::spawn(directory.path()).await;
    assert_eq!(app.log_size().await, size);
    app.stop().await;
}

mod postgres {
    use std::sync::Arc;

    use veche::clock::ManualClock;
    use veche::keys::{generate_key, SeededEntropy};
    use veche::node::{Node, NodeConfig, StartError};
    use veche::store::{EventStore, PostgresStore};

    use crate::harness::{public, TEST_START};

    fn database_url() -> String {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => panic!("DATABASE_URL is not set: the PostgreSQL suite cannot run without it"),
        }
    }

    fn start(store: Arc<dyn EventStore>) -> Result<Node, StartError> {
        let entropy = SeededEntropy::new(1414);
        let server = generate_key(&entropy);
        let admin = generate_key(&entropy);
        Node::start(NodeConfig {
            store,
            clock: Arc::new(ManualClock::starting_at(TEST_START)),
            server_key: server,
            admin_keys: vec![public(&admin)],
            recovery: None,
            log_origin: "test.veche/log".into(),
            snapshot: None,
            snapshot_interval_entries: 0,
        })
    }

    #[test]
    #[cfg_attr(no_database, ignore = "DATABASE_URL is not set")]
    fn on_postgresql_every_node_refuses_a_log_cut_below_a_signed_checkpoint() {
        let url = database_url();
        let mut unique = [0u8; 8];
        veche::keys::Entropy::fill(&veche::keys::OsEntropy, &mut unique);
        let schema = format!("veche_truncated_{}", hex::encode(unique));
        let open = || -> Arc<dyn EventStore> {
            Arc::new(PostgresStore::open(&url, Some(&schema)).unwrap())
        };
        // The first start writes the genesis entry and signs a checkpoint at size 1.
        let first = start(open()).unwrap();
        first.shut_down();
        let again = start(open()).unwrap();
        again.shut_down();

        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        client
            .batch_execute(&format!(
                "SET search_path TO {schema}; \
                 DROP TRIGGER events_are_never_changed ON events; \
                 DELETE FROM events;"
            ))
            .unwrap();
        for _node in 0..2 {
            match start(open()) {
                Ok(_) => panic!("a node started on a log cut below its signed checkpoint"),
                Err(StartError::LogShorterThanSigned {
                    log_size,
                    signed_size,
                }) => assert_eq!((log_size, signed_size), (0, 1)),
                Err(other) => panic!("unexpected start error: {other}"),
            }
        }
        let stored = open().size().unwrap();
        assert_eq!(stored, 0, "no genesis was written over the emptied log");
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
    }
}
