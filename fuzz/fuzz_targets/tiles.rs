//! Checks that a tile path parses only when `path()` writes it back unchanged (one tile, one URL),
//! that every address the constructors accept parses back from its path, and that entry bundles
//! and hash tiles decode exactly the bytes their encoders write.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use projections::tiles::{
    decode_entry_bundle, decode_tile_hashes, encode_entry_bundle, parse_tile_path, BundleError,
    Tile, TileAddress, TileError, HASH_BYTES, TILE_WIDTH,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(address) = parse_tile_path(text) {
            assert_eq!(
                address.path(),
                text,
                "a tile path parsed that is not canonical"
            );
        }
    }
    // The first two bytes choose a width, the rest is a tile or a bundle.
    if let Some((width, rest)) = data.split_first_chunk::<2>() {
        let width = u16::from_be_bytes(*width);
        entry_bundle(rest, width);
        hash_tile(rest, width);
    }
    let _ = constructed(&mut Unstructured::new(data));
});

fn entry_bundle(bytes: &[u8], width: u16) {
    match decode_entry_bundle(bytes, width) {
        Ok(entries) => {
            assert_eq!(entries.len(), usize::from(width));
            assert_eq!(
                encode_entry_bundle(&entries),
                Ok(bytes.to_vec()),
                "a decoded bundle does not encode to its bytes"
            );
        }
        Err(BundleError::WrongEntryCount { count }) => {
            assert!(count == 0 || count > usize::from(TILE_WIDTH));
        }
        Err(_) => {}
    }
}

fn hash_tile(bytes: &[u8], width: u16) {
    let decoded = decode_tile_hashes(bytes, width);
    let well_formed =
        (1..=TILE_WIDTH).contains(&width) && bytes.len() == usize::from(width) * HASH_BYTES;
    assert_eq!(decoded.is_ok(), well_formed, "{decoded:?}");
    if let Ok(hashes) = decoded {
        assert_eq!(hashes.concat(), bytes);
        let tile = Tile::decode(7, 12, width, bytes);
        assert_eq!(tile.as_ref().map(Tile::encode), Ok(bytes.to_vec()));
    }
    assert_eq!(
        Tile::decode(64, 0, width, bytes),
        Err(TileError::InvalidLevel { level: 64 })
    );
}

/// Addresses and bundles built from fuzzer-chosen numbers must read back from what they write.
fn constructed(input: &mut Unstructured) -> Result<()> {
    let level: u8 = input.arbitrary()?;
    let index: u64 = input.arbitrary()?;
    let width: u16 = input.arbitrary()?;
    for address in [
        TileAddress::hashes(level, index, width),
        TileAddress::entry_bundle(index, width),
    ]
    .into_iter()
    .flatten()
    {
        let path = address.path();
        assert_eq!(parse_tile_path(&path), Ok(address), "{path}");
        assert_eq!(address.is_partial(), path.contains(".p/"));
    }
    let mut entries: Vec<&[u8]> = Vec::new();
    while entries.len() < usize::from(TILE_WIDTH) && !input.is_empty() {
        let length = input.int_in_range(0..=64usize)?;
        entries.push(input.bytes(length.min(input.len()))?);
    }
    if let Ok(bundle) = encode_entry_bundle(&entries) {
        let width = u16::try_from(entries.len()).unwrap_or(0);
        let decoded = decode_entry_bundle(&bundle, width);
        assert_eq!(
            decoded,
            Ok(entries.iter().map(|entry| entry.to_vec()).collect())
        );
    }
    Ok(())
}
