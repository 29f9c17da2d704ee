//! What the scan saw of time, beside the rows: per source, the time ranges of its nginx error
//! and FPM records (`KindRanges`); per access-log UTC offset, how many lines and when
//! (`OffsetSeen`).
//!
//! Input: instants and offsets from the readers (`cursor`, `records`). Output: values merged
//! across chunks and workers by `scan`. Invariants: merging is commutative (sums, minima and
//! maxima), so the result does not depend on the thread count.

use crate::model::Ts;

/// Access lines with one UTC offset: how many, and the first and last instant (UTC ms) among
/// them (a daylight-saving change the files' first lines did not show names its zone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffsetSeen {
    pub lines: u64,
    pub first: Ts,
    pub last: Ts,
}

impl OffsetSeen {
    /// Both counts; the earlier first and the later last.
    pub(super) fn add(&mut self, o: &OffsetSeen) {
        self.lines += o.lines;
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
    }
}

/// Time ranges of the nginx error and the FPM master records of one source.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KindRanges {
    pub error: Option<(Ts, Ts)>,
    pub fpm: Option<(Ts, Ts)>,
}

impl KindRanges {
    pub(super) fn merge(&mut self, o: &KindRanges) {
        let m = |a: &mut Option<(Ts, Ts)>, b: Option<(Ts, Ts)>| {
            *a = match (*a, b) {
                (Some(x), Some(y)) => Some((x.0.min(y.0), x.1.max(y.1))),
                (x, None) | (None, x) => x,
            }
        };
        m(&mut self.error, o.error);
        m(&mut self.fpm, o.fpm);
    }
}
