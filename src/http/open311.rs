//! Open311 GeoReport v2 over veche's catalogue and complaints, in XML and JSON as the path's
//! extension says: discovery, services, service definitions, requests (every standard filter)
//! and one request; errors as GeoReport's `<errors>` document in the same format. Residents'
//! writes stay signed, through `/v1`; a gateway's `POST requests` is in `open311_gateway.rs`.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use projections::complaints::{Complaint, ComplaintStatus};
use projections::time::DAY_MS;
use projections::{Ledger, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, ToSchema};

use crate::http::content::{filled, HoldsContent, Served};
use crate::http::problem::ApiError;
use crate::node::Node;

/// The two encodings GeoReport v2 defines, chosen by the path's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

impl Format {
    /// The format an extension names.
    pub fn parse(extension: &str) -> Option<Format> {
        match extension {
            "xml" => Some(Format::Xml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The answer to an extension that names no format: an error in XML (GeoReport's first
    /// format), since the client named no format veche speaks.
    pub fn unknown(extension: &str) -> HttpResponse {
        error_response(
            Format::Xml,
            StatusCode::NOT_FOUND,
            format!("format {extension:?} is not served: use .xml or .json"),
        )
    }

    /// `json` in JSON, or `xml` as the document element `root` in XML.
    pub fn respond<Json: Serialize, Xml: Serialize>(
        self,
        status: StatusCode,
        json: &Json,
        root: &str,
        xml: &Xml,
    ) -> HttpResponse {
        let mut response = HttpResponse::build(status);
        match self {
            Format::Json => response.json(json),
            Format::Xml => match quick_xml::se::to_string_with_root(root, xml) {
                Ok(document) => response
                    .content_type("text/xml; charset=utf-8")
                    .body(format!(
                        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{document}"
                    )),
                // Plain structs of strings, numbers and lists: nothing here fails to serialise, but
                // if it did the client hears so in the one format that cannot fail.
                Err(error) => {
                    tracing::error!(%error, root, "an Open311 document failed to serialise");
                    let status = StatusCode::INTERNAL_SERVER_ERROR;
                    error_response(Format::Json, status, error.to_string())
                }
            },
        }
    }

    /// `error` as GeoReport's error document in this format.
    pub fn error(self, error: &ApiError) -> HttpResponse {
        let (status, detail) = error.status_and_detail();
        error_response(self, status, detail)
    }
}

/// One error of GeoReport's error document: the HTTP status as its code, and what went wrong.
#[derive(Serialize, ToSchema)]
pub struct GeoReportError {
    pub code: u16,
    pub description: String,
}

/// The OpenAPI response of one GeoReport error status: the error document in XML or JSON, as
/// the path's extension asks. An operation lists one per status it can answer.
pub struct GeoReportErrors<const STATUS: u16>;

impl<const STATUS: u16> utoipa::IntoResponses for GeoReportErrors<STATUS> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let description = match STATUS {
            400 => "A field or filter that does not parse, or a required field missing",
            403 => {
                "The api_key names no gateway this node holds, or its key lacks the gateway role"
            }
            404 => "An unknown format (answered in XML), service code or request",
            409 => "The filing conflicts with the log's state",
            422 => "The filing breaks a rule of the log",
            429 => "Too many requests from this address or gateway",
            503 => "Overloaded, not ready or not proven yet: retry later",
            other => panic!("no GeoReport error is answered with status {other}"),
        };
        let errors = || {
            let list = ArrayBuilder::new().items(Ref::from_schema_name("GeoReportError"));
            Content::new(Some(RefOr::T(Schema::Array(list.build()))))
        };
        let response = ResponseBuilder::new()
            .description(description)
            .content("application/json", errors())
            .content("text/xml", errors());
        BTreeMap::from([(STATUS.to_string(), RefOr::T(response.build()))])
    }
}

#[derive(Serialize)]
struct ErrorsXml {
    error: Vec<GeoReportError>,
}

fn error_response(format: Format, status: StatusCode, description: String) -> HttpResponse {
    let errors = vec![GeoReportError {
        code: status.as_u16(),
        description,
    }];
    let mut response = HttpResponse::build(status);
    match format {
        Format::Json => response.json(&errors),
        Format::Xml => {
            let document =
                quick_xml::se::to_string_with_root("errors", &ErrorsXml { error: errors })
                    .unwrap_or_default();
            response
                .content_type("text/xml; charset=utf-8")
                .body(format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{document}"
                ))
        }
    }
}

/// Runs `answer` for the format the extension names, turning its error into GeoReport's.
async fn in_format<Answer>(extension: &str, answer: impl FnOnce(Format) -> Answer) -> HttpResponse
where
    Answer: std::future::Future<Output = Result<HttpResponse, ApiError>>,
{
    match Format::parse(extension) {
        Some(format) => answer(format)
            .await
            .unwrap_or_else(|error| format.error(&error)),
        None => Format::unknown(extension),
    }
}

/// The date this node's discovery document last changed: its endpoints and formats.
const DISCOVERY_CHANGESET: &str = "2026-12-07T00:00:00Z";

#[derive(Serialize, ToSchema)]
pub struct Discovery {
    pub changeset: String,
    pub contact: String,
    /// How a gateway obtains the `api_key` its `POST requests` sends.
    pub key_service: String,
    pub endpoints: Vec<DiscoveryEndpoint>,
}

#[derive(Serialize, ToSchema)]
pub struct DiscoveryEndpoint {
    pub specification: String,
    /// This node's GeoReport v2 base URL.
    pub url: String,
    pub changeset: String,
    #[serde(rename = "type")]
    pub endpoint_type: String,
    pub formats: Vec<String>,
}

#[derive(Serialize)]
struct DiscoveryXml<'a> {
    changeset: &'a str,
    contact: &'a str,
    key_service: &'a str,
    endpoints: EndpointsXml<'a>,
}

#[derive(Serialize)]
struct EndpointsXml<'a> {
    endpoint: Vec<EndpointXml<'a>>,
}

#[derive(Serialize)]
struct EndpointXml<'a> {
    specification: &'a str,
    url: &'a str,
    changeset: &'a str,
    #[serde(rename = "type")]
    endpoint_type: &'a str,
    formats: FormatsXml<'a>,
}

#[derive(Serialize)]
struct FormatsXml<'a> {
    format: &'a [String],
}

fn discovery_of(base_url: String) -> Discovery {
    Discovery {
        changeset: DISCOVERY_CHANGESET.into(),
        contact: "The operator of this veche node; complaints themselves are public in its log."
            .into(),
        key_service: "A gateway (a call centre, a reporting app) holds a registered key with \
                      the gateway role; the node's operator installs its key file, and \
                      `veche gateway-api-key --key FILE` prints its api_key (docs/PROTOCOL.md, \
                      Open311)."
            .into(),
        endpoints: vec![DiscoveryEndpoint {
            specification: "http://wiki.open311.org/GeoReport_v2".into(),
            url: base_url,
            changeset: DISCOVERY_CHANGESET.into(),
            endpoint_type: "production".into(),
            formats: vec!["text/xml".into(), "application/json".into()],
        }],
    }
}

/// Service discovery: this node's one GeoReport v2 endpoint and its formats.
#[utoipa::path(tag = "open311",
    params(("format" = String, Path, description = "`xml` or `json`")),
    responses((status = 200, description = "The discovery document", content((Discovery = "application/json"), (Discovery = "text/xml"))),
        GeoReportErrors<400>,
        GeoReportErrors<404>))]
#[get("/open311/v2/discovery.{format}")]
pub async fn discovery(asked: HttpRequest, format: web::Path<String>) -> HttpResponse {
    let connection = asked.connection_info().clone();
    let base_url = format!("{}://{}/open311/v2", connection.scheme(), connection.host());
    in_format(&format, |format| async move {
        let document = discovery_of(base_url);
        let endpoints: Vec<EndpointXml<'_>> = document
            .endpoints
            .iter()
            .map(|endpoint| EndpointXml {
                specification: &endpoint.specification,
                url: &endpoint.url,
                changeset: &endpoint.changeset,
                endpoint_type: &endpoint.endpoint_type,
                formats: FormatsXml {
                    format: &endpoint.formats,
                },
            })
            .collect();
        let xml = DiscoveryXml {
            changeset: &document.changeset,
            contact: &document.contact,
            key_service: &document.key_service,
            endpoints: EndpointsXml {
                endpoint: endpoints,
            },
        };
        Ok(format.respond(StatusCode::OK, &document, "discovery", &xml))
    })
    .await
}

#[derive(Serialize, ToSchema)]
pub struct Service {
    pub service_code: String,
    pub service_name: String,
    pub description: String,
    /// Whether the service definition lists attributes: always, since every filing names its
    /// district.
    pub metadata: bool,
    #[serde(rename = "type")]
    pub service_type: String,
    pub keywords: String,
    /// The responsible department.
    pub group: String,
}

#[derive(Serialize)]
struct ServicesXml<'a> {
    service: &'a [Service],
}

fn services_of(ledger: &Ledger) -> Vec<Service> {
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
            metadata: !filing_attributes().is_empty(),
            service_type: "realtime".into(),
            keywords: String::new(),
            group: record.current.department.clone(),
        })
        .collect()
}

/// The catalogue as Open311 services.
#[utoipa::path(tag = "open311",
    params(("format" = String, Path, description = "`xml` or `json`")),
    responses((status = 200, description = "The services", content((Vec<Service> = "application/json"), (Vec<Service> = "text/xml"))),
        GeoReportErrors<400>,
        GeoReportErrors<404>,
        GeoReportErrors<503>))]
#[get("/open311/v2/services.{format}")]
pub async fn services(node: web::Data<Node>, format: web::Path<String>) -> HttpResponse {
    in_format(&format, |format| async move {
        let services = services_of(&*node.proven_ledger()?);
        let xml = ServicesXml { service: &services };
        Ok(format.respond(StatusCode::OK, &services, "services", &xml))
    })
    .await
}

/// One attribute a service asks of a filing, as GeoReport's service definitions list them.
#[derive(Serialize, ToSchema)]
pub struct ServiceAttribute {
    /// Whether the client asks the resident for it.
    pub variable: bool,
    /// The form field is `attribute[code]`.
    pub code: String,
    /// `string`, `number`, `datetime`, `text`, `singlevaluelist` or `multivaluelist`.
    pub datatype: String,
    pub required: bool,
    pub datatype_description: String,
    pub order: u32,
    pub description: String,
}

/// The attributes every category's filing takes. The catalogue carries no attributes of its
/// own, so these are veche's: the district, which the statistics group by.
fn filing_attributes() -> Vec<ServiceAttribute> {
    vec![ServiceAttribute {
        variable: true,
        code: "district".into(),
        datatype: "string".into(),
        required: true,
        datatype_description: "The city district's name as the statistics group by".into(),
        order: 1,
        description: "Which district is the problem in?".into(),
    }]
}

#[derive(Serialize, ToSchema)]
pub struct ServiceDefinition {
    pub service_code: String,
    pub attributes: Vec<ServiceAttribute>,
}

#[derive(Serialize)]
struct ServiceDefinitionXml<'a> {
    service_code: &'a str,
    attributes: AttributesXml<'a>,
}

#[derive(Serialize)]
struct AttributesXml<'a> {
    attribute: &'a [ServiceAttribute],
}

/// One service's definition: the attributes a filing in its category takes.
#[utoipa::path(tag = "open311",
    params(("service_code" = String, Path, description = "A category id"),
        ("format" = String, Path, description = "`xml` or `json`")),
    responses((status = 200, description = "The service's definition",
            content((ServiceDefinition = "application/json"), (ServiceDefinition = "text/xml"))),
        GeoReportErrors<400>,
        GeoReportErrors<404>,
        GeoReportErrors<503>))]
#[get("/open311/v2/services/{service_code}.{format}")]
pub async fn service_definition(
    node: web::Data<Node>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (code, format) = path.into_inner();
    in_format(&format, |format| async move {
        require_service(&*node.proven_ledger()?, &code)?;
        let definition = ServiceDefinition {
            service_code: code,
            attributes: filing_attributes(),
        };
        let xml = ServiceDefinitionXml {
            service_code: &definition.service_code,
            attributes: AttributesXml {
                attribute: &definition.attributes,
            },
        };
        Ok(format.respond(StatusCode::OK, &definition, "service_definition", &xml))
    })
    .await
}

fn require_service(ledger: &Ledger, code: &str) -> Result<(), ApiError> {
    match ledger.categories.get(code) {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!(
            "service_code {code:?} is not in the catalogue"
        ))),
    }
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

#[derive(Serialize)]
struct RequestsXml<'a, Request> {
    request: &'a [Request],
}

/// `requests` as the format asks: GeoReport's `<service_requests>` in XML.
pub fn respond_requests<Request: Serialize>(
    format: Format,
    status: StatusCode,
    found: &[Request],
) -> HttpResponse {
    let xml = RequestsXml { request: found };
    format.respond(status, &found, "service_requests", &xml)
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
    /// Comma-separated service codes (categories); an unknown one is an error.
    pub service_code: Option<String>,
    /// Earliest `requested_datetime`, RFC 3339 (default: 90 days before `end_date`).
    pub start_date: Option<String>,
    /// Latest `requested_datetime`, RFC 3339 (default: now). Before `start_date`, nothing.
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
#[utoipa::path(tag = "open311",
    params(("format" = String, Path, description = "`xml` or `json`"), RequestsQuery),
    responses((status = 200, description = "The service requests",
            content((Vec<ServiceRequest> = "application/json"), (Vec<ServiceRequest> = "text/xml"))),
        GeoReportErrors<400>,
        GeoReportErrors<404>,
        GeoReportErrors<503>))]
#[get("/open311/v2/requests.{format}")]
pub async fn requests(
    node: web::Data<Node>,
    format: web::Path<String>,
    query: Result<web::Query<RequestsQuery>, actix_web::Error>,
) -> HttpResponse {
    in_format(&format, |format| async move {
        let query = query.map_err(|error| ApiError::MalformedRequest(error.to_string()))?;
        let found = find_requests(&node, &query)?;
        let found = filled(&node, found).await?;
        Ok(respond_requests(format, StatusCode::OK, &found))
    })
    .await
}

/// The ids of a `service_request_id` list, at most a page of them.
fn requested_ids(ids: &str) -> Result<Vec<u64>, ApiError> {
    ids.split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .take(projections::limits::OPEN311_REQUESTS_PAGE_ITEMS_MAX)
        .map(|id| {
            id.parse().map_err(|_| {
                ApiError::MalformedRequest(format!("service_request_id {id:?} is not a number"))
            })
        })
        .collect()
}

/// Which of open and closed the `status` filter asks for.
fn wanted_statuses(status: Option<&str>) -> Result<(bool, bool), ApiError> {
    let Some(text) = status else {
        return Ok((true, true));
    };
    let wanted: Vec<&str> = text.split(',').map(str::trim).collect();
    if wanted
        .iter()
        .any(|status| *status != "open" && *status != "closed")
    {
        return Err(ApiError::MalformedRequest(
            "status is open, closed, or both".into(),
        ));
    }
    Ok((wanted.contains(&"open"), wanted.contains(&"closed")))
}

/// The service requests `query` asks for, their committed fields not yet filled.
fn find_requests(node: &Node, query: &RequestsQuery) -> Result<Vec<ServiceRequest>, ApiError> {
    let ledger = node.proven_ledger()?;
    if let Some(ids) = &query.service_request_id {
        return Ok(requested_ids(ids)?
            .into_iter()
            .filter_map(|id| ledger.complaints.get(&id))
            .map(|complaint| service_request(&ledger, complaint))
            .collect());
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
    for code in codes.iter().flatten() {
        require_service(&ledger, code)?;
    }
    let (want_open, want_closed) = wanted_statuses(query.status.as_deref())?;
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

/// One service request, as a one-element list (the spec's shape).
#[utoipa::path(tag = "open311",
    params(("service_request_id" = u64, Path, description = "Complaint identifier"),
        ("format" = String, Path, description = "`xml` or `json`")),
    responses((status = 200, description = "The service requests",
            content((Vec<ServiceRequest> = "application/json"), (Vec<ServiceRequest> = "text/xml"))),
        GeoReportErrors<400>,
        GeoReportErrors<404>,
        GeoReportErrors<503>))]
#[get("/open311/v2/requests/{service_request_id}.{format}")]
pub async fn request(node: web::Data<Node>, path: web::Path<(String, String)>) -> HttpResponse {
    let (id, format) = path.into_inner();
    in_format(&format, |format| async move {
        let id: u64 = id.parse().map_err(|_| {
            ApiError::MalformedRequest(format!("service_request_id {id:?} is not a number"))
        })?;
        let found = {
            let ledger = node.proven_ledger()?;
            let complaint = ledger
                .complaints
                .get(&id)
                .ok_or_else(|| ApiError::NotFound(format!("service request {id}")))?;
            vec![service_request(&ledger, complaint)]
        };
        let found = filled(&node, found).await?;
        Ok(respond_requests(format, StatusCode::OK, &found))
    })
    .await
}
