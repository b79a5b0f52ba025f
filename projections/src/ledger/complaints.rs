//! "Our City" complaints: the lifecycle rules and the fold, from filing to confirmation.
//!
//! `filed → accepted | rejected | needs_info`, `needs_info → filed` (the author adds details),
//! `accepted → in_progress → resolved | cannot_resolve`, `resolved → confirmed | in_progress`
//! (disputed) `| closed_unconfirmed` (silence past the window); any open complaint can be merged
//! into another. Deadlines come from the category's SLA in working days at acceptance.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalogue::Catalogue;
use super::event::{Attempt, Event};
use super::keys::Keys;
use super::refusal::Refusal;
use super::state::State;
use crate::command::{
    Action, Attachment, CannotResolve, ComplaintFiling, ComplaintReference, Dispute, Merge,
    RejectionReason, Resolution, Role, Supplement, Triage, TriageDecision,
};
use crate::limits;
use crate::protocol::{Commitment, PublicKey};
use crate::text::{check_field, Lines};
use crate::time::{Timestamp, DAY_MS};

/// The actions whose rules live here.
#[derive(Clone, Copy, Debug)]
pub enum ComplaintAction<'a> {
    FileComplaint(&'a ComplaintFiling),
    TriageComplaint(&'a Triage),
    MergeComplaint(&'a Merge),
    SupplementComplaint(&'a Supplement),
    StartWork(&'a ComplaintReference),
    ResolveComplaint(&'a Resolution),
    CannotResolve(&'a CannotResolve),
    ConfirmResolution(&'a ComplaintReference),
    DisputeResolution(&'a Dispute),
    BreachSla(&'a ComplaintReference),
    CloseUnconfirmed(&'a ComplaintReference),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintStatus {
    Filed,
    NeedsInfo,
    Accepted,
    InProgress,
    Resolved,
    CannotResolve,
    Confirmed,
    ClosedUnconfirmed,
    Rejected,
    Merged,
}

impl ComplaintStatus {
    pub fn name(self) -> &'static str {
        match self {
            ComplaintStatus::Filed => "filed",
            ComplaintStatus::NeedsInfo => "needs_info",
            ComplaintStatus::Accepted => "accepted",
            ComplaintStatus::InProgress => "in_progress",
            ComplaintStatus::Resolved => "resolved",
            ComplaintStatus::CannotResolve => "cannot_resolve",
            ComplaintStatus::Confirmed => "confirmed",
            ComplaintStatus::ClosedUnconfirmed => "closed_unconfirmed",
            ComplaintStatus::Rejected => "rejected",
            ComplaintStatus::Merged => "merged",
        }
    }

    /// A resolution stands: resolved and not (yet) disputed, confirmed, or closed in silence.
    pub fn is_resolved(self) -> bool {
        matches!(
            self,
            ComplaintStatus::Resolved
                | ComplaintStatus::Confirmed
                | ComplaintStatus::ClosedUnconfirmed
        )
    }

    /// Nothing more will happen to the complaint.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ComplaintStatus::Confirmed
                | ComplaintStatus::ClosedUnconfirmed
                | ComplaintStatus::Rejected
                | ComplaintStatus::Merged
                | ComplaintStatus::CannotResolve
        )
    }

    /// Work is owed by a department.
    pub fn awaits_department(self) -> bool {
        matches!(
            self,
            ComplaintStatus::Accepted | ComplaintStatus::InProgress
        )
    }
}

/// One step of a complaint's public timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineStep {
    pub position: u64,
    pub at: Timestamp,
    #[serde(deserialize_with = "crate::command::deserialize_action_name")]
    pub action: Cow<'static, str>,
    pub actor: PublicKey,
    pub status: ComplaintStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The note when it is the author's own words (a supplement's text, a dispute's reason):
    /// content beside the log, which views fill in from the content store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_note: Option<Commitment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaint {
    pub id: u64,
    pub author: PublicKey,
    /// What the author filed; attachments the author adds in supplements are appended to its
    /// `attachments`, so the author's photos never pass for the department's `evidence`.
    pub filing: ComplaintFiling,
    pub filed_at: Timestamp,
    pub status: ComplaintStatus,
    /// The responsible department, from the category when accepted.
    pub department: Option<String>,
    pub accepted_at: Option<Timestamp>,
    pub deadline: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub confirmation_deadline: Option<Timestamp>,
    /// Days to confirm, from the category version in force at acceptance.
    pub confirmation_window_days: u32,
    pub sla_breached: bool,
    pub disputes: u32,
    pub rejection: Option<RejectionReason>,
    pub merged_into: Option<u64>,
    pub merged_from: Vec<u64>,
    pub answer: Option<String>,
    /// The department's photos of the fix, from its resolutions.
    pub evidence: Vec<Attachment>,
    pub timeline: Vec<TimelineStep>,
}

impl Complaint {
    /// A department's answer that comes after the deadline breaches the SLA, whether or not the
    /// server's `breach_sla` event (appended every 200 ms) got there first: the breach is a fact of
    /// the answer's server time, which is in the log.
    fn mark_late_answer(&mut self, at: Timestamp) {
        if self.deadline.is_some_and(|deadline| at > deadline) {
            self.sla_breached = true;
        }
    }

    /// Open and due within a day, or past its deadline.
    pub fn sla_at_risk(&self, now: Timestamp) -> bool {
        self.status.awaits_department()
            && self
                .deadline
                .is_some_and(|deadline| now.plus_milliseconds(DAY_MS) >= deadline)
    }
}

fn check_attachments(attachments: &[Attachment]) -> Result<(), String> {
    if attachments.len() > limits::ATTACHMENTS_MAX {
        return Err(format!("at most {} attachments", limits::ATTACHMENTS_MAX));
    }
    for attachment in attachments {
        let hash_ok = attachment.sha256.len() == 64
            && attachment
                .sha256
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        if !hash_ok {
            return Err("an attachment's sha256 is 64 lowercase hexadecimal characters".into());
        }
        // The URL is committed content: its rules are checked beside the log (`content.rs`).
    }
    Ok(())
}

/// Whether `degrees` lies on the public grid: a multiple of 10^-`COORDINATE_DECIMALS_MAX`
/// degrees, written with at most that many decimals (about 110 m of latitude at 3: a block, not
/// a home). Division by a power of ten rounds correctly, so a number parsed from at most that
/// many decimals comes back bit for bit.
fn on_public_grid(degrees: f64) -> bool {
    let scale = 10f64.powi(limits::COORDINATE_DECIMALS_MAX);
    ((degrees * scale).round() / scale).to_bits() == degrees.to_bits()
}

fn check_filing(filing: &ComplaintFiling) -> Result<(), Refusal> {
    let invalid = |reason: String| Err(Refusal::InvalidComplaint(reason));
    let location = &filing.location;
    let latitude = location.latitude.0;
    let longitude = location.longitude.0;
    if !latitude.is_finite() || !(-90.0..=90.0).contains(&latitude) {
        return invalid("latitude is between -90 and 90".into());
    }
    if !longitude.is_finite() || !(-180.0..=180.0).contains(&longitude) {
        return invalid("longitude is between -180 and 180".into());
    }
    if !on_public_grid(latitude) || !on_public_grid(longitude) {
        return invalid(format!(
            "coordinates have at most {} decimals (the public grid; the address says the rest)",
            limits::COORDINATE_DECIMALS_MAX
        ));
    }
    let district = &location.district;
    check_field(
        "a district",
        district,
        Lines::One,
        limits::DISTRICT_CHARS_MAX,
    )
    .or_else(invalid)?;
    check_attachments(&filing.attachments).map_err(Refusal::InvalidComplaint)
}

fn check_note(text: &str) -> Result<(), Refusal> {
    let what = "an answer, reason or supplement";
    check_field(what, text, Lines::Many, limits::NOTE_CHARS_MAX).map_err(Refusal::InvalidComplaint)
}

fn transition(complaint: &Complaint, attempt: &Attempt) -> Refusal {
    Refusal::TransitionNotAllowed {
        action: attempt.action_name,
        status: complaint.status.name(),
    }
}

/// What one event does to the complaint it is about: the new status, if it changes, and the
/// note its timeline step shows.
struct Change {
    complaint: u64,
    status: Option<ComplaintStatus>,
    note: Option<String>,
    committed_note: Option<Commitment>,
}

impl Change {
    fn to(complaint: u64, status: ComplaintStatus, note: Option<String>) -> Change {
        Change {
            complaint,
            status: Some(status),
            note,
            committed_note: None,
        }
    }

    /// The status change, with the author's committed words as its note.
    fn with_committed_note(self, note: Commitment) -> Change {
        Change {
            committed_note: Some(note),
            ..self
        }
    }
}

/// The complaints aggregate: complaints by id (the position of their filing).
pub type Complaints = State<BTreeMap<u64, Complaint>>;

/// What the complaint rules read of the other aggregates.
#[derive(Clone, Copy)]
pub struct ComplaintReads<'a> {
    pub keys: &'a Keys,
    pub catalogue: &'a Catalogue,
}

impl Complaints {
    fn complaint(&self, id: u64) -> Result<&Complaint, Refusal> {
        self.find(id, Refusal::UnknownComplaint)
    }

    fn complaint_mut(&mut self, id: u64) -> &mut Complaint {
        self.found_mut(id, "complaint")
    }

    /// May `attempt` do `action` now?
    pub fn decide(
        &self,
        action: ComplaintAction<'_>,
        attempt: &Attempt,
        reads: ComplaintReads<'_>,
    ) -> Result<(), Refusal> {
        match action {
            ComplaintAction::FileComplaint(filing) => decide_filing(filing, attempt, reads),
            ComplaintAction::TriageComplaint(triage) => self.decide_triage(triage, attempt, reads),
            ComplaintAction::MergeComplaint(merge) => self.decide_merge(merge, attempt, reads),
            ComplaintAction::SupplementComplaint(supplement) => {
                self.decide_supplement(supplement, attempt)
            }
            ComplaintAction::StartWork(reference) => {
                let complaint = self.complaint(reference.complaint)?;
                require_department_official(complaint, attempt, reads)?;
                if complaint.status != ComplaintStatus::Accepted {
                    return Err(transition(complaint, attempt));
                }
                Ok(())
            }
            ComplaintAction::ResolveComplaint(resolution) => {
                let complaint = self.complaint(resolution.complaint)?;
                decide_department_answer(complaint, attempt, reads, &resolution.answer)?;
                check_attachments(&resolution.evidence).map_err(Refusal::InvalidComplaint)
            }
            ComplaintAction::CannotResolve(cannot) => {
                let complaint = self.complaint(cannot.complaint)?;
                decide_department_answer(complaint, attempt, reads, &cannot.reason)
            }
            ComplaintAction::ConfirmResolution(reference) => {
                decide_author_answer(self.complaint(reference.complaint)?, attempt)
            }
            ComplaintAction::DisputeResolution(dispute) => {
                decide_author_answer(self.complaint(dispute.complaint)?, attempt)
            }
            ComplaintAction::BreachSla(reference) => due(breach_is_due(
                self.complaint(reference.complaint)?,
                attempt.at,
            )),
            ComplaintAction::CloseUnconfirmed(reference) => due(silence_is_due(
                self.complaint(reference.complaint)?,
                attempt.at,
            )),
        }
    }

    fn decide_triage(
        &self,
        triage: &Triage,
        attempt: &Attempt,
        reads: ComplaintReads<'_>,
    ) -> Result<(), Refusal> {
        require_moderator(attempt, reads)?;
        let complaint = self.complaint(triage.complaint)?;
        require_other_author(complaint, attempt)?;
        if !matches!(
            complaint.status,
            ComplaintStatus::Filed | ComplaintStatus::NeedsInfo
        ) {
            return Err(transition(complaint, attempt));
        }
        match &triage.decision {
            TriageDecision::Accept => reads
                .catalogue
                .category(&complaint.filing.category)
                .map(|_| ()),
            TriageDecision::Reject {
                rejection:
                    RejectionReason::DuplicateOf {
                        complaint: original,
                    },
            } => {
                if *original == triage.complaint {
                    return Err(Refusal::InvalidComplaint(
                        "a complaint is not its own duplicate".into(),
                    ));
                }
                self.complaint(*original).map(|_| ())
            }
            TriageDecision::Reject { .. } => Ok(()),
            TriageDecision::NeedsInfo { question } => check_note(question),
        }
    }

    fn decide_merge(
        &self,
        merge: &Merge,
        attempt: &Attempt,
        reads: ComplaintReads<'_>,
    ) -> Result<(), Refusal> {
        require_moderator(attempt, reads)?;
        let complaint = self.complaint(merge.complaint)?;
        let target = self.complaint(merge.into)?;
        require_other_author(complaint, attempt)?;
        require_other_author(target, attempt)?;
        if merge.complaint == merge.into {
            return Err(Refusal::InvalidComplaint(
                "a complaint cannot merge into itself".into(),
            ));
        }
        if complaint.status.is_final() || complaint.status.is_resolved() {
            return Err(transition(complaint, attempt));
        }
        if target.status.is_final() {
            return Err(Refusal::InvalidComplaint(format!(
                "complaint {} is {} and takes no merges",
                target.id,
                target.status.name()
            )));
        }
        Ok(())
    }

    fn decide_supplement(&self, supplement: &Supplement, attempt: &Attempt) -> Result<(), Refusal> {
        let complaint = self.complaint(supplement.complaint)?;
        if complaint.author != attempt.author {
            return Err(Refusal::NotAuthor);
        }
        if complaint.status != ComplaintStatus::NeedsInfo {
            return Err(transition(complaint, attempt));
        }
        check_attachments(&supplement.attachments).map_err(Refusal::InvalidComplaint)
    }

    /// Folds one decided event in, and adds the step to the complaint's timeline.
    pub fn evolve(&mut self, action: ComplaintAction<'_>, event: &Event, catalogue: &Catalogue) {
        let at = event.server_time;
        let change = match action {
            ComplaintAction::FileComplaint(filing) => self.evolve_filing(filing, event),
            ComplaintAction::TriageComplaint(triage) => self.evolve_triage(triage, at, catalogue),
            ComplaintAction::MergeComplaint(merge) => self.evolve_merge(merge),
            ComplaintAction::SupplementComplaint(supplement) => {
                let complaint = self.complaint_mut(supplement.complaint);
                let added = supplement.attachments.iter().cloned();
                complaint.filing.attachments.extend(added);
                // The author's words are content beside the log: the step names their commitment.
                Change::to(supplement.complaint, ComplaintStatus::Filed, None)
                    .with_committed_note(supplement.text)
            }
            ComplaintAction::StartWork(reference) => {
                Change::to(reference.complaint, ComplaintStatus::InProgress, None)
            }
            ComplaintAction::ResolveComplaint(resolution) => self.evolve_resolution(resolution, at),
            ComplaintAction::CannotResolve(cannot) => {
                let complaint = self.complaint_mut(cannot.complaint);
                complaint.mark_late_answer(at);
                complaint.answer = Some(cannot.reason.clone());
                let note = Some(cannot.reason.clone());
                Change::to(cannot.complaint, ComplaintStatus::CannotResolve, note)
            }
            ComplaintAction::ConfirmResolution(reference) => {
                Change::to(reference.complaint, ComplaintStatus::Confirmed, None)
            }
            ComplaintAction::DisputeResolution(dispute) => self.evolve_dispute(dispute),
            ComplaintAction::BreachSla(reference) => {
                self.complaint_mut(reference.complaint).sla_breached = true;
                Change {
                    complaint: reference.complaint,
                    status: None,
                    note: None,
                    committed_note: None,
                }
            }
            ComplaintAction::CloseUnconfirmed(reference) => Change::to(
                reference.complaint,
                ComplaintStatus::ClosedUnconfirmed,
                None,
            ),
        };
        self.record_step(change, event);
    }

    fn record_step(&mut self, change: Change, event: &Event) {
        let complaint = self.complaint_mut(change.complaint);
        if let Some(status) = change.status {
            complaint.status = status;
        }
        complaint.timeline.push(TimelineStep {
            position: event.position,
            at: event.server_time,
            action: Cow::Borrowed(event.command.action.name()),
            actor: event.command.author,
            status: complaint.status,
            note: change.note,
            committed_note: change.committed_note,
        });
    }

    fn evolve_filing(&mut self, filing: &ComplaintFiling, event: &Event) -> Change {
        let complaint = Complaint {
            id: event.position,
            author: event.command.author,
            filing: filing.clone(),
            filed_at: event.server_time,
            status: ComplaintStatus::Filed,
            department: None,
            accepted_at: None,
            deadline: None,
            resolved_at: None,
            confirmation_deadline: None,
            confirmation_window_days: 0,
            sla_breached: false,
            disputes: 0,
            rejection: None,
            merged_into: None,
            merged_from: Vec::new(),
            answer: None,
            evidence: Vec::new(),
            timeline: Vec::new(),
        };
        self.0.insert(event.position, complaint);
        Change {
            complaint: event.position,
            status: None,
            note: None,
            committed_note: None,
        }
    }

    fn evolve_triage(&mut self, triage: &Triage, at: Timestamp, catalogue: &Catalogue) -> Change {
        let complaint = self.complaint_mut(triage.complaint);
        match &triage.decision {
            TriageDecision::Accept => {
                let category =
                    catalogue.definition_in_force(&complaint.filing.category, "an acceptance");
                complaint.department = Some(category.department.clone());
                complaint.deadline = Some(at.plus_working_days(category.sla_working_days));
                complaint.confirmation_window_days = category.confirmation_window_days;
                complaint.accepted_at = Some(at);
                Change::to(triage.complaint, ComplaintStatus::Accepted, None)
            }
            TriageDecision::Reject { rejection } => {
                complaint.rejection = Some(rejection.clone());
                let note = Some(rejection.name().to_string());
                Change::to(triage.complaint, ComplaintStatus::Rejected, note)
            }
            TriageDecision::NeedsInfo { question } => {
                let note = Some(question.clone());
                Change::to(triage.complaint, ComplaintStatus::NeedsInfo, note)
            }
        }
    }

    fn evolve_merge(&mut self, merge: &Merge) -> Change {
        self.complaint_mut(merge.into)
            .merged_from
            .push(merge.complaint);
        self.complaint_mut(merge.complaint).merged_into = Some(merge.into);
        let note = Some(format!("merged into {}", merge.into));
        Change::to(merge.complaint, ComplaintStatus::Merged, note)
    }

    fn evolve_resolution(&mut self, resolution: &Resolution, at: Timestamp) -> Change {
        let complaint = self.complaint_mut(resolution.complaint);
        complaint.mark_late_answer(at);
        complaint.resolved_at = Some(at);
        let window_ms = i64::from(complaint.confirmation_window_days) * DAY_MS;
        complaint.confirmation_deadline = Some(at.plus_milliseconds(window_ms));
        complaint.answer = Some(resolution.answer.clone());
        complaint
            .evidence
            .extend(resolution.evidence.iter().cloned());
        let note = Some(resolution.answer.clone());
        Change::to(resolution.complaint, ComplaintStatus::Resolved, note)
    }

    fn evolve_dispute(&mut self, dispute: &Dispute) -> Change {
        let complaint = self.complaint_mut(dispute.complaint);
        complaint.disputes = complaint
            .disputes
            .checked_add(1)
            .unwrap_or_else(|| unreachable!("complaint {} disputed 2^32 times", dispute.complaint));
        complaint.resolved_at = None;
        complaint.confirmation_deadline = None;
        Change::to(dispute.complaint, ComplaintStatus::InProgress, None)
            .with_committed_note(dispute.reason)
    }

    /// The SLA breach of complaint `id`, if it is owed at `now`.
    pub fn breach_action(&self, id: u64, now: Timestamp) -> Option<Action> {
        let complaint = self.0.get(&id)?;
        breach_is_due(complaint, now)
            .then_some(Action::BreachSla(ComplaintReference { complaint: id }))
    }

    /// The silent close of complaint `id`'s resolution, if it is owed at `now`.
    pub fn silence_action(&self, id: u64, now: Timestamp) -> Option<Action> {
        let complaint = self.0.get(&id)?;
        silence_is_due(complaint, now).then_some(Action::CloseUnconfirmed(ComplaintReference {
            complaint: id,
        }))
    }
}

fn due(is_due: bool) -> Result<(), Refusal> {
    if is_due {
        Ok(())
    } else {
        Err(Refusal::EventNotDue)
    }
}

/// The deadline passed with the department's work still owed, and no breach recorded yet.
fn breach_is_due(complaint: &Complaint, now: Timestamp) -> bool {
    complaint.status.awaits_department()
        && !complaint.sla_breached
        && complaint.deadline.is_some_and(|deadline| now > deadline)
}

/// The confirmation window of a standing resolution ended in silence.
fn silence_is_due(complaint: &Complaint, now: Timestamp) -> bool {
    complaint.status == ComplaintStatus::Resolved
        && complaint
            .confirmation_deadline
            .is_some_and(|deadline| now >= deadline)
}

fn decide_filing(
    filing: &ComplaintFiling,
    attempt: &Attempt,
    reads: ComplaintReads<'_>,
) -> Result<(), Refusal> {
    if !reads.keys.is_registered(attempt.author) {
        return Err(Refusal::NotEligible);
    }
    // The mark that counts a complaint apart in the statistics is the gateway's word: only a
    // key the admin made a gateway may give it.
    if filing.through_gateway && !reads.keys.holds_role(attempt.author, Role::Gateway) {
        return Err(Refusal::NotGateway);
    }
    reads.catalogue.category(&filing.category)?;
    check_filing(filing)
}

fn require_moderator(attempt: &Attempt, reads: ComplaintReads<'_>) -> Result<(), Refusal> {
    if reads.keys.holds_role(attempt.author, Role::Moderator) {
        Ok(())
    } else {
        Err(Refusal::NotModerator)
    }
}

/// A moderator never judges their own complaint: another moderator must.
fn require_other_author(complaint: &Complaint, attempt: &Attempt) -> Result<(), Refusal> {
    if complaint.author == attempt.author {
        return Err(Refusal::SeparationOfDuties(
            "a moderator cannot triage or merge their own complaint".into(),
        ));
    }
    Ok(())
}

/// The department answering for a complaint: the one it was routed to, or, before routing,
/// the one its category would route it to. Without the fallback, the right department's
/// official acting on a complaint not yet (or never) accepted was told it was not their
/// department, where the truth is that the complaint's status does not allow it.
fn require_department_official(
    complaint: &Complaint,
    attempt: &Attempt,
    reads: ComplaintReads<'_>,
) -> Result<(), Refusal> {
    let department = complaint.department.as_deref().or_else(|| {
        reads
            .catalogue
            .get(&complaint.filing.category)
            .map(|category| category.current.department.as_str())
    });
    reads.keys.require_official_of(attempt.author, department)
}

/// A resolution or a "cannot resolve": the department's official, while work is owed, with a note.
fn decide_department_answer(
    complaint: &Complaint,
    attempt: &Attempt,
    reads: ComplaintReads<'_>,
    note: &str,
) -> Result<(), Refusal> {
    require_department_official(complaint, attempt, reads)?;
    if !complaint.status.awaits_department() {
        return Err(transition(complaint, attempt));
    }
    check_note(note)
}

fn decide_author_answer(complaint: &Complaint, attempt: &Attempt) -> Result<(), Refusal> {
    if complaint.author != attempt.author {
        return Err(Refusal::NotAuthor);
    }
    // Closed in silence means the window ended: say so, rather than name the status.
    if complaint.status == ComplaintStatus::ClosedUnconfirmed {
        return Err(Refusal::ConfirmationWindowClosed);
    }
    if complaint.status != ComplaintStatus::Resolved {
        return Err(transition(complaint, attempt));
    }
    if complaint
        .confirmation_deadline
        .is_some_and(|deadline| attempt.at >= deadline)
    {
        return Err(Refusal::ConfirmationWindowClosed);
    }
    Ok(())
}
