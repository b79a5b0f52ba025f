//! Polls: opening by an official, corrections by its author as public new versions, ballots
//! from the poll's audience (replaceable where the poll allows), and the server's close with the
//! final tally and the checkpoint it pins.
//!
//! Invariant: a poll's tally is exactly the count of its counted ballots, one per voter (the
//! latest where changes are allowed, none from before a correction that changed the options);
//! the close's final tally equals it and its checkpoint is the log before the close.

use std::collections::{BTreeMap, BTreeSet};

use super::arithmetic::{decrement, increment};
use super::event::Event;
use super::keys::Keys;
use super::refusal::Refusal;
use super::state::State;
use crate::command::{
    Action, AnonymousBallot, Audience, CastBallot, CheckpointReference, ChoiceKind, ClosePoll,
    CredentialRequest, PollCorrection, PollDefinition, Role, Tally,
};
use crate::keyed_map::KeyedMap;
use crate::limits;
use crate::protocol::PublicKey;
use crate::text::{self, check_field, Lines};
use crate::time::Timestamp;

pub mod anonymous;
pub mod corrections;

pub use anonymous::{CredentialCounts, IssuedRequest};
pub use corrections::{Correction, PollVersion};

/// The actions whose rules live here.
#[derive(Clone, Copy, Debug)]
pub enum PollAction<'a> {
    OpenPoll(&'a PollDefinition),
    CorrectPoll(&'a PollCorrection),
    CastBallot(&'a CastBallot),
    RequestCredentials(&'a CredentialRequest),
    CastAnonymousBallot(&'a AnonymousBallot),
    ClosePoll(&'a ClosePoll),
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
    /// `ballot_of` to look one up by key). Public: ballots are pseudonymous, anyone can
    /// recount. A position and a choice set take 16 bytes a ballot where a key and a vector took
    /// about 110: with millions of ballots this map is most of a node's memory. Snapshots pack
    /// it apart from the rest (see `snapshot`).
    #[serde(skip)]
    pub ballots: KeyedMap<u64, ChoiceSet>,
    pub tally: Tally,
    /// Voters counted in the tally, by the district their key was attested in when their
    /// first counted ballot went in (a vote change moves nothing; voters with no attested
    /// district are the rest of the turnout). Kept by the fold, so the board's turnout by
    /// district costs a read, not a pass over every resident. Signed ballots only: an
    /// anonymous poll's ballots name no voter (see `credentials`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub turnout_by_district: BTreeMap<String, u64>,
    pub closed: Option<ClosedPoll>,
    /// An anonymous poll's credentials issued and ballot keys counted; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialCounts>,
    /// The corrections in log order: correction `i` made version `i + 2` (see `versions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<Correction>,
}

impl Poll {
    fn opened(event: &Event, definition: &PollDefinition) -> Poll {
        Poll {
            id: event.position,
            author: event.command.author,
            opened_at: event.server_time,
            definition: definition.clone(),
            ballots: KeyedMap::new(),
            tally: Tally {
                counts: vec![0; definition.options.len()],
                ..Tally::default()
            },
            turnout_by_district: BTreeMap::new(),
            closed: None,
            credentials: definition
                .anonymous
                .as_ref()
                .map(CredentialCounts::for_poll),
            corrections: Vec::new(),
        }
    }

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
pub struct ChoiceSet(pub(super) u64);

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

/// The polls aggregate: polls by id (the position of their opening).
pub type Polls = State<BTreeMap<u64, Poll>>;

impl Polls {
    /// Write access for tests that play a forger: a key holder who signs a snapshot with a false
    /// tally, which only the audit's refold can catch. The fold never calls this.
    #[doc(hidden)]
    pub fn forge(&mut self) -> &mut BTreeMap<u64, Poll> {
        &mut self.0
    }

    /// May `author` do `action` at `at`? `checkpoint` gives the log state before the next entry,
    /// computed only for a close.
    pub fn decide(
        &self,
        action: PollAction<'_>,
        author: PublicKey,
        at: Timestamp,
        keys: &Keys,
        checkpoint: impl FnOnce() -> CheckpointReference,
    ) -> Result<(), Refusal> {
        match action {
            PollAction::OpenPoll(definition) => {
                if !keys.holds_role(author, Role::Official) {
                    return Err(Refusal::NotOfficial);
                }
                check_poll_definition(definition, at)
            }
            PollAction::CorrectPoll(correction) => {
                let poll = self.find(correction.poll, Refusal::UnknownPoll)?;
                corrections::decide(poll, author, correction, at)
            }
            PollAction::CastBallot(ballot) => self.decide_ballot(author, ballot, at, keys),
            PollAction::RequestCredentials(request) => {
                let poll = self.find(request.poll, Refusal::UnknownPoll)?;
                anonymous::decide_request(poll, author, request, at, keys)
            }
            PollAction::CastAnonymousBallot(ballot) => {
                let poll = self.find(ballot.poll, Refusal::UnknownPoll)?;
                anonymous::decide_ballot(poll, author, ballot, at)
            }
            PollAction::ClosePoll(close) => self.decide_close(close, at, checkpoint),
        }
    }

    fn decide_ballot(
        &self,
        voter: PublicKey,
        ballot: &CastBallot,
        at: Timestamp,
        keys: &Keys,
    ) -> Result<(), Refusal> {
        let poll = self.find(ballot.poll, Refusal::UnknownPoll)?;
        if poll.definition.anonymous.is_some() {
            return Err(Refusal::PollIsAnonymous);
        }
        match poll.status(at) {
            PollStatus::Scheduled => return Err(Refusal::PollNotOpenYet),
            PollStatus::Closing | PollStatus::Closed => return Err(Refusal::PollClosed),
            PollStatus::Open => {}
        }
        if !in_audience(keys, voter, &poll.definition.audience) {
            return Err(Refusal::NotEligible);
        }
        if ballot
            .version
            .is_some_and(|version| version != poll.version())
        {
            return Err(Refusal::StalePollVersion);
        }
        check_choices(poll, &ballot.choices)?;
        if ballot_of(keys, poll, voter).is_some() && !poll.definition.vote_changes_allowed {
            return Err(Refusal::BallotAlreadyCast);
        }
        Ok(())
    }

    fn decide_close(
        &self,
        close: &ClosePoll,
        at: Timestamp,
        checkpoint: impl FnOnce() -> CheckpointReference,
    ) -> Result<(), Refusal> {
        let poll = self.find(close.poll, Refusal::UnknownPoll)?;
        if poll.closed.is_some() {
            return Err(Refusal::PollAlreadyClosed);
        }
        if at < poll.definition.closes_at {
            return Err(Refusal::PollNotDue);
        }
        if close.final_tally != poll.tally {
            return Err(Refusal::FinalTallyMismatch);
        }
        if close.checkpoint != checkpoint() {
            return Err(Refusal::CheckpointMismatch);
        }
        Ok(())
    }

    /// Folds one decided event in.
    pub fn evolve(&mut self, action: PollAction<'_>, event: &Event, keys: &Keys) {
        match action {
            PollAction::OpenPoll(definition) => {
                let poll = Poll::opened(event, definition);
                self.0.insert(event.position, poll);
            }
            PollAction::CorrectPoll(correction) => {
                corrections::evolve(self.poll_mut(correction.poll), correction, event);
            }
            PollAction::CastBallot(ballot) => {
                let voter = match keys.voter_number(event.command.author) {
                    Some(number) => number,
                    None => {
                        unreachable!("a ballot in poll {} from an unregistered key", ballot.poll)
                    }
                };
                let district = keys
                    .get(&event.command.author)
                    .and_then(|record| record.district());
                let poll = self.poll_mut(ballot.poll);
                if count_ballot(poll, voter, &ballot.choices) == Counted::NewVoter {
                    if let Some(district) = district {
                        let count = poll
                            .turnout_by_district
                            .entry(district.to_string())
                            .or_insert(0);
                        *count = increment(*count, "a district's turnout");
                    }
                }
            }
            PollAction::RequestCredentials(request) => self.evolve_request(request, event, keys),
            PollAction::CastAnonymousBallot(ballot) => {
                let poll = self.poll_mut(ballot.poll);
                let author = event.command.author;
                let number = anonymous::ballot_number(poll, author, ballot, event.position);
                count_ballot(poll, number, &ballot.choices);
            }
            PollAction::ClosePoll(close) => {
                self.poll_mut(close.poll).closed = Some(ClosedPoll {
                    position: event.position,
                    server_time: event.server_time,
                    checkpoint: close.checkpoint.clone(),
                });
            }
        }
    }

    fn evolve_request(&mut self, request: &CredentialRequest, event: &Event, keys: &Keys) {
        let author = event.command.author;
        let Some(voter) = keys.voter_number(author) else {
            unreachable!(
                "a credential request in poll {} from an unregistered key",
                request.poll
            )
        };
        let poll = self.poll_mut(request.poll);
        let index = anonymous::requester_index(&poll.definition, keys, author);
        anonymous::count_request(poll, voter, index, event.position);
    }

    fn poll_mut(&mut self, id: u64) -> &mut Poll {
        self.found_mut(id, "poll")
    }

    /// The close event of poll `id` with its final tally and `checkpoint`, if it is owed at
    /// `now`: the closing time has come and the close is not yet in the log.
    pub fn close_action(
        &self,
        id: u64,
        now: Timestamp,
        checkpoint: &CheckpointReference,
    ) -> Option<Action> {
        let poll = self.0.get(&id)?;
        (poll.status(now) == PollStatus::Closing).then(|| {
            Action::ClosePoll(ClosePoll {
                poll: poll.id,
                final_tally: poll.tally.clone(),
                checkpoint: checkpoint.clone(),
            })
        })
    }
}

/// The ballot `voter` has counted in `poll`, if any: for an attested key, the ballot of its
/// resident, whichever of their keys cast it.
/// In an anonymous poll, `voter` is a per-poll ballot key.
pub fn ballot_of(keys: &Keys, poll: &Poll, voter: PublicKey) -> Option<ChoiceSet> {
    let number = match &poll.credentials {
        Some(counts) => *counts.ballot_keys.get(&voter)?,
        None => keys.voter_number(voter)?,
    };
    poll.ballots.get(&number).copied()
}

/// Whether `voter` belongs to `audience` now.
pub fn in_audience(keys: &Keys, voter: PublicKey, audience: &Audience) -> bool {
    let Some(record) = keys.get(&voter) else {
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

pub(super) fn check_choices(poll: &Poll, choices: &[u32]) -> Result<(), Refusal> {
    if choices.is_empty() {
        return Err(Refusal::EmptyBallot);
    }
    let option_count = poll.definition.options.len();
    if choices
        .iter()
        .any(|&choice| choice as usize >= option_count)
    {
        return Err(Refusal::UnknownOption);
    }
    if choices.len() > poll.definition.max_choices as usize {
        return Err(Refusal::TooManyChoices);
    }
    let distinct: BTreeSet<u32> = choices.iter().copied().collect();
    if distinct.len() != choices.len() {
        return Err(Refusal::DuplicateChoice);
    }
    Ok(())
}

/// Whether a counted ballot was its voter's first in the poll or replaced an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counted {
    NewVoter,
    Replaced,
}

fn count_ballot(poll: &mut Poll, voter: u64, choices: &[u32]) -> Counted {
    let counted = if let Some(previous) = poll.ballots.insert(voter, ChoiceSet::of(choices)) {
        for choice in previous.iter() {
            // The superseded ballot was counted when it was cast, so its options hold at least one.
            let count = option_count_mut(poll, choice);
            *count = decrement(*count, "a superseded choice's count");
        }
        poll.tally.superseded_ballots = increment(poll.tally.superseded_ballots, "superseded");
        Counted::Replaced
    } else {
        poll.tally.turnout = increment(poll.tally.turnout, "turnout");
        Counted::NewVoter
    };
    for &choice in choices {
        let count = option_count_mut(poll, choice);
        *count = increment(*count, "an option's count");
    }
    counted
}

/// The count of option `choice`, which `decide` checked the poll has.
fn option_count_mut(poll: &mut Poll, choice: u32) -> &mut u64 {
    let id = poll.id;
    match poll.tally.counts.get_mut(choice as usize) {
        Some(count) => count,
        None => unreachable!("poll {id}: a counted choice {choice} is not one of its options"),
    }
}

fn check_audience(audience: &Audience) -> Result<(), String> {
    if let Audience::Districts { districts } = audience {
        if districts.is_empty() || districts.len() > limits::AUDIENCE_DISTRICTS_MAX {
            return Err(format!(
                "a district audience lists 1 to {} districts",
                limits::AUDIENCE_DISTRICTS_MAX
            ));
        }
        for district in districts {
            check_field(
                "a district",
                district,
                Lines::One,
                limits::DISTRICT_CHARS_MAX,
            )?;
        }
    }
    Ok(())
}

fn check_poll_definition(
    definition: &PollDefinition,
    server_time: Timestamp,
) -> Result<(), Refusal> {
    check_poll_texts(definition)
        .and_then(|()| check_choice_kind(definition))
        .and_then(|()| check_audience(&definition.audience))
        .and_then(|()| anonymous::check_anonymity(definition))
        .and_then(|()| check_poll_times(definition, server_time))
        .map_err(Refusal::InvalidPoll)
}

/// The title, the description and the options: visible, undeceiving text, and options that
/// neither repeat nor look like each other.
fn check_poll_texts(definition: &PollDefinition) -> Result<(), String> {
    check_field(
        "a title",
        &definition.title,
        Lines::One,
        limits::POLL_TITLE_CHARS_MAX,
    )?;
    let description = &definition.description;
    if description.chars().count() > limits::POLL_DESCRIPTION_CHARS_MAX {
        return Err(format!(
            "a description has at most {} characters",
            limits::POLL_DESCRIPTION_CHARS_MAX
        ));
    }
    if !description.is_empty() {
        text::check(description, Lines::Many)
            .map_err(|problem| format!("a description {problem}"))?;
    }
    let options = &definition.options;
    if !(limits::POLL_OPTIONS_MIN..=limits::POLL_OPTIONS_MAX).contains(&options.len()) {
        return Err(format!(
            "a poll has {} to {} options",
            limits::POLL_OPTIONS_MIN,
            limits::POLL_OPTIONS_MAX
        ));
    }
    for option in options {
        check_field(
            "an option",
            option,
            Lines::One,
            limits::POLL_OPTION_CHARS_MAX,
        )?;
    }
    let distinct: BTreeSet<&str> = options.iter().map(|option| option.trim()).collect();
    if distinct.len() != options.len() {
        return Err("options must differ from each other".into());
    }
    match text::confusable_pair(options) {
        Some((first, second)) => Err(format!(
            "options {first} and {second} look alike (the same Unicode skeleton): voters could not tell them apart"
        )),
        None => Ok(()),
    }
}

fn check_choice_kind(definition: &PollDefinition) -> Result<(), String> {
    let option_count = definition.options.len();
    match definition.choice_kind {
        ChoiceKind::SingleChoice if definition.max_choices != 1 => {
            Err("a single-choice poll has max_choices 1".into())
        }
        ChoiceKind::MultipleChoice
            if definition.max_choices < 2 || definition.max_choices as usize > option_count =>
        {
            Err("a multiple-choice poll has max_choices from 2 to its option count".into())
        }
        ChoiceKind::SingleChoice | ChoiceKind::MultipleChoice => Ok(()),
    }
}

fn check_poll_times(definition: &PollDefinition, server_time: Timestamp) -> Result<(), String> {
    if definition.closes_at <= definition.opens_at {
        return Err("closes_at must be after opens_at".into());
    }
    if definition.closes_at <= server_time {
        return Err("closes_at must be in the future".into());
    }
    if definition.closes_at.0 - definition.opens_at.0 > limits::POLL_DURATION_MS_MAX {
        return Err("a poll stays open at most 366 days".into());
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
}
