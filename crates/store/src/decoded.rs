//! Decoded records by their exact stored text.
//!
//! Records are stored as JSON documents; listing pages decode the same documents over
//! and over (a DescribeInstances page of 1,000 decodes 1,000 instances and their
//! interfaces, and decoding was the larger part of its time). A [`DocCache`] keeps the
//! decoded value of recently read documents keyed by their text: a read whose text is
//! byte for byte the text decoded before gets a copy of that value instead of a new
//! parse. Keying by the whole text makes it exact — any change to a stored record
//! changes its text and misses — so nothing has to invalidate it, and one cache serves
//! every database of the process. It is bounded, keeping what is read
//! ([`BoundedMap`]).
//!
//! Tables whose rows carry a stored revision (a number the database gives each write
//! of a row and never gives again: instances and network interfaces) are cheaper
//! still: a listing reads the revisions from an index, takes the records it has by
//! database and revision ([`DocCache::by_revs`]) and reads the text of only the
//! others ([`DocCache::decode_rev`]).
//!
//! Either way a decoded record is marked with a [`DocRev`] counted here, unique in the
//! process, which later stages key their own kept work by (stored revisions are only
//! unique within one database, and a process may open several).

use serde::de::DeserializeOwned;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use strato_common::bounded::BoundedMap;
use strato_common::hashing::DigestHasher;
use strato_domain::DocRev;

/// Documents whose texts share a [`sample_hash`], each with its decoded value.
type Bucket<T> = Vec<(Arc<[u8]>, Arc<T>)>;

/// Buckets by [`sample_hash`], which is a keyed digest already.
type Buckets<T> = BoundedMap<u64, Bucket<T>, BuildHasherDefault<DigestHasher>>;

/// Decoded documents of one type, by text and by stored revision.
pub struct DocCache<T> {
    /// Entries by [`sample_hash`] of their text; the full text decides a hit.
    map: Mutex<Buckets<T>>,
    /// Entries by database ([`crate::Db`]'s number) and the revision it stored with
    /// their row.
    revs: Mutex<BoundedMap<(u64, u64), Arc<T>, strato_common::hashing::FastHasher>>,
}

/// A hash of a document's length and its first and last 48 bytes: enough to spread
/// records (their text starts with their id and ends with what changes most), and
/// cheap on kilobyte documents, which hashing whole would cost a good part of the
/// parse it saves. Equal hashes are then told apart by comparing the whole text.
/// SipHash under a key drawn once per process, so no client can make its records'
/// texts share a bucket on purpose.
fn sample_hash(b: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut h = KEY.get_or_init(Default::default).build_hasher();
    b.len().hash(&mut h);
    b[..b.len().min(48)].hash(&mut h);
    b[b.len().saturating_sub(48)..].hash(&mut h);
    h.finish()
}

impl<T: Cached> DocCache<T> {
    pub fn new(capacity: usize) -> Self {
        DocCache {
            map: Mutex::new(BoundedMap::new(capacity)),
            revs: Mutex::new(BoundedMap::new(capacity)),
        }
    }

    /// The records stored with revisions `revs`, in their order, each if it was
    /// decoded and is still held.
    pub fn by_revs(&self, db: u64, revs: impl Iterator<Item = u64>) -> Vec<Option<Arc<T>>> {
        let mut held = self.revs.lock().unwrap_or_else(|p| p.into_inner());
        revs.map(|rev| held.get(&(db, rev)).cloned()).collect()
    }

    /// Decodes `text`, the document database `db` stored with revision `rev`, and
    /// keeps it by both.
    pub fn decode_rev(&self, db: u64, rev: u64, text: &[u8]) -> serde_json::Result<Arc<T>> {
        let mut value: T = serde_json::from_slice(text)?;
        value.set_rev(next_rev());
        let value = Arc::new(value);
        let mut revs = self.revs.lock().unwrap_or_else(|p| p.into_inner());
        revs.get_or_insert_with((db, rev), || value.clone());
        Ok(value)
    }

    /// The value `text` decodes to, shared with the cache (listings read many records
    /// and only look at them: sharing spares copying each).
    /// (The text is taken as bytes: a hit needs no UTF-8 check, a miss gets the one
    /// decoding does.)
    pub fn decode_shared(&self, text: &[u8]) -> serde_json::Result<Arc<T>> {
        let key = sample_hash(text);
        if let Some(bucket) = self.lock().get(&key) {
            if let Some((_, v)) = bucket.iter().find(|(t, _)| **t == *text) {
                return Ok(v.clone());
            }
        }
        let mut value: T = serde_json::from_slice(text)?;
        value.set_rev(next_rev());
        let value = Arc::new(value);
        self.lock()
            .get_or_insert_with(key, Vec::new)
            .push((Arc::from(text), value.clone()));
        Ok(value)
    }

    /// The value `text` decodes to, as a record of the caller's own.
    pub fn decode(&self, text: &[u8]) -> serde_json::Result<T> {
        self.decode_shared(text).map(|v| T::clone(&v))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets<T>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Record types read in bulk by listings, decoded through a process-wide cache.
pub trait Cached: DeserializeOwned + Clone + Send + 'static {
    fn cache() -> &'static DocCache<Self>;
    /// Marks the record with the revision of the text it was decoded from.
    fn set_rev(&mut self, rev: DocRev);
}

/// The next revision of a decoded record: process-wide, so revisions are never reused.
fn next_rev() -> DocRev {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    DocRev(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Entries per type: a fleet of 20,000 listed in full stays decoded.
const CAPACITY: usize = 40_000;

macro_rules! cached {
    ($($t:ty),*) => {$(
        impl Cached for $t {
            fn cache() -> &'static DocCache<Self> {
                static CACHE: OnceLock<DocCache<$t>> = OnceLock::new();
                CACHE.get_or_init(|| DocCache::new(CAPACITY))
            }
            fn set_rev(&mut self, rev: DocRev) {
                self.rev = rev;
            }
        }
    )*};
}
cached!(strato_domain::Instance, strato_domain::NetworkInterface);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, serde::Deserialize)]
    struct Doc {
        n: u32,
    }

    impl Cached for Doc {
        fn cache() -> &'static DocCache<Self> {
            static CACHE: OnceLock<DocCache<Doc>> = OnceLock::new();
            CACHE.get_or_init(|| DocCache::new(4))
        }
        fn set_rev(&mut self, _: DocRev) {}
    }

    #[derive(Clone, Debug, serde::Deserialize)]
    struct Rev {
        #[allow(dead_code)]
        n: u32,
        #[serde(skip)]
        rev: u64,
    }

    impl Cached for Rev {
        fn cache() -> &'static DocCache<Self> {
            static CACHE: OnceLock<DocCache<Rev>> = OnceLock::new();
            CACHE.get_or_init(|| DocCache::new(8))
        }
        fn set_rev(&mut self, rev: DocRev) {
            self.rev = rev.0;
        }
    }

    #[test]
    fn records_carry_the_revision_of_their_text() {
        let c = Rev::cache();
        let a1 = c.decode(br#"{"n":1}"#).unwrap().rev;
        let a2 = c.decode(br#"{"n":1}"#).unwrap().rev;
        let b = c.decode(br#"{"n":2}"#).unwrap().rev;
        assert!(a1 > 0);
        assert_eq!(a1, a2, "the same text is the same revision");
        assert_ne!(a1, b, "another text is another revision");
    }

    #[test]
    fn same_text_same_value_changed_text_decoded_anew() {
        let c: DocCache<Doc> = DocCache::new(2);
        assert_eq!(c.decode(br#"{"n":1}"#).unwrap(), Doc { n: 1 });
        assert_eq!(c.decode(br#"{"n":1}"#).unwrap(), Doc { n: 1 });
        assert_eq!(c.len(), 1);
        assert_eq!(c.decode(br#"{"n":2}"#).unwrap(), Doc { n: 2 });
        assert_eq!(c.len(), 2);
        // Full: bounded rather than growing.
        assert_eq!(c.decode(br#"{"n":3}"#).unwrap(), Doc { n: 3 });
        assert!(c.len() <= 2);
        assert!(c.decode(b"{").is_err());
    }

    #[test]
    fn texts_alike_at_both_ends_are_told_apart() {
        // Same length, same first and last 48 bytes: one hash, two entries.
        let pad = "x".repeat(60);
        let a = format!(r#"{{"n":1,"p":"{pad}a{pad}"}}"#);
        let b = format!(r#"{{"n":1,"p":"{pad}b{pad}"}}"#);
        #[derive(Clone, Debug, PartialEq, serde::Deserialize)]
        struct P {
            n: u32,
            p: String,
        }
        impl Cached for P {
            fn cache() -> &'static DocCache<Self> {
                static CACHE: OnceLock<DocCache<P>> = OnceLock::new();
                CACHE.get_or_init(|| DocCache::new(4))
            }
            fn set_rev(&mut self, _: DocRev) {}
        }
        let c: DocCache<P> = DocCache::new(10);
        assert_eq!(sample_hash(a.as_bytes()), sample_hash(b.as_bytes()));
        assert!(c.decode(a.as_bytes()).unwrap().p.contains('a'));
        assert!(c.decode(b.as_bytes()).unwrap().p.contains('b'));
        assert!(c.decode(a.as_bytes()).unwrap().p.contains('a'));
        // One bucket (one hash) holding both texts.
        assert_eq!(c.len(), 1);
    }
}
