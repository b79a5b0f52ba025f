//! The deadline index at the server: thousands of polls closing at one instant are all closed by
//! the system-event task at that instant, and none a millisecond before.

use std::time::{Duration, Instant};

use projections::limits::COMMANDS_PER_KEY_PER_MINUTE_MAX;
use projections::PollStatus;

use crate::harness::{poll_definition, TestApp};

const POLLS: usize = 2_000;
const MINUTE_MS: i64 = 60_000;

/// Polls of the ledger that have a close entry.
fn closed_polls(app: &TestApp) -> usize {
    let ledger = app.node.ledger();
    ledger
        .polls
        .values()
        .filter(|poll| poll.closed.is_some())
        .count()
}

#[actix_web::test]
async fn two_thousand_polls_closing_at_one_instant_are_all_closed_at_it_and_none_a_millisecond_before(
) {
    let (app, official) = TestApp::with_official().await;
    let closes_at = app.now().plus_milliseconds(120 * MINUTE_MS);
    for index in 0..POLLS {
        // The official's own rate limit, timed by the node's clock (its registration counted
        // too): a minute on per batch below the limit.
        if index > 0 && (index as u64).is_multiple_of(COMMANDS_PER_KEY_PER_MINUTE_MAX - 10) {
            app.clock.advance_milliseconds(MINUTE_MS);
        }
        let mut definition = poll_definition(app.now(), 2);
        definition.closes_at = closes_at;
        app.open_poll(&official, definition).await;
    }
    let opened = app.log_size().await;

    // A millisecond before: the system-event task runs (every 200 ms) and appends nothing.
    app.clock.set(closes_at.plus_milliseconds(-1));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        app.log_size().await,
        opened,
        "nothing is due before the instant"
    );
    assert_eq!(closed_polls(&app), 0);

    // At the instant, with the clock held there: every close is sealed at that server time.
    app.clock.set(closes_at);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    while closed_polls(&app) < POLLS {
        assert!(
            Instant::now() < deadline,
            "only {} of {POLLS} polls closed",
            closed_polls(&app)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let ledger = app.node.ledger();
    assert_eq!(
        ledger.size,
        opened + POLLS as u64,
        "one close per poll, nothing else"
    );
    for poll in ledger.polls.values() {
        assert_eq!(poll.status(closes_at), PollStatus::Closed);
        let close = poll.closed.as_ref().expect("closed");
        assert_eq!(
            close.server_time, closes_at,
            "closed at the instant it fell due"
        );
    }
    drop(ledger);
    eprintln!(
        "deadlines: {POLLS} polls closed {} ms (wall clock) after their shared instant",
        elapsed.as_millis()
    );
}
