//! Open311 `POST requests` for gateways: a call centre's or reporting app's Open311 client sends
//! a form with its `api_key`, and the node signs a `file_complaint` marked `through_gateway` with
//! that gateway's key on its behalf, through the one write path (`commands::submit`).
//!
//! **Invariant:** the resident's words and whereabouts go beside the log as committed content,
//! never into the entry in the clear; contact details (name, email, phone) are not kept at all,
//! since every content piece is public until erased, and the gateway keeps its own records.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use projections::command::{ComplaintFiling, Degrees, Location};
use projections::{Action, Command};
use serde::Serialize;
use utoipa::ToSchema;

use crate::client::{signed_envelope, ContentBook};
use crate::http::commands::submit;
use crate::http::open311::{respond_requests, Format, GeoReportErrors};
use crate::http::problem::ApiError;
use crate::keys::OsEntropy;
use crate::node::Node;

/// The answer to a filing: the new request's id; veche sends no notice and keeps no accounts.
#[derive(Serialize, ToSchema)]
pub struct CreatedRequest {
    pub service_request_id: String,
    pub service_notice: String,
    pub account_id: String,
}

/// The form of a GeoReport v2 `POST requests`, as clients send it
/// (`application/x-www-form-urlencoded`). Documentation only: the body is read as a list of
/// pairs, so that `attribute[...]` fields of any name arrive.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RequestForm {
    /// The gateway's key, as `veche gateway-api-key` prints it.
    api_key: String,
    /// A category id.
    service_code: String,
    /// Rounded to the public 0.001-degree grid before it is signed.
    lat: f64,
    long: f64,
    /// Kept as committed content; the rounded coordinates when absent.
    address_string: Option<String>,
    /// Kept as committed content.
    description: String,
    /// Added to the description's content as its last line (the node has no file to hash).
    media_url: Option<String>,
    /// Not kept.
    email: Option<String>,
    /// Not kept.
    first_name: Option<String>,
    /// Not kept.
    last_name: Option<String>,
    /// Not kept.
    phone: Option<String>,
    /// The district, which the statistics group by (the service definitions list it).
    #[schema(rename = "attribute[district]")]
    attribute_district: String,
}

/// The form's fields, as sent.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The field's value, if it is sent and not blank.
    fn optional(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.optional(name)
            .ok_or_else(|| ApiError::MalformedRequest(format!("{name} is required")))
    }

    /// A coordinate, rounded to the public grid: the precise place is the address's to say.
    fn coordinate(&self, name: &str) -> Result<Degrees, ApiError> {
        let text = self.required(name)?;
        let degrees: f64 = text
            .parse()
            .ok()
            .filter(|degrees: &f64| degrees.is_finite())
            .ok_or_else(|| {
                ApiError::MalformedRequest(format!("{name} {text:?} is not a number"))
            })?;
        let scale = 10f64.powi(projections::limits::COORDINATE_DECIMALS_MAX);
        Ok(Degrees((degrees * scale).round() / scale))
    }
}

/// The filing a form asks for, its content committed in `book`.
fn filing_of(form: &Form, book: &ContentBook) -> Result<ComplaintFiling, ApiError> {
    let category = form.required("service_code")?.to_string();
    let latitude = form.coordinate("lat")?;
    let longitude = form.coordinate("long")?;
    let mut description = form.required("description")?.to_string();
    if let Some(media_url) = form.optional("media_url") {
        description = format!("{description}\n{media_url}");
    }
    let address = form
        .optional("address_string")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}, {}", latitude.0, longitude.0));
    let district = form.required("attribute[district]")?.to_string();
    Ok(ComplaintFiling {
        category,
        description: book.commit(&description, &OsEntropy),
        location: Location {
            latitude,
            longitude,
            address: book.commit(&address, &OsEntropy),
            district,
        },
        attachments: vec![],
        through_gateway: true,
    })
}

/// File a complaint for a resident without a key, through a gateway: the node signs it with
/// the gateway's key, which must hold the gateway role.
#[utoipa::path(tag = "open311",
    params(("format" = String, Path, description = "`xml` or `json`")),
    request_body(content((RequestForm = "application/x-www-form-urlencoded"))),
    responses((status = 201, description = "Filed: the new request's id",
            content((Vec<CreatedRequest> = "application/json"), (Vec<CreatedRequest> = "text/xml"))),
        GeoReportErrors<400>,
        GeoReportErrors<403>,
        GeoReportErrors<404>,
        GeoReportErrors<409>,
        GeoReportErrors<422>,
        GeoReportErrors<429>,
        GeoReportErrors<503>))]
#[post("/open311/v2/requests.{format}")]
pub async fn create_request(
    node: web::Data<Node>,
    request: HttpRequest,
    format: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(format) = Format::parse(&format) else {
        return Format::unknown(&format);
    };
    match file_through_gateway(&node, &request, &body).await {
        Ok(created) => respond_requests(format, StatusCode::CREATED, &[created]),
        Err(error) => format.error(&error),
    }
}

async fn file_through_gateway(
    node: &web::Data<Node>,
    request: &HttpRequest,
    body: &[u8],
) -> Result<CreatedRequest, ApiError> {
    let form = Form::parse(body);
    let gateway = form
        .optional("api_key")
        .and_then(|api_key| node.gateway(api_key))
        .ok_or(ApiError::InvalidApiKey)?
        .clone();
    let book = ContentBook::new();
    let filing = filing_of(&form, &book)?;
    let envelope = book.attach(signed_envelope(
        &gateway,
        Action::FileComplaint(filing),
        node.clock().now(),
        &OsEntropy,
    ));
    let (outcome, ()) = submit(
        node,
        request,
        envelope,
        Some("file_complaint"),
        |_: &Command| Ok(()),
    )
    .await?;
    Ok(CreatedRequest {
        service_request_id: outcome.receipt().position.to_string(),
        service_notice: String::new(),
        account_id: String::new(),
    })
}
