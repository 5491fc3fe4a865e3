//! Hash maps for the hot paths.
//!
//! The standard library's maps hash with SipHash, which resists collision attacks on
//! keys an attacker chooses but costs a good share of a large listing: a
//! DescribeInstances page of 1,000 groups interfaces and tags by instance id in maps,
//! and looks up kept records by digests. Two cheaper kinds serve those:
//!
//! - [`FastMap`]: FxHash, for keys Strato makes or validates (resource ids), which a
//!   client cannot shape into collisions;
//! - [`DigestMap`]: no hashing at all, for keys that already are keyed digests
//!   (SipHash under a random key), whose bits are spread evenly.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map hashed with FxHash: for keys a client cannot choose freely.
pub type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// The hasher of [`FastMap`], for other maps keyed like it.
pub type FastHasher = rustc_hash::FxBuildHasher;

/// A set hashed with FxHash (see [`FastMap`]).
pub type FastSet<K> = rustc_hash::FxHashSet<K>;

/// A map whose integer keys are already digests, used as their own hash.
pub type DigestMap<K, V> = HashMap<K, V, BuildHasherDefault<DigestHasher>>;

/// The hasher of [`DigestMap`]: keeps the low 64 bits of the integer written.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Integers come through the typed methods below; anything else is folded in.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= n as u64 ^ (n >> 64) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_maps_and_fast_maps_behave_as_maps() {
        let mut d: DigestMap<u128, &str> = DigestMap::default();
        d.insert(1 << 100, "a");
        d.insert(7, "b");
        assert_eq!(d.get(&(1 << 100)), Some(&"a"));
        assert_eq!(d.get(&7), Some(&"b"));
        assert_eq!(d.get(&8), None);
        let mut f: FastMap<String, u32> = FastMap::default();
        f.insert("i-0123".into(), 1);
        assert_eq!(f.get("i-0123"), Some(&1));
    }
}
