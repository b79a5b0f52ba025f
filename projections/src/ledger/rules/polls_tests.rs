//! The rules of polls and ballots: who opens a poll, what a definition holds, who may vote
//! when and how, and the server's close with its final tally and checkpoint.

use super::support::*;
use crate::command::{
    Action, Audience, CastBallot, ChoiceKind, ClosePoll, PollDefinition, TallyVisibility,
};
use crate::ledger::Ledger;
use crate::protocol::EntryKind;

/// A single-choice poll for everyone, open from `T0` for one day, with no vote changes.
pub(super) fn definition() -> PollDefinition {
    PollDefinition {
        title: "Where should the new bench go?".into(),
        description: String::new(),
        options: vec!["By the river".into(), "By the school".into()],
        choice_kind: ChoiceKind::SingleChoice,
        max_choices: 1,
        audience: Audience::Everyone,
        opens_at: T0,
        closes_at: after_days(1),
        vote_changes_allowed: false,
        tally_visibility: TallyVisibility::Public,
        anonymous: None,
    }
}

fn open(change: impl Fn(&mut PollDefinition)) -> Step {
    let mut poll = definition();
    change(&mut poll);
    Step::by(OFFICIAL, Action::OpenPoll(poll))
}

fn opened(change: impl Fn(&mut PollDefinition)) -> Vec<Step> {
    base_and(vec![open(change)])
}

/// A ballot in the latest poll, an hour after `T0`.
fn ballot(voter: u8, choices: &[u32]) -> Step {
    let choices = choices.to_vec();
    Step::by_with(voter, move |ledger| {
        Action::CastBallot(CastBallot {
            version: None,
            poll: latest_poll(ledger),
            choices: choices.clone(),
        })
    })
    .at(after_milliseconds(HOUR_MS))
}

fn latest_poll(ledger: &Ledger) -> u64 {
    nth(&ledger.polls, ledger.polls.len().saturating_sub(1))
}

/// The close the server owes for the latest poll, altered by `change`.
fn close_with(change: fn(&mut ClosePoll)) -> Step {
    Step::system_with(move |ledger| {
        let poll = latest_poll(ledger);
        let mut close = ClosePoll {
            poll,
            final_tally: ledger.polls[&poll].tally.clone(),
            checkpoint: ledger.checkpoint_reference(),
        };
        change(&mut close);
        Action::ClosePoll(close)
    })
    .at(after_days(1))
}

fn close() -> Step {
    close_with(|_| {})
}

pub(super) fn rows() -> Vec<Row> {
    let mut rows = opening_rows();
    rows.extend(ballot_rows());
    rows.extend(resident_rows());
    rows.extend(closing_rows());
    rows
}

/// The citizen's replacement for a lost key.
const NEW_KEY: u8 = 14;

/// A verified-residents poll (changed by `change`) the citizen voted in with their old key,
/// which the registrar then revoked and replaced with a new key attested with the same tag.
fn voted_then_replaced(change: impl Fn(&mut PollDefinition)) -> Vec<Step> {
    base_and(vec![
        open(|poll| {
            poll.audience = Audience::Verified;
            change(poll);
        }),
        ballot(CITIZEN, &[0]),
        Step::by(NEW_KEY, register()),
        Step::by(REGISTRAR, revoke_key(CITIZEN)),
        Step::by(REGISTRAR, attest_as(NEW_KEY, Some(NORTH), CITIZEN)),
    ])
}

fn resident_rows() -> Vec<Row> {
    vec![
        row(
            "a resident's new key cannot vote again where changes are not allowed",
            voted_then_replaced(|_| {}),
            ballot(NEW_KEY, &[1]),
            Then::Refused("ballot-already-cast"),
        ),
        row(
            "a resident's new key replaces their old key's ballot where changes are allowed",
            voted_then_replaced(|poll| poll.vote_changes_allowed = true),
            ballot(NEW_KEY, &[1]),
            Then::AcceptedAnd(|ledger| {
                let tally = &ledger.polls[&latest_poll(ledger)].tally;
                tally.counts == vec![0, 1] && tally.turnout == 1 && tally.superseded_ballots == 1
            }),
        ),
        row(
            "a revoked key casts no ballot",
            voted_then_replaced(|poll| poll.vote_changes_allowed = true),
            ballot(CITIZEN, &[1]),
            Then::Refused("key-revoked"),
        ),
        row(
            "a resident's new key replacing their ballot leaves the turnout by district as it was",
            voted_then_replaced(|poll| poll.vote_changes_allowed = true),
            ballot(NEW_KEY, &[1]),
            Then::AcceptedAnd(|ledger| {
                let poll = &ledger.polls[&latest_poll(ledger)];
                poll.turnout_by_district.get(NORTH) == Some(&1) && poll.tally.turnout == 1
            }),
        ),
        row(
            "an attested voter's first ballot counts in their key's district, an unattested one's in none",
            base_and(vec![open(|_| {}), ballot(CITIZEN, &[0])]),
            ballot(NEIGHBOUR, &[1]),
            Then::AcceptedAnd(|ledger| {
                let poll = &ledger.polls[&latest_poll(ledger)];
                poll.turnout_by_district.len() == 1
                    && poll.turnout_by_district.get(NORTH) == Some(&1)
                    && poll.tally.turnout == 2
            }),
        ),
    ]
}

fn opening_rows() -> Vec<Row> {
    vec![
        row(
            "an official opens a poll",
            base(),
            open(|_| {}),
            Then::AcceptedAnd(|ledger| {
                ledger
                    .polls
                    .values()
                    .any(|poll| poll.tally.counts == vec![0, 0])
            }),
        ),
        row(
            "an official opens a multiple-choice poll for the residents of some districts",
            base(),
            open(|poll| {
                poll.options.push("By the library".into());
                poll.choice_kind = ChoiceKind::MultipleChoice;
                poll.max_choices = 2;
                poll.audience = Audience::Districts {
                    districts: vec![NORTH.into()],
                };
            }),
            Then::Accepted,
        ),
        row(
            "only an official opens polls",
            base(),
            Step::by(MODERATOR, Action::OpenPoll(definition())),
            Then::Refused("not-official"),
        ),
        row(
            "a poll title is not blank",
            base(),
            open(|poll| poll.title = "  ".into()),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a poll title holds no control character",
            base(),
            open(|poll| poll.title = "Budget\u{0}2027".into()),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a poll title holds no bidirectional override",
            base(),
            open(|poll| poll.title = "Park \u{202E}krap".into()),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a poll title made only of a zero-width space reads as empty and is refused",
            base(),
            open(|poll| poll.title = "\u{200B}".into()),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a poll title is in Unicode NFC",
            base(),
            open(|poll| poll.title = "Cafe\u{301} on the square".into()),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a poll description may run over several lines",
            base(),
            open(|poll| poll.description = "First line.\nSecond line.".into()),
            Then::Accepted,
        ),
        row(
            "a poll's options may not look identical, as Latin Yes and Yes with a Cyrillic e do",
            base(),
            open(|poll| poll.options = vec!["Yes".into(), "No".into(), "Y\u{435}s".into()]),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a poll has at least two options",
            base(),
            open(|poll| poll.options.truncate(1)),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a poll's options differ from each other",
            base(),
            open(|poll| poll.options = vec!["Here".into(), " Here ".into()]),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a single-choice poll allows exactly one choice",
            base(),
            open(|poll| poll.max_choices = 2),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a multiple-choice poll allows no more choices than it has options",
            base(),
            open(|poll| {
                poll.choice_kind = ChoiceKind::MultipleChoice;
                poll.max_choices = 3;
            }),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a district audience lists at least one district",
            base(),
            open(|poll| poll.audience = Audience::Districts { districts: vec![] }),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a poll closes after it opens",
            base(),
            open(|poll| poll.closes_at = poll.opens_at),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a poll that would already be closed is refused",
            base(),
            open(|poll| {
                poll.opens_at = after_days(-2);
                poll.closes_at = after_days(-1);
            }),
            Then::Refused("invalid-poll"),
        ),
        row(
            "a poll stays open at most the duration limit",
            base(),
            open(|poll| poll.closes_at = after_days(367)),
            Then::Refused("invalid-poll"),
        ),
    ]
}

fn ballot_rows() -> Vec<Row> {
    vec![
        row(
            "a registered citizen votes in an open poll",
            opened(|_| {}),
            ballot(NEIGHBOUR, &[1]),
            Then::AcceptedAnd(|ledger| {
                let poll = &ledger.polls[&latest_poll(ledger)];
                poll.tally.counts == vec![0, 1] && poll.tally.turnout == 1
            }),
        ),
        row(
            "a ballot names a poll that exists",
            opened(|_| {}),
            Step::by(
                CITIZEN,
                Action::CastBallot(CastBallot {
                    version: None,
                    poll: 9_999,
                    choices: vec![0],
                }),
            ),
            Then::Refused("unknown-poll"),
        ),
        row(
            "a ballot before the poll opens is refused",
            opened(|poll| {
                poll.opens_at = after_days(2);
                poll.closes_at = after_days(3);
            }),
            ballot(CITIZEN, &[0]),
            Then::Refused("poll-not-open-yet"),
        ),
        row(
            "a ballot after the closing time is refused before the close event",
            opened(|_| {}),
            ballot(CITIZEN, &[0]).at(after_days(1)),
            Then::Refused("poll-closed"),
        ),
        row(
            "a ballot after the close event is refused",
            base_and(vec![open(|_| {}), close()]),
            ballot(CITIZEN, &[0]).at(after_days(1)),
            Then::Refused("poll-closed"),
        ),
        row(
            "an unregistered key cannot vote",
            opened(|_| {}),
            ballot(STRANGER, &[0]),
            Then::Refused("not-eligible"),
        ),
        row(
            "a poll for verified residents refuses a key nobody attested",
            opened(|poll| poll.audience = Audience::Verified),
            ballot(NEIGHBOUR, &[0]),
            Then::Refused("not-eligible"),
        ),
        row(
            "a poll for verified residents counts an attested key",
            opened(|poll| poll.audience = Audience::Verified),
            ballot(CITIZEN, &[0]),
            Then::Accepted,
        ),
        row(
            "a district poll refuses a resident of another district",
            opened(|poll| {
                poll.audience = Audience::Districts {
                    districts: vec!["south".into()],
                }
            }),
            ballot(CITIZEN, &[0]),
            Then::Refused("not-eligible"),
        ),
        row(
            "a ballot chooses something",
            opened(|_| {}),
            ballot(CITIZEN, &[]),
            Then::Refused("empty-ballot"),
        ),
        row(
            "a ballot chooses only options the poll has",
            opened(|_| {}),
            ballot(CITIZEN, &[2]),
            Then::Refused("unknown-option"),
        ),
        row(
            "a single-choice ballot chooses one option",
            opened(|_| {}),
            ballot(CITIZEN, &[0, 1]),
            Then::Refused("too-many-choices"),
        ),
        row(
            "a ballot chooses no option twice",
            opened(|poll| {
                poll.choice_kind = ChoiceKind::MultipleChoice;
                poll.max_choices = 2;
            }),
            ballot(CITIZEN, &[1, 1]),
            Then::Refused("duplicate-choice"),
        ),
        row(
            "a second ballot is refused when the poll does not allow changes",
            base_and(vec![open(|_| {}), ballot(CITIZEN, &[0])]),
            ballot(CITIZEN, &[1]),
            Then::Refused("ballot-already-cast"),
        ),
        row(
            "a second ballot replaces the first when the poll allows changes",
            base_and(vec![
                open(|poll| poll.vote_changes_allowed = true),
                ballot(CITIZEN, &[0]),
            ]),
            ballot(CITIZEN, &[1]),
            Then::AcceptedAnd(|ledger| {
                let tally = &ledger.polls[&latest_poll(ledger)].tally;
                tally.counts == vec![0, 1] && tally.turnout == 1 && tally.superseded_ballots == 1
            }),
        ),
    ]
}

fn closing_rows() -> Vec<Row> {
    vec![
        row(
            "the server closes a poll at its closing time with the recounted tally",
            base_and(vec![open(|_| {}), ballot(CITIZEN, &[0])]),
            close(),
            Then::AcceptedAnd(|ledger| {
                let poll = &ledger.polls[&latest_poll(ledger)];
                poll.closed.is_some() && poll.tally.counts == vec![1, 0]
            }),
        ),
        row(
            "a close before the closing time is not due",
            opened(|_| {}),
            close().at(after_milliseconds(HOUR_MS)),
            Then::Refused("poll-not-due"),
        ),
        row(
            "a close names a poll that exists",
            opened(|_| {}),
            close_with(|close| close.poll = 9_999),
            Then::Refused("unknown-poll"),
        ),
        row(
            "a close whose tally differs from the recount is refused",
            base_and(vec![open(|_| {}), ballot(CITIZEN, &[0])]),
            close_with(|close| close.final_tally.counts = vec![0, 1]),
            Then::Refused("final-tally-mismatch"),
        ),
        row(
            "a close whose checkpoint is not the log before it is refused",
            opened(|_| {}),
            close_with(|close| close.checkpoint.size -= 1),
            Then::Refused("checkpoint-mismatch"),
        ),
        row(
            "a poll closes only once",
            base_and(vec![open(|_| {}), close()]),
            close(),
            Then::Refused("poll-already-closed"),
        ),
        row(
            "a client cannot close a poll",
            opened(|_| {}),
            close().kind(EntryKind::Command),
            Then::Refused("system-only"),
        ),
    ]
}

#[test]
fn every_rule_of_polls_and_ballots_holds_as_its_table_says() {
    run_table(&rows());
}
