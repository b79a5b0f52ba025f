//! Live-tally streams are capped per address, so a stream flood leaves health checks and writes
//! answering (issue 14, defect 5).

use std::time::{Duration, Instant};

use projections::command::RegisterKey;
use projections::limits::LIVE_STREAMS_PER_ADDRESS_MAX;
use projections::Action;

use crate::harness::TestApp;

#[actix_web::test]
async fn twice_the_stream_cap_from_one_address_is_refused_and_health_and_writes_still_answer() {
    let (app, official) = TestApp::with_official().await;
    let poll = app.open_standard_poll(&official, 2).await;
    let stream = format!("/v1/polls/{poll}/tally/stream");
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..2 * LIVE_STREAMS_PER_ADDRESS_MAX {
        let response = app.get_response(&stream).await;
        match response.status().as_u16() {
            200 => held.push(response),
            _ => refused.push(response),
        }
    }
    assert_eq!(held.len(), LIVE_STREAMS_PER_ADDRESS_MAX);
    assert_eq!(refused.len(), LIVE_STREAMS_PER_ADDRESS_MAX);
    let refusal = refused.pop().unwrap();
    assert_eq!(refusal.status(), 429);
    assert_eq!(
        refusal.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = refusal.json().await.unwrap();
    assert_eq!(problem["type"], "urn:veche:problem:too-many-streams");

    let started = Instant::now();
    assert_eq!(app.get("/healthz").await.status, 200);
    let key = app.new_key();
    let written = app.act(&key, Action::RegisterKey(RegisterKey {})).await;
    assert_eq!(written.status, 201, "{:?}", written.body);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "health and a write took {:?} under the stream flood",
        started.elapsed()
    );

    drop(held);
}
