//! The log verifies without its content (issue 15, section 3): `/v1/content` serves what is still
//! held with its salts, and `veche verify --server` hashes every piece against its commitment and
//! requires every piece not served to have been erased by an entry of the log.

use std::path::Path;

use projections::command::{
    ContentReference, ProposalSubmission, Redaction, RedactionReason, Role,
};
use projections::Action;

use crate::harness::{commit, lighting, streetlight_filing, TestApp};

/// Positions of a city's three entries with content: an erased complaint, a redacted proposal
/// and a complaint still held.
pub(crate) struct Entries {
    pub erased: u64,
    pub redacted: u64,
    pub kept: u64,
}

/// A server with a complaint its author erased, a proposal a moderator redacted and a
/// complaint whose content is still held.
pub(crate) async fn city_with_erasures(directory: &Path) -> (TestApp, Entries) {
    let app = TestApp::spawn(directory).await;
    let defined = app
        .act(&app.admin, Action::DefineCategory(lighting()))
        .await;
    assert_eq!(defined.status, 201);
    let citizen = app.citizen().await;
    let moderator = app.citizen().await;
    app.grant(&moderator, Role::Moderator, None).await;
    let filing = || Action::FileComplaint(streetlight_filing("Tverskoy"));
    let erased = app.act_ok(&citizen, filing()).await;
    let proposal = Action::SubmitProposal(ProposalSubmission {
        title: commit("Lamps for the courtyard of Olga Ivanova"),
        body: commit("She lives at 3 Tverskaya St, flat 9."),
        category: "street-lighting".into(),
        district: None,
    });
    let redacted = app.act_ok(&citizen, proposal).await;
    let kept = app.act_ok(&citizen, filing()).await;
    let erase = Action::EraseContent(ContentReference { entry: erased });
    app.act_ok(&citizen, erase).await;
    let redact = Action::RedactContent(Redaction {
        entry: redacted,
        reason: RedactionReason::ThirdPartyPersonalData,
    });
    app.act_ok(&moderator, redact).await;
    let entries = Entries {
        erased,
        redacted,
        kept,
    };
    (app, entries)
}

/// The log's verifier key, as `/v1/log` publishes it.
async fn log_key(app: &TestApp) -> String {
    let log = app.get("/v1/log").await.body;
    log["verifier_key"].as_str().unwrap().to_string()
}

/// Runs `veche verify --server address`, content included, with the key `address` publishes.
pub(crate) async fn verify_address(address: &str) -> (bool, String) {
    let log: serde_json::Value = reqwest::get(format!("{address}/v1/log"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = log["verifier_key"].as_str().unwrap();
    let arguments = ["--server", address, "--log-key", key];
    verify(arguments.map(str::to_string).to_vec()).await
}

/// Runs `veche verify` with `arguments`: whether it passed, and its stderr.
async fn verify(arguments: Vec<String>) -> (bool, String) {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_veche"))
            .arg("verify")
            .args(arguments)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

/// Runs `veche verify --server` against `app`: whether it passed, and its stderr.
async fn verify_server(app: &TestApp) -> (bool, String) {
    let arguments = ["--server", &app.address, "--log-key", &log_key(app).await];
    verify(arguments.map(str::to_string).to_vec()).await
}

/// Runs `veche verify --server`, then, once `app` is stopped, `veche verify --data-dir` on its
/// `directory`: each must fail naming `position` and `reason`.
async fn fails_at(app: TestApp, directory: &Path, position: u64, reason: &str) {
    let (passed, stderr) = verify_server(&app).await;
    assert!(!passed, "verify passed a server with {reason}");
    let expected = format!("position {position}: {reason}");
    assert!(stderr.contains(&expected), "{stderr}");
    app.stop().await;
    let offline = crate::harness::verify_data_directory(directory);
    let stderr = String::from_utf8_lossy(&offline.stderr);
    assert!(
        !offline.status.success(),
        "verify --data-dir passed {reason}"
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

/// The city with `statement` run on the kept entry's content rows behind the running server's
/// back, as someone with file access would.
async fn tampered_city(statement: &str) -> (tempfile::TempDir, TestApp, Entries) {
    let directory = tempfile::tempdir().unwrap();
    let (app, entries) = city_with_erasures(directory.path()).await;
    let database = directory.path().join(veche::server::LOG_FILE);
    let connection = rusqlite::Connection::open(database).unwrap();
    let changed = connection
        .execute(statement, [entries.kept as i64])
        .unwrap();
    assert!(changed > 0, "{statement} changed no row");
    (directory, app, entries)
}

#[actix_web::test]
async fn an_honest_server_with_an_erased_and_a_redacted_entry_verifies_and_serves_what_it_holds() {
    let directory = tempfile::tempdir().unwrap();
    let (app, entries) = city_with_erasures(directory.path()).await;

    let page = app.get("/v1/content?from=0&limit=256").await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let served = page.body["entries"].as_array().unwrap();
    let at = |position: u64| {
        served
            .iter()
            .find(|entry| entry["position"] == position)
            .unwrap_or_else(|| panic!("no content served for entry {position}"))
    };
    for erased in [entries.erased, entries.redacted] {
        for piece in at(erased)["pieces"].as_array().unwrap() {
            assert!(
                piece["erased_by"].as_u64().unwrap() > entries.kept,
                "{piece}"
            );
            assert!(
                piece.get("text").is_none() && piece.get("salt").is_none(),
                "{piece}"
            );
        }
    }
    let kept = at(entries.kept)["pieces"].as_array().unwrap();
    assert_eq!(kept.len(), 2, "a description and an address");
    assert_eq!(
        kept[0]["text"],
        "The streetlight outside number 12 has been dark for a week."
    );
    assert_eq!(kept[0]["salt"].as_str().unwrap().len(), 32);

    let (passed, stderr) = verify_server(&app).await;
    assert!(passed, "{stderr}");
    app.stop().await;
}

#[actix_web::test]
async fn a_server_whose_content_lost_a_piece_without_an_erasure_fails_verification_at_its_entry() {
    let (directory, app, entries) = tampered_city("DELETE FROM content WHERE position = ?1").await;

    fails_at(app, directory.path(), entries.kept, "content withheld").await;
}

#[actix_web::test]
async fn a_server_serving_altered_content_fails_verification_at_its_entry() {
    let (directory, app, entries) =
        tampered_city("UPDATE content SET text = text || ' Fixed.' WHERE position = ?1").await;
    let served = app.get(&format!("/v1/complaints/{}", entries.kept)).await;
    assert!(served.body["description"]
        .as_str()
        .unwrap()
        .ends_with("Fixed."));

    fails_at(app, directory.path(), entries.kept, "content altered").await;
}

/// `veche verify --export` on `export` with the content `bundle` (when given).
async fn verify_export(export: &Path, bundle: Option<&Path>, key: &str) -> (bool, String) {
    let mut arguments = vec!["--export".into(), export.display().to_string()];
    arguments.extend(["--log-key".into(), key.to_string()]);
    if let Some(bundle) = bundle {
        arguments.extend(["--content".into(), bundle.display().to_string()]);
    }
    verify(arguments).await
}

#[actix_web::test]
async fn an_export_and_its_content_bundle_verify_each_on_its_own_and_a_changed_bundle_fails_at_its_entry(
) {
    let directory = tempfile::tempdir().unwrap();
    let (app, entries) = city_with_erasures(directory.path()).await;
    let (export, bundle) = (
        directory.path().join("log.export"),
        directory.path().join("content.json"),
    );
    let exported = reqwest::get(format!("{}/v1/log/export", app.address)).await;
    std::fs::write(&export, exported.unwrap().bytes().await.unwrap()).unwrap();
    let key = log_key(&app).await;
    let saving = [
        "--server",
        &app.address,
        "--log-key",
        &key,
        "--save-content",
    ];
    let mut saving = saving.map(str::to_string).to_vec();
    saving.push(bundle.display().to_string());
    let (passed, stderr) = verify(saving).await;
    assert!(passed, "{stderr}");
    app.stop().await;

    let (passed, stderr) = verify_export(&export, None, &key).await;
    assert!(passed, "the log alone: {stderr}");
    let (passed, stderr) = verify_export(&export, Some(&bundle), &key).await;
    assert!(passed, "the log and its content: {stderr}");

    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let kept = |entry: &serde_json::Value| entry["position"] == entries.kept;
    let mut altered = saved.clone();
    let entry = altered["entries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|entry| kept(entry))
        .unwrap();
    entry["pieces"][1]["text"] = "14 Tverskaya St".into();
    std::fs::write(&bundle, altered.to_string()).unwrap();
    let (passed, stderr) = verify_export(&export, Some(&bundle), &key).await;
    assert!(
        !passed && stderr.contains(&format!("position {}: content altered", entries.kept)),
        "{stderr}"
    );

    let mut withheld = saved;
    withheld["entries"]
        .as_array_mut()
        .unwrap()
        .retain(|entry| !kept(entry));
    std::fs::write(&bundle, withheld.to_string()).unwrap();
    let (passed, stderr) = verify_export(&export, Some(&bundle), &key).await;
    assert!(
        !passed && stderr.contains(&format!("position {}: content withheld", entries.kept)),
        "{stderr}"
    );
}
