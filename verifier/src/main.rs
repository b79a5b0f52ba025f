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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    #[test]
    fn the_command_line_is_well_formed_and_takes_the_open_data_subcommand() {
        Cli::command().debug_assert();
        let arguments = [
            "veche-verify",
            "open-data",
            "verify",
            "--dump",
            "dump",
            "--export",
            "log.export",
            "--log-key",
            "key",
        ];
        let parsed = Cli::try_parse_from(arguments).unwrap();
        assert!(matches!(parsed.command, Some(Command::OpenData(_))));
        let plain = Cli::try_parse_from(["veche-verify", "--export", "log.export"]).unwrap();
        assert!(plain.command.is_none());
    }
}
