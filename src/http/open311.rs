//! Open311 GeoReport v2 (JSON, read-only): services from the catalogue, requests from complaints,
//! so existing Open311 clients can read veche's complaints. Writes stay signed, through `/v1`.

use actix_web::{get, web};
use projections::complaints::{Complaint, ComplaintStatus};
use projections::time::DAY_MS;
use projections::{Ledger, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::content::{filled, HoldsContent, Served};
use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::Reply;
use crate::node::Node;

#[derive(Serialize, ToSchema)]
pub struct Service {
    pub service_code: String,
    pub service_name: String,
    pub description: String,
    /// No extra attributes are asked for.
    pub metadata: bool,
    #[serde(rename = "type")]
    pub service_type: String,
    pub keywords: String,
    /// The responsible department.
    pub group: String,
}

/// The catalogue as Open311 services.
#[utoipa::path(tag = "open311", responses((status = 200, body = Vec<Service>), ProblemStatus<503>))]
#[get("/open311/v2/services.json")]
pub async fn services(node: web::Data<Node>) -> Reply<Vec<Service>> {
    let ledger = node.proven_ledger()?;
    Ok(web::Json(
        ledger
            .categories
            .values()
            .map(|record| Service {
                service_code: record.current.id.clone(),
                service_name: record.current.name.clone(),
                description: format!(
                    "{} answers within {} working days",
                    record.current.department, record.current.sla_working_days
                ),
                metadata: false,
                service_type: "realtime".into(),
                keywords: String::new(),
                group: record.current.department.clone(),
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ServiceRequest {
    pub service_request_id: String,
    /// `open` or `closed`.
    pub status: String,
    pub status_notes: Option<String>,
    pub service_name: Option<String>,
    pub service_code: String,
    /// From the content store; a placeholder naming the commitment when this node holds none.
    #[schema(value_type = String)]
    pub description: Served,
    pub agency_responsible: Option<String>,
    pub service_notice: Option<String>,
    pub requested_datetime: String,
    pub updated_datetime: String,
    /// The SLA deadline once the complaint is accepted.
    pub expected_datetime: Option<String>,
    /// From the content store, as the description.
    #[schema(value_type = String)]
    pub address: Served,
    /// On the public 0.001-degree grid.
    pub lat: f64,
    pub long: f64,
    /// The first attachment's URL, from the content store; its SHA-256 is in the veche log.
    #[schema(value_type = Option<String>)]
    pub media_url: Option<Served>,
}

impl HoldsContent for ServiceRequest {
    fn served(&mut self) -> Vec<&mut Served> {
        let mut served = vec![&mut self.description, &mut self.address];
        served.extend(self.media_url.as_mut());
        served
    }
}

fn is_open(status: ComplaintStatus) -> bool {
    !matches!(
        status,
        ComplaintStatus::Resolved
            | ComplaintStatus::Confirmed
            | ComplaintStatus::ClosedUnconfirmed
            | ComplaintStatus::CannotResolve
            | ComplaintStatus::Rejected
            | ComplaintStatus::Merged
    )
}

fn status_notes(complaint: &Complaint) -> String {
    let status = complaint.status.name().replace('_', " ");
    match complaint.timeline.last().and_then(|step| step.note.clone()) {
        Some(note) => format!("{status}: {note}"),
        None => status,
    }
}

fn service_request(ledger: &Ledger, complaint: &Complaint) -> ServiceRequest {
    let updated = complaint
        .timeline
        .last()
        .map_or(complaint.filed_at, |step| step.at);
    ServiceRequest {
        service_request_id: complaint.id.to_string(),
        status: if is_open(complaint.status) {
            "open"
        } else {
            "closed"
        }
        .into(),
        status_notes: Some(status_notes(complaint)),
        service_name: ledger
            .categories
            .get(&complaint.filing.category)
            .map(|record| record.current.name.clone()),
        service_code: complaint.filing.category.clone(),
        description: Served::of(complaint.filing.description),
        agency_responsible: complaint.department.clone(),
        service_notice: None,
        requested_datetime: complaint.filed_at.to_rfc3339(),
        updated_datetime: updated.to_rfc3339(),
        expected_datetime: complaint.deadline.map(Timestamp::to_rfc3339),
        address: Served::of(complaint.filing.location.address),
        lat: complaint.filing.location.latitude.0,
        long: complaint.filing.location.longitude.0,
        media_url: complaint
            .filing
            .attachments
            .first()
            .map(|attachment| Served::of(attachment.url)),
    }
}

#[derive(Deserialize, IntoParams)]
pub struct RequestsQuery {
    /// Comma-separated request ids; when given, the other filters are ignored.
    pub service_request_id: Option<String>,
    /// Comma-separated service codes (categories).
    pub service_code: Option<String>,
    /// Earliest `requested_datetime`, RFC 3339 (default: 90 days before `end_date`).
    pub start_date: Option<String>,
    /// Latest `requested_datetime`, RFC 3339 (default: now).
    pub end_date: Option<String>,
    /// `open` or `closed`, or both comma-separated.
    pub status: Option<String>,
    /// Accepted for compatibility; veche serves one jurisdiction.
    pub jurisdiction_id: Option<String>,
}

fn parse_date(name: &str, text: Option<&String>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|text| {
        Timestamp::parse_rfc3339(text)
            .ok_or_else(|| ApiError::MalformedRequest(format!("{name} {text:?} is not RFC 3339")))
    })
    .transpose()
}

/// Service requests, newest first, at most 1,000; by default those of the last 90 days.
#[utoipa::path(tag = "open311", params(RequestsQuery),
    responses((status = 200, body = Vec<ServiceRequest>), ProblemStatus<400>, ProblemStatus<503>))]
#[get("/open311/v2/requests.json")]
pub async fn requests(
    node: web::Data<Node>,
    query: web::Query<RequestsQuery>,
) -> Reply<Vec<ServiceRequest>> {
    let found = find_requests(&node, &query)?;
    Ok(web::Json(filled(&node, found).await?))
}

/// The service requests `query` asks for, their committed fields not yet filled.
fn find_requests(node: &Node, query: &RequestsQuery) -> Result<Vec<ServiceRequest>, ApiError> {
    let ledger = node.proven_ledger()?;
    if let Some(ids) = &query.service_request_id {
        let mut found = Vec::new();
        for id in ids
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .take(projections::limits::OPEN311_REQUESTS_PAGE_ITEMS_MAX)
        {
            let id: u64 = id.parse().map_err(|_| {
                ApiError::MalformedRequest(format!("service_request_id {id:?} is not a number"))
            })?;
            if let Some(complaint) = ledger.complaints.get(&id) {
                found.push(service_request(&ledger, complaint));
            }
        }
        return Ok(found);
    }
    let end =
        parse_date("end_date", query.end_date.as_ref())?.unwrap_or_else(|| node.clock().now());
    let start = parse_date("start_date", query.start_date.as_ref())?.unwrap_or_else(|| {
        end.plus_milliseconds(-projections::limits::OPEN311_REQUESTS_WINDOW_DAYS_DEFAULT * DAY_MS)
    });
    let codes: Option<Vec<&str>> = query
        .service_code
        .as_deref()
        .map(|codes| codes.split(',').map(str::trim).collect());
    let (want_open, want_closed) = match query.status.as_deref() {
        None => (true, true),
        Some(text) => {
            let wanted: Vec<&str> = text.split(',').map(str::trim).collect();
            if wanted
                .iter()
                .any(|status| *status != "open" && *status != "closed")
            {
                return Err(ApiError::MalformedRequest(
                    "status is open, closed, or both".into(),
                ));
            }
            (wanted.contains(&"open"), wanted.contains(&"closed"))
        }
    };
    let found = ledger
        .complaints
        .values()
        .rev()
        .filter(|complaint| complaint.filed_at >= start && complaint.filed_at <= end)
        .filter(|complaint| {
            codes
                .as_ref()
                .is_none_or(|codes| codes.contains(&complaint.filing.category.as_str()))
        })
        .filter(|complaint| {
            if is_open(complaint.status) {
                want_open
            } else {
                want_closed
            }
        })
        .take(projections::limits::OPEN311_REQUESTS_PAGE_ITEMS_MAX)
        .map(|complaint| service_request(&ledger, complaint))
        .collect();
    Ok(found)
}

/// One service request, as a one-element array (the spec's shape).
#[utoipa::path(tag = "open311",
    params(("service_request_id" = u64, Path, description = "Complaint identifier")),
    responses((status = 200, body = Vec<ServiceRequest>), ProblemStatus<404>, ProblemStatus<503>))]
#[get("/open311/v2/requests/{service_request_id}.json")]
pub async fn request(node: web::Data<Node>, id: web::Path<u64>) -> Reply<Vec<ServiceRequest>> {
    let found = {
        let ledger = node.proven_ledger()?;
        let complaint = ledger
            .complaints
            .get(&id)
            .ok_or_else(|| ApiError::NotFound(format!("service request {id}")))?;
        vec![service_request(&ledger, complaint)]
    };
    Ok(web::Json(filled(&node, found).await?))
}
