//! The Merkle tree over the log as this node publishes it: signed checkpoints, C2SP tiles and
//! inclusion and consistency proofs, from state that stays small as the log grows.
//!
//! Invariant: the tree only ever covers durable entries, and the checkpoint it publishes is
//! signed over exactly its size and root. Memory: the right edge (O(log n)), every node of height
//! 8 and above (a quarter byte per entry), and the low nodes of the most recent leaves; older low
//! nodes are recomputed from the level-0 hash tiles in the store.

use std::collections::VecDeque;

use ed25519_dalek::SigningKey;
use projections::checkpoint::{sign_note, Checkpoint};
use projections::merkle::{self, Frontier, NodeSource};
use projections::tiles::TileAddress;
use projections::Hash;

use crate::store::{EventStore, StoreError, StoredTile, TileName};

use projections::limits::TREE_RECENT_LEAVES_MAX;
use projections::tiles::TILE_HEIGHT;
/// The C2SP tile width, as the tree's positions count.
const TILE_WIDTH: u64 = projections::tiles::TILE_WIDTH as u64;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("the tree has {size} entries; {requested} were asked for")]
    BeyondSize { requested: u64, size: u64 },
    #[error("a hash tile the tree needs is missing from the store: level {level}, index {index}")]
    MissingTile { level: u8, index: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Proof(String),
}

/// The tree state the writer grows and readers consult under a read lock.
pub struct TreeState {
    origin: String,
    frontier: Frontier,
    /// `high[h - 8][i]`: the perfect node of height `h ≥ 8` and index `i`.
    high: Vec<Vec<Hash>>,
    /// `low[h]`: the most recent perfect nodes of height `h < 8`, the first of index `low_start[h]`.
    low: [VecDeque<Hash>; TILE_HEIGHT as usize],
    low_start: [u64; TILE_HEIGHT as usize],
    /// The signed checkpoint at the current size.
    checkpoint: String,
}

impl TreeState {
    pub fn new(origin: &str, key: &SigningKey) -> TreeState {
        let mut state = TreeState {
            origin: origin.to_owned(),
            frontier: Frontier::default(),
            high: Vec::new(),
            low: Default::default(),
            low_start: [0; TILE_HEIGHT as usize],
            checkpoint: String::new(),
        };
        state.sign(key);
        state
    }

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Renames the log in checkpoints signed from now on (start-up only: the genesis entry's
    /// origin wins over configuration).
    pub fn set_origin(&mut self, origin: &str) {
        origin.clone_into(&mut self.origin);
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The signed note of the checkpoint at the current size.
    pub fn checkpoint(&self) -> &str {
        &self.checkpoint
    }

    /// Writes the stored nodes (not the origin or checkpoint) canonically: two trees over the same
    /// leaves give the same bytes. The right edge is the ledger's, which snapshots carry.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let put_hashes = |out: &mut Vec<u8>, hashes: &mut dyn ExactSizeIterator<Item = &Hash>| {
            out.extend_from_slice(&(hashes.len() as u64).to_le_bytes());
            for hash in hashes {
                out.extend_from_slice(hash);
            }
        };
        out.extend_from_slice(&(self.high.len() as u64).to_le_bytes());
        for row in &self.high {
            put_hashes(out, &mut row.iter());
        }
        for (nodes, start) in self.low.iter().zip(self.low_start) {
            out.extend_from_slice(&start.to_le_bytes());
            put_hashes(out, &mut nodes.iter());
        }
    }

    /// Reads a tree written by [`TreeState::encode`] around `frontier`; `None` when the bytes are
    /// not such a tree or hold nodes the frontier's size cannot have.
    pub fn decode(
        bytes: &[u8],
        frontier: Frontier,
        origin: &str,
        key: &SigningKey,
    ) -> Option<TreeState> {
        let mut rest = bytes;
        let take_u64 = |rest: &mut &[u8]| -> Option<u64> {
            let (head, tail) = rest.split_first_chunk::<8>()?;
            *rest = tail;
            Some(u64::from_le_bytes(*head))
        };
        let take_hashes = |rest: &mut &[u8], count: u64| -> Option<Vec<Hash>> {
            let count = usize::try_from(count).ok()?;
            if count.checked_mul(32)? > rest.len() {
                return None;
            }
            let (head, tail) = rest.split_at(count * 32);
            *rest = tail;
            Some(
                head.chunks_exact(32)
                    .filter_map(|chunk| chunk.try_into().ok())
                    .collect(),
            )
        };
        let size = frontier.size();
        let rows = take_u64(&mut rest)?;
        let mut high = Vec::new();
        for row in 0..rows {
            let count = take_u64(&mut rest)?;
            // Row r holds every perfect node of height 8 + r: size >> (8 + r) of them.
            if count != size.checked_shr(u32::try_from(row).ok()? + u32::from(TILE_HEIGHT))? {
                return None;
            }
            high.push(take_hashes(&mut rest, count)?);
        }
        let mut low: [VecDeque<Hash>; TILE_HEIGHT as usize] = Default::default();
        let mut low_start = [0; TILE_HEIGHT as usize];
        for height in 0..usize::from(TILE_HEIGHT) {
            low_start[height] = take_u64(&mut rest)?;
            let count = take_u64(&mut rest)?;
            if low_start[height].checked_add(count)? != size >> height {
                return None;
            }
            low[height] = take_hashes(&mut rest, count)?.into();
        }
        if !rest.is_empty() {
            return None;
        }
        let mut state = TreeState {
            origin: origin.to_owned(),
            frontier,
            high,
            low,
            low_start,
            checkpoint: String::new(),
        };
        state.sign(key);
        Some(state)
    }

    /// Appends one leaf; returns the hash tiles it completed, to be stored.
    pub fn push(&mut self, leaf_hash: Hash) -> Vec<StoredTile> {
        let mut completed = Vec::new();
        for (height, index, hash) in self.frontier.push(leaf_hash) {
            if height < TILE_HEIGHT {
                let nodes = &mut self.low[usize::from(height)];
                nodes.push_back(hash);
                let keep = usize::try_from(TREE_RECENT_LEAVES_MAX >> height).unwrap_or(usize::MAX);
                while nodes.len() > keep {
                    nodes.pop_front();
                    self.low_start[usize::from(height)] += 1;
                }
            } else {
                let row = usize::from(height - TILE_HEIGHT);
                if self.high.len() <= row {
                    self.high.resize_with(row + 1, Vec::new);
                }
                self.high[row].push(hash);
            }
            // A node of height 8L is the last hash of a full level-L tile when its index is the
            // tile's last slot.
            if height % TILE_HEIGHT == 0 && index % TILE_WIDTH == TILE_WIDTH - 1 {
                let level = height / TILE_HEIGHT;
                let tile_index = index / TILE_WIDTH;
                if let Ok(hashes) =
                    self.tile_hashes(None, level, tile_index, projections::tiles::TILE_WIDTH)
                {
                    completed.push(StoredTile {
                        level,
                        index: tile_index,
                        hashes: hashes.concat(),
                    });
                }
            }
        }
        completed
    }

    /// Signs a checkpoint at the current size.
    pub fn sign(&mut self, key: &SigningKey) {
        self.checkpoint = self.note_for(self.size(), self.root(), key);
    }

    fn note_for(&self, size: u64, root: Hash, key: &SigningKey) -> String {
        let body = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
        }
        .body();
        sign_note(&body, &self.origin, key)
    }

    /// A signed checkpoint at an earlier size (Ed25519 signatures are deterministic: the same
    /// size always gets the same note).
    pub fn checkpoint_at(
        &self,
        store: &dyn EventStore,
        size: u64,
        key: &SigningKey,
    ) -> Result<String, TreeError> {
        if size == self.size() {
            return Ok(self.checkpoint.clone());
        }
        let root = self.root_at(store, size)?;
        Ok(self.note_for(size, root, key))
    }

    pub fn root_at(&self, store: &dyn EventStore, size: u64) -> Result<Hash, TreeError> {
        if size == self.size() {
            return Ok(self.root());
        }
        self.over_nodes(store, size, |nodes| merkle::root(nodes, size))
    }

    /// Runs `compute` (a `merkle` proof or root) over the nodes of the tree at `size`, which must
    /// not be beyond the current size; what it cannot compute is a proof error, with its reason.
    pub fn over_nodes<T>(
        &self,
        store: &dyn EventStore,
        size: u64,
        compute: impl FnOnce(&StateNodes<'_>) -> Result<T, merkle::ProofError<TreeError>>,
    ) -> Result<T, TreeError> {
        self.check_size(size)?;
        compute(&self.nodes(store)).map_err(|error| TreeError::Proof(error.to_string()))
    }

    /// The hashes of a hash tile as it stands at the current size (`width` of them), or `None`
    /// when the tree has not reached that width yet.
    pub fn tile(
        &self,
        store: &dyn EventStore,
        address: &TileAddress,
    ) -> Result<Option<Vec<u8>>, TreeError> {
        let available = self.tile_width_available(address.level, address.index);
        if u64::from(address.width) > available {
            return Ok(None);
        }
        let hashes = self.tile_hashes(Some(store), address.level, address.index, address.width)?;
        Ok(Some(hashes.concat()))
    }

    /// How many hashes tile `index` of `level` holds at the current size (0 to 256).
    pub fn tile_width_available(&self, level: u8, index: u64) -> u64 {
        let height = u32::from(level) * u32::from(TILE_HEIGHT);
        let nodes = if height >= 64 {
            0
        } else {
            self.size() >> height
        };
        nodes
            .saturating_sub(index.saturating_mul(TILE_WIDTH))
            .min(TILE_WIDTH)
    }

    fn tile_hashes(
        &self,
        store: Option<&dyn EventStore>,
        level: u8,
        index: u64,
        width: u16,
    ) -> Result<Vec<Hash>, TreeError> {
        // Trees never reach height 64: level 8 and above are empty.
        if level >= 8 {
            return Err(TreeError::MissingTile { level, index });
        }
        let height = level * TILE_HEIGHT;
        let first = index.saturating_mul(TILE_WIDTH);
        let width = u64::from(width);
        if level > 0 {
            let row = self
                .high
                .get(usize::from(height - TILE_HEIGHT))
                .ok_or(TreeError::MissingTile { level, index })?;
            let start = usize::try_from(first).unwrap_or(usize::MAX);
            let end = usize::try_from(first + width).unwrap_or(usize::MAX);
            return row
                .get(start..end)
                .map(<[Hash]>::to_vec)
                .ok_or(TreeError::MissingTile { level, index });
        }
        let recent = &self.low[0];
        let recent_start = self.low_start[0];
        if first >= recent_start {
            let offset = usize::try_from(first - recent_start).unwrap_or(usize::MAX);
            let end = offset.saturating_add(usize::try_from(width).unwrap_or(usize::MAX));
            if end <= recent.len() {
                return Ok(recent.range(offset..end).copied().collect());
            }
            return Err(TreeError::MissingTile { level, index });
        }
        let store = store.ok_or(TreeError::MissingTile { level, index })?;
        let bytes = store
            .read_tile(0, index)?
            .ok_or(TreeError::MissingTile { level, index })?;
        let hashes: Vec<Hash> = bytes
            .chunks_exact(32)
            .take(usize::try_from(width).unwrap_or(usize::MAX))
            .map(|chunk| {
                let mut hash = [0; 32];
                hash.copy_from_slice(chunk);
                hash
            })
            .collect();
        if hashes.len() as u64 != width {
            return Err(TreeError::MissingTile { level, index });
        }
        Ok(hashes)
    }

    /// Checks every full hash tile stored for the first `below` leaves against this tree: a
    /// tile of level 1 and up against the nodes held in memory, a level-0 tile by the root of its
    /// hashes against the node of height 8 above it. Returns the tiles to store, recomputed (a
    /// level-0 tile from its entries): those missing and those stored with other hashes.
    pub fn recompute_bad_tiles(
        &self,
        store: &dyn EventStore,
        below: u64,
    ) -> Result<Vec<StoredTile>, TreeError> {
        let below = below.min(self.size());
        let mut recomputed = Vec::new();
        for level in 0..8u8 {
            let full = Self::full_tiles_at(below, level);
            for index in 0..full {
                let stored = store.read_tile(level, index)?;
                let sound = match (&stored, level) {
                    (None, _) => false,
                    (Some(bytes), 0) => self.leaf_tile_is_sound(index, bytes),
                    (Some(bytes), _) => {
                        let hashes = self.tile_hashes(None, level, index, TILE_WIDTH as u16)?;
                        *bytes == hashes.concat()
                    }
                };
                if !sound {
                    recomputed.push(self.recompute_tile(store, level, index)?);
                }
            }
        }
        Ok(recomputed)
    }

    /// How many full tiles level `level` has in a tree of `size` leaves.
    fn full_tiles_at(size: u64, level: u8) -> u64 {
        let height = u32::from(level) * u32::from(TILE_HEIGHT);
        size.checked_shr(height).unwrap_or(0) / TILE_WIDTH
    }

    /// A stored level-0 tile whose 256 hashes root to the tree's node of height 8 above them.
    fn leaf_tile_is_sound(&self, index: u64, bytes: &[u8]) -> bool {
        let hashes: Vec<Hash> = bytes
            .chunks_exact(32)
            .filter_map(|chunk| chunk.try_into().ok())
            .collect();
        let expected = self
            .high
            .first()
            .and_then(|row| row.get(usize::try_from(index).ok()?));
        hashes.len() == TILE_WIDTH as usize && expected == Some(&merkle::root_of_leaves(&hashes))
    }

    /// A full tile recomputed: level 0 from the entries it covers, which must root to the
    /// tree's node above them; higher levels from the nodes in memory.
    fn recompute_tile(
        &self,
        store: &dyn EventStore,
        level: u8,
        index: u64,
    ) -> Result<StoredTile, TreeError> {
        let hashes = if level == 0 {
            let entries = store.read(index * TILE_WIDTH, TILE_WIDTH as usize)?;
            let leaves: Vec<Hash> = entries
                .iter()
                .map(|entry| merkle::leaf_hash(&entry.bytes))
                .collect();
            let leaves_bytes = leaves.concat();
            if !self.leaf_tile_is_sound(index, &leaves_bytes) {
                return Err(TreeError::Proof(format!(
                    "the entries under hash tile 0/{index} do not root to the tree's node above them"
                )));
            }
            leaves_bytes
        } else {
            self.tile_hashes(None, level, index, TILE_WIDTH as u16)?
                .concat()
        };
        Ok(StoredTile {
            level,
            index,
            hashes,
        })
    }

    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        if size > self.size() {
            return Err(TreeError::BeyondSize {
                requested: size,
                size: self.size(),
            });
        }
        Ok(())
    }

    fn nodes<'a>(&'a self, store: &'a dyn EventStore) -> StateNodes<'a> {
        StateNodes { state: self, store }
    }
}

/// Stores recomputed tiles, naming each stored one they replace (a corrupted tile).
pub fn store_recomputed_tiles(
    store: &dyn EventStore,
    tiles: &[StoredTile],
) -> Result<Vec<TileName>, StoreError> {
    let mut repaired = Vec::new();
    for chunk in tiles.chunks(1024) {
        repaired.extend(store.reconcile_tiles(chunk)?);
    }
    for tile in &repaired {
        tracing::error!(
            %tile,
            "a stored hash tile differed from the entries' recomputation; replaced by it"
        );
    }
    Ok(repaired)
}

/// Stores the tiles a replay recomputes while it goes, `REPLAY_TILES_PENDING_MAX` at a time, so
/// replaying millions of entries never holds all their tiles; keeps the names of those it
/// replaced, and the first store error, which `finish` returns (later chunks are then dropped:
/// the replay has failed, and its tiles are rewritten by the next start).
pub struct TileWriter<'a> {
    store: &'a dyn EventStore,
    pending: Vec<StoredTile>,
    repaired: Vec<TileName>,
    failed: Option<StoreError>,
}

impl<'a> TileWriter<'a> {
    pub fn new(store: &'a dyn EventStore) -> TileWriter<'a> {
        TileWriter {
            store,
            pending: Vec::new(),
            repaired: Vec::new(),
            failed: None,
        }
    }

    pub fn extend(&mut self, tiles: impl IntoIterator<Item = StoredTile>) {
        self.pending.extend(tiles);
        if self.pending.len() >= projections::limits::REPLAY_TILES_PENDING_MAX {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let tiles = std::mem::take(&mut self.pending);
        if self.failed.is_some() {
            return;
        }
        match store_recomputed_tiles(self.store, &tiles) {
            Ok(repaired) => self.repaired.extend(repaired),
            Err(error) => self.failed = Some(error),
        }
    }

    /// Stores what is pending; the tiles replaced, or the first error.
    pub fn finish(mut self) -> Result<Vec<TileName>, StoreError> {
        self.flush();
        match self.failed {
            Some(error) => Err(error),
            None => Ok(self.repaired),
        }
    }
}

/// Perfect nodes read from the in-memory state, falling back to stored level-0 tiles for low
/// nodes of old leaves.
pub struct StateNodes<'a> {
    state: &'a TreeState,
    store: &'a dyn EventStore,
}

impl NodeSource for StateNodes<'_> {
    type Error = TreeError;

    fn node(&self, height: u8, index: u64) -> Result<Hash, TreeError> {
        let state = self.state;
        if height >= TILE_HEIGHT {
            return state
                .high
                .get(usize::from(height - TILE_HEIGHT))
                .and_then(|row| row.get(usize::try_from(index).ok()?))
                .copied()
                .ok_or(TreeError::MissingTile {
                    level: height / TILE_HEIGHT,
                    index,
                });
        }
        let start = state.low_start[usize::from(height)];
        if index >= start {
            if let Some(hash) = usize::try_from(index - start)
                .ok()
                .and_then(|offset| state.low[usize::from(height)].get(offset))
            {
                return Ok(*hash);
            }
        }
        // An old low node: recompute it from the stored level-0 tile that holds its leaves.
        let first_leaf = index << height;
        let tile_index = first_leaf / TILE_WIDTH;
        let leaves = state.tile_hashes(Some(self.store), 0, tile_index, TILE_WIDTH as u16)?;
        let offset = usize::try_from(first_leaf % TILE_WIDTH).unwrap_or(usize::MAX);
        let count = 1usize << height;
        let slice =
            leaves
                .get(offset..offset.saturating_add(count))
                .ok_or(TreeError::MissingTile {
                    level: 0,
                    index: tile_index,
                })?;
        Ok(merkle::root_of_leaves(slice))
    }
}

/// What an accepted command gets back: where its entry sits, and the proof that the signed
/// checkpoint covers it, so the citizen can later show the server cannot drop it unnoticed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    /// Position of the entry in the log, counted from zero; also its leaf index in the tree.
    pub position: u64,
    /// SHA-256 of the entry bytes, hexadecimal: the chain link.
    pub entry_hash: String,
    /// The entry's RFC 6962 leaf hash, SHA-256(0x00 ‖ entry), base64.
    pub leaf_hash: String,
    pub server_time: projections::Timestamp,
    /// Tree size of the checkpoint below.
    pub tree_size: u64,
    /// The signed checkpoint (C2SP tlog-checkpoint in a C2SP signed note) that covers the entry.
    pub checkpoint: String,
    /// RFC 6962 inclusion proof from the leaf to the checkpoint's root: base64 hashes, lowest
    /// first.
    pub inclusion_proof: Vec<String>,
    /// The same proof and checkpoint as one C2SP tlog-proof document.
    pub tlog_proof: String,
    /// Present on an upgraded receipt: the proof that the new checkpoint extends the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyProof>,
}

/// An RFC 6962 consistency proof between two tree sizes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsistencyProof {
    pub from_size: u64,
    pub to_size: u64,
    /// Base64 hashes.
    pub proof: Vec<String>,
}

// One definition with the verifier, which reads the hashes the server writes.
pub use veche_verifier::verification::{base64_of as base64, hash_from_base64};

/// Where a durable entry sits: what the writer answers, and what a receipt proves in the tree.
/// (It lives here, beside the tree, so the writer depends on the tree and never the reverse.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub position: u64,
    pub entry_hash: projections::Hash,
    pub leaf_hash: projections::Hash,
    pub server_time: projections::Timestamp,
}

impl Appended {
    pub fn of(event: &projections::Event) -> Appended {
        Appended {
            position: event.position,
            entry_hash: event.hash,
            leaf_hash: event.leaf_hash,
            server_time: event.server_time,
        }
    }
}

impl TreeState {
    /// A receipt for an appended entry against the current checkpoint; with `since`, also the
    /// consistency proof from that earlier tree size.
    pub fn receipt(
        &self,
        store: &dyn EventStore,
        appended: &Appended,
        since: Option<u64>,
    ) -> Result<Receipt, TreeError> {
        let size = self.size();
        let proof = self.over_nodes(store, size, |nodes| {
            merkle::inclusion_proof(nodes, appended.position, size)
        })?;
        let consistency = match since {
            Some(from_size) => Some(ConsistencyProof {
                from_size,
                to_size: size,
                proof: self
                    .over_nodes(store, size, |nodes| {
                        merkle::consistency_proof(nodes, from_size, size)
                    })?
                    .iter()
                    .map(base64)
                    .collect(),
            }),
            None => None,
        };
        Ok(Receipt {
            position: appended.position,
            entry_hash: hex::encode(appended.entry_hash),
            leaf_hash: base64(&appended.leaf_hash),
            server_time: appended.server_time,
            tree_size: size,
            checkpoint: self.checkpoint.clone(),
            tlog_proof: projections::checkpoint::encode_tlog_proof(
                appended.position,
                &proof,
                &self.checkpoint,
            ),
            inclusion_proof: proof.iter().map(base64).collect(),
            consistency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn tile(index: u64, byte: u8) -> StoredTile {
        StoredTile {
            level: 0,
            index,
            hashes: vec![byte; 32 * 256],
        }
    }

    #[test]
    fn a_replays_tiles_are_stored_a_chunk_at_a_time_and_a_corrupted_one_is_named_and_replaced() {
        let store = MemoryStore::new();
        store.write_tiles(&[tile(3, 0xee)]).unwrap();
        let mut writer = TileWriter::new(&store);
        let chunk = projections::limits::REPLAY_TILES_PENDING_MAX as u64;
        writer.extend((0..chunk).map(|index| tile(index, 1)));
        // A full chunk is in the store before the replay ends.
        assert_eq!(
            store.read_tile(0, chunk - 1).unwrap(),
            Some(vec![1; 32 * 256])
        );
        assert!(writer.pending.is_empty());
        writer.extend([tile(chunk, 1)]);
        assert_eq!(store.read_tile(0, chunk).unwrap(), None);
        let repaired = writer.finish().unwrap();
        assert_eq!(store.read_tile(0, chunk).unwrap(), Some(vec![1; 32 * 256]));
        assert_eq!(store.read_tile(0, 3).unwrap(), Some(vec![1; 32 * 256]));
        assert_eq!(repaired.len(), 1, "{repaired:?}");
    }
}
