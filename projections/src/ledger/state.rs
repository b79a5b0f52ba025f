//! An aggregate's state: read by anyone through `Deref`, changed only by the ledger's modules
//! (each aggregate's `evolve`, and the snapshot reader that rebuilds it).

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
