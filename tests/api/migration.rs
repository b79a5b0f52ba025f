//! Moving a city between stores and backing it up: `veche export`, `veche import` and
//! `veche backup` run as an operator runs them, against a log with content and an erasure.

use std::path::Path;
use std::process::Output;

use projections::command::{ComplaintFiling, ContentReference};
use projections::Action;

use crate::harness::{
    assert_data_directory_verifies, commit, files_holding, lighting, streetlight_filing, TestApp,
};

const ERASED: &str = "Marina Sokolova, 12 Povarskaya St: the lamp outside my window is out.";
const KEPT: &str = "The lamp at the corner of Sadovaya and Tverskaya flickers all night.";

/// Runs `veche` with `arguments`.
fn veche(arguments: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_veche"))
        .args(arguments)
        .output()
        .unwrap()
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `veche export --data-dir D --out E`, `veche import --data-dir D --from E` and the like,
/// asking for the JSON summary.
fn migrate(subcommand: &str, data_directory: &Path, flag: &str, other: &Path) -> Output {
    veche(&[
        subcommand,
        "--data-dir",
        text(data_directory),
        flag,
        text(other),
        "--json",
    ])
}

fn assert_succeeded(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A city with a category, two complaints (one erased by its author) and a poll with ballots.
/// Returns the paths whose answers a moved copy must serve byte for byte.
async fn city(app: &TestApp) -> Vec<String> {
    app.act_ok(&app.admin, Action::DefineCategory(lighting()))
        .await;
    let citizen = app.citizen().await;
    let mut complaints = Vec::new();
    for words in [ERASED, KEPT] {
        let filing = Action::FileComplaint(ComplaintFiling {
            description: commit(words),
            ..streetlight_filing("Arbat")
        });
        complaints.push(app.act_ok(&citizen, filing).await);
    }
    let erase = Action::EraseContent(ContentReference {
        entry: complaints[0],
    });
    app.act_ok(&citizen, erase).await;
    let poll = app.poll_with_ballots(5).await;
    let mut paths = vec![
        "/v1/log".to_string(),
        format!("/v1/polls/{poll}/tally"),
        "/v1/statistics/complaints".to_string(),
        "/v1/content?from=0&limit=256".to_string(),
        "/open311/v2/requests.json".to_string(),
    ];
    paths.extend(complaints.iter().map(|id| format!("/v1/complaints/{id}")));
    paths
}

async fn answers(app: &TestApp, paths: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for path in paths {
        found.push(app.get_text(path).await);
    }
    found
}

/// A new data directory holding only `source`'s server and admin keys, as an operator moving a
/// node would carry them.
fn keys_only(source: &Path) -> tempfile::TempDir {
    let target = tempfile::tempdir().unwrap();
    for name in [
        veche::server::SERVER_KEY_FILE,
        veche::server::ADMIN_KEY_FILE,
    ] {
        std::fs::copy(source.join(name), target.path().join(name)).unwrap();
    }
    target
}

#[actix_web::test]
async fn an_exported_log_imports_into_an_empty_store_and_serves_the_same_answers() {
    let source = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(source.path()).await;
    let paths = city(&app).await;
    let before = answers(&app, &paths).await;
    let clock = app.clock.clone();
    app.stop().await;

    let export = tempfile::tempdir().unwrap();
    let exported = migrate("export", source.path(), "--out", export.path());
    assert_succeeded("export", &exported);
    let summary: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(summary["entries_with_content"], 2, "{summary}");
    assert!(
        files_holding(export.path(), b"Sokolova").is_empty(),
        "erased text was exported"
    );
    assert_eq!(
        files_holding(export.path(), b"Sadovaya").len(),
        1,
        "kept text travels"
    );

    let target = keys_only(source.path());
    let imported = migrate("import", target.path(), "--from", export.path());
    assert_succeeded("import", &imported);
    let moved: serde_json::Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert_eq!(moved["entries"], summary["entries"]);
    assert_eq!(moved["root"], summary["root"]);

    let app = TestApp::spawn_with_clock(target.path(), clock).await;
    let after = answers(&app, &paths).await;
    app.stop().await;
    for ((path, before), after) in paths.iter().zip(&before).zip(&after) {
        assert_eq!(before, after, "{path} differs after the move");
    }
    assert!(files_holding(target.path(), b"Sokolova").is_empty());
    assert_data_directory_verifies(target.path());
}

/// Flips one byte of `file` at `offset` from its end.
fn flip_from_end(file: &Path, offset: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes.len() - offset;
    bytes[at] ^= 0x01;
    std::fs::write(file, bytes).unwrap();
}

/// What a case alters in an export, and the word its refusal must name.
type AlteredExport = (&'static str, fn(&Path), &'static str);

#[actix_web::test]
async fn an_altered_export_or_content_bundle_is_refused_and_nothing_is_imported() {
    let source = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(source.path()).await;
    city(&app).await;
    app.stop().await;
    let cases: [AlteredExport; 2] = [
        (
            "an entry's byte",
            |export| flip_from_end(&export.join(veche::migration::EXPORT_LOG_FILE), 40),
            "position",
        ),
        (
            "a kept text",
            |export| {
                let bundle = export.join(veche::migration::EXPORT_CONTENT_FILE);
                let altered = std::fs::read_to_string(&bundle)
                    .unwrap()
                    .replace("flickers", "flickerz");
                std::fs::write(bundle, altered).unwrap();
            },
            "content",
        ),
    ];
    for (what, alter, named) in cases {
        let export = tempfile::tempdir().unwrap();
        let exported = migrate("export", source.path(), "--out", export.path());
        assert_succeeded("export", &exported);
        alter(export.path());
        let target = keys_only(source.path());
        let imported = migrate("import", target.path(), "--from", export.path());
        let stderr = String::from_utf8_lossy(&imported.stderr);
        assert!(
            !imported.status.success(),
            "{what}: the import went through"
        );
        assert!(
            stderr.contains("nothing was imported") && stderr.contains(named),
            "{what}: {stderr}"
        );
        let log = target.path().join(veche::server::LOG_FILE);
        let store = veche::store::SqliteStore::open(&log).unwrap();
        assert_eq!(
            veche::store::EventStore::size(&store).unwrap(),
            0,
            "{what}: entries were appended"
        );
    }
}

#[actix_web::test]
async fn a_backup_of_a_node_taken_while_it_writes_verifies_and_serves() {
    let source = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(source.path()).await;
    city(&app).await;
    let acknowledged = app.log_size().await;
    let writing = async {
        for _ in 0..20 {
            app.citizen().await;
        }
    };
    let copy = tempfile::tempdir().unwrap();
    let out = copy.path().join("backup");
    let source_path = source.path().to_path_buf();
    let out_path = out.clone();
    let backup = tokio::task::spawn_blocking(move || {
        veche(&[
            "backup",
            "--data-dir",
            text(&source_path),
            "--out",
            text(&out_path),
        ])
    });
    let (_, backed_up) = tokio::join!(writing, backup);
    let backed_up = backed_up.unwrap();
    assert_succeeded("backup", &backed_up);
    app.stop().await;

    let store = veche::store::SqliteStore::open(&out.join(veche::server::LOG_FILE)).unwrap();
    let size = veche::store::EventStore::size(&store).unwrap();
    drop(store);
    assert!(
        size >= acknowledged,
        "the backup holds {size} of {acknowledged} acknowledged entries"
    );
    assert_data_directory_verifies(&out);
    let restored = TestApp::spawn(&out).await;
    assert_eq!(restored.log_size().await, size);
    restored.stop().await;
}

/// Moves the data directory's SQLite log to a fresh PostgreSQL schema with `veche export` and
/// `veche import`, starts a server on it, and insists every path of `answers` is served byte for
/// byte as before. Without `DATABASE_URL` it says why it skipped, except under `CI=true`.
pub async fn moves_to_postgresql_with_identical_answers(
    directory: &Path,
    clock: std::sync::Arc<veche::clock::ManualClock>,
    answers: &std::collections::BTreeMap<String, String>,
) {
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "DATABASE_URL is not set: the migration to PostgreSQL cannot run in CI without it"
            )
        }
        _ => {
            eprintln!("skipped the migration to PostgreSQL: DATABASE_URL is not set");
            return;
        }
    };
    let mut unique = [0u8; 8];
    veche::keys::Entropy::fill(&veche::keys::OsEntropy, &mut unique);
    let schema = format!("veche_migration_{}", hex::encode(unique));
    crate::harness::postgres_batch(&url, format!("CREATE SCHEMA {schema}"));
    let separator = if url.contains('?') { '&' } else { '?' };
    let store_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");

    let export = tempfile::tempdir().unwrap();
    let exported = migrate("export", directory, "--out", export.path());
    assert_succeeded("export", &exported);
    let imported = veche(&[
        "import",
        "--data-dir",
        text(directory),
        "--store",
        &store_url,
        "--from",
        text(export.path()),
        "--json",
    ]);
    assert_succeeded("import into PostgreSQL", &imported);
    let moved: serde_json::Value = serde_json::from_slice(&imported.stdout).unwrap();
    let exported: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(moved["root"], exported["root"]);

    let owned = (url.clone(), schema.clone());
    let store = tokio::task::spawn_blocking(move || {
        veche::store::PostgresStore::open(&owned.0, Some(&owned.1)).unwrap()
    })
    .await
    .unwrap();
    let app = TestApp::spawn_on_store(directory, clock, Some(std::sync::Arc::new(store))).await;
    for (path, before) in answers {
        let after = app.get_text(path).await;
        assert!(
            after == *before,
            "{path} changed on PostgreSQL:\nbefore {before}\nafter  {after}"
        );
    }
    app.stop().await;
    eprintln!(
        "migrated {} entries to PostgreSQL: export {:.2} s, import {:.2} s; {} answers identical",
        moved["entries"],
        exported["seconds"].as_f64().unwrap_or(0.0),
        moved["seconds"].as_f64().unwrap_or(0.0),
        answers.len()
    );
    tokio::task::spawn_blocking(move || {
        crate::harness::postgres_batch(&url, format!("DROP SCHEMA {schema} CASCADE"))
    })
    .await
    .unwrap();
}
