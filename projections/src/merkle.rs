//! The RFC 6962 / RFC 9162 Merkle tree over the log: hashing, roots, inclusion and consistency
//! proofs (generation and verification), and the compact right edge that grows it.
//!
//! Vocabulary. A *perfect node* of height `h` and index `i` is the root of the perfect subtree of
//! `2^h` leaves starting at leaf `i·2^h`; height 0 nodes are leaf hashes. Every stored hash of the
//! tree (in memory, in a database, or in C2SP tiles) is a perfect node, so everything here reads
//! the tree through [`NodeSource`] and never needs more than those nodes.
//!
//! Verification follows the RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms literally, after checking
//! the proof length exactly, so a proof with extra or missing hashes is refused with that reason
//! instead of a generic mismatch.
//!
//! Size-zero policy: a consistency proof from the empty tree (`size1 = 0`) is refused by both
//! [`consistency_proof`] and [`verify_consistency`], even towards another empty tree. Every tree
//! extends the empty tree, so such a "proof" would check nothing, and a caller that reaches this
//! case (a verifier with no earlier checkpoint) must decide explicitly to trust the first
//! checkpoint it sees rather than believe a check took place. This agrees with the
//! transparency-dev/merkle test vectors, which expect every `size1 = 0` case to fail.

use sha2::{Digest, Sha256};

use crate::protocol::Hash;

/// Domain-separation prefix of a leaf hash: a leaf can never be read as an interior node.
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of an interior node hash.
const NODE_PREFIX: u8 = 0x01;
/// Heights run from 0 to 63: a perfect subtree of 2^64 leaves would not fit a `u64` size.
pub const HEIGHT_MAX: u8 = 63;

/// SHA-256(0x00 ‖ entry): the leaf hash of one log entry.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// SHA-256(0x01 ‖ left ‖ right): the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// SHA-256 of nothing: RFC 6962's root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `count`, for `count ≥ 2`: where RFC 6962 splits a
/// tree of `count` leaves into its left and right subtrees.
fn split_point(count: u64) -> u64 {
    debug_assert!(count >= 2);
    1 << (63 - (count - 1).leading_zeros())
}

/// The reference Merkle Tree Hash (RFC 6962 §2.1) of a list of leaf hashes, computed by the
/// definition. Other functions are checked against it; it needs every leaf in memory.
pub fn root_of_leaves(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            // A slice length always fits a u64 and the split point is below it.
            let split = split_point(leaves.len() as u64) as usize;
            let (left, right) = leaves.split_at(split);
            node_hash(&root_of_leaves(left), &root_of_leaves(right))
        }
    }
}

/// Read access to the perfect nodes of a tree.
pub trait NodeSource {
    type Error;

    /// The hash of the perfect subtree of `2^height` leaves starting at leaf `index·2^height`;
    /// height 0 gives leaf hashes.
    fn node(&self, height: u8, index: u64) -> Result<Hash, Self::Error>;
}

impl<S: NodeSource + ?Sized> NodeSource for &S {
    type Error = S::Error;

    fn node(&self, height: u8, index: u64) -> Result<Hash, Self::Error> {
        (**self).node(height, index)
    }
}

/// Why a proof could not be built or did not verify. `E` is the node source's error; verifiers
/// read no nodes and use the default, which cannot occur.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ProofError<E = std::convert::Infallible> {
    #[error("leaf index {index} is not inside a tree of {size} leaves")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error(
        "no consistency proof starts from the empty tree: every tree extends it, so there is \
         nothing to prove"
    )]
    EmptyOldTree,
    #[error("the older tree size {size1} is larger than the newer tree size {size2}")]
    SizesDecrease { size1: u64, size2: u64 },
    #[error("the proof holds {actual} hashes; these sizes need exactly {expected}")]
    WrongProofLength { expected: usize, actual: usize },
    #[error("the inclusion proof leads to a different root hash")]
    RootMismatch,
    #[error("the consistency proof does not lead to the older root hash")]
    OldRootMismatch,
    #[error("the consistency proof does not lead to the newer root hash")]
    NewRootMismatch,
    #[error(
        "two different root hashes for the same tree size {size}: at most one of them is the \
         log's"
    )]
    DifferentRootsAtSameSize { size: u64 },
    #[error("leaves {start}..{end} do not form a subtree of the Merkle tree")]
    NotASubtree { start: u64, end: u64 },
    #[error("reading a tree node failed: {0}")]
    Source(E),
}

/// The perfect pieces of a subtree range, left to right, as `(height, index)`.
///
/// A range `[start, end)` is a subtree of some Merkle tree exactly when `start` is a multiple of
/// the smallest power of two at least `end − start` (the "valid subtree" rule of the Merkle Tree
/// Certificates draft). Its pieces are then the set bits of its width from the highest down, each
/// aligned because every earlier piece is a larger power of two.
fn subtree_pieces(start: u64, end: u64) -> Option<Vec<(u8, u64)>> {
    if start >= end {
        return None;
    }
    let width = end - start;
    let aligned = match width.checked_next_power_of_two() {
        Some(span) => start.is_multiple_of(span),
        // Wider than 2^63: only a range starting at leaf 0 is a subtree.
        None => start == 0,
    };
    if !aligned {
        return None;
    }
    let mut pieces = Vec::with_capacity(width.count_ones() as usize);
    let mut position = start;
    for height in (0..=HEIGHT_MAX).rev() {
        if (width >> height) & 1 == 1 {
            pieces.push((height, position >> height));
            // Stays at most `end`, so it cannot overflow.
            position += 1 << height;
        }
    }
    Some(pieces)
}

/// Folds perfect pieces (left to right) into the root of the range they cover, right to left:
/// the RFC 6962 shape of a subtree whose right part is not full.
fn fold_pieces(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(
        rest.iter()
            .rev()
            .fold(*last, |right, left| node_hash(left, &right)),
    )
}

/// The Merkle Tree Hash of leaves `start..end`, which must form a subtree (see
/// [`ProofError::NotASubtree`]): `0..size` for any size, and every subtree an RFC 6962 proof
/// names. Reads at most 64 perfect nodes.
pub fn subtree_root<S: NodeSource + ?Sized>(
    source: &S,
    start: u64,
    end: u64,
) -> Result<Hash, ProofError<S::Error>> {
    let pieces = subtree_pieces(start, end).ok_or(ProofError::NotASubtree { start, end })?;
    let mut hashes = Vec::with_capacity(pieces.len());
    for (height, index) in pieces {
        hashes.push(source.node(height, index).map_err(ProofError::Source)?);
    }
    fold_pieces(&hashes).ok_or(ProofError::NotASubtree { start, end })
}

/// The root of the tree of the first `size` leaves; [`empty_root`] for size 0.
pub fn root<S: NodeSource + ?Sized>(source: &S, size: u64) -> Result<Hash, ProofError<S::Error>> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree_root(source, 0, size)
}

/// The RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves, lowest
/// sibling first.
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    let mut proof = Vec::new();
    inclusion_path(source, index, 0, size, &mut proof)?;
    Ok(proof)
}

/// PATH(index, D[start:end]) with absolute leaf positions; recursion depth is at most 64.
fn inclusion_path<S: NodeSource + ?Sized>(
    source: &S,
    index: u64,
    start: u64,
    end: u64,
    proof: &mut Vec<Hash>,
) -> Result<(), ProofError<S::Error>> {
    let count = end - start;
    if count <= 1 {
        return Ok(());
    }
    let middle = start + split_point(count);
    if index < middle {
        inclusion_path(source, index, start, middle, proof)?;
        proof.push(subtree_root(source, middle, end)?);
    } else {
        inclusion_path(source, index, middle, end, proof)?;
        proof.push(subtree_root(source, start, middle)?);
    }
    Ok(())
}

/// The RFC 9162 §2.1.4.1 consistency proof that the tree of `size2` leaves extends the tree of
/// `size1` leaves. Requires `0 < size1 ≤ size2`; equal sizes give the empty proof.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    source: &S,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if size1 == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if size1 > size2 {
        return Err(ProofError::SizesDecrease { size1, size2 });
    }
    let mut proof = Vec::new();
    consistency_subproof(source, size1, 0, size2, true, &mut proof)?;
    Ok(proof)
}

/// SUBPROOF(old_size, D[start:end], whole) with absolute positions: `old_end` is where the older
/// tree ends, inside `start + 1..=end`. `whole` says the older tree's root is this very subtree,
/// which the verifier already holds.
fn consistency_subproof<S: NodeSource + ?Sized>(
    source: &S,
    old_end: u64,
    start: u64,
    end: u64,
    whole: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), ProofError<S::Error>> {
    if old_end == end {
        if !whole {
            proof.push(subtree_root(source, start, end)?);
        }
        return Ok(());
    }
    let middle = start + split_point(end - start);
    if old_end <= middle {
        consistency_subproof(source, old_end, start, middle, whole, proof)?;
        proof.push(subtree_root(source, middle, end)?);
    } else {
        consistency_subproof(source, old_end, middle, end, false, proof)?;
        proof.push(subtree_root(source, start, middle)?);
    }
    Ok(())
}

/// Length of a correct inclusion proof: the hashes below the point where the paths to `index`
/// and to the last leaf part ("inner"), plus one per left sibling above it ("border").
fn inclusion_proof_length(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    // `inner` reaches 64 when the paths part at the root of a tree wider than 2^63.
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// The climb RFC 9162's inclusion and consistency verifiers share (§2.1.3.2, §2.1.4.2): the
/// path's node at `index` on its level, whose last node is at `last`, one proof hash a level.
struct Climb {
    index: u64,
    last: u64,
}

impl Climb {
    /// Whether the next proof hash is the path's left sibling, and a step up past it; `None` once
    /// the path is at the root, where a proof has no more hashes.
    fn step(&mut self) -> Option<bool> {
        if self.at_root() {
            return None;
        }
        let sibling_is_left = self.index & 1 == 1 || self.index == self.last;
        if sibling_is_left {
            // A node on the right edge without a right sibling is promoted unchanged: climb past
            // those levels, which the proof has no hashes for.
            while self.index & 1 == 0 && self.index != 0 {
                self.index >>= 1;
                self.last >>= 1;
            }
        }
        self.index >>= 1;
        self.last >>= 1;
        Some(sibling_is_left)
    }

    fn at_root(&self) -> bool {
        self.last == 0
    }
}

/// Checks an RFC 9162 §2.1.3.2 inclusion proof: `leaf` is leaf `index` of the tree of `size`
/// leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    let expected = inclusion_proof_length(index, size);
    let wrong_length = ProofError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    let mut climb = Climb {
        index,
        last: size - 1,
    };
    let mut computed = *leaf;
    for sibling in proof {
        // RFC 9162 fails a proof that outlasts the path here; the exact length check above
        // already refuses it, and the step stays as the RFC states it.
        let Some(sibling_is_left) = climb.step() else {
            return Err(wrong_length);
        };
        computed = if sibling_is_left {
            node_hash(sibling, &computed)
        } else {
            node_hash(&computed, sibling)
        };
    }
    if !climb.at_root() {
        return Err(wrong_length);
    }
    if computed != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Length of a correct consistency proof between `0 < size1 < size2`: the inclusion proof of the
/// older tree's last leaf, minus the levels the older tree's largest left-aligned perfect subtree
/// already covers, plus that subtree's hash unless it is the whole older tree.
fn consistency_proof_length(size1: u64, size2: u64) -> usize {
    let last = size1 - 1;
    let inner = 64 - (last ^ (size2 - 1)).leading_zeros();
    let border = last.checked_shr(inner).unwrap_or(0).count_ones();
    let shift = size1.trailing_zeros();
    let seed = usize::from(!size1.is_power_of_two());
    seed + (inner - shift + border) as usize
}

/// Checks an RFC 9162 §2.1.4.2 consistency proof: the tree of `size2` leaves with root `root2`
/// extends the tree of `size1` leaves with root `root1`.
///
/// Equal sizes need the empty proof and equal roots (different roots at one size are a
/// [`ProofError::DifferentRootsAtSameSize`]). `size1 = 0` is always refused, see the module
/// documentation.
// long-function: a step-by-step transcription of RFC 9162 §2.1.4.2, kept in the RFC's order so
// that it can be read against the text.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesDecrease { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                actual: proof.len(),
            });
        }
        if root1 != root2 {
            return Err(ProofError::DifferentRootsAtSameSize { size: size1 });
        }
        return Ok(());
    }
    let expected = consistency_proof_length(size1, size2);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    let wrong_length = ProofError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    // When the older tree is a perfect subtree the verifier already holds its hash: root1.
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(root1);
    }
    path.extend(proof.iter());
    let Some((first, rest)) = path.split_first() else {
        return Err(wrong_length);
    };
    let mut climb = Climb {
        index: size1 - 1,
        last: size2 - 1,
    };
    // Start above the levels the first hash already covers: the older tree's rightmost perfect
    // subtree spans as many levels as size1 has trailing zeros.
    while climb.index & 1 == 1 {
        climb.index >>= 1;
        climb.last >>= 1;
    }
    let mut old_root = **first;
    let mut new_root = **first;
    for hash in rest {
        let Some(sibling_is_left) = climb.step() else {
            return Err(wrong_length);
        };
        if sibling_is_left {
            old_root = node_hash(hash, &old_root);
            new_root = node_hash(hash, &new_root);
        } else {
            new_root = node_hash(&new_root, hash);
        }
    }
    if !climb.at_root() {
        return Err(wrong_length);
    }
    if old_root != *root1 {
        return Err(ProofError::OldRootMismatch);
    }
    if new_root != *root2 {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}

/// One perfect node a new leaf completed: `(height, index, hash)`.
pub type CompletedNode = (u8, u64, Hash);

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum FrontierError {
    #[error("the tree already holds the largest number of leaves a 64-bit size can count")]
    Full,
    #[error("a tree of {size} leaves has {expected} right-edge hashes, not {actual}")]
    WrongEdgeLength {
        size: u64,
        expected: usize,
        actual: usize,
    },
}

/// The right edge of the tree (a "compact range" from leaf 0): the roots of the perfect subtrees
/// that make up the first `size` leaves, one per set bit of `size`, largest first. It grows the
/// tree one leaf at a time in O(log n) memory and time and gives the root at any moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "FrontierParts", into = "FrontierParts")]
pub struct Frontier {
    size: u64,
    /// Left to right: heights strictly decreasing, matching the set bits of `size`.
    edge: Vec<Hash>,
}

/// A frontier as snapshots write it; read back through [`Frontier::from_edge`], so a malformed
/// edge is refused rather than loaded.
#[derive(serde::Serialize, serde::Deserialize)]
struct FrontierParts {
    size: u64,
    edge: Vec<Hash>,
}

impl TryFrom<FrontierParts> for Frontier {
    type Error = FrontierError;

    fn try_from(parts: FrontierParts) -> Result<Frontier, FrontierError> {
        Frontier::from_edge(parts.size, parts.edge)
    }
}

impl From<Frontier> for FrontierParts {
    fn from(frontier: Frontier) -> FrontierParts {
        FrontierParts {
            size: frontier.size,
            edge: frontier.edge,
        }
    }
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds the edge of the tree of `size` leaves from stored perfect nodes (at most 64
    /// reads).
    pub fn from_source<S: NodeSource + ?Sized>(
        source: &S,
        size: u64,
    ) -> Result<Frontier, S::Error> {
        let mut edge = Vec::with_capacity(size.count_ones() as usize);
        let mut position = 0u64;
        for height in (0..=HEIGHT_MAX).rev() {
            if (size >> height) & 1 == 1 {
                edge.push(source.node(height, position >> height)?);
                position += 1 << height;
            }
        }
        Ok(Frontier { size, edge })
    }

    /// Restores a frontier saved with [`Frontier::edge`].
    pub fn from_edge(size: u64, edge: Vec<Hash>) -> Result<Frontier, FrontierError> {
        let expected = size.count_ones() as usize;
        if edge.len() != expected {
            return Err(FrontierError::WrongEdgeLength {
                size,
                expected,
                actual: edge.len(),
            });
        }
        Ok(Frontier { size, edge })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtree roots on the right edge, left (largest) to right.
    pub fn edge(&self) -> &[Hash] {
        &self.edge
    }

    /// The root of the tree so far; [`empty_root`] when empty.
    pub fn root(&self) -> Hash {
        fold_pieces(&self.edge).unwrap_or_else(empty_root)
    }

    /// Appends a leaf hash; returns every perfect node it completed, the leaf itself (height 0)
    /// first and then upwards.
    ///
    /// # Panics
    ///
    /// When the tree already holds `u64::MAX` leaves, which no log reaches (use
    /// [`Frontier::try_push`] to get an error instead).
    pub fn push(&mut self, leaf: Hash) -> Vec<CompletedNode> {
        match self.try_push(leaf) {
            Ok(completed) => completed,
            Err(error) => panic!("{error}"),
        }
    }

    /// Appends a leaf hash like [`Frontier::push`], refusing when the size would overflow.
    pub fn try_push(&mut self, leaf: Hash) -> Result<Vec<CompletedNode>, FrontierError> {
        let new_size = self.size.checked_add(1).ok_or(FrontierError::Full)?;
        let leaf_index = self.size;
        let mut completed = Vec::with_capacity(leaf_index.trailing_ones() as usize + 1);
        completed.push((0, leaf_index, leaf));
        let mut hash = leaf;
        let mut height = 0u8;
        // Each set low bit of the old size is a perfect subtree of that height directly to the
        // left; the new leaf completes its sibling, and the two merge one level up.
        while (leaf_index >> height) & 1 == 1 {
            let Some(left) = self.edge.pop() else {
                // The edge always holds one hash per set bit of the size.
                return Err(FrontierError::WrongEdgeLength {
                    size: self.size,
                    expected: self.size.count_ones() as usize,
                    actual: 0,
                });
            };
            hash = node_hash(&left, &hash);
            height += 1;
            completed.push((height, leaf_index >> height, hash));
        }
        self.edge.push(hash);
        self.size = new_size;
        Ok(completed)
    }
}

/// Why [`LeafHashes`] could not give a node.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[error("the perfect node of height {height} and index {index} is not complete in these leaves")]
pub struct MissingNode {
    pub height: u8,
    pub index: u64,
}

/// A [`NodeSource`] over every leaf hash held in memory: for tests and small trees. A node costs
/// time linear in its number of leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeafHashes(pub Vec<Hash>);

impl NodeSource for LeafHashes {
    type Error = MissingNode;

    fn node(&self, height: u8, index: u64) -> Result<Hash, MissingNode> {
        let missing = MissingNode { height, index };
        if height > HEIGHT_MAX {
            return Err(missing);
        }
        let start = index.checked_mul(1 << height).ok_or(missing)?;
        let end = start.checked_add(1 << height).ok_or(missing)?;
        let start = usize::try_from(start).map_err(|_| missing)?;
        let end = usize::try_from(end).map_err(|_| missing)?;
        let leaves = self.0.get(start..end).ok_or(missing)?;
        Ok(root_of_leaves(leaves))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(count: u64) -> Vec<Hash> {
        (0..count)
            .map(|index| leaf_hash(&index.to_be_bytes()))
            .collect()
    }

    fn hex_hash(text: &str) -> Hash {
        let mut hash = [0; 32];
        hex::decode_to_slice(text, &mut hash).unwrap();
        hash
    }

    /// RFC 6962's example leaves, as used by the Certificate Transparency reference tests.
    fn reference_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|text| leaf_hash(&hex::decode(text).unwrap()))
        .collect()
    }

    #[test]
    fn hashes_are_domain_separated_sha256() {
        assert_eq!(
            empty_root(),
            hex_hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(
            leaf_hash(b""),
            hex_hash("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        assert_ne!(leaf_hash(&[1; 64]), node_hash(&[1; 32], &[1; 32]));
    }

    #[test]
    fn the_reference_roots_of_the_rfc_example_tree_are_reproduced() {
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves = reference_leaves();
        let source = LeafHashes(leaves.clone());
        for (size, root_hex) in (1..).zip(expected) {
            let slice = &leaves[..size as usize];
            assert_eq!(root_of_leaves(slice), hex_hash(root_hex), "size {size}");
            assert_eq!(
                root(&source, size).unwrap(),
                hex_hash(root_hex),
                "size {size}"
            );
        }
    }

    #[test]
    fn a_known_inclusion_and_consistency_proof_are_reproduced() {
        let source = LeafHashes(reference_leaves());
        assert_eq!(
            inclusion_proof(&source, 5, 8).unwrap(),
            vec![
                hex_hash("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                hex_hash("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                hex_hash("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ]
        );
        assert_eq!(
            consistency_proof(&source, 6, 8).unwrap(),
            vec![
                hex_hash("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                hex_hash("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                hex_hash("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ]
        );
    }

    #[test]
    fn the_frontier_root_equals_the_reference_root_at_every_size() {
        let leaves = leaves(300);
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for (count, leaf) in (1..).zip(&leaves) {
            frontier.push(*leaf);
            assert_eq!(frontier.size(), count);
            assert_eq!(frontier.edge().len(), count.count_ones() as usize);
            assert_eq!(frontier.root(), root_of_leaves(&leaves[..count as usize]));
        }
    }

    #[test]
    fn push_reports_exactly_the_perfect_nodes_a_leaf_completes() {
        let leaves = leaves(64);
        let source = LeafHashes(leaves.clone());
        let mut frontier = Frontier::new();
        for (index, leaf) in (0u64..).zip(&leaves) {
            let completed = frontier.push(*leaf);
            // A leaf completes itself and one node per trailing one bit of its index.
            assert_eq!(completed.len() as u32, index.trailing_ones() + 1);
            for (height, node_index, hash) in completed {
                assert_eq!(node_index, index >> height);
                assert_eq!((node_index + 1) << height, index + 1);
                assert_eq!(source.node(height, node_index).unwrap(), hash);
            }
        }
    }

    #[test]
    fn a_frontier_rebuilt_from_stored_nodes_continues_identically() {
        let leaves = leaves(100);
        let source = LeafHashes(leaves.clone());
        for size in [0, 1, 2, 3, 31, 32, 33, 64, 99] {
            let mut rebuilt = Frontier::from_source(&source, size).unwrap();
            let mut grown = Frontier::new();
            for leaf in &leaves[..size as usize] {
                grown.push(*leaf);
            }
            assert_eq!(rebuilt, grown, "size {size}");
            let restored = Frontier::from_edge(size, grown.edge().to_vec()).unwrap();
            assert_eq!(restored, grown);
            rebuilt.push(leaves[size as usize]);
            grown.push(leaves[size as usize]);
            assert_eq!(rebuilt.root(), grown.root());
        }
        assert_eq!(
            Frontier::from_edge(3, vec![[0; 32]]),
            Err(FrontierError::WrongEdgeLength {
                size: 3,
                expected: 2,
                actual: 1
            })
        );
    }

    #[test]
    fn a_full_frontier_refuses_another_leaf_instead_of_wrapping() {
        let mut frontier = Frontier::from_edge(u64::MAX, vec![[7; 32]; 64]).unwrap();
        assert_eq!(frontier.try_push([1; 32]), Err(FrontierError::Full));
        assert_eq!(frontier.size(), u64::MAX);
        // One below the limit still grows, merging all 63 smaller subtrees into one.
        let mut almost = Frontier::from_edge(u64::MAX - 1, vec![[7; 32]; 63]).unwrap();
        let completed = almost.try_push([1; 32]).unwrap();
        assert_eq!(completed.len(), 1);
        assert_eq!(almost.size(), u64::MAX);
    }

    #[test]
    fn subtree_roots_refuse_ranges_that_are_not_subtrees() {
        let source = LeafHashes(leaves(16));
        assert_eq!(
            subtree_root(&source, 1, 5),
            Err(ProofError::NotASubtree { start: 1, end: 5 })
        );
        assert_eq!(
            subtree_root(&source, 4, 4),
            Err(ProofError::NotASubtree { start: 4, end: 4 })
        );
        assert_eq!(
            subtree_root(&source, 8, 13).unwrap(),
            root_of_leaves(&source.0[8..13])
        );
        assert!(subtree_pieces(1, u64::MAX).is_none());
        assert_eq!(
            subtree_pieces(0, u64::MAX).map(|pieces| pieces.len()),
            Some(64)
        );
        assert_eq!(
            subtree_pieces(1 << 63, u64::MAX).map(|pieces| pieces.len()),
            Some(63)
        );
    }

    #[test]
    fn proofs_with_the_wrong_length_say_so() {
        let leaves = leaves(7);
        let source = LeafHashes(leaves.clone());
        let tree_root = root(&source, 7).unwrap();
        let mut proof = inclusion_proof(&source, 2, 7).unwrap();
        proof.push(tree_root);
        assert_eq!(
            verify_inclusion(&leaves[2], 2, 7, &proof, &tree_root),
            Err(ProofError::WrongProofLength {
                expected: 3,
                actual: 4
            })
        );
        assert_eq!(
            verify_inclusion(&leaves[2], 7, 7, &[], &tree_root),
            Err(ProofError::IndexBeyondSize { index: 7, size: 7 })
        );
        assert_eq!(
            inclusion_proof(&source, 0, 0),
            Err(ProofError::IndexBeyondSize { index: 0, size: 0 })
        );
    }

    #[test]
    fn consistency_from_the_empty_tree_is_refused_in_both_directions() {
        let source = LeafHashes(leaves(4));
        for size2 in [4, 0] {
            assert_eq!(
                consistency_proof(&source, 0, size2),
                Err(ProofError::EmptyOldTree)
            );
        }
        assert_eq!(
            consistency_proof(&source, 3, 2),
            Err(ProofError::SizesDecrease { size1: 3, size2: 2 })
        );
        let empty = empty_root();
        assert_eq!(
            verify_consistency(0, 0, &[], &empty, &empty),
            Err(ProofError::EmptyOldTree)
        );
    }

    #[test]
    fn equal_sizes_need_an_empty_proof_and_equal_roots() {
        let source = LeafHashes(leaves(5));
        let tree_root = root(&source, 5).unwrap();
        assert_eq!(
            consistency_proof(&source, 5, 5).unwrap(),
            Vec::<Hash>::new()
        );
        assert_eq!(
            verify_consistency(5, 5, &[], &tree_root, &tree_root),
            Ok(())
        );
        assert_eq!(
            verify_consistency(5, 5, &[], &tree_root, &[0; 32]),
            Err(ProofError::DifferentRootsAtSameSize { size: 5 })
        );
        assert_eq!(
            verify_consistency(5, 5, &[tree_root], &tree_root, &tree_root),
            Err(ProofError::WrongProofLength {
                expected: 0,
                actual: 1
            })
        );
    }

    #[test]
    fn proofs_for_huge_sizes_have_the_predicted_length_without_overflow() {
        // A source that answers any node with a fixed hash: enough to exercise the arithmetic
        // of trees far too large to build.
        struct Constant;
        impl NodeSource for Constant {
            type Error = std::convert::Infallible;
            fn node(&self, _: u8, _: u64) -> Result<Hash, Self::Error> {
                Ok([3; 32])
            }
        }
        for (index, size) in [
            (0, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (1 << 63, u64::MAX),
            ((1 << 63) - 1, 1 << 63),
        ] {
            let proof = inclusion_proof(&Constant, index, size).unwrap();
            assert_eq!(proof.len(), inclusion_proof_length(index, size));
        }
        for (size1, size2) in [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
            let proof = consistency_proof(&Constant, size1, size2).unwrap();
            assert_eq!(proof.len(), consistency_proof_length(size1, size2));
        }
        assert!(root(&Constant, u64::MAX).is_ok());
    }

    #[test]
    fn leaf_hashes_refuse_nodes_beyond_their_leaves() {
        let source = LeafHashes(leaves(6));
        assert!(source.node(1, 2).is_ok());
        assert_eq!(
            source.node(2, 1),
            Err(MissingNode {
                height: 2,
                index: 1
            })
        );
        assert!(source.node(63, u64::MAX).is_err());
        assert!(source.node(64, 0).is_err());
    }
}
