//! The state every decision and every published number comes from, with its two pure functions:
//! `decide` (may this command be appended now?) and `evolve` (fold one appended event in).
//!
//! The ledger composes one aggregate per part of the domain: keys and roles, the catalogue,
//! polls, complaints, proposals and replay protection. Each holds its own state, decides the
//! actions addressed to it and folds them in, reading the other aggregates only through the
//! narrow `&` views it is given. The ledger itself checks who signed an entry, addresses each
//! action to its aggregate (one exhaustive match, `address`), and keeps the log's head.
//!
//! The server runs `decide` before appending and the verifier runs it again on replay, so an
//! entry the server should have refused is caught by anyone who replays the log.

use serde::{Deserialize, Serialize};

use crate::command::{Action, CheckpointReference, Command, Role, StateAttestation, StateMark};
use crate::merkle::Frontier;
use crate::protocol::{EntryKind, Hash, PublicKey, GENESIS_PREVIOUS_HASH};
use crate::time::Timestamp;

mod arithmetic;
pub mod catalogue;
pub mod complaints;
pub mod deadlines;
pub mod erasures;
pub mod event;
pub mod keys;
pub mod polls;
pub mod proposals;
pub mod refusal;
pub mod replay_protection;
#[cfg(test)]
mod rules;
pub mod snapshot;
pub mod state;

pub use catalogue::{Catalogue, CatalogueAction, CategoryRecord};
pub use complaints::{ComplaintAction, ComplaintReads, Complaints};
pub use erasures::{ContentRecord, ErasureAction, Erasures};
pub use event::{Attempt, Event};
pub use keys::{KeyAction, KeyRecord, Keys, LogIdentity, Resident};
pub use polls::{ChoiceSet, ClosedPoll, CredentialCounts, Poll, PollAction, PollStatus, Polls};
pub use proposals::{ProposalAction, ProposalReads, Proposals};
pub use refusal::Refusal;
pub use replay_protection::ReplayProtection;
pub use state::State;

/// An action, addressed to the aggregate whose rules decide it.
#[derive(Clone, Copy, Debug)]
pub enum Addressed<'a> {
    Keys(KeyAction<'a>),
    Catalogue(CatalogueAction<'a>),
    Polls(PollAction<'a>),
    Complaints(ComplaintAction<'a>),
    Proposals(ProposalAction<'a>),
    /// What the ledger decides itself, about the whole state rather than one aggregate.
    Ledger(LedgerAction<'a>),
    Erasures(ErasureAction<'a>),
}

/// The actions about the whole state: its attestations, and the marks that announce one.
#[derive(Clone, Copy, Debug)]
pub enum LedgerAction<'a> {
    AttestState(&'a StateAttestation),
    MarkState(&'a StateMark),
}

/// The one place that knows which aggregate each action belongs to. Exhaustive, so a new action
/// cannot be appended without rules, and each aggregate's own matches are exhaustive in turn.
pub fn address(action: &Action) -> Addressed<'_> {
    use Addressed as To;
    match action {
        Action::Genesis(genesis) => To::Keys(KeyAction::Genesis(genesis)),
        Action::RegisterKey(registration) => To::Keys(KeyAction::RegisterKey(registration)),
        Action::GrantRole(change) => To::Keys(KeyAction::GrantRole(change)),
        Action::RevokeRole(change) => To::Keys(KeyAction::RevokeRole(change)),
        Action::HandOverAdmin(hand_over) => To::Keys(KeyAction::HandOverAdmin(hand_over)),
        Action::ApproveRecovery(approval) => To::Keys(KeyAction::ApproveRecovery(approval)),
        Action::AttestResident(attestation) => To::Keys(KeyAction::AttestResident(attestation)),
        Action::RevokeKey(revocation) => To::Keys(KeyAction::RevokeKey(revocation)),
        Action::DefineCategory(definition) => {
            To::Catalogue(CatalogueAction::DefineCategory(definition))
        }
        Action::OpenPoll(definition) => To::Polls(PollAction::OpenPoll(definition)),
        Action::CorrectPoll(correction) => To::Polls(PollAction::CorrectPoll(correction)),
        Action::CastBallot(ballot) => To::Polls(PollAction::CastBallot(ballot)),
        Action::RequestCredentials(request) => To::Polls(PollAction::RequestCredentials(request)),
        Action::CastAnonymousBallot(ballot) => To::Polls(PollAction::CastAnonymousBallot(ballot)),
        Action::ClosePoll(close) => To::Polls(PollAction::ClosePoll(close)),
        Action::FileComplaint(filing) => To::Complaints(ComplaintAction::FileComplaint(filing)),
        Action::TriageComplaint(triage) => To::Complaints(ComplaintAction::TriageComplaint(triage)),
        Action::MergeComplaint(merge) => To::Complaints(ComplaintAction::MergeComplaint(merge)),
        Action::SupplementComplaint(supplement) => {
            To::Complaints(ComplaintAction::SupplementComplaint(supplement))
        }
        Action::StartWork(reference) => To::Complaints(ComplaintAction::StartWork(reference)),
        Action::ResolveComplaint(resolution) => {
            To::Complaints(ComplaintAction::ResolveComplaint(resolution))
        }
        Action::CannotResolve(cannot) => To::Complaints(ComplaintAction::CannotResolve(cannot)),
        Action::ConfirmResolution(reference) => {
            To::Complaints(ComplaintAction::ConfirmResolution(reference))
        }
        Action::DisputeResolution(dispute) => {
            To::Complaints(ComplaintAction::DisputeResolution(dispute))
        }
        Action::BreachSla(reference) => To::Complaints(ComplaintAction::BreachSla(reference)),
        Action::CloseUnconfirmed(reference) => {
            To::Complaints(ComplaintAction::CloseUnconfirmed(reference))
        }
        Action::SubmitProposal(submission) => {
            To::Proposals(ProposalAction::SubmitProposal(submission))
        }
        Action::ModerateProposal(moderation) => {
            To::Proposals(ProposalAction::ModerateProposal(moderation))
        }
        Action::SupportProposal(reference) => {
            To::Proposals(ProposalAction::SupportProposal(reference))
        }
        Action::WithdrawSupport(reference) => {
            To::Proposals(ProposalAction::WithdrawSupport(reference))
        }
        Action::AnswerProposal(answer) => To::Proposals(ProposalAction::AnswerProposal(answer)),
        Action::WithdrawProposal(reference) => {
            To::Proposals(ProposalAction::WithdrawProposal(reference))
        }
        Action::ExpireProposal(reference) => {
            To::Proposals(ProposalAction::ExpireProposal(reference))
        }
        Action::AttestState(attestation) => To::Ledger(LedgerAction::AttestState(attestation)),
        Action::MarkState(mark) => To::Ledger(LedgerAction::MarkState(mark)),
        Action::EraseContent(reference) => To::Erasures(ErasureAction::EraseContent(reference)),
        Action::RedactContent(redaction) => To::Erasures(ErasureAction::RedactContent(redaction)),
    }
}

/// A spam rejection that redacts in the same step is one entry decided by two aggregates: the
/// complaint's rules reject it, the erasure rules redact its filed content.
fn spam_redaction(action: &Action) -> Option<ErasureAction<'_>> {
    match action {
        Action::TriageComplaint(triage) if triage.redacts_content() => {
            Some(ErasureAction::RejectAsSpam {
                complaint: triage.complaint,
            })
        }
        _ => None,
    }
}

/// The records whose deadlines an event may have changed.
enum Changed {
    Nothing,
    Poll(u64),
    /// A merge changes two.
    Complaints([Option<u64>; 2]),
    Proposal(u64),
}

/// What the event at `position` with this action may have changed. Ballots and credential
/// requests change no deadline; neither do keys, the catalogue, attestations or erasures.
fn changed_by(action: &Addressed<'_>, position: u64) -> Changed {
    match action {
        Addressed::Polls(action) => match action {
            PollAction::OpenPoll(_) => Changed::Poll(position),
            PollAction::ClosePoll(close) => Changed::Poll(close.poll),
            // A correction may move `closes_at`.
            PollAction::CorrectPoll(correction) => Changed::Poll(correction.poll),
            PollAction::CastBallot(_)
            | PollAction::RequestCredentials(_)
            | PollAction::CastAnonymousBallot(_) => Changed::Nothing,
        },
        Addressed::Complaints(action) => Changed::Complaints(complaints_changed(action, position)),
        Addressed::Proposals(action) => Changed::Proposal(proposal_changed(action, position)),
        Addressed::Keys(_)
        | Addressed::Catalogue(_)
        | Addressed::Ledger(_)
        | Addressed::Erasures(_) => Changed::Nothing,
    }
}

fn complaints_changed(action: &ComplaintAction<'_>, position: u64) -> [Option<u64>; 2] {
    let one = |id: u64| [Some(id), None];
    match action {
        ComplaintAction::FileComplaint(_) => one(position),
        ComplaintAction::TriageComplaint(triage) => one(triage.complaint),
        ComplaintAction::MergeComplaint(merge) => [Some(merge.complaint), Some(merge.into)],
        ComplaintAction::SupplementComplaint(supplement) => one(supplement.complaint),
        ComplaintAction::StartWork(reference)
        | ComplaintAction::ConfirmResolution(reference)
        | ComplaintAction::BreachSla(reference)
        | ComplaintAction::CloseUnconfirmed(reference) => one(reference.complaint),
        ComplaintAction::ResolveComplaint(resolution) => one(resolution.complaint),
        ComplaintAction::CannotResolve(answer) => one(answer.complaint),
        ComplaintAction::DisputeResolution(dispute) => one(dispute.complaint),
    }
}

fn proposal_changed(action: &ProposalAction<'_>, position: u64) -> u64 {
    match action {
        ProposalAction::SubmitProposal(_) => position,
        ProposalAction::ModerateProposal(moderation) => moderation.proposal,
        ProposalAction::SupportProposal(reference)
        | ProposalAction::WithdrawSupport(reference)
        | ProposalAction::WithdrawProposal(reference)
        | ProposalAction::ExpireProposal(reference) => reference.proposal,
        ProposalAction::AnswerProposal(answer) => answer.proposal,
    }
}

/// Everything the log says so far.
/// Serialised (as JSON, by `snapshot`) without its large collections (key records, ballots,
/// nonces), which snapshots pack in a compact binary form of their own.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ledger {
    /// Flattened, so the snapshot's JSON keeps the log identity at the top, as before the split.
    #[serde(flatten)]
    pub keys: Keys,
    pub polls: Polls,
    pub categories: Catalogue,
    pub complaints: Complaints,
    pub proposals: Proposals,
    /// Entries that commit to content, and which entry erased it.
    #[serde(default)]
    pub erasures: Erasures,
    #[serde(skip)]
    pub(crate) replay: ReplayProtection,
    /// Derived from the state: kept by `evolve`, rebuilt when a snapshot is decoded.
    #[serde(skip)]
    pub(crate) deadlines: deadlines::Deadlines,
    /// Entries folded in so far; the next position.
    pub size: u64,
    /// Hash of the last entry, or zeros before the first.
    pub head_hash: Hash,
    pub last_server_time: Timestamp,
    /// The right edge of the Merkle tree over the log: O(log n) hashes.
    pub merkle: Frontier,
    /// The position of the latest `mark_state` that no `attest_state` has followed yet: the one
    /// size an attestation may name besides its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_mark: Option<u64>,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger {
            head_hash: GENESIS_PREVIOUS_HASH,
            ..Ledger::default()
        }
    }

    /// The size and Merkle root of the log folded so far.
    pub fn checkpoint_reference(&self) -> CheckpointReference {
        CheckpointReference {
            size: self.size,
            root: hex::encode(self.merkle.root()),
        }
    }

    pub fn identity(&self) -> Option<&LogIdentity> {
        self.keys.identity()
    }

    pub fn server_key(&self) -> Option<PublicKey> {
        self.keys.server_key()
    }

    pub fn is_admin(&self, key: PublicKey) -> bool {
        self.keys.is_admin(key)
    }

    pub fn holds_role(&self, key: PublicKey, role: Role) -> bool {
        self.keys.holds_role(key, role)
    }

    pub fn is_official_of(&self, key: PublicKey, department: &str) -> bool {
        self.keys.is_official_of(key, department)
    }

    /// The ballot `voter` has counted in `poll`, if any.
    pub fn ballot(&self, poll: &Poll, voter: PublicKey) -> Option<ChoiceSet> {
        polls::ballot_of(&self.keys, poll, voter)
    }

    /// Decides whether `command`, signed by `signer` in an entry of `kind`, may be appended at
    /// the next position with server time `server_time`.
    pub(crate) fn decide(
        &self,
        kind: EntryKind,
        signer: PublicKey,
        command: &Command,
        server_time: Timestamp,
    ) -> Result<(), Refusal> {
        self.check_signer(kind, signer, command)?;
        self.replay.decide(kind, command, server_time)?;
        // A revoked key can do nothing more, whatever it asks: one check for every action.
        if self.keys.is_revoked(command.author) {
            return Err(Refusal::KeyRevoked);
        }
        let attempt = Attempt {
            author: command.author,
            at: server_time,
            action_name: command.action.name(),
        };
        let keys = &self.keys;
        let catalogue = &self.categories;
        match address(&command.action) {
            Addressed::Keys(action) => keys.decide(action, attempt.author),
            Addressed::Catalogue(action) => catalogue.decide(action, attempt.author, keys),
            Addressed::Polls(action) => {
                self.polls
                    .decide(action, attempt.author, attempt.at, keys, || {
                        self.checkpoint_reference()
                    })
            }
            Addressed::Complaints(action) => {
                let reads = ComplaintReads { keys, catalogue };
                self.complaints.decide(action, &attempt, reads)?;
                match spam_redaction(&command.action) {
                    Some(redaction) => self.erasures.decide(keys, attempt.author, redaction),
                    None => Ok(()),
                }
            }
            Addressed::Proposals(action) => {
                let reads = ProposalReads { keys, catalogue };
                self.proposals.decide(action, &attempt, reads)
            }
            Addressed::Ledger(action) => self.decide_about_state(&action),
            Addressed::Erasures(action) => self.erasures.decide(keys, attempt.author, action),
        }
    }

    /// A mark names this ledger's size. An attestation names this ledger's size or the latest
    /// mark's. Its digest of the ledger's canonical encoding is checked by `replay::decide`, the
    /// one caller of `decide`, which sits above the encoder (the ledger cannot encode itself
    /// without an import cycle with `snapshot`) and keeps the digest of the state at a mark.
    fn decide_about_state(&self, action: &LedgerAction<'_>) -> Result<(), Refusal> {
        let named = match action {
            LedgerAction::AttestState(attestation) => {
                attestation.size == self.size || Some(attestation.size) == self.state_mark
            }
            LedgerAction::MarkState(mark) => mark.size == self.size,
        };
        if !named {
            return Err(Refusal::StateDigestMismatch);
        }
        Ok(())
    }

    /// Is `command`, in an entry of `kind` at `server_time`, fresh and its nonce unused? The part
    /// of `decide` that is cheap and knows nothing of the author's standing: the server asks it
    /// before charging the author's rate limits, so replayed or stale commands cost nobody.
    pub fn check_fresh_and_unseen(
        &self,
        kind: EntryKind,
        command: &Command,
        server_time: Timestamp,
    ) -> Result<(), Refusal> {
        self.replay.decide(kind, command, server_time)
    }

    /// Who may sign the entry: the author always; the server alone for system actions, and
    /// genesis only as the first entry.
    fn check_signer(
        &self,
        kind: EntryKind,
        signer: PublicKey,
        command: &Command,
    ) -> Result<(), Refusal> {
        if signer != command.author {
            return Err(Refusal::SignerIsNotAuthor);
        }
        let system = command.action.is_system();
        let genesis = matches!(command.action, Action::Genesis(_));
        match kind {
            // A client signing a system action is refused as such before anything else.
            EntryKind::Command if system => Err(Refusal::SystemOnly),
            EntryKind::System if genesis && self.size == 0 => Ok(()),
            EntryKind::Command | EntryKind::System if genesis => Err(Refusal::MisplacedGenesis),
            EntryKind::Command | EntryKind::System if self.keys.identity().is_none() => {
                Err(Refusal::MissingGenesis)
            }
            EntryKind::System if system && Some(signer) == self.server_key() => Ok(()),
            EntryKind::System => Err(Refusal::SystemOnly),
            EntryKind::Command => Ok(()),
        }
    }

    /// Every system event the server owes at `now`: poll closes (with their final tallies), SLA
    /// breaches, silent closes of resolved complaints and proposal expiries; polls first, then
    /// complaints, then proposals, each by id. Read from the deadline index, so it costs what is
    /// due, not what is open.
    pub fn due_system_actions(&self, now: Timestamp) -> Vec<Action> {
        let mut subjects: Vec<deadlines::Subject> = self.deadlines.due(now).collect();
        subjects.sort_unstable_by_key(|(kind, id)| (kind.aggregate_order(), *id));
        let checkpoint = self.checkpoint_reference();
        subjects
            .into_iter()
            .map(|subject| self.due_action(subject, now, &checkpoint))
            .collect()
    }

    /// Whether any system event is due at `now`, without building it.
    pub fn has_due_system_actions(&self, now: Timestamp) -> bool {
        self.deadlines.due(now).next().is_some()
    }

    /// System events pending, due or not: what the deadline index holds.
    pub fn pending_system_actions(&self) -> usize {
        self.deadlines.len()
    }

    /// The action the index lists as due; the aggregate's own rule must agree.
    fn due_action(
        &self,
        (kind, id): deadlines::Subject,
        now: Timestamp,
        checkpoint: &CheckpointReference,
    ) -> Action {
        let action = match kind {
            deadlines::DueEvent::ClosePoll => self.polls.close_action(id, now, checkpoint),
            deadlines::DueEvent::BreachSla => self.complaints.breach_action(id, now),
            deadlines::DueEvent::CloseUnconfirmed => self.complaints.silence_action(id, now),
            deadlines::DueEvent::ExpireProposal => self.proposals.expiry_action(id, now),
        };
        action.unwrap_or_else(|| {
            unreachable!("the deadline index lists {kind:?} of {id} as due at {now:?}, but its rules say it is not")
        })
    }

    /// The deadline index as the state gives it, built afresh.
    pub(crate) fn deadlines_rebuilt(&self) -> deadlines::Deadlines {
        deadlines::Deadlines::of(&self.polls, &self.complaints, &self.proposals)
    }

    /// Rebuilds the deadline index from the state, as decoding a snapshot must.
    pub(crate) fn rebuild_deadlines(&mut self) {
        self.deadlines = self.deadlines_rebuilt();
    }

    /// Refreshes the deadline index for whatever `event` changed: the poll it opened or closed,
    /// the complaint or proposal it moved. Ballots, keys and the catalogue change no deadline.
    fn refresh_deadlines(&mut self, event: &Event) {
        match changed_by(&address(&event.command.action), event.position) {
            Changed::Nothing => {}
            Changed::Poll(id) => self.deadlines.refresh_poll(self.polls.found(id, "poll")),
            Changed::Complaints(ids) => {
                for id in ids.into_iter().flatten() {
                    let complaint = self.complaints.found(id, "complaint");
                    self.deadlines.refresh_complaint(complaint);
                }
            }
            Changed::Proposal(id) => {
                let proposal = self.proposals.found(id, "proposal");
                self.deadlines.refresh_proposal(proposal);
            }
        }
    }

    /// Folds one event in. The caller has decided it (the writer) or is replaying a log whose
    /// entries it decides as it goes (the verifier); `evolve` itself trusts its input, and
    /// asserts what `decide` guaranteed.
    pub fn evolve(&mut self, event: &Event) {
        self.replay.evolve(event);
        let catalogue = &self.categories;
        match address(&event.command.action) {
            Addressed::Keys(action) => self.keys.evolve(action, event),
            Addressed::Catalogue(action) => self.categories.evolve(action, event),
            Addressed::Polls(action) => self.polls.evolve(action, event, &self.keys),
            Addressed::Complaints(action) => {
                self.complaints.evolve(action, event, catalogue);
                if let Some(redaction) = spam_redaction(&event.command.action) {
                    self.erasures.evolve(redaction, event);
                }
            }
            Addressed::Proposals(action) => {
                let reads = ProposalReads {
                    keys: &self.keys,
                    catalogue,
                };
                self.proposals.evolve(action, event, reads)
            }
            // A mark or an attestation changes no number: it only states what was. An
            // attestation of either form ends the pending mark.
            Addressed::Ledger(LedgerAction::AttestState(_)) => self.state_mark = None,
            Addressed::Ledger(LedgerAction::MarkState(_)) => self.state_mark = Some(event.position),
            Addressed::Erasures(action) => self.erasures.evolve(action, event),
        }
        self.refresh_deadlines(event);
        self.erasures.record(event);
        self.size = arithmetic::increment(event.position, "the log size");
        self.head_hash = event.hash;
        self.merkle.push(event.leaf_hash);
        self.last_server_time = event.server_time;
    }
}
