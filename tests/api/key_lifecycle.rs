//! A key's lifecycle through HTTP: a lost key revoked, the resident re-registered and attested
//! again with the same tag, one active key per tag, and limits that follow the resident across
//! keys (ballots, complaints, supports where a category asks for residents); registrations
//! limited per client address.

use std::sync::atomic::Ordering;

use ed25519_dalek::SigningKey;
use projections::command::{
    Attestation, CategoryDefinition, KeyRevocation, ModerationDecision, ProposalModeration,
    ProposalReference, ProposalSubmission, RegisterKey, Role,
};
use projections::limits::{
    COMPLAINTS_PER_RESIDENT_PER_DAY_MAX, REGISTRATIONS_PER_ADDRESS_PER_HOUR_MAX,
};
use projections::Action;

use crate::harness::{
    lighting, poll_definition, public, resident_tag_of, streetlight_filing, TestApp, MINUTE_MS,
};

fn attestation(subject: &SigningKey, resident_tag: &str) -> Action {
    Action::AttestResident(Attestation {
        subject: public(subject),
        district: Some("Arbat".into()),
        verified: true,
        resident_tag: Some(resident_tag.into()),
    })
}

fn revocation(subject: &SigningKey) -> Action {
    Action::RevokeKey(KeyRevocation {
        subject: public(subject),
    })
}

fn complaint() -> Action {
    Action::FileComplaint(streetlight_filing("Arbat"))
}

/// Asserts the answer's status and problem type, naming the step.
async fn refused(
    app: &TestApp,
    step: &str,
    key: &SigningKey,
    action: Action,
    status: u16,
    code: &str,
) {
    let size = app.log_size().await;
    let answer = app.act(key, action).await;
    assert_eq!(
        (answer.status, answer.problem_type()),
        (status, format!("urn:veche:problem:{code}").as_str()),
        "{step}: {:?}",
        answer.body
    );
    assert_eq!(app.log_size().await, size, "{step} appended an entry");
}

#[actix_web::test]
async fn a_citizen_revokes_a_lost_key_and_re_registers_with_one_active_key_and_one_quota() {
    let app = TestApp::fresh().await;
    app.act_ok(&app.admin, Action::DefineCategory(lighting()))
        .await;
    let registrar = app.citizen().await;
    app.grant(&registrar, Role::Registrar, None).await;
    let official = app.official().await;
    let lost = app.citizen().await;
    let tag = resident_tag_of(&lost);
    app.act_ok(&registrar, attestation(&lost, &tag)).await;
    let mut poll = poll_definition(app.now(), 2);
    poll.audience = projections::command::Audience::Verified;
    let poll = app.open_poll(&official, poll).await;
    assert_eq!(app.vote(&lost, poll, vec![0]).await.status, 201);
    // The resident files their whole day's quota with the key they are about to lose.
    for _ in 0..COMPLAINTS_PER_RESIDENT_PER_DAY_MAX {
        app.act_ok(&lost, complaint()).await;
    }

    // The new phone's key registers; while the lost key is active it cannot take the tag.
    let replacement = app.citizen().await;
    let step = "a second active key for the tag";
    let second = attestation(&replacement, &tag);
    refused(
        &app,
        step,
        &registrar,
        second,
        409,
        "resident-already-attested",
    )
    .await;

    // The registrar revokes the lost key on the resident's behalf.
    app.act_ok(&registrar, revocation(&lost)).await;
    let record = app.get(&format!("/v1/keys/{}", public(&lost))).await.body;
    assert_eq!(
        (record["revoked"].as_bool(), record["verified"].as_bool()),
        (Some(true), Some(false))
    );
    for (step, action) in [
        ("the revoked key filing", complaint()),
        ("the revoked key voting", ballot(poll, 1)),
        ("the revoked key revoking itself", revocation(&lost)),
        (
            "the revoked key registering again",
            Action::RegisterKey(RegisterKey {}),
        ),
    ] {
        refused(&app, step, &lost, action, 403, "key-revoked").await;
    }
    let (step, again) = ("attesting the revoked key again", attestation(&lost, &tag));
    refused(&app, step, &registrar, again, 403, "key-revoked").await;

    // The new key takes the resident's tag; a third key cannot take it from the new one.
    app.act_ok(&registrar, attestation(&replacement, &tag))
        .await;
    let record = app
        .get(&format!("/v1/keys/{}", public(&replacement)))
        .await
        .body;
    assert_eq!(record["resident_tag"].as_str(), Some(tag.as_str()));
    let third = app.citizen().await;
    let (step, taken) = ("a third key for the tag", attestation(&third, &tag));
    refused(
        &app,
        step,
        &registrar,
        taken,
        409,
        "resident-already-attested",
    )
    .await;

    // The resident's ballot and complaint quota carry over to the new key.
    let step = "the resident voting again with the new key";
    refused(
        &app,
        step,
        &replacement,
        ballot(poll, 1),
        409,
        "ballot-already-cast",
    )
    .await;
    let step = "the 21st complaint of the resident's day, from the new key";
    refused(&app, step, &replacement, complaint(), 429, "rate-limited").await;
    // The quota is the resident's, not everyone's: another resident files as usual.
    app.act_ok(&third, complaint()).await;
    // A day later the resident files again, with the new key.
    app.clock.advance_milliseconds(24 * 60 * MINUTE_MS);
    app.act_ok(&replacement, complaint()).await;
}

fn ballot(poll: u64, choice: u32) -> Action {
    Action::CastBallot(projections::command::CastBallot {
        version: None,
        poll,
        choices: vec![choice],
    })
}

#[actix_web::test]
async fn a_citizen_revokes_their_own_key_and_nobody_else_can_but_a_registrar() {
    let app = TestApp::fresh().await;
    let holder = app.citizen().await;
    let neighbour = app.citizen().await;
    let step = "a neighbour revoking the key";
    let action = revocation(&holder);
    refused(&app, step, &neighbour, action, 403, "not-registrar").await;
    app.act_ok(&holder, revocation(&holder)).await;
    let record = app.get(&format!("/v1/keys/{}", public(&holder))).await.body;
    assert_eq!(record["revoked"].as_bool(), Some(true));
}

#[actix_web::test]
async fn one_address_registers_a_bounded_number_of_keys_an_hour() {
    let app = TestApp::fresh().await;
    // The harness turns the limit off; this test puts the default back before any registration.
    app.node
        .rate_limits
        .registrations_per_address_per_hour
        .store(REGISTRATIONS_PER_ADDRESS_PER_HOUR_MAX, Ordering::Relaxed);
    for _ in 0..REGISTRATIONS_PER_ADDRESS_PER_HOUR_MAX {
        app.citizen().await;
    }
    let key = app.new_key();
    let step = "one registration over the address's hour";
    let registration = Action::RegisterKey(RegisterKey {});
    refused(&app, step, &key, registration, 429, "rate-limited").await;
    // The allowance refills evenly over the hour: one more key every 36 seconds.
    app.clock.advance_milliseconds(MINUTE_MS);
    assert_eq!(
        app.act(&key, Action::RegisterKey(RegisterKey {}))
            .await
            .status,
        201
    );
}

fn support(proposal: u64) -> Action {
    Action::SupportProposal(ProposalReference { proposal })
}

#[actix_web::test]
async fn a_category_for_residents_only_takes_one_support_per_resident_tag() {
    let app = TestApp::fresh().await;
    let category = CategoryDefinition {
        support_threshold: 2,
        supports_from_residents_only: true,
        ..lighting()
    };
    app.act_ok(&app.admin, Action::DefineCategory(category.clone()))
        .await;
    let catalogue = app.get("/v1/categories").await.body;
    assert_eq!(
        catalogue["categories"][0]["supports_from_residents_only"],
        true
    );
    let (registrar, moderator) = (app.citizen().await, app.citizen().await);
    app.grant(&registrar, Role::Registrar, None).await;
    app.grant(&moderator, Role::Moderator, None).await;
    let author = app.citizen().await;
    let submission = ProposalSubmission {
        title: crate::harness::commit("More light on the boulevard"),
        body: crate::harness::commit("Add lamps every twenty metres."),
        category: category.id.clone(),
        district: None,
    };
    let proposal = app
        .act_ok(&author, Action::SubmitProposal(submission))
        .await;
    let publish = Action::ModerateProposal(ProposalModeration {
        proposal,
        decision: ModerationDecision::Publish,
    });
    app.act_ok(&moderator, publish).await;

    let fresh = app.citizen().await;
    let step = "a fresh, unattested key supporting";
    let action = support(proposal);
    refused(&app, step, &fresh, action, 403, "not-attested-resident").await;
    let lost = app.citizen().await;
    let tag = resident_tag_of(&lost);
    app.act_ok(&registrar, attestation(&lost, &tag)).await;
    app.act_ok(&lost, support(proposal)).await;
    let replacement = app.citizen().await;
    app.act_ok(&registrar, revocation(&lost)).await;
    app.act_ok(&registrar, attestation(&replacement, &tag))
        .await;
    let step = "the same resident supporting again with their new key";
    refused(
        &app,
        step,
        &replacement,
        support(proposal),
        409,
        "already-supported",
    )
    .await;
    let read = app.get(&format!("/v1/proposals/{proposal}")).await.body;
    assert_eq!(read["supports"], 1, "{read}");
}

/// Runs the `veche` command with `arguments` off the test's thread; its output.
async fn veche(arguments: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_veche"))
            .args(arguments)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn the_registrar_attests_and_revokes_through_the_command_line_without_sending_the_secret() {
    let app = TestApp::fresh().await;
    // The command line signs with the machine's clock: the server reads the same time.
    app.clock
        .set(veche::clock::Clock::now(&veche::clock::SystemClock));
    let registrar = app.citizen().await;
    app.grant(&registrar, Role::Registrar, None).await;
    let resident = app.citizen().await;
    let directory = tempfile::tempdir().unwrap();
    let key_file = directory.path().join("registrar.key");
    veche::keys::write_key_file(&key_file, &registrar).unwrap();
    let secret_file = directory.path().join("registrar.secret");
    std::fs::write(&secret_file, [7u8; 32]).unwrap();
    let path = |file: &std::path::Path| file.display().to_string();
    let tag = veche(vec![
        "resident-tag".into(),
        "--secret-file".into(),
        path(&secret_file),
        "--identity".into(),
        "AB123456".into(),
    ])
    .await;
    let tag = String::from_utf8(tag.stdout).unwrap().trim().to_string();
    assert_eq!(tag, veche::registrar::resident_tag(&[7; 32], "AB123456"));

    let signer = [
        "--key".into(),
        path(&key_file),
        "--server".into(),
        app.address.clone(),
    ];
    let subject = ["--subject".into(), public(&resident).to_hex()];
    let mut attest = vec!["attest".into(), "--secret-file".into(), path(&secret_file)];
    attest.extend(["--identity".into(), "AB123456".into()]);
    attest.extend(signer.clone().into_iter().chain(subject.clone()));
    let key_page = format!("/v1/keys/{}", public(&resident));
    let attested = veche(attest).await;
    assert!(attested.status.success(), "{attested:?}");
    let record = app.get(&key_page).await.body;
    assert_eq!(record["resident_tag"].as_str(), Some(tag.as_str()));
    let entries = app.get_text("/v1/log/entries?from=0&limit=100").await;
    assert!(
        !entries.contains(&hex::encode([7u8; 32])),
        "the secret reached the log"
    );

    let mut revoke = vec!["revoke-key".into()];
    revoke.extend(signer.into_iter().chain(subject));
    let revoked = veche(revoke).await;
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(app.get(&key_page).await.body["revoked"], true);
}
