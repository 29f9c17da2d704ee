//! Indexes over the other logs that correlation rules consult: FPM events by time, by
//! request and by kind; the FPM master's lifecycle; each upstream peer's answer history; and
//! which time ranges the nginx error and FPM logs cover.
//!
//! Input: the scan's sorted events, traffic counters and per-source time ranges. Output:
//! read-only lookups. Invariants: lookups are binary searches or hash lookups (correlation
//! stays n log n in the number of events: no lookup scans more than the events it returns,
//! apart from request keys that FPM truncated); nothing here decides a cause.

use crate::model::{FpmEvent, FpmKind, Ts};
use crate::scan::traffic::PeerTotals;
use crate::scan::KindRanges;
use std::collections::HashMap;

/// `METHOD /path?query` split for matching nginx request lines against FPM's
/// `(request: "METHOD /script?query")`, which is SCRIPT_NAME-based (front controllers differ
/// in the path) and truncated (uri 128, query 512 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReqKey {
    pub method: String,
    pub path: String,
    pub query: String,
}

impl ReqKey {
    /// From an nginx request line (`GET /x?y HTTP/1.1`) or an FPM request (`GET /x?y`).
    pub fn parse(s: &str) -> Option<ReqKey> {
        let mut it = s.splitn(2, ' ');
        let method = it.next()?.to_string();
        let rest = it.next()?;
        let target = match rest.rsplit_once(' ') {
            Some((t, proto)) if proto.starts_with("HTTP/") => t,
            _ => rest,
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Some(ReqKey { method, path: path.to_string(), query: query.to_string() })
    }

    /// Does an FPM request name the same request? Query strings must agree when present
    /// (they survive front controllers); otherwise the paths must.
    pub fn matches_fpm(&self, fpm: &ReqKey) -> bool {
        if self.method != fpm.method {
            return false;
        }
        let q = |a: &str, b: &str| a == b || (b.len() >= 512 && a.starts_with(b));
        if !self.query.is_empty() || !fpm.query.is_empty() {
            return q(&self.query, &fpm.query);
        }
        self.path == fpm.path || (fpm.path.len() >= 128 && self.path.starts_with(&fpm.path))
    }
}

pub struct FpmIndex<'a> {
    pub events: &'a [FpmEvent],
    /// Request-carrying events (timed out / too slow) by kind, method and query (or path),
    /// each list in time order.
    by_req: HashMap<(FpmKind, String, String), Vec<usize>>,
    /// Events of each kind (`FpmKind as usize`), in time order.
    by_kind: Vec<Vec<usize>>,
    /// Events of a kind by child pid, in time order.
    by_pid: HashMap<(FpmKind, u32), Vec<usize>>,
    /// Lifecycle events, in time order.
    pub lifecycle: Vec<usize>,
    pub socket_warnings: Vec<usize>,
    /// Worker output with a PHP fatal error, in time order.
    pub fatal: Vec<usize>,
    /// Child exits that can explain a failure (a signal, or a non-zero code), in time order.
    pub exits: Vec<usize>,
    /// Time ranges covered by FPM master logs.
    covered: Coverage,
}

/// Indices into `events` (in time order) with `from <= ts <= to`.
fn in_time<'s>(events: &[FpmEvent], list: &'s [usize], from: Ts, to: Ts) -> &'s [usize] {
    let a = list.partition_point(|&i| events[i].ts < from);
    let b = list.partition_point(|&i| events[i].ts <= to);
    &list[a..b.max(a)]
}

fn selector(k: &ReqKey) -> String {
    if k.query.is_empty() {
        k.path.clone()
    } else {
        format!("?{}", k.query)
    }
}

impl<'a> FpmIndex<'a> {
    pub fn new(events: &'a [FpmEvent], ranges: &[KindRanges]) -> Self {
        let mut by_req: HashMap<(FpmKind, String, String), Vec<usize>> = HashMap::new();
        let mut by_kind = vec![Vec::new(); FpmKind::ALL.len()];
        let mut by_pid: HashMap<(FpmKind, u32), Vec<usize>> = HashMap::new();
        let (mut lifecycle, mut socket_warnings, mut fatal, mut exits) = (vec![], vec![], vec![], vec![]);
        for (i, e) in events.iter().enumerate() {
            if let Some(k) = e.request.as_deref().and_then(ReqKey::parse) {
                let sel = selector(&k);
                by_req.entry((e.kind, k.method, sel)).or_default().push(i);
            }
            by_kind[e.kind as usize].push(i);
            if let Some(p) = e.child_pid {
                by_pid.entry((e.kind, p)).or_default().push(i);
            }
            if e.kind.is_lifecycle() {
                lifecycle.push(i);
            }
            match e.kind {
                FpmKind::SocketPermission => socket_warnings.push(i),
                FpmKind::PhpMessage | FpmKind::SaidIntoStderr if e.message.contains("Fatal error") => fatal.push(i),
                FpmKind::ChildSignal => exits.push(i),
                FpmKind::ChildExitCode if e.exit_code != Some(0) => exits.push(i),
                _ => {}
            }
        }
        let covered = Coverage::new(ranges.iter().filter_map(|r| r.fpm));
        FpmIndex { events, by_req, by_kind, by_pid, lifecycle, socket_warnings, fatal, exits, covered }
    }

    pub fn has_logs(&self) -> bool {
        self.covered.any()
    }

    /// Does some FPM master log span `ts` (with a minute of slack at either end)?
    pub fn covers(&self, ts: Ts) -> bool {
        self.covered.covers(ts)
    }

    /// Indices of events with `from <= ts <= to`.
    pub fn window(&self, from: Ts, to: Ts) -> std::ops::Range<usize> {
        let a = self.events.partition_point(|e| e.ts < from);
        let b = self.events.partition_point(|e| e.ts <= to);
        a..b.max(a)
    }

    /// Events of `kind` naming the request `key` with `from <= ts <= to`, in time order.
    pub fn for_request<'k>(
        &'k self,
        key: &'k ReqKey,
        kind: FpmKind,
        from: Ts,
        to: Ts,
    ) -> impl Iterator<Item = usize> + 'k {
        let list = self.by_req.get(&(kind, key.method.clone(), selector(key))).map(Vec::as_slice).unwrap_or(&[]);
        in_time(self.events, list, from, to).iter().copied().filter(move |&i| {
            self.events[i].request.as_deref().and_then(ReqKey::parse).is_some_and(|f| key.matches_fpm(&f))
        })
    }

    /// The last lifecycle event at or before `ts` (within `back` ms).
    pub fn last_lifecycle(&self, ts: Ts, back: Ts) -> Option<usize> {
        in_time(self.events, &self.lifecycle, ts - back, ts).last().copied()
    }

    /// Did FPM start (or start again after a reload) in `[from, to]`?
    pub fn started_in(&self, from: Ts, to: Ts) -> bool {
        STARTS.iter().any(|&k| self.kind_in(k, from, to).next().is_some())
    }

    /// The first event of one of `kinds` after `ts` (within `ahead` ms).
    pub fn next_of(&self, ts: Ts, ahead: Ts, kinds: &[FpmKind]) -> Option<usize> {
        kinds.iter().filter_map(|&k| self.kind_in(k, ts, ts + ahead).next()).min()
    }

    /// The last event of one of `kinds` in `[ts - back, ts]`.
    pub fn prev_of(&self, ts: Ts, back: Ts, kinds: &[FpmKind]) -> Option<usize> {
        kinds.iter().filter_map(|&k| self.kind_in(k, ts - back, ts).next_back()).max()
    }

    /// Events of `kind` in `[from, to]`, in time order.
    pub fn kind_in(&self, kind: FpmKind, from: Ts, to: Ts) -> std::iter::Copied<std::slice::Iter<'_, usize>> {
        in_time(self.events, &self.by_kind[kind as usize], from, to).iter().copied()
    }

    /// Events of `kind` from child `pid` in `[from, to]`, in time order.
    pub fn pid_in(
        &self,
        kind: FpmKind,
        pid: Option<u32>,
        from: Ts,
        to: Ts,
    ) -> std::iter::Copied<std::slice::Iter<'_, usize>> {
        let list = pid.and_then(|p| self.by_pid.get(&(kind, p))).map(Vec::as_slice).unwrap_or(&[]);
        in_time(self.events, list, from, to).iter().copied()
    }

    /// Worker output with a PHP fatal error in `[from, to]`, in time order.
    pub fn fatal_in(&self, from: Ts, to: Ts) -> std::iter::Copied<std::slice::Iter<'_, usize>> {
        in_time(self.events, &self.fatal, from, to).iter().copied()
    }
}

/// Time ranges covered by some logs, merged and sorted, so a lookup is a binary search.
#[derive(Default)]
pub struct Coverage {
    spans: Vec<(Ts, Ts)>,
}

/// Slack at either end of a log's range.
const COVER_SLACK: Ts = 60_000;

impl Coverage {
    pub fn new(ranges: impl Iterator<Item = (Ts, Ts)>) -> Self {
        let mut r: Vec<(Ts, Ts)> = ranges.map(|(a, b)| (a - COVER_SLACK, b + COVER_SLACK)).collect();
        r.sort_unstable();
        let mut spans: Vec<(Ts, Ts)> = Vec::with_capacity(r.len());
        for (a, b) in r {
            match spans.last_mut() {
                Some(l) if a <= l.1 => l.1 = l.1.max(b),
                _ => spans.push((a, b)),
            }
        }
        Coverage { spans }
    }

    pub fn any(&self) -> bool {
        !self.spans.is_empty()
    }

    /// Does some range hold `ts` (with a minute of slack at either end)?
    pub fn covers(&self, ts: Ts) -> bool {
        let i = self.spans.partition_point(|s| s.1 < ts);
        self.spans.get(i).is_some_and(|s| s.0 <= ts)
    }
}

pub const STOPS: &[FpmKind] = &[FpmKind::Terminating, FpmKind::Finishing, FpmKind::Reloading, FpmKind::Exiting];
pub const STARTS: &[FpmKind] = &[FpmKind::Starting, FpmKind::Ready];
pub const START_FAILURES: &[FpmKind] =
    &[FpmKind::StartFailure, FpmKind::BindFailure, FpmKind::ConfigError, FpmKind::ReloadFailed];

/// Answer history of upstream peers, from the access logs' `$upstream_*` lists.
pub struct Peers<'a> {
    /// Peers seen in some access log's `$upstream_addr`; a peer not in here has no known
    /// history (its access log has no upstream fields).
    pub map: HashMap<&'a [u8], &'a PeerTotals>,
}

impl<'a> Peers<'a> {
    pub fn new(peers: &'a rustc_hash::FxHashMap<Box<[u8]>, PeerTotals>) -> Self {
        Peers { map: peers.iter().map(|(k, v)| (&k[..], v)).collect() }
    }

    pub fn get(&self, peer: &str) -> Option<&'a PeerTotals> {
        self.map.get(peer.as_bytes()).copied()
    }
}

/// Time ranges covered by nginx error logs, and the least severe level they show.
pub struct ErrorCoverage {
    covered: Coverage,
    pub lowest_level: Option<crate::model::Level>,
}

impl ErrorCoverage {
    /// `quiet_level`: the least severe level of the rows kept out of memory (`scan::quiet`).
    pub fn new(
        ranges: &[KindRanges],
        errors: &[crate::model::ErrorEvent],
        quiet_level: Option<crate::model::Level>,
    ) -> Self {
        let covered = Coverage::new(ranges.iter().filter_map(|r| r.error));
        ErrorCoverage { covered, lowest_level: errors.iter().map(|e| e.level).chain(quiet_level).max() }
    }

    pub fn any(&self) -> bool {
        self.covered.any()
    }

    pub fn covers(&self, ts: Ts) -> bool {
        self.covered.covers(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_merges_ranges() {
        let c = Coverage::new([(1_000_000, 2_000_000), (1_500_000, 3_000_000), (9_000_000, 9_000_000)].into_iter());
        assert!(c.covers(1_000_000 - 60_000) && c.covers(2_500_000) && c.covers(3_060_000));
        assert!(!c.covers(3_060_001) && !c.covers(8_000_000) && c.covers(9_030_000));
        assert!(!Coverage::default().any() && !Coverage::default().covers(0));
    }

    #[test]
    fn request_keys() {
        let n = ReqKey::parse("GET /slow.php?rid=a-1&sleep=5 HTTP/1.1").unwrap();
        let f = ReqKey::parse("GET /slow.php?rid=a-1&sleep=5").unwrap();
        assert!(n.matches_fpm(&f));
        // Front controller: the path differs, the query names the request.
        let fc = ReqKey::parse("GET /index.php?rid=a-1&sleep=5").unwrap();
        assert!(n.matches_fpm(&fc));
        let other = ReqKey::parse("GET /slow.php?rid=a-2&sleep=5").unwrap();
        assert!(!n.matches_fpm(&other));
        let post = ReqKey::parse("POST /slow.php?rid=a-1&sleep=5").unwrap();
        assert!(!n.matches_fpm(&post));
        assert_eq!(ReqKey::parse("GET").map(|k| k.method), None);
    }
}
