//! The `veche` command: run the server, manage keys, and act as a citizen, official or admin.
//!
//! Each subcommand is an `Args` struct with a `run`; `main` sets up logging and dispatches.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use projections::command::{
    AdminHandOver, Anonymity, Attestation, Audience, CastBallot, ChoiceKind, KeyRevocation,
    PollDefinition, RecoveryApproval, RegisterKey, Role, RoleChange, TallyVisibility,
};
use projections::protocol::public_key_of;
use projections::{Action, PublicKey, Timestamp};
use veche::client::{endpoint_for, signed_envelope, Client};
use veche::clock::{Clock, SystemClock};
use veche::keys::{generate_key, read_key_file, write_key_file, OsEntropy};
use veche::server::{Application, DataDirectory, Settings, LOG_FILE};
use veche::store::{EventStore, SqliteStore};
use veche_verifier::wallet::wallet_path;

mod cli;

/// mimalloc rather than the system allocator: under load the server allocates and frees small
/// buffers on every thread (envelopes, payloads, receipts), and glibc's malloc showed in the profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "veche",
    version,
    about = "Citizen-signed, hash-chained city polls"
)]
struct Cli {
    /// How log lines are written on stderr: `text` (coloured only on a terminal) or `json` (one
    /// object a line).
    #[arg(long, global = true, env = "VECHE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
    Serve(Serve),
    /// Create a data directory: server key, admin key, and a log holding its genesis entry.
    Init(Init),
    /// Create a new key file and print its public key.
    Keygen(Keygen),
    /// Print the public key of a key file.
    PublicKey(ShowPublicKey),
    /// Print the Open311 `api_key` of a gateway's key file, for its Open311 client; the node
    /// signs for the gateway once the key file is in the data directory's `gateway-keys`.
    GatewayApiKey(GatewayApiKey),
    /// Register the key as a citizen.
    Register(Register),
    /// Grant a role (admin key).
    Grant(Grant),
    /// Revoke a role (admin key).
    Revoke(Revoke),
    /// Hand the admin office to a new key (admin key): the signing key stops being an admin.
    HandOverAdmin(HandOverAdmin),
    /// Approve replacing a lost or leaked admin key (a recovery key); the approval that reaches
    /// the genesis threshold makes the replacement.
    ApproveRecovery(ApproveRecovery),
    /// Print the resident tag a registrar secret gives a resident's identity.
    ResidentTag(ResidentTag),
    /// Attest a key as a verified resident (registrar key), tagged with the resident's tag.
    Attest(Attest),
    /// Revoke a key for good: the signer's own, or a resident's lost key (registrar key).
    RevokeKey(RevokeKey),
    /// Open a poll (official key). Prints the receipt; the poll id is its position.
    OpenPoll(OpenPoll),
    /// Cast a ballot (`--anonymous` in an anonymous poll).
    Vote(Vote),
    /// Obtain an anonymous poll's credentials into the wallet beside the key, to cast later.
    Credentials(Credentials),
    /// Run an independent co-issuer of anonymous polls: its own key, answering only the
    /// requests it finds eligible and first in the node's log, which it follows and checks.
    CoIssuer(CoIssuerCommand),
    /// Print a poll's tally.
    Tally(Tally),
    /// Sign an action and print the envelope, for sending with curl.
    Sign(Sign),
    /// Write a node's log and content store into a directory (log.export, content.json), to move
    /// it to another store with `import`: offline, from SQLite or PostgreSQL.
    Export(Export),
    /// Check an export as a journalist would, append it to an empty store, and start a node on
    /// it whose checkpoint must equal the export's.
    Import(Import),
    /// Copy a running SQLite node's data directory consistently (log, checkpoint record, keys).
    Backup(Backup),
    /// Complaints: residents file, supplement, confirm, dispute and erase; moderators triage,
    /// merge and redact; officials answer.
    Complaint(cli::complaint::ComplaintCommand),
    /// Proposals: residents submit, support and erase; moderators publish; officials answer.
    Proposal(cli::proposal::ProposalCommand),
    /// The category catalogue (admin).
    Category(cli::catalogue::CategoryCommand),
    /// Roles: grant, revoke (admin) and list.
    Role(cli::catalogue::RoleCommand),
    /// Residents' keys: attest and revoke (registrar), and what the log says of a key.
    Resident(cli::resident::ResidentCommand),
    /// Check a log trusting only its public key: from a server (its export plus the numbers it
    /// publishes) or from an export file, or an operator's own data directory. Exits non-zero and
    /// names the first bad position when anything does not hold.
    Verify(Verify),
    /// Open data: dump every export with a manifest, or check a dump against the log.
    OpenData(veche::open_data::OpenData),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    initialise_logging(cli.log_format);
    match cli.command {
        Commands::Serve(command) => command.run(),
        Commands::Init(command) => command.run(),
        Commands::Keygen(command) => command.run(),
        Commands::PublicKey(command) => command.run(),
        Commands::GatewayApiKey(command) => command.run(),
        Commands::Register(command) => command.run(),
        Commands::Grant(command) => command.run(),
        Commands::Revoke(command) => command.run(),
        Commands::HandOverAdmin(command) => command.run(),
        Commands::ApproveRecovery(command) => command.run(),
        Commands::ResidentTag(command) => command.run(),
        Commands::Attest(command) => command.run(),
        Commands::RevokeKey(command) => command.run(),
        Commands::OpenPoll(command) => command.run(),
        Commands::Vote(command) => command.run(),
        Commands::Credentials(command) => command.run(),
        Commands::CoIssuer(command) => command.run(),
        Commands::Tally(command) => command.run(),
        Commands::Sign(command) => command.run(),
        Commands::Export(command) => command.run(),
        Commands::Import(command) => command.run(),
        Commands::Backup(command) => command.run(),
        Commands::Verify(command) => command.run(),
        Commands::Complaint(command) => command.run(),
        Commands::Proposal(command) => command.run(),
        Commands::Category(command) => command.run(),
        Commands::Role(command) => command.run(),
        Commands::Resident(command) => command.run(),
        Commands::OpenData(command) => command.run(),
    }
}

/// Log lines on stderr: JSON objects, or text coloured only when stderr is a terminal (a file
/// or a pipe gets no ANSI escapes).
fn initialise_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

#[derive(clap::Args)]
struct Serve {
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
    /// Keys one client address may register per hour; 0 turns the limit off (behind a proxy
    /// that hides client addresses, or for a load test from one machine).
    #[arg(long, env = "VECHE_REGISTRATIONS_PER_ADDRESS_PER_HOUR",
          default_value_t = projections::limits::REGISTRATIONS_PER_ADDRESS_PER_HOUR_MAX)]
    registrations_per_address_per_hour: u64,
    /// Entries between two periodic snapshots, made in the background so that a crash costs a
    /// replay of the entries since the latest one; 0 makes a snapshot only when the server stops.
    #[arg(long, env = "VECHE_SNAPSHOT_INTERVAL_ENTRIES",
          default_value_t = projections::limits::SNAPSHOT_INTERVAL_ENTRIES_DEFAULT)]
    snapshot_interval_entries: u64,
}

impl Serve {
    fn run(self) -> anyhow::Result<()> {
        let store = store_named(self.store.as_deref())?;
        let listen = &self.listen;
        let listener =
            TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
        veche::http::block_on(async move {
            let application = Application::build(Settings {
                data_directory: &self.data_dir,
                entropy: &OsEntropy,
                store,
                clock: Arc::new(SystemClock),
                log_origin: &self.log_origin,
                listener,
                redis_url: self.redis.as_deref(),
                commands_per_address_per_minute: self.commands_per_address_per_minute,
                registrations_per_address_per_hour: self.registrations_per_address_per_hour,
                snapshot_interval_entries: self.snapshot_interval_entries,
            })?;
            let running = application.running;
            tracing::info!(address = %running.address, data_dir = %self.data_dir.display(), "veche is serving");
            running.server.await?;
            write_snapshot(&running.node).await;
            anyhow::Ok(())
        })
    }
}

/// The store `--store` names: `None` for the data directory's SQLite file (the default).
fn store_named(store: Option<&str>) -> anyhow::Result<Option<Arc<dyn EventStore>>> {
    Ok(match store {
        None | Some("sqlite") => None,
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Some(Arc::new(veche::store::PostgresStore::open(url, None)?))
        }
        Some(other) => bail!("--store {other:?}: use sqlite or a postgres:// URL"),
    })
}

/// The store `--store` names, or the data directory's SQLite file.
fn store_for(
    directory: &DataDirectory,
    store: Option<&str>,
) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(match store_named(store)? {
        Some(store) => store,
        None => directory.open_store()?,
    })
}

/// Stopped by a signal: leave a snapshot so the next start folds only what comes after.
async fn write_snapshot(node: &veche::node::Node) {
    let started = std::time::Instant::now();
    match node.write_snapshot().await {
        Ok(Some(header)) => tracing::info!(
            entries = header.size,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "wrote the start-up snapshot"
        ),
        Ok(None) => tracing::info!("no start-up snapshot written: the state is not yet proven"),
        Err(error) => tracing::warn!(%error, "could not write the start-up snapshot"),
    }
}

#[derive(clap::Args)]
struct Init {
    #[arg(long, env = "VECHE_DATA_DIR", default_value = "veche-data")]
    data_dir: PathBuf,
    #[arg(long, env = "VECHE_LOG_ORIGIN", default_value = "veche.localhost/log")]
    log_origin: String,
    /// Where the genesis goes: `sqlite` (the data directory's file, the default) or the
    /// PostgreSQL URL the nodes will share.
    #[arg(long, env = "VECHE_STORE")]
    store: Option<String>,
}

impl Init {
    fn run(self) -> anyhow::Result<()> {
        let data_dir = &self.data_dir;
        let directory = DataDirectory::open_or_init(data_dir, &OsEntropy)?;
        let store = store_for(&directory, self.store.as_deref())?;
        let node = directory.start_node(store, Arc::new(SystemClock), &self.log_origin)?;
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
}

#[derive(clap::Args)]
struct Keygen {
    /// Where to write the key; an existing file is never overwritten.
    #[arg(long)]
    out: PathBuf,
}

impl Keygen {
    fn run(self) -> anyhow::Result<()> {
        let key = generate_key(&OsEntropy);
        write_key_file(&self.out, &key)?;
        println!("{}", public_key_of(&key));
        Ok(())
    }
}

#[derive(clap::Args)]
struct ShowPublicKey {
    #[command(flatten)]
    key: KeyArgument,
}

impl ShowPublicKey {
    fn run(self) -> anyhow::Result<()> {
        println!("{}", public_key_of(&read_key_file(&self.key.key)?));
        Ok(())
    }
}

#[derive(clap::Args)]
struct GatewayApiKey {
    #[command(flatten)]
    key: KeyArgument,
}

impl GatewayApiKey {
    fn run(self) -> anyhow::Result<()> {
        let key = read_key_file(&self.key.key)?;
        println!("{}", veche::gateway::api_key_of(&key));
        Ok(())
    }
}

#[derive(clap::Args)]
struct Register {
    #[command(flatten)]
    key: KeyArgument,
    #[command(flatten)]
    server: ServerArgument,
}

impl Register {
    fn run(self) -> anyhow::Result<()> {
        send(&self.server, &self.key, Action::RegisterKey(RegisterKey {}))
    }
}

/// A role change: who signs it, where it goes, and the role.
#[derive(clap::Args)]
struct RoleArguments {
    #[command(flatten)]
    key: KeyArgument,
    #[command(flatten)]
    server: ServerArgument,
    /// Public key receiving or losing the role, hex.
    #[arg(long)]
    subject: String,
    /// official, moderator, registrar or gateway.
    #[arg(long)]
    role: String,
}

#[derive(clap::Args)]
struct Grant {
    #[command(flatten)]
    role: RoleArguments,
    /// The official's department.
    #[arg(long)]
    department: Option<String>,
}

impl RoleArguments {
    /// Signs and sends the role change that `action` makes of these arguments.
    fn send(
        self,
        department: Option<String>,
        action: fn(RoleChange) -> Action,
    ) -> anyhow::Result<()> {
        let change = role_change(&self.subject, &self.role, department)?;
        send(&self.server, &self.key, action(change))
    }
}

impl Grant {
    fn run(self) -> anyhow::Result<()> {
        self.role.send(self.department, Action::GrantRole)
    }
}

#[derive(clap::Args)]
struct Revoke {
    #[command(flatten)]
    role: RoleArguments,
}

impl Revoke {
    fn run(self) -> anyhow::Result<()> {
        self.role.send(None, Action::RevokeRole)
    }
}

/// The registrar's secret and a resident's identity: what a resident tag is made of.
#[derive(clap::Args)]
struct ResidentIdentity {
    /// File holding the registrar's secret (its bytes as they are; at least 32 of them, e.g.
    /// `head -c 32 /dev/urandom`). It never leaves the registrar's machine.
    #[arg(long, env = "VECHE_REGISTRAR_SECRET_FILE")]
    secret_file: PathBuf,
    /// The resident's identity as the registrar writes it down, normalised the same way every
    /// time (a document number without spaces, say).
    #[arg(long)]
    identity: String,
}

impl ResidentIdentity {
    fn tag(&self) -> anyhow::Result<String> {
        let path = &self.secret_file;
        let secret = std::fs::read(path)
            .with_context(|| format!("cannot read the registrar secret {}", path.display()))?;
        if secret.len() < projections::limits::REGISTRAR_SECRET_BYTES_MIN {
            bail!(
                "a registrar secret has at least {} bytes",
                projections::limits::REGISTRAR_SECRET_BYTES_MIN
            );
        }
        Ok(veche::registrar::resident_tag(&secret, &self.identity))
    }
}

#[derive(clap::Args)]
struct ResidentTag {
    #[command(flatten)]
    resident: ResidentIdentity,
}

impl ResidentTag {
    fn run(self) -> anyhow::Result<()> {
        println!("{}", self.resident.tag()?);
        Ok(())
    }
}

#[derive(clap::Args)]
struct Attest {
    /// The resident's public key, hex.
    #[arg(long)]
    subject: String,
    /// The district the registrar found the resident lives in.
    #[arg(long)]
    district: Option<String>,
    #[command(flatten)]
    resident: ResidentIdentity,
    #[command(flatten)]
    key: KeyArgument,
    #[command(flatten)]
    server: ServerArgument,
}

impl Attest {
    fn run(self) -> anyhow::Result<()> {
        let attestation = Attestation {
            subject: public_key_argument(&self.subject)?,
            district: self.district.clone(),
            verified: true,
            resident_tag: Some(self.resident.tag()?),
        };
        send(&self.server, &self.key, Action::AttestResident(attestation))
    }
}

#[derive(clap::Args)]
struct RevokeKey {
    #[command(flatten)]
    key: KeyArgument,
    #[command(flatten)]
    server: ServerArgument,
    /// The key to revoke, hex; the signing key's own when absent.
    #[arg(long)]
    subject: Option<String>,
}

impl RevokeKey {
    fn run(self) -> anyhow::Result<()> {
        let subject = match &self.subject {
            Some(subject) => public_key_argument(subject)?,
            None => public_key_of(&read_key_file(&self.key.key)?),
        };
        send(
            &self.server,
            &self.key,
            Action::RevokeKey(KeyRevocation { subject }),
        )
    }
}

#[derive(clap::Args)]
struct HandOverAdmin {
    #[command(flatten)]
    key: KeyArgument,
    #[command(flatten)]
    server: ServerArgument,
    /// Public key of the new admin, hex.
    #[arg(long)]
    successor: String,
}

impl HandOverAdmin {
    fn run(self) -> anyhow::Result<()> {
        let successor = public_key_argument(&self.successor)?;
        send(
            &self.server,
            &self.key,
            Action::HandOverAdmin(AdminHandOver { successor }),
        )
    }
}

#[derive(clap::Args)]
struct ApproveRecovery {
    #[command(flatten)]
    key: KeyArgument,
    #[command(flatten)]
    server: ServerArgument,
    /// Public key of the admin key to replace, hex.
    #[arg(long)]
    revoked: String,
    /// Public key of the new admin, hex.
    #[arg(long)]
    successor: String,
}

impl ApproveRecovery {
    fn run(self) -> anyhow::Result<()> {
        let approval = RecoveryApproval {
            revoked: public_key_argument(&self.revoked)?,
            successor: public_key_argument(&self.successor)?,
        };
        send(&self.server, &self.key, Action::ApproveRecovery(approval))
    }
}

#[derive(clap::Args)]
struct OpenPoll {
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
    /// Only keys a registrar attested as verified residents of these districts may vote;
    /// repeat for several.
    #[arg(long = "district")]
    districts: Vec<String>,
    /// Only keys a registrar attested as verified residents may vote.
    #[arg(long, conflicts_with = "districts")]
    verified_only: bool,
    /// An anonymous poll: ballots are signed by per-poll keys carrying the node's credentials
    /// (one issuer key per district), asked of the server as the poll is opened.
    #[arg(long)]
    anonymous: bool,
    /// The co-issuer's public key (hex DER, as `veche co-issuer --print-key` prints it): every
    /// ballot then needs its credential too.
    #[arg(long, requires = "anonymous")]
    co_issuer_key: Option<String>,
}

impl OpenPoll {
    fn run(self) -> anyhow::Result<()> {
        let opens_at = match &self.opens_at {
            Some(text) => Timestamp::parse_rfc3339(text)
                .with_context(|| format!("--opens-at {text:?} is not RFC 3339"))?,
            None => SystemClock.now(),
        };
        let audience = self.audience();
        let anonymous = self.anonymity()?;
        let definition = PollDefinition {
            title: self.title,
            description: self.description,
            options: self.options,
            choice_kind: if self.max_choices > 1 {
                ChoiceKind::MultipleChoice
            } else {
                ChoiceKind::SingleChoice
            },
            max_choices: self.max_choices,
            audience,
            opens_at,
            closes_at: opens_at.plus_milliseconds(self.duration_minutes.saturating_mul(60_000)),
            vote_changes_allowed: self.allow_changes,
            tally_visibility: if self.sealed {
                TallyVisibility::Sealed
            } else {
                TallyVisibility::Public
            },
            anonymous,
        };
        send(&self.server, &self.key, Action::OpenPoll(definition))
    }

    fn audience(&self) -> Audience {
        if !self.districts.is_empty() {
            Audience::Districts {
                districts: self.districts.clone(),
            }
        } else if self.verified_only {
            Audience::Verified
        } else {
            Audience::Everyone
        }
    }

    /// The node's issuer keys for the audience (one per district, or one), and the co-issuer's.
    fn anonymity(&self) -> anyhow::Result<Option<Anonymity>> {
        if !self.anonymous {
            return Ok(None);
        }
        let client = Client::new(&self.server.server)?;
        let districts: Vec<Option<&str>> = if self.districts.is_empty() {
            vec![None]
        } else {
            self.districts
                .iter()
                .map(|district| Some(district.as_str()))
                .collect()
        };
        let mut issuer_keys = Vec::new();
        for district in districts {
            let path = match district {
                Some(district) => {
                    let escaped: String =
                        form_urlencoded::byte_serialize(district.as_bytes()).collect();
                    format!("/v1/issuer-keys?district={escaped}")
                }
                None => "/v1/issuer-keys".to_string(),
            };
            let answer = client.get(&path)?;
            issuer_keys.push(serde_json::from_value(answer["issuer_key"].clone())?);
        }
        let co_issuer_key = match &self.co_issuer_key {
            Some(hex) => Some(
                serde_json::from_value(serde_json::Value::String(hex.clone())).context(
                    "--co-issuer-key is not an issuer key (hex DER of a 2048-bit RSA key)",
                )?,
            ),
            None => None,
        };
        Ok(Some(Anonymity {
            issuer_keys,
            co_issuer_key,
        }))
    }
}

#[derive(clap::Args)]
struct CoIssuerCommand {
    /// The co-issuer's RSA key file (PKCS #8 PEM), created on first use; keep it off the node.
    #[arg(long, default_value = "co-issuer.key")]
    key: PathBuf,
    #[command(flatten)]
    server: ServerArgument,
    /// Address to listen on; port 0 picks a free one. The first line on stdout names it.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Print the public key (what a poll names as its co-issuer key) and exit.
    #[arg(long)]
    print_key: bool,
}

impl CoIssuerCommand {
    fn run(self) -> anyhow::Result<()> {
        let (co_issuer, created) =
            veche::co_issuer::CoIssuer::open(&self.key, &self.server.server)?;
        if created {
            tracing::info!(file = %self.key.display(), "created the co-issuer key");
        }
        if self.print_key {
            println!("{}", hex::encode(co_issuer.public_key().der()));
            return Ok(());
        }
        let co_issuer = Arc::new(co_issuer);
        spawn_follower(co_issuer.clone());
        let listener = TcpListener::bind(&self.listen)
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        println!("listening on {}", listener.local_addr()?);
        tracing::info!(address = %listener.local_addr()?, "the co-issuer is serving");
        veche::http::block_on(
            async move { veche::http::co_issuer::bind(co_issuer, listener)?.await },
        )?;
        Ok(())
    }
}

/// Follows the node's log once a second for as long as the process lives; a failed round is
/// logged and retried.
fn spawn_follower(co_issuer: Arc<veche::co_issuer::CoIssuer>) {
    std::thread::spawn(move || loop {
        match co_issuer.follow() {
            Ok(0) => {}
            Ok(entries) => tracing::info!(
                entries,
                size = co_issuer.followed_size(),
                "followed the log"
            ),
            Err(error) => tracing::warn!(%error, "following the log failed; will retry"),
        }
        std::thread::sleep(std::time::Duration::from_millis(
            projections::limits::CO_ISSUER_FOLLOW_INTERVAL_MS,
        ));
    });
}

#[derive(clap::Args)]
struct Vote {
    #[command(flatten)]
    key: KeyArgument,
    #[command(flatten)]
    server: ServerArgument,
    #[arg(long)]
    poll: u64,
    /// Option index, counted from zero; repeat for multiple choice.
    #[arg(long = "choice", required = true)]
    choices: Vec<u32>,
    /// The version of the poll's definition the choices index (`version` in
    /// `GET /v1/polls/{poll}`): the ballot is refused if a correction replaced it meanwhile.
    #[arg(long, conflicts_with = "anonymous")]
    poll_version: Option<u32>,
    /// The poll is anonymous: obtain its credentials first if the wallet beside the key has
    /// none (see `veche credentials`), then cast with the wallet's per-poll key.
    #[arg(long)]
    anonymous: bool,
    #[command(flatten)]
    co_issuer: CoIssuerArgument,
}

#[derive(clap::Args)]
struct CoIssuerArgument {
    /// Base URL of the poll's co-issuer, when it names one.
    #[arg(long = "co-issuer", env = "VECHE_CO_ISSUER")]
    url: Option<String>,
}

/// Obtain an anonymous poll's credentials now, to cast later (perhaps from elsewhere): casting
/// long after requesting keeps the two apart in time. Kept in `<key file>.wallet.json`; whoever
/// loses that file cannot vote again in the poll.
#[derive(clap::Args)]
struct Credentials {
    #[command(flatten)]
    key: KeyArgument,
    #[command(flatten)]
    server: ServerArgument,
    #[arg(long)]
    poll: u64,
    #[command(flatten)]
    co_issuer: CoIssuerArgument,
}

impl Credentials {
    fn run(self) -> anyhow::Result<()> {
        let secrets = obtain(&self.key, &self.server, &self.co_issuer, self.poll)?;
        println!(
            "credentials for poll {} are in {}; ballot key {}",
            self.poll,
            wallet_path(&self.key.key).display(),
            secrets.ballot_public_key()
        );
        Ok(())
    }
}

fn obtain(
    key: &KeyArgument,
    server: &ServerArgument,
    co_issuer: &CoIssuerArgument,
    poll: u64,
) -> anyhow::Result<veche_verifier::wallet::PollSecrets> {
    let signing = read_key_file(&key.key)?;
    let server = Client::new(&server.server)?;
    let co_issuer = co_issuer.url.as_deref().map(Client::new).transpose()?;
    let wallet = wallet_path(&key.key);
    Ok(veche_verifier::wallet::obtain_credentials(
        &server,
        co_issuer.as_ref(),
        &signing,
        poll,
        &wallet,
        SystemClock.now(),
        &OsEntropy,
    )?)
}

impl Vote {
    fn run(self) -> anyhow::Result<()> {
        if self.anonymous {
            return self.cast_anonymously();
        }
        let ballot = CastBallot {
            version: self.poll_version,
            poll: self.poll,
            choices: self.choices,
        };
        send(&self.server, &self.key, Action::CastBallot(ballot))
    }

    fn cast_anonymously(self) -> anyhow::Result<()> {
        let wallet = wallet_path(&self.key.key);
        let ready = veche_verifier::wallet::Wallet::read(&wallet)?
            .polls
            .get(&self.poll)
            .is_some_and(veche_verifier::wallet::PollSecrets::is_complete);
        obtain(&self.key, &self.server, &self.co_issuer, self.poll)?;
        if !ready {
            // The request and the ballot land seconds apart: the public log alone pairs them.
            eprintln!(
                "warning: the credentials were requested just now, so this ballot follows your \
                 request in the log within seconds and anyone can pair them; to keep the ballot \
                 unlinkable, run `veche credentials --poll {}` early and vote later",
                self.poll
            );
        }
        let server = Client::new(&self.server.server)?;
        let cast = veche_verifier::wallet::cast_anonymous_ballot(
            &server,
            &wallet,
            self.poll,
            self.choices,
            SystemClock.now(),
            &OsEntropy,
        );
        match cast {
            Ok(receipt) => {
                println!("{}", serde_json::to_string_pretty(&receipt)?);
                Ok(())
            }
            Err(veche_verifier::wallet::FlowError::Client(
                veche::client::ClientError::Refused { status, body },
            )) => {
                eprintln!("{}", serde_json::to_string_pretty(&body)?);
                bail!("the server refused the ballot ({status})")
            }
            Err(error) => Err(error.into()),
        }
    }
}

#[derive(clap::Args)]
struct Tally {
    #[command(flatten)]
    server: ServerArgument,
    #[arg(long)]
    poll: u64,
}

impl Tally {
    fn run(self) -> anyhow::Result<()> {
        let path = format!("/v1/polls/{}/tally", self.poll);
        let answer = Client::new(&self.server.server)?.get(&path)?;
        println!("{}", serde_json::to_string_pretty(&answer)?);
        Ok(())
    }
}

#[derive(clap::Args)]
struct Sign {
    #[command(flatten)]
    key: KeyArgument,
    /// Action name, e.g. cast_ballot.
    #[arg(long)]
    action: String,
    /// The action's body as JSON, e.g. '{"poll":3,"choices":[0]}'.
    #[arg(long, default_value = "{}")]
    body: String,
}

impl Sign {
    fn run(self) -> anyhow::Result<()> {
        let body: serde_json::Value =
            serde_json::from_str(&self.body).context("--body is not JSON")?;
        let action: Action =
            serde_json::from_value(serde_json::json!({ "action": self.action, "body": body }))
                .context("the action or its body is not valid")?;
        let key = read_key_file(&self.key.key)?;
        let envelope = signed_envelope(&key, action, SystemClock.now(), &OsEntropy);
        println!("{}", serde_json::to_string(&envelope)?);
        Ok(())
    }
}

fn public_key_argument(hex: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_hex(hex).context("a public key is 64 lowercase hexadecimal characters")
}

fn role_change(
    subject: &str,
    role: &str,
    department: Option<String>,
) -> anyhow::Result<RoleChange> {
    let subject = public_key_argument(subject)?;
    let role: Role = serde_json::from_value(serde_json::Value::String(role.to_string()))
        .with_context(|| {
            format!("unknown role {role:?}: use official, moderator, registrar or gateway")
        })?;
    Ok(RoleChange {
        subject,
        role,
        department,
    })
}

/// Signs `action` with the key file's key, issued now, and sends it; prints the receipt.
fn send(server: &ServerArgument, key: &KeyArgument, action: Action) -> anyhow::Result<()> {
    let key = read_key_file(&key.key)?;
    let path = endpoint_for(&action);
    let envelope = signed_envelope(&key, action, SystemClock.now(), &OsEntropy);
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

#[derive(clap::Args)]
struct Verify {
    #[command(flatten)]
    log: veche_verifier::cli::VerifyArguments,
    /// A server's own data directory (operators): replays `log.sqlite` offline.
    #[arg(long, conflicts_with_all = ["server", "export"])]
    data_dir: Option<PathBuf>,
}

impl Verify {
    fn run(self) -> anyhow::Result<()> {
        if self.log.server.is_some() || self.log.export.is_some() {
            return self.log.run();
        }
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("veche-data"));
        let path = data_dir.join(LOG_FILE);
        if !path.exists() {
            bail!("no log at {}", path.display());
        }
        let store = SqliteStore::open(&path)?;
        let total = store.size()?;
        let progress = cli::progress::Progress::new(Some(total), "entries");
        let ledger = &veche::node::verify_stored_log(&store, &|| progress.advance(1))
            .map_err(|error| anyhow::anyhow!("verification failed: {error}"))?;
        progress.finish();
        let hashed = veche::http::content::verify_stored_content(&store, ledger)
            .map_err(|error| anyhow::anyhow!("verification failed: {error}"))?;
        println!(
            "verified {total} entries: every hash link, signature and decision, the stored hash \
             tiles and the largest signed checkpoint hold; {hashed} pieces of content hash to \
             their commitments and every other was erased by an entry"
        );
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
}

/// Where a node's log lives, for `export` and `import`.
#[derive(clap::Args)]
struct StoreArguments {
    /// The data directory: its server key signs and checks the export, and its SQLite file is the
    /// store unless --store names another.
    #[arg(long, env = "VECHE_DATA_DIR", default_value = "veche-data")]
    data_dir: PathBuf,
    /// `sqlite` (the data directory's file) or a PostgreSQL URL.
    #[arg(long, env = "VECHE_STORE")]
    store: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

impl StoreArguments {
    fn open(&self) -> anyhow::Result<(DataDirectory, Arc<dyn EventStore>)> {
        let directory = DataDirectory::open_existing(&self.data_dir)?;
        let store = store_for(&directory, self.store.as_deref())?;
        Ok((directory, store))
    }

    fn report(&self, what: &str, moved: &veche::migration::Moved) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string(moved)?);
        } else {
            println!(
                "{what} {} entries ({} with content), root {}, in {:.1} s",
                moved.entries, moved.entries_with_content, moved.root, moved.seconds
            );
        }
        Ok(())
    }
}

fn terminal_progress() -> impl FnMut(u64, u64) {
    use std::io::IsTerminal;
    veche_verifier::cli::progress_bar(std::io::stderr().is_terminal())
}

#[derive(clap::Args)]
struct Export {
    #[command(flatten)]
    store: StoreArguments,
    /// The directory to write log.export and content.json into.
    #[arg(long)]
    out: PathBuf,
}

impl Export {
    fn run(self) -> anyhow::Result<()> {
        let (directory, store) = self.store.open()?;
        let moved = veche::migration::export(
            &*store,
            &directory.server_key,
            &self.out,
            &mut terminal_progress(),
        )?;
        self.store.report("exported", &moved)
    }
}

#[derive(clap::Args)]
struct Import {
    #[command(flatten)]
    store: StoreArguments,
    /// A directory written by `veche export`.
    #[arg(long)]
    from: PathBuf,
}

impl Import {
    fn run(self) -> anyhow::Result<()> {
        let (directory, store) = self.store.open()?;
        let (note, moved) = veche::migration::import(
            &*store,
            &directory.server_key,
            &self.from,
            &mut terminal_progress(),
        )?;
        let origin = note
            .lines()
            .next()
            .context("the export's checkpoint is empty")?;
        // The start-up replay every node runs: it writes the tiles and signs the checkpoint.
        let node = directory.start_node(store, Arc::new(SystemClock), origin)?;
        let checkpoint = node.tree().checkpoint().to_owned();
        node.shut_down();
        if checkpoint != note {
            bail!("the imported log's checkpoint differs from the export's:\n{checkpoint}\n{note}");
        }
        self.store.report("imported", &moved)
    }
}

#[derive(clap::Args)]
struct Backup {
    /// The running node's data directory.
    #[arg(long, env = "VECHE_DATA_DIR", default_value = "veche-data")]
    data_dir: PathBuf,
    /// A new directory for the copy; a data directory `veche serve` can start on.
    #[arg(long)]
    out: PathBuf,
}

impl Backup {
    fn run(self) -> anyhow::Result<()> {
        let copied = veche::migration::backup(&self.data_dir, &self.out)?;
        let store = SqliteStore::open(&self.out.join(LOG_FILE))?;
        let ledger = veche::node::verify_stored_log(&store, &|| {})
            .map_err(|error| anyhow::anyhow!("the copy does not verify: {error}"))?;
        println!(
            "backed up {} entries into {} ({} files); the copy verifies",
            ledger.size,
            self.out.display(),
            copied.len()
        );
        Ok(())
    }
}
