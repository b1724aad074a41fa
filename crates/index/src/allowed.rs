//! Allow-list of document ids used to restrict retrieval (access control and
//! metadata filters are resolved to this upstream).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Hasher for integer ids: a single multiply-xorshift instead of SipHash,
/// because the set is probed once per candidate document inside the
/// retrieval hot loops. Ids come from our own store, not from attackers.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        x
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

pub(crate) type IdBuildHasher = BuildHasherDefault<IdHasher>;
pub(crate) type IdMap<V> = std::collections::HashMap<u64, V, IdBuildHasher>;

/// Set of document ids a query may return. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct AllowedDocs {
    ids: Arc<HashSet<u64, IdBuildHasher>>,
}

impl AllowedDocs {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn contains(&self, doc_id: u64) -> bool {
        self.ids.contains(&doc_id)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ids.iter().copied()
    }
}

impl FromIterator<u64> for AllowedDocs {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        Self {
            ids: Arc::new(iter.into_iter().collect()),
        }
    }
}
