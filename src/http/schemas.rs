//! OpenAPI schemas of types defined outside `http`, so that only `http` names utoipa.
//!
//! Each mirrors the serialised form of its type member for member; the drift test on
//! `openapi/openapi.json` and the served-document test hold the two together.

use utoipa::ToSchema;

/// What an accepted command gets back: where its entry sits, and the proof that the signed
/// checkpoint covers it, so the citizen can later show the server cannot drop it unnoticed.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: handlers answer with `transparency::Receipt`.
pub struct Receipt {
    /// Position of the entry in the log, counted from zero; also its leaf index in the tree.
    position: u64,
    /// SHA-256 of the entry bytes, hexadecimal: the chain link.
    entry_hash: String,
    /// The entry's RFC 6962 leaf hash, SHA-256(0x00 ‖ entry), base64.
    leaf_hash: String,
    #[schema(value_type = String, format = DateTime)]
    server_time: String,
    /// Tree size of the checkpoint below.
    tree_size: u64,
    /// The signed checkpoint (C2SP tlog-checkpoint in a C2SP signed note) that covers the entry.
    checkpoint: String,
    /// RFC 6962 inclusion proof from the leaf to the checkpoint's root: base64 hashes, lowest
    /// first.
    inclusion_proof: Vec<String>,
    /// The same proof and checkpoint as one C2SP tlog-proof document.
    tlog_proof: String,
    /// Present on an upgraded receipt: the proof that the new checkpoint extends the old one.
    consistency: Option<ConsistencyProof>,
}

/// An RFC 6962 consistency proof between two tree sizes.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: handlers answer with `transparency::ConsistencyProof`.
pub struct ConsistencyProof {
    from_size: u64,
    to_size: u64,
    /// Base64 hashes.
    proof: Vec<String>,
}
