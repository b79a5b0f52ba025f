//! The `veche` command: run the server, manage keys, and act as a citizen, official or admin.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use projections::command::{
    Audience, CastBallot, ChoiceKind, PollDefinition, RegisterKey, Role, RoleChange,
    TallyVisibility,
};
use projections::protocol::public_key_of;
use projections::{Action, PublicKey, Replayer, Timestamp};
use veche::client::{endpoint_for, signed_envelope, Client};
use veche::clock::{Clock, SystemClock};
use veche::keys::{generate_key, read_key_file, write_key_file, OsEntropy};
use veche::server::{DataDirectory, LOG_FILE};
use veche::store::{EventStore, SqliteStore};

#[derive(Parser)]
#[command(
    name = "veche",
    version,
    about = "Citizen-signed, hash-chained city polls"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(clap::Args)]
struct ServerArgument {
    /// Base URL of the veche server.
    #[arg(long, env = "VECHE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
}

#[derive(clap::Args)]
struct KeyArgument {
    /// Key file of the signer (64 hexadecimal characters, as written by `veche keygen`).
    #[arg(long, env = "VECHE_KEY")]
    key: PathBuf,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the server on the embedded SQLite store (created on first start).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "VECHE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Directory holding the log file and the server and admin keys.
        #[arg(long, env = "VECHE_DATA_DIR", default_value = "veche-data")]
        data_dir: PathBuf,
        /// The log's name, used in signed checkpoints.
        #[arg(long, env = "VECHE_LOG_ORIGIN", default_value = "veche.localhost/log")]
        log_origin: String,
        /// Where the log lives: the embedded SQLite file in the data directory (default), or a
        /// PostgreSQL URL shared by any number of nodes (which then share the data directory's
        /// server key).
        #[arg(long, env = "VECHE_STORE")]
        store: Option<String>,
        /// Redis URL for cross-node live fan-out, early replay refusal and shared rate limits.
        /// Optional; never the source of truth.
        #[arg(long, env = "VECHE_REDIS")]
        redis: Option<String>,
        /// Write requests one client address may send per minute; 0 turns the limit off.
        #[arg(long, env = "VECHE_COMMANDS_PER_ADDRESS_PER_MINUTE",
              default_value_t = projections::limits::COMMANDS_PER_ADDRESS_PER_MINUTE_MAX)]
        commands_per_address_per_minute: u64,
    },
    /// Create a data directory: server key, admin key, and a log holding its genesis entry.
    Init {
        #[arg(long, env = "VECHE_DATA_DIR", default_value = "veche-data")]
        data_dir: PathBuf,
        #[arg(long, env = "VECHE_LOG_ORIGIN", default_value = "veche.localhost/log")]
        log_origin: String,
    },
    /// Create a new key file and print its public key.
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key of a key file.
    PublicKey {
        #[command(flatten)]
        key: KeyArgument,
    },
    /// Register the key as a citizen.
    Register {
        #[command(flatten)]
        key: KeyArgument,
        #[command(flatten)]
        server: ServerArgument,
    },
    /// Grant a role (admin key).
    Grant {
        #[command(flatten)]
        key: KeyArgument,
        #[command(flatten)]
        server: ServerArgument,
        /// Public key receiving the role, hex.
        #[arg(long)]
        subject: String,
        /// official, moderator or registrar.
        #[arg(long)]
        role: String,
        /// The official's department.
        #[arg(long)]
        department: Option<String>,
    },
    /// Revoke a role (admin key).
    Revoke {
        #[command(flatten)]
        key: KeyArgument,
        #[command(flatten)]
        server: ServerArgument,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        role: String,
    },
    /// Open a poll (official key). Prints the receipt; the poll id is its position.
    OpenPoll {
        #[command(flatten)]
        key: KeyArgument,
        #[command(flatten)]
        server: ServerArgument,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        description: String,
        /// An option; give two to sixty-four.
        #[arg(long = "option", required = true)]
        options: Vec<String>,
        /// Most options one ballot may choose; above 1 makes a multiple-choice poll.
        #[arg(long, default_value_t = 1)]
        max_choices: u32,
        /// Opening time, RFC 3339 (default: now).
        #[arg(long)]
        opens_at: Option<String>,
        /// Minutes the poll stays open.
        #[arg(long, default_value_t = 60)]
        duration_minutes: i64,
        /// Let a citizen replace their ballot before close.
        #[arg(long)]
        allow_changes: bool,
        /// Withhold the running tally until close.
        #[arg(long)]
        sealed: bool,
    },
    /// Cast a ballot.
    Vote {
        #[command(flatten)]
        key: KeyArgument,
        #[command(flatten)]
        server: ServerArgument,
        #[arg(long)]
        poll: u64,
        /// Option index, counted from zero; repeat for multiple choice.
        #[arg(long = "choice", required = true)]
        choices: Vec<u32>,
    },
    /// Print a poll's tally.
    Tally {
        #[command(flatten)]
        server: ServerArgument,
        #[arg(long)]
        poll: u64,
    },
    /// Sign an action and print the envelope, for sending with curl.
    Sign {
        #[command(flatten)]
        key: KeyArgument,
        /// Action name, e.g. cast_ballot.
        #[arg(long)]
        action: String,
        /// The action's body as JSON, e.g. '{"poll":3,"choices":[0]}'.
        #[arg(long, default_value = "{}")]
        body: String,
    },
    /// Check a log trusting only its public key: from a server (its export plus the numbers it
    /// publishes) or from an export file, or an operator's own data directory. Exits non-zero and
    /// names the first bad position when anything does not hold.
    Verify(VerifyArguments),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let now = SystemClock.now();
    match cli.command {
        Commands::Serve {
            listen,
            data_dir,
            log_origin,
            store,
            redis,
            commands_per_address_per_minute,
        } => serve(
            &listen,
            &data_dir,
            &log_origin,
            store.as_deref(),
            redis.as_deref(),
            commands_per_address_per_minute,
        ),
        Commands::Init {
            data_dir,
            log_origin,
        } => {
            let directory = DataDirectory::open_or_init(&data_dir, &OsEntropy)?;
            let node = directory.start_node(
                directory.open_store()?,
                Arc::new(SystemClock),
                &log_origin,
            )?;
            println!("data directory: {}", data_dir.display());
            println!(
                "admin key file: {}",
                data_dir.join(veche::server::ADMIN_KEY_FILE).display()
            );
            println!("admin public key: {}", public_key_of(&directory.admin_key));
            println!(
                "server public key: {}",
                public_key_of(&directory.server_key)
            );
            println!("log entries: {}", node.ledger().size);
            node.shut_down();
            Ok(())
        }
        Commands::Keygen { out } => {
            let key = generate_key(&OsEntropy);
            write_key_file(&out, &key)?;
            println!("{}", public_key_of(&key));
            Ok(())
        }
        Commands::PublicKey { key } => {
            println!("{}", public_key_of(&read_key_file(&key.key)?));
            Ok(())
        }
        Commands::Register { key, server } => {
            send(&server, &key.key, Action::RegisterKey(RegisterKey {}), now)
        }
        Commands::Grant {
            key,
            server,
            subject,
            role,
            department,
        } => {
            let change = RoleChange {
                subject: parse_key(&subject)?,
                role: parse_role(&role)?,
                department,
            };
            send(&server, &key.key, Action::GrantRole(change), now)
        }
        Commands::Revoke {
            key,
            server,
            subject,
            role,
        } => {
            let change = RoleChange {
                subject: parse_key(&subject)?,
                role: parse_role(&role)?,
                department: None,
            };
            send(&server, &key.key, Action::RevokeRole(change), now)
        }
        Commands::OpenPoll {
            key,
            server,
            title,
            description,
            options,
            max_choices,
            opens_at,
            duration_minutes,
            allow_changes,
            sealed,
        } => {
            let opens_at = match opens_at {
                Some(text) => Timestamp::parse_rfc3339(&text)
                    .with_context(|| format!("--opens-at {text:?} is not RFC 3339"))?,
                None => now,
            };
            let definition = PollDefinition {
                title,
                description,
                options,
                choice_kind: if max_choices > 1 {
                    ChoiceKind::MultipleChoice
                } else {
                    ChoiceKind::SingleChoice
                },
                max_choices,
                audience: Audience::Everyone,
                opens_at,
                closes_at: opens_at.plus_milliseconds(duration_minutes.saturating_mul(60_000)),
                vote_changes_allowed: allow_changes,
                tally_visibility: if sealed {
                    TallyVisibility::Sealed
                } else {
                    TallyVisibility::Public
                },
            };
            send(&server, &key.key, Action::OpenPoll(definition), now)
        }
        Commands::Vote {
            key,
            server,
            poll,
            choices,
        } => send(
            &server,
            &key.key,
            Action::CastBallot(CastBallot { poll, choices }),
            now,
        ),
        Commands::Tally { server, poll } => {
            let answer = Client::new(&server.server)?.get(&format!("/v1/polls/{poll}/tally"))?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Commands::Sign { key, action, body } => {
            let body: serde_json::Value =
                serde_json::from_str(&body).context("--body is not JSON")?;
            let action: Action =
                serde_json::from_value(serde_json::json!({ "action": action, "body": body }))
                    .context("the action or its body is not valid")?;
            let envelope = signed_envelope(&read_key_file(&key.key)?, action, now, &OsEntropy);
            println!("{}", serde_json::to_string(&envelope)?);
            Ok(())
        }
        Commands::Verify(arguments) => {
            if arguments.server.is_none() && arguments.export.is_none() {
                let data_dir = arguments.data_dir.clone();
                verify(&data_dir.unwrap_or_else(|| PathBuf::from("veche-data")))
            } else {
                verify_log(arguments)
            }
        }
    }
}

fn parse_key(text: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_hex(text).context("a public key is 64 lowercase hexadecimal characters")
}

fn parse_role(text: &str) -> anyhow::Result<Role> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .with_context(|| format!("unknown role {text:?}: use official, moderator or registrar"))
}

fn send(
    server: &ServerArgument,
    key_file: &Path,
    action: Action,
    now: Timestamp,
) -> anyhow::Result<()> {
    let key = read_key_file(key_file)?;
    let path = endpoint_for(&action);
    let envelope = signed_envelope(&key, action, now, &OsEntropy);
    match Client::new(&server.server)?.post(&path, &envelope) {
        Ok(receipt) => {
            println!("{}", serde_json::to_string_pretty(&receipt)?);
            Ok(())
        }
        Err(veche::client::ClientError::Refused { status, body }) => {
            eprintln!("{}", serde_json::to_string_pretty(&body)?);
            bail!("the server refused the command ({status})")
        }
        Err(error) => Err(error.into()),
    }
}

fn serve(
    listen: &str,
    data_dir: &Path,
    log_origin: &str,
    store: Option<&str>,
    redis: Option<&str>,
    commands_per_address_per_minute: u64,
) -> anyhow::Result<()> {
    let directory = DataDirectory::open_or_init(data_dir, &OsEntropy)?;
    let store: Arc<dyn EventStore> = match store {
        None | Some("sqlite") => directory.open_store()?,
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(veche::store::PostgresStore::open(url, None)?)
        }
        Some(other) => bail!("--store {other:?}: use sqlite or a postgres:// URL"),
    };
    let node = Arc::new(directory.start_node(store, Arc::new(SystemClock), log_origin)?);
    node.rate_limits.per_address_per_minute.store(
        commands_per_address_per_minute,
        std::sync::atomic::Ordering::Relaxed,
    );
    let listener =
        TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    actix_web::rt::System::new().block_on(async move {
        if let Some(url) = redis {
            veche::server::attach_redis(&node, url)?;
        }
        let running = veche::server::run(node, listener)?;
        tracing::info!(address = %running.address, data_dir = %data_dir.display(), "veche is serving");
        running.server.await?;
        // Stopped by a signal: leave a snapshot so the next start folds only what comes after.
        let started = std::time::Instant::now();
        match running.node.write_snapshot() {
            Ok(Some(header)) => tracing::info!(
                entries = header.size,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "wrote the start-up snapshot"
            ),
            Ok(None) => tracing::info!("no start-up snapshot written: the state is not yet proven"),
            Err(error) => tracing::warn!(%error, "could not write the start-up snapshot"),
        }
        anyhow::Ok(())
    })
}

fn verify(data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join(LOG_FILE);
    if !path.exists() {
        bail!("no log at {}", path.display());
    }
    let store = SqliteStore::open(&path)?;
    let mut replayer = Replayer::new();
    let total = store.size()?;
    veche::writer::catch_up(&store, &mut replayer, |_| {})
        .map_err(|error| anyhow::anyhow!("verification failed: {error}"))?;
    let ledger = &replayer.ledger;
    println!("verified {total} entries: every hash link, signature and decision holds");
    println!("head hash: {}", hex::encode(ledger.head_hash));
    for poll in ledger.polls.values() {
        println!(
            "poll {} {:?}: counts {:?}, turnout {}, superseded {}{}",
            poll.id,
            poll.definition.title,
            poll.tally.counts,
            poll.tally.turnout,
            poll.tally.superseded_ballots,
            if poll.closed.is_some() {
                " (final)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

#[derive(clap::Args)]
struct VerifyArguments {
    /// Base URL of a veche server: downloads `/v1/log/export` and diffs every published tally
    /// and the complaint statistics against the recount.
    #[arg(long, conflicts_with_all = ["export", "data_dir"])]
    server: Option<String>,
    /// An export file saved from `/v1/log/export`.
    #[arg(long, conflicts_with = "data_dir")]
    export: Option<PathBuf>,
    /// A server's own data directory (operators): replays `log.sqlite` offline.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The log's verifier key (C2SP vkey, `<origin>+<key id>+<key>`), obtained from a source
    /// you trust; required with --server and --export.
    #[arg(long, env = "VECHE_LOG_KEY")]
    log_key: Option<String>,
    /// A state saved by an earlier run (--save-checkpoint) or a bare signed checkpoint note:
    /// the log must extend it.
    #[arg(long)]
    previous_checkpoint: Option<PathBuf>,
    /// Where to save this run's checkpoint and leaf hashes for the next run.
    #[arg(long)]
    save_checkpoint: Option<PathBuf>,
    /// Verify each signature on its own instead of in batches (slower; see docs/VERIFYING.md).
    #[arg(long)]
    strict_signatures: bool,
    /// Threads for checking entries (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print a machine-readable summary on stdout instead of text.
    #[arg(long)]
    json: bool,
}

fn verify_log(arguments: VerifyArguments) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    use veche::verification::{fetch_published, verify_export, Options, Published, SavedState};

    let log_key = arguments
        .log_key
        .as_deref()
        .context("--log-key is required with --server and --export")?;
    let verifier = projections::checkpoint::NoteVerifier::parse(log_key)
        .map_err(|error| anyhow::anyhow!("--log-key: {error}"))?;
    let previous = match &arguments.previous_checkpoint {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Some(
                SavedState::decode(&bytes, &verifier)
                    .map_err(|failure| anyhow::anyhow!("{failure}"))?,
            )
        }
        None => None,
    };
    let threads = arguments.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let options = Options {
        verifier,
        previous,
        strict_signatures: arguments.strict_signatures,
        threads,
        keep_leaf_hashes: arguments.save_checkpoint.is_some(),
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .context("building the HTTP client")?;
    let (published, mut input): (Published, Box<dyn std::io::Read + Send>) =
        match (&arguments.server, &arguments.export) {
            (Some(server), _) => {
                let base = server.trim_end_matches('/').to_owned();
                // Published numbers first: the export then covers every size they were computed at.
                let published =
                    fetch_published(&client, &base).map_err(|error| anyhow::anyhow!(error))?;
                let response = client
                    .get(format!("{base}/v1/log/export"))
                    .send()
                    .and_then(reqwest::blocking::Response::error_for_status)
                    .context("downloading the export")?;
                (
                    published,
                    Box::new(std::io::BufReader::with_capacity(1 << 20, response)),
                )
            }
            (None, Some(path)) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                (
                    Published::default(),
                    Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
                )
            }
            (None, None) => bail!("give --server or --export"),
        };
    let show_progress = std::io::stderr().is_terminal() && !arguments.json;
    let started = std::time::Instant::now();
    let mut last_shown = std::time::Instant::now();
    let mut progress = |done: u64, total: u64| {
        if !show_progress || last_shown.elapsed() < std::time::Duration::from_millis(200) {
            return;
        }
        last_shown = std::time::Instant::now();
        let width = 40u64;
        let filled = (done * width)
            .checked_div(total)
            .unwrap_or(width)
            .min(width) as usize;
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r[{}{}] {done}/{total} entries, {rate:.0} events/s ",
            "#".repeat(filled),
            ".".repeat(width as usize - filled)
        );
        let _ = std::io::stderr().flush();
    };
    let mut report = verify_export(&mut input, &options, &published, &mut progress);
    if show_progress {
        eprintln!();
    }
    // With a server and an earlier checkpoint, also check the server's own consistency proof.
    if let (true, Some(server), Some(previous), Some(size)) = (
        report.ok,
        &arguments.server,
        &options.previous,
        report.tree_size,
    ) {
        if let Err(reason) = check_served_consistency(&client, server, previous, size, &report) {
            report.ok = false;
            report.failure = Some(veche::verification::Failure {
                position: None,
                reason,
            });
        }
    }
    if let (true, Some(path), Some(state)) = (report.ok, &arguments.save_checkpoint, &report.state)
    {
        std::fs::write(path, state.encode())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if arguments.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.ok {
        println!(
            "verified {} entries of {}: every signature ({}), hash link, decision and the Merkle root \
             against the signed checkpoint hold",
            report.entries_verified,
            report.log_origin.as_deref().unwrap_or("?"),
            report.signatures,
        );
        println!("root {}", report.root.as_deref().unwrap_or("?"));
        if let Some(size) = report.consistent_with_previous_size {
            println!("the log extends the saved checkpoint of size {size}");
        }
        println!(
            "recounted {} polls and the complaint statistics; {} published numbers match",
            report.polls_recounted, report.published_numbers_compared
        );
        println!(
            "{:.0} events/s on {} threads ({:.2} s)",
            report.events_per_second, report.threads, report.seconds
        );
    }
    match &report.failure {
        Some(failure) => bail!("verification failed at {failure}"),
        None => Ok(()),
    }
}

fn check_served_consistency(
    client: &reqwest::blocking::Client,
    server: &str,
    previous: &veche::verification::SavedState,
    size: u64,
    report: &veche::verification::Report,
) -> Result<(), String> {
    let from = previous.checkpoint.size;
    if from == 0 || from == size {
        return Ok(());
    }
    let url = format!(
        "{}/v1/log/proofs/consistency?from={from}&to={size}",
        server.trim_end_matches('/')
    );
    let proof: serde_json::Value = client
        .get(&url)
        .send()
        .and_then(reqwest::blocking::Response::error_for_status)
        .and_then(reqwest::blocking::Response::json)
        .map_err(|error| format!("the server's consistency proof: {error}"))?;
    let hashes = proof["proof"]
        .as_array()
        .ok_or("the consistency proof has no hashes")?
        .iter()
        .map(|hash| {
            hash.as_str()
                .and_then(veche::transparency::hash_from_base64)
        })
        .collect::<Option<Vec<_>>>()
        .ok_or("the consistency proof holds a malformed hash")?;
    let root = report
        .root
        .as_deref()
        .and_then(veche::transparency::hash_from_base64)
        .ok_or("no recomputed root")?;
    projections::merkle::verify_consistency(from, size, &hashes, &previous.checkpoint.root, &root)
        .map_err(|error| {
            format!("the server's consistency proof from size {from} does not verify: {error}")
        })
}
