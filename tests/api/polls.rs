//! Polls end to end: many concurrent ballots, restart, close, vote changes and sealed tallies.

use std::sync::Arc;

use futures::stream::{self, StreamExt};

/// Requests in flight at once: concurrent, but within what a test machine's sockets take.
const IN_FLIGHT: usize = 128;
use projections::command::{ChoiceKind, RegisterKey, TallyVisibility};
use projections::protocol::{entry_hash, Entry};
use projections::Action;
use sha2::Digest;

use crate::harness::{poll_definition, public, TestApp, MINUTE_MS};

const CITIZENS: usize = 1_000;
const OPTIONS: usize = 5;

/// Walks the raw log over HTTP and checks every hash link independently of the server's replay.
async fn check_chain_over_http(app: &TestApp) -> u64 {
    let mut previous = [0u8; 32];
    let mut from = 0;
    loop {
        let page = app
            .get(&format!("/v1/log/entries?from={from}&limit=1000"))
            .await;
        assert_eq!(page.status, 200);
        for item in page.body["entries"].as_array().unwrap() {
            let bytes = hex::decode(item["entry"].as_str().unwrap()).unwrap();
            let entry = Entry::decode(&bytes).unwrap();
            assert_eq!(entry.position, from, "positions run without a gap");
            assert_eq!(
                entry.previous_hash, previous,
                "entry {from} links to the one before"
            );
            let hash: [u8; 32] = sha2::Sha256::digest(&bytes).into();
            assert_eq!(hex::encode(hash), item["entry_hash"].as_str().unwrap());
            assert_eq!(
                entry.verify_signature(),
                Ok(()),
                "entry {from} is signed by its signer"
            );
            previous = hash;
            from += 1;
        }
        match page.body["next_from"].as_u64() {
            Some(next) => assert_eq!(next, from),
            None => return from,
        }
    }
}

/// The ballot of `voter` in `poll`, as the server shows it to anyone.
async fn ballot(app: &TestApp, poll: u64, voter: &ed25519_dalek::SigningKey) -> serde_json::Value {
    let path = format!("/v1/polls/{poll}/ballots/{}", public(voter));
    app.get(&path).await.body
}

#[actix_web::test]
async fn a_thousand_concurrent_ballots_are_tallied_exactly_and_survive_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    let app = Arc::new(TestApp::spawn(directory.path()).await);
    let official = app.official().await;
    let poll = app
        .open_poll(&official, poll_definition(app.now(), OPTIONS))
        .await;

    let citizens: Vec<_> = (0..CITIZENS).map(|_| app.new_key()).collect();
    let registrations: Vec<_> = stream::iter(citizens.iter().map(|key| {
        let app = app.clone();
        let envelope = app.sign(key, Action::RegisterKey(RegisterKey {}));
        async move { app.post("/v1/keys", &envelope).await }
    }))
    .buffer_unordered(IN_FLIGHT)
    .collect()
    .await;
    for answer in &registrations {
        assert_eq!(answer.status, 201, "every key registers: {:?}", answer.body);
    }

    let mut expected = vec![0u64; OPTIONS];
    let ballots: Vec<_> = citizens
        .iter()
        .enumerate()
        .map(|(index, key)| {
            let choice = (index * 7 + index / 3) % OPTIONS;
            expected[choice] += 1;
            let envelope = app.sign(
                key,
                Action::CastBallot(projections::command::CastBallot {
                    version: None,
                    poll,
                    choices: vec![choice as u32],
                }),
            );
            (envelope, public(key))
        })
        .collect();
    let answers: Vec<_> = stream::iter(ballots.into_iter().map(|(envelope, _)| {
        let app = app.clone();
        async move {
            app.post(&format!("/v1/polls/{poll}/ballots"), &envelope)
                .await
        }
    }))
    .buffer_unordered(IN_FLIGHT)
    .collect()
    .await;
    for answer in &answers {
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    let positions: std::collections::BTreeSet<u64> = answers
        .iter()
        .map(|answer| answer.body["position"].as_u64().unwrap())
        .collect();
    assert_eq!(
        positions.len(),
        CITIZENS,
        "every receipt names its own position"
    );

    let tally = app.get(&format!("/v1/polls/{poll}/tally")).await.body;
    let counts: Vec<u64> = serde_json::from_value(tally["counts"].clone()).unwrap();
    assert_eq!(counts, expected);
    assert_eq!(tally["turnout"], CITIZENS as u64);
    assert_eq!(tally["superseded_ballots"], 0);
    let size_before = check_chain_over_http(&app).await;
    // genesis, official registration and grant, poll, citizens, ballots
    assert_eq!(size_before, 4 + 2 * CITIZENS as u64);

    let clock = app.clock.clone();
    let app = Arc::try_unwrap(app)
        .ok()
        .expect("no other handle to the app remains");
    app.stop().await;

    let restarted = TestApp::spawn_with_clock(directory.path(), clock).await;
    let tally_after = restarted.get(&format!("/v1/polls/{poll}/tally")).await.body;
    assert_eq!(
        tally_after, tally,
        "the restarted server shows the identical tally"
    );
    assert_eq!(check_chain_over_http(&restarted).await, size_before);
    let choices_of_first = &ballot(&restarted, poll, &citizens[0]).await["choices"];
    assert_eq!(*choices_of_first, serde_json::json!([0]));
    restarted.stop().await;
}

#[actix_web::test]
async fn a_poll_closes_at_its_closing_time_with_a_signed_final_tally() {
    let (app, official) = TestApp::with_official().await;
    let poll = app.open_standard_poll(&official, 3).await;
    for choice in [2, 2, 0] {
        let voter = app.citizen().await;
        assert_eq!(app.vote(&voter, poll, vec![choice]).await.status, 201);
    }
    app.clock.advance_milliseconds(61 * MINUTE_MS);
    let late = app.citizen().await;
    let refused = app.vote(&late, poll, vec![1]).await;
    assert_eq!(refused.problem_type(), "urn:veche:problem:poll-closed");

    // The closer runs every 200 ms; give it a few rounds.
    let mut tally = serde_json::Value::Null;
    for _ in 0..50 {
        tally = app.get(&format!("/v1/polls/{poll}/tally")).await.body;
        if tally["is_final"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(tally["is_final"], true, "{tally}");
    assert_eq!(tally["counts"], serde_json::json!([1, 0, 2]));
    assert_eq!(tally["leading_options"], serde_json::json!([2]));

    let close_position = app.get(&format!("/v1/polls/{poll}")).await.body["closed_at_position"]
        .as_u64()
        .unwrap();
    let page = app
        .get(&format!("/v1/log/entries?from={close_position}&limit=1"))
        .await
        .body;
    let item = &page["entries"][0];
    assert_eq!(item["kind"], "system");
    let entry = Entry::decode(&hex::decode(item["entry"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(entry.verify_signature(), Ok(()));
    assert_eq!(
        hex::encode(entry_hash(&entry.encode())),
        item["entry_hash"].as_str().unwrap()
    );
    let payload: serde_json::Value = serde_json::from_slice(&entry.payload).unwrap();
    assert_eq!(payload["action"], "close_poll");
    assert_eq!(
        payload["body"]["final_tally"]["counts"],
        serde_json::json!([1, 0, 2])
    );
    assert_eq!(
        payload["author"],
        app.get("/v1/log").await.body["server_key"]
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_changed_vote_replaces_the_earlier_ballot_and_is_counted_as_superseded() {
    let (app, official) = TestApp::with_official().await;
    let mut definition = poll_definition(app.now(), 4);
    definition.vote_changes_allowed = true;
    definition.choice_kind = ChoiceKind::MultipleChoice;
    definition.max_choices = 2;
    let poll = app.open_poll(&official, definition).await;
    let voter = app.citizen().await;
    let other = app.citizen().await;
    assert_eq!(app.vote(&voter, poll, vec![0, 1]).await.status, 201);
    assert_eq!(app.vote(&other, poll, vec![1]).await.status, 201);
    assert_eq!(app.vote(&voter, poll, vec![3]).await.status, 201);
    let tally = app.get(&format!("/v1/polls/{poll}/tally")).await.body;
    assert_eq!(tally["counts"], serde_json::json!([0, 1, 0, 1]));
    assert_eq!(tally["turnout"], 2);
    assert_eq!(tally["superseded_ballots"], 1);
    let counted = &ballot(&app, poll, &voter).await["choices"];
    assert_eq!(*counted, serde_json::json!([3]), "the latest ballot counts");
    app.stop().await;
}

#[actix_web::test]
async fn a_sealed_tally_is_withheld_until_the_close_event() {
    let (app, official) = TestApp::with_official().await;
    let mut definition = poll_definition(app.now(), 2);
    definition.tally_visibility = TallyVisibility::Sealed;
    let poll = app.open_poll(&official, definition).await;
    let voter = app.citizen().await;
    assert_eq!(app.vote(&voter, poll, vec![1]).await.status, 201);
    let sealed = app.get(&format!("/v1/polls/{poll}/tally")).await;
    assert_eq!(sealed.status, 403);
    assert_eq!(sealed.problem_type(), "urn:veche:problem:tally-sealed");
    assert_eq!(sealed.content_type, "application/problem+json");

    app.clock.advance_milliseconds(60 * MINUTE_MS);
    let receipts = app.node.append_due_system_events().await.unwrap();
    assert!(
        receipts.len() <= 1,
        "the background closer may have closed it first"
    );
    let tally = app.get(&format!("/v1/polls/{poll}/tally")).await;
    assert_eq!(tally.status, 200);
    assert_eq!(tally.body["counts"], serde_json::json!([0, 1]));
    assert_eq!(tally.body["is_final"], true);
    app.stop().await;
}

#[actix_web::test]
async fn polls_list_by_cursor_and_health_endpoints_answer() {
    let (app, official) = TestApp::with_official().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.open_standard_poll(&official, 2).await);
    }
    let first = app.get("/v1/polls?limit=2").await.body;
    assert_eq!(first["polls"].as_array().unwrap().len(), 2);
    let after = first["next_after"].as_u64().unwrap();
    assert_eq!(after, ids[1]);
    let rest = app
        .get(&format!("/v1/polls?after={after}&limit=10"))
        .await
        .body;
    let rest_ids: Vec<u64> = rest["polls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|poll| poll["id"].as_u64().unwrap())
        .collect();
    assert_eq!(rest_ids, ids[2..].to_vec());
    assert!(rest["next_after"].is_null());

    assert_eq!(app.get("/healthz").await.status, 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["store"], "sqlite");
    let key = app
        .get(&format!("/v1/keys/{}", public(&official)))
        .await
        .body;
    assert_eq!(key["roles"][0]["role"], "official");
    assert_eq!(key["roles"][0]["department"], "transport");
    app.stop().await;
}

/// Reads Server-Sent Events from a streaming response until `enough` says stop.
async fn read_events(
    response: reqwest::Response,
    enough: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    use futures::StreamExt;
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while let Ok(Some(chunk)) =
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await
    {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|line| line.strip_prefix("data: ")) {
                let value: serde_json::Value = serde_json::from_str(data).unwrap();
                let stop = enough(&value);
                events.push(value);
                if stop {
                    return events;
                }
            }
        }
    }
    events
}

#[actix_web::test]
async fn a_live_subscriber_sees_each_ballot_and_the_final_tally() {
    let (app, official) = TestApp::with_official().await;
    let poll = app.open_standard_poll(&official, 2).await;
    let voters = [
        app.citizen().await,
        app.citizen().await,
        app.citizen().await,
    ];
    let stream = format!("/v1/polls/{poll}/tally/stream");
    let response = app.get_response(&stream).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    for (index, voter) in voters.iter().enumerate() {
        assert_eq!(
            app.vote(voter, poll, vec![(index % 2) as u32]).await.status,
            201
        );
    }
    app.clock.advance_milliseconds(61 * MINUTE_MS);
    let events = read_events(response, |event| event["is_final"] == true).await;
    assert_eq!(
        events.first().unwrap()["turnout"],
        0,
        "the stream opens with the current tally"
    );
    let last = events.last().unwrap();
    assert_eq!(last["is_final"], true, "{events:?}");
    assert_eq!(last["counts"], serde_json::json!([2, 1]));
    let turnouts: Vec<u64> = events
        .iter()
        .map(|event| event["turnout"].as_u64().unwrap())
        .collect();
    assert!(
        turnouts.windows(2).all(|pair| pair[0] <= pair[1]),
        "{turnouts:?}"
    );

    // Resuming with the last id seen skips the snapshot and waits for news; a closed poll's
    // stream has none, so it answers with nothing but the final state when asked fresh.
    let resumed = app.get_response(&stream).await;
    let again = read_events(resumed, |_| true).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["is_final"], true);

    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("veche_entries_appended_total"),
        "{metrics}"
    );
    assert!(metrics.contains("veche_batch_entries_bucket{le=\"+Inf\"}"));
    app.stop().await;
}
