//! The category catalogue and registrar attestations.

use actix_web::{get, post, web};
use projections::{Action, Command};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::commands::{Location, Submission, Written};
use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::EnvelopeSchema;
use crate::http::{Answer, Reply};
use crate::node::Node;

/// Attest a registered key's district and verified status. The payload's action is
/// `attest_resident`, signed by a registrar.
#[utoipa::path(tag = "keys", request_body = EnvelopeSchema, responses(Written))]
#[post("/v1/attestations")]
pub async fn attest_resident(submission: Submission) -> Answer {
    submission
        .accept(Some("attest_resident"), subject_key)
        .await
}

/// The page of the key an attestation or a revocation is about.
fn subject_key(command: &Command) -> Result<Location, ApiError> {
    let subject = match &command.action {
        Action::AttestResident(attestation) => attestation.subject,
        Action::RevokeKey(revocation) => revocation.subject,
        _ => return Ok(Location::Nowhere),
    };
    Ok(Location::At(format!("/v1/keys/{subject}")))
}

/// Revoke a key: its holder's own (signed by the key) or a resident's lost one (signed by a
/// registrar). The payload's action is `revoke_key`.
#[utoipa::path(tag = "keys", request_body = EnvelopeSchema, responses(Written))]
#[post("/v1/revocations")]
pub async fn revoke_key(submission: Submission) -> Answer {
    submission.accept(Some("revoke_key"), subject_key).await
}

/// Define a category, or publish a new version of one. The payload's action is
/// `define_category`, signed by an admin key.
#[utoipa::path(tag = "catalogue", request_body = EnvelopeSchema, responses(Written))]
#[post("/v1/categories")]
pub async fn define_category(submission: Submission) -> Answer {
    // Categories have no page of their own: the catalogue lists each in its current version.
    let location = |_: &Command| Ok(Location::At("/v1/categories".into()));
    submission.accept(Some("define_category"), location).await
}

#[derive(Serialize, ToSchema)]
pub struct CategoryView {
    pub id: String,
    pub name: String,
    pub department: String,
    pub sla_working_days: u32,
    pub confirmation_window_days: u32,
    pub support_threshold: u64,
    pub proposal_lifetime_days: u32,
    /// Whether only verified residents support proposals, one support per resident.
    pub supports_from_residents_only: bool,
    /// 1 for the first definition, one more per redefinition.
    pub version: u32,
}

#[derive(Serialize, ToSchema)]
pub struct CategoryList {
    pub categories: Vec<CategoryView>,
}

pub(crate) fn category_views(ledger: &projections::Ledger) -> Vec<CategoryView> {
    ledger
        .categories
        .values()
        .map(|record| {
            let definition = &record.current;
            CategoryView {
                id: definition.id.clone(),
                name: definition.name.clone(),
                department: definition.department.clone(),
                sla_working_days: definition.sla_working_days,
                confirmation_window_days: definition.confirmation_window_days,
                support_threshold: definition.support_threshold,
                proposal_lifetime_days: definition.proposal_lifetime_days,
                supports_from_residents_only: definition.supports_from_residents_only,
                version: record.version,
            }
        })
        .collect()
}

/// The catalogue: every category in its current version.
#[utoipa::path(tag = "catalogue", responses((status = 200, body = CategoryList), ProblemStatus<503>))]
#[get("/v1/categories")]
pub async fn list_categories(node: web::Data<Node>) -> Reply<CategoryList> {
    Ok(web::Json(CategoryList {
        categories: category_views(&*node.proven_ledger()?),
    }))
}
