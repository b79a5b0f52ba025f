//! `veche-synthetic-export`: writes a large, valid veche export offline — genesis, an official,
//! polls, then citizens registering and voting — signed like real clients sign, so `veche verify`
//! can be measured on a log of any size without a server.
//!
//! Every entry goes through the same `seal` the server's writer uses, so the export verifies
//! exactly when the server would have accepted each command. Keys come from a seed: the same
//! arguments give the same bytes.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use ed25519_dalek::SigningKey;
use projections::checkpoint::{sign_note, verifier_key, Checkpoint};
use projections::command::{
    Audience, CastBallot, ChoiceKind, Genesis, PollDefinition, RegisterKey, Role, RoleChange,
    TallyVisibility,
};
use projections::protocol::public_key_of;
use projections::replay::seal;
use projections::{Action, Command, EntryKind, Ledger, SignedCommand, Timestamp};
use veche::keys::{generate_key, write_key_file, SeededEntropy};
use veche::server::{ADMIN_KEY_FILE, LOG_FILE, SERVER_KEY_FILE};
use veche::store::{EventStore, SqliteStore, StoredEntry};

#[derive(Parser)]
#[command(name = "veche-synthetic-export", version)]
struct Args {
    /// Entries the log holds (at least the set-up: genesis, official, polls).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Polls the citizens' ballots are spread over.
    #[arg(long, default_value_t = 100)]
    polls: u64,
    /// Ballots each citizen casts, each in a different poll (at most `--polls`): 1 gives a log of
    /// many one-time voters, 10 a log of 10,000,000 ballots from about 1,000,000 citizens.
    #[arg(long, default_value_t = 1)]
    ballots_per_citizen: u64,
    /// Seed of every key.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The log's origin (its name in the checkpoint).
    #[arg(long, default_value = "synthetic.veche.test/log")]
    origin: String,
    /// Where to write the export.
    #[arg(long)]
    out: PathBuf,
    /// Also write a server data directory holding the same log (and its keys), to measure a
    /// node's start-up on a large log. Must not exist yet.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// 2026-11-23T10:00:00Z.
const START: Timestamp = Timestamp(1_795_428_000_000);
/// Citizens signed per parallel chunk: bounds memory whatever the log size.
const CHUNK_CITIZENS: u64 = 32_768;

fn signed(key: &SigningKey, kind: EntryKind, command: Command) -> SignedCommand {
    SignedCommand::sign(key, kind, command)
}

fn command(key: &SigningKey, counter: u64, issued_at: Timestamp, action: Action) -> Command {
    Command {
        author: public_key_of(key),
        nonce: format!("{counter:032x}"),
        issued_at,
        action,
    }
}

struct Log {
    ledger: Ledger,
    bytes: Vec<u8>,
    /// Entries not yet written to the data directory's store.
    pending: Vec<StoredEntry>,
    store: Option<SqliteStore>,
}

impl Log {
    /// Seals and appends one command; the server time advances a millisecond per entry.
    fn append(&mut self, command: SignedCommand) -> anyhow::Result<()> {
        let time = START.plus_milliseconds(self.ledger.size as i64);
        let sealed = seal(&self.ledger, command, time)
            .map_err(|refusal| anyhow::anyhow!("entry {}: {refusal}", self.ledger.size))?;
        self.bytes
            .extend_from_slice(&(sealed.bytes.len() as u16).to_be_bytes());
        self.bytes.extend_from_slice(&sealed.bytes);
        self.ledger.evolve(&sealed.event);
        if self.store.is_some() {
            self.pending.push(StoredEntry {
                position: sealed.event.position,
                bytes: sealed.bytes,
                hash: sealed.event.hash,
                content: Vec::new(),
                erases: None,
            });
            if self.pending.len() >= 8_192 {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(store) = &self.store {
            store.append(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }

    fn now(&self) -> Timestamp {
        START.plus_milliseconds(self.ledger.size as i64)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let entropy = SeededEntropy::new(args.seed);
    let server = generate_key(&entropy);
    let admin = generate_key(&entropy);
    let official = generate_key(&entropy);
    let store = match &args.data_dir {
        Some(directory) => {
            if directory.exists() {
                anyhow::bail!("{} exists already", directory.display());
            }
            std::fs::create_dir_all(directory)?;
            write_key_file(&directory.join(SERVER_KEY_FILE), &server)?;
            write_key_file(&directory.join(ADMIN_KEY_FILE), &admin)?;
            Some(SqliteStore::open(&directory.join(LOG_FILE))?)
        }
        None => None,
    };
    let mut log = Log {
        ledger: Ledger::new(),
        bytes: Vec::new(),
        pending: Vec::new(),
        store,
    };
    let genesis = Action::Genesis(Genesis {
        log_origin: args.origin.clone(),
        admin_keys: vec![public_key_of(&admin)],
        recovery: None,
    });
    log.append(signed(
        &server,
        EntryKind::System,
        command(&server, 0, START, genesis),
    ))?;
    let now = log.now();
    log.append(signed(
        &official,
        EntryKind::Command,
        command(&official, 1, now, Action::RegisterKey(RegisterKey {})),
    ))?;
    let grant = Action::GrantRole(RoleChange {
        subject: public_key_of(&official),
        role: Role::Official,
        department: Some("elections".into()),
    });
    let now = log.now();
    log.append(signed(
        &admin,
        EntryKind::Command,
        command(&admin, 2, now, grant),
    ))?;
    let mut polls = Vec::new();
    for poll in 0..args.polls {
        let now = log.now();
        polls.push(log.ledger.size);
        let definition = PollDefinition {
            title: format!("Synthetic poll {poll}"),
            description: String::new(),
            options: vec!["Yes".into(), "No".into(), "Abstain".into()],
            choice_kind: ChoiceKind::SingleChoice,
            max_choices: 1,
            audience: Audience::Everyone,
            opens_at: START,
            closes_at: START.plus_milliseconds(300 * 24 * 60 * 60 * 1000),
            vote_changes_allowed: false,
            tally_visibility: TallyVisibility::Public,
            anonymous: None,
        };
        log.append(signed(
            &official,
            EntryKind::Command,
            command(&official, 3 + poll, now, Action::OpenPoll(definition)),
        ))?;
    }
    anyhow::ensure!(
        (1..=args.polls).contains(&args.ballots_per_citizen),
        "--ballots-per-citizen must be between 1 and --polls"
    );
    // Each citizen registers, then casts their ballots.
    let entries_per_citizen = 1 + args.ballots_per_citizen;
    let citizens = args
        .events
        .saturating_sub(log.ledger.size)
        .div_ceil(entries_per_citizen);
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut first = 0;
    while first < citizens {
        let last = (first + CHUNK_CITIZENS).min(citizens);
        // Each citizen's commands are signed in parallel; the times they carry are the ones the
        // sequential sealing below gives them (a millisecond an entry).
        let base_size = log.ledger.size;
        let seed = args.seed;
        let ballots_per_citizen = args.ballots_per_citizen;
        let per_thread = (last - first).div_ceil(threads as u64);
        let polls = &polls;
        let signed_commands: Vec<Vec<SignedCommand>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads as u64)
                .map(|thread| {
                    let from = first + thread * per_thread;
                    let to = (from + per_thread).min(last);
                    scope.spawn(move || {
                        (from..to)
                            .map(|citizen| {
                                let key = generate_key(&SeededEntropy::new(
                                    seed.wrapping_mul(1_000_003).wrapping_add(citizen + 1),
                                ));
                                let offset = base_size + entries_per_citizen * (citizen - first);
                                let register = command(
                                    &key,
                                    0,
                                    START.plus_milliseconds(offset as i64),
                                    Action::RegisterKey(RegisterKey {}),
                                );
                                let mut commands = vec![signed(&key, EntryKind::Command, register)];
                                for ballot in 0..ballots_per_citizen {
                                    let poll =
                                        polls[((citizen + ballot) % polls.len() as u64) as usize];
                                    let cast = command(
                                        &key,
                                        1 + ballot,
                                        START.plus_milliseconds((offset + 1 + ballot) as i64),
                                        Action::CastBallot(CastBallot {
                                            version: None,
                                            poll,
                                            choices: vec![((citizen + ballot) % 3) as u32],
                                        }),
                                    );
                                    commands.push(signed(&key, EntryKind::Command, cast));
                                }
                                commands
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap_or_default())
                .collect()
        });
        for command in signed_commands.into_iter().flatten() {
            log.append(command)?;
        }
        first = last;
        eprint!("\r{} entries", log.ledger.size);
    }
    eprintln!();
    log.flush()?;
    let body = Checkpoint {
        origin: args.origin.clone(),
        size: log.ledger.size,
        root: log.ledger.merkle.root(),
    }
    .body();
    let note = sign_note(&body, &args.origin, &server);
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?,
    );
    file.write_all(&(note.len() as u16).to_be_bytes())?;
    file.write_all(note.as_bytes())?;
    file.write_all(&log.bytes)?;
    file.flush()?;
    println!(
        "wrote {} entries ({} bytes) to {} in {:.1} s",
        log.ledger.size,
        log.bytes.len() + note.len() + 2,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "verifier key: {}",
        verifier_key(&args.origin, &public_key_of(&server))
    );
    Ok(())
}
