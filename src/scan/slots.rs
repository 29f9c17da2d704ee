//! Totals by key (a host, a peer) while a worker counts access lines.
//!
//! Input: one key per call (`$host`, an `$upstream_addr` item), on the hot path. Output: the
//! key's slot, and at the end every key with its totals (`take`). Invariants: each key is
//! stored once in `index` (`$host` comes from the client, and a scanner sending a new one per
//! request should not cost twice); the few `recent` copies are short and fixed in number, so
//! memory grows with the distinct keys alone; which slot a key finds never depends on what
//! was looked up before (the cache only saves the hash).
//!
//! Why a cache of several keys: consecutive lines mostly share their host and peer, but not
//! always the same one. In the bench's shop log two hosts and three peers alternate, so a
//! one-key cache missed on a third of the lookups and paid the hash and the copy of the key;
//! and its compare was a `memcmp` call (together 2.3% of a plain-text run's instructions).
//! Here a lookup compares lengths, then each cached key of that length as at most four
//! 8-byte words, in line.

use rustc_hash::FxHashMap as HashMap;

/// Keys cached for lookups without hashing.
const WAYS: usize = 4;
/// The longest key kept in the cache (longer ones are always hashed).
const SHORT: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Recent {
    /// The key's length; `EMPTY` for no key.
    len: u8,
    bytes: [u8; SHORT],
    slot: u32,
}

const EMPTY: u8 = u8::MAX;

impl Default for Recent {
    fn default() -> Self {
        Recent { len: EMPTY, bytes: [0; SHORT], slot: 0 }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Slots<V> {
    values: Vec<V>,
    index: HashMap<Box<[u8]>, u32>,
    recent: [Recent; WAYS],
    /// The cache entry the next miss replaces (round robin).
    next: usize,
}

impl<V> Default for Slots<V> {
    fn default() -> Self {
        Slots { values: Vec::new(), index: HashMap::default(), recent: [Recent::default(); WAYS], next: 0 }
    }
}

impl<V: Default> Slots<V> {
    /// The totals of `key`, a new slot the first time it is seen.
    #[inline]
    pub(super) fn get(&mut self, key: &[u8]) -> &mut V {
        let n = key.len();
        let hit = if n <= SHORT {
            self.recent.iter().find(|r| r.len as usize == n && same(&r.bytes[..n], key))
        } else {
            None
        };
        let slot = match hit {
            Some(r) => r.slot as usize,
            None => self.miss(key),
        };
        &mut self.values[slot]
    }

    /// A key not in the cache: found (or added) by hash, then cached if short.
    #[inline(never)]
    fn miss(&mut self, key: &[u8]) -> usize {
        let slot = match self.index.get(key) {
            Some(&i) => i as usize,
            None => {
                self.values.push(V::default());
                self.index.insert(key.into(), (self.values.len() - 1) as u32);
                self.values.len() - 1
            }
        };
        if key.len() <= SHORT {
            let r = &mut self.recent[self.next];
            r.len = key.len() as u8;
            r.bytes[..key.len()].copy_from_slice(key);
            r.slot = slot as u32;
            self.next = (self.next + 1) % WAYS;
        }
        slot
    }

    /// Every key and its totals, emptied.
    pub(super) fn take(&mut self) -> Vec<(Box<[u8]>, V)> {
        self.recent = [Recent::default(); WAYS];
        let mut values: Vec<Option<V>> = std::mem::take(&mut self.values).into_iter().map(Some).collect();
        std::mem::take(&mut self.index)
            .into_iter()
            .filter_map(|(k, i)| Some((k, values.get_mut(i as usize)?.take()?)))
            .collect()
    }
}

/// `a == b` for two slices of the same length up to `SHORT`, as 8-byte (or 4-byte) words, the
/// last one overlapping: in line, where the slice compare called `memcmp`.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let w = |s: &[u8], i: usize| s.get(i..i + 8).map(|x| u64::from_le_bytes(x.try_into().unwrap_or([0; 8])));
        let mut i = 0;
        while i + 8 < n {
            if w(a, i) != w(b, i) {
                return false;
            }
            i += 8;
        }
        return w(a, n - 8) == w(b, n - 8);
    }
    if n >= 4 {
        let h = |s: &[u8], i: usize| s.get(i..i + 4).map(|x| u32::from_le_bytes(x.try_into().unwrap_or([0; 4])));
        return h(a, 0) == h(b, 0) && h(a, n - 4) == h(b, n - 4);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The word compare is the slice compare, at every length up to past `SHORT`, for
        /// equal slices and for slices that differ in one byte anywhere.
        #[test]
        fn same_is_slice_equality(a in proptest::collection::vec(any::<u8>(), 0..40), at in any::<usize>(), flip in 1u8..) {
            prop_assert!(same(&a, &a.clone()));
            if !a.is_empty() {
                let mut b = a.clone();
                let i = at % a.len();
                b[i] ^= flip;
                prop_assert!(!same(&a, &b), "differs at {} of {}", i, a.len());
            }
        }

        /// Any sequence of keys (few and many, short and long, repeated and alternating)
        /// counts what a plain map counts, and each key comes out once.
        #[test]
        fn slots_count_what_a_map_counts(keys in proptest::collection::vec((0usize..12, 0usize..48), 0..400)) {
            let mut s: Slots<u64> = Slots::default();
            let mut want: std::collections::BTreeMap<Vec<u8>, u64> = Default::default();
            for (k, len) in keys {
                // Twelve keys, some of one length differing only in their last byte.
                let mut key = vec![b'h'; len % 40];
                if let Some(last) = key.last_mut() {
                    *last = b'a' + k as u8;
                }
                *s.get(&key) += 1;
                *want.entry(key).or_default() += 1;
            }
            let got: std::collections::BTreeMap<Vec<u8>, u64> = s.take().into_iter().map(|(k, v)| (k.into_vec(), v)).collect();
            prop_assert_eq!(got, want);
            prop_assert!(s.take().is_empty());
        }
    }
}
