//! Crowdsourced proposals: submission, lifecycle events, lists with sort orders, one proposal.

use actix_web::{get, post, web};
use projections::proposals::{OfficialAnswer, Proposal, ProposalStatus, SupportStep};
use projections::{Action, Command, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::commands::{lifecycle_event, Location, Submission, Written};
use crate::http::content::{filled, HoldsContent, Served};
use crate::http::page::{Listed, Listing, Page};
use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::reads::page_size;
use crate::http::EnvelopeSchema;
use crate::http::{Answer, Reply};
use crate::node::Node;

/// Submit a proposal. The payload's action is `submit_proposal`; the proposal's id is the
/// receipt's position.
#[utoipa::path(tag = "proposals", request_body = EnvelopeSchema, responses(Written))]
#[post("/v1/proposals")]
pub async fn submit_proposal(submission: Submission) -> Answer {
    let location = |_: &Command| Ok(Location::NewItemOf("/v1/proposals"));
    submission.accept(Some("submit_proposal"), location).await
}

/// Move a proposal along its lifecycle: `moderate_proposal` (moderator), `support_proposal`,
/// `withdraw_support` (citizens), `answer_proposal` (official of the category's department),
/// `withdraw_proposal` (author). The payload's `proposal` must equal the path's.
#[utoipa::path(tag = "proposals", request_body = EnvelopeSchema, responses(Written),
    params(("proposal" = u64, Path, description = "Proposal identifier")))]
#[post("/v1/proposals/{proposal}/events")]
pub async fn proposal_event(submission: Submission, proposal: web::Path<u64>) -> Answer {
    lifecycle_event(submission, Action::proposal, *proposal, "proposals").await
}

#[derive(Serialize, ToSchema)]
pub struct ProposalView {
    pub id: u64,
    pub author: String,
    /// The author's words, from the content store (a placeholder naming the commitment when this
    /// node holds none).
    #[schema(value_type = String)]
    pub title: Served,
    #[schema(value_type = String)]
    pub body: Served,
    pub category: String,
    pub district: Option<String>,
    /// submitted, published, rejected, under_review, accepted, declined, implemented,
    /// withdrawn or expired.
    #[schema(value_type = String)]
    pub status: ProposalStatus,
    pub department: String,
    #[schema(value_type = String, format = DateTime)]
    pub submitted_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    pub support_threshold: u64,
    pub supports: u64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub reached_threshold_at: Option<Timestamp>,
    pub rejection_reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub answer: Option<OfficialAnswer>,
    /// The support count after each support or withdrawal.
    #[schema(value_type = Vec<Object>)]
    pub support_history: Vec<SupportStep>,
}

impl HoldsContent for ProposalView {
    fn served(&mut self) -> Vec<&mut Served> {
        vec![&mut self.title, &mut self.body]
    }
}

pub type ProposalPage = Page<ProposalView, String>;

impl Listed for ProposalView {
    const LISTING: Listing = Listing::new("ProposalPage", "proposals", "next_cursor");
}

impl ProposalView {
    fn of(proposal: &Proposal) -> ProposalView {
        ProposalView {
            id: proposal.id,
            author: proposal.author.to_hex(),
            title: Served::of(proposal.submission.title),
            body: Served::of(proposal.submission.body),
            category: proposal.submission.category.clone(),
            district: proposal.submission.district.clone(),
            status: proposal.status,
            department: proposal.department.clone(),
            submitted_at: proposal.submitted_at,
            published_at: proposal.published_at,
            expires_at: proposal.expires_at,
            support_threshold: proposal.support_threshold,
            supports: proposal.supports(),
            reached_threshold_at: proposal.reached_threshold_at,
            rejection_reason: proposal.rejection_reason.clone(),
            answer: proposal.answer.clone(),
            support_history: proposal.support_history.clone(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProposalQuery {
    pub status: Option<String>,
    pub category: Option<String>,
    pub district: Option<String>,
    /// `newest` (default), `supports`, or `trending` (supports gained in the last 7 days).
    pub sort: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

/// Proposals, filtered and sorted, by keyset cursor. Ties break by id, newest first.
#[utoipa::path(tag = "proposals", params(ProposalQuery),
    responses((status = 200, body = ProposalPage), ProblemStatus<400>, ProblemStatus<503>))]
#[get("/v1/proposals")]
pub async fn list_proposals(
    node: web::Data<Node>,
    query: web::Query<ProposalQuery>,
) -> Reply<ProposalPage> {
    let size = page_size(query.limit, 20, projections::limits::LIST_PAGE_ITEMS_MAX)?;
    let status = match query.status.as_deref() {
        Some(text) => Some(ProposalStatus::parse(text).ok_or_else(|| {
            ApiError::MalformedRequest(format!("unknown proposal status {text:?}"))
        })?),
        None => None,
    };
    let now = node.clock().now();
    let sort_key: fn(&Proposal, Timestamp) -> i64 = match query.sort.as_deref().unwrap_or("newest")
    {
        "newest" => |proposal, _| proposal.submitted_at.0,
        "supports" => |proposal, _| proposal.supports() as i64,
        "trending" => |proposal, now| proposal.trending_score(now),
        other => {
            return Err(ApiError::MalformedRequest(format!(
                "unknown sort {other:?}: use newest, supports or trending"
            )))
        }
    };
    // A cursor is the last item's sort key and id: the next page starts strictly below it.
    let cursor = match query.cursor.as_deref() {
        Some(text) => Some(parse_cursor(text)?),
        None => None,
    };
    // The ledger is read in a block of its own: its lock is released before the content read.
    let page = {
        let ledger = node.proven_ledger()?;
        let mut keyed: Vec<((i64, u64), &Proposal)> = ledger
            .proposals
            .values()
            .filter(|proposal| {
                status.is_none_or(|status| proposal.status == status)
                    && query
                        .category
                        .as_ref()
                        .is_none_or(|category| &proposal.submission.category == category)
                    && query.district.as_ref().is_none_or(|district| {
                        proposal.submission.district.as_ref() == Some(district)
                    })
            })
            .map(|proposal| ((sort_key(proposal, now), proposal.id), proposal))
            .filter(|(key, _)| cursor.is_none_or(|cursor| *key < cursor))
            .collect();
        keyed.sort_by_key(|(key, _)| std::cmp::Reverse(*key));
        let next = (keyed.len() > size).then(|| {
            let (score, id) = keyed[size - 1].0;
            format!("{score}.{id}")
        });
        let items = keyed
            .into_iter()
            .take(size)
            .map(|(_, proposal)| ProposalView::of(proposal))
            .collect();
        Page { items, next }
    };
    Ok(web::Json(filled(&node, page).await?))
}

fn parse_cursor(text: &str) -> Result<(i64, u64), ApiError> {
    let malformed = || ApiError::MalformedRequest(format!("malformed cursor {text:?}"));
    let (score, id) = text.rsplit_once('.').ok_or_else(malformed)?;
    Ok((
        score.parse().map_err(|_| malformed())?,
        id.parse().map_err(|_| malformed())?,
    ))
}

/// One proposal with its support history and answer.
#[utoipa::path(tag = "proposals",
    params(("proposal" = u64, Path, description = "Proposal identifier")),
    responses((status = 200, body = ProposalView), ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/proposals/{proposal}")]
pub async fn get_proposal(node: web::Data<Node>, proposal: web::Path<u64>) -> Reply<ProposalView> {
    // The ledger's lock ends with the statement, before the content read.
    let found = node
        .proven_ledger()?
        .proposals
        .get(&proposal)
        .map(ProposalView::of);
    let view = found.ok_or_else(|| ApiError::NotFound(format!("proposal {proposal}")))?;
    Ok(web::Json(filled(&node, view).await?))
}
