//! The rules of proposals: submission, moderation, supports and their withdrawal, the threshold
//! that moves a proposal to review, the department's answer, the author's withdrawal and expiry.

use super::support::*;
use crate::command::{
    Action, ModerationDecision, ProposalAnswer, ProposalModeration, ProposalOutcome,
    ProposalReference, ProposalSubmission,
};
use crate::ledger::Ledger;
use crate::proposals::{Proposal, ProposalStatus};
use crate::protocol::EntryKind;

fn submission() -> ProposalSubmission {
    ProposalSubmission {
        title: crate::content::Commitment([1; 32]),
        body: crate::content::Commitment([2; 32]),
        category: POTHOLES.into(),
        district: Some(NORTH.into()),
    }
}

fn submit(change: impl Fn(&mut ProposalSubmission)) -> Step {
    let mut submitted = submission();
    change(&mut submitted);
    Step::by(CITIZEN, Action::SubmitProposal(submitted))
}

/// A command of `seed` about the log's first proposal.
fn on(seed: u8, action: fn(u64) -> Action) -> Step {
    Step::by_with(seed, move |ledger| action(nth(&ledger.proposals, 0)))
}

fn moderate(proposal: u64, decision: ModerationDecision) -> Action {
    Action::ModerateProposal(ProposalModeration { proposal, decision })
}

fn publish(proposal: u64) -> Action {
    moderate(proposal, ModerationDecision::Publish)
}

fn reject(proposal: u64) -> Action {
    moderate(
        proposal,
        ModerationDecision::Reject {
            reason: "Already planned".into(),
        },
    )
}

fn support(proposal: u64) -> Action {
    Action::SupportProposal(ProposalReference { proposal })
}

fn withdraw_support(proposal: u64) -> Action {
    Action::WithdrawSupport(ProposalReference { proposal })
}

fn withdraw(proposal: u64) -> Action {
    Action::WithdrawProposal(ProposalReference { proposal })
}

fn expire(proposal: u64) -> Action {
    Action::ExpireProposal(ProposalReference { proposal })
}

fn answer(proposal: u64) -> Action {
    Action::AnswerProposal(ProposalAnswer {
        proposal,
        outcome: ProposalOutcome::Accepted,
        answer: "Scheduled for the spring".into(),
    })
}

fn first(ledger: &Ledger) -> &Proposal {
    &ledger.proposals[&nth(&ledger.proposals, 0)]
}

fn submitted() -> Vec<Step> {
    base_and(vec![submit(|_| {})])
}

fn published() -> Vec<Step> {
    let mut steps = submitted();
    steps.push(on(MODERATOR, publish));
    steps
}

fn supported_once() -> Vec<Step> {
    let mut steps = published();
    steps.push(on(CITIZEN, support));
    steps
}

/// Published and supported by two keys: the category's threshold.
fn under_review() -> Vec<Step> {
    let mut steps = supported_once();
    steps.push(on(NEIGHBOUR, support));
    steps
}

pub(super) fn rows() -> Vec<Row> {
    let mut rows = submission_rows();
    rows.extend(support_rows());
    rows.extend(resident_support_rows());
    rows.extend(answer_rows());
    rows
}

/// The citizen's replacement for a lost key.
const NEW_KEY: u8 = 14;

/// The prelude with potholes redefined to take supports from verified residents only, and a
/// proposal in it published.
fn published_for_residents() -> Vec<Step> {
    let mut category = potholes();
    category.supports_from_residents_only = true;
    let mut steps = base_and(vec![Step::by(ADMIN, Action::DefineCategory(category))]);
    steps.push(submit(|_| {}));
    steps.push(on(MODERATOR, publish));
    steps
}

fn resident_support_rows() -> Vec<Row> {
    let mut replaced = published_for_residents();
    replaced.extend([
        on(CITIZEN, support),
        Step::by(NEW_KEY, register()),
        Step::by(REGISTRAR, revoke_key(CITIZEN)),
        Step::by(REGISTRAR, attest_as(NEW_KEY, Some(NORTH), CITIZEN)),
    ]);
    vec![
        row(
            "where only residents support, a verified resident's support counts",
            published_for_residents(),
            on(CITIZEN, support),
            Then::AcceptedAnd(|ledger| {
                let proposal = first(ledger);
                proposal.supports() == 1
                    && proposal
                        .supporting_residents
                        .contains(&resident_tag(CITIZEN))
            }),
        ),
        row(
            "where only residents support, a key nobody attested cannot support",
            published_for_residents(),
            on(NEIGHBOUR, support),
            Then::Refused("not-attested-resident"),
        ),
        row(
            "where only residents support, a resident's new key cannot support again",
            replaced,
            on(NEW_KEY, support),
            Then::Refused("already-supported"),
        ),
    ]
}

fn submission_rows() -> Vec<Row> {
    vec![
        row(
            "a registered citizen submits a proposal",
            base(),
            submit(|_| {}),
            Then::AcceptedAnd(|ledger| {
                let proposal = first(ledger);
                proposal.status == ProposalStatus::Submitted && proposal.department == ROADS
            }),
        ),
        row(
            "an unregistered key cannot submit",
            base(),
            Step::by(STRANGER, Action::SubmitProposal(submission())),
            Then::Refused("not-eligible"),
        ),
        row(
            "a proposal names a category of the catalogue",
            base(),
            submit(|submission| submission.category = "graffiti".into()),
            Then::Refused("unknown-category"),
        ),
        row(
            "a proposal's district is not blank",
            base(),
            submit(|submission| submission.district = Some(String::new())),
            Then::Refused("invalid-proposal"),
        ),
        row(
            "a moderator publishes a submitted proposal with the category's threshold and lifetime",
            submitted(),
            on(MODERATOR, publish),
            Then::AcceptedAnd(|ledger| {
                let proposal = first(ledger);
                proposal.status == ProposalStatus::Published
                    && proposal.support_threshold == 2
                    && proposal.expires_at == Some(after_days(30))
            }),
        ),
        row(
            "a moderator cannot moderate their own proposal",
            base_and(vec![Step::by(
                MODERATOR,
                Action::SubmitProposal(submission()),
            )]),
            on(MODERATOR, publish),
            Then::Refused("separation-of-duties"),
        ),
        row(
            "a moderator rejects a submitted proposal",
            submitted(),
            on(MODERATOR, reject),
            Then::AcceptedAnd(|ledger| first(ledger).status == ProposalStatus::Rejected),
        ),
        row(
            "a rejection gives a reason",
            submitted(),
            on(MODERATOR, |proposal| {
                moderate(
                    proposal,
                    ModerationDecision::Reject {
                        reason: String::new(),
                    },
                )
            }),
            Then::Refused("invalid-proposal"),
        ),
        row(
            "only a moderator moderates proposals",
            submitted(),
            on(OFFICIAL, publish),
            Then::Refused("not-moderator"),
        ),
        row(
            "a moderation names a proposal that exists",
            submitted(),
            Step::by(MODERATOR, publish(9_999)),
            Then::Refused("unknown-proposal"),
        ),
        row(
            "a published proposal is not moderated again",
            published(),
            on(MODERATOR, reject),
            Then::Refused("transition-not-allowed"),
        ),
        row(
            "the author withdraws a published proposal",
            published(),
            on(CITIZEN, withdraw),
            Then::AcceptedAnd(|ledger| first(ledger).status == ProposalStatus::Withdrawn),
        ),
        row(
            "only the author withdraws a proposal",
            published(),
            on(NEIGHBOUR, withdraw),
            Then::Refused("not-author"),
        ),
        row(
            "a proposal under review cannot be withdrawn",
            under_review(),
            on(CITIZEN, withdraw),
            Then::Refused("transition-not-allowed"),
        ),
        row(
            "a proposal past its lifetime cannot be withdrawn",
            published(),
            on(CITIZEN, withdraw).at(after_days(30)),
            Then::Refused("transition-not-allowed"),
        ),
    ]
}

fn support_rows() -> Vec<Row> {
    vec![
        row(
            "a registered citizen supports a published proposal",
            published(),
            on(CITIZEN, support),
            Then::AcceptedAnd(|ledger| {
                let proposal = first(ledger);
                proposal.supports() == 1 && proposal.status == ProposalStatus::Published
            }),
        ),
        row(
            "the support that reaches the threshold moves the proposal to review",
            supported_once(),
            on(NEIGHBOUR, support),
            Then::AcceptedAnd(|ledger| {
                let proposal = first(ledger);
                proposal.status == ProposalStatus::UnderReview
                    && proposal.reached_threshold_at == Some(T0)
            }),
        ),
        row(
            "an unregistered key cannot support",
            published(),
            on(STRANGER, support),
            Then::Refused("not-eligible"),
        ),
        row(
            "a key supports a proposal once",
            supported_once(),
            on(CITIZEN, support),
            Then::Refused("already-supported"),
        ),
        row(
            "a proposal not yet published takes no supports",
            submitted(),
            on(CITIZEN, support),
            Then::Refused("transition-not-allowed"),
        ),
        row(
            "a proposal past its lifetime takes no supports",
            published(),
            on(CITIZEN, support).at(after_days(30)),
            Then::Refused("transition-not-allowed"),
        ),
        row(
            "a supporter withdraws their support below the threshold",
            supported_once(),
            on(CITIZEN, withdraw_support),
            Then::AcceptedAnd(|ledger| first(ledger).supports() == 0),
        ),
        row(
            "a key that does not support cannot withdraw a support",
            supported_once(),
            on(NEIGHBOUR, withdraw_support),
            Then::Refused("not-supported"),
        ),
        row(
            "supports are locked once the threshold is reached",
            under_review(),
            on(CITIZEN, withdraw_support),
            Then::Refused("threshold-reached"),
        ),
        row(
            "a support cannot be withdrawn from a proposal past its lifetime",
            supported_once(),
            on(CITIZEN, withdraw_support).at(after_days(30)),
            Then::Refused("transition-not-allowed"),
        ),
        row(
            "a support cannot be withdrawn from a withdrawn proposal",
            {
                let mut steps = supported_once();
                steps.push(on(CITIZEN, withdraw));
                steps
            },
            on(CITIZEN, withdraw_support),
            Then::Refused("transition-not-allowed"),
        ),
    ]
}

fn answer_rows() -> Vec<Row> {
    vec![
        row(
            "an official of the category's department answers a proposal under review",
            under_review(),
            on(OFFICIAL, answer),
            Then::AcceptedAnd(|ledger| {
                let proposal = first(ledger);
                proposal.status == ProposalStatus::Accepted
                    && proposal
                        .answer
                        .as_ref()
                        .is_some_and(|answer| answer.official == public(OFFICIAL))
            }),
        ),
        row(
            "an official of another department cannot answer",
            under_review(),
            on(OTHER_OFFICIAL, answer),
            Then::Refused("not-responsible-department"),
        ),
        row(
            "a citizen cannot answer a proposal",
            under_review(),
            on(CITIZEN, answer),
            Then::Refused("not-official"),
        ),
        row(
            "a proposal below its threshold is not answered",
            published(),
            on(OFFICIAL, answer),
            Then::Refused("transition-not-allowed"),
        ),
        row(
            "an answer is not blank",
            under_review(),
            on(OFFICIAL, |proposal| {
                Action::AnswerProposal(ProposalAnswer {
                    proposal,
                    outcome: ProposalOutcome::Declined,
                    answer: " ".into(),
                })
            }),
            Then::Refused("invalid-proposal"),
        ),
        row(
            "the server expires a published proposal at the end of its lifetime",
            supported_once(),
            Step::system_with(|ledger| expire(nth(&ledger.proposals, 0))).at(after_days(30)),
            Then::AcceptedAnd(|ledger| first(ledger).status == ProposalStatus::Expired),
        ),
        row(
            "an expiry before the end of the lifetime is not due",
            published(),
            Step::system_with(|ledger| expire(nth(&ledger.proposals, 0))).at(after_days(29)),
            Then::Refused("event-not-due"),
        ),
        row(
            "a proposal under review does not expire",
            under_review(),
            Step::system_with(|ledger| expire(nth(&ledger.proposals, 0))).at(after_days(30)),
            Then::Refused("event-not-due"),
        ),
        row(
            "a client cannot expire a proposal",
            published(),
            on(CITIZEN, expire).at(after_days(30)),
            Then::Refused("system-only"),
        ),
        row(
            "a client's proposal action in a system entry is system only",
            submitted(),
            on(MODERATOR, publish).kind(EntryKind::System),
            Then::Refused("system-only"),
        ),
    ]
}

#[test]
fn every_rule_of_proposals_holds_as_its_table_says() {
    run_table(&rows());
}
