//! Bounded selection of the k best candidates with a min-heap, so a scan over
//! n items costs O(n log k) and never materialises all n scores.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A candidate; `key` breaks score ties (the chunk id) and `item` is an
/// arbitrary payload (slot index, doc id, ...).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<T> {
    pub score: f32,
    pub key: u64,
    pub item: T,
}

/// Heap order: the *worst* candidate is the greatest, so the heap top is the
/// one to evict.
impl<T> Ord for Candidate<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.key.cmp(&other.key))
    }
}
impl<T> PartialOrd for Candidate<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> PartialEq for Candidate<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Candidate<T> {}

pub(crate) struct TopK<T> {
    k: usize,
    heap: BinaryHeap<Candidate<T>>,
}

impl<T> TopK<T> {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k.min(4096) + 1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Score below which nothing can enter any more (`None` while not full).
    /// Equal scores may still enter through the key tie-break.
    #[inline]
    pub(crate) fn threshold(&self) -> Option<f32> {
        if self.heap.len() >= self.k {
            self.heap.peek().map(|c| c.score)
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, score: f32, key: u64, item: T) {
        if self.k == 0 {
            return;
        }
        let cand = Candidate { score, key, item };
        if self.heap.len() < self.k {
            self.heap.push(cand);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && cand < *worst
        {
            *worst = cand;
        }
    }

    pub(crate) fn merge(&mut self, other: TopK<T>) {
        for c in other.heap {
            self.push(c.score, c.key, c.item);
        }
    }

    /// Best first.
    pub(crate) fn into_sorted_vec(self) -> Vec<Candidate<T>> {
        self.heap.into_sorted_vec()
    }
}
