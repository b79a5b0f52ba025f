//! The Merkle proofs against the transparency-dev/merkle RFC 6962 vectors, and against the RFC's
//! own recursive definitions for every small tree.
// Integration tests read their vector files from disk; the purity rules are for the library.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use projections::merkle::{
    self, consistency_proof, inclusion_proof, leaf_hash, node_hash, root_of_leaves,
    verify_consistency, verify_inclusion, Frontier, LeafHashes, ProofError,
};
use projections::Hash;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn json_files(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "json")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A vector value as bytes: base64, with null or absent meaning no bytes (as Go decodes them).
fn bytes(case: &Value, field: &str) -> Vec<u8> {
    match &case[field] {
        Value::String(text) => BASE64.decode(text).unwrap(),
        Value::Null => Vec::new(),
        other => panic!("{field} is {other}"),
    }
}

fn proof_bytes(case: &Value) -> Vec<Vec<u8>> {
    match &case["proof"] {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => BASE64.decode(text).unwrap(),
                Value::Null => Vec::new(),
                other => panic!("proof item is {other}"),
            })
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("proof is {other}"),
    }
}

/// The typed API takes 32-byte hashes only: anything else is refused where a caller would parse
/// it, before a verifier runs.
fn hash(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

/// A 32-byte stand-in for a value that is not a hash, preserving equality between values. The
/// Go vectors use placeholders such as "don't care 2" where only equality matters.
fn stand_in(bytes: &[u8]) -> Hash {
    match hash(bytes) {
        Some(hash) => hash,
        None => {
            let mut hasher = Sha256::new();
            hasher.update(b"not a hash: ");
            hasher.update(bytes);
            hasher.finalize().into()
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    accepted: usize,
    refused_by_verifier: usize,
    refused_at_parsing: usize,
}

/// What a check makes of one vector: `None` when a value is not a hash, so the typed API refuses
/// it where a caller would parse it, before a verifier runs.
type Verdict = Option<Result<(), ProofError>>;

/// Runs `check` on every vector below `rfc6962-vectors/<kind>` (given the case, its proof's bytes
/// and its `wantErr`) and holds each answer to `wantErr`: a happy path is verified, every other
/// is refused, by the parser or the verifier.
fn tally_vectors(kind: &str, mut check: impl FnMut(&Value, &[Vec<u8>], bool) -> Verdict) -> Tally {
    let mut tally = Tally::default();
    for path in json_files(&common::testdata(&format!("rfc6962-vectors/{kind}"))) {
        let case: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let want_error = case["wantErr"].as_bool().unwrap();
        match (check(&case, &proof_bytes(&case), want_error), want_error) {
            (None, true) => tally.refused_at_parsing += 1,
            (None, false) => panic!("{}: a happy path holds a non-hash", path.display()),
            (Some(Ok(())), false) => tally.accepted += 1,
            (Some(Err(_)), true) => tally.refused_by_verifier += 1,
            (Some(result), _) => panic!("{}: {result:?}, wantErr {want_error}", path.display()),
        }
    }
    assert!(tally.accepted >= 6, "{kind}: {tally:?}");
    assert!(
        tally.refused_by_verifier + tally.refused_at_parsing >= 90,
        "{kind}: {tally:?}"
    );
    tally
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn every_inclusion_vector_verifies_or_is_refused_as_expected() {
    let tally = tally_vectors("inclusion", |case, proof, _| {
        let index = case["leafIdx"].as_u64().unwrap();
        let size = case["treeSize"].as_u64().unwrap();
        let leaf = hash(&bytes(case, "leafHash"))?;
        let root = hash(&bytes(case, "root"))?;
        let proof = proof
            .iter()
            .map(|item| hash(item))
            .collect::<Option<Vec<Hash>>>()?;
        Some(verify_inclusion(&leaf, index, size, &proof, &root))
    });
    println!("inclusion vectors: {tally:?}");
}

#[test]
#[cfg_attr(projections_no_testdata, ignore = "../shared/testdata is absent")]
fn every_consistency_vector_verifies_or_is_refused_as_expected() {
    let mut stand_ins_used = 0;
    let tally = tally_vectors("consistency", |case, proof, want_error| {
        let size1 = case["size1"].as_u64().unwrap();
        let size2 = case["size2"].as_u64().unwrap();
        let root1 = bytes(case, "root1");
        let root2 = bytes(case, "root2");
        let all_hashes = hash(&root1).is_some()
            && hash(&root2).is_some()
            && proof.iter().all(|item| hash(item).is_some());
        if !all_hashes {
            if want_error {
                return None;
            }
            // Only placeholders that the verifier compares for equality reach here.
            stand_ins_used += 1;
        }
        let proof: Vec<Hash> = proof.iter().map(|item| stand_in(item)).collect();
        Some(verify_consistency(
            size1,
            size2,
            &proof,
            &stand_in(&root1),
            &stand_in(&root2),
        ))
    });
    println!(
        "consistency vectors: {tally:?}; placeholders mapped to stand-ins in {stand_ins_used}"
    );
}

/// The RFC's k: the largest power of two strictly less than `count`, for `count ≥ 2`.
fn largest_power_of_two_below(count: usize) -> usize {
    let mut power = 1;
    while power * 2 < count {
        power *= 2;
    }
    power
}

/// RFC 9162 §2.1.3.1 PATH, written as the definition over a slice of leaves.
fn reference_path(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let split = largest_power_of_two_below(leaves.len());
    let (left, right) = leaves.split_at(split);
    if index < split {
        let mut path = reference_path(index, left);
        path.push(root_of_leaves(right));
        path
    } else {
        let mut path = reference_path(index - split, right);
        path.push(root_of_leaves(left));
        path
    }
}

/// RFC 9162 §2.1.4.1 SUBPROOF, written as the definition.
fn reference_subproof(old_size: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
    if old_size == leaves.len() {
        return if whole {
            Vec::new()
        } else {
            vec![root_of_leaves(leaves)]
        };
    }
    let split = largest_power_of_two_below(leaves.len());
    let (left, right) = leaves.split_at(split);
    if old_size <= split {
        let mut proof = reference_subproof(old_size, left, whole);
        proof.push(root_of_leaves(right));
        proof
    } else {
        let mut proof = reference_subproof(old_size - split, right, false);
        proof.push(root_of_leaves(left));
        proof
    }
}

fn flip_each_bit_of_each_hash(proof: &[Hash]) -> impl Iterator<Item = Vec<Hash>> + '_ {
    (0..proof.len()).flat_map(move |position| {
        [0usize, 13, 31].into_iter().map(move |byte| {
            let mut changed = proof.to_vec();
            changed[position][byte] ^= 0x10;
            changed
        })
    })
}

#[test]
fn generated_proofs_equal_the_rfc_definitions_and_verify_for_every_small_tree() {
    const SIZE_MAX: u64 = 70;
    let leaves: Vec<Hash> = (0..SIZE_MAX)
        .map(|index| leaf_hash(&index.to_be_bytes()))
        .collect();
    let source = LeafHashes(leaves.clone());
    let mut frontier = Frontier::new();
    let mut roots = vec![merkle::empty_root()];
    let (mut inclusion_cases, mut consistency_cases) = (0, 0);
    for size in 1..=SIZE_MAX {
        frontier.push(leaves[size as usize - 1]);
        let prefix = &leaves[..size as usize];
        let root = root_of_leaves(prefix);
        assert_eq!(merkle::root(&source, size).unwrap(), root);
        assert_eq!(frontier.root(), root);
        roots.push(root);
        for index in 0..size {
            let proof = inclusion_proof(&source, index, size).unwrap();
            assert_eq!(
                proof,
                reference_path(index as usize, prefix),
                "{index} in {size}"
            );
            let leaf = &leaves[index as usize];
            assert_eq!(verify_inclusion(leaf, index, size, &proof, &root), Ok(()));
            for changed in flip_each_bit_of_each_hash(&proof) {
                assert!(verify_inclusion(leaf, index, size, &changed, &root).is_err());
            }
            for (other_index, other_size) in [
                (index ^ 1, size),
                (index.wrapping_sub(1), size),
                (index + 1, size),
                (index, size * 2),
            ] {
                if (other_index, other_size) != (index, size) {
                    let result = verify_inclusion(leaf, other_index, other_size, &proof, &root);
                    assert!(
                        result.is_err(),
                        "{index} in {size} as {other_index} in {other_size}"
                    );
                }
            }
            inclusion_cases += 1;
        }
    }
    for size2 in 1..=SIZE_MAX {
        for size1 in 1..=size2 {
            let proof = consistency_proof(&source, size1, size2).unwrap();
            let expected = reference_subproof(size1 as usize, &leaves[..size2 as usize], true);
            assert_eq!(proof, expected, "{size1} to {size2}");
            let (root1, root2) = (&roots[size1 as usize], &roots[size2 as usize]);
            assert_eq!(
                verify_consistency(size1, size2, &proof, root1, root2),
                Ok(())
            );
            for changed in flip_each_bit_of_each_hash(&proof) {
                assert!(verify_consistency(size1, size2, &changed, root1, root2).is_err());
            }
            if size1 < size2 {
                assert!(verify_consistency(size1, size2, &proof, root2, root1).is_err());
                assert!(verify_consistency(size1 + 1, size2, &proof, root1, root2).is_err());
                assert!(verify_consistency(size1, size2 * 2, &proof, root1, root2).is_err());
                assert!(verify_consistency(size1, size2, &proof[1..], root1, root2).is_err());
            }
            consistency_cases += 1;
        }
    }
    assert_eq!(
        verify_consistency(0, 5, &[], &roots[0], &roots[5]),
        Err(ProofError::EmptyOldTree)
    );
    println!(
        "checked {inclusion_cases} inclusion and {consistency_cases} consistency proofs against \
         the RFC definitions"
    );
    // An entry made of two child hashes does not hash to their parent: the leaf prefix keeps a
    // subtree from being presented as a leaf of a shorter tree with the same root.
    let node = node_hash(&leaves[0], &leaves[1]);
    let forged_entry = [leaves[0], leaves[1]].concat();
    assert_ne!(leaf_hash(&forged_entry), node);
}
