//! The rules of poll corrections: who corrects a poll and when, which fields a correction may
//! change, the version it must name, and which ballots stand after it.

use super::polls_tests::definition;
use super::support::*;
use crate::command::{Action, Audience, CastBallot, ClosePoll, PollCorrection, PollDefinition};
use crate::ledger::Ledger;

fn open() -> Step {
    Step::by(OFFICIAL, Action::OpenPoll(definition()))
}

fn latest_poll(ledger: &Ledger) -> u64 {
    nth(&ledger.polls, ledger.polls.len().saturating_sub(1))
}

/// A ballot in the latest poll, `hours` after `T0`.
fn ballot_at(voter: u8, choice: u32, hours: i64) -> Step {
    Step::by_with(voter, move |ledger| {
        Action::CastBallot(CastBallot {
            version: None,
            poll: latest_poll(ledger),
            choices: vec![choice],
        })
    })
    .at(after_milliseconds(hours * HOUR_MS))
}

/// `author`'s correction of the latest poll's current definition, changed by `change`, naming
/// `replaces`, two hours after `T0`.
fn correct_by(author: u8, replaces: u32, change: fn(&mut PollDefinition)) -> Step {
    Step::by_with(author, move |ledger| {
        let poll = latest_poll(ledger);
        let mut corrected = ledger.polls[&poll].definition.clone();
        change(&mut corrected);
        Action::CorrectPoll(PollCorrection {
            poll,
            replaces,
            definition: corrected,
        })
    })
    .at(after_milliseconds(2 * HOUR_MS))
}

fn correct(replaces: u32, change: fn(&mut PollDefinition)) -> Step {
    correct_by(OFFICIAL, replaces, change)
}

fn reword(poll: &mut PollDefinition) {
    poll.title = "Where should the new bench stand?".into();
}

fn add_option(poll: &mut PollDefinition) {
    poll.options.push("By the library".into());
}

/// The poll opened, the citizen and the neighbour voted for the river an hour in.
fn voted() -> Vec<Step> {
    base_and(vec![
        open(),
        ballot_at(CITIZEN, 0, 1),
        ballot_at(NEIGHBOUR, 0, 1),
    ])
}

fn poll_of(ledger: &Ledger) -> &crate::ledger::Poll {
    &ledger.polls[&latest_poll(ledger)]
}

pub(super) fn rows() -> Vec<Row> {
    let mut rows = allowed_rows();
    rows.extend(refused_rows());
    rows.extend(ballot_rule_rows());
    rows
}

fn allowed_rows() -> Vec<Row> {
    vec![
        row(
            "the poll's author rewords it as version 2 and version 1 stays readable",
            voted(),
            correct(1, reword),
            Then::AcceptedAnd(|ledger| {
                let poll = poll_of(ledger);
                let versions = poll.versions();
                poll.version() == 2
                    && versions.len() == 2
                    && versions[0].definition.title == "Where should the new bench go?"
                    && versions[0].replaced
                    && versions[1].definition.title == "Where should the new bench stand?"
                    && !versions[1].replaced
                    && versions[1].position > versions[0].position
            }),
        ),
        row(
            "a scheduled poll can be corrected before it opens",
            base_and(vec![
                Step::by(OFFICIAL, Action::OpenPoll(definition())).at(after_days(-1))
            ]),
            correct(1, add_option).at(after_milliseconds(-HOUR_MS)),
            Then::Accepted,
        ),
        row(
            "a correction may move the closing time",
            voted(),
            correct(1, |poll| poll.closes_at = after_days(2)),
            Then::AcceptedAnd(|ledger| poll_of(ledger).definition.closes_at == after_days(2)),
        ),
        row(
            "a second correction names version 2",
            base_and(vec![open(), correct(1, reword)]),
            correct(2, add_option),
            Then::AcceptedAnd(|ledger| poll_of(ledger).version() == 3),
        ),
    ]
}

fn refused_rows() -> Vec<Row> {
    vec![
        row(
            "only the poll's author corrects it, not another official",
            voted(),
            correct_by(OTHER_OFFICIAL, 1, reword),
            Then::Refused("not-author"),
        ),
        row(
            "a correction naming a replaced version is refused",
            base_and(vec![open(), correct(1, reword)]),
            correct(1, add_option),
            Then::Refused("stale-poll-version"),
        ),
        row(
            "a correction naming a version not yet made is refused",
            voted(),
            correct(2, reword),
            Then::Refused("stale-poll-version"),
        ),
        row(
            "a poll past its closing time cannot be corrected",
            voted(),
            correct(1, reword).at(after_days(1)),
            Then::Refused("poll-closed"),
        ),
        row(
            "a closed poll cannot be corrected",
            base_and(vec![open(), close()]),
            correct(1, reword).at(after_days(2)),
            Then::Refused("poll-closed"),
        ),
        row(
            "a correction cannot change the audience",
            voted(),
            correct(1, |poll| poll.audience = Audience::Verified),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a correction cannot allow vote changes the poll did not",
            voted(),
            correct(1, |poll| poll.vote_changes_allowed = true),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a correction that changes nothing is refused",
            voted(),
            correct(1, |_| {}),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a corrected definition follows the opening's rules",
            voted(),
            correct(1, |poll| poll.options.truncate(1)),
            Then::Refused("invalid-poll"),
        ),
        row(
            "an unknown poll cannot be corrected",
            base(),
            Step::by(
                OFFICIAL,
                Action::CorrectPoll(PollCorrection {
                    poll: 999,
                    replaces: 1,
                    definition: definition(),
                }),
            ),
            Then::Refused("unknown-poll"),
        ),
        row(
            "a poll takes a limited number of corrections",
            corrected_to_the_limit(),
            correct(9, reword),
            Then::Refused("invalid-poll"),
        ),
    ]
}

/// A poll corrected `POLL_CORRECTIONS_MAX` (8) times, moving its closing time back and forth.
fn corrected_to_the_limit() -> Vec<Step> {
    let mut steps = base_and(vec![open()]);
    let limit = u32::try_from(crate::limits::POLL_CORRECTIONS_MAX).unwrap();
    steps.extend((1..=limit).map(|replaces| {
        if replaces % 2 == 1 {
            correct(replaces, |poll| poll.closes_at = after_days(2))
        } else {
            correct(replaces, |poll| poll.closes_at = after_days(3))
        }
    }));
    steps
}

fn close() -> Step {
    Step::system_with(|ledger| {
        let poll = latest_poll(ledger);
        Action::ClosePoll(ClosePoll {
            poll,
            final_tally: ledger.polls[&poll].tally.clone(),
            checkpoint: ledger.checkpoint_reference(),
        })
    })
    .at(after_days(1))
}

/// A ballot for the river in the latest poll, three hours after `T0`, naming `version`.
fn ballot_naming(version: u32) -> Step {
    Step::by_with(CITIZEN, move |ledger| {
        Action::CastBallot(CastBallot {
            poll: latest_poll(ledger),
            choices: vec![0],
            version: Some(version),
        })
    })
    .at(after_milliseconds(3 * HOUR_MS))
}

fn ballot_rule_rows() -> Vec<Row> {
    vec![
        row(
            "a ballot naming the current version is counted",
            base_and(vec![open(), correct(1, add_option)]),
            ballot_naming(2),
            Then::AcceptedAnd(|ledger| poll_of(ledger).tally.counts == vec![1, 0, 0]),
        ),
        row(
            "a ballot naming a version a correction replaced is refused, not counted for other options",
            base_and(vec![open(), correct(1, add_option)]),
            ballot_naming(1),
            Then::Refused("stale-poll-version"),
        ),
        row(
            "a rewording leaves every ballot standing",
            voted(),
            correct(1, reword),
            Then::AcceptedAnd(|ledger| {
                let tally = &poll_of(ledger).tally;
                tally.counts == vec![2, 0] && tally.turnout == 2 && tally.voided_ballots == 0
            }),
        ),
        row(
            "a change of options voids every ballot counted so far and says how many",
            voted(),
            correct(1, add_option),
            Then::AcceptedAnd(|ledger| {
                let poll = poll_of(ledger);
                poll.tally.counts == vec![0, 0, 0]
                    && poll.tally.turnout == 0
                    && poll.tally.voided_ballots == 2
                    && poll.turnout_by_district.is_empty()
                    && poll.versions()[1].ballots_voided == 2
            }),
        ),
        row(
            "a voter whose ballot a change of options voided votes again where changes are off",
            base_and(vec![
                open(),
                ballot_at(CITIZEN, 0, 1),
                correct(1, add_option),
            ]),
            ballot_at(CITIZEN, 2, 3),
            Then::AcceptedAnd(|ledger| {
                let tally = &poll_of(ledger).tally;
                tally.counts == vec![0, 0, 1] && tally.turnout == 1 && tally.voided_ballots == 1
            }),
        ),
        row(
            "after a rewording a voter still cannot vote twice where changes are off",
            base_and(vec![open(), ballot_at(CITIZEN, 0, 1), correct(1, reword)]),
            ballot_at(CITIZEN, 1, 3),
            Then::Refused("ballot-already-cast"),
        ),
        row(
            "after a correction ballots choose among the new options",
            base_and(vec![open(), correct(1, add_option)]),
            ballot_at(CITIZEN, 2, 3),
            Then::Accepted,
        ),
        row(
            "the close after a correction carries the voided count in its final tally",
            base_and(vec![
                open(),
                ballot_at(CITIZEN, 0, 1),
                correct(1, add_option),
                ballot_at(NEIGHBOUR, 1, 3),
            ]),
            close(),
            Then::AcceptedAnd(|ledger| {
                let poll = poll_of(ledger);
                poll.closed.is_some()
                    && poll.tally.voided_ballots == 1
                    && poll.tally.counts == vec![0, 1, 0]
            }),
        ),
    ]
}

#[test]
fn every_rule_of_poll_corrections_holds_as_its_table_says() {
    run_table(&rows());
}
