//! The catalogue of complaint and proposal categories: each category's department, SLA,
//! confirmation window, proposal lifetime and support threshold, versioned by redefinition.
//!
//! Invariant: only an admin defines a category; a redefinition replaces the version in force and
//! counts one more version, so complaints accepted earlier keep the deadline they were given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::Event;
use super::keys::Keys;
use super::refusal::Refusal;
use super::state::State;
use crate::command::CategoryDefinition;
use crate::limits;
use crate::protocol::PublicKey;
use crate::text::{check_field, Lines};

/// The actions whose rules live here.
#[derive(Clone, Copy, Debug)]
pub enum CatalogueAction<'a> {
    DefineCategory(&'a CategoryDefinition),
}

/// A catalogue entry: the version in force and how many versions came before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRecord {
    pub current: CategoryDefinition,
    /// 1 for the first definition, then one more per redefinition.
    pub version: u32,
    pub defined_at_position: u64,
}

/// The catalogue aggregate: categories by id.
pub type Catalogue = State<BTreeMap<String, CategoryRecord>>;

impl Catalogue {
    pub fn category(&self, id: &str) -> Result<&CategoryRecord, Refusal> {
        self.0.get(id).ok_or(Refusal::UnknownCategory)
    }

    /// The version in force of a category that `decide` found in the catalogue.
    pub(super) fn definition_in_force(&self, id: &str, what: &str) -> &CategoryDefinition {
        match self.0.get(id) {
            Some(record) => &record.current,
            None => unreachable!("{what} names category {id:?}, which decide found defined"),
        }
    }

    /// May `author` do `action` now?
    pub fn decide(
        &self,
        action: CatalogueAction<'_>,
        author: PublicKey,
        keys: &Keys,
    ) -> Result<(), Refusal> {
        match action {
            CatalogueAction::DefineCategory(definition) => {
                if !keys.is_admin(author) {
                    return Err(Refusal::NotAdmin);
                }
                check_category(definition)
            }
        }
    }

    /// Folds one decided event in.
    pub fn evolve(&mut self, action: CatalogueAction<'_>, event: &Event) {
        match action {
            CatalogueAction::DefineCategory(definition) => {
                let version = self.0.get(&definition.id).map_or(1, |record| {
                    record.version.checked_add(1).unwrap_or_else(|| {
                        unreachable!("category {} redefined 2^32 times", definition.id)
                    })
                });
                self.0.insert(
                    definition.id.clone(),
                    CategoryRecord {
                        current: definition.clone(),
                        version,
                        defined_at_position: event.position,
                    },
                );
            }
        }
    }
}

fn check_category(definition: &CategoryDefinition) -> Result<(), Refusal> {
    let invalid = |reason: String| Err(Refusal::InvalidCategory(reason));
    let id_ok = !definition.id.is_empty()
        && definition.id.len() <= limits::CATEGORY_ID_CHARS_MAX
        && definition
            .id
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'-'));
    if !id_ok {
        return invalid(format!(
            "an id has 1 to {} lowercase letters, digits and hyphens",
            limits::CATEGORY_ID_CHARS_MAX
        ));
    }
    let one_line_fields = [
        ("a name", &definition.name, limits::CATEGORY_NAME_CHARS_MAX),
        (
            "a department",
            &definition.department,
            limits::DEPARTMENT_CHARS_MAX,
        ),
    ];
    for (what, text, chars_max) in one_line_fields {
        check_field(what, text, Lines::One, chars_max).or_else(invalid)?;
    }
    let days = [
        definition.sla_working_days,
        definition.confirmation_window_days,
        definition.proposal_lifetime_days,
    ];
    if days
        .iter()
        .any(|&days| days == 0 || days > limits::CATEGORY_DAYS_MAX)
    {
        return invalid(format!("day counts are 1 to {}", limits::CATEGORY_DAYS_MAX));
    }
    if definition.support_threshold == 0
        || definition.support_threshold > limits::SUPPORT_THRESHOLD_MAX
    {
        return invalid(format!(
            "a support threshold is 1 to {}",
            limits::SUPPORT_THRESHOLD_MAX
        ));
    }
    Ok(())
}
