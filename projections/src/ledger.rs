//! The state every decision and every published number comes from, with its two pure functions:
//! `decide` (may this command be appended now?) and `evolve` (fold one appended event in).
//!
//! The server runs `decide` before appending and the verifier runs it again on replay, so an
//! entry the server should have refused is caught by anyone who replays the log.

use std::collections::{BTreeMap, BTreeSet};

use sha2::Digest;

use crate::command::CheckpointReference;
use crate::command::{
    Action, Attestation, Audience, CastBallot, CategoryDefinition, ChoiceKind, ClosePoll, Command,
    Genesis, PollDefinition, Role, RoleChange, Tally,
};
use crate::complaints::Complaint;
use crate::keyed_map::KeyedMap;
use crate::limits;
use crate::merkle::Frontier;
use crate::proposals::Proposal;
use crate::protocol::{EntryKind, Hash, PublicKey, GENESIS_PREVIOUS_HASH};
use crate::time::Timestamp;

pub mod snapshot;

/// Why a command may not be appended. Each variant is a stable, documented problem type.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum Refusal {
    #[error("the command was issued too long ago; sign a fresh one")]
    StaleCommand,
    #[error("the command's issue time is too far in the future")]
    FutureCommand,
    #[error("this author already used this nonce")]
    ReplayedNonce,
    #[error("the key is weak (small order) and can never be registered")]
    WeakKey,
    #[error("the key is already registered")]
    KeyAlreadyRegistered,
    #[error("the key is not registered")]
    KeyNotRegistered,
    #[error("only an admin key may do this")]
    NotAdmin,
    #[error("only an official may do this")]
    NotOfficial,
    #[error("only the server signs system events")]
    SystemOnly,
    #[error("the signer of the entry is not the author of the command")]
    SignerIsNotAuthor,
    #[error("invalid role change: {0}")]
    InvalidRoleChange(String),
    #[error("the key does not hold that role")]
    RoleNotHeld,
    #[error("the key already holds that role")]
    RoleAlreadyHeld,
    #[error("invalid poll: {0}")]
    InvalidPoll(String),
    #[error("no poll has that identifier")]
    UnknownPoll,
    #[error("the poll is not open yet")]
    PollNotOpenYet,
    #[error("the poll is closed")]
    PollClosed,
    #[error("the key is not eligible to vote in this poll")]
    NotEligible,
    #[error("the ballot chooses an option the poll does not have")]
    UnknownOption,
    #[error("the ballot chooses more options than the poll allows")]
    TooManyChoices,
    #[error("the ballot chooses the same option twice")]
    DuplicateChoice,
    #[error("the ballot chooses nothing")]
    EmptyBallot,
    #[error("a ballot was already cast and this poll does not allow changing it")]
    BallotAlreadyCast,
    #[error("genesis must be the first entry and only the first")]
    MisplacedGenesis,
    #[error("the log has no genesis entry")]
    MissingGenesis,
    #[error("the poll is already closed")]
    PollAlreadyClosed,
    #[error("the poll's closing time has not come")]
    PollNotDue,
    #[error("the close event's final tally differs from the recount")]
    FinalTallyMismatch,
    #[error("the close event's checkpoint is not the Merkle tree of the log before it")]
    CheckpointMismatch,
    #[error("only a moderator may do this")]
    NotModerator,
    #[error("only a registrar may do this")]
    NotRegistrar,
    #[error("only an official of the responsible department may do this")]
    NotResponsibleDepartment,
    #[error("only the author may do this")]
    NotAuthor,
    #[error("the catalogue has no such category")]
    UnknownCategory,
    #[error("invalid category: {0}")]
    InvalidCategory(String),
    #[error("invalid attestation: {0}")]
    InvalidAttestation(String),
    #[error("invalid complaint: {0}")]
    InvalidComplaint(String),
    #[error("no complaint has that identifier")]
    UnknownComplaint,
    #[error("{action} is not allowed while the item is {status}")]
    TransitionNotAllowed {
        action: &'static str,
        status: &'static str,
    },
    #[error("the window to confirm or dispute this resolution has closed")]
    ConfirmationWindowClosed,
    #[error("invalid proposal: {0}")]
    InvalidProposal(String),
    #[error("no proposal has that identifier")]
    UnknownProposal,
    #[error("this key already supports the proposal")]
    AlreadySupported,
    #[error("this key does not support the proposal")]
    NotSupported,
    #[error("the proposal reached its threshold; supports can no longer be withdrawn")]
    ThresholdReached,
    #[error("the system event is not due")]
    EventNotDue,
}

impl Refusal {
    /// The stable identifier used in problem types and documentation.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::StaleCommand => "stale-command",
            Refusal::FutureCommand => "future-command",
            Refusal::ReplayedNonce => "replayed-nonce",
            Refusal::WeakKey => "weak-key",
            Refusal::KeyAlreadyRegistered => "key-already-registered",
            Refusal::KeyNotRegistered => "key-not-registered",
            Refusal::NotAdmin => "not-admin",
            Refusal::NotOfficial => "not-official",
            Refusal::SystemOnly => "system-only",
            Refusal::SignerIsNotAuthor => "signer-is-not-author",
            Refusal::InvalidRoleChange(_) => "invalid-role-change",
            Refusal::RoleNotHeld => "role-not-held",
            Refusal::RoleAlreadyHeld => "role-already-held",
            Refusal::InvalidPoll(_) => "invalid-poll",
            Refusal::UnknownPoll => "unknown-poll",
            Refusal::PollNotOpenYet => "poll-not-open-yet",
            Refusal::PollClosed => "poll-closed",
            Refusal::NotEligible => "not-eligible",
            Refusal::UnknownOption => "unknown-option",
            Refusal::TooManyChoices => "too-many-choices",
            Refusal::DuplicateChoice => "duplicate-choice",
            Refusal::EmptyBallot => "empty-ballot",
            Refusal::BallotAlreadyCast => "ballot-already-cast",
            Refusal::MisplacedGenesis => "misplaced-genesis",
            Refusal::MissingGenesis => "missing-genesis",
            Refusal::PollAlreadyClosed => "poll-already-closed",
            Refusal::PollNotDue => "poll-not-due",
            Refusal::FinalTallyMismatch => "final-tally-mismatch",
            Refusal::CheckpointMismatch => "checkpoint-mismatch",
            Refusal::NotModerator => "not-moderator",
            Refusal::NotRegistrar => "not-registrar",
            Refusal::NotResponsibleDepartment => "not-responsible-department",
            Refusal::NotAuthor => "not-author",
            Refusal::UnknownCategory => "unknown-category",
            Refusal::InvalidCategory(_) => "invalid-category",
            Refusal::InvalidAttestation(_) => "invalid-attestation",
            Refusal::InvalidComplaint(_) => "invalid-complaint",
            Refusal::UnknownComplaint => "unknown-complaint",
            Refusal::TransitionNotAllowed { .. } => "transition-not-allowed",
            Refusal::ConfirmationWindowClosed => "confirmation-window-closed",
            Refusal::InvalidProposal(_) => "invalid-proposal",
            Refusal::UnknownProposal => "unknown-proposal",
            Refusal::AlreadySupported => "already-supported",
            Refusal::NotSupported => "not-supported",
            Refusal::ThresholdReached => "threshold-reached",
            Refusal::EventNotDue => "event-not-due",
        }
    }
}

/// One appended event: an entry's header facts plus its parsed payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub position: u64,
    pub server_time: Timestamp,
    pub kind: EntryKind,
    pub hash: Hash,
    /// The entry's leaf hash in the Merkle tree over the log.
    pub leaf_hash: Hash,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogIdentity {
    pub server_key: PublicKey,
    pub log_origin: String,
    pub admin_keys: BTreeSet<PublicKey>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub registered_at_position: u64,
    pub registered_at: Timestamp,
    /// Roles and attestation, boxed: most keys are citizens with neither, and a record without
    /// them takes 24 bytes instead of 72 (a million records in every ledger copy).
    standing: Option<Box<KeyStanding>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct KeyStanding {
    roles: BTreeMap<Role, Option<String>>,
    district: Option<String>,
    verified: bool,
}

static NO_ROLES: BTreeMap<Role, Option<String>> = BTreeMap::new();

impl KeyRecord {
    fn new(registered_at_position: u64, registered_at: Timestamp) -> KeyRecord {
        KeyRecord {
            registered_at_position,
            registered_at,
            standing: None,
        }
    }

    /// Roles held now; officials carry their department.
    pub fn roles(&self) -> &BTreeMap<Role, Option<String>> {
        self.standing
            .as_ref()
            .map_or(&NO_ROLES, |standing| &standing.roles)
    }

    /// The district a registrar attested, if any.
    pub fn district(&self) -> Option<&str> {
        self.standing
            .as_ref()
            .and_then(|standing| standing.district.as_deref())
    }

    /// Whether a registrar attested the holder as a verified resident.
    pub fn verified(&self) -> bool {
        self.standing
            .as_ref()
            .is_some_and(|standing| standing.verified)
    }

    fn standing_mut(&mut self) -> &mut KeyStanding {
        self.standing.get_or_insert_with(Box::default)
    }
}

/// A catalogue entry: the version in force and how many versions came before.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CategoryRecord {
    pub current: CategoryDefinition,
    /// 1 for the first definition, then one more per redefinition.
    pub version: u32,
    pub defined_at_position: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PollStatus {
    /// Opened in the log, not yet accepting ballots.
    Scheduled,
    /// Accepting ballots.
    Open,
    /// Past `closes_at`; the server has not yet appended the close event.
    Closing,
    /// The close event is in the log.
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClosedPoll {
    pub position: u64,
    pub server_time: Timestamp,
    /// The log state the close event pins (every entry before it).
    pub checkpoint: CheckpointReference,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Poll {
    pub id: u64,
    pub author: PublicKey,
    pub opened_at: Timestamp,
    pub definition: PollDefinition,
    /// Each voter's counted ballot, keyed by the voter key's registration position (see
    /// `Ledger::ballot` to look one up by key). Public: ballots are pseudonymous, anyone can
    /// recount. A position and a choice set take 16 bytes a ballot where a key and a vector took
    /// about 110: with millions of ballots this map is most of a node's memory. Snapshots pack
    /// it apart from the rest (see `snapshot`).
    #[serde(skip)]
    pub ballots: KeyedMap<u64, ChoiceSet>,
    pub tally: Tally,
    pub closed: Option<ClosedPoll>,
}

impl Poll {
    pub fn status(&self, now: Timestamp) -> PollStatus {
        if self.closed.is_some() {
            PollStatus::Closed
        } else if now < self.definition.opens_at {
            PollStatus::Scheduled
        } else if now < self.definition.closes_at {
            PollStatus::Open
        } else {
            PollStatus::Closing
        }
    }

    /// Indices of the options with the most counted choices; several on a tie, none when no
    /// ballot was counted.
    pub fn leading_options(&self) -> Vec<u32> {
        let most = self.tally.counts.iter().copied().max().unwrap_or(0);
        if most == 0 {
            return Vec::new();
        }
        (0..self.tally.counts.len())
            .filter(|&index| self.tally.counts[index] == most)
            .filter_map(|index| u32::try_from(index).ok())
            .collect()
    }
}

/// The options one ballot chose, as a set: bit `i` is option `i`. A poll has at most
/// `limits::POLL_OPTIONS_MAX` (64) options and `decide` refuses repeated choices, so a set holds
/// every counted ballot exactly; the order the voter listed them in stays in the signed command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChoiceSet(u64);

impl ChoiceSet {
    /// The set of `choices`; indices beyond the 64th cannot be counted and are left out.
    pub fn of(choices: &[u32]) -> ChoiceSet {
        ChoiceSet(
            choices
                .iter()
                .filter_map(|&choice| 1u64.checked_shl(choice))
                .fold(0, |set, bit| set | bit),
        )
    }

    /// The chosen option indices, ascending.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..64u32).filter(move |&index| self.0 & (1 << index) != 0)
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

const _: () = assert!(
    limits::POLL_OPTIONS_MAX <= 64,
    "a ChoiceSet holds 64 options"
);

/// Nonces seen inside the freshness window. Older ones need not be kept: a command that old is
/// refused as stale before its nonce is looked at.
///
/// Each (author, nonce) pair is kept as the first 16 bytes of its SHA-256, not as a key and a
/// string: the window holds every command of the last minutes, which at ingest rates is millions
/// of pairs, and the digest cuts the memory for each from about 180 bytes to about 60. Two pairs
/// share a digest with probability about n^2 / 2^129 (n pairs in the window), and making another
/// author's pair collide with one's own is a 128-bit second-preimage search, so a refusal for a
/// reused nonce is still only ever earned by the author.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NonceWindow {
    seen: KeyedMap<NonceDigest, ()>,
    by_issue_time: BTreeSet<(Timestamp, NonceDigest)>,
}

type NonceDigest = [u8; 16];

fn nonce_digest(author: PublicKey, nonce: &str) -> NonceDigest {
    let digest = sha2::Sha256::new()
        .chain_update(author.0)
        .chain_update(nonce.as_bytes())
        .finalize();
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&digest[..16]);
    prefix
}

impl NonceWindow {
    fn contains(&self, author: PublicKey, nonce: &str) -> bool {
        self.seen.contains_key(&nonce_digest(author, nonce))
    }

    fn insert(&mut self, author: PublicKey, nonce: &str, issued_at: Timestamp) {
        let digest = nonce_digest(author, nonce);
        if self.seen.insert(digest, ()).is_none() {
            self.by_issue_time.insert((issued_at, digest));
        }
    }

    fn forget_before(&mut self, horizon: Timestamp) {
        while let Some(oldest) = self.by_issue_time.first() {
            if oldest.0 >= horizon {
                break;
            }
            if let Some((_, digest)) = self.by_issue_time.pop_first() {
                self.seen.remove(&digest);
            }
        }
    }
}

/// Everything the log says so far.
/// Serialised (as JSON, by `snapshot`) without its three large collections, which snapshots pack
/// in a compact binary form of their own.
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    pub identity: Option<LogIdentity>,
    /// Every registered key. A hash map: only ever looked up by key, and with a million citizens
    /// it takes about half the memory of an ordered map; walked only in key order.
    #[serde(skip)]
    pub keys: KeyedMap<PublicKey, KeyRecord>,
    pub polls: BTreeMap<u64, Poll>,
    pub categories: BTreeMap<String, CategoryRecord>,
    pub complaints: BTreeMap<u64, Complaint>,
    pub proposals: BTreeMap<u64, Proposal>,
    #[serde(skip)]
    nonces: NonceWindow,
    /// Entries folded in so far; the next position.
    pub size: u64,
    /// Hash of the last entry, or zeros before the first.
    pub head_hash: Hash,
    pub last_server_time: Timestamp,
    /// The right edge of the Merkle tree over the log: O(log n) hashes.
    pub merkle: Frontier,
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

    pub fn server_key(&self) -> Option<PublicKey> {
        self.identity.as_ref().map(|identity| identity.server_key)
    }

    pub fn is_admin(&self, key: PublicKey) -> bool {
        self.identity
            .as_ref()
            .is_some_and(|identity| identity.admin_keys.contains(&key))
    }

    pub fn holds_role(&self, key: PublicKey, role: Role) -> bool {
        self.keys
            .get(&key)
            .is_some_and(|record| record.roles().contains_key(&role))
    }

    pub fn is_official_of(&self, key: PublicKey, department: &str) -> bool {
        self.keys.get(&key).is_some_and(|record| {
            record
                .roles()
                .get(&Role::Official)
                .is_some_and(|held| held.as_deref() == Some(department))
        })
    }

    pub fn category(&self, id: &str) -> Result<&CategoryRecord, Refusal> {
        self.categories.get(id).ok_or(Refusal::UnknownCategory)
    }

    /// Decides whether `command`, signed by `signer` in an entry of `kind`, may be appended at
    /// the next position with server time `server_time`.
    pub fn decide(
        &self,
        kind: EntryKind,
        signer: PublicKey,
        command: &Command,
        server_time: Timestamp,
    ) -> Result<(), Refusal> {
        self.check_signer(kind, signer, command)?;
        if kind == EntryKind::Command {
            if command.issued_at < server_time.plus_milliseconds(-limits::COMMAND_AGE_MS_MAX) {
                return Err(Refusal::StaleCommand);
            }
            if command.issued_at > server_time.plus_milliseconds(limits::COMMAND_FUTURE_MS_MAX) {
                return Err(Refusal::FutureCommand);
            }
        }
        if self.nonces.contains(command.author, &command.nonce) {
            return Err(Refusal::ReplayedNonce);
        }
        match &command.action {
            Action::Genesis(genesis) => decide_genesis(genesis),
            Action::RegisterKey(_) => {
                if command.author.is_weak() {
                    Err(Refusal::WeakKey)
                } else if self.keys.contains_key(&command.author) {
                    Err(Refusal::KeyAlreadyRegistered)
                } else {
                    Ok(())
                }
            }
            Action::GrantRole(change) => self.decide_role_change(command.author, change, true),
            Action::RevokeRole(change) => self.decide_role_change(command.author, change, false),
            Action::OpenPoll(definition) => {
                if !self.holds_role(command.author, Role::Official) {
                    return Err(Refusal::NotOfficial);
                }
                check_poll_definition(definition, server_time)
            }
            Action::CastBallot(ballot) => self.decide_ballot(command.author, ballot, server_time),
            Action::ClosePoll(close) => self.decide_close(close, server_time),
            Action::AttestResident(attestation) => {
                self.decide_attestation(command.author, attestation)
            }
            Action::DefineCategory(definition) => {
                if !self.is_admin(command.author) {
                    return Err(Refusal::NotAdmin);
                }
                check_category(definition)
            }
            // Listed one by one so that a new action cannot slip through without rules.
            complaint @ (Action::FileComplaint(_)
            | Action::TriageComplaint(_)
            | Action::MergeComplaint(_)
            | Action::SupplementComplaint(_)
            | Action::StartWork(_)
            | Action::ResolveComplaint(_)
            | Action::CannotResolve(_)
            | Action::ConfirmResolution(_)
            | Action::DisputeResolution(_)
            | Action::BreachSla(_)
            | Action::CloseUnconfirmed(_)) => self
                .decide_complaint(command.author, complaint, server_time)
                .unwrap_or(Err(Refusal::SystemOnly)),
            proposal @ (Action::SubmitProposal(_)
            | Action::ModerateProposal(_)
            | Action::SupportProposal(_)
            | Action::WithdrawSupport(_)
            | Action::AnswerProposal(_)
            | Action::WithdrawProposal(_)
            | Action::ExpireProposal(_)) => self
                .decide_proposal(command.author, proposal, server_time)
                .unwrap_or(Err(Refusal::SystemOnly)),
        }
    }

    fn check_signer(
        &self,
        kind: EntryKind,
        signer: PublicKey,
        command: &Command,
    ) -> Result<(), Refusal> {
        if signer != command.author {
            return Err(Refusal::SignerIsNotAuthor);
        }
        match (&command.action, kind) {
            // A client signing a system action is refused as such before anything else.
            (action, EntryKind::Command) if action.is_system() => Err(Refusal::SystemOnly),
            (Action::Genesis(_), EntryKind::System) if self.size == 0 => Ok(()),
            (Action::Genesis(_), _) => Err(Refusal::MisplacedGenesis),
            (_, _) if self.identity.is_none() => Err(Refusal::MissingGenesis),
            (action, EntryKind::System) if action.is_system() => {
                if Some(signer) == self.server_key() {
                    Ok(())
                } else {
                    Err(Refusal::SystemOnly)
                }
            }
            (action, EntryKind::Command) if !action.is_system() => Ok(()),
            _ => Err(Refusal::SystemOnly),
        }
    }

    fn decide_role_change(
        &self,
        author: PublicKey,
        change: &RoleChange,
        grant: bool,
    ) -> Result<(), Refusal> {
        if !self.is_admin(author) {
            return Err(Refusal::NotAdmin);
        }
        let Some(record) = self.keys.get(&change.subject) else {
            return Err(Refusal::KeyNotRegistered);
        };
        match (change.role, &change.department) {
            (Role::Official, None) if grant => {
                return Err(Refusal::InvalidRoleChange(
                    "an official needs a department".into(),
                ))
            }
            (Role::Official, Some(department))
                if department.trim().is_empty()
                    || department.chars().count() > limits::DEPARTMENT_CHARS_MAX =>
            {
                return Err(Refusal::InvalidRoleChange(format!(
                    "a department name has 1 to {} characters",
                    limits::DEPARTMENT_CHARS_MAX
                )))
            }
            (Role::Moderator | Role::Registrar, Some(_)) => {
                return Err(Refusal::InvalidRoleChange(
                    "only officials belong to a department".into(),
                ))
            }
            _ => {}
        }
        let held = record.roles().contains_key(&change.role);
        match (grant, held) {
            (true, true) => Err(Refusal::RoleAlreadyHeld),
            (false, false) => Err(Refusal::RoleNotHeld),
            _ => Ok(()),
        }
    }

    fn decide_attestation(
        &self,
        author: PublicKey,
        attestation: &Attestation,
    ) -> Result<(), Refusal> {
        if !self.holds_role(author, Role::Registrar) {
            return Err(Refusal::NotRegistrar);
        }
        if !self.keys.contains_key(&attestation.subject) {
            return Err(Refusal::KeyNotRegistered);
        }
        if let Some(district) = &attestation.district {
            if district.trim().is_empty() || district.chars().count() > limits::DISTRICT_CHARS_MAX {
                return Err(Refusal::InvalidAttestation(format!(
                    "a district has 1 to {} characters",
                    limits::DISTRICT_CHARS_MAX
                )));
            }
        }
        Ok(())
    }

    /// Whether `voter` belongs to `audience` now.
    pub fn in_audience(&self, voter: PublicKey, audience: &Audience) -> bool {
        let Some(record) = self.keys.get(&voter) else {
            return false;
        };
        match audience {
            Audience::Everyone => true,
            Audience::Verified => record.verified(),
            Audience::Districts { districts } => {
                record.verified()
                    && record
                        .district()
                        .is_some_and(|district| districts.iter().any(|listed| listed == district))
            }
        }
    }

    fn decide_ballot(
        &self,
        voter: PublicKey,
        ballot: &CastBallot,
        server_time: Timestamp,
    ) -> Result<(), Refusal> {
        let poll = self.polls.get(&ballot.poll).ok_or(Refusal::UnknownPoll)?;
        match poll.status(server_time) {
            PollStatus::Scheduled => return Err(Refusal::PollNotOpenYet),
            PollStatus::Closing | PollStatus::Closed => return Err(Refusal::PollClosed),
            PollStatus::Open => {}
        }
        if !self.in_audience(voter, &poll.definition.audience) {
            return Err(Refusal::NotEligible);
        }
        if ballot.choices.is_empty() {
            return Err(Refusal::EmptyBallot);
        }
        let option_count = poll.definition.options.len();
        if ballot
            .choices
            .iter()
            .any(|&choice| choice as usize >= option_count)
        {
            return Err(Refusal::UnknownOption);
        }
        if ballot.choices.len() > poll.definition.max_choices as usize {
            return Err(Refusal::TooManyChoices);
        }
        let distinct: BTreeSet<u32> = ballot.choices.iter().copied().collect();
        if distinct.len() != ballot.choices.len() {
            return Err(Refusal::DuplicateChoice);
        }
        if self.ballot(poll, voter).is_some() && !poll.definition.vote_changes_allowed {
            return Err(Refusal::BallotAlreadyCast);
        }
        Ok(())
    }

    fn decide_close(&self, close: &ClosePoll, server_time: Timestamp) -> Result<(), Refusal> {
        let poll = self.polls.get(&close.poll).ok_or(Refusal::UnknownPoll)?;
        if poll.closed.is_some() {
            return Err(Refusal::PollAlreadyClosed);
        }
        if server_time < poll.definition.closes_at {
            return Err(Refusal::PollNotDue);
        }
        if close.final_tally != poll.tally {
            return Err(Refusal::FinalTallyMismatch);
        }
        if close.checkpoint != self.checkpoint_reference() {
            return Err(Refusal::CheckpointMismatch);
        }
        Ok(())
    }

    /// The ballot `voter` has counted in `poll`, if any.
    pub fn ballot(&self, poll: &Poll, voter: PublicKey) -> Option<ChoiceSet> {
        let record = self.keys.get(&voter)?;
        poll.ballots.get(&record.registered_at_position).copied()
    }

    /// Polls whose closing time has come by `now` and whose close event is not yet appended.
    pub fn polls_due_to_close(&self, now: Timestamp) -> Vec<u64> {
        self.polls
            .values()
            .filter(|poll| poll.status(now) == PollStatus::Closing)
            .map(|poll| poll.id)
            .collect()
    }

    /// Every system event the server owes at `now`: poll closes (with their final tallies), SLA
    /// breaches, silent closes of resolved complaints and proposal expiries.
    pub fn due_system_actions(&self, now: Timestamp) -> Vec<Action> {
        let mut due: Vec<Action> = self
            .polls_due_to_close(now)
            .into_iter()
            .filter_map(|id| self.polls.get(&id))
            .map(|poll| {
                Action::ClosePoll(ClosePoll {
                    poll: poll.id,
                    final_tally: poll.tally.clone(),
                    checkpoint: self.checkpoint_reference(),
                })
            })
            .collect();
        self.due_complaint_actions(now, &mut due);
        self.due_proposal_actions(now, &mut due);
        due
    }

    /// Folds one event in. The caller has decided it (the writer) or is replaying a log whose
    /// entries it decides as it goes (the verifier); `evolve` itself trusts its input.
    pub fn evolve(&mut self, event: &Event) {
        let command = &event.command;
        self.nonces
            .insert(command.author, &command.nonce, command.issued_at);
        self.nonces.forget_before(
            event
                .server_time
                .plus_milliseconds(-limits::COMMAND_AGE_MS_MAX),
        );
        match &command.action {
            Action::Genesis(genesis) => {
                self.identity = Some(LogIdentity {
                    server_key: command.author,
                    log_origin: genesis.log_origin.clone(),
                    admin_keys: genesis.admin_keys.iter().copied().collect(),
                });
            }
            Action::RegisterKey(_) => {
                self.keys.insert(
                    command.author,
                    KeyRecord::new(event.position, event.server_time),
                );
            }
            Action::GrantRole(change) => {
                if let Some(record) = self.keys.get_mut(&change.subject) {
                    record
                        .standing_mut()
                        .roles
                        .insert(change.role, change.department.clone());
                }
            }
            Action::RevokeRole(change) => {
                if let Some(record) = self.keys.get_mut(&change.subject) {
                    record.standing_mut().roles.remove(&change.role);
                }
            }
            Action::OpenPoll(definition) => {
                self.polls.insert(
                    event.position,
                    Poll {
                        id: event.position,
                        author: command.author,
                        opened_at: event.server_time,
                        definition: definition.clone(),
                        ballots: KeyedMap::new(),
                        tally: Tally {
                            counts: vec![0; definition.options.len()],
                            ..Tally::default()
                        },
                        closed: None,
                    },
                );
            }
            Action::CastBallot(ballot) => {
                // `decide` refused ballots from unregistered keys, so the voter has a position.
                let voter = self
                    .keys
                    .get(&command.author)
                    .map(|record| record.registered_at_position);
                if let (Some(poll), Some(voter)) = (self.polls.get_mut(&ballot.poll), voter) {
                    count_ballot(poll, voter, &ballot.choices);
                }
            }
            Action::ClosePoll(close) => {
                if let Some(poll) = self.polls.get_mut(&close.poll) {
                    poll.closed = Some(ClosedPoll {
                        position: event.position,
                        server_time: event.server_time,
                        checkpoint: close.checkpoint.clone(),
                    });
                }
            }
            Action::AttestResident(attestation) => {
                if let Some(record) = self.keys.get_mut(&attestation.subject) {
                    let standing = record.standing_mut();
                    standing.district = attestation.district.clone();
                    standing.verified = attestation.verified;
                }
            }
            Action::DefineCategory(definition) => {
                let version = self.categories.get(&definition.id).map_or(1, |record| {
                    record.version.checked_add(1).unwrap_or_else(|| {
                        unreachable!("category {} redefined 2^32 times", definition.id)
                    })
                });
                self.categories.insert(
                    definition.id.clone(),
                    CategoryRecord {
                        current: definition.clone(),
                        version,
                        defined_at_position: event.position,
                    },
                );
            }
            _ => {
                let _ = self.evolve_complaint(event) || self.evolve_proposal(event);
            }
        }
        self.size = increment(event.position, "the log size");
        self.head_hash = event.hash;
        self.merkle.push(event.leaf_hash);
        self.last_server_time = event.server_time;
    }
}

fn count_ballot(poll: &mut Poll, voter: u64, choices: &[u32]) {
    let id = poll.id;
    if let Some(previous) = poll.ballots.insert(voter, ChoiceSet::of(choices)) {
        for choice in previous.iter() {
            let count = option_count_mut(poll, choice);
            // The superseded ballot was counted when it was cast, so its options hold at least one.
            *count = count.checked_sub(1).unwrap_or_else(|| {
                unreachable!("poll {id}: voter {voter}'s superseded choice was never counted")
            });
        }
        poll.tally.superseded_ballots = increment(poll.tally.superseded_ballots, "superseded");
    } else {
        poll.tally.turnout = increment(poll.tally.turnout, "turnout");
    }
    for &choice in choices {
        let count = option_count_mut(poll, choice);
        *count = increment(*count, "an option's count");
    }
}

/// The count of option `choice`, which `decide` checked the poll has.
fn option_count_mut(poll: &mut Poll, choice: u32) -> &mut u64 {
    let id = poll.id;
    match poll.tally.counts.get_mut(choice as usize) {
        Some(count) => count,
        None => unreachable!("poll {id}: a counted choice {choice} is not one of its options"),
    }
}

/// One more: a count of events in a log cannot pass `u64::MAX`, so an overflow is a fold bug.
fn increment(count: u64, what: &str) -> u64 {
    match count.checked_add(1) {
        Some(next) => next,
        None => unreachable!("{what} overflowed u64"),
    }
}

fn check_category(definition: &CategoryDefinition) -> Result<(), Refusal> {
    let invalid = |reason: String| Err(Refusal::InvalidCategory(reason));
    let id_ok = !definition.id.is_empty()
        && definition.id.len() <= limits::CATEGORY_ID_CHARS_MAX
        && definition
            .id
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'-'));
    if !id_ok {
        return invalid(format!(
            "an id has 1 to {} lowercase letters, digits and hyphens",
            limits::CATEGORY_ID_CHARS_MAX
        ));
    }
    if definition.name.trim().is_empty()
        || definition.name.chars().count() > limits::CATEGORY_NAME_CHARS_MAX
    {
        return invalid(format!(
            "a name has 1 to {} characters",
            limits::CATEGORY_NAME_CHARS_MAX
        ));
    }
    if definition.department.trim().is_empty()
        || definition.department.chars().count() > limits::DEPARTMENT_CHARS_MAX
    {
        return invalid(format!(
            "a department has 1 to {} characters",
            limits::DEPARTMENT_CHARS_MAX
        ));
    }
    let days = [
        definition.sla_working_days,
        definition.confirmation_window_days,
        definition.proposal_lifetime_days,
    ];
    if days
        .iter()
        .any(|&days| days == 0 || days > limits::CATEGORY_DAYS_MAX)
    {
        return invalid(format!("day counts are 1 to {}", limits::CATEGORY_DAYS_MAX));
    }
    if definition.support_threshold == 0
        || definition.support_threshold > limits::SUPPORT_THRESHOLD_MAX
    {
        return invalid(format!(
            "a support threshold is 1 to {}",
            limits::SUPPORT_THRESHOLD_MAX
        ));
    }
    Ok(())
}

fn check_audience(audience: &Audience) -> Result<(), Refusal> {
    if let Audience::Districts { districts } = audience {
        if districts.is_empty() || districts.len() > limits::AUDIENCE_DISTRICTS_MAX {
            return Err(Refusal::InvalidPoll(format!(
                "a district audience lists 1 to {} districts",
                limits::AUDIENCE_DISTRICTS_MAX
            )));
        }
        if districts.iter().any(|district| {
            district.trim().is_empty() || district.chars().count() > limits::DISTRICT_CHARS_MAX
        }) {
            return Err(Refusal::InvalidPoll(format!(
                "a district has 1 to {} characters",
                limits::DISTRICT_CHARS_MAX
            )));
        }
    }
    Ok(())
}

fn decide_genesis(genesis: &Genesis) -> Result<(), Refusal> {
    if genesis.admin_keys.is_empty() || genesis.admin_keys.iter().any(|key| key.is_weak()) {
        return Err(Refusal::WeakKey);
    }
    Ok(())
}

fn check_poll_definition(
    definition: &PollDefinition,
    server_time: Timestamp,
) -> Result<(), Refusal> {
    let invalid = |reason: String| Err(Refusal::InvalidPoll(reason));
    let title_chars = definition.title.trim().chars().count();
    if title_chars == 0 || definition.title.chars().count() > limits::POLL_TITLE_CHARS_MAX {
        return invalid(format!(
            "a title has 1 to {} characters",
            limits::POLL_TITLE_CHARS_MAX
        ));
    }
    if definition.description.chars().count() > limits::POLL_DESCRIPTION_CHARS_MAX {
        return invalid(format!(
            "a description has at most {} characters",
            limits::POLL_DESCRIPTION_CHARS_MAX
        ));
    }
    let option_count = definition.options.len();
    if !(limits::POLL_OPTIONS_MIN..=limits::POLL_OPTIONS_MAX).contains(&option_count) {
        return invalid(format!(
            "a poll has {} to {} options",
            limits::POLL_OPTIONS_MIN,
            limits::POLL_OPTIONS_MAX
        ));
    }
    if definition.options.iter().any(|option| {
        option.trim().is_empty() || option.chars().count() > limits::POLL_OPTION_CHARS_MAX
    }) {
        return invalid(format!(
            "an option has 1 to {} characters",
            limits::POLL_OPTION_CHARS_MAX
        ));
    }
    let distinct: BTreeSet<&str> = definition
        .options
        .iter()
        .map(|option| option.trim())
        .collect();
    if distinct.len() != option_count {
        return invalid("options must differ from each other".into());
    }
    match definition.choice_kind {
        ChoiceKind::SingleChoice if definition.max_choices != 1 => {
            return invalid("a single-choice poll has max_choices 1".into())
        }
        ChoiceKind::MultipleChoice
            if definition.max_choices < 2 || definition.max_choices as usize > option_count =>
        {
            return invalid(
                "a multiple-choice poll has max_choices from 2 to its option count".into(),
            )
        }
        _ => {}
    }
    check_audience(&definition.audience)?;
    if definition.closes_at <= definition.opens_at {
        return invalid("closes_at must be after opens_at".into());
    }
    if definition.closes_at <= server_time {
        return invalid("closes_at must be in the future".into());
    }
    if definition.closes_at.0 - definition.opens_at.0 > limits::POLL_DURATION_MS_MAX {
        return invalid("a poll stays open at most 366 days".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_set_holds_every_option_index_a_poll_can_have_and_lists_them_ascending() {
        let set = ChoiceSet::of(&[63, 0, 5]);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 5, 63]);
        assert_eq!(set.len(), 3);
        assert!(ChoiceSet::of(&[]).is_empty());
        // Beyond the 64th option nothing can be counted; `decide` refuses such ballots first.
        assert_eq!(ChoiceSet::of(&[64, 2]), ChoiceSet::of(&[2]));
    }

    #[test]
    fn nonces_are_remembered_inside_the_window_and_forgotten_after_it() {
        let author = PublicKey([7; 32]);
        let other = PublicKey([8; 32]);
        let mut window = NonceWindow::default();
        window.insert(author, "00", Timestamp(1_000));
        window.insert(author, "01", Timestamp(2_000));
        assert!(window.contains(author, "00"));
        assert!(
            !window.contains(other, "00"),
            "a nonce belongs to its author"
        );
        window.forget_before(Timestamp(1_500));
        assert!(!window.contains(author, "00"));
        assert!(window.contains(author, "01"));
    }
}
