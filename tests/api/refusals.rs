//! Every refusal, data-driven: each case asserts its status, its problem type, the problem
//! content type, and that the log did not grow.

use ed25519_dalek::{Signer, SigningKey};
use projections::command::{
    CastBallot, CheckpointReference, ChoiceKind, ClosePoll, RegisterKey, Role, RoleChange, Tally,
};
use projections::protocol::COMMAND_DOMAIN;
use projections::{Action, Command, PublicKey, Timestamp};
use veche::envelope::Envelope;

use crate::harness::{poll_definition, public, refusal_mismatch, TestApp, MINUTE_MS};

/// What one case sends.
enum Request {
    /// A signed envelope to a path.
    Envelope(&'static str, Envelope),
    /// Raw bytes with a content type to a path.
    Raw(&'static str, &'static str, Vec<u8>),
}

struct Case {
    name: &'static str,
    request: Request,
    status: u16,
    code: &'static str,
}

struct Fixture {
    app: TestApp,
    official: SigningKey,
    revoked_official: SigningKey,
    voter: SigningKey,
    stranger: SigningKey,
    voter_registration: Envelope,
    open_poll: u64,
    multiple_choice_poll: u64,
    scheduled_poll: u64,
    closed_poll: u64,
}

async fn fixture(app: TestApp) -> Fixture {
    let official = app.official().await;
    let voter = app.new_key();
    let voter_registration = app.sign(&voter, Action::RegisterKey(RegisterKey {}));
    assert_eq!(app.post("/v1/keys", &voter_registration).await.status, 201);
    let start = app.now();
    let open_poll = app.open_poll(&official, poll_definition(start, 3)).await;
    let mut multiple = poll_definition(start, 4);
    multiple.choice_kind = ChoiceKind::MultipleChoice;
    multiple.max_choices = 3;
    let multiple_choice_poll = app.open_poll(&official, multiple).await;
    let mut scheduled = poll_definition(start.plus_milliseconds(120 * MINUTE_MS), 2);
    scheduled.closes_at = scheduled.opens_at.plus_milliseconds(MINUTE_MS);
    let scheduled_poll = app.open_poll(&official, scheduled).await;
    let mut short = poll_definition(start, 2);
    short.closes_at = start.plus_milliseconds(MINUTE_MS);
    let closed_poll = app.open_poll(&official, short).await;
    assert_eq!(app.vote(&voter, open_poll, vec![0]).await.status, 201);
    app.clock.advance_milliseconds(2 * MINUTE_MS);
    // Let the short poll's close event land now, so the background closer appends nothing while
    // the cases below watch the log size.
    app.node.append_due_system_events().await.unwrap();
    assert!(app.node.ledger().due_system_actions(app.now()).is_empty());
    let stranger = app.new_key();
    let revoked_official = app.official().await;
    let revoke = Action::RevokeRole(RoleChange {
        subject: public(&revoked_official),
        role: Role::Official,
        department: None,
    });
    assert_eq!(app.act(&app.admin, revoke).await.status, 201);
    Fixture {
        app,
        official,
        revoked_official,
        voter,
        stranger,
        voter_registration,
        open_poll,
        multiple_choice_poll,
        scheduled_poll,
        closed_poll,
    }
}

fn ballot(poll: u64, choices: Vec<u32>) -> Action {
    Action::CastBallot(CastBallot {
        poll,
        choices,
        version: None,
    })
}

/// Signs an arbitrary payload text with `key`.
pub(crate) fn sign_text(key: &SigningKey, payload: &str) -> Envelope {
    let mut message = COMMAND_DOMAIN.to_vec();
    message.extend_from_slice(payload.as_bytes());
    Envelope {
        payload: payload.into(),
        signature: hex::encode(key.sign(&message).to_bytes()),
        content: Vec::new(),
    }
}

fn signed_at(
    fixture: &Fixture,
    key: &SigningKey,
    action: Action,
    issued_at: Timestamp,
) -> Envelope {
    veche::client::signed_envelope(key, action, issued_at, &*fixture.app.entropy)
}

/// The voter's registration signed again a millisecond later: new payload bytes, the same nonce.
fn nonce_reused(fixture: &Fixture) -> Envelope {
    let payload = fixture.voter_registration.payload.as_bytes();
    let mut command = Command::parse(payload).expect("the fixture's registration parses");
    command.issued_at = command.issued_at.plus_milliseconds(1);
    Envelope::sign(&fixture.voter, &command)
}

fn cases(fixture: &Fixture) -> Vec<Case> {
    let app = &fixture.app;
    let now = app.now();
    // The voter's ballot in the multiple-choice poll, issued `offset` milliseconds from now.
    let ballot_issued = |offset: i64| {
        let action = ballot(fixture.multiple_choice_poll, vec![0]);
        let issued_at = now.plus_milliseconds(offset);
        Request::Envelope(
            "/v1/commands",
            signed_at(fixture, &fixture.voter, action, issued_at),
        )
    };
    let open = fixture.open_poll;
    let valid_ballot = app.sign(&fixture.stranger, ballot(open, vec![0]));
    let mut bad_signature = app.sign(
        &fixture.voter,
        ballot(fixture.multiple_choice_poll, vec![0]),
    );
    bad_signature.signature =
        bad_signature
            .signature
            .replacen(|c: char| c.is_ascii_hexdigit(), "0", 3);
    let wrong_key = {
        let genuine = app.sign(
            &fixture.voter,
            ballot(fixture.multiple_choice_poll, vec![1]),
        );
        sign_text(&fixture.stranger, &genuine.payload)
    };
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak_payload = Command {
        author: PublicKey(identity),
        nonce: "0123456789abcdef0123456789abcdef".into(),
        issued_at: now,
        action: Action::RegisterKey(RegisterKey {}),
    }
    .to_payload();
    let weak = Envelope {
        payload: String::from_utf8(weak_payload).unwrap(),
        signature: "00".repeat(64),
        content: Vec::new(),
    };
    let registration_text = app
        .sign(&fixture.voter, Action::RegisterKey(RegisterKey {}))
        .payload;
    let unknown_action = sign_text(
        &fixture.voter,
        &registration_text.replace("\"register_key\"", "\"stuff_ballot_box\""),
    );
    let unknown_field = sign_text(
        &fixture.voter,
        &registration_text.replace("\"body\":{}", "\"body\":{\"district\":\"north\"}"),
    );
    let mut one_option = poll_definition(now, 2);
    one_option.options.truncate(1);
    let mut too_many_options = poll_definition(now, 65);
    too_many_options.title = "Sixty-five options".into();
    let mut backwards = poll_definition(now, 2);
    backwards.closes_at = backwards.opens_at.plus_milliseconds(-1);
    let huge_field = {
        let mut definition = poll_definition(now, 2);
        definition.description = "x".repeat(70_000);
        app.sign(&fixture.official, Action::OpenPoll(definition))
    };
    let close_by_citizen = app.sign(
        &fixture.voter,
        Action::ClosePoll(ClosePoll {
            poll: open,
            final_tally: Tally::default(),
            checkpoint: CheckpointReference {
                size: 1,
                root: "00".repeat(32),
            },
        }),
    );
    let grant = |subject: &SigningKey, role: Role| {
        Action::GrantRole(RoleChange {
            subject: public(subject),
            role,
            department: (role == Role::Official).then(|| "parks".to_string()),
        })
    };
    let envelope_json = serde_json::to_vec(&valid_ballot).unwrap();
    let mut envelope_with_extra: serde_json::Value =
        serde_json::from_slice(&envelope_json).unwrap();
    envelope_with_extra["extra"] = serde_json::json!(1);
    let mut invalid_utf8 = b"{\"payload\":\"".to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(b"\",\"signature\":\"00\"}");

    let ballot_text = app.sign(&fixture.voter, ballot(open, vec![0])).payload;
    let huge_number = sign_text(
        &fixture.voter,
        &ballot_text.replace(&format!("\"poll\":{open}"), "\"poll\":1e30"),
    );
    let negative = sign_text(
        &fixture.voter,
        &ballot_text.replace("\"choices\":[0]", "\"choices\":[-1]"),
    );
    let infinite_latitude = sign_text(
        &fixture.voter,
        &registration_text
            .replace("\"register_key\"", "\"file_complaint\"")
            .replace("\"body\":{}", "\"body\":{\"category\":\"roads\",\"description\":\"x\",\"location\":{\"latitude\":1e999,\"longitude\":0,\"address\":\"a\",\"district\":\"d\"}}"),
    );
    let nested_payload = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested_envelope =
        format!("{{\"payload\":{nested_payload},\"signature\":\"00\"}}").into_bytes();
    let nested_in_body = sign_text(
        &fixture.voter,
        &registration_text.replace(
            "\"body\":{}",
            &format!("\"body\":{{\"x\":{}}}", "[".repeat(500) + &"]".repeat(500)),
        ),
    );
    let script_option = {
        let mut definition = poll_definition(now, 2);
        definition.options[0] = "<script>alert(1)</script>'; DROP TABLE events; --".into();
        definition.options[1] = "<script>alert(1)</script>'; DROP TABLE events; --".into();
        app.sign(&fixture.official, Action::OpenPoll(definition))
    };

    vec![
        Case {
            name: "a poll opened by a revoked official",
            request: Request::Envelope(
                "/v1/polls",
                app.sign(
                    &fixture.revoked_official,
                    Action::OpenPoll(poll_definition(now, 2)),
                ),
            ),
            status: 403,
            code: "not-official",
        },
        Case {
            name: "a number beyond u64 in the body",
            request: Request::Envelope("/v1/commands", huge_number),
            status: 400,
            code: "malformed-command",
        },
        Case {
            name: "a negative choice",
            request: Request::Envelope("/v1/commands", negative),
            status: 400,
            code: "malformed-command",
        },
        Case {
            name: "an infinite latitude",
            request: Request::Envelope("/v1/complaints", infinite_latitude),
            status: 400,
            code: "malformed-command",
        },
        Case {
            name: "an envelope nested ten thousand deep",
            request: Request::Raw("/v1/commands", "application/json", nested_envelope),
            status: 400,
            code: "malformed-request",
        },
        Case {
            name: "a payload nested five hundred deep",
            request: Request::Envelope("/v1/keys", nested_in_body),
            status: 400,
            code: "malformed-command",
        },
        Case {
            name: "two options that are the same SQL- and HTML-looking text",
            request: Request::Envelope("/v1/polls", script_option),
            status: 422,
            code: "invalid-poll",
        },
        Case {
            name: "a genesis signed by a citizen",
            request: Request::Envelope(
                "/v1/commands",
                app.sign(
                    &fixture.voter,
                    Action::Genesis(projections::command::Genesis {
                        log_origin: "evil".into(),
                        admin_keys: vec![public(&fixture.voter)],
                        recovery: None,
                    }),
                ),
            ),
            status: 403,
            code: "system-only",
        },
        Case {
            name: "a ballot before the poll opens",
            request: Request::Envelope(
                "/v1/commands",
                app.sign(&fixture.voter, ballot(fixture.scheduled_poll, vec![0])),
            ),
            status: 409,
            code: "poll-not-open-yet",
        },
        Case {
            name: "a ballot after the poll closed",
            request: Request::Envelope(
                "/v1/commands",
                app.sign(&fixture.voter, ballot(fixture.closed_poll, vec![0])),
            ),
            status: 409,
            code: "poll-closed",
        },
        Case {
            name: "a ballot from an unregistered key",
            request: Request::Envelope("/v1/commands", valid_ballot.clone()),
            status: 403,
            code: "not-eligible",
        },
        Case {
            name: "a ballot for an option the poll lacks",
            request: Request::Envelope(
                "/v1/commands",
                app.sign(
                    &fixture.voter,
                    ballot(fixture.multiple_choice_poll, vec![4]),
                ),
            ),
            status: 422,
            code: "unknown-option",
        },
        Case {
            name: "a single-choice ballot with two choices",
            request: Request::Envelope(
                "/v1/commands",
                app.sign(&fixture.official, ballot(open, vec![0, 1])),
            ),
            status: 422,
            code: "too-many-choices",
        },
        Case {
            name: "a multiple-choice ballot over its maximum",
            request: Request::Envelope(
                "/v1/commands",
                app.sign(
                    &fixture.voter,
                    ballot(fixture.multiple_choice_poll, vec![0, 1, 2, 3]),
                ),
            ),
            status: 422,
            code: "too-many-choices",
        },
        Case {
            name: "a ballot choosing one option twice",
            request: Request::Envelope(
                "/v1/commands",
                app.sign(
                    &fixture.voter,
                    ballot(fixture.multiple_choice_poll, vec![1, 1]),
                ),
            ),
            status: 422,
            code: "duplicate-choice",
        },
        Case {
            name: "a ballot choosing nothing",
            request: Request::Envelope(
                "/v1/commands",
                app.sign(&fixture.voter, ballot(fixture.multiple_choice_poll, vec![])),
            ),
            status: 422,
            code: "empty-ballot",
        },
        Case {
            name: "a second ballot where changes are off",
            request: Request::Envelope(
                "/v1/commands",
                app.sign(&fixture.voter, ballot(open, vec![1])),
            ),
            status: 409,
            code: "ballot-already-cast",
        },
        Case {
            name: "a ballot for a poll that does not exist",
            request: Request::Envelope(
                "/v1/commands",
                app.sign(&fixture.voter, ballot(9_999, vec![0])),
            ),
            status: 404,
            code: "unknown-poll",
        },
        Case {
            name: "a ballot sent to another poll's path",
            request: Request::Envelope(
                "/v1/polls/1/ballots",
                app.sign(
                    &fixture.voter,
                    ballot(fixture.multiple_choice_poll, vec![0]),
                ),
            ),
            status: 400,
            code: "malformed-request",
        },
        Case {
            name: "a citizen opening a poll",
            request: Request::Envelope(
                "/v1/polls",
                app.sign(&fixture.voter, Action::OpenPoll(poll_definition(now, 2))),
            ),
            status: 403,
            code: "not-official",
        },
        Case {
            name: "a poll with one option",
            request: Request::Envelope(
                "/v1/polls",
                app.sign(&fixture.official, Action::OpenPoll(one_option)),
            ),
            status: 422,
            code: "invalid-poll",
        },
        Case {
            name: "a poll with sixty-five options",
            request: Request::Envelope(
                "/v1/polls",
                app.sign(&fixture.official, Action::OpenPoll(too_many_options)),
            ),
            status: 422,
            code: "invalid-poll",
        },
        Case {
            name: "a poll that closes before it opens",
            request: Request::Envelope(
                "/v1/polls",
                app.sign(&fixture.official, Action::OpenPoll(backwards)),
            ),
            status: 422,
            code: "invalid-poll",
        },
        Case {
            name: "a payload over the entry limit",
            request: Request::Envelope("/v1/polls", huge_field),
            status: 413,
            code: "payload-too-large",
        },
        Case {
            name: "a citizen granting a role",
            request: Request::Envelope(
                "/v1/roles",
                app.sign(&fixture.voter, grant(&fixture.voter, Role::Moderator)),
            ),
            status: 403,
            code: "not-admin",
        },
        Case {
            name: "a role granted to an unregistered key",
            request: Request::Envelope(
                "/v1/roles",
                app.sign(&app.admin, grant(&fixture.stranger, Role::Moderator)),
            ),
            status: 422,
            code: "key-not-registered",
        },
        Case {
            name: "an official role without a department",
            request: Request::Envelope(
                "/v1/roles",
                app.sign(
                    &app.admin,
                    Action::GrantRole(RoleChange {
                        subject: public(&fixture.voter),
                        role: Role::Official,
                        department: None,
                    }),
                ),
            ),
            status: 422,
            code: "invalid-role-change",
        },
        Case {
            name: "a role granted twice",
            request: Request::Envelope(
                "/v1/roles",
                app.sign(&app.admin, grant(&fixture.official, Role::Official)),
            ),
            status: 409,
            code: "role-already-held",
        },
        Case {
            name: "a role revoked that is not held",
            request: Request::Envelope(
                "/v1/roles",
                app.sign(
                    &app.admin,
                    Action::RevokeRole(RoleChange {
                        subject: public(&fixture.voter),
                        role: Role::Registrar,
                        department: None,
                    }),
                ),
            ),
            status: 409,
            code: "role-not-held",
        },
        Case {
            name: "a citizen signing a system event",
            request: Request::Envelope("/v1/commands", close_by_citizen),
            status: 403,
            code: "system-only",
        },
        Case {
            name: "a weak key registering",
            request: Request::Envelope("/v1/keys", weak),
            status: 422,
            code: "weak-key",
        },
        Case {
            name: "a key registering twice",
            request: Request::Envelope(
                "/v1/keys",
                app.sign(&fixture.voter, Action::RegisterKey(RegisterKey {})),
            ),
            status: 409,
            code: "key-already-registered",
        },
        Case {
            // The exact envelope again is a retry, answered with its receipt: only a different
            // command under the same nonce is a replay.
            name: "a different command reusing an appended command's nonce",
            request: Request::Envelope("/v1/keys", nonce_reused(fixture)),
            status: 409,
            code: "replayed-nonce",
        },
        Case {
            name: "a command issued six minutes ago",
            request: ballot_issued(-6 * MINUTE_MS),
            status: 400,
            code: "stale-command",
        },
        Case {
            name: "a command issued two minutes ahead",
            request: ballot_issued(2 * MINUTE_MS),
            status: 400,
            code: "future-command",
        },
        Case {
            name: "a signature with altered bytes",
            request: Request::Envelope("/v1/commands", bad_signature),
            status: 400,
            code: "invalid-signature",
        },
        Case {
            name: "a signature by another key than the author",
            request: Request::Envelope("/v1/commands", wrong_key),
            status: 400,
            code: "invalid-signature",
        },
        Case {
            name: "a signature that is not hexadecimal",
            request: Request::Envelope(
                "/v1/commands",
                Envelope {
                    signature: "zz".repeat(64),
                    ..valid_ballot.clone()
                },
            ),
            status: 400,
            code: "malformed-signature",
        },
        Case {
            // The document and the OpenAPI type say lower case, as for keys and nonces: one
            // spelling per signature.
            name: "a valid signature written in upper-case hexadecimal",
            request: Request::Envelope(
                "/v1/commands",
                Envelope {
                    signature: valid_ballot.signature.to_ascii_uppercase(),
                    ..valid_ballot.clone()
                },
            ),
            status: 400,
            code: "malformed-signature",
        },
        Case {
            name: "an unknown action",
            request: Request::Envelope("/v1/commands", unknown_action),
            status: 400,
            code: "unknown-action",
        },
        Case {
            name: "an unknown field in the body",
            request: Request::Envelope("/v1/keys", unknown_field),
            status: 400,
            code: "malformed-command",
        },
        Case {
            name: "a command sent to the wrong resource",
            request: Request::Envelope(
                "/v1/polls",
                app.sign(&fixture.stranger, Action::RegisterKey(RegisterKey {})),
            ),
            status: 400,
            code: "action-mismatch",
        },
        Case {
            name: "a body that is not JSON",
            request: Request::Raw("/v1/keys", "application/json", b"{not json".to_vec()),
            status: 400,
            code: "malformed-request",
        },
        Case {
            name: "an envelope with an unknown field",
            request: Request::Raw(
                "/v1/commands",
                "application/json",
                serde_json::to_vec(&envelope_with_extra).unwrap(),
            ),
            status: 400,
            code: "malformed-request",
        },
        Case {
            name: "an envelope that is not UTF-8",
            request: Request::Raw("/v1/commands", "application/json", invalid_utf8),
            status: 400,
            code: "malformed-request",
        },
        Case {
            name: "a body over the request limit",
            request: Request::Raw("/v1/commands", "application/json", vec![b' '; 300 * 1024]),
            status: 413,
            code: "body-too-large",
        },
        Case {
            name: "a body that is not declared JSON",
            request: Request::Raw("/v1/keys", "text/plain", envelope_json),
            status: 400,
            code: "malformed-request",
        },
    ]
}

#[actix_web::test]
async fn every_refusal_has_its_status_and_problem_type_and_appends_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let fixture = fixture(TestApp::spawn(directory.path()).await).await;
    let cases = cases(&fixture);
    let app = &fixture.app;
    let mut failures = Vec::new();
    for case in cases {
        let send = async {
            match &case.request {
                Request::Envelope(path, envelope) => app.post(path, envelope).await,
                Request::Raw(path, content_type, body) => {
                    app.post_raw(path, content_type, body.clone()).await
                }
            }
        };
        let mismatch = refusal_mismatch(app, case.name, case.status, case.code, send).await;
        failures.extend(mismatch);
    }
    assert!(
        failures.is_empty(),
        "refusals that did not hold:\n{}",
        failures.join("\n")
    );
    fixture.app.stop().await;
}

#[actix_web::test]
async fn unknown_routes_and_bad_queries_are_problems_too() {
    let app = TestApp::fresh().await;
    for (path, status, code) in [
        ("/v1/nowhere", 404, "not-found"),
        ("/v1/polls/abc", 400, "malformed-request"),
        ("/v1/polls/77", 404, "not-found"),
        ("/v1/polls?limit=0", 400, "malformed-request"),
        ("/v1/polls?limit=1000", 400, "malformed-request"),
        ("/v1/log/entries?limit=5000", 400, "malformed-request"),
        ("/v1/log/entries?unknown=1", 400, "malformed-request"),
        ("/v1/keys/XYZ", 400, "malformed-request"),
    ] {
        let answer = app.get(path).await;
        assert_eq!(answer.status, status, "{path}: {:?}", answer.body);
        assert_eq!(
            answer.problem_type(),
            format!("urn:veche:problem:{code}"),
            "{path}"
        );
        assert_eq!(answer.content_type, "application/problem+json", "{path}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after_and_appends_nothing() {
    let app = TestApp::fresh().await;
    let citizen = app.citizen().await;
    let limit = projections::limits::COMMANDS_PER_KEY_PER_MINUTE_MAX;
    // The registration counted once; fill the rest of the minute with refused ballots.
    for _ in 1..limit {
        let answer = app.vote(&citizen, 9_999, vec![0]).await;
        assert_eq!(answer.problem_type(), "urn:veche:problem:unknown-poll");
    }
    let size = app.log_size().await;
    let response = app
        .http
        .post(format!("{}/v1/commands", app.address))
        .json(&app.sign(&citizen, ballot(9_999, vec![0])))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    // The allowance refills one command per second: the next one fits after a second.
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["type"], "urn:veche:problem:rate-limited");
    assert_eq!(app.log_size().await, size);

    app.clock.advance_milliseconds(MINUTE_MS);
    let next_minute = app.vote(&citizen, 9_999, vec![0]).await;
    assert_eq!(
        next_minute.problem_type(),
        "urn:veche:problem:unknown-poll",
        "a new window admits again"
    );
    app.stop().await;
}
