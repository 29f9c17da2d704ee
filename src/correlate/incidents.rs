//! Incidents: bursts of client-facing failures that the background failure rate does not
//! explain, with their impact and rank, causes, earliest evidence, the lifecycle events
//! around them, and whether a traffic spike contributed.
//!
//! Input: one `IncRow` per failing request (from a fresh analysis or from a run directory's
//! events, so `analyze` and `merge` detect the same incidents), per-second request counts and
//! per-vhost totals, lifecycle events, `Params`. Output: `Detection`: incidents ordered by
//! start, numbered `I1`, `I2`, ..., each with its `rank` by impact; per row the incident it
//! falls in; the background rate. Invariants: failures are grouped by time (a gap longer than
//! `gap_ms` ends a group); a group is an incident only if it has `min_failed` failures and
//! the background alone would give that many in its window with a chance of at most
//! `sensitivity / minutes of the run` (a Poisson tail, README "Incidents"); the background is
//! estimated outside the incidents, iterated until stable; client aborts and requests nginx
//! refused itself never start or extend one; the result depends only on the rows, not on
//! their order.

use super::background::{surprise, Background, Failure, Traffic};
use crate::model::{Cause, CauseClass, Ts};
use crate::scan::series::PerSec;
use crate::scan::traffic::col;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Lifecycle events this long before (after) an incident are listed with it.
const LIFECYCLE_BEFORE: Ts = 300_000;
const LIFECYCLE_AFTER: Ts = 60_000;
/// Traffic spike: the first minute's rate at least this many times the 10 minutes before.
const SPIKE_FACTOR: f64 = 3.0;
const SPIKE_MIN_REQUESTS: u64 = 30;
/// Failures left after the incidents are grouped again with this many times the gap: an
/// outage whose failures come sparser than the gap (a few a minute) is found as one.
const WIDE_GAP_FACTOR: Ts = 5;
/// An edge failure this far (and 10 times the median gap) from the rest of its incident is
/// background that happened to fall within the gap, not part of it.
const TRIM_MIN_GAP_MS: Ts = 15_000;
const TRIM_MEDIAN_FACTOR: Ts = 10;
/// Incidents closer than this fraction of their combined length (or the gap) are one.
const MERGE_FRACTION: Ts = 4;
/// Rounds of the background estimate (it converges in two or three).
const ROUNDS: usize = 8;

/// The knobs (`--incident-gap`, `--min-failures`, `--sensitivity`).
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub gap_ms: Ts,
    pub min_failed: usize,
    /// The chance that the background alone makes one false incident anywhere in the run.
    pub sensitivity: f64,
}

impl Default for Params {
    fn default() -> Self {
        use crate::model::meta::{DEFAULT_MIN_FAILURES, DEFAULT_SENSITIVITY};
        Params { gap_ms: 60_000, min_failed: DEFAULT_MIN_FAILURES, sensitivity: DEFAULT_SENSITIVITY }
    }
}

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
    /// Index of its vhost in the host table, and of its client in the client table.
    pub host: Option<u32>,
    pub client: Option<u32>,
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
    /// 1 = the largest impact (`rank_by_impact`).
    pub rank: usize,
    pub start: Ts,
    pub end: Ts,
    /// All requests that ended in the window (from the access logs' counts).
    pub requests: u64,
    /// Client-facing failures in the incident.
    pub failed: u64,
    /// Distinct client addresses among them.
    pub clients: u64,
    /// Hidden failed attempts (retried) in the window.
    pub retried: u64,
    pub peak_per_min: u64,
    /// What the background predicts for its window, and the chance of `failed` or more.
    pub expected: f64,
    pub p_value: f64,
    /// (class, cause, count), most frequent first.
    pub causes: Vec<(CauseClass, Cause, u64)>,
    pub earliest_evidence: Option<String>,
    /// When the earliest evidence was logged.
    pub earliest_ms: Option<Ts>,
    pub lifecycle: Vec<String>,
    /// Set when a traffic spike contributed: onset rate vs baseline (requests/s).
    pub spike: Option<(f64, f64)>,
}

impl Incident {
    pub fn contributing(&self) -> Option<String> {
        self.spike.map(|(on, base)| format!("traffic_spike ({on:.1}/s at onset vs {base:.1}/s before)"))
    }

    /// Share of the window's requests that failed.
    pub fn failed_share(&self) -> f64 {
        self.failed as f64 / self.requests.max(1) as f64
    }

    pub fn duration_s(&self) -> f64 {
        (self.end - self.start) as f64 / 1000.0
    }
}

pub fn is_noise(r: &IncRow) -> bool {
    r.cause == Cause::ClientAbort || r.class.is_refusal()
}

/// The result of detection.
pub struct Detection {
    pub incidents: Vec<Incident>,
    /// Per row: the incident whose window holds it.
    pub member_of: Vec<Option<usize>>,
    pub background: Background,
}

/// Group `pos` (positions into `order`, in time order) by the gap rule: a failure whose
/// request started more than `gap` after every earlier one ended starts a new group.
fn gap_groups(pos: &[usize], order: &[usize], rows: &[IncRow], gap: Ts) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut last_end = Ts::MIN;
    for &k in pos {
        let r = &rows[order[k]];
        if groups.is_empty() || r.start.saturating_sub(last_end) > gap {
            groups.push(Vec::new());
        }
        last_end = last_end.max(r.ts);
        groups.last_mut().expect("pushed").push(k);
    }
    groups
}

/// Drop edge failures far from the rest (`TRIM_*`): background next to an outage.
fn trim(b: &mut Vec<usize>, fails: &[Failure], min_failed: usize) {
    while b.len() > min_failed.max(2) {
        let gaps: Vec<Ts> = b.windows(2).map(|w| fails[w[1]].ts - fails[w[0]].ts).collect();
        let mut sorted = gaps.clone();
        sorted.sort_unstable();
        let limit = (TRIM_MEDIAN_FACTOR * sorted[sorted.len() / 2]).max(TRIM_MIN_GAP_MS);
        if gaps[0] > limit {
            b.remove(0);
        } else if gaps[gaps.len() - 1] > limit {
            b.pop();
        } else {
            break;
        }
    }
}

/// Detect incidents (module doc).
pub fn detect(rows: &[IncRow], traffic: &Traffic, lifecycle: &[Lifecycle], p: &Params) -> Detection {
    let mut order: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].failed && !is_noise(&rows[i])).collect();
    order.sort_by_key(|&i| (rows[i].ts, rows[i].start, rows[i].class.rank(), rows[i].cause.as_str()));
    let cause_ix = |c: Cause| Cause::ALL.iter().position(|x| *x == c).unwrap_or(0) as u16;
    let fails: Vec<Failure> = order
        .iter()
        .map(|&i| Failure { ts: rows[i].ts, start: rows[i].start, host: rows[i].host, cause: cause_ix(rows[i].cause) })
        .collect();
    let all: Vec<usize> = (0..order.len()).collect();
    let bursts = gap_groups(&all, &order, rows, p.gap_ms);
    // The number of places a burst could be: one per minute of the run.
    let span_s = match (traffic.per_sec.first(), traffic.per_sec.last(), fails.first(), fails.last()) {
        (Some(a), Some(z), _, _) => z - a + 1,
        (_, _, Some(a), Some(z)) => (z.ts - a.ts) / 1000 + 1,
        _ => 1,
    };
    let alpha = p.sensitivity / (span_s as f64 / 60.0).max(1.0);
    let judge = |b: &[usize], bg: &Background| -> Option<(f64, f64)> {
        if b.len() < p.min_failed.max(1) {
            return None;
        }
        let lambda = bg.expected(&fails, b, traffic);
        let pv = surprise(b.len() as u64, lambda);
        (pv <= alpha).then_some((lambda, pv))
    };
    let mut outage = vec![false; bursts.len()];
    let mut bg = Background::estimate(&fails, &bursts, &outage, traffic);
    for _ in 0..ROUNDS {
        let next: Vec<bool> = bursts.iter().map(|b| judge(b, &bg).is_some()).collect();
        if next == outage {
            break;
        }
        outage = next;
        bg = Background::estimate(&fails, &bursts, &outage, traffic);
    }
    let mut found: Vec<Vec<usize>> = bursts.iter().zip(&outage).filter(|x| *x.1).map(|x| x.0.clone()).collect();
    // Sparse outages among what is left.
    let taken: BTreeSet<usize> = found.iter().flatten().copied().collect();
    let rest: Vec<usize> = all.iter().copied().filter(|k| !taken.contains(k)).collect();
    found.extend(
        gap_groups(&rest, &order, rows, p.gap_ms * WIDE_GAP_FACTOR).into_iter().filter(|b| judge(b, &bg).is_some()),
    );
    // Sparse outages of one cause: what is still left, per cause, against that cause's own
    // background (as many more tests as there are causes: the chance is split among them).
    let taken: BTreeSet<usize> = found.iter().flatten().copied().collect();
    let mut by_cause: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for k in all.iter().copied().filter(|k| !taken.contains(k)) {
        by_cause.entry(fails[k].cause).or_default().push(k);
    }
    // (Also split by the wide gap: these windows are chosen after seeing the failures and
    // span several minutes each.)
    let alpha_cause = alpha / (by_cause.len().max(1) as Ts * WIDE_GAP_FACTOR * 2) as f64;
    let of_cause = |b: &[usize]| {
        b.len() >= p.min_failed.max(1)
            && surprise(b.len() as u64, bg.expected_of_cause(&fails, b, traffic)) <= alpha_cause
    };
    for ks in by_cause.values() {
        found.extend(gap_groups(ks, &order, rows, p.gap_ms * WIDE_GAP_FACTOR).into_iter().filter(|b| of_cause(b)));
    }
    for b in found.iter_mut() {
        let before = b.clone();
        trim(b, &fails, p.min_failed);
        if judge(b, &bg).is_none() && !of_cause(b) {
            *b = before;
        }
    }
    found.sort_by_key(|b| b[0]);
    // Merge incidents close relative to their length.
    let mut merged: Vec<Vec<usize>> = Vec::new();
    for b in found {
        if let Some(m) = merged.last_mut() {
            let (m0, m1) = (fails[m[0]].ts, fails[*m.last().expect("non-empty")].ts);
            let (b0, b1) = (rows[order[b[0]]].start, fails[*b.last().expect("non-empty")].ts);
            let gap = b0 - m1;
            if gap <= p.gap_ms.max(((m1 - m0) + (b1 - b0)) / MERGE_FRACTION) {
                m.extend(b);
                m.sort_unstable();
                m.dedup();
                continue;
            }
        }
        merged.push(b);
    }
    let mut out: Vec<Incident> = merged
        .iter()
        .map(|b| {
            let members: Vec<usize> = b.iter().map(|&k| order[k]).collect();
            let lambda = bg.expected(&fails, b, traffic);
            describe(rows, &members, traffic.per_sec, lifecycle, lambda, surprise(b.len() as u64, lambda))
        })
        .collect();
    out.sort_by_key(|x| (x.start, x.end));
    for (n, inc) in out.iter_mut().enumerate() {
        inc.id = format!("I{}", n + 1);
    }
    rank_by_impact(&mut out);
    // Every failing request inside an incident's window belongs to it (client aborts too),
    // but not the requests nginx refused itself: a limit is not part of an upstream outage.
    let index = IncidentIndex::new(&out);
    let member_of = rows.iter().map(|r| if r.class.is_refusal() { None } else { index.at(r.ts) }).collect();
    Detection { incidents: out, member_of, background: bg }
}

/// Rank 1 is the largest impact: most failed requests, then most clients affected, then the
/// longest, then the earliest.
pub fn rank_by_impact(incidents: &mut [Incident]) {
    let mut idx: Vec<usize> = (0..incidents.len()).collect();
    idx.sort_by_key(|&i| {
        let x = &incidents[i];
        (std::cmp::Reverse(x.failed), std::cmp::Reverse(x.clients), std::cmp::Reverse(x.end - x.start), x.start)
    });
    for (r, i) in idx.into_iter().enumerate() {
        incidents[i].rank = r + 1;
    }
}

/// An incident of `members` (row indices).
fn describe(
    rows: &[IncRow],
    members: &[usize],
    per_sec: &PerSec,
    lifecycle: &[Lifecycle],
    expected: f64,
    p_value: f64,
) -> Incident {
    let start = members.iter().map(|&i| rows[i].start).min().unwrap_or(0);
    let end = members.iter().map(|&i| rows[i].ts).max().unwrap_or(0);
    let (s0, s1) = (start.div_euclid(1000), end.div_euclid(1000));
    let (total, _) = per_sec.sum(col::TOTAL, s0, s1);
    let (retried, _) = per_sec.sum(col::RETRIED, s0, s1);
    let mut per_min: HashMap<i64, u64> = HashMap::new();
    let mut causes: HashMap<(CauseClass, Cause), u64> = HashMap::new();
    let mut clients: BTreeSet<u32> = BTreeSet::new();
    let mut earliest: Option<&(Ts, String)> = None;
    for &i in members {
        *per_min.entry(rows[i].ts.div_euclid(60_000)).or_insert(0) += 1;
        *causes.entry((rows[i].class, rows[i].cause)).or_insert(0) += 1;
        clients.extend(rows[i].client);
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
    Incident {
        id: String::new(),
        rank: 0,
        start,
        end,
        requests: total.max(members.len() as u64),
        failed: members.len() as u64,
        clients: clients.len() as u64,
        retried,
        peak_per_min: per_min.values().copied().max().unwrap_or(0),
        expected,
        p_value,
        causes,
        earliest_evidence: earliest.map(|e| e.1.clone()),
        earliest_ms: earliest.map(|e| e.0),
        lifecycle: life.into_iter().map(|l| l.text.clone()).collect(),
        spike,
    }
}

/// The failures of `rows` that no incident holds: the background, as reported.
#[derive(Clone, Debug, Default)]
pub struct BackgroundReport {
    /// Client-facing failures outside every incident (client aborts included, refusals not).
    pub failed: u64,
    /// Requests outside every incident's window.
    pub requests: u64,
    /// (class, cause, count), most frequent first.
    pub causes: Vec<(CauseClass, Cause, u64)>,
    /// The rate the detection used (failures that could start an incident, per request).
    pub rate: f64,
}

impl BackgroundReport {
    pub fn per_1000(&self) -> f64 {
        self.failed as f64 * 1000.0 / self.requests.max(1) as f64
    }
}

/// The background of a detection.
pub fn background_report(rows: &[IncRow], d: &Detection, per_sec: &PerSec) -> BackgroundReport {
    let mut causes: HashMap<(CauseClass, Cause), u64> = HashMap::new();
    let mut failed = 0;
    for (r, m) in rows.iter().zip(&d.member_of) {
        if r.failed && m.is_none() && !r.class.is_refusal() {
            failed += 1;
            *causes.entry((r.class, r.cause)).or_insert(0) += 1;
        }
    }
    let mut causes: Vec<(CauseClass, Cause, u64)> = causes.into_iter().map(|((a, b), n)| (a, b, n)).collect();
    causes.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.rank().cmp(&b.0.rank())).then(a.1.as_str().cmp(b.1.as_str())));
    // Requests inside incident windows, each second once.
    let mut inside = 0;
    let mut last = i64::MIN;
    let mut spans: Vec<(i64, i64)> =
        d.incidents.iter().map(|x| (x.start.div_euclid(1000), x.end.div_euclid(1000))).collect();
    spans.sort_unstable();
    for (a, z) in spans {
        let a = a.max(last + 1);
        if z >= a {
            inside += per_sec.sum(col::TOTAL, a, z).0;
        }
        last = last.max(z);
    }
    BackgroundReport {
        failed,
        requests: per_sec.total(col::TOTAL).saturating_sub(inside),
        causes,
        rate: d.background.rate,
    }
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
        IncRow {
            ts,
            start: ts - 500,
            failed: true,
            class: CauseClass::C1,
            cause,
            first_evidence: None,
            host: Some(0),
            client: Some((ts / 1000 % 7) as u32),
        }
    }

    fn steady(per_s: u32, from: i64, to: i64) -> PerSec {
        let mut per_sec = PerSec::default();
        for s in from..to {
            let mut c = [0u32; col::N];
            c[col::TOTAL] = per_s;
            per_sec.add(s, &c);
        }
        per_sec
    }

    fn run(rows: &[IncRow], per_sec: &PerSec) -> Detection {
        let t = Traffic { per_sec, host_requests: &[per_sec.total(col::TOTAL)] };
        detect(rows, &t, &[], &Params::default())
    }

    #[test]
    fn on_a_quiet_server_bursts_split_on_gaps_and_noise_does_not_bridge() {
        let mut rows: Vec<IncRow> = (0..5).map(|i| row(1_000_000 + i * 1000, Cause::BackendDown)).collect();
        // Client aborts every 30 s would bridge the gap if they counted.
        rows.extend((1..10).map(|i| row(1_005_000 + i * 30_000, Cause::ClientAbort)));
        rows.extend((0..3).map(|i| row(1_400_000 + i * 1000, Cause::BackendDown)));
        rows.push(row(2_000_000, Cause::BackendDown)); // single failure: not an incident
        let per_sec = steady(1, 900, 2_100);
        let d = run(&rows, &per_sec);
        let inc = &d.incidents;
        assert_eq!(inc.len(), 2);
        assert_eq!((inc[0].id.as_str(), inc[0].failed, inc[0].start, inc[0].end), ("I1", 5, 999_500, 1_004_000));
        assert_eq!((inc[1].failed, inc[0].rank, inc[1].rank), (3, 1, 2));
        assert_eq!(d.member_of[0], Some(0));
        assert_eq!(d.member_of[rows.len() - 1], None);
        // Order of the rows does not matter.
        let mut rev = rows.clone();
        rev.reverse();
        let d2 = run(&rev, &per_sec);
        assert_eq!(d2.incidents.len(), 2);
        assert_eq!((d2.incidents[0].start, d2.incidents[0].end, d2.incidents[1].failed), (inc[0].start, inc[0].end, 3));
        let bg = background_report(&rows, &d, &per_sec);
        // The aborts and the lone failure are the background.
        assert_eq!(bg.failed, 10, "{bg:?}");
    }

    #[test]
    fn on_a_busy_noisy_day_only_the_outage_is_an_incident() {
        // 20 requests/s for a day; a failure every 7 to 13 minutes (pairs within a minute
        // now and then); an outage of 12 failures in 40 s at noon, with a stray failure 40 s
        // before it.
        let per_sec = steady(20, 0, 86_400);
        let mut rows = Vec::new();
        let mut t = 30_000;
        let mut k = 0;
        while t < 86_400_000 {
            rows.push(row(t, Cause::WorkerCrash));
            if k % 9 == 0 {
                rows.push(row(t + 35_000, Cause::SlowBackend));
            }
            t += 420_000 + (k * 7_919 % 360) * 1000;
            k += 1;
        }
        rows.retain(|r| !(43_100_000..43_300_000).contains(&r.ts));
        rows.push(row(43_160_000, Cause::WorkerCrash));
        rows.extend((0..12).map(|i| row(43_200_000 + i * 3_500, Cause::BackendDown)));
        let d = run(&rows, &per_sec);
        assert_eq!(d.incidents.len(), 1, "{:?}", d.incidents.iter().map(|x| (x.start, x.failed)).collect::<Vec<_>>());
        let i = &d.incidents[0];
        // The stray failure before it is trimmed off: the incident starts at the outage.
        assert_eq!((i.failed, i.start, i.end), (12, 43_199_500, 43_238_500));
        assert!(i.p_value < 1e-10 && i.expected < 1.0, "{} {}", i.p_value, i.expected);
        // The background rate is learnt without the outage: about one failure per 10 min
        // of 12,000 requests.
        assert!(d.background.rate > 4e-5 && d.background.rate < 1.5e-4, "{}", d.background.rate);
        let bg = background_report(&rows, &d, &per_sec);
        assert_eq!(bg.failed as usize, rows.len() - 12);
    }

    #[test]
    fn sparse_outages_are_found_with_a_wider_gap() {
        // 15 failures two minutes apart (a slow trickle from a broken backend) on a quiet
        // server: no 60 s group, one wide group.
        let per_sec = steady(2, 0, 7_200);
        let rows: Vec<IncRow> = (0..15).map(|i| row(600_000 + i * 120_000, Cause::BackendDown)).collect();
        let d = run(&rows, &per_sec);
        assert_eq!(d.incidents.len(), 1);
        assert_eq!(d.incidents[0].failed, 15);
    }

    #[test]
    fn spike_is_measured_against_the_baseline() {
        let mut per_sec = steady(1, 10_000, 10_600);
        for s in 600..660 {
            let mut c = [0u32; col::N];
            c[col::TOTAL] = 10;
            per_sec.add(10_000 + s, &c);
        }
        let rows: Vec<IncRow> = (0..5).map(|i| row((10_600 + i) * 1000 + 600, Cause::FpmPoolExhausted)).collect();
        let d = run(&rows, &per_sec);
        let (on, base) = d.incidents[0].spike.unwrap();
        assert!((on - 10.0).abs() < 0.01 && (base - 1.0).abs() < 0.01, "{on} {base}");
    }
}
