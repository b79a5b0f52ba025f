//! The reads the public board needs (issue 18, item 3): turnout by district, who holds which
//! role since which entry, and the moderation, admin and registrar actions by filter.

use ed25519_dalek::SigningKey;
use projections::command::{
    Attestation, Audience, Merge, Redaction, RedactionReason, RejectionReason, Role, RoleChange,
    TallyVisibility, Triage, TriageDecision,
};
use projections::Action;
use serde_json::{json, Value};

use crate::harness::{
    lighting, poll_definition, public, resident_tag_of, streetlight_filing, TestApp,
};

/// A registrar attests `key` as a verified resident of `district`.
async fn attest(app: &TestApp, registrar: &SigningKey, key: &SigningKey, district: &str) -> u64 {
    let attestation = Action::AttestResident(Attestation {
        subject: public(key),
        district: Some(district.into()),
        verified: true,
        resident_tag: Some(resident_tag_of(key)),
    });
    app.act_ok(registrar, attestation).await
}

/// A citizen attested in `district` (none: never attested).
async fn resident(app: &TestApp, registrar: &SigningKey, district: Option<&str>) -> SigningKey {
    let key = app.citizen().await;
    if let Some(district) = district {
        attest(app, registrar, &key, district).await;
    }
    key
}

fn district_turnouts(turnout: &Value) -> Vec<(String, u64)> {
    turnout["districts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|district| {
            (
                district["district"].as_str().unwrap().to_string(),
                district["turnout"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn two_districts_attested_voters_give_each_district_its_turnout_and_the_rest_count_as_unattested(
) {
    let (app, official) = TestApp::with_official().await;
    let registrar = app.citizen().await;
    app.grant(&registrar, Role::Registrar, None).await;
    let mut voters = Vec::new();
    for district in [
        Some("Arbat"),
        Some("Arbat"),
        Some("Arbat"),
        Some("Tverskoy"),
        Some("Tverskoy"),
        None,
    ] {
        voters.push(resident(&app, &registrar, district).await);
    }
    // An Arbat resident who does not vote counts nowhere.
    resident(&app, &registrar, Some("Arbat")).await;
    let poll = app.open_standard_poll(&official, 2).await;
    for voter in &voters {
        assert_eq!(app.vote(voter, poll, vec![0]).await.status, 201);
    }

    let turnout = app.get(&format!("/v1/polls/{poll}/turnout")).await;
    assert_eq!(turnout.status, 200, "{:?}", turnout.body);
    let body = &turnout.body;
    assert_eq!(body["poll"], poll);
    assert_eq!(body["turnout"], 6);
    assert_eq!(body["basis"], "resident_attestation");
    assert_eq!(
        district_turnouts(body),
        vec![("Arbat".to_string(), 3), ("Tverskoy".to_string(), 2)]
    );
    assert_eq!(body["unattested"], 1);
    assert_eq!(body["districts"][0]["credentials_issued"], Value::Null);
    assert_eq!(body["is_final"], false);
    assert_eq!(body["log_size"], app.log_size().await);
    let tally = app.get(&format!("/v1/polls/{poll}/tally")).await;
    assert_eq!(body["turnout"], tally.body["turnout"]);
    app.stop().await;
}

#[actix_web::test]
async fn a_district_audience_lists_every_district_and_a_ballot_stays_counted_where_it_was_cast_after_a_vote_change_and_a_revocation(
) {
    let (app, official) = TestApp::with_official().await;
    let registrar = app.citizen().await;
    app.grant(&registrar, Role::Registrar, None).await;
    let arbat = resident(&app, &registrar, Some("Arbat")).await;
    let leaving = resident(&app, &registrar, Some("Arbat")).await;
    let mut definition = poll_definition(app.now(), 2);
    definition.audience = Audience::Districts {
        districts: vec!["Tverskoy".into(), "Arbat".into()],
    };
    definition.vote_changes_allowed = true;
    let poll = app.open_poll(&official, definition).await;
    for voter in [&arbat, &leaving] {
        assert_eq!(app.vote(voter, poll, vec![1]).await.status, 201);
    }
    // A changed vote is no second voter.
    assert_eq!(app.vote(&arbat, poll, vec![0]).await.status, 201);
    let revoke = Action::RevokeKey(projections::command::KeyRevocation {
        subject: public(&leaving),
    });
    app.act_ok(&registrar, revoke).await;

    let body = app.get(&format!("/v1/polls/{poll}/turnout")).await.body;
    assert_eq!(
        district_turnouts(&body),
        vec![("Arbat".to_string(), 2), ("Tverskoy".to_string(), 0)]
    );
    assert_eq!(body["turnout"], 2);
    assert_eq!(body["unattested"], 0);
    app.stop().await;
}

#[actix_web::test]
async fn a_sealed_polls_turnout_is_refused_while_it_is_open_as_its_tally_is() {
    let (app, official) = TestApp::with_official().await;
    let mut definition = poll_definition(app.now(), 2);
    definition.tally_visibility = TallyVisibility::Sealed;
    let poll = app.open_poll(&official, definition).await;
    let voter = app.citizen().await;
    assert_eq!(app.vote(&voter, poll, vec![0]).await.status, 201);
    for path in [
        format!("/v1/polls/{poll}/turnout"),
        format!("/v1/polls/{poll}/tally"),
    ] {
        let answer = app.get(&path).await;
        assert_eq!(answer.status, 403, "{path}");
        assert_eq!(answer.problem_type(), "urn:veche:problem:tally-sealed");
        assert_eq!(answer.content_type, "application/problem+json");
    }
    let unknown = app.get("/v1/polls/999999/turnout").await;
    assert_eq!(unknown.problem_type(), "urn:veche:problem:not-found");
    let malformed = app.get("/v1/polls/first/turnout").await;
    assert_eq!(
        malformed.problem_type(),
        "urn:veche:problem:malformed-request"
    );
    app.stop().await;
}

fn holder<'a>(page: &'a Value, key: &SigningKey) -> Option<&'a Value> {
    let key = public(key).to_hex();
    page["holders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|holder| holder["key"] == key.as_str())
}

#[actix_web::test]
async fn a_granted_role_shows_with_its_grants_position_and_time_and_a_revoked_one_is_gone() {
    let app = TestApp::fresh().await;
    let moderator = app.citizen().await;
    let official = app.citizen().await;
    let grant = Action::GrantRole(RoleChange {
        subject: public(&moderator),
        role: Role::Moderator,
        department: None,
    });
    let granted_at = app.act_ok(&app.admin, grant).await;
    let official_at = app
        .act_ok(
            &app.admin,
            crate::harness::official_grant(&official, "roads"),
        )
        .await;
    let grant_entry = app
        .get(&format!("/v1/log/entries?from={granted_at}&limit=1"))
        .await;
    let grant_time = grant_entry.body["entries"][0]["server_time"].clone();

    let page = app.get("/v1/roles").await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let listed = holder(&page.body, &moderator).expect("the moderator is listed");
    assert_eq!(
        listed["roles"],
        json!([{"role": "moderator", "department": null,
                "granted_at_position": granted_at, "granted_at": grant_time}])
    );
    let listed = holder(&page.body, &official).expect("the official is listed");
    assert_eq!(listed["roles"][0]["department"], "roads");
    assert_eq!(listed["roles"][0]["granted_at_position"], official_at);
    let admin = holder(&page.body, &app.admin).expect("the genesis admin is listed");
    assert_eq!(admin["roles"][0]["role"], "admin");
    assert_eq!(admin["roles"][0]["granted_at_position"], 0);
    let key = app
        .get(&format!("/v1/keys/{}", public(&moderator).to_hex()))
        .await;
    assert_eq!(key.body["roles"][0]["granted_at_position"], granted_at);

    let moderators = app.get("/v1/roles?role=moderator").await.body;
    assert_eq!(moderators["holders"].as_array().unwrap().len(), 1);
    let roads = app
        .get("/v1/roles?role=official&department=roads")
        .await
        .body;
    assert!(holder(&roads, &official).is_some() && holder(&roads, &moderator).is_none());
    let first = app.get("/v1/roles?limit=1").await.body;
    let after = first["next_after"]
        .as_str()
        .expect("a second page")
        .to_string();
    let second = app
        .get(&format!("/v1/roles?limit=1&after={after}"))
        .await
        .body;
    assert!(second["holders"][0]["key"].as_str().unwrap() > after.as_str());

    let revoke = Action::RevokeRole(RoleChange {
        subject: public(&moderator),
        role: Role::Moderator,
        department: None,
    });
    app.act_ok(&app.admin, revoke).await;
    assert!(holder(&app.get("/v1/roles").await.body, &moderator).is_none());
    for bad in [
        "/v1/roles?role=mayor",
        "/v1/roles?after=nothex",
        "/v1/roles?limit=0",
        "/v1/roles?color=red",
    ] {
        let answer = app.get(bad).await;
        assert_eq!(answer.status, 400, "{bad}");
        assert_eq!(
            answer.problem_type(),
            "urn:veche:problem:malformed-request",
            "{bad}"
        );
    }
    app.stop().await;
}

fn actions(page: &Value) -> Vec<(u64, String)> {
    page["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|action| {
            (
                action["position"].as_u64().unwrap(),
                action["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn a_redaction_shows_in_the_moderation_list_and_filters_by_action_author_and_range_exclude_it(
) {
    let app = TestApp::fresh().await;
    let moderator = app.citizen().await;
    app.grant(&moderator, Role::Moderator, None).await;
    let category = app
        .act_ok(&app.admin, Action::DefineCategory(lighting()))
        .await;
    let citizen = app.citizen().await;
    let complaint = app
        .act_ok(&citizen, Action::FileComplaint(streetlight_filing("Arbat")))
        .await;
    let original = app
        .act_ok(&citizen, Action::FileComplaint(streetlight_filing("Arbat")))
        .await;
    let redaction = Action::RedactContent(Redaction {
        entry: complaint,
        reason: RedactionReason::ThirdPartyPersonalData,
    });
    let redacted_at = app.act_ok(&moderator, redaction).await;
    let duplicate = Action::TriageComplaint(Triage {
        complaint,
        decision: TriageDecision::Reject {
            rejection: RejectionReason::DuplicateOf {
                complaint: original,
            },
        },
    });
    let rejected_at = app.act_ok(&moderator, duplicate).await;

    let page = app.get("/v1/log/actions?kind=moderation").await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert_eq!(
        actions(&page.body),
        vec![
            (redacted_at, "redact_content".to_string()),
            (rejected_at, "triage_complaint".to_string())
        ]
    );
    let redaction = &page.body["actions"][0];
    assert_eq!(redaction["kind"], "moderation");
    assert_eq!(redaction["author"], public(&moderator).to_hex());
    assert_eq!(redaction["subject"], json!({"entry": complaint}));
    assert_eq!(redaction["reason"], "third_party_personal_data");
    assert_eq!(redaction["redacts_content"], true);
    let rejection = &page.body["actions"][1];
    assert_eq!(rejection["subject"], json!({"complaint": complaint}));
    assert_eq!(rejection["decision"], "reject");
    assert_eq!(rejection["reason"], "duplicate_of");
    assert_eq!(rejection["related_complaint"], original);
    assert_eq!(page.body["next_from"], Value::Null);

    let only_triage = app
        .get("/v1/log/actions?action=triage_complaint")
        .await
        .body;
    assert_eq!(
        actions(&only_triage),
        vec![(rejected_at, "triage_complaint".to_string())]
    );
    let by_citizen = format!(
        "/v1/log/actions?kind=moderation&author={}",
        public(&citizen).to_hex()
    );
    assert!(actions(&app.get(&by_citizen).await.body).is_empty());
    let before = format!("/v1/log/actions?kind=moderation&to={redacted_at}");
    assert!(actions(&app.get(&before).await.body).is_empty());
    let from = format!("/v1/log/actions?kind=moderation&from={}", redacted_at + 1);
    assert_eq!(actions(&app.get(&from).await.body).len(), 1);

    let admin = app.get("/v1/log/actions?kind=admin").await.body;
    let admin_actions = actions(&admin);
    assert!(
        admin_actions.contains(&(category, "define_category".to_string())),
        "{admin_actions:?}"
    );
    assert!(admin_actions
        .iter()
        .all(|(_, name)| name == "grant_role" || name == "define_category"));
    let grant = &admin["actions"][0];
    assert_eq!(
        grant["subject"],
        json!({"key": public(&moderator).to_hex()})
    );
    assert_eq!(grant["role"], "moderator");
    assert_eq!(grant["author"], public(&app.admin).to_hex());
    app.stop().await;
}

#[actix_web::test]
async fn a_page_of_actions_ends_at_its_limit_and_names_where_the_next_one_reads_from() {
    let app = TestApp::fresh().await;
    let moderator = app.citizen().await;
    app.grant(&moderator, Role::Moderator, None).await;
    app.act_ok(&app.admin, Action::DefineCategory(lighting()))
        .await;
    let citizen = app.citizen().await;
    let first = app
        .act_ok(&citizen, Action::FileComplaint(streetlight_filing("Arbat")))
        .await;
    let second = app
        .act_ok(&citizen, Action::FileComplaint(streetlight_filing("Arbat")))
        .await;
    let merged_at = app
        .act_ok(
            &moderator,
            Action::MergeComplaint(Merge {
                complaint: second,
                into: first,
            }),
        )
        .await;
    let accept = Action::TriageComplaint(Triage {
        complaint: first,
        decision: TriageDecision::Accept,
    });
    let accepted_at = app.act_ok(&moderator, accept).await;

    let page = app
        .get("/v1/log/actions?kind=moderation&limit=1")
        .await
        .body;
    assert_eq!(
        actions(&page),
        vec![(merged_at, "merge_complaint".to_string())]
    );
    assert_eq!(page["actions"][0]["related_complaint"], first);
    assert_eq!(page["next_from"], merged_at + 1);
    let next = app
        .get(&format!(
            "/v1/log/actions?kind=moderation&limit=1&from={}",
            merged_at + 1
        ))
        .await
        .body;
    assert_eq!(
        actions(&next),
        vec![(accepted_at, "triage_complaint".to_string())]
    );
    assert_eq!(next["actions"][0]["decision"], "accept");
    app.stop().await;
}

#[actix_web::test]
async fn an_unknown_kind_or_action_a_foreign_action_a_bad_author_or_a_reversed_range_is_a_malformed_request(
) {
    let app = TestApp::fresh().await;
    for bad in [
        "/v1/log/actions?kind=citizen",
        "/v1/log/actions?action=cast_ballot",
        "/v1/log/actions?action=no_such_action",
        "/v1/log/actions?kind=admin&action=redact_content",
        "/v1/log/actions?author=ABC",
        "/v1/log/actions?from=5&to=4",
        "/v1/log/actions?limit=101",
        "/v1/log/actions?from=-1",
        "/v1/log/actions?sort=newest",
    ] {
        let answer = app.get(bad).await;
        assert_eq!(answer.status, 400, "{bad}: {:?}", answer.body);
        assert_eq!(
            answer.problem_type(),
            "urn:veche:problem:malformed-request",
            "{bad}"
        );
        assert_eq!(answer.content_type, "application/problem+json", "{bad}");
    }
    let beyond = app.get("/v1/log/actions?from=1000000").await;
    assert_eq!(beyond.status, 200);
    assert_eq!(beyond.body, json!({"actions": [], "next_from": null}));
    app.stop().await;
}

/// The positions and actions of a log page's entries.
fn entry_actions(page: &Value) -> Vec<(u64, String)> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let payload: Value = serde_json::from_str(entry["payload"].as_str().unwrap()).unwrap();
            (
                entry["position"].as_u64().unwrap(),
                payload["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn the_log_explorer_filters_entries_by_signer_and_action_and_pages_on_where_it_stopped() {
    let (app, official) = TestApp::with_official().await;
    let voters = [
        app.citizen().await,
        app.citizen().await,
        app.citizen().await,
    ];
    let poll = app.open_standard_poll(&official, 2).await;
    for voter in &voters {
        assert_eq!(app.vote(voter, poll, vec![1]).await.status, 201);
    }
    let voter = public(&voters[1]).to_hex();

    let mine = app.get(&format!("/v1/log/entries?signer={voter}")).await;
    assert_eq!(mine.status, 200, "{:?}", mine.body);
    let mine = entry_actions(&mine.body);
    assert_eq!(
        mine.iter()
            .map(|(_, action)| action.as_str())
            .collect::<Vec<_>>(),
        ["register_key", "cast_ballot"]
    );
    for entry in app
        .get(&format!("/v1/log/entries?signer={voter}"))
        .await
        .body["entries"]
        .as_array()
        .unwrap()
    {
        assert_eq!(entry["signer"], voter.as_str());
    }

    // Ballots one at a time: each page names where the next one reads from.
    let (mut from, mut ballots) = (0, Vec::new());
    loop {
        let page = app
            .get(&format!(
                "/v1/log/entries?action=cast_ballot&limit=1&from={from}"
            ))
            .await
            .body;
        ballots.extend(entry_actions(&page));
        match page["next_from"].as_u64() {
            Some(next) => from = next,
            None => break,
        }
    }
    assert_eq!(ballots.len(), 3, "{ballots:?}");
    assert!(ballots.iter().all(|(_, action)| action == "cast_ballot"));
    let both = app
        .get(&format!(
            "/v1/log/entries?action=cast_ballot&signer={voter}"
        ))
        .await;
    assert_eq!(entry_actions(&both.body), vec![mine[1].clone()]);

    for bad in ["action=cast_vote", "signer=zz", "signer=ABC"] {
        let refused = app.get(&format!("/v1/log/entries?{bad}")).await;
        assert_eq!(refused.status, 400, "{bad}: {:?}", refused.body);
        assert_eq!(refused.body["type"], "urn:veche:problem:malformed-request");
    }
    app.stop().await;
}
