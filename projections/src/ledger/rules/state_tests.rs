//! The rules of state attestations: the server may state the size and digest of the ledger the
//! log folds to, or of the ledger at its latest mark, and only exactly those.

use super::support::*;
use crate::command::{Action, StateAttestation, StateMark};
use crate::ledger::{snapshot, Ledger};

/// The mark of the state as it is.
fn mark() -> Step {
    Step::system_with(|ledger: &Ledger| Action::MarkState(StateMark { size: ledger.size }))
}

/// An attestation of the state the prelude folds to, where the first mark after it sits.
fn attest_prelude() -> Step {
    let prelude = fold_steps(&base()).expect("the prelude folds");
    let attestation = StateAttestation {
        size: prelude.size,
        ledger_sha256: hex::encode(snapshot::digest(&prelude)),
    };
    Step::system(Action::AttestState(attestation))
}

/// The prelude, a mark of its state, and a citizen's registration after it.
fn marked_and_moved_on() -> Vec<Step> {
    base_and(vec![mark(), Step::by(STRANGER, register())])
}

/// The attestation of `ledger` as it is, changed by `change`.
fn attest_with(change: fn(&mut StateAttestation)) -> impl Fn(&Ledger) -> Action {
    move |ledger| {
        let mut attestation = StateAttestation {
            size: ledger.size,
            ledger_sha256: hex::encode(snapshot::digest(ledger)),
        };
        change(&mut attestation);
        Action::AttestState(attestation)
    }
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        row(
            "the server attests the size and digest of the state every entry before folds to",
            base(),
            Step::system_with(attest_with(|_| {})),
            Then::Accepted,
        ),
        row(
            "an attestation whose digest is not the state's is refused",
            base(),
            Step::system_with(attest_with(|attestation| {
                attestation.ledger_sha256 = hex::encode([7u8; 32]);
            })),
            Then::Refused("state-digest-mismatch"),
        ),
        row(
            "an attestation naming another size than the state's is refused",
            base(),
            Step::system_with(attest_with(|attestation| attestation.size -= 1)),
            Then::Refused("state-digest-mismatch"),
        ),
        row(
            "a client may not attest the state",
            base(),
            Step::by_with(CITIZEN, attest_with(|_| {})),
            Then::Refused("system-only"),
        ),
        row(
            "the server marks the state every entry before the mark folds to",
            base(),
            mark(),
            Then::AcceptedAnd(|ledger| ledger.state_mark == Some(ledger.size - 1)),
        ),
        row(
            "a mark naming another size than the state's is refused",
            base(),
            Step::system_with(|ledger: &Ledger| {
                Action::MarkState(StateMark {
                    size: ledger.size + 1,
                })
            }),
            Then::Refused("state-digest-mismatch"),
        ),
        row(
            "a client may not mark the state",
            base(),
            Step::by_with(CITIZEN, |ledger: &Ledger| {
                Action::MarkState(StateMark { size: ledger.size })
            }),
            Then::Refused("system-only"),
        ),
        row(
            "entries after a mark, the server attests the state at the mark, which ends the mark",
            marked_and_moved_on(),
            attest_prelude(),
            Then::AcceptedAnd(|ledger| ledger.state_mark.is_none()),
        ),
        row(
            "an attestation of the mark naming the digest of the state now is refused",
            marked_and_moved_on(),
            Step::system_with(|ledger: &Ledger| {
                let prelude = fold_steps(&base()).expect("the prelude folds");
                Action::AttestState(StateAttestation {
                    size: prelude.size,
                    ledger_sha256: hex::encode(snapshot::digest(ledger)),
                })
            }),
            Then::Refused("state-digest-mismatch"),
        ),
        row(
            "an attestation of an earlier size that no mark names is refused",
            base_and(vec![Step::by(STRANGER, register())]),
            attest_prelude(),
            Then::Refused("state-digest-mismatch"),
        ),
        row(
            "a mark attested once cannot be attested again",
            {
                let mut steps = marked_and_moved_on();
                steps.push(attest_prelude());
                steps
            },
            attest_prelude(),
            Then::Refused("state-digest-mismatch"),
        ),
        row(
            "a later mark replaces an earlier one, which can no longer be attested",
            {
                let mut steps = marked_and_moved_on();
                steps.push(mark());
                steps
            },
            attest_prelude(),
            Then::Refused("state-digest-mismatch"),
        ),
        row(
            "a stopping server's attestation of the state now ends the pending mark",
            {
                let mut steps = marked_and_moved_on();
                steps.push(Step::system_with(attest_with(|_| {})));
                steps
            },
            attest_prelude(),
            Then::Refused("state-digest-mismatch"),
        ),
    ]
}

#[test]
fn every_rule_of_state_attestations_holds_as_its_table_says() {
    run_table(&rows());
}
