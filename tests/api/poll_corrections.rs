//! Poll corrections end to end: a rewording keeps the ballots, a change of options voids them
//! and its voters vote again, both versions stay public, stale and late corrections are refused,
//! and the data directory still verifies.

use ed25519_dalek::SigningKey;
use projections::command::{PollCorrection, PollDefinition};
use projections::Action;
use serde_json::json;

use crate::harness::{assert_data_directory_verifies, poll_definition, TestApp, MINUTE_MS};

/// The poll's author's correction of `poll` from `replaces` to `definition`.
async fn correct(
    app: &TestApp,
    author: &SigningKey,
    poll: u64,
    replaces: u32,
    definition: &PollDefinition,
) -> crate::harness::Answer {
    let correction = PollCorrection {
        poll,
        replaces,
        definition: definition.clone(),
    };
    app.act(author, Action::CorrectPoll(correction)).await
}

async fn tally(app: &TestApp, poll: u64) -> serde_json::Value {
    app.get(&format!("/v1/polls/{poll}/tally")).await.body
}

#[actix_web::test]
async fn a_corrected_poll_shows_every_version_and_counts_only_ballots_for_its_options() {
    let directory = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(directory.path()).await;
    let official = app.official().await;
    let first = poll_definition(app.now(), 2);
    let poll = app.open_poll(&official, first.clone()).await;
    let (early, late) = (app.citizen().await, app.citizen().await);
    assert_eq!(app.vote(&early, poll, vec![0]).await.status, 201);
    assert_eq!(app.vote(&late, poll, vec![1]).await.status, 201);

    // Version 2 rewords the title: both ballots stand.
    let mut reworded = first.clone();
    reworded.title = "Which route should the new tram line take?".into();
    let answer = correct(&app, &official, poll, 1, &reworded).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let after_rewording = tally(&app, poll).await;
    assert_eq!(after_rewording["counts"], json!([1, 1]));
    assert_eq!(after_rewording["voided_ballots"], 0);

    // Another official of the same department is not the poll's author.
    let colleague = app.official().await;
    let mut wider = reworded.clone();
    wider.options.push("Route 2".into());
    let refused = correct(&app, &colleague, poll, 2, &wider).await;
    assert_eq!(refused.problem_type(), "urn:veche:problem:not-author");

    // A correction naming version 1 is stale once version 2 exists, and appends nothing.
    let size = app.log_size().await;
    let stale = correct(&app, &official, poll, 1, &wider).await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.problem_type(), "urn:veche:problem:stale-poll-version");
    assert_eq!(app.log_size().await, size);

    // Version 3 adds an option: both ballots are voided, and a voter votes again although
    // this poll allows no vote changes.
    let answer = correct(&app, &official, poll, 2, &wider).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let third = app.get(&format!("/v1/polls/{poll}/versions/3")).await;
    assert_eq!(third.body["position"], answer.body["position"]);
    let voided = tally(&app, poll).await;
    assert_eq!(voided["counts"], json!([0, 0, 0]));
    assert_eq!(voided["turnout"], 0);
    assert_eq!(voided["voided_ballots"], 2);
    // A ballot signed for version 2 is refused now, rather than counted for version 3's options.
    let pinned = |version| {
        Action::CastBallot(projections::command::CastBallot {
            poll,
            choices: vec![2],
            version: Some(version),
        })
    };
    let stale_ballot = app.act(&early, pinned(2)).await;
    assert_eq!(
        stale_ballot.problem_type(),
        "urn:veche:problem:stale-poll-version"
    );
    assert_eq!(app.act(&early, pinned(3)).await.status, 201);
    let recast = tally(&app, poll).await;
    assert_eq!(recast["counts"], json!([0, 0, 1]));
    assert_eq!(recast["turnout"], 1);

    // The public sees every version.
    let shown = app.get(&format!("/v1/polls/{poll}")).await.body;
    assert_eq!(shown["version"], 3);
    assert_eq!(shown["options"], json!(["Route 0", "Route 1", "Route 2"]));
    let versions = shown["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0]["title"], first.title.as_str());
    assert_eq!(versions[0]["position"], poll);
    assert_eq!(versions[0]["replaced"], true);
    assert_eq!(versions[1]["title"], reworded.title.as_str());
    assert_eq!(versions[1]["ballots_voided"], 0);
    assert_eq!(versions[2]["ballots_voided"], 2);
    assert_eq!(versions[2]["replaced"], false);
    let original = app.get(&format!("/v1/polls/{poll}/versions/1")).await;
    assert_eq!(original.status, 200);
    assert_eq!(original.body["options"], json!(["Route 0", "Route 1"]));
    let missing = app.get(&format!("/v1/polls/{poll}/versions/4")).await;
    assert_eq!(missing.status, 404);

    // After the close, no correction.
    app.clock.advance_milliseconds(61 * MINUTE_MS);
    let mut final_tally = serde_json::Value::Null;
    for _ in 0..50 {
        final_tally = tally(&app, poll).await;
        if final_tally["is_final"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(final_tally["is_final"], true, "{final_tally}");
    assert_eq!(final_tally["voided_ballots"], 2);
    assert_eq!(final_tally["counts"], json!([0, 0, 1]));
    let mut later = wider.clone();
    later.description = "Too late.".into();
    let closed = correct(&app, &official, poll, 3, &later).await;
    assert_eq!(closed.problem_type(), "urn:veche:problem:poll-closed");

    app.stop().await;
    assert_data_directory_verifies(directory.path());
}

#[actix_web::test]
async fn a_correction_cannot_change_who_votes_or_how() {
    let (app, official) = TestApp::with_official().await;
    let first = poll_definition(app.now(), 3);
    let poll = app.open_poll(&official, first.clone()).await;
    let mut changed = first.clone();
    changed.vote_changes_allowed = true;
    let refused = correct(&app, &official, poll, 1, &changed).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.problem_type(), "urn:veche:problem:invalid-poll");
    let mut elsewhere = first.clone();
    elsewhere.title = "Elsewhere".into();
    let answer = app
        .post(
            &format!("/v1/polls/{}/corrections", poll + 1),
            &app.sign(
                &official,
                Action::CorrectPoll(PollCorrection {
                    poll,
                    replaces: 1,
                    definition: elsewhere,
                }),
            ),
        )
        .await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
}

#[actix_web::test]
async fn a_sealed_poll_does_not_tell_its_voided_ballots_before_the_close() {
    let (app, official) = TestApp::with_official().await;
    let mut first = poll_definition(app.now(), 2);
    first.tally_visibility = projections::command::TallyVisibility::Sealed;
    let poll = app.open_poll(&official, first.clone()).await;
    let voter = app.citizen().await;
    assert_eq!(app.vote(&voter, poll, vec![0]).await.status, 201);
    let mut wider = first.clone();
    wider.options.push("Route 2".into());
    let answer = correct(&app, &official, poll, 1, &wider).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let shown = app.get(&format!("/v1/polls/{poll}")).await.body;
    assert_eq!(
        shown["versions"][1]["options"],
        json!(["Route 0", "Route 1", "Route 2"])
    );
    assert_eq!(
        shown["versions"][1]["ballots_voided"],
        serde_json::Value::Null
    );
    let one = app.get(&format!("/v1/polls/{poll}/versions/2")).await.body;
    assert_eq!(one["ballots_voided"], serde_json::Value::Null);
}
