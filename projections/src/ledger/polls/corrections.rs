//! Poll corrections: the poll's author publishes a new version of its definition while it runs,
//! and every earlier version stays readable.
//!
//! The ballot rule: a correction that changes the options or `max_choices` voids every ballot
//! counted so far (they chose among options that are no longer the poll's), and their voters
//! vote again, even where the poll allows no vote changes; a correction of the wording or the
//! closing time alone leaves every ballot standing. Invariant: the tally counts only ballots
//! cast at or after the latest option-changing correction, and `voided_ballots` counts the rest.

use super::{check_poll_definition, Poll, PollStatus};
use crate::command::{PollCorrection, PollDefinition, Tally};
use crate::keyed_map::KeyedMap;
use crate::ledger::arithmetic::add;
use crate::ledger::event::Event;
use crate::ledger::refusal::Refusal;
use crate::limits;
use crate::protocol::PublicKey;
use crate::time::Timestamp;

/// One correction as the fold keeps it: where it is in the log, and the definition it replaced
/// (the new one is the poll's definition, or the next correction's `replaced`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Correction {
    pub position: u64,
    pub server_time: Timestamp,
    pub replaced: PollDefinition,
    /// Ballots this correction voided (zero for a change of wording or closing time).
    pub ballots_voided: u64,
}

/// One version of a poll's definition, as the public reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollVersion<'a> {
    /// 1 for the opening, then one more for each correction.
    pub version: u32,
    /// The log position of the entry that made it: the `open_poll`, then each `correct_poll`.
    pub position: u64,
    pub server_time: Timestamp,
    pub definition: &'a PollDefinition,
    /// Ballots the correction that made this version voided; zero for version 1.
    pub ballots_voided: u64,
    /// Whether a later version replaced it.
    pub replaced: bool,
}

impl Poll {
    /// The current version: 1 until the first correction.
    pub fn version(&self) -> u32 {
        u32::try_from(self.corrections.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// Every version, oldest first; the last is the current definition.
    pub fn versions(&self) -> Vec<PollVersion<'_>> {
        let count = self.corrections.len() + 1;
        (0..count)
            .map(|index| {
                let made_by = index.checked_sub(1).map(|made| &self.corrections[made]);
                PollVersion {
                    version: u32::try_from(index + 1).unwrap_or(u32::MAX),
                    position: made_by.map_or(self.id, |correction| correction.position),
                    server_time: made_by.map_or(self.opened_at, |correction| correction.server_time),
                    definition: self
                        .corrections
                        .get(index)
                        .map_or(&self.definition, |next| &next.replaced),
                    ballots_voided: made_by.map_or(0, |correction| correction.ballots_voided),
                    replaced: index + 1 < count,
                }
            })
            .collect()
    }
}

/// Whether a correction that changes `current` into `corrected` voids the ballots counted so far.
pub fn voids_ballots(current: &PollDefinition, corrected: &PollDefinition) -> bool {
    current.options != corrected.options || current.max_choices != corrected.max_choices
}

/// May `author` correct `poll` at `at`?
pub(super) fn decide(
    poll: &Poll,
    author: PublicKey,
    correction: &PollCorrection,
    at: Timestamp,
) -> Result<(), Refusal> {
    if author != poll.author {
        return Err(Refusal::NotAuthor);
    }
    match poll.status(at) {
        PollStatus::Scheduled | PollStatus::Open => {}
        PollStatus::Closing | PollStatus::Closed => return Err(Refusal::PollClosed),
    }
    if correction.replaces != poll.version() {
        return Err(Refusal::StalePollVersion);
    }
    if poll.corrections.len() >= limits::POLL_CORRECTIONS_MAX {
        return Err(Refusal::InvalidPoll(format!(
            "a poll takes at most {} corrections",
            limits::POLL_CORRECTIONS_MAX
        )));
    }
    check_fixed_fields(&poll.definition, &correction.definition).map_err(Refusal::InvalidPoll)?;
    check_poll_definition(&correction.definition, at)
}

/// What a running poll promised its voters stays: who votes, how, from when, and what the public
/// sees. A correction must also change something, or it is no new version.
fn check_fixed_fields(current: &PollDefinition, corrected: &PollDefinition) -> Result<(), String> {
    let fixed = [
        ("choice_kind", current.choice_kind == corrected.choice_kind),
        ("audience", current.audience == corrected.audience),
        ("opens_at", current.opens_at == corrected.opens_at),
        (
            "vote_changes_allowed",
            current.vote_changes_allowed == corrected.vote_changes_allowed,
        ),
        (
            "tally_visibility",
            current.tally_visibility == corrected.tally_visibility,
        ),
        ("anonymous", current.anonymous == corrected.anonymous),
    ];
    if let Some((field, _)) = fixed.iter().find(|(_, same)| !same) {
        return Err(format!("a correction cannot change {field}"));
    }
    if current == corrected {
        return Err("a correction must change the definition".into());
    }
    Ok(())
}

/// Folds a decided correction in: the new definition becomes current, the old one is kept, and
/// the ballots are voided when the options changed.
pub(super) fn evolve(poll: &mut Poll, correction: &PollCorrection, event: &Event) {
    let voids = voids_ballots(&poll.definition, &correction.definition);
    let ballots_voided = if voids { void_ballots(poll, &correction.definition) } else { 0 };
    let replaced = std::mem::replace(&mut poll.definition, correction.definition.clone());
    poll.corrections.push(Correction {
        position: event.position,
        server_time: event.server_time,
        replaced,
        ballots_voided,
    });
}

/// Empties the count for the corrected options and returns how many ballots it voided. The
/// superseded count stays: those ballots were replaced before, and that history is public.
fn void_ballots(poll: &mut Poll, corrected: &PollDefinition) -> u64 {
    let voided = poll.ballots.len() as u64;
    poll.ballots = KeyedMap::new();
    poll.turnout_by_district.clear();
    poll.tally = Tally {
        counts: vec![0; corrected.options.len()],
        turnout: 0,
        superseded_ballots: poll.tally.superseded_ballots,
        voided_ballots: add(poll.tally.voided_ballots, voided, "voided ballots"),
    };
    voided
}
