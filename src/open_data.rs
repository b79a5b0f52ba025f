//! `veche open-data`: a dump of every open-data file from a server (`--server`) or from an
//! operator's own data directory (`--data-dir`, replayed and checked offline, the checkpoint
//! signed with the directory's server key), and `verify`, the verifier crate's check of a dump.

use std::path::PathBuf;

use anyhow::Context;
use projections::checkpoint::{sign_note, Checkpoint};
use veche_verifier::open_data::{render, FILES};
use veche_verifier::open_data_cli::{DumpArguments, DumpVerifyArguments, DumpWriter};

use crate::server::{DataDirectory, LOG_FILE};
use crate::store::SqliteStore;

/// Open data: dump every export into a dated directory with a manifest, or check a dump
/// against the log (docs/OPEN_DATA.md).
#[derive(clap::Args, Debug)]
pub struct OpenData {
    #[command(subcommand)]
    command: OpenDataCommand,
}

#[derive(clap::Subcommand, Debug)]
enum OpenDataCommand {
    /// Write every export into OUT/veche-open-data-YYYY-MM-DD/ with manifest.json (SHA-256 of
    /// each file, the log size and the signed checkpoint it was computed at).
    Dump(Dump),
    /// Recompute every file of a dump from the log at its size and name each that differs.
    Verify(DumpVerifyArguments),
}

#[derive(clap::Args, Debug)]
struct Dump {
    /// Base URL of a veche server to download the exports from.
    #[arg(
        long,
        conflicts_with = "data_dir",
        required_unless_present = "data_dir"
    )]
    server: Option<String>,
    /// A server's own data directory: its log is replayed and checked, and the files rendered
    /// at its size.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The directory the dated dump directory is made in.
    #[arg(long)]
    out: PathBuf,
}

impl OpenData {
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            OpenDataCommand::Verify(verify) => verify.run(),
            OpenDataCommand::Dump(dump) => {
                let directory = match (dump.server, dump.data_dir) {
                    (Some(server), _) => DumpArguments {
                        server,
                        out: dump.out,
                    }
                    .run()?,
                    (None, Some(data_dir)) => dump_data_directory(&data_dir, &dump.out)?,
                    (None, None) => anyhow::bail!("give --server or --data-dir"),
                };
                println!("{}", directory.display());
                Ok(())
            }
        }
    }
}

/// Replays the directory's log (every check `veche verify --data-dir` makes) and writes every
/// file at its size, with a checkpoint signed by the directory's server key.
fn dump_data_directory(
    data_dir: &std::path::Path,
    out: &std::path::Path,
) -> anyhow::Result<PathBuf> {
    let directory = DataDirectory::open_existing(data_dir)?;
    let store = SqliteStore::open(&data_dir.join(LOG_FILE))?;
    let ledger = crate::node::verify_stored_log(&store, &|| {})
        .map_err(|error| anyhow::anyhow!("the log does not verify: {error}"))?;
    let origin = ledger
        .identity()
        .map(|identity| identity.log_origin.clone())
        .context("the log has no genesis entry")?;
    let body = Checkpoint {
        origin: origin.clone(),
        size: ledger.size,
        root: ledger.merkle.root(),
    }
    .body();
    let checkpoint = sign_note(&body, &origin, &directory.server_key);
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let mut writer = DumpWriter::create(out, &origin, now)?;
    for name in FILES {
        let bytes = render(name, &ledger)?;
        writer.add(name, &mut bytes.as_slice(), ledger.size, checkpoint.clone())?;
    }
    writer.finish()
}
