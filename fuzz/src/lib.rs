//! Shared pieces of the fuzz targets: the fixed keys they sign with, a sparse Merkle tree whose
//! proofs can be built at any size up to 2^64 − 1, and the seed inputs `write_seeds` stores.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use ed25519_dalek::{Signer, SigningKey};
use projections::checkpoint::{Checkpoint, NoteVerifier, TlogProof};
use projections::command::{
    Action, Attachment, Audience, CastBallot, ChoiceKind, ComplaintFiling, Degrees, Genesis,
    Location, PollDefinition, ProposalSubmission, RegisterKey, TallyVisibility,
};
use projections::content::Commitment;
use projections::merkle::{self, NodeSource};
use projections::protocol::{self, public_key_of, EntryKind, Hash, PublicKey};
use projections::{Command, Entry, Timestamp};
use veche::envelope::Envelope;

/// Origin and note key name of the checkpoints the targets sign and open.
pub const LOG_ORIGIN: &str = "fuzz.veche.example/log";

/// The key that signs commands, entries and checkpoints inside the targets. Fixed, so that seed
/// inputs signed by `write_seeds` verify when a target reads them.
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[0x5e; 32])
}

pub fn public_key() -> PublicKey {
    public_key_of(&signing_key())
}

/// The trusted note key the targets open notes with.
pub fn note_verifier() -> NoteVerifier {
    match NoteVerifier::new(LOG_ORIGIN, public_key()) {
        Ok(verifier) => verifier,
        Err(error) => panic!("the fixed fuzzing key is a usable note key: {error}"),
    }
}

/// A Merkle tree of `u64::MAX` leaves, all equal to one background leaf except a few chosen
/// ones. Every node is the true hash of its children, so proofs built from it are real proofs,
/// and a node costs at most one hash per level on the way down to each chosen leaf.
pub struct SparseTree {
    /// Hash of a perfect subtree of background leaves, by height.
    background: Vec<Hash>,
    /// The leaves that differ from the background.
    chosen: BTreeMap<u64, Hash>,
    known: RefCell<HashMap<(u8, u64), Hash>>,
}

impl SparseTree {
    pub fn new(background_leaf: Hash, chosen: BTreeMap<u64, Hash>) -> SparseTree {
        let mut background = vec![background_leaf];
        for height in 1..=usize::from(merkle::HEIGHT_MAX) {
            let below = background[height - 1];
            background.push(merkle::node_hash(&below, &below));
        }
        SparseTree {
            background,
            chosen,
            known: RefCell::new(HashMap::new()),
        }
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Hash {
        self.chosen
            .get(&index)
            .copied()
            .unwrap_or(self.background[0])
    }

    fn compute(&self, height: u8, index: u64) -> Hash {
        // Leaves `start..end` of the node; u128 because the last node of height 63 ends at 2^64.
        let start = u128::from(index) << height;
        let end = (u128::from(index) + 1) << height;
        let Ok(first_leaf) = u64::try_from(start) else {
            panic!("the Merkle code asked for node {height}/{index}, which starts past 2^64");
        };
        let chosen_inside = self
            .chosen
            .range(first_leaf..)
            .next()
            .is_some_and(|(leaf, _)| u128::from(*leaf) < end);
        if !chosen_inside {
            return self.background[usize::from(height)];
        }
        if height == 0 {
            return self.leaf(index);
        }
        let left = self.node_hash_at(height - 1, index * 2);
        let right = self.node_hash_at(height - 1, index * 2 + 1);
        merkle::node_hash(&left, &right)
    }

    fn node_hash_at(&self, height: u8, index: u64) -> Hash {
        if let Some(hash) = self.known.borrow().get(&(height, index)) {
            return *hash;
        }
        let hash = self.compute(height, index);
        self.known.borrow_mut().insert((height, index), hash);
        hash
    }
}

impl NodeSource for SparseTree {
    type Error = Infallible;

    fn node(&self, height: u8, index: u64) -> Result<Hash, Infallible> {
        Ok(self.node_hash_at(height, index))
    }
}

/// Commands of several shapes, authored by the fixed key: seed payloads and envelopes.
pub fn seed_commands() -> Vec<Command> {
    let author = public_key();
    let command = |nonce_byte: u8, action: Action| Command {
        author,
        nonce: hex_of(&[nonce_byte; 16]),
        issued_at: Timestamp(1_795_000_000_000 + i64::from(nonce_byte)),
        action,
    };
    vec![
        command(1, Action::RegisterKey(RegisterKey {})),
        command(
            2,
            Action::CastBallot(CastBallot {
                poll: 4,
                choices: vec![0, 2],
                version: None,
            }),
        ),
        command(
            3,
            Action::OpenPoll(PollDefinition {
                title: "Park or parking?".into(),
                description: "The empty lot on Lenina street".into(),
                options: vec!["Park".into(), "Parking".into()],
                choice_kind: ChoiceKind::SingleChoice,
                max_choices: 1,
                audience: Audience::Districts {
                    districts: vec!["Central".into()],
                },
                opens_at: Timestamp(1_795_000_000_000),
                closes_at: Timestamp(1_795_600_000_000),
                vote_changes_allowed: true,
                tally_visibility: TallyVisibility::Sealed,
                anonymous: None,
            }),
        ),
        command(
            4,
            Action::FileComplaint(ComplaintFiling {
                category: "street-lighting".into(),
                description: Commitment([0x11; 32]),
                location: Location {
                    latitude: Degrees(55.751),
                    longitude: Degrees(-0.037),
                    address: Commitment([0x22; 32]),
                    district: "Central".into(),
                },
                attachments: vec![Attachment {
                    sha256: hex_of(&[0xab; 32]),
                    url: Commitment([0x33; 32]),
                }],
                through_gateway: false,
            }),
        ),
        command(
            5,
            Action::SubmitProposal(ProposalSubmission {
                title: Commitment([0x44; 32]),
                body: Commitment([0x55; 32]),
                category: "parks".into(),
                district: Some("North".into()),
            }),
        ),
        command(
            6,
            Action::Genesis(Genesis {
                log_origin: LOG_ORIGIN.into(),
                admin_keys: vec![author],
                recovery: None,
            }),
        ),
    ]
}

/// Signed envelopes of the seed commands, as the HTTP body a client sends.
pub fn seed_envelopes() -> Vec<Vec<u8>> {
    let key = signing_key();
    seed_commands()
        .iter()
        .map(|command| {
            let envelope = Envelope::sign(&key, command);
            serde_json::to_vec(&envelope).unwrap_or_default()
        })
        .collect()
}

/// Encoded entries with valid signatures: one command entry per seed command and one system
/// entry.
pub fn seed_entries() -> Vec<Vec<u8>> {
    let key = signing_key();
    let mut previous_hash = protocol::GENESIS_PREVIOUS_HASH;
    let mut entries = Vec::new();
    for (position, command) in (0..).zip(seed_commands()) {
        let kind = if command.action.is_system() {
            EntryKind::System
        } else {
            EntryKind::Command
        };
        let payload = command.to_payload();
        let entry = Entry {
            kind,
            position,
            server_time: Timestamp(1_795_000_000_000 + position as i64),
            previous_hash,
            signer: public_key_of(&key),
            signature: protocol::sign(&key, kind, &payload),
            payload,
        };
        let bytes = entry.encode();
        previous_hash = protocol::entry_hash(&bytes);
        entries.push(bytes);
    }
    entries
}

/// A checkpoint of a small real tree, its signed note, and a tlog-proof for one of its leaves.
pub fn seed_notes_and_proofs() -> Vec<Vec<u8>> {
    let key = signing_key();
    let leaves: Vec<Hash> = seed_entries()
        .iter()
        .map(|entry| merkle::leaf_hash(entry))
        .collect();
    let source = merkle::LeafHashes(leaves.clone());
    let size = leaves.len() as u64;
    let root = merkle::root(&source, size).unwrap_or_else(|_| merkle::empty_root());
    let checkpoint = Checkpoint {
        origin: LOG_ORIGIN.into(),
        size,
        root,
    };
    let note = checkpoint.sign(LOG_ORIGIN, &key).unwrap_or_default();
    let proof = TlogProof {
        extra: Some(b"position 2".to_vec()),
        index: 2,
        inclusion_proof: merkle::inclusion_proof(&source, 2, size).unwrap_or_default(),
        checkpoint: note.clone(),
    };
    let with_extension = format!("{}extension line\n", checkpoint.body());
    vec![
        checkpoint.body().into_bytes(),
        with_extension.into_bytes(),
        note.into_bytes(),
        proof.encode().into_bytes(),
    ]
}

/// Tile paths of both kinds, full and partial, and one entry bundle.
pub fn seed_tiles() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        "tile/0/000",
        "tile/0/x001/234.p/7",
        "tile/entries/x018/x446/x744/x073/x709/x551/615",
        "tile/63/005.p/255",
    ]
    .iter()
    .map(|path| path.as_bytes().to_vec())
    .collect();
    let entries = seed_entries();
    let mut bundle = vec![0, entries.len() as u8];
    bundle.extend(projections::tiles::encode_entry_bundle(&entries).unwrap_or_default());
    seeds.push(bundle);
    seeds
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Seeds of `verify_strict`: one raw input (the fixed key, its signature, the message), then one
/// structured input per mutation (byte 0), all signing the fixed key's seed bytes.
pub fn seed_signatures() -> Vec<Vec<u8>> {
    let message = b"veche command v1\n{\"action\":\"fuzz\"}";
    let key = signing_key();
    let mut raw = key.verifying_key().to_bytes().to_vec();
    raw.extend_from_slice(&key.sign(message).to_bytes());
    raw.extend_from_slice(message);
    let mut seeds = vec![raw];
    for mutation in 0u8..8 {
        let mut structured = vec![mutation];
        structured.extend_from_slice(&key.to_bytes());
        structured.push(mutation * 3 + 1);
        structured.extend_from_slice(message);
        seeds.push(structured);
    }
    seeds
}
