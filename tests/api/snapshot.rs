//! Start-up snapshots: written when a node stops, used at the next start only after its checks,
//! and re-proven by an audit that folds the log again; a snapshot that lies is caught.

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

    let app = TestApp::spawn(directory.path()).await;
    wait_for_state(&app, "verified").await;
    assert_eq!(*app.node.ledger(), before);
    let citizen = app.citizen().await;
    assert_eq!(app.vote(&citizen, poll, vec![1]).await.status, 201);
    let tally = app.get(&format!("/v1/polls/{poll}/tally")).await;
    assert_eq!(tally.status, 200, "{:?}", tally.body);
    assert_eq!(tally.body["counts"], serde_json::json!([4, 5, 4]));
    app.stop().await;
}

#[actix_web::test]
async fn a_signed_snapshot_that_differs_from_the_log_is_refuted_by_the_audit_and_writes_stop() {
    let directory = tempfile::tempdir().unwrap();
    let poll = snapshotted_poll(directory.path(), 9).await;

    // A snapshot with the server's own signature, the right anchors and one ballot fewer: what a
    // bug in the fold or the encoder would write. Only folding the log again can tell.
    let loaded = load(directory.path()).unwrap().unwrap();
    let mut ledger = loaded.ledger;
    let tallied = ledger.polls.forge().get_mut(&poll).unwrap();
    let voter = *tallied.ballots.keys().next().unwrap();
    let removed = tallied.ballots.remove(&voter).unwrap();
    for option in removed.iter() {
        tallied.tally.counts[option as usize] -= 1;
    }
    tallied.tally.turnout -= 1;
    let data = DataDirectory::open_existing(directory.path()).unwrap();
    let path = directory.path().join(SNAPSHOT_FILE);
    veche::snapshot::write(&path, &ledger, &loaded.tree, &data.server_key).unwrap();

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
        app.node.write_snapshot().unwrap().is_none(),
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
    assert_eq!(health["log_size"], 4);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[actix_web::test]
async fn a_node_on_a_forged_snapshot_appends_no_close_and_the_log_stays_verifiable() {
    let directory = tempfile::tempdir().unwrap();
    let poll = snapshotted_poll(directory.path(), 9).await;
    // The probe's forgery: one count more than the log holds, signed with the server key.
    let loaded = load(directory.path()).unwrap().unwrap();
    let mut ledger = loaded.ledger;
    let forged = ledger.polls.forge().get_mut(&poll).unwrap();
    forged.tally.counts[0] += 1;
    let data = DataDirectory::open_existing(directory.path()).unwrap();
    let path = directory.path().join(SNAPSHOT_FILE);
    veche::snapshot::write(&path, &ledger, &loaded.tree, &data.server_key).unwrap();

    // The node starts after the poll's closing time: its close is due at once.
    let after_close = crate::harness::TEST_START.plus_milliseconds(61 * crate::harness::MINUTE_MS);
    let clock = std::sync::Arc::new(veche::clock::ManualClock::starting_at(after_close));
    let app = TestApp::spawn_with_clock(directory.path(), clock.clone()).await;
    wait_for_state(&app, "refuted").await;
    // A refuted node serves none of the numbers it has not proven (the probe read 941 wrong ones).
    for path in [
        format!("/v1/polls/{poll}/tally"),
        format!("/v1/polls/{poll}"),
        "/v1/statistics/complaints".into(),
    ] {
        let read = app.get(&path).await;
        assert_eq!(
            (read.status, read.problem_type()),
            (503, "urn:veche:problem:state-unproven"),
            "{path}: {:?}",
            read.body
        );
    }
    assert_eq!(
        app.get("/v1/log/entries").await.status,
        200,
        "the log itself is still served"
    );
    // Give the system-event ticker its chances to close the poll on the forged state.
    tokio::time::sleep(Duration::from_millis(
        4 * projections::limits::SYSTEM_EVENT_INTERVAL_MS,
    ))
    .await;
    assert!(
        app.node.ledger().polls[&poll].closed.is_none(),
        "no close is decided on a state the log has not proven"
    );
    app.stop().await;
    crate::harness::assert_data_directory_verifies(directory.path());

    // Started again without the refuted snapshot, the node closes the poll with the log's tally.
    let app = TestApp::spawn_with_clock(directory.path(), clock).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.node.ledger().polls[&poll].closed.is_none() {
        assert!(
            Instant::now() < deadline,
            "the due close was never appended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.node.ledger().polls[&poll].tally.turnout, 9);
    app.stop().await;
    crate::harness::assert_data_directory_verifies(directory.path());
}
