//! The node and a store that stops answering: while the log store refuses this node's appends,
//! `/readyz` answers 503 (it is ready again once an append is taken), and a start-up whose store
//! drops out mid-replay starts again instead of giving up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use projections::command::RegisterKey;
use projections::Action;
use veche::clock::ManualClock;
use veche::keys::SeededEntropy;
use veche::server::{Application, Settings};
use veche::store::StoreError;

use crate::faulty_store::{Faults, FaultyStore, WriteFault};
use crate::harness::{Answer, TestApp, TEST_START};

/// Faults for a memory store whose appends fail while `refusing` is set, as a store that lost its
/// disk or its database would, and whose next `failing_reads` reads fail, as a dropped connection
/// does.
#[derive(Default)]
struct Switches {
    refusing: AtomicBool,
    failing_reads: AtomicU64,
}

type SwitchableStore = FaultyStore<Switches>;

impl Faults for Switches {
    fn next_write(&self, _following: bool) -> WriteFault {
        if self.refusing.load(Ordering::SeqCst) {
            return WriteFault::BeforeTheWrite(StoreError::Unavailable("the disk is gone".into()));
        }
        WriteFault::None
    }
    fn next_read(&self) -> Option<StoreError> {
        let failing = self.failing_reads.load(Ordering::SeqCst);
        if failing == 0 {
            return None;
        }
        self.failing_reads.store(failing - 1, Ordering::SeqCst);
        Some(StoreError::Unavailable(
            "the connection was terminated".into(),
        ))
    }
    fn backend_name(&self) -> &'static str {
        "switchable-memory"
    }
}

/// A key registration by a key of its own: a write the store's state decides.
async fn register_a_new_key(app: &TestApp) -> Answer {
    app.act(&app.new_key(), Action::RegisterKey(RegisterKey {}))
        .await
}

#[actix_web::test]
async fn readiness_fails_while_the_store_refuses_appends_and_returns_once_one_is_taken() {
    let directory = tempfile::tempdir().unwrap();
    let store = Arc::new(SwitchableStore::new(Switches::default()));
    let clock = Arc::new(ManualClock::starting_at(TEST_START));
    let application = Application::build(Settings {
        data_directory: directory.path(),
        entropy: &SeededEntropy::new(7),
        store: Some(store.clone()),
        clock: clock.clone(),
        log_origin: "test.veche/log",
        listener: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        redis_url: None,
        commands_per_address_per_minute: projections::limits::COMMANDS_PER_ADDRESS_PER_MINUTE_MAX,
        registrations_per_address_per_hour:
            projections::limits::REGISTRATIONS_PER_ADDRESS_PER_HOUR_MAX,
        snapshot_interval_entries: 0,
    })
    .unwrap();
    let app = TestApp::from_application(application, clock.clone());
    assert_eq!(app.get("/readyz").await.status, 200);

    store.faults.refusing.store(true, Ordering::SeqCst);
    let refused = register_a_new_key(&app).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    let ready = app.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.problem_type()),
        (503, "urn:veche:problem:store-unavailable"),
        "readiness must not say ready while every write fails: {:?}",
        ready.body
    );

    store.faults.refusing.store(false, Ordering::SeqCst);
    // The hold ends on its own, so that traffic comes back and a write can tell.
    clock.advance_milliseconds(projections::limits::READINESS_WRITE_FAILURE_HOLD_MS);
    assert_eq!(app.get("/readyz").await.status, 200);
    store.faults.refusing.store(true, Ordering::SeqCst);
    let _ = register_a_new_key(&app).await;
    assert_eq!(app.get("/readyz").await.status, 503);
    store.faults.refusing.store(false, Ordering::SeqCst);
    let taken = register_a_new_key(&app).await;
    assert_eq!(taken.status, 201, "{:?}", taken.body);
    assert_eq!(
        app.get("/readyz").await.status,
        200,
        "a taken append ends the hold at once"
    );
    app.stop().await;
}

#[test]
fn a_start_up_whose_store_drops_out_mid_replay_starts_again_and_serves_the_whole_log() {
    let store = Arc::new(SwitchableStore::new(Switches::default()));
    let config = |store: Arc<SwitchableStore>| veche::node::NodeConfig {
        store,
        clock: Arc::new(ManualClock::starting_at(TEST_START)),
        server_key: ed25519_dalek::SigningKey::from_bytes(&[41; 32]),
        admin_keys: vec![crate::harness::public(
            &ed25519_dalek::SigningKey::from_bytes(&[42; 32]),
        )],
        recovery: None,
        log_origin: "test.veche/log".into(),
        snapshot: None,
        snapshot_interval_entries: 0,
    };
    let first = veche::node::Node::start(config(store.clone())).unwrap();
    let size = first.ledger().size;
    drop(first);

    // Three reads fail, as a connection terminated under the replay would make them.
    store.faults.failing_reads.store(3, Ordering::SeqCst);
    let again = veche::node::Node::start(config(store.clone()))
        .expect("a transient store error during start-up is waited out");
    assert_eq!(again.ledger().size, size);
    assert_eq!(store.faults.failing_reads.load(Ordering::SeqCst), 0);
}
