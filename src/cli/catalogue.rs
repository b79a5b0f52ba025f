//! `veche category` and `veche role`: the admin's catalogue of complaint and proposal categories,
//! and who holds which role, with the same output as the other groups (lines for people,
//! `--json` for scripts).
//!
//! A category change is a new `define_category` of the same id: the CLI reads the category as
//! served and changes only the fields given, so the admin never retypes the rest.

use anyhow::Context;
use clap::Subcommand;
use projections::command::CategoryDefinition;
use projections::Action;
use serde_json::Value;

use crate::cli::output;
use crate::cli::{get, query, read_and_show, Connection, OutputArgument, Session};
use crate::KeyArgument;

#[derive(clap::Args)]
pub struct CategoryCommand {
    #[command(subcommand)]
    action: CategoryAction,
    #[command(flatten)]
    server: Connection,
    #[command(flatten)]
    output: OutputArgument,
}

#[derive(Subcommand)]
enum CategoryAction {
    /// Add a category (admin).
    Add(Add),
    /// Publish a new version of a category, changing the fields given (admin).
    Change(Change),
    /// The catalogue.
    List,
}

impl CategoryCommand {
    pub fn run(self) -> anyhow::Result<()> {
        let (server, output) = (&self.server, self.output);
        match self.action {
            CategoryAction::Add(add) => add.run(server, output),
            CategoryAction::Change(change) => change.run(server, output),
            CategoryAction::List => {
                read_and_show(server, output, "/v1/categories", output::categories)
            }
        }
    }
}

#[derive(clap::Args)]
struct Add {
    #[command(flatten)]
    key: KeyArgument,
    /// Stable identifier: lowercase letters, digits and hyphens, e.g. street-lighting.
    id: String,
    #[arg(long)]
    name: String,
    /// The department complaints in it are routed to, whose officials answer its proposals.
    #[arg(long)]
    department: String,
    /// Working days a department has to resolve an accepted complaint.
    #[arg(long)]
    sla_working_days: u32,
    /// Days the author has to confirm or dispute a resolution.
    #[arg(long)]
    confirmation_window_days: u32,
    /// Supports that move a published proposal to review.
    #[arg(long)]
    support_threshold: u64,
    /// Days a published proposal stays open for supports.
    #[arg(long)]
    proposal_lifetime_days: u32,
    /// Only verified residents support its proposals, one support per resident.
    #[arg(long)]
    supports_from_residents_only: bool,
}

impl Add {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let definition = CategoryDefinition {
            id: self.id,
            name: self.name,
            department: self.department,
            sla_working_days: self.sla_working_days,
            confirmation_window_days: self.confirmation_window_days,
            support_threshold: self.support_threshold,
            proposal_lifetime_days: self.proposal_lifetime_days,
            supports_from_residents_only: self.supports_from_residents_only,
        };
        define(&self.key, server, output, definition, "added")
    }
}

#[derive(clap::Args)]
struct Change {
    #[command(flatten)]
    key: KeyArgument,
    /// The category's id.
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    department: Option<String>,
    #[arg(long)]
    sla_working_days: Option<u32>,
    #[arg(long)]
    confirmation_window_days: Option<u32>,
    #[arg(long)]
    support_threshold: Option<u64>,
    #[arg(long)]
    proposal_lifetime_days: Option<u32>,
    #[arg(long)]
    supports_from_residents_only: Option<bool>,
}

impl Change {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let list = get(server, "/v1/categories")?;
        let current = list["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|category| category["id"] == Value::String(self.id.clone()))
            .with_context(|| format!("no category {:?}; add it first", self.id))?;
        let mut definition = definition_of(current)?;
        definition.name = self.name.unwrap_or(definition.name);
        definition.department = self.department.unwrap_or(definition.department);
        definition.sla_working_days = self.sla_working_days.unwrap_or(definition.sla_working_days);
        definition.confirmation_window_days = self
            .confirmation_window_days
            .unwrap_or(definition.confirmation_window_days);
        definition.support_threshold = self
            .support_threshold
            .unwrap_or(definition.support_threshold);
        definition.proposal_lifetime_days = self
            .proposal_lifetime_days
            .unwrap_or(definition.proposal_lifetime_days);
        definition.supports_from_residents_only = self
            .supports_from_residents_only
            .unwrap_or(definition.supports_from_residents_only);
        define(&self.key, server, output, definition, "changed")
    }
}

/// A served category (the definition's fields and its `version`) as a definition to sign.
fn definition_of(served: &Value) -> anyhow::Result<CategoryDefinition> {
    let mut fields = served.clone();
    if let Some(object) = fields.as_object_mut() {
        object.remove("version");
    }
    serde_json::from_value(fields).context("the server's category does not read as a definition")
}

fn define(
    key: &KeyArgument,
    server: &Connection,
    output: OutputArgument,
    definition: CategoryDefinition,
    done: &str,
) -> anyhow::Result<()> {
    let id = definition.id.clone();
    let receipt = Session::open(server, key)?.send(Action::DefineCategory(definition))?;
    output::receipt(output, &receipt, |_| format!("{done} category {id}"));
    Ok(())
}

#[derive(clap::Args)]
pub struct RoleCommand {
    #[command(subcommand)]
    action: RoleAction,
    #[command(flatten)]
    server: Connection,
    #[command(flatten)]
    output: OutputArgument,
}

#[derive(Subcommand)]
enum RoleAction {
    /// Grant a role (admin): official (with --department), moderator or registrar.
    Grant(RoleChangeArguments),
    /// Revoke a role (admin).
    Revoke(RoleChangeArguments),
    /// Who holds which role now.
    List(List),
}

#[derive(clap::Args)]
struct RoleChangeArguments {
    #[command(flatten)]
    key: KeyArgument,
    /// Public key receiving or losing the role, hex.
    subject: String,
    /// official, moderator or registrar.
    #[arg(long)]
    role: String,
    /// The official's department (granting `official`).
    #[arg(long)]
    department: Option<String>,
}

#[derive(clap::Args)]
struct List {
    /// Only holders of this role: admin, official, moderator or registrar.
    #[arg(long)]
    role: Option<String>,
    /// Only officials of this department.
    #[arg(long)]
    department: Option<String>,
}

impl RoleCommand {
    pub fn run(self) -> anyhow::Result<()> {
        let (server, output) = (&self.server, self.output);
        let (change, action, done): (RoleChangeArguments, fn(_) -> Action, &str) = match self.action
        {
            RoleAction::Grant(change) => (change, Action::GrantRole, "granted"),
            RoleAction::Revoke(change) => (change, Action::RevokeRole, "revoked"),
            RoleAction::List(list) => return list.run(server, output),
        };
        let role = change.role.clone();
        let role_change = crate::role_change(&change.subject, &change.role, change.department)?;
        let subject = role_change.subject;
        let receipt = Session::open(server, &change.key)?.send(action(role_change))?;
        output::receipt(output, &receipt, |_| {
            format!("{done} the role {role}: {subject}")
        });
        Ok(())
    }
}

impl List {
    fn run(self, server: &Connection, output: OutputArgument) -> anyhow::Result<()> {
        let path = format!(
            "/v1/roles{}",
            query(&[("role", self.role), ("department", self.department)])
        );
        read_and_show(server, output, &path, |page| {
            output::page(
                page,
                "holders",
                "next_after",
                &["key", "roles"],
                output::holder_row,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_served_category_reads_back_as_the_definition_it_was_made_of() {
        let definition = CategoryDefinition {
            id: "street-lighting".into(),
            name: "Street lighting".into(),
            department: "roads".into(),
            sla_working_days: 8,
            confirmation_window_days: 7,
            support_threshold: 100,
            proposal_lifetime_days: 30,
            supports_from_residents_only: true,
        };
        let mut served = serde_json::to_value(&definition).unwrap();
        served["version"] = 3.into();
        assert_eq!(definition_of(&served).unwrap(), definition);
        served["unknown"] = true.into();
        assert!(
            definition_of(&served).is_err(),
            "a field it cannot sign is refused"
        );
    }
}
