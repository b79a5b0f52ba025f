//! Given/when/then tables of the ledger's rules, one per aggregate. Each row folds a list of
//! prior commands, decides one more at a server time, and expects it accepted or refused with
//! one `Refusal` code; a refused command must leave the ledger as it was.

mod anonymous_polls_tests;
mod catalogue_tests;
mod complaints_tests;
mod coverage_tests;
mod deadlines_tests;
mod erasures_tests;
mod keys_tests;
mod poll_corrections_tests;
mod polls_tests;
mod proposals_tests;
mod replay_protection_tests;
mod state_tests;
mod support;
