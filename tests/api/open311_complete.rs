//! Open311 GeoReport v2 as its published examples shape it, in XML read back with a parser:
//! discovery, services, service definitions, requests under every standard filter, errors; and a
//! gateway's `POST requests`, signed by the node with the gateway's key on a resident's behalf.

use projections::command::{
    ComplaintFiling, RegisterKey, Resolution, Role, Triage, TriageDecision,
};
use projections::Action;
use serde::Deserialize;

use crate::harness::{files_holding, lighting, public, streetlight_filing, TestApp, MINUTE_MS};

/// `<discovery>` as GeoReport's example has it.
#[derive(Deserialize, Debug)]
struct Discovery {
    changeset: String,
    key_service: String,
    endpoints: Endpoints,
}

#[derive(Deserialize, Debug)]
struct Endpoints {
    endpoint: Vec<Endpoint>,
}

#[derive(Deserialize, Debug)]
struct Endpoint {
    specification: String,
    url: String,
    #[serde(rename = "type")]
    endpoint_type: String,
    formats: Formats,
}

#[derive(Deserialize, Debug)]
struct Formats {
    format: Vec<String>,
}

/// `<services><service>…` as GeoReport's example has it.
#[derive(Deserialize, Debug)]
struct Services {
    #[serde(default)]
    service: Vec<Service>,
}

#[derive(Deserialize, Debug)]
struct Service {
    service_code: String,
    service_name: String,
    metadata: bool,
    #[serde(rename = "type")]
    service_type: String,
    group: String,
}

/// `<service_definition><attributes><attribute>…`.
#[derive(Deserialize, Debug)]
struct ServiceDefinition {
    service_code: String,
    attributes: Attributes,
}

#[derive(Deserialize, Debug)]
struct Attributes {
    #[serde(default)]
    attribute: Vec<Attribute>,
}

#[derive(Deserialize, Debug)]
struct Attribute {
    variable: bool,
    code: String,
    datatype: String,
    required: bool,
    order: u32,
}

/// `<service_requests><request>…`.
#[derive(Deserialize, Debug)]
struct ServiceRequests {
    #[serde(default)]
    request: Vec<Request>,
}

#[derive(Deserialize, Debug)]
struct Request {
    service_request_id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    service_code: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    requested_datetime: String,
    #[serde(default)]
    service_notice: Option<String>,
    #[serde(default)]
    account_id: Option<String>,
}

/// `<errors><error>…`.
#[derive(Deserialize, Debug)]
struct Errors {
    error: Vec<GeoReportError>,
}

#[derive(Deserialize, Debug)]
struct GeoReportError {
    code: u16,
    description: String,
}

/// An XML document of type `Document`, served with `status`.
async fn xml<Document: serde::de::DeserializeOwned>(
    app: &TestApp,
    path: &str,
    status: u16,
) -> Document {
    // The harness keeps a body that is not JSON as its text.
    let answer = app.get(path).await;
    let body = answer.body.as_str().unwrap_or_default();
    assert_eq!(answer.status, status, "{path}: {body}");
    let content_type = &answer.content_type;
    assert!(
        content_type.starts_with("text/xml"),
        "{path}: {content_type}"
    );
    quick_xml::de::from_str(body).unwrap_or_else(|error| panic!("{path}: {error}\n{body}"))
}

fn ids(requests: &ServiceRequests) -> Vec<String> {
    requests
        .request
        .iter()
        .map(|request| request.service_request_id.clone())
        .collect()
}

/// Three complaints: `old` filed 100 days before the others, `recent` open, `fixed` resolved.
async fn three_complaints(app: &TestApp) -> (u64, u64, u64) {
    app.act_ok(&app.admin, Action::DefineCategory(lighting()))
        .await;
    let moderator = app.citizen().await;
    app.grant(&moderator, Role::Moderator, None).await;
    let official = app.citizen().await;
    app.grant(&official, Role::Official, Some("roads")).await;
    let citizen = app.citizen().await;
    let file = || Action::FileComplaint(streetlight_filing("Tverskoy"));
    let old = app.act_ok(&citizen, file()).await;
    app.clock.advance_milliseconds(100 * 24 * 60 * MINUTE_MS);
    let recent = app.act_ok(&citizen, file()).await;
    app.clock.advance_milliseconds(MINUTE_MS);
    let fixed = app.act_ok(&citizen, file()).await;
    let triage = Action::TriageComplaint(Triage {
        complaint: fixed,
        decision: TriageDecision::Accept,
    });
    app.act_ok(&moderator, triage).await;
    let resolution = Action::ResolveComplaint(Resolution {
        complaint: fixed,
        answer: "Lamp replaced.".into(),
        evidence: vec![],
    });
    app.act_ok(&official, resolution).await;
    (old, recent, fixed)
}

#[actix_web::test]
async fn discovery_services_and_definitions_read_as_the_georeport_examples_shape_them() {
    let app = TestApp::fresh().await;
    app.act_ok(&app.admin, Action::DefineCategory(lighting()))
        .await;

    let discovery: Discovery = xml(&app, "/open311/v2/discovery.xml", 200).await;
    assert!(!discovery.changeset.is_empty());
    assert!(discovery.key_service.contains("gateway-api-key"));
    let endpoint = &discovery.endpoints.endpoint[0];
    assert_eq!(
        endpoint.specification,
        "http://wiki.open311.org/GeoReport_v2"
    );
    assert_eq!(endpoint.url, format!("{}/open311/v2", app.address));
    assert_eq!(endpoint.endpoint_type, "production");
    assert_eq!(endpoint.formats.format, ["text/xml", "application/json"]);
    let json = app.get("/open311/v2/discovery.json").await.body;
    assert_eq!(json["endpoints"][0]["formats"][1], "application/json");

    let services: Services = xml(&app, "/open311/v2/services.xml", 200).await;
    let service = &services.service[0];
    assert_eq!(services.service.len(), 1);
    assert_eq!(service.service_code, "street-lighting");
    assert_eq!(service.service_name, lighting().name);
    assert_eq!(service.group, "roads");
    assert_eq!(service.service_type, "realtime");
    assert!(service.metadata, "the definition lists the district");

    let definition: ServiceDefinition =
        xml(&app, "/open311/v2/services/street-lighting.xml", 200).await;
    assert_eq!(definition.service_code, "street-lighting");
    let attribute = &definition.attributes.attribute[0];
    assert!(attribute.variable && attribute.required);
    assert_eq!(
        (attribute.code.as_str(), attribute.datatype.as_str()),
        ("district", "string")
    );
    assert_eq!(attribute.order, 1);
    let json = app
        .get("/open311/v2/services/street-lighting.json")
        .await
        .body;
    assert_eq!(json["attributes"][0]["code"], "district");
    app.stop().await;
}

#[actix_web::test]
async fn every_standard_filter_of_the_request_list_reads_back_from_xml() {
    let app = TestApp::fresh().await;
    let (old, recent, fixed) = three_complaints(&app).await;
    let [old, recent, fixed] = [old, recent, fixed].map(|id| id.to_string());
    let list = |query: &str| format!("/open311/v2/requests.xml{query}");
    let read = |query: String| {
        let app = &app;
        async move { xml::<ServiceRequests>(app, &query, 200).await }
    };

    let default = read(list("")).await;
    assert_eq!(
        ids(&default),
        [fixed.clone(), recent.clone()],
        "the 90-day default"
    );
    let first = &default.request[1];
    assert_eq!(first.status, "open");
    assert_eq!(first.service_code, "street-lighting");
    assert_eq!(
        first.lat,
        streetlight_filing("Tverskoy").location.latitude.0.into()
    );
    assert!(!first.requested_datetime.is_empty());
    assert!(!first.description.is_empty() && !first.address.is_empty());

    let cases: Vec<(String, Vec<&String>)> = vec![
        (
            list("?start_date=2026-01-01T00:00:00Z"),
            vec![&fixed, &recent, &old],
        ),
        (
            list("?start_date=2026-01-01T00:00:00Z&end_date=2026-11-24T00:00:00Z"),
            vec![&old],
        ),
        (list("?status=closed"), vec![&fixed]),
        (list("?status=open"), vec![&recent]),
        (list("?status=open,closed"), vec![&fixed, &recent]),
        (list("?service_code=street-lighting"), vec![&fixed, &recent]),
        (
            list(&format!("?service_request_id={old},{fixed}&status=open")),
            vec![&old, &fixed],
        ),
        (
            list("?start_date=2026-11-24T00:00:00Z&end_date=2026-11-23T00:00:00Z"),
            vec![],
        ),
    ];
    for (path, expected) in cases {
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(ids(&read(path.clone()).await), expected, "{path}");
    }
    let one = read(format!("/open311/v2/requests/{fixed}.xml")).await;
    assert_eq!(ids(&one), vec![fixed.clone()]);
    assert_eq!(one.request[0].status, "closed");
    let json = app
        .get("/open311/v2/requests.json?status=closed")
        .await
        .body;
    assert_eq!(json[0]["service_request_id"], fixed.as_str());
    app.stop().await;
}

#[actix_web::test]
async fn errors_are_georeport_error_documents_in_the_format_asked_for() {
    let app = TestApp::fresh().await;
    app.act_ok(&app.admin, Action::DefineCategory(lighting()))
        .await;
    let cases = [
        ("/open311/v2/services/graffiti.xml", 404),
        ("/open311/v2/requests.xml?service_code=graffiti", 404),
        ("/open311/v2/requests.xml?status=pending", 400),
        ("/open311/v2/requests.xml?start_date=yesterday", 400),
        ("/open311/v2/requests/abc.xml", 400),
        ("/open311/v2/requests/999.xml", 404),
        ("/open311/v2/services.csv", 404),
    ];
    for (path, status) in cases {
        let errors: Errors = xml(&app, path, status).await;
        assert_eq!(errors.error.len(), 1, "{path}");
        assert_eq!(errors.error[0].code, status, "{path}");
        assert!(!errors.error[0].description.is_empty(), "{path}");
    }
    let json = app.get("/open311/v2/services/graffiti.json").await;
    assert_eq!(json.status, 404);
    assert_eq!(json.body[0]["code"], 404);
    assert!(json.body[0]["description"]
        .as_str()
        .unwrap()
        .contains("graffiti"));
    let wrong_method = app
        .post_raw("/open311/v2/services.xml", "text/plain", vec![])
        .await;
    assert_eq!(wrong_method.status, 405);
    app.stop().await;
}

/// A gateway's form, as FixMyStreet's Open311 sender posts it.
fn form(api_key: &str, description: &str) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("api_key", api_key)
        .append_pair("service_code", "street-lighting")
        .append_pair("lat", "55.751234")
        .append_pair("long", "37.618765")
        .append_pair("address_string", "Tverskaya 7, entrance 2")
        .append_pair("description", description)
        .append_pair("media_url", "https://photos.example/lamp.jpg")
        .append_pair("email", "resident@mail.example")
        .append_pair("first_name", "Anna")
        .append_pair("last_name", "Ivanova-Gateway")
        .append_pair("phone", "+7 900 123-45-67")
        .append_pair("attribute[district]", "Tverskoy")
        .finish()
        .into_bytes()
}

async fn post_form(app: &TestApp, api_key: &str, description: &str) -> (u16, String) {
    let response = app
        .http
        .post(format!("{}/open311/v2/requests.xml", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(api_key, description))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[actix_web::test]
async fn a_gateway_files_for_a_resident_without_a_key_and_the_log_and_statistics_say_so() {
    let directory = tempfile::tempdir().unwrap();
    let gateway = veche::keys::generate_key(&veche::keys::OsEntropy);
    let folder = directory
        .path()
        .join(veche::gateway::GATEWAY_KEYS_DIRECTORY);
    std::fs::create_dir_all(&folder).unwrap();
    veche::keys::write_key_file(&folder.join("call-centre.key"), &gateway).unwrap();
    let api_key = veche::gateway::api_key_of(&gateway);
    let app = TestApp::spawn(directory.path()).await;
    app.act_ok(&app.admin, Action::DefineCategory(lighting()))
        .await;
    app.act_ok(&gateway, Action::RegisterKey(RegisterKey {}))
        .await;
    let citizen = app.citizen().await;
    app.act_ok(&citizen, Action::FileComplaint(streetlight_filing("Arbat")))
        .await;

    // Not yet a gateway: the node signs, the log refuses, nothing is appended.
    let size = app.log_size().await;
    let (status, body) = post_form(&app, &api_key, "Lamp out").await;
    assert_eq!(status, 403, "{body}");
    let errors: Errors = quick_xml::de::from_str(&body).unwrap();
    assert_eq!(errors.error[0].code, 403);
    assert_eq!(app.log_size().await, size);
    // Nor can a citizen mark their own filing as a gateway's.
    let pretending = Action::FileComplaint(ComplaintFiling {
        through_gateway: true,
        ..streetlight_filing("Arbat")
    });
    let refused = app.act(&citizen, pretending).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.problem_type(), "urn:veche:problem:not-gateway");

    app.grant(&gateway, Role::Gateway, None).await;
    let size = app.log_size().await;
    let wrong = "0".repeat(64);
    let (status, body) = post_form(&app, &wrong, "Lamp out").await;
    assert_eq!(status, 403, "{body}");
    let errors: Errors = quick_xml::de::from_str(&body).unwrap();
    assert!(errors.error[0].description.contains("api_key"));
    assert_eq!(
        app.log_size().await,
        size,
        "a wrong api_key appends nothing"
    );

    let (status, body) = post_form(&app, &api_key, "Lamp out at the bus stop").await;
    assert_eq!(status, 201, "{body}");
    let created: ServiceRequests = quick_xml::de::from_str(&body).unwrap();
    let id = created.request[0].service_request_id.clone();
    assert_eq!(created.request[0].service_notice.as_deref(), Some(""));
    assert_eq!(created.request[0].account_id.as_deref(), Some(""));
    assert_eq!(app.log_size().await, size + 1);

    let listed: ServiceRequests = xml(
        &app,
        &format!("/open311/v2/requests.xml?service_request_id={id}"),
        200,
    )
    .await;
    let request = &listed.request[0];
    assert_eq!(request.lat, Some(55.751), "rounded to the public grid");
    assert_eq!(request.address, "Tverskaya 7, entrance 2");
    assert_eq!(
        request.description,
        "Lamp out at the bus stop\nhttps://photos.example/lamp.jpg"
    );
    let complaint = app.get(&format!("/v1/complaints/{id}")).await;
    assert_eq!(complaint.status, 200);
    assert_eq!(complaint.body["author"], public(&gateway).to_hex());

    let entry = app
        .get(&format!("/v1/log/entries?from={id}&limit=1"))
        .await
        .body["entries"][0]
        .clone();
    assert_eq!(entry["signer"], public(&gateway).to_hex());
    let payload: serde_json::Value =
        serde_json::from_str(entry["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["body"]["through_gateway"], true);
    let text = entry["payload"].as_str().unwrap();
    for personal in ["Lamp out", "Tverskaya", "55.751234", "photos.example"] {
        assert!(
            !text.contains(personal),
            "{personal} is in the entry: {text}"
        );
    }

    let statistics = app.get("/v1/statistics/complaints").await.body;
    assert_eq!(statistics["overall"]["filed"], 2);
    assert_eq!(statistics["overall"]["filed_through_gateway"], 1);
    assert_eq!(
        statistics["by_district"]["Tverskoy"]["filed_through_gateway"],
        1
    );
    assert_eq!(
        statistics["by_district"]["Arbat"]["filed_through_gateway"],
        0
    );

    // The same form to the JSON path answers GeoReport's JSON shape.
    let json = app
        .post_raw(
            "/open311/v2/requests.json",
            "application/x-www-form-urlencoded",
            form(&api_key, "A second lamp is out"),
        )
        .await;
    assert_eq!(json.status, 201, "{:?}", json.body);
    let second = json.body[0]["service_request_id"].as_str().unwrap();
    assert_ne!(second, id);
    assert_eq!(json.body[0]["account_id"], "");
    let statistics = app.get("/v1/statistics/complaints").await.body;
    assert_eq!(statistics["overall"]["filed_through_gateway"], 2);

    // Contact details are not kept anywhere: not in the log, the content table or a snapshot.
    app.stop().await;
    for contact in ["resident@mail.example", "Ivanova-Gateway", "123-45-67"] {
        let holding = files_holding(directory.path(), contact.as_bytes());
        assert!(holding.is_empty(), "{contact} is kept in {holding:?}");
    }
}
