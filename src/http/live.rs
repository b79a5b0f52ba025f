//! Live tallies over Server-Sent Events, and the Prometheus metrics endpoint.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use projections::limits::{LIVE_STREAMS_MAX, LIVE_STREAMS_PER_ADDRESS_MAX};

use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::reads::{tally_view, TallyView};
use crate::http::Answer;
use crate::node::Node;

/// The live streams one server holds open, in all and per client address. Every stream holds
/// a socket: uncapped, one client could take every file the process may open, and health checks
/// and writes would wait for the streams to close.
#[derive(Default)]
pub struct StreamSlots {
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

impl StreamSlots {
    /// The table, even after a panic elsewhere: it holds counts only, each changed in one step.
    fn table(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a slot for the client of `request`, or says which cap is full.
    fn take_for(self: &Arc<Self>, request: &HttpRequest) -> Result<StreamSlot, ApiError> {
        self.take(client_address(request))
    }

    /// Takes a slot for `address`, or says which cap is full.
    fn take(self: &Arc<Self>, address: IpAddr) -> Result<StreamSlot, ApiError> {
        let mut table = self.table();
        let held = table.get(&address).copied().unwrap_or(0);
        if held >= LIVE_STREAMS_PER_ADDRESS_MAX {
            return Err(ApiError::TooManyStreams(LIVE_STREAMS_PER_ADDRESS_MAX));
        }
        if table.values().sum::<usize>() >= LIVE_STREAMS_MAX {
            return Err(ApiError::StreamsFull(LIVE_STREAMS_MAX));
        }
        table.insert(address, held + 1);
        Ok(StreamSlot {
            slots: self.clone(),
            address,
        })
    }
}

/// One stream's place in [`StreamSlots`], given back when the stream ends.
struct StreamSlot {
    slots: Arc<StreamSlots>,
    address: IpAddr,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut table = self.slots.table();
        if let Some(held) = table.get_mut(&self.address) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                table.remove(&self.address);
            }
        }
    }
}

/// Counts a subscriber for as long as its stream lives, and holds its slot.
struct Subscription {
    node: web::Data<Node>,
    _slot: StreamSlot,
}

impl Subscription {
    fn new(node: web::Data<Node>, slot: StreamSlot) -> Subscription {
        node.observers()
            .live_subscribers
            .fetch_add(1, Ordering::Relaxed);
        Subscription { node, _slot: slot }
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

/// The client's address, whose streams count together. Without a peer (an in-process request),
/// every such request shares one count.
fn client_address(request: &HttpRequest) -> IpAddr {
    request
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.ip())
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
/// are log sizes. The stream ends after the final tally. One address holds at most
/// `live_streams_per_address_max` streams (then 429 `too-many-streams`), the node at most
/// `live_streams_max` (then 503 `streams-full`).
#[utoipa::path(tag = "polls",
    params(("poll" = u64, Path, description = "Poll identifier"),
        ("Last-Event-ID" = Option<u64>, Header, description = "The last event id received, to resume")),
    responses((status = 200, description = "Server-Sent Events of `TallyView` JSON", content_type = "text/event-stream"),
        ProblemStatus<400>, ProblemStatus<403>, ProblemStatus<404>, ProblemStatus<429>, ProblemStatus<503>))]
#[get("/v1/polls/{poll}/tally/stream")]
pub async fn tally_stream(
    node: web::Data<Node>,
    slots: web::Data<Arc<StreamSlots>>,
    poll: web::Path<u64>,
    request: HttpRequest,
) -> Answer {
    let poll = poll.into_inner();
    let first = tally_view(&*node.proven_ledger()?, poll, node.clock().now())?;
    let resume_from: Option<u64> = request
        .headers()
        .get("Last-Event-ID")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok());
    let mut sizes = node.observers().published_size.subscribe();
    let subscription = Subscription::new(node.clone(), slots.get_ref().take_for(&request)?);
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
                let view = proven_view(&subscription.node, poll)?;
                if differs(&view, &last) {
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

/// The poll's tally now, or `None` to end the stream: a state refuted meanwhile sends no
/// unproven number out.
fn proven_view(node: &Node, poll: u64) -> Option<TallyView> {
    let ledger = node.proven_ledger().ok()?;
    tally_view(&ledger, poll, node.clock().now()).ok()
}

/// Whether `view` tells a subscriber anything `last` did not.
fn differs(view: &TallyView, last: &TallyView) -> bool {
    view.counts != last.counts
        || view.turnout != last.turnout
        || view.superseded_ballots != last.superseded_ballots
        || view.voided_ballots != last.voided_ballots
        || view.is_final != last.is_final
        || view.status != last.status
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
