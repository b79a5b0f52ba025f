//! The deadline index: every system event the server will owe, by the instant it falls due, so
//! finding what is due at `now` reads the front of the index instead of scanning every poll,
//! complaint and proposal. A million open complaints cost nothing while none is due.
//!
//! Invariant: the index holds exactly one instant for each (kind, subject) whose system event is
//! pending (a poll not yet closed, a complaint whose SLA can still be breached or whose
//! resolution can still close in silence, a published proposal), and nothing else. `Ledger`
//! refreshes the subjects of every event it folds, and rebuilds the whole index from the state
//! when a snapshot is decoded; equality of ledgers compares it, so a replay and a snapshot that
//! disagree on it disagree visibly.

use std::collections::{BTreeMap, BTreeSet};

use super::complaints::{Complaint, ComplaintStatus, Complaints};
use super::polls::{Poll, Polls};
use super::proposals::{Proposal, ProposalStatus, Proposals};
use crate::time::Timestamp;

/// The kinds of system event, in the order the server lists those due at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DueEvent {
    ClosePoll,
    BreachSla,
    CloseUnconfirmed,
    ExpireProposal,
}

impl DueEvent {
    /// Polls, then complaints, then proposals: the order the server lists due events in.
    pub fn aggregate_order(self) -> u8 {
        match self {
            DueEvent::ClosePoll => 0,
            DueEvent::BreachSla | DueEvent::CloseUnconfirmed => 1,
            DueEvent::ExpireProposal => 2,
        }
    }
}

/// What a due event is about: its kind and the id of its poll, complaint or proposal.
pub type Subject = (DueEvent, u64);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deadlines {
    by_instant: BTreeSet<(Timestamp, Subject)>,
    by_subject: BTreeMap<Subject, Timestamp>,
}

impl Deadlines {
    /// The index of everything pending in these aggregates' states.
    pub fn of(polls: &Polls, complaints: &Complaints, proposals: &Proposals) -> Deadlines {
        let mut deadlines = Deadlines::default();
        for poll in polls.values() {
            deadlines.refresh_poll(poll);
        }
        for complaint in complaints.values() {
            deadlines.refresh_complaint(complaint);
        }
        for proposal in proposals.values() {
            deadlines.refresh_proposal(proposal);
        }
        deadlines
    }

    /// The subjects due at `now`, earliest first.
    pub fn due(&self, now: Timestamp) -> impl Iterator<Item = Subject> + '_ {
        let last = (now, (DueEvent::ExpireProposal, u64::MAX));
        self.by_instant.range(..=last).map(|(_, subject)| *subject)
    }

    /// How many system events are pending, due or not.
    pub fn len(&self) -> usize {
        self.by_subject.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_subject.is_empty()
    }

    pub fn refresh_poll(&mut self, poll: &Poll) {
        let closes = poll.closed.is_none().then_some(poll.definition.closes_at);
        self.set((DueEvent::ClosePoll, poll.id), closes);
    }

    pub fn refresh_complaint(&mut self, complaint: &Complaint) {
        self.set(
            (DueEvent::BreachSla, complaint.id),
            breach_instant(complaint),
        );
        let silence = (complaint.status == ComplaintStatus::Resolved)
            .then_some(complaint.confirmation_deadline)
            .flatten();
        self.set((DueEvent::CloseUnconfirmed, complaint.id), silence);
    }

    pub fn refresh_proposal(&mut self, proposal: &Proposal) {
        let expires = (proposal.status == ProposalStatus::Published)
            .then_some(proposal.expires_at)
            .flatten();
        self.set((DueEvent::ExpireProposal, proposal.id), expires);
    }

    fn set(&mut self, subject: Subject, instant: Option<Timestamp>) {
        if let Some(previous) = self.by_subject.remove(&subject) {
            self.by_instant.remove(&(previous, subject));
        }
        if let Some(instant) = instant {
            self.by_subject.insert(subject, instant);
            self.by_instant.insert((instant, subject));
        }
    }
}

/// A breach is due once the server time is past the deadline, so from one millisecond after it.
fn breach_instant(complaint: &Complaint) -> Option<Timestamp> {
    if !complaint.status.awaits_department() || complaint.sla_breached {
        return None;
    }
    complaint
        .deadline
        .map(|deadline| deadline.plus_milliseconds(1))
}
