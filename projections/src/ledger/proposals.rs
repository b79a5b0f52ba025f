//! Crowdsourced proposals: submission, moderation, supports, review, answer, withdrawal, expiry.
//!
//! `submitted → published | rejected`; `published → under_review` in the same fold step as the
//! support that reaches the category's threshold; `under_review → accepted | declined |
//! implemented`; `submitted | published → withdrawn` by the author; `published → expired` when
//! its lifetime ends below the threshold.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::catalogue::Catalogue;
use super::event::{Attempt, Event};
use super::keys::Keys;
use super::refusal::Refusal;
use super::state::State;
use crate::command::{
    Action, ModerationDecision, ProposalAnswer, ProposalModeration, ProposalOutcome,
    ProposalReference, ProposalSubmission, Role,
};
use crate::limits;
use crate::protocol::PublicKey;
use crate::text::{check_field, Lines};
use crate::time::{Timestamp, DAY_MS};

/// The actions whose rules live here.
#[derive(Clone, Copy, Debug)]
pub enum ProposalAction<'a> {
    SubmitProposal(&'a ProposalSubmission),
    ModerateProposal(&'a ProposalModeration),
    SupportProposal(&'a ProposalReference),
    WithdrawSupport(&'a ProposalReference),
    AnswerProposal(&'a ProposalAnswer),
    WithdrawProposal(&'a ProposalReference),
    ExpireProposal(&'a ProposalReference),
}

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
    /// Whether the category version in force at publication counts verified residents only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supports_from_residents_only: bool,
    /// The resident tags among the supporters, where only residents support: one support each.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub supporting_residents: BTreeSet<String>,
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

    /// Past its lifetime a proposal is expired, whether or not the server's expiry event has been
    /// appended yet: the time is in the log, so replay agrees.
    fn lifetime_over(&self, at: Timestamp) -> bool {
        self.expires_at.is_some_and(|expires_at| at >= expires_at)
    }
}

fn transition(proposal: &Proposal, attempt: &Attempt) -> Refusal {
    Refusal::TransitionNotAllowed {
        action: attempt.action_name,
        status: proposal.status.name(),
    }
}

/// The proposals aggregate: proposals by id (the position of their submission).
pub type Proposals = State<BTreeMap<u64, Proposal>>;

/// What the proposal rules read of the other aggregates.
#[derive(Clone, Copy)]
pub struct ProposalReads<'a> {
    pub keys: &'a Keys,
    pub catalogue: &'a Catalogue,
}

impl Proposals {
    fn proposal(&self, id: u64) -> Result<&Proposal, Refusal> {
        self.find(id, Refusal::UnknownProposal)
    }

    fn proposal_mut(&mut self, id: u64) -> &mut Proposal {
        self.found_mut(id, "proposal")
    }

    /// May `attempt` do `action` now?
    pub fn decide(
        &self,
        action: ProposalAction<'_>,
        attempt: &Attempt,
        reads: ProposalReads<'_>,
    ) -> Result<(), Refusal> {
        match action {
            ProposalAction::SubmitProposal(submission) => {
                decide_submission(submission, attempt, reads)
            }
            ProposalAction::ModerateProposal(moderation) => {
                self.decide_moderation(moderation, attempt, reads)
            }
            ProposalAction::SupportProposal(reference) => {
                self.decide_support(reference, attempt, reads)
            }
            ProposalAction::WithdrawSupport(reference) => {
                self.decide_withdrawn_support(reference, attempt)
            }
            ProposalAction::AnswerProposal(answer) => self.decide_answer(answer, attempt, reads),
            ProposalAction::WithdrawProposal(reference) => {
                self.decide_withdrawal(reference, attempt)
            }
            ProposalAction::ExpireProposal(reference) => {
                let proposal = self.proposal(reference.proposal)?;
                if proposal.status == ProposalStatus::Published
                    && proposal.lifetime_over(attempt.at)
                {
                    Ok(())
                } else {
                    Err(Refusal::EventNotDue)
                }
            }
        }
    }

    fn decide_moderation(
        &self,
        moderation: &ProposalModeration,
        attempt: &Attempt,
        reads: ProposalReads<'_>,
    ) -> Result<(), Refusal> {
        if !reads.keys.holds_role(attempt.author, Role::Moderator) {
            return Err(Refusal::NotModerator);
        }
        let proposal = self.proposal(moderation.proposal)?;
        if proposal.author == attempt.author {
            return Err(Refusal::SeparationOfDuties(
                "a moderator cannot moderate their own proposal".into(),
            ));
        }
        if proposal.status != ProposalStatus::Submitted {
            return Err(transition(proposal, attempt));
        }
        match &moderation.decision {
            ModerationDecision::Publish => reads
                .catalogue
                .category(&proposal.submission.category)
                .map(|_| ()),
            ModerationDecision::Reject { reason } => {
                let max = limits::NOTE_CHARS_MAX;
                check_field("a rejection's reason", reason, Lines::Many, max)
                    .map_err(Refusal::InvalidProposal)
            }
        }
    }

    fn decide_support(
        &self,
        reference: &ProposalReference,
        attempt: &Attempt,
        reads: ProposalReads<'_>,
    ) -> Result<(), Refusal> {
        if !reads.keys.is_registered(attempt.author) {
            return Err(Refusal::NotEligible);
        }
        let proposal = self.proposal(reference.proposal)?;
        if proposal.status != ProposalStatus::Published || proposal.lifetime_over(attempt.at) {
            return Err(transition(proposal, attempt));
        }
        if proposal.supporters.contains(&attempt.author) {
            return Err(Refusal::AlreadySupported);
        }
        if proposal.supports_from_residents_only {
            let Some(tag) = reads.keys.active_resident_tag(attempt.author) else {
                return Err(Refusal::NotAttestedResident);
            };
            // The resident supported already, with a key revoked since.
            if proposal.supporting_residents.contains(tag) {
                return Err(Refusal::AlreadySupported);
            }
        }
        Ok(())
    }

    fn decide_withdrawn_support(
        &self,
        reference: &ProposalReference,
        attempt: &Attempt,
    ) -> Result<(), Refusal> {
        let proposal = self.proposal(reference.proposal)?;
        if !proposal.supporters.contains(&attempt.author) {
            return Err(Refusal::NotSupported);
        }
        if proposal.status != ProposalStatus::Published {
            // Only a proposal that reached its threshold locks its supports; a withdrawn,
            // rejected or expired one is simply past the point where supports change.
            return Err(if proposal.reached_threshold_at.is_some() {
                Refusal::ThresholdReached
            } else {
                transition(proposal, attempt)
            });
        }
        if proposal.lifetime_over(attempt.at) {
            return Err(transition(proposal, attempt));
        }
        Ok(())
    }

    fn decide_answer(
        &self,
        answer: &ProposalAnswer,
        attempt: &Attempt,
        reads: ProposalReads<'_>,
    ) -> Result<(), Refusal> {
        let proposal = self.proposal(answer.proposal)?;
        reads
            .keys
            .require_official_of(attempt.author, Some(&proposal.department))?;
        if proposal.status != ProposalStatus::UnderReview {
            return Err(transition(proposal, attempt));
        }
        check_field(
            "an answer",
            &answer.answer,
            Lines::Many,
            limits::NOTE_CHARS_MAX,
        )
        .map_err(Refusal::InvalidProposal)
    }

    fn decide_withdrawal(
        &self,
        reference: &ProposalReference,
        attempt: &Attempt,
    ) -> Result<(), Refusal> {
        let proposal = self.proposal(reference.proposal)?;
        if proposal.author != attempt.author {
            return Err(Refusal::NotAuthor);
        }
        let published = match proposal.status {
            ProposalStatus::Submitted => false,
            ProposalStatus::Published => true,
            _ => return Err(transition(proposal, attempt)),
        };
        if published && proposal.lifetime_over(attempt.at) {
            return Err(transition(proposal, attempt));
        }
        Ok(())
    }

    /// Folds one decided event in.
    pub fn evolve(&mut self, action: ProposalAction<'_>, event: &Event, reads: ProposalReads<'_>) {
        let ProposalReads { keys, catalogue } = reads;
        let at = event.server_time;
        match action {
            ProposalAction::SubmitProposal(submission) => {
                self.evolve_submission(submission, event, catalogue)
            }
            ProposalAction::ModerateProposal(moderation) => {
                self.evolve_moderation(moderation, at, catalogue)
            }
            ProposalAction::SupportProposal(reference) => {
                let proposal = self.proposal_mut(reference.proposal);
                proposal.supporters.insert(event.command.author);
                if proposal.supports_from_residents_only {
                    proposal
                        .supporting_residents
                        .insert(resident_tag(keys, event));
                }
                proposal.record_supports(event);
            }
            ProposalAction::WithdrawSupport(reference) => {
                let proposal = self.proposal_mut(reference.proposal);
                proposal.supporters.remove(&event.command.author);
                if proposal.supports_from_residents_only {
                    proposal
                        .supporting_residents
                        .remove(&resident_tag(keys, event));
                }
                proposal.record_supports(event);
            }
            ProposalAction::AnswerProposal(answer) => {
                let proposal = self.proposal_mut(answer.proposal);
                proposal.status = match answer.outcome {
                    ProposalOutcome::Accepted => ProposalStatus::Accepted,
                    ProposalOutcome::Declined => ProposalStatus::Declined,
                    ProposalOutcome::Implemented => ProposalStatus::Implemented,
                };
                proposal.answer = Some(OfficialAnswer {
                    outcome: answer.outcome,
                    answer: answer.answer.clone(),
                    official: event.command.author,
                    at,
                });
            }
            ProposalAction::WithdrawProposal(reference) => {
                self.proposal_mut(reference.proposal).status = ProposalStatus::Withdrawn;
            }
            ProposalAction::ExpireProposal(reference) => {
                self.proposal_mut(reference.proposal).status = ProposalStatus::Expired;
            }
        }
    }

    fn evolve_submission(
        &mut self,
        submission: &ProposalSubmission,
        event: &Event,
        catalogue: &Catalogue,
    ) {
        let category = catalogue.definition_in_force(&submission.category, "a submission");
        let proposal = Proposal {
            id: event.position,
            author: event.command.author,
            submission: submission.clone(),
            submitted_at: event.server_time,
            status: ProposalStatus::Submitted,
            department: category.department.clone(),
            published_at: None,
            expires_at: None,
            support_threshold: 0,
            supporters: BTreeSet::new(),
            supports_from_residents_only: false,
            supporting_residents: BTreeSet::new(),
            support_history: Vec::new(),
            reached_threshold_at: None,
            rejection_reason: None,
            answer: None,
        };
        self.0.insert(event.position, proposal);
    }

    fn evolve_moderation(
        &mut self,
        moderation: &ProposalModeration,
        at: Timestamp,
        catalogue: &Catalogue,
    ) {
        let proposal = self.proposal_mut(moderation.proposal);
        match &moderation.decision {
            ModerationDecision::Publish => {
                let category =
                    catalogue.definition_in_force(&proposal.submission.category, "a publication");
                proposal.status = ProposalStatus::Published;
                proposal.published_at = Some(at);
                proposal.support_threshold = category.support_threshold;
                proposal.supports_from_residents_only = category.supports_from_residents_only;
                proposal.department = category.department.clone();
                let lifetime_ms = i64::from(category.proposal_lifetime_days) * DAY_MS;
                proposal.expires_at = Some(at.plus_milliseconds(lifetime_ms));
            }
            ModerationDecision::Reject { reason } => {
                proposal.status = ProposalStatus::Rejected;
                proposal.rejection_reason = Some(reason.clone());
            }
        }
    }

    /// The expiry of proposal `id`, if it is owed at `now`: published, and its lifetime over.
    pub fn expiry_action(&self, id: u64, now: Timestamp) -> Option<Action> {
        let proposal = self.0.get(&id)?;
        (proposal.status == ProposalStatus::Published && proposal.lifetime_over(now))
            .then_some(Action::ExpireProposal(ProposalReference { proposal: id }))
    }
}

/// The resident tag of the key that supported or withdrew, which `decide` found attested.
fn resident_tag(keys: &Keys, event: &Event) -> String {
    let author = event.command.author;
    match keys.get(&author).and_then(|record| record.resident_tag()) {
        Some(tag) => tag.to_string(),
        None => {
            unreachable!("a resident-only support by key {author:?}, which has no resident tag")
        }
    }
}

impl Proposal {
    /// Appends the support count after a support or a withdrawal; the support that reaches the
    /// threshold of a published proposal puts it under review in the same step.
    fn record_supports(&mut self, event: &Event) {
        let supports = self.supports();
        self.support_history.push(SupportStep {
            position: event.position,
            at: event.server_time,
            supports,
        });
        if supports >= self.support_threshold && self.status == ProposalStatus::Published {
            self.status = ProposalStatus::UnderReview;
            self.reached_threshold_at = Some(event.server_time);
        }
    }
}

fn decide_submission(
    submission: &ProposalSubmission,
    attempt: &Attempt,
    reads: ProposalReads<'_>,
) -> Result<(), Refusal> {
    if !reads.keys.is_registered(attempt.author) {
        return Err(Refusal::NotEligible);
    }
    reads.catalogue.category(&submission.category)?;
    // The title and body are committed content, checked beside the log (`content.rs`).
    match &submission.district {
        Some(district) => check_field(
            "a district",
            district,
            Lines::One,
            limits::DISTRICT_CHARS_MAX,
        ),
        None => Ok(()),
    }
    .map_err(Refusal::InvalidProposal)
}
