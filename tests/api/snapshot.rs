//! Start-up snapshots: written when a node stops, after the log attests the state they hold; used
//! at the next start only when the log's attestation names their ledger, and re-proven by an
//! audit that folds the log again; a snapshot that lies is not used, or is caught.

use std::path::Path;
use std::time::{Duration, Instant};

use projections::command::RegisterKey;
use projections::Action;
use veche::keys::SeededEntropy;
use veche::server::DataDirectory;
use veche::snapshot::{SnapshotFileError, SNAPSHOT_FILE};
use veche::store::MemoryStore;

use crate::harness::TestApp;

const ORIGIN: &str = "test.veche/log";

/// Whether a refusal is the one a damaged snapshot case expects.
type ExpectedRefusal = fn(&SnapshotFileError) -> bool;

/// Waits until `/healthz` reports `state`.
async fn wait_for_state(app: &TestApp, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = app.get("/healthz").await;
        if health.body["state"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node never reported state {state}: {:?}",
            health.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stops `app` after writing its snapshot; returns the snapshot's size.
async fn stop_with_snapshot(app: TestApp) -> u64 {
    let header = app
        .node
        .write_snapshot()
        .await
        .unwrap()
        .expect("a proven node with a data directory writes a snapshot");
    app.stop().await;
    header.size
}

/// A poll with `voters` ballots on a server over `directory`, stopped with a snapshot; the poll.
async fn snapshotted_poll(directory: &Path, voters: usize) -> u64 {
    let app = TestApp::spawn(directory).await;
    let poll = app.poll_with_ballots(voters).await;
    stop_with_snapshot(app).await;
    poll
}

fn load(directory: &Path) -> Result<Option<veche::snapshot::LoadedSnapshot>, SnapshotFileError> {
    let data = DataDirectory::open_existing(directory).unwrap();
    let store = data.open_store().unwrap();
    veche::snapshot::load(
        &directory.join(SNAPSHOT_FILE),
        &data.server_key,
        &*store,
        ORIGIN,
    )
}

#[actix_web::test]
async fn a_node_started_from_its_snapshot_has_the_state_it_stopped_with_and_its_audit_confirms_it()
{
    let directory = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(directory.path()).await;
    let poll = app.poll_with_ballots(12).await;
    let before = app.node.ledger().clone();
    let size = stop_with_snapshot(app).await;
    assert_eq!(size, before.size);
    let loaded = load(directory.path()).unwrap().expect("the snapshot loads");
    assert_eq!(
        loaded.ledger, before,
        "the snapshot holds the ledger it was written from"
    );

    // The log's entry at the snapshot's size attests exactly the snapshot's ledger.
    let data = DataDirectory::open_existing(directory.path()).unwrap();
    let stored = data.open_store().unwrap().read(size, 1).unwrap();
    let entry = projections::protocol::Entry::decode(&stored[0].bytes).unwrap();
    let attestation = match projections::Command::parse(&entry.payload).unwrap().action {
        Action::AttestState(attestation) => attestation,
        other => panic!("the entry after the snapshot's state is {}", other.name()),
    };
    assert_eq!(attestation.size, size);
    assert_eq!(
        attestation.ledger_sha256,
        hex::encode(loaded.header.ledger_sha256)
    );

    let app = TestApp::spawn(directory.path()).await;
    // Proven by the log before it was used, the snapshot's numbers are served at once.
    let tally = app.get(&format!("/v1/polls/{poll}/tally")).await;
    assert_eq!(tally.status, 200, "{:?}", tally.body);
    wait_for_state(&app, "verified").await;
    assert_eq!(app.node.ledger().polls, before.polls);
    assert_eq!(app.node.ledger().size, before.size + 1);
    let citizen = app.citizen().await;
    assert_eq!(app.vote(&citizen, poll, vec![1]).await.status, 201);
    let tally = app.get(&format!("/v1/polls/{poll}/tally")).await;
    assert_eq!(tally.status, 200, "{:?}", tally.body);
    assert_eq!(tally.body["counts"], serde_json::json!([4, 5, 4]));
    app.stop().await;
}

#[actix_web::test]
async fn a_signed_snapshot_whose_tree_differs_from_the_log_is_refuted_by_the_audit_and_writes_stop()
{
    let directory = tempfile::tempdir().unwrap();
    let poll = snapshotted_poll(directory.path(), 9).await;

    // The attested ledger with a tree part one hash off, signed with the server's own key: what a
    // bug in the tree's encoder would write. The attestation covers the ledger only; the audit,
    // folding the log again, finds the tree.
    let loaded = load(directory.path()).unwrap().unwrap();
    let mut ledger_part = Vec::new();
    projections::ledger::snapshot::encode(&loaded.ledger, &mut ledger_part);
    let mut tree_part = Vec::new();
    loaded.tree.encode(&mut tree_part);
    // No row above height 8 (a u64 count of 0), then level 0: its start, its count, its leaves.
    tree_part[24] ^= 0x01;
    let state = veche::snapshot::AttestedState {
        size: loaded.header.size,
        attestation_position: loaded.header.attestation_position,
        head_hash: loaded.header.head_hash,
        merkle_root: loaded.header.merkle_root,
        ledger_part,
        tree_part,
    };
    let data = DataDirectory::open_existing(directory.path()).unwrap();
    let path = directory.path().join(SNAPSHOT_FILE);
    veche::snapshot::write_attested(&path, &state, &data.server_key).unwrap();

    let app = TestApp::spawn(directory.path()).await;
    wait_for_state(&app, "refuted").await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.content_type, "application/problem+json");
    let size = app.node.ledger().size;
    let refused = app
        .act(&app.new_key(), Action::RegisterKey(RegisterKey {}))
        .await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(
        app.node.store().size().unwrap(),
        size,
        "nothing was appended"
    );
    assert!(!path.exists(), "the refuted snapshot is removed");
    assert!(
        app.node.write_snapshot().await.unwrap().is_none(),
        "a refuted state is never written as a snapshot"
    );
    app.stop().await;

    let app = TestApp::spawn(directory.path()).await;
    assert_eq!(app.get("/healthz").await.body["state"], "verified");
    assert_eq!(app.node.ledger().polls[&poll].tally.turnout, 9);
    let citizen = app.citizen().await;
    assert_eq!(app.vote(&citizen, poll, vec![0]).await.status, 201);
    app.stop().await;
}

#[actix_web::test]
async fn a_damaged_or_foreign_snapshot_is_not_used_and_the_log_is_replayed_in_full() {
    let directory = tempfile::tempdir().unwrap();
    let poll = snapshotted_poll(directory.path(), 5).await;
    let path = directory.path().join(SNAPSHOT_FILE);
    let good = std::fs::read(&path).unwrap();
    let header_end = good.iter().position(|byte| *byte == b'\n').unwrap()
        + 1
        + good[good.iter().position(|byte| *byte == b'\n').unwrap() + 1..]
            .iter()
            .position(|byte| *byte == b'\n')
            .unwrap();
    let flip = |offset: usize| {
        let mut bytes = good.clone();
        bytes[offset] ^= 0x01;
        bytes
    };
    let cases: Vec<(&str, Vec<u8>, ExpectedRefusal)> = vec![
        ("a byte of the magic line", flip(3), |error| {
            matches!(error, SnapshotFileError::NotASnapshot)
        }),
        (
            "the last byte of the signature",
            flip(header_end - 3),
            |error| {
                matches!(
                    error,
                    SnapshotFileError::Signature | SnapshotFileError::Header(_)
                )
            },
        ),
        (
            "a byte of the ledger part",
            flip(header_end + 20),
            |error| matches!(error, SnapshotFileError::Digest("ledger")),
        ),
        (
            "the last byte of the tree part",
            flip(good.len() - 1),
            |error| matches!(error, SnapshotFileError::Digest("tree")),
        ),
        (
            "a file cut short",
            good[..good.len() - 40].to_vec(),
            |error| matches!(error, SnapshotFileError::Digest(_)),
        ),
    ];
    for (case, bytes, expected) in cases {
        std::fs::write(&path, &bytes).unwrap();
        match load(directory.path()) {
            Err(error) => assert!(expected(&error), "{case}: refused for {error}"),
            Ok(_) => panic!("{case}: the damaged snapshot was accepted"),
        }
    }

    // Another server's key, and a log shorter than the snapshot.
    std::fs::write(&path, &good).unwrap();
    let stranger =
        DataDirectory::open_or_init(&directory.path().join("stranger"), &SeededEntropy::new(7))
            .unwrap();
    let data = DataDirectory::open_existing(directory.path()).unwrap();
    let store = data.open_store().unwrap();
    assert!(matches!(
        veche::snapshot::load(&path, &stranger.server_key, &*store, ORIGIN),
        Err(SnapshotFileError::ForeignKey(_))
    ));
    assert!(matches!(
        veche::snapshot::load(&path, &data.server_key, &MemoryStore::new(), ORIGIN),
        Err(SnapshotFileError::LogShorter { log_size: 0, .. })
    ));

    // A ledger the server key signed but the log's attestation does not name: one ballot more.
    let loaded = load(directory.path()).unwrap().unwrap();
    let mut ledger = loaded.ledger.clone();
    ledger.polls.forge().get_mut(&poll).unwrap().tally.turnout += 1;
    veche::snapshot::write(&path, &ledger, &loaded.tree, &data.server_key).unwrap();
    match load(directory.path()) {
        Err(SnapshotFileError::Unattested(position)) => assert_eq!(position, loaded.header.size),
        Err(error) => panic!("the unattested ledger was refused for {error}"),
        Ok(_) => panic!("a ledger the log does not attest was accepted"),
    }

    // A node given the damaged file starts anyway, from the whole log.
    std::fs::write(&path, flip(header_end + 20)).unwrap();
    let app = TestApp::spawn(directory.path()).await;
    assert_eq!(app.get("/healthz").await.body["state"], "verified");
    assert_eq!(app.node.ledger().polls[&poll].tally.turnout, 5);
    app.stop().await;
}

#[actix_web::test]
async fn the_server_binary_writes_a_snapshot_when_stopped_by_sigterm_and_starts_from_it() {
    let directory = tempfile::tempdir().unwrap();
    let (mut server, port, base, http) =
        crate::crash::start_on_free_port(directory.path(), None).await;
    let entropy = SeededEntropy::new(11);
    for _ in 0..3 {
        let key = veche::keys::generate_key(&entropy);
        let registered = crate::crash::register(&http, &base, &key, &entropy).await;
        assert_eq!(registered.unwrap().0, 201);
    }
    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let exit = server.child.wait().unwrap();
    assert!(
        exit.success(),
        "the server exits cleanly on SIGTERM: {exit}"
    );
    let loaded = load(directory.path())
        .unwrap()
        .expect("SIGTERM left a snapshot");
    assert_eq!(loaded.header.size, 4, "genesis and three registrations");

    let mut server = crate::crash::start_server(directory.path(), port, None);
    crate::crash::wait_ready(&http, &base).await;
    let health = crate::crash::get_json(&http, &base, "/healthz").await;
    assert_eq!(
        health["log_size"], 5,
        "and the attestation of the snapshot's state"
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[actix_web::test]
async fn a_node_given_a_forged_snapshot_does_not_use_it_and_closes_the_poll_with_the_logs_tally() {
    let directory = tempfile::tempdir().unwrap();
    let poll = snapshotted_poll(directory.path(), 9).await;
    // The probe's forgery: one count more than the log holds, signed with the server key.
    let loaded = load(directory.path()).unwrap().unwrap();
    let mut ledger = loaded.ledger.clone();
    let forged = ledger.polls.forge().get_mut(&poll).unwrap();
    forged.tally.counts[0] += 1;
    let data = DataDirectory::open_existing(directory.path()).unwrap();
    let path = directory.path().join(SNAPSHOT_FILE);
    veche::snapshot::write(&path, &ledger, &loaded.tree, &data.server_key).unwrap();

    // The node starts after the poll's closing time: its close is due at once.
    let after_close = crate::harness::TEST_START.plus_milliseconds(61 * crate::harness::MINUTE_MS);
    let clock = std::sync::Arc::new(veche::clock::ManualClock::starting_at(after_close));
    let app = TestApp::spawn_with_clock(directory.path(), clock).await;
    // The log's attestation names the true ledger, not the forged one: the snapshot is not used,
    // and the node's state is the fold of the whole log.
    assert_eq!(app.get("/healthz").await.body["state"], "verified");
    assert_eq!(
        app.node.ledger().polls[&poll].tally,
        loaded.ledger.polls[&poll].tally
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.node.ledger().polls[&poll].closed.is_none() {
        assert!(
            Instant::now() < deadline,
            "the due close was never appended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed = app.get(&format!("/v1/polls/{poll}/tally")).await;
    assert_eq!(closed.status, 200, "{:?}", closed.body);
    assert_eq!(
        closed.body["counts"],
        serde_json::json!(loaded.ledger.polls[&poll].tally.counts),
        "the close carries the log's tally, not the forged one"
    );
    app.stop().await;
    crate::harness::assert_data_directory_verifies(directory.path());
}
