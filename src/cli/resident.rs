//! `veche resident`: the registrar's attestations and revocations, and what the log says of a
//! key, with the same output as the other groups (lines for people, `--json` for scripts).
//!
//! The resident's tag is computed here from the registrar's secret and the resident's identity
//! (`crate::ResidentIdentity`, as `veche attest` does); neither leaves the registrar's machine.

use clap::Subcommand;
use projections::command::{Attestation, KeyRevocation};
use projections::protocol::public_key_of;
use projections::Action;
use serde_json::Value;
use veche::keys::read_key_file;

use crate::cli::output::{self, field};
use crate::cli::{read_and_show, Connection, OutputArgument, Session};
use crate::{public_key_argument, KeyArgument, ResidentIdentity};

#[derive(clap::Args)]
pub struct ResidentCommand {
    #[command(subcommand)]
    action: ResidentAction,
    #[command(flatten)]
    server: Connection,
    #[command(flatten)]
    output: OutputArgument,
}

#[derive(Subcommand)]
enum ResidentAction {
    /// Attest a key as a verified resident of a district (registrar).
    Attest(Attest),
    /// Revoke a key for good: your own, or a resident's lost key (registrar).
    RevokeKey(RevokeKey),
    /// What the log says of a key: registration, roles, attestation, revocation.
    Show(Show),
}

impl ResidentCommand {
    pub fn run(self) -> anyhow::Result<()> {
        let (server, output) = (&self.server, self.output);
        match self.action {
            ResidentAction::Attest(attest) => attest.run(server, output),
            ResidentAction::RevokeKey(revoke) => revoke.run(server, output),
            ResidentAction::Show(show) => {
                let path = format!("/v1/keys/{}", public_key_argument(&show.subject)?);
                read_and_show(server, output, &path, key_lines)
            }
        }
    }
}

#[derive(clap::Args)]
struct Attest {
    #[command(flatten)]
    key: KeyArgument,
    /// The resident's public key, hex.
    subject: String,
    /// The district the registrar found the resident lives in.
    #[arg(long)]
    district: Option<String>,
    #[command(flatten)]
    resident: ResidentIdentity,
}

impl Attest {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let subject = public_key_argument(&self.subject)?;
        let attestation = Attestation {
            subject,
            district: self.district,
            verified: true,
            resident_tag: Some(self.resident.tag()?),
        };
        let receipt =
            Session::open(server, &self.key)?.send(Action::AttestResident(attestation))?;
        output::receipt(output, &receipt, |_| {
            format!("attested {subject} as a verified resident")
        });
        Ok(())
    }
}

#[derive(clap::Args)]
struct RevokeKey {
    #[command(flatten)]
    key: KeyArgument,
    /// The key to revoke, hex; the signing key's own when absent.
    subject: Option<String>,
}

impl RevokeKey {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let subject = match &self.subject {
            Some(subject) => public_key_argument(subject)?,
            None => public_key_of(&read_key_file(&self.key.key)?),
        };
        let revocation = Action::RevokeKey(KeyRevocation { subject });
        let receipt = Session::open(server, &self.key)?.send(revocation)?;
        output::receipt(output, &receipt, |_| format!("revoked key {subject}"));
        Ok(())
    }
}

#[derive(clap::Args)]
struct Show {
    /// The public key, hex.
    subject: String,
}

/// A key as the log has it, a line a fact.
fn key_lines(key: &Value) -> Vec<String> {
    let roles: Vec<String> = key["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|role| field(role, "role"))
        .collect();
    vec![
        format!("key:        {}", field(key, "key")),
        format!(
            "registered: entry {} ({})",
            field(key, "registered_at_position"),
            field(key, "registered_at")
        ),
        format!(
            "roles:      {}",
            if roles.is_empty() {
                "-".into()
            } else {
                roles.join(", ")
            }
        ),
        format!(
            "resident:   {} (district {}, tag {})",
            if key["verified"] == Value::Bool(true) {
                "verified"
            } else {
                "not verified"
            },
            field(key, "district"),
            field(key, "resident_tag")
        ),
        format!("revoked:    {}", field(key, "revoked")),
    ]
}
