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
                    server_time: made_by
                        .map_or(self.opened_at, |correction| correction.server_time),
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
    let ballots_voided = if voids {
        void_ballots(poll, &correction.definition)
    } else {
        0
    };
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::command::{Audience, ChoiceKind, TallyVisibility};
    use crate::ledger::polls::ChoiceSet;
    use crate::protocol::EntryKind;

    fn definition() -> PollDefinition {
        PollDefinition {
            title: "Where should the bench go?".into(),
            description: String::new(),
            options: vec!["River".into(), "School".into()],
            choice_kind: ChoiceKind::SingleChoice,
            max_choices: 1,
            audience: Audience::Everyone,
            opens_at: Timestamp(0),
            closes_at: Timestamp(100_000),
            vote_changes_allowed: true,
            tally_visibility: TallyVisibility::Public,
            anonymous: None,
        }
    }

    /// A poll with three voters: two for the river (one of whom changed their mind once), one
    /// for the school.
    fn voted_poll() -> Poll {
        let mut poll = Poll {
            id: 4,
            author: PublicKey([3; 32]),
            opened_at: Timestamp(0),
            definition: definition(),
            ballots: KeyedMap::new(),
            tally: Tally {
                counts: vec![2, 1],
                turnout: 3,
                superseded_ballots: 1,
                voided_ballots: 0,
            },
            turnout_by_district: [("north".to_string(), 2)].into_iter().collect(),
            closed: None,
            credentials: None,
            corrections: Vec::new(),
        };
        for (voter, choice) in [(10, 0), (11, 0), (12, 1)] {
            poll.ballots.insert(voter, ChoiceSet::of(&[choice]));
        }
        poll
    }

    fn correction_event(position: u64, correction: &PollCorrection) -> Event {
        Event {
            position,
            server_time: Timestamp(5_000),
            kind: EntryKind::Command,
            hash: [0; 32],
            leaf_hash: [0; 32],
            command: crate::command::Command {
                author: PublicKey([3; 32]),
                nonce: "0".repeat(32),
                issued_at: Timestamp(5_000),
                action: crate::command::Action::CorrectPoll(correction.clone()),
            },
        }
    }

    /// The three-voter poll (`id` 4) after one correction by `change` at position 9; the
    /// snapshot tests read one back.
    pub(crate) fn corrected(change: fn(&mut PollDefinition)) -> Poll {
        let mut poll = voted_poll();
        let mut new = definition();
        change(&mut new);
        let correction = PollCorrection {
            poll: 4,
            replaces: 1,
            definition: new,
        };
        evolve(&mut poll, &correction, &correction_event(9, &correction));
        poll
    }

    #[test]
    fn a_change_of_options_voids_every_counted_ballot_and_counts_them_as_voided() {
        let poll = corrected(|definition| definition.options.push("Library".into()));
        assert_eq!(poll.tally.counts, vec![0, 0, 0]);
        assert_eq!(poll.tally.turnout, 0);
        assert_eq!(poll.tally.voided_ballots, 3);
        // Superseded ballots were replaced before the correction: that history stays public.
        assert_eq!(poll.tally.superseded_ballots, 1);
        assert!(poll.ballots.is_empty());
        assert!(poll.turnout_by_district.is_empty());
        assert_eq!(poll.corrections[0].ballots_voided, 3);
        assert_eq!(poll.corrections[0].replaced, definition());
    }

    #[test]
    fn a_change_of_max_choices_alone_voids_the_ballots_too() {
        let before = definition();
        let mut after = definition();
        after.options.push("Library".into());
        assert!(voids_ballots(&before, &after));
        let mut wider = definition();
        wider.max_choices = 2;
        assert!(voids_ballots(&before, &wider));
    }

    #[test]
    fn a_rewording_or_a_new_closing_time_leaves_the_tally_as_it_was() {
        for poll in [
            corrected(|definition| definition.description = "Near the square".into()),
            corrected(|definition| definition.closes_at = Timestamp(200_000)),
        ] {
            assert_eq!(poll.tally, voted_poll().tally);
            assert_eq!(poll.ballots.len(), 3);
            assert_eq!(poll.corrections[0].ballots_voided, 0);
            assert_eq!(poll.version(), 2);
        }
    }

    #[test]
    fn versions_list_the_opening_then_each_correction_with_its_position() {
        let poll =
            corrected(|definition| definition.title = "Where should the bench stand?".into());
        let versions = poll.versions();
        assert_eq!(versions.len(), 2);
        assert_eq!((versions[0].version, versions[0].position), (1, 4));
        assert_eq!((versions[1].version, versions[1].position), (2, 9));
        assert_eq!(versions[0].definition.title, "Where should the bench go?");
        assert_eq!(
            versions[1].definition.title,
            "Where should the bench stand?"
        );
        assert!(versions[0].replaced && !versions[1].replaced);
    }
}
