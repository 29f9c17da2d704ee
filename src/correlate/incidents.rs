//! Incidents: contiguous bursts of client-facing failures, with their causes, earliest
//! evidence, the lifecycle events around them, and whether a traffic spike contributed.
//!
//! Input: one `IncRow` per failing request (from a fresh analysis or from a run directory's
//! events, so `analyze` and `merge` detect the same incidents), per-second request counts,
//! lifecycle events. Output: `Incident`s ordered by start, numbered `I1`, `I2`, ...
//! Invariants: a gap longer than the threshold between failures ends an incident; plain
//! client aborts (everyday noise) do not start or extend one; an incident needs `MIN_FAILED`
//! failures; the result depends only on the rows, not on their order.

use crate::model::{Cause, CauseClass, Ts};
use crate::scan::series::PerSec;
use crate::scan::traffic::col;
use std::collections::HashMap;

pub const MIN_FAILED: usize = 2;
/// Lifecycle events this long before (after) an incident are listed with it.
const LIFECYCLE_BEFORE: Ts = 300_000;
const LIFECYCLE_AFTER: Ts = 60_000;
/// Traffic spike: the first minute's rate at least this many times the 10 minutes before.
const SPIKE_FACTOR: f64 = 3.0;
const SPIKE_MIN_REQUESTS: u64 = 30;

/// What incident detection needs of a failing request.
#[derive(Clone, Debug)]
pub struct IncRow {
    /// End (access-log stamp) and start (`end - $request_time`).
    pub ts: Ts,
    pub start: Ts,
    /// Client-facing (499/5xx), as opposed to a hidden failed attempt.
    pub failed: bool,
    pub class: CauseClass,
    pub cause: Cause,
    /// The earliest evidence line: (time, `file:line`).
    pub first_evidence: Option<(Ts, String)>,
}

/// A lifecycle event (FPM start/stop/reload/config test, nginx reload/restart).
#[derive(Clone, Debug)]
pub struct Lifecycle {
    pub ts: Ts,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Incident {
    pub id: String,
    pub start: Ts,
    pub end: Ts,
    /// All requests that ended in the window (from the access logs' counts).
    pub requests: u64,
    /// Client-facing failures in the incident.
    pub failed: u64,
    /// Hidden failed attempts (retried) in the window.
    pub retried: u64,
    pub peak_per_min: u64,
    /// (class, cause, count), most frequent first.
    pub causes: Vec<(CauseClass, Cause, u64)>,
    pub earliest_evidence: Option<String>,
    pub lifecycle: Vec<String>,
    /// Set when a traffic spike contributed: onset rate vs baseline (requests/s).
    pub spike: Option<(f64, f64)>,
}

impl Incident {
    pub fn contributing(&self) -> Option<String> {
        self.spike.map(|(on, base)| format!("traffic_spike ({on:.1}/s at onset vs {base:.1}/s before)"))
    }
}

pub fn is_noise(r: &IncRow) -> bool {
    r.cause == Cause::ClientAbort
}

/// Detect incidents; returns them and, per row, the incident index it falls in.
pub fn detect(
    rows: &[IncRow],
    per_sec: &PerSec,
    lifecycle: &[Lifecycle],
    gap_ms: Ts,
) -> (Vec<Incident>, Vec<Option<usize>>) {
    let mut order: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].failed && !is_noise(&rows[i])).collect();
    order.sort_by_key(|&i| (rows[i].ts, rows[i].start, rows[i].class.rank(), rows[i].cause.as_str()));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut last_end = i64::MIN;
    for i in order {
        let r = &rows[i];
        if groups.is_empty() || r.start - last_end > gap_ms {
            groups.push(Vec::new());
        }
        last_end = last_end.max(r.ts);
        groups.last_mut().expect("pushed").push(i);
    }
    let mut out = Vec::new();
    for members in groups.into_iter().filter(|g| g.len() >= MIN_FAILED) {
        let start = members.iter().map(|&i| rows[i].start).min().unwrap_or(0);
        let end = members.iter().map(|&i| rows[i].ts).max().unwrap_or(0);
        let (s0, s1) = (start.div_euclid(1000), end.div_euclid(1000));
        let (total, _) = per_sec.sum(col::TOTAL, s0, s1);
        let (retried, _) = per_sec.sum(col::RETRIED, s0, s1);
        let mut per_min: HashMap<i64, u64> = HashMap::new();
        let mut causes: HashMap<(CauseClass, Cause), u64> = HashMap::new();
        let mut earliest: Option<&(Ts, String)> = None;
        for &i in &members {
            *per_min.entry(rows[i].ts.div_euclid(60_000)).or_insert(0) += 1;
            *causes.entry((rows[i].class, rows[i].cause)).or_insert(0) += 1;
            if let Some(e) = &rows[i].first_evidence {
                if earliest.is_none_or(|x| e < x) {
                    earliest = Some(e);
                }
            }
        }
        let mut causes: Vec<(CauseClass, Cause, u64)> = causes.into_iter().map(|((a, b), n)| (a, b, n)).collect();
        causes.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.rank().cmp(&b.0.rank())).then(a.1.as_str().cmp(b.1.as_str())));
        let mut life: Vec<&Lifecycle> =
            lifecycle.iter().filter(|l| l.ts >= start - LIFECYCLE_BEFORE && l.ts <= end + LIFECYCLE_AFTER).collect();
        life.sort_by(|a, b| (a.ts, &a.text).cmp(&(b.ts, &b.text)));
        // Traffic spike: rate in the first minute against the ten minutes before.
        let (onset, _) = per_sec.sum(col::TOTAL, s0, s0 + 59);
        let (base, base_cov) = per_sec.sum(col::TOTAL, s0 - 600, s0 - 1);
        let spike = if base_cov >= 30 && onset >= SPIKE_MIN_REQUESTS {
            let onset_rate = onset as f64 / 60.0;
            let base_rate = base as f64 / 600.0;
            (onset_rate >= SPIKE_FACTOR * base_rate.max(1.0 / 600.0)).then_some((onset_rate, base_rate))
        } else {
            None
        };
        out.push(Incident {
            id: String::new(),
            start,
            end,
            requests: total.max(members.len() as u64),
            failed: members.len() as u64,
            retried,
            peak_per_min: per_min.values().copied().max().unwrap_or(0),
            causes,
            earliest_evidence: earliest.map(|e| e.1.clone()),
            lifecycle: life.into_iter().map(|l| l.text.clone()).collect(),
            spike,
        });
    }
    out.sort_by_key(|x| (x.start, x.end));
    for (n, inc) in out.iter_mut().enumerate() {
        inc.id = format!("I{}", n + 1);
    }
    // Every failing request inside an incident's window belongs to it (client aborts too),
    // but not the requests nginx refused itself: a limit is not part of an upstream outage.
    let index = IncidentIndex::new(&out);
    let member_of = rows.iter().map(|r| if r.class.is_refusal() { None } else { index.at(r.ts) }).collect();
    (out, member_of)
}

/// Which incidents hold a moment, by binary search over the incidents in start order (a
/// scan of every incident per row was quadratic in a long run with many incidents).
pub struct IncidentIndex {
    start: Vec<Ts>,
    end: Vec<Ts>,
    /// Largest `end` of the incidents up to each index (windows may nest when a long
    /// request stretches an incident's start back over an earlier one).
    end_max: Vec<Ts>,
}

impl IncidentIndex {
    /// `incidents` sorted by start, as `detect` returns them.
    pub fn new(incidents: &[Incident]) -> Self {
        let mut m = Ts::MIN;
        let end_max = incidents
            .iter()
            .map(|x| {
                m = m.max(x.end);
                m
            })
            .collect();
        IncidentIndex {
            start: incidents.iter().map(|x| x.start).collect(),
            end: incidents.iter().map(|x| x.end).collect(),
            end_max,
        }
    }

    /// The first incident (in start order) whose window `[start, end]` holds `ts`.
    pub fn at(&self, ts: Ts) -> Option<usize> {
        let i = self.end_max.partition_point(|&e| e < ts);
        (i < self.start.len() && self.start[i] <= ts).then_some(i)
    }

    /// Every incident whose window overlaps `[from, to]`, in start order.
    pub fn overlapping(&self, from: Ts, to: Ts) -> Vec<usize> {
        let p = self.start.partition_point(|&s| s <= to);
        let mut out: Vec<usize> =
            (0..p).rev().take_while(|&i| self.end_max[i] >= from).filter(|&i| self.end[i] >= from).collect();
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: Ts, cause: Cause) -> IncRow {
        IncRow { ts, start: ts - 500, failed: true, class: CauseClass::C1, cause, first_evidence: None }
    }

    #[test]
    fn bursts_split_on_gaps_and_noise_does_not_bridge() {
        let mut rows: Vec<IncRow> = (0..5).map(|i| row(1_000_000 + i * 1000, Cause::BackendDown)).collect();
        // Client aborts every 30 s would bridge the gap if they counted.
        rows.extend((1..10).map(|i| row(1_005_000 + i * 30_000, Cause::ClientAbort)));
        rows.extend((0..3).map(|i| row(1_400_000 + i * 1000, Cause::BackendDown)));
        rows.push(row(2_000_000, Cause::BackendDown)); // single failure: not an incident
        let (inc, member) = detect(&rows, &Default::default(), &[], 60_000);
        assert_eq!(inc.len(), 2);
        assert_eq!((inc[0].id.as_str(), inc[0].failed, inc[0].start, inc[0].end), ("I1", 5, 999_500, 1_004_000));
        assert_eq!(inc[1].failed, 3);
        assert_eq!(member[0], Some(0));
        assert_eq!(member[rows.len() - 1], None);
        // Order of the rows does not matter.
        let mut rev = rows.clone();
        rev.reverse();
        let (inc2, _) = detect(&rev, &Default::default(), &[], 60_000);
        assert_eq!(inc2.len(), 2);
        assert_eq!((inc2[0].start, inc2[0].end, inc2[1].failed), (inc[0].start, inc[0].end, 3));
    }

    #[test]
    fn spike_is_measured_against_the_baseline() {
        let mut per_sec = PerSec::default();
        for s in 0..600 {
            let mut c = [0u32; col::N];
            c[col::TOTAL] = 1;
            per_sec.add(10_000 + s, &c);
        }
        for s in 600..660 {
            let mut c = [0u32; col::N];
            c[col::TOTAL] = 10;
            per_sec.add(10_000 + s, &c);
        }
        let rows: Vec<IncRow> = (0..5).map(|i| row((10_600 + i) * 1000 + 600, Cause::FpmPoolExhausted)).collect();
        let (inc, _) = detect(&rows, &per_sec, &[], 60_000);
        let (on, base) = inc[0].spike.unwrap();
        assert!((on - 10.0).abs() < 0.01 && (base - 1.0).abs() < 0.01, "{on} {base}");
    }
}
