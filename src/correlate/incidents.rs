//! Incidents: contiguous bursts of client-facing failures, with their causes, earliest
//! evidence, the lifecycle events around them, and whether a traffic spike contributed.
//!
//! Input: tagged failing requests, per-second request counts, FPM and nginx lifecycle
//! events. Output: `Incident`s ordered by start, numbered `I1`, `I2`, ... Invariants: a gap
//! longer than the threshold between failures ends an incident; plain client aborts (499
//! with no backend evidence) do not start or extend one (they are everyday noise); an
//! incident needs `MIN_FAILED` failures.

use super::{Evid, Outcome, TaggedRequest};
use crate::model::{Cause, CauseClass, ErrorEvent, FpmEvent, RequestEvent, Ts};
use crate::scan::traffic::col;
use std::collections::HashMap;

pub const MIN_FAILED: usize = 2;
/// Lifecycle events this long before an incident are listed with it.
const LIFECYCLE_BEFORE: Ts = 300_000;
const LIFECYCLE_AFTER: Ts = 60_000;
/// Traffic spike: the first minute's rate at least this many times the 10 minutes before.
const SPIKE_FACTOR: f64 = 3.0;
const SPIKE_MIN_REQUESTS: u64 = 30;

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
    pub earliest_evidence: Option<Evid>,
    /// FPM lifecycle events (indices into the FPM events) around the incident.
    pub fpm_lifecycle: Vec<usize>,
    /// nginx lifecycle lines (reloads, restarts) around the incident.
    pub nginx_lifecycle: Vec<usize>,
    /// Set when a traffic spike contributed: onset rate vs baseline (requests/s).
    pub spike: Option<(f64, f64)>,
    /// Request indices (into the scan's requests) that belong to it.
    pub members: Vec<usize>,
}

fn counts_in(per_sec: &HashMap<i64, [u32; col::N]>, from_s: i64, to_s: i64) -> (u64, i64) {
    // Sum over the seconds that exist; also report how many seconds carried traffic data.
    let mut n = 0u64;
    let mut covered = 0i64;
    if to_s - from_s > 86_400 * 2 {
        for (s, c) in per_sec {
            if *s >= from_s && *s <= to_s {
                n += c[col::TOTAL] as u64;
                covered += 1;
            }
        }
        return (n, covered);
    }
    for s in from_s..=to_s {
        if let Some(c) = per_sec.get(&s) {
            n += c[col::TOTAL] as u64;
            covered += 1;
        }
    }
    (n, covered)
}

pub fn is_noise(t: &TaggedRequest) -> bool {
    t.verdict.cause == Cause::ClientAbort
}

pub fn detect(
    requests: &[RequestEvent],
    tagged: &[TaggedRequest],
    per_sec: &HashMap<i64, [u32; col::N]>,
    fpm: &[FpmEvent],
    errors: &[ErrorEvent],
    gap_ms: Ts,
) -> Vec<Incident> {
    let mut order: Vec<usize> =
        (0..requests.len()).filter(|&i| tagged[i].outcome == Outcome::Failed && !is_noise(&tagged[i])).collect();
    order.sort_by_key(|&i| (requests[i].ts, i));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut last_end = i64::MIN;
    for i in order {
        let r = &requests[i];
        if groups.is_empty() || r.start_ts() - last_end > gap_ms {
            groups.push(Vec::new());
        }
        last_end = last_end.max(r.ts);
        groups.last_mut().expect("pushed").push(i);
    }
    let mut out = Vec::new();
    for members in groups.into_iter().filter(|g| g.len() >= MIN_FAILED) {
        let start = members.iter().map(|&i| requests[i].start_ts()).min().unwrap_or(0);
        let end = members.iter().map(|&i| requests[i].ts).max().unwrap_or(0);
        let (s0, s1) = (start.div_euclid(1000), end.div_euclid(1000));
        let (total, _) = counts_in(per_sec, s0, s1);
        let retried =
            (s0..=s1.min(s0 + 86_400 * 7)).filter_map(|s| per_sec.get(&s)).map(|c| c[col::RETRIED] as u64).sum();
        let mut per_min: HashMap<i64, u64> = HashMap::new();
        let mut causes: HashMap<(CauseClass, Cause), u64> = HashMap::new();
        let mut earliest: Option<Evid> = None;
        for &i in &members {
            *per_min.entry(requests[i].ts.div_euclid(60_000)).or_insert(0) += 1;
            let v = &tagged[i].verdict;
            *causes.entry((v.class, v.cause)).or_insert(0) += 1;
            for e in &v.evidence {
                if earliest.is_none_or(|x| (e.ts, e.source, e.line) < (x.ts, x.source, x.line)) {
                    earliest = Some(*e);
                }
            }
        }
        let mut causes: Vec<(CauseClass, Cause, u64)> = causes.into_iter().map(|((a, b), n)| (a, b, n)).collect();
        causes.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.rank().cmp(&b.0.rank())).then(a.1.as_str().cmp(b.1.as_str())));
        let fpm_lifecycle = fpm
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind.is_lifecycle() && e.ts >= start - LIFECYCLE_BEFORE && e.ts <= end + LIFECYCLE_AFTER)
            .map(|(i, _)| i)
            .collect();
        let nginx_lifecycle = errors
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.signature.starts_with("nginx_") && e.ts >= start - LIFECYCLE_BEFORE && e.ts <= end + LIFECYCLE_AFTER
            })
            .map(|(i, _)| i)
            .collect();
        // Traffic spike: rate in the first minute against the ten minutes before.
        let (onset, _) = counts_in(per_sec, s0, s0 + 59);
        let (base, base_cov) = counts_in(per_sec, s0 - 600, s0 - 1);
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
            earliest_evidence: earliest,
            fpm_lifecycle,
            nginx_lifecycle,
            spike,
            members,
        });
    }
    out.sort_by_key(|x| (x.start, x.end));
    for (n, inc) in out.iter_mut().enumerate() {
        inc.id = format!("I{}", n + 1);
    }
    out
}
