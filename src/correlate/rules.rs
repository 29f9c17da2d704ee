//! Deeper-cause rules (taxonomy.md section 5, R1..R23) for nginx error lines and failing
//! requests.
//!
//! Input: error events, the FPM index, peer histories, error-log coverage. Output: a
//! `Verdict` (class, cause, confidence, evidence, detail) per upstream-failure line and per
//! failing request. Invariants: every verdict carries the file:line of each line it rests
//! on; a child exit or kill explains at most one failure line at full confidence (one worker
//! serves one request); where evidence is missing the verdict says so in `detail` and lowers
//! its confidence, and a request nothing explains is `unexplained` with the reason.

use super::evidence::{ErrorCoverage, FpmIndex, Peers, ReqKey, STARTS, START_FAILURES};
use super::{Evid, Verdict};
use crate::model::time::format_rfc3339;
use crate::model::{Cause, CauseClass, Confidence, ErrorEvent, FpmKind, Ts, Zone};

pub(super) const KILL_WINDOW: Ts = 2_000;
pub(super) const MAX_CHILDREN_LOOKBACK: Ts = 600_000;
/// FPM reports pm.max_children up to this long after the first refused connection (1 s
/// maintenance ticks; observed 2.5 s).
const MAX_CHILDREN_AHEAD: Ts = 3_000;
/// How far back FPM's lifecycle state is looked for.
const LIFECYCLE_LOOKBACK: Ts = 6 * 3_600_000;
/// Stamps of whole seconds: a start in the failure's own second may have come after it.
const SAME_SECOND: Ts = 1_000;
/// The reason of a failed start is logged just before `FPM initialization failed`.
const START_REASON_BEFORE: Ts = 5_000;
/// A 504 whose script FPM later reports `execution timed out` (timeouts misaligned), or
/// earlier `executing too slow`: within an hour of it.
const SAME_SCRIPT_WITHIN: Ts = 3_600_000;
/// A slow-log block of the same child from 2 s before its slow line to 5 s after.
const SLOWLOG_BEFORE: Ts = 2_000;
const SLOWLOG_AFTER: Ts = 5_000;
/// FPM's `executing too slow` for some script in the two minutes before a 504.
const ANY_SLOW_BEFORE: Ts = 120_000;

pub struct Rules<'a> {
    /// Display names of the sources (for `file:line` in details).
    pub files: Vec<&'a str>,
    pub errors: &'a [ErrorEvent],
    pub fpm: FpmIndex<'a>,
    pub peers: Peers<'a>,
    pub cover: ErrorCoverage,
    /// Per reset or broken-pipe line: the child exit it claimed and whether another line had
    /// it first (`reset::claim_exits`, a step before any verdict).
    pub(super) exit_claims: std::collections::HashMap<usize, (usize, bool)>,
    zone: Zone,
}

pub(super) fn verdict(
    class: CauseClass,
    cause: Cause,
    confidence: Confidence,
    evidence: Vec<Evid>,
    detail: impl Into<std::sync::Arc<str>>,
) -> Verdict {
    Verdict { class, cause, confidence, evidence, detail: detail.into() }
}

pub(super) fn lower(c: Confidence) -> Confidence {
    match c {
        Confidence::High => Confidence::Medium,
        _ => Confidence::Low,
    }
}

pub(super) fn is_unix(peer: Option<&str>) -> bool {
    peer.is_some_and(|p| p.starts_with("unix:"))
}

impl<'a> Rules<'a> {
    pub fn new(errors: &'a [ErrorEvent], fpm: FpmIndex<'a>, peers: Peers<'a>, cover: ErrorCoverage) -> Self {
        let mut r = Rules {
            files: Vec::new(),
            errors,
            fpm,
            peers,
            cover,
            exit_claims: Default::default(),
            zone: Zone::Fixed(0),
        };
        r.exit_claims = r.claim_exits();
        r
    }

    /// The zone used in `detail` texts.
    pub fn with_zone(mut self, z: Zone) -> Self {
        self.zone = z;
        self
    }

    pub(super) fn t(&self, ts: Ts) -> String {
        format_rfc3339(ts, &self.zone)
    }

    /// The source names used in `detail` texts.
    pub fn with_files(mut self, files: Vec<&'a str>) -> Self {
        self.files = files;
        self
    }

    /// `file:line` of a line of a source.
    pub(super) fn place(&self, source: u32, line: u64) -> String {
        format!("{}:{line}", self.files.get(source as usize).copied().unwrap_or("?"))
    }

    pub fn ev_err(&self, i: usize) -> Evid {
        let e = &self.errors[i];
        Evid::new(e.ts, e.source, e.line)
    }

    pub(super) fn ev_fpm(&self, i: usize) -> Evid {
        let e = &self.fpm.events[i];
        Evid::new(e.ts, e.source, e.line)
    }

    /// The verdict for one upstream-failure line (C22 lines get a placeholder, resolved by
    /// `no_live_pass`).
    pub fn line_verdict(&mut self, li: usize) -> Verdict {
        let e = &self.errors[li];
        let ev = vec![self.ev_err(li)];
        use CauseClass::*;
        match e.class {
            C1 if is_unix(e.peer()) && e.errno == Some(111) => {
                // The socket file is there but nothing listens on it: its master died without
                // removing it (FPM removes its socket when it stops cleanly; observed.md).
                let mut v = self.connect_failure(e, ev);
                if v.class == C1 {
                    v.detail = format!(
                        "{}; a stale socket: the file exists but nothing listens on it, so FPM's master died without removing it (SIGKILL, the OOM killer, a crash)",
                        v.detail
                    )
                    .into();
                }
                v
            }
            C1 | C2 => self.connect_failure(e, ev),
            C3 => self.permission(e, ev),
            C4 => self.backlog_full(e, ev),
            C5 => self.timeout(e, ev),
            C17 => self.connect_timeout(e, ev),
            C7 => self.reset(li, e, ev),
            C27 => self.broken_pipe(li, e, ev),
            C22 => verdict(C22, Cause::NoLiveUpstreams, Confidence::Low, ev, ""),
            Unclassified => verdict(
                Unclassified,
                Cause::Unclassified,
                Confidence::Low,
                ev,
                "no signature matches this upstream-related line",
            ),
            c => verdict(c, c.default_cause(), Confidence::High, ev, "the nginx line alone identifies the cause"),
        }
    }

    fn permission(&mut self, e: &ErrorEvent, mut ev: Vec<Evid>) -> Verdict {
        let cls = CauseClass::C3;
        if !is_unix(e.peer()) {
            return verdict(cls, Cause::SelinuxSuspected, Confidence::Medium, ev,
                "permission denied on a TCP connect: only a security policy (SELinux httpd_can_network_connect, seccomp) denies that");
        }
        if let Some(&i) = self.fpm.socket_warnings.first() {
            ev.push(self.ev_fpm(i));
            return verdict(
                cls,
                Cause::SocketPermission,
                Confidence::High,
                ev,
                "FPM warned about the socket's owner or ACL",
            );
        }
        if self.fpm.covers(e.ts) {
            return verdict(
                cls,
                Cause::SocketPermission,
                Confidence::Medium,
                ev,
                "FPM was running but nginx may not open its socket: listen.owner, listen.group or listen.mode",
            );
        }
        verdict(cls, Cause::SelinuxSuspected, Confidence::Low, ev,
            "permission denied on the socket and no FPM log to show a permission setting: a security policy (SELinux) is suspected")
    }

    /// FPM's last lifecycle event at a failure at `t`: a start in the same second as the
    /// failure does not count (the stamps have one-second resolution: the failure most
    /// likely came first, while FPM was still down), stops and failed starts do.
    pub(super) fn lifecycle_state(&self, t: Ts) -> Option<usize> {
        let mut at = t;
        loop {
            let i = self.fpm.last_lifecycle(at, LIFECYCLE_LOOKBACK)?;
            let e = &self.fpm.events[i];
            if !(STARTS.contains(&e.kind) && e.ts > t - SAME_SECOND) {
                return Some(i);
            }
            at = e.ts - 1;
        }
    }

    /// When FPM's last lifecycle event `i` is a failed start: the verdict that it was down
    /// for that reason, naming the most specific error FPM logged for it (`cannot get uid for
    /// user 'www-data'`, `unable to bind listening socket ...`), with that line as evidence.
    pub(super) fn start_failure(&self, i: usize, class: CauseClass, ev: &[Evid]) -> Option<Verdict> {
        let f = &self.fpm.events[i];
        if !START_FAILURES.contains(&f.kind) {
            return None;
        }
        // The reason is logged just before `FPM initialization failed` (same second).
        let reason = [
            FpmKind::ConfigError,
            FpmKind::BindFailure,
            FpmKind::FileError,
            FpmKind::SystemError,
            FpmKind::ResourceLimit,
        ]
        .iter()
        .filter_map(|&k| self.fpm.kind_in(k, f.ts - START_REASON_BEFORE, f.ts).next_back())
        .max()
        .unwrap_or(i);
        let r = &self.fpm.events[reason];
        let mut ev = ev.to_vec();
        ev.push(self.ev_fpm(reason));
        if reason != i {
            ev.push(self.ev_fpm(i));
        }
        let how = match class {
            CauseClass::C2 => "the socket was missing",
            CauseClass::C1 | CauseClass::C17 => "refused",
            _ => "something else answered on FPM's address and closed the connection",
        };
        let d = format!(
            "{how}: FPM was down, it failed to start at {}: {} ({})",
            self.t(r.ts),
            r.message.trim(),
            self.place(r.source, r.line)
        );
        Some(verdict(CauseClass::C15, Cause::FpmStartFailure, Confidence::High, ev, d))
    }

    pub(super) fn max_children_before(&self, t: Ts) -> Option<usize> {
        // Observed: FPM logs it up to 2.5 s after the first refused connection (1 s
        // maintenance ticks), so look a little past the failure too.
        self.fpm.kind_in(FpmKind::MaxChildren, t - MAX_CHILDREN_LOOKBACK, t + MAX_CHILDREN_AHEAD).next_back()
    }

    fn backlog_full(&mut self, e: &ErrorEvent, mut ev: Vec<Evid>) -> Verdict {
        if let Some(i) = self.max_children_before(e.ts) {
            ev.push(self.ev_fpm(i));
            return verdict(
                CauseClass::C4,
                Cause::FpmPoolExhausted,
                Confidence::High,
                ev,
                "all FPM workers busy and the listen backlog full",
            );
        }
        verdict(
            CauseClass::C4,
            Cause::FpmPoolExhausted,
            Confidence::Medium,
            ev,
            "the FPM listen backlog was full (EAGAIN); FPM logged no max_children warning (pm = static logs none)",
        )
    }

    fn timeout(&mut self, e: &ErrorEvent, mut ev: Vec<Evid>) -> Verdict {
        let t = e.ts;
        let cls = CauseClass::C5;
        if let Some(k) = e.request().and_then(ReqKey::parse) {
            let late =
                self.fpm.for_request(&k, FpmKind::ExecutionTimedOut, t - SAME_SECOND, t + SAME_SCRIPT_WITHIN).next();
            if let Some(i) = late {
                ev.push(self.ev_fpm(i));
                let d = format!(
                    "nginx gave up at {} (read timeout); FPM killed the script later at {}: request_terminate_timeout is longer than fastcgi_read_timeout",
                    self.t(t),
                    self.t(self.fpm.events[i].ts)
                );
                return verdict(cls, Cause::TimeoutsMisaligned, Confidence::High, ev, d);
            }
            let slow =
                self.fpm.for_request(&k, FpmKind::ExecutingTooSlow, t - SAME_SCRIPT_WITHIN, t + SLOWLOG_AFTER).next();
            if let Some(i) = slow {
                ev.push(self.ev_fpm(i));
                let pid = self.fpm.events[i].child_pid;
                let ts = self.fpm.events[i].ts;
                let block = self.fpm.pid_in(FpmKind::SlowlogTrace, pid, ts - SLOWLOG_BEFORE, ts + SLOWLOG_AFTER).next();
                let mut d = "FPM logged this request as executing too slow".to_string();
                if let Some(j) = block {
                    ev.push(self.ev_fpm(j));
                    d = format!("{d}; the slow log shows it blocked in {}", self.fpm.events[j].message);
                }
                return verdict(cls, Cause::SlowBackend, Confidence::High, ev, d);
            }
        }
        if let Some(i) = self.max_children_before(t) {
            ev.push(self.ev_fpm(i));
            return verdict(
                CauseClass::C4,
                Cause::FpmPoolExhausted,
                Confidence::Medium,
                ev,
                "the request waited for a free FPM worker longer than the read timeout (pool at pm.max_children)",
            );
        }
        if let Some(i) = self.fpm.kind_in(FpmKind::ExecutingTooSlow, t - ANY_SLOW_BEFORE, t).next_back() {
            ev.push(self.ev_fpm(i));
            return verdict(cls, Cause::SlowBackend, Confidence::Medium, ev, "FPM reported slow requests at this time");
        }
        verdict(
            cls,
            Cause::SlowBackend,
            Confidence::Medium,
            ev,
            "the backend did not answer within the read timeout; no slow-log evidence",
        )
    }

    fn connect_timeout(&mut self, e: &ErrorEvent, mut ev: Vec<Evid>) -> Verdict {
        if let Some(i) = self.max_children_before(e.ts) {
            ev.push(self.ev_fpm(i));
            return verdict(
                CauseClass::C4,
                Cause::FpmPoolExhausted,
                Confidence::Medium,
                ev,
                "connect timed out while the FPM pool was at pm.max_children (listen queue full)",
            );
        }
        verdict(
            CauseClass::C17,
            Cause::UpstreamConnectTimeout,
            Confidence::Medium,
            ev,
            "the connection was not accepted in time: firewall drop, host down or an overloaded listen queue",
        )
    }
}
