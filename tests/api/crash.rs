//! Crash safety: the real server binary under signed load, killed with SIGKILL at seeded random
//! moments and restarted, loses no acknowledged command and keeps a chain that verifies.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use projections::command::{CastBallot, RegisterKey};
use projections::{Action, Timestamp};
use serde_json::Value;
use veche::clock::{Clock, SystemClock};
use veche::keys::{generate_key, SeededEntropy};

use crate::harness::{
    assert_data_directory_verifies, official_grant, poll_definition, postgres_batch,
};

const KILLS: usize = 20;
const SEED: u64 = 20_261_123;

pub(crate) struct Server {
    pub(crate) child: Child,
}

pub(crate) fn start_server(directory: &std::path::Path, port: u16, store: Option<&str>) -> Server {
    start_server_with(directory, port, store, &[])
}

/// `start_server` with more arguments for `veche serve`.
fn start_server_with(
    directory: &std::path::Path,
    port: u16,
    store: Option<&str>,
    more: &[&str],
) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_veche"));
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(directory);
    if let Some(store) = store {
        command.args(["--store", store]);
    }
    command.args(more);
    let child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server { child }
}

/// The server binary on a free loopback port, ready: the server, its port, its base URL and a
/// client.
pub(crate) async fn start_on_free_port(
    directory: &std::path::Path,
    store: Option<&str>,
) -> (Server, u16, String, reqwest::Client) {
    start_on_free_port_with(directory, store, &[]).await
}

/// `start_on_free_port` with more arguments for `veche serve`.
async fn start_on_free_port_with(
    directory: &std::path::Path,
    store: Option<&str>,
    more: &[&str],
) -> (Server, u16, String, reqwest::Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let server = start_server_with(directory, port, store, more);
    wait_ready(&http, &base).await;
    (server, port, base, http)
}

pub(crate) async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await {
            if response.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server did not become ready");
}

pub(crate) async fn post(
    http: &reqwest::Client,
    base: &str,
    key: &ed25519_dalek::SigningKey,
    action: Action,
    entropy: &SeededEntropy,
) -> Option<(u16, Value)> {
    let path = veche::client::endpoint_for(&action);
    let envelope = veche::client::signed_envelope(key, action, SystemClock.now(), entropy);
    let response = http
        .post(format!("{base}{path}"))
        .json(&envelope)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

/// Registers `key` on the server at `base`: the answer's status and body, or `None` if the
/// server did not answer (it may have just been killed).
pub(crate) async fn register(
    http: &reqwest::Client,
    base: &str,
    key: &ed25519_dalek::SigningKey,
    entropy: &SeededEntropy,
) -> Option<(u16, Value)> {
    post(
        http,
        base,
        key,
        Action::RegisterKey(RegisterKey {}),
        entropy,
    )
    .await
}

/// The JSON document the server at `base` answers at `path`.
pub(crate) async fn get_json(http: &reqwest::Client, base: &str, path: &str) -> Value {
    let response = http.get(format!("{base}{path}")).send().await.unwrap();
    response.json().await.unwrap()
}

/// A tiny seeded generator for the kill schedule, so a failing run can be repeated.
fn next_delay_ms(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    40 + (*state >> 33) % 260
}

#[actix_web::test]
async fn sigkill_at_random_moments_loses_no_acknowledged_command() {
    let directory = tempfile::tempdir().unwrap();
    crash_under_load(directory.path(), None, &[]).await;
    assert_data_directory_verifies(directory.path());
}

#[actix_web::test]
async fn sigkill_with_periodic_snapshots_restarts_from_the_latest_one_and_loses_no_command() {
    let directory = tempfile::tempdir().unwrap();
    // A snapshot every 40 entries: several are made, and some kills strike in the middle of
    // one (between its mark and its attestation, or while its file is written).
    let restarts = crash_under_load(
        directory.path(),
        None,
        &["--snapshot-interval-entries", "40"],
    )
    .await;
    let data = veche::server::DataDirectory::open_existing(directory.path()).unwrap();
    let store = data.open_store().unwrap();
    let loaded = veche::snapshot::load(
        &directory.path().join(veche::snapshot::SNAPSHOT_FILE),
        &data.server_key,
        &*store,
        "veche.localhost/log",
    )
    .unwrap()
    .expect("the periodic snapshots left one that the log proves");
    assert!(
        loaded.header.attestation_position > loaded.header.size,
        "a periodic snapshot, attested after its mark: {:?}",
        loaded.header
    );
    // How close it is to the log's end depends on the kill schedule: after a start from a
    // snapshot, none is made until that snapshot's audit ends, and kills come every 40-300 ms.
    let log_size = veche::store::EventStore::size(&*store).unwrap();
    drop(store);
    assert_data_directory_verifies(directory.path());
    let slowest = restarts.iter().max().unwrap();
    eprintln!(
        "periodic snapshots: {} restarts, slowest ready after {} ms, latest snapshot at {} of {log_size} entries",
        restarts.len(),
        slowest.as_millis(),
        loaded.header.size
    );
}

#[actix_web::test]
#[cfg_attr(no_database, ignore = "DATABASE_URL is not set")]
async fn sigkill_of_a_postgresql_node_loses_no_acknowledged_command() {
    // Compiled as ignored when DATABASE_URL was unset at build time (see `build.rs`).
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("DATABASE_URL is not set: the PostgreSQL crash test cannot run without it"),
    };
    let mut unique = [0u8; 8];
    veche::keys::Entropy::fill(&veche::keys::OsEntropy, &mut unique);
    let schema = format!("veche_crash_{}", hex::encode(unique));
    postgres_batch(&url, format!("CREATE SCHEMA {schema}"));
    let separator = if url.contains('?') { '&' } else { '?' };
    let store_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let directory = tempfile::tempdir().unwrap();
    crash_under_load(directory.path(), Some(&store_url), &[]).await;
    std::thread::spawn(move || {
        let store = veche::store::PostgresStore::open(&url, Some(&schema)).unwrap();
        let mut replayer = projections::Replayer::new();
        veche::writer::catch_up(&store, &mut replayer, |_| {})
            .expect("the chain in PostgreSQL verifies");
        drop(store);
        postgres_batch(&url, format!("DROP SCHEMA {schema} CASCADE"));
    })
    .join()
    .unwrap();
}

/// Runs signed load against the real binary (started with `more` arguments), kills it with
/// SIGKILL at seeded moments, restarts it each time, and checks every acknowledged entry is in
/// the log and the tally equals a rebuild. Returns how long each restart took to be ready.
async fn crash_under_load(
    directory: &std::path::Path,
    store: Option<&str>,
    more: &[&str],
) -> Vec<Duration> {
    let (mut server, port, base, http) = start_on_free_port_with(directory, store, more).await;
    let entropy = Arc::new(SeededEntropy::new(SEED));

    let admin = veche::keys::read_key_file(&directory.join("admin.key")).unwrap();
    let official = generate_key(&*entropy);
    let registered = register(&http, &base, &official, &entropy).await;
    assert_eq!(registered.unwrap().0, 201);
    let grant = official_grant(&official, "parks");
    assert_eq!(
        post(&http, &base, &admin, grant, &entropy).await.unwrap().0,
        201
    );
    let now = Timestamp(SystemClock.now().0);
    let (status, receipt) = post(
        &http,
        &base,
        &official,
        Action::OpenPoll(poll_definition(now, 2)),
        &entropy,
    )
    .await
    .unwrap();
    assert_eq!(status, 201);
    let poll = receipt["position"].as_u64().unwrap();

    // Acknowledged receipts: (position, entry hash). Load runs in the background throughout.
    let acknowledged: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (http, base, entropy, acknowledged, running) = (
            http.clone(),
            base.clone(),
            entropy.clone(),
            acknowledged.clone(),
            running.clone(),
        );
        workers.push(tokio::spawn(async move {
            while running.load(std::sync::atomic::Ordering::SeqCst) {
                let citizen = generate_key(&*entropy);
                let Some((201, receipt)) = register(&http, &base, &citizen, &entropy).await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let record = |receipt: &Value| {
                    (
                        receipt["position"].as_u64().unwrap(),
                        receipt["entry_hash"].as_str().unwrap().to_string(),
                    )
                };
                acknowledged.lock().unwrap().push(record(&receipt));
                let ballot = Action::CastBallot(CastBallot {
                    version: None,
                    poll,
                    choices: vec![0],
                });
                if let Some((201, receipt)) = post(&http, &base, &citizen, ballot, &entropy).await {
                    acknowledged.lock().unwrap().push(record(&receipt));
                }
            }
        }));
    }

    let mut schedule = SEED;
    let mut restarts = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(next_delay_ms(&mut schedule))).await;
        server.child.kill().unwrap(); // SIGKILL: no shutdown hook runs
        server.child.wait().unwrap();
        let started = Instant::now();
        server = start_server_with(directory, port, store, more);
        wait_ready(&http, &base).await;
        restarts.push(started.elapsed());
    }
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }

    // Every acknowledged entry is in the log, at its position, with its hash.
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "the load made progress: {}",
        acknowledged.len()
    );
    let mut stored = std::collections::HashMap::new();
    let mut ballots_in_log = 0u64;
    let mut from = 0;
    loop {
        let page = get_json(
            &http,
            &base,
            &format!("/v1/log/entries?from={from}&limit=1000"),
        )
        .await;
        for item in page["entries"].as_array().unwrap() {
            stored.insert(
                item["position"].as_u64().unwrap(),
                item["entry_hash"].as_str().unwrap().to_string(),
            );
            if item["payload"]
                .as_str()
                .unwrap()
                .contains("\"cast_ballot\"")
            {
                ballots_in_log += 1;
            }
        }
        match page["next_from"].as_u64() {
            Some(next) => from = next,
            None => break,
        }
    }
    for (position, hash) in &acknowledged {
        assert_eq!(
            stored.get(position),
            Some(hash),
            "acknowledged entry {position} survived {KILLS} kills"
        );
    }
    // The restarted server's projection equals a rebuild: its tally counts exactly the ballots
    // the log holds (acknowledged or committed just before a kill).
    let tally = get_json(&http, &base, &format!("/v1/polls/{poll}/tally")).await;
    assert_eq!(tally["turnout"], ballots_in_log);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    eprintln!(
        "crash safety ({}): {KILLS} kills survived, {} acknowledged commands checked, {} entries in the log",
        if store.is_some() { "postgres" } else { "sqlite" },
        acknowledged.len(),
        stored.len()
    );
    restarts
}
