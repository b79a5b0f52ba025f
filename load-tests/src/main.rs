//! `veche-load`: registers many citizen keys, pre-signs one ballot per key, fires them at a
//! running veche server from a fixed pool of workers, and reports throughput, latency and
//! whether the server's tally agrees with the acknowledgements.
//!
//! Keys are deterministic from `--seed` (the official's key is the first one drawn, the citizens'
//! keys follow), so two runs with the same seed vote with the same citizens. Nonces come from the
//! operating system, so a rerun never replays a nonce.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use ed25519_dalek::SigningKey;
use projections::command::{
    Anonymity, Audience, CastBallot, CategoryDefinition, ChoiceKind, ComplaintFiling, Degrees,
    Location, ModerationDecision, PollDefinition, ProposalModeration, ProposalReference,
    ProposalSubmission, RegisterKey, Role, RoleChange, TallyVisibility,
};
use projections::protocol::public_key_of;
use projections::{Action, Timestamp};
use serde_json::{json, Value};
use veche::client::{endpoint_for, signed_envelope, ContentBook};

mod anonymous;

/// The content this harness committed to, attached to each envelope that names it.
static CONTENT: ContentBook = ContentBook::new();
use veche::clock::{Clock, SystemClock};
use veche::keys::{generate_key, read_key_file, OsEntropy, SeededEntropy};

/// Prefix of every problem type; reports show only the code after it.
const PROBLEM_PREFIX: &str = "urn:veche:problem:";
/// How long a signed command stays acceptable (mirrors the server's freshness window).
const FRESHNESS: Duration = Duration::from_millis(projections::limits::COMMAND_AGE_MS_MAX as u64);

#[derive(Parser)]
#[command(
    name = "veche-load",
    version,
    about = "Pre-signs ballots for N citizen keys and fires them at a running veche server"
)]
struct Args {
    /// Base URL of the running veche server (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The admin key file (the server data directory's `admin.key`), used to grant the
    /// official role to the key that opens the poll.
    #[arg(long)]
    admin_key: PathBuf,
    /// Citizen keys to register, and ballots to cast: one per key.
    #[arg(short = 'n', long = "ballots", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    ballots: u32,
    /// Worker tasks sending requests at once (each holds one keep-alive connection).
    #[arg(short = 'c', long, default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrency: u32,
    /// Seed of the deterministic key generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Options of the poll (each citizen picks one, derived from their key).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=4))]
    options: u32,
    /// Minutes the poll stays open.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=1440))]
    poll_minutes: i64,
    /// Department recorded in the official's role grant.
    #[arg(long, default_value = "Load testing")]
    department: String,
    /// Per-request timeout in seconds; a request that times out counts as failed.
    #[arg(long, default_value_t = 60)]
    timeout_seconds: u64,
    /// Print a machine-readable JSON summary instead of the table.
    #[arg(long)]
    json: bool,
    /// Offered ballots per second, spread evenly; 0 sends as fast as the workers can (open
    /// throttle). At a steady rate each latency counts from the ballot's scheduled time, so a
    /// server that falls behind is charged for the queue it causes.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Reader tasks polling the poll's tally while the ballots go in (reads under write load).
    #[arg(long, default_value_t = 0)]
    readers: u32,
    /// Subscribe to the poll's live tally stream and measure how long a ballot's effect takes to
    /// reach a subscriber after its acknowledgement.
    #[arg(long)]
    watch: bool,
    /// `ballots`: every citizen casts one ballot. `mixed`: citizen traffic in proportions like a
    /// city's busy day — 70 % ballots, 20 % supports of published proposals, 10 % complaints
    /// (add `--readers` for the reads).
    /// `anonymous`: the poll is anonymous; every citizen requests credentials, fetches and
    /// unblinds them, and casts with a fresh per-poll ballot key.
    #[arg(long, value_enum, default_value_t = Scenario::Ballots)]
    scenario: Scenario,
    /// In the anonymous scenario, the address of a running `veche co-issuer`: the poll names its
    /// key, and every ballot carries both credentials.
    #[arg(long)]
    co_issuer: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Ballots,
    Mixed,
    Anonymous,
}

/// Published proposals the mixed scenario's supports are spread over.
const MIXED_PROPOSALS: usize = 20;

/// One request ready to go: its URL, its serialized envelope, and the option it votes for.
struct Job {
    url: String,
    body: Vec<u8>,
    option: Option<usize>,
}

/// How one request ended.
enum Outcome {
    /// 201 Created: the command is durable in the log, at this position.
    Acknowledged(Option<u64>),
    /// A 4xx answer, by problem code.
    Rejected(String),
    /// A 5xx answer by problem code, an unexpected status, or a transport error.
    Failed(String),
}

struct Sample {
    outcome: Outcome,
    latency: Duration,
    option: Option<usize>,
    /// When the answer arrived.
    answered_at: Instant,
}

/// The measurements of one phase.
struct Phase {
    name: &'static str,
    offered: usize,
    acknowledged: usize,
    rejected: BTreeMap<String, usize>,
    failed: BTreeMap<String, usize>,
    elapsed: Duration,
    /// Latency of every request, whatever its outcome, in microseconds, sorted.
    latencies_us: Vec<u64>,
    /// Acknowledged ballots per option.
    acknowledged_by_option: Vec<u64>,
    /// Log position and answer time of every acknowledged command.
    acknowledgements: Vec<(u64, Instant)>,
}

impl Phase {
    fn of(name: &'static str, offered: usize, samples: Vec<Sample>, elapsed: Duration) -> Phase {
        let mut phase = Phase {
            name,
            offered,
            acknowledged: 0,
            rejected: BTreeMap::new(),
            failed: BTreeMap::new(),
            elapsed,
            latencies_us: Vec::with_capacity(samples.len()),
            acknowledged_by_option: Vec::new(),
            acknowledgements: Vec::new(),
        };
        for sample in samples {
            phase
                .latencies_us
                .push(u64::try_from(sample.latency.as_micros()).unwrap_or(u64::MAX));
            match sample.outcome {
                Outcome::Acknowledged(position) => {
                    phase.acknowledged += 1;
                    if let Some(position) = position {
                        phase.acknowledgements.push((position, sample.answered_at));
                    }
                    if let Some(option) = sample.option {
                        if phase.acknowledged_by_option.len() <= option {
                            phase.acknowledged_by_option.resize(option + 1, 0);
                        }
                        phase.acknowledged_by_option[option] += 1;
                    }
                }
                Outcome::Rejected(code) => *phase.rejected.entry(code).or_default() += 1,
                Outcome::Failed(code) => *phase.failed.entry(code).or_default() += 1,
            }
        }
        phase.latencies_us.sort_unstable();
        phase
    }

    fn rejected_total(&self) -> usize {
        self.rejected.values().sum()
    }

    fn failed_total(&self) -> usize {
        self.failed.values().sum()
    }

    fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.acknowledged as f64 / seconds
        } else {
            0.0
        }
    }

    /// Nearest-rank percentile in milliseconds.
    fn percentile_ms(&self, percent: f64) -> f64 {
        percentile_ms(&self.latencies_us, percent)
    }

    fn max_ms(&self) -> f64 {
        self.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0
    }

    fn to_json(&self) -> Value {
        json!({
            "offered": self.offered,
            "acknowledged": self.acknowledged,
            "rejected": { "total": self.rejected_total(), "by_type": self.rejected },
            "failed": { "total": self.failed_total(), "by_type": self.failed },
            "elapsed_seconds": round3(self.elapsed.as_secs_f64()),
            "throughput_acks_per_second": round3(self.throughput()),
            "latency_ms": {
                "p50": round3(self.percentile_ms(50.0)),
                "p90": round3(self.percentile_ms(90.0)),
                "p99": round3(self.percentile_ms(99.0)),
                "max": round3(self.max_ms()),
            },
        })
    }
}

/// Nearest-rank percentile of sorted microsecond latencies, in milliseconds.
fn percentile_ms(sorted_us: &[u64], percent: f64) -> f64 {
    let count = sorted_us.len();
    if count == 0 {
        return 0.0;
    }
    let rank = ((percent / 100.0) * count as f64).ceil() as usize;
    let index = rank.clamp(1, count) - 1;
    sorted_us[index] as f64 / 1000.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// What the server's tally says, next to what the acknowledgements predict.
struct TallyCheck {
    turnout: u64,
    counts: Vec<u64>,
    expected_turnout: u64,
    expected_counts: Vec<u64>,
}

impl TallyCheck {
    fn turnout_ok(&self) -> bool {
        self.turnout == self.expected_turnout
    }

    fn counts_ok(&self) -> bool {
        self.counts == self.expected_counts
    }

    fn ok(&self) -> bool {
        self.turnout_ok() && self.counts_ok()
    }
}

struct Setup {
    official: String,
    poll: u64,
    options: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let base = args.server.trim_end_matches('/').to_string();
    let count = usize::try_from(args.ballots)?;
    let concurrency = usize::try_from(args.concurrency)?;
    let options = usize::try_from(args.options)?;
    let admin = read_key_file(&args.admin_key)
        .with_context(|| format!("cannot read the admin key {}", args.admin_key.display()))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_seconds))
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .context("cannot build the HTTP client")?;

    progress(
        &args,
        format!("generating {} keys from seed {}", count + 1, args.seed),
    );
    let started = Instant::now();
    let entropy = SeededEntropy::new(args.seed);
    let official = generate_key(&entropy);
    let citizens: Vec<SigningKey> = (0..count).map(|_| generate_key(&entropy)).collect();
    let distinct: HashSet<[u8; 32]> = std::iter::once(&official)
        .chain(&citizens)
        .map(|key| key.verifying_key().to_bytes())
        .collect();
    if distinct.len() != count + 1 {
        bail!("the seeded generator produced a repeated key");
    }
    let keygen_time = started.elapsed();

    // Registration, measured like the ballots but signed and sent as its own phase.
    let registrations = presign(
        &citizens,
        |_| (Action::RegisterKey(RegisterKey {}), None),
        &base,
    )?;
    progress(
        &args,
        format!("registering {count} citizen keys at concurrency {concurrency}"),
    );
    let registration = fire(&http, registrations, concurrency, "registration", 0).await?;
    let already = registration
        .rejected
        .get("key-already-registered")
        .copied()
        .unwrap_or(0);
    if registration.acknowledged + already < count {
        progress(
            &args,
            format!(
                "warning: only {} of {count} keys are registered; the rest will be refused",
                registration.acknowledged + already
            ),
        );
    }

    let issuers = match args.scenario {
        Scenario::Anonymous => Some(
            anonymous::Issuers::fetch(&http, &base, args.co_issuer.as_deref())
                .await
                .context("reading the issuer keys")?,
        ),
        Scenario::Ballots | Scenario::Mixed => None,
    };
    let anonymity = issuers.as_ref().map(anonymous::Issuers::anonymity);
    let setup = set_up_poll(&http, &base, &admin, &official, &args, options, anonymity).await?;
    progress(
        &args,
        format!("poll {} is open with {} options", setup.poll, setup.options),
    );

    let proposals = if args.scenario == Scenario::Mixed {
        set_up_mixed(&http, &base, &admin, &official, &citizens).await?
    } else {
        Vec::new()
    };

    let (issuance, ballots, presign_time) = match &issuers {
        Some(issuers) => {
            progress(
                &args,
                format!("requesting and unblinding {count} citizens' credentials"),
            );
            let issuance = anonymous::issue(
                &http,
                &base,
                issuers,
                &citizens,
                setup.poll,
                setup.options,
                concurrency,
            )
            .await?;
            let presign_time = issuance.presign;
            let measured = (
                issuance.phases,
                issuance.blinding,
                issuance.credential_verifications_per_second,
            );
            (Some(measured), issuance.ballots, presign_time)
        }
        None => {
            // Pre-sign every command right before the timer starts: commands go stale after
            // five minutes.
            let started = Instant::now();
            let ballots = ballot_jobs(&args, &setup, &proposals, &citizens, &base)?;
            (None, ballots, started.elapsed())
        }
    };
    let ballot_bytes = anonymous::mean_body_bytes(&ballots);
    let poll = setup.poll;
    progress(
        &args,
        format!(
            "pre-signed {} ballots in {:.2} s; firing at concurrency {concurrency}",
            ballots.len(),
            presign_time.as_secs_f64()
        ),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..args.readers)
        .map(|_| tokio::spawn(read_tally(http.clone(), base.clone(), poll, stop.clone())))
        .collect();
    let watcher = args
        .watch
        .then(|| tokio::spawn(watch_tally(http.clone(), base.clone(), poll, stop.clone())));
    let cpu_before = ServerProcess::read(&http, &base).await?;
    let voting = fire(&http, ballots, concurrency, "ballots", args.rate).await?;
    let cpu_after = ServerProcess::read(&http, &base).await?;
    // Give the live stream a moment to deliver the last ballots' effect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut read_latencies_us = Vec::new();
    for reader in readers {
        read_latencies_us.extend(reader.await.context("a reader task failed")?);
    }
    read_latencies_us.sort_unstable();
    let live_latencies_us = match watcher {
        Some(watcher) => Some(live_latencies(
            &voting,
            &watcher.await.context("the live-stream task failed")?,
        )),
        None => None,
    };
    let verify_rate = single_core_verify_rate();
    let cpu = CpuPerCommand::of(&cpu_before, &cpu_after, voting.acknowledged, verify_rate);
    if presign_time + voting.elapsed > FRESHNESS {
        progress(
            &args,
            "warning: the run outlasted the five-minute freshness window; late ballots were stale"
                .into(),
        );
    }

    let tally = check_tally(&http, &base, &setup, &voting).await?;
    if args.json {
        let summary = json!({
            "server": base,
            "seed": args.seed,
            "keys": count,
            "concurrency": concurrency,
            "official": setup.official,
            "poll": setup.poll,
            "options": setup.options,
            "keygen_seconds": round3(keygen_time.as_secs_f64()),
            "presign_seconds": round3(presign_time.as_secs_f64()),
            "registration": registration.to_json(),
            "issuance": issuance.as_ref().map(|(phases, blinding, credential_rate)| json!({
                "blinding_seconds": round3(blinding.as_secs_f64()),
                "single_core_credential_verifications_per_second": round3(*credential_rate),
                "phases": phases
                    .iter()
                    .map(|phase| (phase.name.to_string(), phase.to_json()))
                    .collect::<serde_json::Map<String, Value>>(),
            })),
            "ballots": voting.to_json(),
            "ballot_envelope_bytes_mean": round3(ballot_bytes),
            "offered_rate_per_second": args.rate,
            "single_core_strict_verifications_per_second": round3(verify_rate),
            "acks_per_single_core_verification_rate": round3(voting.throughput() / verify_rate),
            "server_cpu_seconds": round3(cpu.seconds),
            "server_cpu_microseconds_per_command": round3(cpu.microseconds_per_command),
            "strict_verify_microseconds": round3(1e6 / verify_rate),
            "server_cpu_per_command_per_strict_verify": round3(cpu.ratio),
            "server_cpu_split_per_command_per_strict_verify": cpu.split_ratios,
            "server_resident_memory_bytes": cpu_after.resident_bytes,
            "server_resident_memory_peak_bytes": cpu_after.peak_bytes,
            "tally_reads": latency_json(&read_latencies_us),
            "live_stream_delay": live_latencies_us.as_deref().map(latency_json),
            "tally": {
                "turnout": tally.turnout,
                "counts": tally.counts,
                "expected_turnout": tally.expected_turnout,
                "expected_counts": tally.expected_counts,
                "result": if tally.ok() { "OK" } else { "MISMATCH" },
            },
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let mut phases = vec![&registration];
        if let Some((issuance, blinding, credential_rate)) = &issuance {
            println!(
                "blinding {count} credential messages: {:.2} s (outside the timed window); one \
                 core verifies {credential_rate:.0} credentials/s",
                blinding.as_secs_f64()
            );
            phases.extend(issuance);
        }
        phases.push(&voting);
        print_table(&args, &base, &setup, keygen_time, presign_time, &phases);
        println!("a ballot's signed envelope is {ballot_bytes:.0} bytes on average");
        print_tally(&tally);
        println!(
            "this machine verifies {verify_rate:.0} Ed25519 signatures/s on one core (strict); \
             the ballots went in at {:.3} × that rate",
            voting.throughput() / verify_rate
        );
        println!(
            "the server spent {:.2} CPU seconds on them: {:.1} µs per acknowledged command, {:.2} × \
             one strict verification ({:.1} µs); resident memory {:.0} MiB (peak {:.0} MiB)",
            cpu.seconds,
            cpu.microseconds_per_command,
            cpu.ratio,
            1e6 / verify_rate,
            cpu_after.resident_bytes as f64 / 1_048_576.0,
            cpu_after.peak_bytes as f64 / 1_048_576.0
        );
        if !cpu.split_ratios.is_empty() {
            let parts: Vec<String> = cpu
                .split_ratios
                .iter()
                .map(|(name, ratio)| format!("{name} {ratio:.3}"))
                .collect();
            println!(
                "the server's CPU per command by mode and thread group, × one strict \
                 verification: {}",
                parts.join(", ")
            );
        }
        if !read_latencies_us.is_empty() {
            println!(
                "tally reads under the write load: {} reads, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                read_latencies_us.len(),
                percentile_ms(&read_latencies_us, 50.0),
                percentile_ms(&read_latencies_us, 99.0),
                percentile_ms(&read_latencies_us, 100.0)
            );
        }
        if let Some(delays) = &live_latencies_us {
            println!(
                "live stream: a ballot's effect reached the subscriber {:.2} ms (p50), {:.2} ms (p99), \
                 {:.2} ms (max) after its acknowledgement ({} ballots)",
                percentile_ms(delays, 50.0),
                percentile_ms(delays, 99.0),
                percentile_ms(delays, 100.0),
                delays.len()
            );
        }
    }
    Ok(if tally.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One command per citizen: a ballot, or in the mixed scenario by the key's second byte a
/// support (20 %) or a complaint (10 %).
fn ballot_jobs(
    args: &Args,
    setup: &Setup,
    proposals: &[u64],
    citizens: &[SigningKey],
    base: &str,
) -> anyhow::Result<Vec<Job>> {
    let poll = setup.poll;
    presign(
        citizens,
        |key| {
            let byte = usize::from(key.verifying_key().to_bytes()[1]);
            let share = byte * 100 / 256;
            if args.scenario == Scenario::Mixed && share >= 70 && !proposals.is_empty() {
                if share < 90 {
                    let proposal = proposals[byte % proposals.len()];
                    return (
                        Action::SupportProposal(ProposalReference { proposal }),
                        None,
                    );
                }
                return (complaint_filing(byte), None);
            }
            let option = choice_of(key, setup.options);
            let choice = u32::try_from(option).unwrap_or(0);
            (
                Action::CastBallot(CastBallot {
                    version: None,
                    poll,
                    choices: vec![choice],
                }),
                Some(option),
            )
        },
        base,
    )
}

/// The server's own process figures from its `/metrics` (the Prometheus process collector's names).
struct ServerProcess {
    cpu_seconds: f64,
    resident_bytes: u64,
    peak_bytes: u64,
    /// CPU seconds by mode (`user`, `system`) and by thread group and mode (`writer.system`),
    /// from the server's own series; empty from a server that does not publish them.
    split: std::collections::BTreeMap<String, f64>,
}

impl ServerProcess {
    async fn read(http: &reqwest::Client, base: &str) -> anyhow::Result<ServerProcess> {
        let url = format!("{base}/metrics");
        let text = http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("cannot read {url}"))?
            .text()
            .await
            .with_context(|| format!("cannot read {url}"))?;
        let series = |name: &str| -> anyhow::Result<f64> {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|value| value.trim().parse().ok())
                .with_context(|| format!("{url} has no {name}"))
        };
        Ok(ServerProcess {
            cpu_seconds: series("process_cpu_seconds_total")?,
            resident_bytes: series("process_resident_memory_bytes")? as u64,
            peak_bytes: series("veche_process_resident_memory_peak_bytes")? as u64,
            split: cpu_split(&text),
        })
    }
}

/// The labelled CPU series of an exposition, named by their label values joined with dots:
/// `veche_process_cpu_mode_seconds_total{mode="user"}` is `user`, and
/// `veche_thread_cpu_seconds_total{group="writer",mode="system"}` is `writer.system`.
fn cpu_split(text: &str) -> std::collections::BTreeMap<String, f64> {
    let prefixes = [
        "veche_process_cpu_mode_seconds_total{",
        "veche_thread_cpu_seconds_total{",
    ];
    let mut split = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = prefixes.iter().find_map(|prefix| line.strip_prefix(prefix)) else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let name: Vec<&str> = labels
            .split(',')
            .filter_map(|label| {
                label
                    .split_once('=')
                    .map(|(_, value)| value.trim_matches('"'))
            })
            .collect();
        if let Ok(value) = value.trim().parse::<f64>() {
            split.insert(name.join("."), value);
        }
    }
    split
}

/// The server's CPU over the timed phase, per acknowledged command and as a multiple of one
/// strict signature verification on this machine.
struct CpuPerCommand {
    seconds: f64,
    microseconds_per_command: f64,
    ratio: f64,
    /// Each part of the split (see [`cpu_split`]) per acknowledged command, as a multiple of
    /// one strict verification.
    split_ratios: std::collections::BTreeMap<String, f64>,
}

impl CpuPerCommand {
    fn of(
        before: &ServerProcess,
        after: &ServerProcess,
        acknowledged: usize,
        verify_rate: f64,
    ) -> CpuPerCommand {
        let per_verification = |seconds: f64| seconds * verify_rate / acknowledged.max(1) as f64;
        let seconds = after.cpu_seconds - before.cpu_seconds;
        let microseconds_per_command = seconds * 1e6 / acknowledged.max(1) as f64;
        let split_ratios = after
            .split
            .iter()
            .map(|(name, &then)| {
                // A thread group absent before (a thread started since) counts from zero.
                let spent = then - before.split.get(name).copied().unwrap_or(0.0);
                (name.clone(), round3(per_verification(spent)))
            })
            .collect();
        CpuPerCommand {
            seconds,
            microseconds_per_command,
            ratio: per_verification(seconds),
            split_ratios,
        }
    }
}

/// A line of progress on stderr, so `--json` output on stdout stays clean.
fn progress(args: &Args, line: String) {
    if !args.json || std::env::var_os("VECHE_LOAD_VERBOSE").is_some() {
        eprintln!("veche-load: {line}");
    }
}

/// The option a citizen votes for: derived from their key, so runs are reproducible.
fn choice_of(key: &SigningKey, options: usize) -> usize {
    usize::from(key.verifying_key().to_bytes()[0]) % options.max(1)
}

/// Signs one command per key, spread over the machine's cores, keeping the keys' order.
fn presign<F>(keys: &[SigningKey], make: F, base: &str) -> anyhow::Result<Vec<Job>>
where
    F: Fn(&SigningKey) -> (Action, Option<usize>) + Sync,
{
    let issued_at = SystemClock.now();
    on_every_core(keys, |key| {
        let (action, option) = make(key);
        let url = format!("{base}{}", endpoint_for(&action));
        let envelope = CONTENT.attach(signed_envelope(key, action, issued_at, &OsEntropy));
        Ok(Job {
            url,
            body: serde_json::to_vec(&envelope)?,
            option,
        })
    })
}

/// `work` over every item, the items split in one chunk per core; the results in item order.
fn on_every_core<I, T, F>(items: &[I], work: F) -> anyhow::Result<Vec<T>>
where
    I: Sync,
    T: Send,
    F: Fn(&I) -> anyhow::Result<T> + Sync,
{
    let threads = std::thread::available_parallelism()
        .map(|count| count.get())
        .unwrap_or(1);
    let chunk = items.len().div_ceil(threads).max(1);
    let work = &work;
    let parts: Vec<anyhow::Result<Vec<T>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|slice| scope.spawn(move || slice.iter().map(work).collect()))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked")))
            })
            .collect()
    });
    let mut results = Vec::with_capacity(items.len());
    for part in parts {
        results.extend(part?);
    }
    Ok(results)
}

/// Sends every job from `concurrency` workers pulling from one shared queue; the clock runs from
/// the first send to the last answer.
async fn fire(
    http: &reqwest::Client,
    jobs: Vec<Job>,
    concurrency: usize,
    name: &'static str,
    rate: u32,
) -> anyhow::Result<Phase> {
    let offered = jobs.len();
    let queue = Arc::new(Mutex::new(jobs.into_iter().enumerate()));
    let started = Instant::now();
    let interval = (rate > 0).then(|| Duration::from_secs(1) / rate);
    let workers: Vec<_> = (0..concurrency.min(offered).max(1))
        .map(|_| {
            let queue = queue.clone();
            let http = http.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while let Some((index, job)) = next_job(&queue) {
                    // At a steady rate, job i is due at start + i × interval; latency counts
                    // from then, not from when a free worker got to it.
                    let sent = match interval {
                        Some(interval) => {
                            let due = started + interval * u32::try_from(index).unwrap_or(u32::MAX);
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                        None => Instant::now(),
                    };
                    let outcome = send(&http, job.url, job.body).await;
                    let answered_at = Instant::now();
                    samples.push(Sample {
                        outcome,
                        latency: answered_at - sent,
                        option: job.option,
                        answered_at,
                    });
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(offered);
    for worker in workers {
        samples.extend(worker.await.context("a worker task failed")?);
    }
    let elapsed = started.elapsed();
    Ok(Phase::of(name, offered, samples, elapsed))
}

type JobQueue = Mutex<std::iter::Enumerate<std::vec::IntoIter<Job>>>;

fn next_job(queue: &JobQueue) -> Option<(usize, Job)> {
    match queue.lock() {
        Ok(mut jobs) => jobs.next(),
        Err(poisoned) => poisoned.into_inner().next(),
    }
}

/// One POST, read to the end of the answer.
async fn send(http: &reqwest::Client, url: String, body: Vec<u8>) -> Outcome {
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(error) => return Outcome::Failed(transport_kind(&error)),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(error) => return Outcome::Failed(transport_kind(&error)),
    };
    if status == reqwest::StatusCode::CREATED {
        return Outcome::Acknowledged(receipt_position(&body));
    }
    let code = problem_code(&body).unwrap_or_else(|| format!("http-{}", status.as_u16()));
    if status.is_client_error() {
        Outcome::Rejected(code)
    } else {
        Outcome::Failed(code)
    }
}

/// The `position` of a receipt, read without parsing the whole document (receipts carry proofs).
fn receipt_position(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"position\":";
    let start = body.windows(KEY.len()).position(|window| window == KEY)? + KEY.len();
    let digits: Vec<u8> = body[start..]
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn transport_kind(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else if error.is_request() {
        "request"
    } else {
        "other"
    };
    format!("transport-{kind}")
}

/// The code of an RFC 9457 problem document's `type`, without the `urn:veche:problem:` prefix.
fn problem_code(body: &[u8]) -> Option<String> {
    let problem: Value = serde_json::from_slice(body).ok()?;
    problem_code_of(&problem)
}

/// The stable code of a problem document already parsed.
fn problem_code_of(problem: &Value) -> Option<String> {
    let kind = problem.get("type")?.as_str()?;
    Some(
        kind.strip_prefix(PROBLEM_PREFIX)
            .unwrap_or(kind)
            .to_string(),
    )
}

/// Sends one signed command and returns the receipt; a refusal whose code is in `tolerated`
/// (e.g. the key being registered by an earlier run) returns `None`.
/// Sends `request` to `url` and reads the answer's status and JSON body (`null` when the body is
/// not JSON, as a proxy's error page would be).
async fn answer_of(
    request: reqwest::RequestBuilder,
    url: &str,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn post_one(
    http: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    action: Action,
    tolerated: &[&str],
) -> anyhow::Result<Option<Value>> {
    let name = action.name();
    let url = format!("{base}{}", endpoint_for(&action));
    let envelope = CONTENT.attach(signed_envelope(key, action, SystemClock.now(), &OsEntropy));
    let (status, body) = answer_of(http.post(&url).json(&envelope), &url).await?;
    if status.is_success() {
        return Ok(Some(body));
    }
    let code = body
        .get("type")
        .and_then(Value::as_str)
        .map(|kind| kind.strip_prefix(PROBLEM_PREFIX).unwrap_or(kind))
        .unwrap_or("");
    if tolerated.contains(&code) {
        return Ok(None);
    }
    bail!("{name} was refused with {status}: {body}")
}

/// The mixed scenario's set-up: a category, the official as moderator, and proposals submitted
/// by the first citizens and published. Returns the published proposals' ids.
async fn set_up_mixed(
    http: &reqwest::Client,
    base: &str,
    admin: &SigningKey,
    official: &SigningKey,
    citizens: &[SigningKey],
) -> anyhow::Result<Vec<u64>> {
    let category = Action::DefineCategory(CategoryDefinition {
        id: "load-testing".into(),
        name: "Load testing".into(),
        department: "Load testing".into(),
        sla_working_days: 8,
        confirmation_window_days: 7,
        support_threshold: 10_000_000,
        proposal_lifetime_days: 30,
        supports_from_residents_only: false,
    });
    post_one(http, base, admin, category, &[]).await?;
    let grant = Action::GrantRole(RoleChange {
        subject: public_key_of(official),
        role: Role::Moderator,
        department: None,
    });
    post_one(http, base, admin, grant, &["role-already-held"]).await?;
    let mut proposals = Vec::new();
    for (index, author) in citizens.iter().take(MIXED_PROPOSALS).enumerate() {
        let submission = Action::SubmitProposal(ProposalSubmission {
            title: CONTENT.commit(&format!("Proposal {index}"), &OsEntropy),
            body: CONTENT.commit("More benches along the river.", &OsEntropy),
            category: "load-testing".into(),
            district: None,
        });
        let Some(receipt) = post_one(http, base, author, submission, &[]).await? else {
            continue;
        };
        let proposal = receipt["position"]
            .as_u64()
            .context("a receipt without position")?;
        let publish = Action::ModerateProposal(ProposalModeration {
            proposal,
            decision: ModerationDecision::Publish,
        });
        post_one(http, base, official, publish, &[]).await?;
        proposals.push(proposal);
    }
    Ok(proposals)
}

/// A complaint as a citizen files it from the street.
fn complaint_filing(byte: usize) -> Action {
    Action::FileComplaint(ComplaintFiling {
        category: "load-testing".into(),
        description: CONTENT.commit(
            "The streetlight outside the school has been dark for a week.",
            &OsEntropy,
        ),
        location: Location {
            // On the public 0.001-degree grid: a division of whole thousandths lands on it.
            latitude: Degrees((55_750 + (byte % 1_000) as i64) as f64 / 1_000.0),
            longitude: Degrees(37.61),
            address: CONTENT.commit("12 School Lane", &OsEntropy),
            district: "Centre".into(),
        },
        attachments: vec![],
        through_gateway: false,
    })
}

/// Registers the official, has the admin grant them the official role, and opens the poll.
async fn set_up_poll(
    http: &reqwest::Client,
    base: &str,
    admin: &SigningKey,
    official: &SigningKey,
    args: &Args,
    options: usize,
    anonymous: Option<Anonymity>,
) -> anyhow::Result<Setup> {
    let official_public = public_key_of(official);
    post_one(
        http,
        base,
        official,
        Action::RegisterKey(RegisterKey {}),
        &["key-already-registered"],
    )
    .await
    .context("registering the official's key")?;
    post_one(
        http,
        base,
        admin,
        Action::GrantRole(RoleChange {
            subject: official_public,
            role: Role::Official,
            department: Some(args.department.clone()),
        }),
        &["role-already-held"],
    )
    .await
    .context("granting the official role (is --admin-key this server's admin key?)")?;
    let now = SystemClock.now();
    let names = ["Yes", "No", "Abstain", "Postpone"];
    let definition = PollDefinition {
        title: format!("Load test, seed {}, {} ballots", args.seed, args.ballots),
        description: "Opened by veche-load.".into(),
        options: names
            .iter()
            .take(options)
            .map(|name| name.to_string())
            .collect(),
        choice_kind: ChoiceKind::SingleChoice,
        max_choices: 1,
        audience: Audience::Everyone,
        opens_at: now,
        closes_at: Timestamp(
            now.0
                .saturating_add(args.poll_minutes.saturating_mul(60_000)),
        ),
        vote_changes_allowed: false,
        tally_visibility: TallyVisibility::Public,
        anonymous,
    };
    let receipt = post_one(http, base, official, Action::OpenPoll(definition), &[])
        .await
        .context("opening the poll")?
        .context("the poll was not opened")?;
    let poll = receipt
        .get("position")
        .and_then(Value::as_u64)
        .with_context(|| format!("the open_poll receipt has no position: {receipt}"))?;
    Ok(Setup {
        official: official_public.to_string(),
        poll,
        options,
    })
}

async fn check_tally(
    http: &reqwest::Client,
    base: &str,
    setup: &Setup,
    voting: &Phase,
) -> anyhow::Result<TallyCheck> {
    let url = format!("{base}/v1/polls/{}/tally", setup.poll);
    let (status, tally) = answer_of(http.get(&url), &url).await?;
    if !status.is_success() {
        bail!("GET {url} answered {status}: {tally}");
    }
    let turnout = tally
        .get("turnout")
        .and_then(Value::as_u64)
        .with_context(|| format!("the tally has no turnout: {tally}"))?;
    let counts = tally
        .get("counts")
        .and_then(Value::as_array)
        .with_context(|| format!("the tally has no counts: {tally}"))?
        .iter()
        .map(|count| count.as_u64().context("a count is not a number"))
        .collect::<anyhow::Result<Vec<u64>>>()?;
    let mut expected_counts = voting.acknowledged_by_option.clone();
    expected_counts.resize(setup.options.max(expected_counts.len()), 0);
    Ok(TallyCheck {
        turnout,
        counts,
        // Only ballots carry an option; in the mixed scenario the other commands do not vote.
        expected_turnout: expected_counts.iter().sum(),
        expected_counts,
    })
}

fn print_table(
    args: &Args,
    base: &str,
    setup: &Setup,
    keygen: Duration,
    presign: Duration,
    phases: &[&Phase],
) {
    println!(
        "veche-load against {base}: {} keys, concurrency {}, seed {}",
        args.ballots, args.concurrency, args.seed
    );
    println!(
        "poll {} ({} options), official {}",
        setup.poll, setup.options, setup.official
    );
    println!(
        "key generation {:.2} s, ballot pre-signing {:.2} s (both outside the timed window)",
        keygen.as_secs_f64(),
        presign.as_secs_f64()
    );
    println!();
    println!(
        "{:<13} {:>8} {:>8} {:>8} {:>7} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9}",
        "phase",
        "offered",
        "acked",
        "rejected",
        "failed",
        "elapsed s",
        "acks/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms"
    );
    for phase in phases {
        println!(
            "{:<13} {:>8} {:>8} {:>8} {:>7} {:>9.2} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>9.2}",
            phase.name,
            phase.offered,
            phase.acknowledged,
            phase.rejected_total(),
            phase.failed_total(),
            phase.elapsed.as_secs_f64(),
            phase.throughput(),
            phase.percentile_ms(50.0),
            phase.percentile_ms(90.0),
            phase.percentile_ms(99.0),
            phase.max_ms()
        );
    }
    let mut header = false;
    for phase in phases {
        for (verdict, counts) in [("rejected", &phase.rejected), ("failed", &phase.failed)] {
            for (code, count) in counts {
                if !header {
                    println!();
                    println!(
                        "{:<13} {:<9} {:<28} {:>8}",
                        "phase", "outcome", "problem type", "count"
                    );
                    header = true;
                }
                println!(
                    "{:<13} {:<9} {:<28} {:>8}",
                    phase.name, verdict, code, count
                );
            }
        }
    }
    println!();
}

fn print_tally(tally: &TallyCheck) {
    println!(
        "tally: turnout {} (acknowledged {}), counts {:?} (expected {:?})",
        tally.turnout, tally.expected_turnout, tally.counts, tally.expected_counts
    );
    if tally.ok() {
        println!("OK");
    } else {
        if tally.turnout > tally.expected_turnout {
            println!(
                "note: a request that failed on the client side (e.g. a timeout) may still have \
                 been committed by the server"
            );
        }
        println!(
            "MISMATCH: turnout {}, counts {}",
            if tally.turnout_ok() {
                "agree"
            } else {
                "differ"
            },
            if tally.counts_ok() { "agree" } else { "differ" }
        );
    }
}

fn latency_json(sorted_us: &[u64]) -> Value {
    json!({
        "count": sorted_us.len(),
        "p50_ms": round3(percentile_ms(sorted_us, 50.0)),
        "p99_ms": round3(percentile_ms(sorted_us, 99.0)),
        "max_ms": round3(percentile_ms(sorted_us, 100.0)),
    })
}

/// Reads the tally in a loop until told to stop; returns each read's latency in microseconds.
async fn read_tally(
    http: reqwest::Client,
    base: String,
    poll: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<u64> {
    let url = format!("{base}/v1/polls/{poll}/tally");
    let mut latencies = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let started = Instant::now();
        let ok = match http.get(&url).send().await {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            latencies.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
    }
    latencies
}

/// Follows the poll's live tally stream; returns each event's id (the log size it reflects)
/// with its arrival time.
async fn watch_tally(
    http: reqwest::Client,
    base: String,
    poll: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(u64, Instant)> {
    let mut events = Vec::new();
    let url = format!("{base}/v1/polls/{poll}/tally/stream");
    let Ok(mut response) = http
        .get(&url)
        .timeout(Duration::from_secs(3600))
        .send()
        .await
    else {
        return events;
    };
    let mut pending = String::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let chunk = match tokio::time::timeout(Duration::from_millis(200), response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(_) => break,
            Err(_) => continue,
        };
        let arrived = Instant::now();
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if let Some(id) = line.trim_end().strip_prefix("id:") {
                if let Ok(id) = id.trim().parse() {
                    events.push((id, arrived));
                }
            }
        }
    }
    events
}

/// For each acknowledged ballot, the time from its acknowledgement to the first live event that
/// reflects it (an event whose log size is beyond the ballot's position), in microseconds.
fn live_latencies(voting: &Phase, events: &[(u64, Instant)]) -> Vec<u64> {
    let mut delays: Vec<u64> = voting
        .acknowledgements
        .iter()
        .filter_map(|(position, acknowledged)| {
            let first = events.partition_point(|(size, _)| *size <= *position);
            let (_, arrived) = events.get(first)?;
            Some(
                u64::try_from(arrived.saturating_duration_since(*acknowledged).as_micros())
                    .unwrap_or(u64::MAX),
            )
        })
        .collect();
    delays.sort_unstable();
    delays
}

/// Strict Ed25519 verifications per second on one core of this machine: the yardstick the
/// ballot rate is compared with, so figures compare across machines.
fn single_core_verify_rate() -> f64 {
    use ed25519_dalek::{Signer, Verifier};
    let key = generate_key(&SeededEntropy::new(99));
    let message = [7u8; 300];
    let signature = key.sign(&message);
    let verifying = key.verifying_key();
    let rounds = 3_000u32;
    let started = Instant::now();
    for _ in 0..rounds {
        let _ = verifying.verify_strict(std::hint::black_box(&message), &signature);
    }
    let _ = verifying.verify(&message, &signature);
    f64::from(rounds) / started.elapsed().as_secs_f64().max(1e-9)
}
