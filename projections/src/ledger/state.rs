//! An aggregate's state: read by anyone through `Deref`, changed only by the ledger's modules
//! (each aggregate's `evolve`, and the snapshot reader that rebuilds it).

use std::collections::BTreeMap;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// The state of one aggregate, a collection `T` (its records by id).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct State<T>(pub(super) T);

impl<T> Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<V> State<BTreeMap<u64, V>> {
    /// The record `id`, or `unknown` (the aggregate's refusal for an id it never saw).
    pub(super) fn find<E>(&self, id: u64, unknown: E) -> Result<&V, E> {
        self.0.get(&id).ok_or(unknown)
    }

    /// The record `id` that a folded event names: its absence is a fold bug.
    pub(super) fn found(&self, id: u64, what: &str) -> &V {
        match self.0.get(&id) {
            Some(record) => record,
            None => unreachable!("an event names {what} {id}, which decide found"),
        }
    }

    /// The record `id` that an event names, which `decide` found: its absence is a fold bug.
    pub(super) fn found_mut(&mut self, id: u64, what: &str) -> &mut V {
        match self.0.get_mut(&id) {
            Some(record) => record,
            None => unreachable!("an event names {what} {id}, which decide found"),
        }
    }
}
