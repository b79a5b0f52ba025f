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
use veche::store::{EventStore, MemoryStore, StoreError, StoredEntry, StoredTile};

use crate::harness::{TestApp, TEST_START};

/// A memory store whose appends fail while `refusing` is set, as a store that lost its disk or
/// its database would, and whose next `failing_reads` reads fail, as a dropped connection does.
#[derive(Default)]
struct SwitchableStore {
    inner: MemoryStore,
    refusing: AtomicBool,
    failing_reads: AtomicU64,
}

impl SwitchableStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.refusing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the disk is gone".into()));
        }
        Ok(())
    }
}

impl EventStore for SwitchableStore {
    fn append(&self, entries: &[StoredEntry]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append(entries)
    }
    fn append_following(
        &self,
        known: u64,
        prepare: &mut dyn FnMut(Vec<StoredEntry>) -> Vec<StoredEntry>,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append_following(known, prepare)
    }
    fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        let failing = self.failing_reads.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing_reads.store(failing - 1, Ordering::SeqCst);
            return Err(StoreError::Unavailable(
                "the connection was terminated".into(),
            ));
        }
        self.inner.read(from, limit)
    }
    fn size(&self) -> Result<u64, StoreError> {
        self.inner.size()
    }
    fn read_content(
        &self,
        commitments: &[[u8; 32]],
    ) -> Result<Vec<veche::store::StoredContent>, StoreError> {
        self.inner.read_content(commitments)
    }
    fn write_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        self.inner.write_tiles(tiles)
    }
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read_tile(level, index)
    }
    fn replace_tiles(&self, tiles: &[StoredTile]) -> Result<(), StoreError> {
        self.inner.replace_tiles(tiles)
    }
    fn backend_name(&self) -> &'static str {
        "switchable-memory"
    }
}

#[actix_web::test]
async fn readiness_fails_while_the_store_refuses_appends_and_returns_once_one_is_taken() {
    let directory = tempfile::tempdir().unwrap();
    let store = Arc::new(SwitchableStore::default());
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
    })
    .unwrap();
    let app = TestApp::from_application(application, clock.clone());
    assert_eq!(app.get("/readyz").await.status, 200);

    store.refusing.store(true, Ordering::SeqCst);
    let refused = app
        .act(&app.new_key(), Action::RegisterKey(RegisterKey {}))
        .await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    let ready = app.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.problem_type()),
        (503, "urn:veche:problem:store-unavailable"),
        "readiness must not say ready while every write fails: {:?}",
        ready.body
    );

    store.refusing.store(false, Ordering::SeqCst);
    // The hold ends on its own, so that traffic comes back and a write can tell.
    clock.advance_milliseconds(projections::limits::READINESS_WRITE_FAILURE_HOLD_MS);
    assert_eq!(app.get("/readyz").await.status, 200);
    store.refusing.store(true, Ordering::SeqCst);
    let _ = app
        .act(&app.new_key(), Action::RegisterKey(RegisterKey {}))
        .await;
    assert_eq!(app.get("/readyz").await.status, 503);
    store.refusing.store(false, Ordering::SeqCst);
    let taken = app
        .act(&app.new_key(), Action::RegisterKey(RegisterKey {}))
        .await;
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
    let store = Arc::new(SwitchableStore::default());
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
    };
    let first = veche::node::Node::start(config(store.clone())).unwrap();
    let size = first.ledger().size;
    drop(first);

    // Three reads fail, as a connection terminated under the replay would make them.
    store.failing_reads.store(3, Ordering::SeqCst);
    let again = veche::node::Node::start(config(store.clone()))
        .expect("a transient store error during start-up is waited out");
    assert_eq!(again.ledger().size, size);
    assert_eq!(store.failing_reads.load(Ordering::SeqCst), 0);
}
