//! `veche-verify`: the journalist's check of a veche log, without the server.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "veche-verify",
    version,
    about = "Check a veche log trusting only its public key",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    verify: veche_verifier::cli::VerifyArguments,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Open data: dump every export from a server with a manifest, or check a dump against the
    /// log, file by file.
    OpenData(veche_verifier::open_data_cli::OpenDataArguments),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::OpenData(open_data)) => open_data.run(),
        None => cli.verify.run(),
    }
}
