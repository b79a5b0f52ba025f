//! The served OpenAPI document and PROTOCOL.md say what the server does (issue 14, defect 10).

use projections::command::CastBallot;
use projections::limits::{LIST_PAGE_ITEMS_MAX, LOG_PAGE_ENTRIES_MAX};
use projections::Action;
use serde_json::Value;

use crate::harness::TestApp;
use crate::refusals::sign_text;

async fn served_document(app: &TestApp) -> Value {
    let answer = app.get("/openapi.json").await;
    assert_eq!(answer.status, 200);
    answer.body
}

/// `(path, method, operation)` of every operation in `document`.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    found
}

fn parameter<'a>(operation: &'a Value, name: &str) -> &'a Value {
    operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
}

#[actix_web::test]
async fn every_operation_that_parses_a_path_or_query_parameter_declares_its_400() {
    let app = TestApp::fresh().await;
    let document = served_document(&app).await;
    let mut undeclared = Vec::new();
    for (path, method, operation) in operations(&document) {
        let parses = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|parameter| parameter["in"] == "path" || parameter["in"] == "query");
        if parses && operation["responses"].get("400").is_none() {
            undeclared.push(format!("{method} {path}"));
        }
    }
    assert!(undeclared.is_empty(), "no 400 declared: {undeclared:?}");
    let answer = app.get("/v1/polls/not-a-number").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.problem_type(), "urn:veche:problem:malformed-request");
}

#[actix_web::test]
async fn limit_declares_the_maximum_the_server_enforces_and_positions_the_unsigned_range() {
    let app = TestApp::fresh().await;
    let document = served_document(&app).await;
    let paths = &document["paths"];
    let entries = &paths["/v1/log/entries"]["get"];
    let log_limit = &parameter(entries, "limit")["schema"];
    assert_eq!(log_limit["maximum"], LOG_PAGE_ENTRIES_MAX);
    assert_eq!(log_limit["minimum"], 1);
    for path in ["/v1/polls", "/v1/complaints", "/v1/proposals"] {
        let limit = &parameter(&paths[path]["get"], "limit")["schema"];
        assert_eq!(limit["maximum"], LIST_PAGE_ITEMS_MAX, "{path}");
    }
    let over = format!("/v1/log/entries?limit={}", LOG_PAGE_ENTRIES_MAX + 1);
    assert_eq!(app.get(&over).await.status, 400);
    for (operation, name) in [(entries, "from"), (&paths["/v1/polls"]["get"], "after")] {
        let schema = &parameter(operation, name)["schema"];
        assert_ne!(schema["format"], "int64", "{name} accepts u64: {schema}");
        assert_eq!(schema["format"], "uint64");
    }
    assert_eq!(
        app.get(&format!("/v1/polls?after={}", u64::MAX))
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn trace_and_other_unrouted_methods_on_a_known_path_answer_405_with_allow() {
    let app = TestApp::fresh().await;
    for (method, path, allowed) in [
        ("TRACE", "/v1/polls", "GET, POST, HEAD"),
        ("DELETE", "/v1/polls/1", "GET, HEAD"),
        ("PUT", "/v1/keys", "POST"),
        ("TRACE", "/healthz", "GET, HEAD"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}{path}", app.address);
        let response = app.http.request(method.clone(), url).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allowed, "{method} {path}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:veche:problem:method-not-allowed");
    }
    assert_eq!(app.get("/v1/nowhere").await.status, 404);
}

#[actix_web::test]
async fn a_body_with_a_member_named_twice_is_refused_as_protocol_md_says() {
    let protocol = std::fs::read_to_string("docs/PROTOCOL.md").unwrap();
    assert!(protocol.contains("at the top level and inside `body`, with 400 `malformed-command`"));
    let (app, official) = TestApp::with_official().await;
    let poll = app.open_standard_poll(&official, 2).await;
    let voter = app.citizen().await;
    let ballot = Action::CastBallot(CastBallot {
        version: None,
        poll,
        choices: vec![0],
    });
    let payload = app.sign(&voter, ballot).payload;
    let twice = payload.replacen("\"choices\":[0]", "\"choices\":[1],\"choices\":[0]", 1);
    assert_ne!(twice, payload);
    let answer = app.post("/v1/commands", &sign_text(&voter, &twice)).await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
    assert_eq!(answer.problem_type(), "urn:veche:problem:malformed-command");
}
