//! A hash map that can only be walked in key order: constant-time lookups for the ledger's large
//! collections, without the unordered iteration that would make a fold or a snapshot depend on
//! the hasher.
//!
//! This is the one module of `projections` allowed to name `std::collections::HashMap` (see
//! `projections/clippy.toml`): everything else uses ordered maps or this wrapper, so iteration
//! order is deterministic by construction rather than by every caller remembering to sort.
#![allow(clippy::disallowed_types)]

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash};

/// SipHash-1-3 with fixed zero keys: the same hash function as std's default, so lookups cost the
/// same, but no random seed is read. Nothing observable depends on the hash anyway (iteration is
/// sorted), so the fixed seed only removes a source of randomness from the pure crate.
type FixedHasher = BuildHasherDefault<DefaultHasher>;

/// Keys to values with hash-map lookups and sorted iteration.
#[derive(Clone, Debug)]
pub struct KeyedMap<K, V> {
    entries: HashMap<K, V, FixedHasher>,
}

impl<K, V> Default for KeyedMap<K, V> {
    fn default() -> Self {
        KeyedMap {
            entries: HashMap::default(),
        }
    }
}

impl<K: Hash + Eq, V: PartialEq> PartialEq for KeyedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl<K: Hash + Eq, V: Eq> Eq for KeyedMap<K, V> {}

impl<K: Hash + Ord, V> KeyedMap<K, V> {
    pub fn new() -> Self {
        KeyedMap::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        KeyedMap {
            entries: HashMap::with_capacity_and_hasher(capacity, FixedHasher::default()),
        }
    }

    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Inserts `value` under `key` and gives back the value it replaces, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.entries.insert(key, value)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.entries.remove(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry in ascending key order. Sorting costs O(n log n) per walk: walks are for
    /// snapshots and audits, lookups are what the fold does per event.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let mut entries: Vec<(&K, &V)> = self.entries.iter().collect();
        entries.sort_unstable_by(|left, right| left.0.cmp(right.0));
        entries.into_iter()
    }

    /// Every key in ascending order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(key, _)| key)
    }

    /// Every value in ascending order of its key.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, value)| value)
    }
}

impl<K: Hash + Ord, V> FromIterator<(K, V)> for KeyedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        KeyedMap {
            entries: entries.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_map_walks_its_entries_in_key_order_whatever_the_insertion_order() {
        let mut forwards = KeyedMap::new();
        let mut backwards = KeyedMap::new();
        for key in 0..1_000u64 {
            forwards.insert(key.wrapping_mul(0x9e37_79b9_7f4a_7c15), key);
            let key = 999 - key;
            backwards.insert(key.wrapping_mul(0x9e37_79b9_7f4a_7c15), key);
        }
        assert_eq!(forwards, backwards);
        let keys: Vec<u64> = forwards.keys().copied().collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(keys.len(), 1_000);
        assert_eq!(
            forwards.iter().map(|(key, _)| *key).collect::<Vec<_>>(),
            backwards.iter().map(|(key, _)| *key).collect::<Vec<_>>()
        );
    }

    #[test]
    fn insert_gives_back_the_value_it_replaces_and_remove_the_value_it_takes() {
        let mut map = KeyedMap::new();
        assert_eq!(map.insert("a", 1), None);
        assert_eq!(map.insert("a", 2), Some(1));
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&"a"), Some(&2));
        assert_eq!(map.remove(&"a"), Some(2));
        assert!(map.is_empty());
        assert!(!map.contains_key(&"a"));
    }
}
