//! One structured line per HTTP request (`target: veche::request`): method, path, route, status
//! and duration, a JSON object under `--log-format json`.
//!
//! Invariant: no line names the client's address. Withholding it only beside anonymous ballots
//! would not be enough: the same voter's read of the poll a moment before, logged with its
//! address, would link the ballot line to them by time.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// The middleware: serves the request, then logs its line.
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let response = next.call(request).await?;
    let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let served = response.request();
    let route = served.match_pattern();
    tracing::info!(
        target: "veche::request",
        method = served.method().as_str(),
        path = served.path(),
        route,
        status = response.status().as_u16(),
        duration_us,
        "served a request"
    );
    Ok(response)
}
