//! Spawning a real veche server on port 0 with a manual clock, and talking to it as citizens do.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use projections::command::{
    Audience, CastBallot, CategoryDefinition, ChoiceKind, ComplaintFiling, Degrees, Location,
    PollDefinition, RegisterKey, Role, RoleChange, TallyVisibility,
};
use projections::protocol::public_key_of;
use projections::{Action, PublicKey, Timestamp};
use serde_json::Value;
use veche::clock::{Clock, ManualClock};
use veche::envelope::Envelope;
use veche::keys::{generate_key, SeededEntropy};
use veche::node::Node;
use veche::server::{Application, Settings};

/// The content every test committed to: `TestApp::sign` attaches what a command names.
pub static CONTENT: veche::client::ContentBook = veche::client::ContentBook::new();

/// A commitment to `text` under a fresh salt, its text kept to send beside the command.
pub fn commit(text: &str) -> projections::content::Commitment {
    CONTENT.commit(text, &veche::keys::OsEntropy)
}

/// Opens an envelope as the write path does, with the content the book holds for it matched to
/// its commitments: what `Node::append` takes.
pub fn opened_with_content(
    envelope: Envelope,
) -> (
    projections::SignedCommand,
    Vec<projections::content::CheckedPiece>,
) {
    let mut envelope = CONTENT.attach(envelope);
    let pieces = std::mem::take(&mut envelope.content);
    let signed = envelope.open().expect("our own signatures verify");
    let content = projections::content::check(&signed.command.action, pieces)
        .expect("the book holds the content our commands commit to");
    (signed, content)
}

/// 2026-11-23T10:00:00Z: where every test's clock starts.
pub const TEST_START: Timestamp = Timestamp(1_795_428_000_000);
pub const MINUTE_MS: i64 = 60_000;

pub struct TestApp {
    /// The temporary data directory a `fresh` app owns, removed when the app is dropped.
    owned_directory: Option<tempfile::TempDir>,
    pub address: String,
    pub node: Arc<Node>,
    pub clock: Arc<ManualClock>,
    pub entropy: Arc<SeededEntropy>,
    pub admin: SigningKey,
    pub http: reqwest::Client,
    server: actix_web::dev::ServerHandle,
}

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Answer {
    pub fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }
}

impl TestApp {
    /// A server on a temporary data directory of its own, for tests that never reopen it.
    pub async fn fresh() -> TestApp {
        let directory = tempfile::tempdir().unwrap();
        let mut app = TestApp::spawn(directory.path()).await;
        app.owned_directory = Some(directory);
        app
    }

    /// A `fresh` server and a newly registered official of the transport department on it.
    pub async fn with_official() -> (TestApp, SigningKey) {
        let app = TestApp::fresh().await;
        let official = app.official().await;
        (app, official)
    }

    /// A server on a fresh data directory.
    pub async fn spawn(directory: &Path) -> TestApp {
        let clock = Arc::new(ManualClock::starting_at(TEST_START));
        TestApp::spawn_with_clock(directory, clock).await
    }

    /// A server on `directory` (created or reopened), reading time from `clock`.
    pub async fn spawn_with_clock(directory: &Path, clock: Arc<ManualClock>) -> TestApp {
        TestApp::spawn_on_store(directory, clock, None).await
    }

    /// A server on `directory`'s keys with its log in `store` (the directory's SQLite file when
    /// `None`), reading time from `clock`.
    pub async fn spawn_on_store(
        directory: &Path,
        clock: Arc<ManualClock>,
        store: Option<Arc<dyn veche::store::EventStore>>,
    ) -> TestApp {
        let application = Application::build(Settings {
            data_directory: directory,
            entropy: &SeededEntropy::new(99),
            store,
            clock: clock.clone(),
            log_origin: "test.veche/log",
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
            redis_url: None,
            commands_per_address_per_minute:
                projections::limits::COMMANDS_PER_ADDRESS_PER_MINUTE_MAX,
            // Off: every test registers its cast from one address, some of them hundreds of keys.
            // tests/api/key_lifecycle.rs turns it on before its first registration.
            registrations_per_address_per_hour: 0,
            // The default, as `veche serve` has it: no test here reaches it unless it asks.
            snapshot_interval_entries: projections::limits::SNAPSHOT_INTERVAL_ENTRIES_DEFAULT,
        })
        .unwrap();
        TestApp::from_application(application, clock)
    }

    /// Serves a built application (the tests that bring their own store build it themselves).
    pub fn from_application(application: Application, clock: Arc<ManualClock>) -> TestApp {
        let Application { data, running } = application;
        let node = running.node.clone();
        let server = running.server.handle();
        tokio::spawn(running.server);
        TestApp {
            owned_directory: None,
            address: format!("http://{}", running.address),
            node,
            clock,
            entropy: Arc::new(SeededEntropy::new(running.address.port() as u64)),
            admin: data.admin_key,
            http: reqwest::Client::new(),
            server,
        }
    }

    pub async fn stop(self) {
        self.server.stop(true).await;
    }

    pub fn new_key(&self) -> SigningKey {
        generate_key(&*self.entropy)
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn sign(&self, key: &SigningKey, action: Action) -> Envelope {
        CONTENT.attach(veche::client::signed_envelope(
            key,
            action,
            self.now(),
            &*self.entropy,
        ))
    }

    pub async fn post(&self, path: &str, envelope: &Envelope) -> Answer {
        let response = self
            .http
            .post(format!("{}{path}", self.address))
            .json(envelope)
            .send()
            .await
            .unwrap();
        Self::answer(response).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let response = self
            .http
            .post(format!("{}{path}", self.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        Self::answer(response).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        Self::answer(self.get_response(path).await).await
    }

    /// The raw response to a GET, for reading headers, event streams and bodies byte for byte.
    pub async fn get_response(&self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.address);
        self.http.get(url).send().await.unwrap()
    }

    /// The body of a GET exactly as served, whatever its status.
    pub async fn get_text(&self, path: &str) -> String {
        self.get_response(path).await.text().await.unwrap()
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            content_type,
            body,
        }
    }

    /// Sends `action` signed by `key` to its resource endpoint.
    pub async fn act(&self, key: &SigningKey, action: Action) -> Answer {
        let path = veche::client::endpoint_for(&action);
        self.post(&path, &self.sign(key, action)).await
    }

    pub async fn log_size(&self) -> u64 {
        self.get("/v1/log").await.body["size"].as_u64().unwrap()
    }

    /// A newly registered citizen.
    pub async fn citizen(&self) -> SigningKey {
        let key = self.new_key();
        let answer = self.act(&key, Action::RegisterKey(RegisterKey {})).await;
        assert_eq!(
            answer.status, 201,
            "registering a citizen: {:?}",
            answer.body
        );
        key
    }

    /// A newly registered key holding the official role.
    pub async fn official(&self) -> SigningKey {
        let key = self.citizen().await;
        let answer = self
            .act(&self.admin, official_grant(&key, "transport"))
            .await;
        assert_eq!(
            answer.status, 201,
            "granting the official role: {:?}",
            answer.body
        );
        key
    }

    /// Grants `role` (with `department` for officials) to a registered key, as the admin.
    pub async fn grant(&self, key: &SigningKey, role: Role, department: Option<&str>) {
        let change = RoleChange {
            subject: public(key),
            role,
            department: department.map(str::to_string),
        };
        let answer = self.act(&self.admin, Action::GrantRole(change)).await;
        assert_eq!(answer.status, 201, "granting {role:?}: {:?}", answer.body);
    }

    /// Sends `action`, insists it is accepted, and returns the new entry's log position.
    pub async fn act_ok(&self, key: &SigningKey, action: Action) -> u64 {
        let name = action.name();
        let answer = self.act(key, action).await;
        assert_eq!(answer.status, 201, "{name} was refused: {:?}", answer.body);
        answer.body["position"].as_u64().unwrap()
    }

    /// Opens a poll and returns its id.
    pub async fn open_poll(&self, official: &SigningKey, definition: PollDefinition) -> u64 {
        let answer = self.act(official, Action::OpenPoll(definition)).await;
        assert_eq!(answer.status, 201, "opening a poll: {:?}", answer.body);
        answer.body["position"].as_u64().unwrap()
    }

    /// Opens the `poll_definition` poll with `options` options, from now for an hour; its id.
    pub async fn open_standard_poll(&self, official: &SigningKey, options: usize) -> u64 {
        self.open_poll(official, poll_definition(self.now(), options))
            .await
    }

    /// Opens a three-option poll and has `voters` new citizens vote in it (voter i for option
    /// i mod 3); returns the poll id.
    pub async fn poll_with_ballots(&self, voters: usize) -> u64 {
        let official = self.official().await;
        let poll = self.open_standard_poll(&official, 3).await;
        for index in 0..voters {
            let voter = self.citizen().await;
            let answer = self.vote(&voter, poll, vec![(index % 3) as u32]).await;
            assert_eq!(answer.status, 201, "ballot {index}: {:?}", answer.body);
        }
        poll
    }

    pub async fn vote(&self, voter: &SigningKey, poll: u64, choices: Vec<u32>) -> Answer {
        self.act(
            voter,
            Action::CastBallot(CastBallot {
                poll,
                choices,
                version: None,
            }),
        )
        .await
    }
}

pub fn public(key: &SigningKey) -> PublicKey {
    public_key_of(key)
}

/// The admin's grant of the official role in `department` to `key`.
/// The tests' registrar secret: never in any log, as a real one's would not be.
pub const REGISTRAR_SECRET: &[u8] = b"the tests' registrar secret";

/// The resident tag a registrar gives the holder of `key`, naming each test resident by their
/// first key.
pub fn resident_tag_of(key: &SigningKey) -> String {
    veche::registrar::resident_tag(REGISTRAR_SECRET, &public(key).to_hex())
}

pub fn official_grant(key: &SigningKey, department: &str) -> Action {
    Action::GrantRole(RoleChange {
        subject: public(key),
        role: Role::Official,
        department: Some(department.into()),
    })
}

/// The roads department's street-lighting category, which several suites define.
pub fn lighting() -> CategoryDefinition {
    CategoryDefinition {
        id: "street-lighting".into(),
        name: "Street lighting".into(),
        department: "roads".into(),
        sla_working_days: 8,
        confirmation_window_days: 7,
        support_threshold: 3,
        proposal_lifetime_days: 30,
        supports_from_residents_only: false,
    }
}

/// A complaint in the street-lighting category about a dark lamp in `district`, without photos.
pub fn streetlight_filing(district: &str) -> ComplaintFiling {
    ComplaintFiling {
        category: "street-lighting".into(),
        description: commit("The streetlight outside number 12 has been dark for a week."),
        location: Location {
            latitude: Degrees(55.756),
            longitude: Degrees(37.617),
            address: commit("12 Tverskaya St"),
            district: district.into(),
        },
        attachments: vec![],
        through_gateway: false,
    }
}

/// Runs `sql` against the PostgreSQL at `url` on a thread of its own: the synchronous client must
/// not run inside the async runtime.
pub fn postgres_batch(url: &str, sql: String) {
    let url = url.to_string();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.batch_execute(&sql).unwrap();
    })
    .join()
    .unwrap();
}

/// `veche verify --data-dir directory`, run as the journalist would run it.
pub fn verify_data_directory(directory: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_veche"))
        .args(["verify", "--data-dir"])
        .arg(directory)
        .output()
        .unwrap()
}

/// Insists that `veche verify` accepts the data directory, showing its complaint otherwise.
pub fn assert_data_directory_verifies(directory: &Path) -> std::process::Output {
    let verify = verify_data_directory(directory);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    verify
}

/// A single-choice public poll open from now for an hour.
pub fn poll_definition(now: Timestamp, options: usize) -> PollDefinition {
    PollDefinition {
        title: "Where should the new tram line go?".into(),
        description: "A consultation of the transport department.".into(),
        options: (0..options).map(|index| format!("Route {index}")).collect(),
        choice_kind: ChoiceKind::SingleChoice,
        max_choices: 1,
        audience: Audience::Everyone,
        opens_at: now,
        closes_at: now.plus_milliseconds(60 * MINUTE_MS),
        vote_changes_allowed: false,
        tally_visibility: TallyVisibility::Public,
        anonymous: None,
    }
}

/// Awaits `send` (a request to `app`) and says why its answer is not the documented refusal —
/// wrong status, wrong problem type, not a problem document, or a log that grew — or `None` when
/// it is. The log is measured before `send` runs: a future does nothing until awaited.
pub async fn refusal_mismatch(
    app: &TestApp,
    name: &str,
    status: u16,
    code: &str,
    send: impl std::future::Future<Output = Answer>,
) -> Option<String> {
    let size_before = app.log_size().await;
    let answer = send.await;
    let size_after = app.log_size().await;
    let expected_type = format!("urn:veche:problem:{code}");
    let holds = answer.status == status
        && answer.problem_type() == expected_type
        && answer.content_type == "application/problem+json"
        && size_after == size_before;
    (!holds).then(|| {
        format!(
            "{name}: expected {status} {expected_type}, got {} {} ({}), log {size_before} -> {size_after}",
            answer.status, answer.body, answer.content_type
        )
    })
}

/// Every file under `directory` (the database, its write-ahead log, snapshots, keys) whose bytes
/// hold `needle`.
pub fn files_holding(directory: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut holding = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for file in std::fs::read_dir(&folder).unwrap() {
            let path = file.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                // SQLite removes its `-shm` and `-wal` files when the last connection closes,
                // which may fall between listing and reading: a removed file holds nothing.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => panic!("{}: {error}", path.display()),
            };
            if bytes.windows(needle.len()).any(|window| window == needle) {
                holding.push(path);
            }
        }
    }
    holding
}
