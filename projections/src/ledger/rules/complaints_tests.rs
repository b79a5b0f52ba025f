//! The rules of "Our City" complaints: filing, triage, merges, supplements, the department's
//! work and answers, the author's confirmation or dispute, and the server's deadline events.

use super::support::*;
use crate::command::{
    Action, Attachment, CannotResolve, ComplaintFiling, ComplaintReference, Degrees, Dispute,
    Location, Merge, RejectionReason, Resolution, Role, Supplement, Triage, TriageDecision,
};
use crate::complaints::ComplaintStatus;
use crate::ledger::Ledger;
use crate::protocol::EntryKind;

pub(super) fn filing() -> ComplaintFiling {
    ComplaintFiling {
        category: POTHOLES.into(),
        description: committed(1),
        location: Location {
            latitude: Degrees(55.75),
            longitude: Degrees(37.61),
            address: committed(2),
            district: NORTH.into(),
        },
        attachments: vec![],
        through_gateway: false,
    }
}

/// A filing marked as a gateway's, for a resident who holds no key.
fn through_gateway() -> ComplaintFiling {
    ComplaintFiling {
        through_gateway: true,
        ..filing()
    }
}

fn file(change: impl Fn(&mut ComplaintFiling)) -> Step {
    let mut filed = filing();
    change(&mut filed);
    Step::by(CITIZEN, Action::FileComplaint(filed))
}

/// A command of `seed` about the `index`-th complaint of the log.
fn on(seed: u8, index: usize, action: fn(u64) -> Action) -> Step {
    Step::by_with(seed, move |ledger| action(nth(&ledger.complaints, index)))
}

fn system_on(index: usize, action: fn(u64) -> Action) -> Step {
    Step::system_with(move |ledger| action(nth(&ledger.complaints, index)))
}

fn triage(complaint: u64, decision: TriageDecision) -> Action {
    Action::TriageComplaint(Triage {
        complaint,
        decision,
    })
}

pub(super) fn accept(complaint: u64) -> Action {
    triage(complaint, TriageDecision::Accept)
}

fn reject_as_spam(complaint: u64) -> Action {
    triage(
        complaint,
        TriageDecision::Reject {
            rejection: RejectionReason::Spam {
                redact_content: false,
            },
        },
    )
}

fn ask(complaint: u64) -> Action {
    triage(
        complaint,
        TriageDecision::NeedsInfo {
            question: "Which side of the street?".into(),
        },
    )
}

fn supplement(complaint: u64) -> Action {
    Action::SupplementComplaint(Supplement {
        complaint,
        text: committed(3),
        attachments: vec![photo()],
    })
}

fn photo() -> Attachment {
    Attachment {
        sha256: "ab".repeat(32),
        url: committed(4),
    }
}

/// A commitment standing for content kept beside the log (its rules are `content.rs`'s).
fn committed(seed: u8) -> crate::content::Commitment {
    crate::content::Commitment([seed; 32])
}

fn reference(complaint: u64) -> ComplaintReference {
    ComplaintReference { complaint }
}

fn start(complaint: u64) -> Action {
    Action::StartWork(reference(complaint))
}

fn resolve(complaint: u64) -> Action {
    Action::ResolveComplaint(Resolution {
        complaint,
        answer: "Filled and sealed".into(),
        evidence: vec![photo()],
    })
}

fn cannot(complaint: u64) -> Action {
    Action::CannotResolve(CannotResolve {
        complaint,
        reason: "The street is private".into(),
    })
}

fn confirm(complaint: u64) -> Action {
    Action::ConfirmResolution(reference(complaint))
}

fn dispute(complaint: u64) -> Action {
    Action::DisputeResolution(Dispute {
        complaint,
        reason: committed(5),
    })
}

fn breach(complaint: u64) -> Action {
    Action::BreachSla(reference(complaint))
}

fn close_unconfirmed(complaint: u64) -> Action {
    Action::CloseUnconfirmed(reference(complaint))
}

fn first(ledger: &Ledger) -> &crate::complaints::Complaint {
    &ledger.complaints[&nth(&ledger.complaints, 0)]
}

fn filed() -> Vec<Step> {
    base_and(vec![file(|_| {})])
}

fn accepted() -> Vec<Step> {
    let mut steps = filed();
    steps.push(on(MODERATOR, 0, accept));
    steps
}

fn in_progress() -> Vec<Step> {
    let mut steps = accepted();
    steps.push(on(OFFICIAL, 0, start));
    steps
}

fn resolved() -> Vec<Step> {
    let mut steps = in_progress();
    steps.push(on(OFFICIAL, 0, resolve));
    steps
}

fn needs_info() -> Vec<Step> {
    let mut steps = filed();
    steps.push(on(MODERATOR, 0, ask));
    steps
}

/// Two filed complaints by the citizen.
fn two_filed() -> Vec<Step> {
    base_and(vec![file(|_| {}), file(|_| {})])
}

pub(super) fn rows() -> Vec<Row> {
    let mut rows = filing_rows();
    rows.extend(triage_rows());
    rows.extend(department_rows());
    rows.extend(author_rows());
    rows.extend(system_rows());
    rows
}

fn filing_rows() -> Vec<Row> {
    vec![
        row(
            "a registered citizen files a complaint",
            base(),
            file(|_| {}),
            Then::AcceptedAnd(|ledger| first(ledger).status == ComplaintStatus::Filed),
        ),
        row(
            "an unregistered key cannot file",
            base(),
            Step::by(STRANGER, Action::FileComplaint(filing())),
            Then::Refused("not-eligible"),
        ),
        row(
            "a gateway files a complaint for a resident without a key, and the entry says so",
            base_and(vec![Step::by(ADMIN, grant(NEIGHBOUR, Role::Gateway, None))]),
            Step::by(NEIGHBOUR, Action::FileComplaint(through_gateway())),
            Then::AcceptedAnd(|ledger| {
                let complaint = first(ledger);
                complaint.filing.through_gateway && complaint.author == public(NEIGHBOUR)
            }),
        ),
        row(
            "a key without the gateway role cannot file through a gateway",
            base(),
            Step::by(CITIZEN, Action::FileComplaint(through_gateway())),
            Then::Refused("not-gateway"),
        ),
        row(
            "a gateway whose role was revoked files through a gateway no more",
            base_and(vec![
                Step::by(ADMIN, grant(NEIGHBOUR, Role::Gateway, None)),
                Step::by(ADMIN, revoke(NEIGHBOUR, Role::Gateway)),
            ]),
            Step::by(NEIGHBOUR, Action::FileComplaint(through_gateway())),
            Then::Refused("not-gateway"),
        ),
        row(
            "a complaint names a category of the catalogue",
            base(),
            file(|filing| filing.category = "graffiti".into()),
            Then::Refused("unknown-category"),
        ),
        row(
            "a complaint's public coordinates lie on the 0.001-degree grid",
            base(),
            file(|filing| filing.location.latitude = Degrees(55.7512)),
            Then::Refused("invalid-complaint"),
        ),
        row(
            "a complaint's latitude lies on the globe",
            base(),
            file(|filing| filing.location.latitude = Degrees(90.5)),
            Then::Refused("invalid-complaint"),
        ),
        row(
            "a complaint names its district",
            base(),
            file(|filing| filing.location.district = String::new()),
            Then::Refused("invalid-complaint"),
        ),
        row(
            "an attachment's hash is hexadecimal SHA-256",
            base(),
            file(|filing| {
                filing.attachments = vec![Attachment {
                    sha256: "not a hash".into(),
                    ..photo()
                }]
            }),
            Then::Refused("invalid-complaint"),
        ),
    ]
}

fn triage_rows() -> Vec<Row> {
    vec![
        row(
            "a moderator accepts a complaint and routes it to the category's department",
            filed(),
            on(MODERATOR, 0, accept),
            Then::AcceptedAnd(|ledger| {
                let complaint = first(ledger);
                complaint.status == ComplaintStatus::Accepted
                    && complaint.department.as_deref() == Some(ROADS)
                    && complaint.deadline == Some(after_days(7))
            }),
        ),
        row(
            "a moderator cannot triage their own complaint",
            base_and(vec![Step::by(MODERATOR, Action::FileComplaint(filing()))]),
            on(MODERATOR, 0, accept),
            Then::Refused("separation-of-duties"),
        ),
        row(
            "a moderator rejects a complaint as spam",
            filed(),
            on(MODERATOR, 0, reject_as_spam),
            Then::AcceptedAnd(|ledger| first(ledger).status == ComplaintStatus::Rejected),
        ),
        row(
            "a moderator asks the author for details",
            filed(),
            on(MODERATOR, 0, ask),
            Then::AcceptedAnd(|ledger| first(ledger).status == ComplaintStatus::NeedsInfo),
        ),
        row(
            "only a moderator triages",
            filed(),
            on(OFFICIAL, 0, accept),
            Then::Refused("not-moderator"),
        ),
        row(
            "a triage names a complaint that exists",
            filed(),
            Step::by(MODERATOR, accept(9_999)),
            Then::Refused("unknown-complaint"),
        ),
        row(
            "an accepted complaint is not triaged again",
            accepted(),
            on(MODERATOR, 0, reject_as_spam),
            Then::Refused("transition-not-allowed"),
        ),
        row(
            "a complaint is not a duplicate of itself",
            filed(),
            on(MODERATOR, 0, |complaint| {
                triage(
                    complaint,
                    TriageDecision::Reject {
                        rejection: RejectionReason::DuplicateOf { complaint },
                    },
                )
            }),
            Then::Refused("invalid-complaint"),
        ),
        row(
            "a complaint is a duplicate only of a complaint that exists",
            filed(),
            on(MODERATOR, 0, |complaint| {
                triage(
                    complaint,
                    TriageDecision::Reject {
                        rejection: RejectionReason::DuplicateOf { complaint: 9_999 },
                    },
                )
            }),
            Then::Refused("unknown-complaint"),
        ),
        row(
            "a moderator's question is not blank",
            filed(),
            on(MODERATOR, 0, |complaint| {
                triage(
                    complaint,
                    TriageDecision::NeedsInfo {
                        question: String::new(),
                    },
                )
            }),
            Then::Refused("invalid-complaint"),
        ),
        row(
            "the author supplements a complaint that needs details and it is filed again",
            needs_info(),
            on(CITIZEN, 0, supplement),
            Then::AcceptedAnd(|ledger| {
                let complaint = first(ledger);
                complaint.status == ComplaintStatus::Filed
                    && complaint.filing.attachments == vec![photo()]
            }),
        ),
        row(
            "only the author supplements a complaint",
            needs_info(),
            on(NEIGHBOUR, 0, supplement),
            Then::Refused("not-author"),
        ),
        row(
            "a complaint nobody asked about takes no supplement",
            filed(),
            on(CITIZEN, 0, supplement),
            Then::Refused("transition-not-allowed"),
        ),
        row(
            "a moderator merges a complaint into another",
            two_filed(),
            Step::by_with(MODERATOR, |ledger| {
                Action::MergeComplaint(Merge {
                    complaint: nth(&ledger.complaints, 0),
                    into: nth(&ledger.complaints, 1),
                })
            }),
            Then::AcceptedAnd(|ledger| {
                let into = nth(&ledger.complaints, 1);
                let complaint = first(ledger);
                complaint.status == ComplaintStatus::Merged
                    && complaint.merged_into == Some(into)
                    && ledger.complaints[&into].merged_from == vec![complaint.id]
            }),
        ),
        row(
            "only a moderator merges complaints",
            two_filed(),
            Step::by_with(CITIZEN, |ledger| {
                Action::MergeComplaint(Merge {
                    complaint: nth(&ledger.complaints, 0),
                    into: nth(&ledger.complaints, 1),
                })
            }),
            Then::Refused("not-moderator"),
        ),
        row(
            "a complaint does not merge into itself",
            filed(),
            on(MODERATOR, 0, |complaint| {
                Action::MergeComplaint(Merge {
                    complaint,
                    into: complaint,
                })
            }),
            Then::Refused("invalid-complaint"),
        ),
        row(
            "a complaint does not merge into a rejected one",
            {
                let mut steps = two_filed();
                steps.push(on(MODERATOR, 1, reject_as_spam));
                steps
            },
            Step::by_with(MODERATOR, |ledger| {
                Action::MergeComplaint(Merge {
                    complaint: nth(&ledger.complaints, 0),
                    into: nth(&ledger.complaints, 1),
                })
            }),
            Then::Refused("invalid-complaint"),
        ),
        row(
            "a resolved complaint is not merged away",
            {
                let mut steps = resolved();
                steps.push(file(|_| {}));
                steps
            },
            Step::by_with(MODERATOR, |ledger| {
                Action::MergeComplaint(Merge {
                    complaint: nth(&ledger.complaints, 0),
                    into: nth(&ledger.complaints, 1),
                })
            }),
            Then::Refused("transition-not-allowed"),
        ),
    ]
}

fn department_rows() -> Vec<Row> {
    vec![
        row(
            "an official of the responsible department starts work",
            accepted(),
            on(OFFICIAL, 0, start),
            Then::AcceptedAnd(|ledger| first(ledger).status == ComplaintStatus::InProgress),
        ),
        row(
            "an official of another department cannot start work",
            accepted(),
            on(OTHER_OFFICIAL, 0, start),
            Then::Refused("not-responsible-department"),
        ),
        row(
            "a citizen cannot start work",
            accepted(),
            on(CITIZEN, 0, start),
            Then::Refused("not-official"),
        ),
        row(
            "work starts only on an accepted complaint",
            filed(),
            on(OFFICIAL, 0, start),
            Then::Refused("transition-not-allowed"),
        ),
        row(
            "the department resolves a complaint in progress",
            in_progress(),
            on(OFFICIAL, 0, resolve),
            Then::AcceptedAnd(|ledger| {
                let complaint = first(ledger);
                complaint.status == ComplaintStatus::Resolved
                    && complaint.confirmation_deadline == Some(after_days(7))
                    && complaint.evidence == vec![photo()]
                    && !complaint.sla_breached
            }),
        ),
        row(
            "the department resolves an accepted complaint without starting work",
            accepted(),
            on(OFFICIAL, 0, resolve),
            Then::Accepted,
        ),
        row(
            "a resolution after the deadline breaches the service level",
            in_progress(),
            on(OFFICIAL, 0, resolve).at(after_days(8)),
            Then::AcceptedAnd(|ledger| first(ledger).sla_breached),
        ),
        row(
            "a resolution says what was done",
            in_progress(),
            on(OFFICIAL, 0, |complaint| {
                Action::ResolveComplaint(Resolution {
                    complaint,
                    answer: " ".into(),
                    evidence: vec![],
                })
            }),
            Then::Refused("invalid-complaint"),
        ),
        row(
            "the department reports it cannot resolve a complaint",
            in_progress(),
            on(OFFICIAL, 0, cannot),
            Then::AcceptedAnd(|ledger| first(ledger).status == ComplaintStatus::CannotResolve),
        ),
        row(
            "a complaint not yet accepted cannot be declared unresolvable",
            filed(),
            on(OFFICIAL, 0, cannot),
            Then::Refused("transition-not-allowed"),
        ),
    ]
}

fn author_rows() -> Vec<Row> {
    vec![
        row(
            "the author confirms a resolution",
            resolved(),
            on(CITIZEN, 0, confirm),
            Then::AcceptedAnd(|ledger| first(ledger).status == ComplaintStatus::Confirmed),
        ),
        row(
            "only the author confirms a resolution",
            resolved(),
            on(NEIGHBOUR, 0, confirm),
            Then::Refused("not-author"),
        ),
        row(
            "a complaint in progress has nothing to confirm",
            in_progress(),
            on(CITIZEN, 0, confirm),
            Then::Refused("transition-not-allowed"),
        ),
        row(
            "a confirmation at the end of the window is too late",
            resolved(),
            on(CITIZEN, 0, confirm).at(after_days(7)),
            Then::Refused("confirmation-window-closed"),
        ),
        row(
            "a dispute after the close in silence is too late",
            {
                let mut steps = resolved();
                steps.push(system_on(0, close_unconfirmed).at(after_days(7)));
                steps
            },
            on(CITIZEN, 0, dispute).at(after_days(7)),
            Then::Refused("confirmation-window-closed"),
        ),
        row(
            "the author disputes a resolution and the complaint is back in progress",
            resolved(),
            on(CITIZEN, 0, dispute),
            Then::AcceptedAnd(|ledger| {
                let complaint = first(ledger);
                complaint.status == ComplaintStatus::InProgress
                    && complaint.disputes == 1
                    && complaint.confirmation_deadline.is_none()
            }),
        ),
    ]
}

fn system_rows() -> Vec<Row> {
    vec![
        row(
            "the server records a breach once the deadline has passed",
            accepted(),
            system_on(0, breach).at(after_days(8)),
            Then::AcceptedAnd(|ledger| first(ledger).sla_breached),
        ),
        row(
            "a breach before the deadline is not due",
            accepted(),
            system_on(0, breach).at(after_days(7)),
            Then::Refused("event-not-due"),
        ),
        row(
            "a breach is recorded only once",
            {
                let mut steps = accepted();
                steps.push(system_on(0, breach).at(after_days(8)));
                steps
            },
            system_on(0, breach).at(after_days(8)),
            Then::Refused("event-not-due"),
        ),
        row(
            "a client cannot record a breach",
            accepted(),
            on(CITIZEN, 0, breach)
                .at(after_days(8))
                .issued(after_days(8)),
            Then::Refused("system-only"),
        ),
        row(
            "the server closes a resolution nobody answered when the window ends",
            resolved(),
            system_on(0, close_unconfirmed).at(after_days(7)),
            Then::AcceptedAnd(|ledger| first(ledger).status == ComplaintStatus::ClosedUnconfirmed),
        ),
        row(
            "a silent close inside the window is not due",
            resolved(),
            system_on(0, close_unconfirmed).at(after_days(6)),
            Then::Refused("event-not-due"),
        ),
        row(
            "a system event names a complaint that exists",
            resolved(),
            Step::system(close_unconfirmed(9_999)),
            Then::Refused("unknown-complaint"),
        ),
        row(
            "a client's complaint action in a system entry is system only",
            filed(),
            on(MODERATOR, 0, accept).kind(EntryKind::System),
            Then::Refused("system-only"),
        ),
    ]
}

#[test]
fn every_rule_of_complaints_holds_as_its_table_says() {
    run_table(&rows());
}
