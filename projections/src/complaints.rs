//! "Our City" complaints: the lifecycle rules and the fold, from filing to confirmation.
//!
//! `filed → accepted | rejected | needs_info`, `needs_info → filed` (the author adds details),
//! `accepted → in_progress → resolved | cannot_resolve`, `resolved → confirmed | in_progress`
//! (disputed) `| closed_unconfirmed` (silence past the window); any open complaint can be merged
//! into another. Deadlines come from the category's SLA in working days at acceptance.

use serde::{Deserialize, Serialize};

use crate::command::{
    Action, Attachment, CategoryDefinition, ComplaintFiling, RejectionReason, TriageDecision,
};
use crate::ledger::{Event, Ledger, Refusal};
use crate::limits;
use crate::protocol::PublicKey;
use crate::time::{Timestamp, DAY_MS};

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
    pub action: std::borrow::Cow<'static, str>,
    pub actor: PublicKey,
    pub status: ComplaintStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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

fn valid_text(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max
}

pub(crate) fn check_attachments(attachments: &[Attachment]) -> Result<(), String> {
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
        let url = &attachment.url;
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.chars().count() > limits::URL_CHARS_MAX
            || url.chars().any(char::is_whitespace)
        {
            return Err(format!(
                "an attachment's url is an http(s) URL of at most {} characters",
                limits::URL_CHARS_MAX
            ));
        }
    }
    Ok(())
}

fn check_filing(filing: &ComplaintFiling) -> Result<(), Refusal> {
    let invalid = |reason: String| Err(Refusal::InvalidComplaint(reason));
    if !valid_text(&filing.description, limits::COMPLAINT_DESCRIPTION_CHARS_MAX) {
        return invalid(format!(
            "a description has 1 to {} characters",
            limits::COMPLAINT_DESCRIPTION_CHARS_MAX
        ));
    }
    let location = &filing.location;
    let latitude = location.latitude.0;
    let longitude = location.longitude.0;
    if !latitude.is_finite() || !(-90.0..=90.0).contains(&latitude) {
        return invalid("latitude is between -90 and 90".into());
    }
    if !longitude.is_finite() || !(-180.0..=180.0).contains(&longitude) {
        return invalid("longitude is between -180 and 180".into());
    }
    if !valid_text(&location.address, limits::ADDRESS_CHARS_MAX) {
        return invalid(format!(
            "an address has 1 to {} characters",
            limits::ADDRESS_CHARS_MAX
        ));
    }
    if !valid_text(&location.district, limits::DISTRICT_CHARS_MAX) {
        return invalid(format!(
            "a district has 1 to {} characters",
            limits::DISTRICT_CHARS_MAX
        ));
    }
    check_attachments(&filing.attachments).map_err(Refusal::InvalidComplaint)
}

fn check_note(text: &str) -> Result<(), Refusal> {
    if valid_text(text, limits::NOTE_CHARS_MAX) {
        Ok(())
    } else {
        Err(Refusal::InvalidComplaint(format!(
            "an answer, reason or supplement has 1 to {} characters",
            limits::NOTE_CHARS_MAX
        )))
    }
}

fn transition(complaint: &Complaint, action: &'static str) -> Refusal {
    Refusal::TransitionNotAllowed {
        action,
        status: complaint.status.name(),
    }
}

impl Ledger {
    fn complaint(&self, id: u64) -> Result<&Complaint, Refusal> {
        self.complaints.get(&id).ok_or(Refusal::UnknownComplaint)
    }

    /// The department answering for a complaint: the one it was routed to, or, before routing,
    /// the one its category would route it to. Without the fallback, the right department's
    /// official acting on a complaint not yet (or never) accepted was told it was not their
    /// department, where the truth is that the complaint's status does not allow it.
    fn require_department_official(
        &self,
        author: PublicKey,
        complaint: &Complaint,
    ) -> Result<(), Refusal> {
        let department = complaint.department.as_deref().or_else(|| {
            self.categories
                .get(&complaint.filing.category)
                .map(|category| category.current.department.as_str())
        });
        match department {
            Some(department) if self.is_official_of(author, department) => Ok(()),
            _ if self.holds_role(author, crate::command::Role::Official) => {
                Err(Refusal::NotResponsibleDepartment)
            }
            _ => Err(Refusal::NotOfficial),
        }
    }

    /// The rules of every complaint action; `None` when `action` is not about complaints.
    pub(crate) fn decide_complaint(
        &self,
        author: PublicKey,
        action: &Action,
        at: Timestamp,
    ) -> Option<Result<(), Refusal>> {
        let moderator = || {
            if self.holds_role(author, crate::command::Role::Moderator) {
                Ok(())
            } else {
                Err(Refusal::NotModerator)
            }
        };
        let outcome = match action {
            Action::FileComplaint(filing) => (|| {
                if !self.keys.contains_key(&author) {
                    return Err(Refusal::NotEligible);
                }
                self.category(&filing.category)?;
                check_filing(filing)
            })(),
            Action::TriageComplaint(triage) => (|| {
                moderator()?;
                let complaint = self.complaint(triage.complaint)?;
                if !matches!(
                    complaint.status,
                    ComplaintStatus::Filed | ComplaintStatus::NeedsInfo
                ) {
                    return Err(transition(complaint, action.name()));
                }
                match &triage.decision {
                    TriageDecision::Accept => {
                        self.category(&complaint.filing.category)?;
                        Ok(())
                    }
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
            })(),
            Action::MergeComplaint(merge) => (|| {
                moderator()?;
                let complaint = self.complaint(merge.complaint)?;
                let target = self.complaint(merge.into)?;
                if merge.complaint == merge.into {
                    return Err(Refusal::InvalidComplaint(
                        "a complaint cannot merge into itself".into(),
                    ));
                }
                if complaint.status.is_final() || complaint.status.is_resolved() {
                    return Err(transition(complaint, action.name()));
                }
                if target.status.is_final() {
                    return Err(Refusal::InvalidComplaint(format!(
                        "complaint {} is {} and takes no merges",
                        target.id,
                        target.status.name()
                    )));
                }
                Ok(())
            })(),
            Action::SupplementComplaint(supplement) => (|| {
                let complaint = self.complaint(supplement.complaint)?;
                if complaint.author != author {
                    return Err(Refusal::NotAuthor);
                }
                if complaint.status != ComplaintStatus::NeedsInfo {
                    return Err(transition(complaint, action.name()));
                }
                check_note(&supplement.text)?;
                check_attachments(&supplement.attachments).map_err(Refusal::InvalidComplaint)
            })(),
            Action::StartWork(reference) => (|| {
                let complaint = self.complaint(reference.complaint)?;
                self.require_department_official(author, complaint)?;
                if complaint.status != ComplaintStatus::Accepted {
                    return Err(transition(complaint, action.name()));
                }
                Ok(())
            })(),
            Action::ResolveComplaint(resolution) => (|| {
                let complaint = self.complaint(resolution.complaint)?;
                self.require_department_official(author, complaint)?;
                if !complaint.status.awaits_department() {
                    return Err(transition(complaint, action.name()));
                }
                check_note(&resolution.answer)?;
                check_attachments(&resolution.evidence).map_err(Refusal::InvalidComplaint)
            })(),
            Action::CannotResolve(cannot) => (|| {
                let complaint = self.complaint(cannot.complaint)?;
                self.require_department_official(author, complaint)?;
                if !complaint.status.awaits_department() {
                    return Err(transition(complaint, action.name()));
                }
                check_note(&cannot.reason)
            })(),
            Action::ConfirmResolution(reference) => (|| {
                let complaint = self.complaint(reference.complaint)?;
                self.decide_author_answer(author, complaint, action.name(), at)
            })(),
            Action::DisputeResolution(dispute) => (|| {
                let complaint = self.complaint(dispute.complaint)?;
                self.decide_author_answer(author, complaint, action.name(), at)?;
                check_note(&dispute.reason)
            })(),
            Action::BreachSla(reference) => (|| {
                let complaint = self.complaint(reference.complaint)?;
                let due = complaint.status.awaits_department()
                    && !complaint.sla_breached
                    && complaint.deadline.is_some_and(|deadline| at > deadline);
                if due {
                    Ok(())
                } else {
                    Err(Refusal::EventNotDue)
                }
            })(),
            Action::CloseUnconfirmed(reference) => (|| {
                let complaint = self.complaint(reference.complaint)?;
                let due = complaint.status == ComplaintStatus::Resolved
                    && complaint
                        .confirmation_deadline
                        .is_some_and(|deadline| at >= deadline);
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

    fn decide_author_answer(
        &self,
        author: PublicKey,
        complaint: &Complaint,
        action: &'static str,
        at: Timestamp,
    ) -> Result<(), Refusal> {
        if complaint.author != author {
            return Err(Refusal::NotAuthor);
        }
        // Closed in silence means the window ended: say so, rather than name the status.
        if complaint.status == ComplaintStatus::ClosedUnconfirmed {
            return Err(Refusal::ConfirmationWindowClosed);
        }
        if complaint.status != ComplaintStatus::Resolved {
            return Err(transition(complaint, action));
        }
        if complaint
            .confirmation_deadline
            .is_some_and(|deadline| at >= deadline)
        {
            return Err(Refusal::ConfirmationWindowClosed);
        }
        Ok(())
    }

    /// Folds a complaint event; returns false when `event` is not about complaints.
    pub(crate) fn evolve_complaint(&mut self, event: &Event) -> bool {
        let command = &event.command;
        let at = event.server_time;
        let (id, status, note) = match &command.action {
            Action::FileComplaint(filing) => {
                self.complaints.insert(
                    event.position,
                    Complaint {
                        id: event.position,
                        author: command.author,
                        filing: filing.clone(),
                        filed_at: at,
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
                    },
                );
                (event.position, None, None)
            }
            Action::TriageComplaint(triage) => {
                let category = self
                    .complaints
                    .get(&triage.complaint)
                    .and_then(|complaint| self.categories.get(&complaint.filing.category))
                    .map(|category| category.current.clone());
                let Some(complaint) = self.complaints.get_mut(&triage.complaint) else {
                    return true;
                };
                match &triage.decision {
                    TriageDecision::Accept => {
                        if let Some(CategoryDefinition {
                            department,
                            sla_working_days,
                            confirmation_window_days,
                            ..
                        }) = category
                        {
                            complaint.department = Some(department);
                            complaint.deadline = Some(at.plus_working_days(sla_working_days));
                            complaint.confirmation_window_days = confirmation_window_days;
                        }
                        complaint.accepted_at = Some(at);
                        (triage.complaint, Some(ComplaintStatus::Accepted), None)
                    }
                    TriageDecision::Reject { rejection } => {
                        complaint.rejection = Some(rejection.clone());
                        let note = serde_json::to_value(rejection).ok().and_then(|value| {
                            value
                                .get("reason")
                                .and_then(|reason| reason.as_str().map(str::to_string))
                        });
                        (triage.complaint, Some(ComplaintStatus::Rejected), note)
                    }
                    TriageDecision::NeedsInfo { question } => (
                        triage.complaint,
                        Some(ComplaintStatus::NeedsInfo),
                        Some(question.clone()),
                    ),
                }
            }
            Action::MergeComplaint(merge) => {
                if let Some(target) = self.complaints.get_mut(&merge.into) {
                    target.merged_from.push(merge.complaint);
                }
                if let Some(complaint) = self.complaints.get_mut(&merge.complaint) {
                    complaint.merged_into = Some(merge.into);
                }
                (
                    merge.complaint,
                    Some(ComplaintStatus::Merged),
                    Some(format!("merged into {}", merge.into)),
                )
            }
            Action::SupplementComplaint(supplement) => {
                if let Some(complaint) = self.complaints.get_mut(&supplement.complaint) {
                    complaint
                        .filing
                        .attachments
                        .extend(supplement.attachments.iter().cloned());
                }
                (
                    supplement.complaint,
                    Some(ComplaintStatus::Filed),
                    Some(supplement.text.clone()),
                )
            }
            Action::StartWork(reference) => {
                (reference.complaint, Some(ComplaintStatus::InProgress), None)
            }
            Action::ResolveComplaint(resolution) => {
                if let Some(complaint) = self.complaints.get_mut(&resolution.complaint) {
                    complaint.mark_late_answer(at);
                    complaint.resolved_at = Some(at);
                    complaint.confirmation_deadline =
                        Some(at.plus_milliseconds(
                            i64::from(complaint.confirmation_window_days) * DAY_MS,
                        ));
                    complaint.answer = Some(resolution.answer.clone());
                    complaint
                        .evidence
                        .extend(resolution.evidence.iter().cloned());
                }
                (
                    resolution.complaint,
                    Some(ComplaintStatus::Resolved),
                    Some(resolution.answer.clone()),
                )
            }
            Action::CannotResolve(cannot) => {
                if let Some(complaint) = self.complaints.get_mut(&cannot.complaint) {
                    complaint.mark_late_answer(at);
                    complaint.answer = Some(cannot.reason.clone());
                }
                (
                    cannot.complaint,
                    Some(ComplaintStatus::CannotResolve),
                    Some(cannot.reason.clone()),
                )
            }
            Action::ConfirmResolution(reference) => {
                (reference.complaint, Some(ComplaintStatus::Confirmed), None)
            }
            Action::DisputeResolution(dispute) => {
                if let Some(complaint) = self.complaints.get_mut(&dispute.complaint) {
                    complaint.disputes = complaint.disputes.checked_add(1).unwrap_or_else(|| {
                        unreachable!("complaint {} disputed 2^32 times", dispute.complaint)
                    });
                    complaint.resolved_at = None;
                    complaint.confirmation_deadline = None;
                }
                (
                    dispute.complaint,
                    Some(ComplaintStatus::InProgress),
                    Some(dispute.reason.clone()),
                )
            }
            Action::BreachSla(reference) => {
                if let Some(complaint) = self.complaints.get_mut(&reference.complaint) {
                    complaint.sla_breached = true;
                }
                (reference.complaint, None, None)
            }
            Action::CloseUnconfirmed(reference) => (
                reference.complaint,
                Some(ComplaintStatus::ClosedUnconfirmed),
                None,
            ),
            _ => return false,
        };
        if let Some(complaint) = self.complaints.get_mut(&id) {
            if let Some(status) = status {
                complaint.status = status;
            }
            complaint.timeline.push(TimelineStep {
                position: event.position,
                at,
                action: std::borrow::Cow::Borrowed(command.action.name()),
                actor: command.author,
                status: complaint.status,
                note,
            });
        }
        true
    }

    /// System actions about complaints that are due at `now`.
    pub(crate) fn due_complaint_actions(&self, now: Timestamp, due: &mut Vec<Action>) {
        use crate::command::ComplaintReference;
        for complaint in self.complaints.values() {
            let reference = ComplaintReference {
                complaint: complaint.id,
            };
            if complaint.status.awaits_department()
                && !complaint.sla_breached
                && complaint.deadline.is_some_and(|deadline| now > deadline)
            {
                due.push(Action::BreachSla(reference));
            } else if complaint.status == ComplaintStatus::Resolved
                && complaint
                    .confirmation_deadline
                    .is_some_and(|deadline| now >= deadline)
            {
                due.push(Action::CloseUnconfirmed(reference));
            }
        }
    }
}
