//! The admin office over HTTP: a hand-over to a new key, and a recovery by the genesis quorum of
//! the recovery keys a new data directory creates.

use ed25519_dalek::SigningKey;
use projections::command::{AdminHandOver, RecoveryApproval, Role};
use projections::Action;

use crate::harness::{public, TestApp};

/// The admin keys `/v1/log` names now.
async fn admin_keys(app: &TestApp) -> Vec<String> {
    let log = app.get("/v1/log").await;
    serde_json::from_value(log.body["admin_keys"].clone()).unwrap()
}

fn recovery_keys(directory: &std::path::Path) -> Vec<SigningKey> {
    (1..=projections::limits::RECOVERY_KEYS_CREATED)
        .map(|number| {
            let file = directory.join(veche::server::recovery_key_file(number));
            veche::keys::read_key_file(&file).unwrap()
        })
        .collect()
}

#[actix_web::test]
async fn the_admin_hands_its_office_to_a_new_key_and_the_old_key_loses_it() {
    let app = TestApp::fresh().await;
    let successor = app.new_key();
    let handed = app
        .act(
            &app.admin,
            Action::HandOverAdmin(AdminHandOver {
                successor: public(&successor),
            }),
        )
        .await;
    assert_eq!(handed.status, 201, "{:?}", handed.body);
    assert_eq!(admin_keys(&app).await, vec![public(&successor).to_hex()]);

    let citizen = app.citizen().await;
    let grant = crate::harness::official_grant(&citizen, "transport");
    let refused = app.act(&app.admin, grant.clone()).await;
    assert_eq!(
        (refused.status, refused.problem_type()),
        (403, "urn:veche:problem:not-admin")
    );
    assert_eq!(app.act(&successor, grant).await.status, 201);
}

#[actix_web::test]
async fn two_of_the_three_recovery_keys_replace_a_lost_admin_key_and_one_alone_does_not() {
    let directory = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(directory.path()).await;
    let custodians = recovery_keys(directory.path());
    let successor = app.new_key();
    let approval = Action::ApproveRecovery(RecoveryApproval {
        revoked: public(&app.admin),
        successor: public(&successor),
    });

    assert_eq!(app.act(&custodians[0], approval.clone()).await.status, 201);
    assert_eq!(admin_keys(&app).await, vec![public(&app.admin).to_hex()]);
    let again = app.act(&custodians[0], approval.clone()).await;
    assert_eq!(
        (again.status, again.problem_type()),
        (409, "urn:veche:problem:recovery-already-approved")
    );
    let stranger = app.act(&app.new_key(), approval.clone()).await;
    assert_eq!(
        (stranger.status, stranger.problem_type()),
        (403, "urn:veche:problem:not-recovery-key")
    );

    assert_eq!(app.act(&custodians[2], approval).await.status, 201);
    assert_eq!(admin_keys(&app).await, vec![public(&successor).to_hex()]);
    let citizen = app.citizen().await;
    let change = projections::command::RoleChange {
        subject: public(&citizen),
        role: Role::Moderator,
        department: None,
    };
    let refused = app.act(&app.admin, Action::GrantRole(change.clone())).await;
    assert_eq!(
        refused.status, 403,
        "the replaced key is no admin: {:?}",
        refused.body
    );
    assert_eq!(
        app.act(&successor, Action::GrantRole(change)).await.status,
        201
    );
    app.stop().await;
    crate::harness::assert_data_directory_verifies(directory.path());
}
