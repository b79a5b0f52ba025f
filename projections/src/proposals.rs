//! Crowdsourced proposals: submission, moderation, supports, review, answer, withdrawal, expiry.
//!
//! `submitted → published | rejected`; `published → under_review` in the same fold step as the
//! support that reaches the category's threshold; `under_review → accepted | declined |
//! implemented`; `submitted | published → withdrawn` by the author; `published → expired` when
//! its lifetime ends below the threshold.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::command::{Action, ModerationDecision, ProposalOutcome, ProposalSubmission, Role};
use crate::ledger::{Event, Ledger, Refusal};
use crate::limits;
use crate::protocol::PublicKey;
use crate::time::{Timestamp, DAY_MS};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Submitted,
    Published,
    Rejected,
    UnderReview,
    Accepted,
    Declined,
    Implemented,
    Withdrawn,
    Expired,
}

impl ProposalStatus {
    pub fn name(self) -> &'static str {
        match self {
            ProposalStatus::Submitted => "submitted",
            ProposalStatus::Published => "published",
            ProposalStatus::Rejected => "rejected",
            ProposalStatus::UnderReview => "under_review",
            ProposalStatus::Accepted => "accepted",
            ProposalStatus::Declined => "declined",
            ProposalStatus::Implemented => "implemented",
            ProposalStatus::Withdrawn => "withdrawn",
            ProposalStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<ProposalStatus> {
        [
            ProposalStatus::Submitted,
            ProposalStatus::Published,
            ProposalStatus::Rejected,
            ProposalStatus::UnderReview,
            ProposalStatus::Accepted,
            ProposalStatus::Declined,
            ProposalStatus::Implemented,
            ProposalStatus::Withdrawn,
            ProposalStatus::Expired,
        ]
        .into_iter()
        .find(|status| status.name() == text)
    }
}

/// The support count after one support event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportStep {
    pub position: u64,
    pub at: Timestamp,
    pub supports: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialAnswer {
    pub outcome: ProposalOutcome,
    pub answer: String,
    pub official: PublicKey,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: u64,
    pub author: PublicKey,
    pub submission: ProposalSubmission,
    pub submitted_at: Timestamp,
    pub status: ProposalStatus,
    pub department: String,
    pub published_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    /// Threshold of the category version in force at publication.
    pub support_threshold: u64,
    pub supporters: BTreeSet<PublicKey>,
    pub support_history: Vec<SupportStep>,
    pub reached_threshold_at: Option<Timestamp>,
    pub rejection_reason: Option<String>,
    pub answer: Option<OfficialAnswer>,
}

impl Proposal {
    pub fn supports(&self) -> u64 {
        self.supporters.len() as u64
    }

    /// Supports gained in the trending window before `now` (withdrawals count against).
    pub fn trending_score(&self, now: Timestamp) -> i64 {
        let since = now.plus_milliseconds(-limits::TRENDING_WINDOW_MS);
        let before = self
            .support_history
            .iter()
            .take_while(|step| step.at < since)
            .last()
            .map_or(0, |step| step.supports);
        self.supports() as i64 - before as i64
    }
}

fn valid_text(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max
}

fn transition(proposal: &Proposal, action: &'static str) -> Refusal {
    Refusal::TransitionNotAllowed {
        action,
        status: proposal.status.name(),
    }
}

impl Ledger {
    fn proposal(&self, id: u64) -> Result<&Proposal, Refusal> {
        self.proposals.get(&id).ok_or(Refusal::UnknownProposal)
    }

    /// The rules of every proposal action; `None` when `action` is not about proposals.
    pub(crate) fn decide_proposal(
        &self,
        author: PublicKey,
        action: &Action,
        at: Timestamp,
    ) -> Option<Result<(), Refusal>> {
        let outcome = match action {
            Action::SubmitProposal(submission) => (|| {
                if !self.keys.contains_key(&author) {
                    return Err(Refusal::NotEligible);
                }
                self.category(&submission.category)?;
                if !valid_text(&submission.title, limits::PROPOSAL_TITLE_CHARS_MAX) {
                    return Err(Refusal::InvalidProposal(format!(
                        "a title has 1 to {} characters",
                        limits::PROPOSAL_TITLE_CHARS_MAX
                    )));
                }
                if !valid_text(&submission.body, limits::PROPOSAL_BODY_CHARS_MAX) {
                    return Err(Refusal::InvalidProposal(format!(
                        "a body has 1 to {} characters",
                        limits::PROPOSAL_BODY_CHARS_MAX
                    )));
                }
                if let Some(district) = &submission.district {
                    if !valid_text(district, limits::DISTRICT_CHARS_MAX) {
                        return Err(Refusal::InvalidProposal(format!(
                            "a district has 1 to {} characters",
                            limits::DISTRICT_CHARS_MAX
                        )));
                    }
                }
                Ok(())
            })(),
            Action::ModerateProposal(moderation) => (|| {
                if !self.holds_role(author, Role::Moderator) {
                    return Err(Refusal::NotModerator);
                }
                let proposal = self.proposal(moderation.proposal)?;
                if proposal.status != ProposalStatus::Submitted {
                    return Err(transition(proposal, action.name()));
                }
                match &moderation.decision {
                    ModerationDecision::Publish => {
                        self.category(&proposal.submission.category).map(|_| ())
                    }
                    ModerationDecision::Reject { reason }
                        if !valid_text(reason, limits::NOTE_CHARS_MAX) =>
                    {
                        Err(Refusal::InvalidProposal(
                            "a rejection gives a reason".into(),
                        ))
                    }
                    ModerationDecision::Reject { .. } => Ok(()),
                }
            })(),
            Action::SupportProposal(reference) => (|| {
                if !self.keys.contains_key(&author) {
                    return Err(Refusal::NotEligible);
                }
                let proposal = self.proposal(reference.proposal)?;
                if proposal.status != ProposalStatus::Published {
                    return Err(transition(proposal, action.name()));
                }
                if proposal
                    .expires_at
                    .is_some_and(|expires_at| at >= expires_at)
                {
                    return Err(transition(proposal, action.name()));
                }
                if proposal.supporters.contains(&author) {
                    return Err(Refusal::AlreadySupported);
                }
                Ok(())
            })(),
            Action::WithdrawSupport(reference) => (|| {
                let proposal = self.proposal(reference.proposal)?;
                if !proposal.supporters.contains(&author) {
                    return Err(Refusal::NotSupported);
                }
                if proposal.status != ProposalStatus::Published {
                    // Only a proposal that reached its threshold locks its supports; a withdrawn,
                    // rejected or expired one is simply past the point where supports change.
                    return Err(if proposal.reached_threshold_at.is_some() {
                        Refusal::ThresholdReached
                    } else {
                        transition(proposal, action.name())
                    });
                }
                // Past its lifetime a proposal is expired, whether or not the server's expiry
                // event has been appended yet: the time is in the log, so replay agrees.
                if proposal
                    .expires_at
                    .is_some_and(|expires_at| at >= expires_at)
                {
                    return Err(transition(proposal, action.name()));
                }
                Ok(())
            })(),
            Action::AnswerProposal(answer) => (|| {
                let proposal = self.proposal(answer.proposal)?;
                if !self.is_official_of(author, &proposal.department) {
                    return Err(if self.holds_role(author, Role::Official) {
                        Refusal::NotResponsibleDepartment
                    } else {
                        Refusal::NotOfficial
                    });
                }
                if proposal.status != ProposalStatus::UnderReview {
                    return Err(transition(proposal, action.name()));
                }
                if !valid_text(&answer.answer, limits::NOTE_CHARS_MAX) {
                    return Err(Refusal::InvalidProposal(format!(
                        "an answer has 1 to {} characters",
                        limits::NOTE_CHARS_MAX
                    )));
                }
                Ok(())
            })(),
            Action::WithdrawProposal(reference) => (|| {
                let proposal = self.proposal(reference.proposal)?;
                if proposal.author != author {
                    return Err(Refusal::NotAuthor);
                }
                if !matches!(
                    proposal.status,
                    ProposalStatus::Submitted | ProposalStatus::Published
                ) {
                    return Err(transition(proposal, action.name()));
                }
                if proposal.status == ProposalStatus::Published
                    && proposal
                        .expires_at
                        .is_some_and(|expires_at| at >= expires_at)
                {
                    return Err(transition(proposal, action.name()));
                }
                Ok(())
            })(),
            Action::ExpireProposal(reference) => (|| {
                let proposal = self.proposal(reference.proposal)?;
                let due = proposal.status == ProposalStatus::Published
                    && proposal
                        .expires_at
                        .is_some_and(|expires_at| at >= expires_at);
                if due {
                    Ok(())
                } else {
                    Err(Refusal::EventNotDue)
                }
            })(),
            _ => return None,
        };
        Some(outcome)
    }

    /// Folds a proposal event; returns false when `event` is not about proposals.
    pub(crate) fn evolve_proposal(&mut self, event: &Event) -> bool {
        let command = &event.command;
        let at = event.server_time;
        match &command.action {
            Action::SubmitProposal(submission) => {
                let department = self
                    .categories
                    .get(&submission.category)
                    .map(|category| category.current.department.clone())
                    .unwrap_or_default();
                self.proposals.insert(
                    event.position,
                    Proposal {
                        id: event.position,
                        author: command.author,
                        submission: submission.clone(),
                        submitted_at: at,
                        status: ProposalStatus::Submitted,
                        department,
                        published_at: None,
                        expires_at: None,
                        support_threshold: 0,
                        supporters: BTreeSet::new(),
                        support_history: Vec::new(),
                        reached_threshold_at: None,
                        rejection_reason: None,
                        answer: None,
                    },
                );
            }
            Action::ModerateProposal(moderation) => {
                let category = self
                    .proposals
                    .get(&moderation.proposal)
                    .and_then(|proposal| self.categories.get(&proposal.submission.category))
                    .map(|category| category.current.clone());
                if let Some(proposal) = self.proposals.get_mut(&moderation.proposal) {
                    match &moderation.decision {
                        ModerationDecision::Publish => {
                            proposal.status = ProposalStatus::Published;
                            proposal.published_at = Some(at);
                            if let Some(category) = category {
                                proposal.support_threshold = category.support_threshold;
                                proposal.department = category.department;
                                proposal.expires_at = Some(at.plus_milliseconds(
                                    i64::from(category.proposal_lifetime_days) * DAY_MS,
                                ));
                            }
                        }
                        ModerationDecision::Reject { reason } => {
                            proposal.status = ProposalStatus::Rejected;
                            proposal.rejection_reason = Some(reason.clone());
                        }
                    }
                }
            }
            Action::SupportProposal(reference) | Action::WithdrawSupport(reference) => {
                if let Some(proposal) = self.proposals.get_mut(&reference.proposal) {
                    if matches!(command.action, Action::SupportProposal(_)) {
                        proposal.supporters.insert(command.author);
                    } else {
                        proposal.supporters.remove(&command.author);
                    }
                    let supports = proposal.supports();
                    proposal.support_history.push(SupportStep {
                        position: event.position,
                        at,
                        supports,
                    });
                    if supports >= proposal.support_threshold
                        && proposal.status == ProposalStatus::Published
                    {
                        proposal.status = ProposalStatus::UnderReview;
                        proposal.reached_threshold_at = Some(at);
                    }
                }
            }
            Action::AnswerProposal(answer) => {
                if let Some(proposal) = self.proposals.get_mut(&answer.proposal) {
                    proposal.status = match answer.outcome {
                        ProposalOutcome::Accepted => ProposalStatus::Accepted,
                        ProposalOutcome::Declined => ProposalStatus::Declined,
                        ProposalOutcome::Implemented => ProposalStatus::Implemented,
                    };
                    proposal.answer = Some(OfficialAnswer {
                        outcome: answer.outcome,
                        answer: answer.answer.clone(),
                        official: command.author,
                        at,
                    });
                }
            }
            Action::WithdrawProposal(reference) => {
                if let Some(proposal) = self.proposals.get_mut(&reference.proposal) {
                    proposal.status = ProposalStatus::Withdrawn;
                }
            }
            Action::ExpireProposal(reference) => {
                if let Some(proposal) = self.proposals.get_mut(&reference.proposal) {
                    proposal.status = ProposalStatus::Expired;
                }
            }
            _ => return false,
        }
        true
    }

    pub(crate) fn due_proposal_actions(&self, now: Timestamp, due: &mut Vec<Action>) {
        for proposal in self.proposals.values() {
            if proposal.status == ProposalStatus::Published
                && proposal
                    .expires_at
                    .is_some_and(|expires_at| now >= expires_at)
            {
                due.push(Action::ExpireProposal(crate::command::ProposalReference {
                    proposal: proposal.id,
                }));
            }
        }
    }
}
