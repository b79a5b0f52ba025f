//! The public audit: receipts with inclusion proofs, checkpoints pinned by poll closes, and
//! `veche verify` catching every kind of tampering with an export, naming the position.

use std::path::Path;

use projections::checkpoint::{open_note, Checkpoint, NoteVerifier};
use projections::merkle::{verify_consistency, verify_inclusion};
use veche::transparency::hash_from_base64;
use veche::verification::{verify_export, Options, Published, Report, SavedState};

use crate::harness::{TestApp, MINUTE_MS};

fn hashes(values: &serde_json::Value) -> Vec<[u8; 32]> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|value| hash_from_base64(value.as_str().unwrap()).unwrap())
        .collect()
}

async fn verifier_of(app: &TestApp) -> NoteVerifier {
    let head = app.get("/v1/log").await.body;
    NoteVerifier::parse(head["verifier_key"].as_str().unwrap()).unwrap()
}

async fn export_of(app: &TestApp) -> Vec<u8> {
    let response = app.get_response("/v1/log/export").await;
    response.bytes().await.unwrap().to_vec()
}

/// The published numbers and the export of the server at `base`, downloaded by the journalist's
/// crate's blocking client (off the async runtime, which it must not block).
async fn fetched_as_the_verifier_does(base: String) -> (Published, Vec<u8>) {
    tokio::task::spawn_blocking(move || {
        let client = reqwest::blocking::Client::new();
        let published = veche_verifier::published::fetch_published(&client, &base).unwrap();
        let export = client
            .get(format!("{base}/v1/log/export"))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec();
        (published, export)
    })
    .await
    .unwrap()
}

fn options(verifier: NoteVerifier, previous: Option<SavedState>) -> Options {
    Options {
        verifier,
        previous,
        strict_signatures: false,
        threads: 2,
        keep_leaf_hashes: true,
    }
}

fn verify_bytes(export: &[u8], options: &Options, published: &Published) -> Report {
    let mut input = export;
    verify_export(&mut input, options, published, &mut |_, _| {})
}

/// Splits an export into its checkpoint record and its entry records.
fn records(export: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut rest = export;
    let mut all = Vec::new();
    while !rest.is_empty() {
        let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        all.push(rest[2..2 + length].to_vec());
        rest = &rest[2 + length..];
    }
    let checkpoint = all.remove(0);
    (checkpoint, all)
}

fn join(checkpoint: &[u8], entries: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for record in std::iter::once(checkpoint).chain(entries.iter().map(Vec::as_slice)) {
        bytes.extend_from_slice(&(record.len() as u16).to_be_bytes());
        bytes.extend_from_slice(record);
    }
    bytes
}

/// A fresh server with a two-option poll open, and the verifier of its log's checkpoints.
async fn open_poll_and_log_verifier() -> (TestApp, NoteVerifier, u64) {
    let app = TestApp::fresh().await;
    let verifier = verifier_of(&app).await;
    let official = app.official().await;
    let poll = app.open_standard_poll(&official, 2).await;
    (app, verifier, poll)
}

#[tokio::test]
async fn every_receipt_carries_a_checkpoint_and_an_inclusion_proof_that_verify() {
    let (app, verifier, poll) = open_poll_and_log_verifier().await;
    let mut receipts = Vec::new();
    for choice in 0..300u32 {
        let voter = app.citizen().await;
        let answer = app.vote(&voter, poll, vec![choice % 2]).await;
        assert_eq!(answer.status, 201);
        receipts.push(answer.body);
    }
    for receipt in receipts.iter().step_by(37).chain(receipts.last()) {
        let body = open_note(receipt["checkpoint"].as_str().unwrap(), &verifier).unwrap();
        let checkpoint = Checkpoint::parse_body(&body).unwrap();
        assert_eq!(checkpoint.size, receipt["tree_size"].as_u64().unwrap());
        let position = receipt["position"].as_u64().unwrap();
        assert!(position < checkpoint.size);
        let leaf = hash_from_base64(receipt["leaf_hash"].as_str().unwrap()).unwrap();
        verify_inclusion(
            &leaf,
            position,
            checkpoint.size,
            &hashes(&receipt["inclusion_proof"]),
            &checkpoint.root,
        )
        .unwrap();
        let tlog_proof = receipt["tlog_proof"].as_str().unwrap();
        assert!(tlog_proof.starts_with(&format!("c2sp.org/tlog-proof@v1\nindex {position}\n")));
        assert!(tlog_proof.ends_with(receipt["checkpoint"].as_str().unwrap()));

        // Upgrading the receipt to the current checkpoint: inclusion in the new tree and
        // consistency with the old one.
        let upgraded = app
            .get(&format!(
                "/v1/receipts/{position}?since={}",
                checkpoint.size
            ))
            .await;
        assert_eq!(upgraded.status, 200, "{:?}", upgraded.body);
        let newer = Checkpoint::parse_body(
            &open_note(upgraded.body["checkpoint"].as_str().unwrap(), &verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(upgraded.body["entry_hash"], receipt["entry_hash"]);
        verify_inclusion(
            &leaf,
            position,
            newer.size,
            &hashes(&upgraded.body["inclusion_proof"]),
            &newer.root,
        )
        .unwrap();
        verify_consistency(
            checkpoint.size,
            newer.size,
            &hashes(&upgraded.body["consistency"]["proof"]),
            &checkpoint.root,
            &newer.root,
        )
        .unwrap();
    }
    // A proof for a size the log has not reached is a problem, not a guess.
    let beyond = app.get("/v1/log/proofs/consistency?from=1&to=999999").await;
    assert_eq!(beyond.status, 404);
    assert_eq!(beyond.problem_type(), "urn:veche:problem:beyond-tree-size");
    assert_eq!(beyond.content_type, "application/problem+json");
    app.stop().await;
}

#[tokio::test]
async fn the_proof_endpoints_prove_what_the_checkpoints_sign_and_refuse_impossible_proofs() {
    let (app, verifier, poll) = open_poll_and_log_verifier().await;
    let receipt = app.vote(&app.citizen().await, poll, vec![0]).await.body;
    for _ in 0..20 {
        app.vote(&app.citizen().await, poll, vec![1]).await;
    }
    let signed = |note: &serde_json::Value| {
        Checkpoint::parse_body(&open_note(note.as_str().unwrap(), &verifier).unwrap()).unwrap()
    };
    let old = signed(&receipt["checkpoint"]);
    let position = receipt["position"].as_u64().unwrap();
    let leaf = hash_from_base64(receipt["leaf_hash"].as_str().unwrap()).unwrap();

    // Inclusion of the first vote in the current tree, with the checkpoint that signs its root.
    let inclusion = app
        .get(&format!("/v1/log/proofs/inclusion?position={position}"))
        .await;
    assert_eq!(inclusion.status, 200, "{:?}", inclusion.body);
    let newer = signed(&inclusion.body["checkpoint"]);
    assert_eq!(inclusion.body["tree_size"].as_u64(), Some(newer.size));
    assert!(newer.size > old.size);
    let proof = hashes(&inclusion.body["proof"]);
    verify_inclusion(&leaf, position, newer.size, &proof, &newer.root).unwrap();

    // Consistency from the receipt's tree to the current one.
    let consistency = app
        .get(&format!("/v1/log/proofs/consistency?from={}", old.size))
        .await;
    assert_eq!(consistency.status, 200, "{:?}", consistency.body);
    assert_eq!(consistency.body["to_size"].as_u64(), Some(newer.size));
    let proof = hashes(&consistency.body["proof"]);
    verify_consistency(old.size, newer.size, &proof, &old.root, &newer.root).unwrap();

    for impossible in [
        format!("/v1/log/proofs/inclusion?position={0}&size={0}", old.size),
        "/v1/log/proofs/consistency?from=0".to_owned(),
        format!(
            "/v1/log/proofs/consistency?from={}&to={}",
            old.size,
            old.size - 1
        ),
    ] {
        let refused = app.get(&impossible).await;
        assert_eq!(refused.status, 400, "{impossible}: {:?}", refused.body);
        assert_eq!(refused.problem_type(), "urn:veche:problem:impossible-proof");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_poll_close_pins_a_checkpoint_that_the_server_signs_on_request() {
    let app = TestApp::fresh().await;
    let verifier = verifier_of(&app).await;
    let poll = app.poll_with_ballots(12).await;
    app.clock.advance_milliseconds(61 * MINUTE_MS);
    let closes = app.node.append_due_system_events().await.unwrap();
    assert_eq!(closes.len(), 1);
    let close_position = closes[0].appended.position;
    let entries = app
        .get(&format!("/v1/log/entries?from={close_position}&limit=1"))
        .await;
    let payload: serde_json::Value =
        serde_json::from_str(entries.body["entries"][0]["payload"].as_str().unwrap()).unwrap();
    let reference = &payload["body"]["checkpoint"];
    assert_eq!(payload["action"], "close_poll");
    assert_eq!(payload["body"]["poll"], poll);
    assert_eq!(reference["size"], close_position);
    let note = app
        .get(&format!("/v1/log/checkpoint?size={close_position}"))
        .await;
    assert_eq!(note.status, 200);
    let checkpoint =
        Checkpoint::parse_body(&open_note(note.body.as_str().unwrap(), &verifier).unwrap())
            .unwrap();
    assert_eq!(checkpoint.size, close_position);
    assert_eq!(
        hex::encode(checkpoint.root),
        reference["root"].as_str().unwrap()
    );
    app.stop().await;
}

#[tokio::test]
async fn verify_recounts_a_served_log_and_agrees_with_every_published_number() {
    let app = TestApp::fresh().await;
    app.poll_with_ballots(9).await;
    app.clock.advance_milliseconds(61 * MINUTE_MS);
    app.node.append_due_system_events().await.unwrap();
    app.poll_with_ballots(4).await;
    let verifier = verifier_of(&app).await;
    let base = app.address.clone();
    let (published, export) = fetched_as_the_verifier_does(base).await;
    let report = verify_bytes(&export, &options(verifier, None), &published);
    assert!(report.ok, "{:?}", report.failure);
    assert_eq!(report.polls_recounted, 2);
    // Two tallies of five numbers each, plus every leaf of the statistics report.
    assert!(report.published_numbers_compared > 10, "{report:?}");
    assert_eq!(report.entries_verified, app.log_size().await);
    app.stop().await;
}

#[tokio::test]
async fn verify_names_a_published_number_that_the_recount_contradicts() {
    let app = TestApp::fresh().await;
    let poll = app.poll_with_ballots(6).await;
    let verifier = verifier_of(&app).await;
    let export = export_of(&app).await;
    let size = app.log_size().await;
    let mut tally = app.get(&format!("/v1/polls/{poll}/tally")).await.body;
    tally["turnout"] = serde_json::json!(7);
    let mut published = Published::default();
    published.tallies.insert(size, vec![tally]);
    let report = verify_bytes(&export, &options(verifier, None), &published);
    let failure = report.failure.expect("an inflated turnout must be caught");
    assert!(
        failure.reason.contains(&format!("poll {poll}")) && failure.reason.contains("turnout"),
        "{failure}"
    );
    app.stop().await;
}

/// A category taking proposals, and one proposal in it by a fresh citizen (awaiting moderation).
async fn submitted_proposal(app: &TestApp) -> u64 {
    use projections::command::{CategoryDefinition, ProposalSubmission};
    use projections::Action;
    app.act_ok(
        &app.admin,
        Action::DefineCategory(CategoryDefinition {
            id: "benches".into(),
            name: "Benches".into(),
            department: "parks".into(),
            sla_working_days: 5,
            confirmation_window_days: 3,
            support_threshold: 3,
            proposal_lifetime_days: 30,
            supports_from_residents_only: false,
        }),
    )
    .await;
    let author = app.citizen().await;
    app.act_ok(
        &author,
        Action::SubmitProposal(ProposalSubmission {
            title: crate::harness::commit("A bench by the pond"),
            body: crate::harness::commit("The path round the pond has nowhere to sit."),
            category: "benches".into(),
            district: None,
        }),
    )
    .await
}

#[tokio::test]
async fn verify_compares_every_proposal_standing_and_names_a_forged_one() {
    let app = TestApp::fresh().await;
    let proposal = submitted_proposal(&app).await;
    let verifier = verifier_of(&app).await;
    let base = app.address.clone();
    let (published, export) = fetched_as_the_verifier_does(base).await;
    let size = app.log_size().await;
    let standings = published
        .proposals
        .get(&size)
        .expect("standings at the log's size");
    assert_eq!(standings.len(), 1, "{standings:?}");
    let clean = verify_bytes(&export, &options(verifier.clone(), None), &published);
    assert!(clean.ok, "{:?}", clean.failure);

    for (field, forged) in [
        ("supports", serde_json::json!(40)),
        ("status", serde_json::json!("accepted")),
    ] {
        let mut standing = standings[0].clone();
        standing[field] = forged;
        let mut forged_published = Published::default();
        forged_published.proposals.insert(size, vec![standing]);
        let report = verify_bytes(&export, &options(verifier.clone(), None), &forged_published);
        let failure = report.failure.expect("a forged standing must be caught");
        assert!(
            failure.reason.contains(&format!("proposal {proposal}"))
                && failure.reason.contains(field),
            "{failure}"
        );
    }

    // A server that hides a proposal the log holds is caught too.
    let mut hiding = Published::default();
    hiding.proposals.insert(size, Vec::new());
    let report = verify_bytes(&export, &options(verifier, None), &hiding);
    let failure = report.failure.expect("a hidden proposal must be caught");
    assert!(
        failure.reason.contains(&format!("proposal {proposal}")),
        "{failure}"
    );
    app.stop().await;
}

/// One way to tamper with an export, and what `verify` must say.
struct Tampering {
    name: &'static str,
    edit: fn(&mut Vec<u8>, &mut Vec<Vec<u8>>, &[u8]),
    position: Option<u64>,
    reason: &'static str,
}

#[tokio::test]
async fn verify_fails_on_every_tampering_and_names_the_position_and_the_reason() {
    let directory = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(directory.path()).await;
    app.poll_with_ballots(10).await;
    let verifier = verifier_of(&app).await;
    let older_export = export_of(&app).await;
    app.poll_with_ballots(3).await;
    let export = export_of(&app).await;
    let clean = verify_bytes(
        &export,
        &options(verifier.clone(), None),
        &Published::default(),
    );
    assert!(
        clean.ok,
        "the untouched export verifies: {:?}",
        clean.failure
    );
    let (older_checkpoint, _) = records(&older_export);

    let cases = [
        Tampering {
            name: "one byte of a ballot's payload changed",
            edit: |_, entries, _| {
                let last = entries[12].len() - 3;
                entries[12][last] ^= 0x01;
            },
            position: Some(12),
            reason: "signature",
        },
        Tampering {
            name: "one byte of an entry's link to the entry before changed",
            edit: |_, entries, _| entries[7][20] ^= 0x01,
            position: Some(7),
            reason: "previous-hash link",
        },
        Tampering {
            name: "an entry deleted",
            edit: |_, entries, _| {
                entries.remove(5);
            },
            position: Some(5),
            reason: "says it is at position 6",
        },
        Tampering {
            name: "two entries swapped",
            edit: |_, entries, _| entries.swap(9, 10),
            position: Some(9),
            reason: "says it is at position 10",
        },
        Tampering {
            name: "the log truncated",
            edit: |_, entries, _| entries.truncate(entries.len() - 4),
            position: None,
            reason: "the log ends here",
        },
        Tampering {
            name: "the checkpoint replaced by an older genuine one",
            edit: |checkpoint, _, older| *checkpoint = older.to_vec(),
            position: None,
            reason: "beyond the checkpoint",
        },
        Tampering {
            name: "the checkpoint's root replaced",
            edit: |checkpoint, _, _| {
                let text = String::from_utf8(checkpoint.clone()).unwrap();
                let mut lines: Vec<&str> = text.split('\n').collect();
                lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
                *checkpoint = lines.join("\n").into_bytes();
            },
            position: None,
            reason: "signature does not verify",
        },
    ];
    for case in &cases {
        let (mut checkpoint, mut entries) = records(&export);
        (case.edit)(&mut checkpoint, &mut entries, &older_checkpoint);
        let report = verify_bytes(
            &join(&checkpoint, &entries),
            &options(verifier.clone(), None),
            &Published::default(),
        );
        let failure = report
            .failure
            .unwrap_or_else(|| panic!("{}: verify must fail", case.name));
        let expected_position = match (case.name, case.position) {
            ("the log truncated", _) => Some(entries.len() as u64),
            ("the checkpoint replaced by an older genuine one", _) => {
                Some(records(&older_export).1.len() as u64)
            }
            (_, position) => position,
        };
        assert_eq!(
            failure.position, expected_position,
            "{}: {failure}",
            case.name
        );
        assert!(
            failure.reason.contains(case.reason),
            "{}: {failure}",
            case.name
        );
    }
    app.stop().await;
}

/// Copies a stopped server's data directory, so two servers share a past and then diverge.
fn copy_directory(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        match std::fs::copy(entry.path(), to.join(entry.file_name())) {
            Ok(_) => {}
            // SQLite removes its `-shm` and `-wal` files when the stopped server's last connection
            // closes, which may fall between listing and copying: a removed file held nothing.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => panic!("copying {}: {error}", entry.path().display()),
        }
    }
}

#[tokio::test]
async fn verify_detects_a_log_forked_after_a_saved_checkpoint_and_names_the_first_divergent_entry()
{
    let original = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(original.path()).await;
    app.poll_with_ballots(5).await;
    let shared_size = app.log_size().await;
    let clock = app.clock.clone();
    app.stop().await;
    let fork = tempfile::tempdir().unwrap();
    copy_directory(original.path(), fork.path());

    // The honest log grows; a journalist saves its checkpoint.
    let honest = TestApp::spawn_with_clock(original.path(), clock.clone()).await;
    honest.poll_with_ballots(3).await;
    let verifier = verifier_of(&honest).await;
    let first_run = verify_bytes(
        &export_of(&honest).await,
        &options(verifier.clone(), None),
        &Published::default(),
    );
    assert!(first_run.ok, "{:?}", first_run.failure);
    let saved = first_run.state.unwrap();
    let saved = SavedState::decode(&saved.encode(), &verifier).unwrap();
    honest.stop().await;

    // The same server key serves a different history from the shared point on.
    let forked = TestApp::spawn_with_clock(fork.path(), clock).await;
    forked.poll_with_ballots(6).await;
    let report = verify_bytes(
        &export_of(&forked).await,
        &options(verifier.clone(), Some(saved.clone())),
        &Published::default(),
    );
    let failure = report.failure.expect("a fork must be caught");
    assert_eq!(failure.position, Some(shared_size), "{failure}");
    assert!(failure.reason.contains("forked"), "{failure}");

    // With only the bare checkpoint note saved, the fork is still caught at the saved size.
    let bare = SavedState::decode(saved.note.as_bytes(), &verifier).unwrap();
    let report = verify_bytes(
        &export_of(&forked).await,
        &options(verifier, Some(bare)),
        &Published::default(),
    );
    let failure = report
        .failure
        .expect("a fork must be caught from the note alone");
    assert_eq!(
        failure.position,
        Some(saved.checkpoint.size - 1),
        "{failure}"
    );
    assert!(failure.reason.contains("forked"), "{failure}");
    forked.stop().await;
}
