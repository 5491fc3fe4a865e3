//! A map that holds about a fixed number of recently used entries.
//!
//! Two generations: entries go into the young one; when it reaches half the capacity
//! it becomes the old one and the old one is dropped. A hit in the old generation
//! moves the entry back into the young one. So what is used keeps living, what is
//! not goes within two turns, and the map never holds more than `capacity` entries —
//! without the bookkeeping of a true least-recently-used list, which would cost every
//! read a write.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// See the module documentation. `S` hashes the keys (SipHash by default; see
/// [`crate::hashing`] for keys that are digests already).
pub struct BoundedMap<K, V, S = RandomState> {
    young: HashMap<K, V, S>,
    old: HashMap<K, V, S>,
    half: usize,
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> BoundedMap<K, V, S> {
    /// A map of at most `capacity` entries (at least two).
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            young: HashMap::default(),
            old: HashMap::default(),
            half: (capacity / 2).max(1),
        }
    }

    /// The entry of `key`, if it is still held.
    pub fn get(&mut self, key: &K) -> Option<&mut V> {
        if !self.young.contains_key(key) {
            let (k, v) = self.old.remove_entry(key)?;
            self.make_room();
            self.young.insert(k, v);
        }
        self.young.get_mut(key)
    }

    /// The entry of `key`, made by `make` if it is not held.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        if !self.young.contains_key(&key) {
            let held = self.old.remove(&key);
            self.make_room();
            return self
                .young
                .entry(key)
                .or_insert_with(|| held.unwrap_or_else(make));
        }
        self.young.entry(key).or_insert_with(make)
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }

    fn make_room(&mut self) {
        if self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_is_used_and_stays_bounded() {
        let mut m: BoundedMap<i32, i32> = BoundedMap::new(4);
        for k in 0..4 {
            m.get_or_insert_with(k, || k * 10);
        }
        assert!(m.len() <= 4);
        // 0 and 1 went old when 2 arrived, then were dropped when 4 would; reading 3
        // keeps it.
        assert_eq!(m.get(&3).copied(), Some(30));
        for k in 4..8 {
            m.get_or_insert_with(k, || k * 10);
            assert_eq!(m.get(&3).copied(), Some(30), "3 is used, so it stays");
            assert!(m.len() <= 4, "{}", m.len());
        }
        assert_eq!(m.get(&0), None);
        *m.get_or_insert_with(3, || 0) += 1;
        assert_eq!(m.get(&3).copied(), Some(31));
        m.clear();
        assert!(m.is_empty());
    }
}
