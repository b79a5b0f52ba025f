//! The tables together: every `Refusal` code is expected by some row, and every action is
//! accepted by some row.

use super::support::{accepted_actions, refusal_codes, Row};
use super::{
    anonymous_polls_tests, catalogue_tests, complaints_tests, erasures_tests, keys_tests,
    poll_corrections_tests, polls_tests, proposals_tests, replay_protection_tests, state_tests,
};
use crate::command::Action;
use crate::ledger::Refusal;

fn every_row() -> Vec<Row> {
    let mut rows = keys_tests::rows();
    rows.extend(catalogue_tests::rows());
    rows.extend(polls_tests::rows());
    rows.extend(complaints_tests::rows());
    rows.extend(proposals_tests::rows());
    rows.extend(erasures_tests::rows());
    rows.extend(replay_protection_tests::rows());
    rows.extend(state_tests::rows());
    rows.extend(anonymous_polls_tests::rows());
    rows.extend(poll_corrections_tests::rows());
    rows
}

/// The variants `Refusal::examples` chains, one each.
const LISTED: usize = 65;

#[test]
fn the_refusal_list_names_every_variant_once() {
    let codes: std::collections::BTreeSet<&str> =
        Refusal::examples().iter().map(Refusal::code).collect();
    assert_eq!(codes.len(), LISTED, "a refusal is missing or listed twice");
}

#[test]
fn every_refusal_code_is_expected_by_some_table_row() {
    let expected: std::collections::BTreeSet<&str> =
        refusal_codes(&every_row()).into_iter().collect();
    let uncovered: Vec<&str> = Refusal::examples()
        .iter()
        .map(Refusal::code)
        .filter(|code| !expected.contains(code))
        .collect();
    assert!(uncovered.is_empty(), "no table row expects {uncovered:?}");
    let known: std::collections::BTreeSet<&str> =
        Refusal::examples().iter().map(Refusal::code).collect();
    let unknown: Vec<&&str> = expected
        .iter()
        .filter(|code| !known.contains(*code))
        .collect();
    assert!(
        unknown.is_empty(),
        "rows expect codes no refusal has: {unknown:?}"
    );
}

#[test]
fn every_action_is_accepted_by_some_table_row() {
    let accepted: std::collections::BTreeSet<&str> =
        accepted_actions(&every_row()).into_iter().collect();
    let missing: Vec<&str> = Action::NAMES
        .iter()
        .copied()
        .filter(|name| !accepted.contains(name))
        .collect();
    assert!(missing.is_empty(), "no table row accepts {missing:?}");
}
