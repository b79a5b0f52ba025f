//! One structured line per HTTP request (`target: veche::request`): method, path, route, status
//! and duration, as JSON under `--log-format json`, and the client address except next to a
//! ballot that must stay unlinkable.
//!
//! Invariant: no line for a request to a route that may carry an anonymous ballot names the
//! client's address, whatever the request held or how it was answered.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// Routes whose requests may carry an anonymous ballot: the anonymous-ballot route itself and the
/// generic command route, which takes any action. Their lines never name the client address, even
/// for a request refused before its action was read.
const ADDRESS_WITHHELD_ROUTES: [&str; 2] = ["/v1/polls/{poll}/anonymous-ballots", "/v1/commands"];

/// Whether a request to `route` (its pattern, if one matched) may be logged with its address.
fn may_name_address(route: Option<&str>) -> bool {
    !route.is_some_and(|route| ADDRESS_WITHHELD_ROUTES.contains(&route))
}

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
    let (method, path) = (served.method().as_str(), served.path());
    let status = response.status().as_u16();
    match served
        .peer_addr()
        .filter(|_| may_name_address(route.as_deref()))
    {
        Some(address) => tracing::info!(
            target: "veche::request",
            method, path, route, status, duration_us,
            client_address = %address.ip(),
            "served a request"
        ),
        None => tracing::info!(
            target: "veche::request",
            method, path, route, status, duration_us,
            "served a request"
        ),
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_that_may_carry_an_anonymous_ballot_never_name_the_address() {
        for (route, named) in [
            (Some("/v1/polls/{poll}/anonymous-ballots"), false),
            (Some("/v1/commands"), false),
            (Some("/v1/polls/{poll}/ballots"), true),
            (Some("/v1/log"), true),
            (None, true),
        ] {
            assert_eq!(may_name_address(route), named, "{route:?}");
        }
    }
}
