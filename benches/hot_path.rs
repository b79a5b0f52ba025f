//! Micro-benchmarks of the ingest path's hot pieces: envelope parse and strict verify, sealing
//! an entry onto the chain (decide, encode, hash) and folding a ballot into the tally.
//! Run with `cargo bench --bench hot_path`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use projections::command::{CastBallot, Genesis, RegisterKey};
use projections::{Action, Command, Replayer, SignedCommand, Timestamp};
use veche::keys::{generate_key, SeededEntropy};

const NOW: Timestamp = Timestamp(1_795_428_000_000);

fn ballots(count: usize) -> (Replayer, Vec<veche::envelope::Envelope>) {
    let entropy = SeededEntropy::new(7);
    let server = generate_key(&entropy);
    let admin = generate_key(&entropy);
    let official = generate_key(&entropy);
    let mut replayer = Replayer::new();
    let append = |replayer: &mut Replayer, signed: SignedCommand| {
        let sealed = projections::replay::seal(&replayer.ledger, signed, NOW).unwrap();
        replayer.apply(&sealed.bytes, None).unwrap();
    };
    let genesis = Command {
        author: projections::protocol::public_key_of(&server),
        nonce: format!("{:032x}", 0),
        issued_at: NOW,
        action: Action::Genesis(Genesis {
            log_origin: "bench/log".into(),
            admin_keys: vec![projections::protocol::public_key_of(&admin)],
            recovery: None,
        }),
    };
    append(
        &mut replayer,
        veche::envelope::sign_system(&server, genesis),
    );
    let open = |key: &ed25519_dalek::SigningKey, action| {
        veche::client::signed_envelope(key, action, NOW, &entropy)
            .open()
            .unwrap()
    };
    append(
        &mut replayer,
        open(&official, Action::RegisterKey(RegisterKey {})),
    );
    let grant = Action::GrantRole(projections::command::RoleChange {
        subject: projections::protocol::public_key_of(&official),
        role: projections::command::Role::Official,
        department: Some("bench".into()),
    });
    append(&mut replayer, open(&admin, grant));
    let mut definition = projections::command::PollDefinition {
        title: "Bench".into(),
        description: String::new(),
        options: vec!["a".into(), "b".into(), "c".into()],
        choice_kind: projections::command::ChoiceKind::SingleChoice,
        max_choices: 1,
        audience: projections::command::Audience::Everyone,
        opens_at: NOW,
        closes_at: NOW.plus_milliseconds(3_600_000),
        vote_changes_allowed: false,
        tally_visibility: projections::command::TallyVisibility::Public,
        anonymous: None,
    };
    definition.description = "A poll for benchmarks".into();
    append(&mut replayer, open(&official, Action::OpenPoll(definition)));
    let poll = replayer.ledger.size - 1;
    let mut envelopes = Vec::with_capacity(count);
    for index in 0..count {
        let citizen = generate_key(&entropy);
        append(
            &mut replayer,
            open(&citizen, Action::RegisterKey(RegisterKey {})),
        );
        let ballot = Action::CastBallot(CastBallot {
            version: None,
            poll,
            choices: vec![(index % 3) as u32],
        });
        envelopes.push(veche::client::signed_envelope(
            &citizen, ballot, NOW, &entropy,
        ));
    }
    (replayer, envelopes)
}

fn benchmarks(criterion: &mut Criterion) {
    let (replayer, envelopes) = ballots(1_000);
    let mut group = criterion.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));

    group.bench_function("envelope parse and strict verify", |bencher| {
        let mut index = 0;
        bencher.iter_batched(
            || {
                index = (index + 1) % envelopes.len();
                envelopes[index].clone()
            },
            |envelope| envelope.open().unwrap(),
            BatchSize::SmallInput,
        )
    });

    let opened: Vec<SignedCommand> = envelopes
        .iter()
        .map(|envelope| envelope.clone().open().unwrap())
        .collect();
    group.bench_function(
        "seal a ballot onto the chain (decide, encode, hash)",
        |bencher| {
            let mut index = 0;
            bencher.iter_batched(
                || {
                    index = (index + 1) % opened.len();
                    opened[index].clone()
                },
                |signed| projections::replay::seal(&replayer.ledger, signed, NOW).unwrap(),
                BatchSize::SmallInput,
            )
        },
    );

    let sealed: Vec<_> = opened
        .iter()
        .map(|signed| projections::replay::seal(&replayer.ledger, signed.clone(), NOW).unwrap())
        .collect();
    group.bench_function("fold a ballot into the tally", |bencher| {
        bencher.iter_batched(
            || (replayer.ledger.clone(), sealed[0].event.clone()),
            |(mut ledger, event)| {
                ledger.evolve(&event);
                ledger // dropped outside the measurement
            },
            BatchSize::LargeInput,
        )
    });

    group.bench_function("entry hash of a ballot entry", |bencher| {
        bencher.iter(|| projections::protocol::entry_hash(&sealed[1].bytes))
    });

    // The Merkle append: one leaf hash plus, on average, one interior node per leaf.
    group.bench_function(
        "Merkle append of a ballot entry (leaf hash and frontier)",
        |bencher| {
            let mut frontier = projections::merkle::Frontier::new();
            bencher.iter(|| {
                frontier.push(projections::merkle::leaf_hash(&sealed[1].bytes));
            })
        },
    );

    // The server's published tree: the same append plus the low-node window and tiles.
    group.bench_function("published tree append (TreeState::push)", |bencher| {
        let key = generate_key(&SeededEntropy::new(3));
        let mut tree = veche::transparency::TreeState::new("bench/log", &key);
        bencher.iter(|| tree.push(projections::merkle::leaf_hash(&sealed[1].bytes)))
    });
    // A receipt for the newest entry of a 100,000-entry tree: inclusion proof, checkpoint and
    // tlog-proof document, all from memory.
    group.bench_function("receipt for the newest entry of 100,000", |bencher| {
        let key = generate_key(&SeededEntropy::new(4));
        let mut tree = veche::transparency::TreeState::new("bench/log", &key);
        for index in 0u64..100_000 {
            tree.push(projections::merkle::leaf_hash(&index.to_be_bytes()));
        }
        tree.sign(&key);
        let store = veche::store::MemoryStore::new();
        let appended = veche::writer::Appended {
            position: 99_999,
            entry_hash: [1; 32],
            leaf_hash: projections::merkle::leaf_hash(&99_999u64.to_be_bytes()),
            server_time: NOW,
        };
        bencher.iter(|| tree.receipt(&store, &appended, None).unwrap())
    });

    // Signing the checkpoint after each batch.
    group.bench_function("sign a checkpoint", |bencher| {
        let key = generate_key(&SeededEntropy::new(5));
        let mut tree = veche::transparency::TreeState::new("bench/log", &key);
        tree.push([3; 32]);
        bencher.iter(|| tree.sign(&key))
    });
    group.finish();

    // Signature checks on their own: strict one by one (the ingest path) against the batch
    // equation (the verifier's path), per signature.
    let entries: Vec<projections::Entry> = sealed
        .iter()
        .map(|sealed| projections::Entry::decode(&sealed.bytes).unwrap())
        .collect();
    let mut signatures = criterion.benchmark_group("signatures");
    signatures.throughput(Throughput::Elements(64));
    signatures.bench_function("64 strict verifications", |bencher| {
        bencher.iter(|| {
            for entry in &entries[..64] {
                entry.verify_signature().unwrap();
            }
        })
    });
    // The library's own strict check, for comparison with veche's (which skips decompressing R).
    signatures.bench_function("64 strict verifications by ed25519-dalek", |bencher| {
        bencher.iter(|| {
            for entry in &entries[..64] {
                let key = ed25519_dalek::VerifyingKey::from_bytes(&entry.signer.0).unwrap();
                key.verify_strict(
                    &entry.signed_message(),
                    &ed25519_dalek::Signature::from_bytes(&entry.signature),
                )
                .unwrap();
            }
        })
    });
    signatures.bench_function("one batch verification of 64", |bencher| {
        let batch: Vec<&projections::Entry> = entries[..64].iter().collect();
        bencher.iter(|| projections::protocol::verify_batch(&batch).unwrap())
    });
    signatures.finish();
}

criterion_group!(hot_path, benchmarks);
criterion_main!(hot_path);
