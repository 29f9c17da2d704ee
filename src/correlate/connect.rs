//! Rules for a connection the upstream refused or whose socket was missing (R9-R12, R14,
//! R15, R19): a restart, a failed start, a startup race, a stopped FPM, a wrong address, a
//! backend that went down.
//!
//! Input: the failure line, the FPM index, the peer's answer history from the access logs.
//! Output: a `Verdict`. The rules are an ordered table (`CONNECT_RULES`, one function each,
//! the first that concludes wins) with named time windows. Invariant: FPM's lifecycle is read
//! only for FastCGI upstreams (it says nothing about an HTTP, uwsgi or gRPC backend); access
//! stamps (whole seconds) are compared with the failure by second, whatever the error line's
//! precision (an envelope makes it finer), so the same logs give the same verdict wrapped or
//! not.

use super::evidence::{STARTS, STOPS};
use super::rules::{verdict, Rules};
use super::{Evid, Verdict};
use crate::model::{Cause, CauseClass, Confidence, ErrorEvent, FpmKind, Ts};
use crate::scan::traffic::PeerTotals as PeerHistory;

/// A stop this long before the failure (or just after it) and a start within `RESTART_GAP`
/// of the stop: a restart the request fell into.
const STOP_LOOKBACK: Ts = 60_000;
const STOP_AHEAD: Ts = 1_000;
/// A stop followed by a start within this is a restart (a blip), not an outage.
const RESTART_GAP: Ts = 2_000;
/// Stamps of whole seconds: a start in the failure's own second may have come after it.
const SAME_SECOND: Ts = 1_000;
/// A startup race: no FPM start or stop this long before the failure, and FPM ready within
/// `READY_WITHIN` after it.
const NO_LIFECYCLE_BEFORE: Ts = 6 * 3_600_000;
const READY_WITHIN: Ts = 120_000;

/// What the rules of one refused or missing-socket line see.
struct Refused<'e, 'h> {
    e: &'e ErrorEvent,
    ev: Vec<Evid>,
    /// The upstream is FastCGI (FPM's log speaks for it).
    fpm: bool,
    hist: Option<&'h PeerHistory>,
    /// The peer answered a request in an earlier second, in a later one.
    answered_before: bool,
    answered_after: bool,
    /// FPM's lifecycle state at the failure (`Rules::lifecycle_state`).
    last: Option<usize>,
    /// `fpm_socket_missing` for a missing socket, `backend_down` for a refusal.
    down: Cause,
}

type ConnectRule = fn(&Rules, &Refused) -> Option<Verdict>;

const CONNECT_RULES: &[(&str, ConnectRule)] = &[
    ("R14: FPM restarted around it", restarted),
    ("R15: FPM was down, failing to start", failed_to_start),
    ("R19: nginx sent requests before FPM was ready", startup_race),
    ("R19: the upstream first answered after these failures", came_up_later),
    ("R9: FPM stopped and was not running", stopped),
    ("R11: the peer never answered in the whole window", misconfigured),
    ("R9: FPM stopped before it", stopped_after_answering),
    ("R10/R12: the peer refused (history says since when)", refused),
];

fn with(mut ev: Vec<Evid>, extra: Evid) -> Vec<Evid> {
    ev.push(extra);
    ev
}

fn restarted(s: &Rules, r: &Refused) -> Option<Verdict> {
    let t = r.e.ts;
    let stop = s.fpm.prev_of(t + STOP_AHEAD, STOP_LOOKBACK, STOPS).filter(|_| r.fpm)?;
    let st = s.fpm.events[stop].ts;
    let start = s.fpm.next_of(st, RESTART_GAP, STARTS).filter(|&x| s.fpm.events[x].ts >= t - SAME_SECOND)?;
    let d = format!("FPM restarted: stopping at {}, accepting again at {}", s.t(st), s.t(s.fpm.events[start].ts));
    Some(verdict(
        CauseClass::C14,
        Cause::FpmRestartCut,
        Confidence::High,
        with(with(r.ev.clone(), s.ev_fpm(stop)), s.ev_fpm(start)),
        d,
    ))
}

fn failed_to_start(s: &Rules, r: &Refused) -> Option<Verdict> {
    s.start_failure(r.last?, r.e.class, &r.ev)
}

/// FPM was neither running nor stopped before (no start or stop strictly before this
/// second) and becomes ready soon after.
fn startup_race(s: &Rules, r: &Refused) -> Option<Verdict> {
    let t = r.e.ts;
    if r.answered_before || !r.fpm {
        return None;
    }
    let before = s.fpm.prev_of(t - SAME_SECOND, NO_LIFECYCLE_BEFORE, &[STOPS, STARTS].concat());
    if before.is_some() {
        return None;
    }
    let ready = s.fpm.next_of(t - SAME_SECOND, READY_WITHIN, &[FpmKind::Ready])?;
    let d = format!("nginx sent requests before FPM was ready ({})", s.t(s.fpm.events[ready].ts));
    Some(verdict(r.e.class, Cause::StartupRace, Confidence::High, with(r.ev.clone(), s.ev_fpm(ready)), d))
}

fn came_up_later(s: &Rules, r: &Refused) -> Option<Verdict> {
    if r.answered_before || !r.answered_after || r.last.is_some() || (r.fpm && s.fpm.covers(r.e.ts)) {
        return None;
    }
    let first = r.hist.and_then(|h| h.first_ok).unwrap_or(r.e.ts);
    let d = format!("the upstream first answered at {}, after these failures: it came up after nginx", s.t(first));
    Some(verdict(r.e.class, Cause::StartupRace, Confidence::Medium, r.ev.clone(), d))
}

fn stopped_at(s: &Rules, r: &Refused) -> Option<usize> {
    r.last.filter(|&i| STOPS.contains(&s.fpm.events[i].kind))
}

fn stopped(s: &Rules, r: &Refused) -> Option<Verdict> {
    let i = stopped_at(s, r).filter(|_| !r.answered_before)?;
    let d = format!("FPM stopped at {} and was not running", s.t(s.fpm.events[i].ts));
    Some(verdict(r.e.class, r.down, Confidence::High, with(r.ev.clone(), s.ev_fpm(i)), d))
}

fn misconfigured(s: &Rules, r: &Refused) -> Option<Verdict> {
    r.hist.filter(|h| h.first_ok.is_none())?;
    let running = r.last.filter(|&i| STARTS.contains(&s.fpm.events[i].kind));
    let mut ev = r.ev.clone();
    if let Some(i) = running {
        ev.push(s.ev_fpm(i));
    }
    let what = if r.e.class == CauseClass::C2 { "socket path" } else { "address or port" };
    let d = format!(
        "{} never answered in the whole window{}: wrong {what}?",
        r.e.peer().unwrap_or("the upstream"),
        if running.is_some() { " while FPM was running" } else { "" }
    );
    let conf = if running.is_some() { Confidence::High } else { Confidence::Medium };
    Some(verdict(r.e.class, Cause::UpstreamMisconfigured, conf, ev, d))
}

fn stopped_after_answering(s: &Rules, r: &Refused) -> Option<Verdict> {
    let i = stopped_at(s, r)?;
    let d = format!("FPM stopped at {}", s.t(s.fpm.events[i].ts));
    Some(verdict(r.e.class, r.down, Confidence::High, with(r.ev.clone(), s.ev_fpm(i)), d))
}

fn refused(s: &Rules, r: &Refused) -> Option<Verdict> {
    let t = r.e.ts;
    let peer = r.e.peer().unwrap_or("the upstream");
    let sec = |x: Ts| x.div_euclid(1000);
    let d = match (r.hist.and_then(|h| h.last_ok).filter(|l| sec(*l) < sec(t)), r.answered_before) {
        (Some(l), true) => format!("{peer} answered until {} and refused from {}", s.t(l), s.t(t)),
        _ => format!("{peer} refused connections; no answer history for it"),
    };
    let conf = if r.answered_before { Confidence::Medium } else { Confidence::Low };
    Some(verdict(r.e.class, r.down, conf, r.ev.clone(), d))
}

impl Rules<'_> {
    /// A refused connection or a missing socket: the first rule of `CONNECT_RULES` that
    /// concludes.
    pub(super) fn connect_failure(&self, e: &ErrorEvent, ev: Vec<Evid>) -> Verdict {
        let t = e.ts;
        let fpm = e.upstream().is_none_or(|u| u.starts_with("fastcgi://"));
        let hist = e.peer().and_then(|p| self.peers.get(p));
        let sec = |x: Ts| x.div_euclid(1000);
        let r = Refused {
            e,
            ev,
            fpm,
            hist,
            answered_before: hist.and_then(|h| h.first_ok).is_some_and(|f| sec(f) < sec(t)),
            answered_after: hist.and_then(|h| h.last_ok).is_some_and(|l| sec(l) > sec(t)),
            last: self.lifecycle_state(t).filter(|_| fpm),
            down: if e.class == CauseClass::C2 { Cause::FpmSocketMissing } else { Cause::BackendDown },
        };
        CONNECT_RULES.iter().find_map(|(_, rule)| rule(self, &r)).unwrap_or_else(|| {
            // `refused` always concludes; this is for completeness.
            verdict(e.class, r.down, Confidence::Low, r.ev.clone(), "refused")
        })
    }
}
