//! The deadline index at scale: thousands of deadlines that fall due at one instant are listed
//! together at that instant, none a millisecond before, and each leaves the index once its
//! event is folded.

use super::complaints_tests::{accept, filing};
use super::support::*;
use crate::command::{Action, ComplaintReference};

const COMPLAINTS: usize = 3_000;

#[test]
fn thousands_of_sla_deadlines_falling_due_at_one_instant_are_all_listed_at_that_instant() {
    let mut steps = base();
    for _ in 0..COMPLAINTS {
        steps.push(Step::by(CITIZEN, Action::FileComplaint(filing())));
    }
    for index in 0..COMPLAINTS {
        steps.push(Step::by_with(MODERATOR, move |ledger| {
            accept(nth(&ledger.complaints, index))
        }));
    }
    let ledger = fold_steps(&steps).unwrap();
    let deadlines: std::collections::BTreeSet<_> = ledger
        .complaints
        .values()
        .map(|complaint| complaint.deadline)
        .collect();
    let [Some(deadline)] = deadlines.into_iter().collect::<Vec<_>>()[..] else {
        panic!("every complaint was accepted at T0 with one SLA, so one deadline")
    };
    assert_eq!(ledger.pending_system_actions(), COMPLAINTS);
    assert!(!ledger.has_due_system_actions(deadline));
    assert!(ledger.due_system_actions(deadline).is_empty());

    let due_at = deadline.plus_milliseconds(1);
    let due = ledger.due_system_actions(due_at);
    let expected: Vec<Action> = ledger
        .complaints
        .keys()
        .map(|&complaint| Action::BreachSla(ComplaintReference { complaint }))
        .collect();
    assert_eq!(due, expected, "every breach, in complaint order");
    assert_eq!(due, scanned_due(&ledger, due_at));

    let breaches: Vec<Step> = due
        .into_iter()
        .map(|action| Step::system(action).at(due_at))
        .collect();
    let ledger = fold_onto(ledger, &breaches).unwrap();
    assert!(ledger.due_system_actions(due_at).is_empty());
    assert_eq!(
        ledger.pending_system_actions(),
        0,
        "a breached complaint owes nothing more"
    );
}
