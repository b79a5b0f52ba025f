//! C2SP `tlog-tiles` (https://c2sp.org/tlog-tiles): the Merkle tree and the entries served as
//! immutable static files, and the tree read back from them.
//!
//! A level-`L` tile holds up to 256 consecutive perfect nodes of height `8L`: level 0 holds leaf
//! hashes, level 1 the roots of full level-0 tiles, and so on. The tile index is written in
//! 3-digit path elements (`x001/x234/067`), and a tile that is not yet full is served as a partial
//! tile `.p/<width>`, whose width for a tree of size `s` is `floor(s / 256^L) mod 256`. Entry
//! bundles (`tile/entries/...`) hold the entries of the matching level-0 tile, each behind a
//! 16-bit big-endian length.

use crate::merkle::{root_of_leaves, CompletedNode, NodeSource};
use crate::protocol::Hash;

/// Tree levels one tile spans: a tile is the bottom row of a perfect subtree of height 8.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u16 = 256;
/// Highest level a tile path may name.
pub const LEVEL_MAX: u8 = 63;
/// Bytes of one hash in a tile.
pub const HASH_BYTES: usize = 32;
/// Levels that can hold anything in a tree whose size fits a `u64`: 256^8 = 2^64.
const LEVELS_IN_USE: usize = 8;
const TILE_WIDTH_U64: u64 = TILE_WIDTH as u64;
const TILE_WIDTH_USIZE: usize = TILE_WIDTH as usize;

/// What a tile path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// `tile/<L>/<N>[.p/<W>]`: concatenated 32-byte node hashes.
    Hashes,
    /// `tile/entries/<N>[.p/<W>]`: length-prefixed log entries.
    EntryBundle,
}

/// One tile or entry bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileAddress {
    pub kind: TileKind,
    /// The level of a hash tile; 0 for an entry bundle, which pairs with the level-0 tile.
    pub level: u8,
    pub index: u64,
    /// 256 for a full tile, 1 to 255 for a partial one.
    pub width: u16,
}

impl TileAddress {
    pub fn hashes(level: u8, index: u64, width: u16) -> Result<TileAddress, TilePathError> {
        if level > LEVEL_MAX {
            return Err(TilePathError::InvalidLevel);
        }
        check_width(width)?;
        Ok(TileAddress {
            kind: TileKind::Hashes,
            level,
            index,
            width,
        })
    }

    pub fn entry_bundle(index: u64, width: u16) -> Result<TileAddress, TilePathError> {
        check_width(width)?;
        Ok(TileAddress {
            kind: TileKind::EntryBundle,
            level: 0,
            index,
            width,
        })
    }

    pub fn is_entry_bundle(&self) -> bool {
        self.kind == TileKind::EntryBundle
    }

    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    /// The path below the log's prefix, e.g. `tile/0/x001/234.p/7`.
    pub fn path(&self) -> String {
        match self.kind {
            TileKind::Hashes => hash_tile_path(self.level, self.index, self.width),
            TileKind::EntryBundle => entry_bundle_path(self.index, self.width),
        }
    }
}

fn check_width(width: u16) -> Result<(), TilePathError> {
    if width == 0 || width > TILE_WIDTH {
        return Err(TilePathError::InvalidWidth);
    }
    Ok(())
}

/// `tile/<level>/<index>[.p/<width>]`. A width of 256 names the full tile; `width` must be 1 to
/// 256 (see [`TileAddress::hashes`] for a checked constructor).
pub fn hash_tile_path(level: u8, index: u64, width: u16) -> String {
    format!("tile/{level}/{}", index_and_width(index, width))
}

/// `tile/entries/<index>[.p/<width>]`, with the same rules as [`hash_tile_path`].
pub fn entry_bundle_path(index: u64, width: u16) -> String {
    format!("tile/entries/{}", index_and_width(index, width))
}

fn index_and_width(index: u64, width: u16) -> String {
    debug_assert!((1..=TILE_WIDTH).contains(&width), "tile width {width}");
    let mut groups = vec![index % 1000];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let mut path = String::new();
    for (position, group) in groups.iter().rev().enumerate() {
        if position + 1 < groups.len() {
            path.push_str(&format!("x{group:03}/"));
        } else {
            path.push_str(&format!("{group:03}"));
        }
    }
    if width < TILE_WIDTH {
        path.push_str(&format!(".p/{width}"));
    }
    path
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum TilePathError {
    #[error("a tile path starts with `tile/`")]
    NotATilePath,
    #[error("a tile level is a decimal number from 0 to 63 without leading zeros")]
    InvalidLevel,
    #[error(
        "a tile index is written as 3-digit path elements, all but the last starting with `x`"
    )]
    InvalidIndex,
    #[error("a tile index is written without leading zero groups (`x000/`)")]
    IndexLeadingZeros,
    #[error("the tile index does not fit 64 bits")]
    IndexTooLarge,
    #[error("a partial tile width is a decimal number from 1 to 255 without leading zeros")]
    InvalidWidth,
    #[error("a full tile is written without `.p/256`")]
    FullWidthWrittenAsPartial,
}

/// Parses a tile path exactly as [`TileAddress::path`] writes it; every other spelling of the
/// same tile is refused, so one tile has one URL (and one cache entry).
pub fn parse_tile_path(path: &str) -> Result<TileAddress, TilePathError> {
    let rest = path
        .strip_prefix("tile/")
        .ok_or(TilePathError::NotATilePath)?;
    let (first, rest) = rest.split_once('/').ok_or(TilePathError::InvalidIndex)?;
    let (index, width) = parse_index_and_width(rest)?;
    if first == "entries" {
        return TileAddress::entry_bundle(index, width);
    }
    let level: u8 = parse_decimal(first)
        .and_then(|level| u8::try_from(level).ok())
        .filter(|level| *level <= LEVEL_MAX)
        .ok_or(TilePathError::InvalidLevel)?;
    TileAddress::hashes(level, index, width)
}

/// A canonical decimal: ASCII digits only, no sign, no leading zero unless it is `0` itself.
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok()
}

fn parse_group(text: &str) -> Result<u64, TilePathError> {
    if text.len() != 3 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(TilePathError::InvalidIndex);
    }
    text.parse().map_err(|_| TilePathError::InvalidIndex)
}

fn parse_index_and_width(text: &str) -> Result<(u64, u16), TilePathError> {
    let elements: Vec<&str> = text.split('/').collect();
    // The last index element is the first one without the `x` prefix.
    let last = elements
        .iter()
        .position(|element| !element.starts_with('x'))
        .ok_or(TilePathError::InvalidIndex)?;
    let mut index = 0u64;
    for (position, element) in elements[..last].iter().enumerate() {
        let group = parse_group(element.strip_prefix('x').unwrap_or(element))?;
        if position == 0 && group == 0 {
            return Err(TilePathError::IndexLeadingZeros);
        }
        index = index
            .checked_mul(1000)
            .and_then(|index| index.checked_add(group))
            .ok_or(TilePathError::IndexTooLarge)?;
    }
    let (final_group, partial) = match elements[last].strip_suffix(".p") {
        Some(group) => (group, true),
        None => (elements[last], false),
    };
    let final_value = parse_group(final_group)?;
    index = index
        .checked_mul(1000)
        .and_then(|index| index.checked_add(final_value))
        .ok_or(TilePathError::IndexTooLarge)?;
    let after = &elements[last + 1..];
    let width = match (partial, after) {
        (false, []) => TILE_WIDTH,
        (true, [width]) => {
            let width = parse_decimal(width).ok_or(TilePathError::InvalidWidth)?;
            if width == u64::from(TILE_WIDTH) {
                return Err(TilePathError::FullWidthWrittenAsPartial);
            }
            u16::try_from(width)
                .ok()
                .filter(|width| (1..TILE_WIDTH).contains(width))
                .ok_or(TilePathError::InvalidWidth)?
        }
        (true, _) => return Err(TilePathError::InvalidWidth),
        (false, _) => return Err(TilePathError::InvalidIndex),
    };
    Ok((index, width))
}

/// Largest entry an entry bundle can carry: its length is a 16-bit number.
pub const BUNDLE_ENTRY_BYTES_MAX: usize = u16::MAX as usize;
// Every entry veche accepts must be servable in a bundle.
const _: () = assert!(crate::limits::ENTRY_BYTES_MAX <= BUNDLE_ENTRY_BYTES_MAX);

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum BundleError {
    #[error("a bundle holds 1 to 256 entries, not {count}")]
    WrongEntryCount { count: usize },
    #[error("entry {position} of the bundle is {length_bytes} bytes, over the 65535-byte limit")]
    EntryTooLong {
        position: usize,
        length_bytes: usize,
    },
    #[error("the bundle ends inside entry {position}")]
    Truncated { position: usize },
    #[error("{count} bytes follow the bundle's last entry")]
    TrailingBytes { count: usize },
}

/// Writes entries as an entry bundle: each behind its length as a big-endian `u16`.
pub fn encode_entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, BundleError> {
    if entries.is_empty() || entries.len() > TILE_WIDTH_USIZE {
        return Err(BundleError::WrongEntryCount {
            count: entries.len(),
        });
    }
    let total: usize = entries.iter().map(|entry| 2 + entry.as_ref().len()).sum();
    let mut bytes = Vec::with_capacity(total);
    for (position, entry) in entries.iter().enumerate() {
        let entry = entry.as_ref();
        let length = u16::try_from(entry.len()).map_err(|_| BundleError::EntryTooLong {
            position,
            length_bytes: entry.len(),
        })?;
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend_from_slice(entry);
    }
    Ok(bytes)
}

/// Reads an entry bundle of exactly `width` entries; a short bundle or bytes after the last
/// entry are refused, because either means the bundle does not match the tile it belongs to.
pub fn decode_entry_bundle(bytes: &[u8], width: u16) -> Result<Vec<Vec<u8>>, BundleError> {
    let count = usize::from(width);
    if count == 0 || count > TILE_WIDTH_USIZE {
        return Err(BundleError::WrongEntryCount { count });
    }
    let mut entries = Vec::with_capacity(count);
    let mut rest = bytes;
    for position in 0..count {
        let (length, after) = rest
            .split_first_chunk::<2>()
            .ok_or(BundleError::Truncated { position })?;
        let length = usize::from(u16::from_be_bytes(*length));
        if after.len() < length {
            return Err(BundleError::Truncated { position });
        }
        let (entry, after) = after.split_at(length);
        entries.push(entry.to_vec());
        rest = after;
    }
    if !rest.is_empty() {
        return Err(BundleError::TrailingBytes { count: rest.len() });
    }
    Ok(entries)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum TileError {
    #[error("a tile holds 1 to 256 hashes, not {width}")]
    InvalidWidth { width: usize },
    #[error("a tile of {width} hashes is {expected_bytes} bytes, not {actual_bytes}")]
    WrongLength {
        width: u16,
        expected_bytes: usize,
        actual_bytes: usize,
    },
    #[error("tile level {level} is above the highest level, {LEVEL_MAX}")]
    InvalidLevel { level: u8 },
}

/// Splits tile bytes into exactly `width` hashes.
pub fn decode_tile_hashes(bytes: &[u8], width: u16) -> Result<Vec<Hash>, TileError> {
    if width == 0 || width > TILE_WIDTH {
        return Err(TileError::InvalidWidth {
            width: usize::from(width),
        });
    }
    let expected_bytes = usize::from(width) * HASH_BYTES;
    if bytes.len() != expected_bytes {
        return Err(TileError::WrongLength {
            width,
            expected_bytes,
            actual_bytes: bytes.len(),
        });
    }
    Ok(bytes
        .chunks_exact(HASH_BYTES)
        .map(|chunk| {
            let mut hash = [0; HASH_BYTES];
            hash.copy_from_slice(chunk);
            hash
        })
        .collect())
}

/// A hash tile with its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tile {
    pub level: u8,
    pub index: u64,
    pub width: u16,
    pub hashes: Vec<Hash>,
}

impl Tile {
    pub fn decode(level: u8, index: u64, width: u16, bytes: &[u8]) -> Result<Tile, TileError> {
        if level > LEVEL_MAX {
            return Err(TileError::InvalidLevel { level });
        }
        Ok(Tile {
            level,
            index,
            width,
            hashes: decode_tile_hashes(bytes, width)?,
        })
    }

    /// The served bytes: the hashes, concatenated.
    pub fn encode(&self) -> Vec<u8> {
        self.hashes.concat()
    }

    pub fn address(&self) -> TileAddress {
        TileAddress {
            kind: TileKind::Hashes,
            level: self.level,
            index: self.index,
            width: self.width,
        }
    }

    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }
}

/// Read access to the hash tiles of a log: a directory, a database, an HTTP client, a cache.
pub trait TileSource {
    type Error;

    /// The `width` hashes of tile `index` at `level`: the full tile for 256, else the partial
    /// tile of that width.
    fn tile(&self, level: u8, index: u64, width: u16) -> Result<Vec<Hash>, Self::Error>;
}

impl<T: TileSource + ?Sized> TileSource for &T {
    type Error = T::Error;

    fn tile(&self, level: u8, index: u64, width: u16) -> Result<Vec<Hash>, Self::Error> {
        (**self).tile(level, index, width)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum TiledNodesError<E> {
    #[error("reading tile {level}/{index} (width {width}) failed: {error}")]
    Source {
        level: u8,
        index: u64,
        width: u16,
        error: E,
    },
    #[error("the node of height {height} and index {index} is not complete in a tree of {size}")]
    NodeBeyondSize { height: u8, index: u64, size: u64 },
    #[error("tile {level}/{index} should hold {expected} hashes but holds {actual}")]
    WrongTileWidth {
        level: u8,
        index: u64,
        expected: u16,
        actual: usize,
    },
}

/// The width of tile `index` at `level` in a tree of `size` leaves: 256 when full, the partial
/// width otherwise, 0 when the tile does not exist yet.
pub fn tile_width_at(size: u64, level: u8, index: u64) -> u16 {
    let Some(hashes) = hashes_at_level(size, level) else {
        return 0;
    };
    let Some(first) = index.checked_mul(TILE_WIDTH_U64) else {
        return 0;
    };
    let width = hashes.saturating_sub(first).min(TILE_WIDTH_U64);
    // At most 256 by the line above.
    width as u16
}

/// How many hashes level `level` holds in a tree of `size` leaves: `floor(size / 256^level)`.
fn hashes_at_level(size: u64, level: u8) -> Option<u64> {
    let shift = u32::from(level) * u32::from(TILE_HEIGHT);
    size.checked_shr(shift).filter(|hashes| *hashes > 0)
}

/// The perfect nodes of the tree of `size` leaves, read from its hash tiles: a node of height
/// `8L + r` is the root of `2^r` consecutive hashes of one level-`L` tile. Tiles are read at the
/// width they have at `size`, so only tiles a checkpoint of that size vouches for are asked for.
#[derive(Clone, Debug)]
pub struct TiledNodes<T> {
    tiles: T,
    size: u64,
}

impl<T: TileSource> TiledNodes<T> {
    pub fn new(tiles: T, size: u64) -> TiledNodes<T> {
        TiledNodes { tiles, size }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn into_inner(self) -> T {
        self.tiles
    }
}

impl<T: TileSource> NodeSource for TiledNodes<T> {
    type Error = TiledNodesError<T::Error>;

    fn node(&self, height: u8, index: u64) -> Result<Hash, Self::Error> {
        let beyond = TiledNodesError::NodeBeyondSize {
            height,
            index,
            size: self.size,
        };
        let end = index
            .checked_add(1)
            .and_then(|count| count.checked_shl(u32::from(height)))
            .filter(|end| end >> height == index + 1);
        match end {
            Some(end) if end <= self.size => {}
            _ => return Err(beyond),
        }
        let level = height / TILE_HEIGHT;
        let rise = height % TILE_HEIGHT;
        // The node covers level hashes first..first + 2^rise, all inside one tile because the
        // block is aligned to its own power-of-two width, which divides 256.
        let first = index << rise;
        let tile_index = first / TILE_WIDTH_U64;
        let width = tile_width_at(self.size, level, tile_index);
        let hashes = read_tile_of_width(&self.tiles, level, tile_index, width)?;
        let offset = (first % TILE_WIDTH_U64) as usize;
        let block = hashes
            .get(offset..offset + (1usize << rise))
            .ok_or(beyond)?;
        Ok(root_of_leaves(block))
    }
}

/// The hashes of one tile from `tiles`, refused unless there are exactly `width` of them: a
/// source that answers with another width would make every node read from it wrong.
fn read_tile_of_width<T: TileSource + ?Sized>(
    tiles: &T,
    level: u8,
    index: u64,
    width: u16,
) -> Result<Vec<Hash>, TiledNodesError<T::Error>> {
    let hashes = tiles
        .tile(level, index, width)
        .map_err(|error| TiledNodesError::Source {
            level,
            index,
            width,
            error,
        })?;
    if hashes.len() != usize::from(width) {
        return Err(TiledNodesError::WrongTileWidth {
            level,
            index,
            expected: width,
            actual: hashes.len(),
        });
    }
    Ok(hashes)
}

/// Every hash tile and entry bundle that exists for a tree of `size` leaves, full and partial:
/// what a mirror copies. Hash tiles come level by level, then the entry bundles. The list has
/// about `size / 128` addresses.
pub fn tiles_for_size(size: u64) -> Vec<TileAddress> {
    let mut addresses = Vec::new();
    for level in 0..LEVELS_IN_USE as u8 {
        let Some(hashes) = hashes_at_level(size, level) else {
            break;
        };
        push_level(&mut addresses, TileKind::Hashes, level, hashes);
    }
    if size > 0 {
        push_level(&mut addresses, TileKind::EntryBundle, 0, size);
    }
    addresses
}

fn push_level(addresses: &mut Vec<TileAddress>, kind: TileKind, level: u8, hashes: u64) {
    let full = hashes / TILE_WIDTH_U64;
    let partial = (hashes % TILE_WIDTH_U64) as u16;
    for index in 0..full {
        addresses.push(TileAddress {
            kind,
            level,
            index,
            width: TILE_WIDTH,
        });
    }
    if partial > 0 {
        addresses.push(TileAddress {
            kind,
            level,
            index: full,
            width: partial,
        });
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum TileBuilderError {
    #[error(
        "the nodes are not what appending leaf {leaf} completes: expected height {height} index \
         {index}"
    )]
    UnexpectedNodes { leaf: u64, height: u8, index: u64 },
    #[error("the tree already holds the largest number of leaves a 64-bit size can count")]
    Full,
}

/// Groups the perfect nodes a growing tree completes into hash tiles: give it the output of
/// every [`crate::merkle::Frontier::push`], in order, and it returns each tile the moment it
/// becomes full, and the partial tiles of the current size on request. It holds at most 255
/// hashes per level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TileBuilder {
    size: u64,
    /// `pending[L]`: the hashes of the level-`L` tile that is not full yet.
    pending: [Vec<Hash>; LEVELS_IN_USE],
}

impl TileBuilder {
    /// The builder of an empty tree.
    pub fn new() -> TileBuilder {
        TileBuilder::default()
    }

    /// Resumes at a tree of `size` leaves by reading its partial tiles.
    pub fn from_tiles<T: TileSource + ?Sized>(
        tiles: &T,
        size: u64,
    ) -> Result<TileBuilder, TiledNodesError<T::Error>> {
        let mut builder = TileBuilder {
            size,
            pending: Default::default(),
        };
        for level in 0..LEVELS_IN_USE as u8 {
            let Some(hashes) = hashes_at_level(size, level) else {
                break;
            };
            let width = (hashes % TILE_WIDTH_U64) as u16;
            if width == 0 {
                continue;
            }
            let index = hashes / TILE_WIDTH_U64;
            builder.pending[usize::from(level)] = read_tile_of_width(tiles, level, index, width)?;
        }
        Ok(builder)
    }

    /// Leaves seen so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Takes the nodes one leaf completed (all of them, as `Frontier::push` returns them; heights
    /// that are not multiples of 8 are skipped) and returns the tiles that became full.
    ///
    /// The nodes are checked against what the next leaf must complete before anything changes,
    /// so a skipped or repeated leaf is refused and the builder stays usable.
    pub fn add(&mut self, completed: &[CompletedNode]) -> Result<Vec<Tile>, TileBuilderError> {
        let leaf = self.size;
        let new_size = leaf.checked_add(1).ok_or(TileBuilderError::Full)?;
        let mut expected = (0..LEVELS_IN_USE as u8).filter_map(|level| {
            let shift = u32::from(level) * u32::from(TILE_HEIGHT);
            // Level L gains a hash when the new size is a multiple of 256^L.
            let span = 1u64.checked_shl(shift)?;
            (new_size % span == 0).then(|| (level * TILE_HEIGHT, (new_size >> shift) - 1))
        });
        let mut given = completed
            .iter()
            .filter(|(height, _, _)| height % TILE_HEIGHT == 0);
        let mut nodes = Vec::with_capacity(2);
        loop {
            match (expected.next(), given.next()) {
                (None, None) => break,
                (Some((height, index)), Some(node)) if node.0 == height && node.1 == index => {
                    nodes.push((height / TILE_HEIGHT, node.2));
                }
                (Some((height, index)), _) => {
                    return Err(TileBuilderError::UnexpectedNodes {
                        leaf,
                        height,
                        index,
                    })
                }
                (None, Some(node)) => {
                    return Err(TileBuilderError::UnexpectedNodes {
                        leaf,
                        height: node.0,
                        index: node.1,
                    })
                }
            }
        }
        self.size = new_size;
        let mut full = Vec::new();
        for (level, hash) in nodes {
            let pending = &mut self.pending[usize::from(level)];
            pending.push(hash);
            if pending.len() == TILE_WIDTH_USIZE {
                let shift = u32::from(level) * u32::from(TILE_HEIGHT);
                full.push(Tile {
                    level,
                    index: (new_size >> shift) / TILE_WIDTH_U64 - 1,
                    width: TILE_WIDTH,
                    hashes: std::mem::take(pending),
                });
            }
        }
        Ok(full)
    }

    /// The partial tile of `level` at the current size, if that level has one.
    pub fn partial_tile(&self, level: u8) -> Option<Tile> {
        let pending = self.pending.get(usize::from(level))?;
        if pending.is_empty() {
            return None;
        }
        let hashes = hashes_at_level(self.size, level)?;
        Some(Tile {
            level,
            index: hashes / TILE_WIDTH_U64,
            width: pending.len() as u16,
            hashes: pending.clone(),
        })
    }

    /// Every partial tile at the current size, lowest level first.
    pub fn partial_tiles(&self) -> Vec<Tile> {
        (0..LEVELS_IN_USE as u8)
            .filter_map(|level| self.partial_tile(level))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, leaf_hash, Frontier, LeafHashes};
    use std::collections::BTreeMap;

    /// Tiles kept in memory, keyed by level and index; a partial tile is served from the full
    /// or a wider tile's prefix, as a log may do once it has moved on.
    #[derive(Default)]
    struct MemoryTiles(BTreeMap<(u8, u64), Vec<Hash>>);

    impl TileSource for MemoryTiles {
        type Error = String;

        fn tile(&self, level: u8, index: u64, width: u16) -> Result<Vec<Hash>, String> {
            let hashes = self
                .0
                .get(&(level, index))
                .ok_or_else(|| format!("no tile {level}/{index}"))?;
            hashes
                .get(..usize::from(width))
                .map(<[Hash]>::to_vec)
                .ok_or_else(|| format!("tile {level}/{index} is narrower than {width}"))
        }
    }

    fn grow(count: u64) -> (Vec<Hash>, MemoryTiles, TileBuilder) {
        let leaves: Vec<Hash> = (0..count)
            .map(|index| leaf_hash(&index.to_le_bytes()))
            .collect();
        let mut frontier = Frontier::new();
        let mut builder = TileBuilder::new();
        let mut tiles = MemoryTiles::default();
        for leaf in &leaves {
            for tile in builder.add(&frontier.push(*leaf)).unwrap() {
                assert!(tile.is_full());
                tiles.0.insert((tile.level, tile.index), tile.hashes);
            }
        }
        for tile in builder.partial_tiles() {
            tiles.0.insert((tile.level, tile.index), tile.hashes);
        }
        (leaves, tiles, builder)
    }

    #[test]
    fn tile_paths_group_the_index_in_threes() {
        assert_eq!(hash_tile_path(0, 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(hash_tile_path(2, 0, 1), "tile/2/000.p/1");
        assert_eq!(hash_tile_path(1, 1000, 256), "tile/1/x001/000");
        assert_eq!(hash_tile_path(0, 999, 255), "tile/0/999.p/255");
        assert_eq!(entry_bundle_path(5, 3), "tile/entries/005.p/3");
        assert_eq!(
            hash_tile_path(0, u64::MAX, 256),
            "tile/0/x018/x446/x744/x073/x709/x551/615"
        );
    }

    #[test]
    fn every_path_written_parses_back_to_its_tile() {
        for index in [
            0,
            1,
            999,
            1000,
            1001,
            999_999,
            1_000_000,
            1_234_067,
            u64::MAX,
        ] {
            for width in [1, 7, 255, 256] {
                for level in [0, 1, 63] {
                    let address = TileAddress::hashes(level, index, width).unwrap();
                    assert_eq!(parse_tile_path(&address.path()), Ok(address));
                }
                let bundle = TileAddress::entry_bundle(index, width).unwrap();
                assert_eq!(parse_tile_path(&bundle.path()), Ok(bundle));
                assert!(bundle.is_entry_bundle());
            }
        }
    }

    #[test]
    fn non_canonical_tile_paths_are_refused() {
        let refused = [
            ("tiles/0/000", TilePathError::NotATilePath),
            ("tile/00/000", TilePathError::InvalidLevel),
            ("tile/64/000", TilePathError::InvalidLevel),
            ("tile/+1/000", TilePathError::InvalidLevel),
            ("tile//000", TilePathError::InvalidLevel),
            ("tile/0/00", TilePathError::InvalidIndex),
            ("tile/0/0000", TilePathError::InvalidIndex),
            ("tile/0/x001", TilePathError::InvalidIndex),
            ("tile/0/000/", TilePathError::InvalidIndex),
            ("tile/0/000/001", TilePathError::InvalidIndex),
            ("tile/0/x1/001", TilePathError::InvalidIndex),
            ("tile/0/-01", TilePathError::InvalidIndex),
            ("tile/0", TilePathError::InvalidIndex),
            ("tile/0/x000/001", TilePathError::IndexLeadingZeros),
            (
                "tile/0/x018/x446/x744/x073/x709/x551/616",
                TilePathError::IndexTooLarge,
            ),
            (
                "tile/0/x001/x000/x000/x000/x000/x000/x000/000",
                TilePathError::IndexTooLarge,
            ),
            ("tile/0/000.p/256", TilePathError::FullWidthWrittenAsPartial),
            (
                "tile/entries/000.p/256",
                TilePathError::FullWidthWrittenAsPartial,
            ),
            ("tile/0/000.p/0", TilePathError::InvalidWidth),
            ("tile/0/000.p/007", TilePathError::InvalidWidth),
            ("tile/0/000.p/300", TilePathError::InvalidWidth),
            ("tile/0/000.p/", TilePathError::InvalidWidth),
            ("tile/0/000.p", TilePathError::InvalidWidth),
            ("tile/0/000.p/5/6", TilePathError::InvalidWidth),
        ];
        for (path, error) in refused {
            assert_eq!(parse_tile_path(path), Err(error), "{path}");
        }
    }

    #[test]
    fn entry_bundles_round_trip_and_refuse_bad_framing() {
        let entries: Vec<Vec<u8>> = vec![b"one".to_vec(), Vec::new(), vec![7; 300]];
        let bytes = encode_entry_bundle(&entries).unwrap();
        assert_eq!(&bytes[..5], b"\x00\x03one");
        assert_eq!(decode_entry_bundle(&bytes, 3), Ok(entries.clone()));
        assert_eq!(
            decode_entry_bundle(&bytes[..bytes.len() - 1], 3),
            Err(BundleError::Truncated { position: 2 })
        );
        assert_eq!(
            decode_entry_bundle(&bytes, 2),
            Err(BundleError::TrailingBytes { count: 302 })
        );
        assert_eq!(
            decode_entry_bundle(&bytes[..1], 1),
            Err(BundleError::Truncated { position: 0 })
        );
        assert_eq!(
            decode_entry_bundle(&bytes, 0),
            Err(BundleError::WrongEntryCount { count: 0 })
        );
        let too_long = vec![vec![0u8; 65_536]];
        assert_eq!(
            encode_entry_bundle(&too_long),
            Err(BundleError::EntryTooLong {
                position: 0,
                length_bytes: 65_536
            })
        );
        assert!(encode_entry_bundle(&[vec![0u8; 65_535]]).is_ok());
        assert_eq!(
            encode_entry_bundle(&vec![b"x"; 257]),
            Err(BundleError::WrongEntryCount { count: 257 })
        );
    }

    #[test]
    fn tiles_decode_only_at_their_exact_length() {
        let tile = Tile {
            level: 1,
            index: 4,
            width: 2,
            hashes: vec![[1; 32], [2; 32]],
        };
        let bytes = tile.encode();
        assert_eq!(bytes.len(), 64);
        assert_eq!(Tile::decode(1, 4, 2, &bytes), Ok(tile.clone()));
        assert_eq!(
            Tile::decode(1, 4, 3, &bytes),
            Err(TileError::WrongLength {
                width: 3,
                expected_bytes: 96,
                actual_bytes: 64
            })
        );
        assert_eq!(
            Tile::decode(1, 4, 0, &[]),
            Err(TileError::InvalidWidth { width: 0 })
        );
        assert_eq!(
            Tile::decode(64, 4, 2, &bytes),
            Err(TileError::InvalidLevel { level: 64 })
        );
        assert_eq!(tile.address().path(), "tile/1/004.p/2");
    }

    #[test]
    fn the_tiles_of_a_tree_match_the_specification_examples() {
        let tiles = tiles_for_size(70_000);
        let hash_tiles: Vec<&TileAddress> = tiles
            .iter()
            .filter(|tile| !tile.is_entry_bundle())
            .collect();
        let count = |level: u8, full: bool| {
            hash_tiles
                .iter()
                .filter(|tile| tile.level == level && tile.is_partial() != full)
                .count()
        };
        assert_eq!((count(0, true), count(0, false)), (273, 1));
        assert_eq!((count(1, true), count(1, false)), (1, 1));
        assert_eq!((count(2, true), count(2, false)), (0, 1));
        assert_eq!(hash_tiles.len(), 277);
        let partial_widths: Vec<(u8, u64, u16)> = hash_tiles
            .iter()
            .filter(|tile| tile.is_partial())
            .map(|tile| (tile.level, tile.index, tile.width))
            .collect();
        assert_eq!(partial_widths, vec![(0, 273, 112), (1, 1, 17), (2, 0, 1)]);
        assert_eq!(tiles.len() - hash_tiles.len(), 274);

        let at_256 = tiles_for_size(256);
        assert_eq!(
            at_256,
            vec![
                TileAddress::hashes(0, 0, 256).unwrap(),
                TileAddress::hashes(1, 0, 1).unwrap(),
                TileAddress::entry_bundle(0, 256).unwrap(),
            ]
        );
        assert!(tiles_for_size(0).is_empty());
        // The listing of the largest trees would not fit in memory; their widths are computed.
        assert_eq!(tile_width_at(u64::MAX, 7, 0), 255);
        assert_eq!(tile_width_at(u64::MAX, 8, 0), 0);
        assert_eq!(tile_width_at(300, 0, 1), 44);
        assert_eq!(tile_width_at(300, 0, 2), 0);
        assert_eq!(tile_width_at(300, 0, u64::MAX), 0);
    }

    #[test]
    fn nodes_read_through_tiles_equal_nodes_computed_from_the_leaves() {
        let (leaves, tiles, _) = grow(70_000 / 64);
        let size = leaves.len() as u64;
        let reference = LeafHashes(leaves);
        let tiled = TiledNodes::new(&tiles, size);
        for height in 0..=10u8 {
            for index in (0..size >> height).step_by(7) {
                assert_eq!(
                    tiled.node(height, index).unwrap(),
                    reference.node(height, index).unwrap(),
                    "height {height} index {index}"
                );
            }
        }
        assert_eq!(
            tiled.node(0, size),
            Err(TiledNodesError::NodeBeyondSize {
                height: 0,
                index: size,
                size
            })
        );
        assert!(tiled.node(63, 1).is_err());
        assert!(tiled.node(64, 0).is_err());
        assert!(tiled.node(1, u64::MAX).is_err());
        assert_eq!(
            merkle::root(&tiled, size).unwrap(),
            merkle::root_of_leaves(&reference.0)
        );
    }

    #[test]
    fn a_tile_source_returning_the_wrong_width_is_caught() {
        struct Short;
        impl TileSource for Short {
            type Error = String;
            fn tile(&self, _: u8, _: u64, _: u16) -> Result<Vec<Hash>, String> {
                Ok(vec![[0; 32]])
            }
        }
        assert_eq!(
            TiledNodes::new(Short, 10).node(0, 3),
            Err(TiledNodesError::WrongTileWidth {
                level: 0,
                index: 0,
                expected: 10,
                actual: 1
            })
        );
        assert!(TileBuilder::from_tiles(&Short, 10).is_err());
    }

    #[test]
    fn the_tile_builder_yields_each_full_tile_once_and_the_right_partial_tiles() {
        let (leaves, tiles, builder) = grow(256 * 256 + 300);
        let size = leaves.len() as u64;
        assert_eq!(builder.size(), size);
        let partial: Vec<(u8, u64, u16)> = builder
            .partial_tiles()
            .iter()
            .map(|tile| (tile.level, tile.index, tile.width))
            .collect();
        assert_eq!(partial, vec![(0, 257, 44), (1, 1, 1), (2, 0, 1)]);
        assert_eq!(builder.partial_tile(3), None);
        assert_eq!(builder.partial_tile(200), None);
        // Every listed tile is present at its width.
        for address in tiles_for_size(size) {
            if !address.is_entry_bundle() {
                let tile = tiles.tile(address.level, address.index, address.width);
                assert_eq!(
                    tile.map(|hashes| hashes.len()),
                    Ok(usize::from(address.width))
                );
            }
        }
        let level_one_full = &tiles.0[&(1, 0)];
        assert_eq!(level_one_full.len(), 256);
        assert_eq!(
            level_one_full[255],
            merkle::root_of_leaves(&leaves[255 * 256..256 * 256])
        );
    }

    #[test]
    fn a_resumed_tile_builder_continues_like_the_original() {
        let (leaves, tiles, builder) = grow(600);
        let mut resumed = TileBuilder::from_tiles(&tiles, 600).unwrap();
        assert_eq!(resumed, builder);
        let mut frontier = Frontier::from_source(&TiledNodes::new(&tiles, 600), 600).unwrap();
        let mut original = builder;
        let extra: Vec<Hash> = (600..1024u64)
            .map(|index| leaf_hash(&index.to_le_bytes()))
            .collect();
        for leaf in &extra {
            let completed = frontier.push(*leaf);
            assert_eq!(resumed.add(&completed), original.add(&completed));
        }
        let mut all = leaves;
        all.extend(extra);
        assert_eq!(frontier.root(), merkle::root_of_leaves(&all));
        assert_eq!(resumed.partial_tiles(), original.partial_tiles());
    }

    #[test]
    fn the_tile_builder_refuses_nodes_out_of_order_and_stays_usable() {
        let mut frontier = Frontier::new();
        let mut builder = TileBuilder::new();
        let first = frontier.push([1; 32]);
        let second = frontier.push([2; 32]);
        assert_eq!(
            builder.add(&second),
            Err(TileBuilderError::UnexpectedNodes {
                leaf: 0,
                height: 0,
                index: 0
            })
        );
        assert_eq!(builder.size(), 0);
        assert_eq!(
            builder.add(&[]),
            Err(TileBuilderError::UnexpectedNodes {
                leaf: 0,
                height: 0,
                index: 0
            })
        );
        assert_eq!(builder.add(&first), Ok(Vec::new()));
        assert_eq!(builder.add(&second), Ok(Vec::new()));
        // Dropping the height-8 node that leaf 255 completes is noticed.
        let mut builder = TileBuilder::new();
        let mut frontier = Frontier::new();
        for index in 0..255u64 {
            builder.add(&frontier.push([index as u8; 32])).unwrap();
        }
        let completed = frontier.push([9; 32]);
        let without_tile_root: Vec<CompletedNode> = completed
            .iter()
            .copied()
            .filter(|(height, _, _)| *height != 8)
            .collect();
        assert_eq!(
            builder.add(&without_tile_root),
            Err(TileBuilderError::UnexpectedNodes {
                leaf: 255,
                height: 8,
                index: 0
            })
        );
        let full = builder.add(&completed).unwrap();
        assert_eq!(full.len(), 1);
        assert_eq!((full[0].level, full[0].index, full[0].width), (0, 0, 256));
    }
}
