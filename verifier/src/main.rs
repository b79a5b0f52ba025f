//! `veche-verify`: the journalist's check of a veche log, without the server.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "veche-verify",
    version,
    about = "Check a veche log trusting only its public key"
)]
struct Cli {
    #[command(flatten)]
    verify: veche_verifier::cli::VerifyArguments,
}

fn main() -> anyhow::Result<()> {
    Cli::parse().verify.run()
}
