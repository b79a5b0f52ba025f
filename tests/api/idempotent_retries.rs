//! Replays cost their author nothing, and a retried envelope gets its original receipt back.

use projections::command::RegisterKey;
use projections::{Action, Command};
use veche::envelope::Envelope;

use crate::harness::{lighting, streetlight_filing, TestApp, MINUTE_MS};

fn filing() -> Action {
    Action::FileComplaint(streetlight_filing("Tverskoy"))
}

/// A new server whose catalogue has the street-lighting category complaints are filed in.
async fn with_lighting() -> TestApp {
    let app = TestApp::fresh().await;
    app.act_ok(&app.admin, Action::DefineCategory(lighting()))
        .await;
    app
}

#[actix_web::test]
async fn replaying_a_published_complaint_does_not_spend_its_authors_daily_complaints() {
    let app = with_lighting().await;
    let victim = app.citizen().await;
    let envelope = app.sign(&victim, filing());
    assert_eq!(app.post("/v1/complaints", &envelope).await.status, 201);

    for _ in 0..25 {
        let replay = app.post("/v1/complaints", &envelope).await;
        assert_ne!(
            replay.status, 429,
            "a replay was charged: {:?}",
            replay.body
        );
    }

    let next = app.act(&victim, filing()).await;
    assert_eq!(
        next.status, 201,
        "the victim is locked out: {:?}",
        next.body
    );
    app.stop().await;
}

#[actix_web::test]
async fn replaying_a_stale_registration_does_not_block_its_authors_next_command() {
    let app = with_lighting().await;
    let victim = app.new_key();
    let registration = app.sign(&victim, Action::RegisterKey(RegisterKey {}));
    assert_eq!(app.post("/v1/keys", &registration).await.status, 201);
    app.clock.advance_milliseconds(6 * MINUTE_MS);

    for _ in 0..70 {
        let replay = app.post("/v1/keys", &registration).await;
        assert_eq!(replay.status, 400, "{:?}", replay.body);
        assert_eq!(replay.problem_type(), "urn:veche:problem:stale-command");
    }

    let next = app.act(&victim, filing()).await;
    assert_eq!(next.status, 201, "the victim is blocked: {:?}", next.body);
    app.stop().await;
}

#[actix_web::test]
async fn resending_the_exact_envelope_of_an_appended_command_returns_its_original_receipt() {
    let app = with_lighting().await;
    let author = app.citizen().await;
    let envelope = app.sign(&author, filing());
    let original = app.post("/v1/complaints", &envelope).await;
    assert_eq!(original.status, 201, "{:?}", original.body);
    let size = app.log_size().await;

    let retry = app.post("/v1/complaints", &envelope).await;
    assert_eq!(retry.status, 200, "{:?}", retry.body);
    assert_eq!(retry.body["position"], original.body["position"]);
    assert_eq!(retry.body["entry_hash"], original.body["entry_hash"]);
    assert_eq!(retry.body["leaf_hash"], original.body["leaf_hash"]);
    assert_eq!(retry.body["server_time"], original.body["server_time"]);
    assert_eq!(app.log_size().await, size, "a retry appended an entry");

    let mut other = Command::parse(envelope.payload.as_bytes()).unwrap();
    let mut second = streetlight_filing("Tverskoy");
    second.description = crate::harness::commit("Another lamp is out too.");
    other.action = Action::FileComplaint(second);
    let reused = crate::harness::CONTENT.attach(Envelope::sign(&author, &other));
    let replay = app.post("/v1/complaints", &reused).await;
    assert_eq!(replay.status, 409, "{:?}", replay.body);
    assert_eq!(replay.problem_type(), "urn:veche:problem:replayed-nonce");
    assert_eq!(app.log_size().await, size);
    app.stop().await;
}

#[actix_web::test]
async fn an_envelope_resent_after_the_node_restarts_gets_its_original_receipt() {
    let directory = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(directory.path()).await;
    let author = app.new_key();
    let envelope = app.sign(&author, Action::RegisterKey(RegisterKey {}));
    let original = app.post("/v1/keys", &envelope).await;
    assert_eq!(original.status, 201, "{:?}", original.body);
    app.stop().await;

    // The node that took it is gone; the one that starts on its log still knows the command.
    let app = TestApp::spawn(directory.path()).await;
    let size = app.log_size().await;
    let retry = app.post("/v1/keys", &envelope).await;
    assert_eq!(retry.status, 200, "{:?}", retry.body);
    assert_eq!(retry.body["position"], original.body["position"]);
    assert_eq!(retry.body["entry_hash"], original.body["entry_hash"]);
    assert_eq!(app.log_size().await, size, "a retry appended an entry");
    app.stop().await;
}
