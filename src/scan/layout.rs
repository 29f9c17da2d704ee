//! The counters' layout, the one place it is defined: the columns of a per-second count row,
//! the latency metrics and histogram bins, and the key of a (metric, bin) cell.
//!
//! Input: nothing (a leaf: `series`, `traffic`, the run model and the report tables import
//! it; it imports nothing of theirs). Output: named columns and a key that encodes and
//! decodes itself (`HistKey`), so no reader decodes `metric * NBINS + bin` by hand.
//! Invariants: column numbers and bin boundaries are a stable layout (the counter files of a
//! stored run are read back with them).

/// Width of a latency bucket, in seconds. Latency percentiles are reported per timeline
/// bucket when the timeline bucket is a multiple of this, else per minute.
pub const LAT_BUCKET_S: i64 = 60;
/// Number of histogram bins (`bin(u32::MAX) + 1`).
pub const NBINS: usize = 32 + 27 * 16;

/// Columns of a per-second count row.
pub mod col {
    pub const TOTAL: usize = 0;
    pub const S1XX: usize = 1;
    pub const S2XX: usize = 2;
    pub const S3XX: usize = 3;
    /// 4xx other than 499.
    pub const S4XX: usize = 4;
    pub const S499: usize = 5;
    pub const S500: usize = 6;
    pub const S502: usize = 7;
    pub const S503: usize = 8;
    pub const S504: usize = 9;
    /// Other 5xx (501, 505..599) and statuses outside 100..599.
    pub const S5XX_OTHER: usize = 10;
    /// Client got < 500 but an upstream attempt failed (`502, 200`).
    pub const RETRIED: usize = 11;
    pub const N: usize = 12;
    pub const NAMES: [&str; N] =
        ["total", "s1xx", "s2xx", "s3xx", "s4xx", "s499", "s500", "s502", "s503", "s504", "s5xx_other", "retried"];
}

#[inline]
pub fn status_col(status: u16) -> usize {
    match status {
        499 => col::S499,
        500 => col::S500,
        502 => col::S502,
        503 => col::S503,
        504 => col::S504,
        100..=199 => col::S1XX,
        200..=299 => col::S2XX,
        300..=399 => col::S3XX,
        400..=498 => col::S4XX,
        _ => col::S5XX_OTHER,
    }
}

/// Latency metric of a histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    RequestTime = 0,
    UpstreamResponseTime = 1,
}

/// Histogram bin of a duration in milliseconds: exact below 32 ms, then 16 bins per power
/// of two.
#[inline]
pub fn bin(ms: u32) -> u16 {
    if ms < 32 {
        ms as u16
    } else {
        let e = 31 - ms.leading_zeros();
        let m = (ms >> (e - 4)) & 15;
        (32 + (e - 5) * 16 + m) as u16
    }
}

/// Representative value (ms) of a bin: its midpoint.
pub fn bin_value(b: u16) -> f64 {
    if b < 32 {
        return b as f64;
    }
    let e = (b as u32 - 32) / 16 + 5;
    let m = (b as u32 - 32) % 16;
    let lo = ((16 + m) as u64) << (e - 4);
    let hi = ((17 + m) as u64) << (e - 4);
    (lo + hi - 1) as f64 / 2.0
}

/// A latency histogram cell: which metric, which bin. Stored as one `u16`
/// (`metric * NBINS + bin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HistKey {
    pub metric: Metric,
    pub bin: u16,
}

impl HistKey {
    pub fn new(metric: Metric, bin: u16) -> Self {
        HistKey { metric, bin: bin.min(NBINS as u16 - 1) }
    }

    #[inline]
    pub fn encode(self) -> u16 {
        (self.metric as usize * NBINS + self.bin as usize) as u16
    }

    /// The cell of an encoded key (a key past the last metric is clamped into it).
    #[inline]
    pub fn decode(k: u16) -> Self {
        let (m, b) = (k as usize / NBINS, k as usize % NBINS);
        HistKey { metric: if m == 0 { Metric::RequestTime } else { Metric::UpstreamResponseTime }, bin: b as u16 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hist_keys_round_trip() {
        for m in [Metric::RequestTime, Metric::UpstreamResponseTime] {
            for b in [0u16, 31, 32, 100, NBINS as u16 - 1] {
                let k = HistKey::new(m, b);
                assert_eq!(HistKey::decode(k.encode()), k);
            }
        }
        assert_eq!(HistKey::new(Metric::RequestTime, u16::MAX).bin, NBINS as u16 - 1);
    }
}
