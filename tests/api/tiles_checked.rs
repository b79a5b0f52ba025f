//! Stored Merkle hash tiles are checked against the entries, never trusted: start-up, the
//! snapshot's audit and `veche verify --data-dir` name a corrupted tile, and only its
//! recomputation from the entries replaces it (issue 14, defect 2).

use std::path::Path;

use projections::command::RegisterKey;
use projections::Action;
use veche::server::{DataDirectory, LOG_FILE};
use veche::store::{SqliteStore, TileName};

use crate::harness::verify_data_directory;
use crate::harness::TestApp;

const ORIGIN: &str = "test.veche/log";

/// A log past its first full tile (256 leaves); with `snapshot`, stopped with a snapshot.
/// Returns the served bytes of tile 0/000.
async fn log_past_one_tile(directory: &Path, snapshot: bool) -> Vec<u8> {
    let app = TestApp::spawn(directory).await;
    for _ in 0..270 {
        let key = app.new_key();
        let answer = app.act(&key, Action::RegisterKey(RegisterKey {})).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    let tile = served_tile(&app).await;
    if snapshot {
        assert!(app.node.write_snapshot().await.unwrap().is_some());
    }
    app.stop().await;
    tile
}

async fn served_tile(app: &TestApp) -> Vec<u8> {
    let response = app
        .http
        .get(format!("{}/tlog/tile/0/000", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

fn stored_tile(directory: &Path) -> Vec<u8> {
    let connection = rusqlite::Connection::open(directory.join(LOG_FILE)).unwrap();
    connection
        .query_row(
            "SELECT hashes FROM merkle_tiles WHERE level = 0 AND idx = 0",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

/// Flips one bit of one hash in tile 0/000, as an attacker with file access would: the
/// protecting trigger is dropped first.
fn corrupt_tile(directory: &Path) {
    let connection = rusqlite::Connection::open(directory.join(LOG_FILE)).unwrap();
    let plain_update = connection.execute(
        "UPDATE merkle_tiles SET hashes = zeroblob(8192) WHERE level = 0 AND idx = 0",
        [],
    );
    assert!(plain_update.is_err(), "the tiles table refuses an update");
    assert!(
        connection.execute("DELETE FROM merkle_tiles", []).is_err(),
        "the tiles table refuses a delete"
    );
    connection
        .execute_batch("DROP TRIGGER IF EXISTS merkle_tiles_are_never_updated")
        .unwrap();
    let mut hashes = stored_tile(directory);
    hashes[100 * 32 + 5] ^= 0x01;
    connection
        .execute(
            "UPDATE merkle_tiles SET hashes = ?1 WHERE level = 0 AND idx = 0",
            [hashes],
        )
        .unwrap();
}

#[actix_web::test]
async fn a_corrupted_tile_is_named_by_verify_and_replaced_by_its_recomputation_at_start_up() {
    let directory = tempfile::tempdir().unwrap();
    let good = log_past_one_tile(directory.path(), false).await;
    assert_eq!(stored_tile(directory.path()), good);
    corrupt_tile(directory.path());
    assert_ne!(stored_tile(directory.path()), good);

    let verified = verify_data_directory(directory.path());
    assert!(!verified.status.success(), "verify passed a corrupted tile");
    let stderr = String::from_utf8_lossy(&verified.stderr);
    assert!(stderr.contains("tile/0/000"), "{stderr}");

    let app = TestApp::spawn(directory.path()).await;
    assert_eq!(
        served_tile(&app).await,
        good,
        "the served tile is recomputed"
    );
    app.stop().await;
    assert_eq!(
        stored_tile(directory.path()),
        good,
        "the stored tile is repaired"
    );
    let verified = verify_data_directory(directory.path());
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[actix_web::test]
async fn under_a_snapshot_start_up_and_the_audit_both_check_the_tiles_against_the_entries() {
    let directory = tempfile::tempdir().unwrap();
    let good = log_past_one_tile(directory.path(), true).await;
    let data = DataDirectory::open_existing(directory.path()).unwrap();
    let snapshot = directory.path().join(veche::snapshot::SNAPSHOT_FILE);

    // The audit names the corrupted tile and replaces it.
    corrupt_tile(directory.path());
    let store = SqliteStore::open(&directory.path().join(LOG_FILE)).unwrap();
    let loaded = veche::snapshot::load(&snapshot, &data.server_key, &store, ORIGIN)
        .unwrap()
        .unwrap();
    let repaired =
        veche::snapshot::audit(&store, &loaded.header, ORIGIN, &data.server_key).unwrap();
    assert_eq!(repaired, vec![TileName { level: 0, index: 0 }]);
    assert_eq!(stored_tile(directory.path()), good);
    drop(store);

    // A start from the snapshot checks the tiles below it before serving them.
    corrupt_tile(directory.path());
    let app = TestApp::spawn(directory.path()).await;
    assert_eq!(served_tile(&app).await, good);
    app.stop().await;
    assert_eq!(stored_tile(directory.path()), good);
}

#[actix_web::test]
async fn verify_against_a_server_fails_naming_a_served_tile_that_differs_from_the_entries() {
    let directory = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(directory.path()).await;
    // Past the leaves whose low nodes the node keeps in memory, so tile 0/000 is served from the
    // store.
    let leaves = projections::limits::TREE_RECENT_LEAVES_MAX + 300;
    for _ in 0..leaves.div_ceil(200) {
        let acts = (0..200).map(|_| {
            let key = app.new_key();
            let app = &app;
            async move { app.act(&key, Action::RegisterKey(RegisterKey {})).await }
        });
        for answer in futures::future::join_all(acts).await {
            assert_eq!(answer.status, 201, "{:?}", answer.body);
        }
    }
    let log_key = app.get("/v1/log").await.body["verifier_key"]
        .as_str()
        .unwrap()
        .to_string();
    let verify = |address: String, log_key: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_veche"))
                .args(["verify", "--server", &address, "--log-key", &log_key])
                .output()
                .unwrap()
        })
    };
    let clean = verify(app.address.clone(), log_key.clone()).await.unwrap();
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    corrupt_tile(directory.path());
    let tampered = verify(app.address.clone(), log_key).await.unwrap();
    assert!(
        !tampered.status.success(),
        "verify passed a bad served tile"
    );
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    assert!(stderr.contains("served hash tile tile/0/000"), "{stderr}");
    app.stop().await;
}
