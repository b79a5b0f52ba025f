//! The `veche` command line by role, run as its users run it: the built binary against a real
//! server, every step checked through the API rather than through the CLI's own words.

use std::path::{Path, PathBuf};

use serde_json::Value;
use veche::clock::{Clock, SystemClock};
use veche::keys::write_key_file;

use crate::harness::{public, TestApp};

/// A person at the command line: their key file, and the server they talk to.
struct Person {
    key: PathBuf,
    server: String,
}

impl Person {
    fn new(app: &TestApp, directory: &Path, name: &str, key: &ed25519_dalek::SigningKey) -> Self {
        let file = directory.join(format!("{name}.key"));
        write_key_file(&file, key).unwrap();
        Person {
            key: file,
            server: app.address.clone(),
        }
    }

    /// Runs `veche <arguments> --key <file>` off the server's thread; its stdout, insisting
    /// that it succeeded.
    async fn run(&self, arguments: &[&str]) -> String {
        self.succeeded(arguments, true).await
    }

    /// The same, without a key (reads).
    async fn read(&self, arguments: &[&str]) -> String {
        self.succeeded(arguments, false).await
    }

    /// `run` with `--json`, its stdout parsed.
    async fn json(&self, arguments: &[&str]) -> Value {
        self.parsed(arguments, true).await
    }

    /// `read` with `--json`, its stdout parsed.
    async fn read_json(&self, arguments: &[&str]) -> Value {
        self.parsed(arguments, false).await
    }

    async fn parsed(&self, arguments: &[&str], signed: bool) -> Value {
        let stdout = self
            .succeeded(&[arguments, &["--json"]].concat(), signed)
            .await;
        serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
    }

    async fn succeeded(&self, arguments: &[&str], signed: bool) -> String {
        let output = self.output(arguments, signed).await;
        assert!(
            output.status.success(),
            "veche {arguments:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    async fn output(&self, arguments: &[&str], signed: bool) -> std::process::Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_veche"));
        command.args(arguments).env("VECHE_SERVER", &self.server);
        if signed {
            command.arg("--key").arg(&self.key);
        }
        // The server runs on this test's thread: the CLI must wait elsewhere.
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    /// Files a complaint about `description`; its id, from the `--json` receipt.
    async fn file(&self, description: &str, attachment: &str) -> u64 {
        let receipt = self
            .json(&[
                "complaint",
                "file",
                "--category",
                "street-lighting",
                "--description",
                description,
                "--address",
                "12 Riverside Avenue",
                "--district",
                "Riverside",
                "--latitude",
                "59.939",
                "--longitude",
                "30.314",
                "--attach",
                attachment,
            ])
            .await;
        receipt["position"].as_u64().unwrap()
    }
}

/// The ids of the complaints a `--json` page lists.
fn ids(page: &Value) -> Vec<u64> {
    page["complaints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|complaint| complaint["id"].as_u64().unwrap())
        .collect()
}

/// The admin's catalogue and roles, set up at the command line; the moderator and official.
async fn cast(app: &TestApp, directory: &Path) -> [Person; 5] {
    let admin = Person::new(app, directory, "admin", &app.admin);
    let people = ["resident", "neighbour", "moderator", "official"]
        .map(|name| Person::new(app, directory, name, &app.new_key()));
    for person in &people {
        person.run(&["register"]).await;
    }
    admin
        .run(&[
            "category",
            "add",
            "street-lighting",
            "--name",
            "Street lighting",
            "--department",
            "roads",
            "--sla-working-days",
            "8",
            "--confirmation-window-days",
            "7",
            "--support-threshold",
            "1",
            "--proposal-lifetime-days",
            "30",
        ])
        .await;
    let changed = admin
        .run(&[
            "category",
            "change",
            "street-lighting",
            "--name",
            "Street lights",
        ])
        .await;
    assert!(
        changed.starts_with("changed category street-lighting"),
        "{changed}"
    );
    let [resident, neighbour, moderator, official] = people;
    let key_of = |person: &Person| {
        let key = veche::keys::read_key_file(&person.key).unwrap();
        public(&key).to_hex()
    };
    let (moderator_key, official_key) = (key_of(&moderator), key_of(&official));
    admin
        .run(&["role", "grant", &moderator_key, "--role", "moderator"])
        .await;
    let grant = ["role", "grant", &official_key, "--role", "official"];
    admin
        .run(&[&grant[..], &["--department", "roads"]].concat())
        .await;
    [admin, resident, neighbour, moderator, official]
}

#[actix_web::test]
async fn every_role_drives_complaints_and_proposals_from_the_command_line() {
    let app = TestApp::fresh().await;
    // The CLI signs with the wall clock: the server's clock must agree within the window.
    app.clock.set(SystemClock.now());
    let directory = tempfile::tempdir().unwrap();
    let photo = directory.path().join("lamp.jpg");
    std::fs::write(&photo, b"test").unwrap();
    let attachment = format!("{}=https://files.example.city/lamp.jpg", photo.display());
    let [admin, resident, neighbour, moderator, official] = cast(&app, directory.path()).await;

    let category = &app.get("/v1/categories").await.body["categories"][0];
    assert_eq!(
        (category["name"].as_str(), category["version"].as_u64()),
        (Some("Street lights"), Some(2))
    );
    let officials = admin
        .read_json(&[
            "role",
            "list",
            "--role",
            "official",
            "--department",
            "roads",
        ])
        .await;
    assert_eq!(
        officials["holders"].as_array().unwrap().len(),
        1,
        "{officials}"
    );

    let lamp = resident
        .file("The lamp outside number 12 is dark.", &attachment)
        .await;
    let again = neighbour
        .file("Dark lamp at number 12 again.", &attachment)
        .await;
    let filed = app.get(&format!("/v1/complaints/{lamp}")).await.body;
    assert_eq!(filed["description"], "The lamp outside number 12 is dark.");
    assert_eq!(filed["location"]["address"], "12 Riverside Avenue");
    assert_eq!(
        filed["attachments"][0]["url"],
        "https://files.example.city/lamp.jpg"
    );
    assert_eq!(
        filed["attachments"][0]["sha256"],
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );

    // The moderator's queue by age: three hours on, both wait longer than two hours and none is
    // newer than one.
    let reader = &moderator;
    let filed = |age: &'static str, hours: &'static str| async move {
        let filter = ["complaint", "queue", "--status", "filed", age, hours];
        ids(&reader.read_json(&filter).await)
    };
    assert_eq!(filed("--newer-than-hours", "1").await, [lamp, again]);
    app.clock.advance_milliseconds(3 * 3_600_000);
    assert_eq!(filed("--older-than-hours", "2").await, [lamp, again]);
    assert_eq!(filed("--older-than-hours", "4").await, Vec::<u64>::new());
    assert_eq!(filed("--newer-than-hours", "1").await, Vec::<u64>::new());
    let table = moderator
        .read(&["complaint", "queue", "--older-than-hours", "2"])
        .await;
    assert!(table.lines().next().unwrap().starts_with("id"), "{table}");
    assert!(
        table.contains("The lamp outside number 12 is dark."),
        "{table}"
    );
    app.clock.set(SystemClock.now());

    moderator
        .run(&[
            "complaint",
            "merge",
            &again.to_string(),
            "--into",
            &lamp.to_string(),
        ])
        .await;
    let merged = app.get(&format!("/v1/complaints/{again}")).await.body;
    assert_eq!(
        (merged["status"].as_str(), merged["merged_into"].as_u64()),
        (Some("merged"), Some(lamp))
    );
    let routed = moderator
        .json(&["complaint", "route", &lamp.to_string()])
        .await;
    assert!(routed["position"].as_u64().unwrap() > lamp);

    let work = official
        .read_json(&["complaint", "department", "roads"])
        .await;
    assert_eq!(ids(&work), [lamp]);
    official
        .run(&["complaint", "start-work", &lamp.to_string()])
        .await;
    let fixed = [
        "complaint",
        "answer",
        &lamp.to_string(),
        "--text",
        "The lamp was replaced.",
    ];
    official.run(&fixed).await;
    resident
        .run(&[
            "complaint",
            "dispute",
            &lamp.to_string(),
            "--reason",
            "Still dark at night.",
        ])
        .await;
    let disputed = app.get(&format!("/v1/complaints/{lamp}")).await.body;
    assert_eq!(disputed["status"], "in_progress");
    let steps = disputed["timeline"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["note"], "Still dark at night.");
    official
        .run(&[&fixed[..], &["--evidence", &attachment]].concat())
        .await;
    resident
        .run(&["complaint", "confirm", &lamp.to_string()])
        .await;
    let shown = resident
        .read_json(&["complaint", "show", &lamp.to_string()])
        .await;
    assert_eq!(shown["status"], "confirmed");
    assert_eq!(shown["answer"], "The lamp was replaced.");
    assert_eq!(
        shown["evidence"][0]["url"],
        "https://files.example.city/lamp.jpg"
    );
    let page = resident
        .read(&["complaint", "show", &lamp.to_string()])
        .await;
    assert!(
        page.starts_with(&format!("complaint {lamp} — confirmed")),
        "{page}"
    );
    assert!(page.contains("timeline:"), "{page}");

    details_and_redaction(&app, &resident, &moderator, &attachment).await;
    spam_and_cannot_resolve(&app, &resident, &moderator, &official, &attachment).await;
    proposal_workflow(&app, &resident, &neighbour, &moderator, &official).await;

    // The resident erases their own complaint's words; its numbers and timeline stay.
    let erased = resident
        .json(&["complaint", "erase", &lamp.to_string()])
        .await;
    let placeholder = format!("[erased by entry {}]", erased["position"]);
    let after = app.get(&format!("/v1/complaints/{lamp}")).await.body;
    assert_eq!(after["description"], placeholder.as_str());
    assert_eq!(after["location"]["address"], placeholder.as_str());
    assert_eq!(after["status"], "confirmed");
    app.stop().await;
}

/// A moderator asks for details, the author supplies them and is rejected; another complaint
/// naming a third party is redacted.
async fn details_and_redaction(
    app: &TestApp,
    resident: &Person,
    moderator: &Person,
    attachment: &str,
) {
    let vague = resident.file("Something is broken.", attachment).await;
    let vague_id = vague.to_string();
    moderator
        .run(&[
            "complaint",
            "ask-details",
            &vague_id,
            "--question",
            "Which lamp?",
        ])
        .await;
    let supplied = [
        "complaint",
        "supplement",
        &vague_id,
        "--text",
        "The one by the bridge.",
    ];
    resident.run(&supplied).await;
    let reject = ["complaint", "reject", &vague_id, "--reason", "out-of-scope"];
    moderator.run(&reject).await;
    let rejected = app.get(&format!("/v1/complaints/{vague}")).await.body;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["rejection"]["reason"], "out_of_scope");
    let notes: Vec<&Value> = rejected["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| &step["note"])
        .collect();
    assert!(notes.contains(&&Value::from("Which lamp?")), "{notes:?}");
    assert!(
        notes.contains(&&Value::from("The one by the bridge.")),
        "{notes:?}"
    );

    let naming = resident
        .file("My neighbour Ivan Petrov broke it.", attachment)
        .await;
    let redact = [
        "complaint",
        "redact",
        &naming.to_string(),
        "--reason",
        "third-party-personal-data",
    ];
    let redaction = moderator.json(&redact).await;
    let redacted = app.get(&format!("/v1/complaints/{naming}")).await.body;
    assert_eq!(
        redacted["description"],
        format!("[erased by entry {}]", redaction["position"]).as_str()
    );
}

/// Spam rejected and taken down in one step; a routed complaint its department cannot fix.
async fn spam_and_cannot_resolve(
    app: &TestApp,
    resident: &Person,
    moderator: &Person,
    official: &Person,
    attachment: &str,
) {
    let spam = resident
        .file("Buy cheap watches!", attachment)
        .await
        .to_string();
    let reject = ["complaint", "reject", &spam, "--reason", "spam", "--redact"];
    let rejection = moderator.json(&reject).await;
    let taken_down = app.get(&format!("/v1/complaints/{spam}")).await.body;
    assert_eq!(taken_down["status"], "rejected");
    let placeholder = format!("[erased by entry {}]", rejection["position"]);
    assert_eq!(taken_down["description"], placeholder.as_str());

    let railway = resident
        .file("The lamp by the railway is dark.", attachment)
        .await
        .to_string();
    moderator.run(&["complaint", "accept", &railway]).await;
    let answer = [
        "complaint",
        "answer",
        &railway,
        "--cannot-resolve",
        "--text",
        "It is the railway's.",
    ];
    official.run(&answer).await;
    let answered = app.get(&format!("/v1/complaints/{railway}")).await.body;
    assert_eq!(answered["status"], "cannot_resolve");
}

/// A proposal submitted, published, supported to its threshold, answered, then erased by its
/// author.
async fn proposal_workflow(
    app: &TestApp,
    resident: &Person,
    neighbour: &Person,
    moderator: &Person,
    official: &Person,
) {
    let submitted = resident
        .json(&[
            "proposal",
            "submit",
            "--category",
            "street-lighting",
            "--title",
            "Brighter lamps on Riverside",
            "--body",
            "LED lamps along the whole avenue.",
            "--district",
            "Riverside",
        ])
        .await;
    let proposal = submitted["position"].as_u64().unwrap().to_string();
    moderator.run(&["proposal", "moderate", &proposal]).await;
    let supported = neighbour.run(&["proposal", "support", &proposal]).await;
    assert!(
        supported.starts_with(&format!("supported proposal {proposal}")),
        "{supported}"
    );
    let listed = neighbour
        .read_json(&["proposal", "list", "--status", "under_review"])
        .await;
    assert_eq!(listed["proposals"][0]["id"].to_string(), proposal);
    let answer = [
        "proposal",
        "answer",
        &proposal,
        "--outcome",
        "accepted",
        "--text",
        "Planned for spring.",
    ];
    official.run(&answer).await;
    let answered = app.get(&format!("/v1/proposals/{proposal}")).await.body;
    assert_eq!(answered["status"], "accepted");
    assert_eq!(answered["title"], "Brighter lamps on Riverside");
    assert_eq!(answered["answer"]["answer"], "Planned for spring.");
    let shown = resident.read(&["proposal", "show", &proposal]).await;
    assert!(
        shown.contains("answer:     accepted: Planned for spring."),
        "{shown}"
    );

    let erased = resident.json(&["proposal", "erase", &proposal]).await;
    let after = app.get(&format!("/v1/proposals/{proposal}")).await.body;
    let placeholder = format!("[erased by entry {}]", erased["position"]);
    assert_eq!(after["title"], placeholder.as_str());
    assert_eq!(after["body"], placeholder.as_str());
    assert_eq!(after["status"], "accepted");
}

#[actix_web::test]
async fn a_refused_command_fails_with_the_problem_type_and_appends_nothing() {
    let app = TestApp::fresh().await;
    app.clock.set(SystemClock.now());
    let directory = tempfile::tempdir().unwrap();
    let stranger = Person::new(&app, directory.path(), "stranger", &app.new_key());
    stranger.run(&["register"]).await;
    let size = app.log_size().await;
    let output = stranger.output(&["complaint", "route", "1"], true).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("urn:veche:problem:"), "{stderr}");
    assert_eq!(app.log_size().await, size);
    app.stop().await;
}

#[actix_web::test]
async fn the_admin_and_a_registrar_manage_roles_and_residents_from_the_command_line() {
    let app = TestApp::fresh().await;
    app.clock.set(SystemClock.now());
    let directory = tempfile::tempdir().unwrap();
    let admin = Person::new(&app, directory.path(), "admin", &app.admin);
    let [registrar, resident] = ["registrar", "resident"]
        .map(|name| Person::new(&app, directory.path(), name, &app.new_key()));
    registrar.run(&["register"]).await;
    resident.run(&["register"]).await;
    let key_of =
        |person: &Person| public(&veche::keys::read_key_file(&person.key).unwrap()).to_hex();
    let (registrar_key, resident_key) = (key_of(&registrar), key_of(&resident));
    admin
        .run(&["role", "grant", &registrar_key, "--role", "registrar"])
        .await;

    let secret = directory.path().join("registrar.secret");
    std::fs::write(&secret, [7; 32]).unwrap();
    let secret = secret.display().to_string();
    let attest = [
        "resident",
        "attest",
        &resident_key,
        "--district",
        "Riverside",
    ];
    let identity = ["--secret-file", &secret, "--identity", "AB123456"];
    let attested = registrar.json(&[&attest[..], &identity[..]].concat()).await;
    let tag = veche::registrar::resident_tag(&[7; 32], "AB123456");
    let key = app.get(&format!("/v1/keys/{resident_key}")).await.body;
    assert_eq!(
        (key["verified"].as_bool(), key["district"].as_str()),
        (Some(true), Some("Riverside"))
    );
    assert_eq!(key["resident_tag"], tag.as_str());
    assert!(attested["position"].as_u64().unwrap() > 0);
    let shown = resident.read(&["resident", "show", &resident_key]).await;
    assert!(
        shown.contains("resident:   verified (district Riverside"),
        "{shown}"
    );

    resident.run(&["resident", "revoke-key"]).await;
    let revoked = resident
        .read_json(&["resident", "show", &resident_key])
        .await;
    assert_eq!(revoked["revoked"], true);

    admin
        .run(&["role", "revoke", &registrar_key, "--role", "registrar"])
        .await;
    let registrars = admin
        .read_json(&["role", "list", "--role", "registrar"])
        .await;
    assert_eq!(registrars["holders"], serde_json::json!([]));
    app.stop().await;
}
