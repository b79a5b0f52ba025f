//! A poll's turnout by district: what the board draws beside the tally.
//!
//! Read from the published ledger at each ask, under the tally's own rule for sealed polls. The
//! fold counts a poll of signed ballots by the district each voter's key was attested in when
//! their first counted ballot went in; an anonymous poll's ballots name no voter, and the ledger
//! knows its counts per district issuer key only.

use std::collections::BTreeMap;

use actix_web::{get, web};
use projections::command::Audience;
use projections::{Ledger, Poll, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::reads::{tally_view, TallyView};
use crate::http::Reply;
use crate::node::Node;

#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct TurnoutView {
    pub poll: u64,
    /// Citizens with a counted ballot, as in the tally.
    pub turnout: u64,
    /// True once the server-signed close event is in the log.
    pub is_final: bool,
    /// What the districts are taken from: `resident_attestation` (a poll of signed ballots:
    /// the district the voter's key was attested in when their first counted ballot went in;
    /// a later move or revocation does not move it) or `issuer_key` (an anonymous poll: the
    /// district whose issuer key covers each ballot's credential).
    #[schema(example = "resident_attestation")]
    pub basis: String,
    /// Turnout per district, by district name; every district of a district audience is listed,
    /// with 0 where nobody voted.
    pub districts: Vec<DistrictTurnoutView>,
    /// Voters counted under no district: for signed ballots, voters whose key had no attested
    /// district when their first counted ballot went in; for an anonymous poll with one issuer
    /// key for its whole audience, every voter.
    pub unattested: u64,
    /// The number of log entries this turnout is computed from.
    pub log_size: u64,
}

#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct DistrictTurnoutView {
    pub district: String,
    /// Voters of this district with a counted ballot (for an anonymous poll, the distinct ballot
    /// keys counted under the district's issuer key).
    pub turnout: u64,
    /// An anonymous poll's credential requests under the district's issuer key; `null` for
    /// other polls.
    pub credentials_issued: Option<u64>,
}

/// A poll's turnout by district: live while open (unless sealed), final once closed.
#[utoipa::path(tag = "polls",
    params(("poll" = u64, Path, description = "Poll identifier")),
    responses((status = 200, body = TurnoutView),
        ProblemStatus<403>, ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/polls/{poll}/turnout")]
pub async fn get_turnout(node: web::Data<Node>, poll: web::Path<u64>) -> Reply<TurnoutView> {
    let now = node.clock().now();
    let ledger = node.proven_ledger()?;
    Ok(web::Json(turnout_view(&ledger, *poll, now)?))
}

/// The turnout of `poll` by district, refused exactly when its tally is (a sealed poll, open).
pub(crate) fn turnout_view(
    ledger: &Ledger,
    poll: u64,
    now: Timestamp,
) -> Result<TurnoutView, ApiError> {
    let tally = tally_view(ledger, poll, now)?;
    let Some(poll) = ledger.polls.get(&poll) else {
        return Err(ApiError::NotFound(format!("poll {poll}")));
    };
    let (basis, districts) = match &poll.credentials {
        Some(counts) => (
            "issuer_key",
            issuer_districts(poll)
                .into_iter()
                .zip(counts.counted.iter().zip(&counts.issued))
                .filter_map(|(district, (counted, issued))| {
                    Some(DistrictTurnoutView {
                        district: district?,
                        turnout: *counted,
                        credentials_issued: Some(*issued),
                    })
                })
                .collect(),
        ),
        None => ("resident_attestation", attested_districts(poll)),
    };
    Ok(counted_view(tally, basis, districts))
}

fn counted_view(tally: TallyView, basis: &str, districts: Vec<DistrictTurnoutView>) -> TurnoutView {
    let in_districts: u64 = districts.iter().map(|district| district.turnout).sum();
    TurnoutView {
        poll: tally.poll,
        turnout: tally.turnout,
        is_final: tally.is_final,
        basis: basis.into(),
        districts,
        // Each voter is counted under one district at most, so this never goes below zero.
        unattested: tally.turnout.saturating_sub(in_districts),
        log_size: tally.log_size,
    }
}

/// The district of each of an anonymous poll's issuer keys, in the definition's order: a
/// district audience's names, or one key without a district.
fn issuer_districts(poll: &Poll) -> Vec<Option<String>> {
    match &poll.definition.audience {
        Audience::Districts { districts } => districts.iter().cloned().map(Some).collect(),
        Audience::Everyone | Audience::Verified => vec![None],
    }
}

/// Counted voters per district of a poll of signed ballots, as the fold keeps them: by the
/// district each voter's key was attested in when their first counted ballot went in. A read
/// of the poll alone, so asking never holds the ledger for a pass over every resident (which
/// would stall the writer's publishing behind a public read).
fn attested_districts(poll: &Poll) -> Vec<DistrictTurnoutView> {
    let mut counts: BTreeMap<String, u64> = match &poll.definition.audience {
        Audience::Districts { districts } => districts
            .iter()
            .map(|district| (district.clone(), 0))
            .collect(),
        Audience::Everyone | Audience::Verified => BTreeMap::new(),
    };
    for (district, turnout) in &poll.turnout_by_district {
        counts.insert(district.clone(), *turnout);
    }
    counts
        .into_iter()
        .map(|(district, turnout)| DistrictTurnoutView {
            district,
            turnout,
            credentials_issued: None,
        })
        .collect()
}
