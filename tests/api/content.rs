//! Content beside the log: the signed payload carries commitments, the text travels beside it,
//! reads serve the text, and content that does not match its commitments stores nothing.

use projections::command::{ComplaintFiling, ProposalSubmission};
use projections::Action;

use crate::harness::{
    assert_data_directory_verifies, commit, lighting, streetlight_filing, TestApp, CONTENT,
};

const PERSONAL: &str = "Ivan Petrov, flat 14, phone +7 900 123 45 67: the lamp by my door is out.";

fn personal_filing() -> ComplaintFiling {
    ComplaintFiling {
        description: commit(PERSONAL),
        ..streetlight_filing("Tverskoy")
    }
}

fn content_rows(directory: &std::path::Path) -> i64 {
    let connection = rusqlite::Connection::open(directory.join(veche::server::LOG_FILE)).unwrap();
    connection
        .query_row("SELECT count(*) FROM content", [], |row| row.get(0))
        .unwrap()
}

fn log_rows_mentioning(directory: &std::path::Path, text: &str) -> i64 {
    let connection = rusqlite::Connection::open(directory.join(veche::server::LOG_FILE)).unwrap();
    connection
        .query_row(
            "SELECT count(*) FROM events WHERE instr(entry, ?1) > 0",
            [text.as_bytes()],
            |row| row.get(0),
        )
        .unwrap()
}

/// A server on a data directory of its own, with the street-lighting category and a citizen.
async fn city() -> (tempfile::TempDir, TestApp, ed25519_dalek::SigningKey) {
    let directory = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(directory.path()).await;
    let defined = app
        .act(&app.admin, Action::DefineCategory(lighting()))
        .await;
    assert_eq!(defined.status, 201);
    let citizen = app.citizen().await;
    (directory, app, citizen)
}

#[actix_web::test]
async fn a_complaints_personal_details_are_served_from_beside_the_log_and_never_enter_it() {
    let (directory, app, citizen) = city().await;
    let complaint = app
        .act_ok(&citizen, Action::FileComplaint(personal_filing()))
        .await;
    let proposal = Action::SubmitProposal(ProposalSubmission {
        title: commit("A lamp on every porch"),
        body: commit("Asked for by Ivan Petrov of flat 14."),
        category: "street-lighting".into(),
        district: None,
    });
    let proposal = app.act_ok(&citizen, proposal).await;

    let served = app.get(&format!("/v1/complaints/{complaint}")).await.body;
    assert_eq!(served["description"], PERSONAL);
    assert_eq!(served["location"]["address"], "12 Tverskaya St");
    let open311 = app
        .get(&format!("/open311/v2/requests/{complaint}.json"))
        .await
        .body;
    assert_eq!(open311[0]["description"], PERSONAL);
    let served = app.get(&format!("/v1/proposals/{proposal}")).await.body;
    assert_eq!(served["body"], "Asked for by Ivan Petrov of flat 14.");

    let entries = app.get_text("/v1/log/entries?from=0&limit=100").await;
    assert!(!entries.contains("Petrov"), "{entries}");
    assert!(!entries.contains("Tverskaya"), "{entries}");
    app.stop().await;
    assert_eq!(log_rows_mentioning(directory.path(), "Petrov"), 0);
    assert_eq!(log_rows_mentioning(directory.path(), "Tverskaya"), 0);
    // Description and address of the complaint, title and body of the proposal.
    assert_eq!(content_rows(directory.path()), 4);
    assert_data_directory_verifies(directory.path());
}

#[actix_web::test]
async fn content_that_does_not_match_its_commitments_is_refused_and_nothing_is_stored() {
    let (directory, app, citizen) = city().await;
    let size = app.log_size().await;
    let stored = content_rows(directory.path());

    let mut altered = app.sign(&citizen, Action::FileComplaint(personal_filing()));
    let piece = altered
        .content
        .iter_mut()
        .find(|piece| piece.text == PERSONAL)
        .unwrap();
    piece.text = PERSONAL.replace("14", "41");
    let refused = app.post("/v1/complaints", &altered).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.problem_type(), "urn:veche:problem:content-mismatch");

    let mut missing = app.sign(&citizen, Action::FileComplaint(personal_filing()));
    missing.content.pop();
    let refused = app.post("/v1/complaints", &missing).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.problem_type(), "urn:veche:problem:content-mismatch");

    let mut extra = app.sign(&citizen, Action::FileComplaint(personal_filing()));
    let mut stray = extra.content[0].clone();
    stray.salt[0] ^= 1;
    extra.content.push(stray);
    let refused = app.post("/v1/complaints", &extra).await;
    assert_eq!(refused.problem_type(), "urn:veche:problem:content-mismatch");

    // Text that matches its commitment still obeys the field's rules.
    let blank = ComplaintFiling {
        description: commit(" "),
        ..streetlight_filing("Tverskoy")
    };
    let refused = app.act(&citizen, Action::FileComplaint(blank)).await;
    assert_eq!(
        refused.problem_type(),
        "urn:veche:problem:invalid-complaint"
    );

    assert_eq!(
        app.log_size().await,
        size,
        "a refused complaint grew the log"
    );
    assert_eq!(
        content_rows(directory.path()),
        stored,
        "a refused complaint stored content"
    );
    app.stop().await;
}

#[actix_web::test]
async fn the_same_text_committed_twice_gives_two_commitments() {
    let first = commit(PERSONAL);
    let second = commit(PERSONAL);
    assert_ne!(first, second);
    assert_eq!(CONTENT.text(&first), CONTENT.text(&second));
}
