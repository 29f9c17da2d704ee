//! Indexes over the other logs that correlation rules consult: FPM events by time, by
//! request and by kind; the FPM master's lifecycle; each upstream peer's answer history; and
//! which time ranges the nginx error and FPM logs cover.
//!
//! Input: the scan's sorted events, traffic counters and per-source time ranges. Output:
//! read-only lookups. Invariants: lookups are binary searches or hash lookups (correlation
//! stays linear in the number of events); nothing here decides a cause.

use crate::model::{FpmEvent, FpmKind, LogKind, LogSource, Ts};
use crate::scan::traffic::PeerTotals;
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
    /// Request-carrying events (timed out / too slow) by method + query (or path).
    by_req: HashMap<(String, String), Vec<usize>>,
    /// Lifecycle events, in time order.
    pub lifecycle: Vec<usize>,
    pub socket_warnings: Vec<usize>,
    pub disallowed: Vec<usize>,
    /// Time ranges covered by FPM master logs.
    covered: Vec<(Ts, Ts)>,
}

impl<'a> FpmIndex<'a> {
    pub fn new(events: &'a [FpmEvent], sources: &[LogSource], ranges: &[Option<(Ts, Ts)>]) -> Self {
        let mut by_req: HashMap<(String, String), Vec<usize>> = HashMap::new();
        let mut lifecycle = Vec::new();
        let mut socket_warnings = Vec::new();
        let mut disallowed = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if let Some(k) = e.request.as_deref().and_then(ReqKey::parse) {
                let sel = if k.query.is_empty() { k.path.clone() } else { format!("?{}", k.query) };
                by_req.entry((k.method, sel)).or_default().push(i);
            }
            if e.kind.is_lifecycle() {
                lifecycle.push(i);
            }
            match e.kind {
                FpmKind::SocketPermission => socket_warnings.push(i),
                FpmKind::ConnectionDisallowed => disallowed.push(i),
                _ => {}
            }
        }
        let covered = sources
            .iter()
            .filter(|s| s.kind == LogKind::FpmMaster)
            .filter_map(|s| ranges.get(s.id as usize).copied().flatten())
            .collect();
        FpmIndex { events, by_req, lifecycle, socket_warnings, disallowed, covered }
    }

    pub fn has_logs(&self) -> bool {
        !self.covered.is_empty()
    }

    /// Does some FPM master log span `ts` (with a minute of slack at either end)?
    pub fn covers(&self, ts: Ts) -> bool {
        self.covered.iter().any(|(a, b)| ts >= a - 60_000 && ts <= b + 60_000)
    }

    /// Indices of events with `from <= ts <= to`.
    pub fn window(&self, from: Ts, to: Ts) -> std::ops::Range<usize> {
        let a = self.events.partition_point(|e| e.ts < from);
        let b = self.events.partition_point(|e| e.ts <= to);
        a..b.max(a)
    }

    /// Events of `kind` naming the request `key`.
    pub fn for_request(&self, key: &ReqKey, kind: FpmKind) -> impl Iterator<Item = usize> + '_ {
        let sel = if key.query.is_empty() { key.path.clone() } else { format!("?{}", key.query) };
        let list = self.by_req.get(&(key.method.clone(), sel)).map(Vec::as_slice).unwrap_or(&[]);
        let key = key.clone();
        list.iter().copied().filter(move |&i| {
            let e = &self.events[i];
            e.kind == kind && e.request.as_deref().and_then(ReqKey::parse).is_some_and(|f| key.matches_fpm(&f))
        })
    }

    /// The last lifecycle event at or before `ts` (within `back` ms).
    pub fn last_lifecycle(&self, ts: Ts, back: Ts) -> Option<usize> {
        self.lifecycle.iter().rev().copied().find(|&i| self.events[i].ts <= ts && self.events[i].ts >= ts - back)
    }

    /// The first event of one of `kinds` after `ts` (within `ahead` ms).
    pub fn next_of(&self, ts: Ts, ahead: Ts, kinds: &[FpmKind]) -> Option<usize> {
        self.lifecycle.iter().copied().find(|&i| {
            self.events[i].ts >= ts && self.events[i].ts <= ts + ahead && kinds.contains(&self.events[i].kind)
        })
    }

    /// The last event of one of `kinds` in `[ts - back, ts]`.
    pub fn prev_of(&self, ts: Ts, back: Ts, kinds: &[FpmKind]) -> Option<usize> {
        self.lifecycle.iter().rev().copied().find(|&i| {
            self.events[i].ts <= ts && self.events[i].ts >= ts - back && kinds.contains(&self.events[i].kind)
        })
    }

    /// Events of `kind` in `[from, to]`.
    pub fn kind_in(&self, kind: FpmKind, from: Ts, to: Ts) -> impl Iterator<Item = usize> + '_ {
        self.window(from, to).filter(move |&i| self.events[i].kind == kind)
    }
}

pub const STOPS: &[FpmKind] = &[FpmKind::Terminating, FpmKind::Finishing, FpmKind::Reloading, FpmKind::Exiting];
pub const STARTS: &[FpmKind] = &[FpmKind::Starting, FpmKind::Ready];
pub const START_FAILURES: &[FpmKind] = &[FpmKind::StartFailure, FpmKind::BindFailure];

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
    covered: Vec<(Ts, Ts)>,
    pub lowest_level: Option<crate::model::Level>,
}

impl ErrorCoverage {
    pub fn new(sources: &[LogSource], ranges: &[Option<(Ts, Ts)>], errors: &[crate::model::ErrorEvent]) -> Self {
        let covered = sources
            .iter()
            .filter(|s| s.kind == LogKind::NginxError)
            .filter_map(|s| ranges.get(s.id as usize).copied().flatten())
            .collect();
        ErrorCoverage { covered, lowest_level: errors.iter().map(|e| e.level).max() }
    }

    pub fn any(&self) -> bool {
        !self.covered.is_empty()
    }

    pub fn covers(&self, ts: Ts) -> bool {
        self.covered.iter().any(|(a, b)| ts >= a - 60_000 && ts <= b + 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
