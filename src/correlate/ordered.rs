//! An ordered set of (time, index) candidates for the joins (`join::nearest`): a sorted
//! vector while small, a B-tree once large.
//!
//! Input: inserts, removals and range queries of `(Ts, usize)` keys. Output: the keys in
//! order, as `BTreeSet` gives them. Invariants: the vector is sorted without duplicates and
//! never holds more than `SMALL` keys (a set that grows past it becomes a B-tree and stays
//! one), so every operation stays O(log n) plus at most `SMALL` moves; an emptied vector
//! frees its allocation.
//!
//! Why: the request join keeps three sets per (client, request line) key, and most keys hold
//! one or two requests. A B-tree allocates a node of eleven keys (about 200 bytes) for its
//! first one, and an emptied B-tree keeps it: on the 8 GiB bench corpus the join's sets
//! were 137 MiB at its end, the peak of the run's anonymous memory.

use crate::model::Ts;
use std::collections::BTreeSet;
use std::ops::{Bound, RangeBounds};

type Key = (Ts, usize);

/// Keys kept in a vector up to this many.
const SMALL: usize = 32;

#[derive(Clone, Debug)]
pub(crate) enum Ordered {
    Small(Vec<Key>),
    Large(BTreeSet<Key>),
}

impl Default for Ordered {
    fn default() -> Self {
        Ordered::Small(Vec::new())
    }
}

impl Ordered {
    pub(crate) fn insert(&mut self, k: Key) -> bool {
        match self {
            Ordered::Small(v) => match v.binary_search(&k) {
                Ok(_) => false,
                Err(i) => {
                    if v.len() >= SMALL {
                        let mut b: BTreeSet<Key> = v.drain(..).collect();
                        b.insert(k);
                        *self = Ordered::Large(b);
                    } else {
                        // A set's first key takes 16 bytes, not a vector's default four slots.
                        if v.capacity() == 0 {
                            v.reserve_exact(1);
                        }
                        v.insert(i, k);
                    }
                    true
                }
            },
            Ordered::Large(b) => b.insert(k),
        }
    }

    pub(crate) fn remove(&mut self, k: &Key) -> bool {
        match self {
            Ordered::Small(v) => match v.binary_search(k) {
                Ok(i) => {
                    v.remove(i);
                    free_if_empty(v);
                    true
                }
                Err(_) => false,
            },
            Ordered::Large(b) => b.remove(k),
        }
    }

    pub(crate) fn first(&self) -> Option<&Key> {
        match self {
            Ordered::Small(v) => v.first(),
            Ordered::Large(b) => b.first(),
        }
    }

    pub(crate) fn pop_first(&mut self) -> Option<Key> {
        match self {
            Ordered::Small(v) => {
                let k = (!v.is_empty()).then(|| v.remove(0));
                free_if_empty(v);
                k
            }
            Ordered::Large(b) => b.pop_first(),
        }
    }

    /// The keys within `r`, in order (either way). Unlike `BTreeSet::range`, a range whose
    /// start is past its end is empty rather than a panic.
    pub(crate) fn range<R: RangeBounds<Key>>(&self, r: R) -> Range<'_> {
        match self {
            Ordered::Small(v) => {
                let start = match r.start_bound() {
                    Bound::Included(x) => v.partition_point(|e| e < x),
                    Bound::Excluded(x) => v.partition_point(|e| e <= x),
                    Bound::Unbounded => 0,
                };
                let end = match r.end_bound() {
                    Bound::Included(x) => v.partition_point(|e| e <= x),
                    Bound::Excluded(x) => v.partition_point(|e| e < x),
                    Bound::Unbounded => v.len(),
                };
                Range::Small(v[start.min(end)..end].iter())
            }
            Ordered::Large(b) => {
                let empty = match (r.start_bound(), r.end_bound()) {
                    (Bound::Included(a) | Bound::Excluded(a), Bound::Included(z) | Bound::Excluded(z)) => {
                        a > z
                            || (a == z
                                && matches!((r.start_bound(), r.end_bound()), (Bound::Excluded(_), Bound::Excluded(_))))
                    }
                    _ => false,
                };
                if empty {
                    Range::Small([].iter())
                } else {
                    Range::Large(b.range(r))
                }
            }
        }
    }
}

fn free_if_empty(v: &mut Vec<Key>) {
    if v.is_empty() {
        *v = Vec::new();
    }
}

impl FromIterator<Key> for Ordered {
    fn from_iter<I: IntoIterator<Item = Key>>(iter: I) -> Self {
        let mut s = Ordered::default();
        for k in iter {
            s.insert(k);
        }
        s
    }
}

/// `Ordered::range`'s iterator.
pub(crate) enum Range<'a> {
    Small(std::slice::Iter<'a, Key>),
    Large(std::collections::btree_set::Range<'a, Key>),
}

impl<'a> Iterator for Range<'a> {
    type Item = &'a Key;
    fn next(&mut self) -> Option<&'a Key> {
        match self {
            Range::Small(i) => i.next(),
            Range::Large(i) => i.next(),
        }
    }
}

impl DoubleEndedIterator for Range<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Range::Small(i) => i.next_back(),
            Range::Large(i) => i.next_back(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence (no dependency for a test).
    fn lcg(x: &mut u64) -> u64 {
        *x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *x >> 33
    }

    /// Random inserts, removals, pops and ranges of both directions against `BTreeSet`,
    /// through the switch from vector to B-tree.
    #[test]
    fn behaves_as_a_btreeset() {
        let mut seed = 7;
        for round in 0..40 {
            let (mut ours, mut std) = (Ordered::default(), BTreeSet::new());
            let span = 4 + round * 3;
            for _ in 0..400 {
                let k = ((lcg(&mut seed) % span) as Ts, (lcg(&mut seed) % 4) as usize);
                match lcg(&mut seed) % 5 {
                    0 | 1 => assert_eq!(ours.insert(k), std.insert(k)),
                    2 => assert_eq!(ours.remove(&k), std.remove(&k)),
                    3 => assert_eq!(ours.pop_first(), std.pop_first()),
                    _ => {}
                }
                assert_eq!(ours.first(), std.first());
                let a = ((lcg(&mut seed) % span) as Ts, (lcg(&mut seed) % 4) as usize);
                let z = ((lcg(&mut seed) % span) as Ts, (lcg(&mut seed) % 4) as usize);
                let both = |o: Range, s: Vec<&Key>| assert_eq!(o.collect::<Vec<_>>(), s);
                if a <= z {
                    both(ours.range(a..=z), std.range(a..=z).collect());
                    both(ours.range(a..z), if a < z { std.range(a..z).collect() } else { vec![] });
                    assert_eq!(ours.range(a..=z).rev().collect::<Vec<_>>(), std.range(a..=z).rev().collect::<Vec<_>>());
                } else {
                    assert_eq!(ours.range(a..=z).count(), 0);
                }
                both(ours.range(a..), std.range(a..).collect());
                both(ours.range(..z), std.range(..z).collect());
            }
            assert_eq!(ours.range(..).copied().collect::<Vec<_>>(), std.iter().copied().collect::<Vec<_>>());
        }
    }

    #[test]
    fn large_sets_become_btrees_and_emptied_vectors_free_their_room() {
        let mut s: Ordered = (0..SMALL as Ts).map(|t| (t, 0)).collect();
        assert!(matches!(s, Ordered::Small(_)));
        s.insert((SMALL as Ts, 0));
        assert!(matches!(s, Ordered::Large(_)));
        let mut v = Ordered::default();
        v.insert((5, 1));
        assert!(matches!(&v, Ordered::Small(x) if x.capacity() == 1));
        v.pop_first();
        assert!(matches!(&v, Ordered::Small(x) if x.capacity() == 0));
    }
}
