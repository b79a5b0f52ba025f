//! Anonymous polls end to end: credentials requested by eligible residents and blind-signed by
//! the node (and by a co-issuer running as its own process), ballots signed by per-poll keys,
//! every refusal with its problem and no log growth, and no stored field that joins a request
//! to a ballot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use projections::command::Role;
use projections::command::{
    Anonymity, AnonymousBallot, Attestation, Audience, CredentialRequest, PollDefinition,
    RegisterKey, RoleChange,
};
use projections::credential::{BlindedMessage, IssuerKey};
use projections::{Action, Timestamp};
use serde_json::{json, Value};
use veche::client::Client;
use veche::clock::{Clock, SystemClock};
use veche::keys::{generate_key, OsEntropy, SeededEntropy};
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

/// An anonymous poll for the residents of `districts`, open from `now` for an hour, changes
/// allowed, naming `issuer_keys` (one per district, in the audience's order).
fn district_poll(
    now: Timestamp,
    districts: &[&str],
    issuer_keys: Vec<IssuerKey>,
    co_issuer_key: Option<IssuerKey>,
) -> PollDefinition {
    let mut definition = poll_definition(now, 3);
    definition.audience = Audience::Districts {
        districts: districts
            .iter()
            .map(|district| district.to_string())
            .collect(),
    };
    definition.vote_changes_allowed = true;
    definition.anonymous = Some(Anonymity {
        issuer_keys,
        co_issuer_key,
    });
    definition
}

/// An anonymous poll for the residents of `NORTH`, open now for an hour, changes allowed.
async fn north_poll(app: &TestApp, co_issuer_key: Option<IssuerKey>) -> PollDefinition {
    let issuer_keys = vec![node_issuer_key(app, Some(NORTH)).await];
    district_poll(app.now(), &[NORTH], issuer_keys, co_issuer_key)
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

/// Opens an anonymous poll for `NORTH` and `SOUTH` naming each district's issuer key in the
/// audience's order, and insists that the poll page publishes them so: its id.
async fn two_district_poll(app: &TestApp, official: &SigningKey) -> u64 {
    let issuer_keys = vec![
        node_issuer_key(app, Some(NORTH)).await,
        node_issuer_key(app, Some(SOUTH)).await,
    ];
    assert_ne!(
        issuer_keys[0], issuer_keys[1],
        "one issuer key per district"
    );
    let definition = district_poll(app.now(), &[NORTH, SOUTH], issuer_keys.clone(), None);
    let poll = app.open_poll(official, definition).await;
    let page = app.get(&format!("/v1/polls/{poll}")).await.body;
    for (index, key) in issuer_keys.iter().enumerate() {
        let published = &page["anonymous"]["issuers"][index]["issuer_key"];
        assert_eq!(published, &json!(hex::encode(key.der())), "{page}");
    }
    poll
}

/// Insists that the poll page and the tally publish each district's credentials issued and
/// ballot keys counted as `issued` and `counted`, `NORTH` then `SOUTH` (the audience's order).
async fn assert_district_figures(app: &TestApp, poll: u64, issued: [u64; 2], counted: [u64; 2]) {
    let page = app.get(&format!("/v1/polls/{poll}")).await.body;
    let published: Vec<Value> = page["anonymous"]["issuers"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|issuer| {
            json!([
                issuer["district"],
                issuer["credentials_issued"],
                issuer["ballot_keys_counted"]
            ])
        })
        .collect();
    let expected = [(NORTH, 0), (SOUTH, 1)]
        .map(|(district, index)| json!([district, issued[index], counted[index]]));
    assert_eq!(published, expected, "the poll page's issuers");
    // The turnout by district is the ballot keys counted under each district's issuer key.
    let turnout = app.get(&format!("/v1/polls/{poll}/turnout")).await.body;
    assert_eq!(turnout["basis"], "issuer_key", "{turnout}");
    let by_district: Vec<Value> = turnout["districts"]
        .as_array()
        .unwrap_or_else(|| panic!("{turnout}"))
        .iter()
        .map(|district| {
            json!([
                district["district"],
                district["credentials_issued"],
                district["turnout"]
            ])
        })
        .collect();
    assert_eq!(by_district, expected, "the turnout by district");
    assert_eq!(turnout["unattested"], 0, "{turnout}");
    let counts = tally(app, poll).await;
    assert_eq!(counts["credentials_issued"], json!(issued), "{counts}");
    assert_eq!(counts["ballot_keys_counted"], json!(counted), "{counts}");
}

/// A fresh ballot key and its ballot in `poll`, with a credential that `district`'s issuer key
/// signed off the log (no request names it): the stuffing that counted ≤ issued must catch.
fn minted_off_log(app: &TestApp, poll: u64, district: &str) -> (SigningKey, AnonymousBallot) {
    let issuer = app
        .node
        .issuers()
        .unwrap()
        .for_district(Some(district))
        .unwrap();
    let ballot_key = app.new_key();
    let pending = PendingCredential::blind(issuer.public_key(), poll, public(&ballot_key)).unwrap();
    let signed = issuer.blind_sign(&pending.blinded_message).unwrap();
    let ballot = AnonymousBallot {
        poll,
        choices: vec![0],
        district: Some(district.into()),
        credential: pending.finalize(&signed).unwrap(),
        co_issuer_credential: None,
    };
    (ballot_key, ballot)
}

#[actix_web::test]
async fn residents_of_two_districts_vote_and_each_district_counts_no_more_than_it_issued() {
    let (app, official) = TestApp::with_official().await;
    let wallets = tempfile::tempdir().unwrap();
    let citizens = residents(&app, &[NORTH, NORTH, SOUTH, SOUTH, SOUTH]).await;
    let poll = two_district_poll(&app, &official).await;
    assert_district_figures(&app, poll, [0, 0], [0, 0]).await;

    let mut secrets = Vec::new();
    for citizen in &citizens {
        secrets.push(
            obtain(&app, None, citizen, poll, wallets.path())
                .await
                .unwrap(),
        );
    }
    let districts: Vec<_> = secrets
        .iter()
        .map(|held| held.district.as_deref())
        .collect();
    assert_eq!(districts, [NORTH, NORTH, SOUTH, SOUTH, SOUTH].map(Some));
    assert_district_figures(&app, poll, [2, 3], [0, 0]).await;

    // Both of North's residents vote, and one changes their vote; two of South's three vote.
    for (citizen, choice) in citizens[..4].iter().zip([0, 1, 2, 2]) {
        let receipt = cast(&app, citizen, poll, choice, wallets.path()).await;
        assert!(receipt["position"].is_u64(), "{receipt}");
    }
    let changed = cast(&app, &citizens[1], poll, 2, wallets.path()).await;
    assert!(changed["position"].is_u64(), "{changed}");
    assert_district_figures(&app, poll, [2, 3], [2, 2]).await;
    let counted = tally(&app, poll).await;
    assert_eq!(counted["counts"], json!([1, 0, 3]), "{counted}");
    assert_eq!(counted["turnout"], 4);
    assert_eq!(counted["superseded_ballots"], 1);

    // A credential counts only in its own district: under the other district's key it fails,
    // whether its ballot key was counted already (North's) or not yet (South's abstainer).
    for (held, other) in [(&secrets[0], SOUTH), (&secrets[4], NORTH)] {
        let mut misnamed = ballot_of(held, poll, 0);
        misnamed.district = Some(other.into());
        refused_ballot(&app, &held.ballot_key(), misnamed, "invalid-credential").await;
    }
    // North has counted every credential it issued: one minted off the log is refused there,
    // although the poll as a whole has issued one credential more than it counted.
    let (stuffer, stuffed) = minted_off_log(&app, poll, NORTH);
    refused_ballot(&app, &stuffer, stuffed, "credentials-exhausted").await;
    assert_eq!(
        tally(&app, poll).await,
        counted,
        "a refusal changed the tally"
    );

    let (passed, stderr) = crate::content_verify::verify_address(&app.address).await;
    assert!(
        passed,
        "veche verify refused the two-district poll: {stderr}"
    );
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
    entry_sides(&entries, &mut request_side, &mut ballot_side);
    assert!(ballot_side.len() >= 4 * citizens.len(), "{ballot_side:?}");
    assert_no_join_key(&request_side, &ballot_side);
    app.stop().await;
}

/// The values of the published log's entries (`GET /v1/log/entries`), by side: every payload
/// value of at least 16 characters, and each entry's signer, signature and hash beside them.
fn entry_sides(entries: &Value, request_side: &mut Vec<String>, ballot_side: &mut Vec<String>) {
    for entry in entries.as_array().unwrap() {
        let payload: Value = serde_json::from_str(entry["payload"].as_str().unwrap()).unwrap();
        let side = match payload["action"].as_str().unwrap() {
            "request_credentials" => &mut *request_side,
            "cast_anonymous_ballot" => &mut *ballot_side,
            _ => continue,
        };
        long_values(&payload, side);
        for field in ["signer", "entry_hash"] {
            side.push(entry[field].as_str().unwrap().to_string());
        }
        side.push(entry["entry"].as_str().unwrap()[164..292].to_string());
    }
}

/// Insists that no value of the request side holds a value of the ballot side, or the reverse.
fn assert_no_join_key(request_side: &[String], ballot_side: &[String]) {
    for request_value in request_side {
        for ballot_value in ballot_side {
            assert!(
                !request_value.contains(ballot_value.as_str())
                    && !ballot_value.contains(request_value.as_str()),
                "a request and a ballot share {ballot_value} ({request_value})"
            );
        }
    }
}

/// `veche serve` as its own process on a data directory of its own, logging every level
/// (`RUST_LOG=trace`) as JSON lines into a file: the node as an operator runs it, with the
/// logs they would keep. Killed when dropped, however the test ends.
struct NodeProcess {
    child: std::process::Child,
    address: String,
    data_directory: PathBuf,
    log_file: PathBuf,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(directory: &Path) -> NodeProcess {
    let (data_directory, log_file) = (directory.join("data"), directory.join("node.log"));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_veche"))
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(["--registrations-per-address-per-hour", "0", "--data-dir"])
        .arg(&data_directory)
        .env("RUST_LOG", "trace")
        .env_remove("VECHE_STORE")
        .env_remove("VECHE_REDIS")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_file).unwrap())
        .spawn()
        .unwrap();
    let mut node = NodeProcess {
        child,
        address: String::new(),
        data_directory,
        log_file,
    };
    let started = std::time::Instant::now();
    while node.address.is_empty() {
        let running = node.child.try_wait().unwrap().is_none();
        assert!(
            running && started.elapsed() < Duration::from_secs(60),
            "the node did not start: {:?}",
            node.log_lines()
        );
        std::thread::sleep(Duration::from_millis(50));
        node.address = node
            .log_lines()
            .iter()
            .find_map(|line| {
                let line: Value = serde_json::from_str(line).ok()?;
                let serving = line["fields"]["message"] == "veche is serving";
                serving.then(|| line["fields"]["address"].as_str().unwrap().to_string())
            })
            .unwrap_or_default();
    }
    node
}

impl NodeProcess {
    /// A client of its own, on connections of its own, as each run of the CLI has.
    fn client(&self) -> Client {
        Client::new(&format!("http://{}", self.address)).unwrap()
    }

    /// Sends `action` signed by `key` now; insists it is accepted.
    fn act(&self, key: &SigningKey, action: Action) -> Value {
        let (name, path) = (action.name(), veche::client::endpoint_for(&action));
        let envelope = veche::client::signed_envelope(key, action, SystemClock.now(), &OsEntropy);
        let answer = self.client().post(&path, &envelope);
        answer.unwrap_or_else(|error| panic!("{name} was refused: {error}"))
    }

    /// The complete lines the node has logged so far.
    fn log_lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log_file).unwrap();
        let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        complete.lines().map(str::to_string).collect()
    }

    /// How many lines the node has logged once its log stays still for a moment (a connection's
    /// last lines follow its answer, as the client hangs up), or after five seconds at most.
    fn settled_log(&self) -> usize {
        let mut seen = self.log_lines().len();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(250));
            let now = self.log_lines().len();
            if now == seen {
                break;
            }
            seen = now;
        }
        seen
    }
}

/// An official and `count` residents of `NORTH` of the node process, registered, and attested
/// by a registrar, as `residents` makes them.
fn process_residents(node: &NodeProcess, count: usize) -> (SigningKey, Vec<SigningKey>) {
    let admin_key = node.data_directory.join(veche::server::ADMIN_KEY_FILE);
    let admin = veche::keys::read_key_file(&admin_key).unwrap();
    let register = |key: &SigningKey| node.act(key, Action::RegisterKey(RegisterKey {}));
    let (official, registrar) = (generate_key(&OsEntropy), generate_key(&OsEntropy));
    for (key, role, department) in [
        (&official, Role::Official, Some("transport".to_string())),
        (&registrar, Role::Registrar, None),
    ] {
        register(key);
        let subject = public(key);
        let change = RoleChange {
            subject,
            role,
            department,
        };
        node.act(&admin, Action::GrantRole(change));
    }
    let citizens = (0..count)
        .map(|_| generate_key(&OsEntropy))
        .collect::<Vec<_>>();
    for citizen in &citizens {
        register(citizen);
        let attestation = Attestation {
            subject: public(citizen),
            district: Some(NORTH.into()),
            verified: true,
            resident_tag: Some(resident_tag_of(citizen)),
        };
        node.act(&registrar, Action::AttestResident(attestation));
    }
    (official, citizens)
}

/// What the node process saw of issuance, then of casting: the blind signatures it served (the
/// issuer's view), and the lines it logged while serving the requests and while taking the
/// ballots.
struct Phases {
    issuer_view: Vec<String>,
    request_lines: Vec<String>,
    ballot_lines: Vec<String>,
}

/// Every citizen requests credentials (and fetches the blind signature again, as a retry
/// would), then every citizen casts, in the reverse order, each step on a client of its own.
fn request_then_cast(
    node: &NodeProcess,
    poll: u64,
    citizens: &[SigningKey],
    wallets: &Path,
) -> Phases {
    let before = node.settled_log();
    let mut issuer_view = Vec::new();
    for citizen in citizens {
        let wallet_file = wallet_of(wallets, citizen);
        let (now, server) = (SystemClock.now(), node.client());
        wallet::obtain_credentials(&server, None, citizen, poll, &wallet_file, now, &OsEntropy)
            .unwrap();
        let path = format!("/v1/polls/{poll}/credentials/{}", public(citizen));
        let answer = node.client().get(&path).unwrap();
        issuer_view.push(answer["blind_signature"].as_str().unwrap().to_string());
    }
    let issued = node.settled_log();
    for (index, citizen) in citizens.iter().enumerate().rev() {
        let (wallet_file, choices) = (wallet_of(wallets, citizen), vec![(index % 3) as u32]);
        let (now, server) = (SystemClock.now(), node.client());
        let receipt =
            wallet::cast_anonymous_ballot(&server, &wallet_file, poll, choices, now, &OsEntropy)
                .unwrap();
        assert!(receipt["position"].is_u64(), "{receipt}");
    }
    let cast = node.settled_log();
    let lines = node.log_lines();
    Phases {
        issuer_view,
        request_lines: lines[before..issued].to_vec(),
        ballot_lines: lines[issued..cast].to_vec(),
    }
}

/// One row of a table of the node's SQLite store: the log entry it belongs to (its `position`
/// column), that entry's action, and its values of at least 16 characters.
struct StoredRow {
    table: String,
    position: Option<i64>,
    action: Option<String>,
    values: Vec<String>,
}

/// Every row of every table of the SQLite store at `database`, opened read-only. Each column
/// gives its value as text (blobs in hex, numbers in decimal), but an `entry` blob gives its
/// fields: the signer, the signature and every payload value, not its link to the entry
/// before it (the chain's order, which the log publishes). Rows whose `position` names an
/// entry take that entry's action.
fn stored_rows(database: &Path) -> Vec<StoredRow> {
    use rusqlite::{types::ValueRef, OpenFlags};
    let store =
        rusqlite::Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut tables = store
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap();
    let tables: Vec<String> = tables
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = Vec::new();
    for table in tables {
        let mut statement = store
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .unwrap();
        let columns: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(String::from)
            .collect();
        let mut query = statement.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let mut stored = StoredRow {
                table: table.clone(),
                position: None,
                action: None,
                values: Vec::new(),
            };
            for (index, column) in columns.iter().enumerate() {
                let text = match row.get_ref(index).unwrap() {
                    ValueRef::Integer(number) if column == "position" => {
                        stored.position = Some(number);
                        continue;
                    }
                    ValueRef::Blob(bytes) if column == "entry" => {
                        stored.action = entry_values(bytes, &mut stored.values);
                        continue;
                    }
                    ValueRef::Blob(bytes) => hex::encode(bytes),
                    ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
                    ValueRef::Integer(number) => number.to_string(),
                    ValueRef::Real(number) => number.to_string(),
                    ValueRef::Null => continue,
                };
                long_values(&Value::String(text), &mut stored.values);
            }
            rows.push(stored);
        }
    }
    actions_by_position(&mut rows);
    rows
}

/// A stored entry's signer, signature and payload values, into `values`: its action.
fn entry_values(bytes: &[u8], values: &mut Vec<String>) -> Option<String> {
    let entry = projections::Entry::decode(bytes).unwrap();
    values.push(entry.signer.to_hex());
    values.push(hex::encode(entry.signature));
    let payload: Value = serde_json::from_slice(&entry.payload).ok()?;
    long_values(&payload, values);
    payload["action"].as_str().map(str::to_string)
}

/// Gives every row that names a log position without holding its entry that entry's action.
fn actions_by_position(rows: &mut [StoredRow]) {
    let actions: std::collections::BTreeMap<i64, String> = rows
        .iter()
        .filter_map(|row| Some((row.position?, row.action.clone()?)))
        .collect();
    for row in rows.iter_mut().filter(|row| row.action.is_none()) {
        row.action = row
            .position
            .and_then(|position| actions.get(&position).cloned());
    }
}

/// What a log line could join on, into `values`: every run of at least 16 hexadecimal digits
/// (keys, hashes, signatures, nonces, blinded messages) and every IPv4 socket address but the
/// node's own `address`, in any field of the JSON line (its message among them) but the
/// source-location metadata (`log.file`, `log.line`, `log.module_path`, `log.target`), its
/// time, level and target, and mio's poller tokens; spans' fields included.
fn log_values(line: &str, address: &str, values: &mut Vec<String>) {
    let mut texts = Vec::new();
    match serde_json::from_str::<Value>(line) {
        Ok(line) => {
            for part in ["fields", "span", "spans"] {
                let mut fields = line[part].clone();
                if let Value::Object(object) = &mut fields {
                    object.retain(|name, _| !name.starts_with("log."));
                }
                all_strings(&fields, &mut texts);
            }
        }
        // Anything else the node wrote on stderr (a panic, say) is read whole.
        Err(_) => texts.push(line.to_string()),
    }
    for text in texts.iter().map(|text| without_poller_tokens(text)) {
        let hex_runs = text.split(|character: char| !character.is_ascii_hexdigit());
        values.extend(hex_runs.filter(|run| run.len() >= 16).map(str::to_string));
        let socket = |character: char| character.is_ascii_digit() || ".:".contains(character);
        let addresses = text.split(|character: char| !socket(character));
        values.extend(
            addresses
                .map(|run| run.trim_matches(|character| character == '.' || character == ':'))
                .filter(|run| run.matches('.').count() == 3 && run.contains(':') && *run != address)
                .map(str::to_string),
        );
    }
}

/// `text` without the numbers of mio's `Token(N)`: the address of a socket's registration with
/// the poller, which the allocator recycles from one connection to the next, so that two equal
/// ones say nothing of who connected.
fn without_poller_tokens(text: &str) -> String {
    let mut pieces = text.split("Token(");
    let mut kept = pieces.next().unwrap_or_default().to_string();
    for piece in pieces {
        kept.push_str(piece.trim_start_matches(|character: char| character.is_ascii_digit()));
    }
    kept
}

/// Every string and number under `value`, as text.
fn all_strings(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(text) => into.push(text.clone()),
        Value::Number(number) => into.push(number.to_string()),
        Value::Array(items) => items.iter().for_each(|item| all_strings(item, into)),
        Value::Object(fields) => fields.values().for_each(|field| all_strings(field, into)),
        Value::Bool(_) | Value::Null => {}
    }
}

#[test]
fn no_table_row_or_log_line_of_the_node_joins_a_credential_request_to_a_ballot() {
    let directory = tempfile::tempdir().unwrap();
    let node = start_node(directory.path());
    let (official, citizens) = process_residents(&node, 4);
    let path = format!("/v1/issuer-keys?district={NORTH}");
    let issuer_key = node.client().get(&path).unwrap()["issuer_key"].clone();
    let issuer_keys = vec![serde_json::from_value(issuer_key).unwrap()];
    let definition = district_poll(SystemClock.now(), &[NORTH], issuer_keys, None);
    let poll = node.act(&official, Action::OpenPoll(definition))["position"]
        .as_u64()
        .unwrap();
    let phases = request_then_cast(&node, poll, &citizens, directory.path());

    // The node logs no client's address (loopback here, the own address aside).
    assert!(!phases.request_lines.is_empty() && !phases.ballot_lines.is_empty());
    for line in phases.request_lines.iter().chain(&phases.ballot_lines) {
        let others = line.replace(&node.address, "");
        assert!(!others.contains("127.0.0.1"), "a client's address: {line}");
    }
    let (mut request_side, mut ballot_side) = (phases.issuer_view, Vec::new());
    let entries = node.client().get("/v1/log/entries?limit=1000").unwrap()["entries"].clone();
    entry_sides(&entries, &mut request_side, &mut ballot_side);
    let rows = stored_rows(&node.data_directory.join(veche::server::LOG_FILE));
    for (action, side) in [
        ("request_credentials", &mut request_side),
        ("cast_anonymous_ballot", &mut ballot_side),
    ] {
        let held: Vec<&StoredRow> = rows
            .iter()
            .filter(|row| row.action.as_deref() == Some(action))
            .collect();
        let events = held.iter().filter(|row| row.table == "events").count();
        assert_eq!(events, citizens.len(), "{action} rows in the events table");
        side.extend(held.iter().flat_map(|row| row.values.iter().cloned()));
    }
    for line in &phases.request_lines {
        log_values(line, &node.address, &mut request_side);
    }
    for line in &phases.ballot_lines {
        log_values(line, &node.address, &mut ballot_side);
    }
    assert_no_join_key(&request_side, &ballot_side);
}
