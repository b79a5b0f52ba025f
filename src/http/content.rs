//! Content beside the log in the views: each committed field is served as its stored text, or as
//! a placeholder when this node holds none, never as anything the commitment does not bind.

use std::collections::BTreeMap;

use actix_web::{get, web};
use projections::content::Commitment;
use projections::protocol::Entry;
use projections::Command;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::{IntoParams, ToSchema};

use crate::http::off_worker;
use crate::http::page::{Listed, Listing, Page};
use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::reads::page_size;
use crate::http::Reply;
use crate::node::{HeldContent, Node};
use crate::store::EventStore;

/// A committed field as a view serves it: the text when the store holds it.
#[derive(Clone, Debug)]
pub struct Served {
    commitment: Commitment,
    held: Option<HeldContent>,
}

impl Served {
    pub fn of(commitment: Commitment) -> Served {
        Served {
            commitment,
            held: None,
        }
    }
}

impl Serialize for Served {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.held {
            Some(HeldContent::Text(text)) => serializer.serialize_str(text),
            Some(HeldContent::ErasedBy(entry)) => {
                serializer.serialize_str(&format!("[erased by entry {entry}]"))
            }
            Some(HeldContent::Missing) | None => {
                serializer.serialize_str(&placeholder(self.commitment))
            }
        }
    }
}

/// What a view shows for content this node does not hold: the commitment it stood for.
pub fn placeholder(commitment: Commitment) -> String {
    format!("[content not held: {commitment}]")
}

/// A view with committed fields to fill from the content store.
pub trait HoldsContent {
    fn served(&mut self) -> Vec<&mut Served>;
}

impl<Item: HoldsContent + Listed, Cursor> HoldsContent for Page<Item, Cursor> {
    fn served(&mut self) -> Vec<&mut Served> {
        self.items
            .iter_mut()
            .flat_map(HoldsContent::served)
            .collect()
    }
}

impl<Item: HoldsContent> HoldsContent for Vec<Item> {
    fn served(&mut self) -> Vec<&mut Served> {
        self.iter_mut().flat_map(HoldsContent::served).collect()
    }
}

/// Fills `view`'s committed fields with the texts the store holds (read off the HTTP workers).
pub async fn filled<View: HoldsContent>(
    node: &web::Data<Node>,
    mut view: View,
) -> Result<View, ApiError> {
    let commitments: Vec<Commitment> = view
        .served()
        .iter()
        .map(|served| served.commitment)
        .collect();
    if commitments.is_empty() {
        return Ok(view);
    }
    let reader = node.clone();
    let texts = off_worker(move || reader.content(&commitments)).await?;
    for served in view.served() {
        served.held = texts.get(&served.commitment).cloned();
    }
    Ok(view)
}

/// Which log positions one page of `/v1/content` covers.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ContentQuery {
    /// Positions per page, 1 to 256 (default 100).
    #[param(minimum = 1, maximum = 256)]
    pub limit: Option<usize>,
    /// First position to cover (default 0), 0 to 2^64 − 1.
    #[param(format = "uint64", minimum = 0)]
    pub from: Option<u64>,
}

impl Listed for ContentEntry {
    const LISTING: Listing = Listing::new("ContentPage", "entries", "next_from");
}

pub type ContentPage = Page<ContentEntry>;

/// One committed field of an entry as the content store holds it: the salt and text while they
/// are kept, the erasing entry once they are deleted, neither when the store lost them.
#[derive(Serialize, ToSchema)]
pub struct HeldPiece {
    /// The commitment in the entry's payload, 64 lowercase hexadecimal characters.
    pub commitment: String,
    /// The salt, 32 lowercase hexadecimal characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The position of the `erase_content`, `redact_content` or redacting `triage_complaint`
    /// entry that deleted the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_by: Option<u64>,
}

/// An entry whose payload commits to content, with every commitment in payload order.
#[derive(Serialize, ToSchema)]
pub struct ContentEntry {
    pub position: u64,
    pub pieces: Vec<HeldPiece>,
}

/// The content held beside the log, with salts, for a range of positions: anyone can hash each
/// piece against the signed commitment and check that every missing one was erased by an entry.
#[utoipa::path(tag = "log", params(ContentQuery),
    responses((status = 200, body = ContentPage), ProblemStatus<400>, ProblemStatus<503>))]
#[get("/v1/content")]
pub async fn held_content(
    node: web::Data<Node>,
    web::Query(range): web::Query<ContentQuery>,
) -> Reply<ContentPage> {
    let positions_max = projections::limits::CONTENT_PAGE_POSITIONS_MAX;
    let size = page_size(range.limit, 100, positions_max)?;
    let reader = node.clone();
    let from = range.from.unwrap_or(0);
    Ok(web::Json(
        off_worker(move || content_page(&reader, from, size)).await?,
    ))
}

/// The page of `size` positions from `from`, never past the published size (as the log's pages).
fn content_page(node: &Node, from: u64, size: usize) -> Result<ContentPage, ApiError> {
    let published = node.ledger().size;
    let end = from.saturating_add(size as u64).min(published).max(from);
    let limit = usize::try_from(end - from).unwrap_or(size);
    Ok(Page {
        items: content_of_range(node.store(), from, limit)?,
        next: (end < published).then_some(end),
    })
}

/// The entries among `limit` positions from `from` that commit to content, with what `store`
/// holds: what `/v1/content` serves, and what `veche verify --data-dir` checks.
pub fn content_of_range(
    store: &dyn EventStore,
    from: u64,
    limit: usize,
) -> Result<Vec<ContentEntry>, ApiError> {
    held_pieces(store, committed_in_range(store, from, limit)?)
}

/// The entries among `limit` positions from `from` that commit to content, each with its
/// commitments in payload order.
fn committed_in_range(
    store: &dyn EventStore,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, Vec<Commitment>)>, ApiError> {
    let mut committed = Vec::new();
    for stored in store.read(from, limit)? {
        let unreadable = |error: String| {
            ApiError::StoreUnavailable(format!("stored entry {}: {error}", stored.position))
        };
        let entry = Entry::decode(&stored.bytes).map_err(|error| unreadable(error.to_string()))?;
        let command =
            Command::parse(&entry.payload).map_err(|error| unreadable(error.to_string()))?;
        let fields = command.action.committed_fields();
        if !fields.is_empty() {
            let commitments = fields.into_iter().map(|(_, commitment)| commitment);
            committed.push((stored.position, commitments.collect()));
        }
    }
    Ok(committed)
}

/// What `store` holds for each of the `committed` entries' commitments.
fn held_pieces(
    store: &dyn EventStore,
    committed: Vec<(u64, Vec<Commitment>)>,
) -> Result<Vec<ContentEntry>, ApiError> {
    let wanted: Vec<[u8; 32]> = committed
        .iter()
        .flat_map(|(_, commitments)| commitments.iter().map(|commitment| commitment.0))
        .collect();
    let mut found = BTreeMap::new();
    if !wanted.is_empty() {
        for held in store.read_content(&wanted)? {
            found.insert(held.commitment, held);
        }
    }
    let piece = |commitment: Commitment| {
        let held = found.get(&commitment.0);
        let kept = held.and_then(|held| held.piece.as_ref());
        HeldPiece {
            commitment: commitment.to_string(),
            salt: kept.map(|(salt, _)| hex::encode(salt)),
            text: kept.map(|(_, text)| text.clone()),
            erased_by: held.and_then(|held| held.erased_by),
        }
    };
    Ok(committed
        .into_iter()
        .map(|(position, commitments)| ContentEntry {
            position,
            pieces: commitments.into_iter().map(piece).collect(),
        })
        .collect())
}

/// Why a data directory's content does not agree with its verified log.
#[derive(Debug, thiserror::Error)]
pub enum StoredContentError {
    #[error("the content store cannot be read: {0:?}")]
    Unreadable(ApiError),
    /// Rendered as the verifier renders it, with the entry's position.
    #[error("{}", at_position(.0))]
    Disagrees(#[from] veche_verifier::verification::VerifyError),
}

/// A content failure as `veche verify` names it: the entry's position first.
fn at_position(error: &veche_verifier::verification::VerifyError) -> String {
    match error.position() {
        Some(position) => format!("position {position}: {error}"),
        None => error.to_string(),
    }
}

/// Checks the content `store` keeps against `ledger`, the state its verified log folds to, page
/// by page as `veche verify --server` checks `/v1/content`: every piece held hashes to its
/// signed commitment, and every piece missing was erased by an entry. Returns the pieces hashed.
pub fn verify_stored_content(
    store: &dyn EventStore,
    ledger: &projections::Ledger,
) -> Result<u64, StoredContentError> {
    use veche_verifier::verification::CommittedEntry;
    let positions_max = projections::limits::CONTENT_PAGE_POSITIONS_MAX;
    let (mut hashed, mut from) = (0, 0);
    while from < ledger.size {
        let in_range = committed_in_range(store, from, positions_max)
            .map_err(StoredContentError::Unreadable)?;
        let committed = in_range
            .iter()
            .map(|(position, commitments)| {
                let erased_by = ledger.erasures.erased_by(*position);
                let commitments = commitments.clone();
                let entry = CommittedEntry {
                    commitments,
                    erased_by,
                };
                (*position, entry)
            })
            .collect();
        let entries = held_pieces(store, in_range).map_err(StoredContentError::Unreadable)?;
        let bundle = serde_json::json!({ "entries": entries });
        hashed +=
            veche_verifier::served_content::check_content_bundle(&bundle, &committed, ledger.size)?;
        from = from.saturating_add(positions_max as u64);
    }
    Ok(hashed)
}
