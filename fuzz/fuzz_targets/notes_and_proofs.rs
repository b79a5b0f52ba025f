//! Checks that checkpoint bodies and tlog-proofs parse only when they write back to the same
//! text, that signed notes never panic the opener and open exactly when signed by the trusted
//! key, and that Merkle inclusion and consistency proofs at fuzzer-chosen sizes up to 2^64 − 1
//! verify when genuine, fail when altered in any way, and never pass for an index ≥ size.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use projections::checkpoint::{
    check_note_text, open_note, sign_note, Checkpoint, NoteVerifier, TlogProof,
};
use projections::merkle::{self, ProofError};
use projections::protocol::Hash;
use veche_fuzz::{SparseTree, LOG_ORIGIN};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        checkpoint_body(text);
        signed_note(text);
        tlog_proof(text);
    }
    let mut input = Unstructured::new(data);
    let _ = inclusion(&mut input);
    let _ = consistency(&mut input);
});

fn verifier() -> &'static NoteVerifier {
    static VERIFIER: OnceLock<NoteVerifier> = OnceLock::new();
    VERIFIER.get_or_init(veche_fuzz::note_verifier)
}

/// Leaf hashes of the seed entries, so that the seed tlog-proof verifies.
fn seed_leaves() -> &'static [Hash] {
    static LEAVES: OnceLock<Vec<Hash>> = OnceLock::new();
    LEAVES.get_or_init(|| {
        veche_fuzz::seed_entries()
            .iter()
            .map(|entry| merkle::leaf_hash(entry))
            .collect()
    })
}

fn checkpoint_body(text: &str) {
    let Ok((checkpoint, extensions)) = Checkpoint::parse_body_with_extensions(text) else {
        assert!(Checkpoint::parse_body(text).is_err());
        return;
    };
    assert_eq!(Checkpoint::parse_body(text).as_ref(), Ok(&checkpoint));
    let mut written = checkpoint.body();
    if extensions.is_empty() {
        assert_eq!(
            written, text,
            "a checkpoint body is not written back as read"
        );
    }
    for line in &extensions {
        written.push_str(line);
        written.push('\n');
    }
    assert_eq!(
        written, text,
        "body and extension lines do not give the text back"
    );

    // Signed by the trusted key, it opens to the same checkpoint.
    let Ok(note) = checkpoint.sign(LOG_ORIGIN, &veche_fuzz::signing_key()) else {
        panic!("a parsed checkpoint could not be signed: {checkpoint:?}");
    };
    assert_eq!(
        Checkpoint::open(&note, verifier(), &checkpoint.origin),
        Ok(checkpoint)
    );
}

fn signed_note(text: &str) {
    if let Ok(body) = open_note(text, verifier()) {
        assert!(text.starts_with(&body) && body.ends_with('\n'));
        assert!(text[body.len()..].starts_with('\n'));
    }
    if let Ok(checkpoint) = Checkpoint::open(text, verifier(), LOG_ORIGIN) {
        assert_eq!(checkpoint.origin, LOG_ORIGIN);
    }
    // The text as a note body, signed by the trusted key: it opens to exactly the text.
    if check_note_text(text).is_ok() {
        let note = sign_note(text, LOG_ORIGIN, &veche_fuzz::signing_key());
        assert_eq!(open_note(&note, verifier()).as_deref(), Ok(text));
        // A second signer with another key is ignored; the trusted signature still counts.
        let other = ed25519_dalek::SigningKey::from_bytes(&[0x11; 32]);
        let cosigned = sign_note(text, "witness.example", &other);
        let both = format!("{note}{}", &cosigned[text.len() + 1..]);
        assert_eq!(open_note(&both, verifier()).as_deref(), Ok(text));
        // A note by the other key alone does not open.
        assert!(open_note(&cosigned, verifier()).is_err());
    }
}

fn tlog_proof(text: &str) {
    let Ok(proof) = TlogProof::parse(text) else {
        return;
    };
    assert_eq!(
        proof.encode(),
        text,
        "a tlog-proof is not written back as read"
    );
    let leaf = usize::try_from(proof.index)
        .ok()
        .and_then(|index| seed_leaves().get(index))
        .copied()
        .unwrap_or([0; 32]);
    if let Ok(checkpoint) = proof.verify(&leaf, verifier(), LOG_ORIGIN) {
        assert!(proof.index < checkpoint.size);
    }
}

/// A tree size: small most of the time, anywhere in `1..=u64::MAX` otherwise.
fn size(input: &mut Unstructured) -> Result<u64> {
    Ok(match input.int_in_range(0..=3u8)? {
        0 => input.int_in_range(1..=u64::MAX)?,
        1 => u64::MAX - input.int_in_range(0..=300u64)?,
        _ => input.int_in_range(1..=300u64)?,
    })
}

fn hash(input: &mut Unstructured) -> Result<Hash> {
    input.arbitrary()
}

/// `length` hashes: the fuzzer's own, then copies of the last one (or zeros).
fn loose_hashes(input: &mut Unstructured, length: usize) -> Result<Vec<Hash>> {
    let mut hashes: Vec<Hash> = Vec::with_capacity(length);
    while hashes.len() < length {
        let next = if input.is_empty() {
            hashes.last().copied().unwrap_or([0; 32])
        } else {
            hash(input)?
        };
        hashes.push(next);
    }
    Ok(hashes)
}

/// A tree of `u64::MAX` leaves where up to three fuzzer-chosen leaves differ from the rest.
fn tree(input: &mut Unstructured, near: &[u64]) -> Result<SparseTree> {
    let background = hash(input)?;
    let mut chosen = BTreeMap::new();
    for _ in 0..input.int_in_range(0..=3u8)? {
        let position = match input.int_in_range(0..=2u8)? {
            0 => input.arbitrary()?,
            _ => *input.choose(near)?,
        };
        chosen.insert(position, hash(input)?);
    }
    Ok(SparseTree::new(background, chosen))
}

/// One change to a proof, root or leaf; the altered proof must not verify.
enum Alteration {
    FlipBit { hash: usize, bit: usize },
    DropHash { hash: usize },
    AddHash { hash: usize, value: Hash },
    NoChange,
}

fn alteration(input: &mut Unstructured, hashes: usize) -> Result<Alteration> {
    Ok(match input.int_in_range(0..=3u8)? {
        0 => Alteration::FlipBit {
            hash: input.int_in_range(0..=hashes)?,
            bit: input.int_in_range(0..=255)?,
        },
        1 if hashes > 0 => Alteration::DropHash {
            hash: input.int_in_range(0..=hashes - 1)?,
        },
        2 => Alteration::AddHash {
            hash: input.int_in_range(0..=hashes)?,
            value: hash(input)?,
        },
        _ => Alteration::NoChange,
    })
}

/// Applies the alteration to `proof` followed by one more hash (the root, or the leaf); a bit
/// flip at position `proof.len()` alters that extra hash.
fn alter(proof: &mut Vec<Hash>, extra: &mut Hash, alteration: &Alteration) -> bool {
    match *alteration {
        Alteration::FlipBit { hash, bit } => {
            let target = proof.get_mut(hash).unwrap_or(extra);
            target[bit / 8] ^= 1 << (bit % 8);
            true
        }
        Alteration::DropHash { hash } => {
            proof.remove(hash);
            true
        }
        Alteration::AddHash { hash, value } => {
            proof.insert(hash, value);
            true
        }
        Alteration::NoChange => false,
    }
}

fn inclusion(input: &mut Unstructured) -> Result<()> {
    let size = size(input)?;
    let index = match input.int_in_range(0..=7u8)? {
        0 => input.arbitrary()?,
        1 => size - 1,
        _ => input.int_in_range(0..=size - 1)?,
    };
    // Whatever the proof, nothing is ever included at or past the size.
    let loose_proof: Vec<Hash> = input.arbitrary()?;
    let loose = merkle::verify_inclusion(&hash(input)?, index, size, &loose_proof, &hash(input)?);
    if index >= size {
        assert_eq!(loose, Err(ProofError::IndexBeyondSize { index, size }));
        return Ok(());
    }
    let tree = tree(input, &[index, size - 1, index ^ 1])?;
    let (Ok(proof), Ok(root)) = (
        merkle::inclusion_proof(&tree, index, size),
        merkle::root(&tree, size),
    ) else {
        panic!("no inclusion proof of {index} in a tree of {size}");
    };
    let leaf = tree.leaf(index);
    assert_eq!(
        merkle::verify_inclusion(&leaf, index, size, &proof, &root),
        Ok(()),
        "a genuine inclusion proof of {index} in {size} does not verify"
    );
    let alteration = alteration(input, proof.len())?;
    let mut altered = proof.clone();
    let mut altered_root = root;
    if alter(&mut altered, &mut altered_root, &alteration) {
        assert!(
            merkle::verify_inclusion(&leaf, index, size, &altered, &altered_root).is_err(),
            "an altered inclusion proof of {index} in {size} verified"
        );
    }
    let mut other_leaf = leaf;
    other_leaf[0] ^= 1;
    assert!(merkle::verify_inclusion(&other_leaf, index, size, &proof, &root).is_err());
    // A proof of the right length made of fuzzer-chosen hashes runs the whole loop; it can only
    // verify against the true root by being the true proof.
    let chosen = loose_hashes(input, proof.len())?;
    if merkle::verify_inclusion(&leaf, index, size, &chosen, &root).is_ok() {
        assert_eq!(chosen, proof, "a forged inclusion proof verified");
    }
    if let Some(beyond) = size.checked_add(input.arbitrary::<u32>()?.into()) {
        assert_eq!(
            merkle::verify_inclusion(&leaf, beyond, size, &proof, &root),
            Err(ProofError::IndexBeyondSize {
                index: beyond,
                size
            })
        );
    }
    Ok(())
}

fn consistency(input: &mut Unstructured) -> Result<()> {
    let size2 = size(input)?;
    let size1 = match input.int_in_range(0..=7u8)? {
        0 => input.arbitrary()?,
        1 => size2,
        2 => 0,
        _ => input.int_in_range(1..=size2)?,
    };
    let loose_proof: Vec<Hash> = input.arbitrary()?;
    let loose_roots = (hash(input)?, hash(input)?);
    let loose =
        merkle::verify_consistency(size1, size2, &loose_proof, &loose_roots.0, &loose_roots.1);
    if size1 > size2 {
        assert_eq!(loose, Err(ProofError::SizesDecrease { size1, size2 }));
        return Ok(());
    }
    if size1 == 0 {
        assert_eq!(loose, Err(ProofError::EmptyOldTree));
        return Ok(());
    }
    let tree = tree(input, &[size1 - 1, size1, size2 - 1])?;
    let (Ok(proof), Ok(root1), Ok(root2)) = (
        merkle::consistency_proof(&tree, size1, size2),
        merkle::root(&tree, size1),
        merkle::root(&tree, size2),
    ) else {
        panic!("no consistency proof from {size1} to {size2}");
    };
    assert_eq!(
        merkle::verify_consistency(size1, size2, &proof, &root1, &root2),
        Ok(()),
        "a genuine consistency proof from {size1} to {size2} does not verify"
    );
    let chosen = loose_hashes(input, proof.len())?;
    if merkle::verify_consistency(size1, size2, &chosen, &root1, &root2).is_ok() {
        assert_eq!(chosen, proof, "a forged consistency proof verified");
    }
    let alteration = alteration(input, proof.len())?;
    let mut altered = proof.clone();
    let which_root = input.arbitrary::<bool>()?;
    let (mut altered_root1, mut altered_root2) = (root1, root2);
    let extra = if which_root {
        &mut altered_root1
    } else {
        &mut altered_root2
    };
    if alter(&mut altered, extra, &alteration) {
        let verdict =
            merkle::verify_consistency(size1, size2, &altered, &altered_root1, &altered_root2);
        assert!(
            verdict.is_err(),
            "an altered consistency proof from {size1} to {size2} verified"
        );
    }
    Ok(())
}
