//! The content a server keeps beside its log, checked against the log: every piece it serves must
//! hash to its entry's signed commitment, and every piece it does not serve must have been erased
//! by an `erase_content` or `redact_content` entry of the log, or a spam rejection that redacts.

use std::collections::BTreeMap;

use projections::content::{Commitment, SALT_BYTES};
use serde_json::Value;

use crate::verification::{CommittedEntry, VerifyError};

/// Positions asked for per page: the server's own maximum.
const PAGE_POSITIONS: usize = projections::limits::CONTENT_PAGE_POSITIONS_MAX;

/// Reads `/v1/content` over the first `size` positions and checks it against `committed`, what
/// the verified log commits to. Returns how many pieces were hashed, and with `keep` every served
/// entry, for a content bundle.
pub fn check_served_content(
    client: &reqwest::blocking::Client,
    server: &str,
    committed: &BTreeMap<u64, CommittedEntry>,
    size: u64,
    keep: bool,
) -> Result<(u64, Vec<Value>), VerifyError> {
    let base = server.trim_end_matches('/');
    let fetch = |from: u64| {
        let url = format!("{base}/v1/content?from={from}&limit={PAGE_POSITIONS}");
        client
            .get(&url)
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .and_then(reqwest::blocking::Response::json)
            .map_err(|error| VerifyError::ServedContent(format!("cannot be fetched: {error}")))
    };
    check_pages(fetch, committed, size, keep)
}

/// Checks a content bundle (one `/v1/content` page without `next_from`, covering the whole log)
/// against `committed`. Returns how many pieces were hashed.
pub fn check_content_bundle(
    bundle: &Value,
    committed: &BTreeMap<u64, CommittedEntry>,
    size: u64,
) -> Result<u64, VerifyError> {
    if bundle.get("next_from").is_some() {
        return Err(VerifyError::ServedContent(
            "bundle is one page of several, not the whole log's".into(),
        ));
    }
    let (hashed, _) = check_pages(|_| Ok(bundle.clone()), committed, size, false)?;
    Ok(hashed)
}

/// Walks the pages `page_from` gives for each start position up to `size`.
fn check_pages(
    mut page_from: impl FnMut(u64) -> Result<Value, VerifyError>,
    committed: &BTreeMap<u64, CommittedEntry>,
    size: u64,
    keep: bool,
) -> Result<(u64, Vec<Value>), VerifyError> {
    let (mut hashed, mut kept, mut from) = (0, Vec::new(), 0);
    while from < size {
        let page = page_from(from)?;
        let served = served_entries(&page)?;
        // A page covers every position up to the next one's start; the last, the rest.
        let end = page["next_from"].as_u64().unwrap_or(size).min(size);
        if end <= from {
            return Err(VerifyError::ServedContent(format!(
                "page from {from} does not advance"
            )));
        }
        for (position, entry) in committed.range(from..end) {
            hashed += check_entry(*position, entry, served.get(position))?;
        }
        if keep {
            let entries = page["entries"].as_array().into_iter().flatten();
            kept.extend(
                entries
                    .filter(|entry| entry["position"].as_u64() < Some(end))
                    .cloned(),
            );
        }
        from = end;
    }
    Ok((hashed, kept))
}

/// The page's entries by position, each its pieces.
fn served_entries(page: &Value) -> Result<BTreeMap<u64, &[Value]>, VerifyError> {
    let malformed = || VerifyError::ServedContent("page is malformed".into());
    let mut served = BTreeMap::new();
    for entry in page["entries"].as_array().ok_or_else(malformed)? {
        let position = entry["position"].as_u64().ok_or_else(malformed)?;
        let pieces = entry["pieces"].as_array().ok_or_else(malformed)?;
        served.insert(position, pieces.as_slice());
    }
    Ok(served)
}

/// Checks one entry's commitments against the pieces served for it.
fn check_entry(
    position: u64,
    entry: &CommittedEntry,
    served: Option<&&[Value]>,
) -> Result<u64, VerifyError> {
    let pieces: &[Value] = served.copied().unwrap_or(&[]);
    let mut hashed = 0;
    for commitment in &entry.commitments {
        let hex = commitment.to_string();
        let piece = pieces
            .iter()
            .find(|piece| piece["commitment"].as_str() == Some(hex.as_str()));
        let salt = piece.and_then(|piece| piece["salt"].as_str());
        let text = piece.and_then(|piece| piece["text"].as_str());
        match (salt, text, entry.erased_by) {
            (Some(salt), Some(text), None) => {
                if !hashes_to(salt, text, commitment) {
                    return Err(VerifyError::ContentAltered {
                        position,
                        commitment: hex,
                    });
                }
                hashed += 1;
            }
            (Some(_), Some(_), Some(erased_by)) => {
                return Err(VerifyError::ContentKeptAfterErasure {
                    position,
                    erased_by,
                })
            }
            (_, _, Some(_)) => {}
            (_, _, None) => {
                return Err(VerifyError::ContentWithheld {
                    position,
                    commitment: hex,
                })
            }
        }
    }
    Ok(hashed)
}

/// Whether `salt` (lowercase hexadecimal) and `text` give `commitment`.
fn hashes_to(salt: &str, text: &str, commitment: &Commitment) -> bool {
    let mut bytes = [0; SALT_BYTES];
    hex::decode_to_slice(salt, &mut bytes).is_ok() && Commitment::of(&bytes, text) == *commitment
}
