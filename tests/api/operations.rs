//! What operators run beside the binary: the compose topology held to `veche --help`, the Grafana
//! dashboard held to `/metrics`, and the JSON request log held to the anonymous ballot's rule.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use yaml_rust2::{Yaml, YamlLoader};

use crate::crash::wait_ready;
use crate::harness::TestApp;

fn repository_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `veche <subcommand> --help`, as the binary prints it.
fn help_of(subcommand: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_veche"))
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    assert!(output.status.success(), "veche {subcommand} --help failed");
    String::from_utf8(output.stdout).unwrap()
}

/// A service's mapping with YAML merge keys (`<<: *anchor`) spread into it.
fn merged(mapping: &Yaml) -> Vec<(String, Yaml)> {
    let mut entries = Vec::new();
    for (key, value) in mapping.as_hash().into_iter().flatten() {
        match key.as_str() {
            Some("<<") => entries.extend(merged(value)),
            Some(name) => entries.push((name.to_string(), value.clone())),
            None => panic!("a non-string key {key:?} in the compose file"),
        }
    }
    entries
}

fn strings(list: &Yaml) -> Vec<String> {
    let items = list.as_vec().into_iter().flatten();
    items
        .map(|item| item.as_str().unwrap().to_string())
        .collect()
}

/// The subcommand the image runs unless a service names another: the Dockerfile's ENTRYPOINT.
fn image_subcommand() -> String {
    let dockerfile = std::fs::read_to_string(repository_file("docker/Dockerfile")).unwrap();
    let entrypoint = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("ENTRYPOINT "))
        .expect("the Dockerfile has an ENTRYPOINT");
    let words: Vec<String> = serde_json::from_str(entrypoint).unwrap();
    assert_eq!(words[0], "veche");
    words[1].clone()
}

#[test]
fn the_compose_file_sets_only_flags_and_variables_the_binary_reads() {
    let text = std::fs::read_to_string(repository_file("docker/compose.yaml")).unwrap();
    let document = &YamlLoader::load_from_str(&text).unwrap()[0];
    let services = &document["services"];
    let mut checked = BTreeSet::new();
    for (name, service) in services.as_hash().unwrap() {
        let name = name.as_str().unwrap();
        if service["build"]["dockerfile"].as_str() != Some("docker/Dockerfile") {
            continue;
        }
        let entrypoint = strings(&service["entrypoint"]);
        let subcommand = entrypoint.get(1).cloned().unwrap_or_else(image_subcommand);
        let help = help_of(&subcommand);
        for argument in strings(&service["command"]) {
            if argument.starts_with("--") {
                assert!(
                    help.contains(&argument),
                    "{name}: veche {subcommand} has no {argument}"
                );
            }
        }
        for (variable, _) in merged(&service["environment"]) {
            let read = help.contains(&format!("[env: {variable}="));
            assert!(read, "{name}: veche {subcommand} does not read {variable}");
            checked.insert(variable);
        }
    }
    for needed in [
        "VECHE_STORE",
        "VECHE_DATA_DIR",
        "VECHE_REDIS",
        "VECHE_LOG_ORIGIN",
    ] {
        assert!(checked.contains(needed), "the topology never sets {needed}");
    }
    let scraped = std::fs::read_to_string(repository_file("docker/prometheus.yml")).unwrap();
    let scraped = &YamlLoader::load_from_str(&scraped).unwrap()[0];
    let targets = &scraped["scrape_configs"][0]["static_configs"][0]["targets"];
    for target in strings(targets) {
        let host = target.split(':').next().unwrap();
        assert!(
            !services[host].is_badvalue(),
            "Prometheus scrapes {host}, not a service"
        );
    }
}

/// The metric names a PromQL expression asks for.
fn metric_names(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    for word in expression.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("veche_") || word.starts_with("process_") {
            names.push(word.to_string());
        }
    }
    names
}

#[actix_web::test]
async fn the_dashboard_asks_only_for_metrics_the_server_exposes() {
    let app = TestApp::fresh().await;
    app.citizen().await;
    let exposition = app.get_text("/metrics").await;
    app.stop().await;
    let exposed: BTreeSet<&str> = exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let dashboard = std::fs::read(repository_file("docker/grafana/dashboards/veche.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_slice(&dashboard).unwrap();
    let source = std::fs::read_to_string(repository_file(
        "docker/grafana/provisioning/datasources/prometheus.yaml",
    ))
    .unwrap();
    let source = &YamlLoader::load_from_str(&source).unwrap()[0]["datasources"][0]["uid"];
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["uid"].as_str(), source.as_str());
        for target in panel["targets"].as_array().unwrap() {
            for name in metric_names(target["expr"].as_str().unwrap()) {
                assert!(
                    exposed.contains(name.as_str()),
                    "{}: /metrics has no {name}",
                    panel["title"]
                );
                asked += 1;
            }
        }
    }
    assert!(asked >= 10, "the dashboard asks for {asked} series");
}

/// The JSON lines the server wrote for requests (`target: veche::request`).
fn request_lines(stderr: impl std::io::Read) -> Vec<serde_json::Value> {
    BufReader::new(stderr)
        .lines()
        .map(|line| line.unwrap())
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(&line)
                .unwrap_or_else(|_| panic!("not JSON: {line}"))
        })
        .filter(|line| line["target"] == "veche::request")
        .collect()
}

#[actix_web::test]
async fn request_logs_are_json_lines_that_never_name_a_client_address() {
    let directory = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_veche"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            &listen,
            "--data-dir",
        ])
        .arg(directory.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    let read = http.get(format!("{base}/v1/log")).send().await.unwrap();
    assert_eq!(read.status(), 200);
    for path in ["/v1/polls/1/anonymous-ballots", "/v1/commands"] {
        let body = serde_json::json!({});
        let refused = http.post(format!("{base}{path}")).json(&body).send().await;
        assert_eq!(refused.unwrap().status(), 400, "{path}");
    }
    server.kill().unwrap();
    let stderr = server.stderr.take().unwrap();
    server.wait().unwrap();
    let lines = request_lines(stderr);
    let line_for = |path: &str| {
        let found = lines.iter().find(|line| line["fields"]["path"] == path);
        found
            .unwrap_or_else(|| panic!("no request line for {path}: {lines:?}"))
            .clone()
    };
    let read = line_for("/v1/log");
    assert_eq!(read["fields"]["route"], "/v1/log", "{read}");
    assert_eq!(read["fields"]["status"], 200, "{read}");
    assert!(read["fields"]["duration_us"].is_u64(), "{read}");
    for path in ["/v1/polls/1/anonymous-ballots", "/v1/commands"] {
        assert_eq!(line_for(path)["fields"]["status"], 400, "{path}");
    }
    for line in &lines {
        let others = line.to_string().replace(&listen, "");
        assert!(!others.contains("127.0.0.1"), "a client's address: {line}");
    }
}
