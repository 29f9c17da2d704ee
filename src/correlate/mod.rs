//! Correlation: every failing request and every upstream-failure line gets a deeper cause
//! with evidence and confidence.
//!
//! Input: the scan's events (requests, nginx error lines, FPM events), traffic counters and
//! per-source coverage. Output: `Correlation`: a `TaggedRequest` per failing request (same
//! order as the scan's requests) and a `Verdict` per upstream-failure error line (incidents
//! are detected on the tagged rows, see `incidents`).
//! Invariants: requests are joined to error lines by client, request line, host, upstream
//! and time (`join`), lines to FPM and lifecycle evidence by the rules of taxonomy.md
//! section 5 (`rules`); all inputs are sorted, so the result is deterministic.

pub mod background;
mod connect;
pub mod evidence;
pub mod incidents;
pub mod join;
mod ordered;
mod request;
mod reset;
pub mod rules;
pub mod skew;

use crate::model::{Cause, CauseClass, Confidence, LogSource, Ts, Zone};
use crate::scan::ScanOutput;
pub use incidents::Incident;

/// A line a verdict rests on: its time, and its file and line number packed in one word
/// (16 bytes, not 24: every verdict holds a few, and 320 k verdicts are held at 8 GiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evid {
    pub ts: Ts,
    at: u64,
}

impl Evid {
    /// Line numbers below 2^40 (a trillion lines: a file of 100 TB), files below 2^24.
    const LINE_BITS: u32 = 40;

    /// Beyond the packed ranges (no log comes near them) a number saturates.
    pub fn new(ts: Ts, source: u32, line: u64) -> Evid {
        let line = line.min((1 << Self::LINE_BITS) - 1);
        let source = u64::from(source).min((1 << (64 - Self::LINE_BITS)) - 1);
        Evid { ts, at: source << Self::LINE_BITS | line }
    }

    pub fn source(&self) -> u32 {
        (self.at >> Self::LINE_BITS) as u32
    }

    pub fn line(&self) -> u64 {
        self.at & ((1 << Self::LINE_BITS) - 1)
    }
}

#[derive(Clone, Debug)]
pub struct Verdict {
    pub class: CauseClass,
    pub cause: Cause,
    pub confidence: Confidence,
    pub evidence: Vec<Evid>,
    /// Why, in words (also the reason of an `unexplained`). Shared: a failing request's
    /// verdict is most often its nginx line's, cloned, and both are held to the end of the run.
    pub detail: std::sync::Arc<str>,
}

/// Did the client see the failure?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 499 or >= 500.
    Failed,
    /// An upstream attempt failed but a retry answered (`502, 200`).
    Retried,
    /// nginx refused the request itself (`limit_req`, `limit_conn`): the client got an error
    /// but no upstream failed, so it is counted apart and never starts or swells an incident.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Failed => "failed",
            Outcome::Retried => "retried",
            Outcome::Refused => "refused",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TaggedRequest {
    pub outcome: Outcome,
    /// Signature of the nginx line the verdict rests on (`none` if no line).
    pub proximate: &'static str,
    pub verdict: Verdict,
    pub lines: Vec<usize>,
}

#[derive(Default)]
pub struct Correlation {
    pub requests: Vec<TaggedRequest>,
    /// Per nginx error event: the deeper cause of upstream-failure lines.
    pub lines: Vec<Option<Verdict>>,
    /// Per nginx error event: the request it joined.
    pub line_request: Vec<Option<usize>>,
}

pub struct Input<'a> {
    pub sources: &'a [LogSource],
    pub scan: &'a ScanOutput,
    pub zone: &'a Zone,
}

pub fn correlate(input: &Input) -> Correlation {
    let s = input.scan;
    let t = std::time::Instant::now();
    let joined = join::join(&s.requests, &s.errors);
    crate::timings::timing("correlate: join", t);
    let fpm = evidence::FpmIndex::new(&s.fpm, &s.kind_ranges);
    let peers = evidence::Peers::new(&s.traffic.peers);
    let cover = evidence::ErrorCoverage::new(&s.kind_ranges, &s.errors, s.quiet.as_ref().and_then(|q| q.max_level));
    let mut rules = rules::Rules::new(&s.errors, fpm, peers, cover)
        .with_zone(input.zone.clone())
        .with_files(input.sources.iter().map(|x| x.display.as_str()).collect());
    // One copy of each distinct detail text: a verdict's words repeat (1,010 distinct texts
    // among the 160,720 requests of the 8 GiB bench corpus; sharing them took its peak from
    // 215 to 209-210 MiB).
    let mut details = crate::model::texts::Interner::default();
    let mut share = |v: &mut Verdict| v.detail = details.get(&v.detail);
    let mut lines: Vec<Option<Verdict>> = (0..s.errors.len())
        .map(|i| {
            s.errors[i].failure.then(|| {
                let mut v = rules.line_verdict(i);
                share(&mut v);
                v
            })
        })
        .collect();
    // Sources of one nginx error log (its rotation set) share the number of its first file.
    let mut first_of_set: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    let log_ids: Vec<u32> = input.sources.iter().map(|s| *first_of_set.entry(s.set.as_str()).or_insert(s.id)).collect();
    let log_of = |src: u32| log_ids.get(src as usize).copied().unwrap_or(u32::MAX);
    rules.no_live_pass(&mut lines, &log_of);
    for v in lines.iter_mut().flatten() {
        v.evidence.shrink_to_fit();
        // A detail the live pass rewrote is this verdict's alone.
        if std::sync::Arc::strong_count(&v.detail) == 1 {
            share(v);
        }
    }
    // Each request's lines move into its tagged row (a clone per request was an allocation
    // more per failing request, 2 MiB of the 8 GiB peak).
    let requests: Vec<TaggedRequest> = s
        .requests
        .iter()
        .zip(joined.lines_of)
        .enumerate()
        .map(|(ri, (r, mut own))| {
            let (proximate, mut verdict) = rules.request_verdict(r, &own, &lines, joined.loose[ri]);
            share(&mut verdict);
            // Held to the end of the run: no room left over from the pushes.
            verdict.evidence.shrink_to_fit();
            let outcome = match (r.client_facing(), verdict.class.is_refusal()) {
                (true, true) => Outcome::Refused,
                (true, false) => Outcome::Failed,
                (false, _) => Outcome::Retried,
            };
            own.shrink_to_fit();
            TaggedRequest { outcome, proximate, verdict, lines: own }
        })
        .collect();
    // A request-level refinement (e.g. queued before a slow script ran) also holds for the
    // nginx line the request rests on.
    for (ri, t) in requests.iter().enumerate() {
        let primary = t.lines.iter().rev().copied().find(|&li| s.errors[li].failure);
        if let (Some(li), false) = (primary, joined.loose[ri]) {
            if lines[li].as_ref().is_some_and(|v| (v.class, v.cause) != (t.verdict.class, t.verdict.cause)) {
                lines[li] = Some(t.verdict.clone());
            }
        }
    }
    Correlation { requests, lines, line_request: joined.request_of }
}

#[cfg(test)]
mod tests {
    use super::Evid;

    /// File and line come back as packed, up to the packed ranges, and saturate past them.
    #[test]
    fn evidence_packs_file_and_line() {
        for (src, line) in [(0, 0), (1, 1), (7, 123_456_789), ((1 << 24) - 1, (1 << 40) - 1)] {
            let e = Evid::new(-5, src, line);
            assert_eq!((e.ts, e.source(), e.line()), (-5, src, line));
        }
        let e = Evid::new(0, u32::MAX, u64::MAX);
        assert_eq!((e.source(), e.line()), ((1 << 24) - 1, (1 << 40) - 1));
        assert_ne!(Evid::new(0, 1, 2), Evid::new(0, 2, 1));
        assert_eq!(std::mem::size_of::<Evid>(), 16);
    }
}
