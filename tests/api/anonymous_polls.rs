//! Anonymous polls end to end: credentials requested by eligible residents and blind-signed by
//! the node (and by a co-issuer running as its own process), ballots signed by per-poll keys,
//! every refusal with its problem and no log growth, and no stored field that joins a request
//! to a ballot.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use projections::command::Role;
use projections::command::{
    Anonymity, AnonymousBallot, Attestation, Audience, CredentialRequest, PollDefinition,
};
use projections::credential::{BlindedMessage, IssuerKey};
use projections::Action;
use serde_json::Value;
use veche::client::Client;
use veche::keys::SeededEntropy;
use veche_verifier::credentials::PendingCredential;
use veche_verifier::wallet::{self, FlowError, PollSecrets, Wallet};

use crate::harness::{poll_definition, public, resident_tag_of, TestApp};

const NORTH: &str = "North";
const SOUTH: &str = "South";

/// A registrar, and citizens attested in `districts` (one each), all registered.
async fn residents(app: &TestApp, districts: &[&str]) -> Vec<SigningKey> {
    let registrar = app.citizen().await;
    app.grant(&registrar, Role::Registrar, None).await;
    let mut citizens = Vec::new();
    for district in districts {
        let citizen = app.citizen().await;
        let attestation = Action::AttestResident(Attestation {
            subject: public(&citizen),
            district: Some(district.to_string()),
            verified: true,
            resident_tag: Some(resident_tag_of(&citizen)),
        });
        app.act_ok(&registrar, attestation).await;
        citizens.push(citizen);
    }
    citizens
}

async fn node_issuer_key(app: &TestApp, district: Option<&str>) -> IssuerKey {
    let path = match district {
        Some(district) => format!("/v1/issuer-keys?district={district}"),
        None => "/v1/issuer-keys".to_string(),
    };
    let answer = app.get(&path).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    serde_json::from_value(answer.body["issuer_key"].clone()).unwrap()
}

/// An anonymous poll for the residents of `NORTH`, open now for an hour, changes allowed.
async fn north_poll(app: &TestApp, co_issuer_key: Option<IssuerKey>) -> PollDefinition {
    let mut definition = poll_definition(app.now(), 3);
    definition.audience = Audience::Districts {
        districts: vec![NORTH.into()],
    };
    definition.vote_changes_allowed = true;
    definition.anonymous = Some(Anonymity {
        issuer_keys: vec![node_issuer_key(app, Some(NORTH)).await],
        co_issuer_key,
    });
    definition
}

/// Runs the citizen's issuance (blocking HTTP, as the CLI does) with a wallet in `directory`.
async fn obtain(
    app: &TestApp,
    co_issuer: Option<String>,
    key: &SigningKey,
    poll: u64,
    directory: &Path,
) -> Result<PollSecrets, FlowError> {
    let (address, key, wallet_file) = (app.address.clone(), key.clone(), wallet_of(directory, key));
    let now = app.now();
    tokio::task::spawn_blocking(move || {
        let server = Client::new(&address).unwrap();
        let co_issuer = co_issuer.map(|url| Client::new(&url).unwrap());
        // Seeded by the whole key: citizens must not share a ballot key by a seed collision.
        let entropy = SeededEntropy::new(seed_of(&key));
        wallet::obtain_credentials(
            &server,
            co_issuer.as_ref(),
            &key,
            poll,
            &wallet_file,
            now,
            &entropy,
        )
    })
    .await
    .unwrap()
}

/// A seed taken from the key's first eight bytes.
fn seed_of(key: &SigningKey) -> u64 {
    let bytes = key.to_bytes();
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

fn wallet_of(directory: &Path, key: &SigningKey) -> PathBuf {
    directory.join(format!("{}.key.wallet.json", &public(key).to_hex()[..12]))
}

/// Casts the wallet's ballot in `poll`: the server's answer.
async fn cast(app: &TestApp, key: &SigningKey, poll: u64, choice: u32, directory: &Path) -> Value {
    let (address, wallet_file, now) = (app.address.clone(), wallet_of(directory, key), app.now());
    let seed = seed_of(key) ^ (u64::from(choice) << 56) ^ app.log_size().await;
    tokio::task::spawn_blocking(move || {
        let server = Client::new(&address).unwrap();
        let entropy = SeededEntropy::new(seed);
        match wallet::cast_anonymous_ballot(
            &server,
            &wallet_file,
            poll,
            vec![choice],
            now,
            &entropy,
        ) {
            Ok(receipt) => receipt,
            Err(FlowError::Client(veche::client::ClientError::Refused { body, .. })) => body,
            Err(other) => panic!("casting failed: {other}"),
        }
    })
    .await
    .unwrap()
}

/// Posts `ballot` signed by `ballot_key`; insists it is refused as `code` with no log growth.
async fn refused_ballot(
    app: &TestApp,
    ballot_key: &SigningKey,
    ballot: AnonymousBallot,
    code: &str,
) {
    let size = app.log_size().await;
    let answer = app
        .act(ballot_key, Action::CastAnonymousBallot(ballot))
        .await;
    assert_eq!(
        answer.problem_type(),
        format!("urn:veche:problem:{code}"),
        "{:?}",
        answer.body
    );
    assert!(answer.content_type.starts_with("application/problem+json"));
    assert_eq!(
        app.log_size().await,
        size,
        "a refused {code} ballot grew the log"
    );
}

/// The ballot a wallet entry would cast, for tests that alter it before sending.
fn ballot_of(secrets: &PollSecrets, poll: u64, choice: u32) -> AnonymousBallot {
    AnonymousBallot {
        poll,
        choices: vec![choice],
        district: secrets.district.clone(),
        credential: secrets.credential.clone().unwrap(),
        co_issuer_credential: secrets.co_issuer_credential.clone(),
    }
}

async fn tally(app: &TestApp, poll: u64) -> Value {
    let answer = app.get(&format!("/v1/polls/{poll}/tally")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body
}

#[actix_web::test]
async fn residents_of_one_district_vote_anonymously_and_one_changes_their_vote() {
    let (app, official) = TestApp::with_official().await;
    let wallets = tempfile::tempdir().unwrap();
    let citizens = residents(&app, &[NORTH, NORTH, NORTH, SOUTH]).await;
    let definition = north_poll(&app, None).await;
    let poll = app.open_poll(&official, definition).await;
    let page = app.get(&format!("/v1/polls/{poll}")).await.body;
    assert_eq!(page["anonymous"]["issuers"][0]["district"], NORTH);

    // Everyone requests first, then casts: requesting early keeps issuance apart from casting.
    for citizen in &citizens[..3] {
        obtain(&app, None, citizen, poll, wallets.path())
            .await
            .unwrap();
    }
    for (index, citizen) in citizens[..3].iter().enumerate().rev() {
        let receipt = cast(&app, citizen, poll, index as u32, wallets.path()).await;
        assert!(receipt["position"].is_u64(), "{receipt}");
    }
    let changed = cast(&app, &citizens[0], poll, 2, wallets.path()).await;
    assert!(changed["position"].is_u64(), "{changed}");

    let counted = tally(&app, poll).await;
    assert_eq!(counted["counts"], serde_json::json!([0, 1, 2]));
    assert_eq!(counted["turnout"], 3);
    assert_eq!(counted["superseded_ballots"], 1);
    assert_eq!(counted["credentials_issued"], serde_json::json!([3]));
    assert_eq!(counted["ballot_keys_counted"], serde_json::json!([3]));

    // The ballot is public under its per-poll key, and the citizen's own key has none.
    let secrets = Wallet::read(&wallet_of(wallets.path(), &citizens[0]))
        .unwrap()
        .polls[&poll]
        .clone();
    let by_ballot_key = app
        .get(&format!(
            "/v1/polls/{poll}/ballots/{}",
            secrets.ballot_public_key()
        ))
        .await;
    assert_eq!(by_ballot_key.body["choices"], serde_json::json!([2]));
    let by_citizen = app
        .get(&format!(
            "/v1/polls/{poll}/ballots/{}",
            public(&citizens[0])
        ))
        .await;
    assert_eq!(by_citizen.status, 404);

    let (passed, stderr) = crate::content_verify::verify_address(&app.address).await;
    assert!(passed, "veche verify refused the anonymous poll: {stderr}");
    app.stop().await;
}

#[actix_web::test]
async fn refused_requests_and_ballots_name_their_problem_and_append_nothing() {
    let (app, official) = TestApp::with_official().await;
    let wallets = tempfile::tempdir().unwrap();
    let citizens = residents(&app, &[NORTH, NORTH, SOUTH]).await;
    let poll = app.open_poll(&official, north_poll(&app, None).await).await;
    let other_poll = app.open_poll(&official, north_poll(&app, None).await).await;
    let first = obtain(&app, None, &citizens[0], poll, wallets.path())
        .await
        .unwrap();

    let request = |poll| {
        let mut blinded = vec![0x22; 256];
        blinded[0] = 0;
        Action::RequestCredentials(CredentialRequest {
            poll,
            blinded_message: BlindedMessage(blinded),
            co_issuer_blinded_message: None,
        })
    };
    for (key, code) in [
        (&citizens[2], "not-eligible"),
        (&citizens[0], "credentials-already-requested"),
    ] {
        let size = app.log_size().await;
        let answer = app.act(key, request(poll)).await;
        assert_eq!(
            answer.problem_type(),
            format!("urn:veche:problem:{code}"),
            "{:?}",
            answer.body
        );
        assert_eq!(app.log_size().await, size);
    }

    let ballot_key = first.ballot_key();
    let mut from_other_poll = ballot_of(&first, other_poll, 0);
    from_other_poll.poll = other_poll;
    refused_ballot(&app, &ballot_key, from_other_poll, "invalid-credential").await;
    let south = app
        .node
        .issuers()
        .unwrap()
        .for_district(Some(SOUTH))
        .unwrap();
    let pending =
        PendingCredential::blind(south.public_key(), poll, first.ballot_public_key()).unwrap();
    let mut from_other_issuer = ballot_of(&first, poll, 0);
    from_other_issuer.credential = pending
        .finalize(&south.blind_sign(&pending.blinded_message).unwrap())
        .unwrap();
    refused_ballot(&app, &ballot_key, from_other_issuer, "invalid-credential").await;
    let other = obtain(&app, None, &citizens[1], other_poll, wallets.path())
        .await
        .unwrap();
    refused_ballot(
        &app,
        &other.ballot_key(),
        ballot_of(&other, poll, 0),
        "invalid-credential",
    )
    .await;
    let uncovered = app.new_key();
    refused_ballot(
        &app,
        &uncovered,
        ballot_of(&first, poll, 0),
        "invalid-credential",
    )
    .await;
    let mut wrong_district = ballot_of(&first, poll, 0);
    wrong_district.district = Some(SOUTH.into());
    refused_ballot(&app, &ballot_key, wrong_district, "invalid-credential").await;
    let mut pseudonymous = poll_definition(app.now(), 2);
    pseudonymous.audience = Audience::Everyone;
    let pseudonymous = app.open_poll(&official, pseudonymous).await;
    refused_ballot(
        &app,
        &ballot_key,
        ballot_of(&first, pseudonymous, 0),
        "poll-not-anonymous",
    )
    .await;
    let own_key = app.vote(&citizens[0], poll, vec![0]).await;
    assert_eq!(
        own_key.problem_type(),
        "urn:veche:problem:poll-is-anonymous"
    );
    app.stop().await;
}

/// `veche co-issuer` as its own process: its address, once it prints it.
struct CoIssuerProcess {
    child: std::process::Child,
    address: String,
}

fn start_co_issuer(key_file: &Path, server: &str) -> CoIssuerProcess {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_veche"))
        .args([
            "co-issuer",
            "--listen",
            "127.0.0.1:0",
            "--server",
            server,
            "--key",
        ])
        .arg(key_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"));
    CoIssuerProcess {
        child,
        address: format!("http://{address}"),
    }
}

fn co_issuer_public_key(key_file: &Path, server: &str) -> IssuerKey {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_veche"))
        .args(["co-issuer", "--print-key", "--server", server, "--key"])
        .arg(key_file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hex = String::from_utf8(output.stdout).unwrap();
    serde_json::from_value(Value::String(hex.trim().to_string())).unwrap()
}

#[actix_web::test]
async fn a_co_issuer_killed_mid_issuance_answers_the_same_request_once_restarted() {
    let (app, official) = TestApp::with_official().await;
    let directory = tempfile::tempdir().unwrap();
    let key_file = directory.path().join("co-issuer.key");
    let co_issuer_key = co_issuer_public_key(&key_file, &app.address);
    let citizens = residents(&app, &[NORTH, NORTH, NORTH]).await;
    let poll = app
        .open_poll(&official, north_poll(&app, Some(co_issuer_key)).await)
        .await;

    let mut co_issuer = start_co_issuer(&key_file, &app.address);
    let first = obtain(
        &app,
        Some(co_issuer.address.clone()),
        &citizens[0],
        poll,
        directory.path(),
    )
    .await
    .unwrap();
    assert!(first.co_issuer_credential.is_some());
    co_issuer.child.kill().unwrap();
    co_issuer.child.wait().unwrap();

    // The request reaches the log and the node answers; the co-issuer is down.
    let size = app.log_size().await;
    let interrupted = obtain(
        &app,
        Some(co_issuer.address.clone()),
        &citizens[1],
        poll,
        directory.path(),
    )
    .await;
    assert!(
        matches!(
            interrupted,
            Err(FlowError::IssuerUnavailable {
                issuer: "co-issuer",
                ..
            })
        ),
        "{interrupted:?}"
    );
    assert_eq!(app.log_size().await, size + 1);
    let half = Wallet::read(&wallet_of(directory.path(), &citizens[1]))
        .unwrap()
        .polls[&poll]
        .clone();
    assert!(half.credential.is_some() && half.co_issuer_pending.is_some());
    refused_ballot(
        &app,
        &half.ballot_key(),
        ballot_of(&half, poll, 1),
        "missing-credential",
    )
    .await;
    let mut forged = ballot_of(&half, poll, 1);
    let mut borrowed = first.co_issuer_credential.clone().unwrap();
    borrowed.signature[40] ^= 0x40;
    forged.co_issuer_credential = Some(borrowed);
    refused_ballot(&app, &half.ballot_key(), forged, "invalid-credential").await;

    let restarted = start_co_issuer(&key_file, &app.address);
    let completed = obtain(
        &app,
        Some(restarted.address.clone()),
        &citizens[1],
        poll,
        directory.path(),
    )
    .await
    .unwrap();
    assert!(completed.is_complete());
    assert_eq!(
        app.log_size().await,
        size + 1,
        "completing asked for nothing new in the log"
    );
    assert!(cast(&app, &citizens[0], poll, 0, directory.path()).await["position"].is_u64());
    assert!(cast(&app, &citizens[1], poll, 1, directory.path()).await["position"].is_u64());
    let counted = tally(&app, poll).await;
    assert_eq!(counted["turnout"], 2);
    assert_eq!(counted["credentials_issued"], serde_json::json!([2]));

    // A resident the co-issuer finds no request for gets nothing from it.
    let unasked = reqwest::get(format!(
        "{}/v1/polls/{poll}/credentials/{}",
        restarted.address,
        public(&citizens[2])
    ))
    .await
    .unwrap();
    assert_eq!(unasked.status(), 404);
    let mut restarted = restarted;
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
    app.stop().await;
}

/// Every value of at least 16 characters under `value`, as text (hex fields, keys, nonces).
fn long_values(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(text) if text.len() >= 16 => into.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| long_values(item, into)),
        Value::Object(fields) => fields.values().for_each(|field| long_values(field, into)),
        _ => {}
    }
}

#[actix_web::test]
async fn no_stored_field_joins_a_credential_request_to_a_ballot() {
    let (app, official) = TestApp::with_official().await;
    let wallets = tempfile::tempdir().unwrap();
    let citizens = residents(&app, &[NORTH, NORTH, NORTH, NORTH]).await;
    let poll = app.open_poll(&official, north_poll(&app, None).await).await;
    let mut issuer_view = Vec::new();
    for citizen in &citizens {
        obtain(&app, None, citizen, poll, wallets.path())
            .await
            .unwrap();
        let answer = app
            .get(&format!("/v1/polls/{poll}/credentials/{}", public(citizen)))
            .await;
        issuer_view.push(
            answer.body["blind_signature"]
                .as_str()
                .unwrap_or_else(|| panic!("{:?}", answer.body))
                .to_string(),
        );
    }
    // Cast later, in another order, as the client's advice goes.
    app.clock
        .advance_milliseconds(17 * crate::harness::MINUTE_MS);
    for (index, citizen) in citizens.iter().enumerate().rev() {
        app.clock.advance_milliseconds(61_000);
        cast(&app, citizen, poll, (index % 3) as u32, wallets.path()).await;
    }
    let entries = app.get("/v1/log/entries?limit=1000").await.body["entries"].clone();
    let (mut request_side, mut ballot_side) = (issuer_view, Vec::new());
    for entry in entries.as_array().unwrap() {
        let payload: Value = serde_json::from_str(entry["payload"].as_str().unwrap()).unwrap();
        let side = match payload["action"].as_str().unwrap() {
            "request_credentials" => &mut request_side,
            "cast_anonymous_ballot" => &mut ballot_side,
            _ => continue,
        };
        // Every signed field, the entry's signer, signature and hash beside them.
        long_values(&payload, side);
        for field in ["signer", "entry_hash"] {
            side.push(entry[field].as_str().unwrap().to_string());
        }
        side.push(entry["entry"].as_str().unwrap()[164..292].to_string());
    }
    assert!(ballot_side.len() >= 4 * citizens.len(), "{ballot_side:?}");
    for request_value in &request_side {
        for ballot_value in &ballot_side {
            assert!(
                !request_value.contains(ballot_value.as_str())
                    && !ballot_value.contains(request_value.as_str()),
                "a request and a ballot share {ballot_value}"
            );
        }
    }
    app.stop().await;
}
