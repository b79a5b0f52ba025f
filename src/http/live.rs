//! Live tallies over Server-Sent Events, and the Prometheus metrics endpoint.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::http::problem::ProblemStatus;
use crate::http::reads::{tally_view, TallyView};
use crate::http::Answer;
use crate::node::Node;

/// Counts a subscriber for as long as its stream lives.
struct Subscription {
    node: web::Data<Node>,
}

impl Subscription {
    fn new(node: web::Data<Node>) -> Subscription {
        node.observers()
            .live_subscribers
            .fetch_add(1, Ordering::Relaxed);
        Subscription { node }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.node
            .observers()
            .live_subscribers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

fn event(view: &TallyView) -> web::Bytes {
    let data = match serde_json::to_string(view) {
        Ok(data) => data,
        // A view of counts and names always serialises; an empty event would hide the bug.
        Err(error) => panic!("a tally view failed to serialise: {error}"),
    };
    web::Bytes::from(format!(
        "id: {}\nevent: tally\ndata: {data}\n\n",
        view.log_size
    ))
}

/// A poll's tally as a Server-Sent Events stream: one `tally` event now (unless the client's
/// `Last-Event-ID` is already the current log size) and one whenever the tally changes. Event ids
/// are log sizes. The stream ends after the final tally.
#[utoipa::path(tag = "polls",
    params(("poll" = u64, Path, description = "Poll identifier"),
        ("Last-Event-ID" = Option<u64>, Header, description = "The last event id received, to resume")),
    responses((status = 200, description = "Server-Sent Events of `TallyView` JSON", content_type = "text/event-stream"),
        ProblemStatus<403>, ProblemStatus<404>))]
#[get("/v1/polls/{poll}/tally/stream")]
pub async fn tally_stream(
    node: web::Data<Node>,
    poll: web::Path<u64>,
    request: HttpRequest,
) -> Answer {
    let poll = poll.into_inner();
    let first = tally_view(&node.ledger(), poll, node.clock().now())?;
    let resume_from: Option<u64> = request
        .headers()
        .get("Last-Event-ID")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok());
    let mut sizes = node.observers().published_size.subscribe();
    let subscription = Subscription::new(node.clone());
    let initial = (resume_from != Some(first.log_size)).then(|| event(&first));
    // Mark the current size as seen so the first wait is for the next change.
    sizes.borrow_and_update();
    let state = (subscription, sizes, Some(first), initial);
    let stream = futures_util::stream::unfold(
        state,
        move |(subscription, mut sizes, last, pending)| async move {
            if let Some(bytes) = pending {
                return Some((
                    Ok::<_, actix_web::Error>(bytes),
                    (subscription, sizes, last, None),
                ));
            }
            let last = last?;
            if last.is_final {
                return None;
            }
            loop {
                let changed = tokio::time::timeout(
                    Duration::from_millis(projections::limits::LIVE_KEEP_ALIVE_INTERVAL_MS),
                    sizes.changed(),
                )
                .await;
                match changed {
                    Err(_) => {
                        let keep_alive = web::Bytes::from_static(b": keep-alive\n\n");
                        return Some((Ok(keep_alive), (subscription, sizes, Some(last), None)));
                    }
                    Ok(Err(_)) => return None,
                    Ok(Ok(())) => {}
                }
                let node = &subscription.node;
                let Ok(view) = tally_view(&node.ledger(), poll, node.clock().now()) else {
                    return None;
                };
                let changed = view.counts != last.counts
                    || view.turnout != last.turnout
                    || view.superseded_ballots != last.superseded_ballots
                    || view.is_final != last.is_final
                    || view.status != last.status;
                if changed {
                    let bytes = event(&view);
                    return Some((Ok(bytes), (subscription, sizes, Some(view), None)));
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        // Compression would buffer events; a live stream goes out as it is.
        .insert_header(("Content-Encoding", "identity"))
        .streaming(stream))
}

/// Prometheus metrics: appends, batch sizes, signature checks, projection lag, live streams.
#[utoipa::path(tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn metrics(node: web::Data<Node>) -> HttpResponse {
    let published = node.ledger().size;
    let probe = node.clone();
    let stored = web::block(move || probe.store().size())
        .await
        .ok()
        .and_then(Result::ok);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(node.observers().render(published, stored))
}
