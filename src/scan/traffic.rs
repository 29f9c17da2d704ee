//! Counters for every access-log request: per-second status counts, per-host and per-peer
//! totals, and latency histograms.
//!
//! Input: one call per parsed access line (the hot path: no allocation but the first time a
//! host or peer is seen, and a store block or minute list when a second or minute is flushed). Output: `Traffic`, merged across workers by addition.
//! Invariants: merging is commutative and associative (so the thread count cannot change a
//! result); latency is kept as log-linear histograms (exact below 32 ms, then 16 bins per
//! power of two: relative error under 3.2%), per minute, because keeping every request's time
//! would grow with the input. Memory grows with the time span (48 bytes per second with
//! traffic, about a KiB per minute of latency bins: see `series`) and the number of hosts and
//! peers, never with the number of lines.
//!
//! The hot path avoids hashing: the current second's counts and the current minute's
//! histograms are dense arrays flushed into the time-ordered stores (`series`) when the second
//! or minute changes (lines of one chunk are in time order, so that is once per second or
//! minute, not once per line). Hosts and peers are looked up in a small cache of recent keys
//! first (`slots`), hashed only when it misses.

use super::series::{MinuteHist, PerMinute, PerSec, SecBuf};
use super::slots::Slots;
use crate::model::span::{hour_of, HourCell, Profile};
use rustc_hash::FxHashMap as HashMap;

pub use super::layout::{bin, bin_value, col, status_col, HistKey, Metric, LAT_BUCKET_S, NBINS};

/// Per-peer (`$upstream_addr` item) totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerTotals {
    pub attempts: u64,
    /// Attempts with status >= 500 (or no status: `-`, the attempt did not complete).
    pub failed: u64,
    /// First and last time (ms) an attempt on this peer got a status < 500.
    pub first_ok: Option<i64>,
    pub last_ok: Option<i64>,
    pub first_failed: Option<i64>,
    /// Response times of its attempts.
    pub hist: Hist,
}

/// A latency histogram over the whole run, dense (`NBINS` counters once used): a peer's
/// histogram takes one add per attempt, which as a hash map was 2% of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hist {
    bins: Vec<u64>,
}

impl Hist {
    #[inline]
    pub fn add(&mut self, bin: u16, n: u64) {
        if self.bins.is_empty() {
            self.bins = vec![0; NBINS];
        }
        self.bins[(bin as usize).min(NBINS - 1)] += n;
    }

    pub fn is_empty(&self) -> bool {
        self.bins.iter().all(|n| *n == 0)
    }

    /// (bin, count) of the non-empty bins, in bin order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.bins.iter().enumerate().filter(|x| *x.1 > 0).map(|(b, n)| (b as u16, *n))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HostTotals {
    pub requests: u64,
    /// Client-facing failures (499 or >= 500).
    pub failed: u64,
}

fn add_host(hosts: &mut HashMap<Box<[u8]>, HostTotals>, k: Box<[u8]>, v: HostTotals) {
    let h = hosts.entry(k).or_default();
    h.requests += v.requests;
    h.failed += v.failed;
}

fn add_peer(peers: &mut HashMap<Box<[u8]>, PeerTotals>, k: Box<[u8]>, v: PeerTotals) {
    let p = peers.entry(k).or_default();
    p.attempts += v.attempts;
    p.failed += v.failed;
    p.first_ok = min_opt(p.first_ok, v.first_ok);
    p.last_ok = max_opt(p.last_ok, v.last_ok);
    p.first_failed = min_opt(p.first_failed, v.first_failed);
    if p.hist.bins.is_empty() {
        p.hist = v.hist;
    } else {
        for (b, n) in v.hist.iter() {
            p.hist.add(b, n);
        }
    }
}

/// Every counter the access scan keeps.
#[derive(Default, Debug, Clone)]
pub struct Traffic {
    pub per_sec: PerSec,
    /// Latency histograms per minute.
    pub lat: PerMinute,
    pub hosts: HashMap<Box<[u8]>, HostTotals>,
    pub peers: HashMap<Box<[u8]>, PeerTotals>,
    /// This worker's hosts and peers as it counts them, added to `hosts` and `peers` by
    /// `finish` and `merge`.
    host_slots: Slots<HostTotals>,
    peer_slots: Slots<PeerTotals>,
    /// The block of seconds being counted (added to `per_sec` as the count leaves it).
    secs: SecBuf,
    /// The current minute's histograms, dense (`metric * NBINS + bin`), and which cells are
    /// non-zero; the minute's seconds are `lat_secs` (empty before the first: a range test a
    /// line where a division was two).
    lat_min: i64,
    lat_secs: std::ops::Range<i64>,
    lat_cur: Vec<u32>,
    lat_touched: Vec<u16>,
    lat_cur_max: [Option<u32>; 2],
}

impl Traffic {
    /// Requests per hour (for the run's time range, `model::span`).
    pub fn profile(&self) -> Profile {
        // Seconds come in time order: one hour's cell is summed here and added once (a map
        // entry per second was 57 M instructions a call over the 4 days of the plain bench
        // file).
        let mut p = Profile::default();
        let mut cur: Option<(i64, HourCell)> = None;
        for (sec, row) in self.per_sec.iter() {
            let (ts, weight) = (sec * 1000, row[col::TOTAL] as u64);
            let (hour, cell) = (hour_of(ts), HourCell { weight, min: ts, max: ts });
            match &mut cur {
                Some((h, c)) if *h == hour => c.add(&cell),
                _ => {
                    if let Some((h, c)) = cur.replace((hour, cell)) {
                        p.add_cell(h, c);
                    }
                }
            }
        }
        if let Some((h, c)) = cur {
            p.add_cell(h, c);
        }
        p
    }

    /// Count one request ending at `sec` with `status`.
    #[inline]
    pub fn count(&mut self, sec: i64, status: u16, retried: bool) {
        // A second's counts overflow past 4 G requests in it (as the one-second row did).
        let r = self.secs.row(sec, &mut self.per_sec);
        r[col::TOTAL] += 1;
        r[status_col(status)] += 1;
        if retried {
            r[col::RETRIED] += 1;
        }
    }

    // Always inlined: called twice a line, and as a call its entry and exit were a third of
    // its instructions.
    #[inline(always)]
    pub fn latency(&mut self, sec: i64, metric: Metric, ms: u32) {
        if !self.lat_secs.contains(&sec) {
            self.enter_minute(sec);
        }
        let m = metric as usize;
        let i = HistKey::new(metric, bin(ms)).encode() as usize;
        if self.lat_cur[i] == 0 {
            self.lat_touched.push(i as u16);
        }
        self.lat_cur[i] += 1;
        self.lat_cur_max[m] = Some(self.lat_cur_max[m].map_or(ms, |x| x.max(ms)));
    }

    /// Make `sec`'s minute the current one (once a minute, out of line).
    #[cold]
    #[inline(never)]
    fn enter_minute(&mut self, sec: i64) {
        self.flush_lat();
        self.lat_min = sec.div_euclid(LAT_BUCKET_S);
        self.lat_secs = self.lat_min * LAT_BUCKET_S..(self.lat_min + 1) * LAT_BUCKET_S;
        if self.lat_cur.is_empty() {
            self.lat_cur = vec![0; 2 * NBINS];
        }
    }

    /// Once a minute: out of line, kept out of the inlined `latency`.
    #[cold]
    #[inline(never)]
    fn flush_lat(&mut self) {
        if self.lat_touched.is_empty() {
            return;
        }
        self.lat_touched.sort_unstable();
        let mut h = MinuteHist { bins: Vec::with_capacity(self.lat_touched.len()), max: [0; 2] };
        for i in self.lat_touched.drain(..) {
            h.bins.push((i, self.lat_cur[i as usize]));
            self.lat_cur[i as usize] = 0;
        }
        for (m, mx) in self.lat_cur_max.iter_mut().enumerate() {
            h.max[m] = mx.take().unwrap_or(0);
        }
        self.lat.add(self.lat_min, h);
    }

    #[inline]
    pub fn host(&mut self, host: &[u8], failed: bool) {
        let h = self.host_slots.get(host);
        h.requests += 1;
        h.failed += u64::from(failed);
    }

    /// One attempt on `peer` with `status` (0 = `-`) and its response time.
    #[inline]
    pub fn attempt(&mut self, peer: &[u8], status: u16, ts: i64, ms: Option<u32>) {
        let p = self.peer_slots.get(peer);
        p.attempts += 1;
        if status >= 500 || status == 0 {
            p.failed += 1;
            p.first_failed = Some(p.first_failed.map_or(ts, |f| f.min(ts)));
        } else {
            p.first_ok = Some(p.first_ok.map_or(ts, |f| f.min(ts)));
            p.last_ok = Some(p.last_ok.map_or(ts, |f| f.max(ts)));
        }
        if let Some(ms) = ms {
            p.hist.add(bin(ms), 1);
        }
    }

    /// Add another worker's counters.
    pub fn merge(&mut self, mut o: Traffic) {
        self.finish();
        o.finish();
        // Move the smaller stores into the larger.
        if o.per_sec.block_count() > self.per_sec.block_count() {
            std::mem::swap(&mut self.per_sec, &mut o.per_sec);
        }
        self.per_sec.merge(o.per_sec);
        if o.lat.minutes.len() > self.lat.minutes.len() {
            std::mem::swap(&mut self.lat, &mut o.lat);
        }
        self.lat.merge(o.lat);
        for (k, v) in o.hosts {
            add_host(&mut self.hosts, k, v);
        }
        for (k, v) in o.peers {
            add_peer(&mut self.peers, k, v);
        }
    }

    fn flush_keys(&mut self) {
        for (k, v) in self.host_slots.take() {
            add_host(&mut self.hosts, k, v);
        }
        for (k, v) in self.peer_slots.take() {
            add_peer(&mut self.peers, k, v);
        }
    }

    /// Flush the cached current second, minute, hosts and peers into the stores.
    pub fn finish(&mut self) {
        self.secs.flush(&mut self.per_sec);
        // Its rows are 48 KiB: not kept by a worker's finished counters.
        self.secs = SecBuf::default();
        self.flush_lat();
        self.flush_keys();
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) | (None, x) => x,
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) | (None, x) => x,
    }
}

/// Quantile (0..=1) of a histogram given as (bin, count) pairs, in milliseconds.
pub fn quantile(bins: &[(u16, u64)], q: f64) -> Option<f64> {
    let total: u64 = bins.iter().map(|b| b.1).sum();
    if total == 0 {
        return None;
    }
    let mut sorted = bins.to_vec();
    sorted.sort_unstable();
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut acc = 0;
    for (b, n) in sorted {
        acc += n;
        if acc >= rank {
            return Some(bin_value(b));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_monotonic_and_tight() {
        let mut last = 0;
        for ms in [0u32, 1, 127, 128, 129, 255, 256, 1000, 60_000, 3_600_000, u32::MAX] {
            let b = bin(ms);
            assert!(b >= last);
            last = b;
            let v = bin_value(b);
            assert!((v - ms as f64).abs() <= (ms as f64 / 32.0).max(0.5), "{ms} -> {v}");
        }
        assert_eq!(bin(u32::MAX) as usize, NBINS - 1);
        // Every bin's value falls back into that bin.
        for b in 0..NBINS as u16 {
            assert_eq!(bin(bin_value(b) as u32), b, "{b}");
        }
    }

    /// The hourly profile, summed an hour at a time, is the one a stamp at a time gives:
    /// across hour edges, before 1970 and with gaps of empty hours.
    #[test]
    fn profile_is_the_sum_of_the_seconds() {
        let mut t = Traffic::default();
        let secs: Vec<i64> = (-7300..-7100).chain(3590..3610).chain([7200, 7201, 86_399, 86_400]).collect();
        for (i, s) in secs.iter().enumerate() {
            for _ in 0..(i % 3 + 1) {
                t.count(*s, 200, false);
            }
        }
        t.finish();
        let mut want = Profile::default();
        for (sec, row) in t.per_sec.iter() {
            want.add(sec * 1000, row[col::TOTAL] as u64);
        }
        assert_eq!(t.profile(), want);
        assert!(!want.is_empty());
    }

    #[test]
    fn latency_histograms_merge_whatever_the_split() {
        let (mut a, mut b, mut all) = (Traffic::default(), Traffic::default(), Traffic::default());
        for i in 0..1000i64 {
            let (sec, ms) = (100 + i / 7, (i * 37 % 900) as u32);
            let t = if i % 3 == 0 { &mut a } else { &mut b };
            t.latency(sec, Metric::RequestTime, ms);
            t.latency(sec, Metric::UpstreamResponseTime, ms / 2);
            all.latency(sec, Metric::RequestTime, ms);
            all.latency(sec, Metric::UpstreamResponseTime, ms / 2);
        }
        a.merge(b);
        a.finish();
        all.finish();
        assert_eq!(a.lat, all.lat);
        let n: u64 = a.lat.minutes.values().flat_map(|h| &h.bins).map(|b| b.1 as u64).sum();
        assert_eq!(n, 2000);
        // Minute 2 (seconds 120..179): request times up to the largest i*37%900 there.
        let want = (0..1000i64).filter(|i| (100 + i / 7) / 60 == 2).map(|i| (i * 37 % 900) as u32).max();
        assert_eq!(Some(a.lat.minutes[&2].max[0]), want);
    }

    #[test]
    fn counts_merge_whatever_the_split() {
        let mut a = Traffic::default();
        let mut b = Traffic::default();
        let mut all = Traffic::default();
        for (i, st) in [200u16, 502, 200, 499, 504, 200].iter().enumerate() {
            let t = if i % 2 == 0 { &mut a } else { &mut b };
            t.count(100 + i as i64 / 3, *st, false);
            t.host(b"a.test", *st >= 499);
            all.count(100 + i as i64 / 3, *st, false);
            all.host(b"a.test", *st >= 499);
        }
        a.merge(b);
        a.finish();
        all.finish();
        assert_eq!(a.per_sec, all.per_sec);
        assert_eq!(a.per_sec.get(100).unwrap()[col::TOTAL], 3);
        assert_eq!(a.per_sec.get(101).unwrap()[col::S504], 1);
        assert_eq!(a.hosts[&b"a.test"[..]], HostTotals { requests: 6, failed: 3 });
    }

    /// Peers and hosts counted in turns (the one-compare slot missing and hitting), split over
    /// two workers: the same totals as one worker counting them all.
    #[test]
    fn peers_and_hosts_merge_whatever_the_order() {
        let (mut a, mut b, mut all) = (Traffic::default(), Traffic::default(), Traffic::default());
        let peers: [&[u8]; 3] = [b"10.0.0.1:9000", b"10.0.0.2:9000", b"unix:/run/php/php8.2-fpm.sock"];
        for i in 0..500i64 {
            // Runs of one peer, then turns.
            let peer = peers[if i < 100 { 0 } else { (i % 3) as usize }];
            let status = if i % 11 == 0 { 502 } else { 200 };
            let ms = Some((i * 13 % 700) as u32);
            let host: &[u8] = if i % 5 == 0 { b"api.test" } else { b"shop.test" };
            for t in [if i % 4 == 0 { &mut a } else { &mut b }, &mut all] {
                t.attempt(peer, status, 1_000 + i, ms);
                t.host(host, status >= 500);
            }
        }
        a.merge(b);
        a.finish();
        all.finish();
        assert_eq!(a.peers, all.peers);
        assert_eq!(a.hosts, all.hosts);
        let p = &all.peers[peers[0]];
        assert_eq!(p.attempts, 100 + (100..500).filter(|i| i % 3 == 0).count() as u64);
        assert_eq!(all.hosts[&b"api.test"[..]].requests, 100);
        assert_eq!(all.peers.values().map(|p| p.hist.iter().map(|b| b.1).sum::<u64>()).sum::<u64>(), 500);
    }

    #[test]
    fn quantiles() {
        let bins: Vec<(u16, u64)> = (1..=100u32).map(|ms| (bin(ms), 1)).collect();
        // Exact below 32 ms; 2 ms bins from 32, 4 ms bins from 64.
        assert_eq!(quantile(&bins, 0.2), Some(20.0));
        assert_eq!(quantile(&bins, 0.5), Some(50.5));
        assert_eq!(quantile(&bins, 0.99), Some(97.5));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
