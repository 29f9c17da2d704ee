//! Time-indexed counter storage: per-second count rows and per-minute latency histograms.
//!
//! Input: rows added by second (or minute) in any order, and other stores merged in.
//! Output: ordered iteration, sums over a range of seconds, windowing.
//! Invariants: every operation is an addition, so the result is the same whatever the order
//! of adds and merges (the thread count cannot change a report); iteration is always in
//! time order; equality compares contents, not layout.
//!
//! Why not a hash map keyed by second: one entry cost 56 bytes plus the table's slack, the
//! table doubled when it grew (60 MB for the 4 days of the 2 GiB bench corpus, measured with
//! heaptrack), and every report then sorted it. Here seconds live in blocks of `BLOCK`
//! seconds, ordered in a `BTreeMap`: a block starts sparse (sorted offset-row pairs, so
//! scattered stamps from hostile input cost one pair each) and turns into a dense array
//! once a quarter full, where a second costs its 48-byte row and nothing else.

use std::collections::BTreeMap;

use super::layout::col;

/// Seconds per block.
const BLOCK: i64 = 1024;
/// A sparse block turns dense past this many seconds (its pairs then take a quarter of the
/// dense array).
const SPARSE_MAX: usize = (BLOCK / 4) as usize;

pub type Row = [u32; col::N];

#[derive(Clone, Debug)]
enum SecBlock {
    /// (offset in block, row), sorted by offset.
    Sparse(Vec<(u16, Row)>),
    /// `BLOCK` rows; a second with `row[TOTAL] == 0` had no request.
    Dense(Box<[Row]>),
}

fn add_row(a: &mut Row, b: &Row) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.saturating_add(*y);
    }
}

impl SecBlock {
    fn add(&mut self, off: u16, row: &Row) {
        match self {
            SecBlock::Dense(d) => add_row(&mut d[off as usize], row),
            SecBlock::Sparse(v) => {
                // Lines of one chunk come in time order: appending is the common case.
                match v.last_mut() {
                    Some(l) if l.0 == off => add_row(&mut l.1, row),
                    Some(l) if l.0 < off => v.push((off, *row)),
                    None => v.push((off, *row)),
                    _ => match v.binary_search_by_key(&off, |e| e.0) {
                        Ok(i) => add_row(&mut v[i].1, row),
                        Err(i) => v.insert(i, (off, *row)),
                    },
                }
                if v.len() > SPARSE_MAX {
                    self.densify();
                }
            }
        }
    }

    fn densify(&mut self) {
        if let SecBlock::Sparse(v) = self {
            let mut d = vec![[0u32; col::N]; BLOCK as usize].into_boxed_slice();
            for (o, r) in v.iter() {
                add_row(&mut d[*o as usize], r);
            }
            *self = SecBlock::Dense(d);
        }
    }

    fn merge(&mut self, o: SecBlock) {
        match o {
            SecBlock::Sparse(v) => {
                for (off, r) in v {
                    self.add(off, &r);
                }
            }
            SecBlock::Dense(d) => {
                if let SecBlock::Sparse(_) = self {
                    let mine = std::mem::replace(self, SecBlock::Dense(d));
                    self.merge(mine);
                } else if let SecBlock::Dense(m) = self {
                    for (a, b) in m.iter_mut().zip(d.iter()) {
                        add_row(a, b);
                    }
                }
            }
        }
    }
}

/// The seconds with traffic of a run of blocks, as (second, row), in order. A concrete
/// iterator rather than a boxed one per block: the counter file, the timeline and the hourly
/// profile walk every second of the run through it.
struct Rows<'a, I> {
    blocks: I,
    base: i64,
    sparse: std::slice::Iter<'a, (u16, Row)>,
    dense: std::iter::Enumerate<std::slice::Iter<'a, Row>>,
}

impl<'a, I: Iterator<Item = (&'a i64, &'a SecBlock)>> Rows<'a, I> {
    fn new(blocks: I) -> Self {
        Rows { blocks, base: 0, sparse: [].iter(), dense: [].iter().enumerate() }
    }
}

impl<'a, I: Iterator<Item = (&'a i64, &'a SecBlock)>> Iterator for Rows<'a, I> {
    type Item = (i64, &'a Row);

    #[inline]
    fn next(&mut self) -> Option<(i64, &'a Row)> {
        loop {
            if let Some((o, r)) = self.sparse.next() {
                return Some((self.base + *o as i64, r));
            }
            // A dense block's seconds with a zero total had no request.
            for (o, r) in self.dense.by_ref() {
                if r[col::TOTAL] > 0 {
                    return Some((self.base + o as i64, r));
                }
            }
            let (b, blk) = self.blocks.next()?;
            self.base = b * BLOCK;
            match blk {
                SecBlock::Sparse(v) => self.sparse = v.iter(),
                SecBlock::Dense(d) => self.dense = d.iter().enumerate(),
            }
        }
    }
}

/// The block of seconds a worker is counting (`Traffic::count`): a request adds to its
/// second's row in place, and the block's rows go into the worker's `PerSec` together when
/// the count moves to another block (`flush`). `PerSec::add` each time the second changed (a
/// map search and a row copy, 298 instructions) was 3% of the instructions on the 256 MB
/// noisy corpus, whose logs change their second every other line (0.5% at 2 GiB, a dozen
/// lines a second). Only the rows between the first and last touched are added and cleared,
/// so a count that jumps between far seconds (a broken clock) costs what it did.
#[derive(Clone, Debug)]
pub struct SecBuf {
    /// The second last counted and its row's offset: most lines are in the second before
    /// (`i64::MIN`, no second a stamp gives, when none since the last flush).
    sec: i64,
    off: usize,
    block: i64,
    /// `BLOCK` rows once a request was counted.
    rows: Vec<Row>,
    /// The rows touched since the last flush: `lo..hi` (`lo` = `BLOCK` when none).
    lo: usize,
    hi: usize,
}

impl Default for SecBuf {
    fn default() -> Self {
        SecBuf { sec: i64::MIN, off: 0, block: 0, rows: Vec::new(), lo: BLOCK as usize, hi: 0 }
    }
}

impl SecBuf {
    /// The row of second `sec`, the block held before it added to `into` if `sec` is in
    /// another one.
    #[inline]
    pub fn row(&mut self, sec: i64, into: &mut PerSec) -> &mut Row {
        if sec != self.sec {
            self.enter(sec, into);
        }
        &mut self.rows[self.off]
    }

    /// Make `sec` the current second (out of line: once a second, not once a line).
    #[inline(never)]
    fn enter(&mut self, sec: i64, into: &mut PerSec) {
        let (b, off) = (sec.div_euclid(BLOCK), sec.rem_euclid(BLOCK) as usize);
        if b != self.block || self.rows.is_empty() {
            self.flush(into);
            self.block = b;
            if self.rows.is_empty() {
                self.rows = vec![[0; col::N]; BLOCK as usize];
            }
        }
        self.lo = self.lo.min(off);
        self.hi = self.hi.max(off + 1);
        (self.sec, self.off) = (sec, off);
    }

    /// Add the touched rows to `into` and clear them (or give them up: `PerSec::add_block`).
    pub fn flush(&mut self, into: &mut PerSec) {
        if self.lo < self.hi {
            into.add_block(self.block, self.lo, self.hi, &mut self.rows);
            if let Some(touched) = self.rows.get_mut(self.lo..self.hi) {
                touched.fill([0; col::N]);
            }
        }
        (self.lo, self.hi, self.sec) = (BLOCK as usize, 0, i64::MIN);
    }
}

/// Request counts per second (`col` columns), for the seconds that had a request.
#[derive(Clone, Debug, Default)]
pub struct PerSec {
    blocks: BTreeMap<i64, SecBlock>,
}

impl PartialEq for PerSec {
    fn eq(&self, o: &PerSec) -> bool {
        self.iter().eq(o.iter())
    }
}

impl PerSec {
    /// Add a row to second `sec` (rows with a zero total are not kept: the second had no
    /// request).
    pub fn add(&mut self, sec: i64, row: &Row) {
        if row[col::TOTAL] == 0 {
            return;
        }
        let (b, off) = (sec.div_euclid(BLOCK), sec.rem_euclid(BLOCK) as u16);
        self.blocks.entry(b).or_insert_with(|| SecBlock::Sparse(Vec::new())).add(off, row);
    }

    /// Add block `b`'s rows (`SecBuf`: `BLOCK` of them, zero outside `lo..hi`): one search
    /// of the map for them all. A new block with more seconds than a sparse one keeps takes
    /// the rows themselves (leaving `rows` empty), a dense one adds them row by row.
    fn add_block(&mut self, b: i64, lo: usize, hi: usize, rows: &mut Vec<Row>) {
        let kept = rows[lo..hi].iter().filter(|r| r[col::TOTAL] > 0).count();
        if kept == 0 {
            return;
        }
        match self.blocks.entry(b) {
            std::collections::btree_map::Entry::Vacant(e) if kept > SPARSE_MAX => {
                e.insert(SecBlock::Dense(std::mem::take(rows).into_boxed_slice()));
            }
            e => {
                let blk = e.or_insert_with(|| SecBlock::Sparse(Vec::with_capacity(kept)));
                if kept > SPARSE_MAX {
                    blk.densify();
                }
                match blk {
                    SecBlock::Dense(d) => d[lo..hi].iter_mut().zip(&rows[lo..hi]).for_each(|(d, r)| add_row(d, r)),
                    _ => {
                        for (i, r) in rows[lo..hi].iter().enumerate().filter(|x| x.1[col::TOTAL] > 0) {
                            blk.add((lo + i) as u16, r);
                        }
                    }
                }
            }
        }
    }

    pub fn merge(&mut self, o: PerSec) {
        for (k, b) in o.blocks {
            match self.blocks.entry(k) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(b);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(b),
            }
        }
    }

    /// (second, row) in time order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &Row)> + '_ {
        Rows::new(self.blocks.iter())
    }

    /// (second, row) for seconds in `[from_s, to_s]`, in time order.
    pub fn range(&self, from_s: i64, to_s: i64) -> impl Iterator<Item = (i64, &Row)> + '_ {
        let (b0, b1) = (from_s.div_euclid(BLOCK), to_s.div_euclid(BLOCK));
        let blocks = if b0 <= b1 { Some(self.blocks.range(b0..=b1)) } else { None };
        Rows::new(blocks.into_iter().flatten()).filter(move |(s, _)| *s >= from_s && *s <= to_s)
    }

    pub fn get(&self, sec: i64) -> Option<&Row> {
        self.range(sec, sec).next().map(|x| x.1)
    }

    /// Blocks held (a measure of size for merging the smaller into the larger).
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Seconds with traffic.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn first(&self) -> Option<i64> {
        self.iter().next().map(|x| x.0)
    }

    pub fn last(&self) -> Option<i64> {
        self.blocks.iter().rev().find_map(|(b, blk)| Rows::new(std::iter::once((b, blk))).last().map(|x| x.0))
    }

    /// Sum of column `c` over the whole store.
    pub fn total(&self, c: usize) -> u64 {
        self.iter().map(|(_, r)| r[c] as u64).sum()
    }

    /// Sum of column `c` over `[from_s, to_s]` and how many of those seconds had traffic.
    pub fn sum(&self, c: usize, from_s: i64, to_s: i64) -> (u64, i64) {
        // Only the rows of the range are read (`range` walks whole blocks: the background
        // estimate sums a window for every burst, 119 M instructions over the plain bench
        // file's 4 days that way).
        let (mut n, mut k) = (0u64, 0i64);
        if from_s > to_s {
            return (n, k);
        }
        let (b0, b1) = (from_s.div_euclid(BLOCK), to_s.div_euclid(BLOCK));
        for (&b, blk) in self.blocks.range(b0..=b1) {
            let lo = if b == b0 { from_s.rem_euclid(BLOCK) as usize } else { 0 };
            let hi = if b == b1 { to_s.rem_euclid(BLOCK) as usize } else { BLOCK as usize - 1 };
            let mut add = |r: &Row| {
                n += r[c] as u64;
                k += 1;
            };
            match blk {
                SecBlock::Dense(d) => d[lo..=hi].iter().filter(|r| r[col::TOTAL] > 0).for_each(add),
                SecBlock::Sparse(v) => {
                    v.iter().filter(|(o, _)| (lo..=hi).contains(&(*o as usize))).for_each(|(_, r)| add(r))
                }
            }
        }
        (n, k)
    }

    /// Keep only seconds in `[from_s, to_s)`.
    pub fn retain_range(&mut self, from_s: i64, to_s: i64) {
        let mut out = PerSec::default();
        for (s, r) in self.range(from_s, to_s.saturating_sub(1)) {
            out.add(s, r);
        }
        *self = out;
    }
}

/// One minute's latency histograms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MinuteHist {
    /// (metric * NBINS + bin, count), sorted by the first.
    pub bins: Vec<(u16, u32)>,
    /// Exact maximum (ms) per metric; meaningful where the metric has bins.
    pub max: [u32; 2],
}

impl MinuteHist {
    fn merge(&mut self, o: &MinuteHist) {
        for (m, x) in self.max.iter_mut().zip(o.max) {
            *m = (*m).max(x);
        }
        if self.bins.is_empty() {
            self.bins.clone_from(&o.bins);
            return;
        }
        // Merge two sorted lists.
        let a = std::mem::take(&mut self.bins);
        let mut out = Vec::with_capacity(a.len().max(o.bins.len()));
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < o.bins.len() {
            match (a.get(i), o.bins.get(j)) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    out.push((x.0, x.1.saturating_add(y.1)));
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    out.push(*x);
                    i += 1;
                }
                (Some(x), None) => {
                    out.push(*x);
                    i += 1;
                }
                (_, Some(y)) => {
                    out.push(*y);
                    j += 1;
                }
                (None, None) => unreachable!("loop condition"),
            }
        }
        self.bins = out;
    }
}

/// Latency histograms per minute (minute = floor(unix seconds / 60)).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerMinute {
    pub minutes: BTreeMap<i64, MinuteHist>,
}

impl PerMinute {
    /// Add one minute's histograms (`bins` sorted by index).
    pub fn add(&mut self, minute: i64, h: MinuteHist) {
        match self.minutes.entry(minute) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(h);
            }
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(&h),
        }
    }

    pub fn merge(&mut self, o: PerMinute) {
        for (m, h) in o.minutes {
            self.add(m, h);
        }
    }

    /// Keep only minutes in `[from_min, to_min)`.
    pub fn retain_range(&mut self, from_min: i64, to_min: i64) {
        self.minutes.retain(|m, _| *m >= from_min && *m < to_min);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row whose status column depends on the second.
    fn row_at(s: i64) -> Row {
        let mut r = [0; col::N];
        r[col::TOTAL] = 1;
        r[match s.rem_euclid(97) {
            0 => col::S502,
            1..=3 => col::S499,
            _ => col::S2XX,
        }] = 1;
        r
    }

    #[test]
    fn any_order_and_split_gives_the_same_store() {
        // Seconds dense in one block (turns dense), scattered in others (stays sparse),
        // negative seconds, and duplicates.
        let secs: Vec<i64> = (0..3000).map(|i| (i * 7919) % 2500).chain([-5, -1025, 10_000_000, 3, 3]).collect();
        let mut all = PerSec::default();
        for s in &secs {
            all.add(*s, &row_at(*s));
        }
        let (mut a, mut b) = (PerSec::default(), PerSec::default());
        for (i, s) in secs.iter().rev().enumerate() {
            if i % 3 == 0 { &mut a } else { &mut b }.add(*s, &row_at(*s));
        }
        b.merge(a);
        assert_eq!(all, b);
        for c in [col::S2XX, col::S499, col::S502, col::S504] {
            let want = secs.iter().filter(|s| row_at(**s)[c] == 1).count() as u64;
            assert_eq!(b.total(c), want, "column {c}");
        }
        assert_eq!(all.get(97), Some(&row_at(97)));
        assert_eq!(all.get(2_600), None);
        assert_eq!(all.total(col::TOTAL), secs.len() as u64);
        let got: Vec<i64> = all.iter().map(|x| x.0).collect();
        let mut want = secs.clone();
        want.sort();
        want.dedup();
        assert_eq!(got, want);
        assert_eq!(all.first(), Some(-1025));
        assert_eq!(all.last(), Some(10_000_000));
        // [0, 9]: every second present (7919 is coprime with 2500).
        let n = secs.iter().filter(|s| (0..=9).contains(*s)).count() as u64;
        assert!(n >= 12);
        assert_eq!(all.sum(col::TOTAL, 0, 9), (n, 10));
        let mut w = all.clone();
        w.retain_range(0, 10);
        assert_eq!(w.len(), 10);
        assert_eq!(PerSec::default().first(), None);
        assert!(PerSec::default().is_empty());
    }

    /// Counting through a `SecBuf` (a block's rows at a time, taken whole by a new dense
    /// block, added to an existing dense or sparse one) keeps what `PerSec::add` of each
    /// request keeps: seconds in order with several a second, jumps back into blocks already
    /// dense and already sparse, a block only partly touched, seconds far apart in turn (a
    /// broken clock) and negative ones.
    #[test]
    fn buffered_counts_equal_direct_adds() {
        let secs: Vec<i64> = (0..6000)
            .map(|i| i / 2)
            .chain(500..700)
            .chain((0..50).map(|i| 10_000 + i * 37))
            .chain([10_005, 10_005, 2_000])
            .chain((0..40).flat_map(|i| [1_000_000_000 + i, -5_000 - i]))
            .chain((3_000..4_000).filter(|s| s % 3 != 0))
            .collect();
        let mut direct = PerSec::default();
        let (mut buf, mut via) = (SecBuf::default(), PerSec::default());
        for s in &secs {
            direct.add(*s, &row_at(*s));
            add_row(buf.row(*s, &mut via), &row_at(*s));
        }
        buf.flush(&mut via);
        assert_eq!(direct, via);
        assert_eq!(via.total(col::TOTAL), secs.len() as u64);
        assert_eq!(via.get(600).map(|r| r[col::TOTAL]), Some(3));
        assert_eq!(via.get(10_005).map(|r| r[col::TOTAL]), Some(2));
        // A flush with nothing counted since adds nothing.
        buf.flush(&mut via);
        assert_eq!(direct, via);
    }

    /// A window's sum reads only its rows, in dense and sparse blocks, across block edges
    /// and at negative seconds: the same as summing what `range` yields.
    #[test]
    fn window_sums_match_the_rows_in_the_window() {
        let mut p = PerSec::default();
        // Block 0 dense (every second up to 1023), block 1 sparse, block -1 sparse, block 9
        // dense from a second pass.
        for s in (0..1024).chain((1024..2048).step_by(37)).chain([-1, -700, -1024]).chain(9216..9600) {
            p.add(s, &row_at(s));
        }
        let windows =
            [(0, 0), (5, 900), (1000, 1100), (-800, 40), (-1025, -1), (1023, 1024), (2000, 9300), (9599, 20_000)];
        for (a, z) in windows.into_iter().chain([(10, 3)]) {
            for c in [col::TOTAL, col::S502, col::S499] {
                let want = p.range(a, z).fold((0u64, 0i64), |(n, k), (_, r)| (n + r[c] as u64, k + 1));
                assert_eq!(p.sum(c, a, z), want, "[{a}, {z}] column {c}");
            }
        }
        assert_eq!(p.sum(col::TOTAL, 5, 900), (896, 896));
        assert_eq!(p.sum(col::TOTAL, 10, 3), (0, 0));
    }

    #[test]
    fn minute_histograms_merge_sorted() {
        let mut p = PerMinute::default();
        p.add(5, MinuteHist { bins: vec![(1, 2), (7, 1)], max: [9, 0] });
        p.add(5, MinuteHist { bins: vec![(0, 1), (7, 3), (500, 1)], max: [3, 40] });
        assert_eq!(p.minutes[&5], MinuteHist { bins: vec![(0, 1), (1, 2), (7, 4), (500, 1)], max: [9, 40] });
        p.retain_range(6, 7);
        assert!(p.minutes.is_empty());
    }
}
