//! `veche open-data dump` (from a server) and `veche open-data verify`: a dated directory of
//! every open-data file with a manifest, and its check against the log, file by file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use projections::checkpoint::NoteVerifier;
use projections::Timestamp;
use sha2::{Digest, Sha256};

use crate::open_data::{
    sha256_hex, DumpedFile, Manifest, ManifestFile, FILES, MANIFEST_FILE, MANIFEST_FORMAT,
};
use crate::verification::{verify_export, Options, Published};

/// Open data: dump every export into a dated directory with a manifest, or check a dump
/// against the log.
#[derive(clap::Args, Debug)]
pub struct OpenDataArguments {
    #[command(subcommand)]
    pub command: OpenDataCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum OpenDataCommand {
    /// Download every export from a server into OUT/veche-open-data-YYYY-MM-DD/ with a
    /// manifest (SHA-256 of each file, the log size and signed checkpoint it was taken at).
    Dump(DumpArguments),
    /// Recompute every file of a dump from the log at its size and name each that differs.
    Verify(DumpVerifyArguments),
}

#[derive(clap::Args, Debug)]
pub struct DumpArguments {
    /// Base URL of a veche server.
    #[arg(long)]
    pub server: String,
    /// The directory the dated dump directory is made in.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct DumpVerifyArguments {
    /// The dump directory (the one holding manifest.json).
    #[arg(long)]
    pub dump: PathBuf,
    /// An export file saved from `/v1/log/export` covering every size the dump names.
    #[arg(long, conflicts_with = "server")]
    pub export: Option<PathBuf>,
    /// Or a server whose `/v1/log/export` is read.
    #[arg(long)]
    pub server: Option<String>,
    /// The log's verifier key (C2SP vkey), from a source you trust.
    #[arg(long, env = "VECHE_LOG_KEY")]
    pub log_key: String,
    /// Threads for checking entries (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl OpenDataArguments {
    pub fn run(&self) -> anyhow::Result<()> {
        match &self.command {
            OpenDataCommand::Dump(dump) => {
                let directory = dump.run()?;
                println!("{}", directory.display());
                Ok(())
            }
            OpenDataCommand::Verify(verify) => verify.run(),
        }
    }
}

/// Writes a dump's files, each through a SHA-256 as it goes, then its manifest.
pub struct DumpWriter {
    directory: PathBuf,
    manifest: Manifest,
}

impl DumpWriter {
    /// Makes `OUT/veche-open-data-<date>` (the UTC date of `now`), which must not exist yet.
    pub fn create(out: &Path, log_origin: &str, now: Timestamp) -> anyhow::Result<DumpWriter> {
        let date: String = now.to_rfc3339().chars().take(10).collect();
        let directory = out.join(format!("veche-open-data-{date}"));
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        std::fs::create_dir(&directory)
            .with_context(|| format!("creating {}", directory.display()))?;
        Ok(DumpWriter {
            directory,
            manifest: Manifest {
                format: MANIFEST_FORMAT.to_owned(),
                log_origin: log_origin.to_owned(),
                dumped_at: now,
                files: Vec::new(),
            },
        })
    }

    /// Copies one file from `input`, hashing it on the way.
    pub fn add(
        &mut self,
        name: &str,
        input: &mut dyn Read,
        log_size: u64,
        checkpoint: String,
    ) -> anyhow::Result<()> {
        let path = self.directory.join(name);
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut bytes = 0u64;
        loop {
            let read = input.read(&mut buffer).context("reading an export")?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            file.write_all(&buffer[..read])
                .with_context(|| format!("writing {}", path.display()))?;
            bytes += read as u64;
        }
        file.flush()
            .with_context(|| format!("writing {}", path.display()))?;
        self.manifest.files.push(ManifestFile {
            name: name.to_owned(),
            bytes,
            sha256: hex::encode(hasher.finalize()),
            log_size,
            checkpoint,
        });
        Ok(())
    }

    /// Writes the manifest; returns the dump's directory.
    pub fn finish(self) -> anyhow::Result<PathBuf> {
        let path = self.directory.join(MANIFEST_FILE);
        let mut manifest = serde_json::to_vec_pretty(&self.manifest)?;
        manifest.push(b'\n');
        std::fs::write(&path, manifest).with_context(|| format!("writing {}", path.display()))?;
        Ok(self.directory)
    }
}

/// The clock of the machine making a dump, for its date.
fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
}

impl DumpArguments {
    pub fn run(&self) -> anyhow::Result<PathBuf> {
        let base = self.server.trim_end_matches('/');
        let client = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .context("building the HTTP client")?;
        let head: serde_json::Value = client
            .get(format!("{base}/v1/log"))
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .and_then(reqwest::blocking::Response::json)
            .context("reading the log's head")?;
        let origin = head["log_origin"].as_str().unwrap_or_default().to_owned();
        let mut writer = DumpWriter::create(&self.out, &origin, now())?;
        for name in FILES {
            let mut response = client
                .get(format!("{base}/v1/open-data/{name}"))
                .send()
                .and_then(reqwest::blocking::Response::error_for_status)
                .with_context(|| format!("downloading {name}"))?;
            let header = |header: &str| {
                response
                    .headers()
                    .get(header)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
                    .with_context(|| format!("{name} comes without {header}"))
            };
            let log_size: u64 = header("X-Veche-Log-Size")?.parse()?;
            let checkpoint = checkpoint_from_header(&header("X-Veche-Checkpoint")?)?;
            writer.add(name, &mut response, log_size, checkpoint)?;
        }
        writer.finish()
    }
}

/// The signed checkpoint note from its header: standard base64 of the note's bytes.
pub fn checkpoint_from_header(value: &str) -> anyhow::Result<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .context("X-Veche-Checkpoint is not base64")?;
    String::from_utf8(bytes).context("X-Veche-Checkpoint is not a UTF-8 note")
}

impl DumpVerifyArguments {
    pub fn run(&self) -> anyhow::Result<()> {
        let verifier = NoteVerifier::parse(&self.log_key)
            .map_err(|error| anyhow::anyhow!("--log-key: {error}"))?;
        let published = read_dump(&self.dump, &verifier)?;
        let options = Options {
            verifier,
            previous: None,
            strict_signatures: false,
            threads: self
                .threads
                .unwrap_or_else(crate::pipeline::available_threads),
            keep_leaf_hashes: false,
        };
        let mut input: Box<dyn Read + Send> = match (&self.export, &self.server) {
            (Some(path), _) => Box::new(std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
            )),
            (None, Some(server)) => {
                let url = format!("{}/v1/log/export", server.trim_end_matches('/'));
                let response = reqwest::blocking::Client::builder()
                    .timeout(None)
                    .build()?
                    .get(url)
                    .send()
                    .and_then(reqwest::blocking::Response::error_for_status)
                    .context("downloading the export")?;
                Box::new(std::io::BufReader::with_capacity(1 << 20, response))
            }
            (None, None) => bail!("give --export or --server"),
        };
        let report = verify_export(&mut input, &options, &published, &mut |_, _| {});
        if let Some(failure) = &report.failure {
            bail!("the dump does not verify: {failure}");
        }
        let files: usize = published.open_data.values().map(Vec::len).sum();
        println!(
            "verified {} entries; every one of the dump's {files} files is the one the log gives \
             at its size, byte for byte",
            report.entries_verified
        );
        Ok(())
    }
}

/// Reads a dump's manifest and files, checking each file's checkpoint signature and size.
pub fn read_dump(directory: &Path, verifier: &NoteVerifier) -> anyhow::Result<Published> {
    let path = directory.join(MANIFEST_FILE);
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a dump manifest", path.display()))?;
    if manifest.format != MANIFEST_FORMAT {
        bail!("{} is not a {MANIFEST_FORMAT} manifest", path.display());
    }
    let mut published = Published::default();
    for file in &manifest.files {
        let bytes = std::fs::read(directory.join(&file.name))
            .with_context(|| format!("reading {}", file.name))?;
        let checkpoint = crate::verification::open_checkpoint(&file.checkpoint, verifier)
            .with_context(|| format!("{}: its checkpoint", file.name))?;
        if checkpoint.size != file.log_size {
            bail!(
                "{}: its checkpoint is at size {}, not the file's {}",
                file.name,
                checkpoint.size,
                file.log_size
            );
        }
        published
            .open_data
            .entry(file.log_size)
            .or_default()
            .push(DumpedFile {
                name: file.name.clone(),
                manifest_sha256: file.sha256.clone(),
                file_sha256: sha256_hex(&bytes),
                checkpoint_root: checkpoint.root,
            });
    }
    Ok(published)
}
