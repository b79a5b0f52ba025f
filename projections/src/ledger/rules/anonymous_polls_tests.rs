//! The rules of anonymous polls: what their definitions name, who may request credentials and
//! how often, and which ballots signed by per-poll keys count.

use std::sync::OnceLock;

use super::support::*;
use crate::command::{
    Action, Anonymity, AnonymousBallot, Audience, CastBallot, ChoiceKind, CredentialRequest,
    PollDefinition, TallyVisibility,
};
use crate::credential::testing::{credential, issuer};
use crate::credential::{BlindedMessage, Credential, IssuerKey};
use crate::ledger::Ledger;

/// The node's issuer for `NORTH` (and for audiences without districts), the node's issuer for
/// `SOUTH`, and an independent co-issuer.
const NORTH_ISSUER: usize = 0;
const SOUTH_ISSUER: usize = 1;
const CO_ISSUER: usize = 2;

const SOUTH: &str = "south";
/// Per-poll ballot keys: never registered, known to nobody but the voter.
const BALLOT_KEY: u8 = 40;
const OTHER_BALLOT_KEY: u8 = 41;

type TestIssuer = (blind_rsa_signatures::SecretKey, IssuerKey);

/// Three 2048-bit issuers, generated once for every row.
fn issuers() -> &'static [TestIssuer; 3] {
    static ISSUERS: OnceLock<[TestIssuer; 3]> = OnceLock::new();
    ISSUERS.get_or_init(|| [issuer(), issuer(), issuer()])
}

fn issuer_key(index: usize) -> IssuerKey {
    issuers()[index].1.clone()
}

/// A credential of issuer `index` over `ballot_key` in `poll`, blinded and finalised as a
/// citizen would.
fn credential_of(index: usize, poll: u64, ballot_key: u8) -> Credential {
    let (secret, public_key) = &issuers()[index];
    credential(secret, public_key, poll, &public(ballot_key))
}

/// A blinded message the issuer `index` can sign: below its modulus, of its length.
fn blinded_for(index: usize) -> BlindedMessage {
    let mut bytes = vec![0x11; issuer_key(index).modulus_bytes()];
    bytes[0] = 0;
    BlindedMessage(bytes)
}

/// A single-choice anonymous poll for verified residents, issued by the north issuer and the
/// co-issuer, open from `T0` for one day, changes allowed.
fn definition() -> PollDefinition {
    PollDefinition {
        title: "Which square gets the fountain?".into(),
        description: String::new(),
        options: vec!["Market square".into(), "Station square".into()],
        choice_kind: ChoiceKind::SingleChoice,
        max_choices: 1,
        audience: Audience::Verified,
        opens_at: T0,
        closes_at: after_days(1),
        vote_changes_allowed: true,
        tally_visibility: TallyVisibility::Public,
        anonymous: Some(Anonymity {
            issuer_keys: vec![issuer_key(NORTH_ISSUER)],
            co_issuer_key: Some(issuer_key(CO_ISSUER)),
        }),
    }
}

fn open(change: impl Fn(&mut PollDefinition)) -> Step {
    let mut poll = definition();
    change(&mut poll);
    Step::by(OFFICIAL, Action::OpenPoll(poll))
}

fn latest_poll(ledger: &Ledger) -> u64 {
    nth(&ledger.polls, ledger.polls.len().saturating_sub(1))
}

/// The citizen's request in the latest poll, changed by `change`, a minute after `T0`.
fn request_by(citizen: u8, change: fn(&mut CredentialRequest)) -> Step {
    Step::by_with(citizen, move |ledger| {
        let mut request = CredentialRequest {
            poll: latest_poll(ledger),
            blinded_message: blinded_for(NORTH_ISSUER),
            co_issuer_blinded_message: Some(blinded_for(CO_ISSUER)),
        };
        change(&mut request);
        Action::RequestCredentials(request)
    })
    .at(after_milliseconds(MINUTE_MS))
}

fn request() -> Step {
    request_by(CITIZEN, |_| {})
}

/// An anonymous ballot by `ballot_key` in the latest poll, with both issuers' credentials over
/// it, changed by `change` (given the poll's id), an hour after `T0`.
fn ballot_with(ballot_key: u8, choice: u32, change: fn(&mut AnonymousBallot, u64)) -> Step {
    Step::by_with(ballot_key, move |ledger| {
        let poll = latest_poll(ledger);
        let mut ballot = AnonymousBallot {
            poll,
            choices: vec![choice],
            district: None,
            credential: credential_of(NORTH_ISSUER, poll, ballot_key),
            co_issuer_credential: Some(credential_of(CO_ISSUER, poll, ballot_key)),
        };
        change(&mut ballot, poll);
        Action::CastAnonymousBallot(ballot)
    })
    .at(after_milliseconds(HOUR_MS))
}

fn ballot(ballot_key: u8, choice: u32) -> Step {
    ballot_with(ballot_key, choice, |_, _| {})
}

/// The anonymous poll opened and the citizen's credentials requested.
fn requested() -> Vec<Step> {
    base_and(vec![open(|_| {}), request()])
}

/// A poll for the residents of `NORTH` and `SOUTH`, one node issuer key each, no co-issuer.
fn for_two_districts(poll: &mut PollDefinition) {
    poll.audience = Audience::Districts {
        districts: vec![NORTH.into(), SOUTH.into()],
    };
    poll.anonymous = Some(Anonymity {
        issuer_keys: vec![issuer_key(NORTH_ISSUER), issuer_key(SOUTH_ISSUER)],
        co_issuer_key: None,
    });
}

fn counts(ledger: &Ledger) -> &crate::ledger::CredentialCounts {
    let poll = &ledger.polls[&latest_poll(ledger)];
    match &poll.credentials {
        Some(counts) => counts,
        None => panic!("poll {} is not anonymous", poll.id),
    }
}

pub(super) fn rows() -> Vec<Row> {
    let mut rows = opening_rows();
    rows.extend(request_rows());
    rows.extend(ballot_rows());
    rows.extend(refused_ballot_rows());
    rows
}

fn opening_rows() -> Vec<Row> {
    vec![
        row(
            "an official opens an anonymous poll naming an issuer key and a co-issuer key",
            base(),
            open(|_| {}),
            Then::AcceptedAnd(|ledger| counts(ledger).issued == vec![0]),
        ),
        row(
            "an anonymous poll for two districts names one issuer key per district",
            base(),
            open(for_two_districts),
            Then::AcceptedAnd(|ledger| counts(ledger).counted == vec![0, 0]),
        ),
        row(
            "an anonymous poll for two districts with one issuer key is refused",
            base(),
            open(|poll| {
                for_two_districts(poll);
                if let Some(anonymity) = poll.anonymous.as_mut() {
                    anonymity.issuer_keys.pop();
                }
            }),
            Then::Refused("invalid-poll"),
        ),
        row(
            "an anonymous poll may not name the same key as issuer and co-issuer",
            base(),
            open(|poll| {
                if let Some(anonymity) = poll.anonymous.as_mut() {
                    anonymity.co_issuer_key = Some(issuer_key(NORTH_ISSUER));
                }
            }),
            Then::Refused("invalid-poll"),
        ),
    ]
}

fn request_rows() -> Vec<Row> {
    vec![
        row(
            "a verified resident requests credentials, and the request counts one issued",
            base_and(vec![open(|_| {})]),
            request(),
            Then::AcceptedAnd(|ledger| {
                counts(ledger).issued == vec![1] && counts(ledger).requests.len() == 1
            }),
        ),
        row(
            "credentials may be requested before the poll opens, to cast later",
            base_and(vec![open(|poll| {
                poll.opens_at = after_days(1);
                poll.closes_at = after_days(2);
            })]),
            request(),
            Then::Accepted,
        ),
        row(
            "a resident requests credentials for a poll once",
            requested(),
            request(),
            Then::Refused("credentials-already-requested"),
        ),
        row(
            "an unattested key is not in a verified audience and gets no credentials",
            base_and(vec![open(|_| {})]),
            request_by(NEIGHBOUR, |_| {}),
            Then::Refused("not-eligible"),
        ),
        row(
            "a pseudonymous poll issues no credentials",
            base_and(vec![open(|poll| poll.anonymous = None)]),
            request(),
            Then::Refused("poll-not-anonymous"),
        ),
        row(
            "a request in a poll with a co-issuer carries a blinded message for it",
            base_and(vec![open(|_| {})]),
            request_by(CITIZEN, |request| request.co_issuer_blinded_message = None),
            Then::Refused("invalid-blinded-message"),
        ),
        row(
            "a blinded message has the issuer modulus's length",
            base_and(vec![open(|_| {})]),
            request_by(CITIZEN, |request| request.blinded_message.0.truncate(255)),
            Then::Refused("invalid-blinded-message"),
        ),
        row(
            "a blinded message lies below the issuer's modulus",
            base_and(vec![open(|_| {})]),
            request_by(CITIZEN, |request| {
                request.blinded_message.0 = vec![0xff; 256];
            }),
            Then::Refused("invalid-blinded-message"),
        ),
        row(
            "no credentials are issued once the poll's closing time has come",
            base_and(vec![open(|_| {})]),
            request().at(after_days(1)),
            Then::Refused("poll-closed"),
        ),
    ]
}

fn ballot_rows() -> Vec<Row> {
    vec![
        row(
            "a ballot signed by a per-poll key with both credentials is counted",
            requested(),
            ballot(BALLOT_KEY, 1),
            Then::AcceptedAnd(|ledger| {
                let poll = &ledger.polls[&latest_poll(ledger)];
                poll.tally.counts == vec![0, 1]
                    && poll.tally.turnout == 1
                    && counts(ledger).counted == vec![1]
                    && ledger.ballot(poll, public(BALLOT_KEY)).is_some()
                    && ledger.ballot(poll, public(CITIZEN)).is_none()
            }),
        ),
        row(
            "the same ballot key changes its vote where the poll allows, superseding the first",
            {
                let mut given = requested();
                given.push(ballot(BALLOT_KEY, 1));
                given
            },
            ballot(BALLOT_KEY, 0),
            Then::AcceptedAnd(|ledger| {
                let tally = &ledger.polls[&latest_poll(ledger)].tally;
                tally.counts == vec![1, 0]
                    && tally.turnout == 1
                    && tally.superseded_ballots == 1
                    && counts(ledger).counted == vec![1]
            }),
        ),
        row(
            "a district's resident votes under their district's issuer key",
            base_and(vec![
                open(for_two_districts),
                request_by(CITIZEN, no_co_issuer),
            ]),
            ballot_with(BALLOT_KEY, 0, |ballot, _| {
                ballot.district = Some(NORTH.into());
                ballot.co_issuer_credential = None;
            }),
            Then::AcceptedAnd(|ledger| counts(ledger).counted == vec![1, 0]),
        ),
    ]
}

fn no_co_issuer(request: &mut CredentialRequest) {
    request.co_issuer_blinded_message = None;
}

fn refused_ballot_rows() -> Vec<Row> {
    let mut rows = credential_refusal_rows();
    rows.extend(vec![
        row(
            "a key where changes are not allowed votes once",
            {
                let mut given = base_and(vec![
                    open(|poll| poll.vote_changes_allowed = false),
                    request(),
                ]);
                given.push(ballot(BALLOT_KEY, 1));
                given
            },
            ballot(BALLOT_KEY, 0),
            Then::Refused("ballot-already-cast"),
        ),
        row(
            "more ballot keys than credential requests is stuffing, and is refused",
            {
                let mut given = requested();
                given.push(ballot(BALLOT_KEY, 1));
                given
            },
            ballot(OTHER_BALLOT_KEY, 1),
            Then::Refused("credentials-exhausted"),
        ),
        row(
            "an anonymous poll takes no ballot signed by a citizen's own key",
            requested(),
            Step::by_with(CITIZEN, |ledger| {
                Action::CastBallot(CastBallot {
                    version: None,
                    poll: latest_poll(ledger),
                    choices: vec![0],
                })
            })
            .at(after_milliseconds(HOUR_MS)),
            Then::Refused("poll-is-anonymous"),
        ),
        row(
            "a pseudonymous poll takes no anonymous ballot",
            base_and(vec![open(|poll| poll.anonymous = None)]),
            ballot(BALLOT_KEY, 1),
            Then::Refused("poll-not-anonymous"),
        ),
        row(
            "an anonymous ballot waits for the poll to open",
            base_and(vec![
                open(|poll| {
                    poll.opens_at = after_days(1);
                    poll.closes_at = after_days(2);
                }),
                request(),
            ]),
            ballot(BALLOT_KEY, 1),
            Then::Refused("poll-not-open-yet"),
        ),
        row(
            "a weak key cannot sign a ballot",
            requested(),
            Step::unsigned(
                weak_key(),
                Action::CastAnonymousBallot(AnonymousBallot {
                    // The poll opens right after the prelude.
                    poll: base().len() as u64,
                    choices: vec![0],
                    district: None,
                    credential: credential_of(NORTH_ISSUER, 0, BALLOT_KEY),
                    co_issuer_credential: None,
                }),
            )
            .at(after_milliseconds(HOUR_MS)),
            Then::Refused("weak-key"),
        ),
    ]);
    rows
}

fn credential_refusal_rows() -> Vec<Row> {
    vec![
        row(
            "a credential from another poll does not count here",
            requested(),
            ballot_with(BALLOT_KEY, 1, |ballot, poll| {
                ballot.credential = credential_of(NORTH_ISSUER, poll + 1, BALLOT_KEY);
            }),
            Then::Refused("invalid-credential"),
        ),
        row(
            "a credential from another issuer does not count",
            requested(),
            ballot_with(BALLOT_KEY, 1, |ballot, poll| {
                ballot.credential = credential_of(SOUTH_ISSUER, poll, BALLOT_KEY);
            }),
            Then::Refused("invalid-credential"),
        ),
        row(
            "a ballot signed by a key its credential does not cover is refused",
            requested(),
            ballot_with(BALLOT_KEY, 1, |ballot, poll| {
                ballot.credential = credential_of(NORTH_ISSUER, poll, OTHER_BALLOT_KEY);
            }),
            Then::Refused("invalid-credential"),
        ),
        row(
            "a ballot without the co-issuer's credential is refused",
            requested(),
            ballot_with(BALLOT_KEY, 1, |ballot, _| {
                ballot.co_issuer_credential = None
            }),
            Then::Refused("missing-credential"),
        ),
        row(
            "a forged co-issuer credential is refused",
            requested(),
            ballot_with(BALLOT_KEY, 1, |ballot, _| {
                if let Some(credential) = ballot.co_issuer_credential.as_mut() {
                    credential.signature[17] ^= 1;
                }
            }),
            Then::Refused("invalid-credential"),
        ),
        row(
            "a ballot names a district of the poll's audience",
            base_and(vec![
                open(for_two_districts),
                request_by(CITIZEN, no_co_issuer),
            ]),
            ballot_with(BALLOT_KEY, 0, |ballot, _| {
                ballot.district = Some("east".into());
                ballot.co_issuer_credential = None;
            }),
            Then::Refused("invalid-credential"),
        ),
    ]
}

#[test]
fn every_rule_of_anonymous_polls_holds_as_its_table_says() {
    run_table(&rows());
}
