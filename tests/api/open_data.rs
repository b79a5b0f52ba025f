//! Open data (issue 19, item 2): every export read back — CSV with the `csv` crate, GeoJSON and
//! JSON with serde_json — and held against the API's own numbers, its log size and checkpoint;
//! erased content in none of them; and a dump that verifies until one byte of one file changes.

use std::collections::BTreeMap;
use std::path::Path;

use projections::command::{CastBallot, TallyVisibility};
use projections::Action;
use serde_json::Value;

use crate::harness::{poll_definition, TestApp};

const FILES: [&str; 10] = veche_verifier::open_data::FILES;

/// One export as served: its bytes, log size and checkpoint note.
struct Served {
    body: String,
    log_size: u64,
    checkpoint: String,
    content_type: String,
    /// Sent in chunks without a length announced first.
    streamed: bool,
}

async fn served(app: &TestApp, name: &str) -> Served {
    let response = app.get_response(&format!("/v1/open-data/{name}")).await;
    assert_eq!(response.status(), 200, "{name}");
    let header = |header: &str| response.headers()[header].to_str().unwrap().to_string();
    let log_size = header("x-veche-log-size").parse().unwrap();
    let checkpoint =
        veche_verifier::open_data_cli::checkpoint_from_header(&header("x-veche-checkpoint"))
            .unwrap();
    let content_type = header("content-type");
    let streamed = response.headers().get("content-length").is_none();
    Served {
        body: response.text().await.unwrap(),
        log_size,
        checkpoint,
        content_type,
        streamed,
    }
}

/// Every export, checked for the log size and checkpoint it names.
async fn every_export(app: &TestApp) -> BTreeMap<&'static str, Served> {
    let size = app.log_size().await;
    let mut exports = BTreeMap::new();
    for name in FILES {
        let export = served(app, name).await;
        assert_eq!(export.log_size, size, "{name}");
        let note = app
            .get_text(&format!("/v1/log/checkpoint?size={size}"))
            .await;
        assert_eq!(export.checkpoint, note, "{name}");
        if name.ends_with(".json") || name.ends_with(".geojson") {
            let parsed: Value = serde_json::from_str(&export.body).unwrap();
            let meta = if name.ends_with(".geojson") {
                &parsed["veche"]
            } else {
                &parsed["meta"]
            };
            assert_eq!(meta["log_size"], size, "{name}");
            let root = note.lines().nth(2).unwrap();
            assert_eq!(meta["root"], root, "{name}: the checkpoint's root");
        }
        exports.insert(name, export);
    }
    exports
}

/// A CSV export's records as maps from column to field.
fn records(csv_text: &str) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .zip(record.iter())
                .map(|(column, field)| (column.to_string(), field.to_string()))
                .collect()
        })
        .collect()
}

/// A JSON value as a CSV field carries it: absent is empty, strings bare, numbers as written.
fn as_field(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Every item of a listing: `items` of each page, following `next` into `cursor`.
async fn all_pages(app: &TestApp, path: &str, items: &str, next: &str, cursor: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut page_path = format!("{path}?limit=100");
    loop {
        let page = app.get(&page_path).await.body;
        all.extend(page[items].as_array().unwrap().iter().cloned());
        match &page[next] {
            Value::Null => return all,
            value => page_path = format!("{path}?limit=100&{cursor}={}", as_field(value)),
        }
    }
}

async fn all_complaints(app: &TestApp) -> Vec<Value> {
    all_pages(app, "/v1/complaints", "complaints", "next_after", "after").await
}

async fn all_proposals(app: &TestApp) -> Vec<Value> {
    all_pages(app, "/v1/proposals", "proposals", "next_cursor", "cursor").await
}

/// complaints.csv and complaints.geojson against `/v1/complaints`, field by field.
async fn complaints_agree(app: &TestApp, exports: &BTreeMap<&str, Served>) {
    let listed = all_complaints(app).await;
    let rows = records(&exports["complaints.csv"].body);
    let geojson: Value = serde_json::from_str(&exports["complaints.geojson"].body).unwrap();
    let features = geojson["features"].as_array().unwrap();
    assert_eq!(geojson["type"], "FeatureCollection");
    assert_eq!(rows.len(), listed.len());
    assert_eq!(features.len(), listed.len());
    for ((row, feature), view) in rows.iter().zip(features).zip(&listed) {
        for field in [
            "id",
            "category",
            "status",
            "department",
            "filed_at",
            "accepted_at",
        ] {
            assert_eq!(
                row[field],
                as_field(&view[field]),
                "complaint {}: {field}",
                view["id"]
            );
        }
        for field in [
            "deadline",
            "resolved_at",
            "sla_breached",
            "disputes",
            "merged_into",
        ] {
            assert_eq!(
                row[field],
                as_field(&view[field]),
                "complaint {}: {field}",
                view["id"]
            );
        }
        assert_eq!(row["district"], as_field(&view["location"]["district"]));
        let latitude: f64 = row["latitude"].parse().unwrap();
        assert_eq!(Some(latitude), view["location"]["latitude"].as_f64());
        let coordinates = &feature["geometry"]["coordinates"];
        assert_eq!(coordinates[0], view["location"]["longitude"]);
        assert_eq!(coordinates[1], view["location"]["latitude"]);
        assert_eq!(feature["id"], view["id"]);
        assert_eq!(feature["properties"]["status"], view["status"]);
        let reason = view["rejection"]["reason"].as_str().unwrap_or_default();
        assert_eq!(row["rejection_reason"], reason);
    }
}

/// complaint-statistics.csv and .json against `/v1/statistics/complaints`, every number.
async fn statistics_agree(app: &TestApp, exports: &BTreeMap<&str, Served>) -> usize {
    let published = app.get("/v1/statistics/complaints").await.body;
    let json: Value = serde_json::from_str(&exports["complaint-statistics.json"].body).unwrap();
    assert_eq!(json["statistics"], published);
    let rows = records(&exports["complaint-statistics.csv"].body);
    let mut compared = 0;
    for row in &rows {
        let group = match row["grouping"].as_str() {
            "overall" => &published["overall"],
            grouping => &published[format!("by_{grouping}")][&row["group"]],
        };
        let fields = group.as_object().unwrap();
        assert_eq!(fields.len() + 2, row.len(), "{row:?}");
        for (field, value) in fields {
            let written = &row[field];
            match value.as_f64() {
                Some(number) => assert_eq!(written.parse::<f64>().ok(), Some(number), "{field}"),
                None => assert_eq!(written, "", "{field}"),
            }
            compared += 1;
        }
    }
    let groups: usize = ["by_district", "by_category", "by_department", "by_month"]
        .iter()
        .map(|grouping| published[grouping].as_object().unwrap().len())
        .sum();
    assert_eq!(rows.len(), groups + 1);
    compared
}

/// proposals.csv and .json against `/v1/proposals`.
async fn proposals_agree(app: &TestApp, exports: &BTreeMap<&str, Served>) {
    let mut listed = all_proposals(app).await;
    listed.sort_by_key(|proposal| proposal["id"].as_u64());
    let rows = records(&exports["proposals.csv"].body);
    let json: Value = serde_json::from_str(&exports["proposals.json"].body).unwrap();
    let entries = json["proposals"].as_array().unwrap();
    assert_eq!(rows.len(), listed.len());
    assert_eq!(entries.len(), listed.len());
    for ((row, entry), view) in rows.iter().zip(entries).zip(&listed) {
        for field in [
            "id",
            "status",
            "supports",
            "support_threshold",
            "category",
            "district",
        ] {
            assert_eq!(
                row[field],
                as_field(&view[field]),
                "proposal {}: {field}",
                view["id"]
            );
            assert_eq!(
                entry[field], view[field],
                "proposal {}: {field}",
                view["id"]
            );
        }
    }
}

#[actix_web::test]
async fn every_export_reads_back_as_the_api_publishes_it_and_holds_no_erased_text() {
    let directory = tempfile::tempdir().unwrap();
    let (app, entries) = crate::content_verify::city_with_erasures(directory.path()).await;
    let official = app.official().await;
    let public_poll = app
        .act_ok(&official, Action::OpenPoll(poll_definition(app.now(), 3)))
        .await;
    let mut sealed = poll_definition(app.now(), 2);
    sealed.tally_visibility = TallyVisibility::Sealed;
    sealed.title = "A sealed consultation".into();
    let sealed_poll = app.act_ok(&official, Action::OpenPoll(sealed)).await;
    for choice in [0u32, 2, 2] {
        let voter = app.citizen().await;
        let ballot = CastBallot {
            poll: public_poll,
            choices: vec![choice],
            version: None,
        };
        app.act_ok(&voter, Action::CastBallot(ballot)).await;
    }

    let exports = every_export(&app).await;
    assert_eq!(
        exports["complaints.csv"].content_type,
        "text/csv; charset=utf-8; header=present"
    );
    assert_eq!(
        exports["complaints.geojson"].content_type,
        "application/geo+json"
    );
    // The complaint files are streamed; the small ones are sent whole.
    assert!(exports["complaints.csv"].streamed && exports["complaints.geojson"].streamed);
    assert!(!exports["polls.csv"].streamed);
    complaints_agree(&app, &exports).await;
    statistics_agree(&app, &exports).await;
    proposals_agree(&app, &exports).await;

    // The erased complaint and the redacted proposal are named by the entry that erased them;
    // the complaint still held is not.
    let rows = records(&exports["complaints.csv"].body);
    let erased_by = |id: u64| {
        let row = rows.iter().find(|row| row["id"] == id.to_string()).unwrap();
        row["content_erased_by"].clone()
    };
    assert!(!erased_by(entries.erased).is_empty());
    assert_eq!(erased_by(entries.kept), "");
    let proposals = records(&exports["proposals.csv"].body);
    assert!(!proposals[0]["content_erased_by"].is_empty());
    assert_eq!(proposals[0]["id"], entries.redacted.to_string());
    // No text a citizen committed is in any file, erased or not.
    for (name, export) in &exports {
        for text in ["dark for a week", "Tverskaya St", "Olga Ivanova", "flat 9"] {
            assert!(!export.body.contains(text), "{name} holds {text:?}");
        }
    }

    // The public poll's result is its tally; the sealed one, still open, has none.
    let tally = app
        .get(&format!("/v1/polls/{public_poll}/tally"))
        .await
        .body;
    let results: Value = serde_json::from_str(&exports["poll-results.json"].body).unwrap();
    let results = results["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    for field in [
        "poll",
        "counts",
        "turnout",
        "superseded_ballots",
        "leading_options",
        "is_final",
    ] {
        assert_eq!(results[0][field], tally[field], "{field}");
    }
    let rows = records(&exports["poll-results.csv"].body);
    let counts: Vec<String> = rows.iter().map(|row| row["count"].clone()).collect();
    assert_eq!(counts, ["1", "0", "2"]);
    assert_eq!(rows[2]["leading"], "true");
    let polls = records(&exports["polls.csv"].body);
    let ids: Vec<String> = polls.iter().map(|row| row["id"].clone()).collect();
    assert_eq!(ids, [public_poll.to_string(), sealed_poll.to_string()]);
    assert_eq!(polls[1]["title"], "A sealed consultation");

    let index = app.get("/v1/open-data").await.body;
    assert_eq!(index["files"].as_array().unwrap().len(), FILES.len());
    let unknown = app.get("/v1/open-data/secrets.csv").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.problem_type(), "urn:veche:problem:not-found");
    app.stop().await;
}

/// Runs the `veche` binary with `arguments`: whether it passed, stdout and stderr.
async fn veche(arguments: Vec<String>) -> (bool, String, String) {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_veche"))
            .args(arguments)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (
        output.status.success(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

fn arguments(list: &[&str]) -> Vec<String> {
    list.iter().map(|argument| argument.to_string()).collect()
}

/// The dump's directory, as the command printed it.
async fn dump(source: &[&str], out: &Path) -> std::path::PathBuf {
    let mut list = vec!["open-data", "dump", "--out", out.to_str().unwrap()];
    list.extend_from_slice(source);
    let (passed, stdout, stderr) = veche(arguments(&list)).await;
    assert!(passed, "{stderr}");
    std::path::PathBuf::from(stdout.trim())
}

#[actix_web::test]
async fn a_month_of_a_district_exports_in_full_and_its_dump_verifies_until_one_byte_changes() {
    let directory = tempfile::tempdir().unwrap();
    let app = crate::district_month::a_month_of_a_district(directory.path()).await;
    let started = std::time::Instant::now();
    let exports = every_export(&app).await;
    let elapsed = started.elapsed();
    let bytes: usize = exports.values().map(|export| export.body.len()).sum();
    for (name, export) in &exports {
        eprintln!("open data: {name} {} bytes", export.body.len());
    }
    eprintln!(
        "open data: the month's {} entries and {} complaints give {bytes} bytes in {} files, \
         served in {elapsed:.2?}",
        app.log_size().await,
        records(&exports["complaints.csv"].body).len(),
        exports.len()
    );
    complaints_agree(&app, &exports).await;
    // Sixteen groups (overall, three districts, five categories, five departments, two months).
    assert!(statistics_agree(&app, &exports).await >= 16 * 21);
    proposals_agree(&app, &exports).await;

    let out = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let dumped = dump(&["--server", &app.address], &out.path().join("server")).await;
    eprintln!(
        "open data: veche open-data dump --server took {:.2?}",
        started.elapsed()
    );
    let key = app.get("/v1/log").await.body["verifier_key"]
        .as_str()
        .unwrap()
        .to_string();
    let verify = |dump: &Path| {
        arguments(&[
            "open-data",
            "verify",
            "--dump",
            dump.to_str().unwrap(),
            "--server",
            &app.address,
            "--log-key",
            &key,
        ])
    };
    let (passed, stdout, stderr) = veche(verify(&dumped)).await;
    assert!(passed, "{stderr}");
    assert!(stdout.contains("10 files"), "{stdout}");
    for name in FILES {
        let on_disk = std::fs::read_to_string(dumped.join(name)).unwrap();
        assert!(
            on_disk == exports[name].body,
            "{name} differs from the served file"
        );
    }

    // One byte of one file changed: the check names that file and no other.
    let altered = dumped.join("complaints.csv");
    let mut bytes = std::fs::read(&altered).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'7' { b'8' } else { b'7' };
    std::fs::write(&altered, bytes).unwrap();
    let (passed, _, stderr) = veche(verify(&dumped)).await;
    assert!(!passed, "a dump with an altered byte verified");
    assert!(stderr.contains("complaints.csv"), "{stderr}");
    assert!(stderr.contains("1 file(s) differ"), "{stderr}");
    assert!(
        stderr.contains("not the ones the manifest lists"),
        "{stderr}"
    );
    // And with the manifest's digest changed to match: the recount names the file all the same.
    let manifest_path = dumped.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let digest = veche_verifier::open_data::sha256_hex(&std::fs::read(&altered).unwrap());
    for file in manifest["files"].as_array_mut().unwrap() {
        if file["name"] == "complaints.csv" {
            file["sha256"] = Value::from(digest.clone());
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let (passed, _, stderr) = veche(verify(&dumped)).await;
    assert!(
        !passed,
        "an altered file with its digest in the manifest verified"
    );
    assert!(
        stderr.contains("complaints.csv: differs from the file the log gives"),
        "{stderr}"
    );
    app.stop().await;

    // The operator's offline dump of the same log gives the same bytes.
    let started = std::time::Instant::now();
    let offline = dump(
        &["--data-dir", directory.path().to_str().unwrap()],
        &out.path().join("offline"),
    )
    .await;
    eprintln!(
        "open data: veche open-data dump --data-dir took {:.2?}",
        started.elapsed()
    );
    for name in FILES {
        let on_disk = std::fs::read_to_string(offline.join(name)).unwrap();
        assert!(
            on_disk == exports[name].body,
            "{name}: the offline dump differs"
        );
    }
}
