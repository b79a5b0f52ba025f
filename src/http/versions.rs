//! Poll versions: every definition a poll has had, the opening's and each correction's, read
//! publicly so a correction is never silent.

use actix_web::{get, web};
use projections::command::TallyVisibility;
use projections::ledger::polls::PollVersion;
use projections::{Poll, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::Reply;
use crate::node::Node;

/// One version of a poll's definition: the fields a correction may change, and the entry that
/// made it. The other fields (audience, choice kind, opening time, vote changes, tally
/// visibility, anonymity) are the same in every version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollVersionView {
    /// 1 for the opening, then one more for each correction.
    pub version: u32,
    /// Log position of the entry that made it: the `open_poll`, then each `correct_poll`.
    pub position: u64,
    #[schema(value_type = String, format = DateTime)]
    pub server_time: Timestamp,
    /// True once a later version replaced it.
    pub replaced: bool,
    /// Ballots the correction that made this version voided (it changed the options or
    /// `max_choices`); 0 for version 1 and for a correction of wording or closing time. `null`
    /// while a sealed poll is open: the count would tell its running turnout.
    pub ballots_voided: Option<u64>,
    pub title: String,
    pub description: String,
    pub options: Vec<String>,
    pub max_choices: u32,
    #[schema(value_type = String, format = DateTime)]
    pub closes_at: Timestamp,
}

impl PollVersionView {
    fn of(poll: &Poll, version: &PollVersion<'_>) -> PollVersionView {
        let definition = version.definition;
        let sealed =
            poll.closed.is_none() && poll.definition.tally_visibility == TallyVisibility::Sealed;
        PollVersionView {
            version: version.version,
            position: version.position,
            server_time: version.server_time,
            replaced: version.replaced,
            ballots_voided: (!sealed).then_some(version.ballots_voided),
            title: definition.title.clone(),
            description: definition.description.clone(),
            options: definition.options.clone(),
            max_choices: definition.max_choices,
            closes_at: definition.closes_at,
        }
    }

    /// Every version of `poll`, oldest first.
    pub(crate) fn all_of(poll: &Poll) -> Vec<PollVersionView> {
        poll.versions()
            .iter()
            .map(|version| PollVersionView::of(poll, version))
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionPath {
    poll: u64,
    version: u32,
}

/// One version of a poll's definition; every version stays readable after a correction.
#[utoipa::path(tag = "polls",
    params(("poll" = u64, Path, description = "Poll identifier"),
        ("version" = u32, Path, description = "Version number, 1 for the opening")),
    responses((status = 200, body = PollVersionView), ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/polls/{poll}/versions/{version}")]
pub async fn get_poll_version(
    node: web::Data<Node>,
    path: web::Path<VersionPath>,
) -> Reply<PollVersionView> {
    let ledger = node.proven_ledger()?;
    // The same lookup and problem as `reads::find_poll`, which `reads` (holding the poll view that
    // lists these versions) cannot lend without a cycle between the two modules.
    let poll = ledger
        .polls
        .get(&path.poll)
        .ok_or_else(|| ApiError::NotFound(format!("poll {}", path.poll)))?;
    let versions = poll.versions();
    let version = versions
        .iter()
        .find(|version| version.version == path.version)
        .ok_or_else(|| {
            ApiError::NotFound(format!("version {} of poll {}", path.version, path.poll))
        })?;
    Ok(web::Json(PollVersionView::of(poll, version)))
}
