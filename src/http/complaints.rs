//! "Our City" complaints: filing, lifecycle events, queues, timelines and statistics.

use actix_web::{get, post, web, HttpResponse};
use projections::complaints::{Complaint, ComplaintStatus, TimelineStep};
use projections::statistics::{complaint_statistics, StatisticsReport};
use projections::PublicKey;
use projections::{Action, Command, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::commands::{lifecycle_event, Location, Submission, Written};
use crate::http::content::{filled, HoldsContent, Served};
use crate::http::page::{Listed, Listing, Page};
use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::reads::{page_size, PageQuery};
use crate::http::EnvelopeSchema;
use crate::http::{Answer, Reply};
use crate::node::Node;

/// File a complaint. The payload's action is `file_complaint`; the complaint's id is the
/// receipt's position.
#[utoipa::path(tag = "complaints", request_body = EnvelopeSchema, responses(Written))]
#[post("/v1/complaints")]
pub async fn file_complaint(submission: Submission) -> Answer {
    let location = |_: &Command| Ok(Location::NewItemOf("/v1/complaints"));
    submission.accept(Some("file_complaint"), location).await
}

/// Move a complaint along its lifecycle: `triage_complaint`, `merge_complaint`,
/// `supplement_complaint` (moderator, author), `start_work`, `resolve_complaint`,
/// `cannot_resolve` (official of the responsible department), `confirm_resolution`,
/// `dispute_resolution` (author). The payload's `complaint` must equal the path's.
#[utoipa::path(tag = "complaints", request_body = EnvelopeSchema, responses(Written),
    params(("complaint" = u64, Path, description = "Complaint identifier")))]
#[post("/v1/complaints/{complaint}/events")]
pub async fn complaint_event(submission: Submission, complaint: web::Path<u64>) -> Answer {
    lifecycle_event(submission, Action::complaint, *complaint, "complaints").await
}

#[derive(Serialize, ToSchema)]
pub struct ComplaintView {
    pub id: u64,
    pub author: String,
    pub category: String,
    /// The citizen's words, from the content store (a placeholder naming the commitment when
    /// this node holds none).
    #[schema(value_type = String)]
    pub description: Served,
    /// Latitude and longitude on the public 0.001-degree grid, the address from the content
    /// store, the district.
    #[schema(value_type = Object)]
    pub location: LocationView,
    #[schema(value_type = Vec<Object>)]
    pub attachments: Vec<AttachmentView>,
    /// filed, needs_info, accepted, in_progress, resolved, cannot_resolve, confirmed,
    /// closed_unconfirmed, rejected or merged.
    #[schema(value_type = String)]
    pub status: ComplaintStatus,
    pub department: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub filed_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub accepted_at: Option<Timestamp>,
    /// Acceptance plus the category's SLA in working days.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub confirmation_deadline: Option<Timestamp>,
    pub sla_breached: bool,
    /// Open and due within a day, or past its deadline.
    pub sla_at_risk: bool,
    pub disputes: u32,
    #[schema(value_type = Option<Object>)]
    pub rejection: Option<projections::command::RejectionReason>,
    pub merged_into: Option<u64>,
    pub merged_from: Vec<u64>,
    pub answer: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub evidence: Vec<AttachmentView>,
    #[schema(value_type = Vec<Object>)]
    pub timeline: Vec<TimelineStepView>,
}

/// One step of a complaint's timeline as served: its note is an official's or moderator's public
/// words, or the author's own words (a supplement, a dispute) filled in from the content store.
#[derive(Serialize)]
pub struct TimelineStepView {
    pub position: u64,
    pub at: Timestamp,
    pub action: String,
    pub actor: PublicKey,
    pub status: ComplaintStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Note>,
}

/// A timeline note: in the clear in the log, or committed and served beside it.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Note {
    Clear(String),
    Committed(Served),
}

impl TimelineStepView {
    fn of(step: &TimelineStep) -> TimelineStepView {
        let note = match (&step.note, step.committed_note) {
            (None, Some(commitment)) => Some(Note::Committed(Served::of(commitment))),
            (Some(text), None) => Some(Note::Clear(text.clone())),
            (None, None) => None,
            (Some(_), Some(_)) => unreachable!("a timeline step's note is committed or clear"),
        };
        TimelineStepView {
            position: step.position,
            at: step.at,
            action: step.action.to_string(),
            actor: step.actor,
            status: step.status,
            note,
        }
    }
}

impl HoldsContent for ComplaintView {
    fn served(&mut self) -> Vec<&mut Served> {
        let mut served = vec![&mut self.description, &mut self.location.address];
        let attachments = self.attachments.iter_mut().chain(&mut self.evidence);
        served.extend(attachments.map(|attachment| &mut attachment.url));
        served.extend(
            self.timeline
                .iter_mut()
                .filter_map(|step| match &mut step.note {
                    Some(Note::Committed(note)) => Some(note),
                    Some(Note::Clear(_)) | None => None,
                }),
        );
        served
    }
}

/// A complaint's location as served: the public grid point, the address from the content store.
#[derive(Serialize)]
pub struct LocationView {
    pub latitude: f64,
    pub longitude: f64,
    pub address: Served,
    pub district: String,
}

impl LocationView {
    fn of(location: &projections::command::Location) -> LocationView {
        LocationView {
            latitude: location.latitude.0,
            longitude: location.longitude.0,
            address: Served::of(location.address),
            district: location.district.clone(),
        }
    }
}

/// A photo or document as served: its hash from the log, its URL from the content store.
#[derive(Serialize)]
pub struct AttachmentView {
    pub sha256: String,
    pub url: Served,
}

impl AttachmentView {
    fn all(attachments: &[projections::command::Attachment]) -> Vec<AttachmentView> {
        let view = |attachment: &projections::command::Attachment| AttachmentView {
            sha256: attachment.sha256.clone(),
            url: Served::of(attachment.url),
        };
        attachments.iter().map(view).collect()
    }
}

pub type ComplaintPage = Page<ComplaintView>;

impl Listed for ComplaintView {
    const LISTING: Listing = Listing::new("ComplaintPage", "complaints", "next_after");
}

impl ComplaintView {
    pub fn of(complaint: &Complaint, now: Timestamp) -> ComplaintView {
        ComplaintView {
            id: complaint.id,
            author: complaint.author.to_hex(),
            category: complaint.filing.category.clone(),
            description: Served::of(complaint.filing.description),
            location: LocationView::of(&complaint.filing.location),
            attachments: AttachmentView::all(&complaint.filing.attachments),
            status: complaint.status,
            department: complaint.department.clone(),
            filed_at: complaint.filed_at,
            accepted_at: complaint.accepted_at,
            deadline: complaint.deadline,
            resolved_at: complaint.resolved_at,
            confirmation_deadline: complaint.confirmation_deadline,
            sla_breached: complaint.sla_breached,
            sla_at_risk: complaint.sla_at_risk(now),
            disputes: complaint.disputes,
            rejection: complaint.rejection.clone(),
            merged_into: complaint.merged_into,
            merged_from: complaint.merged_from.clone(),
            answer: complaint.answer.clone(),
            evidence: AttachmentView::all(&complaint.evidence),
            timeline: complaint
                .timeline
                .iter()
                .map(TimelineStepView::of)
                .collect(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ComplaintQuery {
    /// Only complaints in this status, e.g. `filed` for the moderator queue.
    pub status: Option<String>,
    pub category: Option<String>,
    pub district: Option<String>,
    pub department: Option<String>,
    /// Only complaints open and due within a day or already late.
    pub sla_at_risk: Option<bool>,
    /// Only complaints filed at least this many hours before the server's time, 0 to 87,840:
    /// the moderator's "waiting longer than" filter.
    #[param(minimum = 0, maximum = 87840)]
    pub older_than_hours: Option<u32>,
    /// Only complaints filed less than this many hours before the server's time, 1 to 87,840.
    #[param(minimum = 1, maximum = 87840)]
    pub newer_than_hours: Option<u32>,
    /// Return complaints filed after this one (exclusive), 0 to 2^64 − 1.
    #[param(format = "uint64", minimum = 0)]
    pub after: Option<u64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

fn parse_status(text: &str) -> Result<ComplaintStatus, ApiError> {
    [
        ComplaintStatus::Filed,
        ComplaintStatus::NeedsInfo,
        ComplaintStatus::Accepted,
        ComplaintStatus::InProgress,
        ComplaintStatus::Resolved,
        ComplaintStatus::CannotResolve,
        ComplaintStatus::Confirmed,
        ComplaintStatus::ClosedUnconfirmed,
        ComplaintStatus::Rejected,
        ComplaintStatus::Merged,
    ]
    .into_iter()
    .find(|status| status.name() == text)
    .ok_or_else(|| ApiError::MalformedRequest(format!("unknown complaint status {text:?}")))
}

/// Lists complaints oldest first by cursor, filtered by `keep`.
fn page(
    node: &Node,
    after: Option<u64>,
    limit: Option<usize>,
    keep: impl Fn(&Complaint, Timestamp) -> bool,
) -> Result<ComplaintPage, ApiError> {
    let size = page_size(limit, 20, projections::limits::LIST_PAGE_ITEMS_MAX)?;
    let now = node.clock().now();
    let ledger = node.proven_ledger()?;
    let start = after.map_or(0, |after| after.saturating_add(1));
    let complaints = ledger
        .complaints
        .range(start..)
        .map(|(_, complaint)| complaint)
        .filter(|complaint| keep(complaint, now))
        .map(|complaint| ComplaintView::of(complaint, now));
    Ok(Page::first(complaints, size, |complaint| complaint.id))
}

/// Complaints, oldest first: with `status=filed` this is the moderator queue. Filters combine.
#[utoipa::path(tag = "complaints", params(ComplaintQuery),
    responses((status = 200, body = ComplaintPage), ProblemStatus<400>, ProblemStatus<503>))]
#[get("/v1/complaints")]
pub async fn list_complaints(
    node: web::Data<Node>,
    query: web::Query<ComplaintQuery>,
) -> Reply<ComplaintPage> {
    let status = query.status.as_deref().map(parse_status).transpose()?;
    let age = AgeFilter::of(&query)?;
    let query = query.into_inner();
    let page = page(&node, query.after, query.limit, |complaint, now| {
        status.is_none_or(|status| complaint.status == status)
            && query
                .category
                .as_ref()
                .is_none_or(|category| &complaint.filing.category == category)
            && query
                .district
                .as_ref()
                .is_none_or(|district| &complaint.filing.location.district == district)
            && query
                .department
                .as_ref()
                .is_none_or(|department| complaint.department.as_ref() == Some(department))
            && query
                .sla_at_risk
                .is_none_or(|at_risk| complaint.sla_at_risk(now) == at_risk)
            && age.keeps(complaint.filed_at, now)
    })?;
    Ok(web::Json(filled(&node, page).await?))
}

/// A listing's bounds on a complaint's age (the server's time less its filing time), in
/// milliseconds: at least `older_than`, and less than `newer_than`.
struct AgeFilter {
    older_than: Option<i64>,
    newer_than: Option<i64>,
}

impl AgeFilter {
    fn of(query: &ComplaintQuery) -> Result<AgeFilter, ApiError> {
        let milliseconds = |name: &str, hours: Option<u32>, least: u32| match hours {
            None => Ok(None),
            Some(hours)
                if (least..=projections::limits::COMPLAINT_AGE_FILTER_HOURS_MAX)
                    .contains(&hours) =>
            {
                Ok(Some(i64::from(hours) * (projections::time::DAY_MS / 24)))
            }
            Some(hours) => Err(ApiError::MalformedRequest(format!(
                "{name} is {least} to {} hours, not {hours}",
                projections::limits::COMPLAINT_AGE_FILTER_HOURS_MAX
            ))),
        };
        Ok(AgeFilter {
            older_than: milliseconds("older_than_hours", query.older_than_hours, 0)?,
            newer_than: milliseconds("newer_than_hours", query.newer_than_hours, 1)?,
        })
    }

    fn keeps(&self, filed_at: Timestamp, now: Timestamp) -> bool {
        let age = now.milliseconds().saturating_sub(filed_at.milliseconds());
        self.older_than.is_none_or(|least| age >= least)
            && self.newer_than.is_none_or(|most| age < most)
    }
}

/// A department's queue: complaints routed to it that await its work, oldest first.
#[utoipa::path(tag = "complaints",
    params(("department" = String, Path, description = "Department name"), PageQuery),
    responses((status = 200, body = ComplaintPage), ProblemStatus<400>, ProblemStatus<503>))]
#[get("/v1/departments/{department}/complaints")]
pub async fn department_queue(
    node: web::Data<Node>,
    department: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Reply<ComplaintPage> {
    let department = department.into_inner();
    let page = page(&node, query.after, query.limit, |complaint, _| {
        complaint.status.awaits_department() && complaint.department.as_ref() == Some(&department)
    })?;
    Ok(web::Json(filled(&node, page).await?))
}

/// One complaint with its whole public timeline.
#[utoipa::path(tag = "complaints",
    params(("complaint" = u64, Path, description = "Complaint identifier")),
    responses((status = 200, body = ComplaintView), ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/complaints/{complaint}")]
pub async fn get_complaint(
    node: web::Data<Node>,
    complaint: web::Path<u64>,
) -> Reply<ComplaintView> {
    let now = node.clock().now();
    // The ledger's lock ends with the statement, before the content read.
    let found = node
        .proven_ledger()?
        .complaints
        .get(&complaint)
        .map(|complaint| ComplaintView::of(complaint, now));
    let view = found.ok_or_else(|| ApiError::NotFound(format!("complaint {complaint}")))?;
    Ok(web::Json(filled(&node, view).await?))
}

/// Complaint statistics overall and by district, category, department and month of filing.
/// `resolved` counts resolutions the author has not confirmed; `confirmed` counts only those
/// the author confirmed. Definitions: docs/STATISTICS.md. The `X-Veche-Log-Size` header names
/// the number of log entries the report is computed from, so `veche verify` can recount at
/// exactly that point.
#[utoipa::path(tag = "complaints",
    responses((status = 200, body = Object, description = "projections::statistics::StatisticsReport",
        headers(("X-Veche-Log-Size" = u64, description = "Log entries the report is computed from"))),
        ProblemStatus<503>))]
#[get("/v1/statistics/complaints")]
pub async fn statistics(node: web::Data<Node>) -> Result<HttpResponse, ApiError> {
    let (report, size): (StatisticsReport, u64) = {
        let ledger = node.proven_ledger()?;
        (complaint_statistics(&ledger), ledger.size)
    };
    Ok(HttpResponse::Ok()
        .insert_header(("X-Veche-Log-Size", size.to_string()))
        .json(report))
}
