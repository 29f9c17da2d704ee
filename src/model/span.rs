//! The time range a run covers: the dense range of its stamps, apart from stamps far from
//! the rest (a broken clock, a hand-edited or corrupt year).
//!
//! Input: stamps with a weight (lines, requests), as hourly cells. Output: `core`, the range
//! the timeline covers. Invariants: the cost is linear in the number of occupied hours (never
//! in the span between the earliest and the latest stamp); the result depends only on the
//! cells, not on the order they were added in.
//!
//! The rule (README, Time): start at the hour holding the weighted median stamp and grow the
//! range one occupied hour at a time, always across the smaller of the two gaps at its ends,
//! while that gap is at most `max(MIN_GAP_MS, the range's length so far)`. A stamp is *far
//! off* when it lies beyond a gap longer than both a day and the data on its side: one line
//! stamped 1970 or 9999 beside a day of logs, or a host whose clock was a year out. A week of
//! logs with a quiet weekend, or a month of rotated files, stays one range.

use super::time::Ts;
use std::collections::BTreeMap;

pub const HOUR_MS: Ts = 3_600_000;
/// A gap of at most this is never far off, however short the data beside it.
pub const MIN_GAP_MS: Ts = 24 * HOUR_MS;

/// Stamps of one hour: how many, and the earliest and latest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourCell {
    pub weight: u64,
    pub min: Ts,
    pub max: Ts,
}

impl HourCell {
    pub fn add(&mut self, o: &HourCell) {
        self.weight += o.weight;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// Stamps per hour.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    hours: BTreeMap<i64, HourCell>,
}

/// The hour a stamp falls in.
pub fn hour_of(ts: Ts) -> i64 {
    ts.div_euclid(HOUR_MS)
}

impl Profile {
    /// `weight` stamps at `ts`.
    pub fn add(&mut self, ts: Ts, weight: u64) {
        self.add_cell(hour_of(ts), HourCell { weight, min: ts, max: ts });
    }

    /// A cell of hour `hour` (its stamps must lie in that hour).
    pub fn add_cell(&mut self, hour: i64, c: HourCell) {
        self.hours.entry(hour).and_modify(|x| x.add(&c)).or_insert(c);
    }

    pub fn merge(&mut self, o: &Profile) {
        for (h, c) in &o.hours {
            self.add_cell(*h, *c);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// The dense range of the stamps (see the module doc), or `None` without stamps.
    pub fn core(&self) -> Option<(Ts, Ts)> {
        let cells: Vec<&HourCell> = self.hours.values().collect();
        let total: u64 = cells.iter().map(|c| c.weight).sum();
        if cells.is_empty() {
            return None;
        }
        // The cell of the weighted median (the first whose cumulative weight reaches half).
        let half = total.div_ceil(2).max(1);
        let mut acc = 0;
        let mid = cells
            .iter()
            .position(|c| {
                acc += c.weight;
                acc >= half
            })
            .unwrap_or(0);
        let (mut lo, mut hi) = (mid, mid);
        loop {
            let left = (lo > 0).then(|| cells[lo].min - cells[lo - 1].max);
            let right = (hi + 1 < cells.len()).then(|| cells[hi + 1].min - cells[hi].max);
            let allow = MIN_GAP_MS.max(cells[hi].max - cells[lo].min);
            // The smaller gap first; on a tie the earlier side (deterministic).
            let go_left = match (left, right) {
                (Some(l), Some(r)) => l <= r,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let gap = if go_left { left } else { right }.unwrap_or(Ts::MAX);
            if gap > allow {
                break;
            }
            if go_left {
                lo -= 1;
            } else {
                hi += 1;
            }
        }
        Some((cells[lo].min, cells[hi].max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Ts = 24 * HOUR_MS;
    /// 2026-11-20T14:00:00Z.
    const T0: Ts = 1_795_183_200_000;

    fn profile(stamps: &[(Ts, u64)]) -> Profile {
        let mut p = Profile::default();
        for &(t, w) in stamps {
            p.add(t, w);
        }
        p
    }

    #[test]
    fn a_stamp_far_from_the_rest_is_left_out() {
        let mut s: Vec<(Ts, u64)> = (0..100).map(|i| (T0 + i * 1000, 1)).collect();
        s.push((1000, 1)); // 1970-01-01T00:00:01Z
        s.push((253_402_300_799_000, 1)); // 9999-12-31T23:59:59Z
        assert_eq!(profile(&s).core(), Some((T0, T0 + 99_000)));
        // A whole host a year out, with less data than the rest.
        let mut s2: Vec<(Ts, u64)> = (0..48).map(|h| (T0 + h * HOUR_MS, 100)).collect();
        s2.extend((0..24).map(|h| (T0 - 365 * DAY + h * HOUR_MS, 10)));
        assert_eq!(profile(&s2).core(), Some((T0, T0 + 47 * HOUR_MS)));
    }

    #[test]
    fn quiet_stretches_inside_the_data_are_kept() {
        // Five busy days, a 60-hour weekend without a line, two more days.
        let mut s: Vec<(Ts, u64)> = (0..5 * 24).map(|h| (T0 + h * HOUR_MS, 50)).collect();
        s.extend((0..48).map(|h| (T0 + 5 * DAY + 60 * HOUR_MS + h * HOUR_MS, 50)));
        assert_eq!(profile(&s).core(), Some((T0, T0 + 5 * DAY + 60 * HOUR_MS + 47 * HOUR_MS)));
        // A month of rotated files, one line a day, and a busy last day.
        let mut m: Vec<(Ts, u64)> = (0..30).map(|d| (T0 - d * DAY, 1)).collect();
        m.push((T0 + 3_600, 10_000));
        assert_eq!(profile(&m).core(), Some((T0 - 29 * DAY, T0 + 3_600)));
        // A gap of a day beside an hour of data is not far off.
        assert_eq!(profile(&[(T0, 5), (T0 + DAY, 1)]).core(), Some((T0, T0 + DAY)));
    }

    #[test]
    fn order_and_splitting_do_not_matter() {
        let s: Vec<(Ts, u64)> =
            (0..500).map(|i| ((T0 + (i * 7919 % 400) * 60_000), 1 + (i % 3) as u64)).chain([(5, 2)]).collect();
        let whole = profile(&s);
        let (mut a, mut b) = (Profile::default(), Profile::default());
        for (i, &(t, w)) in s.iter().rev().enumerate() {
            if i % 2 == 0 { &mut a } else { &mut b }.add(t, w);
        }
        a.merge(&b);
        assert_eq!(a, whole);
        assert_eq!(a.core(), whole.core());
        assert_eq!(Profile::default().core(), None);
    }
}
