//! The rules of keys and roles: genesis, registration, role grants and revocations,
//! attestations, and who may sign what.

use super::support::*;
use crate::command::{
    Action, AdminHandOver, ClosePoll, RecoveryApproval, RecoveryQuorum, Role, Tally,
};
use crate::protocol::EntryKind;
use crate::protocol::PublicKey;

pub(super) fn rows() -> Vec<Row> {
    let mut rows = vec![
        row(
            "genesis signed by the server is accepted as the first entry",
            vec![],
            genesis(),
            Then::AcceptedAnd(|ledger| {
                ledger.server_key() == Some(public(SERVER))
                    && ledger.is_admin(public(ADMIN))
                    && admin_since(ledger, ADMIN) == Some(0)
            }),
        ),
        row(
            "a second genesis is misplaced",
            vec![genesis()],
            genesis(),
            Then::Refused("misplaced-genesis"),
        ),
        row(
            "genesis naming a weak admin key is refused",
            vec![],
            Step::system(genesis_naming(vec![public(ADMIN), weak_key()])),
            Then::Refused("weak-key"),
        ),
        row(
            "genesis naming no admin key is refused as weak",
            vec![],
            Step::system(genesis_naming(vec![])),
            Then::Refused("weak-key"),
        ),
        row(
            "genesis signed by a client as a command is system only",
            vec![],
            genesis().kind(EntryKind::Command),
            Then::Refused("system-only"),
        ),
        row(
            "a registration before genesis finds no genesis",
            vec![],
            Step::by(CITIZEN, register()),
            Then::Refused("missing-genesis"),
        ),
        row(
            "a new key registers itself",
            base(),
            Step::by(STRANGER, register()),
            Then::AcceptedAnd(|ledger| ledger.keys.contains_key(&public(STRANGER))),
        ),
        row(
            "a key registers only once",
            base(),
            Step::by(CITIZEN, register()),
            Then::Refused("key-already-registered"),
        ),
        row(
            "a weak key can never register",
            base(),
            Step::unsigned(weak_key(), register()),
            Then::Refused("weak-key"),
        ),
        row(
            "an entry whose signer is not the command's author is refused",
            base(),
            Step::by(NEIGHBOUR, register()).authored_by(STRANGER),
            Then::Refused("signer-is-not-author"),
        ),
        row(
            "a client action in a system entry is system only",
            base(),
            Step::by(STRANGER, register()).kind(EntryKind::System),
            Then::Refused("system-only"),
        ),
        row(
            "a system action in a system entry signed by a key other than the server's is refused",
            base(),
            Step::by(ADMIN, close_first_poll()).kind(EntryKind::System),
            Then::Refused("system-only"),
        ),
        row(
            "the admin grants a moderator role to a registered key",
            base(),
            Step::by(ADMIN, grant(NEIGHBOUR, Role::Moderator, None)),
            Then::AcceptedAnd(|ledger| {
                ledger.holds_role(public(NEIGHBOUR), Role::Moderator)
                    && granted_at(ledger, NEIGHBOUR, Role::Moderator) == Some(ledger.size - 1)
            }),
        ),
        row(
            "the admin makes a registered key an official of a department",
            base(),
            Step::by(ADMIN, grant(NEIGHBOUR, Role::Official, Some(PARKS))),
            Then::AcceptedAnd(|ledger| ledger.is_official_of(public(NEIGHBOUR), PARKS)),
        ),
        row(
            "only the admin grants roles",
            base(),
            Step::by(MODERATOR, grant(NEIGHBOUR, Role::Moderator, None)),
            Then::Refused("not-admin"),
        ),
        row(
            "a role cannot be granted to an unregistered key",
            base(),
            Step::by(ADMIN, grant(STRANGER, Role::Moderator, None)),
            Then::Refused("key-not-registered"),
        ),
        row(
            "an official needs a department",
            base(),
            Step::by(ADMIN, grant(NEIGHBOUR, Role::Official, None)),
            Then::Refused("invalid-role-change"),
        ),
        row(
            "an official's department is not blank",
            base(),
            Step::by(ADMIN, grant(NEIGHBOUR, Role::Official, Some("  "))),
            Then::Refused("invalid-role-change"),
        ),
        row(
            "a moderator belongs to no department",
            base(),
            Step::by(ADMIN, grant(NEIGHBOUR, Role::Moderator, Some(ROADS))),
            Then::Refused("invalid-role-change"),
        ),
        row(
            "the admin makes a registered key a gateway, which files for residents without keys",
            base(),
            Step::by(ADMIN, grant(NEIGHBOUR, Role::Gateway, None)),
            Then::AcceptedAnd(|ledger| ledger.holds_role(public(NEIGHBOUR), Role::Gateway)),
        ),
        row(
            "a gateway belongs to no department",
            base(),
            Step::by(ADMIN, grant(NEIGHBOUR, Role::Gateway, Some(ROADS))),
            Then::Refused("invalid-role-change"),
        ),
        row(
            "a role already held cannot be granted again",
            base(),
            Step::by(ADMIN, grant(MODERATOR, Role::Moderator, None)),
            Then::Refused("role-already-held"),
        ),
        row(
            "the admin revokes a role the key holds",
            base(),
            Step::by(ADMIN, revoke(MODERATOR, Role::Moderator)),
            Then::AcceptedAnd(|ledger| {
                // A key left with no role is no longer listed among the holders.
                !ledger.holds_role(public(MODERATOR), Role::Moderator)
                    && !ledger.keys.role_holders().contains_key(&public(MODERATOR))
            }),
        ),
        row(
            "a role the key does not hold cannot be revoked",
            base(),
            Step::by(ADMIN, revoke(CITIZEN, Role::Moderator)),
            Then::Refused("role-not-held"),
        ),
        row(
            "only the admin revokes roles",
            base(),
            Step::by(OFFICIAL, revoke(MODERATOR, Role::Moderator)),
            Then::Refused("not-admin"),
        ),
        row(
            "a revoked role can be granted again, and is held since the new grant",
            base_and(vec![Step::by(ADMIN, revoke(MODERATOR, Role::Moderator))]),
            Step::by(ADMIN, grant(MODERATOR, Role::Moderator, None)),
            Then::AcceptedAnd(|ledger| {
                granted_at(ledger, MODERATOR, Role::Moderator) == Some(ledger.size - 1)
            }),
        ),
        row(
            "a registrar attests a registered key's district",
            base(),
            Step::by(REGISTRAR, attest(NEIGHBOUR, Some(NORTH))),
            Then::AcceptedAnd(|ledger| {
                ledger
                    .keys
                    .get(&public(NEIGHBOUR))
                    .is_some_and(|record| record.verified() && record.district() == Some(NORTH))
            }),
        ),
        row(
            "an attestation without a district is accepted",
            base(),
            Step::by(REGISTRAR, attest(NEIGHBOUR, None)),
            Then::Accepted,
        ),
        row(
            "only a registrar attests residents",
            base(),
            Step::by(ADMIN, attest(NEIGHBOUR, Some(NORTH))),
            Then::Refused("not-registrar"),
        ),
        row(
            "an unregistered key cannot be attested",
            base(),
            Step::by(REGISTRAR, attest(STRANGER, Some(NORTH))),
            Then::Refused("key-not-registered"),
        ),
        row(
            "an attested district is not blank",
            base(),
            Step::by(REGISTRAR, attest(NEIGHBOUR, Some(" "))),
            Then::Refused("invalid-attestation"),
        ),
        row(
            "the admin hands its office to a new key and stops being an admin",
            base(),
            Step::by(ADMIN, hand_over(SUCCESSOR)),
            Then::AcceptedAnd(|ledger| {
                ledger.is_admin(public(SUCCESSOR))
                    && !ledger.is_admin(public(ADMIN))
                    && admin_since(ledger, SUCCESSOR) == Some(ledger.size - 1)
                    && admin_since(ledger, ADMIN).is_none()
            }),
        ),
        row(
            "the old admin key can do nothing after its hand-over",
            base_and(vec![Step::by(ADMIN, hand_over(SUCCESSOR))]),
            Step::by(ADMIN, grant(NEIGHBOUR, Role::Moderator, None)),
            Then::Refused("not-admin"),
        ),
        row(
            "the successor acts as admin at once",
            base_and(vec![Step::by(ADMIN, hand_over(SUCCESSOR))]),
            Step::by(SUCCESSOR, grant(NEIGHBOUR, Role::Moderator, None)),
            Then::Accepted,
        ),
        row(
            "only an admin hands over the admin office",
            base(),
            Step::by(OFFICIAL, hand_over(SUCCESSOR)),
            Then::Refused("not-admin"),
        ),
        row(
            "the admin office is not handed to a weak key",
            base(),
            Step::by(
                ADMIN,
                Action::HandOverAdmin(AdminHandOver {
                    successor: weak_key(),
                }),
            ),
            Then::Refused("weak-key"),
        ),
        row(
            "the admin office is not handed to an admin key",
            base(),
            Step::by(ADMIN, hand_over(ADMIN)),
            Then::Refused("invalid-admin-change"),
        ),
        row(
            "the admin office is not handed to a key that holds a role",
            base(),
            Step::by(ADMIN, hand_over(MODERATOR)),
            Then::Refused("separation-of-duties"),
        ),
        row(
            "the admin office is not handed to a recovery key",
            base(),
            Step::by(ADMIN, hand_over(RECOVERY_KEYS[0])),
            Then::Refused("separation-of-duties"),
        ),
        row(
            "one recovery approval is short of the threshold and changes no admin",
            base(),
            Step::by(RECOVERY_KEYS[0], recover(ADMIN, SUCCESSOR)),
            Then::AcceptedAnd(|ledger| {
                ledger.is_admin(public(ADMIN))
                    && !ledger.is_admin(public(SUCCESSOR))
                    && ledger.keys.pending_recoveries().len() == 1
            }),
        ),
        row(
            "the approval that reaches the threshold replaces a lost or leaked admin key",
            base_and(vec![Step::by(RECOVERY_KEYS[0], recover(ADMIN, SUCCESSOR))]),
            Step::by(RECOVERY_KEYS[2], recover(ADMIN, SUCCESSOR)),
            Then::AcceptedAnd(|ledger| {
                ledger.is_admin(public(SUCCESSOR))
                    && !ledger.is_admin(public(ADMIN))
                    && ledger.keys.pending_recoveries().is_empty()
                    && admin_since(ledger, SUCCESSOR) == Some(ledger.size - 1)
            }),
        ),
        row(
            "approvals of different successors do not add up",
            base_and(vec![Step::by(RECOVERY_KEYS[0], recover(ADMIN, SUCCESSOR))]),
            Step::by(RECOVERY_KEYS[1], recover(ADMIN, STRANGER)),
            Then::AcceptedAnd(|ledger| ledger.is_admin(public(ADMIN))),
        ),
        row(
            "a recovery key approves a replacement once",
            base_and(vec![Step::by(RECOVERY_KEYS[0], recover(ADMIN, SUCCESSOR))]),
            Step::by(RECOVERY_KEYS[0], recover(ADMIN, SUCCESSOR)),
            Then::Refused("recovery-already-approved"),
        ),
        row(
            "only a recovery key named at genesis approves a recovery",
            base(),
            Step::by(CITIZEN, recover(ADMIN, SUCCESSOR)),
            Then::Refused("not-recovery-key"),
        ),
        row(
            "a log whose genesis names no recovery quorum cannot be recovered",
            vec![Step::system(genesis_naming(vec![public(ADMIN)]))],
            Step::by(RECOVERY_KEYS[0], recover(ADMIN, SUCCESSOR)),
            Then::Refused("not-recovery-key"),
        ),
        row(
            "a recovery replaces an admin key, not any key",
            base(),
            Step::by(RECOVERY_KEYS[0], recover(CITIZEN, SUCCESSOR)),
            Then::Refused("invalid-admin-change"),
        ),
        row(
            "genesis refuses a recovery threshold its keys cannot meet",
            vec![],
            Step::system(genesis_with_recovery(
                RECOVERY_KEYS.iter().map(|&seed| public(seed)).collect(),
                4,
            )),
            Then::Refused("invalid-admin-change"),
        ),
        row(
            "genesis refuses an admin key among the recovery keys",
            vec![],
            Step::system(genesis_with_recovery(
                vec![public(ADMIN), public(RECOVERY_KEYS[0])],
                1,
            )),
            Then::Refused("separation-of-duties"),
        ),
        row(
            "the admin cannot grant itself a role",
            base(),
            Step::by(ADMIN, grant(ADMIN, Role::Moderator, None)),
            Then::Refused("separation-of-duties"),
        ),
        row(
            "a registrar cannot attest their own key",
            base(),
            Step::by(REGISTRAR, attest(REGISTRAR, Some(NORTH))),
            Then::Refused("separation-of-duties"),
        ),
    ];
    rows.extend(revocation_rows());
    rows.extend(resident_tag_rows());
    rows
}

/// The position of the grant `seed`'s key holds `role` since, if it holds it.
fn granted_at(ledger: &crate::Ledger, seed: u8, role: Role) -> Option<u64> {
    let held = ledger.keys.roles_of(public(seed)).get(&role)?;
    Some(held.granted.position)
}

/// The position of the entry that made `seed`'s key an admin, if it is one.
fn admin_since(ledger: &crate::Ledger, seed: u8) -> Option<u64> {
    let grant = ledger.keys.admins_since().get(&public(seed))?;
    Some(grant.position)
}

/// The citizen's replacement for a lost key.
const NEW_KEY: u8 = 14;

/// The prelude, the citizen's new key registered and their old key revoked by the registrar.
fn replaced() -> Vec<Step> {
    base_and(vec![
        Step::by(NEW_KEY, register()),
        Step::by(REGISTRAR, revoke_key(CITIZEN)),
    ])
}

fn revocation_rows() -> Vec<Row> {
    vec![
        row(
            "a citizen revokes their own key and its attestation ends",
            base(),
            Step::by(CITIZEN, revoke_key(CITIZEN)),
            Then::AcceptedAnd(|ledger| {
                let resident = &ledger.keys.residents()[&resident_tag(CITIZEN)];
                ledger.keys.get(&public(CITIZEN)).is_some_and(|record| {
                    record.revoked() && !record.verified() && resident.active_key.is_none()
                })
            }),
        ),
        row(
            "a registrar revokes a resident's lost key",
            base(),
            Step::by(REGISTRAR, revoke_key(CITIZEN)),
            Then::AcceptedAnd(|ledger| ledger.keys.is_revoked(public(CITIZEN))),
        ),
        row(
            "a revoked key can do nothing more",
            replaced(),
            Step::by(CITIZEN, revoke_key(NEW_KEY)),
            Then::Refused("key-revoked"),
        ),
        row(
            "a revoked key is not revoked again",
            replaced(),
            Step::by(REGISTRAR, revoke_key(CITIZEN)),
            Then::Refused("key-revoked"),
        ),
        row(
            "only the key itself or a registrar revokes a key",
            base(),
            Step::by(NEIGHBOUR, revoke_key(CITIZEN)),
            Then::Refused("not-registrar"),
        ),
        row(
            "a registrar does not revoke an office holder's key",
            base(),
            Step::by(REGISTRAR, revoke_key(OFFICIAL)),
            Then::Refused("separation-of-duties"),
        ),
        row(
            "an unregistered key cannot be revoked",
            base(),
            Step::by(REGISTRAR, revoke_key(STRANGER)),
            Then::Refused("key-not-registered"),
        ),
    ]
}

fn resident_tag_rows() -> Vec<Row> {
    vec![
        row(
            "a second active key for the same resident is refused",
            base_and(vec![Step::by(NEW_KEY, register())]),
            Step::by(REGISTRAR, attest_as(NEW_KEY, Some(NORTH), CITIZEN)),
            Then::Refused("resident-already-attested"),
        ),
        row(
            "once the old key is revoked, the resident's new key is attested with the same tag",
            replaced(),
            Step::by(REGISTRAR, attest_as(NEW_KEY, Some(NORTH), CITIZEN)),
            Then::AcceptedAnd(|ledger| {
                let resident = &ledger.keys.residents()[&resident_tag(CITIZEN)];
                resident.active_key == Some(public(NEW_KEY))
                    && ledger.keys.voter_number(public(NEW_KEY))
                        == ledger.keys.voter_number(public(CITIZEN))
            }),
        ),
        row(
            "a revoked key is attested no more",
            replaced(),
            Step::by(REGISTRAR, attest(CITIZEN, Some(NORTH))),
            Then::Refused("key-revoked"),
        ),
        row(
            "a verified resident carries a resident tag",
            base(),
            Step::by(REGISTRAR, attest_without_tag(NEIGHBOUR)),
            Then::Refused("invalid-attestation"),
        ),
        row(
            "a key's resident tag never changes",
            base(),
            Step::by(REGISTRAR, attest_as(CITIZEN, Some(NORTH), NEIGHBOUR)),
            Then::Refused("invalid-attestation"),
        ),
        row(
            "a resident tag is 64 lowercase hexadecimal characters",
            base(),
            Step::by(REGISTRAR, attest_with_tag(NEIGHBOUR, "AB".repeat(32))),
            Then::Refused("invalid-attestation"),
        ),
    ]
}

fn attest_with_tag(subject: u8, tag: String) -> Action {
    let Action::AttestResident(mut attestation) = attest(subject, None) else {
        unreachable!("attest builds an attestation")
    };
    attestation.resident_tag = Some(tag);
    Action::AttestResident(attestation)
}

fn attest_without_tag(subject: u8) -> Action {
    let Action::AttestResident(mut attestation) = attest(subject, None) else {
        unreachable!("attest builds an attestation")
    };
    attestation.resident_tag = None;
    Action::AttestResident(attestation)
}

fn hand_over(successor: u8) -> Action {
    Action::HandOverAdmin(AdminHandOver {
        successor: public(successor),
    })
}

fn recover(revoked: u8, successor: u8) -> Action {
    Action::ApproveRecovery(RecoveryApproval {
        revoked: public(revoked),
        successor: public(successor),
    })
}

fn genesis_with_recovery(keys: Vec<PublicKey>, threshold: u32) -> Action {
    let Action::Genesis(mut genesis) = genesis_naming(vec![public(ADMIN)]) else {
        unreachable!("genesis_naming names a genesis")
    };
    genesis.recovery = Some(RecoveryQuorum { keys, threshold });
    Action::Genesis(genesis)
}

/// A close of poll 0 with an empty tally: only its signer matters in this table.
fn close_first_poll() -> Action {
    Action::ClosePoll(ClosePoll {
        poll: 0,
        final_tally: Tally::default(),
        checkpoint: crate::command::CheckpointReference {
            size: 0,
            root: String::new(),
        },
    })
}

#[test]
fn every_rule_of_keys_and_roles_holds_as_its_table_says() {
    run_table(&rows());
}
