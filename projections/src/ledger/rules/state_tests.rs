//! The rules of state attestations: the server may state the size and digest of the ledger the
//! log folds to, and only exactly those.

use super::support::*;
use crate::command::{Action, StateAttestation};
use crate::ledger::{snapshot, Ledger};

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
    ]
}

#[test]
fn every_rule_of_state_attestations_holds_as_its_table_says() {
    run_table(&rows());
}
