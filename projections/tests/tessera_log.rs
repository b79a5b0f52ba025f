//! Reads a real C2SP tlog-tiles log written by transparency-dev/tessera: its signed checkpoints,
//! hash tiles and entry bundles; and checks the published signed-note examples.
// Integration tests read their vector files from disk; the purity rules are for the library.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use projections::checkpoint::{
    key_id, open_note, sign_note, verifier_key, Checkpoint, CheckpointError, NoteError,
    NoteVerifier, TlogProof,
};
use projections::merkle::{
    self, consistency_proof, empty_root, inclusion_proof, leaf_hash, verify_consistency,
    verify_inclusion, Frontier, NodeSource, ProofError,
};
use projections::tiles::{
    decode_entry_bundle, decode_tile_hashes, entry_bundle_path, hash_tile_path, TileBuilder,
    TileSource, TiledNodes,
};
use projections::{Hash, PublicKey};

const ORIGIN: &str = "example.com/log/testdata";
const LOG_KEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
const ENTRIES: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf",
    "threeten", "fourten", "fivten",
];

/// Hash tiles read from a directory laid out as the log serves them.
struct DirectoryTiles(PathBuf);

impl TileSource for DirectoryTiles {
    type Error = String;

    fn tile(&self, level: u8, index: u64, width: u16) -> Result<Vec<Hash>, String> {
        let path = self.0.join(hash_tile_path(level, index, width));
        let bytes = std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        decode_tile_hashes(&bytes, width).map_err(|error| error.to_string())
    }
}

fn log_directory() -> PathBuf {
    common::testdata("tlog-tiles-log")
}

fn read_note(directory: &Path, name: &str) -> String {
    std::fs::read_to_string(directory.join(name)).unwrap()
}

/// Every checkpoint of the log, by size 0 to 15, opened with the log's key.
fn checkpoints(directory: &Path) -> Vec<(String, Checkpoint)> {
    let verifier = NoteVerifier::parse(LOG_KEY).unwrap();
    (0..=15u64)
        .map(|size| {
            let note = read_note(directory, &format!("checkpoint.{size}"));
            let checkpoint = Checkpoint::open(&note, &verifier, ORIGIN).unwrap();
            assert_eq!(checkpoint.size, size);
            (note, checkpoint)
        })
        .collect()
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn every_checkpoint_of_the_log_carries_a_valid_signature_by_its_key() {
    let directory = log_directory();
    let verifier = NoteVerifier::parse(LOG_KEY).unwrap();
    assert_eq!(hex::encode(verifier.key_id()), "33d7b496");
    assert_eq!(verifier.to_string(), LOG_KEY);
    let all = checkpoints(&directory);
    let latest = Checkpoint::open(&read_note(&directory, "checkpoint"), &verifier, ORIGIN).unwrap();
    assert_eq!(latest, all[15].1);
    assert_eq!(all[0].1.root, empty_root());
    // veche writes checkpoint bodies byte for byte as tessera does.
    for (note, checkpoint) in &all {
        let body = open_note(note, &verifier).unwrap();
        assert_eq!(body, checkpoint.body());
    }
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn the_roots_recomputed_from_the_tiles_equal_every_signed_root() {
    let directory = log_directory();
    let tiles = DirectoryTiles(directory.clone());
    for (_, checkpoint) in checkpoints(&directory) {
        let nodes = TiledNodes::new(&tiles, checkpoint.size);
        assert_eq!(
            merkle::root(&nodes, checkpoint.size).unwrap(),
            checkpoint.root,
            "size {}",
            checkpoint.size
        );
        let frontier = Frontier::from_source(&nodes, checkpoint.size).unwrap();
        assert_eq!(frontier.root(), checkpoint.root);
        // A builder resumed from the published partial tiles agrees with one grown here.
        let resumed = TileBuilder::from_tiles(&tiles, checkpoint.size).unwrap();
        let mut grown = TileBuilder::new();
        let mut grown_frontier = Frontier::new();
        for index in 0..checkpoint.size {
            let leaf = nodes.node(0, index).unwrap();
            grown.add(&grown_frontier.push(leaf)).unwrap();
        }
        assert_eq!(resumed, grown);
        assert_eq!(grown_frontier, frontier);
    }
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn the_entry_bundles_hash_to_the_level_zero_tiles() {
    let directory = log_directory();
    let tiles = DirectoryTiles(directory.clone());
    let mut frontier = Frontier::new();
    let mut builder = TileBuilder::new();
    for size in 1..=15u16 {
        let bytes = std::fs::read(directory.join(entry_bundle_path(0, size))).unwrap();
        let entries = decode_entry_bundle(&bytes, size).unwrap();
        let expected: Vec<&[u8]> = ENTRIES[..usize::from(size)]
            .iter()
            .map(|entry| entry.as_bytes())
            .collect();
        assert_eq!(entries, expected);
        let leaves: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
        assert_eq!(tiles.tile(0, 0, size).unwrap(), leaves);
        assert!(decode_entry_bundle(&bytes, size + 1).is_err());
        if size > 1 {
            assert!(decode_entry_bundle(&bytes, size - 1).is_err());
        }
        // Growing the tree here reproduces the log's partial tile at every size.
        let newest = leaves[usize::from(size) - 1];
        assert!(builder.add(&frontier.push(newest)).unwrap().is_empty());
        let partial = builder.partial_tile(0).unwrap();
        assert_eq!(partial.hashes, leaves);
    }
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn consistency_is_proved_from_the_tiles_between_every_pair_of_sizes() {
    let directory = log_directory();
    let tiles = DirectoryTiles(directory.clone());
    let all = checkpoints(&directory);
    let mut pairs = 0;
    for newer in &all[1..] {
        let nodes = TiledNodes::new(&tiles, newer.1.size);
        for older in &all[1..=newer.1.size as usize] {
            let (size1, size2) = (older.1.size, newer.1.size);
            let proof = consistency_proof(&nodes, size1, size2).unwrap();
            assert_eq!(
                verify_consistency(size1, size2, &proof, &older.1.root, &newer.1.root),
                Ok(()),
                "{size1} to {size2}"
            );
            if size1 < size2 {
                assert!(verify_consistency(size1, size2, &proof, &[0; 32], &newer.1.root).is_err());
                assert!(verify_consistency(size1, size2, &proof, &older.1.root, &[0; 32]).is_err());
            }
            pairs += 1;
        }
        // The empty tree is not a starting point for a proof (see the merkle module).
        assert_eq!(
            consistency_proof(&nodes, 0, newer.1.size),
            Err(ProofError::EmptyOldTree)
        );
    }
    assert_eq!(pairs, 15 * 16 / 2);
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn every_entry_is_proved_included_in_every_checkpoint_that_covers_it() {
    let directory = log_directory();
    let verifier = NoteVerifier::parse(LOG_KEY).unwrap();
    let tiles = DirectoryTiles(directory.clone());
    for (note, checkpoint) in checkpoints(&directory).into_iter().skip(1) {
        let nodes = TiledNodes::new(&tiles, checkpoint.size);
        for index in 0..checkpoint.size {
            let leaf = leaf_hash(ENTRIES[index as usize].as_bytes());
            let proof = inclusion_proof(&nodes, index, checkpoint.size).unwrap();
            assert_eq!(
                verify_inclusion(&leaf, index, checkpoint.size, &proof, &checkpoint.root),
                Ok(())
            );
            let document = TlogProof {
                extra: None,
                index,
                inclusion_proof: proof,
                checkpoint: note.clone(),
            }
            .encode();
            let parsed = TlogProof::parse(&document).unwrap();
            assert_eq!(
                parsed.verify(&leaf, &verifier, ORIGIN),
                Ok(checkpoint.clone())
            );
            let other = leaf_hash(b"not in the log");
            assert!(parsed.verify(&other, &verifier, ORIGIN).is_err());
        }
    }
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn a_wrong_key_a_changed_body_or_a_wrong_root_is_refused() {
    let directory = log_directory();
    let verifier = NoteVerifier::parse(LOG_KEY).unwrap();
    let note = read_note(&directory, "checkpoint");
    let checkpoint = Checkpoint::open(&note, &verifier, ORIGIN).unwrap();

    // The same name under another key: its key id differs, so the log's signature is unknown.
    let impostor = SigningKey::from_bytes(&[42; 32]);
    let impostor_key = PublicKey(impostor.verifying_key().to_bytes());
    let wrong_key = NoteVerifier::new(ORIGIN, impostor_key).unwrap();
    assert!(matches!(
        open_note(&note, &wrong_key),
        Err(NoteError::NoKnownSignature { .. })
    ));

    // One changed line of the body breaks the log's signature.
    let changed_size = note.replacen("\n15\n", "\n16\n", 1);
    assert_eq!(
        open_note(&changed_size, &verifier),
        Err(NoteError::SignatureInvalid {
            name: ORIGIN.to_owned()
        })
    );
    let other_root = BASE64.encode([7; 32]);
    let changed_root = note.replacen(&BASE64.encode(checkpoint.root), &other_root, 1);
    assert_ne!(changed_root, note);
    assert!(matches!(
        Checkpoint::open(&changed_root, &verifier, ORIGIN),
        Err(CheckpointError::Note(NoteError::SignatureInvalid { .. }))
    ));

    // A correctly signed note by the impostor, claiming another root, is still refused.
    let forged_body = Checkpoint {
        root: [7; 32],
        ..checkpoint.clone()
    };
    let forged = forged_body.sign(ORIGIN, &impostor).unwrap();
    assert!(Checkpoint::open(&forged, &verifier, ORIGIN).is_err());

    // A tile altered on disk no longer reproduces the signed root.
    struct Altered(DirectoryTiles);
    impl TileSource for Altered {
        type Error = String;
        fn tile(&self, level: u8, index: u64, width: u16) -> Result<Vec<Hash>, String> {
            let mut hashes = self.0.tile(level, index, width)?;
            hashes[3][0] ^= 1;
            Ok(hashes)
        }
    }
    let altered = Altered(DirectoryTiles(directory.clone()));
    let nodes = TiledNodes::new(&altered, 15);
    assert_ne!(merkle::root(&nodes, 15).unwrap(), checkpoint.root);
    let leaf = leaf_hash(ENTRIES[0].as_bytes());
    let proof = inclusion_proof(&nodes, 0, 15).unwrap();
    assert_eq!(
        verify_inclusion(&leaf, 0, 15, &proof, &checkpoint.root),
        Err(ProofError::RootMismatch)
    );
    assert!(nodes.node(0, 15).is_err());
}

/// Reads a Go `golang.org/x/mod/sumdb/note` signer key: `PRIVATE+KEY+<name>+<hex id>+<base64
/// of 0x01 and the 32-byte Ed25519 seed>`.
fn parse_go_signer_key(text: &str) -> (String, SigningKey) {
    let rest = text.strip_prefix("PRIVATE+KEY+").unwrap();
    let mut parts = rest.splitn(3, '+');
    let (name, id, encoded) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let typed = BASE64.decode(encoded).unwrap();
    assert_eq!(typed[0], 0x01);
    let seed: [u8; 32] = typed[1..].try_into().unwrap();
    let key = SigningKey::from_bytes(&seed);
    let public = PublicKey(key.verifying_key().to_bytes());
    assert_eq!(hex::encode(key_id(name, &public)), id);
    (name.to_owned(), key)
}

#[test]
fn the_go_sumdb_note_example_is_reproduced_byte_for_byte() {
    const TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SIGNER: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_LINE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_KEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const ENOCH_LINE: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    let peter = NoteVerifier::parse(PETER_KEY).unwrap();
    assert_eq!(hex::encode(peter.key_id()), "c74f20a3");
    let (name, signer) = parse_go_signer_key(PETER_SIGNER);
    assert_eq!(name, "PeterNeumann");
    assert_eq!(
        verifier_key(&name, &PublicKey(signer.verifying_key().to_bytes())),
        PETER_KEY
    );
    let signed = sign_note(TEXT, &name, &signer);
    assert_eq!(signed, format!("{TEXT}\n{PETER_LINE}"));
    assert_eq!(open_note(&signed, &peter), Ok(TEXT.to_owned()));

    // Two signatures: each key finds and checks its own, ignoring the other.
    let enoch = NoteVerifier::parse(ENOCH_KEY).unwrap();
    let both = format!("{TEXT}\n{PETER_LINE}{ENOCH_LINE}");
    assert_eq!(open_note(&both, &peter), Ok(TEXT.to_owned()));
    assert_eq!(open_note(&both, &enoch), Ok(TEXT.to_owned()));
    assert!(open_note(&format!("{TEXT}\n{PETER_LINE}"), &enoch).is_err());
}

#[test]
fn the_c2sp_signed_note_example_verifies() {
    const KEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let verifier = NoteVerifier::parse(KEY).unwrap();
    assert_eq!(verifier.name(), "example.com/foo");
    assert_eq!(
        open_note(NOTE, &verifier),
        Ok("This is an example message.\n".to_owned())
    );
    let altered = NOTE.replace("example message", "example massage");
    assert!(open_note(&altered, &verifier).is_err());
}
