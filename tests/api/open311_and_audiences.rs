//! Open311 GeoReport v2 reads over veche's complaints, and poll audiences by registrar attestation.

use projections::command::{
    Attachment, Attestation, Audience, ComplaintFiling, Resolution, Role, Triage, TriageDecision,
};
use projections::Action;

use crate::harness::{
    lighting, poll_definition, public, resident_tag_of, streetlight_filing, TestApp, MINUTE_MS,
};

fn filing(district: &str) -> ComplaintFiling {
    ComplaintFiling {
        attachments: vec![Attachment {
            sha256: "ab".repeat(32),
            url: crate::harness::commit("https://photos.example/streetlight.jpg"),
        }],
        ..streetlight_filing(district)
    }
}

#[actix_web::test]
async fn open311_clients_read_services_and_requests_with_the_spec_defaults() {
    let app = TestApp::fresh().await;
    assert_eq!(
        app.act(&app.admin, Action::DefineCategory(lighting()))
            .await
            .status,
        201
    );
    let moderator = app.citizen().await;
    app.grant(&moderator, Role::Moderator, None).await;
    let official = app.citizen().await;
    app.grant(&official, Role::Official, Some("roads")).await;
    let citizen = app.citizen().await;

    let old = app
        .act_ok(&citizen, Action::FileComplaint(filing("Tverskoy")))
        .await;
    app.clock.advance_milliseconds(100 * 24 * 60 * MINUTE_MS);
    let recent = app
        .act_ok(&citizen, Action::FileComplaint(filing("Tverskoy")))
        .await;
    let fixed = app
        .act_ok(&citizen, Action::FileComplaint(filing("Arbat")))
        .await;
    for id in [recent, fixed] {
        let triage = Action::TriageComplaint(Triage {
            complaint: id,
            decision: TriageDecision::Accept,
        });
        assert_eq!(app.act(&moderator, triage).await.status, 201);
    }
    let resolution = Action::ResolveComplaint(Resolution {
        complaint: fixed,
        answer: "Lamp replaced.".into(),
        evidence: vec![],
    });
    assert_eq!(app.act(&official, resolution).await.status, 201);

    let services = app.get("/open311/v2/services.json").await.body;
    assert_eq!(services[0]["service_code"], "street-lighting");
    assert_eq!(services[0]["group"], "roads");

    let all = app.get("/open311/v2/requests.json").await.body;
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|request| request["service_request_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![fixed.to_string(), recent.to_string()],
        "newest first, the 100-day-old one outside the 90-day default"
    );
    let open = app.get("/open311/v2/requests.json?status=open").await.body;
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert_eq!(open[0]["agency_responsible"], "roads");
    assert_eq!(
        open[0]["media_url"],
        "https://photos.example/streetlight.jpg"
    );
    assert_eq!(open[0]["lat"], 55.756);
    assert!(open[0]["expected_datetime"].is_string());
    let closed = app
        .get("/open311/v2/requests.json?status=closed")
        .await
        .body;
    assert_eq!(closed[0]["status_notes"], "resolved: Lamp replaced.");

    let single = app.get(&format!("/open311/v2/requests/{old}.json")).await;
    assert_eq!(single.status, 200);
    assert_eq!(single.body[0]["status"], "open");
    assert!(
        single.body[0]["expected_datetime"].is_null(),
        "not accepted, so no deadline"
    );
    let by_id = app
        .get(&format!(
            "/open311/v2/requests.json?service_request_id={old},{fixed}"
        ))
        .await
        .body;
    assert_eq!(by_id.as_array().unwrap().len(), 2);
    let windowed = app
        .get("/open311/v2/requests.json?start_date=2026-11-01T00:00:00Z&end_date=2026-12-01T00:00:00Z")
        .await
        .body;
    assert_eq!(windowed.as_array().unwrap().len(), 1, "{windowed}");
    assert_eq!(
        app.get("/open311/v2/requests/999999.json").await.status,
        404
    );
    assert_eq!(
        app.get("/open311/v2/requests.json?status=pending")
            .await
            .status,
        400
    );
    app.stop().await;
}

#[actix_web::test]
async fn district_and_verified_audiences_follow_the_registrars_attestations() {
    let (app, official) = TestApp::with_official().await;
    let registrar = app.citizen().await;
    app.grant(&registrar, Role::Registrar, None).await;
    let arbat = app.citizen().await;
    let tverskoy = app.citizen().await;
    let unverified = app.citizen().await;
    for (key, district) in [(&arbat, "Arbat"), (&tverskoy, "Tverskoy")] {
        let attestation = Action::AttestResident(Attestation {
            subject: public(key),
            district: Some(district.into()),
            verified: true,
            resident_tag: Some(resident_tag_of(key)),
        });
        assert_eq!(app.act(&registrar, attestation).await.status, 201);
    }
    let by_citizen = Action::AttestResident(Attestation {
        subject: public(&unverified),
        district: None,
        verified: true,
        resident_tag: Some(resident_tag_of(&unverified)),
    });
    assert_eq!(
        app.act(&unverified, by_citizen).await.problem_type(),
        "urn:veche:problem:not-registrar"
    );

    let mut district_poll = poll_definition(app.now(), 2);
    district_poll.audience = Audience::Districts {
        districts: vec!["Arbat".into()],
    };
    let district_poll = app.open_poll(&official, district_poll).await;
    let mut verified_poll = poll_definition(app.now(), 2);
    verified_poll.audience = Audience::Verified;
    let verified_poll = app.open_poll(&official, verified_poll).await;

    assert_eq!(app.vote(&arbat, district_poll, vec![0]).await.status, 201);
    for outsider in [&tverskoy, &unverified] {
        let size = app.log_size().await;
        let answer = app.vote(outsider, district_poll, vec![0]).await;
        assert_eq!(answer.problem_type(), "urn:veche:problem:not-eligible");
        assert_eq!(app.log_size().await, size);
    }
    assert_eq!(
        app.vote(&tverskoy, verified_poll, vec![1]).await.status,
        201
    );
    assert_eq!(
        app.vote(&unverified, verified_poll, vec![1])
            .await
            .problem_type(),
        "urn:veche:problem:not-eligible"
    );
    let key = app.get(&format!("/v1/keys/{}", public(&arbat))).await.body;
    assert_eq!(key["district"], "Arbat");
    assert_eq!(key["verified"], true);
    app.stop().await;
}
