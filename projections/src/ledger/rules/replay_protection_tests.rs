//! The rules of replay protection: a client command is fresh (issued within the age and future
//! limits of its server time) and uses a nonce its author has not used inside the window.

use super::support::*;
use crate::limits::{COMMAND_AGE_MS_MAX, COMMAND_FUTURE_MS_MAX};

const NONCE: &str = "abababababababababababababababab";

/// A harmless command: the admin grants the neighbour a moderator role, then takes it back.
fn grant_moderator() -> Step {
    Step::by(
        ADMIN,
        grant(NEIGHBOUR, crate::command::Role::Moderator, None),
    )
}

fn revoke_moderator() -> Step {
    Step::by(ADMIN, revoke(NEIGHBOUR, crate::command::Role::Moderator))
}

pub(super) fn rows() -> Vec<Row> {
    let later = after_milliseconds(COMMAND_AGE_MS_MAX + MINUTE_MS);
    vec![
        row(
            "a command issued exactly the age limit before its server time is fresh",
            base(),
            grant_moderator()
                .at(later)
                .issued(later.plus_milliseconds(-COMMAND_AGE_MS_MAX)),
            Then::Accepted,
        ),
        row(
            "a command issued longer ago than the age limit is stale",
            base(),
            grant_moderator()
                .at(later)
                .issued(later.plus_milliseconds(-COMMAND_AGE_MS_MAX - 1)),
            Then::Refused("stale-command"),
        ),
        row(
            "a command issued up to the future limit after its server time is accepted",
            base(),
            grant_moderator().issued(T0.plus_milliseconds(COMMAND_FUTURE_MS_MAX)),
            Then::Accepted,
        ),
        row(
            "a command issued beyond the future limit is refused",
            base(),
            grant_moderator().issued(T0.plus_milliseconds(COMMAND_FUTURE_MS_MAX + 1)),
            Then::Refused("future-command"),
        ),
        row(
            "a system event is not held to the freshness limits and meets its own rules",
            vec![genesis()],
            Step::system(crate::command::Action::ExpireProposal(
                crate::command::ProposalReference { proposal: 9_999 },
            ))
            .at(later)
            .issued(T0),
            Then::Refused("unknown-proposal"),
        ),
        row(
            "an author cannot use a nonce twice",
            base_and(vec![grant_moderator().nonce(NONCE)]),
            revoke_moderator().nonce(NONCE),
            Then::Refused("replayed-nonce"),
        ),
        row(
            "the server cannot use a nonce twice either",
            vec![genesis().nonce(NONCE)],
            Step::system(crate::command::Action::ExpireProposal(
                crate::command::ProposalReference { proposal: 9_999 },
            ))
            .nonce(NONCE),
            Then::Refused("replayed-nonce"),
        ),
        row(
            "another author may use the same nonce",
            base_and(vec![grant_moderator().nonce(NONCE)]),
            Step::by(STRANGER, register()).nonce(NONCE),
            Then::Accepted,
        ),
        row(
            "a nonce is usable again once an entry past the window has forgotten it",
            base_and(vec![
                grant_moderator().nonce(NONCE),
                Step::by(STRANGER, register()).at(later),
            ]),
            revoke_moderator().nonce(NONCE).at(later),
            Then::Accepted,
        ),
        row(
            "a nonce stays refused past the window until an entry has forgotten it",
            base_and(vec![grant_moderator().nonce(NONCE)]),
            revoke_moderator().nonce(NONCE).at(later),
            Then::Refused("replayed-nonce"),
        ),
    ]
}

#[test]
fn every_rule_of_replay_protection_holds_as_its_table_says() {
    run_table(&rows());
}
