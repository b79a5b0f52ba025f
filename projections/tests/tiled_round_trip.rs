//! A tree grown leaf by leaf with `Frontier` and `TileBuilder`, served back from its tiles, gives
//! the same roots and proofs as the reference computation over every leaf.
// Integration tests read their vector files from disk; the purity rules are for the library.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::BTreeMap;

use projections::merkle::{
    self, consistency_proof, inclusion_proof, leaf_hash, root_of_leaves, verify_consistency,
    verify_inclusion, Frontier, LeafHashes,
};
use projections::tiles::{tiles_for_size, TileBuilder, TileSource, TiledNodes, TILE_WIDTH};
use projections::Hash;

const LEAVES: u64 = 1000;
/// Sizes at which the log "publishes a checkpoint", with its partial tiles: around every tile
/// boundary and the powers of two.
const SIZES: [u64; 16] = [
    1, 2, 3, 127, 128, 255, 256, 257, 511, 512, 513, 700, 767, 768, 999, 1000,
];

/// Tiles as a log stores them: each full tile once, each published partial tile at its width.
#[derive(Default)]
struct PublishedTiles {
    tiles: BTreeMap<(u8, u64, u16), Vec<Hash>>,
    reads: RefCell<Vec<(u8, u64, u16)>>,
}

impl TileSource for PublishedTiles {
    type Error = String;

    fn tile(&self, level: u8, index: u64, width: u16) -> Result<Vec<Hash>, String> {
        self.reads.borrow_mut().push((level, index, width));
        self.tiles
            .get(&(level, index, width))
            .cloned()
            .ok_or_else(|| format!("tile {level}/{index} of width {width} was never published"))
    }
}

fn grow() -> (Vec<Hash>, PublishedTiles) {
    let leaves: Vec<Hash> = (0..LEAVES)
        .map(|index| leaf_hash(format!("entry {index}").as_bytes()))
        .collect();
    let mut frontier = Frontier::new();
    let mut builder = TileBuilder::new();
    let mut published = PublishedTiles::default();
    for (size, leaf) in (1..).zip(&leaves) {
        for tile in builder.add(&frontier.push(*leaf)).unwrap() {
            assert_eq!(tile.width, TILE_WIDTH);
            let previous = published
                .tiles
                .insert((tile.level, tile.index, tile.width), tile.hashes);
            assert!(previous.is_none(), "a full tile was produced twice");
        }
        if SIZES.contains(&size) {
            for tile in builder.partial_tiles() {
                published
                    .tiles
                    .insert((tile.level, tile.index, tile.width), tile.hashes);
            }
            assert_eq!(frontier.root(), root_of_leaves(&leaves[..size as usize]));
        }
    }
    (leaves, published)
}

#[test]
fn every_tile_a_published_size_needs_was_produced() {
    let (_, published) = grow();
    for size in SIZES {
        for address in tiles_for_size(size) {
            if !address.is_entry_bundle() {
                let key = (address.level, address.index, address.width);
                assert!(published.tiles.contains_key(&key), "{}", address.path());
            }
        }
    }
    // 1000 leaves: three full level-0 tiles and nothing full above.
    let full: Vec<(u8, u64)> = published
        .tiles
        .keys()
        .filter(|(_, _, width)| *width == TILE_WIDTH)
        .map(|(level, index, _)| (*level, *index))
        .collect();
    assert_eq!(full, vec![(0, 0), (0, 1), (0, 2)]);
}

#[test]
fn roots_and_proofs_read_from_tiles_equal_the_reference_at_every_published_size() {
    let (leaves, published) = grow();
    let reference = LeafHashes(leaves.clone());
    for size in SIZES {
        let nodes = TiledNodes::new(&published, size);
        let root = root_of_leaves(&leaves[..size as usize]);
        assert_eq!(merkle::root(&nodes, size).unwrap(), root, "size {size}");
        assert_eq!(
            Frontier::from_source(&nodes, size).unwrap().root(),
            root,
            "size {size}"
        );
        for index in (0..size).step_by(37).chain([size - 1]) {
            let proof = inclusion_proof(&nodes, index, size).unwrap();
            assert_eq!(proof, inclusion_proof(&reference, index, size).unwrap());
            let leaf = &leaves[index as usize];
            assert_eq!(verify_inclusion(leaf, index, size, &proof, &root), Ok(()));
        }
        for older in SIZES.iter().copied().filter(|older| *older <= size) {
            let proof = consistency_proof(&nodes, older, size).unwrap();
            assert_eq!(proof, consistency_proof(&reference, older, size).unwrap());
            let older_root = root_of_leaves(&leaves[..older as usize]);
            assert_eq!(
                verify_consistency(older, size, &proof, &older_root, &root),
                Ok(()),
                "{older} to {size}"
            );
        }
    }
}

#[test]
fn a_reader_asks_only_for_tiles_its_tree_size_vouches_for() {
    let (_, published) = grow();
    let listed: Vec<(u8, u64, u16)> = tiles_for_size(513)
        .into_iter()
        .filter(|address| !address.is_entry_bundle())
        .map(|address| (address.level, address.index, address.width))
        .collect();
    published.reads.borrow_mut().clear();
    let nodes = TiledNodes::new(&published, 513);
    for index in 0..513 {
        inclusion_proof(&nodes, index, 513).unwrap();
    }
    consistency_proof(&nodes, 200, 513).unwrap();
    for read in published.reads.borrow().iter() {
        assert!(
            listed.contains(read),
            "read {read:?} outside the tree of 513"
        );
    }
}
