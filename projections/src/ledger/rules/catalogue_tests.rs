//! The rules of the category catalogue: who defines categories, what a definition holds, and
//! that a redefinition publishes a new version.

use super::support::*;
use crate::command::{Action, CategoryDefinition};

fn define(change: impl Fn(&mut CategoryDefinition)) -> Action {
    let mut definition = potholes();
    definition.id = "street-lighting".into();
    change(&mut definition);
    Action::DefineCategory(definition)
}

/// A row in which the admin's definition, changed by `change`, is refused as invalid.
fn invalid_definition(rule: &'static str, change: impl Fn(&mut CategoryDefinition)) -> Row {
    row(
        rule,
        base(),
        Step::by(ADMIN, define(change)),
        Then::Refused("invalid-category"),
    )
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        row(
            "the admin adds a category to the catalogue",
            base(),
            Step::by(ADMIN, define(|_| {})),
            Then::AcceptedAnd(|ledger| {
                ledger
                    .categories
                    .category("street-lighting")
                    .is_ok_and(|record| record.version == 1)
            }),
        ),
        row(
            "redefining a category publishes its next version",
            base(),
            Step::by(
                ADMIN,
                define(|definition| {
                    definition.id = POTHOLES.into();
                    definition.sla_working_days = 3;
                }),
            ),
            Then::AcceptedAnd(|ledger| {
                ledger
                    .categories
                    .category(POTHOLES)
                    .is_ok_and(|record| record.version == 2 && record.current.sla_working_days == 3)
            }),
        ),
        row(
            "only the admin defines categories",
            base(),
            Step::by(OFFICIAL, define(|_| {})),
            Then::Refused("not-admin"),
        ),
        invalid_definition("a category id has no capital letters", |definition| {
            definition.id = "Lighting".into()
        }),
        invalid_definition("a category id is not empty", |definition| {
            definition.id = String::new()
        }),
        invalid_definition("a category name is not blank", |definition| {
            definition.name = " ".into()
        }),
        invalid_definition("a category names its department", |definition| {
            definition.department = String::new()
        }),
        invalid_definition(
            "a service level of zero working days is refused",
            |definition| definition.sla_working_days = 0,
        ),
        invalid_definition(
            "a confirmation window longer than the day limit is refused",
            |definition| {
                definition.confirmation_window_days = crate::limits::CATEGORY_DAYS_MAX + 1;
            },
        ),
        invalid_definition("a support threshold of zero is refused", |definition| {
            definition.support_threshold = 0
        }),
    ]
}

#[test]
fn every_rule_of_the_category_catalogue_holds_as_its_table_says() {
    run_table(&rows());
}
