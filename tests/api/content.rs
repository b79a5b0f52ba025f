//! Content beside the log: the signed payload carries commitments, the text travels beside it,
//! reads serve the text, and content that does not match its commitments stores nothing.

use projections::command::{
    ComplaintFiling, ContentReference, ProposalSubmission, Redaction, RedactionReason,
    RejectionReason, Role, Supplement, Triage, TriageDecision,
};
use projections::Action;

use crate::harness::{
    assert_data_directory_verifies, commit, files_holding, lighting, streetlight_filing, TestApp,
    CONTENT,
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

/// Rows of `table` whose `column` holds `text`, read from the data directory's database.
fn rows_holding(directory: &std::path::Path, table: &str, column: &str, text: &str) -> i64 {
    let connection = rusqlite::Connection::open(directory.join(veche::server::LOG_FILE)).unwrap();
    let query = format!("SELECT count(*) FROM {table} WHERE instr({column}, ?1) > 0");
    let count = connection.query_row(&query, [text.as_bytes()], |row| row.get(0));
    count.unwrap()
}

fn log_rows_mentioning(directory: &std::path::Path, text: &str) -> i64 {
    rows_holding(directory, "events", "entry", text)
}

/// A moderator's rejection of `complaint` as spam that redacts it in the same entry.
fn reject_as_spam(complaint: u64) -> Action {
    Action::TriageComplaint(Triage {
        complaint,
        decision: TriageDecision::Reject {
            rejection: RejectionReason::Spam {
                redact_content: true,
            },
        },
    })
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

/// The personal complaint and a proposal with `title` and `body`, both by `citizen`: their ids.
async fn file_both(
    app: &TestApp,
    citizen: &ed25519_dalek::SigningKey,
    title: &str,
    body: &str,
) -> (u64, u64) {
    let complaint = Action::FileComplaint(personal_filing());
    let complaint = app.act_ok(citizen, complaint).await;
    let proposal = Action::SubmitProposal(ProposalSubmission {
        title: commit(title),
        body: commit(body),
        category: "street-lighting".into(),
        district: None,
    });
    (complaint, app.act_ok(citizen, proposal).await)
}

#[actix_web::test]
async fn a_complaints_personal_details_are_served_from_beside_the_log_and_never_enter_it() {
    let (directory, app, citizen) = city().await;
    let (complaint, proposal) = file_both(
        &app,
        &citizen,
        "A lamp on every porch",
        "Asked for by Ivan Petrov of flat 14.",
    )
    .await;

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

#[actix_web::test]
async fn an_author_erases_and_a_moderator_redacts_and_only_a_placeholder_and_the_numbers_remain() {
    let (directory, app, citizen) = city().await;
    let moderator = app.citizen().await;
    app.grant(&moderator, Role::Moderator, None).await;
    let title = "Lamps for the courtyard of Olga Ivanova";
    let (complaint, proposal) = file_both(
        &app,
        &citizen,
        title,
        "She lives at 3 Tverskaya St, flat 9.",
    )
    .await;
    let spam = Action::FileComplaint(ComplaintFiling {
        description: commit("Buy cheap watches from Sergei Orlov at +7 900 555 00 11"),
        ..streetlight_filing("Arbat")
    });
    let spam = app.act_ok(&citizen, spam).await;
    let statistics = app.get_text("/v1/statistics/complaints").await;
    let rejection = app.act_ok(&moderator, reject_as_spam(spam)).await;
    let statistics = (statistics, app.get_text("/v1/statistics/complaints").await);

    let erase = Action::EraseContent(ContentReference { entry: complaint });
    let erasure = app.act_ok(&citizen, erase).await;
    let redact = Action::RedactContent(Redaction {
        entry: proposal,
        reason: RedactionReason::ThirdPartyPersonalData,
    });
    let stranger = app.act(&citizen, redact.clone()).await;
    assert_eq!(stranger.problem_type(), "urn:veche:problem:not-moderator");
    let redaction = app.act_ok(&moderator, redact).await;
    let again = Action::EraseContent(ContentReference { entry: complaint });
    let again = app.act(&citizen, again).await;
    assert_eq!(
        again.problem_type(),
        "urn:veche:problem:content-already-erased"
    );

    let served = app.get(&format!("/v1/complaints/{complaint}")).await.body;
    let placeholder = format!("[erased by entry {erasure}]");
    assert_eq!(served["description"], placeholder.as_str());
    assert_eq!(served["location"]["address"], placeholder.as_str());
    let open311 = app
        .get(&format!("/open311/v2/requests/{complaint}.json"))
        .await
        .body;
    assert_eq!(open311[0]["description"], placeholder.as_str());
    let served = app.get(&format!("/v1/proposals/{proposal}")).await.body;
    assert_eq!(
        served["body"],
        format!("[erased by entry {redaction}]").as_str()
    );
    let spam_placeholder = format!("[erased by entry {rejection}]");
    let served = app.get(&format!("/v1/complaints/{spam}")).await.body;
    assert_eq!(served["status"], "rejected");
    assert_eq!(served["description"], spam_placeholder.as_str());
    let open311 = app.get(&format!("/open311/v2/requests/{spam}.json")).await;
    assert_eq!(open311.body[0]["description"], spam_placeholder.as_str());
    let held = app
        .get(&format!("/v1/content?from={spam}&limit=1"))
        .await
        .body;
    let pieces = held["entries"][0]["pieces"].as_array().unwrap().clone();
    assert!(pieces.iter().all(|piece| piece["erased_by"] == rejection
        && piece.get("text").is_none()
        && piece.get("salt").is_none()));
    // The spam rejection's own numbers were counted when it was appended; erasing and redacting
    // content afterwards changes none.
    assert_ne!(statistics.0, statistics.1, "the rejection is counted");
    assert_eq!(
        app.get_text("/v1/statistics/complaints").await,
        statistics.1
    );
    // As `veche serve` does when stopped: the snapshot, searched below with every other file.
    let snapshot = app.node.write_snapshot().await.unwrap();
    assert!(snapshot.is_some(), "the stopping node wrote its snapshot");
    app.stop().await;

    for text in ["Petrov", "Tverskaya", "Ivanova", "Orlov"] {
        let stored = rows_holding(directory.path(), "content", "CAST(text AS BLOB)", text);
        assert_eq!(stored, 0, "{text} is still stored");
        assert_eq!(log_rows_mentioning(directory.path(), text), 0);
        let holding = files_holding(directory.path(), text.as_bytes());
        assert!(holding.is_empty(), "{text} is still in {holding:?}");
    }
    let snapshot = directory.path().join(veche::snapshot::SNAPSHOT_FILE);
    assert!(snapshot.exists(), "the snapshot was searched");
    assert_data_directory_verifies(directory.path());
}

#[actix_web::test]
async fn a_supplements_words_show_in_the_timeline_until_their_author_erases_them() {
    let (_directory, app, citizen) = city().await;
    let moderator = app.citizen().await;
    app.grant(&moderator, Role::Moderator, None).await;
    let complaint = app
        .act_ok(&citizen, Action::FileComplaint(personal_filing()))
        .await;
    let question = Action::TriageComplaint(Triage {
        complaint,
        decision: TriageDecision::NeedsInfo {
            question: "Which lamp exactly?".into(),
        },
    });
    app.act_ok(&moderator, question).await;
    let words = "The one by flat 14, where Ivan Petrov lives.";
    let supplement = Action::SupplementComplaint(Supplement {
        complaint,
        text: commit(words),
        attachments: Vec::new(),
    });
    let supplemented = app.act_ok(&citizen, supplement).await;

    let note_of = |served: &serde_json::Value, position: u64| {
        let steps = served["timeline"].as_array().unwrap().clone();
        let step = steps.into_iter().find(|step| step["position"] == position);
        step.expect("the step is in the timeline")["note"].clone()
    };
    let path = format!("/v1/complaints/{complaint}");
    let served = app.get(&path).await.body;
    assert_eq!(note_of(&served, supplemented), words);
    let asked = served["timeline"][1]["note"].clone();
    assert_eq!(
        asked, "Which lamp exactly?",
        "a moderator's question is clear"
    );

    let erase = Action::EraseContent(ContentReference {
        entry: supplemented,
    });
    let erasure = app.act_ok(&citizen, erase).await;
    let served = app.get(&path).await.body;
    let placeholder = format!("[erased by entry {erasure}]");
    assert_eq!(note_of(&served, supplemented), placeholder.as_str());
    assert_eq!(
        served["description"], PERSONAL,
        "only the supplement was erased"
    );
    app.stop().await;
}
