//! Scale-out: several API nodes on one PostgreSQL log and one Redis, seen from outside.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use projections::command::{CastBallot, RegisterKey};
use projections::{Action, Replayer};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use veche::clock::ManualClock;
use veche::keys::{generate_key, SeededEntropy};
use veche::node::Node;
use veche::server::DataDirectory;
use veche::store::{EventStore, PostgresStore};

use crate::harness::{official_grant, poll_definition, postgres_batch, MINUTE_MS, TEST_START};

/// A service URL from the environment. The suite is compiled as ignored when either variable was
/// unset at build time (see `build.rs`), so reaching this without it (under `CI=true`, or a test
/// binary run by hand) is a failure, never a silent pass.
fn service_url(variable: &str) -> String {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("{variable} is not set: the scale-out suite cannot run without it"),
    }
}

/// A loopback TCP proxy that a test can cut and restore, standing between nodes and Redis.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    /// Runs on a runtime of its own: the test's thread may block on the store, which talks
    /// through this proxy.
    async fn start(target: String) -> Proxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (accept_open, accept_generation) = (open.clone(), generation.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if !accept_open.load(Ordering::SeqCst) {
                        let _ = client.shutdown().await;
                        continue;
                    }
                    let born = accept_generation.load(Ordering::SeqCst);
                    let (open, generation, target) = (
                        accept_open.clone(),
                        accept_generation.clone(),
                        target.clone(),
                    );
                    tokio::spawn(async move {
                        let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        // Without these, Nagle's algorithm and delayed acknowledgements add ~40 ms a hop.
                        let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
                        let cut = async {
                            while open.load(Ordering::SeqCst)
                                && generation.load(Ordering::SeqCst) == born
                            {
                                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            }
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                            _ = cut => {}
                        }
                    });
                }
            })
        });
        Proxy {
            port,
            open,
            generation,
        }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

struct Cluster {
    addresses: Vec<String>,
    nodes: Vec<Arc<Node>>,
    servers: Vec<actix_web::dev::ServerHandle>,
    clock: Arc<ManualClock>,
    admin: ed25519_dalek::SigningKey,
    entropy: SeededEntropy,
    http: reqwest::Client,
    database_url: String,
    schema: String,
    _directory: tempfile::TempDir,
}

impl Cluster {
    /// `nodes` nodes on the PostgreSQL and Redis the environment names.
    async fn from_environment(nodes: usize) -> Cluster {
        let (database_url, redis_url) = (service_url("DATABASE_URL"), service_url("REDIS_URL"));
        Cluster::start(nodes, database_url, &redis_url).await
    }

    async fn start(nodes: usize, database_url: String, redis_url: &str) -> Cluster {
        let directory = tempfile::tempdir().unwrap();
        let mut unique = [0u8; 8];
        veche::keys::Entropy::fill(&veche::keys::OsEntropy, &mut unique);
        let schema = format!("veche_cluster_{}", hex::encode(unique));
        let data = DataDirectory::open_or_init(
            directory.path(),
            &SeededEntropy::new(u64::from_be_bytes(unique)),
        )
        .unwrap();
        let clock = Arc::new(ManualClock::starting_at(TEST_START));
        let (mut addresses, mut handles, mut servers) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..nodes {
            let (url, name) = (database_url.clone(), schema.clone());
            // The PostgreSQL client blocks; open it off the async runtime's threads.
            let store = std::thread::spawn(move || PostgresStore::open(&url, Some(&name)))
                .join()
                .unwrap()
                .unwrap();
            let node = Arc::new(
                data.start_node(Arc::new(store), clock.clone(), "cluster.veche/log")
                    .unwrap(),
            );
            // The cluster registers its whole cast from one address, hundreds of keys (and Redis
            // keeps the hour's count across runs): the per-address registration limit is off.
            node.rate_limits
                .registrations_per_address_per_hour
                .store(0, std::sync::atomic::Ordering::Relaxed);
            veche::server::attach_redis(&node, redis_url).unwrap();
            let running =
                veche::server::run(node.clone(), TcpListener::bind("127.0.0.1:0").unwrap())
                    .unwrap();
            addresses.push(format!("http://{}", running.address));
            servers.push(running.server.handle());
            tokio::spawn(running.server);
            handles.push(node);
        }
        Cluster {
            addresses,
            nodes: handles,
            servers,
            clock,
            admin: data.admin_key,
            // Redis remembers nonces across runs for their freshness window: a fixed seed would
            // replay the previous run's commands.
            entropy: SeededEntropy::new(u64::from_be_bytes(unique)),
            http: reqwest::Client::new(),
            database_url,
            schema,
            _directory: directory,
        }
    }

    async fn post(
        &self,
        node: usize,
        action: Action,
        key: &ed25519_dalek::SigningKey,
    ) -> (u16, Value) {
        let path = veche::client::endpoint_for(&action);
        let envelope = veche::client::signed_envelope(key, action, self.clock_now(), &self.entropy);
        let envelope = crate::harness::CONTENT.attach(envelope);
        self.post_envelope(node, &path, &envelope).await
    }

    /// Sends `envelope` as it is to `path` on `node`: the status and the JSON answer.
    async fn post_envelope(
        &self,
        node: usize,
        path: &str,
        envelope: &veche::envelope::Envelope,
    ) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.addresses[node]))
            .json(envelope)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A new key registered through node 0 and made an official of `department` by the admin
    /// through `grant_node`, which must already see the registration.
    async fn official(&self, grant_node: usize, department: &str) -> ed25519_dalek::SigningKey {
        let official = generate_key(&self.entropy);
        let (status, _) = self
            .post(0, Action::RegisterKey(RegisterKey {}), &official)
            .await;
        assert_eq!(status, 201);
        let grant = official_grant(&official, department);
        let (status, body) = self.post(grant_node, grant, &self.admin).await;
        assert_eq!(
            status, 201,
            "node {grant_node} sees node 0's registration: {body}"
        );
        official
    }

    /// Opens an `options`-option poll through `node`; its id.
    async fn open_poll(
        &self,
        node: usize,
        official: &ed25519_dalek::SigningKey,
        options: usize,
    ) -> u64 {
        let definition = poll_definition(self.clock_now(), options);
        let (status, receipt) = self
            .post(node, Action::OpenPoll(definition), official)
            .await;
        assert_eq!(status, 201, "{receipt}");
        receipt["position"].as_u64().unwrap()
    }

    fn clock_now(&self) -> projections::Timestamp {
        use veche::clock::Clock;
        self.clock.now()
    }

    async fn get(&self, node: usize, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.addresses[node]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stop(self) {
        for server in &self.servers {
            server.stop(true).await;
        }
        let drop_schema = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        postgres_batch(&self.database_url, drop_schema);
    }

    /// Replays the shared log from scratch with every check.
    fn verify_chain(&self) -> u64 {
        let (url, schema) = (self.database_url.clone(), self.schema.clone());
        std::thread::spawn(move || {
            let store = PostgresStore::open(&url, Some(&schema)).unwrap();
            let mut replayer = Replayer::new();
            veche::writer::catch_up(&store, &mut replayer, |_| {}).unwrap();
            assert_eq!(replayer.ledger.size, store.size().unwrap());
            replayer.ledger.size
        })
        .join()
        .unwrap()
    }
}

/// Waits until every node publishes the same tally, and returns it.
async fn converged_tally(cluster: &Cluster, poll: u64, within_ms: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(within_ms);
    loop {
        let mut tallies = Vec::new();
        for node in 0..cluster.addresses.len() {
            let mut tally = cluster.get(node, &format!("/v1/polls/{poll}/tally")).await;
            tally.as_object_mut().unwrap().remove("log_size");
            tallies.push(tally);
        }
        if tallies.windows(2).all(|pair| pair[0] == pair[1]) {
            return tallies.remove(0);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tallies did not converge: {tallies:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

const CITIZENS: usize = 150;

/// The personal texts the two-node erasure test files, one per way content goes.
const ERASED: &str = "Anna Sidorova, flat 3, +7 900 765 43 21: the courtyard lamp is out.";
const REDACTED: &str = "Lamps for the porch of Boris Kuznetsov, 5 Arbat St.";
const SPAM: &str = "Cheap watches from Sergei Orlov, call +7 900 555 00 11.";

/// Rows of the shared `table` whose `column` (a bytes expression) holds `text`.
fn shared_rows_holding(cluster: &Cluster, table: &str, column: &str, text: &str) -> i64 {
    let (url, schema) = (cluster.database_url.clone(), cluster.schema.clone());
    let query = format!("SELECT count(*) FROM {schema}.{table} WHERE position($1 IN {column}) > 0");
    let text = text.to_string();
    std::thread::spawn(move || {
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        client
            .query_one(&query, &[&text.as_bytes()])
            .unwrap()
            .get(0)
    })
    .join()
    .unwrap()
}

/// Reads `path` on `node` until the value at `pointer` is `expected`, for at most a second: a
/// follower applies the shared log a few milliseconds after the node that appended.
async fn served_eventually(
    cluster: &Cluster,
    node: usize,
    path: &str,
    pointer: &str,
    expected: &Value,
) {
    let mut served = Value::Null;
    for _ in 0..50 {
        served = cluster.get(node, path).await;
        if served.pointer(pointer) == Some(expected) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("node {node} serves {served} at {path}, not {expected} at {pointer}");
}

/// Posts `action` by `key` through `node`, which must accept it: its position.
async fn accepted(
    cluster: &Cluster,
    node: usize,
    action: Action,
    key: &ed25519_dalek::SigningKey,
) -> u64 {
    let (status, receipt) = cluster.post(node, action, key).await;
    assert_eq!(status, 201, "{receipt}");
    receipt["position"].as_u64().unwrap()
}

/// The street-lighting category, a citizen and a moderator, through both nodes.
async fn content_cast(cluster: &Cluster) -> (ed25519_dalek::SigningKey, ed25519_dalek::SigningKey) {
    let category = Action::DefineCategory(crate::harness::lighting());
    accepted(cluster, 0, category, &cluster.admin).await;
    let citizen = generate_key(&cluster.entropy);
    accepted(cluster, 0, Action::RegisterKey(RegisterKey {}), &citizen).await;
    let moderator = generate_key(&cluster.entropy);
    accepted(cluster, 1, Action::RegisterKey(RegisterKey {}), &moderator).await;
    let grant = Action::GrantRole(projections::command::RoleChange {
        subject: crate::harness::public(&moderator),
        role: projections::command::Role::Moderator,
        department: None,
    });
    accepted(cluster, 0, grant, &cluster.admin).await;
    (citizen, moderator)
}

/// Files the complaint to erase through node 1, the proposal to redact through node 0 and the
/// spam through node 1: their positions, in that order.
async fn file_personal(cluster: &Cluster, citizen: &ed25519_dalek::SigningKey) -> [u64; 3] {
    let complaint = |text: &str, district: &str| {
        Action::FileComplaint(projections::command::ComplaintFiling {
            description: crate::harness::commit(text),
            ..crate::harness::streetlight_filing(district)
        })
    };
    let erased = accepted(cluster, 1, complaint(ERASED, "Tverskoy"), citizen).await;
    let proposal = Action::SubmitProposal(projections::command::ProposalSubmission {
        title: crate::harness::commit("Porch lamps"),
        body: crate::harness::commit(REDACTED),
        category: "street-lighting".into(),
        district: None,
    });
    let redacted = accepted(cluster, 0, proposal, citizen).await;
    let spam = accepted(cluster, 1, complaint(SPAM, "Arbat"), citizen).await;
    [erased, redacted, spam]
}

/// The complaint statistics as each node serves them, once both have applied the same log.
async fn statistics_of_both(cluster: &Cluster) -> [String; 2] {
    let size = cluster.get(0, "/v1/log").await["size"].clone();
    served_eventually(cluster, 1, "/v1/log", "/size", &size).await;
    let mut served = [String::new(), String::new()];
    for (node, served) in served.iter_mut().enumerate() {
        let url = format!("{}/v1/statistics/complaints", cluster.addresses[node]);
        *served = cluster
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    served
}

#[actix_web::test]
#[cfg_attr(no_database, ignore = "DATABASE_URL is not set")]
#[cfg_attr(all(no_redis, not(no_database)), ignore = "REDIS_URL is not set")]
async fn on_two_postgres_nodes_erased_redacted_and_spam_content_is_gone_from_both_and_the_numbers_stand(
) {
    let cluster = Cluster::from_environment(2).await;
    let (citizen, moderator) = content_cast(&cluster).await;
    let [erased, redacted, spam] = file_personal(&cluster, &citizen).await;
    let complaint_path = format!("/v1/complaints/{erased}");
    for node in 0..2 {
        served_eventually(
            &cluster,
            node,
            &complaint_path,
            "/description",
            &ERASED.into(),
        )
        .await;
    }
    for text in [ERASED, REDACTED, SPAM] {
        let held = shared_rows_holding(&cluster, "content", "convert_to(text, 'UTF8')", text);
        assert_eq!(held, 1, "the shared content table holds {text} once");
        assert_eq!(shared_rows_holding(&cluster, "events", "entry", text), 0);
    }
    let rejection = Action::TriageComplaint(projections::command::Triage {
        complaint: spam,
        decision: projections::command::TriageDecision::Reject {
            rejection: projections::command::RejectionReason::Spam {
                redact_content: true,
            },
        },
    });
    let rejection = accepted(&cluster, 0, rejection, &moderator).await;
    let statistics = statistics_of_both(&cluster).await;
    assert_eq!(statistics[0], statistics[1], "both nodes count alike");

    // The author erases through node 0, the moderator redacts through node 1: each node serves
    // the other's placeholder within the stated bound.
    let started = std::time::Instant::now();
    let erase = Action::EraseContent(projections::command::ContentReference { entry: erased });
    let erasure = accepted(&cluster, 0, erase, &citizen).await;
    let placeholder = format!("[erased by entry {erasure}]").into();
    served_eventually(&cluster, 1, &complaint_path, "/description", &placeholder).await;
    tracing::info!(
        erasure_to_both_nodes_ms = started.elapsed().as_millis() as u64,
        "content erased on the shared store"
    );
    let redact = Action::RedactContent(projections::command::Redaction {
        entry: redacted,
        reason: projections::command::RedactionReason::ThirdPartyPersonalData,
    });
    let redaction = accepted(&cluster, 1, redact, &moderator).await;
    placeholders_on_both(
        &cluster,
        [erased, redacted, spam],
        [erasure, redaction, rejection],
    )
    .await;
    assert_eq!(
        statistics_of_both(&cluster).await,
        statistics,
        "statistics unchanged"
    );
    gone_from_every_store(&cluster).await;
    let (passed, stderr) = crate::content_verify::verify_address(&cluster.addresses[1]).await;
    assert!(passed, "veche verify --server fails on node 1: {stderr}");
    cluster.verify_chain();
    cluster.stop().await;
}

/// Reads, Open311 and the content listing of both nodes show the placeholder for each of
/// `entries`, naming the entry at the same index of `erasing`.
async fn placeholders_on_both(cluster: &Cluster, entries: [u64; 3], erasing: [u64; 3]) {
    let [erased, redacted, spam] = entries;
    for node in 0..2 {
        let placeholder =
            |index: usize| Value::from(format!("[erased by entry {}]", erasing[index]));
        let complaint = format!("/v1/complaints/{erased}");
        served_eventually(
            cluster,
            node,
            &complaint,
            "/location/address",
            &placeholder(0),
        )
        .await;
        let proposal = format!("/v1/proposals/{redacted}");
        served_eventually(cluster, node, &proposal, "/body", &placeholder(1)).await;
        let open311 = format!("/open311/v2/requests/{spam}.json");
        served_eventually(cluster, node, &open311, "/0/description", &placeholder(2)).await;
        served_eventually(cluster, node, &open311, "/0/status", &"closed".into()).await;
        for (index, entry) in entries.into_iter().enumerate() {
            let held = cluster
                .get(node, &format!("/v1/content?from={entry}&limit=1"))
                .await;
            let pieces = held["entries"][0]["pieces"].as_array().unwrap().clone();
            let erased =
                |piece: &Value| piece["erased_by"] == erasing[index] && piece.get("text").is_none();
            assert!(
                pieces.iter().all(erased),
                "node {node} still lists {entry}: {held}"
            );
        }
    }
}

/// No shared table and no file of the nodes' data directory holds any of the texts; each node
/// writes its snapshot first, as it does when stopped.
async fn gone_from_every_store(cluster: &Cluster) {
    for node in &cluster.nodes {
        node.write_snapshot().await.unwrap();
    }
    for text in [ERASED, REDACTED, SPAM] {
        let held = shared_rows_holding(cluster, "content", "convert_to(text, 'UTF8')", text);
        assert_eq!(held, 0, "the shared content table still holds {text}");
        assert_eq!(shared_rows_holding(cluster, "events", "entry", text), 0);
        let holding = crate::harness::files_holding(cluster._directory.path(), text.as_bytes());
        assert!(holding.is_empty(), "{text} is still in {holding:?}");
    }
}

#[actix_web::test]
#[cfg_attr(no_database, ignore = "DATABASE_URL is not set")]
#[cfg_attr(all(no_redis, not(no_database)), ignore = "REDIS_URL is not set")]
async fn three_nodes_share_one_chain_count_each_citizen_once_and_converge_within_a_second() {
    let cluster = Arc::new(Cluster::from_environment(3).await);
    let official = cluster.official(1, "transport").await;
    let poll = cluster.open_poll(2, &official, 3).await;

    let citizens: Vec<_> = (0..CITIZENS)
        .map(|_| generate_key(&cluster.entropy))
        .collect();
    let registered: Vec<(u16, Value)> =
        stream::iter(citizens.iter().enumerate().map(|(index, key)| {
            let cluster = cluster.clone();
            async move {
                cluster
                    .post(index % 3, Action::RegisterKey(RegisterKey {}), key)
                    .await
            }
        }))
        .buffer_unordered(48)
        .collect()
        .await;
    assert!(
        registered.iter().all(|(status, _)| *status == 201),
        "{registered:?}"
    );

    // Every citizen votes through one node; every fifth also tries another node at the same time.
    let mut attempts = Vec::new();
    for (index, key) in citizens.iter().enumerate() {
        let choice = (index % 3) as u32;
        attempts.push((index % 3, key.clone(), choice, index));
        if index % 5 == 0 {
            attempts.push(((index + 1) % 3, key.clone(), (choice + 1) % 3, index));
        }
    }
    let outcomes: Vec<(usize, u16, u32)> =
        stream::iter(attempts.into_iter().map(|(node, key, choice, citizen)| {
            let cluster = cluster.clone();
            async move {
                let ballot = Action::CastBallot(CastBallot {
                    version: None,
                    poll,
                    choices: vec![choice],
                });
                (citizen, cluster.post(node, ballot, &key).await.0, choice)
            }
        }))
        .buffer_unordered(64)
        .collect()
        .await;
    let mut expected = [0u64; 3];
    let mut accepted_per_citizen = vec![0; CITIZENS];
    for (citizen, status, choice) in &outcomes {
        match status {
            201 => {
                accepted_per_citizen[*citizen] += 1;
                expected[*choice as usize] += 1;
            }
            409 => {}
            other => panic!("a ballot failed with {other}"),
        }
    }
    assert!(
        accepted_per_citizen.iter().all(|&count| count == 1),
        "exactly one counted ballot per citizen"
    );

    let tally = converged_tally(&cluster, poll, 1_000).await;
    assert_eq!(tally["counts"], serde_json::json!(expected));
    assert_eq!(tally["turnout"], CITIZENS as u64);

    // A fourth connection watches the tally live while the poll closes.
    let stream = cluster
        .http
        .get(format!(
            "{}/v1/polls/{poll}/tally/stream",
            cluster.addresses[2]
        ))
        .send()
        .await
        .unwrap();
    cluster.clock.advance_milliseconds(61 * MINUTE_MS);
    let mut body = stream.bytes_stream();
    let mut seen = String::new();
    while let Ok(Some(Ok(chunk))) =
        tokio::time::timeout(std::time::Duration::from_secs(10), body.next()).await
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains("\"is_final\":true") {
            break;
        }
    }
    assert!(
        seen.contains("\"is_final\":true"),
        "the subscriber saw the final tally: {seen}"
    );
    let final_tally = converged_tally(&cluster, poll, 1_000).await;
    assert_eq!(final_tally["counts"], serde_json::json!(expected));

    let size = cluster.verify_chain();
    for node in &cluster.nodes {
        assert_eq!(
            node.ledger().size,
            size,
            "every node folded the whole chain"
        );
    }
    Arc::try_unwrap(cluster).ok().unwrap().stop().await;
}

#[actix_web::test]
#[cfg_attr(no_database, ignore = "DATABASE_URL is not set")]
#[cfg_attr(all(no_redis, not(no_database)), ignore = "REDIS_URL is not set")]
async fn losing_redis_mid_load_fails_no_command_and_tallies_converge_after_it_returns() {
    let (database_url, redis_url) = (service_url("DATABASE_URL"), service_url("REDIS_URL"));
    let target = redis_url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string();
    let proxy = Proxy::start(target).await;
    let cluster = Arc::new(
        Cluster::start(
            2,
            database_url,
            &format!("redis://127.0.0.1:{}", proxy.port),
        )
        .await,
    );
    let official = cluster.official(0, "roads").await;
    let poll = cluster.open_poll(1, &official, 2).await;
    let citizens: Vec<_> = (0..90).map(|_| generate_key(&cluster.entropy)).collect();
    for (index, key) in citizens.iter().enumerate() {
        assert_eq!(
            cluster
                .post(index % 2, Action::RegisterKey(RegisterKey {}), key)
                .await
                .0,
            201
        );
    }
    let mut acknowledged = 0;
    for (index, key) in citizens.iter().enumerate() {
        if index == 30 {
            proxy.cut();
        }
        if index == 60 {
            proxy.restore();
        }
        let ballot = Action::CastBallot(CastBallot {
            version: None,
            poll,
            choices: vec![(index % 2) as u32],
        });
        let (status, body) = cluster.post(index % 2, ballot, key).await;
        assert_eq!(
            status,
            201,
            "ballot {index} with redis {}: {body}",
            if (30..60).contains(&index) {
                "down"
            } else {
                "up"
            }
        );
        acknowledged += 1;
    }
    let tally = converged_tally(&cluster, poll, 2_000).await;
    assert_eq!(tally["turnout"], acknowledged);
    assert_eq!(cluster.verify_chain(), cluster.nodes[0].ledger().size);
    Arc::try_unwrap(cluster).ok().unwrap().stop().await;
}

/// The same database reached through a proxy on loopback, for cutting the connection.
fn proxied_database(url: &str, proxy_port: u16) -> (String, String) {
    let config: postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        postgres::config::Host::Tcp(host) => host.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let database = config.get_dbname().unwrap_or("test");
    (
        format!("{host}:{port}"),
        format!("postgres://{user}@127.0.0.1:{proxy_port}/{database}"),
    )
}

#[actix_web::test]
#[cfg_attr(no_database, ignore = "DATABASE_URL is not set")]
#[cfg_attr(all(no_redis, not(no_database)), ignore = "REDIS_URL is not set")]
async fn a_cut_database_connection_gives_503s_without_hanging_and_the_node_recovers_alone() {
    let (database_url, redis_url) = (service_url("DATABASE_URL"), service_url("REDIS_URL"));
    let (target, _) = proxied_database(&database_url, 0);
    let proxy = Proxy::start(target).await;
    let (_, through_proxy) = proxied_database(&database_url, proxy.port);
    let cluster = Arc::new(Cluster::start(1, through_proxy, &redis_url).await);
    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    for index in 0..60 {
        if index == 20 {
            proxy.cut();
        }
        if index == 40 {
            proxy.restore();
        }
        let citizen = generate_key(&cluster.entropy);
        let started = std::time::Instant::now();
        let (status, body) = cluster
            .post(0, Action::RegisterKey(RegisterKey {}), &citizen)
            .await;
        let waited = started.elapsed();
        assert!(
            waited < std::time::Duration::from_secs(12),
            "request {index} hung for {waited:?}"
        );
        match status {
            201 => acknowledged.push((
                body["position"].as_u64().unwrap(),
                body["entry_hash"].as_str().unwrap().to_string(),
            )),
            503 => {
                assert_eq!(
                    body["type"], "urn:veche:problem:store-unavailable",
                    "{body}"
                );
                assert!(
                    (20..45).contains(&index),
                    "503 only while the database is away (request {index})"
                );
                unavailable += 1;
            }
            other => panic!("request {index}: {other} {body}"),
        }
    }
    assert!(unavailable > 0, "the cut was felt");
    assert!(
        acknowledged.len() >= 35,
        "the node recovered by itself: {} acknowledged",
        acknowledged.len()
    );
    let positions: BTreeSet<u64> = acknowledged.iter().map(|(position, _)| *position).collect();
    assert_eq!(
        positions.len(),
        acknowledged.len(),
        "no position acknowledged twice"
    );
    let size = cluster.verify_chain();
    let page = cluster
        .get(0, &format!("/v1/log/entries?from=0&limit={size}"))
        .await;
    for (position, hash) in &acknowledged {
        assert_eq!(
            page["entries"][*position as usize]["entry_hash"],
            hash.as_str(),
            "acknowledged entry {position} is in the log"
        );
    }
    eprintln!(
        "database cut: {} acknowledged, {unavailable} answered 503, none hung",
        acknowledged.len()
    );
    Arc::try_unwrap(cluster).ok().unwrap().stop().await;
}

#[actix_web::test]
#[cfg_attr(no_database, ignore = "DATABASE_URL is not set")]
#[cfg_attr(all(no_redis, not(no_database)), ignore = "REDIS_URL is not set")]
async fn an_envelope_taken_by_one_node_and_sent_again_to_another_gets_the_original_receipt() {
    let cluster = Cluster::from_environment(2).await;
    // A client whose answer from node 0 was lost sends the same envelope to node 1 at once,
    // before node 1 has necessarily folded node 0's entry in.
    for _ in 0..20 {
        let key = generate_key(&cluster.entropy);
        let action = Action::RegisterKey(RegisterKey {});
        let envelope =
            veche::client::signed_envelope(&key, action, cluster.clock_now(), &cluster.entropy);
        let mut receipts = Vec::new();
        for node in [0, 1] {
            receipts.push(cluster.post_envelope(node, "/v1/keys", &envelope).await);
        }
        assert_eq!(receipts[0].0, 201, "{:?}", receipts[0].1);
        assert_eq!(receipts[1].0, 200, "{:?}", receipts[1].1);
        assert_eq!(receipts[1].1["position"], receipts[0].1["position"]);
        assert_eq!(receipts[1].1["entry_hash"], receipts[0].1["entry_hash"]);
    }
    assert_eq!(cluster.verify_chain(), 21, "genesis and one entry per key");
    cluster.stop().await;
}
