//! The rules of erasure and redaction: an author erases their own content, a moderator redacts
//! anyone's with a public reason code, each entry's content once.

use super::support::*;
use crate::command::{
    Action, ComplaintFiling, ContentReference, Degrees, Location, Redaction, RedactionReason,
    RejectionReason, Triage, TriageDecision,
};
use crate::content::Commitment;
use crate::ledger::complaints::ComplaintStatus;
use crate::ledger::Ledger;

fn filed() -> Step {
    Step::by(
        CITIZEN,
        Action::FileComplaint(ComplaintFiling {
            category: POTHOLES.into(),
            description: Commitment([1; 32]),
            location: Location {
                latitude: Degrees(55.75),
                longitude: Degrees(37.61),
                address: Commitment([2; 32]),
                district: NORTH.into(),
            },
            attachments: vec![],
            through_gateway: false,
        }),
    )
}

/// The position of the last entry that commits to content.
fn last_content(ledger: &Ledger) -> u64 {
    match ledger.erasures.keys().next_back() {
        Some(position) => *position,
        None => panic!("the table filed nothing with content"),
    }
}

fn erase(seed: u8) -> Step {
    Step::by_with(seed, |ledger| {
        Action::EraseContent(ContentReference {
            entry: last_content(ledger),
        })
    })
}

fn redact(seed: u8) -> Step {
    Step::by_with(seed, |ledger| {
        Action::RedactContent(Redaction {
            entry: last_content(ledger),
            reason: RedactionReason::ThirdPartyPersonalData,
        })
    })
}

/// The moderator rejects the last filing as spam, redacting its content or not.
fn reject_as_spam(redact_content: bool) -> Step {
    Step::by_with(MODERATOR, move |ledger| {
        Action::TriageComplaint(Triage {
            complaint: last_content(ledger),
            decision: TriageDecision::Reject {
                rejection: RejectionReason::Spam { redact_content },
            },
        })
    })
}

fn rejected(ledger: &Ledger, complaint: u64) -> bool {
    let status = ledger
        .complaints
        .get(&complaint)
        .map(|complaint| complaint.status);
    status == Some(ComplaintStatus::Rejected)
}

fn rejected_and_erased(ledger: &Ledger) -> bool {
    rejected(ledger, last_content(ledger)) && erased(ledger)
}

fn rejected_and_kept(ledger: &Ledger) -> bool {
    let complaint = last_content(ledger);
    rejected(ledger, complaint) && ledger.erasures.erased_by(complaint).is_none()
}

fn erased(ledger: &Ledger) -> bool {
    let entry = last_content(ledger);
    ledger.erasures.erased_by(entry) == Some(ledger.size - 1)
}

/// After a filing, `when` erases its content, and the ledger names `when` as the erasure.
fn erases(name: &'static str, when: Step) -> Row {
    row(
        name,
        base_and(vec![filed()]),
        when,
        Then::AcceptedAnd(erased),
    )
}

/// After a filing, `when` is refused with `code`.
fn refused(name: &'static str, when: Step, code: &'static str) -> Row {
    row(name, base_and(vec![filed()]), when, Then::Refused(code))
}

/// After a filing and its author's erasure, `when` finds the content gone.
fn after_erasure(name: &'static str, when: Step) -> Row {
    let given = base_and(vec![filed(), erase(CITIZEN)]);
    row(name, given, when, Then::Refused("content-already-erased"))
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        erases(
            "the author erases their own complaint's content and the log names the erasure",
            erase(CITIZEN),
        ),
        refused(
            "nobody else erases a citizen's content",
            erase(NEIGHBOUR),
            "not-author",
        ),
        row(
            "an entry without content has nothing to erase",
            base(),
            Step::by(CITIZEN, Action::EraseContent(ContentReference { entry: 1 })),
            Then::Refused("unknown-content"),
        ),
        after_erasure("content is erased once", erase(CITIZEN)),
        erases(
            "a moderator redacts a citizen's content with a public reason",
            redact(MODERATOR),
        ),
        refused(
            "only a moderator redacts",
            redact(OFFICIAL),
            "not-moderator",
        ),
        after_erasure(
            "content its author erased is not redacted again",
            redact(MODERATOR),
        ),
        row(
            "a moderator rejects a complaint as spam and redacts it in the same entry",
            base_and(vec![filed()]),
            reject_as_spam(true),
            Then::AcceptedAnd(rejected_and_erased),
        ),
        row(
            "a spam rejection that does not ask to redact keeps the content",
            base_and(vec![filed()]),
            reject_as_spam(false),
            Then::AcceptedAnd(rejected_and_kept),
        ),
        after_erasure(
            "a spam rejection does not redact what its author already erased",
            reject_as_spam(true),
        ),
    ]
}

#[test]
fn every_rule_of_erasure_and_redaction_holds_as_its_table_says() {
    run_table(&rows());
}
