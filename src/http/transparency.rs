//! The transparency-log endpoints: C2SP tlog-tiles reads under `/tlog/`, signed checkpoints at
//! any size, inclusion and consistency proofs, and receipt upgrades.
//!
//! Everything served here is derived from durable entries only, and nothing here writes.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use projections::merkle;
use projections::tiles::{parse_tile_path, TileAddress};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::off_worker;
use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::{Answer, Reply};
use crate::node::Node;
use crate::transparency::{base64, ConsistencyProof, Receipt};
use crate::writer::Appended;

const NOTE_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// Full tiles never change; partial tiles and checkpoints do, as the log grows.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SHORT_LIVED: &str = "no-cache";

/// The latest signed checkpoint (C2SP tlog-checkpoint, signed as a C2SP signed note).
#[utoipa::path(tag = "transparency",
    responses((status = 200, description = "Signed checkpoint note", content_type = "text/plain", body = String)))]
#[get("/tlog/checkpoint")]
pub async fn latest_checkpoint(node: web::Data<Node>) -> HttpResponse {
    let note = node.tree().checkpoint().to_owned();
    HttpResponse::Ok()
        .content_type(NOTE_CONTENT_TYPE)
        .insert_header((header::CACHE_CONTROL, SHORT_LIVED))
        .body(note)
}

/// A C2SP tlog-tiles hash tile (`tile/<L>/<N>[.p/<W>]`) or entry bundle
/// (`tile/entries/<N>[.p/<W>]`).
#[utoipa::path(tag = "transparency",
    params(("path" = String, Path, description = "The tile's path below `tile/`, e.g. `0/x001/234` or `entries/000.p/7`")),
    responses((status = 200, description = "Tile bytes", content_type = "application/octet-stream", body = Vec<u8>),
        ProblemStatus<400>, ProblemStatus<404>, ProblemStatus<503>))]
#[get("/tlog/tile/{path:.*}")]
pub async fn tile(node: web::Data<Node>, path: web::Path<String>) -> Answer {
    let full_path = format!("tile/{}", path.into_inner());
    let address = parse_tile_path(&full_path)
        .map_err(|error| ApiError::MalformedRequest(format!("{full_path}: {error}")))?;
    let full = address.width == 256;
    let bytes = if address.is_entry_bundle() {
        entry_bundle(node, &address).await?
    } else {
        let reader = node.clone();
        off_worker(move || reader.tree().tile(reader.store(), &address)).await?
    };
    let Some(bytes) = bytes else {
        return Err(ApiError::NotFound(full_path));
    };
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            header::CACHE_CONTROL,
            if full { IMMUTABLE } else { SHORT_LIVED },
        ))
        .body(bytes))
}

/// The entries of one bundle, if the log is long enough to hold them all.
async fn entry_bundle(
    node: web::Data<Node>,
    address: &TileAddress,
) -> Result<Option<Vec<u8>>, ApiError> {
    let first = address.index.saturating_mul(256);
    let width = u64::from(address.width);
    if node.tree().size() < first.saturating_add(width) {
        return Ok(None);
    }
    let count = usize::from(address.width);
    let entries = off_worker(move || node.store().read(first, count)).await?;
    if entries.len() != count {
        return Err(ApiError::StoreUnavailable(format!(
            "the store returned {} of the {count} entries from position {first}",
            entries.len()
        )));
    }
    let bytes: Vec<&[u8]> = entries.iter().map(|entry| entry.bytes.as_slice()).collect();
    projections::tiles::encode_entry_bundle(&bytes)
        .map(Some)
        .map_err(|error| {
            ApiError::StoreUnavailable(format!("entry bundle {}: {error}", address.index))
        })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CheckpointQuery {
    /// Tree size (default: the current size).
    pub size: Option<u64>,
}

/// A signed checkpoint at any size up to the current one: a poll's close event names the size
/// whose checkpoint pins its tally.
#[utoipa::path(tag = "transparency", params(CheckpointQuery),
    responses((status = 200, description = "Signed checkpoint note", content_type = "text/plain", body = String),
        ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/log/checkpoint")]
pub async fn checkpoint_at(node: web::Data<Node>, query: web::Query<CheckpointQuery>) -> Answer {
    let size = query.size;
    let note = off_worker(move || match size {
        Some(size) => node.checkpoint_at(size),
        None => Ok(node.tree().checkpoint().to_owned()),
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(NOTE_CONTENT_TYPE)
        .body(note))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The entry's position (its leaf index).
    pub position: u64,
    /// Tree size to prove against (default: the current size).
    pub size: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct InclusionProof {
    pub position: u64,
    pub tree_size: u64,
    /// Base64 hashes, lowest first.
    pub proof: Vec<String>,
    /// The signed checkpoint at `tree_size`.
    pub checkpoint: String,
}

/// An RFC 6962 inclusion proof for one entry, with the signed checkpoint it leads to.
#[utoipa::path(tag = "transparency", params(InclusionQuery),
    responses((status = 200, body = InclusionProof),
        ProblemStatus<400>, ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/log/proofs/inclusion")]
pub async fn inclusion_proof(
    node: web::Data<Node>,
    query: web::Query<InclusionQuery>,
) -> Reply<InclusionProof> {
    let InclusionQuery { position, size } = query.into_inner();
    answer_off_worker(node, move |node, current_size| {
        let size = size.unwrap_or(current_size);
        if position >= size {
            return Err(ApiError::ImpossibleProof(format!(
                "position {position} is not below tree size {size}"
            )));
        }
        let proof = node.tree().over_nodes(node.store(), size, |nodes| {
            merkle::inclusion_proof(nodes, position, size)
        })?;
        Ok(InclusionProof {
            position,
            tree_size: size,
            proof: proof.iter().map(base64).collect(),
            checkpoint: node.checkpoint_at(size)?,
        })
    })
    .await
}

/// Answers with what `answer` makes of the node and the tree's current size, on the blocking
/// pool: proofs read stored tiles.
async fn answer_off_worker<T: Send + 'static>(
    node: web::Data<Node>,
    answer: impl FnOnce(&Node, u64) -> Result<T, ApiError> + Send + 'static,
) -> Reply<T> {
    let answered = off_worker(move || {
        // Bound first, so that the tree's read lock is released before `answer` takes it again.
        let current_size = node.tree().size();
        answer(&node, current_size)
    })
    .await?;
    Ok(web::Json(answered))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size (at least 1).
    pub from: u64,
    /// The newer tree size (default: the current size).
    pub to: Option<u64>,
}

/// An RFC 6962 consistency proof: the tree at `to` extends the tree at `from`.
#[utoipa::path(tag = "transparency", params(ConsistencyQuery),
    responses((status = 200, body = crate::http::schemas::ConsistencyProof),
        ProblemStatus<400>, ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/log/proofs/consistency")]
pub async fn consistency_proof(
    node: web::Data<Node>,
    query: web::Query<ConsistencyQuery>,
) -> Reply<ConsistencyProof> {
    let ConsistencyQuery { from, to } = query.into_inner();
    answer_off_worker(node, move |node, current_size| {
        let to = to.unwrap_or(current_size);
        if from == 0 || from > to {
            return Err(ApiError::ImpossibleProof(format!(
                "a consistency proof needs 0 < from ≤ to; got from {from} and to {to}"
            )));
        }
        let proof = node.tree().over_nodes(node.store(), to, |nodes| {
            merkle::consistency_proof(nodes, from, to)
        })?;
        Ok(ConsistencyProof {
            from_size: from,
            to_size: to,
            proof: proof.iter().map(base64).collect(),
        })
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UpgradeQuery {
    /// The tree size of the checkpoint the old receipt holds: the answer adds a consistency
    /// proof from it to the current checkpoint.
    pub since: Option<u64>,
}

/// A receipt for the entry at `position` against the current checkpoint: upgrades an old receipt
/// (inclusion in the new tree, plus consistency with the old checkpoint when `since` is given).
#[utoipa::path(tag = "transparency",
    params(("position" = u64, Path, description = "The entry's position"), UpgradeQuery),
    responses((status = 200, body = crate::http::schemas::Receipt),
        ProblemStatus<400>, ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/receipts/{position}")]
pub async fn upgrade_receipt(
    node: web::Data<Node>,
    position: web::Path<u64>,
    query: web::Query<UpgradeQuery>,
) -> Reply<Receipt> {
    let position = position.into_inner();
    let since = query.since;
    answer_off_worker(node, move |node, size| {
        if position >= size {
            return Err(ApiError::NotFound(format!(
                "no entry at position {position}"
            )));
        }
        if let Some(since) = since {
            if since == 0 {
                return Err(ApiError::ImpossibleProof(
                    "a consistency proof needs since > 0".into(),
                ));
            }
            if since > size {
                return Err(ApiError::BeyondTreeSize {
                    requested: since,
                    size,
                });
            }
        }
        // Read the entry before taking the tree's lock: the writer must never wait on a store
        // read.
        let stored = node
            .store()
            .read(position, 1)?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::StoreUnavailable(format!("entry {position} is missing")))?;
        let entry = projections::Entry::decode(&stored.bytes).map_err(|error| {
            ApiError::StoreUnavailable(format!("stored entry {position}: {error}"))
        })?;
        let appended = Appended {
            position,
            entry_hash: stored.hash,
            leaf_hash: projections::merkle::leaf_hash(&stored.bytes),
            server_time: entry.server_time,
        };
        let tree = node.tree();
        Ok(tree.receipt(node.store(), &appended, since)?)
    })
    .await
}
