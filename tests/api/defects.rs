//! The HTTP defects outside tests found, each held by a test that failed before its fix.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use projections::command::{Audience, RegisterKey};
use projections::Action;

use crate::harness::{lighting, poll_definition, TestApp, MINUTE_MS};

#[actix_web::test]
async fn a_poll_view_shows_the_audience_its_payload_named() {
    let (app, official) = TestApp::with_official().await;
    let mut districts = poll_definition(app.now(), 2);
    districts.audience = Audience::Districts {
        districts: vec!["Tverskoy".into(), "Arbat".into()],
    };
    let district_poll = app.open_poll(&official, districts).await;
    let mut verified = poll_definition(app.now(), 2);
    verified.audience = Audience::Verified;
    let verified_poll = app.open_poll(&official, verified).await;

    let view = app.get(&format!("/v1/polls/{district_poll}")).await;
    assert_eq!(
        view.body["audience"],
        serde_json::json!({"kind": "districts", "districts": ["Tverskoy", "Arbat"]})
    );
    let view = app.get(&format!("/v1/polls/{verified_poll}")).await;
    assert_eq!(
        view.body["audience"],
        serde_json::json!({"kind": "verified"})
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_receipt_upgrade_since_a_size_the_log_has_not_reached_is_404_beyond_tree_size() {
    let app = TestApp::fresh().await;
    let size = app.log_size().await;
    let answer = app.get(&format!("/v1/receipts/0?since={}", size + 5)).await;
    assert_eq!(answer.status, 404, "{:?}", answer.body);
    assert_eq!(answer.problem_type(), "urn:veche:problem:beyond-tree-size");
    let zero = app.get("/v1/receipts/0?since=0").await;
    assert_eq!(zero.problem_type(), "urn:veche:problem:impossible-proof");
    app.stop().await;
}

/// Posts `action` signed by `key` and returns the status and `Location` header.
async fn post_for_location(
    app: &TestApp,
    key: &ed25519_dalek::SigningKey,
    action: Action,
) -> (u16, Option<String>, serde_json::Value) {
    let path = veche::client::endpoint_for(&action);
    let response = app
        .http
        .post(format!("{}{path}", app.address))
        .json(&app.sign(key, action))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_string());
    (status, location, response.json().await.unwrap())
}

#[actix_web::test]
async fn commands_that_create_things_name_the_created_resource_in_location() {
    let (app, official) = TestApp::with_official().await;
    let (status, location, receipt) = post_for_location(
        &app,
        &official,
        Action::OpenPoll(poll_definition(app.now(), 2)),
    )
    .await;
    assert_eq!(status, 201);
    let poll = receipt["position"].as_u64().unwrap();
    let location = location.expect("a new poll has a Location");
    assert_eq!(location, format!("/v1/polls/{poll}"));
    assert_eq!(app.get(&location).await.body["id"], poll);

    let category = lighting();
    let (status, location, _) =
        post_for_location(&app, &app.admin, Action::DefineCategory(category)).await;
    assert_eq!(status, 201);
    assert_eq!(location.as_deref(), Some("/v1/categories"));
    app.stop().await;
}

#[actix_web::test]
async fn a_refused_command_is_not_counted_as_a_committed_batch() {
    let app = TestApp::fresh().await;
    let citizen = app.citizen().await;
    let committed = app
        .node
        .observers()
        .batches_committed
        .load(Ordering::Relaxed);
    let refused = app.act(&citizen, Action::RegisterKey(RegisterKey {})).await;
    assert_eq!(
        refused.problem_type(),
        "urn:veche:problem:key-already-registered"
    );
    assert_eq!(
        app.node
            .observers()
            .batches_committed
            .load(Ordering::Relaxed),
        committed
    );
    let metrics = app.get("/metrics").await;
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains(&format!("veche_batches_committed_total {committed}\n")),
        "{text}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_thousand_polls_closing_at_one_instant_all_close_within_two_seconds() {
    let (app, official) = TestApp::with_official().await;
    let definition = poll_definition(app.now(), 2);
    // Opened through the node: the HTTP per-key limit would spread a thousand over minutes.
    let openings = (0..1_000).map(|_| {
        let envelope = app.sign(&official, Action::OpenPoll(definition.clone()));
        async {
            let signed = app.node.open_envelope(envelope).await.unwrap();
            app.node.append(signed, Vec::new()).await.unwrap().position
        }
    });
    let polls = futures::future::join_all(openings).await;

    app.clock.advance_milliseconds(61 * MINUTE_MS);
    let started = Instant::now();
    loop {
        let open = {
            let ledger = app.node.ledger();
            polls
                .iter()
                .filter(|poll| ledger.polls[poll].closed.is_none())
                .count()
        };
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{open} of 1000 polls still open after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.node.fault(), None, "no due event was refused");
    assert_eq!(app.get("/readyz").await.status, 200);
    app.stop().await;
}

#[actix_web::test]
async fn a_poisoned_ledger_lock_fails_readiness_and_refuses_writes() {
    let app = TestApp::fresh().await;
    assert_eq!(app.get("/readyz").await.status, 200);
    let size = app.log_size().await;
    app.node.poison_ledger_lock_for_tests();

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.problem_type(), "urn:veche:problem:node-faulted");
    let refused = app
        .act(&app.new_key(), Action::RegisterKey(RegisterKey {}))
        .await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(refused.problem_type(), "urn:veche:problem:node-faulted");
    assert_eq!(
        app.node.store().size().unwrap(),
        size,
        "nothing was appended"
    );
    app.stop().await;
}
