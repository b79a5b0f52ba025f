//! `veche verify` on the command line: arguments, progress, the report. Shared by the
//! `veche-verify` binary and the server binary's `veche verify` subcommand.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::published::fetch_published;
use crate::served_content::{check_content_bundle, check_served_content};
use crate::verification::{
    hash_from_base64, hash_tiles_of, verify_export, Options, Published, Report, SavedState,
    VerifyError,
};

/// Check a log trusting only its public key: from a server (its export plus the numbers it
/// publishes) or from an export file. Exits non-zero and names the first bad position when
/// anything does not hold.
#[derive(clap::Args, Debug)]
pub struct VerifyArguments {
    /// Base URL of a veche server: downloads `/v1/log/export` and diffs every published tally,
    /// every proposal's standing and the complaint statistics against the recount.
    #[arg(long, conflicts_with = "export")]
    pub server: Option<String>,
    /// An export file saved from `/v1/log/export`.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// A content bundle saved with --save-content: checked against the export's commitments and
    /// erasures. Without it, an export is checked without its content.
    #[arg(long, requires = "export")]
    pub content: Option<PathBuf>,
    /// With --server, where to save the content it serves as a bundle for --content.
    #[arg(long, requires = "server")]
    pub save_content: Option<PathBuf>,
    /// The log's verifier key (C2SP vkey, `<origin>+<key id>+<key>`), obtained from a source
    /// you trust; required with --server and --export.
    #[arg(long, env = "VECHE_LOG_KEY")]
    pub log_key: Option<String>,
    /// A state saved by an earlier run (--save-checkpoint) or a bare signed checkpoint note:
    /// the log must extend it.
    #[arg(long)]
    pub previous_checkpoint: Option<PathBuf>,
    /// Where to save this run's checkpoint and leaf hashes for the next run.
    #[arg(long)]
    pub save_checkpoint: Option<PathBuf>,
    /// Verify each signature on its own instead of in batches (slower; see docs/VERIFYING.md).
    #[arg(long)]
    pub strict_signatures: bool,
    /// Threads for checking entries (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print a machine-readable summary on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

type Input = Box<dyn Read + Send>;

impl VerifyArguments {
    /// Runs the check and prints its report; an error when the log does not verify.
    pub fn run(&self) -> anyhow::Result<()> {
        let options = self.options()?;
        let client = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .context("building the HTTP client")?;
        let (published, mut input) = self.input(&client)?;
        let show_progress = std::io::stderr().is_terminal() && !self.json;
        let mut progress = progress_bar(show_progress);
        let mut report = verify_export(&mut input, &options, &published, &mut progress);
        if show_progress {
            eprintln!();
        }
        // With a server and an earlier checkpoint, also check the server's own consistency proof.
        if let (true, Some(server), Some(previous), Some(size)) =
            (report.ok, &self.server, &options.previous, report.tree_size)
        {
            if let Err(error) = check_served_consistency(&client, server, previous, size, &report) {
                report.ok = false;
                report.failure = Some(error.into());
            }
        }
        // With a server, its hash tiles must be the ones the entries give.
        if let (true, Some(server), Some(state)) = (report.ok, &self.server, &report.state) {
            if let Err(error) = check_served_tiles(&client, server, &state.leaf_hashes) {
                report.ok = false;
                report.failure = Some(error.into());
            }
        }
        // The content kept beside the log must be the signed one, or erased by an entry.
        if let (true, Some(size)) = (report.ok, report.tree_size) {
            if let Err(error) = self.check_content(&client, &report, size)? {
                report.ok = false;
                report.failure = Some(error.into());
            }
        }
        if let (true, Some(path), Some(state)) = (report.ok, &self.save_checkpoint, &report.state) {
            std::fs::write(path, state.encode())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        self.print(&report)?;
        match &report.failure {
            Some(failure) => bail!("verification failed at {failure}"),
            None => Ok(()),
        }
    }

    /// Checks the server's content, or the content bundle given with an export; saves what the
    /// server served as a bundle when asked. The outer error is a file that cannot be used.
    fn check_content(
        &self,
        client: &reqwest::blocking::Client,
        report: &Report,
        size: u64,
    ) -> anyhow::Result<Result<(), VerifyError>> {
        if let Some(server) = &self.server {
            let keep = self.save_content.is_some();
            let (_, entries) =
                match check_served_content(client, server, &report.committed, size, keep) {
                    Ok(checked) => checked,
                    Err(error) => return Ok(Err(error)),
                };
            if let Some(path) = &self.save_content {
                let bundle = serde_json::json!({ "entries": entries });
                std::fs::write(path, serde_json::to_vec(&bundle)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        } else if let Some(path) = &self.content {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let bundle: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a content bundle", path.display()))?;
            if let Err(error) = check_content_bundle(&bundle, &report.committed, size) {
                return Ok(Err(error));
            }
        }
        Ok(Ok(()))
    }

    fn options(&self) -> anyhow::Result<Options> {
        let log_key = self
            .log_key
            .as_deref()
            .context("--log-key is required with --server and --export")?;
        let verifier = projections::checkpoint::NoteVerifier::parse(log_key)
            .map_err(|error| anyhow::anyhow!("--log-key: {error}"))?;
        let previous = match &self.previous_checkpoint {
            Some(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                Some(SavedState::decode(&bytes, &verifier)?)
            }
            None => None,
        };
        Ok(Options {
            verifier,
            previous,
            strict_signatures: self.strict_signatures,
            threads: self
                .threads
                .unwrap_or_else(crate::pipeline::available_threads),
            // The served tiles are checked against the leaves.
            keep_leaf_hashes: self.save_checkpoint.is_some() || self.server.is_some(),
        })
    }

    fn input(&self, client: &reqwest::blocking::Client) -> anyhow::Result<(Published, Input)> {
        match (&self.server, &self.export) {
            (Some(server), _) => {
                let base = server.trim_end_matches('/');
                // Published numbers first: the export then covers every size they were computed at.
                let published = fetch_published(client, base)?;
                let response = client
                    .get(format!("{base}/v1/log/export"))
                    .send()
                    .and_then(reqwest::blocking::Response::error_for_status)
                    .context("downloading the export")?;
                let input = std::io::BufReader::with_capacity(1 << 20, response);
                Ok((published, Box::new(input)))
            }
            (None, Some(path)) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                let input = std::io::BufReader::with_capacity(1 << 20, file);
                Ok((Published::default(), Box::new(input)))
            }
            (None, None) => bail!("give --server or --export"),
        }
    }

    fn print(&self, report: &Report) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(report)?);
            return Ok(());
        }
        if !report.ok {
            return Ok(());
        }
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
            "recounted {} polls, the proposals and the complaint statistics; {} published numbers \
             match",
            report.polls_recounted, report.published_numbers_compared
        );
        println!(
            "{:.0} events/s on {} threads ({:.2} s)",
            report.events_per_second, report.threads, report.seconds
        );
        Ok(())
    }
}

/// A progress bar on stderr, redrawn at most five times a second; silent when `shown` is false.
pub fn progress_bar(shown: bool) -> impl FnMut(u64, u64) {
    let started = Instant::now();
    let mut last_shown = Instant::now();
    move |done: u64, total: u64| {
        if !shown || last_shown.elapsed() < Duration::from_millis(200) {
            return;
        }
        last_shown = Instant::now();
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
        // Progress is a courtesy: a closed stderr must not fail the check.
        let _ = std::io::stderr().flush();
    }
}

/// Checks the server's consistency proof from the saved checkpoint's size to this one's.
fn check_served_consistency(
    client: &reqwest::blocking::Client,
    server: &str,
    previous: &SavedState,
    size: u64,
    report: &Report,
) -> Result<(), VerifyError> {
    let from = previous.checkpoint.size;
    if from == 0 || from == size {
        return Ok(());
    }
    let url = format!(
        "{}/v1/log/proofs/consistency?from={from}&to={size}",
        server.trim_end_matches('/')
    );
    let bad = |reason: String| VerifyError::ServedConsistency(reason);
    let proof: serde_json::Value = client
        .get(&url)
        .send()
        .and_then(reqwest::blocking::Response::error_for_status)
        .and_then(reqwest::blocking::Response::json)
        .map_err(|error| bad(format!("the server's consistency proof: {error}")))?;
    let hashes = proof["proof"]
        .as_array()
        .ok_or_else(|| bad("the consistency proof has no hashes".into()))?
        .iter()
        .map(|hash| hash.as_str().and_then(hash_from_base64))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("the consistency proof holds a malformed hash".into()))?;
    let root = report
        .root
        .as_deref()
        .and_then(hash_from_base64)
        .ok_or_else(|| bad("no recomputed root".into()))?;
    projections::merkle::verify_consistency(from, size, &hashes, &previous.checkpoint.root, &root)
        .map_err(|error| {
            bad(format!(
                "the server's consistency proof from size {from} does not verify: {error}"
            ))
        })
}

/// Fetches every hash tile of the verified tree from the server (`/tlog/tile/...`) and compares
/// it with the tile recomputed from the export's leaves: a server whose tiles disagree with its
/// own entries hands out proofs that do not hold.
fn check_served_tiles(
    client: &reqwest::blocking::Client,
    server: &str,
    leaf_hashes: &[projections::Hash],
) -> Result<(), VerifyError> {
    let base = server.trim_end_matches('/');
    for tile in hash_tiles_of(leaf_hashes) {
        let path = tile.address().path();
        let bad = |reason: String| VerifyError::ServedTile {
            path: path.clone(),
            reason,
        };
        let served = client
            .get(format!("{base}/tlog/{path}"))
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .and_then(reqwest::blocking::Response::bytes)
            .map_err(|error| bad(format!("cannot be fetched: {error}")))?;
        if served.as_ref() != tile.encode().as_slice() {
            return Err(bad("differs from the one the log's entries give".into()));
        }
    }
    Ok(())
}
